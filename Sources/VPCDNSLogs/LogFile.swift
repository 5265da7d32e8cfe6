import CZlib
import Foundation

/// A query-log file that could not be opened or read to its end.
public struct LogFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}

/// Reads one log file line by line, streaming: plain JSON Lines or gzip (one member or several
/// concatenated, as `cat a.gz b.gz` makes them), recognised by the magic bytes 1f 8b and not by
/// the file's name. Only one chunk and the current partial line are held in memory.
public enum LogFile {
    public static let chunkSize = 1 << 18

    /// True when the file starts with the gzip magic bytes.
    public static func isGzip(path: String) -> Bool {
        guard let f = fopen(path, "rb") else { return false }
        defer { fclose(f) }
        var magic: [UInt8] = [0, 0]
        return fread(&magic, 1, 2, f) == 2 && magic == [0x1f, 0x8b]
    }

    /// Calls `body` with each line (1-based number, bytes without the newline and without a
    /// trailing CR). A last line without a newline is passed too; empty lines are not.
    public static func forEachLine(path: String, _ body: (Int, UnsafeBufferPointer<UInt8>) -> Void) throws(LogFileError) {
        var st = stat()
        if stat(path, &st) != 0 {
            throw LogFileError(path: path, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw LogFileError(path: path, message: "cannot open: is a directory")
        }
        // zlib reads gzip members (and their concatenations) and passes anything that does not
        // start with the gzip magic through unchanged ("transparent" mode): the detection is by
        // content, exactly as `isGzip` does it.
        guard let gz = gzopen(path, "rb") else {
            throw LogFileError(path: path, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { gzclose(gz) }
        gzbuffer(gz, UInt32(chunkSize))

        var pending: [UInt8] = []   // the start of a line split across chunks
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var lineNo = 0

        func emit(_ p: UnsafeBufferPointer<UInt8>) {
            lineNo += 1
            var n = p.count
            if n > 0 && p[n - 1] == 13 { n -= 1 }
            if n == 0 { return }
            body(lineNo, UnsafeBufferPointer(rebasing: p[0..<n]))
        }

        while true {
            let got = chunk.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32(chunkSize)) }
            if got < 0 {
                var errnum: Int32 = 0
                let msg = gzerror(gz, &errnum).map { String(cString: $0) } ?? "read error"
                throw LogFileError(path: path, message: "read error after line \(lineNo): \(errnum == Z_ERRNO ? String(cString: strerror(errno)) : msg)")
            }
            if got == 0 { break }
            chunk.withUnsafeBufferPointer { buf in
                let base = buf.baseAddress!
                var start = 0
                let end = Int(got)
                while start < end {
                    guard let nl = memchr(base + start, 10, end - start) else {
                        pending.append(contentsOf: UnsafeBufferPointer(start: base + start, count: end - start))
                        return
                    }
                    let i = base.distance(to: nl.assumingMemoryBound(to: UInt8.self))
                    if pending.isEmpty {
                        emit(UnsafeBufferPointer(start: base + start, count: i - start))
                    } else {
                        pending.append(contentsOf: UnsafeBufferPointer(start: base + start, count: i - start))
                        pending.withUnsafeBufferPointer { emit($0) }
                        pending.removeAll(keepingCapacity: true)
                    }
                    start = i + 1
                }
            }
        }
        if !pending.isEmpty { pending.withUnsafeBufferPointer { emit($0) } }
        // A truncated gzip stream ends the reads with an error flag instead of -1.
        var errnum: Int32 = 0
        let msg = gzerror(gz, &errnum)
        if errnum != Z_OK {
            throw LogFileError(path: path, message: "read error after line \(lineNo): \(msg.map { String(cString: $0) } ?? "corrupt data")")
        }
    }
}
