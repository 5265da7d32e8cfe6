/// A PROXY protocol version 2 header (haproxy's proxy-protocol.txt §2.2), as a DNS load
/// balancer such as dnsdist (`useProxyProtocol=true`) puts in front of every UDP datagram
/// and at the start of every TCP connection it sends to a backend, naming the real client.
///
/// Parsed straight from the received bytes: no allocation, addresses as integers (the
/// server turns them into its own address type). TLVs after the addresses are skipped.
public struct ProxyHeader: Sendable, Hashable {
    public enum Command: UInt8, Sendable, Hashable {
        /// The proxy speaks for itself (dnsdist's health checks): no client addresses.
        case local = 0
        /// Relayed for a client: `source` and `destination` are set.
        case proxy = 1
    }

    /// An address of the header, host byte order.
    public enum Address: Sendable, Hashable {
        case v4(UInt32)
        case v6(UInt128)
    }

    public var command: Command
    /// The client (PROXY command); nil for LOCAL, or for PROXY with family UNSPEC.
    public var source: (address: Address, port: UInt16)? {
        guard let a = sourceAddress else { return nil }
        return (a, sourcePort)
    }
    /// The address and port the client sent its query to (the proxy's listener).
    public var destination: (address: Address, port: UInt16)? {
        guard let a = destinationAddress else { return nil }
        return (a, destinationPort)
    }
    public var sourceAddress: Address?
    public var sourcePort: UInt16
    public var destinationAddress: Address?
    public var destinationPort: UInt16
    /// Bytes the header takes, TLVs included: the DNS message (UDP) or the TCP stream
    /// starts right after.
    public var length: Int

    /// `\r\n\r\n\0\r\nQUIT\n`: what every v2 header starts with.
    public static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// Signature, version/command, family/protocol, 2-byte length.
    public static let fixedLength = 16

    /// Why bytes are not a usable header. The raw values are the metric's `reason` label.
    public enum Failure: String, Sendable, Hashable, CaseIterable {
        /// The bytes do not start with the v2 signature (a plain DNS message, or PROXY v1).
        case noHeader = "no-header"
        /// Fewer bytes than the header says it has (or than its addresses need).
        case truncated
        /// Version nibble other than 2.
        case version
        /// Command other than LOCAL or PROXY.
        case command
        /// Address family other than UNSPEC, INET or INET6 (AF_UNIX cannot name a DNS client).
        case family
    }

    public enum Parse: Sendable, Hashable {
        case header(ProxyHeader)
        case invalid(Failure)
    }

    /// True when `bytes` start with the signature (or with as much of it as they hold,
    /// when `allowPartial`): how a header from a source that may not send one is recognised.
    public static func hasSignature(_ bytes: UnsafeRawBufferPointer, allowPartial: Bool = false) -> Bool {
        if bytes.count < signature.count && !allowPartial { return false }
        let n = min(bytes.count, signature.count)
        var i = 0
        while i < n {
            if bytes[i] != signature[i] { return false }
            i += 1
        }
        return true
    }

    /// Parses the header at the start of `bytes`. On UDP the whole datagram is given and the
    /// header must fit in it; on TCP the caller waits for `fixedLength` bytes and then for
    /// `neededLength` before calling this.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Parse {
        guard hasSignature(bytes, allowPartial: true) else { return .invalid(.noHeader) }
        guard bytes.count >= fixedLength else { return .invalid(.truncated) }
        let versionCommand = bytes[12]
        guard versionCommand >> 4 == 2 else { return .invalid(.version) }
        guard let command = Command(rawValue: versionCommand & 0x0F) else { return .invalid(.command) }
        let family = bytes[13] >> 4
        let declared = Int(bytes[14]) << 8 | Int(bytes[15])
        let total = fixedLength + declared
        guard bytes.count >= total else { return .invalid(.truncated) }
        var header = ProxyHeader(command: command, sourceAddress: nil, sourcePort: 0, destinationAddress: nil,
                                 destinationPort: 0, length: total)
        switch family {
        case 0:
            // UNSPEC: no addresses (LOCAL, or a proxy that does not know them).
            break
        case 1:
            guard declared >= 12 else { return .invalid(.truncated) }
            if command == .proxy {
                header.sourceAddress = .v4(UInt32(be: bytes, at: 16))
                header.destinationAddress = .v4(UInt32(be: bytes, at: 20))
                header.sourcePort = UInt16(be: bytes, at: 24)
                header.destinationPort = UInt16(be: bytes, at: 26)
            }
        case 2:
            guard declared >= 36 else { return .invalid(.truncated) }
            if command == .proxy {
                header.sourceAddress = .v6(UInt128(be: bytes, at: 16))
                header.destinationAddress = .v6(UInt128(be: bytes, at: 32))
                header.sourcePort = UInt16(be: bytes, at: 48)
                header.destinationPort = UInt16(be: bytes, at: 50)
            }
        default:
            // LOCAL may carry any family: the receiver ignores its addresses (spec §2.2).
            if command == .proxy { return .invalid(.family) }
        }
        return .header(header)
    }

    /// For a TCP stream: how many bytes the whole header takes, once `fixedLength` bytes are
    /// in (nil before that).
    public static func neededLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= fixedLength else { return nil }
        return fixedLength + (Int(bytes[14]) << 8 | Int(bytes[15]))
    }

    /// Encodes a header (tests, the fuzz harness): PROXY with both addresses of the same
    /// family, or LOCAL without addresses. `tlv` is appended as is and counted in the length.
    public static func encode(command: Command, source: (Address, UInt16)? = nil, destination: (Address, UInt16)? = nil,
                              datagram: Bool = true, tlv: [UInt8] = []) -> [UInt8] {
        var out = signature
        out.append(0x20 | command.rawValue)
        var body: [UInt8] = []
        switch (source, destination) {
        case (let (.v4(s), sp)?, let (.v4(d), dp)?):
            out.append(0x10 | (datagram ? 2 : 1))
            body += s.bigEndianBytes + d.bigEndianBytes + sp.bigEndianBytes + dp.bigEndianBytes
        case (let (.v6(s), sp)?, let (.v6(d), dp)?):
            out.append(0x20 | (datagram ? 2 : 1))
            body += s.bigEndianBytes + d.bigEndianBytes + sp.bigEndianBytes + dp.bigEndianBytes
        default:
            out.append(0x00)
        }
        body += tlv
        out.append(UInt8(body.count >> 8))
        out.append(UInt8(body.count & 0xFF))
        return out + body
    }
}

extension FixedWidthInteger {
    fileprivate init(be bytes: UnsafeRawBufferPointer, at offset: Int) {
        var v: Self = 0
        for i in 0..<(Self.bitWidth / 8) { v = v << 8 | Self(bytes[offset + i]) }
        self = v
    }

    fileprivate var bigEndianBytes: [UInt8] {
        (0..<(Self.bitWidth / 8)).reversed().map { UInt8(truncatingIfNeeded: self >> ($0 * 8)) }
    }
}
