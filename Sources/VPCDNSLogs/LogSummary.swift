import VPCDNSCore

/// A name and how often it was asked.
public struct NameCount: Sendable, Equatable {
    public var name: String
    public var count: Int
    public init(name: String, count: Int) {
        self.name = name
        self.count = count
    }
}

/// Latency percentiles from `vpcdns.latency_us` (nearest rank), in microseconds.
public struct LatencyPercentiles: Sendable, Equatable {
    public var count: Int
    public var p50: Int64
    public var p90: Int64
    public var p99: Int64
    public var max: Int64

    init?(_ values: [Int64]) {
        guard !values.isEmpty else { return nil }
        let v = values.sorted()
        func rank(_ p: Double) -> Int64 {
            let i = Int((p / 100 * Double(v.count)).rounded(.up)) - 1
            return v[Swift.max(0, Swift.min(v.count - 1, i))]
        }
        count = v.count
        p50 = rank(50); p90 = rank(90); p99 = rank(99); max = v[v.count - 1]
    }
}

/// One VPC's part of `logs summary`.
public struct VPCSummary: Sendable {
    public var vpcID: String
    public var region: String?
    public var queries: Int
    public var first: String?
    public var last: String?
    /// Rcode -> count, most frequent first.
    public var rcodes: [(rcode: String, count: Int)]
    /// From `vpcdns.decision`: answered from private data (PHZ, endpoint or service private
    /// DNS, endpoint names), forwarded (upstream, forward rules), other (refused, bad request),
    /// unknown (AWS records, which carry no decision).
    public var privateAnswers: Int
    public var forwarded: Int
    public var other: Int
    public var unknown: Int
    public var topNames: [NameCount]
    public var topNXDOMAIN: [NameCount]
    public var topSERVFAIL: [NameCount]
    public var latency: LatencyPercentiles?
}

/// Aggregates records for `logs summary`; with a model, also finds the private DNS misses.
public final class LogSummary {
    final class Stats {
        var region: String?
        var queries = 0
        var first: (Int64, String)?
        var last: (Int64, String)?
        var rcodes: [String: Int] = [:]
        var priv = 0, fwd = 0, other = 0, unknown = 0
        var names: [String: Int] = [:]
        var nx: [String: Int] = [:]
        var servfail: [String: Int] = [:]
        var latencies: [Int64] = []
    }

    static let privateDecisions: Set<String> = ["private-hosted-zone", "endpoint-private-dns", "endpoint-dns-name", "service-private-dns"]
    static let forwardedDecisions: Set<String> = ["upstream", "forward-rule"]

    var stats: [String: Stats] = [:]
    public let misses: PrivateDNSMisses?
    public let top: Int

    public init(model: Model? = nil, top: Int = 10) {
        self.misses = model.map { PrivateDNSMisses(model: $0) }
        self.top = top
    }

    public func add(_ r: LogRecord) {
        let s: Stats
        if let x = stats[r.vpcID] { s = x } else { s = Stats(); stats[r.vpcID] = s }
        if s.region == nil, let reg = r.region, reg != "-" { s.region = reg }
        s.queries += 1
        if s.first == nil || r.timeMicros < s.first!.0 { s.first = (r.timeMicros, r.queryTimestamp) }
        if s.last == nil || r.timeMicros > s.last!.0 { s.last = (r.timeMicros, r.queryTimestamp) }
        let rcode = r.rcode.uppercased()
        s.rcodes[rcode, default: 0] += 1
        if let d = r.vpcdns?.decision {
            if LogSummary.privateDecisions.contains(d) { s.priv += 1 } else if LogSummary.forwardedDecisions.contains(d) { s.fwd += 1 } else { s.other += 1 }
        } else {
            s.unknown += 1
        }
        let key = r.nameKey
        s.names[key, default: 0] += 1
        if rcode == "NXDOMAIN" { s.nx[key, default: 0] += 1 }
        if rcode == "SERVFAIL" { s.servfail[key, default: 0] += 1 }
        if let l = r.vpcdns?.latencyMicros { s.latencies.append(l) }
        misses?.add(r)
    }

    func topOf(_ d: [String: Int]) -> [NameCount] {
        d.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(top).map { NameCount(name: $0.key, count: $0.value) }
    }

