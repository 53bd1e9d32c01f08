import Approval
import ChainRPC
import EthereumCore
import Foundation
import Logging
import NIOCore
import OwnerSigners
import SessionStore
import SmartSessions

/// Puts the agent together from its configuration and serves it until cancelled.
public enum AgentDaemon {
    /// `logger` gets what an operator should see in the journal (never a secret).
    public static func run(_ config: AgentConfiguration, logger: Logger,
                           onReady: @escaping @Sendable (_ clientSocket: String, _ controlSocket: String) -> Void) async throws {
        try Hardening.apply()
        try makeDirectory(config.dataDirectory, mode: 0o700, for: "data_dir")
        try requirePrivate(dataDirectory: config.dataDirectory)
        let instance = try InstanceLock(directory: config.dataDirectory)
        defer { withExtendedLifetime(instance) {} }
        let storePath = config.dataDirectory + "/store.sqlite"
        let store = try SessionStore(path: storePath)
        let storeFile = FileIdentity(storePath)
        do {
            if let through = try store.finishAuditPrune() {
                logger.notice("audit entries through \(through) pruned: the prune the agent began before it stopped is finished")
            }
        } catch {
            logger.error("an audit prune the agent began before it stopped is left unfinished: \(error)")
        }
        PKCS11Provider.answerTimeoutOfNewProviders = .seconds(Int64(config.pkcs11Timeout))
        OpenPGPCards.answerTimeout = .seconds(Int64(config.pkcs11Timeout))
        FIDO2Authenticators.configuredDevices = config.fido2Devices
        // A PIN file a token rejected is not offered again after a restart either.
        RejectedPINs.memory = store
        let storePIN = config.storePINFile.map { PINSource.file($0) } ?? .prompt
        switch try store.protection {
        case nil:
            if let file = config.storePassphraseFile { try store.initialize(passphrase: try SecretFile.read(file)) }
        case .passphrase:
            if let file = config.storePassphraseFile { try store.unlock(passphrase: try SecretFile.read(file)) }
        case .token:
            // Without store_pin_file only a person opens it (`session-agent unlock`), also where the
            // token's reader has a keypad: nobody is there to type on it as the agent starts. A
            // store whose token is absent starts locked too; an unlock tries again.
            guard let file = config.storePINFile else {
                let useless = config.storePassphraseFile == nil ? "" : " (store_passphrase_file is no use to a store a token protects)"
                logger.warning("the store stays locked: store_pin_file is not set\(useless); `session-agent unlock` asks for the PIN")
                break
            }
            do {
                try await store.unlock(pin: .file(file), prompt: { _ in throw AgentError("locked", "the PIN comes from \(file)") })
                if let warning = store.warning { logger.warning("\(warning)") }
            } catch {
                logger.warning("the store stays locked: \(error)")
            }
        }
        // The configuration file's owners and accounts, then those added through the control
        // socket (the file wins where both name one).
        let runTimeModules = config.runTimeModules
        var owners: [any OwnerSigner] = []
        for owner in config.owners { owners.append(try await OwnerLoader.load(owner, defaultModule: config.pkcs11Module)) }
        for registered in try store.registeredOwners() where !owners.contains(where: { $0.identity.key.description == registered.address }) {
            owners.append(try OwnerLoader.load(registered, modules: runTimeModules))
        }
        var accounts = config.accounts
        for json in try store.registeredAccounts() {
            // One a newer agent reads more strictly (an owner listed twice) is left out, saying why, not the whole agent.
            let account: AccountConfig
            do { account = try AccountConfig(json: json) } catch {
                logger.error("an account added at run time is not used: \(error) (\(json.serialized))")
                continue
            }
            if !accounts.contains(where: { $0.address == account.address }) { accounts.append(account) }
        }
        let rulesPath = config.rulesFile
        let loadRules: @Sendable () throws -> LoadedRules? = {
            guard let rulesPath else { return nil }
            let data = try configurationFile(rulesPath, what: "the rules file")
            let rules: RulesFile
            do { rules = try RulesFile(toml: String(decoding: data, as: UTF8.self)) } catch { throw AgentError("bad_rules", "\(rulesPath): \(error)") }
            if let unseen = unseenExecutables(rules, agentUID: getuid(), admitsOthers: !config.allowedUIDs.isEmpty || !config.allowedGIDs.isEmpty) {
                logger.warning("\(unseen)")
            }
            return (rules, RulesSource(path: rulesPath, bytes: data))
        }
        let rulesAtStart = try loadRules()
        var tokens = TokenList()
        if let file = config.tokensFile {
            let data = try configurationFile(file, what: "the token list")
            do { try tokens.add(json: try JSONValue(parsing: data)) } catch { throw AgentError("bad_config", "the token list \(file): \(error)") }
        }
        // posix_spawn takes a path, and a dialog that cannot start would only show at the first
        // approval, as a request nobody is asked about.
        if let program = config.pinentry?.first, !FileManager.default.isExecutableFile(atPath: program) {
            throw AgentError("bad_config", "pinentry: \(program) is not an executable file (give the program's full path)")
        }
        let pinentry = config.pinentry.map { PinentryApproval(Pinentry(command: $0, timeout: TimeInterval(config.approvalTimeout))) }
        // Bound before anything is served: an address taken is a failed start, not a warning.
        let metrics = config.metricsListen.map { _ in AgentMetrics() }
        var metricsChannel: Channel?
        if let listen = config.metricsListen, let metrics {
            do { metricsChannel = try await MetricsServer.bind(host: listen.host, port: listen.port, registry: metrics.registry) } catch {
                // The system unit allows Unix sockets only.
                let unit = (error as? IOError).map { [EAFNOSUPPORT, EPERM, EACCES].contains($0.errnoCode) } == true
                    ? " (under the system unit, install the drop-in systemd/network.conf, which gives the agent the network)" : ""
                throw AgentError("bad_config", "metrics_listen: cannot listen on \(listen.host):\(listen.port): \(error)\(unit)")
            }
            let port = metricsChannel?.localAddress?.port ?? listen.port
            logger.notice("metrics for Prometheus at http://\(listen.host.contains(":") ? "[\(listen.host)]" : listen.host):\(port)/metrics")
        }
        defer { metricsChannel?.close(promise: nil) }
        let agent = Agent(store: store, owners: owners, accounts: accounts, fixedAccounts: Set(config.accounts.map(\.address)),
                          fixedOwners: Set(owners.prefix(config.owners.count).map(\.identity.key)), rules: nil, tokens: tokens,
                          approvalTimeout: config.approvalTimeout, autoLock: config.autoLock, storePIN: storePIN,
                          ownerPrompt: pinentry?.ownerPrompt ?? { @Sendable _ in
                              throw AgentError("secret_needed", "no pinentry is configured; approve with `session-agent approve`, which asks for it")
                          },
                          ownerNotice: pinentry?.ownerNotice ?? journalNotice(logger), logger: logger, metrics: metrics,
                          chains: config.chainRPC.isEmpty ? nil : ChainEndpoints(config.chainRPC))
        // Without a rules file too: the audit log then says when the rules last in force went.
        await agent.putInForce(rulesAtStart?.rules, from: rulesAtStart?.source, because: "start")
        if config.autoLock.onSleep {
            let delays = try SleepWatch.start { event in
                switch event {
                case .goingToSleep:
                    // The watch lets logind's delay lock go (and the machine sleep) only once
                    // this returns: once the store is locked.
                    let locked = DispatchSemaphore(value: 0)
                    Task {
                        await agent.lockForSleep()
                        locked.signal()
                    }
                    locked.wait()
                case .woke: Task { await agent.woke() }
                case .busGone: logger.error("logind can no longer be heard on the system bus: the store will not lock when the machine sleeps (lock_on_sleep) until the agent is started again")
                }
            }
            if !delays { logger.notice("logind gave no delay lock (Inhibit): the store locks as the machine goes to sleep (lock_on_sleep), but logind does not wait for it") }
        }
        let server = SocketServer(rpc: AgentRPC(agent: agent, reloadRules: config.rulesFile == nil ? nil : loadRules, pkcs11Module: config.pkcs11Module, runTimeModules: runTimeModules), allowedUIDs: config.allowedUIDs, allowedGIDs: config.allowedGIDs,
                                  partialMessageTimeout: .seconds(Int64(config.partialMessageTimeout)), connectionsPerUID: config.connectionsPerUID)

        // SIGTERM and SIGINT (systemctl stop, Ctrl-C) end the agent cleanly: the audit entries
        // still in memory go to disk first, the PKCS#11 modules are finalized, and the socket
        // files it made are removed.
        let stop: @Sendable (Int32) -> Never = { status in
            server.removeSocketFiles()
            agent.drain()
            AssuanSession.closeAll()
            PKCS11Provider.finalizeAll(waiting: .seconds(2))
            exit(status)
        }
        let stops = [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")].map { number, name in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler {
                logger.notice("stopping on \(name)")
                stop(0)
            }
            source.resume()
            return source
        }
        defer { stops.forEach { $0.cancel() } }
        // SIGHUP (systemctl reload) reads the rules file again, as `rules_reload` does; a file
        // that does not parse leaves the rules in force.
        signal(SIGHUP, SIG_IGN)
        let reload = DispatchSource.makeSignalSource(signal: SIGHUP)
        reload.setEventHandler {
            guard config.rulesFile != nil else { return logger.notice("SIGHUP: the agent runs without a rules file") }
            Task {
                do {
                    let loaded = try loadRules()
                    await agent.putInForce(loaded?.rules, from: loaded?.source, because: "SIGHUP")
                } catch { logger.error("SIGHUP: the rules in force are kept: \(error)") }
            }
        }
        reload.resume()
        defer { reload.cancel() }

