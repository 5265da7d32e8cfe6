import DNSWire
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// P7 in the cache: one entry holds the signed answer for every asker; CD keys its own entry.
@Suite("P7 upstream cache: DNSSEC records and CD")
struct UpstreamCacheDNSSECTests {
    let sec: UInt64 = 1_000_000_000
    func key(cd: Bool) -> UpstreamCache.Key {
        UpstreamCache.Key(name: try! DNSName("www.example.net"), type: .a, rrClass: .in, targets: .defaults, checkingDisabled: cd)
    }
    let answer = [
        ResourceRecord(name: try! DNSName("www.example.net"), type: .a, ttl: 60, rdata: [192, 0, 2, 1]),
        ResourceRecord(name: try! DNSName("www.example.net"), type: .rrsig, ttl: 60, rdata: [0, 1, 13, 3] + Array(repeating: 9, count: 30)),
    ]

    @Test("the RRSIGs are kept in the entry and count down with the data")
    func signaturesKept() {
        let c = UpstreamCache(capacity: 10)
        c.put(key(cd: false), .init(rcode: .noError, answer: answer, authority: []), now: 100 * sec)
        let hit = c.get(key(cd: false), now: 110 * sec)
        #expect(hit?.answer.map(\.type) == [.a, .rrsig])
        #expect(hit?.answer.map(\.ttl) == [50, 50])
        #expect(c.count == 1)
    }

    @Test("an answer fetched with CD is a separate entry: never a hit for an asker without CD, nor the other way round")
    func cdKeyed() {
        let c = UpstreamCache(capacity: 10)
        c.put(key(cd: true), .init(rcode: .noError, answer: answer, authority: []), now: 100 * sec)
        #expect(c.get(key(cd: false), now: 100 * sec) == nil)
        #expect(c.get(key(cd: true), now: 100 * sec) != nil)
        c.put(key(cd: false), .init(rcode: .noError, answer: Array(answer.prefix(1)), authority: []), now: 100 * sec)
        #expect(c.count == 2)
        #expect(c.get(key(cd: false), now: 100 * sec)?.answer.count == 1)
        #expect(c.get(key(cd: true), now: 100 * sec)?.answer.count == 2)
        #expect(key(cd: true) != key(cd: false))
    }
}
