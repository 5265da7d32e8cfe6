import CLDNS
import DNSWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Conversions between libldns objects and DNSWire values, plus the owning wrappers that make
// every ldns allocation freed exactly once. Everything here is internal: no ldns pointer type
// leaves LDNSKit.

/// Owns one `ldns_rr` (and, since `ldns_rr_free` is deep, its owner and rdata fields).
final class OwnedRR {
    let pointer: UnsafeMutablePointer<ldns_rr>
    init(_ pointer: UnsafeMutablePointer<ldns_rr>) { self.pointer = pointer }
    deinit { ldns_rr_free(pointer) }
}

/// Owns the `ldns_rdf` held in a slot that ldns itself may replace.
///
/// `ldns_rr_new_frm_fp_l` takes `ldns_rdf **` for the origin and the previous owner and
/// deep-frees / replaces what is there ($ORIGIN, explicit owners); whatever sits in the slot
/// at the end is ours to free, once.
final class RDFSlot {
    var pointer: UnsafeMutablePointer<ldns_rdf>?
    init(_ pointer: UnsafeMutablePointer<ldns_rdf>?) { self.pointer = pointer }
    deinit { if let pointer { ldns_rdf_deep_free(pointer) } }

    /// A slot holding a fresh copy of `name` as an ldns DNAME rdf.
    convenience init(name: DNSName) {
        self.init(LDNS.dnameRDF(name))
    }

    func replace(with name: DNSName) {
        if let pointer { ldns_rdf_deep_free(pointer) }
        pointer = LDNS.dnameRDF(name)
    }
}

/// Why an `ldns_rr` could not become a `ResourceRecord`.
enum ConversionError: Error {
    case badOwner(String)
}

