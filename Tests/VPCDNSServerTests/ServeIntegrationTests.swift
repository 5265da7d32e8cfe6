import Foundation
import NIOCore
import NIOPosix
import Testing
import VPCDNSCore
@testable import VPCDNSServer

#if canImport(Glibc)
import Glibc
#endif

/// Raw DNS messages the test clients send when dig cannot (bad input, exact bytes).
enum RawDNS {
    /// The wire form of `name`, letter case kept.
    static func nameBytes(_ name: String) -> [UInt8] {
        var out: [UInt8] = []
        for label in name.split(separator: ".") {
            out.append(UInt8(label.utf8.count))
            out += Array(label.utf8)
        }
        out.append(0)
        return out
    }

    /// A message with `qdcount` in the header and `questions` copies of the question.
    static func query(id: UInt16, name: String, type: UInt16 = 1, qclass: UInt16 = 1, flags: UInt16 = 0x0100,
                      qdcount: UInt16 = 1, questions: Int = 1, edns: UInt16? = nil, ednsVersion: UInt8 = 0) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: 64)
        b.writeInteger(id)
        b.writeInteger(flags)
        b.writeInteger(qdcount)
        b.writeInteger(UInt16(0))
        b.writeInteger(UInt16(0))
        b.writeInteger(UInt16(edns == nil ? 0 : 1))
        for _ in 0..<questions {
            b.writeBytes(nameBytes(name))
            b.writeInteger(type)
            b.writeInteger(qclass)
        }
        if let edns {
            b.writeInteger(UInt8(0))
            b.writeInteger(UInt16(41))
            b.writeInteger(edns)
            b.writeInteger(UInt8(0))  // extended rcode
            b.writeInteger(ednsVersion)
            b.writeInteger(UInt16(0))  // flags
            b.writeInteger(UInt16(0))  // rdlength
        }
        return b
    }

    /// A header claiming one question, followed by `body` bytes.
    static func headerThen(id: UInt16, _ body: [UInt8]) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: 12 + body.count)
        b.writeInteger(id)
        b.writeInteger(UInt16(0x0100))
        b.writeInteger(UInt16(1))
        b.writeInteger(UInt16(0))
        b.writeInteger(UInt16(0))
        b.writeInteger(UInt16(0))
        b.writeBytes(body)
        return b
    }

    /// The OPT record when it is the message's last record and has no options (as vpcdns
    /// writes it): (payload size, extended rcode, version).
    static func trailingOPT(_ m: ByteBuffer) -> (size: UInt16, extendedRCode: UInt8, version: UInt8)? {
        let end = m.readerIndex + m.readableBytes
        let start = end - 11
        guard m.readableBytes >= 23, m.getInteger(at: start, as: UInt8.self) == 0,
              m.getInteger(at: start + 1, as: UInt16.self) == 41,
              m.getInteger(at: start + 9, as: UInt16.self) == 0 else { return nil }
        return (m.getInteger(at: start + 3)!, m.getInteger(at: start + 5)!, m.getInteger(at: start + 6)!)
    }
}

private func elapsed<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    let r = try await body()
    return (r, clock.now - start)
}

@Suite("vpcdns serve: the real binary over real sockets, with NSD upstreams", .serialized)
struct ServeIntegrationTests {
    // MARK: - O1: startup

