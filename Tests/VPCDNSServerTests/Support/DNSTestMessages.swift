import NIOCore

/// Hand-built DNS messages for the I/O tests (the real codec lives in DNSWire and is not a
/// dependency of these tests on purpose: the I/O shell must work with any bytes).
enum TestDNS {
    static let typeA: UInt16 = 1
    static let typeTXT: UInt16 = 16
    static let typeSOA: UInt16 = 6

    /// A query with RD set; `edns` adds an OPT record advertising `ednsSize` bytes.
    static func query(id: UInt16, name: String, type: UInt16 = typeA, edns: Bool = false, ednsSize: UInt16 = 1232) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: 64)
        b.writeInteger(id)
        b.writeInteger(UInt16(0x0100))  // RD
        b.writeInteger(UInt16(1))
        b.writeInteger(UInt16(0))
        b.writeInteger(UInt16(0))
        b.writeInteger(UInt16(edns ? 1 : 0))
        for label in name.split(separator: ".") {
            b.writeInteger(UInt8(label.utf8.count))
            b.writeBytes(Array(label.utf8))
        }
        b.writeInteger(UInt8(0))
        b.writeInteger(type)
        b.writeInteger(UInt16(1))  // IN
        if edns {
            b.writeInteger(UInt8(0))  // root owner
            b.writeInteger(UInt16(41))
            b.writeInteger(ednsSize)
            b.writeInteger(UInt32(0))
            b.writeInteger(UInt16(0))
        }
        return b
    }

    /// `query` with the 2-byte TCP length in front.
    static func framed(_ message: ByteBuffer) -> ByteBuffer {
        var b = ByteBufferAllocator().buffer(capacity: message.readableBytes + 2)
        b.writeInteger(UInt16(message.readableBytes))
        b.writeImmutableBuffer(message)
        return b
    }

    /// The echo reply: the query with QR set and rcode NOERROR (a valid, empty answer).
    static func echoReply(to query: ByteBuffer, rcode: UInt8 = 0, tc: Bool = false) -> ByteBuffer? {
        guard query.readableBytes >= 12, let flags = query.getInteger(at: query.readerIndex + 2, as: UInt16.self),
              flags & 0x8000 == 0 else { return nil }
        var reply = ByteBufferAllocator().buffer(capacity: query.readableBytes)
        reply.writeImmutableBuffer(query)
        var newFlags = (flags | 0x8000) & 0xFFF0 | UInt16(rcode)
        if tc { newFlags |= 0x0200 }
        reply.setInteger(newFlags, at: reply.readerIndex + 2)
        return reply
    }

    /// The header of a reply, for assertions.
    struct Header: Equatable {
        var id: UInt16
        var flags: UInt16
        var qdcount, ancount, nscount, arcount: UInt16
        var qr: Bool { flags & 0x8000 != 0 }
        var tc: Bool { flags & 0x0200 != 0 }
        var rcode: UInt8 { UInt8(flags & 0xF) }
    }

    static func header(_ m: ByteBuffer) -> Header? {
        guard m.readableBytes >= 12 else { return nil }
        let r = m.readerIndex
        return Header(
            id: m.getInteger(at: r)!, flags: m.getInteger(at: r + 2)!,
            qdcount: m.getInteger(at: r + 4)!, ancount: m.getInteger(at: r + 6)!,
            nscount: m.getInteger(at: r + 8)!, arcount: m.getInteger(at: r + 10)!)
    }

    /// The first label of the first question, lower-cased (the echo processor's switch).
    static func firstLabel(_ m: ByteBuffer) -> String? {
        let r = m.readerIndex + 12
        guard let len = m.getInteger(at: r, as: UInt8.self), len < 64,
              let bytes = m.getBytes(at: r + 1, length: Int(len)) else { return nil }
        return String(decoding: bytes, as: UTF8.self).lowercased()
    }
}
