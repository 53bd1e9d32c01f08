import EthereumCore
import Foundation
import SmartSessions
import Testing
import TestSupport

/// The user-operation sequences the deployed contracts ran (Fixtures/cases): where the
/// verdict depends on policies, the off-chain check must reach the same one.
@Suite("The off-chain policy check agrees with the contracts' verdicts")
struct PolicyCaseTests {
    static let cases = ["01-enable-then-use", "02-unsafe-enable-multichain", "03-tampered-signatures", "04-wrong-chain", "05-wrong-nonce",
                        "06-usage-limit", "06b-usage-limit-identical-op", "07-erc20-spending-limit", "08-value-limit-and-paymaster",
                        "09-paymaster-not-permitted", "10-timeframe", "11-owners-2-of-3", "12-session-keys-2-of-2"]
    /// Reverts caused by signatures, nonces or chains: the policies themselves pass.
    static let notPolicy = ["AA24", "AA25", "InvalidSignature", "InvalidEnableSignature", "HashMismatch", "ChainIdMismatch", "InvalidPermissionId", "InvalidModule"]

    @Test(arguments: cases)
    func sequence(_ name: String) throws {
        let c = try Fixtures.json("cases/\(name).json")
        let session = try Session(json: c["session"]!)
        let account = try Address(try c["account"]!.string("address"))
        let checker = PolicyChecker(session: session, account: account)
        var ledger = PolicyLedger()
        for op in c["userOps"]!.arrayValue! {
            let label = try op.string("label")
            let userOp = try PackedUserOperation(json: op["userOp"]!)
            let enabling = userOp.signature.first.map { $0 != 0 } ?? false
            var now = UInt64(try c.string("blockTimestamp"))!
            if let t = label.range(of: "t=") { now = UInt64(label[t.upperBound...].prefix { $0.isNumber })! }
            let expect = op["expect"]!
            let verdict = expect.stringValue ?? expect["revertContains"]!.stringValue!
            let result = checker.check(userOp, ledger: ledger, enabling: enabling, now: now)
            switch verdict {
            case "OK":
                guard case .success(let allowance) = result else { Issue.record("\(name) \(label): denied: \(result)"); continue }
                ledger.apply(allowance.delta)
            case "AA22":
                guard case .failure(let denial) = result else { Issue.record("\(name) \(label): allowed outside the time frame"); continue }
                #expect(["expired", "not_yet_valid"].contains(denial.reason), "\(name) \(label): \(denial)")
            case _ where Self.notPolicy.contains(where: verdict.hasPrefix):
                if case .failure(let denial) = result { Issue.record("\(name) \(label): policies should pass, got \(denial)") }
            default:
                guard case .failure(let denial) = result else { Issue.record("\(name) \(label): allowed, the contract says \(verdict)"); continue }
                let expected = ["PolicyViolation": "policy_violation", "NoPoliciesSet": "no_policies", "PaymasterValidationNotEnabled": "paymaster_not_permitted"]
                #expect(denial.reason == expected[verdict], "\(name) \(label): \(denial)")
            }
        }
    }
}

@Suite("The off-chain policy check, rule by rule, both ways")
struct PolicyRuleTests {
    static let account = try! Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
    static let token = try! Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
    static let beef = try! Address("0x000000000000000000000000000000000000bEEF")
    static let transfer = try! ABIFunction(parsing: "transfer(address to, uint256 amount)")

    static func session(userOp: [PolicyConfig] = [], actions: [ActionData], paymaster: Bool = false) -> Session {
        Session(sessionValidator: SmartSessionAddresses.ownableValidator,
                sessionValidatorInitData: try! OwnableValidatorConfig(threshold: 1, owners: [beef]).initData,
                userOpPolicies: userOp.map(\.policyData), actions: actions, permitERC4337Paymaster: paymaster)
    }

    static func action(_ target: Address, _ selector: Selector, _ policies: [PolicyConfig]) -> ActionData {
        ActionData(actionTargetSelector: selector, actionTarget: target, actionPolicies: policies.map(\.policyData))
    }

