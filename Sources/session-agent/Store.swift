import Agent
import ArgumentParser
import EthereumCore
import Foundation
import OwnerSigners
import SessionStore

struct Store: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The session-key store file.", subcommands: [StoreBackup.self, StoreCheck.self, StoreRewrap.self, StoreCompact.self])

    static func path(_ given: String?) throws -> String {
        let path = given ?? AgentPaths.dataDirectory(ProcessInfo.processInfo.environment) + "/store.sqlite"
        guard FileManager.default.fileExists(atPath: path) else { throw CommandFailure(message: "no store at \(path)", reason: "not_found") }
        return path
    }

    /// `store` (the file at `path`, or a copy of it) unlocked here with its passphrase
    /// (`passphraseFile`, or typed after `prompt`) or the PIN of the token that wraps its data key.
    static func unlocked(_ store: SessionStore, path: String, passphraseFile: String?, pkcs11: PKCS11Options, prompt: String) async throws -> SessionStore {
        switch try store.protection {
        case nil: throw CommandFailure(message: "the store at \(path) has no data key yet (the agent's first unlock makes it)", reason: "not_found")
        case .passphrase?:
            try store.unlock(passphrase: try secret(file: passphraseFile, prompt: prompt))
        case .token(let uri)?:
            FileHandle.standardError.write(Data("unlocking with \(uri)\n".utf8))
            try await store.unlock(pin: pkcs11.pin(for: uri), prompt: pkcs11.prompt)
            if let warning = store.warning { Terminal.say("WARNING: " + warning) }
        }
        return store
    }

    static func secret(file: String?, option: String = "--passphrase-file", prompt: String) throws -> SecretBytes {
        if let file { return try SecretFile.readOnce(file) }
        guard let secret = Terminal.readSecret(prompt) else { throw CommandFailure(message: "standard input ended before a passphrase; give it with \(option)", reason: "locked") }
        return secret
    }
}

struct StoreBackup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the store to a new file, while the agent runs, and check the copy.",
        discussion: """
            The copy is one consistent snapshot (SQLite's VACUUM INTO), taken without holding up the agent's writes, \
            in a new file made 0600. It is then checked page by page and its audit chain walked; the entry it ends at \
            is printed, to be noted beside it. Session keys stay sealed in it: the store's passphrase, or the token \
            that wraps its data key, opens it. To restore, stop the agent and put the copy in place of store.sqlite \
            (removing store.sqlite-wal and -shm): the agent's ledger then counts only what was signed before the \
            copy, while the chain's policies count everything (docs/configuration.md).
            """)

    @Option(help: "The store file. Default: $XDG_DATA_HOME/session-agent/store.sqlite.") var store: String?
    @Option(help: "The new file (it must not exist).") var to: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let path = try Store.path(store)
            guard !FileManager.default.fileExists(atPath: to) else { throw CommandFailure(message: "\(to) exists; not overwriting it") }
            try SessionStore.backup(path, to: to)
            let copy = try SessionStore(path: to)
            try copy.checkFile()
            let entries = try copy.verifyAudit().get()
            let head = copy.knownAuditHead
            let size = (try? FileManager.default.attributesOfItem(atPath: to)[.size] as? NSNumber)?.intValue ?? 0
            var json = JSONObject(["store": .string(path), "backup": .string(to), "bytes": JSONValue(size), "auditEntries": JSONValue(entries)])
            json["auditHead"] = head.map { .object(JSONObject(["seq": JSONValue(Int($0.seq)), "hash": .string($0.hash)])) } ?? .null
            let end = head.map { "; its audit log ends at entry \($0.seq), hash \($0.hash)" } ?? ""
            return CommandOutput(text: "backed up \(path) to \(to) (\(String(format: "%.1f MB", Double(size) / 1e6)), checked\(end))", json: .object(json))
        }
    }
}

