import Testing
import DNSWire

@Suite("TCPFraming")
struct TCPFramingTests {
    @Test("frame and deframe")
    func frame() throws {
        let m: [UInt8] = Array(1...10)
        let f = try #require(TCPFraming.frame(m))
        #expect(f == [0, 10] + m)
        #expect(TCPFraming.frame([UInt8](repeating: 0, count: 65536)) == nil)
        var buf = f + [0, 3, 7]
        #expect(TCPFraming.deframe(&buf) == m)
        #expect(TCPFraming.deframe(&buf) == nil)
        #expect(buf == [0, 3, 7])
        buf += [8, 9]
        #expect(TCPFraming.deframe(&buf) == [7, 8, 9])
        #expect(buf.isEmpty)
    }

    @Test("deframer: drip-fed one byte at a time and coalesced give the same messages")
    func deframer() {
        let messages: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 0xAB, count: 300), [9]]
        var stream: [UInt8] = []
        for m in messages { TCPFraming.appendFrame(m, to: &stream) }

        var d = TCPDeframer()
        var out: [[UInt8]] = []
        for b in stream {
            d.append([b])
            while let m = d.nextMessage() { out.append(m) }
        }
        #expect(out == messages)
        #expect(d.bufferedByteCount == 0)

        var c = TCPDeframer()
        c.append(stream)
        out = []
        while let m = c.nextMessage() { out.append(m) }
        #expect(out == messages)

        var chunked = TCPDeframer()
        out = []
        var i = 0
        var size = 1
        while i < stream.count {
            chunked.append(stream[i..<min(i + size, stream.count)])
            while let m = chunked.nextMessage() { out.append(m) }
            i += size
            size = size * 3 % 17 + 1
        }
        #expect(out == messages)
    }
}
