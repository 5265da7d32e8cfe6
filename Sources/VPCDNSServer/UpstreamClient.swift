import NIOCore
import NIOPosix
import VPCDNSCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Timeouts of one upstream query (P6; config.md `upstream_timeout_ms`,
/// `upstream_attempt_timeout_ms`), and how upstream UDP sockets are shared.
public struct UpstreamPolicy: Sendable, Hashable {
    /// All attempts of one query together.
    public var totalTimeout: TimeAmount
    /// The most one target is waited for before the next is tried.
    public var attemptTimeout: TimeAmount
    /// Uses, lifetime and number of the shared UDP sockets (see `UpstreamClient`).
    public var sockets: UpstreamSocketLimits

    public init(totalTimeout: TimeAmount = .milliseconds(2000), attemptTimeout: TimeAmount = .milliseconds(800),
                sockets: UpstreamSocketLimits = UpstreamSocketLimits()) {
        self.totalTimeout = totalTimeout
        self.attemptTimeout = attemptTimeout
        self.sockets = sockets
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
/// Both carry the last target an attempt went to (nil when none was tried: no targets, or a
/// query too short to send), which the query log names as `vpcdns.upstream`, so a failing
/// upstream can be found from the log alone.
public enum UpstreamFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// No target answered within the time allowed.
    case timeout(lastTried: SocketEndpoint?)
    /// Some target did answer, but only with errors: refused connection, ICMP port
    /// unreachable, a broken reply, or rcode SERVFAIL/REFUSED/NOTIMP/FORMERR. The text is
    /// the last one, with its target (`127.0.0.1:53: rcode REFUSED`).
    case error(String, lastTried: SocketEndpoint?)

    /// The query log's reason: `upstream-timeout` or `upstream-error`.
    public var reason: String {
        switch self {
        case .timeout: "upstream-timeout"
        case .error: "upstream-error"
        }
    }

    /// The target of the last attempt made.
    public var lastTried: SocketEndpoint? {
        switch self {
        case .timeout(let t), .error(_, let t): t
        }
    }

    public var description: String {
        switch self {
        case .timeout: "upstream-timeout"
        case .error(let detail, _): "upstream-error: \(detail)"
        }
    }
}

public typealias UpstreamResult = Result<UpstreamAnswer, UpstreamFailure>

/// Sends a query to upstream resolvers, P6: UDP first and TCP when the reply is truncated;
/// the targets in turn, each for at most `attemptTimeout`, starting again from the first
/// while time remains, all within `totalTimeout`.
///
/// **Sockets.** UDP attempts go out on *connected* UDP sockets shared by the queries of one
/// event loop: each loop keeps up to `UpstreamSocketLimits.perTarget` (1,024) per target, and
/// each attempt picks one of them at random. An attempt is: pick a socket (opening it when its
/// slot is empty), register a random ID in its in-flight map, write; the reply is matched to
/// its attempt by that ID and then checked
/// like any other (below). Connected, so the kernel delivers only datagrams from the
/// target's address and port and reports an ICMP port unreachable as `ECONNREFUSED`. Such a
/// socket error ends every attempt in flight on the socket and retires it; each of those
/// attempts is sent once more, on another socket of the target, within its own deadline, and
/// only a second socket error makes it fail (then the next target is tried). A dead target so
/// still fails fast, while one forged ICMP message (it can be, and its sender is not checked)
/// costs the queries on that socket a resend, not a SERVFAIL. Opening a socket (socket, bind, connect,
/// pipeline, epoll registration, close) is paid once per socket instead of once per
/// attempt; it was about 40% of the CPU of a cache miss.
///
/// **Spoofing entropy (P11, CVE-2008-1447).** A socket of its own per attempt would give every
/// query a fresh random source port, but opening one (socket, bind, connect, pipeline, epoll
/// registration, close) was about 40% of the CPU of a cache miss. Instead the source port is
/// drawn at random per attempt from a large set of open sockets: 1,024 slots per target per
/// loop (`upstream_sockets`), one chosen uniformly for each attempt (1,000 attempts on one loop
/// leave from about 630 ports), each socket keeping its kernel-chosen ephemeral port for at
/// most `uses` attempts (128) or `lifetime` (10 s; 1 s idle). A spoofer who has learnt every
/// open port still has to guess which of them, about 10 bits, on top of the 16-bit ID; one who
/// has not faces the whole ephemeral range. Under load a socket carries its 128 attempts
/// before it is replaced, so its opening is paid once per 128 attempts, as with few sockets;
/// what does cost is that replies no longer arrive several to a socket (each attempt its own
/// `sendmsg`, `recvmsg` and epoll event: 20–40% more CPU per miss than 4 sockets in turn).
/// Upstream sockets take at most half the process's descriptor limit
/// (`UpstreamSocketPool.socketBudget`); past it, attempts go to the sockets already open.
///
/// **IDs.** Each attempt sends the query with a fresh random ID, never one already used on
/// that socket: an ID whose attempt ended (answered, failed or timed out) stays in the map as
/// used until the socket closes, so a late reply after a timeout is dropped and can never be
/// taken for a later attempt's. A reply is accepted only for a waiting ID, with the QR bit,
/// the same question (name case-insensitively, type and class exactly) and the target's
/// source address and port. Anything else is discarded and the attempt keeps waiting. The
/// accepted reply gets the caller's ID back.
///
/// **Failures.** rcode SERVFAIL, REFUSED, NOTIMP, FORMERR (or any other than NOERROR and
/// NXDOMAIN) ends the attempt as an error and the next target is tried; so does a reply with
/// the attempt's ID but no readable question (FORMERR and its kind often come back without
/// one), which a spoofer who guessed the port and ID could also send. A UDP reply that fills
/// its 4,096-byte receive slot may have been cut, so it is asked again over TCP; upstream
/// queries advertise at most that size. A whole round of
/// targets that all failed fast (no timeouts) ends the query with `.error` at once rather
/// than hammering them again.
///
/// **Timers and descriptors.** A full-length UDP attempt's deadline goes into its loop's
/// first-in first-out queue for that attempt length (`AttemptTimeouts`: one NIO timer for the
/// earliest deadline, not one per attempt); when the attempt ends first its entry is merely
/// skipped when its time comes, so the exchange object lives until then (its completion, and
/// what the caller captured in it, is dropped as soon as it has been called). An attempt cut
/// short by the total timeout has a NIO timer of its own, cancelled on every path. A socket is
/// closed when it is retired and nothing is in flight on it, and an idle one within about
/// `lifetime` plus a quarter second, so the descriptor count goes back to where it was. TCP
/// attempts (after TC) use a connection of their own, closed when the attempt ends.
///
/// Each query runs on one event loop (the one the client's query came in on), and the
/// sockets it uses belong to that loop; with no locks, the state machine and the pool are
/// loop-confined.
public struct UpstreamClient: Sendable {
    public var policy: UpstreamPolicy
    /// Told the outcome of every attempt (metrics, O5).
    public var observer: (any UpstreamObserver)?
    /// O8: told every query sent and reply accepted (dnstap forwarder messages); nil = off.
    public var tap: (any UpstreamTap)?

    public init(policy: UpstreamPolicy = UpstreamPolicy(), observer: (any UpstreamObserver)? = nil, tap: (any UpstreamTap)? = nil) {
        self.policy = policy
        self.observer = observer
        self.tap = tap
    }

    /// Starts resolving `query` (a complete DNS query message) through `targets` on
    /// `eventLoop` (use the client query's loop: no hop when the answer comes back).
    /// The future always succeeds, with the result.
    public func startQuery(_ query: ByteBuffer, targets: [SocketEndpoint], on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamResult> {
        let promise = eventLoop.makePromise(of: UpstreamResult.self)
        start(query, targets: targets, on: eventLoop) { promise.succeed($0) }
        return promise.futureResult
    }

    /// The same with a callback instead of a future: `completion` is called exactly once, on
    /// `eventLoop`.
    public func start(_ query: ByteBuffer, targets: [SocketEndpoint], on eventLoop: any EventLoop,
                      completion: @escaping @Sendable (UpstreamResult) -> Void) {
        let policy = self.policy
        let observer = self.observer
        let tap = self.tap
        if eventLoop.inEventLoop {
            UpstreamExchange(query: query, targets: targets, policy: policy, eventLoop: eventLoop, observer: observer, tap: tap, completion: completion).next()
        } else {
            eventLoop.execute {
                UpstreamExchange(query: query, targets: targets, policy: policy, eventLoop: eventLoop, observer: observer, tap: tap, completion: completion).next()
            }
        }
    }

    /// The same, for async callers.
    public func query(_ query: ByteBuffer, targets: [SocketEndpoint], on eventLoop: any EventLoop) async -> UpstreamResult {
        // The future never fails.
        (try? await startQuery(query, targets: targets, on: eventLoop).get()) ?? .failure(.error("internal", lastTried: nil))
    }
}

/// What one attempt ended with.
enum AttemptOutcome {
    case answer(ByteBuffer)
    case truncated
    case failed(String)
    /// The UDP socket failed (ICMP port unreachable, a failed write or connect), not the reply.
    case socketError(String)
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

/// The state machine of one upstream query. Loop-confined. At most one attempt is in flight
/// at a time; a UDP one is waited for here (its socket, ID and timer), a TCP one through
/// `UpstreamAttempt`.
final class UpstreamExchange {
    /// The query as sent: the caller's message with the current attempt's ID.
    private(set) var wire: ByteBuffer
    private let callerID: UInt16?
    private let targets: [SocketEndpoint]
    private let policy: UpstreamPolicy
    private let eventLoop: any EventLoop
    private let observer: (any UpstreamObserver)?
    private let tap: (any UpstreamTap)?
    /// When the attempt in flight was sent (wall clock, ns), for dnstap; set only with a tap.
    private var sentAt: Int64 = 0
    /// Dropped once called: the exchange may stay referenced by the loop's timeout queue
    /// until its last attempt's deadline, but what the caller captured need not.
    private var completion: ((UpstreamResult) -> Void)?
    private let deadline: NIODeadline
    private var index = 0
    private var attempts = 0
    private var lastError: String?
    private var roundHadTimeout = false
    private var finished = false
    /// The target of the latest attempt (a TCP retry after TC goes to the same one).
    private var lastTarget: SocketEndpoint?
    // The UDP attempt in flight, if any: its target, socket, ID and timer.
    private var udpTarget: SocketEndpoint?
    private var udpSocket: PooledUDPSocket?
    private var udpID: UInt16 = 0
    /// The UDP attempt's deadline, and whether it was already sent again after a socket error.
    private var udpDeadline = NIODeadline.uptimeNanoseconds(0)
    private var resentAfterSocketError = false
    private var timer: Scheduled<Void>?
    /// Attempts started, so that a timer of an earlier one does nothing.
    private var serial: UInt32 = 0

    init(query: ByteBuffer, targets: [SocketEndpoint], policy: UpstreamPolicy, eventLoop: any EventLoop,
         observer: (any UpstreamObserver)?, tap: (any UpstreamTap)? = nil, completion: @escaping (UpstreamResult) -> Void) {
        self.wire = query
        self.callerID = WireHeader.id(query)
        self.targets = targets
        self.policy = policy
        self.eventLoop = eventLoop
        self.observer = observer
        self.tap = tap
        self.completion = completion
        self.deadline = .now() + policy.totalTimeout
    }

    func next() {
        guard WireHeader.flags(wire) != nil else {
            return finish(.failure(.error("query shorter than a DNS header", lastTried: nil)))
        }
        guard !targets.isEmpty else { return finish(.failure(.error("no upstream targets", lastTried: nil))) }
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
        lastTarget = target
        attemptUDP(target, until: min(now + policy.attemptTimeout, deadline), now: now)
    }

    /// `resend`: the same attempt again on a fresh socket, after a socket error.
    private func attemptUDP(_ target: SocketEndpoint, until attemptDeadline: NIODeadline, now: NIODeadline, resend: Bool = false) {
        if !resend {
            attempts += 1
            resentAfterSocketError = false
        }
        udpDeadline = attemptDeadline
        serial &+= 1
        let mine = serial
        udpTarget = target
        let pool = UpstreamSocketPool.current(on: eventLoop)
        pool.send(self, to: target, limits: policy.sockets, now: now)
        // A socket error can end this attempt (and start the next) before `send` returns.
        guard serial == mine, udpSocket != nil else { return }
        if attemptDeadline == now + policy.attemptTimeout {
            // The usual case: a full attempt. The loop's queue of such deadlines is in order, so
            // it needs no NIO timer per attempt (whose cancellation is a linear search).
            pool.timeouts.add(self, serial: mine, duration: policy.attemptTimeout, deadline: attemptDeadline)
        } else {
            // Cut short by the total timeout.
            timer = eventLoop.assumeIsolated().scheduleTask(deadline: attemptDeadline) { [self] in udpTimedOut(serial: mine) }
        }
    }

    /// The attempt numbered `serial` reached its deadline (nothing if it already ended).
    func udpTimedOut(serial mine: UInt32) {
        guard serial == mine, let socket = udpSocket, let target = udpTarget else { return }
        udpSocket = nil
        timer = nil
        socket.abandon(udpID)
        ended(.timedOut, target: target, transport: .udp)
    }

    /// From the pool: the attempt is registered on `socket` under `id` (about to be written).
    func udpStarted(on socket: PooledUDPSocket, id: UInt16) {
        udpSocket = socket
        udpID = id
        WireHeader.setID(id, in: &wire)
        if let tap, let target = udpTarget {
            sentAt = ReceiveTime.now().wallNanoseconds
            tap.forwarderQuery(wire, target: target, transport: .udp, sentAt: sentAt)
        }
    }

    /// From the socket: the UDP attempt's reply, or an error of its socket. The socket has
    /// already marked the ID as ended.
    func udpEnded(_ outcome: AttemptOutcome) {
        guard udpSocket != nil, let target = udpTarget else { return }
        udpSocket = nil
        timer?.cancel()
        timer = nil
        ended(outcome, target: target, transport: .udp)
    }

    private func attemptTCP(_ target: SocketEndpoint, until attemptDeadline: NIODeadline) {
        attempts += 1
        WireHeader.setID(UInt16.random(in: 0...UInt16.max), in: &wire)
        if let tap {
            sentAt = ReceiveTime.now().wallNanoseconds
            tap.forwarderQuery(wire, target: target, transport: .tcp, sentAt: sentAt)
        }
        UpstreamAttempt.tcp(wire, to: target, until: attemptDeadline, on: eventLoop).assumeIsolated().whenSuccess { [self] outcome in
            ended(outcome, target: target, transport: .tcp)
        }
    }

    private func ended(_ outcome: AttemptOutcome, target: SocketEndpoint, transport: Transport) {
        if case .socketError = outcome, transport == .udp, !resentAfterSocketError {
            let now = NIODeadline.now()
            if now < udpDeadline {
                // Once more on a fresh socket (the failed one is retired), within the same
                // attempt's time: a forged ICMP message costs a resend, not the query.
                resentAfterSocketError = true
                return attemptUDP(target, until: udpDeadline, now: now, resend: true)
            }
        }
        if let observer {
            switch outcome {
            case .answer: observer.upstreamAttempt(target: target, result: .ok)
            case .failed, .socketError: observer.upstreamAttempt(target: target, result: .error)
            case .timedOut: observer.upstreamAttempt(target: target, result: .timeout)
            case .truncated: break  // the TCP retry that follows is the attempt that counts
            }
        }
        switch outcome {
        case .answer(var reply):
            tap?.forwarderResponse(reply, query: wire, target: target, transport: transport, sentAt: sentAt)
            if let callerID { WireHeader.setID(callerID, in: &reply) }
            finish(.success(UpstreamAnswer(reply: reply, target: target, transport: transport, attempts: attempts)))
        case .truncated:
            if transport == .udp {
                // The TCP retry gets a full attempt of its own, within the total.
                attemptTCP(target, until: min(.now() + policy.attemptTimeout, deadline))
            } else {
                lastError = "\(target): truncated reply over TCP"
                next()
            }
        case .failed(let why), .socketError(let why):
            lastError = "\(target): \(why)"
            next()
        case .timedOut:
            roundHadTimeout = true
            next()
        }
    }

    private func giveUp() {
        finish(.failure(lastError.map { .error($0, lastTried: lastTarget) } ?? .timeout(lastTried: lastTarget)))
    }

    private func finish(_ result: UpstreamResult) {
        guard !finished, let completion else { return }
        finished = true
        self.completion = nil
        completion(result)
    }
}

/// One TCP attempt against one target: a connection, a timer and a promise that is completed
/// exactly once, after which both are released.
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
