/// DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766 §8): each message is preceded by its
/// length as 2 bytes, big-endian. NIO-free so the server's stream handler can wrap it and
/// tests can drive it byte by byte.
public enum TCPFraming {
    /// The largest message a 2-byte length can announce.
    public static let maxMessageLength = 65535

    /// Appends `message` with its length prefix to `out`; false (nothing appended) when the
    /// message is longer than 65535 bytes.
    @discardableResult
    public static func appendFrame(_ message: some Collection<UInt8>, to out: inout [UInt8]) -> Bool {
        let n = message.count
        guard n <= maxMessageLength else { return false }
        out.append(UInt8(truncatingIfNeeded: n >> 8))
        out.append(UInt8(truncatingIfNeeded: n))
        out.append(contentsOf: message)
        return true
    }

    /// `message` with its length prefix; nil when longer than 65535 bytes.
    public static func frame(_ message: some Collection<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + 2)
        return appendFrame(message, to: &out) ? out : nil
    }

    /// The range of the first complete message in `buffer` and the number of bytes its frame
    /// takes (prefix included), or nil while more bytes are needed.
    public static func firstMessage(in buffer: UnsafeRawBufferPointer) -> (message: Range<Int>, frameLength: Int)? {
        guard buffer.count >= 2 else { return nil }
        let n = Int(buffer[0]) << 8 | Int(buffer[1])
        guard buffer.count >= 2 + n else { return nil }
        return (2..<(2 + n), 2 + n)
    }

    /// Removes the first complete message from the front of `buffer` and returns it, or nil
    /// (buffer untouched) while it is incomplete. A zero-length frame yields an empty message,
    /// which the query parser then drops as too short.
    public static func deframe(_ buffer: inout [UInt8]) -> [UInt8]? {
        guard let (range, length) = buffer.withUnsafeBytes({ firstMessage(in: $0) }) else { return nil }
        let message = Array(buffer[range])
        buffer.removeFirst(length)
        return message
    }
}

/// Accumulates a TCP byte stream and yields whole messages, however the stream was split:
/// drip-fed one byte at a time or many messages coalesced in one read (RFC 7766 pipelining).
///
/// Consumed bytes are discarded lazily (when more than half the buffer is consumed), so
/// taking each message does not shift the rest of the buffer.
public struct TCPDeframer: Sendable {
    var buffer: [UInt8] = []
    var readIndex = 0

    public init() {}

    /// Bytes received and not yet returned as a message.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Adds bytes read from the connection.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if readIndex > 0 && readIndex * 2 >= buffer.count {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message, or nil while it is still incomplete.
    public mutating func nextMessage() -> [UInt8]? {
        let available = buffer.count - readIndex
        guard available >= 2 else { return nil }
        let n = Int(buffer[readIndex]) << 8 | Int(buffer[readIndex + 1])
        guard available >= 2 + n else { return nil }
        let message = Array(buffer[(readIndex + 2)..<(readIndex + 2 + n)])
        readIndex += 2 + n
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        }
        return message
    }
}
