import Testing
import VPCDNSConfig
import VPCDNSCore

@Suite struct MoreValidationTests {
    @Test func duplicateIDsAcrossEntries() {
        let errs = errorLines("""
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            inbound_endpoints: [{id: rslvr-in-01, addresses: ["127.0.10.53:1053"]}, {id: rslvr-in-01, addresses: ["127.0.10.54:1053"]}]
            resolver_rules: [{id: rslvr-rr-01, domain: a.example, type: SYSTEM}, {id: rslvr-rr-01, domain: b.example, type: SYSTEM}]
        endpoints:
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.us-west-2.s3, type: Gateway}
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.us-west-2.dynamodb, type: Gateway}
        endpoint_services:
          - {id: vpce-svc-0a, region: us-west-2}
          - {id: vpce-svc-0a, region: us-west-2}
        hosted_zones:
          - {id: Z0123456789ABCDEF, name: a.internal, vpcs: [vpc-0a1]}
          - {id: Z0123456789ABCDEF, name: b.internal, vpcs: [vpc-0a1]}
          - {id: z123, name: c.internal, vpcs: [vpc-0a1]}
        """)
        #expect(errs == [
            "t.yaml:5: vpcs[0].inbound_endpoints[1].id: duplicate inbound endpoint id rslvr-in-01 (first at line 5)",
            "t.yaml:6: vpcs[0].resolver_rules[1].id: duplicate resolver rule id rslvr-rr-01 (first at line 6)",
            "t.yaml:9: endpoints[1].id: duplicate endpoint id vpce-01 (first at line 8)",
            "t.yaml:12: endpoint_services[1].id: duplicate endpoint service id vpce-svc-0a (first at line 11)",
            "t.yaml:15: hosted_zones[1].id: duplicate hosted zone id Z0123456789ABCDEF (first at line 14)",
            "t.yaml:16: hosted_zones[2].id: 'z123' is not a hosted zone id (Z followed by 13 to 21 uppercase letters and digits)",
        ])
    }

    /// One AWS rule associated with several VPCs keeps its id in each (as `import aws` writes
    /// it); a rule id that means two different rules is an error.
    @Test func sharedRuleIDsAcrossVPCs() {
        let vpcs = """
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            resolver_rules: [{id: rslvr-rr-01, domain: corp.example, type: FORWARD, targets: ["127.0.0.1:5300"]}]
          - id: vpc-0a2
            region: us-west-2
            cidrs: [10.1.0.0/16]
            resolver_rules: [{id: rslvr-rr-01, domain: corp.example, type: FORWARD, targets: ["127.0.0.1:5300"]}]
          - id: vpc-0a3
            region: us-west-2
            cidrs: [10.2.0.0/16]
            resolver_rules: [{id: rslvr-rr-01, domain: other.example, type: FORWARD, targets: ["127.0.0.1:5300"]}]
        """
        #expect(errorLines(vpcs) == [
            "t.yaml:13: vpcs[2].resolver_rules[0].id: resolver rule rslvr-rr-01 differs from its definition at line 5 (a rule associated with several VPCs has one domain, type and targets)",
        ])
    }

    @Test func gatewayEndpointsHaveNoDNS() {
        let errs = errorLines(oneVPC + """
        endpoints:
          - id: vpce-01
            vpc: vpc-0a1
            service: com.amazonaws.us-west-2.s3
            type: Gateway
            private_dns_enabled: true
            subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]
          - {id: vpce-02, vpc: vpc-0a1, service: com.amazonaws.us-west-2.s3, type: gateway}
        """)
        #expect(errs == [
            "t.yaml:11: endpoints[0].private_dns_enabled: private DNS is available only for Interface endpoints, not Gateway",
            "t.yaml:12: endpoints[0].subnets: Gateway endpoints have no subnets (they work through route tables)",
            "t.yaml:13: endpoints[1].type: 'gateway' is not one of Interface, Gateway, GatewayLoadBalancer; did you mean 'Gateway'?",
        ])
    }

    @Test func aliasExcludesValues() {
        let errs = errorLines(oneVPC + """
        endpoints:
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.us-west-2.ec2, subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]}
        hosted_zones:
          - name: x.internal
            vpcs: [vpc-0a1]
            records:
              - {name: a.x.internal, type: A, values: [10.0.0.1], alias: {endpoint: vpce-01}}
              - {name: b.x.internal, type: A, alias: {endpoint: vpce-01, record: a.x.internal}}
        """)
        #expect(errs == [
            "t.yaml:12: hosted_zones[0].records[0].values: alias and values are exclusive (an alias answers its target's records)",
            "t.yaml:13: hosted_zones[0].records[1].alias: an alias has exactly one target: endpoint, dns_name or record",
        ])
    }

    @Test func badNamesAndAddresses() {
        let errs = errorLines("""
        metrics: localhost:9100
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            clients: [fe80::/10, 2001:db8::1/64]
            resolver_rules: [{id: rslvr-rr-01, domain: "bad..name", type: SYSTEM}]
        endpoint_services:
          - {id: vpce-svc-0a, region: moon-1, private_dns_name: "*.api.example.com"}
        """)
        #expect(errs == [
            "t.yaml:1: metrics: 'localhost:9100' is not an IP:PORT address (IPv6 as [::1]:1053)",
            "t.yaml:6: vpcs[0].clients[1]: '2001:db8::1/64' has host bits set; did you mean 2001:db8::/64?",
            "t.yaml:7: vpcs[0].resolver_rules[0].domain: 'bad..name' is not a valid domain name (labels of letters, digits, - and _)",
            "t.yaml:9: endpoint_services[0].region: 'moon-1' is not a region name (e.g. us-west-2)",
            "t.yaml:9: endpoint_services[0].private_dns_name: '*.api.example.com': a wildcard is not allowed here",
        ])
    }

    @Test func rootMustBeAMapping() {
        #expect(errorLines("- a\n- b\n") == ["t.yaml:1: -: expected a mapping with keys \(["account_id", "listen", "upstreams", "upstream_timeout_ms", "upstream_attempt_timeout_ms", "endpoint_dns_ttl", "cache_size", "cache_max_bytes", "udp_payload_size", "tcp_idle_timeout_ms", "max_tcp_connections", "threads", "upstream_sockets", "default_vpc", "query_log", "log_cache_hits", "metrics", "trusted_proxies", "dnstap", "console", "console_token", "vpcs", "endpoints", "endpoint_services", "hosted_zones", "instances", "health_checks"].joined(separator: ", ")), found a list"])
    }

    @Test func yamlMergeKeysAreApplied() throws {
        let c = try loaded("""
        vpcs:
          - &base
            id: vpc-0a1
            region: eu-central-1
            cidrs: [10.0.0.0/16]
            enable_dns_hostnames: true
          - <<: *base
            id: vpc-0b2
            cidrs: [10.1.0.0/16]
        """)
        #expect(c.model.vpcs.map(\.id) == ["vpc-0a1", "vpc-0b2"])
        #expect(c.model.vpcs[1].region == "eu-central-1" && c.model.vpcs[1].enableDNSHostnames)
        #expect(c.model.vpcs[1].cidrs.map(\.description) == ["10.1.0.0/16"])
    }

    @Test func noSuggestionForFarOffKeys() {
        #expect(errorLines("vpcs:\n  - {id: vpc-0a1, region: us-west-2, cidrs: [10.0.0.0/16], zz: 1}\n")
                == ["t.yaml:2: vpcs[0].zz: unknown key 'zz'"])
    }
}
