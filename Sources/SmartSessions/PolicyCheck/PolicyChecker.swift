import EthereumCore

/// Why a user operation would fail SmartSession validation.
public struct PolicyDenial: Error, Equatable, Sendable, CustomStringConvertible {
    /// `wrong_sender`, `paymaster_not_permitted`, `unsupported_execution`, `invalid_self_call`,
    /// `no_policies`, `policy_violation`, `policy_reverted`, `unknown_policy`,
    /// `malformed_calldata`, `expired`, `not_yet_valid`.
    public var reason: String
    public var message: String

    public init(_ reason: String, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { message }
}

/// What a passing check commits to and the time window the EntryPoint will enforce.
public struct PolicyAllowance: Sendable, Equatable {
    public var delta: LedgerDelta
    /// The latest validAfter of the policies (0: none).
    public var validAfter: UInt64
    /// The earliest non-zero validUntil of the policies (0: none).
    public var validUntil: UInt64
}

/// Decides, as SmartSession and its policies would (spec §7, §9), whether a user operation
/// passes a session's policies given the policies' state, and which counters it moves.
public struct PolicyChecker: Sendable {
    public var session: Session
    public var account: Address
    public var smartSession: Address
    /// The block base fee SimpleGasPolicy prices gas with; nil uses maxFeePerGas, the most an
    /// operation can cost.
    public var baseFee: UInt256?
    /// Name token amounts in denials ("60 USDC") where the list knows the token on one of the
    /// session's `chains`.
    public var tokens: TokenList
    public var chains: [UInt64]

    /// A policy with its init data decoded once, when the checker is made.
    struct ResolvedPolicy: Sendable {
        let data: PolicyData
        let config: Result<PolicyConfig, PolicyDenial>
    }

    /// One action's policy set and the configId its state lives under.
    struct ResolvedAction: Sendable {
        let actionId: Bytes32
        let configId: Bytes32
        let policies: [ResolvedPolicy]
    }

    /// The policies SmartSession would hold for the session: a set per id (a policy listed
    /// twice is initialised twice, the last init data winning); actions with the same target
    /// and selector share one set. Keyed by target and selector, so checking an execution
    /// hashes nothing.
    let userOpPolicies: [ResolvedPolicy]
    let userOpConfigId: Bytes32
    let erc1271Policies: [ResolvedPolicy]
    let actions: [ActionKey: ResolvedAction]
    let permissionId: Bytes32

    public init(session: Session, account: Address, smartSession: Address = SmartSessionAddresses.smartSession, baseFee: UInt256? = nil,
                tokens: TokenList = TokenList(), chains: [UInt64] = []) {
        self.session = session
        self.account = account
        self.smartSession = smartSession
        self.baseFee = baseFee
        self.tokens = tokens
        self.chains = chains
        func merge(_ existing: [PolicyData], _ added: [PolicyData]) -> [PolicyData] {
            var out = existing
            for p in added {
                if let i = out.firstIndex(where: { $0.policy == p.policy }) { out[i].initData = p.initData } else { out.append(p) }
            }
            return out
        }
        func resolve(_ policies: [PolicyData]) -> [ResolvedPolicy] {
            policies.map { p in ResolvedPolicy(data: p, config: Result { () throws(PolicyDenial) in try Self.decode(p) }) }
        }
        let permissionId = session.permissionId
        self.permissionId = permissionId
        userOpPolicies = resolve(merge([], session.userOpPolicies))
        userOpConfigId = SessionIds.configId(account: account, id: permissionId)
        erc1271Policies = resolve(merge([], session.erc7739Policies.erc1271Policies))
        var merged: [ActionKey: [PolicyData]] = [:]
        for a in session.actions {
            let key = ActionKey(target: a.actionTarget, selector: a.actionTargetSelector)
            merged[key] = merge(merged[key] ?? [], a.actionPolicies)
        }
        var actions: [ActionKey: ResolvedAction] = [:]
        for (key, policies) in merged {
            let actionId = SessionIds.actionId(target: key.target, selector: key.selector)
            actions[key] = ResolvedAction(
                actionId: actionId,
                configId: SessionIds.configId(account: account, id: SessionIds.actionPolicyId(permissionId: permissionId, actionId: actionId)),
                policies: resolve(policies))
        }
        self.actions = actions
    }

