import Approval
import Dispatch
import EthereumCore
import Foundation
import Logging
import SessionStore
import SmartSessions

/// Signs user operations inside their sessions' scope: the sessions in use (decoded once, with
/// their unsealed keys), the ledger they have reserved, and the group commit that puts the
/// records on disk. One lock guards it rather than the agent's actor, so the socket server can
/// answer a signing request on the thread that read it, without handing it to another thread.
final class SessionSigner: @unchecked Sendable {
    /// One `session_signUserOperation`.
    struct Request: Sendable {
        var sessionId: String
        var client: ClientIdentity
        var chainId: UInt64
        var entryPoint: Address
        var version: EntryPointVersion
        var operation: PackedUserOperation
        var forceMode: SmartSessionMode?
        var eip7702Delegate: Address?
    }

    /// One `session_signTypedData`: typed data the session key signs for the account's ERC-1271.
    struct MessageRequest: Sendable {
        var sessionId: String
        var client: ClientIdentity
        var chainId: UInt64
        var message: NestedTypedData
        /// The account's, as SmartSession will read it on the chain.
        var accountDomain: AccountDomain
    }

    /// A session being signed with. The agent is the store's only writer, so this stays true
    /// until the agent itself changes it (a signature, revocation, lock).
    struct ActiveSession {
        var stored: StoredSession
        let checker: PolicyChecker
        let key: Secp256k1.PrivateKey
        /// Each chain's: the session's policies keep their state on each chain apart.
        var ledgers: [UInt64: PolicyLedger]
        var enabledChains: Set<UInt64>
    }

    typealias Completion = @Sendable (Result<Void, StoreError>) -> Void

    let store: SessionStore
    /// Names token amounts in refusals.
    let tokens: TokenList
    let clock: @Sendable () -> UInt64
    let logger: Logger
    private let lock = NSLock()
    private let commits = DispatchQueue(label: "session-agent commits")
    // Guarded by `lock`:
    private var active: RecentSessions
    private var queued: [(record: SessionStore.SignatureRecord, done: Completion?)] = []
    /// The records of the transaction being committed now.
    private var committing: [SessionStore.SignatureRecord] = []
    private var flushing = false
    /// When a session key last signed (the agent's clock), for `lock_when_idle`.
    private var lastSigned: UInt64?
    /// A delayed flush is scheduled for records nobody waits for.
    private var flushScheduled = false
    /// How long records nobody waits for may sit in memory: they go to disk together, off the
    /// path of the signatures, and a crash loses at most this much of their audit entries.
    static let lazyFlushDelay: DispatchTimeInterval = .milliseconds(10)

    /// How many sessions stay decoded, with their keys unsealed: ~4 KB each.
    static let sessionsKept = 4096

    /// Refused operations of one uid recorded one by one in a minute, each an audit entry and a
    /// journal line. An operation its session does not allow is refused in microseconds: a client
    /// sending them in a loop would otherwise fill the audit log, the disk the ledger needs, and
    /// the journal. Past the bound they are counted, and the count is written as one entry when
    /// the minute is over (or the agent stops first), so the log still says how many there were.
    static let refusalsRecordedPerUIDPerMinute = 16
    /// A uid's refusals counted since its last entry.
    struct CountedRefusals {
        let first: UInt64
        var count = 0
        var last: UInt64 = 0
        var session = ""
        var chainId: UInt64 = 0

        mutating func add(session: String, chainId: UInt64, at now: UInt64) {
            count += 1
            last = now
            (self.session, self.chainId) = (session, chainId)
        }
    }
    // Guarded by `lock`, by uid: the refusals recorded, and those only counted.
    private var refusalsRecorded = MinuteCounts()
    private var refusalsCounted: [UInt32: CountedRefusals] = [:]

    let metrics: AgentMetrics?

    init(store: SessionStore, tokens: TokenList, clock: @escaping @Sendable () -> UInt64, logger: Logger, metrics: AgentMetrics? = nil, keeping: Int = sessionsKept) {
        active = RecentSessions(capacity: keeping)
        self.metrics = metrics
        self.store = store
        self.tokens = tokens
        self.clock = clock
        self.logger = logger
    }

