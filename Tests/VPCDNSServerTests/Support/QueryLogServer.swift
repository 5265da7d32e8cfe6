#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The real `vpcdns serve` binary as a child process (started like `ChildProcess`: clean
/// signal mask, default dispositions, own process group), with standard output and standard
/// error going to files so a test can read the listening lines, the shutdown line and
/// `query_log: -` output.
final class QueryLogServer: @unchecked Sendable {
    // @unchecked: `pid` and the paths are immutable; `status` is only touched by the test that
    // owns the process, from one task at a time.
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()
    static var binary: String { root + "/.build/debug/vpcdns" }

    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    /// The UDP (and TCP) port of the first `listening on udp 127.0.0.1:PORT` line.
    private(set) var port: UInt16 = 0
    private var status: Int32? = nil

    /// Starts `vpcdns serve --config CONFIG --listen 127.0.0.1:0` and waits until it prints
    /// where it listens.
    init(config: String, directory: String, listen: String = "127.0.0.1:0") throws {
        stdoutPath = directory + "/serve.stdout"
        stderrPath = directory + "/serve.stderr"
        pid = try ChildProcess.spawn(Self.binary, ["serve", "--config", config, "--listen", listen], stdout: stdoutPath, stderr: stderrPath)
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let r = stderr.range(of: "listening on udp 127.0.0.1:") {
                let digits = stderr[r.upperBound...].prefix { $0.isNumber }
                if let p = UInt16(digits), stderr[r.upperBound...].dropFirst(digits.count).first == "\n" {
                    port = p
                    return
                }
            }
            if !isRunning { break }
            usleep(10_000)
        }
        stop()
        let err = stderr
        throw FixtureError("vpcdns serve did not start: \(err)")
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    var isRunning: Bool {
        guard status == nil else { return false }
        var s: Int32 = 0
        if waitpid(pid, &s, WNOHANG) == pid { status = s }
        return status == nil
    }

    func signal(_ sig: Int32) {
        if isRunning { kill(pid, sig) }
    }

    /// Waits for the process to end; its exit code (128+N when killed by signal N), or nil
    /// when it still runs after `timeout`.
    func waitExit(timeout: TimeInterval = 10) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning && Date() < deadline { usleep(5_000) }
        guard let s = status else { return nil }
        let sig = s & 0x7F
        return sig == 0 ? (s >> 8) & 0xFF : 128 + sig
    }

    /// SIGTERM and the exit code (graceful stop, O3).
    func terminate(timeout: TimeInterval = 10) -> Int32? {
        signal(SIGTERM)
        return waitExit(timeout: timeout)
    }

    /// Kills what is left (a test that failed before stopping it).
    func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        if waitExit(timeout: 5) == nil {
            kill(-pid, SIGKILL)
            var s: Int32 = 0
            waitpid(pid, &s, 0)
            status = s
        }
    }

    deinit { stop() }

    /// `written=N` and `dropped=M` of the "query log closed" line on standard error.
    var closeCounts: (written: Int, dropped: Int)? {
        guard let line = stderr.split(separator: "\n").last(where: { $0.contains("query log closed") }) else { return nil }
        func value(_ key: String) -> Int? {
            guard let r = line.range(of: key + "=") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
        guard let w = value("written"), let d = value("dropped") else { return nil }
        return (w, d)
    }

    /// `accepted=N` of the same line, when the server writes it.
    var closeAccepted: Int? {
        guard let line = stderr.split(separator: "\n").last(where: { $0.contains("query log closed") }),
              let r = line.range(of: "accepted=") else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
    }
}

/// A fresh temporary folder, removed by `remove()`.
struct TempDir {
    let path: String
    init(_ prefix: String) throws {
        path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
    func write(_ name: String, _ text: String) throws -> String {
        let p = path + "/" + name
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
}

/// Blocking DNS over a real loopback socket, with raw bytes (bad packets included).
enum LogRawDNS {
    /// A query message. `opcode` goes into the header as is; `qclass` 3 is CH.
    static func query(id: UInt16, name: String, type: UInt16 = 1, qclass: UInt16 = 1, opcode: UInt8 = 0) -> [UInt8] {
        var b: [UInt8] = []
        func u16(_ v: UInt16) { b.append(UInt8(v >> 8)); b.append(UInt8(v & 0xFF)) }
        u16(id)
        u16(UInt16(opcode & 0xF) << 11 | 0x0100)  // RD
        u16(1); u16(0); u16(0); u16(0)
        for label in name.split(separator: ".") {
            b.append(UInt8(label.utf8.count))
            b += Array(label.utf8)
        }
        b.append(0)
        u16(type)
        u16(qclass)
        return b
    }

    /// A header that promises one question and a question cut off in its first label.
    static func unreadableQuestion(id: UInt16) -> [UInt8] {
        [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 20] + Array("abc".utf8)
    }

    struct Reply {
        var bytes: [UInt8]
        var id: UInt16 { UInt16(bytes[0]) << 8 | UInt16(bytes[1]) }
        var rcode: UInt8 { bytes[3] & 0x0F }
        var ancount: Int { Int(bytes[6]) << 8 | Int(bytes[7]) }
    }

    static func sockaddr(_ ip: String, _ port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        precondition(ip.hasPrefix("127."), "tests talk to loopback only")
        inet_pton(AF_INET, ip, &a.sin_addr)
        return a
    }
}

/// One UDP socket bound to a loopback address (port 0), for one query at a time.
final class BlockingUDPClient {
    let fd: Int32
    let port: UInt16

    init(bind ip: String = "127.0.0.1") throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket: \(errno)") }
        var a = LogRawDNS.sockaddr(ip, 0)
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); throw FixtureError("bind \(ip): \(errno)") }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.fd = fd
        port = UInt16(bigEndian: bound.sin_port)
    }

    deinit { close(fd) }

    /// Sends and waits for the reply with the same ID (nil after `timeout`).
    func exchange(_ message: [UInt8], to ip: String = "127.0.0.1", port: UInt16, timeout: TimeInterval = 3) -> LogRawDNS.Reply? {
        var to = LogRawDNS.sockaddr(ip, port)
        let sent = message.withUnsafeBytes { m in
            withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, m.baseAddress, m.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            } }
        }
        guard sent == message.count else { return nil }
        let id = UInt16(message[0]) << 8 | UInt16(message[1])
        let deadline = Date().addingTimeInterval(timeout)
        var buf = [UInt8](repeating: 0, count: 65535)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard poll(&pfd, 1, left) > 0 else { continue }
            let n = recv(fd, &buf, buf.count, 0)
            if n >= 12 {
                let r = LogRawDNS.Reply(bytes: Array(buf[0..<n]))
                if r.id == id { return r }
            }
        }
        return nil
    }
}

