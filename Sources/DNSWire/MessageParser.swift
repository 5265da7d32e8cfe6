/// Why a whole message could not be parsed. Upstream replies that throw are "broken
/// replies" (P6 `upstream-error`).
public enum DNSWireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Shorter than a header, or a section count promises more than the bytes hold.
    case truncated
    /// A name with a reserved label type, over 255 octets, or a pointer past the end.
    case badName
    /// Compression pointers that loop (more hops than any real name needs).
    case pointerLoop
    /// Rdata that does not have the shape its type demands (names not ending where the
    /// fixed fields say).
    case badRData
    /// More than one OPT, an OPT outside the additional section, or not owned by the root.
    case badOPT

    public var description: String {
        switch self {
        case .truncated: "message truncated"
        case .badName: "malformed domain name"
        case .pointerLoop: "compression pointer loop"
        case .badRData: "malformed rdata"
        case .badOPT: "malformed or repeated OPT record"
        }
    }

    init(_ f: NameReadFailure) {
        switch f {
        case .truncated: self = .truncated
        case .pointerLoop: self = .pointerLoop
        case .pointer, .badLabelType, .tooLong, .badPointer: self = .badName
        }
    }
}

/// A whole message with every record decoded: what an upstream reply becomes before it is
/// checked, cached and re-encoded for the client.
///
/// Owner names are lower-cased `DNSName`s; names inside the rdata of the types that may carry
/// compressed names (RFC 3597 §4: CNAME, NS, PTR, MX, SOA, MB, MD, MF, MG, MR, MINFO, DNAME,
/// and also RP, AFSDB, RT, KX, SRV, NAPTR) are decompressed with their case kept, so the
/// record can be written into any other message. Other rdata is kept as it came.
public struct DNSMessage: Hashable, Sendable {
    public var header: DNSHeader
    public var questions: [DNSQuestion]
    public var answer: [ResourceRecord]
    public var authority: [ResourceRecord]
    /// Additional records without the OPT, which is in `edns`.
    public var additional: [ResourceRecord]
    public var edns: EDNSInfo?

    public init(header: DNSHeader, questions: [DNSQuestion], answer: [ResourceRecord], authority: [ResourceRecord],
                additional: [ResourceRecord], edns: EDNSInfo?) {
        self.header = header
        self.questions = questions
        self.answer = answer
        self.authority = authority
        self.additional = additional
        self.edns = edns
    }

    /// The full rcode: the header's 4 bits and, with EDNS, the OPT's upper 8 (BADVERS = 16).
    @inlinable
    public var rcode: RCode {
        RCode(rawValue: UInt16(header.rcodeLow) | UInt16(edns?.extendedRCode ?? 0) << 4)
    }

    /// True when this message is a reply to the query with `id` and `question`: QR set, same
    /// id, exactly one question equal to it ignoring case (P6: anything else is discarded).
    public func isReply(toID id: UInt16, question: DNSQuestion) -> Bool {
        header.isResponse && header.id == id && questions.count == 1 && questions[0].matches(question)
    }

    /// Parses a complete message. Throws on anything malformed; never traps, and every loop is
    /// bounded by the packet size or a hop limit. Bytes after the last counted record are
    /// ignored.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(DNSWireError) -> DNSMessage {
        let r = WireReader(bytes)
        guard let header = DNSHeader.read(r) else { throw .truncated }
        var p = DNSHeader.byteCount
        // Each question takes at least 5 bytes and each record at least 11: reject counts the
        // packet cannot hold before allocating for them.
        let minimum = Int(header.qdCount) * 5 + (Int(header.anCount) + Int(header.nsCount) + Int(header.arCount)) * 11
        guard minimum <= bytes.count - p else { throw .truncated }

        var questions: [DNSQuestion] = []
        questions.reserveCapacity(Int(header.qdCount))
        var scratch: [UInt8] = []
        scratch.reserveCapacity(64)
        for _ in 0..<Int(header.qdCount) {
            scratch.removeAll(keepingCapacity: true)
            let end: Int
            switch r.readName(at: p, limit: bytes.count, lowercase: false, into: &scratch) {
            case .success(let e): end = e
            case .failure(let f): throw DNSWireError(f)
            }
            guard let t = r.u16(at: end), let c = r.u16(at: end + 2) else { throw .truncated }
            let mask = NameCaseMask(originalWire: scratch)
            let name = DNSName(uncheckedWire: scratch.map(asciiLower))
            questions.append(DNSQuestion(name: name, type: RRType(t), qclass: RRClass(c), caseMask: mask))
            p = end + 4
        }