    static func op(_ call: ExecuteCall, sender: Address = account, paymasterAndData: [UInt8] = []) -> PackedUserOperation {
        op(calldata: call.calldata, sender: sender, paymasterAndData: paymasterAndData)
    }

    static func op(calldata: [UInt8], sender: Address = account, paymasterAndData: [UInt8] = []) -> PackedUserOperation {
        PackedUserOperation(sender: sender, nonce: 0, initCode: [], callData: calldata,
                            accountGasLimits: Bytes32(UInt256(100_000).bigEndianBytes.suffix(16) + UInt256(200_000).bigEndianBytes.suffix(16)),
                            preVerificationGas: 50_000, gasFees: Bytes32(UInt256(1_000_000_000).bigEndianBytes.suffix(16) + UInt256(2_000_000_000).bigEndianBytes.suffix(16)),
                            paymasterAndData: paymasterAndData, signature: [])
    }

    static func pay(_ amount: UInt64, to: Address = beef, selector: ABIFunction = transfer) -> ExecuteCall {
        .single(Execution(target: token, callData: try! selector.encodeCall([.address(to), .uint(UInt256(amount))])))
    }

    func allowed(_ s: Session, _ op: PackedUserOperation, _ ledger: inout PolicyLedger, now: UInt64? = nil, baseFee: UInt256? = nil) -> Bool {
        switch PolicyChecker(session: s, account: Self.account, baseFee: baseFee).check(op, ledger: ledger, now: now) {
        case .success(let a): ledger.apply(a.delta); return true
        case .failure: return false
        }
    }

    func denial(_ s: Session, _ op: PackedUserOperation, ledger: PolicyLedger = PolicyLedger()) -> String? {
        if case .failure(let d) = PolicyChecker(session: s, account: Self.account).check(op, ledger: ledger) { return d.reason }
        return nil
    }

    @Test func senderPaymasterAndExecutionShape() throws {
        let s = Self.session(actions: [Self.action(Self.token, Selector(rawValue: 0xa905_9cbb), [.sudo])])
        #expect(denial(s, Self.op(Self.pay(1))) == nil)
        #expect(denial(s, Self.op(Self.pay(1), sender: Self.beef)) == "wrong_sender")
        #expect(denial(s, Self.op(Self.pay(1), paymasterAndData: [UInt8](repeating: 1, count: 52))) == "paymaster_not_permitted")
        let withPaymaster = Self.session(userOp: [], actions: s.actions, paymaster: true)
        #expect(denial(withPaymaster, Self.op(Self.pay(1), paymasterAndData: [UInt8](repeating: 1, count: 52))) == "paymaster_not_permitted")   // no userOp policy
        let permitted = Self.session(userOp: [.sudo], actions: s.actions, paymaster: true)
        #expect(denial(permitted, Self.op(Self.pay(1), paymasterAndData: [UInt8](repeating: 1, count: 52))) == nil)

        var tryMode = Self.pay(1)
        tryMode.mode.execType = .try
        #expect(denial(s, Self.op(tryMode)) == "unsupported_execution")
        #expect(denial(s, Self.op(ExecuteCall(mode: ExecutionMode(callType: .delegateCall), calls: .delegateCall(target: Self.token, callData: [])))) == "unsupported_execution")
        #expect(denial(s, Self.op(.batch([]))) == "malformed_calldata")
        #expect(denial(s, Self.op(calldata: [0x8d, 0xd7, 0x71, 0x2f])) == "unsupported_execution")
        #expect(denial(s, Self.op(calldata: [1, 2])) == "malformed_calldata")
        #expect(denial(s, Self.op(.single(Execution(target: Self.account, callData: ExecuteCall.selector)))) == "invalid_self_call")
        #expect(denial(s, Self.op(.single(Execution(target: ActionData.fallbackTarget)))) == "invalid_self_call")
        #expect(denial(s, Self.op(.single(Execution(target: SmartSessionAddresses.smartSession, callData: [1, 2, 3, 4])))) == "no_policies")
        #expect(denial(s, Self.op(.single(Execution(target: Self.beef, value: 1)))) == "no_policies")
        // A call on the account itself needs an action for (account, selector), without fallback.
        #expect(denial(s, Self.op(calldata: [0x12, 0x34, 0x56, 0x78])) == "no_policies")
        let selfCall = Self.session(actions: [Self.action(Self.account, Selector(rawValue: 0x1234_5678), [.sudo])])
        #expect(denial(selfCall, Self.op(calldata: [0x12, 0x34, 0x56, 0x78])) == nil)
        // Unknown policies are never guessed at.
        let unknown = Session(sessionValidator: s.sessionValidator, sessionValidatorInitData: s.sessionValidatorInitData,
                              actions: [ActionData(actionTargetSelector: Selector(rawValue: 0xa905_9cbb), actionTarget: Self.token, actionPolicies: [PolicyData(policy: Self.beef, initData: [])])])
        #expect(denial(unknown, Self.op(Self.pay(1))) == "unknown_policy")
    }