    /// Checks the operation against the session and the ledger exactly as SmartSession would,
    /// reserves what it uses, and signs. `durable` says whether the signature changes state:
    /// then it may leave only once `whenDurable` reports the commit (a crash loses signatures,
    /// never ledger state); otherwise `whenDurable` is never called.
    func sign(_ r: Request, whenDurable: @escaping Completion) throws(AgentError) -> (signed: Agent.SignedOperation, durable: Bool) {
        guard let metrics else { return try signInScope(r, whenDurable: whenDurable) }
        do {
            let result = try signInScope(r, whenDurable: whenDurable)
            metrics.signed(result.signed.mode)
            return result
        } catch {
            metrics.refused(error.reason)
            throw error
        }
    }

    private func signInScope(_ r: Request, whenDurable: @escaping Completion) throws(AgentError) -> (signed: Agent.SignedOperation, durable: Bool) {
        let now = clock()
        let userOpHash: Bytes32
        do { userOpHash = try r.operation.hash(version: r.version, entryPoint: r.entryPoint, chainId: UInt256(r.chainId), eip7702Delegate: r.eip7702Delegate) } catch {
            throw .badRequest("\(error)")
        }
        // Checking, reserving and queueing the record happen under one lock, so concurrent
        // operations see each other's reservations (40 operations at a 10-use session: exactly
        // 10 are signed), and a session read again from the store sees the queued records.
        // A client asking for what its session does not allow is worth an operator's look; the
        // log line is written once the lock is released, so a flood of refusals cannot hold up
        // the signatures of others.
        var refusals: [String] = []
        defer { for line in refusals { logger.notice("\(line)") } }
        let (session, allowance, mode, durable) = try locked { () throws(AgentError) -> (ActiveSession, PolicyAllowance, SmartSessionMode, Bool) in
            var session = try activeSession(r.sessionId, client: r.client, now: now)
            let s = session.stored
            guard s.chains.contains(where: { $0.chainId == r.chainId }) else {
                throw AgentError("wrong_chain", "session \(r.sessionId) is not enabled for chain \(r.chainId)")
            }
            guard r.operation.sender == s.account else {
                throw AgentError("wrong_sender", "the operation's sender \(r.operation.sender) is not the session's account \(s.account)")
            }
            let mode: SmartSessionMode = r.forceMode ?? (session.enabledChains.contains(r.chainId) ? .use : s.mode)
            guard mode == .use || mode == s.mode else { throw .badRequest("the session was approved for \(s.mode), not \(mode)") }
            let allowance: PolicyAllowance
            // An ENABLE starts the chain's counters again, as the contracts do, but only the
            // first on a chain: one forced again there (the first may never have landed) fails
            // on chain if the first did, its enable nonce spent, and the counters must go on.
            let enabling = mode != .use && !session.enabledChains.contains(r.chainId)
            switch session.checker.check(r.operation, ledger: session.ledgers[r.chainId] ?? PolicyLedger(), enabling: enabling, now: now, entryPoint: r.version) {
            case .success(let a): allowance = a
            case .failure(let denial):
                refusals = record(denial, of: "a user operation", session: r.sessionId, chainId: r.chainId, client: r.client, at: now)
                throw AgentError(denial.reason == "expired" || denial.reason == "not_yet_valid" ? denial.reason : "policy_violation", denial.message)
            }
            lastSigned = now
            let newlyEnabled = session.enabledChains.insert(r.chainId).inserted
            session.ledgers[r.chainId, default: PolicyLedger()].apply(allowance.delta)
            active[r.sessionId] = session
            let record = SessionStore.SignatureRecord(
                sessionId: r.sessionId, chainId: r.chainId, delta: allowance.delta, enablesChain: newlyEnabled,
                audit: .object(JSONObject(["session": .string(r.sessionId), "chainId": .string(String(r.chainId)),
                                           "userOpHash": .string(userOpHash.hex), "mode": .string(mode.description)])), at: now)
            // A signature that changes no state (no ledger delta, a chain already enabled) has
            // nothing a crash could put behind: it leaves at once, its audit entry goes with the
            // next transaction. One that does waits for the commit.
            enqueue(record, done: record.changesState ? whenDurable : nil)
            return (session, allowance, mode, record.changesState)
        }

        let signature = session.key.sign(digest: userOpHash).bytes
        let encoded: SessionSignature
        if mode == .use {
            encoded = .use(permissionId: session.stored.session.permissionId, signature: signature)
        } else {
            let s = session.stored
            let request = CompiledRequest(format: .rawSession, account: s.account, accountKind: s.accountKind, chains: s.chains, mode: s.mode, session: s.session)
            do { encoded = .enable(mode: mode, enableSession: try request.enableSession(for: r.chainId, permissionEnableSig: s.permissionEnableSig), signature: signature) } catch {
                throw AgentError(error.reason, error.message)
            }
        }
        let signed = Agent.SignedOperation(signature: encoded.encoded, mode: mode, userOpHash: userOpHash, validAfter: allowance.validAfter, validUntil: allowance.validUntil)
        return (signed, durable)
    }

