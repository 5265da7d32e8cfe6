import Logging
import ServiceLifecycle
import VPCDNSCore

extension ServerRuntime {
    /// The address `/metrics` is served on (with its real port), when `metrics` is set.
    public var metricsAddress: SocketEndpoint? {
        metricsServer.withLock { $0?.bound }
    }

    /// `/healthz`: every listener open (and not stopping) and a model loaded. The engine
    /// always holds a model once the runtime exists, so the listeners decide.
    public func isHealthy() async -> Bool {
        await listeners.allOpen
    }

    /// Binds `metrics` through the binder the runtime was given (the HTTP stack lives in
    /// another target); its errors name the address.
    func bindMetrics(_ endpoint: SocketEndpoint) async throws -> any MetricsHTTPServing {
        guard let metricsHTTP else { throw MetricsUnavailable(endpoint: endpoint) }
        let server = try await metricsHTTP(endpoint, self)
        logger.info("metrics on http://\(server.bound)/metrics")
        return server
    }
}

/// `metrics` is set but the runtime was built without an HTTP server for it.
struct MetricsUnavailable: Error, CustomStringConvertible {
    let endpoint: SocketEndpoint
    var description: String { "cannot listen on metrics \(endpoint): no HTTP server was given to this runtime" }
}

/// Keeps the metrics server for the life of the service group: closes it after graceful
/// shutdown (it is listed before the listeners, so it stops after them and `/healthz` says
/// 503 while they drain).
struct MetricsService: Service {
    let runtime: ServerRuntime

    func run() async throws {
        try? await gracefulShutdown()
        let server = runtime.metricsServer.withLock { s in
            let p = s
            s = nil
            return p
        }
        await server?.close()
    }
}
