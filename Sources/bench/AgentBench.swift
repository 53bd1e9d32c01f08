// session_signUserOperation through the real client socket (SwiftNIO server, SQLite store on
// disk), with 1 and 16 concurrent clients, next to the same call made in-process.
import Agent
import Approval
import ChainRPC
import EthereumCore
import Foundation
import OwnerSigners
import SessionStore
import SmartSessions
import TestSupport

enum AgentBench {
    static let account = try! Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
    static let target = try! Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
    static let chain: UInt64 = 11_155_111

    /// A session with only a time frame (nothing to remember per signature), and one with usage
    /// and spending limits (every signature updates the ledger, durably).
    static let sessions: [(label: String, permission: JSONValue)] = [
        ("time frame only", .object(JSONObject([
            "target": .string(target.checksummed), "functions": .array(["transfer(address to, uint256 amount)"]),
            "validity": .object(JSONObject(["duration": "1d"])),
        ]))),
        ("usage + spending limits (durable)", .object(JSONObject([
            "token": "USDC", "allow": .array(["transfer"]), "spendingLimit": "1000000000 USDC", "maxUses": JSONValue(100_000_000),
        ]))),
    ]

    static func operation(nonce: UInt64) -> PackedUserOperation {
        let call = try! ABIFunction(parsing: "transfer(address,uint256)").encodeCall([.address(try! Address("0x000000000000000000000000000000000000bEEF")), .uint(1)])
        return PackedUserOperation(sender: account, nonce: UInt256(nonce), initCode: [], callData: ExecuteCall.single(Execution(target: target, callData: call)).calldata,
                                   accountGasLimits: .zero, preVerificationGas: 0, gasFees: .zero, paymasterAndData: [], signature: [])
    }

    /// An agent with a fresh store in `directory`, serving its client socket there.
    struct Served {
        let store: SessionStore
        let agent: Agent
        let path: String
        let serving: Task<Void, any Error>
        let me = ClientIdentity(uid: getuid(), gid: getgid(), pid: getpid())

        init(directory: String, metrics: AgentMetrics? = nil, chains: ChainEndpoints? = nil) async throws {
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            store = try SessionStore(path: directory + "/store.sqlite")
            try store.initialize(passphrase: secret("bench"), scryptN: 1024)
            let ownerKey = try Secp256k1.PrivateKey(hex: "0x" + String(repeating: "22", count: 32))
            let owner = try KeystoreOwner(keystore: try Keystore.encrypt(ownerKey, passphrase: secret("owner"), kdf: .scrypt(n: 16, r: 8, p: 1)), location: "bench")
            agent = Agent(store: store, owners: [owner], accounts: [AccountConfig(address: account, kind: .erc7579Reference, owners: [ownerKey.address], chains: [])],
                          rules: try RulesFile(toml: "default = \"approve\""), ownerPrompt: { _ in secret("owner") }, metrics: metrics, chains: chains)
            let server = SocketServer(rpc: AgentRPC(agent: agent))
            path = directory + "/client.sock"
            serving = Task { [path] in try await server.run([.init(source: .path(path), control: false)]) }
            while !FileManager.default.fileExists(atPath: path) { try await Task.sleep(for: .milliseconds(10)) }
        }

        /// Stops serving and removes the directory.
        func close(_ directory: String) {
            serving.cancel()
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// A session the rules approve, already enabled on the chain, so that every signature
        /// measured is a USE signature.
        func session(_ permission: JSONValue, chains: [UInt64] = [chain], typedData: JSONValue? = nil) async throws -> String {
            var request = JSONObject([
                "account": .string(account.checksummed), "chains": .array(chains.map { JSONValue(Int($0)) }), "permissions": .array([permission]),
            ])
            request["typedData"] = typedData
            let pending = try await agent.request(.object(request), client: me)
            guard let sessionId = pending.sessionId else { fatalError("bench session not approved: \(pending.reason)") }
            _ = try await agent.signUserOperation(sessionId: sessionId, client: me, chainId: chain, entryPoint: EntryPointVersion.v07.canonicalAddress,
                                                  version: .v07, operation: operation(nonce: 0))
            return sessionId
        }
    }

