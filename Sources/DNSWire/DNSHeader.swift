/// The fixed 12-byte message header (RFC 1035 §4.1.1), kept as the raw flags word so that
/// any bits a client sets survive parsing; accessors name the fields.
public struct DNSHeader: Hashable, Sendable {
    public var id: UInt16
    /// QR, opcode, AA, TC, RD, RA, Z, AD, CD and the low 4 bits of the rcode, as on the wire.
    public var flags: UInt16
    public var qdCount: UInt16
    public var anCount: UInt16
    public var nsCount: UInt16
    public var arCount: UInt16

    public init(id: UInt16 = 0, flags: UInt16 = 0, qdCount: UInt16 = 0, anCount: UInt16 = 0, nsCount: UInt16 = 0, arCount: UInt16 = 0) {
        self.id = id
        self.flags = flags
        self.qdCount = qdCount
        self.anCount = anCount
        self.nsCount = nsCount
        self.arCount = arCount
    }

    public static let byteCount = 12

    public static let qrBit: UInt16 = 0x8000
    public static let aaBit: UInt16 = 0x0400
    public static let tcBit: UInt16 = 0x0200
    public static let rdBit: UInt16 = 0x0100
    public static let raBit: UInt16 = 0x0080
    public static let cdBit: UInt16 = 0x0010
    /// Opcode QUERY; every other opcode is answered NOTIMP (P4).
    public static let opcodeQuery: UInt8 = 0

    @inlinable public var isResponse: Bool { flags & DNSHeader.qrBit != 0 }
    @inlinable public var opcode: UInt8 { UInt8((flags >> 11) & 0x0F) }
    @inlinable public var authoritative: Bool { flags & DNSHeader.aaBit != 0 }
    @inlinable public var truncated: Bool { flags & DNSHeader.tcBit != 0 }
    @inlinable public var recursionDesired: Bool { flags & DNSHeader.rdBit != 0 }
    @inlinable public var recursionAvailable: Bool { flags & DNSHeader.raBit != 0 }
    @inlinable public var checkingDisabled: Bool { flags & DNSHeader.cdBit != 0 }
    /// The low 4 bits of the rcode; EDNS carries the upper 8 (`DNSMessage.rcode` combines them).
    @inlinable public var rcodeLow: UInt8 { UInt8(flags & 0x000F) }

    /// Reads just the header (id, flags, counts) of a datagram: enough to match an upstream
    /// reply's id or see TC before parsing the rest. Nil when shorter than 12 bytes.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> DNSHeader? {
        read(WireReader(bytes))
    }

    /// Reads just the header of a datagram held in an array.
    public static func parse(_ bytes: [UInt8]) -> DNSHeader? {
        bytes.withUnsafeBytes { parse($0) }
    }

    /// Reads the header from the first 12 bytes; nil when the datagram is shorter.
    static func read(_ r: WireReader) -> DNSHeader? {
        guard r.count >= 12,
              let id = r.u16(at: 0), let flags = r.u16(at: 2),
              let qd = r.u16(at: 4), let an = r.u16(at: 6), let ns = r.u16(at: 8), let ar = r.u16(at: 10)
        else { return nil }
        return DNSHeader(id: id, flags: flags, qdCount: qd, anCount: an, nsCount: ns, arCount: ar)
    }
}

/// What a message's OPT pseudo-record said (RFC 6891 §6.1.3). Options are skipped, never kept:
/// vpcdns does not echo COOKIE or any other option back.
public struct EDNSInfo: Hashable, Sendable {
    /// The sender's UDP payload size (the OPT CLASS field), as sent (may be below 512).
    public var udpPayloadSize: UInt16
    /// Upper 8 bits of the 12-bit extended rcode (the OPT TTL's first byte).
    public var extendedRCode: UInt8
    public var version: UInt8
    /// The whole 16-bit flags field of the OPT TTL; bit 15 is DO.
    public var flags: UInt16

    public init(udpPayloadSize: UInt16, extendedRCode: UInt8 = 0, version: UInt8 = 0, dnssecOK: Bool = false) {
        self.udpPayloadSize = udpPayloadSize
        self.extendedRCode = extendedRCode
        self.version = version
        self.flags = dnssecOK ? 0x8000 : 0
    }

    @inlinable public var dnssecOK: Bool { flags & 0x8000 != 0 }

    init(classField: UInt16, ttl: UInt32) {
        self.udpPayloadSize = classField
        self.extendedRCode = UInt8(truncatingIfNeeded: ttl >> 24)
        self.version = UInt8(truncatingIfNeeded: ttl >> 16)
        self.flags = UInt16(truncatingIfNeeded: ttl)
    }
}
