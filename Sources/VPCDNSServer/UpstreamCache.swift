import DNSWire
import Synchronization
import VPCDNSCore

/// P5: upstream answers, positive and negative, per (name, type, class, target set, CD).
///
/// P7: every upstream query carries DO, so an entry holds the whole answer, DNSSEC records
/// included, and serves clients with and without DO alike (the engine leaves the DNSSEC
/// records out for the latter when it encodes the reply). The client's CD bit is passed
/// upstream and is part of the key, as it in effect is in Unbound: a validating upstream
/// answers a CD query with data it would refuse (SERVFAIL) without CD, so an answer fetched
/// with CD must never reach a client that relies on the upstream's validation. The price is
/// a second upstream query when CD and non-CD clients ask the same question.
///
/// Only what an upstream returned is stored: local (private) data never enters, so a cached
/// entry can be served to any VPC that forwards to the same targets (R14). The target set is
/// part of the key, so an answer fetched through one VPC's FORWARD rule is never served to a
/// VPC that forwards elsewhere. TTLs count down from the moment of storing; time is passed in
/// (nanoseconds of a monotonic clock) so the cache itself reads no clock.
public final class UpstreamCache: Sendable {
    public struct Key: Hashable, Sendable {
        public let name: DNSName
        public let type: RRType
        public let rrClass: RRClass
        public let targets: UpstreamTargets
        /// The CD bit the upstream was asked with (see the type's comment).
        public let checkingDisabled: Bool
        /// The name's hash, computed once: a key is hashed for `get` and again for `put`, and
        /// an unsuccessful probe compares it with several stored keys (Swift's dictionary
        /// keeps no hash per bucket), which this settles without comparing the names.
        private let nameHash: Int

        public init(name: DNSName, type: RRType, rrClass: RRClass, targets: UpstreamTargets, checkingDisabled: Bool = false) {
            self.name = name
            self.type = type
            self.rrClass = rrClass
            self.targets = targets
            self.checkingDisabled = checkingDisabled
            self.nameHash = name.hashValue
        }

        public static func == (a: Key, b: Key) -> Bool {
            a.nameHash == b.nameHash && a.type == b.type && a.rrClass == b.rrClass && a.checkingDisabled == b.checkingDisabled
                && a.name == b.name && a.targets == b.targets
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(nameHash)
            hasher.combine(type)
            hasher.combine(rrClass)
            hasher.combine(checkingDisabled)
            hasher.combine(targets)
        }
    }

    /// A cached upstream reply, its sections as records.
    public struct Entry: Sendable, Equatable {
        public var rcode: RCode
        public var answer: [ResourceRecord]
        public var authority: [ResourceRecord]
        public init(rcode: RCode, answer: [ResourceRecord], authority: [ResourceRecord]) {
            self.rcode = rcode
            self.answer = answer
            self.authority = authority
        }
    }

    struct Stored {
        var entry: Entry
        var storedAt: UInt64
        var expiresAt: UInt64
    }

    struct State {
        var entries: [Key: Stored] = [:]
        /// Insertion order for eviction: FIFO with lazy deletion (cheap, bounded, good enough
        /// for a forwarder; the hot names are re-inserted as they expire).
        var order: [Key] = []
        var orderHead = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0

        /// Room for `capacity` entries from the start (at most 2^20): filling the cache then
        /// never rehashes the whole table on the query path (each doubling moved every entry at
        /// once). The table's pages are touched only as entries arrive.
        init(reserving capacity: Int) {
            let n = min(max(0, capacity), 1 << 20)
            entries.reserveCapacity(n)
            order.reserveCapacity(n)
        }
    }

    public let capacity: Int
    /// Upper bound on any TTL kept (one day), as Unbound's cache-max-ttl does.
    public let maxTTL: UInt32
    private let state: Mutex<State>

    public init(capacity: Int, maxTTL: UInt32 = 86_400) {
        self.capacity = capacity
        self.maxTTL = maxTTL
        self.state = Mutex(State(reserving: capacity))
    }

    /// A hit: the entry with its TTLs counted down, and when it was stored and expires
    /// (monotonic nanoseconds), so a reply encoded from it can count its TTLs down the same way.
    public struct Hit: Sendable {
        public var entry: Entry
        public var storedAt: UInt64
        public var expiresAt: UInt64
    }

