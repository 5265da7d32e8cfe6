import NIOCore
import NIOPosix
import Synchronization
import VPCDNSCore
@testable import VPCDNSServer

/// One event loop group for every test's clients and servers.
let testGroup = MultiThreadedEventLoopGroup(numberOfThreads: 2)

/// Messages received by a test socket, waited for by polling (simple and bounded).
final class Inbox: Sendable {
    let messages = Mutex<[ByteBuffer]>([])
    let sources = Mutex<[SocketEndpoint]>([])

    func add(_ m: ByteBuffer, from: SocketEndpoint?) {
        messages.withLock { $0.append(m) }
        if let from { sources.withLock { $0.append(from) } }
    }

    /// Waits until `count` messages arrived or `timeout` passed; returns what arrived.
    func wait(count: Int, timeout: Duration) async -> [ByteBuffer] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let got = messages.withLock { $0 }
            if got.count >= count { return got }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return messages.withLock { $0 }
    }
}

final class InboxUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let inbox: Inbox
    init(inbox: Inbox) { self.inbox = inbox }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let e = unwrapInboundIn(data)
        inbox.add(e.data, from: SocketEndpoint(e.remoteAddress))
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

final class InboxTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let inbox: Inbox
    init(inbox: Inbox) { self.inbox = inbox }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbox.add(unwrapInboundIn(data), from: nil)
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A UDP DNS client over a real socket on 127.0.0.1, port 0.
final class TestUDPClient: Sendable {
    let channel: any Channel
    let inbox: Inbox

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    static func make(ipv6: Bool = false) async throws -> TestUDPClient {
        let inbox = Inbox()
        let channel = try await DatagramBootstrap(group: testGroup)
            // NIO's default datagram buffer is 2 KiB; replies can be larger.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65536))
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(InboxUDPHandler(inbox: inbox)) }
            }
            .bind(host: ipv6 ? "::1" : "127.0.0.1", port: 0).get()
        return TestUDPClient(channel: channel, inbox: inbox)
    }

    func send(_ message: ByteBuffer, to: SocketEndpoint) async throws {
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: to.socketAddress, data: message)).get()
    }

    /// Sends and waits for one reply (nil on timeout).
    func exchange(_ message: ByteBuffer, with server: SocketEndpoint, timeout: Duration = .milliseconds(1000)) async throws -> ByteBuffer? {
        let before = inbox.messages.withLock { $0.count }
        try await send(message, to: server)
        let got = await inbox.wait(count: before + 1, timeout: timeout)
        return got.count > before ? got[before] : nil
    }

    func close() async {
        try? await channel.close().get()
    }
}

/// How a `TestTCP` connection cuts what the server sends into inbox entries.
protocol TestTCPFraming {
    static func addDecoder(to pipeline: ChannelPipeline.SynchronousOperations) throws
}

/// DNS over TCP: one entry per message (its length prefix read off).
enum DNSFraming: TestTCPFraming {
    static func addDecoder(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
    }
}

/// The bytes as they come (HTTP by hand).
enum RawBytes: TestTCPFraming {
    static func addDecoder(to pipeline: ChannelPipeline.SynchronousOperations) throws {}
}

/// A DNS-over-TCP test connection: raw bytes out, framed messages in.
typealias TestTCPConnection = TestTCP<DNSFraming>

/// A plain TCP client for HTTP by hand: text out, everything the server sends until it closes.
typealias TestRawTCP = TestTCP<RawBytes>

/// The one TCP test client, to loopback only: bytes out, what the server sends in `inbox`
/// (cut by `Framing`).
final class TestTCP<Framing: TestTCPFraming>: Sendable {
    let channel: any Channel
    let inbox: Inbox

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    static func connect(to server: SocketEndpoint) async throws -> TestTCP {
        precondition(DigRun.isLoopback(server), "tests talk to loopback only")
        let inbox = Inbox()
        let channel = try await ClientBootstrap(group: testGroup)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try Framing.addDecoder(to: ch.pipeline.syncOperations)
                    try ch.pipeline.syncOperations.addHandler(InboxTCPHandler(inbox: inbox))
                }
            }
            .connect(to: server.socketAddress).get()
        return TestTCP(channel: channel, inbox: inbox)
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes).get()
    }

    /// Writes one byte at a time with a pause between, as a slow or hostile client would.
    func dripFeed(_ bytes: ByteBuffer, pause: Duration = .milliseconds(2)) async throws {
        for byte in bytes.readableBytesView {
            var one = channel.allocator.buffer(capacity: 1)
            one.writeInteger(byte)
            try await channel.writeAndFlush(one).get()
            try await Task.sleep(for: pause)
        }
    }

    var closed: Bool { !channel.isActive }

    /// True when the server closed the connection within `timeout`.
    func waitClosed(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !channel.isActive { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return !channel.isActive
    }

    func halfClose() async throws {
        try await channel.close(mode: .output).get()
    }

    func close() async {
        try? await channel.close().get()
    }
}

extension TestTCP where Framing == RawBytes {
    func send(_ text: String) async throws {
        try await send(ByteBuffer(string: text))
    }

    /// What arrived until the server closed the connection or `timeout` passed.
    func readUntilClosed(timeout: Duration) async -> String {
        _ = await waitClosed(timeout: timeout)
        return inbox.messages.withLock { $0.map { String(buffer: $0) }.joined() }
    }
}

/// Polls `check` every `every` until it holds (true) or `timeout` passes; the last check decides.
func eventually(_ timeout: Duration = .seconds(5), every: Duration = .milliseconds(50),
                _ check: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try check() { return true }
        try? await Task.sleep(for: every)
    }
    return try check()
}

extension TestRawTCP {
    /// Everything received so far.
    var text: String { inbox.messages.withLock { $0.map { String(buffer: $0) }.joined() } }
}
