import AllocationCounter
import DNSWire
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing
import VPCDNSConfig
import VPCDNSCore
import UDPDatapath
@testable import VPCDNSServer

/// Issue 15: the UDP datapath's entry (`QueryEngine.processDatagram`) answers local answers and
/// cache hits with no heap allocation per datagram in steady state (query log and dnstap off).
///
/// The count is per thread (`AllocationCounter`, linked into the test binary only): the calls
/// run on the test's thread, as the datapath's own thread runs them, so NIO's threads and the
/// test runner's other tests add nothing to it.
@Suite("issue 15: no heap allocation per datagram")
struct DatagramAllocationTests {
    static let calls = 10_000

    static func config(upstream: SocketEndpoint) -> String {
        """
        listen: ["127.0.0.1:1053"]
        upstreams: ["\(upstream)"]
        vpcs:
          - id: vpc-0a11ce0000000001a
            region: us-west-2
            cidrs: [10.0.0.0/16]
            clients: [127.0.0.0/8]
            enable_dns_hostnames: true
        endpoints:
          - id: vpce-0ec2a1b2c3d4e5f60
            vpc: vpc-0a11ce0000000001a
            service: com.amazonaws.us-west-2.ec2
            type: Interface
            private_dns_enabled: true
            subnets:
              - {az: us-west-2a, ipv4: 10.0.1.10}
              - {az: us-west-2b, ipv4: 10.0.2.10}
        hosted_zones:
          - name: svc.internal
            vpcs: [vpc-0a11ce0000000001a]
            records:
              - {name: www.svc.internal, type: A, values: [10.0.5.10]}
              - {name: api.svc.internal, type: CNAME, values: [www.svc.internal.]}

        """
    }

    /// An engine over `config` with dnstap off, forwarding to `upstream`; the query log off
    /// unless `queryLog` is given.
    static func engine(upstream: SocketEndpoint, queryLog: QueryLogWriter? = nil) throws -> QueryEngine {
        let loaded: LoadedConfig
        switch ConfigLoader.load(yaml: config(upstream: upstream), path: "/nonexistent/vpcdns.yaml") {
        case .success(let l): loaded = l
        case .failure(let e): throw FixtureError("config: \(e.errors.map(\.description))")
        }
        let snapshot = QueryEngine.Snapshot(resolver: Resolver(model: loaded.model), defaultUpstreams: [upstream])
        return QueryEngine(snapshot: snapshot, queryLog: queryLog)
    }

    /// One query in a preallocated slot, as the datapath holds it.
    struct Datagram {
        let name: String
        let type: RRType
        let client: SocketEndpoint
        let bytes: UnsafeMutableRawBufferPointer

        init(_ name: String, _ type: RRType = .a, from client: String = "127.0.0.1:40000", edns: Bool = true) {
            self.name = name
            self.type = type
            self.client = SocketEndpoint(client)!
            var b = MessageBuilder()
            b.buildQuery(id: 1, question: DNSQuestion(name: try! DNSName(name), type: type), recursionDesired: true, edns: edns)
            bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: b.bytes.count, alignment: 8)
            b.bytes.withUnsafeBytes { bytes.copyMemory(from: $0) }
        }

