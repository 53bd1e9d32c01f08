@testable import Agent
import Foundation
import Logging
import OwnerSigners
import SessionStore
import Synchronization
import Testing
import TestSupport
import TestTraits

@Suite("How often the store's token is looked for")
struct StoreTokenWatchTests {
    /// The module is initialised again after 1, 2, 4 … 32 looks without the token, then every
    /// 30 (a look is a second): about 120 times an hour, not 3600.
    @Test func theModuleIsInitialisedAgainLessAndLessOften() {
        let due = (0..<3600).filter { Agent.rescanDue(afterLooks: $0) }
        #expect(Array(due.prefix(10)) == [0, 1, 2, 4, 8, 16, 32, 60, 90, 120])
        #expect(due.count == 125)
        #expect(zip(due, due.dropFirst()).allSatisfy { $1 - $0 <= 30 })
    }

    /// A store no token wraps has no token to be present or absent.
    @Test func aPassphraseStoreHasNoTokenToLookFor() async throws {
        let store = try SessionStore(path: nil)
        try store.initialize(passphrase: secret("store"), scryptN: 1024)
        let agent = Agent(store: store, owners: [], accounts: [], rules: nil, ownerPrompt: { _ in secret("") })
        await agent.watchStoreToken()
        let state = try await agent.storeState()
        #expect(!state.locked && state.protection == .passphrase && state.tokenPresent == nil)
    }
}

/// The looks of an agent at the token that wraps its store (`watchStoreToken`, once a second in
/// the daemon), made one by one here on a module in front of SoftHSM that counts its
/// initialisations: SoftHSM sees a token come back only after one, which ends every login on
/// the module, so the look that is due decides when the store opens again.
@Suite("The store's token, looked for by the agent", .inProcessSoftHSM, .enabled(if: SoftHSM.isAvailable, "\(SoftHSM.unavailableReason ?? "")"))
struct StoreTokenLooksTests {
    let hsm = SoftHSM.process
    let token = "watch-\(UUID().uuidString.prefix(8))"

    /// A store whose data key an AES key on a new token wraps, through a module in front of
    /// SoftHSM that logs the calls it passes on and holds a login while the file `hold` exists;
    /// its PIN file holds the right PIN.
    struct WrappedStore {
        let directory: URL
        let path, pinFile, hold, log: String

        func calls(_ name: String) -> Int { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count { $0 == name } }
    }

    func wrappedStore() async throws -> WrappedStore {
        let directory = try hsm.initToken(token)
        let files = try hsm.subdirectory("watch")
        let log = files.appendingPathComponent("calls").path, hold = files.appendingPathComponent("hold").path
        let module = try CModule.observed(in: files, real: try hsm.privateModule(), log: log, hold: hold)
        let pinFile = files.appendingPathComponent("pin").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        let path = files.appendingPathComponent("store.sqlite").path
        let made = try SessionStore(path: path)
        try made.initialize(passphrase: secret("store"), scryptN: 1024)
        try await made.rewrap(token: try PKCS11URI("pkcs11:token=\(token);object=store-key?module-path=\(module)"), pin: .file(pinFile),
                              prompt: { _ in throw PKCS11Failure.pinNeeded("nobody is asked in this test") })
        return WrappedStore(directory: directory, path: path, pinFile: pinFile, hold: hold, log: log)
    }

