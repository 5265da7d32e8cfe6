#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import Synchronization
import VPCDNSLogs

/// One query-log record as the console reads it: the line exactly as the log wrote it (every
/// field, so the page shows what `tail -f` shows) and the few fields the filters and the
/// summary read, taken out of it by `LogLineFields` (the reader `vpcdns logs` uses, so a line
/// is a record to both or to neither) when a filter or the summary needs them (the ring keeps
/// only the bytes).
struct ConsoleRecord: Sendable {
    /// The line without its newline: a slice of the chunk the feed drained, not a copy.
    let bytes: ByteBuffer
    let vpc: String
    let decision: String
    let rcode: String
    let client: String
    /// `query_name` in lower case, for the name filter and the top-names lists.
    let name: String
    /// `vpcdns.received_at`, seconds since 1970 (0 when the line has none).
    let receivedAt: Double
    let latencyMicros: Int

    var line: String { String(buffer: bytes) }

    /// The summary's four groups (console.md: private, forwarded, refused, error).
    var category: String {
        if decision == "refused" { return "refused" }
        if decision == "bad-request" || rcode == "SERVFAIL" { return "error" }
        if decision == "upstream" || decision == "forward-rule" { return "forwarded" }
        return "private"
    }

    /// Nil when the line is not one well-formed JSON object.
    init?(bytes: ByteBuffer) {
        guard let f = bytes.withUnsafeReadableBytes({ LogLineFields.scan($0.assumingMemoryBound(to: UInt8.self)) }) else { return nil }
        self.bytes = bytes
        vpc = f.vpcID ?? "-"
        decision = f.decision ?? "-"
        rcode = f.rcode ?? "-"
        client = f.srcAddr ?? "-"
        name = (f.queryName ?? "-").lowercased()
        receivedAt = f.receivedAt.flatMap(ConsoleRecord.seconds) ?? 0
        latencyMicros = Int(f.latencyMicros ?? 0)
    }

    init?(line: String) { self.init(bytes: ByteBuffer(string: line)) }

    /// `2026-11-27T20:15:03.123456Z` → seconds since 1970 (`vpcdns logs`'s parser).
    static func seconds(_ text: String) -> Double? {
        LogTime.parseTimestamp(text).map { Double($0) / 1_000_000 }
    }
}

/// One run of lines as the tap copied it, framed as Server-Sent Events (`data: LINE` and a
/// blank line each), so that a page with no filter is sent slices of this buffer as they are,
/// not a copy; the ring and the API read the lines inside the frames. Shared by the ring
/// entries and batches that point into it; when the last of them is gone its buffer goes back
/// to the pool it came from.
final class Chunk: Sendable {
    let buffer: ByteBuffer
    /// Where each record's line lies in `buffer` (inside its frame), in written order.
    let lines: [ConsoleFeed.LineRange]
    /// Lines of the run that cannot be a record (not `{...}`): counted, not kept.
    let malformed: Int
    private let pool: ChunkPool

    /// What a frame adds around a line: `data: ` before it, two newlines after.
    static let framePrefix = 6
    static let frameSuffix = 2

    init(framing run: UnsafeBufferPointer<UInt8>, pool: ChunkPool) {
        var b = pool.reuse()
        // Lines are a few hundred bytes: 8 more per line, for a line of 256, is 1/32.
        b.reserveCapacity(run.count + run.count / 32 + 64)
        var lines: [ConsoleFeed.LineRange] = []
        lines.reserveCapacity(run.count / 256 + 1)
        var bad = 0
        if let base = run.baseAddress, run.count <= Int(Int32.max) / 2 {
            var at = 0
            while at < run.count {
                let end: Int
                if let nl = memchr(base + at, 0x0A, run.count - at) {
                    end = UnsafeRawPointer(base).distance(to: nl)
                } else {
                    end = run.count
                }
                if end > at {
                    if run[at] == UInt8(ascii: "{"), run[end - 1] == UInt8(ascii: "}") {
                        b.writeStaticString("data: ")
                        let start = b.writerIndex
                        b.writeBytes(UnsafeRawBufferPointer(start: base + at, count: end - at))
                        lines.append(ConsoleFeed.LineRange(start: Int32(start), end: Int32(b.writerIndex)))
                        b.writeStaticString("\n\n")
                    } else {
                        bad += 1
                    }
                }
                at = end + 1
            }
        }
        buffer = b
        self.lines = lines
        malformed = bad
        self.pool = pool
    }

