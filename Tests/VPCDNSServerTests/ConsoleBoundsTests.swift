import Foundation
import Testing
import VPCDNSCore

/// The console's HTTP server carries the `metrics` server's bounds (docs/operations.md,
/// "Limits"): at most 64 connections, one more closed at once rather than queued; a request
/// must arrive within 5 s; but a live stream, one answer that lasts, is never cut off.
/// Against a real `vpcdns serve`, all on 127.0.0.1.
@Suite("Console HTTP bounds (real vpcdns serve)", .serialized)
struct ConsoleBoundsTests {
    @Test("70 idle connections: those over 64 are closed at once, the rest after 5 s; a live stream open meanwhile still delivers")
    func idleFloodAndLiveStream() async throws {
        let h = try await ConsoleHarness(token: nil, queryLog: false)
        let console = try #require(SocketEndpoint(String(h.console.dropFirst("http://".count).prefix { $0 != "/" })))
        let live = try await TestRawTCP.connect(to: console)
        try await live.send("GET /api/queries/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        let streaming = await eventually(.seconds(3)) { live.text.contains("vpcdns live queries") }
        #expect(streaming, "the stream did not start: \(live.text.prefix(300))")

        var idle: [TestRawTCP] = []
        for _ in 0..<70 { idle.append(try await TestRawTCP.connect(to: console)) }
        let start = ContinuousClock.now
        try await Task.sleep(for: .seconds(1))
        let closedAtOnce = idle.filter(\.closed).count
        // Past the request deadline (5 s) with room for a loaded machine.
        let allClosed = await eventually(.seconds(9)) { idle.allSatisfy(\.closed) }
        let idleFor = ContinuousClock.now - start

        _ = try DigRun.query("www.myservice.internal", server: h.listen)
        let delivered = await eventually(.seconds(3)) { live.text.contains("www.myservice.internal.") }
        print("console bounds: 70 idle connections beside a live stream: \(closedAtOnce) closed within 1 s, all closed after \(idleFor); the stream open \(live.channel.isActive), delivered a record after that: \(delivered)")
        #expect(closedAtOnce >= 70 - 63, "connections over the limit were not closed at once")
        #expect(closedAtOnce < 70, "the request deadline closed them all at once")
        #expect(allClosed && idleFor >= .seconds(4), "idle connections held for \(idleFor)")
        #expect(!live.closed, "the live stream was cut off")
        #expect(delivered, "\(live.text.suffix(500))")
        #expect(try h.get("/healthz").status == 200)
    }
}
