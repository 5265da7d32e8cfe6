#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// L1–L3: writes query-log lines without ever blocking the answering path.
///
/// Each answering thread has its own bounded batch (`ThreadBatch`): a line is encoded straight
/// into the end of it (`append`), under a lock that only that thread and the writer take, so
/// threads never contend with each other and a line is copied once more only by the kernel.
/// A single writer task swaps every thread's batch for an empty one every 10 ms under load
/// (50 ms when idle) and writes it with one `write(2)`; the two buffers of each thread are
/// reused, so a steady load allocates nothing here. When a thread's batch holds `capacity`
/// lines, a record is dropped and counted — never silently: the count is a metric and is
/// logged at shutdown (L2). SIGUSR1 asks for a reopen, done by the writer between two
/// batches, so a record lands in the old file or the new one (L3). On graceful shutdown every
/// accepted record is written before `run` returns (O3).
public final class QueryLogWriter: Service, Sendable {
    struct Registry {
        var batches: [ThreadBatch] = []
        /// Set by the final flush: batches registered later start closed.
        var closed = false
    }

    public let path: String
    /// Lines one thread's batch holds between two flushes.
    public let capacity: Int
    private let registry = Mutex(Registry())
    /// This writer's batch of the calling thread.
    private let perThread = ThreadSpecificVariable<ThreadBatch>()
    /// Serializes flushes (the writer task, shutdown, tests); held during the write.
    private let flushing = Mutex(())
    private let reopenRequested = Atomic<Bool>(false)
    private let written = Atomic<UInt64>(0)
    private let fd = Atomic<Int32>(-1)
    private let logger: Logger

    /// `path` `-` is standard output. The folder is created when missing.
    public init(path: String, capacity: Int = 262_144, logger: Logger = Logger(label: "vpcdns.querylog")) throws {
        self.path = path
        self.capacity = capacity
        self.logger = logger
        fd.store(try QueryLogWriter.open(path), ordering: .relaxed)
    }

    public struct OpenError: Error, CustomStringConvertible {
        public let path: String
        public let errno: Int32
        public var description: String { "cannot open query log \(path): \(String(cString: strerror(errno)))" }
    }

