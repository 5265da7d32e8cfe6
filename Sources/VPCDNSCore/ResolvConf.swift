/// The `system` upstream (config.md `upstreams`): the nameservers of a resolv.conf file.
///
/// Only `nameserver` lines matter; each names an IPv4 or IPv6 address and port 53 is
/// implied. Like glibc, only the first three are used (`MAXNS`). Addresses with a zone index
/// (`fe80::1%eth0`) are skipped: a `SocketEndpoint` has no scope. Comments start with `#`
/// or `;`. Pure: the files are read by `SystemUpstreams` (VPCDNSConfig).
public enum ResolvConf {
    /// glibc's `MAXNS`.
    public static let maximumNameservers = 3
    /// Where `system` is read.
    public static let path = "/etc/resolv.conf"
    /// What systemd-resolved writes with its real upstreams, when `path` names only its stub.
    public static let systemdResolvedPath = "/run/systemd/resolve/resolv.conf"
    /// systemd-resolved's stub listener (`127.0.0.53`) and its `127.0.0.54` proxy.
    public static let systemdStubs: [IPAddress] = [IPAddress("127.0.0.53")!, IPAddress("127.0.0.54")!]

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

    /// True when the nameservers are only systemd-resolved's stub: the real upstreams are
    /// then in `systemdResolvedPath` (O6). Sending to the stub works too, but it hides the
    /// real addresses from `check` and the metrics, and loops when resolved forwards to us.
    public static func isSystemdStubOnly(_ servers: [SocketEndpoint]) -> Bool {
        !servers.isEmpty && servers.allSatisfy { systemdStubs.contains($0.ip) && $0.port == 53 }
    }
}