    @Test func fallbackAndAdminActions() throws {
        let s = Self.session(actions: [Self.action(ActionData.fallbackTarget, .fallback, [.usageLimit(2)])])
        var ledger = PolicyLedger()
        #expect(allowed(s, Self.op(.single(Execution(target: Self.beef, value: 5))), &ledger))
        #expect(allowed(s, Self.op(Self.pay(7)), &ledger))
        #expect(!allowed(s, Self.op(Self.pay(7)), &ledger))   // the fallback's own usage counter
        #expect(denial(s, Self.op(.single(Execution(target: SmartSessionAddresses.smartSession, callData: [1, 2, 3, 4])))) == "no_policies")
        let admin = Self.session(actions: [Self.action(ActionData.fallbackTarget, .fallbackSmartSessionCall, [.sudo])])
        #expect(denial(admin, Self.op(.single(Execution(target: SmartSessionAddresses.smartSession, callData: [1, 2, 3, 4])))) == nil)
        // An action listed without a policy has none enabled: the fallback's policies decide.
        let empty = Self.session(actions: [Self.action(Self.token, Selector(rawValue: 0xa905_9cbb), []), Self.action(ActionData.fallbackTarget, .fallback, [.usageLimit(1)])])
        var emptyLedger = PolicyLedger()
        #expect(allowed(empty, Self.op(Self.pay(1)), &emptyLedger) && !allowed(empty, Self.op(Self.pay(1)), &emptyLedger), "the fallback's one use")
    }

    @Test func usageAndValueLimitsCountAndStop() throws {
        let s = Self.session(userOp: [.usageLimit(3), .valueLimit(100)],
                             actions: [Self.action(Self.beef, .valueTransfer, [.valueLimit(60)])])
        var ledger = PolicyLedger()
        #expect(allowed(s, Self.op(.single(Execution(target: Self.beef, value: 50))), &ledger))
        #expect(!allowed(s, Self.op(.single(Execution(target: Self.beef, value: 11))), &ledger))   // action limit 60
        let before = ledger
        #expect(!allowed(s, Self.op(.batch([Execution(target: Self.beef, value: 5), Execution(target: Self.beef, value: 6)])), &ledger))
        #expect(ledger == before, "a denied operation changes nothing")
        #expect(allowed(s, Self.op(.batch([Execution(target: Self.beef, value: 5), Execution(target: Self.beef, value: 5)])), &ledger))
        #expect(allowed(s, Self.op(.single(Execution(target: Self.beef, value: 0))), &ledger))
        #expect(!allowed(s, Self.op(.single(Execution(target: Self.beef, value: 0))), &ledger))   // 3 user operations used
        // ENABLE re-initialises the counters.
        if case .success(let a) = PolicyChecker(session: s, account: Self.account).check(Self.op(.single(Execution(target: Self.beef, value: 60))), ledger: ledger, enabling: true) {
            ledger.apply(a.delta)
        } else { Issue.record("re-enable should reset the counters") }

        // The user-operation limit holds up to its last wei, summed over a batch.
        let exact = Self.session(userOp: [.valueLimit(10)], actions: [Self.action(Self.beef, .valueTransfer, [.sudo])])
        var exactLedger = PolicyLedger()
        #expect(allowed(exact, Self.op(.batch([Execution(target: Self.beef, value: 4), Execution(target: Self.beef, value: 6)])), &exactLedger))
        #expect(!allowed(exact, Self.op(.single(Execution(target: Self.beef, value: 1))), &exactLedger))
        // A policy listed twice is initialised twice: the last init data holds.
        let twice = Self.session(userOp: [.valueLimit(1), .valueLimit(100)], actions: [Self.action(Self.beef, .valueTransfer, [.sudo])])
        #expect(denial(twice, Self.op(.single(Execution(target: Self.beef, value: 50)))) == nil)
    }

