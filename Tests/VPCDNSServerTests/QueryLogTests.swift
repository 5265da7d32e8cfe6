import Foundation
import Testing
import Synchronization
@testable import VPCDNSServer
import VPCDNSCore
import DNSWire

@Suite("Query log record and writer")
struct QueryLogTests {
    func record(answers: [(rdata: String, type: String, rrClass: String)] = [("10.0.1.10", "A", "IN"), ("10.0.2.10", "A", "IN")],
                resolverEndpoint: String? = nil, zone: String? = "ec2.us-west-2.amazonaws.com", upstream: String? = nil) -> QueryLogRecord {
        QueryLogRecord(accountID: "111122223333", region: "us-west-2", vpcID: "vpc-0a11ce0000000001a",
                       receivedAtMicros: 1_795_810_503_123_456, queryName: "EC2.us-west-2.amazonaws.com.", queryType: "A",
                       queryClass: "IN", rcode: "NOERROR", answers: answers, srcAddr: "127.0.0.1", srcPort: 40211, transport: "UDP",
                       resolverEndpoint: resolverEndpoint, decision: "endpoint-private-dns", zone: zone, zoneID: "vpce-0ec2a1b2c3d4e5f60",
                       reason: nil, cache: .none, upstream: upstream, via: "source", latencyMicros: 41)
    }

    @Test("the line has query-log.md's fields, AWS's value forms, and parses as JSON")
    func fields() throws {
        let line = record().jsonLine()
        #expect(line.hasSuffix("}}\n"))
        #expect(!line.dropLast().contains("\n"))
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(Set(obj.keys) == ["version", "account_id", "region", "vpc_id", "query_timestamp", "query_name", "query_type",
                                  "query_class", "rcode", "answers", "srcaddr", "srcport", "transport", "srcids", "vpcdns"])
        #expect(obj["version"] as? String == "1.100000")
        #expect(obj["query_timestamp"] as? String == "2026-11-27T20:15:03Z")
        #expect(obj["srcport"] as? String == "40211")
        #expect(obj["query_name"] as? String == "EC2.us-west-2.amazonaws.com.")
        #expect((obj["srcids"] as? [String: Any])?.isEmpty == true)
        let answers = try #require(obj["answers"] as? [[String: String]])
        #expect(answers == [["Rdata": "10.0.1.10", "Type": "A", "Class": "IN"], ["Rdata": "10.0.2.10", "Type": "A", "Class": "IN"]])
        let v = try #require(obj["vpcdns"] as? [String: Any])
        #expect(v["received_at"] as? String == "2026-11-27T20:15:03.123456Z")
        #expect(v["latency_us"] as? Int == 41)
        #expect(v["cache"] as? String == "none")
        #expect(v["upstream"] == nil)
        #expect(v["reason"] == nil)
    }

    @Test("strings are escaped as JSONValue escapes them, timestamps padded, numbers whole")
    func escaping() throws {
        let odd = "a\"b\\c\nd\re\tf\u{01}\u{1F}é😀."
        var r = record()
        r.queryName = .text(odd)
        r.receivedAtMicros = 1_767_225_600_000_007  // 2026-01-01T00:00:00.000007Z
        r.srcPort = 0
        r.latencyMicros = -5
        let line = r.jsonLine()
        var escaped = ""
        JSONValue.writeString(odd, to: &escaped)
        #expect(line.contains(#""query_name":"# + escaped + ","))
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(obj["query_name"] as? String == odd)
        #expect(obj["query_timestamp"] as? String == "2026-01-01T00:00:00Z")
        #expect(obj["srcport"] as? String == "0")
        let v = try #require(obj["vpcdns"] as? [String: Any])
        #expect(v["received_at"] as? String == "2026-01-01T00:00:00.000007Z")
        #expect(v["latency_us"] as? Int == 0)
        #expect(line.hasSuffix(#""latency_us":0}}"# + "\n"))
    }

