import Foundation
import Testing
@testable import VPCDNSConfig

#if canImport(Glibc)
import Glibc
#endif

/// Why a configuration file could not be read is said as it is: a server out of file
/// descriptors must not be told its file is not UTF-8 (a reload under a connection flood was).
@Suite struct ConfigReadErrorTests {
    func message(_ path: String) -> String? {
        if case .failure(let e) = ConfigLoader.load(path: path) { return e.errors.first?.description }
        return nil
    }

    @Test func eachReasonIsNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpcdns-read-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let latin1 = dir.appendingPathComponent("latin1.yaml")
        try Data([0x61, 0x3A, 0x20, 0xE9, 0x0A]).write(to: latin1)
        #expect(message(latin1.path) == "\(latin1.path):1: -: cannot read the file: not UTF-8 text")
        #expect(message(dir.path) == "\(dir.path):1: -: cannot read the file: Is a directory")
        #expect(message(dir.appendingPathComponent("missing.yaml").path)?.hasSuffix(":1: -: no such file") == true)
        #expect(ConfigLoader.why(EMFILE) == "cannot open the file: too many open files (EMFILE: this process is out of file descriptors)")
        #expect(ConfigLoader.why(ENFILE).contains("too many open files"))
        #expect(ConfigLoader.why(EACCES) == "cannot read the file: permission denied")
    }
}
