/// The transport a reply goes out on: it decides the size limit (P2).
public enum DNSTransport: String, Hashable, Sendable {
    case udp = "UDP"
    case tcp = "TCP"
}

/// What the builder did with the records it was given.
public struct ResponseSummary: Hashable, Sendable {
    /// TC was set because an answer or authority RRset did not fit.
    public var truncated: Bool
    /// Records actually written per section.
    public var answerCount: Int
    public var authorityCount: Int
    public var additionalCount: Int
    /// Size of the message in `MessageBuilder.bytes`.
    public var byteCount: Int

    public init(truncated: Bool, answerCount: Int, authorityCount: Int, additionalCount: Int, byteCount: Int) {
        self.truncated = truncated
        self.answerCount = answerCount
        self.authorityCount = authorityCount
        self.additionalCount = additionalCount
        self.byteCount = byteCount
    }
}

/// Encodes replies (and upstream queries) straight into one reusable byte array.
///
/// One builder per event loop or connection: each `build…` call clears `bytes` keeping its
/// capacity and reuses the compression table's storage, so after the first few messages a
/// reply costs no allocation at all. Read the result from `bytes` (for example
/// `buffer.writeBytes(builder.bytes)`) before the next call.
///
/// Compression (RFC 1035 §4.1.4): owner names, and names inside the rdata of the RFC 1035
/// types CNAME, NS, PTR, MX and SOA, point at the longest suffix already written. Owners are
/// lower-cased `DNSName`s, so they are matched case-insensitively (an answer owned by the
/// asked name points at the echoed question, in the client's case, as BIND and Unbound do);
/// rdata names are matched byte for byte so their case survives a round trip through the
/// cache. Other types' rdata — SRV targets included (RFC 2782, RFC 3597 §4) — is written as
/// given, uncompressed.
///
/// Truncation policy (P2, RFC 2181 §9): records are written in order; when an answer or
/// authority record does not fit, the whole RRset it belongs to (the run of records with the
/// same owner, type and class) is removed, everything after it is dropped, and TC is set.
/// The client thus keeps the complete RRsets that fit (for example a CNAME whose target's
/// addresses did not fit) and knows to retry over TCP. Additional records that do not fit are
/// dropped by RRset without TC, as RFC 2181 §9 allows. The header, question and OPT always fit.
public struct MessageBuilder: Sendable {
    /// The message last built.
    public private(set) var bytes: [UInt8]
    /// The UDP payload size vpcdns advertises in its OPT and the cap on the client's (P2).
    public var udpPayloadSize: UInt16

    /// Offsets of label starts already written, candidates for compression pointers; in
    /// increasing order, so a rollback trims the tail.
    var compressionTargets: [UInt16]

    /// The smallest UDP limit: RFC 1035 §4.2.1, and the floor for any EDNS size.
    public static let minimumUDPSize = 512
    /// The largest DNS message (TCP's 2-byte length).
    public static let maximumMessageSize = 65535
    /// Size of the OPT RR vpcdns writes (root owner, no options).
    static let optSize = 11

    public init(udpPayloadSize: UInt16 = 1232, initialCapacity: Int = 1536) {
        self.udpPayloadSize = udpPayloadSize
        self.bytes = []
        self.bytes.reserveCapacity(initialCapacity)
        self.compressionTargets = []
        self.compressionTargets.reserveCapacity(64)
    }

    /// P2: 512 without EDNS; with EDNS the client's advertised size capped at ours, never
    /// below 512; no limit but the 65535-byte maximum over TCP.
    @inlinable
    public static func sizeLimit(clientEDNS: EDNSInfo?, ourPayloadSize: UInt16, transport: DNSTransport) -> Int {
        if transport == .tcp { return maximumMessageSize }
        guard let e = clientEDNS else { return minimumUDPSize }
        return max(minimumUDPSize, min(Int(e.udpPayloadSize), Int(ourPayloadSize)))
    }

    // MARK: Replies