    static func open(_ path: String) throws -> Int32 {
        if path == "-" { return 1 }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            makeDirectories(String(path[..<slash]))
        }
        let f = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard f >= 0 else { throw OpenError(path: path, errno: errno) }
        return f
    }

    static func makeDirectories(_ dir: String) {
        var prefix = dir.hasPrefix("/") ? "/" : ""
        for part in dir.split(separator: "/") {
            prefix += part + "/"
            _ = mkdir(prefix, 0o755)
        }
    }

    /// Hands one finished line (with its newline) to the writer. Never blocks on I/O.
    /// Returns false when the record had to be dropped (the batch is full, or closed).
    @discardableResult
    public func submit(_ line: String) -> Bool {
        var line = line
        return line.withUTF8 { submit(bytes: $0) }
    }

    /// Encodes `record` into the calling thread's batch.
    @discardableResult
    public func submit(_ record: QueryLogRecord) -> Bool {
        append { out, dates in record.write(to: &out, dates: &dates) }
    }

    /// Hands one finished line, as UTF-8 with its newline, to the writer.
    @discardableResult
    public func submit(bytes line: UnsafeBufferPointer<UInt8>) -> Bool {
        append { out, _ in out.append(contentsOf: line) }
    }

    /// The per-query path: `encode` appends exactly one line (newline included) to the end of
    /// the calling thread's batch, in place. Returns false, without calling `encode`, when the
    /// record is dropped (the batch is full, or closed after the final flush).
    @inline(__always)
    @discardableResult
    func append(_ encode: (inout ByteSink, inout DateCache) -> Void) -> Bool {
        let batch = perThread.currentValue ?? register()
        return batch.pending.withLock { p in
            if p.lines >= capacity || p.closed {
                p.dropped += 1
                return false
            }
            encode(&p.sink, &p.dates)
            p.lines += 1
            p.accepted += 1
            return true
        }
    }

    /// The calling thread's first record: its batch, registered with the writer.
    private func register() -> ThreadBatch {
        let batch = ThreadBatch()
        registry.withLock { r in
            if r.closed { batch.pending.withLock { $0.closed = true } }
            r.batches.append(batch)
        }
        perThread.currentValue = batch
        return batch
    }

    /// L3: reopen the file (SIGUSR1, reload). Takes effect before the next batch is written.
    public func requestReopen() {
        reopenRequested.store(true, ordering: .releasing)
    }

    public var counts: (accepted: UInt64, written: UInt64, dropped: UInt64) {
        var a: UInt64 = 0, d: UInt64 = 0
        for b in registry.withLock({ $0.batches }) {
            b.pending.withLock { p in
                a += p.accepted
                d += p.dropped
            }
        }
        return (a, written.load(ordering: .relaxed), d)
    }

    /// Writes whatever is pending now (also used at shutdown) and returns the number of lines
    /// written. `final` closes every batch to new records in the same critical section that
    /// takes its lines, so none is accepted after the last write.
    @discardableResult
    public func flush(final: Bool = false) -> Int {
        flushing.withLock { _ in
            var total = 0
            let reopen = reopenRequested.exchange(false, ordering: .acquiringAndReleasing)
            let batches = registry.withLock { r in
                if final { r.closed = true }
                return r.batches
            }
            for b in batches {
                // The writer owns `b.spare` (flushes are serialized); swapping it with the
                // filled buffer is all the answering thread waits for.
                let lines = b.pending.withLock { p in
                    swap(&p.sink, &b.spare)
                    let n = p.lines
                    p.lines = 0
                    if final { p.closed = true }
                    return n
                }
                if lines > 0 { b.spare.withBytes { writeAll($0, lines: lines) } }
                b.spare.count = 0
                total += lines
            }
            if reopen { reopenFile() }
            return total
        }
    }

    private func reopenFile() {
        guard path != "-" else { return }
        do {
            let new = try QueryLogWriter.open(path)
            let old = fd.exchange(new, ordering: .acquiringAndReleasing)
            if old > 2 { close(old) }
            logger.info("query log reopened", metadata: ["path": "\(path)"])
        } catch {
            logger.error("\(error)")
        }
    }

    private func writeAll(_ raw: UnsafeBufferPointer<UInt8>, lines: Int) {
        let f = fd.load(ordering: .acquiring)
        var off = 0
        while off < raw.count {
            let n = write(f, raw.baseAddress! + off, raw.count - off)
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                logger.error("query log write failed: \(String(cString: strerror(errno)))")
                return
            }
            off += n
        }
        written.add(UInt64(lines), ordering: .relaxed)
    }

    public func run() async throws {
        // Flush every 10 ms while there are lines (a batch this small stays in the cache of
        // the thread that fills it, and the kernel copies it from there), every 50 ms when
        // idle; at shutdown, write everything accepted and stop.
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let lines = flush()
                try? await Task.sleep(for: .milliseconds(lines > 0 ? 10 : 50))
            }
        } onGracefulShutdown: {}
        flush(final: true)
        let c = counts
        logger.info("query log closed", metadata: ["accepted": "\(c.accepted)", "written": "\(c.written)", "dropped": "\(c.dropped)"])
        if c.dropped > 0 {
            logger.warning("query log dropped \(c.dropped) record(s): the writer could not keep up (L2)")
        }
        let f = fd.exchange(-1, ordering: .acquiringAndReleasing)
        if f > 2 { close(f) }
    }
}

/// One answering thread's pending lines. The thread appends under `pending`'s lock; the
/// writer swaps the filled buffer for `spare` under the same lock and writes it outside.
final class ThreadBatch: @unchecked Sendable {
    // @unchecked: `spare` is touched only by the writer, inside `QueryLogWriter.flushing`.
    struct Pending: ~Copyable {
        /// Finished lines, newlines included, one after another.
        var sink = ByteSink(capacity: 64 * 1024)
        /// Lines in `sink`.
        var lines = 0
        var accepted: UInt64 = 0
        var dropped: UInt64 = 0
        /// Set by the final flush: a record that comes later cannot be written any more, so it
        /// is dropped and counted rather than accepted and lost.
        var closed = false
        /// The date and time of the second last written (most lines share it).
        var dates = DateCache()
    }

    let pending = Mutex(Pending())
    /// The buffer written last, emptied, kept for the next swap.
    var spare = ByteSink(capacity: 64 * 1024)
}
