import EthereumCore

extension PolicyChecker {
    func violation(_ p: PolicyData, _ kind: PolicyKind?, _ why: String) -> PolicyDenial {
        PolicyDenial("policy_violation", "\(kind?.rawValue ?? "policy") \(p.policy): \(why)")
    }

    func reverted(_ p: PolicyData, _ kind: PolicyKind?, _ why: String) -> PolicyDenial {
        PolicyDenial("policy_reverted", "\(kind?.rawValue ?? "policy") \(p.policy) reverts: \(why)")
    }

    static func add(_ a: UInt256, _ b: UInt256) -> UInt256? {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : sum
    }

    /// The policies that check the same way as user-operation and as action policies.
    /// Returns false when `c` is not one of them.
    func checkShared(_ c: PolicyConfig, _ p: PolicyData, key: (String) -> LedgerKey, uses: String, _ state: inout Evaluation) throws(PolicyDenial) -> Bool {
        switch c {
        case .sudo:
            return true
        case .timeFrame(let until, let after):
            guard until != 0 || after != 0 else { throw reverted(p, c.kind, "not initialised") }
            state.window(until: until, after: after)
            return true
        case .usageLimit(let limit):
            let used = state.value(key("used")).addingReportingOverflow(.one).partialValue
            guard used <= limit else { throw violation(p, c.kind, "\(uses) are used up (limit \(limit))") }
            state.set(key("used"), used)
            return true
        default:
            return false
        }
    }

    // MARK: user-operation policies

    func checkUserOp(_ resolved: ResolvedPolicy, configId: Bytes32, op: PackedUserOperation, _ state: inout Evaluation) throws(PolicyDenial) {
        let p = resolved.data
        let c = try resolved.config.get()
        func key(_ counter: String) -> LedgerKey { LedgerKey(policy: p.policy, configId: configId, counter: counter) }
        if try checkShared(c, p, key: key, uses: "the session's user operations", &state) { return }
        switch c {
        case .valueLimit(let limit):
            guard op.callData.count >= 4 else { throw reverted(p, c.kind, "callData shorter than a selector") }
            guard Array(op.callData[0..<4]) == ExecuteCall.selector else { return }   // other calls pass uncounted
            let call: ExecuteCall
            do { call = try ExecuteCall(calldata: op.callData) } catch { throw reverted(p, c.kind, "\(error)") }
            guard call.mode.callType == .single || call.mode.callType == .batch else { throw reverted(p, c.kind, "unsupported call type \(call.mode.callType)") }
            var total = UInt256.zero
            for e in call.executions {
                guard let t = Self.add(total, e.value) else { throw reverted(p, c.kind, "value overflow") }
                total = t
            }
            let before = state.value(key("valueUsed"))
            guard let used = Self.add(before, total), used <= limit else {
                throw violation(p, c.kind, "\(Amounts.eth(total)) more would exceed the session's native value limit of \(Amounts.eth(limit)) (\(Amounts.eth(before)) used)")
            }
            state.set(key("valueUsed"), used)
        case .simpleGas(let gasLimit, let costLimit):
            let limits = op.accountGasLimits.bytes, fees = op.gasFees.bytes
            // The contract's checked arithmetic reverts where a sum or the cost passes 2^256.
            var parts = [UInt256(bigEndian: limits[0..<16]), UInt256(bigEndian: limits[16..<32]), op.preVerificationGas]
            if op.paymasterAndData.count >= 52 {
                parts += [UInt256(bigEndian: op.paymasterAndData[20..<36]), UInt256(bigEndian: op.paymasterAndData[36..<52])]
            }
            guard let gas = parts.dropFirst().reduce(parts[0] as UInt256?, { sum, part in sum.flatMap { Self.add($0, part) } }) else {
                throw violation(p, c.kind, "the user operation's gas limits add up past 2^256, where SimpleGasPolicy reverts")
            }
            let maxFee = UInt256(bigEndian: fees[16..<32]), priority = UInt256(bigEndian: fees[0..<16])
            let price = baseFee.map { min(maxFee, priority.addingReportingOverflow($0).partialValue) } ?? maxFee
            let (cost, overflow) = gas.multipliedReportingOverflow(by: price)
            guard !overflow else { throw violation(p, c.kind, "the user operation's gas cost (\(gas) gas at \(price) wei) is past 2^256, where SimpleGasPolicy reverts") }
            let gasBefore = state.value(key("gasUsed")), costBefore = state.value(key("costUsed"))
            guard let gasUsed = Self.add(gasBefore, gas), gasUsed <= gasLimit else {
                throw violation(p, c.kind, "\(gas) more gas would exceed the session's gas limit of \(gasLimit) (\(gasBefore) used)")
            }
            guard let costUsed = Self.add(costBefore, cost), costUsed <= costLimit else {
                throw violation(p, c.kind, "\(Amounts.eth(cost)) more would exceed the session's gas cost limit of \(Amounts.eth(costLimit)) (\(Amounts.eth(costBefore)) used)")
            }
            state.set(key("gasUsed"), gasUsed)
            state.set(key("costUsed"), costUsed)
        default:
            throw reverted(p, c.kind, "\(c.kind.rawValue) is not a user-operation policy")
        }
    }

