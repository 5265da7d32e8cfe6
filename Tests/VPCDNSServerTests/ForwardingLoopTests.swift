import DNSWire
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
import VPCDNSCore
@testable import VPCDNSServer

#if canImport(Glibc)
import Glibc
#endif

/// O6 end to end: vpcdns inside a network namespace whose resolv.conf names vpcdns itself
/// (`check` and `serve` say what they left out and why, and fail when nothing remains); a
/// loop through a real Unbound that forwards back to vpcdns (SERVFAIL `forwarding-loop`,
/// bounded upstream work); a burst of identical queries sharing one upstream exchange.
@Suite("O6: no forwarding loops, request coalescing", .serialized)
struct ForwardingLoopTests {
    // MARK: - system naming vpcdns itself, in a network namespace

    /// A namespace with only loopback (no veth, no route out), extra addresses on `lo`, and
    /// its own /etc/netns/NAME/resolv.conf, which `ip netns exec` mounts over /etc/resolv.conf.
    struct LoopNamespace {
        let name: String

        init(addresses: [String], resolvConf: String) throws {
            name = "\(Netns.prefix)loop-\(Netns.newTag())"
            try Netns.run(["netns", "add", name])
            try Netns.run(["-n", name, "link", "set", "lo", "up"])
            for a in addresses { try Netns.run(["-n", name, "addr", "add", "\(a)/32", "dev", "lo"]) }
            Netns.createdEtcNetns = Netns.createdEtcNetns || !FileManager.default.fileExists(atPath: "/etc/netns")
            try FileManager.default.createDirectory(atPath: "/etc/netns/\(name)", withIntermediateDirectories: true)
            try resolvConf.write(toFile: "/etc/netns/\(name)/resolv.conf", atomically: true, encoding: .utf8)
        }

        func destroy() {
            _ = try? Netns.run(["netns", "del", name], check: false)
            try? FileManager.default.removeItem(atPath: "/etc/netns/\(name)")
            if Netns.createdEtcNetns, (try? FileManager.default.contentsOfDirectory(atPath: "/etc/netns"))?.isEmpty == true {
                try? FileManager.default.removeItem(atPath: "/etc/netns")
            }
        }

        /// `vpcdns ARGS` inside the namespace, bounded.
        func vpcdns(_ args: [String], timeout: Duration = .seconds(20)) throws -> Command.Result {
            try Command.run(Netns.ip, ["netns", "exec", name, try VPCDNSBinary.require()] + args, timeout: timeout)
        }

        /// A shell command inside the namespace (its own mount namespace too), bounded.
        func shell(_ script: String) throws -> Command.Result {
            try Command.run(Netns.ip, ["netns", "exec", name, "/bin/sh", "-c", script], timeout: .seconds(20))
        }
    }

    static let vpcYAML = """
        vpcs:
          - id: vpc-0a11ce0000000001a
            name: app
            region: us-west-2
            cidrs: [10.0.0.0/16]
            clients: [127.0.0.0/8]
            enable_dns_hostnames: true
        hosted_zones:
          - name: fuzz.internal
            vpcs: [vpc-0a11ce0000000001a]
            records:
              - {name: www.fuzz.internal, type: A, values: [10.9.0.10]}

        """