    @Test("names, addresses and answers written from their wire form equal the text forms, escaped")
    func rawFieldsEqualTextFields() throws {
        var rng = SystemRandomNumberGenerator()
        // Random names: printable and special bytes, upper case from the mask, the root too.
        let alphabet: [UInt8] = Array("abcxyzABCXYZ09-_.\\\";()@$ ~".utf8) + [0, 1, 0x1F, 0x7F, 0x80, 0xC3, 0xFF]
        for n in 0..<2000 {
            var original: [UInt8] = []
            for _ in 0..<(n == 0 ? 0 : Int.random(in: 1...4, using: &rng)) {
                let len = Int.random(in: 1...12, using: &rng)
                original.append(UInt8(len))
                for _ in 0..<len { original.append(alphabet.randomElement(using: &rng)!) }
            }
            original.append(0)
            let name = try DNSName(wire: original)
            let q = DNSQuestion(name: name, type: .a, caseMask: NameCaseMask(originalWire: original))
            var sink = ByteSink()
            JSONBytes.name(.asked(q), to: &sink)
            var viaBytes = sink.withBytes { Array($0) }
            var viaText = ""
            JSONValue.writeString(q.originalNameText, to: &viaText)
            #expect(String(decoding: viaBytes, as: UTF8.self) == viaText, "\(original)")
            var sink2 = ByteSink()
            JSONBytes.name(.domain(name), to: &sink2)
            viaBytes = sink2.withBytes { Array($0) }
            viaText = ""
            JSONValue.writeString(name.text, to: &viaText)
            #expect(String(decoding: viaBytes, as: UTF8.self) == viaText, "\(original)")
        }

        // Random rdata of the types written from bytes: the same text as RDataFormatter, or
        // (malformed rdata, other types) nothing, and then the caller's rdataText.
        func randomName() -> [UInt8] {
            var w: [UInt8] = []
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                let len = Int.random(in: 1...10, using: &rng)
                w.append(UInt8(len))
                for _ in 0..<len { w.append(Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)) }
            }
            return w + [0]
        }
        var fast = 0
        for n in 0..<4000 {
            let type: RRType = [.a, .aaaa, .ns, .cname, .ptr, RRType(39), .mx, .txt, .spf, .srv, .soa][n % 11]
            var rdata: [UInt8]
            switch type {
            case .a: rdata = (0..<(n % 7 == 0 ? 3 : 4)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case .aaaa:
                // Runs of zero groups of every length and place, and IPv4-mapped addresses.
                rdata = (0..<8).flatMap { _ -> [UInt8] in Int.random(in: 0...2, using: &rng) == 0 ? [0, 0] : [UInt8.random(in: 0...255, using: &rng), UInt8.random(in: 0...255, using: &rng)] }
                if n % 13 == 0 { rdata = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 192, 0, 2, UInt8(n % 256)] }
            case .mx: rdata = [UInt8.random(in: 0...255, using: &rng), UInt8.random(in: 0...255, using: &rng)] + randomName()
            case .txt, .spf:
                rdata = []
                for _ in 0..<Int.random(in: 0...3, using: &rng) {
                    let len = Int.random(in: 0...8, using: &rng)
                    rdata.append(UInt8(len))
                    for _ in 0..<len { rdata.append(Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)) }
                }
            default: rdata = randomName()
            }
            if n % 17 == 0 && !rdata.isEmpty { rdata.removeLast() }  // malformed now and then
            var sink = ByteSink()
            if JSONBytes.rdata(type, rdata, to: &sink) {
                fast += 1
                var viaText = ""
                JSONValue.writeString(RDataFormatter.presentation(type: type, rdata: rdata), to: &viaText)
                #expect(sink.withBytes { String(decoding: $0, as: UTF8.self) } == viaText, "\(type) \(rdata)")
            } else {
                #expect(sink.count == 0)
            }
        }
        #expect(fast > 2500, "most random rdata takes the byte path")

        let owner = try DNSName("www.example.com")
        let records = [
            ResourceRecord(name: owner, type: .a, ttl: 60, rdata: [10, 0, 1, 255]),
            ResourceRecord(name: owner, type: .a, ttl: 60, rdata: [0, 0, 0, 0]),
            ResourceRecord(name: owner, type: .a, ttl: 60, rdata: [1, 2, 3]),  // malformed: RFC 3597 form
            ResourceRecord(name: owner, type: .aaaa, ttl: 60, rdata: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]),
            ResourceRecord(name: owner, type: .mx, ttl: 60, rdata: [0, 10, 4] + Array("mail".utf8) + [0]),
            ResourceRecord(name: owner, type: .txt, ttl: 60, rdata: [5] + Array("a\"b\\c".utf8)),
            ResourceRecord(name: owner, type: RRType(65534), rrClass: RRClass(3), ttl: 60, rdata: [1, 2]),
        ]
        for ip in [IPAddress.v4(0x7F00_0001), IPAddress.v4(0xFFFF_FFFF), IPAddress.v4(0), IPAddress("2001:db8::1")!] {
            var raw = record()
            raw.answers = .records(records)
            raw.srcAddr = .ip(ip)
            var text = record()
            text.answers = .text(records.map { ($0.rdataText, $0.type.description, $0.rrClass.description) })
            text.srcAddr = .text(ip.description)
            #expect(raw.jsonLine() == text.jsonLine())
        }
        #expect(record().jsonLine().contains(#""answers":[{"Rdata":"10.0.1.10","Type":"A","Class":"IN"},"#))
    }

    @Test("optional keys appear exactly when they apply")
    func optional() throws {
        let line = record(answers: [], resolverEndpoint: "rslvr-in-0123456789abcdef0", zone: nil, upstream: "127.0.0.1:1054").jsonLine()
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect((obj["srcids"] as? [String: String]) == ["resolver_endpoint": "rslvr-in-0123456789abcdef0"])
        #expect((obj["answers"] as? [Any])?.isEmpty == true)
        let v = try #require(obj["vpcdns"] as? [String: Any])
        #expect(v["zone"] == nil)
        #expect(v["upstream"] as? String == "127.0.0.1:1054")
    }

    @Test("records are written, drops are counted, a rotated file is reopened")
    func writer() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-qlog-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sub/queries.jsonl").path
        let w = try QueryLogWriter(path: path, capacity: 10)
        for i in 0..<15 { w.submit("{\"n\":\(i)}\n") }
        w.flush()
        #expect(w.counts.accepted == 10)
        #expect(w.counts.dropped == 5)
        #expect(w.counts.written == 10)
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        w.submit("{\"n\":\"before\"}\n")
        w.requestReopen()
        w.flush()
        w.submit("{\"n\":\"after\"}\n")
        w.flush()
        let old = try String(contentsOfFile: path + ".1", encoding: .utf8)
        let new = try String(contentsOfFile: path, encoding: .utf8)
        #expect(old.split(separator: "\n").count == 11)
        #expect(new == "{\"n\":\"after\"}\n")
    }

    @Test("after the final flush a record is refused and counted as dropped, never accepted and lost")
    func lateRecordAfterClose() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-qlog-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("queries.jsonl").path
        let w = try QueryLogWriter(path: path)
        #expect(w.submit("{\"n\":1}\n"))
        w.flush(final: true)
        #expect(!w.submit("{\"n\":2}\n"))
        w.flush()
        #expect(w.counts.accepted == 1)
        #expect(w.counts.written == 1)
        #expect(w.counts.dropped == 1)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"n\":1}\n")
    }

    /// The console's tap is called once per flush for as long as the server runs: the stack
    /// under it must not grow with the number of flushes (it grew by two frames per flush when
    /// the closure sat bare in the writer's Mutex: 2,000 frames after 1,000 flushes).
    @Test("the tap is called at the same stack depth at the 1,000th flush as at the first")
    func tapDoesNotDeepen() {
        let w = QueryLogWriter(discardingWithCapacity: 1_000)
        let depths = Mutex<[Int32]>([])
        w.setTap { lines in
            #expect(lines.count == 8)
            var frames = [UnsafeMutableRawPointer?](repeating: nil, count: 50_000)
            let depth = frames.withUnsafeMutableBufferPointer { backtrace($0.baseAddress!, Int32($0.count)) }
            depths.withLock { $0.append(depth) }
        }
        for i in 0..<1_000 {
            #expect(w.submit("{\"n\":\(i % 10)}\n"))
            #expect(w.flush() == 1)
        }
        let d = depths.withLock { $0 }
        #expect(d.count == 1_000)
        #expect(d.first ?? 0 > 0)
        #expect(d.first == d.last, "tap at depth \(d.first ?? -1) on the first flush, \(d.last ?? -1) on the last")
    }
}

