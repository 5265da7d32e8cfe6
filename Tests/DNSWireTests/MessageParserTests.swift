import Testing
import DNSWire

@Suite("DNSMessage.parse")
struct MessageParserTests {
    /// A reply written by hand with pointers in owners and in CNAME, MX and SOA rdata:
    /// www.example.com CNAME web.example.com; web A; example.com MX 10 mail; SOA in authority.
    static let reply: [UInt8] = hex("""
        0001 8180 0001 0003 0001 0000
        03 777777 07 4558414d504c45 03 636f6d 00 0001 0001
        c00c 0005 0001 00000e10 0006 03 776562 c010
        c02d 0001 0001 0000003c 0004 c0000201
        c010 000f 0001 00000e10 0009 000a 04 6d61696c c010
        c010 0006 0001 00000e10 0027 03 6e7331 c010 0a 686f73746d6173746572 c010 00000001 00001c20 00000e10 00127500 0000012c
        """)

    @Test("decompresses owners and rdata names; owners lower-cased, rdata case kept")
    func decompress() throws {
        let m = try DNSMessage.parse(MessageParserTests.reply)
        #expect(m.header.id == 1)
        #expect(m.rcode == .noError)
        #expect(m.questions == [DNSQuestion(name: name("www.example.com"), type: .a, caseMask: NameCaseMask(originalWire: wireName("www.EXAMPLE.com")))])
        #expect(m.answer == [
            rr("www.example.com", .cname, ttl: 3600, wireName("web.EXAMPLE.com")),
            rr("web.example.com", .a, ttl: 60, [192, 0, 2, 1]),
            rr("example.com", .mx, ttl: 3600, [0, 10] + wireName("mail.EXAMPLE.com")),
        ])
        #expect(m.authority.count == 1)
        #expect(m.authority[0].rdataText == "ns1.EXAMPLE.com. hostmaster.EXAMPLE.com. 1 7200 3600 1209600 300")
        #expect(m.authority[0].soaMinimum == 300)
        #expect(m.edns == nil)
    }

    @Test("header-only parse and matching a reply to its query (P6)")
    func matching() throws {
        let h = try #require(DNSHeader.parse(MessageParserTests.reply))
        #expect(h.id == 1 && h.isResponse && !h.truncated && h.anCount == 3)
        #expect(DNSHeader.parse([1, 2, 3]) == nil)
        let m = try DNSMessage.parse(MessageParserTests.reply)
        let asked = DNSQuestion(name: name("www.example.com"), type: .a)
        #expect(m.isReply(toID: 1, question: asked))
        #expect(!m.isReply(toID: 2, question: asked))
        #expect(!m.isReply(toID: 1, question: DNSQuestion(name: name("www.example.com"), type: .aaaa)))
        #expect(!m.isReply(toID: 1, question: DNSQuestion(name: name("www.example.org"), type: .a)))
    }

    @Test("re-encoding parsed records and parsing again gives the same records")
    func roundTrip() throws {
        let m = try DNSMessage.parse(MessageParserTests.reply)
        var b = MessageBuilder()
        let q = DNSQuery(header: m.header, question: m.questions[0], edns: nil, questionRange: 0..<0)
        b.buildResponse(for: q, rcode: .noError, answer: m.answer, authority: m.authority, transport: .tcp)
        let again = try DNSMessage.parse(b.bytes)
        #expect(again.answer == m.answer)
        #expect(again.authority == m.authority)
        #expect(again.questions == m.questions)
    }

    @Test("pointer loops: a name pointing at itself, two names pointing at each other")
    func pointerLoops() {
        let selfLoop = hex("0001 8180 0001 0000 0000 0000 c00c 0001 0001")
        #expect(throws: DNSWireError.pointerLoop) { try DNSMessage.parse(selfLoop) }
        let pair = hex("0001 8180 0001 0000 0000 0000 c00e c00c 0001 0001")
        #expect(throws: DNSWireError.pointerLoop) { try DNSMessage.parse(pair) }
        // A loop inside CNAME rdata.
        var rdataLoop = hex("0001 8180 0000 0001 0000 0000 00 0005 0001 00000000 0002")
        rdataLoop += [0xC0, UInt8(rdataLoop.count)]
        #expect(throws: DNSWireError.pointerLoop) { try DNSMessage.parse(rdataLoop) }
    }

    @Test("garbage: pointers past the end, counts larger than the packet, rdata past the end")
    func garbage() {
        #expect(throws: DNSWireError.badName) { try DNSMessage.parse(hex("0001 8180 0001 0000 0000 0000 c0ff 0001 0001")) }
        #expect(throws: DNSWireError.truncated) { try DNSMessage.parse(hex("0001 8180 ffff ffff ffff ffff 00 0001 0001")) }
        #expect(throws: DNSWireError.truncated) { try DNSMessage.parse(hex("0001 8180 0000 0001 0000 0000 00 0001 0001 00000000 0004 0102")) }
        #expect(throws: DNSWireError.truncated) { try DNSMessage.parse([0, 1, 2]) }
        #expect(throws: DNSWireError.badName) { try DNSMessage.parse(hex("0001 8180 0001 0000 0000 0000 4001 00 0001 0001")) }
    }

    @Test("rdata of a name type that does not end where RDLENGTH says → badRData")
    func badRData() {
        let b = hex("0001 8180 0000 0001 0000 0000 00 0005 0001 00000000 0004 01 61 00 ff")
        #expect(throws: DNSWireError.badRData) { try DNSMessage.parse(b) }
        let soaShort = hex("0001 8180 0000 0001 0000 0000 00 0006 0001 00000000 0004 00 00 0000")
        #expect(throws: DNSWireError.badRData) { try DNSMessage.parse(soaShort) }
    }

    @Test("OPT: separated from additional, extended rcode combined; two OPTs or OPT in answer → badOPT")
    func opt() throws {
        let opt = hex("00 0029 1000 01 00 8000 0000")
        let glue = hex("00 0001 0001 0000003c 0004 01020304")
        let m = try DNSMessage.parse(hex("0001 8180 0000 0000 0000 0002") + glue + opt)
        #expect(m.edns == EDNSInfo(udpPayloadSize: 4096, extendedRCode: 1, version: 0, dnssecOK: true))
        #expect(m.rcode == .badVers)
        #expect(m.additional.count == 1)
        #expect(throws: DNSWireError.badOPT) { try DNSMessage.parse(hex("0001 8180 0000 0000 0000 0002") + opt + opt) }
        #expect(throws: DNSWireError.badOPT) { try DNSMessage.parse(hex("0001 8180 0000 0001 0000 0000") + opt) }
    }

    @Test("unknown types keep raw rdata; SRV and NAPTR names are decompressed")
    func unknownAndSRV() throws {
        var b = hex("0001 8180 0001 0003 0000 0000 03 777777 00 0001 0001")
        b += hex("c00c ff00 0001 00000000 0003 c00c 01")               // TYPE65280: raw, pointer bytes kept
        b += hex("c00c 0021 0001 00000000 0008 0001 0002 0035 c00c")  // SRV target compressed (tolerated)
        b += hex("c00c 0023 0001 00000000 000a 0001 0002 01 55 00 00 c00c") // NAPTR
        let m = try DNSMessage.parse(b)
        #expect(m.answer[0].rdata == [0xC0, 0x0C, 0x01])
        #expect(m.answer[0].rdataText == "\\# 3 C00C01")
        #expect(m.answer[1].rdata == [0, 1, 0, 2, 0, 0x35] + wireName("www"))
        #expect(m.answer[1].rdataText == "1 2 53 www.")
        #expect(m.answer[2].rdata == [0, 1, 0, 2, 1, 0x55, 0, 0] + wireName("www"))
    }
}
