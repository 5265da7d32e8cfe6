import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import VPCDNSCore

/// The listeners as a swift-service-lifecycle `Service`: serves until graceful shutdown,
/// then stops reading, lets pending answers finish for `gracePeriod`, and closes (O3).
///
/// `serve` should open the listeners itself before starting the `ServiceGroup`
/// (`listeners.update(to:)`), so that a bind failure is an error before anything runs and
/// the `listening on ...` lines print once everything is open.
public struct ListenerService: Service {
    public let listeners: DNSListeners
    private let gracePeriod: Duration

    public init(listeners: DNSListeners, gracePeriod: Duration = .seconds(2)) {
        self.listeners = listeners
        self.gracePeriod = gracePeriod
    }

    public func run() async throws {
        do {
            try await gracefulShutdown()
            await listeners.shutdown(gracePeriod: gracePeriod)
        } catch {
            // Cancelled: no time for grace.
            await listeners.shutdown(gracePeriod: .zero)
            throw error
        }
    }
}

/// Owns an event loop group for the lifetime of a `ServiceGroup`: shuts it down after
/// graceful shutdown. List it *before* the services that use it (the group stops services in
/// reverse order, so it goes last).
public struct EventLoopGroupService: Service {
    public let group: MultiThreadedEventLoopGroup

    /// One loop per core, as the listeners expect.
    public init(group: MultiThreadedEventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)) {
        self.group = group
    }

    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {}
        try await group.shutdownGracefully()
    }
}

/// P4: dropped packets are not query-logged, but counted, with "a line on standard error at
/// most once a minute while the count grows". Runs until graceful shutdown.
public struct DroppedPacketReporter: Service {
    private let stats: ListenerStats
    private let interval: Duration
    private let logger: Logger

    public init(stats: ListenerStats, interval: Duration = .seconds(60), logger: Logger) {
        self.stats = stats
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        let stats = self.stats, interval = self.interval, logger = self.logger
        try? await cancelWhenGracefulShutdown {
            var reported = 0
            while true {
                try await Task.sleep(for: interval)
                let now = stats.dropped.load(ordering: .relaxed)
                if now > reported {
                    logger.warning("dropped packets", metadata: ["total": "\(now)", "new": "\(now - reported)"])
                    reported = now
                }
            }
        }
    }
}
