import ArgumentParser
import Foundation
import VPCDNSImport

/// `vpcdns import ...`: configurations made from somewhere else (today: an AWS account).
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Make a vpcdns configuration from a snapshot of a real account.",
        subcommands: [ImportAWSCommand.self]
    )
}

/// `vpcdns import aws PATH... [--out DIR] ...` and `vpcdns import aws --print-commands`.
struct ImportAWSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aws",
        abstract: "Turn the JSON that read-only AWS CLI commands print into vpcdns.yaml and zone files.",
        discussion: "Run `vpcdns import aws --print-commands` for the commands that save such a snapshot. docs/import.md has the mapping."
    )

    @Argument(help: "AWS CLI output files, or folders read recursively (*.json).")
    var paths: [String] = []

    @Flag(name: .long, help: "Print the read-only AWS CLI commands that save a snapshot, one per line, and exit.")
    var printCommands = false

    @Option(name: .long, help: "Folder to write vpcdns.yaml and zones/ into.")
    var out: String = "imported"

    @Option(name: .long, help: "AWS region (default: the one the snapshot names).")
    var region: String?

    @Option(name: .long, help: "VPC=CIDR: local sources that count as inside the VPC (id or Name tag). Repeatable.")
    var client: [String] = []

    @Option(name: .long, help: "VPC=IP:PORT: a local listener serving that VPC; or INBOUND-ID=IP:PORT / INBOUND-IP=IP:PORT for an inbound endpoint. Repeatable.")
    var resolverAddress: [String] = []

    @Option(name: .long, help: "IP=IP:PORT: send a resolver rule's target IP to a reachable address. Repeatable.")
    var targetMap: [String] = []

    @Option(name: .long, help: "IP:PORT for the top-level listen list. Repeatable (default 127.0.0.1:1053).")
    var listen: [String] = []

    @Option(name: .long, help: "IP:PORT or system for the top-level upstreams. Repeatable (default system).")
    var upstream: [String] = []

    @Flag(name: .long, help: "Replace an existing DIR/vpcdns.yaml and DIR/zones/.")
    var force = false

    func validate() throws {
        if printCommands && !paths.isEmpty { throw ValidationError("--print-commands takes no PATH") }
        if !printCommands && paths.isEmpty { throw ValidationError("give at least one PATH (a file or folder of AWS CLI JSON), or --print-commands") }
        for (flag, values) in [("--client", client), ("--resolver-address", resolverAddress), ("--target-map", targetMap)] {
            for v in values where Self.pair(v) == nil { throw ValidationError("\(flag) \(v): expected KEY=VALUE") }
        }
    }

    static func pair(_ s: String) -> (String, String)? {
        guard let eq = s.firstIndex(of: "=") else { return nil }
        let k = String(s[..<eq]), v = String(s[s.index(after: eq)...])
        return k.isEmpty || v.isEmpty ? nil : (k, v)
    }

    func run() throws {
        if printCommands {
            print(AWSImporter.commands(region: region).joined(separator: "\n"))
            return
        }
        var options = ImportOptions()
        options.region = region
        options.clients = client.compactMap(Self.pair)
        options.resolverAddresses = resolverAddress.compactMap(Self.pair)
        options.targetMap = Dictionary(targetMap.compactMap(Self.pair), uniquingKeysWith: { _, last in last })
        options.listen = listen
        options.upstreams = upstream
        let stderr = FileHandle.standardError
        do {
            let result = try AWSImporter.run(paths: paths, options: options)
            try AWSImporter.write(result, to: out, force: force)
            for w in result.warnings { stderr.write(Data((w.description + "\n").utf8)) }
            print("\(result.summary)")
            print("wrote \((out as NSString).appendingPathComponent("vpcdns.yaml")) and \(result.zoneFiles.count) zone file\(result.zoneFiles.count == 1 ? "" : "s") in \((out as NSString).appendingPathComponent("zones"))/; check it with: vpcdns check --config \((out as NSString).appendingPathComponent("vpcdns.yaml"))")
        } catch {
            stderr.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
    }
}
