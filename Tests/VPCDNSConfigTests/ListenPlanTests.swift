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

    /// The table against the kernel: each row whose addresses this machine has, bound for real
    /// (two TCP listening sockets, the options above) on free ports in place of 53 and 54.
    @Test("the clash table is what Linux does: the second bind fails (EADDRINUSE) exactly on the clash rows")
    func clashMatchesTheKernel() throws {
        var checked = 0
        for row in Self.clashRows {
            let a = SocketEndpoint(row.0)!, b = SocketEndpoint(row.1)!
            // fd00::2 is not an address of this machine; port 0 binds anywhere.
            guard a.ip.description != "fd00::2", a.port != 0 else { continue }
            let p53 = try Self.freeTCPPort()
            var p54 = try Self.freeTCPPort()
            for _ in 0..<10 where p54 == p53 { p54 = try Self.freeTCPPort() }
            func moved(_ e: SocketEndpoint) -> SocketEndpoint { SocketEndpoint(ip: e.ip, port: e.port == 53 ? p53 : p54) }
            let first = Self.listenTCP(moved(a))
            guard first.fd >= 0 else { throw FixtureFailure("bind \(moved(a)): errno \(first.errno)") }
            defer { close(first.fd) }
            let second = Self.listenTCP(moved(b))
            if second.fd >= 0 { close(second.fd) }
            #expect((second.errno == EADDRINUSE) == row.2, "\(row.0) then \(row.1): errno \(second.errno)")
            #expect(second.fd >= 0 || second.errno == EADDRINUSE, "\(row.1): unexpected errno \(second.errno)")
            checked += 1
        }
        #expect(checked == Self.clashRows.count - 2)
    }

    struct FixtureFailure: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

    /// A TCP listening socket on `e` with SO_REUSEADDR (and IPV6_V6ONLY for IPv6), or errno.
    static func listenTCP(_ e: SocketEndpoint) -> (fd: Int32, errno: Int32) {
        let v6: Bool
        if case .v6 = e.ip { v6 = true } else { v6 = false }
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return (-1, errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var rc: Int32
        if v6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = e.port.bigEndian
            _ = inet_pton(AF_INET6, e.ip.description, &sa.sin6_addr)
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = e.port.bigEndian
            _ = inet_pton(AF_INET, e.ip.description, &sa.sin_addr)
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        if rc == 0 { rc = listen(fd, 8) }
        guard rc == 0 else {
            let err = errno
            close(fd)
            return (-1, err)
        }
        return (fd, 0)
    }

    /// A TCP port free on every address of both families right now.
    static func freeTCPPort() throws -> UInt16 {
        for _ in 0..<20 {
            let probe = listenTCP(SocketEndpoint("0.0.0.0:0")!)
            guard probe.fd >= 0 else { continue }
            var sa = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe.fd, $0, &len) } }
            close(probe.fd)
            let port = UInt16(bigEndian: sa.sin_port)
            let v6 = listenTCP(SocketEndpoint(ip: IPAddress("::")!, port: port))
            if v6.fd >= 0 { close(v6.fd); return port }
        }
        throw FixtureFailure("no free TCP port")
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