    // MARK: action policies

    func checkAction(_ action: ResolvedAction, target: Address, value: UInt256, data: [UInt8], what: String,
                     _ state: inout Evaluation) throws(PolicyDenial) {
        for p in action.policies {
            do {
                try checkAction(p, configId: action.configId, target: target, value: value, data: data, &state)
            } catch {
                throw PolicyDenial(error.reason, "\(what): \(error.message)")
            }
        }
    }

    func word(_ data: [UInt8], at offset: UInt64) -> UInt256? {
        guard offset <= UInt64(Int.max - 36), 4 + Int(offset) + 32 <= data.count else { return nil }
        let start = 4 + Int(offset)
        return UInt256(bigEndian: data[start..<(start + 32)])
    }

    /// Applies one rule as UniActionLib/ArgPolicyTreeLib `check` do, counting usage.
    func apply(_ rule: ParamRule, index: Int, data: [UInt8], key: (String) -> LedgerKey, _ state: inout Evaluation, policy p: PolicyData, kind: PolicyKind) throws(PolicyDenial) -> Bool {
        guard let param = word(data, at: rule.offset) else { throw reverted(p, kind, "calldata too short for the rule at offset \(rule.offset)") }
        guard rule.accepts(param.word) else { return false }
        if rule.isLimited {
            let k = key("rule:\(index)")
            guard let used = Self.add(state.value(k, initial: rule.used), param) else { throw reverted(p, kind, "usage overflow") }
            guard used <= rule.limit else { return false }
            state.set(k, used)
        }
        return true
    }

