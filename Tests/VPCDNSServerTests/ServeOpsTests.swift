import Foundation
import NIOCore
import Testing
import VPCDNSCore
@testable import VPCDNSServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// O2, O5, P2 and RFC 8482 through the real binary: `vpcdns serve` as a child process on
/// loopback, NSD as its upstream, SIGHUP from the test.
@Suite("serve: reload, metrics, response size, ANY (real binary)", .serialized)
struct ServeOpsTests {
    static let vpc = "vpc-0a11ce0000000001a"

    /// `big` owns 10 TXT records of 200 bytes: ~2.1 KB, over every UDP limit.
    static func zone(www: String) -> String {
        """
        $ORIGIN ops.internal.
        $TTL 300
        @    IN SOA ns1.ops.internal. hostmaster.ops.internal. 1 3600 600 86400 60
        www  IN A   \(www)
        www  IN TXT "hello"
        \((0..<10).map { i in "big  IN TXT \"" + String(repeating: Character(UnicodeScalar(UInt8(97 + i))), count: 200) + "\"" }.joined(separator: "\n"))

        """
    }

    static func config(listen: Int, metrics: Int?, upstream: SocketEndpoint, resolverAddresses: [Int] = [], extra: String = "") -> String {
        """
        listen: ["127.0.0.1:\(listen)"]
        upstreams: ["\(upstream)"]
        upstream_timeout_ms: 1500
        query_log: logs/queries.jsonl
        \(metrics.map { "metrics: \"127.0.0.1:\($0)\"" } ?? "")
        \(extra)
        vpcs:
          - id: \(vpc)
            region: us-west-2
            cidrs: [10.0.0.0/16]
            clients: [127.0.0.0/8]
            resolver_addresses: [\(resolverAddresses.map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", "))]
            enable_dns_hostnames: true
        hosted_zones:
          - name: ops.internal
            vpcs: [\(vpc)]
            file: ops.internal.zone

        """
    }

