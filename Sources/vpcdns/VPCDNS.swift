import ArgumentParser

@main
struct VPCDNS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpcdns",
        abstract: "A split-horizon private DNS resolver that answers like the AWS VPC resolver.",
        subcommands: [ServeCommand.self, CheckCommand.self, ExplainCommand.self, LogsCommand.self, ImportCommand.self]
    )
}
