import Foundation
import Synchronization
import Testing
@testable import VPCDNSServer
@testable import VPCDNSCore
import DNSWire

/// The segments encoded once (per snapshot, per memo entry) give exactly the bytes the record
/// would give field by field, escaping included; the per-thread batches of the writer keep
/// every guarantee of the single batch they replaced.
@Suite("Query log: pre-encoded fields and per-thread batches")
struct QueryLogFieldsTests {
    /// Characters JSON must escape, and some it must not.
    static let odd = "a\"b\\c\nd\re\tf\u{01}\u{1F}é😀"

    static func vpc(_ suffix: String, inbound: [String] = []) -> VPC {
        VPC(id: "vpc-" + suffix, region: "us-" + suffix, cidrs: [],
            inboundEndpoints: inbound.map { InboundEndpoint(id: $0, addresses: []) })
    }

    static func view(_ fields: QueryLogFields, _ vpcs: [VPC], _ i: Int?, via: Via = .source, inbound: String? = nil) -> ViewChoice {
        ViewChoice(vpcIndex: i, vpcID: i.map { vpcs[$0].id }, region: i.map { vpcs[$0].region }, via: via, inboundEndpointID: inbound)
    }

    /// Listener addresses: the line writes them from the numbers, the record from their text.
    static let listeners = ["127.0.0.1:1053", "10.20.30.40:65535", "[::1]:53", "[2001:db8::53]:5353", "[fe80::1:2:3:4]:0",
                            "[2001:db8:0:1:1:1:1:1]:1"].map { SocketEndpoint($0)! }

    /// What the record gives for the same facts.
    static func record(account: String, view v: ViewChoice, question q: DNSQuestion?, rcode: RCode, answer: [ResourceRecord],
                       kind: DecisionKind, zone: DNSName?, zoneID: String?, reason: String?, cache: QueryLogRecord.CacheUse,
                       upstream: String?, listener: SocketEndpoint, client: IPAddress, port: UInt16, transport: Transport, micros: Int64,
                       latency: Int64) -> String {
        QueryLogRecord(accountID: account, region: v.region ?? "-", vpcID: v.vpcID ?? "-", receivedAtMicros: micros,
                       queryName: q.map { .asked($0) } ?? .text("-"), queryType: q.map { QueryLogRecord.text($0.type) } ?? "-",
                       queryClass: q.map { QueryLogRecord.text($0.qclass) } ?? "-", rcode: rcode.description, answers: .records(answer),
                       srcAddr: .ip(client), srcPort: port, transport: transport == .udp ? "UDP" : "TCP",
                       resolverEndpoint: v.inboundEndpointID, decision: kind.rawValue,
                       zone: kind == .endpointDNSName ? nil : zone.map { .domain($0) }, zoneID: zoneID, reason: reason, cache: cache,
                       upstream: upstream, listener: listener.description, via: v.via.rawValue, latencyMicros: latency).jsonLine()
    }

    /// The line as the engine writes a local answer: head and srcids from `fields`, the rest
    /// from `pieces`.
    static func fastLine(_ fields: QueryLogFields, _ pieces: LocalLogPieces, view v: ViewChoice, question q: DNSQuestion,
                         listener: SocketEndpoint, client: IPAddress, port: UInt16, transport: Transport, micros: Int64, latency: Int64,
                         dates: inout DateCache) -> String {
        var out = ByteSink(capacity: 16)
        LogLine.assemble(
            to: &out, dates: &dates, receivedAtMicros: micros,
            head: { fields.head(v, to: &$0) },
            name: { o in if q.caseMask.isAllLower { o.append(contentsOf: pieces.lowerCaseName) } else { JSONBytes.name(.asked(q), to: &o) } },
            middle: { $0.append(contentsOf: pieces.middle) },
            address: { LogLine.address(client, to: &$0) },
            port: port,
            transport: { LogLine.transport(transport, to: &$0) },
            srcids: { fields.srcids(v, to: &$0) },
            decision: { $0.append(contentsOf: pieces.decision) },
            upstream: nil,
            listener: .address(listener),
            via: { LogLine.via(v.via, to: &$0) },
            latencyMicros: latency)
        return out.withBytes { String(decoding: $0, as: UTF8.self) }
    }

