import VPCDNSCore

/// O6 for one loaded configuration on this host: `system` expanded, every target that is
/// vpcdns itself left out (with a warning naming it and why), and an error when the default
/// upstreams or a FORWARD rule keep no usable target. `check`, `explain` and `serve` (at
/// start and on every reload) all build it the same way.
public struct UpstreamReview: Sendable {
    public let plan: UpstreamPlan
    public let warnings: [Diagnostic]
    public let errors: [Diagnostic]

    /// `listeners`: every address served (see `listeners(of:override:)`), bound ports included
    /// once known; `localAddresses`: this host's addresses (getifaddrs, in the shell);
    /// `system`: how `system` expands, asked only when the configuration uses it.
    public init(loaded: LoadedConfig, listeners: [SocketEndpoint], localAddresses: [IPAddress],
                system: () -> SystemUpstreams = { SystemUpstreams.expand() }) {
        let model = loaded.model
        let guardian = UpstreamGuard(listeners: listeners, localAddresses: localAddresses)
        var warnings: [Diagnostic] = []
        var errors: [Diagnostic] = []
        func diagnose(_ set: UpstreamSet, key: String, what: String) {
            for l in set.leftOut {
                warnings.append(Diagnostic(file: loaded.path, line: loaded.line(of: l.target.key), key: l.target.key,
                                           message: "upstream \(l) (O6)", isWarning: true))
            }
            if set.inUse.isEmpty {
                var why = set.leftOut.map(\.description) + set.notes
                if why.isEmpty { why = ["no address given"] }
                errors.append(Diagnostic(file: loaded.path, line: loaded.line(of: key), key: key,
                                         message: "no usable upstream remains for \(what): " + why.joined(separator: "; ") + " (O6)"))
            }
        }

        var defaults: [UpstreamTarget] = []
        var notes: [String] = []
        var expanded: SystemUpstreams? = nil
        for (i, spec) in model.settings.upstreams.enumerated() {
            let key = "upstreams[\(i)]"
            switch spec {
            case .address(let a):
                defaults.append(UpstreamTarget(endpoint: a, key: key))
            case .system:
                let s = expanded ?? system()
                expanded = s
                if let e = s.error {
                    errors.append(Diagnostic(file: loaded.path, line: loaded.line(of: key), key: key, message: "system: \(e)"))
                }
                notes += s.notes.filter { !notes.contains($0) }
                defaults += s.nameservers.map { UpstreamTarget(endpoint: $0, origin: .system(file: s.file), key: key) }
            }
        }
        let defaultSet = guardian.review(defaults, notes: notes)
        diagnose(defaultSet, key: "upstreams", what: "the default upstreams (R9)")

        var rules: [RuleUpstreams] = []
        for (v, vpc) in model.vpcs.enumerated() {
            for (r, rule) in vpc.resolverRules.enumerated() where rule.kind == .forward {
                let base = "vpcs[\(v)].resolver_rules[\(r)].targets"
                let set = guardian.review(rule.targets.enumerated().map { UpstreamTarget(endpoint: $1, key: "\(base)[\($0)]") })
                diagnose(set, key: base, what: "FORWARD rule \(rule.id) (\(rule.domain.text)) of \(vpc.id)")
                rules.append(RuleUpstreams(vpcID: vpc.id, ruleID: rule.id, domain: rule.domain, targets: set))
            }
        }
        // O7: an address covered by a wildcard binds nothing, so no bind error says when it is
        // not this host's: queries to it never arrive here. Only when the host's addresses are
        // known (an empty list means getifaddrs failed).
        if !localAddresses.isEmpty {
            var keys: [SocketEndpoint: String] = [:]
            for (e, key) in ListenPlan.addresses(of: model, override: nil) where keys[e] == nil { keys[e] = key }
            for e in ListenPlan(addresses: listeners.map { ($0, keys[$0] ?? "--listen") }).entries
            where !e.opensSocket && !guardian.isLocal(e.address.ip) {
                warnings.append(Diagnostic(file: loaded.path, line: loaded.line(of: e.key), key: e.key,
                                           message: "\(e.address) is covered by the wildcard \(e.socket) but is not an address of this host: no query sent to it reaches vpcdns here (O7)",
                                           isWarning: true))
            }
        }
        plan = UpstreamPlan(defaults: defaultSet, rules: rules)
        self.warnings = warnings
        self.errors = errors
    }

    /// Every address served: `listen` (or `--listen`), each VPC's resolver addresses and
    /// inbound endpoint addresses, without duplicates, in configuration order. Addresses
    /// covered by a wildcard socket are listed too: they are still vpcdns (O7, `ListenPlan`).
    public static func listeners(of model: Model, override: [SocketEndpoint]?) -> [SocketEndpoint] {
        ListenPlan(model: model, override: override).addresses
    }

    /// The lines `serve` prints at start (and `check` in its summary): the addresses in use,
    /// `system` expanded with its file, and each one left out.
    public var summaryLines: [String] {
        var lines: [String] = []
        func add(_ set: UpstreamSet, _ what: String) {
            lines.append("\(what): " + (set.inUse.isEmpty ? "none usable" : set.inUse.map(\.description).joined(separator: ", ")))
            for n in set.notes { lines.append("  note: \(n)") }
            for l in set.leftOut { lines.append("  left out: \(l.target): \(l.reason)") }
        }
        add(plan.defaults, "upstreams")
        for r in plan.rules { add(r.targets, "rule \(r.ruleID) (\(r.domain.text)) in \(r.vpcID) forwards to") }
        return lines
    }
}
