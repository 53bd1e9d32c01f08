import Agent
import ArgumentParser
import EthereumCore
import Foundation
import SmartSessions

/// Where the client commands find the agent.
struct SocketOptions: ParsableArguments {
    @Option(help: "The agent's client socket (default: $SESSION_AGENT_SOCK).") var socket: String?

    func connect() throws -> AgentClient { try connectAgent(socket ?? AgentClient.defaultClientSocket) }
}

/// Connects to one of the agent's sockets, or fails with `no_agent` and how to start one.
func connectAgent(_ path: String) throws -> AgentClient {
    do { return try AgentClient(path: path) } catch {
        throw CommandFailure(message: "\(error)", reason: "no_agent",
                             hints: ["start one with `session-agent serve --config FILE`, and set SESSION_AGENT_SOCK and SESSION_AGENT_CONTROL_SOCK"])
    }
}

/// Connects to the agent's control socket (`path`, else the default). Only the agent's own uid
/// may use it, so one served by another uid is not the agent's: it is refused before anything
/// is sent, since `approve` and `owner add` send passphrases and PINs down it.
func connectControl(_ path: String?) throws -> AgentClient {
    let path = path ?? AgentClient.defaultControlSocket
    let client = try connectAgent(path)
    let server = client.serverUID
    guard server == getuid() else {
        throw CommandFailure(message: "\(path) is served by \(server.map { "uid \($0)" } ?? "an unknown process"), not by this user (uid \(getuid())); nothing was sent",
                             reason: "forbidden")
    }
    return client
}

/// Calls the agent, turning its errors into this command's.
func remote<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as AgentClient.RemoteError {
        throw CommandFailure(message: e.message, reason: e.reason)
    }
}

struct Request: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the agent for a session (the request formats of docs/requests.md).")

    @Argument(help: "The request file, or - for standard input.") var file: String?
    @Option(help: "Seconds to wait for a decision (0: return at once).") var wait: Double = 60
    @Flag(name: .customLong("bind-executable"), help: "Bind the session to this client's executable, not only its uid.") var bindExecutable = false
    @Flag(name: .customLong("bind-unit"), help: "Bind the session to this client's systemd unit.") var bindUnit = false
    @OptionGroup var socket: SocketOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            // The file first: a mistyped name is told as such, agent or not.
            let request = try parseJSON(try readInput(file), what: "request")
            let client = try socket.connect()
            var result = try remote { try client.call("session_request", JSONObject(["request": request, "bindExecutable": .bool(bindExecutable), "bindUnit": .bool(bindUnit)])) }
            let text = result["reviewText"]?.stringValue ?? ""
            if result["status"] == "pending" && wait > 0 {
                guard let id = result["id"] else { throw CommandFailure(message: "the agent answered a pending request without its id") }
                result = try remote { try client.call("session_wait", JSONObject(["id": id, "timeout": .number(String(wait))])) }
            }
            let status = result["status"]?.stringValue ?? "?"
            var lines = [text, "", "request \(result["id"]?.stringValue ?? "?"): \(status) (\(result["reason"]?.stringValue ?? ""))"]
            if let session = result["sessionId"]?.stringValue { lines.append("session: \(session)") }
            guard status == "approved" || status == "pending" else {
                throw CommandFailure(message: "the request was \(status): \(result["reason"]?.stringValue ?? "")", reason: status == "denied" ? "denied" : status)
            }
            return CommandOutput(text: lines.joined(separator: "\n"), json: result)
        }
    }
}

struct SignUserOp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-userop",
        abstract: "Have the agent sign a user operation with a session key, inside the session's scope.")

    @Argument(help: "The user operation (JSON, unpacked or packed), or - for standard input.") var file: String?
    @Option(help: "The session id.") var session: String
    @Option(name: .customLong("chain-id"), help: "The chain id.") var chainId: UInt64
    @Option(help: "The EntryPoint address (default: v0.7).") var entrypoint: String = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
    @Option(help: "use or enable (default: ENABLE until the session is enabled on the chain, then USE).") var mode: String?
    @Option(name: .customLong("eip7702-delegate"), help: "EntryPoint v0.8, an EIP-7702 account (factory 0x7702): the sender's delegate, which the userOpHash covers.") var delegate: String?
    @OptionGroup var socket: SocketOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            var params = JSONObject(["sessionId": .string(session), "chainId": .number(String(chainId)), "entryPoint": .string(entrypoint),
                                     "userOperation": try parseJSON(try readInput(file), what: "user operation")])
            if let mode { params["mode"] = .string(mode) }
            if let delegate { params["eip7702Delegate"] = .string(delegate) }
            let result = try remote { try socket.connect().call("session_signUserOperation", params) }
            return CommandOutput(text: result["signature"]?.stringValue ?? "", json: result)
        }
    }
}

