import NIOCore
import NIOHTTP1
import NIOPosix
import VPCDNSCore

/// O5: `GET /metrics` (Prometheus text) and `GET /healthz` (200 `ok` / 503) over HTTP/1.1,
/// on SwiftNIO's own HTTP/1 codec. Keep-alive is honoured; any other path is 404, any other
/// method 405. The server shares the DNS event loops; a scrape renders off them (on the
/// Swift concurrency pool) and only the write happens on the loop.
public final class MetricsHTTPServer: Sendable {
    public let requested: SocketEndpoint
    /// The address actually bound (port 0 gets its real port).
    public let bound: SocketEndpoint
    let channel: any Channel

    /// `health` is asked on every `/healthz`; true means 200.
    public typealias Health = @Sendable () async -> Bool

    private init(requested: SocketEndpoint, bound: SocketEndpoint, channel: any Channel) {
        self.requested = requested
        self.bound = bound
        self.channel = channel
    }

    public struct BindError: Error, CustomStringConvertible {
        public let endpoint: SocketEndpoint
        public let reason: String
        public var description: String { "cannot listen on metrics \(endpoint): \(reason)" }
    }

    public static func bind(_ endpoint: SocketEndpoint, group: any EventLoopGroup, exporter: MetricsExporter,
                            health: @escaping Health) async throws -> MetricsHTTPServer {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(exporter: exporter, health: health))
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
        return MetricsHTTPServer(requested: endpoint, bound: bound, channel: channel)
    }

    /// Stops accepting; open scrape connections end with their request.
    public func close() async {
        try? await channel.close().get()
    }
}

/// One HTTP connection. Loop-confined.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let exporter: MetricsExporter
    private let health: MetricsHTTPServer.Health
    private var head: HTTPRequestHead?

    init(exporter: MetricsExporter, health: @escaping MetricsHTTPServer.Health) {
        self.exporter = exporter
        self.health = health
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            route(context, h)
        }
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
        if !keepAlive {
            done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
