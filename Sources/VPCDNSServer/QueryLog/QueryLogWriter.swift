#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// L1–L3: writes query-log lines without ever blocking the answering path.
///
/// Each answering thread has its own bounded batch (`ThreadBatch`): a line is encoded straight
/// into the end of it (`append`), under a lock that only that thread and the writer take, so
/// threads never contend with each other. A single writer task swaps every thread's batch for
/// an empty one every 10 ms under load (50 ms when idle) and writes the lines with one
/// `write(2)`; the buffers of each thread are reused, so a steady load allocates nothing here.
/// When a thread's batch holds `capacity` lines, a record is dropped and counted — never
/// silently: the count is a metric and is logged at shutdown (L2). SIGUSR1 asks for a reopen,
/// done by the writer between two batches, so a record lands in the old file or the new one
/// (L3). On graceful shutdown every accepted record is written before `run` returns (O3).
///
/// **Order (query-log.md).** A query answered after another query of the same client was
/// answered is never written before it, even when the two were answered by different event
/// loops (different source ports, TCP, upstream answers). Writing each thread's batch in turn
/// would break that: the first query's line could sit in one thread's batch while the second's,
/// from another thread, is written first. So every line carries a stamp, the monotonic clock
/// read the engine takes anyway for `latency_us`, taken after the query arrived and before its
/// answer leaves; and every flush
///
/// 1. reads the clock once, before taking any batch: the cut;
/// 2. takes every thread's lines (one swap per thread, as before);
/// 3. writes the lines stamped before the cut, merged in stamp order, and keeps the others
///    (those that arrived between the cut and their thread's swap: a few at most) for the next
///    flush.
///
/// Why that is enough: if line X was in its batch before line Y's stamp was read (X's answer
/// left before Y's query came, which is all "answered after" can mean), then X's stamp is
/// below Y's; if Y is written by a flush, Y's stamp is below that flush's cut, so X was
/// appended before the cut, hence before its thread's swap: X is written by that flush or an
/// earlier one, and within one flush the merge puts it first. CLOCK_MONOTONIC is one clock
/// for every CPU, and each thread's lines are in stamp order already (`append` keeps them so),
/// so the merge is of sorted runs. The cost: 16 bytes of stamp and offset per line, one clock
/// read per flush, and, only when two or more threads had lines in the same flush, one more
/// copy of those lines into the merge buffer (measured with `scripts/bench-querylog.sh`: see
/// the README). A global sequence counter would have given the same order but put one
/// contended atomic on every answer of every thread.
public final class QueryLogWriter: Service, Sendable {
    struct Registry {
        var batches: [ThreadBatch] = []
        /// Set by the final flush: batches registered later start closed.
        var closed = false
        /// Counts of the batches of threads that ended (a UDP datapath thread of an address a
        /// reload closed), whose batches were let go.
        var retiredAccepted: UInt64 = 0
        var retiredDropped: UInt64 = 0
    }

    public let path: String
    /// Lines one thread's batch holds between two flushes.
    public let capacity: Int
    private let registry = Mutex(Registry())
    /// This writer's batch of the calling thread.
    private let perThread = ThreadSpecificVariable<BatchOwner>()
    /// Serializes flushes (the writer task, shutdown, tests); held during the write.
    private let flushing = Mutex(())
    private let reopenRequested = Atomic<Bool>(false)
    private let written = Atomic<UInt64>(0)
    private let fd = Atomic<Int32>(-1)
    private let logger: Logger
    /// The writer's buffer for lines of several threads merged in stamp order; used only
    /// inside `flushing`.
    private let merged = MergeBuffer()
    /// Sees every written run of lines (the console's feed), on the writer's task, after the
    /// write. Nil (the usual case) costs one check per flush, nothing per query.
    /// In a class box, not as a bare closure: a closure kept as the Mutex's generic value and
    /// read back through `withLock`'s `inout` is wrapped in two more reabstraction thunks at
    /// every read (written back to storage), so each flush made the tap one call deeper; under
    /// steady traffic the chain reached thousands of frames within minutes and would in the
    /// end overflow the writer's stack (`tapDoesNotDeepen` measures the depth).
    private let tap = Mutex<TapBox?>(nil)
    private final class TapBox: Sendable {
        let body: @Sendable (UnsafeBufferPointer<UInt8>) -> Void
        init(_ body: @escaping @Sendable (UnsafeBufferPointer<UInt8>) -> Void) { self.body = body }
    }