    @Test("resolv.conf names vpcdns itself: check and serve name what they left out and fail")
    func systemIsVPCDNS() async throws {
        try Netns.prepare("O6 network-namespace tests")
        let ns = try LoopNamespace(addresses: [], resolvConf: "nameserver 127.0.0.1\noptions timeout:1\n")
        defer { ns.destroy() }
        let dir = try ServeHarness.makeDirectory("vpcdns-o6-self")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vpcdns.yaml").path
        try ("listen: [\"127.0.0.1:53\"]\nupstreams: [system]\n" + Self.vpcYAML).write(toFile: config, atomically: true, encoding: .utf8)

        let leftOut = "\(config):2: upstreams[0]: warning: upstream 127.0.0.1:53 (system, from /etc/resolv.conf) left out: it is vpcdns's own listener 127.0.0.1:53: forwarding there would loop (O6)"
        let error = "\(config):2: upstreams: no usable upstream remains for the default upstreams (R9): 127.0.0.1:53 (system, from /etc/resolv.conf) left out: it is vpcdns's own listener 127.0.0.1:53: forwarding there would loop (O6)"

        let check = try ns.vpcdns(["check", "--config", config])
        print("[netns \(ns.name)] vpcdns check (exit \(check.exitCode))\n\(check.output)\(check.error)")
        #expect(check.exitCode == 1)
        #expect(check.error.contains(leftOut), "\(check.error)")
        #expect(check.error.contains(error), "\(check.error)")

        let json = try ns.vpcdns(["check", "--json", "--config", config])
        #expect(json.exitCode == 1)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        let ups = try #require((obj["upstreams"] as? [String: Any])?["defaults"] as? [String: Any])
        let left = try #require(ups["left_out"] as? [[String: Any]])
        #expect(left.first?["address"] as? String == "127.0.0.1:53")
        #expect(left.first?["file"] as? String == "/etc/resolv.conf")
        #expect((ups["targets"] as? [Any])?.isEmpty == true)

        // serve: the same warning and error, exit 1, before any packet.
        let serve = try ns.vpcdns(["serve", "--config", config], timeout: .seconds(20))
        print("[netns \(ns.name)] vpcdns serve (exit \(serve.exitCode))\n\(serve.error)")
        #expect(!serve.timedOut && serve.exitCode == 1, "\(serve.error)")
        #expect(serve.error.contains(leftOut), "\(serve.error)")
        #expect(serve.error.contains(error), "\(serve.error)")
        #expect(!serve.error.contains("listening on"), "\(serve.error)")
    }

