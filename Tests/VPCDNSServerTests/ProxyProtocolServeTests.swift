import Foundation
import NIOCore
import NIOPosix
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// P9 through real processes: dnsdist (`useProxyProtocol=true`, health checks on) in front of
/// two `vpcdns serve` replicas on loopback. dnsdist listens on 127.0.0.1 and reaches the
/// replicas from 127.0.0.1 (the trusted proxy); the clients are `dig -b 127.0.0.11` (VPC
/// alpha) and `dig -b 127.0.0.12` (VPC beta), so only a replica that reads the header can
/// tell them apart. Each VPC has its own private zone with a different answer.
@Suite("PROXY protocol v2 behind dnsdist (P9)", .serialized)
struct ProxyProtocolServeTests {
    static let alpha = DnsdistReplicas.alpha
    static let beta = DnsdistReplicas.beta

    /// A replica on 127.0.0.1:`port` that trusts 127.0.0.1 (dnsdist) and takes the clients
    /// 127.0.0.11 for alpha and 127.0.0.12 for beta (alpha's zone from `alphaZoneFile` when given).
    static func config(port: Int, queryLog: String, upstream: Int, metrics: Int? = nil, alphaZoneFile: String? = nil) -> String {
        DnsdistReplicas.config(listen: "127.0.0.1:\(port)", upstream: "127.0.0.1:\(upstream)", queryLog: queryLog,
                               trustedProxies: ["127.0.0.1/32"], alphaClients: ["127.0.0.11/32"], betaClients: ["127.0.0.12/32"],
                               alphaZoneFile: alphaZoneFile, metrics: metrics.map { "127.0.0.1:\($0)" })
    }

    /// dnsdist on 127.0.0.1:`listen` in front of the replicas on 127.0.0.1:`backends`.
    static func startDnsdist(in dir: URL, listen: Int, backends: [Int]) throws -> ChildProcess {
        try DnsdistReplicas.startDnsdist(in: dir, listen: "127.0.0.1:\(listen)", acl: ["127.0.0.0/8"],
                                         backends: backends.map { "127.0.0.1:\($0)" })
    }

    struct Replica {
        let port: Int
        let log: String
        let process: ServeProcess
    }

    @Test("two VPCs through dnsdist get their own answers; each replica logs the real client and the proxy; one replica stops under load")
    func throughDnsdist() async throws {
        try DnsdistReplicas.requireTools()
        _ = try VPCDNSBinary.require()
        let dir = try ServeHarness.makeDirectory("vpcdns-proxy")
        defer { try? FileManager.default.removeItem(at: dir) }
        let dead = try await freePort(host: "127.0.0.1")
        var replicas: [Replica] = []
        for i in 1...2 {
            let port = try await freePort(host: "127.0.0.1")
            let (log, p) = try await DnsdistReplicas.startReplica(i, in: dir) { Self.config(port: port, queryLog: $0, upstream: dead) }
            replicas.append(Replica(port: port, log: log, process: p))
        }
        defer { for r in replicas { r.process.stop() } }

        let front = try await freePort(host: "127.0.0.1")
        let dnsdistProcess = try Self.startDnsdist(in: dir, listen: front, backends: replicas.map(\.port))
        defer { dnsdistProcess.stop() }
        let at = SocketEndpoint(ip: IPAddress("127.0.0.1")!, port: UInt16(front))

        // dnsdist starts its backends as up after the first health check (LOCAL header: each
        // replica answers it as from 127.0.0.1, REFUSED by V3, which dnsdist counts as up).
        var ready = false
        for _ in 0..<50 {
            let r = try DigRun.query("api.svc.internal", server: at, source: "127.0.0.11")
            if r.status == "NOERROR" { ready = true; break }
            try await Task.sleep(for: .milliseconds(200))
        }
        try #require(ready, "dnsdist never answered: \(DnsdistReplicas.dnsdistErrors(in: dir))")

        // Several queries per client and transport, so round robin reaches both replicas.
        for _ in 0..<4 {
            for opts in [[String](), ["+tcp"]] {
                let a = try DigRun.query("api.svc.internal", server: at, source: "127.0.0.11", options: opts)
                #expect(a.rdata("A") == ["10.1.0.10"] && a.aa, "\(a.output)")
                let b = try DigRun.query("api.svc.internal", server: at, source: "127.0.0.12", options: opts)
                #expect(b.rdata("A") == ["10.2.0.20"] && b.aa, "\(b.output)")
            }
        }

        for r in replicas {
            let records = await QueryLogFile.wait(r.log, count: 2) { $0.string("query_name") == "api.svc.internal." }
            #expect(records.count >= 2, "replica on \(r.port) logged \(records.count) queries")
            for rec in records {
                let src = rec.string("srcaddr")
                #expect(src == "127.0.0.11" || src == "127.0.0.12", "\(rec)")
                #expect(rec.string("vpc_id") == (src == "127.0.0.11" ? Self.alpha : Self.beta), "\(rec)")
                #expect(rec.vpcdns("proxy")?.hasPrefix("127.0.0.1:") == true, "\(rec)")
                // The header's destination: dnsdist's own listener.
                #expect(rec.vpcdns("listener") == "127.0.0.1:\(front)", "\(rec)")
                #expect(rec.string("srcport") != "\(front)", "\(rec)")
            }
            #expect(Set(records.compactMap { $0.string("transport") }) == ["UDP", "TCP"], "\(records)")
        }

        // dnsdist's health checks (LOCAL header) reached each replica as queries from dnsdist
        // itself, refused by V3, and dnsdist kept the replicas up.
        for r in replicas {
            let checks = await QueryLogFile.wait(r.log) { $0.string("query_name") == "a.root-servers.net." }
            #expect(checks.first?.string("srcaddr") == "127.0.0.1" && checks.first?.string("rcode") == "REFUSED"
                    && checks.first?.vpcdns("proxy") != nil, "\(checks)")
        }

