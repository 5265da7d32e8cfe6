import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import VPCDNSCore

/// R18: runs the configuration's `health_checks` from this host and keeps their states for
/// the engine. An unreachable target is a state, never an error: a probe that fails in any
/// way is one failure, and nothing else stops.
///
/// Each check definition has one `HealthProbe`; a reload keeps the probes (and so the states)
/// of definitions that did not change, starts new ones and retires the rest.
public final class HealthMonitor: Sendable {
    let group: any EventLoopGroup
    let logger: Logger
    /// Current probes by definition.
    private let probes = Mutex<[HealthCheck: HealthProbe]>([:])
    /// Probes added since the service last looked (it starts their loops).
    private let pending = Mutex<[HealthProbe]>([])
    private let changes: AsyncStream<Void>
    private let changed: AsyncStream<Void>.Continuation
    /// `vpcdns_health_check_transitions_total{id,to}`: by check id, to healthy / to unhealthy.
    private let transitions = Mutex<[String: (healthy: UInt64, unhealthy: UInt64)]>([:])

    public init(group: any EventLoopGroup, logger: Logger) {
        self.group = group
        self.logger = logger
        (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The states for a model's `health_checks` (indexes as in the list). Probes of unchanged
    /// definitions are shared with their states; the others start (healthy until they have
    /// run). Nothing is retired here: a reload that fails later keeps the old model, whose
    /// probes must keep running, so `retainOnly` is called once the new model is installed.
    public func states(for checks: [HealthCheck]) -> HealthStates {
        let (list, added) = probes.withLock { current -> ([HealthProbe], [HealthProbe]) in
            var list: [HealthProbe] = []
            var added: [HealthProbe] = []
            for c in checks {
                if let p = current[c] { list.append(p); continue }
                let p = HealthProbe(c)
                current[c] = p
                added.append(p)
                list.append(p)
            }
            return (list, added)
        }
        if !added.isEmpty {
            pending.withLock { $0 += added }
            changed.yield()
        }
        return HealthStates(list)
    }

    /// Stops the probes of definitions not in `checks` (the installed model's).
    public func retainOnly(_ checks: [HealthCheck]) {
        let keep = Set(checks)
        let retired = probes.withLock { current -> [HealthProbe] in
            let gone = current.filter { !keep.contains($0.key) }
            for k in gone.keys { current[k] = nil }
            return Array(gone.values)
        }
        for p in retired { p.retire() }
    }

    /// For `/metrics`: every current check's id and state, and the transitions counted.
    public var status: [(id: String, healthy: Bool, checked: Bool)] {
        probes.withLock { $0.values.map { ($0.check.id, $0.isHealthy, $0.hasRun) } }.sorted { $0.id < $1.id }
    }

    public var transitionCounts: [String: (healthy: UInt64, unhealthy: UInt64)] { transitions.withLock { $0 } }

    func noteTransition(_ probe: HealthProbe, healthy: Bool, detail: String) {
        transitions.withLock { t in
            var e = t[probe.check.id] ?? (0, 0)
            if healthy { e.healthy += 1 } else { e.unhealthy += 1 }
            t[probe.check.id] = e
        }
        let c = probe.check
        logger.notice("health check \(c.id) (\(c.kind.rawValue) \(SocketEndpoint(ip: c.ip, port: c.port))) is now \(healthy ? "healthy" : "unhealthy"): \(detail)")
    }

    /// Runs every probe's loop until graceful shutdown; probes added by a reload start here too.
    func runProbes() async {
        await withTaskGroup(of: Void.self) { tasks in
            for await _ in changes.cancelOnGracefulShutdown() {
                let start = pending.withLock { p in
                    defer { p.removeAll() }
                    return p
                }
                for p in start { tasks.addTask { await self.loop(p) } }
            }
            tasks.cancelAll()
        }
    }

    private func loop(_ p: HealthProbe) async {
        let interval = Duration.milliseconds(Int64(p.check.requestIntervalMs))
        while !Task.isCancelled && !p.retired {
            let started = ContinuousClock.now
            let (ok, detail) = await HealthProbe.run(p.check, group: group)
            if p.retired { return }
            if let flippedTo = p.record(success: ok) { noteTransition(p, healthy: flippedTo, detail: detail) }
            let next = started + interval
            do { try await Task.sleep(until: next, clock: .continuous) } catch { return }
        }
    }
}

/// A model's view of the monitor's states: `HealthSource` for the engine, read per routed
/// query with one atomic load.
public final class HealthStates: HealthSource {
    let probes: [HealthProbe]
    init(_ probes: [HealthProbe]) { self.probes = probes }
    public func isHealthy(_ check: Int) -> Bool { check < probes.count ? probes[check].isHealthy : true }
}

/// One check definition's running state.
final class HealthProbe: Sendable {
    let check: HealthCheck
    /// 0 not run yet (counts as healthy), 1 healthy, 2 unhealthy.
    private let state = Atomic<UInt8>(0)
    private let retiredFlag = Atomic<Bool>(false)
    /// Results in a row: positive successes, negative failures (only the probe's loop writes).
    private let streak = Mutex<Int>(0)

    init(_ check: HealthCheck) { self.check = check }

    var isHealthy: Bool { state.load(ordering: .relaxed) != 2 }
    var hasRun: Bool { state.load(ordering: .relaxed) != 0 }
    var retired: Bool { retiredFlag.load(ordering: .relaxed) }
    func retire() { retiredFlag.store(true, ordering: .relaxed) }

    /// Counts one result (already inverted when the check says so); returns the new state when
    /// it changed. Until the first change, `failure_threshold` results in a row decide; a
    /// check that has not decided yet counts as healthy.
    func record(success probeOK: Bool) -> Bool? {
        let ok = check.inverted ? !probeOK : probeOK
        let n = streak.withLock { s -> Int in
            s = ok ? max(s, 0) + 1 : min(s, 0) - 1
            return s
        }
        let current = state.load(ordering: .relaxed)
        if n >= check.failureThreshold, current != 1 {
            state.store(1, ordering: .relaxed)
            return true
        }
        if -n >= check.failureThreshold, current != 2 {
            state.store(2, ordering: .relaxed)
            return false
        }
        return nil
    }

    /// The 4 s Route 53 gives a target to connect and answer.
    static let timeout = TimeAmount.seconds(4)

    /// One probe: TCP connect; HTTP GET with a 2xx or 3xx status; HTTPS the same through
    /// `curl -k` (vpcdns links no TLS library; see docs/configuration.md).
    static func run(_ c: HealthCheck, group: any EventLoopGroup) async -> (Bool, String) {
        if c.kind == .https { return await HTTPSProbe.run(c) }
        let target = SocketEndpoint(ip: c.ip, port: c.port)
        let address: SocketAddress
        do { address = try SocketAddress(ipAddress: c.ip.description, port: Int(c.port)) } catch {
            return (false, "bad address \(target)")
        }
        let wantsHTTP = c.kind == .http
        let host: String
        if case .v6 = c.ip { host = "[\(c.ip)]" } else { host = c.ip.description }
        let request = "GET \(c.resourcePath) HTTP/1.1\r\nHost: \(host):\(c.port)\r\nUser-Agent: vpcdns-health-check\r\nConnection: close\r\n\r\n"
        let bootstrap = ClientBootstrap(group: group).connectTimeout(timeout)
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(to: address).get()
        } catch {
            return (false, "cannot connect to \(target): \(error)")
        }
        guard wantsHTTP else {
            try? await channel.close().get()
            return (true, "TCP connect to \(target) succeeded")
        }
        let promise = channel.eventLoop.makePromise(of: Int?.self)
        do {
            try await channel.pipeline.addHandler(StatusLineReader(promise: promise)).get()
            let timeoutTask = channel.eventLoop.scheduleTask(in: timeout) { promise.succeed(nil) }
            var buffer = channel.allocator.buffer(capacity: request.utf8.count)
            buffer.writeString(request)
            channel.writeAndFlush(buffer, promise: nil)
            let status = try await promise.futureResult.get()
            timeoutTask.cancel()
            try? await channel.close().get()
            guard let status else { return (false, "no HTTP status line from \(target) within 4 s") }
            return ((200...399).contains(status), "HTTP status \(status) from \(target)\(c.resourcePath)")
        } catch {
            channel.eventLoop.execute { promise.succeed(nil) }
            try? await channel.close().get()
            return (false, "HTTP request to \(target) failed: \(error)")
        }
    }
}

/// Reads `HTTP/1.x NNN ...` and fulfils the promise with NNN (nil when the connection ends
/// first or the line is not a status line).
final class StatusLineReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<Int?>
    var line: [UInt8] = []
    init(promise: EventLoopPromise<Int?>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buf = unwrapInboundIn(data)
        while let b = buf.readInteger(as: UInt8.self) {
            if b == UInt8(ascii: "\n") || line.count > 1024 {
                promise.succeed(Self.status(line))
                context.close(promise: nil)
                return
            }
            line.append(b)
        }
    }