    /// One line's bytes, without its frame: a slice sharing the chunk's storage.
    func line(_ l: ConsoleFeed.LineRange) -> ByteBuffer {
        buffer.getSlice(at: Int(l.start), length: Int(l.end - l.start))!
    }

    /// The frames of `lines`, which must follow one another in the chunk, as one slice.
    func frames(_ lines: ArraySlice<ConsoleFeed.LineRange>) -> ByteBuffer? {
        guard let first = lines.first, let last = lines.last else { return nil }
        let from = Int(first.start) - Chunk.framePrefix
        return buffer.getSlice(at: from, length: Int(last.end) + Chunk.frameSuffix - from)
    }

    deinit { pool.give(buffer) }
}

/// Buffers for `Chunk`s, kept for reuse. A fresh buffer of a few hundred kilobytes (one flush
/// of the log under load) is fresh memory from the kernel, and filling it costs a page fault per
/// 4 kB: measured, that was most of the console's cost with a page streaming. Reused buffers
/// are already mapped. Bounded in count and size. A buffer still shared (a slice of it being
/// sent to a page) gets fresh storage when reused (`clear`), never overwritten under the reader.
final class ChunkPool: Sendable {
    /// At most this many bytes of capacity are kept (a few drains' worth of runs at 100,000
    /// queries per second).
    static let keepBytes = 8 << 20
    private let free = Mutex<(buffers: [ByteBuffer], bytes: Int)>(([], 0))

    func reuse() -> ByteBuffer {
        var b = free.withLock { f -> ByteBuffer in
            guard let b = f.buffers.popLast() else { return ByteBuffer() }
            f.bytes -= b.capacity
            return b
        }
        b.clear()
        return b
    }

    func give(_ b: ByteBuffer) {
        free.withLock { f in
            guard f.bytes + b.capacity <= ChunkPool.keepBytes else { return }
            f.buffers.append(b)
            f.bytes += b.capacity
        }
    }
}

/// What a request asks for: every given field must match.
struct RecordFilter: Sendable {
    var vpc: String?
    /// A decision (`private-hosted-zone`) or one of the summary's groups (`private`, `error`).
    var decision: String?
    var rcode: String?
    var client: String?
    /// Part of the name, or a pattern with `*` (any run of characters); case-insensitive.
    var name: String?

    init(_ query: [String: String]) {
        func value(_ k: String) -> String? { query[k].flatMap { $0.isEmpty ? nil : $0 } }
        vpc = value("vpc")
        decision = value("decision")
        rcode = value("rcode")?.uppercased()
        client = value("client")
        name = value("name")?.lowercased()
    }

    /// No field given: every record matches, and none needs reading.
    var isEmpty: Bool { vpc == nil && decision == nil && rcode == nil && client == nil && name == nil }

    func matches(_ r: ConsoleRecord) -> Bool {
        if let vpc, r.vpc != vpc { return false }
        if let decision, r.decision != decision, r.category != decision { return false }
        if let rcode, r.rcode != rcode { return false }
        if let client, r.client != client { return false }
        if let name, !RecordFilter.nameMatches(name, r.name) { return false }
        return true
    }

    static func nameMatches(_ pattern: String, _ name: String) -> Bool {
        guard pattern.contains("*") else {
            return name.contains(pattern) || (name.hasSuffix(".") && name.dropLast() == pattern)
        }
        // Glob with `*` only, against the name with or without its trailing dot.
        let bare = name.hasSuffix(".") ? String(name.dropLast()) : name
        return glob(Array(pattern.utf8), Array(bare.utf8)) || glob(Array(pattern.utf8), Array(name.utf8))
    }

