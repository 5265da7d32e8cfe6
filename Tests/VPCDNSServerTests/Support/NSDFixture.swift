import Foundation
import NIOCore
import NIOPosix
import VPCDNSCore
@testable import VPCDNSServer

/// A real NSD on 127.0.0.1 serving test zones: the stand-in for a public upstream.
///
/// Writes nsd.conf and the zone files into a fresh temporary folder, picks a free port
/// (UDP and TCP), runs `nsd -d -c CONF` as a direct child with a clean signal mask (see
/// `ChildProcess`), and waits until it answers. `stop()` (or `deinit`, when a test fails before
/// reaching it) sends SIGTERM, waits, and removes the folder.
final class NSDFixture: Sendable {
    let endpoint: SocketEndpoint
    let directory: URL
    private let process: ChildProcess

    /// The default test zone `example.org`: `www` A, a big TXT RRset at `big` (over 512
    /// bytes, so a UDP answer without EDNS is truncated), and `case` mixed-case data.
    static let exampleZone = """
        $ORIGIN example.org.
        $TTL 300
        @    IN SOA ns1.example.org. hostmaster.example.org. 1 3600 600 86400 300
        @    IN NS  ns1.example.org.
        ns1  IN A   192.0.2.53
        www  IN A   192.0.2.10
        \((0..<8).map { i in "big  IN TXT \"" + String(repeating: Character(UnicodeScalar(UInt8(97 + i))), count: 200) + "\"" }.joined(separator: "\n"))

        """

    /// `port` pins the port (an upstream that "comes back" where a fake one was); by default
    /// a free one is picked.
    init(zones: [String: String] = ["example.org": NSDFixture.exampleZone], port fixedPort: Int? = nil) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-nsd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        self.directory = dir
        var lastError: any Error = FixtureError("nsd never started")
        for _ in 0..<3 {
            let port: Int
            if let fixedPort { port = fixedPort } else { port = try await Self.freePort() }
            var conf = """
                server:
                    ip-address: 127.0.0.1
                    port: \(port)
                    server-count: 1
                    username: ""
                    chroot: ""
                    database: ""
                    zonesdir: "\(dir.path)"
                    zonelistfile: "\(dir.path)/zone.list"
                    xfrdfile: "\(dir.path)/xfrd.state"
                    pidfile: "\(dir.path)/nsd.pid"
                    logfile: "\(dir.path)/nsd.log"
                    verbosity: 1
                    do-ip6: no
                    hide-version: yes
                remote-control:
                    control-enable: no

                """
            for (name, text) in zones {
                try text.write(to: dir.appendingPathComponent("\(name).zone"), atomically: true, encoding: .utf8)
                conf += "zone:\n    name: \(name)\n    zonefile: \(name).zone\n"
            }
            let confURL = dir.appendingPathComponent("nsd.conf")
            try conf.write(to: confURL, atomically: true, encoding: .utf8)
            let p = try ChildProcess("/usr/sbin/nsd", ["-d", "-c", confURL.path])
            let endpoint = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))
            if await Self.waitUntilAnswering(endpoint, process: p) {
                self.endpoint = endpoint
                self.process = p
                return
            }
            p.stop()
            lastError = FixtureError("nsd did not answer on \(endpoint): \((try? String(contentsOf: dir.appendingPathComponent("nsd.log"), encoding: .utf8)) ?? "")")
        }
        try? FileManager.default.removeItem(at: dir)
        throw lastError
    }

    deinit {
        stop()
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A port free for UDP and TCP on 127.0.0.1 right now (bound with port 0, then released).
    static func freePort() async throws -> Int {
        try await VPCDNSServerTests.freePort(host: "127.0.0.1")
    }

    private static func waitUntilAnswering(_ endpoint: SocketEndpoint, process: ChildProcess) async -> Bool {
        guard let client = try? await TestUDPClient.make() else { return false }
        defer { Task { await client.close() } }
        let deadline = ContinuousClock.now + .seconds(5)
        var id: UInt16 = 1
        while ContinuousClock.now < deadline && process.isRunning {
            let q = TestDNS.query(id: id, name: "example.org", type: TestDNS.typeSOA)
            if let r = try? await client.exchange(q, with: endpoint, timeout: .milliseconds(100)),
               TestDNS.header(r)?.id == id {
                return true
            }
            id &+= 1
        }
        return false
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// `DigRun.query` with a `tcp` switch, as the ops tests call it.
enum Dig {
    static func query(_ name: String, _ type: String = "A", server: SocketEndpoint, tcp: Bool = false) throws -> DigRun.Result {
        try DigRun.query(name, type, server: server, options: tcp ? ["+tcp"] : [])
    }
}
