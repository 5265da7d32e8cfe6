/// A query that passed every wire check (P4): one question, opcode QUERY, at most one OPT
/// with version 0. Class and type policy (non-IN class, AXFR/IXFR) is left to the caller; see
/// `policyViolation(allowChaos:)`.
public struct DNSQuery: Hashable, Sendable {
    public var header: DNSHeader
    public var question: DNSQuestion
    /// The OPT record, when the query had one.
    public var edns: EDNSInfo?
    /// Byte range of the question (QNAME, QTYPE, QCLASS) in the datagram, for callers that
    /// still hold it; the encoder does not need it.
    public var questionRange: Range<Int>

    public init(header: DNSHeader, question: DNSQuestion, edns: EDNSInfo?, questionRange: Range<Int>) {
        self.header = header
        self.question = question
        self.edns = edns
        self.questionRange = questionRange
    }

    @inlinable public var id: UInt16 { header.id }
    @inlinable public var name: DNSName { question.name }
    @inlinable public var type: RRType { question.type }
    @inlinable public var qclass: RRClass { question.qclass }
    @inlinable public var recursionDesired: Bool { header.recursionDesired }
    @inlinable public var checkingDisabled: Bool { header.checkingDisabled }
    @inlinable public var dnssecOK: Bool { edns?.dnssecOK ?? false }

    /// The P4 policy checks that need no view: a class other than IN (CH too when
    /// `allowChaos`) → `.class`, AXFR/IXFR → `.transfer`, both REFUSED. Nil when acceptable.
    @inlinable
    public func policyViolation(allowChaos: Bool = false) -> BadQueryKind? {
        BadQueryKind.classify(type: question.type, qclass: question.qclass, allowChaos: allowChaos)
    }
}

/// The P4 kinds, spelt as the query log's `bad-packet:KIND` reason spells them.
public enum BadQueryKind: String, Hashable, Sendable, CaseIterable {
    /// QDCOUNT ≠ 1 → FORMERR.
    case qdcount
    /// An unparsable question (compression pointer in QNAME, name too long, truncated) or an
    /// unparsable message around it (broken records, several OPT RRs, bytes after the last
    /// record) → FORMERR. The log has no separate kind for the latter, so they share this one.
    case question
    /// An opcode other than QUERY → NOTIMP.
    case opcode
    /// A class other than IN (or CH when allowed) → REFUSED. Decided by the caller.
    case `class`
    /// AXFR or IXFR → REFUSED. Decided by the caller.
    case transfer
    /// EDNS version above 0 → BADVERS (RFC 6891 §6.1.3).
    case ednsVersion = "edns-version"

    /// The rcode P4 prescribes for this kind.
    @inlinable
    public var rcode: RCode {
        switch self {
        case .qdcount, .question: .formErr
        case .opcode: .notImp
        case .class, .transfer: .refused
        case .ednsVersion: .badVers
        }
    }

    /// The log reason, `bad-packet:KIND`.
    public var logReason: String { "bad-packet:" + rawValue }

    /// Class and type policy of P4: nil when the question is acceptable.
    @inlinable
    public static func classify(type: RRType, qclass: RRClass, allowChaos: Bool = false) -> BadQueryKind? {
        if type == .axfr || type == .ixfr { return .transfer }
        if qclass != .in && !(allowChaos && qclass == .ch) { return .class }
        return nil
    }
}

/// A query that must be answered with an error. Carries what the reply needs to echo: the
/// header (id, opcode, RD, CD), the first question when it could be read, and the OPT when
/// exactly one valid OPT was read (every error reply to such a query carries one back, P8;
/// a BADVERS reply cannot be said without it).
public struct BadQuery: Hashable, Sendable {
    public var kind: BadQueryKind
    public var header: DNSHeader
    public var question: DNSQuestion?
    public var edns: EDNSInfo?

    public init(kind: BadQueryKind, header: DNSHeader, question: DNSQuestion?, edns: EDNSInfo?) {
        self.kind = kind
        self.header = header
        self.question = question
        self.edns = edns
    }
}

