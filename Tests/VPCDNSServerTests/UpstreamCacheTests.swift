import DNSWire
import Testing
import VPCDNSCore
@testable import VPCDNSServer

@Suite("P5 upstream cache")
struct UpstreamCacheTests {
    let sec: UInt64 = 1_000_000_000
    func key(_ name: String, _ targets: UpstreamTargets = .defaults) -> UpstreamCache.Key {
        UpstreamCache.Key(name: try! DNSName(name), type: .a, rrClass: .in, targets: targets)
    }
    func a(_ name: String, ttl: UInt32) -> ResourceRecord {
        ResourceRecord(name: try! DNSName(name), type: .a, ttl: ttl, rdata: [192, 0, 2, 1])
    }
    func soa(ttl: UInt32, minimum: UInt32) -> ResourceRecord {
        ResourceRecord(name: try! DNSName("example.net"), type: .soa, ttl: ttl,
                       rdata: (try! DNSName("ns.example.net")).wire + (try! DNSName("h.example.net")).wire + [0,0,0,1, 0,0,0,1, 0,0,0,1, 0,0,0,1]
                       + [UInt8(minimum >> 24), UInt8(minimum >> 16 & 0xff), UInt8(minimum >> 8 & 0xff), UInt8(minimum & 0xff)])
    }

    @Test("TTLs count down and entries expire")
    func countdown() {
        let c = UpstreamCache(capacity: 10)
        c.put(key("www.example.net"), .init(rcode: .noError, answer: [a("www.example.net", ttl: 60)], authority: []), now: 100 * sec)
        #expect(c.get(key("www.example.net"), now: 100 * sec)?.answer.first?.ttl == 60)
        #expect(c.get(key("www.example.net"), now: 130 * sec)?.answer.first?.ttl == 30)
        #expect(c.get(key("www.example.net"), now: 160 * sec) == nil)
    }

    @Test("a query that arrived before another event loop stored the entry gets it whole (no underflow trap)")
    func arrivedBeforeStored() {
        let c = UpstreamCache(capacity: 10)
        // Stored at 100.5 s by one loop; a query stamped at 100.4 s on another loop looks it up after.
        c.put(key("www.example.net"), .init(rcode: .noError, answer: [a("www.example.net", ttl: 60)], authority: []), now: 100 * sec + sec / 2)
        let hit = c.lookup(key("www.example.net"), now: 100 * sec + sec * 4 / 10)
        #expect(hit?.entry.answer.first?.ttl == 60)
        #expect(hit?.storedAt == 100 * sec + sec / 2)
    }

    @Test("every stored TTL is capped at a day; emptying the cache keeps the hit and miss totals")
    func capAndTotals() {
        let c = UpstreamCache(capacity: 10)
        // The smallest TTL (60) is under the cap, the other answer is not.
        c.put(key("www.example.net"), .init(rcode: .noError, answer: [a("www.example.net", ttl: 60), a("www.example.net", ttl: 900_000)], authority: []), now: 0)
        #expect(c.get(key("www.example.net"), now: 0)?.answer.map(\.ttl) == [60, 86_400])
        #expect(c.get(key("nope.example.net"), now: 0) == nil)
        #expect(c.stats.hits == 1 && c.stats.misses == 1)
        c.removeAll()
        #expect(c.count == 0)
        #expect(c.stats.hits == 1 && c.stats.misses == 1, "counters do not go back")
    }

    @Test("the target set is part of the key")
    func keyedByTargets() {
        let c = UpstreamCache(capacity: 10)
        let rule = UpstreamTargets.rule(id: "rslvr-rr-1", targets: [SocketEndpoint("127.0.0.1:5300")!])
        c.put(key("www.corp.example.com", rule), .init(rcode: .noError, answer: [a("www.corp.example.com", ttl: 60)], authority: []), now: 0)
        #expect(c.get(key("www.corp.example.com", rule), now: 0) != nil)
        #expect(c.get(key("www.corp.example.com"), now: 0) == nil)
    }

    @Test("negative answers use RFC 2308's TTL; without an SOA they are not cached; SERVFAIL never")
    func negative() {
        let c = UpstreamCache(capacity: 10)
        c.put(key("nx.example.net"), .init(rcode: .nxDomain, answer: [], authority: [soa(ttl: 3600, minimum: 30)]), now: 0)
        #expect(c.get(key("nx.example.net"), now: 29 * sec)?.rcode == .nxDomain)
        #expect(c.get(key("nx.example.net"), now: 31 * sec) == nil)
        c.put(key("nosoa.example.net"), .init(rcode: .nxDomain, answer: [], authority: []), now: 0)
        #expect(c.get(key("nosoa.example.net"), now: 0) == nil)
        c.put(key("sf.example.net"), .init(rcode: .servFail, answer: [], authority: [soa(ttl: 60, minimum: 60)]), now: 0)
        #expect(c.get(key("sf.example.net"), now: 0) == nil)
    }

