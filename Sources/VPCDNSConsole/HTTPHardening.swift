import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization
import VPCDNSCore
import VPCDNSServer

/// The bounds of vpcdns's HTTP servers (`metrics`, the console), so that no HTTP client can
/// starve the DNS path of descriptors or time, or lock other HTTP clients out.
public struct HTTPLimits: Sendable {
    /// Open connections at most (`DescriptorBudget.httpConnections`); one more is accepted and
    /// closed at once, which keeps the listen queue short and holds no descriptor.
    public var connectionLimit = DescriptorBudget.maxHTTPConnections
    /// A request must arrive whole within this time of the connection or of the previous
    /// answer (so an idle keep-alive connection, a half-open peer and a byte-a-second sender
    /// are all closed after it).
    public var requestTimeout: TimeAmount = .seconds(5)
    /// An answer must be taken by the client within this time of its first bytes (a client
    /// that does not read); nil for no deadline at all. Producing it is the server's own work
    /// and is not timed. An event stream (`text/event-stream`, the console's live list) never
    /// has a deadline: it is one answer that lasts as long as the client wants it.
    public var responseTimeout: TimeAmount? = .seconds(30)
    /// Bytes one request may take, head and all (a GET has no body).
    public var maxRequestBytes = 8192
    /// Connections waiting to be accepted (the listen queue).
    public var backlog = 64
    public init() {}

    /// The bounds of one of the server's HTTP servers (`metrics` or the console): the defaults,
    /// with the share of descriptors `descriptors` gives each.
    public init(descriptors: DescriptorBudget) {
        connectionLimit = descriptors.httpConnections
    }
}

/// An HTTP server (`metrics`, the console) could not listen on its address: exit 1 at start,
/// a rejected reload.
public struct HTTPBindError: Error, CustomStringConvertible {
    /// The setting the address comes from, as the message names it: `metrics`, `console`.
    public let server: String
    public let endpoint: SocketEndpoint
    public let reason: String
    public var description: String { "cannot listen on \(server) \(endpoint): \(reason)" }
}

extension Response {
    /// A whole answer from a string: `type` its `Content-Type`.
    static func text(_ body: String, type: String = "text/plain; charset=utf-8", status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: type], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Counts a server's open connections against its limit.
final class HTTPConnectionGate: Sendable {
    let limit: Int
    let open = Atomic<Int>(0)
    let refused = Atomic<Int>(0)

    init(limit: Int) { self.limit = max(1, limit) }

    func tryAcquire() -> Bool {
        var current = open.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        refused.add(1, ordering: .relaxed)
        return false
    }

    func release() { open.subtract(1, ordering: .relaxed) }
}

/// Hummingbird's HTTP/1.1 child channel with `HTTPLimits` around it: the gate decides at
/// accept time, `HTTPConnectionGuard` goes first in the pipeline (raw bytes, before the HTTP
/// decoder) and `HTTPExchangeObserver` after the HTTP codec tells it where requests and
/// answers end. Hummingbird's own `maxConnections` stops accepting at the limit, which leaves
/// a flood waiting in the listen queue; this closes the extra connections instead.
struct BoundedHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let limits: HTTPLimits
    let gate: HTTPConnectionGate

    static func builder(limits: HTTPLimits, gate: HTTPConnectionGate) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in BoundedHTTP1Channel(responder: responder, limits: limits, gate: gate) }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let admitted = gate.tryAcquire()
        if admitted {
            let gate = self.gate
            channel.closeFuture.whenComplete { _ in gate.release() }
        }
        do {
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionGuard(limits: limits, refuse: !admitted), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let decoder = HTTP1Channel.Configuration.DecoderConfiguration(
            maxHeaderFieldSize: limits.maxRequestBytes, maxHeaderListSize: limits.maxRequestBytes, maxHeaderFieldCount: 100)
        let configuration = HTTP1Channel.Configuration(additionalChannelHandlers: [HTTPExchangeObserver()], idleTimeout: nil,
                                                       httpDecoderConfiguration: decoder)
        return HTTP1Channel(responder: responder, configuration: configuration).setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: value, logger: logger)
    }
}

