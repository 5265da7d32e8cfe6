/// Bounds-checked big-endian reads over a datagram that is only borrowed.
///
/// Every read returns nil instead of trapping: the per-query path sees bytes from anyone on
/// the network (P4), so no index here is ever trusted. It holds no storage of its own, so a
/// parse allocates nothing for the header, counts, EDNS or skipped records.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var count: Int { bytes.count }
    var remaining: Int { bytes.count - offset }

    @inline(__always)
    func byte(at i: Int) -> UInt8? {
        (i >= 0 && i < bytes.count) ? bytes[i] : nil
    }

    @inline(__always)
    func u16(at i: Int) -> UInt16? {
        guard i >= 0, i + 2 <= bytes.count else { return nil }
        return UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])
    }

    @inline(__always)
    func u32(at i: Int) -> UInt32? {
        guard i >= 0, i + 4 <= bytes.count else { return nil }
        return UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
    }

    @inline(__always)
    mutating func readU8() -> UInt8? {
        guard let v = byte(at: offset) else { return nil }
        offset += 1
        return v
    }

    @inline(__always)
    mutating func readU16() -> UInt16? {
        guard let v = u16(at: offset) else { return nil }
        offset += 2
        return v
    }

    @inline(__always)
    mutating func readU32() -> UInt32? {
        guard let v = u32(at: offset) else { return nil }
        offset += 4
        return v
    }

    @inline(__always)
    mutating func skip(_ n: Int) -> Bool {
        guard n >= 0, n <= remaining else { return false }
        offset += n
        return true
    }

    /// Skips a possibly compressed name without following pointers (a pointer ends the name
    /// in place). Used to step over records of a query that vpcdns never reads.
    mutating func skipName() -> Bool {
        while true {
            guard let len = readU8() else { return false }
            switch len & 0xC0 {
            case 0x00:
                if len == 0 { return true }
                guard skip(Int(len)) else { return false }
            case 0xC0:
                return skip(1)
            default:
                return false // 0x40 / 0x80 label types are obsolete or undefined
            }
        }
    }

    /// Skips one resource record (name, fixed fields, rdata).
    mutating func skipRecord() -> Bool {
        guard skipName(), skip(8), let rdlen = readU16() else { return false }
        return skip(Int(rdlen))
    }
}

/// Why a name on the wire could not be read.
enum NameReadFailure: Error {
    case truncated, pointer, badLabelType, tooLong, pointerLoop, badPointer
}

extension WireReader {
    /// Validates and steps over a name that must not be compressed (the QNAME of a query),
    /// returning where its bytes are (as sent) and which of them are upper-case. Copies
    /// nothing: `DNSName(lowerCasingName:)` makes the name from those bytes when one is needed.
    mutating func scanUncompressedName() -> Result<(Range<Int>, NameCaseMask), NameReadFailure> {
        let start = offset
        var i = start
        var mask = NameCaseMask()
        while true {
            guard let len = byte(at: i) else { return .failure(.truncated) }
            if len == 0 { i += 1; break }
            switch len & 0xC0 {
            case 0x00: break
            case 0xC0: return .failure(.pointer)
            default: return .failure(.badLabelType)
            }
            let labelEnd = i + Int(len) + 1
            // The name plus its root byte must fit in 255 octets (RFC 1035 §3.1).
            if labelEnd - start + 1 > DNSName.maxWireLength { return .failure(.tooLong) }
            if labelEnd >= bytes.count { return .failure(.truncated) }
            // Length bytes are at most 63 (checked above), so only label letters land here.
            for k in (i + 1)..<labelEnd {
                let b = bytes[k]
                if b >= 65 && b <= 90 { mask.set(k - start) }
            }
            i = labelEnd
        }
        offset = i
        return .success((start..<i, mask))
    }

    /// Maximum pointer hops while decompressing one name. A legitimate name has at most 127
    /// labels, so more hops than that can only be a loop or an attack.
    static let maxPointerHops = 128

    /// Reads a possibly compressed name starting at `start`, appending its uncompressed wire
    /// form to `out` (lower-cased when `lowercase`). Literal labels before the first pointer
    /// must end before `limit` (the end of the record's rdata, or of the packet); pointers may
    /// target any earlier byte of the packet and are followed at most `maxPointerHops` times.
    /// Returns the offset just after the name at its original position.
    func readName(at start: Int, limit: Int, lowercase: Bool, into out: inout [UInt8]) -> Result<Int, NameReadFailure> {
        var p = start
        var end: Int? = nil
        var currentLimit = min(limit, bytes.count)
        var hops = 0
        var written = 0
        while true {
            guard p >= 0, p < currentLimit else { return .failure(.truncated) }
            let len = bytes[p]
            switch len & 0xC0 {
            case 0x00:
                if len == 0 {
                    out.append(0)
                    return .success(end ?? (p + 1))
                }
                let l = Int(len)
                guard p + 1 + l <= currentLimit else { return .failure(.truncated) }
                written += l + 1
                guard written + 1 <= DNSName.maxWireLength else { return .failure(.tooLong) }
                out.append(len)
                if lowercase {
                    for k in (p + 1)...(p + l) { out.append(asciiLower(bytes[k])) }
                } else {
                    for k in (p + 1)...(p + l) { out.append(bytes[k]) }
                }
                p += l + 1
            case 0xC0:
                guard p + 1 < currentLimit else { return .failure(.truncated) }
                let target = Int(len & 0x3F) << 8 | Int(bytes[p + 1])
                if end == nil { end = p + 2 }
                hops += 1
                guard hops <= WireReader.maxPointerHops else { return .failure(.pointerLoop) }
                guard target < bytes.count else { return .failure(.badPointer) }
                p = target
                currentLimit = bytes.count
            default:
                return .failure(.badLabelType)
            }
        }
    }
}

/// Which bytes of a name's wire form were upper-case letters as the client sent them.
///
/// Lets the reply echo the question exactly (P3) while the query keeps a single lower-cased
/// `DNSName`: 256 bits cover any legal name (at most 255 octets), stored inline, so keeping
/// the original case costs no allocation.
public struct NameCaseMask: Hashable, Sendable {
    @usableFromInline var w0: UInt64 = 0
    @usableFromInline var w1: UInt64 = 0
    @usableFromInline var w2: UInt64 = 0
    @usableFromInline var w3: UInt64 = 0

    public init() {}

    /// The mask of a name whose letters are all lower-case.
    public static let allLower = NameCaseMask()

    /// Builds the mask from a name's wire bytes as sent (the bytes that are `A`-`Z`).
    /// Length bytes are at most 63 and so never look like letters.
    public init(originalWire: some Sequence<UInt8>) {
        for (i, b) in originalWire.enumerated() where i < 256 && b >= 65 && b <= 90 { set(i) }
    }

    @inlinable
    public var isAllLower: Bool { (w0 | w1 | w2 | w3) == 0 }

    @inlinable
    public mutating func set(_ i: Int) {
        let bit = UInt64(1) << UInt64(i & 63)
        switch i >> 6 {
        case 0: w0 |= bit
        case 1: w1 |= bit
        case 2: w2 |= bit
        case 3: w3 |= bit
        default: break
        }
    }

    @inlinable
    public func isSet(_ i: Int) -> Bool {
        let bit = UInt64(1) << UInt64(i & 63)
        switch i >> 6 {
        case 0: return w0 & bit != 0
        case 1: return w1 & bit != 0
        case 2: return w2 & bit != 0
        case 3: return w3 & bit != 0
        default: return false
        }
    }
}
