import Foundation
import Testing
import VPCDNSCore

#if canImport(Glibc)
import Glibc
#endif

/// A reload (SIGHUP) that moves `metrics` onto the console's address and off it again, against
/// a real `vpcdns serve` with `console_token` set, talked to with `curl` on 127.0.0.1. On the
/// console's address `/metrics` and `/healthz` answer without the token and nothing more is
/// bound; off it, the token guards every path of the console again and the `metrics` server
/// listens on its own address.
@Suite("Console and metrics: a reload moves metrics onto the console's address and off it (real vpcdns serve)", .serialized)
struct ConsoleMetricsReloadTests {
    static let token = "reload-s3cret"

    /// A temporary directory with a `vpcdns.yaml` rewritten per step; the console on a fixed
    /// port (`metrics` must be able to name it).
    final class Setup {
        let dir: URL
        let configPath: String
        let listen: SocketEndpoint
        let consolePort: Int

        init() async throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-console-reload-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            configPath = dir.appendingPathComponent("vpcdns.yaml").path
            listen = SocketEndpoint("127.0.0.1:\(try await freePort(host: "127.0.0.1"))")!
            consolePort = try await freePort(host: "127.0.0.1")
        }

        deinit { try? FileManager.default.removeItem(at: dir) }

        var console: String { "127.0.0.1:\(consolePort)" }

        /// `metrics` nil: no `metrics` line. `console` nil: the console's own address.
        func write(metrics: String?, console: String? = nil) throws {
            var yaml = """
                listen: ["\(listen)"]
                upstreams: ["127.0.0.1:9"]
                console: "\(console ?? self.console)"
                console_token: "\(ConsoleMetricsReloadTests.token)"

                """
            if let metrics { yaml += "metrics: \"\(metrics)\"\n" }
            yaml += """
                vpcs:
                  - {id: vpc-0a11ce0000000001a, region: us-west-2, cidrs: [10.0.0.0/16], clients: [127.0.0.0/8]}

                """
            try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        }

        func start() async throws -> ServeProcess {
            let p = try ServeProcess(arguments: ["serve", "--config", configPath], directory: dir)
            _ = try await p.waitListening(count: 2)
            guard await p.waitForStderr("console on http://\(console)/") else {
                throw FixtureError("no console line:\n\(p.standardError)")
            }
            return p
        }

