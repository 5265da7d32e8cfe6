import NIOCore
import NIOPosix
import VPCDNSCore
@testable import VPCDNSServer

/// Misbehaving upstreams on 127.0.0.1, port 0.
enum FakeUpstream {
    /// A UDP socket that never reads and never answers.
    static func blackHole(port: Int = 0) async throws -> (endpoint: SocketEndpoint, channel: any Channel) {
        let ch = try await DatagramBootstrap(group: testGroup)
            .channelOption(.autoRead, value: false)
            .bind(host: "127.0.0.1", port: port).get()
        return (SocketEndpoint(ch.localAddress!)!, ch)
    }

    enum Mode: Sendable {
        /// Random bytes of random length.
        case garbage
        /// The right reply with the ID changed.
        case wrongID
        /// The reply with this rcode.
        case rcode(UInt8)
        /// NOERROR with TC set.
        case truncated
        /// A reply for another question (same ID).
        case otherQuestion
    }

    /// A UDP responder that answers every query the way `mode` says; `record` gets every
    /// query with its source.
    static func responder(_ mode: Mode, port: Int = 0, record: Inbox? = nil) async throws -> (endpoint: SocketEndpoint, channel: any Channel) {
        let ch = try await DatagramBootstrap(group: testGroup)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(MisbehavingHandler(mode: mode, record: record))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        return (SocketEndpoint(ch.localAddress!)!, ch)
    }

    /// A TCP server that accepts and closes at once.
    static func earlyClosingTCP(port: Int = 0) async throws -> (endpoint: SocketEndpoint, channel: any Channel) {
        let ch = try await ServerBootstrap(group: testGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.scheduleTask(in: .milliseconds(20)) { child.close(promise: nil) }
                return child.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: port).get()
        return (SocketEndpoint(ch.localAddress!)!, ch)
    }
}

final class MisbehavingHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let mode: FakeUpstream.Mode
    let record: Inbox?
    init(mode: FakeUpstream.Mode, record: Inbox? = nil) {
        self.mode = mode
        self.record = record
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let e = unwrapInboundIn(data)
        record?.add(e.data, from: SocketEndpoint(e.remoteAddress))
        var reply: ByteBuffer
        switch mode {
        case .garbage:
            reply = context.channel.allocator.buffer(capacity: 64)
            for _ in 0..<Int.random(in: 1...64) { reply.writeInteger(UInt8.random(in: 0...255)) }
        case .wrongID:
            guard let r = TestDNS.echoReply(to: e.data) else { return }
            reply = r
            reply.setInteger(reply.getInteger(at: reply.readerIndex, as: UInt16.self)! &+ 1, at: reply.readerIndex)
        case .rcode(let rc):
            guard let r = TestDNS.echoReply(to: e.data, rcode: rc) else { return }
            reply = r
        case .truncated:
            guard let r = TestDNS.echoReply(to: e.data, tc: true) else { return }
            reply = r
        case .otherQuestion:
            guard let id = e.data.getInteger(at: e.data.readerIndex, as: UInt16.self),
                  let r = TestDNS.echoReply(to: TestDNS.query(id: id, name: "other.example.net")) else { return }
            reply = r
        }
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: e.remoteAddress, data: reply)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}