    static func decode(_ p: PolicyData) throws(PolicyDenial) -> PolicyConfig {
        guard let deployment = PolicyRegistry.deployment(at: p.policy) else {
            throw PolicyDenial("unknown_policy", "policy \(p.policy) is unknown: its checks cannot be mirrored, so nothing is signed")
        }
        do { return try PolicyConfig.decode(deployment.kind, initData: p.initData) } catch {
            throw PolicyDenial("policy_reverted", "\(error.message)")
        }
    }

    /// Checks a session key's ERC-1271 signature of `message` at `now` as SmartSession would
    /// (spec §10): the session allows the message's contents under its application's domain
    /// separator, and has at least one ERC-1271 policy, each of which passes. These policies
    /// are views: the signature moves no counter.
    public func checkSignedMessage(_ message: NestedTypedData, now: UInt64) -> Result<Void, PolicyDenial> {
        let allowed = session.erc7739Policies.allowedERC7739Content.filter { $0.appDomainSeparator == message.appDomainSeparator }
        guard !allowed.isEmpty else {
            return .failure(PolicyDenial("content_not_allowed", "the session signs no typed data for the application domain \(message.appDomainSeparator.hex)"))
        }
        guard allowed.contains(where: { $0.contentNames.contains(message.contentsDescription) }) else {
            let names = Set(allowed.flatMap(\.contentNames)).sorted().map { String(reflecting: $0) }
            return .failure(PolicyDenial("content_not_allowed", "the session signs only \(names.joined(separator: ", ")) for the application domain \(message.appDomainSeparator.hex), "
                                         + "not \(String(reflecting: message.contentsDescription))"))
        }
        guard !erc1271Policies.isEmpty else {
            return .failure(PolicyDenial("no_policies", "the session has no ERC-1271 policy; SmartSession needs one to accept its key's signatures"))
        }
        for p in erc1271Policies {
            let config: PolicyConfig
            switch p.config {
            case .success(let c): config = c
            case .failure(let denial): return .failure(denial)
            }
            switch config {
            case .sudo:
                continue
            case .timeFrame(let until, let after):
                guard until != 0 || after != 0 else { return .failure(reverted(p.data, .timeFrame, "not initialised")) }
                // Unlike a user operation's window, which the EntryPoint closes after validUntil,
                // the policy's ERC-1271 check closes at it.
                if until != 0 && now >= until {
                    return .failure(PolicyDenial("expired", "the session's time frame for signed messages ended at \(UTCTime.format(until))"))
                }
                if now < after {
                    return .failure(PolicyDenial("not_yet_valid", "the session's time frame for signed messages starts at \(UTCTime.format(after))"))
                }
            default:
                return .failure(reverted(p.data, config.kind, "it does not check ERC-1271 signatures"))
            }
        }
        return .success(())
    }

    /// The config ids this session's policies keep state under for the account.
    public var configIds: Set<Bytes32> {
        Set([userOpConfigId, SessionIds.configId(account: account, id: SessionIds.erc1271PolicyId(permissionId: permissionId))] + actions.values.map(\.configId))
    }

    /// Checks `op` against the policies and `ledger`. `enabling` is for ENABLE-mode operations,
    /// which (re)initialise every policy before it is checked, so counters start from zero.
    /// With `now`, an operation outside the policies' time window is denied as the EntryPoint
    /// would (validUntil inclusive; validAfter inclusive for v0.7, exclusive for v0.8).
    public func check(_ op: PackedUserOperation, ledger: PolicyLedger, enabling: Bool = false, now: UInt64? = nil,
                      entryPoint: EntryPointVersion = .v07) -> Result<PolicyAllowance, PolicyDenial> {
        var state = Evaluation(ledger: ledger, reset: enabling ? configIds : [])
        do {
            try evaluate(op, &state)
        } catch {
            return .failure(error)
        }
        let allowance = PolicyAllowance(delta: LedgerDelta(resetConfigIds: state.reset, updates: state.updates),
                                        validAfter: state.validAfter, validUntil: state.validUntil)
        if let now {
            if allowance.validUntil != 0 && now > allowance.validUntil {
                return .failure(PolicyDenial("expired", "the session's time frame ended at \(UTCTime.format(allowance.validUntil))"))
            }
            let early = entryPoint == .v07 ? now < allowance.validAfter : now <= allowance.validAfter && allowance.validAfter != 0
            if early {
                return .failure(PolicyDenial("not_yet_valid", "the session's time frame starts at \(UTCTime.format(allowance.validAfter))"))
            }
        }
        return .success(allowance)
    }

    /// Working state: counters read through the ledger, written to `updates`.
    struct Evaluation {
        let ledger: PolicyLedger
        let reset: Set<Bytes32>
        var updates: [LedgerKey: UInt256] = [:]
        var validAfter: UInt64 = 0
        var validUntil: UInt64 = 0

