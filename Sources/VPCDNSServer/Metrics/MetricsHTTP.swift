import VPCDNSCore

/// The HTTP server of the `metrics` address (O5: `/metrics` and `/healthz`), as the runtime
/// sees it. This target has no HTTP stack: the one that does (`VPCDNSConsole`, on Hummingbird)
/// binds it through a `MetricsHTTPBinder` handed to `ServerRuntime`, so that a start and a
/// reload bind, move and close it here, where a bind failure can stop the start or reject the
/// reload with nothing changed.
public protocol MetricsHTTPServing: Sendable {
    /// The address actually bound (port 0 gets its real port).
    var bound: SocketEndpoint { get }
    /// Stops accepting; open connections end with their request.
    func close() async
}

/// Binds the metrics HTTP server for `runtime` (its exporter, `isHealthy`, and its descriptor
/// budget's `httpConnections`) on an address; throws when the address cannot be bound.
public typealias MetricsHTTPBinder = @Sendable (SocketEndpoint, ServerRuntime) async throws -> any MetricsHTTPServing
