import DNSWire
import Testing
@testable import VPCDNSCore

/// O6's pure decisions: which upstream targets are vpcdns itself, resolv.conf parsing, the
/// systemd-resolved stub, and loop-probe names.
@Suite("O6: upstream guard, resolv.conf, loop probes")
struct UpstreamGuardTests {
    struct Row: CustomTestStringConvertible, Sendable {
        var listeners: [String]
        var local: [String] = ["10.1.2.3", "2001:db8::7"]
        var target: String
        /// nil: used; otherwise the listener the reason names, and whether it is the wildcard kind.
        var leftOutBy: String?
        var wildcard = false
        var testDescription: String { "\(target) with listeners \(listeners) -> \(leftOutBy.map { "left out by \($0)" } ?? "used")" }
    }

    static let rows: [Row] = [
        // Named listeners: the exact address and port only.
        Row(listeners: ["127.0.0.1:53"], target: "127.0.0.1:53", leftOutBy: "127.0.0.1:53"),
        Row(listeners: ["127.0.0.1:53"], target: "127.0.0.1:5353", leftOutBy: nil),
        Row(listeners: ["127.0.0.1:1053"], target: "127.0.0.2:1053", leftOutBy: nil),
        Row(listeners: ["[::1]:53"], target: "[::1]:53", leftOutBy: "[::1]:53"),
        Row(listeners: ["10.1.2.3:53"], target: "10.1.2.3:53", leftOutBy: "10.1.2.3:53"),
        // Sending to the unspecified address reaches this host's loopback.
        Row(listeners: ["127.0.0.1:53"], target: "0.0.0.0:53", leftOutBy: "127.0.0.1:53"),
        Row(listeners: ["[::1]:53"], target: "[::]:53", leftOutBy: "[::1]:53"),
        // A v4 wildcard covers every local v4 address on its port, all of 127/8 included.
        Row(listeners: ["0.0.0.0:53"], target: "127.0.0.1:53", leftOutBy: "0.0.0.0:53", wildcard: true),
        Row(listeners: ["0.0.0.0:53"], target: "127.0.0.53:53", leftOutBy: "0.0.0.0:53", wildcard: true),
        Row(listeners: ["0.0.0.0:53"], target: "10.1.2.3:53", leftOutBy: "0.0.0.0:53", wildcard: true),
        Row(listeners: ["0.0.0.0:53"], target: "10.1.2.4:53", leftOutBy: nil),
        Row(listeners: ["0.0.0.0:53"], target: "10.1.2.3:54", leftOutBy: nil),
        Row(listeners: ["0.0.0.0:53"], target: "[2001:db8::7]:53", leftOutBy: nil),
        Row(listeners: ["0.0.0.0:53"], target: "[::ffff:10.1.2.3]:53", leftOutBy: "0.0.0.0:53", wildcard: true),
        // A v6 wildcard is dual-stack on Linux: local v6 and v4 destinations.
        Row(listeners: ["[::]:53"], target: "[2001:db8::7]:53", leftOutBy: "[::]:53", wildcard: true),
        Row(listeners: ["[::]:53"], target: "[::1]:53", leftOutBy: "[::]:53", wildcard: true),
        Row(listeners: ["[::]:53"], target: "127.0.0.1:53", leftOutBy: "[::]:53", wildcard: true),
        Row(listeners: ["[::]:53"], target: "[2001:db8::8]:53", leftOutBy: nil),
        // A remote resolver is never left out.
        Row(listeners: ["0.0.0.0:53", "[::]:53"], target: "192.0.2.53:53", leftOutBy: nil),
        Row(listeners: [], target: "127.0.0.1:53", leftOutBy: nil),
    ]

    @Test("own and wildcard listeners", arguments: rows)
    func guardTable(_ row: Row) {
        let g = UpstreamGuard(listeners: row.listeners.map { SocketEndpoint($0)! }, localAddresses: row.local.map { IPAddress($0)! })
        let reason = g.reason(for: SocketEndpoint(row.target)!)
        switch (reason, row.leftOutBy) {
        case (nil, nil): break
        case (.ownListener(let l)?, let by?): #expect(!row.wildcard && l.description == by)
        case (.wildcardListener(let l)?, let by?): #expect(row.wildcard && l.description == by)
        default: Issue.record("got \(String(describing: reason))")
        }
    }

