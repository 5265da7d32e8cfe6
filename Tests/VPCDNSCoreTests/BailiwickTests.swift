import DNSWire
import Testing
@testable import VPCDNSCore

/// P11: what a FORWARD rule's targets may speak for, and where a CNAME chain that leaves the
/// rule's domain goes next (R15).
@Suite("Bailiwick of forwarding targets (P11)")
struct BailiwickTests {
    let appView = resolver.selectView(client: IPAddress("127.0.0.1")!, listener: TestModel.listen)

    func forward(_ name: String) throws -> Forward {
        let d = resolver.resolve(Question(name: try DNSName(name), type: .a), view: appView)
        guard case .forward(let f) = d.outcome else { throw BailiwickTestError("\(name) was not forwarded: \(d.outcome)") }
        return f
    }

    @Test("A FORWARD rule's forward carries the rule's domain; the default upstreams' none")
    func bailiwickOfForwards() throws {
        #expect(try forward("host.corp.example.com").bailiwick == TestModel.n("corp.example.com"))
        #expect(try forward("www.example.net").bailiwick == nil)
        // A SYSTEM rule sends the name to the defaults: trusted for any name.
        #expect(try forward("dynamodb.us-west-2.amazonaws.com").bailiwick == nil)
        // A local CNAME into a rule's domain: the rule's bailiwick applies to the upstream leg.
        let viaChain = Resolver(model: modelWithCNAME("to-corp.myservice.internal", "host.corp.example.com"))
        let d = viaChain.resolve(Question(name: TestModel.n("to-corp.myservice.internal"), type: .a), view: appView)
        guard case .forward(let f) = d.outcome else { Issue.record("\(d.outcome)"); return }
        #expect(f.bailiwick == TestModel.n("corp.example.com") && f.chain.count == 1)
    }

    @Test("Only records at or below the rule's domain are taken from its targets")
    func trustedRecords() throws {
        let f = try forward("x.corp.example.com")
        let records = [
            TestModel.cname("x.corp.example.com", "y.rand.test"),
            TestModel.a("y.rand.test", "192.0.2.66"),
            TestModel.a("corp.example.com", "192.0.2.1"),
            TestModel.a("evilcorp.example.com", "192.0.2.2"),
            TestModel.a("a.b.corp.example.com", "192.0.2.3"),
        ]
        #expect(f.trusted(records) == [records[0], records[2], records[4]])
        // From the default upstreams everything is taken.
        #expect(try forward("www.example.net").trusted(records) == records)
    }

    @Test("A chain leaving the rule's domain resumes where the VPC sends the target: the defaults, another rule, or a local zone")
    func resumeChain() throws {
        let f = try forward("x.tie.internal")
        let link = TestModel.cname("x.tie.internal", "www.example.net")
        switch resolver.resumeChain(after: f, upstreamChain: [link], target: TestModel.n("www.example.net"), view: appView) {
        case .forward(let next):
            #expect(next.targets == .defaults && next.bailiwick == nil)
            #expect(next.question.name == TestModel.n("www.example.net") && next.chain == [link])
        case .answer(let a, _): Issue.record("answered locally: \(a)")
        }
        let toCorp = TestModel.cname("x.tie.internal", "host.corp.example.com")
        switch resolver.resumeChain(after: f, upstreamChain: [toCorp], target: TestModel.n("host.corp.example.com"), view: appView) {
        case .forward(let next):
            guard case .rule(let id, _) = next.targets else { Issue.record("\(next.targets)"); return }
            #expect(id == "rslvr-rr-0000000000000c0a1" && next.bailiwick == TestModel.n("corp.example.com"))
        case .answer(let a, _): Issue.record("answered locally: \(a)")
        }
        let toPrivate = TestModel.cname("x.tie.internal", "www.myservice.internal")
        switch resolver.resumeChain(after: f, upstreamChain: [toPrivate], target: TestModel.n("www.myservice.internal"), view: appView) {
        case .answer(let a, let reason):
            #expect(a.rcode == .noError && !a.authoritative && reason == nil)
            #expect(a.answer.map(present) == ["CNAME www.myservice.internal.", "A 10.0.5.5"])
        case .forward(let next): Issue.record("forwarded: \(next)")
        }
        // Back to the name asked: a loop.
        let back = TestModel.cname("x.tie.internal", "x.tie.internal")
        switch resolver.resumeChain(after: f, upstreamChain: [back], target: TestModel.n("x.tie.internal"), view: appView) {
        case .answer(let a, let reason): #expect(a.rcode == .servFail && reason == .cnameLoop)
        case .forward(let next): Issue.record("forwarded: \(next)")
        }
    }

    @Test("explain says which names a rule's targets are trusted for, and why an allowed_sources refusal happened")
    func explained() throws {
        let client = IPAddress("127.0.0.1")!
        let d = resolver.resolve(Question(name: TestModel.n("host.corp.example.com"), type: .a), client: client, listener: TestModel.listen, explain: true)
        let text = Explanation(decision: d, model: resolver.model, client: client, listener: TestModel.listen).text(format: present)
        #expect(text.contains("only records at or below corp.example.com are taken from those targets"), "\(text)")
        let guarded = SocketEndpoint("127.0.91.2:1053")!
        let r = resolver.resolve(Question(name: TestModel.n("www.example.net"), type: .a), client: client, listener: guarded, explain: true)
        #expect(r.view.sourceNotAllowedBy == TestModel.twin1)
        let findings = Explanation(decision: r, model: resolver.model, client: client, listener: guarded).findings
        #expect(findings.contains { $0.contains("allowed_sources do not include this client: REFUSED (V1") }, "\(findings)")
    }

    private func modelWithCNAME(_ name: String, _ target: String) -> Model {
        var m = TestModel.model
        let i = m.hostedZones.firstIndex { $0.name == TestModel.n("myservice.internal") }!
        m.hostedZones[i].records.append(TestModel.cname(name, target))
        return m
    }
}

struct BailiwickTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
