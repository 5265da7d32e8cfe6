/// V1–V3: which VPC is asking, from the listener reached and the client's address.
///
/// Built once per model. Listener addresses go in an exact map (V1). Source prefixes go in
/// one hash table per prefix length, probed from the longest length that occurs down to
/// the shortest: a longest-prefix match in at most 33 (IPv4) or 129 (IPv6) probes, usually a
/// handful, with no allocation and no string work per query.
public struct ViewSelector: Sendable {
    struct ListenerBinding: Sendable {
        var vpcIndex: Int
        var via: Via
        var inboundEndpointID: String?
        /// The VPC's `allowed_sources`; nil = any source.
        var allowed: SourceFilter?
    }

    /// V1 with `allowed_sources`: the CIDRs allowed to use a VPC's own listener addresses, as
    /// masked integers. A query scans them (a handful) with integer compares: no allocation.
    struct SourceFilter: Sendable {
        let v4: [(network: UInt32, mask: UInt32)]
        let v6: [(network: UInt128, mask: UInt128)]

        init?(_ prefixes: [IPPrefix]) {
            guard !prefixes.isEmpty else { return nil }
            var v4: [(network: UInt32, mask: UInt32)] = []
            var v6: [(network: UInt128, mask: UInt128)] = []
            for p in prefixes {
                switch p.address {
                case .v4(let a): v4.append((a, p.length == 0 ? 0 : ~UInt32(0) << (32 - p.length)))
                case .v6(let a): v6.append((a, p.length == 0 ? 0 : ~UInt128(0) << (128 - p.length)))
                }
            }
            self.v4 = v4
            self.v6 = v6
        }

        func allows(_ ip: IPAddress) -> Bool {
            switch ip {
            // Index loops: an unspecialized iterator over tuples allocates (debug builds).
            case .v4(let a):
                for k in v4.indices where a & v4[k].mask == v4[k].network { return true }
            case .v6(let a):
                for k in v6.indices where a & v6[k].mask == v6[k].network { return true }
            }
            return false
        }
    }

    let listeners: [SocketEndpoint: ListenerBinding]
    /// For each prefix length in use (longest first): masked address -> VPC indices claiming it.
    let v4: [(length: Int, table: [UInt32: [Int]])]
    let v6: [(length: Int, table: [UInt128: [Int]])]
    let vpcs: [VPC]
    let defaultVPCIndex: Int?

    public init(model: Model) {
        vpcs = model.vpcs
        var listeners: [SocketEndpoint: ListenerBinding] = [:]
        var v4: [Int: [UInt32: [Int]]] = [:]
        var v6: [Int: [UInt128: [Int]]] = [:]
        for (i, vpc) in model.vpcs.enumerated() {
            let allowed = SourceFilter(vpc.allowedSources)
            for a in vpc.resolverAddresses { listeners[a] = ListenerBinding(vpcIndex: i, via: .resolverAddress, allowed: allowed) }
            for ep in vpc.inboundEndpoints {
                for a in ep.addresses {
                    listeners[a] = ListenerBinding(vpcIndex: i, via: .inboundEndpoint, inboundEndpointID: ep.id, allowed: allowed)
                }
            }
            // A VPC claims each distinct prefix once, even if listed in both cidrs and clients.
            var seen = Set<IPPrefix>()
            for p in vpc.cidrs + vpc.clients where seen.insert(p).inserted {
                switch p.address {
                case .v4(let a): v4[p.length, default: [:]][a, default: []].append(i)
                case .v6(let a): v6[p.length, default: [:]][a, default: []].append(i)
                }
            }
        }
        self.listeners = listeners
        self.v4 = v4.sorted { $0.key > $1.key }.map { ($0.key, $0.value) }
        self.v6 = v6.sorted { $0.key > $1.key }.map { ($0.key, $0.value) }
        defaultVPCIndex = model.settings.defaultVPC.flatMap { id in model.vpcs.firstIndex { $0.id == id } }
    }

    /// Longest-prefix match of a source address: the prefix and the VPCs that claim it.
    public func longestMatch(_ ip: IPAddress) -> (prefix: IPPrefix, vpcIndices: [Int])? {
        switch ip {
        // Index loops, as in `SourceFilter.allows`: this runs per query.
        case .v4(let a):
            for k in v4.indices {
                let len = v4[k].length
                let mask: UInt32 = len == 0 ? 0 : ~UInt32(0) << (32 - len)
                if let hit = v4[k].table[a & mask] { return (IPPrefix(address: .v4(a & mask), length: len), hit) }
            }
        case .v6(let a):
            for k in v6.indices {
                let len = v6[k].length
                let mask: UInt128 = len == 0 ? 0 : ~UInt128(0) << (128 - len)
                if let hit = v6[k].table[a & mask] { return (IPPrefix(address: .v6(a & mask), length: len), hit) }
            }
        }
        return nil
    }

    /// Chooses the VPC for a query from `client` that reached `listener` (V1–V4).
    public func select(client: IPAddress, listener: SocketEndpoint) -> ViewChoice {
        if let b = listeners[listener] {
            if let allowed = b.allowed, !allowed.allows(client) {
                // A VPC's own address answers only its allowed sources; to everyone else it is
                // like a client no VPC claims (V3): REFUSED, logged with vpc_id "-".
                var c = ViewChoice(vpcIndex: nil, vpcID: nil, region: nil, via: .none, refusal: .noVPCMatch)
                c.sourceNotAllowedBy = vpcs[b.vpcIndex].id
                return c
            }
            return choice(b.vpcIndex, via: b.via, inbound: b.inboundEndpointID, prefix: nil)
        }
        if let (prefix, hits) = longestMatch(client) {
            if hits.count == 1 { return choice(hits[0], via: .source, inbound: nil, prefix: prefix) }
            // V2: several VPCs claim this exact prefix and the query came to a shared listener.
            var c = ViewChoice(vpcIndex: nil, vpcID: nil, region: nil, via: .none, matchedPrefix: prefix, refusal: .ambiguousVPC)
            c.ambiguousWith = hits.map { vpcs[$0].id }
            return c
        }
        if let d = defaultVPCIndex { return choice(d, via: .defaultVPC, inbound: nil, prefix: nil) }
        return ViewChoice(vpcIndex: nil, vpcID: nil, region: nil, via: .none, refusal: .noVPCMatch)
    }

    private func choice(_ i: Int, via: Via, inbound: String?, prefix: IPPrefix?) -> ViewChoice {
        let vpc = vpcs[i]
        return ViewChoice(vpcIndex: i, vpcID: vpc.id, region: vpc.region, via: via, inboundEndpointID: inbound,
                          matchedPrefix: prefix, refusal: vpc.enableDNSSupport ? nil : .dnsSupportOff)
    }
}
