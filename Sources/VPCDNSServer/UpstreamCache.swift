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
///
/// Bounded twice (config.md `cache_size`, `cache_max_bytes`): by entries, and by the memory the
/// entries hold, each charged its real size (`charge`). A 44-byte query can bring a 64 KB
/// answer over TCP, so an entry bound alone let 100,000 entries hold about 10 GB.
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
        /// What this entry counts against `maxBytes` (`charge`).
        var charge: Int
    }

    struct State {
        var entries: [Key: Stored] = [:]
        /// Insertion order for eviction: FIFO with lazy deletion (cheap, bounded, good enough
        /// for a forwarder; the hot names are re-inserted as they expire).
        var order: [Key] = []
        var orderHead = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
        /// Sum of the stored entries' charges.
        var bytes = 0

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
    /// The bound on the charged size of all entries (`cache_max_bytes`).
    public let maxBytes: Int
    /// Upper bound on any TTL kept (one day), as Unbound's cache-max-ttl does.
    public let maxTTL: UInt32
    private let state: Mutex<State>

    /// 64 MiB, as Unbound's default msg-cache-size.
    public static let defaultMaxBytes = 67_108_864

    public init(capacity: Int, maxBytes: Int = UpstreamCache.defaultMaxBytes, maxTTL: UInt32 = 86_400) {
        self.capacity = capacity
        self.maxBytes = maxBytes
        self.maxTTL = maxTTL
        self.state = Mutex(State(reserving: capacity))
    }

    /// Estimated heap bytes of an entry besides its names and rdata: its dictionary slot (key
    /// and `Stored`, at the table's load factor), its eviction-queue slot, the key name's and
    /// the two record arrays' allocation headers.
    static let entryOverhead = 384
    /// Estimated bytes of one record besides its name and rdata bytes: its array slot and the
    /// allocation headers (and malloc rounding) of its name and rdata arrays.
    static let recordOverhead = 128

    /// What an entry is charged: the bytes of its key name and of every record's owner name and
    /// rdata, plus the fixed overheads above. Estimated on the high side, so that the bound
    /// holds for resident memory, not only for the DNS bytes.
    static func charge(_ key: Key, _ e: Entry) -> Int {
        var n = entryOverhead + key.name.wire.count
        for r in e.answer { n += recordOverhead + r.name.wire.count + r.rdata.count }
        for r in e.authority { n += recordOverhead + r.name.wire.count + r.rdata.count }
        return n
    }

    /// RFC 2181 §8: a TTL with the most significant bit set counts as 0; none above `max`.
    public static func ttl(_ t: UInt32, max: UInt32) -> UInt32 {
        t & 0x8000_0000 != 0 ? 0 : Swift.min(t, max)
    }

    /// `entry` with every TTL per RFC 2181 §8 and capped at `maxTTL` (OPT excluded: its TTL
    /// field holds flags). Applied to what is stored and to what a cache miss sends the
    /// client, so both see the same TTLs (P11).
    public func normalized(_ entry: Entry) -> Entry {
        var e = entry
        for i in e.answer.indices where e.answer[i].type != .opt { e.answer[i].ttl = Self.ttl(e.answer[i].ttl, max: maxTTL) }
        for i in e.authority.indices where e.authority[i].type != .opt { e.authority[i].ttl = Self.ttl(e.authority[i].ttl, max: maxTTL) }
        return e
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
        guard capacity > 0, maxBytes > 0 else { return }
        // Every record, not only when the smallest TTL is over the bound: an answer or SOA
        // record beside it could still carry more than a day (or the high bit).
        let e = normalized(entry)
        guard let ttl = UpstreamCache.cacheTTL(e) else { return }
        let life = UInt64(min(ttl, maxTTL)) * 1_000_000_000
        guard life > 0 else { return }
        let charge = UpstreamCache.charge(key, e)
        // An answer bigger than the whole bound would only empty the cache for itself.
        guard charge <= maxBytes else { return }
        state.withLock { s in
            if let old = s.entries.updateValue(Stored(entry: e, storedAt: now, expiresAt: now + life, charge: charge), forKey: key) {
                s.bytes -= old.charge
            } else {
                s.order.append(key)
            }
            s.bytes += charge
            // The same first-in-first-out eviction for both bounds.
            while s.entries.count > capacity || s.bytes > maxBytes, s.orderHead < s.order.count {
                let victim = s.order[s.orderHead]
                s.orderHead += 1
                if let gone = s.entries.removeValue(forKey: victim) { s.bytes -= gone.charge }
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
            // SOA MINIMUM is a TTL too (RFC 2308 §4): the high bit makes it 0 (RFC 2181 §8).
            return min(soa.ttl, soa.soaMinimum.map { ttl($0, max: .max) } ?? soa.ttl)
        default:
            return nil
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
    /// The charged size of every entry held (`vpcdns_cache_bytes`), at most `maxBytes`.
    public var bytes: Int { state.withLock { $0.bytes } }
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