        var edns: EDNSInfo? = nil
        let answer = try readRecords(r, at: &p, count: Int(header.anCount), allowOPT: false, edns: &edns)
        let authority = try readRecords(r, at: &p, count: Int(header.nsCount), allowOPT: false, edns: &edns)
        let additional = try readRecords(r, at: &p, count: Int(header.arCount), allowOPT: true, edns: &edns)
        return DNSMessage(header: header, questions: questions, answer: answer, authority: authority,
                          additional: additional, edns: edns)
    }

    /// Parses a complete message held in an array.
    public static func parse(_ bytes: [UInt8]) throws(DNSWireError) -> DNSMessage {
        let result: Result<DNSMessage, DNSWireError> = bytes.withUnsafeBytes { raw in
            do throws(DNSWireError) { return .success(try parse(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    static func readRecords(_ r: WireReader, at p: inout Int, count: Int, allowOPT: Bool,
                            edns: inout EDNSInfo?) throws(DNSWireError) -> [ResourceRecord] {
        var out: [ResourceRecord] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            var owner: [UInt8] = []
            let nameEnd: Int
            switch r.readName(at: p, limit: r.count, lowercase: true, into: &owner) {
            case .success(let e): nameEnd = e
            case .failure(let f): throw DNSWireError(f)
            }
            guard let t = r.u16(at: nameEnd), let c = r.u16(at: nameEnd + 2), let ttl = r.u32(at: nameEnd + 4),
                  let rdlen = r.u16(at: nameEnd + 8)
            else { throw .truncated }
            let rdStart = nameEnd + 10
            let rdEnd = rdStart + Int(rdlen)
            guard rdEnd <= r.count else { throw .truncated }
            p = rdEnd
            if t == RRType.opt.rawValue {
                guard allowOPT, edns == nil, owner == [0] else { throw .badOPT }
                edns = EDNSInfo(classField: c, ttl: ttl)
                continue
            }
            let rdata = try readRData(r, type: t, start: rdStart, end: rdEnd)
            out.append(ResourceRecord(name: DNSName(uncheckedWire: owner), type: RRType(t), rrClass: RRClass(c),
                                      ttl: ttl, rdata: rdata))
        }
        return out
    }

    /// Rdata with any compressed names expanded. The layout per type is: fixed bytes before
    /// the names, how many names, fixed bytes after. NAPTR's three character-strings are
    /// handled as variable fixed bytes before its name.
    static func readRData(_ r: WireReader, type: UInt16, start: Int, end: Int) throws(DNSWireError) -> [UInt8] {
        let layout: (before: Int, names: Int, after: Int)
        switch type {
        case 2, 3, 4, 5, 7, 8, 9, 12, 39: layout = (0, 1, 0)     // NS MD MF CNAME MB MG MR PTR DNAME
        case 15, 18, 21, 36: layout = (2, 1, 0)                  // MX AFSDB RT KX
        case 6: layout = (0, 2, 20)                              // SOA
        case 14, 17: layout = (0, 2, 0)                          // MINFO RP
        case 33: layout = (6, 1, 0)                              // SRV
        case 35:                                                 // NAPTR: order pref, 3 strings, name
            var q = start + 4
            for _ in 0..<3 {
                guard let l = r.byte(at: q), q < end else { throw .badRData }
                q += 1 + Int(l)
            }
            guard q <= end else { throw .badRData }
            layout = (q - start, 1, 0)
        default:
            return copy(r, start, end)
        }
        guard start + layout.before <= end else { throw .badRData }
        var out: [UInt8] = []
        out.reserveCapacity(end - start + 32)
        for k in start..<(start + layout.before) { out.append(r.bytes[k]) }
        var q = start + layout.before
        for _ in 0..<layout.names {
            switch r.readName(at: q, limit: end, lowercase: false, into: &out) {
            case .success(let e): q = e
            case .failure(let f):
                throw f == .pointerLoop ? .pointerLoop : .badRData
            }
        }
        guard q + layout.after == end else { throw .badRData }
        for k in q..<end { out.append(r.bytes[k]) }
        return out
    }

    static func copy(_ r: WireReader, _ start: Int, _ end: Int) -> [UInt8] {
        guard end > start else { return [] }
        return Array(UnsafeRawBufferPointer(rebasing: r.bytes[start..<end]))
    }
}
