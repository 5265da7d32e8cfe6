import Logging
import NIOCore
import NIOPosix
import VPCDNSConfig
import VPCDNSCore

/// Settings of the listeners (config.md names in brackets).
public struct ListenerConfiguration: Sendable, Hashable {
    /// Close a TCP connection after this long without traffic while nothing is pending
    /// (`tcp_idle_timeout_ms`).
    public var tcpIdleTimeoutMilliseconds: Int = 10_000
    /// Concurrent TCP connections over all listeners; further ones are closed at once
    /// (`max_tcp_connections`). Takes effect on the next `update(to:)`.
    public var maxTCPConnections: Int = 1_000
    /// Queries of one TCP connection in flight before the listener stops reading from it.
    public var tcpMaxPendingPerConnection: Int = 100
    /// UDP sockets per address (`SO_REUSEPORT`), each read by a datapath thread of its own;
    /// one per core is the right number.
    public var udpSocketsPerAddress: Int = System.coreCount
    /// Datagrams per `recvmmsg` call.
    public var udpReadBatch: Int = 32
    /// `SO_RCVBUF` of each UDP socket (the kernel caps it at `net.core.rmem_max`).
    public var udpReceiveBufferBytes: Int = 4 << 20
    /// `SO_SNDBUF` of each UDP socket.
    public var udpSendBufferBytes: Int = 4 << 20
    /// `trusted_proxies` (P9): sources whose datagrams and connections start with a PROXY v2
    /// header. Applies at once on reload, to new datagrams and connections.
    public var trustedProxies: [IPPrefix] = []

    public init() {}
}

/// Why a listener could not be opened. Its description is the text `serve` prints (O1).
public enum ListenerError: Error, Sendable, Hashable, CustomStringConvertible {
    case cannotListen(Transport, SocketEndpoint, String)

    public var description: String {
        switch self {
        case .cannotListen(let t, let e, let reason): "cannot listen on \(t) \(e): \(reason)"
        }
    }
}

/// One open listening socket (set), as reported at startup.
public struct BoundListener: Sendable, Hashable, CustomStringConvertible {
    public var transport: Transport
    /// The address as configured (port 0 stays 0 here).
    public var requested: SocketEndpoint
    /// The address actually bound, with its real port.
    public var bound: SocketEndpoint

    /// `listening on udp 127.0.0.1:1053` (cli.md wording).
    public var description: String { "listening on \(transport) \(bound)" }
}

/// What an `update(to:)` changed.
public struct ListenerChanges: Sendable, Hashable {
    public var opened: [BoundListener]
    public var closed: [BoundListener]
}

