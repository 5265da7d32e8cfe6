import DNSWire
import Foundation
import Synchronization
import VPCDNSConfig
import VPCDNSCore

/// The per-query path without sockets, as `QueryEngine.process` runs it: wire bytes →
/// `QueryParser.parse` → `Resolver.resolve` (example model) → `MessageBuilder` → the reply
/// re-parsed and checked. Used by the `fuzz-packet` libFuzzer target and, on the files of
/// `Tests/Fuzz/regressions/packet/`, by `FuzzRegressionTests` in a plain `swift test`.
public enum PacketHarness {
    /// The example model (`config/vpcdns.yaml`), loaded once. `VPCDNS_FUZZ_CONFIG` names
    /// another file.
    public static let resolver: Resolver = {
        let path = ProcessInfo.processInfo.environment["VPCDNS_FUZZ_CONFIG"] ?? FuzzPaths.repoRoot + "/config/vpcdns.yaml"
        switch ConfigLoader.load(path: path) {
        case .success(let loaded): return Resolver(model: loaded.model)
        case .failure(let errors): fatalError("fuzz-packet: cannot load \(path):\n\(errors)")
        }
    }()

    /// Who asks: picked from the query ID's low bits, so the fuzzer reaches every view of the
    /// example (app by source, app via its inbound endpoint, database, legacy, nobody).
    static let askers: [(client: IPAddress, listener: SocketEndpoint)] = [
        (IPAddress("127.0.0.1")!, SocketEndpoint("127.0.0.1:1053")!),     // app (clients: 127/8)
        (IPAddress("10.9.9.9")!, SocketEndpoint("127.0.10.53:1053")!),    // app via inbound endpoint
        (IPAddress("10.1.0.5")!, SocketEndpoint("127.0.0.1:1053")!),      // database by CIDR
        (IPAddress("10.2.0.5")!, SocketEndpoint("127.0.30.2:1053")!),     // legacy on its address
        (IPAddress("192.0.2.77")!, SocketEndpoint("127.0.0.1:1053")!),    // no VPC (V3)
        (IPAddress("::1")!, SocketEndpoint("127.0.20.2:1053")!),          // database on its address
    ]
    static let databaseVPC = "vpc-0db0000000000002b"
    /// One builder reused across inputs, as the server's per-thread `LoopScratch` reuses its
    /// buffer and compression table: its output must equal a fresh builder's, byte for byte.
    static let reused = Mutex(MessageBuilder(udpPayloadSize: 1232))
    static let ourPayloadSize: UInt16 = 1232

