@testable import Agent
import Approval
import ChainRPC
import EthereumCore
import Foundation
import GRDB
import Logging
import OwnerSigners
import SessionStore
import SmartSessions
import Synchronization
import Testing
import TestSupport
import TestTraits

/// A small valid Session for the raw-format refusal.
let WorkedSession = Session(sessionValidator: SmartSessionAddresses.ownableValidator,
                            sessionValidatorInitData: try! OwnableValidatorConfig(threshold: 1, owners: [AgentFlowTests.owner.address]).initData,
                            actions: [ActionData(actionTargetSelector: .valueTransfer, actionTarget: AgentFlowTests.account, actionPolicies: [PolicyConfig.sudo.policyData])])

/// The agent's flow in-process, with the real store (a SQLite file), a keystore owner and the
/// example rules file: request, rules approval, owner signature, scoped signing, denials.
@Suite("The agent: request, approval, owner signature, signing inside the scope", .scratchDirectory)
struct AgentFlowTests {
    static let now: UInt64 = 1_764_096_000
    static let account = try! Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
    static let usdc = try! Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
    static let owner = try! Secp256k1.PrivateKey(hex: "0x" + String(repeating: "22", count: 32))
    static let bot = ClientIdentity(uid: 1000, gid: 1000, pid: 4242, executable: "/usr/bin/bot")

    /// `rules`: a rules file's text; the example's by default. The agent holds the key of
    /// `owner` alone, whatever `owners` the account has.
    static func agent(rules text: String? = nil, ownerPrompt: @escaping SecretPrompt = { _ in secret("owner") },
                      path: String = ScratchDirectory.path("agent.sqlite"),
                      chains: Set<UInt64> = [11155111], owners: [Address] = [owner.address], threshold: Int = 1, kind: AccountKind = .erc7579Reference,
                      kernelVersion: String? = nil,
                      clock: @escaping @Sendable () -> UInt64 = { now }, journal: JournalLines? = nil, autoLock: Agent.AutoLock = Agent.AutoLock(),
                      endpoints: ChainEndpoints? = nil) throws -> (Agent, SessionStore) {
        let store = try SessionStore(path: path)
        try store.initialize(passphrase: secret("store"), scryptN: 1024)
        let keystore = try KeystoreOwner(keystore: try Keystore.encrypt(owner, passphrase: secret("owner"), kdf: .scrypt(n: 16, r: 8, p: 1)), location: "test")
        let rules = try RulesFile(toml: try text ?? String(contentsOf: Oracle.packageRoot.appendingPathComponent("docs/examples/rules.toml"), encoding: .utf8))
        let agent = Agent(store: store, owners: [keystore],
                          accounts: [AccountConfig(address: account, kind: kind, threshold: threshold, owners: owners, chains: chains, kernelVersion: kernelVersion)],
                          rules: rules, autoLock: autoLock, ownerPrompt: ownerPrompt, clock: clock,
                          logger: Logger(label: "test", factory: { _ in journal.map { $0 as any LogHandler } ?? SwiftLogNoOpLogHandler() }), chains: endpoints)
        return (agent, store)
    }

    static func transfer(_ token: Address, _ amount: UInt64, nonce: UInt64 = 0) -> PackedUserOperation {
        let call = try! ABIFunction(parsing: "transfer(address,uint256)").encodeCall([.address(try! Address("0x000000000000000000000000000000000000bEEF")), .uint(UInt256(amount))])
        return PackedUserOperation(sender: account, nonce: UInt256(nonce), initCode: [], callData: ExecuteCall.single(Execution(target: token, callData: call)).calldata,
                                   accountGasLimits: .zero, preVerificationGas: 0, gasFees: .zero, paymasterAndData: [], signature: [])
    }

    static var example: JSONValue { try! JSONValue(parsing: [UInt8](try! Data(contentsOf: Oracle.packageRoot.appendingPathComponent("docs/examples/usdc-transfers.json")))) }

    /// The example over the example rules' limit: no rule matches, so a person is asked.
    static var overTheRulesLimit: JSONValue {
        var over = example.objectValue!
        var permission = over["permissions"]!.arrayValue![0].objectValue!
        permission["spendingLimit"] = "500 USDC"
        over["permissions"] = .array([.object(permission)])
        return .object(over)
    }