/// Every UDP and TCP listener of the server, and the only way to open and close them.
///
/// `update(to:)` takes the whole wanted set of addresses and opens or closes the difference,
/// so startup and live reload (O2) are the same call. It is all-or-nothing: if one new
/// address cannot be bound, the ones opened by that call are closed again, nothing is
/// removed, and the error names the address. Calls are serialised.
public actor DNSListeners {
    public nonisolated let stats: ListenerStats
    private let group: any EventLoopGroup
    private let processor: any QueryProcessor
    private var configuration: ListenerConfiguration
    private let limiter: TCPConnectionLimiter
    private let proxies: TrustedProxies
    private let logger: Logger
    private var open: [SocketEndpoint: (udp: UDPListener, tcp: TCPListener)] = [:]
    /// Order of `open`'s keys, so that listings follow the configuration.
    private var order: [SocketEndpoint] = []
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var stopped = false
    /// TCP listeners replaced by `reopenTCP`, whose connections may still be open.
    private var retired: [TCPListener] = []

    /// - Parameters:
    ///   - group: the loops that serve queries; use a `MultiThreadedEventLoopGroup` with one
    ///     loop per core and `udpSocketsPerAddress` equal to its size.
    public init(
        group: any EventLoopGroup,
        processor: any QueryProcessor,
        configuration: ListenerConfiguration = ListenerConfiguration(),
        logger: Logger = Logger(label: "vpcdns.listeners")
    ) {
        let stats = ListenerStats()
        self.stats = stats
        self.group = group
        self.processor = processor
        self.configuration = configuration
        self.limiter = TCPConnectionLimiter(configuration, stats: stats)
        self.proxies = TrustedProxies(configuration.trustedProxies, stats: stats)
        self.logger = logger
    }

    /// Everything open now, UDP then TCP for each address, in configuration order.
    public var listeners: [BoundListener] {
        order.flatMap { key -> [BoundListener] in
            guard let pair = open[key] else { return [] }
            return [
                BoundListener(transport: .udp, requested: key, bound: pair.udp.bound),
                BoundListener(transport: .tcp, requested: key, bound: pair.tcp.bound),
            ]
        }
    }

    /// Applies new settings (reload). The TCP settings apply at once to new connections on
    /// every listener (the connection bound counts the open ones); the UDP socket settings
    /// apply to listeners opened afterwards.
    public func reconfigure(_ configuration: ListenerConfiguration) {
        self.configuration = configuration
        limiter.apply(configuration)
        proxies.apply(configuration.trustedProxies)
    }

    /// True while every listener's sockets are open (for `/healthz`, O5). False before the
    /// first `update(to:)` and after `shutdown`.
    public var isServing: Bool {
        !open.isEmpty && open.values.allSatisfy { pair in
            pair.udp.isServing && pair.tcp.serverChannel.isActive
        }
    }

    /// Opens the addresses in `endpoints` that are not open, closes those open but not
    /// listed (after letting their pending answers finish for up to `gracePeriod`).
    /// Addresses are compared as given, so `127.0.0.1:0` stays the same listener across
    /// calls. Returns what changed.
    @discardableResult
    public func update(to endpoints: [SocketEndpoint], gracePeriod: Duration = .seconds(1)) async throws -> ListenerChanges {
        await acquire()
        defer { release() }
        guard !stopped else { throw CancellationError() }
        var wanted: [SocketEndpoint] = []
        for e in endpoints where !wanted.contains(e) { wanted.append(e) }

        let removed = order.filter { !wanted.contains($0) }
        // O7: a TCP listening socket that goes away and would refuse a new one's bind (a
        // wildcard over an address of its family and port, or the reverse, e.g. a reload from
        // resolver addresses with sockets of their own to a wildcard that covers them) stops
        // accepting first. Its connections and its UDP sockets keep answering until the new
        // sockets are open, and UDP sockets never refuse each other, so no datagram is lost.
        let yielding = removed.filter { r in wanted.contains { open[$0] == nil && ListenPlan.tcpClash($0, r) } }
        for key in yielding { await open[key]?.tcp.stopAccepting() }

        var opened: [(SocketEndpoint, UDPListener, TCPListener)] = []
        do {
            for e in wanted where open[e] == nil {
                let (udp, tcp) = try await bindPair(e)
                opened.append((e, udp, tcp))
            }
        } catch {
            for (_, u, t) in opened {
                await u.close()
                await t.close()
            }
            await reopenTCP(yielding)
            throw error
        }

        var closedListeners: [BoundListener] = []
        var closing: [(UDPListener, TCPListener)] = []
        for key in removed {
            guard let pair = open.removeValue(forKey: key) else { continue }
            closedListeners.append(BoundListener(transport: .udp, requested: key, bound: pair.udp.bound))
            closedListeners.append(BoundListener(transport: .tcp, requested: key, bound: pair.tcp.bound))
            closing.append(pair)
        }
        for (e, u, t) in opened { open[e] = (u, t) }
        order = wanted
        // A UDP socket a reload closes keeps reading until it closes. O7: an address now
        // covered by a wildcard stays served, and the kernel gives its datagrams to the more
        // specific socket for as long as that one is open; the other way round, a wildcard
        // giving an address back to a new socket of its own still holds what arrived before
        // that socket was bound. Stopping first stranded those (one query in ~150 lost in a
        // reload onto a wildcard and back, WildcardListenerNetnsTests). One grace period for
        // all of them.
        await Self.drainAndClose(closing, gracePeriod: gracePeriod, udpReadsUntilClosed: true)

        let openedListeners = opened.flatMap { (e, u, t) in
            [BoundListener(transport: .udp, requested: e, bound: u.bound),
             BoundListener(transport: .tcp, requested: e, bound: t.bound)]
        }
        return ListenerChanges(opened: openedListeners, closed: closedListeners)
    }

    /// Graceful stop (O3): stop reading new queries on every listener, wait until every
    /// pending answer has been sent or `gracePeriod` passed, then close everything.
    /// Later `update` calls fail.
    public func shutdown(gracePeriod: Duration = .seconds(1)) async {
        await acquire()
        defer { release() }
        stopped = true
        let all = order.compactMap { open[$0] }
        open = [:]
        order = []
        await Self.drainAndClose(all, gracePeriod: gracePeriod)
        for t in retired { await t.close() }
        retired = []
    }

    /// True while every configured address has its UDP sockets and TCP listening socket open
    /// and no stop has begun (`/healthz`, O5).
    public var allOpen: Bool {
        !stopped && !order.isEmpty && order.allSatisfy { key in
            guard let pair = open[key] else { return false }
            return pair.udp.isServing && pair.tcp.serverChannel.isActive
        }
    }

    /// Queries answered `.pending` and not yet answered, over all open listeners.
    public var inFlight: Int {
        open.values.reduce(0) { $0 + max(0, $1.udp.inFlight.current) + max(0, $1.tcp.inFlight.current) }
    }

    private static func drainAndClose(_ pairs: [(UDPListener, TCPListener)], gracePeriod: Duration, udpReadsUntilClosed: Bool = false) async {
        guard !pairs.isEmpty else { return }
        for (u, t) in pairs {
            if !udpReadsUntilClosed { await u.stopReading() }
            await t.stopReading()
        }
        let clock = ContinuousClock()
        let deadline = clock.now + gracePeriod
        while clock.now < deadline,
              pairs.contains(where: { $0.0.inFlight.current > 0 || $0.1.inFlight.current > 0 }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
        for (u, t) in pairs {
            await u.close()
            await t.close()
        }
    }

    /// After a failed `update`: the TCP listening sockets that stopped accepting for it are
    /// bound again (all-or-nothing). The replaced listener's open connections are kept until
    /// they end, and closed at shutdown at the latest.
    private func reopenTCP(_ keys: [SocketEndpoint]) async {
        for key in keys {
            guard let pair = open[key] else { continue }
            do {
                let tcp = try await TCPListener.bind(
                    pair.tcp.bound, group: group,
                    processor: processor, limiter: limiter, proxies: proxies, logger: logger)
                retired.append(pair.tcp)
                open[key] = (pair.udp, tcp)
            } catch {
                logger.error("could not listen again on tcp \(pair.tcp.bound) after a failed change: \(error)")
            }
        }
    }

    /// UDP first: with port 0 it picks the port, and TCP takes the same one. If that port is
    /// taken for TCP, try again with a new one (a few times).
    private func bindPair(_ endpoint: SocketEndpoint) async throws -> (UDPListener, TCPListener) {
        let attempts = endpoint.port == 0 ? 5 : 1
        var lastError: (any Error)?
        for _ in 0..<attempts {
            let udp = try UDPListener.bind(
                endpoint, group: group, configuration: configuration, processor: processor, stats: stats, proxies: proxies, logger: logger)
            do {
                let tcp = try await TCPListener.bind(
                    udp.bound, group: group,
                    processor: processor, limiter: limiter, proxies: proxies, logger: logger)
                return (udp, tcp)
            } catch {
                await udp.close()
                lastError = error
            }
        }
        throw lastError!
    }

    private func acquire() async {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
    }

    private func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
