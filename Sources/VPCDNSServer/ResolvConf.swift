import VPCDNSCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `system` upstream (config.md `upstreams`): the nameservers of a resolv.conf file.
///
/// Only `nameserver` lines matter; each names an IPv4 or IPv6 address and port 53 is
/// implied. Like glibc, only the first three are used (`MAXNS`). Addresses with a zone index
/// (`fe80::1%eth0`) are skipped: a `SocketEndpoint` has no scope. Comments start with `#`
/// or `;`. No network access happens here.
public enum ResolvConf {
    /// glibc's `MAXNS`.
    public static let maximumNameservers = 3

    /// The nameservers listed in resolv.conf text, in order, without duplicates.
    public static func nameservers(in text: String) -> [SocketEndpoint] {
        var result: [SocketEndpoint] = []
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.prefix { $0 != "#" && $0 != ";" }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { continue }
            guard let ip = IPAddress(String(words[1])) else { continue }
            let endpoint = SocketEndpoint(ip: ip, port: 53)
            if !result.contains(endpoint) { result.append(endpoint) }
            if result.count == maximumNameservers { break }
        }
        return result
    }

    /// Reads a resolv.conf file (default `/etc/resolv.conf`).
    public static func nameservers(atPath path: String = "/etc/resolv.conf") throws -> [SocketEndpoint] {
        nameservers(in: try readTextFile(path))
    }

    public struct ReadError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var reason: String
        public var description: String { "cannot read \(path): \(reason)" }
    }

    private static func readTextFile(_ path: String) throws -> String {
        guard let f = fopen(path, "r") else {
            throw ReadError(path: path, reason: String(cString: strerror(errno)))
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count { break }
        }
        if ferror(f) != 0 { throw ReadError(path: path, reason: "read error") }
        return String(decoding: bytes, as: UTF8.self)
    }
}
