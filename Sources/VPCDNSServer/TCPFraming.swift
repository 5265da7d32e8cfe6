import NIOCore

/// DNS over TCP framing (RFC 1035 4.2.2, RFC 7766 8): each message is preceded by its
/// length as a 2-byte big-endian integer. Emits one `ByteBuffer` per complete message, so
/// drip-fed bytes and several queries coalesced into one segment both work.
struct DNSTCPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        let message = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(Self.wrapInboundOut(message))
        return .continue
    }

    /// A partial message at end of input is discarded: there is nobody to answer it for.
    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}

enum DNSTCPFrame {
    /// The message with its 2-byte length in front; nil when it is too long for TCP DNS.
    static func frame(_ message: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard message.readableBytes <= Int(UInt16.max) else { return nil }
        var out = allocator.buffer(capacity: 2 + message.readableBytes)
        out.writeInteger(UInt16(message.readableBytes))
        out.writeImmutableBuffer(message)
        return out
    }
}
