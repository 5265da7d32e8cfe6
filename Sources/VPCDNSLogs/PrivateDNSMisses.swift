import DNSWire
import VPCDNSCore

/// A name some VPC's endpoint or private hosted zone would answer privately, answered for a
/// VPC publicly or with NXDOMAIN, and why the configuration makes it so.
public struct PrivateDNSMiss: Sendable, Equatable {
    public var vpcID: String
    /// Lower-cased, with a trailing dot.
    public var name: String
    public var type: String
    /// `public` or `NXDOMAIN`.
    public var answered: String
    public var count: Int
    /// `enable_dns_hostnames=false`, `private_dns_enabled=false`, `inbound-only`,
    /// `not-verified`, `zone X belongs to VPC Y`, ...
    public var reason: String
    /// True when the query came through an inbound endpoint.
    public var inbound: Bool
}

/// Finds the private DNS misses in a stream of records, against a configuration.
///
/// A record counts when its name lies in a private zone of the config (a PHZ, an endpoint's or
/// a service's private DNS name; the endpoint-specific `vpce.amazonaws.com` names are public by
/// design and do not count) and it was answered publicly (vpcdns decision `upstream` or
/// `forward-rule` with NOERROR; for an AWS record, NOERROR answers none of which is an address
/// the config's private zones hold) or with NXDOMAIN. The reason comes from running the
/// decision engine as that VPC.
public final class PrivateDNSMisses {
    struct Key: Hashable {
        var vpc: String
        var name: String
        var type: String
        var inbound: Bool
        var answered: String
    }

    public let model: Model
    let resolver: Resolver
    /// Private zones that count (no endpoint names), most specific apex first.
    let zones: [ZoneData]
    /// Every A/AAAA address in any private zone (endpoint names included), as text.
    let privateAddresses: Set<String>
    var covered: [String: Bool] = [:]
    var counts: [Key: Int] = [:]
    var order: [Key] = []

    public init(model: Model) {
        self.model = model
        resolver = Resolver(model: model)
        zones = resolver.zoneSet.zones.filter {
            if case .endpointName = $0.origin { false } else { true }
        }.sorted { $0.apex.labelCount > $1.apex.labelCount }
        var addrs = Set<String>()
        for z in resolver.zoneSet.zones {
            for rr in z.allRecords where rr.type == .a || rr.type == .aaaa {
                if let ip = IPAddress(bytes: rr.rdata) { addrs.insert(ip.description) }
            }
        }
        privateAddresses = addrs
    }

    func isCovered(_ key: String) -> Bool {
        if let c = covered[key] { return c }
        let c: Bool
        if let n = try? DNSName(key) { c = zones.contains { n.isSubdomain(of: $0.apex) } } else { c = false }
        covered[key] = c
        return c
    }

    /// Whether an AWS record's answers are the private ones (an address a private zone holds,
    /// or a CNAME into the endpoint names).
    func answersArePrivate(_ r: LogRecord) -> Bool {
        for a in r.answers {
            let t = a.type.uppercased()
            if t == "A" || t == "AAAA" {
                if let ip = IPAddress(a.rdata), privateAddresses.contains(ip.description) { return true }
            } else if t == "CNAME" {
                let target = a.rdata.lowercased()
                if target.hasSuffix(".vpce.amazonaws.com.") || target.hasSuffix(".vpce.amazonaws.com") { return true }
            }
        }
        return false
    }

    public func add(_ r: LogRecord) {
        guard r.vpcID != "-", r.queryName != "-" else { return }
        let rcode = r.rcode.uppercased()
        let answered: String
        if let info = r.vpcdns {
            if info.decision == "refused" || info.decision == "bad-request" { return }
            if rcode == "NXDOMAIN" {
                answered = "NXDOMAIN"
            } else if rcode == "NOERROR" && LogSummary.forwardedDecisions.contains(info.decision) {
                answered = "public"
            } else {
                return
            }
        } else {
            if rcode == "NXDOMAIN" {
                answered = "NXDOMAIN"
            } else if rcode == "NOERROR" && !r.answers.isEmpty && !answersArePrivate(r) {
                answered = "public"
            } else {
                return
            }
        }
        let name = r.nameKey
        guard isCovered(name) else { return }
        let key = Key(vpc: r.vpcID, name: name, type: r.queryType.uppercased(), inbound: r.viaInboundEndpoint, answered: answered)
        if counts[key] == nil { order.append(key) }
        counts[key, default: 0] += 1
    }

    /// The misses, most frequent first.
    public func results() -> [PrivateDNSMiss] {
        order.map { k in
            PrivateDNSMiss(vpcID: k.vpc, name: k.name, type: k.type, answered: k.answered, count: counts[k]!,
                           reason: reason(vpc: k.vpc, name: k.name, type: k.type, inbound: k.inbound), inbound: k.inbound)
        }.sorted {
            ($0.count, $1.vpcID, $1.name, $1.type) > ($1.count, $0.vpcID, $0.name, $0.type)
        }
    }

    /// Why the config answers `name` publicly (or NXDOMAIN) for `vpc`.
    public func reason(vpc: String, name: String, type: String, inbound: Bool) -> String {
        guard let v = model.vpcs.firstIndex(where: { $0.id == vpc }) else { return "VPC \(vpc) is not in the config" }
        guard let n = try? DNSName(name) else { return "-" }
        let q = Question(name: n, type: RRType(mnemonic: type) ?? .a)
        let d = resolver.resolve(q, vpcIndex: v, via: inbound ? .inboundEndpoint : .source, explain: true)
        if let r = d.reason { return r.description }
        switch d.kind {
        case .forwardRule:
            return "forward rule \(d.zoneID ?? "?") for \(d.zone?.text ?? "?") is the most specific match (R1)"
        case .privateHostedZone, .endpointPrivateDNS, .servicePrivateDNS, .endpointDNSName, .ec2InstanceName, .reverseDNS:
            if case .answer(let a) = d.outcome, a.rcode == .nxDomain {
                return "no such name in private zone \(d.zone?.text ?? "?") (\(d.zoneID ?? "?"))"
            }
            return "answered privately by \(d.zone?.text ?? "?") (\(d.zoneID ?? "?")) with this config"
        case .refused, .badRequest:
            return d.kind.rawValue
        case .upstream:
            break
        }
        // Private data that matches but belongs to other VPCs (R14): say whose.
        var owners: [(apex: DNSName, vpcs: [String])] = []
        for z in zones where n.isSubdomain(of: z.apex) {
            let ids = ownerVPCs(z).filter { $0 != vpc }
            guard !ids.isEmpty else { continue }
            if let i = owners.firstIndex(where: { $0.apex == z.apex }) {
                for id in ids where !owners[i].vpcs.contains(id) { owners[i].vpcs.append(id) }
            } else {
                owners.append((z.apex, ids))
            }
        }
        if let o = owners.first {
            return "zone \(o.apex.text) belongs to VPC\(o.vpcs.count > 1 ? "s" : "") \(o.vpcs.joined(separator: ", "))"
        }
        return d.notes.first ?? "-"
    }

    func ownerVPCs(_ z: ZoneData) -> [String] {
        switch z.origin {
        case .hostedZone(let id): return model.hostedZones.first { $0.id == id }?.vpcIDs ?? []
        case .endpointPrivateDNS(let ep), .servicePrivateDNS(_, let ep):
            return model.endpoints.first { $0.id == ep }.map { [$0.vpcID] } ?? []
        case .endpointName, .autodefined: return []
        }
    }
}
