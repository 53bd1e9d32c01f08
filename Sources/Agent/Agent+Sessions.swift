import Approval
import EthereumCore
import OwnerSigners
import SessionStore
import SmartSessions

extension Agent {
    /// What `session_signUserOperation` returns.
    public struct SignedOperation: Sendable {
        public var signature: [UInt8]
        public var mode: SmartSessionMode
        public var userOpHash: Bytes32
        public var validAfter: UInt64
        public var validUntil: UInt64
    }

    /// A session as its client (or the operator) may see it; `nil` client is the operator.
    public func session(_ id: String, client: ClientIdentity?) throws(AgentError) -> StoredSession {
        let s: StoredSession
        do { s = try store.session(id: id) } catch { throw .notFound("session \(id)") }
        // Another client's session is reported exactly like a missing one.
        if let client, !Self.binding(s.client, admits: client) { throw .notFound("session \(id)") }
        return s
    }

    static func binding(_ b: ClientBinding, admits c: ClientIdentity) -> Bool {
        b.uid == c.uid && (b.executable == nil || b.executable == c.executable) && (b.unit == nil || b.unit == c.unit)
    }

    public func sessions(client: ClientIdentity?) throws(AgentError) -> [StoredSession] {
        let all: [StoredSession]
        do { all = try store.sessions(uid: client?.uid) } catch { throw AgentError(error.reason, "\(error)") }
        guard let client else { return all }
        return all.filter { Self.binding($0.client, admits: client) }
    }

    /// Checks the operation against the session and the ledger exactly as SmartSession would,
    /// commits the ledger durably, and only then returns the signature. `forceMode` picks USE
    /// or ENABLE; by default ENABLE until the session has been enabled on that chain.
    public func signUserOperation(sessionId: String, client: ClientIdentity, chainId: UInt64, entryPoint: Address,
                                  version: EntryPointVersion, operation: PackedUserOperation, forceMode: SmartSessionMode? = nil) throws(AgentError) -> SignedOperation {
        let s = try session(sessionId, client: client)
        let now = clock()
        if s.revokedAt != nil { throw AgentError("revoked", "session \(sessionId) was revoked") }
        if let expires = s.expiresAt, now > expires { throw AgentError("expired", "session \(sessionId) expired at \(expires)") }
        guard let chain = s.chains.first(where: { $0.chainId == chainId }) else {
            throw AgentError("wrong_chain", "session \(sessionId) is not enabled for chain \(chainId)")
        }
        guard operation.sender == s.account else {
            throw AgentError("wrong_sender", "the operation's sender \(operation.sender) is not the session's account \(s.account)")
        }
        let enabled: Set<UInt64>
        let ledger: PolicyLedger
        do {
            enabled = try store.enabledChains(sessionId: sessionId)
            ledger = try store.ledger(sessionId: sessionId)
        } catch { throw AgentError(error.reason, "\(error)") }
        let mode: SmartSessionMode = forceMode ?? (enabled.contains(chainId) ? .use : s.mode)
        guard mode == .use || mode == s.mode else { throw .badRequest("the session was approved for \(s.mode), not \(mode)") }

        let checker = PolicyChecker(session: s.session, account: s.account)
        let allowance: PolicyAllowance
        switch checker.check(operation, ledger: ledger, enabling: mode != .use, now: now, entryPoint: version) {
        case .success(let a): allowance = a
        case .failure(let denial):
            try? store.audit("denied", .object(JSONObject(["session": .string(sessionId), "reason": .string(denial.reason), "message": .string(denial.message)])), at: now)
            throw AgentError(denial.reason == "expired" || denial.reason == "not_yet_valid" ? denial.reason : "policy_violation", denial.message)
        }

        let userOpHash: Bytes32
        do { userOpHash = try operation.hash(version: version, entryPoint: entryPoint, chainId: UInt256(chainId)) } catch {
            throw .badRequest("\(error)")
        }
        let key: Secp256k1.PrivateKey
        do { key = try store.sessionKey(id: sessionId) } catch { throw AgentError(error.reason, "\(error)") }
        let validatorSignature = key.sign(digest: userOpHash).bytes
        let encoded: SessionSignature
        if mode == .use {
            encoded = .use(permissionId: s.session.permissionId, signature: validatorSignature)
        } else {
            let request = CompiledRequest(format: .rawSession, account: s.account, accountKind: s.accountKind, chains: s.chains, mode: s.mode, session: s.session)
            let enable: EnableSession
            do { enable = try request.enableSession(for: chain.chainId, permissionEnableSig: s.permissionEnableSig) } catch {
                throw AgentError(error.reason, error.message)
            }
            encoded = .enable(mode: mode, enableSession: enable, signature: validatorSignature)
        }
        // Durable before the signature leaves the agent: a crash now loses a signature, never
        // ledger state.
        do {
            try store.recordSignature(sessionId: sessionId, delta: allowance.delta, enabledChain: chainId,
                                      audit: .object(JSONObject(["session": .string(sessionId), "chainId": .string(String(chainId)),
                                                                 "userOpHash": .string(userOpHash.hex), "mode": .string(mode.description)])), at: now)
        } catch { throw AgentError(error.reason, "\(error)") }
        return SignedOperation(signature: encoded.encoded, mode: mode, userOpHash: userOpHash, validAfter: allowance.validAfter, validUntil: allowance.validUntil)
    }

    /// Hands the session key to its client, only when the approved request asked for it.
    public func exportKey(sessionId: String, client: ClientIdentity) throws(AgentError) -> Secp256k1.PrivateKey {
        let s = try session(sessionId, client: client)
        guard s.exportAllowed else { throw AgentError("export_not_allowed", "session \(sessionId) was not approved for key export") }
        do {
            let key = try store.sessionKey(id: sessionId)
            try store.audit("export", .object(JSONObject(["session": .string(sessionId), "client": .string(client.description)])), at: clock())
            return key
        } catch { throw AgentError(error.reason, "\(error)") }
    }

    public func revoke(sessionId: String, client: ClientIdentity?) throws(AgentError) {
        _ = try session(sessionId, client: client)
        do {
            try store.revoke(id: sessionId, at: clock())
            try store.audit("revoke", .object(JSONObject(["session": .string(sessionId)])), at: clock())
        } catch { throw AgentError(error.reason, "\(error)") }
    }
}
