import Testing
import DNSWire

/// P8: the headers and OPT of error replies, read back from the bytes the builder writes.
@Suite("P8 error-reply headers")
struct ErrorHeaderTests {
    static let qr: UInt16 = 0x8000, aa: UInt16 = 0x0400, rd: UInt16 = 0x0100, ra: UInt16 = 0x0080
    static let ad: UInt16 = 0x0020, cd: UInt16 = 0x0010

    /// The error reply to `datagram`, parsed.
    static func reply(_ datagram: [UInt8], transport: DNSTransport = .udp) throws -> DNSMessage {
        let bad = try #require(QueryParser.parse(datagram).bad, "expected an error answer")
        var b = MessageBuilder()
        b.buildErrorResponse(for: bad, transport: transport)
        return try DNSMessage.parse(b.bytes)
    }

    @Test("NOTIMP for an unknown opcode: QR, the opcode and the rcode only (no RA, no AA, RD and CD not echoed)")
    func notimpHeader() throws {
        for opcode: UInt16 in [1, 2, 3, 4, 5, 6, 15] {
            for edns in [false, true] {
                let q = makeQuery(flags: opcode << 11 | Self.rd | Self.cd | Self.ad, edns: edns ? (1232, 0, true) : nil)
                let m = try Self.reply(q)
                #expect(m.header.flags == Self.qr | opcode << 11 | 4, "opcode \(opcode), edns \(edns)")
                #expect(m.rcode == .notImp)
                // The OPT comes back when the query had one (with DO echoed), not otherwise.
                #expect(m.edns.map { $0.version == 0 && $0.dnssecOK } == (edns ? true : nil))
            }
        }
    }

    @Test("every error reply to a query with a valid OPT carries an OPT back")
    func optOnEveryError() throws {
        let opt = (size: UInt16(1232), version: UInt8(0), dnssecOK: false)
        // FORMERR: QDCOUNT 0 (the header-only query of `dig +header-only`), with the OPT after the header.
        var zero: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 1]
        zero += [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]
        let z = try Self.reply(zero)
        #expect(z.rcode == .formErr)
        #expect(z.edns?.udpPayloadSize == 1232)
        #expect(z.questions.isEmpty)

        // FORMERR: two questions.
        var two = makeQuery(qdCount: 2, edns: opt)
        let optStart = two.count - 11
        two.insert(contentsOf: wireName("second.example") + [0, 1, 0, 1], at: optStart)
        let t = try Self.reply(two)
        #expect(t.rcode == .formErr)
        #expect(t.edns != nil)

        // FORMERR: a compression pointer in QNAME; the OPT after it can still be read.
        var ptr = Array(makeQuery().prefix(12))
        ptr[11] = 1  // ARCOUNT
        ptr += [3, 0x77, 0x77, 0x77, 0xC0, 12, 0, 1, 0, 1]
        ptr += [0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 0]
        let p = try Self.reply(ptr)
        #expect(p.rcode == .formErr)
        #expect(p.edns?.dnssecOK == true)

        // FORMERR: bytes after the last record; the OPT itself was fine.
        let trailing = try Self.reply(makeQuery(edns: opt) + [0xFF, 0xFF])
        #expect(trailing.rcode == .formErr)
        #expect(trailing.edns != nil)
        #expect(trailing.questions.count == 1)

        // BADVERS and NOTIMP.
        #expect(try Self.reply(makeQuery(edns: (1232, 1, false))).edns?.version == 0)
        #expect(try Self.reply(makeQuery(flags: 4 << 11, edns: opt)).edns != nil)

        // REFUSED and SERVFAIL are built for parsed queries; they echo the OPT too.
        let query = try #require(QueryParser.parse(makeQuery(qclass: 3, edns: opt)).query)
        var b = MessageBuilder()
        for rcode in [RCode.refused, .servFail] {
            b.buildResponse(for: query, rcode: rcode)
            let m = try DNSMessage.parse(b.bytes)
            #expect(m.rcode == rcode)
            #expect(m.edns != nil)
            #expect(m.header.flags & Self.ad == 0)
        }
    }

    @Test("an OPT that is not valid is not echoed: two OPTs, or one not owned by the root")
    func invalidOPTNotEchoed() throws {
        let second: [UInt8] = [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0]
        let twoOPT = try Self.reply(makeQuery(edns: (1232, 0, false), extraAdditional: [second]))
        #expect(twoOPT.rcode == .formErr)
        #expect(twoOPT.edns == nil)

        let owned: [UInt8] = [1, 0x61, 0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0]
        let notRoot = try Self.reply(makeQuery(extraAdditional: [owned]))
        #expect(notRoot.rcode == .formErr)
        #expect(notRoot.edns == nil)
    }

    @Test("FORMERR and the other errors keep RA and RD (only NOTIMP drops them), never AA or AD")
    func otherErrorsFlags() throws {
        let formerr = try Self.reply(makeQuery(qdCount: 0, edns: nil).prefix(12).map { $0 })
        #expect(formerr.header.flags == Self.qr | Self.rd | Self.ra | 1)
        let badvers = try Self.reply(makeQuery(flags: Self.rd | Self.ad, edns: (1232, 1, false)))
        #expect(badvers.header.flags == Self.qr | Self.rd | Self.ra)
    }
}
