import Foundation
import Testing
import VPCDNSCore
@testable import VPCDNSServer

#if canImport(Glibc)
import Glibc
#endif

/// O7 on a real host: vpcdns in a network namespace of its own, listening on `0.0.0.0:53` and
/// `[::]:53`, on a veth interface with two IPv4 addresses (the second one "secondary") and
/// two IPv6 ones. `dig` and `kdig` on the other end of the veth (the root namespace) ask each
/// address: every UDP answer must come from the address asked (dig checks it and otherwise
/// prints "communications error"; kdig prints "unexpected reply source"), the VPC is the one
/// whose `resolver_addresses` names the address asked (V1), and the query log names that
/// address as `vpcdns.listener`. Packets go only to the addresses of the namespace this test
/// creates (and to loopback inside it).
@Suite("Wildcard listeners answer from the address asked (O7), in a network namespace", .serialized)
struct WildcardListenerNetnsTests {
    static let appVPC = "vpc-0a11ce0000000001a"
    static let dbVPC = "vpc-0db0000000000002b"

    @Test("0.0.0.0:53 and [::]:53: dig and kdig to every address of the interface get the answer from that address")
    func wildcardAnswersFromAddressAsked() async throws {
        try Netns.prepare("O7 wildcard listener test")
        let id = UInt8.random(in: 1...254)
        // The root side of the veth is the client (10.201.N.1, fd00:201:N::1); vpcdns's
        // namespace holds .2 (primary), .3 (secondary), ::2 and ::3.
        let host = Netns.Host(role: "o7", tag: Netns.newTag(), link: "w", hostAddress: "10.201.\(id).1", nsAddress: "10.201.\(id).2",
                              prefixLength: 24)
        let v6 = String(format: "fd00:201:%x::", id)
        do {
            defer { host.destroy() }
            try host.create()
            try Netns.run(["-n", host.namespace, "addr", "add", "10.201.\(id).3/24", "dev", host.nsLink])
            try Netns.run(["addr", "add", "\(v6)1/64", "dev", host.hostLink, "nodad"])
            try Netns.run(["-n", host.namespace, "addr", "add", "\(v6)2/64", "dev", host.nsLink, "nodad"])
            try Netns.run(["-n", host.namespace, "addr", "add", "\(v6)3/64", "dev", host.nsLink, "nodad"])
            print("[o7] \(host.namespace) addresses:\n" + (try Netns.run(["-n", host.namespace, "addr", "show", host.nsLink]).output))
            try await scenario(host: host, v4: "10.201.\(id).", v6: v6)
        }
        let ns = try Netns.run(["netns", "list"]).output
        #expect(!ns.contains(host.namespace), "\(ns)")
    }