        func setID(_ id: UInt16) {
            bytes[0] = UInt8(id >> 8)
            bytes[1] = UInt8(id & 0xFF)
        }
    }

    /// A datagram responder on a real socket of the datapath (late answers, e.g. a forwarded
    /// query's, are sent from it to a port nobody reads); its event loop is a real one, so the
    /// upstream client can run there.
    static func responder() async throws -> (QueryResponder, DatagramSocket) {
        let socket = try DatagramSocket.bind(DatagramEndpoint(address: .v4(0x7F00_0001), port: 0))
        let responder = QueryResponder(socket: socket, client: DatagramEndpoint(address: .v4(0x7F00_0001), port: 40000),
                                       local: socket.bound, loop: testGroup.next(), inFlight: InFlightCounter(stats: ListenerStats()))
        return (responder, socket)
    }

    /// Runs `calls` queries round-robin (each with its own ID) through `processDatagram` on this
    /// thread and returns the allocations they made, after checking each reply's ID and rcode.
    static func count(_ engine: QueryEngine, _ queries: [(Datagram, RCode)], responder: QueryResponder, reply: UnsafeMutableRawBufferPointer,
                      calls: Int) -> (allocations: UInt64, failures: [String]) {
        let listener = SocketEndpoint("127.0.0.1:1053")!
        var failures: [String] = []
        // VPCDNS_ALLOCATION_TRACE=1 prints a backtrace per allocation counted (to find one).
        let trace = ProcessInfo.processInfo.environment["VPCDNS_ALLOCATION_TRACE"] != nil
        vpcdns_allocations_trace(trace ? 1 : 0)
        defer { vpcdns_allocations_trace(0) }
        vpcdns_allocations_start()
        for i in 0..<calls {
            let (q, want) = queries[i % queries.count]
            let id = UInt16(truncatingIfNeeded: i &* 7919)
            q.setID(id)
            let context = QueryContext(client: q.client, listener: listener, transport: .udp, receivedAt: .now())
            let result = engine.processDatagram(UnsafeRawBufferPointer(q.bytes), context: context, reply: reply, responder: responder)
            // Checked without allocating; a failure is described after counting stops.
            guard case .reply(let n) = result, n >= 12, reply[0] == UInt8(id >> 8), reply[1] == UInt8(id & 0xFF),
                  reply[3] & 0x0F == UInt8(want.rawValue & 0x0F)
            else {
                if failures.count < 5 {
                    let counted = vpcdns_allocations_stop()
                    failures.append("\(q.name) \(q.type): \(result), rcode byte \(reply[3] & 0x0F), want \(want)")
                    vpcdns_allocations_resume(counted)
                }
                continue
            }
        }
        return (vpcdns_allocations_stop(), failures)
    }

    @Test("the counter sees allocations (so a count of 0 means something)")
    func counterWorks() {
        #expect(vpcdns_allocations_hooked() == 1, "malloc is not interposed in this test binary")
        vpcdns_allocations_start()
        let a = [UInt8](repeating: 1, count: 100 + Int.random(in: 0..<2))
        let n = vpcdns_allocations_stop()
        #expect(a.count > 0 && n >= 1)
    }

    @Test("local answers (PHZ record, CNAME chain, NXDOMAIN, NODATA, endpoint private DNS, REFUSED): 0 mallocs per datagram")
    func localAnswers() async throws {
        let (responder, channel) = try await Self.responder()
        let engine = try Self.engine(upstream: SocketEndpoint("127.0.0.1:9")!)
        let queries: [(Datagram, RCode)] = [
            (Datagram("www.svc.internal"), .noError),
            (Datagram("api.svc.internal"), .noError),
            (Datagram("nope.svc.internal"), .nxDomain),
            (Datagram("www.svc.internal", .aaaa), .noError),
            (Datagram("www.svc.internal", edns: false), .noError),
            (Datagram("ec2.us-west-2.amazonaws.com"), .noError),
            // V3: a source no VPC claims, no default VPC.
            (Datagram("www.svc.internal", from: "192.0.2.7:5300"), .refused),
        ]
        let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: DatagramSlots.replyCapacity, alignment: 8)
        defer { reply.deallocate() }
        // Warm up: the memo, the kept replies, the builder's buffers, the thread's scratch.
        let warm = Self.count(engine, queries, responder: responder, reply: reply, calls: 100 * queries.count)
        #expect(warm.failures.isEmpty, "\(warm.failures.prefix(5))")
        let measured = Self.count(engine, queries, responder: responder, reply: reply, calls: Self.calls)
        #expect(measured.failures.isEmpty, "\(measured.failures.prefix(5))")
        #expect(measured.allocations == 0,
                "\(measured.allocations) mallocs in \(Self.calls) local answers (\(Double(measured.allocations) / Double(Self.calls)) per answer)")
        // The replies are whole: the last one of the first query, parsed.
        let www = queries[0].0
        www.setID(0xBEEF)
        let context = QueryContext(client: www.client, listener: SocketEndpoint("127.0.0.1:1053")!, transport: .udp, receivedAt: .now())
        guard case .reply(let n) = engine.processDatagram(UnsafeRawBufferPointer(www.bytes), context: context, reply: reply, responder: responder)
        else { Issue.record("no reply"); return }
        let m = try DNSMessage.parse(UnsafeRawBufferPointer(rebasing: reply[0..<n]))
        #expect(m.header.id == 0xBEEF && m.rcode == .noError && m.answer.first?.rdata == [10, 0, 5, 10])
        channel.close()
    }

    @Test("cache hits of a name forwarded to NSD: 0 mallocs per datagram")
    func cacheHits() async throws {
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let (responder, channel) = try await Self.responder()
        let engine = try Self.engine(upstream: nsd.endpoint)
        let queries: [(Datagram, RCode)] = [
            (Datagram("www.example.org"), .noError),
            (Datagram("nope.example.org"), .nxDomain),
            (Datagram("www.example.org", edns: false), .noError),
        ]
        let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: DatagramSlots.replyCapacity, alignment: 8)
        defer { reply.deallocate() }
        let listener = SocketEndpoint("127.0.0.1:1053")!
        // Each name goes to NSD once (a real forwarded query; the answer comes back through the
        // responder) and is cached: wait until the cache holds all of them.
        for (q, _) in queries {
            let context = QueryContext(client: q.client, listener: listener, transport: .udp, receivedAt: .now())
            _ = engine.processDatagram(UnsafeRawBufferPointer(q.bytes), context: context, reply: reply, responder: responder)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while engine.cache.count < 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(engine.cache.count == 2, "NSD's answers were not cached")
        let warm = Self.count(engine, queries, responder: responder, reply: reply, calls: 100 * queries.count)
        #expect(warm.failures.isEmpty, "\(warm.failures.prefix(5))")
        let hitsBefore = engine.cache.stats.hits
        let measured = Self.count(engine, queries, responder: responder, reply: reply, calls: Self.calls)
        #expect(measured.failures.isEmpty, "\(measured.failures.prefix(5))")
        #expect(measured.allocations == 0,
                "\(measured.allocations) mallocs in \(Self.calls) cache hits (\(Double(measured.allocations) / Double(Self.calls)) per answer)")
        #expect(engine.cache.stats.hits - hitsBefore == UInt64(Self.calls), "every measured answer is a counted cache hit")
        let www = queries[0].0
        www.setID(0xCAFE)
        let context = QueryContext(client: www.client, listener: listener, transport: .udp, receivedAt: .now())
        guard case .reply(let n) = engine.processDatagram(UnsafeRawBufferPointer(www.bytes), context: context, reply: reply, responder: responder)
        else { Issue.record("no reply"); return }
        let m = try DNSMessage.parse(UnsafeRawBufferPointer(rebasing: reply[0..<n]))
        #expect(m.header.id == 0xCAFE && m.rcode == .noError && m.answer.first?.rdata == [192, 0, 2, 10])
        #expect((m.answer.first?.ttl ?? 0) <= 300 && (m.answer.first?.ttl ?? 0) >= 290, "TTL counted down from NSD's 300")
        channel.close()
    }
}