    func checkAction(_ resolved: ResolvedPolicy, configId: Bytes32, target: Address, value: UInt256, data: [UInt8], _ state: inout Evaluation) throws(PolicyDenial) {
        let p = resolved.data
        let c = try resolved.config.get()
        func key(_ counter: String) -> LedgerKey { LedgerKey(policy: p.policy, configId: configId, counter: counter) }
        if try checkShared(c, p, key: key, uses: "its uses", &state) { return }
        switch c {
        case .valueLimit(let limit):
            let before = state.value(key("valueUsed"))
            guard let used = Self.add(before, value), used <= limit else {
                throw violation(p, c.kind, "\(Amounts.eth(value)) more would exceed the native value limit of \(Amounts.eth(limit)) (\(Amounts.eth(before)) used)")
            }
            state.set(key("valueUsed"), used)
        case .erc20SpendingLimit(let limits):
            guard value.isZero else { throw violation(p, c.kind, "a token call may not carry native value") }
            guard data.count >= 4 else { throw reverted(p, c.kind, "calldata shorter than a selector") }
            let selector = Selector(bytes: data[0..<4])!
            var amount: UInt256
            let isApproval = selector == KnownSelectors.erc20Approve || selector == KnownSelectors.erc20IncreaseAllowance
            do {
                switch selector {
                case KnownSelectors.erc20Approve, KnownSelectors.erc20IncreaseAllowance, KnownSelectors.erc20Transfer:
                    guard data.count >= 68 else { throw ABIError("arguments too short") }
                    let args = try ABI.decode(Array(data[4..<68]), as: [.address, .uint256])
                    guard case .uint(let a) = args[1] else { throw ABIError("unexpected shape") }
                    amount = a
                case KnownSelectors.erc20TransferFrom:
                    guard data.count >= 100 else { throw ABIError("arguments too short") }
                    let args = try ABI.decode(Array(data[4..<100]), as: [.address, .address, .uint256])
                    guard case .address(let to) = args[1], case .uint(let a) = args[2] else { throw ABIError("unexpected shape") }
                    amount = to == account ? 0 : a
                default:
                    throw violation(p, c.kind, "only transfer, transferFrom, approve and increaseAllowance are allowed, not \(selector)")
                }
            } catch let error as ABIError {
                throw reverted(p, c.kind, "token call arguments: \(error)")
            } catch let denial as PolicyDenial {
                throw denial
            } catch {
                throw reverted(p, c.kind, "\(error)")
            }
            // Tokens the policy was not configured for have a limit of 0.
            let limit = limits.last { $0.token == target }?.limit ?? 0
            let spentKey = key("spent:\(target.lowercased)"), approvedKey = key("approved:\(target.lowercased)")
            var spent = state.value(spentKey), approved = state.value(approvedKey)
            let before = Self.add(spent, approved)
            if isApproval {
                guard let a = Self.add(approved, amount) else { throw reverted(p, c.kind, "overflow") }
                approved = a
            } else {
                guard let s = Self.add(spent, amount) else { throw reverted(p, c.kind, "overflow") }
                spent = s
            }
            guard let total = Self.add(spent, approved), total <= limit else {
                func named(_ amount: UInt256) -> String { tokens.amount(amount, of: target, chains: chains) }
                throw violation(p, c.kind, "\(named(amount)) more would exceed the spending limit of \(named(limit)) for \(target) ("
                                + (before.map { "\(named($0)) spent or approved" } ?? "more than 2^256 spent or approved") + ")")
            }
            state.set(isApproval ? approvedKey : spentKey, isApproval ? approved : spent)
        case .uniAction(let config):
            guard !config.rules.isEmpty else { throw reverted(p, c.kind, "not initialised") }
            guard value <= config.valueLimitPerUse else { throw reverted(p, c.kind, "value \(value) is above the per-call limit \(config.valueLimitPerUse)") }
            for (i, rule) in config.rules.enumerated() {
                guard try apply(rule, index: i, data: data, key: key, &state, policy: p, kind: c.kind) else {
                    throw violation(p, c.kind, "argument rule \(i) (\(rule.condition) at offset \(rule.offset)) fails")
                }
            }
        case .contractWhitelist(let targets):
            guard targets.contains(target) else { throw violation(p, c.kind, "\(target) is not whitelisted") }
        case .arg(let config):
            guard !config.rules.isEmpty, !config.nodes.isEmpty else { throw reverted(p, c.kind, "not initialised") }
            guard value <= config.valueLimitPerUse else { throw reverted(p, c.kind, "value \(value) is above the per-call limit \(config.valueLimitPerUse)") }
            guard try evaluate(config, node: Int(config.rootNodeIndex), depth: 0, data: data, key: key, &state, policy: p) else {
                throw violation(p, c.kind, "the argument expression is false")
            }
        case .sudo, .timeFrame, .usageLimit:
            return   // checked by checkShared
        case .simpleGas:
            throw reverted(p, c.kind, "SimpleGasPolicy is not an action policy")
        }
    }

    /// ArgPolicyTreeLib `evaluateNode`: short-circuit AND/OR; only evaluated rules count usage.
    func evaluate(_ c: ArgPolicyConfig, node: Int, depth: Int, data: [UInt8], key: (String) -> LedgerKey, _ state: inout Evaluation, policy p: PolicyData) throws(PolicyDenial) -> Bool {
        guard depth < 256 else { throw reverted(p, .arg, "the expression recurses without end (out of gas)") }
        switch c.nodes[node] {
        case .rule(let r):
            return try apply(c.rules[Int(r)], index: Int(r), data: data, key: key, &state, policy: p, kind: .arg)
        case .not(let x):
            return !(try evaluate(c, node: Int(x), depth: depth + 1, data: data, key: key, &state, policy: p))
        case .and(let l, let r):
            guard try evaluate(c, node: Int(l), depth: depth + 1, data: data, key: key, &state, policy: p) else { return false }
            return try evaluate(c, node: Int(r), depth: depth + 1, data: data, key: key, &state, policy: p)
        case .or(let l, let r):
            if try evaluate(c, node: Int(l), depth: depth + 1, data: data, key: key, &state, policy: p) { return true }
            return try evaluate(c, node: Int(r), depth: depth + 1, data: data, key: key, &state, policy: p)
        }
    }
}