        let activated = Systemd.listenFileDescriptors()
        let clientPath = config.socketDirectory + "/client.sock", controlPath = config.socketDirectory + "/control.sock"
        let listeners: [SocketServer.Listener]
        if let client = activated["client"], let control = activated["control"] {
            listeners = [.init(source: .descriptor(client), control: false), .init(source: .descriptor(control), control: true)]
        } else {
            do { try SocketServer.prepareDirectory(config.socketDirectory, shared: server.admitsOthers) } catch let error as AgentError {
                let env = ProcessInfo.processInfo.environment
                guard config.socketDirectory == AgentPaths.socketDirectory(env), let why = AgentPaths.missingRuntimeDirectory(env) else { throw error }
                throw AgentError(error.reason, "\(error.message): \(why)")
            }
            listeners = [.init(source: .path(clientPath), control: false), .init(source: .path(controlPath), control: true)]
        }
        let readyLine = "owners: \(owners.count), accounts: \(accounts.count), \(config.rulesFile.map { "rules from \($0)" } ?? "no rules (a person decides)")"
        // Sessions whose process exited while the agent was stopped end before any client is
        // served; the look every 5 s below finds the others.
        await agent.endSessionsOfEndedProcesses()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.run(listeners) {
                    Systemd.notify("READY=1")
                    logger.notice("ready on \(activated.isEmpty ? "\(clientPath) and \(controlPath)" : "the sockets systemd passed"): \(readyLine), the store \(store.isLocked ? "locked" : "open")")
                    // The journal is kept apart from the store: a log found later without this
                    // entry was cut short or written again (`audit verify` checks it meanwhile).
                    if let head = store.knownAuditHead { logger.notice("the audit log ends at entry \(head.seq), hash \(head.hash)") }
                    // Damage in the store's file, and sessions whose keys do not open beside
                    // their rows, are in the journal from the start, while there are backups to
                    // restore it from.
                    Task.detached {
                        do { try store.checkFile() } catch { logger.error("\(error)") }
                        agent.reportDamagedKeys()
                    }
                    // Whatever keeps an owner from signing (a PIN file missing, a token absent, a
                    // PIN locked, a module the configuration no longer allows) is in the journal
                    // from the start, not only at the first approval that fails. Nothing is
                    // signed or asked; a slow token does not hold up the sockets.
                    Task {
                        for (owner, readiness) in await agent.ownerReadiness() {
                            guard case .notReady(let problem) = readiness else { continue }
                            logger.warning("owner \(owner.key) (\(owner.backend) \(owner.location)) cannot sign now: \(problem)")
                        }
                    }
                    onReady(clientPath, controlPath)
                }
            }
            if let pinentry {
                group.addTask { await pinentry.decideRequests(of: agent) }
            }
            group.addTask {
                // A store whose data key a token wraps is usable only while the token is present.
                while !Task.isCancelled {
                    await agent.watchStoreToken()
                    try await Task.sleep(nanoseconds: 1_000_000_000)
                }
            }
            if let storeFile {
                group.addTask {
                    while true {
                        try await Task.sleep(for: .seconds(5))
                        guard storeFile.isStillThere else { throw StoreFileGone(path: storeFile.path) }
                    }
                }
            }
            group.addTask {
                // Requests nobody answered expire; keys of expired sessions are erased, and
                // sessions whose process exited are revoked.
                while !Task.isCancelled {
                    try await Task.sleep(nanoseconds: 5_000_000_000)
                    await agent.expire()
                }
            }
            // The first task to end (the server, on a signal) ends the agent, so every task in
            // this group runs until cancelled; one-off work after the start goes in a Task of its own.
            // An agent whose socket is gone would hold its data directory while no client can
            // reach it, and keep a new agent from starting: it stops, as gpg-agent does (under
            // systemd, Restart=on-failure starts it again).
            do { try await group.next() } catch let gone as SocketServer.SocketGone {
                logger.critical("\(gone)")
                stop(1)
            } catch let gone as StoreFileGone {
                // What the agent wrote since (sessions, ledger, audit entries) is only in the file
                // it holds open, which goes once it stops: saved beside the store first.
                let rescue = "\(gone.path).rescued-\(UInt64(Date().timeIntervalSince1970))"
                do {
                    try store.copy(to: rescue)
                    logger.critical("\(gone); what it held is saved in \(rescue)")
                } catch {
                    logger.critical("\(gone); saving what it held in \(rescue) failed: \(error)")
                }
                stop(1)
            }
            group.cancelAll()
        }
    }
}

