import Foundation
import Testing
import VPCDNSConfig
import VPCDNSCore

/// O6 on a loaded configuration: `system` expanded (systemd-resolved's stub followed), own
/// listeners left out with a warning, an error naming the file and the addresses when nothing
/// usable remains.
@Suite("O6: system expansion and the upstream review")
struct UpstreamReviewTests {
    struct NoFile: Error, CustomStringConvertible { var description: String { "No such file or directory" } }

    /// `read` over an in-memory file table.
    static func files(_ table: [String: String]) -> (String) throws -> String {
        { path in
            guard let t = table[path] else { throw NoFile() }
            return t
        }
    }

    struct ExpandRow: CustomTestStringConvertible, Sendable {
        var what: String
        var etc: String?
        var systemd: String?
        var file: String
        var servers: [String]
        var note: String?
        var error: String?
        var testDescription: String { what }
    }

    static let expandRows: [ExpandRow] = [
        ExpandRow(what: "plain resolv.conf", etc: "nameserver 192.0.2.1\nnameserver 192.0.2.2\n", systemd: "nameserver 198.51.100.1\n",
                  file: "/etc/resolv.conf", servers: ["192.0.2.1:53", "192.0.2.2:53"]),
        ExpandRow(what: "the stub alone: resolved's file", etc: "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
                  systemd: "# This is /run/systemd/resolve/resolv.conf\nnameserver 198.51.100.1\nnameserver 2001:db8::1\n",
                  file: "/run/systemd/resolve/resolv.conf", servers: ["198.51.100.1:53", "[2001:db8::1]:53"],
                  note: "/etc/resolv.conf names only the systemd-resolved stub 127.0.0.53: the real upstreams come from /run/systemd/resolve/resolv.conf"),
        ExpandRow(what: "the stub beside another server: kept as written", etc: "nameserver 127.0.0.53\nnameserver 192.0.2.1\n",
                  systemd: "nameserver 198.51.100.1\n", file: "/etc/resolv.conf", servers: ["127.0.0.53:53", "192.0.2.1:53"]),
        ExpandRow(what: "the stub, resolved's file missing: the stub", etc: "nameserver 127.0.0.53\n", systemd: nil,
                  file: "/etc/resolv.conf", servers: ["127.0.0.53:53"],
                  note: "/etc/resolv.conf names only the systemd-resolved stub 127.0.0.53, and /run/systemd/resolve/resolv.conf cannot be read (No such file or directory): the stub is used"),
        ExpandRow(what: "the stub, resolved's file empty: the stub", etc: "nameserver 127.0.0.53\n", systemd: "# nothing\n",
                  file: "/etc/resolv.conf", servers: ["127.0.0.53:53"],
                  note: "/etc/resolv.conf names only the systemd-resolved stub 127.0.0.53, and /run/systemd/resolve/resolv.conf names no nameserver: the stub is used"),
        ExpandRow(what: "no nameserver line", etc: "search example.org\n", systemd: nil, file: "/etc/resolv.conf", servers: [],
                  note: "/etc/resolv.conf names no nameserver"),
        ExpandRow(what: "no resolv.conf", etc: nil, systemd: nil, file: "/etc/resolv.conf", servers: [],
                  error: "cannot read /etc/resolv.conf: No such file or directory"),
    ]

    @Test("system: which file, which addresses", arguments: expandRows)
    func expand(_ row: ExpandRow) {
        var table: [String: String] = [:]
        table["/etc/resolv.conf"] = row.etc
        table["/run/systemd/resolve/resolv.conf"] = row.systemd
        let s = SystemUpstreams.expand(read: Self.files(table))
        #expect(s.file == row.file)
        #expect(s.nameservers.map(\.description) == row.servers)
        #expect(s.notes == (row.note.map { [$0] } ?? []))
        #expect(s.error == row.error)
    }

    static func review(_ yaml: String, listenOverride: [String]? = nil, local: [String] = [], resolv: String) throws -> UpstreamReview {
        let l = try loaded(yaml, path: "v.yaml")
        let listeners = UpstreamReview.listeners(of: l.model, override: listenOverride?.map { SocketEndpoint($0)! })
        return UpstreamReview(loaded: l, listeners: listeners, localAddresses: local.map { IPAddress($0)! }) {
            SystemUpstreams.expand(read: files(["/etc/resolv.conf": resolv]))
        }
    }

    static let vpc = """
        vpcs:
          - id: vpc-0a1
            region: us-west-2
            cidrs: [10.0.0.0/16]
            resolver_addresses: ["10.0.0.2:53"]
            resolver_rules:
              - id: rslvr-rr-0001
                domain: corp.example.com
                type: FORWARD
                targets: ["10.0.0.2:53", "192.0.2.77:53"]

        """

