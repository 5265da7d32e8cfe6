/// One answer of a record: `{"Rdata": ..., "Type": ..., "Class": ...}`.
public struct LogAnswer: Sendable, Equatable {
    public var rdata: String
    public var type: String
    public var rrClass: String
}

/// vpcdns's own explanation (`vpcdns` key, query-log.md); absent from AWS's records.
public struct VPCDNSInfo: Sendable, Equatable {
    public var decision: String
    public var zone: String?
    public var zoneID: String?
    public var reason: String?
    public var cache: String?
    public var via: String?
    public var latencyMicros: Int64?
    /// `vpcdns.received_at` as written (microsecond UTC time), when present.
    public var receivedAt: String?
}

/// One query-log record as read: the fields the tools use, and the line exactly as it was.
/// Fields AWS writes that vpcdns does not (`firewall_*`, `srcids.instance`,
/// `srcids.resolver_network_interface`, ...) are accepted and kept only in `line`.
public struct LogRecord: Sendable {
    /// The original line text (without its newline).
    public var line: String
    public var vpcID: String
    public var region: String?
    public var queryTimestamp: String
    /// `queryTimestamp` as microseconds since the Unix epoch.
    public var timeMicros: Int64
    public var queryName: String
    public var queryType: String
    public var rcode: String
    public var answers: [LogAnswer]
    public var srcAddr: String?
    public var srcPort: String?
    public var transport: String?
    public var resolverEndpoint: String?
    public var instance: String?
    public var firewallAction: String?
    /// nil for a record AWS wrote (or anything else without the `vpcdns` object).
    public var vpcdns: VPCDNSInfo?

    /// The time several files are merged by: `vpcdns.received_at` (when the query arrived, to
    /// the microsecond), else `query_timestamp` (AWS exports carry only that).
    public var orderMicros: Int64 {
        vpcdns?.receivedAt.flatMap(LogTime.parseTimestamp) ?? timeMicros
    }

    /// True when the record carries no vpcdns decision (an AWS record).
    public var isAWS: Bool { vpcdns == nil }

    /// Parses one line; on failure, why the line is not a record.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<LogRecord, BadRecord> {
        var s = RecordScanner(bytes)
        do {
            try s.scan()
        } catch {
            return .failure(BadRecord(error.why))
        }
        guard let name = s.queryName else { return .failure(BadRecord("missing query_name")) }
        guard let type = s.queryType else { return .failure(BadRecord("missing query_type")) }
        guard let rcode = s.rcode else { return .failure(BadRecord("missing rcode")) }
        guard let vpc = s.vpcID else { return .failure(BadRecord("missing vpc_id")) }
        guard let ts = s.timestamp else { return .failure(BadRecord("missing query_timestamp")) }
        guard let micros = LogTime.parseTimestamp(ts) else {
            return .failure(BadRecord("query_timestamp is not an ISO 8601 UTC time: \(ts)"))
        }
        var info: VPCDNSInfo? = nil
        if s.hasVPCDNS, let d = s.decision {
            info = VPCDNSInfo(decision: d, zone: s.zone, zoneID: s.zoneID, reason: s.reason, cache: s.cache, via: s.via,
                              latencyMicros: s.latency, receivedAt: s.receivedAt)
        }
        return .success(LogRecord(
            line: String(decoding: bytes, as: UTF8.self), vpcID: vpc, region: s.region, queryTimestamp: ts,
            timeMicros: micros, queryName: name, queryType: type, rcode: rcode, answers: s.answers,
            srcAddr: s.srcAddr, srcPort: s.srcPort, transport: s.transport, resolverEndpoint: s.resolverEndpoint,
            instance: s.instance, firewallAction: s.firewallAction, vpcdns: info))
    }

    public static func parse(line: String) -> Result<LogRecord, BadRecord> {
        var s = line
        return s.withUTF8 { parse($0) }
    }

    /// `query_name` lower-cased, with a trailing dot: the key names are counted by.
    public var nameKey: String {
        let l = queryName.lowercased()
        return l.hasSuffix(".") ? l : l + "."
    }

    /// True when the query came through an inbound endpoint (R7 depends on it).
    public var viaInboundEndpoint: Bool {
        if let v = vpcdns?.via { return v == "inbound_endpoint" }
        return resolverEndpoint?.hasPrefix("rslvr-in-") ?? false
    }
}

/// Why a line is not a record.
public struct BadRecord: Error, Sendable, Equatable, CustomStringConvertible {
    public var why: String
    public init(_ why: String) { self.why = why }
    public var description: String { why }
}

