/// A domain name held as lower-cased, uncompressed wire bytes ending with the root label.
///
/// Lower-casing once at construction makes equality, hashing and suffix matching plain
/// byte operations (RFC 4343: DNS names compare case-insensitively). The case a client
/// used is never needed here: replies echo the question bytes the client sent (P3).
public struct DNSName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Lower-cased wire form: length-prefixed labels, then a 0 byte.
    public let wire: [UInt8]

    public static let root = DNSName(uncheckedWire: [0])
    public static let maxWireLength = 255
    public static let maxLabelLength = 63

    /// Wire bytes that are already validated and lower-cased (internal fast path).
    public init(uncheckedWire: [UInt8]) { self.wire = uncheckedWire }

    public static func == (a: DNSName, b: DNSName) -> Bool { a.wire == b.wire }

    /// The bytes in one call: the synthesized hash feeds the array to the hasher a byte at a
    /// time, which was 6% of loading a million-record zone set.
    public func hash(into hasher: inout Hasher) {
        wire.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    /// Wire bytes already validated as an uncompressed name (`WireReader.scanUncompressedName`),
    /// copied and lower-cased.
    @usableFromInline
    init(lowerCasingName validated: UnsafeRawBufferPointer) {
        let length = validated.count
        wire = [UInt8](unsafeUninitializedCapacity: length) { buf, initialized in
            for k in 0..<length { buf[k] = asciiLower(validated[k]) }
            initialized = length
        }
    }

    /// Validates wire bytes (uncompressed) and lower-cases them.
    ///
    /// The loop runs over a buffer pointer (non-contiguous input is copied first): this
    /// initializer is called across modules, where a generic loop is not specialized and each
    /// byte went through an iterator witness (10% of loading a million-record zone set).
    public init(wire bytes: some Collection<UInt8>) throws(DNSNameError) {
        if let result = bytes.withContiguousStorageIfAvailable({ DNSName.validated($0) }) {
            self.wire = try result.get()
            return
        }
        self.wire = try DNSName.validated(Array(bytes)[...])
    }

    /// The lower-cased copy of an uncompressed wire name, or why it is not one.
    private static func validated(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<[UInt8], DNSNameError> {
        let n = bytes.count
        // Every write below is at an index <= 253 (the length check comes first), and a valid
        // name is exactly `n` bytes long, so this is both enough room and the final size.
        var out = [UInt8](repeating: 0, count: min(n, maxWireLength + 1))
        var i = 0
        while true {
            guard i < n else { return .failure(.truncated) }
            let len = Int(bytes[i])
            if len == 0 {
                guard i + 1 == n else { return .failure(.trailingBytes) }
                return .success(out)
            }
            // Checked in this order: label length, then truncation, then total length.
            guard len <= maxLabelLength else { return .failure(.labelTooLong) }
            guard i + len < n else { return .failure(.truncated) }
            guard i + len + 2 <= maxWireLength else { return .failure(.nameTooLong) }
            out[i] = UInt8(len)
            for j in (i + 1)...(i + len) { out[j] = asciiLower(bytes[j]) }
            i += len + 1
        }
    }

    private static func validated(_ bytes: ArraySlice<UInt8>) throws(DNSNameError) -> [UInt8] {
        try bytes.withUnsafeBufferPointer { validated($0) }.get()
    }

    /// Parses presentation format: `www.example.com`, `www.example.com.`, `.` for the root.
    /// Backslash escapes (`\.`, `\DDD`) are understood. Relative and absolute are the same here:
    /// every name in vpcdns's configuration is absolute.
    public init(_ text: String) throws(DNSNameError) {
        if text == "." { self = .root; return }
        if text.isEmpty { throw .empty }
        var out: [UInt8] = []
        var label: [UInt8] = []
        var bytes = Array(text.utf8)
        if bytes.last == UInt8(ascii: ".") && !(bytes.count >= 2 && bytes[bytes.count - 2] == UInt8(ascii: "\\")) {
            bytes.removeLast()
        }
        var i = 0
        func flush() throws(DNSNameError) {
            guard !label.isEmpty else { throw .emptyLabel }
            guard label.count <= DNSName.maxLabelLength else { throw .labelTooLong }
            out.append(UInt8(label.count))
            out.append(contentsOf: label)
            label.removeAll(keepingCapacity: true)
        }
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: ".") {
                try flush()
                i += 1
            } else if c == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count else { throw .badEscape }
                let d = bytes[i + 1]
                if d >= 48 && d <= 57 {
                    guard i + 3 < bytes.count else { throw .badEscape }
                    let digits = bytes[(i + 1)...(i + 3)]
                    guard digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { throw .badEscape }
                    let v = digits.reduce(0) { $0 * 10 + Int($1 - 48) }
                    guard v <= 255 else { throw .badEscape }
                    label.append(asciiLower(UInt8(v)))
                    i += 4
                } else {
                    label.append(asciiLower(d))
                    i += 2
                }
            } else {
                label.append(asciiLower(c))
                i += 1
            }
        }
        try flush()
        out.append(0)
        guard out.count <= DNSName.maxWireLength else { throw .nameTooLong }
        self.wire = out
    }

    /// Number of labels, not counting the root.
    public var labelCount: Int {
        var n = 0, i = 0
        while wire[i] != 0 { n += 1; i += Int(wire[i]) + 1 }
        return n
    }

    /// The labels from left to right, without the root.
    public var labels: [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var i = 0
        while wire[i] != 0 {
            let len = Int(wire[i])
            out.append(wire[(i + 1)..<(i + 1 + len)])
            i += len + 1
        }
        return out
    }

    public var isRoot: Bool { wire.count == 1 }

    /// True when the first label is `*`.
    public var isWildcard: Bool { wire.count >= 2 && wire[0] == 1 && wire[1] == UInt8(ascii: "*") }

    /// `*.self`: the wildcard that covers names below this one.
    public var wildcardChild: DNSName? {
        guard wire.count + 2 <= DNSName.maxWireLength else { return nil }
        return DNSName(uncheckedWire: [1, UInt8(ascii: "*")] + wire)
    }

    /// The name with its first label removed; nil for the root.
    public var parent: DNSName? {
        guard !isRoot else { return nil }
        return DNSName(uncheckedWire: Array(wire[(Int(wire[0]) + 1)...]))
    }

    /// `self` equals `other` or lies below it.
    public func isSubdomain(of other: DNSName) -> Bool {
        if other.wire.count > wire.count { return false }
        // Walk label boundaries of self until the remaining suffix has other's length.
        var i = 0
        while wire.count - i > other.wire.count { i += Int(wire[i]) + 1 }
        guard wire.count - i == other.wire.count else { return false }
        return wire[i...].elementsEqual(other.wire)
    }

    /// `label.self`.
    public func prepending(_ label: String) throws(DNSNameError) -> DNSName {
        let l = Array(label.utf8).map(asciiLower)
        guard !l.isEmpty else { throw .emptyLabel }
        guard l.count <= DNSName.maxLabelLength else { throw .labelTooLong }
        guard wire.count + l.count + 1 <= DNSName.maxWireLength else { throw .nameTooLong }
        return DNSName(uncheckedWire: [UInt8(l.count)] + l + wire)
    }

    /// Presentation form with a trailing dot (`www.example.com.`).
    public var description: String { isRoot ? "." : text + "." }

    /// Presentation form without the trailing dot (`www.example.com`), `.` for the root.
    public var text: String {
        if isRoot { return "." }
        var s = ""
        s.reserveCapacity(wire.count)
        var first = true
        for label in labels {
            if !first { s.append(".") }
            first = false
            for b in label { appendEscaped(b, to: &s) }
        }
        return s
    }

    /// Canonical DNS order (RFC 4034 §6.1): by labels from the right.
    public static func < (a: DNSName, b: DNSName) -> Bool {
        a.canonicalOrderKey.lexicographicallyPrecedes(b.canonicalOrderKey)
    }

    /// Bytes whose plain lexicographic order is the canonical DNS order: the labels from
    /// right to left, each followed by a 0. Sorting many names by this key costs one array
    /// per name instead of several per comparison.
    public var canonicalOrderKey: [UInt8] {
        var starts: [Int] = []
        var i = 0
        while wire[i] != 0 {
            starts.append(i)
            i += Int(wire[i]) + 1
        }
        var key: [UInt8] = []
        key.reserveCapacity(wire.count)
        for s in starts.reversed() {
            key.append(contentsOf: wire[(s + 1)..<(s + 1 + Int(wire[s]))])
            key.append(0)
        }
        return key
    }
}

public enum DNSNameError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty, emptyLabel, labelTooLong, nameTooLong, badEscape, truncated, trailingBytes
    public var description: String {
        switch self {
        case .empty: "empty name"
        case .emptyLabel: "empty label (two dots in a row?)"
        case .labelTooLong: "a label is longer than 63 characters"
        case .nameTooLong: "name is longer than 255 octets"
        case .badEscape: "bad backslash escape"
        case .truncated: "truncated name"
        case .trailingBytes: "bytes after the root label"
        }
    }
}

@inline(__always)
public func asciiLower(_ b: UInt8) -> UInt8 { (b >= 65 && b <= 90) ? b | 0x20 : b }

@inline(__always)
func appendEscaped(_ b: UInt8, to s: inout String) {
    switch b {
    case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: ";"),
         UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "@"), UInt8(ascii: "$"):
        s.append("\\"); s.unicodeScalars.append(Unicode.Scalar(b))
    case 0x21...0x7e:
        s.unicodeScalars.append(Unicode.Scalar(b))
    default:
        let d = String(b)
        s.append("\\" + String(repeating: "0", count: 3 - d.count) + d)
    }
}
