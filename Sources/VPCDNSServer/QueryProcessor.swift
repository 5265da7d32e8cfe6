import DNSWire
import NIOCore
import UDPDatapath
import VPCDNSCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The transport a query arrived on. The processor needs it for truncation (UDP only, P2)
/// and the query log needs it (`srcids`/metrics `proto`).
public enum Transport: String, Sendable, Hashable, CustomStringConvertible {
    case udp
    case tcp

    public var description: String { rawValue }

    /// The codec's view of it (truncation applies to UDP only).
    public var wire: DNSTransport { self == .udp ? .udp : .tcp }
}

/// When a query was read, on two clocks: the monotonic one for durations and timeouts
/// (never jumps), the wall clock for the query log's `query_timestamp`.
public struct ReceiveTime: Sendable, Hashable {
    /// Monotonic time, for latency metrics and deadlines.
    public var monotonic: NIODeadline
    /// Wall-clock time in nanoseconds since 1970-01-01T00:00:00Z.
    public var wallNanoseconds: Int64

    public init(monotonic: NIODeadline, wallNanoseconds: Int64) {
        self.monotonic = monotonic
        self.wallNanoseconds = wallNanoseconds
    }

    /// Reads both clocks (two vDSO calls, no allocation).
    public static func now() -> ReceiveTime {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ReceiveTime(monotonic: .now(), wallNanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }
}

/// Everything the listener knows about one query besides its bytes.
public struct QueryContext: Sendable {
    /// The source address and port of the query.
    public var client: SocketEndpoint
    /// The listener address the query arrived on (as bound, with its real port; on a wildcard
    /// listener, the local address the client sent it to, with the bound port): the input of
    /// V1 (`resolver_addresses`, `inbound_endpoints`, O7) and the query log's `vpcdns.listener`.
    public var listener: SocketEndpoint
    public var transport: Transport
    public var receivedAt: ReceiveTime
    /// The trusted proxy the query came through (P9, the log's `vpcdns.proxy`); `client` and
    /// `listener` are then those its PROXY v2 header named. nil for a direct query.
    public var proxy: SocketEndpoint?

    public init(client: SocketEndpoint, listener: SocketEndpoint, transport: Transport, receivedAt: ReceiveTime,
                proxy: SocketEndpoint? = nil) {
        self.client = client
        self.listener = listener
        self.transport = transport
        self.receivedAt = receivedAt
        self.proxy = proxy
    }
}

/// What `QueryProcessor.process` decided, synchronously.
public enum QueryProcessingResult: Sendable {
    /// Send these bytes back now. On TCP the listener adds the 2-byte length and flushes once
    /// per read burst (UDP goes through `processDatagram`). The buffer must be a complete DNS message; the listener does not look
    /// inside (truncation to the client's UDP size is the processor's job, P2).
    case reply(ByteBuffer)
    /// Send nothing (P4: too short, QR set). The listener counts it as dropped.
    case drop
    /// The answer will come later: the processor has kept the `QueryResponder` and will call
    /// `respond(_:)` on it exactly once.
    case pending
}

/// The way back to the client for a query answered later (`.pending`), e.g. after an
/// upstream round trip.
///
/// It is a small value (the way back, the listener's in-flight counter), so building one per
/// query allocates nothing; only a processor that keeps it (in a closure or a future
/// callback) pays for that, on the slow path.
///
/// `respond(_:)` may be called from any thread. Call it **exactly once** per `.pending`
/// result, and never after returning `.reply` or `.drop`. `nil` means "no answer" (counted
/// as dropped; on TCP it still releases the connection's in-flight slot). Answering after
/// the listener closed is harmless: the bytes are discarded.
public struct QueryResponder: Sendable {
    enum Route: Sendable {
        /// TCP: the connection; a late answer goes through its pipeline (on its loop).
        case connection(any Channel)
        /// UDP: sent straight from the calling thread with `sendmsg` through the socket the
        /// query came in on, to `client`, from `local` (the address the client asked).
        case datagram(DatagramSocket, client: DatagramEndpoint, local: DatagramEndpoint, loop: any EventLoop)
    }

    let route: Route
    let inFlight: InFlightCounter

    /// A TCP connection's responder.
    init(connection: any Channel, inFlight: InFlightCounter) {
        self.route = .connection(connection)
        self.inFlight = inFlight
    }

    /// A UDP datagram's responder; `loop` is the event loop tied to the datapath thread
    /// that read the query.
    init(socket: DatagramSocket, client: DatagramEndpoint, local: DatagramEndpoint, loop: any EventLoop, inFlight: InFlightCounter) {
        self.route = .datagram(socket, client: client, local: local, loop: loop)
        self.inFlight = inFlight
    }

