import DNSWire
import LDNSKit
import VPCDNSCore
import Yams

/// Where one record of a hosted zone came from: a zone-file line or a `records:` entry.
struct RecordOrigin: Equatable {
    var file: String
    var line: Int
    var key: String

    var place: String { "\(file):\(line)" }
}

/// A hosted zone with, parallel to `zone.records` and `zone.aliases`, where each came from.
struct ParsedZone {
    var zone: HostedZone
    var path: String
    var origins: [RecordOrigin]
    var aliasOrigins: [RecordOrigin]
    var vpcPaths: [String]
    /// Parallel to `zone.routedSets`: where each came from (R18).
    var routedOrigins: [RecordOrigin] = []
}

/// Reads one `hosted_zones:` entry: its zone file (through LDNSKit) and its `records:`,
/// then applies the PHZ rules that need only the zone itself (config.md, aws-reference §6).
struct HostedZoneBuilder {
    let reader: YAMLReader
    let configPath: String
    /// Zone files already parsed, by resolved path and origin (see `ZoneFilePreloader`).
    var preloaded: [ZoneFilePreloader.Key: Result<[ZoneFileRecord], ZoneFileError>] = [:]

    /// Types Route 53 accepts in a record set (aws-reference.md §6).
    static let route53Types: Set<RRType> = [.a, .aaaa, .caa, .cname, .ds, .mx, .naptr, .ns, .ptr, .soa, .spf, .srv, .txt]

    func zone(_ node: Node, _ path: String) -> ParsedZone? {
        guard let m = reader.mapping(node, at: path, allowed: Keys.zone) else { return nil }
        let nameText = reader.require(reader.string(m["name"], at: "\(path).name"), m["name"], at: "\(path).name")
        let name = nameText.flatMap { domainNameChecked($0, at: "\(path).name", wildcard: false, reader: reader) }
        var id = name.map { Self.defaultID(for: $0) }
        if let given = reader.string(m["id"], at: "\(path).id") {
            if IDFormat.isHostedZoneID(given) { id = given } else {
                reader.error("\(path).id", "'\(given)' is not a hosted zone id (Z followed by 13 to 21 uppercase letters and digits)")
            }
        }
        if m["vpcs"] == nil { reader.error("\(path).vpcs", "required key is missing", line: node.line) }
        let vpcItems = (reader.strings(m["vpcs"], at: "\(path).vpcs") ?? []).filter { text, p in
            if IDFormat.isVPCID(text) { return true }
            reader.error(p, badID(text, "a VPC id", "vpc-"))
            return false
        }
        if m["vpcs"] != nil, vpcItems.isEmpty, !reader.errors.contains(where: { $0.key.hasPrefix("\(path).vpcs") }) {
            reader.error("\(path).vpcs", "a private hosted zone needs at least one associated VPC")
        }
        let fileText = reader.string(m["file"], at: "\(path).file")
        guard let name, let id else { return nil }

        var records: [ResourceRecord] = []
        var origins: [RecordOrigin] = []
        var resolvedFile: String? = nil
        if let fileText {
            let resolved = Paths.resolve(fileText, relativeTo: configPath)
            resolvedFile = resolved
            loadFile(resolved, zone: name, key: "\(path).file", into: &records, &origins)
        }
        var aliases: [AliasRecord] = []
        var aliasOrigins: [RecordOrigin] = []
        var routed: [RoutedRecordSet] = []
        var routedOrigins: [RecordOrigin] = []
        for (n, p) in reader.sequence(m["records"], at: "\(path).records") {
            if Self.routingKeys.contains(where: { n.resolved[$0] != nil }) {
                if let set = routedSet(n, p, zone: name) {
                    routed.append(set)
                    routedOrigins.append(RecordOrigin(file: reader.file, line: n.line, key: p))
                }
                continue
            }
            recordSet(n, p, zone: name, records: &records, origins: &origins, aliases: &aliases, aliasOrigins: &aliasOrigins)
        }
        var zone = HostedZone(id: id, name: name, vpcIDs: vpcItems.map(\.0), records: records, aliases: aliases,
                              hasOwnSOA: false, file: resolvedFile)
        zone.routedSets = routed
        var parsed = ParsedZone(zone: zone, path: path, origins: origins, aliasOrigins: aliasOrigins, vpcPaths: vpcItems.map(\.1),
                                routedOrigins: routedOrigins)
        checkRoutingGroups(parsed)
        ZoneRules(reader: reader).apply(&parsed)
        zone = parsed.zone
        return parsed
    }

