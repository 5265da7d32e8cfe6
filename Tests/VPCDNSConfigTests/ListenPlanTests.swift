import Foundation
import Testing
import VPCDNSConfig
import VPCDNSCore

/// O7: which sockets open and which socket serves each address (`ListenPlan`), and the
/// `check` errors for the combinations Linux really refuses to bind.
@Suite("Listen plan: wildcards cover addresses of their family and port (O7)")
struct ListenPlanTests {
    struct Row: CustomTestStringConvertible, Sendable {
        var name: String
        var addresses: [String]
        /// Each address to the socket that serves it (itself when it opens one).
        var sockets: [String: String]
        var testDescription: String { name }
    }

    static let rows: [Row] = [
        Row(name: "specific addresses: each its own socket",
            addresses: ["127.0.0.1:53", "127.0.0.2:53"],
            sockets: ["127.0.0.1:53": "127.0.0.1:53", "127.0.0.2:53": "127.0.0.2:53"]),
        Row(name: "0.0.0.0 covers IPv4 addresses on its port, listed before or after it",
            addresses: ["10.0.0.2:53", "0.0.0.0:53", "127.0.20.2:53"],
            sockets: ["10.0.0.2:53": "0.0.0.0:53", "0.0.0.0:53": "0.0.0.0:53", "127.0.20.2:53": "0.0.0.0:53"]),
        Row(name: "a wildcard covers nothing on another port",
            addresses: ["0.0.0.0:53", "10.0.0.2:5353"],
            sockets: ["0.0.0.0:53": "0.0.0.0:53", "10.0.0.2:5353": "10.0.0.2:5353"]),
        Row(name: "[::] (IPV6_V6ONLY) does not cover IPv4; 0.0.0.0 does not cover IPv6",
            addresses: ["[::]:53", "10.0.0.2:53", "0.0.0.0:5353", "[fd00::2]:5353"],
            sockets: ["[::]:53": "[::]:53", "10.0.0.2:53": "10.0.0.2:53", "0.0.0.0:5353": "0.0.0.0:5353", "[fd00::2]:5353": "[fd00::2]:5353"]),
        Row(name: "[::] covers IPv6 addresses, ::1 included; both wildcards open",
            addresses: ["0.0.0.0:53", "[::]:53", "[fd00::2]:53", "[::1]:53", "10.0.0.3:53"],
            sockets: ["0.0.0.0:53": "0.0.0.0:53", "[::]:53": "[::]:53", "[fd00::2]:53": "[::]:53", "[::1]:53": "[::]:53", "10.0.0.3:53": "0.0.0.0:53"]),
        Row(name: "port 0: each socket draws its own port, so nothing is covered",
            addresses: ["0.0.0.0:0", "127.0.0.2:0"],
            sockets: ["0.0.0.0:0": "0.0.0.0:0", "127.0.0.2:0": "127.0.0.2:0"]),
        Row(name: "a repeated address is served once",
            addresses: ["127.0.0.1:53", "127.0.0.1:53"],
            sockets: ["127.0.0.1:53": "127.0.0.1:53"]),
    ]

    @Test("which socket serves each address", arguments: rows)
    func table(_ row: Row) throws {
        let plan = ListenPlan(addresses: row.addresses.enumerated().map { (SocketEndpoint($1)!, "k[\($0)]") })
        let got = Dictionary(plan.entries.map { ($0.address.description, $0.socket.description) }, uniquingKeysWith: { a, _ in a })
        #expect(got == row.sockets)
        // Every address stays a listener (V1, O6); only those serving themselves open a socket.
        #expect(Set(plan.addresses.map(\.description)) == Set(row.addresses))
        #expect(Set(plan.sockets.map(\.description)) == Set(row.sockets.values))
        // No address is planned twice, no socket opened twice (a repeated address included).
        #expect(plan.entries.count == row.sockets.count, "\(plan.entries)")
        #expect(plan.sockets.count == Set(row.sockets.values).count, "\(plan.sockets)")
    }

