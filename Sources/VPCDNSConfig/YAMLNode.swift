import Yams

/// Reads a composed YAML tree (`Yams.compose`) key by key, keeping every node's line.
///
/// Plain `Decodable` loses line numbers and silently ignores unknown keys; the contract
/// (config.md) needs both, and needs *all* problems at once, so every accessor records a
/// diagnostic and returns nil instead of throwing.
final class YAMLReader {
    let file: String
    private(set) var errors: [Diagnostic] = []
    private(set) var warnings: [Diagnostic] = []
    /// Line of every key path read (`vpcs[0]`, `vpcs[0].id`), for cross-entry messages.
    private(set) var lines: [String: Int] = [:]

    init(file: String) { self.file = file }

    func error(_ key: String, _ message: String, line: Int? = nil) {
        // The document root has no key path; `-` keeps the FILE:LINE: KEY: shape.
        errors.append(Diagnostic(file: file, line: line ?? self.line(key), key: key.isEmpty ? "-" : key, message: message))
    }

    func warning(_ key: String, _ message: String, line: Int? = nil) {
        warnings.append(Diagnostic(file: file, line: line ?? self.line(key), key: key, message: message, isWarning: true))
    }

    /// Diagnostics from elsewhere (zone files carry their own path and line).
    func append(_ d: Diagnostic) {
        if d.isWarning { warnings.append(d) } else { errors.append(d) }
    }

    func record(_ key: String, _ node: Node) { lines[key] = node.line }

    /// The line of a key path, falling back to its nearest recorded parent.
    func line(_ key: String) -> Int {
        var k = Substring(key)
        while true {
            if let l = lines[String(k)] { return l }
            guard let cut = k.lastIndex(where: { $0 == "." || $0 == "[" }) else { return 1 }
            k = k[..<cut]
        }
    }

    // MARK: - Mappings

    /// Checks that `node` is a mapping whose keys are all in `allowed` (in declaration order,
    /// for suggestions) and returns its values by key. Unknown and duplicate keys are errors.
    func mapping(_ node: Node, at path: String, allowed: [String]) -> [String: Node]? {
        record(path, node)
        guard case .mapping(let map) = node.resolved else {
            error(path, "expected a mapping with keys \(allowed.joined(separator: ", ")), found \(node.kindName)", line: node.line)
            return nil
        }
        var out: [String: Node] = [:]
        for (k, v) in Self.mergingKeys(map) {
            guard let name = k.scalar?.string else {
                error(path, "mapping keys must be plain strings", line: k.line)
                continue
            }
            let keyPath = path.isEmpty ? name : "\(path).\(name)"
            guard allowed.contains(name) else {
                var msg = "unknown key '\(name)'"
                if let s = suggestion(for: name, among: allowed) { msg += "; did you mean '\(s)'?" }
                error(keyPath, msg, line: k.line)
                continue
            }
            if out[name] != nil {
                error(keyPath, "duplicate key '\(name)' (first at line \(line(keyPath)))", line: k.line)
                continue
            }
            out[name] = v
            lines[keyPath] = v.isNullScalar ? k.line : v.line
        }
        return out
    }

    /// YAML merge keys (`<<: *defaults`): Yams.compose keeps them as plain keys, so apply
    /// them here; keys written in the mapping itself win over merged ones.
    static func mergingKeys(_ map: Node.Mapping) -> [(Node, Node)] {
        let own = map.filter { $0.key.scalar?.string != "<<" }
        let ownKeys = Set(own.compactMap { $0.key.scalar?.string })
        var merged: [(Node, Node)] = []
        for (k, v) in map where k.scalar?.string == "<<" {
            let sources: [Node]
            switch v {
            case .mapping: sources = [v]
            case .sequence(let seq): sources = Array(seq)
            default: sources = []
            }
            for case .mapping(let m) in sources {
                for (mk, mv) in m {
                    guard let name = mk.scalar?.string, !ownKeys.contains(name),
                          !merged.contains(where: { $0.0.scalar?.string == name }) else { continue }
                    merged.append((mk, mv))
                }
            }
        }
        return own.map { ($0.key, $0.value) } + merged
    }