    /// `Z` + the first 20 characters of the uppercase hex SHA-256 of the lowercase zone name
    /// without its trailing dot (config.md): stable across runs, so logs keep their zone ids.
    static func defaultID(for name: DNSName) -> String {
        "Z" + SHA256.hex(name.text.lowercased()).uppercased().prefix(20)
    }

    private func loadFile(_ file: String, zone: DNSName, key: String, into records: inout [ResourceRecord], _ origins: inout [RecordOrigin]) {
        do {
            let loaded = try (preloaded[ZoneFilePreloader.Key(path: file, origin: zone)] ?? Result { () throws(ZoneFileError) in
                try ZoneFile.load(path: file, origin: zone)
            }).get()
            for r in loaded {
                let origin = RecordOrigin(file: file, line: r.line, key: key)
                guard r.record.name.isSubdomain(of: zone) else {
                    reader.append(Diagnostic(file: file, line: r.line, key: key, message: "\(r.record.name.text) is outside the zone \(zone.text)"))
                    continue
                }
                guard Self.route53Types.contains(r.record.type) else {
                    reader.append(Diagnostic(file: file, line: r.line, key: key, message: "record type \(r.record.type) is not supported in a private hosted zone"))
                    continue
                }
                records.append(r.record)
                origins.append(origin)
            }
        } catch {
            if error.line == 0 {
                // The file could not be opened: say so at the config's `file:` line.
                reader.error(key, "\(error.path): \(error.message)")
            } else {
                reader.append(Diagnostic(file: error.path, line: error.line, key: key, message: error.message))
            }
        }
    }

    /// One `records:` entry: a plain record set (`values`, `ttl`) or an `alias`.
    private func recordSet(_ node: Node, _ p: String, zone: DNSName, records: inout [ResourceRecord], origins: inout [RecordOrigin],
                           aliases: inout [AliasRecord], aliasOrigins: inout [RecordOrigin]) {
        guard let m = reader.mapping(node, at: p, allowed: Keys.record) else { return }
        let name = reader.require(reader.string(m["name"], at: "\(p).name"), m["name"], at: "\(p).name")
            .flatMap { domainNameChecked($0, at: "\(p).name", wildcard: true, reader: reader) }
        if let name, !name.isSubdomain(of: zone) {
            reader.error("\(p).name", "\(name.text) is outside the zone \(zone.text)")
        }
        var type: RRType? = nil
        if let t = reader.require(reader.string(m["type"], at: "\(p).type"), m["type"], at: "\(p).type") {
            type = RRType(mnemonic: t)
            if type == nil || !Self.route53Types.contains(type!) {
                reader.error("\(p).type", "'\(t)' is not a record type Route 53 supports (\(Self.route53Types.map(\.description).sorted().joined(separator: ", ")))")
                type = nil
            }
        }
        let origin = RecordOrigin(file: reader.file, line: node.line, key: p)
        if let aliasNode = m["alias"] {
            if m["values"] != nil { reader.error("\(p).values", "alias and values are exclusive (an alias answers its target's records)") }
            if m["ttl"] != nil { reader.error("\(p).ttl", "alias records have no TTL of their own (they use the target's)") }
            guard let target = aliasTarget(aliasNode, at: "\(p).alias"), let name, let type, name.isSubdomain(of: zone) else { return }
            if type == .soa || type == .ns || type == .cname {
                reader.error("\(p).type", "an alias record cannot have type \(type)")
                return
            }
            aliases.append(AliasRecord(name: name, type: type, target: target))
            aliasOrigins.append(origin)
            return
        }
        let ttl = reader.int(m["ttl"], at: "\(p).ttl", range: 0...2_147_483_647).map(UInt32.init) ?? 300
        if m["values"] == nil { reader.error("\(p).values", "required key is missing (or give an alias)", line: node.line) }
        let values = reader.strings(m["values"], at: "\(p).values") ?? []
        if m["values"] != nil, values.isEmpty { reader.error("\(p).values", "a record set needs at least one value") }
        guard let name, let type, name.isSubdomain(of: zone) else { return }
        if type == .cname, values.count > 1 { reader.error("\(p).values", "a CNAME record set has exactly one value") }
        for (text, vp) in values {
            do {
                let rdata = try RecordText.rdata(type: type, text: text, origin: zone)
                records.append(ResourceRecord(name: name, type: type, ttl: ttl, rdata: rdata))
                origins.append(RecordOrigin(file: reader.file, line: reader.line(vp), key: p))
            } catch {
                reader.error(vp, "'\(text)' is not valid \(type) data: \(error.message)")
            }
        }
    }

