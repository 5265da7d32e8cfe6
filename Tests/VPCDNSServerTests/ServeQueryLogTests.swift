#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

/// The query log of the real `vpcdns serve` binary (query-log.md, L1–L3, O3): the server runs
/// as a child process with a temporary config on loopback, beside real NSD upstreams, and the
/// tests read the file it writes.
@Suite("Query log of the running server", .serialized)
struct ServeQueryLogTests {
    static let vpcApp = "vpc-0a11ce0000000001a"
    static let vpcLegacy = "vpc-01e9ac0000000003c"
    static let phzID = "Z0PRIVATEZONE0001"
    static let inboundID = "rslvr-in-0123456789abcdef0"
    static let corpRule = "rslvr-rr-0123456789abcdef0"
    static let deadRule = "rslvr-rr-0123456789abcdef9"
    static let refusedRule = "rslvr-rr-0123456789abcdef8"
    static let ec2Endpoint = "vpce-0ec2a1b2c3d4e5f60"
    static let saasService = "vpce-svc-05aa5000000000001"

    static let amazonZone = """
        $ORIGIN amazonaws.com.
        $TTL 300
        @    IN SOA ns1.amazonaws.com. hostmaster.amazonaws.com. 1 3600 600 86400 300
        @    IN NS  ns1.amazonaws.com.
        ns1  IN A   192.0.2.53
        ec2.eu-west-1 IN A 203.0.113.10

        """
    static let corpZone = """
        $ORIGIN corp.example.com.
        $TTL 300
        @    IN SOA ns1.corp.example.com. hostmaster.corp.example.com. 1 3600 600 86400 300
        @    IN NS  ns1.corp.example.com.
        ns1  IN A   192.0.2.54
        www  IN A   198.51.100.7

        """

    /// One config with every decision kind: app (hostnames on, a PHZ, an EC2 endpoint, a
    /// PrivateLink service, an inbound endpoint, a FORWARD rule to a second NSD and one to a
    /// black hole) and legacy (hostnames off, reached on its own resolver address).
    /// The fixed-address listeners (inbound endpoint, legacy's resolver address) get a port
    /// free at the time unless `fixedPort` names one.
    static func config(queryLog: String, upstream: UInt16, corp: UInt16 = 9, blackHole: UInt16 = 9, fixedPort: UInt16? = nil,
                       extra: String = "") throws -> String {
        let fixedPort = try fixedPort ?? freeLoopbackPort(on: ["127.0.91.53", "127.0.91.2"])
        return """
        account_id: "111122223333"
        upstreams: ["127.0.0.1:\(upstream)"]
        upstream_timeout_ms: 1000
        upstream_attempt_timeout_ms: 500
        query_log: \(queryLog)
        \(extra)
        vpcs:
          - id: \(vpcApp)
            region: us-west-2
            cidrs: [10.0.0.0/16]
            clients: [127.0.0.1/32]
            inbound_endpoints:
              - id: \(inboundID)
                addresses: ["127.0.91.53:\(fixedPort)"]
            enable_dns_hostnames: true
            resolver_rules:
              - {id: \(corpRule), domain: corp.example.com, type: FORWARD, targets: ["127.0.0.1:\(corp)"]}
              - {id: \(deadRule), domain: dead.example.com, type: FORWARD, targets: ["127.0.0.1:\(blackHole)"]}
              - {id: \(refusedRule), domain: refused.example.com, type: FORWARD, targets: ["127.0.0.1:\(corp)"]}
          - id: \(vpcLegacy)
            region: eu-west-1
            cidrs: [10.2.0.0/16]
            resolver_addresses: ["127.0.91.2:\(fixedPort)"]
            enable_dns_hostnames: false
        endpoints:
          - id: \(ec2Endpoint)
            vpc: \(vpcApp)
            service: com.amazonaws.us-west-2.ec2
            dns_suffix: abcd1234
            subnets:
              - {az: us-west-2a, ipv4: 10.0.1.10}
              - {az: us-west-2b, ipv4: 10.0.2.10}
          - id: vpce-05aa5a1b2c3d4e5f64
            vpc: \(vpcApp)
            service: com.amazonaws.vpce.us-west-2.\(saasService)
            subnets:
              - {az: us-west-2a, ipv4: 10.0.1.40}
          - id: vpce-01e9ac1b2c3d4e5f65
            vpc: \(vpcLegacy)
            service: com.amazonaws.eu-west-1.ec2
            subnets:
              - {az: eu-west-1a, ipv4: 10.2.1.10}
        endpoint_services:
          - id: \(saasService)
            region: us-west-2
            private_dns_name: api.saas.example.net
            alias_style: flatten
        hosted_zones:
          - id: \(phzID)
            name: myservice.internal
            vpcs: [\(vpcApp)]
            records:
              - {name: www.myservice.internal, type: A, values: [10.0.5.10]}
              - {name: v6.myservice.internal, type: AAAA, values: ["2001:db8:10::10"]}
              - {name: myservice.internal, type: MX, values: ["10 mail.myservice.internal."]}
              - {name: txt.myservice.internal, type: TXT, values: ['"hello world" "two"']}

        """
    }

