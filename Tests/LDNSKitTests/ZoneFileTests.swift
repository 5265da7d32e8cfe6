import DNSWire
import Testing
@testable import LDNSKit

/// Every feature of RFC 1035 master files that vpcdns zone files use, in one zone.
let fullZone = """
; a zone with most of what RFC 1035 allows
$TTL 300

@   IN SOA ns1 Hostmaster (   ; the SOA starts on line 4
        2024010101 ; serial
        7200       ; refresh

        900 1209600
        86400 )    ; minimum, line 9
    IN NS ns1
www 60 IN A 10.0.0.1
    IN AAAA 2001:db8::1
mail IN MX 10 MX.Example.COM.
*.wild IN A 10.9.9.9
txt IN TXT "hello world" "x;y"
$ORIGIN sub.example.com.
a IN A 10.1.1.1
$ORIGIN deeper
b IN A 10.1.1.2
WWW.Upper IN CNAME Target
srv IN SRV 0 5 5060 sip
caa IN CAA 0 issue "amazon.com"
$ORIGIN example.com.
1.0.0.10 PTR www
"""

@Suite("Zone files")
struct ZoneFileTests {
    @Test func fullZoneRecordsLinesAndPresentation() throws {
        let records = try parse(fullZone)
        let expected: [(Int, String)] = [
            (4, "example.com.\t300\tIN\tSOA\tns1.example.com. hostmaster.example.com. 2024010101 7200 900 1209600 86400"),
            (10, "example.com.\t300\tIN\tNS\tns1.example.com."),
            (11, "www.example.com.\t60\tIN\tA\t10.0.0.1"),
            (12, "www.example.com.\t300\tIN\tAAAA\t2001:db8::1"),
            (13, "mail.example.com.\t300\tIN\tMX\t10 mx.example.com."),
            (14, "*.wild.example.com.\t300\tIN\tA\t10.9.9.9"),
            (15, "txt.example.com.\t300\tIN\tTXT\t\"hello world\" \"x;y\""),
            (17, "a.sub.example.com.\t300\tIN\tA\t10.1.1.1"),
            (19, "b.deeper.sub.example.com.\t300\tIN\tA\t10.1.1.2"),
            (20, "www.upper.deeper.sub.example.com.\t300\tIN\tCNAME\ttarget.deeper.sub.example.com."),
            (21, "srv.deeper.sub.example.com.\t300\tIN\tSRV\t0 5 5060 sip.deeper.sub.example.com."),
            (22, "caa.deeper.sub.example.com.\t300\tIN\tCAA\t0 issue \"amazon.com\""),
            (24, "1.0.0.10.example.com.\t300\tIN\tPTR\twww.example.com."),
        ]
        #expect(records.count == expected.count)
        for (rec, (line, text)) in zip(records, expected) {
            #expect(rec.line == line, "\(text)")
            #expect(RecordText.presentation(rec.record) == text)
        }
        #expect(records.map(\.record.type) == [.soa, .ns, .a, .aaaa, .mx, .a, .txt, .a, .a, .cname, .srv, .caa, .ptr])
    }

    @Test func soaMinimumAndWire() throws {
        let soa = try #require(try parse(fullZone).first?.record)
        #expect(soa.type == .soa)
        #expect(soa.soaMinimum == 86400)
        // MNAME and RNAME uncompressed and lower-cased, then five 32-bit numbers.
        let mname = name("ns1.example.com").wire, rname = name("hostmaster.example.com").wire
        #expect(soa.rdata.count == mname.count + rname.count + 20)
        #expect(Array(soa.rdata.prefix(mname.count)) == mname)
        #expect(Array(soa.rdata[mname.count..<(mname.count + rname.count)]) == rname)
    }

    @Test func ownersAndRdataNamesAreLowerCasedTextKeepsCase() throws {
        let records = try parse("WWW IN CNAME Target.Example.COM.\nt TXT \"MiXeD\"\n")
        #expect(records[0].record.name == name("www.example.com"))
        #expect(records[0].record.rdata == name("target.example.com").wire)
        #expect(records[0].record.targetName == name("target.example.com"))
        #expect(records[1].record.rdata == [5] + Array("MiXeD".utf8))
    }

    @Test func atSignRelativeNamesAndBlankOwner() throws {
        let records = try parse("@ 10 IN A 10.0.0.1\n  IN MX 5 mail\nmail A 10.0.0.2\n\t AAAA ::1\n")
        #expect(records.map(\.record.name) == [example, example, name("mail.example.com"), name("mail.example.com")])
        #expect(records[1].record.rdata == [0, 5] + name("mail.example.com").wire)
    }

    @Test func wildcardOwner() throws {
        let records = try parse("*.apps 60 A 10.2.3.4\n")
        #expect(records[0].record.name.isWildcard)
        #expect(records[0].record.name == name("*.apps.example.com"))
        #expect(records[0].record.rdata == [10, 2, 3, 4])
    }

