import Foundation
import VPCDNSCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The real `vpcdns serve` (`.build/debug/vpcdns`) as a child process, with its own temp
/// folder holding the config and zone files, stderr captured to a file.
///
/// Loopback only: every address in the configs these tests write is 127.0.0.1.
final class OpsServer: @unchecked Sendable {
    // @unchecked: `child` is set once in `start`; tests drive one instance from one task.
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // Support, VPCDNSServerTests, Tests
        return url.path
    }()
    static var binary: String { root + "/.build/debug/vpcdns" }

    let directory: URL
    var configPath: String { directory.appendingPathComponent("vpcdns.yaml").path }
    var stderrPath: String { directory.appendingPathComponent("stderr.txt").path }
    private(set) var pid: pid_t = 0
    private var exited = false
    private(set) var exitStatus: Int32?

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    struct MissingBinary: Error, CustomStringConvertible {
        var description: String { "\(OpsServer.binary) is missing: run `swift build` first (make test does)" }
    }

    /// Starts `vpcdns serve --config vpcdns.yaml ARGS`.
    func start(_ args: [String] = []) throws {
        guard FileManager.default.isExecutableFile(atPath: OpsServer.binary) else { throw MissingBinary() }
        pid = try ChildProcess.spawn(OpsServer.binary, ["serve", "--config", configPath] + args, stderr: stderrPath)
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    var isRunning: Bool {
        guard pid != 0, !exited else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            exited = true
            exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
        }
        return !exited
    }

    /// Waits until stderr contains `text` (true) or the process ended / `timeout` passed.
    func waitForStderr(_ text: String, timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if stderr.contains(text) { return true }
            if !isRunning { return stderr.contains(text) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return stderr.contains(text)
    }

    /// Waits for the process to end by itself; its exit code, or nil after `timeout`.
    func waitForExit(timeout: Duration = .seconds(10)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !isRunning { return exitStatus }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    func signal(_ sig: Int32) {
        if isRunning { kill(pid, sig) }
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL; always reaped. The folder is removed.
    func stop() {
        if isRunning {
            kill(pid, SIGTERM)
            for _ in 0..<500 where isRunning { usleep(10_000) }
            if isRunning {
                kill(-pid, SIGKILL)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
                exited = true
            }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

/// `Command.run` with the names the ops tests use; and `curl`.
enum Shell {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ path: String, _ args: [String], timeout: TimeInterval = 30) throws -> Output {
        let r = try Command.run(path, args, timeout: .milliseconds(Int64(timeout * 1000)))
        return Output(status: r.exitCode, stdout: r.output, stderr: r.error)
    }

    /// `curl` against a loopback URL: (HTTP status, body).
    static func http(_ url: String) throws -> (status: Int, body: String) {
        precondition(url.hasPrefix("http://127.0.0.1:"), "tests talk to loopback only")
        let r = try run("/usr/bin/curl", ["-s", "--max-time", "5", "-w", "\n%{http_code}", url], timeout: 10)
        var lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let code = Int(lines.popLast() ?? "") ?? 0
        return (code, lines.joined(separator: "\n"))
    }
}

