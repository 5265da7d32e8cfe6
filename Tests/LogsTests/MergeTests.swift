import Foundation
import Testing
import VPCDNSLogs
import VPCDNSServer

/// `vpcdns logs filter` over several files (one query log per replica) prints one timeline,
/// ordered by `vpcdns.received_at`, else `query_timestamp`; one file streams in its own order.
@Suite
struct LogsMergeTests {
    /// A vpcdns record received `micros` after 2026-11-27T20:00:00Z. `query_timestamp` is
    /// written to the second only, so records within one second differ only in `received_at`.
    static func record(_ name: String, micros: Int64, src: String = "10.0.0.5") -> String {
        QueryLogRecord(accountID: "111122223333", region: "us-west-2", vpcID: Fixture.app,
                       receivedAtMicros: Fixture.t0 + micros, queryName: name, queryType: "A", queryClass: "IN",
                       rcode: "NOERROR", answers: [], srcAddr: src, srcPort: 40211, transport: "UDP",
                       resolverEndpoint: nil, decision: "upstream", zone: nil, zoneID: nil, reason: nil, cache: .miss,
                       upstream: "127.0.0.1:1054", via: "source", latencyMicros: 100).jsonLine()
            .trimmingCharacters(in: .newlines)
    }

    static func aws(_ name: String, _ timestamp: String) -> String {
        #"{"version":"1.100000","account_id":"111122223333","region":"us-west-2","vpc_id":"vpc-0a11ce0000000001a","query_timestamp":"\#(timestamp)","query_name":"\#(name)","query_type":"A","query_class":"IN","rcode":"NOERROR","answers":[],"srcaddr":"10.0.1.5","srcport":"53001","transport":"UDP","srcids":{"instance":"i-0aaaabbbbccccdddd"}}"#
    }

    static func names(_ stdout: String) -> [String] {
        stdout.split(separator: "\n").map { line -> String in
            guard case .success(let r) = LogRecord.parse(line: String(line)) else { return "?" }
            return r.queryName
        }
    }

    /// Two replicas' files with interleaved times (the second one gzip, with a bad line), each
    /// only roughly ordered, and an AWS export without `received_at`: one timeline.
    @Test func severalFilesComeOutMergedByReceivedAt() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        // Replica 1 wrote a slow query (a0.5) after a later fast one (a0.7): per-client order only.
        let r1 = try dir.file("replica1.jsonl", Fixture.text([
            Self.record("a0.1.", micros: 100_000), Self.record("a0.7.", micros: 700_000, src: "10.0.0.6"),
            Self.record("a0.5.", micros: 500_000), Self.record("a3.2.", micros: 3_200_000),
        ]))
        let r2 = try dir.gzip("replica2.jsonl.gz", Fixture.text([
            Self.record("b0.3.", micros: 300_000), Self.record("b0.6.", micros: 600_000), "{broken",
            Self.record("b0.9.", micros: 900_000), Self.record("b4.0.", micros: 4_000_000),
        ]))
        let a = try dir.file("aws.jsonl", Fixture.text([Self.aws("c2.", "2026-11-27T20:00:02Z"), Self.aws("c5.", "2026-11-27T20:00:05Z")]))
        let r = try CLI.run(["logs", "filter", r1, r2, a])
        #expect(r.status == 0)
        #expect(Self.names(r.stdout) == ["a0.1.", "b0.3.", "a0.5.", "b0.6.", "a0.7.", "b0.9.", "c2.", "a3.2.", "b4.0.", "c5."],
                "\(r.stdout)")
        // The lines are printed exactly as read.
        #expect(r.stdout.split(separator: "\n").contains(Substring(Self.record("b0.6.", micros: 600_000))))
        #expect(r.stderr == "\(r2):3: bad record: not JSON (object key expected at column 2)\n\(r2): 1 bad line(s) in all\n",
                "\(r.stderr)")

        // Filters apply before the merge; the table is in the same order.
        let f = try CLI.run(["logs", "filter", r2, r1, "--name", "*0.?", "--until", "2026-11-27T20:00:01Z"])
        #expect(Self.names(f.stdout) == ["a0.1.", "b0.3.", "a0.5.", "b0.6.", "a0.7.", "b0.9."], "\(f.stdout)")
        let t = try CLI.run(["logs", "filter", r1, r2, "--table", "--name", "b*"])
        let rows = t.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(rows.map { $0.count > 3 ? String($0[3]) : "?" } == ["b0.3.", "b0.6.", "b0.9.", "b4.0."], "\(t.stdout)")
    }

    /// Records with the same time keep the order of the files as given, then of their lines.
    @Test func tiesKeepFileThenLineOrder() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let x = try dir.file("x.jsonl", Fixture.text([Self.record("x1.", micros: 5), Self.record("x2.", micros: 5)]))
        let y = try dir.gzip("y.jsonl.gz", Fixture.text([Self.record("y1.", micros: 5), Self.record("y0.", micros: 1)]))
        #expect(Self.names(try CLI.run(["logs", "filter", x, y]).stdout) == ["y0.", "x1.", "x2.", "y1."])
        #expect(Self.names(try CLI.run(["logs", "filter", y, x]).stdout) == ["y0.", "y1.", "x1.", "x2."])
    }

    /// One file is streamed in its own order, as before (no buffering, no reordering).
    @Test func oneFileKeepsItsOrder() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let lines = [Self.record("late.", micros: 900_000), Self.record("early.", micros: 100_000)]
        let p = try dir.file("one.jsonl", Fixture.text(lines))
        let r = try CLI.run(["logs", "filter", p])
        #expect(r.status == 0 && r.stdout == Fixture.text(lines))
    }

    /// The library call the CLI uses: `received_at` is parsed, `keep` runs before sorting.
    @Test func readMergedOrdersKeptRecords() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let p = try dir.file("p.jsonl", Fixture.text([Self.record("p2.", micros: 200), Self.record("p9.", micros: 900)]))
        let q = try dir.file("q.jsonl", Fixture.text([Self.record("q1.", micros: 100), Self.record("q5.", micros: 500)]))
        var seen: [String] = []
        let bad = BadLineReporter { _ in }
        let result = LogReader.readMerged(paths: [p, q], bad: bad, keep: { $0.queryName != "q5." }) { seen.append($0.queryName) }
        #expect(seen == ["q1.", "p2.", "p9."])
        #expect(result.records == 4 && result.badLines == 0)
        guard case .success(let r) = LogRecord.parse(line: Self.record("z.", micros: 123)) else { Issue.record("parse"); return }
        #expect(r.vpcdns?.receivedAt == "2026-11-27T20:00:00.000123Z")
        #expect(r.orderMicros == Fixture.t0 + 123 && r.timeMicros == Fixture.t0)
    }
}
