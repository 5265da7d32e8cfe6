import DNSWire

/// The decision engine: one question, the client and the listener in; a `Decision` out.
///
/// No I/O and no clock: the server acts on the decision, `explain` prints it, and the query
/// log records it. All tables are built in `init` from the model; `resolve` only reads them.
public final class Resolver: Sendable {
    public let model: Model
    public let views: ViewSelector
    public let zoneSet: ZoneSet

    /// R15: at most this many CNAME records in one answer.
    public static let maxCNAMEs = 8

    public init(model: Model) {
        self.model = model
        self.views = ViewSelector(model: model)
        self.zoneSet = ZoneSet(model: model)
    }

    /// V1–V4 alone (the server needs it for packets that cannot be resolved, P4).
    public func selectView(client: IPAddress, listener: SocketEndpoint) -> ViewChoice {
        views.select(client: client, listener: listener)
    }

    /// Decides the answer to `question` for `client` reaching `listener`.
    /// `explain: true` also records every candidate and check (kept off the hot path).
    public func resolve(_ question: Question, client: IPAddress, listener: SocketEndpoint, explain: Bool = false,
                        routing: RoutingInput = RoutingInput()) -> Decision {
        resolve(question, view: views.select(client: client, listener: listener), explain: explain, routing: routing)
    }

    /// Decides the answer to `question` as VPC `vpcIndex` (index into `model.vpcs`) asked it,
    /// reached the way `via` says, without a client address or listener: for readers of
    /// query logs, which know the VPC but not the listener. `.inboundEndpoint` stands for the
    /// VPC's first inbound endpoint.
    public func resolve(_ question: Question, vpcIndex: Int, via: Via, explain: Bool = false, routing: RoutingInput = RoutingInput()) -> Decision {
        let vpc = model.vpcs[vpcIndex]
        let inbound = via == .inboundEndpoint ? vpc.inboundEndpoints.first?.id : nil
        let view = ViewChoice(vpcIndex: vpcIndex, vpcID: vpc.id, region: vpc.region, via: via, inboundEndpointID: inbound,
                              matchedPrefix: nil, refusal: vpc.enableDNSSupport ? nil : .dnsSupportOff)
        return resolve(question, view: view, explain: explain, routing: routing)
    }

    /// Decides with a view already chosen (the server selects the view once per query).
    /// `routing` gives the health states and the seed of R18 choices (used only for names
    /// that have routing-policy groups).
    public func resolve(_ question: Question, view: ViewChoice, explain: Bool = false, routing: RoutingInput = RoutingInput()) -> Decision {
        var d = Decision(question: question, view: view, kind: .refused, outcome: .refused)
        if explain { d.checks += viewChecks(view) }
        if let refusal = view.refusal {
            d.reason = refusal
            return d
        }
        // P4 policy that needs V first: transfers and non-IN classes are refused and logged.
        if let bad = BadQueryKind.classify(type: question.type, qclass: question.rrClass) {
            d.kind = .badRequest
            d.reason = .badPacket(bad)
            return d
        }
        guard let v = view.vpcIndex else { return d }

        var chain: [ResourceRecord] = []
        var visited: [DNSName] = []
        var name = question.name
        while true {
            let link = resolveLink(name, question.type, vpc: v, via: view.via, explain: explain && chain.isEmpty)
            if chain.isEmpty {
                d.kind = link.kind
                d.zone = link.zone
                d.zoneID = link.zoneID
                d.reason = link.reason
                if explain {
                    d.candidates = link.candidates
                    d.checks += link.checks
                }
            }
            if explain {
                d.links.append(Link(name: name, kind: link.kind, zone: link.zone, zoneID: link.zoneID, local: link.local))
                if !link.local { d.notes += elsewhereNotes(name, vpc: v) }
            }
            switch link.result {
            case .forward(let targets):
                d.outcome = .forward(Forward(question: Question(name: name, type: question.type, rrClass: question.rrClass),
                                             targets: targets, chain: chain, visited: visited))
                return d
            case .local(let zone, var result):
                if let routed = route(zone, name, question.type, result, routing) {
                    result = routed.result
                    d.routing = routed.choice
                    if routed.choice.primaryUnhealthy, d.reason == nil { d.reason = .primaryUnhealthy }
                }
                switch result {
                case .answer(let rrs):
                    d.outcome = .answer(Answer(rcode: .noError, authoritative: true, answer: chain.isEmpty ? rrs : chain + rrs))
                    return d
                case .nodata:
                    d.outcome = .answer(Answer(rcode: .noError, authoritative: true, answer: chain, authority: zone.negativeAuthority))
                    return d
                case .nxdomain:
                    d.outcome = .answer(Answer(rcode: .nxDomain, authoritative: true, answer: chain, authority: zone.negativeAuthority))
                    return d
                case .cname(let c):
                    chain.append(c)
                    guard let target = c.targetName else {
                        d.outcome = .answer(Answer(rcode: .servFail, authoritative: false))
                        return d
                    }
                    if question.type == .cname {
                        d.outcome = .answer(Answer(rcode: .noError, authoritative: true, answer: chain))
                        return d
                    }
                    if visited.isEmpty { visited.append(question.name) }
                    if visited.contains(target) {
                        d.reason = .cnameLoop
                        d.outcome = .answer(Answer(rcode: .servFail, authoritative: false))
                        return d
                    }
                    if chain.count > Resolver.maxCNAMEs {
                        d.reason = .cnameChain
                        d.outcome = .answer(Answer(rcode: .servFail, authoritative: false))
                        return d
                    }
                    visited.append(target)
                    name = target
                }
            }
        }
    }

