/// Times in query logs and on the command line.
public enum LogTime {
    /// `2026-11-27T20:15:03Z`, `2026-11-27T20:15:03.177Z`, `...03.123456Z`, or with an offset
    /// (`+00:00`, `-0700`) instead of `Z`: microseconds since the Unix epoch.
    public static func parseTimestamp(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                let c = b[i]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard b.count >= 19, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
              b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
              let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2),
              let h = num(11, 2), let mi = num(14, 2), let sec = num(17, 2),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61 else { return nil }
        var i = 19
        var frac: Int64 = 0
        if i < b.count && (b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",")) {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if digits < 6 { frac = frac * 10 + Int64(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            var k = digits
            while k < 6 { frac *= 10; k += 1 }
        }
        var offset = 0
        guard i < b.count else { return nil }   // a zone is required: these are UTC log times
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign = b[i] == UInt8(ascii: "+") ? 1 : -1
            guard let oh = num(i + 1, 2) else { return nil }
            var j = i + 3
            if j < b.count && b[j] == UInt8(ascii: ":") { j += 1 }
            guard let om = num(j, 2) else { return nil }
            offset = sign * (oh * 3600 + om * 60)
            i = j + 2
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(y, mo, d)
        let secs = Int64(days) * 86400 + Int64(h * 3600 + mi * 60 + sec) - Int64(offset)
        return secs * 1_000_000 + frac
    }

    /// `15m`, `2h`, `1d`, `30s`, `1w` (also combined: `1h30m`): microseconds.
    public static func parseAge(_ s: String) -> Int64? {
        var total: Int64 = 0
        var n: Int64 = 0
        var sawDigit = false
        var sawUnit = false
        for c in s.lowercased() {
            if let d = c.wholeNumberValue, c.isASCII {
                n = n * 10 + Int64(d)
                sawDigit = true
                guard n < 1_000_000_000 else { return nil }
                continue
            }
            guard sawDigit else { return nil }
            let unit: Int64
            switch c {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            case "w": unit = 7 * 86400
            default: return nil
            }
            total += n * unit * 1_000_000
            n = 0
            sawDigit = false
            sawUnit = true
        }
        guard sawUnit, !sawDigit else { return nil }
        return total
    }

    /// A `--since`/`--until` value: an ISO 8601 time or an age counted back from `nowMicros`.
    public static func parse(_ s: String, nowMicros: Int64) -> Int64? {
        if let t = parseTimestamp(s) { return t }
        if let a = parseAge(s) { return nowMicros - a }
        return nil
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}