    static func run(directory: String) async throws {
        print("The agent: session_signUserOperation (store in \(directory))")
        let served = try await Served(directory: directory)
        defer { served.close(directory) }
        let (agent, path, me) = (served.agent, served.path, served.me)

        // The floor under every socket figure: a round trip that does no work (no actor, no store).
        let floor = try await blocking { () -> Double in
            let client = try AgentClient(path: path)
            let clock = ContinuousClock()
            let latencies = try (0..<2000).map { _ in
                let t0 = clock.now
                _ = try client.call("agent_info")
                return seconds(clock.now - t0)
            }
            return latencies.sorted()[1000]
        }
        row("  socket round trip that does no work (agent_info), p50", floor * 1e6, "µs")
        var firstRate = 0.0
        for (label, permission) in sessions {
            let sessionId = try await served.session(permission)
            let inProcessRate = try await signingRate(served, sessionId)
            if firstRate == 0 { firstRate = inProcessRate }
            row("  \(label): in-process Agent.signUserOperation", inProcessRate, "sig/s")

            for clients in [1, 16] {
                // The clients block in recv, so they run on threads of their own, not the
                // cooperative pool the agent's actor needs.
                let result = try await blocking { try overSocket(path: path, sessionId: sessionId, clients: clients, callsPerClient: clients == 1 ? 2000 : 500) }
                row("  \(label): socket, \(clients) client\(clients == 1 ? "" : "s")", result.rate, "sig/s", ratio: result.rate / inProcessRate)
                row("    p50 / p99 latency", result.p50 * 1e6, "µs  (p99 \(Int((result.p99 * 1e6).rounded())) µs)")
            }
            // What the first signature with a session costs beyond the others: the agent keeps
            // the 4,096 sessions used last decoded, and reads any other one again like this.
            let store = served.store
            var kept = 0   // the work's results, kept so that none of it is optimised away
            let reads = measure(batch: 100) {
                let read = try! store.sessionToSign(id: sessionId), s = read.stored
                let key = try! store.unsealKey(read)
                let checker = PolicyChecker(session: s.session, account: s.account, chains: s.chains.map(\.chainId))
                withExtendedLifetime(key) { kept &+= read.ledgers.count + read.enabledChains.count + checker.session.actions.count }
            }
            let limits = measure(batch: 100) { kept &+= try! agent.sessionWithLimits(sessionId, client: me).limits.count }
            if kept == 0 { print("(nothing was read)") }
            row("  \(label): a session read again from the store", 1e6 / reads, "µs")
            row("  \(label): session_get, limits used and left", 1e6 / limits, "µs")
        }
        try await refusals(served)
        try await typedData(served)

        // What counting for Prometheus (metrics_listen) costs a signature: the first loop again.
        let counted = try await Served(directory: directory + "-metrics", metrics: AgentMetrics())
        defer { counted.close(directory + "-metrics") }
        let countedRate = try await signingRate(counted, try await counted.session(sessions[0].1))
        row("  \(sessions[0].0), metrics counted: in-process", countedRate, "sig/s", ratio: countedRate / firstRate)
    }

    /// `session_signTypedData`: a session key's ERC-1271 signature of a Mail document, the
    /// account's domain given (no chain read), in process and over the socket.
    static func typedData(_ served: Served) async throws {
        let sessionId = try await mailSession(served)
        let document = try TypedData(json: mail), domain = Agent.GivenAccountDomain(name: "bench account", version: "1")
        let count = 2000
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<count {
            _ = try await served.agent.signTypedData(sessionId: sessionId, client: served.me, chainId: chain, document: document, accountDomain: domain)
        }
        row("  typed data for the account's ERC-1271: in-process Agent.signTypedData", Double(count) / seconds(clock.now - start), "sig/s")
        let path = served.path
        let p50 = try await blocking { () -> Double in
            let client = try AgentClient(path: path)
            let params = JSONObject(["sessionId": .string(sessionId), "chainId": JSONValue(Int(chain)), "typedData": mail,
                                     "accountDomain": .object(JSONObject(["name": "bench account", "version": "1"]))])
            let latencies = try (0..<count).map { _ in
                let t0 = clock.now
                _ = try client.call("session_signTypedData", params)
                return seconds(clock.now - t0)
            }
            return latencies.sorted()[count / 2]
        }
        row("  typed data: socket, 1 client, p50 latency", p50 * 1e6, "µs")
    }

    static let mail = try! JSONValue(parsing: """
        {"types": {"Mail": [{"name": "to", "type": "address"}, {"name": "contents", "type": "string"}]}, "primaryType": "Mail",
         "domain": {"name": "Ether Mail", "version": "1", "chainId": 1}, "message": {"to": "0x000000000000000000000000000000000000bEEF", "contents": "hello"}}
        """)

    /// A session that may sign `mail` for the account.
    static func mailSession(_ served: Served) async throws -> String {
        try await served.session(sessions[0].1, typedData: .array([.object(JSONObject(["domain": mail["domain"]!, "contents": .array(["Mail(address to,string contents)"])]))]))
    }

