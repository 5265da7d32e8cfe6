#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads the few fields the console's filters and summary need out of one query-log line, as
/// the log wrote it (UTF-8 JSON, one object): `vpc_id`, `rcode`, `srcaddr`, `query_name` at the
/// top level and `decision`, `received_at`, `latency_us` under `vpcdns`.
///
/// A single pass over the bytes: every other value (the answers, above all) is stepped over
/// without being built, and JSON string escapes are decoded only in the fields kept. The line
/// must be one well-formed JSON object (nothing but white space after it); anything else, a
/// cut or garbled line, gives nil rather than a half-read record. Nesting deeper than
/// `maxDepth` is refused, so no line can exhaust the stack.
struct ConsoleRecordScanner {
    static let maxDepth = 32

    /// What the scan found; absent fields stay nil.
    struct Fields {
        var vpc: String?
        var rcode: String?
        var client: String?
        var name: String?
        var decision: String?
        var receivedAt: String?
        var latencyMicros: Int?
    }

    private let p: UnsafeBufferPointer<UInt8>
    private var i = 0

    private init(_ p: UnsafeBufferPointer<UInt8>) { self.p = p }

    static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> Fields? {
        var s = ConsoleRecordScanner(bytes)
        var f = Fields()
        guard s.topLevel(&f) else { return nil }
        return f
    }

    private static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")

    private mutating func skipSpace() {
        while i < p.count, p[i] == 0x20 || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09 { i += 1 }
    }

    private mutating func expect(_ c: UInt8) -> Bool {
        skipSpace()
        guard i < p.count, p[i] == c else { return false }
        i += 1
        return true
    }

    private func peek() -> UInt8? { i < p.count ? p[i] : nil }

    private mutating func topLevel(_ f: inout Fields) -> Bool {
        let ok = object(depth: 1) { s, key in
            switch key {
            case .vpc: return s.stringField(&f.vpc)
            case .rcode: return s.stringField(&f.rcode)
            case .client: return s.stringField(&f.client)
            case .name: return s.stringField(&f.name)
            case .vpcdns:
                s.skipSpace()
                guard s.peek() == UInt8(ascii: "{") else { return s.skipValue(depth: 2) }
                return s.object(depth: 2) { s, key in
                    switch key {
                    case .decision: return s.stringField(&f.decision)
                    case .receivedAt: return s.stringField(&f.receivedAt)
                    case .latency: return s.integerField(&f.latencyMicros, depth: 3)
                    default: return s.skipValue(depth: 3)
                    }
                }
            default: return s.skipValue(depth: 2)
            }
        }
        skipSpace()
        return ok && i == p.count
    }

    /// The keys the console reads; `.other` for every other key.
    enum Key {
        case vpc, rcode, client, name, vpcdns, decision, receivedAt, latency, other

        /// Keys are compared as raw bytes: the log never escapes a key, and a key spelled
        /// with escapes is read as some other key (its value still stepped over correctly).
        init(_ k: UnsafeBufferPointer<UInt8>) {
            func equals(_ s: StaticString) -> Bool {
                s.utf8CodeUnitCount == k.count && memcmp(s.utf8Start, k.baseAddress!, k.count) == 0
            }
            switch k.count {
            case 5: self = equals("rcode") ? .rcode : .other
            case 6: self = equals("vpc_id") ? .vpc : equals("vpcdns") ? .vpcdns : .other
            case 7: self = equals("srcaddr") ? .client : .other
            case 8: self = equals("decision") ? .decision : .other
            case 10: self = equals("query_name") ? .name : equals("latency_us") ? .latency : .other
            case 11: self = equals("received_at") ? .receivedAt : .other
            default: self = .other
            }
        }
    }

    /// An object at `i` (after white space): calls `member` for each key with `i` just after
    /// the colon; `member` consumes the value.
    private mutating func object(depth: Int, _ member: (inout ConsoleRecordScanner, Key) -> Bool) -> Bool {
        guard depth <= ConsoleRecordScanner.maxDepth, expect(UInt8(ascii: "{")) else { return false }
        skipSpace()
        if peek() == UInt8(ascii: "}") { i += 1; return true }
        while true {
            skipSpace()
            guard peek() == ConsoleRecordScanner.quote else { return false }
            let start = i + 1
            guard skipString() else { return false }
            let key = Key(UnsafeBufferPointer(rebasing: p[start..<(i - 1)]))
            guard expect(UInt8(ascii: ":")), member(&self, key) else { return false }
            skipSpace()
            guard let c = peek() else { return false }
            i += 1
            if c == UInt8(ascii: "}") { return true }
            guard c == UInt8(ascii: ",") else { return false }
        }
    }

    /// A kept string field: decoded; a value of another kind (null, a number) is stepped over
    /// and leaves the field absent.
    private mutating func stringField(_ out: inout String?) -> Bool {
        skipSpace()
        guard peek() == ConsoleRecordScanner.quote else {
            out = nil
            return skipValue(depth: 3)
        }
        guard let s = decodeString() else { return false }
        out = s
        return true
    }