    @Test("bounded by cache_size; 0 turns it off")
    func bounded() {
        let c = UpstreamCache(capacity: 100)
        for i in 0..<5000 {
            c.put(key("n\(i).example.net"), .init(rcode: .noError, answer: [a("n\(i).example.net", ttl: 60)], authority: []), now: 0)
        }
        #expect(c.count == 100)
        #expect(c.get(key("n4999.example.net"), now: 0) != nil)
        #expect(c.get(key("n0.example.net"), now: 0) == nil)
        let off = UpstreamCache(capacity: 0)
        off.put(key("a.example.net"), .init(rcode: .noError, answer: [a("a.example.net", ttl: 60)], authority: []), now: 0)
        #expect(off.get(key("a.example.net"), now: 0) == nil)
    }

    func txt(_ name: String, bytes: Int) -> ResourceRecord {
        ResourceRecord(name: try! DNSName(name), type: RRType(16), ttl: 300, rdata: [UInt8](repeating: 0x61, count: bytes))
    }

    @Test("bounded by cache_max_bytes: big answers are charged their size and evicted first in, first out")
    func boundedByBytes() {
        let c = UpstreamCache(capacity: 100_000, maxBytes: 1_000_000)
        for i in 0..<100 {
            // About 60 KB each: 230 records of 256 bytes.
            let records = (0..<230).map { _ in txt("n\(i).example.net", bytes: 256) }
            c.put(key("n\(i).example.net"), .init(rcode: .noError, answer: records, authority: []), now: 0)
            #expect(c.bytes <= 1_000_000)
        }
        #expect(c.count > 5 && c.count < 20, "\(c.count) entries of ~90 KB charged within 1 MB")
        #expect(c.get(key("n99.example.net"), now: 0) != nil)
        #expect(c.get(key("n0.example.net"), now: 0) == nil)
        let one = UpstreamCache.charge(key("n1.example.net"), .init(rcode: .noError, answer: (0..<230).map { _ in txt("n1.example.net", bytes: 256) }, authority: []))
        #expect(one > 230 * (256 + 16))
        // Small answers are charged little: many fit.
        let small = UpstreamCache(capacity: 100_000, maxBytes: 1_000_000)
        for i in 0..<1000 { small.put(key("s\(i).example.net"), .init(rcode: .noError, answer: [a("s\(i).example.net", ttl: 60)], authority: []), now: 0) }
        #expect(small.count == 1000)
        // An overwrite is charged once; emptying gives every byte back.
        small.put(key("s1.example.net"), .init(rcode: .noError, answer: [a("s1.example.net", ttl: 60)], authority: []), now: 0)
        let charged = (0..<1000).reduce(0) { n, i in
            n + UpstreamCache.charge(key("s\(i).example.net"), .init(rcode: .noError, answer: [a("s\(i).example.net", ttl: 60)], authority: []))
        }
        #expect(small.bytes == charged)
        small.removeAll()
        #expect(small.bytes == 0)
        // Larger than the whole bound: not stored, nothing evicted for it.
        let tiny = UpstreamCache(capacity: 10, maxBytes: 10_000)
        tiny.put(key("a.example.net"), .init(rcode: .noError, answer: [a("a.example.net", ttl: 60)], authority: []), now: 0)
        tiny.put(key("big.example.net"), .init(rcode: .noError, answer: (0..<100).map { _ in txt("big.example.net", bytes: 256) }, authority: []), now: 0)
        #expect(tiny.count == 1 && tiny.get(key("a.example.net"), now: 0) != nil)
    }

    @Test("RFC 2181 §8: a TTL with the high bit set counts as 0 (not cached), 2^31-1 is capped at a day")
    func highBitTTL() {
        let c = UpstreamCache(capacity: 10)
        #expect(UpstreamCache.ttl(0xFFFF_FFFF, max: 86_400) == 0)
        #expect(UpstreamCache.ttl(0x8000_0000, max: 86_400) == 0)
        #expect(UpstreamCache.ttl(0x7FFF_FFFF, max: 86_400) == 86_400)
        #expect(UpstreamCache.ttl(300, max: 86_400) == 300)
        let high = UpstreamCache.Entry(rcode: .noError, answer: [a("h.example.net", ttl: 0xFFFF_FFFF)], authority: [])
        #expect(c.normalized(high).answer.map(\.ttl) == [0])
        c.put(key("h.example.net"), high, now: 0)
        #expect(c.get(key("h.example.net"), now: 0) == nil)
        c.put(key("b.example.net"), .init(rcode: .noError, answer: [a("b.example.net", ttl: 0x7FFF_FFFF)], authority: []), now: 0)
        #expect(c.get(key("b.example.net"), now: 0)?.answer.map(\.ttl) == [86_400])
        // A negative answer whose SOA MINIMUM has the high bit: its TTL is 0, not cached.
        c.put(key("nx.example.net"), .init(rcode: .nxDomain, answer: [], authority: [soa(ttl: 3600, minimum: 0xFFFF_FFF0)]), now: 0)
        #expect(c.get(key("nx.example.net"), now: 0) == nil)
    }
}
