import NIOCore
import Synchronization

/// Counters of the listeners, shared by every event loop. Relaxed atomics: each is an
/// independent tally read for metrics and the "dropped packets" stderr line (P4, O5).
public final class ListenerStats: Sendable {
    /// UDP datagrams read.
    public let udpQueries = Atomic<Int>(0)
    /// TCP messages read (after framing).
    public let tcpQueries = Atomic<Int>(0)
    /// Queries that got no answer: the processor returned `.drop` or responded with nil.
    public let dropped = Atomic<Int>(0)
    /// Errors reported on listening sockets (ICMP errors, failed sends). Never fatal.
    public let socketErrors = Atomic<Int>(0)
    /// TCP connections accepted and currently open.
    public let tcpConnectionsOpen = Atomic<Int>(0)
    /// TCP connections refused because `maxTCPConnections` were open.
    public let tcpConnectionsRejected = Atomic<Int>(0)
    /// TCP connections closed for idleness.
    public let tcpIdleClosed = Atomic<Int>(0)
    /// Idle TCP connections closed to make room for a new one at `maxTCPConnections`.
    public let tcpIdleEvicted = Atomic<Int>(0)
    /// Datagrams and connections dropped by P9, by `ProxyRejectReason` (rare: a lock is fine).
    private let proxyRejected = Mutex<[Int]>(Array(repeating: 0, count: ProxyRejectReason.allCases.count))

    public init() {}

    func countProxyRejected(_ reason: ProxyRejectReason) {
        proxyRejected.withLock { $0[reason.index] += 1 }
    }

    /// A plain copy of the counters.
    public var snapshot: Snapshot {
        Snapshot(
            udpQueries: udpQueries.load(ordering: .relaxed),
            tcpQueries: tcpQueries.load(ordering: .relaxed),
            dropped: dropped.load(ordering: .relaxed),
            socketErrors: socketErrors.load(ordering: .relaxed),
            tcpConnectionsOpen: tcpConnectionsOpen.load(ordering: .relaxed),
            tcpConnectionsRejected: tcpConnectionsRejected.load(ordering: .relaxed),
            tcpIdleClosed: tcpIdleClosed.load(ordering: .relaxed),
            tcpIdleEvicted: tcpIdleEvicted.load(ordering: .relaxed),
            proxyRejected: proxyRejected.withLock { $0 }
        )
    }

    public struct Snapshot: Sendable, Hashable {
        public var udpQueries: Int
        public var tcpQueries: Int
        public var dropped: Int
        public var socketErrors: Int
        public var tcpConnectionsOpen: Int
        public var tcpConnectionsRejected: Int
        public var tcpIdleClosed: Int
        public var tcpIdleEvicted: Int
        /// Indexed like `ProxyRejectReason.allCases`.
        public var proxyRejected: [Int]

        public func proxyRejected(_ reason: ProxyRejectReason) -> Int { proxyRejected[reason.index] }
    }
}

/// Queries of one listener that returned `.pending` and have not been answered yet, so that
/// a graceful stop (O3) or the removal of a listener on reload (O2) can wait for them.
final class InFlightCounter: Sendable {
    let count = Atomic<Int>(0)
    let stats: ListenerStats

    init(stats: ListenerStats) {
        self.stats = stats
    }

    func begin() { count.add(1, ordering: .relaxed) }
    func end() { count.subtract(1, ordering: .relaxed) }
    /// May be briefly negative when a processor answers before `.pending` is returned.
    var current: Int { count.load(ordering: .relaxed) }
}
