import DNSWire
@testable import LDNSKit

/// A name from text; test inputs are always valid.
func name(_ s: String) -> DNSName { try! DNSName(s) }

let example = name("example.com")

/// Parses with origin example.com and path `test.zone`.
func parse(_ text: String, defaultTTL: UInt32 = 3600) throws(ZoneFileError) -> [ZoneFileRecord] {
    try ZoneFile.parse(text: text, origin: example, path: "test.zone", defaultTTL: defaultTTL)
}

/// The error a text must produce (nil when it parses).
func parseError(_ text: String) -> ZoneFileError? {
    do {
        _ = try parse(text)
        return nil
    } catch {
        return error
    }
}
