import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
import VPCDNSConsole
import VPCDNSCore
import VPCDNSServer

#if canImport(Glibc)
import Glibc
#endif

/// The `metrics` HTTP server on Hummingbird, in process and with small `HTTPLimits`, so that
/// each bound shows within a second or two: the connection limit, the request deadline (idle
/// and slow senders), the answer deadline (a client that does not read), the request size, and
/// the answers to what it does not serve. All traffic is on 127.0.0.1.
@Suite("Metrics HTTP server: each HTTPLimits bound, methods and paths", .serialized)
struct MetricsHTTPServerTests {
    static let loopback = SocketEndpoint(ip: .v4(0x7F00_0001), port: 0)

    static func start(_ limits: HTTPLimits = HTTPLimits(), metrics: @escaping @Sendable () -> String = { "vpcdns_test 1\n" },
                      healthy: @escaping @Sendable () -> Bool = { true }) async throws -> MetricsHTTPServer {
        try await MetricsHTTPServer.bind(loopback, group: testGroup, limits: limits, logger: Logger(label: "test"),
                                         metrics: metrics, health: { healthy() })
    }

    @Test("at the connection limit (3) a new connection is accepted and closed at once; a scrape gets in once one goes")
    func connectionLimit() async throws {
        var limits = HTTPLimits()
        limits.connectionLimit = 3
        limits.requestTimeout = .seconds(30)
        let server = try await Self.start(limits)
        var held: [TestRawTCP] = []
        for _ in 0..<3 { held.append(try await TestRawTCP.connect(to: server.bound)) }
        #expect(await eventually(.seconds(3), every: .milliseconds(20)) { server.connections.open == 3 })
        var extra: [TestRawTCP] = []
        for _ in 0..<5 { extra.append(try await TestRawTCP.connect(to: server.bound)) }
        let start = ContinuousClock.now
        for c in extra { _ = await c.readUntilClosed(timeout: .seconds(3)) }
        let took = ContinuousClock.now - start
        print("connection limit 3: 5 more connections closed by the server in \(took); open \(server.connections.open), refused \(server.connections.refused)")
        #expect(extra.allSatisfy { $0.closed }, "connections over the limit were kept open")
        #expect(took < .seconds(2))
        #expect(server.connections.refused == 5)
        #expect(held.allSatisfy { !$0.closed })
        // The held ones still get answers.
        try await held[0].send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let reply = await held[0].readUntilClosed(timeout: .seconds(3))
        #expect(reply.hasPrefix("HTTP/1.1 200") && reply.contains("vpcdns_test 1"), "\(reply.prefix(300))")
        #expect(await eventually(.seconds(3), every: .milliseconds(20)) { server.connections.open == 2 })
        let fresh = try await TestRawTCP.connect(to: server.bound)
        try await fresh.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(await fresh.readUntilClosed(timeout: .seconds(3)).hasPrefix("HTTP/1.1 200"))
        await server.close()
    }

