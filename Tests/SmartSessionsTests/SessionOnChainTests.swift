import EthereumCore
import Foundation
import SmartSessions
import Testing
import TestSupport

/// What the agent reads on chain to tell a session's state there, and what it makes of it.
@Suite("A session's state on chain")
struct SessionOnChainTests {
    /// Every view call, for random sessions with every stateful policy: the same set of
    /// (contract, calldata) as eth-abi encodes from the contracts' signatures, with the config
    /// ids the oracle derives itself; a policy SmartSession holds once is read once.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func theReadsAreTheContractsGettersForTheSessionsSlots() throws {
        let cases = try Oracle.cases("chain-reads", count: 300)
        #expect(cases.count == 300)
        var counters = 0, unreadable = 0
        for c in cases {
            let context = "seed \(Oracle.seed), account \(try c.string("account"))"
            let reads = SessionOnChainReads(session: try Session(json: try #require(c["session"])), account: try Address(try c.string("account")))
            let calls = ([reads.installed, reads.enabled, reads.nonce] + reads.counters.map(\.call)).map { "\($0.to.lowercased):\(Hex.encode($0.data))" }
            #expect(Set(calls).count == calls.count, "a getter asked twice, \(context)")
            #expect(calls.sorted() == (c["calls"]?.arrayValue ?? []).compactMap(\.stringValue), "\(context)")
            #expect(reads.unreadable.map(\.description).sorted() == (c["unreadable"]?.arrayValue ?? []).compactMap(\.stringValue), "\(context)")
            counters += reads.counters.count
            unreadable += reads.unreadable.count
        }
        // The cases reach every getter, and limited rules, many times.
        #expect(counters > 300 && unreadable > 30, "\(counters) counter reads, \(unreadable) unreadable")
    }

    /// The selectors, as the deployed artifacts list them (erc7579/smartsessions `artifacts/*`
    /// `methodIdentifiers`, and ERC-7579's `isModuleInstalled`).
    @Test func theSelectorsAreTheDeployedContracts() throws {
        let account = try Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6"), token = try Address("0x1c7d4b196cb0c7b01d743fbc6116a902379c7238")
        let session = Session(
            sessionValidator: SmartSessionAddresses.ownableValidator, sessionValidatorInitData: Array(repeating: 1, count: 20), salt: .zero,
            userOpPolicies: [PolicyData(policy: PolicyRegistry.address(of: .usageLimit), initData: Array(UInt256(5).bigEndianBytes.suffix(16))),
                             PolicyData(policy: PolicyRegistry.address(of: .simpleGas), initData: Array(repeating: 1, count: 32))],
            actions: [ActionData(actionTargetSelector: KnownSelectors.erc20Transfer, actionTarget: token, actionPolicies: [
                PolicyData(policy: PolicyRegistry.address(of: .erc20SpendingLimit), initData: try ABI.encode([.array([.address(token)]), .array([.uint(100)])], as: [.array(.address), .array(.uint256)])),
                PolicyData(policy: PolicyRegistry.address(of: .valueLimit), initData: UInt256(7).bigEndianBytes),
            ])])
        let reads = SessionOnChainReads(session: session, account: account)
        #expect(Hex.encode(reads.installed.data.prefix(4)) == "0x112d3a7d")
        #expect(Hex.encode(reads.enabled.data.prefix(4)) == "0xadbc532f")
        #expect(Hex.encode(reads.nonce.data.prefix(4)) == "0x795f9269")
        let selectors = Dictionary(reads.counters.map { ($0.call.to, Hex.encode($0.call.data.prefix(4))) }, uniquingKeysWith: { a, _ in a })
        #expect(selectors == [PolicyRegistry.address(of: .usageLimit): "0x831b65a5", PolicyRegistry.address(of: .valueLimit): "0x831b65a5",
                              PolicyRegistry.address(of: .simpleGas): "0x703c59c0", PolicyRegistry.address(of: .erc20SpendingLimit): "0xf33fa13a"])
    }

    /// Answers are read strictly: another length, or a bool that is not 0 or 1, is refused.
    @Test func anAnswerOfAnotherShapeIsRefused() throws {
        let reads = SessionOnChainReads(session: Self.session, account: Self.account)
        #expect(try reads.enabled.flag(UInt256(1).bigEndianBytes))
        #expect(try reads.nonce.integer(UInt256(9).bigEndianBytes) == 9)
        for bad in [[], Array(repeating: 0, count: 31), UInt256(2).bigEndianBytes, UInt256(1).bigEndianBytes + [0]] as [[UInt8]] {
            #expect(throws: SmartSessionError.self, "\(bad)") { try reads.enabled.flag(bad) }
        }
        let usage = try #require(reads.counters.first { $0.call.function.name == "getUsed" })
        // UsageLimitPolicy answers a uint128: a larger word is not its answer.
        #expect(throws: SmartSessionError.self) { try SessionOnChainState.counters(of: usage, answer: UInt256(1).shiftedLeft(130).bigEndianBytes) }
        #expect(try SessionOnChainState.counters(of: usage, answer: UInt256(3).bigEndianBytes).values.first == 3)
    }

    /// Each getter's outputs go to the counters they are: SimpleGasPolicy answers (gasLimit,
    /// gasUsed, costLimit, costUsed), ERC20SpendingLimitPolicy (spendingLimit, alreadySpent,
    /// approvedAmount).
    @Test func eachOutputIsTheCounterItNames() throws {
        let token = try Address("0x1c7d4b196cb0c7b01d743fbc6116a902379c7238")
        let session = Session(
            sessionValidator: SmartSessionAddresses.ownableValidator, sessionValidatorInitData: Array(repeating: 3, count: 20),
            userOpPolicies: [PolicyData(policy: PolicyRegistry.address(of: .simpleGas), initData: Array(repeating: 1, count: 32))],
            actions: [ActionData(actionTargetSelector: KnownSelectors.erc20Transfer, actionTarget: token, actionPolicies: [
                PolicyData(policy: PolicyRegistry.address(of: .erc20SpendingLimit), initData: try ABI.encode([.array([.address(token)]), .array([.uint(100)])], as: [.array(.address), .array(.uint256)])),
            ])])
        let reads = SessionOnChainReads(session: session, account: Self.account)
        func read(_ kind: PolicyKind, _ outputs: [UInt64]) throws -> [String: String] {
            let r = try #require(reads.counters.first { $0.call.to == PolicyRegistry.address(of: kind) })
            let counters = try SessionOnChainState.counters(of: r, answer: outputs.flatMap { UInt256($0).bigEndianBytes })
            return Dictionary(uniqueKeysWithValues: counters.map { ($0.key.counter, $0.value.description) })
        }
        #expect(try read(.simpleGas, [10, 11, 12, 13]) == ["gasUsed": "11", "costUsed": "13"])
        #expect(try read(.erc20SpendingLimit, [10, 11, 12]) == ["spent:\(token.lowercased)": "11", "approved:\(token.lowercased)": "12"])
    }

    static let account = try! Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
    static let usage = PolicyRegistry.address(of: .usageLimit)
    static let session = Session(
        sessionValidator: SmartSessionAddresses.ownableValidator, sessionValidatorInitData: Array(repeating: 2, count: 20), salt: .zero,
        userOpPolicies: [PolicyData(policy: usage, initData: Array(UInt256(10).bigEndianBytes.suffix(16)))])

    static func report(_ state: SessionOnChainState, ledger: PolicyLedger = PolicyLedger(), enabledHere: Bool, signedNonce: UInt256? = 0) -> SessionChainReport {
        SessionChainReport(chainId: 8453, reads: SessionOnChainReads(session: session, account: account), state: state, ledger: ledger,
                           enabledHere: enabledHere, signedNonce: signedNonce)
    }

    static func state(deployed: Bool = true, installed: Bool? = true, enabled: Bool, nonce: UInt256 = 0, used: UInt256? = nil) -> SessionOnChainState {
        let key = LedgerKey(policy: usage, configId: SessionIds.configId(account: account, id: session.permissionId), counter: "used")
        return SessionOnChainState(block: 7, deployed: deployed, installed: installed, enabled: enabled, nonce: nonce, counters: used.map { [key: $0] } ?? [:])
    }

    static func reasons(_ r: SessionChainReport) -> [String] { r.findings.map(\.reason) }

    /// Enabled or not on chain, beside whether the agent enabled it, and what the owners'
    /// enable signature can still do at the chain's nonce.
    @Test func theChainsEnablingIsSetBesideTheAgents() {
        #expect(Self.reasons(Self.report(Self.state(enabled: true), enabledHere: true)) == ["enabled"])
        #expect(Self.report(Self.state(enabled: true), enabledHere: true).severity == .info)
        #expect(Self.reasons(Self.report(Self.state(enabled: true), enabledHere: false)) == ["enabled_elsewhere"])
        #expect(Self.reasons(Self.report(Self.state(enabled: false), enabledHere: true)) == ["not_enabled_yet"])
        #expect(Self.reasons(Self.report(Self.state(enabled: false, nonce: 4), enabledHere: false, signedNonce: 4)) == ["enable_outstanding"])
        #expect(Self.reasons(Self.report(Self.state(enabled: false, nonce: 5), enabledHere: false, signedNonce: 4)) == ["enable_signature_spent"])
        #expect(Self.reasons(Self.report(Self.state(enabled: false, nonce: 3), enabledHere: false, signedNonce: 4)) == ["enable_signature_early"])
        #expect(Self.reasons(Self.report(Self.state(enabled: false, nonce: 3), enabledHere: false, signedNonce: nil)) == ["not_enabled"])
        // The account: not deployed yet, SmartSession not installed, or no ERC-7579 answer.
        #expect(Self.reasons(Self.report(Self.state(deployed: false, installed: nil, enabled: false), enabledHere: false)) == ["not_deployed", "enable_outstanding"])
        let uninstalled = Self.report(Self.state(installed: false, enabled: false), enabledHere: false)
        #expect(Self.reasons(uninstalled) == ["not_installed", "enable_outstanding"] && uninstalled.severity == .critical)
        #expect(Self.reasons(Self.report(Self.state(installed: nil, enabled: false), enabledHere: false)) == ["install_unknown", "enable_outstanding"])
        // Revoked here: ended, or still to be ended on chain.
        func revoked(_ state: SessionOnChainState, exported: Bool = false) -> [String] {
            Self.reasons(SessionChainReport(chainId: 8453, reads: SessionOnChainReads(session: Self.session, account: Self.account), state: state,
                                            ledger: PolicyLedger(), enabledHere: true, signedNonce: 0, revoked: true, keyMayBeElsewhere: exported))
        }
        #expect(revoked(Self.state(enabled: true)) == ["revoked_but_enabled"])
        #expect(revoked(Self.state(enabled: false)) == ["ended"] && revoked(Self.state(enabled: false, nonce: 1), exported: true) == ["ended"])
        #expect(revoked(Self.state(enabled: false), exported: true) == ["revoked_enable_outstanding"])
    }

    /// The ledger may be ahead of the chain (signed, not yet included); a chain ahead of the
    /// ledger is critical: the session was used outside the agent.
    @Test func aChainThatCountedMoreThanTheAgentSignedIsCritical() {
        let key = LedgerKey(policy: Self.usage, configId: SessionIds.configId(account: Self.account, id: Self.session.permissionId), counter: "used")
        let ledger = PolicyLedger(counters: [key: 3])
        let inStep = Self.report(Self.state(enabled: true, used: 3), ledger: ledger, enabledHere: true)
        #expect(Self.reasons(inStep) == ["enabled"] && inStep.counters.map { [$0.key.description, $0.local.description, $0.chain.description] } == [[key.description, "3", "3"]])
        let behind = Self.report(Self.state(enabled: true, used: 1), ledger: ledger, enabledHere: true)
        #expect(Self.reasons(behind) == ["enabled", "pending"] && behind.severity == .info)
        let ahead = Self.report(Self.state(enabled: true, used: 4), ledger: ledger, enabledHere: true)
        #expect(Self.reasons(ahead) == ["enabled", "counted_elsewhere"] && ahead.severity == .critical)
        #expect(ahead.findings[1].message.contains("the chain counted 4, this agent signed for 3"), "\(ahead.findings[1].message)")
        // Not when its key may have been handed to its client, which signs without the agent.
        let exported = SessionChainReport(chainId: 8453, reads: SessionOnChainReads(session: Self.session, account: Self.account), state: Self.state(enabled: true, used: 4),
                                          ledger: ledger, enabledHere: false, signedNonce: 0, keyMayBeElsewhere: true)
        #expect(Self.reasons(exported) == ["enabled_by_client", "signed_by_client"] && exported.severity == .warning)
        // A counter the agent never moved is zero in its ledger.
        #expect(Self.reasons(Self.report(Self.state(enabled: true, used: 1), enabledHere: true)) == ["enabled", "counted_elsewhere"])
    }
}
