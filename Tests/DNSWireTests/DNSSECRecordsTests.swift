import Testing
import DNSWire

/// P7's filter: what a client without DO sees of an upstream answer.
@Suite("DNSSECRecords")
struct DNSSECRecordsTests {
    /// An RRSIG over `covered` (the rest of the rdata is filler: only the type matters here).
    static func rrsig(_ owner: String, covering covered: RRType) -> ResourceRecord {
        rr(owner, .rrsig, [UInt8(covered.rawValue >> 8), UInt8(covered.rawValue & 0xFF), 13, 2] + Array(repeating: 7, count: 20))
    }

    static let answer: [ResourceRecord] = [
        rr("www.signed.test", .a, [192, 0, 2, 10]),
        rrsig("www.signed.test", covering: .a),
    ]
    static let negative: [ResourceRecord] = [
        rr("signed.test", .soa, Array(repeating: 0, count: 22)),
        rrsig("signed.test", covering: .soa),
        rr("signed.test", .nsec, wireName("a.signed.test") + [0, 1, 0x40]),
        rrsig("signed.test", covering: .nsec),
        rr("abc.signed.test", .nsec3, [1, 0, 0, 1, 0]),
        rrsig("abc.signed.test", covering: .nsec3),
    ]

    @Test("without DO: RRSIG, NSEC, NSEC3 and DS go, everything else stays in order")
    func stripped() {
        #expect(DNSSECRecords.withoutDNSSEC(Self.answer, askedType: .a) == [Self.answer[0]])
        #expect(DNSSECRecords.withoutDNSSEC(Self.negative, askedType: .a) == [Self.negative[0]])
        let delegation = [rr("child.signed.test", .ns, wireName("ns.child.signed.test")),
                          rr("child.signed.test", .ds, [1, 2, 13, 2, 9, 9]),
                          Self.rrsig("child.signed.test", covering: .ds)]
        #expect(DNSSECRecords.withoutDNSSEC(delegation, askedType: .a) == [delegation[0]])
    }

    @Test("the type asked for is kept: a DS question keeps its DS (not the RRSIG), an RRSIG question its RRSIGs")
    func askedTypeKept() {
        let ds = [rr("child.signed.test", .ds, [1, 2, 13, 2, 9, 9]), Self.rrsig("child.signed.test", covering: .ds)]
        #expect(DNSSECRecords.withoutDNSSEC(ds, askedType: .ds) == [ds[0]])
        #expect(DNSSECRecords.withoutDNSSEC(Self.answer, askedType: .rrsig) == Self.answer)
        #expect(DNSSECRecords.withoutDNSSEC(Self.negative, askedType: .nsec3).map(\.type) == [.soa, .nsec3])
    }

    @Test("DNSKEY and every other type are not DNSSEC records for this filter")
    func otherTypes() {
        #expect(!DNSSECRecords.isDNSSEC(.dnskey))
        #expect(!DNSSECRecords.isDNSSEC(.a))
        #expect(!DNSSECRecords.isDNSSEC(RRType(51)))  // NSEC3PARAM
        #expect([RRType.rrsig, .nsec, .nsec3, .ds].allSatisfy(DNSSECRecords.isDNSSEC))
        #expect(RRType.nsec.description == "NSEC" && RRType.nsec3.description == "NSEC3")
    }

    @Test("signatures over one RRset: owner and type covered both match")
    func signatures() {
        let records = Self.answer + [Self.rrsig("www.signed.test", covering: .cname), Self.rrsig("x.signed.test", covering: .a)]
        #expect(DNSSECRecords.signatures(in: records, owner: name("www.signed.test"), covering: .a) == [Self.answer[1]])
        #expect(DNSSECRecords.typeCovered(Self.answer[0]) == nil)
    }

    @Test("a reply built from the filtered records has no DNSSEC record; one built from all has them and no AD")
    func encoded() throws {
        let q = try #require(QueryParser.parse(makeQuery(name: "www.signed.test", edns: (1232, 0, true))).query)
        var b = MessageBuilder()
        b.buildResponse(for: q, rcode: .noError, answer: Self.answer, authority: [])
        let withDO = try DNSMessage.parse(b.bytes)
        #expect(withDO.answer.map(\.type) == [.a, .rrsig])
        #expect(withDO.header.flags & 0x0020 == 0)
        b.buildResponse(for: q, rcode: .nxDomain, answer: [], authority: DNSSECRecords.withoutDNSSEC(Self.negative, askedType: .a))
        #expect(try DNSMessage.parse(b.bytes).authority.map(\.type) == [.soa])
    }
}
