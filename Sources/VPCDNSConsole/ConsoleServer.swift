import DNSWire
import Foundation
import Hummingbird
import LDNSKit
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import VPCDNSConfig
import VPCDNSCore
import VPCDNSLogs
import VPCDNSServer

/// The troubleshooting console (console.md): the page and its JSON API over HTTP, on
/// Hummingbird, for one running server. Read-only: nothing here changes the model or the cache.
public final class Console: Sendable {
    public let address: SocketEndpoint
    public let feed: ConsoleFeed
    let runtime: ServerRuntime
    let token: String?
    let logger: Logger
    /// Those of the `metrics` server with the console's own share of descriptors; its live
    /// stream, an event stream, has no answer deadline (`HTTPLimits.responseTimeout`).
    let limits: HTTPLimits
    /// Called with the bound address once the console listens.
    let onListening: @Sendable (SocketEndpoint) -> Void

    /// Builds the console for `runtime` and attaches the feed to its query-log writer (which
    /// `ServerRuntime` creates, writing nowhere, when only the console wants records).
    /// `limits` nil: `HTTPLimits(descriptors:)` of the runtime.
    public init(runtime: ServerRuntime, address: SocketEndpoint, token: String?, logger: Logger, limits: HTTPLimits? = nil,
                onListening: @escaping @Sendable (SocketEndpoint) -> Void = { _ in }) {
        self.runtime = runtime
        self.address = address
        self.token = token
        self.logger = logger
        self.limits = limits ?? HTTPLimits(descriptors: runtime.descriptors)
        self.onListening = onListening
        let feed = ConsoleFeed()
        self.feed = feed
        runtime.engine.queryLog?.setTap { feed.take($0) }
    }

    /// `cannot listen on console ADDR: REASON`.
    public typealias BindError = HTTPBindError

