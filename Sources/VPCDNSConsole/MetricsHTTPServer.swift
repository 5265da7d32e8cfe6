import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import VPCDNSCore
import VPCDNSServer

/// O5 on the `metrics` address: `GET /metrics` (Prometheus text) and `GET /healthz` (200 `ok`
/// / 503) over HTTP/1.1 on Hummingbird, bounded by `HTTPLimits`. No token: `console_token`
/// guards the console's address only, and a scraper needs none here. HEAD is answered like
/// GET, any other method 405, a request with a body 413 (and the connection closed), any other
/// path 404.
///
/// Bound and closed by `ServerRuntime` (through `binder`) so that a start fails and a reload is
/// rejected when the address cannot be bound. It runs on the DNS event loops, as a service
/// group of its own; a scrape renders on the Swift concurrency pool and only the write
/// happens on the loop.
public final class MetricsHTTPServer: MetricsHTTPServing {
    public let bound: SocketEndpoint
    let serviceGroup: ServiceGroup
    let running: Task<Void, Never>
    let gate: HTTPConnectionGate

    private init(bound: SocketEndpoint, serviceGroup: ServiceGroup, running: Task<Void, Never>, gate: HTTPConnectionGate) {
        self.bound = bound
        self.serviceGroup = serviceGroup
        self.running = running
        self.gate = gate
    }

    /// `cannot listen on metrics ADDR: REASON`.
    public typealias BindError = HTTPBindError

    /// What `ServerRuntime` binds `metrics` with: the runtime's exporter and health, at most
    /// its descriptor budget's `httpConnections` connections.
    public static let binder: MetricsHTTPBinder = { endpoint, runtime in
        try await bind(endpoint, group: runtime.group, limits: HTTPLimits(descriptors: runtime.descriptors), logger: runtime.logger,
                              metrics: { runtime.exporter.render() }, health: { await runtime.isHealthy() })
    }

    /// `binder`, except for the console's own address: when `metrics` names the address of
    /// `console`, the console's server is the metrics server too (it serves `/metrics` and
    /// `/healthz`, with no token there), so nothing more is bound. The console's address is
    /// the one loaded at start (`ServerRuntime.consoleAddress`), not the model's of now: a
    /// changed `console` takes effect at the next restart, so a reload must not consult the
    /// new one (nor an earlier reload's, when `metrics` is first set on a later one).
    public static func binderSharingConsole() -> MetricsHTTPBinder {
        { endpoint, runtime in
            if endpoint == runtime.consoleAddress { return ServedByConsole(bound: endpoint) }
            return try await binder(endpoint, runtime)
        }
    }

    /// `metrics` on the console's address: the console serves it; nothing to bind or close.
    struct ServedByConsole: MetricsHTTPServing {
        let bound: SocketEndpoint
        func close() async {}
    }

    /// Open connections now, and those closed at once because `connectionLimit` were open.
    public var connections: (open: Int, refused: Int) {
        (gate.open.load(ordering: .relaxed), gate.refused.load(ordering: .relaxed))
    }