    /// A reply to a parsed query: id, opcode, RD and CD from the query, QR and RA set, AA as
    /// given, the question echoed with the client's letter case, and an OPT when the query
    /// had one (our payload size, DO echoed, no options).
    @discardableResult
    public mutating func buildResponse(
        for query: DNSQuery, rcode: RCode, authoritative: Bool = false,
        answer: [ResourceRecord] = [], authority: [ResourceRecord] = [], additional: [ResourceRecord] = [],
        transport: DNSTransport = .udp
    ) -> ResponseSummary {
        buildResponse(
            queryHeader: query.header, question: query.question, clientEDNS: query.edns, rcode: rcode,
            authoritative: authoritative, answer: answer, authority: authority, additional: additional,
            transport: transport)
    }

    /// The error reply P4 prescribes for a bad query: its kind's rcode (FORMERR, NOTIMP,
    /// BADVERS, REFUSED), the question echoed when it was readable, an OPT whenever the query
    /// carried a valid one (P8, RFC 6891 §6.1.1). NOTIMP for an unknown opcode carries no RA and
    /// no AA, and does not echo RD or CD either (P8): what those bits mean belongs to the
    /// opcode, which vpcdns does not implement (RFC 8906 §8.1.3 expects none of them).
    @discardableResult
    public mutating func buildErrorResponse(for bad: BadQuery, transport: DNSTransport = .udp) -> ResponseSummary {
        let summary = buildResponse(
            queryHeader: bad.header, question: bad.question, clientEDNS: bad.edns, rcode: bad.kind.rcode,
            authoritative: false, answer: [], authority: [], additional: [], transport: transport)
        if bad.kind == .opcode {
            let flags = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
            setU16(flags & ~(DNSHeader.raBit | DNSHeader.aaBit | DNSHeader.rdBit | DNSHeader.cdBit), at: 2)
        }
        return summary
    }

    /// The general form behind the other two. `rcode` above 15 (BADVERS) puts its low 4 bits
    /// in the header and the rest in the OPT's extended rcode; without a client OPT only the
    /// low bits can be sent.
    @discardableResult
    public mutating func buildResponse(
        queryHeader: DNSHeader, question: DNSQuestion?, clientEDNS: EDNSInfo?, rcode: RCode,
        authoritative: Bool, answer: [ResourceRecord], authority: [ResourceRecord], additional: [ResourceRecord],
        transport: DNSTransport
    ) -> ResponseSummary {
        buildResponse(queryHeader: queryHeader, echoing: question.map { .parsed($0) }, clientEDNS: clientEDNS, rcode: rcode,
                      authoritative: authoritative, answer: answer, authority: authority, additional: additional, transport: transport)
    }

    /// A reply with no records (a refusal, say) whose question is the query's question section
    /// (QNAME, QTYPE, QCLASS) copied byte for byte from the datagram: no name is parsed out, so
    /// nothing is allocated.
    @discardableResult
    public mutating func buildResponse(
        queryHeader: DNSHeader, questionWire: UnsafeRawBufferPointer, clientEDNS: EDNSInfo?, rcode: RCode, transport: DNSTransport
    ) -> ResponseSummary {
        buildResponse(queryHeader: queryHeader, echoing: .wire(questionWire), clientEDNS: clientEDNS, rcode: rcode,
                      authoritative: false, answer: [], authority: [], additional: [], transport: transport)
    }

    /// Where the echoed question comes from.
    enum EchoedQuestion {
        case parsed(DNSQuestion)
        /// QNAME (uncompressed, as sent), QTYPE, QCLASS.
        case wire(UnsafeRawBufferPointer)
    }

