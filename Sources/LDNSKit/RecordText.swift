import CLDNS
import DNSWire

/// A Route 53 record value that ldns could not read.
public struct RecordTextError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Presentation format <-> wire rdata for single records, through ldns's RR parser and printer.
public enum RecordText {
    /// Rdata in presentation format for one value of a Route 53 record set (`10.0.0.1`,
    /// `10 mail.example.com.`, `"v=spf1 -all"`, `0 issue "amazon.com"`) -> uncompressed wire
    /// rdata. Relative names in rdata are relative to `origin` (pass `.root` for Route 53's
    /// "every name is absolute"). Domain names in the rdata are lower-cased, as in zone files.
    public static func rdata(type: RRType, text: String, origin: DNSName) throws(RecordTextError) -> [UInt8] {
        let value = text.trimmingSpaces
        guard !value.isEmpty else { throw RecordTextError(message: "empty \(type) value") }
        guard !value.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0 }) else {
            throw RecordTextError(message: "a \(type) value must be a single line")
        }
        // ldns reads `"abc` (no closing quote) as the string abc; a zone file may not.
        let bytes = Array(value.utf8)
        guard ZoneText(bytes).significantSpan(0..<bytes.count)?.openQuote == nil else {
            throw RecordTextError(message: "bad \(type) value \"\(value)\": unterminated quoted string (no closing \")")
        }
        guard !type.isMeta else {
            throw RecordTextError(message: "\(type) is not a record type that can hold data")
        }
        let originSlot = RDFSlot(name: origin)
        guard let mnemonic = LDNS.takeString(ldns_rr_type2str(ldns_rr_type(rawValue: UInt32(type.rawValue)))) else {
            throw RecordTextError(message: "cannot name type \(type)")
        }
        // A whole RR line around the value: ldns's RR parser knows every rdata format.
        let line = "\(origin.description) 0 IN \(mnemonic) \(value)"
        var rr: UnsafeMutablePointer<ldns_rr>? = nil
        let status = line.withCString { ldns_rr_new_frm_str(&rr, $0, 0, originSlot.pointer, nil) }
        let owned = rr.map(OwnedRR.init)
        guard status == LDNS_STATUS_OK, let owned else {
            throw RecordTextError(message: "bad \(type) value \"\(value)\": \(LDNS.message(status))")
        }
        let parsedType = UInt16(truncatingIfNeeded: ldns_rr_get_type(owned.pointer).rawValue)
        guard parsedType == type.rawValue else {
            throw RecordTextError(message: "bad \(type) value \"\(value)\": read as type \(RRType(parsedType))")
        }
        return LDNS.rdata(of: owned.pointer)
    }

    /// Full presentation line of a record as ldns prints it
    /// (`www.example.com.\t300\tIN\tA\t10.0.0.1`), for `check` / `explain` output.
    /// Rdata ldns cannot read as the record's type is shown in RFC 3597 form (`\# 3 0a0000`).
    public static func presentation(_ rr: ResourceRecord) -> String {
        if let owned = LDNS.ldnsRR(rr), var s = LDNS.takeString(ldns_rr2str(owned.pointer)) {
            while s.last == "\n" { s.removeLast() }
            return s
        }
        return "\(rr.name)\t\(rr.ttl)\t\(rr.rrClass)\t\(rr.type)\t\(LDNS.genericRdata(rr.rdata))"
    }

    /// Just the rdata in presentation form (`10 mail.example.com.`): ldns's text for each
    /// field, separated by single spaces, as in its full line.
    public static func rdataPresentation(_ rr: ResourceRecord) -> String {
        guard let owned = LDNS.ldnsRR(rr) else { return LDNS.genericRdata(rr.rdata) }
        var fields: [String] = []
        for i in 0..<ldns_rr_rd_count(owned.pointer) {
            guard let rdf = ldns_rr_rdf(owned.pointer, i) else { continue }
            fields.append(LDNS.takeString(ldns_rdf2str(rdf)) ?? "")
        }
        return fields.joined(separator: " ")
    }
}

extension String {
    /// Without leading and trailing blanks (no Foundation needed).
    var trimmingSpaces: String {
        let u = Array(utf8)
        guard let a = u.firstIndex(where: { !ZoneText.isSpace($0) }),
              let b = u.lastIndex(where: { !ZoneText.isSpace($0) }) else { return "" }
        return String(decoding: u[a...b], as: UTF8.self)
    }
}
