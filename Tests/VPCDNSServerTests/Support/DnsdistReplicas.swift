import Foundation

/// What the suites with dnsdist in front of `vpcdns serve` replicas share
/// (`ProxyProtocolServeTests`, `ProxyReloadServeTests` on loopback, `ReplicaNetnsTests` in
/// network namespaces): two VPCs that each have their own answer for `api.svc.internal`, so
/// an answer shows which VPC a replica took the client for; one replica configuration that
/// trusts dnsdist; dnsdist's configuration; and dnsperf's summary.
enum DnsdistReplicas {
    static let alpha = "vpc-0a1fa00000000000a"
    static let beta = "vpc-0be7a00000000000b"
    static let name = "api.svc.internal"
    /// What each VPC's private zone answers for `name` (alpha's until a test changes its zone file).
    static let alphaAnswer = "10.1.0.10"
    static let betaAnswer = "10.2.0.20"

    static let dnsdist = "/usr/bin/dnsdist"
    static let dnsperf = "/usr/bin/dnsperf"

    /// Throws with the fix when dnsdist or dnsperf is not installed (the suites fail, they do not skip).
    static func requireTools() throws {
        for tool in [dnsdist, dnsperf] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw FixtureError("\(tool) is missing: install the Debian packages dnsdist and dnsperf (scripts/install-deps.sh)")
        }
    }

    /// One replica's configuration. Alpha's VPC is 10.1.0.0/16 and beta's 10.2.0.0/16, plus
    /// their `clients` (loopback sources, where the clients cannot live in those ranges).
    /// Alpha's zone is inline unless `alphaZoneFile` names a zone file (the replicas share it,
    /// so a reload test can change it); beta's is always inline.
    static func config(listen: String, upstream: String, queryLog: String, trustedProxies: [String],
                       alphaClients: [String] = [], betaClients: [String] = [],
                       alphaZoneFile: String? = nil, metrics: String? = nil) -> String {
        let alphaRecords = alphaZoneFile.map { "file: \($0)" }
            ?? "records: [{name: \(name), type: A, ttl: 60, values: [\(alphaAnswer)]}]"
        return """
        \(metrics.map { "metrics: \($0)" } ?? "")
        listen: ["\(listen)"]
        upstreams: ["\(upstream)"]
        upstream_timeout_ms: 500
        query_log: \(queryLog)
        threads: 1
        trusted_proxies: [\(trustedProxies.map { "\"\($0)\"" }.joined(separator: ", "))]
        vpcs:
          - {id: \(alpha), region: us-east-1, cidrs: [10.1.0.0/16], clients: [\(alphaClients.joined(separator: ", "))], enable_dns_hostnames: true}
          - {id: \(beta), region: us-east-1, cidrs: [10.2.0.0/16], clients: [\(betaClients.joined(separator: ", "))], enable_dns_hostnames: true}
        hosted_zones:
          - id: Z0A1FA000000000000001
            name: svc.internal
            vpcs: [\(alpha)]
            \(alphaRecords)
          - id: Z0BE7A000000000000002
            name: svc.internal
            vpcs: [\(beta)]
            records: [{name: \(name), type: A, ttl: 60, values: [\(betaAnswer)]}]

        """
    }

    /// Replica `number`: its folder `dir/replicaN`, its query log there and the configuration
    /// `config(log)`, `vpcdns serve` started (inside `namespace` when given) and listening.
    static func startReplica(_ number: Int, in dir: URL, namespace: String? = nil,
                             config: (_ queryLog: String) -> String) async throws -> (log: String, process: ServeProcess) {
        let sub = dir.appendingPathComponent("replica\(number)")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        let log = sub.appendingPathComponent("queries.jsonl").path
        let file = sub.appendingPathComponent("vpcdns.yaml")
        try config(log).write(to: file, atomically: true, encoding: .utf8)
        let p = try ServeProcess(arguments: ["serve", "--config", file.path], directory: sub, namespace: namespace)
        _ = try await p.waitListening(count: 2, timeout: .seconds(30))
        return (log, p)
    }

    /// dnsperf (inside `namespace` when given) asking `server`:`port` for `name A` with
    /// `arguments` (source, rate, bounds), its output in `dir/OUTPUT.out`: its pid and that path.
    static func startDnsperf(server: String, port: Int, _ arguments: [String], dir: URL, output: String = "dnsperf",
                             namespace: String? = nil) throws -> (pid: pid_t, output: String) {
        let queries = dir.appendingPathComponent("queries.txt")
        try "\(name) A\n".write(to: queries, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("\(output).out").path
        let perfArguments = ["-s", server, "-p", "\(port)", "-d", queries.path] + arguments
        let (path, args) = namespace.map { Netns.inNamespace($0, dnsperf, perfArguments) } ?? (dnsperf, perfArguments)
        return (try ChildProcess.spawn(path, args, stdout: out, stderr: out), out)
    }

    /// Alpha's zone file with `api` at `address`.
    static func zone(api address: String) -> String {
        "$ORIGIN svc.internal.\n$TTL 60\napi IN A \(address)\n"
    }

    /// After `delay`, replaces alpha's zone file with one answering `api` (a rename, so no
    /// replica reads half a file) and sends SIGHUP to every replica. A task of its own, so the
    /// reload comes on time however slowly the test's own dig loop runs on a loaded machine.
    static func changeZoneAndReload(after delay: Duration, zoneFile: URL, api: String, replicas: [ServeProcess]) -> Task<Void, any Error> {
        Task {
            try await Task.sleep(for: delay)
            try zone(api: api).write(to: zoneFile, atomically: true, encoding: .utf8)
            for r in replicas { r.signal(SIGHUP) }
        }
    }

    /// True once every replica said it applied a reload.
    static func allReloaded(_ replicas: [ServeProcess]) -> Bool {
        replicas.allSatisfy { $0.standardError.contains("configuration reloaded") }
    }

    /// dnsdist on `listen` (IP:PORT) for the sources in `acl`, round robin over `backends`
    /// (IP:PORT) with PROXY v2 and a health check every second (a backend is down after one
    /// failed check, up again after one good one).
    static func dnsdistConfig(listen: String, acl: [String], backends: [String]) -> String {
        var lines = [
            // Mandatory: otherwise dnsdist asks the host's resolver for its security status.
            "setSecurityPollSuffix(\"\")",
            "setLocal(\"\(listen)\")",
            "setACL({\(acl.map { "\"\($0)\"" }.joined(separator: ", "))})",
            "setServerPolicy(roundrobin)",
        ]
        for (i, backend) in backends.enumerated() {
            lines.append("newServer{address=\"\(backend)\", name=\"replica\(i + 1)\", useProxyProtocol=true, checkInterval=1, maxCheckFailures=1, rise=1}")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// dnsdist in the foreground (inside `namespace` when given) with `dnsdistConfig` written
    /// into `dir`; its output goes to dnsdist.out and dnsdist.err there.
    static func startDnsdist(in dir: URL, listen: String, acl: [String], backends: [String],
                             namespace: String? = nil) throws -> ChildProcess {
        let conf = dir.appendingPathComponent("dnsdist.conf")
        try dnsdistConfig(listen: listen, acl: acl, backends: backends).write(to: conf, atomically: true, encoding: .utf8)
        let arguments = ["--supervised", "--disable-syslog", "-C", conf.path]
        let (path, args) = namespace.map { Netns.inNamespace($0, dnsdist, arguments) } ?? (dnsdist, arguments)
        return try ChildProcess(path, args,
                                stdout: dir.appendingPathComponent("dnsdist.out").path,
                                stderr: dir.appendingPathComponent("dnsdist.err").path)
    }

    /// dnsdist's standard error so far (what it says when it never answers).
    static func dnsdistErrors(in dir: URL) -> String {
        (try? String(contentsOf: dir.appendingPathComponent("dnsdist.err"), encoding: .utf8)) ?? ""
    }
}

/// The summary dnsperf prints at its end.
struct DnsperfSummary {
    let text: String

    init(_ text: String) { self.text = text }

    /// The number after `label` (`Queries sent:`, `Queries completed:`, `Queries lost:`).
    func count(_ label: String) -> Int? {
        text.split(separator: "\n").first { $0.contains(label) }?
            .split(separator: ":").last?.split(separator: " ").first.flatMap { Int($0) }
    }

    var sent: Int? { count("Queries sent:") }
    var completed: Int? { count("Queries completed:") }
    var lost: Int? { count("Queries lost:") }

    /// Waits (bounded, 10 s) for dnsperf `pid` to end, then reads its summary from `path`.
    static func wait(pid: pid_t, output path: String) -> DnsperfSummary {
        var status: Int32 = 0
        var waited = 0
        while waitpid(pid, &status, WNOHANG) == 0 && waited < 1000 { usleep(10_000); waited += 1 }
        return DnsperfSummary((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
    }
}
