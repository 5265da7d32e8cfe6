#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import ServiceLifecycle
import Synchronization

/// L1–L3: writes query-log lines without ever blocking the answering path.
///
/// Answering threads encode a record into bytes on their own, then copy them to the end of a
/// bounded in-memory batch (one byte array) under a short lock (`submit`). A single writer
/// task swaps the batch out every 50 ms and writes it with one `write(2)`; the two byte arrays
/// are reused, so a steady load allocates nothing here. When the batch is full, a record is dropped and counted — never silently:
/// the count is a metric and is logged at shutdown (L2). SIGUSR1 asks for a reopen, done by
/// the writer between two batches, so a record lands in the old file or the new one (L3).
/// On graceful shutdown every accepted record is written before `run` returns (O3).
public final class QueryLogWriter: Service, Sendable {
    struct State {
        /// Finished lines, newlines included, one after another.
        var batch: [UInt8] = []
        /// Lines in `batch`.
        var lines = 0
        /// The array written last, emptied, kept for the next swap.
        var spare: [UInt8] = []
        var accepted: UInt64 = 0
        var dropped: UInt64 = 0
        var reopenRequested = false
        /// Set by the final flush: a record that comes later cannot be written any more, so it
        /// is dropped and counted rather than accepted and lost.
        var closed = false
    }

    public let path: String
    public let capacity: Int
    private let state: Mutex<State>
    private let written = Atomic<UInt64>(0)
    private let fd = Atomic<Int32>(-1)
    private let logger: Logger

    /// `path` `-` is standard output. The folder is created when missing.
    public init(path: String, capacity: Int = 262_144, logger: Logger = Logger(label: "vpcdns.querylog")) throws {
        self.path = path
        self.capacity = capacity
        self.logger = logger
        self.state = Mutex(State())
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

    /// Encodes `record` and hands it to the writer (the per-query path).
    @discardableResult
    public func submit(_ record: QueryLogRecord) -> Bool {
        // Encoded in a stack buffer (a line rarely needs more; ByteSink moves to the heap if so).
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer in
            var sink = ByteSink(buffer: buffer)
            record.write(to: &sink)
            return sink.withBytes { submit(bytes: $0) }
        }
    }

    /// Hands one finished line, as UTF-8 with its newline, to the writer.
    @discardableResult
    public func submit(bytes line: UnsafeBufferPointer<UInt8>) -> Bool {
        state.withLock { s in
            if s.lines >= capacity || s.closed {
                s.dropped += 1
                return false
            }
            s.batch.append(contentsOf: line)
            s.lines += 1
            s.accepted += 1
            return true
        }
    }

    /// L3: reopen the file (SIGUSR1, reload). Takes effect before the next batch is written.
    public func requestReopen() {
        state.withLock { $0.reopenRequested = true }
    }

    public var counts: (accepted: UInt64, written: UInt64, dropped: UInt64) {
        let (a, d) = state.withLock { ($0.accepted, $0.dropped) }
        return (a, written.load(ordering: .relaxed), d)
    }

    /// Writes whatever is pending now (also used at shutdown). `final` closes the batch to
    /// new records in the same critical section, so none is accepted after the last write.
    public func flush(final: Bool = false) {
        var (bytes, lines, reopen) = state.withLock { s -> ([UInt8], Int, Bool) in
            var out = s.spare
            s.spare = []
            swap(&out, &s.batch)
            let n = s.lines
            s.lines = 0
            let r = s.reopenRequested
            s.reopenRequested = false
            if final { s.closed = true }
            return (out, n, r)
        }
        if lines > 0 { writeAll(bytes, lines: lines) }
        if reopen { reopenFile() }
        if !final {
            bytes.removeAll(keepingCapacity: true)
            state.withLock { s in
                if s.spare.capacity < bytes.capacity { swap(&s.spare, &bytes) }
            }
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

    private func writeAll(_ bytes: [UInt8], lines: Int) {
        let f = fd.load(ordering: .acquiring)
        var off = 0
        bytes.withUnsafeBytes { raw in
            while off < raw.count {
                let n = write(f, raw.baseAddress! + off, raw.count - off)
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    logger.error("query log write failed: \(String(cString: strerror(errno)))")
                    return
                }
                off += n
            }
        }
        written.add(UInt64(lines), ordering: .relaxed)
    }

    public func run() async throws {
        // Flush every 50 ms until shutdown, then write everything accepted and stop.
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                flush()
                try? await Task.sleep(for: .milliseconds(50))
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
