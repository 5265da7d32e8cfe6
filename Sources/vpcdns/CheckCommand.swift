import ArgumentParser
import Foundation
import VPCDNSConfig
import VPCDNSServer

/// `vpcdns check [--config PATH] [--json]`: loads and validates without opening a socket.
/// The summary itself is built by `CheckSummary` (VPCDNSConfig); this only prints it.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration and zone files, and show what each VPC sees."
    )

    @Option(name: .long, help: "Configuration file.")
    var config: String = ConfigLoader.defaultPath

    @Flag(name: .long, help: "Print one JSON object with the summary, the warnings and the errors.")
    var json = false

    func run() throws {
        // O6: the upstream addresses in use (`system` read from this host's resolv.conf) and
        // those left out because they are vpcdns's own listeners here.
        let summary = HeapPolicy.loading {
            CheckSummary(path: config, result: ConfigLoader.load(path: config)) { loaded in
                UpstreamReview(loaded: loaded, listeners: UpstreamReview.listeners(of: loaded.model, override: nil),
                               localAddresses: LocalAddresses.current())
            }
        }
        if json {
            print(summary.json.rendered())
        } else {
            print(summary.text, terminator: "")
            // Errors first: they are what stops the config, and the warnings are often their
            // knock-on effects (a misspelt key leaves its default in place).
            let stderr = (summary.errors + summary.warnings).map { $0.description + "\n" }.joined()
            FileHandle.standardError.write(Data(stderr.utf8))
        }
        if !summary.ok { throw ExitCode(1) }
    }
}
