import NIOCore
import Synchronization
import NIOPosix
import VPCDNSCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the upstream UDP sockets of one event loop are shared (see `UpstreamClient`).
public struct UpstreamSocketLimits: Sendable, Hashable {
    /// How an attempt picks its socket among a target's `perTarget` slots.
    public enum SlotChoice: Sendable, Hashable {
        /// Uniformly at random, so the source port of the next query cannot be told from the
        /// last ones (P11).
        case random
        /// One slot after the other: predictable, for tests that count sockets.
        case inTurn
    }

    /// Attempts one socket carries before it is retired: its source port then changes.
    /// At most 32,768, so a fresh ID (never one used on the socket) is always found quickly.
    public let uses: Int
    /// How long one socket takes new attempts after it was opened.
    public let lifetime: TimeAmount
    /// A socket with nothing in flight and no attempt for this long is closed (at most
    /// `lifetime`): an idle server soon holds no upstream sockets.
    public let idle: TimeAmount
    /// Socket slots per target per event loop (at least 1). A slot's socket is opened when an
    /// attempt first picks it, and replaced once retired.
    public let perTarget: Int
    public let choice: SlotChoice

    /// 1,024 slots chosen at random: a window of 1,000 queries on one loop leaves from about
    /// 630 different ports. Under load a socket lives until its use bound (128 attempts), so
    /// its opening is paid once per 128 attempts as with few sockets; idle ones close after 1 s.
    public init(uses: Int = 128, lifetime: TimeAmount = .seconds(10), idle: TimeAmount = .seconds(1), perTarget: Int = 1024,
                choice: SlotChoice = .random) {
        self.uses = min(max(1, uses), 32_768)
        self.lifetime = lifetime
        self.idle = min(idle, lifetime)
        self.perTarget = min(max(1, perTarget), 65_536)
        self.choice = choice
    }
}

/// The connected UDP sockets of one event loop, a few per upstream target, shared by the
/// attempts in flight on that loop. Each socket keeps an in-flight map from DNS ID to the
/// exchange waiting on it; IDs are random and never repeat on one socket (an ID that ended,
/// answered or timed out, stays in the map as a tombstone until the socket closes), so a late
/// reply can never be taken for a later attempt's. Loop-confined: only the loop's own thread
/// touches it (one per thread, like `LoopScratch`), so nothing here needs a lock.
final class UpstreamSocketPool: @unchecked Sendable {
    private static let perThread = ThreadSpecificVariable<UpstreamSocketPool>()

    /// The calling loop's pool. Call on `eventLoop` only.
    static func current(on eventLoop: any EventLoop) -> UpstreamSocketPool {
        eventLoop.preconditionInEventLoop()
        if let pool = perThread.currentValue, pool.eventLoop === eventLoop { return pool }
        let pool = UpstreamSocketPool(eventLoop: eventLoop)
        perThread.currentValue = pool
        return pool
    }

    /// How often retired and idle sockets are looked for, while there are any sockets.
    static let sweepInterval: TimeAmount = .milliseconds(250)

    let eventLoop: any EventLoop
    private var targets: [SocketEndpoint: Rotation] = [:]
    private var sweepScheduled = false
    /// Sockets written to since the last flush: the writes of one burst of queries leave
    /// together, after the loop has handled the burst (one `sendmmsg` per socket).
    private var unflushed: [PooledUDPSocket] = []
    private var flushScheduled = false
    /// Random bytes for IDs, drawn from the kernel in blocks.
    private var random = RandomBlock()
    /// Deadlines of the UDP attempts waiting on this loop.
    private(set) lazy var timeouts = AttemptTimeouts(eventLoop: eventLoop)
    /// Sockets opened and not yet closed (all targets, retired ones included).
    private(set) var openSockets = 0
    /// Sockets opened since the loop started (tests and diagnostics).
    private(set) var socketsOpened = 0

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The socket slots of one target.
    private final class Rotation {
        var slots: [PooledUDPSocket?]
        var cursor = 0
        init(count: Int) { slots = Array(repeating: nil, count: count) }

