// session_chain_status: a session's state read from a JSON-RPC endpoint over HTTP (the test
// rig's stand-in, Tests/rig/chain-rpc.py, in the oracle venv), with the endpoint answering at
// once and after a provider's round trip.
import Agent
import ChainRPC
import EthereumCore
import Foundation
import SmartSessions
import TestSupport

enum ChainBench {
    static let secondChain: UInt64 = 84532

    /// The chain's state for `session`: the account deployed with SmartSession installed, the
    /// session enabled, and each action's ERC-20 tokens known to the spending-limit policy.
    static func state(_ session: Session, latency: Int, chainId: UInt64 = AgentBench.chain) -> JSONValue {
        let erc20 = PolicyRegistry.address(of: .erc20SpendingLimit).lowercased
        let actions: [JSONValue] = session.actions.map { action in
            let token: JSONValue = .object(JSONObject(["limit": JSONValue(1_000_000_000), "spent": JSONValue(1)]))
            return .object(JSONObject([
                "target": .string(action.actionTarget.lowercased), "selector": .string(action.actionTargetSelector.hex),
                "policies": .object(JSONObject([erc20: .object(JSONObject(["tokens": .object(JSONObject([action.actionTarget.lowercased: token]))]))])),
            ]))
        }
        return .object(JSONObject([
            "chainId": JSONValue(Int(chainId)), "block": JSONValue(100), "latency_ms": JSONValue(latency),
            "accounts": .object(JSONObject([AgentBench.account.lowercased: .object(JSONObject([
                "code": "0x6080", "erc7579": .bool(true), "modules": .array([.string(SmartSessionAddresses.smartSession.lowercased)]),
            ]))])),
            "sessions": .array([.object(JSONObject([
                "account": .string(AgentBench.account.lowercased), "permissionId": .string(session.permissionId.hex), "enabled": .bool(true),
                "nonce": JSONValue(0), "actions": .array(actions),
            ]))]),
        ]))
    }

    /// The median time of `rounds` runs of `body`, in seconds.
    static func median(of rounds: Int, _ body: () async throws -> Void) async throws -> Double {
        let clock = ContinuousClock()
        var times: [Double] = []
        for _ in 0..<rounds {
            let t0 = clock.now
            try await body()
            times.append(AgentBench.seconds(clock.now - t0))
        }
        return times.sorted()[rounds / 2]
    }

    static func run(directory: String) async throws {
        print("A session's state on chain: session_chain_status against the stand-in endpoint on loopback")
        guard Oracle.isAvailable else {
            print("  skipped: \(Oracle.unavailableReason ?? "no oracle venv")")
            return
        }
        let standIn = try ChainStandIn(.object(JSONObject(["chainId": JSONValue(Int(AgentBench.chain)), "block": JSONValue(100)])))
        let second = try ChainStandIn(.object(JSONObject(["chainId": JSONValue(Int(secondChain)), "block": JSONValue(100)])))
        let chains = ChainEndpoints([AgentBench.chain: try ChainEndpoint(standIn.url), secondChain: try ChainEndpoint(second.url)])
        let served = try await AgentBench.Served(directory: directory, chains: chains)
        defer { served.close(directory) }
        let sessionId = try await served.session(AgentBench.sessions[1].permission)
        let session = try await served.agent.chainStatus(of: sessionId).session.session
        for latency in [0, 20] {
            try standIn.write(state(session, latency: latency))
            let before = standIn.httpRequests.count
            let rounds = latency == 0 ? 200 : 20
            let p50 = try await median(of: rounds) {
                let status = try await served.agent.chainStatus(of: sessionId).chains
                guard case .success(let report) = status.first?.outcome, report.findings.contains(where: { $0.reason == "enabled" }) else {
                    fatalError("chain bench: the session did not read as enabled: \(status)")
                }
            }
            let perRead = Double(standIn.httpRequests.count - before) / Double(rounds)
            row("  status read, \(latency) ms round trip, \(String(format: "%.1f", perRead)) HTTP requests a read, p50", p50 * 1e3, "ms")
        }
        // A session on two chains, each endpoint 20 ms away: read at once, not one after the other.
        let both = try await served.session(AgentBench.sessions[0].permission, chains: [AgentBench.chain, secondChain])
        let twoChains = try await served.agent.chainStatus(of: both).session.session
        try standIn.write(state(twoChains, latency: 20))
        try second.write(state(twoChains, latency: 20, chainId: secondChain))
        let p50 = try await median(of: 20) {
            let status = try await served.agent.chainStatus(of: both).chains
            guard status.count == 2, status.allSatisfy({ if case .success = $0.outcome { true } else { false } }) else {
                fatalError("chain bench: the two-chain session was not read: \(status)")
            }
        }
        row("  status read of a session on two chains, each 20 ms away, p50", p50 * 1e3, "ms")

        // Typed data signed for the account, its EIP-712 domain read from the endpoint 20 ms
        // away: the first signature waits for the read, the next find the domain kept.
        var withDomain = state(session, latency: 20).objectValue!
        withDomain["accounts"] = .object(JSONObject([AgentBench.account.lowercased: .object(JSONObject([
            "code": "0x6080", "eip712Domain": .object(JSONObject(["name": "bench account", "version": "1"])),
        ]))]))
        try standIn.write(.object(withDomain))
        let mailSession = try await AgentBench.mailSession(served)
        let document = try TypedData(json: AgentBench.mail)
        func sign() async throws {
            _ = try await served.agent.signTypedData(sessionId: mailSession, client: served.me, chainId: AgentBench.chain, document: document)
        }
        let first = try await median(of: 1, sign)
        let kept = try await median(of: 200, sign)
        row("  typed data, the account's domain read 20 ms away: 1st signature", first * 1e3, "ms")
        row("  typed data, the account's domain kept: the next 200, p50", kept * 1e6, "µs")
    }
}
