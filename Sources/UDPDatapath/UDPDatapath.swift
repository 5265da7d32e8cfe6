import CUDPDatapath
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One received datagram, as the handler sees it. Everything in it is valid only during
/// `DatagramHandler.handle`: copy what you keep.
public struct Datagram {
    /// The payload, in the datapath's receive slot.
    public var bytes: UnsafeRawBufferPointer
    /// Who sent it (where the reply goes).
    public var client: DatagramEndpoint
    /// The address it was sent to: the bound address, or on a wildcard socket the
    /// destination read from pktinfo with the bound port.
    public var local: DatagramEndpoint
    /// The socket it came in on: a late answer goes out through it (`send(_:to:from:)`).
    public var socket: DatagramSocket
    /// Which datapath thread read it (0..<threads), stable per socket: a handler can tie
    /// per-thread resources (an event loop) to it.
    public var thread: Int
}

/// What the handler decided about one datagram, synchronously.
public enum DatagramVerdict: Sendable, Equatable {
    /// Send `reply[0..<length]` back now (with the rest of the batch, in one `sendmmsg`).
    case reply(length: Int)
    /// Send nothing.
    case drop
    /// Nothing now; the handler answers later through `Datagram.socket`.
    case pending
}

/// Datagrams the datapath drops before the handler sees them.
public enum DatagramDropReason: Sendable, Hashable {
    /// Longer than a receive slot (`Configuration.querySlotBytes`): cut by the kernel.
    case truncated
}

/// The work done for each datagram. Called on the datapath's threads, concurrently from
/// several of them: it must be thread-safe and must not block.
public protocol DatagramHandler: Sendable {
    /// Decides about one datagram; a reply is written into `reply` (a send slot of
    /// `Configuration.replySlotBytes`).
    func handle(_ datagram: Datagram, reply: UnsafeMutableRawBufferPointer) -> DatagramVerdict
    /// A datagram dropped before `handle`.
    func dropped(_ reason: DatagramDropReason, client: DatagramEndpoint)
    /// A receive or send failed on `socket` (never fatal: the loop goes on).
    func socketError(_ code: Int32, on socket: DatagramSocket)
}

/// The UDP datapath of one listen address: `threads` sockets bound to it with
/// `SO_REUSEPORT` (the kernel spreads clients over them), each served by a thread of its own
/// that waits in `poll` and then reads batches with `recvmmsg`, hands each datagram to the
/// handler and sends the batch's replies with one `sendmmsg`. All buffers (receive and send
/// slots, addresses, control messages) are allocated when the thread starts: nothing is
/// allocated per datagram.
///
/// `stopReading` ends the threads but keeps the sockets open, so late answers still leave;
/// `close` closes the sockets too.
public final class UDPDatapath: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Sockets and threads.
        public var threads: Int = 1
        /// Datagrams per `recvmmsg` (and at most per `sendmmsg`).
        public var batch: Int = 32
        /// Receive slot size: a longer datagram is dropped (`DatagramDropReason.truncated`).
        public var querySlotBytes: Int = 4096
        /// Send slot size: the room the handler has for a reply.
        public var replySlotBytes: Int = 65_535
        public var socket = DatagramSocketOptions()
        /// Thread names: `prefix` and the thread's index (Linux keeps 15 bytes).
        public var threadNamePrefix = "udp-"

        public init() {}
    }

    public let sockets: [DatagramSocket]
    private let workers: [Worker]

    /// The bound address (with its real port when 0 was asked for).
    public var bound: DatagramEndpoint { sockets[0].bound }

    private init(sockets: [DatagramSocket], workers: [Worker]) {
        self.sockets = sockets
        self.workers = workers
    }

    /// Binds `configuration.threads` sockets to `endpoint` (port 0: the first picks the port,
    /// the others join it) and starts a thread per socket. Nothing stays open on failure.
    public static func start(_ endpoint: DatagramEndpoint, configuration: Configuration, handler: any DatagramHandler) throws(DatagramSocketError) -> UDPDatapath {
        var sockets: [DatagramSocket] = []
        var target = endpoint
        do {
            for _ in 0..<max(1, configuration.threads) {
                let s = try DatagramSocket.bind(target, options: configuration.socket)
                if sockets.isEmpty { target.port = s.bound.port }
                sockets.append(s)
            }
        } catch {
            for s in sockets { s.close() }
            throw error
        }
        var workers: [Worker] = []
        for (i, s) in sockets.enumerated() {
            let wake = cudp_eventfd()
            guard wake >= 0 else {
                let code = errno
                for w in workers { w.stop() }
                for s in sockets { s.close() }
                throw DatagramSocketError(operation: "eventfd", code: code)
            }
            let w = Worker(socket: s, wake: wake, index: i, configuration: configuration, handler: handler)
            w.start()
            workers.append(w)
        }
        return UDPDatapath(sockets: sockets, workers: workers)
    }

    /// Stops reading: wakes every thread and waits for it to finish its batch and end. The
    /// sockets stay open (late answers can still be sent). Idempotent.
    public func stopReading() {
        for w in workers { w.stop() }
    }

    /// `stopReading`, then closes the sockets. Idempotent.
    public func close() {
        stopReading()
        for s in sockets { s.close() }
    }

    /// True while every socket is open and every thread reading.
    public var isServing: Bool {
        sockets.allSatisfy(\.isOpen) && workers.allSatisfy(\.isRunning)
    }

    deinit { close() }
}

