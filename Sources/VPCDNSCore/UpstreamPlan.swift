import DNSWire

/// Where an upstream target was written: in the configuration itself, or in a resolv.conf
/// file read for `system` (O6: `check`, `explain` and the startup lines name that file).
public enum UpstreamOrigin: Hashable, Sendable {
    case configured
    case system(file: String)
}

/// One upstream address, with the configuration key it came from (`upstreams[1]`,
/// `vpcs[0].resolver_rules[2].targets[0]`) so a message about it can point there.
public struct UpstreamTarget: Hashable, Sendable, CustomStringConvertible {
    public var endpoint: SocketEndpoint
    public var origin: UpstreamOrigin
    public var key: String

    public init(endpoint: SocketEndpoint, origin: UpstreamOrigin = .configured, key: String) {
        self.endpoint = endpoint
        self.origin = origin
        self.key = key
    }

    /// `10.0.0.2:53 (system, from /etc/resolv.conf)` or `127.0.0.1:1054`.
    public var description: String {
        switch origin {
        case .configured: endpoint.description
        case .system(let file): "\(endpoint) (system, from \(file))"
        }
    }
}

/// Why an upstream target is never used (O6).
public enum LeftOutReason: Hashable, Sendable, CustomStringConvertible {
    /// The target is one of vpcdns's own listeners: forwarding there sends each query back
    /// to ourselves.
    case ownListener(SocketEndpoint)
    /// The target is an address of this host on the port of a wildcard listener (given),
    /// which would receive it.
    case wildcardListener(SocketEndpoint)

    public var description: String {
        switch self {
        case .ownListener(let l): "it is vpcdns's own listener \(l): forwarding there would loop"
        case .wildcardListener(let l): "it is an address of this host and vpcdns listens on \(l): forwarding there would loop"
        }
    }
}

public struct LeftOutTarget: Hashable, Sendable, CustomStringConvertible {
    public var target: UpstreamTarget
    public var reason: LeftOutReason
    public init(target: UpstreamTarget, reason: LeftOutReason) {
        self.target = target
        self.reason = reason
    }
    public var description: String { "\(target) left out: \(reason)" }
}

/// The targets of the default upstreams or of one FORWARD rule: those in use, those left out
/// and why, and notes on how `system` was read.
public struct UpstreamSet: Sendable, Equatable {
    public var inUse: [UpstreamTarget]
    public var leftOut: [LeftOutTarget]
    /// How `system` was expanded (`/etc/resolv.conf names only the systemd-resolved stub …`).
    public var notes: [String]

    public init(inUse: [UpstreamTarget] = [], leftOut: [LeftOutTarget] = [], notes: [String] = []) {
        self.inUse = inUse
        self.leftOut = leftOut
        self.notes = notes
    }

    /// The addresses queries are sent to, in order.
    public var endpoints: [SocketEndpoint] { inUse.map(\.endpoint) }
}

/// A FORWARD rule's targets after the guard (O6).
public struct RuleUpstreams: Sendable, Equatable {
    public var vpcID: String
    public var ruleID: String
    public var domain: DNSName
    public var targets: UpstreamSet
    public init(vpcID: String, ruleID: String, domain: DNSName, targets: UpstreamSet) {
        self.vpcID = vpcID
        self.ruleID = ruleID
        self.domain = domain
        self.targets = targets
    }
}

/// Every upstream address actually in use, `system` expanded, and every one left out (O6).
/// Built once per load by VPCDNSConfig's `UpstreamReview`; `serve` forwards to `inUse` only,
/// `check`, `explain` and the startup lines print it.
public struct UpstreamPlan: Sendable, Equatable {
    public var defaults: UpstreamSet
    public var rules: [RuleUpstreams]

    public init(defaults: UpstreamSet, rules: [RuleUpstreams] = []) {
        self.defaults = defaults
        self.rules = rules
    }