    static func glob(_ p: [UInt8], _ s: [UInt8]) -> Bool {
        var pi = 0, si = 0, star = -1, mark = 0
        while si < s.count {
            if pi < p.count, p[pi] != UInt8(ascii: "*"), p[pi] == s[si] {
                pi += 1; si += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi; mark = si; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; si = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}

/// The console's side of the query log: the writer's tap copies each written run of lines
/// into a buffer, framed as the live stream sends them (a `Chunk`: one copy, lines found with
/// one `memchr` each, no parsing, on the writer's task; the buffers are reused, see
/// `ChunkPool`) and queues it in `pending`, bounded in bytes; the console's own task (`drain`)
/// moves the chunks' lines into the ring of the last `ringCapacity` and hands each live
/// subscriber one batch of its matching lines. Nothing here can slow answering or the log:
/// when the console falls behind, runs beyond `pendingLimit` are dropped and counted.
///
/// The fields are read from a line (`ConsoleRecord`) only when a filter or the summary asks
/// for them: a page with no filter is sent slices of the chunks themselves, the log's bytes as
/// they were written, with no copy after the tap's. Ring entries and batches point into the
/// shared chunks, so ten subscribers cost ten lists of line offsets, not ten copies of the
/// lines; a chunk is freed when its last line has left the ring, every queue and the socket.
public final class ConsoleFeed: Sendable {
    public static let ringCapacity = 10_000
    /// Records queued per live subscriber: half a second at 100,000 records/s (ten 50 ms
    /// drains), so a reader that is briefly not scheduled loses nothing; a slower browser loses
    /// what does not fit, counted. The lines are the ring's shared chunks: every queue together
    /// holds at most this many lines' bytes beyond the ring (~20 MB at 400 bytes a line).
    public static let subscriberQueue = 50_000
    public static let maxSubscribers = 16
    static let pendingLimit = 16 << 20

    /// Where one line lies in its chunk, newline excluded.
    struct LineRange: Sendable {
        let start: Int32
        let end: Int32
    }

    /// Lines of one chunk.
    struct Part: Sendable {
        let chunk: Chunk
        var lines: ArraySlice<LineRange>
    }

    /// Lines of one drain for one subscriber, in written order (a drain may take several chunks).
    struct Batch: Sendable {
        var parts: [Part]
        var count: Int { parts.reduce(0) { $0 + $1.lines.count } }
        var byteCount: Int { parts.reduce(0) { $0 + $1.lines.reduce(0) { $0 + Int($1.end - $1.start) } } }

        /// Each line's bytes, newline excluded, in order.
        func forEachLine(_ body: (UnsafeRawBufferPointer) -> Void) {
            for part in parts {
                part.chunk.buffer.withUnsafeReadableBytes { chunk in
                    for l in part.lines { body(UnsafeRawBufferPointer(rebasing: chunk[Int(l.start)..<Int(l.end)])) }
                }
            }
        }

        /// The batch as Server-Sent Events, one `data:` message per line: slices of the chunks
        /// where lines follow one another in them (every line of a run, as a page with no
        /// filter gets), nil when they do not (a filter took some): then `forEachLine` and a copy.
        var frames: [ByteBuffer]? {
            var out: [ByteBuffer] = []
            out.reserveCapacity(parts.count)
            for part in parts {
                var previous: LineRange?
                for l in part.lines {
                    if let p = previous, Int(l.start) - Chunk.framePrefix != Int(p.end) + Chunk.frameSuffix { return nil }
                    previous = l
                }
                if let f = part.chunk.frames(part.lines) { out.append(f) }
            }
            return out
        }

        /// The newest `keep` lines.
        func suffix(_ keep: Int) -> Batch {
            var left = keep
            var out: [Part] = []
            for var part in parts.reversed() where left > 0 {
                part.lines = part.lines.suffix(left)
                left -= part.lines.count
                out.append(part)
            }
            return Batch(parts: out.reversed())
        }
    }

    enum Event: Sendable {
        case batch(Batch)
        case ping
    }

    final class Subscriber: Sendable {
        let filter: RecordFilter
        let continuation: AsyncStream<Event>.Continuation
        /// Records this subscriber lost because its queue was full (the page shows it).
        let skipped = Atomic<Int>(0)
        /// Records handed to the stream and not yet written to the browser.
        let queued = Atomic<Int>(0)
        init(filter: RecordFilter, continuation: AsyncStream<Event>.Continuation) {
            self.filter = filter
            self.continuation = continuation
        }

        /// Queues as much of `batch` as fits (the newest lines), counting the rest as skipped.
        /// Only the drain calls this, so the room it reads can only have grown since.
        func offer(_ batch: Batch) {
            let room = ConsoleFeed.subscriberQueue - queued.load(ordering: .relaxed)
            var b = batch
            let n = b.count
            if n > room {
                skipped.add(n - max(0, room), ordering: .relaxed)
                guard room > 0 else { return }
                b = b.suffix(room)
            }
            queued.add(b.count, ordering: .relaxed)
            if case .terminated = continuation.yield(.batch(b)) { queued.subtract(b.count, ordering: .relaxed) }
        }

        /// The stream wrote `count` records to the browser.
        func delivered(_ count: Int) { queued.subtract(count, ordering: .relaxed) }
    }

    /// One line in the ring: its chunk (shared with the other lines of its run) and where.
    struct Entry: Sendable {
        let chunk: Chunk
        let line: LineRange
        var record: ConsoleRecord? { ConsoleRecord(bytes: chunk.line(line)) }
    }

    struct Ring {
        var items: [Entry] = []
        var next = 0
        var total = 0
        mutating func append(_ e: Entry) {
            if items.count < ConsoleFeed.ringCapacity { items.append(e) } else { items[next] = e }
            next = (next + 1) % ConsoleFeed.ringCapacity
        }
        /// Every entry, newest first.
        var newestFirst: [Entry] {
            guard !items.isEmpty else { return [] }
            let split = items.count < ConsoleFeed.ringCapacity ? items.count : next
            return Array(items[..<split].reversed()) + Array(items[split...].reversed())
        }
        var oldest: Entry? { items.count < ConsoleFeed.ringCapacity ? items.first : items[next] }
    }

    private let pending = Mutex<(chunks: [Chunk], bytes: Int, dropped: Int)>(([], 0, 0))
    private let pool = ChunkPool()
    /// Held for the whole drain, so drains never overlap.
    private let draining = Mutex(())
    private let malformed = Atomic<Int>(0)
    private let ring = Mutex(Ring())
    private let subscribers = Mutex<(next: Int, all: [Int: Subscriber], closed: Bool)>((0, [:], false))

    public init() {}

    /// The query-log writer's tap (`QueryLogWriter.setTap`): one copy of the run, made
    /// before the lock (the drain never waits for it, nor it for the drain's work).
    public func take(_ lines: UnsafeBufferPointer<UInt8>) {
        guard !lines.isEmpty else { return }
        let chunk = Chunk(framing: lines, pool: pool)
        pending.withLock { p in
            if p.bytes + lines.count > ConsoleFeed.pendingLimit {
                p.dropped += lines.count
            } else {
                p.chunks.append(chunk)
                p.bytes += lines.count
            }
        }
    }

    /// Moves what the tap copied into the ring and to the subscribers; returns the number of
    /// records added.
    @discardableResult
    public func drain() -> Int {
        draining.withLock { _ in
            let chunks = pending.withLock { p -> [Chunk] in
                defer { p.chunks.removeAll(keepingCapacity: true); p.bytes = 0 }
                return p.chunks
            }
            guard !chunks.isEmpty else { return 0 }
            let subs = subscribers.withLock { Array($0.all.values) }
            var parts: [Part] = []
            var bad = 0, count = 0
            for chunk in chunks {
                bad += chunk.malformed
                count += chunk.lines.count
                if !chunk.lines.isEmpty { parts.append(Part(chunk: chunk, lines: chunk.lines[...])) }
            }
            if bad > 0 { malformed.add(bad, ordering: .relaxed) }
            // The ring keeps only its capacity's newest lines: the older ones a larger drain
            // holds would be pushed out of it at once, so they never go in (the pages still get
            // them). With no page open they are only counted.
            let all = Batch(parts: parts)
            let kept = count > ConsoleFeed.ringCapacity ? all.suffix(ConsoleFeed.ringCapacity) : all
            let passed = subs.isEmpty ? count - kept.count : 0
            ring.withLock { ring in
                for part in kept.parts {
                    for l in part.lines { ring.append(Entry(chunk: part.chunk, line: l)) }
                }
                ring.total += count
            }
            // Each record is read at most once per drain, and only for a subscriber with a filter.
            var records: [[ConsoleRecord?]]? = nil
            for s in subs {
                if s.filter.isEmpty {
                    s.offer(all)
                    continue
                }
                if records == nil {
                    records = all.parts.map { part in part.lines.map { ConsoleRecord(bytes: part.chunk.line($0)) } }
                }
                var matching: [Part] = []
                for (k, part) in all.parts.enumerated() {
                    var lines: [LineRange] = []
                    for (j, l) in part.lines.enumerated() {
                        if let r = records![k][j], s.filter.matches(r) { lines.append(l) }
                    }
                    if !lines.isEmpty { matching.append(Part(chunk: part.chunk, lines: lines[...])) }
                }
                if !matching.isEmpty { s.offer(Batch(parts: matching)) }
            }
            return count - passed
        }
    }

    /// Keeps idle streams alive and finds closed ones (a write to a gone browser fails).
    /// A subscriber with records queued gets no ping: its next write does the same.
    func ping() {
        for s in subscribers.withLock({ Array($0.all.values) }) where s.queued.load(ordering: .relaxed) == 0 {
            s.continuation.yield(.ping)
        }
    }

    /// The newest `limit` records that match, newest first. Lines the scanner cannot read are
    /// left out (the log writes none; a filter could not place one anyway).
    func recent(_ filter: RecordFilter, limit: Int) -> [ConsoleRecord] {
        var out: [ConsoleRecord] = []
        for e in ring.withLock({ $0.newestFirst }) {
            if out.count >= limit { break }
            if let r = e.record, filter.matches(r) { out.append(r) }
        }
        return out
    }

    /// Records received at or after `since` (seconds since 1970), oldest first.
    func since(_ since: Double, where keep: (ConsoleRecord) -> Bool) -> [ConsoleRecord] {
        var out: [ConsoleRecord] = []
        for e in ring.withLock({ $0.newestFirst }) {
            if let r = e.record, r.receivedAt >= since, keep(r) { out.append(r) }
        }
        return out.reversed()
    }

    /// The oldest record still in memory.
    var oldest: ConsoleRecord? { ring.withLock { $0.oldest }?.record }

    var counts: (inMemory: Int, total: Int, droppedBytes: Int, malformed: Int) {
        let r = ring.withLock { ($0.items.count, $0.total) }
        return (r.0, r.1, pending.withLock { $0.dropped }, malformed.load(ordering: .relaxed))
    }

    /// A live subscription, or nil when `maxSubscribers` are open already (or the console is
    /// stopping). The stream's own buffer is unbounded: `Subscriber.offer` bounds it, in records.
    func subscribe(_ filter: RecordFilter) -> (Subscriber, AsyncStream<Event>)? {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .unbounded)
        let sub = Subscriber(filter: filter, continuation: continuation)
        let id: Int? = subscribers.withLock { s in
            guard !s.closed, s.all.count < ConsoleFeed.maxSubscribers else { return nil }
            s.next += 1
            s.all[s.next] = sub
            return s.next
        }
        guard let id else { return nil }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.all.removeValue(forKey: id) }
        }
        return (sub, stream)
    }

    var subscriberCount: Int { subscribers.withLock { $0.all.count } }

    /// Ends every live stream (shutdown) and refuses new ones.
    func closeAll() {
        let subs = subscribers.withLock { s in
            s.closed = true
            return Array(s.all.values)
        }
        for s in subs { s.continuation.finish() }
    }
}