        func anyTakingAttempts(now: NIODeadline) -> PooledUDPSocket? {
            slots.first { $0?.takesAttempts(now: now) == true } ?? nil
        }
    }

    /// Upstream sockets open in the process (all loops), against `socketBudget`.
    static let openProcessWide = Atomic<Int>(0)
    /// Upstream sockets take their descriptors from the share `DescriptorBudget` keeps out of
    /// clients' reach (half of it; the rest is for listeners, the log, files read on reload and
    /// the runtime), so a full house of TCP and HTTP clients never starves forwarding, and a
    /// burst of misses never starves accepts. Past it, attempts share the sockets already open
    /// (fewer source ports for a while, never a failure). Read once, after `serve` has raised
    /// the soft limit.
    static let socketBudget: Int = max(64, DescriptorBudget.current.reserved / 2)

    /// Registers `exchange` on one of `target`'s sockets under a fresh random ID (never one
    /// used before on that socket) and writes its query with that ID. A socket error may end
    /// the attempt before this returns (`exchange.udpEnded`).
    func send(_ exchange: UpstreamExchange, to target: SocketEndpoint, limits: UpstreamSocketLimits, now: NIODeadline) {
        let rotation: Rotation
        if let r = targets[target] {
            rotation = r
            if r.slots.count != limits.perTarget {
                // Another configuration: resize; sockets left out are retired.
                for case let s? in r.slots.dropFirst(limits.perTarget) { s.retire() }
                r.slots = Array(r.slots.prefix(limits.perTarget)) + Array(repeating: nil, count: max(0, limits.perTarget - r.slots.count))
                r.cursor = 0
            }
        } else {
            rotation = Rotation(count: limits.perTarget)
            targets[target] = rotation
        }
        switch limits.choice {
        case .random: rotation.cursor = random.below(rotation.slots.count)
        case .inTurn: rotation.cursor = rotation.cursor + 1 == rotation.slots.count ? 0 : rotation.cursor + 1
        }
        let socket: PooledUDPSocket
        if let s = rotation.slots[rotation.cursor], s.takesAttempts(now: now) {
            socket = s
        } else if Self.openProcessWide.load(ordering: .relaxed) >= Self.socketBudget, let s = rotation.anyTakingAttempts(now: now) {
            // Near the descriptor limit: no new socket while the target has a usable one.
            socket = s
        } else {
            rotation.slots[rotation.cursor]?.retire()
            socket = open(target, limits: limits, now: now)
            rotation.slots[rotation.cursor] = socket
        }
        var id = random.nextID()
        while socket.knows(id) { id = random.nextID() }
        exchange.udpStarted(on: socket, id: id)
        socket.send(exchange, id: id, now: now)
    }

    private func open(_ target: SocketEndpoint, limits: UpstreamSocketLimits, now: NIODeadline) -> PooledUDPSocket {
        let socket = PooledUDPSocket(pool: self, target: target, limits: limits, openedAt: now)
        openSockets += 1
        socketsOpened += 1
        Self.openProcessWide.add(1, ordering: .relaxed)
        socket.connect()
        scheduleSweep()
        return socket
    }

    /// `socket` has a write waiting for the flush at the end of this loop iteration.
    func needsFlush(_ socket: PooledUDPSocket) {
        if !socket.flushQueued {
            socket.flushQueued = true
            unflushed.append(socket)
        }
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.assumeIsolated().execute { [self] in flushAll() }
    }

    private func flushAll() {
        // By index: a failed write can start another attempt, which may add a socket here.
        var i = 0
        while i < unflushed.count {
            unflushed[i].flush()
            i += 1
        }
        unflushed.removeAll(keepingCapacity: true)
        flushScheduled = false
    }

    /// The sockets `target` has in rotation now (tests).
    func sockets(of target: SocketEndpoint) -> [PooledUDPSocket] {
        targets[target]?.slots.compactMap { $0 } ?? []
    }

    /// Called by a socket once it is closed.
    func closed(_ socket: PooledUDPSocket) {
        openSockets -= 1
        Self.openProcessWide.subtract(1, ordering: .relaxed)
    }