    /// Signs `r.message` with the session key for the account, when SmartSession would accept
    /// the signature now: the session is enabled on the chain, allows the message's contents
    /// and passes its ERC-1271 policies. Returns the account's whole signature (its routing to
    /// SmartSession first) and the digest the key signed. Changes no state: its audit entry goes
    /// with the next transaction.
    func signMessage(_ r: MessageRequest) throws(AgentError) -> (signature: [UInt8], digest: Bytes32) {
        do {
            let result = try signMessageInScope(r)
            metrics?.message(refused: nil)
            return result
        } catch {
            metrics?.message(refused: error.reason)
            throw error
        }
    }

    private func signMessageInScope(_ r: MessageRequest) throws(AgentError) -> (signature: [UInt8], digest: Bytes32) {
        let now = clock()
        let digest = r.message.digest(in: r.accountDomain)
        var refusals: [String] = []
        defer { for line in refusals { logger.notice("\(line)") } }
        let session = try locked { () throws(AgentError) -> ActiveSession in
            let session = try activeSession(r.sessionId, client: r.client, now: now)
            // Only a chain of the session is ever enabled (the agent refused others as wrong_chain).
            guard session.enabledChains.contains(r.chainId) else {
                throw AgentError("not_enabled", "session \(r.sessionId) is not enabled on chain \(r.chainId) yet; SmartSession accepts its key's signed messages "
                                                + "once a user operation in ENABLE mode, or an account operation, has enabled it there")
            }
            if case .failure(let denial) = session.checker.checkSignedMessage(r.message, now: now) {
                refusals = record(denial, of: "typed data to sign", session: r.sessionId, chainId: r.chainId, client: r.client, at: now)
                let passed = ["expired", "not_yet_valid", "content_not_allowed"]
                throw AgentError(passed.contains(denial.reason) ? denial.reason : "policy_violation", denial.message)
            }
            lastSigned = now
            let entry = JSONObject(["session": .string(r.sessionId), "chainId": .string(String(r.chainId)), "digest": .string(digest.hex),
                                    "appDomainSeparator": .string(r.message.appDomainSeparator.hex), "contents": .string(r.message.contents.hex),
                                    "contentsDescription": .string(r.message.contentsDescription)])
            enqueue(.init(sessionId: r.sessionId, chainId: r.chainId, delta: LedgerDelta(), enablesChain: false, kind: "signed_message", audit: .object(entry), at: now),
                    done: nil)
            return session
        }
        let signed = r.message.signature(permissionId: session.stored.session.permissionId, sessionSignature: session.key.sign(digest: digest).bytes)
        // The agent stores every session with its account's kind; a row without one is routed as
        // the reference account routes.
        let routing = session.stored.accountKind ?? .erc7579Reference
        return (routing.erc1271Signature(validator: SmartSessionAddresses.smartSession, signature: signed), digest)
    }

