import Testing
import VPCDNSConfig
import VPCDNSCore

/// `instances:` and `autodefined_reverse` (R16, R17): what loads, what is an error, what warns.
@Suite("instances and autodefined_reverse")
struct InstanceConfigTests {
    @Test func instancesAndTheReverseSwitchLoad() throws {
        let c = try loaded(oneVPC + """
            autodefined_reverse: false
        instances:
          - {id: i-0123456789abcdef0, vpc: vpc-0a1, ipv4: 10.0.1.5, ipv6: "2600:1f14::5", resource_name_aaaa: true}
          - {id: i-0abc, vpc: vpc-0a1, ipv4: 10.0.1.6}

        """)
        #expect(c.model.vpcs[0].autodefinedReverse == false)
        #expect(c.model.instances == [
            Instance(id: "i-0123456789abcdef0", vpcID: "vpc-0a1", ipv4: IPAddress("10.0.1.5")!, ipv6: IPAddress("2600:1f14::5")!,
                     resourceNameA: false, resourceNameAAAA: true),
            Instance(id: "i-0abc", vpcID: "vpc-0a1", ipv4: IPAddress("10.0.1.6")!),
        ])
        #expect(c.warnings.isEmpty)
        #expect(try loaded(oneVPC).model.vpcs[0].autodefinedReverse == true)
    }

    @Test func badInstancesAreErrorsAtTheirKey() {
        #expect(errorLines(oneVPC + """
        instances:
          - {id: i-XYZ, vpc: vpc-0a1, ipv4: 10.0.1.5}
          - {id: i-0a2, vpc: vpc-0ff, ipv4: 10.0.1.6}
          - {id: i-0a3, vpc: vpc-0a1, ipv4: "2600::1"}
          - {id: i-0a4, vpc: vpc-0a1, ipv4: 10.0.1.7, resource_name_aaaa: true}
          - {id: i-0a5, vpc: vpc-0a1}
          - {id: i-0a5, vpc: vpc-0a1, ipv4: 10.0.1.8, colour: blue}
          - {id: i-0a6, vpc: vpc-0a1, ipv4: 10.0.1.9, ipv6: 10.0.1.9}

        """) == [
            "t.yaml:7: instances[0].id: 'i-XYZ' is not an EC2 instance id (i- followed by lowercase hex digits)",
            "t.yaml:8: instances[1].vpc: no VPC with id vpc-0ff in this file",
            "t.yaml:9: instances[2].ipv4: '2600::1' is not an IPv4 address",
            "t.yaml:10: instances[3].resource_name_aaaa: resource_name_aaaa: true needs the instance's ipv6 address",
            "t.yaml:11: instances[4].ipv4: required key is missing",
            "t.yaml:12: instances[5].colour: unknown key 'colour'",
            "t.yaml:13: instances[6].ipv6: '10.0.1.9' is not an IPv6 address",
        ])
        #expect(errorLines(oneVPC + """
        instances:
          - {id: i-0a1, vpc: vpc-0a1, ipv4: 10.0.1.5}
          - {id: i-0a1, vpc: vpc-0a1, ipv4: 10.0.1.6}

        """) == ["t.yaml:8: instances[1].id: duplicate instance id i-0a1 (first at line 7)"])
        #expect(errorLines(oneVPC + "    autodefined_reverse: maybe\n").count == 1)
    }

    @Test func anAddressOutsideTheVPCWarns() {
        #expect(warningLines(oneVPC + """
        instances:
          - {id: i-0a1, vpc: vpc-0a1, ipv4: 172.16.0.9}

        """) == ["t.yaml:7: instances[0].ipv4: warning: 172.16.0.9 is outside every CIDR of VPC vpc-0a1 (10.0.0.0/16): AWS gives instances addresses from their VPC's subnets"])
        // IPv6 is checked only against a VPC that lists an IPv6 CIDR.
        #expect(warningLines(oneVPC.replacingOccurrences(of: "[10.0.0.0/16]", with: "[10.0.0.0/16, \"2600:1f14::/56\"]") + """
        instances:
          - {id: i-0a1, vpc: vpc-0a1, ipv4: 10.0.0.9, ipv6: "2600:1f15::9"}

        """) == ["t.yaml:7: instances[0].ipv6: warning: 2600:1f15::9 is outside every IPv6 CIDR of VPC vpc-0a1"])
    }
}
