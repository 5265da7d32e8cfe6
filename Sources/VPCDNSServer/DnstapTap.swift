import NIOCore
import ServiceLifecycle
import VPCDNSCore
import VPCDNSDnstap

/// Told about every upstream query written and every upstream reply accepted (O8's
/// forwarder side). Called on the exchange's event loop; must not block.
public protocol UpstreamTap: Sendable {
    /// `wire` is the query as sent (with the attempt's ID); `sentAt` the wall clock in ns.
    func forwarderQuery(_ wire: ByteBuffer, target: SocketEndpoint, transport: Transport, sentAt: Int64)
    /// `reply` as received (the attempt's ID), for the query sent at `sentAt`.
    func forwarderResponse(_ reply: ByteBuffer, query wire: ByteBuffer, target: SocketEndpoint, transport: Transport, sentAt: Int64)
}

/// O8: the engine's and the upstream client's view of dnstap. Copies what a message needs
/// (addresses, times, wire bytes) into a `DnstapEvent` and queues it with the writer, which
/// does the encoding and the socket I/O on its own thread. Exists only when `dnstap` is
/// configured: with it off, the engine and the exchanges test one optional and do nothing.
public final class DnstapTap: UpstreamTap, Service {
    public let writer: DnstapWriter

    public init(settings: DnstapSettings, capacity: Int = 16_384) {
        writer = DnstapWriter(socketPath: settings.socket, identity: settings.identity, version: settings.version,
                              kinds: Set(settings.messages.compactMap(DnstapMessageKind.init(configName:))), capacity: capacity)
    }

    /// Runs until graceful shutdown, then writes what is queued and ends the stream (STOP,
    /// FINISH). Listed before the listeners, so it stops after them (their last answers are in).
    public func run() async throws {
        writer.start()
        try? await gracefulShutdown()
        await writer.stop()
    }

    static func proto(_ t: Transport) -> DnstapEvent.SocketProtocol { t == .udp ? .udp : .tcp }

    static func bytes(_ b: ByteBuffer) -> [UInt8] { b.getBytes(at: b.readerIndex, length: b.readableBytes) ?? [] }

    /// A query read from a client.
    func clientQuery(_ query: ByteBuffer, context: QueryContext) {
        guard writer.wants(.clientQuery) else { return }
        writer.submit(DnstapEvent(kind: .clientQuery, socketProtocol: Self.proto(context.transport),
                                  queryAddress: context.client.ip.bytes, queryPort: context.client.port,
                                  responseAddress: context.listener.ip.bytes, responsePort: context.listener.port,
                                  queryTime: context.receivedAt.wallNanoseconds, queryMessage: Self.bytes(query)))
    }

    /// The answer sent back to that client.
    func clientResponse(_ reply: ByteBuffer, context: QueryContext) {
        guard writer.wants(.clientResponse) else { return }
        writer.submit(DnstapEvent(kind: .clientResponse, socketProtocol: Self.proto(context.transport),
                                  queryAddress: context.client.ip.bytes, queryPort: context.client.port,
                                  responseAddress: context.listener.ip.bytes, responsePort: context.listener.port,
                                  queryTime: context.receivedAt.wallNanoseconds, responseTime: ReceiveTime.now().wallNanoseconds,
                                  responseMessage: Self.bytes(reply)))
    }

    public func forwarderQuery(_ wire: ByteBuffer, target: SocketEndpoint, transport: Transport, sentAt: Int64) {
        guard writer.wants(.forwarderQuery) else { return }
        // The source address of an upstream socket is the kernel's choice: left out, as
        // dnstap allows.
        writer.submit(DnstapEvent(kind: .forwarderQuery, socketProtocol: Self.proto(transport),
                                  queryAddress: [], queryPort: 0,
                                  responseAddress: target.ip.bytes, responsePort: target.port,
                                  queryTime: sentAt, queryMessage: Self.bytes(wire)))
    }

    public func forwarderResponse(_ reply: ByteBuffer, query wire: ByteBuffer, target: SocketEndpoint, transport: Transport, sentAt: Int64) {
        guard writer.wants(.forwarderResponse) else { return }
        writer.submit(DnstapEvent(kind: .forwarderResponse, socketProtocol: Self.proto(transport),
                                  queryAddress: [], queryPort: 0,
                                  responseAddress: target.ip.bytes, responsePort: target.port,
                                  queryTime: sentAt, responseTime: ReceiveTime.now().wallNanoseconds,
                                  queryMessage: Self.bytes(wire), responseMessage: Self.bytes(reply)))
    }
}
