import Agent
import ArgumentParser
import EthereumCore
import Foundation
import SessionStore

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The agent's audit log.", subcommands: [AuditShow.self, AuditVerify.self, AuditExport.self, AuditPrune.self])
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
        abstract: "Re-walk the audit log's hash chain; exit status 1 if any entry was changed, removed or reordered.",
        discussion: """
            The agent knows the last entry it wrote, and checks that too; across a restart, keep \
            an entry's number and hash elsewhere (this command prints the last one, the journal \
            names it at every start) and give it to --holds: a log cut short before it, or written \
            again since, fails. With --file, checks entries kept elsewhere (`audit export`) instead, \
            without the agent.
            """)

    @Option(help: ArgumentHelp("An entry the log must still hold, as printed before.", valueName: "seq:hash")) var holds: String?
    @Option(help: "Check this file of entries `audit export` wrote, not the agent's log.") var file: String?
    @Option(help: ArgumentHelp("With --file: the hash of the entry before the file's first, when that is not entry 1.", valueName: "hash")) var previous: String?
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    /// `--holds`, read.
    var heldEntry: (seq: Int64, hash: String)? {
        get throws {
            guard let holds else { return nil }
            let parts = holds.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let seq = Int64(parts[0]), seq > 0, let hash = try? Bytes32(hex: String(parts[1])) else {
                throw ValidationError("--holds: an entry's number and hash, as 12:0x3f…")
            }
            return (seq, hash.hex)
        }
    }

    func validate() throws {
        _ = try heldEntry
        if file != nil, holds != nil { throw ValidationError("--holds checks the agent's log, --file a file: give one") }
        if previous != nil, file == nil { throw ValidationError("--previous goes with --file") }
        if let previous, (try? Bytes32(hex: previous)) == nil { throw ValidationError("--previous: a 32-byte hash, 0x and 64 hex digits") }
    }

    func run() throws {
        try report(output) {
            if let file { return try verify(file: file) }
            let control = try connectControl(socket)
            let result = try remote { try control.call("audit_verify") }
            guard result["intact"] == .bool(true) else {
                throw CommandFailure(message: "the audit log is broken: \(result["problem"]?.stringValue ?? "unknown")", reason: "audit_broken")
            }
            let entries = result["entries"].map { $0.serialized } ?? "?"
            var text = "audit log intact: \(entries) \(entries == "1" ? "entry" : "entries")"
            if let seq = result["prunedThrough"]?["seq"], let hash = result["prunedThrough"]?["hash"]?.stringValue {
                text += ", after entry \(seq.serialized) (pruned; the first kept chains from its hash \(hash))"
            }
            if let seq = result["head"]?["seq"], let hash = result["head"]?["hash"]?.stringValue {
                text += "\nthe last, entry \(seq.serialized), has hash \(hash): a log checked later that does not hold it was cut short or written again"
            }
            if let held = try heldEntry {
                try check(held, in: result, control)
                text += "\nentry \(held.seq) still has hash \(held.hash): the log holds what was written up to it"
            }
            return CommandOutput(text: text, json: result)
        }
    }
}

extension AuditVerify {
    /// Whether the intact log `verified` still holds `held`: as an entry, or as where it starts
    /// after a prune (the last entry removed).
    func check(_ held: (seq: Int64, hash: String), in verified: JSONValue, _ control: AgentClient) throws {
        if case .number(let text)? = verified["prunedThrough"]?["seq"], let start = Int64(text), held.seq <= start {
            guard held.seq == start else {
                throw CommandFailure(message: "entry \(held.seq) was pruned: the log now starts after entry \(start), the earliest that can be checked", reason: "audit_pruned")
            }
            guard verified["prunedThrough"]?["hash"]?.stringValue == held.hash else {
                throw CommandFailure(message: "the log starts after entry \(start) with hash \(verified["prunedThrough"]?["hash"]?.stringValue ?? "?"), not \(held.hash): it was written again", reason: "audit_broken")
            }
            return
        }
        let found = try remote { try control.call("audit_show", JSONObject(["after": JSONValue(Int(held.seq - 1)), "limit": JSONValue(1)])) }.arrayValue?.first
        guard found?["seq"] == JSONValue(Int(held.seq)) else {
            throw CommandFailure(message: "the log does not hold entry \(held.seq): it was cut short, or the store is another one", reason: "audit_broken")
        }
        guard found?["hash"]?.stringValue == held.hash else {
            throw CommandFailure(message: "entry \(held.seq) has hash \(found?["hash"]?.stringValue ?? "?"), not \(held.hash): the log was written again", reason: "audit_broken")
        }
    }

