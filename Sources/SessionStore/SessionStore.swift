import EthereumCore
import Foundation
import GRDB
import OwnerSigners
import SmartSessions

/// The client a session is bound to: its uid always, its executable or systemd unit when the
/// request asked for that.
public struct ClientBinding: Hashable, Sendable {
    public var uid: UInt32
    public var executable: String?
    public var unit: String?
    /// The one process that may use the session, which ends when it exits.
    public var process: ClientProcess?

    public init(uid: UInt32, executable: String? = nil, unit: String? = nil, process: ClientProcess? = nil) {
        self.uid = uid
        self.executable = executable
        self.unit = unit
        self.process = process
    }
}

/// A process, told apart from any later one given the same pid by when it started (clock
/// ticks after boot, `/proc/PID/stat`'s 22nd field).
public struct ClientProcess: Hashable, Sendable, CustomStringConvertible {
    public var pid: Int32
    public var startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    public var description: String { "pid \(pid)" }
}

/// A session the agent holds a key for.
public struct StoredSession: Sendable, Equatable {
    public var id: String
    public var client: ClientBinding
    public var account: Address
    public var accountKind: AccountKind?
    public var chains: [ChainTarget]
    public var mode: SmartSessionMode
    public var session: Session
    /// The owner's signature, already routed for the account (`permissionEnableSig`).
    public var permissionEnableSig: [UInt8]
    public var sessionKey: Address
    public var createdAt: UInt64
    public var expiresAt: UInt64?
    public var revokedAt: UInt64?
    public var exportAllowed: Bool
    public var label: String?

    public init(id: String, client: ClientBinding, account: Address, accountKind: AccountKind?, chains: [ChainTarget], mode: SmartSessionMode,
                session: Session, permissionEnableSig: [UInt8], sessionKey: Address, createdAt: UInt64, expiresAt: UInt64?,
                revokedAt: UInt64? = nil, exportAllowed: Bool, label: String? = nil) {
        self.id = id
        self.client = client
        self.account = account
        self.accountKind = accountKind
        self.chains = chains
        self.mode = mode
        self.session = session
        self.permissionEnableSig = permissionEnableSig
        self.sessionKey = sessionKey
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.exportAllowed = exportAllowed
        self.label = label
    }
}

/// How the store's data key is kept at rest.
public enum DataKeyProtection: Equatable, Sendable {
    case passphrase
    /// Wrapped by the AES key with this URI on a PKCS#11 token.
    case token(PKCS11URI)
}

/// The session-key store: one SQLite file (GRDB) holding sessions, their keys sealed with
/// AES-256-GCM under a data key, the policy ledger and the hash-chained audit log.
public final class SessionStore: @unchecked Sendable {
    // Every write, and every read that a write depends on, goes through the one writer, in
    // turn; reading the audit log (walking it whole, filtering it) and a session with its
    // ledger is done beside it, on a snapshot (WAL), so that neither waits for a commit or for
    // another process holding the file's write lock. (The agent's signer applies the records
    // it has not yet written on top of the ledger it reads.) `dataKey`, `sealWarning` and
    // `auditHead` are guarded by `lock`.
    let database: any DatabaseWriter
    private let lock = NSLock()
    private var dataKey: DataKey?
    /// What the last unlock warned of the data key's seal (see `unlock(pin:prompt:)`).
    private var sealWarning: String?
    /// The last audit entry committed by this process, or found at the end of the chain when
    /// it opened the store. Re-walking the chain cannot tell entries removed from its end, nor
    /// a chain someone wrote again whole (its hash has no key); comparing with this can, for as
    /// long as the process runs. Across restarts the journal keeps it: the agent logs it at start.
    private var auditHead: (seq: Int64, hash: String)?
    /// The last entry appended by the transaction under way: it becomes `auditHead` only once that
    /// transaction committed (a commit can still fail, on a full disk). Used on the database's
    /// queue only.
    private var appendedAuditHead: (seq: Int64, hash: String)?

    /// Opens (creating and migrating) the store at `path`, or in memory for `nil`.
    public convenience init(path: String?) throws(StoreError) {
        try self.init { configuration in
            guard let path else { return try DatabaseQueue(configuration: configuration) }
            // In WAL mode, as a pool always is.
            let pool = try DatabasePool(path: path, configuration: configuration)
            // A commit is on disk before it returns: the ledger is never behind a signature.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            return pool
        }
    }

    /// The store at `path`, copied into memory page by page from a read-only connection (SQLite's
    /// online backup, damaged pages as they are) and opened there: what is done to it, bringing
    /// an older store up to date among it, leaves the file as it was, and nothing of it is
    /// written anywhere else. It takes as much memory as the file is large.
    public static func copyInMemory(of path: String) throws(StoreError) -> SessionStore {
        try SessionStore { configuration in
            let memory = try DatabaseQueue(configuration: configuration)
            try readOnly(path).backup(to: memory)
            return memory
        }
    }