/// glibc's `backtrace(3)` (execinfo.h, which the Glibc module does not bring in).
@_silgen_name("backtrace")
private func backtrace(_ buffer: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ size: Int32) -> Int32

@Suite("Query log timestamps")
struct QueryLogTimestampTests {
    @Test("query_timestamp and received_at by arithmetic equal gmtime_r's, leap days and year ends included")
    func dateTimeEqualsGmtime() throws {
        var rng = SystemRandomNumberGenerator()
        let edges: [Int64] = [0, 951_782_400, 951_868_799, 951_868_800, 1_767_225_599, 1_767_225_600, 4_107_542_400, 4_107_628_800,
                              1_795_810_503, 253_402_300_799]  // 1970, 2000-02-29, 2000-03-01, 2026/27, 2100-03-01, 9999-12-31
        let seconds = edges + (0..<20_000).map { _ in Int64.random(in: 0...4_102_444_800, using: &rng) }
        for s in seconds {
            let micros = s * 1_000_000 + Int64.random(in: 0..<1_000_000, using: &rng)
            var sink = ByteSink()
            Timestamp.writeDateTime(seconds: s, to: &sink)
            let text = sink.withBytes { String(decoding: $0, as: UTF8.self) }
            #expect(text + "Z" == Timestamp.iso8601(micros: micros, fraction: false), "\(s)")
        }
        var r = QueryLogRecord(accountID: "1", region: "r", vpcID: "v", receivedAtMicros: 1_795_810_503_000_042, queryName: "a.",
                               queryType: "A", queryClass: "IN", rcode: "NOERROR", answers: [], srcAddr: "127.0.0.1", srcPort: 1,
                               transport: "UDP", resolverEndpoint: nil, decision: "upstream", zone: nil, zoneID: nil, reason: nil,
                               cache: .hit, upstream: nil, via: "source", latencyMicros: 1)
        #expect(r.jsonLine().contains(#""query_timestamp":"2026-11-27T20:15:03Z""#))
        #expect(r.jsonLine().contains(#""received_at":"2026-11-27T20:15:03.000042Z""#))
        r.receivedAtMicros = 951_868_799_999_999
        #expect(r.jsonLine().contains(#""received_at":"2000-02-29T23:59:59.999999Z""#))
    }
}
