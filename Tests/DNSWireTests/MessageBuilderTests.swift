import Testing
import DNSWire

@Suite("MessageBuilder")
struct MessageBuilderTests {
    /// `dig +bufsize=1232 @server WwW.Corp.example A` as dig sends it (RD and AD set, EDNS
    /// 1232, no cookie), and the reply computed by hand from RFC 1035 §4 and RFC 6891 §6.
    static let digQuery = hex("""
        1234 0120 0001 0000 0000 0001
        03 57 77 57 04 43 6f 72 70 07 65 78 61 6d 70 6c 65 00 0001 0001
        00 0029 04d0 00 00 0000 0000
        """)

    @Test("exact bytes of a one-answer reply: compression to the echoed question, OPT 1232")
    func exactReply() throws {
        #expect(MessageBuilderTests.digQuery.count == 45)
        let q = try #require(QueryParser.parse(MessageBuilderTests.digQuery).query)
        var b = MessageBuilder()
        let s = b.buildResponse(for: q, rcode: .noError, authoritative: true,
                                answer: [.a(name("www.corp.example"), [10, 0, 1, 10], ttl: 300)])
        let expected = hex("""
            1234 8580 0001 0001 0000 0001
            03 57 77 57 04 43 6f 72 70 07 65 78 61 6d 70 6c 65 00 0001 0001
            c00c 0001 0001 0000012c 0004 0a00010a
            00 0029 04d0 00 00 0000 0000
            """)
        #expect(hexString(b.bytes) == hexString(expected))
        #expect(s == ResponseSummary(truncated: false, answerCount: 1, authorityCount: 0, additionalCount: 0, byteCount: 61))
    }

    @Test("question echoed byte for byte, case kept, without EDNS no OPT; NXDOMAIN with SOA")
    func caseKept() throws {
        let query = makeQuery(id: 7, flags: 0x0110, name: "MiXeD.ExAmPlE.oRg", type: 16)
        let q = try #require(QueryParser.parse(query).query)
        var b = MessageBuilder()
        let soa = rr("example.org", .soa, wireName("ns1.example.org") + wireName("hostmaster.example.org") +
                     [0, 0, 0, 1, 0, 0, 0x1C, 0x20, 0, 0, 0x0E, 0x10, 0, 0x12, 0x75, 0, 0, 0, 0x01, 0x2C])
        b.buildResponse(for: q, rcode: .nxDomain, authoritative: true, authority: [soa])
        #expect(Array(b.bytes[12..<q.questionRange.upperBound]) == Array(query[12...]))
        let m = try DNSMessage.parse(b.bytes)
        #expect(m.header.id == 7)
        #expect(m.rcode == .nxDomain)
        #expect(m.header.authoritative && m.header.recursionAvailable && m.header.recursionDesired)
        #expect(m.header.checkingDisabled)
        #expect(m.header.isResponse)
        #expect(m.edns == nil)
        #expect(m.authority == [soa])
        #expect(m.questions.first?.originalNameText == "MiXeD.ExAmPlE.oRg.")
    }

    @Test("compression: owners and CNAME/NS/PTR/MX/SOA rdata compressed, SRV target not; parse gives the records back")
    func compression() throws {
        let q = try #require(QueryParser.parse(makeQuery(name: "www.example.com", edns: (4096, 0, false))).query)
        let records: [ResourceRecord] = [
            rr("www.example.com", .cname, wireName("web.example.com")),
            rr("www.example.com", .txt, [3, 0x61, 0x62, 0x63]),
            rr("mixed.example.com", .cname, wireName("Web.EXAMPLE.com")),
            rr("web.example.com", .a, [192, 0, 2, 1]),
            rr("example.com", .mx, [0, 10] + wireName("mail.example.com")),
            rr("_sip._tcp.example.com", .srv, [0, 1, 0, 2, 0x13, 0xC4] + wireName("sip.example.com")),
            rr("1.2.0.192.in-addr.arpa", .ptr, wireName("web.example.com")),
        ]
        let authority = [
            rr("example.com", .ns, wireName("ns1.example.com")),
            rr("example.com", .soa, wireName("ns1.example.com") + wireName("hostmaster.example.com") + Array(repeating: 1, count: 20)),
        ]
        let additional = [rr("ns1.example.com", .aaaa, hex("20010db8000000000000000000000053"))]
        var b = MessageBuilder()
        let s = b.buildResponse(for: q, rcode: .noError, answer: records, authority: authority, additional: additional)
        #expect(!s.truncated)
        let m = try DNSMessage.parse(b.bytes)
        #expect(m.answer == records)
        #expect(m.authority == authority)
        #expect(m.additional == additional)
        #expect(m.edns?.udpPayloadSize == 1232)

        // Every name but the first copy of each suffix became a pointer: far below the
        // uncompressed size.
        let uncompressed = 12 + 21 + 11 + (records + authority + additional).reduce(0) { $0 + $1.name.wire.count + 10 + $1.rdata.count }
        #expect(b.bytes.count < uncompressed - 100)
        // Rdata names keep their case (matched byte for byte), owners take the question's.
        #expect(m.answer[2].rdata == wireName("Web.EXAMPLE.com"))
        // The CNAME rdata is "web" + a pointer to "example.com" in the question.
        let cnameTarget: [UInt8] = [3, 0x77, 0x65, 0x62, 0xC0, 16]
        #expect(b.bytes.indices.contains { Array(b.bytes[$0..<min($0 + 6, b.bytes.count)]) == cnameTarget })
        // The SRV target is written whole, uncompressed.
        let srvTarget = wireName("sip.example.com")
        #expect(b.bytes.indices.contains { Array(b.bytes[$0..<min($0 + srvTarget.count, b.bytes.count)]) == srvTarget })
    }

