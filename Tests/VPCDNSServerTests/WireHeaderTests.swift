import NIOCore
import Testing
@testable import VPCDNSServer

@Suite("Header reading and reply matching")
struct WireHeaderTests {
    @Test("question compared case-insensitively by name, exactly by type")
    func questions() {
        let q = TestDNS.query(id: 1, name: "WWW.Example.ORG", type: 65)
        #expect(WireHeader.sameQuestion(q, TestDNS.query(id: 2, name: "www.example.org", type: 65)) == true)
        // 65 (0x41) and 97 (0x61) differ only by the "case" bit: must not match.
        #expect(WireHeader.sameQuestion(q, TestDNS.query(id: 2, name: "www.example.org", type: 97)) == false)
        #expect(WireHeader.sameQuestion(q, TestDNS.query(id: 2, name: "www.example.net", type: 65)) == false)
        var short = TestDNS.query(id: 1, name: "www.example.org")
        short.moveWriterIndex(to: 20)
        #expect(WireHeader.sameQuestion(short, q) == nil)
    }

    @Test("reply verdicts")
    func verdicts() {
        let q = TestDNS.query(id: 0x1111, name: "www.example.org")
        let ok = TestDNS.echoReply(to: q)!
        #expect(UpstreamReplyVerdict.classify(ok, query: q) == .accept)
        #expect(UpstreamReplyVerdict.classify(TestDNS.echoReply(to: q, rcode: 3)!, query: q) == .accept)
        #expect(UpstreamReplyVerdict.classify(TestDNS.echoReply(to: q, rcode: 2)!, query: q) == .failed("rcode SERVFAIL"))
        #expect(UpstreamReplyVerdict.classify(TestDNS.echoReply(to: q, rcode: 5)!, query: q) == .failed("rcode REFUSED"))
        #expect(UpstreamReplyVerdict.classify(TestDNS.echoReply(to: q, tc: true)!, query: q) == .truncated)
        #expect(UpstreamReplyVerdict.classify(q, query: q) == .ignore, "QR clear")
        let other = TestDNS.echoReply(to: TestDNS.query(id: 0x1111, name: "other.example.org"))!
        #expect(UpstreamReplyVerdict.classify(other, query: q) == .ignore)
        let wrongID = TestDNS.echoReply(to: TestDNS.query(id: 0x1112, name: "www.example.org"))!
        #expect(UpstreamReplyVerdict.classify(wrongID, query: q) == .ignore)
    }
}
