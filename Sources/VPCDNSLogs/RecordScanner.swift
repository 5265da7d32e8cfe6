#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-pass JSON reader for one query-log line: it checks the whole line is one JSON
/// object and takes out only the fields the tools use, without building a tree and without
/// Foundation's bridging — fast enough for 100k-line files even in a debug build (strings are
/// found with memchr). Keys it does not know (`firewall_*`, `version`, ...) are skipped.
struct RecordScanner {
    struct Failure: Error { var why: String }

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

    /// At an opening quote: the string's raw extent (start, end) and whether it has escapes.
    mutating func rawString() throws(Failure) -> (start: Int, end: Int, escaped: Bool) {
        i += 1
        let start = i
        var escaped = false
        while true {
            guard let hit = memchr(p + i, Int32(RecordScanner.q), n - i) else { throw fail("unterminated string") }
            let j = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - p
            // An odd run of backslashes before the quote escapes it.
            var k = j - 1, run = 0
            while k >= start && p[k] == RecordScanner.bs { run += 1; k -= 1 }
            if run > 0 || (!escaped && memchr(p + start, Int32(RecordScanner.bs), j - start) != nil) { escaped = true }
            i = j + 1
            if run % 2 == 0 { return (start, j, escaped) }
        }
    }

    mutating func string() throws(Failure) -> String {
        let (s, e, escaped) = try rawString()
        let raw = UnsafeBufferPointer(start: p + s, count: e - s)
        if !escaped { return String(decoding: raw, as: UTF8.self) }
        return try RecordScanner.unescape(raw)
    }

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

    /// A number's text (JSON grammar checked).
    mutating func number() throws(Failure) -> String {
        let start = i
        func digit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        if p[i] == UInt8(ascii: "-") { i += 1 }
        guard i < n, digit(p[i]) else { throw fail("bad number") }
        if p[i] == 48 { i += 1 } else { while i < n && digit(p[i]) { i += 1 } }
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
        return String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)
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
        case UInt8(ascii: "-"), 48...57: _ = try number()
        default: throw fail("unexpected character")
        }
    }

    /// At `{`: calls `body` at each member's value with the key's raw bytes.
    mutating func members(_ body: (inout RecordScanner, UnsafeBufferPointer<UInt8>) throws(Failure) -> Void) throws(Failure) {
        depth += 1
        guard depth <= 64 else { throw fail("nested too deeply") }
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
        guard depth <= 64 else { throw fail("nested too deeply") }
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
                case 7 where eq(k, "srcaddr"): s.srcAddr = try s.scalar()
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
        guard i < n, p[i] == UInt8(ascii: "{") else { try skip(); return }
        try members { s, k throws(Failure) in
            if RecordScanner.eq(k, "resolver_endpoint") { s.resolverEndpoint = try s.scalar() }
            else if RecordScanner.eq(k, "instance") { s.instance = try s.scalar() }
            else { try s.skip() }
        }
    }

    mutating func answerList() throws(Failure) {
        guard i < n else { throw fail("value expected") }
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
        if p[i] == UInt8(ascii: "n") { try literal("null"); return }
        guard p[i] == UInt8(ascii: "{") else { try skip(); throw Failure(why: "vpcdns is not an object") }
        hasVPCDNS = true
        try members { s, k throws(Failure) in
            let eq = RecordScanner.eq
            if eq(k, "decision") { s.decision = try s.scalar() }
            else if eq(k, "zone") { s.zone = try s.scalar() }
            else if eq(k, "zone_id") { s.zoneID = try s.scalar() }
            else if eq(k, "reason") { s.reason = try s.scalar() }
            else if eq(k, "cache") { s.cache = try s.scalar() }
            else if eq(k, "via") { s.via = try s.scalar() }
            else if eq(k, "received_at") { s.receivedAt = try s.scalar() }
            else if eq(k, "latency_us") { s.latency = try s.scalar().flatMap { Int64($0) ?? Double($0).flatMap { $0.isFinite && abs($0) < 9e18 ? Int64($0) : nil } } }
            else { try s.skip() }
        }
        if decision == nil { throw Failure(why: "vpcdns.decision missing") }
    }
}
