import Logging
import NIOCore
import NIOPosix
import Synchronization
import VPCDNSCore

/// One DNS-over-TCP connection (RFC 7766): framed queries go to the processor as they
/// arrive, several may be in flight at once and answers leave as they complete (out of
/// order). The connection is closed after `idleTimeout` without traffic while no answer is
/// pending, and after the client half-closes once every pending answer has been written.
///
/// Loop-confined (created in the child channel initializer, added with `syncOperations`).
final class TCPQueryHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = DeferredReply
    typealias OutboundOut = ByteBuffer

    private let processor: any QueryProcessor
    private let inFlight: InFlightCounter
    /// What the limiter reads to find the oldest idle connection when all slots are taken.
    private let tracked: TrackedConnection
    private let idleTimeout: TimeAmount
    private let maxPending: Int
    private var listener = SocketEndpoint(ip: .v4(0), port: 0)
    private var client = SocketEndpoint(ip: .v4(0), port: 0)
    /// The trusted proxy this connection came through (P9), once its header was read.
    private var proxy: SocketEndpoint?

    /// Queries of this connection answered `.pending` and not yet written.
    private var pending = 0 {
        didSet { tracked.pending.store(pending, ordering: .relaxed) }
    }
    private var lastActivity = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?
    private var needsFlush = false
    /// The client sent FIN: close once nothing is pending.
    private var inputClosed = false
    /// A `read` held back because `maxPending` queries are in flight (backpressure).
    private var readHeld = false

    init(processor: any QueryProcessor, inFlight: InFlightCounter, tracked: TrackedConnection, idleTimeout: TimeAmount, maxPending: Int) {
        self.processor = processor
        self.inFlight = inFlight
        self.tracked = tracked
        self.idleTimeout = idleTimeout
        self.maxPending = max(1, maxPending)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard idleTimer == nil else { return }
        if let l = context.channel.localAddress.flatMap(SocketEndpoint.init) { listener = l }
        if let r = context.channel.remoteAddress.flatMap(SocketEndpoint.init) { client = r }
        lastActivity = .now()
        scheduleIdleCheck(context, at: lastActivity + idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        context.fireChannelInactive()
    }

    /// One timer per connection, not one per message: activity only moves `lastActivity`,
    /// and the timer, when it fires early, sleeps again until the real deadline.
    private func scheduleIdleCheck(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            idleTimer = nil
            guard context.channel.isActive else { return }
            let due = lastActivity + idleTimeout
            if pending > 0 || due > .now() {
                scheduleIdleCheck(context, at: pending > 0 ? .now() + idleTimeout : due)
            } else {
                inFlight.stats.tcpIdleClosed.add(1, ordering: .relaxed)
                context.close(promise: nil)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let query = unwrapInboundIn(data)
        inFlight.stats.tcpQueries.add(1, ordering: .relaxed)
        let receivedAt = ReceiveTime.now()
        lastActivity = receivedAt.monotonic
        tracked.lastActivity.store(lastActivity.uptimeNanoseconds, ordering: .relaxed)
        let queryContext = QueryContext(client: client, listener: listener, transport: .tcp, receivedAt: receivedAt, proxy: proxy)
        let responder = QueryResponder(connection: context.channel, inFlight: inFlight)
        switch processor.process(query, context: queryContext, responder: responder) {
        case .reply(let reply):
            writeFramed(context, reply, promise: nil)
            needsFlush = true
        case .drop:
            inFlight.stats.dropped.add(1, ordering: .relaxed)
        case .pending:
            pending += 1
            inFlight.begin()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// Late answers from `QueryResponder.respond`.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let deferred = unwrapOutboundIn(data)
        pending -= 1
        lastActivity = .now()
        tracked.lastActivity.store(lastActivity.uptimeNanoseconds, ordering: .relaxed)
        let closeAfter = inputClosed && pending == 0
        if let reply = deferred.reply {
            if closeAfter {
                let written = context.eventLoop.makePromise(of: Void.self)
                written.futureResult.assumeIsolated().whenComplete { result in
                    promise?.completeWith(result)
                    context.close(promise: nil)
                }
                writeFramed(context, reply, promise: written)
            } else {
                writeFramed(context, reply, promise: promise)
            }
        } else {
            inFlight.stats.dropped.add(1, ordering: .relaxed)
            promise?.succeed(())
            if closeAfter { context.close(promise: nil) }
        }
        if readHeld && pending < maxPending && context.channel.isWritable {
            readHeld = false
            context.read()
        }
    }

    private func writeFramed(_ context: ChannelHandlerContext, _ reply: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let framed = DNSTCPFrame.frame(reply, allocator: context.channel.allocator) else {
            inFlight.stats.dropped.add(1, ordering: .relaxed)
            promise?.succeed(())
            return
        }
        context.write(wrapOutboundOut(framed), promise: promise)
    }

    /// Backpressure: with `maxPending` answers outstanding, or while the client does not
    /// read its answers (the socket's send buffer is full), stop reading from the socket
    /// until that clears (RFC 7766 6.2.1: a server may limit pipelined queries). Without
    /// the second rule a client that only writes would make us buffer answers without bound.
    func read(context: ChannelHandlerContext) {
        if pending >= maxPending || !context.channel.isWritable {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && readHeld && pending < maxPending {
            readHeld = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let p = event as? ProxiedConnection {
            // P9: sent by `ProxyHeaderHandler` before the connection's first query.
            client = p.client
            listener = p.listener
            proxy = p.proxy
            return
        }
        if let e = event as? ChannelEvent, e == .inputClosed {
            // Half-close (RFC 7766 6.2.4 allows it): answer what was asked, then close.
            inputClosed = true
            if pending == 0 {
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A TCP error (reset by peer, a decoder error on a broken length) ends this connection only.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        inFlight.stats.socketErrors.add(1, ordering: .relaxed)
        context.close(promise: nil)
    }
}

/// Thrown from the child channel initializer so that NIO closes the new connection at once.
struct TCPConnectionLimitReached: Error {}

/// One open DNS-over-TCP connection as the limiter sees it. Its handler writes the two
/// atomics (its own cache lines, relaxed stores: no lock on the query path); the limiter
/// reads them only when every slot is taken.
final class TrackedConnection: Sendable {
    let channel: any Channel
    /// Queries read and not yet answered; 0 means idle.
    let pending = Atomic<Int>(0)
    /// Monotonic nanoseconds of the last query read or answer written (or of the accept).
    let lastActivity: Atomic<UInt64>
    /// Set by the one accept that chose this connection to make room, so that two accepts
    /// never both count its slot as theirs.
    let evicted = Atomic<Bool>(false)

    init(channel: any Channel, now: UInt64) {
        self.channel = channel
        self.lastActivity = Atomic(now)
    }
}

/// The TCP settings shared by every TCP listener, read when a connection is accepted, so a
/// reload (`DNSListeners.reconfigure`) applies to new connections on existing listeners.
/// Holds the `max_tcp_connections` bound (P1): at the bound, the connection idle the longest
/// (no query in progress) is closed to make room for the new one (RFC 7766 §6.2.3), so a
/// client that opens connections and sends nothing cannot lock others out; only when every
/// connection has a query in progress is the new one refused. Connections above a lowered
/// limit are not closed at once; they make room as they go idle.
final class TCPConnectionLimiter: Sendable {
    let limit: Atomic<Int>
    let idleTimeoutMilliseconds: Atomic<Int>
    let maxPendingPerConnection: Atomic<Int>
    let stats: ListenerStats
    /// Every open connection of every listener; touched on accept and close, and scanned
    /// only when the bound is reached.
    private let open = Mutex<[ObjectIdentifier: TrackedConnection]>([:])

    init(_ configuration: ListenerConfiguration, stats: ListenerStats) {
        self.limit = Atomic(configuration.maxTCPConnections)
        self.idleTimeoutMilliseconds = Atomic(configuration.tcpIdleTimeoutMilliseconds)
        self.maxPendingPerConnection = Atomic(configuration.tcpMaxPendingPerConnection)
        self.stats = stats
    }

    func apply(_ configuration: ListenerConfiguration) {
        limit.store(configuration.maxTCPConnections, ordering: .relaxed)
        idleTimeoutMilliseconds.store(configuration.tcpIdleTimeoutMilliseconds, ordering: .relaxed)
        maxPendingPerConnection.store(configuration.tcpMaxPendingPerConnection, ordering: .relaxed)
    }

    /// Admits a newly accepted connection: a free slot, or the slot of the oldest idle
    /// connection, which is closed. nil when every slot has a query in progress (the new
    /// connection is then closed). The returned connection is released by `release`.
    func admit(_ channel: any Channel) -> TrackedConnection? {
        let tracked = TrackedConnection(channel: channel, now: NIODeadline.now().uptimeNanoseconds)
        if tryAcquire() || takeOldestIdleSlot() {
            open.withLock { $0[ObjectIdentifier(channel)] = tracked }
            return tracked
        }
        stats.tcpConnectionsRejected.add(1, ordering: .relaxed)
        return nil
    }

    private func tryAcquire() -> Bool {
        let max = limit.load(ordering: .relaxed)
        var current = stats.tcpConnectionsOpen.load(ordering: .relaxed)
        while current < max {
            let (exchanged, original) = stats.tcpConnectionsOpen.compareExchange(
                expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Closes the connection idle the longest and counts its slot as the new one's: the open
    /// count is one over the bound until the victim's close completes and releases it.
    private func takeOldestIdleSlot() -> Bool {
        let victim: TrackedConnection? = open.withLock { map in
            var best: TrackedConnection? = nil
            var bestAt = UInt64.max
            for c in map.values where c.pending.load(ordering: .relaxed) == 0 && !c.evicted.load(ordering: .relaxed) {
                let at = c.lastActivity.load(ordering: .relaxed)
                if at < bestAt { best = c; bestAt = at }
            }
            // Under the lock: no other accept can choose it between the scan and the mark.
            best?.evicted.store(true, ordering: .relaxed)
            return best
        }
        guard let victim else { return false }
        stats.tcpIdleEvicted.add(1, ordering: .relaxed)
        stats.tcpConnectionsOpen.add(1, ordering: .relaxed)
        victim.channel.close(promise: nil)
        return true
    }

    func release(_ channel: any Channel) {
        open.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) }
        stats.tcpConnectionsOpen.subtract(1, ordering: .relaxed)
    }
}

/// One TCP listen address: a server socket whose accepted connections are spread over the
/// event loop group.
final class TCPListener: Sendable {
    let bound: SocketEndpoint
    let serverChannel: any Channel
    let inFlight: InFlightCounter
    /// Open connections, for a graceful stop. Touched on accept and close only.
    private let connections: ConnectionRegistry

    private init(
        bound: SocketEndpoint, serverChannel: any Channel,
        inFlight: InFlightCounter, connections: ConnectionRegistry
    ) {
        self.bound = bound
        self.serverChannel = serverChannel
        self.inFlight = inFlight
        self.connections = connections
    }

    static func bind(
        _ endpoint: SocketEndpoint,
        group: any EventLoopGroup,
        processor: any QueryProcessor,
        limiter: TCPConnectionLimiter,
        proxies: TrustedProxies,
        logger: Logger
    ) async throws -> TCPListener {
        let inFlight = InFlightCounter(stats: limiter.stats)
        let connections = ConnectionRegistry()
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard let tracked = limiter.admit(channel) else {
                    return channel.eventLoop.makeFailedFuture(TCPConnectionLimitReached())
                }
                let id = ObjectIdentifier(channel)
                connections.map.withLock { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in
                    limiter.release(channel)
                    connections.map.withLock { _ = $0.removeValue(forKey: id) }
                }
                let idle = TimeAmount.milliseconds(Int64(limiter.idleTimeoutMilliseconds.load(ordering: .relaxed)))
                let maxPending = limiter.maxPendingPerConnection.load(ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if proxies.isActive, let peer = channel.remoteAddress.flatMap(SocketEndpoint.init),
                       let local = channel.localAddress.flatMap(SocketEndpoint.init) {
                        try sync.addHandler(ProxyHeaderHandler(proxies: proxies, peer: peer, listener: local))
                    }
                    try sync.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                    try sync.addHandler(
                        TCPQueryHandler(processor: processor, inFlight: inFlight, tracked: tracked, idleTimeout: idle, maxPending: maxPending))
                }
            }
        if endpoint.isIPv6 { bootstrap = bootstrap.serverChannelOption(.ipv6Only, value: 1) }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(to: endpoint.socketAddress).get()
        } catch {
            throw ListenerError.cannotListen(.tcp, endpoint, describe(error))
        }
        guard let bound = channel.localAddress.flatMap(SocketEndpoint.init) else {
            channel.close(promise: nil)
            throw ListenerError.cannotListen(.tcp, endpoint, "no local address after bind")
        }
        return TCPListener(bound: bound, serverChannel: channel, inFlight: inFlight, connections: connections)
    }

    var openConnections: [any Channel] {
        connections.map.withLock { Array($0.values) }
    }

    /// Stops accepting (closes the listening socket); open connections go on as before.
    func stopAccepting() async {
        try? await serverChannel.close().get()
    }

    /// Stops accepting (closes the listening socket) and stops reading on open connections;
    /// answers still pending can be written.
    func stopReading() async {
        try? await serverChannel.close().get()
        for c in openConnections {
            try? await c.setOption(.autoRead, value: false).get()
        }
    }

    func close() async {
        try? await serverChannel.close().get()
        for c in openConnections {
            try? await c.close().get()
        }
    }
}

/// Open TCP connections of one listener, so that a stop can reach them.
final class ConnectionRegistry: Sendable {
    let map = Mutex<[ObjectIdentifier: any Channel]>([:])
}

extension ChannelOption where Self == ChannelOptions.Types.SocketOption {
    /// `IPV6_V6ONLY`. NIO makes every IPv6 socket dual-stack; the listeners set this on theirs
    /// so that `[::]:53` and `0.0.0.0:53` can both be listened on (as with BIND and Unbound)
    /// and an IPv4 client never arrives as `::ffff:a.b.c.d`, which V2 would not match.
    static var ipv6Only: Self { .init(level: .ipv6, name: .ipv6_v6only) }
}
