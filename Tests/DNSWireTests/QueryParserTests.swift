import Testing
import DNSWire

@Suite("QueryParser")
struct QueryParserTests {
    @Test("a plain query: header, question lower-cased with case kept, no EDNS")
    func plainQuery() throws {
        let bytes = makeQuery(id: 0xBEEF, flags: 0x0110, name: "WwW.Example.COM", type: 28)
        let q = try #require(QueryParser.parse(bytes).query)
        #expect(q.id == 0xBEEF)
        #expect(q.recursionDesired)
        #expect(q.checkingDisabled)
        #expect(q.header.opcode == 0)
        #expect(q.name == name("www.example.com"))
        #expect(q.type == .aaaa)
        #expect(q.qclass == .in)
        #expect(q.edns == nil)
        #expect(q.question.originalNameWire == wireName("WwW.Example.COM"))
        #expect(q.question.originalNameText == "WwW.Example.COM.")
        #expect(q.questionRange == 12..<(bytes.count))
        #expect(q.policyViolation() == nil)
    }

    @Test("EDNS: payload size, version 0, DO; options (COOKIE) skipped")
    func edns() throws {
        let bytes = makeQuery(edns: (4096, 0, true), cookie: true)
        let q = try #require(QueryParser.parse(bytes).query)
        let e = try #require(q.edns)
        #expect(e.udpPayloadSize == 4096)
        #expect(e.version == 0)
        #expect(e.dnssecOK)
        #expect(q.dnssecOK)
    }

    @Test("other additional records (a TSIG-like RR) are skipped")
    func otherAdditional() throws {
        let tsig: [UInt8] = [0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]
        let bytes = makeQuery(edns: (1232, 0, false), extraAdditional: [tsig, tsig])
        let q = try #require(QueryParser.parse(bytes).query)
        #expect(q.edns?.udpPayloadSize == 1232)
    }

    @Test("drop: shorter than a header")
    func tooShort() {
        for n in 0..<12 {
            #expect(QueryParser.parse(Array(makeQuery().prefix(n))).dropReason == .tooShort)
        }
    }

    @Test("drop: QR set")
    func response() {
        #expect(QueryParser.parse(makeQuery(flags: 0x8100)).dropReason == .response)
    }

    @Test("qdcount: 0 and 2 questions → FORMERR, header kept")
    func qdcount() throws {
        var zero = makeQuery(qdCount: 0)
        zero.removeLast(zero.count - 12)
        let b0 = try #require(QueryParser.parse(zero).bad)
        #expect(b0.kind == .qdcount)
        #expect(b0.kind.rcode == .formErr)
        #expect(b0.question == nil)
        #expect(b0.header.id == 0x1234)

        var two = makeQuery(qdCount: 2)
        two += wireName("second.example") + [0, 1, 0, 1]
        let b2 = try #require(QueryParser.parse(two).bad)
        #expect(b2.kind == .qdcount)
        #expect(b2.question?.name == name("www.example.com"))
    }

    @Test("question: compression pointer in QNAME, truncation, too long, trailing bytes, bad label type")
    func question() throws {
        // Pointer: "www" then a pointer to offset 12.
        var ptr = Array(makeQuery().prefix(12))
        ptr += [3, 0x77, 0x77, 0x77, 0xC0, 12, 0, 1, 0, 1]
        #expect(QueryParser.parse(ptr).bad?.kind == .question)

        let full = makeQuery()
        for cut in 13..<full.count {
            let b = try #require(QueryParser.parse(Array(full.prefix(cut))).bad, "cut at \(cut)")
            #expect(b.kind == .question)
        }

        // 5 labels of 63 = 320 octets > 255.
        let label = String(repeating: "a", count: 63)
        let long = makeQuery(name: Array(repeating: label, count: 5).joined(separator: "."))
        #expect(QueryParser.parse(long).bad?.kind == .question)
        // 4 labels of 63 = 257 octets (with lengths and root): also too long; 3 + 61 fits.
        let edge = makeQuery(name: [label, label, label, String(repeating: "b", count: 61)].joined(separator: "."))
        #expect(QueryParser.parse(edge).query?.name.wire.count == 255)
        let over = makeQuery(name: [label, label, label, String(repeating: "b", count: 62)].joined(separator: "."))
        #expect(QueryParser.parse(over).bad?.kind == .question)

        let trailing = makeQuery() + [0xFF]
        let t = try #require(QueryParser.parse(trailing).bad)
        #expect(t.kind == .question)
        #expect(t.question?.name == name("www.example.com")) // still echoed

        var labelType = Array(makeQuery().prefix(12))
        labelType += [0x41, 0x77, 0, 0, 1, 0, 1]
        #expect(QueryParser.parse(labelType).bad?.kind == .question)
    }

    @Test("two OPT records → FORMERR (RFC 6891 §6.1.1)")
    func twoOPT() throws {
        let opt: [UInt8] = [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0]
        let bytes = makeQuery(edns: (1232, 0, false), extraAdditional: [opt])
        let b = try #require(QueryParser.parse(bytes).bad)
        #expect(b.kind == .question)
        #expect(b.edns == nil)
    }

    @Test("opcode: NOTIFY and UPDATE → NOTIMP, question kept when readable")
    func opcode() throws {
        let notify = try #require(QueryParser.parse(makeQuery(flags: 4 << 11)).bad)
        #expect(notify.kind == .opcode)
        #expect(notify.kind.rcode == .notImp)
        #expect(notify.question?.name == name("www.example.com"))
        let update = try #require(QueryParser.parse(makeQuery(flags: 5 << 11, qdCount: 0)).bad)
        #expect(update.kind == .opcode)
    }

    @Test("edns-version: version 1 → BADVERS with the OPT kept for the reply")
    func ednsVersion() throws {
        let b = try #require(QueryParser.parse(makeQuery(edns: (1232, 1, true))).bad)
        #expect(b.kind == .ednsVersion)
        #expect(b.kind.rcode == .badVers)
        #expect(b.edns?.version == 1)
        #expect(b.question != nil)
        #expect(b.kind.logReason == "bad-packet:edns-version")
    }

    @Test("policy helper: class and transfer")
    func policy() throws {
        let ch = try #require(QueryParser.parse(makeQuery(name: "version.bind", type: 16, qclass: 3)).query)
        #expect(ch.policyViolation() == .class)
        #expect(ch.policyViolation(allowChaos: true) == nil)
        let any = try #require(QueryParser.parse(makeQuery(qclass: 255)).query)
        #expect(any.policyViolation() == .class)
        let axfr = try #require(QueryParser.parse(makeQuery(type: 252)).query)
        #expect(axfr.policyViolation() == .transfer)
        #expect(BadQueryKind.classify(type: .ixfr, qclass: .in) == .transfer)
        #expect(BadQueryKind.transfer.rcode == .refused)
        #expect(BadQueryKind.class.rcode == .refused)
    }

    @Test("root query and the slice entry point")
    func rootAndSlice() throws {
        let bytes = [0xAA, 0xAA] + makeQuery(name: ".", type: 2)
        let q = try #require(QueryParser.parse(bytes[2...]).query)
        #expect(q.name == .root)
        #expect(q.question.originalNameText == ".")
    }
}
