@testable import Agent
import EthereumCore
import Foundation
import SessionStore
import SmartSessions
import Synchronization
import Testing
import TestSupport
import TestTraits

/// The account's own user operations (install SmartSession, enable sessions by call, end
/// sessions), built by the agent, shown, and signed by the owners, in-process with the real
/// store and a keystore owner. The owners' signature is checked by the oracle (eth-abi's
/// userOpHash, eth-account's EIP-191 recovery), as OwnableValidator's validateUserOp checks it.
@Suite("Account operations: the owners sign the account's own user operations", .scratchDirectory)
struct AccountOperationTests {
    static let chain: UInt64 = 11155111
    static let entryPoint = EntryPointVersion.v07.canonicalAddress
    static let bot = AgentFlowTests.bot

    /// What a bundler gives: gas, fees, and the nonce for the owners' validator; no callData.
    static func userOp(kind: AccountKind = .erc7579Reference, key: UInt256? = nil, sequence: UInt64 = 3, callGas: UInt64 = 200_000) -> JSONObject {
        var op = UserOperation(sender: AgentFlowTests.account,
                               nonce: (key ?? kind.nonceKey(validator: SmartSessionAddresses.ownableValidator)).shiftedLeft(64) | UInt256(sequence))
        (op.callGasLimit, op.verificationGasLimit, op.preVerificationGas) = (UInt256(callGas), 150_000, 50_000)
        (op.maxFeePerGas, op.maxPriorityFeePerGas) = (2_000_000_000, 1_000_000)
        var object = op.json.objectValue!
        object["callData"] = nil
        object["signature"] = nil
        return object
    }

    static func request(_ kind: Agent.AccountOperationRequest.Kind, _ sessions: [String] = [], permissionIds: [Bytes32] = [],
                        op: JSONObject = userOp()) -> Agent.AccountOperationRequest {
        .init(account: AgentFlowTests.account, chainId: chain, entryPoint: entryPoint, version: .v07, kind: kind, sessionIds: sessions,
              permissionIds: permissionIds, userOperation: op)
    }

    static func approvedSession(_ agent: Agent) async throws -> String {
        let request = try await agent.request(AgentFlowTests.example, client: bot)
        return try #require(request.sessionId, "\(request.reason)")
    }

    static func calls(_ signed: Agent.PreparedAccountOperation) throws -> ExecuteCall {
        try ExecuteCall(calldata: try Hex.decode(try #require(signed.userOperation["callData"]?.stringValue)))
    }

    /// A revoked session, and one the store never held, ended on chain: removeSession and
    /// revokeEnableSignature for each, in one batch, signed by the owner over the EIP-191 message
    /// of the userOpHash; the review names what it ends and what it may cost.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func aRevokedSessionIsEndedOnChainByAUserOperationItsOwnersSign() async throws {
        let (agent, store) = try AgentFlowTests.agent()
        let id = try await Self.approvedSession(agent)
        _ = try await agent.revoke(sessionId: id, client: Self.bot)
        let permissionId = try agent.session(id, client: nil).session.permissionId
        let elsewhere = Bytes32([UInt8](repeating: 0xab, count: 32))
        let request = Self.request(.end, [id], permissionIds: [elsewhere])

        let prepared = try await agent.prepareAccountOperation(request)
        for shown in [id, permissionId.hex, "revoked", elsewhere.hex, "(no session of the store)", "a batch of 4 calls", prepared.userOpHash.hex,
                      "nonce sequence 3", "The account pays: at most 0.0008 ETH"] {
            #expect(prepared.text.contains(shown), "\(shown) in \(prepared.text)")
        }
        #expect(prepared.userOperation["signature"]?.stringValue == Hex.encode(OwnableValidatorConfig.mockSignature), "a dummy for the gas estimate")
        let signed = try await agent.signAccountOperation(request, shown: prepared.userOpHash, approver: "test")
        #expect(signed.userOpHash == prepared.userOpHash)
        #expect(try Self.calls(signed) == (try AccountOperation.end(permissionIds: [permissionId, elsewhere]).call(account: AgentFlowTests.account, kind: .erc7579Reference)))
        let scratch = URL(fileURLWithPath: ScratchDirectory.path("oracle")).deletingLastPathComponent()
        let checked = try Oracle.ownerUserOpSigners([.object(signed.userOperation)], chainId: Self.chain, in: scratch)
        #expect(checked.map(\.userOpHash) == [signed.userOpHash.hex])
        #expect(checked.map(\.signers) == [[AgentFlowTests.owner.address.checksummed]])

        let entries = try store.auditEntries(after: nil, kind: "account_operation", limit: 10)
        #expect(entries.count == 1)
        #expect(entries.first?.entry["userOpHash"]?.stringValue == signed.userOpHash.hex && entries.first?.entry["operation"] == "end")
    }

    /// Sessions enabled by the account's call are then used in USE mode, with their limits
    /// counted from the start; one enabled already (by an ENABLE signature, or by a call) is not
    /// enabled again, which would start its limits over on chain.
    @Test func sessionsEnabledByTheAccountsCallAreUsedInUSEModeAndNeverEnabledTwice() async throws {
        let (agent, store) = try AgentFlowTests.agent()
        let byCall = try await Self.approvedSession(agent), bySignature = try await Self.approvedSession(agent)
        let transfer = AgentFlowTests.transfer(AgentFlowTests.usdc, 1_000_000)
        let first = try await agent.signUserOperation(sessionId: bySignature, client: Self.bot, chainId: Self.chain, entryPoint: Self.entryPoint, version: .v07, operation: transfer)
        #expect(first.mode == .enable)
        await #expect { try await agent.prepareAccountOperation(Self.request(.enable, [byCall, bySignature])) } throws: { error in
            (error as? AgentError)?.reason == "already_enabled" && "\(error)".contains(bySignature)
        }

        // Held decoded by the agent now (read for an operation it refused), so its cached state must change too.
        await #expect(throws: AgentError.self) {
            try await agent.signUserOperation(sessionId: byCall, client: Self.bot, chainId: Self.chain, entryPoint: Self.entryPoint, version: .v07,
                                              operation: AgentFlowTests.transfer(AgentFlowTests.account, 1))
        }

