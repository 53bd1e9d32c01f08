import Approval
import EthereumCore
import Foundation
import Logging
import OwnerSigners
import SessionStore
import SmartSessions
import Synchronization

/// The methods of the two sockets, documented in docs/protocol.md. Client methods see only the
/// caller's own requests and sessions; control methods are for the operator.
public struct AgentRPC: Sendable {
    public static let version = "0.1.0"
    public static let clientMethods = ["agent_info", "session_request", "session_wait", "session_get", "session_list",
                                       "session_signUserOperation", "session_signTypedData", "session_export", "session_revoke"]
    public static let controlMethods = ["agent_info", "pending_list", "pending_get", "pending_secret", "pending_decide", "sessions_list", "session_get", "session_revoke",
                                        "accounts_list", "accounts_add", "accounts_remove", "owners_list", "owners_add", "owners_remove", "agent_lock", "agent_unlock_asks", "agent_unlock", "rules_reload", "audit_verify", "audit_show", "audit_prune", "sessions_prune", "store_check",
                                        "account_prepare", "account_sign", "session_chain_status"]
    /// The parameters each method takes. Any other is refused, as the configuration file refuses
    /// unknown keys: a misspelt `bindExecutable` must not quietly give a session bound more loosely.
    static let parameters: [String: Set<String>] = [
        "session_request": ["request", "bindExecutable", "bindUnit", "bindProcess"], "session_wait": ["id", "timeout"], "session_get": ["sessionId"],
        "session_signUserOperation": ["sessionId", "chainId", "entryPoint", "entryPointVersion", "userOperation", "mode", "eip7702Delegate"],
        "session_signTypedData": ["sessionId", "chainId", "typedData", "accountDomain"],
        "session_export": ["sessionId"], "session_revoke": ["sessionId"], "session_list": ["live", "after", "limit"], "sessions_list": ["live", "after", "limit"],
        "pending_get": ["id"], "pending_secret": ["id"], "pending_decide": ["id", "approve", "approver", "reason", "passphrase", "secrets"],
        "accounts_add": ["account"], "accounts_remove": ["address"], "owners_add": ["pkcs11", "pinFile", "pin", "openpgpCard", "passkey", "keystore", "passphraseFile"],
        "owners_remove": ["owner", "address"], "agent_unlock": ["passphrase"], "audit_show": ["after", "kind", "limit"], "audit_prune": ["through", "before"], "sessions_prune": ["before"],
        "session_chain_status": ["sessionId", "chainId"], "account_prepare": accountOperationParameters, "account_sign": accountOperationParameters.union(["userOpHash", "approver", "passphrase", "secrets"]),
    ]
    static let accountOperationParameters: Set<String> = ["account", "chainId", "entryPoint", "entryPointVersion", "eip7702Delegate", "operation", "sessionIds", "permissionIds", "userOperation"]

    let agent: Agent
    /// Re-reads the rules file for `rules_reload`; nil when the agent has none.
    let reloadRules: (@Sendable () throws -> LoadedRules?)?
    /// The configuration's PKCS#11 module, for `owners_add` URIs that name none.
    let pkcs11Module: String?
    /// The modules `owners_add` may name.
    let runTimeModules: RunTimeModules
    let storeFaults: StoreFaults

    public init(agent: Agent, reloadRules: (@Sendable () throws -> LoadedRules?)? = nil, pkcs11Module: String? = nil, runTimeModules: RunTimeModules = RunTimeModules([])) {
        self.agent = agent
        self.reloadRules = reloadRules
        self.pkcs11Module = pkcs11Module
        self.runTimeModules = runTimeModules
        storeFaults = StoreFaults(logger: agent.logger)
    }

    /// Answers one line. Never throws: every failure becomes a JSON-RPC error with a reason.
    public func respond(to line: [UInt8], client: ClientIdentity, control: Bool) async -> String {
        switch JSONRPC.parse(line) {
        case .failure(let malformed): JSONRPC.error(malformed.id, malformed.error)
        case .success(let request): await respond(to: request, client: client, control: control)
        }
    }

    func respond(to request: JSONRPC.Request, client: ClientIdentity, control: Bool) async -> String {
        let allowed = control ? Self.controlMethods : Self.clientMethods
        guard allowed.contains(request.method) else {
            let elsewhere = (control ? Self.clientMethods : Self.controlMethods).contains(request.method)
            return JSONRPC.error(request.id, AgentError(elsewhere ? "wrong_socket" : "unknown_method",
                                                        elsewhere ? "\(request.method) is a \(control ? "client" : "control") socket method" : "no method \(request.method)",
                                                        code: -32601))
        }
        let taken = Self.parameters[request.method] ?? []
        if let unknown = request.params.keys.first(where: { !taken.contains($0) }) {
            let takes = taken.isEmpty ? "takes none" : "takes " + taken.sorted().joined(separator: ", ")
            return JSONRPC.error(request.id, .badRequest("params.\(unknown): not a parameter of \(request.method), which \(takes)" + Spelling.suggestion(for: unknown, among: taken)))
        }
        do throws(AgentError) {
            return JSONRPC.result(request.id, try await call(request.method, request.params, client: client, control: control))
        } catch {
            storeFaults.report(error)
            return JSONRPC.error(request.id, error)
        }
    }

