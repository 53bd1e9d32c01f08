import Approval
import EthereumCore
import Logging
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
    public nonisolated func session(_ id: String, client: ClientIdentity?) throws(AgentError) -> StoredSession {
        let s: StoredSession
        do { s = try store.session(id: id) } catch { throw Self.readFailure(error, session: id) }
        if let client { try Self.requireBinding(s.client, admits: client, session: id) }
        return s
    }

    /// One of a session's limits on one of its chains, and how people read it.
    public struct LimitOnChain: Sendable {
        public var chainId: UInt64
        public var limit: SessionLimit
        public var text: String
    }

    /// A session as `session` gives it, with what is used and left of each of its limits on each
    /// of its chains: by the ledger on disk, which no signature a client holds is ahead of (one
    /// that moves a counter leaves only once its record is committed). A chain the session has
    /// signed nothing on has no ledger yet: its first ENABLE starts the contracts' counters
    /// from the init data, and so does this.
    public nonisolated func sessionWithLimits(_ id: String, client: ClientIdentity?) throws(AgentError)
        -> (session: StoredSession, limits: [LimitOnChain], enabledChains: Set<UInt64>) {
        let read: SessionStore.SessionToSign
        do { read = try store.sessionToSign(id: id) } catch { throw Self.readFailure(error, session: id) }
        let s = read.stored
        if let client { try Self.requireBinding(s.client, admits: client, session: id) }
        let chains = s.chains.map(\.chainId)
        let checker = PolicyChecker(session: s.session, account: s.account, tokens: tokens, chains: chains)
        let limits = chains.flatMap { chain in
            checker.limits(ledger: read.ledgers[chain] ?? PolicyLedger()).map { LimitOnChain(chainId: chain, limit: $0, text: checker.describe($0)) }
        }
        return (s, limits, read.enabledChains)
    }

    /// A store that cannot be read is said to be so, not taken for a session that is not there.
    static func readFailure(_ error: StoreError, session id: String) -> AgentError {
        if case .notFound = error { return .notFound("session \(id)") }
        return AgentError(error)
    }

    static func binding(_ b: ClientBinding, admits c: ClientIdentity) -> Bool {
        b.uid == c.uid && (b.executable == nil || b.executable == c.executable) && (b.unit == nil || b.unit == c.unit)
            && (b.process.map { $0.pid == c.pid && $0.startTime == c.startTime } ?? true)
    }

    /// A session revoked or past its lifetime neither signs nor gives out its key, though the
    /// key of one that expired is erased only at the next sweep, seconds later. A lifetime the
    /// agent alone keeps is all that ends such a key: on chain it may still be good.
    static func requireLive(_ s: StoredSession, _ id: String, now: UInt64) throws(AgentError) {
        if s.revokedAt != nil { throw AgentError("revoked", "session \(id) was revoked") }
        if let expires = s.expiresAt, now > expires { throw AgentError("expired", "session \(id) expired at \(expires)") }
    }

    /// Another client's session is reported exactly like a missing one. But a process of its
    /// uid known by the bound program's path, though not proved to run the file there (a package
    /// upgrade replaced it since it started), is told why, and what to do.
    static func requireBinding(_ b: ClientBinding, admits c: ClientIdentity, session id: String) throws(AgentError) {
        guard !binding(b, admits: c) else { return }
        if b.uid == c.uid, let bound = b.executable, let running = c.unverifiedExecutable, running.path == bound {
            throw AgentError("forbidden", "session \(id) is bound to \(DisplayText.escaped(bound)), and this process is not proved to run the file there: "
                                          + running.why.rawValue + (running.why == .replaced ? "; restart it" : ""))
        }
        throw .notFound("session \(id)")
    }

    /// A page of the sessions `client` may see (everyone's for the operator), oldest first: at
    /// most `limit`, those after the session `after` (the last of the page before), and with
    /// `live` only those neither revoked nor expired.
    public nonisolated func sessions(client: ClientIdentity?, live: Bool = false, after: String? = nil,
                                     limit: Int = .max) throws(AgentError) -> [StoredSession] {
        var cursor: (createdAt: UInt64, id: String)?
        if let after {
            let last = try session(after, client: client)   // not_found unless the caller sees it
            cursor = (last.createdAt, last.id)
        }
        var page: [StoredSession] = []
        // The store pages by uid; a session bound to another executable or unit of that uid is
        // left out here, and the page filled up from the next ones.
        while page.count < limit {
            let wanted = limit - page.count
            let batch: [StoredSession]
            do { batch = try store.sessions(uid: client?.uid, liveAt: live ? clock() : nil, after: cursor, limit: wanted) } catch {
                throw AgentError(error)
            }
            page += batch.filter { s in client.map { Self.binding(s.client, admits: $0) } ?? true }
            guard batch.count == wanted, let last = batch.last else { break }
            cursor = (last.createdAt, last.id)
        }
        return page
    }

    /// Checks the operation against the session and the ledger exactly as SmartSession would,
    /// commits the ledger durably, and only then returns the signature. `forceMode` picks USE
    /// or ENABLE; by default ENABLE until the session has been enabled on that chain. Not
    /// isolated to the actor: the signer has a lock of its own (see `SessionSigner`).
    /// `eip7702Delegate`: the sender's delegate, which a v0.8 userOpHash of an EIP-7702
    /// initCode covers.
    public nonisolated func signUserOperation(sessionId: String, client: ClientIdentity, chainId: UInt64, entryPoint: Address,
                                              version: EntryPointVersion, operation: PackedUserOperation, forceMode: SmartSessionMode? = nil,
                                              eip7702Delegate: Address? = nil) async throws(AgentError) -> SignedOperation {
        try await signUserOperation(.init(sessionId: sessionId, client: client, chainId: chainId, entryPoint: entryPoint, version: version,
                                          operation: operation, forceMode: forceMode, eip7702Delegate: eip7702Delegate))
    }

    nonisolated func signUserOperation(_ request: SessionSigner.Request) async throws(AgentError) -> SignedOperation {
        let waiter = CommitWaiter()
        let (signed, durable) = try signer.sign(request, whenDurable: waiter.complete)
        if durable, case .failure(let error) = await waiter.wait() { throw AgentError(error) }
        return signed
    }

    /// Writes what is still queued in memory (audit entries of signatures that change no state,
    /// denials) before returning: for a clean stop.
    public nonisolated func drain() { signer.drain() }

    /// Session keys one uid may be handed in a minute. Each is an audit entry, written at once:
    /// a client asking for its key again and again would otherwise fill the audit log. It is
    /// refused instead of left out, as a key that leaves the agent is always recorded.
    static let maximumExportsPerUIDPerMinute = 16

    /// Hands the session key to its client, only when the approved request asked for it and
    /// while the session lives.
    public func exportKey(sessionId: String, client: ClientIdentity) throws(AgentError) -> Secp256k1.PrivateKey {
        // One read: the key opens only beside the row these checks read.
        let read: SessionStore.SessionToSign
        do { read = try store.sessionToSign(id: sessionId) } catch { throw Self.readFailure(error, session: sessionId) }
        let s = read.stored
        try Self.requireBinding(s.client, admits: client, session: sessionId)
        guard s.exportAllowed else { throw AgentError("export_not_allowed", "session \(sessionId) was not approved for key export") }
        let now = clock()
        try Self.requireLive(s, sessionId, now: now)
        let (count, over) = exports.count(client.uid, at: now)
        guard count < Self.maximumExportsPerUIDPerMinute else {
            throw AgentError("too_many_exports", "uid \(client.uid) was handed \(count) session keys within a minute; ask again in \(over - now) s")
        }
        do {
            let key = try store.unsealKey(read)
            try store.audit("export", .object(JSONObject(["session": .string(sessionId), "client": .string(client.description)])), at: now)
            exports.add(client.uid, at: now)
            lastKeyUse = now
            logger.notice("session \(sessionId): its key was exported to \(client)")
            return key
        } catch { throw AgentError(error) }
    }

    /// Revokes the session; returns it and when it was revoked. A session revoked already stays
    /// as it is (a script making sure of a revocation is not an error).
    @discardableResult
    public func revoke(sessionId: String, client: ClientIdentity?) throws(AgentError) -> (session: StoredSession, at: UInt64, already: Bool) {
        let s = try session(sessionId, client: client)
        if let at = s.revokedAt { return (s, at, true) }
        // On disk first: the signer, reading the session again, then finds it revoked.
        defer { signer.forget { id, _ in id == sessionId } }
        let now = clock()
        do {
            try store.revoke(id: sessionId, at: now)
            try store.audit("revoke", .object(JSONObject(["session": .string(sessionId)])), at: now)
            logger.info("session \(sessionId) revoked \(client.map { "by \($0)" } ?? "on the control socket")")
            return (s, now, false)
        } catch { throw AgentError(error) }
    }
}
