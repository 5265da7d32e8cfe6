import NIOCore
import NIOPosix
import Testing
import VPCDNSCore
@testable import VPCDNSServer

let loopback = SocketEndpoint(ip: .v4(0x7F00_0001), port: 0)

/// Opens listeners with the echo processor on 127.0.0.1:0 and closes them after `body`.
func withListeners(
    _ processor: EchoProcessor = EchoProcessor(),
    configuration: ListenerConfiguration = ListenerConfiguration(),
    group: any EventLoopGroup = testGroup,
    _ body: (DNSListeners, SocketEndpoint) async throws -> Void
) async throws {
    let listeners = DNSListeners(group: group, processor: processor, configuration: configuration)
    try await listeners.update(to: [loopback])
    let bound = await listeners.listeners[0].bound
    do {
        try await body(listeners, bound)
    } catch {
        await listeners.shutdown(gracePeriod: .zero)
        throw error
    }
    await listeners.shutdown(gracePeriod: .zero)
}

@Suite("Listeners over real loopback sockets", .serialized)
struct ListenerTests {
    @Test("UDP query gets the processor's reply; port 0 gets a real port shared by UDP and TCP")
    func udpEcho() async throws {
        let processor = EchoProcessor()
        try await withListeners(processor) { listeners, server in
            let all = await listeners.listeners
            #expect(all.count == 2)
            #expect(await listeners.isServing)
            #expect(server.port != 0)
            #expect(all.map(\.description) == ["listening on udp 127.0.0.1:\(server.port)", "listening on tcp 127.0.0.1:\(server.port)"])
            let client = try await TestUDPClient.make()
            defer { Task { await client.close() } }
            let reply = try #require(try await client.exchange(TestDNS.query(id: 0xBEEF, name: "www.example.org"), with: server))
            let h = try #require(TestDNS.header(reply))
            #expect(h.id == 0xBEEF && h.qr && h.rcode == 0)
            let ctx = try #require(processor.contexts.withLock { $0.first })
            #expect(ctx.transport == .udp)
            #expect(ctx.listener == server)
            #expect(ctx.client == SocketEndpoint(client.channel.localAddress!)!)
        }
    }

    @Test("dig gets a valid answer over UDP and TCP")
    func dig() async throws {
        try await withListeners { _, server in
            let udp = try Dig.query("www.example.org", server: server)
            #expect(udp.status == "NOERROR", "\(udp.output)")
            #expect(udp.flags.contains("qr"))
            let tcp = try Dig.query("www.example.org", server: server, tcp: true)
            #expect(tcp.status == "NOERROR", "\(tcp.output)")
        }
    }

    @Test("IPv6 loopback listener")
    func ipv6() async throws {
        let listeners = DNSListeners(group: testGroup, processor: EchoProcessor())
        defer { Task { await listeners.shutdown(gracePeriod: .zero) } }
        try await listeners.update(to: [SocketEndpoint("[::1]:0")!])
        let server = await listeners.listeners[0].bound
        #expect(await listeners.listeners[0].description == "listening on udp [::1]:\(server.port)")
        let client = try await TestUDPClient.make(ipv6: true)
        defer { Task { await client.close() } }
        let reply = try await client.exchange(TestDNS.query(id: 6, name: "v6.example.org"), with: server)
        #expect(reply.flatMap(TestDNS.header)?.id == 6)
    }