struct SignTypedData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-typed-data",
        abstract: "Have the agent sign typed data with a session key, for the account's ERC-1271 (ERC-7739 nested typed data), when the session allows it.",
        discussion: """
            Prints the signature an application passes to the account's isValidSignature, with the document's own digest as the hash. \
            The account's EIP-712 name and version are read from the chain when chain_rpc has an endpoint for it; otherwise give them.
            """)

    @Argument(help: "The eth_signTypedData_v4 document (JSON), or - for standard input.") var file: String?
    @Option(help: "The session id.") var session: String
    @Option(name: .customLong("chain-id"), help: "The chain id.") var chainId: UInt64
    @Option(name: .customLong("account-name"), help: "The account's EIP-712 domain name (with --account-version), where no endpoint is configured.") var accountName: String?
    @Option(name: .customLong("account-version"), help: "The account's EIP-712 domain version.") var accountVersion: String?
    @OptionGroup var socket: SocketOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            var params = JSONObject(["sessionId": .string(session), "chainId": .number(String(chainId)),
                                     "typedData": try parseJSON(try readInput(file), what: "typed data")])
            switch (accountName, accountVersion) {
            case (let name?, let version?): params["accountDomain"] = .object(JSONObject(["name": .string(name), "version": .string(version)]))
            case (nil, nil): break
            default: throw CommandFailure(message: "--account-name and --account-version go together")
            }
            let result = try remote { try socket.connect().call("session_signTypedData", params) }
            let lines = ["signature: \(result["signature"]?.stringValue ?? "")", "hash:      \(result["hash"]?.stringValue ?? "")",
                         "contents:  \(DisplayText.escaped(result["contentsDescription"]?.stringValue ?? ""))"]
            return CommandOutput(text: lines.joined(separator: "\n"), json: result)
        }
    }
}

struct Sessions: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "This client's sessions; the operator prunes those that ended.",
                                                    subcommands: [SessionsList.self, SessionsShow.self, SessionsStatus.self, SessionsPrune.self], defaultSubcommand: SessionsList.self)
}

struct SessionsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List this client's sessions (every client's with --control), oldest first.")
    @Flag(help: "Only the sessions still usable: neither revoked nor expired.") var live = false
    @OptionGroup var socket: ClientOrControlSocket
    @OptionGroup var output: OutputOptions

    /// The agent answers a page at a time.
    static let page = 1_000

    func run() throws {
        try report(output) {
            let sessions = try Self.all(try remote { try socket.connect() }, method: socket.control ? "sessions_list" : "session_list", live: live)
            let lines = sessions.map { s in
                // A label stored before labels were checked may hold control characters.
                "\(s["sessionId"]?.stringValue ?? "?")  \(s["label"]?.stringValue.map(DisplayText.escaped) ?? "-")  account \(s["account"]?.stringValue ?? "?")  key \(s["sessionKey"]?.stringValue ?? "?")  "
                    + (Self.ended(s) ? "(\(Self.state(s)))" : Self.state(s))
            }
            return CommandOutput(text: lines.isEmpty ? "no sessions" : lines.joined(separator: "\n"), json: .array(sessions))
        }
    }

    /// Every session `method` lists, a page at a time.
    static func all(_ client: AgentClient, method: String, live: Bool) throws -> [JSONValue] {
        var sessions: [JSONValue] = []
        while true {
            var params = JSONObject(["limit": JSONValue(page), "live": .bool(live)])
            if let last = sessions.last?["sessionId"] { params["after"] = last }
            let got = try remote { try client.call(method, params) }.arrayValue ?? []
            sessions += got
            if got.count < page { return sessions }
        }
    }

    static func ended(_ s: JSONValue) -> Bool { s["revoked"] == .bool(true) || s["expired"] == .bool(true) }

    /// "revoked", "expired 2026-…Z", "until 2026-…Z" or "no end", from a session as the agent answers it.
    static func state(_ s: JSONValue) -> String {
        if s["revoked"] == .bool(true) { return "revoked" }
        guard let expires = utcTime(s["expiresAt"]) else { return "no end" }
        return (s["expired"] == .bool(true) ? "expired " : "until ") + expires
    }
}

