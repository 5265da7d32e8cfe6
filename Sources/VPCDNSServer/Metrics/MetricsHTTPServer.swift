import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import VPCDNSCore

/// O5: `GET /metrics` (Prometheus text) and `GET /healthz` (200 `ok` / 503) over HTTP/1.1,
/// on SwiftNIO's own HTTP/1 codec. Keep-alive is honoured; any other path is 404, any other
/// method 405, a request with a body 413. The server shares the DNS event loops; a scrape
/// renders off them (on the Swift concurrency pool) and only the write happens on the loop.
///
/// Bounded so that no HTTP client can starve the DNS path of descriptors or time
/// (`HTTPLimits`): at most `connectionLimit` connections (a new one above it is accepted and
/// closed at once, which keeps the listen queue short and no descriptor held), each closed
/// when its request does not arrive whole within `requestTimeout` of the connection or of
/// its previous answer (idle keep-alive, a half-open peer, a byte-a-second sender alike), and
/// at most `maxRequestBytes` read per request.
public final class MetricsHTTPServer: Sendable {
    public let requested: SocketEndpoint
    /// The address actually bound (port 0 gets its real port).
    public let bound: SocketEndpoint
    let channel: any Channel
    let gate: HTTPConnectionGate

    /// `health` is asked on every `/healthz`; true means 200.
    public typealias Health = @Sendable () async -> Bool

    private init(requested: SocketEndpoint, bound: SocketEndpoint, channel: any Channel, gate: HTTPConnectionGate) {
        self.requested = requested
        self.bound = bound
        self.channel = channel
        self.gate = gate
    }

    public struct BindError: Error, CustomStringConvertible {
        public let endpoint: SocketEndpoint
        public let reason: String
        public var description: String { "cannot listen on metrics \(endpoint): \(reason)" }
    }

    /// Open connections now, and those closed at once because `connectionLimit` were open.
    public var connections: (open: Int, refused: Int) {
        (gate.open.load(ordering: .relaxed), gate.refused.load(ordering: .relaxed))
    }

    public static func bind(_ endpoint: SocketEndpoint, group: any EventLoopGroup, exporter: MetricsExporter,
                            limits: HTTPLimits = HTTPLimits(), health: @escaping Health) async throws -> MetricsHTTPServer {
        let gate = HTTPConnectionGate(limit: limits.connectionLimit)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard gate.tryAcquire() else {
                    // A failed initializer makes NIO close the accepted socket at once.
                    return channel.eventLoop.makeFailedFuture(HTTPConnectionLimitReached())
                }
                channel.closeFuture.whenComplete { _ in gate.release() }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    let guardian = HTTPConnectionGuard(limits: limits)
                    try sync.addHandler(guardian)
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(MetricsHTTPHandler(exporter: exporter, health: health, guardian: guardian))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(to: endpoint.socketAddress).get()
        } catch {
            throw BindError(endpoint: endpoint, reason: describe(error))
        }
        guard let bound = channel.localAddress.flatMap(SocketEndpoint.init) else {
            try? await channel.close().get()
            throw BindError(endpoint: endpoint, reason: "no local address after bind")
        }
        return MetricsHTTPServer(requested: endpoint, bound: bound, channel: channel, gate: gate)
    }

    /// Stops accepting; open scrape connections end with their request.
    public func close() async {
        try? await channel.close().get()
    }
}

/// The bounds of the metrics HTTP server.
public struct HTTPLimits: Sendable {
    /// Open connections at most (`DescriptorBudget.httpConnections`).
    public var connectionLimit = DescriptorBudget.maxHTTPConnections
    /// A request must arrive whole within this time of the connection or of the previous
    /// answer (so an idle keep-alive connection is closed after it too).
    public var requestTimeout: TimeAmount = .seconds(5)
    /// An answer must be taken by the client within this time (a client that does not read).
    public var responseTimeout: TimeAmount = .seconds(30)
    /// Bytes one request may take, head and all (a GET has no body).
    public var maxRequestBytes = 8192
    public init() {}
}