    @Test func erc20SpendingLimit() throws {
        let limit = PolicyConfig.erc20SpendingLimit([TokenLimit(token: Self.token, limit: 100)])
        let approve = try ABIFunction(parsing: "approve(address spender, uint256 amount)")
        let transferFrom = try ABIFunction(parsing: "transferFrom(address from, address to, uint256 amount)")
        let s = Self.session(actions: [
            Self.action(Self.token, Selector(rawValue: 0xa905_9cbb), [limit]),
            Self.action(Self.token, Selector(rawValue: 0x23b8_72dd), [limit]),
            Self.action(Self.token, Selector(rawValue: 0x095e_a7b3), [limit]),
            Self.action(Self.beef, Selector(rawValue: 0xa905_9cbb), [limit]),
            Self.action(Self.token, Selector(rawValue: 0x4296_6c68), [limit]),
        ])
        var ledger = PolicyLedger()
        let burn = ExecuteCall.single(Execution(target: Self.token, callData: try ABIFunction(parsing: "burn(uint256)").encodeCall([.uint(1)])))
        #expect(denial(s, Self.op(burn)) == "policy_violation", "a token call other than transfer, transferFrom, approve and increaseAllowance")
        #expect(allowed(s, Self.op(Self.pay(60)), &ledger))
        #expect(!allowed(s, Self.op(Self.pay(41)), &ledger))
        #expect(allowed(s, Self.op(Self.pay(40)), &ledger))
        let toAccount = ExecuteCall.single(Execution(target: Self.token, callData: try transferFrom.encodeCall([.address(Self.beef), .address(Self.account), .uint(1000)])))
        #expect(allowed(s, Self.op(toAccount), &ledger), "transferFrom into the account counts 0")
        let away = ExecuteCall.single(Execution(target: Self.token, callData: try transferFrom.encodeCall([.address(Self.account), .address(Self.beef), .uint(1)])))
        #expect(allowed(s, Self.op(away), &ledger), "each action has its own counter")
        #expect(allowed(s, Self.op(.single(Execution(target: Self.token, callData: try approve.encodeCall([.address(Self.beef), .uint(100)])))), &ledger))
        #expect(!allowed(s, Self.op(.single(Execution(target: Self.token, value: 1, callData: try Self.transfer.encodeCall([.address(Self.beef), .uint(0)])))), &ledger), "value must be 0")
        // An unconfigured token has a limit of 0: only zero amounts pass.
        #expect(!allowed(s, Self.op(.single(Execution(target: Self.beef, callData: try Self.transfer.encodeCall([.address(Self.beef), .uint(1)])))), &ledger))
        #expect(allowed(s, Self.op(.single(Execution(target: Self.beef, callData: try Self.transfer.encodeCall([.address(Self.beef), .uint(0)])))), &ledger))
        #expect(!allowed(s, Self.op(.single(Execution(target: Self.token, callData: [0xa9, 0x05, 0x9c, 0xbb, 1]))), &ledger), "short arguments revert")
    }

