import Foundation
import Testing
@testable import VPCDNSServer

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
}