    /// Binds the address once and lets it go, so that a taken or foreign address stops
    /// `serve` at start with a clear error (as `metrics` does) instead of failing inside the
    /// running service group. Port 0 always binds.
    public static func checkBindable(_ address: SocketEndpoint) async throws {
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: address.ip.description, port: Int(address.port)).get()
            try await channel.close().get()
        } catch {
            throw BindError(server: "console", endpoint: address, reason: "\(error)")
        }
    }

    /// The console as a service of the server's group: the HTTP server and the task that
    /// moves records from the tap to the ring and the live streams.
    public var service: any Service { ConsoleService(console: self) }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ConsoleHeadersMiddleware())
        // While `metrics` names this address (the same test as
        // `MetricsHTTPServer.binderSharingConsole`'s, on the model of now, so a reload that moves
        // `metrics` here or away changes both at once), `/metrics` and `/healthz` are the metrics
        // server's: open to a scraper without the token.
        let address = self.address
        router.add(middleware: TokenMiddleware(token: token) { [runtime] in runtime.engine.current.settings.metrics == address })
        let page = ConsolePage.html(token: token)
        router.get("/") { _, _ in Response.text(page, type: "text/html; charset=utf-8") }
        router.get("/favicon.svg") { _, _ in Response.text(ConsolePage.favicon, type: "image/svg+xml") }
        router.get("/console.js") { _, _ in Response.text(ConsolePage.script, type: "text/javascript; charset=utf-8") }
        router.get("/console.css") { _, _ in Response.text(ConsolePage.style, type: "text/css; charset=utf-8") }
        router.get("/api/queries") { [self] request, _ in queries(request) }
        router.get("/api/queries/stream") { [self] request, _ in stream(request) }
        router.get("/api/explain") { [self] request, _ in explain(request) }
        router.get("/api/summary") { [self] request, _ in summary(request) }
        router.get("/api/config") { [self] _, _ in configuration() }
        let runtime = self.runtime
        OpsRoutes.add(to: router, metrics: { runtime.exporter.render() }, health: { await runtime.isHealthy() })
        return router
    }

    static func parameters(_ request: Request) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in request.uri.queryParameters { out[String(k)] = String(v) }
        return out
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response.text(value.rendered() + "\n", type: "application/json", status: status)
    }

    static func problem(_ message: String, status: HTTPResponse.Status = .badRequest) -> Response {
        json(.object([("error", .string(message))]), status: status)
    }

    // MARK: - /api/queries

    func queries(_ request: Request) -> Response {
        let p = Console.parameters(request)
        var limit = 200
        if let l = p["limit"], !l.isEmpty {
            guard let n = Int(l), n >= 1 else { return Console.problem("limit: expected a whole number from 1 to \(ConsoleFeed.ringCapacity)") }
            limit = min(n, ConsoleFeed.ringCapacity)
        }
        let records = feed.recent(RecordFilter(p), limit: limit)
        let c = feed.counts
        // The records are the log's own lines, already JSON: put in as they are.
        var out = "{\"records\":["
        for (i, r) in records.enumerated() {
            if i > 0 { out += "," }
            out += r.line
        }
        out += "],\"count\":\(records.count),\"in_memory\":\(c.inMemory),\"seen\":\(c.total),\"dropped_bytes\":\(c.droppedBytes)"
        out += ",\"malformed_lines\":\(c.malformed)}\n"
        return Response.text(out, type: "application/json")
    }

    // MARK: - /api/queries/stream

    func stream(_ request: Request) -> Response {
        guard let (subscriber, events) = feed.subscribe(RecordFilter(Console.parameters(request))) else {
            return Console.problem("too many live streams open (at most \(ConsoleFeed.maxSubscribers)); close a console tab", status: .serviceUnavailable)
        }
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            // Holding the subscriber keeps its queue registered until the stream ends.
            try await writer.write(ByteBuffer(string: ": vpcdns live queries\n\n"))
            var reported = 0
            // For a filtered stream, one buffer for its life, cleared for each write: a fresh
            // one per drain (a megabyte or two under load) is fresh memory each time, and
            // filling it cost a page fault per 4 kB. By the next drain the socket has taken the
            // last write, so the buffer is ours alone again and `clear` keeps its memory (when
            // it is not, `clear` starts another, as a fresh buffer would).
            var buffer = ByteBuffer()
            for await event in events {
                // One write per drain: a `data:` message per record, as the log wrote it. With
                // no filter, the chunks' own framed bytes (slices, no copy); otherwise the
                // matching lines copied into `buffer`.
                buffer.clear()
                var frames: [ByteBuffer] = []
                var records = 0
                let skipped = subscriber.skipped.load(ordering: .relaxed)
                if skipped != reported {
                    buffer.writeString("event: skipped\ndata: \(skipped)\n\n")
                    reported = skipped
                }
                switch event {
                case .batch(let b):
                    records = b.count
                    if let f = b.frames {
                        frames = f
                    } else {
                        buffer.reserveCapacity(buffer.writerIndex + b.byteCount + 8 * b.count)
                        b.forEachLine { line in
                            buffer.writeStaticString("data: ")
                            buffer.writeBytes(line)
                            buffer.writeStaticString("\n\n")
                        }
                    }
                case .ping: buffer.writeStaticString(": ping\n\n")
                }
                // The queue has room again only once the browser took the records: a slow
                // one fills it and loses what comes next (counted), the drain never waits.
                defer { subscriber.delivered(records) }
                if frames.isEmpty {
                    try await writer.write(buffer)
                } else {
                    if buffer.readableBytes > 0 { frames.insert(buffer, at: 0) }
                    try await writer.write(contentsOf: frames)
                }
            }
            try await writer.finish(nil)
        })
    }

    // MARK: - /api/explain

    func explain(_ request: Request) -> Response {
        let p = Console.parameters(request)
        guard let nameText = p["name"], !nameText.isEmpty else { return Console.problem("name: required") }
        let name: DNSName
        do { name = try DNSName(nameText) } catch { return Console.problem("name: \(error)") }
        guard let type = RRType(mnemonic: (p["type"].flatMap { $0.isEmpty ? nil : $0 } ?? "A").uppercased()) else {
            return Console.problem("type: unknown record type \(p["type"] ?? "")")
        }
        guard let fromText = p["from"], let client = IPAddress(fromText) else {
            return Console.problem("from: the client's address is required (an IP address)")
        }
        let snap = runtime.engine.current
        var listener = snap.settings.listen.first ?? SocketEndpoint("127.0.0.1:1053")!
        if let to = p["to"], !to.isEmpty {
            guard let l = SocketEndpoint(to) else { return Console.problem("to: expected IP:PORT ([::1]:1053 for IPv6)") }
            listener = l
        }
        // The same path as `vpcdns explain`, on the model and health states serving now.
        let decision = snap.resolver.resolve(Question(name: name, type: type), client: client, listener: listener, explain: true,
                                             routing: RoutingInput(health: snap.health, seed: UInt64.random(in: 0...UInt64.max)))
        let e = Explanation(decision: decision, model: snap.resolver.model, client: client, listener: listener, upstreams: snap.upstreamPlan)
        return Console.json(e.json(format: RecordText.presentation, rdata: RecordText.rdataPresentation))
    }

    // MARK: - /api/summary

    func summary(_ request: Request) -> Response {
        let p = Console.parameters(request)
        let windowText = p["window"].flatMap { $0.isEmpty ? nil : $0 } ?? "15m"
        guard let window = Console.duration(windowText), window >= 10, window <= 86_400 else {
            return Console.problem("window: expected a duration from 10s to 24h (e.g. 90s, 15m, 1h)")
        }
        let vpc = p["vpc"].flatMap { $0.isEmpty ? nil : $0 }
        let now = Date().timeIntervalSince1970
        let start = now - Double(window)
        let records = feed.since(start) { vpc == nil || $0.vpc == vpc }
        let buckets = 60
        let width = Double(window) / Double(buckets)
        let groups = ["private", "forwarded", "refused", "error"]
        var counts = Dictionary(uniqueKeysWithValues: groups.map { ($0, [Int](repeating: 0, count: buckets)) })
        var names: [String: Int] = [:], nx: [String: Int] = [:], servfail: [String: Int] = [:]
        var byGroup: [String: Int] = [:]
        var latencies: [Int] = []
        for r in records {
            let b = min(buckets - 1, max(0, Int((r.receivedAt - start) / width)))
            counts[r.category]![b] += 1
            byGroup[r.category, default: 0] += 1
            names[r.name, default: 0] += 1
            if r.rcode == "NXDOMAIN" { nx[r.name, default: 0] += 1 }
            if r.rcode == "SERVFAIL" { servfail[r.name, default: 0] += 1 }
            latencies.append(r.latencyMicros)
        }
        latencies.sort()
        func top(_ d: [String: Int]) -> JSONValue {
            .array(d.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(10).map {
                .object([("name", .string($0.key)), ("count", .int($0.value))])
            })
        }
        func percentile(_ q: Double) -> JSONValue {
            latencies.isEmpty ? .null : .int(latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))])
        }
        let c = feed.counts
        return Console.json(.object([
            ("vpc", .str(vpc)),
            ("window_seconds", .int(window)),
            ("start", .string(Console.iso(start))),
            ("end", .string(Console.iso(now))),
            ("bucket_seconds", .string(String(format: "%g", width))),
            ("queries", .int(records.count)),
            ("by_decision", .object(groups.map { ($0, .int(byGroup[$0] ?? 0)) })),
            ("series", .object(groups.map { g in (g, .array(counts[g]!.map { .int($0) })) })),
            ("top_names", top(names)),
            ("nxdomain_names", top(nx)),
            ("servfail_names", top(servfail)),
            ("latency_us", .object([("p50", percentile(0.5)), ("p90", percentile(0.9)), ("p99", percentile(0.99))])),
            // The figures come from the records kept in memory: a busier server keeps a shorter past.
            ("in_memory", .int(c.inMemory)),
            ("oldest_in_memory", feed.oldest.map { .string(Console.iso($0.receivedAt)) } ?? .null),
        ]))
    }

    /// `15m`, `2h`, `1h30m` (`vpcdns logs --since`'s parser) or bare seconds: whole seconds.
    static func duration(_ text: String) -> Int? {
        if let seconds = Int(text) { return seconds > 0 ? seconds : nil }
        return LogTime.parseAge(text).map { Int($0 / 1_000_000) }
    }

    /// `2026-11-27T20:15:03Z` (the query log's own formatter).
    static func iso(_ seconds: Double) -> String {
        Timestamp.iso8601(micros: Int64(seconds * 1_000_000), fraction: false)
    }

    // MARK: - /api/config

    func configuration() -> Response {
        // What `vpcdns check --json` prints for the file, then what this server runs with.
        let path = runtime.configPath
        let summary = HeapPolicy.loading {
            CheckSummary(path: path, result: ConfigLoader.load(path: path)) { loaded in
                UpstreamReview(loaded: loaded, listeners: UpstreamReview.listeners(of: loaded.model, override: nil),
                               localAddresses: LocalAddresses.current())
            }
        }
        var fields: [(String, JSONValue)] = []
        if case .object(let o) = summary.json { fields = o } else { fields = [("check", summary.json)] }
        fields.append(("upstreams_in_use", .strings(runtime.upstreamLines)))
        fields.append(("health_checks", .array(runtime.health.status.map { s in
            .object([("id", .string(s.id)), ("status", .string(!s.checked ? "not checked yet" : s.healthy ? "healthy" : "unhealthy"))])
        })))
        fields.append(("loaded_at", .string(Console.iso(Double(runtime.loadedAt)))))
        return Console.json(.object(fields))
    }
}