    /// Answers `session_signUserOperation` on the calling thread (the socket's event loop):
    /// `reply` gets the answer at once, or from the commit thread once a signature that changes
    /// state is on disk. Returns false for every other request, which goes to `respond`.
    func respondOnThisThread(to request: JSONRPC.Request, client: ClientIdentity, control: Bool, reply: @escaping @Sendable (String) -> Void) -> Bool {
        guard !control, request.method == "session_signUserOperation" else { return false }
        do throws(AgentError) {
            let waiter = CommitWaiter()
            let (signed, durable) = try agent.signer.sign(try signRequest(request.params, client: client), whenDurable: waiter.complete)
            guard durable else {
                reply(JSONRPC.result(request.id, Self.json(signed)))
                return true
            }
            let id = request.id
            waiter.whenComplete { committed in
                switch committed {
                case .success: reply(JSONRPC.result(id, Self.json(signed)))
                case .failure(let error):
                    let failure = AgentError(error)
                    storeFaults.report(failure)
                    reply(JSONRPC.error(id, failure))
                }
            }
        } catch {
            storeFaults.report(error)
            reply(JSONRPC.error(request.id, error))
        }
        return true
    }

    /// Where a user operation goes: `chainId`, `entryPoint`, `entryPointVersion` (needed for a
    /// non-canonical EntryPoint) and `eip7702Delegate`.
    func destination(_ p: JSONObject) throws(AgentError) -> (chainId: UInt64, entryPoint: Address, version: EntryPointVersion, eip7702Delegate: Address?) {
        guard let chain = try optionalChainId(p) else { throw .badRequest("params.chainId: a chain id is required") }
        let entryPoint = try address(p, "entryPoint")
        let version: EntryPointVersion
        if let v = try optionalString(p, "entryPointVersion") {
            guard let parsed = EntryPointVersion(rawValue: v) else { throw .badRequest("params.entryPointVersion: 0.7 or 0.8") }
            version = parsed
        } else if let known = EntryPointVersion(canonicalAddress: entryPoint) {
            version = known
        } else { throw .badRequest("params.entryPointVersion: needed for a non-canonical EntryPoint") }
        let delegate = try p["eip7702Delegate"] == nil ? nil : address(p, "eip7702Delegate")
        return (chain, entryPoint, version, delegate)
    }

    /// `chainId`, a number or a decimal or hex string.
    func optionalChainId(_ p: JSONObject) throws(AgentError) -> UInt64? {
        try optional(p, "chainId", "a chain id") { v -> UInt64? in
            switch v { case .number(let n): UInt64(n); case .string(let s): (try? UInt256(parsing: s))?.uint64; default: nil }
        }
    }

    func signRequest(_ p: JSONObject, client: ClientIdentity) throws(AgentError) -> SessionSigner.Request {
        let sessionId = try string(p, "sessionId")
        let (chain, entryPoint, version, delegate) = try destination(p)
        guard let opJSON = p["userOperation"] else { throw .badRequest("params.userOperation is required") }
        let op: PackedUserOperation
        do { op = try PackedUserOperation.parse(json: opJSON) } catch { throw .badRequest("params.userOperation.\(error)") }
        var mode: SmartSessionMode?
        if let m = try optionalString(p, "mode") {
            switch m {
            case "use": mode = .use
            case "enable": mode = .enable
            case "unsafe-enable": mode = .unsafeEnable
            default: throw .badRequest("params.mode: use, enable or unsafe-enable")
            }
        }
        return .init(sessionId: sessionId, client: client, chainId: chain, entryPoint: entryPoint, version: version, operation: op, forceMode: mode,
                     eip7702Delegate: delegate)
    }

    static func json(_ signed: Agent.SignedOperation) -> JSONValue {
        .object(JSONObject([
            "signature": .string(Hex.encode(signed.signature)), "mode": .string(signed.mode.description),
            "userOpHash": .string(signed.userOpHash.hex), "validAfter": JSONValue(Int(signed.validAfter)), "validUntil": JSONValue(Int(signed.validUntil)),
        ]))
    }

    static func json(_ signed: Agent.SignedMessage) -> JSONValue {
        let d = signed.accountDomain
        return .object(JSONObject([
            "signature": .string(Hex.encode(signed.signature)), "hash": .string(signed.hash.hex), "digest": .string(signed.digest.hex),
            "appDomainSeparator": .string(signed.message.appDomainSeparator.hex), "contents": .string(signed.message.contents.hex),
            "contentsDescription": .string(signed.message.contentsDescription),
            "accountDomain": .object(JSONObject(["name": .string(d.name), "version": .string(d.version), "chainId": .string(d.chainId.description),
                                                 "verifyingContract": .string(d.verifyingContract.checksummed), "salt": .string(d.salt.hex),
                                                 "readFromChain": .bool(signed.accountDomainReadFromChain)])),
        ]))
    }