    mutating func buildResponse(
        queryHeader: DNSHeader, echoing question: EchoedQuestion?, clientEDNS: EDNSInfo?, rcode: RCode,
        authoritative: Bool, answer: [ResourceRecord], authority: [ResourceRecord], additional: [ResourceRecord],
        transport: DNSTransport
    ) -> ResponseSummary {
        var flags: UInt16 = DNSHeader.qrBit | DNSHeader.raBit
        flags |= queryHeader.flags & (0x7800 | DNSHeader.rdBit | DNSHeader.cdBit) // opcode, RD, CD
        if authoritative { flags |= DNSHeader.aaBit }
        flags |= rcode.rawValue & 0x000F
        begin(id: queryHeader.id, flags: flags)
        switch question {
        case .parsed(let q): writeQuestion(q)
        case .wire(let section): writeQuestion(wire: section)
        case nil: break
        }

        let limit = MessageBuilder.sizeLimit(clientEDNS: clientEDNS, ourPayloadSize: udpPayloadSize, transport: transport)
        let recordLimit = limit - (clientEDNS == nil ? 0 : MessageBuilder.optSize)
        var truncated = false
        let an = writeSection(answer, limit: recordLimit)
        var ns = 0, ar = 0
        if an.complete {
            let r = writeSection(authority, limit: recordLimit)
            ns = r.written
            if r.complete {
                ar = writeSection(additional, limit: recordLimit).written
            } else {
                truncated = true
            }
        } else {
            truncated = true
        }
        if clientEDNS != nil {
            writeOPT(payloadSize: max(UInt16(MessageBuilder.minimumUDPSize), udpPayloadSize),
                     extendedRCode: UInt8(truncatingIfNeeded: rcode.rawValue >> 4),
                     dnssecOK: clientEDNS?.dnssecOK ?? false)
        }
        if truncated { flags |= DNSHeader.tcBit }
        finish(flags: flags, qd: question == nil ? 0 : 1, an: an.written, ns: ns, ar: ar + (clientEDNS == nil ? 0 : 1))
        return ResponseSummary(truncated: truncated, answerCount: an.written, authorityCount: ns,
                               additionalCount: ar, byteCount: bytes.count)
    }

    // MARK: Queries (upstream)

    /// A query to send upstream: the given id, RD (and CD) as asked, one question written with
    /// its case mask, and an OPT advertising `udpPayloadSize` (DO when asked) unless
    /// `edns` is false.
    public mutating func buildQuery(
        id: UInt16, question: DNSQuestion, recursionDesired: Bool = true, checkingDisabled: Bool = false,
        edns: Bool = true, dnssecOK: Bool = false
    ) {
        var flags: UInt16 = 0
        if recursionDesired { flags |= DNSHeader.rdBit }
        if checkingDisabled { flags |= DNSHeader.cdBit }
        begin(id: id, flags: flags)
        writeQuestion(question)
        if edns {
            writeOPT(payloadSize: max(UInt16(MessageBuilder.minimumUDPSize), udpPayloadSize), extendedRCode: 0, dnssecOK: dnssecOK)
        }
        finish(flags: flags, qd: 1, an: 0, ns: 0, ar: edns ? 1 : 0)
    }

    // MARK: Internals

    mutating func begin(id: UInt16, flags: UInt16) {
        bytes.removeAll(keepingCapacity: true)
        compressionTargets.removeAll(keepingCapacity: true)
        appendU16(id)
        appendU16(flags)
        for _ in 0..<4 { appendU16(0) }
    }

    mutating func finish(flags: UInt16, qd: Int, an: Int, ns: Int, ar: Int) {
        setU16(flags, at: 2)
        setU16(UInt16(truncatingIfNeeded: qd), at: 4)
        setU16(UInt16(truncatingIfNeeded: an), at: 6)
        setU16(UInt16(truncatingIfNeeded: ns), at: 8)
        setU16(UInt16(truncatingIfNeeded: ar), at: 10)
    }

    @inline(__always)
    mutating func appendU16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    @inline(__always)
    mutating func appendU32(_ v: UInt32) {
        appendU16(UInt16(truncatingIfNeeded: v >> 16))
        appendU16(UInt16(truncatingIfNeeded: v))
    }

    @inline(__always)
    mutating func setU16(_ v: UInt16, at i: Int) {
        bytes[i] = UInt8(truncatingIfNeeded: v >> 8)
        bytes[i + 1] = UInt8(truncatingIfNeeded: v)
    }