    /// R15, the upstream half: an upstream answer for `forward` ended in a CNAME to `target`
    /// with no data for it. If `target` is private in the asking VPC, the chain is completed
    /// from local data; otherwise nil (the upstream's answer stands as it is).
    public func continueChain(after forward: Forward, upstreamChain: [ResourceRecord], target: DNSName, view: ViewChoice,
                              routing: RoutingInput = RoutingInput()) -> Answer? {
        guard let v = view.vpcIndex else { return nil }
        var chain = forward.chain + upstreamChain
        var visited = (forward.visited.isEmpty ? [forward.question.name] : forward.visited) + upstreamChain.map(\.name)
        var name = target
        while true {
            if visited.contains(name) { return Answer(rcode: .servFail, authoritative: false) }
            if chain.count > Resolver.maxCNAMEs { return Answer(rcode: .servFail, authoritative: false) }
            visited.append(name)
            let link = resolveLink(name, forward.question.type, vpc: v, via: view.via, explain: false)
            guard case .local(let zone, var result) = link.result else { return nil }
            if let routed = route(zone, name, forward.question.type, result, routing) { result = routed.result }
            switch result {
            case .answer(let rrs): return Answer(rcode: .noError, authoritative: false, answer: chain + rrs)
            case .nodata: return Answer(rcode: .noError, authoritative: false, answer: chain, authority: zone.negativeAuthority)
            case .nxdomain: return Answer(rcode: .nxDomain, authoritative: false, answer: chain, authority: zone.negativeAuthority)
            case .cname(let c):
                chain.append(c)
                guard let t = c.targetName, chain.count <= Resolver.maxCNAMEs else { return Answer(rcode: .servFail, authoritative: false) }
                name = t
            }
        }
    }

    // MARK: - R18

    /// When `name` (its answer's type, or the CNAME found there) belongs to a routing-policy
    /// group, the group's choice replaces the zone's union of all its sets.
    @inline(__always)
    func route(_ zone: ZoneData, _ name: DNSName, _ qtype: RRType, _ result: ZoneData.LookupResult, _ input: RoutingInput)
        -> (result: ZoneData.LookupResult, choice: RoutingChoice)? {
        if zone.routing.isEmpty { return nil }
        switch result {
        case .answer(let rrs):
            guard let type = qtype == .any ? rrs.first?.type : qtype,
                  let g = zone.routingGroup(name, type) else { return nil }
            let c = RoutingPolicy.choose(g, input: input)
            return (c.records.isEmpty ? .nodata : .answer(c.records), c)
        case .cname:
            guard let g = zone.routingGroup(name, .cname) else { return nil }
            let c = RoutingPolicy.choose(g, input: input)
            guard let first = c.records.first else { return (.nodata, c) }
            return (.cname(first), c)
        case .nodata, .nxdomain:
            return nil
        }
    }

    // MARK: - One link

    struct LinkResult {
        enum Result {
            case local(ZoneData, ZoneData.LookupResult)
            case forward(UpstreamTargets)
        }
        var kind: DecisionKind
        var zone: DNSName?
        var zoneID: String?
        var reason: Reason?
        var local: Bool
        var result: Result
        var candidates: [CandidateTrace] = []
        var checks: [Check] = []
    }