/// One datapath thread and its socket.
private final class Worker: Sendable {
    let socket: DatagramSocket
    let wake: Int32
    let index: Int
    let configuration: UDPDatapath.Configuration
    let handler: any DatagramHandler
    private let stopping = Atomic<Bool>(false)
    /// The thread, until joined.
    private let thread = Mutex<pthread_t?>(nil)

    init(socket: DatagramSocket, wake: Int32, index: Int, configuration: UDPDatapath.Configuration, handler: any DatagramHandler) {
        self.socket = socket
        self.wake = wake
        self.index = index
        self.configuration = configuration
        self.handler = handler
    }

    var isRunning: Bool { !stopping.load(ordering: .relaxed) }

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            let worker = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
            worker.run()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Worker>.fromOpaque(box).release()
            stopping.store(true, ordering: .relaxed)
            Glibc.close(wake)
            return
        }
        thread.withLock { $0 = tid }
    }

    /// Asks the thread to end, waits for it, releases the wake-up descriptor. Idempotent.
    func stop() {
        stopping.store(true, ordering: .releasing)
        guard let tid = thread.withLock({ t -> pthread_t? in defer { t = nil }; return t }) else { return }
        _ = cudp_eventfd_signal(wake)
        pthread_join(tid, nil)
        Glibc.close(wake)
    }

    private func run() {
        cudp_name_this_thread("\(configuration.threadNamePrefix)\(index)")
        let batch = max(1, configuration.batch)
        let querySlot = max(512, configuration.querySlotBytes)
        let replySlot = max(512, configuration.replySlotBytes)
        let nameSlot = MemoryLayout<sockaddr_storage>.size
        let controlSlot = (cudp_pktinfo_space() + 15) & ~15
        let buffers = Buffers(batch: batch, querySlot: querySlot, replySlot: replySlot, nameSlot: nameSlot, controlSlot: controlSlot)
        defer { buffers.free() }
        let fd = socket.descriptor
        let readsDestination = socket.readsDestination
        let bound = socket.bound
        var polled = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        var drained: UInt64 = 0
        buffers.prepareReceive(upTo: batch, readsDestination: readsDestination)

        while !stopping.load(ordering: .acquiring) {
            // Read until a short batch (the queue is then empty or nearly: poll tells).
            var received = batch
            while received == batch, !stopping.load(ordering: .relaxed) {
                received = Int(cudp_recvmmsg(fd, buffers.receive, UInt32(batch), Int32(MSG_DONTWAIT)))
                defer { buffers.prepareReceive(upTo: received, readsDestination: readsDestination) }
                if received < 0 {
                    let code = errno
                    if code == EINTR { received = batch; continue }
                    if code != EAGAIN && code != EWOULDBLOCK { handler.socketError(code, on: socket) }
                    break
                }
                var replies = 0
                for i in 0..<received {
                    let flags = buffers.receive[i].msg_hdr.msg_flags
                    guard let client = DatagramEndpoint(sockaddr: buffers.name(i)) else { continue }
                    if flags & Int32(MSG_TRUNC) != 0 {
                        handler.dropped(.truncated, client: client)
                        continue
                    }
                    var local = bound
                    if readsDestination {
                        var address = (UInt64(0), UInt64(0))
                        var ifindex: UInt32 = 0
                        let family = withUnsafeMutableBytes(of: &address) { raw in
                            cudp_read_destination(buffers.header(i), raw.baseAddress!.assumingMemoryBound(to: UInt8.self), &ifindex)
                        }
                        if family == AF_INET {
                            let v = withUnsafeBytes(of: &address) { UInt32(bigEndian: $0.load(as: UInt32.self)) }
                            local = DatagramEndpoint(address: .v4(v), port: bound.port)
                        } else if family == AF_INET6 {
                            let v = withUnsafeBytes(of: &address) { DatagramEndpoint.v6(from: $0) }
                            local = DatagramEndpoint(address: .v6(v), port: bound.port, scopeID: ifindex)
                        }
                    }
                    let datagram = Datagram(
                        bytes: UnsafeRawBufferPointer(start: buffers.query(i), count: Int(buffers.receive[i].msg_len)),
                        client: client, local: local, socket: socket, thread: index)
                    let reply = UnsafeMutableRawBufferPointer(start: buffers.reply(i), count: replySlot)
                    if case .reply(let length) = handler.handle(datagram, reply: reply), length > 0, length <= replySlot {
                        buffers.queueReply(from: i, length: length, at: replies, source: readsDestination ? local : nil)
                        replies += 1
                    }
                }
                var sent = 0
                while sent < replies {
                    let n = Int(cudp_sendmmsg(fd, buffers.send + sent, UInt32(replies - sent), 0))
                    if n > 0 {
                        sent += n
                    } else if errno != EINTR {
                        // This reply cannot go (e.g. the send buffer is full); the others may.
                        handler.socketError(errno, on: socket)
                        sent += 1
                    }
                }
            }
            if stopping.load(ordering: .acquiring) { break }
            polled[0].revents = 0
            polled[1].revents = 0
            if poll(&polled, 2, -1) < 0 {
                if errno != EINTR { handler.socketError(errno, on: socket) }
                continue
            }
            if polled[1].revents != 0 { _ = read(wake, &drained, 8) }
        }
    }
}