    /// The items of a sequence, each with its key path (`vpcs[3]`).
    func sequence(_ node: Node?, at path: String) -> [(Node, String)] {
        guard let node else { return [] }
        if node.isNullScalar { return [] }
        guard case .sequence(let seq) = node.resolved else {
            error(path, "expected a list, found \(node.kindName)", line: node.line)
            return []
        }
        return seq.enumerated().map { i, n in
            let p = "\(path)[\(i)]"
            record(p, n)
            return (n, p)
        }
    }

    // MARK: - Scalars

    func string(_ node: Node?, at path: String) -> String? {
        guard let node else { return nil }
        guard case .scalar(let s) = node.resolved, !node.isNullScalar else {
            error(path, "expected a string, found \(node.kindName)", line: node.line)
            return nil
        }
        return s.string
    }

    func int(_ node: Node?, at path: String, range: ClosedRange<Int>) -> Int? {
        guard let node else { return nil }
        guard case .scalar = node.resolved, let v = node.resolved.int else {
            error(path, "expected an integer, found \(node.kindName)", line: node.line)
            return nil
        }
        guard range.contains(v) else {
            error(path, "\(v) is out of range \(range.lowerBound)...\(range.upperBound)", line: node.line)
            return nil
        }
        return v
    }

    func bool(_ node: Node?, at path: String) -> Bool? {
        guard let node else { return nil }
        guard case .scalar(let s) = node.resolved, let v = Bool.construct(from: s), node.resolved.tagName == Tag.Name.bool else {
            error(path, "expected true or false, found \(node.kindName)", line: node.line)
            return nil
        }
        return v
    }

    /// A list of strings; a single scalar is accepted as a list of one.
    func strings(_ node: Node?, at path: String) -> [(String, String)]? {
        guard let node else { return nil }
        if case .scalar = node.resolved, !node.isNullScalar {
            return string(node, at: path).map { [($0, path)] }
        }
        return sequence(node, at: path).compactMap { n, p in string(n, at: p).map { ($0, p) } }
    }

    /// A string that must be one of `choices` (enums such as `type: FORWARD`).
    func choice<T: RawRepresentable>(_ node: Node?, at path: String, _ type: T.Type, choices: [T]) -> T? where T.RawValue == String {
        guard let text = string(node, at: path) else { return nil }
        if let v = T(rawValue: text) { return v }
        var msg = "'\(text)' is not one of \(choices.map(\.rawValue).joined(separator: ", "))"
        if let s = suggestion(for: text, among: choices.map(\.rawValue)) { msg += "; did you mean '\(s)'?" }
        error(path, msg, line: node?.line)
        return nil
    }

    /// Reports a missing required key at its parent's line.
    func require<T>(_ value: T?, _ node: Node?, at path: String) -> T? {
        if node == nil { error(path, "required key is missing", line: line(parentPath(path))) }
        return value
    }
}

func parentPath(_ path: String) -> String {
    guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { return "" }
    return String(path[..<cut])
}

extension Node {
    /// 1-based line of the node (Yams marks are 1-based).
    var line: Int {
        mark?.line ?? 1
    }

    /// Aliases (`*anchor`) resolved to their node.
    var resolved: Node {
        // Yams.compose already substitutes the anchored node for `*anchor`; kept as one place
        // to change if that ever stops being true.
        self
    }

    /// The resolved YAML tag (plain `true` is bool, quoted `"true"` a string).
    var tagName: Tag.Name { Resolver.default.resolveTag(of: self) }

    var isNullScalar: Bool {
        guard case .scalar(let s) = resolved else { return false }
        return s.style == .plain && tagName == Tag.Name.null
    }

    /// How a node is described in "expected X, found Y" messages.
    var kindName: String {
        switch resolved {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let s):
            if isNullScalar { return "nothing (null)" }
            switch tagName {
            case Tag.Name.int: return "the integer \(s.string)"
            case Tag.Name.bool: return "the boolean \(s.string)"
            case Tag.Name.float: return "the number \(s.string)"
            default: return "the string '\(s.string)'"
            }
        }
    }
}

/// A close known key for a typo ("did you mean X?"): edit distance 1 for short keys, up to 3
/// for long ones (a quarter of the key's length), so `<<` never suggests `id`.
func suggestion(for word: String, among candidates: [String]) -> String? {
    let w = word.lowercased()
    let scored = candidates.map { ($0, editDistance(w, $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    let limit = max(1, min(3, best.0.count / 4))
    return best.1 <= limit ? best.0 : nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    for i in 1...a.count {
        var cur = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        prev = cur
    }
    return prev[b.count]
}
