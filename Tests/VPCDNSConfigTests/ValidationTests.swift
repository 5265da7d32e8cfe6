import Testing
import VPCDNSConfig
import VPCDNSCore

@Suite struct SyntaxAndTypeTests {
    @Test func unknownKeyWithSuggestion() {
        let errs = errorLines("""
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            enable_dns_hostname: true
        """)
        #expect(errs == ["t.yaml:5: vpcs[0].enable_dns_hostname: unknown key 'enable_dns_hostname'; did you mean 'enable_dns_hostnames'?"])
    }

    @Test func unknownTopLevelKeyWithoutCloseMatch() {
        #expect(errorLines("frobnicate: 1\n") == ["t.yaml:1: frobnicate: unknown key 'frobnicate'"])
    }

    @Test func yamlSyntaxError() {
        let errs = errorLines("vpcs:\n  - id: vpc-0a1\n    region: [us-west-2\n")
        #expect(errs.count == 1)
        #expect(errs[0].hasPrefix("t.yaml:"))
        #expect(errs[0].contains(": -: YAML syntax error"))
    }

    /// libyaml reports an error found at the end of the input on a line after the last one;
    /// the diagnostic names the last line instead (found by fuzz-config). Lines are counted
    /// as YAML counts them, a lone CR included.
    @Test(arguments: [("a: b\nc", 2), ("a: b\nc\n", 2), ("a: b\rc", 2), ("a: b\r\nc\r\n", 2), ("x: [1,\n", 1)])
    func yamlSyntaxErrorAtTheEnd(text: String, line: Int) {
        let errs = errorLines(text)
        #expect(errs.count == 1)
        #expect(errs.first?.hasPrefix("t.yaml:\(line): -: YAML syntax error") == true, "\(errs)")
    }

    @Test func wrongTypes() {
        let errs = errorLines("""
        cache_size: lots
        log_cache_hits: "yes please"
        listen: 127.0.0.1
        vpcs: {id: vpc-0a1}
        """)
        #expect(errs == [
            "t.yaml:1: cache_size: expected an integer, found the string 'lots'",
            "t.yaml:2: log_cache_hits: expected true or false, found the string 'yes please'",
            "t.yaml:3: listen: '127.0.0.1' is not an IP:PORT address (IPv6 as [::1]:1053)",
            "t.yaml:4: vpcs: expected a list, found a mapping",
        ])
    }

    @Test func allErrorsAreCollected() {
        let errs = errorLines("""
        udp_payload_size: 100
        vpcs:
          - id: vpc-0a1
            region: uswest
            cidrs: [10.0.0.1/16, 10.0.0.0/33]
        """)
        #expect(errs == [
            "t.yaml:1: udp_payload_size: 100 is out of range 512...65535",
            "t.yaml:4: vpcs[0].region: 'uswest' is not a region name (e.g. us-west-2)",
            "t.yaml:5: vpcs[0].cidrs[0]: '10.0.0.1/16' has host bits set; did you mean 10.0.0.0/16?",
            "t.yaml:5: vpcs[0].cidrs[1]: '10.0.0.0/33' is not a CIDR block (e.g. 10.0.0.0/16 or 2600:1f14::/56)",
        ])
    }

    @Test func cacheMaxBytesIsValidated() {
        #expect(errorLines("cache_max_bytes: -1\n") == ["t.yaml:1: cache_max_bytes: -1 is out of range 0...1099511627776"])
        #expect(errorLines("cache_max_bytes: 64MiB\n") == ["t.yaml:1: cache_max_bytes: expected an integer, found the string '64MiB'"])
        #expect(errorLines("cache_max_byte: 1\n").first?.contains("cache_max_bytes") == true, "a typo is named with its suggestion")
    }

    @Test func missingRequiredKeys() {
        let errs = errorLines("vpcs:\n  - name: x\n")
        #expect(errs.contains("t.yaml:2: vpcs[0].id: required key is missing"))
        #expect(errs.contains("t.yaml:2: vpcs[0].region: required key is missing"))
        #expect(errs.contains("t.yaml:2: vpcs[0].cidrs: required key is missing"))
    }
}

