import CUDPDatapath
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a socket could not be opened; `reason` is the system's text ("Address already in use").
public struct DatagramSocketError: Error, Sendable, Hashable, CustomStringConvertible {
    public var operation: String
    public var code: Int32

    public var reason: String { String(cString: strerror(code)) }
    public var description: String { "\(operation): \(reason)" }
}

/// Socket options of a datapath socket.
public struct DatagramSocketOptions: Sendable, Hashable {
    /// `SO_RCVBUF` (the kernel caps it at `net.core.rmem_max`); 0 keeps the system default.
    public var receiveBufferBytes: Int = 0
    /// `SO_SNDBUF`; 0 keeps the system default.
    public var sendBufferBytes: Int = 0

    public init(receiveBufferBytes: Int = 0, sendBufferBytes: Int = 0) {
        self.receiveBufferBytes = receiveBufferBytes
        self.sendBufferBytes = sendBufferBytes
    }
}

/// One bound UDP socket (`SO_REUSEPORT`, non-blocking, IPv6 ones v6-only). Its datapath
/// thread reads and answers on it; any thread may send a late answer with `send`, which is
/// safe because a UDP `sendmsg` is one atomic operation on the socket.
///
/// On a wildcard address it has pktinfo on: each datagram's destination is read on receive,
/// and every reply names it as its source, so the answer leaves from the address asked.
public final class DatagramSocket: Sendable {
    /// The bound address, with the real port when 0 was asked for.
    public let bound: DatagramEndpoint
    /// pktinfo is on (the socket is bound to a wildcard address).
    public let readsDestination: Bool
    let descriptor: Int32
    /// Bit 0: closed. The rest: twice the number of `send` calls using the descriptor now,
    /// so that `close` never closes it under a sender (the number could be reused by another
    /// file meanwhile).
    private let state = Atomic<Int>(0)

    private init(bound: DatagramEndpoint, readsDestination: Bool, descriptor: Int32) {
        self.bound = bound
        self.readsDestination = readsDestination
        self.descriptor = descriptor
    }

    /// Opens and binds a socket. Several sockets may bind the same address and port
    /// (`SO_REUSEPORT`); the kernel spreads clients over them by their address and port.
    public static func bind(_ endpoint: DatagramEndpoint, options: DatagramSocketOptions = .init()) throws(DatagramSocketError) -> DatagramSocket {
        let fd = socket(endpoint.family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DatagramSocketError(operation: "socket", code: errno) }
        func fail(_ operation: String) -> DatagramSocketError {
            let e = DatagramSocketError(operation: operation, code: errno)
            Glibc.close(fd)
            return e
        }
        func set(_ level: Int32, _ name: Int32, _ value: Int) -> Bool {
            var v = Int32(clamping: value)
            return setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
        }
        guard set(SOL_SOCKET, SO_REUSEADDR, 1), set(SOL_SOCKET, SO_REUSEPORT, 1) else { throw fail("setsockopt SO_REUSEPORT") }
        if options.receiveBufferBytes > 0, !set(SOL_SOCKET, SO_RCVBUF, options.receiveBufferBytes) { throw fail("setsockopt SO_RCVBUF") }
        if options.sendBufferBytes > 0, !set(SOL_SOCKET, SO_SNDBUF, options.sendBufferBytes) { throw fail("setsockopt SO_SNDBUF") }
        // `[::]:53` next to `0.0.0.0:53`, and IPv4 clients never seen as ::ffff:a.b.c.d.
        if endpoint.isIPv6, !set(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) { throw fail("setsockopt IPV6_V6ONLY") }
        let wildcard = endpoint.isWildcard
        if wildcard, cudp_enable_pktinfo(fd, endpoint.family) != 0 { throw fail("setsockopt IP_PKTINFO") }
        var storage = sockaddr_storage()
        let length = withUnsafeMutableBytes(of: &storage) { endpoint.write(to: $0.baseAddress!) }
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) } }
        guard rc == 0 else { throw fail("bind") }
        var local = sockaddr_storage()
        var localLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &localLength) } }
        guard named == 0, let bound = withUnsafeBytes(of: &local, { DatagramEndpoint(sockaddr: $0.baseAddress!) }) else {
            throw fail("getsockname")
        }
        return DatagramSocket(bound: bound, readsDestination: wildcard, descriptor: fd)
    }

    /// Sends one datagram to `client`, from `local` when the socket reads destinations (a
    /// wildcard socket; `local` is then the address the query was sent to). Returns 0, or
    /// the errno of a failed send; after `close` it sends nothing and returns `EBADF`.
    /// Allocates nothing (the address and control message are built on the stack).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to client: DatagramEndpoint, from local: DatagramEndpoint) -> Int32 {
        let before = state.add(2, ordering: .acquiring).oldValue
        defer { state.subtract(2, ordering: .releasing) }
        guard before & 1 == 0 else { return EBADF }
        let controlSpace = cudp_pktinfo_space()
        let nameSpace = MemoryLayout<sockaddr_storage>.size
        return withUnsafeTemporaryAllocation(byteCount: nameSpace + controlSpace, alignment: 16) { scratch -> Int32 in
            let name = scratch.baseAddress!
            let control = name + nameSpace
            var message = msghdr()
            message.msg_name = name
            message.msg_namelen = client.write(to: name)
            var iov = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
            return withUnsafeMutablePointer(to: &iov) { iovPointer -> Int32 in
                message.msg_iov = iovPointer
                message.msg_iovlen = 1
                if readsDestination {
                    message.msg_control = control
                    message.msg_controllen = local.writeSourceControl(to: control)
                }
                while true {
                    if sendmsg(descriptor, &message, 0) >= 0 { return 0 }
                    if errno != EINTR { return errno }
                }
            }
        }
    }

    /// True until `close`.
    public var isOpen: Bool { state.load(ordering: .relaxed) & 1 == 0 }

    /// Closes the socket once no `send` is using it. Later sends do nothing. Idempotent.
    public func close() {
        let before = state.bitwiseOr(1, ordering: .acquiringAndReleasing).oldValue
        guard before & 1 == 0 else { return }
        // Senders finish within one syscall; wait for them before the number can be reused.
        while state.load(ordering: .acquiring) != 1 { sched_yield() }
        Glibc.close(descriptor)
    }

    deinit { close() }
}
