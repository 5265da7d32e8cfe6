import DNSWire
import Testing
@testable import VPCDNSCore

/// `explain` must make the classic mistakes obvious, in the text and in the JSON.
@Suite("explain: the classic mistakes")
struct ExplainTests {
    let resolver = Resolver(model: TestModel.model)

    func explain(_ name: String, _ type: RRType = .a, from: String = "127.0.0.1", to: String = "127.0.0.1:1053") throws -> (String, String) {
        let client = IPAddress(from)!, listener = SocketEndpoint(to)!
        let d = resolver.resolve(Question(name: try DNSName(name), type: type), client: client, listener: listener, explain: true)
        let e = Explanation(decision: d, model: resolver.model, client: client, listener: listener)
        return (e.text(format: { present($0) }), e.json(format: { present($0) }, rdata: { present($0) }).rendered())
    }

    @Test("hostnames off")
    func hostnamesOff() throws {
        let (text, json) = try explain("ec2.us-west-2.amazonaws.com", from: "127.0.0.3")
        #expect(text.contains("enable_dns_hostnames=false (R2)  <-- not met"))
        #expect(text.contains("inactive: enable_dns_hostnames=false"))
        #expect(text.contains("forwarded to upstream 127.0.0.1:1054 (R9)"))
        #expect(json.contains(#""reason":"enable_dns_hostnames=false""#))
        #expect(json.contains(#""decision":"upstream""#))
    }

    @Test("R16/R17: a reverse name outside the VPC is NXDOMAIN locally, and says so; hostnames off says why EC2 names go upstream")
    func autodefinedNames() throws {
        let (text, json) = try explain("3.2.1.10.in-addr.arpa", .ptr)
        #expect(text.contains("10.in-addr.arpa  reverse-dns autodefined  [WINS]"), "\(text)")
        #expect(text.contains("no address of the VPC's CIDRs (10.0.0.0/16, 100.64.0.0/24) or instance has that name: NXDOMAIN, answered locally, never forwarded (R17)"), "\(text)")
        #expect(json.contains(#""decision":"reverse-dns""#))
        let (off, _) = try explain("ip-10-2-0-5.us-west-2.compute.internal", from: "127.0.0.3")
        #expect(off.contains("us-west-2.compute.internal  ec2-instance-name autodefined  [inactive: enable_dns_hostnames=false]"), "\(off)")
        #expect(off.contains("EC2 names and autodefined reverse zones (R16, R17) also exist only with both DNS attributes true"), "\(off)")
        let (missing, _) = try explain("ip-8-8-8-8.us-west-2.compute.internal")
        #expect(missing.contains("neither the IP name of an RFC 1918 or VPC address"), "\(missing)")
    }

    @Test("private DNS off")
    func privateDNSOff() throws {
        let (text, json) = try explain("sts.us-west-2.amazonaws.com")
        #expect(text.contains("inactive: private_dns_enabled=false"))
        #expect(text.contains("private_dns_enabled is false"))
        #expect(json.contains(#""inactive_reason":"private_dns_enabled=false""#))
    }

    @Test("endpoint in another VPC")
    func endpointElsewhere() throws {
        let (text, json) = try explain("ec2.us-west-2.amazonaws.com", from: "127.0.0.2")
        #expect(text.contains("private DNS of endpoint vpce-0ec2a1b2c3d4e5f60 would match ec2.us-west-2.amazonaws.com, but it is associated with vpc-0a11ce0000000001a"))
        #expect(json.contains("associated with vpc-0a11ce0000000001a"))
        #expect(json.contains(#""decision":"upstream""#))
    }

    @Test("PHZ shadowing a public name")
    func shadowing() throws {
        // example.com is a PHZ of the app VPC: www.example.com/AAAA and mail.example.com never reach public DNS.
        let (text, json) = try explain("mail.example.com")
        #expect(text.contains("does not exist in private hosted zone example.com"))
        #expect(text.contains("public DNS is never consulted"))
        #expect(json.contains(#""rcode":"NXDOMAIN""#))
    }

    @Test("inbound-only S3")
    func inboundOnly() throws {
        let (text, json) = try explain("s3.us-west-2.amazonaws.com")
        #expect(text.contains("inactive: inbound-only"))
        #expect(text.contains("only queries through an inbound endpoint get the private addresses (R7)"))
        #expect(json.contains(#""reason":"inbound-only""#))
        let (inbound, _) = try explain("s3.us-west-2.amazonaws.com", from: "192.0.2.1", to: "127.0.10.53:1053")
        #expect(inbound.contains("inbound endpoint rslvr-in-0123456789abcdef0 (V1)"))
        #expect(inbound.contains("A 10.0.1.30"))
    }

    @Test("unverified service name")
    func unverified() throws {
        let (text, json) = try explain("pending.example.net")
        #expect(text.contains("inactive: not-verified"))
        #expect(text.contains("not verified"))
        #expect(json.contains(#""reason":"not-verified""#))
    }

    @Test("a FORWARD rule overriding a zone")
    func forwardOverridesZone() throws {
        let (text, json) = try explain("x.tie.internal")
        #expect(text.contains("* tie.internal  forward-rule rslvr-rr-0000000000000c0a3  [WINS]"))
        #expect(text.contains("wins over private-hosted-zone tie.internal"))
        #expect(json.contains(#""decision":"forward-rule""#))
        #expect(json.contains(#""rule":"rslvr-rr-0000000000000c0a3""#))
    }

    @Test("a plain public name says why no private candidate applied")
    func publicName() throws {
        let (text, _) = try explain("www.example.net")
        #expect(text.contains("no private hosted zone, endpoint private DNS name or resolver rule"))
    }
}

@Suite("R15 upstream half")
struct ContinueChainTests {
    @Test("an upstream CNAME into a private zone of the asking VPC is completed from that zone")
    func upstreamIntoPrivate() throws {
        let r = Resolver(model: TestModel.model)
        let q = Question(name: try DNSName("www.example.net"), type: .a)
        let d = r.resolve(q, client: IPAddress("127.0.0.1")!, listener: TestModel.listen)
        guard case .forward(let f) = d.outcome else { Issue.record("expected forward"); return }
        let upstream = [TestModel.cname("www.example.net", "db.bank.example.com")]
        let a = try #require(r.continueChain(after: f, upstreamChain: upstream, target: try DNSName("db.bank.example.com"), view: d.view))
        #expect(a.answer.map(present) == ["CNAME db.bank.example.com.", "CNAME vpce-0db5a1b2c3d4e5f62-abcd1234.vpce-svc-0d8b5e7a1c2f3a4b5.us-west-2.vpce.amazonaws.com.", "A 10.0.1.20"])
        #expect(a.authoritative == false)
        // The database VPC does not see the service name: the upstream answer stands.
        let d2 = r.resolve(q, client: IPAddress("127.0.0.2")!, listener: TestModel.listen)
        guard case .forward(let f2) = d2.outcome else { Issue.record("expected forward"); return }
        #expect(r.continueChain(after: f2, upstreamChain: upstream, target: try DNSName("db.bank.example.com"), view: d2.view) == nil)
    }
}