    private func aliasTarget(_ node: Node, at p: String) -> AliasRecord.Target? {
        guard let m = reader.mapping(node, at: p, allowed: Keys.alias) else { return nil }
        guard m.count == 1, let (key, value) = m.first else {
            if m.count > 1 { reader.error(p, "an alias has exactly one target: endpoint, dns_name or record") } else { reader.error(p, "an alias needs a target: endpoint, dns_name or record") }
            return nil
        }
        guard let text = reader.string(value, at: "\(p).\(key)") else { return nil }
        switch key {
        case "endpoint":
            guard IDFormat.isEndpointID(text) else { reader.error("\(p).endpoint", badID(text, "a VPC endpoint id", "vpce-")); return nil }
            return .endpoint(text)
        case "dns_name":
            return domainNameChecked(text, at: "\(p).dns_name", wildcard: false, reader: reader).map { .dnsName($0) }
        default:
            return domainNameChecked(text, at: "\(p).record", wildcard: true, reader: reader).map { .record($0) }
        }
    }

    // MARK: - R18 routing policies

    /// Keys that make a `records:` entry a routed set (the group checks report which are missing).
    static let routingKeys = ["set_identifier", "weight", "failover", "multivalue_answer", "health_check", "evaluate_target_health"]

    /// One `records:` entry with a routing policy: `set_identifier` and exactly one of
    /// `weight`, `failover`, `multivalue_answer: true`; values or an alias.
    private func routedSet(_ node: Node, _ p: String, zone: DNSName) -> RoutedRecordSet? {
        guard let m = reader.mapping(node, at: p, allowed: Keys.record) else { return nil }
        let name = reader.require(reader.string(m["name"], at: "\(p).name"), m["name"], at: "\(p).name")
            .flatMap { domainNameChecked($0, at: "\(p).name", wildcard: true, reader: reader) }
        if let name, !name.isSubdomain(of: zone) { reader.error("\(p).name", "\(name.text) is outside the zone \(zone.text)") }
        if let name, name.isWildcard { reader.error("\(p).name", "routing policies on wildcard names are not supported by vpcdns") }
        var type: RRType? = nil
        if let t = reader.require(reader.string(m["type"], at: "\(p).type"), m["type"], at: "\(p).type") {
            type = RRType(mnemonic: t)
            if type == nil || !Self.route53Types.contains(type!) || type == .soa || type == .ns {
                reader.error("\(p).type", "'\(t)' is not a record type a routing policy can serve")
                type = nil
            }
        }
        var ident = reader.string(m["set_identifier"], at: "\(p).set_identifier")
        if m["set_identifier"] == nil {
            reader.error("\(p).set_identifier", "required key is missing (weight, failover, multivalue_answer, health_check and "
                         + "evaluate_target_health belong to a routing-policy set, which needs a set_identifier)", line: node.line)
        } else if let i = ident, i.isEmpty || i.count > 128 {
            reader.error("\(p).set_identifier", "a set_identifier has 1 to 128 characters")
            ident = nil
        }
        var policies: [RoutedRecordSet.Policy] = []
        if m["weight"] != nil, let w = reader.int(m["weight"], at: "\(p).weight", range: 0...255) { policies.append(.weighted(UInt8(w))) }
        if m["failover"] != nil, let f = reader.choice(m["failover"], at: "\(p).failover", RoutedRecordSet.FailoverRole.self,
                                                       choices: [.primary, .secondary]) {
            policies.append(.failover(f))
        }
        if let mv = reader.bool(m["multivalue_answer"], at: "\(p).multivalue_answer") {
            if mv { policies.append(.multivalue) } else { reader.error("\(p).multivalue_answer", "only true makes sense (leave the key out otherwise)") }
        }
        let given = ["weight", "failover", "multivalue_answer"].filter { m[$0] != nil }
        if given.count > 1 {
            reader.error("\(p).\(given[1])", "a record set has one routing policy: \(given.joined(separator: " and ")) are exclusive")
        } else if given.isEmpty, m["set_identifier"] != nil {
            reader.error("\(p).set_identifier", "a set_identifier needs a routing policy: weight (0-255), failover (PRIMARY or SECONDARY) or multivalue_answer: true", line: node.line)
        }
        let healthCheck = reader.string(m["health_check"], at: "\(p).health_check")
        let evaluate = reader.bool(m["evaluate_target_health"], at: "\(p).evaluate_target_health") ?? false
        var records: [ResourceRecord] = []
        var alias: AliasRecord.Target? = nil
        if let aliasNode = m["alias"] {
            if m["values"] != nil { reader.error("\(p).values", "alias and values are exclusive (an alias answers its target's records)") }
            if m["ttl"] != nil { reader.error("\(p).ttl", "alias records have no TTL of their own (they use the target's)") }
            alias = aliasTarget(aliasNode, at: "\(p).alias")
            if case .record = alias, evaluate {
                reader.error("\(p).evaluate_target_health", "evaluate_target_health needs an alias to an endpoint (endpoint or dns_name)")
            }
            if policies.first == .multivalue { reader.error("\(p).alias", "a multivalue set has values, not an alias (as in Route 53)") }
        } else {
            if evaluate { reader.error("\(p).evaluate_target_health", "evaluate_target_health needs an alias to an endpoint (endpoint or dns_name)") }
            let ttl = reader.int(m["ttl"], at: "\(p).ttl", range: 0...2_147_483_647).map(UInt32.init) ?? 300
            if m["values"] == nil { reader.error("\(p).values", "required key is missing (or give an alias)", line: node.line) }
            let values = reader.strings(m["values"], at: "\(p).values") ?? []
            if m["values"] != nil, values.isEmpty { reader.error("\(p).values", "a record set needs at least one value") }
            if let type, type == .cname, values.count > 1 { reader.error("\(p).values", "a CNAME record set has exactly one value") }
            if policies.first == .multivalue, values.count > 1 { reader.error("\(p).values", "a multivalue set has exactly one value (one value per set)") }
            if let name, let type {
                for (text, vp) in values {
                    do {
                        records.append(ResourceRecord(name: name, type: type, ttl: ttl, rdata: try RecordText.rdata(type: type, text: text, origin: zone)))
                    } catch {
                        reader.error(vp, "'\(text)' is not valid \(type) data: \(error.message)")
                    }
                }
            }
        }
        guard let name, let type, let ident, let policy = policies.first, given.count == 1, name.isSubdomain(of: zone), !name.isWildcard else { return nil }
        if alias != nil, type == .cname { reader.error("\(p).type", "an alias record cannot have type CNAME"); return nil }
        return RoutedRecordSet(name: name, type: type, setIdentifier: ident, policy: policy, records: records, alias: alias,
                               healthCheck: healthCheck, evaluateTargetHealth: evaluate)
    }