    /// Runs one input; returns the broken invariants (empty when all hold).
    public static func run(_ data: UnsafeRawBufferPointer) -> [String] {
        var problems: [String] = []
        let bytes = Array(data)
        problems += proxyHeader(bytes)

        // Any message: the general parser and the rdata formatter never trap.
        if let m = try? DNSMessage.parse(data) {
            for rr in m.answer + m.authority + m.additional { _ = RDataFormatter.presentation(type: rr.type, rdata: rr.rdata) }
        }

        switch QueryParser.parse(data) {
        case .drop(let why):
            let short = bytes.count < 12
            let qr = !short && bytes[2] & 0x80 != 0
            if !(short || qr) { problems.append("dropped (\(why)) a \(bytes.count)-byte packet without QR") }
        case .bad(let bad):
            for transport in [DNSTransport.udp, .tcp] {
                var b = MessageBuilder(udpPayloadSize: ourPayloadSize)
                b.buildErrorResponse(for: bad, transport: transport)
                let echo = bad.question.map { q in Array(bytes[12..<min(bytes.count, 12 + q.originalNameWire.count + 4)]) }
                problems += check(reply: b.bytes, queryID: bad.header.id, questionEcho: echo, clientEDNS: bad.edns, transport: transport,
                                  expectRCode: bad.kind.rcode)
            }
        case .query(let q):
            let asker = askers[Int(q.header.id) % askers.count]
            let r = resolver
            let view = r.selectView(client: asker.client, listener: asker.listener)
            let question = Question(name: q.question.name, type: q.question.type, rrClass: q.question.qclass)
            let decision = r.resolve(question, view: view, explain: q.header.id & 0x8000 != 0)
            var rcode = RCode.servFail
            var a = Answer(rcode: .servFail, authoritative: false)
            switch decision.outcome {
            case .refused:
                rcode = .refused
                a = Answer(rcode: .refused, authoritative: false)
            case .answer(let local):
                rcode = local.rcode
                a = local
                if view.vpcIndex == nil { problems.append("a client of no VPC got a local answer") }
                if view.vpcID == databaseVPC, decision.kind != .endpointDNSName {
                    problems.append("R14: database VPC got a local \(decision.kind.rawValue) answer for \(q.question.name)")
                }
            case .forward:
                break  // no upstream here: the SERVFAIL a dead upstream would give
            }
            if view.vpcIndex == nil, rcode != .refused { problems.append("V3: a client of no VPC got \(rcode)") }
            for rr in a.answer + a.authority + a.additional { _ = RDataFormatter.presentation(type: rr.type, rdata: rr.rdata) }
            var replies: [DNSTransport: (bytes: [UInt8], summary: ResponseSummary)] = [:]
            for transport in [DNSTransport.udp, .tcp] {
                var b = MessageBuilder(udpPayloadSize: ourPayloadSize)
                let summary = b.buildResponse(for: q, rcode: rcode, authoritative: a.authoritative, answer: a.answer, authority: a.authority,
                                              additional: a.additional, transport: transport)
                replies[transport] = (b.bytes, summary)
                problems += check(reply: b.bytes, queryID: q.id, questionEcho: Array(bytes[q.questionRange]), clientEDNS: q.edns,
                                  transport: transport, expectRCode: rcode)
                let again = reused.withLock { r in
                    r.buildResponse(for: q, rcode: rcode, authoritative: a.authoritative, answer: a.answer, authority: a.authority,
                                    additional: a.additional, transport: transport)
                    return r.bytes
                }
                if again != b.bytes { problems.append("\(transport) reply from a reused builder differs from a fresh one") }
            }
            // P2: TC over UDP exactly when an answer or authority record did not fit; TCP then carries it all, and
            // the UDP reply's records are the first ones of the TCP reply.
            if let udp = replies[.udp], let tcp = replies[.tcp] {
                let total = a.answer.count + a.authority.count + a.additional.count
                let udpRecords = udp.summary.answerCount + udp.summary.authorityCount + udp.summary.additionalCount
                let tcpRecords = tcp.summary.answerCount + tcp.summary.authorityCount + tcp.summary.additionalCount
                if tcp.summary.truncated || tcpRecords != total { problems.append("TCP reply holds \(tcpRecords) of \(total) records") }
                // Additional records may be left out without TC (RFC 2181 9); answer and authority not.
                let needed = a.answer.count + a.authority.count
                if udp.summary.truncated != (udp.summary.answerCount + udp.summary.authorityCount < needed) {
                    problems.append("UDP TC \(udp.summary.truncated) with \(udpRecords) of \(total) records")
                }
                if let mu = try? DNSMessage.parse(udp.bytes), let mt = try? DNSMessage.parse(tcp.bytes) {
                    if mu.header.flags & DNSHeader.tcBit != 0 ? !udp.summary.truncated : udp.summary.truncated { problems.append("TC bit and summary disagree") }
                    if Array(mt.answer.prefix(mu.answer.count)) != mu.answer { problems.append("UDP answer is not a prefix of the TCP answer") }
                }
            }
        }
        return problems
    }