    /// The question as the client sent it: letters whose mask bit is set go back to upper case.
    /// Its labels become compression targets, so answers owned by the asked name cost 2 bytes.
    mutating func writeQuestion(_ q: DNSQuestion) {
        let wire = q.name.wire
        let start = bytes.count
        bytes.append(contentsOf: wire)
        registerLabels(at: start)
        if !q.caseMask.isAllLower {
            for k in 0..<wire.count where q.caseMask.isSet(k) { bytes[start + k] &= ~0x20 }
        }
        appendU16(q.type.rawValue)
        appendU16(q.qclass.rawValue)
    }

    /// A question section copied as it is; its labels become compression targets as in
    /// `writeQuestion(_:)`.
    mutating func writeQuestion(wire section: UnsafeRawBufferPointer) {
        let start = bytes.count
        bytes.append(contentsOf: section)
        registerLabels(at: start)
    }

    /// Registers each label start of the name just written at `start` (not its root byte) as a
    /// compression target.
    private mutating func registerLabels(at start: Int) {
        var i = start
        while i < bytes.count, bytes[i] != 0 {
            registerTarget(i)
            i += Int(bytes[i]) + 1
        }
    }

    mutating func writeOPT(payloadSize: UInt16, extendedRCode: UInt8, dnssecOK: Bool) {
        bytes.append(0)                         // owner: root
        appendU16(RRType.opt.rawValue)
        appendU16(payloadSize)                  // CLASS: our UDP payload size
        bytes.append(extendedRCode)             // TTL: extended rcode, version 0, DO, Z
        bytes.append(0)
        appendU16(dnssecOK ? 0x8000 : 0)
        appendU16(0)                            // RDLENGTH: no options, ever
    }

    @inline(__always)
    mutating func registerTarget(_ offset: Int) {
        if offset < 0x4000 { compressionTargets.append(UInt16(offset)) }
    }

    mutating func rollback(to mark: Int) {
        bytes.removeLast(bytes.count - mark)
        while let last = compressionTargets.last, Int(last) >= mark { compressionTargets.removeLast() }
    }

    /// Writes records in order within `limit`; on overflow rolls back to the start of the
    /// RRset that overflowed and reports the section incomplete.
    mutating func writeSection(_ records: [ResourceRecord], limit: Int) -> (written: Int, complete: Bool) {
        var written = 0
        var rrsetMark = bytes.count
        var rrsetCount = 0
        for k in records.indices {
            let r = records[k]
            if k == records.startIndex || !MessageBuilder.sameRRset(records[k - 1], r) {
                rrsetMark = bytes.count
                rrsetCount = written
            }
            let mark = bytes.count
            guard writeRecord(r) else {
                // Rdata over 65535 bytes cannot be encoded; skip the record.
                rollback(to: mark)
                continue
            }
            if bytes.count > limit {
                rollback(to: rrsetMark)
                return (rrsetCount, false)
            }
            written += 1
        }
        return (written, true)
    }

    @inline(__always)
    static func sameRRset(_ a: ResourceRecord, _ b: ResourceRecord) -> Bool {
        a.type == b.type && a.rrClass == b.rrClass && a.name == b.name
    }

    /// Writes one record; false when its rdata is too long for RDLENGTH.
    mutating func writeRecord(_ r: ResourceRecord) -> Bool {
        guard r.rdata.count <= 0xFFFF else { return false }
        writeName(r.name.wire[...], compress: true, exactCase: false)
        appendU16(r.type.rawValue)
        appendU16(r.rrClass.rawValue)
        appendU32(r.ttl)
        let lengthAt = bytes.count
        appendU16(0)
        let rdStart = bytes.count
        writeRData(r.type, r.rdata)
        let rdlen = bytes.count - rdStart
        guard rdlen <= 0xFFFF else { return false }
        setU16(UInt16(rdlen), at: lengthAt)
        return true
    }

