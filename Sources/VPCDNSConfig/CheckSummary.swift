import DNSWire
import VPCDNSCore

/// What `vpcdns check` shows: per VPC how it is matched, its DNS attributes, and every
/// private name it sees with where that name comes from. Built here (not in the command)
/// so that tests can assert on it without running a process.
public struct CheckSummary: Sendable {
    /// One private name a VPC sees, and its origin.
    public struct Name: Sendable {
        public var name: String
        /// `phz`, `endpoint`, `service`, `rule`, `endpoint-name`, `ec2`, `instance`, `reverse`.
        public var source: String
        /// A one-line human description of the origin.
        public var detail: String
        /// False when the name is configured but not served (and `reason` says why).
        public var active: Bool
        public var reason: String?
        public var fields: [(String, JSONValue)]
    }

    public struct VPCEntry: Sendable {
        public var vpc: VPC
        public var names: [Name]
    }

    public let ok: Bool
    public let config: String
    public let vpcs: [VPCEntry]
    public let warnings: [Diagnostic]
    public let errors: [Diagnostic]
    /// The upstream addresses in use and left out (O6), when reviewed.
    public let upstreams: UpstreamReview?
    /// `trusted_proxies` (P9): front ends whose PROXY v2 headers name the client.
    public let trustedProxies: [IPPrefix]
    /// O8: where dnstap messages go, when configured.
    public let dnstap: DnstapSettings?
    /// O7: the sockets `serve` opens and the addresses each serves.
    public let listenPlan: ListenPlan?

    /// `review` (O6) runs on a configuration that loaded: its warnings join the others and
    /// its errors (no usable upstream) fail the check.
    public init(path: String, result: Result<LoadedConfig, ConfigErrors>, review: ((LoadedConfig) -> UpstreamReview)? = nil) {
        config = path
        switch result {
        case .success(let loaded):
            let r = review?(loaded)
            upstreams = r
            trustedProxies = loaded.model.settings.trustedProxies
            dnstap = loaded.model.settings.dnstap
            listenPlan = ListenPlan(model: loaded.model)
            ok = r?.errors.isEmpty ?? true
            vpcs = ok ? loaded.model.vpcs.map { VPCEntry(vpc: $0, names: Self.names(for: $0, in: loaded.model)) } : []
            warnings = ConfigLoader.sorted(loaded.warnings + (r?.warnings ?? []))
            errors = r?.errors ?? []
        case .failure(let e):
            ok = false
            vpcs = []
            warnings = e.warnings
            errors = e.errors
            upstreams = nil
            trustedProxies = []
            dnstap = nil
            listenPlan = nil
        }
    }

    // MARK: - Names per VPC

    static func names(for vpc: VPC, in model: Model) -> [Name] {
        let usable = vpc.privateDNSUsable
        let r2 = usable ? nil : "VPC has \(vpc.enableDNSSupport ? "enable_dns_hostnames" : "enable_dns_support"): false (R2): resolved publicly"
        var out: [Name] = []
        for z in model.hostedZones where z.vpcIDs.contains(vpc.id) {
            let owners = Set(z.records.map(\.name) + z.aliases.map(\.name))
                .map { ($0.canonicalOrderKey, $0) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }.map(\.1.text)
            out.append(Name(name: z.name.text, source: "phz",
                            detail: "private hosted zone \(z.id)" + (z.file.map { " from \($0)" } ?? "")
                                + " (\(z.records.count) records, \(z.aliases.count) aliases): \(owners.joined(separator: ", "))",
                            active: usable, reason: r2,
                            fields: [("zone_id", .string(z.id)), ("file", .optional(z.file)), ("owners", .strings(owners))]))
        }
        for e in model.endpoints where e.vpcID == vpc.id {
            out += endpointNames(e, vpc: vpc, model: model, r2: r2)
        }
        out += autodefinedNames(for: vpc, in: model, r2: r2)
        for r in vpc.resolverRules {
            let targets = r.targets.map(\.description).joined(separator: ", ")
            out.append(Name(name: r.domain.text, source: "rule",
                            detail: "resolver rule \(r.id) \(r.kind.rawValue)" + (targets.isEmpty ? "" : " to \(targets)"),
                            active: vpc.enableDNSSupport, reason: vpc.enableDNSSupport ? nil : "VPC has enable_dns_support: false",
                            fields: [("rule_id", .string(r.id)), ("type", .string(r.kind.rawValue)), ("targets", .strings(r.targets.map(\.description)))]))
        }
        return out
    }

    static func endpointNames(_ e: Endpoint, vpc: VPC, model: Model, r2: String?) -> [Name] {
        var out: [Name] = []
        let base: [(String, JSONValue)] = [("endpoint_id", .string(e.id)), ("service", .string(e.service.description))]
        func inactive() -> String? {
            if e.kind != .interface { return "\(e.kind.rawValue) endpoints change no DNS answer (R12)" }
            if !e.privateDNSEnabled { return "private_dns_enabled is false" }
            return r2
        }
        let why = inactive()
        let inboundOnly = e.privateDNSOnlyForInboundResolverEndpoint ? " (only for queries through an inbound endpoint, R7)" : ""
        if case .custom(_, let sid) = e.service {
            if let s = model.endpointService(sid), let n = s.privateDNSName {
                let reason = s.verification != .verified ? "private DNS name is \(s.verification.rawValue), not verified (R11)" : why
                out.append(Name(name: n.text, source: "service",
                                detail: "endpoint service \(sid) (\(s.verification.rawValue), \(s.aliasStyle.rawValue)) through endpoint \(e.id)",
                                active: reason == nil, reason: reason,
                                fields: base + [("service_id", .string(sid)), ("verification", .string(s.verification.rawValue)), ("alias_style", .string(s.aliasStyle.rawValue))]))
            }
        } else if e.kind == .interface {
            for n in e.privateDNSNames {
                out.append(Name(name: n.text, source: "endpoint",
                                detail: "private DNS of endpoint \(e.id) (\(e.service))" + (e.privateDNSNamesOverridden ? ", names from private_dns_names" : "") + inboundOnly,
                                active: why == nil, reason: why, fields: base))
            }
        }
        if e.kind == .interface {
            out.append(Name(name: e.regionalName.text, source: "endpoint-name", detail: "regional name of endpoint \(e.id) (\(e.service))",
                            active: true, reason: nil, fields: base + [("kind", .string("regional"))]))
            for (az, n) in e.zonalNames {
                out.append(Name(name: n.text, source: "endpoint-name", detail: "zonal name of endpoint \(e.id) in \(az)",
                                active: true, reason: nil, fields: base + [("kind", .string("zonal")), ("az", .string(az))]))
            }
        }
        return out
    }