    /// `typedData`: an `eth_signTypedData_v4` document, as an object or as its JSON text.
    func typedData(_ p: JSONObject) throws(AgentError) -> TypedData {
        let document: JSONValue
        switch p["typedData"] {
        case .string(let text)?:
            do { document = try JSONValue(parsing: text) } catch { throw .badRequest("params.typedData: \(error)") }
        case let given? where given.objectValue != nil: document = given
        default: throw .badRequest("params.typedData: an eth_signTypedData_v4 document, as an object or as JSON text")
        }
        do { return try TypedData(json: document) } catch { throw .badRequest("params.typedData: \(error)") }
    }

    /// `accountDomain`: `{name, version, salt?}`, the account's EIP-712 domain where the agent
    /// cannot read it from the chain.
    func givenAccountDomain(_ p: JSONObject) throws(AgentError) -> Agent.GivenAccountDomain? {
        guard let given = p["accountDomain"], given != .null else { return nil }
        guard let o = given.objectValue, let name = o["name"]?.stringValue, let version = o["version"]?.stringValue,
              o.keys.allSatisfy(["name", "version", "salt"].contains) else {
            throw .badRequest("params.accountDomain: {\"name\", \"version\", \"salt\"}, the account's EIP-712 domain (salt optional)")
        }
        guard let saltText = o["salt"]?.stringValue else {
            guard o["salt"] == nil else { throw .badRequest("params.accountDomain.salt: 32 bytes in hex") }
            return .init(name: name, version: version)
        }
        do { return .init(name: name, version: version, salt: try Bytes32(hex: saltText)) } catch { throw .badRequest("params.accountDomain.salt: 32 bytes in hex") }
    }

    static func json(_ asks: [(owner: OwnerKey, prompt: String, onDevice: Bool)]) -> JSONValue {
        .array(asks.map { .object(JSONObject(["owner": .string($0.owner.description), "prompt": .string($0.prompt)])) })
    }

    /// `secrets`: owners' own passphrases or PINs, by owner (`passphrase` serves every owner).
    func ownerSecrets(_ p: JSONObject) throws(AgentError) -> [OwnerKey: SecretBytes] {
        var secrets: [OwnerKey: SecretBytes] = [:]
        guard let given = p["secrets"] else { return secrets }
        guard let object = given.objectValue else { throw .badRequest("params.secrets: an object of owner address to passphrase or PIN") }
        for (owner, value) in object.entries {
            guard let text = value.stringValue, let key = try? OwnerKey(owner) else {
                throw .badRequest("params.secrets: an object of owner address to passphrase or PIN")
            }
            secrets[key] = SecretBytes(utf8: text)
        }
        return secrets
    }

    /// The parameters `account_prepare` and `account_sign` share.
    func accountOperation(_ p: JSONObject) throws(AgentError) -> Agent.AccountOperationRequest {
        let (chain, entryPoint, version, delegate) = try destination(p)
        let kinds = Agent.AccountOperationRequest.Kind.allCases.map(\.rawValue)
        guard let kind = try optionalString(p, "operation").flatMap(Agent.AccountOperationRequest.Kind.init(rawValue:)) else {
            throw .badRequest("params.operation: one of \(kinds.joined(separator: ", "))")
        }
        func list<T>(_ key: String, _ what: String, _ read: (String) -> T?) throws(AgentError) -> [T] {
            guard let given = p[key], given != .null else { return [] }
            guard let items = given.arrayValue else { throw .badRequest("params.\(key): a list of \(what)") }
            var out: [T] = []
            for item in items {
                guard let value = item.stringValue.flatMap(read) else { throw .badRequest("params.\(key): a list of \(what)") }
                out.append(value)
            }
            return out
        }
        guard let op = p["userOperation"]?.objectValue else { throw .badRequest("params.userOperation: the user operation (gas and fees from the bundler), a JSON object") }
        return .init(account: try address(p, "account"), chainId: chain, entryPoint: entryPoint, version: version, eip7702Delegate: delegate, kind: kind,
                     sessionIds: try list("sessionIds", "session ids") { $0 }, permissionIds: try list("permissionIds", "32-byte permission ids") { try? Bytes32(hex: $0) },
                     userOperation: op)
    }

    func string(_ p: JSONObject, _ key: String) throws(AgentError) -> String {
        guard let s = p[key]?.stringValue else { throw .badRequest("params.\(key): a string is required") }
        return s
    }

    /// An optional parameter: absent (or null) is nil, and one of another type is an error, not
    /// taken as absent.
    func optional<T>(_ p: JSONObject, _ key: String, _ kind: String, _ read: (JSONValue) -> T?) throws(AgentError) -> T? {
        guard let given = p[key], given != .null else { return nil }
        guard let value = read(given) else { throw .badRequest("params.\(key): \(kind)") }
        return value
    }

