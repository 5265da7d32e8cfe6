import DNSWire

/// A hash key over lower-cased wire-name bytes that can be a slice of a longer name.
///
/// The R1 walk looks up every suffix of the query name. With `DNSName` keys each probe
/// would copy the suffix into a new array; with slices of the query's own bytes a probe
/// allocates nothing.
struct NameKey: Hashable, Sendable {
    let bytes: ArraySlice<UInt8>

    init(_ name: DNSName) { bytes = name.wire[...] }
    init(slice: ArraySlice<UInt8>) { bytes = slice }

    static func == (a: NameKey, b: NameKey) -> Bool {
        a.bytes.count == b.bytes.count && a.bytes.elementsEqual(b.bytes)
    }

    func hash(into h: inout Hasher) {
        bytes.withUnsafeBytes { h.combine(bytes: $0) }
    }

    var name: DNSName { DNSName(uncheckedWire: Array(bytes)) }
}
