import DNSWire
import Testing
@testable import VPCDNSCore

/// One row of the decision table: who asks what, and what the engine must decide.
struct Case: CustomTestStringConvertible, Sendable {
    enum Expect: Sendable, Equatable {
        /// rcode, AA, answer section as "TYPE rdata" strings (owner checked separately).
        case answer(RCode, aa: Bool, [String])
        /// Forwarded: to the defaults or to a rule id, with the question name sent and the chain length.
        case forward(UpstreamTargetsID, name: String, chain: Int)
        case refused
    }
    enum UpstreamTargetsID: Sendable, Equatable { case defaults, rule(String) }

    var rule: String
    var what: String
    var from = "127.0.0.1"
    var to = "127.0.0.1:1053"
    var name: String
    var type: RRType = .a
    var rrClass: RRClass = .in
    var expect: Expect
    var kind: DecisionKind
    var zone: String? = nil
    var zoneID: String? = nil
    var reason: String? = nil
    var via: Via? = nil
    var vpc: String? = nil
    var authority: String? = nil
    /// R18: health checks (ids) that are failing when the question is asked.
    var unhealthy: [String] = []
    /// R18: the `record_set` the decision must name.
    var recordSet: String? = nil

    var testDescription: String { "\(rule): \(what)" }
}

func present(_ rr: ResourceRecord) -> String {
    switch rr.type {
    case .a, .aaaa: return "\(rr.type) \(IPAddress(bytes: rr.rdata)!)"
    case .cname, .ns, .ptr: return "\(rr.type) \(rr.targetName!)"
    case .txt: return "TXT \(String(decoding: rr.rdata.dropFirst(), as: UTF8.self))"
    default: return "\(rr.type) (\(rr.rdata.count) bytes)"
    }
}

let resolver = Resolver(model: TestModel.model)