@Suite struct VPCRuleTests {
    @Test func malformedIDs() {
        let errs = errorLines("""
        vpcs:
          - id: vpc-XYZ
            region: us-west-2
            cidrs: [10.0.0.0/16]
            inbound_endpoints: [{id: rslvr-out-01, addresses: ["127.0.0.2:53"]}]
            resolver_rules: [{id: rr-1, domain: a.example, type: SYSTEM}]
        """)
        #expect(errs == [
            "t.yaml:2: vpcs[0].id: 'vpc-XYZ' is not a VPC id (vpc- followed by lowercase hex digits)",
            "t.yaml:5: vpcs[0].inbound_endpoints[0].id: 'rslvr-out-01' is not a Resolver inbound endpoint id (rslvr-in- followed by lowercase hex digits)",
            "t.yaml:6: vpcs[0].resolver_rules[0].id: 'rr-1' is not a Resolver rule id (rslvr-rr- followed by lowercase hex digits)",
        ])
    }

    @Test func duplicateVPCIDNamesTheFirstLine() {
        let errs = errorLines(oneVPC + """
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.9.0.0/16]
        """)
        #expect(errs == ["t.yaml:6: vpcs[1].id: duplicate VPC id vpc-0a1 (first at line 2)"])
    }

    @Test func identicalPrefixWithoutResolverAddressesIsAnError() {
        let errs = errorLines("""
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
          - id: vpc-0b2
            region: us-west-2
            cidrs: [10.0.0.0/16]
            resolver_addresses: ["127.0.20.2:1053"]
        """)
        #expect(errs == ["t.yaml:7: vpcs[1].cidrs[0]: 10.0.0.0/16 is claimed by both VPC vpc-0a1 (line 4) and VPC vpc-0b2: identical prefixes are allowed only when both VPCs have resolver_addresses"])
    }

    @Test func identicalPrefixWithResolverAddressesIsAWarning() throws {
        let yaml = """
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            resolver_addresses: ["127.0.10.2:1053"]
          - id: vpc-0b2
            region: us-west-2
            cidrs: [10.0.0.0/16]
            resolver_addresses: ["127.0.20.2:1053"]
        """
        let c = try loaded(yaml)
        #expect(c.warnings.map(\.description) == ["t.yaml:8: vpcs[1].cidrs[0]: warning: 10.0.0.0/16 is claimed by both VPC vpc-0a1 (line 4) and VPC vpc-0b2: a client there on a shared listen address is REFUSED (ambiguous-vpc); each VPC is reachable only on its resolver_addresses"])
    }

    @Test func listenerAddressUsedTwice() {
        let errs = errorLines("""
        listen: ["127.0.0.1:1053"]
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            resolver_addresses: ["127.0.0.1:1053"]
            inbound_endpoints:
              - {id: rslvr-in-01, addresses: ["127.0.10.53:1053", "127.0.10.53:1053"]}
        """)
        #expect(errs == [
            "t.yaml:6: vpcs[0].resolver_addresses[0]: listener address 127.0.0.1:1053 is already used by listen[0] (line 1); each address serves one purpose",
            "t.yaml:8: vpcs[0].inbound_endpoints[0].addresses[1]: listener address 127.0.10.53:1053 is already used by vpcs[0].inbound_endpoints[0].addresses[0] (line 8); each address serves one purpose",
        ])
    }

    @Test("metrics may name the console's address (one server serves both); any other shared address is an error")
    func metricsOnTheConsoleAddress() {
        #expect(errorLines("""
        listen: ["127.0.0.1:1053"]
        metrics: "127.0.0.1:9153"
        console: "127.0.0.1:9153"
        """) == [])
        #expect(errorLines("""
        listen: ["127.0.0.1:1053"]
        metrics: "127.0.0.1:1053"
        """) == ["t.yaml:2: metrics: listener address 127.0.0.1:1053 is already used by listen[0] (line 1); each address serves one purpose"])
    }

    @Test func hostnamesNeedSupport() {
        let errs = errorLines("""
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            enable_dns_support: false
            enable_dns_hostnames: true
        """)
        #expect(errs == ["t.yaml:6: vpcs[0].enable_dns_hostnames: enable_dns_hostnames: true needs enable_dns_support: true (AWS rejects DNS hostnames without DNS resolution)"])
    }

    @Test func resolverRules() {
        let errs = errorLines("""
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            resolver_rules:
              - {id: rslvr-rr-01, domain: corp.example.com, type: FORWARD}
              - {id: rslvr-rr-02, domain: a.example.com, type: SYSTEM, targets: ["127.0.0.1:53"]}
              - {id: rslvr-rr-03, domain: Corp.Example.com., type: FORWARD, targets: ["127.0.0.1:5300"]}
              - {id: rslvr-rr-04, domain: b.example.com, type: forward, targets: ["127.0.0.1:5300"]}
        """)
        #expect(errs == [
            "t.yaml:6: vpcs[0].resolver_rules[0].type: a FORWARD rule needs at least one target (IP:PORT)",
            "t.yaml:7: vpcs[0].resolver_rules[1].targets: a SYSTEM rule takes no targets (it means: the VPC resolver answers this domain itself)",
            "t.yaml:8: vpcs[0].resolver_rules[2].domain: duplicate resolver rule for domain corp.example.com (first at line 6)",
            "t.yaml:9: vpcs[0].resolver_rules[3].type: 'forward' is not one of FORWARD, SYSTEM; did you mean 'FORWARD'?",
        ])
    }

    @Test func referencesMustExist() {
        let errs = errorLines("""
        default_vpc: vpc-0ff
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
        endpoints:
          - {id: vpce-01, vpc: vpc-0b2, service: com.amazonaws.us-west-2.s3, type: Gateway}
        hosted_zones:
          - {name: x.internal, vpcs: [vpc-0c3]}
        """)
        #expect(errs == [
            "t.yaml:1: default_vpc: no VPC with id vpc-0ff in this file",
            "t.yaml:7: endpoints[0].vpc: no VPC with id vpc-0b2 in this file",
            "t.yaml:9: hosted_zones[0].vpcs[0]: no VPC with id vpc-0c3 in this file",
        ])
    }
}

@Suite struct EndpointRuleTests {
    @Test func serviceNameAndSubnets() {
        let errs = errorLines(oneVPC + """
        endpoints:
          - id: vpce-01
            vpc: vpc-0a1
            service: amazonaws.ec2
            subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]
          - id: vpce-02
            vpc: vpc-0a1
            service: com.amazonaws.us-west-2.sts
          - id: vpce-03
            vpc: vpc-0a1
            service: com.amazonaws.us-west-2.kms
            dns_record_ip_type: dualstack
            dns_suffix: ABC
            subnets:
              - {az: us-west-2a, ipv4: 10.0.1.3}
        """)
        #expect(errs == [
            "t.yaml:9: endpoints[0].service: 'amazonaws.ec2' is not a service name: expected com.amazonaws.REGION.SERVICE or com.amazonaws.vpce.REGION.vpce-svc-HEX",
            "t.yaml:11: endpoints[1].subnets: an Interface endpoint needs subnets (one network interface per subnet: {az, ipv4})",
            "t.yaml:18: endpoints[2].dns_suffix: 'ABC' is not a DNS suffix: expected 8 lowercase letters or digits ([a-z0-9]{8})",
            "t.yaml:20: endpoints[2].subnets[0].ipv6: required key is missing (dns_record_ip_type dualstack needs an IPv6 address)",
        ])
    }

    @Test func ipv6OnlyNeedsNoIPv4() throws {
        let c = try loaded(oneVPC + """
        endpoints:
          - id: vpce-01
            vpc: vpc-0a1
            service: com.amazonaws.us-west-2.ec2
            dns_record_ip_type: ipv6
            subnets: [{az: us-west-2a, ipv6: "2001:db8::1"}]
        """)
        #expect(c.model.endpoints[0].subnets[0].ipv6 == IPAddress("2001:db8::1"))
    }

    @Test func privateDNSNamesOverride() throws {
        let c = try loaded(oneVPC + """
        endpoints:
          - id: vpce-01
            vpc: vpc-0a1
            service: com.amazonaws.us-west-2.ec2
            private_dns_names: [ec2.example.internal, "*.ec2.example.internal"]
            subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]
        """)
        let e = c.model.endpoints[0]
        #expect(e.privateDNSNames.map(\.text) == ["ec2.example.internal", "*.ec2.example.internal"])
        #expect(e.privateDNSNamesOverridden)
    }

    @Test func twoEndpointsWithTheSamePrivateName() {
        let errs = errorLines("""
        vpcs:
          - id: vpc-0a11ce0000000001a
            region: us-west-2
            cidrs: [10.0.0.0/16]
            enable_dns_hostnames: true
        endpoints:
          - id: vpce-01
            vpc: vpc-0a11ce0000000001a
            service: com.amazonaws.us-west-2.ec2
            subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]
          - id: vpce-02
            vpc: vpc-0a11ce0000000001a
            service: com.amazonaws.us-west-2.ec2
            subnets: [{az: us-west-2a, ipv4: 10.0.1.2}]
        """)
        #expect(errs == ["t.yaml:11: endpoints[1].private_dns_enabled: conflicting DNS domain for ec2.us-west-2.amazonaws.com in VPC vpc-0a11ce0000000001a (endpoint vpce-01 at line 7 already claims it)"])
    }

    @Test func privateDNSOffDoesNotConflict() throws {
        _ = try loaded(oneVPC + """
        endpoints:
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.us-west-2.ec2, subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]}
          - {id: vpce-02, vpc: vpc-0a1, service: com.amazonaws.us-west-2.ec2, private_dns_enabled: false, subnets: [{az: us-west-2a, ipv4: 10.0.1.2}]}
        hosted_zones:
          - {name: sts.us-west-2.amazonaws.com, vpcs: [vpc-0a1]}
        """)
    }

    @Test func hostedZoneNamedLikeAnActivePrivateName() {
        let errs = errorLines(oneVPC + """
        endpoints:
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.us-west-2.ec2, subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]}
          - {id: vpce-02, vpc: vpc-0a1, service: com.amazonaws.us-west-2.execute-api, subnets: [{az: us-west-2a, ipv4: 10.0.1.2}]}
        hosted_zones:
          - {name: ec2.us-west-2.amazonaws.com, vpcs: [vpc-0a1]}
          - {name: execute-api.us-west-2.amazonaws.com, vpcs: [vpc-0a1]}
        """)
        #expect(errs == [
            "t.yaml:10: hosted_zones[0].name: conflicting DNS domain for ec2.us-west-2.amazonaws.com in VPC vpc-0a1 (endpoint vpce-01 at line 7 already claims it)",
            "t.yaml:11: hosted_zones[1].name: conflicting DNS domain for *.execute-api.us-west-2.amazonaws.com in VPC vpc-0a1 (endpoint vpce-02 at line 8 already claims it)",
        ])
    }

    @Test func servicePrivateNameCollidesWithZone() {
        let errs = errorLines(oneVPC + """
        endpoints:
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.vpce.us-west-2.vpce-svc-0d8, subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]}
        endpoint_services:
          - {id: vpce-svc-0d8, region: us-west-2, private_dns_name: db.bank.example.com}
        hosted_zones:
          - {name: db.bank.example.com, vpcs: [vpc-0a1]}
        """)
        #expect(errs == ["t.yaml:11: hosted_zones[0].name: conflicting DNS domain for db.bank.example.com in VPC vpc-0a1 (endpoint vpce-01 at line 7 already claims it)"])
    }

    @Test func inboundOnlyNeedsAGatewayEndpoint() {
        let yaml = oneVPC + """
        endpoints:
          - id: vpce-05
            vpc: vpc-0a1
            service: com.amazonaws.us-west-2.s3
            private_dns_only_for_inbound_resolver_endpoint: true
            subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]
          - {id: vpce-06, vpc: vpc-0a1, service: com.amazonaws.us-west-2.ec2, private_dns_only_for_inbound_resolver_endpoint: true, subnets: [{az: us-west-2a, ipv4: 10.0.1.2}]}

        """
        #expect(errorLines(yaml) == [
            "t.yaml:10: endpoints[0].private_dns_only_for_inbound_resolver_endpoint: To set private_dns_only_for_inbound_resolver_endpoint to true, the VPC vpc-0a1 must have a gateway endpoint for the service",
            "t.yaml:12: endpoints[1].private_dns_only_for_inbound_resolver_endpoint: private_dns_only_for_inbound_resolver_endpoint applies only to S3 Interface endpoints",
        ])
        let fixed = yaml.replacingOccurrences(of: "  - {id: vpce-06, vpc: vpc-0a1, service: com.amazonaws.us-west-2.ec2, private_dns_only_for_inbound_resolver_endpoint: true,",
                                              with: "  - {id: vpce-06, vpc: vpc-0a1, service: com.amazonaws.us-west-2.s3, type: Gateway}\n#")
        #expect(errorLines(fixed) == [])
    }

    @Test func serviceEnums() {
        let errs = errorLines("""
        endpoint_services:
          - id: vpce-svc-0a
            region: us-west-2
            private_dns_name: api.example.com
            verification: verifed
            alias_style: alias
        """)
        #expect(errs == [
            "t.yaml:5: endpoint_services[0].verification: 'verifed' is not one of pendingVerification, verified, failed; did you mean 'verified'?",
            "t.yaml:6: endpoint_services[0].alias_style: 'alias' is not one of cname, flatten",
        ])
    }
}