    private func scheduleSweep() {
        guard !sweepScheduled else { return }
        sweepScheduled = true
        eventLoop.assumeIsolated().scheduleTask(in: Self.sweepInterval) { [self] in sweep() }
    }

    /// Retires sockets past their lifetime or idle (they close once nothing is in flight on them),
    /// forgets closed ones, and keeps looking while any socket is open.
    private func sweep() {
        sweepScheduled = false
        let now = NIODeadline.now()
        for (target, rotation) in targets {
            var any = false
            for i in rotation.slots.indices {
                guard let s = rotation.slots[i] else { continue }
                if !s.takesAttempts(now: now) || s.isIdle(now: now) {
                    s.retire()
                    rotation.slots[i] = nil
                } else {
                    any = true
                }
            }
            if !any { targets[target] = nil }
        }
        if openSockets > 0 { scheduleSweep() }
    }
}

/// One connected UDP socket to one target, shared by the attempts in flight on it.
final class PooledUDPSocket {
    enum Entry {
        /// An attempt waiting for its reply.
        case waiting(UpstreamExchange)
        /// An ID that was used on this socket: never again, and a late reply is dropped.
        case ended
    }

    private enum State {
        /// Connecting: writes wait in `queued`.
        case opening
        case open(any Channel)
        case closed
    }

    let target: SocketEndpoint
    private unowned let pool: UpstreamSocketPool
    private let limits: UpstreamSocketLimits
    private let retireAt: NIODeadline
    /// When the last attempt was registered (the sweep closes sockets idle since).
    private var lastUsed: NIODeadline
    private var state = State.opening
    private var queued: [ByteBuffer] = []
    private var entries: [UInt16: Entry]
    private(set) var inFlight = 0
    private var uses = 0
    private(set) var retired = false
    /// Why the socket failed, when it did: given to an attempt that finds it closed.
    private var failure: String?
    /// In the pool's list of sockets to flush.
    var flushQueued = false

    init(pool: UpstreamSocketPool, target: SocketEndpoint, limits: UpstreamSocketLimits, openedAt: NIODeadline) {
        self.pool = pool
        self.target = target
        self.limits = limits
        self.retireAt = openedAt + limits.lifetime
        self.lastUsed = openedAt
        // Room for the attempts a socket usually carries; grows when it carries more.
        self.entries = Dictionary(minimumCapacity: min(limits.uses, 32))
    }

    /// Open (or opening), not retired, under its use bound and within its lifetime.
    func takesAttempts(now: NIODeadline) -> Bool {
        !retired && uses < limits.uses && now < retireAt
    }

    /// Nothing in flight and no attempt for `limits.idle`.
    func isIdle(now: NIODeadline) -> Bool {
        inFlight == 0 && now - lastUsed >= limits.idle
    }

    func knows(_ id: UInt16) -> Bool { entries[id] != nil }

    /// Registers `exchange` under `id` and writes its query.
    func send(_ exchange: UpstreamExchange, id: UInt16, now: NIODeadline) {
        lastUsed = now
        entries[id] = .waiting(exchange)
        inFlight += 1
        uses += 1
        if uses >= limits.uses { retired = true }
        switch state {
        case .open(let channel): write(exchange.wire, on: channel)
        case .opening: queued.append(exchange.wire)
        case .closed:
            // Its connect failed before the attempt was registered (no descriptor left, no
            // route): the attempt gets that error, as a socket error.
            end(id, .socketError(failure ?? "socket closed"))
        }
    }

    /// The exchange gave up on `id` (its attempt timed out): the ID stays used.
    func abandon(_ id: UInt16) {
        guard case .waiting? = entries[id] else { return }
        entries[id] = .ended
        inFlight -= 1
        closeIfDrained()
    }

    /// Takes no more attempts; closes once nothing is in flight.
    func retire() {
        retired = true
        closeIfDrained()
    }

    private func closeIfDrained() {
        guard retired, inFlight == 0 else { return }
        close()
    }

