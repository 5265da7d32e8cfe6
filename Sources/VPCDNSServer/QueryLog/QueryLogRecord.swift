#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DNSWire
import VPCDNSCore

/// One query-log line (query-log.md): AWS's Route 53 Resolver fields with AWS's names and
/// value forms, plus vpcdns's explanation under `vpcdns`.
///
/// The JSON is written by hand, straight into bytes (`LogLine`): the field set is fixed, and a
/// general encoder would cost an allocation per value. The server itself does not build this
/// value per query: it writes the same segments, most of them encoded once in advance
/// (`QueryLogFields`, `LocalLogPieces`); this is the form for everything else and for tests.
public struct QueryLogRecord: Sendable {
    public enum CacheUse: String, Sendable { case hit, miss, none }

    /// A name field: text as given, or a DNS name written straight from its wire form (the
    /// per-query path, which so never builds the name's text as a String).
    public enum Name: Sendable {
        case text(String)
        /// The question's name as asked: case kept, trailing dot (`query_name`).
        case asked(DNSQuestion)
        /// A zone or rule domain: lower case as configured, no trailing dot (`vpcdns.zone`).
        case domain(DNSName)
    }

    /// The client address: text as given, or the address itself.
    public enum Address: Sendable {
        case text(String)
        case ip(IPAddress)
    }

    /// An `IP:PORT` field (`upstream`, `listener`): text as given, or the endpoint itself.
    public enum Endpoint: Sendable {
        case text(String)
        case address(SocketEndpoint)
    }

    /// The answer section: (Rdata, Type, Class) texts, or the records themselves, formatted
    /// while the line is written.
    public enum Answers: Sendable {
        case text([(rdata: String, type: String, rrClass: String)])
        case records([ResourceRecord])
    }

    public var accountID: String
    public var region: String
    public var vpcID: String
    /// Wall-clock time of receipt, microseconds since the Unix epoch.
    public var receivedAtMicros: Int64
    /// The name as asked, case kept, with a trailing dot; `-` when unreadable.
    public var queryName: Name
    public var queryType: String
    public var queryClass: String
    public var rcode: String
    /// In answer-section order.
    public var answers: Answers
    public var srcAddr: Address
    public var srcPort: UInt16
    public var transport: String
    public var resolverEndpoint: String?
    public var decision: String
    public var zone: Name?
    public var zoneID: String?
    public var reason: String?
    public var cache: CacheUse
    public var upstream: String?
    /// `vpcdns.listener`: the `IP:PORT` the query was sent to (the server always knows it).
    public var listener: String?
    public var via: String
    public var latencyMicros: Int64

    public init(accountID: String, region: String, vpcID: String, receivedAtMicros: Int64, queryName: Name, queryType: String,
                queryClass: String, rcode: String, answers: Answers, srcAddr: Address,
                srcPort: UInt16, transport: String, resolverEndpoint: String?, decision: String, zone: Name?, zoneID: String?,
                reason: String?, cache: CacheUse, upstream: String?, listener: String? = nil, via: String, latencyMicros: Int64) {
        self.accountID = accountID
        self.region = region
        self.vpcID = vpcID
        self.receivedAtMicros = receivedAtMicros
        self.queryName = queryName
        self.queryType = queryType
        self.queryClass = queryClass
        self.rcode = rcode
        self.answers = answers
        self.srcAddr = srcAddr
        self.srcPort = srcPort
        self.transport = transport
        self.resolverEndpoint = resolverEndpoint
        self.decision = decision
        self.zone = zone
        self.zoneID = zoneID
        self.reason = reason
        self.cache = cache
        self.upstream = upstream
        self.listener = listener
        self.via = via
        self.latencyMicros = latencyMicros
    }

