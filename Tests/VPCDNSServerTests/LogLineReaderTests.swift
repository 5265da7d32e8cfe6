import Foundation
import Testing
import VPCDNSServer
import VPCDNSLogs
import NIOCore
import AllocationCounter
@testable import VPCDNSConsole

/// The one reader of query-log lines (`VPCDNSLogs`'s `RecordScanner`), seen from both tools
/// that read through it: the console (`ConsoleRecord`, via `LogLineFields`) and `vpcdns logs`
/// (`LogRecord.parse`). The fields read agree with what the log's own encoder wrote and with
/// Foundation's JSON parser; a line is JSON to both tools or to neither, never a crash.
@Suite("One reader of log lines: the console and vpcdns logs read a line the same way")
struct LogLineReaderTests {
    /// A line as the query log writes it (the writer's own encoder), with `name` as query_name.
    static func logLine(name: String, vpc: String = "vpc-0a1b2c3d4e5f67890", rcode: String = "NOERROR",
                        decision: String = "private-hosted-zone", client: String = "10.0.1.5", latency: Int64 = 1234) -> String {
        let r = QueryLogRecord(accountID: "111122223333", region: "us-west-2", vpcID: vpc, receivedAtMicros: 1_796_536_801_500_000,
                               queryName: name, queryType: "A", queryClass: "IN", rcode: rcode,
                               answers: [(rdata: "10.0.0.1", type: "A", rrClass: "IN"), (rdata: "\"txt \\\" {[,:]}\"", type: "TXT", rrClass: "IN")],
                               srcAddr: client, srcPort: 5353, transport: "UDP", resolverEndpoint: nil, decision: decision,
                               zone: "example.com", zoneID: "Z1", reason: "a \"quoted\" reason {with} [brackets]", cache: .miss,
                               upstream: nil, listener: "127.0.0.1:1053", via: "listener", latencyMicros: latency)
        var line = r.jsonLine()
        if line.hasSuffix("\n") { line.removeLast() }
        return line
    }

    /// What `vpcdns logs` makes of a line: a record, a line that is not JSON (the lines the
    /// console refuses too), or a JSON line that is not a usable record (a field missing or of
    /// the wrong type: the console still shows it).
    enum LogsVerdict {
        case record(LogRecord)
        case notJSON(String)
        case notARecord(String)
    }

    static func logs(_ bytes: [UInt8]) -> LogsVerdict {
        switch bytes.withUnsafeBufferPointer({ LogRecord.parse($0) }) {
        case .success(let r): return .record(r)
        case .failure(let e):
            let json = e.why.hasPrefix("not JSON") || e.why == "not a JSON object" || e.why == "blank line"
            return json ? .notJSON(e.why) : .notARecord(e.why)
        }
    }

    static func console(_ bytes: [UInt8]) -> ConsoleRecord? { ConsoleRecord(bytes: ByteBuffer(bytes: bytes)) }

    static let odd: [(String, String)] = [
        ("quote and backslash", "a\"b\\c.example.com."),
        ("NUL and control bytes", "a\u{0}b\u{1}\u{1F}\t\n\r.example.com."),
        ("markup", "<script>alert(1)</script>.example.com."),
        ("img onerror", "<img src=x onerror=alert(1)>.example.com."),
        ("non-ASCII", "bücher.例え.example.com."),
        ("emoji (a surrogate pair when escaped)", "😀.example.com."),
        ("255 bytes", String(repeating: "a", count: 63) + "." + String(repeating: "b", count: 63) + "." + String(repeating: "c", count: 63)
            + "." + String(repeating: "d", count: 61) + "."),
        ("JSON-looking", "\"},\"vpcdns\":{\"decision\":\"forged\"}}.example.com."),
        ("case kept, filtered lower", "WwW.ExAmPlE.CoM."),
    ]

