#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// O8 through the real `vpcdns serve`, read by a dnstap reader we did not write: Debian's
/// `dnstap` command (golang-dnstap), listening on a unix socket and printing every message as
/// YAML. The upstream is a real NSD on loopback.
@Suite("dnstap (O8) end to end with Debian's dnstap reader", .serialized)
struct DnstapServeTests {
    static let vpc = "vpc-0a11ce0000000001a"
    static let reader = "/usr/bin/dnstap"

    static func config(listen: Int, upstreamPort: Int, metrics: Int, socket: String, extra: String = "") -> String {
        """
        listen: ["127.0.0.1:\(listen)"]
        upstreams: ["127.0.0.1:\(upstreamPort)"]
        upstream_timeout_ms: 2000
        metrics: "127.0.0.1:\(metrics)"
        dnstap:
          socket: \(socket)
          identity: dnstap-test-host
        \(extra)
        vpcs:
          - id: \(vpc)
            region: us-west-2
            cidrs: [10.0.0.0/16]
            clients: [127.0.0.1/32]
            enable_dns_hostnames: true
        hosted_zones:
          - id: Z0PRIVATEZONE0001
            name: myservice.internal
            vpcs: [\(vpc)]
            records:
              - {name: www.myservice.internal, type: A, values: [10.0.5.10]}

        """
    }

    /// The reader: `dnstap -u SOCKET -y`, YAML on standard output (a file).
    final class Reader: Sendable {
        let process: ChildProcess
        let output: String
        let errors: String

        init(socket: String, directory: URL, name: String = "dnstap") async throws {
            guard FileManager.default.isExecutableFile(atPath: DnstapServeTests.reader) else {
                throw FixtureError("\(DnstapServeTests.reader) is missing: apt-get install golang-github-dnstap-golang-dnstap-cli (scripts/install-deps.sh)")
            }
            output = directory.appendingPathComponent("\(name).yaml").path
            errors = directory.appendingPathComponent("\(name).err").path
            try? FileManager.default.removeItem(atPath: socket)
            process = try ChildProcess(DnstapServeTests.reader, ["-u", socket, "-y"], stdout: output, stderr: errors)
            let deadline = ContinuousClock.now + .seconds(5)
            while !FileManager.default.fileExists(atPath: socket) {
                guard ContinuousClock.now < deadline else { throw FixtureError("dnstap never opened \(socket): \(stderrText)") }
                try await Task.sleep(for: .milliseconds(20))
            }
        }

        var text: String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        var stderrText: String { (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "" }

        /// The printed messages: one YAML document each.
        var messages: [String] { text.components(separatedBy: "\n---\n").filter { $0.contains("type: MESSAGE") } }

        /// The messages of dnstap type `kind` whose DNS question is `name`.
        func messages(_ kind: String, name: String) -> [String] {
            messages.filter { $0.contains("  type: \(kind)\n") && $0.contains(";\(name).\tIN\t") }
        }

        /// Waits (bounded) until `predicate` holds for what was printed.
        func wait(timeout: Duration = .seconds(5), until predicate: (Reader) -> Bool) async -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if predicate(self) { return true }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return predicate(self)
        }
    }

    static func counter(_ metrics: String, _ result: String) -> Int {
        for line in metrics.split(separator: "\n") where line.hasPrefix("vpcdns_dnstap_messages_total{result=\"\(result)\"}") {
            return Int(line.split(separator: " ").last ?? "") ?? -1
        }
        return -1
    }

    /// Writes `config` (after `edit`) with fresh loopback ports for the listener and metrics into
    /// `dir`, starts `vpcdns serve` there and waits until it listens (UDP and TCP).
    static func serve(in dir: URL, upstreamPort: Int, socket: String, edit: (String) -> String = { $0 })
        async throws -> (server: ServeProcess, port: Int, metricsPort: Int) {
        let port = try await freePort(host: "127.0.0.1")
        let metricsPort = try await freePort(host: "127.0.0.1")
        let config = dir.appendingPathComponent("vpcdns.yaml")
        try edit(Self.config(listen: port, upstreamPort: upstreamPort, metrics: metricsPort, socket: socket))
            .write(to: config, atomically: true, encoding: .utf8)
        let server = try ServeProcess(arguments: ["serve", "--config", config.path], directory: dir)
        _ = try await server.waitListening(count: 2)
        return (server, port, metricsPort)
    }

    /// What the first two tests start with: a scratch folder, NSD, the reader on the folder's
    /// dnstap socket, and `vpcdns serve` (its configuration after `edit`) writing to it.
    struct WithReader {
        let dir: URL
        let nsd: NSDFixture
        let reader: Reader
        let served: (server: ServeProcess, port: Int, metricsPort: Int)
        var at: SocketEndpoint { SocketEndpoint("127.0.0.1:\(served.port)")! }

