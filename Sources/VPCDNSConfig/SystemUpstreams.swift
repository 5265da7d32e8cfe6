import Foundation
import VPCDNSCore

/// `upstreams: [system]` expanded (config.md, O6): the nameservers of `/etc/resolv.conf`, or,
/// when that names only systemd-resolved's stub (`127.0.0.53`), those of
/// `/run/systemd/resolve/resolv.conf`, where resolved writes its real upstreams.
///
/// Reading is passed in (`read`), so the choice is tested with tables of file contents.
public struct SystemUpstreams: Sendable, Equatable {
    /// The file the addresses came from.
    public var file: String
    public var nameservers: [SocketEndpoint]
    /// How the file was chosen, for `check`, `explain` and the startup lines.
    public var notes: [String]
    /// Set when `/etc/resolv.conf` itself cannot be read: `system` then has no address.
    public var error: String?

    public init(file: String, nameservers: [SocketEndpoint], notes: [String] = [], error: String? = nil) {
        self.file = file
        self.nameservers = nameservers
        self.notes = notes
        self.error = error
    }

    /// `read(path)` returns the file's text, or throws with why it cannot.
    public static func expand(resolvConf: String = ResolvConf.path, systemdResolved: String = ResolvConf.systemdResolvedPath,
                              read: (String) throws -> String = SystemUpstreams.readFile) -> SystemUpstreams {
        let text: String
        do { text = try read(resolvConf) } catch {
            return SystemUpstreams(file: resolvConf, nameservers: [], error: "cannot read \(resolvConf): \(error)")
        }
        let servers = ResolvConf.nameservers(in: text)
        if servers.isEmpty {
            return SystemUpstreams(file: resolvConf, nameservers: [], notes: ["\(resolvConf) names no nameserver"])
        }
        guard ResolvConf.isSystemdStubOnly(servers) else { return SystemUpstreams(file: resolvConf, nameservers: servers) }
        let stub = servers.map { $0.ip.description }.joined(separator: ", ")
        let real: [SocketEndpoint]
        do { real = ResolvConf.nameservers(in: try read(systemdResolved)) } catch {
            return SystemUpstreams(file: resolvConf, nameservers: servers, notes: [
                "\(resolvConf) names only the systemd-resolved stub \(stub), and \(systemdResolved) cannot be read (\(error)): the stub is used",
            ])
        }
        if real.isEmpty {
            return SystemUpstreams(file: resolvConf, nameservers: servers, notes: [
                "\(resolvConf) names only the systemd-resolved stub \(stub), and \(systemdResolved) names no nameserver: the stub is used",
            ])
        }
        return SystemUpstreams(file: systemdResolved, nameservers: real, notes: [
            "\(resolvConf) names only the systemd-resolved stub \(stub): the real upstreams come from \(systemdResolved)",
        ])
    }

    public struct ReadError: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// The file's text; the error says why not (`No such file or directory`).
    public static func readFile(_ path: String) throws -> String {
        guard let f = fopen(path, "r") else { throw ReadError(reason: String(cString: strerror(errno))) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count { break }
        }
        if ferror(f) != 0 { throw ReadError(reason: "read error") }
        return String(decoding: bytes, as: UTF8.self)
    }
}
