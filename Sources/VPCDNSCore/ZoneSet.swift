import DNSWire

/// Every private zone of the model as `ZoneData`, and each VPC's candidates (R1), computed
/// once at load time. A VPC's candidate table holds only the zones associated with it and its
/// own endpoints and rules: isolation (R14) is a property of what the table contains, not of
/// a check made per query.
public struct ZoneSet: Sendable {
    /// One R1 candidate of one VPC.
    struct Candidate: Sendable {
        enum Action: Sendable {
            case zone(Int)
            case forward(ResolverRule)
            case system(ResolverRule)
        }
        var domain: DNSName
        var action: Action
        var trace: CandidateTrace.Kind
        var id: String
        /// Reason this candidate never answers in this VPC (R2, R5, R11), fixed at load time.
        var inactive: Reason?
        /// R7: answers only queries that came through an inbound endpoint.
        var inboundOnly: Bool
        /// Tie order at one domain (R1): FORWARD beats a zone, a zone beats SYSTEM.
        var rank: Int
    }

    public let zones: [ZoneData]
    /// Per VPC (index into Model.vpcs): domain -> candidates at exactly that domain, by rank.
    let candidates: [[NameKey: [Candidate]]]
    /// R10: endpoint-specific names of every interface endpoint, for every VPC.
    let endpointNames: [DNSName: Int]
    /// The longest label count among each VPC's candidate domains, so a lookup skips
    /// suffixes that cannot match.
    let maxLabels: [Int]