        func value(_ key: LedgerKey, initial: UInt256 = 0) -> UInt256 {
            updates[key] ?? (reset.contains(key.configId) ? nil : ledger[key]) ?? initial
        }
        mutating func set(_ key: LedgerKey, _ value: UInt256) { updates[key] = value }

        mutating func window(until: UInt64, after: UInt64) {
            validAfter = max(validAfter, after)
            if until != 0 { validUntil = validUntil == 0 ? until : min(validUntil, until) }
        }
    }

    func evaluate(_ op: PackedUserOperation, _ state: inout Evaluation) throws(PolicyDenial) {
        guard op.sender == account else {
            throw PolicyDenial("wrong_sender", "the operation's sender \(op.sender) is not the session's account \(account)")
        }
        if !op.paymasterAndData.isEmpty {
            guard session.permitERC4337Paymaster else {
                throw PolicyDenial("paymaster_not_permitted", "the session does not permit a paymaster")
            }
            guard !userOpPolicies.isEmpty else {
                throw PolicyDenial("paymaster_not_permitted", "a paymaster needs at least one user-operation policy")
            }
        }
        for p in userOpPolicies { try checkUserOp(p, configId: userOpConfigId, op: op, &state) }

        guard op.callData.count >= 4 else { throw PolicyDenial("malformed_calldata", "callData is shorter than a selector") }
        let selector = Selector(bytes: op.callData[0..<4])!
        if selector == Selector(bytes: ExecuteCall.selector)! {
            let call: ExecuteCall
            do { call = try ExecuteCall(calldata: op.callData) } catch {
                throw PolicyDenial(error.reason.hasPrefix("unsupported call type") ? "unsupported_execution" : "malformed_calldata", "execute calldata: \(error)")
            }
            guard call.mode.execType == .default else {
                throw PolicyDenial("unsupported_execution", "SmartSession only allows the default exec type, not \(call.mode.execType)")
            }
            switch call.calls {
            case .single, .batch: break
            default: throw PolicyDenial("unsupported_execution", "SmartSession does not allow \(call.mode.callType) executions")
            }
            let executions = call.executions
            guard !executions.isEmpty else { throw PolicyDenial("malformed_calldata", "an empty batch") }
            for (i, e) in executions.enumerated() {
                try checkExecution(e, index: i, &state)
            }
        } else if selector == Selector(rawValue: 0x8dd7_712f) {
            throw PolicyDenial("unsupported_execution", "executeUserOp is not allowed for sessions")
        } else {
            // Any other call is an action on the account itself, with no fallback.
            guard let action = actions[ActionKey(target: account, selector: selector)], !action.policies.isEmpty else {
                throw PolicyDenial("no_policies", "the session has no policy for \(selector) on the account itself")
            }
            try checkAction(action, target: account, value: 0, data: op.callData, what: "account call \(selector)", &state)
        }
    }

    func checkExecution(_ e: Execution, index: Int, _ state: inout Evaluation) throws(PolicyDenial) {
        let selector = Selector(calldata: e.callData)
        let what = "execution \(index) (\(e.target) \(selector))"
        if e.target == account && selector == Selector(bytes: ExecuteCall.selector)! {
            throw PolicyDenial("invalid_self_call", "\(what): the account may not call its own execute")
        }
        if e.target == ActionData.fallbackTarget {
            throw PolicyDenial("invalid_self_call", "\(what): address(1) is not a valid target")
        }
        if e.target == smartSession {
            guard let admin = actions[ActionKey(target: ActionData.fallbackTarget, selector: .fallbackSmartSessionCall)], !admin.policies.isEmpty else {
                throw PolicyDenial("no_policies", "\(what): the session may not call SmartSession")
            }
            try checkAction(admin, target: e.target, value: e.value, data: e.callData, what: what, &state)
            return
        }
        if let action = actions[ActionKey(target: e.target, selector: selector)], !action.policies.isEmpty {
            try checkAction(action, target: e.target, value: e.value, data: e.callData, what: what, &state)
        } else if let fallback = actions[ActionKey(target: ActionData.fallbackTarget, selector: .fallback)], !fallback.policies.isEmpty {
            try checkAction(fallback, target: e.target, value: e.value, data: e.callData, what: what + " under the fallback action", &state)
        } else {
            throw PolicyDenial("no_policies", "\(what): the session does not allow this call")
        }
    }
}
