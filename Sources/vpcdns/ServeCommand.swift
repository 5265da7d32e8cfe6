import ArgumentParser
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import VPCDNSConfig
import VPCDNSConsole
import VPCDNSCore
import VPCDNSServer

/// `vpcdns serve [--config PATH] [--listen IP:PORT ...]`: the resolver, in the foreground.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the resolver in the foreground (SIGHUP reload, SIGUSR1 reopen the query log, SIGTERM/SIGINT stop)."
    )

    @Option(name: .long, help: "Configuration file.")
    var config: String = ConfigLoader.defaultPath

    @Option(name: .long, help: "Replace the config's `listen` list (repeatable; port 0 picks a free port).")
    var listen: [String] = []

    @Option(name: .long, help: "Log level for operational events on standard error (trace, debug, info, notice, warning, error).")
    var logLevel: String = "info"

    func validate() throws {
        for l in listen where SocketEndpoint(l) == nil {
            throw ValidationError("--listen: expected IP:PORT ([::1]:1053 for IPv6): \(l)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \(logLevel)") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        // Operational events go to standard error; standard output is left to `query_log: -`.
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "vpcdns")
        let runtime: ServerRuntime
        do {
            runtime = try await ServerRuntime(configPath: config, listenOverride: listen.isEmpty ? nil : listen.compactMap { SocketEndpoint($0) },
                                              logger: logger, metricsHTTP: MetricsHTTPServer.binderSharingConsole())
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        // swift-metrics users in this process report into the registry behind `/metrics`.
        MetricsSystem.bootstrap(runtime.exporter.metricsFactory)
        var lines = ""
        for l in await runtime.listening { lines += "\(l)\n" }
        // O7: addresses served by a wildcard socket rather than one of their own.
        for l in runtime.coveredLines { lines += "\(l)\n" }
        // O6: the upstream addresses in use (`system` expanded) and those left out.
        for l in runtime.upstreamLines { lines += "\(l)\n" }
        FileHandle.standardError.write(Data(lines.utf8))
        var extra: [any Service] = []
        let settings = runtime.engine.current.settings
        if let address = settings.console {
            do { try await Console.checkBindable(address) } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(1)
            }
            // Printed once bound (port 0 gets its real port), like the listener lines.
            let console = Console(runtime: runtime, address: address, token: settings.consoleToken, logger: logger) { bound in
                let host = bound.ip.isIPv4 ? bound.ip.description : "[\(bound.ip)]"
                FileHandle.standardError.write(Data("console on http://\(host):\(bound.port)/\n".utf8))
            }
            extra.append(console.service)
        }
        try await runtime.run(extra: extra)
    }
}