    /// The entry with TTLs decreased by the time it has spent in the cache; nil when absent or expired.
    public func get(_ key: Key, now: UInt64) -> Entry? { lookup(key, now: now)?.entry }

    /// Hits answered from a reply the engine encoded earlier from this cache's entry (it keeps
    /// the bytes per thread until the entry's expiry), counted here so the hit count is whole.
    private let replayedHits = Atomic<UInt64>(0)

    public func countReplayedHit() { replayedHits.add(1, ordering: .relaxed) }

    /// `get` with the entry's storage and expiry times.
    public func lookup(_ key: Key, now: UInt64) -> Hit? {
        guard capacity > 0 else { return nil }
        return state.withLock { s -> Hit? in
            guard let stored = s.entries[key] else { s.misses += 1; return nil }
            if now >= stored.expiresAt {
                // Left in place: the next `put` of this key overwrites it without queueing the
                // key for eviction a second time (a stale queue slot would evict the new entry).
                s.misses += 1
                return nil
            }
            s.hits += 1
            // `now` is when the query arrived; another loop may have stored this entry after
            // that (between the stamp and this lookup): then no time has passed for it.
            let elapsed = UInt32(clamping: (now > stored.storedAt ? now - stored.storedAt : 0) / 1_000_000_000)
            if elapsed == 0 { return Hit(entry: stored.entry, storedAt: stored.storedAt, expiresAt: stored.expiresAt) }
            var e = stored.entry
            func age(_ rrs: inout [ResourceRecord]) {
                for i in rrs.indices where rrs[i].type != .opt { rrs[i].ttl = rrs[i].ttl > elapsed ? rrs[i].ttl - elapsed : 0 }
            }
            age(&e.answer)
            age(&e.authority)
            return Hit(entry: e, storedAt: stored.storedAt, expiresAt: stored.expiresAt)
        }
    }

    /// Stores an upstream reply. NOERROR with answers: the smallest answer TTL; NXDOMAIN or
    /// NODATA: RFC 2308's min(SOA TTL, SOA MINIMUM) from the authority section, or not cached
    /// at all without an SOA. Other rcodes are never stored (P6 treats them as failures).
    public func put(_ key: Key, _ entry: Entry, now: UInt64) {
        guard capacity > 0, let ttl = UpstreamCache.cacheTTL(entry) else { return }
        let life = UInt64(min(ttl, maxTTL)) * 1_000_000_000
        guard life > 0 else { return }
        var e = entry
        // Every record, not only when the smallest TTL is over the bound: an answer or SOA
        // record beside it could still carry more than a day.
        for i in e.answer.indices where e.answer[i].ttl > maxTTL { e.answer[i].ttl = maxTTL }
        for i in e.authority.indices where e.authority[i].type != .opt && e.authority[i].ttl > maxTTL { e.authority[i].ttl = maxTTL }
        state.withLock { s in
            if s.entries.updateValue(Stored(entry: e, storedAt: now, expiresAt: now + life), forKey: key) == nil {
                s.order.append(key)
            }
            while s.entries.count > capacity, s.orderHead < s.order.count {
                let victim = s.order[s.orderHead]
                s.orderHead += 1
                s.entries[victim] = nil
            }
            // Compact the eviction queue once its dead prefix dominates.
            if s.orderHead > 1024 && s.orderHead * 2 > s.order.count {
                s.order.removeFirst(s.orderHead)
                s.orderHead = 0
                s.order.removeAll { s.entries[$0] == nil }
            }
        }
    }

    static func cacheTTL(_ e: Entry) -> UInt32? {
        switch e.rcode {
        case .noError where !e.answer.isEmpty:
            return e.answer.map(\.ttl).min()
        case .noError, .nxDomain:
            guard let soa = e.authority.first(where: { $0.type == .soa }) else { return nil }
            return min(soa.ttl, soa.soaMinimum ?? soa.ttl)
        default:
            return nil
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
    public var stats: (hits: UInt64, misses: UInt64, entries: Int) {
        let replayed = replayedHits.load(ordering: .relaxed)
        return state.withLock { ($0.hits + replayed, $0.misses, $0.entries.count) }
    }

    /// Drops everything (used when the upstream configuration changes on reload).
    public func removeAll() {
        state.withLock { s in
            // The hit and miss totals are Prometheus counters: they never go back.
            let (hits, misses) = (s.hits, s.misses)
            s = State(reserving: capacity)
            s.hits = hits
            s.misses = misses
        }
    }
}