    @Test("review keeps order, drops duplicates, and says why")
    func review() {
        let g = UpstreamGuard(listeners: [SocketEndpoint("0.0.0.0:53")!], localAddresses: [])
        let targets = ["127.0.0.1:53", "192.0.2.1:53", "192.0.2.1:53", "198.51.100.1:53"].enumerated().map {
            UpstreamTarget(endpoint: SocketEndpoint($1)!, origin: .system(file: "/etc/resolv.conf"), key: "upstreams[\($0)]")
        }
        let set = g.review(targets, notes: ["n"])
        #expect(set.endpoints.map(\.description) == ["192.0.2.1:53", "198.51.100.1:53"])
        #expect(set.leftOut.map(\.description) == [
            "127.0.0.1:53 (system, from /etc/resolv.conf) left out: it is an address of this host and vpcdns listens on 0.0.0.0:53: forwarding there would loop",
        ])
        #expect(set.notes == ["n"])
    }

    @Test("the plan reduces FORWARD rules to the targets in use")
    func applied() throws {
        let rule = ResolverRule(id: "rslvr-rr-1", domain: try DNSName("corp.example"), kind: .forward,
                                targets: [SocketEndpoint("127.0.0.1:53")!, SocketEndpoint("192.0.2.1:53")!])
        var model = TestModel.model
        model.vpcs[0].resolverRules = [rule]
        let g = UpstreamGuard(listeners: [SocketEndpoint("127.0.0.1:53")!], localAddresses: [])
        let set = g.review(rule.targets.map { UpstreamTarget(endpoint: $0, key: "k") })
        let plan = UpstreamPlan(defaults: UpstreamSet(), rules: [RuleUpstreams(vpcID: model.vpcs[0].id, ruleID: rule.id, domain: rule.domain, targets: set)])
        #expect(plan.applied(to: model).vpcs[0].resolverRules[0].targets == [SocketEndpoint("192.0.2.1:53")!])
    }

    @Test("resolv.conf: nameserver lines, IPv4 and IPv6, comments, duplicates, at most three")
    func parse() {
        let text = """
            # Generated by NetworkManager
            search example.org corp.example.net
            options edns0 trust-ad
            nameserver 10.0.0.2
            ; nameserver 10.9.9.9
            nameserver   2001:db8::53   # trailing comment
            nameserver 10.0.0.2
            nameserver fe80::1%eth0
            nameserver not-an-address
            nameserver\t192.0.2.7
            nameserver 192.0.2.8
            """
        #expect(ResolvConf.nameservers(in: text).map(\.description) == ["10.0.0.2:53", "[2001:db8::53]:53", "192.0.2.7:53"])
        #expect(ResolvConf.nameservers(in: "").isEmpty)
        #expect(ResolvConf.nameservers(in: "nameserver 127.0.0.53\r\noptions edns0\r\n").map(\.description) == ["127.0.0.53:53"])
        #expect(ResolvConf.nameservers(in: "nameserver").isEmpty)
    }

    @Test("the systemd-resolved stub, alone or not", arguments: [
        ("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n", true),
        ("nameserver 127.0.0.54\n", true),
        ("nameserver 127.0.0.53\nnameserver 10.0.0.2\n", false),
        ("nameserver 127.0.0.1\n", false),
        ("", false),
    ])
    func stub(_ text: String, _ only: Bool) {
        #expect(ResolvConf.isSystemdStubOnly(ResolvConf.nameservers(in: text)) == only)
    }

    @Test("probe names: made from a token, recognised in any case, nothing else matches")
    func probeNames() throws {
        let n = LoopProbe.name(token: 0x00ab_cdef_0123_4567)
        #expect(n.description == "00abcdef01234567.vpcdns-loop-probe.")
        #expect(LoopProbe.token(in: n) == 0x00ab_cdef_0123_4567)
        #expect(LoopProbe.isProbeName(n))
        let upper = try DNSName(wire: [16] + Array("00ABCDEF01234567".utf8) + [17] + Array("VPCDNS-LOOP-PROBE".utf8) + [0])
        #expect(LoopProbe.token(in: upper) == 0x00ab_cdef_0123_4567)
        #expect(LoopProbe.isProbeName(upper))
        #expect(LoopProbe.isProbeName(try DNSName("x.y.vpcdns-loop-probe")))
        #expect(LoopProbe.token(in: try DNSName("x.y.vpcdns-loop-probe")) == nil)
        for other in ["vpcdns-loop-probe.example", "www.example.com", "avpcdns-loop-probe", "00abcdef01234567.vpcdns-loop-probe.invalid", "."] {
            let name = try DNSName(other)
            #expect(!LoopProbe.isProbeName(name), "\(other)")
            #expect(LoopProbe.token(in: name) == nil, "\(other)")
        }
        // A label whose bytes happen to spell the probe label inside another label.
        let tricky = try DNSName(wire: [19, UInt8(ascii: "a"), 17] + Array("vpcdns-loop-probe".utf8) + [0])
        #expect(!LoopProbe.isProbeName(tricky))
    }
}