    /// Records a refused operation or message (an audit entry, and the journal lines returned)
    /// within the bound of its uid; past it, counts it. Called with the lock held.
    private func record(_ denial: PolicyDenial, of what: String, session: String, chainId: UInt64, client: ClientIdentity, at now: UInt64) -> [String] {
        let uid = client.uid
        let (recordedBefore, over) = refusalsRecorded.count(uid, at: now)
        guard recordedBefore < Self.refusalsRecordedPerUIDPerMinute else {
            if refusalsCounted[uid] == nil {
                commits.asyncAfter(deadline: .now() + .seconds(Int(over - now))) { [weak self] in self?.writeCounted(of: uid) }
            }
            refusalsCounted[uid, default: CountedRefusals(first: now)].add(session: session, chainId: chainId, at: now)
            return []
        }
        // Those counted in the minute before come first, if their entry is not written yet.
        var lines = enqueueCounted(of: uid, at: now).map { [$0] } ?? []
        refusalsRecorded.add(uid, at: now)
        var line = "session \(session): \(what) from \(client) was refused: \(denial.message)"
        if recordedBefore + 1 == Self.refusalsRecordedPerUIDPerMinute {
            line += "; the next refused within \(over - now) s are counted, and written as one entry then"
        }
        lines.append(line)
        // A denial changes nothing; its audit entry goes with the next transaction.
        let entry = JSONObject(["session": .string(session), "reason": .string(denial.reason), "message": .string(denial.message)])
        enqueue(.init(sessionId: session, chainId: chainId, delta: LedgerDelta(), enablesChain: false, kind: "denied", audit: .object(entry), at: now), done: nil)
        return lines
    }

    /// Queues the entry of `uid`'s refusals counted since its last one, if there are any, and
    /// returns its journal line. Called with the lock held.
    private func enqueueCounted(of uid: UInt32, at now: UInt64) -> String? {
        guard let counted = refusalsCounted.removeValue(forKey: uid) else { return nil }
        let entry = JSONObject(["session": .string(counted.session), "uid": JSONValue(Int(uid)), "countedOnly": JSONValue(counted.count),
                                "from": .string(String(counted.first)), "until": .string(String(counted.last))])
        enqueue(.init(sessionId: counted.session, chainId: counted.chainId, delta: LedgerDelta(), enablesChain: false, kind: "denied", audit: .object(entry), at: now), done: nil)
        return "uid \(uid): \(counted.count) more user operations were refused within its minute and counted only, the last on session \(counted.session)"
    }

    /// Queues what `uid` has counted, and says so in the journal: once its minute is over, so
    /// that the count reaches the log even when the client asks nothing more, or at a stop.
    private func writeCounted(of uid: UInt32) {
        if let line = lock.withLock({ enqueueCounted(of: uid, at: clock()) }) { logger.notice("\(line)") }
    }