        /// `curl` (bounded): the status (0 when nothing answers) and the body.
        func get(_ address: String, _ path: String, bearer: String? = nil) throws -> (status: Int, body: String) {
            precondition(address.hasPrefix("127.0.0.1:"), "tests talk to loopback only")
            var args = ["-s", "--max-time", "5", "-w", "\n%{http_code}"]
            if let bearer { args += ["-H", "Authorization: Bearer \(bearer)"] }
            args.append("http://\(address)\(path)")
            let r = try Command.run("/usr/bin/curl", args, timeout: .seconds(10))
            var lines = r.output.split(separator: "\n", omittingEmptySubsequences: false)
            let code = Int(lines.popLast() ?? "") ?? 0
            return (code, lines.joined(separator: "\n"))
        }
    }

    /// Sockets listening on TCP `port` on 127.0.0.1, from `ss` (this network namespace).
    static func listeners(port: Int) throws -> Int {
        let r = try Command.run("/usr/bin/ss", ["-Hltn", "sport = :\(port)"], timeout: .seconds(5))
        return r.output.split(separator: "\n").filter { $0.contains("127.0.0.1:\(port)") }.count
    }

    /// Reload number `n` (SIGHUP) with `metrics`, which must be accepted.
    static func reload(_ s: Setup, _ p: ServeProcess, metrics: String?, console: String? = nil, n: Int) async throws {
        try s.write(metrics: metrics, console: console)
        p.signal(SIGHUP)
        let done = await p.waitForStderr("configuration reloaded", count: n)
        #expect(done, "reload \(n) not done:\n\(p.standardError)")
        #expect(!p.standardError.contains("reload rejected"), "\(p.standardError)")
    }

    /// The console's address serves `/metrics` and `/healthz` to a scraper without the token,
    /// and the console itself only with it; one socket listens there.
    static func expectMetricsOnConsole(_ s: Setup, _ step: String) throws {
        let metrics = try s.get(s.console, "/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("vpcdns_reloads_total"), "\(step): /metrics without the token: \(metrics.status)")
        let health = try s.get(s.console, "/healthz")
        #expect(health.status == 200 && health.body == "ok\n", "\(step): /healthz without the token: \(health)")
        for path in ["/", "/api/queries", "/api/config"] {
            #expect(try s.get(s.console, path).status == 401, "\(step): \(path) without the token")
            #expect(try s.get(s.console, path, bearer: token).status == 200, "\(step): \(path) with the token")
        }
        #expect(try listeners(port: s.consolePort) == 1, "\(step): sockets listening on the console's port")
    }

    /// Every path of the console needs the token, `/metrics` and `/healthz` included.
    static func expectTokenEverywhere(_ s: Setup, _ step: String) throws {
        for path in ["/metrics", "/healthz", "/", "/api/queries"] {
            #expect(try s.get(s.console, path).status == 401, "\(step): \(path) without the token")
        }
        #expect(try s.get(s.console, "/metrics", bearer: token).status == 200, "\(step): /metrics with the token")
        #expect(try s.get(s.console, "/healthz", bearer: token).body == "ok\n", "\(step): /healthz with the token")
    }

    @Test("metrics on its own address -> the console's -> another of its own -> the console's -> none")
    func moveOntoAndOff() async throws {
        let s = try await Setup()
        let first = "127.0.0.1:\(try await freePort(host: "127.0.0.1"))"
        let second = "127.0.0.1:\(try await freePort(host: "127.0.0.1"))"
        try s.write(metrics: first)
        let p = try await s.start()
        defer { p.stop() }
        #expect(await p.waitForStderr("metrics on http://\(first)/metrics"))
        #expect(try s.get(first, "/metrics").status == 200)
        try Self.expectTokenEverywhere(s, "at start")

        try await Self.reload(s, p, metrics: s.console, n: 1)
        #expect(p.standardError.contains("metrics on http://\(s.console)/metrics"), "\(p.standardError)")
        try Self.expectMetricsOnConsole(s, "moved onto the console")
        #expect(try s.get(first, "/metrics").status == 0, "the old metrics address still answers")

        try await Self.reload(s, p, metrics: second, n: 2)
        #expect(p.standardError.contains("metrics on http://\(second)/metrics"), "\(p.standardError)")
        let own = try s.get(second, "/metrics")
        #expect(own.status == 200 && own.body.contains("vpcdns_reloads_total{result=\"ok\"} 2"), "\(own.status) \(own.body.prefix(200))")
        try Self.expectTokenEverywhere(s, "moved off the console")

        // Back onto it, then `metrics` removed: the console alone, all behind its token.
        try await Self.reload(s, p, metrics: s.console, n: 3)
        try Self.expectMetricsOnConsole(s, "onto the console again")
        #expect(try s.get(second, "/metrics").status == 0)
        try await Self.reload(s, p, metrics: nil, n: 4)
        try Self.expectTokenEverywhere(s, "metrics removed")
        #expect(try Self.listeners(port: s.consolePort) == 1)
        #expect(p.isRunning)
    }

    @Test("started without metrics; a reload changes console (restart needed), a later one puts metrics on the console's address in use")
    func consoleChangedBeforeMetrics() async throws {
        let s = try await Setup()
        try s.write(metrics: nil)
        let p = try await s.start()
        defer { p.stop() }
        // The new console address takes effect at the next restart: the console stays where it is.
        let elsewhere = "127.0.0.1:\(try await freePort(host: "127.0.0.1"))"
        try await Self.reload(s, p, metrics: nil, console: elsewhere, n: 1)
        #expect(p.standardError.contains("console or console_token changed: takes effect at the next restart"))
        try Self.expectTokenEverywhere(s, "console changed in the file")

        // `metrics` now names the address the console listens on: it is the console's.
        try await Self.reload(s, p, metrics: s.console, console: elsewhere, n: 2)
        try Self.expectMetricsOnConsole(s, "metrics on the console in use")
        #expect(try s.get(elsewhere, "/metrics").status == 0, "something listens on the console's address of the file")
    }
}