    func optionalString(_ p: JSONObject, _ key: String) throws(AgentError) -> String? { try optional(p, key, "a string") { $0.stringValue } }
    func optionalBool(_ p: JSONObject, _ key: String) throws(AgentError) -> Bool? { try optional(p, key, "true or false") { $0.boolValue } }
    func optionalSecret(_ p: JSONObject, _ key: String) throws(AgentError) -> SecretBytes? { try optionalString(p, key).map(SecretBytes.init(utf8:)) }
    func optionalCount(_ p: JSONObject, _ key: String, _ range: ClosedRange<Int64>) throws(AgentError) -> Int64? {
        try optional(p, key, "a whole number in \(range.lowerBound)...\(range.upperBound)") { value -> Int64? in
            guard let n = value.integerValue, range.contains(n) else { return nil }
            return n
        }
    }

    func address(_ p: JSONObject, _ key: String) throws(AgentError) -> Address {
        let text = try string(p, key)
        do { return try Address(text) } catch { throw .badRequest("params.\(key): \(error)") }
    }

    func call(_ method: String, _ p: JSONObject, client: ClientIdentity, control: Bool) async throws(AgentError) -> JSONValue {
        let scope: ClientIdentity? = control ? nil : client
        switch method {
        case "agent_info":
            let store = try await agent.storeState()
            var storeInfo = JSONObject(["locked": .bool(store.locked)])
            if let reason = store.reason { storeInfo["reason"] = .string(reason) }
            switch store.protection {
            case nil: storeInfo["protection"] = .null
            case .passphrase: storeInfo["protection"] = "passphrase"
            case .token: storeInfo["protection"] = "pkcs11"
            }
            if let present = store.tokenPresent { storeInfo["tokenPresent"] = .bool(present) }
            // The operator's to act on (it names the token and the key).
            if control, let warning = store.warning { storeInfo["warning"] = .string(warning) }
            var info = JSONObject([
                "store": .object(storeInfo),
                "version": .string(Self.version),
                "methods": .array((control ? Self.controlMethods : Self.clientMethods).map { .string($0) }),
                "requestFormats": .array(["session-agent", "erc7715-wallet_grantPermissions", "erc7715-wallet_requestExecutionPermissions"]),
                "entryPoints": .array(EntryPointVersion.allCases.map { .object(JSONObject(["version": .string($0.rawValue), "address": .string($0.canonicalAddress.checksummed)])) }),
                "smartSession": .string(SmartSessionAddresses.smartSession.checksummed),
                "client": .string(client.description),
            ])
            // The operator's: which rules file is in force, to hold against `sha256sum` of it.
            if control, let rules = await agent.rulesSource {
                info["rules"] = .object(JSONObject(["path": .string(rules.path), "sha256": .string(rules.sha256)]))
            }
            return .object(info)
        case "session_request":
            guard let request = p["request"] else { throw .badRequest("params.request: the session request is required") }
            var binding: SessionBinding = []
            for (name, bound) in [("bindExecutable", SessionBinding.executable), ("bindUnit", .unit), ("bindProcess", .process)] where try optionalBool(p, name) ?? false {
                binding.insert(bound)
            }
            let pending = try await agent.request(request, client: client, binding: binding)
            return Self.json(pending, withReview: true)
        case "session_wait":
            let timeout = try optional(p, "timeout", "seconds, a number from 0") { value -> Double? in
                let text: String? = if case .number(let n) = value { n } else { value.stringValue }
                guard let seconds = text.flatMap(Double.init), seconds >= 0, seconds.isFinite else { return nil }
                return seconds
            } ?? 60
            return Self.json(try await agent.wait(try string(p, "id"), client: scope, timeout: min(timeout, 3600)), withReview: false)
        case "pending_get":
            return Self.json(try await agent.requestStatus(try string(p, "id"), client: nil), withReview: true)
        case "session_get":
            let (session, limits, enabled) = try agent.sessionWithLimits(try string(p, "sessionId"), client: scope)
            var o = Self.json(session, now: agent.clock())
            o["limits"] = .array(limits.map(Self.json))
            o["enabledChains"] = .array(enabled.sorted().map { .string(String($0)) })
            return .object(o)
        case "session_list", "sessions_list":
            let page = try agent.sessions(client: scope, live: try optionalBool(p, "live") ?? false, after: try optionalString(p, "after"),
                                          limit: Int(try optionalCount(p, "limit", 1...10_000) ?? 1_000))
            let now = agent.clock()
            return .array(page.map { .object(Self.json($0, now: now)) })
        case "session_signUserOperation":
            return Self.json(try await agent.signUserOperation(try signRequest(p, client: client)))
        case "session_signTypedData":
            guard let chainId = try optionalChainId(p) else { throw .badRequest("params.chainId: a chain id is required") }
            let signed = try await agent.signTypedData(sessionId: try string(p, "sessionId"), client: client, chainId: chainId, document: try typedData(p),
                                                       accountDomain: try givenAccountDomain(p))
            return Self.json(signed)
        case "session_export":
            let key = try await agent.exportKey(sessionId: try string(p, "sessionId"), client: client)
            return .object(JSONObject(["privateKey": .string(key.withUnsafeBytes { Hex.encode($0) }), "address": .string(key.address.checksummed)]))
        case "session_chain_status":
            let (session, chains) = try await agent.chainStatus(of: try string(p, "sessionId"), chainId: try optionalChainId(p))
            return .object(JSONObject(["sessionId": .string(session.id), "account": .string(session.account.checksummed),
                                       "permissionId": .string(session.session.permissionId.hex), "chains": .array(chains.map(Self.json))]))
        case "session_revoke":
            let revoked = try await agent.revoke(sessionId: try string(p, "sessionId"), client: scope)
            return .object(JSONObject(["revoked": true, "revokedAt": JSONValue(Int(revoked.at)), "already": .bool(revoked.already),
                                       "exportAllowed": .bool(revoked.session.exportAllowed), "onChain": .object(Self.onChainEnd(of: revoked.session))]))
        case "pending_secret":
            let asks = try await agent.secretsToApprove(try string(p, "id"))
            return .object(JSONObject(["asks": Self.json(asks.filter { !$0.onDevice }), "onDevice": Self.json(asks.filter(\.onDevice))]))
        case "pending_list":
            return .array(await agent.pendingRequests().map { Self.json($0, withReview: true) })
        case "pending_decide":
            guard let approve = p["approve"]?.boolValue else { throw .badRequest("params.approve: true or false") }
            let decided = try await agent.decide(try string(p, "id"), approve: approve, approver: try optionalString(p, "approver") ?? "operator (\(client))",
                                                 reason: try optionalString(p, "reason") ?? "", ownerSecret: try optionalSecret(p, "passphrase"), ownerSecrets: try ownerSecrets(p))
            return Self.json(decided, withReview: false)
        case "account_prepare":
            let request = try await agent.withNonceFromChain(try accountOperation(p))
            let prepared = try await agent.prepareAccountOperation(request)
            let asks = await agent.secretsToSign(forAccount: request.account)
            return .object(JSONObject([
                "userOperation": .object(prepared.userOperation), "userOpHash": .string(prepared.userOpHash.hex), "ownerDigest": .string(prepared.ownerDigest.hex),
                "reviewText": .string(prepared.text), "asks": Self.json(asks.filter { !$0.onDevice }), "onDevice": Self.json(asks.filter(\.onDevice)),
            ]))
        case "account_sign":
            let shown: Bytes32
            do { shown = try Bytes32(hex: try string(p, "userOpHash")) } catch { throw .badRequest("params.userOpHash: the userOpHash account_prepare gave") }
            let signed = try await agent.signAccountOperation(try await agent.withNonceFromChain(try accountOperation(p)), shown: shown, approver: try optionalString(p, "approver") ?? "operator (\(client))",
                                                              ownerSecret: try optionalSecret(p, "passphrase"), ownerSecrets: try ownerSecrets(p))
            return .object(JSONObject(["userOperation": .object(signed.userOperation), "userOpHash": .string(signed.userOpHash.hex)]))
        case "accounts_list":
            return .array(await agent.accountList().map(\.json))
        case "accounts_add":
            guard let account = p["account"] else { throw .badRequest("params.account is required") }
            try await agent.addAccount(try AccountConfig(json: account))
            return .object(JSONObject(["added": true]))
        case "accounts_remove":
            try await agent.removeAccount(try address(p, "address"))
            return .object(JSONObject(["removed": true]))
        case "owners_add":
            let owner: any OwnerSigner, registration: SessionStore.RegisteredOwner
            var custody: PKCS11KeyCustody?
            // A parameter of another kind of owner is a mistake, not something to drop: a
            // keystore given `pinFile` for its passphrase would ask a person at each approval.
            let kinds: [(key: String, name: String, takes: [String])] = [("pkcs11", "PKCS#11 owner", ["pinFile", "pin"]),
                                                                        ("openpgpCard", "card owner", ["pinFile"]),
                                                                        ("passkey", "passkey owner", []),
                                                                        ("keystore", "keystore owner", ["passphraseFile"])]
            let kind = kinds.first { (p[$0.key] ?? .null) != .null } ?? kinds[3]
            if let stray = p.keys.sorted().first(where: { !([kind.key] + kind.takes).contains($0) && p[$0] != .null }) {
                throw .badRequest("params.\(stray): not for a \(kind.name), which takes " + (kind.takes.isEmpty ? "nothing more" : kind.takes.joined(separator: " and ")))
            }
            if let file = try optionalString(p, "passkey") {
                guard file.hasPrefix("/") else { throw .badRequest("params.passkey: an absolute path") }
                let passkey: Passkey
                do { passkey = try Passkey.read(file) } catch { throw .badRequest("params.passkey: \(error)") }
                owner = PasskeyOwner(passkey: passkey, file: file)
                registration = .init(address: owner.identity.key.description, backend: "fido2", location: file, secretFile: nil)
            } else if let text = try optionalString(p, "openpgpCard") {
                let pinFile = try optionalString(p, "pinFile")
                guard pinFile?.hasPrefix("/") ?? true else { throw .badRequest("params.pinFile: an absolute path") }
                let serial: String
                do { serial = try OpenPGPCards.serial(text) } catch { throw .badRequest("params.openpgpCard: \(error)") }
                let card: OpenPGPCardOwner
                do throws(OpenPGPCardFailure) {
                    card = try await OpenPGPCardOwner.load(serial: serial, pin: pinFile.map { .file($0) } ?? .prompt)
                    // A PIN file is tried now, under the rules of every unattended PIN: a wrong one
                    // is refused here rather than at the first approval.
                    if pinFile != nil { try await card.checkPIN() }
                } catch { throw AgentError(error.ownerError.reason, "\(error)") }
                owner = card
                registration = .init(address: card.identity.key.description, backend: "openpgp-card", location: serial, secretFile: pinFile)
            } else if let text = try optionalString(p, "pkcs11") {
                let uri: PKCS11URI
                do { uri = try PKCS11URI(text) } catch { throw .badRequest("params.pkcs11: \(error)") }
                // The agent's working directory is nobody's business: relative paths would be read there.
                let givenPINFile = try optionalString(p, "pinFile")
                if givenPINFile != nil, uri.pinSourceDiffers(from: givenPINFile) {
                    throw .badRequest("params.pinFile: params.pkcs11's pin-source already names \(uri.pinFile ?? ""); one PIN source, not two")
                }
                let pinFile = givenPINFile ?? uri.pinFile
                guard pinFile?.hasPrefix("/") ?? true, uri.modulePath?.hasPrefix("/") ?? true else {
                    throw .badRequest("params.pinFile, params.pkcs11's module-path and pin-source: absolute paths")
                }
                try runTimeModules.check(uri)
                // `pin` serves once, for a token that shows its keys only after a login; never kept.
                let loginPIN = try optionalSecret(p, "pin")
                let located = try await OwnerLoader.pkcs11(uri, pin: pinFile.map { .file($0) } ?? .prompt, loginPIN: loginPIN, defaultModule: pkcs11Module)
                owner = located
                registration = .init(address: located.identity.key.description, backend: "pkcs11", location: located.uri.description, secretFile: pinFile)
                // With a PIN at hand (the file, or the one given for a token that hides its keys),
                // the agent logs in now: a wrong PIN file is refused here rather than at the first
                // approval, and what the token says of the private key is reported. An owner key
                // that can leave its token is worth little as one: said, not refused (a key
                // imported from a backup is a choice the operator made). A key the token will not
                // sign digests with is refused: it would fail every approval.
                if pinFile != nil || loginPIN != nil {
                    let key: PKCS11KeyInfo?
                    do throws(PKCS11Failure) { key = try await located.withPrivateHalf(askPIN: OwnerLoader.askPIN(loginPIN)) } catch {
                        throw AgentError(error.ownerError.reason, "\(error)")
                    }
                    if let why = key?.cannotSign { throw AgentError("owner_unavailable", "the key \(located.uri) cannot sign as an owner: \(why)") }
                    custody = key?.custody
                }
            } else {
                let keystore = try string(p, "keystore")
                let passphraseFile = try optionalString(p, "passphraseFile")
                guard keystore.hasPrefix("/"), passphraseFile?.hasPrefix("/") ?? true else { throw .badRequest("params.keystore, params.passphraseFile: absolute paths") }
                let opened = try OwnerLoader.keystoreOwner(keystore)
                if let passphraseFile { try await OwnerLoader.checkPassphrase(opened, passphraseFile: passphraseFile) }
                owner = passphraseFile.map { FileSecretOwner(opened, passphraseFile: $0) } ?? opened
                registration = .init(address: owner.identity.key.description, backend: "keystore", location: keystore, secretFile: passphraseFile)
            }
            try await agent.addOwner(owner, registration: registration, custody: custody)
            var added = Self.ownerEntry(owner.identity)
            if registration.backend == "pkcs11" { added["custody"] = custody.map { .string($0.rawValue) } ?? .null }
            return .object(added)
        case "owners_remove":
            // `address` as before passkeys; `owner` takes a passkey's p256:… too.
            let named: String
            if let owner = try optionalString(p, "owner") { named = owner } else { named = try string(p, "address") }
            let key: OwnerKey
            do throws(OwnerSignerError) { key = try OwnerKey(named) } catch { throw .badRequest("params.owner: \(error)") }
            try await agent.removeOwner(key)
            return .object(JSONObject(["removed": true]))
        case "owners_list":
            return .array(await agent.ownerReadiness().map { owner, readiness in
                var entry = Self.ownerEntry(owner)
                switch readiness {
                case .ready:
                    entry["ready"] = true
                case .needsSecret(let prompt):
                    entry["ready"] = true
                    entry["asks"] = .string(prompt)
                case .asksOnDevice(let prompt):
                    entry["ready"] = true
                    entry["asks"] = .string(prompt)
                    entry["onDevice"] = true
                case .notReady(let problem):
                    entry["ready"] = false
                    entry["reason"] = .string(problem.reason)
                    entry["problem"] = .string(problem.description)
                }
                return .object(entry)
            })
        case "agent_lock":
            await agent.lock()
            return .object(JSONObject(["locked": true]))
        case "agent_unlock_asks":
            guard try await agent.storeState().locked else { return .object(JSONObject(["locked": false])) }
            var asks = JSONObject(["locked": true])
            if let (prompt, onDevice, new) = try await agent.unlockAsks() {
                asks[onDevice ? "onDevice" : "asks"] = .string(prompt)
                asks["new"] = new ? true : nil
            }
            return .object(asks)
        case "agent_unlock":
            let passphrase = try optionalSecret(p, "passphrase")
            try await agent.unlock(passphrase)
            var unlocked = JSONObject(["locked": false])
            unlocked["warning"] = agent.store.warning.map { .string($0) }
            unlocked["locksWhenIdle"] = agent.autoLock.whenIdle.map { .string(DurationText.text($0)) }
            unlocked["locksAfter"] = agent.autoLock.after.map { .string(DurationText.text($0)) }
            if agent.autoLock.onSleep { unlocked["locksOnSleep"] = true }
            return .object(unlocked)
        case "rules_reload":
            guard let reloadRules else { throw AgentError("no_rules", "the agent runs without a rules file") }
            let loaded: LoadedRules?
            do { loaded = try reloadRules() } catch { throw AgentError("bad_rules", "\(error)") }
            await agent.putInForce(loaded?.rules, from: loaded?.source, because: "rules_reload")
            return .object(JSONObject(["reloaded": true]))
        case "audit_show":
            let entries = try agent.auditEntries(after: try optionalCount(p, "after", 0...Int64.max), kind: try optionalString(p, "kind"),
                                                 limit: Int(try optionalCount(p, "limit", 1...10_000) ?? 100))
            return .array(entries.map { e in
                .object(JSONObject(["seq": JSONValue(Int(e.seq)), "at": JSONValue(Int(e.at)), "kind": .string(e.kind), "entry": e.entry, "hash": .string(e.hash)]))
            })
        case "audit_verify":
            let result = try agent.verifyAudit()
            func entry(_ e: (seq: Int64, hash: String)?) -> JSONValue { e.map { .object(JSONObject(["seq": JSONValue(Int($0.seq)), "hash": .string($0.hash)])) } ?? .null }
            return .object(JSONObject(["intact": .bool(result.intact), "entries": JSONValue(result.entries), "problem": result.problem.map { .string($0) } ?? .null,
                                       "head": entry(result.head), "prunedThrough": entry(result.start)]))
        case "audit_prune":
            let (through, before) = (try optionalCount(p, "through", 1...Int64.max), try optionalCount(p, "before", 0...Int64.max))
            guard (through == nil) != (before == nil) else { throw .badRequest("params: give one of through (an entry's number) and before (a Unix time)") }
            guard let pruned = try agent.pruneAudit(through: through, before: before.map(UInt64.init)) else { return .object(JSONObject(["removed": JSONValue(0)])) }
            return .object(JSONObject(["removed": JSONValue(pruned.removed), "through": JSONValue(Int(pruned.through)), "hash": .string(pruned.hash)]))
        case "sessions_prune":
            guard let before = try optionalCount(p, "before", 0...Int64.max) else { throw .badRequest("params.before: the Unix time sessions must have ended before") }
            return .object(JSONObject(["removed": JSONValue(try agent.pruneSessions(endedBefore: UInt64(before)))]))
        case "store_check":
            return try agent.checkStore().json
        default:
            throw AgentError("unknown_method", "no method \(method)", code: -32601)
        }
    }

