import Agent
import EthereumCore
import Foundation
import Synchronization
import Testing
import TestSupport

/// Clients and the operator at once, in random order: requests, decisions, signatures and
/// revocations beside accounts and owners added and removed, the store locked and unlocked,
/// sessions pruned, the rules reloaded and the store rewrapped by another process. Whatever the interleaving, every call gets an answer,
/// the agent stays up, no session signs past its limits, and the audit log holds together and
/// accounts for every session. (Approving a request whose account was removed meanwhile
/// crashed the agent; a request whose account went while it was reviewed was kept.)
@Suite("Clients and the operator interleaved")
struct InterleavingTests {
    static let others = ["0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222"]
    /// The example request's limits: 100 USDC, ten uses.
    static let limit: UInt64 = 100_000_000, uses = 10

    /// What the threads saw: the requests and sessions they can pick from, what each session
    /// signed, and the calls that got no answer.
    struct Seen {
        var requests: [String] = []
        var sessions: [String] = []
        var signed: [String: (amount: UInt64, uses: Int)] = [:]
        var unanswered: [String] = []
    }

    @Test func everyCallIsAnsweredAndEveryLimitHolds() throws {
        let agent = try AgentProcess(rules: "default = \"ask\"")
        try agent.start()
        let after = try Self.interleave(agent)
        try Self.checkWhatHolds(agent, after)
    }