        let request = Self.request(.enable, [byCall])
        let prepared = try await agent.prepareAccountOperation(request)
        #expect(prepared.text.contains("in USE mode"), "\(prepared.text)")
        let signed = try await agent.signAccountOperation(request, shown: prepared.userOpHash, approver: "test")
        let call = try Self.calls(signed)
        #expect(call.executions.count == 1 && call.executions[0].target == SmartSessionAddresses.smartSession)
        #expect(try ModuleCalls.decodeEnableSessions(call.executions[0].callData) == [try agent.session(byCall, client: nil).session])

        let used = try await agent.signUserOperation(sessionId: byCall, client: Self.bot, chainId: Self.chain, entryPoint: Self.entryPoint, version: .v07, operation: transfer)
        #expect(used.mode == .use)
        await #expect { try await agent.prepareAccountOperation(Self.request(.install, [byCall])) } throws: { error in
            (error as? AgentError)?.reason == "already_enabled"
        }
        // On disk, for an agent started again.
        agent.drain()
        #expect(try store.sessionToSign(id: byCall).enabledChains == [Self.chain])
        #expect(try store.auditEntries(after: nil, kind: "enabled_by_account", limit: 10).count == 1)
    }

    /// A session enabled on the chain while the owners sign its enabling operation (the
    /// client's first user operation, in ENABLE mode, came in meanwhile) is not enabled again:
    /// the signed operation is not given out, and nothing is recorded.
    @Test func aSessionEnabledWhileTheOwnersSignIsNotEnabledAgain() async throws {
        let (entered, enteredContinuation) = AsyncStream<Void>.makeStream()
        let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
        let hold = Mutex(false)
        let (agent, store) = try AgentFlowTests.agent(ownerPrompt: { _ in
            if hold.withLock({ $0 }) {
                enteredContinuation.yield()
                for await _ in release { break }
            }
            return secret("owner")
        })
        let id = try await Self.approvedSession(agent)
        let request = Self.request(.enable, [id])
        let prepared = try await agent.prepareAccountOperation(request)
        hold.withLock { $0 = true }
        let signing = Task { try await agent.signAccountOperation(request, shown: prepared.userOpHash, approver: "test") }
        for await _ in entered { break }
        let first = try await agent.signUserOperation(sessionId: id, client: Self.bot, chainId: Self.chain, entryPoint: Self.entryPoint, version: .v07,
                                                      operation: AgentFlowTests.transfer(AgentFlowTests.usdc, 1))
        #expect(first.mode == .enable)
        releaseContinuation.yield()
        await #expect { try await signing.value } throws: { error in
            (error as? AgentError)?.reason == "already_enabled" && "\(error)".contains("while the owners signed")
        }
        #expect(try store.auditEntries(after: nil, kind: "account_operation", limit: 10).isEmpty)
        #expect(try store.auditEntries(after: nil, kind: "enabled_by_account", limit: 10).isEmpty)
    }

    /// Kernel v3.1: SmartSession is installed with its hook "none" and the execute selector
    /// granted, and the nonce may name the root validator (type 0x00) or the owners' own (0x01),
    /// never another.
    @Test func aKernelAccountInstallsSmartSessionAsKernelReadsIt() async throws {
        let (agent, _) = try AgentFlowTests.agent(kind: .kernel)
        let id = try await Self.approvedSession(agent)
        let session = try agent.session(id, client: nil).session
        let owners = UInt256(bigEndian: [0, 1] + SmartSessionAddresses.ownableValidator.bytes + [0, 0])
        for key in [AccountKind.kernel.nonceKey(validator: SmartSessionAddresses.ownableValidator), owners] {
            let prepared = try await agent.prepareAccountOperation(Self.request(.install, [id], op: Self.userOp(kind: .kernel, key: key)))
            let call = try ExecuteCall(calldata: try Hex.decode(try #require(prepared.userOperation["callData"]?.stringValue)))
            #expect(call.executions.map(\.target) == [AgentFlowTests.account])
            #expect(call.executions[0].callData == ModuleCalls.installValidator(SmartSessionAddresses.smartSession,
                                                                                initData: AccountKind.kernel.validatorInstallData(try ModuleCalls.onInstallData(sessions: [session]))))
        }
        let another = UInt256(bigEndian: [0, 1] + SmartSessionAddresses.smartSession.bytes + [0, 0])
        await #expect { try await agent.prepareAccountOperation(Self.request(.install, [id], op: Self.userOp(kind: .kernel, key: another))) } throws: { error in
            (error as? AgentError)?.reason == "bad_request" && "\(error)".contains("not the owners'")
        }
    }

    /// Only the operation shown is signed, and what the agent cannot sign is refused with a
    /// reason before any owner is asked, leaving the store as it was.
    @Test func onlyTheOperationShownIsSignedAndBadInputChangesNothing() async throws {
        let asked = Mutex(0)
        let (agent, store) = try AgentFlowTests.agent(ownerPrompt: { _ in asked.withLock { $0 += 1 }; return secret("owner") })
        let id = try await Self.approvedSession(agent)
        let askedForTheSession = asked.withLock { $0 }
        let before = try store.auditEntries(after: nil, kind: nil, limit: 1000).count

        let prepared = try await agent.prepareAccountOperation(Self.request(.end, [id]))
        await #expect { try await agent.signAccountOperation(Self.request(.end, [id], op: Self.userOp(callGas: 900_000)), shown: prepared.userOpHash, approver: "test") } throws: { error in
            (error as? AgentError)?.reason == "changed"
        }
        var otherCall = Self.userOp(), otherSender = Self.userOp()
        otherCall["callData"] = .string(Hex.encode(ExecuteCall.single(Execution(target: AgentFlowTests.usdc, callData: [1, 2, 3, 4])).calldata))
        otherSender["sender"] = .string(AgentFlowTests.usdc.checksummed)
        let smartSessionKey = AccountKind.erc7579Reference.nonceKey(validator: SmartSessionAddresses.smartSession)
        let refused: [(Agent.AccountOperationRequest, String, String)] = [
            (Self.request(.end, [id], op: Self.userOp(key: smartSessionKey)), "bad_request",
             "getNonce(\(AgentFlowTests.account.checksummed), \(AccountKind.erc7579Reference.nonceKey(validator: SmartSessionAddresses.ownableValidator).hexQuantity))"),
            (Self.request(.end, [id], op: otherCall), "bad_request", "the agent writes it"),
            (Self.request(.end, [id], op: otherSender), "bad_request", "params.userOperation.sender"),
            (Self.request(.end, ["sess-nope"]), "not_found", "sess-nope"),
            (Self.request(.end, [id, id]), "bad_request", "listed twice"),
            (Self.request(.end), "bad_request", "at least one"),
            (Self.request(.enable), "bad_request", "at least one"),
            (Self.request(.enable, [id], permissionIds: [.zero]), "bad_request", "only for end"),
            (.init(account: AgentFlowTests.account, chainId: 1, entryPoint: Self.entryPoint, version: .v07, kind: .end, sessionIds: [id], userOperation: Self.userOp()),
             "wrong_chain", "not 1"),
            (.init(account: AgentFlowTests.usdc, chainId: Self.chain, entryPoint: Self.entryPoint, version: .v07, kind: .install, userOperation: Self.userOp()),
             "unknown_account", "no account"),
        ]
        for (request, reason, words) in refused {
            do {
                _ = try await agent.signAccountOperation(request, shown: prepared.userOpHash, approver: "test")
                Issue.record("signed \(request.kind) \(request.sessionIds)")
            } catch {
                #expect(error.reason == reason && error.message.contains(words), "\(error)")
            }
        }
        // A revoked session is not enabled again.
        _ = try await agent.revoke(sessionId: id, client: Self.bot)
        await #expect { try await agent.prepareAccountOperation(Self.request(.enable, [id])) } throws: { error in (error as? AgentError)?.reason == "revoked" }
        #expect(asked.withLock { $0 } == askedForTheSession)
        #expect(try store.auditEntries(after: nil, kind: nil, limit: 1000).count == before + 1, "the revocation's entry alone")
    }
}
