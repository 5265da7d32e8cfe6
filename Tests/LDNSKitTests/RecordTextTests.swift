import DNSWire
import Testing
@testable import LDNSKit

@Suite("Record values")
struct RecordTextTests {
    func rdata(_ type: RRType, _ text: String, origin: DNSName = example) throws(RecordTextError) -> [UInt8] {
        try RecordText.rdata(type: type, text: text, origin: origin)
    }

    @Test func a() throws { #expect(try rdata(.a, "10.0.0.1") == [10, 0, 0, 1]) }

    @Test func aaaa() throws {
        #expect(try rdata(.aaaa, "2001:db8::1") == [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])
    }

    @Test func mxAbsoluteAndRelative() throws {
        let expected: [UInt8] = [0, 10] + name("mail.example.com").wire
        #expect(try rdata(.mx, "10 mail.example.com.") == expected)
        #expect(try rdata(.mx, "10 mail") == expected)
        #expect(try rdata(.mx, "10 Mail.Example.Com.") == expected)
    }

    @Test func txtWithSpacesAndSeveralStrings() throws {
        let spf = "v=spf1 include:amazonses.com -all"
        #expect(try rdata(.txt, "\"\(spf)\"") == [UInt8(spf.utf8.count)] + Array(spf.utf8))
        #expect(try rdata(.txt, "\"a b\" \"c\"") == [3] + Array("a b".utf8) + [1] + Array("c".utf8))
        #expect(try rdata(.txt, "unquoted") == [8] + Array("unquoted".utf8))
    }

    @Test func unterminatedQuoteIsRejected() throws {
        #expect(throws: RecordTextError(message: "bad TXT value \"\"abc\": unterminated quoted string (no closing \")")) {
            try rdata(.txt, "\"abc")
        }
        #expect(throws: RecordTextError.self) { try rdata(.txt, "\"abc\" \"def") }
        #expect(try rdata(.txt, "\"a\\\"b\"") == [3, 97, 34, 98])
    }

    @Test func srv() throws {
        #expect(try rdata(.srv, "1 5 5060 sip.example.com.") == [0, 1, 0, 5, 0x13, 0xC4] + name("sip.example.com").wire)
    }

    @Test func caa() throws {
        #expect(try rdata(.caa, "0 issue \"amazon.com\"") == [0, 5] + Array("issue".utf8) + Array("amazon.com".utf8))
    }

    @Test func cnameRelativeAbsoluteAndRootOrigin() throws {
        #expect(try rdata(.cname, "www") == name("www.example.com").wire)
        #expect(try rdata(.cname, "www.other.org.") == name("www.other.org").wire)
        // Route 53 treats every name as absolute: pass the root as origin for that.
        #expect(try rdata(.cname, "www.other.org", origin: .root) == name("www.other.org").wire)
    }

    @Test func ptrAndNS() throws {
        #expect(try rdata(.ptr, "host.example.com.") == name("host.example.com").wire)
        #expect(try rdata(.ns, "ns-1.awsdns-00.co.uk.") == name("ns-1.awsdns-00.co.uk").wire)
    }

    @Test func soaValue() throws {
        let w = try rdata(.soa, "ns-1536.awsdns-00.co.uk. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400")
        let rr = ResourceRecord(name: example, type: .soa, ttl: 900, rdata: w)
        #expect(rr.soaMinimum == 86400)
    }

    struct Bad: Sendable, CustomStringConvertible {
        let type: RRType
        let text: String
        let message: String
        var description: String { "\(type) \(text)" }
    }

    static let bad: [Bad] = [
        Bad(type: .a, text: "10.0.0.999", message: "bad A value \"10.0.0.999\": Syntax error, could not parse the RR's rdata"),
        Bad(type: .a, text: "", message: "empty A value"),
        Bad(type: .a, text: "   ", message: "empty A value"),
        Bad(type: .a, text: "10.0.0.1 10.0.0.2", message: "bad A value \"10.0.0.1 10.0.0.2\": Syntax error, superfluous text present"),
        Bad(type: .aaaa, text: "10.0.0.1", message: "bad AAAA value \"10.0.0.1\": Syntax error, could not parse the RR's rdata"),
        Bad(type: .mx, text: "mail.example.com.", message: "bad MX value \"mail.example.com.\": Syntax error, could not parse the RR's rdata"),
        Bad(type: .srv, text: "1 2 sip.example.com.", message: "bad SRV value \"1 2 sip.example.com.\": Syntax error, could not parse the RR's rdata"),
        Bad(type: .a, text: "10.0.0.1\n10.0.0.2", message: "a A value must be a single line"),
        Bad(type: .any, text: "10.0.0.1", message: "ANY is not a record type that can hold data"),
    ]

    @Test(arguments: bad)
    func errors(_ b: Bad) {
        #expect(throws: RecordTextError(message: b.message)) { try rdata(b.type, b.text) }
    }

    @Test func presentationOfBuiltRecords() throws {
        let a = ResourceRecord.a(name("www.example.com"), [10, 0, 0, 1], ttl: 300)
        #expect(RecordText.presentation(a) == "www.example.com.\t300\tIN\tA\t10.0.0.1")
        #expect(RecordText.rdataPresentation(a) == "10.0.0.1")
        let mx = ResourceRecord(name: example, type: .mx, ttl: 60, rdata: try rdata(.mx, "10 mail"))
        #expect(RecordText.rdataPresentation(mx) == "10 mail.example.com.")
        let txt = ResourceRecord(name: example, type: .txt, ttl: 60, rdata: try rdata(.txt, "\"v=spf1 -all\""))
        #expect(RecordText.rdataPresentation(txt) == "\"v=spf1 -all\"")
    }

    @Test func malformedRdataFallsBackToGenericForm() {
        let bad = ResourceRecord(name: example, type: .a, ttl: 5, rdata: [10, 0, 0])
        #expect(RecordText.presentation(bad) == "example.com.\t5\tIN\tA\t\\# 3 0a0000")
        #expect(RecordText.rdataPresentation(bad) == "\\# 3 0a0000")
    }

    /// Zone file -> wire -> presentation -> wire gives the same bytes for every common type.
    @Test func roundTripThroughPresentation() throws {
        for rec in try parse(fullZone) {
            let text = RecordText.rdataPresentation(rec.record)
            #expect(try rdata(rec.record.type, text, origin: .root) == rec.record.rdata, "\(text)")
        }
    }
}
