import Testing
@testable import DNSWire

/// `DNSName(wire:)` reads its input through a buffer pointer; the element-by-element reader
/// it replaced is the reference here. Both must agree on every input: the same lower-cased
/// bytes, or the same error.
@Suite("DNSName from wire")
struct DNSNameWireTests {
    static func outcome(_ f: () throws(DNSNameError) -> [UInt8]) -> Result<[UInt8], DNSNameError> {
        do throws(DNSNameError) { return .success(try f()) } catch { return .failure(error) }
    }

    /// The element-by-element reader `DNSName(wire:)` used to be.
    static func validatedSlowly(wire bytes: some Collection<UInt8>) throws(DNSNameError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var it = bytes.makeIterator()
        while true {
            guard let len = it.next() else { throw .truncated }
            if len == 0 { out.append(0); break }
            guard len <= 63 else { throw .labelTooLong }
            out.append(len)
            for _ in 0..<len {
                guard let b = it.next() else { throw .truncated }
                out.append(asciiLower(b))
            }
            if out.count + 1 > DNSName.maxWireLength { throw .nameTooLong }
        }
        guard it.next() == nil else { throw .trailingBytes }
        return out
    }


    static func check(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let fast = outcome { () throws(DNSNameError) in try DNSName(wire: bytes).wire }
        let slow = outcome { () throws(DNSNameError) in try DNSNameWireTests.validatedSlowly(wire: bytes) }
        #expect(fast == slow, "input \(bytes)", sourceLocation: sourceLocation)
        // A slice (offset indices) and a non-contiguous collection take the same answer.
        let padded = [7, 7] + bytes
        let fromSlice = outcome { () throws(DNSNameError) in try DNSName(wire: padded[2...]).wire }
        #expect(fromSlice == slow, "slice of \(bytes)", sourceLocation: sourceLocation)
        let fromSequence = outcome { () throws(DNSNameError) in try DNSName(wire: bytes.lazy.map { $0 }).wire }
        #expect(fromSequence == slow, "lazy \(bytes)", sourceLocation: sourceLocation)
    }

    @Test("edge cases: each error, the 255-octet limit, case folding")
    func edges() throws {
        let cases: [[UInt8]] = [
            [], [0], [0, 0], [1], [1, 0x41], [1, 0x41, 0], [1, 0x41, 0, 9],
            [64] + Array(repeating: 0x61, count: 64) + [0],
            [63] + Array(repeating: 0x5A, count: 63) + [0],
            // 253 octets of labels + root = 254, 255 and 256 total.
            Array(repeating: [3, 0x61, 0x62, 0x63], count: 63).flatMap { $0 } + [1, 0x61, 0],
            Array(repeating: [3, 0x61, 0x62, 0x63], count: 63).flatMap { $0 } + [2, 0x61, 0x62, 0],
            Array(repeating: [3, 0x61, 0x62, 0x63], count: 63).flatMap { $0 } + [3, 0x61, 0x62, 0x63, 0],
            Array(repeating: [63] + Array(repeating: UInt8(0x41), count: 63), count: 5).flatMap { $0 } + [0],
            [3, 0x57, 0x57, 0x57, 7, 0x45, 0x78, 0x41, 0x6D, 0x50, 0x6C, 0x65, 3, 0x43, 0x4F, 0x4D, 0],
        ]
        for c in cases { Self.check(c) }
        #expect(try DNSName(wire: [3, 0x57, 0x57, 0x57, 0]).wire == [3, 0x77, 0x77, 0x77, 0])
        #expect(throws: DNSNameError.nameTooLong) {
            try DNSName(wire: Array(repeating: [3, 0x61, 0x62, 0x63], count: 63).flatMap { $0 } + [3, 0x61, 0x62, 0x63, 0])
        }
    }

    @Test("random and mutated inputs: the fast reader agrees with the reference")
    func randomInputs() {
        var rng = SplitMix64(seed: 0x5EED_D45)
        var checked = 0
        for _ in 0..<20_000 {
            var bytes: [UInt8]
            if rng.next() % 2 == 0 {
                // A plausible name, then sometimes a byte changed, cut or added.
                bytes = []
                for _ in 0..<Int(rng.next() % 6) {
                    let len = Int(rng.next() % 70)
                    bytes.append(UInt8(len))
                    for _ in 0..<len { bytes.append(UInt8(truncatingIfNeeded: rng.next())) }
                }
                bytes.append(0)
                switch rng.next() % 4 {
                case 0 where !bytes.isEmpty: bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                case 1 where !bytes.isEmpty: bytes.removeLast(Int(rng.next() % UInt64(bytes.count)) + 1)
                case 2: bytes.append(UInt8(truncatingIfNeeded: rng.next()))
                default: break
                }
            } else {
                bytes = (0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next() % 80) }
            }
            Self.check(bytes)
            checked += 1
        }
        #expect(checked == 20_000)
    }
}

@Suite("TTL offsets of an encoded reply")
struct TTLOffsetsTests {
    @Test("every record's TTL is found (not OPT's), through compressed names; broken messages give nil")
    func offsets() throws {
        var b = MessageBuilder()
        let q = DNSQuery(header: DNSHeader(id: 7, flags: 0x0100, qdCount: 1), question: DNSQuestion(name: name("www.example.com"), type: .a),
                         edns: EDNSInfo(udpPayloadSize: 1232), questionRange: 0..<0)
        let answer = [
            rr("www.example.com", .cname, ttl: 300, wireName("web.example.com")),
            rr("web.example.com", .a, ttl: 60, [192, 0, 2, 1]),
            rr("web.example.com", .a, ttl: 60, [192, 0, 2, 2]),
        ]
        let authority = [rr("example.com", .ns, ttl: 86400, wireName("ns1.example.com"))]
        b.buildResponse(for: q, rcode: .noError, answer: answer, authority: authority)
        let bytes = b.bytes
        let offsets = try #require(TTLOffsets.find(in: bytes))
        #expect(offsets.count == 4)
        let ttls = offsets.map { o in (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(bytes[o + $1]) } }
        #expect(ttls == [300, 60, 60, 86400])
        // Cut anywhere inside the records, or with a byte more: not one message any more.
        for cut in stride(from: 30, to: bytes.count, by: 7) { #expect(TTLOffsets.find(in: Array(bytes[..<cut])) == nil) }
        #expect(TTLOffsets.find(in: bytes + [0]) == nil)
        #expect(TTLOffsets.find(in: [1, 2, 3]) == nil)
    }
}