    func channelInactive(context: ChannelHandlerContext) { promise.succeed(Self.status(line)) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.succeed(nil)
        context.close(promise: nil)
    }

    static func status(_ line: [UInt8]) -> Int? {
        let parts = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), parts[1].count == 3, let code = Int(parts[1]) else { return nil }
        return code
    }
}

/// HTTPS checks through `curl`: vpcdns links no TLS library (swift-nio-ssl would add
/// BoringSSL to every build for this one probe). `-k`: the certificate is not verified, as
/// Route 53 does not; no proxy; 4 s for the whole exchange.
enum HTTPSProbe {
    static let candidates = ["/usr/bin/curl", "/usr/local/bin/curl", "/bin/curl"]
    static var curl: String? { candidates.first { FileManager.default.isExecutableFile(atPath: $0) } }

    static func run(_ c: HealthCheck) async -> (Bool, String) {
        let host: String
        if case .v6 = c.ip { host = "[\(c.ip)]" } else { host = c.ip.description }
        let url = "https://\(host):\(c.port)\(c.resourcePath)"
        guard let curl else { return (false, "HTTPS check needs curl (none in \(candidates.joined(separator: ", ")))") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: curl)
        process.arguments = ["-k", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "4", "--noproxy", "*",
                             "--proto", "=https", "-A", "vpcdns-health-check", url]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        let code: Int32 = await withCheckedContinuation { k in
            process.terminationHandler = { p in k.resume(returning: p.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                k.resume(returning: -1)
            }
        }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard code == 0, let status = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), status > 0 else {
            return (false, "HTTPS GET \(url) failed (curl exit \(code))")
        }
        return ((200...399).contains(status), "HTTPS status \(status) from \(url)")
    }
}

/// The monitor as a service of the server's group.
struct HealthCheckService: Service {
    let monitor: HealthMonitor
    func run() async throws { await monitor.runProbes() }
}