    private func close() {
        let was = state
        if case .closed = was { return }
        state = .closed
        queued = []
        pool.closed(self)
        // `.opening`: connect() sees `.closed` and closes the channel it gets.
        if case .open(let channel) = was { channel.close(promise: nil) }
    }

    func connect() {
        let bound = NIOLoopBound(self, eventLoop: pool.eventLoop)
        // With attempts spread over many sockets, a socket rarely has more than one reply
        // waiting: one plain read per readiness (epoll is level-triggered, so a second reply
        // is read on the next turn), and a receive buffer of one slot kept per socket.
        DatagramBootstrap(group: pool.eventLoop)
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: UDPListener.datagramSlotSize))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PooledUDPHandler(socket: bound.value))
                }
            }
            .connect(to: target.socketAddress)
            .assumeIsolated().whenComplete { [self] result in
                switch (result, state) {
                case (.success(let channel), .opening):
                    state = .open(channel)
                    let writes = queued
                    queued = []
                    for w in writes { write(w, on: channel) }
                case (.success(let channel), _):
                    channel.close(promise: nil)
                case (.failure(let error), .opening):
                    failAll(describe(error))
                case (.failure, _):
                    break
                }
            }
    }

    private func write(_ message: ByteBuffer, on channel: any Channel) {
        // A failed write is a fault of the socket (ECONNREFUSED here is an earlier ICMP port
        // unreachable of this target); NIO closes the channel after most of them anyway.
        // The callback is attached before the write: NIO fails the promise before it tells the
        // pipeline the channel is gone, so the attempts fail with the real error.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenFailure { [self] error in failAll(describe(error)) }
        channel.write(message, promise: written)
        pool.needsFlush(self)
    }

    func flush() {
        flushQueued = false
        if case .open(let channel) = state { channel.flush() }
    }

    /// A datagram from the socket.
    func received(_ reply: ByteBuffer, from source: SocketEndpoint?) {
        // The connected socket already filters by source; checked again, cheaply.
        guard source == target, let id = WireHeader.id(reply), case .waiting(let exchange)? = entries[id] else { return }
        let outcome: AttemptOutcome
        switch UpstreamReplyVerdict.classify(reply, query: exchange.wire) {
        case .ignore: return
        // A datagram that filled its receive slot may have been cut by the read (NIO does not
        // report MSG_TRUNC): asked again over TCP rather than parsed short. Queries advertise
        // no more than the slot, so a well-behaved upstream sets TC before this happens.
        case .accept where reply.readableBytes >= UDPListener.datagramSlotSize: outcome = .truncated
        case .accept: outcome = .answer(reply)
        case .truncated: outcome = .truncated
        case .failed(let why): outcome = .failed(why)
        }
        end(id, outcome)
    }

    private func end(_ id: UInt16, _ outcome: AttemptOutcome) {
        guard case .waiting(let exchange)? = entries[id] else { return }
        entries[id] = .ended
        inFlight -= 1
        closeIfDrained()
        exchange.udpEnded(outcome)
    }

    /// An error on a shared connected socket (`ECONNREFUSED` is the ICMP port unreachable of
    /// a target with nothing listening) ends every attempt in flight on it as a socket error,
    /// and the socket is retired (closed, as nothing is left in flight). Each attempt is then
    /// sent once more on another socket before it counts as failed (`UpstreamExchange`): an
    /// ICMP message can be forged, and one forged message must not fail every query that
    /// shared the socket; a target that is really down refuses the second socket too.
    func failAll(_ why: String) {
        retired = true
        if failure == nil { failure = why }
        var waiting: [UInt16] = []
        for (id, entry) in entries { if case .waiting = entry { waiting.append(id) } }
        for id in waiting { end(id, .socketError(why)) }
        closeIfDrained()
    }

    /// The channel went away (closed by us, by NIO after a fatal error, or at shutdown).
    func channelInactive() {
        retired = true
        if inFlight > 0 { failAll("upstream socket closed") }
        close()
    }
}

