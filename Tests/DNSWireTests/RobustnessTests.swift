import Testing
import DNSWire

/// Throws 200,000 random and mutated datagrams at both parsers. The point is that nothing
/// traps (a trap kills the test process, failing the run); on top, every reply the builder
/// makes from what the query parser returned must parse again, and every message the full
/// parser accepted must survive re-encoding unchanged. Seeded, so a failure is repeatable.
@Suite("Robustness")
struct RobustnessTests {
    static func corpus() -> [[UInt8]] {
        var c: [[UInt8]] = [
            makeQuery(),
            makeQuery(name: "WwW.Example.COM", edns: (1232, 0, true), cookie: true),
            makeQuery(flags: 4 << 11, edns: (4096, 1, false)),
            makeQuery(name: ".", type: 255, extraAdditional: [[0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]]),
            MessageBuilderTests.digQuery,
            MessageParserTests.reply,
        ]
        var b = MessageBuilder()
        let q = DNSQuery(header: DNSHeader(id: 9, flags: 0x0100, qdCount: 1), question: DNSQuestion(name: name("www.example.com"), type: .a),
                         edns: EDNSInfo(udpPayloadSize: 4096), questionRange: 0..<0)
        b.buildResponse(for: q, rcode: .noError, answer: [
            rr("www.example.com", .cname, wireName("web.example.com")),
            rr("web.example.com", .a, [192, 0, 2, 1]),
            rr("example.com", .mx, [0, 10] + wireName("mail.example.com")),
            rr("_sip._tcp.example.com", .srv, [0, 1, 0, 2, 0x13, 0xC4] + wireName("sip.example.com")),
            rr("example.com", .txt, [3, 0x61, 0x62, 0x63, 1, 0x22]),
            rr("example.com", .caa, [0, 5] + Array("issue".utf8) + Array("amazon.com".utf8)),
            rr("example.com", .aaaa, hex("20010db8000000000000000000000001")),
        ], authority: [
            rr("example.com", .soa, wireName("ns1.example.com") + wireName("hostmaster.example.com") + Array(repeating: 7, count: 20)),
        ], additional: [rr("ns1.example.com", .a, [10, 0, 0, 53])])
        c.append(b.bytes)
        return c
    }

    @Test("200,000 random and mutated packets: no trap, replies re-parse, accepted messages round-trip")
    func fuzz() throws {
        var rng = SplitMix64(seed: 0x5EED_D15_0001)
        let corpus = RobustnessTests.corpus()
        var builder = MessageBuilder()
        var reencoder = MessageBuilder()
        var outcomes = [String: Int]()
        var messagesAccepted = 0
        var roundTrips = 0

        for _ in 0..<200_000 {
            var p = corpus[Int(rng.next() % UInt64(corpus.count))]
            let rounds = 1 + Int(rng.next() % 3)
            for _ in 0..<rounds { RobustnessTests.mutate(&p, &rng) }

            switch QueryParser.parse(p) {
            case .drop(let why):
                outcomes["drop-\(why.rawValue)", default: 0] += 1
            case .bad(let bad):
                outcomes["bad-\(bad.kind.rawValue)", default: 0] += 1
                builder.buildErrorResponse(for: bad)
                let reply = try DNSMessage.parse(builder.bytes)
                #expect(reply.header.id == bad.header.id)
                #expect(reply.rcode == bad.kind.rcode)
            case .query(let q):
                outcomes["query", default: 0] += 1
                builder.buildResponse(for: q, rcode: .noError, answer: [.a(q.name, [10, 0, 0, 1], ttl: 5)])
                let reply = try DNSMessage.parse(builder.bytes)
                #expect(reply.questions.first == q.question)
                _ = q.question.originalNameText
            }

            if let m = try? DNSMessage.parse(p) {
                messagesAccepted += 1
                for r in m.answer + m.authority + m.additional { _ = r.rdataText }
                if let first = m.questions.first {
                    _ = first.originalNameText
                    let q = DNSQuery(header: m.header, question: first, edns: m.edns, questionRange: 0..<0)
                    let s = reencoder.buildResponse(for: q, rcode: m.rcode, answer: m.answer, authority: m.authority,
                                                    additional: m.additional, transport: .tcp)
                    if !s.truncated && s.answerCount == m.answer.count && s.additionalCount == m.additional.count {
                        roundTrips += 1
                        let again = try DNSMessage.parse(reencoder.bytes)
                        #expect(again.answer == m.answer)
                        #expect(again.authority == m.authority)
                        #expect(again.additional == m.additional)
                        #expect(again.questions.first == first)
                    }
                }
            }
        }
        // The mutations must reach every outcome, or the test proves little.
        for key in ["drop-too-short", "drop-response", "bad-qdcount", "bad-question", "bad-opcode", "bad-edns-version", "query"] {
            #expect(outcomes[key, default: 0] > 100, "outcome \(key) reached \(outcomes[key, default: 0]) times")
        }
        #expect(messagesAccepted > 1000)
        #expect(roundTrips > 100, "re-encoding round trips checked: \(roundTrips)")
        print("robustness outcomes: \(outcomes.sorted { $0.key < $1.key }), full parses accepted: \(messagesAccepted)")
    }

