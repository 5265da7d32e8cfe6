import Foundation
import Synchronization
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// A zone signed at test time: keys from `ldns-keygen` (ECDSA P-256), signed by
/// `ldns-signzone` with NSEC3, valid from a day ago for 30 days.
struct SignedZone {
    let origin: String
    /// The signed zone file, for NSD.
    let text: String
    /// The key-signing key's DNSKEY record as `ldns-keygen` wrote it.
    let kskRecord: String
    let directory: URL

    static func sh(_ script: String) throws -> String {
        let r = try Command.run("/bin/sh", ["-c", script], timeout: .seconds(30))
        guard r.exitCode == 0, !r.timedOut else { throw FixtureError("`\(script)` failed (\(r.exitCode)): \(r.error)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `YYYYMMDD` of now plus `days`, UTC (ldns-signzone's -i / -e format).
    static func day(_ days: Int) -> String {
        let f = DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyyMMdd"
        return f.string(from: Date().addingTimeInterval(Double(days) * 86_400))
    }

    static func sign(origin: String, zone: String, in directory: URL) throws -> SignedZone {
        let dir = directory.path
        try zone.write(to: directory.appendingPathComponent("\(origin).zone"), atomically: true, encoding: .utf8)
        let zsk = try sh("cd '\(dir)' && ldns-keygen -a ECDSAP256SHA256 \(origin)")
        let ksk = try sh("cd '\(dir)' && ldns-keygen -a ECDSAP256SHA256 -k \(origin)")
        _ = try sh("cd '\(dir)' && ldns-signzone -n -i \(day(-1)) -e \(day(30)) -f \(origin).signed \(origin).zone \(zsk) \(ksk)")
        let text = try String(contentsOf: directory.appendingPathComponent("\(origin).signed"), encoding: .utf8)
        let key = try String(contentsOf: directory.appendingPathComponent("\(ksk).key"), encoding: .utf8)
        return SignedZone(origin: origin, text: text, kskRecord: key, directory: directory)
    }

    /// A key-signing key of the same name that signed nothing (a wrong trust anchor).
    func unrelatedKSK() throws -> String {
        let other = try Self.sh("cd '\(directory.path)' && ldns-keygen -a ECDSAP256SHA256 -k \(origin)")
        return try String(contentsOf: directory.appendingPathComponent("\(other).key"), encoding: .utf8)
    }

    /// delv's `-a` file: `trust-anchors { NAME static-key FLAGS PROTO ALG "KEY"; };` for a
    /// DNSKEY line `NAME [TTL] IN DNSKEY FLAGS PROTO ALG KEY ;comment`.
    static func trustAnchors(_ dnskey: String) throws -> String {
        let fields = dnskey.split(separator: ";")[0].split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let at = fields.firstIndex(of: "DNSKEY"), fields.count >= at + 5 else { throw FixtureError("not a DNSKEY line: \(dnskey)") }
        let key = fields[(at + 4)...].joined()
        return "trust-anchors {\n  \(fields[0]) static-key \(fields[at + 1]) \(fields[at + 2]) \(fields[at + 3]) \"\(key)\";\n};\n"
    }
}

extension SignedZone {
    /// Unbound's `trust-anchor:` value for a DNSKEY line: `NAME DNSKEY FLAGS PROTO ALG KEY`.
    static func unboundAnchor(_ dnskey: String) throws -> String {
        let fields = dnskey.split(separator: ";")[0].split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let at = fields.firstIndex(of: "DNSKEY"), fields.count >= at + 5 else { throw FixtureError("not a DNSKEY line: \(dnskey)") }
        return "\(fields[0]) DNSKEY \(fields[(at + 1)...].joined(separator: " "))"
    }
}

/// A validating Unbound on 127.0.0.1 that sends the given zones to NSD (stub zones) and
/// validates them with the given trust anchors: an upstream that sets AD, and that answers
/// SERVFAIL for bogus data unless the query has CD.
final class UnboundFixture: Sendable {
    let endpoint: SocketEndpoint
    let directory: URL
    private let process: ChildProcess

    init(stubs: [String], at nsd: SocketEndpoint, trustAnchors: [String]) async throws {
        let dir = try ServeHarness.makeDirectory("vpcdns-unbound")
        directory = dir
        var lastError: any Error = FixtureError("unbound never started")
        for _ in 0..<3 {
            let port = try await NSDFixture.freePort()
            var conf = """
                server:
                    interface: 127.0.0.1
                    port: \(port)
                    do-ip6: no
                    username: ""
                    chroot: ""
                    directory: "\(dir.path)"
                    pidfile: "\(dir.path)/unbound.pid"
                    use-syslog: no
                    logfile: ""
                    verbosity: 1
                    num-threads: 1
                    do-not-query-localhost: no
                    access-control: 127.0.0.0/8 allow
                    local-zone: "test." nodefault

                """
            for anchor in trustAnchors { conf += "    trust-anchor: \"\(anchor)\"\n" }
            for zone in stubs { conf += "stub-zone:\n    name: \"\(zone)\"\n    stub-addr: \(nsd.ip)@\(nsd.port)\n" }
            let confPath = dir.appendingPathComponent("unbound.conf").path
            try conf.write(toFile: confPath, atomically: true, encoding: .utf8)
            let log = dir.appendingPathComponent("unbound.log").path
            let p = try ChildProcess("/usr/sbin/unbound", ["-d", "-c", confPath], stderr: log)
            let endpoint = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline && p.isRunning {
                if let r = try? DigRun.query(stubs[0], "SOA", server: endpoint), !r.status.isEmpty {
                    self.endpoint = endpoint
                    self.process = p
                    return
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            p.stop()
            lastError = FixtureError("unbound did not answer on \(endpoint): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        try? FileManager.default.removeItem(at: dir)
        throw lastError
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

/// P7 through the real binary: NSD serves a zone signed at test time as vpcdns's upstream on
/// loopback; dig and delv ask vpcdns.
@Suite("serve: DNSSEC passes through (P7), real binary, NSD, dig, delv", .serialized)
struct DNSSECPassThroughTests {
    static let vpc = "vpc-0a11ce0000000001a"

    static let zone = """
        $ORIGIN dnssec.test.
        $TTL 300
        @         IN SOA   ns1.dnssec.test. hostmaster.dnssec.test. 1 3600 600 86400 300
        @         IN NS    ns1.dnssec.test.
        ns1       IN A     192.0.2.53
        www       IN A     192.0.2.10
        other     IN A     192.0.2.11
        tcp       IN A     192.0.2.12
        alias     IN CNAME www.dnssec.test.
        toprivate IN CNAME www.private.internal.
        child     IN NS    ns.child.dnssec.test.
        ns.child  IN A     192.0.2.54
        child     IN DS    12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF

        """

    static let privateZone = """
        $ORIGIN private.internal.
        $TTL 60
        @    IN SOA ns1.private.internal. hostmaster.private.internal. 1 3600 600 86400 60
        www  IN A     10.1.2.3
        up   IN CNAME other.dnssec.test.

        """

    struct Running {
        let signed: SignedZone
        let nsd: NSDFixture
        let serve: OpsServer
        let port: Int
        let metricsPort: Int
        var server: SocketEndpoint { SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port)) }

        func dig(_ name: String, _ type: String = "A", _ options: String...) throws -> DigRun.Result {
            try DigRun.query(name, type, server: server, options: options)
        }

        func metrics() throws -> String { try Shell.http("http://127.0.0.1:\(metricsPort)/metrics").body }

        func metric(_ series: String) throws -> Double? { ServeOpsTests.metric(try metrics(), series) }

        /// Upstream queries NSD answered (metric O5): what the upstream saw.
        func upstreamQueries() throws -> Double { try metric(#"vpcdns_upstream_requests_total{target="\#(nsd.endpoint)",result="ok"}"#) ?? 0 }

        func stop() {
            serve.stop()
            nsd.stop()
            try? FileManager.default.removeItem(at: signed.directory)
        }
    }

    /// `upstream`: vpcdns's upstream instead of NSD itself (given NSD's address and the signed zone).
    static func start(extraZones: [String: String] = [:],
                      upstream: ((SocketEndpoint, SignedZone) async throws -> SocketEndpoint)? = nil) async throws -> Running {
        let keys = try ServeHarness.makeDirectory("vpcdns-dnssec")
        let signed = try SignedZone.sign(origin: "dnssec.test", zone: zone, in: keys)
        let nsd = try await NSDFixture(zones: extraZones.merging(["dnssec.test": signed.text]) { a, _ in a })
        let target = try await upstream?(nsd.endpoint, signed) ?? nsd.endpoint
        let serve = try OpsServer()
        let port = try await NSDFixture.freePort()
        let metricsPort = try await NSDFixture.freePort()
        try serve.write("private.internal.zone", privateZone)
        try serve.write("vpcdns.yaml", """
            listen: ["127.0.0.1:\(port)"]
            upstreams: ["\(target)"]
            upstream_timeout_ms: 1500
            threads: 1
            query_log: logs/queries.jsonl
            metrics: "127.0.0.1:\(metricsPort)"
            vpcs:
              - id: \(vpc)
                region: us-west-2
                cidrs: [10.0.0.0/16]
                clients: [127.0.0.0/8]
                enable_dns_hostnames: true
            hosted_zones:
              - name: private.internal
                vpcs: [\(vpc)]
                file: private.internal.zone

            """)
        try serve.start()
        guard await serve.waitForStderr("listening on tcp 127.0.0.1:\(port)") else {
            let err = serve.stderr
            serve.stop()
            nsd.stop()
            throw FixtureError("serve did not start: \(err)")
        }
        return Running(signed: signed, nsd: nsd, serve: serve, port: port, metricsPort: metricsPort)
    }

    /// The records of one section of dig's output, split on white space.
    static func section(_ r: DigRun.Result, _ name: String) -> [[String]] {
        var inside = false
        var out: [[String]] = []
        for line in r.output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(";; ") && line.hasSuffix(" SECTION:") {
                inside = line == ";; \(name) SECTION:"
                continue
            }
            if line.isEmpty { inside = false; continue }
            if inside { out.append(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)) }
        }
        return out
    }

    static let dnssecTypes: Set<String> = ["RRSIG", "NSEC", "NSEC3", "DS"]

    /// Types in the answer and authority sections.
    static func types(_ r: DigRun.Result) -> [String] {
        (section(r, "ANSWER") + section(r, "AUTHORITY")).compactMap { $0.count > 3 ? $0[3] : nil }
    }

    static func hasDNSSEC(_ r: DigRun.Result) -> Bool { types(r).contains(where: dnssecTypes.contains) }

    /// The types the answer's RRSIGs cover.
    static func signed(_ r: DigRun.Result) -> [String] { r.rdata("RRSIG").compactMap { $0.split(separator: " ").first.map(String.init) } }

    @Test("dig +dnssec gets the RRSIGs, dig without none; both served from one cache entry and one upstream query; AD never set")
    func oneEntryBothAskers() async throws {
        let r = try await Self.start()
        defer { r.stop() }

        // DO first: the upstream is asked once, the RRSIG comes back.
        let withDO = try r.dig("www.dnssec.test", "A", "+dnssec")
        #expect(withDO.status == "NOERROR")
        #expect(withDO.rdata("A") == ["192.0.2.10"])
        #expect(Self.signed(withDO) == ["A"], "\(withDO.output)")
        #expect(withDO.edns?.contains("flags: do") == true)
        // Then without DO: the same entry, no DNSSEC record.
        let without = try r.dig("www.dnssec.test", "A")
        #expect(without.rdata("A") == ["192.0.2.10"])
        #expect(!Self.hasDNSSEC(without), "\(without.output)")
        #expect(try r.metric("vpcdns_cache_misses_total") == 1)
        #expect(try r.metric("vpcdns_cache_hits_total") == 1)
        #expect(try r.metric("vpcdns_cache_entries") == 1)
        #expect(try r.upstreamQueries() == 1)

        // The other order: the entry stored for an asker without DO still holds the RRSIG.
        let first = try r.dig("other.dnssec.test", "A")
        #expect(!Self.hasDNSSEC(first))
        let second = try r.dig("other.dnssec.test", "A", "+dnssec")
        #expect(Self.signed(second) == ["A"], "\(second.output)")
        #expect(try r.metric("vpcdns_cache_entries") == 2)
        #expect(try r.upstreamQueries() == 2)

        // Repeated hits (one event loop, so they meet the memo that replays kept replies as
        // bytes): each kind of asker keeps getting its own bytes.
        var all = [withDO, without, first, second]
        for _ in 0..<2 {
            let d = try r.dig("www.dnssec.test", "A", "+dnssec")
            #expect(Self.signed(d) == ["A"], "\(d.output)")
            let d2 = try r.dig("www.dnssec.test", "A", "+dnssec")
            #expect(Self.signed(d2) == ["A"], "\(d2.output)")
            let n = try r.dig("www.dnssec.test", "A")
            #expect(!Self.hasDNSSEC(n) && n.rdata("A") == ["192.0.2.10"], "\(n.output)")
            let n2 = try r.dig("www.dnssec.test", "A")
            #expect(!Self.hasDNSSEC(n2) && n2.rdata("A") == ["192.0.2.10"], "\(n2.output)")
            all += [d, d2, n, n2]
        }
        #expect(try r.upstreamQueries() == 2)
        #expect(try r.metric("vpcdns_cache_hits_total") == 10)

        // AD is never set on a forwarded answer, even to a client that asks with AD.
        all.append(try r.dig("www.dnssec.test", "A", "+dnssec", "+adflag"))
        all.append(try r.dig("alias.dnssec.test", "A", "+dnssec", "+adflag"))
        for d in all {
            #expect(!d.flags.contains("ad"), "\(d.output)")
            #expect(!d.aa)
        }
    }

    @Test("negative answers, CNAMEs, DS and RRSIG questions, TCP and truncation")
    func shapes() async throws {
        let r = try await Self.start()
        defer { r.stop() }

        // NXDOMAIN: the NSEC3 proof and its RRSIGs only with DO.
        let nx = try r.dig("nope.dnssec.test", "A", "+dnssec")
        #expect(nx.status == "NXDOMAIN")
        let nxTypes = Self.types(nx)
        #expect(nxTypes.contains("NSEC3") && nxTypes.contains("RRSIG") && nxTypes.contains("SOA"), "\(nx.output)")
        let nxPlain = try r.dig("nope.dnssec.test", "A")
        #expect(nxPlain.status == "NXDOMAIN")
        #expect(Self.types(nxPlain) == ["SOA"], "\(nxPlain.output)")

        // A CNAME inside the signed zone: both RRsets signed.
        let alias = try r.dig("alias.dnssec.test", "A", "+dnssec")
        #expect(Set(Self.signed(alias)) == ["CNAME", "A"], "\(alias.output)")
        #expect(!Self.hasDNSSEC(try r.dig("alias.dnssec.test", "A")))

        // A question for the DNSSEC type itself keeps that type without DO (RFC 3225 §3),
        // not the RRSIG over it.
        let ds = try r.dig("child.dnssec.test", "DS")
        #expect(ds.rdata("DS").count == 1, "\(ds.output)")
        #expect(ds.rdata("RRSIG").isEmpty)
        let dsDO = try r.dig("child.dnssec.test", "DS", "+dnssec")
        #expect(dsDO.rdata("DS").count == 1 && Self.signed(dsDO) == ["DS"], "\(dsDO.output)")
        let sigs = try r.dig("www.dnssec.test", "RRSIG")
        #expect(Self.signed(sigs) == ["A"], "\(sigs.output)")

        // TCP: the same.
        let tcp = try r.dig("tcp.dnssec.test", "A", "+dnssec", "+tcp")
        #expect(Self.signed(tcp) == ["A"], "\(tcp.output)")
        #expect(!Self.hasDNSSEC(try r.dig("tcp.dnssec.test", "A", "+tcp")))

        // P2: the signed NXDOMAIN does not fit 512 bytes (TC, so the client retries over TCP);
        // the unsigned one does.
        let small = try r.dig("nope.dnssec.test", "A", "+dnssec", "+bufsize=512", "+ignore")
        #expect(small.tc, "\(small.output)")
        #expect(small.edns != nil)
        let smallPlain = try r.dig("nope.dnssec.test", "A", "+bufsize=512", "+ignore")
        #expect(!smallPlain.tc)

        // Private answers are unsigned.
        let priv = try r.dig("www.private.internal", "A", "+dnssec")
        #expect(priv.aa && priv.rdata("A") == ["10.1.2.3"] && !Self.hasDNSSEC(priv), "\(priv.output)")

        // R15, public → private: the upstream's CNAME keeps its RRSIG for a DO asker, the
        // private A is unsigned; without DO no RRSIG. Private → public: the local CNAME is
        // unsigned, the upstream A signed.
        let toPrivate = try r.dig("toprivate.dnssec.test", "A", "+dnssec")
        #expect(toPrivate.rdata("A") == ["10.1.2.3"], "\(toPrivate.output)")
        #expect(Self.signed(toPrivate) == ["CNAME"], "\(toPrivate.output)")
        let toPrivatePlain = try r.dig("toprivate.dnssec.test", "A")
        #expect(toPrivatePlain.rdata("A") == ["10.1.2.3"] && !Self.hasDNSSEC(toPrivatePlain), "\(toPrivatePlain.output)")
        let up = try r.dig("up.private.internal", "A", "+dnssec")
        #expect(up.rdata("A") == ["192.0.2.11"] && Self.signed(up) == ["A"], "\(up.output)")
        #expect(!Self.hasDNSSEC(try r.dig("up.private.internal", "A")))
    }

    @Test("delv validates answers through vpcdns with the zone's key as trust anchor; a wrong anchor does not validate")
    func delvValidates() async throws {
        let r = try await Self.start()
        defer { r.stop() }
        let anchors = r.signed.directory.appendingPathComponent("anchors.conf")
        try SignedZone.trustAnchors(r.signed.kskRecord).write(to: anchors, atomically: true, encoding: .utf8)
        func delv(_ anchorFile: URL, _ name: String, _ type: String = "A") throws -> String {
            let out = try Command.run("/usr/bin/delv", ["@127.0.0.1", "-p", "\(r.port)", "-a", anchorFile.path, "+root=dnssec.test",
                                                        name, type], timeout: .seconds(20))
            return out.output + out.error
        }

        let positive = try delv(anchors, "www.dnssec.test")
        #expect(positive.contains("; fully validated"), "\(positive)")
        #expect(positive.contains("192.0.2.10"))
        let negative = try delv(anchors, "nope.dnssec.test")
        #expect(negative.contains("; negative response, fully validated"), "\(negative)")
        let cname = try delv(anchors, "alias.dnssec.test")
        #expect(cname.contains("; fully validated"), "\(cname)")

        let wrong = r.signed.directory.appendingPathComponent("wrong.conf")
        try SignedZone.trustAnchors(try r.signed.unrelatedKSK()).write(to: wrong, atomically: true, encoding: .utf8)
        let refused = try delv(wrong, "www.dnssec.test")
        #expect(!refused.contains("fully validated"), "\(refused)")
        #expect(refused.contains("resolution failed") || refused.contains("broken trust chain"), "\(refused)")
    }

    @Test("behind a validating upstream (Unbound): its AD is not passed on; CD goes upstream, and an answer fetched with CD never reaches an asker without CD")
    func validatingUpstream() async throws {
        let dir = try ServeHarness.makeDirectory("vpcdns-bogus")
        defer { try? FileManager.default.removeItem(at: dir) }
        // bogus.test: signed, but Unbound is given another key as its anchor, so its data is bogus.
        let bogus = try SignedZone.sign(origin: "bogus.test", zone: """
            $ORIGIN bogus.test.
            $TTL 300
            @    IN SOA ns1.bogus.test. hostmaster.bogus.test. 1 3600 600 86400 300
            @    IN NS  ns1.bogus.test.
            ns1  IN A   192.0.2.53
            www  IN A   192.0.2.66

            """, in: dir)
        let wrongAnchor = try SignedZone.unboundAnchor(try bogus.unrelatedKSK())
        let unbound = Mutex<UnboundFixture?>(nil)
        let r = try await Self.start(extraZones: ["bogus.test": bogus.text]) { nsd, signed in
            let anchor = try SignedZone.unboundAnchor(signed.kskRecord)
            let u = try await UnboundFixture(stubs: ["dnssec.test", "bogus.test"], at: nsd, trustAnchors: [anchor, wrongAnchor])
            unbound.withLock { $0 = u }
            return u.endpoint
        }
        defer {
            r.stop()
            unbound.withLock { $0?.stop() }
        }
        let upstream = try #require(unbound.withLock { $0?.endpoint })

        // The upstream validates and says so with AD; vpcdns passes the records, not the AD.
        let direct = try DigRun.query("www.dnssec.test", "A", server: upstream, options: ["+dnssec"])
        #expect(direct.flags.contains("ad"), "\(direct.output)")
        for options in [["+dnssec"], ["+dnssec", "+adflag"], ["+adflag"], ["+dnssec", "+tcp"]] {
            let via = try DigRun.query("www.dnssec.test", "A", server: r.server, options: options)
            #expect(via.status == "NOERROR" && !via.flags.contains("ad"), "\(options): \(via.output)")
            #expect(Self.signed(via) == (options.contains("+dnssec") ? ["A"] : []), "\(options): \(via.output)")
        }

        // Bogus data: the upstream gives it only to a CD query. vpcdns passes CD on...
        let cd = try r.dig("www.bogus.test", "A", "+cd")
        #expect(cd.status == "NOERROR" && cd.rdata("A") == ["192.0.2.66"], "\(cd.output)")
        #expect(cd.flags.contains("cd"))
        // ...and does not serve that answer (now cached) to an asker without CD, who gets the
        // upstream's own verdict.
        for _ in 0..<2 {
            let plain = try r.dig("www.bogus.test", "A")
            #expect(plain.status == "SERVFAIL" && plain.answers.isEmpty, "\(plain.output)")
        }
        // The CD asker keeps being served, from the cache.
        let hitsBefore = try r.metric("vpcdns_cache_hits_total") ?? 0
        let again = try r.dig("www.bogus.test", "A", "+cd", "+dnssec")
        #expect(again.status == "NOERROR" && Self.signed(again) == ["A"], "\(again.output)")
        #expect(try r.metric("vpcdns_cache_hits_total") == hitsBefore + 1)
    }
}
