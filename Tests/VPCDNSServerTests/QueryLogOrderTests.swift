#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// query-log.md: "a query answered after another query of the same client was answered is
/// never written before it", whichever event loops answered them; and `vpcdns.listener`,
/// the address each query was sent to.
@Suite("Query log: per-client order and the listener field", .serialized)
struct QueryLogOrderTests {
    /// The number in `r123.myservice.internal.` / `o123.example.com.`.
    static func round(_ name: String?) -> Int? {
        guard let name, let first = name.first, first == "r" || first == "o" else { return nil }
        return Int(name.dropFirst().prefix { $0.isNumber })
    }

    @Test("one client, query after answer, over UDP from several source ports (several event loops): the log keeps the order")
    func orderAcrossEventLoops() async throws {
        let h = try await ServeHarness.start(.init(threads: 4))
        // Each source port hashes to one of the listener's SO_REUSEPORT sockets, one per event
        // loop: eight ports spread the rounds over the loops, so that consecutive rounds are
        // answered by different loops most of the time.
        let clients = try (0..<8).map { _ in try BlockingUDPClient() }
        let port = h.listen.port
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        var rounds = 0
        while rounds < 2_000 && clock.now < deadline {
            // Mostly local answers (written on the loop that read the query), every fifth one
            // forwarded (written when the upstream's answer comes back).
            let name = rounds % 5 == 4 ? "o\(rounds).example.com" : "r\(rounds).myservice.internal"
            let reply = clients[rounds % clients.count].exchange(LogRawDNS.query(id: UInt16(truncatingIfNeeded: rounds), name: name), port: port)
            guard reply != nil else {
                Issue.record("round \(rounds): no answer")
                break
            }
            rounds += 1
        }
        #expect(rounds >= 500, "too few rounds to say anything about the order: \(rounds)")
        #expect(h.stopServer() == 0)
        let records = h.log
        let order = records.compactMap { Self.round($0.string("query_name")) }
        #expect(order.count == rounds, "one record per round")
        let inversions = zip(order, order.dropFirst()).filter { $0.0 >= $0.1 }
        #expect(inversions.isEmpty, "\(inversions.count) rounds logged before the one answered just before them, first: \(inversions.prefix(5))")
        #expect(order == Array(0..<rounds))
        // Every query went to the one listener.
        #expect(Set(records.compactMap { $0.vpcdns("listener") }) == ["127.0.0.1:\(port)"])
    }

