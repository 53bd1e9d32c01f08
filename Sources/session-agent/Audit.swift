import Agent
import ArgumentParser
import EthereumCore
import Foundation

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The agent's audit log.", subcommands: [AuditShow.self, AuditVerify.self])
}

struct AuditShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print entries of the audit log: requests, decisions, owner failures, exports, revocations, owners and accounts added or removed, the store locking and opening.",
        discussion: "Without --after, the last --limit entries. Each line: sequence number, UTC time, kind, the entry as JSON.")

    @Option(help: "Entries after this sequence number (to follow the log: the last number seen).") var after: Int64?
    @Option(help: "Only entries of this kind (request, decision, owner_failure, export, revoke, owner_add, store_lock…).") var kind: String?
    @Option(help: "At most this many entries.") var limit: Int = 50
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            var params = JSONObject(["limit": JSONValue(limit)])
            if let after { params["after"] = JSONValue(Int(after)) }
            if let kind { params["kind"] = .string(kind) }
            let entries = try remote { try connectControl(socket).call("audit_show", params) }
            let lines = (entries.arrayValue ?? []).map { e in
                let at = utcTime(e["at"]) ?? "?"
                return "\(e["seq"]?.serialized ?? "?")  \(at)  \(e["kind"]?.stringValue ?? "?")  \(e["entry"]?.serialized ?? "")"
            }
            return CommandOutput(text: lines.isEmpty ? "no entries" : lines.joined(separator: "\n"), json: entries)
        }
    }
}

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-walk the audit log's hash chain; exit status 1 if any entry was changed, removed or reordered.")

    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let result = try remote { try connectControl(socket).call("audit_verify") }
            guard result["intact"] == .bool(true) else {
                throw CommandFailure(message: "the audit log is broken: \(result["problem"]?.stringValue ?? "unknown")", reason: "audit_broken")
            }
            let entries = result["entries"].map { $0.serialized } ?? "?"
            var text = "audit log intact: \(entries) \(entries == "1" ? "entry" : "entries")"
            if let seq = result["head"]?["seq"], let hash = result["head"]?["hash"]?.stringValue {
                text += "\nthe last, entry \(seq.serialized), has hash \(hash): a log checked later that does not hold it was cut short or written again"
            }
            return CommandOutput(text: text, json: result)
        }
    }
}
