import Logging
import NIOCore
import NIOPosix
import VPCDNSCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads UDP queries, hands them to the processor, writes the replies.
///
/// Loop-confined: created inside the channel initializer and added with `syncOperations`,
/// so it needs no locks and is not `Sendable`.
final class UDPQueryHandler: ChannelDuplexHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundIn = DeferredReply
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let processor: any QueryProcessor
    private let inFlight: InFlightCounter
    private let proxies: TrustedProxies
    private let logger: Logger
    private var needsFlush = false
    /// A flush of late answers is queued to run after this loop iteration's I/O.
    private var lateFlushScheduled = false
    /// The bound address, read once the socket is bound (port 0 gets its real port).
    private var listener = SocketEndpoint(ip: .v4(0), port: 0)
    /// Bound to `0.0.0.0` or `::`: the address each query was sent to comes with it (the
    /// socket has `IP_PKTINFO`/`IPV6_RECVPKTINFO` on) and is its listener (O7).
    private var wildcard = false

    init(processor: any QueryProcessor, inFlight: InFlightCounter, proxies: TrustedProxies, logger: Logger) {
        self.processor = processor
        self.inFlight = inFlight
        self.proxies = proxies
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { learnLocalAddress(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        learnLocalAddress(context)
        context.fireChannelActive()
    }

    private func learnLocalAddress(_ context: ChannelHandlerContext) {
        if let local = context.channel.localAddress.flatMap(SocketEndpoint.init) {
            listener = local
            wildcard = ServerRuntime.isWildcard(local)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let stats = inFlight.stats
        stats.udpQueries.add(1, ordering: .relaxed)
        guard let client = SocketEndpoint(envelope.remoteAddress) else {
            stats.dropped.add(1, ordering: .relaxed)
            return
        }
        // The listener of V1 and of the query log's `vpcdns.listener`: the bound address, or
        // on a wildcard socket the local address the client asked (with the bound port).
        var to = listener
        if wildcard, let info = envelope.metadata?.packetInfo, let local = SocketEndpoint(info.destinationAddress) {
            to = SocketEndpoint(ip: local.ip, port: listener.port)
        }
        var queryContext = QueryContext(client: client, listener: to, transport: .udp, receivedAt: .now())
        var query = envelope.data
        if proxies.isActive {
            // P9: behind a trusted proxy the datagram starts with a PROXY v2 header naming the
            // client; the reply still goes to the proxy, without a header.
            switch query.withUnsafeReadableBytes({ proxies.examine($0, from: client, listener: to) }) {
            case .direct:
                break
            case .rejected:
                return
            case .proxied(let realClient, let realListener, let proxy, let length):
                query.moveReaderIndex(forwardBy: length)
                queryContext.client = realClient
                queryContext.listener = realListener
                queryContext.proxy = proxy
            }
        }
        let responder = QueryResponder(channel: context.channel, peer: envelope.remoteAddress, inFlight: inFlight)
        switch processor.process(query, context: queryContext, responder: responder) {
        case .reply(let reply):
            // No promise: saves an allocation; send errors surface in errorCaught.
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply)), promise: nil)
            needsFlush = true
        case .drop:
            stats.dropped.add(1, ordering: .relaxed)
        case .pending:
            inFlight.begin()
        }
    }

    /// One flush per read burst: NIO then sends the burst's replies with one `sendmmsg`.
    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// Late answers (`QueryResponder.respond`) arrive here from the tail of the pipeline.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let deferred = unwrapOutboundIn(data)
        guard let peer = deferred.peer, let reply = deferred.reply else {
            promise?.succeed(())
            return
        }
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: peer, data: reply)), promise: promise)
        // `respond` does not flush: one flush, after the loop has handled its ready sockets,
        // sends every late answer written meanwhile.
        if !lateFlushScheduled {
            lateFlushScheduled = true
            let channel = context.channel
            context.eventLoop.assumeIsolated().execute { [self] in
                lateFlushScheduled = false
                channel.flush()
            }
        }
    }

    /// Late answers written but not yet flushed leave before the socket closes.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        context.flush()
        context.close(mode: mode, promise: promise)
    }

    /// Never close: on a UDP socket an error is about one peer (an ICMP port unreachable
    /// after a reply, a failed send), not about the listener.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        inFlight.stats.socketErrors.add(1, ordering: .relaxed)
        logger.debug("udp socket error", metadata: ["listener": "\(listener)", "error": "\(error)"])
    }
}

