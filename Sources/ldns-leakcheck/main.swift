// Loads good and broken zone files and record values many times so that LeakSanitizer
// (scripts/leak-check.sh builds this with --sanitize=address) sees every LDNSKit path that
// allocates in libldns: records parsed and freed, the origin / previous-owner slots replaced
// by $ORIGIN and explicit owners, failures in the middle of a zone (where ldns's own zone
// reader leaks), rdata parse errors and presentation.
import DNSWire
import LDNSKit

#if canImport(Glibc)
import Glibc
#endif

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200 : 200
let origin = try! DNSName("example.com")

let good: [String] = [
    """
    ; full zone
    $TTL 300
    @   IN SOA ns1 hostmaster ( 2024010101 ; serial
            7200 900 1209600 86400 )
        IN NS ns1
    www 60 IN A 10.0.0.1
        IN AAAA 2001:db8::1
    mail IN MX 10 mx.example.com.
    *.wild IN A 10.9.9.9
    txt IN TXT "hello world" "x;y"
    $ORIGIN sub.example.com.
    a IN A 10.1.1.1
    $ORIGIN deeper
    WWW.Upper IN CNAME Target
    srv IN SRV 0 5 5060 sip
    caa IN CAA 0 issue "amazon.com"
    x TYPE65000 \\# 2 abcd
    """,
    "a A 10.0.0.1\nb 20 A 10.0.0.2\n",
    "",
]

let broken: [String] = [
    "a A 10.0.0.1\nb A 10.0.0.2\nc A 10.0.0.999\n",           // rdata error after two records
    "$ORIGIN sub.example.com.\na A 10.0.0.1\n$ORIGIN bad..x.\n", // $ORIGIN error after a replacement
    "a A 10.0.0.1\nb 3OO A 10.0.0.2\n",                         // our TTL check, record parsed by ldns
    "a A 10.0.0.1\nb IN BOGUS x\n",
    "a A 10.0.0.1\n$INCLUDE x.zone\n",
    "a A 10.0.0.1\nwww.other.org. A 10.0.0.2\n",
    "@ IN SOA ns1 host (\n 1 2 3 4\n",                           // unterminated parenthesis
    "a A 10.0.0.1 10.0.0.2\n",
    "a..b A 10.0.0.1\n",
    "$TTL abc\n",
    "a CH A 10.0.0.1\n",
]

let values: [(RRType, String)] = [
    (.a, "10.0.0.1"), (.aaaa, "2001:db8::1"), (.mx, "10 mail"), (.txt, "\"v=spf1 -all\""),
    (.srv, "0 5 5060 sip.example.com."), (.caa, "0 issue \"amazon.com\""), (.cname, "www"),
    (.a, "10.0.0.999"), (.mx, "mail"), (.a, "1 2"), (.aaaa, "10.0.0.1"), (.a, ""),
]

let dir = "/tmp/ldns-leakcheck-\(getpid())"
mkdir(dir, 0o700)
let goodPath = "\(dir)/good.zone", badPath = "\(dir)/bad.zone"
func write(_ path: String, _ text: String) {
    let f = fopen(path, "w")!
    fputs(text, f)
    fclose(f)
}
write(goodPath, good[0])
write(badPath, broken[0])

var records = 0, errors = 0, presented = 0
for _ in 0..<iterations {
    for text in good {
        let r = try! ZoneFile.parse(text: text, origin: origin, path: "good")
        records += r.count
        for rec in r {
            presented += RecordText.presentation(rec.record).count > 0 ? 1 : 0
            _ = RecordText.rdataPresentation(rec.record)
        }
    }
    for text in broken {
        do { _ = try ZoneFile.parse(text: text, origin: origin, path: "broken") } catch { errors += 1 }
    }
    records += (try! ZoneFile.load(path: goodPath, origin: origin)).count
    for path in [badPath, "\(dir)/missing.zone", dir] {
        do { _ = try ZoneFile.load(path: path, origin: origin) } catch { errors += 1 }
    }
    for (type, text) in values {
        do { _ = try RecordText.rdata(type: type, text: text, origin: origin) } catch { errors += 1 }
    }
    _ = RecordText.presentation(ResourceRecord(name: origin, type: .a, ttl: 1, rdata: [1, 2, 3]))
}
unlink(goodPath); unlink(badPath); rmdir(dir)
print("ldns-leakcheck: \(iterations) iterations; \(records) records parsed, \(errors) errors thrown, \(presented) records presented")
