import NIOCore
import NIOPosix
import VPCDNSCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Timeouts of one upstream query (P6; config.md `upstream_timeout_ms`,
/// `upstream_attempt_timeout_ms`).
public struct UpstreamPolicy: Sendable, Hashable {
    /// All attempts of one query together.
    public var totalTimeout: TimeAmount
    /// The most one target is waited for before the next is tried.
    public var attemptTimeout: TimeAmount

    public init(totalTimeout: TimeAmount = .milliseconds(2000), attemptTimeout: TimeAmount = .milliseconds(800)) {
        self.totalTimeout = totalTimeout
        self.attemptTimeout = attemptTimeout
    }
}

/// A usable upstream answer (rcode NOERROR or NXDOMAIN).
public struct UpstreamAnswer: Sendable {
    /// The reply, with the ID of the query that was passed in (not the random one used on
    /// the wire), so the caller can send it on or cache it as is.
    public var reply: ByteBuffer
    /// The target that gave it.
    public var target: SocketEndpoint
    /// `.tcp` when the UDP answer was truncated and the query was repeated over TCP.
    public var transport: Transport
    /// Attempts made, this one included (a TCP retry counts as one more).
    public var attempts: Int
}

/// Why there is no usable answer. The client gets SERVFAIL either way; the query log says
/// which (`vpcdns.reason`).
public enum UpstreamFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// No target answered within the time allowed.
    case timeout
    /// Some target did answer, but only with errors: refused connection, ICMP port
    /// unreachable, a broken reply, or rcode SERVFAIL/REFUSED/NOTIMP/FORMERR. The text is
    /// the last one, with its target (`127.0.0.1:53: rcode REFUSED`).
    case error(String)

    /// The query log's reason: `upstream-timeout` or `upstream-error`.
    public var reason: String {
        switch self {
        case .timeout: "upstream-timeout"
        case .error: "upstream-error"
        }
    }

    public var description: String {
        switch self {
        case .timeout: "upstream-timeout"
        case .error(let detail): "upstream-error: \(detail)"
        }
    }
}

public typealias UpstreamResult = Result<UpstreamAnswer, UpstreamFailure>

/// Sends a query to upstream resolvers, P6: UDP first and TCP when the reply is truncated;
/// the targets in turn, each for at most `attemptTimeout`, starting again from the first
/// while time remains, all within `totalTimeout`.
///
/// **Sockets.** Every UDP attempt uses a fresh *connected* UDP socket: the kernel picks a
/// random source port (with the random ID that is ~32 bits an off-path spoofer has to guess),
/// delivers only datagrams from the target's address and port, and reports an ICMP port
/// unreachable as `ECONNREFUSED`, so a dead target fails fast instead of timing out. The cost
/// (a socket, a connect, a close: a few µs) is paid only on cache misses. A per-loop pool of
/// sockets with an in-flight map would save that, at the price of ID bookkeeping; not needed yet.
///
/// **IDs.** Each attempt sends a copy of the query with a fresh random ID; the reply is
/// accepted only with that ID, the QR bit, the same question (name case-insensitively, type
/// and class exactly) and the target's source address and port. Anything else is
/// discarded and the attempt keeps waiting. The accepted reply gets the caller's ID back.
///
/// **Failures.** rcode SERVFAIL, REFUSED, NOTIMP, FORMERR (or any other than NOERROR and
/// NXDOMAIN) ends the attempt as an error and the next target is tried. A whole round of
/// targets that all failed fast (no timeouts) ends the query with `.error` at once rather
/// than hammering them again. Timers and channels are released on every path.
///
/// Each query runs on one event loop (the one the client's query came in on), with no
/// locks; the state machine is loop-confined.
public struct UpstreamClient: Sendable {
    public var policy: UpstreamPolicy
    /// Told the outcome of every attempt (metrics, O5).
    public var observer: (any UpstreamObserver)?

    public init(policy: UpstreamPolicy = UpstreamPolicy(), observer: (any UpstreamObserver)? = nil) {
        self.policy = policy
        self.observer = observer
    }