/// Why a datagram gets no reply at all (P4): counted, never logged.
public enum DropReason: String, Hashable, Sendable {
    /// Shorter than the 12-byte header.
    case tooShort = "too-short"
    /// QR set: a response; answering it could start a loop between servers.
    case response
}

/// The three ways a datagram can end up (P4).
public enum QueryParseResult: Hashable, Sendable {
    case query(DNSQuery)
    case bad(BadQuery)
    case drop(DropReason)
}

/// A question found in a datagram, its name left where it is: what `QueryParser.scan` gives,
/// with no allocation.
public struct ScannedQuestion: Hashable, Sendable {
    /// Where the QNAME's bytes are in the datagram, as sent (validated, uncompressed).
    public var nameRange: Range<Int>
    public var type: RRType
    public var qclass: RRClass
    /// Which bytes of the name are upper-case as sent.
    public var caseMask: NameCaseMask

    /// The question with its name copied out of `datagram`, lower-cased (allocates).
    @inlinable
    public func question(in datagram: UnsafeRawBufferPointer) -> DNSQuestion {
        DNSQuestion(name: DNSName(lowerCasingName: UnsafeRawBufferPointer(rebasing: datagram[nameRange])), type: type, qclass: qclass,
                    caseMask: caseMask)
    }
}

/// A query that passed every wire check (P4), located in its datagram (see `DNSQuery`).
public struct ScannedQuery: Hashable, Sendable {
    public var header: DNSHeader
    public var question: ScannedQuestion
    public var edns: EDNSInfo?
    /// The question section (QNAME, QTYPE, QCLASS) in the datagram.
    public var questionRange: Range<Int>

    @inlinable public var checkingDisabled: Bool { header.checkingDisabled }
    @inlinable public var dnssecOK: Bool { edns?.dnssecOK ?? false }

    /// The parsed query (its name copied out: allocates).
    @inlinable
    public func query(in datagram: UnsafeRawBufferPointer) -> DNSQuery {
        DNSQuery(header: header, question: question.question(in: datagram), edns: edns, questionRange: questionRange)
    }
}

/// `QueryParseResult` before any name is copied out of the datagram.
public enum QueryScanResult: Hashable, Sendable {
    case query(ScannedQuery)
    case bad(kind: BadQueryKind, header: DNSHeader, question: ScannedQuestion?, edns: EDNSInfo?)
    case drop(DropReason)

    /// The parse result, names copied out of `datagram` (the datagram that was scanned).
    public func parsed(in datagram: UnsafeRawBufferPointer) -> QueryParseResult {
        switch self {
        case .query(let q): .query(q.query(in: datagram))
        case .bad(let kind, let header, let question, let edns):
            .bad(BadQuery(kind: kind, header: header, question: question?.question(in: datagram), edns: edns))
        case .drop(let why): .drop(why)
        }
    }
}

/// Parses client queries in place, allocating only the QNAME bytes (`parse`) or nothing at all
/// (`scan`, for callers that can work from the datagram's own bytes).
///
/// Reads the header, the first question and the additional section's OPT; answer and
/// authority records a client may have put in are stepped over unread (with bounds checks),
/// as Unbound's `query_info_parse` does. Never traps: every read is bounds-checked, every
/// loop advances through the datagram or is bounded by a count.
public enum QueryParser {
    /// Parses a datagram (for example a NIO `ByteBuffer`'s readable bytes).
    public static func parse(_ datagram: UnsafeRawBufferPointer) -> QueryParseResult {
        scan(datagram).parsed(in: datagram)
    }

