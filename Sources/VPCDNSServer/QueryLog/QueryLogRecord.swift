#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DNSWire
import VPCDNSCore

/// One query-log line (query-log.md): AWS's Route 53 Resolver fields with AWS's names and
/// value forms, plus vpcdns's explanation under `vpcdns`.
///
/// The JSON is written by hand into a String: the field set is fixed, and a general encoder
/// would cost an allocation per value on a path that runs for every query.
public struct QueryLogRecord: Sendable {
    public enum CacheUse: String, Sendable { case hit, miss, none }

    public var accountID: String
    public var region: String
    public var vpcID: String
    /// Wall-clock time of receipt, microseconds since the Unix epoch.
    public var receivedAtMicros: Int64
    /// The name as asked, case kept, with a trailing dot; `-` when unreadable.
    public var queryName: String
    public var queryType: String
    public var queryClass: String
    public var rcode: String
    /// (Rdata, Type, Class) in answer-section order.
    public var answers: [(rdata: String, type: String, rrClass: String)]
    public var srcAddr: String
    public var srcPort: UInt16
    public var transport: String
    public var resolverEndpoint: String?
    public var decision: String
    public var zone: String?
    public var zoneID: String?
    public var reason: String?
    public var cache: CacheUse
    public var upstream: String?
    public var via: String
    public var latencyMicros: Int64

    public init(accountID: String, region: String, vpcID: String, receivedAtMicros: Int64, queryName: String, queryType: String,
                queryClass: String, rcode: String, answers: [(rdata: String, type: String, rrClass: String)], srcAddr: String,
                srcPort: UInt16, transport: String, resolverEndpoint: String?, decision: String, zone: String?, zoneID: String?,
                reason: String?, cache: CacheUse, upstream: String?, via: String, latencyMicros: Int64) {
        self.accountID = accountID
        self.region = region
        self.vpcID = vpcID
        self.receivedAtMicros = receivedAtMicros
        self.queryName = queryName
        self.queryType = queryType
        self.queryClass = queryClass
        self.rcode = rcode
        self.answers = answers
        self.srcAddr = srcAddr
        self.srcPort = srcPort
        self.transport = transport
        self.resolverEndpoint = resolverEndpoint
        self.decision = decision
        self.zone = zone
        self.zoneID = zoneID
        self.reason = reason
        self.cache = cache
        self.upstream = upstream
        self.via = via
        self.latencyMicros = latencyMicros
    }

    /// The record as one JSON line, newline included.
    public func jsonLine() -> String {
        var s = ""
        s.reserveCapacity(512)
        s += #"{"version":"1.100000","account_id":"#
        JSONValue.writeString(accountID, to: &s)
        s += #","region":"#; JSONValue.writeString(region, to: &s)
        s += #","vpc_id":"#; JSONValue.writeString(vpcID, to: &s)
        s += #","query_timestamp":""#; s += Timestamp.iso8601(micros: receivedAtMicros, fraction: false); s += "\""
        s += #","query_name":"#; JSONValue.writeString(queryName, to: &s)
        s += #","query_type":"#; JSONValue.writeString(queryType, to: &s)
        s += #","query_class":"#; JSONValue.writeString(queryClass, to: &s)
        s += #","rcode":"#; JSONValue.writeString(rcode, to: &s)
        s += #","answers":["#
        for (i, a) in answers.enumerated() {
            if i > 0 { s += "," }
            s += #"{"Rdata":"#; JSONValue.writeString(a.rdata, to: &s)
            s += #","Type":"#; JSONValue.writeString(a.type, to: &s)
            s += #","Class":"#; JSONValue.writeString(a.rrClass, to: &s)
            s += "}"
        }
        s += #"],"srcaddr":"#; JSONValue.writeString(srcAddr, to: &s)
        s += #","srcport":""#; s += String(srcPort); s += "\""
        s += #","transport":""#; s += transport; s += "\""
        s += #","srcids":{"#
        if let r = resolverEndpoint { s += #""resolver_endpoint":"#; JSONValue.writeString(r, to: &s) }
        s += #"},"vpcdns":{"decision":""#; s += decision; s += "\""
        if let z = zone { s += #","zone":"#; JSONValue.writeString(z, to: &s) }
        if let z = zoneID { s += #","zone_id":"#; JSONValue.writeString(z, to: &s) }
        if let r = reason { s += #","reason":"#; JSONValue.writeString(r, to: &s) }
        s += #","cache":""#; s += cache.rawValue; s += "\""
        if let u = upstream { s += #","upstream":"#; JSONValue.writeString(u, to: &s) }
        s += #","via":""#; s += via; s += "\""
        s += #","received_at":""#; s += Timestamp.iso8601(micros: receivedAtMicros, fraction: true); s += "\""
        s += #","latency_us":"#; s += String(max(0, latencyMicros))
        s += "}}\n"
        return s
    }
}

/// UTC timestamps as AWS writes them, without Foundation's formatters.
public enum Timestamp {
    /// `2026-11-27T20:15:03Z`, or with `fraction` `2026-11-27T20:15:03.123456Z`.
    public static func iso8601(micros: Int64, fraction: Bool) -> String {
        var secs = time_t(micros / 1_000_000)
        var tm = tm()
        gmtime_r(&secs, &tm)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        var out = "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2))"
        if fraction { out += "." + pad(Int32(micros % 1_000_000), 6) }
        return out + "Z"
    }

    /// Wall-clock microseconds since the epoch (the shell reads the clock; the core never does).
    public static func nowMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    /// Monotonic nanoseconds, for latencies and cache ages.
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