    /// NSLock's `withLock` loses the error's type.
    private func locked<T>(_ body: () throws(AgentError) -> T) throws(AgentError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// The session, decoded once and kept, if `client` may sign with it now: a session read
    /// from the store is checked before its key is unsealed. Called with the lock held, so a
    /// revocation or a lock (which take it too) cannot interleave with loading the session.
    private func activeSession(_ id: String, client: ClientIdentity, now: UInt64) throws(AgentError) -> ActiveSession {
        if let cached = active[id] {
            try Agent.requireBinding(cached.stored.client, admits: client, session: id)
            try Agent.requireLive(cached.stored, id, now: now)
            return cached
        }
        let read: SessionStore.SessionToSign
        // A store that cannot be read says so (store_error), rather than "not found".
        do { read = try store.sessionToSign(id: id) } catch { throw AgentError(error) }
        let s = read.stored
        try Agent.requireBinding(s.client, admits: client, session: id)
        try Agent.requireLive(s, id, now: now)
        do {
            let checker = PolicyChecker(session: s.session, account: s.account, tokens: tokens, chains: s.chains.map(\.chainId))
            var session = ActiveSession(stored: s, checker: checker, key: try store.unsealKey(read), ledgers: read.ledgers, enabledChains: read.enabledChains)
            // Signatures not yet on disk count too (their deltas are absolute values, in order).
            for r in committing + queued.map(\.record) where r.sessionId == id {
                session.ledgers[r.chainId, default: PolicyLedger()].apply(r.delta)
                if r.enablesChain { session.enabledChains.insert(r.chainId) }
            }
            active[id] = session
            return session
        } catch { throw AgentError(error) }
    }

    /// Session `id` as signing sees it (decoded once and kept), if `client` may sign with it now.
    func session(_ id: String, client: ClientIdentity) throws(AgentError) -> StoredSession {
        try locked { () throws(AgentError) -> StoredSession in try activeSession(id, client: client, now: clock()).stored }
    }

    /// The chains session `id` is enabled on, by the signatures the agent gave (those not yet
    /// on disk too).
    func enabledChains(of id: String) throws(AgentError) -> Set<UInt64> {
        try locked { () throws(AgentError) -> Set<UInt64> in try enabledChainsLocked(of: id) }
    }

    /// `enabledChains(of:)` with the lock held.
    private func enabledChainsLocked(of id: String) throws(AgentError) -> Set<UInt64> {
        if let cached = active[id] { return cached.enabledChains }
        var chains: Set<UInt64>
        do throws(StoreError) { chains = try store.sessionToSign(id: id).enabledChains } catch { throw Agent.readFailure(error, session: id) }
        for r in committing + queued.map(\.record) where r.sessionId == id && r.enablesChain { chains.insert(r.chainId) }
        return chains
    }

    /// Records that the owners signed a user operation of the account that enables these
    /// sessions on `chainId` by call: from then on the chain may enable them at any moment, so
    /// their ledgers there start as an ENABLE's would, and their user operations there go in
    /// USE mode. Returns once the records are on disk. A session enabled on the chain meanwhile
    /// (an ENABLE signature, or another such operation, while the owners signed) is refused,
    /// and nothing is recorded: one of the two would start its limits over on chain.
    func enabledByAccount(_ sessionIds: [String], chainId: UInt64, userOpHash: Bytes32, at now: UInt64) async throws(AgentError) {
        let waiter = CommitWaiter()
        try locked { () throws(AgentError) in
            for id in sessionIds where try enabledChainsLocked(of: id).contains(chainId) {
                throw AgentError("already_enabled", "session \(id) was enabled on chain \(chainId) while the owners signed; the operation that would enable it again is not given out")
            }
            for (i, id) in sessionIds.enumerated() {
                active[id]?.enabledChains.insert(chainId)
                let entry = JSONObject(["session": .string(id), "chainId": .string(String(chainId)), "userOpHash": .string(userOpHash.hex)])
                enqueue(.init(sessionId: id, chainId: chainId, delta: LedgerDelta(), enablesChain: true, kind: "enabled_by_account", audit: .object(entry), at: now),
                        done: i == sessionIds.count - 1 ? waiter.complete : nil)
            }
        }
        if case .failure(let error) = await waiter.wait() { throw AgentError(error) }
    }

    /// Forgets sessions (revoked, expired, or all of them when the agent is locked); the next
    /// operation reads them from the store again.
    func forget(where condition: (String, StoredSession) -> Bool) {
        lock.withLock { active.removeAll(where: condition) }
    }

    /// When a session key last signed, if one has since the agent started.
    var lastSignature: UInt64? { lock.withLock { lastSigned } }

    /// How many sessions are decoded now.
    var sessionsHeld: Int { lock.withLock { active.count } }

    // MARK: Group commit

    /// Queues a record for the next transaction: at once when someone waits for it, otherwise
    /// within `lazyFlushDelay`. Called with the lock held.
    private func enqueue(_ record: SessionStore.SignatureRecord, done: Completion?) {
        queued.append((record, done))
        guard !flushing else { return }
        if done != nil || queued.count >= 512 {
            flushing = true
            commits.async { self.flush() }
        } else if !flushScheduled {
            flushScheduled = true
            commits.asyncAfter(deadline: .now() + Self.lazyFlushDelay) {
                let start: Bool = self.lock.withLock {
                    self.flushScheduled = false
                    guard !self.flushing, !self.queued.isEmpty else { return false }
                    self.flushing = true
                    return true
                }
                if start { self.flush() }
            }
        }
    }

    /// Writes everything queued before returning, with the refusals counted so far: the agent
    /// is shutting down.
    func drain() {
        for uid in lock.withLock({ Array(refusalsCounted.keys) }) { writeCounted(of: uid) }
        writeQueued()
    }

    /// Writes everything queued before returning.
    func writeQueued() {
        commits.sync {
            let start: Bool = lock.withLock {
                guard !flushing, !queued.isEmpty else { return false }
                flushing = true
                return true
            }
            if start { flush() }
        }
    }

    /// Commits what is queued, batch after batch: records that arrive while a transaction is
    /// syncing go into the next one, so one fsync covers many signatures.
    private func flush() {
        while true {
            let batch: [(record: SessionStore.SignatureRecord, done: Completion?)] = lock.withLock {
                let batch = queued
                queued = []
                committing = batch.map(\.record)
                if batch.isEmpty { flushing = false }
                return batch
            }
            if batch.isEmpty { return }
            let result: Result<Void, StoreError>
            do throws(StoreError) { try store.recordSignatures(batch.map(\.record)); result = .success(()) } catch { result = .failure(error) }
            lock.withLock {
                committing = []
                // What the cache reserved never reached the disk: read the sessions again.
                if case .failure = result { for (record, _) in batch { active[record.sessionId] = nil } }
            }
            for (_, done) in batch { done?(result) }
        }
    }
}

/// The sessions signed with most recently, at most `capacity` of them. A server holds
/// thousands of live sessions, most of them idle: kept decoded, they would grow the agent's
/// memory without end and keep every one of their keys unsealed in it. One read again costs a
/// store lookup; whatever it had reserved and not yet written is applied again as it is read.
struct RecentSessions {
    let capacity: Int
    private var entries: [String: (session: SessionSigner.ActiveSession, lastUse: UInt64)] = [:]
    private var uses: UInt64 = 0

