import Foundation
import Testing

/// Runs the built `vpcdns` binary (build it first: `swift build`).
struct CLI {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var binary: String { root + "/.build/debug/vpcdns" }

    struct Output { let status: Int32; let stdout: String; let stderr: String }

    struct MissingBinary: Error, CustomStringConvertible {
        var description: String { "\(CLI.binary) is missing: run `swift build` first (make test does)" }
    }

    static func run(_ args: [String]) throws -> Output {
        // A missing binary fails the test rather than skipping it: CI must not pass without it.
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw MissingBinary() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: root)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func tempConfig(_ yaml: String) throws -> String {
        let path = NSTemporaryDirectory() + "vpcdns-cli-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

@Suite
struct CheckCommandTests {
    @Test func exampleConfigPassesWithTheHostnamesWarning() throws {
        let r = try CLI.run(["check"])   // default path config/vpcdns.yaml, from the repository root
        #expect(r.status == 0)
        #expect(r.stdout.contains("VPC vpc-0a11ce0000000001a (app)"))
        #expect(r.stdout.contains("ec2.us-west-2.amazonaws.com"))
        #expect(r.stderr.contains("config/vpcdns.yaml:"))
        #expect(r.stderr.contains(": warning: endpoint vpce-01e9ac1b2c3d4e5f65 has private DNS on, but VPC vpc-01e9ac0000000003c has enable_dns_hostnames: false"))
    }

    @Test func errorsExitOne() throws {
        let path = try CLI.tempConfig("vpcs:\n  - id: vpc-0a1\n    region: us-west-2\n    cidrs: [10.0.0.0/16]\n    enable_dns_hostname: true\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CLI.run(["check", "--config", path])
        #expect(r.status == 1)
        #expect(r.stderr == "\(path):5: vpcs[0].enable_dns_hostname: unknown key 'enable_dns_hostname'; did you mean 'enable_dns_hostnames'?\n")
    }

    /// A misspelt key leaves its default in place, which often brings warnings of its own:
    /// the error, the cause, comes first.
    @Test func errorsComeBeforeWarnings() throws {
        let example = try String(contentsOfFile: CLI.root + "/config/vpcdns.yaml", encoding: .utf8)
        let typo = example.replacingOccurrences(of: "    enable_dns_hostnames: true      # both true", with: "    enable_dns_hostname: true      # both true")
        #expect(typo != example)
        // Beside the example, so its relative zone file paths still resolve.
        let path = CLI.root + "/config/typo-\(UUID().uuidString).yaml"
        try typo.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CLI.run(["check", "--config", path])
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.first?.hasSuffix("vpcs[0].enable_dns_hostname: unknown key 'enable_dns_hostname'; did you mean 'enable_dns_hostnames'?") == true,
                "\(r.stderr)")
        #expect(lines.count > 1 && lines.dropFirst().allSatisfy { $0.contains(": warning: ") }, "the knock-on warnings follow: \(r.stderr)")
    }

    @Test func usageErrorExits64() throws {
        let r = try CLI.run(["check", "--no-such-flag"])
        #expect(r.status == 64)
    }

    @Test func jsonOutput() throws {
        let good = try CLI.run(["check", "--json"])
        #expect(good.status == 0)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(good.stdout.utf8)) as? [String: Any])
        #expect(obj["ok"] as? Bool == true)
        #expect(obj["config"] as? String == "config/vpcdns.yaml")
        #expect((obj["vpcs"] as? [Any])?.count == 3)
        let warnings = try #require(obj["warnings"] as? [[String: Any]])
        #expect(warnings.contains { ($0["message"] as? String)?.contains("enable_dns_hostnames: false") == true })
        #expect((obj["errors"] as? [Any])?.isEmpty == true)

        let path = try CLI.tempConfig("cache_size: lots\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bad = try CLI.run(["check", "--json", "--config", path])
        #expect(bad.status == 1)
        let b = try #require(try JSONSerialization.jsonObject(with: Data(bad.stdout.utf8)) as? [String: Any])
        #expect(b["ok"] as? Bool == false)
        let errors = try #require(b["errors"] as? [[String: Any]])
        #expect(errors.count == 1)
        #expect(errors.first?["line"] as? Int == 1)
        #expect(errors.first?["key"] as? String == "cache_size")
        #expect(errors.first?["file"] as? String == path)
    }

    @Test func missingConfigFile() throws {
        let r = try CLI.run(["check", "--config", "/nonexistent/vpcdns.yaml"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("/nonexistent/vpcdns.yaml:1: -: no such file"))
    }
}