    @Test("Several SO_REUSEPORT sockets on one port all answer")
    func reusePort() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        defer { group.shutdownGracefully { _ in } }
        var config = ListenerConfiguration()
        config.udpSocketsPerAddress = 4
        let processor = EchoProcessor()
        try await withListeners(processor, configuration: config, group: group) { _, server in
            var answered = 0
            for i in 0..<40 {
                // A new source port per query: the kernel hashes the 4-tuple over the sockets.
                let client = try await TestUDPClient.make()
                if try await client.exchange(TestDNS.query(id: UInt16(i), name: "rp.example.org"), with: server) != nil {
                    answered += 1
                }
                await client.close()
            }
            #expect(answered == 40)
            #expect(processor.loops.withLock { $0.count } >= 2)
        }
    }

    @Test("Wildcard 0.0.0.0: answers now, late from the loop and late from another thread all leave from the address asked")
    func wildcardReplySource() async throws {
        let processor = EchoProcessor(delay: .milliseconds(30))
        let listeners = DNSListeners(group: testGroup, processor: processor)
        try await listeners.update(to: [SocketEndpoint(ip: .v4(0), port: 0)])
        let port = await listeners.listeners[0].bound.port
        // 127.0.0.3 is this host's (all of 127/8 is on lo) but not the address the kernel
        // would pick for a reply to 127.0.0.1: dig drops a reply from any other source.
        let server = SocketEndpoint(ip: .v4(0x7F00_0003), port: port)
        var statuses: [String] = []
        for name in ["now.example.org", "slow.example.org", "away.example.org"] {
            // A generous timeout: "away" is answered from a task, late on a loaded machine.
            let r = try DigRun.query(name, server: server, options: ["+time=3"])
            statuses.append(r.status.isEmpty ? r.output : r.status)
        }
        await listeners.shutdown(gracePeriod: .zero)
        #expect(statuses == ["NOERROR", "NOERROR", "NOERROR"])
        #expect(processor.contexts.withLock { $0.map(\.listener) } == [server, server, server], "the listener is the address asked")
    }

    @Test("Garbage and responses are dropped, counted, and the listener keeps serving")
    func garbage() async throws {
        try await withListeners { listeners, server in
            let client = try await TestUDPClient.make()
            defer { Task { await client.close() } }
            var junk = ByteBufferAllocator().buffer(capacity: 3)
            junk.writeBytes([1, 2, 3])
            #expect(try await client.exchange(junk, with: server, timeout: .milliseconds(100)) == nil)
            let response = TestDNS.echoReply(to: TestDNS.query(id: 9, name: "x.example.org"))!
            #expect(try await client.exchange(response, with: server, timeout: .milliseconds(100)) == nil)
            #expect(listeners.stats.snapshot.dropped == 2)
            #expect(try await client.exchange(TestDNS.query(id: 10, name: "ok.example.org"), with: server) != nil)
        }
    }

    @Test("recvmmsg batches: a burst of datagrams, large ones included, all answered whole")
    func udpBurst() async throws {
        try await withListeners { listeners, server in
            let client = try await TestUDPClient.make()
            defer { Task { await client.close() } }
            var sizes: [UInt16: Int] = [:]
            for i in 0..<100 {
                var q = TestDNS.query(id: UInt16(i), name: "burst.example.org")
                // Every tenth query padded to 3000 bytes: a batch slot must hold it all.
                if i % 10 == 0 { q.writeRepeatingByte(0, count: 3000 - q.readableBytes) }
                sizes[UInt16(i)] = q.readableBytes
                client.channel.write(AddressedEnvelope(remoteAddress: server.socketAddress, data: q), promise: nil)
            }
            client.channel.flush()
            let replies = await client.inbox.wait(count: 100, timeout: .seconds(3))
            #expect(replies.count == 100)
            for r in replies {
                let h = try #require(TestDNS.header(r))
                #expect(sizes[h.id] == r.readableBytes, "reply \(h.id) has the query's length")
            }
            #expect(listeners.stats.snapshot.udpQueries == 100)
        }
    }

    @Test("Late (.pending) answers reach the UDP client")
    func udpPending() async throws {
        try await withListeners(EchoProcessor(delay: .milliseconds(50))) { _, server in
            let client = try await TestUDPClient.make()
            defer { Task { await client.close() } }
            let reply = try await client.exchange(TestDNS.query(id: 77, name: "slow.example.org"), with: server)
            #expect(reply.flatMap(TestDNS.header)?.id == 77)
        }
    }

    @Test("Answers from another thread reach UDP and TCP clients")
    func offLoopAnswers() async throws {
        try await withListeners(EchoProcessor(delay: .milliseconds(20))) { listeners, server in
            let client = try await TestUDPClient.make()
            defer { Task { await client.close() } }
            let reply = try await client.exchange(TestDNS.query(id: 78, name: "away.example.org"), with: server)
            #expect(reply.flatMap(TestDNS.header)?.id == 78)
            let conn = try await TestTCPConnection.connect(to: server)
            defer { Task { await conn.close() } }
            var two = TestDNS.framed(TestDNS.query(id: 80, name: "away2.example.org"))
            var both = TestDNS.framed(TestDNS.query(id: 79, name: "away.example.org"))
            both.writeBuffer(&two)
            try await conn.send(both)
            let replies = await conn.inbox.wait(count: 2, timeout: .seconds(2))
            #expect(Set(replies.compactMap { TestDNS.header($0)?.id }) == [79, 80])
            #expect(await listeners.inFlight == 0)
        }
    }

    @Test("TCP: three pipelined queries in one write get three answers, out of order")
    func tcpPipelining() async throws {
        try await withListeners(EchoProcessor(delay: .milliseconds(150))) { _, server in
            let conn = try await TestTCPConnection.connect(to: server)
            defer { Task { await conn.close() } }
            var all = TestDNS.framed(TestDNS.query(id: 1, name: "slow.example.org"))
            var two = TestDNS.framed(TestDNS.query(id: 2, name: "a.example.org"))
            var three = TestDNS.framed(TestDNS.query(id: 3, name: "b.example.org"))
            all.writeBuffer(&two)
            all.writeBuffer(&three)
            try await conn.send(all)
            let replies = await conn.inbox.wait(count: 3, timeout: .seconds(2))
            let ids = replies.compactMap { TestDNS.header($0)?.id }
            #expect(Set(ids) == [1, 2, 3])
            #expect(ids.last == 1, "the slow one should come last: \(ids)")
        }
    }

    @Test("TCP: a query drip-fed one byte at a time is answered")
    func tcpDripFed() async throws {
        try await withListeners { _, server in
            let conn = try await TestTCPConnection.connect(to: server)
            defer { Task { await conn.close() } }
            try await conn.dripFeed(TestDNS.framed(TestDNS.query(id: 42, name: "drip.example.org")))
            let replies = await conn.inbox.wait(count: 1, timeout: .seconds(2))
            #expect(replies.first.flatMap(TestDNS.header)?.id == 42)
        }
    }

    @Test("TCP: idle connections are closed, but not while an answer is pending")
    func tcpIdle() async throws {
        var config = ListenerConfiguration()
        config.tcpIdleTimeoutMilliseconds = 150
        try await withListeners(EchoProcessor(delay: .milliseconds(400)), configuration: config) { listeners, server in
            let idle = try await TestTCPConnection.connect(to: server)
            let clock = ContinuousClock()
            let start = clock.now
            #expect(await idle.waitClosed(timeout: .seconds(2)))
            #expect(clock.now - start >= .milliseconds(140))

            let busy = try await TestTCPConnection.connect(to: server)
            defer { Task { await busy.close() } }
            try await busy.send(TestDNS.framed(TestDNS.query(id: 5, name: "slow.example.org")))
            let replies = await busy.inbox.wait(count: 1, timeout: .seconds(2))
            #expect(replies.first.flatMap(TestDNS.header)?.id == 5, "answer after 400 ms despite a 150 ms idle timeout")
            #expect(await busy.waitClosed(timeout: .seconds(2)))
            #expect(listeners.stats.snapshot.tcpIdleClosed == 2)
        }
    }

    @Test("TCP: half-close after a query still gets the pending answer, then the server closes")
    func tcpHalfClose() async throws {
        try await withListeners(EchoProcessor(delay: .milliseconds(100))) { _, server in
            let conn = try await TestTCPConnection.connect(to: server)
            defer { Task { await conn.close() } }
            try await conn.send(TestDNS.framed(TestDNS.query(id: 8, name: "slow.example.org")))
            try await conn.halfClose()
            let replies = await conn.inbox.wait(count: 1, timeout: .seconds(2))
            #expect(replies.first.flatMap(TestDNS.header)?.id == 8)
            #expect(await conn.waitClosed(timeout: .seconds(2)))
        }
    }

    @Test("TCP connection limit: the oldest idle connection makes room; with every connection busy the extra one is closed; UDP keeps answering")
    func tcpLimit() async throws {
        var config = ListenerConfiguration()
        config.maxTCPConnections = 2
        try await withListeners(EchoProcessor(delay: .seconds(3)), configuration: config) { listeners, server in
            var conns: [TestTCPConnection] = []
            for i in 0..<2 {
                let c = try await TestTCPConnection.connect(to: server)
                try await c.send(TestDNS.framed(TestDNS.query(id: UInt16(i), name: "t.example.org")))
                #expect(await c.inbox.wait(count: 1, timeout: .seconds(2)).count == 1)
                conns.append(c)
                try await Task.sleep(for: .milliseconds(20))
            }
            // Both idle: the older one is closed for the newcomer (RFC 7766 6.2.3).
            let extra = try await TestTCPConnection.connect(to: server)
            try await extra.send(TestDNS.framed(TestDNS.query(id: 2, name: "t.example.org")))
            #expect(await extra.inbox.wait(count: 1, timeout: .seconds(2)).count == 1)
            #expect(await conns[0].waitClosed(timeout: .seconds(1)))
            #expect(conns[1].channel.isActive)
            #expect(listeners.stats.snapshot.tcpIdleEvicted == 1)
            #expect(listeners.stats.snapshot.tcpConnectionsRejected == 0)
            let client = try await TestUDPClient.make()
            #expect(try await client.exchange(TestDNS.query(id: 3, name: "u.example.org"), with: server) != nil)
            await client.close()
            // Both open connections busy (a slow query pending on each): a new one is refused.
            try await conns[1].send(TestDNS.framed(TestDNS.query(id: 5, name: "slow.example.org")))
            try await extra.send(TestDNS.framed(TestDNS.query(id: 6, name: "slow.example.org")))
            try await Task.sleep(for: .milliseconds(100))
            let refused = try await TestTCPConnection.connect(to: server)
            #expect(await refused.waitClosed(timeout: .seconds(1)))
            #expect(listeners.stats.snapshot.tcpConnectionsRejected == 1)
            #expect(conns[1].channel.isActive && extra.channel.isActive, "a connection with a query in progress was closed")
            // A reload lowers the bound: open connections stay until they are idle.
            var lower = config
            lower.maxTCPConnections = 1
            await listeners.reconfigure(lower)
            let alsoRefused = try await TestTCPConnection.connect(to: server)
            #expect(await alsoRefused.waitClosed(timeout: .seconds(1)))
            #expect(listeners.stats.snapshot.tcpConnectionsRejected == 2)
            for c in conns + [extra] { await c.close() }
        }
    }

    @Test("A port taken by another socket: the error names the address")
    func bindConflict() async throws {
        let taken = try await DatagramBootstrap(group: testGroup).bind(host: "127.0.0.1", port: 0).get()
        defer { taken.close(promise: nil) }
        let port = taken.localAddress!.port!
        let listeners = DNSListeners(group: testGroup, processor: EchoProcessor())
        await #expect(throws: ListenerError.cannotListen(.udp, SocketEndpoint("127.0.0.1:\(port)")!, "Address already in use")) {
            try await listeners.update(to: [SocketEndpoint("127.0.0.1:\(port)")!])
        }
        let e = ListenerError.cannotListen(.udp, SocketEndpoint("127.0.0.1:53")!, "Permission denied")
        #expect(e.description == "cannot listen on udp 127.0.0.1:53: Permission denied")
        #expect(await listeners.listeners.isEmpty)
    }

    @Test("A non-local address cannot be bound (no packet is sent)")
    func bindNonLocal() async throws {
        let listeners = DNSListeners(group: testGroup, processor: EchoProcessor())
        let good = loopback
        let bad = SocketEndpoint("192.0.2.1:0")!
        do {
            try await listeners.update(to: [good, bad])
            Issue.record("bind of 192.0.2.1 should fail")
        } catch let error as ListenerError {
            #expect(error.description.hasPrefix("cannot listen on udp 192.0.2.1:0: "), "\(error)")
        }
        // All or nothing: the good one opened by the same call was closed again.
        #expect(await listeners.listeners.isEmpty)
    }

    @Test("update(to:) opens and closes the difference")
    func update() async throws {
        let listeners = DNSListeners(group: testGroup, processor: EchoProcessor())
        let a = loopback
        let b = SocketEndpoint("127.0.0.2:0")!
        try await listeners.update(to: [a])
        let boundA = await listeners.listeners[0].bound
        let changes = try await listeners.update(to: [a, b])
        #expect(changes.opened.count == 2 && changes.closed.isEmpty)
        let boundB = await listeners.listeners[2].bound
        #expect(await listeners.listeners[0].bound == boundA, "A is untouched")
        let removed = try await listeners.update(to: [b])
        #expect(removed.closed.map(\.bound) == [boundA, boundA])
        let client = try await TestUDPClient.make()
        #expect(try await client.exchange(TestDNS.query(id: 1, name: "b.example.org"), with: boundB) != nil)
        #expect(try await client.exchange(TestDNS.query(id: 2, name: "a.example.org"), with: boundA, timeout: .milliseconds(150)) == nil)
        await client.close()
        await listeners.shutdown()
    }

    @Test("Graceful shutdown: stop reading, send pending answers, close")
    func gracefulShutdown() async throws {
        let listeners = DNSListeners(group: testGroup, processor: EchoProcessor(delay: .milliseconds(200)))
        try await listeners.update(to: [loopback])
        let server = await listeners.listeners[0].bound
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        try await client.send(TestDNS.query(id: 11, name: "slow.example.org"), to: server)
        // Wait (bounded) until the query is in flight: a fixed sleep is too short on a loaded machine.
        for _ in 0..<200 where await listeners.inFlight == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(await listeners.inFlight == 1)
        let clock = ContinuousClock()
        let start = clock.now
        await listeners.shutdown(gracePeriod: .seconds(5))
        #expect(clock.now - start < .seconds(3), "waited for the answer, not the whole grace period")
        #expect(await !listeners.isServing)
        let got = await client.inbox.wait(count: 1, timeout: .seconds(1))
        #expect(got.first.flatMap(TestDNS.header)?.id == 11)
        #expect(try await client.exchange(TestDNS.query(id: 12, name: "x.example.org"), with: server, timeout: .milliseconds(150)) == nil)
        await #expect(throws: CancellationError.self) { try await listeners.update(to: [loopback]) }
    }

    @Test("Graceful shutdown over TCP: the pending answer is written before the connection closes")
    func gracefulShutdownTCP() async throws {
        let listeners = DNSListeners(group: testGroup, processor: EchoProcessor(delay: .milliseconds(150)))
        try await listeners.update(to: [loopback])
        let server = await listeners.listeners[0].bound
        let conn = try await TestTCPConnection.connect(to: server)
        defer { Task { await conn.close() } }
        try await conn.send(TestDNS.framed(TestDNS.query(id: 21, name: "slow.example.org")))
        for _ in 0..<200 where await listeners.inFlight == 0 { try await Task.sleep(for: .milliseconds(10)) }
        await listeners.shutdown(gracePeriod: .seconds(5))
        let got = await conn.inbox.wait(count: 1, timeout: .seconds(1))
        #expect(got.first.flatMap(TestDNS.header)?.id == 21)
        #expect(await conn.waitClosed(timeout: .seconds(3)))
        await #expect(throws: (any Error).self) { try await TestTCPConnection.connect(to: server) }
    }
}