    /// A refused client (and the operator reading the journal) learns what the operation adds,
    /// what is used and the limit, in the units the review showed when the session was approved.
    @Test func aDenialNamesTheAmountsAsTheReviewDid() throws {
        let usdc = PolicyConfig.erc20SpendingLimit([TokenLimit(token: Self.token, limit: 100_000_000)])
        let s = Self.session(userOp: [.valueLimit(100_000_000_000_000_000)],
                             actions: [Self.action(Self.token, Selector(rawValue: 0xa905_9cbb), [usdc]), Self.action(Self.beef, .valueTransfer, [.sudo])])
        func message(_ call: ExecuteCall, after first: ExecuteCall, chains: [UInt64]) -> String? {
            let checker = PolicyChecker(session: s, account: Self.account, chains: chains)
            guard case .success(let a) = checker.check(Self.op(first), ledger: PolicyLedger()) else { return nil }
            var ledger = PolicyLedger()
            ledger.apply(a.delta)
            guard case .failure(let d) = checker.check(Self.op(call), ledger: ledger) else { return nil }
            return d.message
        }
        let sepolia: UInt64 = 11_155_111
        let spent = try #require(message(Self.pay(60_500_000), after: Self.pay(50_000_000), chains: [sepolia]))
        #expect(spent.hasSuffix("60.5 USDC more would exceed the spending limit of 100 USDC for \(Self.token) (50 USDC spent or approved)"), "\(spent)")
        // On a chain the token list does not know the token on, base units, never a guess.
        let unnamed = try #require(message(Self.pay(60_500_000), after: Self.pay(50_000_000), chains: [1]))
        #expect(unnamed.hasSuffix("60500000 base units more would exceed the spending limit of 100000000 base units for \(Self.token) (50000000 base units spent or approved)"), "\(unnamed)")
        let value = try #require(message(.single(Execution(target: Self.beef, value: 60_000_000_000_000_000)),
                                         after: .single(Execution(target: Self.beef, value: 50_000_000_000_000_000)), chains: [sepolia]))
        #expect(value.hasSuffix("0.06 ETH more would exceed the session's native value limit of 0.1 ETH (0.05 ETH used)"), "\(value)")
    }

    @Test func uniActionRulesEachWay() throws {
        func session(_ rule: ParamRule, valuePerCall: UInt256 = 0) -> Session {
            Self.session(actions: [Self.action(Self.token, Selector(rawValue: 0xa905_9cbb), [.uniAction(UniActionConfig(valueLimitPerUse: valuePerCall, rules: [rule]))])])
        }
        let amountAt: UInt64 = 32
        let cases: [(ParamCondition, UInt64, pass: UInt64, fail: UInt64)] = [
            (.equal, 5, 5, 6), (.notEqual, 5, 6, 5), (.greaterThan, 5, 6, 5), (.greaterThanOrEqual, 5, 5, 4),
            (.lessThan, 5, 4, 5), (.lessThanOrEqual, 5, 5, 6),
        ]
        for (condition, ref, pass, fail) in cases {
            let s = session(ParamRule(condition: condition, offset: amountAt, ref: UInt256(ref).word))
            #expect(denial(s, Self.op(Self.pay(pass))) == nil, "\(condition) \(pass)")
            #expect(denial(s, Self.op(Self.pay(fail))) == "policy_violation", "\(condition) \(fail)")
        }
        let range = session(ParamRule(condition: .inRange, offset: amountAt, ref: UInt256(3).shiftedLeft(128).addingReportingOverflow(7).partialValue.word))
        #expect(denial(range, Self.op(Self.pay(3))) == nil && denial(range, Self.op(Self.pay(7))) == nil)
        #expect(denial(range, Self.op(Self.pay(2))) == "policy_violation" && denial(range, Self.op(Self.pay(8))) == "policy_violation")
        let recipient = session(ParamRule(condition: .equal, offset: 0, ref: Self.beef.word))
        #expect(denial(recipient, Self.op(Self.pay(1, to: Self.beef))) == nil)
        #expect(denial(recipient, Self.op(Self.pay(1, to: Self.account))) == "policy_violation")

        let limited = session(ParamRule(condition: .greaterThanOrEqual, offset: amountAt, isLimited: true, ref: .zero, limit: 100, used: 30))
        var ledger = PolicyLedger()
        #expect(allowed(limited, Self.op(Self.pay(70)), &ledger))   // 30 counted as used from the start
        #expect(!allowed(limited, Self.op(Self.pay(1)), &ledger))
        #expect(denial(session(ParamRule(condition: .equal, offset: 500, ref: .zero)), Self.op(Self.pay(1))) == "policy_reverted")
        let withValue = Self.op(.single(Execution(target: Self.token, value: 2, callData: try Self.transfer.encodeCall([.address(Self.beef), .uint(1)]))))
        #expect(denial(session(ParamRule(condition: .greaterThan, offset: amountAt, ref: .zero), valuePerCall: 1), withValue) == "policy_reverted")
        #expect(denial(session(ParamRule(condition: .greaterThan, offset: amountAt, ref: .zero), valuePerCall: 2), withValue) == nil)
    }

    @Test func whitelistGasTimeFrameAndArgPolicy() throws {
        let whitelist = Self.session(actions: [Self.action(ActionData.fallbackTarget, .fallback, [.contractWhitelist([Self.token])])])
        #expect(denial(whitelist, Self.op(Self.pay(1))) == nil)
        #expect(denial(whitelist, Self.op(.single(Execution(target: Self.beef)))) == "policy_violation")

        // Gas: (100k + 200k + 50k) units at maxFeePerGas 2 gwei without a base fee.
        let gasPolicy = PolicyConfig.simpleGas(gasLimit: 700_000, costLimit: 1_000_000_000_000_000)
        let gas = Self.session(userOp: [gasPolicy], actions: [Self.action(Self.token, Selector(rawValue: 0xa905_9cbb), [.sudo])])
        var ledger = PolicyLedger()
        #expect(allowed(gas, Self.op(Self.pay(1)), &ledger))
        #expect(!allowed(gas, Self.op(Self.pay(1)), &ledger), "the cost limit: 2 × 350k × 2 gwei > 0.001 ETH")
        var cheap = PolicyLedger()
        #expect(allowed(gas, Self.op(Self.pay(1)), &cheap, baseFee: 0))   // price = min(max, priority + base) = 1 gwei
        #expect(allowed(gas, Self.op(Self.pay(1)), &cheap, baseFee: 0))
        #expect(!allowed(gas, Self.op(Self.pay(1)), &cheap, baseFee: 0), "the gas-unit limit")
        // A paymaster's verification and postOp gas limits count too: 350k + 200k + 150k.
        let sponsored = Self.session(userOp: [gasPolicy], actions: gas.actions, paymaster: true)
        let paymaster = [UInt8](repeating: 0x77, count: 20) + UInt256(200_000).bigEndianBytes.suffix(16) + UInt256(150_000).bigEndianBytes.suffix(16)
        var paid = PolicyLedger()
        #expect(allowed(sponsored, Self.op(Self.pay(1), paymasterAndData: paymaster), &paid, baseFee: 0))
        #expect(!allowed(sponsored, Self.op(Self.pay(1), paymasterAndData: paymaster + [1, 2, 3]), &paid, baseFee: 0), "700k of the gas-unit limit used")
        let roomy = Self.session(userOp: [.simpleGas(gasLimit: 1_050_000, costLimit: 1_000_000_000_000_000_000)], actions: gas.actions, paymaster: true)
        var exactlyFilled = PolicyLedger()
        #expect(allowed(roomy, Self.op(Self.pay(1), paymasterAndData: paymaster), &exactlyFilled, baseFee: 0))
        #expect(!allowed(roomy, Self.op(Self.pay(1), paymasterAndData: paymaster), &exactlyFilled, baseFee: 0), "52 bytes hold both limits: 2 × 700k > 1.05M")

        // Limits that add up, or a cost that multiplies out, past 2^256: the contract reverts, and
        // the refusal says so (a wrapped sum would have passed as a small one).
        var huge = Self.op(Self.pay(1))
        huge.preVerificationGas = UInt256.max
        if case .failure(let d) = PolicyChecker(session: gas, account: Self.account).check(huge, ledger: PolicyLedger()) {
            #expect(d.message.contains("gas limits add up past 2^256"), "\(d.message)")
        } else { Issue.record("a wrapped gas sum passed") }
        var dear = Self.op(Self.pay(1))
        dear.preVerificationGas = UInt256.powerOfTwo(200)
        dear.gasFees = Bytes32(UInt256(1).bigEndianBytes.suffix(16) + UInt256.powerOfTwo(100).bigEndianBytes.suffix(16))
        if case .failure(let d) = PolicyChecker(session: gas, account: Self.account).check(dear, ledger: PolicyLedger()) {
            #expect(d.message.contains("gas cost") && d.message.contains("past 2^256"), "\(d.message)")
        } else { Issue.record("an overflowing cost passed") }

        let timed = Self.session(userOp: [.timeFrame(validUntil: 2000, validAfter: 1000)], actions: gas.actions)
        var l = PolicyLedger()
        #expect(allowed(timed, Self.op(Self.pay(1)), &l, now: 1000) && allowed(timed, Self.op(Self.pay(1)), &l, now: 2000))
        #expect(!allowed(timed, Self.op(Self.pay(1)), &l, now: 999) && !allowed(timed, Self.op(Self.pay(1)), &l, now: 2001))
        if case .failure(let d) = PolicyChecker(session: timed, account: Self.account).check(Self.op(Self.pay(1)), ledger: l, now: 1000, entryPoint: .v08) {
            #expect(d.reason == "not_yet_valid")   // v0.8 excludes validAfter itself
        } else { Issue.record("v0.8 window") }
        if case .success(let a) = PolicyChecker(session: timed, account: Self.account).check(Self.op(Self.pay(1)), ledger: l) {
            #expect(a.validAfter == 1000 && a.validUntil == 2000)
        } else { Issue.record("the time frame's window") }
        // Time frames on the operation and on the action: the later start and the earlier end.
        let narrowed = Self.session(userOp: [.timeFrame(validUntil: 2000, validAfter: 1000)],
                                    actions: [Self.action(Self.token, Selector(rawValue: 0xa905_9cbb), [.timeFrame(validUntil: 1500, validAfter: 1200)])])
        if case .success(let a) = PolicyChecker(session: narrowed, account: Self.account).check(Self.op(Self.pay(1)), ledger: l) {
            #expect(a.validAfter == 1200 && a.validUntil == 1500)
        } else { Issue.record("two time frames") }

        // (r0 OR r1) AND NOT r2: r0 "to == beef", r1 limited amount total ≤ 10, r2 "amount == 7".
        let rules = [ParamRule(condition: .equal, offset: 0, ref: Self.beef.word),
                     ParamRule(condition: .greaterThanOrEqual, offset: 32, isLimited: true, ref: .zero, limit: 10),
                     ParamRule(condition: .equal, offset: 32, ref: UInt256(7).word)]
        let tree = ArgPolicyConfig(valueLimitPerUse: 0, rootNodeIndex: 5, rules: rules, nodes: [.rule(0), .rule(1), .rule(2), .or(0, 1), .not(2), .and(3, 4)])
        let arg = Self.session(actions: [Self.action(Self.token, Selector(rawValue: 0xa905_9cbb), [.arg(tree)])])
        var argLedger = PolicyLedger()
        #expect(allowed(arg, Self.op(Self.pay(5, to: Self.beef)), &argLedger), "r0 passes, so r1 is never evaluated and counts nothing")
        #expect(!allowed(arg, Self.op(Self.pay(7, to: Self.beef)), &argLedger), "NOT r2 fails")
        #expect(allowed(arg, Self.op(Self.pay(6, to: Self.account)), &argLedger), "r1 counts 6")
        #expect(!allowed(arg, Self.op(Self.pay(5, to: Self.account)), &argLedger), "6 + 5 > 10")
        #expect(allowed(arg, Self.op(Self.pay(4, to: Self.account)), &argLedger))
        let cycle = ArgPolicyConfig(valueLimitPerUse: 0, rootNodeIndex: 0, rules: rules, nodes: [.not(0)])
        #expect(denial(Self.session(actions: [Self.action(Self.token, Selector(rawValue: 0xa905_9cbb), [.arg(cycle)])]), Self.op(Self.pay(1))) == "policy_reverted")
    }
}
