import ArgumentParser
import EthereumCore
import Foundation
import SmartSessions

struct AccountCommands: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account",
        abstract: "The accounts the agent manages, and their own user operations, signed by their owners: install SmartSession, enable sessions by call, end sessions on chain.",
        discussion: """
            Give the user operation as your bundler estimated it (gas, fees, nonce; either form), without \
            its callData: the agent writes the callData, shows the operation decoded, and once you say yes \
            its owners sign it. The signed user operation is printed, ready for eth_sendUserOperation. The \
            nonce's key must select the owners' validator (`account list` gives it). On the control socket.
            """,
        subcommands: [AccountList.self, AccountAdd.self, AccountRemove.self, AccountInstall.self, AccountEnable.self, AccountEnd.self])
}

struct AccountList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "The accounts: kind, owners and threshold, owner validator, chains, and the nonce key of their own user operations.")
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let accounts = try remote { try connectControl(socket).call("accounts_list") }
            let text = (accounts.arrayValue ?? []).map { a in
                let owners = (a["owners"]?.arrayValue ?? []).compactMap(\.stringValue)
                let chains = (a["chains"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(UInt64.init) }.map(Chains.label)
                return ["\(a["address"]?.stringValue ?? "?")  \(a["kind"]?.stringValue ?? "?")" + (a["kernelVersion"]?.stringValue.map { " \($0)" } ?? ""),
                        "  \(a["threshold"]?.serialized ?? "?") of \(owners.count) owner\(owners.count == 1 ? "" : "s") through \(a["ownerValidator"]?.stringValue ?? "?"): " + owners.joined(separator: ", "),
                        "  chains: " + (chains.isEmpty ? "any" : chains.joined(separator: ", ")),
                        "  nonce key of its own user operations: \(a["ownerNonceKey"]?.stringValue ?? "?")"].joined(separator: "\n")
            }
            return CommandOutput(text: text.isEmpty ? "no accounts" : text.joined(separator: "\n"), json: accounts)
        }
    }
}

struct AccountAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Manage an account from now on (kept in the store across restarts; the configuration file's stay as they are).")
    @Argument(help: "The account's address.") var address: String
    @Option(help: "erc7579, nexus, safe7579 or kernel: how the account routes signatures to its validators.") var kind: String
    @Option(name: .customLong("owner"), help: "An owner: an address, or a passkey's p256:0x04… (repeat for several).") var owners: [String]
    @Option(help: "How many owner signatures the validator needs.") var threshold: Int = 1
    @Option(name: .customLong("owner-validator"), help: "The validator that checks the owners (default: OwnableValidator, or for passkeys the WebAuthnValidator).") var ownerValidator: String?
    @Option(name: .customLong("chain-id"), help: "A chain sessions may be enabled on (repeat; none: any).") var chains: [UInt64] = []
    @Option(name: .customLong("kernel-version"), help: "A Kernel account's version as its eip712Domain() gives it (0.3.3), for chains the agent cannot ask (default 0.3.1).")
    var kernelVersion: String?
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            var account = JSONObject([
                "address": .string(address), "kind": .string(kind), "owners": .array(owners.map { .string($0) }), "threshold": JSONValue(threshold),
                "chains": .array(chains.map { .string(String($0)) }),
            ])
            if let ownerValidator { account["ownerValidator"] = .string(ownerValidator) }
            if let kernelVersion { account["kernelVersion"] = .string(kernelVersion) }
            let added = try remote { try connectControl(socket).call("accounts_add", JSONObject(["account": .object(account)])) }
            return CommandOutput(text: "\(address) is managed", json: added)
        }
    }
}

struct AccountRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Stop managing an account added with account add; its requests still waiting fail. Its sessions stay, and sign on.")
    @Argument(help: "The account's address.") var address: String
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let removed = try remote { try connectControl(socket).call("accounts_remove", JSONObject(["address": .string(address)])) }
            return CommandOutput(text: "\(address) is no longer managed", json: removed)
        }
    }
}

