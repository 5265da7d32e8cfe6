import NIOCore

/// The few header facts the I/O shell needs, read straight from the bytes. Everything else
/// about DNS belongs to DNSWire and the decision engine; this stays deliberately tiny.
///
/// Header layout (RFC 1035 4.1.1): id(2) flags(2) qdcount(2) ancount(2) nscount(2) arcount(2).
enum WireHeader {
    static let length = 12

    static func id(_ m: ByteBuffer) -> UInt16? {
        m.getInteger(at: m.readerIndex, as: UInt16.self)
    }

    static func flags(_ m: ByteBuffer) -> UInt16? {
        m.readableBytes >= length ? m.getInteger(at: m.readerIndex + 2, as: UInt16.self) : nil
    }

    static func qdcount(_ m: ByteBuffer) -> UInt16? {
        m.readableBytes >= length ? m.getInteger(at: m.readerIndex + 4, as: UInt16.self) : nil
    }

    static func isResponse(_ flags: UInt16) -> Bool { flags & 0x8000 != 0 }
    static func isTruncated(_ flags: UInt16) -> Bool { flags & 0x0200 != 0 }
    static func rcode(_ flags: UInt16) -> UInt8 { UInt8(flags & 0x000F) }

    /// Overwrites the ID in place (the buffer must hold a header).
    static func setID(_ id: UInt16, in m: inout ByteBuffer) {
        m.setInteger(id, at: m.readerIndex)
    }

    /// The byte range (absolute indices) of the first question: QNAME, QTYPE, QCLASS, plus
    /// where its name ends. Nil when QDCOUNT is 0 or the question is cut short or compressed.
    static func firstQuestion(_ m: ByteBuffer) -> (start: Int, nameEnd: Int, end: Int)? {
        guard let qd = qdcount(m), qd >= 1 else { return nil }
        let start = m.readerIndex + length
        let limit = m.writerIndex
        var i = start
        while true {
            guard i < limit, let len = m.getInteger(at: i, as: UInt8.self) else { return nil }
            if len == 0 { i += 1; break }
            guard len < 64 else { return nil }  // a pointer or a reserved label type
            i += 1 + Int(len)
            guard i - start <= 255 else { return nil }
        }
        guard i + 4 <= limit else { return nil }
        return (start, i, i + 4)
    }

    /// True when both messages have the same first question: the name compared ASCII
    /// case-insensitively (P3), type and class exactly. Nil when either has no readable one.
    static func sameQuestion(_ a: ByteBuffer, _ b: ByteBuffer) -> Bool? {
        guard let qa = firstQuestion(a), let qb = firstQuestion(b) else { return nil }
        guard qa.end - qa.start == qb.end - qb.start, qa.nameEnd - qa.start == qb.nameEnd - qb.start else {
            return false
        }
        let nameLen = qa.nameEnd - qa.start
        return a.withUnsafeReadableBytes { ra in
            b.withUnsafeReadableBytes { rb in
                let oa = qa.start - a.readerIndex, ob = qb.start - b.readerIndex
                // Label length bytes are < 64, below 'A', so folding every name byte is safe.
                for k in 0..<nameLen {
                    var x = ra[oa + k], y = rb[ob + k]
                    if x >= 0x41 && x <= 0x5A { x |= 0x20 }
                    if y >= 0x41 && y <= 0x5A { y |= 0x20 }
                    if x != y { return false }
                }
                for k in nameLen..<(nameLen + 4) where ra[oa + k] != rb[ob + k] { return false }
                return true
            }
        }
    }
}