    @Test func ttlRules() throws {
        // Before any $TTL: the parameter, then the last explicit TTL carries forward (RFC 1035).
        var r = try parse("a A 10.0.0.1\nb 20 A 10.0.0.2\nc A 10.0.0.3\n", defaultTTL: 77)
        #expect(r.map(\.record.ttl) == [77, 20, 20])
        // After $TTL: records without a TTL get it; explicit ones keep theirs.
        r = try parse("$TTL 1h30m\na A 10.0.0.1\nb 20 A 10.0.0.2\nc A 10.0.0.3\n")
        #expect(r.map(\.record.ttl) == [5400, 20, 5400])
        // $TTL 0 means 0 (ldns alone would substitute its 3600 default for 0).
        r = try parse("$TTL 0\na A 10.0.0.1\nb 0 A 10.0.0.2\n")
        #expect(r.map(\.record.ttl) == [0, 0])
        r = try parse("a 2147483647 A 10.0.0.1\nb 1W A 10.0.0.2\n")
        #expect(r.map(\.record.ttl) == [2_147_483_647, 604_800])
    }

    @Test func linesWithBlankLinesCommentsAndMultiLineRecords() throws {
        let text = "\n; comment\n\n   ; indented comment\na A 10.0.0.1 ; trailing\n\n\nb IN MX (\n 10\n mail )\n\n  ; end\n"
        let r = try parse(text)
        #expect(r.map(\.line) == [5, 8])
    }

    @Test func emptyAndCommentOnlyTextHaveNoRecords() throws {
        #expect(try parse("").isEmpty)
        #expect(try parse("; nothing\n\n   \n").isEmpty)
        #expect(try parse("; no newline at the end").isEmpty)
    }

    @Test func lastLineWithoutNewline() throws {
        let r = try parse("a A 10.0.0.1\nb A 10.0.0.2")
        #expect(r.map(\.line) == [1, 2])
        #expect(r[1].record.rdata == [10, 0, 0, 2])
    }

    @Test func windowsLineEndings() throws {
        let r = try parse("$TTL 60\r\na A 10.0.0.1\r\n\r\nb MX ( 10\r\n mail )\r\n")
        #expect(r.map(\.line) == [2, 4])
        #expect(r.map(\.record.ttl) == [60, 60])
        #expect(r[1].record.rdata == [0, 10] + name("mail.example.com").wire)
    }

    @Test func overlongLineIsAnErrorNotACrash() throws {
        let long = "a A 10.0.0.1\nb TXT \"" + String(repeating: "x", count: 20000) + "\"\nc A 10.0.0.2\n"
        let error = try #require(parseError(long))
        #expect(error.line == 2)
        #expect(error.message == "record is longer than ldns's limit of 10230 characters")
    }

    @Test func duplicatesAndCaseVariantsAreKept() throws {
        let r = try parse("WWW A 10.0.0.1\nwww A 10.0.0.1\n")
        #expect(r.count == 2)
        #expect(r[0].record == r[1].record)
    }

    @Test func unknownTypeInRFC3597Form() throws {
        let r = try parse("x TYPE65000 \\# 2 abcd\n")
        #expect(r[0].record.type == RRType(65000))
        #expect(r[0].record.rdata == [0xAB, 0xCD])
        #expect(RecordText.presentation(r[0].record) == "x.example.com.\t3600\tIN\tTYPE65000\t\\# 2 abcd")
    }

    @Test func otherOriginsIncludingTheRoot() throws {
        let r = try ZoneFile.parse(text: "www A 10.0.0.1\n", origin: name("corp.internal"), path: "p")
        #expect(r[0].record.name == name("www.corp.internal"))
        let root = try ZoneFile.parse(text: "www.x. A 10.0.0.1\n", origin: .root, path: "p")
        #expect(root[0].record.name == name("www.x"))
    }

    struct Broken: Sendable, CustomStringConvertible {
        let text: String
        let line: Int
        let message: String
        var description: String { message }
    }

