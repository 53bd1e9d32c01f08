import Approval
import ChainRPC
import EthereumCore
import Foundation
import OwnerSigners
import SmartSessions
import TOML

/// session-agent.toml: where things live, the owners, the accounts, the rules, who may connect.
/// Relative paths are relative to the file; `$CREDENTIALS_DIRECTORY/…` is in the directory of
/// systemd credentials. See docs/configuration.md.
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
    /// How many connections one uid may hold open to each socket.
    public var connectionsPerUID: Int
    public var owners: [OwnerConfig]
    public var accounts: [AccountConfig]
    /// The PKCS#11 module for URIs that name none (`?module-path=`); without it, the modules
    /// p11-kit knows are searched for the token.
    public var pkcs11Module: String?
    /// The PIN of the token that wraps the store's data key (`session-agent store rewrap`).
    public var storePINFile: String?
    /// More modules owners added at run time may use (see `RunTimeModules`).
    public var pkcs11Modules: [String]
    /// How long a PKCS#11 module may take to answer one call, in seconds.
    public var pkcs11Timeout: UInt64
    /// Where Prometheus scrapes `/metrics` (an IP literal and a port); nil: not served.
    public var metricsListen: (host: String, port: Int)?
    /// FIDO2 authenticators asked besides those plugged in: `unix:PATH` for one on a socket.
    public var fido2Devices: [String]
    /// The JSON-RPC endpoint of each chain whose state `session_chain_status` reads.
    public var chainRPC: [UInt64: ChainEndpoint]
    /// When the store locks by itself (`lock_when_idle`, `lock_after`).
    public var autoLock: Agent.AutoLock

    /// "127.0.0.1:9464", "[::1]:9464": an IP literal (a name would need a resolver the agent
    /// does not trust with its start) and a port.
    static func listenAddress(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) } else if host.contains(":") { return nil }
        var v4 = in_addr(), v6 = in6_addr()
        guard inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1 else { return nil }
        return (host, port)
    }

    /// The modules an owner added at run time may use: the ones this file names, and those
    /// p11-kit knows.
    public var runTimeModules: RunTimeModules {
        RunTimeModules(pkcs11Modules + [pkcs11Module].compactMap { $0 } + owners.compactMap { owner in
            if case .pkcs11(let uri, _, _) = owner { uri.modulePath } else { nil }
        })
    }

    public init(toml text: String, relativeTo base: String, environment env: [String: String] = ProcessInfo.processInfo.environment) throws(AgentError) {
        let table: JSONObject
        do { table = try TOMLDocument.parse(text) } catch { throw AgentError("bad_config", "invalid TOML: \(error)") }
        func resolved(_ s: String) -> String { s.hasPrefix("/") ? s : base + "/" + s }
        func path(_ key: String, in t: JSONObject = table, at: String = "") throws(AgentError) -> String? {
            guard let v = t[key] else { return nil }
            guard let s = v.stringValue else { throw AgentError("bad_config", "\(at)\(key): a path string") }
            // A credential systemd passes (LoadCredentialEncrypted=): a PIN or passphrase kept
            // encrypted at rest, and readable only by this service while it runs.
            if s.hasPrefix(Self.credentials + "/") {
                guard let directory = env["CREDENTIALS_DIRECTORY"], directory.hasPrefix("/") else {
                    throw AgentError("bad_config", "\(at)\(key): \(Self.credentials) is not set; systemd sets it for a unit with LoadCredential= or LoadCredentialEncrypted=")
                }
                return directory + s.dropFirst(Self.credentials.count)
            }
            return resolved(s)
        }
        let known = ["data_dir", "socket_dir", "rules", "tokens", "approval_timeout", "partial_message_timeout", "connections_per_uid", "allow_uids", "allow_gids", "store_passphrase_file", "store_pin_file", "pinentry", "owners", "accounts",
                     "pkcs11_module", "pkcs11_modules", "pkcs11_timeout", "metrics_listen", "fido2_devices", "chain_rpc", "lock_when_idle", "lock_after", "lock_on_sleep"]
        func duration(_ key: String, default value: UInt64) throws(AgentError) -> UInt64 {
            guard let t = table[key] else { return value }
            let seconds: UInt64
            do { seconds = try DurationText.seconds(t.stringValue ?? "") } catch { throw AgentError("bad_config", "\(key): \(error)") }
            // A year is beyond any sensible wait, and keeps timers (nanoseconds in an Int64) in range.
            guard seconds <= 366 * 86400 else { throw AgentError("bad_config", "\(key): at most \"366d\"") }
            return seconds
        }
        if let extra = table.keys.first(where: { !known.contains($0) }) { throw AgentError("bad_config", "\(extra): unknown key" + Spelling.suggestion(for: extra, among: known)) }
        dataDirectory = try path("data_dir") ?? AgentPaths.dataDirectory(env)
        socketDirectory = try path("socket_dir") ?? AgentPaths.socketDirectory(env)
        rulesFile = try path("rules")
        tokensFile = try path("tokens")
        storePassphraseFile = try path("store_passphrase_file")
        storePINFile = try path("store_pin_file")
        pkcs11Module = try path("pkcs11_module")
        pkcs11Modules = []
        if let list = table["pkcs11_modules"] {
            guard let items = list.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                throw AgentError("bad_config", "pkcs11_modules: a list of module paths")
            }
            pkcs11Modules = items.compactMap(\.stringValue).map(resolved)
        }
        metricsListen = try table["metrics_listen"].map { value throws(AgentError) in
            guard let text = value.stringValue, let address = Self.listenAddress(text) else {
                throw AgentError("bad_config", "metrics_listen: an IP address and a port, \"127.0.0.1:9464\" or \"[::1]:9464\" (no host names)")
            }
            return address
        }
        fido2Devices = []
        if let list = table["fido2_devices"] {
            guard let items = list.arrayValue?.compactMap(\.stringValue), items.count == list.arrayValue?.count,
                  items.allSatisfy({ $0.hasPrefix("unix:/") || $0.hasPrefix("/dev/") }) else {
                throw AgentError("bad_config", "fido2_devices: a list of devices, \"unix:/PATH\" for an authenticator on a socket or a /dev/hidrawN path")
            }
            fido2Devices = items
        }
        chainRPC = [:]
        if let value = table["chain_rpc"] {
            guard let endpoints = value.objectValue else { throw AgentError("bad_config", "chain_rpc: a table of chain ids and their endpoints, [chain_rpc] then 8453 = \"https://…\"") }
            for (chain, url) in endpoints {
                guard let id = UInt64(chain), id > 0 else { throw AgentError("bad_config", "chain_rpc.\(chain): a key is a chain id, a number") }
                guard let text = url.stringValue else { throw AgentError("bad_config", "chain_rpc.\(chain): the endpoint's URL, a string") }
                do { chainRPC[id] = try ChainEndpoint(text) } catch { throw AgentError("bad_config", "chain_rpc.\(chain): \(error)") }
            }
        }
        approvalTimeout = try duration("approval_timeout", default: 300)
        partialMessageTimeout = try duration("partial_message_timeout", default: 30)
        pkcs11Timeout = try duration("pkcs11_timeout", default: 60)
        func optionalDuration(_ key: String) throws(AgentError) -> UInt64? { table[key] == nil ? nil : try duration(key, default: 0) }
        guard table["lock_on_sleep"].map({ $0.boolValue != nil }) ?? true else { throw AgentError("bad_config", "lock_on_sleep: true or false") }
        autoLock = Agent.AutoLock(whenIdle: try optionalDuration("lock_when_idle"), after: try optionalDuration("lock_after"),
                                  onSleep: table["lock_on_sleep"]?.boolValue ?? false)
        // The agent would open the store again from the file it reads, or hold what opens it.
        if autoLock != Agent.AutoLock(), let unattended = storePassphraseFile != nil ? "store_passphrase_file" : storePINFile != nil ? "store_pin_file" : nil {
            let key = autoLock.whenIdle != nil ? "lock_when_idle" : autoLock.after != nil ? "lock_after" : "lock_on_sleep"
            throw AgentError("bad_config", "\(key): a store that locks by itself is one a person unlocks, and \(unattended) opens it unattended; leave one of them out")
        }
        connectionsPerUID = ConnectionCounts.defaultPerUID
        if let value = table["connections_per_uid"] {
            guard let n = value.integerValue, (1...65536).contains(n) else { throw AgentError("bad_config", "connections_per_uid: a number from 1 to 65536") }
            connectionsPerUID = Int(n)
        }
        func ids(_ key: String) throws(AgentError) -> Set<UInt32> {
            guard let value = table[key] else { return [] }
            guard let list = value.arrayValue else { throw AgentError("bad_config", "\(key): a list of numeric ids") }
            var ids = Set<UInt32>()
            for item in list {
                guard let n = item.integerValue, let id = UInt32(exactly: n) else { throw AgentError("bad_config", "\(key): a list of numeric ids") }
                ids.insert(id)
            }
            return ids
        }
        switch table["pinentry"] {
        case nil: pinentry = nil
        case let value?:
            let words = value.stringValue.map { [$0] } ?? value.arrayValue?.compactMap(\.stringValue) ?? []
            guard !words.isEmpty, words.count == (value.arrayValue?.count ?? 1) else { throw AgentError("bad_config", "pinentry: a program path, or a list of the program and its arguments") }
            pinentry = words
        }
        allowedUIDs = try ids("allow_uids")
        allowedGIDs = try ids("allow_gids")
        for key in ["owners", "accounts"] where table[key] != nil && table[key]?.arrayValue == nil {
            throw AgentError("bad_config", "\(key): a list of tables, written [[\(key)]], not [\(key)]")
        }
        owners = []
        for (i, item) in (table["owners"]?.arrayValue ?? []).enumerated() {
            guard let t = item.objectValue else { throw AgentError("bad_config", "owners[\(i)]: a table") }
            owners.append(try OwnerConfig(t, at: "owners[\(i)].", relativeTo: base, path: { key throws(AgentError) in try path(key, in: t, at: "owners[\(i)].") }))
        }
        // The same fields as `accounts_add` takes, in snake case.
        accounts = []
        for (i, item) in (table["accounts"]?.arrayValue ?? []).enumerated() {
            guard let t = item.objectValue else { throw AgentError("bad_config", "accounts[\(i)]: a table") }
            var fields = JSONObject()
            let camelCase = ["owner_validator": "ownerValidator", "kernel_version": "kernelVersion"]
            for (key, value) in t { fields[camelCase[key] ?? key] = value }
            do { accounts.append(try AccountConfig(json: .object(fields), path: "accounts[\(i)]")) } catch {
                throw AgentError("bad_config", camelCase.reduce(error.message) { $0.replacingOccurrences(of: $1.value, with: $1.key) })
            }
        }
    }
}