    /// Starts resolving `query` (a complete DNS query message) through `targets` on
    /// `eventLoop` (use the client query's loop: no hop when the answer comes back).
    /// The future always succeeds, with the result.
    public func startQuery(_ query: ByteBuffer, targets: [SocketEndpoint], on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamResult> {
        let promise = eventLoop.makePromise(of: UpstreamResult.self)
        let policy = self.policy
        let observer = self.observer
        let start: @Sendable () -> Void = {
            let exchange = UpstreamExchange(query: query, targets: targets, policy: policy, eventLoop: eventLoop, promise: promise)
            exchange.observer = observer
            exchange.next()
        }
        if eventLoop.inEventLoop { start() } else { eventLoop.execute(start) }
        return promise.futureResult
    }

    /// The same, for async callers.
    public func query(_ query: ByteBuffer, targets: [SocketEndpoint], on eventLoop: any EventLoop) async -> UpstreamResult {
        // The future never fails.
        (try? await startQuery(query, targets: targets, on: eventLoop).get()) ?? .failure(.error("internal"))
    }
}

/// What one attempt ended with.
enum AttemptOutcome {
    case answer(ByteBuffer)
    case truncated
    case failed(String)
    case timedOut
}

/// What a datagram or TCP message received for an attempt means.
enum UpstreamReplyVerdict: Equatable {
    /// Not a reply to this query (wrong ID, QR clear, other question, too short): discard.
    case ignore
    /// NOERROR or NXDOMAIN with the same question: the answer.
    case accept
    /// TC set: ask the same target over TCP.
    case truncated
    /// An error reply for this query.
    case failed(String)

    static func classify(_ reply: ByteBuffer, query: ByteBuffer) -> UpstreamReplyVerdict {
        guard let flags = WireHeader.flags(reply), let id = WireHeader.id(reply),
              id == WireHeader.id(query), WireHeader.isResponse(flags)
        else { return .ignore }
        let rcode = WireHeader.rcode(flags)
        if WireHeader.qdcount(reply) == 0 {
            // FORMERR and friends often come back without the question.
            return .failed(rcode == 0 || rcode == 3 ? "broken reply: no question" : "rcode \(rcodeName(rcode))")
        }
        switch WireHeader.sameQuestion(reply, query) {
        case nil: return .failed("broken reply: unreadable question")
        case false?: return .ignore
        case true?: break
        }
        if WireHeader.isTruncated(flags) { return .truncated }
        switch rcode {
        case 0, 3: return .accept
        default: return .failed("rcode \(rcodeName(rcode))")
        }
    }

    static func rcodeName(_ rcode: UInt8) -> String {
        switch rcode {
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        default: "\(rcode)"
        }
    }
}

/// The state machine of one upstream query. Loop-confined.
final class UpstreamExchange {
    private let query: ByteBuffer
    private let targets: [SocketEndpoint]
    private let policy: UpstreamPolicy
    private let eventLoop: any EventLoop
    private let promise: EventLoopPromise<UpstreamResult>
    private let deadline: NIODeadline
    private var index = 0
    private var attempts = 0
    private var lastError: String?
    private var roundHadTimeout = false
    var observer: (any UpstreamObserver)?

    init(query: ByteBuffer, targets: [SocketEndpoint], policy: UpstreamPolicy, eventLoop: any EventLoop,
         promise: EventLoopPromise<UpstreamResult>) {
        self.query = query
        self.targets = targets
        self.policy = policy
        self.eventLoop = eventLoop
        self.promise = promise
        self.deadline = .now() + policy.totalTimeout
    }

    func next() {
        guard WireHeader.flags(query) != nil else {
            return promise.succeed(.failure(.error("query shorter than a DNS header")))
        }
        guard !targets.isEmpty else { return promise.succeed(.failure(.error("no upstream targets"))) }
        let now = NIODeadline.now()
        guard now < deadline else { return giveUp() }
        if index == targets.count {
            // A round where every target failed fast: asking them again would not help.
            if !roundHadTimeout && lastError != nil { return giveUp() }
            index = 0
            roundHadTimeout = false
        }
        let target = targets[index]
        index += 1
        attempt(target: target, transport: .udp, until: min(now + policy.attemptTimeout, deadline))
    }

    private func attempt(target: SocketEndpoint, transport: Transport, until attemptDeadline: NIODeadline) {
        attempts += 1
        var wire = query
        WireHeader.setID(UInt16.random(in: 0...UInt16.max), in: &wire)
        let future = transport == .udp
            ? UpstreamAttempt.udp(wire, to: target, until: attemptDeadline, on: eventLoop)
            : UpstreamAttempt.tcp(wire, to: target, until: attemptDeadline, on: eventLoop)
        future.assumeIsolated().whenSuccess { [self] outcome in
            if let observer {
                switch outcome {
                case .answer: observer.upstreamAttempt(target: target, result: .ok)
                case .failed: observer.upstreamAttempt(target: target, result: .error)
                case .timedOut: observer.upstreamAttempt(target: target, result: .timeout)
                case .truncated: break  // the TCP retry that follows is the attempt that counts
                }
            }
            switch outcome {
            case .answer(var reply):
                if let id = WireHeader.id(query) { WireHeader.setID(id, in: &reply) }
                promise.succeed(.success(UpstreamAnswer(reply: reply, target: target, transport: transport, attempts: attempts)))
            case .truncated:
                if transport == .udp {
                    // The TCP retry gets a full attempt of its own, within the total.
                    attempt(target: target, transport: .tcp, until: min(.now() + policy.attemptTimeout, deadline))
                } else {
                    lastError = "\(target): truncated reply over TCP"
                    next()
                }
            case .failed(let why):
                lastError = "\(target): \(why)"
                next()
            case .timedOut:
                roundHadTimeout = true
                next()
            }
        }
    }