    static func json(_ r: Agent.PendingRequest, withReview: Bool) -> JSONValue {
        var o = JSONObject()
        o["id"] = .string(r.id)
        o["status"] = .string(r.status.rawValue)
        o["reason"] = .string(r.reason)
        o["sessionId"] = r.sessionId.map { .string($0) } ?? .null
        o["client"] = .string(r.client.description)
        o["permissionId"] = .string(r.compiled.permissionId.hex)
        o["multichainDigest"] = .string(r.review.multichainDigest.hex)
        o["highestSeverity"] = r.review.highestSeverity.map { .string($0.rawValue) } ?? .null
        if withReview {
            o["review"] = r.review.json
            o["reviewText"] = .string(r.review.text())
        }
        return .object(o)
    }

    /// One of `session_chain_status`'s `chains` (docs/protocol.md).
    static func json(_ c: Agent.ChainStatus) -> JSONValue {
        var o = JSONObject(["chainId": .string(String(c.chainId)), "endpoint": c.endpoint.map { .string($0) } ?? .null,
                            "enabledHere": .bool(c.enabledHere), "signedNonce": c.signedNonce.map { .string($0.description) } ?? .null])
        switch c.outcome {
        case .failure(let error):
            o["error"] = .object(JSONObject(["reason": .string(error.reason), "message": .string(error.message)]))
        case .success(let r):
            o["block"] = .string(String(r.state.block))
            o["deployed"] = .bool(r.state.deployed)
            o["installed"] = r.state.installed.map { .bool($0) } ?? .null
            o["enabled"] = .bool(r.state.enabled)
            o["nonce"] = .string(r.state.nonce.description)
            o["severity"] = .string(r.severity.rawValue)
            o["findings"] = .array(r.findings.map { f in
                .object(JSONObject(["severity": .string(f.severity.rawValue), "reason": .string(f.reason), "message": .string(f.message)]))
            })
            func key(_ k: LedgerKey) -> JSONObject {
                JSONObject(["policy": .string(k.policy.checksummed), "configId": .string(k.configId.hex), "counter": .string(k.counter)])
            }
            o["counters"] = .array(r.counters.map { c in
                var entry = key(c.key)
                entry["local"] = .string(c.local.description)
                entry["chain"] = .string(c.chain.description)
                entry["text"] = .string(c.text)
                return .object(entry)
            })
            o["unreadable"] = .array(r.unreadable.map { .object(key($0)) })
        }
        return .object(o)
    }