    @Test("O1: every listener is printed with its real port, quickly")
    func startupLines() async throws {
        let h = try await ServeHarness.start()
        let lines = h.process.listeningLines
        #expect(lines == [
            "listening on udp \(h.listen)", "listening on tcp \(h.listen)",
            "listening on udp \(h.appResolver)", "listening on tcp \(h.appResolver)",
            "listening on udp \(h.appInbound)", "listening on tcp \(h.appInbound)",
            "listening on udp \(h.dbResolver)", "listening on tcp \(h.dbResolver)",
        ], "\(h.process.standardError)")
        #expect(h.startupTime < .seconds(1), "startup took \(h.startupTime)")
        // Every printed listener answers, over UDP and TCP.
        for server in [h.listen, h.appResolver, h.appInbound, h.dbResolver] {
            #expect(try h.dig("www.example.com", at: server).status == "NOERROR", "\(server)")
            #expect(try h.dig("www.example.com", at: server, "+tcp").status == "NOERROR", "\(server) tcp")
        }
        #expect(h.stopServer() == 0)
    }

    // MARK: - Answers: private, public, forward rule, views

    @Test("Private answers have AA; public and FORWARD-rule answers come from their upstreams without AA")
    func answers() async throws {
        let h = try await ServeHarness.start()

        let ec2 = try h.dig("ec2.us-west-2.amazonaws.com")
        #expect(ec2.status == "NOERROR" && ec2.aa, "\(ec2.output)")
        #expect(Set(ec2.rdata("A")) == ["10.0.1.10", "10.0.2.10"], "\(ec2.output)")
        #expect(ec2.ttl("A") == 60)

        let phz = try h.dig("www.myservice.internal")
        #expect(phz.status == "NOERROR" && phz.aa, "\(phz.output)")
        #expect(phz.rdata("A") == ["10.0.5.10"])
        let nx = try h.dig("nope.myservice.internal")
        #expect(nx.status == "NXDOMAIN" && nx.aa, "\(nx.output)")

        let pub = try h.dig("www.example.com")
        #expect(pub.status == "NOERROR" && !pub.aa && pub.flags.contains("ra"), "\(pub.output)")
        #expect(pub.rdata("A") == ["198.51.100.10"])

        let corp = try h.dig("host.corp.example.com")
        #expect(corp.status == "NOERROR" && !corp.aa, "\(corp.output)")
        #expect(corp.rdata("A") == ["192.0.2.77"], "answered by the FORWARD rule's NSD: \(corp.output)")
        // The default upstream does not serve corp.example.com: had the query gone there it
        // would be NXDOMAIN (the root zone). Check the other way round too.
        #expect(try h.dig("host.corp.example.com", at: h.dbResolver).status == "NXDOMAIN")

        // Query log spot check (L1): one record per answered query, the right fields.
        let ec2Log = await h.logRecords("ec2.us-west-2.amazonaws.com.")
        #expect(ec2Log.count == 1)
        #expect(ec2Log.first?.vpcdns("decision") == "endpoint-private-dns")
        #expect(ec2Log.first?.vpcdns("zone_id") == "vpce-0ec2a1b2c3d4e5f60")
        #expect(ec2Log.first?.vpcdns("cache") == "none")
        #expect(ec2Log.first?.vpcdns("upstream") == nil)
        #expect(ec2Log.first?.string("vpc_id") == ServeHarness.appVPC)
        #expect(ec2Log.first?.string("transport") == "UDP")

        let pubLog = await h.logRecords("www.example.com.")
        #expect(pubLog.count == 1)
        #expect(pubLog.first?.vpcdns("decision") == "upstream")
        #expect(pubLog.first?.vpcdns("cache") == "miss")
        #expect(pubLog.first?.vpcdns("upstream") == "\(h.publicNSD.endpoint)")

        let corpLog = await h.logRecords("host.corp.example.com.") { $0.string("vpc_id") == ServeHarness.appVPC }
        #expect(corpLog.count == 1)
        #expect(corpLog.first?.vpcdns("decision") == "forward-rule")
        #expect(corpLog.first?.vpcdns("zone") == "corp.example.com")
        #expect(corpLog.first?.vpcdns("zone_id") == ServeHarness.corpRule)
        #expect(corpLog.first?.vpcdns("cache") == "miss")
        #expect(corpLog.first?.vpcdns("upstream") == "\(h.corpNSD.endpoint)")

        let phzLog = await h.logRecords("www.myservice.internal.")
        #expect(phzLog.first?.vpcdns("decision") == "private-hosted-zone")
        #expect(phzLog.first?.vpcdns("zone") == "myservice.internal")
        #expect(h.stopServer() == 0)
    }

    @Test("V1/V2: the source picks the VPC on the shared listener; a resolver address overrides the source")
    func views() async throws {
        let h = try await ServeHarness.start()
        let name = "ec2.us-west-2.amazonaws.com"
        let private4 = Set(["10.0.1.10", "10.0.2.10"])

        // Shared listener, by source (V2).
        let asApp = try h.dig(name, source: "127.0.0.1")
        #expect(Set(asApp.rdata("A")) == private4 && asApp.aa, "\(asApp.output)")
        let asDB = try h.dig(name, source: "127.0.0.2")
        #expect(asDB.rdata("A") == ["203.0.113.10"] && !asDB.aa, "\(asDB.output)")
        #expect(try h.dig("www.myservice.internal", source: "127.0.0.2").status == "NXDOMAIN", "R14: database never sees app's PHZ")

        // Resolver addresses, whatever the source (V1).
        let dbFromApp = try h.dig(name, at: h.dbResolver, source: "127.0.0.1")
        #expect(dbFromApp.rdata("A") == ["203.0.113.10"] && !dbFromApp.aa, "\(dbFromApp.output)")
        let appFromDB = try h.dig(name, at: h.appResolver, source: "127.0.0.2")
        #expect(Set(appFromDB.rdata("A")) == private4 && appFromDB.aa, "\(appFromDB.output)")
        let appFromNobody = try h.dig(name, at: h.appResolver, source: "127.0.0.3")
        #expect(Set(appFromNobody.rdata("A")) == private4, "\(appFromNobody.output)")

        let records = await h.logRecords(name.appending("."), count: 5)
        let vias = records.compactMap { r in r.vpcdns("via").map { "\(r.string("srcaddr") ?? "?") \(r.string("vpc_id") ?? "?") \($0)" } }
        #expect(vias.contains("127.0.0.1 \(ServeHarness.appVPC) source"), "\(vias)")
        #expect(vias.contains("127.0.0.2 \(ServeHarness.dbVPC) source"), "\(vias)")
        #expect(vias.contains("127.0.0.1 \(ServeHarness.dbVPC) resolver_address"), "\(vias)")
        #expect(vias.contains("127.0.0.3 \(ServeHarness.appVPC) resolver_address"), "\(vias)")
    }

    @Test("V3: a client no VPC matches gets REFUSED, logged with vpc_id -")
    func unmatchedClient() async throws {
        let h = try await ServeHarness.start()
        let r = try h.dig("www.example.com", source: "127.0.0.3")
        #expect(r.status == "REFUSED" && r.answers.isEmpty, "\(r.output)")
        let tcp = try h.dig("ec2.us-west-2.amazonaws.com", source: "127.0.0.3", "+tcp")
        #expect(tcp.status == "REFUSED" && tcp.answers.isEmpty, "\(tcp.output)")
        let log = await h.logRecords("www.example.com.") { $0.string("srcaddr") == "127.0.0.3" }
        #expect(log.first?.string("vpc_id") == "-")
        #expect(log.first?.string("rcode") == "REFUSED")
        #expect(log.first?.vpcdns("decision") == "refused")
        #expect(log.first?.vpcdns("reason") == "no-vpc-match")
        #expect(log.first?.vpcdns("via") == "none")
    }

    @Test("R7: the inbound-only S3 endpoint answers privately through the inbound endpoint only")
    func inboundOnlyS3() async throws {
        let h = try await ServeHarness.start()
        let viaInbound = try h.dig("s3.us-west-2.amazonaws.com", at: h.appInbound)
        #expect(viaInbound.status == "NOERROR" && viaInbound.aa, "\(viaInbound.output)")
        #expect(Set(viaInbound.rdata("A")) == ["10.0.1.30", "10.0.2.30"], "\(viaInbound.output)")
        let v6 = try h.dig("s3.us-west-2.amazonaws.com", "AAAA", at: h.appInbound)
        #expect(Set(v6.rdata("AAAA")) == ["2001:db8:a::30", "2001:db8:b::30"], "\(v6.output)")
        let bucket = try h.dig("my-bucket.s3.us-west-2.amazonaws.com", at: h.appInbound)
        #expect(Set(bucket.rdata("A")) == ["10.0.1.30", "10.0.2.30"], "\(bucket.output)")

        // The same VPC, not through the inbound endpoint: the public answer (gateway endpoint).
        let bySource = try h.dig("s3.us-west-2.amazonaws.com")
        #expect(bySource.rdata("A") == ["203.0.113.20"] && !bySource.aa, "\(bySource.output)")
        let byResolver = try h.dig("s3.us-west-2.amazonaws.com", at: h.appResolver)
        #expect(byResolver.rdata("A") == ["203.0.113.20"] && !byResolver.aa, "\(byResolver.output)")

        let inbound = await h.logRecords("s3.us-west-2.amazonaws.com.") { $0.vpcdns("via") == "inbound_endpoint" && $0.string("query_type") == "A" }
        #expect(inbound.count == 1)
        #expect((inbound.first?["srcids"] as? [String: Any])?["resolver_endpoint"] as? String == ServeHarness.inboundID)
        #expect(inbound.first?.vpcdns("decision") == "endpoint-private-dns")
        let outside = await h.logRecords("s3.us-west-2.amazonaws.com.") { $0.vpcdns("via") == "source" }
        #expect(outside.first?.vpcdns("decision") == "upstream")
        #expect(outside.first?.vpcdns("reason") == "inbound-only")
    }

    // MARK: - P1: TCP

    @Test("P1: TCP answers; pipelined queries on one connection are all answered; idle connections close")
    func tcp() async throws {
        // A second of idle time: long enough that a busy machine does not close the connection
        // between connect and the first write, short enough to wait for below.
        var options = ServeHarness.Options()
        options.tcpIdleTimeoutMs = 1000
        let h = try await ServeHarness.start(options)
        let d = try h.dig("www.myservice.internal", "A", "+tcp")
        #expect(d.status == "NOERROR" && d.rdata("A") == ["10.0.5.10"], "\(d.output)")
        let f = try h.dig("www.example.com", "A", "+tcp")
        #expect(f.rdata("A") == ["198.51.100.10"], "\(f.output)")

        // Four queries in one write: one slow (failover: ~200 ms behind a black hole), one
        // upstream, two local. All answered on the same connection, matched by ID.
        let conn = try await TestTCPConnection.connect(to: h.listen)
        defer { Task { await conn.close() } }
        var all = TestDNS.framed(RawDNS.query(id: 101, name: "www.failover.example"))
        for (id, name) in [(102, "www.myservice.internal"), (103, "sts.us-west-2.amazonaws.com"), (104, "ec2.us-west-2.amazonaws.com")] {
            var one = TestDNS.framed(RawDNS.query(id: UInt16(id), name: name))
            all.writeBuffer(&one)
        }
        try await conn.send(all)
        let replies = await conn.inbox.wait(count: 4, timeout: .seconds(3))
        let ids = replies.compactMap { TestDNS.header($0)?.id }
        #expect(ids.count == 4 && Set(ids) == [101, 102, 103, 104], "\(ids)")
        #expect(replies.allSatisfy { TestDNS.header($0).map { $0.qr && $0.rcode == 0 && $0.ancount >= 1 } == true })
        #expect(ids.last == 101, "the slow one is answered last, the others did not wait for it: \(ids)")

        // That connection is now idle: closed after tcp_idle_timeout_ms (1000).
        let (closedBusy, _) = await elapsed { await conn.waitClosed(timeout: .seconds(5)) }
        #expect(closedBusy)

        let idle = try await TestTCPConnection.connect(to: h.listen)
        defer { Task { await idle.close() } }
        let (closed, took) = await elapsed { await idle.waitClosed(timeout: .seconds(5)) }
        #expect(closed)
        #expect(took >= .milliseconds(900) && took < .milliseconds(3000), "\(took)")
    }

    // MARK: - P2: EDNS and truncation

    @Test("P2: OPT echoed with udp 1232; no OPT without EDNS; EDNS version 1 gets BADVERS")
    func edns() async throws {
        let h = try await ServeHarness.start()
        let withEDNS = try h.dig("www.myservice.internal", "A", "+bufsize=4096")
        #expect(withEDNS.edns?.contains("version: 0") == true, "\(withEDNS.output)")
        #expect(withEDNS.edns?.contains("udp: 1232") == true, "\(withEDNS.output)")
        let upstream = try h.dig("www.example.com", "A", "+bufsize=4096")
        #expect(upstream.edns?.contains("udp: 1232") == true, "forwarded answers too: \(upstream.output)")

        let plain = try h.dig("www.myservice.internal", "A", "+noedns")
        #expect(plain.status == "NOERROR" && plain.edns == nil, "\(plain.output)")

        let v1 = try h.dig("www.myservice.internal", "A", "+edns=1", "+noednsnegotiation")
        #expect(v1.status == "BADVERS", "\(v1.output)")
        #expect(v1.edns != nil, "BADVERS needs an OPT: \(v1.output)")

        // Raw: the OPT advertises 1232 whatever the client offered; BADVERS in the extended rcode.
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        let r = try #require(try await client.exchange(RawDNS.query(id: 5, name: "www.myservice.internal", edns: 4096), with: h.listen))
        #expect(RawDNS.trailingOPT(r)?.size == 1232)
        let bad = try #require(try await client.exchange(RawDNS.query(id: 6, name: "www.myservice.internal", edns: 1232, ednsVersion: 1), with: h.listen))
        let opt = try #require(RawDNS.trailingOPT(bad))
        #expect(Int(opt.extendedRCode) << 4 | Int(TestDNS.header(bad)!.rcode) == 16, "BADVERS = 16")
        #expect(opt.version == 0)
        let log = await h.logRecords("www.myservice.internal.") { $0.string("rcode") == "BADVERS" }
        #expect(log.first?.vpcdns("reason") == "bad-packet:edns-version")
    }

    @Test("P2: a large answer is truncated (TC) over UDP, whole over TCP and after dig's TCP retry")
    func truncation() async throws {
        let h = try await ServeHarness.start()
        let name = "big.myservice.internal"
        let noEDNS = try h.dig(name, "TXT", "+noedns", "+ignore")
        #expect(noEDNS.tc, "\(noEDNS.output)")
        let small = try h.dig(name, "TXT", "+bufsize=600", "+ignore")
        #expect(small.tc, "\(small.output)")
        let capped = try h.dig(name, "TXT", "+bufsize=4096", "+ignore")
        #expect(capped.tc, "~1.7 KB is over vpcdns's own 1232 cap: \(capped.output)")

        let tcp = try h.dig(name, "TXT", "+tcp")
        #expect(tcp.status == "NOERROR" && !tcp.tc && tcp.aa, "\(tcp.output)")
        #expect(tcp.rdata("TXT").count == 8, "\(tcp.output)")
        let retried = try h.dig(name, "TXT")
        #expect(retried.output.contains("Truncated, retrying in TCP mode"), "\(retried.output)")
        #expect(retried.rdata("TXT").count == 8 && retried.status == "NOERROR", "\(retried.output)")

        // Raw: never more than 512 bytes without EDNS, never more than 1232 with.
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        let r512 = try #require(try await client.exchange(RawDNS.query(id: 1, name: name, type: 16), with: h.listen))
        #expect(r512.readableBytes <= 512 && TestDNS.header(r512)?.tc == true, "\(r512.readableBytes) bytes")
        let r1232 = try #require(try await client.exchange(RawDNS.query(id: 2, name: name, type: 16, edns: 65000), with: h.listen))
        #expect(r1232.readableBytes <= 1232 && TestDNS.header(r1232)?.tc == true, "\(r1232.readableBytes) bytes")
    }

    @Test("P2/P6: an upstream answer over 1232 bytes is fetched over TCP, truncated to the UDP client, whole over TCP")
    func largeUpstreamAnswer() async throws {
        let h = try await ServeHarness.start()
        let name = "big.bulk.example"
        let udp = try h.dig(name, "TXT", "+ignore")
        #expect(udp.tc && udp.status == "NOERROR", "\(udp.output)")
        let retried = try h.dig(name, "TXT")
        #expect(retried.output.contains("Truncated, retrying in TCP mode"), "\(retried.output)")
        #expect(retried.status == "NOERROR" && retried.rdata("TXT").count == 10, "\(retried.output)")
        #expect(!retried.aa)
        // Three records: the miss (UDP), dig's truncated UDP try (a hit), its TCP retry (a hit).
        // Wait for all three: the writer flushes every 50 ms, so two may be visible first.
        // Lines of different event loops may reach the file out of order (query-log.md): found by content.
        let log = await h.logRecords("big.bulk.example.", count: 3)
        #expect(log.count == 3)
        let miss = log.filter { $0.vpcdns("cache") == "miss" }
        #expect(miss.count == 1 && miss.first?.vpcdns("upstream") == "\(h.publicNSD.endpoint)")
        #expect((miss.first?["answers"] as? [Any])?.count == 10, "the whole RRset came from NSD (over TCP: it does not fit 1232 bytes)")
        let overTCP = log.filter { $0.string("transport") == "TCP" }
        #expect(overTCP.count == 1 && overTCP.first?.vpcdns("cache") == "hit")
    }

    // MARK: - P3: 0x20

    @Test("P3: the question is echoed byte for byte, letter case included, for local and forwarded answers")
    func caseEcho() async throws {
        let h = try await ServeHarness.start()
        let d = try h.dig("WwW.MyService.InTeRnAl")
        #expect(d.question?.hasPrefix("WwW.MyService.InTeRnAl.") == true, "\(d.output)")
        #expect(d.rdata("A") == ["10.0.5.10"], "matching is case-insensitive: \(d.output)")

        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        for (name, server) in [("WwW.MyService.InTeRnAl", h.listen), ("EC2.uS-WeSt-2.AmAzOnAwS.cOm", h.dbResolver),
                               ("wWw.ExAmPlE.cOm", h.listen)] {
            let q = RawDNS.query(id: 0x2020, name: name)
            let reply = try #require(try await client.exchange(q, with: server), "\(name)")
            let qlen = RawDNS.nameBytes(name).count + 4
            #expect(reply.getBytes(at: reply.readerIndex + 12, length: qlen) == q.getBytes(at: q.readerIndex + 12, length: qlen), "\(name)")
            let header = try #require(TestDNS.header(reply))
            #expect(header.rcode == 0 && header.ancount >= 1, "\(name)")
        }
        let log = await h.logRecords("EC2.uS-WeSt-2.AmAzOnAwS.cOm.")
        #expect(log.count == 1, "the log keeps the case too")
    }

    // MARK: - P4: bad input

    @Test("P4: each kind of bad input gets its answer (or none) and the server keeps serving")
    func badInput() async throws {
        let h = try await ServeHarness.start()
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        func ask(_ m: ByteBuffer, timeout: Duration = .milliseconds(1000)) async throws -> TestDNS.Header? {
            try await client.exchange(m, with: h.listen, timeout: timeout).flatMap(TestDNS.header)
        }
        let good = { (id: UInt16) in RawDNS.query(id: id, name: "www.myservice.internal") }

        // Dropped: too short for a header; a response (QR set). The next query is answered.
        var short = ByteBufferAllocator().buffer(capacity: 5)
        short.writeBytes([0x12, 0x34, 0x01, 0x00, 0x00])
        #expect(try await ask(short, timeout: .milliseconds(300)) == nil)
        #expect(try await ask(good(1))?.id == 1)
        #expect(try await ask(RawDNS.query(id: 2, name: "www.myservice.internal", flags: 0x8100), timeout: .milliseconds(300)) == nil)
        #expect(try await ask(good(3))?.rcode == 0)

        // QDCOUNT 2 → FORMERR; QDCOUNT 0 → FORMERR.
        let two = try #require(try await ask(RawDNS.query(id: 4, name: "www.myservice.internal", qdcount: 2, questions: 2)))
        #expect(two.id == 4 && two.rcode == 1)
        let zero = try #require(try await ask(RawDNS.query(id: 5, name: "x", qdcount: 0, questions: 0)))
        #expect(zero.rcode == 1)
        // An unreadable question: a compression pointer; a name cut short → FORMERR.
        let pointer = try #require(try await ask(RawDNS.headerThen(id: 6, [0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01])))
        #expect(pointer.id == 6 && pointer.rcode == 1 && pointer.qdcount == 0)
        let cut = try #require(try await ask(RawDNS.headerThen(id: 7, [0x05, 0x61, 0x62])))
        #expect(cut.id == 7 && cut.rcode == 1)
        // Opcode 2 (STATUS) → NOTIMP.
        let status = try #require(try await ask(RawDNS.query(id: 8, name: "www.myservice.internal", flags: 0x1100)))
        #expect(status.rcode == 4)
        // Class CH, class HS → REFUSED.
        let chaos = try #require(try await ask(RawDNS.query(id: 9, name: "version.bind", type: 16, qclass: 3)))
        #expect(chaos.rcode == 5)
        let hs = try #require(try await ask(RawDNS.query(id: 10, name: "www.myservice.internal", qclass: 4)))
        #expect(hs.rcode == 5)
        // IXFR over UDP, AXFR over TCP → REFUSED.
        let ixfr = try #require(try await ask(RawDNS.query(id: 11, name: "myservice.internal", type: 251)))
        #expect(ixfr.rcode == 5)
        let conn = try await TestTCPConnection.connect(to: h.listen)
        defer { Task { await conn.close() } }
        try await conn.send(TestDNS.framed(RawDNS.query(id: 12, name: "myservice.internal", type: 252)))
        let axfr = await conn.inbox.wait(count: 1, timeout: .seconds(2))
        #expect(axfr.first.flatMap(TestDNS.header).map { $0.id == 12 && $0.rcode == 5 } == true)
        let digAXFR = try h.dig("myservice.internal", "AXFR")
        #expect(digAXFR.output.contains("Transfer failed"), "\(digAXFR.output)")
        #expect(!digAXFR.output.contains("10.0.5.10"), "nothing of the zone leaks: \(digAXFR.output)")

        // Still serving, over both transports.
        #expect(try await ask(good(13))?.rcode == 0)
        #expect(try h.dig("www.myservice.internal", "A", "+tcp").rdata("A") == ["10.0.5.10"])

        // Each answered one is a bad-request record with its kind.
        let bad = await QueryLogFile.wait(h.queryLogPath) { $0.vpcdns("decision") == "bad-request" && $0.vpcdns("reason") == "bad-packet:transfer" && $0.string("transport") == "TCP" }
        #expect(!bad.isEmpty)
        let reasons = h.log.filter { $0.vpcdns("decision") == "bad-request" }.compactMap { $0.vpcdns("reason") }
        for kind in ["qdcount", "question", "opcode", "class", "transfer"] {
            #expect(reasons.contains("bad-packet:\(kind)"), "\(kind): \(reasons)")
        }
        let unreadable = h.log.first { $0.vpcdns("reason") == "bad-packet:question" && $0.string("query_name") == "-" }
        #expect(unreadable != nil, "an unreadable question is logged with query_name -")
        // Dropped packets are not logged: 10 answered raw UDP queries, the raw AXFR, dig's
        // AXFR and dig's TCP query.
        let everything = await QueryLogFile.wait(h.queryLogPath, count: 14) { _ in true }
        #expect(everything.count == 14, "\(everything.count) records")
    }

    // MARK: - P5: cache

    @Test("P5: repeated cache hits replayed from bytes carry the TTLs a fresh encoding has, the asker's ID, RD and CD")
    func cacheReplay() async throws {
        var options = ServeHarness.Options()
        options.threads = 1
        let h = try await ServeHarness.start(options)
        let miss = try h.dig("www.example.com")
        #expect(miss.rdata("A") == ["198.51.100.10"], "\(miss.output)")
        // The first hit is encoded and kept; the ones after it are the kept bytes, patched.
        let encoded = try #require(try h.dig("www.example.com").ttl("A"))
        let replayedAtOnce = try h.dig("www.example.com")
        #expect(replayedAtOnce.rdata("A") == ["198.51.100.10"] && replayedAtOnce.flags.contains("rd"), "\(replayedAtOnce.output)")
        try await Task.sleep(for: .milliseconds(2200))
        let replayed = try h.dig("www.example.com")
        // Mixed case is never replayed: this one is encoded afresh from the cache entry.
        let fresh = try h.dig("WwW.ExAmPlE.CoM")
        let replayedTTL = try #require(replayed.ttl("A")), freshTTL = try #require(fresh.ttl("A"))
        #expect(replayedTTL <= encoded - 2, "TTL \(encoded) then \(replayedTTL) 2.2 s later")
        #expect(abs(replayedTTL - freshTTL) <= 1, "replayed \(replayedTTL), fresh \(freshTTL)")
        #expect(replayed.rdata("A") == fresh.rdata("A") && replayed.status == "NOERROR" && !replayed.aa)
        // The asker's header bits, not those of the query the bytes were first encoded for.
        let noRD = try h.dig("www.example.com", "A", "+nordflag")
        #expect(!noRD.flags.contains("rd") && noRD.rdata("A") == ["198.51.100.10"], "\(noRD.output)")
        // CD is part of the cache key (P7: an answer fetched with CD must never reach an asker
        // without it), so the first CD asker is a miss of its own and the next one a hit.
        let cd = try h.dig("www.example.com", "A", "+cdflag")
        #expect(cd.flags.contains("cd") && cd.rdata("A") == ["198.51.100.10"], "\(cd.output)")
        let cdHit = try h.dig("www.example.com", "A", "+cdflag")
        #expect(cdHit.flags.contains("cd") && cdHit.rdata("A") == ["198.51.100.10"], "\(cdHit.output)")
        // Without EDNS the reply has no OPT: another shape, encoded on its own.
        let plain = try h.dig("www.example.com", "A", "+noedns")
        #expect(plain.edns == nil && plain.rdata("A") == ["198.51.100.10"], "\(plain.output)")
        // Every one of them but the first and the first CD asker is logged as a hit.
        let records = await h.logRecords("www.example.com.", count: 8) { $0.string("query_type") == "A" }
        #expect(records.compactMap { $0.vpcdns("cache") } == ["miss", "hit", "hit", "hit", "hit", "miss", "hit", "hit"])
    }

    @Test("P5: forwarded answers, positive and negative, are cached with TTLs counting down")
    func cache() async throws {
        let h = try await ServeHarness.start()
        let first = try h.dig("www.example.com")
        let firstAt = ContinuousClock.now
        #expect(first.rdata("A") == ["198.51.100.10"], "\(first.output)")
        let firstTTL = try #require(first.ttl("A"))
        let nx = try h.dig("nope.example.com")
        #expect(nx.status == "NXDOMAIN", "\(nx.output)")
        let nodata = try h.dig("www.example.com", "AAAA")
        #expect(nodata.status == "NOERROR" && nodata.answers.isEmpty, "\(nodata.output)")
        // Through app's FORWARD rule for example.net (targets: corp, then public NSD) ...
        #expect(try h.dig("www.saas.example.net").rdata("A") == ["198.51.100.51"])

        h.publicNSD.stop()
        #expect(try h.dig("sts.us-west-2.amazonaws.com").status == "SERVFAIL", "NSD is really gone")
        try await Task.sleep(for: .milliseconds(1500))

        let second = try h.dig("www.example.com")
        // The TTL went down by about the time that passed (whole seconds, +1 for rounding).
        let passed = Int((ContinuousClock.now - firstAt).components.seconds) + 1
        #expect(second.status == "NOERROR" && second.rdata("A") == ["198.51.100.10"], "\(second.output)")
        let secondTTL = try #require(second.ttl("A"))
        #expect(secondTTL < firstTTL && secondTTL >= firstTTL - passed, "TTL \(firstTTL) then \(secondTTL) after \(passed) s")
        let nx2 = try h.dig("nope.example.com")
        #expect(nx2.status == "NXDOMAIN", "negative answer cached (RFC 2308): \(nx2.output)")

        let logs = await h.logRecords("www.example.com.") { $0.vpcdns("cache") == "hit" && $0.string("query_type") == "A" }
        #expect(logs.count == 1)
        #expect(logs.first?.vpcdns("upstream") == nil)
        // Lines of different event loops reach the file in flush order, "roughly, not strictly,
        // in arrival order" (query-log.md): compared without their order.
        let all = await h.logRecords("www.example.com.", count: 2) { $0.string("query_type") == "A" }
        #expect(all.compactMap { $0.vpcdns("cache") }.sorted() == ["hit", "miss"])
        let nxLogs = await h.logRecords("nope.example.com.", count: 2)
        #expect(nxLogs.compactMap { $0.vpcdns("cache") }.sorted() == ["hit", "miss"])
        #expect(nxLogs.allSatisfy { $0.string("rcode") == "NXDOMAIN" })

        let nodata2 = try h.dig("www.example.com", "AAAA")
        #expect(nodata2.status == "NOERROR" && nodata2.answers.isEmpty, "NODATA cached too: \(nodata2.output)")

        // The cache is per set of targets: database (the same default upstreams) shares the
        // entries fetched for app by default ...
        #expect(try h.dig("www.example.com", at: h.dbResolver).rdata("A") == ["198.51.100.10"])
        // ... but not the one fetched through app's FORWARD rule: database forwards
        // www.saas.example.net to the default upstream, which is gone now.
        #expect(try h.dig("www.saas.example.net").rdata("A") == ["198.51.100.51"], "app: a hit under its rule's targets")
        let dbNet = try h.dig("www.saas.example.net", at: h.dbResolver)
        #expect(dbNet.status == "SERVFAIL", "database never gets app's rule's entry: \(dbNet.output)")
        let netLogs = await h.logRecords("www.saas.example.net.", count: 3)
        #expect(netLogs.map { "\($0.string("vpc_id") ?? "") \($0.vpcdns("cache") ?? "")" }.sorted() == [
            "\(ServeHarness.appVPC) hit", "\(ServeHarness.appVPC) miss", "\(ServeHarness.dbVPC) miss",
        ])
    }

    // MARK: - P6: upstream failures

    @Test("P6: a dead upstream gives SERVFAIL within upstream_timeout_ms")
    func deadUpstream() async throws {
        let h = try await ServeHarness.start()
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        let (reply, took) = try await elapsed {
            try await client.exchange(RawDNS.query(id: 66, name: "www.dead.example"), with: h.listen, timeout: .seconds(3))
        }
        let header = try #require(reply.flatMap(TestDNS.header))
        #expect(header.id == 66 && header.rcode == 2, "SERVFAIL")
        #expect(took >= .milliseconds(500) && took <= .milliseconds(1500), "\(took)")
        let log = await h.logRecords("www.dead.example.")
        #expect(log.first?.string("rcode") == "SERVFAIL")
        #expect(log.first?.vpcdns("reason") == "upstream-timeout")
        #expect(log.first?.vpcdns("decision") == "forward-rule")
        // The last target tried, so that the failing upstream can be found from the log alone.
        #expect(log.first?.vpcdns("upstream") == "\(h.hole.endpoint)")
    }

    @Test("P6: failover from a black hole to the live NSD after the attempt timeout")
    func failover() async throws {
        let h = try await ServeHarness.start()
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        let (reply, took) = try await elapsed {
            try await client.exchange(RawDNS.query(id: 67, name: "www.failover.example"), with: h.listen, timeout: .seconds(3))
        }
        let header = try #require(reply.flatMap(TestDNS.header))
        #expect(header.rcode == 0 && header.ancount == 1)
        #expect(took >= .milliseconds(180) && took < .milliseconds(600), "one attempt (200 ms) lost to the black hole: \(took)")
        let log = await h.logRecords("www.failover.example.")
        #expect(log.first?.vpcdns("upstream") == "\(h.corpNSD.endpoint)")
    }

    @Test("P6: an upstream answering REFUSED is a failed attempt: the next target answers")
    func refusedUpstream() async throws {
        let h = try await ServeHarness.start()
        // app's rule for example.net asks the corp NSD first, which is not authoritative
        // for example.net and answers REFUSED, then the public NSD.
        let (r, took) = try await elapsed { try h.dig("www.saas.example.net") }
        #expect(r.status == "NOERROR" && r.rdata("A") == ["198.51.100.51"], "\(r.output)")
        #expect(took < .milliseconds(1000), "no timeout involved: \(took)")
        let log = await h.logRecords("www.saas.example.net.")
        #expect(log.first?.vpcdns("decision") == "forward-rule")
        #expect(log.first?.vpcdns("upstream") == "\(h.publicNSD.endpoint)")
        // Only REFUSING upstreams: SERVFAIL, upstream-error.
        h.publicNSD.stop()
        let all = try h.dig("other.example.net")
        #expect(all.status == "SERVFAIL", "\(all.output)")
        let failLog = await h.logRecords("other.example.net.")
        #expect(failLog.first?.vpcdns("reason") == "upstream-error" || failLog.first?.vpcdns("reason") == "upstream-timeout",
                "\(String(describing: failLog.first))")
    }

    // MARK: - R15 across upstream

    @Test("R15: a public CNAME into a private name of the asking VPC is completed from the private data")
    func cnameIntoPrivate() async throws {
        let h = try await ServeHarness.start()
        let app = try h.dig("reports.example.com")
        #expect(app.status == "NOERROR", "\(app.output)")
        #expect(!app.aa, "one link came from upstream: \(app.output)")
        #expect(app.rdata("CNAME").first == "db.bank.example.com.", "\(app.output)")
        #expect(app.rdata("A") == ["10.0.1.20"], "\(app.output)")
        // From database, the public answer: the CNAME to a name nobody publishes.
        let db = try h.dig("reports.example.com", at: h.dbResolver)
        #expect(db.status == "NXDOMAIN", "\(db.output)")
        #expect(db.rdata("A").isEmpty, "R14: \(db.output)")
        let log = await h.logRecords("reports.example.com.") { $0.string("vpc_id") == ServeHarness.appVPC }
        #expect(log.first?.vpcdns("decision") == "upstream")
        #expect(log.first?.vpcdns("upstream") == "\(h.publicNSD.endpoint)")
        // A private CNAME pointing outside is completed through upstream (no AA, decision
        // of the first link, upstream named); private → public → private too.
        let ext = try h.dig("ext.myservice.internal")
        #expect(ext.status == "NOERROR" && !ext.aa, "\(ext.output)")
        #expect(ext.rdata("CNAME") == ["www.example.com."] && ext.rdata("A") == ["198.51.100.10"], "\(ext.output)")
        let extLog = await h.logRecords("ext.myservice.internal.")
        #expect(extLog.first?.vpcdns("decision") == "private-hosted-zone")
        #expect(extLog.first?.vpcdns("upstream") == "\(h.publicNSD.endpoint)")
        let via = try h.dig("via.myservice.internal")
        #expect(via.status == "NOERROR" && !via.aa, "\(via.output)")
        #expect(via.rdata("CNAME").prefix(2) == ["reports.example.com.", "db.bank.example.com."], "\(via.output)")
        #expect(via.rdata("A") == ["10.0.1.20"], "\(via.output)")

        // And a second time, from the cache: still completed privately, still only for app.
        #expect(try h.dig("reports.example.com").rdata("A") == ["10.0.1.20"])
        #expect(try h.dig("reports.example.com", at: h.dbResolver).rdata("A").isEmpty)
    }

    // MARK: - IPv6 and wildcard listeners

    @Test("An IPv6 loopback listener ([::1]:0) answers over UDP and TCP")
    func ipv6Loopback() async throws {
        let h = try await ServeHarness.start(.init(listen: ["127.0.0.1:0", "[::1]:0"]))
        let v6 = try #require(h.listener("[::1]:"), "\(h.process.listeningLines)")
        #expect(h.process.listeningLines.contains("listening on tcp \(v6)"))
        let udp = try h.dig("ec2.us-west-2.amazonaws.com", at: v6)
        #expect(Set(udp.rdata("A")) == ["10.0.1.10", "10.0.2.10"] && udp.aa, "::1 is an app client: \(udp.output)")
        let tcp = try h.dig("www.example.com", at: v6, "+tcp")
        #expect(tcp.rdata("A") == ["198.51.100.10"], "\(tcp.output)")
        let log = await h.logRecords("ec2.us-west-2.amazonaws.com.")
        #expect(log.first?.string("srcaddr") == "::1")
    }

    @Test("Wildcard listeners 0.0.0.0:P and [::]:P on the same port both open (IPv6 socket is v6-only)")
    func wildcardBothFamilies() async throws {
        // A port free on both wildcards: a dual-stack [::] bind covers IPv4 too.
        let port = try await freePort(host: "::")
        let h = try await ServeHarness.start(.init(listen: ["0.0.0.0:\(port)", "[::]:\(port)"]))
        #expect(h.process.listeningLines.prefix(4) == [
            "listening on udp 0.0.0.0:\(port)", "listening on tcp 0.0.0.0:\(port)",
            "listening on udp [::]:\(port)", "listening on tcp [::]:\(port)",
        ], "\(h.process.standardError)")
        let v4 = SocketEndpoint(ip: .v4(0x7F00_0001), port: UInt16(port))
        let v6 = SocketEndpoint("[::1]:\(port)")!
        for server in [v4, v6] {
            let r = try h.dig("www.myservice.internal", at: server)
            #expect(r.rdata("A") == ["10.0.5.10"], "\(server): \(r.output)")
            let t = try h.dig("www.myservice.internal", at: server, "+tcp")
            #expect(t.rdata("A") == ["10.0.5.10"], "\(server) tcp: \(t.output)")
        }
        // An IPv4 client is seen as IPv4 (not ::ffff:127.0.0.1), so V2 matches it.
        let log = await h.logRecords("www.myservice.internal.", count: 4)
        #expect(Set(log.compactMap { $0.string("srcaddr") }) == ["127.0.0.1", "::1"], "\(log.compactMap { $0.string("srcaddr") })")
    }

    @Test("A wildcard UDP listener answers from the address the query was sent to")
    func wildcardReplySource() async throws {
        let port = try await freePort(host: "0.0.0.0")
        let h = try await ServeHarness.start(.init(listen: ["0.0.0.0:\(port)"]))
        // 127.0.0.5 is one of this host's addresses (all of 127/8 is local); a reply from
        // 127.0.0.1 instead is dropped by dig ("reply from unexpected source").
        let server = SocketEndpoint(ip: .v4(0x7F00_0005), port: UInt16(port))
        let r = try h.dig("www.myservice.internal", at: server)
        #expect(r.rdata("A") == ["10.0.5.10"], "\(r.output)")
        #expect(r.output.contains("SERVER: 127.0.0.5#\(port)"), "the answer came from 127.0.0.5: \(r.output)")
        // The query log names the address asked as the listener (O7).
        let log = await h.logRecords("www.myservice.internal.")
        #expect(log.first?.vpcdns("listener") == "127.0.0.5:\(port)", "\(log)")
        // Over TCP the connection's own address is used: fine.
        #expect(try h.dig("www.myservice.internal", at: server, "+tcp").rdata("A") == ["10.0.5.10"])
    }

    // MARK: - O1: bind failure, O3: signals

    @Test("O1: a listener that cannot bind: exit 1, the error names the address")
    func bindFailure() async throws {
        let dir = try ServeHarness.makeDirectory("vpcdns-bind")
        defer { try? FileManager.default.removeItem(at: dir) }
        try ServeHarness.writeZoneFiles(to: dir)
        let config = dir.appendingPathComponent("vpcdns.yaml")
        let upstream = SocketEndpoint("127.0.0.1:9")!  // never asked: nothing is queried
        try ServeHarness.config(
            listen: ["127.0.0.1:1053"], upstream: upstream, corp: upstream, hole: upstream,
            appClients: ["127.0.0.1/32"], dbClients: ["127.0.0.2/32"], appResolver: nil, appInbound: nil, dbResolver: nil,
            queryLog: dir.appendingPathComponent("q.jsonl").path, options: .init()
        ).write(to: config, atomically: true, encoding: .utf8)

        // UDP port taken (a plain socket, no SO_REUSEPORT).
        let udp = try await DatagramBootstrap(group: testGroup).bind(host: "127.0.0.1", port: 0).get()
        defer { udp.close(promise: nil) }
        let udpPort = udp.localAddress!.port!
        let p1 = try ServeProcess(arguments: ["serve", "--config", config.path, "--listen", "127.0.0.1:\(udpPort)"], directory: dir)
        #expect(await p1.waitExit(timeout: .seconds(10)) == 1, "\(p1.standardError)")
        #expect(p1.standardError.contains("127.0.0.1:\(udpPort)"), "\(p1.standardError)")
        #expect(p1.listeningLines.isEmpty)

        // TCP port taken, UDP free: the UDP socket opened first is closed again, and the
        // error names the address too.
        let tcp = try await ServerBootstrap(group: testGroup).bind(host: "127.0.0.1", port: 0).get()
        defer { tcp.close(promise: nil) }
        let tcpPort = tcp.localAddress!.port!
        let p2 = try ServeProcess(arguments: ["serve", "--config", config.path, "--listen", "127.0.0.1:\(tcpPort)"], directory: dir)
        #expect(await p2.waitExit(timeout: .seconds(10)) == 1, "\(p2.standardError)")
        #expect(p2.standardError.contains("tcp 127.0.0.1:\(tcpPort)"), "\(p2.standardError)")
    }

    @Test("O3: SIGTERM answers the query in flight, flushes the log and exits 0; SIGINT too")
    func sigterm() async throws {
        let h = try await ServeHarness.start(.init(tcpIdleTimeoutMs: 10_000))  // the idle connection stays open
        let client = try await TestUDPClient.make()
        defer { Task { await client.close() } }
        // In flight for ~200 ms (the black hole first, then the corp NSD), over UDP and TCP;
        // and an idle TCP connection, which must not hold up the exit.
        let idle = try await TestTCPConnection.connect(to: h.listen)
        defer { Task { await idle.close() } }
        let conn = try await TestTCPConnection.connect(to: h.listen)
        defer { Task { await conn.close() } }
        try await client.send(RawDNS.query(id: 77, name: "www.failover.example"), to: h.listen)
        try await conn.send(TestDNS.framed(RawDNS.query(id: 79, name: "www.failover.example")))
        try await Task.sleep(for: .milliseconds(60))
        let clock = ContinuousClock()
        let signalled = clock.now
        h.process.signal(SIGTERM)
        let got = await client.inbox.wait(count: 1, timeout: .seconds(3))
        let header = try #require(got.first.flatMap(TestDNS.header), "the in-flight query was answered")
        #expect(header.id == 77 && header.rcode == 0 && header.ancount == 1)
        let gotTCP = await conn.inbox.wait(count: 1, timeout: .seconds(3))
        let tcpHeader = try #require(gotTCP.first.flatMap(TestDNS.header), "the in-flight TCP query was answered")
        #expect(tcpHeader.id == 79 && tcpHeader.rcode == 0 && tcpHeader.ancount == 1)
        #expect(await h.process.waitExit(timeout: .seconds(5)) == 0, "\(h.process.standardError)")
        #expect(clock.now - signalled < .seconds(1), "no wait for the idle connection: \(clock.now - signalled)")
        let log = QueryLogFile.records(h.queryLogPath).filter { $0.string("query_name") == "www.failover.example." }
        #expect(log.count == 2, "flushed before exit")
        // Stopped: no more answers.
        #expect(try await client.exchange(RawDNS.query(id: 78, name: "www.myservice.internal"), with: h.listen, timeout: .milliseconds(200)) == nil)

        let h2 = try await ServeHarness.start()
        #expect(try h2.dig("www.myservice.internal").status == "NOERROR")
        h2.process.signal(SIGINT)
        #expect(await h2.process.waitExit(timeout: .seconds(5)) == 0, "\(h2.process.standardError)")
    }
}
