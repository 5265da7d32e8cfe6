import DNSWire

/// `vpcdns explain`: a `Decision` made readable, as text for a person and as JSON.
///
/// Nothing here decides anything: it only renders the value the engine returned, so what
/// `explain` prints is what `serve` does. Record text comes from a formatter passed in
/// (the CLI uses libldns's presentation format; the core stays free of it).
public struct Explanation: Sendable {
    public let decision: Decision
    public let model: Model
    public let client: IPAddress
    public let listener: SocketEndpoint
    /// The upstream addresses in use and left out (O6), when known: `system` expanded.
    public let upstreams: UpstreamPlan?

    public init(decision: Decision, model: Model, client: IPAddress, listener: SocketEndpoint, upstreams: UpstreamPlan? = nil) {
        self.decision = decision
        self.model = model
        self.client = client
        self.listener = listener
        self.upstreams = upstreams
    }

    /// The upstream set a forward decision goes to, when the plan is known.
    func upstreamSet(_ f: Forward) -> UpstreamSet? {
        upstreams?.set(for: f.targets, vpcID: decision.view.vpcID)
    }

    /// What a person should read first: the answer in one sentence, then why.
    public var findings: [String] {
        var out: [String] = []
        let d = decision
        if let r = d.reason { out.append(Explanation.describe(r, decision: d, model: model)) }
        if d.kind == .upstream, d.reason == nil, d.view.vpcIndex != nil {
            if let sys = d.zoneID {
                out.append("SYSTEM rule \(sys) (\(d.zone?.text ?? "?")) keeps the name with the VPC resolver, and no private zone of the VPC holds it: "
                           + "public resolution through the configured upstreams (R1, R9)")
            } else {
                out.append("no private hosted zone, endpoint private DNS name or resolver rule of \(d.view.vpcID ?? "-") matches \(d.question.name.text): "
                           + "forwarded to the configured upstreams (R9)")
            }
        }
        if d.kind == .forwardRule, let overridden = d.candidates.first(where: { !$0.won && $0.inactiveReason == nil && $0.kind != .forwardRule && $0.kind != .systemRule }) {
            out.append("FORWARD rule \(d.zoneID ?? "?") (\(d.zone?.text ?? "?")) wins over \(overridden.kind.rawValue) \(overridden.domain.text) (\(overridden.id)): "
                       + "on a tie or a more specific match a FORWARD rule overrides private zones (R1)")
        }
        if d.kind == .privateHostedZone, case .answer(let a) = d.outcome, a.answer.isEmpty, let zone = d.zone {
            let what = a.rcode == .nxDomain ? "does not exist in" : "has no \(d.question.type) record in"
            out.append("\(d.question.name.text) \(what) private hosted zone \(zone.text) (\(d.zoneID ?? "?")); public DNS is never consulted "
                       + "for names inside a private zone, so this private zone shadows any public record of that name (R3)")
        }
        out += d.notes
        return out
    }

    public static func describe(_ r: Reason, decision d: Decision, model: Model) -> String {
        let vpc = d.view.vpcID ?? "-"
        switch r {
        case .dnsSupportOff: return "enable_dns_support is false in \(vpc): the VPC has no working resolver, every query is REFUSED (V4)"
        case .hostnamesOff:
            return "a private zone matches, but enable_dns_hostnames is false in \(vpc): private hosted zones and endpoint private DNS "
                + "are used only with both enable_dns_support and enable_dns_hostnames true, so the name goes to public DNS (R2)"
        case .privateDNSOff:
            return "an interface endpoint of \(vpc) serves this service, but its private_dns_enabled is false: the name resolves publicly (R5)"
        case .inboundOnly:
            return "the S3 interface endpoint has private_dns_only_for_inbound_resolver_endpoint: clients inside the VPC get the public answer "
                + "(their traffic takes the gateway endpoint); only queries through an inbound endpoint get the private addresses (R7)"
        case .notVerified:
            return "the endpoint service's private DNS name is not verified: it is not served to consumers until verification is 'verified' (R11)"
        case .noVPCMatch:
            return "no VPC claims \(d.view.matchedPrefix?.description ?? "this client address") and no default_vpc is set: REFUSED (V3, not an open resolver)"
        case .ambiguousVPC:
            return "the prefix \(d.view.matchedPrefix?.description ?? "?") is claimed by \(d.view.ambiguousWith.joined(separator: " and ")); on a shared listener "
                + "vpcdns cannot tell which VPC asks: REFUSED (V2). Query a VPC's own resolver address instead"
        case .upstreamTimeout: return "no upstream answered within upstream_timeout_ms (P6)"
        case .upstreamError: return "every upstream refused, failed or answered with an error (P6)"
        case .cnameLoop: return "the CNAME chain loops: SERVFAIL (R15)"
        case .cnameChain: return "the CNAME chain is longer than 8 records: SERVFAIL (R15)"
        case .forwardingLoop: return "every upstream target forwards back to vpcdns (or is vpcdns itself): SERVFAIL, not forwarded again (O6)"
        case .primaryUnhealthy:
            return "the failover group's PRIMARY set \(d.routing.flatMap { r in r.group.members.first { $0.policy == .failover(.primary) }?.setIdentifier } ?? "?") "
                + "is unhealthy: the SECONDARY is served (R18)"
        case .badPacket(let k): return "bad request (\(k.rawValue)): answered with an error code (P4)"
        }
    }