    @Test("a wildcard listener: this namespace's addresses are left out, the others used and shown with their file")
    func wildcardAndExpansion() async throws {
        try Netns.prepare("O6 network-namespace tests")
        // 10.53.0.1 is an address of the namespace; 10.53.0.77 is not (and has no route: no
        // packet can leave). Nothing is sent upstream in this test.
        let ns = try LoopNamespace(addresses: ["10.53.0.1"], resolvConf: "nameserver 10.53.0.1\nnameserver 127.0.0.1\nnameserver 10.53.0.77\n")
        defer { ns.destroy() }
        let dir = try ServeHarness.makeDirectory("vpcdns-o6-wild")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vpcdns.yaml").path
        try ("listen: [\"0.0.0.0:53\"]\nupstreams: [system]\nmetrics: \"127.0.0.1:9153\"\n" + Self.vpcYAML)
            .write(toFile: config, atomically: true, encoding: .utf8)

        let check = try ns.vpcdns(["check", "--config", config])
        print("[netns \(ns.name)] vpcdns check (exit \(check.exitCode))\n\(check.output)\(check.error)")
        #expect(check.exitCode == 0, "\(check.error)")
        #expect(check.output.contains("upstreams: 10.53.0.77:53 (system, from /etc/resolv.conf)\n"), "\(check.output)")
        #expect(check.output.contains("  left out: 10.53.0.1:53 (system, from /etc/resolv.conf): it is an address of this host and vpcdns listens on 0.0.0.0:53"), "\(check.output)")
        #expect(check.output.contains("  left out: 127.0.0.1:53 (system, from /etc/resolv.conf): it is an address of this host and vpcdns listens on 0.0.0.0:53"), "\(check.output)")
        #expect(check.error.contains("\(config):2: upstreams[0]: warning: upstream 10.53.0.1:53 (system, from /etc/resolv.conf) left out"), "\(check.error)")

        let explain = try ns.vpcdns(["explain", "www.example.com", "--from", "127.0.0.1", "--to", "127.0.0.1:53", "--config", config])
        print("[netns \(ns.name)] vpcdns explain www.example.com\n\(explain.output)")
        #expect(explain.output.contains("forwarded to upstream 10.53.0.77:53 (system, from /etc/resolv.conf) (R9)"), "\(explain.output)")
        #expect(explain.output.contains("  left out (O6): 127.0.0.1:53 (system, from /etc/resolv.conf): it is an address of this host"), "\(explain.output)")
        let ej = try ns.vpcdns(["explain", "www.example.com", "--from", "127.0.0.1", "--config", config, "--json"])
        let eobj = try #require(try JSONSerialization.jsonObject(with: Data(ej.output.utf8)) as? [String: Any])
        let outcome = try #require(eobj["outcome"] as? [String: Any])
        #expect(outcome["targets"] as? [String] == ["10.53.0.77:53"])
        #expect(((outcome["upstreams"] as? [String: Any])?["left_out"] as? [Any])?.count == 2)

        // serve: the startup lines name the address in use and those left out; it answers.
        let stderrPath = dir.appendingPathComponent("serve.stderr").path
        let serve = try ChildProcess(Netns.ip, ["netns", "exec", ns.name, try VPCDNSBinary.require(), "serve", "--config", config], stderr: stderrPath)
        defer { serve.stop() }
        var text = ""
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline && serve.isRunning {
            text = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            if text.contains("upstreams: ") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        print("[netns \(ns.name)] vpcdns serve\n\(text)")
        #expect(text.contains("listening on udp 0.0.0.0:53\n"), "\(text)")
        #expect(text.contains("upstreams: 10.53.0.77:53 (system, from /etc/resolv.conf)\n"), "\(text)")
        #expect(text.contains("  left out: 127.0.0.1:53 (system, from /etc/resolv.conf): it is an address of this host and vpcdns listens on 0.0.0.0:53"), "\(text)")
        #expect(text.contains("upstreams[0]: warning: upstream 10.53.0.1:53 (system, from /etc/resolv.conf) left out"), "\(text)")
        let dig = try ns.shell("/usr/bin/dig @127.0.0.1 www.fuzz.internal +time=1 +tries=2")
        #expect(dig.output.contains("10.9.0.10"), "\(dig.output)")
        // A public name goes to the expanded address: the namespace has no route there, so
        // the attempt fails at once (no packet leaves), and the metric names the real target.
        let pub = try ns.shell("/usr/bin/dig @127.0.0.1 www.example.com +time=3 +tries=1")
        #expect(pub.output.contains("status: SERVFAIL"), "\(pub.output)")
        let metrics = try ns.shell("/usr/bin/curl -s --max-time 5 http://127.0.0.1:9153/metrics")
        let attempts = metrics.output.split(separator: "\n").filter { $0.hasPrefix("vpcdns_upstream_requests_total{") }
        print("[netns \(ns.name)] \(attempts.joined(separator: "\n"))")
        #expect(attempts.contains { $0.contains("target=\"10.53.0.77:53\"") && $0.contains("result=\"error\"") && !$0.hasSuffix(" 0") },
                "\(metrics.output)")
        #expect(!attempts.contains { $0.contains("system") || $0.contains("127.0.0.1:53") || $0.contains("10.53.0.1:53") }, "\(attempts)")
    }

