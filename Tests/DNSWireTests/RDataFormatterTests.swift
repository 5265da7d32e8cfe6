import Testing
import DNSWire

@Suite("RDataFormatter")
struct RDataFormatterTests {
    func text(_ t: RRType, _ b: [UInt8]) -> String { RDataFormatter.presentation(type: t, rdata: b) }

    @Test("A")
    func a() {
        #expect(text(.a, [10, 0, 1, 10]) == "10.0.1.10")
        #expect(text(.a, [255, 255, 255, 255]) == "255.255.255.255")
        #expect(text(.a, [1, 2, 3]) == "\\# 3 010203")
    }

    @Test("AAAA, RFC 5952", arguments: [
        ("00000000000000000000000000000000", "::"),
        ("00000000000000000000000000000001", "::1"),
        ("20010db8000000000000000000000001", "2001:db8::1"),
        ("20010db8000000000001000000000001", "2001:db8::1:0:0:1"),
        ("00010000000000000000000000000000", "1::"),
        ("20010db8000000010001000100010001", "2001:db8:0:1:1:1:1:1"),   // a single zero group stays
        ("20010db8000000000001000000000000", "2001:db8:0:0:1::"),      // the longer run wins
        ("20010000000100000000000100000000", "2001:0:1::1:0:0"),      // a tie → the first run
        ("20010db800000001000000000000abcd", "2001:db8:0:1::abcd"),
        ("fe800000000000000a0b0c0dFFFF0001", "fe80::a0b:c0d:ffff:1"),
        ("00000000000000000000ffffc0000201", "::ffff:192.0.2.1"),
        ("00010002000300040005000600070008", "1:2:3:4:5:6:7:8"),
    ])
    func aaaa(_ input: String, _ expected: String) {
        #expect(text(.aaaa, hex(input)) == expected)
    }

    @Test("names: NS, CNAME, PTR, DNAME with a trailing dot; the root; escapes")
    func names() {
        #expect(text(.ns, wireName("ns1.example.com")) == "ns1.example.com.")
        #expect(text(.cname, wireName("Web.Example.com")) == "Web.Example.com.")
        #expect(text(.ptr, wireName("host.example.net")) == "host.example.net.")
        #expect(text(RRType(39), wireName("example.org")) == "example.org.")
        #expect(text(.cname, [0]) == ".")
        #expect(text(.cname, [3, 0x61, 0x2E, 0x62, 0]) == "a\\.b.")
        #expect(text(.cname, [2, 0x61, 0x20, 0]) == "a\\032.")
        #expect(text(.cname, [0xC0, 0x0C]) == "\\# 2 C00C")           // a pointer is not a name here
        #expect(text(.cname, wireName("a.b") + [1]) == "\\# 6 0161016200" + "01")
    }

    @Test("MX, SRV, SOA")
    func structured() {
        #expect(text(.mx, [0, 10] + wireName("mail.example.com")) == "10 mail.example.com.")
        #expect(text(.srv, [0, 1, 0, 5, 0x13, 0xC4] + wireName("sip.example.com")) == "1 5 5060 sip.example.com.")
        let soa = wireName("ns-1.awsdns.com") + wireName("awsdns-hostmaster.amazon.com") +
            hex("00000001 00001c20 00000384 00127500 00015180")
        #expect(text(.soa, soa) == "ns-1.awsdns.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400")
        #expect(text(.soa, Array(soa.dropLast())).hasPrefix("\\# "))
        #expect(text(.mx, [0]) == "\\# 1 00")
    }

    @Test("TXT: quoted strings separated by spaces; quote, backslash and non-printables escaped")
    func txt() {
        #expect(text(.txt, [5] + Array("hello".utf8)) == "\"hello\"")
        #expect(text(.txt, [3] + Array("a b".utf8) + [0] + [2] + Array("cd".utf8)) == "\"a b\" \"\" \"cd\"")
        #expect(text(.txt, [4, 0x22, 0x5C, 0x0A, 0xC3]) == "\"\\\"\\\\\\010\\195\"")
        #expect(text(.txt, [5, 0x61]) == "\\# 2 0561")
        #expect(text(.txt, []) == "\\# 0")
        #expect(text(.spf, [6] + Array("v=spf1".utf8)) == "\"v=spf1\"")
    }

    @Test("CAA")
    func caa() {
        #expect(text(.caa, [0, 5] + Array("issue".utf8) + Array("amazon.com".utf8)) == "0 issue \"amazon.com\"")
        #expect(text(.caa, [128, 3] + Array("iodef".utf8).prefix(3) + Array("x\"y".utf8)) == "128 iod \"x\\\"y\"")
        #expect(text(.caa, [0, 0]) == "\\# 2 0000")
        #expect(text(.caa, [0, 9, 0x61]) == "\\# 3 000961")
    }

    @Test("RFC 3597 for everything else")
    func generic() {
        #expect(text(RRType(65534), [0xDE, 0xAD, 0xBE, 0xEF]) == "\\# 4 DEADBEEF")
        #expect(text(.ds, []) == "\\# 0")
        #expect(RDataFormatter.presentation(type: .a, rdata: [9, 9, 10, 0, 0, 1][2...]) == "10.0.0.1")
        let r = ResourceRecord.a(name("x.example"), [192, 0, 2, 7], ttl: 1)
        #expect(r.rdataText == "192.0.2.7")
    }
}