    func viaText() -> String {
        let v = decision.view
        switch v.via {
        case .source: return "\(client) matches \(v.matchedPrefix?.description ?? "?") (V2)"
        case .resolverAddress: return "the query reached \(listener), a resolver address of this VPC (V1)"
        case .inboundEndpoint: return "the query reached \(listener), inbound endpoint \(v.inboundEndpointID ?? "?") (V1)"
        case .defaultVPC: return "no VPC claims \(client); default_vpc applies (V3)"
        case .none: return "no VPC chosen"
        }
    }

    func outcomeText(_ format: (ResourceRecord) -> String) -> [String] {
        switch decision.outcome {
        case .refused:
            return ["REFUSED"]
        case .answer(let a):
            var lines = ["\(a.rcode)\(a.authoritative ? ", authoritative (aa)" : "")"]
            lines += a.answer.map { "  " + format($0) }
            if !a.authority.isEmpty {
                lines.append("authority:")
                lines += a.authority.map { "  " + format($0) }
            }
            return lines
        case .forward(let f):
            var lines: [String] = []
            let targets: String
            let set = upstreamSet(f)
            let inUse = set.map { $0.inUse.isEmpty ? ["none usable"] : $0.inUse.map(\.description) }
            switch f.targets {
            case .defaults:
                targets = "upstream " + (inUse ?? model.settings.upstreams.map(\.description)).joined(separator: ", ") + " (R9)"
            case .rule(let id, let t): targets = "FORWARD rule \(id) targets " + (inUse ?? t.map(\.description)).joined(separator: ", ") + " (R4)"
            }
            if !f.chain.isEmpty {
                lines.append("local CNAME chain, then \(f.question.name.text) is asked of the upstream (R15):")
                lines += f.chain.map { "  " + format($0) }
            }
            lines.append("forwarded to \(targets)")
            for n in set?.notes ?? [] { lines.append("  note: \(n)") }
            for l in set?.leftOut ?? [] { lines.append("  left out (O6): \(l.target): \(l.reason)") }
            return lines
        }
    }

    /// R18: every set of the group, its weight or role, its health, which was chosen and why.
    func routingText(_ r: RoutingChoice) -> [String] {
        var lines = ["routing    \(r.group.policyName) group \(r.group.name.text) \(r.group.type): \(r.why) (R18)"]
        for (i, m) in r.group.members.enumerated() {
            let chosen = r.chosen.contains(i)
            lines.append("  \(chosen ? "*" : "-") \(m.setIdentifier)  \(Explanation.roleText(m.policy))  \(healthText(m, healthy: r.healthy[i]))\(chosen ? "  [CHOSEN]" : "")")
        }
        return lines
    }

    static func roleText(_ p: RoutedRecordSet.Policy) -> String {
        switch p {
        case .weighted(let w): "weight \(w)"
        case .failover(let role): role.rawValue
        case .multivalue: "multivalue"
        }
    }

    func healthText(_ m: RoutingGroup.Member, healthy: Bool) -> String {
        var what: [String] = []
        if let c = m.check, c < model.healthChecks.count { what.append("check \(model.healthChecks[c].id)") }
        if m.evaluatesTarget { what.append("target health") }
        if what.isEmpty { return "healthy (no health check)" }
        return (healthy ? "healthy" : "unhealthy") + " (" + what.joined(separator: ", ") + ")"
    }

