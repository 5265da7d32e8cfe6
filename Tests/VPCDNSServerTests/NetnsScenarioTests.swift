import Foundation
import Testing
import VPCDNSCore
@testable import VPCDNSServer

#if canImport(Glibc)
import Glibc
#endif

/// Two network namespaces as two VPC test hosts (README: "platform engineers point test
/// hosts at it"). Each namespace has only a veth /30 to the root namespace (no default
/// route), and its own /etc/netns/NAME/resolv.conf naming vpcdns on the host side of its
/// veth. Packets go only to those /30 addresses and to loopback.
enum Netns {
    static let ip = "/usr/sbin/ip"
    static let prefix = "vpcdns-t-"
    /// Interface names are at most 15 bytes: `vpt` + 4 hex + role + side.
    static let linkPrefix = "vpt"
    /// True when this process created /etc/netns (so it removes it again once empty).
    nonisolated(unsafe) static var createdEtcNetns = false

    @discardableResult
    static func run(_ args: [String], check: Bool = true) throws -> Command.Result {
        let r = try Command.run(ip, args, timeout: .seconds(10))
        if check && r.exitCode != 0 {
            throw FixtureError("ip \(args.joined(separator: " ")) failed (\(r.exitCode)): \(r.error)\(r.output)")
        }
        return r
    }

    /// Nil when `ip netns add` works here; otherwise why not.
    static func unavailableReason() -> String? {
        guard geteuid() == 0 else { return "not root (euid \(geteuid())): cannot create network namespaces" }
        guard FileManager.default.isExecutableFile(atPath: ip) else { return "\(ip) is missing (iproute2)" }
        let name = "\(prefix)probe-\(UInt32.random(in: 0...0xFFFF_FFFF))"
        guard let add = try? Command.run(ip, ["netns", "add", name], timeout: .seconds(5)) else { return "cannot run \(ip)" }
        defer { _ = try? Command.run(ip, ["netns", "del", name], timeout: .seconds(5)) }
        if add.exitCode != 0 { return "`ip netns add` failed: \(add.error.trimmingCharacters(in: .whitespacesAndNewlines))" }
        return nil
    }

    /// What a namespace test does first: where namespaces are unavailable it says so loudly
    /// (naming `test`) and cancels; then it requires the vpcdns binary and clears what a
    /// crashed earlier run left.
    static func prepare(_ test: String) throws {
        if let reason = unavailableReason() {
            print("\n!!!!! \(test) SKIPPED: network namespaces unavailable: \(reason) !!!!!\n")
            try Test.cancel("skipped: network namespaces unavailable: \(reason)")
        }
        _ = try VPCDNSBinary.require()
        preClean()
    }

    /// 4 random hex digits, shared by one run's namespace and link names.
    static func newTag() -> String { String(format: "%04x", UInt16.random(in: 0...0xFFFF)) }