struct AccountOperationOptions: ParsableArguments {
    @Option(help: "The account.") var account: String
    @Option(name: .customLong("chain-id"), help: "The chain id.") var chainId: UInt64
    @Option(help: "The user operation (JSON, unpacked or packed, without callData), or - for standard input.") var userop: String
    @Option(help: "The EntryPoint address (default: v0.7).") var entrypoint: String = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
    @Option(name: .customLong("eip7702-delegate"), help: "EntryPoint v0.8, an EIP-7702 account (factory 0x7702): the sender's delegate, which the userOpHash covers.") var delegate: String?
    @Flag(help: "Sign without asking (for scripts: the operator's decision is running the command).") var yes = false
    @Flag(name: .customLong("dry-run"), help: "Show the operation and its userOpHash; sign nothing.") var dryRun = false
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func perform(_ operation: String, sessions: [String], permissionIds: [String] = []) throws -> CommandOutput {
        var params = JSONObject([
            "account": .string(account), "chainId": .number(String(chainId)), "entryPoint": .string(entrypoint), "operation": .string(operation),
            "sessionIds": .array(sessions.map { .string($0) }), "userOperation": try parseJSON(try readInput(userop), what: "user operation"),
        ])
        if !permissionIds.isEmpty { params["permissionIds"] = .array(permissionIds.map { .string($0) }) }
        if let delegate { params["eip7702Delegate"] = .string(delegate) }
        let client = try remote { try connectControl(socket) }
        let prepared = try remote { try client.call("account_prepare", params) }
        let review = prepared["reviewText"]?.stringValue ?? ""
        if dryRun { return CommandOutput(text: review, json: prepared) }
        if !yes {
            Terminal.say(review)
            guard Terminal.yesOrNo("\nSign? [y/N] ") == true else { throw CommandFailure(message: "not signed", reason: "denied") }
        }
        params["userOpHash"] = prepared["userOpHash"]
        params["approver"] = .string("\(yes ? "command line" : "terminal") (uid \(getuid()))")
        // With --yes nobody is at the terminal: the agent's own channel asks (pinentry, PIN files).
        let secrets = Terminal.ownerSecrets(prepared, asking: !yes)
        if secrets.count > 0 { params["secrets"] = .object(secrets) }
        let signed = try remote { try client.call("account_sign", params) }
        var result = signed.objectValue ?? JSONObject()
        result["reviewText"] = .string(review)
        return CommandOutput(text: signed["userOperation"]?.prettyPrinted ?? "", json: .object(result))
    }
}

struct AccountInstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install", abstract: "Install SmartSession on the account, enabling the sessions named (approved ones of the agent) with it.")
    @Argument(help: "Sessions to enable with the install (none: install only).") var sessions: [String] = []
    @OptionGroup var options: AccountOperationOptions

    func run() throws { try report(options.output) { try options.perform("install", sessions: sessions) } }
}

struct AccountEnable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable", abstract: "Enable approved sessions by the account's call to SmartSession.enableSessions, instead of an ENABLE signature in their first user operation.")
    @Argument(help: "The sessions.") var sessions: [String]
    @OptionGroup var options: AccountOperationOptions

    func run() throws { try report(options.output) { try options.perform("enable", sessions: sessions) } }
}

struct AccountEnd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "end", abstract: "End sessions on chain: removeSession, and revokeEnableSignature so that no ENABLE signature given for them enables them again.")
    @Argument(help: "The sessions (revoked ones too).") var sessions: [String] = []
    @Option(name: .customLong("permission-id"), help: "A session the agent does not hold, by its permission id (repeatable).") var permissionIds: [String] = []
    @OptionGroup var options: AccountOperationOptions

    func validate() throws {
        guard !sessions.isEmpty || !permissionIds.isEmpty else { throw ValidationError("name at least one session, or a --permission-id") }
    }

    func run() throws { try report(options.output) { try options.perform("end", sessions: sessions, permissionIds: permissionIds) } }
}