    @Test("lines the log wrote: every kept field read back by both tools, escapes decoded (quotes, backslash, NUL, markup, non-ASCII, 255 bytes)")
    func writtenLines() throws {
        for (what, name) in LogLineReaderTests.odd {
            let line = LogLineReaderTests.logLine(name: name)
            let r = try #require(ConsoleRecord(line: line), "\(what): \(line)")
            #expect(r.name == name.lowercased(), "\(what)")
            #expect(r.vpc == "vpc-0a1b2c3d4e5f67890")
            #expect(r.rcode == "NOERROR")
            #expect(r.client == "10.0.1.5")
            #expect(r.decision == "private-hosted-zone", "\(what): a name cannot forge the decision")
            #expect(r.latencyMicros == 1234)
            #expect(r.receivedAt == 1_796_536_801.5)
            #expect(r.line == line)
            // vpcdns logs reads the same line the same way.
            guard case .record(let l) = LogLineReaderTests.logs(Array(line.utf8)) else {
                Issue.record("\(what): vpcdns logs refused \(line)")
                continue
            }
            #expect(l.queryName == name && l.vpcID == r.vpc && l.rcode == r.rcode && l.srcAddr == r.client, "\(what)")
            #expect(l.vpcdns?.decision == r.decision && l.vpcdns?.latencyMicros == 1234, "\(what)")
            #expect(l.vpcdns?.receivedAt == "2026-12-06T06:00:01.500000Z", "\(what)")
            // Foundation's parser reads the same.
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect((o["query_name"] as? String)?.lowercased() == r.name, "\(what)")
            #expect(o["query_name"] as? String == l.queryName, "\(what)")
        }
    }

