#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals
import VPCDNSConfig
import VPCDNSCore

/// `vpcdns serve` put together: the model, the engine, the listeners, the query log and the
/// signal handling, as services of one `ServiceGroup`.
///
/// Service order matters: the group stops services in reverse order, so the listeners
/// (listed last) stop first and finish their in-flight queries, then the query log writes
/// every accepted record, then the event loops go (O3).
public final class ServerRuntime: Sendable {
    public let configPath: String
    public let listenOverride: [SocketEndpoint]?
    public let engine: QueryEngine
    public let listeners: DNSListeners
    public let group: MultiThreadedEventLoopGroup
    /// O5: the counters, their Prometheus rendering, and the `/metrics` server when configured.
    public let metrics: DNSMetrics
    public let exporter: MetricsExporter
    /// R18: the `health_checks`, run for the life of the server; reloads keep unchanged ones.
    public let health: HealthMonitor
    /// `console` as loaded at start: where the console listens for the life of the process (a
    /// reload that changes it takes effect at the next restart, so the model serving now may
    /// name another address).
    public let consoleAddress: SocketEndpoint?
    let metricsServer = Mutex<(any MetricsHTTPServing)?>(nil)
    /// Binds the `metrics` address (at start and when a reload moves it).
    let metricsHTTP: MetricsHTTPBinder?
    /// How many descriptors client connections may hold (HTTP, DNS over TCP), from the soft
    /// limit after raising it to the hard limit.
    public let descriptors: DescriptorBudget
    /// SIGHUP and SIGUSR1, trapped from the start: `serve` prints that it is listening before
    /// `run()` begins, and a SIGHUP sent right then (a reload just after a start) must not
    /// kill the process by its default action. Signals are buffered until `run()` reads them.
    let signals: UnixSignalsSequence
    /// SIGTERM and SIGINT, trapped from the start as well: a stop asked for while the
    /// listeners are already answering but the services are not running yet is kept, not lost
    /// to the default action (which would kill the process without flushing the log).
    let stopSignals: UnixSignalsSequence
    public let logger: Logger
    /// O8: dnstap, when configured at start (a changed `dnstap` takes effect at restart).
    public let dnstap: DnstapTap?
    /// The upstream addresses in use and left out (O6), as the startup lines print them.
    let upstreamSummary = Mutex<[String]>([])
    /// O7: the sockets open and the addresses each one serves, as configured now.
    let listenPlan = Mutex<ListenPlan>(ListenPlan(addresses: []))
    /// O2: when the configuration serving now was loaded (wall clock, seconds since 1970).
    let loadedAtSeconds = Mutex<Int64>(Int64(time(nil)))

    public enum StartError: Error, CustomStringConvertible {
        case config(ConfigErrors)
        case upstreams(String)
        case queryLog(String)
        case listen(String)
        case metrics(String)
        public var description: String {
            switch self {
            case .config(let e): e.errors.map(\.description).joined(separator: "\n")
            case .upstreams(let s), .queryLog(let s), .listen(let s), .metrics(let s): s
            }
        }
    }