    @Test("the writer: lines handed over one after another by different threads are written in that order")
    func writerOrderAcrossThreads() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-qlog-order-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("queries.jsonl").path
        let w = try QueryLogWriter(path: path)
        let threads = 3
        let total = 30_000
        final class Shared: Sendable {
            /// Whose turn it is: line `turn` is submitted by thread `turn % threads`.
            let turn = Atomic<Int>(0)
            let stop = Atomic<Bool>(false)
            let done = Atomic<Int>(0)
        }
        let shared = Shared()
        let deadline = Date().addingTimeInterval(20)
        // A flusher far more eager than the writer task (every 10 ms), so that many flushes
        // fall between a line and the next, and some between a thread's clock read and its swap.
        Thread {
            while !shared.stop.load(ordering: .acquiring) { w.flush(); usleep(50) }
        }.start()
        for t in 0..<threads {
            Thread {
                while true {
                    let n = shared.turn.load(ordering: .acquiring)
                    if n >= total || Date() > deadline { break }
                    guard n % threads == t else { sched_yield(); continue }
                    w.submit("{\"n\":\(n)}\n")
                    shared.turn.store(n + 1, ordering: .releasing)
                }
                shared.done.add(1, ordering: .releasing)
            }.start()
        }
        while shared.done.load(ordering: .acquiring) < threads { usleep(1_000) }
        shared.stop.store(true, ordering: .releasing)
        w.flush(final: true)
        let submitted = shared.turn.load(ordering: .acquiring)
        #expect(submitted == total, "the threads took too long: \(submitted) lines")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let written = text.split(separator: "\n").map { Int($0.dropFirst(5).dropLast()) ?? -1 }
        let inversions = zip(written, written.dropFirst()).filter { $0.0 >= $0.1 }
        #expect(inversions.isEmpty, "\(inversions.count) lines written after a later one, first: \(inversions.prefix(5))")
        #expect(written == Array(0..<submitted))
        #expect(w.counts.written == UInt64(submitted) && w.counts.dropped == 0)
    }

    @Test("the writer lets go of the batches of threads that ended (datapath threads of a closed address), keeping their lines and counts")
    func batchesOfEndedThreadsAreReleased() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-qlog-ended-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("queries.jsonl").path
        let w = try QueryLogWriter(path: path)
        // Three generations of five threads, as reloads that open new addresses make.
        for generation in 0..<3 {
            let done = Atomic<Int>(0)
            for t in 0..<5 {
                let thread = Thread {
                    for i in 0..<10 { w.submit("{\"n\":\(generation * 1000 + t * 100 + i)}\n") }
                    done.add(1, ordering: .releasing)
                }
                thread.start()
            }
            let deadline = Date().addingTimeInterval(10)
            while done.load(ordering: .acquiring) < 5, Date() < deadline { usleep(1_000) }
            // Thread-specific values are released as each thread exits, just after `done`.
            usleep(100_000)
            w.flush()
            #expect(w.batchCount == 0, "generation \(generation): \(w.batchCount) batches of ended threads still held")
        }
        w.flush(final: true)
        #expect(w.counts.accepted == 150 && w.counts.written == 150 && w.counts.dropped == 0, "\(w.counts)")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 150)
    }

    @Test("vpcdns.listener: a specific listener's address, and on a wildcard listener the local address the client asked (UDP and TCP)")
    func listenerField() async throws {
        let port = try await freePort(host: "0.0.0.0")
        let h = try await ServeHarness.start(.init(listen: ["0.0.0.0:\(port)"]))
        let client = try BlockingUDPClient()
        // 127.0.0.5 and 127.0.0.6 are addresses of this host (all of 127/8 is) with no socket
        // of their own: the wildcard socket reads both. The reply's source is not checked here
        // (see ServeIntegrationTests.wildcardReplySource).
        #expect(client.exchange(LogRawDNS.query(id: 1, name: "udp5.myservice.internal"), to: "127.0.0.5", port: UInt16(port)) != nil)
        #expect(client.exchange(LogRawDNS.query(id: 2, name: "udp6.myservice.internal"), to: "127.0.0.6", port: UInt16(port)) != nil)
        _ = try h.dig("tcp6.myservice.internal", at: SocketEndpoint(ip: .v4(0x7F00_0006), port: UInt16(port)), "+tcp")
        // The VPCs' own addresses (a resolver address, an inbound endpoint) are listeners of
        // their own.
        #expect(client.exchange(LogRawDNS.query(id: 3, name: "resolver.myservice.internal"), to: "127.0.77.2", port: h.appResolver.port) != nil)
        #expect(client.exchange(LogRawDNS.query(id: 4, name: "inbound.myservice.internal"), to: "127.0.77.53", port: h.appInbound.port) != nil)
        let expected = [
            "udp5.myservice.internal.": "127.0.0.5:\(port)",
            "udp6.myservice.internal.": "127.0.0.6:\(port)",
            "tcp6.myservice.internal.": "127.0.0.6:\(port)",
            "resolver.myservice.internal.": "\(h.appResolver)",
            "inbound.myservice.internal.": "\(h.appInbound)",
        ]
        let records = await QueryLogFile.wait(h.queryLogPath, count: expected.count) { expected[$0.string("query_name") ?? ""] != nil }
        var seen: [String: String] = [:]
        for r in records { seen[r.string("query_name") ?? ""] = r.vpcdns("listener") ?? "(none)" }
        #expect(seen == expected)
        #expect(records.first { $0.string("query_name") == "resolver.myservice.internal." }?.vpcdns("via") == "resolver_address")
        #expect(records.first { $0.string("query_name") == "inbound.myservice.internal." }?.vpcdns("via") == "inbound_endpoint")
    }
}