    @Test("malformed rdata of a compressible type is copied unchanged")
    func malformedRData() throws {
        let q = try #require(QueryParser.parse(makeQuery()).query)
        let bad = rr("www.example.com", .cname, [5, 1, 2])
        var b = MessageBuilder()
        b.buildResponse(for: q, rcode: .noError, answer: [bad])
        #expect(Array(b.bytes.suffix(3)) == [5, 1, 2])
    }

    @Test("truncation at 512 without EDNS: the RRset that does not fit is dropped whole, TC set")
    func truncate512() throws {
        let q = try #require(QueryParser.parse(makeQuery()).query)
        let cname = rr("www.example.com", .cname, wireName("lb.example.com"))
        let addresses = (0..<40).map { rr("lb.example.com", .a, [10, 0, 0, UInt8($0)]) }
        var b = MessageBuilder()
        let s = b.buildResponse(for: q, rcode: .noError, answer: [cname] + addresses,
                                additional: [rr("x.example.com", .a, [1, 2, 3, 4])])
        #expect(s.truncated)
        #expect(s.answerCount == 1)
        #expect(s.additionalCount == 0)
        #expect(b.bytes.count <= 512)
        let m = try DNSMessage.parse(b.bytes)
        #expect(m.header.truncated)
        #expect(m.answer == [cname])
        #expect(m.header.anCount == 1 && m.header.arCount == 0)

        // The same over TCP is complete.
        let t = b.buildResponse(for: q, rcode: .noError, answer: [cname] + addresses, transport: .tcp)
        #expect(!t.truncated && t.answerCount == 41)
        #expect(try DNSMessage.parse(b.bytes).answer.count == 41)
    }

    @Test("truncation at the EDNS size: min(client, ours), never below 512; OPT kept; complete RRsets kept")
    func truncateEDNS() throws {
        #expect(MessageBuilder.sizeLimit(clientEDNS: EDNSInfo(udpPayloadSize: 4096), ourPayloadSize: 1232, transport: .udp) == 1232)
        #expect(MessageBuilder.sizeLimit(clientEDNS: EDNSInfo(udpPayloadSize: 700), ourPayloadSize: 1232, transport: .udp) == 700)
        #expect(MessageBuilder.sizeLimit(clientEDNS: EDNSInfo(udpPayloadSize: 100), ourPayloadSize: 1232, transport: .udp) == 512)
        #expect(MessageBuilder.sizeLimit(clientEDNS: nil, ourPayloadSize: 1232, transport: .udp) == 512)
        #expect(MessageBuilder.sizeLimit(clientEDNS: nil, ourPayloadSize: 1232, transport: .tcp) == 65535)

        // 80 one-record RRsets under different owners.
        let records = (0..<80).map { rr("host\($0).example.com", .a, [10, 0, 1, UInt8($0)]) }
        for (clientSize, limit) in [(4096, 1232), (700, 700), (100, 512)] {
            let q = try #require(QueryParser.parse(makeQuery(edns: (UInt16(clientSize), 0, true))).query)
            var b = MessageBuilder()
            let s = b.buildResponse(for: q, rcode: .noError, answer: records)
            #expect(s.truncated)
            #expect(b.bytes.count <= limit)
            #expect(s.answerCount > 0)
            let m = try DNSMessage.parse(b.bytes)
            #expect(m.header.truncated)
            #expect(m.edns?.dnssecOK == true)
            #expect(m.answer == Array(records.prefix(s.answerCount)))
            // One more record would not have fitted.
            var c = MessageBuilder()
            c.buildResponse(for: q, rcode: .noError, answer: Array(records.prefix(s.answerCount + 1)), transport: .tcp)
            #expect(c.bytes.count > limit)
        }
    }

