import Foundation
import NIOCore
import NIOPosix
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// The cheapest possible processor: the echo reply and nothing else (no locks, no records).
struct LeanEchoProcessor: QueryProcessor {
    func process(_ query: ByteBuffer, context: QueryContext, responder: QueryResponder) -> QueryProcessingResult {
        guard let reply = TestDNS.echoReply(to: query) else { return .drop }
        return .reply(reply)
    }

    /// UDP: straight into the datapath's send slot, no `ByteBuffer` (the path a real
    /// processor's local answers take).
    func processDatagram(_ query: UnsafeRawBufferPointer, context: QueryContext, reply: UnsafeMutableRawBufferPointer,
                         responder: QueryResponder) -> DatagramProcessingResult {
        guard query.count >= 12, query[2] & 0x80 == 0, query.count <= reply.count else { return .drop }
        reply.copyMemory(from: query)
        reply[2] |= 0x80
        reply[3] &= 0xF0
        return .reply(length: query.count)
    }
}

/// Not a regular test: `VPCDNS_PERF=1 swift test -c release --filter EchoThroughput` runs
/// dnsperf for 5 s against the listeners on loopback and prints the rate.
@Suite("Echo throughput (dnsperf, opt-in)")
struct EchoThroughputTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VPCDNS_PERF"] != nil))
    func dnsperfEcho() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        defer { group.shutdownGracefully { _ in } }
        let listeners = DNSListeners(group: group, processor: LeanEchoProcessor())
        try await listeners.update(to: [loopback])
        let server = await listeners.listeners[0].bound
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-perf-\(UUID().uuidString)")
        try (0..<1000).map { "host\($0).example.org A" }.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/dnsperf")
        p.arguments = ["-s", "127.0.0.1", "-p", "\(server.port)", "-d", file.path, "-l", "5", "-c", "8", "-q", "200"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        print(out)
        print("listener stats:", listeners.stats.snapshot)
        await listeners.shutdown(gracePeriod: .zero)
        #expect(out.contains("Queries per second"))
    }
}
