/// Columns padded to their widest cell, two spaces apart; `right` columns are right-aligned.
public struct TextTable {
    public var rows: [[String]]
    public var right: Set<Int>

    public init(header: [String]? = nil, rows: [[String]] = [], right: Set<Int> = []) {
        self.rows = (header.map { [$0] } ?? []) + rows
        self.right = right
    }

    public func render(indent: String = "") -> String {
        guard let n = rows.map(\.count).max() else { return "" }
        var widths = [Int](repeating: 0, count: n)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for r in rows {
            var line = indent
            for (i, c) in r.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - c.count)
                let last = i == r.count - 1
                if right.contains(i) { line += pad + c } else { line += last ? c : c + pad }
                if !last { line += "  " }
            }
            out += line + "\n"
        }
        return out
    }
}
