import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// R18 through the real binary: health checks run by `vpcdns serve` against services the
/// test starts and stops on loopback, answers checked with `dig`, the query log and /metrics.
@Suite("serve: routing policies with real health checks (real binary)", .serialized)
struct RoutingServeTests {
    static let vpc = "vpc-0a11ce0000000001a"
    static let intervalMs = 400
    static let threshold = 2
    /// R18's bound for a flip: `failure_threshold` intervals, plus one for the probe in flight.
    static var flipBound: Duration { .milliseconds(intervalMs * threshold + intervalMs) }
    /// What a loaded machine adds on top (process scheduling, dig's own time, the poll step).
    static let slack = Duration.milliseconds(1500)

    /// A TCP service on loopback the test starts and stops: accepts, answers an HTTP status
    /// (for the HTTP check) and closes.
    final class LoopbackService: Sendable {
        let port: Int
        let status: Atomic<Int>
        private let channel = Mutex<(any Channel)?>(nil)
        init(port: Int, status: Int = 200) {
            self.port = port
            self.status = Atomic(status)
        }

        func setStatus(_ code: Int) { status.store(code, ordering: .relaxed) }

        func start() async throws {
            let status = self
            let ch = try await ServerBootstrap(group: testGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(Responder(status: status)) }
                }
                .bind(host: "127.0.0.1", port: port).get()
            channel.withLock { $0 = ch }
        }

        func stop() async {
            let ch = channel.withLock { c in
                defer { c = nil }
                return c
            }
            try? await ch?.close().get()
        }