extension DatagramAllocationTests {
    /// With the query log on, a line is encoded straight into the thread's batch from the
    /// memo's pre-encoded pieces: no allocation either, except when the batch's buffer grows.
    /// Nothing drains the batch here (the writer is not running), so it grows all the time:
    /// a few doublings in the run, which is all that is allowed. A V refusal (no memo entry)
    /// copies the name out for its line: 1 allocation per answer, not measured here.
    @Test("with the query log on: local answers and cache hits allocate only as the thread's log batch grows")
    func queryLogOn() async throws {
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let (responder, channel) = try await Self.responder()
        let log = QueryLogWriter(discardingWithCapacity: 4 * Self.calls)
        let engine = try Self.engine(upstream: nsd.endpoint, queryLog: log)
        let queries: [(Datagram, RCode)] = [
            (Datagram("www.svc.internal"), .noError),
            (Datagram("nope.svc.internal"), .nxDomain),
            (Datagram("ec2.us-west-2.amazonaws.com"), .noError),
            (Datagram("www.example.org"), .noError),
        ]
        let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: DatagramSlots.replyCapacity, alignment: 8)
        defer { reply.deallocate() }
        let forwarded = queries[3].0
        let context = QueryContext(client: forwarded.client, listener: SocketEndpoint("127.0.0.1:1053")!, transport: .udp, receivedAt: .now())
        _ = engine.processDatagram(UnsafeRawBufferPointer(forwarded.bytes), context: context, reply: reply, responder: responder)
        let deadline = ContinuousClock.now + .seconds(10)
        while engine.cache.count < 1 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let warm = Self.count(engine, queries, responder: responder, reply: reply, calls: 100 * queries.count)
        #expect(warm.failures.isEmpty, "\(warm.failures.prefix(5))")
        let accepted = log.counts.accepted
        let measured = Self.count(engine, queries, responder: responder, reply: reply, calls: Self.calls)
        #expect(measured.failures.isEmpty, "\(measured.failures.prefix(5))")
        #expect(log.counts.accepted - accepted == UInt64(Self.calls), "every answer was logged")
        #expect(measured.allocations <= 16,
                "\(measured.allocations) mallocs in \(Self.calls) answers with the log on (\(Double(measured.allocations) / Double(Self.calls)) per answer)")
        channel.close()
    }
}