    /// A connection that only reads the store file at `path`, beside an agent that writes it.
    private static func readOnly(_ path: String) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    private init(opening open: (Configuration) throws -> any DatabaseWriter) throws(StoreError) {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        // Another process may write the file for a moment (`store rewrap` beside a running agent):
        // a write waits for it rather than failing, a signature's ledger entry among them.
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // Deleted keys are overwritten, not left in free pages.
            try db.execute(sql: "PRAGMA secure_delete = ON")
            // Pages freed by pruning go back to the file system (`releaseFreePages`). Only a new,
            // empty file takes this, before WAL mode writes its first page; an older one stays as
            // it was until `compact` (and is not locked to try, beside a running agent).
            if !db.configuration.readonly, try Int.fetchOne(db, sql: "PRAGMA page_count") == 0 {
                try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
            }
        }
        do {
            database = try open(configuration)
            // A newer agent's store may keep what this one writes elsewhere (v8 keeps each
            // chain's ledger apart): written to as this one knows it, its limits would go wrong.
            let unknown = try database.read { db in try Self.migrator.appliedIdentifiers(db).subtracting(Self.migrator.migrations) }
            if let newest = unknown.sorted().last {
                throw StoreError.database("the store was written by a newer session-agent (it has \"\(newest)\", which this one does not know); run that version, or restore a backup this version wrote")
            }
            try Self.migrator.migrate(database)
            auditHead = try database.read { db in
                try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").map { (seq: $0["seq"], hash: $0["hash"]) }
            }
        } catch let e as StoreError { throw e } catch { throw StoreError(database: error) }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: sessions, ledger, audit") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY NOT NULL,
                    client_uid INTEGER NOT NULL, client_executable TEXT, client_unit TEXT,
                    account TEXT NOT NULL, request TEXT NOT NULL,
                    session_key TEXT NOT NULL, sealed_key BLOB NOT NULL,
                    created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER,
                    export_allowed INTEGER NOT NULL);
                CREATE INDEX sessions_by_uid ON sessions(client_uid);
                CREATE TABLE enabled_chains (
                    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                    chain_id INTEGER NOT NULL, PRIMARY KEY (session_id, chain_id));
                CREATE TABLE ledger (
                    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                    policy TEXT NOT NULL, config_id TEXT NOT NULL, counter TEXT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (session_id, policy, config_id, counter));
                CREATE TABLE audit (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, kind TEXT NOT NULL,
                    entry TEXT NOT NULL, hash TEXT NOT NULL);
                """)
        }
        migrator.registerMigration("v2: owners and accounts registered at run time") { db in
            try db.execute(sql: """
                CREATE TABLE registered_owners (address TEXT PRIMARY KEY NOT NULL, keystore TEXT NOT NULL, passphrase_file TEXT);
                CREATE TABLE registered_accounts (address TEXT PRIMARY KEY NOT NULL, config TEXT NOT NULL);
                """)
        }
        migrator.registerMigration("v3: owners on PKCS#11 tokens") { db in
            try db.execute(sql: """
                ALTER TABLE registered_owners RENAME COLUMN keystore TO location;
                ALTER TABLE registered_owners RENAME COLUMN passphrase_file TO secret_file;
                ALTER TABLE registered_owners ADD COLUMN backend TEXT NOT NULL DEFAULT 'keystore';
                """)
        }
        migrator.registerMigration("v4: PINs tokens rejected") { db in
            try db.execute(sql: "CREATE TABLE rejected_pins (token TEXT PRIMARY KEY NOT NULL, fingerprint BLOB NOT NULL)")
        }
        // v4's records were honoured only while the token showed the failed try: they keep that meaning.
        migrator.registerMigration("v5: when, and whether the token showed it") { db in
            try db.execute(sql: """
                ALTER TABLE rejected_pins ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE rejected_pins ADD COLUMN token_showed_it INTEGER NOT NULL DEFAULT 1;
                """)
        }
        // The agent looks for keys to erase every few seconds, under the writer: without the first
        // it read every session ever stored each time (50 ms per look at 100,000 sessions). The
        // second finds the sessions that ended, for `pruneSessions`.
        migrator.registerMigration("v6: the keys still to erase, by expiry; the sessions ended, by end") { db in
            try db.execute(sql: """
                CREATE INDEX sessions_to_erase ON sessions(expires_at) WHERE length(sealed_key) > 0;
                CREATE INDEX sessions_ended ON sessions(coalesce(revoked_at, expires_at)) WHERE length(sealed_key) = 0;
                """)
        }
        // Sessions are listed a page at a time, in the order they were made.
        migrator.registerMigration("v7: sessions in the order they were made, by uid and for everyone") { db in
            try db.execute(sql: """
                DROP INDEX sessions_by_uid;
                CREATE INDEX sessions_by_uid_in_order ON sessions(client_uid, created_at, id);
                CREATE INDEX sessions_in_order ON sessions(created_at, id);
                """)
        }
        // Each chain a session is enabled on keeps its own policy state, and an ENABLE starts
        // that chain's counters again, not the others'. The ledger was kept once per session;
        // its counters go to every chain the session was signed on, which is exact for the
        // sessions of one chain (nearly all of them).
        migrator.registerMigration("v8: the ledger of each chain apart") { db in
            try db.execute(sql: """
                CREATE TABLE ledger_by_chain (
                    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE, chain_id INTEGER NOT NULL,
                    policy TEXT NOT NULL, config_id TEXT NOT NULL, counter TEXT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (session_id, chain_id, policy, config_id, counter));
                INSERT INTO ledger_by_chain (session_id, chain_id, policy, config_id, counter, value)
                    SELECT l.session_id, c.chain_id, l.policy, l.config_id, l.counter, l.value FROM ledger l JOIN enabled_chains c USING (session_id);
                DROP TABLE ledger;
                ALTER TABLE ledger_by_chain RENAME TO ledger;
                """)
        }
        // A key was bound to its session's id alone, so the rest of the row could be edited in
        // the file (another uid, a later end, export allowed) and the key still opened. Keys are
        // now bound to the whole row (`boundData`); the older ones are sealed again at the next
        // unlock, which has the data key that takes.
        migrator.registerMigration("v9: keys bound to their whole row") { db in
            try db.execute(sql: "ALTER TABLE sessions ADD COLUMN key_bound_to TEXT NOT NULL DEFAULT 'id'")
        }
        // A prune looks for the last `rules_load` entry inside its write transaction, and
        // `audit_show` filters by kind: without the index both read the whole log.
        migrator.registerMigration("v10: audit entries by kind") { db in
            try db.execute(sql: "CREATE INDEX audit_by_kind ON audit(kind)")
        }
        migrator.registerMigration("v11: the retry counter a card showed after rejecting a PIN") { db in
            try db.execute(sql: "ALTER TABLE rejected_pins ADD COLUMN tries_left INTEGER")
        }
        return migrator
    }

    // MARK: - Owners and accounts added through the control socket

    /// An owner added through the control socket (the configuration file's are not stored): a
    /// keystore file, a key on a PKCS#11 token, or an OpenPGP card's signature key.
    public struct RegisteredOwner: Sendable, Equatable {
        public var address: String
        /// "keystore", "pkcs11" or "openpgp-card".
        public var backend: String
        /// The keystore's path, the key's PKCS#11 URI, or the card's serial number.
        public var location: String
        /// The passphrase file (keystore) or PIN file (token, card), when the secret is not asked.
        public var secretFile: String?
        public init(address: String, backend: String, location: String, secretFile: String?) {
            self.address = address
            self.backend = backend
            self.location = location
            self.secretFile = secretFile
        }
    }

    /// `custody`: what the token said of the private key when it was added, for the audit log.
    public func registerOwner(_ owner: RegisteredOwner, custody: String? = nil, at time: UInt64) throws(StoreError) {
        try run { db in
            try db.execute(sql: "INSERT OR REPLACE INTO registered_owners (address, backend, location, secret_file) VALUES (?, ?, ?, ?)",
                           arguments: [owner.address, owner.backend, owner.location, owner.secretFile])
            var entry = JSONObject(["address": .string(owner.address), "backend": .string(owner.backend), "location": .string(owner.location)])
            if let custody { entry["custody"] = .string(custody) }
            try self.appendAudit(db, kind: "owner_add", entry: .object(entry), at: time)
        }
    }

    public func registeredOwners() throws(StoreError) -> [RegisteredOwner] {
        try run { db in
            try Row.fetchAll(db, sql: "SELECT * FROM registered_owners ORDER BY address").map {
                RegisteredOwner(address: $0["address"], backend: $0["backend"], location: $0["location"], secretFile: $0["secret_file"])
            }
        }
    }

    /// An account's configuration (its JSON form) registered at run time.
    public func registerAccount(address: String, config: JSONValue, at time: UInt64) throws(StoreError) {
        try run { db in
            try db.execute(sql: "INSERT OR REPLACE INTO registered_accounts (address, config) VALUES (?, ?)", arguments: [address, config.serialized])
            try self.appendAudit(db, kind: "account_add", entry: config, at: time)
        }
    }

    public func registeredAccounts() throws(StoreError) -> [JSONValue] {
        try run { db in try String.fetchAll(db, sql: "SELECT config FROM registered_accounts ORDER BY address").map { try JSONValue(parsing: $0) } }
    }

    /// Removes a registered owner or account; false when it was not registered.
    public func unregister(_ kind: Registration, address: String, at time: UInt64) throws(StoreError) -> Bool {
        try run { db in
            try db.execute(sql: "DELETE FROM \(kind.rawValue) WHERE address = ?", arguments: [address])
            guard db.changesCount > 0 else { return false }
            try self.appendAudit(db, kind: kind == .owner ? "owner_remove" : "account_remove", entry: .object(JSONObject(["address": .string(address)])), at: time)
            return true
        }
    }

    public enum Registration: String, Sendable {
        case owner = "registered_owners"
        case account = "registered_accounts"
    }

    func run<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try database.writeWithoutTransaction { db in try self.committed(db, body) } } catch let e as StoreError { throw e } catch { throw StoreError(database: error) }
    }

    /// `body` on a snapshot, beside the writer: for reads no write depends on.
    func snapshot<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try database.read(body) } catch let e as StoreError { throw e } catch { throw StoreError(database: error) }
    }

    /// `body` in one transaction; once it committed, the audit entries it appended are the log's
    /// known end. (GRDB's afterNextTransaction is not told of a transaction whose COMMIT failed,
    /// and would fire at the next one.)
    private func committed<T>(_ db: Database, _ body: (Database) throws -> T) throws -> T {
        defer { appendedAuditHead = nil }
        var result: T?
        try db.inTransaction {
            result = try body(db)
            return .commit
        }
        if let head = appendedAuditHead { lock.withLock { auditHead = head } }
        return result!
    }

    // MARK: - The data key

    /// Whether a data key was ever created.
    public var isInitialized: Bool {
        get throws(StoreError) { try snapshot(Self.storedDataKey) != nil }
    }

    /// The wrapped data key's JSON text, nil before the store is initialised.
    static func storedDataKey(_ db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'data_key'")
    }

    public var isLocked: Bool { lock.withLock { dataKey == nil } }

    /// What the unlock of the open store warns of (see `unlock(pin:prompt:)`); nil while it is
    /// locked.
    public var warning: String? { lock.withLock { dataKey == nil ? nil : sealWarning } }

    /// Creates the data key, wrapped under `passphrase`, and leaves the store unlocked.
    public func initialize(passphrase: SecretBytes, scryptN: UInt64 = 1 << 15) throws(StoreError) {
        guard try !isInitialized else { throw .corrupt("the store already has a data key") }
        let key = DataKey.generate()
        let wrapped = try key.wrap(passphrase: passphrase, n: scryptN)
        try run { db in
            // Checked again under the writer: another process may have made one meanwhile.
            guard try Self.storedDataKey(db) == nil else { throw StoreError.corrupt("the store already has a data key") }
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('data_key', ?)", arguments: [wrapped.json.serialized])
        }
        lock.withLock { (dataKey, sealWarning) = (key, nil) }
    }

    public func unlock(passphrase: SecretBytes) throws(StoreError) {
        try unlocked(with: DataKey.unwrap(try wrappedKey(), passphrase: passphrase), warning: nil)
    }

    /// Keeps the data key, once the keys sealed before v9 are bound to their whole row.
    private func unlocked(with key: DataKey, warning: String?) throws(StoreError) {
        try bindKeysToTheirRows(key)
        lock.withLock { (dataKey, sealWarning) = (key, warning) }
    }

    /// Seals again, bound to their whole row, the keys a store before v9 bound to the session's
    /// id alone, and says so in the audit log. A key that does not open is left as it is (using
    /// it says it is damaged; the store's other sessions stay usable), and named there.
    private func bindKeysToTheirRows(_ key: DataKey) throws(StoreError) {
        // Read first: an unlock with nothing to do waits for no other writer of the file.
        guard try snapshot({ db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sessions WHERE key_bound_to = 'id')") }) == true else { return }
        try run { db in
            var bound = 0, unopened: [JSONValue] = []
            for row in try Row.fetchAll(db, sql: "SELECT * FROM sessions WHERE key_bound_to = 'id'") {
                let id: String = row["id"], sealed: [UInt8] = [UInt8](row["sealed_key"] as Data)
                if !sealed.isEmpty {
                    if let secret = try? key.open(sealed, boundTo: Array(id.utf8), record: id) {
                        let resealed = try secret.withUnsafeBytes { raw throws(StoreError) in try key.seal(raw, boundTo: Self.boundData(row)) }
                        try db.execute(sql: "UPDATE sessions SET sealed_key = ? WHERE id = ?", arguments: [Data(resealed), id])
                        bound += 1
                    } else {
                        unopened.append(.string(id))
                    }
                }
                try db.execute(sql: "UPDATE sessions SET key_bound_to = 'row' WHERE id = ?", arguments: [id])
            }
            if bound > 0 || !unopened.isEmpty {
                try appendAudit(db, kind: "keys_bound_to_rows", entry: .object(JSONObject(["bound": JSONValue(bound), "unopened": .array(unopened)])),
                                at: UInt64(Date().timeIntervalSince1970))
            }
        }
    }

    /// How the data key is protected: nil before the store is initialised.
    public var protection: DataKeyProtection? {
        get throws(StoreError) {
            switch try storedWrapping() {
            case nil: nil
            case .passphrase?: .passphrase
            case .token(let key, _)?: .token(key)
            }
        }
    }

    /// Unlocks a store whose data key a token wraps; fails while the token is absent. When the
    /// token lets its AES key be read, `warning` then says so, for whoever unlocked it: a copy
    /// of the file opens without the token (a store sealed before `rewrap` refused such keys).
    public func unlock(pin: PINSource, prompt: SecretPrompt) async throws(StoreError) {
        let wrapped = try wrappedKey()
        guard case .token(let keyURI, _) = wrapped else { throw .wrongPassphrase }
        let (key, custody): (DataKey, PKCS11KeyCustody)
        do throws(PKCS11Failure) { (key, custody) = try await DataKey.unwrap(wrapped, pin: pin, prompt: prompt) } catch { throw .token("\(error)") }
        var warning: String?
        if custody == .exportable {
            var fresh = keyURI.tokenOnly
            fresh.object = "NEW-LABEL"
            warning = "the AES key \(keyURI) that wraps this store's data key can be read out of its token (not sensitive, or extractable), "
                + "so a copy of the store opens without the token; rewrap the store under a key that cannot be, made by: session-agent store rewrap --to '\(fresh)'"
        }
        try unlocked(with: key, warning: warning)
    }

    /// Wraps the (unlocked) data key under a new passphrase instead. The key itself does not
    /// change, so the sealed sessions and a running agent are unaffected.
    public func rewrap(passphrase: SecretBytes, scryptN: UInt64 = 1 << 15) throws(StoreError) {
        try replaceWrapping(try requireKey().wrap(passphrase: passphrase, n: scryptN))
    }

    /// Wraps the (unlocked) data key by an AES key on a token instead (made there if absent).
    public func rewrap(token keyURI: PKCS11URI, pin: PINSource, prompt: SecretPrompt) async throws(StoreError) {
        let key = try requireKey()
        let wrapped: WrappedDataKey
        do throws(PKCS11Failure) { wrapped = try await key.wrap(token: keyURI, pin: pin, prompt: prompt) } catch { throw .token("\(error)") }
        try replaceWrapping(wrapped)
    }

    private func replaceWrapping(_ wrapped: WrappedDataKey) throws(StoreError) {
        try run { db in
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'data_key'", arguments: [wrapped.json.serialized])
            let kind: String = if case .token = wrapped { "pkcs11" } else { "passphrase" }
            try self.appendAudit(db, kind: "store_rewrap", entry: .object(JSONObject(["protection": .string(kind)])), at: UInt64(Date().timeIntervalSince1970))
        }
    }

    /// The data key as the file keeps it wrapped; nil before the store is initialised.
    private func storedWrapping() throws(StoreError) -> WrappedDataKey? {
        guard let text = try snapshot(Self.storedDataKey) else { return nil }
        return try WrappedDataKey(json: text)
    }

    private func wrappedKey() throws(StoreError) -> WrappedDataKey {
        guard let wrapped = try storedWrapping() else { throw .notFound("the store's data key (initialise the store first)") }
        return wrapped
    }

    /// Drops the data key from memory: session keys cannot be used until `unlock`.
    public func lockStore() { lock.withLock { dataKey = nil } }

    func requireKey() throws(StoreError) -> DataKey {
        guard let key = lock.withLock({ dataKey }) else { throw .locked }
        return key
    }

    // MARK: - Sessions

    static func requestJSON(_ s: StoredSession) -> String {
        var request = JSONObject([
            "accountKind": s.accountKind.map { .string($0.rawValue) } ?? .null,
            "chains": .array(s.chains.map { .object(JSONObject(["chainId": .string(String($0.chainId)), "nonce": .string($0.nonce.description)])) }),
            "mode": .number(String(s.mode.rawValue)), "session": s.session.json,
            "permissionEnableSig": .string(Hex.encode(s.permissionEnableSig)), "label": s.label.map { .string($0) } ?? .null,
        ])
        // In the request, which the key is bound to, rather than a column of its own: the keys
        // of the rows written before it are bound to the columns there were.
        if let process = s.client.process {
            request["clientProcess"] = .object(JSONObject(["pid": JSONValue(Int(process.pid)), "startTime": .string(String(process.startTime))]))
        }
        return JSONValue.object(request).serialized
    }

    /// The columns of a session's row that never change, which its sealed key is bound to.
    /// (`revoked_at` changes, but a revocation erases the key.)
    static let boundColumns = ["id", "client_uid", "client_executable", "client_unit", "account", "request", "session_key",
                               "created_at", "expires_at", "export_allowed"]

    /// The data a session's key is sealed bound to: the row's `boundColumns` as the file holds
    /// them. A row edited in the file (handed to another uid or program, given a later end or
    /// another scope, allowed export) no longer opens its key, though the process that edits it
    /// may write the file; only the data key, which it has not, seals one again.
    static func boundData(_ row: Row) -> [UInt8] {
        boundData(boundValues(row))
    }

    /// The row's `boundColumns`, as the file holds them.
    static func boundValues(_ row: Row) -> [DatabaseValue] { boundColumns.map { row[$0] as DatabaseValue } }

    private static func boundData(_ values: [DatabaseValue]) -> [UInt8] {
        let columns = values.map { value -> JSONValue in
            switch value.storage {
            case .null: .null
            case .int64(let n): .number(String(n))
            case .string(let text): .string(text)
            // No bound column holds one; kept apart from a string all the same.
            case .double(let x): .array([.string("real"), .string("\(x)")])
            case .blob(let bytes): .array([.string("blob"), .string(Hex.encode([UInt8](bytes)))])
            }
        }
        return Array(JSONValue.array([.string("session-agent session row")] + columns).serialized.utf8)
    }

    /// Stores a session and seals its key (the key's address must be the session's); `decision`,
    /// the audit entry of the approval that made it, goes in the same transaction: there is never
    /// a session the log does not say was approved.
    public func insert(_ s: StoredSession, key: Secp256k1.PrivateKey, decision: JSONValue? = nil) throws(StoreError) {
        guard key.address == s.sessionKey else { throw .corrupt("the key does not belong to session \(s.id)") }
        let data = try requireKey()
        let bound: [(any DatabaseValueConvertible)?] = [
            s.id, Int64(s.client.uid), s.client.executable, s.client.unit, s.account.lowercased, Self.requestJSON(s),
            s.sessionKey.lowercased, Int64(s.createdAt), s.expiresAt.map(Int64.init), s.exportAllowed,
        ]
        let sealed = try key.withUnsafeBytes { raw throws(StoreError) in
            try data.seal(raw, boundTo: Self.boundData(bound.map { $0?.databaseValue ?? .null }))
        }
        try run { db in
            if let decision { try appendAudit(db, kind: "decision", entry: decision, at: s.createdAt) }
            try db.execute(sql: """
                INSERT INTO sessions (\(Self.boundColumns.joined(separator: ", ")), revoked_at, sealed_key, key_bound_to)
                VALUES (\(Array(repeating: "?", count: Self.boundColumns.count + 2).joined(separator: ", ")), 'row')
                """, arguments: StatementArguments(bound + [s.revokedAt.map(Int64.init), Data(sealed)]))
        }
    }

    static func session(from row: Row) throws -> StoredSession {
        let request = try JSONValue(parsing: row["request"] as String)
        let chains = try (request["chains"]?.arrayValue ?? []).map { c in
            ChainTarget(chainId: UInt64(c["chainId"]?.stringValue ?? "") ?? 0, nonce: try UInt256(parsing: c["nonce"]?.stringValue ?? "0"))
        }
        guard case .number(let m)? = request["mode"], let mode = UInt8(m).flatMap(SmartSessionMode.init(rawValue:)) else {
            throw StoreError.corrupt("session mode")
        }
        let uid: Int64 = row["client_uid"]
        let created: Int64 = row["created_at"]
        let expires: Int64? = row["expires_at"]
        let revoked: Int64? = row["revoked_at"]
        return StoredSession(
            id: row["id"], client: ClientBinding(uid: UInt32(uid), executable: row["client_executable"], unit: row["client_unit"], process: try clientProcess(request)),
            account: try Address(row["account"] as String), accountKind: request["accountKind"]?.stringValue.flatMap(AccountKind.init(rawValue:)),
            chains: chains, mode: mode, session: try Session(json: request["session"] ?? .null),
            permissionEnableSig: try Hex.decode(request["permissionEnableSig"]?.stringValue ?? "0x"),
            sessionKey: try Address(row["session_key"] as String), createdAt: UInt64(created), expiresAt: expires.map(UInt64.init),
            revokedAt: revoked.map(UInt64.init), exportAllowed: row["export_allowed"], label: request["label"]?.stringValue)
    }

    static func clientProcess(_ request: JSONValue) throws -> ClientProcess? {
        guard let process = request["clientProcess"], process != .null else { return nil }
        guard let pid = process["pid"]?.integerValue.flatMap(Int32.init(exactly:)), let start = process["startTime"]?.stringValue.flatMap({ UInt64($0) }) else {
            throw StoreError.corrupt("a session's client process")
        }
        return ClientProcess(pid: pid, startTime: start)
    }

    /// The live sessions bound to a process (neither revoked nor with their key erased), with
    /// when they expire: the agent ends each once its process has exited.
    public func sessionsBoundToProcesses() throws(StoreError) -> [(id: String, process: ClientProcess, expiresAt: UInt64?)] {
        try snapshot { db in
            try Row.fetchAll(db, sql: """
                SELECT id, request, expires_at FROM sessions
                WHERE revoked_at IS NULL AND length(sealed_key) > 0 AND json_extract(request, '$.clientProcess') IS NOT NULL
                """).compactMap { row in
                let expires: Int64? = row["expires_at"]
                return try Self.clientProcess(try JSONValue(parsing: row["request"] as String)).map { (row["id"], $0, expires.map(UInt64.init)) }
            }
        }
    }

    public func session(id: String) throws(StoreError) -> StoredSession {
        guard let s = try snapshot({ db in try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id = ?", arguments: [id]).map(Self.session(from:)) }) else {
            throw .notFound("session \(id)")
        }
        return s
    }

    /// The sessions neither revoked nor expired at a time (the argument): a session's last
    /// second, `expires_at`, is in its lifetime, as the agent signs then.
    static let liveAt = "revoked_at IS NULL AND (expires_at IS NULL OR expires_at >= ?)"

    /// How many sessions of `uid` are live at `time` (neither revoked nor expired), and how many
    /// were made for it after `madeAfter`, whatever became of them since (until they are
    /// pruned): one pass over the uid's sessions.
    public func sessionCounts(uid: UInt32, liveAt time: UInt64, madeAfter: UInt64) throws(StoreError) -> (live: Int, made: Int) {
        try snapshot { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT coalesce(sum(\(Self.liveAt)), 0) AS live, coalesce(sum(created_at > ?), 0) AS made FROM sessions WHERE client_uid = ?
                """, arguments: [Int64(clamping: time), Int64(clamping: madeAfter), Int64(uid)])
            return (live: row?["live"] ?? 0, made: row?["made"] ?? 0)
        }
    }

    /// The sessions of one uid, or of everyone for `nil` (the operator's view), oldest first (by
    /// creation, then id): at most `limit`, those created after `after` (the last of the page
    /// before), and with `liveAt` only those neither revoked nor expired then. Read beside the
    /// writer: a long list holds up no signature.
    public func sessions(uid: UInt32?, liveAt: UInt64? = nil, after: (createdAt: UInt64, id: String)? = nil,
                         limit: Int = .max) throws(StoreError) -> [StoredSession] {
        var conditions: [String] = [], arguments: StatementArguments = []
        if let uid {
            conditions.append("client_uid = ?")
            arguments += [Int64(uid)]
        }
        if let liveAt {
            conditions.append(Self.liveAt)
            arguments += [Int64(clamping: liveAt)]
        }
        if let after {
            conditions.append("(created_at, id) > (?, ?)")
            arguments += [Int64(clamping: after.createdAt), after.id]
        }
        let sql = "SELECT * FROM sessions" + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY created_at, id LIMIT ?"
        arguments += [Int64(clamping: limit)]
        return try snapshot { db in try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.session(from:)) }
    }

    /// The session key, unsealed. Revoked and expired sessions have none.
    public func sessionKey(id: String) throws(StoreError) -> Secp256k1.PrivateKey {
        try unsealKey(sessionToSign(id: id))
    }

    /// A session with the ledgers and chains signing with it needs, read on one snapshot (one
    /// read transaction rather than three). Its key stays sealed until `unsealKey`, so that
    /// whoever asks can be checked first.
    public struct SessionToSign: Sendable {
        public let stored: StoredSession
        /// Each chain's: the policies keep their state on each chain apart.
        public let ledgers: [UInt64: PolicyLedger]
        public let enabledChains: Set<UInt64>
        fileprivate let sealedKey: Data
        /// What the key is bound to, made into `boundData` only when it is unsealed.
        fileprivate let boundValues: [DatabaseValue]
    }

    public func sessionToSign(id: String) throws(StoreError) -> SessionToSign {
        let read = try snapshot { db -> SessionToSign? in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id = ?", arguments: [id]) else { return nil }
            return SessionToSign(stored: try Self.session(from: row), ledgers: try Self.ledgers(db, sessionId: id),
                                 enabledChains: try Self.enabledChains(db, sessionId: id), sealedKey: row["sealed_key"],
                                 boundValues: Self.boundValues(row))
        }
        guard let read else { throw .notFound("session \(id)") }
        return read
    }

    /// The key of a session read by `sessionToSign`, opened only beside the row it was sealed with.
    public func unsealKey(_ session: SessionToSign) throws(StoreError) -> Secp256k1.PrivateKey {
        let data = try requireKey(), id = session.stored.id
        guard !session.sealedKey.isEmpty else { throw .notFound("the key of session \(id) (revoked or expired)") }
        return try Self.openKey([UInt8](session.sealedKey), boundTo: session.boundValues, of: id, with: data)
    }

    private static func openKey(_ sealed: [UInt8], boundTo values: [DatabaseValue], of id: String, with data: DataKey) throws(StoreError) -> Secp256k1.PrivateKey {
        let secret = try data.open(sealed, boundTo: boundData(values), record: "the key of session \(id)")
        do { return try secret.withUnsafeBytes { raw throws(Secp256k1Error) in try Secp256k1.PrivateKey(bytes: raw) } } catch {
            throw .corrupt("session \(id) holds an invalid key")
        }
    }

    /// A session whose key does not open beside its row, and why.
    public struct DamagedKey: Sendable, Equatable {
        public let sessionId: String
        public let problem: String
    }

    /// What `check` found: damage SQLite finds in the file's pages, how many session keys were
    /// opened, and those that did not open beside their row.
    public struct Check: Sendable {
        public let fileProblem: String?
        public let keysChecked: Int
        public let damaged: [DamagedKey]
        public var intact: Bool { fileProblem == nil && damaged.isEmpty }

        /// As `store_check` answers and `store check --json` prints it.
        public var json: JSONValue {
            .object(JSONObject([
                "intact": .bool(intact), "file": .string(fileProblem ?? "ok"),
                "keys": .object(JSONObject(["checked": JSONValue(keysChecked), "damaged": .array(damaged.map {
                    .object(JSONObject(["sessionId": .string($0.sessionId), "problem": .string($0.problem)]))
                })])),
            ]))
        }
    }

    /// Reads every page of the file and opens every session key beside its row, on snapshots
    /// beside the writer. Only while the store is open: the keys need its data key. Damage
    /// among the sessions' own pages fails the keys' walk: `corrupt`, saying where.
    public func check() throws(StoreError) -> Check {
        _ = try requireKey()
        var fileProblem: String?
        do throws(StoreError) { try checkFile() } catch {
            guard case .corrupt(let why) = error else { throw error }
            fileProblem = why
        }
        let keys = try checkKeys()
        return Check(fileProblem: fileProblem, keysChecked: keys.checked, damaged: keys.damaged)
    }

    /// Opens every key the store holds (the sessions neither revoked nor expired and erased)
    /// beside its row, on one snapshot, a row at a time: an edited row or a damaged key is found
    /// now, not when its client next signs. Returns how many were opened and those that did not.
    public func checkKeys() throws(StoreError) -> (checked: Int, damaged: [DamagedKey]) {
        let data = try requireKey()
        return try snapshot { db in
            var checked = 0, damaged: [DamagedKey] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM sessions WHERE length(sealed_key) > 0 ORDER BY created_at, id")
            while let row = try rows.next() {
                let id: String = row["id"]
                checked += 1
                do throws(StoreError) {
                    _ = try Self.openKey([UInt8](row["sealed_key"] as Data), boundTo: Self.boundValues(row), of: id, with: data)
                } catch {
                    guard case .corrupt(let why) = error else { throw error }
                    damaged.append(DamagedKey(sessionId: id, problem: why))
                }
            }
            return (checked, damaged)
        }
    }

    /// Marks a session revoked and erases its key.
    public func revoke(id: String, at time: UInt64) throws(StoreError) {
        let changed = try run { db in
            try db.execute(sql: "UPDATE sessions SET revoked_at = ?, sealed_key = x'' WHERE id = ? AND revoked_at IS NULL", arguments: [Int64(time), id])
            return db.changesCount
        }
        guard changed == 1 else { throw .notFound("session \(id)") }
    }

    /// The sessions whose keys are due to be erased at a time (the argument); the index
    /// `sessions_to_erase` finds them.
    static let keysToErase = "expires_at IS NOT NULL AND expires_at < ? AND length(sealed_key) > 0"

    /// Erases the keys of sessions that expired by `time`, `batch` a transaction; returns their
    /// ids. Sessions made together expire together: 20,000 keys erased in one transaction held
    /// every signature up for 343 ms.
    @discardableResult
    public func eraseExpired(now time: UInt64, batch: Int = 500) throws(StoreError) -> [String] {
        try batchesOfSessions(where: Self.keysToErase, Int64(clamping: time), batch: batch) { db, ids in
            let erase = try db.cachedStatement(sql: "UPDATE sessions SET sealed_key = x'' WHERE id = ?")
            for id in ids { try erase.execute(arguments: [id]) }
        }
    }

    /// Runs `body` on the ids of the sessions `condition` (with its one argument) selects,
    /// `batch` in a transaction, until it selects none; returns them all. A long run of work
    /// holds each signature up for one batch at the most.
    private func batchesOfSessions(where condition: String, _ argument: Int64, batch: Int, _ body: (Database, [String]) throws -> Void) throws(StoreError) -> [String] {
        let batch = max(batch, 1)
        var all: [String] = []
        while true {
            let ids = try run { db in
                let ids = try String.fetchAll(db, sql: "SELECT id FROM sessions WHERE \(condition) LIMIT ?", arguments: [argument, batch])
                try body(db, ids)
                return ids
            }
            all += ids
            if ids.count < batch { return all }
        }
    }

    /// The sessions that ended (revoked, or expired, and their keys erased) before a time (the
    /// argument); the index `sessions_ended` finds them.
    static let sessionsEnded = "length(sealed_key) = 0 AND coalesce(revoked_at, expires_at) < ?"

    /// Removes the sessions that ended before `time`, with their ledger and chains, `batch` a
    /// transaction; returns their ids. What they did stays in the audit log, with an entry for
    /// each batch that says how many went.
    public func pruneSessions(endedBefore time: UInt64, at now: UInt64, batch: Int = 1000) throws(StoreError) -> [String] {
        let time = Int64(clamping: time)
        let removed = try batchesOfSessions(where: Self.sessionsEnded, time, batch: batch) { db, ids in
            let delete = try db.cachedStatement(sql: "DELETE FROM sessions WHERE id = ?")
            for id in ids { try delete.execute(arguments: [id]) }
            // In the batch's own transaction: however far a prune gets, the log says so.
            if !ids.isEmpty {
                try self.appendAudit(db, kind: "sessions_prune", entry: .object(JSONObject(["endedBefore": JSONValue(Int(time)), "removed": JSONValue(ids.count)])), at: now)
            }
        }
        if !removed.isEmpty { try releaseFreePages() }
        return removed
    }

    // MARK: - Ledger and signatures

    static func ledgers(_ db: Database, sessionId: String) throws -> [UInt64: PolicyLedger] {
        var ledgers: [UInt64: PolicyLedger] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT chain_id, policy, config_id, counter, value FROM ledger WHERE session_id = ?", arguments: [sessionId]) {
            let key = LedgerKey(policy: try Address(row["policy"] as String), configId: try Bytes32(hex: row["config_id"] as String), counter: row["counter"])
            ledgers[UInt64(bitPattern: row["chain_id"]), default: PolicyLedger()].counters[key] = try UInt256(parsing: row["value"] as String)
        }
        return ledgers
    }

    static func enabledChains(_ db: Database, sessionId: String) throws -> Set<UInt64> {
        Set(try Int64.fetchAll(db, sql: "SELECT chain_id FROM enabled_chains WHERE session_id = ?", arguments: [sessionId]).map { UInt64(bitPattern: $0) })
    }

    /// What one signature changes: the delta to its chain's ledger, whether it enabled the
    /// session on that chain, its audit entry.
    public struct SignatureRecord: Sendable {
        public var sessionId: String
        public var chainId: UInt64
        public var delta: LedgerDelta
        public var enablesChain: Bool
        /// The audit entry's kind: "signature", or "denied" for an operation refused.
        public var kind: String
        public var audit: JSONValue
        public var at: UInt64

        public init(sessionId: String, chainId: UInt64, delta: LedgerDelta, enablesChain: Bool, kind: String = "signature", audit: JSONValue, at: UInt64) {
            self.sessionId = sessionId
            self.chainId = chainId
            self.delta = delta
            self.enablesChain = enablesChain
            self.kind = kind
            self.audit = audit
            self.at = at
        }

        /// Whether the record changes what later signatures are checked against (the ledger, the
        /// chains a session is enabled on), so it must be on disk before its signature leaves.
        public var changesState: Bool { !delta.isEmpty || enablesChain }
    }

    /// Records a signature in one durable transaction that commits before the signature may be
    /// handed out.
    public func recordSignature(sessionId: String, chainId: UInt64, delta: LedgerDelta, enablesChain: Bool, audit: JSONValue, at time: UInt64) throws(StoreError) {
        try recordSignatures([SignatureRecord(sessionId: sessionId, chainId: chainId, delta: delta, enablesChain: enablesChain, audit: audit, at: time)])
    }

    /// Records signatures in order, all in one transaction (group commit: one fsync for every
    /// signature that arrived while the previous transaction was committing). A batch in which
    /// no record changes state commits without the fsync (`synchronous = NORMAL`: in WAL mode it
    /// survives the process dying, and is made durable by the next synced commit).
    public func recordSignatures(_ records: [SignatureRecord]) throws(StoreError) {
        let durable = records.contains(where: \.changesState)
        do {
            try database.writeWithoutTransaction { db in
                // Every other write of the store stays synced: the mode is restored before the queue is released.
                if !durable { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
                defer { if !durable { try? db.execute(sql: "PRAGMA synchronous = FULL") } }
                try self.committed(db) { try self.insert(records, $0) }
            }
        } catch let e as StoreError { throw e } catch { throw StoreError(database: error) }
    }

    private func insert(_ records: [SignatureRecord], _ db: Database) throws {
        var previous: String?
        for r in records {
            // A chain id is a uint64 (ChainDigest's), stored as the Int64 of its bits.
            let chain = Int64(bitPattern: r.chainId)
            for id in r.delta.resetConfigIds {
                try db.cachedStatement(sql: "DELETE FROM ledger WHERE session_id = ? AND chain_id = ? AND config_id = ?").execute(arguments: [r.sessionId, chain, id.hex])
            }
            for (key, value) in r.delta.updates {
                try db.cachedStatement(sql: """
                    INSERT INTO ledger (session_id, chain_id, policy, config_id, counter, value) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (session_id, chain_id, policy, config_id, counter) DO UPDATE SET value = excluded.value
                    """).execute(arguments: [r.sessionId, chain, key.policy.lowercased, key.configId.hex, key.counter, value.description])
            }
            if r.enablesChain {
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO enabled_chains (session_id, chain_id) VALUES (?, ?)").execute(arguments: [r.sessionId, chain])
            }
            previous = try self.appendAudit(db, kind: r.kind, entry: r.audit, at: r.at, previous: previous)
        }
    }

    // MARK: - Audit log

    /// An entry's hash: keccak-256 of `previous|at|kind|entry` (the entry's JSON text), hex.
    public static func chainHash(previous: String, at: Int64, kind: String, entry: String) -> String {
        Keccak256.hash(Array("\(previous)|\(at)|\(kind)|\(entry)".utf8)).hex
    }

    /// Appends one entry; returns its hash, which `previous` takes for the next one in the same
    /// transaction (a batch reads the chain's end once).
    @discardableResult
    func appendAudit(_ db: Database, kind: String, entry: JSONValue, at time: UInt64, previous: String? = nil) throws -> String {
        let previous = try previous ?? String.fetchOne(db.cachedStatement(sql: "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")) ?? Bytes32.zero.hex
        let text = entry.serialized
        let hash = Self.chainHash(previous: previous, at: Int64(time), kind: kind, entry: text)
        try db.cachedStatement(sql: "INSERT INTO audit (at, kind, entry, hash) VALUES (?, ?, ?, ?)").execute(arguments: [Int64(time), kind, text, hash])
        appendedAuditHead = (db.lastInsertedRowID, hash)
        return hash
    }

    /// The last entry of the audit log as this process knows it (nil: none yet).
    public var knownAuditHead: (seq: Int64, hash: String)? { lock.withLock { auditHead } }

    /// Appends an entry (requests, decisions, approvers; never secrets) to the hash chain.
    public func audit(_ kind: String, _ entry: JSONValue, at time: UInt64) throws(StoreError) {
        _ = try run { try self.appendAudit($0, kind: kind, entry: entry, at: time) }
    }

    /// One entry of the audit log; `hash` chains it to the entry before.
    public struct AuditEntry: Sendable {
        public var seq: Int64
        public var at: UInt64
        public var kind: String
        public var entry: JSONValue
        public var hash: String
    }

    /// Says in the audit log (a `rules_load` entry) that the rules `fingerprint` names are in
    /// force ("": none), unless they are the rules last put in force already: an agent started
    /// again with the same file, or never given one, adds nothing.
    public func recordRulesInForce(_ fingerprint: String, entry: JSONValue, at time: UInt64) throws(StoreError) {
        try run { db in
            guard try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'rules_in_force'") ?? "" != fingerprint else { return }
            try appendAudit(db, kind: "rules_load", entry: entry, at: time)
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('rules_in_force', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           arguments: [fingerprint])
        }
    }

    /// Entries in order: the first `limit` after `seq`, or without it the last `limit`; only
    /// those of `kind` when it is given.
    public func auditEntries(after seq: Int64?, kind: String?, limit: Int) throws(StoreError) -> [AuditEntry] {
        try snapshot { db in
            let filter = kind == nil ? "" : "AND kind = ?"
            var arguments: StatementArguments = [seq ?? 0]
            if let kind { arguments += [kind] }
            arguments += [Int64(limit)]
            let sql = seq != nil
                ? "SELECT * FROM audit WHERE seq > ? \(filter) ORDER BY seq LIMIT ?"
                : "SELECT * FROM (SELECT * FROM audit WHERE seq > ? \(filter) ORDER BY seq DESC LIMIT ?) ORDER BY seq"
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                AuditEntry(seq: row["seq"], at: UInt64(row["at"] as Int64), kind: row["kind"],
                           entry: try JSONValue(parsing: row["entry"] as String), hash: row["hash"])
            }
        }
    }

    /// Checks every page of the file (SQLite's quick_check: about 0.2 s for 60 MB) on a
    /// snapshot, holding up no write; throws `corrupt` for a damaged file. A page that only
    /// sessions no one uses live on would otherwise go unnoticed until the backups are gone too.
    public func checkFile() throws(StoreError) {
        let problems = try snapshot { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
        guard problems == ["ok"] else {
            throw .corrupt("SQLite finds errors in the file (\(problems.prefix(3).joined(separator: "; "))); restore it from a backup")
        }
    }

    /// The number of entries if the chain is intact; else the first broken entry. Entries are
    /// read one at a time from a snapshot: a long log takes no memory and holds up no write.
    public func verifyAudit() throws(StoreError) -> Result<Int, StoreError> { try walkAudit().result }

    /// `verifyAudit`, with where the walk started when older entries were pruned (the last
    /// entry removed), read in the same snapshot.
    public func walkAudit() throws(StoreError) -> (result: Result<Int, StoreError>, prunedThrough: (seq: Int64, hash: String)?) {
        let head = knownAuditHead
        return try snapshot { db in
            let start = try Self.auditAnchor(db)
            return (try Self.walk(db, from: start, head: head), start)
        }
    }

    /// Entry numbers must count up by one from entry 1, or from where the pruned log starts.
    private static func walk(_ db: Database, from start: (seq: Int64, hash: String)?, head: (seq: Int64, hash: String)?) throws -> Result<Int, StoreError> {
        var chain = AuditChain(afterSeq: start?.seq ?? 0, hash: start?.hash ?? Bytes32.zero.hex)
        var headFound = head == nil
        let rows = try Row.fetchCursor(db, sql: "SELECT seq, at, kind, entry, hash FROM audit ORDER BY seq")
        while let row = try rows.next() {
            let seq: Int64 = row["seq"]
            do { try chain.append(seq: seq, at: row["at"], kind: row["kind"], entry: row["entry"], hash: row["hash"]) } catch {
                switch error {
                case .notNext where start == nil && chain.count == 0:
                    return .failure(.corrupt("the audit log starts at entry \(seq), not at entry 1: entries were left out or renumbered"))
                case .notNext(_, let after): return .failure(.corrupt("audit entry \(seq) follows entry \(after): entries were left out or renumbered"))
                case .mismatch: return .failure(.corrupt("audit entry \(seq) does not match the chain"))
                }
            }
            if let head, seq == head.seq {
                guard row["hash"] as String == head.hash else { return .failure(.corrupt("audit entry \(head.seq) is not the one this agent wrote: the chain was written again")) }
                headFound = true
            }
        }
        if let head, !headFound {
            return .failure(.corrupt("the audit log ends before entry \(head.seq), which this agent wrote: entries were removed from its end"))
        }
        return .success(chain.count)
    }

    // MARK: - Pruning the audit log

    /// What `pruneAudit` removed: `removed` entries, through entry `through`, whose hash the
    /// first entry kept chains from.
    public struct AuditPrune: Sendable, Equatable {
        public var removed: Int
        public var through: Int64
        public var hash: String
    }

    /// The last entry written before `time`, if any.
    public func lastAuditEntry(before time: UInt64) throws(StoreError) -> Int64? {
        try snapshot { try Int64.fetchOne($0, sql: "SELECT max(seq) FROM audit WHERE at < ?", arguments: [Int64(clamping: time)]) }
    }

    /// Removes the audit entries through `seq`, oldest first, `batch` at a time, each batch its
    /// own transaction so that signing goes on meanwhile. The log stays verifiable: the last
    /// entry removed is kept as its starting point (in `meta`, moved on with each batch), and an
    /// `audit_prune` entry, appended first, records what goes; so the newest entry is never
    /// removed. The last `rules_load` entry, if it goes, is appended again after it. Nil: there
    /// was nothing to remove.
    public func pruneAudit(through seq: Int64, at time: UInt64, batch: Int = 1000) throws(StoreError) -> AuditPrune? {
        let target: AuditPrune? = try run { db in
            guard let last = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit WHERE seq <= ? ORDER BY seq DESC LIMIT 1", arguments: [seq]) else { return nil }
            let target = AuditPrune(removed: try Int.fetchOne(db, sql: "SELECT count(*) FROM audit WHERE seq <= ?", arguments: [last["seq"] as Int64]) ?? 0,
                                    through: last["seq"], hash: last["hash"])
            try appendAudit(db, kind: "audit_prune", entry: .object(JSONObject([
                "through": JSONValue(Int(target.through)), "hash": .string(target.hash), "removed": JSONValue(target.removed),
            ])), at: time)
            // The log keeps naming the rules in force: the last `rules_load` entry, when it goes,
            // is written again after the prune's own (its cause "audit_prune").
            if let rules = try Row.fetchOne(db, sql: "SELECT seq, entry FROM audit WHERE kind = 'rules_load' ORDER BY seq DESC LIMIT 1"),
               (rules["seq"] as Int64) <= target.through, case .object(var entry) = try JSONValue(parsing: rules["entry"] as String) {
                entry["cause"] = "audit_prune"
                try appendAudit(db, kind: "rules_load", entry: .object(entry), at: time)
            }
            // Of two prunes under way, the one reaching further is the one left to finish.
            try db.execute(sql: """
                INSERT INTO meta (key, value) VALUES ('\(Self.auditPruning)', ?)
                ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))
                """, arguments: [String(target.through)])
            return target
        }
        guard let target else { return nil }
        try removeAudit(through: target.through, batch: batch)
        try releaseFreePages()
        return target
    }

    /// Meta key of a prune under way: the last entry its `audit_prune` entry says goes. An agent
    /// that stopped before removing them all finishes it when it starts (`finishAuditPrune`),
    /// so that the entry comes true.
    static let auditPruning = "audit_pruning"

    /// Finishes a prune that the process which began it did not; returns the last entry it removes.
    public func finishAuditPrune(batch: Int = 1000) throws(StoreError) -> Int64? {
        guard let text = try run({ db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [Self.auditPruning]) }) else { return nil }
        guard let through = Int64(text) else { throw .corrupt("the audit prune under way cannot be read") }
        try removeAudit(through: through, batch: batch)
        try releaseFreePages()
        return through
    }

    /// Removes the entries through `through`, oldest first, `batch` a transaction, moving the
    /// anchor the chain is walked from along with them.
    private func removeAudit(through: Int64, batch: Int) throws(StoreError) {
        var removedThrough: Int64 = 0
        while removedThrough < through {
            removedThrough = try run { db in
                // The batch's last entry: the batch-th left, or the last left. The starting point
                // is always an entry that was there, so a prune running beside this one can
                // never move it back.
                let end = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit WHERE seq <= ? ORDER BY seq LIMIT 1 OFFSET ?", arguments: [through, max(batch, 1) - 1])
                    ?? Row.fetchOne(db, sql: "SELECT seq, hash FROM audit WHERE seq <= ? ORDER BY seq DESC LIMIT 1", arguments: [through])
                var removed = through
                if let end {
                    let (seq, hash): (Int64, String) = (end["seq"], end["hash"])
                    try db.execute(sql: "DELETE FROM audit WHERE seq <= ?", arguments: [seq])
                    let anchor = JSONValue.object(JSONObject(["seq": JSONValue(Int(seq)), "hash": .string(hash)]))
                    try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('audit_anchor', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                   arguments: [anchor.serialized])
                    removed = seq
                }
                if removed == through {
                    try db.execute(sql: "DELETE FROM meta WHERE key = ? AND CAST(value AS INTEGER) <= ?", arguments: [Self.auditPruning, through])
                }
                return removed
            }
        }
    }

    static func auditAnchor(_ db: Database) throws -> (seq: Int64, hash: String)? {
        guard let text = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'audit_anchor'") else { return nil }
        let json = try? JSONValue(parsing: text)
        guard case .number(let seq)? = json?["seq"], let seq = Int64(seq), let hash = json?["hash"]?.stringValue else {
            throw StoreError.corrupt("where the pruned audit log starts cannot be read")
        }
        return (seq, hash)
    }

    // MARK: - The file

    /// Gives the pages that removals freed back to the file system, 256 KB a write, so
    /// that a store shrinks as it is pruned without holding up signing for long. A store made
    /// before stores did this keeps its free pages for later writes until it is compacted.
    func releaseFreePages(pagesAWrite: Int = 64) throws(StoreError) {
        do {
            guard try database.read({ db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") }) == 2 else { return }
            var left = Int.max
            while true {
                let now = try database.writeWithoutTransaction { db in
                    try db.execute(sql: "PRAGMA incremental_vacuum(\(pagesAWrite))")
                    return try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                }
                // Also stops should another write free pages as fast as this gives them back.
                guard now > 0, now < left else { return }
                left = now
            }
        } catch { throw StoreError(database: error) }
    }

    /// Copies the store at `path` to `destination`, a file that must not exist yet, made 0600:
    /// one consistent snapshot (SQLite's VACUUM INTO, from a read-only connection), taken
    /// beside a running agent without holding up its writes.
    public static func backup(_ path: String, to destination: String) throws(StoreError) {
        try vacuum(into: destination) { statement in
            try readOnly(path).inDatabase { db in try db.execute(sql: statement, arguments: [destination]) }
        }
    }

    /// The same from this store as it is open: what it holds even once its file was removed.
    public func copy(to destination: String) throws(StoreError) {
        try Self.vacuum(into: destination) { statement in
            try database.writeWithoutTransaction { db in try db.execute(sql: statement, arguments: [destination]) }
        }
    }

    private static func vacuum(into destination: String, _ run: (String) throws -> Void) throws(StoreError) {
        let fd = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .database("cannot make \(destination): \(String(cString: strerror(errno)))") }
        close(fd)
        do { try run("VACUUM INTO ?") } catch {
            unlink(destination)
            throw StoreError(database: error)
        }
    }

    /// Rewrites the whole file without its free pages, and makes it one that gives back what
    /// pruning frees from then on. It holds up every other write meanwhile (about 2 s for
    /// 400 MB), so `session-agent store compact` runs it only while no agent serves the store.
    public func compact() throws(StoreError) {
        do {
            try database.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                try db.execute(sql: "VACUUM")
            }
            // VACUUM wrote every page to the WAL: back into the file, and the WAL emptied.
            if let pool = database as? DatabasePool { try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) } }
        } catch { throw StoreError(database: error) }
    }
}
