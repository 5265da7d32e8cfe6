import Foundation
import NIOCore
import NIOPosix
import VPCDNSCore
@testable import VPCDNSServer

/// Everything one integration test needs around a real `vpcdns serve`:
///
/// - `publicNSD`: NSD on 127.0.0.1 serving the demo "public" zones of `zones/public/` plus
///   a root zone (so names nobody serves are NXDOMAIN, as from a real resolver): the
///   default upstream (R9);
/// - `corpNSD`: a second NSD serving `corp.example.com` and `failover.example`, the target of
///   the app VPC's FORWARD rules; it answers REFUSED for every other zone (P6's "REFUSED →
///   next target" uses that);
/// - `hole`: a UDP socket that never answers (P6's dead upstream);
/// - the config (`ServeHarness.config`) and zone files in a fresh temporary folder, and
///   `vpcdns serve --config ... --listen 127.0.0.1:0`.
///
/// VPC "app" owns the source 127.0.0.1 (so the raw test clients, bound there, ask as app),
/// VPC "database" owns 127.0.0.2; 127.0.0.3 matches nobody. Each VPC also has a resolver
/// address, and app an inbound endpoint, on 127.0.77.x / 127.0.78.x with probed free ports.
/// `deinit` stops every process and removes the folder, also when a test fails early.
final class ServeHarness: Sendable {
    struct Options: Sendable {
        var tcpIdleTimeoutMs = 300
        var upstreamTimeoutMs = 600
        var upstreamAttemptTimeoutMs = 200
        var cacheSize = 1000
        /// `threads:` when set (one event loop makes every query meet the same per-thread memo).
        var threads: Int? = nil
        /// The `--listen` arguments; the first must be an IPv4 loopback one (`listen`).
        var listen = ["127.0.0.1:0"]
    }

    static let appVPC = "vpc-0a11ce0000000001a"
    static let dbVPC = "vpc-0db0000000000002b"
    static let inboundID = "rslvr-in-0123456789abcdef0"
    static let corpRule = "rslvr-rr-0000000000000c0a1"
    static let failoverRule = "rslvr-rr-0000000000000fa11"
    static let deadRule = "rslvr-rr-000000000000dead1"
    static let netRule = "rslvr-rr-00000000000000e71"

    let directory: URL
    let publicNSD: NSDFixture
    let corpNSD: NSDFixture
    let hole: (endpoint: SocketEndpoint, channel: any Channel)
    let process: ServeProcess
    /// The first `--listen` listener (`127.0.0.1:0` unless the options say otherwise), with its real port.
    let listen: SocketEndpoint
    let appResolver: SocketEndpoint
    let appInbound: SocketEndpoint
    let dbResolver: SocketEndpoint
    let queryLogPath: String
    /// How long from spawn to the last `listening on` line.
    let startupTime: Duration

    /// Zones of the "public" NSD: the repository's demo zones and a root zone.
    static func publicZones() throws -> [String: String] {
        var zones: [String: String] = [:]
        for name in ["amazonaws.com", "example.com", "example.net"] {
            let url = VPCDNSBinary.repositoryRoot.appendingPathComponent("zones/public/\(name).zone")
            zones[name] = try String(contentsOf: url, encoding: .utf8)
        }
        zones["."] = """
            $ORIGIN .
            $TTL 300
            @    IN SOA a.root.test. hostmaster.root.test. 1 1800 900 604800 60
            @    IN NS  a.root.test.

            """
        // Upstream answers too big for one 1232-byte UDP reply (P2 and P6's TCP retry).
        zones["bulk.example"] = """
            $ORIGIN bulk.example.
            $TTL 300
            @    IN SOA ns1.bulk.example. hostmaster.bulk.example. 1 3600 600 86400 300
            @    IN NS  ns1.bulk.example.
            ns1  IN A   192.0.2.53
            \((0..<10).map { i in "big  IN TXT \"\(String(repeating: "x", count: 150))\(i)\"" }.joined(separator: "\n"))

            """
        return zones
    }

    static let corpZones: [String: String] = [
        "corp.example.com": """
            $ORIGIN corp.example.com.
            $TTL 120
            @     IN SOA ns1.corp.example.com. hostmaster.corp.example.com. 1 3600 600 86400 120
            @     IN NS  ns1.corp.example.com.
            ns1   IN A   192.0.2.53
            host  IN A   192.0.2.77

            """,
        "failover.example": """
            $ORIGIN failover.example.
            $TTL 120
            @     IN SOA ns1.failover.example. hostmaster.failover.example. 1 3600 600 86400 120
            @     IN NS  ns1.failover.example.
            ns1   IN A   192.0.2.53
            www   IN A   192.0.2.88

            """,
    ]

    /// A TXT RRset far over 1232 bytes (8 strings of 200 characters) at big.myservice.internal.
    static let bigTXT: [String] = (0..<8).map { i in String(repeating: Character(UnicodeScalar(UInt8(97 + i))), count: 200) }

