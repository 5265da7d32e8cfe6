import ArgumentParser
import Foundation
import VPCDNSConfig
import VPCDNSCore
import VPCDNSLogs

/// `vpcdns logs summary|filter FILE...`: reads query logs (vpcdns's or AWS's, plain or gzip).
struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Read query logs (vpcdns's or Route 53 Resolver's, plain or gzip JSON Lines).",
        subcommands: [LogsSummaryCommand.self, LogsFilterCommand.self]
    )
}

/// The options `summary` and `filter` share.
struct LogsCommonOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("Query-log files (JSON Lines, plain or gzip).", valueName: "FILE"))
    var files: [String]

    @Option(name: .long, help: ArgumentHelp("Only records of this VPC id.", valueName: "ID"))
    var vpc: String?

    @Option(name: .long, help: ArgumentHelp("Only records at or after TIME (2026-11-27T20:15:03Z, or an age: 30s, 15m, 2h, 1d).", valueName: "TIME"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Only records before TIME (same forms as --since).", valueName: "TIME"))
    var until: String?

    func validate() throws {
        if files.isEmpty { throw ValidationError("no log file given") }
        for (flag, v) in [("--since", since), ("--until", until)] {
            if let v, LogTime.parse(v, nowMicros: 0) == nil {
                throw ValidationError("\(flag): expected an ISO 8601 time (2026-11-27T20:15:03Z) or an age (15m, 2h, 1d): \(v)")
            }
        }
    }

    func filter() -> LogFilter {
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        return LogFilter(vpcID: vpc, sinceMicros: since.flatMap { LogTime.parse($0, nowMicros: now) },
                         untilMicros: until.flatMap { LogTime.parse($0, nowMicros: now) })
    }
}

enum LogsIO {
    static func stderr(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

    /// Reports files that could not be read; exit 1 if any.
    static func finish(_ result: LogReadResult) throws {
        for e in result.errors { stderr("\(e.description)\n") }
        if !result.errors.isEmpty { throw ExitCode(1) }
    }
}

struct LogsSummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Per VPC: queries, rcodes, private vs forwarded, top names, latency; with --config, the private DNS misses."
    )

    @OptionGroup var common: LogsCommonOptions

    @Option(name: .long, help: ArgumentHelp("Configuration file: adds the private DNS misses, with the reason the config gives.", valueName: "PATH"))
    var config: String?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() throws {
        var model: Model? = nil
        if let config {
            switch ConfigLoader.load(path: config) {
            case .success(let l): model = l.model
            case .failure(let e):
                LogsIO.stderr(e.errors.map(\.description).joined(separator: "\n") + "\n")
                throw ExitCode(1)
            }
        }
        let filter = common.filter()
        let summary = LogSummary(model: model)
        let bad = BadLineReporter { LogsIO.stderr($0) }
        let result = LogReader.read(paths: common.files, bad: bad) { r in
            if filter.matches(r) { summary.add(r) }
        }
        if json {
            print(summary.json(files: common.files, read: result).rendered())
        } else {
            print(summary.text(), terminator: "")
        }
        try LogsIO.finish(result)
    }
}

struct LogsFilterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filter",
        abstract: "Print the matching records as JSON Lines, exactly as read (or an aligned table); several files merged by time."
    )

    @OptionGroup var common: LogsCommonOptions

    @Option(name: .long, help: ArgumentHelp("Query names matching GLOB (* and ?, case-insensitive, trailing dot optional).", valueName: "GLOB"))
    var name: String?

    @Option(name: .long, help: ArgumentHelp("Only this rcode (NOERROR, NXDOMAIN, SERVFAIL, ...).", valueName: "RCODE"))
    var rcode: String?

    @Option(name: .long, help: ArgumentHelp("Only this vpcdns decision (upstream, private-hosted-zone, ...); AWS records never match.", valueName: "D"))
    var decision: String?

    @Flag(name: .long, help: "Print an aligned table instead of JSON Lines.")
    var table = false

    /// Unknown `--rcode` and `--decision` values are usage errors (exit 64), not empty output.
    func validate() throws {
        if let why = LogFilter(rcode: rcode, decision: decision).unknownValue() { throw ValidationError(why) }
    }

    func run() throws {
        var filter = common.filter()
        filter.name = name.map { NameGlob($0) }
        filter.rcode = rcode
        filter.decision = decision
        let bad = BadLineReporter { LogsIO.stderr($0) }
        var rows: [LogRecord] = []
        var out = ""
        out.reserveCapacity(1 << 16)
        // Several files (one per replica) come out as one timeline; see `readMerged`.
        let result = LogReader.readMerged(paths: common.files, bad: bad, keep: filter.matches) { r in
            if table {
                rows.append(r)
            } else {
                out += r.line
                out += "\n"
                if out.utf8.count >= 1 << 16 {
                    FileHandle.standardOutput.write(Data(out.utf8))
                    out.removeAll(keepingCapacity: true)
                }
            }
        }
        if table { out = RecordTable.render(rows) }
        if !out.isEmpty { FileHandle.standardOutput.write(Data(out.utf8)) }
        try LogsIO.finish(result)
    }
}