    /// Rdata of the RFC 1035 types with names gets those names compressed; if the rdata does
    /// not have the shape its type demands it is copied unchanged (never trusted, never trapped).
    mutating func writeRData(_ type: RRType, _ rdata: [UInt8]) {
        switch type.rawValue {
        case RRType.cname.rawValue, RRType.ns.rawValue, RRType.ptr.rawValue:
            if let end = MessageBuilder.nameEnd(rdata, from: 0), end == rdata.count {
                writeName(rdata[...], compress: true, exactCase: true)
                return
            }
        case RRType.mx.rawValue:
            if rdata.count >= 3, let end = MessageBuilder.nameEnd(rdata, from: 2), end == rdata.count {
                bytes.append(rdata[0]); bytes.append(rdata[1])
                writeName(rdata[2...], compress: true, exactCase: true)
                return
            }
        case RRType.soa.rawValue:
            if let m = MessageBuilder.nameEnd(rdata, from: 0), let rn = MessageBuilder.nameEnd(rdata, from: m),
               rn + 20 == rdata.count {
                writeName(rdata[0..<m], compress: true, exactCase: true)
                writeName(rdata[m..<rn], compress: true, exactCase: true)
                bytes.append(contentsOf: rdata[rn...])
                return
            }
        default:
            break
        }
        bytes.append(contentsOf: rdata)
    }

    /// End offset of a valid uncompressed name starting at `from` in `b`, or nil.
    static func nameEnd(_ b: [UInt8], from: Int) -> Int? {
        var i = from
        while true {
            guard i < b.count else { return nil }
            let len = Int(b[i])
            if len == 0 { return i + 1 }
            guard len <= 63 else { return nil }
            i += len + 1
            guard i - from + 1 <= DNSName.maxWireLength else { return nil }
        }
    }

    /// Writes an uncompressed, valid name (`name` ends with its root byte), pointing at the
    /// longest suffix already in the message when `compress` (byte for byte when `exactCase`).
    mutating func writeName(_ name: ArraySlice<UInt8>, compress: Bool, exactCase: Bool) {
        var i = name.startIndex
        while i < name.endIndex {
            let len = Int(name[i])
            if len == 0 { bytes.append(0); return }
            if compress, let target = findSuffix(name, from: i, exactCase: exactCase) {
                appendU16(0xC000 | UInt16(target))
                return
            }
            registerTarget(bytes.count)
            let end = min(i + len + 1, name.endIndex)
            bytes.append(contentsOf: name[i..<end])
            i = end
        }
        bytes.append(0) // only reached for a name missing its root byte
    }

    /// An offset where the suffix `name[from...]` is already written, or nil.
    func findSuffix(_ name: ArraySlice<UInt8>, from: Int, exactCase: Bool) -> Int? {
        for t in compressionTargets where equalsName(at: Int(t), name, from: from, exactCase: exactCase) {
            return Int(t)
        }
        return nil
    }

    /// Compares the (possibly compressed) name written at `offset` with `name[from...]`,
    /// ignoring ASCII case unless `exactCase`. Our own pointers always point backwards; hops
    /// are bounded anyway.
    func equalsName(at offset: Int, _ name: ArraySlice<UInt8>, from: Int, exactCase: Bool) -> Bool {
        var p = offset
        var i = from
        var hops = 0
        while true {
            guard p < bytes.count, i < name.endIndex else { return false }
            let len = bytes[p]
            if len & 0xC0 == 0xC0 {
                guard p + 1 < bytes.count, hops < WireReader.maxPointerHops else { return false }
                hops += 1
                p = Int(len & 0x3F) << 8 | Int(bytes[p + 1])
                continue
            }
            guard len == name[i] else { return false }
            if len == 0 { return true }
            let l = Int(len)
            guard p + l < bytes.count, i + l < name.endIndex else { return false }
            if exactCase {
                for k in 1...l where bytes[p + k] != name[i + k] { return false }
            } else {
                for k in 1...l where asciiLower(bytes[p + k]) != asciiLower(name[i + k]) { return false }
            }
            p += l + 1
            i += l + 1
        }
    }
}