        // Straight to a replica from an untrusted source: answered as itself, no proxy named.
        let direct = try DigRun.query("api.svc.internal", server: SocketEndpoint(ip: IPAddress("127.0.0.1")!, port: UInt16(replicas[0].port)),
                                      source: "127.0.0.12")
        #expect(direct.rdata("A") == ["10.2.0.20"], "\(direct.output)")
        let directLog = await QueryLogFile.wait(replicas[0].log) { $0.string("srcaddr") == "127.0.0.12" && $0.vpcdns("proxy") == nil }
        #expect(!directLog.isEmpty)

        // A replica stops under bounded load: dnsperf from VPC alpha (2,000 queries a second,
        // at most 8,000 queries and 6 s) and, at the same time, a dig loop from VPC beta (one
        // query at a time, at most 150). Replica 2 is stopped (SIGTERM) 1.5 s in; dnsdist marks
        // it down at its next failed health check (every second). dnsperf keeps at most 100
        // queries outstanding (-q), so once that many went to the stopped replica it waits for
        // their 1 s timeout: the loss is bounded by that window, not by the rate.
        let (perfPid, perfOut) = try DnsdistReplicas.startDnsperf(server: "127.0.0.1", port: front,
                                                                  ["-a", "127.0.0.11", "-n", "8000", "-l", "6", "-Q", "2000", "-c", "4", "-q", "100", "-t", "1"],
                                                                  dir: dir)
        defer { kill(perfPid, SIGKILL); var st: Int32 = 0; waitpid(perfPid, &st, WNOHANG) }
        let clock = ContinuousClock.now
        var stopped = false
        var digs = 0, digFailed = 0, wrong = 0
        while digs < 150 && ContinuousClock.now - clock < .seconds(5) {
            if !stopped && ContinuousClock.now - clock > .milliseconds(1500) {
                replicas[1].process.stop()
                stopped = true
            }
            let r = try DigRun.query("api.svc.internal", server: at, source: "127.0.0.12")
            digs += 1
            if r.status != "NOERROR" { digFailed += 1 } else if r.rdata("A") != ["10.2.0.20"] { wrong += 1 }
        }
        if !stopped { replicas[1].process.stop() }
        let perf = DnsperfSummary.wait(pid: perfPid, output: perfOut)
        let sent = perf.sent, lost = perf.lost, completed = perf.completed
        print("P9 failover: dnsperf (VPC alpha) sent \(sent ?? -1), completed \(completed ?? -1), lost \(lost ?? -1); "
              + "dig loop (VPC beta) \(digs) queries, \(digFailed) failed, \(wrong) wrong; replica 2 stopped 1.5 s in")
        #expect(wrong == 0)
        let s = try #require(sent, "dnsperf said: \(perf.text)")
        let l = try #require(lost, "dnsperf said: \(perf.text)")
        // Only what dnsdist sent to the stopped replica before its next health check is lost.
        #expect(s > 1000 && l < s / 4, "\(perf.text)")
        #expect(digFailed < max(3, digs / 4), "\(digFailed) of \(digs) dig queries failed")
        #expect(perf.text.contains("NOERROR") && !perf.text.contains("REFUSED"), "a proxied query was answered as the proxy: \(perf.text)")
        let last = try DigRun.query("api.svc.internal", server: at, source: "127.0.0.12")
        #expect(last.rdata("A") == ["10.2.0.20"], "\(last.output)")
        #expect(replicas[0].process.stop() == 0, "\(replicas[0].process.standardError)")
    }

    @Test("from a trusted proxy, a datagram without a header gets no answer; a header from anyone else neither")
    func rejections() async throws {
        _ = try VPCDNSBinary.require()
        let dir = try ServeHarness.makeDirectory("vpcdns-proxy-reject")
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try await freePort(host: "127.0.0.1")
        let dead = try await freePort(host: "127.0.0.1")
        let log = dir.appendingPathComponent("queries.jsonl").path
        let config = dir.appendingPathComponent("vpcdns.yaml")
        let metrics = try await freePort(host: "127.0.0.1")
        // Trusted: 127.0.0.1 (where TestUDPClient sends from).
        try Self.config(port: port, queryLog: log, upstream: dead, metrics: metrics).write(to: config, atomically: true, encoding: .utf8)
        let server = try ServeProcess(arguments: ["serve", "--config", config.path], directory: dir)
        defer { server.stop() }
        _ = try await server.waitListening(count: 2, timeout: .seconds(30))
        let at = SocketEndpoint(ip: IPAddress("127.0.0.1")!, port: UInt16(port))

        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        let query = TestDNS.query(id: 0x4242, name: "api.svc.internal")
        // No header from the trusted proxy: dropped, never answered as 127.0.0.1.
        let plain = try await client.exchange(query, with: at, timeout: .milliseconds(500))
        #expect(plain == nil)
        // With a header naming 127.0.0.12 (beta): answered as beta.
        var framed = ByteBuffer(bytes: Self.header(source: [127, 0, 0, 12], sourcePort: 4242, destination: [127, 0, 0, 1], destinationPort: UInt16(port)))
        var q = query
        framed.writeBuffer(&q)
        let reply = try await client.exchange(framed, with: at)
        let h = try #require(reply.flatMap(TestDNS.header))
        #expect(h.id == 0x4242 && h.rcode == 0 && h.ancount == 1)
        let logged = await QueryLogFile.wait(log) { $0.string("srcaddr") == "127.0.0.12" }
        #expect(logged.first?.string("srcport") == "4242")
        #expect(logged.first?.string("vpc_id") == Self.beta)
        #expect(logged.first?.vpcdns("proxy")?.hasPrefix("127.0.0.1:") == true)
        // A truncated header from the trusted proxy: dropped.
        let cut = try await client.exchange(ByteBuffer(bytes: Array(Self.header(source: [127, 0, 0, 12], sourcePort: 1, destination: [127, 0, 0, 1], destinationPort: 1).prefix(20))),
                                            with: at, timeout: .milliseconds(500))
        #expect(cut == nil)

        // TCP from the trusted proxy: the header starts the connection.
        let tcp = try await TestTCPConnection.connect(to: at)
        var stream = ByteBuffer(bytes: Self.header(source: [127, 0, 0, 11], sourcePort: 5353, destination: [127, 0, 0, 1], destinationPort: UInt16(port), stream: true))
        var f = TestDNS.framed(TestDNS.query(id: 0x1111, name: "api.svc.internal"))
        stream.writeBuffer(&f)
        try await tcp.dripFeed(stream, pause: .milliseconds(1))
        let tcpReply = await tcp.inbox.wait(count: 1, timeout: .seconds(2))
        #expect(tcpReply.first.flatMap(TestDNS.header)?.ancount == 1)
        await tcp.close()
        let tcpLogged = await QueryLogFile.wait(log) { $0.string("srcaddr") == "127.0.0.11" && $0.string("transport") == "TCP" }
        #expect(tcpLogged.first?.string("vpc_id") == Self.alpha)
        // TCP from the trusted proxy without a header: closed unanswered.
        let bare = try await TestTCPConnection.connect(to: at)
        try await bare.send(TestDNS.framed(TestDNS.query(id: 0x2222, name: "api.svc.internal")))
        #expect(await bare.waitClosed(timeout: .seconds(2)))
        #expect(bare.inbox.messages.withLock { $0.isEmpty })
        await bare.close()
        // From 127.0.0.13, not a trusted proxy: a plain query is answered (REFUSED: no VPC
        // claims it), one carrying a header naming beta's client is dropped.
        let inbox = Inbox()
        let stranger = try await DatagramBootstrap(group: testGroup)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(InboxUDPHandler(inbox: inbox)) }
            }
            .bind(host: "127.0.0.13", port: 0).get()
        defer { stranger.close(promise: nil) }
        try await stranger.writeAndFlush(AddressedEnvelope(remoteAddress: at.socketAddress, data: TestDNS.query(id: 0x1313, name: "api.svc.internal"))).get()
        let answered = await inbox.wait(count: 1, timeout: .seconds(1))
        #expect(answered.first.flatMap(TestDNS.header)?.rcode == 5)
        var spoof = ByteBuffer(bytes: Self.header(source: [127, 0, 0, 12], sourcePort: 1, destination: [127, 0, 0, 1], destinationPort: UInt16(port)))
        var q2 = TestDNS.query(id: 0x1314, name: "api.svc.internal")
        spoof.writeBuffer(&q2)
        try await stranger.writeAndFlush(AddressedEnvelope(remoteAddress: at.socketAddress, data: spoof)).get()
        let spoofed = await inbox.wait(count: 2, timeout: .milliseconds(500))
        #expect(spoofed.count == 1, "a header from an untrusted source was answered")

        // Counted: UDP without a header and with a cut one, TCP without a header, the stranger's header.
        let scrape = try Shell.http("http://127.0.0.1:\(metrics)/metrics")
        #expect(scrape.body.contains(#"vpcdns_proxy_rejected_total{reason="no-header"} 2"#), "\(scrape.body)")
        #expect(scrape.body.contains(#"vpcdns_proxy_rejected_total{reason="truncated"} 1"#), "\(scrape.body)")
        #expect(scrape.body.contains(#"vpcdns_proxy_rejected_total{reason="untrusted"} 1"#), "\(scrape.body)")
        #expect(server.stop() == 0, "\(server.standardError)")
        // Nothing was logged for 127.0.0.1 itself.
        #expect(QueryLogFile.records(log).allSatisfy { $0.string("srcaddr") != "127.0.0.1" })
    }

    /// A PROXY v2 PROXY-command header for IPv4 (UDP, or TCP with `stream`).
    static func header(source: [UInt8], sourcePort: UInt16, destination: [UInt8], destinationPort: UInt16, stream: Bool = false) -> [UInt8] {
        [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, stream ? 0x11 : 0x12, 0x00, 12]
            + source + destination + [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
    }
}