    @Test("system naming vpcdns itself: left out with a warning; nothing left is an error naming resolv.conf")
    func systemIsUs() throws {
        let r = try Self.review("listen: [\"127.0.0.1:53\"]\nupstreams: [system]\n" + Self.vpc, resolv: "nameserver 127.0.0.1\n")
        #expect(r.plan.defaults.inUse.isEmpty)
        #expect(r.warnings.map(\.description) == [
            "v.yaml:2: upstreams[0]: warning: upstream 127.0.0.1:53 (system, from /etc/resolv.conf) left out: it is vpcdns's own listener 127.0.0.1:53: forwarding there would loop (O6)",
            "v.yaml:12: vpcs[0].resolver_rules[0].targets[0]: warning: upstream 10.0.0.2:53 left out: it is vpcdns's own listener 10.0.0.2:53: forwarding there would loop (O6)",
        ])
        #expect(r.errors.map(\.description) == [
            "v.yaml:2: upstreams: no usable upstream remains for the default upstreams (R9): 127.0.0.1:53 (system, from /etc/resolv.conf) left out: it is vpcdns's own listener 127.0.0.1:53: forwarding there would loop (O6)",
        ])
        // The rule keeps its other target.
        #expect(r.plan.rules.first?.targets.endpoints == [SocketEndpoint("192.0.2.77:53")!])
    }

    @Test("a wildcard listener covers this host's addresses; others remain")
    func wildcard() throws {
        let r = try Self.review("listen: [\"0.0.0.0:53\"]\nupstreams: [system, \"192.0.2.9:53\"]\n" + Self.vpc, local: ["10.9.8.7"],
                                resolv: "nameserver 10.9.8.7\nnameserver 127.0.0.1\nnameserver 192.0.2.1\n")
        #expect(r.errors.isEmpty)
        #expect(r.plan.defaults.endpoints.map(\.description) == ["192.0.2.1:53", "192.0.2.9:53"])
        #expect(r.plan.defaults.inUse.first?.origin == .system(file: "/etc/resolv.conf"))
        #expect(r.plan.defaults.leftOut.map(\.target.endpoint.description) == ["10.9.8.7:53", "127.0.0.1:53"])
        #expect(r.summaryLines.first == "upstreams: 192.0.2.1:53 (system, from /etc/resolv.conf), 192.0.2.9:53")
        #expect(r.summaryLines.contains("  left out: 127.0.0.1:53 (system, from /etc/resolv.conf): it is an address of this host and vpcdns listens on 0.0.0.0:53: forwarding there would loop"))
    }

    @Test("O7: an address covered by a wildcard that is not this host's is a warning; local and loopback ones are not")
    func coveredNotLocal() throws {
        let yaml = "listen: [\"0.0.0.0:53\", \"127.0.0.1:2053\"]\nupstreams: [\"192.0.2.9:53\"]\n" + Self.vpc
            + "    inbound_endpoints: [{id: rslvr-in-0123456789abcdef0, addresses: [\"127.0.10.53:53\"]}]\n"
        let far = try Self.review(yaml, local: ["10.9.8.7"], resolv: "")
        #expect(far.warnings.map(\.description).filter { $0.contains("O7") } == [
            "v.yaml:7: vpcs[0].resolver_addresses[0]: warning: 10.0.0.2:53 is covered by the wildcard 0.0.0.0:53 but is not an address of this host: no query sent to it reaches vpcdns here (O7)",
        ])
        let here = try Self.review(yaml, local: ["10.0.0.2"], resolv: "")
        #expect(!here.warnings.contains { $0.message.contains("O7") }, "\(here.warnings)")
    }

    @Test("--listen replaces listen for the guard too; a rule with no target left is an error")
    func overrideAndRule() throws {
        let yaml = "listen: [\"127.0.0.1:5353\"]\nupstreams: [\"127.0.0.1:5353\"]\n" + Self.vpc.replacingOccurrences(of: ", \"192.0.2.77:53\"", with: "")
        let r = try Self.review(yaml, listenOverride: ["127.0.0.1:1053"], resolv: "")
        #expect(r.plan.defaults.endpoints == [SocketEndpoint("127.0.0.1:5353")!])
        #expect(r.errors.map(\.description) == [
            "v.yaml:12: vpcs[0].resolver_rules[0].targets: no usable upstream remains for FORWARD rule rslvr-rr-0001 (corp.example.com) of vpc-0a1: 10.0.0.2:53 left out: it is vpcdns's own listener 10.0.0.2:53: forwarding there would loop (O6)",
        ])
    }

    @Test("an unreadable resolv.conf is an error at the system entry")
    func unreadable() throws {
        let l = try loaded("upstreams: [system]\n", path: "v.yaml")
        let r = UpstreamReview(loaded: l, listeners: [], localAddresses: []) { SystemUpstreams.expand(read: Self.files([:])) }
        #expect(r.errors.map(\.description).first == "v.yaml:1: upstreams[0]: system: cannot read /etc/resolv.conf: No such file or directory")
    }
}