/// What a rules file that names executables cannot see: an agent that is not root (the system
/// unit) sees the executable of its own uid's processes only, so those conditions never hold
/// for the other uids it admits. Said at start and at each reload, not found out from rules
/// that never match.
func unseenExecutables(_ rules: RulesFile, agentUID: UInt32, admitsOthers: Bool) -> String? {
    guard rules.namesExecutables, admitsOthers, agentUID != 0 else { return nil }
    return "the rules name client_executables, but this agent runs as uid \(agentUID), not root, and the kernel shows it no other uid's executable: those conditions hold only for uid \(agentUID)'s own clients; match the others by client_uids and client_units"
}

/// A file the configuration names (the rules, the token list, a keystore), read whole: a
/// regular file only, up to `limit` bytes, or `bad_config` saying why not.
func configurationFile(_ path: String, what: String, limit: Int = 16 << 20) throws(AgentError) -> [UInt8] {
    do { return try RegularFile.read(path, what: what, limit: limit).bytes } catch { throw AgentError("bad_config", "\(error)") }
}

/// The store's file was removed or replaced while the agent ran (an `rm`, a backup moved over
/// it): what the agent writes would be lost once it stops, so it stops now.
struct StoreFileGone: Error, CustomStringConvertible {
    var path: String
    var description: String {
        "the store file \(path) was removed or replaced while the agent ran, so it stops (restore a backup only while it is stopped)"
    }
}