    @Test func theModuleIsInitialisedAgainOnlyAtTheLooksThatAreDue() async throws {
        let wrapped = try await wrappedStore()
        let (directory, pinFile, hold) = (wrapped.directory, wrapped.pinFile, wrapped.hold)
        func calls(_ name: String) -> Int { wrapped.calls(name) }
        func initialisations() -> Int { calls("C_Initialize") }

        // Started with the token away, the agent's store is locked, and the first look already
        // initialises the module again to look for it.
        let store = try SessionStore(path: wrapped.path)
        let agent = Agent(store: store, owners: [], accounts: [], rules: nil, storePIN: .file(pinFile), ownerPrompt: { _ in secret("") })
        func state() async throws -> (locked: Bool, reason: String?, present: Bool?) {
            let state = try await agent.storeState()
            return (state.locked, state.reason, state.tokenPresent)
        }
        func look(_ times: Int = 1) async { for _ in 0..<times { await agent.watchStoreToken() } }
        let atStartAway = try hsm.unplug(directory)
        var before = initialisations()
        await look()
        #expect(try await state() == (true, "not unlocked since the agent started", false))
        #expect(initialisations() == before + 1)
        try hsm.plugIn(atStartAway, as: directory)
        await look()   // the second look is due too
        #expect(try await state() == (false, nil, true))

        // Gone: the look that finds it gone locks the store without initialising the module;
        // the 40 after initialise it at the 1st, 2nd, 4th, 8th, 16th and 32nd.
        before = initialisations()
        let away = try hsm.unplug(directory)
        await look()
        #expect(try await state() == (true, "the store's token went away", false))
        #expect(initialisations() == before)
        await look(40)
        #expect(initialisations() == before + 6)
        #expect(try await state() == (true, "the store's token went away", false))

        // Back: seen at the next look that is due, the 60th, which opens the store with the PIN file.
        try hsm.plugIn(away, as: directory)
        var looks = 0
        while try await state().present != true, looks < 40 {
            await look()
            looks += 1
        }
        #expect(looks == 20)
        #expect(try await state() == (false, nil, true))
        #expect(initialisations() == before + 7)

        // Gone again, the count starts over: the 1st and 2nd looks after are due again.
        let awayAgain = try hsm.unplug(directory)
        await look(3)
        #expect(initialisations() == before + 9)
        try hsm.plugIn(awayAgain, as: directory)
        await look(2)
        #expect(try await state() == (false, nil, true))

        // A store a person locked is not opened when its token comes back: the PIN file, wrong
        // now, is not even tried, and the lock keeps its reason.
        await agent.lock()
        try writeSecretFile(SoftHSM.wrongPIN, pinFile)
        let awayLocked = try hsm.unplug(directory)
        await look()
        try hsm.plugIn(awayLocked, as: directory)
        await look()
        #expect(try await state() == (true, "locked with agent_lock", true))
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        try await agent.unlock(nil)
        #expect(try await state() == (false, nil, true))
        // Nor one locked as the machine went to sleep.
        await agent.lockForSleep()
        let awayAsleep = try hsm.unplug(directory)
        await look()
        try hsm.plugIn(awayAsleep, as: directory)
        await look()
        #expect(try await state() == (true, "the machine went to sleep (lock_on_sleep)", true))
        try await agent.unlock(nil)
        #expect(try await state() == (false, nil, true))

        // Nor is one a person locks while the token that came back is opening it: the lock has
        // the last word. (The module holds the login until the lock is made.)
        let awayOpening = try hsm.unplug(directory)
        await look()
        try Data().write(to: URL(fileURLWithPath: hold))
        defer { try? FileManager.default.removeItem(atPath: hold) }
        try hsm.plugIn(awayOpening, as: directory)
        let logins = calls("C_Login")
        let opening = Task { await look() }
        for _ in 0..<1000 where calls("C_Login") == logins { try await Task.sleep(for: .milliseconds(10)) }
        #expect(calls("C_Login") == logins + 1, "the look did not log in to the token that came back")
        await agent.lock()
        try FileManager.default.removeItem(atPath: hold)
        await opening.value
        #expect(try await state() == (true, "locked with agent_lock", true))
    }

    /// A token back with a wrong PIN in its file leaves the store locked. The PIN is tried once;
    /// the journal says so, then that it is not offered again, and nothing more at each look. A
    /// right PIN in the file is tried at the next look.
    @Test func aTokenBackWithAWrongPINIsTriedOnceAndNotSaidAtEveryLook() async throws {
        let wrapped = try await wrappedStore()
        let (directory, pinFile) = (wrapped.directory, wrapped.pinFile)
        func logins() -> Int { wrapped.calls("C_Login") }
        let journal = JournalLines()
        let agent = Agent(store: try SessionStore(path: wrapped.path), owners: [], accounts: [], rules: nil, storePIN: .file(pinFile),
                          ownerPrompt: { _ in secret("") }, logger: Logger(label: "test", factory: { _ in journal }))
        func look(_ times: Int = 1) async { for _ in 0..<times { await agent.watchStoreToken() } }
        await look()
        #expect(try await !agent.storeState().locked)

        try writeSecretFile(SoftHSM.wrongPIN, pinFile)
        let away = try hsm.unplug(directory)
        await look()
        try hsm.plugIn(away, as: directory)
        let before = logins()
        await look(10)
        let state = try await agent.storeState()
        #expect(state.locked && state.tokenPresent == true && state.reason?.hasPrefix("its token is back, but it did not open: ") == true, "\(state)")
        #expect(logins() == before + 1)
        let said = journal.lines.filter { $0.hasPrefix("the store stays locked: its token is back, but it did not open: ") }
        #expect(said.count == 2 && said[0].contains("wrong PIN for token") && said[1].contains("rejected this PIN (from the PIN file \(pinFile)) before; not offering it again"),
                "\(journal.lines)")
        #expect(!journal.lines.contains { $0.contains(SoftHSM.wrongPIN) || $0.contains(SoftHSM.userPIN) })

        try writeSecretFile(SoftHSM.userPIN, pinFile)
        await look()
        #expect(try await !agent.storeState().locked)
        #expect(logins() == before + 2)
        #expect(journal.lines.last == "the store is open again: its token is back")
    }
}

/// The agent's journal, line by line, as a test reads it.
final class JournalLines: LogHandler, @unchecked Sendable {
    private let recorded = Mutex<[String]>([])
    var lines: [String] { recorded.withLock { $0 } }

    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        recorded.withLock { $0.append(event.message.description) }
    }
}