extension AgentConfiguration {
    /// How a path in the file names the directory of systemd credentials.
    static let credentials = "$CREDENTIALS_DIRECTORY"
}

/// The PKCS#11 modules an owner added through the control socket may name with `module-path`:
/// those the configuration names, and those p11-kit knows (which root registers). Any other is
/// refused before it is loaded: loading a library runs its code inside the agent, so a control
/// socket reached from elsewhere (forwarded, or by a confused program) must not be able to pick
/// one, as ssh-agent refuses PKCS#11 providers outside its allow-list. The same holds for such an
/// owner at the next start, so taking a module out of the configuration takes it out of use.
public struct RunTimeModules: Sendable {
    /// The named modules' files (symlinks followed).
    let files: Set<String>

    public init(_ paths: [String]) { files = Set(paths.map(PKCS11Module.file)) }

    public func check(_ uri: PKCS11URI) throws(AgentError) {
        guard let path = uri.modulePath else { return }
        let file = PKCS11Module.file(path)
        if files.contains(file) || PKCS11Module.registered().contains(where: { PKCS11Module.file($0.path) == file }) { return }
        throw AgentError("forbidden", "\(path) is not a module owners added at run time may use: name it in the configuration "
                         + "(pkcs11_modules, pkcs11_module or an owner's URI) or register it with p11-kit")
    }
}