    /// The report for a person.
    public func text(format: (ResourceRecord) -> String) -> String {
        let d = decision
        var lines: [String] = []
        lines.append("question   \(d.question.name) \(d.question.type) \(d.question.rrClass)")
        lines.append("client     \(client) -> listener \(listener)")
        if let id = d.view.vpcID {
            let vpc = model.vpc(id)
            lines.append("vpc        \(id)\(vpc?.name.map { " (\($0))" } ?? "") in \(d.view.region ?? "-")")
        } else {
            lines.append("vpc        none")
        }
        lines.append("via        \(d.view.via.rawValue): \(viaText())")
        for c in d.checks { lines.append("check      \(c.name)=\(c.value) (\(c.rule))\(c.ok ? "" : "  <-- not met")") }
        if d.candidates.isEmpty {
            if d.view.vpcIndex != nil && d.view.refusal == nil { lines.append("candidates none: no private zone or resolver rule of this VPC matches the name") }
        } else {
            lines.append("candidates (most specific first):")
            for c in d.candidates {
                var status = c.won ? "WINS" : ""
                if let r = c.inactiveReason { status = "inactive: \(r)" }
                if let n = c.note { status += status.isEmpty ? n : "; \(n)" }
                lines.append("  \(c.won ? "*" : "-") \(c.domain.text)  \(c.kind.rawValue) \(c.id)\(status.isEmpty ? "" : "  [\(status)]")")
            }
        }
        var decisionLine = "decision   \(d.kind.rawValue)"
        if let z = d.zone { decisionLine += ", zone \(z.text)" }
        if let id = d.zoneID { decisionLine += " (\(id))" }
        if let r = d.reason { decisionLine += ", reason \(r)" }
        lines.append(decisionLine)
        if let r = d.routing { lines += routingText(r) }
        let outcome = outcomeText(format)
        lines.append("answer     " + outcome[0])
        lines += outcome.dropFirst()
        let f = findings
        if !f.isEmpty {
            lines.append("why:")
            lines += f.map { "  - " + $0 }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The same report as one JSON object.
    public func json(format: (ResourceRecord) -> String, rdata: (ResourceRecord) -> String) -> JSONValue {
        let d = decision
        func rr(_ r: ResourceRecord) -> JSONValue {
            .object([("name", .string(r.name.description)), ("ttl", .int(Int(r.ttl))), ("class", .string(r.rrClass.description)),
                     ("type", .string(r.type.description)), ("rdata", .string(rdata(r))), ("text", .string(format(r)))])
        }
        var outcome: [(String, JSONValue)] = []
        switch d.outcome {
        case .refused:
            outcome = [("action", .string("refuse")), ("rcode", .string("REFUSED"))]
        case .answer(let a):
            outcome = [("action", .string("answer")), ("rcode", .string(a.rcode.description)), ("aa", .bool(a.authoritative)),
                       ("answer", .array(a.answer.map(rr))), ("authority", .array(a.authority.map(rr)))]
        case .forward(let f):
            var targets: [String]
            var rule: JSONValue = .null
            switch f.targets {
            case .defaults: targets = model.settings.upstreams.map(\.description)
            case .rule(let id, let t): targets = t.map(\.description); rule = .string(id)
            }
            let set = upstreamSet(f)
            if let set { targets = set.endpoints.map(\.description) }
            outcome = [("action", .string("forward")), ("name", .string(f.question.name.description)),
                       ("targets", .array(targets.map { .string($0) })), ("rule", rule), ("chain", .array(f.chain.map(rr)))]
            if let set {
                outcome += [("upstreams", UpstreamPlan.json(set))]
            }
        }
        return .object([
            ("question", .object([("name", .string(d.question.name.description)), ("type", .string(d.question.type.description)),
                                  ("class", .string(d.question.rrClass.description))])),
            ("client", .string(client.description)),
            ("listener", .string(listener.description)),
            ("vpc", .object([("id", .str(d.view.vpcID)), ("name", .str(d.view.vpcID.flatMap { model.vpc($0)?.name })),
                             ("region", .str(d.view.region)), ("via", .string(d.view.via.rawValue)),
                             ("inbound_endpoint", .str(d.view.inboundEndpointID)),
                             ("matched_prefix", .str(d.view.matchedPrefix?.description)),
                             ("explanation", .string(viaText()))])),
            ("checks", .array(d.checks.map { .object([("rule", .string($0.rule)), ("name", .string($0.name)), ("value", .string($0.value)), ("ok", .bool($0.ok))]) })),
            ("candidates", .array(d.candidates.map { c in
                .object([("domain", .string(c.domain.text)), ("kind", .string(c.kind.rawValue)), ("id", .string(c.id)),
                         ("active", .bool(c.inactiveReason == nil)), ("inactive_reason", .str(c.inactiveReason?.description)),
                         ("won", .bool(c.won)), ("note", .str(c.note))])
            })),
            ("decision", .string(d.kind.rawValue)),
            ("zone", .str(d.zone?.text)),
            ("zone_id", .str(d.zoneID)),
            ("reason", .str(d.reason?.description)),
            ("outcome", .object(outcome)),
            ("routing", d.routing.map { r in
                .object([("policy", .string(r.group.policyName)), ("name", .string(r.group.name.text)), ("type", .string(r.group.type.description)),
                         ("record_set", .string(r.recordSet)), ("why", .string(r.why)),
                         ("sets", .array(r.group.members.enumerated().map { i, m in
                             var o: [(String, JSONValue)] = [("set_identifier", .string(m.setIdentifier))]
                             switch m.policy {
                             case .weighted(let w): o.append(("weight", .int(Int(w))))
                             case .failover(let role): o.append(("failover", .string(role.rawValue)))
                             case .multivalue: o.append(("multivalue_answer", .bool(true)))
                             }
                             o += [("health_check", .str(m.check.flatMap { $0 < model.healthChecks.count ? model.healthChecks[$0].id : nil })),
                                   ("evaluate_target_health", .bool(m.evaluatesTarget)),
                                   ("healthy", .bool(r.healthy[i])), ("chosen", .bool(r.chosen.contains(i)))]
                             return .object(o)
                         }))])
            } ?? .null),
            ("links", .array(d.links.map { l in
                .object([("name", .string(l.name.text)), ("decision", .string(l.kind.rawValue)), ("zone", .str(l.zone?.text)),
                         ("zone_id", .str(l.zoneID)), ("local", .bool(l.local))])
            })),
            ("findings", .array(findings.map { .string($0) })),
        ])
    }
}
