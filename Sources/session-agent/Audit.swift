import Agent
import ArgumentParser
import EthereumCore

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The agent's audit log.", subcommands: [AuditVerify.self])
}

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-walk the audit log's hash chain; exit status 1 if any entry was changed, removed or reordered.")

    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let result = try remote { try connectAgent(socket ?? AgentClient.defaultControlSocket).call("audit_verify") }
            let entries = result["entries"].map { $0.serialized } ?? "?"
            guard result["intact"] == .bool(true) else {
                throw CommandFailure(message: "the audit log is broken after \(entries) entries: \(result["problem"]?.stringValue ?? "unknown")", reason: "audit_broken")
            }
            return CommandOutput(text: "audit log intact: \(entries) entries", json: result)
        }
    }
}