    private func scenario(host: Netns.Host, v4: String, v6: String) async throws {
        let dir = try ServeHarness.makeDirectory("vpcdns-o7")
        defer { try? FileManager.default.removeItem(at: dir) }
        let queryLog = dir.appendingPathComponent("queries.jsonl").path
        let config = dir.appendingPathComponent("vpcdns.yaml")
        // app is asked on the secondary IPv4 address, database on the first IPv6 address;
        // the client's own addresses are claimed the other way round (V2), so an answer by
        // source instead of by the address asked would give the other VPC's record. The
        // upstream is a closed port on the namespace's loopback: every name here is private.
        try """
            account_id: "111122223333"
            listen: ["0.0.0.0:53", "[::]:53"]
            upstreams: ["127.0.0.1:9"]
            query_log: \(queryLog)
            vpcs:
              - id: \(Self.appVPC)
                region: us-west-2
                cidrs: [10.0.0.0/16]
                clients: ["\(v6)1/128"]
                resolver_addresses: ["\(v4)3:53"]
                allowed_sources: ["\(v4)0/24", "\(v6)/64"]
                enable_dns_hostnames: true
              - id: \(Self.dbVPC)
                region: us-west-2
                cidrs: [10.1.0.0/16]
                clients: ["\(v4)1/32"]
                resolver_addresses: ["[\(v6)2]:53"]
                allowed_sources: ["\(v4)0/24", "\(v6)/64"]
                enable_dns_hostnames: true
            hosted_zones:
              - name: o7.internal
                vpcs: [\(Self.appVPC)]
                records:
                  - {name: svc.o7.internal, type: A, values: ["10.9.0.1"]}
              - name: o7.internal
                vpcs: [\(Self.dbVPC)]
                records:
                  - {name: svc.o7.internal, type: A, values: ["10.9.0.2"]}
            """.write(to: config, atomically: true, encoding: .utf8)

        let server = try ServeProcess(arguments: ["serve", "--config", config.path], directory: dir,
                                      namespace: host.namespace)
        defer { server.stop() }
        let lines = try await server.waitListening(count: 4)
        #expect(lines == ["listening on udp 0.0.0.0:53", "listening on tcp 0.0.0.0:53",
                          "listening on udp [::]:53", "listening on tcp [::]:53"], "\(server.standardError)")
        // The resolver addresses open no socket of their own: the wildcards serve them.
        #expect(server.standardError.contains("serving \(v4)3:53 (vpcs[0].resolver_addresses[0]) on the wildcard 0.0.0.0:53"), "\(server.standardError)")
        #expect(server.standardError.contains("serving [\(v6)2]:53 (vpcs[1].resolver_addresses[0]) on the wildcard [::]:53"), "\(server.standardError)")

        // Each address asked, the VPC that answers there, and that VPC's record.
        let cases: [(address: String, listener: String, vpc: String, answer: String)] = [
            ("\(v4)2", "\(v4)2:53", Self.dbVPC, "10.9.0.2"),      // primary: by source (V2)
            ("\(v4)3", "\(v4)3:53", Self.appVPC, "10.9.0.1"),     // secondary: app's resolver address (V1)
            ("\(v6)2", "[\(v6)2]:53", Self.dbVPC, "10.9.0.2"),    // database's resolver address (V1)
            ("\(v6)3", "[\(v6)3]:53", Self.appVPC, "10.9.0.1"),   // by source (V2)
        ]
        var wrongSource: [String] = []
        for c in cases {
            for tcp in [false, true] {
                let r = try Command.run("/usr/bin/dig", ["@\(c.address)", "svc.o7.internal", "A", "+time=2", "+tries=2"] + (tcp ? ["+tcp"] : []),
                                        timeout: .seconds(15))
                let out = r.output + r.error
                let parsed = DigRun.parse(out)
                let proto = tcp ? "TCP" : "UDP"
                print("[o7] dig @\(c.address) (\(proto)):\n\(out)")
                #expect(!out.contains("communications error"), "dig @\(c.address) \(proto): the answer came from another address\n\(out)")
                #expect(out.contains("SERVER: \(c.address)#53"), "dig @\(c.address) \(proto)\n\(out)")
                #expect(parsed.status == "NOERROR" && parsed.rdata("A") == [c.answer], "dig @\(c.address) \(proto)\n\(out)")
                if !tcp && out.contains("communications error") { wrongSource.append("dig @\(c.address)") }
            }
            let k = try Command.run("/usr/bin/kdig", ["@\(c.address)", "svc.o7.internal", "A", "+time=2", "+retry=1"], timeout: .seconds(15))
            let kout = k.output + k.error
            print("[o7] kdig @\(c.address):\n\(kout)")
            #expect(!kout.contains("unexpected reply source"), "kdig @\(c.address)\n\(kout)")
            #expect(kout.contains("svc.o7.internal.") && kout.contains(c.answer) && kout.contains("NOERROR"), "kdig @\(c.address)\n\(kout)")
            if kout.contains("unexpected reply source") { wrongSource.append("kdig @\(c.address)") }

            // The log names the address asked as the listener, and the VPC chosen there.
            let logged = await QueryLogFile.wait(queryLog, count: 3) { $0.vpcdns("listener") == c.listener }
            #expect(logged.count >= 3, "no log records with listener \(c.listener)")
            for r in logged {
                #expect(r.string("vpc_id") == c.vpc, "\(c.listener): \(r)")
                #expect(r.string("query_name") == "svc.o7.internal.", "\(r)")
            }
        }
        if !wrongSource.isEmpty { print("[o7] answers from the wrong source address: \(wrongSource.joined(separator: ", "))") }
        #expect(server.stop() == 0, "\(server.standardError)")
    }
    /// The reload case of O7: a resolver address with a socket of its own becomes covered by a
    /// new wildcard (and back). Linux refuses a TCP wildcard beside a listening socket of its
    /// family and port, so before the plan the reload failed with "Address already in use";
    /// now the old TCP socket stops accepting just before the wildcard binds, and UDP, whose
    /// sockets coexist, answers throughout. Inside a namespace with loopback only, so that
    /// the wildcard never listens on the host's own interfaces.
    @Test("reload: a resolver address newly covered by a wildcard closes its own socket, and every UDP query reaches vpcdns")
    func reloadOntoWildcard() async throws {
        try Netns.prepare("O7 wildcard reload test")
        let namespace = "\(Netns.prefix)o7r-\(Netns.newTag())"
        try Netns.run(["netns", "add", namespace])
        defer { _ = try? Netns.run(["netns", "del", namespace], check: false) }
        try Netns.run(["-n", namespace, "link", "set", "lo", "up"])

        let dir = try ServeHarness.makeDirectory("vpcdns-o7r")
        defer { try? FileManager.default.removeItem(at: dir) }
        let queryLog = dir.appendingPathComponent("queries.jsonl").path
        let config = dir.appendingPathComponent("vpcdns.yaml")
        func write(listen: String) throws {
            try """
                listen: ["\(listen)"]
                upstreams: ["127.0.0.1:9"]
                query_log: \(queryLog)
                threads: 1
                vpcs:
                  - id: \(Self.appVPC)
                    region: us-west-2
                    cidrs: [10.0.0.0/16]
                    resolver_addresses: ["127.0.10.2:53"]
                    enable_dns_hostnames: true
                hosted_zones:
                  - name: o7.internal
                    vpcs: [\(Self.appVPC)]
                    records:
                      - {name: svc.o7.internal, type: A, values: ["10.9.0.1"]}
                """.write(to: config, atomically: true, encoding: .utf8)
        }
        try write(listen: "127.0.0.1:53")
        let server = try ServeProcess(arguments: ["serve", "--config", config.path], directory: dir,
                                      namespace: namespace)
        defer { server.stop() }
        let lines = try await server.waitListening(count: 4)
        #expect(lines.contains("listening on udp 127.0.10.2:53"), "\(lines)")

        func dig(_ extra: [String]) throws -> String {
            let r = try Command.run(Netns.ip, ["netns", "exec", namespace, "/usr/bin/dig", "@127.0.10.2", "svc.o7.internal", "A", "+short",
                                               "+time=2", "+tries=1"] + extra, timeout: .seconds(10))
            return (r.output + r.error).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try dig([]) == "10.9.0.1")

        // A bounded stream of UDP queries (one at a time, at most 150, at most 6 s) while the
        // configuration swaps to the wildcard and back, each with SIGHUP.
        let loop = dir.appendingPathComponent("loop.out").path
        let script = "i=0; end=$(( $(date +%s) + 6 )); while [ $i -lt 150 ] && [ $(date +%s) -lt $end ]; do "
            + "/usr/bin/dig @127.0.10.2 svc.o7.internal A +short +time=1 +tries=1 2>&1 | tr '\\n' ' '; echo; i=$((i+1)); done"
        let loopPid = try ChildProcess.spawn(Netns.ip, ["netns", "exec", namespace, "/bin/sh", "-c", script], stdout: loop, stderr: loop)
        var status: Int32 = 0
        defer { if waitpid(loopPid, &status, WNOHANG) == 0 { kill(loopPid, SIGKILL); waitpid(loopPid, &status, 0) } }

        try await Task.sleep(for: .milliseconds(700))
        try write(listen: "0.0.0.0:53")
        server.signal(SIGHUP)
        let reloaded = await server.waitForStderr("configuration reloaded", count: 1)
        #expect(reloaded, "\(server.standardError)")
        #expect(!server.standardError.contains("reload rejected"), "\(server.standardError)")
        #expect(server.standardError.contains("closed udp 127.0.10.2:53") && server.standardError.contains("closed tcp 127.0.10.2:53"),
                "\(server.standardError)")
        #expect(server.standardError.contains("serving 127.0.10.2:53 (vpcs[0].resolver_addresses[0]) on the wildcard 0.0.0.0:53"),
                "\(server.standardError)")
        // Served on the wildcard now, over both transports, still as app (V1).
        #expect(try dig(["+tcp"]) == "10.9.0.1")

        try await Task.sleep(for: .milliseconds(700))
        try write(listen: "127.0.0.1:53")
        server.signal(SIGHUP)
        #expect(await server.waitForStderr("configuration reloaded", count: 2), "\(server.standardError)")
        #expect(!server.standardError.contains("reload rejected"), "\(server.standardError)")
        #expect(try dig(["+tcp"]) == "10.9.0.1")

        // All or nothing: a reload whose wildcard binds but whose next address cannot (not an
        // address of this namespace) is rejected, and the TCP socket that stopped accepting
        // for the wildcard listens again.
        try write(listen: "0.0.0.0:53\", \"[2001:db8::53]:53")
        server.signal(SIGHUP)
        #expect(await server.waitForStderr("reload rejected", count: 1), "\(server.standardError)")
        #expect(server.standardError.contains("cannot listen on udp [2001:db8::53]:53"), "\(server.standardError)")
        #expect(try dig(["+tcp"]) == "10.9.0.1")
        #expect(try dig([]) == "10.9.0.1")

        // The stream ends on its own (bounded). Every query in it reached vpcdns and was
        // answered as app on 127.0.10.2 (one query per dig, +tries=1): the log has one UDP
        // record per query sent, besides the two single UDP digs above. Whether dig accepted the answers
        // sent from the wildcard socket is the datapath's part (the test above): until UDP
        // answers leave from the address asked, those sent from the wildcard are dropped by dig.
        let deadline = ContinuousClock.now + .seconds(20)
        while waitpid(loopPid, &status, WNOHANG) == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let answers = ((try? String(contentsOfFile: loop, encoding: .utf8)) ?? "").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let accepted = answers.filter { $0 == "10.9.0.1" }.count
        print("[o7] \(answers.count) UDP queries during two reloads, \(accepted) answers accepted by dig")
        #expect(answers.count >= 5, "\(answers)")
        let logged = await QueryLogFile.wait(queryLog, count: answers.count + 2) {
            $0.vpcdns("listener") == "127.0.10.2:53" && $0.string("transport") == "UDP"
        }
        #expect(logged.count == answers.count + 2, "sent \(answers.count) + 2, logged \(logged.count)")
        #expect(logged.allSatisfy { $0.string("vpc_id") == Self.appVPC && $0.string("rcode") == "NOERROR" })
        #expect(server.stop() == 0, "\(server.standardError)")
    }
}
