import EthereumCore

/// One cumulative limit of a session's policies, and how much of it a ledger has used: what a
/// client can still do before the policy (and so the agent) refuses.
public struct SessionLimit: Sendable, Equatable {
    /// What the policy guards: the user operation as a whole, or calls to one action.
    public enum Scope: Sendable, Hashable {
        case userOperation
        case action(ActionKey)
    }

    /// What the limit counts.
    public enum Measure: Sendable, Hashable {
        case uses
        /// Wei sent with calls.
        case nativeValue
        /// Base units of the token spent or approved.
        case token(Address)
        case gas
        /// Wei paid for gas.
        case gasCost
        /// The sum of an argument an argument rule limits (its index in the policy's rules).
        case argument(rule: Int)
    }

    public var scope: Scope
    public var policy: Address
    public var kind: PolicyKind
    public var measure: Measure
    public var used: UInt256
    public var limit: UInt256
    public var remaining: UInt256 { used < limit ? limit.subtractingReportingOverflow(used).partialValue : 0 }
}

extension PolicyChecker {
    /// Each cumulative limit of the session's policies with what `ledger` has used of it (an
    /// empty ledger: what the init data starts from). The user-operation policies come first,
    /// then the actions by target and selector. A policy the checker cannot decode has no
    /// entry: it refuses every operation anyway.
    public func limits(ledger: PolicyLedger) -> [SessionLimit] {
        var out: [SessionLimit] = []
        func add(_ policies: [ResolvedPolicy], configId: Bytes32, scope: SessionLimit.Scope) {
            for p in policies {
                guard case .success(let config) = p.config else { continue }
                func used(_ counter: String) -> UInt256? { ledger[LedgerKey(policy: p.data.policy, configId: configId, counter: counter)] }
                func limit(_ measure: SessionLimit.Measure, used: UInt256, of limit: UInt256) {
                    out.append(SessionLimit(scope: scope, policy: p.data.policy, kind: config.kind, measure: measure, used: used, limit: limit))
                }
                // A limited rule counts from the `used` its init data gives.
                func argumentRules(_ rules: [ParamRule]) {
                    for (i, rule) in rules.enumerated() where rule.isLimited { limit(.argument(rule: i), used: used("rule:\(i)") ?? rule.used, of: rule.limit) }
                }
                switch config {
                case .usageLimit(let max): limit(.uses, used: used("used") ?? 0, of: max)
                case .valueLimit(let max): limit(.nativeValue, used: used("valueUsed") ?? 0, of: max)
                case .simpleGas(let gas, let cost):
                    limit(.gas, used: used("gasUsed") ?? 0, of: gas)
                    limit(.gasCost, used: used("costUsed") ?? 0, of: cost)
                case .erc20SpendingLimit(let tokens):
                    // A token listed twice has its last limit, as the check reads it.
                    var seen: Set<Address> = []
                    for token in tokens.map(\.token) where seen.insert(token).inserted {
                        let (sum, overflow) = (used("spent:\(token.lowercased)") ?? 0).addingReportingOverflow(used("approved:\(token.lowercased)") ?? 0)
                        limit(.token(token), used: overflow ? .max : sum, of: tokens.last { $0.token == token }!.limit)
                    }
                case .uniAction(let c): argumentRules(c.rules)
                case .arg(let c): argumentRules(c.rules)
                case .sudo, .timeFrame, .contractWhitelist:
                    break
                }
            }
        }
        add(userOpPolicies, configId: userOpConfigId, scope: .userOperation)
        for (key, action) in actions.sorted(by: { $0.key < $1.key }) {
            add(action.policies, configId: action.configId, scope: .action(key))
        }
        return out
    }

    /// A limit as people read it: "0x1c7D…7238 (USDC token).transfer [0xa9059cbb]: USDC spent or
    /// approved 40 USDC of 100 USDC, 60 USDC left (ERC20SpendingLimitPolicy)".
    public func describe(_ l: SessionLimit) -> String {
        let amount: (UInt256) -> String
        let what: String
        switch l.measure {
        case .uses: what = "uses"; amount = { "\($0)" }
        case .nativeValue: what = "native value"; amount = Amounts.eth
        case .token(let token):
            what = "\(tokens.token(chains: chains, address: token)?.symbol ?? "token \(token)") spent or approved"
            amount = { tokens.amount($0, of: token, chains: chains) }
        case .gas: what = "gas"; amount = { "\($0) gas" }
        case .gasCost: what = "gas cost"; amount = Amounts.eth
        case .argument(let rule): what = "argument rule \(rule)"; amount = { "\($0)" }
        }
        return "\(describe(l.scope)): \(what) \(amount(l.used)) of \(amount(l.limit)), \(amount(l.remaining)) left (\(l.kind.rawValue))"
    }

    /// As the review names the call: "0x1c7D…7238 (USDC token).transfer [0xa9059cbb]".
    func describe(_ scope: SessionLimit.Scope) -> String {
        guard case .action(let key) = scope else { return "user operations" }
        switch key {
        case ActionKey(target: ActionData.fallbackTarget, selector: .fallback): return "any other call"
        case ActionKey(target: ActionData.fallbackTarget, selector: .fallbackSmartSessionCall): return "calls to SmartSession"
        default:
            let token = tokens.token(chains: chains, address: key.target).map { " (\($0.symbol) token)" } ?? ""
            // The function's name where the catalog knows it (ERC-20 and ERC-721 `approve` share one).
            let names = Set(KnownSelectors.entries(for: key.selector).map(\.function.name))
            return "\(key.target)\(token)" + (names.count == 1 ? ".\(names.first!)" : "") + " [\(key.selector)]"
        }
    }
}
