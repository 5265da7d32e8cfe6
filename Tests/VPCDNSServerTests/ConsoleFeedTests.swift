import Foundation
import Testing
import NIOCore
@testable import VPCDNSConsole

/// The console's feed on its own: the ring keeps the last 10,000 records, a subscriber that
/// does not read loses records (counted), never holding up the tap or the other subscribers.
@Suite("Console feed: ring and per-subscriber queues", .serialized)
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

    /// Reads what `events` holds until it ends (the feed was closed): lines per batch.
    static func batches(_ events: AsyncStream<ConsoleFeed.Event>, _ sub: ConsoleFeed.Subscriber) async -> [[String]] {
        var out: [[String]] = []
        for await e in events {
            guard case .batch(let b) = e else { continue }
            var lines: [String] = []
            b.forEachLine { lines.append(String(decoding: $0, as: UTF8.self)) }
            out.append(lines)
            sub.delivered(b.count)
        }
        return out
    }

    @Test("one batch per drain per subscriber, filtered; a subscriber that does not read loses what does not fit, counted")
    func slowSubscriber() async {
        let f = ConsoleFeed()
        // The slow one's stream is kept but never read (a dropped stream ends its subscription).
        guard let (slow, slowEvents) = f.subscribe(RecordFilter([:])), let (fast, fastEvents) = f.subscribe(RecordFilter(["rcode": "servfail"])) else {
            Issue.record("no subscription")
            return
        }
        let extra = 500
        let n = ConsoleFeed.subscriberQueue + extra
        ConsoleFeedTests.feed(f, (0..<n).map { ConsoleFeedTests.line($0, rcode: $0 % 100 == 0 ? "SERVFAIL" : "NOERROR") })
        #expect(f.drain() == n)
        // The unfiltered queue held subscriberQueue records: the oldest `extra` of the batch went.
        #expect(slow.skipped.load(ordering: .relaxed) == extra)
        #expect(slow.queued.load(ordering: .relaxed) == ConsoleFeed.subscriberQueue)
        #expect(fast.skipped.load(ordering: .relaxed) == 0)
        // A second drain finds the slow queue full: all of it is skipped.
        ConsoleFeedTests.feed(f, (0..<10).map { ConsoleFeedTests.line($0) })
        #expect(f.drain() == 10)
        #expect(slow.skipped.load(ordering: .relaxed) == extra + 10)
        f.closeAll()  // the stream ends after what it holds: the loop below is bounded
        let got = await ConsoleFeedTests.batches(fastEvents, fast)
        #expect(got.count == 1, "one batch for the one drain that had matching records")
        #expect(got.first?.count == n / 100)
        #expect(got.first?.allSatisfy { $0.contains(#""rcode":"SERVFAIL""#) } == true)
        #expect(got.first?.first == ConsoleFeedTests.line(0, rcode: "SERVFAIL"))
        let slowGot = await ConsoleFeedTests.batches(slowEvents, slow)
        #expect(slowGot.count == 1)
        let rcode = { (i: Int) in i % 100 == 0 ? "SERVFAIL" : "NOERROR" }
        #expect(slowGot.first?.first == ConsoleFeedTests.line(extra, rcode: rcode(extra)))
        #expect(slowGot.first?.last == ConsoleFeedTests.line(n - 1, rcode: rcode(n - 1)))
    }

    @Test("a reader keeping up loses nothing at 100,000 records/s (a drain every 50 ms, one batch each, in order)")
    func fastReader() async throws {
        let f = ConsoleFeed()
        guard let (sub, events) = f.subscribe(RecordFilter([:])) else {
            Issue.record("no subscription")
            return
        }
        let reader = Task { () -> (records: Int, batches: Int, last: String?) in
            var records = 0, batches = 0
            var last: String?
            for await e in events {
                guard case .batch(let b) = e else { continue }
                records += b.count
                batches += 1
                var k = 0
                let n = b.count
                b.forEachLine { k += 1; if k == n { last = String(decoding: $0, as: UTF8.self) } }
                sub.delivered(b.count)
            }
            return (records, batches, last)
        }
        // 2 s at 100,000 records/s: 5,000 records per 50 ms drain, 40 drains.
        let perDrain = 5_000, drains = 40
        // Each drain takes five of the writer's runs (a flush every 10 ms): still one batch.
        let lines = (0..<perDrain).map { ConsoleFeedTests.line($0) }
        let runs = stride(from: 0, to: perDrain, by: perDrain / 5).map { Array(lines[$0..<($0 + perDrain / 5)].joined(separator: "\n").utf8) + [10] }
        for _ in 0..<drains {
            for var run in runs { run.withUnsafeMutableBufferPointer { f.take(UnsafeBufferPointer($0)) } }
            #expect(f.drain() == perDrain)
            // 50 ms after each drain, not on a fixed schedule: when other tests hold the
            // cooperative threads, the drains wait as the reader does instead of catching up
            // in a burst (the server's drain loop sleeps the same way).
            try await Task.sleep(for: .milliseconds(50))
        }
        f.closeAll()
        let got = await reader.value
        #expect(got.records == perDrain * drains)
        #expect(got.batches == drains)
        #expect(got.last == lines.last)
        #expect(sub.skipped.load(ordering: .relaxed) == 0)
        #expect(f.counts.total == perDrain * drains)
    }

    @Test("lines that are not a JSON object are left out and counted; unreadable ones never reach an answer")
    func malformed() {
        let f = ConsoleFeed()
        let good = ConsoleFeedTests.line(1)
        let text = [good, "not json", "{\"cut\":\"", "", good.replacingOccurrences(of: "\"rcode\"", with: "\"rcode\"::"), good].joined(separator: "\n")
        var bytes = Array(text.utf8)  // the last line without its newline counts too
        bytes.withUnsafeMutableBufferPointer { f.take(UnsafeBufferPointer($0)) }
        #expect(f.drain() == 3)
        #expect(f.counts.malformed == 2)
        // The `{...}` with a syntax error inside is in the ring, but no answer carries it.
        #expect(f.recent(RecordFilter([:]), limit: 100).count == 2)
        #expect(f.since(0) { _ in true }.count == 2)
    }

    @Test("with no page open a drain keeps only what the ring holds, and counts the rest as seen")
    func idleDrain() {
        let f = ConsoleFeed()
        ConsoleFeedTests.feed(f, (0..<(ConsoleFeed.ringCapacity + 2_000)).map { ConsoleFeedTests.line($0) })
        #expect(f.drain() == ConsoleFeed.ringCapacity)
        #expect(f.counts.total == ConsoleFeed.ringCapacity + 2_000)
        let all = f.recent(RecordFilter([:]), limit: 20_000)
        #expect(all.count == ConsoleFeed.ringCapacity)
        #expect(all.first?.name == "n\(ConsoleFeed.ringCapacity + 1_999).example.com.")
        #expect(all.last?.name == "n2000.example.com.")
        #expect(f.oldest?.name == "n2000.example.com.")
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

    @Test("a page with no filter is sent the chunks' own framed bytes, one slice per run; a filtered one gets a copy of its lines")
    func frames() async throws {
        let f = ConsoleFeed()
        guard let (all, allEvents) = f.subscribe(RecordFilter([:])),
              let (some, someEvents) = f.subscribe(RecordFilter(["rcode": "SERVFAIL"])) else {
            Issue.record("no subscription")
            return
        }
        let lines = (0..<300).map { ConsoleFeedTests.line($0, rcode: $0 % 3 == 0 ? "SERVFAIL" : "NOERROR") }
        // Two runs of the writer, with a blank line and a malformed one in the second.
        ConsoleFeedTests.feed(f, Array(lines[..<100]))
        ConsoleFeedTests.feed(f, Array(lines[100...]) + ["", "not json"])
        #expect(f.drain() == 300)
        f.closeAll()
        let sse = lines.map { "data: \($0)\n\n" }.joined()
        var it = allEvents.makeAsyncIterator()
        guard case .batch(let b)? = await it.next() else { Issue.record("no batch"); return }
        let frames = try #require(b.frames, "lines that follow one another are sent as slices")
        #expect(frames.count == 2)
        #expect(frames.map { String(buffer: $0) }.joined() == sse)
        all.delivered(b.count)
        var it2 = someEvents.makeAsyncIterator()
        guard case .batch(let s)? = await it2.next() else { Issue.record("no batch"); return }
        #expect(s.frames == nil, "every third line: not one slice")
        var got: [String] = []
        s.forEachLine { got.append(String(decoding: $0, as: UTF8.self)) }
        #expect(got == lines.enumerated().filter { $0.offset % 3 == 0 }.map(\.element))
        some.delivered(s.count)
    }

    @Test("a chunk's buffer is reused once free, and never while a slice of it is still being sent")
    func chunkReuse() {
        let pool = ChunkPool()
        func run(_ tag: String) -> [UInt8] { Array((0..<50).map { ConsoleFeedTests.line($0, vpc: tag) }.joined(separator: "\n").utf8) + [10] }
        func base(_ b: ByteBuffer) -> UnsafeRawPointer? { b.withUnsafeReadableBytes { $0.baseAddress } }
        var first: Chunk? = run("vpc-first").withUnsafeBufferPointer { Chunk(framing: $0, pool: pool) }
        let firstBase = base(first!.buffer)
        first = nil
        // Free: the next chunk fills the same memory (no fresh pages to fault in).
        var second: Chunk? = run("vpc-second").withUnsafeBufferPointer { Chunk(framing: $0, pool: pool) }
        #expect(base(second!.buffer) == firstBase)
        // A slice still held (a page's write not yet taken by the socket) keeps its bytes.
        let sending = second!.frames(second!.lines[...])!
        let sent = String(buffer: sending)
        second = nil
        let third = run("vpc-third").withUnsafeBufferPointer { Chunk(framing: $0, pool: pool) }
        #expect(String(buffer: sending) == sent)
        #expect(sent.contains("vpc-second"))
        #expect(base(third.buffer) != base(sending), "the third chunk was written into the memory still being sent")
        #expect(third.lines.count == 50 && third.malformed == 0)
        #expect(String(buffer: third.line(third.lines[0])) == ConsoleFeedTests.line(0, vpc: "vpc-third"))
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
