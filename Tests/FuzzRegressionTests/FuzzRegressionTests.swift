import Foundation
import FuzzHarness
import VPCDNSConfig
import Testing

/// Every input the fuzzers ever broke something with (`Tests/Fuzz/regressions/`), and the
/// seed corpora, replayed through the same harness code in a normal `swift test`.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz").path

    static func files(_ folder: String) -> [String] {
        let dir = root + "/" + folder
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir + "/" + $0 }
    }

    static func replay(_ folder: String, _ harness: (UnsafeRawBufferPointer) -> [String]) -> Int {
        let files = files(folder)
        for f in files {
            let data = FileManager.default.contents(atPath: f) ?? Data()
            let problems = data.withUnsafeBytes { harness($0) }
            #expect(problems.isEmpty, "\(f): \(problems.joined(separator: "; "))")
        }
        return files.count
    }

    @Test("Packet regressions and seeds keep every reply invariant")
    func packets() {
        let n = Self.replay("regressions/packet", PacketHarness.run) + Self.replay("corpus/packet", PacketHarness.run)
        #expect(n >= 5)
    }

    @Test("The example configuration loads where the config harness puts its inputs")
    func exampleLoads() throws {
        let yaml = try String(contentsOfFile: FuzzPaths.repoRoot + "/config/vpcdns.yaml", encoding: .utf8)
        let result = ConfigLoader.load(yaml: yaml, path: ConfigHarness.configPath)
        if case .failure(let e) = result { Issue.record("example config rejected: \(e)") }
    }

    @Test("Config and zone-file regressions and seeds fail cleanly or load")
    func configs() {
        let n = Self.replay("regressions/config", ConfigHarness.run) + Self.replay("corpus/config", ConfigHarness.run)
        #expect(n >= 3)
    }
}