    /// Walks the chain of the entries in `path` (JSON lines, as `audit export` writes them).
    func verify(file path: String) throws -> CommandOutput {
        var walk = AuditFileCheck(previous: try previous.map { try Bytes32(hex: $0) })
        try forEachLine(of: path) { number, line in
            do throws(AuditFileCheck.Failure) { try walk.check(line, number: number) } catch {
                switch error {
                case .malformed: throw CommandFailure(message: "\(path), \(error)")
                case .unanchored(let first): throw CommandFailure(message: "\(path) starts at entry \(first): give --previous, the hash of entry \(first - 1)")
                case .broken: throw CommandFailure(message: "\(path), \(error)", reason: "audit_broken")
                }
            }
        }
        let count = walk.count
        guard let last = walk.last else { throw CommandFailure(message: "\(path) holds no entry") }
        let text = "\(path) intact: \(count) \(count == 1 ? "entry" : "entries")\nthe last, entry \(last.seq), has hash \(last.hash): "
            + "the agent's log continues from it after `audit prune --through \(last.seq)` (`audit verify --holds \(last.seq):\(last.hash)`)"
        return CommandOutput(text: text, json: .object(JSONObject([
            "intact": true, "entries": JSONValue(count), "last": .object(JSONObject(["seq": JSONValue(Int(last.seq)), "hash": .string(last.hash)])),
        ])))
    }
}

struct AuditExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the audit log's entries as JSON lines, to keep them elsewhere before a prune.",
        discussion: "Each line is one entry as `audit show --json` gives it. `audit verify --file` checks such a file without the agent.")

    @Option(help: "Only the entries after this sequence number.") var after: Int64 = 0
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup(title: "An error as JSON") var output: OutputOptions

    func run() throws {
        try report(output) {
            let control = try connectControl(socket)
            var after = after
            let most = 10_000   // the most `audit_show` answers at once
            while true {
                let page = try remote { try control.call("audit_show", JSONObject(["after": JSONValue(Int(after)), "limit": JSONValue(most)])) }.arrayValue ?? []
                for entry in page { print(entry.serialized) }
                guard page.count == most, case .number(let last)? = page.last?["seq"], let seq = Int64(last) else { break }
                after = seq
            }
            return .streamed
        }
    }
}

struct AuditPrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove the oldest entries of the audit log; what is left still verifies.",
        discussion: """
            Give --through with the number of the last entry to remove (after keeping them elsewhere, \
            with `audit export`), or --older-than to remove every entry up to the last one written \
            that long ago. The log then starts from the last entry removed, whose hash `audit verify` \
            shows; the removal is itself an entry (audit_prune). It is done a thousand entries at a \
            time, and signing goes on meanwhile. The file then shrinks by what was freed (a store an \
            earlier build made needs `store compact` once for that).
            """)

    @Option(help: "Remove the entries up to and including this sequence number.") var through: Int64?
    @Option(help: "Remove the entries older than this (\"90d\", \"26w\").") var olderThan: String?
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (through == nil) != (olderThan == nil) else { throw ValidationError("give one of --through and --older-than") }
        if let through, through < 1 { throw ValidationError("--through: an entry's number, from 1") }
        if let olderThan { _ = try unixTime(olderThan: olderThan) }
    }

    func run() throws {
        try report(output) {
            var params = JSONObject()
            if let through { params["through"] = JSONValue(Int(through)) }
            if let olderThan { params["before"] = JSONValue(try unixTime(olderThan: olderThan)) }
            let result = try remote { try connectControl(socket).call("audit_prune", params) }
            guard let removed = result["removed"], removed != JSONValue(0), let seq = result["through"], let hash = result["hash"]?.stringValue else {
                return CommandOutput(text: "nothing to remove", json: result)
            }
            return CommandOutput(text: "removed \(removed.serialized) entries, through entry \(seq.serialized); the log now starts after its hash \(hash)", json: result)
        }
    }
}