    /// The event loop upstream work for this query should run on: the connection's (no
    /// thread hop for the answer), or for UDP the loop tied to the datapath thread that
    /// read the query (the same one for every query of that socket).
    public var eventLoop: any EventLoop {
        switch route {
        case .connection(let channel): channel.eventLoop
        case .datagram(_, _, _, let loop): loop
        }
    }

    /// Sends `reply` (a complete DNS message) to the client, or nothing for `nil`.
    public func respond(_ reply: ByteBuffer?) {
        switch route {
        case .connection(let channel):
            inFlight.end()
            channel.writeAndFlush(DeferredReply(reply: reply), promise: nil)
        case .datagram(let socket, let client, let local, _):
            guard let reply else {
                // UDP has no per-connection state to release: nothing to send, nothing to do.
                inFlight.end()
                inFlight.stats.dropped.add(1, ordering: .relaxed)
                return
            }
            // Sent before the query stops counting as in flight, so that a shutdown waiting
            // for none closes the socket only after this answer left.
            let failure = reply.withUnsafeReadableBytes { socket.send($0, to: client, from: local) }
            if failure != 0, failure != EBADF { inFlight.stats.socketErrors.add(1, ordering: .relaxed) }
            inFlight.end()
        }
    }
}

/// A late TCP answer travelling from `QueryResponder` through the pipeline to the
/// connection's handler, which is the only place that may touch per-connection state.
struct DeferredReply: Sendable {
    var reply: ByteBuffer?
}

/// The single contract between the listeners (bytes in, bytes out) and the resolver.
///
/// The TCP listener calls `process` for every framed message, on the connection's event
/// loop, in arrival order; the UDP datapath calls `processDatagram` for every datagram, on
/// the datapath thread that read it (replies to one `recvmmsg` batch leave in one `sendmmsg`). The call must not block: local answers (private
/// zones, cache hits, errors) should be encoded and returned as `.reply` straight away, which
/// costs no future, no promise and no thread hop. Work that has to wait (upstream) returns
/// `.pending` and later calls `responder.respond(_:)` exactly once.
///
/// The query buffer is a slice of the listener's receive buffer: read it, but copy what you
/// keep beyond the call (holding it pins the receive buffer).
public protocol QueryProcessor: Sendable {
    func process(_ query: ByteBuffer, context: QueryContext, responder: QueryResponder) -> QueryProcessingResult

    /// The UDP datapath's entry: the query is in the datapath's receive slot, and a reply
    /// answered now is written into `reply` (the datapath's send slot, at least
    /// `DatagramSlots.replyCapacity` bytes) with its length returned. Unlike `process`, nothing
    /// here needs a `ByteBuffer`, so local answers and cache hits can be answered with no heap
    /// allocation per datagram (issue 15). Same rules otherwise: never block; `.pending`
    /// means `responder.respond(_:)` will be called exactly once later.
    func processDatagram(_ query: UnsafeRawBufferPointer, context: QueryContext, reply: UnsafeMutableRawBufferPointer,
                         responder: QueryResponder) -> DatagramProcessingResult
}

/// What `QueryProcessor.processDatagram` decided, synchronously.
public enum DatagramProcessingResult: Sendable, Equatable {
    /// The reply is `reply[0..<length]`: send it now.
    case reply(length: Int)
    /// Send nothing (counted as dropped).
    case drop
    /// The answer comes later through the responder.
    case pending
}

/// Sizes of the datapath's slots, shared by the processor and the datapath.
public enum DatagramSlots {
    /// Room for any reply: a UDP reply is at most 65,535 bytes (P2 truncates to the client's
    /// size before that).
    public static let replyCapacity = 65_535
}

extension QueryProcessor {
    /// The generic bridge: through `process` and a `ByteBuffer` (allocates; processors that
    /// care, like `QueryEngine`, implement `processDatagram` themselves).
    public func processDatagram(_ query: UnsafeRawBufferPointer, context: QueryContext, reply: UnsafeMutableRawBufferPointer,
                                responder: QueryResponder) -> DatagramProcessingResult {
        switch process(ByteBuffer(bytes: query), context: context, responder: responder) {
        case .reply(let bytes):
            guard bytes.readableBytes <= reply.count else { return .drop }
            bytes.withUnsafeReadableBytes { reply.copyMemory(from: $0) }
            return .reply(length: bytes.readableBytes)
        case .drop:
            return .drop
        case .pending:
            return .pending
        }
    }
}
