import Foundation
import NIOCore
import NIOPosix
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// Attacks on the running server, each kept as a regression test (loopback only, bounded):
/// a forwarding target planting records for names outside its rule's domain (P11, R15), too
/// few upstream source ports (P11, CVE-2008-1447), and a VPC's resolver address answering
/// anyone (V1 `allowed_sources`).
@Suite("Spoofing and amplification defences", .serialized)
struct SpoofingDefenceTests {
    /// The address the NSD default upstream holds for y.rand.test, and the one the hostile
    /// rule target forges for it.
    static let realAddress = "198.51.100.7"
    static let forgedAddress = "192.0.2.66"

    static let randZone = """
        $ORIGIN rand.test.
        $TTL 300
        @    IN SOA ns1.rand.test. hostmaster.rand.test. 1 3600 600 86400 300
        @    IN NS  ns1.rand.test.
        ns1  IN A   198.51.100.53
        y    IN A   \(realAddress)

        """

    @Test("A FORWARD rule's target cannot plant data outside its domain: a CNAME out of it is completed by the default upstream, UDP and TCP, cached or not")
    func hostileForwardTarget() async throws {
        let nsd = try await NSDFixture(zones: ["rand.test": Self.randZone])
        let asked = Inbox()
        let hostile = try await DatagramBootstrap(group: testGroup)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(ForgingUpstreamHandler(inbox: asked)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { hostile.close(promise: nil) }
        let hostileEndpoint = try #require(hostile.localAddress.flatMap(SocketEndpoint.init))
        let serve = try await MiniServe.start(config: """
            listen: ["@LISTEN@"]
            upstreams: ["\(nsd.endpoint)"]
            upstream_timeout_ms: 2000
            upstream_attempt_timeout_ms: 900
            query_log: queries.jsonl
            vpcs:
              - id: vpc-0a11ce0000000001a
                region: us-west-2
                cidrs: [10.0.0.0/16]
                clients: [127.0.0.0/8]
                resolver_rules:
                  - {id: rslvr-rr-000000000000e7111, domain: evil.test, type: FORWARD, targets: ["\(hostileEndpoint)"]}

            """)
        // x.evil.test over UDP (a miss, then a cache hit), w.evil.test over TCP (likewise). In
        // between, the name outside the rule asked directly: NSD's address.
        var direct: DigRun.Result? = nil
        for (name, options) in [("x.evil.test", [String]()), ("w.evil.test", ["+tcp"])] {
            for pass in ["miss", "cached"] {
                let r = try DigRun.query(name, server: serve.listen, options: options)
                #expect(r.status == "NOERROR", "\(name) \(pass): \(r.output)")
                #expect(r.rdata("CNAME") == ["y.rand.test."], "\(name) \(pass): \(r.output)")
                #expect(r.rdata("A") == [Self.realAddress], "\(name) \(pass): the forged address was taken: \(r.output)")
                #expect(!r.output.contains(Self.forgedAddress), "\(name) \(pass): \(r.output)")
                // The forged NS for rand.test in the authority section is dropped too.
                #expect(!r.output.contains("ns.evil.test"), "\(name) \(pass): \(r.output)")
            }
            if direct == nil { direct = try DigRun.query("y.rand.test", server: serve.listen) }
        }
        #expect(direct?.rdata("A") == [Self.realAddress], "\(direct?.output ?? "")")
        // Each name was asked of the hostile target once: the second answer came from the cache.
        let names = asked.messages.withLock { $0 }.compactMap(TestDNS.firstLabel)
        #expect(names.sorted() == ["w", "x"], "queries the hostile target saw: \(names)")
        // The log names the upstream of the last link fetched (R15): NSD for x (both legs
        // fetched), the rule's target for w (y.rand.test was cached by then).
        let log = await QueryLogFile.wait(serve.queryLog, count: 5) { _ in true }
        let x = log.filter { $0.string("query_name") == "x.evil.test." }, w = log.filter { $0.string("query_name") == "w.evil.test." }
        #expect(x.map { $0.vpcdns("decision") } == ["forward-rule", "forward-rule"], "\(x)")
        #expect(x.first?.vpcdns("upstream") == nsd.endpoint.description, "\(x)")
        #expect(w.first?.vpcdns("upstream") == hostileEndpoint.description, "\(w)")
    }

    @Test("1,000 upstream queries (cache misses) leave from at least 500 different source ports (P11)")
    func manySourcePorts() async throws {
        let inbox = Inbox()
        let upstream = try await FakeUpstream.responder(.rcode(0), record: inbox)
        defer { upstream.channel.close(promise: nil) }
        // One event loop: every query meets the same socket pool (two would only spread more).
        let server = try await FaultServer(upstreams: [upstream.endpoint], settings: ["threads: 1", "upstream_attempt_timeout_ms: 1500"])
        defer { server.stop() }
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        let n = 1000
        var answered = 0
        // 50 queries in flight at a time, each name asked once (a cache miss).
        for batch in stride(from: 0, to: n, by: 50) {
            let before = client.inbox.messages.withLock { $0.count }
            for i in batch..<min(n, batch + 50) {
                try await client.send(TestDNS.query(id: UInt16(i), name: "p\(i).ports.example"), to: server.endpoint)
            }
            answered += await client.inbox.wait(count: before + 50, timeout: .seconds(5)).count - before
        }
        #expect(answered == n)
        let sources = inbox.sources.withLock { $0 }
        #expect(sources.count >= n, "the upstream saw \(sources.count) queries")
        let ports = Set(sources.map(\.port))
        #expect(ports.count >= 500, "\(sources.count) upstream queries from \(ports.count) source ports")
        print("upstream queries: \(sources.count), distinct source ports: \(ports.count)")
    }

    @Test("allowed_sources: a resolver address refuses sources not listed (no-vpc-match, vpc_id \"-\") and answers those listed")
    func allowedSources() async throws {
        let nsd = try await NSDFixture(zones: ["rand.test": Self.randZone])
        let resolver = SocketEndpoint(ip: .v4(0x7F00_5802), port: UInt16(try await freePort(host: "127.0.88.2")))
        let serve = try await MiniServe.start(listeners: 2, config: """
            listen: ["@LISTEN@"]
            upstreams: ["\(nsd.endpoint)"]
            query_log: queries.jsonl
            vpcs:
              - id: vpc-0a11ce0000000001a
                region: us-west-2
                cidrs: [10.0.0.0/16]
                clients: [127.0.0.0/8]
                resolver_addresses: ["\(resolver)"]
                allowed_sources: [127.0.0.2/32]

            """)
        let refused = try DigRun.query("y.rand.test", server: resolver, source: "127.0.0.1")
        #expect(refused.status == "REFUSED", "\(refused.output)")
        #expect(refused.answers.isEmpty)
        let allowed = try DigRun.query("y.rand.test", server: resolver, source: "127.0.0.2")
        #expect(allowed.status == "NOERROR" && allowed.rdata("A") == [Self.realAddress], "\(allowed.output)")
        // The shared listen address still answers by source (V2): allowed_sources guards only
        // the VPC's own addresses.
        let shared = try DigRun.query("y.rand.test", server: serve.listen, source: "127.0.0.1")
        #expect(shared.rdata("A") == [Self.realAddress], "\(shared.output)")

        let records = await QueryLogFile.wait(serve.queryLog, count: 3) { $0.string("query_name") == "y.rand.test." }
        let refusal = records.first { $0.string("rcode") == "REFUSED" }
        #expect(refusal?.string("vpc_id") == "-", "\(records)")
        #expect(refusal?.vpcdns("reason") == "no-vpc-match" && refusal?.vpcdns("decision") == "refused", "\(records)")
        #expect(refusal?.string("srcaddr") == "127.0.0.1", "\(records)")
        let answered = records.first { $0.string("srcaddr") == "127.0.0.2" }
        #expect(answered?.string("vpc_id") == "vpc-0a11ce0000000001a" && answered?.vpcdns("via") == "resolver_address", "\(records)")
    }
}

/// A FORWARD rule's target that lies, for any name it is asked: a CNAME from that name to
/// `y.rand.test` (outside the rule's domain `evil.test`), a forged A record for `y.rand.test`,
/// a forged NS for `rand.test` in the authority section and a forged glue record.
final class ForgingUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let inbox: Inbox
    init(inbox: Inbox) { self.inbox = inbox }

