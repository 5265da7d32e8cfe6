import CLDNS
import DNSWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One record of a zone file and the 1-based line where it starts (for multi-line records,
/// the line of its first field), so later checks can point at the file.
public struct ZoneFileRecord: Sendable, Equatable {
    public let record: ResourceRecord
    public let line: Int
    public init(record: ResourceRecord, line: Int) {
        self.record = record
        self.line = line
    }
}

/// A zone file problem, reported with the zone file's own path and line (config.md).
public struct ZoneFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    /// 1-based; 0 means the whole file (it could not be read).
    public let line: Int
    public let message: String
    public init(path: String, line: Int, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }
    public var description: String { "\(path):\(line): \(message)" }
}

/// RFC 1035 master files read with libldns, record by record.
public enum ZoneFile {
    /// Parses RFC 1035 master-file text: $ORIGIN, $TTL, @, relative names, blank owner =
    /// previous owner, parenthesised multi-line records, comments; every type ldns knows.
    ///
    /// `origin` is the zone apex; it is always handed to ldns so that relative names never
    /// become `rel.`. Returns every record, SOA included, in file order, with its starting
    /// line. Owners are lower-cased (DNSName), and so are domain names inside rdata.
    /// TTLs: an explicit TTL wins; otherwise the last `$TTL`; before any `$TTL`, the last
    /// explicit TTL seen (RFC 1035), and before that `defaultTTL`.
    /// The first error stops the parse and is thrown with `path` and the record's first line.
    public static func parse(
        text: String, origin: DNSName, path: String, defaultTTL: UInt32 = 3600
    ) throws(ZoneFileError) -> [ZoneFileRecord] {
        var reader = ZoneReader(bytes: Array(text.utf8), origin: origin, path: path, defaultTTL: defaultTTL)
        return try reader.run()
    }

    /// Reads the file and parses it (origin as in `parse`). An unreadable file is an error
    /// at line 0: `cannot read zone file: <reason>`.
    public static func load(path: String, origin: DNSName) throws(ZoneFileError) -> [ZoneFileRecord] {
        let bytes: [UInt8]
        switch readFile(path) {
        case .success(let b): bytes = b
        case .failure(let reason):
            throw ZoneFileError(path: path, line: 0, message: "cannot read zone file: \(reason.text)")
        }
        var reader = ZoneReader(bytes: bytes, origin: origin, path: path, defaultTTL: 3600)
        return try reader.run()
    }

    struct ReadFailure: Error { let text: String }

    /// Whole file through POSIX calls, so the failure reason is `strerror`'s plain text
    /// ("No such file or directory", "Is a directory", "Permission denied").
    static func readFile(_ path: String) -> Result<[UInt8], ReadFailure> {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return .failure(ReadFailure(text: String(cString: strerror(errno)))) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(text: String(cString: strerror(errno))))
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return .success(out)
    }
}

/// The record-by-record reader.
///
/// `ldns_zone_new_frm_fp_l` is not used: on a failed parse it frees the zone shallowly and
/// leaks every record read before the error. Here each record from `ldns_rr_new_frm_fp_l`
/// is owned (and freed) at once, and the $ORIGIN / $TTL / previous-owner state that ldns's
/// zone reader keeps is kept here, with ldns updating the origin and previous-owner slots.
struct ZoneReader {
    let text: ZoneText
    let zone: DNSName
    let path: String
    var defaultTTL: UInt32
    var sawTTLDirective = false
    var currentOrigin: DNSName

    init(bytes: [UInt8], origin: DNSName, path: String, defaultTTL: UInt32) {
        self.text = ZoneText(bytes)
        self.zone = origin
        self.path = path
        self.defaultTTL = defaultTTL
        self.currentOrigin = origin
    }

    func fail(_ line: Int, _ message: String) -> ZoneFileError {
        ZoneFileError(path: path, line: line, message: message)
    }

