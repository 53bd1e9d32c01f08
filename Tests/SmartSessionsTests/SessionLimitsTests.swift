import EthereumCore
import SmartSessions
import Testing
import TestSupport

/// What a client is told is left of its session's limits must be what the check still lets
/// through: no more (it would be refused), no less (it would stop short).
@Suite("What is used and left of a session's limits")
struct SessionLimitsTests {
    typealias R = PolicyRuleTests
    static let approve = Selector(rawValue: 0x095e_a7b3)
    static let session = R.session(
        userOp: [.usageLimit(40), .valueLimit(500)],
        actions: [R.action(R.token, Selector(rawValue: 0xa905_9cbb), [.erc20SpendingLimit([TokenLimit(token: R.token, limit: 1_000)]), .usageLimit(25)]),
                  R.action(R.token, approve, [.erc20SpendingLimit([TokenLimit(token: R.token, limit: 300)])]),
                  R.action(R.beef, .valueTransfer, [.valueLimit(400)])])

    /// The limits by what they count, for one scope.
    func used(_ limits: [SessionLimit], _ scope: SessionLimit.Scope, _ measure: SessionLimit.Measure) -> (used: UInt256, remaining: UInt256)? {
        limits.first { $0.scope == scope && $0.measure == measure }.map { ($0.used, $0.remaining) }
    }