/// 401 for any request without the token (console.md): `Authorization: Bearer TOKEN`, or
/// `?token=TOKEN` (the page's address, and its live stream: EventSource sends no headers).
struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?
    /// True while `/metrics` and `/healthz` are served without the token (`metrics` names the
    /// console's address).
    var opsOpen: @Sendable () -> Bool = { false }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token, !(OpsRoutes.paths.contains(request.uri.path) && opsOpen()) else { return try await next(request, context) }
        var offered: [String] = []
        if let h = request.headers[.authorization], h.hasPrefix("Bearer ") { offered.append(String(h.dropFirst(7))) }
        if let q = request.uri.queryParameters["token"] { offered.append(String(q)) }
        if offered.contains(where: { TokenMiddleware.same($0, token) }) { return try await next(request, context) }
        var response = Response.text("401: this console needs its token (Authorization: Bearer TOKEN, or ?token=TOKEN)\n",
                                     type: "text/plain", status: .unauthorized)
        response.headers[.wwwAuthenticate] = "Bearer realm=\"vpcdns console\""
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// Compares without stopping at the first difference.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = x.count ^ y.count
        for i in 0..<min(x.count, y.count) { diff |= Int(x[i] ^ y[i]) }
        return diff == 0
    }
}

/// Headers on every answer: nothing from elsewhere may load or run, not even if a record's
/// text ever became markup; no framing, no sniffing, no caching of query data.
struct ConsoleHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.init("Content-Security-Policy")!] =
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