    /// Signatures a second, in process, with `sessionId`: 2,000 in a row.
    static func signingRate(_ served: Served, _ sessionId: String) async throws -> Double {
        let count = 2000
        let clock = ContinuousClock()
        let start = clock.now
        for i in 0..<count {
            _ = try await served.agent.signUserOperation(sessionId: sessionId, client: served.me, chainId: chain, entryPoint: EntryPointVersion.v07.canonicalAddress,
                                                         version: .v07, operation: operation(nonce: UInt64(i)))
        }
        return Double(count) / seconds(clock.now - start)
    }

    /// What a client sending operations its session refuses costs: each is checked and refused
    /// in microseconds, and only its uid's first 16 a minute are recorded (an audit entry, a
    /// journal line), so the rest write nothing.
    static func refusals(_ served: Served) async throws {
        let sessionId = try await served.session(sessions[0].permission)
        let call = try ABIFunction(parsing: "approve(address,uint256)").encodeCall([.address(target), .uint(1)])
        let refused = PackedUserOperation(sender: account, nonce: 0, initCode: [], callData: ExecuteCall.single(Execution(target: target, callData: call)).calldata,
                                          accountGasLimits: .zero, preVerificationGas: 0, gasFees: .zero, paymasterAndData: [], signature: [])
        served.agent.drain()
        let count = 20_000, clock = ContinuousClock(), start = clock.now
        let agent = served.agent, me = served.me
        func refusal() async -> AgentError? {
            do {
                _ = try await agent.signUserOperation(sessionId: sessionId, client: me, chainId: chain, entryPoint: EntryPointVersion.v07.canonicalAddress,
                                                      version: .v07, operation: refused)
                return nil
            } catch { return error }
        }
        for _ in 0..<count {
            guard let error = await refusal(), error.reason == "policy_violation" else { fatalError("the bench's operation was not refused") }
        }
        let rate = Double(count) / seconds(clock.now - start)
        served.agent.drain()
        let entries = try served.store.auditEntries(after: nil, kind: "denied", limit: 10_000).map(\.entry)
        let recorded = entries.filter { $0.objectValue?["countedOnly"] == nil }
        let entryBytes = recorded.map { $0.serialized.utf8.count }.reduce(0, +) / max(recorded.count, 1)
        row("  a refused operation, in-process (\(count); \(recorded.count) recorded, \(entries.count - recorded.count) count)", rate, "refusals/s")
        row("    one recorded refusal's audit entry (JSON alone)", Double(entryBytes), "bytes")
        row("    were each recorded, at this rate: at least", Double(entryBytes) * rate * 3600 / 1e9, "GB an hour")
    }

