import Foundation
import NIOCore
import NIOPosix
import Synchronization
import VPCDNSCore
@testable import VPCDNSServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The real `vpcdns` executable that `swift build` leaves in `.build/debug`.
enum VPCDNSBinary {
    /// The repository root, found from this file's own path.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // VPCDNSServerTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static var path: String { repositoryRoot.appendingPathComponent(".build/debug/vpcdns").path }

    /// The binary's path, or an error that says what to do (the suite fails, it does not skip).
    static func require() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw FixtureError("the vpcdns binary is missing at \(path): run `swift build` in \(repositoryRoot.path) before these tests")
        }
        return path
    }
}

/// A `vpcdns serve` child process, started with `posix_spawn` (clean signal mask, own
/// process group, as `ChildProcess`), its standard output and error written to files in
/// `directory`. `deinit` stops it (SIGTERM, then SIGKILL after a grace period) so that a
/// failing test leaves nothing running.
final class ServeProcess: Sendable {
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    /// The raw `waitpid` status once the process was reaped.
    private let status = Mutex<Int32?>(nil)

    /// `namespace`: run inside that network namespace (`Netns.inNamespace`; the pid is still vpcdns's own).
    init(arguments: [String], directory: URL, namespace: String? = nil) throws {
        let binary = try VPCDNSBinary.require()
        stdoutPath = directory.appendingPathComponent("serve.stdout").path
        stderrPath = directory.appendingPathComponent("serve.stderr").path

        let (path, args) = namespace.map { Netns.inNamespace($0, binary, arguments) } ?? (binary, arguments)
        pid = try ChildProcess.spawn(path, args, stdout: stdoutPath, stderr: stderrPath)
    }

    /// Reaps the process if it ended; true while it runs.
    var isRunning: Bool {
        status.withLock { s in
            if s != nil { return false }
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid {
                s = st
            } else if r == -1 && errno == ECHILD {
                // Reaped elsewhere: the pid may belong to someone else by now, so it must
                // never be signalled again. Record it as gone (status unknown).
                s = -1
            }
            return s == nil
        }
    }

    /// The exit code (128 + signal when killed by a signal; 255 when reaped elsewhere), once it ended.
    var exitCode: Int32? {
        _ = isRunning
        guard let st = status.withLock({ $0 }) else { return nil }
        if st & 0x7F == 0 { return (st >> 8) & 0xFF }
        return 128 + (st & 0x7F)
    }

    var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    /// The `listening on TRANSPORT IP:PORT` lines printed so far, in order.
    var listeningLines: [String] {
        standardError.split(separator: "\n").map(String.init).filter { $0.hasPrefix("listening on ") }
    }

    /// Waits (bounded) until `count` listener lines were printed. Throws with the standard
    /// error text when the process ends first or the time runs out.
    func waitListening(count: Int, timeout: Duration = .seconds(10)) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let lines = listeningLines
            if lines.count >= count { return lines }
            if !isRunning {
                throw FixtureError("vpcdns serve exited (\(exitCode.map(String.init) ?? "?")) before listening:\n\(standardError)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        // A last look: lines printed during the final sleep count (it failed once with
        // "4 of 4": the fourth came after the loop's last look).
        let lines = listeningLines
        if lines.count >= count { return lines }
        throw FixtureError("vpcdns serve printed \(lines.count) of \(count) listener lines in \(timeout):\n\(standardError)")
    }

    /// Waits (bounded) for the process to end; its exit code, or nil when still running.
    func waitExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !isRunning { return exitCode }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return isRunning ? nil : exitCode
    }

    func signal(_ sig: Int32) {
        if isRunning { kill(pid, sig) }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL to the process group; always reaped.
    /// Returns the exit code.
    @discardableResult
    func stop(grace: Duration = .seconds(3)) -> Int32? {
        if isRunning {
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + grace
            while isRunning && ContinuousClock.now < deadline { usleep(10_000) }
            if isRunning {
                kill(-pid, SIGKILL)
                var st: Int32 = 0
                waitpid(pid, &st, 0)
                status.withLock { $0 = st }
            }
        }
        return exitCode
    }

    deinit { stop() }
}

/// A command run to completion with a bounded time (dig, nslookup, ip). Output goes to
/// temporary files, so a chatty command cannot block on a full pipe.
enum Command {
    struct Result {
        var exitCode: Int32
        var output: String
        var error: String
        var timedOut: Bool
    }

