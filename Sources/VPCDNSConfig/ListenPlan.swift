import VPCDNSCore

/// O7: which sockets `serve` opens for the addresses it serves, and which socket serves each
/// address. Pure: built from the configuration alone, so `check`, `serve` and reload agree.
///
/// Every address served (`listen`, each VPC's `resolver_addresses` and inbound-endpoint
/// addresses) is a listener for V1 and for O6's loop guard. An address covered by a wildcard
/// socket of the same family and port opens no socket of its own: the wildcard receives its
/// queries, and the address a query was sent to (read per datagram, or the accepted TCP
/// connection's local address) is still its listener, so V1 classifies it the same way.
///
/// Why "same family": the listeners set `IPV6_V6ONLY`, so `[::]:53` takes IPv6 only and
/// `10.0.0.2:53` needs `0.0.0.0:53` (or its own socket). Why not port 0: each port-0 socket
/// gets a port of its own from the kernel, so a wildcard on port 0 covers nothing.
public struct ListenPlan: Sendable, Hashable {
    /// One address served, where it comes from, and the socket that receives its queries.
    public struct Entry: Sendable, Hashable {
        public var address: SocketEndpoint
        /// Its configuration path: `listen[0]`, `--listen[0]`, `vpcs[1].resolver_addresses[0]`,
        /// `vpcs[0].inbound_endpoints[0].addresses[1]`.
        public var key: String
        /// The socket (UDP and TCP) that receives queries sent to `address`: `address`
        /// itself, or the wildcard that covers it.
        public var socket: SocketEndpoint
        public var opensSocket: Bool { socket == address }

        public init(address: SocketEndpoint, key: String, socket: SocketEndpoint) {
            self.address = address
            self.key = key
            self.socket = socket
        }
    }

    /// Every address served, without duplicates (the first entry of an address wins), in
    /// configuration order.
    public let entries: [Entry]

    /// Builds the plan for addresses given with their configuration paths.
    public init(addresses: [(SocketEndpoint, String)]) {
        var seen: [(SocketEndpoint, String)] = []
        for (e, key) in addresses where !seen.contains(where: { $0.0 == e }) { seen.append((e, key)) }
        let wildcards = seen.map(\.0).filter(Self.isWildcard)
        entries = seen.map { e, key in
            let cover = Self.isWildcard(e) ? nil : wildcards.first { Self.covers($0, e) }
            return Entry(address: e, key: key, socket: cover ?? e)
        }
    }

    /// The plan of a loaded model: `override` (`--listen`) replaces `listen`.
    public init(model: Model, override: [SocketEndpoint]? = nil) {
        self.init(addresses: Self.addresses(of: model, override: override))
    }

    /// The addresses a model serves, each with its configuration path, in configuration order.
    public static func addresses(of model: Model, override: [SocketEndpoint]?) -> [(SocketEndpoint, String)] {
        var out: [(SocketEndpoint, String)] = []
        if let override {
            out += override.enumerated().map { ($1, "--listen[\($0)]") }
        } else {
            out += model.settings.listen.enumerated().map { ($1, "listen[\($0)]") }
        }
        for (v, vpc) in model.vpcs.enumerated() {
            out += vpc.resolverAddresses.enumerated().map { ($1, "vpcs[\(v)].resolver_addresses[\($0)]") }
            for (i, ib) in vpc.inboundEndpoints.enumerated() {
                out += ib.addresses.enumerated().map { ($1, "vpcs[\(v)].inbound_endpoints[\(i)].addresses[\($0)]") }
            }
        }
        return out
    }

    /// Every address served: the listeners of V1 and of O6's guard.
    public var addresses: [SocketEndpoint] { entries.map(\.address) }

    /// The sockets to open (each one UDP socket set and one TCP listening socket), in
    /// configuration order.
    public var sockets: [SocketEndpoint] { entries.filter(\.opensSocket).map(\.address) }

    /// The addresses a socket serves besides its own (those it covers).
    public func covered(by socket: SocketEndpoint) -> [Entry] {
        entries.filter { $0.socket == socket && !$0.opensSocket }
    }

    /// `0.0.0.0` or `::`.
    public static func isWildcard(_ e: SocketEndpoint) -> Bool {
        e.ip == .v4(0) || e.ip == .v6(0)
    }

    /// True when a socket bound to `wildcard` receives what is sent to `address`: same
    /// family (IPv6 sockets are `IPV6_V6ONLY`), same port, and that port is not 0.
    public static func covers(_ wildcard: SocketEndpoint, _ address: SocketEndpoint) -> Bool {
        guard isWildcard(wildcard), wildcard != address, wildcard.port != 0, wildcard.port == address.port else { return false }
        return wildcard.ip.isIPv4 == address.ip.isIPv4
    }

    /// True when TCP listening sockets on `a` and `b` cannot both be bound on Linux, even with
    /// `SO_REUSEADDR`: the same address and port, or one a wildcard over the other's family
    /// and port. (UDP sockets with `SO_REUSEADDR` never clash; IPv6 ones are `IPV6_V6ONLY`,
    /// so `[::]` and an IPv4 address do not clash either; port 0 draws a free port.)
    public static func tcpClash(_ a: SocketEndpoint, _ b: SocketEndpoint) -> Bool {
        guard a.port != 0, a.port == b.port else { return false }
        return a == b || covers(a, b) || covers(b, a)
    }

    /// `serving 10.0.0.2:53 (vpcs[1].resolver_addresses[0]) on the wildcard 0.0.0.0:53`, one
    /// per address that opens no socket of its own (`serve` prints them after its
    /// `listening on` lines).
    public var coveredLines: [String] {
        entries.filter { !$0.opensSocket }.map { "serving \($0.address) (\($0.key)) on the wildcard \($0.socket)" }
    }

    // MARK: - Rendering (check)

    /// `check`'s lines: each socket, and the addresses it also serves.
    public var summaryLines: [String] {
        var lines = ["listeners (udp and tcp each):"]
        for e in entries where e.opensSocket {
            lines.append("  \(e.address) (\(e.key))")
            for c in covered(by: e.address) {
                lines.append("    also serves \(c.address) (\(c.key)): covered by the wildcard, no socket of its own")
            }
        }
        return lines
    }

    /// `[{"socket": "0.0.0.0:53", "key": "listen[0]", "serves": [{"address", "key"}...]}...]`.
    public var json: JSONValue {
        .array(entries.filter(\.opensSocket).map { e in
            .object([
                ("socket", .string(e.address.description)),
                ("key", .string(e.key)),
                ("serves", .array(entries.filter { $0.socket == e.address }.map { s in
                    .object([("address", .string(s.address.description)), ("key", .string(s.key))])
                })),
            ])
        })
    }
}