    init(capacity: Int) { self.capacity = max(capacity, 1) }

    var count: Int { entries.count }

    subscript(id: String) -> SessionSigner.ActiveSession? {
        mutating get {
            guard let entry = entries[id] else { return nil }
            uses += 1
            entries[id]!.lastUse = uses
            return entry.session
        }
        set {
            guard let newValue else { entries[id] = nil; return }
            uses += 1
            if entries[id] == nil, entries.count >= capacity { evictLeastRecentlyUsed() }
            entries[id] = (newValue, uses)
        }
    }

    mutating func removeAll(where condition: (String, StoredSession) -> Bool) {
        entries = entries.filter { !condition($0.key, $0.value.session.stored) }
    }

    /// A quarter at once, so the sort is paid once per `capacity / 4` sessions read.
    private mutating func evictLeastRecentlyUsed() {
        let oldest = entries.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(max(capacity / 4, 1))
        for (id, _) in oldest { entries[id] = nil }
    }
}

/// Waits for a commit that may already be over: the completion can come before the wait.
final class CommitWaiter: @unchecked Sendable {
    typealias Outcome = Result<Void, StoreError>
    private let lock = NSLock()
    private var outcome: Outcome?
    private var waiting: (@Sendable (Outcome) -> Void)?

    func complete(_ r: Outcome) {
        let callback: (@Sendable (Outcome) -> Void)? = lock.withLock {
            outcome = r
            defer { waiting = nil }
            return waiting
        }
        callback?(r)
    }

    /// Calls `body` once the commit is over: now, if it already is.
    func whenComplete(_ body: @escaping @Sendable (Outcome) -> Void) {
        let ready: Outcome? = lock.withLock {
            if outcome == nil { waiting = body }
            return outcome
        }
        if let ready { body(ready) }
    }

    func wait() async -> Outcome {
        await withCheckedContinuation { c in whenComplete { c.resume(returning: $0) } }
    }
}