    /// Runs `path arguments`; after `timeout` the command is killed and `timedOut` set.
    @discardableResult
    static func run(_ path: String, _ arguments: [String], timeout: Duration = .seconds(10)) throws -> Result {
        let dir = FileManager.default.temporaryDirectory
        let out = dir.appendingPathComponent("vpcdns-cmd-\(UUID().uuidString).out")
        let err = dir.appendingPathComponent("vpcdns-cmd-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        let deadline = ContinuousClock.now + timeout
        while p.isRunning && ContinuousClock.now < deadline { usleep(5_000) }
        var timedOut = false
        if p.isRunning {
            timedOut = true
            p.terminate()
            let killAt = ContinuousClock.now + .seconds(1)
            while p.isRunning && ContinuousClock.now < killAt { usleep(5_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        p.waitUntilExit()
        return Result(
            exitCode: p.terminationStatus,
            output: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            error: (try? String(contentsOf: err, encoding: .utf8)) ?? "",
            timedOut: timedOut)
    }
}

/// `dig` with any option, against loopback only (or, with `server: nil`, the resolver of the
/// network namespace it runs in, see `NetnsScenarioTests`). Every run is bounded:
/// `+time=1 +tries=1` unless the caller says otherwise, and a hard kill after 10 s.
enum DigRun {
    struct Result {
        var status: String
        var flags: [String]
        /// Answer-section records, split on white space: name, TTL, class, type, rdata....
        var answers: [[String]]
        /// The `; EDNS: ...` line of the OPT pseudo-section, when the reply had an OPT.
        var edns: String?
        /// The question line (`;WwW.MyService.InTeRnAl.\tIN\tA`), without the `;`.
        var question: String?
        var output: String

        /// The rdata of the answers of `type`, as dig prints them.
        func rdata(_ type: String) -> [String] {
            answers.filter { $0.count >= 5 && $0[3] == type }.map { $0[4...].joined(separator: " ") }
        }

        /// TTL of the first answer of `type`.
        func ttl(_ type: String) -> Int? {
            answers.first { $0.count >= 5 && $0[3] == type }.flatMap { Int($0[1]) }
        }

        var aa: Bool { flags.contains("aa") }
        var tc: Bool { flags.contains("tc") }
    }

    static func isLoopback(_ e: SocketEndpoint) -> Bool {
        switch e.ip {
        case .v4(let a): return a >> 24 == 127
        case .v6(let a): return a == 1
        }
    }

    /// `dig @server -p port [-b source] name type options...`.
    static func query(_ name: String, _ type: String = "A", server: SocketEndpoint, source: String? = nil,
                      options: [String] = []) throws -> Result {
        precondition(isLoopback(server), "tests send packets to loopback only, not \(server)")
        if let source { precondition(source.hasPrefix("127."), "loopback sources only") }
        var args = ["@\(server.ip)", "-p", "\(server.port)"]
        if let source { args += ["-b", source] }
        args += [name, type]
        if !options.contains(where: { $0.hasPrefix("+time") }) { args.append("+time=1") }
        if !options.contains(where: { $0.hasPrefix("+tries") || $0.hasPrefix("+retry") }) { args.append("+tries=1") }
        args += options
        let r = try Command.run("/usr/bin/dig", args)
        return parse(r.output + r.error)
    }

    static func parse(_ out: String) -> Result {
        var result = Result(status: "", flags: [], answers: [], edns: nil, question: nil, output: out)
        var section = ""
        for line in out.split(separator: "\n", omittingEmptySubsequences: false) {
            if let r = line.range(of: "status: ") {
                result.status = String(line[r.upperBound...].prefix { $0 != "," })
            }
            if line.hasPrefix(";; flags: ") {
                let f = line.dropFirst(";; flags: ".count).prefix { $0 != ";" }
                result.flags = f.split(separator: " ").map(String.init)
            }
            if line.hasPrefix("; EDNS: ") { result.edns = String(line) }
            if line.hasPrefix(";; ") && line.hasSuffix(" SECTION:") {
                section = String(line.dropFirst(3).dropLast(" SECTION:".count))
                continue
            }
            if line.isEmpty { section = ""; continue }
            switch section {
            case "QUESTION":
                result.question = String(line.dropFirst())
            case "ANSWER":
                result.answers.append(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
            default:
                break
            }
        }
        return result
    }
}

/// Picks a port that is free for UDP and TCP on `host` right now (bound with port 0 and
/// released). A race with another program is possible; the harness retries its start.
func freePort(host: String) async throws -> Int {
    // A few tries: UDP port 0 can hand out a port whose TCP side is still taken.
    var lastError: (any Error)? = nil
    for _ in 0..<5 {
        let udp = try await DatagramBootstrap(group: testGroup).bind(host: host, port: 0).get()
        let port = udp.localAddress!.port!
        do {
            // SO_REUSEADDR as the server sets it: a TIME_WAIT left on this port by an earlier
            // test's TCP client must not make the probe fail.
            let tcp = try await ServerBootstrap(group: testGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port).get()
            try await tcp.close().get()
            // Closed (not just asked to close) before the port is handed out.
            try await udp.close().get()
            return port
        } catch {
            lastError = error
            try? await udp.close().get()
        }
    }
    throw lastError!
}

/// Reads the JSON-lines query log.
enum QueryLogFile {
    typealias Record = [String: Any]

    static func records(_ path: String) -> [Record] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? Record
        }
    }

    /// Waits (bounded) until `count` records matching `predicate` are in the file (L1: within
    /// a second); returns the matching records then (or at the timeout).
    static func wait(_ path: String, count: Int = 1, timeout: Duration = .seconds(3), where predicate: (Record) -> Bool) async -> [Record] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let found = records(path).filter(predicate)
            if found.count >= count { return found }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return records(path).filter(predicate)
    }
}

extension Dictionary where Key == String, Value == Any {
    /// A key of the `vpcdns` object, as a string.
    func vpcdns(_ key: String) -> String? {
        (self["vpcdns"] as? [String: Any])?[key].map { "\($0)" }
    }

    func string(_ key: String) -> String? { self[key].map { "\($0)" } }
}

extension ServeProcess {
    /// Waits (bounded) until `text` appears `count` times in standard error; false once the
    /// process has ended without it.
    func waitForStderr(_ text: String, count: Int = 1, timeout: Duration = .seconds(10)) async -> Bool {
        func seen() -> Bool { standardError.components(separatedBy: text).count - 1 >= count }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if seen() { return true }
            if !isRunning { return seen() }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return seen()
    }
}