    /// R1 for one name in one VPC: the winning candidate and what it says.
    func resolveLink(_ name: DNSName, _ type: RRType, vpc v: Int, via: Via, explain: Bool) -> LinkResult {
        let table = zoneSet.candidates[v]
        var winner: ZoneSet.Candidate? = nil
        var system: ZoneSet.Candidate? = nil
        var firstInactive: Reason? = nil
        var traces: [CandidateTrace] = []

        // Walk the name's suffixes from the name itself up to the root: most specific first.
        var wire = name.wire[...]
        var labels = name.labelCount
        let maxLabels = zoneSet.maxLabels[v]
        while true {
            if labels <= maxLabels, let cands = table[NameKey(slice: wire)] {
                for c in cands {
                    var inactive = c.inactive
                    if inactive == nil && c.inboundOnly && via != .inboundEndpoint { inactive = .inboundOnly }
                    var note: String? = nil
                    var won = false
                    if let r = inactive {
                        if winner == nil && firstInactive == nil { firstInactive = r }
                    } else if winner == nil {
                        switch c.action {
                        case .system:
                            if system == nil { system = c } else { note = "a more specific SYSTEM rule already applies" }
                        case .forward where system != nil:
                            note = "set aside by SYSTEM rule \(system!.id) (\(system!.domain.text))"
                        default:
                            winner = c
                            won = true
                        }
                    } else {
                        note = "less specific than the winner"
                    }
                    if explain {
                        traces.append(CandidateTrace(domain: c.domain, kind: c.trace, id: c.id, inactiveReason: inactive, won: won, note: note))
                    } else if winner != nil {
                        break
                    }
                }
                if winner != nil && !explain { break }
            }
            if wire.first == 0 { break }
            wire = wire.dropFirst(Int(wire.first!) + 1)
            labels -= 1
        }

        if let w = winner {
            switch w.action {
            case .zone(let zi):
                let zone = zoneSet.zones[zi]
                let kind: DecisionKind
                switch zone.origin {
                case .hostedZone: kind = .privateHostedZone
                case .endpointPrivateDNS: kind = .endpointPrivateDNS
                case .servicePrivateDNS: kind = .servicePrivateDNS
                case .endpointName: kind = .endpointDNSName
                }
                return LinkResult(kind: kind, zone: zone.apex, zoneID: w.id, reason: firstInactive, local: true,
                                  result: .local(zone, zone.lookup(name, type)), candidates: traces)
            case .forward(let rule):
                return LinkResult(kind: .forwardRule, zone: rule.domain, zoneID: rule.id, reason: firstInactive, local: false,
                                  result: .forward(.rule(id: rule.id, targets: rule.targets)), candidates: traces)
            case .system:
                break // not a winner kind
            }
        }
        // R9 territory. R10 first: endpoint-specific names are public data vpcdns holds.
        if name.isSubdomain(of: EndpointNames.vpceDomain), let zi = endpointNameZone(name) {
            let zone = zoneSet.zones[zi]
            guard case .endpointName(let epID) = zone.origin else { fatalError("endpoint name table holds only endpoint names") }
            return LinkResult(kind: .endpointDNSName, zone: nil, zoneID: epID, reason: firstInactive, local: true,
                              result: .local(zone, zone.lookup(name, type)), candidates: traces)
        }
        return LinkResult(kind: .upstream, zone: system?.domain, zoneID: system?.id, reason: firstInactive, local: false,
                          result: .forward(.defaults), candidates: traces)
    }

    /// The R10 zone whose apex is `name` or an ancestor of it (below `vpce.amazonaws.com`).
    func endpointNameZone(_ name: DNSName) -> Int? {
        var n: DNSName? = name
        while let x = n, x.labelCount > 3 {
            if let zi = zoneSet.endpointNames[x] { return zi }
            n = x.parent
        }
        return nil
    }

    // MARK: - explain details

    /// Private data that matches `name` but belongs to other VPCs: the "endpoint in another
    /// VPC" and "zone not associated" mistakes, made visible (R14 is why they do not answer).
    func elsewhereNotes(_ name: DNSName, vpc v: Int) -> [String] {
        let own = Set(zoneSet.candidates[v].values.flatMap { $0 }.compactMap { c -> Int? in
            if case .zone(let zi) = c.action { return zi } else { return nil }
        })
        var notes: [String] = []
        for (zi, zone) in zoneSet.zones.enumerated() where !own.contains(zi) && name.isSubdomain(of: zone.apex) {
            let owners = zoneSet.candidates.indices.filter { other in
                zoneSet.candidates[other][NameKey(zone.apex)]?.contains { if case .zone(zi) = $0.action { true } else { false } } ?? false
            }.map { model.vpcs[$0].id }
            guard !owners.isEmpty else { continue }
            let what: String
            switch zone.origin {
            case .hostedZone(let id): what = "private hosted zone \(zone.apex.text) (\(id))"
            case .endpointPrivateDNS(let ep): what = "private DNS of endpoint \(ep)"
            case .servicePrivateDNS(let svc, let ep): what = "service private DNS \(zone.apex.text) of \(svc) via endpoint \(ep)"
            case .endpointName: continue
            }
            notes.append("\(what) would match \(name.text), but it is associated with \(owners.joined(separator: ", ")) only, not with this VPC (R14)")
        }
        return notes
    }

    func viewChecks(_ view: ViewChoice) -> [Check] {
        guard let i = view.vpcIndex else { return [] }
        let vpc = model.vpcs[i]
        return [
            Check(rule: "V4", name: "enable_dns_support", value: String(vpc.enableDNSSupport), ok: vpc.enableDNSSupport),
            Check(rule: "R2", name: "enable_dns_hostnames", value: String(vpc.enableDNSHostnames), ok: vpc.enableDNSHostnames),
        ]
    }
}
