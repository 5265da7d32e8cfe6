import NIOCore
import NIOPosix
import Synchronization
import Testing
import VPCDNSCore
@testable import VPCDNSServer

private func pooledClient(total: Int, attempt: Int, uses: Int = 128, lifetime: TimeAmount = .seconds(1), perTarget: Int = 4,
                          choice: UpstreamSocketLimits.SlotChoice = .random) -> UpstreamClient {
    UpstreamClient(policy: UpstreamPolicy(
        totalTimeout: .milliseconds(Int64(total)), attemptTimeout: .milliseconds(Int64(attempt)),
        sockets: UpstreamSocketLimits(uses: uses, lifetime: lifetime, perTarget: perTarget, choice: choice)))
}

/// The pool of `loop`: sockets open now, and opened since the loop started.
private func poolCounts(_ loop: any EventLoop) async throws -> (open: Int, opened: Int) {
    try await loop.submit {
        let pool = UpstreamSocketPool.current(on: loop)
        return (pool.openSockets, pool.socketsOpened)
    }.get()
}

/// Waits (bounded) until no test loop has a pooled socket open; true when none has.
private func poolsDrained(within timeout: Duration = .seconds(4)) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        var open = 0
        for loop in testGroup.makeIterator() { open += try await poolCounts(loop).open }
        if open == 0 { return true }
        if ContinuousClock.now >= deadline { return false }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Waits (bounded) until this process has at most `limit` sockets open; returns the last count.
private func socketsDown(to limit: Int, within timeout: Duration = .seconds(3)) async -> Int {
    let deadline = ContinuousClock.now + timeout
    var n = openSocketCount()
    while n > limit && ContinuousClock.now < deadline {
        try? await Task.sleep(for: .milliseconds(20))
        n = openSocketCount()
    }
    return n
}

/// The queries an upstream received so far, with their sources.
private func received(_ inbox: Inbox) -> [(query: ByteBuffer, source: SocketEndpoint)] {
    let m = inbox.messages.withLock { $0 }
    let s = inbox.sources.withLock { $0 }
    return Array(zip(m, s))
}