/// One query over a fresh TCP connection to 127.0.0.1.
enum BlockingTCP {
    static func exchange(_ message: [UInt8], port: UInt16, timeout: TimeInterval = 3) -> (reply: LogRawDNS.Reply, localPort: UInt16)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var to = LogRawDNS.sockaddr("127.0.0.1", port)
        let c = withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard c == 0 else { return nil }
        var local = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let framed = [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
        guard framed.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == framed.count else { return nil }
        func readExactly(_ n: Int) -> [UInt8]? {
            var out: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: n)
            while out.count < n {
                let got = recv(fd, &buf, n - out.count, 0)
                guard got > 0 else { return nil }
                out += buf[0..<got]
            }
            return out
        }
        guard let l = readExactly(2), let body = readExactly(Int(l[0]) << 8 | Int(l[1])), body.count >= 12 else { return nil }
        return (LogRawDNS.Reply(bytes: body), UInt16(bigEndian: local.sin_port))
    }
}

/// dnsperf against a loopback port, bounded in count (`-n`) and time (`-l`).
struct DNSPerf {
    static let path = "/usr/bin/dnsperf"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: path) }

    struct Result {
        var sent = 0
        var completed = 0
        var lost = 0
        var output = ""
    }

    /// Starts dnsperf; `finish()` waits for it and reads its statistics.
    final class Run: @unchecked Sendable {
        let process: Process
        let pipe: Pipe
        init(port: UInt16, dataFile: String, passes: Int, seconds: Int, clients: Int = 4, maxQPS: Int? = nil, timeout: Int = 5) throws {
            process = Process()
            process.executableURL = URL(fileURLWithPath: DNSPerf.path)
            var args = ["-s", "127.0.0.1", "-p", "\(port)", "-d", dataFile, "-n", "\(passes)", "-l", "\(seconds)",
                        "-c", "\(clients)", "-t", "\(timeout)"]
            if let q = maxQPS { args += ["-Q", "\(q)"] }
            process.arguments = args
            pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
        }

        func finish() -> Result {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let out = String(decoding: data, as: UTF8.self)
            var r = Result(output: out)
            func number(after key: String) -> Int {
                guard let range = out.range(of: key) else { return -1 }
                return Int(out[range.upperBound...].drop { $0 == " " }.prefix { $0.isNumber }) ?? -1
            }
            r.sent = number(after: "Queries sent:")
            r.completed = number(after: "Queries completed:")
            r.lost = number(after: "Queries lost:")
            return r
        }
    }
}

/// Reads a JSON-lines file: the lines, and each parsed as an object (nil where one does not parse).
func readJSONLines(_ path: String) -> (lines: [Substring], objects: [[String: Any]?]) {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8), !text.isEmpty else { return ([], []) }
    let lines = Array(text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0))
    // Fast path for big files: the lines joined as one array parse in one call; when that gives
    // exactly one object per line, each line is that object. Otherwise line by line.
    if lines.count > 1000, !lines.contains(where: \.isEmpty),
       let all = try? JSONSerialization.jsonObject(with: Data(("[" + lines.joined(separator: ",") + "]").utf8)) as? [Any],
       all.count == lines.count {
        let objects = all.map { $0 as? [String: Any] }
        if !objects.contains(where: { $0 == nil }) { return (lines, objects) }
    }
    let objects = lines.map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    return (lines, objects)
}

/// A port free right now for UDP and TCP on every one of `addresses` (loopback), so that
/// servers started at the same time by tests running in parallel do not collide.
func freeLoopbackPort(on addresses: [String]) throws -> UInt16 {
    func bindable(_ ip: String, _ port: UInt16, _ type: Int32) -> Bool {
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var a = LogRawDNS.sockaddr(ip, port)
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        } }
    }
    for _ in 0..<200 {
        let port = UInt16.random(in: 20_000...60_000)
        if addresses.allSatisfy({ bindable($0, port, Int32(SOCK_DGRAM.rawValue)) && bindable($0, port, Int32(SOCK_STREAM.rawValue)) }) {
            return port
        }
    }
    throw FixtureError("no free port on \(addresses)")
}