    /// A whole number (`latency_us`); another kind of value leaves the field absent.
    private mutating func integerField(_ out: inout Int?, depth: Int) -> Bool {
        skipSpace()
        let start = i
        guard skipValue(depth: depth) else { return false }
        var n = 0
        var digits = 0
        var negative = false
        for k in start..<i {
            let c = p[k]
            if k == start, c == UInt8(ascii: "-") { negative = true; continue }
            guard c >= 48, c <= 57, digits < 18 else { out = nil; return true }
            n = n * 10 + Int(c - 48)
            digits += 1
        }
        out = digits > 0 ? (negative ? -n : n) : nil
        return true
    }

    /// Steps over a string (`i` at its opening quote), leaving `i` after the closing one.
    /// Escapes are checked for form only; raw control bytes are not JSON.
    private mutating func skipString() -> Bool {
        i += 1
        while i < p.count {
            let c = p[i]
            if c == ConsoleRecordScanner.quote { i += 1; return true }
            if c < 0x20 { return false }
            if c == ConsoleRecordScanner.backslash {
                guard i + 1 < p.count else { return false }
                switch p[i + 1] {
                case UInt8(ascii: "u"):
                    guard i + 5 < p.count, (2...5).allSatisfy({ ConsoleRecordScanner.hex(p[i + $0]) != nil }) else { return false }
                    i += 6
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                default: return false
                }
            } else {
                i += 1
            }
        }
        return false
    }

    /// The string at `i` (its opening quote), decoded. Without escapes (the usual case) the
    /// bytes are taken as they are.
    private mutating func decodeString() -> String? {
        let start = i + 1
        guard skipString() else { return nil }
        let raw = UnsafeBufferPointer(rebasing: p[start..<(i - 1)])
        guard raw.contains(ConsoleRecordScanner.backslash) else { return String(decoding: raw, as: UTF8.self) }
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []  // a run of plain bytes, decoded as UTF-8 when an escape ends it
        func flush() {
            if !utf8.isEmpty { scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars); utf8.removeAll() }
        }
        var k = 0
        while k < raw.count {
            let c = raw[k]
            guard c == ConsoleRecordScanner.backslash else { utf8.append(c); k += 1; continue }
            let e = raw[k + 1]  // skipString checked the escape's form
            k += 2
            switch e {
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var unit = ConsoleRecordScanner.hex4(raw, k)
                k += 4
                flush()
                if (0xD800..<0xDC00).contains(unit), k + 5 < raw.count, raw[k] == ConsoleRecordScanner.backslash,
                   raw[k + 1] == UInt8(ascii: "u") {
                    let low = ConsoleRecordScanner.hex4(raw, k + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        k += 6
                    }
                }
                // A lone surrogate is not a character: shown as U+FFFD, as a decoder would.
                scalars.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
            default: utf8.append(e)  // \" \\ \/
            }
        }
        flush()
        return String(scalars)
    }

    private static func hex(_ c: UInt8) -> UInt32? {
        switch c {
        case 48...57: return UInt32(c - 48)
        case 65...70: return UInt32(c - 55)
        case 97...102: return UInt32(c - 87)
        default: return nil
        }
    }

    private static func hex4(_ raw: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for j in at..<(at + 4) { v = v << 4 | (hex(raw[j]) ?? 0) }
        return v
    }

    /// Steps over any JSON value at `i` (after white space) without building it.
    private mutating func skipValue(depth: Int) -> Bool {
        guard depth <= ConsoleRecordScanner.maxDepth else { return false }
        skipSpace()
        guard let c = peek() else { return false }
        switch c {
        case ConsoleRecordScanner.quote:
            return skipString()
        case UInt8(ascii: "{"):
            return object(depth: depth) { s, _ in s.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            i += 1
            skipSpace()
            if peek() == UInt8(ascii: "]") { i += 1; return true }
            while true {
                guard skipValue(depth: depth + 1) else { return false }
                skipSpace()
                guard let d = peek() else { return false }
                i += 1
                if d == UInt8(ascii: "]") { return true }
                guard d == UInt8(ascii: ",") else { return false }
            }
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default: return number()
        }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= p.count, memcmp(word.utf8Start, p.baseAddress! + i, n) == 0 else { return false }
        i += n
        return true
    }

    /// A JSON number: -? int frac? exp?
    private mutating func number() -> Bool {
        func digits() -> Int {
            let s = i
            while i < p.count, p[i] >= 48, p[i] <= 57 { i += 1 }
            return i - s
        }
        if peek() == UInt8(ascii: "-") { i += 1 }
        guard digits() > 0 else { return false }
        if peek() == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { return false }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            i += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return false }
        }
        return true
    }
}
