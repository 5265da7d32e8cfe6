#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as a number, so that prefix matching is integer arithmetic.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible, Comparable {
    case v4(UInt32)
    case v6(UInt128)

    /// Parses `10.0.1.10` or `2600:1f14::10` (no brackets, no zone index).
    public init?(_ text: String) {
        if text.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
            var v: UInt128 = 0
            withUnsafeBytes(of: &a) { for b in $0 { v = v << 8 | UInt128(b) } }
            self = .v6(v)
        } else {
            var a = in_addr()
            guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
            self = .v4(UInt32(bigEndian: a.s_addr))
        }
    }

    /// From network-order bytes (4 or 16 of them).
    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4: self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16: self = .v6(bytes.reduce(0) { $0 << 8 | UInt128($1) })
        default: return nil
        }
    }

    public var isIPv4: Bool { if case .v4 = self { true } else { false } }

    /// Network-order bytes: the rdata of an A or AAAA record.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let v): return (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) }
        case .v6(let v): return (0..<16).map { UInt8(truncatingIfNeeded: v >> (120 - 8 * $0)) }
        }
    }

    /// Dotted quad, or RFC 5952 text for IPv6.
    public var description: String {
        var buf = [CChar](repeating: 0, count: 64)
        var b = bytes
        let family = isIPv4 ? AF_INET : AF_INET6
        let ok = b.withUnsafeMutableBytes { raw in
            buf.withUnsafeMutableBufferPointer { inet_ntop(family, raw.baseAddress, $0.baseAddress, 64) != nil }
        }
        guard ok else { return "?" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        switch (a, b) {
        case (.v4(let x), .v4(let y)): x < y
        case (.v6(let x), .v6(let y)): x < y
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }
}

/// A CIDR block such as `10.0.0.0/16` or `2600:1f14::/56`.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress   // with host bits cleared
    public let length: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let addr = IPAddress(String(parts[0])) else { return nil }
        let max = addr.isIPv4 ? 32 : 128
        var len = max
        if parts.count == 2 {
            guard let l = Int(parts[1]), l >= 0, l <= max, parts[1].allSatisfy(\.isNumber) else { return nil }
            len = l
        }
        self.init(address: addr, length: len)
    }

    public init(address: IPAddress, length: Int) {
        self.length = length
        switch address {
        case .v4(let v):
            let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - length)
            self.address = .v4(v & mask)
        case .v6(let v):
            let mask: UInt128 = length == 0 ? 0 : ~UInt128(0) << (128 - length)
            self.address = .v6(v & mask)
        }
    }

    /// True when the text had host bits set (`10.0.0.1/16`): worth a configuration error.
    public static func hasHostBits(_ text: String) -> Bool {
        guard let p = IPPrefix(text), let a = IPAddress(String(text.split(separator: "/")[0])) else { return false }
        return p.address != a
    }

    public func contains(_ ip: IPAddress) -> Bool {
        IPPrefix(address: ip, length: length).address == address
    }

    public var description: String { "\(address)/\(length)" }
}

/// An `IP:PORT` listener or upstream address (`127.0.0.1:1053`, `[::1]:1053`).
public struct SocketEndpoint: Hashable, Sendable, CustomStringConvertible {
    public let ip: IPAddress
    public let port: UInt16

    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses `IP:PORT` with IPv6 in brackets. `defaultPort` applies when the port is absent.
    public init?(_ text: String, defaultPort: UInt16? = nil) {
        var host = Substring(text)
        var portText: Substring? = nil
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portText = rest.dropFirst()
            }
        } else if let colon = host.lastIndex(of: ":") {
            if host[..<colon].contains(":") { return nil } // bare IPv6 needs brackets
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard let ip = IPAddress(String(host)) else { return nil }
        let port: UInt16
        if let p = portText {
            guard let v = UInt16(p), p.allSatisfy(\.isNumber) else { return nil }
            port = v
        } else if let d = defaultPort {
            port = d
        } else {
            return nil
        }
        self.init(ip: ip, port: port)
    }

    public var description: String {
        ip.isIPv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)"
    }
}
