import EthereumCore
import Foundation
import GRDB
import OwnerSigners
@testable import SessionStore
import SmartSessions
import Testing
import TestSupport
import TestTraits

@Suite("The session-key store: sealed keys, binding, lifetimes, ledger, audit chain", .scratchDirectory)
struct SessionStoreTests {
    static let account = try! Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")

    static func stored(_ id: String, key: Secp256k1.PrivateKey, uid: UInt32 = 1000, expires: UInt64? = 2_000_000_000) -> StoredSession {
        let session = Session(sessionValidator: SmartSessionAddresses.ownableValidator,
                              sessionValidatorInitData: try! OwnableValidatorConfig(threshold: 1, owners: [key.address]).initData,
                              userOpPolicies: [PolicyConfig.usageLimit(3).policyData],
                              actions: [ActionData(actionTargetSelector: .valueTransfer, actionTarget: account, actionPolicies: [PolicyConfig.sudo.policyData])])
        return StoredSession(id: id, client: ClientBinding(uid: uid, executable: "/usr/bin/bot"), account: account, accountKind: .nexus,
                             chains: [ChainTarget(chainId: 11155111, nonce: 2)], mode: .enable, session: session,
                             permissionEnableSig: [1, 2, 3], sessionKey: key.address, createdAt: 1_700_000_000, expiresAt: expires,
                             exportAllowed: false, label: "bot")
    }

    static func temporaryPath() -> String {
        ScratchDirectory.path("store.sqlite")
    }

    /// The columns of a session's row before v9.
    static let v8Columns = "id, client_uid, client_executable, client_unit, account, request, session_key, sealed_key, created_at, expires_at, revoked_at, export_allowed"

    /// A store in a file at `path`, unlocked, holding the session "s".
    static func storeWithSession(at path: String) throws -> SessionStore {
        let store = try SessionStore(path: path)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        let key = Secp256k1.PrivateKey.generate()
        try store.insert(Self.stored("s", key: key), key: key)
        return store
    }

    /// A store written before v8 kept one ledger for a session; opened now, its counters belong
    /// to each chain the session was signed on, and new signatures keep each chain's apart.
    @Test func aLedgerKeptOncePerSessionGoesToEachOfItsChains() throws {
        let (current, older) = (Self.temporaryPath(), Self.temporaryPath())
        _ = try Self.storeWithSession(at: current)
        let queue = try DatabaseQueue(path: older)
        try SessionStore.migrator.migrate(queue, upTo: "v7: sessions in the order they were made, by uid and for everyone")
        let used = LedgerKey(policy: .zero, configId: .zero, counter: "used")
        try queue.inDatabase { db in
            try db.execute(sql: "ATTACH DATABASE ? AS current", arguments: [current])
            try db.execute(sql: """
                INSERT INTO sessions (\(Self.v8Columns)) SELECT \(Self.v8Columns) FROM current.sessions;
                INSERT INTO enabled_chains (session_id, chain_id) VALUES ('s', 11155111), ('s', 84532);
                INSERT INTO ledger (session_id, policy, config_id, counter, value) VALUES ('s', ?, ?, 'used', '2');
                DETACH DATABASE current;
                """, arguments: [used.policy.lowercased, used.configId.hex])
        }
        try queue.close()
        let store = try SessionStore(path: older)
        let two = PolicyLedger(counters: [used: 2])
        #expect(try store.sessionToSign(id: "s").ledgers == [11155111: two, 84532: two])
        try store.recordSignature(sessionId: "s", chainId: 84532, delta: LedgerDelta(resetConfigIds: [used.configId], updates: [used: 1]), enablesChain: false, audit: .null, at: 1_700_000_000)
        #expect(try store.sessionToSign(id: "s").ledgers == [11155111: two, 84532: PolicyLedger(counters: [used: 1])])
    }

    /// A key opens only beside the row it was sealed with: every column that never changes is
    /// bound to it, so a row edited in the file (by a process of the agent's uid, which cannot
    /// read the agent's memory) gets no signature and no export. Put back, it opens again.
    @Test func aKeyOpensOnlyBesideTheRowItWasSealedWith() throws {
        let path = Self.temporaryPath()
        let store = try SessionStore(path: path)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        let key = Secp256k1.PrivateKey.generate(), other = Secp256k1.PrivateKey.generate()
        try store.insert(Self.stored("s", key: key), key: key)
        try store.insert(Self.stored("t", key: other), key: other)
        let file = try DatabaseQueue(path: path)
        defer { try? file.close() }
        let problem = "the key of session s does not decrypt (its row was edited, or it is under another key)", refusal = StoreError.corrupt(problem)

        let edits: [(column: String, value: String)] = [
            ("client_uid", "0"), ("client_executable", "NULL"), ("client_executable", "'/usr/bin/bot2'"), ("client_unit", "'bot.service'"),
            ("account", "'0x0000000000000000000000000000000000000001'"), ("request", "replace(request, '\"label\":\"bot\"', '\"label\":\"b0t\"')"),
            ("session_key", "'\(other.address.lowercased)'"), ("created_at", "created_at - 1"), ("expires_at", "NULL"), ("expires_at", "expires_at + 1"),
            ("export_allowed", "1"),
        ]
        for (column, value) in edits {
            let original = try file.read { db in try DatabaseValue.fetchOne(db, sql: "SELECT \(column) FROM sessions WHERE id = 's'") }
            try file.write { db in
                try db.execute(sql: "UPDATE sessions SET \(column) = \(value) WHERE id = 's'")
                #expect(try DatabaseValue.fetchOne(db, sql: "SELECT \(column) FROM sessions WHERE id = 's'") != original, "\(column) = \(value) changed nothing")
            }
            // The listing still reads it (for the operator to see); its key does not open.
            let edited = try store.sessionToSign(id: "s")
            #expect(throws: refusal, "\(column) = \(value)") { try store.unsealKey(edited) }
            #expect(throws: refusal, "\(column) = \(value)") { try store.sessionKey(id: "s") }
            // A check of the whole store names it, and it alone.
            let check = try store.checkKeys()
            #expect(check.checked == 2 && check.damaged.map(\.sessionId) == ["s"] && check.damaged.first?.problem == problem, "\(column) = \(value): \(check)")
            try file.write { db in try db.execute(sql: "UPDATE sessions SET \(column) = ? WHERE id = 's'", arguments: [original]) }
            #expect(try store.sessionKey(id: "s").address == key.address, "\(column) put back")
            #expect(try store.checkKeys().damaged.isEmpty, "\(column) put back")
        }
        // A key moved to another row, or the rows' ids swapped, opens neither.
        try file.write { db in try db.execute(sql: "UPDATE sessions SET sealed_key = (SELECT sealed_key FROM sessions WHERE id = 's') WHERE id = 't'") }
        #expect(throws: StoreError.self) { try store.sessionKey(id: "t") }
        try file.write { db in try db.execute(sql: "UPDATE sessions SET id = 'x' WHERE id = 's'; UPDATE sessions SET id = 's' WHERE id = 't'; UPDATE sessions SET id = 't' WHERE id = 'x'") }
        #expect(throws: StoreError.self) { try store.sessionKey(id: "t") }
        #expect(try store.checkKeys().damaged.map(\.sessionId) == ["s", "t"])
        // What a revocation changes is not bound: it erases the key, and leaves none to check.
        try store.revoke(id: "t", at: 1_700_000_001)
        #expect(try file.read { db in try Data.fetchOne(db, sql: "SELECT sealed_key FROM sessions WHERE id = 't'") } == Data())
        #expect(try store.checkKeys().checked == 1)
        // Without the data key nothing can be checked.
        store.lockStore()
        #expect(throws: StoreError.locked) { try store.checkKeys() }
    }