        static func start(edit: (String) -> String = { $0 }) async throws -> WithReader {
            _ = try VPCDNSBinary.require()
            let dir = try ServeHarness.makeDirectory("vpcdns-dnstap")
            let socket = dir.appendingPathComponent("dnstap.sock").path
            var undo: [() -> Void] = [{ try? FileManager.default.removeItem(at: dir) }]
            do {
                let nsd = try await NSDFixture()
                undo.append { nsd.stop() }
                let reader = try await Reader(socket: socket, directory: dir)
                undo.append { reader.process.stop() }
                let served = try await DnstapServeTests.serve(in: dir, upstreamPort: Int(nsd.endpoint.port), socket: socket, edit: edit)
                return WithReader(dir: dir, nsd: nsd, reader: reader, served: served)
            } catch {
                for step in undo.reversed() { step() }
                throw error
            }
        }

        /// Stops vpcdns, the reader and NSD (each stop is idempotent), then removes the folder.
        func stop() {
            served.server.stop()
            reader.process.stop()
            nsd.stop()
            try? FileManager.default.removeItem(at: dir)
        }
    }

    /// The metrics page of the server on `port`.
    static func metrics(_ port: Int) throws -> String {
        try Shell.http("http://127.0.0.1:\(port)/metrics").body
    }

    static func field(_ message: String, _ key: String) -> String? {
        for line in message.split(separator: "\n") where line.hasPrefix("  \(key): ") {
            return String(line.dropFirst("  \(key): ".count))
        }
        return nil
    }

    @Test("a forwarded query gives CLIENT_QUERY, FORWARDER_QUERY, FORWARDER_RESPONSE, CLIENT_RESPONSE; a local one only the client pair")
    func fourKinds() async throws {
        let run = try await WithReader.start()
        defer { run.stop() }
        let (reader, server, nsd, port, at) = (run.reader, run.served.server, run.nsd, run.served.port, run.at)

        let forwarded = try DigRun.query("www.example.org", server: at)
        #expect(forwarded.rdata("A") == ["192.0.2.10"], "\(forwarded.output)")
        let local = try DigRun.query("www.myservice.internal", server: at)
        #expect(local.rdata("A") == ["10.0.5.10"], "\(local.output)")

        let printed = await reader.wait { r in
            r.messages("CLIENT_RESPONSE", name: "www.example.org").count == 1 && r.messages("CLIENT_RESPONSE", name: "www.myservice.internal").count == 1
        }
        #expect(printed, "dnstap printed:\n\(reader.text)\n\(reader.stderrText)\nserve:\n\(server.standardError)")

        // The forwarded query, client side: the client's address and port, our listener's.
        let cq = reader.messages("CLIENT_QUERY", name: "www.example.org")
        #expect(cq.count == 1, "\(reader.text)")
        if let m = cq.first {
            #expect(Self.field(m, "query_address") == "127.0.0.1")
            #expect(Self.field(m, "response_address") == "127.0.0.1")
            #expect(Self.field(m, "response_port") == "\(port)")
            #expect(Self.field(m, "socket_family") == "INET" && Self.field(m, "socket_protocol") == "UDP")
            #expect(Self.field(m, "query_time")?.hasPrefix("!!timestamp ") == true, "\(m)")
            #expect(m.contains("identity: \"dnstap-test-host\""), "\(m)")
            #expect(m.contains("version: \"vpcdns "), "\(m)")
        }
        let cr = reader.messages("CLIENT_RESPONSE", name: "www.example.org")
        #expect(cr.count == 1 && cr.first?.contains("www.example.org.\t300\tIN\tA\t192.0.2.10") == true, "\(cr)")
        // Same client port in query and response.
        #expect(cq.first.flatMap { Self.field($0, "query_port") } == cr.first.flatMap { Self.field($0, "query_port") })

        // Upstream side: NSD's address and port, the reply with its answer.
        let fq = reader.messages("FORWARDER_QUERY", name: "www.example.org")
        let fr = reader.messages("FORWARDER_RESPONSE", name: "www.example.org")
        #expect(fq.count == 1 && fr.count == 1, "\(reader.text)")
        for m in fq + fr {
            #expect(Self.field(m, "response_address") == "127.0.0.1", "\(m)")
            #expect(Self.field(m, "response_port") == "\(nsd.endpoint.port)", "\(m)")
        }
        #expect(fr.first?.contains("response_message: |") == true && fr.first?.contains("www.example.org.\t300\tIN\tA\t192.0.2.10") == true,
                "\(fr)")
        #expect(fr.first.map { Self.field($0, "response_time")?.hasPrefix("!!timestamp ") == true } == true)

        // The local answer: the client pair only, nothing upstream.
        #expect(reader.messages("CLIENT_QUERY", name: "www.myservice.internal").count == 1, "\(reader.text)")
        #expect(reader.messages("CLIENT_RESPONSE", name: "www.myservice.internal").first?.contains("10.0.5.10") == true)
        #expect(reader.messages("FORWARDER_QUERY", name: "www.myservice.internal").isEmpty)