/// The HTTP server and the feed's drain loop, for the life of the server's service group.
struct ConsoleService: Service {
    let console: Console

    func run() async throws {
        let c = console
        let host = c.address.ip.description
        let limits = c.limits
        let app = Application(
            router: c.makeRouter(),
            server: BoundedHTTP1Channel.builder(limits: limits, gate: HTTPConnectionGate(limit: limits.connectionLimit)),
            configuration: .init(address: .hostname(host, port: Int(c.address.port)), serverName: "vpcdns", backlog: limits.backlog),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? Int(c.address.port)
                c.onListening(SocketEndpoint(ip: c.address.ip, port: UInt16(port)))
            },
            logger: c.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // Every 50 ms while a page streams (its batches), every 100 ms otherwise: then
                // only the ring needs the records, and a drain keeps at most its capacity (the
                // tap's buffer, which holds what comes between two drains, stays a few MB).
                var lastPing = ContinuousClock.now
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    c.feed.drain()
                    if ContinuousClock.now - lastPing >= .seconds(10) {
                        c.feed.ping()
                        lastPing = ContinuousClock.now
                    }
                    try? await Task.sleep(for: .milliseconds(c.feed.subscriberCount > 0 ? 50 : 100))
                }
            }
            tasks.addTask {
                try await withGracefulShutdownHandler {
                    // No signals of its own: the server's group stops the console, after the
                    // listeners drained (`ServerRuntime.run(extra:)`). Hummingbird's default
                    // (SIGTERM, SIGINT) stopped it accepting at the signal, during the drain.
                    try await app.runService(gracefulShutdownSignals: [])
                } onGracefulShutdown: {
                    // Live streams never end by themselves: end them so the server can stop.
                    c.feed.closeAll()
                }
            }
            try await tasks.next()
            c.feed.closeAll()
            try await tasks.next()
        }
    }
}
