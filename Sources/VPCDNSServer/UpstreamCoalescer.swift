import DNSWire
import NIOCore
import Synchronization
import VPCDNSCore

/// What identical upstream queries share (P5, O6): the question (name already lower case,
/// type, class), the header and EDNS bits that change the upstream's answer, and the target
/// set. Two client queries with the same key get the same upstream data; each still gets a
/// reply of its own (its ID, its letter case, P3) and a query-log line of its own.
struct CoalescingKey: Hashable, Sendable {
    var name: DNSName
    var type: RRType
    var rrClass: RRClass
    /// The client's CD bit goes upstream (P7) and changes what a validating upstream answers.
    /// DO is not part of the key: every upstream query sets it, and each asker's reply is
    /// filtered for its own DO bit.
    var checkingDisabled: Bool
    var targets: UpstreamTargets
    /// The model snapshot's generation: after a reload `.defaults` may name other addresses,
    /// so a query of the new model never joins an exchange of the old one.
    var generation: UInt64 = 0
}

/// How a coalesced upstream exchange ended for its waiters.
enum CoalescedOutcome: Sendable {
    case upstream(UpstreamResult)
    /// O6: every target of the exchange was found to forward back to us.
    case forwardingLoop
}

/// Request coalescing: identical queries in flight at once share one upstream exchange, as
/// Unbound and dnsmasq do. A burst of one name costs one exchange, and a loop through another
/// resolver that forwards the same question back to us joins the exchange already waiting
/// instead of starting another (which is how the loop is noticed: see `LoopGuard`).
///
/// The table is shared by every event loop (one lock, held for a dictionary probe); each
/// waiter is called back on its own event loop.
final class UpstreamCoalescer: Sendable {
    typealias Completion = @Sendable (CoalescedOutcome) -> Void

    final class Flight: @unchecked Sendable {
        // Guarded by the coalescer's lock.
        var waiters: [(loop: any EventLoop, completion: Completion)]
        let targets: [SocketEndpoint]
        init(targets: [SocketEndpoint], first: (any EventLoop, Completion)) {
            self.targets = targets
            waiters = [first]
        }
    }

    enum Join {
        /// The first of its kind: the caller starts the exchange and hands its end to `finish`.
        case lead(Flight)
        /// Added to an exchange in flight (which went to `targets`).
        case joined(targets: [SocketEndpoint])
    }

    private let flights = Mutex<[CoalescingKey: Flight]>([:])
    /// Queries that joined an exchange in flight (`vpcdns_upstream_coalesced_total`).
    private let joinedCount = Atomic<UInt64>(0)

    /// Registers a waiter for `key`.
    func join(_ key: CoalescingKey, targets: [SocketEndpoint], on loop: any EventLoop, completion: @escaping Completion) -> Join {
        let join: Join = flights.withLock { table in
            if let f = table[key] {
                f.waiters.append((loop, completion))
                return .joined(targets: f.targets)
            }
            let f = Flight(targets: targets, first: (loop, completion))
            table[key] = f
            return .lead(f)
        }
        if case .joined = join { joinedCount.add(1, ordering: .relaxed) }
        return join
    }

    /// The exchange of `flight` ended: every waiter gets the outcome. Nothing when the flight
    /// was already ended (`failLooping`).
    func finish(_ key: CoalescingKey, _ flight: Flight, _ outcome: CoalescedOutcome) {
        let waiters: [(loop: any EventLoop, completion: Completion)]? = flights.withLock { table in
            guard let f = table[key], f === flight else { return nil }
            table[key] = nil
            let w = f.waiters
            f.waiters = []
            return w
        }
        for w in waiters ?? [] { Self.call(w, outcome) }
    }

    /// Ends, with `.forwardingLoop`, every exchange in flight whose targets all loop.
    func failLooping(_ looping: Set<SocketEndpoint>) {
        let ended: [(loop: any EventLoop, completion: Completion)] = flights.withLock { table in
            var out: [(loop: any EventLoop, completion: Completion)] = []
            var ended: [CoalescingKey] = []
            for (k, f) in table {
                var allLoop = true
                for t in f.targets where !looping.contains(t) { allLoop = false }
                if allLoop { ended.append(k) }
            }
            for k in ended {
                guard let f = table.removeValue(forKey: k) else { continue }
                out += f.waiters
                f.waiters = []
            }
            return out
        }
        for w in ended { Self.call(w, .forwardingLoop) }
    }

    /// True when an exchange for this question (either CD bit) to `targets` is in flight.
    func isPending(_ key: CoalescingKey) -> Bool {
        var other = key
        other.checkingDisabled.toggle()
        return flights.withLock { $0[key] != nil || $0[other] != nil }
    }

    var inFlight: Int { flights.withLock { $0.count } }
    var joined: UInt64 { joinedCount.load(ordering: .relaxed) }

    private static func call(_ w: (loop: any EventLoop, completion: Completion), _ outcome: CoalescedOutcome) {
        if w.loop.inEventLoop {
            w.completion(outcome)
        } else {
            w.loop.execute { w.completion(outcome) }
        }
    }
}
