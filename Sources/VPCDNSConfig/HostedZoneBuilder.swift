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
        for (n, p) in reader.sequence(m["records"], at: "\(path).records") {
            recordSet(n, p, zone: name, records: &records, origins: &origins, aliases: &aliases, aliasOrigins: &aliasOrigins)
        }
        var zone = HostedZone(id: id, name: name, vpcIDs: vpcItems.map(\.0), records: records, aliases: aliases,
                              hasOwnSOA: false, file: resolvedFile)
        var parsed = ParsedZone(zone: zone, path: path, origins: origins, aliasOrigins: aliasOrigins, vpcPaths: vpcItems.map(\.1))
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
}
