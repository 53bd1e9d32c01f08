import ArgumentParser
import EthereumCore
import Foundation

struct AccountCommands: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account",
        abstract: "User operations of the account itself, signed by its owners: install SmartSession, enable sessions by call, end sessions on chain.",
        discussion: """
            Give the user operation as your bundler estimated it (gas, fees, nonce; either form), without \
            its callData: the agent writes the callData, shows the operation decoded, and once you say yes \
            its owners sign it. The signed user operation is printed, ready for eth_sendUserOperation. The \
            nonce's key must select the owners' validator (the agent says which key when it does not). \
            On the control socket.
            """,
        subcommands: [AccountInstall.self, AccountEnable.self, AccountEnd.self])
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
        // Asked only for what the agent lacks, owner by owner, in its words.
        for onDevice in prepared["onDevice"]?.arrayValue ?? [] {
            if let prompt = onDevice["prompt"]?.stringValue { Terminal.say(prompt + ": give it on the device when it asks") }
        }
        var secrets = JSONObject()
        for ask in prepared["asks"]?.arrayValue ?? [] where !yes {
            if let owner = ask["owner"]?.stringValue, let prompt = ask["prompt"]?.stringValue, let secret = Terminal.readSecretParameter(prompt + ": ") {
                secrets[owner] = secret
            }
        }
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