    /// P9: the input read as a PROXY v2 header never traps and never claims more bytes than
    /// it has; the input behind a valid header (v4, v6 or LOCAL, with a TLV or not, chosen
    /// from its first byte) comes back whole after it; and every cut of that header fails.
    static func proxyHeader(_ bytes: [UInt8]) -> [String] {
        var problems: [String] = []
        if case .header(let h) = bytes.withUnsafeBytes({ ProxyHeader.parse($0) }) {
            if h.length > bytes.count { problems.append("PROXY header of \(h.length) bytes in \(bytes.count)") }
            if h.command == .proxy, (h.source == nil) != (h.destination == nil) { problems.append("PROXY header with one address") }
        }
        let pick = bytes.first ?? 0
        let tlv: [UInt8] = pick & 4 != 0 ? [0x04, 0x00, 0x02, 0xAB, 0xCD] : []
        let header: [UInt8]
        switch pick % 3 {
        case 0: header = ProxyHeader.encode(command: .proxy, source: (.v4(0x0A00_0105), 40000), destination: (.v4(0x7F00_0001), 53), tlv: tlv)
        case 1: header = ProxyHeader.encode(command: .proxy, source: (.v6(5), 1), destination: (.v6(1), 53), datagram: false, tlv: tlv)
        default: header = ProxyHeader.encode(command: .local, tlv: tlv)
        }
        let framed = header + bytes
        switch framed.withUnsafeBytes({ ProxyHeader.parse($0) }) {
        case .header(let h):
            if h.length != header.count || Array(framed[h.length...]) != bytes { problems.append("PROXY header in front changed the packet") }
        case .invalid(let why):
            problems.append("valid PROXY header rejected: \(why)")
        }
        for cut in [0, 11, 12, 15, header.count - 1] where cut < header.count {
            if case .header = Array(header.prefix(cut)).withUnsafeBytes({ ProxyHeader.parse($0) }) {
                problems.append("PROXY header cut at \(cut) bytes accepted")
            }
        }
        return problems
    }

    /// The invariants of every reply: it parses, ID and question as asked, QR set, the
    /// rcode meant, within the P2 size limit over UDP.
    static func check(reply: [UInt8], queryID: UInt16, questionEcho: [UInt8]?, clientEDNS: EDNSInfo?, transport: DNSTransport,
                      expectRCode: RCode) -> [String] {
        var problems: [String] = []
        let limit = MessageBuilder.sizeLimit(clientEDNS: clientEDNS, ourPayloadSize: ourPayloadSize, transport: transport)
        if reply.count > limit { problems.append("\(transport) reply of \(reply.count) bytes over the limit \(limit)") }
        let m: DNSMessage
        do {
            m = try DNSMessage.parse(reply)
        } catch {
            return problems + ["\(transport) reply does not parse: \(error)"]
        }
        if m.header.id != queryID { problems.append("reply ID \(m.header.id) != query ID \(queryID)") }
        if !m.header.isResponse { problems.append("reply without QR") }
        if let echo = questionEcho {
            let got = Array(reply[12..<min(reply.count, 12 + echo.count)])
            if m.questions.count != 1 || got != echo { problems.append("\(transport) question not echoed byte for byte") }
        } else if !m.questions.isEmpty {
            problems.append("question in the reply to an unreadable one")
        }
        if (clientEDNS != nil) != (m.edns != nil) { problems.append("OPT in reply \(m.edns != nil), in query \(clientEDNS != nil)") }
        // Only the low 4 bits travel in the header without an OPT.
        let want = clientEDNS == nil ? expectRCode.rawValue & 0xF : expectRCode.rawValue
        if m.rcode.rawValue != want { problems.append("rcode \(m.rcode) != \(expectRCode)") }
        for rr in m.answer + m.authority + m.additional { _ = RDataFormatter.presentation(type: rr.type, rdata: rr.rdata) }
        return problems
    }
}

/// Where the repository is: `VPCDNS_REPO` or, by default, three folders above this file.
public enum FuzzPaths {
    public static let repoRoot: String = {
        if let r = ProcessInfo.processInfo.environment["VPCDNS_REPO"] { return r }
        // .../Sources/Fuzz/FuzzHarness/PacketHarness.swift
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()
}