/// Hands the datagrams and errors of one pooled socket to it.
final class PooledUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let socket: PooledUDPSocket

    init(socket: PooledUDPSocket) { self.socket = socket }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        socket.received(envelope.data, from: SocketEndpoint(envelope.remoteAddress))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        socket.failAll(describe(error))
    }

    func channelInactive(context: ChannelHandlerContext) {
        socket.channelInactive()
        context.fireChannelInactive()
    }
}

/// The deadlines of one loop's UDP attempts, without a NIO timer each: attempts of the
/// same length started one after another end in the order they started, so each length has a
/// first-in first-out queue, and one NIO timer waits for the earliest head. An attempt that
/// ends early is not removed (its entry no longer matches the exchange's attempt number and
/// is skipped when its time comes), so adding and ending an attempt cost O(1).
final class AttemptTimeouts {
    private struct Entry {
        var deadline: NIODeadline
        var exchange: UpstreamExchange
        var serial: UInt32
    }

    private let eventLoop: any EventLoop
    /// One queue per attempt length (in practice one or two).
    private var queues: [(duration: TimeAmount, entries: CircularBuffer<Entry>)] = []
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Entries waiting (ended attempts included, until their deadline).
    var count: Int { queues.reduce(0) { $0 + $1.entries.count } }

    /// `deadline` must be `now + duration`, with `now` not earlier than for the last entry of
    /// the same duration.
    func add(_ exchange: UpstreamExchange, serial: UInt32, duration: TimeAmount, deadline: NIODeadline) {
        let entry = Entry(deadline: deadline, exchange: exchange, serial: serial)
        if let i = queues.firstIndex(where: { $0.duration == duration }) {
            queues[i].entries.append(entry)
        } else {
            var q = CircularBuffer<Entry>(initialCapacity: 256)
            q.append(entry)
            queues.append((duration, q))
        }
        if timerDeadline.map({ deadline < $0 }) ?? true { schedule(deadline) }
    }

    private func schedule(_ deadline: NIODeadline) {
        timer?.cancel()
        timerDeadline = deadline
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in fire() }
    }

    private func fire() {
        timer = nil
        timerDeadline = nil
        let now = NIODeadline.now()
        var expired: [Entry] = []
        for i in queues.indices {
            while let head = queues[i].entries.first, head.deadline <= now {
                expired.append(queues[i].entries.removeFirst())
            }
        }
        // Told after the queues are settled: a timed-out attempt starts the next at once, which
        // adds to them.
        for e in expired { e.exchange.udpTimedOut(serial: e.serial) }
        queues.removeAll { $0.entries.isEmpty }
        // The earliest head, unless a timer that soon is already set (by an `add` above).
        if let next = queues.compactMap({ $0.entries.first?.deadline }).min(), timerDeadline.map({ next < $0 }) ?? true {
            schedule(next)
        }
    }
}

/// Random DNS IDs from the kernel's generator, read 256 bytes at a time (one `getentropy`
/// per 128 IDs instead of a system call per ID).
struct RandomBlock {
    private var bytes = [UInt8](repeating: 0, count: 256)
    private var next = 256

    mutating func nextID() -> UInt16 {
        if next + 2 > bytes.count { refill() }
        let id = UInt16(bytes[next]) << 8 | UInt16(bytes[next + 1])
        next += 2
        return id
    }

    /// A number in `0..<n` (n at most 65,536), from 16 random bits (multiply and shift: the
    /// bias is below n / 65,536 and needs no retry loop).
    mutating func below(_ n: Int) -> Int {
        Int((UInt32(nextID()) &* UInt32(n)) >> 16)
    }

    private mutating func refill() {
        let ok = bytes.withUnsafeMutableBytes { getentropy($0.baseAddress!, $0.count) == 0 }
        if !ok {
            var g = SystemRandomNumberGenerator()
            bytes.withUnsafeMutableBytes { raw in
                for i in 0..<raw.count / 8 { raw.storeBytes(of: g.next(), toByteOffset: i * 8, as: UInt64.self) }
            }
        }
        next = 0
    }
}