    // MARK: - Rendering

    /// The human summary (standard output); warnings and errors go to standard error.
    public var text: String {
        guard ok else { return "" }
        var lines = ["\(config): OK, \(vpcs.count) VPC\(vpcs.count == 1 ? "" : "s"), \(warnings.count) warning\(warnings.count == 1 ? "" : "s")"]
        if let p = listenPlan {
            lines.append("")
            lines += p.summaryLines
        }
        if let u = upstreams {
            lines.append("")
            lines += u.summaryLines
        }
        if !trustedProxies.isEmpty {
            lines.append("")
            lines.append("trusted proxies (PROXY v2 names the client): \(list(trustedProxies.map(\.description)))")
        }
        if let d = dnstap {
            lines.append("")
            lines.append("dnstap to unix socket \(d.socket): identity \"\(d.identity)\", version \"\(d.version)\", messages \(d.messages.joined(separator: ", "))")
        }
        for entry in vpcs {
            let v = entry.vpc
            lines.append("")
            lines.append("VPC \(v.id)" + (v.name.map { " (\($0))" } ?? "") + " in \(v.region)")
            lines.append("  matched by:")
            lines.append("    cidrs:              \(list(v.cidrs.map(\.description)))")
            lines.append("    clients:            \(list(v.clients.map(\.description)))")
            lines.append("    resolver addresses: \(list(v.resolverAddresses.map(\.description)))")
            for ib in v.inboundEndpoints {
                lines.append("    inbound endpoint:   \(ib.id) at \(list(ib.addresses.map(\.description)))")
            }
            if !v.resolverAddresses.isEmpty || !v.inboundEndpoints.isEmpty {
                lines.append("    allowed sources:    \(v.allowedSources.isEmpty ? "any" : list(v.allowedSources.map(\.description)))")
            }
            lines.append("  dns: enable_dns_support=\(v.enableDNSSupport) enable_dns_hostnames=\(v.enableDNSHostnames)"
                         + (v.privateDNSUsable ? "" : " (private hosted zones and endpoint private DNS are NOT used)"))
            lines.append("  private names:")
            if entry.names.isEmpty { lines.append("    (none: every name goes upstream)") }
            for n in entry.names {
                let state = n.active ? "" : "  [inactive: \(n.reason ?? "")]"
                lines.append("    \(n.name)  <- \(n.source): \(n.detail)\(state)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func list(_ items: [String]) -> String { items.isEmpty ? "-" : items.joined(separator: ", ") }

    /// `{"ok":…, "config":…, "vpcs":[…], "warnings":[…], "errors":[…]}`.
    public var json: JSONValue {
        .object([
            ("ok", .bool(ok)),
            ("config", .string(config)),
            ("vpcs", .array(vpcs.map(Self.json))),
            ("warnings", .array(warnings.map(\.json))),
            ("errors", .array(errors.map(\.json))),
            ("trusted_proxies", .strings(trustedProxies.map(\.description))),
            ("listeners", listenPlan?.json ?? .null),
            ("upstreams", upstreams.map { u in
                .object([
                    ("defaults", UpstreamPlan.json(u.plan.defaults)),
                    ("rules", .array(u.plan.rules.map { r in
                        .object([("vpc_id", .string(r.vpcID)), ("rule_id", .string(r.ruleID)), ("domain", .string(r.domain.text)),
                                 ("upstreams", UpstreamPlan.json(r.targets))])
                    })),
                ])
            } ?? .null),
            ("dnstap", dnstap.map { d in
                .object([("socket", .string(d.socket)), ("identity", .string(d.identity)), ("version", .string(d.version)),
                         ("messages", .strings(d.messages))])
            } ?? .null),
        ])
    }

    static func json(_ e: VPCEntry) -> JSONValue {
        let v = e.vpc
        return .object([
            ("id", .string(v.id)), ("name", .optional(v.name)), ("region", .string(v.region)),
            ("cidrs", .strings(v.cidrs.map(\.description))), ("clients", .strings(v.clients.map(\.description))),
            ("resolver_addresses", .strings(v.resolverAddresses.map(\.description))),
            ("inbound_endpoints", .array(v.inboundEndpoints.map { .object([("id", .string($0.id)), ("addresses", .strings($0.addresses.map(\.description)))]) })),
            ("allowed_sources", v.allowedSources.isEmpty ? .null : .strings(v.allowedSources.map(\.description))),
            ("enable_dns_support", .bool(v.enableDNSSupport)), ("enable_dns_hostnames", .bool(v.enableDNSHostnames)),
            ("names", .array(e.names.map { n in
                .object([("name", .string(n.name)), ("source", .string(n.source)), ("detail", .string(n.detail)),
                         ("active", .bool(n.active)), ("reason", .optional(n.reason))] + n.fields)
            })),
        ])
    }
}