    /// Every check of `parse`, with the question's name left in the datagram: no allocation.
    public static func scan(_ datagram: UnsafeRawBufferPointer) -> QueryScanResult {
        let r = WireReader(datagram)
        guard let header = DNSHeader.read(r) else { return .drop(.tooShort) }
        if header.isResponse { return .drop(.response) }

        // The first question, when there is one and it reads.
        var reader = WireReader(datagram, offset: DNSHeader.byteCount)
        var question: ScannedQuestion? = nil
        var questionRange = 12..<12
        // The reader stands after the first question (or there is none), so the rest of the
        // message can be walked for its OPT.
        var positioned = header.qdCount == 0
        if header.qdCount >= 1 {
            let start = reader.offset
            if case .success(let (name, mask)) = reader.scanUncompressedName(),
               let t = reader.readU16(), let c = reader.readU16() {
                question = ScannedQuestion(nameRange: name, type: RRType(t), qclass: RRClass(c), caseMask: mask)
                questionRange = start..<reader.offset
                positioned = true
            } else {
                // Not a question vpcdns answers (a compression pointer, a name too long), but
                // still stepped over when it can be: the FORMERR carries the OPT back when one
                // follows (P8, RFC 6891 §6.1.1).
                var past = WireReader(datagram, offset: start)
                if past.skipName(), past.skip(4) {
                    reader = past
                    positioned = true
                }
            }
        }

        // The rest of the message: further questions, answer and authority records (skipped),
        // then the additional section for the OPT.
        var rest = (wellFormed: false, edns: EDNSInfo?.none)
        if positioned {
            rest = walkRest(&reader, header: header)
        }
        // What an error reply echoes: the OPT whenever one was read and valid, even when
        // something else in the message is broken (P8).
        let edns = rest.edns

        if header.opcode != DNSHeader.opcodeQuery {
            return .bad(kind: .opcode, header: header, question: question, edns: edns)
        }
        if header.qdCount != 1 {
            return .bad(kind: .qdcount, header: header, question: question, edns: edns)
        }
        guard let q = question, rest.wellFormed else {
            return .bad(kind: .question, header: header, question: question, edns: edns)
        }
        if let e = edns, e.version > 0 {
            return .bad(kind: .ednsVersion, header: header, question: q, edns: e)
        }
        return .query(ScannedQuery(header: header, question: q, edns: edns, questionRange: questionRange))
    }

    /// Parses a datagram held in an array.
    public static func parse(_ datagram: [UInt8]) -> QueryParseResult {
        datagram.withUnsafeBytes { parse($0) }
    }

    /// Parses a datagram held in an array slice.
    public static func parse(_ datagram: ArraySlice<UInt8>) -> QueryParseResult {
        datagram.withUnsafeBytes { parse($0) }
    }

    /// Walks everything after the first question. `wellFormed` is false when the message is
    /// malformed: a record runs past the end, more than one OPT, an OPT whose owner is not the
    /// root, or bytes left over after the last counted record. `edns` is the OPT when exactly
    /// one valid OPT was read, even if the message turns out malformed after it (an error
    /// reply still echoes it, P8); nil when there was none or it was invalid.
    static func walkRest(_ reader: inout WireReader, header: DNSHeader) -> (wellFormed: Bool, edns: EDNSInfo?) {
        // Further questions (only reached for QDCOUNT > 1, itself an error; walked so the
        // OPT can still be found for the reply).
        if header.qdCount > 1 {
            for _ in 1..<Int(header.qdCount) {
                guard reader.skipName(), reader.skip(4) else { return (false, nil) }
            }
        }
        let skipCount = Int(header.anCount) + Int(header.nsCount)
        // Each record is at least 11 bytes: reject impossible counts before looping.
        guard (skipCount + Int(header.arCount)) * 11 <= reader.remaining else { return (false, nil) }
        for _ in 0..<skipCount {
            guard reader.skipRecord() else { return (false, nil) }
        }
        var edns: EDNSInfo? = nil
        for _ in 0..<Int(header.arCount) {
            let start = reader.offset
            guard reader.skipName(), let type = reader.readU16(), let cls = reader.readU16(),
                  let ttl = reader.readU32(), let rdlen = reader.readU16(), reader.skip(Int(rdlen))
            else { return (false, edns) }
            if type == RRType.opt.rawValue {
                // RFC 6891 §6.1.1: one OPT at most, owned by the root; otherwise none counts.
                guard edns == nil, reader.byte(at: start) == 0 else { return (false, nil) }
                edns = EDNSInfo(classField: cls, ttl: ttl)
            }
        }
        return (reader.remaining == 0, edns)
    }
}
