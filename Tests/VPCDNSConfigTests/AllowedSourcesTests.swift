import Testing
import VPCDNSConfig
import VPCDNSCore

/// `allowed_sources` under `vpcs:` (V1) and the `check` warnings about listeners that answer
/// any source from beyond this host.
@Suite struct AllowedSourcesTests {
    @Test func loadedIntoTheModel() throws {
        let c = try loaded("""
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            resolver_addresses: ["10.0.0.2:53"]
            inbound_endpoints: [{id: rslvr-in-01, addresses: ["10.0.0.53:53"]}]
            allowed_sources: [10.0.0.0/16, 192.168.10.0/24, "2001:db8::/32"]
        """)
        #expect(c.model.vpcs[0].allowedSources.map(\.description) == ["10.0.0.0/16", "192.168.10.0/24", "2001:db8::/32"])
        #expect(c.warnings.isEmpty, "\(c.warnings)")
    }

    @Test func malformedCIDRIsAnErrorWithFileLineAndKey() {
        let errs = errorLines("""
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            allowed_sources:
              - 10.0.0.0/16
              - 10.0.0.300/24
              - 192.168.1.1/24
              - not-a-cidr
        """)
        #expect(errs == [
            "t.yaml:7: vpcs[0].allowed_sources[1]: '10.0.0.300/24' is not a CIDR block (e.g. 10.0.0.0/16 or 2600:1f14::/56)",
            "t.yaml:8: vpcs[0].allowed_sources[2]: '192.168.1.1/24' has host bits set; did you mean 192.168.1.0/24?",
            "t.yaml:9: vpcs[0].allowed_sources[3]: 'not-a-cidr' is not a CIDR block (e.g. 10.0.0.0/16 or 2600:1f14::/56)",
        ])
    }

    @Test func emptyListIsAnError() {
        let errs = errorLines("""
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            allowed_sources: []
        """)
        #expect(errs == ["t.yaml:5: vpcs[0].allowed_sources: an empty list would refuse every source: list at least one CIDR block, or leave the key out to allow any source"])
    }

    @Test func openListenersAreWarnedAbout() {
        let ws = warningLines("""
        listen: ["0.0.0.0:53", "127.0.0.1:1053"]
        default_vpc: vpc-0b2
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            clients: [192.168.1.0/24]
            resolver_addresses: ["10.0.0.2:53", "127.0.10.2:1053"]
            inbound_endpoints: [{id: rslvr-in-01, addresses: ["10.0.0.53:53"]}]
          - id: vpc-0b2
            region: us-west-2
            cidrs: [10.1.0.0/16]
            resolver_addresses: ["10.1.0.2:53"]
            allowed_sources: [10.1.0.0/16]
        """)
        #expect(ws == [
            "t.yaml:1: listen[0]: warning: listen address 0.0.0.0:53 is not on loopback, so it is reachable from other hosts: it answers sources in 10.0.0.0/16, 192.168.1.0/24 (vpc-0a1); 10.1.0.0/16 (vpc-0b2); every other source too, as vpc-0b2 (default_vpc): an open resolver (V2, V3); make sure only those networks can reach it",
            "t.yaml:8: vpcs[0].resolver_addresses[0]: warning: resolver address 10.0.0.2:53 of VPC vpc-0a1 is not on loopback and answers any source that reaches it, as this VPC (V1; with UDP answers many times the query's size, a reflector for spoofed floods): set allowed_sources on the VPC to the networks that should use it",
            "t.yaml:9: vpcs[0].inbound_endpoints[0].addresses[0]: warning: inbound endpoint address 10.0.0.53:53 of VPC vpc-0a1 is not on loopback and answers any source that reaches it, as this VPC (V1; with UDP answers many times the query's size, a reflector for spoofed floods): set allowed_sources on the VPC to the networks that should use it",
        ])
    }

    @Test func loopbackOnlyListenersAreNotWarnedAbout() {
        let ws = warningLines("""
        listen: ["127.0.0.1:1053", "[::1]:1053"]
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            resolver_addresses: ["127.0.10.2:1053"]
        """)
        #expect(ws.isEmpty, "\(ws)")
    }

    @Test func listenWithoutDefaultVPCRefusesOthers() {
        let ws = warningLines("""
        listen: ["[::]:53"]
        vpcs:
          - {id: vpc-0a1, region: us-west-2, cidrs: [10.0.0.0/16]}
        """)
        #expect(ws == ["t.yaml:1: listen[0]: warning: listen address [::]:53 is not on loopback, so it is reachable from other hosts: it answers sources in 10.0.0.0/16 (vpc-0a1); other sources get REFUSED (V2, V3); make sure only those networks can reach it"])
    }
}

/// `upstream_sockets`: the UDP sockets per upstream target and event loop (P11).
@Suite struct UpstreamSocketsSettingTests {
    @Test func defaultAndRange() throws {
        #expect(try loaded("").model.settings.upstreamSockets == 1024)
        #expect(try loaded("upstream_sockets: 64").model.settings.upstreamSockets == 64)
        #expect(errorLines("upstream_sockets: 0").count == 1)
        #expect(errorLines("upstream_sockets: 70000").first?.hasPrefix("t.yaml:1: upstream_sockets: ") == true)
    }
}