    struct Running {
        let serve: OpsServer
        let nsd: NSDFixture
        let port: Int
        let metricsPort: Int
        var server: SocketEndpoint { SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port)) }
        func stop() {
            serve.stop()
            nsd.stop()
        }
    }

    /// A port free for UDP and TCP on 127.0.0.1 (the shared probe retries by itself).
    static func freePort() async throws -> Int {
        try await NSDFixture.freePort()
    }

    static func start(resolverAddresses: [Int] = [], www: String = "10.9.0.1") async throws -> Running {
        let nsd = try await NSDFixture()
        let serve = try OpsServer()
        let port = try await Self.freePort()
        let metricsPort = try await Self.freePort()
        try serve.write("ops.internal.zone", zone(www: www))
        try serve.write("vpcdns.yaml", config(listen: port, metrics: metricsPort, upstream: nsd.endpoint, resolverAddresses: resolverAddresses))
        try serve.start()
        let ready = await serve.waitForStderr("listening on tcp 127.0.0.1:\(port)")
        if !ready {
            let err = serve.stderr
            serve.stop()
            nsd.stop()
            throw FixtureError("serve did not start: \(err)")
        }
        return Running(serve: serve, nsd: nsd, port: port, metricsPort: metricsPort)
    }

    static func metric(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    // MARK: - O2

    @Test("SIGHUP with a changed zone file: the new answer")
    func reloadZone() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        #expect(try Dig.query("www.ops.internal", server: r.server).rdata("A").contains("10.9.0.1"))
        try r.serve.write("ops.internal.zone", Self.zone(www: "10.9.0.2"))
        r.serve.signal(SIGHUP)
        #expect(try await eventually { try Dig.query("www.ops.internal", server: r.server).rdata("A").contains("10.9.0.2") })
        #expect(await r.serve.waitForStderr("configuration reloaded"))
    }

    @Test("SIGHUP with a broken config: rejected with FILE:LINE: KEY: message, the old answers keep coming")
    func reloadBroken() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        // An unknown key, and a zone change that must not be applied.
        try r.serve.write("vpcdns.yaml", Self.config(listen: r.port, metrics: r.metricsPort, upstream: r.nsd.endpoint, extra: "listne: oops"))
        try r.serve.write("ops.internal.zone", Self.zone(www: "10.9.0.3"))
        r.serve.signal(SIGHUP)
        #expect(await r.serve.waitForStderr("reload rejected: \(r.serve.configPath):"))
        let line = r.serve.stderr.split(separator: "\n").first { $0.contains("reload rejected:") }.map(String.init) ?? ""
        // FILE:LINE: KEY: message
        let pattern = try Regex("reload rejected: \(NSRegularExpression.escapedPattern(for: r.serve.configPath)):[0-9]+: listne: .+")
        #expect(line.contains(pattern), "\(line)")
        #expect(try Dig.query("www.ops.internal", server: r.server).rdata("A").contains("10.9.0.1"))
        #expect(r.serve.isRunning)
        let m = try Shell.http("http://127.0.0.1:\(r.metricsPort)/metrics")
        #expect(Self.metric(m.body, #"vpcdns_reloads_total{result="rejected"}"#) == 1)
        #expect(Self.metric(m.body, #"vpcdns_reloads_total{result="ok"}"#) == 0)
    }

    @Test("SIGHUP with a broken zone file: rejected naming the zone file and line, the old zone keeps answering")
    func reloadBrokenZone() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        try r.serve.write("ops.internal.zone", Self.zone(www: "10.9.0.4") + "bad  IN A   not-an-address\n")
        r.serve.signal(SIGHUP)
        let zonePath = r.serve.directory.appendingPathComponent("ops.internal.zone").path
        #expect(await r.serve.waitForStderr("reload rejected: "), "\(r.serve.stderr)")
        let line = r.serve.stderr.split(separator: "\n").first { $0.contains("reload rejected:") }.map(String.init) ?? ""
        #expect(line.contains(try Regex("reload rejected: .*ops\\.internal\\.zone:[0-9]+: ")), "\(line) (zone \(zonePath))")
        #expect(try Dig.query("www.ops.internal", server: r.server).rdata("A").contains("10.9.0.1"))
        #expect(r.serve.isRunning)
    }

    @Test("a SIGHUP sent the moment serve says it is listening reloads instead of killing it")
    func earlySighup() async throws {
        for _ in 0..<5 {
            let r = try await Self.start()
            defer { r.stop() }
            r.serve.signal(SIGHUP)
            #expect(await r.serve.waitForStderr("configuration reloaded"), "\(r.serve.stderr)")
            #expect(r.serve.isRunning)
        }
    }

    @Test("SIGHUP adding a resolver address opens it; removing it closes it")
    func reloadListeners() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        let extra = try await Self.freePort()
        let extraServer = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(extra))
        try r.serve.write("vpcdns.yaml", Self.config(listen: r.port, metrics: r.metricsPort, upstream: r.nsd.endpoint, resolverAddresses: [extra]))
        r.serve.signal(SIGHUP)
        #expect(await r.serve.waitForStderr("listening on tcp 127.0.0.1:\(extra)"))
        #expect(try Dig.query("www.ops.internal", server: extraServer).rdata("A").contains("10.9.0.1"))
        #expect(try Dig.query("www.ops.internal", server: extraServer, tcp: true).rdata("A").contains("10.9.0.1"))

        try r.serve.write("vpcdns.yaml", Self.config(listen: r.port, metrics: r.metricsPort, upstream: r.nsd.endpoint))
        r.serve.signal(SIGHUP)
        #expect(await r.serve.waitForStderr("closed tcp 127.0.0.1:\(extra)"))
        #expect(try Dig.query("www.ops.internal", server: extraServer).status == "")  // no answer
        #expect(try Dig.query("www.ops.internal", server: extraServer, tcp: true).status == "")
        #expect(try Dig.query("www.ops.internal", server: r.server).status == "NOERROR")
    }

    @Test("20 SIGHUPs 100 ms apart under a 5 s dnsperf load: no query lost")
    func reloadUnderLoad() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        try r.serve.write("queries.txt", "www.ops.internal A\nbig.ops.internal TXT\nnope.ops.internal A\nwww.example.org A\n")
        let queries = r.serve.directory.appendingPathComponent("queries.txt").path
        let port = r.port
        // Bounded: 5 s at most 2000 queries/s, to loopback only.
        let perf = Task.detached {
            try Shell.run("/usr/bin/dnsperf", ["-s", "127.0.0.1", "-p", "\(port)", "-d", queries, "-l", "5", "-Q", "2000", "-c", "4", "-t", "3"],
                            timeout: 30)
        }
        try await Task.sleep(for: .milliseconds(700))
        for _ in 0..<20 {
            r.serve.signal(SIGHUP)
            try await Task.sleep(for: .milliseconds(100))
        }
        let out = try await perf.value
        #expect(out.status == 0, "\(out.stderr)")
        let lost = out.stdout.split(separator: "\n").first { $0.contains("Queries lost:") }.map(String.init) ?? "no summary: \(out.stdout)"
        #expect(lost.contains("Queries lost:") && lost.split(separator: ":")[1].trimmingCharacters(in: .whitespaces).hasPrefix("0 "), "\(lost)")
        // The load really ran through the reloads: thousands of queries, all completed.
        let sent = out.stdout.split(separator: "\n").first { $0.contains("Queries sent:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        #expect(sent >= 2000, "\(out.stdout)")
        let m = try Shell.http("http://127.0.0.1:\(r.metricsPort)/metrics")
        // Signals sent while one is being handled may be merged by the kernel, so the count is
        // "as many as were applied", each logged once (20 here unless the machine stalls).
        let applied = r.serve.stderr.components(separatedBy: "configuration reloaded").count - 1
        let ok = Self.metric(m.body, #"vpcdns_reloads_total{result="ok"}"#) ?? -1
        #expect(ok == Double(applied) && applied >= 10 && applied <= 20, "ok \(ok), logged \(applied)")
        #expect(Self.metric(m.body, #"vpcdns_reloads_total{result="rejected"}"#) == 0)
        #expect(r.serve.isRunning)
    }

    // MARK: - O5

    @Test("/metrics and /healthz answer with the documented names after some queries")
    func metricsEndpoint() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        _ = try Dig.query("www.ops.internal", server: r.server)
        _ = try Dig.query("nope.ops.internal", server: r.server, tcp: true)
        _ = try Dig.query("www.example.org", server: r.server)
        _ = try Dig.query("www.example.org", server: r.server)  // a cache hit
        // A too-short packet and a response: dropped, counted.
        let client = try await TestUDPClient.make()
        try await client.send(ByteBuffer(bytes: [1, 2, 3]), to: r.server)
        var response = TestDNS.query(id: 9, name: "www.ops.internal")
        response.setInteger(UInt16(0x8100), at: 2)
        try await client.send(response, to: r.server)
        // Counted asynchronously: wait (bounded) until both drops and all 4 log records show.
        #expect(try await eventually {
            let m = try Shell.http("http://127.0.0.1:\(r.metricsPort)/metrics").body
            return Self.metric(m, #"vpcdns_bad_packets_total{kind="too-short"}"#) == 1
                && Self.metric(m, #"vpcdns_bad_packets_total{kind="response"}"#) == 1
                && Self.metric(m, #"vpcdns_querylog_records_total{result="written"}"#) == 4
                && Self.metric(m, "vpcdns_tcp_connections") == 0
        })
        await client.close()

        let h = try Shell.http("http://127.0.0.1:\(r.metricsPort)/healthz")
        #expect(h.status == 200)
        #expect(h.body.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")

        let m = try Shell.http("http://127.0.0.1:\(r.metricsPort)/metrics")
        #expect(m.status == 200)
        let v = Self.vpc
        #expect(Self.metric(m.body, #"vpcdns_dns_requests_total{vpc="\#(v)",proto="udp",decision="private-hosted-zone",rcode="NOERROR"}"#) == 1)
        #expect(Self.metric(m.body, #"vpcdns_dns_requests_total{vpc="\#(v)",proto="tcp",decision="private-hosted-zone",rcode="NXDOMAIN"}"#) == 1)
        #expect(Self.metric(m.body, #"vpcdns_dns_requests_total{vpc="\#(v)",proto="udp",decision="upstream",rcode="NOERROR"}"#) == 2)
        #expect(Self.metric(m.body, "vpcdns_cache_hits_total") == 1)
        #expect(Self.metric(m.body, "vpcdns_cache_misses_total") == 1)
        #expect(Self.metric(m.body, "vpcdns_cache_entries") == 1)
        #expect(Self.metric(m.body, #"vpcdns_upstream_requests_total{target="\#(r.nsd.endpoint)",result="ok"}"#) == 1)
        #expect(Self.metric(m.body, #"vpcdns_bad_packets_total{kind="too-short"}"#) == 1)
        #expect(Self.metric(m.body, #"vpcdns_bad_packets_total{kind="response"}"#) == 1)
        #expect(Self.metric(m.body, "vpcdns_tcp_connections") == 0)
        #expect(Self.metric(m.body, "vpcdns_tcp_connections_refused_total") == 0)
        #expect(Self.metric(m.body, #"vpcdns_querylog_records_total{result="dropped"}"#) == 0)
        #expect(Self.metric(m.body, #"vpcdns_querylog_records_total{result="written"}"#) == 4)
        #expect(Self.metric(m.body, #"vpcdns_reloads_total{result="ok"}"#) == 0)
        #expect(Self.metric(m.body, #"vpcdns_dns_request_duration_seconds_bucket{le="+Inf"}"#) == 4)
        #expect(Self.metric(m.body, "vpcdns_dns_request_duration_seconds_count") == 4)
        #expect(m.body.contains(#"vpcdns_dns_request_duration_seconds_bucket{le="0.00005"}"#))
        #expect(m.body.contains(#"vpcdns_dns_request_duration_seconds_bucket{le="2"}"#))
        #expect(m.body.contains("# TYPE vpcdns_dns_request_duration_seconds histogram"))
        #expect(m.body.contains("# TYPE vpcdns_dns_requests_total counter"))

        #expect(try Shell.http("http://127.0.0.1:\(r.metricsPort)/nope").status == 404)
    }

    @Test("metrics of TCP connections (open, idle one closed to make room) and of an upstream that never answers")
    func tcpAndTimeoutMetrics() async throws {
        // A loopback UDP socket that reads and never replies: the upstream that times out.
        let silent = try await TestUDPClient.make()
        defer { Task { await silent.close() } }
        let silentPort = try #require(silent.channel.localAddress?.port)
        let silentEndpoint = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(silentPort))
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let serve = try OpsServer()
        defer { serve.stop() }
        let port = try await Self.freePort()
        let metricsPort = try await Self.freePort()
        try serve.write("ops.internal.zone", Self.zone(www: "10.9.0.1"))
        try serve.write("vpcdns.yaml", Self.config(listen: port, metrics: metricsPort, upstream: silentEndpoint,
                                                    extra: "max_tcp_connections: 1\nupstream_attempt_timeout_ms: 200")
            .replacingOccurrences(of: "upstream_timeout_ms: 1500", with: "upstream_timeout_ms: 500"))
        try serve.start()
        #expect(await serve.waitForStderr("listening on tcp 127.0.0.1:\(port)"))
        let server = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))

        // At the bound the idle first connection makes room for the second (P1, RFC 7766 §6.2.3).
        let first = try await TestTCPConnection.connect(to: server)
        try await Task.sleep(for: .milliseconds(100))
        let second = try await TestTCPConnection.connect(to: server)
        #expect(await first.waitClosed(timeout: .seconds(2)))
        #expect(second.channel.isActive)
        var m = try Shell.http("http://127.0.0.1:\(metricsPort)/metrics")
        #expect(Self.metric(m.body, "vpcdns_tcp_connections") == 1)
        #expect(Self.metric(m.body, "vpcdns_tcp_connections_refused_total") == 0)
        #expect(Self.metric(m.body, "vpcdns_tcp_connections_evicted_total") == 1)
        await first.close()
        await second.close()

        let r = try Dig.query("www.example.org", server: server)
        #expect(r.status == "SERVFAIL")
        #expect(!silent.inbox.messages.withLock { $0 }.isEmpty)  // it was asked, and kept quiet
        m = try Shell.http("http://127.0.0.1:\(metricsPort)/metrics")
        let timeouts = Self.metric(m.body, #"vpcdns_upstream_requests_total{target="\#(silentEndpoint)",result="timeout"}"#) ?? 0
        #expect(timeouts >= 1)
        #expect(Self.metric(m.body, #"vpcdns_upstream_requests_total{target="\#(silentEndpoint)",result="ok"}"#) == 0)
        #expect(Self.metric(m.body, #"vpcdns_dns_requests_total{vpc="\#(Self.vpc)",proto="udp",decision="upstream",rcode="SERVFAIL"}"#) == 1)
        #expect(try await eventually(.seconds(3)) {
            Self.metric(try Shell.http("http://127.0.0.1:\(metricsPort)/metrics").body, "vpcdns_tcp_connections") == 0
        })
    }

    @Test("a metrics address that cannot be bound: an error naming it, exit 1")
    func metricsBindFailure() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        let other = try OpsServer()
        defer { other.stop() }
        let port = try await Self.freePort()
        try other.write("ops.internal.zone", Self.zone(www: "10.9.0.1"))
        try other.write("vpcdns.yaml", Self.config(listen: port, metrics: r.metricsPort, upstream: r.nsd.endpoint))
        try other.start()
        #expect(await other.waitForExit() == 1)
        #expect(other.stderr.contains("cannot listen on metrics 127.0.0.1:\(r.metricsPort)"), "\(other.stderr)")
    }

    @Test("SIGHUP with a new metrics address: served there, the old one closed")
    func metricsMove() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        let newPort = try await Self.freePort()
        try r.serve.write("vpcdns.yaml", Self.config(listen: r.port, metrics: newPort, upstream: r.nsd.endpoint))
        r.serve.signal(SIGHUP)
        #expect(await r.serve.waitForStderr("metrics closed on http 127.0.0.1:\(r.metricsPort)"))
        #expect(try Shell.http("http://127.0.0.1:\(newPort)/healthz").status == 200)
        #expect(try Shell.http("http://127.0.0.1:\(r.metricsPort)/healthz").status == 0)  // connection refused
    }

    // MARK: - P2 and RFC 8482

    @Test("UDP answers stay within 512 bytes without EDNS, the advertised size with it, capped at 1232; TC set; TCP whole")
    func responseSize() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        for (i, (edns, size, limit)) in [(false, UInt16(512), 512), (true, 1000, 1000), (true, 4096, 1232), (true, 512, 512)].enumerated() {
            let q = TestDNS.query(id: UInt16(100 + i), name: "big.ops.internal", type: TestDNS.typeTXT, edns: edns, ednsSize: size)
            let reply = try #require(try await client.exchange(q, with: r.server))
            let h = try #require(TestDNS.header(reply))
            #expect(reply.readableBytes <= limit, "edns \(edns) size \(size): \(reply.readableBytes) bytes")
            #expect(h.tc, "edns \(edns) size \(size)")
            #expect(h.rcode == 0)
        }
        let tcp = try Dig.query("big.ops.internal", "TXT", server: r.server, tcp: true)
        #expect(tcp.answers.count == 10)
        #expect(!tcp.flags.contains("tc"))
    }

    @Test("ANY: one RRset for a local name; a synthesised HINFO \"RFC8482\" for a forwarded one, nothing sent upstream")
    func anyQueries() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        let local = try Dig.query("www.ops.internal", "ANY", server: r.server)
        #expect(local.status == "NOERROR")
        let types = Set(local.answers.compactMap { $0.count > 3 ? $0[3] : nil })
        #expect(types.count == 1, "\(local.answers)")

        let fwd = try Dig.query("www.example.org", "ANY", server: r.server)
        #expect(fwd.status == "NOERROR")
        #expect(fwd.answers.count == 1)
        #expect(fwd.rdata("HINFO") == ["\"RFC8482\" \"\""], "\(fwd.answers)")
        #expect(!fwd.flags.contains("aa"))
        let m = try Shell.http("http://127.0.0.1:\(r.metricsPort)/metrics")
        #expect(!m.body.contains("vpcdns_upstream_requests_total"))
        // dig may ask ANY over TCP: either transport.
        let answered = ["udp", "tcp"].compactMap {
            Self.metric(m.body, #"vpcdns_dns_requests_total{vpc="\#(Self.vpc)",proto="\#($0)",decision="upstream",rcode="NOERROR"}"#)
        }.reduce(0, +)
        #expect(answered == 1)
        #expect(Self.metric(m.body, "vpcdns_cache_misses_total") == 0)
        // The query log shows the synthesised answer, and that no upstream was asked.
        let logPath = r.serve.directory.appendingPathComponent("logs/queries.jsonl").path
        var record: [String: Any]? = nil
        _ = await eventually(.seconds(3)) {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            record = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .first { $0["query_name"] as? String == "www.example.org." && $0["query_type"] as? String == "ANY" }
            return record != nil
        }
        let rec = try #require(record)
        #expect((rec["answers"] as? [[String: String]]) == [["Rdata": "\"RFC8482\" \"\"", "Type": "HINFO", "Class": "IN"]])
        let v = try #require(rec["vpcdns"] as? [String: Any])
        #expect(v["upstream"] == nil && v["reason"] == nil && v["decision"] as? String == "upstream")
    }
}
