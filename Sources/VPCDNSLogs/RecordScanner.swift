#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-pass JSON reader for one query-log line: it checks the whole line is one JSON
/// object (RFC 8259) and takes out only the fields the tools use, without building a tree and
/// without Foundation's bridging — fast enough for 100k-line files even in a debug build
/// (strings are stepped over eight bytes at a time). Keys it does not know (`firewall_*`,
/// `version`, ...) are skipped, and skipping builds nothing.
///
/// The one reader of log lines: `vpcdns logs` (`LogRecord.parse`) and the console
/// (`LogLineFields.scan`) both read through it, so a line is JSON to both or to neither, and a
/// field both read has the same value in both. Where the grammar has a choice it follows
/// RFC 8259 strictly (the log writer never needs the leeway): no leading zeros, no raw control
/// bytes in strings, every escape well formed (also in keys and in values that are skipped),
/// at most `maxDepth` nested objects and arrays. Bytes that are not UTF-8 are not refused:
/// a string read is decoded with U+FFFD in their place.
struct RecordScanner {
    struct Failure: Error { var why: String }

    /// Objects and arrays nested deeper than this (the line's own object counts as one) are
    /// refused (RFC 8259 §9 lets a parser set the limit); the writer nests three deep. It
    /// bounds the recursion, so no line can exhaust the stack.
    static let maxDepth = 64

    let p: UnsafePointer<UInt8>
    let n: Int
    var i = 0
    var depth = 0

    init(_ buf: UnsafeBufferPointer<UInt8>) {
        p = buf.baseAddress ?? UnsafePointer(bitPattern: 1)!
        n = buf.count
    }

    // Fields as read.
    var queryName: String?, queryType: String?, rcode: String?, vpcID: String?, timestamp: String?
    var region: String?, srcAddr: String?, srcPort: String?, transport: String?
    var resolverEndpoint: String?, instance: String?, firewallAction: String?
    var answers: [LogAnswer] = []
    var hasVPCDNS = false
    var decision: String?, zone: String?, zoneID: String?, reason: String?, cache: String?, via: String?
    var latency: Int64?
    var receivedAt: String?

    static let q = UInt8(ascii: "\""), bs = UInt8(ascii: "\\")

    func fail(_ what: String) -> Failure {
        Failure(why: i < n ? "not JSON (\(what) at column \(i + 1))" : "not JSON (\(what) at end of line)")
    }

    mutating func ws() {
        while i < n {
            let c = p[i]
            if c == 0x20 || c == 0x09 || c == 0x0d || c == 0x0a { i += 1 } else { return }
        }
    }

    private static let ones: UInt64 = 0x0101_0101_0101_0101, highBits: UInt64 = 0x8080_8080_8080_8080

    /// The high bit of each byte of `w` that is a quote, a backslash or a control byte (below
    /// 0x20): the bytes a string's plain run cannot hold. Exact for the lowest such byte (a
    /// borrow only runs upward), which is the first in memory once `w` was loaded little-endian.
    /// (A byte is zero exactly when subtracting one borrows into its high bit while its own
    /// high bit was clear; likewise below 0x20 when subtracting 0x20.)
    @inline(__always)
    static func plainRunEnds(_ w: UInt64) -> UInt64 {
        let quote = w ^ (ones &* UInt64(q)), backslash = w ^ (ones &* UInt64(bs))
        let hits = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((w &- ones &* 0x20) & ~w)
        return hits & highBits
    }