    /// The same with the account's owner key on a SoftHSM2 token, its PIN from a file, and the
    /// token unplugged and plugged in again meanwhile: approvals while it is away fail and leave
    /// their requests pending, and nothing else changes.
    @Test(.enabled(if: SoftHSM.isAvailable, "\(SoftHSM.unavailableReason ?? "")"))
    func aTokenOwnerComingAndGoing() throws {
        let hsm = try SoftHSM()
        let token = "interleaved-\(UUID().uuidString.prefix(8))"
        let directory = try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "owner", id: "0a")
        let pinFile = hsm.directory.appendingPathComponent("pin-\(token)").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        let address = Address(publicKey: Array(try hsm.publicPoint(token: token, id: "0a").dropFirst()))
        let agent = try AgentProcess(rules: "default = \"ask\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(SoftHSM.systemModule!)"
            pin_file = "\(pinFile)"
            """, address: address.checksummed), environment: hsm.environment)
        try agent.start()
        let away = Mutex<URL?>(nil)
        let after = try Self.interleave(agent) {
            try away.withLock { away in
                if let unplugged = away {
                    try hsm.plugIn(unplugged, as: directory)
                    away = nil
                } else {
                    away = try hsm.unplug(directory)
                }
            }
        }
        if let unplugged = away.withLock({ $0 }) { try hsm.plugIn(unplugged, as: directory) }
        try Self.checkWhatHolds(agent, after)
        // Back for good: the next request is approved and enabled by the token's key.
        let control = try AgentClient(path: agent.controlSocket), client = try AgentClient(path: agent.clientSocket)
        for left in try control.call("pending_list").arrayValue ?? [] {
            _ = try? control.call("pending_decide", JSONObject(["id": left["id"] ?? .null, "approve": false]))
        }
        let id = try #require(try client.call("session_request", JSONObject(["request": SocketTests.example]))["id"])
        let decided = try control.call("pending_decide", JSONObject(["id": id, "approve": true]))
        let session = try #require(decided["sessionId"]?.stringValue, "\(decided.serialized)")
        #expect(try SocketTests.sign(client, session, 1, nonce: 1 << 40)["mode"] == "ENABLE")
    }

    /// Four threads of clients and the operator, 150 calls each. `plug`, when given, takes the
    /// owner's token away or brings it back; thread 0 calls it now and then.
    static func interleave(_ agent: AgentProcess, plug: (@Sendable () throws -> Void)? = nil) throws -> Seen {
        let secondOwner = agent.directory.appendingPathComponent("second-owner.json").path
        let passphraseFile = agent.directory.appendingPathComponent("owner.pass").path
        let created = try Command.run(Command.sessionAgent, ["owner", "create", "--keystore", secondOwner, "--passphrase-file", passphraseFile])
        let second = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let first = try #require(try AgentClient(path: agent.controlSocket).call("owners_list").arrayValue?.first?["address"]?.stringValue)

        let seen = Mutex(Seen())
        let seed = Oracle.seed
        let (clientSocket, controlSocket, storePassphrase) = (agent.clientSocket, agent.controlSocket, agent.storePassphrase)
        let storeFile = agent.directory.appendingPathComponent("data/store.sqlite").path
        let storePassphraseFile = agent.directory.appendingPathComponent("store.pass").path
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            var random = SplitMix64(seed: seed &+ UInt64(thread))
            guard let client = try? AgentClient(path: clientSocket), let control = try? AgentClient(path: controlSocket) else {
                return seen.withLock { $0.unanswered.append("thread \(thread) could not connect") }
            }
            var nonce = UInt64(thread) << 32
            for step in 0..<150 {
                let now = seen.withLock { $0 }
                let pick = Int.random(in: 0..<100, using: &random)
                var method = ""
                do {
                    switch pick {
                    case 0..<15:
                        method = "session_request"
                        var request = SocketTests.example.objectValue!
                        request["account"] = .string(([AgentProcess.account] + Self.others).randomElement(using: &random)!)
                        let id = try client.call("session_request", JSONObject(["request": .object(request)]))["id"]?.stringValue
                        if let id { seen.withLock { $0.requests.append(id) } }
                    case 15..<30 where !now.requests.isEmpty:
                        method = "pending_decide"
                        let decided = try control.call("pending_decide", JSONObject(["id": .string(now.requests.randomElement(using: &random)!),
                                                                                     "approve": .bool(Int.random(in: 0..<5, using: &random) > 0)]))
                        if let session = decided["sessionId"]?.stringValue { seen.withLock { $0.sessions.append(session) } }
                    case 30..<60 where !now.sessions.isEmpty:
                        method = "session_signUserOperation"
                        let session = now.sessions.randomElement(using: &random)!
                        let amount: UInt64 = [1, 5_000_000, 30_000_000].randomElement(using: &random)!
                        nonce += 1
                        if (try SocketTests.sign(client, session, amount, nonce: nonce))["signature"] != nil {
                            seen.withLock { $0.signed[session, default: (0, 0)].amount += amount; $0.signed[session, default: (0, 0)].uses += 1 }
                        }
                    case 60..<62:
                        // Another process writing the file, as `store rewrap` does beside the agent.
                        method = "store rewrap"
                        let rewrap = try Command.run(Command.sessionAgent, ["store", "rewrap", "--store", storeFile, "--to", "passphrase",
                                                                            "--passphrase-file", storePassphraseFile, "--new-passphrase-file", storePassphraseFile])
                        if rewrap.status != 0 { seen.withLock { $0.unanswered.append("thread \(thread), step \(step), store rewrap: \(rewrap.stderr)") } }
                    case 62..<66 where thread == 0 && plug != nil:
                        method = "the token unplugged or plugged in"
                        try plug!()
                    default:
                        let (name, params) = Self.operatorCall(&random, now: now, owners: [first, second], secondOwner: secondOwner, passphraseFile: passphraseFile,
                                                               storePassphrase: storePassphrase)
                        method = name
                        _ = try (name == "session_revoke" ? client : control).call(name, params)
                    }
                } catch let refusal as AgentClient.RemoteError {
                    // A refusal is an answer; but nothing here should find the store unusable.
                    if refusal.reason == "store_error" { seen.withLock { $0.unanswered.append("thread \(thread), step \(step), \(method): \(refusal)") } }
                } catch {
                    return seen.withLock { $0.unanswered.append("thread \(thread), step \(step), \(method): \(error)") }
                }
            }
        }
        return seen.withLock { $0 }
    }

    /// Every call was answered, the agent is up, no session signed past its limits, and the
    /// audit log holds together and accounts for every session.
    static func checkWhatHolds(_ agent: AgentProcess, _ after: Seen) throws {
        let seed = Oracle.seed
        #expect(after.unanswered.isEmpty, "seed \(seed): \(after.unanswered)")
        let control = try AgentClient(path: agent.controlSocket)
        _ = try? control.call("agent_unlock", JSONObject(["passphrase": .string(agent.storePassphrase)]))
        #expect(try control.call("agent_info")["version"] == "0.1.0", "the agent is up")
        for (session, signed) in after.signed {
            #expect(signed.amount <= Self.limit && signed.uses <= Self.uses, "seed \(seed): \(session) signed \(signed.amount) in \(signed.uses) uses")
        }
        #expect(try control.call("audit_verify")["intact"] == .bool(true), "seed \(seed)")
        let entries = try #require(try control.call("audit_show", JSONObject(["limit": JSONValue(10000)])).arrayValue)
        func requests(_ kind: String, approved: Bool = false) -> Set<String> {
            var ids = Set<String>()
            for e in entries where e["kind"]?.stringValue == kind && (!approved || e["entry"]?["status"] == "approved") {
                if let id = e["entry"]?["request"]?.stringValue { ids.insert(id) }
            }
            return ids
        }
        #expect(requests("decision").isSubset(of: requests("request")), "seed \(seed)")
        // Sessions pruned leave their decisions behind; no session is without one.
        let sessions = try #require(try control.call("sessions_list").arrayValue)
        #expect(sessions.count <= requests("decision", approved: true).count, "seed \(seed)")
        #expect(requests("decision", approved: true).count == after.sessions.count, "seed \(seed): each approval the operator saw, and no other")
    }

    /// One of the operator's calls, at random, with parameters that make sense for the moment.
    static func operatorCall(_ random: inout SplitMix64, now: Seen, owners: [String], secondOwner: String, passphraseFile: String,
                             storePassphrase: String) -> (String, JSONObject) {
        let other = Self.others.randomElement(using: &random)!
        // The store is locked a sixteenth of the time and unlocked twice as often, so that most
        // calls find it open.
        switch Int.random(in: 0..<16, using: &random) {
        case 0:
            let chosen = Int.random(in: 0..<3, using: &random)
            return ("accounts_add", JSONObject(["account": .object(JSONObject([
                "address": .string(other), "kind": "erc7579", "owners": .array((chosen == 2 ? owners : [owners[chosen]]).map { .string($0) }),
                "threshold": JSONValue(chosen == 2 ? 2 : 1), "chains": .array([JSONValue(11155111)]),
            ]))]))
        case 1: return ("accounts_remove", JSONObject(["address": .string(other)]))
        case 2: return ("owners_add", JSONObject(["keystore": .string(secondOwner), "passphraseFile": .string(passphraseFile)]))
        case 3: return ("owners_remove", JSONObject(["address": .string(owners[1])]))
        case 4: return ("agent_lock", JSONObject())
        case 5, 6: return ("agent_unlock", JSONObject(["passphrase": .string(storePassphrase)]))
        case 7: return ("session_revoke", JSONObject(["sessionId": .string(now.sessions.randomElement(using: &random) ?? "sess-none")]))
        case 8: return ("sessions_prune", JSONObject(["before": JSONValue(Int(Date().timeIntervalSince1970) + 5)]))
        case 9: return ("rules_reload", JSONObject())
        default: return ("pending_list", JSONObject())
        }
    }
}
