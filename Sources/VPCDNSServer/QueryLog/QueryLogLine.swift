import DNSWire
import VPCDNSCore

/// The layout of one query-log line (query-log.md), and its parts that do not change from one
/// query to the next encoded once as JSON bytes.
///
/// A line is a few fixed segments with the per-query values between them:
///
///     head      {"version":"1.100000","account_id":…,"region":…,"vpc_id":…,"query_timestamp":"
///               DATE-TIME Z","query_name": NAME
///     middle    ,"query_type":…,"query_class":…,"rcode":…,"answers":[…],"srcaddr":
///               ADDRESS ,"srcport":"PORT","transport":…,"srcids":{
///     srcids    "resolver_endpoint":…   (or nothing)
///               },"vpcdns":{
///     decision  "decision":…,"zone":…,"zone_id":…,"reason":…,"cache":…
///               ,"upstream":… ,"listener":… ,"via":…,"received_at":"DATE-TIME.MICROS Z","latency_us":N}}\n
///
/// `head` depends only on the VPC (and the account), so it is encoded once per VPC per model
/// snapshot (`QueryLogFields`; a reload builds new ones with the new snapshot). A local answer
/// fixes `middle`, `decision` and, for a lower-case question, the name: the engine keeps them
/// with its per-thread memo of that answer (`LocalLogPieces`). `QueryLogRecord` writes the
/// same segments from its fields with the same builders, so both ways give the same bytes.
enum LogLine {
    /// Writes the line; each closure appends its segment.
    @inline(__always)
    static func assemble(to out: inout ByteSink, dates: inout DateCache, receivedAtMicros micros: Int64,
                         head: (inout ByteSink) -> Void,
                         name: (inout ByteSink) -> Void,
                         middle: (inout ByteSink) -> Void,
                         address: (inout ByteSink) -> Void,
                         port: UInt16,
                         transport: (inout ByteSink) -> Void,
                         srcids: (inout ByteSink) -> Void,
                         decision: (inout ByteSink) -> Void,
                         upstream: QueryLogRecord.Endpoint?,
                         listener: QueryLogRecord.Endpoint?,
                         proxy: SocketEndpoint? = nil,
                         via: (inout ByteSink) -> Void,
                         latencyMicros: Int64) {
        head(&out)
        // The date and time to the second are written once and copied for received_at.
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let dateTime = out.count
        dates.write(seconds: seconds, to: &out)
        JSONBytes.literal(#"Z","query_name":"#, to: &out)
        name(&out)
        middle(&out)
        address(&out)
        JSONBytes.literal(#","srcport":""#, to: &out)
        JSONBytes.decimal(UInt64(port), to: &out)
        JSONBytes.literal(#"","transport":"#, to: &out)
        transport(&out)
        JSONBytes.literal(#","srcids":{"#, to: &out)
        srcids(&out)
        JSONBytes.literal(#"},"vpcdns":{"#, to: &out)
        decision(&out)
        if let u = upstream { JSONBytes.literal(#","upstream":"#, to: &out); endpoint(u, to: &out) }
        if let l = listener { JSONBytes.literal(#","listener":"#, to: &out); endpoint(l, to: &out) }
        if let p = proxy { JSONBytes.literal(#","proxy":"#, to: &out); endpoint(.address(p), to: &out) }
        JSONBytes.literal(#","via":"#, to: &out)
        via(&out)
        JSONBytes.literal(#","received_at":""#, to: &out)
        out.appendCopy(from: dateTime, count: Timestamp.dateTimeLength)
        out.append(0x2E)
        JSONBytes.padded(UInt64(micros - seconds * 1_000_000), width: 6, to: &out)
        JSONBytes.literal(#"Z","latency_us":"#, to: &out)
        JSONBytes.decimal(UInt64(max(0, latencyMicros)), to: &out)
        JSONBytes.literal("}}\n", to: &out)
    }

    // MARK: - Segments

    /// `{"version":"1.100000","account_id":…,"region":…,"vpc_id":…,"query_timestamp":"`
    static func head(accountID: String, region: String, vpcID: String, to out: inout ByteSink) {
        JSONBytes.literal(#"{"version":"1.100000","account_id":"#, to: &out)
        JSONBytes.string(accountID, to: &out)
        JSONBytes.literal(#","region":"#, to: &out); JSONBytes.string(region, to: &out)
        JSONBytes.literal(#","vpc_id":"#, to: &out); JSONBytes.string(vpcID, to: &out)
        JSONBytes.literal(#","query_timestamp":""#, to: &out)
    }

    /// `,"query_type":…,"query_class":…,"rcode":…,"answers":[…],"srcaddr":`
    static func middle(type: String, rrClass: String, rcode: String, answers: QueryLogRecord.Answers, to out: inout ByteSink) {
        JSONBytes.literal(#","query_type":"#, to: &out); JSONBytes.string(type, to: &out)
        JSONBytes.literal(#","query_class":"#, to: &out); JSONBytes.string(rrClass, to: &out)
        JSONBytes.literal(#","rcode":"#, to: &out); JSONBytes.string(rcode, to: &out)
        JSONBytes.literal(#","answers":["#, to: &out)
        switch answers {
        case .text(let list):
            for i in list.indices {
                if i > 0 { out.append(0x2C) }
                JSONBytes.literal(#"{"Rdata":"#, to: &out); JSONBytes.string(list[i].rdata, to: &out)
                JSONBytes.literal(#","Type":"#, to: &out); JSONBytes.string(list[i].type, to: &out)
                JSONBytes.literal(#","Class":"#, to: &out); JSONBytes.string(list[i].rrClass, to: &out)
                out.append(0x7D)
            }
        case .records(let records):
            for i in records.indices {
                if i > 0 { out.append(0x2C) }
                let r = records[i]
                JSONBytes.literal(#"{"Rdata":"#, to: &out)
                if !JSONBytes.rdata(r.type, r.rdata, to: &out) {
                    JSONBytes.string(r.rdataText, to: &out)
                }
                JSONBytes.literal(#","Type":"#, to: &out); JSONBytes.string(QueryLogRecord.text(r.type), to: &out)
                JSONBytes.literal(#","Class":"#, to: &out); JSONBytes.string(QueryLogRecord.text(r.rrClass), to: &out)
                out.append(0x7D)
            }
        }
        JSONBytes.literal(#"],"srcaddr":"#, to: &out)
    }

    /// The client address as a JSON string.
    @inline(__always)
    static func address(_ a: QueryLogRecord.Address, to out: inout ByteSink) {
        switch a {
        case .text(let t): JSONBytes.string(t, to: &out)
        case .ip(let ip): address(ip, to: &out)
        }
    }

    @inline(__always)
    static func address(_ ip: IPAddress, to out: inout ByteSink) {
        if case .v4(let v) = ip {
            out.append(0x22); JSONBytes.dottedQuad(v, to: &out); out.append(0x22)
        } else {
            JSONBytes.string(ip.description, to: &out)
        }
    }

    /// An `IP:PORT` (`upstream`, `listener`) as a JSON string: `10.0.0.2:53`, `[2001:db8::2]:53`.
    /// Written from the numbers, without building the text as a String.
    @inline(__always)
    static func endpoint(_ e: QueryLogRecord.Endpoint, to out: inout ByteSink) {
        switch e {
        case .text(let t): JSONBytes.string(t, to: &out)
        case .address(let a): endpoint(a, to: &out)
        }
    }

    static func endpoint(_ e: SocketEndpoint, to out: inout ByteSink) {
        out.append(0x22)
        switch e.ip {
        case .v4(let v):
            JSONBytes.dottedQuad(v, to: &out)
        case .v6(let v):
            out.append(0x5B)
            withUnsafeBytes(of: v.bigEndian) { JSONBytes.ipv6($0.bindMemory(to: UInt8.self), to: &out) }
            out.append(0x5D)
        }
        out.append(0x3A)
        JSONBytes.decimal(UInt64(e.port), to: &out)
        out.append(0x22)
    }

    /// The inside of `srcids`: `"resolver_endpoint":…` for an inbound endpoint, else nothing.
    static func srcids(resolverEndpoint: String?, to out: inout ByteSink) {
        if let r = resolverEndpoint { JSONBytes.literal(#""resolver_endpoint":"#, to: &out); JSONBytes.string(r, to: &out) }
    }

    /// `"decision":…[,"zone":…][,"zone_id":…][,"reason":…][,"record_set":…],"cache":…`
    static func decision(_ decision: String, zone: QueryLogRecord.Name?, zoneID: String?, reason: String?,
                         recordSet: String? = nil, cache: QueryLogRecord.CacheUse, to out: inout ByteSink) {
        JSONBytes.literal(#""decision":"#, to: &out); JSONBytes.string(decision, to: &out)
        if let z = zone { JSONBytes.literal(#","zone":"#, to: &out); JSONBytes.name(z, to: &out) }
        if let z = zoneID { JSONBytes.literal(#","zone_id":"#, to: &out); JSONBytes.string(z, to: &out) }
        if let r = reason { JSONBytes.literal(#","reason":"#, to: &out); JSONBytes.string(r, to: &out) }
        if let r = recordSet { JSONBytes.literal(#","record_set":"#, to: &out); JSONBytes.string(r, to: &out) }
        switch cache {
        case .hit: JSONBytes.literal(#","cache":"hit""#, to: &out)
        case .miss: JSONBytes.literal(#","cache":"miss""#, to: &out)
        case .none: JSONBytes.literal(#","cache":"none""#, to: &out)
        }
    }

    /// `transport` as a JSON string.
    @inline(__always)
    static func transport(_ t: Transport, to out: inout ByteSink) {
        JSONBytes.literal(t == .udp ? #""UDP""# : #""TCP""#, to: &out)
    }

    /// `via` as a JSON string (its values need no escaping).
    @inline(__always)
    static func via(_ v: Via, to out: inout ByteSink) {
        switch v {
        case .source: JSONBytes.literal(#""source""#, to: &out)
        case .resolverAddress: JSONBytes.literal(#""resolver_address""#, to: &out)
        case .inboundEndpoint: JSONBytes.literal(#""inbound_endpoint""#, to: &out)
        case .defaultVPC: JSONBytes.literal(#""default_vpc""#, to: &out)
        case .none: JSONBytes.literal(#""none""#, to: &out)
        }
    }

    /// A segment as bytes of its own.
    static func encoded(_ body: (inout ByteSink) -> Void) -> [UInt8] {
        var sink = ByteSink(capacity: 256)
        body(&sink)
        return sink.withBytes { Array($0) }
    }
}

extension ByteSink {
    @inline(__always)
    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append(contentsOf: $0) }
    }
}

/// Byte strings encoded once, one after another in memory of their own: reading one is
/// pointer arithmetic (no array to retain on the per-query path). Immutable after `init`.
final class PackedBytes: @unchecked Sendable {
    private let base: UnsafeMutablePointer<UInt8>
    /// `count + 1` offsets into `base`.
    private let offsets: UnsafeMutablePointer<Int>
    let count: Int

    init(_ parts: [[UInt8]]) {
        count = parts.count
        let total = parts.reduce(0) { $0 + $1.count }
        base = .allocate(capacity: max(1, total))
        offsets = .allocate(capacity: parts.count + 1)
        var at = 0
        for (i, p) in parts.enumerated() {
            offsets[i] = at
            p.withUnsafeBufferPointer { (base + at).initialize(from: $0.baseAddress!, count: $0.count) }
            at += p.count
        }
        offsets[parts.count] = at
    }

    deinit {
        base.deallocate()
        offsets.deallocate()
    }

    /// Part `i`; valid while this object lives.
    @inline(__always)
    subscript(i: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + offsets[i], count: offsets[i + 1] - offsets[i])
    }
}

/// The date and time of the last second written, so that the lines of one second (nearly all
/// of a busy thread's) copy 19 bytes instead of computing the calendar.
struct DateCache {
    var second: Int64 = .min
    /// `YYYY-MM-DDTHH:MM:SS` in the first 19 bytes.
    var text: (UInt64, UInt64, UInt64) = (0, 0, 0)

    @inline(__always)
    mutating func write(seconds: Int64, to out: inout ByteSink) {
        if seconds != second {
            let start = out.count
            Timestamp.writeDateTime(seconds: seconds, to: &out)
            withUnsafeMutableBytes(of: &text) { t in
                t.copyMemory(from: UnsafeRawBufferPointer(start: out.base + start, count: Timestamp.dateTimeLength))
            }
            second = seconds
            return
        }
        withUnsafeBytes(of: &text) { t in
            out.append(contentsOf: UnsafeBufferPointer(start: t.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                       count: Timestamp.dateTimeLength))
        }
    }
}

/// The parts of every line fixed by a model, JSON-encoded once per snapshot: each VPC's head
/// (account, region, VPC id) and each inbound endpoint's `srcids`. A reload builds new ones
/// with the new snapshot, so the next line says what the new model says.
public final class QueryLogFields: Sendable {
    /// Indexed like `Model.vpcs`, then the head of a query no VPC took (`"-"`).
    let heads: PackedBytes
    /// Per VPC: each inbound endpoint's id and the inside of its `srcids`.
    let inbound: [[(id: String, srcids: PackedBytes)]]
    let accountID: String

    public init(accountID: String, vpcs: [VPC]) {
        self.accountID = accountID
        heads = PackedBytes(vpcs.map { v in LogLine.encoded { LogLine.head(accountID: accountID, region: v.region, vpcID: v.id, to: &$0) } }
                            + [LogLine.encoded { LogLine.head(accountID: accountID, region: "-", vpcID: "-", to: &$0) }])
        inbound = vpcs.map { v in
            v.inboundEndpoints.map { e in (e.id, PackedBytes([LogLine.encoded { LogLine.srcids(resolverEndpoint: e.id, to: &$0) }])) }
        }
    }

    /// The head of `view`'s lines, or nil when it has to be encoded on the spot. A view with a
    /// VPC index comes from this snapshot's model (the engine selects views with it), so its
    /// VPC id and region are that VPC's. Valid while this object lives.
    @inline(__always)
    func head(_ view: ViewChoice) -> UnsafeBufferPointer<UInt8>? {
        if let i = view.vpcIndex {
            return i < heads.count - 1 ? heads[i] : nil
        }
        return view.vpcID == nil && view.region == nil ? heads[heads.count - 1] : nil
    }

    /// Writes the head of `view`'s lines.
    @inline(__always)
    func head(_ view: ViewChoice, to out: inout ByteSink) {
        if let h = head(view) {
            out.append(contentsOf: h)
        } else {
            LogLine.head(accountID: accountID, region: view.region ?? "-", vpcID: view.vpcID ?? "-", to: &out)
        }
    }

    /// The inside of `srcids` for `view`.
    func srcids(_ view: ViewChoice, to out: inout ByteSink) {
        guard let id = view.inboundEndpointID else { return }
        if let i = view.vpcIndex, i < inbound.count {
            for e in inbound[i] where e.id == id {
                out.append(contentsOf: e.srcids[0])
                return
            }
        }
        LogLine.srcids(resolverEndpoint: id, to: &out)
    }
}

/// A local answer's segments: the same for every query its memo entry answers (the memo key
/// fixes the VPC, the question's name, type and class; the answer fixes the rest).
final class LocalLogPieces {
    private let parts: PackedBytes

    /// `query_name` of an all-lower-case question (the memo key's name, with the trailing dot).
    @inline(__always) var lowerCaseName: UnsafeBufferPointer<UInt8> { parts[0] }
    @inline(__always) var middle: UnsafeBufferPointer<UInt8> { parts[1] }
    @inline(__always) var decision: UnsafeBufferPointer<UInt8> { parts[2] }

    init(question: DNSQuestion, rcode: RCode, answer: [ResourceRecord], kind: DecisionKind, zone: DNSName?, zoneID: String?,
         reason: String?, recordSet: String? = nil) {
        parts = PackedBytes([
            LogLine.encoded { JSONBytes.wireName(question.name.wire, caseMask: nil, trailingDot: true, to: &$0) },
            LogLine.encoded {
                LogLine.middle(type: QueryLogRecord.text(question.type), rrClass: QueryLogRecord.text(question.qclass),
                               rcode: rcode.description, answers: .records(answer), to: &$0)
            },
            LogLine.encoded {
                LogLine.decision(kind.rawValue, zone: kind == .endpointDNSName ? nil : zone.map { .domain($0) }, zoneID: zoneID,
                                 reason: reason, recordSet: recordSet, cache: .none, to: &$0)
            },
        ])
    }
}