    /// `path` `-` is standard output. The folder is created when missing.
    public init(path: String, capacity: Int = 262_144, logger: Logger = Logger(label: "vpcdns.querylog")) throws {
        self.path = path
        self.capacity = capacity
        self.logger = logger
        fd.store(try QueryLogWriter.open(path), ordering: .relaxed)
    }

    /// A writer whose lines go nowhere but to its tap: records are built for the console
    /// when no `query_log` is configured.
    public init(discardingWithCapacity capacity: Int = 262_144, logger: Logger = Logger(label: "vpcdns.querylog")) {
        self.path = ""
        self.capacity = capacity
        self.logger = logger
    }

    /// `body` is handed each run of whole lines (newline-terminated, in written order) right
    /// after it is written. It runs on the writer's task: it must only copy, never wait.
    public func setTap(_ body: (@Sendable (UnsafeBufferPointer<UInt8>) -> Void)?) {
        let box = body.map(TapBox.init)
        tap.withLock { $0 = box }
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
        append(stamp: NIODeadline.now()) { out, dates in record.write(to: &out, dates: &dates) }
    }

    /// Hands one finished line, as UTF-8 with its newline, to the writer.
    @discardableResult
    public func submit(bytes line: UnsafeBufferPointer<UInt8>) -> Bool {
        append(stamp: NIODeadline.now()) { out, _ in out.append(contentsOf: line) }
    }