/// With no pinentry to show it on, a wait on a device goes to the journal: an approval that hangs
/// on a reader's keypad nobody was told of says why there.
func journalNotice(_ logger: Logger) -> DeviceNotice.Show {
    { text in
        let line = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        logger.notice("waiting on a device: \(line)")
        return { logger.info("no longer waiting on a device: \(line)") }
    }
}

/// Runs blocking work (a dialog, a child process) on a thread of its own, not the cooperative pool.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// Owner keys: the configuration's and those added through the control socket.
public enum OwnerLoader {
    public static func load(_ owner: OwnerConfig, defaultModule: String?) async throws(AgentError) -> any OwnerSigner {
        switch owner {
        case let .keystore(path, passphraseFile):
            return try keystore(path, passphraseFile: passphraseFile)
        case let .pkcs11(uri, pin, address):
            if let address, let module = uri.modulePath ?? defaultModule {
                return PKCS11Owner(uri: uri.with(modulePath: module), pin: pin, key: address)
            }
            let owner = try await pkcs11(uri, pin: pin, defaultModule: defaultModule)
            if let address, owner.key != address {
                throw AgentError("bad_config", "\(uri) holds the key \(owner.key), not \(address)")
            }
            return owner
        case let .openPGPCard(serial, pin, address):
            if let address { return OpenPGPCardOwner(serial: serial, pin: pin, address: address) }
            do { return try await OpenPGPCardOwner.load(serial: serial, pin: pin) } catch {
                throw AgentError(error.ownerError.reason, "\(error); or give the owner's address in the configuration, to start without the card")
            }
        case let .passkey(path):
            return try passkey(path)
        }
    }

