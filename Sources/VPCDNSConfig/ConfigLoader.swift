import Foundation
import VPCDNSCore
import Yams

/// Loads `vpcdns.yaml` (and its zone files) into a validated `Model`, collecting every
/// error rather than stopping at the first, so one `check` run shows all of them.
public enum ConfigLoader {
    public static let defaultPath = "config/vpcdns.yaml"

    public static func load(path: String) -> Result<LoadedConfig, ConfigErrors> {
        switch readText(path) {
        case .success(let text): return load(yaml: text, path: path)
        case .failure(let why):
            return .failure(ConfigErrors(errors: [Diagnostic(file: path, line: 1, key: "-", message: why.message)], warnings: []))
        }
    }

    struct ReadFailure: Error { let message: String }

    /// The file as UTF-8 text, through POSIX calls so that the reason of a failure is the real
    /// one: a server out of descriptors (EMFILE, ENFILE) must say so on reload, not blame the
    /// file's encoding or permissions.
    static func readText(_ path: String) -> Result<String, ReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure(message: why(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(message: why(errno)))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(ReadFailure(message: "cannot read the file: not UTF-8 text"))
        }
        return .success(text)
    }

    static func why(_ code: Int32) -> String {
        switch code {
        case ENOENT: "no such file"
        case EMFILE, ENFILE:
            "cannot open the file: too many open files (\(code == EMFILE ? "EMFILE: this process" : "ENFILE: the system") is out of file descriptors)"
        case EACCES: "cannot read the file: permission denied"
        default: "cannot read the file: \(String(cString: strerror(code)))"
        }
    }

    /// `path` is used for messages and to resolve the relative paths inside the file.
    public static func load(yaml: String, path: String) -> Result<LoadedConfig, ConfigErrors> {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            return .failure(ConfigErrors(errors: [syntaxError(error, yaml: yaml, path: path)], warnings: []))
        }
        let reader = YAMLReader(file: path)
        let parsed = ModelBuilder(reader: reader, configPath: path).build(root: root)
        Validation(reader: reader, parsed: parsed).run()
        Warnings(reader: reader, parsed: parsed).run()
        let warnings = sorted(reader.warnings)
        guard reader.errors.isEmpty else {
            return .failure(ConfigErrors(errors: sorted(reader.errors), warnings: warnings))
        }
        let model = Model(settings: parsed.settings, vpcs: parsed.vpcs.map(\.value), endpoints: parsed.endpoints.map(\.value),
                          endpointServices: parsed.services.map(\.value), hostedZones: parsed.zones.map(\.zone),
                          healthChecks: parsed.healthChecks.map(\.value))
        return .success(LoadedConfig(model: model, warnings: warnings, path: path, keyLines: reader.lines))
    }

    /// The config file's problems first, in line order; zone files after, by path and line.
    static func sorted(_ ds: [Diagnostic]) -> [Diagnostic] {
        ds.enumerated().sorted { a, b in
            let (x, y) = (a.element, b.element)
            if x.file != y.file { return x.file < y.file }
            if x.line != y.line { return x.line < y.line }
            return a.offset < b.offset
        }.map(\.element)
    }

    /// `FILE:LINE: -: message` for a YAML syntax error (no key path exists yet).
    static func syntaxError(_ error: Error, yaml: String, path: String) -> Diagnostic {
        var line = 1
        var message = "\(error)"
        if let e = error as? YamlError {
            switch e {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                 .composer(let context, let problem, let mark, _):
                line = mark.line
                message = "YAML syntax error: " + problem + (context.map { " (\($0.text) at line \($0.mark.line))" } ?? "")
            case .reader(let problem, let offset, _, _):
                if let offset { line = yaml.utf8.prefix(offset).filter { $0 == UInt8(ascii: "\n") }.count + 1 }
                message = "cannot read YAML: \(problem)"
            case .duplicatedKeysInMapping(let duplicates, let context):
                line = context.mark.line
                message = "duplicate key(s) \(duplicates.sorted().joined(separator: ", "))"
            default:
                message = "YAML error: \(e)"
            }
        }
        // libyaml ends the stream on a line of its own, so an error found at the end of the
        // input points one past the last line; point at the last line instead (O4: a line
        // an editor can jump to).
        return Diagnostic(file: path, line: min(max(line, 1), lineCount(yaml)), key: "-", message: message)
    }

    /// The lines of `text` as YAML (libyaml) counts them: CR LF, CR, LF, NEL, LS and PS each
    /// end a line; at least 1, and a final line break opens none.
    static func lineCount(_ text: String) -> Int {
        var lines = 1
        var previousCR = false
        var endsWithBreak = false
        for s in text.unicodeScalars {
            switch s {
            case "\r": lines += 1
            case "\n": if !previousCR { lines += 1 }
            case "\u{85}", "\u{2028}", "\u{2029}": lines += 1
            default: break
            }
            previousCR = s == "\r"
            endsWithBreak = ["\r", "\n", "\u{85}", "\u{2028}", "\u{2029}"].contains(s)
        }
        return max(1, lines - (endsWithBreak ? 1 : 0))
    }
}