/// A thread's preallocated slots: per datagram of a batch a receive buffer, a reply buffer,
/// the peer's address (shared by the query and its reply) and a control buffer each way.
private struct Buffers {
    let batch: Int
    let querySlot: Int
    let replySlot: Int
    let nameSlot: Int
    let controlSlot: Int
    let receive: UnsafeMutablePointer<cudp_mmsghdr>
    let send: UnsafeMutablePointer<cudp_mmsghdr>
    let receiveIOV: UnsafeMutablePointer<iovec>
    let sendIOV: UnsafeMutablePointer<iovec>
    let queries: UnsafeMutableRawPointer
    let replies: UnsafeMutableRawPointer
    let names: UnsafeMutableRawPointer
    let receiveControl: UnsafeMutableRawPointer
    let sendControl: UnsafeMutableRawPointer

    init(batch: Int, querySlot: Int, replySlot: Int, nameSlot: Int, controlSlot: Int) {
        self.batch = batch
        self.querySlot = querySlot
        self.replySlot = replySlot
        self.nameSlot = nameSlot
        self.controlSlot = controlSlot
        receive = .allocate(capacity: batch)
        send = .allocate(capacity: batch)
        receiveIOV = .allocate(capacity: batch)
        sendIOV = .allocate(capacity: batch)
        queries = .allocate(byteCount: batch * querySlot, alignment: 16)
        // Touched only as far as replies reach: a mostly virtual reservation.
        replies = .allocate(byteCount: batch * replySlot, alignment: 16)
        names = .allocate(byteCount: batch * nameSlot, alignment: 16)
        receiveControl = .allocate(byteCount: batch * controlSlot, alignment: 16)
        sendControl = .allocate(byteCount: batch * controlSlot, alignment: 16)
        for i in 0..<batch {
            receiveIOV[i] = iovec(iov_base: query(i), iov_len: querySlot)
            receive[i] = cudp_mmsghdr(msg_hdr: msghdr(), msg_len: 0)
            send[i] = cudp_mmsghdr(msg_hdr: msghdr(), msg_len: 0)
        }
    }

    func query(_ i: Int) -> UnsafeMutableRawPointer { queries + i * querySlot }
    func reply(_ i: Int) -> UnsafeMutableRawPointer { replies + i * replySlot }
    func name(_ i: Int) -> UnsafeMutableRawPointer { names + i * nameSlot }
    /// The received message `i` (its `msghdr` is the first field of the `mmsghdr`).
    func header(_ i: Int) -> UnsafePointer<msghdr> { UnsafeRawPointer(receive + i).assumingMemoryBound(to: msghdr.self) }

    /// The kernel overwrites the lengths and flags of every message it fills: reset the first
    /// `count` (those the last `recvmmsg` filled; after a failed one, the first, to be safe).
    func prepareReceive(upTo count: Int, readsDestination: Bool) {
        for i in 0..<(count < 0 ? 1 : min(count, batch)) {
            var h = msghdr()
            h.msg_name = name(i)
            h.msg_namelen = socklen_t(nameSlot)
            h.msg_iov = receiveIOV + i
            h.msg_iovlen = 1
            if readsDestination {
                h.msg_control = receiveControl + i * controlSlot
                h.msg_controllen = controlSlot
            }
            receive[i].msg_hdr = h
            receive[i].msg_len = 0
        }
    }

    /// Send message `k` is the reply in slot `i`, to the query's sender, from `source` (on a
    /// wildcard socket: the address the query was sent to, as read from its pktinfo).
    func queueReply(from i: Int, length: Int, at k: Int, source: DatagramEndpoint?) {
        sendIOV[k] = iovec(iov_base: reply(i), iov_len: length)
        var h = msghdr()
        h.msg_name = name(i)
        h.msg_namelen = receive[i].msg_hdr.msg_namelen
        h.msg_iov = sendIOV + k
        h.msg_iovlen = 1
        if let source {
            let control = sendControl + k * controlSlot
            h.msg_control = control
            h.msg_controllen = source.writeSourceControl(to: control)
        }
        send[k].msg_hdr = h
        send[k].msg_len = 0
    }

    func free() {
        receive.deallocate()
        send.deallocate()
        receiveIOV.deallocate()
        sendIOV.deallocate()
        queries.deallocate()
        replies.deallocate()
        names.deallocate()
        receiveControl.deallocate()
        sendControl.deallocate()
    }
}
