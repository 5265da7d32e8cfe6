import Foundation
import Testing
@testable import VPCDNSConsole

/// The console's feed on its own: the ring keeps the last 10,000 records, a subscriber that
/// does not read loses records (counted), never holding up the tap or the other subscribers.
@Suite("Console feed: ring and per-subscriber queues")
struct ConsoleFeedTests {
    static func line(_ i: Int, vpc: String = "vpc-0a1", rcode: String = "NOERROR") -> String {
        #"{"version":"1.100000","vpc_id":"\#(vpc)","query_name":"n\#(i).example.com.","query_type":"A","rcode":"\#(rcode)","srcaddr":"127.0.0.1","vpcdns":{"decision":"upstream","received_at":"2026-12-06T06:00:00.000001Z","latency_us":\#(i)}}"#
    }

    static func feed(_ feed: ConsoleFeed, _ lines: [String]) {
        var bytes = Array(lines.joined(separator: "\n").utf8) + [10]
        bytes.withUnsafeMutableBufferPointer { feed.take(UnsafeBufferPointer($0)) }
    }

    @Test("the ring keeps the newest 10,000, newest first")
    func ring() {
        let f = ConsoleFeed()
        for chunk in stride(from: 0, to: 12_000, by: 1_000) {
            ConsoleFeedTests.feed(f, (chunk..<(chunk + 1_000)).map { ConsoleFeedTests.line($0) })
            f.drain()
        }
        let all = f.recent(RecordFilter([:]), limit: 20_000)
        #expect(all.count == ConsoleFeed.ringCapacity)
        #expect(all.first?.name == "n11999.example.com.")
        #expect(all.last?.name == "n2000.example.com.")
        #expect(f.counts.total == 12_000)
    }

    @Test("a subscriber that does not read loses the oldest, counted; a reading one gets everything")
    func slowSubscriber() async {
        let f = ConsoleFeed()
        // The slow one's stream is kept but never read (a dropped stream ends its subscription).
        guard let (slow, slowEvents) = f.subscribe(RecordFilter([:])), let (fast, fastEvents) = f.subscribe(RecordFilter(["rcode": "servfail"])) else {
            Issue.record("no subscription")
            return
        }
        let extra = 500
        ConsoleFeedTests.feed(f, (0..<(ConsoleFeed.subscriberQueue + extra)).map { ConsoleFeedTests.line($0, rcode: $0 % 100 == 0 ? "SERVFAIL" : "NOERROR") })
        #expect(f.drain() == ConsoleFeed.subscriberQueue + extra)
        #expect(slow.skipped.load(ordering: .relaxed) == extra)
        #expect(fast.skipped.load(ordering: .relaxed) == 0)
        f.closeAll()  // the stream ends after what it holds: the loop below is bounded
        var got = 0
        for await e in fastEvents {
            if case .record = e { got += 1 }
        }
        #expect(got == 15)
        withExtendedLifetime(slowEvents) {}
    }

    @Test("at most maxSubscribers live streams; closeAll ends them and refuses new ones")
    func bounded() async {
        let f = ConsoleFeed()
        var subs: [(ConsoleFeed.Subscriber, AsyncStream<ConsoleFeed.Event>)] = []
        for _ in 0..<ConsoleFeed.maxSubscribers {
            if let s = f.subscribe(RecordFilter([:])) { subs.append(s) }
        }
        #expect(subs.count == ConsoleFeed.maxSubscribers)
        #expect(f.subscribe(RecordFilter([:])) == nil)
        f.closeAll()
        for await _ in subs[0].1 {}
        #expect(f.subscribe(RecordFilter([:])) == nil)
    }

    @Test("name patterns: part of the name, or * globs, case-insensitive")
    func names() {
        #expect(RecordFilter.nameMatches("myservice", "www.myservice.internal."))
        #expect(RecordFilter.nameMatches("*.internal", "www.myservice.internal."))
        #expect(!RecordFilter.nameMatches("*.internal", "www.example.com."))
        #expect(RecordFilter.nameMatches("www.*.internal", "www.myservice.internal."))
        #expect(RecordFilter.nameMatches("www.myservice.internal", "www.myservice.internal."))
        #expect(ConsoleRecord.seconds("2026-12-06T06:00:01.500000Z") == 1_796_536_801.5)
    }
}