    @Test("request deadline (600 ms): an idle connection, a byte-every-100-ms head and an idle keep-alive connection are closed")
    func requestDeadline() async throws {
        var limits = HTTPLimits()
        limits.requestTimeout = .milliseconds(600)
        let server = try await Self.start(limits)
        let idle = try await TestRawTCP.connect(to: server.bound)
        let slow = try await TestRawTCP.connect(to: server.bound)
        let keep = try await TestRawTCP.connect(to: server.bound)
        let start = ContinuousClock.now
        try await keep.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        // Trickled: each byte in time for an idle deadline, never a whole request in time.
        let head = Array("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + String(repeating: "s", count: 40))
        var sent = 0
        while sent < head.count && slow.channel.isActive && ContinuousClock.now - start < .seconds(5) {
            try? await slow.send(String(head[sent]))
            sent += 1
            try await Task.sleep(for: .milliseconds(100))
        }
        let slowClosedAfter = ContinuousClock.now - start
        _ = await idle.readUntilClosed(timeout: .seconds(3))
        let keepReply = await keep.readUntilClosed(timeout: .seconds(3))
        print("request deadline 600 ms: slow sender closed after \(sent) bytes, \(slowClosedAfter); idle closed: \(idle.closed); keep-alive answered then closed: \(keep.closed)")
        #expect(slow.closed && sent < 20, "the slow sender got \(sent) bytes in")
        #expect(idle.closed)
        #expect(keepReply.hasPrefix("HTTP/1.1 200") && keep.closed)
        #expect(await eventually(.seconds(2), every: .milliseconds(20)) { server.connections.open == 0 })
        await server.close()
    }

    @Test("answer deadline (1 s): a client that asks for 17 MB and never reads is closed; without the deadline it is held")
    func answerDeadline() async throws {
        let big = String(repeating: "vpcdns_padding 0\n", count: 1_000_000)
        func heldAfter(_ responseTimeout: TimeAmount?) async throws -> (open: Int, after: Int) {
            var limits = HTTPLimits()
            limits.responseTimeout = responseTimeout
            let server = try await Self.start(limits, metrics: { big })
            let client = try NonReadingHTTPClient(port: server.bound.port, path: "/metrics")
            let opened = await eventually(.seconds(3), every: .milliseconds(20)) { server.connections.open == 1 }
            try await Task.sleep(for: .seconds(3))
            let after = server.connections.open
            // Before close(): a graceful stop waits for an answer in progress.
            client.close()
            await server.close()
            return (opened ? 1 : 0, after)
        }
        let bounded = try await heldAfter(.seconds(1))
        let unbounded = try await heldAfter(nil)
        print("answer deadline: a client not reading a 17 MB answer, 3 s later: \(bounded.after) open with a 1 s deadline, \(unbounded.after) without one")
        #expect(bounded.open == 1 && unbounded.open == 1)
        #expect(bounded.after == 0, "the non-reading client was still connected")
        #expect(unbounded.after == 1, "the test shows nothing: without the deadline the connection ended anyway")
    }

    @Test("size and shape: a head over 8 KiB is cut off, a body gets 413 and the connection closes; HEAD, 405, 404; keep-alive")
    func requestShape() async throws {
        let server = try await Self.start()
        let endpoint = server.bound

        let big = try await TestRawTCP.connect(to: endpoint)
        try await big.send("GET /metrics HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Pad: \(String(repeating: "p", count: 100))\r\n", count: 100))
        let bigReply = await big.readUntilClosed(timeout: .seconds(3))
        #expect(big.closed && !bigReply.contains(" 200 "), "\(bigReply.prefix(200))")

        let post = try await TestRawTCP.connect(to: endpoint)
        try await post.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "a", count: 1000))
        let start = ContinuousClock.now
        let postReply = await post.readUntilClosed(timeout: .seconds(3))
        #expect(postReply.hasPrefix("HTTP/1.1 413"), "\(postReply.prefix(200))")
        #expect(post.closed && ContinuousClock.now - start < .seconds(2), "the 413 left the connection open")

        let keep = try await TestRawTCP.connect(to: endpoint)
        try await keep.send("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\nDELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let replies = await keep.readUntilClosed(timeout: .seconds(3))
        // Each body ends in "\n", so the next status line starts a line of its own.
        let statuses = replies.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n").filter { $0.hasPrefix("HTTP/1.1 ") }
        print("one keep-alive connection, four requests: \(statuses)")
        #expect(statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 405 Method Not Allowed", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK"])
        #expect(replies.lowercased().contains("allow: get, head"))
        #expect(replies.contains("not found: try /metrics or /healthz"))
        #expect(replies.hasSuffix("ok\n"))
        #expect(!replies.contains("vpcdns_test 1"), "HEAD sent a body")
        #expect(replies.lowercased().contains("cache-control: no-store"))
        await server.close()
    }

    @Test("a taken address: BindError naming it; close() frees the port; /healthz follows the health closure")
    func bindAndClose() async throws {
        let flag = Mutex(true)
        let server = try await Self.start(healthy: { flag.withLock { $0 } })
        #expect(server.bound.port != 0)
        do {
            _ = try await MetricsHTTPServer.bind(server.bound, group: testGroup, logger: Logger(label: "test"),
                                                 metrics: { "" }, health: { true })
            Issue.record("a second server bound \(server.bound)")
        } catch let e as MetricsHTTPServer.BindError {
            #expect(e.description.hasPrefix("cannot listen on metrics \(server.bound): "), "\(e)")
        }
        #expect(try await Shell.httpOffPool("http://\(server.bound)/healthz").status == 200)
        flag.withLock { $0 = false }
        let h = try await Shell.httpOffPool("http://\(server.bound)/healthz")
        #expect(h.status == 503 && h.body == "unavailable\n")
        await server.close()
        #expect(try await Shell.httpOffPool("http://\(server.bound)/healthz").status == 0)  // connection refused
    }
}

extension Shell {
    /// `http` from a thread of its own. A server in this process (Hummingbird) answers on the
    /// Swift concurrency pool, which has a thread per core; curl waited for on a pool thread
    /// blocks it, and two such waits at once (parallel tests, two cores) starve the server
    /// until curl gives up.
    static func httpOffPool(_ url: String) async throws -> (status: Int, body: String) {
        try await withCheckedThrowingContinuation { c in
            Thread.detachNewThread { c.resume(with: Result { try Shell.http(url) }) }
        }
    }
}
