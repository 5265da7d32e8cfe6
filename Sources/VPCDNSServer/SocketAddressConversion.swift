import NIOCore
import VPCDNSCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SocketEndpoint {
    /// From a NIO address without going through text (TCP connections, upstream replies).
    /// Nil for Unix domain sockets.
    init?(_ address: SocketAddress) {
        switch address {
        case .v4(let a):
            let sa = a.address
            self.init(ip: .v4(UInt32(bigEndian: sa.sin_addr.s_addr)), port: UInt16(bigEndian: sa.sin_port))
        case .v6(let a):
            var sa = a.address
            var v: UInt128 = 0
            withUnsafeBytes(of: &sa.sin6_addr) { for b in $0 { v = v << 8 | UInt128(b) } }
            self.init(ip: .v6(v), port: UInt16(bigEndian: sa.sin6_port))
        case .unixDomainSocket:
            return nil
        }
    }

    /// The NIO form, built from the numbers (no DNS, no text parsing).
    var socketAddress: SocketAddress {
        switch ip {
        case .v4(let v):
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            sa.sin_addr.s_addr = v.bigEndian
            return SocketAddress(sa, host: "")
        case .v6(let v):
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin6_addr) { raw in
                for i in 0..<16 { raw[i] = UInt8(truncatingIfNeeded: v >> (120 - 8 * i)) }
            }
            return SocketAddress(sa, host: "")
        }
    }
}