    /// Listens on `endpoint` and returns once it does; throws `BindError` when it cannot.
    public static func bind(_ endpoint: SocketEndpoint, group: any EventLoopGroup, limits: HTTPLimits = HTTPLimits(), logger: Logger,
                            metrics: @escaping @Sendable () -> String, health: @escaping @Sendable () async -> Bool) async throws -> MetricsHTTPServer {
        let router = Router(context: BasicRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: MetricsRequestPolicy())
        OpsRoutes.add(to: router, metrics: metrics, health: health)
        let gate = HTTPConnectionGate(limit: limits.connectionLimit)
        // Hummingbird's own start and stop lines would repeat vpcdns's at info level.
        var quiet = logger
        if quiet.logLevel < .notice { quiet.logLevel = .notice }
        let started = BindOutcome()
        let app = Application(
            router: router,
            server: BoundedHTTP1Channel.builder(limits: limits, gate: gate),
            configuration: .init(address: .hostname(endpoint.ip.description, port: Int(endpoint.port)), serverName: nil,
                                 backlog: limits.backlog, reuseAddress: true),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? Int(endpoint.port)
                started.finish(.success(SocketEndpoint(ip: endpoint.ip, port: UInt16(port))))
            },
            eventLoopGroupProvider: .shared(group),
            logger: quiet)
        let serviceGroup = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: quiet))
        let running = Task {
            do {
                try await serviceGroup.run()
                started.finish(.failure(BindError(server: "metrics", endpoint: endpoint, reason: "the server stopped before it listened")))
            } catch {
                started.finish(.failure(BindError(server: "metrics", endpoint: endpoint, reason: Self.describe(error))))
            }
        }
        do {
            let bound = try await started.value()
            return MetricsHTTPServer(bound: bound, serviceGroup: serviceGroup, running: running, gate: gate)
        } catch {
            await running.value
            throw error
        }
    }

    /// Stops accepting and waits for the server to end: idle connections close at once, one
    /// with a request in progress after its answer (bounded by `responseTimeout`).
    public func close() async {
        await serviceGroup.triggerGracefulShutdown()
        await running.value
    }

    /// The bind error as NIO words it, without the service group's wrapping.
    static func describe(_ error: any Error) -> String {
        if let e = error as? IOError { return e.description }
        if let e = error as? ServiceGroupError { return "\(e)" }
        return "\(error)"
    }
}

/// The first outcome of a server start (listening, or the error that stopped it), awaited once.
final class BindOutcome: Sendable {
    private let state = Mutex<(result: Result<SocketEndpoint, any Error>?, waiter: CheckedContinuation<SocketEndpoint, any Error>?)>((nil, nil))

    func finish(_ result: Result<SocketEndpoint, any Error>) {
        let waiter = state.withLock { s -> CheckedContinuation<SocketEndpoint, any Error>? in
            guard s.result == nil else { return nil }
            s.result = result
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(with: result)
    }

    func value() async throws -> SocketEndpoint {
        try await withCheckedThrowingContinuation { c in
            let ready = state.withLock { s -> Result<SocketEndpoint, any Error>? in
                if let r = s.result { return r }
                s.waiter = c
                return nil
            }
            if let ready { c.resume(with: ready) }
        }
    }
}

/// `/metrics` and `/healthz` (O5), the same on the `metrics` server and the console.
enum OpsRoutes {
    /// The paths `add` serves.
    static let paths: Set<String> = ["/metrics", "/healthz"]

    static func add(to router: Router<BasicRequestContext>, metrics: @escaping @Sendable () -> String,
                    health: @escaping @Sendable () async -> Bool) {
        router.get("/metrics") { _, _ in
            // Rendered here, on the concurrency pool: with many VPCs a scrape sums many
            // counters, and the event loops also serve DNS.
            Response.text(metrics(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/healthz") { _, _ in
            await health() ? Response.text("ok\n") : Response.text("unavailable\n", status: .serviceUnavailable)
        }
    }
}

/// The `metrics` server takes no request body (413, and the connection closes: the body is not
/// read), answers GET and HEAD only (405), names its paths on a 404, and is never cached.
struct MetricsRequestPolicy<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        if Self.hasBody(request.headers) {
            response = Response.text("no request body is accepted\n", status: .contentTooLarge)
            response.headers[.connection] = "close"
        } else if request.method != .get && request.method != .head {
            response = Response.text("method not allowed\n", status: .methodNotAllowed)
            response.headers[.allow] = "GET, HEAD"
        } else {
            do {
                response = try await next(request, context)
            } catch let error as HTTPError where error.status == .notFound {
                response = Response.text("not found: try /metrics or /healthz\n", status: .notFound)
            }
        }
        response.headers[.cacheControl] = "no-store"
        return response
    }

    static func hasBody(_ headers: HTTPFields) -> Bool {
        if headers[.transferEncoding] != nil { return true }
        return headers[values: .contentLength].contains { $0.filter { $0 != " " } != "0" }
    }
}
