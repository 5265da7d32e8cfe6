import Foundation
import VPCDNSCore

/// A real `vpcdns serve` with the console on, for the console's API and browser tests: an
/// app VPC (every loopback source; a private hosted zone) and a legacy VPC (DNS hostnames
/// off, an EC2 endpoint with private DNS) on its own resolver address. Forwarded names go to
/// a closed loopback port, so they end in SERVFAIL quickly (what the chart should show).
final class ConsoleHarness {
    static let appVPC = "vpc-0a11ce0000000001a"
    static let legacyVPC = "vpc-01e9ac0000000003c"

    let dir: URL
    let process: ServeProcess
    let listen: SocketEndpoint
    let legacy: SocketEndpoint
    let console: String
    let token: String?
    let configPath: String
    let queryLogPath: String?

    /// `metricsOnConsole`: `metrics` names the console's address too (one server for both).
    /// `upstream`: forward there (one attempt of up to 4 s, so a slow answer is awaited, not
    /// asked for again) instead of to the closed port.
    init(token: String?, queryLog: Bool, metricsOnConsole: Bool = false, upstream: SocketEndpoint? = nil) async throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-console-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        self.token = token
        let listenPort = try await freePort(host: "127.0.0.1")
        let legacyPort = try await freePort(host: "127.0.30.2")
        listen = SocketEndpoint("127.0.0.1:\(listenPort)")!
        legacy = SocketEndpoint("127.0.30.2:\(legacyPort)")!
        queryLogPath = queryLog ? dir.appendingPathComponent("queries.jsonl").path : nil
        configPath = dir.appendingPathComponent("vpcdns.yaml").path
        var yaml = """
            account_id: "111122223333"
            listen: ["\(listen)"]
            upstreams: ["\(upstream ?? SocketEndpoint("127.0.0.1:9")!)"]
            upstream_timeout_ms: \(upstream == nil ? 300 : 4000)

            """
        if upstream != nil { yaml += "upstream_attempt_timeout_ms: 4000\n" }
        if metricsOnConsole {
            let port = try await freePort(host: "127.0.0.1")
            yaml += "console: \"127.0.0.1:\(port)\"\nmetrics: \"127.0.0.1:\(port)\"\n"
        } else {
            yaml += "console: \"127.0.0.1:0\"\n"
        }
        if let token { yaml += "console_token: \"\(token)\"\n" }
        if let queryLogPath { yaml += "query_log: \"\(queryLogPath)\"\n" }
        yaml += """
            vpcs:
              - id: \(ConsoleHarness.appVPC)
                name: app
                region: us-west-2
                cidrs: [10.0.0.0/16]
                clients: [127.0.0.0/8]
                enable_dns_support: true
                enable_dns_hostnames: true
              - id: \(ConsoleHarness.legacyVPC)
                name: legacy
                region: us-west-2
                cidrs: [10.2.0.0/16]
                resolver_addresses: ["\(legacy)"]
                enable_dns_support: true
                enable_dns_hostnames: false
            endpoints:
              - id: vpce-01e9ac1b2c3d4e5f65
                vpc: \(ConsoleHarness.legacyVPC)
                service: com.amazonaws.us-west-2.ec2
                private_dns_enabled: true
                subnets:
                  - {az: us-west-2a, ipv4: 10.2.1.10}
            hosted_zones:
              - name: myservice.internal
                vpcs: [\(ConsoleHarness.appVPC)]
                records:
                  - {name: www.myservice.internal, type: A, values: [10.0.1.5]}

            """
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        process = try ServeProcess(arguments: ["serve", "--config", configPath], directory: dir)
        _ = try await process.waitListening(count: 4)
        let deadline = ContinuousClock.now + .seconds(10)
        var found: String? = nil
        while ContinuousClock.now < deadline {
            if let line = process.standardError.split(separator: "\n").first(where: { $0.hasPrefix("console on http://") }) {
                found = String(line.dropFirst("console on ".count))
                break
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard let found else {
            process.stop()
            throw FixtureError("vpcdns serve printed no `console on http://...` line:\n\(process.standardError)")
        }
        console = found.hasSuffix("/") ? String(found.dropLast()) : found
    }

    deinit {
        process.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    struct HTTPResult {
        var status: Int
        var body: String
        var headers: String
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] }
    }

    /// `curl` (bounded) to the console; `bearer` nil sends no Authorization header.
    func get(_ pathAndQuery: String, bearer: String? = nil, maxTime: Int = 5) throws -> HTTPResult {
        let body = dir.appendingPathComponent("body-\(UUID().uuidString)").path
        let head = dir.appendingPathComponent("head-\(UUID().uuidString)").path
        var args = ["-sS", "--max-time", "\(maxTime)", "-o", body, "-D", head, "-w", "%{http_code}"]
        if let bearer { args += ["-H", "Authorization: Bearer \(bearer)"] }
        args.append(console + pathAndQuery)
        let r = try Command.run("/usr/bin/curl", args, timeout: .seconds(maxTime + 5))
        defer {
            try? FileManager.default.removeItem(atPath: body)
            try? FileManager.default.removeItem(atPath: head)
        }
        return HTTPResult(status: Int(r.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1,
                          body: (try? String(contentsOfFile: body, encoding: .utf8)) ?? "",
                          headers: (try? String(contentsOfFile: head, encoding: .utf8)) ?? "")
    }

    /// Authorized `get`.
    func api(_ pathAndQuery: String) throws -> HTTPResult { try get(pathAndQuery, bearer: token) }

    /// Polls `/api/queries` (bounded) until `count` records match `query`.
    func waitRecords(_ query: String, count: Int, timeout: Duration = .seconds(5)) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + timeout
        var last: [[String: Any]] = []
        while ContinuousClock.now < deadline {
            last = try api("/api/queries?\(query)").json?["records"] as? [[String: Any]] ?? []
            if last.count >= count { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FixtureError("/api/queries?\(query) had \(last.count) of \(count) records after \(timeout)")
    }
}

extension Dictionary where Key == String, Value == Any {
    func str(_ key: String) -> String? { self[key] as? String }
    var vpcdnsDecision: String? { (self["vpcdns"] as? [String: Any])?["decision"] as? String }
}