    /// Loads the configuration, opens the query log and every listener. Nothing serves yet
    /// when this throws; a bind failure names the address (O1). `metricsHTTP` serves the
    /// `metrics` address; without it a configuration that sets `metrics` does not start.
    public init(configPath: String, listenOverride: [SocketEndpoint]?, logger: Logger,
                metricsHTTP: MetricsHTTPBinder? = nil) async throws {
        self.configPath = configPath
        self.metricsHTTP = metricsHTTP
        self.listenOverride = listenOverride
        self.logger = logger
        let (softBefore, softAfter) = DescriptorBudget.raiseSoftLimit()
        if softAfter > softBefore { logger.info("raised the open-files limit from \(softBefore) to \(softAfter) (the hard limit)") }
        self.descriptors = DescriptorBudget.current
        self.signals = await UnixSignalsSequence(trapping: .sighup, .sigusr1)
        self.stopSignals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let metrics = DNSMetrics()
        self.metrics = metrics
        // Probes use NIO's shared group: they are few, and must not wait for the DNS loops.
        let health = HealthMonitor(group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        self.health = health
        let (loaded, snapshot, review, tap) = try HeapPolicy.loading { () throws -> (LoadedConfig, QueryEngine.Snapshot, UpstreamReview, DnstapTap?) in
            switch ConfigLoader.load(path: configPath) {
            case .success(let l):
                let review = ServerRuntime.review(l, override: listenOverride, bound: [])
                // Before a failure for want of an upstream: the warnings say what was left out.
                for w in l.warnings + review.warnings { logger.warning("\(w)") }
                // O8: the snapshots' upstream clients report to it, so it exists before them.
                let tap = l.model.settings.dnstap.map { DnstapTap(settings: $0) }
                return (l, try ServerRuntime.snapshot(l, review: review, observer: metrics, health: health, tap: tap), review, tap)
            case .failure(let e): throw StartError.config(e)
            }
        }
        self.dnstap = tap
        consoleAddress = loaded.model.settings.console
        metrics.adopt(snapshot.requests)
        metrics.setTimed(loaded.model.settings.metrics != nil)
        if loaded.model.healthChecks.contains(where: { $0.kind == .https }), HTTPSProbe.curl == nil {
            logger.warning("HTTPS health checks run curl, which is not installed (\(HTTPSProbe.candidates.joined(separator: ", "))): every HTTPS check will fail")
        }
        var queryLog: QueryLogWriter? = nil
        if let path = loaded.model.settings.queryLog {
            do { queryLog = try QueryLogWriter(path: path) } catch { throw StartError.queryLog("\(error)") }
        } else if loaded.model.settings.console != nil {
            // The console's live list is fed by the log's records: built, written nowhere.
            queryLog = QueryLogWriter(discardingWithCapacity: 65_536)
        }
        // Its thread starts with `run()`; messages of queries answered before then wait in its queue.
        engine = QueryEngine(snapshot: snapshot, queryLog: queryLog, metrics: metrics, dnstap: tap)
        group = MultiThreadedEventLoopGroup(numberOfThreads: ServerRuntime.threads(loaded.model.settings))
        listeners = DNSListeners(group: group, processor: engine,
                                 configuration: ServerRuntime.listenerConfiguration(loaded.model.settings, descriptors: descriptors), logger: logger)
        exporter = MetricsExporter(metrics: metrics, engine: engine, listenerStats: listeners.stats, health: health)
        warnIfLowered(loaded.model.settings)
        let plan = ListenPlan(model: loaded.model, override: listenOverride)
        let endpoints = plan.sockets
        do {
            _ = try await listeners.update(to: endpoints)
        } catch {
            try? await group.shutdownGracefully()
            throw StartError.listen("\(error)")
        }
        // O6 once more with the real ports of port-0 listeners, which were unknown before.
        var finalReview = review
        let bound = await listeners.listeners.map(\.bound)
        if bound.contains(where: { !endpoints.contains($0) }) {
            let again = ServerRuntime.review(loaded, override: listenOverride, bound: bound)
            if again.plan != review.plan {
                for w in again.warnings where !review.warnings.contains(w) { logger.warning("\(w)") }
                do {
                    engine.install(try ServerRuntime.snapshot(loaded, review: again, observer: metrics, health: health, tap: tap))
                } catch {
                    await listeners.shutdown(gracePeriod: .zero)
                    try? await group.shutdownGracefully()
                    throw error
                }
                finalReview = again
            }
        }
        upstreamSummary.withLock { $0 = finalReview.summaryLines }
        listenPlan.withLock { $0 = plan }
        if let m = loaded.model.settings.metrics {
            do {
                let server = try await bindMetrics(m)
                metricsServer.withLock { $0 = server }
            } catch {
                await listeners.shutdown(gracePeriod: .zero)
                try? await group.shutdownGracefully()
                throw StartError.metrics("\(error)")
            }
        }
    }

    /// Event loops: `threads`, or one per core.
    static func threads(_ s: Settings) -> Int { s.threads ?? System.coreCount }

    static func listenerConfiguration(_ s: Settings, descriptors: DescriptorBudget) -> ListenerConfiguration {
        var c = ListenerConfiguration()
        // One UDP socket per event loop on each address (SO_REUSEPORT).
        c.udpSocketsPerAddress = threads(s)
        c.tcpIdleTimeoutMilliseconds = s.tcpIdleTimeoutMs
        // Never more TCP clients than descriptors allow, or they would starve forwarding.
        c.maxTCPConnections = min(s.maxTCPConnections, descriptors.dnsTCPConnections)
        c.trustedProxies = s.trustedProxies
        return c
    }

    func warnIfLowered(_ s: Settings) {
        if s.maxTCPConnections > descriptors.dnsTCPConnections {
            logger.warning("max_tcp_connections \(s.maxTCPConnections) lowered to \(descriptors.dnsTCPConnections): the open-files limit is \(descriptors.limit), of which \(descriptors.reserved) are kept for upstream sockets and files and \(descriptors.httpConnections) each for metrics and the console (raise the limit, e.g. LimitNOFILE= in systemd, to allow more)")
        }
    }

    /// O6 for `loaded` on this host: `system` read, this host's addresses enumerated, every
    /// listener (configured, and `bound` ones with their real ports) left out as a target.
    static func review(_ loaded: LoadedConfig, override: [SocketEndpoint]?, bound: [SocketEndpoint]) -> UpstreamReview {
        var listeners = UpstreamReview.listeners(of: loaded.model, override: override)
        for b in bound where !listeners.contains(b) { listeners.append(b) }
        return UpstreamReview(loaded: loaded, listeners: listeners, localAddresses: LocalAddresses.current())
    }

    /// The engine's snapshot: FORWARD rules reduced to their usable targets, the default
    /// upstreams expanded. Throws when O6 left no usable target somewhere.
    static func snapshot(_ loaded: LoadedConfig, review: UpstreamReview, observer: (any UpstreamObserver)? = nil,
                         health: HealthMonitor? = nil, tap: DnstapTap? = nil) throws -> QueryEngine.Snapshot {
        if !review.errors.isEmpty {
            throw StartError.upstreams(review.errors.map(\.description).joined(separator: "\n"))
        }
        let states: any HealthSource = health.map { $0.states(for: loaded.model.healthChecks) } ?? AllHealthy()
        return QueryEngine.Snapshot(resolver: Resolver(model: review.plan.applied(to: loaded.model)), defaultUpstreams: review.plan.defaults.endpoints,
                                    upstreamObserver: observer, upstreamPlan: review.plan, health: states, upstreamTap: tap)
    }

    /// The upstream lines printed at start (O6): addresses in use, `system` expanded, and
    /// those left out with why.
    public var upstreamLines: [String] { upstreamSummary.withLock { $0 } }

    /// O7: one line per address served by a wildcard socket instead of one of its own, e.g.
    /// `serving 10.0.0.2:53 (vpcs[1].resolver_addresses[0]) on the wildcard 0.0.0.0:53`.
    public var coveredLines: [String] {
        listenPlan.withLock { $0.coveredLines }
    }

    /// O2: when the configuration now serving was loaded (seconds since 1970, UTC).
    public var loadedAt: Int64 { loadedAtSeconds.withLock { $0 } }

    /// The `listening on udp 127.0.0.1:1053` lines (cli.md).
    public var listening: [BoundListener] {
        get async { await listeners.listeners }
    }

    /// O2: re-reads the configuration and zones; on any error the old model keeps serving.
    @discardableResult
    public func reload() async -> Bool {
        let ok = await applyReload()
        metrics.countReload(ok: ok)
        return ok
    }

    private func applyReload() async -> Bool {
        let bound = await listeners.listeners.map(\.bound)
        let outcome: Result<(LoadedConfig, QueryEngine.Snapshot, UpstreamReview), any Error> = HeapPolicy.loading {
            switch ConfigLoader.load(path: configPath) {
            case .success(let l):
                let review = ServerRuntime.review(l, override: listenOverride, bound: bound)
                return Result { (l, try ServerRuntime.snapshot(l, review: review, observer: metrics, health: health, tap: dnstap), review) }
            case .failure(let e): return .failure(e)
            }
        }
        let loaded: LoadedConfig, new: QueryEngine.Snapshot, review: UpstreamReview
        switch outcome {
        case .success(let triple): (loaded, new, review) = triple
        case .failure(let e as ConfigErrors):
            for d in e.errors { logger.error("reload rejected: \(d)") }
            return false
        case .failure(let e):
            logger.error("reload rejected: \(e)")
            return false
        }
        let old = engine.current
        // A changed `metrics` address: the new server is bound first, so a bind failure
        // rejects the reload with nothing changed; the old one is closed once all went well.
        let metricsChanged = loaded.model.settings.metrics != old.settings.metrics
        var newMetrics: (any MetricsHTTPServing)? = nil
        if metricsChanged, let m = loaded.model.settings.metrics {
            do { newMetrics = try await bindMetrics(m) } catch {
                logger.error("reload rejected: \(error)")
                return false
            }
        }
        engine.install(new)
        metrics.adopt(new.requests)
        metrics.setTimed(loaded.model.settings.metrics != nil)
        await listeners.reconfigure(ServerRuntime.listenerConfiguration(loaded.model.settings, descriptors: descriptors))
        if loaded.model.settings.maxTCPConnections != old.settings.maxTCPConnections { warnIfLowered(loaded.model.settings) }
        do {
            let plan = ListenPlan(model: loaded.model, override: listenOverride)
            let changes = try await listeners.update(to: plan.sockets)
            for l in changes.opened { logger.info("\(l)") }
            for l in changes.closed { logger.info("closed \(l.transport) \(l.bound)") }
            let before = listenPlan.withLock { p in
                defer { p = plan }
                return p.coveredLines
            }
            for l in plan.coveredLines where !before.contains(l) { logger.info("\(l)") }
        } catch {
            engine.install(old)
            metrics.adopt(old.requests)
            metrics.setTimed(old.settings.metrics != nil)
            await newMetrics?.close()
            logger.error("reload rejected: \(error)")
            return false
        }
        if metricsChanged {
            let previous = metricsServer.withLock { s in
                let p = s
                s = newMetrics
                return p
            }
            await previous?.close()
            if let p = previous { logger.info("metrics closed on http \(p.bound)") }
        }
        if loaded.model.settings.threads != old.settings.threads {
            logger.warning("threads changed: the new number of event loops takes effect at the next restart")
        }
        if loaded.model.settings.cacheSize != old.settings.cacheSize || loaded.model.settings.cacheMaxBytes != old.settings.cacheMaxBytes {
            logger.warning("cache_size or cache_max_bytes changed: the new bounds take effect at the next restart")
        }
        if loaded.model.settings.queryLog != old.settings.queryLog {
            logger.warning("query_log changed: the new path takes effect at the next restart")
        }
        if loaded.model.settings.dnstap != old.settings.dnstap {
            logger.warning("dnstap changed: the new settings take effect at the next restart")
        }
        if loaded.model.settings.console != old.settings.console || loaded.model.settings.consoleToken != old.settings.consoleToken {
            logger.warning("console or console_token changed: takes effect at the next restart")
        }
        engine.queryLog?.requestReopen()
        // R18: checks whose definition changed or went away stop now that the new model serves.
        health.retainOnly(loaded.model.healthChecks)
        for w in review.warnings { logger.warning("\(w)") }
        let lines = review.summaryLines
        let changed = upstreamSummary.withLock { old in
            defer { old = lines }
            return old != lines
        }
        if changed { for l in lines { logger.info("\(l)") } }
        loadedAtSeconds.withLock { $0 = Int64(time(nil)) }
        logger.info("configuration reloaded", metadata: ["vpcs": "\(loaded.model.vpcs.count)", "zones": "\(loaded.model.hostedZones.count)"])
        return true
    }

    /// Runs until SIGTERM or SIGINT (O3); SIGHUP reloads (O2), SIGUSR1 reopens the log (L3).
    /// `extra` (the console) runs between the query log and the listeners: it stops after
    /// the listeners drained and before the log's last write.
    public func run(extra: [any Service] = []) async throws {
        var services: [any Service] = [EventLoopGroupService(group: group)]
        if let log = engine.queryLog { services.append(log) }
        if let dnstap { services.append(dnstap) }
        services += extra
        services.append(MetricsService(runtime: self))
        services.append(SignalService(runtime: self))
        services.append(DroppedPacketReporter(stats: listeners.stats, logger: logger))
        services.append(HealthCheckService(monitor: health))
        services.append(ListenerService(listeners: listeners))
        let serviceGroup = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [],
            logger: logger))
        let stops = stopSignals
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await serviceGroup.run() }
            tasks.addTask {
                for await _ in stops {
                    await serviceGroup.triggerGracefulShutdown()
                }
            }
            // The group ends after a graceful shutdown; the signal watcher is then cancelled.
            try await tasks.next()
            tasks.cancelAll()
        }
    }
}

/// SIGHUP reloads (O2), SIGUSR1 reopens the query log (L3), until graceful shutdown.
struct SignalService: Service {
    let runtime: ServerRuntime

    func run() async throws {
        // Trapped when the runtime was created, so a SIGHUP right after start reloads.
        for await signal in runtime.signals.cancelOnGracefulShutdown() {
            if signal == .sighup {
                await runtime.reload()
            } else {
                runtime.engine.queryLog?.requestReopen()
            }
        }
    }
}