    /// The configuration: the repository's example, shrunk to two VPCs, with the test's
    /// addresses and small timeouts.
    static func config(
        listen: [String], upstream: SocketEndpoint, corp: SocketEndpoint, hole: SocketEndpoint,
        appClients: [String], dbClients: [String],
        appResolver: SocketEndpoint?, appInbound: SocketEndpoint?, dbResolver: SocketEndpoint?,
        queryLog: String, options: Options
    ) -> String {
        func list(_ items: [String]) -> String { "[" + items.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let bigValues = bigTXT.map { "'\"\($0)\"'" }.joined(separator: ", ")
        return """
            account_id: "111122223333"
            listen: \(list(listen))
            upstreams: ["\(upstream)"]
            upstream_timeout_ms: \(options.upstreamTimeoutMs)
            upstream_attempt_timeout_ms: \(options.upstreamAttemptTimeoutMs)
            tcp_idle_timeout_ms: \(options.tcpIdleTimeoutMs)
            cache_size: \(options.cacheSize)
            \(options.threads.map { "threads: \($0)" } ?? "")
            endpoint_dns_ttl: 60
            query_log: \(queryLog)

            vpcs:
              - id: \(appVPC)
                name: app
                region: us-west-2
                cidrs: [10.0.0.0/16]
                clients: \(list(appClients))
                resolver_addresses: \(list(appResolver.map { ["\($0)"] } ?? []))
                inbound_endpoints: \(appInbound.map { "[{id: \(inboundID), addresses: [\"\($0)\"]}]" } ?? "[]")
                enable_dns_support: true
                enable_dns_hostnames: true
                resolver_rules:
                  - {id: \(corpRule), domain: corp.example.com, type: FORWARD, targets: ["\(corp)"]}
                  - {id: \(failoverRule), domain: failover.example, type: FORWARD, targets: ["\(hole)", "\(corp)"]}
                  - {id: \(deadRule), domain: dead.example, type: FORWARD, targets: ["\(hole)"]}
                  - {id: \(netRule), domain: example.net, type: FORWARD, targets: ["\(corp)", "\(upstream)"]}
              - id: \(dbVPC)
                name: database
                region: us-west-2
                cidrs: [10.1.0.0/16]
                clients: \(list(dbClients))
                resolver_addresses: \(list(dbResolver.map { ["\($0)"] } ?? []))
                enable_dns_support: true
                enable_dns_hostnames: true

            endpoints:
              - id: vpce-0ec2a1b2c3d4e5f60
                vpc: \(appVPC)
                service: com.amazonaws.us-west-2.ec2
                type: Interface
                private_dns_enabled: true
                subnets:
                  - {az: us-west-2a, ipv4: 10.0.1.10}
                  - {az: us-west-2b, ipv4: 10.0.2.10}
              - id: vpce-05a3a1b2c3d4e5f61
                vpc: \(appVPC)
                service: com.amazonaws.us-west-2.s3
                type: Gateway
              - id: vpce-05a3a1b2c3d4e5f63
                vpc: \(appVPC)
                service: com.amazonaws.us-west-2.s3
                private_dns_enabled: true
                private_dns_only_for_inbound_resolver_endpoint: true
                dns_record_ip_type: dualstack
                subnets:
                  - {az: us-west-2a, ipv4: 10.0.1.30, ipv6: "2001:db8:a::30"}
                  - {az: us-west-2b, ipv4: 10.0.2.30, ipv6: "2001:db8:b::30"}
              - id: vpce-0db5a1b2c3d4e5f62
                vpc: \(appVPC)
                service: com.amazonaws.vpce.us-west-2.vpce-svc-0d8b5e7a1c2f3a4b5
                dns_suffix: k3x9q2ab
                subnets:
                  - {az: us-west-2a, ipv4: 10.0.1.20}

            endpoint_services:
              - id: vpce-svc-0d8b5e7a1c2f3a4b5
                region: us-west-2
                private_dns_name: db.bank.example.com
                verification: verified
                alias_style: cname

            hosted_zones:
              - name: myservice.internal
                vpcs: [\(appVPC)]
                file: myservice.internal.zone
                records:
                  - name: db.myservice.internal
                    type: A
                    alias: {endpoint: vpce-0db5a1b2c3d4e5f62}
                  - name: ext.myservice.internal
                    type: CNAME
                    values: ['www.example.com.']
                  - name: via.myservice.internal
                    type: CNAME
                    values: ['reports.example.com.']
                  - name: big.myservice.internal
                    type: TXT
                    values: [\(bigValues)]

            """
    }

    /// Writes the PHZ zone file (the repository's) into `directory`.
    static func writeZoneFiles(to directory: URL) throws {
        let src = VPCDNSBinary.repositoryRoot.appendingPathComponent("zones/myservice.internal.zone")
        try String(contentsOf: src, encoding: .utf8)
            .write(to: directory.appendingPathComponent("myservice.internal.zone"), atomically: true, encoding: .utf8)
    }

    static func makeDirectory(_ prefix: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    private init(directory: URL, publicNSD: NSDFixture, corpNSD: NSDFixture, hole: (endpoint: SocketEndpoint, channel: any Channel),
                 process: ServeProcess, listen: SocketEndpoint, appResolver: SocketEndpoint, appInbound: SocketEndpoint,
                 dbResolver: SocketEndpoint, queryLogPath: String, startupTime: Duration) {
        self.directory = directory
        self.publicNSD = publicNSD
        self.corpNSD = corpNSD
        self.hole = hole
        self.process = process
        self.listen = listen
        self.appResolver = appResolver
        self.appInbound = appInbound
        self.dbResolver = dbResolver
        self.queryLogPath = queryLogPath
        self.startupTime = startupTime
    }

    static func start(_ options: Options = Options()) async throws -> ServeHarness {
        _ = try VPCDNSBinary.require()
        let dir = try makeDirectory("vpcdns-serve")
        do {
            let publicNSD = try await NSDFixture(zones: try publicZones())
            let corpNSD = try await NSDFixture(zones: corpZones)
            let hole = try await FakeUpstream.blackHole()
            do {
                try writeZoneFiles(to: dir)
                let queryLog = dir.appendingPathComponent("logs/queries.jsonl").path
                var lastError: any Error = FixtureError("vpcdns serve never started")
                // A probed port can be taken by someone else before vpcdns binds it: retry.
                for _ in 0..<3 {
                    let appResolver = SocketEndpoint(ip: .v4(0x7F00_4D02), port: UInt16(try await freePort(host: "127.0.77.2")))
                    let appInbound = SocketEndpoint(ip: .v4(0x7F00_4D35), port: UInt16(try await freePort(host: "127.0.77.53")))
                    let dbResolver = SocketEndpoint(ip: .v4(0x7F00_4E02), port: UInt16(try await freePort(host: "127.0.78.2")))
                    let text = config(
                        listen: ["127.0.0.1:1053"], upstream: publicNSD.endpoint, corp: corpNSD.endpoint, hole: hole.endpoint,
                        appClients: ["127.0.0.1/32", "::1/128"], dbClients: ["127.0.0.2/32"],
                        appResolver: appResolver, appInbound: appInbound, dbResolver: dbResolver,
                        queryLog: queryLog, options: options)
                    let configPath = dir.appendingPathComponent("vpcdns.yaml")
                    try text.write(to: configPath, atomically: true, encoding: .utf8)
                    let clock = ContinuousClock()
                    let started = clock.now
                    let process = try ServeProcess(
                        arguments: ["serve", "--config", configPath.path] + options.listen.flatMap { ["--listen", $0] }, directory: dir)
                    do {
                        let lines = try await process.waitListening(count: 2 * (options.listen.count + 3))
                        let startup = clock.now - started
                        guard let first = lines.first, first.hasPrefix("listening on udp "),
                              let listen = SocketEndpoint(String(first.dropFirst("listening on udp ".count))), listen.port != 0
                        else { throw FixtureError("unexpected first listener line: \(lines)") }
                        return ServeHarness(directory: dir, publicNSD: publicNSD, corpNSD: corpNSD, hole: hole, process: process,
                                            listen: listen, appResolver: appResolver, appInbound: appInbound,
                                            dbResolver: dbResolver, queryLogPath: queryLog, startupTime: startup)
                    } catch {
                        process.stop()
                        lastError = error
                    }
                }
                throw lastError
            } catch {
                hole.channel.close(promise: nil)
                throw error
            }
        } catch {
            try? FileManager.default.removeItem(at: dir)
            throw error
        }
    }

    /// Stops vpcdns (SIGTERM) and returns its exit code; the NSDs stop in `deinit`.
    @discardableResult
    func stopServer() -> Int32? {
        process.stop()
    }

    deinit {
        process.stop()
        hole.channel.close(promise: nil)
        publicNSD.stop()
        corpNSD.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: - Asking

    /// dig against one of this server's listeners.
    func dig(_ name: String, _ type: String = "A", at server: SocketEndpoint? = nil, source: String? = nil,
             _ options: String...) throws -> DigRun.Result {
        try DigRun.query(name, type, server: server ?? listen, source: source, options: options)
    }

    /// The bound address printed for UDP after `prefix` (`[::1]:`, `0.0.0.0:`...).
    func listener(_ prefix: String) -> SocketEndpoint? {
        process.listeningLines.first { $0.hasPrefix("listening on udp \(prefix)") }
            .flatMap { SocketEndpoint(String($0.dropFirst("listening on udp ".count))) }
    }

    /// The query-log records so far.
    var log: [QueryLogFile.Record] { QueryLogFile.records(queryLogPath) }

    /// Waits (bounded) for the log record of `name` (as asked, with its trailing dot) that
    /// matches `predicate`.
    func logRecords(_ name: String, count: Int = 1, where predicate: @escaping (QueryLogFile.Record) -> Bool = { _ in true }) async -> [QueryLogFile.Record] {
        await QueryLogFile.wait(queryLogPath, count: count) { $0.string("query_name") == name && predicate($0) }
    }
}