/// Thrown from the child channel initializer so that NIO closes the new connection at once.
struct HTTPConnectionLimitReached: Error {}

/// Counts the metrics server's open connections against its limit.
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

/// First in a metrics connection's pipeline, before the HTTP decoder: one deadline per
/// connection (the request's, then the answer's), and a byte bound per request. Loop-confined.
final class HTTPConnectionGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limits: HTTPLimits
    private var context: ChannelHandlerContext?
    private var deadline: Scheduled<Void>?
    /// Bytes read since the last answer was written.
    private var received = 0

    init(limits: HTTPLimits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { arm(limits.requestTimeout) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if deadline == nil { arm(limits.requestTimeout) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Counted while an answer is being produced too: pipelined requests wait in the
        // HTTP pipeline handler, so they count against the same bound.
        received += unwrapInboundIn(data).readableBytes
        if received > limits.maxRequestBytes {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }

    /// A whole request was read: the answer now has `responseTimeout`.
    func requestComplete() {
        arm(limits.responseTimeout)
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

/// One HTTP connection. Loop-confined.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let exporter: MetricsExporter
    private let health: MetricsHTTPServer.Health
    private let guardian: HTTPConnectionGuard
    private var head: HTTPRequestHead?
    /// A request with a body was answered 413 and the connection is closing: ignore the rest.
    private var refusing = false

    init(exporter: MetricsExporter, health: @escaping MetricsHTTPServer.Health, guardian: HTTPConnectionGuard) {
        self.exporter = exporter
        self.health = health
        self.guardian = guardian
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing else { return }
        switch unwrapInboundIn(data) {
        case .head(let h):
            if Self.hasBody(h) {
                // Nothing here takes a body; answering before reading it closes the connection.
                refusing = true
                guardian.requestComplete()
                var closing = h
                closing.headers.replaceOrAdd(name: "Connection", value: "close")
                return respond(context, closing, .payloadTooLarge, "no request body is accepted\n")
            }
            head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            guardian.requestComplete()
            route(context, h)
        }
    }

    static func hasBody(_ h: HTTPRequestHead) -> Bool {
        if h.headers.contains(name: "Transfer-Encoding") { return true }
        return h.headers["Content-Length"].contains { $0.filter { $0 != " " } != "0" }
    }

    private func route(_ context: ChannelHandlerContext, _ h: HTTPRequestHead) {
        let path = h.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? h.uri
        guard h.method == .GET || h.method == .HEAD else {
            return respond(context, h, .methodNotAllowed, "method not allowed\n", extra: [("Allow", "GET, HEAD")])
        }
        switch path {
        case "/metrics":
            // Rendered off the event loop: with many VPCs a scrape sums many counters, and the
            // loop also serves DNS.
            let promise = context.eventLoop.makePromise(of: String.self)
            let exporter = self.exporter
            promise.completeWithTask { exporter.render() }
            promise.futureResult.assumeIsolated().whenSuccess { [self] text in
                respond(context, h, .ok, text, contentType: "text/plain; version=0.0.4; charset=utf-8")
            }
        case "/healthz":
            let promise = context.eventLoop.makePromise(of: Bool.self)
            let health = self.health
            promise.completeWithTask { await health() }
            promise.futureResult.assumeIsolated().whenSuccess { [self] ok in
                respond(context, h, ok ? .ok : .serviceUnavailable, ok ? "ok\n" : "unavailable\n")
            }
        default:
            respond(context, h, .notFound, "not found: try /metrics or /healthz\n")
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ body: String,
                         contentType: String = "text/plain; charset=utf-8", extra: [(String, String)] = []) {
        guard context.channel.isActive else { return }
        let keepAlive = request.isKeepAlive
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.utf8.count)")] + extra)
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        var response = HTTPResponseHead(version: request.version, status: status, headers: headers)
        response.headers.replaceOrAdd(name: "Cache-Control", value: "no-store")
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if request.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
            buffer.writeString(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        let guardian = self.guardian
        done.futureResult.assumeIsolated().whenComplete { _ in
            if keepAlive { guardian.answerWritten() } else { context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