    /// A store before v9 bound each key to its session's id alone. Its next unlock seals the
    /// keys again, bound to their whole row, and the audit log says so; a key that no longer
    /// opened is named there and left for its use to say so, and the other sessions stay usable.
    @Test func keysSealedBeforeV9AreBoundToTheirRowAtTheNextUnlock() throws {
        let (current, older) = (Self.temporaryPath(), Self.temporaryPath())
        let store = try SessionStore(path: current)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        var keys: [String: Secp256k1.PrivateKey] = [:]
        for id in ["kept", "damaged", "revoked"] {
            keys[id] = Secp256k1.PrivateKey.generate()
            try store.insert(Self.stored(id, key: keys[id]!), key: keys[id]!)
        }
        try store.revoke(id: "revoked", at: 1_700_000_001)
        // As v8 sealed them: bound to the id alone.
        let dataKey = try store.requireKey()
        func sealedByV8(_ id: String) throws -> Data {
            Data(try keys[id]!.withUnsafeBytes { raw throws(StoreError) in try dataKey.seal(raw, boundTo: Array(id.utf8)) })
        }
        let queue = try DatabaseQueue(path: older)
        try SessionStore.migrator.migrate(queue, upTo: "v8: the ledger of each chain apart")
        try queue.inDatabase { db in
            try db.execute(sql: "ATTACH DATABASE ? AS current", arguments: [current])
            try db.execute(sql: """
                INSERT INTO meta SELECT * FROM current.meta;
                INSERT INTO sessions (\(Self.v8Columns)) SELECT \(Self.v8Columns) FROM current.sessions;
                DETACH DATABASE current;
                """)
            try db.execute(sql: "UPDATE sessions SET sealed_key = ? WHERE id = 'kept'", arguments: [try sealedByV8("kept")])
            var damaged = try sealedByV8("damaged")
            damaged[20] ^= 1
            try db.execute(sql: "UPDATE sessions SET sealed_key = ? WHERE id = 'damaged'", arguments: [damaged])
        }
        try queue.close()

        // `store check --store` leaves such a file as it was (a backup should stay one): it
        // brings a copy in memory up to date, and names the damaged key there. It writes no
        // copy anywhere, so it needs no temporary directory.
        let unchanged = try Data(contentsOf: URL(fileURLWithPath: older))
        let passphrase = older + ".pass"
        try writeSecretFile("p", passphrase)
        let checked = try Command.run(Command.sessionAgent, ["store", "check", "--store", older, "--passphrase-file", passphrase],
                                      environment: ProcessInfo.processInfo.environment.merging(["TMPDIR": "/nonexistent/tmp"]) { _, new in new })
        #expect(checked.status == 1 && checked.stderr.contains("hint: session damaged: the key of session damaged does not decrypt"), "\(checked)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: older)) == unchanged && !FileManager.default.fileExists(atPath: older + "-wal"))

        let upgraded = try SessionStore(path: older)
        func boundTo() throws -> [String: String] {
            try upgraded.snapshot { db in
                Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT id, key_bound_to FROM sessions").map { ($0["id"], $0["key_bound_to"]) })
            }
        }
        #expect(try boundTo() == ["kept": "id", "damaged": "id", "revoked": "id"])
        #expect(throws: StoreError.locked) { try upgraded.sessionKey(id: "kept") }
        try upgraded.unlock(passphrase: secret("p"))
        #expect(try boundTo() == ["kept": "row", "damaged": "row", "revoked": "row"])
        #expect(try upgraded.auditEntries(after: nil, kind: "keys_bound_to_rows", limit: 10).map(\.entry)
                == [.object(JSONObject(["bound": JSONValue(1), "unopened": .array(["damaged"])]))])
        #expect(try upgraded.sessionKey(id: "kept").address == keys["kept"]!.address)
        #expect(throws: StoreError.corrupt("the key of session damaged does not decrypt (its row was edited, or it is under another key)")) {
            try upgraded.sessionKey(id: "damaged")
        }
        try upgraded.database.write { db in try db.execute(sql: "UPDATE sessions SET export_allowed = 1 WHERE id = 'kept'") }
        #expect(throws: StoreError.self, "now bound to its row") { try upgraded.sessionKey(id: "kept") }
        // Bound once: the next unlock has nothing to do, and says nothing.
        upgraded.lockStore()
        try upgraded.unlock(passphrase: secret("p"))
        #expect(try upgraded.auditEntries(after: nil, kind: "keys_bound_to_rows", limit: 10).count == 1)
        // A key stored now is bound to its row from the start: no unlock seals it again.
        let new = Secp256k1.PrivateKey.generate()
        try upgraded.insert(Self.stored("new", key: new), key: new)
        #expect(try boundTo()["new"] == "row")
    }

    /// An unlock with no older key to bind writes nothing: another process holding the file's
    /// write lock (a `store rewrap`, a long prune) does not hold it up, nor make it fail.
    @Test func anUnlockWithNothingToBindWaitsForNoWriter() throws {
        let path = Self.temporaryPath()
        let store = try Self.storeWithSession(at: path)
        store.lockStore()
        try DatabaseQueue(path: path).inDatabase { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            defer { try? db.execute(sql: "ROLLBACK") }
            try store.unlock(passphrase: secret("p"))
        }
        #expect(try store.sessionKey(id: "s").address == store.sessionToSign(id: "s").stored.sessionKey)
    }

    /// A store a newer agent migrated is refused, not written as this one knows it: an agent
    /// from before v8 signed on into a v8 store, and each durable signature failed.
    @Test func aStoreANewerAgentWroteIsRefused() throws {
        let path = Self.temporaryPath()
        _ = try Self.storeWithSession(at: path)
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99: from the future')") }
        try queue.close()
        #expect(throws: StoreError.database("the store was written by a newer session-agent (it has \"v99: from the future\", which this one does not know); run that version, or restore a backup this version wrote")) {
            try SessionStore(path: path)
        }
    }

    /// The PINs a token rejected are remembered across runs as keyed fingerprints, with when and
    /// whether the token showed it: the same PIN gives the same fingerprint after the store is
    /// opened again, another PIN another, and the file holds neither PIN.
    @Test func rejectedPINsAreRememberedAsKeyedFingerprints() throws {
        let path = Self.temporaryPath()
        let pin = "482916", other = "482917"
        let first = try SessionStore(path: path)
        let fingerprint = first.fingerprint(of: SecretBytes(utf8: pin))
        let record = RejectedPIN(fingerprint: fingerprint, at: 1_790_000_000, tokenShowedIt: false)
        first.remember(record, of: "token A")
        #expect(first.rejectedPIN(of: "token B") == nil)
        let again = try SessionStore(path: path)
        #expect(again.rejectedPIN(of: "token A") == record)
        #expect(again.fingerprint(of: SecretBytes(utf8: pin)) == fingerprint)
        #expect(again.fingerprint(of: SecretBytes(utf8: other)) != fingerprint)
        #expect(try SessionStore(path: nil).fingerprint(of: SecretBytes(utf8: pin)) != fingerprint, "the key is the store's own")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) + ((try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path + "-wal")))) ?? [])
        #expect(!String(decoding: bytes, as: UTF8.self).contains(pin))
        again.remember(nil, of: "token A")
        #expect(first.rejectedPIN(of: "token A") == nil)
    }

    @Test func keysAreSealedAndOnlyUsableWhenUnlocked() throws {
        let path = Self.temporaryPath()
        let key = Secp256k1.PrivateKey.generate()
        do {
            let store = try SessionStore(path: path)
            #expect(try !store.isInitialized)
            try store.initialize(passphrase: secret("store pass"), scryptN: 1024)
            #expect(try store.requireKey().key.bitCount == 256)
            try store.insert(Self.stored("s1", key: key), key: key)
            #expect(try store.sessionKey(id: "s1").address == key.address)
            #expect(try store.session(id: "s1") == Self.stored("s1", key: key))
            store.lockStore()
            #expect(throws: StoreError.locked) { try store.sessionKey(id: "s1") }
        }
        // The file holds no plaintext key.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let raw = key.withUnsafeBytes { Data($0) }
        #expect(bytes.range(of: raw) == nil)

        let reopened = try SessionStore(path: path)
        #expect(try reopened.isInitialized && reopened.isLocked)
        #expect(throws: StoreError.wrongPassphrase) { try reopened.unlock(passphrase: secret("wrong")) }
        try reopened.unlock(passphrase: secret("store pass"))
        #expect(try reopened.sessionKey(id: "s1").address == key.address)
        #expect(try reopened.requireKey().key.bitCount == 256)
    }

    /// A rewrap changes what opens the data key, not the key: the sessions open under the new
    /// passphrase only, and the audit log says the wrapping changed.
    @Test func aRewrapMovesTheDataKeyToAnotherPassphrase() throws {
        let path = Self.temporaryPath()
        let key = Secp256k1.PrivateKey.generate()
        do {
            let store = try SessionStore(path: path)
            try store.initialize(passphrase: secret("old"), scryptN: 1024)
            try store.insert(Self.stored("s", key: key), key: key)
            try store.rewrap(passphrase: secret("new"), scryptN: 1024)
            #expect(try store.auditEntries(after: nil, kind: "store_rewrap", limit: 10).map(\.entry) == [.object(JSONObject(["protection": "passphrase"]))])
            #expect(try store.verifyAudit() == .success(1))
        }
        let reopened = try SessionStore(path: path)
        #expect(throws: StoreError.wrongPassphrase) { try reopened.unlock(passphrase: secret("old")) }
        try reopened.unlock(passphrase: secret("new"))
        #expect(try reopened.sessionKey(id: "s").address == key.address)
    }

    /// How the data key is wrapped is read back as written, and only as written: a wrapping that
    /// lacks a field, or a derived key's salt of another length, is damage.
    @Test func theWrappedDataKeyIsReadStrictly() throws {
        let uri = try PKCS11URI("pkcs11:token=store;object=store-key")
        let bytes = { (n: Int) in [UInt8](repeating: 7, count: n) }
        for wrapped in [WrappedDataKey.passphrase(salt: bytes(32), n: 1024, r: 8, p: 1, sealed: bytes(60)),
                        .token(key: uri, sealed: .gcm(nonce: bytes(12), sealed: bytes(48))), .token(key: uri, sealed: .derived(salt: bytes(32), sealed: bytes(60)))] {
            #expect(try WrappedDataKey(json: wrapped.json.serialized) == wrapped)
        }
        let damaged = [
            #"{"kind": "pkcs11", "key": "pkcs11:object=k", "derivedFrom": "0x\#(String(repeating: "07", count: 31))", "sealed": "0x07"}"#,
            #"{"kind": "pkcs11", "key": "pkcs11:object=k", "sealed": "0x07"}"#,
            #"{"kind": "pkcs11", "key": "not a uri", "nonce": "0x07", "sealed": "0x07"}"#,
            #"{"kind": "passphrase", "salt": "0x07", "n": 1024, "r": 8, "sealed": "0x07"}"#,
            #"{"kind": "passphrase", "salt": "0x07", "n": "1024", "r": 8, "p": 1, "sealed": "0x07"}"#,
            #"{"kind": "scrypt", "salt": "0x07", "n": 1024, "r": 8, "p": 1, "sealed": "0x07"}"#, "[]",
        ]
        for text in damaged {
            #expect(throws: StoreError.corrupt("the wrapped data key cannot be read"), "\(text)") { try WrappedDataKey(json: text) }
        }
    }

    @Test func sessionsAreListedPerClientAndErasedWhenRevokedOrExpired() throws {
        let store = try SessionStore(path: nil)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        let a = Secp256k1.PrivateKey.generate(), b = Secp256k1.PrivateKey.generate(), c = Secp256k1.PrivateKey.generate()
        try store.insert(Self.stored("a", key: a, uid: 1000), key: a)
        try store.insert(Self.stored("b", key: b, uid: 2000), key: b)
        try store.insert(Self.stored("c", key: c, uid: 1000, expires: 1_800_000_000), key: c)
        #expect(try store.sessions(uid: 1000).map(\.id) == ["a", "c"])
        #expect(try store.sessions(uid: 2000).map(\.id) == ["b"])
        #expect(try store.sessions(uid: nil).count == 3)
        #expect(throws: StoreError.self) { try store.insert(Self.stored("x", key: a), key: b) }   // key and session must agree

        try store.revoke(id: "a", at: 1_750_000_000)
        #expect(throws: StoreError.self) { try store.sessionKey(id: "a") }
        #expect(try store.session(id: "a").revokedAt == 1_750_000_000)
        #expect(throws: StoreError.notFound("session a")) { try store.revoke(id: "a", at: 1) }
        // Its last second is in its lifetime (the agent signs then): the key is kept, and it is live.
        #expect(try store.eraseExpired(now: 1_800_000_000).isEmpty)
        #expect(try store.sessionCounts(uid: 1000, liveAt: 1_800_000_000, madeAfter: 0).live == 1 && store.sessionCounts(uid: 1000, liveAt: 1_800_000_001, madeAfter: 0).live == 0)
        #expect(try store.eraseExpired(now: 1_900_000_000) == ["c"])
        #expect(throws: StoreError.self) { try store.sessionKey(id: "c") }
        #expect(try store.sessionKey(id: "b").address == b.address)
    }

    /// Page after page, whatever the page's size, a listing gives every session once, in the
    /// order they were made (ties by id), and with `liveAt` only those neither revoked nor
    /// expired then.
    @Test func sessionsAreListedAPageAtATimeInTheOrderTheyWereMade() throws {
        let store = try SessionStore(path: nil)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        var random = SplitMix64(seed: 7)
        var all: [StoredSession] = []
        for i in 0..<40 {
            let key = Secp256k1.PrivateKey.generate()
            var s = Self.stored("s\(Int.random(in: 0..<1000, using: &random))-\(i)", key: key, uid: [1000, 2000].randomElement(using: &random)!,
                                expires: [nil, 1_700_000_500, 1_700_001_000, 2_000_000_000].randomElement(using: &random)!)
            s.createdAt = 1_700_000_000 + UInt64.random(in: 0..<4, using: &random)
            try store.insert(s, key: key)
            if Int.random(in: 0..<4, using: &random) == 0 {
                try store.revoke(id: s.id, at: 1_700_000_100)
                s.revokedAt = 1_700_000_100
            }
            all.append(s)
        }
        let now: UInt64 = 1_700_001_000
        for uid in [1000, 2000, nil] as [UInt32?] {
            for live in [false, true] {
                let expected = all.filter { uid == nil || $0.client.uid == uid }
                    .filter { !live || ($0.revokedAt == nil && ($0.expiresAt.map { $0 >= now } ?? true)) }
                    .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }.map(\.id)
                #expect(!expected.isEmpty)
                for limit in [1, 3, 7, 100] {
                    var listed: [String] = [], cursor: (createdAt: UInt64, id: String)?
                    while true {
                        let page = try store.sessions(uid: uid, liveAt: live ? now : nil, after: cursor, limit: limit)
                        #expect(page.count <= limit)
                        listed += page.map(\.id)
                        guard listed.count <= all.count else { Issue.record("a page repeats what came before"); break }
                        guard page.count == limit, let last = page.last else { break }
                        cursor = (last.createdAt, last.id)
                    }
                    #expect(listed == expected, "uid \(String(describing: uid)), live \(live), limit \(limit)")
                }
            }
        }
    }

    @Test func ledgerAndAuditCommitTogetherAndTheChainDetectsTampering() throws {
        let path = Self.temporaryPath()
        let store = try SessionStore(path: path)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        let key = Secp256k1.PrivateKey.generate()
        let s = Self.stored("s", key: key)
        try store.insert(s, key: key)

        let checker = PolicyChecker(session: s.session, account: Self.account)
        let op = PackedUserOperation(sender: Self.account, nonce: 0, initCode: [], callData: ExecuteCall.single(Execution(target: Self.account, value: 1)).calldata,
                                     accountGasLimits: .zero, preVerificationGas: 0, gasFees: .zero, paymasterAndData: [], signature: [])
        for i in 0..<3 {
            guard case .success(let allowance) = checker.check(op, ledger: try store.sessionToSign(id: "s").ledgers[11155111] ?? PolicyLedger()) else {
                Issue.record("use \(i) denied")
                return
            }
            try store.recordSignature(sessionId: "s", chainId: 11155111, delta: allowance.delta, enablesChain: true,
                                      audit: .object(JSONObject(["session": "s", "use": JSONValue(i)])), at: 1_700_000_000 + UInt64(i))
        }
        // The ledger survived in the file: the fourth use is refused, as on chain.
        let reopened = try SessionStore(path: path)
        if case .success = checker.check(op, ledger: try reopened.sessionToSign(id: "s").ledgers[11155111] ?? PolicyLedger()) { Issue.record("the usage limit was forgotten") }
        #expect(try reopened.sessionToSign(id: "s").enabledChains == [11155111])
        try reopened.audit("decision", .object(JSONObject(["approved": true])), at: 1_700_000_100)
        #expect(try reopened.verifyAudit() == .success(4))

        // What re-walking the chain cannot see, the store that wrote it can, while it is open:
        // entries removed from the end, and a chain written again whole (its hash has no key).
        let head = try #require(reopened.knownAuditHead)
        #expect(head.seq == 4)
        try DatabaseQueue(path: path).write { try $0.execute(sql: "DELETE FROM audit WHERE seq = 4") }
        #expect(try SessionStore(path: path).verifyAudit() == .success(3), "a store opened now takes the log as it finds it")
        #expect(try reopened.verifyAudit() == .failure(.corrupt("the audit log ends before entry 4, which this agent wrote: entries were removed from its end")))
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "UPDATE audit SET entry = '{\"session\":\"s\",\"use\":7}' WHERE seq = 2")
            var previous = Bytes32.zero.hex
            for row in try Row.fetchAll(db, sql: "SELECT seq, at, kind, entry FROM audit ORDER BY seq") {
                previous = Keccak256.hash(Array("\(previous)|\(row["at"] as Int64)|\(row["kind"] as String)|\(row["entry"] as String)".utf8)).hex
                try db.execute(sql: "UPDATE audit SET hash = ? WHERE seq = ?", arguments: [previous, row["seq"] as Int64])
            }
            try db.execute(sql: "INSERT INTO audit (seq, at, kind, entry, hash) VALUES (4, 1700000100, 'decision', '{}', ?)",
                           arguments: [Keccak256.hash(Array("\(previous)|1700000100|decision|{}".utf8)).hex])
        }
        #expect(try SessionStore(path: path).verifyAudit() == .success(4), "the chain holds together")
        #expect(try reopened.verifyAudit() == .failure(.corrupt("audit entry 4 is not the one this agent wrote: the chain was written again")))

        // Editing an entry behind the agent's back breaks the chain.
        try DatabaseQueue(path: path).write { try $0.execute(sql: "UPDATE audit SET entry = '{\"session\":\"s\",\"use\":8}' WHERE seq = 2") }
        #expect(try SessionStore(path: path).verifyAudit() == .failure(.corrupt("audit entry 2 does not match the chain")))

        // Entry numbers are not hashed, so renumbering keeps the chain; but `audit verify --holds`
        // and `audit prune --through` go by them.
        try DatabaseQueue(path: path).write { try $0.execute(sql: "UPDATE audit SET entry = '{\"session\":\"s\",\"use\":7}' WHERE seq = 2") }
        #expect(try SessionStore(path: path).verifyAudit() == .success(4))
        try DatabaseQueue(path: path).write { try $0.execute(sql: "UPDATE audit SET seq = seq + 100 WHERE seq >= 3") }
        #expect(try SessionStore(path: path).verifyAudit() == .failure(.corrupt("audit entry 103 follows entry 2: entries were left out or renumbered")))
        try DatabaseQueue(path: path).write { try $0.execute(sql: "UPDATE audit SET seq = seq - 100 WHERE seq > 100; UPDATE audit SET seq = -9223372036854775808 WHERE seq = 1") }
        #expect(try SessionStore(path: path).verifyAudit()
                == .failure(.corrupt("the audit log starts at entry -9223372036854775808, not at entry 1: entries were left out or renumbered")))
        // So is a log whose first entry was removed.
        try DatabaseQueue(path: path).write { try $0.execute(sql: "DELETE FROM audit WHERE seq = -9223372036854775808") }
        #expect(try SessionStore(path: path).verifyAudit() == .failure(.corrupt("the audit log starts at entry 2, not at entry 1: entries were left out or renumbered")))
    }

    /// Pruning removes the oldest entries a batch at a time and leaves a log that still verifies
    /// from where it now starts, with the prune itself in it; tampering with what is left, or
    /// with where it starts, is still found.
    @Test func prunedAuditLogsStillVerify() throws {
        let path = Self.temporaryPath()
        let store = try SessionStore(path: path)
        for i in 1...25 { try store.audit("signature", .object(JSONObject(["use": JSONValue(i)])), at: 1_700_000_000 + UInt64(i)) }
        let hashes = try store.auditEntries(after: 0, kind: nil, limit: 100).map(\.hash)
        #expect(try store.lastAuditEntry(before: 1_700_000_011) == 10 && store.lastAuditEntry(before: 1_700_000_001) == nil)

        // Through entry 10, in batches of 3: ten entries go, and the prune is entry 26.
        #expect(try store.pruneAudit(through: 10, at: 1_700_000_100, batch: 3) == .init(removed: 10, through: 10, hash: hashes[9]))
        let kept = try store.auditEntries(after: 0, kind: nil, limit: 100)
        #expect(kept.map(\.seq) == Array(11...26))
        #expect(kept.last?.kind == "audit_prune" && kept.last?.entry == .object(JSONObject(["through": JSONValue(10), "hash": .string(hashes[9]), "removed": JSONValue(10)])))
        #expect(try store.walkAudit().prunedThrough?.seq == 10 && store.walkAudit().prunedThrough?.hash == hashes[9])
        #expect(try store.verifyAudit() == .success(16))
        #expect(try SessionStore(path: path).verifyAudit() == .success(16), "and after reopening")
        #expect(try store.pruneAudit(through: 7, at: 1_700_000_101) == nil, "nothing left to remove")

        // Pruning through the newest entry keeps the prune's own entry.
        #expect(try store.pruneAudit(through: 1000, at: 1_700_000_102)?.removed == 16)
        #expect(try store.auditEntries(after: 0, kind: nil, limit: 100).map(\.seq) == [27])
        #expect(try store.verifyAudit() == .success(1))

        try store.audit("decision", .object(JSONObject(["approved": true])), at: 1_700_000_103)
        try DatabaseQueue(path: path).write { try $0.execute(sql: "DELETE FROM audit WHERE seq = 27") }
        #expect(try store.verifyAudit() == .failure(.corrupt("audit entry 28 follows entry 26: entries were left out or renumbered")), "an entry removed after where the log starts")
        try DatabaseQueue(path: path).write { try $0.execute(sql: "UPDATE meta SET value = '{\"seq\":27,\"hash\":\"0x00\"}' WHERE key = 'audit_anchor'") }
        #expect(try store.verifyAudit() == .failure(.corrupt("audit entry 28 does not match the chain")), "a starting point moved")
        try DatabaseQueue(path: path).write { try $0.execute(sql: "UPDATE meta SET value = '{\"seq\":9223372036854775807,\"hash\":\"0x00\"}' WHERE key = 'audit_anchor'") }
        #expect(try store.verifyAudit() == .failure(.corrupt("audit entry 28 follows entry 9223372036854775807: entries were left out or renumbered")))
        try DatabaseQueue(path: path).write { try $0.execute(sql: "UPDATE meta SET value = 'nonsense' WHERE key = 'audit_anchor'") }
        #expect(throws: StoreError.corrupt("where the pruned audit log starts cannot be read")) { try store.verifyAudit() }
    }

    /// A pruned log still names the rules in force: the last `rules_load` entry, when a prune
    /// removes it, is written again after the prune's entry; a prune that leaves it, or a later
    /// one, adds none.
    @Test func aPrunedLogStillNamesTheRulesInForce() throws {
        let path = Self.temporaryPath()
        let store = try SessionStore(path: path)
        func rules(_ name: String, _ cause: String) -> JSONValue {
            .object(JSONObject(["cause": .string(cause), "path": .string("/etc/session-agent/\(name).toml"), "sha256": .string(String(repeating: name, count: 64))]))
        }
        try store.recordRulesInForce("a", entry: rules("a", "start"), at: 1_700_000_000)
        for i in 1...3 { try store.audit("signature", .object(JSONObject(["use": JSONValue(i)])), at: 1_700_000_000 + UInt64(i)) }
        try store.recordRulesInForce("b", entry: rules("b", "SIGHUP"), at: 1_700_000_010)
        try store.audit("signature", .object(JSONObject(["use": JSONValue(4)])), at: 1_700_000_011)

        // Entry 1 (rules a) goes; rules b (entry 5) stay in the log, so nothing is added.
        _ = try store.pruneAudit(through: 2, at: 1_700_000_020)
        #expect(try store.auditEntries(after: 0, kind: nil, limit: 100).map(\.kind) == ["signature", "signature", "rules_load", "signature", "audit_prune"])
        // A prune through rules b's entry names them again, after its own entry.
        _ = try store.pruneAudit(through: 5, at: 1_700_000_030)
        let kept = try store.auditEntries(after: 0, kind: nil, limit: 100)
        #expect(kept.map(\.kind) == ["signature", "audit_prune", "audit_prune", "rules_load"], "\(kept)")
        #expect(kept.last?.entry == rules("b", "audit_prune") && kept.last?.at == 1_700_000_030)
        #expect(try store.verifyAudit() == .success(4))
        // The rules in force are still b, so putting them in force again adds nothing.
        try store.recordRulesInForce("b", entry: rules("b", "start"), at: 1_700_000_040)
        #expect(try store.auditEntries(after: 0, kind: nil, limit: 100).count == 4)
    }

    /// A prune whose process stopped before it removed every entry its `audit_prune` entry names
    /// is finished by the next one to open the store (the agent, as it starts): the entry comes
    /// true. Of two prunes under way, the one reaching further is the one kept to finish.
    @Test func aPruneCutShortIsFinishedLater() throws {
        let path = Self.temporaryPath()
        let store = try SessionStore(path: path)
        for i in 1...30 { try store.audit("signature", .object(JSONObject(["use": JSONValue(i)])), at: 1_700_000_000 + UInt64(i)) }
        #expect(try store.finishAuditPrune() == nil, "none under way")
        let hashes = try store.auditEntries(after: 0, kind: nil, limit: 100).map(\.hash)

        // What a process that stopped after the first batches of a prune through 20 leaves: its
        // entry, the entries through 8 removed, and the mark of the prune under way.
        try store.audit("audit_prune", .object(JSONObject(["through": JSONValue(20), "hash": .string(hashes[19]), "removed": JSONValue(20)])), at: 1_700_000_100)
        #expect(try store.pruneAudit(through: 8, at: 1_700_000_101)?.through == 8)
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('audit_pruning', '20')")
        }
        #expect(try store.auditEntries(after: 0, kind: nil, limit: 100).first?.seq == 9)

        // A prune reaching less far, meanwhile, leaves the mark as it is.
        #expect(try store.pruneAudit(through: 12, at: 1_700_000_102)?.removed == 4)
        let reopened = try SessionStore(path: path)
        #expect(try reopened.finishAuditPrune() == 20)
        #expect(try reopened.auditEntries(after: 0, kind: nil, limit: 100).map(\.seq) == Array(21...33))
        #expect(try reopened.walkAudit().prunedThrough?.hash == hashes[19])
        #expect(try reopened.verifyAudit() == .success(13))
        #expect(try reopened.finishAuditPrune() == nil, "done")
        #expect(try SessionStore(path: path).finishAuditPrune() == nil, "and the mark is gone from the file")

        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('audit_pruning', 'nonsense')")
        }
        #expect(throws: StoreError.corrupt("the audit prune under way cannot be read")) { try SessionStore(path: path).finishAuditPrune() }
    }

    /// A store gives back to the file system the pages that pruning frees; one made before
    /// stores did (auto_vacuum off) keeps them, until `compact` rewrites it, contents unchanged,
    /// into one that gives them back from then on.
    @Test func pruningShrinksTheFileAndCompactingConvertsAnOlderStore() throws {
        let path = Self.temporaryPath()
        func pages(_ store: SessionStore) throws -> (count: Int, free: Int, autoVacuum: Int) {
            try store.database.read { db in
                (try Int.fetchOne(db, sql: "PRAGMA page_count")!, try Int.fetchOne(db, sql: "PRAGMA freelist_count")!, try Int.fetchOne(db, sql: "PRAGMA auto_vacuum")!)
            }
        }
        func fill(_ store: SessionStore, _ count: Int) throws {
            let padding = String(repeating: "x", count: 1000)
            for i in 0..<count { try store.audit("signature", .object(JSONObject(["use": JSONValue(i), "padding": .string(padding)])), at: 1_700_000_000) }
        }
        let store = try SessionStore(path: path)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        let key = Secp256k1.PrivateKey.generate()
        try store.insert(Self.stored("kept", key: key), key: key)
        try fill(store, 2000)
        let full = try pages(store)
        #expect(full.autoVacuum == 2, "incremental")
        #expect(try store.pruneAudit(through: 1800, at: 1_700_000_001, batch: 300)?.removed == 1800)
        let pruned = try pages(store)
        #expect(pruned.free == 0 && pruned.count < full.count / 4, "\(full) → \(pruned)")

        // The store as an earlier version made it.
        try DatabaseQueue(path: path).writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA auto_vacuum = NONE")
            try db.execute(sql: "VACUUM")
        }
        let older = try SessionStore(path: path)
        #expect(try pages(older).autoVacuum == 0, "kept as it was")
        try fill(older, 2000)
        let olderFull = try pages(older)
        #expect(try older.pruneAudit(through: 3800, at: 1_700_000_002)?.removed == 2000)
        let kept = try pages(older)
        #expect(kept.count == olderFull.count && kept.free > olderFull.count / 2, "\(olderFull) → \(kept)")
        let entries = try older.auditEntries(after: 0, kind: nil, limit: 1000)
        try older.compact()
        let compacted = try pages(older)
        #expect(compacted.autoVacuum == 2 && compacted.free == 0 && compacted.count < kept.count / 4, "\(kept) → \(compacted)")
        #expect(try older.auditEntries(after: 0, kind: nil, limit: 1000).map(\.hash) == entries.map(\.hash))
        #expect(try older.verifyAudit() == .success(entries.count))
        #expect(try older.walkAudit().prunedThrough?.seq == 3800)
        try older.unlock(passphrase: secret("p"))
        #expect(try older.sessionKey(id: "kept").address == key.address)
    }

    /// A file SQLite finds damaged (a failing disk, a copy cut short) is reported as damaged,
    /// with what to do, not as a database error a retry might mend; a check of the whole file
    /// finds it too.
    @Test func aDamagedFileIsReportedAsDamaged() throws {
        let path = Self.temporaryPath()
        do {
            let store = try SessionStore(path: path)
            let padding = String(repeating: "x", count: 1000)
            for i in 0..<400 { try store.audit("signature", .object(JSONObject(["use": JSONValue(i), "padding": .string(padding)])), at: 1_700_000_000) }
            try store.database.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
            try store.checkFile()
        }
        try scribbleOverTheThirdQuarter(of: path)
        func damaged(_ error: any Error) -> Bool {
            guard case .corrupt(let why) = error as? StoreError else { return false }
            return why.hasPrefix("SQLite finds errors in the file (") && why.hasSuffix("); restore it from a backup")
        }
        #expect(performing: { try SessionStore(path: path).verifyAudit() }, throws: damaged)
        // The agent checks the whole file as it starts, which finds it whatever is read first.
        #expect(performing: { try SessionStore(path: path).checkFile() }, throws: damaged)
    }

    /// A session goes in with the audit entry of the decision that approved it, in one
    /// transaction: one that cannot be stored leaves no entry claiming it was.
    @Test func aSessionIsStoredWithItsDecision() throws {
        let store = try SessionStore(path: nil)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        let key = Secp256k1.PrivateKey.generate()
        let decision = JSONValue.object(JSONObject(["request": "r-1", "status": "approved"]))
        try store.insert(Self.stored("s", key: key), key: key, decision: decision)
        let written = try store.auditEntries(after: nil, kind: nil, limit: 10)
        #expect(written.map(\.kind) == ["decision"] && written.first?.entry == decision)
        #expect(written.first?.at == Self.stored("s", key: key).createdAt)
        #expect(throws: StoreError.self, "the id is taken") { try store.insert(Self.stored("s", key: key), key: key, decision: decision) }
        #expect(try store.auditEntries(after: nil, kind: nil, limit: 10).count == 1)
    }

    /// Another process writing the file (`store rewrap` beside the agent) holds its write lock
    /// for a moment: the agent's next write, a signature's ledger entry, waits for it instead of
    /// failing with "database is locked"; reading how the data key is protected takes no lock.
    @Test func aWriteWaitsForAnotherProcessHoldingTheFile() throws {
        let path = Self.temporaryPath()
        let store = try Self.storeWithSession(at: path)

        var holding = Configuration()
        holding.allowsUnsafeTransactions = true
        let other = try DatabaseQueue(path: path, configuration: holding)
        try other.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        #expect(try store.protection == .passphrase, "read beside the lock")
        // The lock is let go of a moment after this write began waiting for it.
        let release = Thread {
            Thread.sleep(forTimeInterval: 0.3)
            try? other.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }
        }
        release.start()
        try store.recordSignature(sessionId: "s", chainId: 1, delta: LedgerDelta(updates: [LedgerKey(policy: .zero, configId: .zero, counter: "uses"): UInt256(1)]),
                                  enablesChain: true, audit: .null, at: 1_700_000_000)
        #expect(try store.sessionToSign(id: "s").enabledChains == [1])
    }

    /// An entry read back and written out again (`audit export`) is the text it was hashed as,
    /// escapes, non-ASCII and number forms included, so a file of exported entries can be
    /// walked without the store (`audit verify --file`).
    @Test func entriesReadBackHashAsWritten() throws {
        let store = try SessionStore(path: nil)
        let tricky: [JSONValue] = [
            .object(JSONObject(["client": "uid 0, pid 7, /tmp/a\nb\u{1b}[31m", "label": "café ☕ \"quoted\" back\\slash\t/", "n": .number("1e2")])),
            .object(JSONObject(["list": .array([.number("-0.5"), .null, .bool(true), .array([]), .object(JSONObject())]), "big": .number("115792089237316195423570985008687907853269984665640564039457584007913129639935")])),
            .string("\u{7f}\u{80}\u{2028}\u{feff}"),
        ]
        for (i, entry) in tricky.enumerated() { try store.audit("kind \(i)", entry, at: 1_700_000_000 + UInt64(i)) }
        var walk = AuditFileCheck(previous: nil)
        for (i, e) in try store.auditEntries(after: 0, kind: nil, limit: 10).enumerated() {
            let line = JSONValue.object(JSONObject(["seq": JSONValue(Int(e.seq)), "at": JSONValue(Int(e.at)), "kind": .string(e.kind), "entry": e.entry, "hash": .string(e.hash)])).serialized
            do throws(AuditFileCheck.Failure) { try walk.check(Array(line.utf8)[...], number: i + 1) } catch { Issue.record("\(error): \(line)") }
        }
        #expect(walk.count == tricky.count)
    }

    /// A delta's reset (an ENABLE initialising the policies again) empties that config's
    /// counters on that chain only, as `PolicyLedger.apply` does in memory: what is on disk is
    /// what the signer counted from.
    @Test func aResetEmptiesItsConfigOnItsChainOnly() throws {
        let store = try SessionStore(path: nil)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        let key = Secp256k1.PrivateKey.generate()
        try store.insert(Self.stored("s", key: key), key: key)
        let reset = Bytes32([UInt8](repeating: 1, count: 32)), kept = Bytes32([UInt8](repeating: 2, count: 32))
        func counter(_ config: Bytes32) -> LedgerKey { LedgerKey(policy: .zero, configId: config, counter: "used") }
        let both = LedgerDelta(updates: [counter(reset): 5, counter(kept): 7])
        let again = LedgerDelta(resetConfigIds: [reset])
        for chain in [1, 10] as [UInt64] {
            try store.recordSignature(sessionId: "s", chainId: chain, delta: both, enablesChain: true, audit: .null, at: 1_700_000_000)
        }
        try store.recordSignature(sessionId: "s", chainId: 1, delta: again, enablesChain: false, audit: .null, at: 1_700_000_001)
        var expected: [UInt64: PolicyLedger] = [1: PolicyLedger(), 10: PolicyLedger()]
        expected[1]!.apply(both)
        expected[1]!.apply(again)
        expected[10]!.apply(both)
        let ledgers = try store.sessionToSign(id: "s").ledgers
        #expect(ledgers == expected && ledgers[1]?.counters == [counter(kept): 7] && ledgers[10]?.counters.count == 2, "\(ledgers)")
    }

    @Test func signaturesThatChangeNoStateSkipTheFsyncAndLeaveEveryOtherWriteSynced() throws {
        let path = Self.temporaryPath()
        let store = try Self.storeWithSession(at: path)
        let pure = SessionStore.SignatureRecord(sessionId: "s", chainId: 11155111, delta: LedgerDelta(), enablesChain: false, audit: .object(JSONObject(["use": JSONValue(1)])), at: 1_700_000_000)
        var enabling = pure
        enabling.enablesChain = true
        #expect(!pure.changesState && enabling.changesState)
        #expect(SessionStore.SignatureRecord(sessionId: "s", chainId: 1, delta: LedgerDelta(resetConfigIds: [Bytes32.zero]), enablesChain: false, audit: .null, at: 0).changesState)

        // The writer's connection: readers of a pool have their own, which never write.
        func synchronous() throws -> Int? { try store.database.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") } }
        #expect(try synchronous() == 2)   // FULL
        try store.recordSignatures([pure])
        #expect(try synchronous() == 2)
        try store.recordSignatures([pure, enabling])
        #expect(try SessionStore(path: path).sessionToSign(id: "s").enabledChains == [11155111])
        #expect(try SessionStore(path: path).verifyAudit() == .success(3))
    }

    /// The look for keys to erase, every few seconds under the writer, goes through the index of
    /// the keys left rather than every session ever stored; pruning, through that of the ended.
    @Test func findingKeysToEraseAndSessionsEndedReadsOnlyThose() throws {
        let store = try SessionStore(path: nil)
        for (statement, index) in [("SELECT id FROM sessions WHERE \(SessionStore.keysToErase)", "sessions_to_erase"),
                                   ("UPDATE sessions SET sealed_key = x'' WHERE \(SessionStore.keysToErase)", "sessions_to_erase"),
                                   ("SELECT id FROM sessions WHERE \(SessionStore.sessionsEnded)", "sessions_ended")] {
            let plan = try store.database.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN \(statement)", arguments: [1_700_000_000]).map { $0["detail"] as String }
            }
            #expect(plan.contains { $0.contains("USING INDEX \(index)") }, "\(statement): \(plan)")
        }
    }

    /// Pruning removes the sessions that ended before the time given, revoked or expired, with
    /// their ledger and chains, a batch at a time, and says so in the audit log; the others stay.
    @Test func sessionsThatEndedArePrunedWithTheirLedger() throws {
        let store = try SessionStore(path: nil)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        for (id, expires) in [("live", 2_000_000_000), ("expired", 1_700_000_100), ("expired later", 1_700_000_900), ("revoked", 2_000_000_000), ("no end", nil)] as [(String, UInt64?)] {
            let key = Secp256k1.PrivateKey.generate()
            try store.insert(Self.stored(id, key: key, expires: expires), key: key)
            try store.recordSignature(sessionId: id, chainId: 1, delta: LedgerDelta(updates: [LedgerKey(policy: .zero, configId: .zero, counter: "uses"): UInt256(1)]),
                                      enablesChain: true, audit: .null, at: 1_700_000_000)
        }
        try store.revoke(id: "revoked", at: 1_700_000_200)
        // A batch at a time too: each expired key erased, once.
        #expect(try store.eraseExpired(now: 1_700_001_000, batch: 1).sorted() == ["expired", "expired later"])
        #expect(try store.eraseExpired(now: 1_700_001_000, batch: 1).isEmpty)
        #expect(throws: StoreError.notFound("the key of session expired later (revoked or expired)")) { try store.sessionKey(id: "expired later") }
        #expect(try store.pruneSessions(endedBefore: 1_700_000_500, at: 1_700_002_000, batch: 1).sorted() == ["expired", "revoked"])
        #expect(try store.sessions(uid: nil).map(\.id).sorted() == ["expired later", "live", "no end"])
        let left = try store.database.read { db in try String.fetchAll(db, sql: "SELECT DISTINCT session_id FROM ledger UNION SELECT session_id FROM enabled_chains ORDER BY 1") }
        #expect(left == ["expired later", "live", "no end"])
        // One entry a batch, in the batch's transaction.
        #expect(try store.auditEntries(after: nil, kind: "sessions_prune", limit: 10).map(\.entry)
                == Array(repeating: .object(JSONObject(["endedBefore": JSONValue(1_700_000_500), "removed": JSONValue(1)])), count: 2))
        #expect(try store.pruneSessions(endedBefore: 1_700_000_500, at: 1_700_002_000).isEmpty, "nothing left to remove, and no entry for it")
        #expect(try store.auditEntries(after: nil, kind: "sessions_prune", limit: 10).count == 2)
        #expect(try store.pruneSessions(endedBefore: 1_700_000_900, at: 1_700_002_000).isEmpty, "it ended at that time, not before it")
        #expect(try store.pruneSessions(endedBefore: 1_700_001_000, at: 1_700_002_000) == ["expired later"])
        #expect(try store.auditEntries(after: nil, kind: "sessions_prune", limit: 10).last?.entry
                == .object(JSONObject(["endedBefore": JSONValue(1_700_001_000), "removed": JSONValue(1)])))
        #expect(try store.verifyAudit() == .success(try store.auditEntries(after: 0, kind: nil, limit: 100).count))
    }

    /// Chain ids are uint64 (ChainDigest's): one beyond Int64's range is kept whole. Storing it
    /// was a crash, which a client could cause on an account configured for any chain.
    @Test func chainIdsBeyondInt64AreKeptWhole() throws {
        let store = try SessionStore(path: nil)
        try store.initialize(passphrase: secret("p"), scryptN: 1024)
        let key = Secp256k1.PrivateKey.generate()
        try store.insert(Self.stored("s", key: key), key: key)
        for chain: UInt64 in [1, 1 << 63, .max] {
            try store.recordSignature(sessionId: "s", chainId: chain, delta: LedgerDelta(updates: [LedgerKey(policy: .zero, configId: .zero, counter: "uses"): UInt256(chain)]),
                                      enablesChain: true, audit: .null, at: 1_700_000_000)
        }
        #expect(try store.sessionToSign(id: "s").enabledChains == [1, 1 << 63, .max])
        // Each chain's ledger apart, under the same id.
        #expect(try store.sessionToSign(id: "s").ledgers.mapValues { $0.counters.values.first } == [1: 1, 1 << 63: UInt256(1 << 63), .max: UInt256(UInt64.max)])
    }
}
