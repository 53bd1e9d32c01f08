import Approval
import EthereumCore
import Foundation
import OwnerSigners
import SmartSessions
import TOMLKit

/// session-agent.toml: where things live, the owners, the accounts, the rules, who may connect.
/// Relative paths are relative to the file. See docs/configuration.md.
public struct AgentConfiguration: Sendable {
    public var dataDirectory: String
    public var socketDirectory: String
    public var rulesFile: String?
    public var tokensFile: String?
    public var approvalTimeout: UInt64
    public var allowedUIDs: Set<UInt32>
    public var allowedGIDs: Set<UInt32>
    public var storePassphraseFile: String?
    /// The pinentry program and its arguments, when a person approves through one.
    public var pinentry: [String]?
    /// How long the rest of a message may take once part of it arrived.
    public var partialMessageTimeout: UInt64
    public var owners: [(keystore: String, passphraseFile: String?)]
    public var accounts: [AccountConfig]

    public init(toml text: String, relativeTo base: String, environment env: [String: String] = ProcessInfo.processInfo.environment) throws(AgentError) {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch { throw AgentError("bad_config", "invalid TOML: \(error)") }
        func path(_ key: String, in t: TOMLTable = table, at: String = "") throws(AgentError) -> String? {
            guard let v = t[key] else { return nil }
            guard let s = v.string else { throw AgentError("bad_config", "\(at)\(key): a path string") }
            return s.hasPrefix("/") ? s : base + "/" + s
        }
        let known = ["data_dir", "socket_dir", "rules", "tokens", "approval_timeout", "partial_message_timeout", "allow_uids", "allow_gids", "store_passphrase_file", "pinentry", "owners", "accounts"]
        func duration(_ key: String, default value: UInt64) throws(AgentError) -> UInt64 {
            guard let t = table[key] else { return value }
            guard let s = t.string, let unit = s.last, let n = UInt64(s.dropLast()), let scale: UInt64 = ["s": 1, "m": 60, "h": 3600][unit] else {
                throw AgentError("bad_config", "\(key): a duration like \"5m\" or \"30s\"")
            }
            return n * scale
        }
        if let extra = table.keys.first(where: { !known.contains($0) }) { throw AgentError("bad_config", "\(extra): unknown key") }
        dataDirectory = try path("data_dir") ?? AgentPaths.dataDirectory(env)
        socketDirectory = try path("socket_dir") ?? AgentPaths.socketDirectory(env)
        rulesFile = try path("rules")
        tokensFile = try path("tokens")
        storePassphraseFile = try path("store_passphrase_file")
        approvalTimeout = try duration("approval_timeout", default: 300)
        partialMessageTimeout = try duration("partial_message_timeout", default: 30)
        func ids(_ key: String) throws(AgentError) -> Set<UInt32> {
            guard let value = table[key] else { return [] }
            guard let list = value.array.map({ Array($0) }) else { throw AgentError("bad_config", "\(key): a list of numeric ids") }
            var ids = Set<UInt32>()
            for item in list {
                guard let n = item.int, let id = UInt32(exactly: n) else { throw AgentError("bad_config", "\(key): a list of numeric ids") }
                ids.insert(id)
            }
            return ids
        }
        switch table["pinentry"] {
        case nil: pinentry = nil
        case let value?:
            let words = value.string.map { [$0] } ?? value.array.map { Array($0).compactMap(\.string) } ?? []
            guard !words.isEmpty, words.count == (value.array?.count ?? 1) else { throw AgentError("bad_config", "pinentry: a program path, or a list of the program and its arguments") }
            pinentry = words
        }
        allowedUIDs = try ids("allow_uids")
        allowedGIDs = try ids("allow_gids")
        owners = []
        for (i, item) in (table["owners"]?.array.map { Array($0) } ?? []).enumerated() {
            guard let t = item.table, let keystore = try path("keystore", in: t, at: "owners[\(i)].") else {
                throw AgentError("bad_config", "owners[\(i)]: a table with a keystore path")
            }
            owners.append((keystore, try path("passphrase_file", in: t, at: "owners[\(i)].")))
        }
        // The same fields as `accounts_add` takes, in snake case.
        accounts = []
        for (i, item) in (table["accounts"]?.array.map { Array($0) } ?? []).enumerated() {
            guard let t = item.table else { throw AgentError("bad_config", "accounts[\(i)]: a table") }
            var fields = JSONObject()
            for (key, value) in t { fields[key == "owner_validator" ? "ownerValidator" : key] = Self.json(value) }
            do { accounts.append(try AccountConfig(json: .object(fields), path: "accounts[\(i)]")) } catch {
                throw AgentError("bad_config", error.message.replacingOccurrences(of: "ownerValidator", with: "owner_validator"))
            }
        }
    }
}

extension AgentConfiguration {
    /// TOML strings, integers, booleans and arrays as JSON.
    static func json(_ value: TOMLValueConvertible) -> JSONValue {
        if let s = value.string { return .string(s) }
        if let i = value.int { return .number(String(i)) }
        if let b = value.bool { return .bool(b) }
        if let a = value.array { return .array(Array(a).map { json($0) }) }
        return .null
    }
}

/// An owner whose passphrase comes from a file (servers), instead of from the approver.
public struct FileSecretOwner: OwnerSigner {
    public let inner: any OwnerSigner
    public let passphraseFile: String

    public init(_ inner: any OwnerSigner, passphraseFile: String) {
        self.inner = inner
        self.passphraseFile = passphraseFile
    }

    public var identity: OwnerIdentity { inner.identity }

    public func sign(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> RecoverableSignature {
        let file = passphraseFile
        return try await inner.sign(approved, prompt: { _ in try SecretFile.read(file) })
    }
}

/// Reads a passphrase file (one line; the trailing newline is not part of it).
public enum SecretFile {
    public static func read(_ path: String) throws -> SecretBytes {
        guard var data = FileManager.default.contents(atPath: path) else {
            throw AgentError("no_secret", "cannot read the passphrase file \(path)")
        }
        defer { data.withUnsafeMutableBytes { SecretBytes.zero($0) } }
        var length = data.count
        while length > 0, data[length - 1] == 0x0A || data[length - 1] == 0x0D { length -= 1 }
        return data.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
    }
}