    /// R18: one policy per group, unique set identifiers, no plain set of the same name and
    /// type, one PRIMARY and one SECONDARY at most.
    private func checkRoutingGroups(_ z: ParsedZone) {
        let sets = z.zone.routedSets
        guard !sets.isEmpty else { return }
        struct Key: Hashable { let name: DNSName; let type: RRType }
        var plain: [Key: RecordOrigin] = [:]
        for (i, r) in z.zone.records.enumerated() where plain[Key(name: r.name, type: r.type)] == nil { plain[Key(name: r.name, type: r.type)] = z.origins[i] }
        for (i, a) in z.zone.aliases.enumerated() where plain[Key(name: a.name, type: a.type)] == nil { plain[Key(name: a.name, type: a.type)] = z.aliasOrigins[i] }
        var first: [Key: Int] = [:]
        var idents: [Key: [String: Int]] = [:]
        var roles: [Key: [RoutedRecordSet.FailoverRole: Int]] = [:]
        for (i, s) in sets.enumerated() {
            let k = Key(name: s.name, type: s.type)
            let o = z.routedOrigins[i]
            if let p = plain[k] {
                reader.error("\(o.key).set_identifier", "\(s.name.text) \(s.type) is also a plain record set (at \(p.place)); "
                             + "a name and type is either one plain set or a routing-policy group")
            }
            if let f = first[k], sets[f].policy.kind != s.policy.kind {
                let fo = z.routedOrigins[f]
                reader.error("\(o.key).set_identifier", "\(s.name.text) \(s.type) mixes routing policies: \(s.policy.kind) here, "
                             + "\(sets[f].policy.kind) at \(fo.place); one group has one policy")
            } else if first[k] == nil { first[k] = i }
            if let dup = idents[k]?[s.setIdentifier] {
                reader.error("\(o.key).set_identifier", "set_identifier '\(s.setIdentifier)' is already used for \(s.name.text) \(s.type) "
                             + "(at \(z.routedOrigins[dup].place)); it is unique within the name and type")
            } else { idents[k, default: [:]][s.setIdentifier] = i }
            if case .failover(let role) = s.policy {
                if let dup = roles[k]?[role] {
                    reader.error("\(o.key).failover", "a second \(role.rawValue) set for \(s.name.text) \(s.type) (first at \(z.routedOrigins[dup].place))")
                } else { roles[k, default: [:]][role] = i }
            }
        }
    }
}
