import DNSWire

/// Bytes from a hex string; spaces and newlines are ignored.
func hex(_ s: String) -> [UInt8] {
    let digits = s.unicodeScalars.compactMap { c -> UInt8? in
        switch c.value {
        case 48...57: UInt8(c.value - 48)
        case 65...70: UInt8(c.value - 55)
        case 97...102: UInt8(c.value - 87)
        default: nil
        }
    }
    return stride(from: 0, to: digits.count - 1, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
}

func hexString(_ b: [UInt8]) -> String {
    b.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// Wire bytes of a presentation name with its case kept (test input only).
func wireName(_ text: String) -> [UInt8] {
    if text == "." { return [0] }
    var out: [UInt8] = []
    for label in text.split(separator: ".") {
        out.append(UInt8(label.utf8.count))
        out.append(contentsOf: label.utf8)
    }
    out.append(0)
    return out
}

func name(_ s: String) -> DNSName { try! DNSName(s) }

/// A query datagram built by hand, field by field, independent of the code under test.
func makeQuery(
    id: UInt16 = 0x1234, flags: UInt16 = 0x0100, qdCount: UInt16? = nil, name: String = "www.example.com",
    type: UInt16 = 1, qclass: UInt16 = 1, edns: (size: UInt16, version: UInt8, dnssecOK: Bool)? = nil,
    extraAdditional: [[UInt8]] = [], cookie: Bool = false
) -> [UInt8] {
    var b: [UInt8] = []
    func u16(_ v: UInt16) { b.append(UInt8(v >> 8)); b.append(UInt8(v & 0xFF)) }
    u16(id); u16(flags); u16(qdCount ?? 1); u16(0); u16(0)
    u16(UInt16((edns == nil ? 0 : 1) + extraAdditional.count))
    b += wireName(name)
    u16(type); u16(qclass)
    for r in extraAdditional { b += r }
    if let e = edns {
        b.append(0); u16(41); u16(e.size); b.append(0); b.append(e.version); u16(e.dnssecOK ? 0x8000 : 0)
        if cookie {
            u16(12); u16(10); u16(8); b += [1, 2, 3, 4, 5, 6, 7, 8]
        } else {
            u16(0)
        }
    }
    return b
}

/// SplitMix64: a tiny seeded generator so the robustness test is repeatable.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension QueryParseResult {
    var query: DNSQuery? { if case .query(let q) = self { q } else { nil } }
    var bad: BadQuery? { if case .bad(let b) = self { b } else { nil } }
    var dropReason: DropReason? { if case .drop(let d) = self { d } else { nil } }
}

func rr(_ owner: String, _ type: RRType, ttl: UInt32 = 300, _ rdata: [UInt8]) -> ResourceRecord {
    ResourceRecord(name: name(owner), type: type, ttl: ttl, rdata: rdata)
}