/// One `[[owners]]` table: a keystore file, a key on a PKCS#11 token, an OpenPGP card's
/// signature key, or a passkey on a FIDO2 authenticator.
public enum OwnerConfig: Sendable, Equatable {
    case keystore(path: String, passphraseFile: String?)
    /// `address`, when given, lets the agent start while the token is absent (and is checked
    /// against the key once it is there): a secp256k1 key's address, or a P-256 key's `p256:…`.
    case pkcs11(uri: PKCS11URI, pin: PINSource, address: OwnerKey?)
    /// The card by its serial number; `address` as for a token.
    case openPGPCard(serial: String, pin: PINSource, address: Address?)
    /// The file `session-agent fido2 create` wrote.
    case passkey(path: String)

    init(_ t: JSONObject, at prefix: String, relativeTo base: String, path: (String) throws(AgentError) -> String?) throws(AgentError) {
        let keys = Set(t.keys)
        if let keystore = try path("keystore") {
            let known = ["keystore", "passphrase_file"]
            if let extra = keys.subtracting(known).first {
                throw AgentError("bad_config", "\(prefix)\(extra): unknown key for a keystore owner" + Spelling.suggestion(for: extra, among: known))
            }
            self = .keystore(path: keystore, passphraseFile: try path("passphrase_file"))
            return
        }
        if let passkey = try path("passkey") {
            if let extra = keys.subtracting(["passkey"]).first {
                throw AgentError("bad_config", "\(prefix)\(extra): unknown key for a passkey owner, which is its file alone")
            }
            self = .passkey(path: passkey)
            return
        }
        let card = t["openpgp_card"]
        guard let text = (card ?? t["pkcs11"])?.stringValue else {
            throw AgentError("bad_config", "\(prefix)keystore, \(prefix)pkcs11, \(prefix)openpgp_card or \(prefix)passkey: an owner is a keystore file, a PKCS#11 URI, an OpenPGP card's serial number or a passkey file")
        }
        let kind = card == nil ? "pkcs11" : "openpgp_card"
        let known = [kind, "pin_file", "pin_env", "address"]
        if let extra = keys.subtracting(known).first {
            throw AgentError("bad_config", "\(prefix)\(extra): unknown key for \(card == nil ? "a PKCS#11" : "an OpenPGP card") owner" + Spelling.suggestion(for: extra, among: known))
        }
        var address: OwnerKey?
        if let a = t["address"] {
            guard let text = a.stringValue, let parsed = try? OwnerKey(text), card == nil || parsed.address != nil else {
                throw AgentError("bad_config", "\(prefix)address: a 0x address" + (card == nil ? ", or p256: and a P-256 key's public key" : ""))
            }
            address = parsed
        }
        let pinFile = try path("pin_file"), pinEnv = t["pin_env"]?.stringValue
        guard pinFile == nil || pinEnv == nil else { throw AgentError("bad_config", "\(prefix)pin_file, pin_env: one PIN source, not both") }
        if card != nil {
            let serial: String
            do { serial = try OpenPGPCards.serial(text) } catch { throw AgentError("bad_config", "\(prefix)openpgp_card: \(error)") }
            self = .openPGPCard(serial: serial, pin: pinFile.map { .file($0) } ?? pinEnv.map { .environment($0) } ?? .prompt, address: address?.address)
            return
        }
        let uri: PKCS11URI
        do { uri = try PKCS11URI(text).resolvingPaths(against: base) } catch { throw AgentError("bad_config", "\(prefix)pkcs11: \(error)") }
        if pinFile != nil || pinEnv != nil, uri.pinSourceDiffers(from: pinFile) {
            throw AgentError("bad_config", "\(prefix)\(pinFile == nil ? "pin_env" : "pin_file"): the URI's pin-source already names \(uri.pinFile ?? ""); one PIN source, not two")
        }
        let fromURI = uri.pinFile.map { PINSource.file($0) }
        self = .pkcs11(uri: uri, pin: pinFile.map { .file($0) } ?? pinEnv.map { .environment($0) } ?? fromURI ?? .prompt, address: address)
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

    public func ownerSignature(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> OwnerSignature {
        let file = passphraseFile
        return try await inner.ownerSignature(approved, prompt: { _ in try SecretFile.read(file) })
    }

    /// Ready when the file can be read, which gives the secret the inner owner asks for.
    public func readiness() async -> OwnerReadiness {
        do { _ = try SecretFile.read(passphraseFile) } catch { return .notReady(.secretNeeded("\(error)")) }
        if case .notReady(let problem) = await inner.readiness() { return .notReady(problem) }
        return .ready
    }
}
