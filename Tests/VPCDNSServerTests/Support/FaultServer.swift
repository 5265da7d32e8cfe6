import DNSWire
import Foundation
import NIOCore
import VPCDNSCore
@testable import VPCDNSServer

/// The real `vpcdns serve` (`.build/debug/vpcdns`, built by `swift build`) as a child
/// process on a free loopback port, with a temporary config: one VPC (`app`) whose clients
/// are all of 127/8 and a private zone `fuzz.internal` (`www` A 10.9.0.10), plus whatever
/// settings the test passes. Upstreams are always loopback addresses given by the test.
final class FaultServer: @unchecked Sendable {
    let endpoint: SocketEndpoint
    let directory: URL
    let process: ChildProcess

    static let binary = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/vpcdns").path

    static let zone = """
        $ORIGIN fuzz.internal.
        $TTL 300
        @    IN SOA ns1.fuzz.internal. hostmaster.fuzz.internal. 1 3600 600 86400 60
        @    IN NS  ns1.fuzz.internal.
        ns1  IN A   10.9.0.53
        www  IN A   10.9.0.10

        """

    /// `settings`: extra top-level YAML lines (`upstream_timeout_ms: 600`, ...). `fileLimit`
    /// runs the server under `prlimit --nofile=N:N` (soft and hard), as a host with that
    /// open-files limit would.
    init(upstreams: [SocketEndpoint], settings: [String] = [], fileLimit: Int? = nil) async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw FixtureError("\(Self.binary) is missing: run `swift build` first (these tests start the real server)")
        }
        precondition(upstreams.allSatisfy { $0.ip == .v4(0x7F00_0001) }, "tests talk to loopback only")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        self.directory = dir
        try Self.zone.write(to: dir.appendingPathComponent("fuzz.internal.zone"), atomically: true, encoding: .utf8)
        var lastError: any Error = FixtureError("vpcdns never started")
        for _ in 0..<3 {
            let port = try await NSDFixture.freePort()
            let yaml = """
                account_id: "111122223333"
                listen: ["127.0.0.1:\(port)"]
                upstreams: [\(upstreams.map { "\"\($0)\"" }.joined(separator: ", "))]
                \(settings.joined(separator: "\n"))
                vpcs:
                  - id: vpc-0a11ce0000000001a
                    name: app
                    region: us-west-2
                    cidrs: [10.0.0.0/16]
                    clients: [127.0.0.0/8]
                    enable_dns_support: true
                    enable_dns_hostnames: true
                hosted_zones:
                  - name: fuzz.internal
                    vpcs: [vpc-0a11ce0000000001a]
                    file: fuzz.internal.zone

                """
            let config = dir.appendingPathComponent("vpcdns.yaml")
            try yaml.write(to: config, atomically: true, encoding: .utf8)
            let serve = ["serve", "--config", config.path]
            // prlimit sets the limit on itself and execs the server: same pid.
            let p = try fileLimit.map { n in
                try ChildProcess("/usr/bin/prlimit", ["--nofile=\(n):\(n)", "--", Self.binary] + serve, stderr: dir.appendingPathComponent("stderr.txt").path)
            } ?? ChildProcess(Self.binary, serve, stderr: dir.appendingPathComponent("stderr.txt").path)
            let ep = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))
            if await Self.waitUntilAnswering(ep, process: p) {
                endpoint = ep
                process = p
                return
            }
            p.stop()
            lastError = FixtureError("vpcdns did not answer on \(ep): \((try? String(contentsOf: dir.appendingPathComponent("stderr.txt"), encoding: .utf8)) ?? "")")
        }
        try? FileManager.default.removeItem(at: dir)
        throw lastError
    }

    deinit { stop() }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    var isRunning: Bool { process.isRunning }

    var standardError: String {
        (try? String(contentsOf: directory.appendingPathComponent("stderr.txt"), encoding: .utf8)) ?? ""
    }

    /// Resident set size in KiB (VmRSS of /proc/PID/status).
    var rssKiB: Int {
        guard let s = try? String(contentsOfFile: "/proc/\(process.pid)/status", encoding: .utf8) else { return -1 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
        }
        return -1
    }

    /// Open file descriptors (entries of /proc/PID/fd).
    var openFDs: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.pid)/fd").count) ?? -1
    }

    /// Polls until `openFDs <= limit` or `timeout`; returns the last count.
    func waitFDs(atMost limit: Int, timeout: Duration) async -> Int {
        let deadline = ContinuousClock.now + timeout
        var n = openFDs
        while n > limit && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
            n = openFDs
        }
        return n
    }

    private static func waitUntilAnswering(_ endpoint: SocketEndpoint, process: ChildProcess) async -> Bool {
        guard let client = try? await TestUDPClient.make() else { return false }
        defer { Task { await client.close() } }
        let deadline = ContinuousClock.now + .seconds(10)
        var id: UInt16 = 1
        while ContinuousClock.now < deadline && process.isRunning {
            if let r = try? await client.exchange(TestDNS.query(id: id, name: "www.fuzz.internal"), with: endpoint, timeout: .milliseconds(200)),
               TestDNS.header(r)?.id == id {
                return true
            }
            id &+= 1
        }
        return false
    }
}

/// What a reply said, read with the real codec.
struct ReplyCheck {
    var id: UInt16
    var rcode: RCode
    var addresses: [String]

    init?(_ buffer: ByteBuffer) {
        guard let m = try? DNSMessage.parse(Array(buffer.readableBytesView)), m.header.isResponse else { return nil }
        id = m.header.id
        rcode = m.rcode
        addresses = m.answer.filter { $0.type == .a }.map { RDataFormatter.presentation(type: $0.type, rdata: $0.rdata) }
    }

    /// The private answer every correct `www.fuzz.internal A` query gets.
    func isWWW(id want: UInt16) -> Bool { id == want && rcode == .noError && addresses == ["10.9.0.10"] }
}