    @Test("an account, region, VPC id and inbound endpoint needing JSON escaping are pre-encoded as the record writes them")
    func escapedHeads() throws {
        let vpcs = [Self.vpc("plain", inbound: ["rslvr-in-0123456789abcdef0"]),
                    Self.vpc(Self.odd, inbound: ["rslvr-in-first", "rslvr-in-" + Self.odd])]
        let account = "1111" + Self.odd
        let fields = QueryLogFields(accountID: account, vpcs: vpcs)
        let name = try DNSName("www.myservice.internal")
        let q = DNSQuestion(name: name, type: .a)
        let answer = [ResourceRecord(name: name, type: .a, ttl: 60, rdata: [10, 0, 5, 10])]
        let pieces = LocalLogPieces(question: q, rcode: .noError, answer: answer, kind: .privateHostedZone, zone: try DNSName("myservice.internal"),
                                    zoneID: "Z-" + Self.odd, reason: nil)
        let views = [
            Self.view(fields, vpcs, 0), Self.view(fields, vpcs, 1),
            Self.view(fields, vpcs, 1, via: .inboundEndpoint, inbound: "rslvr-in-" + Self.odd),
            Self.view(fields, vpcs, 1, via: .inboundEndpoint, inbound: "rslvr-in-first"),
            Self.view(fields, vpcs, 0, via: .inboundEndpoint, inbound: "rslvr-in-0123456789abcdef0"),
            // An endpoint id this model does not list: encoded on the spot, same bytes.
            Self.view(fields, vpcs, 0, via: .inboundEndpoint, inbound: "rslvr-in-" + Self.odd + "-other"),
            Self.view(fields, vpcs, nil, via: .none),
        ]
        var dates = DateCache()
        for v in views {
            let fast = Self.fastLine(fields, pieces, view: v, question: q, listener: Self.listeners[0], client: .v4(0x7F00_0001),
                                     port: 40211, transport: .udp,
                                     micros: 1_795_810_503_123_456, latency: 41, dates: &dates)
            let slow = Self.record(account: account, view: v, question: q, rcode: .noError, answer: answer, kind: .privateHostedZone,
                                   zone: try DNSName("myservice.internal"), zoneID: "Z-" + Self.odd, reason: nil, cache: .none,
                                   upstream: nil, listener: Self.listeners[0], client: .v4(0x7F00_0001), port: 40211, transport: .udp,
                                   micros: 1_795_810_503_123_456, latency: 41)
            #expect(fast == slow)
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(fast.utf8)) as? [String: Any])
            #expect(obj["account_id"] as? String == account)
            #expect(obj["vpc_id"] as? String == (v.vpcID ?? "-"))
            #expect(obj["region"] as? String == (v.region ?? "-"))
            #expect((obj["srcids"] as? [String: String]) == (v.inboundEndpointID.map { ["resolver_endpoint": $0] } ?? [:]))
            #expect((obj["vpcdns"] as? [String: Any])?["zone_id"] as? String == "Z-" + Self.odd)
            #expect((obj["vpcdns"] as? [String: Any])?["via"] as? String == v.via.rawValue)
        }
    }

    @Test("a local answer's pieces, built by one query, give every later query of its memo entry the record's bytes")
    func localPiecesReused() throws {
        let vpcs = [Self.vpc("0a11ce0000000001a")]
        let fields = QueryLogFields(accountID: "111122223333", vpcs: vpcs)
        let owner = try DNSName("www.myservice.internal")
        let answers: [[ResourceRecord]] = [
            [],
            [ResourceRecord(name: owner, type: .a, ttl: 60, rdata: [10, 0, 1, 10]), ResourceRecord(name: owner, type: .a, ttl: 60, rdata: [10, 0, 2, 10])],
            [ResourceRecord(name: owner, type: .aaaa, ttl: 60, rdata: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1])],
            [ResourceRecord(name: owner, type: .mx, ttl: 60, rdata: [0, 10, 4] + Array("mail".utf8) + [0])],
            [ResourceRecord(name: owner, type: .txt, ttl: 60, rdata: [5] + Array("a\"b\\c".utf8))],
            [ResourceRecord(name: owner, type: RRType(65534), ttl: 60, rdata: [1, 2])],
        ]
        let kinds: [(DecisionKind, DNSName?, String?, String?, RCode)] = [
            (.privateHostedZone, try DNSName("myservice.internal"), "Z0PRIVATEZONE0001", nil, .noError),
            (.endpointDNSName, try DNSName("ec2.us-west-2.vpce.amazonaws.com"), "vpce-0ec2a1b2c3d4e5f60", nil, .noError),
            (.refused, nil, nil, "inbound-only", .refused),
            (.privateHostedZone, try DNSName("myservice.internal"), "Z0PRIVATEZONE0001", nil, .nxDomain),
        ]
        // The first query builds the pieces; the others (other case, port, transport, via,
        // client, time) reuse them.
        let asked: [(wire: [UInt8], IPAddress, UInt16, Transport, Via, Int64)] = [
            ([3] + Array("www".utf8) + [9] + Array("myservice".utf8) + [8] + Array("internal".utf8) + [0], .v4(0x7F00_0001), 1, .udp, .source, 1_795_810_503_000_001),
            ([3] + Array("WwW".utf8) + [9] + Array("MyService".utf8) + [8] + Array("INTERNAL".utf8) + [0], .v4(0x0A00_0001), 65535, .tcp, .source, 1_795_810_503_999_999),
            ([3] + Array("www".utf8) + [9] + Array("myservice".utf8) + [8] + Array("internal".utf8) + [0], IPAddress("2001:db8::1")!, 53, .udp, .defaultVPC, 1_795_810_504_000_000),
        ]
        var dates = DateCache()
        var n = 0
        for (type, answer) in zip([RRType.a, .a, .aaaa, .mx, .txt, RRType(65534)], answers) {
            for (kind, zone, zoneID, reason, rcode) in kinds {
                let first = DNSQuestion(name: owner, type: type, qclass: .in)
                let pieces = LocalLogPieces(question: first, rcode: rcode, answer: answer, kind: kind, zone: zone, zoneID: zoneID, reason: reason)
                for (wire, client, port, transport, via, micros) in asked {
                    let q = DNSQuestion(name: try DNSName(wire: wire), type: type, qclass: .in, caseMask: NameCaseMask(originalWire: wire))
                    let v = Self.view(fields, vpcs, 0, via: via)
                    let listener = Self.listeners[n % Self.listeners.count]
                    n += 1
                    let fast = Self.fastLine(fields, pieces, view: v, question: q, listener: listener, client: client, port: port,
                                             transport: transport, micros: micros, latency: 7, dates: &dates)
                    let slow = Self.record(account: "111122223333", view: v, question: q, rcode: rcode, answer: answer, kind: kind,
                                           zone: zone, zoneID: zoneID, reason: reason, cache: .none, upstream: nil, listener: listener,
                                           client: client, port: port, transport: transport, micros: micros, latency: 7)
                    #expect(fast == slow)
                }
            }
        }
    }

    @Test("the date cache gives gmtime's date and time across second, day and year changes")
    func dateCache() {
        var dates = DateCache()
        for s: Int64 in [1_795_810_503, 1_795_810_503, 1_795_810_504, 1_767_225_599, 1_767_225_600, 1_767_225_600, 0, 951_868_799] {
            var out = ByteSink(capacity: 4)
            dates.write(seconds: s, to: &out)
            #expect(out.withBytes { String(decoding: $0, as: UTF8.self) } + "Z" == Timestamp.iso8601(micros: s * 1_000_000, fraction: false))
        }
    }

    @Test("numbers two digits at a time: every width, zero-padded, as String gives them")
    func decimals() {
        var rng = SystemRandomNumberGenerator()
        var values: [UInt64] = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1_000, 65_535, 999_999, 1_000_000, UInt64.max, UInt64.max / 10]
        var p: UInt64 = 1
        for _ in 0..<19 { values += [p - 1, p, p + 1]; p *= 10 }
        values += (0..<5_000).map { _ in UInt64.random(in: 0...UInt64.max, using: &rng) >> UInt64.random(in: 0...63, using: &rng) }
        for v in values {
            var out = ByteSink(capacity: 1)
            JSONBytes.decimal(v, to: &out)
            #expect(out.withBytes { String(decoding: $0, as: UTF8.self) } == String(v))
            for width in 1...7 {
                var padded = ByteSink(capacity: 1)
                JSONBytes.padded(v, width: width, to: &padded)
                let s = String(v % [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000][width])
                #expect(padded.withBytes { String(decoding: $0, as: UTF8.self) } == String(repeating: "0", count: width - s.count) + s)
            }
        }
    }

    @Test("lines from many threads: each accepted line written once, whole, drops counted per thread's batch, none after the final flush")
    func manyThreads() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-qlog-threads-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("queries.jsonl").path
        let w = try QueryLogWriter(path: path, capacity: 5_000)
        let threads = 4
        let perThread = 20_000
        final class Shared: Sendable {
            let stop = Atomic<Bool>(false)
            let done = Atomic<Int>(0)
            let accepted = Mutex<Set<String>>([])
        }
        let shared = Shared()
        // A flusher running beside the submitters, as the writer task does.
        Thread {
            while !shared.stop.load(ordering: .acquiring) { w.flush(); usleep(1_000) }
        }.start()
        for t in 0..<threads {
            Thread {
                var mine: [String] = []
                for i in 0..<perThread {
                    let line = "{\"t\":\(t),\"i\":\(i),\"pad\":\"\(String(repeating: "x", count: i % 300))\"}\n"
                    if w.submit(line) { mine.append(line) }
                }
                shared.accepted.withLock { $0.formUnion(mine) }
                shared.done.add(1, ordering: .releasing)
            }.start()
        }
        while shared.done.load(ordering: .acquiring) < threads { usleep(1_000) }
        shared.stop.store(true, ordering: .releasing)
        w.flush(final: true)
        #expect(!w.submit("{\"late\":1}\n"))
        let c = w.counts
        let want = shared.accepted.withLock { $0 }
        #expect(c.accepted == UInt64(want.count))
        #expect(c.written == c.accepted)
        #expect(c.accepted + c.dropped == UInt64(threads * perThread + 1))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n").map { String($0) + "\n" }
        #expect(lines.count == want.count)
        #expect(Set(lines) == want, "every accepted line exactly once, none torn")
    }
}