/// The shared upstream UDP sockets (per event loop, per target, an in-flight map by ID),
/// against upstreams on loopback that the tests drive by hand: a `TestUDPClient` stands in
/// for the upstream, records every query and its source, and answers only when told.
@Suite("Upstream UDP socket pool", .serialized)
struct UpstreamSocketPoolTests {
    @Test("Concurrent queries share a few source ports; replies sent back in reverse order reach their own queries")
    func sharedPortsReorderedReplies() async throws {
        let loop = testGroup.next()
        let upstream = try await TestUDPClient.make()
        defer { Task { await upstream.close() } }
        let target = try #require(upstream.channel.localAddress.flatMap(SocketEndpoint.init))
        let c = pooledClient(total: 3000, attempt: 3000, perTarget: 3)
        let n = 60
        async let results = withTaskGroup(of: (Int, UpstreamResult).self) { tasks in
            for i in 0..<n {
                tasks.addTask {
                    (i, await c.query(TestDNS.query(id: UInt16(1000 + i), name: "q\(i).example.org"), targets: [target], on: loop))
                }
            }
            return await tasks.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        _ = await upstream.inbox.wait(count: n, timeout: .seconds(3))
        let got = received(upstream.inbox)
        #expect(got.count == n)
        let ports = Dictionary(grouping: got, by: { $0.source.port })
        #expect(ports.count == 3, "\(n) queries over \(ports.count) source ports (3 sockets in rotation)")
        for (port, queries) in ports {
            let ids = queries.compactMap { TestDNS.header($0.query)?.id }
            #expect(Set(ids).count == ids.count, "an ID used twice at once on port \(port)")
        }
        // Answered last to first.
        for (query, source) in got.reversed() {
            try await upstream.send(try #require(TestDNS.echoReply(to: query)), to: source)
        }
        let all = await results
        #expect(all.count == n)
        for (i, result) in all {
            let answer = try result.get()
            #expect(TestDNS.header(answer.reply)?.id == UInt16(1000 + i), "the caller's ID comes back")
            #expect(TestDNS.firstLabel(answer.reply) == "q\(i)", "query \(i) got the reply to its own question")
            #expect(answer.attempts == 1 && answer.transport == .udp)
        }
    }

    @Test("A socket error (what a forged ICMP port unreachable gives) costs the queries on the socket a resend, not a SERVFAIL")
    func socketErrorResends() async throws {
        let loop = testGroup.next()
        let upstream = try await TestUDPClient.make()
        defer { Task { await upstream.close() } }
        let target = try #require(upstream.channel.localAddress.flatMap(SocketEndpoint.init))
        let c = pooledClient(total: 3000, attempt: 2500, perTarget: 1)
        let n = 6
        async let results = withTaskGroup(of: (Int, UpstreamResult).self) { tasks in
            for i in 0..<n {
                tasks.addTask {
                    (i, await c.query(TestDNS.query(id: UInt16(500 + i), name: "r\(i).example.org"), targets: [target], on: loop))
                }
            }
            return await tasks.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        _ = await upstream.inbox.wait(count: n, timeout: .seconds(3))
        #expect(received(upstream.inbox).count == n)
        let openedBefore = try await poolCounts(loop).opened
        // The one socket carrying them fails, as on an ECONNREFUSED the kernel reports.
        let failed = try await loop.submit { () -> Int in
            let sockets = UpstreamSocketPool.current(on: loop).sockets(of: target)
            for s in sockets { s.failAll("Connection refused (errno: 111)") }
            return sockets.count
        }.get()
        #expect(failed == 1)
        _ = await upstream.inbox.wait(count: 2 * n, timeout: .seconds(3))
        let all = received(upstream.inbox)
        #expect(all.count == 2 * n, "each query sent once more")
        #expect(try await poolCounts(loop).opened > openedBefore, "on sockets opened after the failure")
        for (query, source) in all.dropFirst(n) {
            try await upstream.send(try #require(TestDNS.echoReply(to: query)), to: source)
        }
        let done = await results
        #expect(done.count == n)
        for (i, result) in done {
            let answer = try result.get()
            #expect(TestDNS.header(answer.reply)?.id == UInt16(500 + i) && TestDNS.firstLabel(answer.reply) == "r\(i)")
            #expect(answer.attempts == 1, "the resend is the same attempt")
        }
    }

    @Test("A UDP reply that fills its receive slot may be cut: not taken, the query goes on over TCP")
    func fullSlotIsTruncated() async throws {
        let loop = testGroup.next()
        let upstream = try await TestUDPClient.make()
        defer { Task { await upstream.close() } }
        let target = try #require(upstream.channel.localAddress.flatMap(SocketEndpoint.init))
        let c = pooledClient(total: 1500, attempt: 1000, perTarget: 1)
        async let result = c.query(TestDNS.query(id: 77, name: "big.example.org"), targets: [target], on: loop)
        _ = await upstream.inbox.wait(count: 1, timeout: .seconds(3))
        let (query, source) = try #require(received(upstream.inbox).first)
        // A well-formed reply (question echoed, no TC) padded to more than the 4,096-byte slot.
        var reply = try #require(TestDNS.echoReply(to: query))
        reply.writeBytes([UInt8](repeating: 0, count: UDPListener.datagramSlotSize + 100 - reply.readableBytes))
        try await upstream.send(reply, to: source)
        // Nothing listens on the target's TCP port: the TCP retry is refused, so the query fails
        // instead of succeeding with 4,096 cut bytes.
        switch await result {
        case .success(let a): Issue.record("a cut reply was accepted: \(a.reply.readableBytes) bytes over \(a.transport)")
        case .failure(let f): #expect("\(f)".contains("upstream-error"), "\(f)")
        }
    }

    @Test("On one socket: a reply with an ID not in flight, or with another query's ID, is ignored")
    func wrongIDOrQuestionIgnored() async throws {
        let loop = testGroup.next()
        let upstream = try await TestUDPClient.make()
        defer { Task { await upstream.close() } }
        let target = try #require(upstream.channel.localAddress.flatMap(SocketEndpoint.init))
        let c = pooledClient(total: 3000, attempt: 3000, perTarget: 1)
        async let a = c.query(TestDNS.query(id: 1, name: "a.example.org"), targets: [target], on: loop)
        async let b = c.query(TestDNS.query(id: 2, name: "b.example.org"), targets: [target], on: loop)
        _ = await upstream.inbox.wait(count: 2, timeout: .seconds(3))
        let got = received(upstream.inbox)
        try #require(got.count == 2)
        #expect(got[0].source == got[1].source, "one socket in rotation")
        let byLabel = Dictionary(uniqueKeysWithValues: got.map { (TestDNS.firstLabel($0.query) ?? "?", $0) })
        let qa = try #require(byLabel["a"]), qb = try #require(byLabel["b"])
        let idA = try #require(TestDNS.header(qa.query)?.id), idB = try #require(TestDNS.header(qb.query)?.id)

        func reply(to query: ByteBuffer, id: UInt16, rcode: UInt8 = 0) throws -> ByteBuffer {
            var r = try #require(TestDNS.echoReply(to: query, rcode: rcode))
            r.setInteger(id, at: r.readerIndex)
            return r
        }
        var stray = idA &+ 1
        while stray == idB { stray &+= 1 }
        // An ID nobody waits for (it would fail the query if taken: SERVFAIL).
        try await upstream.send(try reply(to: qa.query, id: stray, rcode: 2), to: qa.source)
        // Each query's ID with the other's question.
        try await upstream.send(try reply(to: qb.query, id: idA), to: qa.source)
        try await upstream.send(try reply(to: qa.query, id: idB), to: qa.source)
        try await Task.sleep(for: .milliseconds(100))
        // The right replies.
        try await upstream.send(try reply(to: qb.query, id: idB), to: qb.source)
        try await upstream.send(try reply(to: qa.query, id: idA), to: qa.source)
        let (ra, rb) = await (a, b)
        let answerA = try ra.get(), answerB = try rb.get()
        #expect(TestDNS.firstLabel(answerA.reply) == "a" && TestDNS.header(answerA.reply)?.id == 1)
        #expect(TestDNS.firstLabel(answerB.reply) == "b" && TestDNS.header(answerB.reply)?.id == 2)
    }

    @Test("Late replies after a timeout are dropped, never taken by a later attempt on the same socket; IDs never repeat on it")
    func lateRepliesIgnored() async throws {
        let loop = testGroup.next()
        let upstream = try await TestUDPClient.make()
        defer { Task { await upstream.close() } }
        let target = try #require(upstream.channel.localAddress.flatMap(SocketEndpoint.init))
        // One socket, attempts of 80 ms: the same question is asked again and again on it.
        let c = pooledClient(total: 1200, attempt: 80, lifetime: .seconds(2), perTarget: 1)
        async let result = c.query(TestDNS.query(id: 77, name: "late.example.org"), targets: [target], on: loop)
        // Each time a new attempt arrives, the previous one (timed out by then) is answered.
        var answered = 0
        let deadline = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < deadline {
            let got = received(upstream.inbox)
            if got.count >= answered + 2 {
                let late = got[answered]
                try await upstream.send(try #require(TestDNS.echoReply(to: late.query)), to: late.source)
                answered += 1
                continue
            }
            if answered >= 6 { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let outcome = await result
        #expect(answered >= 6, "attempts seen: \(received(upstream.inbox).count)")
        guard case .failure(.timeout) = outcome else {
            Issue.record("a late reply was taken: \(outcome)")
            return
        }
        let got = received(upstream.inbox)
        #expect(Set(got.map(\.source)).count == 1, "all attempts on one socket")
        let ids = got.compactMap { TestDNS.header($0.query)?.id }
        #expect(Set(ids).count == ids.count, "an ID repeated on one socket: \(ids)")
    }

    @Test("Attempts of different lengths on one loop each time out at their own deadline")
    func mixedAttemptTimeouts() async throws {
        let loop = testGroup.next()
        let hole = try await FakeUpstream.blackHole()
        defer { hole.channel.close(promise: nil) }
        let long = pooledClient(total: 1500, attempt: 1500)
        let short = pooledClient(total: 150, attempt: 150)
        let clock = ContinuousClock()
        // The long attempt first, so that its deadline is the one the loop waits for.
        async let slow = long.query(TestDNS.query(id: 1, name: "slow.example.org"), targets: [hole.endpoint], on: loop)
        try await Task.sleep(for: .milliseconds(20))
        let start = clock.now
        let fast = await short.query(TestDNS.query(id: 2, name: "fast.example.org"), targets: [hole.endpoint], on: loop)
        let took = clock.now - start
        guard case .failure(.timeout) = fast else { Issue.record("\(fast)"); return }
        #expect(took >= .milliseconds(140) && took < .milliseconds(600), "\(took)")
        guard case .failure(.timeout) = await slow else { Issue.record("the long query did not time out"); return }
    }

    @Test("A dead target (nothing listening) fails every query in flight on its sockets fast, with upstream-error")
    func deadTargetFailsFast() async throws {
        #expect(try await poolsDrained())
        let loop = testGroup.next()
        let port = try await NSDFixture.freePort()
        let dead = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))
        let c = pooledClient(total: 4000, attempt: 2000, perTarget: 2)
        let clock = ContinuousClock()
        let start = clock.now
        let results = await withTaskGroup(of: UpstreamResult.self) { tasks in
            for i in 0..<20 {
                tasks.addTask { await c.query(TestDNS.query(id: UInt16(i), name: "d\(i).example.org"), targets: [dead], on: loop) }
            }
            return await tasks.reduce(into: []) { $0.append($1) }
        }
        let took = clock.now - start
        #expect(results.count == 20)
        for r in results {
            guard case .failure(.error(let why, _)) = r else { Issue.record("\(r)"); continue }
            #expect(why.contains("Connection refused"), "\(why)")
            #expect(UpstreamFailure.error(why, lastTried: dead).reason == "upstream-error")
        }
        // Well before the 2 s attempt timeout (a loaded machine may delay the ICMP error).
        #expect(took < .milliseconds(1000), "\(took)")
        // The sockets that saw the error are retired and closed.
        #expect(try await poolsDrained(within: .seconds(1)))
    }

    @Test("A socket is retired after its use bound; all are closed once drained and the descriptors are back")
    func retiredAfterUses() async throws {
        #expect(try await poolsDrained())
        let baseline = openSocketCount()
        let loop = testGroup.next()
        let inbox = Inbox()
        let upstream = try await FakeUpstream.responder(.rcode(0), record: inbox)
        let before = try await poolCounts(loop)
        // 2 sockets taken in turn, 4 attempts each: 40 queries need exactly 10 sockets.
        let c = pooledClient(total: 2000, attempt: 1000, uses: 4, perTarget: 2, choice: .inTurn)
        let ok = await withTaskGroup(of: Bool.self) { tasks in
            for i in 0..<40 {
                tasks.addTask {
                    (try? await c.query(TestDNS.query(id: UInt16(i), name: "u\(i).example.org"), targets: [upstream.endpoint], on: loop).get()) != nil
                }
            }
            return await tasks.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(ok == 40)
        let perPort = Dictionary(grouping: received(inbox), by: { $0.source.port }).mapValues(\.count)
        #expect(perPort.count == 10, "source ports: \(perPort)")
        #expect(perPort.values.allSatisfy { $0 <= 4 }, "\(perPort)")
        let after = try await poolCounts(loop)
        #expect(after.opened - before.opened == 10)
        // Every socket reached its bound and nothing is in flight: all closed already.
        #expect(after.open == before.open, "\(after.open) open, \(before.open) before")
        try await upstream.channel.close().get()
        let now = await socketsDown(to: baseline)
        #expect(now <= baseline, "sockets: \(now), before the test: \(baseline)")
    }

    @Test("An idle socket is closed after its lifetime; the descriptors are back")
    func idleClosedAfterLifetime() async throws {
        #expect(try await poolsDrained())
        let baseline = openSocketCount()
        let loop = testGroup.next()
        let upstream = try await FakeUpstream.responder(.rcode(0))
        let c = pooledClient(total: 2000, attempt: 1000, lifetime: .milliseconds(300), perTarget: 2, choice: .inTurn)
        for i in 0..<5 {
            let r = await c.query(TestDNS.query(id: UInt16(i), name: "i\(i).example.org"), targets: [upstream.endpoint], on: loop)
            #expect((try? r.get()) != nil)
        }
        #expect(try await poolCounts(loop).open == 2, "two sockets in rotation, idle now")
        // Lifetime 300 ms, swept every 250 ms.
        #expect(try await poolsDrained(within: .seconds(2)))
        try await upstream.channel.close().get()
        let now = await socketsDown(to: baseline)
        #expect(now <= baseline, "sockets: \(now), before the test: \(baseline)")
    }

    @Test("Attempts pick their socket at random among many: 1,000 queries on one loop leave from hundreds of source ports (P11)")
    func randomPortsPerAttempt() async throws {
        #expect(try await poolsDrained())
        let loop = testGroup.next()
        let inbox = Inbox()
        let upstream = try await FakeUpstream.responder(.rcode(0), record: inbox)
        defer { upstream.channel.close(promise: nil) }
        // The default limits: 1,024 slots per target, one chosen at random for each attempt.
        let c = UpstreamClient(policy: UpstreamPolicy(totalTimeout: .milliseconds(3000), attemptTimeout: .milliseconds(1500)))
        let n = 1000
        var ok = 0
        // 50 in flight at a time: bounded, and about what a busy server has outstanding.
        for batch in stride(from: 0, to: n, by: 50) {
            ok += await withTaskGroup(of: Bool.self) { tasks in
                for i in batch..<min(n, batch + 50) {
                    tasks.addTask {
                        (try? await c.query(TestDNS.query(id: UInt16(i), name: "p\(i).example.org"), targets: [upstream.endpoint], on: loop).get()) != nil
                    }
                }
                return await tasks.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
        }
        #expect(ok == n)
        let ports = Set(received(inbox).map(\.source.port))
        // About 630 expected (1,024 slots, 1,000 uniform picks); 500 leaves a wide margin.
        #expect(ports.count >= 500, "\(n) queries from \(ports.count) source ports")
    }

    @Test("The socket limits clamp what they are given; one slot means one socket whatever the choice")
    func limitsClamped() {
        let l = UpstreamSocketLimits(uses: 0, perTarget: 1_000_000)
        #expect(l.uses == 1 && l.perTarget == 65_536 && l.choice == .random)
        #expect(UpstreamSocketLimits().perTarget == 1024)
        var r = RandomBlock()
        for n in [1, 2, 3, 1024, 65_536] {
            for _ in 0..<200 { #expect((0..<n).contains(r.below(n))) }
        }
    }
}