    @inline(__always)
    static func isHex(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102)
    }

    /// At an opening quote: the string's raw extent (start, end) and whether it has escapes.
    /// Checks it as RFC 8259 does: no raw control byte, each escape one of `\" \\ \/ \b \f \n
    /// \r \t \uXXXX`.
    mutating func rawString() throws(Failure) -> (start: Int, end: Int, escaped: Bool) {
        i += 1
        let start = i
        var escaped = false
        while true {
            // Eight bytes at a time up to the next byte that is not plain text.
            while i + 8 <= n {
                let ends = RecordScanner.plainRunEnds(UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)))
                if ends == 0 { i += 8; continue }
                i += ends.trailingZeroBitCount >> 3
                break
            }
            guard i < n else { i = start; throw fail("unterminated string") }  // named where it starts
            let c = p[i]
            if c == RecordScanner.q {
                i += 1
                return (start, i - 1, escaped)
            }
            if c == RecordScanner.bs {
                escaped = true
                guard i + 1 < n else { i = start; throw fail("unterminated string") }
                switch p[i + 1] {
                case RecordScanner.q, RecordScanner.bs, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard i + 6 <= n, RecordScanner.isHex(p[i + 2]), RecordScanner.isHex(p[i + 3]),
                          RecordScanner.isHex(p[i + 4]), RecordScanner.isHex(p[i + 5]) else {
                        throw Failure(why: "not JSON (bad \\u escape)")
                    }
                    i += 6
                default:
                    throw Failure(why: "not JSON (bad escape)")
                }
                continue
            }
            if c < 0x20 { throw fail("control character in a string") }
            i += 1
        }
    }

    mutating func string() throws(Failure) -> String {
        let (s, e, escaped) = try rawString()
        let raw = UnsafeBufferPointer(start: p + s, count: e - s)
        if !escaped { return String(decoding: raw, as: UTF8.self) }
        return try RecordScanner.unescape(raw)
    }

    /// The text of a string `rawString` has checked, its escapes decoded. A `\uD8xx` not
    /// followed by its low half (or a low half alone) is not a character: U+FFFD, as a
    /// decoder would.
    static func unescape(_ raw: UnsafeBufferPointer<UInt8>) throws(Failure) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var k = 0
        func hex4(_ at: Int) throws(Failure) -> UInt32 {
            guard at + 4 <= raw.count else { throw Failure(why: "not JSON (bad \\u escape)") }
            var v: UInt32 = 0
            for m in at..<(at + 4) {
                let c = raw[m]
                let d: UInt32
                switch c {
                case 48...57: d = UInt32(c - 48)
                case 97...102: d = UInt32(c - 87)
                case 65...70: d = UInt32(c - 55)
                default: throw Failure(why: "not JSON (bad \\u escape)")
                }
                v = v << 4 | d
            }
            return v
        }
        while k < raw.count {
            let c = raw[k]
            if c != bs { out.append(c); k += 1; continue }
            guard k + 1 < raw.count else { throw Failure(why: "not JSON (bad escape)") }
            let e = raw[k + 1]
            k += 2
            switch e {
            case q, bs, UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                var v = try hex4(k)
                k += 4
                if (0xD800...0xDBFF).contains(v), k + 6 <= raw.count, raw[k] == bs, raw[k + 1] == UInt8(ascii: "u") {
                    let low = try hex4(k + 2)
                    if (0xDC00...0xDFFF).contains(low) {
                        v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                        k += 6
                    }
                }
                let scalar = Unicode.Scalar(v) ?? "\u{FFFD}"
                out.append(contentsOf: String(Character(scalar)).utf8)
            default:
                throw Failure(why: "not JSON (bad escape)")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Steps over a number (JSON grammar checked: no leading zeros, digits after `.` and
    /// `e`) and returns its extent.
    mutating func numberExtent() throws(Failure) -> (start: Int, end: Int) {
        let start = i
        func digit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        if p[i] == UInt8(ascii: "-") { i += 1 }
        guard i < n, digit(p[i]) else { throw fail("bad number") }
        if p[i] == 48 {
            i += 1
            if i < n && digit(p[i]) { throw fail("leading zero in a number") }
        } else {
            while i < n && digit(p[i]) { i += 1 }
        }
        if i < n && p[i] == UInt8(ascii: ".") {
            i += 1
            guard i < n, digit(p[i]) else { throw fail("bad number") }
            while i < n && digit(p[i]) { i += 1 }
        }
        if i < n && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            i += 1
            if i < n && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) { i += 1 }
            guard i < n, digit(p[i]) else { throw fail("bad number") }
            while i < n && digit(p[i]) { i += 1 }
        }
        return (start, i)
    }

    /// A number's text.
    mutating func number() throws(Failure) -> String {
        let (s, e) = try numberExtent()
        return String(decoding: UnsafeBufferPointer(start: p + s, count: e - s), as: UTF8.self)
    }

    mutating func literal(_ w: StaticString) throws(Failure) {
        let len = w.utf8CodeUnitCount
        guard i + len <= n, memcmp(p + i, w.utf8Start, len) == 0 else { throw fail("unexpected character") }
        i += len
    }

    /// A scalar as text (strings and numbers; true/false/null give nil), or nil after
    /// skipping an object or array.
    mutating func scalar() throws(Failure) -> String? {
        guard i < n else { throw fail("value expected") }
        switch p[i] {
        case RecordScanner.q: return try string()
        case UInt8(ascii: "-"), 48...57: return try number()
        default: try skip(); return nil
        }
    }

    /// A field both tools read as text (`srcaddr`, `vpcdns.decision`, `vpcdns.received_at`,
    /// and, in the console, `vpc_id`, `rcode`, `query_name`): a string's text; any other value
    /// is stepped over and gives nil (the field is absent, whatever the tool makes of that).
    mutating func stringValue() throws(Failure) -> String? {
        guard i < n else { throw fail("value expected") }
        if p[i] == RecordScanner.q { return try string() }
        try skip()
        return nil
    }

    /// `vpcdns.latency_us`, whole microseconds: a JSON integer (no fraction or exponent) that
    /// fits in 64 bits; any other value (`1.5e3`, `"12"`, null) is stepped over and gives nil.
    mutating func integerValue() throws(Failure) -> Int64? {
        guard i < n else { throw fail("value expected") }
        let c = p[i]
        guard c == UInt8(ascii: "-") || (c >= 48 && c <= 57) else { try skip(); return nil }
        let (s, e) = try numberExtent()
        let negative = p[s] == UInt8(ascii: "-")
        var v: Int64 = 0
        for k in (negative ? s + 1 : s)..<e {
            let d = p[k]
            guard d >= 48 && d <= 57 else { return nil }
            let (times10, o1) = v.multipliedReportingOverflow(by: 10)
            let (next, o2) = negative ? times10.subtractingReportingOverflow(Int64(d - 48))
                                      : times10.addingReportingOverflow(Int64(d - 48))
            if o1 || o2 { return nil }
            v = next
        }
        return v
    }

    /// Skips any value, checking its syntax.
    mutating func skip() throws(Failure) {
        guard i < n else { throw fail("value expected") }
        switch p[i] {
        case RecordScanner.q: _ = try rawString()
        case UInt8(ascii: "{"): try members { s, _ throws(Failure) in try s.skip() }
        case UInt8(ascii: "["): try elements { s throws(Failure) in try s.skip() }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), 48...57: _ = try numberExtent()
        default: throw fail("unexpected character")
        }
    }

    /// At `{`: calls `body` at each member's value with the key's raw bytes.
    mutating func members(_ body: (inout RecordScanner, UnsafeBufferPointer<UInt8>) throws(Failure) -> Void) throws(Failure) {
        depth += 1
        guard depth <= RecordScanner.maxDepth else { throw fail("nested too deeply") }
        i += 1
        ws()
        if i < n && p[i] == UInt8(ascii: "}") { i += 1; depth -= 1; return }
        while true {
            ws()
            guard i < n, p[i] == RecordScanner.q else { throw fail("object key expected") }
            let (s, e, _) = try rawString()
            ws()
            guard i < n, p[i] == UInt8(ascii: ":") else { throw fail("':' expected") }
            i += 1
            ws()
            try body(&self, UnsafeBufferPointer(start: p + s, count: e - s))
            ws()
            guard i < n else { throw fail("unterminated object") }
            if p[i] == UInt8(ascii: ",") { i += 1; continue }
            if p[i] == UInt8(ascii: "}") { i += 1; depth -= 1; return }
            throw fail("',' or '}' expected")
        }
    }

    /// At `[`: calls `body` at each element.
    mutating func elements(_ body: (inout RecordScanner) throws(Failure) -> Void) throws(Failure) {
        depth += 1
        guard depth <= RecordScanner.maxDepth else { throw fail("nested too deeply") }
        i += 1
        ws()
        if i < n && p[i] == UInt8(ascii: "]") { i += 1; depth -= 1; return }
        while true {
            ws()
            try body(&self)
            ws()
            guard i < n else { throw fail("unterminated array") }
            if p[i] == UInt8(ascii: ",") { i += 1; continue }
            if p[i] == UInt8(ascii: "]") { i += 1; depth -= 1; return }
            throw fail("',' or ']' expected")
        }
    }

    /// Keys are compared as raw bytes: the log never escapes a key, and a key spelled with
    /// escapes is read as some other key (its value still stepped over).
    static func eq(_ k: UnsafeBufferPointer<UInt8>, _ s: StaticString) -> Bool {
        k.count == s.utf8CodeUnitCount && memcmp(k.baseAddress!, s.utf8Start, k.count) == 0
    }

    /// A required field: a string, or a failure naming it.
    mutating func requiredString(_ key: String) throws(Failure) -> String {
        guard i < n, p[i] == RecordScanner.q else {
            try skip()
            throw Failure(why: "\(key) is not a string")
        }
        return try string()
    }

    /// Reads the line; on success the fields are set.
    mutating func scan() throws(Failure) {
        ws()
        guard i < n else { throw Failure(why: "blank line") }
        guard p[i] == UInt8(ascii: "{") else {
            try skip()
            ws()
            if i != n { throw fail("trailing characters") }
            throw Failure(why: "not a JSON object")
        }
        var typeError: Failure? = nil
        try members { s, k throws(Failure) in
            let eq = RecordScanner.eq
            do throws(Failure) {
                switch k.count {
                case 5 where eq(k, "rcode"): s.rcode = try s.requiredString("rcode")
                case 6 where eq(k, "vpc_id"): s.vpcID = try s.requiredString("vpc_id")
                case 6 where eq(k, "region"): s.region = try s.scalar()
                case 6 where eq(k, "srcids"): try s.srcids()
                case 6 where eq(k, "vpcdns"): try s.vpcdns()
                case 7 where eq(k, "answers"): try s.answerList()
                case 7 where eq(k, "srcaddr"): s.srcAddr = try s.stringValue()
                case 7 where eq(k, "srcport"): s.srcPort = try s.scalar()
                case 9 where eq(k, "transport"): s.transport = try s.scalar()
                case 10 where eq(k, "query_name"): s.queryName = try s.requiredString("query_name")
                case 10 where eq(k, "query_type"): s.queryType = try s.requiredString("query_type")
                case 15 where eq(k, "query_timestamp"): s.timestamp = try s.requiredString("query_timestamp")
                case 20 where eq(k, "firewall_rule_action"): s.firewallAction = try s.scalar()
                default: try s.skip()
                }
            } catch {
                // A field of the wrong type (its value already read): finish reading the line
                // first, so a syntax error later on is what gets reported.
                if error.why.hasPrefix("not JSON") { throw error }
                if typeError == nil { typeError = error }
            }
        }
        ws()
        if i != n { throw fail("trailing characters") }
        if let e = typeError { throw e }
    }

    mutating func srcids() throws(Failure) {
        resolverEndpoint = nil
        instance = nil
        guard i < n, p[i] == UInt8(ascii: "{") else { try skip(); return }
        try members { s, k throws(Failure) in
            if RecordScanner.eq(k, "resolver_endpoint") { s.resolverEndpoint = try s.scalar() }
            else if RecordScanner.eq(k, "instance") { s.instance = try s.scalar() }
            else { try s.skip() }
        }
    }

    mutating func answerList() throws(Failure) {
        guard i < n else { throw fail("value expected") }
        answers = []  // a repeated key: the last one's answers, as for every other key
        if p[i] == UInt8(ascii: "n") { try literal("null"); return }
        guard p[i] == UInt8(ascii: "[") else { try skip(); throw Failure(why: "answers is not an array") }
        var bad = false
        try elements { s throws(Failure) in
            guard s.i < s.n, s.p[s.i] == UInt8(ascii: "{") else { try s.skip(); bad = true; return }
            var a = LogAnswer(rdata: "", type: "", rrClass: "")
            try s.members { s, k throws(Failure) in
                if RecordScanner.eq(k, "Rdata") { a.rdata = try s.scalar() ?? "" }
                else if RecordScanner.eq(k, "Type") { a.type = try s.scalar() ?? "" }
                else if RecordScanner.eq(k, "Class") { a.rrClass = try s.scalar() ?? "" }
                else { try s.skip() }
            }
            s.answers.append(a)
        }
        if bad { throw Failure(why: "an answer is not an object") }
    }

    mutating func vpcdns() throws(Failure) {
        guard i < n else { throw fail("value expected") }
        // A repeated `vpcdns` key: the last one counts as a whole (its fields are not merged
        // with an earlier one's), as for every other key.
        hasVPCDNS = false
        decision = nil; zone = nil; zoneID = nil; reason = nil; cache = nil; via = nil; receivedAt = nil; latency = nil
        if p[i] == UInt8(ascii: "n") { try literal("null"); return }
        guard p[i] == UInt8(ascii: "{") else { try skip(); throw Failure(why: "vpcdns is not an object") }
        hasVPCDNS = true
        var decisionNotAString = false
        try members { s, k throws(Failure) in
            let eq = RecordScanner.eq
            if eq(k, "decision") {
                s.decision = try s.stringValue()
                decisionNotAString = s.decision == nil
            }
            else if eq(k, "zone") { s.zone = try s.scalar() }
            else if eq(k, "zone_id") { s.zoneID = try s.scalar() }
            else if eq(k, "reason") { s.reason = try s.scalar() }
            else if eq(k, "cache") { s.cache = try s.scalar() }
            else if eq(k, "via") { s.via = try s.scalar() }
            else if eq(k, "received_at") { s.receivedAt = try s.stringValue() }
            else if eq(k, "latency_us") { s.latency = try s.integerValue() }
            else { try s.skip() }
        }
        if decisionNotAString { throw Failure(why: "vpcdns.decision is not a string") }
        if decision == nil { throw Failure(why: "vpcdns.decision missing") }
    }

    /// Reads the line for `LogLineFields`: the same grammar as `scan`, but only the console's
    /// fields are kept (as text when they are strings) and none is required.
    mutating func scanLineFields() throws(Failure) -> LogLineFields {
        ws()
        guard i < n, p[i] == UInt8(ascii: "{") else { throw Failure(why: "not a JSON object") }
        var f = LogLineFields()
        try members { s, k throws(Failure) in
            let eq = RecordScanner.eq
            switch k.count {
            case 5 where eq(k, "rcode"): f.rcode = try s.stringValue()
            case 6 where eq(k, "vpc_id"): f.vpcID = try s.stringValue()
            case 6 where eq(k, "vpcdns"):
                f.decision = nil; f.receivedAt = nil; f.latencyMicros = nil
                guard s.i < s.n, s.p[s.i] == UInt8(ascii: "{") else { try s.skip(); return }
                try s.members { s, k throws(Failure) in
                    switch k.count {
                    case 8 where eq(k, "decision"): f.decision = try s.stringValue()
                    case 10 where eq(k, "latency_us"): f.latencyMicros = try s.integerValue()
                    case 11 where eq(k, "received_at"): f.receivedAt = try s.stringValue()
                    default: try s.skip()
                    }
                }
            case 7 where eq(k, "srcaddr"): f.srcAddr = try s.stringValue()
            case 10 where eq(k, "query_name"): f.queryName = try s.stringValue()
            default: try s.skip()
            }
        }
        ws()
        if i != n { throw fail("trailing characters") }
        return f
    }
}

/// The few fields the console's filters and summary read from one query-log line, read by
/// the same reader as `vpcdns logs` (`RecordScanner`): `vpc_id`, `rcode`, `srcaddr`,
/// `query_name` at the top level and `decision`, `received_at`, `latency_us` under `vpcdns`.
/// A field that is absent, or not of its type (a string; a JSON integer for `latency_us`), is
/// nil. Nothing is built for the values stepped over (the answers above all); only the kept
/// strings are.
public struct LogLineFields: Sendable, Equatable {
    public var vpcID: String?
    public var rcode: String?
    public var srcAddr: String?
    public var queryName: String?
    public var decision: String?
    public var receivedAt: String?
    public var latencyMicros: Int64?

    public init() {}

    /// The fields of `bytes` (one line, without its newline); nil when the line is not one
    /// JSON object (cut, garbled, anything after it but white space) — exactly the lines
    /// `LogRecord.parse` refuses as `not JSON`, `not a JSON object` or `blank line`.
    public static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> LogLineFields? {
        var s = RecordScanner(bytes)
        do throws(RecordScanner.Failure) {
            return try s.scanLineFields()
        } catch {
            return nil
        }
    }
}
