import DNSWire
import Foundation
import Testing
@testable import LDNSKit

@Suite("Zone files on disk")
struct ZoneFileLoadTests {
    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ldnskit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func loadsAFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("example.com.zone")
        try fullZone.write(to: file, atomically: true, encoding: .utf8)
        let records = try ZoneFile.load(path: file.path, origin: example)
        #expect(records == (try parse(fullZone)))
        #expect(records.count == 13)
    }

    @Test func brokenFileNamesItsOwnPath() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("bad.zone")
        try "a A 10.0.0.1\nb A 10.0.0.256\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: ZoneFileError(path: file.path, line: 2,
                                      message: "Syntax error, could not parse the RR's rdata in \"b A 10.0.0.256\"")) {
            try ZoneFile.load(path: file.path, origin: example)
        }
    }

    @Test func missingFile() {
        #expect(throws: ZoneFileError(path: "/nonexistent/x.zone", line: 0,
                                      message: "cannot read zone file: No such file or directory")) {
            try ZoneFile.load(path: "/nonexistent/x.zone", origin: example)
        }
    }

    @Test func directoryIsNotAZoneFile() {
        let dir = FileManager.default.temporaryDirectory.path
        #expect(throws: ZoneFileError(path: dir, line: 0, message: "cannot read zone file: Is a directory")) {
            try ZoneFile.load(path: dir, origin: example)
        }
    }
}
