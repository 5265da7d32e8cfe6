import Testing
import VPCDNSConfig
import VPCDNSCore

@Suite struct WarningTests {
    @Test func privateDNSWithHostnamesOff() throws {
        let c = try loaded("""
        vpcs:
          - {id: vpc-0a1, region: us-west-2, cidrs: [10.0.0.0/16]}
        endpoints:
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.us-west-2.ec2, subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]}
        """)
        #expect(c.warnings.map(\.description) == [
            "t.yaml:4: endpoints[0].private_dns_enabled: warning: endpoint vpce-01 has private DNS on, but VPC vpc-0a1 has enable_dns_hostnames: false: ec2.us-west-2.amazonaws.com will resolve publicly (through upstream), not to the endpoint; set enable_dns_hostnames: true on the VPC",
        ])
    }

    @Test func zoneShadowingPublicNames() {
        let ws = warningLines(oneVPC + """
        hosted_zones:
          - {name: amazonaws.com, vpcs: [vpc-0a1]}
          - {name: com, vpcs: [vpc-0a1]}
          - {name: us-west-2.amazonaws.com, vpcs: [vpc-0a1]}
          - {name: myservice.internal, vpcs: [vpc-0a1]}
          - {name: corp.example.com, vpcs: [vpc-0a1]}
        """)
        #expect(ws == [
            "t.yaml:7: hosted_zones[0].name: warning: hosted zone amazonaws.com shadows public DNS: in vpc-0a1, every name under it that the zone does not hold (such as s3.amazonaws.com) becomes NXDOMAIN instead of resolving publicly",
            "t.yaml:8: hosted_zones[1].name: warning: hosted zone com shadows public DNS: in vpc-0a1, every name under it that the zone does not hold (such as www.example.com) becomes NXDOMAIN instead of resolving publicly",
            "t.yaml:9: hosted_zones[2].name: warning: hosted zone us-west-2.amazonaws.com shadows public DNS: in vpc-0a1, every name under it that the zone does not hold (such as sts.us-west-2.amazonaws.com) becomes NXDOMAIN instead of resolving publicly",
        ])
    }

    @Test func executeAPICapturesEverything() {
        let ws = warningLines(oneVPC + """
        endpoints:
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.us-west-2.execute-api, subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]}
        """)
        #expect(ws.count == 1)
        #expect(ws.first?.hasPrefix("t.yaml:7: endpoints[0].private_dns_enabled: warning: private DNS name *.execute-api.us-west-2.amazonaws.com captures every execute-api API in us-west-2") == true)
    }

    @Test func unverifiedNameAndMissingServiceEntry() {
        let ws = warningLines(oneVPC + """
        endpoints:
          - {id: vpce-01, vpc: vpc-0a1, service: com.amazonaws.vpce.us-west-2.vpce-svc-0aa, subnets: [{az: us-west-2a, ipv4: 10.0.1.1}]}
          - {id: vpce-02, vpc: vpc-0a1, service: com.amazonaws.vpce.us-west-2.vpce-svc-0bb, subnets: [{az: us-west-2a, ipv4: 10.0.1.2}]}
        endpoint_services:
          - {id: vpce-svc-0aa, region: us-west-2, private_dns_name: api.example.com, verification: pendingVerification}
        """)
        #expect(ws == [
            "t.yaml:8: endpoints[1].service: warning: service vpce-svc-0bb has no entry in endpoint_services: the endpoint gets only its own vpce names, no private DNS name",
            "t.yaml:10: endpoint_services[0].verification: warning: private DNS name api.example.com of vpce-svc-0aa is pendingVerification: it is not served to consumers (only verified names are)",
        ])
    }
}