/// `TrustedProxies.examine`, the decision both listeners take for P9, without sockets.
@Suite("P9 trusted proxies table")
struct TrustedProxiesTests {
    @Test("trusted, untrusted, LOCAL, truncated, wrong signature, unknown family; each rejection counted")
    func table() {
        let stats = ListenerStats()
        let proxies = TrustedProxies([IPPrefix("10.0.5.0/24")!], stats: stats)
        let proxy = SocketEndpoint("10.0.5.10:40000")!
        let stranger = SocketEndpoint("10.9.9.9:40000")!
        let listener = SocketEndpoint("10.0.0.2:53")!
        let query = Array(TestDNS.query(id: 7, name: "a.example").readableBytesView)
        let v4 = ProxyProtocolServeTests.header(source: [10, 1, 0, 5], sourcePort: 1234, destination: [10, 0, 0, 9], destinationPort: 53)
        let local: [UInt8] = Array(v4.prefix(12)) + [0x20, 0x00, 0x00, 0x00]
        var unix = v4; unix[13] = 0x31
        var wrongSig = v4; wrongSig[3] = 0x0B
        func run(_ bytes: [UInt8], _ from: SocketEndpoint) -> String {
            switch bytes.withUnsafeBytes({ proxies.examine($0, from: from, listener: listener) }) {
            case .direct: return "direct"
            case .rejected(let r): return "rejected \(r.rawValue)"
            case .proxied(let c, let l, let p, let n): return "proxied \(c) to \(l) via \(p) after \(n)"
            }
        }
        #expect(run(v4 + query, proxy) == "proxied 10.1.0.5:1234 to 10.0.0.9:53 via 10.0.5.10:40000 after 28")
        #expect(run(local + query, proxy) == "proxied 10.0.5.10:40000 to 10.0.0.2:53 via 10.0.5.10:40000 after 16")
        #expect(run(query, proxy) == "rejected no-header")
        #expect(run(wrongSig + query, proxy) == "rejected no-header")
        #expect(run(Array(v4.prefix(20)), proxy) == "rejected truncated")
        #expect(run(unix + query, proxy) == "rejected family")
        #expect(run(query, stranger) == "direct")
        #expect(run(v4 + query, stranger) == "rejected untrusted")
        let s = stats.snapshot
        #expect(s.proxyRejected(.noHeader) == 2 && s.proxyRejected(.truncated) == 1 && s.proxyRejected(.family) == 1
                && s.proxyRejected(.untrusted) == 1 && s.proxyRejected(.version) == 0)
        // Reload to none: nothing is trusted, a header from the former proxy is refused.
        proxies.apply([])
        #expect(!proxies.isActive)
        #expect(run(v4 + query, proxy) == "rejected untrusted")
    }
}
