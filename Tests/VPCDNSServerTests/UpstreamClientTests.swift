import NIOCore
import NIOPosix
import Testing
import VPCDNSCore
@testable import VPCDNSServer

private func client(total: Int = 500, attempt: Int = 200) -> UpstreamClient {
    UpstreamClient(policy: UpstreamPolicy(totalTimeout: .milliseconds(Int64(total)), attemptTimeout: .milliseconds(Int64(attempt))))
}

private func elapsed(_ body: () async throws -> Void) async rethrows -> Duration {
    let clock = ContinuousClock()
    let start = clock.now
    try await body()
    return clock.now - start
}

@Suite("UpstreamClient against NSD and misbehaving upstreams", .serialized)
struct UpstreamClientTests {
    let loop = testGroup.next()

    @Test("NSD answers; the caller's ID is restored")
    func nsdAnswer() async throws {
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let result = await client().query(TestDNS.query(id: 0x1234, name: "WWW.example.org"), targets: [nsd.endpoint], on: loop)
        let answer = try result.get()
        let h = try #require(TestDNS.header(answer.reply))
        #expect(h.id == 0x1234)
        #expect(h.rcode == 0 && h.ancount == 1)
        #expect(answer.target == nsd.endpoint)
        #expect(answer.transport == .udp && answer.attempts == 1)

        let nx = try await client().query(TestDNS.query(id: 7, name: "nope.example.org"), targets: [nsd.endpoint], on: loop).get()
        #expect(TestDNS.header(nx.reply)?.rcode == 3, "NXDOMAIN is an answer")
    }

    @Test("A black hole first: failover to NSD after the attempt timeout")
    func failover() async throws {
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let hole = try await FakeUpstream.blackHole()
        defer { hole.channel.close(promise: nil) }
        var result: UpstreamResult?
        let took = await elapsed {
            result = await client(total: 1000, attempt: 200).query(
                TestDNS.query(id: 1, name: "www.example.org"), targets: [hole.endpoint, nsd.endpoint], on: loop)
        }
        let answer = try #require(try result?.get())
        #expect(answer.target == nsd.endpoint && answer.attempts == 2)
        #expect(took >= .milliseconds(190) && took < .milliseconds(700), "\(took)")
    }

    @Test("Only black holes: .timeout after the total timeout")
    func timeout() async throws {
        let a = try await FakeUpstream.blackHole()
        let b = try await FakeUpstream.blackHole()
        defer { a.channel.close(promise: nil); b.channel.close(promise: nil) }
        var result: UpstreamResult?
        let took = await elapsed {
            result = await client(total: 500, attempt: 200).query(
                TestDNS.query(id: 1, name: "www.example.org"), targets: [a.endpoint, b.endpoint], on: loop)
        }
        #expect(result.map { if case .failure(.timeout) = $0 { true } else { false } } == true, "\(String(describing: result))")
        #expect(took >= .milliseconds(490) && took < .milliseconds(900), "\(took)")
    }

    @Test("Wrong IDs, other questions and garbage are discarded: the query times out")
    func discarded() async throws {
        for mode: FakeUpstream.Mode in [.wrongID, .otherQuestion, .garbage] {
            let bad = try await FakeUpstream.responder(mode)
            defer { bad.channel.close(promise: nil) }
            let result = await client(total: 300, attempt: 300).query(
                TestDNS.query(id: 1, name: "www.example.org"), targets: [bad.endpoint], on: loop)
            guard case .failure(let f) = result else { Issue.record("\(mode): \(result)"); continue }
            // Random garbage may, very rarely, parse as a reply of its own: then an error.
            if case .garbage = mode { continue }
            #expect(f.reason == "upstream-timeout" && f.lastTried == bad.endpoint, "\(mode)")
        }
    }

    @Test("REFUSED and SERVFAIL are failed attempts: the next target is tried, then .error")
    func failureRcodes() async throws {
        let refused = try await FakeUpstream.responder(.rcode(5))
        let servfail = try await FakeUpstream.responder(.rcode(2))
        defer { refused.channel.close(promise: nil); servfail.channel.close(promise: nil) }
        var result: UpstreamResult?
        let took = await elapsed {
            result = await client(total: 2000, attempt: 500).query(
                TestDNS.query(id: 1, name: "www.example.org"), targets: [refused.endpoint, servfail.endpoint], on: loop)
        }
        guard case .failure(.error(let why, _))? = result else { Issue.record("\(String(describing: result))"); return }
        #expect(why == "\(servfail.endpoint): rcode SERVFAIL")
        #expect(result.flatMap { if case .failure(let f) = $0 { f.lastTried } else { nil } } == servfail.endpoint)
        #expect(took < .milliseconds(300), "a round of fast failures ends at once: \(took)")

        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let ok = await client().query(TestDNS.query(id: 2, name: "www.example.org"), targets: [refused.endpoint, nsd.endpoint], on: loop)
        #expect((try? ok.get())?.target == nsd.endpoint)
    }