    @Test("rdata presentation of 50,000 random rdata for every formatted type never traps")
    func formatterFuzz() {
        var rng = SplitMix64(seed: 0xF0F0_0002)
        let types: [RRType] = [.a, .aaaa, .ns, .cname, .ptr, RRType(39), .mx, .srv, .soa, .txt, .spf, .hinfo, .caa, .ds, RRType(65534)]
        var generic = 0
        for i in 0..<50_000 {
            let t = types[i % types.count]
            let length = Int(rng.next() % 80)
            var rdata = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Make small label lengths likely so names and strings often parse.
            if rng.next() % 2 == 0 { for k in rdata.indices where rng.next() % 3 == 0 { rdata[k] &= 0x0F } }
            let text = RDataFormatter.presentation(type: t, rdata: rdata)
            #expect(!text.isEmpty)
            if text.hasPrefix("\\# ") { generic += 1 }
        }
        #expect(generic > 0)
    }

    static func mutate(_ p: inout [UInt8], _ rng: inout SplitMix64) {
        func r(_ n: Int) -> Int { n <= 0 ? 0 : Int(rng.next() % UInt64(n)) }
        switch r(8) {
        case 0, 1: // bit flips
            guard !p.isEmpty else { return }
            for _ in 0...r(8) { let i = r(p.count); p[i] ^= 1 << UInt8(r(8)) }
        case 2: // truncation
            p.removeLast(r(p.count + 1))
        case 3: // random counts and flags
            guard p.count >= 12 else { return }
            let i = 2 + r(10)
            p[i] = UInt8(truncatingIfNeeded: rng.next())
            if r(2) == 0 { p[i] = [0, 1, 2, 0xFF][r(4)] }
        case 4: // compression pointer to itself, backwards, forwards or past the end
            guard p.count >= 14 else { return }
            let at = 12 + r(p.count - 13)
            let target = [at, at - 2, r(p.count), p.count + r(100), 12][r(5)]
            p[at] = 0xC0 | UInt8((target >> 8) & 0x3F)
            p[at + 1] = UInt8(truncatingIfNeeded: target)
        case 5: // random bytes
            p = (0..<r(600)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        case 6: // overwrite a span
            guard !p.isEmpty else { return }
            let at = r(p.count)
            for i in at..<min(p.count, at + 1 + r(16)) { p[i] = UInt8(truncatingIfNeeded: rng.next()) }
        default: // append garbage or duplicate a tail (repeated records, several OPTs)
            if r(2) == 0 {
                p += (0..<r(40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else if p.count > 12 {
                p += p.suffix(1 + r(p.count - 12))
                if r(2) == 0 { p[11] &+= 1 }
            }
        }
    }
}
