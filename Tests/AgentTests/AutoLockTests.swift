@testable import Agent
import Approval
import EthereumCore
import Foundation
import SessionStore
import Synchronization
import Testing
import TestSupport
import TestTraits

/// `lock_when_idle` and `lock_after`: the store locks by itself, as gpg-agent forgets a
/// passphrase after its cache's time, and nothing signs until a person unlocks it again.
@Suite("The store locks by itself when idle, or some time after it was unlocked")
struct AutoLockTests {
    /// On the agent's clock, moved by the test: a signature, a session stored or a key exported
    /// is a use; a look at the store (`expire`, every 5 s in the daemon) locks it once no key
    /// was used for `lock_when_idle`, or `lock_after` after the unlock however busy it is. The
    /// audit log and the store's state say why, and an unlock starts both times again.
    @Test(.scratchDirectory) func theStoreLocksWhenIdleAndAfterItsTime() async throws {
        let time = Mutex(AgentFlowTests.now)
        func at(_ t: UInt64) { time.withLock { $0 = AgentFlowTests.now + t } }
        let (agent, store) = try AgentFlowTests.agent(rules: "default = \"approve\"", clock: { time.withLock { $0 } },
                                                      autoLock: Agent.AutoLock(whenIdle: 600, after: 3600))
        var request = AgentFlowTests.example.objectValue!
        request["export"] = true
        at(100)
        let id = try #require(try await agent.request(.object(request), client: AgentFlowTests.bot).sessionId)
        var nonce: UInt64 = 0
        func sign() async throws(AgentError) {
            _ = try await agent.signUserOperation(sessionId: id, client: AgentFlowTests.bot, chainId: 11155111, entryPoint: EntryPointVersion.v07.canonicalAddress,
                                                  version: .v07, operation: AgentFlowTests.transfer(AgentFlowTests.usdc, 1, nonce: nonce))
            nonce += 1
        }
        func looked(at t: UInt64) async throws -> (locked: Bool, reason: String?) {
            at(t)
            await agent.expire()
            let state = try await agent.storeState()
            return (state.locked, state.reason)
        }
        // Each use puts the idle lock off: the session stored at 100, a signature at 699, an
        // export at 1298.
        #expect(try await looked(at: 699) == (false, nil))
        try await sign()
        #expect(try await looked(at: 1298) == (false, nil))
        _ = try await agent.exportKey(sessionId: id, client: AgentFlowTests.bot)
        #expect(try await looked(at: 1897) == (false, nil))
        #expect(try await looked(at: 1898) == (true, "no session key was used for 10m (lock_when_idle)"))
        await #expect(throws: AgentError.self) { try await sign() }

        // Unlocked again at 2000 and used every 500 s: locked at 5600 all the same.
        at(2000)
        try await agent.unlock(secret("store"))
        for t in stride(from: UInt64(2400), to: 5600, by: 500) {
            at(t)
            try await sign()
            #expect(try await looked(at: t + 1) == (false, nil), "\(t)")
        }
        #expect(try await looked(at: 5600) == (true, "it was unlocked 1h ago (lock_after)"))
        let locks = try store.auditEntries(after: nil, kind: "store_lock", limit: 10).compactMap { $0.entry["reason"]?.stringValue }
        #expect(locks == ["no session key was used for 10m (lock_when_idle)", "it was unlocked 1h ago (lock_after)"])
    }

    /// Without either, the store stays open however long it is idle.
    @Test(.scratchDirectory) func withoutEitherTheStoreStaysOpen() async throws {
        let time = Mutex(AgentFlowTests.now)
        let (agent, _) = try AgentFlowTests.agent(clock: { time.withLock { $0 } })
        time.withLock { $0 += 366 * 86400 }
        await agent.expire()
        #expect(try await agent.storeState().locked == false)
    }

    /// The configuration: durations, and never beside a passphrase or PIN file, from which the
    /// agent would open the store again.
    @Test func theConfigurationNamesWhenTheStoreLocks() throws {
        let both = try AgentConfiguration(toml: "lock_when_idle = \"30m\"\nlock_after = \"12h\"", relativeTo: "/x", environment: [:])
        #expect(both.autoLock == Agent.AutoLock(whenIdle: 1800, after: 43200))
        #expect(try AgentConfiguration(toml: "", relativeTo: "/x", environment: [:]).autoLock == Agent.AutoLock())
        #expect(try AgentConfiguration(toml: "lock_on_sleep = true", relativeTo: "/x", environment: [:]).autoLock == Agent.AutoLock(onSleep: true))
        for (bad, text) in [("lock_when_idle = \"soon\"", "lock_when_idle: expected a duration"), ("lock_after = 5", "lock_after: expected a duration"),
                            ("lock_on_sleep = \"yes\"", "lock_on_sleep: true or false"),
                            ("lock_on_sleep = true\nstore_pin_file = \"p\"", "lock_on_sleep: a store that locks by itself is one a person unlocks, and store_pin_file"),
                            ("lock_when_idle = \"30m\"\nstore_passphrase_file = \"p\"", "store_passphrase_file opens it unattended"),
                            ("lock_after = \"1h\"\nstore_pin_file = \"p\"", "lock_after: a store that locks by itself is one a person unlocks, and store_pin_file")] {
            do {
                _ = try AgentConfiguration(toml: bad, relativeTo: "/x", environment: [:])
                Issue.record("accepted: \(bad)")
            } catch {
                #expect(error.reason == "bad_config" && error.message.contains(text), "\(bad): \(error)")
            }
        }
    }

