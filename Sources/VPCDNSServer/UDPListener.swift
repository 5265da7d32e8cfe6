import Logging
import NIOCore
import NIOPosix
import UDPDatapath
import VPCDNSCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The server's work for each UDP datagram, called by the datapath threads: P9, the query
/// context, the processor, the counters.
final class DatagramQueryHandler: DatagramHandler {
    private let processor: any QueryProcessor
    private let inFlight: InFlightCounter
    private let proxies: TrustedProxies
    private let logger: Logger
    /// Datapath thread `i` hands its upstream work to `loops[i % loops.count]`.
    private let loops: [any EventLoop]

    init(processor: any QueryProcessor, inFlight: InFlightCounter, proxies: TrustedProxies, loops: [any EventLoop], logger: Logger) {
        self.processor = processor
        self.inFlight = inFlight
        self.proxies = proxies
        self.loops = loops
        self.logger = logger
    }

    func handle(_ datagram: Datagram, reply: UnsafeMutableRawBufferPointer) -> DatagramVerdict {
        let stats = inFlight.stats
        stats.udpQueries.add(1, ordering: .relaxed)
        // The listener of V1 and of the query log's `vpcdns.listener`: the bound address, or
        // on a wildcard socket the local address the client asked, with the bound port (O7).
        var context = QueryContext(client: SocketEndpoint(datagram.client), listener: SocketEndpoint(datagram.local),
                                   transport: .udp, receivedAt: .now())
        var query = datagram.bytes
        if proxies.isActive {
            // P9: behind a trusted proxy the datagram starts with a PROXY v2 header naming the
            // client; the reply still goes to the proxy, without a header.
            switch proxies.examine(query, from: context.client, listener: context.listener) {
            case .direct:
                break
            case .rejected:
                return .drop
            case .proxied(let realClient, let realListener, let proxy, let length):
                query = UnsafeRawBufferPointer(rebasing: query[length...])
                context.client = realClient
                context.listener = realListener
                context.proxy = proxy
            }
        }
        let responder = QueryResponder(socket: datagram.socket, client: datagram.client, local: datagram.local,
                                       loop: loops[datagram.thread % loops.count], inFlight: inFlight)
        switch processor.processDatagram(query, context: context, reply: reply, responder: responder) {
        case .reply(let length):
            return .reply(length: length)
        case .drop:
            stats.dropped.add(1, ordering: .relaxed)
            return .drop
        case .pending:
            inFlight.begin()
            return .pending
        }
    }

    /// Longer than a receive slot: no DNS query is, so it is dropped like garbage (P4).
    func dropped(_ reason: DatagramDropReason, client: DatagramEndpoint) {
        inFlight.stats.udpQueries.add(1, ordering: .relaxed)
        inFlight.stats.dropped.add(1, ordering: .relaxed)
    }

    /// Never fatal: on a UDP socket an error is about one peer or one send.
    func socketError(_ code: Int32, on socket: DatagramSocket) {
        inFlight.stats.socketErrors.add(1, ordering: .relaxed)
        logger.debug("udp socket error", metadata: ["listener": "\(socket.bound)", "error": "\(String(cString: strerror(code)))"])
    }
}

/// One UDP listen address, served by the UDP datapath: `udpSocketsPerAddress` sockets bound
/// to it with `SO_REUSEPORT`, each read by a thread of its own (see the README's design
/// section), late answers sent from whichever thread has them.
final class UDPListener: Sendable {
    /// The bound address, with the real port when port 0 was asked for.
    let bound: SocketEndpoint
    let datapath: UDPDatapath
    let inFlight: InFlightCounter

    private init(bound: SocketEndpoint, datapath: UDPDatapath, inFlight: InFlightCounter) {
        self.bound = bound
        self.datapath = datapath
        self.inFlight = inFlight
    }

    /// Bytes of a datagram receive slot: the largest query accepted, and the UDP payload size
    /// the upstream client offers (an upstream answer never needs more).
    static let datagramSlotSize = 4096

    static func bind(
        _ endpoint: SocketEndpoint,
        group: any EventLoopGroup,
        configuration: ListenerConfiguration,
        processor: any QueryProcessor,
        stats: ListenerStats,
        proxies: TrustedProxies,
        logger: Logger
    ) throws -> UDPListener {
        let inFlight = InFlightCounter(stats: stats)
        var settings = UDPDatapath.Configuration()
        settings.threads = max(1, configuration.udpSocketsPerAddress)
        settings.batch = max(1, configuration.udpReadBatch)
        settings.querySlotBytes = datagramSlotSize
        settings.replySlotBytes = DatagramSlots.replyCapacity
        settings.socket = DatagramSocketOptions(receiveBufferBytes: configuration.udpReceiveBufferBytes,
                                                sendBufferBytes: configuration.udpSendBufferBytes)
        settings.threadNamePrefix = "vpcdns-udp-"
        let handler = DatagramQueryHandler(processor: processor, inFlight: inFlight, proxies: proxies,
                                           loops: Array(group.makeIterator()), logger: logger)
        do {
            let datapath = try UDPDatapath.start(endpoint.datagramEndpoint, configuration: settings, handler: handler)
            return UDPListener(bound: SocketEndpoint(datapath.bound), datapath: datapath, inFlight: inFlight)
        } catch {
            throw ListenerError.cannotListen(.udp, endpoint, error.reason)
        }
    }

    /// True while every socket is open and read.
    var isServing: Bool { datapath.isServing }

    /// Stops reading new queries (in-flight ones can still be answered: the sockets stay open).
    func stopReading() async {
        datapath.stopReading()
    }

    func close() async {
        datapath.close()
    }
}

extension SocketEndpoint {
    var isIPv6: Bool {
        if case .v6 = ip { return true }
        return false
    }

    /// From the datapath's form (numbers to numbers, once per datagram).
    init(_ endpoint: DatagramEndpoint) {
        switch endpoint.address {
        case .v4(let v): self.init(ip: .v4(v), port: endpoint.port)
        case .v6(let v): self.init(ip: .v6(v), port: endpoint.port)
        }
    }

    var datagramEndpoint: DatagramEndpoint {
        switch ip {
        case .v4(let v): DatagramEndpoint(address: .v4(v), port: port)
        case .v6(let v): DatagramEndpoint(address: .v6(v), port: port)
        }
    }
}

/// "Permission denied", "Address already in use": the part of a NIO error a person needs.
func describe(_ error: any Error) -> String {
    if let io = error as? IOError {
        return String(cString: strerror(io.errnoCode))
    }
    return "\(error)"
}
