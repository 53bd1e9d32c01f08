import Agent
import ChainRPC
import EthereumCore
import Foundation
import SmartSessions
import Testing
import TestSupport
import TestTraits

/// `session_chain_status` and `session-agent sessions status`: a running agent reads a session's
/// state from a JSON-RPC endpoint over HTTP (the stand-in chain of Tests/rig/chain-rpc.py) and
/// sets it beside its ledger.
@Suite("A session's state on chain, read by the agent", .serialized, .enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
struct ChainStatusTests {
    static let chain: UInt64 = 11155111
    static let usdc = SocketTests.usdc

    /// The chain: the account deployed with SmartSession installed, and the session's state.
    static func state(permissionId: String? = nil, enabled: Bool = false, nonce: Int = 0, used: Int = 0, spent: Int = 0,
                      chainId: UInt64 = chain, erc7579: Bool = true, fault: String? = nil) -> JSONValue {
        var sessions: [JSONValue] = []
        if let permissionId {
            let policies = JSONObject([
                PolicyRegistry.address(of: .usageLimit).lowercased: .object(JSONObject(["used": JSONValue(used)])),
                PolicyRegistry.address(of: .erc20SpendingLimit).lowercased: .object(JSONObject(["tokens": .object(JSONObject([
                    usdc.lowercased: .object(JSONObject(["limit": JSONValue(100_000_000), "spent": JSONValue(spent), "approved": JSONValue(0)])),
                ]))])),
            ])
            sessions = [.object(JSONObject([
                "account": .string(AgentProcess.account), "permissionId": .string(permissionId), "enabled": .bool(enabled), "nonce": JSONValue(nonce),
                "actions": .array([.object(JSONObject(["target": .string(usdc.lowercased), "selector": "0xa9059cbb", "policies": .object(policies)]))]),
            ]))]
        }
        return .object(JSONObject([
            "chainId": JSONValue(Int(chainId)), "block": JSONValue(100), "fault": fault.map { .string($0) } ?? .null, "sessions": .array(sessions),
            "accounts": .object(JSONObject([AgentProcess.account: .object(JSONObject([
                "code": "0x6080", "erc7579": .bool(erc7579), "modules": .array([.string(SmartSessionAddresses.smartSession.lowercased)]),
            ]))])),
        ]))
    }

    static func status(_ control: AgentClient, _ session: String, chainId: UInt64? = nil) throws -> JSONValue {
        var params = JSONObject(["sessionId": .string(session)])
        if let chainId { params["chainId"] = .string(String(chainId)) }
        let answer = try control.call("session_chain_status", params)
        #expect(!answer.serialized.contains(ChainStandIn.apiKey), "\(answer.serialized)")
        return try #require(answer["chains"]?.arrayValue?.first)
    }

    static func reasons(_ chain: JSONValue) -> [String] { (chain["findings"]?.arrayValue ?? []).compactMap { $0["reason"]?.stringValue } }

    static func counters(_ chain: JSONValue) -> [String: String] {
        Dictionary(uniqueKeysWithValues: (chain["counters"]?.arrayValue ?? []).map { c in
            (c["counter"]?.stringValue ?? "?", "\(c["local"]?.stringValue ?? "?")/\(c["chain"]?.stringValue ?? "?")")
        })
    }

    static func agent(chainRPC: String?, rules: String? = nil, request: JSONValue = SocketTests.example, metrics: Bool = false) throws -> (AgentProcess, AgentClient, AgentClient, String) {
        let agent = try AgentProcess(rules: rules, extraConfig: (chainRPC.map { "chain_rpc = { \(chain) = \"\($0)\" }\n" } ?? "") + (metrics ? "metrics_listen = \"127.0.0.1:0\"" : ""))
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket), control = try AgentClient(path: agent.controlSocket)
        return (agent, client, control, try SocketTests.requestSession(client, request))
    }

    /// Before and after its enabling, in step, behind and ahead: what the chain says is set
    /// beside the ledger, all read at one block; a chain ahead of the ledger is critical, and
    /// `sessions status` exits 2 for it. The endpoint's key (in its path) is never shown.
    @Test func theChainIsSetBesideTheLedger() throws {
        let endpoint = try ChainStandIn(Self.state())
        let (agent, client, control, session) = try Self.agent(chainRPC: endpoint.url, metrics: true)
        defer { agent.stop() }
        let permissionId = try #require(try control.call("session_get", JSONObject(["sessionId": .string(session)]))["permissionId"]?.stringValue)

        var s = try Self.status(control, session)
        #expect(Self.reasons(s) == ["enable_outstanding"], "\(s)")
        // Two round trips: the chain and its block, then the rest in one batch (two codes, three
        // views, and the usage and spending policies' getters).
        let sent = endpoint.httpRequests
        #expect(sent.map { $0.arrayValue?.count ?? 0 } == [2, 2 + 3 + 2], "\(sent)")
        #expect(s["installed"] == .bool(true) && s["deployed"] == .bool(true) && s["enabled"] == .bool(false) && s["block"] == "100")
        #expect(s["signedNonce"] == "0" && s["enabledHere"] == .bool(false) && s["endpoint"]?.stringValue == "http://127.0.0.1:\(endpoint.port)", "\(s)")

        _ = try SocketTests.sign(client, session, 5_000_000, nonce: 0)
        _ = try SocketTests.sign(client, session, 7_000_000, nonce: 1)
        s = try Self.status(control, session)
        #expect(Self.reasons(s) == ["not_enabled_yet"] && s["enabledHere"] == .bool(true), "\(s)")

        try endpoint.write(Self.state(permissionId: permissionId, enabled: true, nonce: 1, used: 2, spent: 12_000_000))
        s = try Self.status(control, session)
        #expect(Self.reasons(s) == ["enabled"] && s["severity"] == "info", "\(s)")
        let spent = "spent:\(Self.usdc.lowercased)", approved = "approved:\(Self.usdc.lowercased)"
        #expect(Self.counters(s) == ["used": "2/2", spent: "12000000/12000000", approved: "0/0"], "\(s)")

        try endpoint.write(Self.state(permissionId: permissionId, enabled: true, nonce: 1, used: 1, spent: 5_000_000))
        s = try Self.status(control, session)
        #expect(Self.reasons(s) == ["enabled", "pending", "pending"] && s["severity"] == "info", "\(s)")

        try endpoint.write(Self.state(permissionId: permissionId, enabled: true, nonce: 1, used: 3, spent: 12_000_000))
        s = try Self.status(control, session)
        #expect(Self.reasons(s) == ["enabled", "counted_elsewhere"] && s["severity"] == "critical", "\(s)")
        let cli = try Command.run(Command.sessionAgent, ["sessions", "status", session, "--socket", agent.controlSocket])
        let uses = "uses (UsageLimitPolicy \(PolicyRegistry.address(of: .usageLimit).checksummed))"
        #expect(cli.status == 2 && cli.stdout.contains("✗ \(uses): the chain counted 3") && cli.stdout.contains("the session was used outside this agent"), "\(cli)")
        #expect(cli.stdout.contains("\(uses): 2 signed here, 3 on chain"), "\(cli.stdout)")
        #expect(cli.stdout.contains("USDC spent (ERC20SpendingLimitPolicy \(PolicyRegistry.address(of: .erc20SpendingLimit).checksummed)): 12 USDC signed here, 12 USDC on chain"), "\(cli.stdout)")
        try agent.waitForLog("the chain counted 3, this agent signed for 2")
        // Prometheus counts the reads by their worst finding, for an alert on a critical one.
        let base = String(try #require(agent.logs.firstMatch(of: /metrics for Prometheus at (http:\/\/127\.0\.0\.1:\d+)\/metrics/)?.1))
        let scraped = try MetricsTests.scrape(base).body
        for line in ["session_agent_chain_reads_total{result=\"info\"} 3", "session_agent_chain_reads_total{result=\"warning\"} 1",
                     "session_agent_chain_reads_total{result=\"critical\"} 2"] {
            #expect(scraped.contains(line + "\n"), "\(line) in \(scraped)")
        }

        // --all: every live session, for a timer; revoked ones are left out.
        let second = try SocketTests.requestSession(client)
        func all() throws -> (status: Int32, ids: [String]) {
            let run = try Command.run(Command.sessionAgent, ["sessions", "status", "--all", "--json", "--socket", agent.controlSocket])
            // Sessions made in one second are listed in their ids' order.
            return (run.status, try JSONValue(parsing: run.stdout).arrayValue?.compactMap { $0["sessionId"]?.stringValue }.sorted() ?? [])
        }
        #expect(try all() == (2, [session, second].sorted()))
        // With --chain, the sessions for that chain only: none is for chain 1.
        let none = try Command.run(Command.sessionAgent, ["sessions", "status", "--all", "--chain", "1", "--socket", agent.controlSocket])
        #expect(none.status == 0 && none.stdout.contains("no live sessions"), "\(none)")
        _ = try control.call("session_revoke", JSONObject(["sessionId": .string(session)]))
        #expect(try all() == (0, [second]))
        // Revoked here, still enabled on chain until the account ends it.
        #expect(Self.reasons(try Self.status(control, session)) == ["revoked_but_enabled", "counted_elsewhere"])
        try endpoint.write(Self.state(permissionId: permissionId, enabled: false, nonce: 2))
        #expect(Self.reasons(try Self.status(control, session)) == ["ended"])
        #expect(try Command.run(Command.sessionAgent, ["sessions", "status", "--socket", agent.controlSocket]).status != 0)

        // Every call at the block it read first, and the key nowhere the agent writes.
        let calls = endpoint.requests.filter { $0["method"] == "eth_call" }
        #expect(calls.count >= 5 * 5 && calls.allSatisfy { $0["params"]?.arrayValue?.last == "0x64" }, "\(calls.count)")
        #expect(!agent.logs.contains(ChainStandIn.apiKey) && !cli.stdout.contains(ChainStandIn.apiKey))
    }

    /// An endpoint that fails, lies about its chain or answers nonsense is reported for that
    /// chain, in words and a reason, with its key left out; nothing changes, and the agent
    /// goes on signing. `sessions status` exits 1.
    @Test func aChainThatCannotBeReadIsSaidSoAndChangesNothing() throws {
        let endpoint = try ChainStandIn(Self.state())
        let (agent, client, control, session) = try Self.agent(chainRPC: endpoint.url)
        defer { agent.stop() }
        _ = try SocketTests.sign(client, session, 5_000_000, nonce: 0)
        let before = try control.call("session_get", JSONObject(["sessionId": .string(session)]))

        for (fault, reason) in [("http500", "chain_unreachable"), ("garbage", "chain_answer_malformed"), ("wrong_id", "chain_answer_malformed"), ("rpc_error", "chain_error"),
                               ("batch_short", "chain_answer_malformed"), ("batch_twice", "chain_answer_malformed")] {
            try endpoint.write(Self.state(fault: fault))
            let s = try Self.status(control, session)
            #expect(s["error"]?["reason"]?.stringValue == reason, "\(fault): \(s)")
        }
        try endpoint.write(Self.state(chainId: 1))
        #expect(try Self.status(control, session)["error"]?["message"]?.stringValue?.contains("serves chain 1, configured for chain 11155111") == true)
        // An account that does not answer isModuleInstalled: unknown, not an error.
        try endpoint.write(Self.state(erc7579: false))
        let unknown = try Self.status(control, session)
        #expect(unknown["installed"] == .null && Self.reasons(unknown).first == "install_unknown", "\(unknown)")

        // A chain SmartSession is not deployed on.
        var bare = Self.state().objectValue!
        bare["undeployed"] = .array([.string(SmartSessionAddresses.smartSession.lowercased)])
        try endpoint.write(.object(bare))
        #expect(try Self.status(control, session)["error"]?["reason"] == "smartsession_not_deployed")

        endpoint.stop()
        let gone = try Self.status(control, session)
        // Said at once, not after the connect timeout's retries.
        #expect(gone["error"]?["reason"] == "chain_unreachable" && gone["error"]?["message"]?.stringValue?.hasSuffix("it refused the connection") == true, "\(gone)")
        let cli = try Command.run(Command.sessionAgent, ["sessions", "status", session, "--socket", agent.controlSocket])
        #expect(cli.status == 1 && cli.stdout.contains("not read:") && !cli.stdout.contains(ChainStandIn.apiKey), "\(cli)")

        #expect(throws: AgentClient.RemoteError.self) { try Self.status(control, session, chainId: 1) }
        #expect(throws: AgentClient.RemoteError.self) { try control.call("session_chain_status", JSONObject(["sessionId": "s-unknown"])) }
        // Only the operator reads the chain: a client's socket does not have the method.
        #expect(throws: AgentClient.RemoteError.self) { try client.call("session_chain_status", JSONObject(["sessionId": .string(session)])) }

        #expect(try control.call("session_get", JSONObject(["sessionId": .string(session)])) == before)
        #expect(try SocketTests.sign(client, session, 1, nonce: 1)["signature"] != nil)
        #expect(!agent.logs.contains(ChainStandIn.apiKey))
    }

    /// An endpoint that answers a batch with one error, or HTTP 400, as those without batches
    /// do, is asked one call at a time, the same calls, and from then on without trying a batch
    /// again.
    @Test(arguments: ["no_batch", "batch_http400"])
    func anEndpointWithoutBatchesIsAskedOneCallAtATime(refusal: String) throws {
        let endpoint = try ChainStandIn(Self.state())
        let (agent, client, control, session) = try Self.agent(chainRPC: endpoint.url)
        defer { agent.stop() }
        let permissionId = try #require(try control.call("session_get", JSONObject(["sessionId": .string(session)]))["permissionId"]?.stringValue)
        _ = try SocketTests.sign(client, session, 5_000_000, nonce: 0)
        var state = Self.state(permissionId: permissionId, enabled: true, nonce: 1, used: 1, spent: 5_000_000).objectValue!
        try endpoint.write(.object(state))
        let batched = try Self.status(control, session)
        let calls = endpoint.requests.map { "\($0["method"]?.stringValue ?? "")\($0["params"]?.serialized ?? "")" }
        #expect(Self.reasons(batched) == ["enabled"], "\(batched)")

        state["fault"] = .string(refusal)
        try endpoint.write(.object(state))
        for round in 0..<2 {
            let before = endpoint.httpRequests.count
            let alone = try Self.status(control, session)
            #expect(alone["findings"] == batched["findings"] && alone["counters"] == batched["counters"], "\(alone)")
            let sent = endpoint.httpRequests.dropFirst(before)
            // The first read tries its first batch, once.
            #expect(sent.filter { $0.arrayValue != nil }.count == (round == 0 ? 1 : 0), "\(sent)")
            let singles = sent.filter { $0.arrayValue == nil }.map { "\($0["method"]?.stringValue ?? "")\($0["params"]?.serialized ?? "")" }
            #expect(singles == calls, "\(singles)")
        }
    }

    /// A session whose key may have been handed to its client: the client signs without the
    /// agent, so a chain ahead of the ledger is a warning, not the alarm.
    @Test func aSessionWhoseKeyMayBeWithItsClientIsNotAnAlarm() throws {
        let endpoint = try ChainStandIn(Self.state())
        var exportable = SocketTests.example.objectValue!
        exportable["export"] = true
        let (agent, _, control, session) = try Self.agent(chainRPC: endpoint.url, rules: "default = \"approve\"", request: .object(exportable))
        defer { agent.stop() }
        let permissionId = try #require(try control.call("session_get", JSONObject(["sessionId": .string(session)]))["permissionId"]?.stringValue)
        try endpoint.write(Self.state(permissionId: permissionId, enabled: true, nonce: 1, used: 1, spent: 1_000_000))
        let s = try Self.status(control, session)
        #expect(Self.reasons(s) == ["enabled_by_client", "signed_by_client", "signed_by_client"] && s["severity"] == "warning", "\(s)")
    }

    /// An account operation whose user operation gives no nonce gets the EntryPoint's, for the
    /// key that selects the owners' validator, read from the chain; without an endpoint, or
    /// from one serving another chain, it is refused saying so.
    @Test func anAccountOperationsNonceIsReadFromTheChain() throws {
        let endpoint = try ChainStandIn(Self.state())
        let (agent, _, control, session) = try Self.agent(chainRPC: endpoint.url)
        defer { agent.stop() }
        let key = try #require(try control.call("accounts_list").arrayValue?.first?["ownerNonceKey"]?.stringValue)
        var state = Self.state().objectValue!
        state["entryPointNonces"] = .object(JSONObject([AgentProcess.account: .object(JSONObject([key: JSONValue(7)]))]))
        try endpoint.write(.object(state))
        let gas = JSONObject(["callGasLimit": "0x30000", "verificationGasLimit": "0x30000", "preVerificationGas": "0x10000",
                              "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x3b9aca00"])
        let params = JSONObject(["account": .string(AgentProcess.account), "chainId": JSONValue(Int(Self.chain)), "entryPoint": .string(EntryPointVersion.v07.canonicalAddress.checksummed),
                                 "operation": "end", "sessionIds": .array([.string(session)]), "userOperation": .object(gas)])
        let prepared = try control.call("account_prepare", params)
        let expected = (try UInt256(parsing: key)).shiftedLeft(64) | UInt256(7)
        #expect(prepared["userOperation"]?["nonce"]?.stringValue == expected.hexQuantity, "\(prepared)")
        #expect(prepared["reviewText"]?.stringValue?.contains("nonce sequence 7") == true)

        try endpoint.write(Self.state(chainId: 1))
        do {
            _ = try control.call("account_prepare", params)
            Issue.record("prepared with another chain's nonce")
        } catch let error as AgentClient.RemoteError {
            #expect(error.reason == "wrong_chain" && error.message.contains("params.userOperation.nonce"), "\(error)")
        }
    }

    /// A session on two chains, each with its endpoint, read at once: each is reported in the
    /// session's order, the one that fails beside the one that answers.
    @Test(.scratchDirectory) func eachChainOfASessionIsReadFromItsOwnEndpoint() async throws {
        let base = 84532 as UInt64
        let sepolia = try ChainStandIn(Self.state()), baseSepolia = try ChainStandIn(Self.state(chainId: base, fault: "http500"))
        let endpoints = ChainEndpoints([Self.chain: try ChainEndpoint(sepolia.url), base: try ChainEndpoint(baseSepolia.url)])
        let (agent, _) = try AgentFlowTests.agent(rules: "default = \"approve\"", chains: [Self.chain, base], endpoints: endpoints)
        // USDC is at another address on each chain: a target the same on both.
        let request: JSONValue = .object(JSONObject([
            "account": .string(AgentProcess.account), "chains": [JSONValue(Int(Self.chain)), JSONValue(Int(base))], "validity": .object(JSONObject(["duration": "1d"])),
            "maxUses": JSONValue(5), "permissions": [.object(JSONObject(["target": .string(Self.usdc.checksummed), "functions": ["transfer(address to, uint256 amount)"], "maxUses": JSONValue(3)]))],
        ]))
        let id = try #require(try await agent.request(request, client: AgentFlowTests.bot).sessionId)
        let status = try await agent.chainStatus(of: id).chains
        #expect(status.map(\.chainId) == [Self.chain, base])
        guard case .success(let report) = status.first?.outcome, case .failure(let error) = status.last?.outcome else { Issue.record("\(status)"); return }
        #expect(report.findings.map(\.reason) == ["enable_outstanding"] && error.reason == "chain_unreachable", "\(report) \(error)")
        #expect(sepolia.httpRequests.count == 2 && baseSepolia.httpRequests.count == 1)
        #expect(status.map(\.endpoint) == ["http://127.0.0.1:\(sepolia.port)", "http://127.0.0.1:\(baseSepolia.port)"])
    }

    /// A chain without an endpoint is said to have none.
    @Test func aChainWithoutAnEndpointIsSaidSo() throws {
        let (agent, _, control, session) = try Self.agent(chainRPC: nil)
        defer { agent.stop() }
        #expect(try Self.status(control, session)["error"]?["reason"] == "no_endpoint")
    }

    /// What an endpoint answers is read strictly: the envelope, then a quantity or data.
    @Test func anEndpointsAnswerIsReadStrictly() throws {
        let endpoint = try ChainEndpoint("https://rpc.example/v3/\(ChainStandIn.apiKey)")
        func result(_ text: String) -> Result<JSONValue, ChainRPCError> {
            Result { () throws(ChainRPCError) in try EthereumRPC.result(of: Array(text.utf8), to: "eth_call", from: endpoint) }
        }
        #expect(try result(#"{"jsonrpc":"2.0","id":1,"result":"0x01"}"#).get() == "0x01")
        for (text, reason) in [(#"{"jsonrpc":"2.0","id":2,"result":"0x01"}"#, "chain_answer_malformed"), (#"{"id":1,"result":"0x01"}"#, "chain_answer_malformed"),
                               (#"{"jsonrpc":"2.0","id":1}"#, "chain_answer_malformed"), (#"[{"jsonrpc":"2.0","id":1,"result":"0x"}]"#, "chain_answer_malformed"),
                               (#"{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted"}}"#, "reverted"),
                               (#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"execution reverted: no"}}"#, "reverted"),
                               (#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"rate limited\u001b[2J"}}"#, "chain_error")] {
            guard case .failure(let error) = result(text) else { Issue.record("accepted: \(text)"); continue }
            #expect(error.reason == reason && !error.message.contains("\u{1b}") && !error.message.contains(ChainStandIn.apiKey), "\(text): \(error)")
        }
        #expect(try EthereumRPC.quantity("0x64", of: "eth_blockNumber") == 100)
        for bad: JSONValue in ["0x+1", "0x", "64", "0x10000000000000000", .number("100"), "0x-1", "0x 1"] {
            #expect(throws: ChainRPCError.self, "\(bad)") { try EthereumRPC.quantity(bad, of: "eth_blockNumber") }
        }
        #expect(try EthereumRPC.data("0x", of: "eth_call") == [])
        for bad: JSONValue in ["0xzz", "00", .null, .number("1")] {
            #expect(throws: ChainRPCError.self, "\(bad)") { try EthereumRPC.data(bad, of: "eth_call") }
        }
    }

    /// A batch answer is read as strictly as a single one: one response per request, in any
    /// order, each to another request; a single response means the endpoint takes no batches.
    @Test func aBatchAnswerIsReadStrictly() throws {
        let endpoint = try ChainEndpoint("https://rpc.example/v3/\(ChainStandIn.apiKey)")
        let requests: [RPCRequest] = [.chainId, .blockNumber, .call(to: SmartSessionAddresses.smartSession, data: [1, 2], block: 7)]
        func outcomes(_ text: String) throws(ChainRPCError) -> [Result<JSONValue, ChainRPCError>]? {
            try EthereumRPC.outcomes(of: Array(text.utf8), to: requests, from: endpoint)
        }
        let answered = try #require(try outcomes(#"[{"jsonrpc":"2.0","id":3,"error":{"code":3,"message":"execution reverted"}},"#
            + #"{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"error":{"code":-32005,"message":"limited"}}]"#))
        #expect(try answered[0].get() == "0x1")
        for (i, reason) in [(1, "chain_error"), (2, "reverted")] {
            guard case .failure(let error) = answered[i] else { Issue.record("\(i) answered"); continue }
            #expect(error.reason == reason, "\(error)")
        }
        #expect(try outcomes(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch requests are not supported"}}"#) == nil)
        let one = #"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#, two = #"{"jsonrpc":"2.0","id":2,"result":"0x1"}"#
        let three = #"{"jsonrpc":"2.0","id":3,"result":"0x"}"#
        for bad in ["[\(one),\(two)]", "[\(one),\(two),\(three),\(three)]", "[\(one),\(one),\(three)]", "[\(one),\(two),\(three.replacingOccurrences(of: ":3", with: ":4"))]",
                    "[\(one),\(two),\(three.replacingOccurrences(of: ":3", with: ":0"))]", "[\(one),\(two),\(three.replacingOccurrences(of: ":3", with: ":\"3\""))]",
                    "[\(one),\(two),\(three.replacingOccurrences(of: "\"jsonrpc\":\"2.0\",", with: ""))]", "[\(one),\(two),\(three.replacingOccurrences(of: ",\"result\":\"0x\"", with: ""))]",
                    "[\(one),\(two),\"0x\"]", "[]", "\"0x1\"", "[\(one),\(two),\(three)"] {
            #expect(throws: ChainRPCError.self, "\(bad)") { _ = try outcomes(bad) }
        }
        #expect(try outcomes("[\(three),\(one),\(two)]")?.count == 3)
    }

    /// A long batch goes in parts of at most ten calls, its outcomes in the order asked.
    @Test func aLongBatchIsSentInParts() async throws {
        let endpoint = try ChainStandIn(Self.state())
        let rpc = try #require(ChainEndpoints([Self.chain: try ChainEndpoint(endpoint.url)]).rpc(for: Self.chain))
        let requests = (0..<23).map { i in i % 2 == 0 ? RPCRequest.chainId : .code(at: try! Address(AgentProcess.account), block: 100) }
        let outcomes = try await rpc.batch(requests)
        #expect(endpoint.httpRequests.map { $0.arrayValue?.count ?? 0 } == [10, 10, 3])
        #expect(try outcomes.enumerated().map { i, outcome in try outcome.get() == (i % 2 == 0 ? JSONValue.string("0xaa36a7") : "0x6080") } == Array(repeating: true, count: 23))
    }

    /// `chain_rpc`: a chain id and an http(s) URL each; shown without its path or query.
    @Test func theConfigurationNamesAnEndpointPerChain() throws {
        let inline = try AgentConfiguration(toml: "chain_rpc = { 1 = \"https://mainnet.infura.io/v3/SECRET?x=1\", 8453 = \"http://10.0.0.1:8545\" }", relativeTo: "/x", environment: [:])
        #expect(inline.chainRPC.mapValues(\.description) == [1: "https://mainnet.infura.io", 8453: "http://10.0.0.1:8545"])
        let table = try AgentConfiguration(toml: "[chain_rpc]\n10 = \"https://opt.example/key\"", relativeTo: "/x", environment: [:])
        #expect(table.chainRPC[10]?.url == "https://opt.example/key")
        for bad in ["chain_rpc = \"https://x\"", "chain_rpc = { mainnet = \"https://x\" }", "chain_rpc = { 0 = \"https://x\" }", "chain_rpc = { 1 = 5 }",
                    "chain_rpc = { 1 = \"ftp://x\" }", "chain_rpc = { 1 = \"https://\" }", "chain_rpc = { 1 = \"https://user:pa55@host/k\" }"] {
            do {
                _ = try AgentConfiguration(toml: bad, relativeTo: "/x", environment: [:])
                Issue.record("accepted: \(bad)")
            } catch {
                #expect(error.reason == "bad_config" && error.message.hasPrefix("chain_rpc") && !error.message.contains("pa55"), "\(bad): \(error)")
            }
        }
    }
}