    @Test("resolv.conf names only systemd-resolved's stub: the real upstreams come from resolved's file")
    func systemdStub() async throws {
        try Netns.prepare("O6 network-namespace tests")
        let ns = try LoopNamespace(addresses: [], resolvConf: "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n")
        defer { ns.destroy() }
        let dir = try ServeHarness.makeDirectory("vpcdns-o6-stub")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vpcdns.yaml").path
        try ("listen: [\"127.0.0.1:53\"]\nupstreams: [system]\n" + Self.vpcYAML).write(toFile: config, atomically: true, encoding: .utf8)
        // /run is a tmpfs of this command's own mount namespace (`ip netns exec` makes one):
        // the host's /run is not touched.
        let binary = try VPCDNSBinary.require()
        let r = try ns.shell("""
            mount -t tmpfs vpcdns-test /run && mkdir -p /run/systemd/resolve && \
            printf 'nameserver 10.53.0.8\\nnameserver 127.0.0.1\\n' > /run/systemd/resolve/resolv.conf && \
            exec \(binary) check --config \(config)
            """)
        print("[netns \(ns.name)] vpcdns check with the systemd stub (exit \(r.exitCode))\n\(r.output)\(r.error)")
        #expect(r.exitCode == 0, "\(r.error)")
        #expect(r.output.contains("upstreams: 10.53.0.8:53 (system, from /run/systemd/resolve/resolv.conf)\n"), "\(r.output)")
        #expect(r.output.contains("  note: /etc/resolv.conf names only the systemd-resolved stub 127.0.0.53: the real upstreams come from /run/systemd/resolve/resolv.conf"), "\(r.output)")
        #expect(r.output.contains("  left out: 127.0.0.1:53 (system, from /run/systemd/resolve/resolv.conf): it is vpcdns's own listener 127.0.0.1:53"), "\(r.output)")
    }

    @Test("a reload that would leave no usable upstream is rejected; the old upstreams keep serving")
    func reloadRejected() async throws {
        let dir = try ServeHarness.makeDirectory("vpcdns-o6-reload")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("vpcdns.yaml").path
        try ("listen: [\"127.0.0.1:0\"]\nupstreams: [\"127.0.0.1:9\"]\n" + Self.vpcYAML).write(toFile: config, atomically: true, encoding: .utf8)
        let runtime = try await ServerRuntime(configPath: config, listenOverride: nil, logger: Logger(label: "test"))
        let bound = try #require(await runtime.listening.first?.bound)
        #expect(runtime.upstreamLines == ["upstreams: 127.0.0.1:9"])
        // Now the only upstream is the port vpcdns was given: left out, nothing remains.
        try ("listen: [\"127.0.0.1:0\"]\nupstreams: [\"\(bound)\"]\n" + Self.vpcYAML).write(toFile: config, atomically: true, encoding: .utf8)
        #expect(await runtime.reload() == false)
        #expect(runtime.engine.current.defaultUpstreams == [SocketEndpoint("127.0.0.1:9")!])
        // With a usable one beside it, the reload goes through and leaves ours out.
        try ("listen: [\"127.0.0.1:0\"]\nupstreams: [\"\(bound)\", \"127.0.0.1:7\"]\n" + Self.vpcYAML).write(toFile: config, atomically: true, encoding: .utf8)
        #expect(await runtime.reload() == true)
        #expect(runtime.engine.current.defaultUpstreams == [SocketEndpoint("127.0.0.1:7")!])
        #expect(runtime.engine.current.upstreamPlan?.defaults.leftOut.map(\.target.endpoint) == [bound])
        #expect(runtime.upstreamLines.first == "upstreams: 127.0.0.1:7")
        await runtime.listeners.shutdown(gracePeriod: .zero)
        try await runtime.group.shutdownGracefully()
    }