    @Test("Nothing listening (ICMP port unreachable): .error, fast")
    func portUnreachable() async throws {
        let port = try await NSDFixture.freePort()
        let dead = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))
        var result: UpstreamResult?
        let took = await elapsed {
            result = await client(total: 4000, attempt: 2000).query(TestDNS.query(id: 1, name: "www.example.org"), targets: [dead], on: loop)
        }
        guard case .failure(.error(let why, _))? = result else { Issue.record("\(String(describing: result))"); return }
        #expect(why.contains("Connection refused"), "\(why)")
        // Fast means well before the 2 s attempt timeout (a loaded machine may delay the ICMP
        // error by a few hundred milliseconds; the kernel also rate-limits them).
        #expect(took < .milliseconds(1000))
    }

    @Test("A truncated UDP answer is asked again over TCP")
    func truncatedToTCP() async throws {
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let answer = try await client(total: 2000, attempt: 500).query(
            TestDNS.query(id: 0x4242, name: "big.example.org", type: TestDNS.typeTXT), targets: [nsd.endpoint], on: loop).get()
        #expect(answer.transport == .tcp && answer.attempts == 2)
        let h = try #require(TestDNS.header(answer.reply))
        #expect(h.id == 0x4242 && !h.tc && h.ancount == 8)
        #expect(answer.reply.readableBytes > 512)
    }

    @Test("TC over UDP, then a TCP server that closes early: .error")
    func tcpClosesEarly() async throws {
        let udp = try await FakeUpstream.responder(.truncated)
        defer { udp.channel.close(promise: nil) }
        let tcp = try await FakeUpstream.earlyClosingTCP(port: Int(udp.endpoint.port))
        defer { tcp.channel.close(promise: nil) }
        let result = await client(total: 1000, attempt: 500).query(
            TestDNS.query(id: 1, name: "big.example.org", type: TestDNS.typeTXT), targets: [udp.endpoint], on: loop)
        guard case .failure(.error(let why, _)) = result else { Issue.record("\(result)"); return }
        #expect(why.contains("connection closed before a reply"), "\(why)")
    }

    @Test("Many concurrent upstream queries leave no channel behind")
    func noLeaks() async throws {
        let nsd = try await NSDFixture()
        defer { nsd.stop() }
        let hole = try await FakeUpstream.blackHole()
        defer { hole.channel.close(promise: nil) }
        let baseline = openSocketCount()
        let c = client(total: 300, attempt: 100)
        let ok = await withTaskGroup(of: Bool.self) { tasks in
            for i in 0..<50 {
                let targets = i.isMultiple(of: 2) ? [nsd.endpoint] : [hole.endpoint, nsd.endpoint]
                tasks.addTask {
                    (try? await c.query(TestDNS.query(id: UInt16(i), name: "www.example.org"), targets: targets, on: testGroup.next()).get()) != nil
                }
            }
            return await tasks.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(ok == 50)
        // The shared upstream sockets are closed once idle for their lifetime (1 s, swept
        // every 250 ms); the TCP connections and timers at once.
        let deadline = ContinuousClock.now + .seconds(3)
        var now = openSocketCount()
        while now > baseline && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            now = openSocketCount()
        }
        #expect(now <= baseline, "sockets: \(now), before: \(baseline)")
    }
}

/// Open file descriptors that are sockets in this process.
func openSocketCount() -> Int {
    #if os(Linux)
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var n = 0
    var buf = [CChar](repeating: 0, count: 256)
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let len = readlink("/proc/self/fd/\(name)", &buf, 255)
        if len > 0, String(decoding: buf[0..<len].map { UInt8(bitPattern: $0) }, as: UTF8.self).hasPrefix("socket:") { n += 1 }
    }
    return n
    #else
    return 0
    #endif
}
