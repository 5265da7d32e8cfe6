import Foundation
import Testing
import VPCDNSConfig
import VPCDNSCore
import VPCDNSLogs

@Suite struct LogsTests {
    // MARK: - Reading

    @Test func vpcdnsLogReadsEveryRecordWithItsDecision() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines))
        let (records, result, messages) = readAll([path])
        #expect(result.records == 10 && result.badLines == 0 && result.errors.isEmpty && messages.isEmpty)
        #expect(records.map(\.line) == Fixture.vpcdnsLines.map { String($0.dropLast()) })
        let first = records[0]
        #expect(first.vpcID == Fixture.app && first.queryName == "ec2.us-west-2.amazonaws.com." && first.rcode == "NOERROR")
        #expect(first.answers.map(\.rdata) == ["10.0.1.10", "10.0.2.10"])
        #expect(first.vpcdns?.decision == "endpoint-private-dns" && first.vpcdns?.latencyMicros == 40)
        #expect(first.timeMicros == Fixture.t0)   // the record's second: query_timestamp has no fraction
        #expect(first.srcPort == "40211")
    }

    /// `--decision` accepts every decision the server can write (and rejects others).
    @Test func filterKnowsEveryDecisionKind() {
        for kind in DecisionKind.allCases {
            #expect(LogFilter(decision: kind.rawValue).unknownValue() == nil, "\(kind.rawValue)")
        }
        #expect(LogFilter(decision: "upstreams").unknownValue() != nil)
        #expect(LogFilter(rcode: "NXDOMAIN").unknownValue() == nil && LogFilter(rcode: "NXDOMAINX").unknownValue() != nil)
    }

    @Test func awsRecordsAreAcceptedWithTheirExtraFields() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = try dir.file("aws.jsonl", Fixture.text(Fixture.awsLines))
        let (records, result, messages) = readAll([path])
        #expect(result.records == 4 && result.badLines == 0 && messages.isEmpty)
        #expect(records.allSatisfy { $0.isAWS })
        #expect(records[0].instance == "i-0fedcba9876543210")
        #expect(records[1].srcPort == "53001")     // srcport as an int
        #expect(records[1].timeMicros == LogTime.parseTimestamp("2026-11-27T20:10:01Z")! + 177_000)
        #expect(records[2].resolverEndpoint == "rslvr-in-0123456789abcdef0" && records[2].viaInboundEndpoint)
        #expect(records[3].firewallAction == "BLOCK")
    }

    @Test func gzipIsDetectedByContentIncludingConcatenatedMembers() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let plain = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines))
        // A misleading name on purpose: detection is by the magic bytes.
        let gz = try dir.gzip("q.log", Fixture.text(Fixture.vpcdnsLines))
        #expect(LogFile.isGzip(path: gz) && !LogFile.isGzip(path: plain))
        let a = readAll([plain]), b = readAll([gz])
        #expect(b.result.errors.isEmpty && b.records.map(\.line) == a.records.map(\.line))
        // Two members back to back (cat a.gz b.gz), the second AWS-shaped.
        var both = try dir.gzipBytes(Fixture.text(Fixture.vpcdnsLines))
        both.append(try dir.gzipBytes(Fixture.text(Fixture.awsLines)))
        let cat = dir.path + "/both.gz"
        try both.write(to: URL(fileURLWithPath: cat))
        let c = readAll([cat])
        #expect(c.result.errors.isEmpty && c.records.count == 14 && c.records.last?.firewallAction == "BLOCK")
    }

    @Test func badLinesAreCountedReportedAndSkipped() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        var lines = Array(Fixture.vpcdnsLines[0..<3])
        lines += ["this is not json", "[1,2,3]", #"{"query_name":"x.","query_type":"A","rcode":"NOERROR","vpc_id":"vpc-1"}"#,
                  #"{"query_name":"x.","query_type":"A","rcode":"NOERROR","vpc_id":"vpc-1","query_timestamp":"yesterday"}"#,
                  #"{"version":"1.100000","query_name":"x."#]
        lines += Array(Fixture.vpcdnsLines[3...])
        let path = try dir.file("mixed.jsonl", Fixture.text(lines) + "\n")   // and a trailing empty line
        let (records, result, messages) = readAll([path])
        #expect(result.records == 10 && result.badLines == 5)
        #expect(records.count == 10)
        #expect(messages == [
            "\(path):4: bad record: not JSON (unexpected character at column 1)\n",
            "\(path):5: bad record: not a JSON object\n",
            "\(path):6: bad record: missing query_timestamp\n",
            "\(path):7: bad record: query_timestamp is not an ISO 8601 UTC time: yesterday\n",
            "\(path):8: bad record: not JSON (unterminated string at column 37)\n",
            "\(path): 5 bad line(s) in all\n",
        ])
    }

    @Test func badLineMessagesAreCappedPerFile() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let junk = (0..<30).map { "junk \($0)" }
        let path = try dir.file("junk.jsonl", Fixture.text([Fixture.vpcdnsLines[0]] + junk + [Fixture.vpcdnsLines[1]]))
        let (records, result, messages) = readAll([path])
        #expect(records.count == 2 && result.badLines == 30)
        #expect(messages.count == 21)
        #expect(messages.first == "\(path):2: bad record: not JSON (unexpected character at column 1)\n")
        #expect(messages.last == "\(path): 30 bad line(s) in all\n")
    }

    @Test func unreadableFileIsAnErrorAndTheOthersAreStillRead() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let good = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines))
        let (records, result, _) = readAll([dir.path + "/missing.jsonl", good])
        #expect(records.count == 10)
        #expect(result.errors.count == 1 && result.errors[0].description.hasPrefix(dir.path + "/missing.jsonl: cannot open"))
    }

    @Test func truncatedGzipKeepsTheGoodRecordsAndIsAnError() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let whole = try dir.gzipBytes(Fixture.text(Fixture.vpcdnsLines))
        let path = dir.path + "/cut.gz"
        try whole.prefix(whole.count - 12).write(to: URL(fileURLWithPath: path))   // the trailer and some data gone
        let (records, result, _) = readAll([path])
        #expect(result.errors.count == 1 && result.errors[0].description.hasPrefix(path + ": read error"))
        #expect(records.count >= 1 && records.count <= 10)
    }

    @Test func longLinesAcrossChunksAndNoFinalNewline() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let many = (0..<3000).map { i in Fixture.record(Fixture.app, "n\(i).myservice.internal.", decision: "private-hosted-zone", seconds: Int64(i)) }
        var text = Fixture.text(many)
        text.removeLast()   // no newline after the last record
        let path = try dir.file("many.jsonl", text)
        let (records, result, _) = readAll([path])
        #expect(result.badLines == 0 && records.count == 3000)
        #expect(records.last?.queryName == "n2999.myservice.internal.")
    }

    @Test func lineParserAgreesWithJSONSerializationAndNamesTheProblem() throws {
        // Agreement with Foundation on every fixture line.
        for line in Fixture.vpcdnsLines + Fixture.awsLines {
            let r = try LogRecord.parse(line: String(line.trimmingCharacters(in: .newlines))).get()
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(r.queryName == o["query_name"] as? String && r.vpcID == o["vpc_id"] as? String && r.rcode == o["rcode"] as? String)
            #expect(r.answers.map(\.rdata) == (o["answers"] as? [[String: Any]])?.map { $0["Rdata"] as? String ?? "" })
            #expect(r.vpcdns?.decision == (o["vpcdns"] as? [String: Any])?["decision"] as? String)
        }
        let base = #""query_type":"A","rcode":"NOERROR","vpc_id":"vpc-1","query_timestamp":"2026-11-27T20:15:03Z""#
        // Escapes, whitespace, unknown nested values, repeated keys (the last wins, as in Foundation).
        let ok = try LogRecord.parse(line: #" { "query_name" : "caf\u00e9\"\\\ud83d\ude00.example." , "x":{"y":[1,-2.5e3,true,null,{}]}, "#
                                     + base + #", "vpc_id":"vpc-2", "srcport": 53 } "#).get()
        #expect(ok.queryName == "caf\u{e9}\"\\\u{1F600}.example." && ok.vpcID == "vpc-2" && ok.srcPort == "53" && ok.isAWS)
        func why(_ line: String) -> String? {
            if case .failure(let e) = LogRecord.parse(line: line) { e.why } else { nil }
        }
        #expect(why(#"{"query_name":5,"# + base + "}") == "query_name is not a string")
        #expect(why(#"{"query_name":"a.","answers":"x","# + base + "}") == "answers is not an array")
        #expect(why(#"{"query_name":"a.","answers":[1],"# + base + "}") == "an answer is not an object")
        #expect(why(#"{"query_name":"a.","vpcdns":[],"# + base + "}") == "vpcdns is not an object")
        #expect(why(#"{"query_name":"a.","vpcdns":{"via":"source"},"# + base + "}") == "vpcdns.decision missing")
        #expect(why(#"{"query_name":"a.","# + base + ",}")?.hasPrefix("not JSON") == true)
        #expect(why(#"{"query_name":"a.","# + base + "} x")?.hasPrefix("not JSON (trailing characters") == true)
        #expect(why(#"{"query_name":"a.","# + base + ",\"n\":01}")?.hasPrefix("not JSON") == true)
        #expect(why(#"{"query_name":"a\q.","# + base + "}") == "not JSON (bad escape)")
        #expect(why(#""just a string""#) == "not a JSON object")
        #expect(why("  \t ") == "blank line")
        #expect(why("[1,2") == "not JSON (unterminated array at end of line)")
        #expect(why(#"{"query_name":"a.","vpcdns":{"decision":"upstream"},"# + base + "}") == nil)
    }

    // MARK: - Times, globs, filters

    @Test func timestampsAndAges() {
        let t = LogTime.parseTimestamp("2026-11-27T20:15:03Z")
        #expect(t == 1_795_810_503_000_000)
        #expect(LogTime.parseTimestamp("2026-11-27T20:15:03.177Z") == t! + 177_000)
        #expect(LogTime.parseTimestamp("2026-11-27T20:15:03.123456Z") == t! + 123_456)
        #expect(LogTime.parseTimestamp("2026-11-27T21:15:03+01:00") == t)
        #expect(LogTime.parseTimestamp("1970-01-01T00:00:00Z") == 0)
        #expect(LogTime.parseTimestamp("2026-11-27T20:15:03") == nil)
        #expect(LogTime.parseTimestamp("2026-13-27T20:15:03Z") == nil)
        #expect(LogTime.parseAge("15m") == 900_000_000)
        #expect(LogTime.parseAge("2h") == 7_200_000_000)
        #expect(LogTime.parseAge("1d") == 86_400_000_000)
        #expect(LogTime.parseAge("30s") == 30_000_000)
        #expect(LogTime.parseAge("15") == nil && LogTime.parseAge("m") == nil && LogTime.parseAge("1x") == nil)
        let now: Int64 = 10_000_000_000
        let hourAgo: Int64 = now - 3_600_000_000
        #expect(LogTime.parse("1h", nowMicros: now) == hourAgo)
        #expect(LogTime.parse("2026-11-27T20:15:03Z", nowMicros: now) == t)
    }

    @Test func nameGlobs() {
        #expect(NameGlob("*.myservice.internal").matches("www.MyService.internal."))
        #expect(NameGlob("*.myservice.internal.").matches("www.myservice.internal"))
        #expect(NameGlob("WWW.myservice.internal").matches("www.myservice.internal."))
        #expect(!NameGlob("*.myservice.internal").matches("myservice.internal."))
        #expect(NameGlob("ec?.us-west-2.*").matches("ec2.us-west-2.amazonaws.com."))
        #expect(!NameGlob("ec?.us-west-2.*").matches("ecc2.us-west-2.amazonaws.com."))
        #expect(NameGlob("*").matches("anything."))
    }

    @Test func filterSelectsByEveryOption() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let v = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines))
        let a = try dir.file("aws.jsonl", Fixture.text(Fixture.awsLines))
        func names(_ f: LogFilter) -> [String] { readAll([v, a], filter: f).records.map(\.queryName) }

        #expect(names(LogFilter(vpcID: Fixture.legacy)) == ["ec2.us-west-2.amazonaws.com.", "ec2.us-west-2.amazonaws.com."])
        #expect(names(LogFilter(name: NameGlob("www.myservice.internal"))) == ["www.myservice.internal.", "WWW.MyService.Internal.", "www.myservice.internal."])
        #expect(names(LogFilter(rcode: "nxdomain")) == ["nope.myservice.internal.", "www.myservice.internal.", "db1.myservice.internal.", "bad.example.net."])
        // AWS records have no decision: they never match --decision.
        #expect(names(LogFilter(decision: "upstream")) == ["s3.us-west-2.amazonaws.com.", "ec2.us-west-2.amazonaws.com.",
                                                            "www.myservice.internal.", "ec2.us-west-2.amazonaws.com."])
        let since = LogTime.parseTimestamp("2026-11-27T20:00:07Z")!, until = LogTime.parseTimestamp("2026-11-27T20:10:01Z")!
        #expect(names(LogFilter(sinceMicros: since, untilMicros: until)) == ["www.myservice.internal.", "ec2.us-west-2.amazonaws.com.", "what.example.", "ec2.us-west-2.amazonaws.com."])
        // The ms timestamp 20:10:01.177 is after --until 20:10:01 exclusive... and at/after it inclusive.
        #expect(names(LogFilter(sinceMicros: until, untilMicros: until + 1_000_000)) == ["ec2.us-west-2.amazonaws.com."])
    }

    @Test func filterTableHasOneAlignedRowPerRecord() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let v = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines))
        let a = try dir.file("aws.jsonl", Fixture.text(Fixture.awsLines))
        let recs = readAll([v, a], filter: LogFilter(vpcID: Fixture.app)).records
        let table = RecordTable.render(recs).split(separator: "\n").map(String.init)
        #expect(table.count == 1 + 7)
        #expect(table[0].hasPrefix("TIME"))
        let col = table[0].range(of: "DECISION")!.lowerBound.utf16Offset(in: table[0])
        for row in table.dropFirst() { #expect(row.count > col) }
        #expect(table[1].contains("endpoint-private-dns") && table[1].contains("10.0.1.10 10.0.2.10"))
        #expect(table.last!.contains("2026-11-27T20:10:01.177Z") && table.last!.contains(" - "))
    }

    // MARK: - Summary

    @Test func summaryPerVPC() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let v = try dir.file("q.jsonl", Fixture.text(Fixture.vpcdnsLines))
        let a = try dir.gzip("aws.json.gz", Fixture.text(Fixture.awsLines))
        let s = LogSummary()
        _ = LogReader.read(paths: [v, a], bad: BadLineReporter { _ in }) { s.add($0) }
        let vpcs = Dictionary(uniqueKeysWithValues: s.vpcs.map { ($0.vpcID, $0) })
        #expect(s.vpcs.map(\.vpcID) == ["-", Fixture.legacy, Fixture.app, Fixture.database])
        let app = try #require(vpcs[Fixture.app])
        #expect(app.queries == 7)
        #expect(app.rcodes.map(\.rcode) == ["NOERROR", "NXDOMAIN", "SERVFAIL"] && app.rcodes.map(\.count) == [5, 1, 1])
        #expect(app.privateAnswers == 4 && app.forwarded == 2 && app.other == 0 && app.unknown == 1)
        #expect(app.topNames.first == NameCount(name: "ec2.us-west-2.amazonaws.com.", count: 2))
        #expect(app.topNames.contains(NameCount(name: "www.myservice.internal.", count: 2)))   // case folded
        #expect(app.topNXDOMAIN == [NameCount(name: "nope.myservice.internal.", count: 1)])
        #expect(app.topSERVFAIL == [NameCount(name: "x.corp.example.com.", count: 1)])
        let l = try #require(app.latency)
        #expect(l.count == 6 && l.p50 == 40 && l.p90 == 2_000_000 && l.max == 2_000_000)
        #expect(app.first == "2026-11-27T20:00:00Z" && app.last == "2026-11-27T20:10:01.177Z")
        let db = try #require(vpcs[Fixture.database])
        #expect(db.unknown == 2 && db.forwarded == 2 && db.topNXDOMAIN.count == 3)
        #expect(vpcs["-"]?.other == 1)
        let text = s.text()
        #expect(text.contains("VPC vpc-0a11ce0000000001a (us-west-2)"))
        #expect(text.contains("private 4  forwarded 2  other 0  unknown 1"))
        #expect(!text.contains("Private DNS misses"))
    }

    @Test func latencyPercentilesByNearestRank() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let lines = (1...100).map { Fixture.record(Fixture.database, "n.example.", decision: "upstream", seconds: Int64($0), latency: Int64($0)) }
        let path = try dir.file("lat.jsonl", Fixture.text(lines.reversed()))
        let s = LogSummary()
        _ = LogReader.read(paths: [path], bad: BadLineReporter { _ in }) { s.add($0) }
        #expect(s.vpcs[0].latency == nil ? false : true)
        let l = s.vpcs[0].latency!
        #expect((l.p50, l.p90, l.p99, l.max, l.count) == (50, 90, 99, 100, 100))
    }

    // MARK: - Private DNS misses

    func misses(_ lines: [String]) throws -> [PrivateDNSMiss] {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = try dir.file("m.jsonl", Fixture.text(lines))
        let model = try ConfigLoader.load(path: Fixture.config).get().model
        let s = LogSummary(model: model)
        _ = LogReader.read(paths: [path], bad: BadLineReporter { _ in }) { s.add($0) }
        return try #require(s.misses).results()
    }

    @Test func privateDNSMissesWithTheExampleConfig() throws {
        let m = try misses(Fixture.vpcdnsLines + Fixture.awsLines)
        func find(_ vpc: String, _ name: String) -> PrivateDNSMiss? { m.first { $0.vpcID == vpc && $0.name == name } }

        // legacy asks for EC2: public, because its own endpoint's private DNS needs hostnames on (R2).
        let legacy = try #require(find(Fixture.legacy, "ec2.us-west-2.amazonaws.com."))
        #expect(legacy.answered == "public" && legacy.count == 2 && legacy.reason == "enable_dns_hostnames=false")   // vpcdns + AWS record
        // database asks for app's PHZ name: NXDOMAIN, because the zone is app's (R14).
        let db = try #require(find(Fixture.database, "www.myservice.internal."))
        #expect(db.answered == "NXDOMAIN" && db.reason == "zone myservice.internal belongs to VPC vpc-0a11ce0000000001a")
        #expect(find(Fixture.database, "db1.myservice.internal.")?.reason == "zone myservice.internal belongs to VPC vpc-0a11ce0000000001a")
        // database and EC2: the endpoints are app's and legacy's.
        #expect(find(Fixture.database, "ec2.us-west-2.amazonaws.com.")?.reason
                == "zone ec2.us-west-2.amazonaws.com belongs to VPCs vpc-0a11ce0000000001a, vpc-01e9ac0000000003c")
        // app's own clients get S3 publicly: the endpoint's private DNS is for the inbound endpoint only (R7).
        #expect(find(Fixture.app, "s3.us-west-2.amazonaws.com.")?.reason == "inbound-only")
        // A name missing from app's own PHZ: NXDOMAIN from the zone itself.
        #expect(find(Fixture.app, "nope.myservice.internal.")?.reason.hasPrefix("no such name in private zone myservice.internal") == true)
        // Not misses: private answers (vpcdns decisions or AWS private addresses), names no private zone holds,
        // refusals, forward-rule failures.
        #expect(find(Fixture.app, "ec2.us-west-2.amazonaws.com.") == nil)
        #expect(find(Fixture.app, "www.myservice.internal.") == nil)
        #expect(m.allSatisfy { $0.name != "bad.example.net." && $0.name != "what.example." && $0.name != "x.corp.example.com." })
        #expect(m.first == legacy)   // most frequent first
    }

    @Test func inboundEndpointQueriesAreJudgedAsInbound() throws {
        let lines = [
            // An on-prem client through app's inbound endpoint got S3 publicly: the config would answer it privately.
            Fixture.record(Fixture.app, "s3.us-west-2.amazonaws.com.", answers: ["52.218.0.1"], decision: "upstream",
                           via: "inbound_endpoint", endpoint: "rslvr-in-0123456789abcdef0", seconds: 1),
            // The endpoint names (vpce.amazonaws.com) are public by design: never a miss.
            Fixture.record(Fixture.database, "vpce-0ec2a1b2c3d4e5f60-abcdefgh.ec2.us-west-2.vpce.amazonaws.com.", rcode: "NXDOMAIN",
                           decision: "endpoint-dns-name", seconds: 2),
        ]
        let m = try misses(lines)
        #expect(m.count == 1)
        #expect(m[0].inbound && m[0].reason.hasPrefix("answered privately by s3.us-west-2.amazonaws.com"))
    }

    @Test func resolveAsAVPC() throws {
        let model = try ConfigLoader.load(path: Fixture.config).get().model
        let r = Resolver(model: model)
        let legacy = model.vpcs.firstIndex { $0.id == Fixture.legacy }!
        let d = r.resolve(Question(name: try .init("ec2.us-west-2.amazonaws.com"), type: .a), vpcIndex: legacy, via: .source)
        #expect(d.kind == .upstream && d.reason == .hostnamesOff && d.view.vpcID == Fixture.legacy)
        let app = model.vpcs.firstIndex { $0.id == Fixture.app }!
        let s3 = Question(name: try .init("s3.us-west-2.amazonaws.com"), type: .a)
        #expect(r.resolve(s3, vpcIndex: app, via: .source).reason == .inboundOnly)
        #expect(r.resolve(s3, vpcIndex: app, via: .inboundEndpoint).kind == .endpointPrivateDNS)
    }

    // MARK: - Speed

    @Test func hundredThousandLinesReadQuickly() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let block = Fixture.text(Fixture.vpcdnsLines)
        let path = dir.path + "/big.jsonl"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let chunk = Data(String(repeating: block, count: 1000).utf8)
        for _ in 0..<10 { h.write(chunk) }
        try h.close()
        let model = try ConfigLoader.load(path: Fixture.config).get().model
        let s = LogSummary(model: model)
        let start = Date()
        let result = LogReader.read(paths: [path], bad: BadLineReporter { _ in }) { s.add($0) }
        _ = s.text()
        let elapsed = Date().timeIntervalSince(start)
        #expect(result.records == 100_000)
        #expect(elapsed < 15, "100k lines took \(elapsed)s")
        print("100k-line summary with --config: \(elapsed)s")
    }
}
