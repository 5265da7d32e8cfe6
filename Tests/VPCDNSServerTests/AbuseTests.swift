import DNSWire
import Foundation
import NIOCore
import Testing
import VPCDNSCore
@testable import VPCDNSServer

/// P4 and P1 against the real `vpcdns serve` binary (see `FaultServer`): floods of bad
/// packets and abusive TCP clients, while correct queries keep getting correct answers.
/// Every loop is bounded in count and time; all traffic is on 127.0.0.1.
@Suite("Abuse: garbage floods and TCP abuse against vpcdns serve", .serialized)
struct AbuseTests {
    static let www = "www.fuzz.internal"

    /// One bad packet: random bytes, a cut-off query, a query with flipped bytes, a response
    /// (QR set), huge section counts, a compression-pointer loop in the question.
    static func garbage(_ rng: inout SplitMix64, id: UInt16) -> [UInt8] {
        let valid = Array(TestDNS.query(id: id, name: "Www.Fuzz.Internal", edns: Bool.random(using: &rng)).readableBytesView)
        switch Int.random(in: 0..<6, using: &rng) {
        case 0:
            return (0..<Int.random(in: 0..<600, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case 1:
            return Array(valid.prefix(Int.random(in: 0..<valid.count, using: &rng)))
        case 2:
            var b = valid
            for _ in 0..<Int.random(in: 1...4, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            return b
        case 3:
            var b = valid
            b[2] |= 0x80  // QR: must be dropped, never answered
            return b
        case 4:
            var b = valid
            for i in 4..<12 { b[i] = 0xFF }
            return b
        default:
            // Header, then a question name that is a pointer to itself.
            return Array(valid.prefix(12)) + [0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01]
        }
    }

    @Test("20,000 bad UDP packets and 400 bad TCP connections: every interleaved real query answered right, RSS flat")
    func garbageFlood() async throws {
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let server = try await FaultServer(upstreams: [nsd.endpoint], settings: [
            "cache_size: 1000", "upstream_timeout_ms: 1000", "upstream_attempt_timeout_ms: 300",
        ])
        defer { server.stop() }
        let junk = try await TestUDPClient.make()
        let real = try await TestUDPClient.make()
        defer { Task { await junk.close(); await real.close() } }
        var rng = SplitMix64(seed: 0x5EED_F00D)
        var thrown = 0, tcpConnections = 0, realAsked = 0, realOK = 0
        var lost: [String] = []

        /// `packets` bad datagrams, one real query every 100; `tcp` bad TCP connections, one
        /// real TCP query every 20.
        func round(packets: Int, tcp: Int) async throws {
            for i in 0..<packets {
                try await junk.send(ByteBuffer(bytes: Self.garbage(&rng, id: UInt16(truncatingIfNeeded: i))), to: server.endpoint)
                thrown += 1
                if i % 100 == 99 {
                    realAsked += 1
                    let id = UInt16(truncatingIfNeeded: realAsked)
                    let name = realAsked % 2 == 0 ? Self.www : "WWW.fuzz.Internal"
                    let reply = try await real.exchange(TestDNS.query(id: id, name: name, edns: realAsked % 3 == 0), with: server.endpoint,
                                                        timeout: .seconds(3))
                    if let r = reply.flatMap(ReplyCheck.init), r.isWWW(id: id) { realOK += 1 } else { lost.append("udp #\(realAsked)") }
                }
            }
            for i in 0..<tcp {
                let c = try await TestTCPConnection.connect(to: server.endpoint)
                tcpConnections += 1
                var bytes: [UInt8] = []
                for j in 0..<Int.random(in: 1...4, using: &rng) {
                    let g = Self.garbage(&rng, id: UInt16(truncatingIfNeeded: j))
                    // A frame whose length is right, too short, too long or random.
                    let len = [g.count, max(0, g.count - 3), g.count + 7, Int.random(in: 0...0xFFFF, using: &rng)][Int.random(in: 0..<4, using: &rng)]
                    bytes += [UInt8(len >> 8), UInt8(len & 0xFF)] + g
                }
                try? await c.send(ByteBuffer(bytes: bytes))
                thrown += 1
                await c.close()
                if i % 20 == 19 {
                    realAsked += 1
                    let id = UInt16(truncatingIfNeeded: realAsked)
                    let t = try await TestTCPConnection.connect(to: server.endpoint)
                    tcpConnections += 1
                    try await t.send(TestDNS.framed(TestDNS.query(id: id, name: Self.www)))
                    let got = await t.inbox.wait(count: 1, timeout: .seconds(3))
                    if let r = got.first.flatMap(ReplyCheck.init), r.isWWW(id: id) { realOK += 1 } else { lost.append("tcp #\(realAsked)") }
                    await t.close()
                }
            }
        }

        // Warm-up (allocator arenas, caches, the per-thread memo), then the measured flood.
        try await round(packets: 2_000, tcp: 40)
        try await Task.sleep(for: .milliseconds(300))
        let rssBefore = server.rssKiB
        let started = ContinuousClock.now
        try await round(packets: 20_000, tcp: 400)
        let elapsed = ContinuousClock.now - started
        try await Task.sleep(for: .milliseconds(500))
        let rssAfter = server.rssKiB

        print("garbage flood: \(thrown) bad packets/connections thrown (\(tcpConnections) TCP connections), \(realOK)/\(realAsked) real queries right, lost \(lost.count), RSS \(rssBefore) -> \(rssAfter) KiB, flood \(elapsed)")
        #expect(server.isRunning, "vpcdns died under the flood")
        #expect(lost.isEmpty, "real queries lost or wrong: \(lost)")
        #expect(realOK == realAsked && realAsked == 20 + 2 + 200 + 20)
        #expect(rssBefore > 0 && rssAfter - rssBefore < 4 * 1024, "RSS grew from \(rssBefore) to \(rssAfter) KiB")
        // Still answering normally afterwards.
        let last = try await real.exchange(TestDNS.query(id: 0xBEEF, name: Self.www), with: server.endpoint, timeout: .seconds(2))
        #expect(last.flatMap(ReplyCheck.init)?.isWWW(id: 0xBEEF) == true)
    }

    @Test("60 connections over max_tcp_connections 20 plus stalled clients: 100 UDP queries all right; the oldest idle make room")
    func tcpAbuse() async throws {
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let server = try await FaultServer(upstreams: [nsd.endpoint], settings: [
            "max_tcp_connections: 20", "tcp_idle_timeout_ms: 2500",
        ])
        defer { server.stop() }
        let baselineFDs = server.openFDs

        // 20 stalled clients take every slot: half a length prefix, then nothing.
        var stalled: [TestTCPConnection] = []
        for _ in 0..<20 {
            let c = try await TestTCPConnection.connect(to: server.endpoint)
            try await c.send(ByteBuffer(bytes: [0x00]))
            stalled.append(c)
        }
        try await Task.sleep(for: .milliseconds(200))
        // 60 more: over the bound, each makes the server close the oldest idle connection
        // (P1, RFC 7766 §6.2.3), so the stalled ones go first, then the earlier extras.
        var extra: [TestTCPConnection] = []
        for i in 0..<60 {
            if let c = try? await TestTCPConnection.connect(to: server.endpoint) {
                if i % 2 == 0 { try? await c.send(ByteBuffer(bytes: [0x00])) }
                extra.append(c)
            }
        }
        var stalledCut = 0
        for c in stalled where await c.waitClosed(timeout: .milliseconds(500)) { stalledCut += 1 }
        let duringFDs = server.openFDs
        // Meanwhile UDP answers normally.
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        var udpOK = 0
        for i in 0..<100 {
            let id = UInt16(1000 + i)
            let r = try await client.exchange(TestDNS.query(id: id, name: Self.www, edns: i % 2 == 0), with: server.endpoint, timeout: .seconds(2))
            if r.flatMap(ReplyCheck.init)?.isWWW(id: id) == true { udpOK += 1 }
        }
        let extraOpen = extra.filter { $0.channel.isActive }.count
        // The rest are closed by the idle timeout (2.5 s).
        var extraClosed = 0
        for c in extra where await c.waitClosed(timeout: .seconds(5)) { extraClosed += 1 }
        let t = try await TestTCPConnection.connect(to: server.endpoint)
        try await t.send(TestDNS.framed(TestDNS.query(id: 77, name: Self.www)))
        let tcpAfter = await t.inbox.wait(count: 1, timeout: .seconds(3)).first.flatMap(ReplyCheck.init)
        await t.close()
        for c in stalled + extra { await c.close() }
        let afterFDs = await server.waitFDs(atMost: baselineFDs, timeout: .seconds(3))

        print("tcp abuse: \(stalled.count + extra.count) connections opened (\(stalled.count) stalled, \(stalledCut) of them closed to make room), \(extraOpen)/\(extra.count) later ones still open, \(udpOK)/100 UDP right, fds \(baselineFDs) -> \(duringFDs) -> \(afterFDs)")
        #expect(server.isRunning)
        #expect(udpOK == 100)
        #expect(extra.count == 60 && extraClosed == 60)
        #expect(stalledCut == 20, "the stalled clients kept their slots against newer clients")
        #expect(extraOpen <= 20, "more open connections than max_tcp_connections")
        #expect(duringFDs <= baselineFDs + 20 + 4, "more TCP sockets than max_tcp_connections: \(duringFDs) vs baseline \(baselineFDs)")
        #expect(tcpAfter?.isWWW(id: 77) == true, "TCP did not recover once the stalled clients were gone")
        #expect(afterFDs <= baselineFDs)
    }
}