    mutating func run() throws(ZoneFileError) -> [ZoneFileRecord] {
        let bytes = text.bytes
        if let nul = bytes.firstIndex(of: 0) {
            throw fail(text.line(of: nul), "the zone file contains a NUL byte")
        }
        if bytes.isEmpty { return [] }

        // fmemopen reads a private copy that outlives the FILE (freed after fclose).
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
        buffer.initialize(from: bytes, count: bytes.count)
        defer { buffer.deallocate() }
        guard let fp = fmemopen(buffer, bytes.count, "r") else {
            throw fail(0, "cannot read zone file: fmemopen: \(String(cString: strerror(errno)))")
        }
        defer { fclose(fp) }

        let originSlot = RDFSlot(name: zone)
        let previousOwner = RDFSlot(name: zone)
        var records: [ZoneFileRecord] = []

        while feof(fp) == 0 {
            let before = ftell(fp)
            var ttl = defaultTTL
            var lineNumber: Int32 = 0
            var rr: UnsafeMutablePointer<ldns_rr>? = nil
            let status = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &originSlot.pointer, &previousOwner.pointer, &lineNumber)
            // ldns hands the record over only on success; own it before anything can throw.
            let owned = rr.map(OwnedRR.init)
            let after = ftell(fp)
            // Cannot happen with fmemopen; guards the ranges below and the loop against no progress.
            guard before >= 0, after > before || feof(fp) != 0 else {
                throw fail(text.line(of: max(before, 0)), "\(LDNS.message(status)) (the zone reader stopped advancing)")
            }
            let significant = text.significantSpan(before..<after)
            let span = significant?.span
            let startLine = span.map { text.line(of: $0.lowerBound) } ?? text.line(of: max(after - 1, 0))
            if let quote = significant?.openQuote {
                // Quoted back: the line of the opening quote, up to its end.
                let line = text.line(of: quote)
                let lineEnd = line < text.lineStarts.count ? text.lineStarts[line] - 2 : bytes.count - 1
                let from = max(text.lineStarts[line - 1], span?.lowerBound ?? 0)
                throw fail(line, "unterminated quoted string (no closing \" on its line) in \"\(text.snippet(from...max(from, lineEnd)))\"")
            }

            switch status {
            case LDNS_STATUS_OK:
                guard let owned, let span else { throw fail(startLine, "ldns returned no record") }
                records.append(try record(owned, span: span, line: startLine))
            case LDNS_STATUS_SYNTAX_EMPTY:
                continue
            case LDNS_STATUS_SYNTAX_TTL:
                try ttlDirective(span, line: startLine)
            case LDNS_STATUS_SYNTAX_ORIGIN:
                try originDirective(span, slot: originSlot, line: startLine)
            case LDNS_STATUS_SYNTAX_INCLUDE:
                throw fail(startLine, "$INCLUDE is not supported")
            default:
                guard let span else { throw fail(startLine, LDNS.message(status)) }
                // ldns reads a record into a fixed buffer and fails on what it cut off.
                if span.count >= Int(LDNS_MAX_LINELEN) {
                    throw fail(startLine, "record is longer than ldns's limit of \(LDNS_MAX_LINELEN) characters")
                }
                // A clearer reason from the header fields when there is one, else ldns's text.
                if case .failure(let problem) = header(span) { throw fail(startLine, problem.text) }
                throw fail(startLine, "\(LDNS.message(status)) in \"\(text.snippet(span))\"" + spanNote(span))
            }
        }
        return records
    }

    /// " (record spans lines 4-9)" for multi-line records, so the reader knows where to look.
    func spanNote(_ span: ClosedRange<Int>) -> String {
        let a = text.line(of: span.lowerBound), b = text.line(of: span.upperBound)
        return a == b ? "" : " (record spans lines \(a)-\(b))"
    }

    struct Problem: Error { let text: String }

    /// Reads the header fields the way ldns does (`OWNER [TTL] [CLASS] TYPE`) and checks what
    /// ldns lets through. Returns the explicit TTL, if any.
    func header(_ span: ClosedRange<Int>) -> Result<UInt32?, Problem> {
        let blankOwner = text.hasBlankOwner(startingAt: span.lowerBound)
        var tokens = text.tokens(span, limit: blankOwner ? 3 : 4)[...]
        if !blankOwner, let owner = tokens.first {
            if owner.bytes.first == UInt8(ascii: "$") {
                let argument = tokens.dropFirst().first
                switch owner.description.uppercased() {
                case "$ORIGIN":
                    return .failure(Problem(text: argument.map { "bad $ORIGIN name \($0)" } ?? "$ORIGIN needs a domain name"))
                case "$TTL": return .failure(Problem(text: "$TTL needs a value"))
                default: return .failure(Problem(text: "\(owner) is not supported (only $ORIGIN and $TTL are)"))
                }
            }
            tokens.removeFirst()
        }
        var ttl: UInt32?
        if let t = tokens.first, ZoneText.startsWithDigit(t) {
            switch checkedTTL(t) {
            case .success(let v): ttl = v
            case .failure(let p): return .failure(p)
            }
            tokens.removeFirst()
        }
        if let c = tokens.first, let value = rrClass(c) {
            guard value == LDNS_RR_CLASS_IN else {
                return .failure(Problem(text: "class \(c.description.uppercased()) is not supported: vpcdns zones are class IN"))
            }
            tokens.removeFirst()
            if ttl == nil, let t = tokens.first, ZoneText.startsWithDigit(t) {
                return .failure(Problem(text: "the TTL must come before the class (\(c) \(t))"))
            }
        }
        guard let type = tokens.first else {
            return .failure(Problem(text: "incomplete record: no type"))
        }
        guard isKnownType(type) else {
            return .failure(Problem(text: "unknown record type \(type)"))
        }
        return .success(ttl)
    }

    /// The class a token names, nil when it names none. `IN` (nearly every record that has a
    /// class at all) is recognised without building a C string for ldns.
    func rrClass(_ token: ZoneToken) -> ldns_rr_class? {
        if token.equalsIgnoringCase("IN") { return LDNS_RR_CLASS_IN }
        let value = token.description.withCString { ldns_get_rr_class_by_name($0) }
        return value.rawValue != 0 ? value : nil
    }

    /// Whether ldns knows the type; the common ones are answered without a C string.
    func isKnownType(_ token: ZoneToken) -> Bool {
        if token.equalsIgnoringCase("A") || token.equalsIgnoringCase("AAAA") || token.equalsIgnoringCase("CNAME")
            || token.equalsIgnoringCase("TXT") || token.equalsIgnoringCase("NS") || token.equalsIgnoringCase("SOA") {
            return true
        }
        return token.description.withCString { ldns_get_rr_type_by_name($0) }.rawValue != 0
    }

    func checkedTTL(_ token: ZoneToken) -> Result<UInt32, Problem> {
        guard let v = ZoneText.ttlValue(token) else {
            return .failure(Problem(text: "bad TTL \(token)"))
        }
        guard v <= ZoneText.maxTTL else {
            return .failure(Problem(text: "TTL \(token) is out of range (0-\(ZoneText.maxTTL))"))
        }
        return .success(UInt32(v))
    }

    mutating func record(_ owned: OwnedRR, span: ClosedRange<Int>, line: Int) throws(ZoneFileError) -> ZoneFileRecord {
        let explicitTTL: UInt32?
        switch header(span) {
        case .success(let t): explicitTTL = t
        case .failure(let p): throw fail(line, p.text)
        }
        var rec: ResourceRecord
        do {
            rec = try LDNS.resourceRecord(owned.pointer)
        } catch {
            switch error { case .badOwner(let m): throw fail(line, m) }
        }
        guard rec.name.isSubdomain(of: zone) else {
            throw fail(line, "\(rec.name) is outside the zone \(zone)")
        }
        rec.ttl = explicitTTL ?? defaultTTL
        if !sawTTLDirective, let explicitTTL { defaultTTL = explicitTTL }
        return ZoneFileRecord(record: rec, line: line)
    }

    mutating func ttlDirective(_ span: ClosedRange<Int>?, line: Int) throws(ZoneFileError) {
        guard let span else { throw fail(line, "$TTL needs a value") }
        let tokens = text.tokens(span, limit: 3)
        guard tokens.count >= 2 else { throw fail(line, "$TTL needs a value") }
        guard tokens.count == 2 else { throw fail(line, "unexpected text after $TTL \(tokens[1]): \(tokens[2])") }
        switch checkedTTL(tokens[1]) {
        case .success(let v): defaultTTL = v; sawTTLDirective = true
        case .failure(let p): throw fail(line, "$TTL: \(p.text)")
        }
    }

    /// ldns put the new origin in the slot, but it reads a relative `$ORIGIN sub` as the
    /// absolute `sub.`. RFC 1035 §5.1 makes it relative to the current origin, so relativity is
    /// judged from the token (no unescaped trailing dot) and the current origin appended here.
    mutating func originDirective(_ span: ClosedRange<Int>?, slot: RDFSlot, line: Int) throws(ZoneFileError) {
        let tokens = span.map { text.tokens($0, limit: 3) } ?? []
        guard tokens.count >= 2, let rdf = slot.pointer else { throw fail(line, "$ORIGIN needs a domain name") }
        if tokens.count > 2 { throw fail(line, "unexpected text after $ORIGIN \(tokens[1]): \(tokens[2])") }
        let newOrigin: DNSName
        do {
            let parsed = try DNSName(wire: LDNS.bytes(rdf))
            if ZoneText.isAbsolute(tokens[1]) || parsed.isRoot {
                newOrigin = parsed
            } else {
                newOrigin = try DNSName(wire: parsed.wire.dropLast() + currentOrigin.wire)
            }
        } catch {
            throw fail(line, "bad $ORIGIN \(tokens[1]): \(error)")
        }
        currentOrigin = newOrigin
        slot.replace(with: newOrigin)
    }
}