extension DatagramAllocationTests {
    @Test("a kept reply, a replayed shape and a V refusal written from the datagram are byte for byte the reply encoded afresh")
    func keptRepliesMatchFreshOnes() async throws {
        let (responder, channel) = try await Self.responder()
        let listener = SocketEndpoint("127.0.0.1:1053")!
        let warm = try Self.engine(upstream: SocketEndpoint("127.0.0.1:9")!)
        let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: DatagramSlots.replyCapacity, alignment: 8)
        defer { reply.deallocate() }
        func answer(_ engine: QueryEngine, _ q: Datagram, id: UInt16) -> [UInt8]? {
            q.setID(id)
            let context = QueryContext(client: q.client, listener: listener, transport: .udp, receivedAt: .now())
            guard case .reply(let n) = engine.processDatagram(UnsafeRawBufferPointer(q.bytes), context: context, reply: reply, responder: responder)
            else { return nil }
            return Array(reply[0..<n])
        }
        for q in [Datagram("www.svc.internal"), Datagram("api.svc.internal", edns: false), Datagram("nope.svc.internal"),
                  Datagram("www.svc.internal", .aaaa), Datagram("ec2.us-west-2.amazonaws.com"),
                  Datagram("www.svc.internal", from: "192.0.2.7:5300"), Datagram("www.svc.internal", from: "192.0.2.7:5300", edns: false)] {
            for id: UInt16 in [1, 2, 3] { _ = answer(warm, q, id: id) }
            let kept = answer(warm, q, id: 0x4242)
            // A fresh engine with the log on encodes it the general way (V refusals too).
            let fresh = try Self.engine(upstream: SocketEndpoint("127.0.0.1:9")!, queryLog: QueryLogWriter(discardingWithCapacity: 16))
            let encoded = answer(fresh, q, id: 0x4242)
            #expect(kept != nil && kept == encoded, "\(q.name) \(q.type) from \(q.client)")
        }
        channel.close()
    }
}


/// The same count through the whole UDP path: the real datapath thread (poll, recvmmsg, the
/// listener's handler with P9 and the context, the engine, sendmmsg), fed by a client on
/// real sockets. The datapath thread joins a count shared across threads from inside its
/// first query, so everything it does from then on is counted, not only `processDatagram`.
extension DatagramAllocationTests {
    /// The engine, and on each thread that calls it the shared allocation count switched on.
    final class SharingCount: QueryProcessor {
        let engine: QueryEngine
        init(_ engine: QueryEngine) { self.engine = engine }
        func process(_ query: ByteBuffer, context: QueryContext, responder: QueryResponder) -> QueryProcessingResult {
            engine.process(query, context: context, responder: responder)
        }
        func processDatagram(_ query: UnsafeRawBufferPointer, context: QueryContext, reply: UnsafeMutableRawBufferPointer,
                             responder: QueryResponder) -> DatagramProcessingResult {
            vpcdns_allocations_share()
            return engine.processDatagram(query, context: context, reply: reply, responder: responder)
        }
    }

    @Test("through the datapath thread on real sockets: local answers and cache hits, 0 mallocs per datagram")
    func wholeUDPPath() async throws {
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let engine = try Self.engine(upstream: nsd.endpoint)
        var configuration = ListenerConfiguration()
        configuration.udpSocketsPerAddress = 1
        let stats = ListenerStats()
        let listener = try UDPListener.bind(SocketEndpoint("127.0.0.1:0")!, group: testGroup, configuration: configuration,
                                            processor: SharingCount(engine), stats: stats, proxies: TrustedProxies([], stats: stats),
                                            logger: Logger(label: "test"))
        defer { Task { await listener.close() } }
        let client = try BlockingUDPClient()
        let port = listener.bound.port
        let names = ["www.svc.internal", "api.svc.internal", "nope.svc.internal", "ec2.us-west-2.amazonaws.com", "www.example.org"]
        // Each answer checked as the in-process count does: its ID, and its rcode (NXDOMAIN for `nope`).
        let rcodes: [UInt8] = [0, 0, 3, 0, 0]
        func ask(_ i: Int) -> Bool {
            let id = UInt16(truncatingIfNeeded: i)
            guard let r = client.exchange(LogRawDNS.query(id: id, name: names[i % names.count]), port: port) else { return false }
            return r.id == id && r.rcode == rcodes[i % names.count]
        }
        // Warm up: the forwarded name reaches NSD once and is cached; memo and kept replies filled.
        var answered = 0
        for i in 0..<500 where ask(i) { answered += 1 }
        #expect(answered >= 495, "warm-up: \(answered) of 500 answered")
        #expect(engine.cache.count >= 1, "www.example.org was not cached")
        let before = vpcdns_allocations_shared()
        let queries = 5_000
        answered = 0
        for i in 0..<queries where ask(i) { answered += 1 }
        let allocations = vpcdns_allocations_shared() - before
        #expect(answered == queries, "\(queries - answered) queries unanswered")
        #expect(allocations == 0, "\(allocations) mallocs on the datapath thread for \(queries) answers (\(Double(allocations) / Double(queries)) per answer)")
    }
}