    /// Every field as text.
    public init(accountID: String, region: String, vpcID: String, receivedAtMicros: Int64, queryName: String, queryType: String,
                queryClass: String, rcode: String, answers: [(rdata: String, type: String, rrClass: String)], srcAddr: String,
                srcPort: UInt16, transport: String, resolverEndpoint: String?, decision: String, zone: String?, zoneID: String?,
                reason: String?, cache: CacheUse, upstream: String?, listener: String? = nil, via: String, latencyMicros: Int64) {
        self.init(accountID: accountID, region: region, vpcID: vpcID, receivedAtMicros: receivedAtMicros, queryName: .text(queryName),
                  queryType: queryType, queryClass: queryClass, rcode: rcode, answers: .text(answers), srcAddr: .text(srcAddr),
                  srcPort: srcPort, transport: transport, resolverEndpoint: resolverEndpoint, decision: decision,
                  zone: zone.map { .text($0) }, zoneID: zoneID, reason: reason, cache: cache, upstream: upstream, listener: listener, via: via,
                  latencyMicros: latencyMicros)
    }

    /// The mnemonic of a type (`A`, `TYPE65534`); the common ones without a table lookup.
    public static func text(_ t: RRType) -> String {
        switch t.rawValue {
        case RRType.a.rawValue: "A"
        case RRType.aaaa.rawValue: "AAAA"
        case RRType.cname.rawValue: "CNAME"
        default: t.description
        }
    }

    /// The mnemonic of a class (`IN`, `CH`).
    public static func text(_ c: RRClass) -> String {
        c == .in ? "IN" : c.description
    }

    /// The record as one JSON line, newline included.
    public func jsonLine() -> String {
        var sink = ByteSink()
        var dates = DateCache()
        write(to: &sink, dates: &dates)
        return sink.withBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// Appends the record as one JSON line (newline included) to `out` as UTF-8: the segments
    /// of `LogLine`, each encoded from the record's fields.
    func write(to out: inout ByteSink, dates: inout DateCache) {
        LogLine.assemble(
            to: &out, dates: &dates, receivedAtMicros: receivedAtMicros,
            head: { LogLine.head(accountID: accountID, region: region, vpcID: vpcID, to: &$0) },
            name: { JSONBytes.name(queryName, to: &$0) },
            middle: { LogLine.middle(type: queryType, rrClass: queryClass, rcode: rcode, answers: answers, to: &$0) },
            address: { LogLine.address(srcAddr, to: &$0) },
            port: srcPort,
            transport: { JSONBytes.string(transport, to: &$0) },
            srcids: { LogLine.srcids(resolverEndpoint: resolverEndpoint, to: &$0) },
            decision: { LogLine.decision(decision, zone: zone, zoneID: zoneID, reason: reason, cache: cache, to: &$0) },
            upstream: upstream.map { .text($0) },
            listener: listener.map { .text($0) },
            via: { JSONBytes.string(via, to: &$0) },
            latencyMicros: latencyMicros)
    }
}

/// A growable byte buffer for one line: appends are a bounds check and a store (no Array
/// uniqueness or capacity bookkeeping per byte). Owns its memory; not copyable.
struct ByteSink: ~Copyable {
    var base: UnsafeMutablePointer<UInt8>
    var capacity: Int
    var count = 0
    /// False while `base` is memory lent by the caller (a stack buffer), which is not freed.
    var owned: Bool

    init(capacity: Int = 1024) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
        owned = true
    }

    /// Starts in `buffer` (not freed here); moves to the heap only if a line outgrows it.
    init(buffer: UnsafeMutableBufferPointer<UInt8>) {
        base = buffer.baseAddress!
        capacity = buffer.count
        owned = false
    }

    deinit { if owned { base.deallocate() } }

    /// Room for `n` more bytes.
    @inline(__always)
    mutating func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    mutating func grow(_ needed: Int) {
        var c = capacity * 2
        while c < needed { c *= 2 }
        let new = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        new.initialize(from: base, count: count)
        if owned { base.deallocate() }
        base = new
        capacity = c
        owned = true
    }

    @inline(__always)
    mutating func append(_ b: UInt8) {
        reserve(1)
        base[count] = b
        count += 1
    }

    @inline(__always)
    mutating func append(contentsOf b: UnsafeBufferPointer<UInt8>) {
        guard let p = b.baseAddress, b.count > 0 else { return }
        reserve(b.count)
        (base + count).initialize(from: p, count: b.count)
        count += b.count
    }

