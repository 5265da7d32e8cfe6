/// `logs filter --table`: one aligned row per record.
public enum RecordTable {
    public static let header = ["TIME", "VPC", "SRCADDR", "NAME", "TYPE", "RCODE", "DECISION", "ANSWERS"]

    public static func row(_ r: LogRecord) -> [String] {
        [r.queryTimestamp, r.vpcID, r.srcAddr ?? "-", r.queryName, r.queryType, r.rcode,
         r.vpcdns?.decision ?? "-", answers(r.answers)]
    }

    /// `10.0.1.10 10.0.2.10`, CNAME targets as `->target`, at most 4 then `(+N)`; `-` when none.
    public static func answers(_ a: [LogAnswer], limit: Int = 4) -> String {
        if a.isEmpty { return "-" }
        var parts = a.prefix(limit).map { $0.type.uppercased() == "CNAME" ? "->" + $0.rdata : $0.rdata }
        if a.count > limit { parts.append("(+\(a.count - limit))") }
        return parts.joined(separator: " ")
    }

    public static func render(_ records: [LogRecord]) -> String {
        TextTable(header: header, rows: records.map(row)).render()
    }
}
