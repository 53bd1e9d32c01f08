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
                                  version: EntryPointVersion, operation: PackedUserOperation, forceMode: SmartSessionMode? = nil) async throws(AgentError) -> SignedOperation {
        var active = try activeSession(sessionId, client: client)
        let s = active.stored
        let now = clock()
        if let expires = s.expiresAt, now > expires { throw AgentError("expired", "session \(sessionId) expired at \(expires)") }
        guard let chain = s.chains.first(where: { $0.chainId == chainId }) else {
            throw AgentError("wrong_chain", "session \(sessionId) is not enabled for chain \(chainId)")
        }
        guard operation.sender == s.account else {
            throw AgentError("wrong_sender", "the operation's sender \(operation.sender) is not the session's account \(s.account)")
        }
        let mode: SmartSessionMode = forceMode ?? (active.enabledChains.contains(chainId) ? .use : s.mode)
        guard mode == .use || mode == s.mode else { throw .badRequest("the session was approved for \(s.mode), not \(mode)") }

        let allowance: PolicyAllowance
        switch active.checker.check(operation, ledger: active.ledger, enabling: mode != .use, now: now, entryPoint: version) {
        case .success(let a): allowance = a
        case .failure(let denial):
            try? store.audit("denied", .object(JSONObject(["session": .string(sessionId), "reason": .string(denial.reason), "message": .string(denial.message)])), at: now)
            throw AgentError(denial.reason == "expired" || denial.reason == "not_yet_valid" ? denial.reason : "policy_violation", denial.message)
        }

        let userOpHash: Bytes32
        do { userOpHash = try operation.hash(version: version, entryPoint: entryPoint, chainId: UInt256(chainId)) } catch {
            throw .badRequest("\(error)")
        }
        let validatorSignature = active.key.sign(digest: userOpHash).bytes
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
        // The allowance is reserved in memory before the agent awaits the commit, so operations
        // checked meanwhile see it; the signature leaves only once the commit is durable, so a
        // crash loses signatures, never ledger state. A signature that changes no state (no
        // ledger delta, a chain already enabled) has nothing a crash could put behind: its audit
        // entry goes with the next transaction and the signature leaves at once.
        let newlyEnabled = active.enabledChains.insert(chainId).inserted
        active.ledger.apply(allowance.delta)
        activeSessions[sessionId] = active
        let record = SessionStore.SignatureRecord(
            sessionId: sessionId, delta: allowance.delta, enabledChain: newlyEnabled ? chainId : nil,
            audit: .object(JSONObject(["session": .string(sessionId), "chainId": .string(String(chainId)),
                                       "userOpHash": .string(userOpHash.hex), "mode": .string(mode.description)])), at: now)
        if record.changesState {
            if case .failure(let error) = await commitDurably(record) { throw AgentError(error.reason, "\(error)") }
        } else {
            enqueueCommit(record, continuation: nil)
        }
        return SignedOperation(signature: encoded.encoded, mode: mode, userOpHash: userOpHash, validAfter: allowance.validAfter, validUntil: allowance.validUntil)
    }

    /// Group commit: records queue while a transaction is committing and go together in the
    /// next one. Each caller resumes when the transaction holding its record is durable.
    func commitDurably(_ record: SessionStore.SignatureRecord) async -> Result<Void, StoreError> {
        await withCheckedContinuation { continuation in enqueueCommit(record, continuation: continuation) }
    }

    /// Queues a record for the next transaction; `continuation`, when given, resumes once it is on disk.
    func enqueueCommit(_ record: SessionStore.SignatureRecord, continuation: CheckedContinuation<Result<Void, StoreError>, Never>?) {
        commitQueue.append((record, continuation))
        if !committing {
            committing = true
            Task { await flushCommits() }
        }
    }

    func flushCommits() async {
        while !commitQueue.isEmpty {
            let batch = commitQueue
            commitQueue = []
            committingRecords = batch.map(\.record)
            defer { committingRecords = [] }
            let store = self.store
            // Off the actor, so requests keep being checked while the disk syncs.
            let result = await Task.detached { () -> Result<Void, StoreError> in
                do throws(StoreError) { try store.recordSignatures(batch.map(\.record)); return .success(()) } catch { return .failure(error) }
            }.value
            if case .failure = result {
                // What the cache reserved never reached the disk: read the sessions again.
                for (record, _) in batch { activeSessions[record.sessionId] = nil }
            }
            for (_, continuation) in batch { continuation?.resume(returning: result) }
        }
        committing = false
    }

    /// A session being signed with, decoded once. The agent is the store's only writer, so this
    /// stays true until the agent itself changes it (a signature, revocation, lock).
    struct ActiveSession {
        var stored: StoredSession
        let checker: PolicyChecker
        let key: Secp256k1.PrivateKey
        var ledger: PolicyLedger
        var enabledChains: Set<UInt64>
    }

    func activeSession(_ id: String, client: ClientIdentity) throws(AgentError) -> ActiveSession {
        if let cached = activeSessions[id] {
            guard Self.binding(cached.stored.client, admits: client) else { throw .notFound("session \(id)") }
            return cached
        }
        let s = try session(id, client: client)
        if s.revokedAt != nil { throw AgentError("revoked", "session \(id) was revoked") }
        do {
            var active = ActiveSession(stored: s, checker: PolicyChecker(session: s.session, account: s.account), key: try store.sessionKey(id: id),
                                       ledger: try store.ledger(sessionId: id), enabledChains: try store.enabledChains(sessionId: id))
            // Signatures not yet on disk count too (their deltas are absolute values, in order).
            for r in committingRecords + commitQueue.map(\.record) where r.sessionId == id {
                active.ledger.apply(r.delta)
                if let chain = r.enabledChain { active.enabledChains.insert(chain) }
            }
            activeSessions[id] = active
            return active
        } catch { throw AgentError(error.reason, "\(error)") }
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
        activeSessions[sessionId] = nil
        do {
            try store.revoke(id: sessionId, at: clock())
            try store.audit("revoke", .object(JSONObject(["session": .string(sessionId)])), at: clock())
        } catch { throw AgentError(error.reason, "\(error)") }
    }
}