enum LDNS {
    /// A newly allocated DNAME rdf with `name`'s wire bytes (ldns copies the data).
    static func dnameRDF(_ name: DNSName) -> UnsafeMutablePointer<ldns_rdf>? {
        name.wire.withUnsafeBufferPointer { buf in
            ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, buf.count, buf.baseAddress)
        }
    }

    /// The bytes of an rdf (a copy).
    static func bytes(_ rdf: UnsafePointer<ldns_rdf>) -> [UInt8] {
        let size = ldns_rdf_size(rdf)
        guard size > 0, let data = ldns_rdf_data(rdf) else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// ldns's own text for a status (`Syntax error, could not parse the RR's rdata`).
    static func message(_ status: ldns_status) -> String {
        guard let c = ldns_get_errorstr_by_id(status) else { return "ldns error \(status.rawValue)" }
        return String(cString: c)
    }

    /// Takes a `malloc`ed C string from ldns and frees it.
    static func takeString(_ c: UnsafeMutablePointer<CChar>?) -> String? {
        guard let c else { return nil }
        defer { free(c) }
        return String(cString: c)
    }

    /// Uncompressed wire rdata: the rdfs concatenated, as `ldns_rr_rdata2buffer_wire` would,
    /// except that domain names are lower-cased.
    ///
    /// Lower-casing every DNAME field (CNAME/NS/PTR targets, MX exchange, SRV target, SOA
    /// MNAME/RNAME, ...) makes two records that differ only in the case of a target equal
    /// `ResourceRecord`s, the same way `DNSName` already folds owners (RFC 4343; RFC 4034 §6.2
    /// does the same for the canonical form). Text fields (TXT, CAA) keep their case.
    static func rdata(of rr: UnsafePointer<ldns_rr>) -> [UInt8] {
        var out: [UInt8] = []
        for i in 0..<ldns_rr_rd_count(rr) {
            guard let rdf = ldns_rr_rdf(rr, i) else { continue }
            let b = bytes(rdf)
            out.append(contentsOf: ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_DNAME ? lowerCasedName(b) : b)
        }
        return out
    }

    /// Lower-cases the label bytes of a wire name, leaving the length octets alone
    /// (a length octet of 65...90 must not be "lower-cased").
    static func lowerCasedName(_ wire: [UInt8]) -> [UInt8] {
        var out = wire
        var i = 0
        while i < out.count {
            let len = Int(out[i])
            if len == 0 || len > 63 { break }
            var j = i + 1
            while j <= i + len && j < out.count { out[j] = asciiLower(out[j]); j += 1 }
            i += len + 1
        }
        return out
    }

    /// Converts a parsed ldns record into the value type the rest of vpcdns uses.
    static func resourceRecord(_ rr: UnsafePointer<ldns_rr>) throws(ConversionError) -> ResourceRecord {
        guard let owner = ldns_rr_owner(rr) else { throw .badOwner("record without an owner") }
        let ownerName: DNSName
        do {
            // Read in place: no intermediate copy of the owner's bytes.
            let data = ldns_rdf_data(owner)
            ownerName = try DNSName(wire: UnsafeBufferPointer(start: data, count: data == nil ? 0 : ldns_rdf_size(owner)))
        } catch {
            throw .badOwner("bad owner name: \(error)")
        }
        return ResourceRecord(
            name: ownerName,
            type: RRType(UInt16(truncatingIfNeeded: ldns_rr_get_type(rr).rawValue)),
            rrClass: RRClass(UInt16(truncatingIfNeeded: ldns_rr_get_class(rr).rawValue)),
            ttl: ldns_rr_ttl(rr),
            rdata: rdata(of: rr)
        )
    }

    /// Uncompressed wire form of a whole record (owner, type, class, TTL, RDLENGTH, rdata).
    static func wire(_ r: ResourceRecord) -> [UInt8]? {
        guard r.rdata.count <= 0xFFFF else { return nil }
        var w = r.name.wire
        func u16(_ v: UInt16) { w.append(UInt8(v >> 8)); w.append(UInt8(v & 0xFF)) }
        u16(r.type.rawValue)
        u16(r.rrClass.rawValue)
        u16(UInt16(r.ttl >> 16)); u16(UInt16(r.ttl & 0xFFFF))
        u16(UInt16(r.rdata.count))
        w.append(contentsOf: r.rdata)
        return w
    }

    /// Builds an `ldns_rr` from a `ResourceRecord` through its wire form; nil when ldns
    /// cannot read the rdata as the record's type (the caller falls back to RFC 3597 text).
    static func ldnsRR(_ r: ResourceRecord) -> OwnedRR? {
        guard let w = wire(r) else { return nil }
        var rr: UnsafeMutablePointer<ldns_rr>? = nil
        var pos = 0
        let status = w.withUnsafeBufferPointer { buf in
            ldns_wire2rr(&rr, buf.baseAddress, buf.count, &pos, LDNS_SECTION_ANSWER)
        }
        guard status == LDNS_STATUS_OK, let rr else { return nil }
        let owned = OwnedRR(rr)
        // ldns parses the rdata according to the type; if it did not consume exactly the rdata
        // (e.g. trailing bytes) its text would not describe what we hold.
        guard pos == w.count, r.rdata.count == ldnsRdataLength(rr) else { return nil }
        return owned
    }

    private static func ldnsRdataLength(_ rr: UnsafePointer<ldns_rr>) -> Int {
        var n = 0
        for i in 0..<ldns_rr_rd_count(rr) { if let rdf = ldns_rr_rdf(rr, i) { n += ldns_rdf_size(rdf) } }
        return n
    }

    /// RFC 3597 generic rdata text: `\# 4 0a000001`.
    static func genericRdata(_ rdata: [UInt8]) -> String {
        let hexDigits = Array("0123456789abcdef")
        let hex = String(rdata.flatMap { [hexDigits[Int($0 >> 4)], hexDigits[Int($0 & 0xF)]] })
        return rdata.isEmpty ? "\\# 0" : "\\# \(rdata.count) \(hex)"
    }
}