    /// Appends a copy of `count` bytes already written at `offset`.
    mutating func appendCopy(from offset: Int, count n: Int) {
        reserve(n)
        (base + count).initialize(from: base + offset, count: n)
        count += n
    }

    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }
}

/// JSON pieces written straight into a byte buffer (UTF-8).
enum JSONBytes {
    @inline(__always)
    static func literal(_ s: StaticString, to out: inout ByteSink) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// A JSON string, quoted and escaped as RFC 8259 (and `JSONValue.writeString`) does:
    /// `\"`, `\\`, `\n`, `\r`, `\t`, other control characters as `\u00XX`; everything else as is.
    static func string(_ s: String, to out: inout ByteSink) {
        out.append(0x22)
        var s = s
        s.withUTF8 { u in
            var run = 0
            for i in 0..<u.count {
                let c = u[i]
                guard c == 0x22 || c == 0x5C || c < 0x20 else { continue }
                if run < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: u[run..<i])) }
                switch c {
                case 0x22: out.append(0x5C); out.append(0x22)
                case 0x5C: out.append(0x5C); out.append(0x5C)
                case 0x0A: out.append(0x5C); out.append(0x6E)
                case 0x0D: out.append(0x5C); out.append(0x72)
                case 0x09: out.append(0x5C); out.append(0x74)
                default:
                    literal("\\u00", to: &out)
                    out.append(hexDigit(c >> 4))
                    out.append(hexDigit(c & 0x0F))
                }
                run = i + 1
            }
            if run < u.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: u[run..<u.count])) }
        }
        out.append(0x22)
    }

    /// A name field as a JSON string.
    static func name(_ n: QueryLogRecord.Name, to out: inout ByteSink) {
        switch n {
        case .text(let t): string(t, to: &out)
        case .asked(let q): wireName(q.name.wire, caseMask: q.caseMask, trailingDot: true, to: &out)
        case .domain(let d): wireName(d.wire, caseMask: nil, trailingDot: false, to: &out)
        }
    }

    /// A wire-form name in presentation form as a JSON string: what `DNSQuestion.originalNameText`
    /// (with the trailing dot) or `DNSName.text` (without) gives, then JSON-escaped. Letters the
    /// case mask marks are upper-cased as `originalNameWire` does; `.\";()@$` in a label are
    /// backslash-escaped and bytes outside `!`...`~` written `\DDD`, as `appendEscaped` does. The
    /// root is `.`; a malformed wire name (never produced by DNSWire) is written as `.` too.
    static func wireName(_ wire: [UInt8], caseMask: NameCaseMask?, trailingDot: Bool, to out: inout ByteSink) {
        out.append(0x22)
        wire.withUnsafeBufferPointer { w in
            if nameEnd(w, at: 0) != nil {
                nameText(w, at: 0, caseMask: caseMask, trailingDot: trailingDot, to: &out)
            } else {
                out.append(0x2E)  // never produced by DNSWire; written as the root
            }
        }
        out.append(0x22)
    }

    /// The rdata of the common types (A, AAAA, NS, CNAME, PTR, DNAME, MX, TXT, SPF) as a JSON
    /// string holding exactly what `RDataFormatter.presentation` gives. Returns false, having
    /// written nothing, for other types and for rdata not of its type's shape: the caller then
    /// uses `rdataText` (RFC 3597 form and the rarer types).
    static func rdata(_ type: RRType, _ rdata: [UInt8], to out: inout ByteSink) -> Bool {
        rdata.withUnsafeBufferPointer { b in
            switch type.rawValue {
            case RRType.a.rawValue:
                guard b.count == 4 else { return false }
                out.append(0x22)
                dottedQuad(UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3]), to: &out)
                out.append(0x22)
            case RRType.aaaa.rawValue:
                guard b.count == 16 else { return false }
                out.append(0x22)
                ipv6(b, to: &out)
                out.append(0x22)
            case RRType.ns.rawValue, RRType.cname.rawValue, RRType.ptr.rawValue, 39:  // DNAME
                guard nameEnd(b, at: 0) == b.count else { return false }
                out.append(0x22)
                nameText(b, at: 0, caseMask: nil, trailingDot: true, to: &out)
                out.append(0x22)
            case RRType.mx.rawValue:
                guard b.count >= 3, nameEnd(b, at: 2) == b.count else { return false }
                out.append(0x22)
                decimal(UInt64(b[0]) << 8 | UInt64(b[1]), to: &out)
                out.append(0x20)
                nameText(b, at: 2, caseMask: nil, trailingDot: true, to: &out)
                out.append(0x22)
            case RRType.txt.rawValue, RRType.spf.rawValue:
                // One or more character-strings filling the rdata exactly.
                var i = 0
                while i < b.count { i += 1 + Int(b[i]) }
                guard !b.isEmpty, i == b.count else { return false }
                out.append(0x22)
                i = 0
                while i < b.count {
                    if i > 0 { out.append(0x20) }
                    let len = Int(b[i])
                    literal(#"\""#, to: &out)
                    for j in (i + 1)..<(i + 1 + len) {
                        let c = b[j]
                        switch c {
                        case 0x22: literal(#"\\\""#, to: &out)  // \" in the text
                        case 0x5C: literal(#"\\\\"#, to: &out)  // \\ in the text
                        case 0x20...0x7E: out.append(c)
                        default: literal(#"\\"#, to: &out); padded(UInt64(c), width: 3, to: &out)
                        }
                    }
                    literal(#"\""#, to: &out)
                    i += 1 + len
                }
                out.append(0x22)
            default:
                return false
            }
            return true
        }
    }

    /// Where the uncompressed name at `start` ends, or nil when it runs past the end or breaks
    /// the limits `RDataFormatter.name` checks (labels of at most 63, names of at most 255).
    static func nameEnd(_ b: UnsafeBufferPointer<UInt8>, at start: Int) -> Int? {
        var i = start
        while true {
            guard i >= 0, i < b.count else { return nil }
            let len = Int(b[i])
            if len == 0 { return i + 1 }
            guard len <= 63, i + 1 + len <= b.count, i + 1 + len - start + 1 <= DNSName.maxWireLength else { return nil }
            i += len + 1
        }
    }

    /// The labels of a well-formed name at `start` in presentation form, JSON-escaped, without
    /// quotes: `.` between labels (and after the last with `trailingDot`), the root as `.`.
    static func nameText(_ w: UnsafeBufferPointer<UInt8>, at start: Int, caseMask: NameCaseMask?, trailingDot: Bool,
                         to out: inout ByteSink) {
        var i = start
        var first = true
        while i < w.count {
            let len = Int(w[i])
            if len == 0 { break }
            if !first { out.append(0x2E) }
            first = false
            for j in (i + 1)...(i + len) {
                var c = w[j]
                if let m = caseMask, m.isSet(j) { c &= ~0x20 }
                switch c {
                case 0x2E, 0x3B, 0x28, 0x29, 0x40, 0x24:  // . ; ( ) @ $ -> \c, the backslash JSON-escaped
                    out.append(0x5C); out.append(0x5C); out.append(c)
                case 0x5C:  // \\ in the name
                    literal(#"\\\\"#, to: &out)
                case 0x22:  // \" in the name
                    literal(#"\\\""#, to: &out)
                case 0x21...0x7E:
                    out.append(c)
                default:  // \DDD
                    out.append(0x5C); out.append(0x5C)
                    padded(UInt64(c), width: 3, to: &out)
                }
            }
            i += 1 + len
        }
        if first || trailingDot { out.append(0x2E) }
    }

    /// RFC 5952 text of 16 address bytes, as `RDataFormatter.ipv6Text` writes it.
    static func ipv6(_ b: UnsafeBufferPointer<UInt8>, to out: inout ByteSink) {
        var groups: (UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16) = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &groups) { raw in
            let g = raw.bindMemory(to: UInt16.self)
            for k in 0..<8 { g[k] = UInt16(b[2 * k]) << 8 | UInt16(b[2 * k + 1]) }
        }
        withUnsafeBytes(of: &groups) { raw in
            let g = raw.bindMemory(to: UInt16.self)
            if g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xFFFF {
                literal("::ffff:", to: &out)
                dottedQuad(UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]), to: &out)
                return
            }
            let (bestStart, bestLength) = RDataFormatter.ipv6ZeroRun { g[$0] }
            var needColon = false
            var k = 0
            while k < 8 {
                if k == bestStart {
                    out.append(0x3A); out.append(0x3A)
                    k += bestLength
                    needColon = false
                    continue
                }
                if needColon { out.append(0x3A) }
                let v = g[k]
                var started = false
                for shift in stride(from: 12, through: 0, by: -4) {
                    let d = UInt8((v >> UInt16(shift)) & 0xF)
                    if d != 0 || started || shift == 0 { out.append(hexDigit(d)); started = true }
                }
                needColon = true
                k += 1
            }
        }
    }

    /// `a.b.c.d` for an IPv4 address held as a number.
    static func dottedQuad(_ v: UInt32, to out: inout ByteSink) {
        decimal(UInt64(v >> 24), to: &out); out.append(0x2E)
        decimal(UInt64((v >> 16) & 0xFF), to: &out); out.append(0x2E)
        decimal(UInt64((v >> 8) & 0xFF), to: &out); out.append(0x2E)
        decimal(UInt64(v & 0xFF), to: &out)
    }

    @inline(__always)
    static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x61 + v - 10 }

    /// `v` in decimal.
    @inline(__always)
    static func decimal(_ v: UInt64, to out: inout ByteSink) {
        var digits = 1
        var n = v
        while n >= 100 { n /= 100; digits += 2 }
        if n >= 10 { digits += 1 }
        padded(v, width: digits, to: &out)
    }

    /// "00" to "99", two bytes each.
    private static let digitPairs: StaticString = """
        0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
        5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899
        """

    /// The last `width` decimal digits of `v`, zero-padded (two digits per division).
    static func padded(_ v: UInt64, width: Int, to out: inout ByteSink) {
        out.reserve(width)
        let pairs = digitPairs.utf8Start
        var x = v
        var i = out.count + width
        while i - out.count >= 2 {
            let r = Int(x % 100)
            x /= 100
            i -= 2
            out.base[i] = pairs[2 * r]
            out.base[i + 1] = pairs[2 * r + 1]
        }
        if i > out.count { out.base[i - 1] = 0x30 &+ UInt8(truncatingIfNeeded: x % 10) }
        out.count += width
    }
}

