#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// One query-log record as the console keeps it: the line exactly as the log wrote it (every
/// field, so the page shows what `tail -f` shows) and the few fields the filters and the
/// summary read, taken out once.
struct ConsoleRecord: Sendable {
    let line: String
    let vpc: String
    let decision: String
    let rcode: String
    let client: String
    /// `query_name` in lower case, for the name filter and the top-names lists.
    let name: String
    /// `vpcdns.received_at`, seconds since 1970.
    let receivedAt: Double
    let latencyMicros: Int

    /// The summary's four groups (console.md: private, forwarded, refused, error).
    var category: String {
        if decision == "refused" { return "refused" }
        if decision == "bad-request" || rcode == "SERVFAIL" { return "error" }
        if decision == "upstream" || decision == "forward-rule" { return "forwarded" }
        return "private"
    }

    init?(line: String) {
        guard let data = line.data(using: .utf8),
              let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        let v = o["vpcdns"] as? [String: Any] ?? [:]
        self.line = line
        vpc = o["vpc_id"] as? String ?? "-"
        decision = v["decision"] as? String ?? "-"
        rcode = o["rcode"] as? String ?? "-"
        client = o["srcaddr"] as? String ?? "-"
        name = (o["query_name"] as? String ?? "-").lowercased()
        receivedAt = (v["received_at"] as? String).flatMap(ConsoleRecord.seconds) ?? Date().timeIntervalSince1970
        latencyMicros = (v["latency_us"] as? NSNumber)?.intValue ?? 0
    }

    /// `2026-11-27T20:15:03.123456Z` → seconds since 1970.
    static func seconds(_ text: String) -> Double? {
        let u = Array(text.utf8)
        guard u.count >= 20, u[4] == UInt8(ascii: "-"), u[10] == UInt8(ascii: "T"), u[13] == UInt8(ascii: ":") else { return nil }
        func number(_ from: Int, _ count: Int) -> Int32? {
            var n: Int32 = 0
            for c in u[from..<(from + count)] {
                guard c >= 48, c <= 57 else { return nil }
                n = n * 10 + Int32(c - 48)
            }
            return n
        }
        guard let y = number(0, 4), let mo = number(5, 2), let d = number(8, 2), let h = number(11, 2), let mi = number(14, 2),
              let sec = number(17, 2) else { return nil }
        var tm = tm()
        tm.tm_year = y - 1900
        tm.tm_mon = mo - 1
        tm.tm_mday = d
        tm.tm_hour = h
        tm.tm_min = mi
        tm.tm_sec = sec
        var fraction = 0.0
        if u.count > 20, u[19] == UInt8(ascii: ".") {
            fraction = Double("0." + String(decoding: u[20...].prefix { $0 >= 48 && $0 <= 57 }, as: UTF8.self)) ?? 0
        }
        return Double(timegm(&tm)) + fraction
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
/// into `pending` (a bounded byte buffer: a copy, no parsing, on the writer's task), and the
/// console's own task (`drain`) turns them into records, keeps the last `ringCapacity` and
/// hands each to the live subscribers. Nothing here can slow answering or the log: when the
/// console falls behind, bytes beyond `pendingLimit` are dropped and counted.
public final class ConsoleFeed: Sendable {
    public static let ringCapacity = 10_000
    /// Queued records per live subscriber; a slower browser loses the oldest, counted.
    public static let subscriberQueue = 1_000
    public static let maxSubscribers = 16
    static let pendingLimit = 16 << 20

    enum Event: Sendable {
        case record(String)
        case ping
    }

    final class Subscriber: Sendable {
        let filter: RecordFilter
        let continuation: AsyncStream<Event>.Continuation
        let skipped = Atomic<Int>(0)
        init(filter: RecordFilter, continuation: AsyncStream<Event>.Continuation) {
            self.filter = filter
            self.continuation = continuation
        }
    }

    struct Ring {
        var items: [ConsoleRecord] = []
        var next = 0
        var total = 0
        mutating func append(_ r: ConsoleRecord) {
            if items.count < ConsoleFeed.ringCapacity { items.append(r) } else { items[next] = r }
            next = (next + 1) % ConsoleFeed.ringCapacity
            total += 1
        }
        /// Newest first.
        func newest(_ limit: Int, where keep: (ConsoleRecord) -> Bool) -> [ConsoleRecord] {
            var out: [ConsoleRecord] = []
            var i = items.count < ConsoleFeed.ringCapacity ? items.count - 1 : (next - 1 + items.count) % items.count
            var seen = 0
            while seen < items.count, out.count < limit {
                if keep(items[i]) { out.append(items[i]) }
                i = (i - 1 + items.count) % items.count
                seen += 1
            }
            return out
        }
    }

    private let pending = Mutex<(bytes: [UInt8], dropped: Int)>(([], 0))
    private let ring = Mutex(Ring())
    private let subscribers = Mutex<(next: Int, all: [Int: Subscriber], closed: Bool)>((0, [:], false))

    public init() {}

    /// The query-log writer's tap (`QueryLogWriter.setTap`).
    public func take(_ lines: UnsafeBufferPointer<UInt8>) {
        pending.withLock { p in
            if p.bytes.count + lines.count > ConsoleFeed.pendingLimit {
                p.dropped += lines.count
            } else {
                p.bytes.append(contentsOf: lines)
            }
        }
    }

    /// Moves what the tap copied into the ring and to the subscribers; returns the number of
    /// records added.
    @discardableResult
    public func drain() -> Int {
        let bytes = pending.withLock { p -> [UInt8] in
            defer { p.bytes.removeAll(keepingCapacity: true) }
            return p.bytes
        }
        guard !bytes.isEmpty else { return 0 }
        var records: [ConsoleRecord] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            if let r = ConsoleRecord(line: String(decoding: line, as: UTF8.self)) { records.append(r) }
        }
        ring.withLock { ring in for r in records { ring.append(r) } }
        let subs = subscribers.withLock { Array($0.all.values) }
        for s in subs {
            for r in records where s.filter.matches(r) {
                if case .dropped = s.continuation.yield(.record(r.line)) { s.skipped.add(1, ordering: .relaxed) }
            }
        }
        return records.count
    }

    /// Keeps idle streams alive and finds closed ones (a write to a gone browser fails).
    func ping() {
        for s in subscribers.withLock({ Array($0.all.values) }) { s.continuation.yield(.ping) }
    }

    func recent(_ filter: RecordFilter, limit: Int) -> [ConsoleRecord] {
        ring.withLock { $0.newest(limit, where: filter.matches) }
    }

    /// Records received at or after `since` (seconds since 1970), oldest first.
    func since(_ since: Double, where keep: (ConsoleRecord) -> Bool) -> [ConsoleRecord] {
        ring.withLock { $0.newest(ConsoleFeed.ringCapacity) { $0.receivedAt >= since && keep($0) } }.reversed()
    }

    var counts: (inMemory: Int, total: Int, droppedBytes: Int) {
        let r = ring.withLock { ($0.items.count, $0.total) }
        return (r.0, r.1, pending.withLock { $0.dropped })
    }

    /// A live subscription, or nil when `maxSubscribers` are open already (or the console is
    /// stopping).
    func subscribe(_ filter: RecordFilter) -> (Subscriber, AsyncStream<Event>)? {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(ConsoleFeed.subscriberQueue))
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
