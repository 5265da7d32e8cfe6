/// One problem found in the configuration or a zone file, located by file, line and key.
///
/// The printed shape `FILE:LINE: KEY: message` (or `FILE:LINE: KEY: warning: message`) is
/// part of the product contract (cli.md): editors and outside tests parse it.
public struct Diagnostic: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The file as the user named it (config path as given; zone files resolved against it).
    public var file: String
    /// 1-based line; 0 when no line is known (a file that cannot be read at all).
    public var line: Int
    /// Key path of the offending key (`vpcs[1].resolver_rules[0].domain`), or `-`.
    public var key: String
    public var message: String
    public var isWarning: Bool

    public init(file: String, line: Int, key: String, message: String, isWarning: Bool = false) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        self.isWarning = isWarning
    }

    public var description: String {
        "\(file):\(line): \(key): \(isWarning ? "warning: " : "")\(message)"
    }

    /// The object used by `check --json`.
    public var json: JSONValue {
        .object([("file", .string(file)), ("line", .int(line)), ("key", .string(key)), ("message", .string(message))])
    }
}

/// Every error found while loading, plus the warnings seen on the way (so `check` can show both).
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public let errors: [Diagnostic]
    public let warnings: [Diagnostic]

    public init(errors: [Diagnostic], warnings: [Diagnostic]) {
        self.errors = errors
        self.warnings = warnings
    }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// A configuration that passed validation: the model the resolver runs, and the warnings.
public struct LoadedConfig: Sendable {
    public let model: Model
    public let warnings: [Diagnostic]
    /// The config path as given.
    public let path: String
    /// The line of every key path read (`upstreams[0]`), for messages about the loaded
    /// model that are made later (`UpstreamReview`, O6).
    let keyLines: [String: Int]

    /// The line of a key path, or of its nearest parent that has one; 1 when none has.
    public func line(of key: String) -> Int {
        var k = Substring(key)
        while true {
            if let l = keyLines[String(k)] { return l }
            guard let cut = k.lastIndex(where: { $0 == "." || $0 == "[" }) else { return 1 }
            k = k[..<cut]
        }
    }
}

import VPCDNSCore