    public func rule(vpcID: String, ruleID: String) -> UpstreamSet? {
        rules.first { $0.vpcID == vpcID && $0.ruleID == ruleID }?.targets
    }

    /// The set behind a decision's targets (the defaults, or the rule's).
    public func set(for targets: UpstreamTargets, vpcID: String?) -> UpstreamSet? {
        switch targets {
        case .defaults: return defaults
        case .rule(let id, _): return rules.first { $0.ruleID == id && (vpcID == nil || $0.vpcID == vpcID) }?.targets
        }
    }

    /// The model with each FORWARD rule's targets reduced to those in use, so that decisions
    /// (and the upstream cache key, P5) name only addresses queries are really sent to.
    public func applied(to model: Model) -> Model {
        var m = model
        for v in m.vpcs.indices {
            for r in m.vpcs[v].resolverRules.indices where m.vpcs[v].resolverRules[r].kind == .forward {
                if let set = rule(vpcID: m.vpcs[v].id, ruleID: m.vpcs[v].resolverRules[r].id) {
                    m.vpcs[v].resolverRules[r].targets = set.endpoints
                }
            }
        }
        return m
    }
}

/// O6's configuration-level guard: which upstream targets are vpcdns itself. Pure: the
/// listeners and this host's addresses are passed in (the shell enumerates them with
/// getifaddrs).
public struct UpstreamGuard: Sendable {
    /// Every address vpcdns listens on (`listen` or `--listen`, resolver addresses, inbound
    /// endpoint addresses, and once bound, the real ports of port-0 listeners).
    public var listeners: [SocketEndpoint]
    /// This host's addresses. Loopback (127.0.0.0/8, ::1) counts as local whether listed or not.
    public var localAddresses: Set<IPAddress>

    public init(listeners: [SocketEndpoint], localAddresses: some Sequence<IPAddress>) {
        self.listeners = listeners
        self.localAddresses = Set(localAddresses)
    }

    static let loopback4 = IPPrefix("127.0.0.0/8")!
    static let unspecified4 = IPAddress.v4(0)
    static let unspecified6 = IPAddress.v6(0)
    static let loopback6 = IPAddress.v6(1)

    /// True for addresses that reach this host: its own, all of 127.0.0.0/8, ::1, and the
    /// unspecified addresses (which the kernel sends to this host).
    public func isLocal(_ ip: IPAddress) -> Bool {
        if localAddresses.contains(ip) { return true }
        switch ip {
        case .v4: return Self.loopback4.contains(ip) || ip == Self.unspecified4
        case .v6: return ip == Self.loopback6 || ip == Self.unspecified6 || mappedV4(ip).map(isLocal) == true
        }
    }

    /// `::ffff:a.b.c.d` as `a.b.c.d`.
    func mappedV4(_ ip: IPAddress) -> IPAddress? {
        guard case .v6(let v) = ip, v >> 32 == 0xFFFF else { return nil }
        return .v4(UInt32(truncatingIfNeeded: v))
    }

    /// Nil when `target` may be used; otherwise why not.
    public func reason(for target: SocketEndpoint) -> LeftOutReason? {
        // Sending to 0.0.0.0 or :: reaches this host's loopback.
        let ip: IPAddress = target.ip == Self.unspecified4 ? .v4(0x7F00_0001) : target.ip == Self.unspecified6 ? Self.loopback6 : target.ip
        if let l = listeners.first(where: { $0.port == target.port && ($0.ip == ip || $0.ip == target.ip) }) {
            return .ownListener(l)
        }
        guard isLocal(ip) else { return nil }
        for l in listeners where l.port == target.port {
            switch l.ip {
            // 0.0.0.0 takes IPv4 (and IPv4-mapped) destinations of this host.
            case Self.unspecified4 where ip.isIPv4 || mappedV4(ip) != nil: return .wildcardListener(l)
            // :: takes IPv6 and, dual-stack by default on Linux, IPv4 destinations too.
            case Self.unspecified6: return .wildcardListener(l)
            default: continue
            }
        }
        return nil
    }

