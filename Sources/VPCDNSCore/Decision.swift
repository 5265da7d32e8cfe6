import DNSWire

/// One question as the engine sees it (the name already lower-cased by DNSName).
public struct Question: Hashable, Sendable, CustomStringConvertible {
    public var name: DNSName
    public var type: RRType
    public var rrClass: RRClass
    public init(name: DNSName, type: RRType, rrClass: RRClass = .in) {
        self.name = name
        self.type = type
        self.rrClass = rrClass
    }
    public var description: String { "\(name) \(type) \(rrClass)" }
}

/// How the asking VPC was chosen (V1–V3); the query log's `vpcdns.via`.
public enum Via: String, Sendable {
    case source
    case resolverAddress = "resolver_address"
    case inboundEndpoint = "inbound_endpoint"
    case defaultVPC = "default_vpc"
    case none
}

/// The query log's `vpcdns.decision`: what kind of data answered (or would have).
public enum DecisionKind: String, Sendable, CaseIterable {
    case privateHostedZone = "private-hosted-zone"
    case endpointPrivateDNS = "endpoint-private-dns"
    case endpointDNSName = "endpoint-dns-name"
    case servicePrivateDNS = "service-private-dns"
    case forwardRule = "forward-rule"
    case upstream
    case refused
    case badRequest = "bad-request"
}

/// The query log's `vpcdns.reason`: why the answer is not what one might expect.
public enum Reason: Hashable, Sendable, CustomStringConvertible {
    case dnsSupportOff, hostnamesOff, privateDNSOff, inboundOnly, notVerified
    case noVPCMatch, ambiguousVPC
    case upstreamTimeout, upstreamError
    case cnameLoop, cnameChain
    /// O6: the query came back to us through an upstream that forwards to us, or every
    /// target of the query is known to do so.
    case forwardingLoop
    /// R18: a failover group's PRIMARY was unhealthy and not served.
    case primaryUnhealthy
    case badPacket(BadQueryKind)

    public var description: String {
        switch self {
        case .dnsSupportOff: "enable_dns_support=false"
        case .hostnamesOff: "enable_dns_hostnames=false"
        case .privateDNSOff: "private_dns_enabled=false"
        case .inboundOnly: "inbound-only"
        case .notVerified: "not-verified"
        case .noVPCMatch: "no-vpc-match"
        case .ambiguousVPC: "ambiguous-vpc"
        case .upstreamTimeout: "upstream-timeout"
        case .upstreamError: "upstream-error"
        case .cnameLoop: "cname-loop"
        case .cnameChain: "cname-chain"
        case .forwardingLoop: "forwarding-loop"
        case .primaryUnhealthy: "primary-unhealthy"
        case .badPacket(let k): k.logReason
        }
    }
}

/// Where the upstream work goes: the configured `upstreams` (R9) or a rule's targets (R4).
/// It is part of the upstream cache key (P5).
public enum UpstreamTargets: Hashable, Sendable {
    case defaults
    case rule(id: String, targets: [SocketEndpoint])
}

/// The VPC chosen for a query, and how (V1–V4).
public struct ViewChoice: Sendable {
    /// Index into `Model.vpcs`; nil when no VPC matched or the match was ambiguous.
    public var vpcIndex: Int?
    public var vpcID: String?
    public var region: String?
    public var via: Via
    /// `srcids.resolver_endpoint` when the query came through an inbound endpoint.
    public var inboundEndpointID: String?
    /// The prefix that matched the source (V2), when that is how the VPC was chosen.
    public var matchedPrefix: IPPrefix?
    /// Set when V refuses (no-vpc-match, ambiguous-vpc, enable_dns_support=false).
    public var refusal: Reason?
    /// For `explain`: the other VPCs that claim the same prefix (V2 ambiguity).
    public var ambiguousWith: [String] = []
}

/// A private candidate (R1) considered for the name: for `explain` and the query log.
public struct CandidateTrace: Sendable {
    public enum Kind: String, Sendable {
        case privateHostedZone = "private-hosted-zone"
        case endpointPrivateDNS = "endpoint-private-dns"
        case servicePrivateDNS = "service-private-dns"
        case forwardRule = "forward-rule"
        case systemRule = "system-rule"
    }
    public var domain: DNSName
    public var kind: Kind
    /// PHZ id, endpoint id, service id or rule id.
    public var id: String
    /// nil when active; otherwise why it cannot answer this query (R2, R5, R7, R11).
    public var inactiveReason: Reason?
    public var won: Bool
    /// A short human note (`set aside by SYSTEM rule rslvr-rr-…`).
    public var note: String?
}

/// A precondition checked on the way, with its value (for `explain`).
public struct Check: Sendable {
    public var rule: String
    public var name: String
    public var value: String
    public var ok: Bool
}

/// One link of the answer: the name resolved and where its data came from (R15).
public struct Link: Sendable {
    public var name: DNSName
    public var kind: DecisionKind
    public var zone: DNSName?
    public var zoneID: String?
    public var local: Bool
}

/// A local answer, ready to encode.
public struct Answer: Sendable, Equatable {
    public var rcode: RCode
    public var authoritative: Bool
    public var answer: [ResourceRecord]
    public var authority: [ResourceRecord]
    public var additional: [ResourceRecord]
    public init(rcode: RCode, authoritative: Bool, answer: [ResourceRecord] = [], authority: [ResourceRecord] = [], additional: [ResourceRecord] = []) {
        self.rcode = rcode
        self.authoritative = authoritative
        self.answer = answer
        self.authority = authority
        self.additional = additional
    }
}

/// Upstream work the server must do, and how to finish the answer with it (R4, R9, R15).
public struct Forward: Sendable, Equatable {
    /// The name to ask upstream (the question's, or the target of a local CNAME chain).
    public var question: Question
    public var targets: UpstreamTargets
    /// CNAME records already resolved locally, to put before the upstream answer.
    public var chain: [ResourceRecord]
    /// Names already visited in the chain (loop detection when the upstream answer comes back).
    public var visited: [DNSName]
}

public enum Outcome: Sendable {
    case answer(Answer)
    case forward(Forward)
    /// REFUSED (V2, V3, V4, P4 class/transfer).
    case refused
}

/// Everything the engine decided for one question: one value serves answering, `explain`
/// and the query log, so the three can never disagree.
public struct Decision: Sendable {
    public var question: Question
    public var view: ViewChoice
    public var kind: DecisionKind
    /// The zone or rule domain that won (R1) for the first link.
    public var zone: DNSName?
    public var zoneID: String?
    public var reason: Reason?
    public var outcome: Outcome
    /// R18: the routing-policy choice made on the way, when a group answered (the query log's
    /// `record_set`). A decision with one is never remembered as fixed bytes: each query chooses anew.
    public var routing: RoutingChoice?
    /// Filled only when explaining (kept off the hot path).
    public var candidates: [CandidateTrace] = []
    public var checks: [Check] = []
    public var links: [Link] = []
    public var notes: [String] = []
}
