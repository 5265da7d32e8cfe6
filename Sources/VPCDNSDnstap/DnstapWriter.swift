#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SwiftProtobuf
import Synchronization

/// The dnstap message types vpcdns sends (the values are dnstap's `Message.Type`).
public enum DnstapMessageKind: Int, CaseIterable, Sendable, CustomStringConvertible {
    case clientQuery = 5
    case clientResponse = 6
    case forwarderQuery = 7
    case forwarderResponse = 8

    /// The config spelling (`dnstap.messages`).
    public var description: String {
        switch self {
        case .clientQuery: "client_query"
        case .clientResponse: "client_response"
        case .forwarderQuery: "forwarder_query"
        case .forwarderResponse: "forwarder_response"
        }
    }

    public init?(configName: String) {
        guard let k = DnstapMessageKind.allCases.first(where: { $0.description == configName }) else { return nil }
        self = k
    }
}

/// One DNS message to report, as plain values copied off the answering path. Turned into
/// protobuf on the writer's thread, so the answering thread only copies bytes.
public struct DnstapEvent: Sendable {
    public enum SocketProtocol: Sendable { case udp, tcp }

    public var kind: DnstapMessageKind
    public var socketProtocol: SocketProtocol
    /// The initiator (the client; for forwarder messages vpcdns itself, left empty when unknown):
    /// network-order address bytes (4 or 16) and port.
    public var queryAddress: [UInt8]
    public var queryPort: UInt16
    /// The responder (vpcdns' listener, or the upstream).
    public var responseAddress: [UInt8]
    public var responsePort: UInt16
    /// Wall-clock times in nanoseconds since 1970.
    public var queryTime: Int64?
    public var responseTime: Int64?
    public var queryMessage: [UInt8]?
    public var responseMessage: [UInt8]?

    public init(kind: DnstapMessageKind, socketProtocol: SocketProtocol, queryAddress: [UInt8], queryPort: UInt16,
                responseAddress: [UInt8], responsePort: UInt16, queryTime: Int64? = nil, responseTime: Int64? = nil,
                queryMessage: [UInt8]? = nil, responseMessage: [UInt8]? = nil) {
        self.kind = kind
        self.socketProtocol = socketProtocol
        self.queryAddress = queryAddress
        self.queryPort = queryPort
        self.responseAddress = responseAddress
        self.responsePort = responsePort
        self.queryTime = queryTime
        self.responseTime = responseTime
        self.queryMessage = queryMessage
        self.responseMessage = responseMessage
    }

    /// The dnstap payload for this event.
    func payload(identity: [UInt8], version: [UInt8]) -> [UInt8] {
        var m = Dnstap_Message()
        m.type = Dnstap_Message.TypeEnum(rawValue: kind.rawValue) ?? .clientQuery
        let family = queryAddress.count == 16 || responseAddress.count == 16
        m.socketFamily = family ? .inet6 : .inet
        m.socketProtocol = socketProtocol == .udp ? .udp : .tcp
        if !queryAddress.isEmpty {
            m.queryAddress = Data(queryAddress)
            m.queryPort = UInt32(queryPort)
        }
        if !responseAddress.isEmpty {
            m.responseAddress = Data(responseAddress)
            m.responsePort = UInt32(responsePort)
        }
        if let t = queryTime {
            m.queryTimeSec = UInt64(max(0, t) / 1_000_000_000)
            m.queryTimeNsec = UInt32(max(0, t) % 1_000_000_000)
        }
        if let t = responseTime {
            m.responseTimeSec = UInt64(max(0, t) / 1_000_000_000)
            m.responseTimeNsec = UInt32(max(0, t) % 1_000_000_000)
        }
        if let q = queryMessage { m.queryMessage = Data(q) }
        if let r = responseMessage { m.responseMessage = Data(r) }
        var d = Dnstap_Dnstap()
        d.identity = Data(identity)
        d.version = Data(version)
        d.type = .message
        d.message = m
        // Every required field is set, so this cannot fail; an empty payload would be skipped.
        return (try? d.serializedBytes()) ?? []
    }
}

/// O8: sends dnstap messages over Frame Streams to a unix socket, as Unbound, BIND, Knot and
/// CoreDNS do, without ever blocking the answering path.
///
/// The answering threads hand `DnstapEvent`s to `submit`, which appends to a bounded queue
/// under a lock held for an append (or counts a drop when the queue is full). A dedicated
/// thread — blocking socket I/O has no place on an event loop or in the cooperative pool —
/// takes the queue every few milliseconds, encodes the protobuf payloads and writes them as
/// data frames. It speaks the bidirectional handshake (READY with the content type
/// `protobuf:dnstap.Dnstap`, the reader's ACCEPT, START) on every connection and STOP, then
/// waits for FINISH, on shutdown. When the reader is gone, refuses, or does not take a write
/// within `writeTimeout` (slow), the connection is closed, what is queued meanwhile is
/// dropped and counted, and the socket is connected again with a backoff from 100 ms to 5 s.
public final class DnstapWriter: Sendable {
    public static let contentType = Array("protobuf:dnstap.Dnstap".utf8)

