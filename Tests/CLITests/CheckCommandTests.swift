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

    @Test func upstreamsInUseAndLeftOut() throws {
        // The worked example: its upstreams and FORWARD rule targets, as in use (O6).
        let example = try CLI.run(["check"])
        #expect(example.stdout.contains("\nupstreams: 127.0.0.1:1054\nrule rslvr-rr-0123456789abcdef0 (corp.example.com) in vpc-0a11ce0000000001a forwards to: 127.0.0.1:5300\n"),
                "\(example.stdout)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(try CLI.run(["check", "--json"]).stdout.utf8)) as? [String: Any])
        let defaults = try #require((j["upstreams"] as? [String: Any])?["defaults"] as? [String: Any])
        #expect((defaults["targets"] as? [[String: Any]])?.map { $0["address"] as? String } == ["127.0.0.1:1054"])

        // vpcdns's own listeners as upstreams: left out with a warning, the rest used.
        let path = try CLI.tempConfig("""
            listen: ["127.0.0.1:1053", "0.0.0.0:5300"]
            upstreams: ["127.0.0.1:1053", "127.0.0.9:5300", "127.0.0.1:1054"]
            vpcs:
              - id: vpc-0a1
                region: us-west-2
                cidrs: [10.0.0.0/16]

            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try CLI.run(["check", "--config", path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("""
            upstreams: 127.0.0.1:1054
              left out: 127.0.0.1:1053: it is vpcdns's own listener 127.0.0.1:1053: forwarding there would loop
              left out: 127.0.0.9:5300: it is an address of this host and vpcdns listens on 0.0.0.0:5300: forwarding there would loop

            """), "\(r.stdout)")
        // The O6 warnings (the wildcard listener also draws its own warning: it is reachable
        // from other hosts).
        #expect(r.stderr.split(separator: "\n").filter { $0.contains(": upstreams[") } == [
            "\(path):2: upstreams[0]: warning: upstream 127.0.0.1:1053 left out: it is vpcdns's own listener 127.0.0.1:1053: forwarding there would loop (O6)",
            "\(path):2: upstreams[1]: warning: upstream 127.0.0.9:5300 left out: it is an address of this host and vpcdns listens on 0.0.0.0:5300: forwarding there would loop (O6)",
        ], "\(r.stderr)")
        #expect(r.stderr.contains("\(path):1: listen[1]: warning: listen address 0.0.0.0:5300 is not on loopback"), "\(r.stderr)")

        // Nothing usable left: exit 1, the error names the addresses and why.
        let none = try CLI.tempConfig("listen: [\"127.0.0.1:1053\"]\nupstreams: [\"127.0.0.1:1053\"]\n")
        defer { try? FileManager.default.removeItem(atPath: none) }
        let bad = try CLI.run(["check", "--config", none])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("\(none):2: upstreams: no usable upstream remains for the default upstreams (R9): 127.0.0.1:1053 left out: it is vpcdns's own listener 127.0.0.1:1053: forwarding there would loop (O6)"), "\(bad.stderr)")
        let badJSON = try #require(try JSONSerialization.jsonObject(with: Data(try CLI.run(["check", "--json", "--config", none]).stdout.utf8)) as? [String: Any])
        #expect(badJSON["ok"] as? Bool == false)
        #expect((badJSON["errors"] as? [[String: Any]])?.first?["key"] as? String == "upstreams")
    }

    @Test func missingConfigFile() throws {
        let r = try CLI.run(["check", "--config", "/nonexistent/vpcdns.yaml"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("/nonexistent/vpcdns.yaml:1: -: no such file"))
    }
}

extension CLI {
    /// What a demo script printed and how it ended; nil when it exited 77 (namespaces, tools
    /// or root missing), after printing its reason loudly.
    struct ScriptRun {
        var status: Int32
        var output: String
    }

    /// Runs demo script `name` (needing the vpcdns binary) as `runDemoScript` does and checks
    /// what every demo script promises: exit 0, its `summary` line and each of `oks` printed,
    /// no `FAIL:` line. Its output for further checks; a script that skips (exit 77) cancels
    /// the test, so it is reported skipped, never passed.
    static func checkDemoScript(_ name: String, limit: TimeInterval, suite: String, summary: String, oks: [String],
                                sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: CLI.binary) else { throw CLI.MissingBinary() }
        let run = try runDemoScript(name, limit: limit, suite: suite)
        let output = run.output
        #expect(run.status == 0, "scripts/\(name) failed:\n\(output)", sourceLocation: sourceLocation)
        #expect(output.contains(summary), sourceLocation: sourceLocation)
        for line in oks {
            #expect(output.contains(line), "missing: \(line)", sourceLocation: sourceLocation)
        }
        #expect(!output.contains("FAIL:"), sourceLocation: sourceLocation)
        return output
    }

    /// Runs `scripts/NAME` with the binary, as a user runs it, output to a temporary file,
    /// bounded by `limit` (a hung run is stopped: the script's trap tears down).
    static func runDemoScript(_ name: String, limit: TimeInterval, suite: String) throws -> ScriptRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [CLI.root + "/scripts/" + name, CLI.binary]
        p.currentDirectoryURL = URL(fileURLWithPath: CLI.root)
        let log = NSTemporaryDirectory() + "vpcdns-\(name)-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? handle.close(); try? FileManager.default.removeItem(atPath: log) }
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = Date().addingTimeInterval(limit)
        while p.isRunning && Date() < deadline { usleep(100_000) }
        if p.isRunning {
            p.terminate()
            p.waitUntilExit()
            Issue.record("scripts/\(name) did not finish within \(Int(limit)) s")
        }
        p.waitUntilExit()
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        if p.terminationStatus == 77 {
            let reason = output.split(separator: "\n").first { $0.hasPrefix("SKIP") } ?? "skipped"
            print("\n!!!!! \(suite) SKIPPED: \(reason) !!!!!\n")
            // Reported as skipped, not as passed.
            try Test.cancel("\(suite) skipped: \(reason)")
        }
        print(output)
        return ScriptRun(status: p.terminationStatus, output: output)
    }
}