    /// Splits targets into those in use and those left out, keeping their order.
    public func review(_ targets: [UpstreamTarget], notes: [String] = []) -> UpstreamSet {
        var set = UpstreamSet(notes: notes)
        for t in targets {
            if let why = reason(for: t.endpoint) {
                set.leftOut.append(LeftOutTarget(target: t, reason: why))
            } else if !set.inUse.contains(where: { $0.endpoint == t.endpoint }) {
                set.inUse.append(t)
            }
        }
        return set
    }
}

/// O6's run-time guard, the pure part: the names of loop probes. A probe is a query for a
/// unique random name sent to one upstream target; when that name arrives at our own
/// listeners, the target forwards back to us. The token is passed in (no randomness here).
///
/// The name is `<16 hex digits>.vpcdns-loop-probe.` — a top-level label of its own, not
/// under `.invalid` or `.test`: resolvers such as Unbound answer those themselves (RFC 6761
/// default zones), so a probe under them would never come back through a resolver that
/// loops. A resolver that does not loop gets NXDOMAIN for it from the root (cached
/// negatively by name, RFC 8198), which is all a probe costs outside.
public enum LoopProbe {
    public static let label = "vpcdns-loop-probe"
    public static let type = RRType.txt

    public static func name(token: UInt64) -> DNSName {
        let hex = String(token, radix: 16)
        return try! DNSName(String(repeating: "0", count: 16 - hex.count) + hex + "." + label)
    }

    /// The token of a probe name (any letter case), or nil when `name` is not one.
    public static func token(in name: DNSName) -> UInt64? {
        let w = name.wire
        // 16 <hex> 17 vpcdns-loop-probe 0
        guard w.count == 1 + 16 + 1 + label.utf8.count + 1, w[0] == 16, w[17] == UInt8(label.utf8.count) else { return nil }
        var i = 18
        for c in label.utf8 {
            guard asciiLower(w[i]) == c else { return nil }
            i += 1
        }
        return UInt64(String(decoding: w[1...16].map(asciiLower), as: UTF8.self), radix: 16)
    }

    /// Cheap test for the query path: is this a name under the probe label at all (then it is
    /// never forwarded, whatever its token).
    public static func isProbeName(_ name: DNSName) -> Bool {
        let w = name.wire
        let n = label.utf8.count
        guard w.count >= n + 2, w[w.count - 1] == 0, w[w.count - n - 2] == UInt8(n) else { return false }
        var i = w.count - n - 1
        for c in label.utf8 {
            guard asciiLower(w[i]) == c else { return false }
            i += 1
        }
        // The length byte found must really start the last label: walk the labels.
        var p = 0
        while p < w.count - 1 {
            if p == w.count - n - 2 { return true }
            p += Int(w[p]) + 1
        }
        return false
    }
}

extension UpstreamPlan {
    /// `{"targets":[{"address","origin","file"}], "left_out":[{…,"reason"}], "notes":[…]}`,
    /// as `check --json` and `explain --json` print a set.
    public static func json(_ set: UpstreamSet) -> JSONValue {
        func target(_ t: UpstreamTarget) -> [(String, JSONValue)] {
            switch t.origin {
            case .configured: [("address", .string(t.endpoint.description)), ("origin", .string("configured")), ("file", .null), ("key", .string(t.key))]
            case .system(let file): [("address", .string(t.endpoint.description)), ("origin", .string("system")), ("file", .string(file)), ("key", .string(t.key))]
            }
        }
        return .object([
            ("targets", .array(set.inUse.map { .object(target($0)) })),
            ("left_out", .array(set.leftOut.map { .object(target($0.target) + [("reason", .string($0.reason.description))]) })),
            ("notes", .strings(set.notes)),
        ])
    }
}