    /// A Kernel account gives its owner validator the enable digest wrapped in Kernel's EIP-712
    /// domain for the account and the chain (spec §6.1): the owner signs that, the review says
    /// so, and a request for two chains, which one signature cannot serve, is refused before
    /// anyone is asked.
    @Test func aKernelAccountsOwnerSignsTheDigestAsKernelWrapsIt() async throws {
        let (agent, store) = try Self.agent(chains: [], kind: .kernel)
        var kernel = Self.example.objectValue!
        kernel["accountKind"] = nil
        try await Self.expectKernelWrapping(try await agent.request(.object(kernel), client: Self.bot), store: store, version: "0.3.1")

        kernel["chains"] = .array([JSONValue(11155111), JSONValue(84532)])
        kernel["permissions"] = .array([.object(JSONObject(["target": "0x000000000000000000000000000000000000bEEF", "functions": .array(["ping()"]), "sudo": true]))])
        await #expect { try await agent.request(.object(kernel), client: Self.bot) } throws: { error in
            "\(error)".contains("one chain per request")
        }
    }

    /// That the owner of `request`'s session signed its digest as a Kernel account of `version`
    /// hands it to its validator, and that the review says so.
    static func expectKernelWrapping(_ request: Agent.PendingRequest, store: SessionStore, version: String, chainId: UInt64 = 11155111,
                                     sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let stored = try store.session(id: try #require(request.sessionId, "\(request.reason)", sourceLocation: sourceLocation))
        let wrapped = AccountKind.kernel.validatorHash(of: request.review.multichainDigest, account: account, chainId: chainId, kernelVersion: version)
        #expect(wrapped != request.review.multichainDigest && request.review.ownerDigest == wrapped, sourceLocation: sourceLocation)
        #expect(request.review.text().contains("owner signs   \(wrapped.hex) (Kernel's wrapping of it, in the account's EIP-712 domain on this chain: Kernel \"\(version)\")"),
                sourceLocation: sourceLocation)
        #expect(request.review.json["kernelVersion"] == .string(version), sourceLocation: sourceLocation)
        let (_, signature) = try AccountKind.kernel.parseERC1271Signature(stored.permissionEnableSig)
        #expect(try RecoverableSignature(bytes: signature).recoverAddress(digest: wrapped) == owner.address, sourceLocation: sourceLocation)
    }

    /// Kernel versions after v3.1 (v3.2, v3.3) and before it (v3.0, "0.3.0-beta") name
    /// themselves in their EIP-712 domain, and so in what their owners sign. The agent asks the
    /// chain where it has an endpoint and the account is deployed, and takes the configured
    /// `kernelVersion` where not; an account whose domain is not Kernel's is refused, since its
    /// owners would sign a digest it never checks.
    @Test func aKernelAccountsVersionIsReadFromTheChainOrConfigured() async throws {
        var kernel = Self.example.objectValue!
        kernel["accountKind"] = nil
        let noEndpoint = try Self.agent(path: ScratchDirectory.path("configured.sqlite"), chains: [], kind: .kernel, kernelVersion: "0.3.3")
        try await Self.expectKernelWrapping(try await noEndpoint.0.request(.object(kernel), client: Self.bot), store: noEndpoint.1, version: "0.3.3")

        func chain(_ account: JSONObject?) throws -> JSONValue {
            .object(JSONObject(["chainId": JSONValue(11155111), "block": JSONValue(100),
                                "accounts": .object(JSONObject(account.map { [Self.account.lowercased: .object($0)] } ?? [:]))]))
        }
        let endpoint = try ChainStandIn(try chain(JSONObject(["code": "0x6080", "eip712Domain": .object(JSONObject(["name": "Kernel", "version": "0.3.2"]))])))
        defer { endpoint.stop() }
        // The account on another chain, at another version.
        var baseSepolia = try chain(JSONObject(["code": "0x6080", "eip712Domain": .object(JSONObject(["name": "Kernel", "version": "0.3.0-beta"]))])).objectValue!
        baseSepolia["chainId"] = JSONValue(84532)
        let second = try ChainStandIn(.object(baseSepolia))
        defer { second.stop() }
        let time = Mutex(Self.now)
        let (agent, store) = try Self.agent(rules: "default = \"approve\"", chains: [], kind: .kernel, kernelVersion: "0.3.3", clock: { time.withLock { $0 } },
                                            endpoints: ChainEndpoints([11155111: try ChainEndpoint(endpoint.url), 84532: try ChainEndpoint(second.url)]))
        try await Self.expectKernelWrapping(try await agent.request(.object(kernel), client: Self.bot), store: store, version: "0.3.2")
        var onBase = kernel
        onBase["chains"] = .array([JSONValue(84532)])
        onBase["permissions"] = .array([.object(JSONObject(["target": "0x000000000000000000000000000000000000bEEF", "functions": .array(["ping()"]), "maxUses": JSONValue(1)]))])
        try await Self.expectKernelWrapping(try await agent.request(.object(onBase), client: Self.bot), store: store, version: "0.3.0-beta", chainId: 84532)
        // Not deployed yet (its first user operation deploys it): the configured version, once
        // the domain read a moment ago is no longer kept.
        try endpoint.write(try chain(nil))
        time.withLock { $0 += AccountDomains.lifetime - 1 }
        try await Self.expectKernelWrapping(try await agent.request(.object(kernel), client: Self.bot), store: store, version: "0.3.2")
        time.withLock { $0 += 1 }
        try await Self.expectKernelWrapping(try await agent.request(.object(kernel), client: Self.bot), store: store, version: "0.3.3")

        for (account, expected) in [
            (JSONObject(["code": "0x6080", "eip712Domain": .object(JSONObject(["name": "Nexus", "version": "1.2.0"]))]), "its EIP-712 domain is \"Nexus\" \"1.2.0\", not Kernel's"),
            (JSONObject(["code": "0x6080", "eip712Domain": .object(JSONObject(["name": "Kernel", "version": "0.3.3\u{202E}"]))]), "\"Kernel\" \"0.3.3\\u{202e}\", not Kernel's"),
            (JSONObject(["code": "0x6080"]), "has no eip712Domain() on chain 11155111, which every Kernel v3 account has"),
        ] {
            try endpoint.write(try chain(account))
            time.withLock { $0 += AccountDomains.lifetime }
            await #expect { try await agent.request(.object(kernel), client: Self.bot) } throws: { error in
                (error as? AgentError)?.reason == "wrong_account_kind" && "\(error)".contains(expected)
            }
        }
        try endpoint.write(.object(JSONObject(["chainId": JSONValue(84532), "block": JSONValue(100), "accounts": .object(JSONObject())])))
        time.withLock { $0 += AccountDomains.lifetime }
        await #expect { try await agent.request(.object(kernel), client: Self.bot) } throws: { error in
            "\(error)".contains("the account's EIP-712 domain was not read from chain 11155111")
        }
    }

    /// Kernel v3.2 and later check an owner signature marked replayable over the wrapping for
    /// chain id 0, on every chain: there one signature enables a session on several chains, and
    /// the ENABLE data carries it on each. Versions that differ between the chains cannot share
    /// one, and are refused before anyone is asked.
    @Test func aKernelAccountFromV32EnablesASessionOnSeveralChainsWithOneSignature() async throws {
        let (agent, store) = try Self.agent(rules: "default = \"approve\"", chains: [], kind: .kernel, kernelVersion: "0.3.3")
        let ping = try ABIFunction(parsing: "ping()")
        var kernel = Self.example.objectValue!
        kernel["accountKind"] = nil
        kernel["chains"] = .array([JSONValue(11155111), JSONValue(84532)])
        kernel["permissions"] = .array([.object(JSONObject(["target": "0x000000000000000000000000000000000000bEEF", "functions": .array(["ping()"]), "maxUses": JSONValue(2)]))])
        let request = try await agent.request(.object(kernel), client: Self.bot)
        let stored = try store.session(id: try #require(request.sessionId, "\(request.reason)"))
        let wrapped = AccountKind.kernel.validatorHash(of: request.review.multichainDigest, account: Self.account, chainId: 0, kernelVersion: "0.3.3")
        #expect(request.review.ownerDigest == wrapped)
        #expect(request.review.text().contains("owner signs   \(wrapped.hex) (Kernel's wrapping of it, in the account's EIP-712 domain for every chain (chain id 0): Kernel \"0.3.3\")"))
        let (validator, routed) = try AccountKind.kernel.parseERC1271Signature(stored.permissionEnableSig)
        #expect(validator == SmartSessionAddresses.ownableValidator && Array(routed.prefix(32)) == AccountKind.kernelReplayable.bytes)
        #expect(try RecoverableSignature(bytes: Array(routed.dropFirst(32))).recoverAddress(digest: wrapped) == Self.owner.address)
        for chainId: UInt64 in [11155111, 84532] {
            let operation = PackedUserOperation(sender: Self.account, nonce: 0, initCode: [], callData: ExecuteCall.single(Execution(target: try Address("0x000000000000000000000000000000000000bEEF"), callData: ping.selector)).calldata,
                                                accountGasLimits: .zero, preVerificationGas: 0, gasFees: .zero, paymasterAndData: [], signature: [])
            let signed = try await agent.signUserOperation(sessionId: stored.id, client: Self.bot, chainId: chainId, entryPoint: EntryPointVersion.v07.canonicalAddress,
                                                           version: .v07, operation: operation)
            guard case .enable(_, let enable, _) = try SessionSignature(decoding: signed.signature) else {
                Issue.record("not an ENABLE signature on chain \(chainId)"); continue
            }
            #expect(enable.permissionEnableSig == stored.permissionEnableSig && enable.hashesAndChainIds.map { $0.chainId } == [11155111, 84532])
        }

        // The account at another version on one of the chains.
        let endpoint = try ChainStandIn(.object(JSONObject(["chainId": JSONValue(84532), "block": JSONValue(100), "accounts": .object(JSONObject([
            Self.account.lowercased: .object(JSONObject(["code": "0x6080", "eip712Domain": .object(JSONObject(["name": "Kernel", "version": "0.3.2"]))])),
        ]))])))
        defer { endpoint.stop() }
        let (mixed, _) = try Self.agent(rules: "default = \"approve\"", path: ScratchDirectory.path("mixed.sqlite"), chains: [], kind: .kernel, kernelVersion: "0.3.3",
                                        endpoints: ChainEndpoints([84532: try ChainEndpoint(endpoint.url)]))
        await #expect { try await mixed.request(.object(kernel), client: Self.bot) } throws: { error in
            "\(error)".contains("is version \"0.3.3\" on chain 11155111 but \"0.3.2\" on chain 84532, so one owner signature cannot serve both")
        }
    }

    /// A session is listed as expired, by the agent's clock, only once its last second is over:
    /// the agent still signs in that second, and a client reading `expiresAt` for itself would
    /// easily end it a second early.
    @Test func aSessionIsListedAsExpiredOnlyAfterItsLastSecond() async throws {
        let time = Mutex(Self.now)
        let (agent, store) = try Self.agent(clock: { time.withLock { $0 } })
        let id = try #require(try await agent.request(Self.example, client: Self.bot).sessionId)
        let end = try #require(try store.session(id: id).expiresAt)
        let rpc = AgentRPC(agent: agent)
        func call(_ method: String, _ params: String) async throws -> JSONValue? {
            let line = #"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":\#(params)}"#
            return try JSONValue(parsing: Array(await rpc.respond(to: Array(line.utf8), client: Self.bot, control: false).utf8))["result"]
        }
        for (at, expired) in [(end - 1, false), (end, false), (end + 1, true)] {
            time.withLock { $0 = at }
            let got = try await call("session_get", #"{"sessionId":"\#(id)"}"#)
            let listed = try await call("session_list", "{}")?.arrayValue?.first
            #expect(got?["expired"] == .bool(expired) && listed?["expired"] == .bool(expired) && got?["revoked"] == false, "at \(at), \(end) the last second")
        }
    }

    /// A session key leaves the agent only for a session approved for export, only to its
    /// client, and only while the session lives: not once it is revoked, nor once its lifetime
    /// is over, though its key is erased only at the next sweep, seconds later.
    @Test func aKeyIsExportedOnlyToItsClientWhileItsSessionLives() async throws {
        let time = Mutex(Self.now)
        let (agent, store) = try Self.agent(rules: "default = \"approve\"", clock: { time.withLock { $0 } })
        var request = Self.example.objectValue!
        let kept = try #require(try await agent.request(.object(request), client: Self.bot).sessionId)
        await #expect { try await agent.exportKey(sessionId: kept, client: Self.bot) } throws: { ($0 as? AgentError)?.reason == "export_not_allowed" }
        request["export"] = true
        let exportable = try #require(try await agent.request(.object(request), client: Self.bot, binding: .executable).sessionId)
        let revoked = try #require(try await agent.request(.object(request), client: Self.bot).sessionId)
        var inUnit = Self.bot
        inUnit.unit = "bot.service"
        let unitBound = try #require(try await agent.request(.object(request), client: inUnit, binding: .unit).sessionId)

        let key = try await agent.exportKey(sessionId: exportable, client: Self.bot)
        #expect(key.address == (try agent.session(exportable, client: Self.bot)).sessionKey)
        let exports = try store.auditEntries(after: nil, kind: "export", limit: 10)
        #expect(exports.count == 1 && exports.first?.entry["session"] == .string(exportable), "\(exports)")
        for other in [ClientIdentity(uid: 2000, gid: 2000, pid: 1), ClientIdentity(uid: Self.bot.uid, gid: Self.bot.gid, pid: 1, executable: "/usr/bin/other")] {
            await #expect(throws: AgentError.notFound("session \(exportable)")) { try await agent.exportKey(sessionId: exportable, client: other) }
        }
        var otherUnit = inUnit
        otherUnit.unit = "other.service"
        for other in [otherUnit, Self.bot] {
            await #expect(throws: AgentError.notFound("session \(unitBound)")) { try await agent.exportKey(sessionId: unitBound, client: other) }
        }
        _ = try await agent.exportKey(sessionId: unitBound, client: inUnit)

        _ = try await agent.revoke(sessionId: revoked, client: Self.bot)
        await #expect { try await agent.exportKey(sessionId: revoked, client: Self.bot) } throws: { ($0 as? AgentError)?.reason == "revoked" }
        // Its last second is in its lifetime, as a time frame's validUntil is.
        let expiry = try #require(try agent.session(exportable, client: Self.bot).expiresAt)
        time.withLock { $0 = expiry }
        _ = try await agent.exportKey(sessionId: exportable, client: Self.bot)
        time.withLock { $0 = expiry + 1 }
        await #expect { try await agent.exportKey(sessionId: exportable, client: Self.bot) } throws: { ($0 as? AgentError)?.reason == "expired" }
        #expect(try store.auditEntries(after: nil, kind: "export", limit: 10).count == 3)
    }

    /// A 2-of-2 account of which the agent holds one owner's key: no approval can be signed, so
    /// it fails at once, and nobody is asked for a passphrase or a tap it would waste, neither
    /// under rules nor by `session-agent approve`.
    @Test(arguments: ["approve", "ask"]) func aThresholdTheAgentCannotReachAsksNoOwner(_ rule: String) async throws {
        let asked = Mutex(0)
        let elsewhere = try Address("0x00000000000000000000000000000000000e15e1")
        let (agent, _) = try Self.agent(rules: "default = \"\(rule)\"", ownerPrompt: { _ in
            asked.withLock { $0 += 1 }
            return secret("owner")
        }, owners: [Self.owner.address, elsewhere], threshold: 2)
        let tooFew: @Sendable (any Error) -> Bool = { error in
            let e = error as? AgentError
            return e?.reason == "owner_unavailable" && e?.message.contains("1 of 2") == true
        }
        if rule == "approve" {
            await #expect(performing: { try await agent.request(Self.example, client: Self.bot) }, throws: tooFew)
        } else {
            let pending = try await agent.request(Self.example, client: Self.bot)
            #expect(try await agent.secretsToApprove(pending.id).isEmpty)
            await #expect(performing: { try await agent.decide(pending.id, approve: true, approver: "a person") }, throws: tooFew)
        }
        #expect(asked.withLock { $0 } == 0)
        #expect(try agent.sessions(client: Self.bot).isEmpty)
    }

    /// The signer keeps only the sessions used most recently. One read again from the store
    /// still counts everything signed with it, including what has not reached the disk: 30 USDC
    /// at a time under a 100 USDC limit, three sessions taking turns in a signer that holds two,
    /// while another connection holds the file's write lock.
    @Test func sessionsReadAgainKeepCountingTheirSpending() async throws {
        let path = ScratchDirectory.path("agent.sqlite")
        let (agent, store) = try Self.agent(path: path)
        var ids: [String] = []
        for _ in 0..<3 { ids.append(try #require(try await agent.request(Self.example, client: Self.bot).sessionId)) }
        let signer = SessionSigner(store: store, tokens: await agent.tokens, clock: { Self.now }, logger: await agent.logger, keeping: 2)
        var holding = Configuration()
        holding.allowsUnsafeTransactions = true
        let other = try DatabaseQueue(path: path, configuration: holding)
        try await other.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        var signed: [String: Int] = [:], refused: [String: Int] = [:]
        for round in 0..<5 {
            for id in ids {
                let request = SessionSigner.Request(sessionId: id, client: Self.bot, chainId: 11155111, entryPoint: EntryPointVersion.v07.canonicalAddress,
                                                    version: .v07, operation: Self.transfer(Self.usdc, 30_000_000, nonce: UInt64(round)))
                do {
                    _ = try signer.sign(request, whenDurable: { _ in })
                    signed[id, default: 0] += 1
                } catch {
                    #expect(error.reason == "policy_violation" && error.message.contains("spending limit"), "\(error)")
                    refused[id, default: 0] += 1
                }
                #expect(signer.sessionsHeld <= 2)
            }
        }
        #expect(ids.allSatisfy { signed[$0] == 3 && refused[$0] == 2 }, "signed \(signed), refused \(refused)")
        try await other.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }
        signer.drain()
        for id in ids { #expect(try store.sessionToSign(id: id).ledgers[11155111]?.counters.values.contains(UInt256(90_000_000)) == true) }
    }

    /// A signature whose record the store cannot take is refused, and what it reserved is given
    /// back: the session is read from the store again, so the limit it had left is whole.
    @Test func aSignatureTheStoreCouldNotRecordReservesNothing() async throws {
        let path = ScratchDirectory.path("agent.sqlite")
        let (agent, store) = try Self.agent(path: path)
        let id = try #require(try await agent.request(Self.example, client: Self.bot).sessionId)
        let ep = EntryPointVersion.v07.canonicalAddress
        func sign(_ amount: UInt64, nonce: UInt64) async throws(AgentError) {
            _ = try await agent.signUserOperation(sessionId: id, client: Self.bot, chainId: 11155111, entryPoint: ep, version: .v07, operation: Self.transfer(Self.usdc, amount, nonce: nonce))
        }
        try await sign(30_000_000, nonce: 0)
        // Another writer holds the store past the agent's wait for it (5 s).
        var holding = Configuration()
        holding.allowsUnsafeTransactions = true
        let other = try DatabaseQueue(path: path, configuration: holding)
        try await other.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        do {
            try await sign(70_000_000, nonce: 1)
            Issue.record("signed while the store could not record it")
        } catch {
            #expect(error.reason == "store_error", "\(error)")
        }
        try await other.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
        try await sign(70_000_000, nonce: 1)
        #expect(try store.sessionToSign(id: id).ledgers[11155111]?.counters.values.contains(UInt256(100_000_000)) == true)
    }

    /// A session on two chains is enabled on each, and each chain's policies keep their own
    /// state: its limits hold on each chain apart, and enabling it on the second chain starts
    /// that chain's counters only. The agent's ledger, kept once for the session, was reset by
    /// the second ENABLE: it then signed on the first chain what that chain's limit refuses.
    @Test func aMultichainSessionsLimitsHoldOnEachChainApart() async throws {
        let path = ScratchDirectory.path("agent.sqlite")
        let (agent, store) = try Self.agent(rules: "default = \"approve\"", path: path, chains: [11155111, 84532])
        let token = try Address("0x000000000000000000000000000000000000cafE")
        let request = try JSONValue(parsing: """
            {"account": "\(Self.account.checksummed)", "chains": [11155111, 84532], "validity": {"duration": "1d"},
             "permissions": [{"target": "\(token.checksummed)", "functions": ["transfer(address to, uint256 amount)"], "spendingLimit": "100"}]}
            """)
        let sessionId = try #require(try await agent.request(request, client: Self.bot).sessionId)
        let ep = EntryPointVersion.v07.canonicalAddress
        var nonce: UInt64 = 0
        func sign(_ chain: UInt64, _ amount: UInt64, by signer: SessionSigner? = nil) async throws -> SmartSessionMode {
            nonce += 1
            let operation = Self.transfer(token, amount, nonce: nonce)
            if let signer {
                let request = SessionSigner.Request(sessionId: sessionId, client: Self.bot, chainId: chain, entryPoint: ep, version: .v07, operation: operation)
                return try signer.sign(request, whenDurable: { _ in }).signed.mode
            }
            return try await agent.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: chain, entryPoint: ep, version: .v07, operation: operation).mode
        }
        #expect(try await sign(11155111, 60) == .enable)
        // ENABLE forced again on the chain does not start its counters again: if the first
        // landed, the second fails on chain (its enable nonce spent) and the 60 still count.
        await #expect(throws: AgentError.self, "60 + 50 is over 100, ENABLE or not") {
            _ = try await agent.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: 11155111, entryPoint: ep, version: .v07,
                                                  operation: Self.transfer(token, 50, nonce: 99), forceMode: .enable)
        }
        #expect(try await sign(84532, 30) == .enable)
        await #expect(throws: AgentError.self, "60 + 70 is over the first chain's 100") { try await sign(11155111, 70) }
        #expect(try await sign(11155111, 40) == .use)
        #expect(try await sign(84532, 70) == .use)
        await #expect(throws: AgentError.self, "30 + 70 + 1 is over the second chain's 100") { try await sign(84532, 1) }
        // The same, read from the store by a signer that starts afresh (an agent restarted).
        agent.drain()
        let restarted = SessionSigner(store: store, tokens: await agent.tokens, clock: { Self.now }, logger: await agent.logger)
        for chain: UInt64 in [11155111, 84532] {
            await #expect(throws: AgentError.self) { try await sign(chain, 1, by: restarted) }
        }
    }

    /// A client is told what is used and left of each limit on each chain, and what it is told
    /// is left is what the agent then signs: all of it, and not one base unit more.
    @Test func aClientSeesWhatIsLeftOfItsLimitsOnEachChain() async throws {
        let (agent, _) = try Self.agent(rules: "default = \"approve\"", chains: [11155111, 84532])
        let token = try Address("0x000000000000000000000000000000000000cafE")
        let request = try JSONValue(parsing: """
            {"account": "\(Self.account.checksummed)", "chains": [11155111, 84532], "validity": {"duration": "1d"},
             "permissions": [{"target": "\(token.checksummed)", "functions": ["transfer(address to, uint256 amount)"], "spendingLimit": "100", "maxUses": 5}]}
            """)
        let id = try #require(try await agent.request(request, client: Self.bot).sessionId)
        func left(_ chain: UInt64) throws -> [SessionLimit.Measure: UInt256] {
            let limits = try agent.sessionWithLimits(id, client: Self.bot).limits.filter { $0.chainId == chain }
            return Dictionary(uniqueKeysWithValues: limits.map { ($0.limit.measure, $0.limit.remaining) })
        }
        #expect(try left(11155111) == [.token(token): 100, .uses: 5] && left(84532) == [.token(token): 100, .uses: 5])
        var nonce: UInt64 = 0
        func sign(_ chain: UInt64, _ amount: UInt256) async throws(AgentError) {
            nonce += 1
            let call = try! ABIFunction(parsing: "transfer(address,uint256)").encodeCall([.address(token), .uint(amount)])
            let operation = PackedUserOperation(sender: Self.account, nonce: UInt256(nonce), initCode: [], callData: ExecuteCall.single(Execution(target: token, callData: call)).calldata,
                                                accountGasLimits: .zero, preVerificationGas: 0, gasFees: .zero, paymasterAndData: [], signature: [])
            _ = try await agent.signUserOperation(sessionId: id, client: Self.bot, chainId: chain, entryPoint: EntryPointVersion.v07.canonicalAddress, version: .v07, operation: operation)
        }
        try await sign(11155111, 60)
        #expect(try left(11155111) == [.token(token): 40, .uses: 4] && left(84532) == [.token(token): 100, .uses: 5], "each chain apart")
        await #expect(throws: AgentError.self, "one more than is left") { try await sign(11155111, 41) }
        try await sign(11155111, try #require(try left(11155111)[.token(token)]))
        #expect(try left(11155111) == [.token(token): 0, .uses: 3])
        let texts = try agent.sessionWithLimits(id, client: Self.bot).limits.filter { $0.chainId == 11155111 }.map(\.text)
        #expect(texts.contains { $0.hasSuffix("100 base units of 100 base units, 0 base units left (ERC20SpendingLimitPolicy)") }, "\(texts)")
        // Another client's session is not found, as everywhere else.
        #expect(throws: AgentError.self) { try agent.sessionWithLimits(id, client: ClientIdentity(uid: 2000, gid: 2000, pid: 1)) }
        #expect(try agent.sessionWithLimits(id, client: nil).limits.count == 4, "the operator sees them all")
    }

    @Test func approvedByRulesThenSignedInsideTheScope() async throws {
        let (agent, store) = try Self.agent()
        let request = try await agent.request(Self.example, client: Self.bot)
        #expect(request.status == .approved, "\(request.reason)")
        let sessionId = try #require(request.sessionId)
        let stored = try agent.session(sessionId, client: Self.bot)

        // First use on the chain: ENABLE, carrying the owner's enable signature.
        let ep = EntryPointVersion.v07.canonicalAddress
        let first = try await agent.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: 11155111, entryPoint: ep, version: .v07, operation: Self.transfer(Self.usdc, 5_000_000))
        #expect(first.mode == .enable)
        guard case .enable(_, let enable, let sessionSig) = try SessionSignature(decoding: first.signature) else { Issue.record("not ENABLE"); return }
        #expect(enable.sessionToEnable == stored.session)
        let (validator, ownerSig) = try AccountKind.erc7579Reference.parseERC1271Signature(enable.permissionEnableSig)
        #expect(validator == SmartSessionAddresses.ownableValidator)
        #expect(try RecoverableSignature(bytes: ownerSig).recoverAddress(digest: EnableDigest.multichainDigest(enable.hashesAndChainIds)) == Self.owner.address)
        #expect(try RecoverableSignature(bytes: sessionSig).recoverAddress(digest: first.userOpHash) == stored.sessionKey)
        #expect(first.userOpHash == Self.transfer(Self.usdc, 5_000_000).hashV07(entryPoint: ep, chainId: 11_155_111))

        // Then USE.
        let second = try await agent.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: 11155111, entryPoint: ep, version: .v07, operation: Self.transfer(Self.usdc, 1, nonce: 1))
        #expect(second.mode == .use)
        guard case .use(let pid, let sig) = try SessionSignature(decoding: second.signature) else { Issue.record("not USE"); return }
        #expect(pid == stored.session.permissionId)
        #expect(try RecoverableSignature(bytes: sig).recoverAddress(digest: second.userOpHash) == stored.sessionKey)

        // Outside the scope: another token, or over the spending limit. Nothing is recorded.
        let before = try store.sessionToSign(id: sessionId).ledgers
        await #expect(throws: AgentError.self) {
            try await agent.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: 11155111, entryPoint: ep, version: .v07, operation: Self.transfer(Self.account, 1))
        }
        do {
            _ = try await agent.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: 11155111, entryPoint: ep, version: .v07, operation: Self.transfer(Self.usdc, 95_000_000))
            Issue.record("signed over the spending limit")
        } catch {
            #expect(error.reason == "policy_violation" && error.message.contains("spending limit"), "\(error)")
        }
        #expect(try store.sessionToSign(id: sessionId).ledgers == before)
        // Another chain: refused before anything is reserved, in the mode forced too.
        for force in [nil, SmartSessionMode.use] {
            do {
                _ = try await agent.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: 1, entryPoint: ep, version: .v07,
                                                      operation: Self.transfer(Self.usdc, 1), forceMode: force)
                Issue.record("signed for chain 1, the mode forced to \(String(describing: force))")
            } catch {
                #expect(error.reason == "wrong_chain" && error.message.contains("is not enabled for chain 1"), "\(error)")
            }
        }
        #expect(try store.sessionToSign(id: sessionId).ledgers == before)

        // Another client cannot see or use the session; the key stays in the agent.
        let other = ClientIdentity(uid: 2000, gid: 2000, pid: 1)
        #expect(throws: AgentError.notFound("session \(sessionId)")) { try agent.session(sessionId, client: other) }
        await #expect(throws: AgentError.notFound("session \(sessionId)"), "the session is held decoded now, and still bound") {
            try await agent.signUserOperation(sessionId: sessionId, client: other, chainId: 11155111, entryPoint: ep, version: .v07, operation: Self.transfer(Self.usdc, 1))
        }
        #expect(try agent.sessions(client: other).isEmpty)
        await #expect(throws: AgentError.self) { try await agent.exportKey(sessionId: sessionId, client: Self.bot) }

        let revoked = try await agent.revoke(sessionId: sessionId, client: Self.bot)
        #expect(!revoked.already)
        // Revoking again changes nothing and says when it was revoked. (The denials above are
        // written to the audit log behind their answers: counted once they are in.)
        agent.drain()
        let entries = try store.verifyAudit().get()
        let again = try await agent.revoke(sessionId: sessionId, client: Self.bot)
        let entriesAfter = try store.verifyAudit().get()
        #expect(again.already && again.at == revoked.at && entriesAfter == entries)
        await #expect(throws: AgentError.self) {
            try await agent.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: 11155111, entryPoint: ep, version: .v07, operation: Self.transfer(Self.usdc, 1))
        }
        agent.drain()
        #expect(try store.verifyAudit().get() >= 6)
    }

    /// A session cannot be bound to an executable the agent cannot read, and the refusal says
    /// why: the kernel hides other uids' executables from an agent that is not root (the system
    /// unit), which is told to bind by unit or uid instead.
    @Test func aSessionBoundToAnExecutableTheAgentCannotReadIsRefusedSayingWhy() async throws {
        let (agent, _) = try Self.agent(rules: "default = \"approve\"")
        let unseen = ClientIdentity(uid: Self.bot.uid, gid: 1000, pid: 4343)
        do {
            _ = try await agent.request(Self.example, client: unseen, binding: .executable)
            Issue.record("a session was bound to no executable")
        } catch { #expect(error.reason == "bad_request" && error.message.hasPrefix("the client's executable cannot be read, so the session cannot be bound to it: "), "\(error)") }
        #expect(try agent.sessions(client: nil).isEmpty)

        let replaced = ClientIdentity(uid: 1000, gid: 1000, pid: 4343, unverifiedExecutable: .init(path: "/usr/bin/bot", why: .replaced))
        #expect(Agent.unboundExecutable(replaced, agentUID: 1000).hasSuffix(": /usr/bin/bot is replaced on disk since it started"))
        let otherUID = ClientIdentity(uid: 1001, gid: 1001, pid: 4343)
        #expect(Agent.unboundExecutable(otherUID, agentUID: 998).hasSuffix(
            ": the kernel shows a process's executable only to its own uid and root, and the agent runs as uid 998; bind it by its systemd unit (bindUnit), or give the program a uid of its own"))
        for agentUID: UInt32 in [0, 1001] {
            #expect(Agent.unboundExecutable(otherUID, agentUID: agentUID).hasSuffix(": the process has exited"))
        }
    }

    /// Rules on executables, in an agent that cannot see other uids' executables and admits
    /// other uids, are warned of at start and at each reload: they would quietly never match.
    @Test func rulesOnExecutablesTheAgentCannotSeeAreWarnedOf() throws {
        let named = try RulesFile(toml: "default = \"deny\"\n[[rules]]\nname = \"bot\"\ndecision = \"approve\"\n[rules.match]\nclient_executables = [\"/usr/bin/bot\"]\n")
        let warning = try #require(unseenExecutables(named, agentUID: 998, admitsOthers: true))
        #expect(warning.hasPrefix("the rules name client_executables, but this agent runs as uid 998, not root"), "\(warning)")
        #expect(unseenExecutables(named, agentUID: 0, admitsOthers: true) == nil, "root sees every executable")
        #expect(unseenExecutables(named, agentUID: 998, admitsOthers: false) == nil, "its own uid's it sees")
        #expect(unseenExecutables(try RulesFile(toml: "default = \"deny\"\n[[rules]]\nname = \"bot\"\ndecision = \"approve\"\n[rules.match]\nclient_uids = [1001]\n"),
                                  agentUID: 998, admitsOthers: true) == nil)
    }

    /// A client lists its sessions a page at a time: a page is filled past the sessions of its
    /// uid bound to another executable, which it never sees, nor pages from; `live` leaves out
    /// the revoked ones.
    @Test func sessionsAreListedAPageAtATime() async throws {
        let (agent, _) = try Self.agent(rules: "default = \"approve\"")
        let other = ClientIdentity(uid: Self.bot.uid, gid: 1000, pid: 4343, executable: "/usr/bin/other")
        var mine: [String] = [], others: [String] = []
        for i in 0..<12 {
            let (client, bound) = [(Self.bot, false), (Self.bot, true), (other, true)][i % 3]
            let request = try await agent.request(Self.example, client: client, binding: bound ? .executable : [])
            let id = try #require(request.sessionId)
            if client == Self.bot || !bound { mine.append(id) }
            if client == other || !bound { others.append(id) }
        }
        func listed(_ client: ClientIdentity, live: Bool = false, limit: Int) throws -> [String] {
            var all: [String] = []
            while true {
                let page = try agent.sessions(client: client, live: live, after: all.last, limit: limit).map(\.id)
                #expect(page.count <= limit)
                all += page
                if page.count < limit || all.count > 12 { return all }
            }
        }
        let made = try agent.sessions(client: nil).map(\.id)
        #expect(made.count == 12)
        for limit in [1, 2, 5, 100] {
            #expect(try listed(Self.bot, limit: limit) == made.filter(mine.contains), "limit \(limit)")
            #expect(try listed(other, limit: limit) == made.filter(others.contains), "limit \(limit)")
        }
        let hidden = try #require(others.first { !mine.contains($0) })
        #expect(throws: AgentError.notFound("session \(hidden)")) { try agent.sessions(client: Self.bot, after: hidden, limit: 5) }
        _ = try await agent.revoke(sessionId: mine[1], client: Self.bot)
        #expect(try listed(Self.bot, live: true, limit: 2) == made.filter { mine.contains($0) && $0 != mine[1] })
    }

    @Test func rulesDenyOrAskAPerson() async throws {
        let (agent, _) = try Self.agent()
        let asked = try await agent.request(Self.overTheRulesLimit, client: Self.bot)
        #expect(asked.status == .pending)
        #expect(await agent.pendingRequests().map(\.id) == [asked.id])
        async let waited = agent.wait(asked.id, client: Self.bot, timeout: 30)
        let decided = try await agent.decide(asked.id, approve: true, approver: "operator at the terminal")
        #expect(decided.status == .approved && decided.sessionId != nil)
        #expect(try await waited.status == .approved)
        await #expect(throws: AgentError.self) { try await agent.decide(asked.id, approve: false, approver: "again") }

        // Raw sessions name their own key: the agent refuses them.
        let raw: JSONValue = .object(JSONObject(["account": .string(Self.account.checksummed), "chains": .array([JSONValue(11155111)]), "session": WorkedSession.json]))
        await #expect(throws: AgentError.self) { try await agent.request(raw, client: Self.bot) }
        // A rules file whose default is deny refuses what no rule approves.
        await agent.putInForce(try RulesFile(toml: "default = \"deny\""), from: nil, because: "test")
        let denied = try await agent.request(Self.example, client: Self.bot)
        #expect(denied.status == .denied && denied.reason.contains("denied by rules"))
        await agent.putInForce(try RulesFile(toml: "default = \"ask\""), from: nil, because: "test")
        var unknownAccount = Self.example.objectValue!
        unknownAccount["account"] = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        do {
            _ = try await agent.request(.object(unknownAccount), client: Self.bot)
            Issue.record("accepted an unknown account")
        } catch { #expect(error.reason == "unknown_account") }
        let timedOut = try await agent.wait(try await agent.request(Self.overTheRulesLimit, client: Self.bot).id, client: Self.bot, timeout: 0.05)
        #expect(timedOut.status == .pending)
    }

    /// The owner may take long to sign (a passphrase or PIN prompt, an HSM), and the agent serves
    /// other calls meanwhile: a second decision on the request, or its expiry, must not race the
    /// approval under way. One session comes out, and the request is approved.
    @Test func aRequestBeingApprovedCannotBeDecidedAgain() async throws {
        let (entered, enteredContinuation) = AsyncStream<Void>.makeStream()
        let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
        let clockValue = LockedBox<UInt64>()
        clockValue.value = Self.now
        let prompts = LockedBox<Int>()
        let store = try SessionStore(path: ScratchDirectory.path("agent.sqlite"))
        try store.initialize(passphrase: secret("store"), scryptN: 1024)
        let keystore = try KeystoreOwner(keystore: try Keystore.encrypt(Self.owner, passphrase: secret("owner"), kdf: .scrypt(n: 16, r: 8, p: 1)), location: "test")
        let agent = Agent(store: store, owners: [keystore],
                          accounts: [AccountConfig(address: Self.account, kind: .erc7579Reference, owners: [Self.owner.address], chains: [11155111])],
                          rules: try RulesFile(toml: "default = \"ask\""), approvalTimeout: 60,
                          ownerPrompt: { _ in
                              // Only the first signing waits, so a second one (the race) fails the test instead of hanging it.
                              if prompts.increment() == 1 {
                                  enteredContinuation.yield()
                                  for await _ in release { break }
                              }
                              return secret("owner")
                          },
                          clock: { clockValue.value! })
        let asked = try await agent.request(Self.example, client: Self.bot)
        #expect(asked.status == .pending)

        async let first = agent.decide(asked.id, approve: true, approver: "first")
        for await _ in entered { break }   // the owner is being asked for its passphrase
        #expect(await agent.pendingRequests().isEmpty)
        await #expect { try await agent.decide(asked.id, approve: true, approver: "second") } throws: { error in
            (error as? AgentError)?.reason == "already_decided"
        }
        await #expect(throws: AgentError.self) { try await agent.decide(asked.id, approve: false, approver: "a denial") }
        clockValue.value = Self.now + 120
        await agent.expire()
        releaseContinuation.yield()

        let decided = try await first
        #expect(decided.status == .approved && decided.sessionId != nil)
        #expect(try agent.sessions(client: Self.bot).count == 1)
        #expect(try await agent.requestStatus(asked.id, client: Self.bot).status == .approved)
    }

    /// A decided request stays for its client to learn the outcome, for as long as one may wait
    /// for a decision, and is then forgotten: a long-running agent does not keep every request
    /// (and its review) it ever saw.
    @Test func decidedRequestsAreForgottenAfterAWhile() async throws {
        let store = try SessionStore(path: ScratchDirectory.path("agent.sqlite"))
        try store.initialize(passphrase: secret("store"), scryptN: 1024)
        let keystore = try KeystoreOwner(keystore: try Keystore.encrypt(Self.owner, passphrase: secret("owner"), kdf: .scrypt(n: 16, r: 8, p: 1)), location: "test")
        let clock = LockedBox<UInt64>()
        clock.value = Self.now
        let agent = Agent(store: store, owners: [keystore],
                          accounts: [AccountConfig(address: Self.account, kind: .erc7579Reference, owners: [Self.owner.address], chains: [11155111])],
                          rules: try RulesFile(toml: "default = \"ask\"\n[[rules]]\nname = \"bot\"\ndecision = \"approve\"\n[rules.match]\nclient_uids = [1000]\n"),
                          approvalTimeout: 60, ownerPrompt: { _ in secret("owner") }, clock: { clock.value! })
        let approved = try await agent.request(Self.example, client: Self.bot)
        #expect(approved.status == .approved && approved.decidedAt == Self.now)
        let other = ClientIdentity(uid: 2000, gid: 2000, pid: 1)
        let undecided = try await agent.request(Self.example, client: other)
        #expect(undecided.status == .pending)
        clock.value = Self.now + 59
        await agent.expire()
        #expect(try await agent.requestStatus(approved.id, client: Self.bot).status == .approved)
        #expect(try await agent.requestStatus(undecided.id, client: other).status == .pending)
        clock.value = Self.now + 60
        await agent.expire()
        // Undecided for the whole timeout: refused, and kept a while to say so.
        #expect(try await agent.requestStatus(undecided.id, client: other).status == .expired)
        // Forgotten, and the client is told why, and where its session is.
        await #expect(throws: AgentError("not_found", "request \(approved.id) not found: a decided request is kept 60 s after its decision, and only a uid's newest 256; "
                                                      + "the session of an approved one is in session_list")) {
            try await agent.requestStatus(approved.id, client: Self.bot)
        }
        // The session itself stays, of course.
        #expect(try agent.session(try #require(approved.sessionId), client: Self.bot).id == approved.sessionId)
    }

    /// One client cannot bury the approver under requests: 16 undecided ones per uid, and the
    /// next is refused until one is decided. Another uid is not held up by it.
    @Test func aFloodOfRequestsIsRefusedPastSixteenUndecided() async throws {
        let (agent, _) = try Self.agent()
        for _ in 0..<16 { #expect(try await agent.request(Self.overTheRulesLimit, client: Self.bot).status == .pending) }
        await #expect { try await agent.request(Self.overTheRulesLimit, client: Self.bot) } throws: { error in
            (error as? AgentError)?.reason == "too_many_pending"
        }
        let other = ClientIdentity(uid: 1001, gid: 1001, pid: 7)
        #expect(try await agent.request(Self.overTheRulesLimit, client: other).status == .pending)
        let first = try #require(await agent.pendingRequests().first { $0.client.uid == Self.bot.uid })
        _ = try await agent.decide(first.id, approve: false, approver: "test")
        #expect(try await agent.request(Self.overTheRulesLimit, client: Self.bot).status == .pending)
    }

    /// A client cannot fill the audit log (and the disk the ledger needs) by asking again and
    /// again for what the rules turn down: after 16 in a minute, denied or failed, its requests
    /// are refused unread, and nothing more is written, until that minute is over. Another uid
    /// is heard meanwhile.
    @Test(arguments: [false, true]) func requestsTheRulesKeepTurningDownAreRefusedUnreadPastSixteenAMinute(failing: Bool) async throws {
        let time = Mutex(Self.now), journal = JournalLines()
        let (agent, store) = try Self.agent(rules: failing ? "default = \"approve\"" : "default = \"deny\"",
                                            ownerPrompt: { _ in throw AgentError("secret_needed", "nobody here") }, clock: { time.withLock { $0 } }, journal: journal)
        let refusals = { journal.lines.filter { $0.contains("refused unread") } }
        func ask(_ client: ClientIdentity = Self.bot) async throws -> Agent.RequestStatus {
            do { return try await agent.request(Self.example, client: client).status } catch where error.reason == "secret_needed" {
                return .failed
            }
        }
        let turnedDown: Agent.RequestStatus = failing ? .failed : .denied
        for second in 0..<16 {
            #expect(refusals().isEmpty)
            time.withLock { $0 = Self.now + UInt64(second) }
            #expect(try await ask() == turnedDown)
        }
        // The journal is told once: the refusals that follow are written nowhere.
        #expect(refusals() == ["the rules turned down 16 requests of uid 1000 within a minute; its requests are refused unread for 45 s"])
        let written = try store.auditEntries(after: nil, kind: nil, limit: 10_000).count
        for (second, wait) in [(15, 45), (59, 1)] {
            time.withLock { $0 = Self.now + UInt64(second) }
            await #expect(throws: AgentError("too_many_denied", "the rules turned down 16 requests of uid 1000 within a minute (denied, or approved and then failed); ask again in \(wait) s")) {
                try await agent.request(Self.example, client: Self.bot)
            }
        }
        #expect(try store.auditEntries(after: nil, kind: nil, limit: 10_000).count == written)
        #expect(try await ask(ClientIdentity(uid: 1001, gid: 1001, pid: 7)) == turnedDown)
        time.withLock { $0 = Self.now + 60 }
        #expect(try await ask() == turnedDown)
        #expect(refusals().count == 1)
    }

    /// A client sending what its session does not allow, again and again, cannot fill the audit
    /// log or the journal: 16 refusals of a uid are recorded a minute, one by one; the rest are
    /// refused all the same and counted, and the count is one entry, written when the minute is
    /// over (the next test), before the next one recorded, or when the agent stops. Another
    /// uid's are recorded meanwhile.
    @Test func refusedOperationsAreRecordedSixteenAMinuteAndTheRestCounted() async throws {
        let time = Mutex(Self.now), journal = JournalLines()
        let (agent, store) = try Self.agent(rules: "default = \"approve\"", clock: { time.withLock { $0 } }, journal: journal)
        let other = ClientIdentity(uid: 1001, gid: 1001, pid: 7)
        let ours = try #require(try await agent.request(Self.example, client: Self.bot).sessionId)
        let theirs = try #require(try await agent.request(Self.example, client: other).sessionId)
        let ourSecond = try #require(try await agent.request(Self.example, client: Self.bot).sessionId)
        func refuse(_ sessionId: String, _ client: ClientIdentity, at second: UInt64) async {
            time.withLock { $0 = Self.now + second }
            await #expect { try await agent.signUserOperation(sessionId: sessionId, client: client, chainId: 11155111, entryPoint: EntryPointVersion.v07.canonicalAddress,
                                                              version: .v07, operation: Self.transfer(Self.usdc, 200_000_000)) } throws: { ($0 as? AgentError)?.reason == "policy_violation" }
        }
        func written() throws -> [JSONObject] {
            try store.auditEntries(after: nil, kind: "denied", limit: 10_000).compactMap { $0.entry.objectValue }
        }
        let lines = { journal.lines.filter { $0.contains("refused") } }
        for second in 0..<20 { await refuse(ours, Self.bot, at: UInt64(second)) }
        await refuse(theirs, other, at: 20)
        // What is queued, not the count: the minute is not over.
        agent.signer.writeQueued()
        #expect(try written().count == 17 && lines().count == 17)
        #expect(try written().allSatisfy { $0["countedOnly"] == nil })
        #expect(lines()[15].hasSuffix("; the next refused within 45 s are counted, and written as one entry then"), "\(lines()[15])")
        // The next minute: the four counted are written first, then the refusal.
        await refuse(ours, Self.bot, at: 60)
        agent.signer.writeQueued()
        let (counted, next) = try (#require(written().dropLast().last), #require(written().last))
        #expect(counted == JSONObject(["session": .string(ours), "uid": JSONValue(1000), "countedOnly": JSONValue(4),
                                       "from": .string(String(Self.now + 16)), "until": .string(String(Self.now + 19))]))
        #expect(try next["session"] == .string(ours) && next["countedOnly"] == nil && written().count == 19)
        #expect(lines().suffix(2).first == "uid 1000: 4 more user operations were refused within its minute and counted only, the last on session \(ours)")
        // Counted and not yet written when the agent stops: stopping writes them.
        for second in 61..<78 { await refuse(ours, Self.bot, at: UInt64(second)) }
        await refuse(ourSecond, Self.bot, at: 78)
        agent.signer.writeQueued()
        #expect(try written().count == 34)
        agent.drain()
        let last = try #require(try written().last)
        #expect(try last["countedOnly"] == JSONValue(3) && last["session"] == .string(ourSecond) && written().count == 35)
        #expect(lines().last == "uid 1000: 3 more user operations were refused within its minute and counted only, the last on session \(ourSecond)")
        // Nothing of the refusals counted against the session.
        let signed = try await agent.signUserOperation(sessionId: ours, client: Self.bot, chainId: 11155111, entryPoint: EntryPointVersion.v07.canonicalAddress,
                                                       version: .v07, operation: Self.transfer(Self.usdc, 100_000_000))
        #expect(!signed.signature.isEmpty)
    }

    /// The count reaches the log when the minute is over, though the client asks nothing more.
    @Test func refusalsCountedAreWrittenWhenTheirMinuteIsOver() async throws {
        let time = Mutex(Self.now)
        let (agent, store) = try Self.agent(rules: "default = \"approve\"", clock: { time.withLock { $0 } })
        let ours = try #require(try await agent.request(Self.example, client: Self.bot).sessionId)
        // The last two in the minute's last second: its count is due a second later.
        for second in Array(0..<16) + [59, 59] {
            time.withLock { $0 = Self.now + UInt64(second) }
            await #expect { try await agent.signUserOperation(sessionId: ours, client: Self.bot, chainId: 11155111, entryPoint: EntryPointVersion.v07.canonicalAddress,
                                                              version: .v07, operation: Self.transfer(Self.usdc, 200_000_000)) } throws: { ($0 as? AgentError)?.reason == "policy_violation" }
        }
        // Looked for once more after each wait: the whole suite's tests can be held up for
        // tens of seconds on two cores, and the count may come in the meantime.
        func counted() throws -> JSONValue? {
            try store.auditEntries(after: nil, kind: "denied", limit: 100).compactMap { $0.entry.objectValue?["countedOnly"] }.first
        }
        let deadline = ContinuousClock.now + .seconds(120)
        var found = try counted()
        while found == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            found = try counted()
        }
        #expect(found == JSONValue(2))
        // The timer holds the agent's signer weakly: the agent lives until the count is found.
        withExtendedLifetime(agent) {}
    }

    /// A client cannot fill the audit log by asking for its session key again and again: a uid
    /// is handed 16 keys a minute, each recorded, and the next is refused, not left out of the
    /// log, until that minute is over. Another uid is handed its own meanwhile.
    @Test func aUIDIsHandedSixteenKeysAMinute() async throws {
        let time = Mutex(Self.now)
        let (agent, store) = try Self.agent(rules: "default = \"approve\"", clock: { time.withLock { $0 } })
        var request = Self.example.objectValue!
        request["export"] = true
        let other = ClientIdentity(uid: 1001, gid: 1001, pid: 7)
        let ours = try #require(try await agent.request(.object(request), client: Self.bot).sessionId)
        let theirs = try #require(try await agent.request(.object(request), client: other).sessionId)
        for second in 0..<16 {
            time.withLock { $0 = Self.now + UInt64(second) }
            _ = try await agent.exportKey(sessionId: ours, client: Self.bot)
        }
        await #expect(throws: AgentError("too_many_exports", "uid 1000 was handed 16 session keys within a minute; ask again in 45 s")) {
            try await agent.exportKey(sessionId: ours, client: Self.bot)
        }
        #expect(try store.auditEntries(after: nil, kind: "export", limit: 100).count == 16)
        _ = try await agent.exportKey(sessionId: theirs, client: other)
        time.withLock { $0 = Self.now + 60 }
        _ = try await agent.exportKey(sessionId: ours, client: Self.bot)
        #expect(try store.auditEntries(after: nil, kind: "export", limit: 100).count == 18)
    }

    /// Group commit must not let concurrent operations overspend: with a limit of 10 uses,
    /// exactly 10 of 40 concurrent operations are signed, and the ledger on disk says 10.
    @Test func concurrentSigningNeverExceedsTheLimits() async throws {
        let (agent, store) = try Self.agent()
        let sessionId = try #require(try await agent.request(Self.example, client: Self.bot).sessionId)
        let ep = EntryPointVersion.v07.canonicalAddress
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<40 {
                group.addTask {
                    (try? await agent.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: 11155111, entryPoint: ep, version: .v07,
                                                        operation: Self.transfer(Self.usdc, 1_000_000, nonce: UInt64(i)))) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 10)
        // A second agent on the same file (as after a restart) reads the ledger from disk.
        let restarted = Agent(store: store, owners: [], accounts: [AccountConfig(address: Self.account, kind: .erc7579Reference, owners: [Self.owner.address])],
                              rules: nil, ownerPrompt: { _ in secret("") }, clock: { Self.now })
        do {
            _ = try await restarted.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: 11155111, entryPoint: ep, version: .v07, operation: Self.transfer(Self.usdc, 1))
            Issue.record("an 11th use was signed")
        } catch { #expect(error.reason == "policy_violation", "\(error)") }
        #expect(try store.sessionToSign(id: sessionId).ledgers[11155111]?.counters.values.contains(UInt256(10)) == true)
    }

    /// A person who mistypes the owner's passphrase may type it again: the request stays pending,
    /// and the failed try is in the audit log. The rules have nobody to try again: their
    /// approval fails the request.
    @Test func aPersonMayGiveTheOwnerSecretAgain() async throws {
        let (agent, store) = try Self.agent()
        let asked = try await agent.request(Self.overTheRulesLimit, client: Self.bot)
        let audited = try store.verifyAudit().get()
        do {
            _ = try await agent.decide(asked.id, approve: true, approver: "operator", ownerSecret: secret("typo"))
            Issue.record("approved with a wrong passphrase")
        } catch { #expect(error.reason == "wrong_secret" && error.message.contains("still pending"), "\(error)") }
        #expect(await agent.pendingRequests().map(\.id) == [asked.id])
        #expect(try store.verifyAudit().get() == audited + 1)
        let decided = try await agent.decide(asked.id, approve: true, approver: "operator", ownerSecret: secret("owner"))
        #expect(decided.status == .approved && decided.sessionId != nil)

        // The prompt says what the passphrase is for, since nobody may have watched the rules approve.
        let prompts = LockedBox<[String]>()
        let (ruled, _) = try Self.agent(ownerPrompt: { description in
            prompts.value = (prompts.value ?? []) + [description]
            return secret("typo")
        })
        do {
            _ = try await ruled.request(Self.example, client: Self.bot)
            Issue.record("the rules approved with a wrong passphrase")
        } catch { #expect(error.reason == "wrong_secret" && !error.message.contains("pending"), "\(error)") }
        #expect(await ruled.pendingRequests().isEmpty)
        let prompt = try #require(prompts.value?.first)
        #expect(prompt.hasPrefix("Passphrase for \(Self.owner.address)") && prompt.contains("\(Self.bot) asked for") && prompt.contains("approved by rules"), "\(prompt)")
    }

    /// A 2-of-2 account whose owners have passphrases of their own: the agent names what each
    /// will ask, one passphrase for both fails the second (the request stays pending), and one
    /// per owner approves it.
    @Test func eachOwnerOfAThresholdGetsItsOwnSecret() async throws {
        let second = try Secp256k1.PrivateKey(hex: "0x" + String(repeating: "33", count: 32))
        let store = try SessionStore(path: ScratchDirectory.path("agent.sqlite"))
        try store.initialize(passphrase: secret("store"), scryptN: 1024)
        let owners = try [(Self.owner, "first"), (second, "second")].map { key, passphrase in
            try KeystoreOwner(keystore: try Keystore.encrypt(key, passphrase: secret(passphrase), kdf: .scrypt(n: 16, r: 8, p: 1)), location: passphrase)
        }
        let eitherAccount = try Address("0x000000000000000000000000000000000000E1E1")
        let agent = Agent(store: store, owners: owners,
                          accounts: [AccountConfig(address: Self.account, kind: .erc7579Reference, threshold: 2, owners: [Self.owner.address, second.address], chains: [11155111]),
                                     AccountConfig(address: eitherAccount, kind: .erc7579Reference, threshold: 1, owners: [Self.owner.address, second.address], chains: [11155111])],
                          rules: try RulesFile(toml: "default = \"ask\""), ownerPrompt: { _ in throw AgentError("secret_needed", "nobody here") }, clock: { Self.now })
        let asked = try await agent.request(Self.example, client: Self.bot)
        let asks = try await agent.secretsToApprove(asked.id)
        #expect(asks.map(\.owner) == [.address(Self.owner.address), .address(second.address)])
        #expect(asks.allSatisfy { $0.prompt.hasPrefix("Passphrase for \($0.owner)") })

        do {
            _ = try await agent.decide(asked.id, approve: true, approver: "operator", ownerSecret: secret("first"))
            Issue.record("one passphrase served two owners")
        } catch { #expect(error.reason == "wrong_secret" && error.message.contains("\(second.address)"), "\(error)") }
        let decided = try await agent.decide(asked.id, approve: true, approver: "operator",
                                             ownerSecrets: [.address(Self.owner.address): secret("first"), .address(second.address): secret("second")])
        #expect(decided.status == .approved, "\(decided.reason)")
        let stored = try agent.session(try #require(decided.sessionId), client: Self.bot)
        let (_, combined) = try AccountKind.erc7579Reference.parseERC1271Signature(stored.permissionEnableSig)
        #expect(combined.count == 130)

        // Where either owner suffices, one signs: the other is asked for nothing.
        var either = Self.example.objectValue!
        either["account"] = .string(eitherAccount.checksummed)
        let one = try await agent.request(.object(either), client: Self.bot)
        #expect(try await agent.secretsToApprove(one.id).map(\.owner) == [.address(Self.owner.address)])
        let signedOnce = try await agent.decide(one.id, approve: true, approver: "operator",
                                                ownerSecrets: [.address(Self.owner.address): secret("first"), .address(second.address): secret("second")])
        let (_, single) = try AccountKind.erc7579Reference.parseERC1271Signature(try agent.session(try #require(signedOnce.sessionId), client: Self.bot).permissionEnableSig)
        #expect(single.count == 65)
    }

    /// While the store is locked no session can be stored, so nobody is asked to approve or sign
    /// one for nothing: a new request is refused at once, an approval is refused and leaves the
    /// request pending, and both work after the unlock. A denial needs no store key and works.
    @Test func lockedStoreRefusesNewSessionsBeforeAnyOwnerIsAsked() async throws {
        let prompts = LockedBox<Int>()
        let (agent, store) = try Self.agent(ownerPrompt: { _ in _ = prompts.increment(); return secret("owner") })
        let asked = try await agent.request(Self.overTheRulesLimit, client: Self.bot)
        let toDeny = try await agent.request(Self.overTheRulesLimit, client: Self.bot)
        #expect(asked.status == .pending && toDeny.status == .pending)
        await agent.lock()
        let audited = try store.verifyAudit().get()

        do {
            _ = try await agent.decide(asked.id, approve: true, approver: "operator")
            Issue.record("approved while the store is locked")
        } catch { #expect(error.reason == "locked" && error.message.contains("agent_lock"), "\(error)") }
        #expect(try await agent.requestStatus(asked.id, client: Self.bot).status == .pending)
        do {
            _ = try await agent.request(Self.example, client: Self.bot)   // the rules would approve it
            Issue.record("a request was taken while the store is locked")
        } catch { #expect(error.reason == "locked", "\(error)") }
        #expect(prompts.value == nil)
        #expect(try store.verifyAudit().get() == audited)
        #expect(try await agent.decide(toDeny.id, approve: false, approver: "operator").status == .denied)

        try await agent.unlock(secret("store"))
        #expect(try await agent.decide(asked.id, approve: true, approver: "operator").status == .approved)
        #expect(try await agent.request(Self.example, client: Self.bot).status == .approved)
        #expect(prompts.value == 2)
    }

    /// The store locked while the owners sign a person's approval (the operator's `agent_lock`
    /// as a PIN is typed): the session cannot be stored, and the request stays pending for the
    /// person to approve again after the unlock, as with a mistyped PIN.
    @Test func aStoreLockedWhileTheOwnersSignLeavesThePersonsRequestPending() async throws {
        let locker = LockedBox<Agent>()
        let (agent, store) = try Self.agent(ownerPrompt: { _ in
            if let agent = locker.value { await agent.lock() }
            return secret("owner")
        })
        locker.value = agent
        let asked = try await agent.request(Self.overTheRulesLimit, client: Self.bot)
        do {
            _ = try await agent.decide(asked.id, approve: true, approver: "operator")
            Issue.record("approved into a locked store")
        } catch { #expect(error.reason == "locked" && error.message.contains("still pending"), "\(error)") }
        #expect(try await agent.requestStatus(asked.id, client: Self.bot).status == .pending)
        #expect(try store.sessions(uid: nil).isEmpty)
        locker.value = nil
        try await agent.unlock(secret("store"))
        let decided = try await agent.decide(asked.id, approve: true, approver: "operator")
        #expect(decided.status == .approved && decided.sessionId != nil, "\(decided.reason)")
    }

    /// A rule with `max_live_sessions` approves a client's requests only while it holds fewer
    /// live sessions; past that a person is asked, and one revoked makes room again. Requests
    /// decided side by side count those still being approved, so both cannot fit under a cap
    /// with room for one.
    @Test func aClientGetsNoMoreLiveSessionsThanTheRuleAllows() async throws {
        let (agent, store) = try Self.agent(rules: "default = \"ask\"\n[[rules]]\nname = \"two at a time\"\ndecision = \"approve\"\n[rules.match]\nmax_live_sessions = 2\n")
        let other = ClientIdentity(uid: 1001, gid: 1001, pid: 4343)

        async let first = agent.request(Self.example, client: Self.bot)
        async let second = agent.request(Self.example, client: Self.bot)
        async let third = agent.request(Self.example, client: Self.bot)
        let statuses = try await [first, second, third].map(\.status)
        #expect(statuses.filter { $0 == .approved }.count == 2 && statuses.filter { $0 == .pending }.count == 1, "\(statuses)")
        #expect(try await agent.request(Self.example, client: other).status == .approved, "another client's are its own")

        let held = try store.sessions(uid: Self.bot.uid)
        #expect(held.count == 2)
        _ = try await agent.revoke(sessionId: held[0].id, client: Self.bot)
        #expect(try await agent.request(Self.example, client: Self.bot).status == .approved, "room again after a revocation")
        #expect(try await agent.request(Self.example, client: Self.bot).status == .pending)
    }

    /// A client that revokes each session to ask for a new one frees its place under
    /// `max_live_sessions`, but not under `max_sessions_per_day`: the revoked ones still count,
    /// those of another uid do not, and once a day has passed there is room again.
    @Test func aClientThatRevokesToAskAgainRunsOutOfItsDailySessions() async throws {
        let time = Mutex(Self.now)
        let (agent, store) = try Self.agent(rules: "default = \"ask\"\n[[rules]]\nname = \"one at a time, three a day\"\ndecision = \"approve\"\n[rules.match]\nmax_live_sessions = 1\nmax_sessions_per_day = 3\n",
                                            clock: { time.withLock { $0 } })
        for _ in 0..<3 {
            let request = try await agent.request(Self.example, client: Self.bot)
            #expect(request.status == .approved, "\(request.reason)")
            _ = try await agent.revoke(sessionId: try #require(request.sessionId), client: Self.bot)
        }
        let fourth = try await agent.request(Self.example, client: Self.bot)
        #expect(fourth.status == .pending, "\(fourth.reason)")
        #expect(try await agent.request(Self.example, client: ClientIdentity(uid: 1001, gid: 1001, pid: 4343)).status == .approved)
        #expect(try store.sessionCounts(uid: Self.bot.uid, liveAt: Self.now, madeAfter: 0) == (live: 0, made: 3))
        time.withLock { $0 += 86_400 }
        #expect(try await agent.request(Self.example, client: Self.bot).status == .approved, "a day later")
    }

    /// Under a cap with room for one session, a request whose owner is still signing counts as
    /// held: a second one asked meanwhile waits for a person. Another uid does not see it.
    @Test func aRequestBeingApprovedCountsAsHeld() async throws {
        let signing = Mutex((asked: 0, released: false))
        let (agent, _) = try Self.agent(rules: "default = \"ask\"\n[[rules]]\nname = \"one\"\ndecision = \"approve\"\n[rules.match]\nmax_live_sessions = 1\n",
                                        ownerPrompt: { _ in
            // The first approval's owner waits here until released; any later one answers at once.
            let first = signing.withLock { $0.asked += 1; return $0.asked == 1 }
            while first, !signing.withLock({ $0.released }) { try await Task.sleep(nanoseconds: 1_000_000) }
            return secret("owner")
        })
        // Released however the test ends, so the first approval never waits on.
        defer { signing.withLock { $0.released = true } }
        let first = Task { try await agent.request(Self.example, client: Self.bot) }
        while signing.withLock({ $0.asked }) == 0 { try await Task.sleep(nanoseconds: 1_000_000) }
        let second = try await agent.request(Self.example, client: Self.bot)
        #expect(second.status == .pending, "\(second.status): \(second.reason)")
        let other = ClientIdentity(uid: 2000, gid: 2000, pid: 1)
        await #expect(throws: AgentError.self) { try await agent.requestStatus(second.id, client: other) }
        await #expect(throws: AgentError.self) { try await agent.wait(second.id, client: other, timeout: 0) }
        signing.withLock { $0.released = true }
        #expect(try await first.value.status == .approved)
    }

    /// A client whose requests the rules approve as fast as it asks: the agent keeps its newest
    /// 256 decided requests (for `session_wait`), not every one for five minutes.
    @Test func theDecidedRequestsKeptForAClientAreBounded() async throws {
        let (agent, _) = try Self.agent(rules: "default = \"approve\"")
        var ids: [String] = []
        for _ in 0..<(Agent.maximumDecidedKeptPerUID + 20) {
            let decided = try await agent.request(Self.example, client: Self.bot)
            #expect(decided.status == .approved)
            ids.append(decided.id)
        }
        for (i, id) in ids.enumerated() {
            let kept = (try? await agent.requestStatus(id, client: Self.bot)) != nil
            #expect(kept == (i >= 20), "request \(i)")
        }
        let other = ClientIdentity(uid: 1001, gid: 1001, pid: 4343)
        let theirs = try await agent.request(Self.example, client: other)
        _ = try await agent.request(Self.example, client: Self.bot)
        #expect(try await agent.requestStatus(theirs.id, client: other).status != .pending, "another client's are kept apart")
    }

    @Test func lockedStoreSignsNothingUntilUnlocked() async throws {
        let (agent, store) = try Self.agent()
        let sessionId = try #require(try await agent.request(Self.example, client: Self.bot).sessionId)
        let ep = EntryPointVersion.v07.canonicalAddress
        func sign() async throws(AgentError) -> Agent.SignedOperation {
            try await agent.signUserOperation(sessionId: sessionId, client: Self.bot, chainId: 11155111, entryPoint: ep, version: .v07, operation: Self.transfer(Self.usdc, 1))
        }
        let before = try store.sessionToSign(id: sessionId).ledgers
        await agent.lock()
        do { _ = try await sign(); Issue.record("signed while locked") } catch { #expect(error.reason == "locked", "\(error)") }
        #expect(try store.sessionToSign(id: sessionId).ledgers == before)
        do { try await agent.unlock(secret("wrong")); Issue.record("unlocked with a wrong passphrase") } catch { #expect(store.isLocked) }
        try await agent.unlock(secret("store"))
        #expect(try await sign().mode == .enable)

        // A new store: the first unlock chooses the passphrase, later ones must repeat it.
        let fresh = try SessionStore(path: ScratchDirectory.path("fresh.sqlite"))
        let blank = Agent(store: fresh, owners: [], accounts: [], rules: nil, ownerPrompt: { _ in secret("") })
        try await blank.unlock(secret("chosen"))
        #expect(try fresh.isInitialized && !fresh.isLocked)
        await blank.lock()
        await #expect(throws: AgentError.self) { try await blank.unlock(secret("other")) }
        try await blank.unlock(secret("chosen"))
    }
}
