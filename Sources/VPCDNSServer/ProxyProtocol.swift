import DNSWire
import NIOCore
import Synchronization
import VPCDNSCore

/// Why a datagram or connection was dropped by P9: a `ProxyHeader.Failure` from a trusted
/// proxy, or a header from a source that is not one. The raw values are the `reason` label
/// of `vpcdns_proxy_rejected_total`.
public enum ProxyRejectReason: String, Sendable, Hashable, CaseIterable {
    case noHeader = "no-header"
    case truncated
    case version
    case command
    case family
    case untrusted

    /// Every `ProxyHeader.Failure` has a case here with the same raw value.
    init(_ failure: ProxyHeader.Failure) {
        self.init(rawValue: failure.rawValue)!
    }

    /// The case's position in `allCases` (the order of the counters and of the metric's
    /// lines), without a search: counted per rejected packet, and a flood of them is what P9
    /// rejects.
    var index: Int {
        switch self {
        case .noHeader: 0
        case .truncated: 1
        case .version: 2
        case .command: 3
        case .family: 4
        case .untrusted: 5
        }
    }
}

/// Where a query really came from once P9 has looked at it.
enum ProxyOutcome {
    /// No proxy involved: the socket's addresses are the client and the listener.
    case direct
    /// Relayed by the trusted proxy `proxy`: `client` and `listener` come from its header
    /// (for LOCAL, the proxy's own address and the real listener). `headerLength` bytes
    /// precede the DNS message (UDP) or the stream (TCP).
    case proxied(client: SocketEndpoint, listener: SocketEndpoint, proxy: SocketEndpoint, headerLength: Int)
    case rejected(ProxyRejectReason)
}

/// `trusted_proxies` (P9), shared by every listener and replaced on reload. With the list
/// empty (the default) a query costs one relaxed atomic load.
public final class TrustedProxies: Sendable {
    private let active = Atomic<Bool>(false)
    private let prefixes = Mutex<[IPPrefix]>([])
    let stats: ListenerStats

    init(_ list: [IPPrefix], stats: ListenerStats) {
        self.stats = stats
        apply(list)
    }

    func apply(_ list: [IPPrefix]) {
        prefixes.withLock { $0 = list }
        active.store(!list.isEmpty, ordering: .relaxed)
    }

    var isActive: Bool { active.load(ordering: .relaxed) }

    func trusts(_ ip: IPAddress) -> Bool {
        prefixes.withLock { list in list.contains { $0.contains(ip) } }
    }

    func reject(_ reason: ProxyRejectReason) -> ProxyOutcome {
        stats.countProxyRejected(reason)
        return .rejected(reason)
    }

    /// P9 for `bytes` sent by `peer` to `listener`: the whole UDP datagram, or the first bytes
    /// of a TCP connection (which must hold the whole header when `peer` is trusted). Counts
    /// a rejection.
    func examine(_ bytes: UnsafeRawBufferPointer, from peer: SocketEndpoint, listener: SocketEndpoint) -> ProxyOutcome {
        guard trusts(peer.ip) else {
            // A header from anyone else is a client trying to choose its own VPC.
            return ProxyHeader.hasSignature(bytes) ? reject(.untrusted) : .direct
        }
        switch ProxyHeader.parse(bytes) {
        case .invalid(let failure):
            return reject(ProxyRejectReason(failure))
        case .header(let h):
            if h.command == .proxy, let s = h.source, let d = h.destination {
                return .proxied(client: SocketEndpoint(s.address, s.port), listener: SocketEndpoint(d.address, d.port),
                                proxy: peer, headerLength: h.length)
            }
            // LOCAL (or no addresses): the proxy speaks for itself.
            return .proxied(client: peer, listener: listener, proxy: peer, headerLength: h.length)
        }
    }
}

extension SocketEndpoint {
    init(_ address: ProxyHeader.Address, _ port: UInt16) {
        switch address {
        case .v4(let v): self.init(ip: .v4(v), port: port)
        case .v6(let v): self.init(ip: .v6(v), port: port)
        }
    }
}

/// A TCP connection's P9 outcome, sent down the pipeline to `TCPQueryHandler` before the
/// first query.
struct ProxiedConnection {
    var client: SocketEndpoint
    var listener: SocketEndpoint
    var proxy: SocketEndpoint
}

/// First in the pipeline of a TCP connection while `trusted_proxies` is set: from a trusted
/// proxy, reads the PROXY v2 header the connection starts with, tells `TCPQueryHandler` who
/// the client is and passes the rest of the stream on; from anyone else, passes the stream
/// on unless it starts with a header. Either way it then leaves the pipeline. A connection
/// it rejects is closed without an answer.
final class ProxyHeaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let proxies: TrustedProxies
    private let peer: SocketEndpoint
    private let listener: SocketEndpoint
    private let trusted: Bool
    private var buffered: ByteBuffer?
    private var decided = false

    init(proxies: TrustedProxies, peer: SocketEndpoint, listener: SocketEndpoint) {
        self.proxies = proxies
        self.peer = peer
        self.listener = listener
        self.trusted = proxies.trusts(peer.ip)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if decided {
            context.fireChannelRead(data)
            return
        }
        if buffered == nil { buffered = incoming } else { buffered!.writeBuffer(&incoming) }
        let bytes = buffered!
        let ready: Bool = bytes.withUnsafeReadableBytes { raw in
            if !ProxyHeader.hasSignature(raw, allowPartial: true) { return true }
            if !trusted { return raw.count >= ProxyHeader.signature.count }
            guard let needed = ProxyHeader.neededLength(raw) else { return false }
            return raw.count >= needed
        }
        guard ready else { return }
        decided = true
        let outcome = bytes.withUnsafeReadableBytes { proxies.examine($0, from: peer, listener: listener) }
        var rest = bytes
        buffered = nil
        switch outcome {
        case .rejected:
            context.close(promise: nil)
            return
        case .direct:
            break
        case .proxied(let client, let to, let proxy, let length):
            rest.moveReaderIndex(forwardBy: length)
            context.fireUserInboundEventTriggered(ProxiedConnection(client: client, listener: to, proxy: proxy))
        }
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
