import DNSWire
import VPCDNSCore

/// The rules a private hosted zone must follow on its own (config.md, aws-reference §6):
/// one SOA at the apex, no delegation, CNAME alone at its name, one definition per record
/// set, alias-to-record targets that exist. Also adds AWS's placeholder SOA/NS.
struct ZoneRules {
    let reader: YAMLReader

    func apply(_ z: inout ParsedZone) {
        checkSOAAndNS(&z)
        addPlaceholders(&z)
        // One list of record sets and one map of first definitions serve all three checks
        // (a zone may hold a million records: each extra pass was seconds at that size).
        let all = entries(z)
        let firstDefinitions = checkRecordSets(all)
        checkCNAMEs(z, all)
        checkRecordAliases(z, sets: firstDefinitions)
    }

    private func diag(_ o: RecordOrigin, _ message: String) {
        reader.append(Diagnostic(file: o.file, line: o.line, key: o.key, message: message))
    }

    private func checkSOAAndNS(_ z: inout ParsedZone) {
        let apex = z.zone.name
        var firstSOA: RecordOrigin? = nil
        var keep: [Int] = []
        for (i, r) in z.zone.records.enumerated() {
            let o = z.origins[i]
            if r.type == .soa {
                if r.name != apex { diag(o, "SOA record at \(r.name.text) is not at the zone apex \(apex.text)"); continue }
                if let f = firstSOA { diag(o, "a second SOA record for \(apex.text) (first at \(f.place))"); continue }
                firstSOA = o
            }
            if r.type == .ns, r.name != apex {
                diag(o, "NS record at \(r.name.text) below the apex: private hosted zones cannot delegate subdomains")
                continue
            }
            keep.append(i)
        }
        if keep.count != z.zone.records.count {
            z.zone.records = keep.map { z.zone.records[$0] }
            z.origins = keep.map { z.origins[$0] }
        }
        z.zone.hasOwnSOA = firstSOA != nil
    }

    /// A zone without its own SOA gets AWS's private-zone SOA, and a zone without apex NS
    /// the four placeholder NS records, so negative answers and `NS` queries look like AWS.
    private func addPlaceholders(_ z: inout ParsedZone) {
        let apex = z.zone.name
        let here = RecordOrigin(file: reader.file, line: reader.line(z.path), key: z.path)
        if !z.zone.hasOwnSOA {
            z.zone.records.insert(PrivateZoneDefaults.soa(apex: apex), at: 0)
            z.origins.insert(here, at: 0)
        }
        if !z.zone.records.contains(where: { $0.type == .ns && $0.name == apex }) {
            let ns = PrivateZoneDefaults.ns(apex: apex)
            z.zone.records.insert(contentsOf: ns, at: 1)
            z.origins.insert(contentsOf: Array(repeating: here, count: ns.count), at: 1)
        }
    }

    private struct SetKey: Hashable { let name: DNSName; let type: RRType }

    /// All record sets with where they were first defined (plain records and aliases).
    private func entries(_ z: ParsedZone) -> [(SetKey, RecordOrigin, isAlias: Bool)] {
        var out: [(SetKey, RecordOrigin, isAlias: Bool)] = []
        out.reserveCapacity(z.zone.records.count + z.zone.aliases.count)
        for (i, r) in z.zone.records.enumerated() { out.append((SetKey(name: r.name, type: r.type), z.origins[i], false)) }
        for (i, a) in z.zone.aliases.enumerated() { out.append((SetKey(name: a.name, type: a.type), z.aliasOrigins[i], true)) }
        return out
    }

    /// A record set is defined in one place: the zone file or one `records:` entry.
    /// Returns where each record set was first defined.
    private func checkRecordSets(_ entries: [(SetKey, RecordOrigin, isAlias: Bool)]) -> [SetKey: RecordOrigin] {
        var first = [SetKey: RecordOrigin](minimumCapacity: entries.count)
        var reported: Set<String> = []
        for (key, origin, _) in entries {
            guard let f = first[key] else { first[key] = origin; continue }
            if f.key != origin.key || f.file != origin.file, reported.insert(origin.key + "|\(key.name)|\(key.type)").inserted {
                diag(origin, "record set \(key.name.text) \(key.type) is already defined at \(f.place)")
            }
        }
        return first
    }

    /// RFC 1034 §3.6.2: a name with a CNAME has no other data.
    private func checkCNAMEs(_ z: ParsedZone, _ entries: [(SetKey, RecordOrigin, isAlias: Bool)]) {
        // Only names that have a CNAME are gathered: few, in a zone of mostly address records.
        let cnameNames = Set(entries.lazy.filter { $0.0.type == .cname }.map { $0.0.name })
        guard !cnameNames.isEmpty else { return }
        var byName: [DNSName: [(SetKey, RecordOrigin)]] = [:]
        for (key, origin, _) in entries where cnameNames.contains(key.name) { byName[key.name, default: []].append((key, origin)) }
        for (name, items) in byName where items.contains(where: { $0.0.type == .cname }) {
            let sorted = items.sorted { ($0.1.file, $0.1.line) < ($1.1.file, $1.1.line) }
            let cnames = sorted.filter { $0.0.type == .cname }
            if cnames.count > 1 {
                diag(cnames[1].1, "a second CNAME at \(name.text) (first at \(cnames[0].1.place)); a name has at most one CNAME")
            }
            let others = sorted.filter { $0.0.type != .cname }
            guard let other = others.first else { continue }
            let cname = cnames[0]
            let types = Set(others.map { $0.0.type.description }).sorted().joined(separator: ", ")
            // Report at the later of the two (same file), else at the CNAME itself.
            if cname.1.file != other.1.file || cname.1.line >= other.1.line || other.1.key == z.path {
                diag(cname.1, "CNAME at \(name.text) beside other data (\(types) at \(other.1.place)); a CNAME must be the only record at its name")
            } else {
                diag(other.1, "\(types) at \(name.text) beside a CNAME (at \(cname.1.place)); a CNAME must be the only record at its name")
            }
        }
    }

    /// `alias: {record: NAME}` must name a record set of this zone with the alias's type.
    private func checkRecordAliases(_ z: ParsedZone, sets: [SetKey: RecordOrigin]) {
        for (i, a) in z.zone.aliases.enumerated() {
            guard case .record(let target) = a.target else { continue }
            let key = "\(z.aliasOrigins[i].key).alias.record"
            if target == a.name {
                reader.error(key, "an alias cannot point at itself")
            } else if sets[SetKey(name: target, type: a.type)] == nil {
                reader.error(key, "no \(a.type) record \(target.text) in zone \(z.zone.name.text) for this alias to point at")
            }
        }
    }
}
