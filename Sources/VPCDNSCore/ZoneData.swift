import DNSWire

/// The records of one private zone, indexed for lookup (R3): a PHZ, the hidden zone of an
/// endpoint's private DNS name (R5), a service's private DNS zone (R11), or an
/// endpoint-specific name (R10). Every kind is reduced to the same shape at load time, so
/// one lookup routine gives every kind the same NXDOMAIN / NODATA / wildcard behaviour.
public final class ZoneData: Sendable {
    public enum Origin: Sendable, Equatable {
        case hostedZone(id: String)
        case endpointPrivateDNS(endpointID: String)
        case servicePrivateDNS(serviceID: String, endpointID: String)
        case endpointName(endpointID: String)
    }

    /// One owner name: its RRsets in the order they were first seen.
    struct Node: Sendable {
        var rrsets: [(type: RRType, records: [ResourceRecord])] = []

        func records(_ t: RRType) -> [ResourceRecord]? {
            for s in rrsets where s.type == t { return s.records }
            return nil
        }

        mutating func add(_ rr: ResourceRecord) {
            if let i = rrsets.firstIndex(where: { $0.type == rr.type }) {
                // RFC 2181 §5.2: one TTL per RRset; duplicates collapse.
                if !rrsets[i].records.contains(where: { $0.rdata == rr.rdata }) {
                    rrsets[i].records.append(rr.withTTL(rrsets[i].records[0].ttl))
                }
            } else {
                rrsets.append((rr.type, [rr]))
            }
        }
    }

    public enum LookupResult: Equatable {
        /// Records of the asked type, owned by the asked name (wildcards already expanded).
        case answer([ResourceRecord])
        /// A CNAME at the asked name (owned by it): the target must be chased (R15).
        case cname(ResourceRecord)
        case nodata
        case nxdomain
    }

    public let apex: DNSName
    public let origin: Origin
    public let soa: ResourceRecord
    /// RFC 2308 / R3: min(SOA TTL, SOA MINIMUM).
    public let negativeTTL: UInt32
    let nodes: [DNSName: Node]
    let emptyNonTerminals: Set<DNSName>
    /// Wildcard nodes by the name they cover (`*.x` under `x`), so the closest-encloser walk
    /// does not build `*.` names per lookup.
    let wildcards: [DNSName: Node]

    /// `records` must all be at or below `apex`; an SOA at the apex is used when present,
    /// otherwise AWS's private-zone SOA and NS placeholders are added.
    /// `routingGroups` (R18): their records also join the zone's nodes, so that names and
    /// types exist for NXDOMAIN / NODATA / CNAME purposes; the answer itself is chosen per query.
    public init(apex: DNSName, origin: Origin, records: [ResourceRecord], routingGroups: [RoutingGroup] = []) {
        self.apex = apex
        self.origin = origin
        var nodes = [DNSName: Node](minimumCapacity: records.count)
        for rr in records where rr.name.isSubdomain(of: apex) {
            nodes[rr.name, default: Node()].add(rr)
        }
        var routing: [RoutingKey: RoutingGroup] = [:]
        for g in routingGroups where g.name.isSubdomain(of: apex) {
            routing[RoutingKey(name: g.name, type: g.type)] = g
            for m in g.members { for rr in m.records { nodes[rr.name, default: Node()].add(rr) } }
            if nodes[g.name] == nil || nodes[g.name]!.records(g.type) == nil {
                // Every target of the group resolved to nothing (an alias to a missing endpoint):
                // the name still exists, with an empty RRset the choice fills.
                nodes[g.name, default: Node()].rrsets.append((g.type, []))
            }
        }
        self.routing = routing
        if nodes[apex]?.records(.soa) == nil {
            for rr in [PrivateZoneDefaults.soa(apex: apex)] + PrivateZoneDefaults.ns(apex: apex) {
                nodes[apex, default: Node()].add(rr)
            }
        }
        let soa = nodes[apex]!.records(.soa)![0]
        self.soa = soa
        self.negativeTTL = min(soa.ttl, soa.soaMinimum ?? soa.ttl)
        self.negativeAuthority = [soa.withTTL(negativeTTL)]
        var ents = Set<DNSName>()
        for name in nodes.keys {
            var p = name.parent
            while let q = p, q.isSubdomain(of: apex), q != apex {
                if nodes[q] == nil { ents.insert(q) }
                p = q.parent
            }
        }
        self.nodes = nodes
        self.emptyNonTerminals = ents
        var wildcards: [DNSName: Node] = [:]
        for (n, node) in nodes where n.isWildcard { wildcards[n.parent!] = node }
        self.wildcards = wildcards
    }

    struct RoutingKey: Hashable {
        var name: DNSName
        var type: RRType
    }
    /// R18 groups by owner and type; empty for most zones, so plain lookups pay one check.
    let routing: [RoutingKey: RoutingGroup]

    /// The routing-policy group that owns `name`'s `type` records, if any.
    @inline(__always) public func routingGroup(_ name: DNSName, _ type: RRType) -> RoutingGroup? {
        if routing.isEmpty { return nil }
        return routing[RoutingKey(name: name, type: type)]
    }

    /// The SOA to put in the authority section of a negative answer.
    /// Built once: every negative answer of the zone shares this array.
    public let negativeAuthority: [ResourceRecord]

    /// True when the name owns records or has names below it (RFC 8020).
    public func exists(_ name: DNSName) -> Bool { nodes[name] != nil || emptyNonTerminals.contains(name) }

    /// R3 lookup of `name` (which must be at or below the apex).
    public func lookup(_ name: DNSName, _ type: RRType) -> LookupResult {
        if let node = nodes[name] { return answer(from: node, owner: name, type: type, synthesized: false) }
        if emptyNonTerminals.contains(name) { return .nodata }
        // Closest encloser, then its wildcard (RFC 4592).
        // `name` is at or below the apex, so an ancestor is inside the zone while it is not shorter.
        var p = name.parent
        while let q = p, q.wire.count >= apex.wire.count {
            if exists(q) {
                guard let node = wildcards[q] else { return .nxdomain }
                return answer(from: node, owner: name, type: type, synthesized: true)
            }
            p = q.parent
        }
        return .nxdomain
    }

    private func answer(from node: Node, owner: DNSName, type: RRType, synthesized: Bool) -> LookupResult {
        func named(_ rrs: [ResourceRecord]) -> [ResourceRecord] { synthesized ? rrs.map { $0.renamed(owner) } : rrs }
        if type == .any {
            // RFC 8482: a minimal answer, one RRset, rather than everything the name owns.
            guard let first = node.rrsets.first(where: { $0.type != .soa && $0.type != .ns }) ?? node.rrsets.first else { return .nodata }
            return .answer(named(first.records))
        }
        if let rrs = node.records(type) { return .answer(named(rrs)) }
        if let c = node.records(.cname)?.first { return .cname(synthesized ? c.renamed(owner) : c) }
        return .nodata
    }

    /// All records, for `check` and tests.
    public var allRecords: [ResourceRecord] {
        nodes.keys.sorted().flatMap { nodes[$0]!.rrsets.flatMap(\.records) }
    }
}
