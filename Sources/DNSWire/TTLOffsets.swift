/// Where the TTL fields of an encoded message are, so a reply encoded once can be sent again
/// with its TTLs counted down (a cached upstream answer served from bytes).
public enum TTLOffsets {
    /// Byte offsets of the TTL field of every record in the answer, authority and additional
    /// sections, OPT excluded (its "TTL" holds the extended rcode and flags). nil when the
    /// message does not parse as one well-formed DNS message (then it is not reused).
    public static func find(in message: [UInt8]) -> [Int]? {
        message.withUnsafeBufferPointer { find(in: $0) }
    }

    static func find(in m: UnsafeBufferPointer<UInt8>) -> [Int]? {
        guard m.count >= 12 else { return nil }
        func u16(_ at: Int) -> Int { Int(m[at]) << 8 | Int(m[at + 1]) }
        /// The offset after a (possibly compressed) name at `at`, nil if it runs off the end.
        func skipName(_ at: Int) -> Int? {
            var i = at
            while i < m.count {
                let len = m[i]
                if len == 0 { return i + 1 }
                if len & 0xC0 == 0xC0 { return i + 2 <= m.count ? i + 2 : nil }
                guard len & 0xC0 == 0 else { return nil }
                i += 1 + Int(len)
            }
            return nil
        }
        let qd = u16(4), records = u16(6) + u16(8) + u16(10)
        var i = 12
        for _ in 0..<qd {
            guard let end = skipName(i), end + 4 <= m.count else { return nil }
            i = end + 4
        }
        var out: [Int] = []
        out.reserveCapacity(records)
        for _ in 0..<records {
            guard let end = skipName(i), end + 10 <= m.count else { return nil }
            let type = u16(end)
            let rdlength = u16(end + 8)
            if type != 41 { out.append(end + 4) }
            i = end + 10 + rdlength
            guard i <= m.count else { return nil }
        }
        return i == m.count ? out : nil
    }
}
