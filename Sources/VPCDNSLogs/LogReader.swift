/// Reports bad lines as `FILE:LINE: bad record: why`, at most `cap` per file, then one line
/// `FILE: N bad line(s) in all` for every file that had any.
public final class BadLineReporter {
    public let cap: Int
    let write: (String) -> Void
    public private(set) var total = 0
    /// Bad lines per file, in the order the files were read.
    public private(set) var perFile: [(path: String, count: Int)] = []
    private var current = 0

    public init(cap: Int = 20, write: @escaping (String) -> Void) {
        self.cap = cap
        self.write = write
    }

    func begin(_ path: String) {
        perFile.append((path, 0))
        current = 0
    }

    func report(_ path: String, line: Int, _ why: BadRecord) {
        current += 1
        total += 1
        perFile[perFile.count - 1].count = current
        if current <= cap { write("\(path):\(line): bad record: \(why.why)\n") }
    }

    func end(_ path: String) {
        if current > 0 {
            write("\(path): \(current) bad line(s) in all\n")
        }
    }
}

/// What reading a set of files came to.
public struct LogReadResult: Sendable {
    public var records = 0
    public var badLines = 0
    /// Files that could not be opened or read to the end (the run goes on without them).
    public var errors: [LogFileError] = []
}

/// Reads files in order, passing every good record on and every bad line to the reporter.
public enum LogReader {
    public static func read(paths: [String], bad: BadLineReporter, _ body: (LogRecord) -> Void) -> LogReadResult {
        var result = LogReadResult()
        for path in paths {
            bad.begin(path)
            do {
                try LogFile.forEachLine(path: path) { lineNo, bytes in
                    switch LogRecord.parse(bytes) {
                    case .success(let r):
                        result.records += 1
                        body(r)
                    case .failure(let why):
                        result.badLines += 1
                        bad.report(path, line: lineNo, why)
                    }
                }
            } catch {
                result.errors.append(error)
            }
            bad.end(path)
        }
        return result
    }
}

extension LogReader {
    /// Reads files and passes on the records `keep` accepts ordered by time
    /// (`LogRecord.orderMicros`); records with the same time keep the order of the files as given
    /// and, within a file, of their lines. One file is streamed as `read` does it.
    ///
    /// Why collect and sort rather than a k-way merge: a file is ordered only per client, not
    /// globally (a replica writes a record when the answer is sent, so a query held up by a slow
    /// upstream is written after faster queries that arrived later, up to the upstream timeout
    /// apart). A merge with a reorder window is right only if the window covers the worst such
    /// delay, which no reader can know; a wrong guess prints records out of order without any
    /// sign. Sorting is right for every input, and what it holds is only the records `keep`
    /// accepts (the ones that will be printed anyway), so a filtered read of big files stays
    /// small; an unfiltered merge holds all records, as `jq -s 'sort_by(...)'` did.
    public static func readMerged(paths: [String], bad: BadLineReporter, keep: (LogRecord) -> Bool,
                                  _ body: (LogRecord) -> Void) -> LogReadResult {
        if paths.count <= 1 {
            return read(paths: paths, bad: bad) { r in if keep(r) { body(r) } }
        }
        var kept: [(time: Int64, record: LogRecord)] = []
        let result = read(paths: paths, bad: bad) { r in
            if keep(r) { kept.append((r.orderMicros, r)) }
        }
        // The sort is not stable; the index breaks ties in reading order.
        var order = Array(kept.indices)
        order.sort { a, b in
            kept[a].time != kept[b].time ? kept[a].time < kept[b].time : a < b
        }
        for i in order { body(kept[i].record) }
        return result
    }
}
