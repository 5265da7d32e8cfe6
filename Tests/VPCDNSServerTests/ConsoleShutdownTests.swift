import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// The console on SIGTERM (O3): it stops with the server's own group, after the listeners
/// drained (`ServerRuntime.run(extra:)`), not at the signal; and serve still exits promptly.
@Suite("Console on SIGTERM (real vpcdns serve, curl)", .serialized)
struct ConsoleShutdownTests {
    /// `curl -N` on the live stream, its output in a file; `ended` is when curl exited.
    final class Stream: Sendable {
        let process: Process
        let output: URL
        let ended = Mutex<ContinuousClock.Instant?>(nil)

        init(_ h: ConsoleHarness) throws {
            output = h.dir.appendingPathComponent("stream-\(UUID().uuidString).txt")
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-sS", "-N", "--max-time", "20", "\(h.console)/api/queries/stream"]
            process.standardOutput = try FileHandle(forWritingTo: output)
            process.standardError = FileHandle.nullDevice
            process.terminationHandler = { [weak self] _ in self?.ended.withLock { $0 = .now } }
            try process.run()
        }

        var text: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

        /// Waits (bounded) for the stream's first comment: the console answered it.
        func waitOpen() async throws {
            let deadline = ContinuousClock.now + .seconds(5)
            while !text.contains(": vpcdns live queries") && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            try #require(text.contains(": vpcdns live queries"), "the live stream opened: \(text)")
        }

        /// Waits (bounded) for curl to exit; when it did.
        func waitEnd(timeout: Duration) async -> ContinuousClock.Instant? {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if process.isRunning { return nil }
            // The termination handler runs on its own queue: give it a moment.
            for _ in 0..<100 where ended.withLock({ $0 }) == nil { try? await Task.sleep(for: .milliseconds(10)) }
            return ended.withLock { $0 }
        }

        deinit { if process.isRunning { process.terminate() } }
    }

    @Test("SIGTERM with a forwarded query in flight (upstream answers after 1.5 s) and a live stream open: the console serves until the late answer left, then the stream ends cleanly and serve exits 0")
    func stopsAfterTheDrain() async throws {
        let slow = ForwardingLoopTests.SlowUpstream(delay: .milliseconds(1500))
        let upstreamChannel = try await DatagramBootstrap(group: testGroup)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(slow) } }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { upstreamChannel.close(promise: nil) }
        let h = try await ConsoleHarness(token: nil, queryLog: false, upstream: SocketEndpoint(upstreamChannel.localAddress!)!)
        let stream = try Stream(h)
        try await stream.waitOpen()

        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        try await client.send(TestDNS.query(id: 4242, name: "late.example.org"), to: h.listen)
        // In flight once the upstream has it (bounded wait).
        for _ in 0..<250 where slow.received.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(20)) }
        try #require(slow.received.load(ordering: .relaxed) == 1, "the query reached the slow upstream")

        let clock = ContinuousClock()
        let signalled = clock.now
        h.process.signal(SIGTERM)
        // While the listeners drain, the console still answers (it stops after them).
        try await Task.sleep(for: .milliseconds(300))
        let during = try h.get("/api/queries?limit=1", maxTime: 2)
        let duringAt = clock.now - signalled

        let got = await client.inbox.wait(count: 1, timeout: .seconds(5))
        let answeredAt = clock.now - signalled
        let header = got.first.flatMap(TestDNS.header)

        let ended = await stream.waitEnd(timeout: .seconds(10))
        let endedAt = ended.map { $0 - signalled }
        let exit = await h.process.waitExit(timeout: .seconds(10))
        let report = "SIGTERM at 0; serve exit \(exit.map(String.init) ?? "none"); console GET at \(duringAt): \(during.status); answer at \(answeredAt); stream ended at \(endedAt.map { "\($0)" } ?? "never") (curl exit \(stream.process.isRunning ? -1 : stream.process.terminationStatus)); stream:\n\(stream.text)\nserve:\n\(h.process.standardError)"
        print(report)
        #expect(header.map { $0.id == 4242 && $0.rcode == 0 && $0.ancount == 1 } == true, "the in-flight query got its late answer: \(report)")
        #expect(during.status == 200, "the console answers while the listeners drain: \(report)")
        #expect(answeredAt >= .milliseconds(1000), "the answer is the upstream's late one: \(report)")
        let endedAfterAnswer = endedAt.map { $0 >= answeredAt - .milliseconds(100) } ?? false
        #expect(endedAfterAnswer, "the live stream stays open until the in-flight query was answered: \(report)")
        #expect(!stream.process.isRunning && stream.process.terminationStatus == 0, "the stream ended cleanly (curl 0): \(report)")
        #expect(exit == 0, "serve exits 0: \(report)")
    }

    @Test("SIGTERM with the console on: serve exits 0 promptly with no live stream open, and with one (which ends cleanly)")
    func exitsPromptly() async throws {
        for withStream in [false, true] {
            let h = try await ConsoleHarness(token: nil, queryLog: false)
            let stream = withStream ? try Stream(h) : nil
            try await stream?.waitOpen()
            #expect(try DigRun.query("www.myservice.internal", server: h.listen).status == "NOERROR")
            let clock = ContinuousClock()
            let signalled = clock.now
            h.process.signal(SIGTERM)
            let exit = await h.process.waitExit(timeout: .seconds(10))
            let took = clock.now - signalled
            #expect(exit == 0, "stream \(withStream): serve exits 0 (\(exit.map(String.init) ?? "still running")):\n\(h.process.standardError)")
            #expect(took < .seconds(2), "stream \(withStream): serve exited \(took) after SIGTERM")
            if let stream {
                let ended = await stream.waitEnd(timeout: .seconds(5))
                #expect(ended != nil && stream.process.terminationStatus == 0, "the live stream ended cleanly: curl \(stream.process.isRunning ? -1 : stream.process.terminationStatus)")
            }
        }
    }
}