    /// (what, line, expected fields or nil for a line that must be refused)
    static let table: [(String, String, (vpc: String, rcode: String, client: String, name: String, decision: String, latency: Int)?)] = [
        ("the smallest record", #"{"vpc_id":"v","rcode":"NOERROR","srcaddr":"1.2.3.4","query_name":"a.","vpcdns":{"decision":"upstream","latency_us":7}}"#,
         ("v", "NOERROR", "1.2.3.4", "a.", "upstream", 7)),
        ("any order, white space everywhere", " {\n \"vpcdns\" : { \"latency_us\" : 12 , \"decision\" : \"refused\" } ,\t\"query_name\" : \"B.\" , \"vpc_id\":\"v\" } \n",
         ("v", "-", "-", "b.", "refused", 12)),
        ("missing fields are -", #"{"version":"1.1"}"#, ("-", "-", "-", "-", "-", 0)),
        ("null and numbers where strings are expected", #"{"vpc_id":null,"rcode":3,"srcaddr":["x"],"query_name":{"a":"b"},"vpcdns":null}"#,
         ("-", "-", "-", "-", "-", 0)),
        ("vpcdns not an object", #"{"vpcdns":"decision","vpc_id":"v"}"#, ("v", "-", "-", "-", "-", 0)),
        ("latency not a whole number", #"{"vpcdns":{"latency_us":1.5e3}}"#, ("-", "-", "-", "-", "-", 0)),
        ("nested values skipped", #"{"answers":[{"Rdata":"\"}]\"","x":[1,-2.5e+3,true,false,null,[],{}]}],"vpc_id":"v"}"#,
         ("v", "-", "-", "-", "-", 0)),
        ("every escape", #"{"query_name":"\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00\ud800x"}"#, ("-", "-", "-", "\"\\/\u{8}\u{c}\n\r\taé😀\u{FFFD}x", "-", 0)),
        ("the last of two equal keys", #"{"vpc_id":"a","vpc_id":"b"}"#, ("b", "-", "-", "-", "-", 0)),
        ("escaped key is another key", #"{"vpc\u005fid":"a"}"#, ("-", "-", "-", "-", "-", 0)),
        ("empty", "", nil),
        ("not an object", "[1,2]", nil),
        ("a bare string", #""vpc_id""#, nil),
        ("cut short", #"{"vpc_id":"v","query_name":"ab"#, nil),
        ("cut in an escape", #"{"query_name":"a\"#, nil),
        ("cut in a u-escape", #"{"query_name":"\u00"}"#, nil),
        ("unknown escape", #"{"query_name":"\x41"}"#, nil),
        ("raw control byte in a string", "{\"query_name\":\"a\u{1}b\"}", nil),
        ("text after the object", #"{"vpc_id":"v"} {"vpc_id":"w"}"#, nil),
        ("trailing comma", #"{"vpc_id":"v",}"#, nil),
        ("missing colon", #"{"vpc_id" "v"}"#, nil),
        ("bad literal", #"{"x":tru,"vpc_id":"v"}"#, nil),
        ("bad number", #"{"x":-,"vpc_id":"v"}"#, nil),
        ("bad fraction", #"{"x":1.,"vpc_id":"v"}"#, nil),
        ("unclosed array", #"{"x":[1,2,"vpc_id":"v"}"#, nil),
        ("deep nesting", "{\"x\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}", nil),
    ]

    @Test("table: escapes, missing fields, malformed lines refused by both tools, never a crash")
    func table() {
        for (what, line, want) in LogLineReaderTests.table {
            let r = ConsoleRecord(line: line)
            guard let want else {
                #expect(r == nil, "\(what): should be refused")
                if case .notJSON = LogLineReaderTests.logs(Array(line.utf8)) {} else {
                    Issue.record("\(what): vpcdns logs did not refuse it as not JSON")
                }
                continue
            }
            guard let r else {
                Issue.record("\(what): refused: \(line)")
                continue
            }
            #expect(r.vpc == want.vpc, "\(what)")
            #expect(r.rcode == want.rcode, "\(what)")
            #expect(r.client == want.client, "\(what)")
            #expect(r.name == want.name, "\(what)")
            #expect(r.decision == want.decision, "\(what)")
            #expect(r.latencyMicros == want.latency, "\(what)")
            if case .notJSON(let why) = LogLineReaderTests.logs(Array(line.utf8)) {
                Issue.record("\(what): vpcdns logs says not JSON (\(why))")
            }
        }
    }

    // MARK: - Where the two tools' readers used to disagree

    /// A line as the writer writes it, with one piece of it replaced: the lines below differ
    /// from a real one in the one place the row is about, so `vpcdns logs` has every field it
    /// needs and any refusal is about that place.
    static let written = logLine(name: "www.example.com.", latency: 41)

    static func written(_ piece: String, as replacement: String) -> String {
        precondition(written.contains(piece), "the written line has no \(piece)")
        return written.replacingOccurrences(of: piece, with: replacement)
    }

    /// What both tools read from a line: nil for a line that is not JSON to either.
    struct Read: Equatable {
        var vpc: String? = "vpc-0a1b2c3d4e5f67890"
        var client: String? = "10.0.1.5"
        var name: String? = "www.example.com."
        var decision: String? = "private-hosted-zone"
        var receivedAt: String? = "2026-12-06T06:00:01.500000Z"
        var latency: Int64? = 41
    }

    static func nested(_ k: Int) -> String { String(repeating: "[", count: k) + String(repeating: "]", count: k) }

    /// (what, how the tools differed before, line, what both read now (nil: not JSON to
    /// either), why vpcdns logs still refuses the record although the line is JSON)
    static let formerDisagreements: [(String, String, String, Read?, String?)] = [
        ("leading zero in a skipped number", "console read it, logs: not JSON",
         written(#""srcport":"5353""#, as: #""srcport":05353"#), nil, nil),
        ("leading zero in latency_us", "console read 41, logs: not JSON",
         written(#""latency_us":41"#, as: #""latency_us":041"#), nil, nil),
        ("negative number with a leading zero", "console read it, logs: not JSON",
         written(#""version":"1.100000""#, as: #""version":-01"#), nil, nil),
        ("raw control byte in query_name", "logs read it, console: not JSON",
         written(#""www.example.com.""#, as: "\"www\u{1}.example.com.\""), nil, nil),
        ("raw tab in a skipped string", "logs read it, console: not JSON",
         written(#""transport":"UDP""#, as: "\"transport\":\"U\tDP\""), nil, nil),
        ("raw NUL in a key", "logs read it, console: not JSON",
         written(#""version""#, as: "\"ver\u{0}sion\""), nil, nil),
        ("unknown escape in a skipped string", "logs read it, console: not JSON",
         written(#""listener":"127.0.0.1:1053""#, as: #""listener":"127.0.0.1\:1053""#), nil, nil),
        ("\\u with two hex digits in a skipped string", "logs read it, console: not JSON",
         written(#""listener":"127.0.0.1:1053""#, as: #""listener":"\u12""#), nil, nil),
        ("unknown escape in a key", "logs read it, console: not JSON",
         written(#""version""#, as: #""\version""#), nil, nil),
        ("40 nested arrays in a skipped field", "logs read it, console: not JSON (its limit was 32)",
         written(#""srcids":{}"#, as: #""srcids":{},"x":"# + nested(40)), Read(), nil),
        ("63 nested arrays: 64 levels with the line's object, the limit", "logs read it, console: not JSON",
         written(#""srcids":{}"#, as: #""srcids":{},"x":"# + nested(63)), Read(), nil),
        ("latency_us 1.5e3", "logs read 1500, console none",
         written(#""latency_us":41"#, as: #""latency_us":1.5e3"#), Read(latency: nil), nil),
        ("latency_us 41.9", "logs read 41, console none",
         written(#""latency_us":41"#, as: #""latency_us":41.9"#), Read(latency: nil), nil),
        ("latency_us a string", "logs read 41, console none",
         written(#""latency_us":41"#, as: #""latency_us":"41""#), Read(latency: nil), nil),
        ("latency_us of 19 digits (Int64.max)", "logs read it, console none (its limit was 17 digits)",
         written(#""latency_us":41"#, as: #""latency_us":9223372036854775807"#), Read(latency: Int64.max), nil),
        ("srcaddr a number", "logs read \"5\", console none",
         written(#""srcaddr":"10.0.1.5""#, as: #""srcaddr":5"#), Read(client: nil), nil),
        ("received_at a number", "logs read \"5\", console none",
         written(#""received_at":"2026-12-06T06:00:01.500000Z""#, as: #""received_at":5"#), Read(receivedAt: nil), nil),
        ("decision a number", "logs read decision \"5\", console none",
         written(#""decision":"private-hosted-zone""#, as: #""decision":5"#), Read(decision: nil), "vpcdns.decision is not a string"),
    ]

    @Test("former disagreements: each line gives the one answer both tools now read")
    func formerDisagreements() throws {
        for (what, before, line, want, logsRefuses) in LogLineReaderTests.formerDisagreements {
            let bytes = Array(line.utf8)
            let c = LogLineReaderTests.console(bytes)
            let l = LogLineReaderTests.logs(bytes)
            guard let want else {
                #expect(c == nil, "\(what) (before: \(before)): the console should refuse it")
                if case .notJSON = l {} else { Issue.record("\(what) (before: \(before)): vpcdns logs should refuse it as not JSON: \(l)") }
                continue
            }
            let f = try #require(bytes.withUnsafeBufferPointer { LogLineFields.scan($0) }, "\(what) (before: \(before)): not JSON to the console")
            let seen = Read(vpc: f.vpcID, client: f.srcAddr, name: f.queryName, decision: f.decision, receivedAt: f.receivedAt, latency: f.latencyMicros)
            #expect(seen == want, "\(what) (before: \(before)): the console read \(seen)")
            let r = try #require(c)
            #expect(r.decision == (want.decision ?? "-") && r.client == (want.client ?? "-") && r.latencyMicros == Int(want.latency ?? 0), "\(what)")
            switch l {
            case .record(let rec):
                #expect(logsRefuses == nil, "\(what): vpcdns logs should refuse the record (\(logsRefuses ?? ""))")
                let logsSaw = Read(vpc: rec.vpcID, client: rec.srcAddr, name: rec.queryName, decision: rec.vpcdns?.decision,
                                   receivedAt: rec.vpcdns?.receivedAt, latency: rec.vpcdns?.latencyMicros)
                #expect(logsSaw == want, "\(what) (before: \(before)): vpcdns logs read \(logsSaw)")
            case .notARecord(let why):
                #expect(why == logsRefuses, "\(what): vpcdns logs refused the record: \(why)")
            case .notJSON(let why):
                Issue.record("\(what) (before: \(before)): vpcdns logs says not JSON: \(why)")
            }
        }
        // One more level than the limit is refused by both.
        let tooDeep = Array(Self.written(#""srcids":{}"#, as: #""srcids":{},"x":"# + Self.nested(64)).utf8)
        #expect(LogLineReaderTests.console(tooDeep) == nil)
        if case .notJSON(let why) = LogLineReaderTests.logs(tooDeep) { #expect(why.contains("nested too deeply")) } else { Issue.record("64 nested arrays read") }
    }

    @Test("a repeated vpcdns key: the last object counts as a whole for both tools (its fields are not merged with the first's)")
    func repeatedVPCDNSObject() throws {
        // Both tools used to keep latency_us from the first object when the second had none.
        let twice = Array((String(Self.written.dropLast()) + #","vpcdns":{"decision":"refused"}}"#).utf8)
        let f = try #require(twice.withUnsafeBufferPointer { LogLineFields.scan($0) })
        #expect(f.decision == "refused" && f.latencyMicros == nil && f.receivedAt == nil)
        guard case .record(let r) = LogLineReaderTests.logs(twice) else { Issue.record("vpcdns logs refused it"); return }
        #expect(r.vpcdns?.decision == "refused" && r.vpcdns?.latencyMicros == nil && r.vpcdns?.zone == nil)
        // Then null: no vpcdns object at all.
        let thenNull = Array((String(Self.written.dropLast()) + #","vpcdns":null}"#).utf8)
        let g = try #require(thenNull.withUnsafeBufferPointer { LogLineFields.scan($0) })
        #expect(g.decision == nil && g.latencyMicros == nil)
        guard case .record(let s) = LogLineReaderTests.logs(thenNull) else { Issue.record("vpcdns logs refused it"); return }
        #expect(s.vpcdns == nil && s.isAWS)
    }

    @Test("strings are stepped over eight bytes at a time: a control byte, quote or escape at every offset is still seen")
    func everyOffsetOfAString() {
        for length in 1...24 {
            for at in 0..<length {
                func line(_ piece: [UInt8]) -> [UInt8] {
                    var text = Array(repeating: UInt8(ascii: "a"), count: length)
                    text.replaceSubrange(at...at, with: piece)
                    return Array(#"{"x":"pad","query_name":""#.utf8) + text + Array(#"","y":"after"}"#.utf8)
                }
                for control: UInt8 in [0x00, 0x01, 0x09, 0x1F] {
                    #expect(LogLineReaderTests.console(line([control])) == nil, "control byte \(control) at \(at) of \(length)")
                }
                for plain: [UInt8] in [[0x20], [0x21], [0x7F], [0xC3, 0xA9], Array(#"\""#.utf8), Array(#"\\"#.utf8), Array(#"\u0041"#.utf8)] {
                    let want = String(repeating: "a", count: at) + String(decoding: plain, as: UTF8.self)
                        .replacingOccurrences(of: #"\""#, with: "\"").replacingOccurrences(of: #"\\"#, with: "\\")
                        .replacingOccurrences(of: #"\u0041"#, with: "A") + String(repeating: "a", count: length - at - 1)
                    let got = line(plain).withUnsafeBufferPointer { LogLineFields.scan($0) }
                    #expect(got?.queryName == want, "\(plain) at \(at) of \(length)")
                }
                // A quote ends the string there: what follows it is not JSON.
                #expect(LogLineReaderTests.console(line([0x22])) == nil, "quote at \(at) of \(length)")
            }
        }
    }

    @Test("the console's fields cost only the kept strings: what is stepped over (200 answers, every other field) allocates nothing")
    func skippingAllocatesNothing() throws {
        func count(answers: Int) -> (allocations: UInt64, read: Bool) {
            let list = (0..<answers).map { i in (rdata: "\"txt \\\" \(i) {[,:]}\"", type: "TXT", rrClass: "IN") }
            let r = QueryLogRecord(accountID: "111122223333", region: "us-west-2", vpcID: "vpc-0a1b2c3d4e5f67890", receivedAtMicros: 1_796_536_801_500_000,
                                   queryName: "a-name-longer-than-fifteen-bytes.example.com.", queryType: "TXT", queryClass: "IN", rcode: "NOERROR",
                                   answers: list, srcAddr: "10.0.1.5", srcPort: 5353, transport: "UDP", resolverEndpoint: nil,
                                   decision: "private-hosted-zone", zone: "example.com", zoneID: "Z1", reason: nil, cache: .none,
                                   upstream: nil, listener: "127.0.0.1:1053", via: "source", latencyMicros: 7)
            let bytes = Array(r.jsonLine().utf8.dropLast())
            return bytes.withUnsafeBufferPointer { b in
                _ = LogLineFields.scan(b)  // once before counting: nothing done once is counted
                vpcdns_allocations_start()
                let fields = LogLineFields.scan(b)
                let n = vpcdns_allocations_stop()
                return (n, fields?.latencyMicros == 7 && fields?.decision == "private-hosted-zone")
            }
        }
        let one = count(answers: 1), many = count(answers: 200)
        #expect(vpcdns_allocations_hooked() != 0, "the allocation counter is not in place")
        #expect(one.read && many.read)
        // The kept strings longer than 15 bytes (Swift keeps shorter ones inline): vpc_id,
        // query_name, decision, received_at.
        #expect(one.allocations <= 4, "\(one.allocations) allocations for one line")
        #expect(many.allocations == one.allocations, "200 skipped answers cost \(many.allocations) allocations, one cost \(one.allocations)")
    }

    @Test("every cut and every single-byte change of a written line: no crash; JSON to both tools or to neither; where Foundation reads it, the same fields")
    func mutations() throws {
        let line = Array(LogLineReaderTests.logLine(name: "a\"b\\c\u{0}<x>é.example.com.").utf8)
        var agreed = 0, refused = 0, logsRecords = 0
        func check(_ bytes: [UInt8]) {
            let r = LogLineReaderTests.console(bytes)
            let l = LogLineReaderTests.logs(bytes)
            if case .notJSON = l {
                #expect(r == nil, "JSON to the console, not to vpcdns logs: \(String(decoding: bytes, as: UTF8.self))")
            } else {
                #expect(r != nil, "JSON to vpcdns logs, not to the console: \(String(decoding: bytes, as: UTF8.self))")
            }
            let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            if o != nil && r == nil {
                // Foundation's parser takes a comma before `}` or `]`; RFC 8259 does not, nor do the tools.
                let text = String(decoding: bytes, as: UTF8.self)
                #expect(text.contains(",}") || text.contains(",]"), "Foundation reads it, the tools do not: \(text)")
            }
            if r == nil { refused += 1 }
            guard let r, let o else { return }
            let vpcdns = o["vpcdns"] as? [String: Any]
            #expect(r.vpc == (o["vpc_id"] as? String ?? "-"))
            #expect(r.name == (o["query_name"] as? String ?? "-").lowercased())
            #expect(r.decision == (vpcdns?["decision"] as? String ?? "-"))
            if case .record(let rec) = l {
                #expect(rec.vpcID == o["vpc_id"] as? String && rec.queryName == o["query_name"] as? String)
                #expect(rec.vpcdns?.decision == vpcdns?["decision"] as? String)
                #expect(rec.srcAddr == o["srcaddr"] as? String && rec.srcAddr == (r.client == "-" ? nil : r.client))
                logsRecords += 1
            }
            agreed += 1
        }
        for cut in 0..<line.count {
            // A line cut short is never one JSON object.
            #expect(ConsoleRecord(bytes: ByteBuffer(bytes: line[..<cut])) == nil, "the first \(cut) bytes were accepted")
            check(Array(line[..<cut]))
        }
        let replacements: [UInt8] = [0x22, 0x5C, 0x7B, 0x7D, 0x5B, 0x5D, 0x3A, 0x2C, 0x00, 0x20, 0x61, 0xFF]
        for i in line.indices {
            for c in replacements where c != line[i] {
                var m = line
                m[i] = c
                check(m)
            }
        }
        #expect(agreed > 100, "the comparison ran on readable variants")
        #expect(logsRecords > 100, "vpcdns logs read records among them")
        #expect(refused >= line.count, "every cut is refused")
    }
}
