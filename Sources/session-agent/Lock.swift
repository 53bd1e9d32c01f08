import Agent
import ArgumentParser
import EthereumCore
import Foundation
import OwnerSigners

struct Lock: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lock the session-key store (as ssh-add -x): its data key leaves the agent's memory, and signing stops until `unlock`.")

    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let client = try connectControl(socket)
            let result = try remote { try client.call("agent_lock") }
            return CommandOutput(text: "the store is locked", json: result)
        }
    }
}

struct Unlock: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Unlock the session-key store (as ssh-add -X).",
        discussion: """
            Asks here, without echo, for what the agent needs: the store's passphrase, or the PIN of the token \
            that wraps its data key (nothing when the agent reads that PIN from store_pin_file; on a reader with \
            a keypad, it is entered there). The secret goes to the agent over the control socket, never through \
            arguments or the environment.
            """)

    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @Option(help: "Read the passphrase or PIN from this file (chmod 600) instead of asking.") var secretFile: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let client = try connectControl(socket)
            let asks = try remote { try client.call("agent_unlock_asks") }
            guard asks["locked"] == .bool(true) else { return CommandOutput(text: "the store is already open", json: asks) }
            if let prompt = asks["onDevice"]?.stringValue { Terminal.say(prompt + ": give it on the device when it asks") }
            var params = JSONObject()
            if let prompt = asks["asks"]?.stringValue { params["passphrase"] = try secret(prompt, new: asks["new"] == .bool(true)) }
            let result = try remote { try client.call("agent_unlock", params) }
            if let warning = result["warning"]?.stringValue { Terminal.say("WARNING: " + warning) }
            let locks = [result["locksWhenIdle"]?.stringValue.map { "once no session key is used for \($0)" },
                         result["locksAfter"]?.stringValue.map { "\($0) from now" },
                         result["locksOnSleep"] == .bool(true) ? "when the machine goes to sleep" : nil].compactMap { $0 }
            return CommandOutput(text: "the store is open" + (locks.isEmpty ? "" : "; it locks again " + locks.joined(separator: ", or ")), json: result)
        }
    }

    /// The secret from `secretFile`, or typed here (twice when it is a new passphrase).
    private func secret(_ prompt: String, new: Bool) throws -> JSONValue {
        func text(_ secret: SecretBytes) -> JSONValue { .string(secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }) }
        if let secretFile { return text(try SecretFile.readOnce(secretFile)) }
        guard let typed = Terminal.readSecretParameter(prompt + ": ") else { throw CommandFailure(message: "nothing was typed; the store stays locked", reason: "locked") }
        if new, Terminal.readSecretParameter("Again: ") != typed { throw CommandFailure(message: "the two passphrases differ; the store stays locked", reason: "locked") }
        return typed
    }
}