    public init(model: Model) {
        var zones: [ZoneData] = []
        var perVPC: [[NameKey: [Candidate]]] = Array(repeating: [:], count: model.vpcs.count)
        let vpcIndex = Dictionary(model.vpcs.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        let ttl = model.settings.endpointDNSTTL

        func add(_ c: Candidate, vpc: Int) {
            perVPC[vpc][NameKey(c.domain), default: []].append(c)
        }

        // Private hosted zones (R3, R13).
        for z in model.hostedZones {
            let records = z.records + ZoneSet.resolveAliases(z, model: model)
            zones.append(ZoneData(apex: z.name, origin: .hostedZone(id: z.id), records: records,
                                  routingGroups: ZoneSet.routingGroups(z, model: model)))
            for id in z.vpcIDs {
                guard let v = vpcIndex[id] else { continue }
                let inactive: Reason? = model.vpcs[v].privateDNSUsable ? nil : .hostnamesOff
                add(Candidate(domain: z.name, action: .zone(zones.count - 1), trace: .privateHostedZone, id: z.id,
                              inactive: inactive, inboundOnly: false, rank: 1), vpc: v)
            }
        }

        var endpointNames: [DNSName: Int] = [:]
        for ep in model.endpoints where ep.kind == .interface {
            guard let v = vpcIndex[ep.vpcID] else { continue }
            let vpc = model.vpcs[v]
            // R5/R6: the hidden zones of the endpoint's private DNS names (AWS services).
            var apexes: [DNSName: (apex: Bool, wildcard: Bool)] = [:]
            var order: [DNSName] = []
            for n in ep.privateDNSNames {
                let apex = n.isWildcard ? n.parent! : n
                if apexes[apex] == nil { order.append(apex) }
                var e = apexes[apex] ?? (false, false)
                if n.isWildcard { e.wildcard = true } else { e.apex = true }
                apexes[apex] = e
            }
            let privateRecords = { (owner: DNSName) in ZoneSet.addressRecords(ep, owner: owner, ttl: ttl, endpointName: false) }
            for apex in order {
                let e = apexes[apex]!
                var records: [ResourceRecord] = []
                if e.apex { records += privateRecords(apex) }
                if e.wildcard, let w = apex.wildcardChild { records += privateRecords(w) }
                zones.append(ZoneData(apex: apex, origin: .endpointPrivateDNS(endpointID: ep.id), records: records))
                add(Candidate(domain: apex, action: .zone(zones.count - 1), trace: .endpointPrivateDNS, id: ep.id,
                              inactive: ZoneSet.endpointInactive(ep, vpc),
                              inboundOnly: ep.privateDNSOnlyForInboundResolverEndpoint, rank: 1), vpc: v)
            }
            // R11: a custom service's private DNS name, for the consumer VPC.
            if case .custom(_, let svcID) = ep.service, let svc = model.endpointService(svcID), let name = svc.privateDNSName {
                var records: [ResourceRecord] = []
                switch svc.aliasStyle {
                case .cname:
                    records.append(ResourceRecord(name: name, type: .cname, ttl: ttl, rdata: ep.regionalName.wire))
                case .flatten:
                    records += ZoneSet.addressRecords(ep, owner: name, ttl: ttl, endpointName: false)
                }
                zones.append(ZoneData(apex: name, origin: .servicePrivateDNS(serviceID: svcID, endpointID: ep.id), records: records))
                var inactive = ZoneSet.endpointInactive(ep, vpc)
                if inactive == nil || inactive == .hostnamesOff, svc.verification != .verified { inactive = .notVerified }
                add(Candidate(domain: name, action: .zone(zones.count - 1), trace: .servicePrivateDNS, id: svcID,
                              inactive: inactive, inboundOnly: false, rank: 1), vpc: v)
            }
            // R10: endpoint-specific names, answered for everyone.
            var names = [(ep.regionalName, ep.subnets)]
            for (i, z) in ep.zonalNames.enumerated() { names.append((z.name, [ep.subnets[i]])) }
            for (name, subnets) in names {
                var one = ep
                one.subnets = subnets
                var records = ZoneSet.addressRecords(one, owner: name, ttl: ttl, endpointName: true)
                // S3 clients put `bucket.`, `accesspoint.`, `control.` (and bucket names) in front.
                if ep.isS3, let w = name.wildcardChild { records += ZoneSet.addressRecords(one, owner: w, ttl: ttl, endpointName: true) }
                zones.append(ZoneData(apex: name, origin: .endpointName(endpointID: ep.id), records: records))
                endpointNames[name] = zones.count - 1
            }
        }

        // Resolver rules (R1, R4).
        for (v, vpc) in model.vpcs.enumerated() {
            for r in vpc.resolverRules {
                switch r.kind {
                case .forward:
                    add(Candidate(domain: r.domain, action: .forward(r), trace: .forwardRule, id: r.id, inactive: nil, inboundOnly: false, rank: 0), vpc: v)
                case .system:
                    add(Candidate(domain: r.domain, action: .system(r), trace: .systemRule, id: r.id, inactive: nil, inboundOnly: false, rank: 2), vpc: v)
                }
            }
        }
        for v in perVPC.indices {
            for k in perVPC[v].keys { perVPC[v][k]!.sort { $0.rank < $1.rank } }
        }
        self.zones = zones
        self.candidates = perVPC
        self.endpointNames = endpointNames
        self.maxLabels = perVPC.map { $0.keys.map(\.name.labelCount).max() ?? 0 }
    }

    /// Why an endpoint's private DNS cannot answer in its VPC, in the order an operator checks.
    static func endpointInactive(_ ep: Endpoint, _ vpc: VPC) -> Reason? {
        if !ep.privateDNSEnabled { return .privateDNSOff }
        if !vpc.privateDNSUsable { return .hostnamesOff }
        return nil
    }

    /// R8: the A and AAAA records an endpoint answers under `owner`.
    static func addressRecords(_ ep: Endpoint, owner: DNSName, ttl: UInt32, endpointName: Bool) -> [ResourceRecord] {
        let wantA: Bool, wantAAAA: Bool
        switch ep.ipType {
        case .ipv4: (wantA, wantAAAA) = (true, false)
        case .ipv6: (wantA, wantAAAA) = (false, true)
        case .dualstack: (wantA, wantAAAA) = (true, true)
        case .serviceDefined: (wantA, wantAAAA) = (true, endpointName)
        }
        var out: [ResourceRecord] = []
        if wantA {
            for s in ep.subnets { if let ip = s.ipv4 { out.append(ResourceRecord(name: owner, type: .a, ttl: ttl, rdata: ip.bytes)) } }
        }
        if wantAAAA {
            for s in ep.subnets { if let ip = s.ipv6 { out.append(ResourceRecord(name: owner, type: .aaaa, ttl: ttl, rdata: ip.bytes)) } }
        }
        return out
    }

    /// R13: alias record sets become plain records of the zone at load time (their targets
    /// are static: endpoint addresses, or another record set of the same zone).
    static func resolveAliases(_ zone: HostedZone, model: Model) -> [ResourceRecord] {
        let ttl = model.settings.endpointDNSTTL
        var out: [ResourceRecord] = []
        for alias in zone.aliases {
            var target = alias.target
            var hops = 0
            resolving: while hops < 8 {
                hops += 1
                switch target {
                case .endpoint(let id):
                    guard let ep = model.endpoint(id) else { break resolving }
                    out += addressRecords(ep, owner: alias.name, ttl: ttl, endpointName: true).filter { $0.type == alias.type }
                    break resolving
                case .dnsName(let name):
                    for ep in model.endpoints {
                        if ep.regionalName == name {
                            out += addressRecords(ep, owner: alias.name, ttl: ttl, endpointName: true).filter { $0.type == alias.type }
                        } else if let i = ep.zonalNames.firstIndex(where: { $0.name == name }) {
                            var one = ep
                            one.subnets = [ep.subnets[i]]
                            out += addressRecords(one, owner: alias.name, ttl: ttl, endpointName: true).filter { $0.type == alias.type }
                        }
                    }
                    break resolving
                case .record(let name):
                    let plain = zone.records.filter { $0.name == name && $0.type == alias.type }
                    if !plain.isEmpty {
                        out += plain.map { $0.renamed(alias.name) }
                        break resolving
                    }
                    guard let next = zone.aliases.first(where: { $0.name == name && $0.type == alias.type }) else { break resolving }
                    target = next.target
                }
            }
        }
        return out
    }

    /// R18: a zone's routed record sets grouped by name and type, aliases resolved, health
    /// checks turned into indexes into `model.healthChecks`.
    static func routingGroups(_ zone: HostedZone, model: Model) -> [RoutingGroup] {
        guard !zone.routedSets.isEmpty else { return [] }
        let ttl = model.settings.endpointDNSTTL
        var checkIndex: [String: Int] = [:]
        for (i, c) in model.healthChecks.enumerated() where checkIndex[c.id] == nil { checkIndex[c.id] = i }
        var order: [ZoneData.RoutingKey] = []
        var members: [ZoneData.RoutingKey: [RoutingGroup.Member]] = [:]
        for set in zone.routedSets {
            var records = set.records
            var recordChecks: [Int?] = []
            if let target = set.alias {
                // Per subnet, so each address keeps its subnet's health check.
                func add(_ ep: Endpoint, _ subnets: [Endpoint.Subnet]) {
                    for sn in subnets {
                        var one = ep
                        one.subnets = [sn]
                        let rrs = addressRecords(one, owner: set.name, ttl: ttl, endpointName: true).filter { $0.type == set.type }
                        records += rrs
                        recordChecks += Array(repeating: sn.healthCheck.flatMap { checkIndex[$0] }, count: rrs.count)
                    }
                }
                switch target {
                case .endpoint(let id):
                    if let ep = model.endpoint(id) { add(ep, ep.subnets) }
                case .dnsName(let name):
                    for ep in model.endpoints {
                        if ep.regionalName == name { add(ep, ep.subnets) } else if let i = ep.zonalNames.firstIndex(where: { $0.name == name }) {
                            add(ep, [ep.subnets[i]])
                        }
                    }
                case .record(let name):
                    records += zone.records.filter { $0.name == name && $0.type == set.type }.map { $0.renamed(set.name) }
                    recordChecks = []
                }
                if !set.evaluateTargetHealth { recordChecks = [] }
                if case .record = target { recordChecks = [] }
            }
            let key = ZoneData.RoutingKey(name: set.name, type: set.type)
            if members[key] == nil { order.append(key) }
            members[key, default: []].append(RoutingGroup.Member(
                setIdentifier: set.setIdentifier, policy: set.policy, check: set.healthCheck.flatMap { checkIndex[$0] },
                records: records, recordChecks: recordChecks))
        }
        return order.map { RoutingGroup(name: $0.name, type: $0.type, members: members[$0]!) }
    }
}