let cases: [Case] = [
    // V — which VPC is asking
    Case(rule: "V1", what: "a VPC's resolver address answers as that VPC whatever the source", from: "127.0.0.9", to: "127.0.20.2:1053",
         name: "primary.db.internal", expect: .answer(.noError, aa: true, ["A 10.1.9.9"]), kind: .privateHostedZone,
         zone: "db.internal", zoneID: "Z0DBZONE0000000000001", via: .resolverAddress, vpc: TestModel.db),
    Case(rule: "V1", what: "an inbound endpoint address answers as its VPC via the inbound endpoint", from: "192.0.2.10", to: "127.0.10.53:1053",
         name: "www.myservice.internal", expect: .answer(.noError, aa: true, ["A 10.0.5.5"]), kind: .privateHostedZone,
         zone: "myservice.internal", via: .inboundEndpoint, vpc: TestModel.app),
    Case(rule: "V2", what: "the source picks the VPC by longest prefix (clients)", from: "127.0.0.2",
         name: "primary.db.internal", expect: .answer(.noError, aa: true, ["A 10.1.9.9"]), kind: .privateHostedZone, via: .source, vpc: TestModel.db),
    Case(rule: "V2", what: "the source picks the VPC by longest prefix (cidrs)", from: "10.0.3.4",
         name: "www.myservice.internal", expect: .answer(.noError, aa: true, ["A 10.0.5.5"]), kind: .privateHostedZone, via: .source, vpc: TestModel.app),
    Case(rule: "V2", what: "an identical prefix shared by two VPCs on a shared listener is ambiguous", from: "10.9.1.1",
         name: "www.example.net", expect: .refused, kind: .refused, reason: "ambiguous-vpc", via: Via.none),
    Case(rule: "V2", what: "a shared prefix is unambiguous on a VPC's own resolver address", from: "10.9.1.1", to: "127.0.92.2:1053",
         name: "www.example.net", expect: .forward(.defaults, name: "www.example.net", chain: 0), kind: .upstream, via: .resolverAddress, vpc: TestModel.twin2),
    Case(rule: "V3", what: "a client that matches no VPC is refused", from: "192.0.2.1",
         name: "www.example.net", expect: .refused, kind: .refused, reason: "no-vpc-match", via: Via.none),
    Case(rule: "V4", what: "a VPC without DNS support gets REFUSED with the reason", from: "127.0.0.4",
         name: "www.example.net", expect: .refused, kind: .refused, reason: "enable_dns_support=false", via: .source, vpc: TestModel.nodns),

    // R1 — candidates and the most specific match
    Case(rule: "R4", what: "a FORWARD rule that wins sends the name to its own targets", name: "host.corp.example.com",
         expect: .forward(.rule("rslvr-rr-0000000000000c0a1"), name: "host.corp.example.com", chain: 0), kind: .forwardRule,
         zone: "corp.example.com", zoneID: "rslvr-rr-0000000000000c0a1"),
    Case(rule: "R1", what: "on an exact tie the FORWARD rule beats the zone", name: "x.tie.internal",
         expect: .forward(.rule("rslvr-rr-0000000000000c0a3"), name: "x.tie.internal", chain: 0), kind: .forwardRule, zone: "tie.internal"),
    Case(rule: "R1", what: "a SYSTEM rule sets the less specific FORWARD rule aside; the less specific zone then wins",
         name: "x.local.corp.example.com", expect: .answer(.noError, aa: true, ["A 10.0.7.1"]), kind: .privateHostedZone, zone: "example.com"),
    Case(rule: "R1", what: "the most specific zone wins over a less specific one (endpoint zone inside a SYSTEM rule's domain)",
         name: "ec2.us-west-2.amazonaws.com", expect: .answer(.noError, aa: true, ["A 10.0.1.10", "A 10.0.2.10"]), kind: .endpointPrivateDNS,
         zone: "ec2.us-west-2.amazonaws.com", zoneID: "vpce-0ec2a1b2c3d4e5f60"),
    Case(rule: "R1", what: "a SYSTEM rule with nothing below it sends the name to R9, logged with the rule",
         name: "dynamodb.us-west-2.amazonaws.com", expect: .forward(.defaults, name: "dynamodb.us-west-2.amazonaws.com", chain: 0),
         kind: .upstream, zone: "amazonaws.com", zoneID: "rslvr-rr-0000000000000c0a4"),

    // R2 — DNS hostnames off
    Case(rule: "R2", what: "PHZ names go upstream when hostnames are off", from: "127.0.0.3", name: "host.legacy.internal",
         expect: .forward(.defaults, name: "host.legacy.internal", chain: 0), kind: .upstream, reason: "enable_dns_hostnames=false", vpc: TestModel.legacy),
    Case(rule: "R2", what: "endpoint private DNS goes upstream when hostnames are off", from: "127.0.0.3", name: "ec2.us-west-2.amazonaws.com",
         expect: .forward(.defaults, name: "ec2.us-west-2.amazonaws.com", chain: 0), kind: .upstream, reason: "enable_dns_hostnames=false"),

    // R3 — answers from a zone
    Case(rule: "R3", what: "records of the asked type", name: "WWW.MyService.Internal", expect: .answer(.noError, aa: true, ["A 10.0.5.5"]),
         kind: .privateHostedZone, zone: "myservice.internal", zoneID: "Z0MYSERVICE000000001"),
    Case(rule: "R3", what: "a CNAME and its target, chased inside the zone", name: "to-www.myservice.internal",
         expect: .answer(.noError, aa: true, ["CNAME www.myservice.internal.", "A 10.0.5.5"]), kind: .privateHostedZone),
    Case(rule: "R3", what: "a wildcard synthesises under the asked name", name: "a.b.wild.myservice.internal",
         expect: .answer(.noError, aa: true, ["A 10.0.5.7"]), kind: .privateHostedZone),
    Case(rule: "R3", what: "a name with other types only is NODATA with the SOA, negative TTL min(TTL, MINIMUM)", name: "www.myservice.internal", type: .aaaa,
         expect: .answer(.noError, aa: true, []), kind: .privateHostedZone, authority: "SOA 300"),
    Case(rule: "R3", what: "a missing name is NXDOMAIN, never a fallback to upstream", name: "nope.myservice.internal",
         expect: .answer(.nxDomain, aa: true, []), kind: .privateHostedZone, authority: "SOA 300"),
    Case(rule: "R3", what: "an empty non-terminal is NODATA (RFC 8020)", name: "ent.myservice.internal",
         expect: .answer(.noError, aa: true, []), kind: .privateHostedZone, authority: "SOA 300"),
    Case(rule: "R3", what: "a zone without its own SOA uses AWS's private-zone SOA (TTL 900 = min(900, 86400))", name: "nope.tie.internal",
         expect: .forward(.rule("rslvr-rr-0000000000000c0a3"), name: "nope.tie.internal", chain: 0), kind: .forwardRule),
    Case(rule: "R3", what: "NXDOMAIN in a zone with the default SOA carries TTL 900", from: "127.0.0.2", name: "nope.db.internal",
         expect: .answer(.nxDomain, aa: true, []), kind: .privateHostedZone, authority: "SOA 900"),
    Case(rule: "R3", what: "the default NS placeholders are at the apex", from: "127.0.0.2", name: "db.internal", type: .ns,
         expect: .answer(.noError, aa: true, ["NS ns-1536.awsdns-00.co.uk.", "NS ns-0.awsdns-00.com.", "NS ns-1024.awsdns-00.org.", "NS ns-512.awsdns-00.net."]),
         kind: .privateHostedZone),

    // R5 — endpoint private DNS
    Case(rule: "R5", what: "one A per subnet with endpoint_dns_ttl", name: "ec2.us-west-2.amazonaws.com",
         expect: .answer(.noError, aa: true, ["A 10.0.1.10", "A 10.0.2.10"]), kind: .endpointPrivateDNS),
    Case(rule: "R5", what: "a name below a private DNS name with no wildcard is NXDOMAIN", name: "x.ec2.us-west-2.amazonaws.com",
         expect: .answer(.nxDomain, aa: true, []), kind: .endpointPrivateDNS),
    Case(rule: "R5", what: "a wildcard-only name answers below X", name: "abc123.execute-api.us-west-2.amazonaws.com",
         expect: .answer(.noError, aa: true, ["A 10.0.1.70"]), kind: .endpointPrivateDNS, zone: "execute-api.us-west-2.amazonaws.com"),
    Case(rule: "R5", what: "a wildcard-only name is NODATA at X itself", name: "execute-api.us-west-2.amazonaws.com",
         expect: .answer(.noError, aa: true, []), kind: .endpointPrivateDNS),
    Case(rule: "R5", what: "private DNS off: the name goes upstream with the reason", name: "sts.us-west-2.amazonaws.com",
         expect: .forward(.defaults, name: "sts.us-west-2.amazonaws.com", chain: 0), kind: .upstream, zone: "amazonaws.com",
         reason: "private_dns_enabled=false"),
    Case(rule: "R5", what: "an endpoint in another VPC does not answer here", from: "127.0.0.2", name: "ec2.us-west-2.amazonaws.com",
         expect: .forward(.defaults, name: "ec2.us-west-2.amazonaws.com", chain: 0), kind: .upstream),

    // R6 — catalog names
    Case(rule: "R6", what: "ecr.dkr's catalog name is the wildcard *.dkr.ecr.R", from: "127.0.0.2", name: "123456789012.dkr.ecr.us-west-2.amazonaws.com",
         expect: .answer(.noError, aa: true, ["A 10.1.1.10"]), kind: .endpointPrivateDNS, zone: "dkr.ecr.us-west-2.amazonaws.com"),

    // R7 — S3 inbound-only
    Case(rule: "R7", what: "inbound-only S3 private DNS answers inbound-endpoint queries", from: "192.0.2.10", to: "127.0.10.53:1053",
         name: "bucket.s3.us-west-2.amazonaws.com", expect: .answer(.noError, aa: true, ["A 10.0.1.30"]), kind: .endpointPrivateDNS, via: .inboundEndpoint),
    Case(rule: "R7", what: "in-VPC clients of inbound-only S3 get the public answer", name: "s3.us-west-2.amazonaws.com",
         expect: .forward(.defaults, name: "s3.us-west-2.amazonaws.com", chain: 0), kind: .upstream, reason: "inbound-only"),
    Case(rule: "R7", what: "the VPC's own resolver address is in-VPC too", from: "127.0.0.9", to: "127.0.10.2:1053", name: "s3.us-west-2.amazonaws.com",
         expect: .forward(.defaults, name: "s3.us-west-2.amazonaws.com", chain: 0), kind: .upstream, reason: "inbound-only"),

    // R8 — record IP types
    Case(rule: "R8", what: "dualstack answers AAAA too", name: "kms.us-west-2.amazonaws.com", type: .aaaa,
         expect: .answer(.noError, aa: true, ["AAAA 2600:1f14::80"]), kind: .endpointPrivateDNS),
    Case(rule: "R8", what: "ipv4: AAAA is NODATA, not NXDOMAIN", name: "ec2.us-west-2.amazonaws.com", type: .aaaa,
         expect: .answer(.noError, aa: true, []), kind: .endpointPrivateDNS, authority: "SOA 900"),
    Case(rule: "R8", what: "service-defined: private name is A only", name: "logs.us-west-2.amazonaws.com", type: .aaaa,
         expect: .answer(.noError, aa: true, []), kind: .endpointPrivateDNS),
    Case(rule: "R8", what: "service-defined: the endpoint's own name has AAAA", name: "vpce-05d0a1b2c3d4e5f69-abcd1234.logs.us-west-2.vpce.amazonaws.com", type: .aaaa,
         expect: .answer(.noError, aa: true, ["AAAA 2600:1f14::90"]), kind: .endpointDNSName, zoneID: "vpce-05d0a1b2c3d4e5f69"),

    // R9 — everything else goes upstream
    Case(rule: "R9", what: "a public name is forwarded to the configured upstreams", name: "www.example.net",
         expect: .forward(.defaults, name: "www.example.net", chain: 0), kind: .upstream),

    // R10 — endpoint-specific names, for everyone
    Case(rule: "R10", what: "the regional name answers all subnets, from another VPC too", from: "127.0.0.2",
         name: "vpce-0ec2a1b2c3d4e5f60-abcd1234.ec2.us-west-2.vpce.amazonaws.com",
         expect: .answer(.noError, aa: true, ["A 10.0.1.10", "A 10.0.2.10"]), kind: .endpointDNSName, zoneID: "vpce-0ec2a1b2c3d4e5f60"),
    Case(rule: "R10", what: "a zonal name answers its subnet only", from: "127.0.0.3",
         name: "vpce-0ec2a1b2c3d4e5f60-abcd1234-us-west-2b.ec2.us-west-2.vpce.amazonaws.com",
         expect: .answer(.noError, aa: true, ["A 10.0.2.10"]), kind: .endpointDNSName),
    Case(rule: "R10", what: "names below an S3 endpoint name get its addresses", name: "my-bucket.bucket.vpce-05a3a1b2c3d4e5f63-abcd1234.s3.us-west-2.vpce.amazonaws.com",
         expect: .answer(.noError, aa: true, ["A 10.0.1.30"]), kind: .endpointDNSName),
    Case(rule: "R10", what: "names below another endpoint name are NXDOMAIN", name: "x.vpce-0ec2a1b2c3d4e5f60-abcd1234.ec2.us-west-2.vpce.amazonaws.com",
         expect: .answer(.nxDomain, aa: true, []), kind: .endpointDNSName),
    Case(rule: "R10", what: "unknown vpce names go upstream", name: "vpce-0123-zzzz.ec2.us-west-2.vpce.amazonaws.com",
         expect: .forward(.defaults, name: "vpce-0123-zzzz.ec2.us-west-2.vpce.amazonaws.com", chain: 0), kind: .upstream),
    Case(rule: "R10", what: "a custom service endpoint's name uses the service id", name: "vpce-0db5a1b2c3d4e5f62-abcd1234.vpce-svc-0d8b5e7a1c2f3a4b5.us-west-2.vpce.amazonaws.com",
         expect: .answer(.noError, aa: true, ["A 10.0.1.20"]), kind: .endpointDNSName),

    // R11 — custom service private DNS names
    Case(rule: "R11", what: "a verified name answers CNAME to the regional name plus its A records", name: "db.bank.example.com",
         expect: .answer(.noError, aa: true, ["CNAME vpce-0db5a1b2c3d4e5f62-abcd1234.vpce-svc-0d8b5e7a1c2f3a4b5.us-west-2.vpce.amazonaws.com.", "A 10.0.1.20"]),
         kind: .servicePrivateDNS, zone: "db.bank.example.com", zoneID: "vpce-svc-0d8b5e7a1c2f3a4b5"),
    Case(rule: "R11", what: "alias_style flatten answers A records directly", name: "api.saas.example.net",
         expect: .answer(.noError, aa: true, ["A 10.0.1.40"]), kind: .servicePrivateDNS),
    Case(rule: "R11", what: "an unverified name is not served", name: "pending.example.net",
         expect: .forward(.defaults, name: "pending.example.net", chain: 0), kind: .upstream, reason: "not-verified"),
    Case(rule: "R11", what: "another VPC does not see the service name", from: "127.0.0.2", name: "db.bank.example.com",
         expect: .forward(.defaults, name: "db.bank.example.com", chain: 0), kind: .upstream),

    // R12 — gateway endpoints change nothing
    Case(rule: "R12", what: "an S3 gateway endpoint adds no private name (only the inbound-only interface one exists)", from: "127.0.0.1",
         name: "s3-control.us-west-2.amazonaws.com", expect: .forward(.defaults, name: "s3-control.us-west-2.amazonaws.com", chain: 0),
         kind: .upstream, reason: "inbound-only"),

    // R13 — alias records
    Case(rule: "R13", what: "an alias to an endpoint answers its addresses, no CNAME", name: "api.myservice.internal",
         expect: .answer(.noError, aa: true, ["A 10.0.1.20"]), kind: .privateHostedZone),
    Case(rule: "R13", what: "an apex alias to another record of the zone", name: "myservice.internal",
         expect: .answer(.noError, aa: true, ["A 10.0.5.5"]), kind: .privateHostedZone),

    // R14 — isolation
    Case(rule: "R14", what: "another VPC never sees a PHZ it is not associated with", from: "127.0.0.2", name: "www.myservice.internal",
         expect: .forward(.defaults, name: "www.myservice.internal", chain: 0), kind: .upstream),
    Case(rule: "R14", what: "an unmatched client never sees private data", from: "203.0.113.9", name: "www.myservice.internal",
         expect: .refused, kind: .refused, reason: "no-vpc-match"),

    // R15 — CNAME chains
    Case(rule: "R15", what: "a private CNAME into an endpoint zone is completed locally", name: "to-ec2.myservice.internal",
         expect: .answer(.noError, aa: true, ["CNAME ec2.us-west-2.amazonaws.com.", "A 10.0.1.10", "A 10.0.2.10"]), kind: .privateHostedZone),
    Case(rule: "R15", what: "a private CNAME that points outside becomes a hand-off upstream", name: "to-public.myservice.internal",
         expect: .forward(.defaults, name: "www.example.net", chain: 1), kind: .privateHostedZone, zone: "myservice.internal"),
    Case(rule: "R15", what: "a CNAME to a missing name is NXDOMAIN with the chain", name: "to-missing.myservice.internal",
         expect: .answer(.nxDomain, aa: true, ["CNAME missing.myservice.internal."]), kind: .privateHostedZone),
    Case(rule: "R15", what: "a loop is SERVFAIL with an empty answer", name: "loop1.myservice.internal",
         expect: .answer(.servFail, aa: false, []), kind: .privateHostedZone, reason: "cname-loop"),
    Case(rule: "R15", what: "more than 8 CNAMEs is SERVFAIL", name: "c0.myservice.internal",
         expect: .answer(.servFail, aa: false, []), kind: .privateHostedZone, reason: "cname-chain"),
    Case(rule: "R15", what: "8 CNAMEs is still fine", name: "c1.myservice.internal",
         expect: .answer(.noError, aa: true, (2...9).map { "CNAME c\($0).myservice.internal." } + ["A 10.0.5.9"]), kind: .privateHostedZone),

    // P4 policy decided after V
    Case(rule: "P4", what: "AXFR is refused as a bad request", name: "myservice.internal", type: .axfr,
         expect: .refused, kind: .badRequest, reason: "bad-packet:transfer", vpc: TestModel.app),
    Case(rule: "P4", what: "a class other than IN is refused", name: "www.myservice.internal", rrClass: .ch,
         expect: .refused, kind: .badRequest, reason: "bad-packet:class"),
    Case(rule: "P4", what: "ANY gets a minimal answer (RFC 8482)", name: "www.myservice.internal", type: .any,
         expect: .answer(.noError, aa: true, ["A 10.0.5.5"]), kind: .privateHostedZone),

    // R18 — routing policies (health checks failing as listed; a check not run counts as healthy)
    Case(rule: "R18", what: "weighted: the only set with weight > 0 while it is healthy", name: "w.routed.internal",
         expect: .answer(.noError, aa: true, ["A 10.0.8.1"]), kind: .privateHostedZone, recordSet: "blue"),
    Case(rule: "R18", what: "weighted: a weight-0 set is served when every weighted set is unhealthy", name: "w.routed.internal",
         expect: .answer(.noError, aa: true, ["A 10.0.8.2"]), kind: .privateHostedZone, unhealthy: ["hc-blue"], recordSet: "green"),
    Case(rule: "R18", what: "weighted: all sets unhealthy are all considered (weights 0: equal chance, one set)", name: "zero.routed.internal",
         expect: .answer(.noError, aa: true, ["A 10.0.8.6"]), kind: .privateHostedZone, unhealthy: ["hc-blue"], recordSet: "two"),
    Case(rule: "R18", what: "failover: the PRIMARY while it is healthy", name: "f.routed.internal",
         expect: .answer(.noError, aa: true, ["A 10.0.8.11"]), kind: .privateHostedZone, recordSet: "primary"),
    Case(rule: "R18", what: "failover: the SECONDARY when the PRIMARY is unhealthy, logged primary-unhealthy", name: "f.routed.internal",
         expect: .answer(.noError, aa: true, ["A 10.0.8.12"]), kind: .privateHostedZone, reason: "primary-unhealthy",
         unhealthy: ["hc-primary"], recordSet: "secondary"),
    Case(rule: "R18", what: "failover: all sets unhealthy still serves the SECONDARY", name: "f.routed.internal",
         expect: .answer(.noError, aa: true, ["A 10.0.8.12"]), kind: .privateHostedZone, reason: "primary-unhealthy",
         unhealthy: ["hc-primary", "hc-secondary"], recordSet: "secondary"),
    Case(rule: "R18", what: "multivalue: an unhealthy set is left out", name: "m.routed.internal",
         expect: .answer(.noError, aa: true, ["A 10.0.8.22"]), kind: .privateHostedZone, unhealthy: ["hc-mv"], recordSet: "m2"),
    Case(rule: "R18", what: "a routed CNAME group chooses the chain's next link", name: "cn.routed.internal",
         expect: .answer(.noError, aa: true, ["CNAME plain.routed.internal.", "A 10.0.8.99"]), kind: .privateHostedZone,
         reason: "primary-unhealthy", unhealthy: ["hc-blue"], recordSet: "to-plain"),
    Case(rule: "R18", what: "a routed name has no data of another type (NODATA, not NXDOMAIN)", name: "f.routed.internal", type: .aaaa,
         expect: .answer(.noError, aa: true, []), kind: .privateHostedZone),
]