        let metrics = try Self.metrics(run.served.metricsPort)
        #expect(Self.counter(metrics, "sent") >= 6 && Self.counter(metrics, "dropped") == 0, "\(metrics)")

        // Shutdown ends the stream (STOP, FINISH): the reader sees the connection close.
        #expect(server.stop() == 0, "\(server.standardError)")
        let closed = await reader.wait { $0.stderrText.contains("closed connection") }
        #expect(closed, "\(reader.stderrText)")
    }

    @Test("only the configured messages are sent")
    func messageFilter() async throws {
        let run = try await WithReader.start {
            $0.replacingOccurrences(of: "  identity: dnstap-test-host\n", with: "  identity: dnstap-test-host\n  messages: [forwarder_response]\n")
        }
        defer { run.stop() }
        let (reader, server, at) = (run.reader, run.served.server, run.at)
        _ = try DigRun.query("www.example.org", server: at)
        _ = try DigRun.query("www.myservice.internal", server: at)
        let printed = await reader.wait { $0.messages("FORWARDER_RESPONSE", name: "www.example.org").count == 1 }
        #expect(printed, "\(reader.text)")
        #expect(server.stop() == 0, "\(server.standardError)")
        _ = await reader.wait { $0.stderrText.contains("closed connection") }
        #expect(reader.messages.count == 1, "\(reader.text)")
    }

    @Test("a missing, then stopped (slow) reader: answers stay quick, messages are dropped and counted, the stream comes back")
    func slowOrMissingReader() async throws {
        _ = try VPCDNSBinary.require()
        let dir = try ServeHarness.makeDirectory("vpcdns-dnstap")
        defer { try? FileManager.default.removeItem(at: dir) }
        let socket = dir.appendingPathComponent("dnstap.sock").path
        let dead = try await freePort(host: "127.0.0.1")
        let (server, port, metricsPort) = try await Self.serve(in: dir, upstreamPort: dead, socket: socket)
        defer { server.stop() }
        let at = SocketEndpoint("127.0.0.1:\(port)")!
        let client = try await TestUDPClient.make()

        /// `count` local queries one after another; the slowest answer's time. Every one must be answered.
        func burst(_ count: Int, firstID: UInt16) async throws -> (answered: Int, slowest: Duration) {
            var answered = 0
            var slowest = Duration.zero
            for i in 0..<count {
                let start = ContinuousClock.now
                let reply = try await client.exchange(TestDNS.query(id: firstID &+ UInt16(i), name: "www.myservice.internal"), with: at,
                                                      timeout: .seconds(2))
                slowest = max(slowest, ContinuousClock.now - start)
                if reply != nil { answered += 1 }
            }
            return (answered, slowest)
        }

        // No reader at all: every answer still comes, the messages are dropped and counted.
        let missing = try await burst(200, firstID: 1)
        #expect(missing.answered == 200)
        #expect(missing.slowest < .milliseconds(500), "slowest answer \(missing.slowest) without a reader")
        var metrics = ""
        let droppedCounted = await Self.poll(timeout: .seconds(5)) {
            metrics = (try? Self.metrics(metricsPort)) ?? ""
            return Self.counter(metrics, "dropped") >= 400
        }
        #expect(droppedCounted, "\(metrics)")

        // A reader appears: the writer connects again (backoff at most 5 s) and messages flow.
        let reader = try await Reader(socket: socket, directory: dir)
        defer { reader.process.stop() }
        var id: UInt16 = 1000
        let flowing = await Self.poll(timeout: .seconds(15)) {
            id &+= 1
            _ = try? await client.exchange(TestDNS.query(id: id, name: "www.myservice.internal"), with: at, timeout: .seconds(1))
            return reader.messages("CLIENT_RESPONSE", name: "www.myservice.internal").count > 0
        }
        #expect(flowing, "reader printed:\n\(reader.text)\n\(reader.stderrText)")

        // The reader stops reading (SIGSTOP): the socket buffer fills, writes time out, the
        // connection is dropped; answering never waits for it.
        kill(reader.process.pid, SIGSTOP)
        let sentBefore = Self.counter(try Self.metrics(metricsPort), "sent")
        let droppedBefore = Self.counter(try Self.metrics(metricsPort), "dropped")
        let stalled = try await burst(3000, firstID: 5000)
        #expect(stalled.answered == 3000)
        #expect(stalled.slowest < .milliseconds(500), "slowest answer \(stalled.slowest) with a stopped reader")
        let droppedMore = await Self.poll(timeout: .seconds(5)) {
            metrics = (try? Self.metrics(metricsPort)) ?? ""
            return Self.counter(metrics, "dropped") > droppedBefore
        }
        kill(reader.process.pid, SIGCONT)
        #expect(droppedMore, "sent before \(sentBefore), dropped before \(droppedBefore):\n\(metrics)")
        await client.close()
        #expect(server.stop() == 0, "\(server.standardError)")
    }

    static func poll(timeout: Duration, _ check: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await check() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}