        final class Responder: ChannelInboundHandler, Sendable {
            typealias InboundIn = ByteBuffer
            let status: LoopbackService
            init(status: LoopbackService) { self.status = status }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                let code = status.status.load(ordering: .relaxed)
                var b = context.channel.allocator.buffer(capacity: 64)
                b.writeString("HTTP/1.1 \(code) X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                context.writeAndFlush(NIOAny(b), promise: nil)
                context.close(promise: nil)
            }
            func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
        }
    }

    static func config(listen: Int, metrics: Int, upstream: Int, tcpPort: Int, httpPort: Int, tlsPort: Int) -> String {
        """
        listen: ["127.0.0.1:\(listen)"]
        upstreams: ["127.0.0.1:\(upstream)"]
        query_log: logs/queries.jsonl
        metrics: "127.0.0.1:\(metrics)"
        threads: 1
        health_checks:
          - {id: svc, type: TCP, ip: 127.0.0.1, port: \(tcpPort), request_interval_ms: \(intervalMs), failure_threshold: \(threshold)}
          - {id: web, type: HTTP, ip: 127.0.0.1, port: \(httpPort), resource_path: /health, request_interval_ms: \(intervalMs), failure_threshold: \(threshold)}
          - {id: tls, type: HTTPS, ip: 127.0.0.1, port: \(tlsPort), request_interval_ms: \(intervalMs), failure_threshold: \(threshold)}
        vpcs:
          - id: \(vpc)
            region: us-west-2
            cidrs: [10.0.0.0/16]
            clients: [127.0.0.0/8]
            enable_dns_hostnames: true
        hosted_zones:
          - name: routed.internal
            vpcs: [\(vpc)]
            records:
              - {name: f.routed.internal, type: A, ttl: 5, values: [10.0.8.11], set_identifier: primary, failover: PRIMARY, health_check: svc}
              - {name: f.routed.internal, type: A, ttl: 5, values: [10.0.8.12], set_identifier: secondary, failover: SECONDARY}
              - {name: w.routed.internal, type: A, ttl: 5, values: [10.0.8.1], set_identifier: blue, weight: 10, health_check: web}
              - {name: w.routed.internal, type: A, ttl: 5, values: [10.0.8.2], set_identifier: green, weight: 0}
              - {name: m.routed.internal, type: A, ttl: 5, values: [10.0.8.21], set_identifier: m1, multivalue_answer: true, health_check: tls}
              - {name: m.routed.internal, type: A, ttl: 5, values: [10.0.8.22], set_identifier: m2, multivalue_answer: true}

        """
    }

    /// Polls `dig` every 50 ms until the answer is `want`; every reply on the way must be a
    /// NOERROR answer (queries keep being answered while the state changes). The time taken.
    static func waitFor(_ want: String, name: String, server: SocketEndpoint, timeout: Duration) throws -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            let r = try DigRun.query(name, server: server)
            #expect(r.status == "NOERROR", "a query went unanswered while the health state changed: \(r.output)")
            if r.rdata("A") == [want] { return ContinuousClock.now - start }
            usleep(50_000)
        }
        return nil
    }

    @Test("a failover answer flips both ways as a real TCP service stops and starts; HTTP status drives a weighted pair, HTTPS a multivalue group")
    func failoverFlips() async throws {
        let port = try await NSDFixture.freePort()
        let metricsPort = try await NSDFixture.freePort()
        let deadUpstream = try await NSDFixture.freePort()
        let tcp = LoopbackService(port: try await NSDFixture.freePort())
        let http = LoopbackService(port: try await NSDFixture.freePort(), status: 200)
        try await tcp.start()
        try await http.start()
        let serve = try OpsServer()
        defer { serve.stop() }
        // HTTPS: openssl's test server with a self-signed certificate made here (not verified, R18).
        let tlsPort = try await NSDFixture.freePort()
        let dir = serve.directory.path
        let made = try Command.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1",
                                                        "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"], timeout: .seconds(30))
        try #require(made.exitCode == 0, "openssl req: \(made.error)")
        var tls: ChildProcess? = try ChildProcess("/usr/bin/openssl", ["s_server", "-quiet", "-www", "-accept", "127.0.0.1:\(tlsPort)",
                                                                      "-cert", dir + "/cert.pem", "-key", dir + "/key.pem"])
        defer { tls?.stop() }
        try FileManager.default.createDirectory(at: serve.directory.appendingPathComponent("logs"), withIntermediateDirectories: true)
        try serve.write("vpcdns.yaml", Self.config(listen: port, metrics: metricsPort, upstream: deadUpstream, tcpPort: tcp.port, httpPort: http.port,
                                                   tlsPort: tlsPort))
        try serve.start()
        guard await serve.waitForStderr("listening on tcp 127.0.0.1:\(port)") else { throw FixtureError("serve did not start: \(serve.stderr)") }
        let server = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))
        let limit = Self.flipBound + Self.slack

        // Healthy (or not yet checked): the PRIMARY, and the weighted set with weight > 0.
        #expect(try Self.waitFor("10.0.8.11", name: "f.routed.internal", server: server, timeout: .seconds(3)) != nil)
        #expect(try Self.waitFor("10.0.8.1", name: "w.routed.internal", server: server, timeout: .seconds(3)) != nil)
        #expect(await serve.waitForStderr("health check svc (TCP 127.0.0.1:\(tcp.port)) is now healthy", timeout: .seconds(5)))

        // The service goes away: the SECONDARY within the bound, queries answered throughout.
        await tcp.stop()
        let down = try Self.waitFor("10.0.8.12", name: "f.routed.internal", server: server, timeout: limit)
        #expect(down != nil, "no flip to the SECONDARY within \(limit)")
        print("R18 flip to SECONDARY after \(down.map { "\($0)" } ?? "never") (bound \(Self.flipBound) + slack)")
        #expect(await serve.waitForStderr("health check svc (TCP 127.0.0.1:\(tcp.port)) is now unhealthy", timeout: .seconds(2)))
        // Stays there (the memo of local answers must not pin either answer).
        for _ in 0..<5 { #expect(try DigRun.query("f.routed.internal", server: server).rdata("A") == ["10.0.8.12"]) }

        // Back: the PRIMARY again within the bound.
        try await tcp.start()
        let up = try Self.waitFor("10.0.8.11", name: "f.routed.internal", server: server, timeout: limit)
        #expect(up != nil, "no flip back to the PRIMARY within \(limit)")
        print("R18 flip back to PRIMARY after \(up.map { "\($0)" } ?? "never")")

        // HTTP: a 503 makes the weight-10 set unhealthy, so the weight-0 one answers; 200 brings it back.
        http.setStatus(503)
        #expect(try Self.waitFor("10.0.8.2", name: "w.routed.internal", server: server, timeout: limit) != nil, "HTTP 503 did not turn the check unhealthy")
        http.setStatus(302)
        #expect(try Self.waitFor("10.0.8.1", name: "w.routed.internal", server: server, timeout: limit) != nil, "HTTP 302 did not turn the check healthy")

        // HTTPS: both multivalue sets while the TLS server answers; only m2 once it is gone.
        #expect(await serve.waitForStderr("health check tls (HTTPS 127.0.0.1:\(tlsPort)) is now healthy", timeout: .seconds(5)),
                "\(serve.stderr)")
        let both = try DigRun.query("m.routed.internal", server: server).rdata("A").sorted()
        #expect(both == ["10.0.8.21", "10.0.8.22"])
        tls?.stop()
        tls = nil
        #expect(try Self.waitFor("10.0.8.22", name: "m.routed.internal", server: server, timeout: limit) != nil, "HTTPS target gone, set still served")
        for _ in 0..<5 { #expect(try DigRun.query("m.routed.internal", server: server).rdata("A") == ["10.0.8.22"]) }

        // The query log names the chosen set, and the unhealthy PRIMARY.
        let logPath = serve.directory.appendingPathComponent("logs/queries.jsonl").path
        let secondary = await QueryLogFile.wait(logPath) { $0.vpcdns("record_set") == "secondary" }
        #expect(secondary.first?.vpcdns("reason") == "primary-unhealthy")
        let primary = await QueryLogFile.wait(logPath) { $0.vpcdns("record_set") == "primary" }
        #expect(!primary.isEmpty && primary.allSatisfy { $0.vpcdns("reason") == nil })
        #expect(!(await QueryLogFile.wait(logPath) { $0.vpcdns("record_set") == "green" }).isEmpty)
        let multi = await QueryLogFile.wait(logPath) { ($0.vpcdns("record_set") ?? "").contains(",") }
        #expect(Set((multi.first?.vpcdns("record_set") ?? "").split(separator: ",")) == ["m1", "m2"])

        // Metrics: the states and the transitions, both ways.
        let metrics = try Shell.http("http://127.0.0.1:\(metricsPort)/metrics").body
        func value(_ series: String) -> Double? { ServeOpsTests.metric(metrics, series) }
        #expect(value(#"vpcdns_health_check_status{id="svc"}"#) == 1)
        #expect(value(#"vpcdns_health_check_status{id="web"}"#) == 1)
        #expect((value(#"vpcdns_health_check_transitions_total{id="svc",to="unhealthy"}"#) ?? 0) >= 1)
        #expect((value(#"vpcdns_health_check_transitions_total{id="svc",to="healthy"}"#) ?? 0) >= 2)
        #expect((value(#"vpcdns_health_check_transitions_total{id="web",to="unhealthy"}"#) ?? 0) >= 1)
        #expect(value(#"vpcdns_health_check_status{id="tls"}"#) == 0)
        await tcp.stop()
        await http.stop()
    }

    @Test("a reload keeps the state of an unchanged check: an unhealthy PRIMARY stays failed over at once after SIGHUP")
    func reloadKeepsStates() async throws {
        let port = try await NSDFixture.freePort()
        let metricsPort = try await NSDFixture.freePort()
        let deadUpstream = try await NSDFixture.freePort()
        let tcp = LoopbackService(port: try await NSDFixture.freePort())
        let http = LoopbackService(port: try await NSDFixture.freePort())
        let tlsPort = try await NSDFixture.freePort()
        try await http.start()
        let serve = try OpsServer()
        defer { serve.stop() }
        try FileManager.default.createDirectory(at: serve.directory.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let config = Self.config(listen: port, metrics: metricsPort, upstream: deadUpstream, tcpPort: tcp.port, httpPort: http.port, tlsPort: tlsPort)
        try serve.write("vpcdns.yaml", config)
        try serve.start()
        guard await serve.waitForStderr("listening on tcp 127.0.0.1:\(port)") else { throw FixtureError("serve did not start: \(serve.stderr)") }
        let server = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))
        // Nothing listens on the TCP check's port: the SECONDARY once the check decided.
        #expect(try Self.waitFor("10.0.8.12", name: "f.routed.internal", server: server, timeout: Self.flipBound + Self.slack) != nil)
        // A reload with one more record: the check is unchanged, so its state (unhealthy) stays.
        // Reset to "not decided", it would answer the PRIMARY for about two intervals.
        try serve.write("vpcdns.yaml", config + "      - {name: new.routed.internal, type: A, values: [10.0.8.50]}\n")
        serve.signal(SIGHUP)
        #expect(await serve.waitForStderr("configuration reloaded", timeout: .seconds(5)), "\(serve.stderr)")
        #expect(try DigRun.query("new.routed.internal", server: server).rdata("A") == ["10.0.8.50"], "the reload was applied")
        for _ in 0..<5 {
            #expect(try DigRun.query("f.routed.internal", server: server).rdata("A") == ["10.0.8.12"])
            usleep(50_000)
        }
        // A changed definition starts afresh: a new port, where the service now listens.
        try await tcp.start()
        let moved = LoopbackService(port: try await NSDFixture.freePort())
        try await moved.start()
        let changed = config.replacingOccurrences(of: "port: \(tcp.port),", with: "port: \(moved.port),")
        try serve.write("vpcdns.yaml", changed)
        serve.signal(SIGHUP)
        #expect(try Self.waitFor("10.0.8.11", name: "f.routed.internal", server: server, timeout: Self.flipBound + Self.slack) != nil)
        await tcp.stop()
        await moved.stop()
        await http.stop()
    }
}