    /// The per-query path: `encode` appends exactly one line (newline included) to the end of
    /// the calling thread's batch, in place. `stamp` orders the line among other threads'
    /// (see the type's comment): a monotonic time read after the query arrived and before its
    /// answer is sent. Returns false, without calling `encode`, when the record is dropped
    /// (the batch is full, or closed after the final flush).
    @inline(__always)
    @discardableResult
    func append(stamp: NIODeadline, _ encode: (inout ByteSink, inout DateCache) -> Void) -> Bool {
        let batch = perThread.currentValue?.batch ?? register()
        return batch.pending.withLock { p in
            if p.lines >= capacity || p.closed {
                p.dropped += 1
                return false
            }
            encode(&p.sink, &p.dates)
            // One thread's stamps never go back (a caller's clock read may be a little older
            // than the previous line's): its lines stay a sorted run for the merge.
            p.lastStamp = max(p.lastStamp, stamp.uptimeNanoseconds)
            p.index.append(stamp: p.lastStamp, end: p.sink.count)
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
        perThread.currentValue = BatchOwner(batch)
        return batch
    }

    /// L3: reopen the file (SIGUSR1, reload). Takes effect before the next batch is written.
    public func requestReopen() {
        reopenRequested.store(true, ordering: .releasing)
    }

    /// Threads' batches held now (tests: those of ended threads are let go).
    var batchCount: Int { registry.withLock { $0.batches.count } }

    public var counts: (accepted: UInt64, written: UInt64, dropped: UInt64) {
        let (batches, retiredAccepted, retiredDropped) = registry.withLock { ($0.batches, $0.retiredAccepted, $0.retiredDropped) }
        var a = retiredAccepted, d = retiredDropped
        for b in batches {
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
            let reopen = reopenRequested.exchange(false, ordering: .acquiringAndReleasing)
            // The cut, read before any batch is taken (see the type's comment). The final flush
            // writes everything.
            let cut = final ? UInt64.max : NIODeadline.now().uptimeNanoseconds
            let batches = registry.withLock { r in
                if final { r.closed = true }
                return r.batches
            }
            for b in batches {
                // The writer owns `b.spare` (flushes are serialized); swapping it with the
                // filled buffer is all the answering thread waits for.
                b.pending.withLock { p in
                    swap(&p.sink, &b.spare)
                    swap(&p.index, &b.spareIndex)
                    p.lines = 0
                    if final { p.closed = true }
                }
            }
            let total = writeMerged(batches, before: cut)
            retireEnded(batches)
            if reopen { reopenFile() }
            return total
        }
    }

    /// Writes the lines of `batches` stamped before `cut`, in stamp order, and keeps the others
    /// in their batch's `held` for the next flush. Returns the number of lines written.
    private func writeMerged(_ batches: [ThreadBatch], before cut: UInt64) -> Int {
        // Each batch's lines are two sorted runs, `held` (from an earlier flush) then `spare`,
        // every held line older than every spare one; the lines to write are a prefix of each.
        var runs: [LineRun] = []
        for b in batches {
            for run in b.runs(before: cut) where run.count > 0 { runs.append(run) }
        }
        var total = 0
        if runs.count == 1 {
            // One thread had lines (one event loop, or a quiet moment): its bytes as they are.
            runs[0].withBytes { writeAll($0, lines: runs[0].count) }
            total = runs[0].count
        } else if runs.count > 1 {
            total = merged.merge(runs)
            merged.sink.withBytes { writeAll($0, lines: total) }
            merged.sink.count = 0
        }
        for b in batches { b.keepUnwritten(before: cut) }
        return total
    }

    /// Lets go of the batches of threads that ended once everything they held is written
    /// (their counts are kept): datapath threads end when a reload closes their address, and
    /// each new one registers a batch of its own.
    private func retireEnded(_ batches: [ThreadBatch]) {
        let ended = batches.filter { b in
            b.threadEnded.load(ordering: .acquiring) && b.heldIndex.count == 0 && b.pending.withLock { $0.lines == 0 }
        }
        guard !ended.isEmpty else { return }
        registry.withLock { r in
            for b in ended {
                b.pending.withLock { p in
                    r.retiredAccepted += p.accepted
                    r.retiredDropped += p.dropped
                }
            }
            r.batches.removeAll { b in ended.contains { $0 === b } }
        }
    }

    private func reopenFile() {
        guard path != "-", !path.isEmpty else { return }
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
        defer { if let t = tap.withLock({ $0 }) { t.body(raw) } }
        let f = fd.load(ordering: .acquiring)
        var off = 0
        while f >= 0, off < raw.count {
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

/// The thread-specific value holding a thread's batch: released when its thread ends, and
/// then marks the batch so the writer can let it go after its last lines are written.
final class BatchOwner: Sendable {
    let batch: ThreadBatch
    init(_ batch: ThreadBatch) { self.batch = batch }
    deinit { batch.threadEnded.store(true, ordering: .releasing) }
}

/// One answering thread's pending lines. The thread appends under `pending`'s lock; the
/// writer swaps the filled buffer for `spare` under the same lock and writes it outside.
final class ThreadBatch: @unchecked Sendable {
    // @unchecked: `spare`, `spareIndex`, `held` and `heldIndex` are touched only by the writer,
    // inside `QueryLogWriter.flushing`.
    struct Pending: ~Copyable {
        /// Finished lines, newlines included, one after another.
        var sink = ByteSink(capacity: 64 * 1024)
        /// Each line's stamp and where it ends in `sink`.
        var index = LineIndex()
        /// Lines in `sink`.
        var lines = 0
        /// The stamp of the last line appended (stamps of one thread never go back).
        var lastStamp: UInt64 = 0
        var accepted: UInt64 = 0
        var dropped: UInt64 = 0
        /// Set by the final flush: a record that comes later cannot be written any more, so it
        /// is dropped and counted rather than accepted and lost.
        var closed = false
        /// The date and time of the second last written (most lines share it).
        var dates = DateCache()
    }

    let pending = Mutex(Pending())
    /// Its thread ended: no line will be added any more.
    let threadEnded = Atomic<Bool>(false)
    /// The buffer taken by the last swap (the lines being written), kept for the next swap.
    var spare = ByteSink(capacity: 64 * 1024)
    var spareIndex = LineIndex()
    /// Lines taken by an earlier swap but stamped after that flush's cut: written first by a
    /// later flush. Usually empty.
    var held = ByteSink(capacity: 1024)
    var heldIndex = LineIndex()

    /// The lines of `held` then of `spare` stamped before `cut`: the runs this flush writes.
    func runs(before cut: UInt64) -> [LineRun] {
        [LineRun(held.base, heldIndex, count: heldIndex.count(before: cut)),
         LineRun(spare.base, spareIndex, count: spareIndex.count(before: cut))]
    }

    /// After the write: the lines stamped at or after `cut` become `held` (in order), and
    /// `spare` is empty again for the next swap.
    func keepUnwritten(before cut: UInt64) {
        let heldWritten = heldIndex.count(before: cut)
        if heldWritten > 0 { heldIndex.dropFirst(heldWritten, of: &held) }
        let spareWritten = spareIndex.count(before: cut)
        if spareWritten < spareIndex.count {
            let from = spareIndex.start(spareWritten)
            let shift = held.count - from
            held.append(contentsOf: UnsafeBufferPointer(start: spare.base + from, count: spare.count - from))
            for i in spareWritten..<spareIndex.count {
                heldIndex.append(stamp: spareIndex.stamps[i], end: spareIndex.ends[i] + shift)
            }
        }
        spare.count = 0
        spareIndex.count = 0
    }
}

/// Per line of a batch buffer: its stamp and the offset where it ends. Grows as needed and
/// keeps its memory (a steady load allocates nothing). Not copyable: owns its memory.
struct LineIndex: ~Copyable {
    private(set) var stamps: UnsafeMutablePointer<UInt64>
    private(set) var ends: UnsafeMutablePointer<Int>
    private var capacity: Int
    var count = 0

    init(capacity: Int = 1024) {
        self.capacity = capacity
        stamps = .allocate(capacity: capacity)
        ends = .allocate(capacity: capacity)
    }

    deinit {
        stamps.deallocate()
        ends.deallocate()
    }

    @inline(__always)
    mutating func append(stamp: UInt64, end: Int) {
        if count == capacity { grow() }
        stamps[count] = stamp
        ends[count] = end
        count += 1
    }

    private mutating func grow() {
        let c = capacity * 2
        let s = UnsafeMutablePointer<UInt64>.allocate(capacity: c)
        let e = UnsafeMutablePointer<Int>.allocate(capacity: c)
        s.moveInitialize(from: stamps, count: count)
        e.moveInitialize(from: ends, count: count)
        stamps.deallocate()
        ends.deallocate()
        stamps = s
        ends = e
        capacity = c
    }

    /// Where line `i` starts.
    @inline(__always) func start(_ i: Int) -> Int { i == 0 ? 0 : ends[i - 1] }

    /// How many lines, from the first, are stamped before `cut` (the stamps are sorted).
    func count(before cut: UInt64) -> Int {
        if count == 0 || stamps[count - 1] < cut { return count }
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if stamps[mid] < cut { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Removes the first `n` lines from `sink` and from the index, moving the rest to the front.
    mutating func dropFirst(_ n: Int, of sink: inout ByteSink) {
        let cutAt = ends[n - 1]
        let rest = sink.count - cutAt
        if rest > 0 { sink.base.update(from: sink.base + cutAt, count: rest) }
        sink.count = rest
        for i in n..<count {
            stamps[i - n] = stamps[i]
            ends[i - n] = ends[i] - cutAt
        }
        count -= n
    }
}

/// The first `count` lines of one batch buffer, as the merge reads them: pointers into the
/// batch's buffer and index, valid while the writer holds `flushing` and changes neither.
struct LineRun {
    let base: UnsafePointer<UInt8>
    let stamps: UnsafePointer<UInt64>
    let ends: UnsafePointer<Int>
    let count: Int

    init(_ base: UnsafeMutablePointer<UInt8>, _ index: borrowing LineIndex, count: Int) {
        self.base = UnsafePointer(base)
        self.stamps = UnsafePointer(index.stamps)
        self.ends = UnsafePointer(index.ends)
        self.count = count
    }

    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        body(UnsafeBufferPointer(start: base, count: count == 0 ? 0 : ends[count - 1]))
    }
}

/// The writer's buffer for lines of several threads merged by stamp. Used only by the writer,
/// inside `QueryLogWriter.flushing`.
final class MergeBuffer: @unchecked Sendable {
    var sink = ByteSink(capacity: 64 * 1024)

    /// Copies the lines of `runs` into `sink` in stamp order (each run is sorted; a tie goes to
    /// the earlier run). Consecutive lines of one run are copied together. Returns the lines.
    func merge(_ runs: [LineRun]) -> Int {
        var next = [Int](repeating: 0, count: runs.count)
        var total = 0
        while true {
            // The run whose next line is oldest, and the oldest next line of the others.
            var best = -1, second = UInt64.max
            for r in runs.indices where next[r] < runs[r].count {
                let s = runs[r].stamps[next[r]]
                if best < 0 || s < runs[best].stamps[next[best]] {
                    if best >= 0 { second = min(second, runs[best].stamps[next[best]]) }
                    best = r
                } else {
                    second = min(second, s)
                }
            }
            if best < 0 { return total }
            let run = runs[best]
            let first = next[best]
            var last = first + 1
            while last < run.count && run.stamps[last] <= second { last += 1 }
            let from = first == 0 ? 0 : run.ends[first - 1]
            sink.append(contentsOf: UnsafeBufferPointer(start: run.base + from, count: run.ends[last - 1] - from))
            total += last - first
            next[best] = last
        }
    }
}