    /// One of `session_get`'s `limits` (docs/protocol.md).
    static func json(_ l: Agent.LimitOnChain) -> JSONValue {
        var o = JSONObject(["chainId": .string(String(l.chainId)), "policy": .string(l.limit.policy.checksummed), "kind": .string(l.limit.kind.rawValue),
                            "used": .string(l.limit.used.description), "limit": .string(l.limit.limit.description),
                            "remaining": .string(l.limit.remaining.description), "text": .string(l.text)])
        switch l.limit.scope {
        case .userOperation: o["scope"] = .string("userOperation")
        case .action(let key): o["scope"] = .object(JSONObject(["target": .string(key.target.checksummed), "selector": .string(key.selector.hex)]))
        }
        switch l.limit.measure {
        case .uses: o["measure"] = .string("uses")
        case .nativeValue: o["measure"] = .string("nativeValue")
        case .token(let token): o["measure"] = .string("token"); o["token"] = .string(token.checksummed)
        case .gas: o["measure"] = .string("gas")
        case .gasCost: o["measure"] = .string("gasCost")
        case .argument(let rule): o["measure"] = .string("argument"); o["rule"] = JSONValue(rule)
        }
        return .object(o)
    }

    /// `expired` by the agent's clock, as it signs: a session's last second, `expiresAt`, is in
    /// its lifetime (a client working it out for itself would easily end it a second early).
    static func json(_ s: StoredSession, now: UInt64) -> JSONObject {
        var o = JSONObject()
        o["sessionId"] = .string(s.id)
        o["label"] = s.label.map { .string($0) } ?? .null
        o["account"] = .string(s.account.checksummed)
        o["chains"] = chains(of: s)
        o["permissionId"] = .string(s.session.permissionId.hex)
        o["sessionKey"] = .string(s.sessionKey.checksummed)
        o["createdAt"] = JSONValue(Int(s.createdAt))
        o["expiresAt"] = s.expiresAt.map { JSONValue(Int($0)) } ?? .null
        o["revoked"] = .bool(s.revokedAt != nil)
        o["expired"] = .bool(s.expiresAt.map { now > $0 } ?? false)
        o["exportAllowed"] = .bool(s.exportAllowed)
        o["boundToProcess"] = s.client.process.map { JSONValue(Int($0.pid)) } ?? .null
        o["session"] = s.session.json
        return o
    }