    /// An owner added at run time, as the store recorded it. One whose module `modules` no longer
    /// admits is kept, unusable, so that `owner list` says why and `owner remove` can drop it.
    public static func load(_ registered: SessionStore.RegisteredOwner, modules: RunTimeModules) throws(AgentError) -> any OwnerSigner {
        if registered.backend == "openpgp-card" {
            guard let serial = try? OpenPGPCards.serial(registered.location), let address = try? Address(registered.address) else {
                throw AgentError("store_corrupt", "the registered owner \(registered.address) has an unusable card serial \(registered.location)")
            }
            return OpenPGPCardOwner(serial: serial, pin: registered.secretFile.map { .file($0) } ?? .prompt, address: address)
        }
        if registered.backend == "fido2" { return try passkey(registered.location) }
        guard registered.backend == "pkcs11" else { return try keystore(registered.location, passphraseFile: registered.secretFile) }
        guard let uri = try? PKCS11URI(registered.location), uri.modulePath != nil, let key = try? OwnerKey(registered.address) else {
            throw AgentError("store_corrupt", "the registered owner \(registered.address) has an unusable location \(registered.location)")
        }
        do throws(AgentError) { try modules.check(uri) } catch {
            return RefusedOwner(identity: OwnerIdentity(backend: "pkcs11", key: key, location: uri.description),
                                problem: .failed("the owner \(key) added at run time is not used: \(error.message); or remove it (owner remove)"))
        }
        return PKCS11Owner(uri: uri, pin: registered.secretFile.map { .file($0) } ?? .prompt, key: key)
    }

    static func passkey(_ path: String) throws(AgentError) -> PasskeyOwner {
        do { return PasskeyOwner(passkey: try Passkey.read(path), file: path) } catch { throw AgentError("bad_config", "\(error)") }
    }

    public static func keystore(_ path: String, passphraseFile: String?) throws(AgentError) -> any OwnerSigner {
        let owner = try keystoreOwner(path)
        return passphraseFile.map { FileSecretOwner(owner, passphraseFile: $0) } ?? owner
    }

    static func keystoreOwner(_ path: String) throws(AgentError) -> KeystoreOwner {
        let data = try configurationFile(path, what: "the owner keystore", limit: 1 << 20)
        do { return try KeystoreOwner(keystore: try Keystore(parsing: data), location: path) } catch {
            throw AgentError("bad_config", "\(path): \(error)")
        }
    }

    /// Opens the keystore once with the passphrase in `passphraseFile`, as a token owner's PIN
    /// file logs in at once: a passphrase that does not open it is refused when the owner is
    /// added, not at its first approval. The key is dropped at once.
    static func checkPassphrase(_ owner: KeystoreOwner, passphraseFile: String) async throws(AgentError) {
        let path = owner.identity.location
        let passphrase: SecretBytes
        do { passphrase = try SecretFile.read(passphraseFile) } catch { throw AgentError("secret_needed", "\(error)") }
        let keystore = owner.keystore
        do {
            // scrypt takes a second or so: not on the cooperative pool.
            try await blocking { _ = try keystore.decrypt(passphrase: passphrase) }
        } catch KeystoreError.wrongPassphrase {
            throw AgentError("wrong_secret", "the passphrase in \(passphraseFile) does not open the keystore \(path)")
        } catch {
            throw AgentError("owner_failed", "the keystore \(path) does not open: \(error)")
        }
    }

    /// The prompt of a lookup or login with no person at hand: it answers `loginPIN` when one was
    /// given for this one call, and otherwise says the PIN is missing.
    static func askPIN(_ loginPIN: SecretBytes?) -> SecretPrompt {
        loginPIN.map { given in { @Sendable _ in given } } ?? PKCS11Key.nobodyToAsk
    }

    /// Finds the key on its token (which must be present) and derives its address. `loginPIN`
    /// logs in to a token that shows its keys only after a login, when the PIN is not `pin`'s.
    public static func pkcs11(_ uri: PKCS11URI, pin: PINSource, loginPIN: SecretBytes? = nil,
                              defaultModule: String?) async throws(AgentError) -> PKCS11Owner {
        do throws(PKCS11Failure) { return try await PKCS11Owner.load(uri, pin: pin, askPIN: askPIN(loginPIN), defaultModule: defaultModule) } catch {
            throw AgentError(error.ownerError.reason, "\(error)")
        }
    }
}

/// A registered owner the agent does not use (see `OwnerLoader.load(_:modules:)`): every
/// signature and readiness check answers why.
struct RefusedOwner: OwnerSigner {
    let identity: OwnerIdentity
    let problem: OwnerSignerError

    func ownerSignature(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> OwnerSignature { throw problem }
    func readiness() async -> OwnerReadiness { .notReady(problem) }
}