/// The client socket, where a client reaches its own sessions; or the control socket, where the
/// operator reaches everyone's, and the control methods.
struct ClientOrControlSocket: ParsableArguments {
    @Option(help: "The agent's socket (default: $SESSION_AGENT_SOCK, or with --control $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @Flag(help: "Use the control socket: the operator's, where every client's sessions are reached.") var control = false

    func connect() throws -> AgentClient { try control ? connectControl(socket) : connectAgent(socket ?? AgentClient.defaultClientSocket) }
}

struct SessionsShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "One session: its lifetime, and what is used and left of each of its limits on each chain.",
        discussion: "By the agent's ledger, which counts every signature it handed out; operations signed elsewhere, or never sent, are not known to it.")

    @Argument(help: "The session id.") var session: String
    @OptionGroup var socket: ClientOrControlSocket
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let s = try remote { try socket.connect().call("session_get", JSONObject(["sessionId": .string(session)])) }
            var lines = ["\(s["sessionId"]?.stringValue ?? "?")  \(s["label"]?.stringValue.map(DisplayText.escaped) ?? "-")",
                         "  account \(s["account"]?.stringValue ?? "?"), key \(s["sessionKey"]?.stringValue ?? "?")",
                         "  created \(utcTime(s["createdAt"]) ?? "?"), \(SessionsList.state(s))"]
            if let pid = s["boundToProcess"]?.integerValue { lines.append("  for process \(pid) alone, and ends when it exits") }
            for c in s["session"]?["erc7739Policies"]?["allowedERC7739Content"]?.arrayValue ?? [] {
                let names = (c["contentNames"]?.arrayValue ?? []).compactMap(\.stringValue).map { DisplayText.escaped(String(reflecting: $0)) }
                lines.append("  signs typed data for the account (sign-typed-data): \(names.joined(separator: ", ")) under the application domain \(c["appDomainSeparator"]?.stringValue ?? "?")")
            }
            let limits = s["limits"]?.arrayValue ?? []
            let enabled = Set((s["enabledChains"]?.arrayValue ?? []).compactMap(\.stringValue))
            for chain in (s["chains"]?.arrayValue ?? []).compactMap(\.stringValue) {
                let texts = limits.filter { $0["chainId"]?.stringValue == chain }.compactMap { $0["text"]?.stringValue }
                let name = UInt64(chain).map(Chains.label) ?? "chain \(chain)"
                let state = enabled.contains(chain) ? "enabled (by a signature the agent gave)" : "not enabled yet (its first user operation enables it, or `account enable`)"
                lines.append("  on \(name), \(state): " + (texts.isEmpty ? "no limit that runs out" : "used and left"))
                lines += texts.map { "    " + $0 }
            }
            return CommandOutput(text: lines.joined(separator: "\n"), json: s)
        }
    }
}

