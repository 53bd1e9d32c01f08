import Approval
import ChainRPC
import EthereumCore
import Foundation
import Logging
import OwnerSigners
import SessionStore
import SmartSessions

/// The agent's decisions, independent of sockets: requests are compiled, reviewed, decided
/// (rules or a person), signed by the owners and stored with a fresh session key; user
/// operations are checked against the session and its ledger before the key signs them.
public actor Agent {
    public enum RequestStatus: String, Sendable {
        case pending, approved, denied, expired, failed
    }

    /// A session request and where it stands.
    public struct PendingRequest: Sendable {
        public let id: String
        public let client: ClientIdentity
        public let compiled: CompiledRequest
        public let review: SessionReview
        /// What the session is bound to beside the client's uid; bound to its process, it is
        /// for that process alone, and ends when it exits.
        public let binding: SessionBinding
        public let createdAt: UInt64
        public var status: RequestStatus
        public var reason: String
        public var sessionId: String?
        /// When it was decided. A decided request is kept `approvalTimeout` seconds for its
        /// client to learn the outcome (`session_wait`), then forgotten.
        public var decidedAt: UInt64?
        /// The session key, generated before review (its address is in the digest); held
        /// only until the request is decided (an approved one's is in the store, sealed).
        var sessionKey: Secp256k1.PrivateKey?
    }

    let store: SessionStore
    var owners: [OwnerKey: any OwnerSigner]
    var accounts: [Address: AccountConfig]
    /// Those from the configuration file: they cannot be removed at run time (they would be back
    /// at the next start).
    let fixedOwners: Set<OwnerKey>
    let fixedAccounts: Set<Address>
    var rules: RulesFile?
    /// Where `rules` were read from; nil for rules given in process (tests).
    var rulesSource: RulesSource?
    let tokens: TokenList
    let ownerPrompt: SecretPrompt
    /// What tells the person `ownerPrompt` reaches to act on the device itself (enter a PIN on
    /// a reader's keypad); nil when that channel has no screen of its own to tell them on.
    let ownerNotice: DeviceNotice.Show?
    /// Where the PIN of the token wrapping the store's data key comes from.
    let storePIN: PINSource
    let clock: @Sendable () -> UInt64
    let approvalTimeout: UInt64
    /// What an operator reads in the journal: requests, decisions, owners that could not sign,
    /// the store locking and opening. Never a secret.
    let logger: Logger
    var pending: [String: PendingRequest] = [:]
    /// How many of `pending` are undecided, by the uid that asked.
    var undecided: [UInt32: Int] = [:]
    /// The decided requests of `pending`, oldest first, by the uid that asked: a client whose
    /// requests the rules approve as fast as it asks would otherwise fill the agent's memory
    /// with them (5 KB each, kept `approvalTimeout`).
    var decided: [UInt32: [String]] = [:]
    public static let maximumDecidedKeptPerUID = 256
    /// Requests of each uid the rules turned down (denied, or approved and then the approval
    /// failed, say for an absent token).
    var turnedDown = MinuteCounts()
    /// Session keys handed to each uid (`exportKey`).
    var exports = MinuteCounts()
    /// Requests whose owners are signing now. The owner may take long (a passphrase or PIN
    /// prompt, an HSM) and the actor serves other calls meanwhile, so a second decision on the
    /// request, or its expiry, must not race the approval under way.
    var approving: Set<String> = []
    /// The live sessions bound to a process, read from the store at the first sweep: each ends
    /// once its process has exited.
    var boundToProcesses: [String: (process: ClientProcess, expiresAt: UInt64?)]?
    /// Why the store is locked; nil while it is open.
    var lockCause: LockCause? { didSet { metrics?.storeLocked.set(to: lockCause == nil ? 0.0 : 1.0) } }
    /// When the store locks by itself (`lock_when_idle`, `lock_after`).
    nonisolated let autoLock: AutoLock
    /// When the store was last unlocked, and a session key last used outside signing (a
    /// session stored, a key exported): the agent's clock.
    var unlockedAt: UInt64?
    var lastKeyUse: UInt64?
    /// What the operator's Prometheus reads; nil when nobody collects it.
    nonisolated let metrics: AgentMetrics?
    /// The JSON-RPC endpoints sessions' on-chain state is read from (`chain_rpc`).
    nonisolated let chains: ChainEndpoints?
    /// The accounts' EIP-712 domains read from those endpoints lately.
    nonisolated let accountDomains = AccountDomains()
    /// Whether the token wrapping the store's data key was present at the last look; nil when
    /// no token wraps it.
    var storeTokenPresent: Bool?
    /// The looks since the store's token was last seen (see `watchStoreToken`).
    var looksWithoutStoreToken = 0
    var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    /// Signs user operations: the sessions in use with their unsealed keys (emptied by
    /// `lock`), the reserved ledger, the group commit.
    nonisolated let signer: SessionSigner
    /// The id of each request left for a person to decide, as it arrives (for an approver
    /// such as pinentry; `session-agent approve` polls the control socket instead).
    public nonisolated let requestsToDecide: AsyncStream<String>
    let requestsToDecideContinuation: AsyncStream<String>.Continuation

    public init(store: SessionStore, owners: [any OwnerSigner], accounts: [AccountConfig], fixedAccounts: Set<Address> = [], fixedOwners: Set<OwnerKey> = [],
                rules: RulesFile?, tokens: TokenList = TokenList(),
                approvalTimeout: UInt64 = 300, autoLock: Agent.AutoLock = Agent.AutoLock(), storePIN: PINSource = .prompt, ownerPrompt: @escaping SecretPrompt,
                ownerNotice: DeviceNotice.Show? = nil, clock: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970) },
                logger: Logger = Logger(label: "session-agent", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: AgentMetrics? = nil,
                chains: ChainEndpoints? = nil) {
        self.store = store
        self.owners = Dictionary(owners.map { ($0.identity.key, $0) }, uniquingKeysWith: { a, _ in a })
        self.accounts = Dictionary(accounts.map { ($0.address, $0) }, uniquingKeysWith: { a, _ in a })
        self.fixedOwners = fixedOwners
        self.fixedAccounts = fixedAccounts
        self.rules = rules
        self.tokens = tokens
        self.approvalTimeout = approvalTimeout
        self.autoLock = autoLock
        self.metrics = metrics
        self.chains = chains
        lockCause = store.isLocked ? .atStart : nil
        unlockedAt = store.isLocked ? nil : clock()
        metrics?.storeLocked.set(to: store.isLocked ? 1.0 : 0.0)
        self.ownerPrompt = ownerPrompt
        self.ownerNotice = ownerNotice
        self.storePIN = storePIN
        self.clock = clock
        self.logger = logger
        signer = SessionSigner(store: store, tokens: tokens, clock: clock, logger: logger, metrics: metrics)
        (requestsToDecide, requestsToDecideContinuation) = AsyncStream.makeStream()
    }

    /// Puts rules in force: at start, and again on SIGHUP or `rules_reload`. The audit log names
    /// the file and its SHA-256 whenever they change (a `rules_load` entry), and every decision
    /// the rules make names the SHA-256 too: which rules approved a session can be told after
    /// the file changed.
    public func putInForce(_ rules: RulesFile?, from source: RulesSource?, because cause: String) {
        self.rules = rules
        rulesSource = source
        let entry = JSONValue.object(JSONObject([
            "cause": .string(cause), "path": source.map { .string($0.path) } ?? .null, "sha256": source.map { .string($0.sha256) } ?? .null,
        ]))
        do { try store.recordRulesInForce(source.map { "\($0.sha256) \($0.path)" } ?? "", entry: entry, at: clock()) } catch {
            logger.error("the audit log could not take this rules_load entry: \(error): \(entry.serialized)")
        }
        guard let source else { return }
        let file = "\(source.path), sha256 \(source.sha256)"
        logger.notice(cause == "start" ? "the approval rules in force: \(file)" : "the approval rules were reloaded (\(cause)): \(file)")
    }

    // MARK: - Requests

    /// Compiles and reviews a request, lets the rules decide, and returns its id. Approved
    /// requests are signed and stored before this returns; "ask" leaves them pending for a
    /// person (`decide`). Compiling and reviewing run off the actor: a request of a thousand
    /// actions takes a while, and other clients and the approver are not kept waiting meanwhile.
    public nonisolated func request(_ json: JSONValue, client: ClientIdentity, binding: SessionBinding = []) async throws(AgentError) -> PendingRequest {
        try await admit(client)
        let now = clock()
        let key = Secp256k1.PrivateKey.generate()
        let compiled: CompiledRequest
        do { compiled = try RequestCompiler(tokens: tokens, now: now, sessionKeys: [key.address]).compile(json) } catch {
            throw AgentError(error.reason, error.message, code: -32602)
        }
        guard compiled.format != .rawSession else {
            throw .badRequest("a raw Session names its own session key; the agent generates the key itself, so send the native or ERC-7715 form")
        }
        let account = try await account(for: compiled)
        if binding.contains(.executable) && client.executable == nil { throw .badRequest(Self.unboundExecutable(client, agentUID: getuid())) }
        if binding.contains(.unit) && client.unit == nil { throw .badRequest("the client runs in no systemd unit, so the session cannot be bound to one") }
        if binding.contains(.process) && client.startTime == nil { throw .badRequest("the client process cannot be told apart from a later one with its pid (its /proc entry is not readable, or it exited), so the session cannot be bound to it") }
        // An exported key goes on signing in its client's hands after the process exits.
        if binding.contains(.process) && compiled.exportKey { throw .badRequest("a session bound to its process cannot hand its key out (export): the key would outlive the process") }
        var forAccount = compiled
        forAccount.accountKind = compiled.accountKind ?? account.kind
        if forAccount.accountKind == .kernel {
            forAccount.kernelVersion = try await kernelVersion(of: account, on: compiled.chains.map(\.chainId))
        }
        let review = Reviewer(tokens: tokens, now: now).review(forAccount)
        let id = "req-" + Hex.encode(Secp256k1.randomBytesForIdentifiers(), prefix: false)
        let request = PendingRequest(id: id, client: client, compiled: forAccount, review: review, binding: binding,
                                     createdAt: now, status: .pending, reason: "waiting for approval", sessionId: nil, decidedAt: nil, sessionKey: key)
        return try await register(request, renderingHash: Keccak256.hash(utf8: review.text()))
    }

    /// The configured account a request is for, on chains it is configured for.
    private func account(for compiled: CompiledRequest) throws(AgentError) -> AccountConfig {
        guard let account = accounts[compiled.account] else {
            throw AgentError("unknown_account", "the agent manages no account \(compiled.account)")
        }
        if !account.chains.isEmpty, let chain = compiled.chains.first(where: { !account.chains.contains($0.chainId) }) {
            throw AgentError("wrong_chain", "account \(account.address) is not configured for chain \(chain.chainId)")
        }
        return account
    }

    /// Why a session cannot be bound to `client`'s executable, and what binds it instead. An
    /// agent running as its own user (the system unit) sees no other uid's executable: the
    /// kernel shows `/proc/PID/exe` only to the process's uid and root, as it allows ptrace.
    static func unboundExecutable(_ client: ClientIdentity, agentUID: UInt32) -> String {
        let why = if let shown = client.unverifiedExecutable {
            "\(DisplayText.escaped(shown.path)) is \(shown.why.rawValue)"
        } else if client.uid != agentUID && agentUID != 0 {
            "the kernel shows a process's executable only to its own uid and root, and the agent runs as uid \(agentUID); bind it by its systemd unit (bindUnit), or give the program a uid of its own"
        } else {
            "the process has exited"
        }
        return "the client's executable cannot be read, so the session cannot be bound to it: \(why)"
    }

    /// Undecided requests one uid may have at a time: a person asked to decide a flood of them
    /// would stop reading them, and each holds its review in memory.
    static let maximumUndecidedPerUID = 16

    /// Requests of one uid the rules may turn down in a minute before its next are refused
    /// unread. Each one taken goes to the audit log, twice (the request, the decision), and the
    /// rules answer in about a millisecond: a client asking again and again for what they deny
    /// would otherwise fill the disk the ledger is written to, and stop every client's signing.
    static let maximumTurnedDownPerUIDPerMinute = 16

    /// Whether a request of `client` may be taken now (asked again once it is reviewed, since
    /// others may have come meanwhile).
    private func admit(_ client: ClientIdentity) throws(AgentError) {
        try requireOpenStore()
        let waiting = undecided[client.uid, default: 0]
        guard waiting < Self.maximumUndecidedPerUID else {
            throw AgentError("too_many_pending", "uid \(client.uid) has \(waiting) requests waiting for a decision; wait for them (session_wait) before asking for more")
        }
        let now = clock(), (count, over) = turnedDown.count(client.uid, at: now)
        guard count < Self.maximumTurnedDownPerUIDPerMinute else {
            throw AgentError("too_many_denied", "the rules turned down \(count) requests of uid \(client.uid) within a minute (denied, "
                             + "or approved and then failed); ask again in \(over - now) s")
        }
    }

    /// Counts a request of `client` the rules turned down, and tells the journal when its uid
    /// reaches the bound: the refusals that follow are written nowhere else.
    private func countTurnedDown(_ client: ClientIdentity) {
        let now = clock(), (count, over) = turnedDown.add(client.uid, at: now)
        if count == Self.maximumTurnedDownPerUIDPerMinute {
            logger.warning("the rules turned down \(count) requests of uid \(client.uid) within a minute; its requests are refused unread for \(over - now) s")
        }
    }

    /// A reviewed request joins the pending ones, and the rules decide it.
    private func register(_ request: PendingRequest, renderingHash: Bytes32) async throws(AgentError) -> PendingRequest {
        try admit(request.client)
        // Removed, or its chains changed, while the request was reviewed off the actor.
        _ = try account(for: request.compiled)
        var request = request
        let id = request.id, client = request.client, compiled = request.compiled, now = request.createdAt
        // What the client holds, for rules that bound its sessions together. Those being approved
        // count as held: two requests decided side by side must not both fit under a cap that
        // has room for one. (Nothing from here to the rules' decision waits.)
        var holdings: ClientHoldings?
        if let rules, rules.looksAtHoldings {
            let counts: (live: Int, made: Int)
            do { counts = try store.sessionCounts(uid: client.uid, liveAt: now, madeAfter: now - min(now, 86_400)) } catch { throw AgentError(error) }
            let beingApproved = approving.count { pending[$0]?.client.uid == client.uid }
            holdings = ClientHoldings(liveSessions: counts.live + beingApproved, sessionsLastDay: counts.made + beingApproved)
        }
        // Before anyone is asked: a request the log cannot hold is not taken.
        do throws(StoreError) {
            try store.audit("request", .object(JSONObject([
                "request": .string(id), "client": .string(client.description), "account": .string(compiled.account.checksummed),
                "permissionId": .string(compiled.permissionId.hex), "multichainDigest": .string(request.review.multichainDigest.hex),
                "renderingHash": .string(renderingHash.hex),
            ])), at: now)
        } catch { throw AgentError(error) }
        pending[id] = request
        undecided[client.uid, default: 0] += 1
        metrics?.undecided.increment()
        logger.info("request \(id) from \(client): account \(compiled.account.checksummed), permissionId \(compiled.permissionId.hex)")
        if let rules {
            let outcome = rules.evaluate(request.review, client: client, holdings: holdings, binding: request.binding)
            // The rules that decided, named now: a reload while the owners sign changes nothing of it.
            let approver = "rules: \(outcome.rule ?? "default")", source = rulesSource
            switch outcome.decision {
            case .approve:
                do { request = try await approve(id, approver: approver, reason: outcome.reason, rules: source) } catch {
                    countTurnedDown(client)
                    throw error
                }
            case .deny:
                request = finish(id, .denied, reason: "denied by rules: \(outcome.reason)", approver: approver, rules: source)
                countTurnedDown(client)
            case .ask: break
            }
        }
        if request.status == .pending { requestsToDecideContinuation.yield(id) }
        return request
    }

    /// A person's (or the rules') decision on a pending request. `ownerSecrets` are the owner
    /// passphrases or PINs the approver typed with the decision, by owner; `ownerSecret` serves
    /// every owner without one of its own.
    public func decide(_ id: String, approve: Bool, approver: String, reason: String = "", ownerSecret: SecretBytes? = nil,
                       ownerSecrets: [OwnerKey: SecretBytes] = [:]) async throws(AgentError) -> PendingRequest {
        guard let request = pending[id] else { throw .notFound("request \(id)") }
        guard request.status == .pending, !approving.contains(id) else {
            throw AgentError("already_decided", "request \(id) is \(approving.contains(id) ? "being approved" : request.status.rawValue)")
        }
        guard approve else { return finish(id, .denied, reason: reason.isEmpty ? "denied by \(approver)" : reason, approver: approver) }
        try requireOpenStore()
        return try await self.approve(id, approver: approver, reason: reason, ownerSecret: ownerSecret, ownerSecrets: ownerSecrets, byPerson: true)
    }

    /// A session can only be stored while the store is open, so while it is locked nobody is
    /// asked to approve or sign one: the refusal comes first, and a pending request stays
    /// pending for after the unlock.
    func requireOpenStore() throws(AgentError) {
        guard store.isLocked else { return }
        throw AgentError("locked", "the session-key store is locked (\(lockCause?.reason ?? "locked")); no session can be stored until it is unlocked")
    }

    /// Ends a request as `status`. `signedBy`: the owner keys whose signatures enable the
    /// session, named in the journal's line as in the approval's audit entry.
    func finish(_ id: String, _ status: RequestStatus, reason: String, approver: String, sessionId: String? = nil, signedBy: [OwnerIdentity] = [],
                rules: RulesSource? = nil) -> PendingRequest {
        let uid = pending[id]!.client.uid
        if pending[id]!.status == .pending {
            undecided[uid]! -= 1
            metrics?.undecided.decrement()
            metrics?.decided(status.rawValue, by: approver.hasPrefix("rules") ? "rules" : ["timeout", "accounts_remove"].contains(approver) ? approver : "person")
            decided[uid, default: []].append(id)
            // Its oldest are forgotten early (`session_wait` on one answers not_found, as after the timeout).
            while decided[uid]!.count > Self.maximumDecidedKeptPerUID { pending[decided[uid]!.removeFirst()] = nil }
        }
        pending[id]!.status = status
        pending[id]!.reason = reason
        pending[id]!.sessionId = sessionId
        pending[id]!.decidedAt = clock()
        pending[id]!.sessionKey = nil
        // An approval's entry went into the store with its session (`approve`).
        if status != .approved { audit("decision", Self.decisionEntry(id, status, reason: reason, approver: approver, rules: rules)) }
        for waiter in waiters.removeValue(forKey: id) ?? [] { waiter.resume() }
        let by = reason.contains(approver) ? "" : " (\(approver))"
        let session = sessionId.map { "; session \($0)" } ?? ""
        let signers = signedBy.isEmpty ? "" : "; signed by " + signedBy.map { "\($0.key) (\($0.location))" }.joined(separator: ", ")
        logger.log(level: status == .failed ? .warning : .info, "request \(id) \(status.rawValue)\(by): \(reason)\(session)\(signers)")
        return pending[id]!
    }

    /// The audit entry of a decision; `signedBy` says which key (on which token) signed what,
    /// `rules` which rules file decided (its SHA-256, as the `rules_load` entries name it).
    static func decisionEntry(_ id: String, _ status: RequestStatus, reason: String, approver: String, signedBy: [OwnerIdentity] = [],
                              rules: RulesSource? = nil) -> JSONValue {
        var entry = JSONObject(["request": .string(id), "status": .string(status.rawValue), "approver": .string(approver), "reason": .string(reason)])
        if let rules { entry["rulesSHA256"] = .string(rules.sha256) }
        if !signedBy.isEmpty {
            entry["signedBy"] = .array(signedBy.map { .object(JSONObject(["owner": .string($0.key.description), "backend": .string($0.backend), "location": .string($0.location)])) })
        }
        return .object(entry)
    }

    /// An entry for the audit log. One the store cannot take (a full disk) goes to the journal
    /// instead, with why, rather than nowhere; entries hold no secret.
    func audit(_ kind: String, _ entry: JSONValue) {
        do { try store.audit(kind, entry, at: clock()) } catch {
            logger.error("the audit log could not take this \(kind) entry: \(error): \(entry.serialized)")
        }
    }

    /// The owners sign the multichain digest the agent computed; the session and its key are
    /// stored. A failure stores nothing and leaves the request failed, except that a person's
    /// approval an owner could not sign for a reason they can mend (a wrong or missing PIN or
    /// passphrase, a token away) leaves it pending, for them to try again.
    func approve(_ id: String, approver: String, reason: String, ownerSecret: SecretBytes? = nil, ownerSecrets: [OwnerKey: SecretBytes] = [:],
                 byPerson: Bool = false, rules: RulesSource? = nil) async throws(AgentError) -> PendingRequest {
        approving.insert(id)
        defer { approving.remove(id) }
        let request = pending[id]!
        guard let sessionKey = request.sessionKey else { throw AgentError("already_decided", "request \(id) is \(request.status.rawValue)") }
        let compiled = request.compiled
        guard let account = accounts[compiled.account] else {
            // Removed since the request came (`removeAccount` ends those it finds pending).
            let message = "the account \(compiled.account.checksummed) is no longer configured"
            _ = finish(id, .failed, reason: message, approver: approver)
            throw AgentError("unknown_account", message)
        }
        func tooFewOwners(_ available: Int) -> AgentError {
            _ = finish(id, .failed, reason: "only \(available) of \(account.threshold) owners are available", approver: approver)
            return AgentError("owner_unavailable", "only \(available) of \(account.threshold) owner signatures are available for \(account.address)")
        }
        // Nobody is asked to sign for a session whose process is gone.
        let process = request.binding.contains(.process) ? request.client.startTime.map { ClientProcess(pid: request.client.pid, startTime: $0) } : nil
        if let process, process.hasEnded(PeerCredentials.state(pid: process.pid)) {
            let message = "the process that asked for the session (\(process)) has exited"
            _ = finish(id, .failed, reason: message, approver: approver)
            throw AgentError("client_exited", message)
        }
        // Nobody is asked for a passphrase, a PIN or a tap that cannot make up the threshold.
        let held = heldOwners(account).count
        guard held >= account.threshold else { throw tooFewOwners(held) }
        // Whoever is asked for a PIN or passphrase sees what it is for: the rules may have
        // approved the request with nobody watching.
        let signatures: [(key: OwnerKey, signature: OwnerSignature)], signers: [OwnerIdentity]
        do throws(OwnerFailure) {
            (signatures, signers) = try await ownerSignatures(
                account, digest: compiled.ownerDigest, approval: id, ownerSecret: ownerSecret, ownerSecrets: ownerSecrets,
                purpose: "It enables the session that \(request.client) asked for (request \(id), approved by \(approver)).")
        } catch {
            if byPerson && error.error.mendable {
                logger.warning("request \(id): \(error); still pending for \(approver) to try again")
                audit("owner_failure", .object(JSONObject([
                    "request": .string(id), "owner": .string(error.owner.description), "approver": .string(approver), "reason": .string(error.error.reason),
                ])))
                throw AgentError(error.error.reason, "\(error); the request is still pending")
            }
            _ = finish(id, .failed, reason: "\(error)", approver: approver)
            throw AgentError(error.error.reason, "\(error)")
        }
        // An owner removed while another signed.
        guard signatures.count >= account.threshold else { throw tooFewOwners(signatures.count) }
        let enableSig = compiled.permissionEnableSig(validator: account.ownerValidator, ownerSignature: account.validatorSignature(signatures))
        let sessionId = "sess-" + Hex.encode(Secp256k1.randomBytesForIdentifiers(), prefix: false)
        let expiry = request.review.expiresAt
        let stored = StoredSession(
            id: sessionId,
            client: ClientBinding(uid: request.client.uid, executable: request.binding.contains(.executable) ? request.client.executable : nil,
                                  unit: request.binding.contains(.unit) ? request.client.unit : nil, process: process),
            account: compiled.account, accountKind: compiled.accountKind ?? account.kind, chains: compiled.chains, mode: compiled.mode,
            session: compiled.session, permissionEnableSig: enableSig, sessionKey: sessionKey.address, createdAt: clock(),
            expiresAt: expiry, exportAllowed: compiled.exportKey, label: compiled.label)
        let approval = reason.isEmpty ? "approved by \(approver)" : reason
        do throws(StoreError) {
            try store.insert(stored, key: sessionKey, decision: Self.decisionEntry(id, .approved, reason: approval, approver: approver, signedBy: signers, rules: rules))
        } catch {
            // Locked while the owners signed: mended by an unlock, so a person may approve again.
            if byPerson, error == .locked {
                logger.warning("request \(id): the store was locked while its owners signed; still pending for \(approver) to approve again")
                throw AgentError("locked", "the session-key store was locked while the owners signed, so the session could not be stored; unlock it and approve again: the request is still pending")
            }
            _ = finish(id, .failed, reason: "\(error)", approver: approver)
            throw AgentError(error)
        }
        if let process { boundToProcesses?[sessionId] = (process, expiry) }
        lastKeyUse = clock()
        return finish(id, .approved, reason: approval, approver: approver, sessionId: sessionId, signedBy: signers)
    }

    /// An owner that could not sign, and why.
    struct OwnerFailure: Error, CustomStringConvertible {
        let owner: OwnerKey
        let error: OwnerSignerError
        var description: String { "owner \(owner) could not sign: \(error)" }
    }

    /// Signatures over `digest` from `account`'s owners, in their order, until its threshold.
    /// An owner without a secret given here asks through `ownerPrompt`, saying `purpose`.
    func ownerSignatures(_ account: AccountConfig, digest: Bytes32, approval: String, ownerSecret: SecretBytes?, ownerSecrets: [OwnerKey: SecretBytes],
                         purpose: String) async throws(OwnerFailure) -> (signatures: [(key: OwnerKey, signature: OwnerSignature)], signers: [OwnerIdentity]) {
        let purpose = "\n\n" + purpose
        let asked: SecretPrompt = { [ownerPrompt] in try await ownerPrompt($0 + purpose) }
        var told: DeviceNotice.Show?
        if let ownerNotice { told = { @Sendable text in await ownerNotice(text + purpose) } }
        var signatures: [(key: OwnerKey, signature: OwnerSignature)] = [], signers: [OwnerIdentity] = []
        for owner in account.owners where signatures.count < account.threshold {
            guard let signer = owners[owner] else { continue }
            let given = ownerSecrets[owner] ?? ownerSecret
            let prompt: SecretPrompt = given.map { secret in { @Sendable _ in secret } } ?? asked
            let started = ContinuousClock.now
            do throws(OwnerSignerError) {
                let approved = ApprovedDigest(digest: digest, approval: approval)
                let signature = try await DeviceNotice.telling(through: given == nil ? told : nil) { () async throws(OwnerSignerError) in
                    try await signer.ownerSignature(approved, prompt: prompt)
                }
                if let refusal = account.refusal(of: signature, by: owner, over: digest) { throw OwnerSignerError.failed(refusal) }
                signatures.append((owner, signature))
                signers.append(signer.identity)
                metrics?.ownerSigned(backend: signer.identity.backend, ok: true, took: ContinuousClock.now - started)
            } catch {
                metrics?.ownerSigned(backend: signer.identity.backend, ok: false, took: ContinuousClock.now - started)
                throw OwnerFailure(owner: owner, error: error)
            }
        }
        return (signatures, signers)
    }

    public func requestStatus(_ id: String, client: ClientIdentity?) throws(AgentError) -> PendingRequest {
        guard let request = pending[id], client == nil || request.client.uid == client!.uid else {
            // A client that lost track of a request is told where its session would be.
            throw AgentError("not_found", "request \(id) not found: a decided request is kept \(approvalTimeout) s after its decision, and only a uid's "
                             + "newest \(Self.maximumDecidedKeptPerUID); the session of an approved one is in session_list")
        }
        return request
    }

    /// Waits until the request is decided, or `timeout` seconds pass (then it is still pending).
    public func wait(_ id: String, client: ClientIdentity?, timeout: Double) async throws(AgentError) -> PendingRequest {
        let request = try requestStatus(id, client: client)
        guard request.status == .pending else { return request }
        let deadline = Task { [weak self] in
            try? await Task.sleep(nanoseconds: UInt64(max(0, timeout) * 1e9))
            await self?.wakeAll(id)
        }
        await withCheckedContinuation { continuation in waiters[id, default: []].append(continuation) }
        deadline.cancel()
        return try requestStatus(id, client: client)
    }

    func wakeAll(_ id: String) {
        for waiter in waiters.removeValue(forKey: id) ?? [] { waiter.resume() }
    }

    /// Requests no one decided in time are refused, and those decided long enough ago
    /// forgotten; keys of expired sessions are erased, on disk and in memory.
    public func expire() {
        let now = clock()
        for (id, request) in pending where request.status == .pending && !approving.contains(id) && now >= request.createdAt + approvalTimeout {
            _ = finish(id, .expired, reason: "no decision within \(approvalTimeout) s", approver: "timeout")
        }
        pending = pending.filter { _, request in request.decidedAt.map { now < $0 + approvalTimeout } ?? true }
        for (uid, ids) in decided {
            let kept = ids.filter { pending[$0] != nil }
            decided[uid] = kept.isEmpty ? nil : kept
        }
        var erased: Set<String> = []
        do { erased = Set(try store.eraseExpired(now: now)) } catch {
            // Tried again at the next look; an expired session signs nothing meanwhile anyway.
            logger.error("the keys of expired sessions could not be erased: \(error)")
        }
        signer.forget { id, stored in erased.contains(id) || stored.expiresAt.map { now > $0 } ?? false }
        endSessionsOfEndedProcesses()
        lockWhenDue(now: now)
    }

    /// Locks the store once it has been unlocked for `lock_after`, or no session key was used
    /// (to sign, stored, exported) for `lock_when_idle`, as gpg-agent forgets a passphrase
    /// after its cache's time: until a person unlocks it again, nothing signs.
    func lockWhenDue(now: UInt64) {
        guard !store.isLocked, let unlockedAt else { return }
        let cause: LockCause
        if let after = autoLock.after, now >= unlockedAt + after {
            cause = .unlockedFor(after)
        } else if let idle = autoLock.whenIdle, now >= [unlockedAt, lastKeyUse, signer.lastSignature].compactMap({ $0 }).max()! + idle {
            cause = .idle(idle)
        } else {
            return
        }
        lockStore()
        lockCause = cause
        record("store_lock", reason: cause.reason, saying: "the store is locked: \(cause.reason)")
    }

    /// Revokes the sessions whose process has ended (their key erased), seconds after it did,
    /// or as the agent starts for one that exited while it was stopped. Nothing could sign with
    /// them meanwhile: only that process, told apart by its start time, may.
    func endSessionsOfEndedProcesses() {
        let now = clock()
        if boundToProcesses == nil {
            do {
                boundToProcesses = Dictionary(try store.sessionsBoundToProcesses().map { ($0.id, ($0.process, $0.expiresAt)) }, uniquingKeysWith: { a, _ in a })
            } catch {
                logger.error("the sessions bound to processes could not be read: \(error); tried again at the next look")
                return
            }
        }
        for (id, bound) in boundToProcesses ?? [:] {
            // An expired one has ended already; its key is erased with the others'.
            if let expires = bound.expiresAt, now > expires {
                boundToProcesses?[id] = nil
                continue
            }
            guard bound.process.hasEnded(PeerCredentials.state(pid: bound.process.pid)) else { continue }
            do {
                try store.revoke(id: id, at: now)
                try store.audit("revoke", .object(JSONObject(["session": .string(id), "reason": "client_exited", "pid": JSONValue(Int(bound.process.pid))])), at: now)
                logger.notice("session \(id) revoked: the process it was bound to (\(bound.process)) exited")
            } catch .notFound {
                // Revoked already.
            } catch {
                logger.error("session \(id), whose process exited, could not be revoked: \(error); tried again at the next look")
                continue
            }
            boundToProcesses?[id] = nil
            signer.forget { forgotten, _ in forgotten == id }
        }
    }

    /// Adds (or replaces) an account, remembered in the store across restarts.
    public func addAccount(_ account: AccountConfig) throws(AgentError) {
        guard !fixedAccounts.contains(account.address) else { throw AgentError("forbidden", "\(account.address) is defined in the configuration file") }
        do { try store.registerAccount(address: account.address.checksummed, config: account.json, at: clock()) } catch { throw AgentError(error) }
        logger.notice("account \(account.address.checksummed) \(accounts[account.address] == nil ? "added" : "replaced")")
        accounts[account.address] = account
    }

    /// Removes an account added at run time; its requests still waiting for a decision fail, since
    /// nobody may now approve them. One whose owners are signing already goes on.
    public func removeAccount(_ address: Address) throws(AgentError) {
        try unregister(.account, address.checksummed, fixed: fixedAccounts.contains(address))
        accounts[address] = nil
        logger.notice("account \(address.checksummed) removed")
        for (id, request) in pending where request.status == .pending && !approving.contains(id) && request.compiled.account == address {
            _ = finish(id, .failed, reason: "the account \(address.checksummed) was removed", approver: "accounts_remove")
        }
    }

    /// `custody`: what the token says of a PKCS#11 owner's private key, when it could be read.
    public func addOwner(_ owner: any OwnerSigner, registration: SessionStore.RegisteredOwner, custody: PKCS11KeyCustody? = nil) throws(AgentError) {
        let key = owner.identity.key
        guard !fixedOwners.contains(key) else { throw AgentError("forbidden", "\(key) is defined in the configuration file") }
        do { try store.registerOwner(registration, custody: custody?.rawValue, at: clock()) } catch { throw AgentError(error) }
        logger.log(level: custody == .exportable ? .warning : .notice,
                   "owner \(key) \(owners[key] == nil ? "added" : "replaced"): \(registration.backend) \(registration.location)\(custody.map { "; its private key: \($0)" } ?? "")")
        owners[key] = owner
    }

    public func removeOwner(_ key: OwnerKey) throws(AgentError) {
        try unregister(.owner, key.description, fixed: fixedOwners.contains(key))
        owners[key] = nil
        logger.notice("owner \(key) removed")
    }

    /// `name`: an owner key's or an account address's text, as the store keeps it.
    func unregister(_ kind: SessionStore.Registration, _ name: String, fixed: Bool) throws(AgentError) {
        guard !fixed else { throw AgentError("forbidden", "\(name) is defined in the configuration file") }
        let removed: Bool
        do { removed = try store.unregister(kind, address: name, at: clock()) } catch { throw AgentError(error) }
        guard removed else { throw .notFound("\(kind == .owner ? "owner" : "account") \(name)") }
    }

    public func accountList() -> [AccountConfig] { accounts.values.sorted { $0.address < $1.address } }
    /// Each owner, and what stands between it and a signature now, for an operator to see
    /// before a request fails. Nothing is signed and nobody is asked for anything. The owners
    /// are asked together, and one that has not answered within `readinessLimit` (a hung HSM
    /// would hold `owner list` for the whole `pkcs11_timeout`) is reported so.
    public func ownerReadiness() async -> [(identity: OwnerIdentity, readiness: OwnerReadiness)] {
        let all = owners.values.sorted(by: { $0.identity.key < $1.identity.key })
        var answers = [OwnerReadiness](repeating: .ready, count: all.count)
        await withTaskGroup(of: (Int, OwnerReadiness).self) { group in
            for (i, owner) in all.enumerated() { group.addTask { (i, await Self.readiness(of: owner, within: Self.readinessLimit)) } }
            for await (i, readiness) in group { answers[i] = readiness }
        }
        return zip(all, answers).map { ($0.identity, $1) }
    }

    /// How long `owner list` waits for one owner: monitoring wants an answer within seconds.
    static let readinessLimit: Duration = .seconds(5)

    /// `owner`'s readiness, or after `limit` that it has not answered (its check goes on, and its
    /// answer is dropped).
    static func readiness(of owner: any OwnerSigner, within limit: Duration) async -> OwnerReadiness {
        await withCheckedContinuation { continuation in
            let answer = FirstAnswer(continuation)
            let deadline = Task {
                guard (try? await Task.sleep(for: limit)) != nil else { return }
                answer.send(.notReady(.unavailable("\(owner.identity.location) did not answer within \(limit.components.seconds) s (a hung HSM, its network, or its server)")))
            }
            Task {
                answer.send(await owner.readiness())
                deadline.cancel()
            }
        }
    }

    /// The account's owners whose keys the agent holds, in the account's order.
    func heldOwners(_ account: AccountConfig) -> [any OwnerSigner] { account.owners.compactMap { owners[$0] } }

    /// The passphrases and PINs that approving request `id` will need from the person approving,
    /// by owner, each in the words of a prompt, and those the person gives on the device itself
    /// (`onDevice`: a reader's keypad); empty when the agent has what its owners need.
    public func secretsToApprove(_ id: String) async throws(AgentError) -> [(owner: OwnerKey, prompt: String, onDevice: Bool)] {
        guard let request = pending[id] else { throw .notFound("request \(id)") }
        // Approving such a request fails without asking anyone (`approve`).
        guard let account = accounts[request.compiled.account] else { return [] }
        return await secretsToSign(for: account)
    }

    /// What `account`'s owners will ask the person signing for: passphrases and PINs, and
    /// what they give on the device itself.
    public func secretsToSign(forAccount address: Address) async -> [(owner: OwnerKey, prompt: String, onDevice: Bool)] {
        guard let account = accounts[address] else { return [] }
        return await secretsToSign(for: account)
    }

    func secretsToSign(for account: AccountConfig) async -> [(owner: OwnerKey, prompt: String, onDevice: Bool)] {
        let held = heldOwners(account)
        guard held.count >= account.threshold else { return [] }
        var asks: [(owner: OwnerKey, prompt: String, onDevice: Bool)] = []
        for owner in held.prefix(account.threshold) {
            switch await owner.readiness() {
            case .needsSecret(let prompt): asks.append((owner.identity.key, prompt, false))
            case .asksOnDevice(let prompt): asks.append((owner.identity.key, prompt, true))
            case .ready, .notReady: break
            }
        }
        return asks
    }
    /// Whether the store is locked, how its data key is protected, whether that key's token
    /// was present at the last look (nil when no token wraps it), and what its unlock warned of.
    public func storeState() throws(AgentError) -> (locked: Bool, reason: String?, protection: DataKeyProtection?, tokenPresent: Bool?, warning: String?) {
        let locked = store.isLocked
        let protection: DataKeyProtection?
        do { protection = try store.protection } catch { throw AgentError(error) }
        return (locked, locked ? lockCause?.reason ?? "locked" : nil, protection, storeTokenPresent, store.warning)
    }

    /// Locks the store at a person's request; it stays locked until `unlock`.
    public func lock() {
        lockStore()
        lockCause = .request
        record("store_lock", reason: LockCause.request.reason, saying: "the store is locked: \(LockCause.request.reason)")
    }

    /// logind says the machine is about to sleep (`lock_on_sleep`): the store locks as `lock`
    /// locks it, so that whoever wakes the machine finds no session key ready to sign, and no
    /// key is left in memory while it sleeps.
    public func lockForSleep() {
        guard lockCause == nil else { return }
        lockStore()
        lockCause = .sleep
        record("store_lock", reason: LockCause.sleep.reason, saying: "the store is locked: \(LockCause.sleep.reason)")
    }

    /// logind says the machine woke: the journal says so, and that the store stays locked.
    public func woke() {
        logger.notice(lockCause == .sleep ? "the machine woke up: the store stays locked until a person unlocks it (lock_on_sleep)" : "the machine woke up")
    }

    /// The store locked or opened, in the audit log and the journal alike.
    func record(_ kind: String, reason: String, saying line: String) {
        audit(kind, .object(JSONObject(["reason": .string(reason)])))
        logger.notice("\(line)")
    }

    /// Drops the data key and the unsealed session keys.
    func lockStore() {
        store.lockStore()
        signer.forget { _, _ in true }
    }

    /// One look at the token that wraps the store's data key (the daemon looks every second), so
    /// that session keys are usable only while it is present: when it goes away the store is
    /// locked; when it is back and its PIN comes from a file or the environment, the store opens
    /// again. A store a person locked stays locked.
    public func watchStoreToken() async {
        let protection: DataKeyProtection?
        do { protection = try store.protection } catch {
            // A look that cannot read the store changes nothing; the next one tries again.
            return logger.error("the store's protection cannot be read: \(error)")
        }
        guard case .token(let key)? = protection, let module = key.modulePath else {
            storeTokenPresent = nil
            return
        }
        let reopens = lockCause?.reopensWithToken ?? false
        let rescan = (storeTokenPresent == false || reopens) && Self.rescanDue(afterLooks: looksWithoutStoreToken)
        let present = await PKCS11Provider.shared(modulePath: module).holdsToken(key, rescan: rescan)
        storeTokenPresent = present
        looksWithoutStoreToken = present ? 0 : looksWithoutStoreToken + 1
        if !present, !store.isLocked {
            lockStore()
            lockCause = .tokenAway
            record("store_lock", reason: LockCause.tokenAway.reason, saying: "the store is locked: its token went away")
            return
        }
        guard present, reopens, store.isLocked, storePIN.unattended else { return }
        do { try await unlockStore(nil) } catch {
            // Said once, not every second: a rejected PIN is not tried again anyway.
            let failed = LockCause.tokenBackUnopened(error.message)
            if failed != lockCause { logger.notice("the store stays locked: \(failed.reason)") }
            lockCause = failed
            return
        }
        // A person may have asked for a lock while the token was opening the store.
        if lockCause?.reopensWithToken == false { return lockStore() }
        lockCause = nil
        record("store_unlock", reason: "the store's token is back", saying: "the store is open again: its token is back")
    }

    /// Whether the look after `n` looks without the store's token initialises its module again.
    /// SoftHSM and p11-kit's client see a returning token only after that, but it ends every
    /// login on the module and reconnects a network HSM's client: so 1, 2, 4 … 32 looks after the
    /// token went, then every 30, not at every look. A module that sees tokens come and go by
    /// itself (OpenSC) shows the token back at the next look anyway.
    static func rescanDue(afterLooks n: Int) -> Bool {
        n <= 32 ? n & (n - 1) == 0 : n % 30 == 0
    }

    /// What unlocking the store needs from the person who unlocks it, in the words of a prompt:
    /// its passphrase (`new` for a store that has none yet), or the PIN of the token that wraps
    /// its data key, entered on the token's reader's keypad when `onDevice`. Nil when nothing is
    /// needed from them: store_pin_file gives the PIN, or the token wants no login now.
    public func unlockAsks() async throws(AgentError) -> (prompt: String, onDevice: Bool, new: Bool)? {
        let (protection, initialized): (DataKeyProtection?, Bool)
        do { (protection, initialized) = (try store.protection, try store.isInitialized) } catch { throw AgentError(error) }
        guard case .token(let uri) = protection else {
            return initialized ? ("Passphrase of the session-key store", false, false) : ("New passphrase for the session-key store", false, true)
        }
        if storePIN.unattended { return nil }
        do throws(PKCS11Failure) {
            let token = try await PKCS11Provider.locate(uri, defaultModule: nil).loginDue(uri)
            return token.map { (PKCS11Provider.pinPrompt($0), $0.keypad, false) }
        } catch { throw AgentError(error.ownerError.reason, "the store's token: \(error)") }
    }

    /// Unlocks the store: with its passphrase (the first unlock of a new store chooses it), or,
    /// when a token wraps the data key, with the token's PIN (`secret`, or the configured PIN file).
    public func unlock(_ secret: SecretBytes?) async throws(AgentError) {
        try await unlockStore(secret)
        lockCause = nil
        record("store_unlock", reason: "unlocked with agent_unlock", saying: "the store is unlocked (agent_unlock)")
    }

    /// The unlock itself; the caller says what becomes of `lockCause`. The session keys are
    /// checked beside it, off the actor. A warning from the unlock goes to the journal too.
    func unlockStore(_ secret: SecretBytes?) async throws(AgentError) {
        do throws(StoreError) {
            switch try store.protection {
            case .token:
                try await store.unlock(pin: secret == nil ? storePIN : .prompt, prompt: { _ in
                    guard let secret else { throw AgentError("bad_request", "params.passphrase: the token's PIN") }
                    return secret
                })
            case .passphrase?, nil:
                guard let secret else { throw StoreError.wrongPassphrase }
                if try store.isInitialized { try store.unlock(passphrase: secret) } else { try store.initialize(passphrase: secret) }
            }
        } catch { throw AgentError(error) }
        if let warning = store.warning { logger.warning("\(warning)") }
        unlockedAt = clock()
        Task.detached { self.reportDamagedKeys() }
    }

    /// `store_check`: the store's file page by page, and every session key it holds opened
    /// beside its row (off the actor: signing goes on meanwhile).
    public nonisolated func checkStore() throws(AgentError) -> SessionStore.Check {
        do { return try store.check() } catch { throw AgentError(error) }
    }

    /// After an unlock, names in the journal the sessions whose key does not open beside its
    /// row (edited in the file, or damaged): found at once, not when their client next signs.
    /// Nothing is revoked: the operator decides, and the rows stay as evidence.
    nonisolated func reportDamagedKeys() {
        let damaged: [SessionStore.DamagedKey]
        do { damaged = try store.checkKeys().damaged } catch {
            // Locked again meanwhile: the next unlock looks again.
            if case .locked = error { return }
            return logger.error("the session keys could not be checked: \(error)")
        }
        for key in damaged.prefix(10) {
            logger.error("session \(key.sessionId) cannot sign: \(key.problem); revoke it, or restore the store from a backup")
        }
        if damaged.count > 10 {
            logger.error("\(damaged.count - 10) more sessions cannot sign, for the same reason: `session-agent store check` lists them all")
        }
    }

    // The audit log is read and pruned off the actor: a long log keeps neither requests nor
    // decisions waiting, and the store lets signing go on meanwhile.

    /// Whether the chain is intact and ends with the entry this agent knows it to end with
    /// (`head`, which a person may keep elsewhere to check the log against later); `start`, the
    /// last entry pruned, when older entries were.
    public nonisolated func verifyAudit() throws(AgentError)
        -> (intact: Bool, entries: Int, problem: String?, head: (seq: Int64, hash: String)?, start: (seq: Int64, hash: String)?) {
        do {
            let (verified, start) = try store.walkAudit(), head = store.knownAuditHead
            switch verified {
            case .success(let n): return (true, n, nil, head, start)
            case .failure(let e): return (false, 0, "\(e)", head, start)
            }
        } catch { throw AgentError(error) }
    }

    public nonisolated func auditEntries(after seq: Int64?, kind: String?, limit: Int) throws(AgentError) -> [SessionStore.AuditEntry] {
        // Entries of signatures that changed no state wait in memory for the next transaction
        // (at most SessionSigner.lazyFlushDelay): an operator reading the log sees them too.
        signer.writeQueued()
        do { return try store.auditEntries(after: seq, kind: kind, limit: limit) } catch { throw AgentError(error) }
    }

    /// Removes the audit entries through entry `seq`, or through the last one written before
    /// `time`. Nil: there were none.
    public nonisolated func pruneAudit(through seq: Int64?, before time: UInt64?) throws(AgentError) -> SessionStore.AuditPrune? {
        do {
            var through = seq
            if let time { through = try store.lastAuditEntry(before: time) }
            guard let through, let pruned = try store.pruneAudit(through: through, at: clock()) else { return nil }
            logger.notice("audit entries through \(pruned.through) pruned (\(pruned.removed)); the log now starts after hash \(pruned.hash)")
            return pruned
        } catch { throw AgentError(error) }
    }

    /// Removes the sessions that ended (revoked, or expired) before `time`; returns how many.
    public nonisolated func pruneSessions(endedBefore time: UInt64) throws(AgentError) -> Int {
        let ids: Set<String>
        do { ids = Set(try store.pruneSessions(endedBefore: time, at: clock())) } catch { throw AgentError(error) }
        signer.forget { id, _ in ids.contains(id) }
        if !ids.isEmpty { logger.notice("\(ids.count) session\(ids.count == 1 ? "" : "s") that ended before \(time) pruned") }
        return ids.count
    }

    public func pendingRequests() -> [PendingRequest] {
        pending.values.filter { $0.status == .pending && !approving.contains($0.id) }.sorted { $0.createdAt < $1.createdAt }
    }
}