    @Test("a model's plan keys each address by its configuration path; --listen replaces listen")
    func fromModel() throws {
        let c = try loaded("""
            listen: ["0.0.0.0:1053", "[::]:1053"]
            vpcs:
              - id: vpc-0a1
                region: us-west-2
                cidrs: [10.0.0.0/16]
                resolver_addresses: ["127.0.10.2:1053", "127.0.10.3:2053"]
              - id: vpc-0b2
                region: us-west-2
                cidrs: [10.1.0.0/16]
                inbound_endpoints: [{id: rslvr-in-0123456789abcdef0, addresses: ["[fd00::53]:1053"]}]
            """)
        let plan = ListenPlan(model: c.model)
        #expect(plan.sockets.map(\.description) == ["0.0.0.0:1053", "[::]:1053", "127.0.10.3:2053"])
        #expect(plan.covered(by: SocketEndpoint("0.0.0.0:1053")!).map(\.key) == ["vpcs[0].resolver_addresses[0]"])
        #expect(plan.covered(by: SocketEndpoint("[::]:1053")!).map(\.key) == ["vpcs[1].inbound_endpoints[0].addresses[0]"])
        #expect(plan.coveredLines == [
            "serving 127.0.10.2:1053 (vpcs[0].resolver_addresses[0]) on the wildcard 0.0.0.0:1053",
            "serving [fd00::53]:1053 (vpcs[1].inbound_endpoints[0].addresses[0]) on the wildcard [::]:1053",
        ])
        // O6 compares upstream targets with every address served, covered ones included.
        #expect(UpstreamReview.listeners(of: c.model, override: nil).count == 5)

        let over = ListenPlan(model: c.model, override: [SocketEndpoint("127.0.0.1:1053")!])
        #expect(over.sockets.map(\.description) == ["127.0.0.1:1053", "127.0.10.2:1053", "127.0.10.3:2053", "[fd00::53]:1053"])
        #expect(over.entries.first?.key == "--listen[0]")
    }

    /// The bind experiments behind `tcpClash` (Linux, SO_REUSEADDR on every socket, as the
    /// listeners and the HTTP servers set it; IPV6_V6ONLY on IPv6 DNS sockets): TCP listening
    /// sockets on 0.0.0.0:P and 127.0.0.1:P refuse each other in either order (EADDRINUSE),
    /// [::]:P and [::1]:P too; [::]:P and 127.0.0.1:P do not; UDP sockets never refuse each other.
    static let clashRows: [(String, String, Bool)] = [
        ("0.0.0.0:53", "127.0.0.1:53", true),
        ("127.0.0.1:53", "0.0.0.0:53", true),
        ("[::]:53", "[::1]:53", true),
        ("[fd00::2]:53", "[::]:53", true),
        ("0.0.0.0:53", "0.0.0.0:53", true),
        ("[::]:53", "127.0.0.1:53", false),
        ("0.0.0.0:53", "[::1]:53", false),
        ("0.0.0.0:53", "127.0.0.1:54", false),
        ("127.0.0.1:53", "127.0.0.2:53", false),
        ("0.0.0.0:0", "127.0.0.1:0", false),
    ]

    @Test("TCP clashes: a wildcard and an address of its family on one port", arguments: clashRows)
    func clash(_ row: (String, String, Bool)) {
        #expect(ListenPlan.tcpClash(SocketEndpoint(row.0)!, SocketEndpoint(row.1)!) == row.2)
    }

    @Test("check: a resolver address covered by a wildcard listen passes")
    func coveredPasses() {
        let yaml = """
            listen: ["0.0.0.0:1053"]
            vpcs:
              - id: vpc-0a1
                region: us-west-2
                cidrs: [10.0.0.0/16]
                resolver_addresses: ["127.0.10.2:1053"]
                inbound_endpoints: [{id: rslvr-in-0123456789abcdef0, addresses: ["127.0.10.53:1053"]}]
            """
        #expect(errorLines(yaml) == [])
    }

    @Test("check: metrics or console beside a DNS wildcard of its family and port is an error naming both entries")
    func httpClashes() {
        // metrics on a specific address under the DNS wildcard `listen[0]`.
        let a = errorLines("""
            listen: ["0.0.0.0:1053"]
            metrics: "127.0.0.1:1053"
            """)
        #expect(a == ["t.yaml:2: metrics: metrics 127.0.0.1:1053 cannot listen beside listen[0] 0.0.0.0:1053 (line 1): on one port, "
                      + "TCP refuses a wildcard together with an address of its family; use another port for metrics"])
        // console as a wildcard over a VPC's resolver address (which opens a socket: only
        // DNS wildcards cover DNS addresses).
        let b = errorLines("""
            listen: ["127.0.0.1:1053"]
            console: "0.0.0.0:2053"
            vpcs:
              - id: vpc-0a1
                region: us-west-2
                cidrs: [10.0.0.0/16]
                resolver_addresses: ["127.0.10.2:2053"]
            """)
        #expect(b.count == 1)
        #expect(b.first?.contains("console 0.0.0.0:2053 cannot listen beside vpcs[0].resolver_addresses[0] 127.0.10.2:2053 (line 7)") == true, "\(b)")
        // metrics and console against each other.
        let c = errorLines("""
            listen: ["127.0.0.1:1053"]
            metrics: "[::]:9153"
            console: "[::1]:9153"
            """)
        #expect(c.count == 1)
        #expect(c.first?.contains("console [::1]:9153 cannot listen beside metrics [::]:9153 (line 2)") == true, "\(c)")
        // Other families or ports: no error.
        #expect(errorLines("""
            listen: ["[::]:1053"]
            metrics: "127.0.0.1:1053"
            console: "0.0.0.0:1054"
            """) == [])
    }

    @Test("check: an IPv4-mapped listener is an error; a wildcard resolver address a warning")
    func mappedAndWildcardResolver() {
        let e = errorLines("""
            listen: ["[::ffff:127.0.0.1]:1053"]
            """)
        #expect(e.count == 1 && e.first?.contains("listen[0]: [::ffff:127.0.0.1]:1053 is an IPv4-mapped IPv6 address") == true, "\(e)")
        let w = warningLines("""
            listen: ["127.0.0.1:1053"]
            vpcs:
              - id: vpc-0a1
                region: us-west-2
                cidrs: [10.0.0.0/16]
                resolver_addresses: ["0.0.0.0:2053"]
            """)
        #expect(w.contains { $0.contains("vpcs[0].resolver_addresses[0]: warning: 0.0.0.0:2053 is a wildcard") }, "\(w)")
    }

    @Test("check's summary shows which socket serves which address, in text and JSON")
    func summary() throws {
        let c = try loaded("""
            listen: ["0.0.0.0:1053", "127.0.0.1:2053"]
            vpcs:
              - id: vpc-0a1
                region: us-west-2
                cidrs: [10.0.0.0/16]
                resolver_addresses: ["127.0.10.2:1053"]
            """)
        let s = CheckSummary(path: "t.yaml", result: .success(c))
        #expect(s.text.contains("""
            listeners (udp and tcp each):
              0.0.0.0:1053 (listen[0])
                also serves 127.0.10.2:1053 (vpcs[0].resolver_addresses[0]): covered by the wildcard, no socket of its own
              127.0.0.1:2053 (listen[1])
            """), "\(s.text)")
        let json = s.json.rendered()
        #expect(json.contains(#""listeners":[{"socket":"0.0.0.0:1053","key":"listen[0]","serves":[{"address":"0.0.0.0:1053","key":"listen[0]"},{"address":"127.0.10.2:1053","key":"vpcs[0].resolver_addresses[0]"}]}"#), "\(json)")
    }
}