/// One UDP listen address: `socketsPerAddress` sockets bound to the same address and port
/// with `SO_REUSEPORT`, one per event loop, so the kernel spreads clients over the cores
/// (one socket is served by one loop; peers.md §4).
final class UDPListener: Sendable {
    let requested: SocketEndpoint
    /// The bound address, with the real port when `requested.port` was 0.
    let bound: SocketEndpoint
    let channels: [any Channel]
    let inFlight: InFlightCounter

    private init(requested: SocketEndpoint, bound: SocketEndpoint, channels: [any Channel], inFlight: InFlightCounter) {
        self.requested = requested
        self.bound = bound
        self.channels = channels
        self.inFlight = inFlight
    }

    /// Bytes per datagram slot of a `recvmmsg` batch. NIO splits one receive buffer evenly
    /// over the batch, so the allocator's capacity must be slot size × batch size, or each
    /// slot would be tiny and queries would be cut.
    static let datagramSlotSize = 4096

    static func bind(
        _ endpoint: SocketEndpoint,
        group: any EventLoopGroup,
        configuration: ListenerConfiguration,
        processor: any QueryProcessor,
        stats: ListenerStats,
        proxies: TrustedProxies,
        logger: Logger
    ) async throws -> UDPListener {
        let inFlight = InFlightCounter(stats: stats)
        var channels: [any Channel] = []
        var port = endpoint.port
        var bound = endpoint
        do {
            for i in 0..<max(1, configuration.udpSocketsPerAddress) {
                let target = SocketEndpoint(ip: endpoint.ip, port: port)
                var bootstrap = makeBootstrap(
                    group: group, configuration: configuration, processor: processor,
                    inFlight: inFlight, proxies: proxies, logger: logger)
                if endpoint.isIPv6 { bootstrap = bootstrap.channelOption(.ipv6Only, value: 1) }
                // Only wildcard sockets need each datagram's destination (and pay for reading it).
                if ServerRuntime.isWildcard(endpoint) { bootstrap = bootstrap.channelOption(.receivePacketInfo, value: true) }
                let channel = try await bootstrap.bind(to: target.socketAddress).get()
                channels.append(channel)
                if i == 0 {
                    // Port 0: the first socket picks the port, the others join it.
                    guard let local = channel.localAddress.flatMap(SocketEndpoint.init) else {
                        throw ListenerError.cannotListen(.udp, endpoint, "no local address after bind")
                    }
                    port = local.port
                    bound = local
                }
            }
        } catch {
            for c in channels { c.close(promise: nil) }
            if let e = error as? ListenerError { throw e }
            throw ListenerError.cannotListen(.udp, SocketEndpoint(ip: endpoint.ip, port: port), describe(error))
        }
        return UDPListener(requested: endpoint, bound: bound, channels: channels, inFlight: inFlight)
    }

    private static func makeBootstrap(
        group: any EventLoopGroup,
        configuration: ListenerConfiguration,
        processor: any QueryProcessor,
        inFlight: InFlightCounter,
        proxies: TrustedProxies,
        logger: Logger
    ) -> DatagramBootstrap {
        let batch = max(1, configuration.udpReadBatch)
        return DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.init(rawValue: SO_REUSEPORT)), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(configuration.udpReceiveBufferBytes))
            .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(configuration.udpSendBufferBytes))
            .channelOption(.datagramVectorReadMessageCount, value: batch)
            .channelOption(.maxMessagesPerRead, value: 4)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: datagramSlotSize * batch))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UDPQueryHandler(processor: processor, inFlight: inFlight, proxies: proxies, logger: logger))
                }
            }
    }

    /// Stops reading new queries (in-flight ones can still be answered).
    func stopReading() async {
        for c in channels {
            try? await c.setOption(.autoRead, value: false).get()
        }
    }

    func close() async {
        for c in channels {
            try? await c.close().get()
        }
    }
}

extension ChannelOption where Self == ChannelOptions.Types.SocketOption {
    /// `IPV6_V6ONLY`. NIO makes every IPv6 socket dual-stack; the listeners set this on theirs
    /// so that `[::]:53` and `0.0.0.0:53` can both be listened on (as with BIND and Unbound)
    /// and an IPv4 client never arrives as `::ffff:a.b.c.d`, which V2 would not match.
    static var ipv6Only: Self { .init(level: .ipv6, name: .ipv6_v6only) }
}

extension SocketEndpoint {
    var isIPv6: Bool {
        if case .v6 = ip { return true }
        return false
    }
}

/// "Permission denied", "Address already in use": the part of a NIO error a person needs.
func describe(_ error: any Error) -> String {
    if let io = error as? IOError {
        return String(cString: strerror(io.errnoCode))
    }
    return "\(error)"
}