    static func wire(_ name: String) -> [UInt8] {
        name.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    static func record(_ owner: [UInt8], type: UInt16, rdata: [UInt8]) -> [UInt8] {
        owner + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1, 0, 0, 0x01, 0x2C, UInt8(rdata.count >> 8), UInt8(rdata.count & 0xFF)] + rdata
    }

    /// The lie for `query`, or nil when it is not a readable query.
    static func forgedReply(to query: ByteBuffer) -> ByteBuffer? {
        let bytes = Array(query.readableBytesView)
        guard bytes.count > 12 else { return nil }
        var i = 12
        while i < bytes.count, bytes[i] != 0 { i += Int(bytes[i]) + 1 }
        guard i + 5 <= bytes.count else { return nil }
        let question = Array(bytes[12...(i + 4)])
        var out: [UInt8] = [bytes[0], bytes[1], 0x85, 0x80, 0, 1, 0, 2, 0, 1, 0, 1]  // QR AA RD RA; 2 answers, 1 NS, 1 glue
        out += question
        out += record([0xC0, 0x0C], type: 5, rdata: wire("y.rand.test"))
        out += record(wire("y.rand.test"), type: 1, rdata: [192, 0, 2, 66])
        out += record(wire("rand.test"), type: 2, rdata: wire("ns.evil.test"))
        out += record(wire("ns.evil.test"), type: 1, rdata: [192, 0, 2, 67])
        return ByteBuffer(bytes: out)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let e = unwrapInboundIn(data)
        inbox.add(e.data, from: SocketEndpoint(e.remoteAddress))
        guard let reply = Self.forgedReply(to: e.data) else { return }
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: e.remoteAddress, data: reply)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// `vpcdns serve` with a configuration the test writes (`@LISTEN@` in it becomes a probed free
/// loopback address; relative paths are in a fresh folder), waited for until it prints
/// `listeners` UDP+TCP pairs.
final class MiniServe: Sendable {
    let process: ServeProcess
    let listen: SocketEndpoint
    let directory: URL
    var queryLog: String { directory.appendingPathComponent("queries.jsonl").path }

    private init(process: ServeProcess, listen: SocketEndpoint, directory: URL) {
        self.process = process
        self.listen = listen
        self.directory = directory
    }

    static func start(listeners: Int = 1, config: String) async throws -> MiniServe {
        let dir = try ServeHarness.makeDirectory("vpcdns-mini")
        var lastError: any Error = FixtureError("vpcdns serve never started")
        for _ in 0..<3 {
            let listen = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(try await freePort(host: "127.0.0.1")))
            let path = dir.appendingPathComponent("vpcdns.yaml")
            try config.replacingOccurrences(of: "@LISTEN@", with: listen.description).write(to: path, atomically: true, encoding: .utf8)
            let p = try ServeProcess(arguments: ["serve", "--config", path.path], directory: dir)
            do {
                _ = try await p.waitListening(count: 2 * listeners)
                return MiniServe(process: p, listen: listen, directory: dir)
            } catch {
                p.stop()
                lastError = error
            }
        }
        try? FileManager.default.removeItem(at: dir)
        throw lastError
    }

    deinit {
        process.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}
