/// P7: which records of an upstream answer a client sees, depending on its DO bit.
///
/// vpcdns asks every upstream with DO set and caches the whole answer once; what differs per
/// client is only this filter, applied when the reply is encoded. A client that set DO gets
/// every record as the upstream returned it; one that did not gets none of the DNSSEC records
/// (RFC 3225 §3, RFC 4035 §3.2.1) except those of the type it asked for (a DS or RRSIG query
/// still gets its DS or RRSIG records).
public enum DNSSECRecords {
    /// RRSIG, NSEC, NSEC3 and DS: the types left out for a client without DO.
    @inlinable
    public static func isDNSSEC(_ type: RRType) -> Bool {
        switch type.rawValue {
        case RRType.rrsig.rawValue, RRType.nsec.rawValue, RRType.nsec3.rawValue, RRType.ds.rawValue: true
        default: false
        }
    }

    /// `records` as a client without DO sees them: the DNSSEC records removed, except those of
    /// `askedType`. The same array, uncopied, when there is nothing to remove.
    public static func withoutDNSSEC(_ records: [ResourceRecord], askedType: RRType) -> [ResourceRecord] {
        guard records.contains(where: { $0.type != askedType && isDNSSEC($0.type) }) else { return records }
        return records.filter { $0.type == askedType || !isDNSSEC($0.type) }
    }

    /// The type an RRSIG covers (its rdata's first two bytes); nil for other records or a
    /// too-short rdata.
    @inlinable
    public static func typeCovered(_ r: ResourceRecord) -> RRType? {
        guard r.type == .rrsig, r.rdata.count >= 2 else { return nil }
        return RRType(UInt16(r.rdata[0]) << 8 | UInt16(r.rdata[1]))
    }

    /// The RRSIGs in `records` over the RRset (`owner`, `type`).
    public static func signatures(in records: [ResourceRecord], owner: DNSName, covering type: RRType) -> [ResourceRecord] {
        records.filter { $0.type == .rrsig && typeCovered($0) == type && $0.name == owner }
    }
}
