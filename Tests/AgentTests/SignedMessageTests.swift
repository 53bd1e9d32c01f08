import Agent
import EthereumCore
import Foundation
import SmartSessions
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `session_signTypedData` and `session-agent sign-typed-data`: a running agent signs typed data
/// with a session key for the account's ERC-1271, through SmartSession's ERC-7739 check, only as
/// the session allows, with the account's EIP-712 domain read from the chain (the stand-in of
/// Tests/rig/chain-rpc.py) or given.
@Suite("Typed data signed with a session key, by the agent", .serialized, .enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
struct SignedMessageTests {
    static let chain: UInt64 = 11155111
    static let mailType = "Mail(Person to,string contents)Person(string name,address wallet)"
    static let mailDomain: JSONValue = .object(JSONObject(["name": "Ether Mail", "version": "1", "chainId": JSONValue(1)]))

    static func mail(_ to: String = "Bob", primary: String = "Mail") -> JSONValue {
        .object(JSONObject([
            "types": .object(JSONObject([
                "EIP712Domain": .array([.object(JSONObject(["name": "name", "type": "string"])), .object(JSONObject(["name": "version", "type": "string"])),
                                        .object(JSONObject(["name": "chainId", "type": "uint256"]))]),
                primary: .array([.object(JSONObject(["name": "to", "type": "Person"])), .object(JSONObject(["name": "contents", "type": "string"]))]),
                "Person": .array([.object(JSONObject(["name": "name", "type": "string"])), .object(JSONObject(["name": "wallet", "type": "address"]))]),
            ])),
            "primaryType": .string(primary), "domain": mailDomain,
            "message": .object(JSONObject(["to": .object(JSONObject(["name": .string(to), "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"])), "contents": "Hello"])),
        ]))
    }

    /// The example session, which may also sign Mail for the Ether Mail application.
    static var request: JSONValue {
        var r = SocketTests.example.objectValue!
        r["typedData"] = .array([.object(JSONObject(["domain": mailDomain, "contents": .array([.string(mailType)])]))])
        return .object(r)
    }

    static let rules = """
        default = "deny"
        [[rules]]
        name = "mail bot"
        decision = "approve"
        reason = "may sign mail"
        [rules.match]
        client_uids = [\(getuid())]
        """

    /// The chain: the account answers eip712Domain() itself, or through the compatibility
    /// fallback (`accountId`), or not at all.
    static func state(_ domain: (key: String, value: JSONValue)?) -> JSONValue {
        var account = JSONObject(["code": "0x6080", "erc7579": true, "modules": .array([.string(SmartSessionAddresses.smartSession.lowercased)])])
        if let domain { account[domain.key] = domain.value }
        return .object(JSONObject(["chainId": JSONValue(Int(chain)), "block": JSONValue(100), "accounts": .object(JSONObject([AgentProcess.account: .object(account)]))]))
    }

    static func agent(endpoint: ChainStandIn?) throws -> (AgentProcess, AgentClient, AgentClient, String) {
        let agent = try AgentProcess(rules: rules, extraConfig: (endpoint.map { "chain_rpc = { \(chain) = \"\($0.url)\" }\n" } ?? "") + "metrics_listen = \"127.0.0.1:0\"")
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket), control = try AgentClient(path: agent.controlSocket)
        return (agent, client, control, try SocketTests.requestSession(client, request))
    }

    static func sign(_ client: AgentClient, _ session: String, _ document: JSONValue = mail(), accountDomain: JSONValue? = nil) throws -> JSONValue {
        var params = JSONObject(["sessionId": .string(session), "chainId": JSONValue(Int(chain)), "typedData": document])
        if let accountDomain { params["accountDomain"] = accountDomain }
        return try client.call("session_signTypedData", params)
    }

    static func refusal(_ body: () throws -> JSONValue) -> AgentClient.RemoteError? {
        do {
            let answer = try body()
            Issue.record("signed: \(answer)")
            return nil
        } catch let e as AgentClient.RemoteError { return e } catch {
            Issue.record("\(error)")
            return nil
        }
    }

    /// Once an ENABLE signature has enabled the session on the chain, the key signs Mail: the
    /// digest is the TypedDataSign one over the account's domain as the chain gives it, the key
    /// recovered from the signature is the session's, and the signature is laid out as
    /// SmartSession reads it behind the account's routing. Contents or domains the session does
    /// not list are refused and recorded; every signature is in the audit log.
    @Test func signsWhatTheSessionListsOnceEnabled() throws {
        let endpoint = try ChainStandIn(Self.state(("eip712Domain", .object(JSONObject(["name": "Test Account", "version": "1.0.0"])))))
        let (agent, client, control, session) = try Self.agent(endpoint: endpoint)
        defer { agent.stop() }
        let stored = try control.call("session_get", JSONObject(["sessionId": .string(session)]))
        let permissionId = try Bytes32(hex: try stored.string("permissionId")), sessionKey = try Address(try stored.string("sessionKey"))
        #expect(stored.serialized.contains(Self.mailType), "\(stored)")

        #expect(Self.refusal { try Self.sign(client, session) }?.reason == "not_enabled")
        #expect(try SocketTests.sign(client, session, 1_000_000, nonce: 0)["mode"] == "ENABLE")

        let signed = try Self.sign(client, session)
        let document = try TypedData(json: Self.mail())
        let message = try NestedTypedData(document, explicit: false)
        let domain = AccountDomain(name: "Test Account", version: "1.0.0", chainId: UInt256(Self.chain), verifyingContract: try Address(AgentProcess.account))
        #expect(try signed.bytes32("hash") == document.digest && signed.bytes32("digest") == message.digest(in: domain), "\(signed)")
        #expect(signed["contentsDescription"]?.stringValue == Self.mailType && signed["accountDomain"]?["readFromChain"] == .bool(true), "\(signed)")
        let signature = try signed.bytes("signature")
        let ecdsa = Array(signature[52..<117])
        #expect(try RecoverableSignature(bytes: ecdsa).recoverAddress(digest: message.digest(in: domain)) == sessionKey)
        #expect(signature == AccountKind.erc7579Reference.erc1271Signature(validator: SmartSessionAddresses.smartSession,
                                                                            signature: message.signature(permissionId: permissionId, sessionSignature: ecdsa)))

        // The name and version given win over the chain's; the signature changes with them.
        let given = try Self.sign(client, session, accountDomain: .object(JSONObject(["name": "Other", "version": "2"])))
        #expect(given["accountDomain"]?["readFromChain"] == .bool(false) && given["digest"] != signed["digest"] && given["hash"] == signed["hash"], "\(given)")

        // Another type, and the same type under another application's domain, are not the session's.
        let order = Self.refusal { try Self.sign(client, session, Self.mail(primary: "Order")) }
        #expect(order?.reason == "content_not_allowed" && order?.message.contains(String(reflecting: Self.mailType)) == true, "\(String(describing: order))")
        var elsewhere = Self.mail().objectValue!
        elsewhere["domain"] = .object(JSONObject(["name": "Ether Mail", "version": "2", "chainId": JSONValue(1)]))
        #expect(Self.refusal { try Self.sign(client, session, .object(elsewhere)) }?.reason == "content_not_allowed")
        #expect(Self.refusal { try Self.sign(client, session, "not typed data") }?.reason == "bad_request")
        let elsewhereChain = Self.refusal { try client.call("session_signTypedData", JSONObject(["sessionId": .string(session), "chainId": JSONValue(8453), "typedData": Self.mail()])) }
        #expect(elsewhereChain?.reason == "wrong_chain", "\(String(describing: elsewhereChain))")
        // As eth_signTypedData_v4 takes it too: the document as JSON text.
        #expect(try Self.sign(client, session, .string(Self.mail().serialized))["digest"] == signed["digest"])

        let audit = try control.call("audit_show", JSONObject(["kind": "signed_message"])).arrayValue ?? []
        #expect(audit.count == 3 && audit.allSatisfy { $0.serialized.contains(session) }, "\(audit)")
        #expect(audit.first?.serialized.contains(message.digest(in: domain).hex) == true, "\(audit)")
        let denied = try control.call("audit_show", JSONObject(["kind": "denied"])).arrayValue ?? []
        #expect(denied.count == 2, "\(denied)")
        #expect(agent.logs.contains("typed data to sign from uid \(getuid())"), "\(agent.logs)")
        let base = String(try #require(agent.logs.firstMatch(of: /metrics for Prometheus at (http:\/\/127\.0\.0\.1:\d+)\/metrics/)?.1))
        let scraped = try MetricsTests.scrape(base).body
        for line in ["session_agent_messages_signed_total{outcome=\"signed\"} 3", "session_agent_messages_signed_total{outcome=\"not_enabled\"} 1",
                     "session_agent_messages_signed_total{outcome=\"content_not_allowed\"} 2"] {
            #expect(scraped.contains(line + "\n"), "\(line) in \(scraped)")
        }
    }

    /// Where the account's domain comes from: its own eip712Domain(), the compatibility
    /// fallback's (named after accountId()), or the request; an account with neither, or a chain
    /// without an endpoint and no domain given, is refused before anything is signed.
    /// A domain read is kept for a minute: a bot signing orders does not wait for the endpoint
    /// each time (what is not read is not kept).
    @Test func theAccountDomain() throws {
        // Another chain behind the endpoint, and the account not deployed there.
        var other = Self.state(("accountId", "rhinestone.safe7579.v1.0.0")).objectValue!
        other["chainId"] = JSONValue(8453)
        let endpoint = try ChainStandIn(.object(other))
        let (agent, client, _, session) = try Self.agent(endpoint: endpoint)
        defer { agent.stop() }
        _ = try SocketTests.sign(client, session, 1_000_000, nonce: 0)
        #expect(Self.refusal { try Self.sign(client, session) }?.reason == "wrong_chain")
        other["chainId"] = JSONValue(Int(Self.chain))
        other["accounts"] = .object(JSONObject())
        try endpoint.write(.object(other))
        #expect(Self.refusal { try Self.sign(client, session) }?.reason == "account_not_deployed")

        try endpoint.write(Self.state(nil))
        let missing = Self.refusal { try Self.sign(client, session) }
        #expect(missing?.reason == "no_account_domain" && missing?.message.contains("SmartSessionCompatibilityFallback") == true, "\(String(describing: missing))")
        #expect(Self.refusal { try Self.sign(client, session, accountDomain: .object(JSONObject(["name": "x"]))) }?.reason == "bad_request")

        try endpoint.write(Self.state(("accountId", "rhinestone.safe7579.v1.0.0")))
        let signed = try Self.sign(client, session)
        #expect(signed["accountDomain"]?["name"] == "rhinestone safe7579" && signed["accountDomain"]?["version"] == "v1.0.0", "\(signed)")
        #expect(try Self.sign(client, session, accountDomain: .object(JSONObject(["name": "rhinestone safe7579", "version": "v1.0.0"])))["digest"] == signed["digest"])
        func domainReads() -> Int {
            endpoint.requests.filter { $0["method"] == "eth_call" && $0.serialized.contains("0x84b0196e") }.count
        }
        let reads = domainReads()
        try endpoint.write(Self.state(nil))
        #expect(try Self.sign(client, session)["digest"] == signed["digest"] && domainReads() == reads, "read again: \(endpoint.requests)")
    }

    /// Without an endpoint the domain must be given; `sign-typed-data` takes it on the command
    /// line and prints the signature and the hash to pass with it.
    @Test func withoutAnEndpointFromTheCommandLine() throws {
        let (agent, client, _, session) = try Self.agent(endpoint: nil)
        defer { agent.stop() }
        _ = try SocketTests.sign(client, session, 1_000_000, nonce: 0)
        let missing = Self.refusal { try Self.sign(client, session) }
        #expect(missing?.reason == "bad_request" && missing?.message.contains("params.accountDomain") == true, "\(String(describing: missing))")

        let file = agent.directory.appendingPathComponent("mail.json")
        try Self.mail().serialized.write(to: file, atomically: true, encoding: .utf8)
        let run = try Command.run(Command.sessionAgent, ["sign-typed-data", file.path, "--session", session, "--chain-id", String(Self.chain),
                                                         "--account-name", "Test Account", "--account-version", "1.0.0", "--json", "--socket", agent.clientSocket])
        #expect(run.status == 0, "\(run)")
        let json = try JSONValue(parsing: run.stdout)
        let message = try NestedTypedData(try TypedData(json: Self.mail()), explicit: false)
        let domain = AccountDomain(name: "Test Account", version: "1.0.0", chainId: UInt256(Self.chain), verifyingContract: try Address(AgentProcess.account))
        #expect(try json.bytes32("digest") == message.digest(in: domain) && json.bytes32("hash") == message.appHash, "\(json)")
        let shown = try Command.run(Command.sessionAgent, ["sessions", "show", session, "--socket", agent.clientSocket])
        #expect(shown.stdout.contains("signs typed data for the account (sign-typed-data): \"\(Self.mailType)\" under the application domain \(message.appDomainSeparator.hex)"), "\(shown)")
        let half = try Command.run(Command.sessionAgent, ["sign-typed-data", file.path, "--session", session, "--chain-id", String(Self.chain),
                                                          "--account-name", "Test Account", "--socket", agent.clientSocket])
        #expect(half.status != 0 && half.stderr.contains("--account-name and --account-version go together"), "\(half)")
    }
}