    @Test("additional records that do not fit are dropped without TC")
    func additionalNoTC() throws {
        let q = try #require(QueryParser.parse(makeQuery()).query)
        let extra = (0..<60).map { rr("ns\($0).example.com", .a, [10, 0, 2, UInt8($0)]) }
        var b = MessageBuilder()
        let s = b.buildResponse(for: q, rcode: .noError, answer: [rr("www.example.com", .a, [1, 2, 3, 4])], additional: extra)
        #expect(!s.truncated)
        #expect(s.answerCount == 1)
        #expect(s.additionalCount > 0 && s.additionalCount < 60)
        #expect(b.bytes.count <= 512)
        #expect(try !DNSMessage.parse(b.bytes).header.truncated)
    }

    @Test("BADVERS: header rcode 0, extended rcode 1 in our OPT (version 0, DO echoed)")
    func badvers() throws {
        let bad = try #require(QueryParser.parse(makeQuery(id: 0x4242, edns: (1232, 1, true))).bad)
        var b = MessageBuilder()
        b.buildErrorResponse(for: bad)
        #expect(b.bytes[3] & 0x0F == 0)
        let opt = Array(b.bytes.suffix(11))
        #expect(opt == [0, 0, 41, 0x04, 0xD0, 1, 0, 0x80, 0, 0, 0])
        let m = try DNSMessage.parse(b.bytes)
        #expect(m.rcode == .badVers)
        #expect(m.header.id == 0x4242)
        #expect(m.edns?.version == 0)
        #expect(m.questions.count == 1)
    }

    @Test("error replies: FORMERR without a readable question has QDCOUNT 0; NOTIMP keeps the opcode")
    func errorReplies() throws {
        var ptr = Array(makeQuery().prefix(12))
        ptr += [3, 0x77, 0x77, 0x77, 0xC0, 12, 0, 1, 0, 1]
        let bad = try #require(QueryParser.parse(ptr).bad)
        var b = MessageBuilder()
        b.buildErrorResponse(for: bad)
        #expect(b.bytes == hex("1234 8181 0000 0000 0000 0000"))

        let notify = try #require(QueryParser.parse(makeQuery(flags: 4 << 11)).bad)
        b.buildErrorResponse(for: notify)
        let m = try DNSMessage.parse(b.bytes)
        #expect(m.header.opcode == 4)
        #expect(m.rcode == .notImp)
        #expect(m.questions.first?.name == name("www.example.com"))
    }

    @Test("upstream query encoder: exact bytes, and the query parser reads it back")
    func queryEncoder() throws {
        var b = MessageBuilder()
        let question = DNSQuestion(name: name("www.example.com"), type: .aaaa)
        b.buildQuery(id: 0xABCD, question: question, dnssecOK: true)
        #expect(b.bytes == hex("""
            abcd 0100 0001 0000 0000 0001
            03 777777 07 6578616d706c65 03 636f6d 00 001c 0001
            00 0029 04d0 00 00 8000 0000
            """))
        let q = try #require(QueryParser.parse(b.bytes).query)
        #expect(q.question == question)
        #expect(q.edns == EDNSInfo(udpPayloadSize: 1232, dnssecOK: true))

        b.buildQuery(id: 1, question: question, recursionDesired: false, edns: false)
        #expect(b.bytes.count == 12 + 17 + 4)
        #expect(QueryParser.parse(b.bytes).query?.edns == nil)
    }

    @Test("a reused builder leaves nothing behind from the previous message")
    func reuse() throws {
        var b = MessageBuilder()
        let q1 = try #require(QueryParser.parse(makeQuery(name: "a.very.long.name.example.net", edns: (1232, 0, false))).query)
        b.buildResponse(for: q1, rcode: .noError, answer: [rr("a.very.long.name.example.net", .a, [1, 1, 1, 1])])
        let q2 = try #require(QueryParser.parse(makeQuery(name: "x.org")).query)
        let r2 = rr("example.net", .a, [2, 2, 2, 2])
        b.buildResponse(for: q2, rcode: .noError, answer: [r2])
        let m = try DNSMessage.parse(b.bytes)
        #expect(m.answer == [r2])
        #expect(b.bytes.count == 12 + 11 + 13 + 10 + 4)
    }
}
