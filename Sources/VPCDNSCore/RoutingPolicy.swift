import DNSWire

/// A health check vpcdns runs itself (config.md `health_checks`, R18). The shell probes;
/// the core only reads the resulting states through a `HealthSource`.
public struct HealthCheck: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case tcp = "TCP"
        case http = "HTTP"
        case https = "HTTPS"
    }
    public var id: String
    public var kind: Kind
    public var ip: IPAddress
    public var port: UInt16
    public var resourcePath: String
    public var requestIntervalMs: Int
    public var failureThreshold: Int
    public var inverted: Bool
    public init(id: String, kind: Kind, ip: IPAddress, port: UInt16, resourcePath: String = "/", requestIntervalMs: Int = 10_000,
                failureThreshold: Int = 3, inverted: Bool = false) {
        self.id = id
        self.kind = kind
        self.ip = ip
        self.port = port
        self.resourcePath = resourcePath
        self.requestIntervalMs = requestIntervalMs
        self.failureThreshold = failureThreshold
        self.inverted = inverted
    }
}

/// One record set of a routing-policy group as configured (`records:` with a `set_identifier`).
public struct RoutedRecordSet: Sendable, Equatable {
    public enum Policy: Sendable, Equatable {
        case weighted(UInt8)
        case failover(FailoverRole)
        case multivalue

        /// The policy's name, for messages (weights of one policy compare equal).
        public var kind: String {
            switch self {
            case .weighted: "weighted"
            case .failover: "failover"
            case .multivalue: "multivalue"
            }
        }
    }
    public enum FailoverRole: String, Sendable, Equatable { case primary = "PRIMARY", secondary = "SECONDARY" }

    public var name: DNSName
    public var type: RRType
    public var setIdentifier: String
    public var policy: Policy
    /// Plain values (empty for an alias).
    public var records: [ResourceRecord]
    public var alias: AliasRecord.Target?
    /// A `health_checks` id.
    public var healthCheck: String?
    public var evaluateTargetHealth: Bool

    public init(name: DNSName, type: RRType, setIdentifier: String, policy: Policy, records: [ResourceRecord] = [],
                alias: AliasRecord.Target? = nil, healthCheck: String? = nil, evaluateTargetHealth: Bool = false) {
        self.name = name
        self.type = type
        self.setIdentifier = setIdentifier
        self.policy = policy
        self.records = records
        self.alias = alias
        self.healthCheck = healthCheck
        self.evaluateTargetHealth = evaluateTargetHealth
    }
}

/// The record sets of one name and type that share a routing policy, ready to choose from
/// (built once at load time, aliases already resolved, health checks as indexes into
/// `Model.healthChecks`).
public final class RoutingGroup: Sendable {
    public struct Member: Sendable {
        public var setIdentifier: String
        public var policy: RoutedRecordSet.Policy
        /// Index into `Model.healthChecks` of the set's own `health_check`.
        public var check: Int?
        public var records: [ResourceRecord]
        /// With `evaluate_target_health`: per record, the endpoint subnet's check (nil: none).
        /// Empty when the set does not evaluate its target.
        public var recordChecks: [Int?]
        public var evaluatesTarget: Bool { !recordChecks.isEmpty }
    }
    public let name: DNSName
    public let type: RRType
    public let members: [Member]

    public init(name: DNSName, type: RRType, members: [Member]) {
        self.name = name
        self.type = type
        self.members = members
    }

    public var policyName: String { members.first?.policy.kind ?? "weighted" }
}

/// Health states as the shell last saw them. A check that has not run yet is healthy.
public protocol HealthSource: Sendable {
    /// `check` is an index into `Model.healthChecks`.
    func isHealthy(_ check: Int) -> Bool
}

/// Every check healthy: `explain` without a running server, and the default.
public struct AllHealthy: HealthSource {
    public init() {}
    public func isHealthy(_ check: Int) -> Bool { true }
}

/// What one query's routing choice depends on besides the model: health and chance, both
/// passed in so the core stays pure (tests fix the seed).
public struct RoutingInput: Sendable {
    public var health: any HealthSource
    public var seed: UInt64
    public init(health: any HealthSource = AllHealthy(), seed: UInt64 = 0) {
        self.health = health
        self.seed = seed
    }
}

