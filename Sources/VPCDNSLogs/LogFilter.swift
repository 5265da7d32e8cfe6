/// `*` and `?` glob over DNS names, case-insensitive, with or without the trailing dot on
/// either side (`*.example.com` matches `www.Example.COM.`).
public struct NameGlob: Sendable {
    let pattern: [UInt8]

    public init(_ pattern: String) {
        self.pattern = NameGlob.normalise(pattern)
    }

    static func normalise(_ s: String) -> [UInt8] {
        var b = Array(s.utf8).map { ($0 >= 65 && $0 <= 90) ? $0 | 0x20 : $0 }
        if b.count > 1, b.last == UInt8(ascii: ".") { b.removeLast() }
        return b
    }

    public func matches(_ name: String) -> Bool {
        let n = NameGlob.normalise(name)
        let star = UInt8(ascii: "*"), q = UInt8(ascii: "?")
        var p = 0, s = 0
        var starP = -1, starS = 0
        while s < n.count {
            if p < pattern.count && (pattern[p] == q || pattern[p] == n[s]) {
                p += 1; s += 1
            } else if p < pattern.count && pattern[p] == star {
                starP = p; starS = s; p += 1
            } else if starP >= 0 {
                p = starP + 1; starS += 1; s = starS
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == star { p += 1 }
        return p == pattern.count
    }
}

/// What `--vpc`, `--since`, `--until`, `--name`, `--rcode` and `--decision` select.
public struct LogFilter: Sendable {
    public var vpcID: String?
    public var sinceMicros: Int64?
    public var untilMicros: Int64?
    public var name: NameGlob?
    public var rcode: String?
    public var decision: String?

    public init(vpcID: String? = nil, sinceMicros: Int64? = nil, untilMicros: Int64? = nil, name: NameGlob? = nil,
                rcode: String? = nil, decision: String? = nil) {
        self.vpcID = vpcID
        self.sinceMicros = sinceMicros
        self.untilMicros = untilMicros
        self.name = name
        self.rcode = rcode
        self.decision = decision
    }

    /// `vpcdns.decision` values a record can carry (query-log.md); `--decision` takes only these.
    public static let decisions = [
        "private-hosted-zone", "endpoint-private-dns", "endpoint-dns-name", "service-private-dns", "ec2-instance-name",
        "reverse-dns", "forward-rule", "upstream", "refused", "bad-request",
    ]

    /// The DNS rcode mnemonics (IANA's registry, as vpcdns and Route 53 Resolver write them);
    /// `--rcode` takes only these.
    public static let rcodes = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
        "NOTZONE", "DSOTYPENI", "BADVERS", "BADKEY", "BADTIME", "BADMODE", "BADNAME", "BADALG", "BADTRUNC", "BADCOOKIE",
    ]

    /// Why `--rcode` or `--decision` cannot match anything (a typo would otherwise print
    /// nothing and look like "no such records"), naming the valid values; nil when both are valid.
    public func unknownValue() -> String? {
        if let rc = rcode, !LogFilter.rcodes.contains(where: { sameIgnoringCase($0, rc) }) {
            return "--rcode: unknown rcode '\(rc)'; expected one of \(LogFilter.rcodes.joined(separator: ", "))"
        }
        if let d = decision, !LogFilter.decisions.contains(where: { sameIgnoringCase($0, d) }) {
            return "--decision: unknown decision '\(d)'; expected one of \(LogFilter.decisions.joined(separator: ", "))"
        }
        return nil
    }

    /// `--since` is inclusive, `--until` exclusive. A record without a vpcdns decision (AWS's)
    /// never matches a `decision` filter.
    public func matches(_ r: LogRecord) -> Bool {
        if let v = vpcID, !sameIgnoringCase(r.vpcID, v) { return false }
        if let s = sinceMicros, r.timeMicros < s { return false }
        if let u = untilMicros, r.timeMicros >= u { return false }
        if let rc = rcode, !sameIgnoringCase(r.rcode, rc) { return false }
        if let d = decision {
            guard let info = r.vpcdns, sameIgnoringCase(info.decision, d) else { return false }
        }
        if let g = name, !g.matches(r.queryName) { return false }
        return true
    }
}

func sameIgnoringCase(_ a: String, _ b: String) -> Bool {
    a.count == b.count && a.lowercased() == b.lowercased()
}
