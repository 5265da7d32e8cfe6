import CZlib
import Foundation
import Testing
import VPCDNSLogs
import VPCDNSServer

/// A fresh folder under the system temp dir, removed by `cleanup()` (only what it created).
final class TempDir {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "vpcdns-logs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String, _ text: String) throws -> String {
        let p = path + "/" + name
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
    /// Writes `text` gzip-compressed through zlib (one member).
    func gzip(_ name: String, _ text: String) throws -> String {
        let p = path + "/" + name
        try gzipBytes(text).write(to: URL(fileURLWithPath: p))
        return p
    }
    func gzipBytes(_ text: String) throws -> Data {
        let tmp = path + "/.gz-\(UUID().uuidString)"
        guard let gz = gzopen(tmp, "wb") else { throw CocoaError(.fileWriteUnknown) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        gzclose(gz)
        guard n == bytes.count else { throw CocoaError(.fileWriteUnknown) }
        let d = try Data(contentsOf: URL(fileURLWithPath: tmp))
        try FileManager.default.removeItem(atPath: tmp)
        return d
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

enum Fixture {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let config = root + "/config/vpcdns.yaml"

    static let app = "vpc-0a11ce0000000001a"
    static let database = "vpc-0db0000000000002b"
    static let legacy = "vpc-01e9ac0000000003c"

    /// 2026-11-27T20:00:00Z
    static let t0: Int64 = LogTime.parseTimestamp("2026-11-27T20:00:00Z")!

    static func record(_ vpc: String, _ name: String, _ type: String = "A", rcode: String = "NOERROR",
                       answers: [String] = [], decision: String, zone: String? = nil, reason: String? = nil,
                       via: String = "source", endpoint: String? = nil, seconds: Int64, latency: Int64 = 100,
                       src: String = "10.0.0.5") -> String {
        QueryLogRecord(accountID: "111122223333", region: vpc == "-" ? "-" : "us-west-2", vpcID: vpc,
                       receivedAtMicros: t0 + seconds * 1_000_000 + 123_456, queryName: name, queryType: type,
                       queryClass: "IN", rcode: rcode,
                       answers: answers.map { (rdata: $0, type: $0.contains(":") ? "AAAA" : (type == "CNAME" ? "CNAME" : "A"), rrClass: "IN") },
                       srcAddr: src, srcPort: 40211, transport: "UDP", resolverEndpoint: endpoint, decision: decision,
                       zone: zone, zoneID: nil, reason: reason, cache: decision == "upstream" ? .miss : .none,
                       upstream: decision == "upstream" ? "127.0.0.1:1054" : nil, via: via, latencyMicros: latency).jsonLine()
    }

    /// A vpcdns log with known content: 10 records, 3 VPCs.
    static let vpcdnsLines: [String] = [
        record(app, "ec2.us-west-2.amazonaws.com.", answers: ["10.0.1.10", "10.0.2.10"], decision: "endpoint-private-dns", zone: "ec2.us-west-2.amazonaws.com", seconds: 0, latency: 40),
        record(app, "www.myservice.internal.", answers: ["10.0.5.10"], decision: "private-hosted-zone", zone: "myservice.internal", seconds: 1, latency: 30),
        record(app, "WWW.MyService.Internal.", answers: ["10.0.5.10"], decision: "private-hosted-zone", zone: "myservice.internal", seconds: 2, latency: 50),
        record(app, "nope.myservice.internal.", rcode: "NXDOMAIN", decision: "private-hosted-zone", zone: "myservice.internal", seconds: 3, latency: 20),
        record(app, "s3.us-west-2.amazonaws.com.", answers: ["52.218.0.1"], decision: "upstream", reason: "inbound-only", seconds: 4, latency: 900),
        record(app, "x.corp.example.com.", rcode: "SERVFAIL", decision: "forward-rule", zone: "corp.example.com", reason: "upstream-timeout", seconds: 5, latency: 2_000_000),
        record(database, "ec2.us-west-2.amazonaws.com.", answers: ["203.0.113.10"], decision: "upstream", seconds: 6, latency: 700, src: "10.1.0.5"),
        record(database, "www.myservice.internal.", rcode: "NXDOMAIN", decision: "upstream", seconds: 7, latency: 600, src: "10.1.0.5"),
        record(legacy, "ec2.us-west-2.amazonaws.com.", answers: ["203.0.113.10"], decision: "upstream", reason: "enable_dns_hostnames=false", seconds: 8, latency: 800, src: "10.2.0.5"),
        record("-", "what.example.", rcode: "REFUSED", decision: "refused", reason: "no-vpc-match", via: "none", seconds: 9, latency: 5, src: "192.0.2.1"),
    ]

    /// AWS-shaped records (aws-reference.md §7.2/§7.3): srcids.instance, firewall_*,
    /// millisecond timestamps, srcport as an int on one of them; no vpcdns object.
    static let awsLines: [String] = [
        #"{"version":"1.100000","account_id":"111122223333","region":"us-west-2","vpc_id":"vpc-01e9ac0000000003c","query_timestamp":"2026-11-27T20:10:00Z","query_name":"ec2.us-west-2.amazonaws.com.","query_type":"A","query_class":"IN","rcode":"NOERROR","answers":[{"Rdata":"203.0.113.10","Type":"A","Class":"IN"}],"srcaddr":"10.2.1.5","srcport":"48213","transport":"UDP","srcids":{"instance":"i-0fedcba9876543210"}}"#,
        #"{"version":"1.100000","account_id":"111122223333","region":"us-west-2","vpc_id":"vpc-0a11ce0000000001a","query_timestamp":"2026-11-27T20:10:01.177Z","query_name":"ec2.us-west-2.amazonaws.com.","query_type":"A","query_class":"IN","rcode":"NOERROR","answers":[{"Rdata":"10.0.1.10","Type":"A","Class":"IN"},{"Rdata":"10.0.2.10","Type":"A","Class":"IN"}],"srcaddr":"10.0.1.5","srcport":53001,"transport":"UDP","srcids":{"instance":"i-0aaaabbbbccccdddd"}}"#,
        #"{"version":"1.100000","account_id":"111122223333","region":"us-west-2","vpc_id":"vpc-0db0000000000002b","query_timestamp":"2026-11-27T20:10:02.500Z","query_name":"db1.myservice.internal.","query_type":"A","query_class":"IN","rcode":"NXDOMAIN","answers":[],"srcaddr":"192.168.50.10","srcport":"53122","transport":"UDP","srcids":{"resolver_endpoint":"rslvr-in-0123456789abcdef0","resolver_network_interface":"eni-0abc1234def567890"}}"#,
        #"{"version":"1.100000","account_id":"111122223333","region":"us-west-2","vpc_id":"vpc-0db0000000000002b","query_timestamp":"2026-11-27T20:10:03Z","query_name":"bad.example.net.","query_type":"A","query_class":"IN","rcode":"NXDOMAIN","answers":[],"srcaddr":"10.1.0.7","srcport":"39001","transport":"UDP","srcids":{"instance":"i-0fedcba9876543210"},"firewall_rule_group_id":"rslvr-frg-0123456789abcdef0","firewall_rule_action":"BLOCK","firewall_domain_list_id":"rslvr-fdl-0123456789abcdef0"}"#,
    ]

    static func text(_ lines: [String]) -> String {
        lines.map { $0.hasSuffix("\n") ? $0 : $0 + "\n" }.joined()
    }
}

/// Reads files through the library, collecting records and the bad-line messages.
func readAll(_ paths: [String], filter: LogFilter = LogFilter()) -> (records: [LogRecord], result: LogReadResult, messages: [String]) {
    var messages: [String] = []
    var records: [LogRecord] = []
    let bad = BadLineReporter { messages.append($0) }
    let result = LogReader.read(paths: paths, bad: bad) { r in if filter.matches(r) { records.append(r) } }
    return (records, result, messages)
}

/// Runs the built `vpcdns` binary (build it first: `swift build`).
enum CLI {
    static var binary: String { Fixture.root + "/.build/debug/vpcdns" }

    struct Output { let status: Int32; let stdout: String; let stderr: String }

    static func run(_ args: [String]) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: Fixture.root)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read stderr concurrently so neither pipe can fill up and stall the child.
        let errData = LockedData()
        let t = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        t.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errData.done { usleep(1000) }
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: errData.data, as: UTF8.self))
    }
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var _data = Data()
    private var _done = false
    func set(_ d: Data) { lock.lock(); _data = d; _done = true; lock.unlock() }
    var data: Data { lock.lock(); defer { lock.unlock() }; return _data }
    var done: Bool { lock.lock(); defer { lock.unlock() }; return _done }
}