/// The outcome of R18 for one group.
public struct RoutingChoice: Sendable {
    public let group: RoutingGroup
    /// Indexes into `group.members`, in answer order.
    public var chosen: [Int]
    /// Per member: healthy when the choice was made.
    public var healthy: [Bool]
    /// An unhealthy PRIMARY that was not served (reason `primary-unhealthy`).
    public var primaryUnhealthy: Bool
    /// Why these sets, in a few words (for `explain`).
    public var why: String
    /// The records to answer with.
    public var records: [ResourceRecord]

    /// `vpcdns.record_set`: the chosen sets' identifiers, comma-separated.
    public var recordSet: String { chosen.map { group.members[$0].setIdentifier }.joined(separator: ",") }
}

/// SplitMix64: a small, fast generator with a seed, so a choice is a function of its inputs.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// R18: the choice among the sets of one routing-policy group, a pure function of the group,
/// the health states and a seed.
public enum RoutingPolicy {
    /// Route 53 answers at most this many multivalue sets.
    public static let multivalueLimit = 8

    public static func choose(_ group: RoutingGroup, input: RoutingInput) -> RoutingChoice {
        var rng = SplitMix64(seed: input.seed)
        let members = group.members
        // Health, and with evaluate_target_health the records whose subnet is still healthy.
        var healthy = [Bool](repeating: true, count: members.count)
        var served = members.map(\.records)
        for (i, m) in members.enumerated() {
            if let c = m.check, !input.health.isHealthy(c) { healthy[i] = false }
            if m.evaluatesTarget {
                var keep: [ResourceRecord] = []
                for (j, r) in m.records.enumerated() where m.recordChecks[j].map(input.health.isHealthy) ?? true { keep.append(r) }
                if keep.isEmpty { healthy[i] = false } else { served[i] = keep }
            }
        }
        var chosen: [Int] = []
        var primaryUnhealthy = false
        var why: String
        switch members.first?.policy {
        case .failover:
            let primary = members.firstIndex { $0.policy == .failover(.primary) }
            let secondary = members.firstIndex { $0.policy == .failover(.secondary) }
            if let p = primary, healthy[p] {
                chosen = [p]
                why = "PRIMARY is healthy"
            } else if let s = secondary {
                chosen = [s]
                primaryUnhealthy = primary != nil
                why = primary == nil ? "no PRIMARY set" :
                    (healthy[s] ? "PRIMARY is unhealthy" : "PRIMARY is unhealthy; SECONDARY served although unhealthy too")
            } else {
                chosen = primary.map { [$0] } ?? []
                why = "PRIMARY is unhealthy but there is no SECONDARY"
            }
        case .multivalue:
            var pool = members.indices.filter { healthy[$0] }
            why = "up to \(multivalueLimit) healthy sets at random"
            if pool.isEmpty {
                pool = Array(members.indices)
                why = "no set is healthy: up to \(multivalueLimit) sets regardless"
            }
            pool.shuffle(using: &rng)
            chosen = Array(pool.prefix(multivalueLimit))
        case .weighted, nil:
            var pool = members.indices.filter { healthy[$0] }
            why = "weighted random choice among healthy sets"
            if pool.isEmpty {
                // Route 53 treats a group with no healthy set as if all were healthy.
                pool = Array(members.indices)
                why = "no set is healthy: weighted random choice among all"
            }
            let weights = pool.map { i -> UInt64 in if case .weighted(let w) = members[i].policy { UInt64(w) } else { 0 } }
            let total = weights.reduce(0, +)
            if total == 0 {
                if !pool.isEmpty { chosen = [pool[Int(rng.next(upperBound: UInt64(pool.count)))]] }
                why += " (all weights 0: equal chance)"
            } else {
                var x = rng.next(upperBound: total)
                for (k, w) in weights.enumerated() {
                    if x < w { chosen = [pool[k]]; break }
                    x -= w
                }
            }
        }
        var records: [ResourceRecord] = []
        if members.first?.policy == .multivalue {
            // One value per set; one TTL for the RRset (RFC 2181 §5.2).
            let ttl = chosen.compactMap { served[$0].first?.ttl }.min() ?? 0
            for i in chosen { if let r = served[i].first { records.append(r.withTTL(ttl)) } }
        } else {
            for i in chosen { records += served[i] }
        }
        return RoutingChoice(group: group, chosen: chosen, healthy: healthy, primaryUnhealthy: primaryUnhealthy, why: why, records: records)
    }
}