    static let awsKeys: Set<String> = ["version", "account_id", "region", "vpc_id", "query_timestamp", "query_name", "query_type",
                                       "query_class", "rcode", "answers", "srcaddr", "srcport", "transport", "srcids", "vpcdns"]

    /// What one record must say. `vpcdns` keys not listed must be absent (except the three
    /// always there: received_at, latency_us, and the ones given).
    struct Expected {
        var what: String
        var name: String
        var type = "A"
        var qclass = "IN"
        var rcode = "NOERROR"
        var answers: [[String: String]] = []
        var vpc = ServeQueryLogTests.vpcApp
        var region = "us-west-2"
        var srcaddr = "127.0.0.1"
        var srcport: UInt16
        var transport = "UDP"
        var resolverEndpoint: String? = nil
        var decision: String
        var zone: String? = nil
        var zoneID: String? = nil
        var reason: String? = nil
        var cache = "none"
        var upstream: String? = nil
        /// `vpcdns.listener`; `ask` fills it in from where it sends the query.
        var listener = ""
        var via = "source"
        var minLatencyUs = 0
    }

    static func a(_ ip: String) -> [String: String] { ["Rdata": ip, "Type": "A", "Class": "IN"] }

    static var secondRegex: Regex<AnyRegexOutput> { try! Regex(#"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"#) }
    static var microRegex: Regex<AnyRegexOutput> { try! Regex(#"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"#) }
    static var latencyRegex: Regex<AnyRegexOutput> { try! Regex(#""latency_us":\d+\}\}$"#) }

    /// Checks one line field by field against query-log.md.
    static func check(_ line: Substring, _ e: Expected, started: Date, ended: Date) throws {
        let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(e.what): not JSON: \(line)")
        let c = Comment(rawValue: "\(e.what): \(line)")
        #expect(Set(o.keys) == awsKeys, c)
        #expect(o["version"] as? String == "1.100000", c)
        #expect(o["account_id"] as? String == "111122223333", c)
        #expect(o["region"] as? String == e.region, c)
        #expect(o["vpc_id"] as? String == e.vpc, c)
        #expect(o["query_name"] as? String == e.name, c)
        #expect(o["query_type"] as? String == e.type, c)
        #expect(o["query_class"] as? String == e.qclass, c)
        #expect(o["rcode"] as? String == e.rcode, c)
        #expect(o["answers"] as? [[String: String]] == e.answers, c)
        #expect(o["srcaddr"] as? String == e.srcaddr, c)
        #expect(o["srcport"] as? String == String(e.srcport), c)
        #expect(o["transport"] as? String == e.transport, c)
        let srcids = try #require(o["srcids"] as? [String: String], c)
        #expect(srcids == (e.resolverEndpoint.map { ["resolver_endpoint": $0] } ?? [:]), c)

        let ts = try #require(o["query_timestamp"] as? String, c)
        #expect(ts.wholeMatch(of: secondRegex) != nil, c)
        let v = try #require(o["vpcdns"] as? [String: Any], c)
        let received = try #require(v["received_at"] as? String, c)
        #expect(received.wholeMatch(of: microRegex) != nil, c)
        #expect(received.prefix(19) + "Z" == ts, "query_timestamp is received_at to the second: \(c)")
        // Within the test's own window (the clock of this machine, to the second).
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        let t = try #require(f.date(from: ts), c)
        #expect(t >= started.addingTimeInterval(-1) && t <= ended.addingTimeInterval(1), c)
        #expect(line.firstMatch(of: latencyRegex) != nil, "latency_us is a whole number: \(c)")
        let latency = try #require(v["latency_us"] as? Int, c)
        #expect(latency >= e.minLatencyUs && latency < 10_000_000, c)

        var keys: Set<String> = ["decision", "cache", "listener", "via", "received_at", "latency_us"]
        #expect(v["listener"] as? String == e.listener, c)
        #expect(v["decision"] as? String == e.decision, c)
        #expect(v["cache"] as? String == e.cache, c)
        #expect(v["via"] as? String == e.via, c)
        if let z = e.zone { keys.insert("zone"); #expect(v["zone"] as? String == z, c) }
        if let z = e.zoneID { keys.insert("zone_id"); #expect(v["zone_id"] as? String == z, c) }
        if let r = e.reason { keys.insert("reason"); #expect(v["reason"] as? String == r, c) }
        if let u = e.upstream { keys.insert("upstream"); #expect(v["upstream"] as? String == u, c) }
        #expect(Set(v.keys) == keys, "vpcdns keys present exactly when applicable: \(c)")
    }

    @Test("one record per decision kind, every field as query-log.md says")
    func everyDecisionKind() async throws {
        let dir = try TempDir("vpcdns-qlog-kinds")
        defer { dir.remove() }
        let nsd = try await NSDFixture(zones: ["example.org": NSDFixture.exampleZone, "amazonaws.com": Self.amazonZone])
        defer { nsd.stop() }
        let corp = try await NSDFixture(zones: ["corp.example.com": Self.corpZone])
        defer { corp.stop() }
        let hole = try await FakeUpstream.blackHole()
        defer { hole.channel.close(promise: nil) }
        let fixed = try freeLoopbackPort(on: ["127.0.91.53", "127.0.91.2"])
        let logPath = dir.path + "/logs/queries.jsonl"  // the folder does not exist yet (cli.md)
        let config = try dir.write("vpcdns.yaml", try Self.config(queryLog: logPath, upstream: nsd.endpoint.port, corp: corp.endpoint.port,
                                                               blackHole: hole.endpoint.port, fixedPort: fixed))
        let server = try QueryLogServer(config: config, directory: dir.path)
        defer { server.stop() }
        let port = server.port
        let client = try BlockingUDPClient()
        let stranger = try BlockingUDPClient(bind: "127.0.0.2")
        let started = Date()
        let nsdUp = "127.0.0.1:\(nsd.endpoint.port)"
        var expected: [Expected] = []
        var id: UInt16 = 100

        /// Sends one query and records what its log line must say.
        func ask(_ e: Expected, _ message: [UInt8]? = nil, via c: BlockingUDPClient? = nil, to ip: String = "127.0.0.1",
                 toPort: UInt16? = nil, qtype: UInt16 = 1, rcode: UInt8 = 0) {
            id += 1
            let m = message ?? LogRawDNS.query(id: id, name: e.name.hasSuffix(".") ? String(e.name.dropLast()) : e.name, type: qtype)
            let reply = (c ?? client).exchange(m, to: ip, port: toPort ?? port)
            #expect(reply != nil, "\(e.what): no reply")
            #expect(reply?.rcode == rcode, "\(e.what): rcode")
            var e = e
            e.listener = "\(ip):\(toPort ?? port)"
            expected.append(e)
        }

        let me = client.port
        ask(Expected(what: "PHZ, case kept", name: "WwW.MyService.Internal.", answers: [Self.a("10.0.5.10")], srcport: me,
                     decision: "private-hosted-zone", zone: "myservice.internal", zoneID: Self.phzID))
        ask(Expected(what: "PHZ MX", name: "myservice.internal.", type: "MX",
                     answers: [["Rdata": "10 mail.myservice.internal.", "Type": "MX", "Class": "IN"]], srcport: me,
                     decision: "private-hosted-zone", zone: "myservice.internal", zoneID: Self.phzID), qtype: 15)
        ask(Expected(what: "PHZ TXT", name: "txt.myservice.internal.", type: "TXT",
                     answers: [["Rdata": #""hello world" "two""#, "Type": "TXT", "Class": "IN"]], srcport: me,
                     decision: "private-hosted-zone", zone: "myservice.internal", zoneID: Self.phzID), qtype: 16)
        ask(Expected(what: "PHZ AAAA", name: "v6.myservice.internal.", type: "AAAA",
                     answers: [["Rdata": "2001:db8:10::10", "Type": "AAAA", "Class": "IN"]], srcport: me,
                     decision: "private-hosted-zone", zone: "myservice.internal", zoneID: Self.phzID), qtype: 28)
        ask(Expected(what: "PHZ NXDOMAIN", name: "nope.myservice.internal.", rcode: "NXDOMAIN", srcport: me,
                     decision: "private-hosted-zone", zone: "myservice.internal", zoneID: Self.phzID), rcode: 3)
        ask(Expected(what: "PHZ unknown type", name: "www.myservice.internal.", type: "TYPE65534", srcport: me,
                     decision: "private-hosted-zone", zone: "myservice.internal", zoneID: Self.phzID), qtype: 65534)
        ask(Expected(what: "endpoint private DNS", name: "ec2.us-west-2.amazonaws.com.", answers: [Self.a("10.0.1.10"), Self.a("10.0.2.10")],
                     srcport: me, decision: "endpoint-private-dns", zone: "ec2.us-west-2.amazonaws.com", zoneID: Self.ec2Endpoint))
        ask(Expected(what: "endpoint DNS name", name: "vpce-0ec2a1b2c3d4e5f60-abcd1234.ec2.us-west-2.vpce.amazonaws.com.",
                     answers: [Self.a("10.0.1.10"), Self.a("10.0.2.10")], srcport: me, decision: "endpoint-dns-name", zoneID: Self.ec2Endpoint))
        ask(Expected(what: "service private DNS", name: "api.saas.example.net.", answers: [Self.a("10.0.1.40")], srcport: me,
                     decision: "service-private-dns", zone: "api.saas.example.net", zoneID: Self.saasService))
        ask(Expected(what: "forward rule", name: "www.corp.example.com.", answers: [Self.a("198.51.100.7")], srcport: me,
                     decision: "forward-rule", zone: "corp.example.com", zoneID: Self.corpRule, cache: "miss",
                     upstream: "127.0.0.1:\(corp.endpoint.port)"))
        ask(Expected(what: "upstream, cache miss", name: "www.example.org.", answers: [Self.a("192.0.2.10")], srcport: me,
                     decision: "upstream", cache: "miss", upstream: nsdUp))
        ask(Expected(what: "upstream, cache hit", name: "www.example.org.", answers: [Self.a("192.0.2.10")], srcport: me,
                     decision: "upstream", cache: "hit"))
        ask(Expected(what: "no VPC match", name: "www.myservice.internal.", rcode: "REFUSED", vpc: "-", region: "-",
                     srcaddr: "127.0.0.2", srcport: stranger.port, decision: "refused", reason: "no-vpc-match", via: "none"),
            via: stranger, rcode: 5)
        id += 1
        ask(Expected(what: "class CH", name: "version.bind.", type: "TXT", qclass: "CH", rcode: "REFUSED", srcport: me,
                     decision: "bad-request", reason: "bad-packet:class"),
            LogRawDNS.query(id: id, name: "version.bind", type: 16, qclass: 3), rcode: 5)
        id += 1
        ask(Expected(what: "opcode STATUS", name: "www.myservice.internal.", rcode: "NOTIMP", srcport: me,
                     decision: "bad-request", reason: "bad-packet:opcode"),
            LogRawDNS.query(id: id, name: "www.myservice.internal", opcode: 2), rcode: 4)
        id += 1
        ask(Expected(what: "unreadable question", name: "-", type: "-", qclass: "-", rcode: "FORMERR", srcport: me,
                     decision: "bad-request", reason: "bad-packet:question"),
            LogRawDNS.unreadableQuestion(id: id), rcode: 1)
        ask(Expected(what: "inbound endpoint", name: "www.myservice.internal.", answers: [Self.a("10.0.5.10")], srcport: me,
                     resolverEndpoint: Self.inboundID, decision: "private-hosted-zone", zone: "myservice.internal", zoneID: Self.phzID,
                     via: "inbound_endpoint"),
            to: "127.0.91.53", toPort: fixed)
        ask(Expected(what: "R2 hostnames off", name: "ec2.eu-west-1.amazonaws.com.", answers: [Self.a("203.0.113.10")],
                     vpc: Self.vpcLegacy, region: "eu-west-1", srcport: me, decision: "upstream", reason: "enable_dns_hostnames=false",
                     cache: "miss", upstream: nsdUp, via: "resolver_address"),
            to: "127.0.91.2", toPort: fixed)
        ask(Expected(what: "upstream timeout", name: "x.dead.example.com.", rcode: "SERVFAIL", srcport: me, decision: "forward-rule",
                     zone: "dead.example.com", zoneID: Self.deadRule, reason: "upstream-timeout", cache: "miss",
                     upstream: "127.0.0.1:\(hole.endpoint.port)", minLatencyUs: 900_000),
            rcode: 2)
        // The corporate NSD does not serve refused.example.com: REFUSED, a failed attempt (P6).
        ask(Expected(what: "upstream error", name: "x.refused.example.com.", rcode: "SERVFAIL", srcport: me, decision: "forward-rule",
                     zone: "refused.example.com", zoneID: Self.refusedRule, reason: "upstream-error", cache: "miss",
                     upstream: "127.0.0.1:\(corp.endpoint.port)"),
            rcode: 2)
        id += 1
        let tcp = BlockingTCP.exchange(LogRawDNS.query(id: id, name: "www.myservice.internal"), port: port)
        #expect(tcp?.reply.rcode == 0, "TCP: reply")
        expected.append(Expected(what: "TCP", name: "www.myservice.internal.", answers: [Self.a("10.0.5.10")], srcport: tcp?.localPort ?? 0,
                                 transport: "TCP", decision: "private-hosted-zone", zone: "myservice.internal", zoneID: Self.phzID,
                                 listener: "127.0.0.1:\(port)"))

        // L1: the records reach the file within a second while serving.
        let deadline = Date().addingTimeInterval(1.5)
        while readJSONLines(logPath).lines.count < expected.count && Date() < deadline { usleep(10_000) }
        #expect(readJSONLines(logPath).lines.count == expected.count, "every record on disk within a second, before shutdown")

        #expect(server.terminate() == 0)
        let ended = Date()
        let counts = try #require(server.closeCounts, "the shutdown line: \(server.stderr)")
        #expect(counts.written == expected.count && counts.dropped == 0)
        #expect(server.stdout.isEmpty, "standard output is left to query_log: -")

        // Queries were sent one after another: received_at orders the records like the queries.
        let lines = readJSONLines(logPath).lines.sorted { a, b in
            func at(_ l: Substring) -> String { String(l.firstMatch(of: try! Regex(#""received_at":"([^"]+)""#))?.output[1].substring ?? "") }
            return at(a) < at(b)
        }
        try #require(lines.count == expected.count, "one line per answered query: \(lines.joined(separator: "\n"))")
        for (line, e) in zip(lines, expected) {
            try Self.check(line, e, started: started, ended: ended)
        }
    }

    @Test("log_cache_hits: false leaves cache hits out, and only them")
    func cacheHitsOff() async throws {
        let dir = try TempDir("vpcdns-qlog-hits")
        defer { dir.remove() }
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let logPath = dir.path + "/q.jsonl"
        let config = try dir.write("vpcdns.yaml", try Self.config(queryLog: logPath, upstream: nsd.endpoint.port, extra: "log_cache_hits: false"))
        let server = try QueryLogServer(config: config, directory: dir.path)
        defer { server.stop() }
        let client = try BlockingUDPClient()
        for i in 0..<3 {
            #expect(client.exchange(LogRawDNS.query(id: UInt16(i), name: "www.example.org"), port: server.port)?.rcode == 0)
        }
        #expect(client.exchange(LogRawDNS.query(id: 9, name: "www.myservice.internal"), port: server.port)?.rcode == 0)
        #expect(server.terminate() == 0)
        let (lines, objects) = readJSONLines(logPath)
        #expect(lines.count == 2, "the miss and the private answer; not the two hits: \(lines)")
        let caches = objects.map { ($0?["vpcdns"] as? [String: Any])?["cache"] as? String }
        #expect(caches == ["miss", "none"])
        #expect(server.closeCounts?.written == 2)
    }

    @Test("SIGHUP with a changed account and VPC id: the next line says the new ones (fields pre-encoded per snapshot)")
    func reloadChangesFixedFields() async throws {
        let dir = try TempDir("vpcdns-qlog-reload")
        defer { dir.remove() }
        let logPath = dir.path + "/q.jsonl"
        let fixed = try freeLoopbackPort(on: ["127.0.91.53", "127.0.91.2"])
        let before = try Self.config(queryLog: logPath, upstream: 9, fixedPort: fixed)
        let config = try dir.write("vpcdns.yaml", before)
        let server = try QueryLogServer(config: config, directory: dir.path)
        defer { server.stop() }
        let client = try BlockingUDPClient()
        // Lower case (the memo's pre-encoded name) and mixed case, before and after.
        #expect(client.exchange(LogRawDNS.query(id: 1, name: "www.myservice.internal"), port: server.port)?.rcode == 0)
        #expect(client.exchange(LogRawDNS.query(id: 2, name: "WWW.myservice.internal"), port: server.port)?.rcode == 0)
        let after = before.replacingOccurrences(of: #"account_id: "111122223333""#, with: #"account_id: "444455556666""#)
            .replacingOccurrences(of: Self.vpcApp, with: "vpc-0b0b0000000000099")
        #expect(after != before && after.contains("vpc-0b0b0000000000099"))
        _ = try dir.write("vpcdns.yaml", after)
        server.signal(SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while !server.stderr.contains("configuration reloaded") && Date() < deadline { usleep(10_000) }
        #expect(server.stderr.contains("configuration reloaded"), "\(server.stderr)")
        #expect(client.exchange(LogRawDNS.query(id: 3, name: "www.myservice.internal"), port: server.port)?.rcode == 0)
        #expect(client.exchange(LogRawDNS.query(id: 4, name: "WWW.myservice.internal"), port: server.port)?.rcode == 0)
        #expect(server.terminate() == 0)
        let (lines, objects) = readJSONLines(logPath)
        try #require(lines.count == 4, "\(lines)")
        let seen = objects.map { o in [o?["account_id"] as? String, o?["region"] as? String, o?["vpc_id"] as? String, o?["query_name"] as? String] }
        #expect(seen == [["111122223333", "us-west-2", Self.vpcApp, "www.myservice.internal."],
                         ["111122223333", "us-west-2", Self.vpcApp, "WWW.myservice.internal."],
                         ["444455556666", "us-west-2", "vpc-0b0b0000000000099", "www.myservice.internal."],
                         ["444455556666", "us-west-2", "vpc-0b0b0000000000099", "WWW.myservice.internal."]])
    }

    @Test("query_log: - writes the records to standard output, and nothing else goes there")
    func standardOutput() async throws {
        let dir = try TempDir("vpcdns-qlog-stdout")
        defer { dir.remove() }
        let config = try dir.write("vpcdns.yaml", try Self.config(queryLog: "\"-\"", upstream: 9))
        let server = try QueryLogServer(config: config, directory: dir.path)
        defer { server.stop() }
        let client = try BlockingUDPClient()
        #expect(client.exchange(LogRawDNS.query(id: 1, name: "www.myservice.internal"), port: server.port)?.rcode == 0)
        #expect(client.exchange(LogRawDNS.query(id: 2, name: "ec2.us-west-2.amazonaws.com"), port: server.port)?.rcode == 0)
        #expect(server.terminate() == 0)
        let out = server.stdout
        let lines = out.split(separator: "\n")
        #expect(out.hasSuffix("\n"))
        #expect(lines.count == 2, "\(out)")
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            #expect(o.map { Set($0.keys) } == Self.awsKeys, "\(l)")
        }
        #expect(lines.first?.contains(#""query_name":"www.myservice.internal.""#) == true)
        #expect(!server.stderr.contains(#""version":"1.100000""#), "records go to standard output only")
        #expect(server.closeCounts?.written == 2)
    }
}
