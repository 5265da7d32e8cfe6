import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing
import VPCDNSCore
@testable import VPCDNSConsole
@testable import VPCDNSServer

#if canImport(Glibc)
import Glibc
#endif

/// The console's answer deadline (`HTTPLimits.responseTimeout`, 30 s as on the `metrics`
/// server): a client that asks for a large `/api/queries` answer and never reads it is closed,
/// while a live stream (an event stream, which has no deadline) on another connection keeps
/// delivering. In process, so that the deadline can be 1 s; the console's HTTP server, its
/// feed and the runtime behind it are the real ones, all on 127.0.0.1.
@Suite("Console answer deadline (in process, real sockets)", .serialized)
struct ConsoleAnswerDeadlineTests {
    /// A query-log line as the log writes it, padded by a 1,500-byte TXT answer so that 10,000
    /// of them (15 MB) are more than the kernel's socket buffers hold.
    static func line(_ name: String) -> String {
        let txt = String(repeating: "t", count: 1_500)
        return #"{"version":"1.100000","account_id":"111122223333","region":"us-west-2","vpc_id":"vpc-0a11ce0000000001a","query_timestamp":"2026-12-06T06:00:00Z","query_name":"\#(name)","query_type":"TXT","query_class":"IN","rcode":"NOERROR","answers":[{"Rdata":"\"\#(txt)\"","Type":"TXT","Class":"IN"}],"srcaddr":"127.0.0.1","srcport":"5353","transport":"UDP","srcids":{},"vpcdns":{"decision":"private-hosted-zone","received_at":"2026-12-06T06:00:00.000001Z","latency_us":12}}"#
    }

    static func take(_ feed: ConsoleFeed, _ lines: [String]) {
        var bytes = Array(lines.joined(separator: "\n").utf8) + [10]
        bytes.withUnsafeMutableBufferPointer { feed.take(UnsafeBufferPointer($0)) }
    }

    @Test("a client not reading /api/queries?limit=10000 (15 MB) is closed after the 1 s deadline; a live stream open all along keeps delivering")
    func nonReaderClosedStreamKept() async throws {
        // The runtime the console serves; its own `console` address is not used here.
        let setup = try await ConsoleMetricsReloadTests.Setup()
        try setup.write(metrics: nil)
        let logger = Logger(label: "test")
        let runtime = try await ServerRuntime(configPath: setup.configPath, listenOverride: nil, logger: logger)
        // The console's own bounds: the metrics server's, 30 s for an answer included.
        let defaults = Console(runtime: runtime, address: SocketEndpoint("127.0.0.1:0")!, token: nil, logger: logger).limits
        #expect(defaults.responseTimeout == .seconds(30) && defaults.requestTimeout == .seconds(5))
        #expect(defaults.connectionLimit == runtime.descriptors.httpConnections)
        var limits = HTTPLimits(descriptors: runtime.descriptors)
        limits.responseTimeout = .seconds(1)
        // Only the answer deadline may close the client that does not read.
        limits.requestTimeout = .seconds(60)
        let bound = BoundAddress()
        let console = Console(runtime: runtime, address: SocketEndpoint("127.0.0.1:0")!, token: nil, logger: logger, limits: limits) {
            bound.set($0)
        }
        let group = ServiceGroup(configuration: .init(services: [console.service], gracefulShutdownSignals: [], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            defer { tasks.cancelAll() }
            let ready = await eventually(.seconds(10)) { bound.value != nil }
            let address = try #require(bound.value, "the console did not listen (\(ready))")

            // The live stream first: it is open for the whole test, far past the 1 s deadline.
            let live = try await TestRawTCP.connect(to: address)
            try await live.send("GET /api/queries/stream?name=still-live HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await eventually(.seconds(3)) { live.text.contains("vpcdns live queries") }, "\(live.text.prefix(300))")

            for chunk in stride(from: 0, to: 10_000, by: 500) {
                Self.take(console.feed, (chunk..<(chunk + 500)).map { Self.line("n\($0).example.com.") })
                console.feed.drain()
            }
            #expect(await eventually(.seconds(5)) { console.feed.counts.inMemory == 10_000 })

            let reader = try NonReadingHTTPClient(port: address.port, path: "/api/queries?limit=10000")
            defer { reader.close() }
            let asked = ContinuousClock.now
            // Well past the deadline (a loaded machine), then read what the server left.
            try await Task.sleep(for: .seconds(4))
            let (bytes, ended) = await reader.readToEnd(timeout: .seconds(15))
            let expected = reader.fullLength(of: bytes)
            print("console answer deadline 1 s: a client not reading 10,000 records got \(bytes.count) bytes of \(expected.map(String.init) ?? "?") and then \(ended ? "the end of the connection" : "nothing more") (\(ContinuousClock.now - asked) after asking)")
            #expect(ended, "the server kept the connection of a client that does not read")
            // The answer began (its head and the first megabytes, up to what the kernel held)
            // and was cut: the deadline times the writing, not the making of the answer.
            let length = try #require(expected, "no answer head in \(bytes.count) bytes")
            #expect(bytes.count > 100_000 && bytes.count < length, "\(bytes.count) of \(length) bytes")

            Self.take(console.feed, [Self.line("still-live.example.com.")])
            console.feed.drain()
            let delivered = await eventually(.seconds(5)) { live.text.contains("still-live.example.com.") }
            #expect(!live.closed, "the live stream was cut off")
            #expect(delivered, "\(live.text.suffix(300))")

            await group.triggerGracefulShutdown()
            try await tasks.next()
        }
        await runtime.listeners.shutdown(gracePeriod: .zero)
        try await runtime.group.shutdownGracefully()
    }
}

/// The console's address once it listens.
final class BoundAddress: Sendable {
    private let address = Mutex<SocketEndpoint?>(nil)
    func set(_ a: SocketEndpoint) { address.withLock { $0 = a } }
    var value: SocketEndpoint? { address.withLock { $0 } }
}

/// A client with a 4 KiB receive buffer that sends one GET and does not read: the server's
/// writes stall once the kernel buffers are full. Non-blocking, so reading it later never
/// holds a thread of the concurrency pool the in-process server needs.
final class NonReadingHTTPClient: Sendable {
    let fd: Int32

    init(port: UInt16, path: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket: \(errno)") }
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(port.bigEndian)
        a.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let r = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else { Glibc.close(fd); throw FixtureError("connect: \(errno)") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    /// Reads until the server ends the connection (true) or `timeout` passes (false).
    func readToEnd(timeout: Duration) async -> (bytes: [UInt8], ended: Bool) {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                out += chunk[0..<n]
            } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
                return (out, true)
            } else {
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        return (out, false)
    }

    /// Head plus `Content-Length`, when the head arrived.
    func fullLength(of bytes: [UInt8]) -> Int? {
        let text = String(decoding: bytes.prefix(4096), as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<end.lowerBound].lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { return nil }
        return text.utf8.distance(from: text.utf8.startIndex, to: end.upperBound) + length
    }

    func close() { Glibc.close(fd) }
}
