/// Relative paths in the config are relative to the config file's own folder (config.md).
/// Resolution is lexical, so messages show `zones/x.zone` rather than `config/../zones/x.zone`.
enum Paths {
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return path[..<slash].isEmpty ? "/" : String(path[..<slash])
    }

    static func resolve(_ path: String, relativeTo configPath: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        let dir = directory(of: configPath)
        return normalize(dir.isEmpty ? path : dir + "/" + path)
    }

    static func normalize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var out: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = out.last, last != ".." { out.removeLast(); continue }
            if part == "..", absolute, out.isEmpty { continue }
            out.append(part)
        }
        let joined = out.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }
}