    private func giveUp() {
        promise.succeed(.failure(lastError.map { .error($0) } ?? .timeout))
    }
}

/// One attempt against one target over one transport: a channel, a timer and a promise that
/// is completed exactly once, after which both are released.
final class UpstreamAttempt {
    private let promise: EventLoopPromise<AttemptOutcome>
    private var timer: Scheduled<Void>?
    private var channel: (any Channel)?
    private(set) var done = false

    private init(promise: EventLoopPromise<AttemptOutcome>) {
        self.promise = promise
    }

    func finish(_ outcome: AttemptOutcome) {
        guard !done else { return }
        done = true
        timer?.cancel()
        timer = nil
        channel?.close(promise: nil)
        channel = nil
        promise.succeed(outcome)
    }

    private func started(_ result: Result<any Channel, any Error>, send message: ByteBuffer) {
        switch result {
        case .success(let ch):
            if done {
                ch.close(promise: nil)
                return
            }
            channel = ch
            let written = ch.eventLoop.makePromise(of: Void.self)
            written.futureResult.assumeIsolated().whenFailure { [self] error in finish(.failed(describe(error))) }
            ch.writeAndFlush(message, promise: written)
        case .failure(let error):
            finish(.failed(describe(error)))
        }
    }

    private static func begin(until deadline: NIODeadline, on eventLoop: any EventLoop) -> UpstreamAttempt {
        let attempt = UpstreamAttempt(promise: eventLoop.makePromise())
        attempt.timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { attempt.finish(.timedOut) }
        return attempt
    }

    static func udp(_ query: ByteBuffer, to target: SocketEndpoint, until deadline: NIODeadline,
                    on eventLoop: any EventLoop) -> EventLoopFuture<AttemptOutcome> {
        let attempt = begin(until: deadline, on: eventLoop)
        let bound = NIOLoopBound(attempt, eventLoop: eventLoop)
        DatagramBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamUDPHandler(attempt: bound.value, query: query, target: target))
                }
            }
            .connect(to: target.socketAddress)
            .assumeIsolated().whenComplete { attempt.started($0, send: query) }
        return attempt.promise.futureResult
    }

    static func tcp(_ query: ByteBuffer, to target: SocketEndpoint, until deadline: NIODeadline,
                    on eventLoop: any EventLoop) -> EventLoopFuture<AttemptOutcome> {
        let attempt = begin(until: deadline, on: eventLoop)
        let bound = NIOLoopBound(attempt, eventLoop: eventLoop)
        guard let framed = DNSTCPFrame.frame(query, allocator: ByteBufferAllocator()) else {
            attempt.finish(.failed("query too long"))
            return attempt.promise.futureResult
        }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(max(.milliseconds(1), deadline - .now()))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                    try sync.addHandler(UpstreamTCPHandler(attempt: bound.value, query: query))
                }
            }
            .connect(to: target.socketAddress)
            .assumeIsolated().whenComplete { attempt.started($0, send: framed) }
        return attempt.promise.futureResult
    }
}

/// Receives replies for one UDP attempt.
final class UpstreamUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let attempt: UpstreamAttempt
    private let query: ByteBuffer
    private let target: SocketEndpoint

    init(attempt: UpstreamAttempt, query: ByteBuffer, target: SocketEndpoint) {
        self.attempt = attempt
        self.query = query
        self.target = target
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        // The connected socket already filters by source; checked again, cheaply.
        guard SocketEndpoint(envelope.remoteAddress) == target else { return }
        switch UpstreamReplyVerdict.classify(envelope.data, query: query) {
        case .ignore: break
        case .accept: attempt.finish(.answer(envelope.data))
        case .truncated: attempt.finish(.truncated)
        case .failed(let why): attempt.finish(.failed(why))
        }
    }

    /// `ECONNREFUSED` here is the ICMP port unreachable of a target with nothing listening.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        attempt.finish(.failed(describe(error)))
    }
}

/// Receives the framed reply of one TCP attempt.
final class UpstreamTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let attempt: UpstreamAttempt
    private let query: ByteBuffer

    init(attempt: UpstreamAttempt, query: ByteBuffer) {
        self.attempt = attempt
        self.query = query
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        switch UpstreamReplyVerdict.classify(message, query: query) {
        case .ignore: break
        // TC over TCP cannot be helped: pass on what came.
        case .accept, .truncated: attempt.finish(.answer(message))
        case .failed(let why): attempt.finish(.failed(why))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        attempt.finish(.failed("connection closed before a reply"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        attempt.finish(.failed(describe(error)))
    }
}
