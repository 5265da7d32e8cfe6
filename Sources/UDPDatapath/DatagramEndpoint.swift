import CUDPDatapath

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP address and port as the datapath sees them: plain numbers, read from and written to
/// `sockaddr` without text or allocation.
public struct DatagramEndpoint: Sendable, Hashable, CustomStringConvertible {
    public enum Address: Sendable, Hashable {
        /// Host byte order.
        case v4(UInt32)
        /// Host byte order, first address byte in the top bits.
        case v6(UInt128)
    }

    public var address: Address
    public var port: UInt16
    /// IPv6 only: a client's `sin6_scope_id`, or for a local address the interface the
    /// datagram arrived on (so a reply to a link-local client leaves through it). 0 otherwise.
    public var scopeID: UInt32

    public init(address: Address, port: UInt16, scopeID: UInt32 = 0) {
        self.address = address
        self.port = port
        self.scopeID = scopeID
    }

    public var isIPv6: Bool {
        if case .v6 = address { return true }
        return false
    }

    /// `0.0.0.0` or `::`: the socket receives for every local address, and each datagram's
    /// destination has to be read from its pktinfo.
    public var isWildcard: Bool { address == .v4(0) || address == .v6(0) }

    var family: Int32 { isIPv6 ? AF_INET6 : AF_INET }

    /// Reads a `sockaddr_in` or `sockaddr_in6`; nil for any other family.
    public init?(sockaddr raw: UnsafeRawPointer) {
        let family = raw.load(fromByteOffset: 0, as: sockaddr.self).sa_family
        switch Int32(family) {
        case AF_INET:
            let sa = raw.load(as: sockaddr_in.self)
            self.init(address: .v4(UInt32(bigEndian: sa.sin_addr.s_addr)), port: UInt16(bigEndian: sa.sin_port))
        case AF_INET6:
            var sa = raw.load(as: sockaddr_in6.self)
            let v = withUnsafeBytes(of: &sa.sin6_addr) { Self.v6(from: $0) }
            self.init(address: .v6(v), port: UInt16(bigEndian: sa.sin6_port), scopeID: sa.sin6_scope_id)
        default:
            return nil
        }
    }

    /// The 16 bytes of an IPv6 address in network order as one number.
    static func v6(from bytes: UnsafeRawBufferPointer) -> UInt128 {
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<8 { hi = hi << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { lo = lo << 8 | UInt64(bytes[i]) }
        return UInt128(hi) << 64 | UInt128(lo)
    }

    /// Writes the address as a `sockaddr_in`/`sockaddr_in6` into `storage` (room for a
    /// `sockaddr_storage`) and returns its length.
    @discardableResult
    public func write(to storage: UnsafeMutableRawPointer) -> socklen_t {
        switch address {
        case .v4(let v):
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            sa.sin_addr.s_addr = v.bigEndian
            storage.storeBytes(of: sa, as: sockaddr_in.self)
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6(let v):
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            sa.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &sa.sin6_addr) { Self.write(v, to: $0) }
            storage.storeBytes(of: sa, as: sockaddr_in6.self)
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    /// The address bytes in network order (4 or 16 of `bytes`).
    func writeAddressBytes(to bytes: UnsafeMutableRawBufferPointer) {
        switch address {
        case .v4(let v): bytes.storeBytes(of: v.bigEndian, as: UInt32.self)
        case .v6(let v): Self.write(v, to: bytes)
        }
    }

    /// Writes the control message that makes a send leave from this (local) address
    /// (`IP_PKTINFO`'s `ipi_spec_dst`, or `IPV6_PKTINFO` with the interface in `scopeID`) into
    /// `control` (room for `cudp_pktinfo_space()`) and returns its length.
    func writeSourceControl(to control: UnsafeMutableRawPointer) -> Int {
        var bytes = (UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &bytes) { raw in
            writeAddressBytes(to: raw)
            return cudp_write_source(control, family, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), scopeID)
        }
    }

    private static func write(_ v: UInt128, to bytes: UnsafeMutableRawBufferPointer) {
        for i in 0..<16 { bytes[i] = UInt8(truncatingIfNeeded: v >> (120 - 8 * i)) }
    }

    /// `127.0.0.1:53`, `[::1]:53`.
    public var description: String {
        var text = [CChar](repeating: 0, count: 64)
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes.withUnsafeMutableBytes { writeAddressBytes(to: $0) }
        _ = inet_ntop(family, bytes, &text, socklen_t(text.count))
        let ip = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return isIPv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
