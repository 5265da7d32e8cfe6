/// Rdata in presentation form, as `dig +short` prints it: the query log's `answers[].Rdata`.
///
/// Written in Swift so that untrusted bytes from upstream never reach libldns (query-log.md).
/// Known types get their own form; every other type, and any rdata of a known type that does
/// not have the shape its type demands, is printed in RFC 3597's generic `\# LENGTH HEX`, so a
/// record can always be logged and nothing here can trap.
public enum RDataFormatter {
    /// The presentation form of `rdata` for a record of type `type`.
    public static func presentation(type: RRType, rdata: [UInt8]) -> String {
        presentation(type: type, rdata: rdata[...])
    }

    /// The presentation form of `rdata` for a record of type `type`.
    public static func presentation(type: RRType, rdata: ArraySlice<UInt8>) -> String {
        // Rebase so offsets below start at 0 whatever slice came in.
        let b = rdata.startIndex == 0 ? rdata : Array(rdata)[...]
        return known(type: type, b) ?? generic(b)
    }

    /// RFC 3597 §5: `\# 4 0A000001`; `\# 0` for empty rdata.
    public static func generic(_ rdata: ArraySlice<UInt8>) -> String {
        var s = "\\# \(rdata.count)"
        if rdata.isEmpty { return s }
        s.append(" ")
        let hex: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
        s.reserveCapacity(s.utf8.count + rdata.count * 2)
        for v in rdata {
            s.append(hex[Int(v >> 4)])
            s.append(hex[Int(v & 0x0F)])
        }
        return s
    }

    static func known(type: RRType, _ b: ArraySlice<UInt8>) -> String? {
        switch type.rawValue {
        case RRType.a.rawValue:
            guard b.count == 4 else { return nil }
            return "\(b[0]).\(b[1]).\(b[2]).\(b[3])"
        case RRType.aaaa.rawValue:
            guard b.count == 16 else { return nil }
            return ipv6Text(b)
        case RRType.ns.rawValue, RRType.cname.rawValue, RRType.ptr.rawValue, 39: // DNAME
            guard let (t, end) = name(b, at: 0), end == b.count else { return nil }
            return t
        case RRType.mx.rawValue:
            guard let pref = u16(b, 0), let (t, end) = name(b, at: 2), end == b.count else { return nil }
            return "\(pref) \(t)"
        case RRType.srv.rawValue:
            guard let prio = u16(b, 0), let weight = u16(b, 2), let port = u16(b, 4),
                  let (t, end) = name(b, at: 6), end == b.count else { return nil }
            return "\(prio) \(weight) \(port) \(t)"
        case RRType.soa.rawValue:
            guard let (m, e1) = name(b, at: 0), let (rn, e2) = name(b, at: e1), e2 + 20 == b.count,
                  let serial = u32(b, e2), let refresh = u32(b, e2 + 4), let retry = u32(b, e2 + 8),
                  let expire = u32(b, e2 + 12), let minimum = u32(b, e2 + 16) else { return nil }
            return "\(m) \(rn) \(serial) \(refresh) \(retry) \(expire) \(minimum)"
        case RRType.txt.rawValue, RRType.spf.rawValue, RRType.hinfo.rawValue:
            guard let strings = characterStrings(b), !strings.isEmpty else { return nil }
            if type == .hinfo && strings.count != 2 { return nil }
            var s = ""
            for (k, str) in strings.enumerated() {
                if k > 0 { s.append(" ") }
                appendQuoted(b[str], to: &s)
            }
            return s
        case RRType.caa.rawValue:
            // flags, tag length, tag, value (RFC 8659 §4.1); the tag must be non-empty.
            guard b.count >= 2 else { return nil }
            let flags = b[0], tagLength = Int(b[1])
            guard tagLength >= 1, 2 + tagLength <= b.count else { return nil }
            var s = "\(flags) "
            for c in b[2..<(2 + tagLength)] { appendEscaped(c, to: &s) }
            s.append(" ")
            appendQuoted(b[(2 + tagLength)...], to: &s)
            return s
        default:
            return nil
        }
    }

    // MARK: Pieces

    static func u16(_ b: ArraySlice<UInt8>, _ i: Int) -> UInt16? {
        guard i >= 0, i + 2 <= b.count else { return nil }
        return UInt16(b[i]) << 8 | UInt16(b[i + 1])
    }

