import DNSWire
import LDNSKit
import VPCDNSConfig
import VPCDNSCore

/// Load-time input: the same bytes as a `vpcdns.yaml` (`ConfigLoader.load(yaml:path:)`) and
/// as zone-file text (`ZoneFile.parse`, libldns underneath). Never a trap; every error is a
/// `Diagnostic` / `ZoneFileError` with a line ≥ 0 that exists in the text. A configuration
/// that loads is handed to `Resolver(model:)` and asked a few questions.
public enum ConfigHarness {
    /// Relative zone-file paths in the YAML resolve against the example's folder.
    public static var configPath: String { FuzzPaths.repoRoot + "/config/fuzz.yaml" }
    static let origin = try! DNSName("fuzz.internal")
    static let probes: [Question] = ["myservice.internal", "www.fuzz.internal", "ec2.us-west-2.amazonaws.com", "example.com"]
        .map { Question(name: try! DNSName($0), type: .a) }

    public static func run(_ data: UnsafeRawBufferPointer) -> [String] {
        var problems: [String] = []
        let text = String(decoding: data, as: UTF8.self)
        let yamlLines = yamlLineCount(text)
        // libldns counts LF only.
        let lines = text.utf8.reduce(1) { $0 + ($1 == 10 ? 1 : 0) }

        switch ConfigLoader.load(yaml: text, path: configPath) {
        case .success(let loaded):
            let r = Resolver(model: loaded.model)
            for vpc in loaded.model.vpcs.indices {
                for q in probes { _ = r.resolve(q, vpcIndex: vpc, via: .resolverAddress, explain: true) }
            }
        case .failure(let errors):
            if errors.errors.isEmpty { problems.append("config rejected without an error") }
            for d in errors.errors + errors.warnings {
                if d.line < 0 { problems.append("diagnostic with line \(d.line): \(d)") }
                if d.file == configPath, d.line > yamlLines { problems.append("diagnostic past the last line (\(lines)): \(d)") }
                if d.message.isEmpty { problems.append("diagnostic without a message: \(d)") }
            }
        }

        do {
            let records = try ZoneFile.parse(text: text, origin: origin, path: "fuzz.zone")
            for r in records {
                if r.line < 1 || r.line > lines { problems.append("record at line \(r.line) of \(lines)") }
                _ = RDataFormatter.presentation(type: r.record.type, rdata: r.record.rdata)
                _ = RecordText.presentation(r.record)
            }
        } catch {
            if error.line < 0 || error.line > lines { problems.append("zone error at line \(error.line) of \(lines): \(error)") }
            if error.path != "fuzz.zone" { problems.append("zone error names \(error.path)") }
        }
        return problems
    }

    /// Lines as YAML counts them (an oracle written apart from ConfigLoader's): CR LF, CR,
    /// LF, NEL, LS, PS end a line; a final line break opens none; at least 1.
    static func yamlLineCount(_ text: String) -> Int {
        let scalars = Array(text.unicodeScalars)
        var lines = 1
        for (i, s) in scalars.enumerated() {
            let isBreak = s == "\r" || (s == "\n" && (i == 0 || scalars[i - 1] != "\r")) || s == "\u{85}" || s == "\u{2028}" || s == "\u{2029}"
            if isBreak { lines += 1 }
        }
        if let last = scalars.last, ["\r", "\n", "\u{85}", "\u{2028}", "\u{2029}"].contains(last) { lines -= 1 }
        return max(1, lines)
    }
}