    @Test("the coalescer: one leader, joined waiters each called on their own loop, looping flights ended")
    func coalescer() async throws {
        let c = UpstreamCoalescer()
        let loops = [testGroup.next(), testGroup.next()]
        let key = CoalescingKey(name: try DNSName("www.example.org"), type: .a, rrClass: .in, checkingDisabled: false, targets: .defaults)
        let other = CoalescingKey(name: try DNSName("www.example.org"), type: .a, rrClass: .in, checkingDisabled: true, targets: .defaults)
        let target = SocketEndpoint("127.0.0.1:5300")!
        let got = Problems()
        func waiter(_ i: Int, _ loop: any EventLoop) -> UpstreamCoalescer.Completion {
            { outcome in
                let on = loop.inEventLoop
                let what: String
                switch outcome {
                case .upstream(.failure(let f)): what = f.reason
                case .upstream(.success): what = "answer"
                case .forwardingLoop: what = "loop"
                }
                got.list.withLock { $0.append("\(i):\(what):\(on)") }
            }
        }
        guard case .lead(let flight) = c.join(key, targets: [target], on: loops[0], completion: waiter(0, loops[0])) else {
            Issue.record("the first query must lead"); return
        }
        for i in 1...3 {
            guard case .joined(let t) = c.join(key, targets: [target], on: loops[i % 2], completion: waiter(i, loops[i % 2])) else {
                Issue.record("query \(i) must join"); return
            }
            #expect(t == [target])
        }
        #expect(c.isPending(other))
        guard case .lead = c.join(other, targets: [target], on: loops[1], completion: waiter(9, loops[1])) else {
            Issue.record("another CD bit is another exchange"); return
        }
        c.finish(key, flight, .upstream(.failure(.timeout(lastTried: target))))
        c.failLooping([target])
        try await Task.sleep(for: .milliseconds(200))
        #expect(got.list.withLock { $0.sorted() } == ["0:upstream-timeout:true", "1:upstream-timeout:true", "2:upstream-timeout:true",
                                                       "3:upstream-timeout:true", "9:loop:true"])
        #expect(c.inFlight == 0 && c.joined == 3)
        // Finishing an ended flight again does nothing.
        c.finish(key, flight, .upstream(.failure(.timeout(lastTried: target))))
        try await Task.sleep(for: .milliseconds(50))
        #expect(got.list.withLock { $0.count } == 5)
    }

    /// An upstream that, while `loops` is set, hands every probe name it gets back to the
    /// guard (as a resolver forwarding to us would) before answering SERVFAIL; otherwise it
    /// answers NXDOMAIN.
    final class ProbeEcho: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let loopGuard: LoopGuard
        let loops = Atomic<Bool>(true)
        let seen = Atomic<Int>(0)
        init(_ g: LoopGuard) { loopGuard = g }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let e = unwrapInboundIn(data)
            seen.add(1, ordering: .relaxed)
            let looping = loops.load(ordering: .relaxed)
            if looping, let text = QuestionCase.name(in: e.data), let name = try? DNSName(text) {
                _ = loopGuard.probeArrived(name, from: SocketEndpoint("127.0.0.1:5353")!)
            }
            guard let reply = TestDNS.echoReply(to: e.data, rcode: looping ? 2 : 3) else { return }
            context.writeAndFlush(NIOAny(AddressedEnvelope(remoteAddress: e.remoteAddress, data: reply)), promise: nil)
        }
    }

    @Test("a probe that comes back marks its target looping; a later probe that does not clears it")
    func probeMarksAndClears() async throws {
        let tokens = Atomic<UInt64>(0x1234_0000)
        let g = LoopGuard(minimumProbeGap: .milliseconds(1), reprobeInterval: .milliseconds(200), token: { tokens.add(1, ordering: .relaxed).newValue })
        let echo = ProbeEcho(g)
        let ch = try await DatagramBootstrap(group: testGroup)
            .channelInitializer { c in c.eventLoop.makeCompletedFuture { try c.pipeline.syncOperations.addHandler(echo) } }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { ch.close(promise: nil) }
        let target = SocketEndpoint(ch.localAddress!)!
        let other = SocketEndpoint("127.0.0.1:9")!
        let client = UpstreamClient(policy: UpstreamPolicy(totalTimeout: .milliseconds(500), attemptTimeout: .milliseconds(250)))
        #expect(g.usable([target, other]) == [target, other])

        // Not from a target's address: no probe.
        g.suspect(client: IPAddress("192.0.2.1")!, targets: [target], upstream: client, on: testGroup.next())
        #expect(g.probes == 0)
        g.suspect(client: target.ip, targets: [target], upstream: client, on: testGroup.next())
        var deadline = ContinuousClock.now + .seconds(5)
        while g.looping.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(g.looping == [target])
        #expect(g.usable([target, other]) == [other])
        // A name we never sent is not ours: nothing changes.
        #expect(g.probeArrived(LoopProbe.name(token: 42), from: target) == nil)

        // The other resolver is fixed: the next probe (every 200 ms here) does not come back.
        echo.loops.store(false, ordering: .relaxed)
        deadline = ContinuousClock.now + .seconds(5)
        while !g.looping.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(g.looping.isEmpty)
        #expect(g.usable([target, other]) == [target, other])
        #expect(g.probes >= 2 && echo.seen.load(ordering: .relaxed) >= 2)
    }

    // MARK: - a loop through Unbound

    /// A real Unbound on 127.0.0.1 forwarding everything to `forwardTo`.
    final class UnboundForwarder: Sendable {
        let endpoint: SocketEndpoint
        let directory: URL
        let process: ChildProcess

        init(port: Int, forwardTo: SocketEndpoint) async throws {
            precondition(forwardTo.ip == .v4(0x7F00_0001), "tests talk to loopback only")
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-unbound-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            directory = dir
            let conf = """
                server:
                    interface: 127.0.0.1@\(port)
                    port: \(port)
                    outgoing-interface: 127.0.0.1
                    do-ip4: yes
                    do-ip6: no
                    num-threads: 1
                    access-control: 127.0.0.0/8 allow
                    chroot: ""
                    username: ""
                    directory: "\(dir.path)"
                    pidfile: "\(dir.path)/unbound.pid"
                    logfile: "\(dir.path)/unbound.log"
                    use-syslog: no
                    do-daemonize: no
                    verbosity: 1
                    module-config: "iterator"
                    do-not-query-localhost: no
                    qname-minimisation: no
                remote-control:
                    control-enable: no
                forward-zone:
                    name: "."
                    forward-addr: 127.0.0.1@\(forwardTo.port)

                """
            let path = dir.appendingPathComponent("unbound.conf").path
            try conf.write(toFile: path, atomically: true, encoding: .utf8)
            process = try ChildProcess("/usr/sbin/unbound", ["-d", "-c", path], stderr: dir.appendingPathComponent("stderr.txt").path)
            endpoint = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))
            // `localhost` is one of Unbound's own zones: it answers without forwarding.
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if (try? DigRun.query("localhost", server: endpoint))?.rdata("A") == ["127.0.0.1"] { return }
                guard process.isRunning else { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let log = (try? String(contentsOf: dir.appendingPathComponent("stderr.txt"), encoding: .utf8)) ?? ""
            throw FixtureError("unbound did not answer on \(endpoint): \(log)")
        }

        func stop() {
            process.stop()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// Upstream attempts by target, read from `/metrics`.
    static func metric(_ body: String, _ name: String) -> [(labels: String, value: Double)] {
        body.split(separator: "\n").compactMap { line in
            guard line.hasPrefix(name), !line.hasPrefix("#") else { return nil }
            let parts = line.split(separator: " ")
            guard parts.count == 2, let v = Double(parts[1]) else { return nil }
            return (String(parts[0].dropFirst(name.count)), v)
        }
    }

    @Test("vpcdns -> Unbound -> vpcdns: SERVFAIL forwarding-loop within the upstream timeout, bounded upstream work")
    func loopThroughUnbound() async throws {
        let unboundPort = try await NSDFixture.freePort()
        let metricsPort = try await NSDFixture.freePort()
        let unboundEndpoint = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(unboundPort))
        let timeoutMs = 3000
        let server = try await FaultServer(upstreams: [unboundEndpoint], settings: [
            "upstream_timeout_ms: \(timeoutMs)", "upstream_attempt_timeout_ms: 1000", "query_log: queries.jsonl",
            "metrics: \"127.0.0.1:\(metricsPort)\"",
        ])
        defer { server.stop() }
        let unbound = try await UnboundForwarder(port: unboundPort, forwardTo: server.endpoint)
        defer { unbound.stop() }
        let log = server.directory.appendingPathComponent("queries.jsonl").path

        let start = ContinuousClock.now
        let dig = try DigRun.query("loop.example.net", server: server.endpoint, options: ["+time=\(timeoutMs / 1000 + 3)", "+tries=1"])
        let took = ContinuousClock.now - start
        print("dig @\(server.endpoint) loop.example.net (\(took))\n\(dig.output)")
        #expect(dig.status == "SERVFAIL", "\(dig.output)")
        #expect(took < .milliseconds(timeoutMs + 1000), "took \(took)")

        // Every line of that name (dig's, and Unbound's looped copy) says why.
        let lines = await QueryLogFile.wait(log, count: 2) { $0.string("query_name") == "loop.example.net." }
        #expect(!lines.isEmpty)
        for line in lines {
            if let data = try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) {
                print("query log: \(String(decoding: data, as: UTF8.self))")
            }
            #expect(line.string("rcode") == "SERVFAIL" && line.vpcdns("reason") == "forwarding-loop")
        }

        // The looping target is reported and left out: the next name fails at once, not forwarded.
        let stderr = (try? String(contentsOf: server.directory.appendingPathComponent("stderr.txt"), encoding: .utf8)) ?? ""
        print("vpcdns stderr:\n\(stderr)")
        #expect(stderr.contains("forwarding loop: upstream \(unboundEndpoint) sends our queries back to vpcdns"), "\(stderr)")
        let second = ContinuousClock.now
        let again = try DigRun.query("other.example.net", server: server.endpoint, options: ["+time=3", "+tries=1"])
        #expect(again.status == "SERVFAIL", "\(again.output)")
        #expect(ContinuousClock.now - second < .milliseconds(1500))
        let againLine = await QueryLogFile.wait(log) { $0.string("query_name") == "other.example.net." }
        #expect(againLine.first?.vpcdns("reason") == "forwarding-loop")

        // Bounded: a few upstream attempts and log lines for the whole loop, not thousands.
        try await Task.sleep(for: .milliseconds(500))
        let metrics = try Shell.http("http://127.0.0.1:\(metricsPort)/metrics").body
        let attempts = Self.metric(metrics, "vpcdns_upstream_requests_total").reduce(0) { $0 + $1.value }
        let loops = Self.metric(metrics, "vpcdns_forwarding_loops_total").reduce(0) { $0 + $1.value }
        print("upstream attempts: \(attempts), forwarding-loop answers: \(loops)")
        #expect(attempts >= 1 && attempts < 10, "\(metrics)")
        #expect(loops >= 2, "\(metrics)")
        #expect(Self.metric(metrics, "vpcdns_upstreams_looping").first?.value == 1)
        #expect(Self.metric(metrics, "vpcdns_upstream_requests_total").allSatisfy { $0.labels.contains("target=\"\(unboundEndpoint)\"") })
        let loopLines = QueryLogFile.records(log).filter { ($0.string("query_name") ?? "").hasSuffix("example.net.") }
        #expect(loopLines.count < 10, "\(loopLines.count) log lines")
    }

    // MARK: - coalescing

    /// A UDP upstream on 127.0.0.1 that answers every A query with 192.0.2.1 after `delay`,
    /// counting the queries it gets.
    final class SlowUpstream: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let delay: TimeAmount
        let received = Atomic<Int>(0)
        init(delay: TimeAmount) { self.delay = delay }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let e = unwrapInboundIn(data)
            received.add(1, ordering: .relaxed)
            var q = e.data
            guard let bytes = q.readBytes(length: q.readableBytes), bytes.count > 12 else { return }
            // Header and question only, then one A record pointing at the question's name.
            var end = 12
            while end < bytes.count && bytes[end] != 0 { end += Int(bytes[end]) + 1 }
            end += 5
            guard end <= bytes.count else { return }
            var reply = Array(bytes[0..<end])
            reply[2] = 0x81; reply[3] = 0x80
            reply[6] = 0; reply[7] = 1; reply[8] = 0; reply[9] = 0; reply[10] = 0; reply[11] = 0
            reply += [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x01, 0x2C, 0, 4, 192, 0, 2, 1]
            let channel = context.channel
            let envelope = AddressedEnvelope(remoteAddress: e.remoteAddress, data: ByteBuffer(bytes: reply))
            channel.eventLoop.scheduleTask(in: delay) { channel.writeAndFlush(envelope, promise: nil) }
        }
    }

    @Test("1,000 identical cache-missing queries at once: a handful of upstream exchanges, every client its own reply and log line")
    func burst() async throws {
        let slow = SlowUpstream(delay: .milliseconds(400))
        let upstreamChannel = try await DatagramBootstrap(group: testGroup)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(slow) } }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { upstreamChannel.close(promise: nil) }
        let upstream = SocketEndpoint(upstreamChannel.localAddress!)!
        // No cache: only coalescing can share the exchange.
        let server = try await FaultServer(upstreams: [upstream], settings: ["cache_size: 0", "query_log: queries.jsonl", "upstream_timeout_ms: 4000"])
        defer { server.stop() }
        let log = server.directory.appendingPathComponent("queries.jsonl").path

        // 50 sockets, 20 queries each, sent back to back: 1,000 in flight at most, each with
        // its own ID and its own letter case (P3).
        let clients = 50, perClient = 20
        let bad = Problems()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<clients {
                group.addTask {
                    let client = try await TestUDPClient.make()
                    defer { Task { await client.close() } }
                    var sent: [UInt16: String] = [:]
                    for i in 0..<perClient {
                        let id = UInt16(c * perClient + i + 1)
                        let name = String("burst.example.org".enumerated().map { j, ch in (Int(id) >> (j % 11)) & 1 == 1 ? Character(ch.uppercased()) : ch })
                        sent[id] = name
                        try await client.send(TestDNS.query(id: id, name: name), to: server.endpoint)
                    }
                    let replies = await client.inbox.wait(count: perClient, timeout: .seconds(8))
                    for r in replies {
                        guard let m = try? DNSMessage.parse(Array(r.readableBytesView)), let want = sent.removeValue(forKey: m.header.id) else {
                            bad.list.withLock { $0.append("client \(c): unexpected reply") }
                            continue
                        }
                        let asked = m.questions.first.map { $0.name.description } ?? "?"
                        let echoed = QuestionCase.name(in: r)
                        if m.rcode != .noError || echoed != want { bad.list.withLock { $0.append("\(want) -> \(m.rcode) \(echoed ?? asked)") } }
                    }
                    if !sent.isEmpty { bad.list.withLock { $0.append("client \(c): \(sent.count) without a reply") } }
                }
            }
            try await group.waitForAll()
        }
        let exchanges = slow.received.load(ordering: .relaxed)
        print("1,000 identical queries: \(exchanges) upstream exchanges")
        #expect(bad.list.withLock { $0 }.isEmpty, "\(bad.list.withLock { $0.prefix(10) })")
        #expect(exchanges >= 1 && exchanges <= 5, "\(exchanges) upstream exchanges")
        // One log line per client query, each with its own letter case.
        let lines = await QueryLogFile.wait(log, count: clients * perClient, timeout: .seconds(5)) { ($0.string("query_name") ?? "").lowercased() == "burst.example.org." }
        #expect(lines.count == clients * perClient)
        #expect(Set(lines.compactMap { $0.string("query_name") }).count > 100)
    }
}

/// Problems found by concurrent tasks.
final class Problems: Sendable {
    let list = Mutex<[String]>([])
}

/// The question name of a reply exactly as written (letter case kept), without a trailing dot.
enum QuestionCase {
    static func name(in reply: ByteBuffer) -> String? {
        let b = Array(reply.readableBytesView)
        guard b.count > 12 else { return nil }
        var labels: [String] = []
        var i = 12
        while i < b.count && b[i] != 0 {
            let n = Int(b[i])
            guard i + 1 + n <= b.count else { return nil }
            labels.append(String(decoding: b[(i + 1)..<(i + 1 + n)], as: UTF8.self))
            i += n + 1
        }
        return labels.joined(separator: ".")
    }
}