    static func u32(_ b: ArraySlice<UInt8>, _ i: Int) -> UInt32? {
        guard let h = u16(b, i), let l = u16(b, i + 2) else { return nil }
        return UInt32(h) << 16 | UInt32(l)
    }

    /// An uncompressed name at `i` in presentation form with its trailing dot, and where it
    /// ends. Nil for a pointer, a bad label type, a name over 255 octets or running off the end.
    static func name(_ b: ArraySlice<UInt8>, at start: Int) -> (String, Int)? {
        var i = start
        var s = ""
        while true {
            guard i >= 0, i < b.count else { return nil }
            let len = Int(b[i])
            if len == 0 {
                if s.isEmpty { s = "." }
                return (s, i + 1)
            }
            guard len <= 63, i + 1 + len <= b.count, i + 1 + len - start + 1 <= DNSName.maxWireLength else { return nil }
            for c in b[(i + 1)...(i + len)] { appendEscaped(c, to: &s) }
            s.append(".")
            i += len + 1
        }
    }

    /// A whole wire name as text with a trailing dot (`WwW.Example.com.`), case kept.
    static func nameText(_ wire: ArraySlice<UInt8>) -> String? {
        let b = wire.startIndex == 0 ? wire : Array(wire)[...]
        return name(b, at: 0)?.0
    }

    /// Ranges of the character-strings that make up `b` exactly (RFC 1035 §3.3), nil if the
    /// last one runs past the end.
    static func characterStrings(_ b: ArraySlice<UInt8>) -> [Range<Int>]? {
        var out: [Range<Int>] = []
        var i = 0
        while i < b.count {
            let len = Int(b[i])
            guard i + 1 + len <= b.count else { return nil }
            out.append((i + 1)..<(i + 1 + len))
            i += 1 + len
        }
        return out
    }

    /// `"..."` with `"` and `\` backslash-escaped and bytes outside printable ASCII as `\DDD`,
    /// as BIND's dig prints TXT.
    static func appendQuoted(_ bytes: ArraySlice<UInt8>, to s: inout String) {
        s.append("\"")
        for c in bytes {
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                s.append("\\")
                s.unicodeScalars.append(Unicode.Scalar(c))
            case 0x20...0x7E:
                s.unicodeScalars.append(Unicode.Scalar(c))
            default:
                let d = String(c)
                s.append("\\" + String(repeating: "0", count: 3 - d.count) + d)
            }
        }
        s.append("\"")
    }

    /// RFC 5952 §4.2.3: the longest run of two or more zero groups among 8 (the first on a
    /// tie), as (start, length); (-1, 0) when there is none. Shared by every IPv6 writer.
    @inlinable
    public static func ipv6ZeroRun(_ group: (Int) -> UInt16) -> (start: Int, length: Int) {
        var bestStart = -1, bestLength = 0
        var k = 0
        while k < 8 {
            if group(k) == 0 {
                var e = k
                while e < 8 && group(e) == 0 { e += 1 }
                if e - k > bestLength { bestStart = k; bestLength = e - k }
                k = e
            } else {
                k += 1
            }
        }
        return bestLength < 2 ? (-1, 0) : (bestStart, bestLength)
    }

    /// RFC 5952 §4: lower-case hex without leading zeros, the longest run of two or more zero
    /// groups (the first, on a tie) as `::`; IPv4-mapped addresses as `::ffff:192.0.2.1` (§5).
    static func ipv6Text(_ b: ArraySlice<UInt8>) -> String {
        var groups = [UInt16](repeating: 0, count: 8)
        for k in 0..<8 { groups[k] = UInt16(b[2 * k]) << 8 | UInt16(b[2 * k + 1]) }
        if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xFFFF {
            return "::ffff:\(b[12]).\(b[13]).\(b[14]).\(b[15])"
        }
        let (bestStart, bestLength) = ipv6ZeroRun { groups[$0] }
        var s = ""
        var needColon = false
        var k = 0
        while k < 8 {
            if k == bestStart {
                s.append("::")
                k += bestLength
                needColon = false
                continue
            }
            if needColon { s.append(":") }
            s.append(String(groups[k], radix: 16))
            needColon = true
            k += 1
        }
        return s
    }
}

extension ResourceRecord {
    /// The rdata as `dig +short` prints it (see `RDataFormatter`).
    public var rdataText: String { RDataFormatter.presentation(type: type, rdata: rdata) }
}
