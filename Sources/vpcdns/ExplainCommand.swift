import ArgumentParser
import DNSWire
import Foundation
import LDNSKit
import VPCDNSConfig
import VPCDNSCore
import VPCDNSServer

/// `vpcdns explain NAME [TYPE] --from IP [--to IP:PORT] [--config PATH] [--json]`: the
/// decision `serve` would make, printed for a person. Offline: it sends no packet.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show how a name would be answered for a client, and why (offline, sends no packet)."
    )

    @Argument(help: "The name to resolve.")
    var name: String

    @Argument(help: "The record type (A, AAAA, TXT, ... or TYPEnnn).")
    var type: String = "A"

    @Option(name: .long, help: "The client's source address.")
    var from: String

    @Option(name: .long, help: "The listener the query reaches, IP:PORT (default: the first `listen` address).")
    var to: String?

    @Option(name: .long, help: "Configuration file.")
    var config: String = ConfigLoader.defaultPath

    @Flag(name: .long, help: "Print the explanation as one JSON object.")
    var json = false

    @Option(name: .long, help: "R18: treat this health check as failing (repeatable; explain runs no check, so every other one counts as healthy).")
    var unhealthy: [String] = []

    @Option(name: .long, help: "R18: the seed of weighted and multivalue choices (the same seed, the same choice).")
    var seed: UInt64 = 0

    func validate() throws {
        guard IPAddress(from) != nil else { throw ValidationError("--from: not an IP address: \(from)") }
        if let to, SocketEndpoint(to) == nil { throw ValidationError("--to: expected IP:PORT ([::1]:1053 for IPv6): \(to)") }
        guard RRType(mnemonic: type) != nil else { throw ValidationError("unknown record type: \(type)") }
        do { _ = try DNSName(name) } catch { throw ValidationError("bad name \(name): \(error)") }
    }

    func run() throws {
        let loaded: LoadedConfig
        switch HeapPolicy.loading({ ConfigLoader.load(path: config) }) {
        case .success(let l): loaded = l
        case .failure(let e):
            FileHandle.standardError.write(Data((e.errors.map(\.description).joined(separator: "\n") + "\n").utf8))
            throw ExitCode(1)
        }
        // O6: as `serve` would forward: `system` expanded, vpcdns's own listeners left out.
        let review = UpstreamReview(loaded: loaded, listeners: UpstreamReview.listeners(of: loaded.model, override: nil),
                                    localAddresses: LocalAddresses.current())
        let problems = review.warnings + review.errors
        if !problems.isEmpty { FileHandle.standardError.write(Data(problems.map { "\($0)\n" }.joined().utf8)) }
        let model = review.plan.applied(to: loaded.model)
        let resolver = Resolver(model: model)
        let client = IPAddress(from)!
        let listener = to.flatMap { SocketEndpoint($0) } ?? model.settings.listen.first ?? SocketEndpoint("127.0.0.1:1053")!
        let question = Question(name: try DNSName(name), type: RRType(mnemonic: type)!)
        var failing = Set<Int>()
        for id in unhealthy {
            guard let i = model.healthChecks.firstIndex(where: { $0.id == id }) else {
                let known = model.healthChecks.map(\.id)
                FileHandle.standardError.write(Data("--unhealthy: no health check '\(id)' (\(known.isEmpty ? "none defined" : "defined: " + known.joined(separator: ", ")))\n".utf8))
                throw ExitCode(1)
            }
            failing.insert(i)
        }
        var decision = resolver.resolve(question, client: client, listener: listener, explain: true,
                                        routing: RoutingInput(health: FailingChecks(failing: failing), seed: seed))
        if unhealthy.isEmpty, let r = decision.routing, r.group.members.contains(where: { $0.check != nil || $0.evaluatesTarget }) {
            decision.notes.append("explain runs no health check: every check counts as healthy unless named with --unhealthy ID "
                                  + "(serve runs them; see vpcdns_health_check_status on /metrics)")
        }
        let e = Explanation(decision: decision, model: model, client: client, listener: listener, upstreams: review.plan)
        if json {
            print(e.json(format: RecordText.presentation, rdata: RecordText.rdataPresentation).rendered())
        } else {
            print(e.text(format: RecordText.presentation), terminator: "")
        }
    }
}

/// `explain --unhealthy ID`: the named checks fail, the others count as healthy (not run yet).
struct FailingChecks: HealthSource {
    let failing: Set<Int>
    func isHealthy(_ check: Int) -> Bool { !failing.contains(check) }
}