    public let socketPath: String
    public let identity: String
    public let version: String
    public let capacity: Int
    let kinds: UInt32
    let writeTimeout: Duration
    private let queue = Mutex(Queue())
    private let sentCount = Atomic<UInt64>(0)
    private let droppedCount = Atomic<UInt64>(0)
    private let stopRequested = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    private let connectedNow = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)

    struct Queue {
        var events: [DnstapEvent] = []
    }

    public init(socketPath: String, identity: String, version: String, kinds: Set<DnstapMessageKind> = Set(DnstapMessageKind.allCases),
                capacity: Int = 16_384, writeTimeout: Duration = .seconds(1)) {
        self.socketPath = socketPath
        self.identity = identity
        self.version = version
        self.capacity = capacity
        self.writeTimeout = writeTimeout
        self.kinds = kinds.reduce(0) { $0 | (1 << UInt32($1.rawValue)) }
    }

    /// Whether `kind` is configured (`dnstap.messages`): check before building an event.
    @inline(__always)
    public func wants(_ kind: DnstapMessageKind) -> Bool { kinds & (1 << UInt32(kind.rawValue)) != 0 }

    /// Queues one message. Never blocks on I/O; false when it was dropped (the queue is full,
    /// or the writer has stopped).
    @discardableResult
    public func submit(_ event: DnstapEvent) -> Bool {
        let accepted = !finished.load(ordering: .relaxed) && queue.withLock { q -> Bool in
            guard q.events.count < capacity else { return false }
            q.events.append(event)
            return true
        }
        if !accepted { droppedCount.add(1, ordering: .relaxed) }
        return accepted
    }

    /// Messages written to the reader, and messages dropped (queue full, no reader, a slow one).
    public var sent: UInt64 { sentCount.load(ordering: .relaxed) }
    public var dropped: UInt64 { droppedCount.load(ordering: .relaxed) }
    /// Whether a reader accepted the stream and the connection is up.
    public var connected: Bool { connectedNow.load(ordering: .relaxed) }

    /// Starts the writer thread (once).
    public func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in self.runLoop() }
        thread.name = "vpcdns-dnstap"
        thread.start()
    }

    /// Writes what is queued, sends STOP and waits for FINISH (bounded), then closes. Returns
    /// once the thread is done or `timeout` passed.
    public func stop(timeout: Duration = .seconds(3)) async {
        stopRequested.store(true, ordering: .relaxed)
        guard started.load(ordering: .relaxed) else { return }
        let clock = ContinuousClock()
        let until = clock.now + timeout
        while !finished.load(ordering: .relaxed), clock.now < until {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    // MARK: - The writer thread

    private func runLoop() {
        let identityBytes = Array(identity.utf8)
        let versionBytes = Array(version.utf8)
        var fd: Int32 = -1
        var backoffMs: UInt64 = 100
        var nextAttempt: UInt64 = 0
        while true {
            let stopping = stopRequested.load(ordering: .relaxed)
            let batch = queue.withLock { q -> [DnstapEvent] in
                let b = q.events
                q.events.removeAll(keepingCapacity: true)
                return b
            }
            if fd < 0, Self.monotonicMs() >= nextAttempt {
                fd = connectAndHandshake()
                if fd < 0 {
                    nextAttempt = Self.monotonicMs() + backoffMs
                    backoffMs = min(backoffMs * 2, 5_000)
                } else {
                    backoffMs = 100
                    connectedNow.store(true, ordering: .relaxed)
                }
            }
            if fd < 0 {
                // No reader: what came meanwhile is dropped (counted), never kept growing.
                if !batch.isEmpty { droppedCount.add(UInt64(batch.count), ordering: .relaxed) }
                if stopping { break }
                usleep(10_000)
                continue
            }
            var frames: [UInt8] = []
            for event in batch {
                let payload = event.payload(identity: identityBytes, version: versionBytes)
                guard !payload.isEmpty else { continue }
                Self.appendUInt32(UInt32(payload.count), to: &frames)
                frames += payload
            }
            if !frames.isEmpty {
                if Self.writeAll(fd, frames) {
                    sentCount.add(UInt64(batch.count), ordering: .relaxed)
                } else {
                    // Gone or too slow: a frame may be half written, so the stream is over.
                    droppedCount.add(UInt64(batch.count), ordering: .relaxed)
                    close(fd)
                    fd = -1
                    connectedNow.store(false, ordering: .relaxed)
                    nextAttempt = Self.monotonicMs() + backoffMs
                    backoffMs = min(backoffMs * 2, 5_000)
                    continue
                }
            }
            if stopping {
                // Everything taken before the stop was asked for is written: end the stream.
                let rest = queue.withLock { $0.events.count }
                if rest == 0 {
                    if Self.writeAll(fd, Self.controlFrame(type: ControlType.stop, contentType: nil)) {
                        _ = Self.readControlFrame(fd)  // FINISH, within the receive timeout
                    }
                    close(fd)
                    fd = -1
                    connectedNow.store(false, ordering: .relaxed)
                    break
                }
                continue
            }
            if batch.isEmpty { usleep(10_000) }
        }
        // Whatever arrived after the end is dropped, counted.
        let late = queue.withLock { q -> Int in
            let n = q.events.count
            q.events.removeAll()
            return n
        }
        if late > 0 { droppedCount.add(UInt64(late), ordering: .relaxed) }
        finished.store(true, ordering: .relaxed)
    }

    enum ControlType {
        static let accept: UInt32 = 0x01
        static let start: UInt32 = 0x02
        static let stop: UInt32 = 0x03
        static let ready: UInt32 = 0x04
        static let finish: UInt32 = 0x05
    }

    /// Connects to the socket and runs the bidirectional handshake; -1 on any failure.
    private func connectAndHandshake() -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        let room = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.count < room else {
            close(fd)
            return -1
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        var timeout = timeval(tv_sec: Int(writeTimeout.components.seconds),
                              tv_usec: Int(writeTimeout.components.attoseconds / 1_000_000_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var receive = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &receive, socklen_t(MemoryLayout<timeval>.size))
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard ok,
              Self.writeAll(fd, Self.controlFrame(type: ControlType.ready, contentType: Self.contentType)),
              let accept = Self.readControlFrame(fd), accept.type == ControlType.accept,
              accept.contentTypes.isEmpty || accept.contentTypes.contains(Self.contentType),
              Self.writeAll(fd, Self.controlFrame(type: ControlType.start, contentType: Self.contentType))
        else {
            close(fd)
            return -1
        }
        return fd
    }

    /// An escape (a zero length), the control frame's length, its type and an optional
    /// content-type field (type 1).
    static func controlFrame(type: UInt32, contentType: [UInt8]?) -> [UInt8] {
        var body: [UInt8] = []
        appendUInt32(type, to: &body)
        if let c = contentType {
            appendUInt32(1, to: &body)
            appendUInt32(UInt32(c.count), to: &body)
            body += c
        }
        var frame: [UInt8] = []
        appendUInt32(0, to: &frame)
        appendUInt32(UInt32(body.count), to: &frame)
        return frame + body
    }

    struct ControlFrame {
        var type: UInt32
        var contentTypes: [[UInt8]]
    }

    /// Reads one control frame; nil on a data frame, a timeout, a bad frame or a closed socket.
    static func readControlFrame(_ fd: Int32) -> ControlFrame? {
        guard let escape = readExactly(fd, 4), uint32(escape, 0) == 0,
              let lengthBytes = readExactly(fd, 4) else { return nil }
        let length = Int(uint32(lengthBytes, 0))
        guard length >= 4, length <= 512, let body = readExactly(fd, length) else { return nil }
        var frame = ControlFrame(type: uint32(body, 0), contentTypes: [])
        var at = 4
        while at + 8 <= body.count {
            let fieldType = uint32(body, at)
            let fieldLength = Int(uint32(body, at + 4))
            at += 8
            guard at + fieldLength <= body.count else { return nil }
            if fieldType == 1 { frame.contentTypes.append(Array(body[at..<at + fieldLength])) }
            at += fieldLength
        }
        return frame
    }

    static func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n > 0 { got += n } else if n < 0 && errno == EINTR { continue } else { return nil }
        }
        return out
    }

    /// Writes everything, or false when the socket failed or a write waited past the send
    /// timeout (a slow reader).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { return false }
        }
        return true
    }

    static func appendUInt32(_ v: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v >> 24))
        out.append(UInt8(truncatingIfNeeded: v >> 16))
        out.append(UInt8(truncatingIfNeeded: v >> 8))
        out.append(UInt8(truncatingIfNeeded: v))
    }

    static func uint32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    static func monotonicMs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}
