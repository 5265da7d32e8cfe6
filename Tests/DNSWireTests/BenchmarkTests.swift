import Testing
import DNSWire

/// Not a timed assertion (the machine is shared): prints parse + encode throughput for the
/// typical reply of libldns-from-swift.md's microbenchmark (45-byte query with EDNS 1232, one A
/// record, 61-byte reply). Run with `-c release` for meaningful numbers.
@Suite("Benchmark")
struct BenchmarkTests {
    @Test("parse + encode a one-answer reply")
    func parseAndEncode() throws {
        let query = MessageBuilderTests.digQuery
        let answer = [ResourceRecord.a(name("www.corp.example"), [10, 0, 1, 10], ttl: 300)]
        var builder = MessageBuilder()
        let iterations = 50_000
        var checksum = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for i in 0..<iterations {
                var q = query
                q[1] = UInt8(truncatingIfNeeded: i) // vary the id so nothing is hoisted
                if case .query(let parsed) = QueryParser.parse(q) {
                    builder.buildResponse(for: parsed, rcode: .noError, authoritative: true, answer: answer)
                    checksum &+= builder.bytes.count &+ Int(builder.bytes[1])
                }
            }
        }
        #expect(builder.bytes.count == 61)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = Double(iterations) / seconds
        print("benchmark: \(iterations) parse+encode in \(seconds) s = \(Int(rate)) ops/s (\(seconds / Double(iterations) * 1e9) ns/op) [checksum \(checksum)]")

        var parseOnly = 0
        let parseElapsed = clock.measure {
            for i in 0..<iterations {
                var q = query
                q[1] = UInt8(truncatingIfNeeded: i)
                if case .query(let parsed) = QueryParser.parse(q) { parseOnly &+= Int(parsed.id) }
            }
        }
        let ps = Double(parseElapsed.components.seconds) + Double(parseElapsed.components.attoseconds) / 1e18
        print("benchmark: parse only \(Int(Double(iterations) / ps)) ops/s [\(parseOnly)]")

        // Upstream-reply path: full parse of a reply with compression.
        let reply = MessageParserTests.reply
        var n = 0
        let fullElapsed = clock.measure {
            for _ in 0..<(iterations / 4) {
                if let m = try? DNSMessage.parse(reply) { n &+= m.answer.count }
            }
        }
        let fs = Double(fullElapsed.components.seconds) + Double(fullElapsed.components.attoseconds) / 1e18
        print("benchmark: DNSMessage.parse (4 records) \(Int(Double(iterations / 4) / fs)) ops/s [\(n)]")
    }
}
