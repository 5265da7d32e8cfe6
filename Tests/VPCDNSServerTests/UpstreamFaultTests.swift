import DNSWire
import Foundation
import NIOCore
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// P6 against the real `vpcdns serve` binary: an upstream that never answers, answers
/// garbage, answers with the wrong ID, or closes TCP early. The client gets SERVFAIL within
/// `upstream_timeout_ms` (plus a margin for a loaded machine), the server's descriptors
/// return to where they were (no socket leak), and once a real upstream (NSD) comes back on
/// the same port answers flow again.
@Suite("Upstream faults against vpcdns serve", .serialized)
struct UpstreamFaultTests {
    enum Fault: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case blackHole = "black hole"
        case garbage
        case wrongID = "wrong ID"
        case earlyClosingTCP = "TC over UDP, then TCP closed early"
        var testDescription: String { rawValue }
        /// P6: timeouts for silence and discarded replies; a broken connection is an error.
        var reason: String { self == .earlyClosingTCP ? "upstream-error" : "upstream-timeout" }
    }

    static let timeoutMs = 800
    static let queries = 8

    @Test("SERVFAIL in time, no socket leak, answers again when the upstream comes back", arguments: Fault.allCases)
    func fault(_ fault: Fault) async throws {
        let port = try await NSDFixture.freePort()
        var fakes: [any Channel] = []
        switch fault {
        case .blackHole: fakes.append(try await FakeUpstream.blackHole(port: port).channel)
        case .garbage: fakes.append(try await FakeUpstream.responder(.garbage, port: port).channel)
        case .wrongID: fakes.append(try await FakeUpstream.responder(.wrongID, port: port).channel)
        case .earlyClosingTCP:
            fakes.append(try await FakeUpstream.responder(.truncated, port: port).channel)
            fakes.append(try await FakeUpstream.earlyClosingTCP(port: port).channel)
        }
        let upstream = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))
        let server = try await FaultServer(upstreams: [upstream], settings: [
            "upstream_timeout_ms: \(Self.timeoutMs)", "upstream_attempt_timeout_ms: 250", "query_log: queries.jsonl",
        ])
        defer { server.stop() }
        let baselineFDs = server.openFDs

        // Queries in parallel, each for a name of its own (nothing from the cache).
        let results = try await withThrowingTaskGroup(of: (UInt16, ReplyCheck?, Duration).self) { group in
            for i in 0..<Self.queries {
                group.addTask {
                    let c = try await TestUDPClient.make()
                    let id = UInt16(100 + i)
                    let start = ContinuousClock.now
                    let r = try await c.exchange(TestDNS.query(id: id, name: "q\(i).example.org", edns: i % 2 == 0), with: server.endpoint,
                                                 timeout: .milliseconds(Self.timeoutMs + 2000))
                    let took = ContinuousClock.now - start
                    await c.close()
                    return (id, r.flatMap(ReplyCheck.init), took)
                }
            }
            var all: [(UInt16, ReplyCheck?, Duration)] = []
            for try await r in group { all.append(r) }
            return all
        }
        let servfails = results.filter { $0.1?.rcode == .servFail && $0.1?.id == $0.0 }.count
        let slowest = results.map(\.2).max() ?? .zero
        let duringFDs = server.openFDs
        let afterFDs = await server.waitFDs(atMost: baselineFDs, timeout: .seconds(3))

        // The upstream comes back: the fake goes away and NSD takes its port.
        for f in fakes { try? await f.close().get() }
        let nsd = try await NSDFixture(port: port)
        defer { nsd.stop() }
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        let back = try await client.exchange(TestDNS.query(id: 999, name: "www.example.org"), with: server.endpoint, timeout: .seconds(3))
        let backCheck = back.flatMap(ReplyCheck.init)
        let tcp = try await TestTCPConnection.connect(to: server.endpoint)
        try await tcp.send(TestDNS.framed(TestDNS.query(id: 1000, name: "big.example.org", type: TestDNS.typeTXT)))
        let bigOverTCP = await tcp.inbox.wait(count: 1, timeout: .seconds(3)).first.flatMap(ReplyCheck.init)
        await tcp.close()
        let finalFDs = await server.waitFDs(atMost: baselineFDs, timeout: .seconds(3))

        // The query log says why (records reach the file within a second, L1).
        let logURL = server.directory.appendingPathComponent("queries.jsonl")
        var reasons = 0
        for _ in 0..<30 {
            let log = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            reasons = log.split(separator: "\n").filter { $0.contains("\"SERVFAIL\"") && $0.contains("\"\(fault.reason)\"") }.count
            if reasons >= Self.queries { break }
            try await Task.sleep(for: .milliseconds(100))
        }

        print("upstream fault \(fault.rawValue): \(servfails)/\(Self.queries) SERVFAIL, slowest \(slowest), log reasons \(reasons), fds \(baselineFDs) -> \(duringFDs) -> \(afterFDs) -> \(finalFDs), back: \(backCheck?.rcode.description ?? "none") \(backCheck?.addresses ?? [])")
        #expect(server.isRunning)
        #expect(servfails == Self.queries)
        #expect(slowest < .milliseconds(Self.timeoutMs + 1500), "SERVFAIL took \(slowest), upstream_timeout_ms is \(Self.timeoutMs)")
        #expect(afterFDs <= baselineFDs, "sockets left open after the failures: \(afterFDs) vs \(baselineFDs)")
        #expect(reasons == Self.queries, "query log: \(reasons) SERVFAIL records with \(fault.reason)")
        #expect(backCheck?.id == 999 && backCheck?.rcode == .noError && backCheck?.addresses == ["192.0.2.10"])
        #expect(bigOverTCP?.id == 1000 && bigOverTCP?.rcode == .noError)
        #expect(finalFDs <= baselineFDs)
    }
}
