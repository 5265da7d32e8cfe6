import Foundation

/// One AWS CLI output file, parsed.
struct JSONFile {
    let path: String
    let object: [String: Any]
}

/// A problem that stops the import: malformed JSON (`FILE:LINE: message`), an unreadable
/// path, a region that cannot be told, an option naming nothing.
public struct ImportError: Error, CustomStringConvertible, Equatable {
    public let file: String?
    public let line: Int?
    public let message: String

    public init(file: String?, line: Int? = nil, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        switch (file, line) {
        case let (f?, l?): return "\(f):\(l): \(message)"
        case let (f?, nil): return "\(f): \(message)"
        default: return message
        }
    }
}

enum JSONFiles {
    /// Every `*.json` below the given files and folders (folders read recursively, sorted
    /// so that pages merge in a stable order).
    static func collect(_ paths: [String]) throws(ImportError) -> [String] {
        var out: [String] = []
        let fm = FileManager.default
        for p in paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: p, isDirectory: &isDir) else {
                throw ImportError(file: p, message: "no such file or folder")
            }
            if !isDir.boolValue { out.append(p); continue }
            guard let e = fm.enumerator(atPath: p) else { throw ImportError(file: p, message: "cannot read the folder") }
            var found: [String] = []
            while let rel = e.nextObject() as? String {
                guard rel.hasSuffix(".json") else { continue }
                let full = (p as NSString).appendingPathComponent(rel)
                var d: ObjCBool = false
                if fm.fileExists(atPath: full, isDirectory: &d), !d.boolValue { found.append(full) }
            }
            out += found.sorted()
        }
        return out
    }

    /// Parses one file; malformed JSON is an error with the line of the first bad byte.
    static func read(_ path: String) throws(ImportError) -> JSONFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImportError(file: path, message: "cannot read the file")
        }
        // The strict pass first: Foundation's parser tolerates some malformed JSON (a trailing
        // comma) that the AWS CLI never prints, and reports no line when it does fail.
        if let (line, message) = JSONValidator.firstError(in: [UInt8](data)) {
            throw ImportError(file: path, line: line, message: message)
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw ImportError(file: path, line: 1, message: "malformed JSON: \(error.localizedDescription)")
        }
        guard let object = parsed as? [String: Any] else {
            throw ImportError(file: path, line: 1, message: "expected a JSON object (the AWS CLI's --output json), found \(describe(parsed))")
        }
        return JSONFile(path: path, object: object)
    }

    private static func describe(_ v: Any) -> String {
        if v is [Any] { return "an array" }
        if v is String { return "a string" }
        if v is NSNull { return "null" }
        return "a scalar"
    }
}

/// A small validating pass over JSON text that finds where it goes wrong, because
/// Foundation's parser reports no position on every platform. It builds no values.
struct JSONValidator {
    private let bytes: [UInt8]
    private var i = 0
    private struct Failure: Error { let offset: Int; let message: String }

    /// (line, message) of the first error, or nil when the text is valid JSON.
    static func firstError(in bytes: [UInt8]) -> (Int, String)? {
        var v = JSONValidator(bytes: bytes)
        do {
            v.skipSpace()
            try v.value(depth: 0)
            v.skipSpace()
            if v.i < bytes.count { throw Failure(offset: v.i, message: "unexpected \(v.show(v.i)) after the JSON value") }
            return nil
        } catch let f as Failure {
            let line = 1 + bytes[..<min(f.offset, bytes.count)].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
            return (line, f.message)
        } catch {
            return (1, "malformed JSON")
        }
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func show(_ at: Int) -> String {
        guard at < bytes.count else { return "end of file" }
        let b = bytes[at]
        if b >= 0x21 && b < 0x7F { return "'\(Character(UnicodeScalar(b)))'" }
        return String(format: "byte 0x%02X", b)
    }

    private mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
    }

    private mutating func expect(_ c: UInt8, _ what: String) throws {
        skipSpace()
        guard i < bytes.count, bytes[i] == c else { throw Failure(offset: i, message: "expected \(what), found \(show(i))") }
        i += 1
    }

    private mutating func value(depth: Int) throws {
        guard depth < 512 else { throw Failure(offset: i, message: "nested too deeply") }
        skipSpace()
        guard i < bytes.count else { throw Failure(offset: i, message: "unexpected end of file, expected a value") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1; skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else {
                    throw Failure(offset: i, message: "expected a quoted key, found \(show(i))")
                }
                try string()
                try expect(UInt8(ascii: ":"), "':' after the key")
                try value(depth: depth + 1)
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "}"), "',' or '}'")
                return
            }
        case UInt8(ascii: "["):
            i += 1; skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return }
            while true {
                try value(depth: depth + 1)
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "]"), "',' or ']'")
                return
            }
        case UInt8(ascii: "\""):
            try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try number()
        default:
            throw Failure(offset: i, message: "unexpected \(show(i)), expected a value")
        }
    }

    private mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else {
            throw Failure(offset: i, message: "unexpected \(show(i)), expected a value")
        }
        i += w.count
    }

    private mutating func number() throws {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        try digits(from: start)
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            try digits(from: start)
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            try digits(from: start)
        }
    }

    /// One or more decimal digits (a number's part); none is an error at the number's `start`.
    private mutating func digits(from start: Int) throws {
        let first = i
        while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
        if i == first { throw Failure(offset: start, message: "malformed number") }
    }

    private mutating func string() throws {
        let start = i
        i += 1
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { i += 1; return }
            if b == UInt8(ascii: "\\") { i += 2; continue }
            if b < 0x20 { throw Failure(offset: i, message: b == 0x0A ? "unterminated string (a line break inside quotes)" : "control character inside a string") }
            i += 1
        }
        throw Failure(offset: start, message: "unterminated string")
    }
}
