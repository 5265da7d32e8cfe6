import Foundation
import Testing
import VPCDNSServer
import NIOCore
@testable import VPCDNSConsole

/// The console's reader of query-log lines: the fields it takes out agree with what the log's
/// own encoder wrote and with Foundation's JSON parser; lines that are not one JSON object
/// give nil, never a crash.
@Suite("Console record scanner: the fields the console reads from a log line")
struct ConsoleRecordScannerTests {
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

    @Test("lines the log wrote: every kept field read back, escapes decoded (quotes, backslash, NUL, markup, non-ASCII, 255 bytes)")
    func writtenLines() throws {
        for (what, name) in ConsoleRecordScannerTests.odd {
            let line = ConsoleRecordScannerTests.logLine(name: name)
            let r = try #require(ConsoleRecord(line: line), "\(what): \(line)")
            #expect(r.name == name.lowercased(), "\(what)")
            #expect(r.vpc == "vpc-0a1b2c3d4e5f67890")
            #expect(r.rcode == "NOERROR")
            #expect(r.client == "10.0.1.5")
            #expect(r.decision == "private-hosted-zone", "\(what): a name cannot forge the decision")
            #expect(r.latencyMicros == 1234)
            #expect(r.receivedAt == 1_796_536_801.5)
            #expect(r.line == line)
            // Foundation's parser reads the same.
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect((o["query_name"] as? String)?.lowercased() == r.name, "\(what)")
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

    @Test("table: escapes, missing fields, malformed lines refused, never a crash")
    func table() {
        for (what, line, want) in ConsoleRecordScannerTests.table {
            let r = ConsoleRecord(line: line)
            guard let want else {
                #expect(r == nil, "\(what): should be refused")
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
        }
    }

    @Test("every cut and every single-byte change of a written line: no crash, and where Foundation reads it, the same fields")
    func mutations() throws {
        let line = Array(ConsoleRecordScannerTests.logLine(name: "a\"b\\c\u{0}<x>é.example.com.").utf8)
        var agreed = 0, refused = 0
        func check(_ bytes: [UInt8]) {
            let r = ConsoleRecord(bytes: ByteBuffer(bytes: bytes))
            let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            if r == nil { refused += 1 }
            guard let r, let o else { return }
            #expect(r.vpc == (o["vpc_id"] as? String ?? "-"))
            #expect(r.name == (o["query_name"] as? String ?? "-").lowercased())
            #expect(r.decision == ((o["vpcdns"] as? [String: Any])?["decision"] as? String ?? "-"))
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
        #expect(refused >= line.count, "every cut is refused")
    }
}