    /// `clients` threads, each with its own connection, each making `callsPerClient` calls in a row.
    static func overSocket(path: String, sessionId: String, clients: Int, callsPerClient: Int) throws -> (rate: Double, p50: Double, p99: Double) {
        let params: [JSONObject] = (0..<callsPerClient).map { i in
            JSONObject([
                "sessionId": .string(sessionId), "chainId": JSONValue(Int(chain)), "entryPoint": .string(EntryPointVersion.v07.canonicalAddress.checksummed),
                "userOperation": operation(nonce: UInt64(i)).json,
            ])
        }
        let latencies = LatencyLog()
        let group = DispatchGroup()
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<clients {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                guard let client = try? AgentClient(path: path) else { fatalError("cannot connect to \(path)") }
                var mine: [Double] = []
                mine.reserveCapacity(callsPerClient)
                for p in params {
                    let t0 = clock.now
                    do { _ = try client.call("session_signUserOperation", p) } catch { fatalError("bench call failed: \(error)") }
                    mine.append(seconds(clock.now - t0))
                }
                latencies.add(mine)
            }
        }
        group.wait()
        let elapsed = seconds(clock.now - start)
        let sorted = latencies.all.sorted()
        return (Double(sorted.count) / elapsed, sorted[sorted.count / 2], sorted[sorted.count * 99 / 100])
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    /// A long audit log read and pruned, and the store checked, while one client signs without
    /// pause (durable limits): how long each takes, and how long the signatures meanwhile took.
    static func audit(directory: String, entries: Int, sessions: Int) async throws {
        print("The audit log and the store's check beside a client signing (\(entries) entries, \(sessions + 1) sessions, store in \(directory))")
        let served = try await Served(directory: directory)
        defer { served.close(directory) }
        let sessionId = try await served.session(Self.sessions[1].permission)
        let clock = ContinuousClock()
        let start = clock.now
        let entry: JSONValue = .object(JSONObject([
            "session": .string(sessionId), "chainId": "11155111", "userOpHash": .string(Bytes32.zero.hex), "mode": "USE",
        ]))
        let record = SessionStore.SignatureRecord(sessionId: sessionId, chainId: chain, delta: LedgerDelta(), enablesChain: false, audit: entry, at: UInt64(Date().timeIntervalSince1970))
        // As an agent's log starts: the rules it was started with, which the prune below removes
        // and so writes again.
        try served.store.recordRulesInForce("bench", entry: .object(JSONObject(["cause": "start", "path": "/etc/session-agent/rules.toml", "sha256": .string(Bytes32.zero.hex)])),
                                            at: record.at)
        for _ in 0..<(entries / 1000) { try served.store.recordSignatures(Array(repeating: record, count: 1000)) }
        row("  writing the entries, 1000 a transaction", seconds(clock.now - start), "s")
        // Sessions for `store check` to open, each a copy of the one signing under a key of its own.
        var copy = try served.store.session(id: sessionId)
        for n in 0..<sessions {
            let key = Secp256k1.PrivateKey.generate()
            (copy.id, copy.sessionKey) = ("sess-bench-\(n)", key.address)
            try served.store.insert(copy, key: key)
        }

        // The client: (when it asked, how long the answer took), until told to stop.
        let samples = SampleLog()
        let signer = Thread {
            guard let client = try? AgentClient(path: served.path) else { fatalError("cannot connect") }
            var nonce: UInt64 = 1
            while !samples.stopped {
                let params = JSONObject([
                    "sessionId": .string(sessionId), "chainId": JSONValue(Int(chain)), "entryPoint": .string(EntryPointVersion.v07.canonicalAddress.checksummed),
                    "userOperation": operation(nonce: nonce).json,
                ])
                let t0 = clock.now
                do { _ = try client.call("session_signUserOperation", params) } catch { fatalError("bench call failed: \(error)") }
                samples.add(t0, seconds(clock.now - t0))
                nonce += 1
            }
        }
        signer.start()
        defer { samples.stop() }
        /// Runs `body` (nil: waits 2 s), and prints how long it took and how long the signatures
        /// made meanwhile took.
        func phase(_ label: String, _ body: (@Sendable () throws -> Void)?) async throws {
            let from = clock.now
            if let body { try await blocking { try body() } } else { try await Task.sleep(for: .seconds(2)) }
            let to = clock.now
            let during = samples.overlapping(from, to).sorted()
            let waits = during.isEmpty ? "no signature" : String(format: "signatures meanwhile: %d, p50 %.0f µs, p99 %.0f µs, longest %.1f ms",
                                                                during.count, during[during.count / 2] * 1e6, during[during.count * 99 / 100] * 1e6, during.last! * 1e3)
            row("  \(label)", seconds(to - from) * 1e3, "ms   \(waits)")
        }
        let agent = served.agent
        try await phase("signing alone, 2 s", nil)
        try await phase("store check: every session key opened, every page read", { guard try agent.checkStore().intact else { fatalError("the store is damaged") } })
        try await phase("audit verify", { guard try agent.verifyAudit().intact else { fatalError("the audit log is broken") } })
        try await phase("audit show --kind revoke (there is none)", { _ = try agent.auditEntries(after: nil, kind: "revoke", limit: 50) })
        let file = directory + "/store.sqlite"
        func megabytes() -> Double { Double((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)??.int64Value ?? 0) / 1e6 }
        let full = megabytes()
        try await phase("audit prune, the older half (the freed pages given back)", { _ = try agent.pruneAudit(through: Int64(entries / 2), before: nil) })
        row("  the store file, before and after the prune", full, "MB → \(String(format: "%.0f", megabytes())) MB")
        try await phase("audit verify, the half left", { guard try agent.verifyAudit().intact else { fatalError("the audit log is broken") } })
    }
}

/// When each call was made and how long it took; `stopped` ends the client's loop.
final class SampleLog: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [(at: ContinuousClock.Instant, seconds: Double)] = []
    private var stopFlag = false
    func add(_ at: ContinuousClock.Instant, _ seconds: Double) { lock.withLock { samples.append((at, seconds)) } }
    var stopped: Bool { lock.withLock { stopFlag } }
    func stop() { lock.withLock { stopFlag = true } }
    /// The latencies of the calls that were under way at some moment between `from` and `to`.
    func overlapping(_ from: ContinuousClock.Instant, _ to: ContinuousClock.Instant) -> [Double] {
        lock.withLock { samples.filter { $0.at < to && $0.at + .seconds($0.seconds) > from }.map(\.seconds) }
    }
}

/// Latencies collected from the client threads.
final class LatencyLog: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Double] = []
    func add(_ more: [Double]) { lock.withLock { values += more } }
    var all: [Double] { lock.withLock { values } }
}