extension Secp256k1 {
    /// 16 random bytes for request and session ids (not secret, just unguessable).
    static func randomBytesForIdentifiers() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

extension Agent {
    /// Why the store is locked, and so whether its token's return opens it again.
    /// When the store locks by itself: once no session key was used for `whenIdle` seconds,
    /// or `after` seconds after it was unlocked, whichever comes first; and, `onSleep`, when
    /// logind says the machine is about to sleep.
    public struct AutoLock: Sendable, Equatable {
        public var whenIdle: UInt64?
        public var after: UInt64?
        public var onSleep: Bool

        public init(whenIdle: UInt64? = nil, after: UInt64? = nil, onSleep: Bool = false) {
            self.whenIdle = whenIdle
            self.after = after
            self.onSleep = onSleep
        }
    }

    enum LockCause: Equatable {
        /// Not unlocked since the agent started (no passphrase file, or its token was absent).
        case atStart
        /// A person asked (`agent_lock`): only `unlock` opens it.
        case request
        /// The token wrapping the data key went away.
        case tokenAway
        /// The token came back, but opening the store with it failed.
        case tokenBackUnopened(String)
        /// No session key was used for this long (`lock_when_idle`).
        case idle(UInt64)
        /// Unlocked this long ago (`lock_after`).
        case unlockedFor(UInt64)
        /// The machine went to sleep (`lock_on_sleep`).
        case sleep

        var reason: String {
            switch self {
            case .atStart: "not unlocked since the agent started"
            case .request: "locked with agent_lock"
            case .tokenAway: "the store's token went away"
            case .tokenBackUnopened(let why): "its token is back, but it did not open: \(why)"
            case .idle(let seconds): "no session key was used for \(DurationText.text(seconds)) (lock_when_idle)"
            case .unlockedFor(let seconds): "it was unlocked \(DurationText.text(seconds)) ago (lock_after)"
            case .sleep: "the machine went to sleep (lock_on_sleep)"
            }
        }

        /// Whether the store's token opens it again when it is back (with its PIN from a file):
        /// not after a person's lock, nor one for time or sleep.
        var reopensWithToken: Bool {
            switch self {
            case .atStart, .tokenAway, .tokenBackUnopened: true
            case .request, .idle, .unlockedFor, .sleep: false
            }
        }
    }
}