    static func chains(of s: StoredSession) -> JSONValue { .array(s.chains.map { .string(String($0.chainId)) }) }

    /// A revoked session's key is gone from the agent, not from the chain: what the account
    /// sends to end the session there (docs/protocol.md, `session_revoke`).
    /// An owner as `owners_list` and `owners_add` show it: its key (`owner`), and the address
    /// of a secp256k1 one.
    static func ownerEntry(_ owner: OwnerIdentity) -> JSONObject {
        var entry = JSONObject(["owner": .string(owner.key.description), "backend": .string(owner.backend), "location": .string(owner.location)])
        entry["address"] = owner.address.map { .string($0.checksummed) }
        return entry
    }

    static func onChainEnd(of s: StoredSession) -> JSONObject {
        let end = ModuleCalls.endSession(s.session.permissionId)
        return JSONObject(["account": .string(s.account.checksummed), "chains": chains(of: s), "callData": .string(end.calldata.hex),
                           "calls": .array(end.executions.map { .object(JSONObject(["target": .string($0.target.checksummed), "data": .string($0.callData.hex)])) })])
    }
}

/// Says in the journal that the store could not be read or written (a full disk, a failing one,
/// a lock another program holds, damage in the file): clients are only told `store_error` or
/// `store_corrupt`, and the operator must hear of it to mend it. Once a minute at most, for
/// clients that keep trying.
final class StoreFaults: Sendable {
    let logger: Logger
    private let quietUntil = Mutex<ContinuousClock.Instant?>(nil)

    init(logger: Logger) { self.logger = logger }

    func report(_ error: AgentError) {
        guard [StoreError.database("").reason, StoreError.corrupt("").reason].contains(error.reason) else { return }
        let now = ContinuousClock.now
        let due = quietUntil.withLock { until in
            guard until.map({ now >= $0 }) ?? true else { return false }
            until = now + .seconds(60)
            return true
        }
        if due { logger.error("the session-key store could not be read or written (\(error.message)); clients get \(error.reason) until it can") }
    }
}
