import Foundation

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

    /// True when the record carries no vpcdns decision (an AWS record).
    public var isAWS: Bool { vpcdns == nil }

    /// Parses one line; on failure, why the line is not a record.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<LogRecord, BadRecord> {
        let data = Data(buffer: bytes)
        let obj: Any
        do {
            obj = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            return .failure(BadRecord("not JSON"))
        }
        guard let o = obj as? [String: Any] else { return .failure(BadRecord("not a JSON object")) }
        return parse(object: o, line: String(decoding: bytes, as: UTF8.self))
    }

    public static func parse(line: String) -> Result<LogRecord, BadRecord> {
        var s = line
        return s.withUTF8 { parse($0) }
    }

    static func parse(object o: [String: Any], line: String) -> Result<LogRecord, BadRecord> {
        func required(_ key: String) -> Result<String, BadRecord> {
            guard let v = o[key] else { return .failure(BadRecord("missing \(key)")) }
            guard let s = v as? String else { return .failure(BadRecord("\(key) is not a string")) }
            return .success(s)
        }
        func optionalString(_ v: Any?) -> String? {
            if let s = v as? String { return s }
            if let n = v as? NSNumber { return n.stringValue }
            return nil
        }
        let name: String, type: String, rcode: String, vpc: String, ts: String
        switch required("query_name") { case .success(let v): name = v; case .failure(let e): return .failure(e) }
        switch required("query_type") { case .success(let v): type = v; case .failure(let e): return .failure(e) }
        switch required("rcode") { case .success(let v): rcode = v; case .failure(let e): return .failure(e) }
        switch required("vpc_id") { case .success(let v): vpc = v; case .failure(let e): return .failure(e) }
        switch required("query_timestamp") { case .success(let v): ts = v; case .failure(let e): return .failure(e) }
        guard let micros = LogTime.parseTimestamp(ts) else {
            return .failure(BadRecord("query_timestamp is not an ISO 8601 UTC time: \(ts)"))
        }
        var answers: [LogAnswer] = []
        if let a = o["answers"], !(a is NSNull) {
            guard let list = a as? [Any] else { return .failure(BadRecord("answers is not an array")) }
            for item in list {
                guard let d = item as? [String: Any] else { return .failure(BadRecord("an answer is not an object")) }
                answers.append(LogAnswer(rdata: optionalString(d["Rdata"]) ?? "", type: optionalString(d["Type"]) ?? "",
                                         rrClass: optionalString(d["Class"]) ?? ""))
            }
        }
        let srcids = o["srcids"] as? [String: Any]
        var info: VPCDNSInfo? = nil
        if let v = o["vpcdns"], !(v is NSNull) {
            guard let d = v as? [String: Any] else { return .failure(BadRecord("vpcdns is not an object")) }
            guard let decision = d["decision"] as? String else { return .failure(BadRecord("vpcdns.decision missing")) }
            var latency: Int64? = nil
            if let n = d["latency_us"] as? NSNumber { latency = n.int64Value }
            info = VPCDNSInfo(decision: decision, zone: d["zone"] as? String, zoneID: d["zone_id"] as? String,
                              reason: d["reason"] as? String, cache: d["cache"] as? String, via: d["via"] as? String,
                              latencyMicros: latency)
        }
        return .success(LogRecord(
            line: line, vpcID: vpc, region: o["region"] as? String, queryTimestamp: ts, timeMicros: micros,
            queryName: name, queryType: type, rcode: rcode, answers: answers,
            srcAddr: optionalString(o["srcaddr"]), srcPort: optionalString(o["srcport"]),
            transport: o["transport"] as? String, resolverEndpoint: srcids?["resolver_endpoint"] as? String,
            instance: srcids?["instance"] as? String, firewallAction: o["firewall_rule_action"] as? String,
            vpcdns: info))
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
