/// One resource record as data: owner, type, class, TTL and uncompressed wire rdata.
///
/// Names inside rdata (CNAME, NS, MX, SRV, PTR, SOA targets) are stored uncompressed, so a
/// record can be copied into any message; the encoder may compress the well-known ones.
public struct ResourceRecord: Hashable, Sendable {
    public var name: DNSName
    public var type: RRType
    public var rrClass: RRClass
    public var ttl: UInt32
    public var rdata: [UInt8]

    public init(name: DNSName, type: RRType, rrClass: RRClass = .in, ttl: UInt32, rdata: [UInt8]) {
        self.name = name
        self.type = type
        self.rrClass = rrClass
        self.ttl = ttl
        self.rdata = rdata
    }

    /// An A record from four octets.
    public static func a(_ name: DNSName, _ octets: [UInt8], ttl: UInt32) -> ResourceRecord {
        ResourceRecord(name: name, type: .a, ttl: ttl, rdata: octets)
    }

    /// The single domain name that makes up the rdata of CNAME, NS, PTR (and DNAME).
    public var targetName: DNSName? {
        switch type {
        case .cname, .ns, .ptr, RRType(39):
            return try? DNSName(wire: rdata)
        default:
            return nil
        }
    }

    /// The SOA MINIMUM field (RFC 2308 negative TTL), nil for other types.
    public var soaMinimum: UInt32? {
        guard type == .soa, rdata.count >= 20 else { return nil }
        let b = rdata[(rdata.count - 4)...]
        return b.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Copy with another owner (wildcard synthesis, alias answers).
    public func renamed(_ owner: DNSName) -> ResourceRecord {
        var r = self
        r.name = owner
        return r
    }

    public func withTTL(_ t: UInt32) -> ResourceRecord {
        var r = self
        r.ttl = t
        return r
    }
}
