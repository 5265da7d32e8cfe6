/// Byte-level helpers over the zone file text, used next to ldns's own reader.
///
/// ldns reports where its reader *stopped* (and does not count blank lines it skips, so its
/// line number drifts), and it silently accepts some bad header fields (`3OO` reads as TTL 3,
/// `$TTL abc` as 0). Knowing the byte range ldns consumed for each record (`ftell` before and
/// after), this scanner finds the line where the record really starts and reads the header
/// tokens (owner, TTL, class, type) itself, so errors name the right line and field.
struct ZoneText {
    let bytes: [UInt8]
    /// Offset of the first byte of each line; `lineStarts[0] == 0`.
    let lineStarts: [Int]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var starts = [0]
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") { starts.append(i + 1) }
        self.lineStarts = starts
    }

    /// 1-based line of a byte offset.
    func line(of offset: Int) -> Int {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo + 1
    }

    static func isSpace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C
    }

    /// First and last byte in `range` that belong to a record (not blank, not comment);
    /// nil when the range holds only blanks and comments. `openQuote` is the offset of a `"`
    /// whose string does not end on its own line (or in the range): ldns accepts such a string
    /// (it reads on to the end of the record or the file), BIND and NSD reject it, and so do we.
    func significantSpan(_ range: Range<Int>) -> (span: ClosedRange<Int>, openQuote: Int?)? {
        var first: Int?
        var last: Int?
        var i = range.lowerBound
        var inComment = false, inQuote = false
        var quoteStart = 0
        var openQuote: Int?
        while i < range.upperBound {
            let b = bytes[i]
            if inComment {
                if b == UInt8(ascii: "\n") { inComment = false }
            } else if b == UInt8(ascii: "\\") {
                if first == nil { first = i }
                i = min(i + 1, range.upperBound - 1)
                last = i
            } else if inQuote {
                if b == UInt8(ascii: "\"") { inQuote = false }
                if b == UInt8(ascii: "\n") && openQuote == nil { openQuote = quoteStart }
                last = i
            } else if b == UInt8(ascii: ";") {
                inComment = true
            } else if !ZoneText.isSpace(b) {
                if first == nil { first = i }
                if b == UInt8(ascii: "\"") { inQuote = true; quoteStart = i }
                last = i
            }
            i += 1
        }
        if inQuote && openQuote == nil { openQuote = quoteStart }
        guard let first, let last else { return nil }
        return (first...last, openQuote)
    }

    /// True when the record starting at `start` has no owner field (its line begins with
    /// blank space: "blank owner = previous owner", RFC 1035 §5.1).
    func hasBlankOwner(startingAt start: Int) -> Bool {
        lineStarts[line(of: start) - 1] != start
    }

    /// The first `limit` whitespace-separated tokens of a record, skipping comments and
    /// parentheses, stopping at the first quoted string (only rdata is ever quoted).
    ///
    /// A token is a contiguous run of the file's bytes (an escape and its character are
    /// adjacent), so tokens are slices, not copies: this runs for every record loaded.
    func tokens(_ span: ClosedRange<Int>, limit: Int) -> [ZoneToken] {
        var out: [ZoneToken] = []
        out.reserveCapacity(limit)
        var start: Int?
        var i = span.lowerBound
        var inComment = false
        func flush(_ end: Int) {
            if let s = start { out.append(ZoneToken(bytes: bytes[s..<end])); start = nil }
        }
        while i <= span.upperBound && out.count < limit {
            let b = bytes[i]
            if inComment {
                if b == UInt8(ascii: "\n") { inComment = false }
            } else if b == UInt8(ascii: "\\") {
                if start == nil { start = i }
                if i + 1 <= span.upperBound { i += 1 }
            } else if b == UInt8(ascii: ";") {
                flush(i); inComment = true
            } else if b == UInt8(ascii: "\"") {
                break
            } else if ZoneText.isSpace(b) || b == UInt8(ascii: "(") || b == UInt8(ascii: ")") {
                flush(i)
            } else if start == nil {
                start = i
            }
            i += 1
        }
        if out.count < limit { flush(min(i, span.upperBound + 1)) }
        return out
    }

    /// The record's text on one line, comments dropped and blank runs collapsed, cut to
    /// `max` characters: quoted back in error messages.
    func snippet(_ span: ClosedRange<Int>, max: Int = 60) -> String {
        var out: [UInt8] = []
        var inComment = false, inQuote = false, pendingSpace = false
        var i = span.lowerBound
        while i <= span.upperBound {
            let b = bytes[i]
            if inComment {
                if b == UInt8(ascii: "\n") { inComment = false; pendingSpace = true }
            } else if !inQuote && b == UInt8(ascii: ";") {
                inComment = true
            } else if !inQuote && ZoneText.isSpace(b) {
                pendingSpace = true
            } else {
                if pendingSpace && !out.isEmpty { out.append(0x20) }
                pendingSpace = false
                if b == UInt8(ascii: "\"") { inQuote.toggle() }
                if b == UInt8(ascii: "\\") && i < span.upperBound { out.append(b); i += 1; out.append(bytes[i]); i += 1; continue }
                out.append(b)
            }
            i += 1
        }
        let s = String(decoding: out, as: UTF8.self)
        return s.count <= max ? s : String(s.prefix(max - 1)) + "…"
    }

    /// A TTL in the forms ldns and BIND accept: seconds (`300`) or unit groups (`1h30m`,
    /// `2W`). nil when malformed (ldns itself would read `3OO` as 3 and `1x` as 1).
    static func ttlValue(_ token: ZoneToken) -> UInt64? {
        var total: UInt64 = 0
        var current: UInt64?
        for c in token.bytes {
            if c >= 48 && c <= 57 {
                current = (current ?? 0) * 10 + UInt64(c - 48)
                if current! > 1 << 40 { return nil }
                continue
            }
            let multiplier: UInt64
            switch c | 0x20 {
            case UInt8(ascii: "s"): multiplier = 1
            case UInt8(ascii: "m"): multiplier = 60
            case UInt8(ascii: "h"): multiplier = 3600
            case UInt8(ascii: "d"): multiplier = 86400
            case UInt8(ascii: "w"): multiplier = 604800
            default: return nil
            }
            guard let v = current else { return nil }
            total += v * multiplier
            current = nil
        }
        if let v = current { total += v }
        guard !token.bytes.isEmpty else { return nil }
        return total
    }

    /// RFC 2181 §8: a TTL is an unsigned 31-bit number.
    static let maxTTL: UInt64 = 2_147_483_647

    static func startsWithDigit(_ s: ZoneToken) -> Bool {
        guard let c = s.bytes.first else { return false }
        return c >= 48 && c <= 57
    }

    /// A presentation name ends with an unescaped dot (`a.b.`, `.`; not `a\.`).
    static func isAbsolute(_ token: ZoneToken) -> Bool {
        let u = Array(token.bytes)
        guard u.last == UInt8(ascii: ".") else { return false }
        var backslashes = 0
        var i = u.count - 2
        while i >= 0 && u[i] == UInt8(ascii: "\\") { backslashes += 1; i -= 1 }
        return backslashes % 2 == 0
    }
}

/// One header token of a record: a slice of the zone file's bytes.
struct ZoneToken: CustomStringConvertible {
    let bytes: ArraySlice<UInt8>

    /// The token as text, for messages and the rare lookups that need a C string.
    var description: String { String(decoding: bytes, as: UTF8.self) }

    /// ASCII case-insensitive comparison with an upper-case keyword.
    func equalsIgnoringCase(_ upper: StaticString) -> Bool {
        guard bytes.count == upper.utf8CodeUnitCount else { return false }
        let u = UnsafeBufferPointer(start: upper.utf8Start, count: upper.utf8CodeUnitCount)
        return zip(bytes, u).allSatisfy { a, b in a & 0xDF == b }
    }
}
