import Foundation
import Testing
import VPCDNSConfig
import VPCDNSCore

/// The repository root, found from this file's path (Tests/VPCDNSConfigTests/Support.swift).
let repoRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// Loads inline YAML (as if from `path`) and returns the error lines, as `check` prints them.
func errorLines(_ yaml: String, path: String = "t.yaml") -> [String] {
    switch ConfigLoader.load(yaml: yaml, path: path) {
    case .success: return []
    case .failure(let e): return e.errors.map(\.description)
    }
}

func warningLines(_ yaml: String, path: String = "t.yaml") -> [String] {
    switch ConfigLoader.load(yaml: yaml, path: path) {
    case .success(let c): return c.warnings.map(\.description)
    case .failure(let e): return e.warnings.map(\.description)
    }
}

func loaded(_ yaml: String, path: String = "t.yaml", sourceLocation: SourceLocation = #_sourceLocation) throws -> LoadedConfig {
    switch ConfigLoader.load(yaml: yaml, path: path) {
    case .success(let c): return c
    case .failure(let e):
        Issue.record("unexpected errors:\n\(e)", sourceLocation: sourceLocation)
        throw e
    }
}

/// A temporary folder with files in it, removed when the test ends.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "vpcdns-config-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func write(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// One VPC, minimal: line 1 `vpcs:`, line 2 `- id:`, line 3 region, line 4 cidrs.
let oneVPC = """
vpcs:
  - id: vpc-0a1
    region: us-west-2
    cidrs: [10.0.0.0/16]
    enable_dns_hostnames: true

"""