struct SessionsStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "A session's state on chain, read from the endpoints in chain_rpc, beside the agent's own record of it.",
        discussion: """
            For each of the session's chains: whether the account is deployed and has SmartSession installed, whether the \
            session is enabled and its owners' enable signature still can enable it, and each policy counter on chain beside \
            the agent's ledger. The ledger may be ahead (operations signed and not yet included); a chain ahead of it means \
            the session was used outside the agent. With --all, every live session of every client, for a timer or a \
            monitoring check. Exit status: 0; 1 when a chain could not be read; 2 when a finding is critical.
            """)

    @Argument(help: "The session id.") var session: String?
    @Flag(help: "Every live session (neither revoked nor expired), of every client.") var all = false
    @Option(help: "Only this chain.") var chain: UInt64?
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (session == nil) == all else { throw ValidationError("give a session id, or --all") }
    }

    func run() throws {
        var statuses: [JSONValue] = []
        try report(output) {
            let control = try remote { try connectControl(socket) }
            // With --chain, those of the sessions that are for it.
            let ids = try session.map { [$0] } ?? SessionsList.all(control, method: "sessions_list", live: true)
                .filter { s in chain.map { (s["chains"]?.arrayValue ?? []).contains(.string(String($0))) } ?? true }
                .compactMap { $0["sessionId"]?.stringValue }
            var lines: [String] = []
            for id in ids {
                var params = JSONObject(["sessionId": .string(id)])
                if let chain { params["chainId"] = .string(String(chain)) }
                let status = try remote { try control.call("session_chain_status", params) }
                statuses.append(status)
                lines.append("\(status["sessionId"]?.stringValue ?? id), account \(status["account"]?.stringValue ?? "?"), permissionId \(status["permissionId"]?.stringValue ?? "?")")
                for c in status["chains"]?.arrayValue ?? [] { lines += Self.lines(c) }
            }
            if all && ids.isEmpty { lines.append("no live sessions") }
            return CommandOutput(text: lines.joined(separator: "\n"), json: all ? .array(statuses) : statuses.first ?? .null)
        }
        let chains = statuses.flatMap { $0["chains"]?.arrayValue ?? [] }
        if chains.contains(where: { $0["severity"]?.stringValue == "critical" }) { throw ExitCode(2) }
        if chains.contains(where: { $0["error"] != nil }) { throw ExitCode(1) }
    }

    static func lines(_ c: JSONValue) -> [String] {
        let name = c["chainId"]?.stringValue.flatMap(UInt64.init).map(Chains.label) ?? "chain ?"
        if let error = c["error"] {
            return ["\(name): not read: \(error["message"]?.stringValue ?? "?") (\(error["reason"]?.stringValue ?? "?"))"]
        }
        let mark = ["info": " ", "warning": "!", "critical": "✗"]
        var lines = ["\(name) via \(c["endpoint"]?.stringValue ?? "?"), block \(c["block"]?.stringValue ?? "?"):"]
        for f in c["findings"]?.arrayValue ?? [] {
            lines.append("  \(mark[f["severity"]?.stringValue ?? ""] ?? "?") \(f["message"]?.stringValue ?? "")")
        }
        lines += (c["counters"]?.arrayValue ?? []).map { "    " + ($0["text"]?.stringValue ?? "?") }
        let unreadable = (c["unreadable"]?.arrayValue ?? []).map { "\($0["counter"]?.stringValue ?? "?") of \($0["policy"]?.stringValue ?? "?")" }
        if !unreadable.isEmpty { lines.append("    not readable on chain (no getter): " + unreadable.joined(separator: ", ")) }
        return lines
    }
}

struct SessionsPrune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove the sessions of every client that ended (revoked, or expired) longer ago than --older-than.",
        discussion: "Their keys were erased when they ended; this removes what is left (the request, the ledger). The audit log keeps what they did, and an entry for the prune.")

    @Option(help: "How long ago they ended (\"30d\", \"52w\").") var olderThan: String
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func validate() throws { _ = try unixTime(olderThan: olderThan) }

    func run() throws {
        try report(output) {
            let result = try remote { try connectControl(socket).call("sessions_prune", JSONObject(["before": JSONValue(try unixTime(olderThan: olderThan))])) }
            let removed = result["removed"].map { $0.serialized } ?? "?"
            return CommandOutput(text: removed == "0" ? "nothing to remove" : "removed \(removed) session\(removed == "1" ? "" : "s")", json: result)
        }
    }
}

struct Revoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Revoke a session: its key is erased at once; prints what the account sends to remove it on chain.")
    @Argument(help: "The session id.") var session: String
    @OptionGroup var socket: ClientOrControlSocket
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let result = try remote { try socket.connect().call("session_revoke", JSONObject(["sessionId": .string(session)])) }
            var lines = [result["already"] == .bool(true) ? "\(session) was revoked already" + (utcTime(result["revokedAt"]).map { " at " + $0 } ?? "")
                                                          : "revoked \(session)"]
            if result["exportAllowed"] == .bool(true) {
                lines.append("Its key may have been handed to the client (the session allows export): a copy there can still sign.")
            }
            if let end = result["onChain"], let callData = end["callData"]?.stringValue {
                let chains = (end["chains"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(UInt64.init) }.map(Chains.label)
                lines.append("On chain the session stays enabled until the account \(end["account"]?.stringValue ?? "?") removes it. Sent as the callData "
                             + "of a user operation its owners sign, on \(chains.joined(separator: ", ")), this removes it (removeSession) and voids the "
                             + "ENABLE signatures they gave for it (revokeEnableSignature); `session-agent account end` has the owners sign it:")
                lines.append(callData)
            }
            return CommandOutput(text: lines.joined(separator: "\n"), json: result)
        }
    }
}

struct RPC: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Call an agent method directly (for scripts and debugging).")
    @Argument(help: "The method, e.g. agent_info.") var method: String
    @Argument(help: "The params as a JSON object.") var params: String = "{}"
    @OptionGroup var socket: ClientOrControlSocket
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            guard let object = try parseJSON(Array(params.utf8), what: "params").objectValue else { throw CommandFailure(message: "params must be a JSON object") }
            let result = try remote { try socket.connect().call(method, object) }
            return CommandOutput(text: result.prettyPrinted, json: result)
        }
    }
}
