import XCTest
@testable import DNSWire

/// PROXY protocol v2 headers (P9) as dnsdist sends them, and the ways they can be wrong.
final class ProxyHeaderTests: XCTestCase {
    private func parse(_ bytes: [UInt8]) -> ProxyHeader.Parse {
        bytes.withUnsafeBytes { ProxyHeader.parse($0) }
    }

    private static let query: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]

    func testTable() {
        let v4 = ProxyHeader.encode(command: .proxy, source: (.v4(0x0A00_0105), 40000), destination: (.v4(0x7F00_0001), 53))
        let v6 = ProxyHeader.encode(command: .proxy, source: (.v6(0x2001_0db8 << 96 | 5), 1234), destination: (.v6(1), 5300),
                                    datagram: false)
        let local = ProxyHeader.encode(command: .local)
        // TLV 0x04 (NOOP) of 3 bytes: skipped, counted in the length.
        let withTLV = ProxyHeader.encode(command: .proxy, source: (.v4(1), 1), destination: (.v4(2), 2), tlv: [0x04, 0x00, 0x03, 9, 9, 9])
        var badVersion = v4; badVersion[12] = 0x11
        var badCommand = v4; badCommand[12] = 0x2F
        var unix = v4; unix[13] = 0x31
        var localUnix = local; localUnix[13] = 0x31
        var shortV4 = v4; shortV4[15] = 8  // says 8 bytes: too few for two IPv4 addresses and ports
        var wrongSig = v4; wrongSig[7] = 0x52

        struct Row { let name: String; let bytes: [UInt8]; let expect: ProxyHeader.Parse }
        let rows: [Row] = [
            Row(name: "v4", bytes: v4 + Self.query, expect: .header(ProxyHeader(
                command: .proxy, sourceAddress: .v4(0x0A00_0105), sourcePort: 40000, destinationAddress: .v4(0x7F00_0001),
                destinationPort: 53, length: 28))),
            Row(name: "v6", bytes: v6, expect: .header(ProxyHeader(
                command: .proxy, sourceAddress: .v6(0x2001_0db8 << 96 | 5), sourcePort: 1234, destinationAddress: .v6(1),
                destinationPort: 5300, length: 52))),
            Row(name: "local", bytes: local + Self.query, expect: .header(ProxyHeader(
                command: .local, sourceAddress: nil, sourcePort: 0, destinationAddress: nil, destinationPort: 0, length: 16))),
            Row(name: "local, unix family ignored", bytes: localUnix, expect: .header(ProxyHeader(
                command: .local, sourceAddress: nil, sourcePort: 0, destinationAddress: nil, destinationPort: 0, length: 16))),
            Row(name: "tlv skipped", bytes: withTLV + Self.query, expect: .header(ProxyHeader(
                command: .proxy, sourceAddress: .v4(1), sourcePort: 1, destinationAddress: .v4(2), destinationPort: 2, length: 34))),
            Row(name: "plain DNS", bytes: Self.query, expect: .invalid(.noHeader)),
            Row(name: "empty", bytes: [], expect: .invalid(.truncated)),
            Row(name: "wrong signature", bytes: wrongSig + Self.query, expect: .invalid(.noHeader)),
            Row(name: "PROXY v1 text", bytes: Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8), expect: .invalid(.noHeader)),
            Row(name: "signature only", bytes: ProxyHeader.signature, expect: .invalid(.truncated)),
            Row(name: "cut in the addresses", bytes: Array(v4.prefix(20)), expect: .invalid(.truncated)),
            Row(name: "v6 cut", bytes: Array(v6.prefix(51)), expect: .invalid(.truncated)),
            Row(name: "length too small for v4", bytes: shortV4 + Self.query, expect: .invalid(.truncated)),
            Row(name: "version 1 binary", bytes: badVersion, expect: .invalid(.version)),
            Row(name: "command 15", bytes: badCommand, expect: .invalid(.command)),
            Row(name: "unix family", bytes: unix, expect: .invalid(.family)),
        ]
        for row in rows {
            XCTAssertEqual(parse(row.bytes), row.expect, row.name)
        }
    }

    func testMessageFollowsTheHeader() {
        let header = ProxyHeader.encode(command: .proxy, source: (.v4(0x0A00_0105), 40000), destination: (.v4(0x7F00_0001), 53))
        let datagram = header + Self.query
        guard case .header(let h) = parse(datagram) else { return XCTFail("not parsed") }
        XCTAssertEqual(Array(datagram[h.length...]), Self.query)
        XCTAssertEqual(h.source?.port, 40000)
        XCTAssertEqual(h.destination?.port, 53)
    }

    func testSignatureDetection() {
        let header = ProxyHeader.encode(command: .local)
        header.withUnsafeBytes { XCTAssertTrue(ProxyHeader.hasSignature($0)) }
        Array(header.prefix(5)).withUnsafeBytes {
            XCTAssertFalse(ProxyHeader.hasSignature($0))
            XCTAssertTrue(ProxyHeader.hasSignature($0, allowPartial: true))
            XCTAssertNil(ProxyHeader.neededLength($0))
        }
        Self.query.withUnsafeBytes { XCTAssertFalse(ProxyHeader.hasSignature($0, allowPartial: true)) }
        header.withUnsafeBytes { XCTAssertEqual(ProxyHeader.neededLength($0), 16) }
    }

    /// Every prefix of a valid header, and every single-byte corruption of one, parses or
    /// fails without trapping.
    func testEveryPrefixAndCorruption() {
        let v6 = ProxyHeader.encode(command: .proxy, source: (.v6(7), 1), destination: (.v6(8), 2), tlv: [1, 0, 1, 0x41])
        for n in 0..<v6.count {
            if case .header = parse(Array(v6.prefix(n))) { XCTFail("prefix \(n) parsed") }
        }
        for i in 0..<v6.count {
            for v: UInt8 in [0, 0x20, 0x21, 0xFF] {
                var b = v6
                b[i] = v
                _ = parse(b)
            }
        }
    }
}