    @Test func randomOperationsCountAsTheCheckCounts() throws {
        let checker = PolicyChecker(session: Self.session, account: R.account)
        let transfers = SessionLimit.Scope.action(ActionKey(target: R.token, selector: Selector(rawValue: 0xa905_9cbb)))
        let approvals = SessionLimit.Scope.action(ActionKey(target: R.token, selector: Self.approve))
        let sends = SessionLimit.Scope.action(ActionKey(target: R.beef, selector: .valueTransfer))
        let approveCall = try ABIFunction(parsing: "approve(address spender, uint256 amount)")
        var random = SplitMix64(seed: 0x11_4175)
        var ledger = PolicyLedger()
        // What the test counts itself, from the operations the check let through.
        var operations: UInt256 = 0, transferred: UInt256 = 0, transferCount: UInt256 = 0, approved: UInt256 = 0, sent: UInt256 = 0
        for step in 0..<300 {
            var executions: [Execution] = []
            var adds = (transferred: UInt256(0), transfers: UInt256(0), approved: UInt256(0), sent: UInt256(0))
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let amount = UInt64.random(in: 0...90, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0:
                    executions.append(Execution(target: R.token, callData: try R.transfer.encodeCall([.address(R.beef), .uint(UInt256(amount))])))
                    adds.transferred = adds.transferred.addingReportingOverflow(UInt256(amount)).partialValue
                    adds.transfers = adds.transfers.addingReportingOverflow(1).partialValue
                case 1:
                    executions.append(Execution(target: R.token, callData: try approveCall.encodeCall([.address(R.beef), .uint(UInt256(amount))])))
                    adds.approved = adds.approved.addingReportingOverflow(UInt256(amount)).partialValue
                default:
                    executions.append(Execution(target: R.beef, value: UInt256(amount)))
                    adds.sent = adds.sent.addingReportingOverflow(UInt256(amount)).partialValue
                }
            }
            let op = R.op(executions.count == 1 ? .single(executions[0]) : .batch(executions))
            if case .success(let allowance) = checker.check(op, ledger: ledger) {
                ledger.apply(allowance.delta)
                operations = operations.addingReportingOverflow(1).partialValue
                transferred = transferred.addingReportingOverflow(adds.transferred).partialValue
                transferCount = transferCount.addingReportingOverflow(adds.transfers).partialValue
                approved = approved.addingReportingOverflow(adds.approved).partialValue
                sent = sent.addingReportingOverflow(adds.sent).partialValue
            }
            let limits = checker.limits(ledger: ledger)
            #expect(limits.count == 6, "step \(step)")
            #expect(limits.prefix(2).allSatisfy { $0.scope == .userOperation }, "the user-operation policies first")
            #expect(used(limits, .userOperation, .uses)?.used == operations, "step \(step)")
            #expect(used(limits, .userOperation, .nativeValue)?.used == sent, "step \(step)")
            #expect(used(limits, transfers, .token(R.token))?.used == transferred, "step \(step)")
            #expect(used(limits, transfers, .uses)?.used == transferCount, "step \(step)")
            #expect(used(limits, approvals, .token(R.token))?.used == approved, "step \(step)")
            #expect(used(limits, sends, .nativeValue)?.used == sent, "step \(step)")

            // The boundary: exactly what is left passes, one more base unit does not.
            guard let left = used(limits, transfers, .token(R.token))?.remaining,
                  used(limits, .userOperation, .uses)?.remaining ?? 0 > 0, used(limits, transfers, .uses)?.remaining ?? 0 > 0 else { continue }
            func pay(_ amount: UInt256) -> PackedUserOperation {
                R.op(.single(Execution(target: R.token, callData: try! R.transfer.encodeCall([.address(R.beef), .uint(amount)]))))
            }
            #expect((try? checker.check(pay(left), ledger: ledger).get()) != nil, "step \(step): \(left) left")
            #expect((try? checker.check(pay(left.addingReportingOverflow(1).partialValue), ledger: ledger).get()) == nil, "step \(step): \(left) left")
        }
        #expect(operations > 10 && operations < 40, "the run reaches the limits: \(operations) operations let through")
    }

    @Test func argumentRulesStartFromTheirInitDataAndUndecodablePoliciesAreLeftOut() throws {
        let rule = ParamRule(condition: .greaterThanOrEqual, offset: 32, isLimited: true, ref: .zero, limit: 100, used: 30)
        let unlimited = ParamRule(condition: .equal, offset: 0, ref: R.beef.word)
        let session = R.session(
            userOp: [.simpleGas(gasLimit: 700_000, costLimit: 1_000_000_000_000_000)],
            actions: [R.action(R.token, Selector(rawValue: 0xa905_9cbb), [.uniAction(UniActionConfig(valueLimitPerUse: 0, rules: [unlimited, rule])),
                                                                           .contractWhitelist([R.token]), .timeFrame(validUntil: 10, validAfter: 0)]),
                      ActionData(actionTargetSelector: .fallback, actionTarget: ActionData.fallbackTarget,
                                 actionPolicies: [PolicyData(policy: R.beef, initData: []), PolicyConfig.usageLimit(3).policyData])])
        let checker = PolicyChecker(session: session, account: R.account)
        var ledger = PolicyLedger()
        let start = checker.limits(ledger: ledger)
        #expect(start.map(\.measure) == [.gas, .gasCost, .uses, .argument(rule: 1)], "\(start)")
        #expect(start.first { $0.measure == .argument(rule: 1) }.map { ($0.used, $0.remaining) } ?? (0, 0) == (30, 70))
        #expect(start[2].scope == .action(ActionKey(target: ActionData.fallbackTarget, selector: .fallback)), "actions by target: address(1) first")

        let op = R.op(R.pay(50))
        ledger.apply(try checker.check(op, ledger: ledger, now: 5).get().delta)
        let after = checker.limits(ledger: ledger)
        #expect(after.first { $0.measure == .argument(rule: 1) }?.used == 80)
        // (100k + 200k + 50k) gas at 2 gwei, the most it can cost without a base fee.
        #expect(after.first { $0.measure == .gas }?.used == 350_000)
        #expect(after.first { $0.measure == .gasCost }?.used == 700_000_000_000_000)
    }

    /// ERC20SpendingLimitPolicy initialises a token listed twice twice: the last limit holds.
    @Test func aTokenListedTwiceHasItsLastLimit() throws {
        let session = R.session(actions: [R.action(R.token, Selector(rawValue: 0xa905_9cbb),
                                                   [.erc20SpendingLimit([TokenLimit(token: R.token, limit: 5), TokenLimit(token: R.beef, limit: 9), TokenLimit(token: R.token, limit: 50)])])])
        let checker = PolicyChecker(session: session, account: R.account)
        let limits = checker.limits(ledger: PolicyLedger())
        #expect(limits.map(\.measure) == [.token(R.token), .token(R.beef)] && limits.map(\.remaining) == [50, 9], "\(limits)")
        #expect((try? checker.check(R.op(R.pay(50)), ledger: PolicyLedger()).get()) != nil && (try? checker.check(R.op(R.pay(51)), ledger: PolicyLedger()).get()) == nil)
    }

    @Test func describedInTheUnitsTheReviewUses() throws {
        let usdc = try Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")   // USDC on Sepolia, in the built-in list
        let session = R.session(userOp: [.valueLimit(2_000_000_000_000_000_000)],
                                actions: [R.action(usdc, Selector(rawValue: 0xa905_9cbb), [.erc20SpendingLimit([TokenLimit(token: usdc, limit: 100_000_000)])]),
                                          R.action(R.beef, Selector(rawValue: 0x1234_5678), [.erc20SpendingLimit([TokenLimit(token: R.beef, limit: 7)])])])
        let checker = PolicyChecker(session: session, account: R.account, chains: [11_155_111])
        var ledger = PolicyLedger()
        let pay = R.op(.single(Execution(target: usdc, value: 0, callData: try R.transfer.encodeCall([.address(R.beef), .uint(40_000_000)]))))
        ledger.apply(try checker.check(pay, ledger: ledger).get().delta)
        let texts = checker.limits(ledger: ledger).map(checker.describe)
        #expect(texts == [
            "user operations: native value 0 ETH of 2 ETH, 2 ETH left (ValueLimitPolicy)",
            "0x000000000000000000000000000000000000bEEF [0x12345678]: token 0x000000000000000000000000000000000000bEEF spent or approved 0 base units of 7 base units, 7 base units left (ERC20SpendingLimitPolicy)",
            "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238 (USDC token).transfer [0xa9059cbb]: USDC spent or approved 40 USDC of 100 USDC, 60 USDC left (ERC20SpendingLimitPolicy)",
        ], "\(texts)")
    }
}