/// First in a connection's pipeline, before the HTTP decoder: one deadline per connection
/// (the request's, then the answer's write), and a byte bound per request. A connection over the
/// limit (`refuse`) is closed as soon as it is active. Loop-confined.
final class HTTPConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limits: HTTPLimits
    private let refuse: Bool
    private var context: ChannelHandlerContext?
    private var deadline: Scheduled<Void>?
    /// Bytes read since the last answer was written.
    private var received = 0

    init(limits: HTTPLimits, refuse: Bool) {
        self.limits = limits
        self.refuse = refuse
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { started(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        started(context)
        context.fireChannelActive()
    }

    private func started(_ context: ChannelHandlerContext) {
        if refuse {
            context.close(promise: nil)
        } else if deadline == nil {
            arm(limits.requestTimeout)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refuse else { return }
        // Counted while an answer is being produced too: pipelined requests wait in the
        // pipeline meanwhile, so they count against the same bound.
        received += unwrapInboundIn(data).readableBytes
        if received > limits.maxRequestBytes {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }

    /// A whole request was read: its answer is being produced (untimed: the server's work).
    func requestComplete() {
        deadline?.cancel()
        deadline = nil
    }

    /// The answer's head is being written: the client now has `responseTimeout` to take it,
    /// unless it is an event stream, which lasts as long as the client wants it (the
    /// console's live list).
    func answerStarts(streaming: Bool) {
        if let t = limits.responseTimeout, !streaming {
            arm(t)
        } else {
            deadline?.cancel()
            deadline = nil
        }
    }

    /// The answer was written: the next request starts now.
    func answerWritten() {
        received = 0
        arm(limits.requestTimeout)
    }

    private func arm(_ after: TimeAmount) {
        deadline?.cancel()
        guard let context else { return }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: after) { [self] in
            deadline = nil
            self.context?.close(promise: nil)
        }
    }
}

/// After the HTTP codec: tells the connection's `HTTPConnectionGuard` where a request and its
/// answer end and which answers are event streams, and closes the connection once an answer
/// is written that says `Connection: close` (a 413, say: its body is not read) or that
/// answers a request saying it. Loop-confined.
final class HTTPExchangeObserver: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var guardian: HTTPConnectionGuard?
    /// Per request read and not yet answered, in order (pipelined requests are read ahead):
    /// whether it asked for the connection to close after its answer.
    private var closeRequested: [Bool] = []
    /// The answer being written says `Connection: close`.
    private var answerCloses = false

    func handlerAdded(context: ChannelHandlerContext) {
        guardian = try? context.pipeline.syncOperations.handler(type: HTTPConnectionGuard.self)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            closeRequested.append(Self.saysClose(head.headerFields))
        case .body:
            break
        case .end:
            guardian?.requestComplete()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            answerCloses = Self.saysClose(head.headerFields)
            guardian?.answerStarts(streaming: Self.isEventStream(head.headerFields))
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            let closes = answerCloses || (closeRequested.isEmpty ? false : closeRequested.removeFirst())
            answerCloses = false
            let written = promise ?? context.eventLoop.makePromise(of: Void.self)
            context.write(data, promise: written)
            written.futureResult.assumeIsolated().whenComplete { [self] _ in
                if closes {
                    context.close(promise: nil)
                } else {
                    guardian?.answerWritten()
                }
            }
        }
    }

    static func isEventStream(_ fields: HTTPFields) -> Bool {
        fields[.contentType].map { $0.lowercased().hasPrefix("text/event-stream") } ?? false
    }

    static func saysClose(_ fields: HTTPFields) -> Bool {
        fields[.connection].map { $0.lowercased().contains("close") } ?? false
    }
}