    /// Removes namespaces, links and /etc/netns folders left by a crashed earlier run: those
    /// of this suite's prefix older than two minutes (a run takes a few seconds, so a younger
    /// one may belong to a run going on right now in another checkout).
    static func preClean() {
        let now = Date()
        var alive: [String] = []
        if let names = try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns") {
            for name in names where name.hasPrefix(prefix) {
                let created = (try? FileManager.default.attributesOfItem(atPath: "/var/run/netns/\(name)")[.modificationDate]) as? Date
                if let created, now.timeIntervalSince(created) < 120 {
                    alive.append(name)
                } else {
                    _ = try? run(["netns", "del", name], check: false)
                }
            }
        }
        // A namespace's veth pair goes with it; a link is left only when a run died between
        // creating the pair and moving it. Its suffix then names no living namespace.
        if let links = try? run(["-o", "link", "show"], check: false) {
            for line in links.output.split(separator: "\n") {
                // "12: vpt1a2ba0@if11: <...>"
                let fields = line.split(separator: " ")
                guard fields.count > 1 else { continue }
                let name = fields[1].split(separator: "@").first.map(String.init)?.trimmingCharacters(in: CharacterSet(charactersIn: ":")) ?? ""
                guard name.hasPrefix(linkPrefix) && name.count == 9 else { continue }
                let suffix = String(name.dropFirst(3).prefix(4))
                if !alive.contains(where: { $0.hasSuffix("-\(suffix)") }) { _ = try? run(["link", "del", name], check: false) }
            }
        }
        if let dirs = try? FileManager.default.contentsOfDirectory(atPath: "/etc/netns") {
            for d in dirs where d.hasPrefix(prefix) && !alive.contains(d) { try? FileManager.default.removeItem(atPath: "/etc/netns/\(d)") }
        }
    }

    /// `path arguments` run inside `namespace`: `ip netns exec` switches namespace and then
    /// execs the command itself (no fork), so the pid a caller spawns is the command's own and
    /// its signals (SIGTERM, SIGHUP) reach it directly.
    static func inNamespace(_ namespace: String, _ path: String, _ arguments: [String]) -> (String, [String]) {
        (ip, ["netns", "exec", namespace, path] + arguments)
    }

    /// One layer-2 network of namespaces: a namespace holding only a bridge, and member
    /// namespaces joined to it by veth pairs that are created inside the namespaces, so the
    /// root namespace gains no link or address and deleting the namespaces removes it all.
    /// Members have their address on the bridge's prefix and no other route: a packet can only
    /// reach another member (or the member's own loopback).
    final class Segment {
        let tag: String
        let prefixLength: Int
        var bridgeNamespace: String { "\(Netns.prefix)sw-\(tag)" }
        private(set) var members: [Member] = []

        /// `tag`: 4 hex digits shared by this run's namespace names (`vpcdns-t-ROLE-TAG`).
        init(tag: String, prefixLength: Int) {
            self.tag = tag
            self.prefixLength = prefixLength
        }

        func create() throws {
            try Netns.run(["netns", "add", bridgeNamespace])
            try Netns.run(["-n", bridgeNamespace, "link", "add", "br0", "type", "bridge"])
            try Netns.run(["-n", bridgeNamespace, "link", "set", "br0", "up"])
        }

        /// A new namespace `vpcdns-t-ROLE-TAG` on the bridge with `address`, its link `eth0`.
        func attach(_ role: String, address: String) throws -> Member {
            let member = Member(namespace: "\(Netns.prefix)\(role)-\(tag)", address: address)
            let port = "p\(members.count)"
            try Netns.run(["netns", "add", member.namespace])
            members.append(member)
            try Netns.run(["-n", bridgeNamespace, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", member.namespace])
            try Netns.run(["-n", bridgeNamespace, "link", "set", port, "master", "br0"])
            try Netns.run(["-n", bridgeNamespace, "link", "set", port, "up"])
            try Netns.run(["-n", member.namespace, "addr", "add", "\(address)/\(prefixLength)", "dev", "eth0"])
            try Netns.run(["-n", member.namespace, "link", "set", "eth0", "up"])
            try Netns.run(["-n", member.namespace, "link", "set", "lo", "up"])
            return member
        }

        /// Deletes every namespace of the segment (their links go with them). Processes the
        /// test started inside must be stopped first.
        func destroy() {
            for m in members { _ = try? Netns.run(["netns", "del", m.namespace], check: false) }
            _ = try? Netns.run(["netns", "del", bridgeNamespace], check: false)
        }
    }

    /// A namespace on a `Segment`.
    struct Member {
        let namespace: String
        let address: String

        func exec(_ command: [String], timeout: Duration = .seconds(10)) throws -> Command.Result {
            let (path, args) = Netns.inNamespace(namespace, command[0], Array(command.dropFirst()))
            return try Command.run(path, args, timeout: timeout)
        }

        /// `dig @server -p port NAME TYPE` from this namespace (`+time=1 +tries=1` unless
        /// `options` say otherwise). `server` is a member too: a test only ever asks addresses in
        /// namespaces it made.
        func dig(_ name: String, _ type: String = "A", server: Member, port: Int = 53, options: [String] = []) throws -> DigRun.Result {
            var args = ["/usr/bin/dig", "@\(server.address)", "-p", "\(port)", name, type]
            if !options.contains(where: { $0.hasPrefix("+time") }) { args.append("+time=1") }
            if !options.contains(where: { $0.hasPrefix("+tries") || $0.hasPrefix("+retry") }) { args.append("+tries=1") }
            let r = try exec(args + options)
            return DigRun.parse(r.output + r.error)
        }
    }

    /// One test host: a namespace, a veth pair, addresses, resolv.conf.
    struct Host {
        var namespace: String
        var hostLink: String
        var nsLink: String
        var hostAddress: String  // vpcdns listens here
        var nsAddress: String    // the test host's own address
        var prefixLength = 30

        init(namespace: String, hostLink: String, nsLink: String, hostAddress: String, nsAddress: String, prefixLength: Int = 30) {
            self.namespace = namespace
            self.hostLink = hostLink
            self.nsLink = nsLink
            self.hostAddress = hostAddress
            self.nsAddress = nsAddress
            self.prefixLength = prefixLength
        }

        /// `vpcdns-t-ROLE-TAG`, its veth `vptTAG` + `link` + 0 (host side) and 1 (namespace side).
        init(role: String, tag: String, link: Character, hostAddress: String, nsAddress: String, prefixLength: Int = 30) {
            self.init(namespace: "\(Netns.prefix)\(role)-\(tag)", hostLink: "\(Netns.linkPrefix)\(tag)\(link)0",
                      nsLink: "\(Netns.linkPrefix)\(tag)\(link)1", hostAddress: hostAddress, nsAddress: nsAddress, prefixLength: prefixLength)
        }

        func create() throws {
            try Netns.run(["netns", "add", namespace])
            try Netns.run(["link", "add", hostLink, "type", "veth", "peer", "name", nsLink, "netns", namespace])
            try Netns.run(["addr", "add", "\(hostAddress)/\(prefixLength)", "dev", hostLink])
            try Netns.run(["link", "set", hostLink, "up"])
            try Netns.run(["-n", namespace, "addr", "add", "\(nsAddress)/\(prefixLength)", "dev", nsLink])
            try Netns.run(["-n", namespace, "link", "set", nsLink, "up"])
            try Netns.run(["-n", namespace, "link", "set", "lo", "up"])
            let dir = "/etc/netns/\(namespace)"
            Netns.createdEtcNetns = Netns.createdEtcNetns || !FileManager.default.fileExists(atPath: "/etc/netns")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try "nameserver \(hostAddress)\noptions timeout:1 attempts:2\n"
                .write(toFile: "\(dir)/resolv.conf", atomically: true, encoding: .utf8)
        }

        func destroy() {
            _ = try? Netns.run(["netns", "del", namespace], check: false)
            _ = try? Netns.run(["link", "del", hostLink], check: false)  // gone with its peer already, normally
            try? FileManager.default.removeItem(atPath: "/etc/netns/\(namespace)")
            // /etc/netns itself, when this suite made it and it is empty again.
            if Netns.createdEtcNetns, (try? FileManager.default.contentsOfDirectory(atPath: "/etc/netns"))?.isEmpty == true {
                try? FileManager.default.removeItem(atPath: "/etc/netns")
            }
        }

        /// Runs a command inside the namespace (its resolv.conf bind-mounted by `ip netns exec`).
        func exec(_ command: [String]) throws -> Command.Result {
            try Netns.run(["netns", "exec", namespace] + command, check: false)
        }

        /// `dig NAME TYPE` inside the namespace, with no @server: the namespace's resolv.conf.
        func dig(_ name: String, _ type: String = "A") throws -> DigRun.Result {
            let r = try exec(["/usr/bin/dig", name, type, "+time=1", "+tries=2"])
            return DigRun.parse(r.output + r.error)
        }
    }
}

@Suite("Test hosts in network namespaces use vpcdns through their resolv.conf", .serialized)
struct NetnsScenarioTests {
    @Test("Two namespaces, two VPCs: dig and nslookup with no server get each VPC's own answer")
    func twoHosts() async throws {
        try Netns.prepare("NetnsScenarioTests")
        let tag = Netns.newTag()
        let app = Netns.Host(role: "app", tag: tag, link: "a", hostAddress: "10.200.1.1", nsAddress: "10.200.1.2")
        let db = Netns.Host(role: "db", tag: tag, link: "d", hostAddress: "10.200.2.1", nsAddress: "10.200.2.2")
        do {
            defer {
                app.destroy()
                db.destroy()
            }
            try app.create()
            try db.create()
            try await scenario(app: app, db: db)
        }

        // Cleaned up: no namespace, link or /etc/netns folder of this run is left.
        let ns = try Netns.run(["netns", "list"]).output
        #expect(!ns.contains(app.namespace) && !ns.contains(db.namespace), "\(ns)")
        let links = try Netns.run(["-o", "link", "show"]).output
        #expect(!links.contains("vpt\(tag)"), "\(links)")
        #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(app.namespace)"))
        #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(db.namespace)"))
    }

    private func scenario(app: Netns.Host, db: Netns.Host) async throws {

        // No default route: the /30 is all a namespace can reach.
        for host in [app, db] {
            let routes = try Netns.run(["-n", host.namespace, "route", "show"]).output
            #expect(!routes.contains("default"), "\(host.namespace): \(routes)")
        }

        let publicNSD = try await NSDFixture(zones: try ServeHarness.publicZones())
        defer { publicNSD.stop() }
        let dir = try ServeHarness.makeDirectory("vpcdns-netns")
        defer { try? FileManager.default.removeItem(at: dir) }
        try ServeHarness.writeZoneFiles(to: dir)
        let queryLog = dir.appendingPathComponent("queries.jsonl").path
        let config = dir.appendingPathComponent("vpcdns.yaml")
        try ServeHarness.config(
            listen: ["\(app.hostAddress):53", "\(db.hostAddress):53"], upstream: publicNSD.endpoint,
            corp: publicNSD.endpoint, hole: publicNSD.endpoint,
            appClients: ["\(app.nsAddress)/32"], dbClients: ["\(db.nsAddress)/32"],
            appResolver: nil, appInbound: nil, dbResolver: nil, queryLog: queryLog, options: .init()
        ).write(to: config, atomically: true, encoding: .utf8)
        let server = try ServeProcess(arguments: ["serve", "--config", config.path], directory: dir)
        defer { server.stop() }
        let lines = try await server.waitListening(count: 4)
        #expect(lines == ["listening on udp 10.200.1.1:53", "listening on tcp 10.200.1.1:53",
                          "listening on udp 10.200.2.1:53", "listening on tcp 10.200.2.1:53"])

        // app: the endpoint's private addresses, with AA, from its resolv.conf's server.
        let appEC2 = try app.dig("ec2.us-west-2.amazonaws.com")
        print("[netns \(app.namespace)] dig ec2.us-west-2.amazonaws.com\n\(appEC2.output)")
        #expect(appEC2.status == "NOERROR" && appEC2.aa, "\(appEC2.output)")
        #expect(Set(appEC2.rdata("A")) == ["10.0.1.10", "10.0.2.10"], "\(appEC2.output)")
        #expect(appEC2.output.contains("SERVER: 10.200.1.1#53"), "\(appEC2.output)")
        let appPHZ = try app.dig("www.myservice.internal")
        #expect(appPHZ.rdata("A") == ["10.0.5.10"] && appPHZ.aa, "\(appPHZ.output)")
        let appAlias = try app.dig("db.myservice.internal")
        #expect(appAlias.rdata("A") == ["10.0.1.20"], "\(appAlias.output)")

        // database: the public answer from the NSD upstream; app's PHZ does not exist there.
        let dbEC2 = try db.dig("ec2.us-west-2.amazonaws.com")
        print("[netns \(db.namespace)] dig ec2.us-west-2.amazonaws.com\n\(dbEC2.output)")
        #expect(dbEC2.status == "NOERROR" && !dbEC2.aa, "\(dbEC2.output)")
        #expect(dbEC2.rdata("A") == ["203.0.113.10"], "\(dbEC2.output)")
        #expect(dbEC2.output.contains("SERVER: 10.200.2.1#53"), "\(dbEC2.output)")
        let dbPHZ = try db.dig("www.myservice.internal")
        print("[netns \(db.namespace)] dig www.myservice.internal\n\(dbPHZ.output)")
        #expect(dbPHZ.status == "NXDOMAIN" && dbPHZ.answers.isEmpty, "\(dbPHZ.output)")

        // nslookup, the other tool people use, through the same resolv.conf.
        let appLookup = try app.exec(["/usr/bin/nslookup", "-timeout=1", "-retry=1", "ec2.us-west-2.amazonaws.com"])
        print("[netns \(app.namespace)] nslookup ec2.us-west-2.amazonaws.com\n\(appLookup.output)")
        #expect(appLookup.output.contains("Address: 10.0.1.10") && appLookup.output.contains("Address: 10.0.2.10"), "\(appLookup.output)")
        #expect(appLookup.output.contains("10.200.1.1#53"), "\(appLookup.output)")
        let dbLookup = try db.exec(["/usr/bin/nslookup", "-timeout=1", "-retry=1", "ec2.us-west-2.amazonaws.com"])
        print("[netns \(db.namespace)] nslookup ec2.us-west-2.amazonaws.com\n\(dbLookup.output)")
        #expect(dbLookup.output.contains("Address: 203.0.113.10") && !dbLookup.output.contains("10.0.1.10"), "\(dbLookup.output)")

        // The query log names the VPC and the test host's own address.
        let appLog = await QueryLogFile.wait(queryLog) { $0.string("srcaddr") == app.nsAddress && $0.string("query_name") == "ec2.us-west-2.amazonaws.com." }
        #expect(appLog.first?.string("vpc_id") == ServeHarness.appVPC)
        #expect(appLog.first?.vpcdns("decision") == "endpoint-private-dns")
        let dbLog = await QueryLogFile.wait(queryLog) { $0.string("srcaddr") == db.nsAddress && $0.string("query_name") == "ec2.us-west-2.amazonaws.com." }
        #expect(dbLog.first?.string("vpc_id") == ServeHarness.dbVPC)
        #expect(dbLog.first?.vpcdns("decision") == "upstream")

        #expect(server.stop() == 0, "\(server.standardError)")
    }
}