/// UTC timestamps as AWS writes them, without Foundation's formatters.
public enum Timestamp {
    /// `2026-11-27T20:15:03Z`, or with `fraction` `2026-11-27T20:15:03.123456Z`.
    public static func iso8601(micros: Int64, fraction: Bool) -> String {
        var secs = time_t(micros / 1_000_000)
        var tm = tm()
        gmtime_r(&secs, &tm)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        var out = "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2))"
        if fraction { out += "." + pad(Int32(micros % 1_000_000), 6) }
        return out + "Z"
    }

    /// `YYYY-MM-DDTHH:MM:SS`: 19 bytes.
    static let dateTimeLength = 19

    /// `2026-11-27T20:15:03` (UTC) for seconds since the epoch, by arithmetic (H. Hinnant's
    /// civil-from-days), without gmtime_r. Years 0...9999.
    static func writeDateTime(seconds: Int64, to out: inout ByteSink) {
        var days = seconds / 86_400
        var rem = seconds % 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        JSONBytes.padded(UInt64(clamping: year), width: 4, to: &out)
        out.append(0x2D); two(month, &out)
        out.append(0x2D); two(day, &out)
        out.append(0x54); two(rem / 3_600, &out)
        out.append(0x3A); two(rem / 60 % 60, &out)
        out.append(0x3A); two(rem % 60, &out)
    }

    @inline(__always)
    private static func two(_ v: Int64, _ out: inout ByteSink) {
        out.append(0x30 &+ UInt8(truncatingIfNeeded: v / 10))
        out.append(0x30 &+ UInt8(truncatingIfNeeded: v % 10))
    }
}