    static let broken: [Broken] = [
        Broken(text: "a A 10.0.0.1\n\n\nb A 10.0.0.999\n", line: 4,
               message: "Syntax error, could not parse the RR's rdata in \"b A 10.0.0.999\""),
        Broken(text: "a A 10.0.0.1\nb 3OO A 10.0.0.2\n", line: 2, message: "bad TTL 3OO"),
        Broken(text: "a 1x A 10.0.0.1\n", line: 1, message: "bad TTL 1x"),
        Broken(text: "a 2147483648 A 10.0.0.1\n", line: 1, message: "TTL 2147483648 is out of range (0-2147483647)"),
        Broken(text: "; c\n$TTL abc\n", line: 2, message: "$TTL: bad TTL abc"),
        Broken(text: "$TTL\n", line: 1, message: "$TTL needs a value"),
        Broken(text: "$ORIGIN\n", line: 1, message: "$ORIGIN needs a domain name"),
        Broken(text: "a A 10.0.0.1\n$ORIGIN bad..name.\n", line: 2, message: "bad $ORIGIN name bad..name."),
        Broken(text: "a A 10.0.0.1\nb IN BOGUS 10.0.0.2\n", line: 2, message: "unknown record type BOGUS"),
        Broken(text: "a A 10.0.0.1\n\n$INCLUDE other.zone\n", line: 3, message: "$INCLUDE is not supported"),
        Broken(text: "a A 10.0.0.1\nwww.other.org. A 10.0.0.2\n", line: 2,
               message: "www.other.org. is outside the zone example.com."),
        Broken(text: "$ORIGIN other.org.\nwww A 10.0.0.2\n", line: 2,
               message: "www.other.org. is outside the zone example.com."),
        Broken(text: "; soa\n@ IN SOA ns1 host (\n 1 7200\n x 1209600\n 86400 )\n", line: 2,
               message: "Syntax error, could not parse the RR's rdata in \"@ IN SOA ns1 host ( 1 7200 x 1209600 86400 )\" (record spans lines 2-5)"),
        Broken(text: "a A 10.0.0.1\nb IN SOA ns1 host (\n 1 2 3 4\n", line: 2,
               message: "Syntax error, value expected in \"b IN SOA ns1 host ( 1 2 3 4\" (record spans lines 2-3)"),
        Broken(text: "a CH A 10.0.0.1\n", line: 1, message: "class CH is not supported: vpcdns zones are class IN"),
        Broken(text: "a IN 300 A 10.0.0.1\n", line: 1, message: "the TTL must come before the class (IN 300)"),
        Broken(text: "$GENERATE 1-2 h$ A 10.0.0.$\n", line: 1, message: "$GENERATE is not supported (only $ORIGIN and $TTL are)"),
        Broken(text: "a A 10.0.0.1 10.0.0.2\n", line: 1,
               message: "Syntax error, superfluous text present in \"a A 10.0.0.1 10.0.0.2\""),
        Broken(text: "a MX mail\n", line: 1, message: "Syntax error, could not parse the RR's rdata in \"a MX mail\""),
        Broken(text: "a\n", line: 1, message: "incomplete record: no type"),
        Broken(text: "a..b A 10.0.0.1\n", line: 1, message: "Syntax error, could not parse the RR in \"a..b A 10.0.0.1\""),
        Broken(text: "a A 10.0.0.1\n\u{0}\n", line: 2, message: "the zone file contains a NUL byte"),
    ]

    @Test(arguments: broken)
    func brokenZoneReportsLineAndMessage(_ b: Broken) throws {
        let error = try #require(parseError(b.text))
        #expect(error.path == "test.zone")
        #expect(error.line == b.line)
        #expect(error.message == b.message)
    }

    /// ldns reads `"abc` with no closing quote as the string abc (or swallows the next lines
    /// into it); BIND and NSD reject it, and so does vpcdns, naming the line of the quote.
    @Test func unterminatedQuoteIsAnError() throws {
        let cases: [(text: String, line: Int)] = [
            ("a A 10.0.0.1\ntxt IN TXT \"abc\n", 2),                       // at the end of the file
            ("txt IN TXT \"abc\nb A 10.0.0.2\nc A 10.0.0.3\n", 1),           // records after it
            ("txt IN TXT \"abc\"\nspf IN TXT \"v=spf1\" \"-all\n", 2),      // the second string of a record
            ("t2 IN TXT ( \"one\"\n   \"two )\nb A 10.0.0.2\n", 2),          // inside parentheses
            ("txt IN TXT \"abc", 1),                                          // no newline at all
        ]
        for c in cases {
            let error = try #require(parseError(c.text), "\(c.text) was accepted")
            #expect(error.path == "test.zone" && error.line == c.line, "\(error)")
            #expect(error.message.hasPrefix("unterminated quoted string (no closing \" on its line) in "), "\(error)")
            #expect(!error.message.contains("\n"), "the message stays on one line: \(error)")
        }
        // Closed quotes, with `;`, escaped quotes and a backslash before the closing quote, are fine.
        let good = try parse("t IN TXT \"a;b\" \"say \\\"hi\\\"\" \"end\\\\\"\nu IN TXT ( \"x\"\n  \"y\" ) ; \"comment\nv A 10.0.0.1\n")
        #expect(good.map(\.line) == [1, 2, 4])
    }

    @Test func errorDescriptionIsPathLineMessage() {
        let e = ZoneFileError(path: "zones/a.zone", line: 7, message: "bad TTL x")
        #expect(e.description == "zones/a.zone:7: bad TTL x")
    }
}