struct StoreCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a store: every page of its file, and every session key beside its row; exit status 1 on damage.",
        discussion: """
            Each session key the store holds is opened with the data key, bound to its whole row, and each \
            session whose key does not open is named: its row was edited in the file (another client, a later \
            end, export allowed), or its key is damaged. Such a session cannot sign. Nothing is changed. \
            Without --store, the running agent checks its store, which must be unlocked (it does the same \
            after each unlock, and names such sessions in its journal). With --store, this command checks that \
            file, a backup say, with its passphrase or its token's PIN, on a copy it takes into memory (as much \
            as the file is large); the file itself is only read. The audit log's chain has its own check, `audit verify`.
            """)

    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @Option(help: "Check this store file here, not the agent's.") var store: String?
    @Option(name: .customLong("passphrase-file"), help: "With --store: the store's passphrase (otherwise it is asked).") var passphraseFile: String?
    @OptionGroup var pkcs11: PKCS11Options
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if store == nil, passphraseFile != nil || pkcs11.pinFile != nil { throw ValidationError("--passphrase-file and --pin-file go with --store") }
        if store != nil, socket != nil { throw ValidationError("--socket checks the agent's store, --store a file: give one") }
    }

    func run() async throws {
        try await report(output) {
            let result: JSONValue
            if let store {
                // Checked on a copy in memory: opening the file itself would bring a store of an
                // older version up to date, writing to a backup that should stay as it was, and a
                // copy on disk would stay behind a check stopped with Ctrl-C.
                let path = try Store.path(store)
                result = try await Store.unlocked(try SessionStore.copyInMemory(of: path), path: path, passphraseFile: passphraseFile, pkcs11: pkcs11,
                                                  prompt: "Store passphrase: ").check().json
            } else {
                result = try remote { try connectControl(socket).call("store_check") }
            }
            let file = result["file"]?.stringValue ?? "?"
            let damaged = (result["keys"]?["damaged"]?.arrayValue ?? []).map { key in
                (id: key["sessionId"]?.stringValue ?? "?", problem: key["problem"]?.stringValue ?? "?")
            }
            guard result["intact"] == .bool(true) else {
                var problems: [String] = []
                if file != "ok" { problems.append("its file: \(file)") }
                if damaged.count == 1 { problems.append("1 session cannot sign, as its key does not open beside its row") }
                if damaged.count > 1 { problems.append("\(damaged.count) sessions cannot sign, as their keys do not open beside their rows") }
                throw CommandFailure(message: "the store is damaged: \(problems.joined(separator: "; "))", reason: "store_corrupt",
                                     hints: damaged.map { "session \($0.id): \($0.problem)" }
                                         + (damaged.isEmpty ? [] : ["revoke such a session (session-agent rpc session_revoke '{\"sessionId\":\"…\"}' --control), or restore the store from a backup"])
                                         + (file == "ok" ? [] : ["restore the store from a backup (session-agent store backup makes one)"]))
            }
            let checked = result["keys"]?["checked"]?.serialized ?? "?"
            return CommandOutput(text: "the store is intact: every page of its file, and the \(checked) session key\(checked == "1" ? "" : "s") it holds, each opened beside its row",
                                 json: result)
        }
    }
}

struct StoreCompact: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Rewrite the store file without the space that pruning freed; the agent must be stopped.",
        discussion: """
            A store gives back what `audit prune` and `sessions prune` free as they go, unless an earlier build made \
            it: such a store keeps that space for later writes. compact rewrites it once (about 2 s for 400 MB), and \
            from then on it gives the space back too. Nothing in it changes: sessions, ledger and audit chain stay as \
            they are.
            """)

    @Option(help: "The store file. Default: $XDG_DATA_HOME/session-agent/store.sqlite.") var store: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let path = try Store.path(store)
            let directory = (path as NSString).deletingLastPathComponent
            let lock: InstanceLock
            do throws(AgentError) { lock = try InstanceLock(directory: directory) } catch {
                guard error.reason == "already_running" else { throw error }
                throw CommandFailure(message: "an agent serves \(directory): stop it first, since the rewrite would hold up its writes (the ledger entries of signatures among them) for as long as it takes",
                                     reason: "already_running")
            }
            let before = try fileSize(path)
            try withExtendedLifetime(lock) { try SessionStore(path: path).compact() }
            let after = try fileSize(path)
            return CommandOutput(text: "compacted \(path): \(megabytes(before)) → \(megabytes(after))",
                                 json: .object(JSONObject(["store": .string(path), "bytesBefore": JSONValue(Int(before)), "bytesAfter": JSONValue(Int(after))])))
        }
    }

    private func fileSize(_ path: String) throws -> UInt64 {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
    }

    private func megabytes(_ bytes: UInt64) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }
}

struct StoreRewrap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrap",
        abstract: "Protect the store's data key with a token's AES key (pkcs11:…) or a passphrase instead of what protects it now.",
        discussion: """
            The data key itself does not change, so the sessions stay sealed as they are and a running agent is not \
            disturbed. Wrapped by a token, the store opens only while that token is present; the AES key is made on \
            the token (sensitive, not extractable) when it has none with that label, and one whose value the token lets be \
            read is refused. The new protection is recorded in the audit log.
            """)

    @Option(help: "The store file. Default: $XDG_DATA_HOME/session-agent/store.sqlite.") var store: String?
    @Option(help: "pkcs11:token=…;object=… (an AES key on the token), or \"passphrase\".") var to: String
    @Option(name: .customLong("passphrase-file"), help: "The current passphrase, when a passphrase protects the store now.") var passphraseFile: String?
    @Option(name: .customLong("new-passphrase-file"), help: "The new passphrase, with --to passphrase.") var newPassphraseFile: String?
    @OptionGroup var pkcs11: PKCS11Options
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await report(output) {
            let path = try Store.path(store)
            let sessionStore = try await Store.unlocked(try SessionStore(path: path), path: path, passphraseFile: passphraseFile, pkcs11: pkcs11,
                                                        prompt: "Current store passphrase: ")
            if to == "passphrase" {
                try sessionStore.rewrap(passphrase: try Store.secret(file: newPassphraseFile, option: "--new-passphrase-file", prompt: "New store passphrase: "))
            } else {
                var uri = try pkcs11.parse(to)
                if uri.modulePath == nil, let module = pkcs11.module { uri = uri.with(modulePath: module) }
                try await sessionStore.rewrap(token: uri, pin: pkcs11.pin(for: uri), prompt: pkcs11.prompt)
            }
            let now: String = switch try sessionStore.protection {
            case .token(let uri)?: uri.description
            default: "passphrase"
            }
            return CommandOutput(text: "the store's data key is now protected by \(now)", json: .object(JSONObject(["store": .string(path), "protection": .string(now)])))
        }
    }
}
