import VPCDNSCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// This host's addresses, from getifaddrs(3): what O6's guard compares upstream targets with
/// (an upstream on a local address, on the port of a wildcard listener, is vpcdns itself).
public enum LocalAddresses {
    /// Every IPv4 and IPv6 address of every interface (scoped link-local ones included, as
    /// plain addresses). Empty when getifaddrs fails; loopback counts as local regardless.
    public static func current() -> [IPAddress] {
        var head: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&head) == 0, let first = head else { return [] }
        defer { freeifaddrs(head) }
        var out: [IPAddress] = []
        var p: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = p {
            defer { p = entry.pointee.ifa_next }
            guard let sa = entry.pointee.ifa_addr else { continue }
            switch Int32(sa.pointee.sa_family) {
            case AF_INET:
                let a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                out.append(.v4(UInt32(bigEndian: a.s_addr)))
            case AF_INET6:
                let bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { ptr in
                    withUnsafeBytes(of: ptr.pointee.sin6_addr) { Array($0) }
                }
                if let ip = IPAddress(bytes: bytes) { out.append(ip) }
            default:
                break
            }
        }
        return out
    }
}
