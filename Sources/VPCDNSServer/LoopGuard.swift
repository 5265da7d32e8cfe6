import DNSWire
import Logging
import NIOCore
import Synchronization
import VPCDNSCore

/// O6 at run time: a loop through another resolver that forwards back to us.
///
/// **Noticing.** A question already pending upstream that arrives again from the address of
/// one of its targets is the mark of such a loop (the other resolver is asking us what we
/// asked it), but it is also what a client on the upstream's host retrying a query looks
/// like. So it only raises a suspicion: the target is sent a **probe**, a query for a unique
/// random name (`LoopProbe`), at most one per target at a time and one per `minimumProbeGap`.
/// If the probe's name arrives at our own listeners, the target loops: it is left out, the
/// exchanges in flight that have no other target end with SERVFAIL `forwarding-loop`, the
/// event is reported on standard error and counted. A probe name is never forwarded.
///
/// **Clearing.** A looping target is probed again every `reprobeInterval`; a probe that ends
/// (answered, failed or timed out) without its name having come back clears it.
///
/// No probe is sent at start: a loop that does not exist yet (the other resolver starts
/// later, or is reconfigured) would not be seen then, and every upstream would pay a query at
/// each start; the first looping question is enough to find it. Random tokens come from the
/// caller-supplied generator (tests can fix them); the core only names them.
public final class LoopGuard: Sendable {
    struct Probe {
        var target: SocketEndpoint
        var sentAt: NIODeadline
        var returned = false
        var ended = false
    }

    struct State {
        var looping: Set<SocketEndpoint> = []
        var probes: [UInt64: Probe] = [:]
        var lastProbe: [SocketEndpoint: NIODeadline] = [:]
    }

    private let state = Mutex(State())
    /// True while some target loops: the query path reads only this when none does.
    private let anyLooping = Atomic<Bool>(false)
    private let loopsCounter = Atomic<UInt64>(0)
    private let probesSent = Atomic<UInt64>(0)
    let logger: Logger
    let minimumProbeGap: TimeAmount
    let reprobeInterval: TimeAmount
    let token: @Sendable () -> UInt64

    public init(logger: Logger = Logger(label: "vpcdns.loop-guard"), minimumProbeGap: TimeAmount = .seconds(1),
                reprobeInterval: TimeAmount = .seconds(10), token: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...UInt64.max) }) {
        self.logger = logger
        self.minimumProbeGap = minimumProbeGap
        self.reprobeInterval = reprobeInterval
        self.token = token
    }

    /// `targets` without those found looping, in order.
    func usable(_ targets: [SocketEndpoint]) -> [SocketEndpoint] {
        guard anyLooping.load(ordering: .relaxed) else { return targets }
        let looping = state.withLock { $0.looping }
        return targets.filter { !looping.contains($0) }
    }

    /// Targets currently left out because they loop.
    public var looping: Set<SocketEndpoint> { state.withLock { $0.looping } }
    /// Queries answered SERVFAIL `forwarding-loop` (`vpcdns_forwarding_loops_total`).
    public var loopsAnswered: UInt64 { loopsCounter.load(ordering: .relaxed) }
    public var probes: UInt64 { probesSent.load(ordering: .relaxed) }

    func countLoopAnswer() { loopsCounter.add(1, ordering: .relaxed) }

    /// A query for `name` that is pending upstream to `targets` came from `client`: probe the
    /// target at that address.
    func suspect(client: IPAddress, targets: [SocketEndpoint], upstream: UpstreamClient, on loop: any EventLoop) {
        for t in targets where t.ip == client {
            probe(t, upstream: upstream, on: loop)
        }
    }

    /// Sends `target` a probe unless one is in flight or was sent within `minimumProbeGap`.
    func probe(_ target: SocketEndpoint, upstream: UpstreamClient, on loop: any EventLoop, force: Bool = false) {
        let now = NIODeadline.now()
        let tok = token()
        let send: Bool = state.withLock { s in
            if !force, let last = s.lastProbe[target], now - last < minimumProbeGap { return false }
            if !force, s.probes.values.contains(where: { $0.target == target && !$0.ended }) { return false }
            // Old probes are forgotten after a minute (a copy that comes back later still
            // counts within that time).
            s.probes = s.probes.filter { now - $0.value.sentAt < .seconds(60) }
            s.probes[tok] = Probe(target: target, sentAt: now)
            s.lastProbe[target] = now
            return true
        }
        guard send else { return }
        probesSent.add(1, ordering: .relaxed)
        let name = LoopProbe.name(token: tok)
        var builder = MessageBuilder()
        builder.buildQuery(id: UInt16(truncatingIfNeeded: tok), question: DNSQuestion(name: name, type: LoopProbe.type, qclass: .in),
                           recursionDesired: true, checkingDisabled: false, edns: true)
        let text = "loop probe \(name) sent to \(target)"
        logger.debug("\(text)")
        upstream.start(ByteBuffer(bytes: builder.bytes), targets: [target], on: loop) { [self] _ in
            probeEnded(tok, upstream: upstream, on: loop)
        }
    }

    private func probeEnded(_ tok: UInt64, upstream: UpstreamClient, on loop: any EventLoop) {
        // Plain variables set under the lock (not a tuple returned through `withLock`).
        var target: SocketEndpoint? = nil
        var cleared = false
        var stillLooping = false
        state.withLock { s in
            guard var p = s.probes[tok] else { return }
            p.ended = true
            s.probes[tok] = p
            target = p.target
            if p.returned {
                stillLooping = true
            } else {
                cleared = s.looping.remove(p.target) != nil
                anyLooping.store(!s.looping.isEmpty, ordering: .relaxed)
            }
        }
        guard let target else { return }
        if cleared {
            let message = "upstream \(target) no longer forwards back to vpcdns: used again (O6)"
            logger.notice("\(message)")
        }
        if stillLooping {
            loop.scheduleTask(in: reprobeInterval) { [self] in
                probe(target, upstream: upstream, on: loop, force: true)
            }
        }
    }

    /// A query for a probe name arrived at our listeners from `client`. When it is one of our
    /// probes, its target loops: returns the looping set (to end exchanges in flight), after
    /// reporting it. Nil for a name we did not send (still never forwarded).
    func probeArrived(_ name: DNSName, from client: SocketEndpoint) -> Set<SocketEndpoint>? {
        guard let tok = LoopProbe.token(in: name) else { return nil }
        var target: SocketEndpoint? = nil
        var isNew = false
        var looping: Set<SocketEndpoint> = []
        state.withLock { s in
            guard var p = s.probes[tok] else { return }
            p.returned = true
            s.probes[tok] = p
            isNew = s.looping.insert(p.target).inserted
            anyLooping.store(true, ordering: .relaxed)
            target = p.target
            looping = s.looping
        }
        guard let target else { return nil }
        if isNew {
            let message = "forwarding loop: upstream \(target) sends our queries back to vpcdns (the probe \(name) came back from \(client)); "
                + "it is left out until a later probe clears it (O6)"
            logger.error("\(message)")
        }
        return looping
    }
}
