/// One question: the name lower-cased for matching, plus the letter case the sender used.
///
/// Matching is case-insensitive but the reply must echo the question exactly as asked (P3);
/// keeping a `NameCaseMask` beside the lower-cased `DNSName` gives both without a second copy
/// of the name.
public struct DNSQuestion: Hashable, Sendable {
    /// Lower-cased name: the lookup key.
    public var name: DNSName
    public var type: RRType
    public var qclass: RRClass
    /// Which bytes of `name.wire` were upper-case as sent.
    public var caseMask: NameCaseMask

    public init(name: DNSName, type: RRType, qclass: RRClass = .in, caseMask: NameCaseMask = .allLower) {
        self.name = name
        self.type = type
        self.qclass = qclass
        self.caseMask = caseMask
    }

    /// The name's wire bytes exactly as sent (case restored). Allocates; the encoder does not
    /// use it (it restores case while writing).
    public var originalNameWire: [UInt8] {
        if caseMask.isAllLower { return name.wire }
        var out = name.wire
        for i in out.indices where caseMask.isSet(i) { out[i] &= ~0x20 }
        return out
    }

    /// Presentation form as asked, case kept, with a trailing dot: the query log's
    /// `query_name` (`WwW.Example.com.`).
    public var originalNameText: String {
        RDataFormatter.nameText(originalNameWire[...]) ?? "."
    }

    /// Same name (case-insensitively), type and class: how an upstream reply's question is
    /// checked against the query that was sent (P6).
    @inlinable
    public func matches(_ other: DNSQuestion) -> Bool {
        name == other.name && type == other.type && qclass == other.qclass
    }
}