    /// One entry per VPC, by VPC id (`-`, the unmatched queries, included).
    public var vpcs: [VPCSummary] {
        stats.sorted { $0.key < $1.key }.map { id, s in
            VPCSummary(vpcID: id, region: s.region, queries: s.queries, first: s.first?.1, last: s.last?.1,
                       rcodes: s.rcodes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) },
                       privateAnswers: s.priv, forwarded: s.fwd, other: s.other, unknown: s.unknown,
                       topNames: topOf(s.names), topNXDOMAIN: topOf(s.nx), topSERVFAIL: topOf(s.servfail),
                       latency: LatencyPercentiles(s.latencies))
        }
    }

    // MARK: - Rendering

    public func json(files: [String], read: LogReadResult) -> JSONValue {
        func names(_ l: [NameCount]) -> JSONValue { .array(l.map { .object([("name", .string($0.name)), ("count", .int($0.count))]) }) }
        var out: [(String, JSONValue)] = [
            ("files", .strings(files)),
            ("records", .int(read.records)),
            ("bad_lines", .int(read.badLines)),
        ]
        out.append(("vpcs", .array(vpcs.map { v in
            var latency: JSONValue = .null
            if let l = v.latency {
                latency = .object([("count", .int(l.count)), ("p50", .int(Int(l.p50))), ("p90", .int(Int(l.p90))),
                                   ("p99", .int(Int(l.p99))), ("max", .int(Int(l.max)))])
            }
            return .object([
                ("vpc_id", .string(v.vpcID)),
                ("region", .str(v.region)),
                ("queries", .int(v.queries)),
                ("first", .str(v.first)),
                ("last", .str(v.last)),
                ("rcodes", .object(v.rcodes.map { ($0.rcode, .int($0.count)) })),
                ("answers", .object([("private", .int(v.privateAnswers)), ("forwarded", .int(v.forwarded)),
                                     ("other", .int(v.other)), ("unknown", .int(v.unknown))])),
                ("top_names", names(v.topNames)),
                ("top_nxdomain", names(v.topNXDOMAIN)),
                ("top_servfail", names(v.topSERVFAIL)),
                ("latency_us", latency),
            ])
        })))
        if let m = misses {
            out.append(("private_dns_misses", .array(m.results().map { x in
                .object([("vpc_id", .string(x.vpcID)), ("name", .string(x.name)), ("type", .string(x.type)),
                         ("answered", .string(x.answered)), ("count", .int(x.count)), ("reason", .string(x.reason))])
            })))
        }
        return .object(out)
    }

    public func text() -> String {
        var out = ""
        let list = vpcs
        if list.isEmpty { out += "no records\n" }
        for v in list {
            out += "VPC \(v.vpcID)" + (v.region.map { " (\($0))" } ?? "") + "\n"
            var t: [[String]] = [
                ["queries", String(v.queries) + (v.first.map { "  from \($0)" } ?? "") + (v.last.map { " to \($0)" } ?? "")],
                ["rcodes", v.rcodes.map { "\($0.rcode) \($0.count)" }.joined(separator: "  ")],
                ["answers", "private \(v.privateAnswers)  forwarded \(v.forwarded)  other \(v.other)  unknown \(v.unknown)"],
            ]
            if let l = v.latency {
                t.append(["latency", "p50 \(l.p50)us  p90 \(l.p90)us  p99 \(l.p99)us  max \(l.max)us  (n=\(l.count))"])
            } else {
                t.append(["latency", "-"])
            }
            out += TextTable(rows: t).render(indent: "  ")
            for (title, names) in [("top names", v.topNames), ("top NXDOMAIN names", v.topNXDOMAIN), ("top SERVFAIL names", v.topSERVFAIL)] {
                out += "  \(title):" + (names.isEmpty ? " -\n" : "\n")
                if !names.isEmpty {
                    out += TextTable(rows: names.map { [String($0.count), $0.name] }, right: [0]).render(indent: "    ")
                }
            }
            out += "\n"
        }
        if let m = misses {
            let r = m.results()
            out += "Private DNS misses (names a private zone holds, answered publicly or NXDOMAIN): " + (r.isEmpty ? "none\n" : "\(r.count)\n")
            if !r.isEmpty {
                out += TextTable(header: ["VPC", "NAME", "TYPE", "ANSWERED", "COUNT", "REASON"],
                                 rows: r.map { [$0.vpcID, $0.name, $0.type, $0.answered, String($0.count), $0.reason] },
                                 right: [4]).render(indent: "  ")
            }
        }
        return out
    }
}