/// R18 health for a decision-table row: the listed checks fail, every other one is healthy.
struct TableHealth: HealthSource {
    let failing: Set<Int>
    init(_ ids: [String], model: Model) {
        failing = Set(ids.map { id in model.healthChecks.firstIndex { $0.id == id }! })
    }
    func isHealthy(_ check: Int) -> Bool { !failing.contains(check) }
}

@Suite("Decision table: every V and R rule")
struct DecisionTableTests {
    @Test(arguments: cases)
    func decide(_ c: Case) throws {
        let d = resolver.resolve(Question(name: try DNSName(c.name), type: c.type, rrClass: c.rrClass),
                                 client: IPAddress(c.from)!, listener: SocketEndpoint(c.to)!,
                                 routing: RoutingInput(health: TableHealth(c.unhealthy, model: resolver.model), seed: 0))
        #expect(d.routing?.recordSet == c.recordSet)
        #expect(d.kind == c.kind)
        if let z = c.zone { #expect(d.zone?.text == z) }
        if let id = c.zoneID { #expect(d.zoneID == id) }
        #expect(d.reason?.description == c.reason)
        if let via = c.via { #expect(d.view.via == via) }
        if let vpc = c.vpc { #expect(d.view.vpcID == vpc) }
        switch (c.expect, d.outcome) {
        case (.answer(let rcode, let aa, let rrs), .answer(let a)):
            #expect(a.rcode == rcode)
            #expect(a.authoritative == aa)
            #expect(a.answer.map(present) == rrs)
            if let auth = c.authority {
                #expect(a.authority.map { "\($0.type) \($0.ttl)" } == [auth])
            }
            // The first answer record is owned by the asked name (alias, wildcard, apex).
            if let first = a.answer.first { #expect(first.name == (try DNSName(c.name))) }
        case (.forward(let targets, let name, let chain), .forward(let f)):
            switch (targets, f.targets) {
            case (.defaults, .defaults): break
            case (.rule(let id), .rule(let got, _)): #expect(id == got)
            default: Issue.record("forwarded to \(f.targets), expected \(targets)")
            }
            #expect(f.question.name == (try DNSName(name)))
            #expect(f.chain.count == chain)
        case (.refused, .refused):
            break
        default:
            Issue.record("outcome \(d.outcome), expected \(c.expect)")
        }
    }

    @Test("every V and R rule has at least one case")
    func coverage() {
        let rules = Set(cases.map(\.rule))
        for r in ["V1", "V2", "V3", "V4"] + (1...15).map({ "R\($0)" }) + ["R18"] {
            #expect(rules.contains(r), "no case for \(r)")
        }
    }
}