    /// An agent with `extraConfig` whose store a person unlocks (no store_passphrase_file).
    static func agentAPersonUnlocks(_ extraConfig: String, environment: [String: String]? = nil) throws -> AgentProcess {
        let agent = try AgentProcess(rules: "default = \"approve\"", extraConfig: extraConfig, environment: environment)
        let config = agent.directory.appendingPathComponent("session-agent.toml")
        try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "store_passphrase_file = \"store.pass\"\n", with: "")
            .write(to: config, atomically: true, encoding: .utf8)
        return agent
    }

    /// `session-agent unlock`, as a person at a terminal: a new store's passphrase, twice.
    static func unlock(_ agent: AgentProcess) throws -> CommandResult {
        try Command.run(Command.sessionAgent, ["unlock", "--socket", agent.controlSocket], stdin: Array("a passphrase\na passphrase\n".utf8))
    }

    /// `lock_on_sleep`: logind's PrepareForSleep on the system bus (a private dbus-daemon here,
    /// named to the agent by DBUS_SYSTEM_BUS_ADDRESS, and logind.py on it) locks the store; the
    /// same signal from a client of the bus that is not logind does not; waking leaves it locked
    /// until a person unlocks it. The agent holds a logind
    /// delay lock on sleep and lets it go only once the store is locked, so logind waits for
    /// the lock; it takes a new one as the machine wakes.
    @Test(.enabled(if: SystemBus.isAvailable, "\(SystemBus.unavailableReason ?? "")"))
    func theStoreLocksWhenTheMachineGoesToSleep() throws {
        let bus = try SystemBus()
        let logind = try SystemBus.Logind(on: bus)
        var environment = ProcessInfo.processInfo.environment
        environment["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        let agent = try Self.agentAPersonUnlocks("lock_on_sleep = true", environment: environment)
        try agent.start()
        defer { agent.stop() }
        let delayLock = "inhibit sleep session-agent Locks the session-key store first delay"
        try logind.waitFor(delayLock)
        let unlocked = try Self.unlock(agent)
        #expect(unlocked.stdout.contains("the store is open; it locks again when the machine goes to sleep"), "\(unlocked)")
        func locked() throws -> Bool { try AgentClient(path: agent.controlSocket).call("agent_info")["store"]?["locked"] == true }

        // Sent by a client that is not logind, then logind's wake after it: the agent hears the
        // second (the journal says so) and so has passed over the first, keeping its delay lock.
        try logind.send("foreign-sleep")
        try logind.send("wake")
        try agent.waitForLog("the machine woke up")
        #expect(try !locked(), "\(agent.logs)")
        #expect(logind.noted.filter { $0 == delayLock || $0 == "released" } == [delayLock], "\(logind.noted)")

        // The delay lock goes only once the store is locked.
        try logind.send("sleep")
        try logind.waitFor("released")
        #expect(try locked())
        try agent.waitForLog("the store is locked: the machine went to sleep (lock_on_sleep)")
        try logind.send("wake")
        try agent.waitForLog("the machine woke up: the store stays locked until a person unlocks it (lock_on_sleep)")
        try logind.waitFor(delayLock, times: 2)
        #expect(try locked())
        let audit = try AgentClient(path: agent.controlSocket).call("audit_show", JSONObject(["kind": "store_lock"])).arrayValue ?? []
        #expect(audit.compactMap { $0["entry"]?["reason"]?.stringValue } == ["the machine went to sleep (lock_on_sleep)"], "\(audit)")
        #expect(!agent.logs.contains("logind gave no delay lock"), "\(agent.logs)")

        // Without logind on the bus, it locks all the same, and says logind will not wait for it.
        let withoutLogind = try SystemBus()
        environment["DBUS_SYSTEM_BUS_ADDRESS"] = withoutLogind.address
        let alone = try Self.agentAPersonUnlocks("lock_on_sleep = true", environment: environment)
        try alone.start()
        defer { alone.stop() }
        try alone.waitForLog("logind gave no delay lock (Inhibit): the store locks as the machine goes to sleep (lock_on_sleep), but logind does not wait for it")

        // Without a bus to hear logind on, an agent that was asked to lock at sleep does not start.
        environment["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + agent.directory.appendingPathComponent("no-bus").path
        let deaf = try Self.agentAPersonUnlocks("lock_on_sleep = true", environment: environment)
        let refused = try Command.run(URL(fileURLWithPath: "/usr/bin/timeout"), ["20", Command.sessionAgent.path, "serve", "--config",
                                                                                 deaf.directory.appendingPathComponent("session-agent.toml").path], environment: environment)
        #expect(refused.status == 1 && refused.stderr.contains("lock_on_sleep: logind cannot be heard on the system bus"), "\(refused)")
    }

    /// A running agent: `unlock` says when the store locks again, and it does.
    @Test func aRunningAgentLocksItsStoreWhenIdle() throws {
        let agent = try Self.agentAPersonUnlocks("lock_when_idle = \"1s\"")
        try agent.start()
        defer { agent.stop() }
        let unlocked = try Self.unlock(agent)
        #expect(unlocked.stdout.contains("the store is open; it locks again once no session key is used for 1s"), "\(unlocked)")
        try agent.waitForLog("the store is locked: no session key was used for 1s (lock_when_idle)")
        let info = try AgentClient(path: agent.controlSocket).call("agent_info")
        #expect(info["store"]?["locked"] == true, "\(info)")
    }
}
