import Agent
import ArgumentParser
import EthereumCore
import Foundation
import OwnerSigners

struct Owner: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Owner keys.", subcommands: [OwnerCreate.self, OwnerGenerate.self, OwnerAdd.self, OwnerRemove.self, OwnerList.self, OwnerAddress.self])
}

struct OwnerCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an owner key in an Ethereum keystore v3 file (scrypt, as geth writes it).")

    @Option(help: "Where to write the keystore (must not exist).") var keystore: String
    @Option(name: .customLong("passphrase-file"), help: "Read the passphrase from this file (servers); otherwise it is asked twice on the terminal.") var passphraseFile: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            guard !FileManager.default.fileExists(atPath: keystore) else { throw CommandFailure(message: "\(keystore) exists; not overwriting it") }
            let passphrase: SecretBytes
            if let passphraseFile {
                do { passphrase = try SecretFile.readOnce(passphraseFile) } catch { throw CommandFailure(message: "\(error)") }
            } else {
                guard let first = Terminal.readSecret("New owner passphrase: "), let second = Terminal.readSecret("Again: ") else {
                    throw CommandFailure(message: "standard input ended before the passphrase was typed twice; give it with --passphrase-file")
                }
                let same = first.withUnsafeBytes { a in second.withUnsafeBytes { b in a.elementsEqual(b) } }
                guard same else { throw CommandFailure(message: "the passphrases differ") }
                passphrase = first
            }
            let key = Secp256k1.PrivateKey.generate()
            let file = try Keystore.encrypt(key, passphrase: passphrase)
            let old = umask(0o077)
            defer { umask(old) }
            guard FileManager.default.createFile(atPath: keystore, contents: Data((file.json.prettyPrinted + "\n").utf8)) else {
                throw CommandFailure(message: "cannot write \(keystore)")
            }
            return CommandOutput(text: key.address.checksummed, json: .object(JSONObject(["address": .string(key.address.checksummed), "keystore": .string(keystore)])))
        }
    }
}

struct OwnerAddress: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "address", abstract: "Print the address a keystore file records.")
    @Argument(help: "The keystore file.") var keystore: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let file = try Keystore(parsing: try readInput(keystore))
            guard let address = file.address else { throw CommandFailure(message: "\(keystore) records no address") }
            return CommandOutput(text: address.checksummed, json: .object(JSONObject(["address": .string(address.checksummed)])))
        }
    }
}

struct OwnerRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Unregister an owner added with owner add (those in the configuration file stay). The key itself is left as it is.")

    @Argument(help: "The owner's address (or a passkey's p256:…).") var address: String
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let removed = try remote {
                try connectControl(socket).call("owners_remove", JSONObject(["owner": .string(address)]))
            }
            return CommandOutput(text: "\(address) is no longer an owner", json: removed)
        }
    }
}

struct OwnerList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "The running agent's owners, and whether each could sign now.",
        discussion: """
            Ready means: a token owner's token is present and holds its key (read without a login), and a PIN or \
            passphrase read from a file or the environment can be read and is not one the token has refused (or may not \
            spend: its PIN locked, or one try left); a secret a person gives at approval is named. Nothing is signed and nobody is asked for anything. Exit status 1 when an owner is not ready, \
            for monitoring.
            """)

    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        var allReady = true
        try report(output) {
            let owners = try remote { try connectControl(socket).call("owners_list") }.arrayValue ?? []
            allReady = owners.allSatisfy { $0["ready"] == .bool(true) }
            let lines = owners.map { owner in
                let head = ["owner", "backend", "location"].map { owner[$0]?.stringValue ?? "?" }.joined(separator: "  ")
                if let problem = owner["problem"]?.stringValue { return head + "\n    NOT READY (\(owner["reason"]?.stringValue ?? "?")): \(problem)" }
                let when = owner["onDevice"] == .bool(true) ? "asks at signing, on the device" : "asks at approval"
                return head + (owner["asks"]?.stringValue.map { "\n    \(when): \($0)" } ?? "")
            }
            return CommandOutput(text: lines.isEmpty ? "no owners" : lines.joined(separator: "\n"), json: .array(owners))
        }
        if !allReady { throw ExitCode.failure }
    }
}
