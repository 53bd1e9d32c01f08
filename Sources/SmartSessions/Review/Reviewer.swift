import EthereumCore

/// Builds the `SessionReview` of a compiled request: every field that enters the digest,
/// decoded; the risk flags; the worst-case exposure.
public struct Reviewer: Sendable {
    public var tokens: TokenList
    public var now: UInt64

    public init(tokens: TokenList = TokenList(), now: UInt64) {
        self.tokens = tokens
        self.now = now
    }

    public func review(_ request: CompiledRequest) -> SessionReview {
        let chainIds = request.chains.map(\.chainId)
        let session = request.session
        let chainDigests = request.chainDigests
        let known = request.decodedPolicies
        let userOp = session.userOpPolicies.map { policyView($0, slot: .userOp, function: nil, target: nil, chains: chainIds, known: known) }
        let actions = session.actions.map { actionView($0, request: request) }
        let erc1271 = session.erc7739Policies.erc1271Policies.map { policyView($0, slot: .erc1271, function: nil, target: nil, chains: chainIds, known: known) }
        var review = SessionReview(
            format: request.format, label: request.label, account: request.account, accountKind: request.accountKind,
            mode: request.mode,
            chains: zip(request.chains, chainDigests).map { .init(chainId: $0.chainId, nonce: $0.nonce, sessionDigest: $1.sessionDigest) },
            permissionId: request.permissionId, multichainDigest: EnableDigest.multichainDigest(chainDigests),
            validator: validatorView(session), salt: session.salt, flags: session.signedFlags(mode: request.mode),
            userOpPolicies: userOp, actions: actions, erc7739Contexts: session.erc7739Policies.allowedERC7739Content,
            erc1271Policies: erc1271, appDomains: request.appDomains, exportKey: request.exportKey, risks: [],
            exposure: .init(native: .limited(0), tokens: [], otherContracts: []), now: now)
        review.exposure = exposure(review, chains: chainIds)
        review.kernelVersion = request.kernelVersion
        review.risks = risks(review, request: request).sorted { a, b in
            a.severity != b.severity ? a.severity > b.severity : (a.code, a.message) < (b.code, b.message)
        }
        return review
    }

    // MARK: - Decoding

    func validatorView(_ s: Session) -> SessionReview.ValidatorView {
        let known = [SmartSessionAddresses.ownableValidator: "OwnableValidator", SmartSessionAddresses.olderOwnableValidator: "OwnableValidator (older, EIP-191)"]
        if let name = known[s.sessionValidator], let config = try? OwnableValidatorConfig(initData: s.sessionValidatorInitData) {
            return .init(address: s.sessionValidator, name: name, threshold: config.threshold, keys: config.owners, initData: s.sessionValidatorInitData)
        }
        return .init(address: s.sessionValidator, name: known[s.sessionValidator].map { "\($0) with undecodable init data" } ?? "unknown session validator",
                     threshold: nil, keys: [], initData: s.sessionValidatorInitData)
    }

    func actionView(_ a: ActionData, request: CompiledRequest) -> SessionReview.ActionView {
        let chains = request.chains.map(\.chainId)
        let kind: SessionReview.ActionKind = a.isFallback ? .fallback : a.isSmartSessionCall ? .smartSessionCall
            : a.actionTargetSelector == .valueTransfer ? .valueTransfer : .call
        var function: ABIFunction?
        var source: String?
        if let f = request.functions[ActionKey(target: a.actionTarget, selector: a.actionTargetSelector)], f.selector == a.actionTargetSelector.bytes {
            function = f
            source = "request ABI"
        } else if let entry = KnownSelectors.entries(for: a.actionTargetSelector).first {
            function = entry.function
            let families = KnownSelectors.entries(for: a.actionTargetSelector).map(\.family)
            source = families.count > 1 ? families.joined(separator: " / ") : entry.family
        }
        var targetName: String?
        if let t = tokens.token(chains: chains, address: a.actionTarget) { targetName = "\(t.symbol) token" }
        if a.actionTarget == request.account { targetName = "the account itself" }
        if a.actionTarget == ActionData.fallbackTarget { targetName = "any contract" }
        return .init(kind: kind, target: a.actionTarget, targetName: targetName, selector: a.actionTargetSelector,
                     function: function?.description, functionSource: source,
                     policies: a.actionPolicies.map { policyView($0, slot: .action, function: function, target: a.actionTarget, chains: chains, known: request.decodedPolicies) })
    }

    func policyView(_ p: PolicyData, slot: PolicySlot, function: ABIFunction?, target: Address?, chains: [UInt64],
                    known: [PolicyData: PolicyConfig]) -> SessionReview.PolicyView {
        guard let deployment = PolicyRegistry.deployment(at: p.policy) else {
            return .init(address: p.policy, kind: nil, isCurrentDeployment: false, config: nil,
                         meaning: ["unknown policy contract: its init data cannot be decoded and its checks are unknown"],
                         initData: p.initData, ignoredBytes: 0)
        }
        let ignored = PolicyConfig.ignoredBytes(deployment.kind, initData: p.initData)
        guard let config = known[p] ?? (try? PolicyConfig.decode(deployment.kind, initData: p.initData)) else {
            return .init(address: p.policy, kind: deployment.kind, isCurrentDeployment: deployment.isCurrent, config: nil,
                         meaning: ["init data the contract would reject: enabling this session fails"], initData: p.initData, ignoredBytes: ignored)
        }
        var meaning = describe(config, slot: slot, function: function, target: target, chains: chains)
        if ignored > 0 && deployment.kind != .sudo { meaning.append("\(ignored) trailing bytes of init data are never read by the contract") }
        return .init(address: p.policy, kind: deployment.kind, isCurrentDeployment: deployment.isCurrent, config: config,
                     meaning: meaning, initData: p.initData, ignoredBytes: ignored)
    }

    func tokenAmount(_ amount: UInt256, token: Address, chains: [UInt64]) -> String {
        guard tokens.token(chains: chains, address: token) != nil else { return "\(amount) base units of \(token)" }
        return "\(tokens.amount(amount, of: token, chains: chains)) (\(amount) base units)"
    }

    func time(_ t: UInt64) -> String { "\(UTCTime.format(t)) (\(UTCTime.relative(t, now: now)))" }

    func describe(_ config: PolicyConfig, slot: PolicySlot, function: ABIFunction?, target: Address?, chains: [UInt64]) -> [String] {
        let what = slot == .userOp ? "user operation" : slot == .action ? "call" : "signature"
        switch config {
        case .sudo:
            return ["no limit: every \(slot == .userOp ? "user operation" : slot == .action ? "call" : "signature") passes"]
        case .timeFrame(let until, let after):
            if until == 0 && after == 0 { return ["never valid: an uninitialised time frame makes every check revert"] }
            let from = after == 0 ? "from enabling" : "from \(time(after))"
            let to = until == 0 ? "with no end" : "until \(time(until))"
            return ["valid \(from) \(to)"]
        case .usageLimit(let n):
            return ["at most \(n) \(what)\(n == .one ? "" : "s") in total"]
        case .valueLimit(let limit):
            return ["at most \(Amounts.eth(limit)) of native value in total (\(limit) wei)"]
        case .erc20SpendingLimit(let limits):
            return limits.map { "at most \(tokenAmount($0.limit, token: $0.token, chains: chains)) of \($0.token) transferred or approved in total; no native value" }
        case .uniAction(let c):
            return ["at most \(Amounts.eth(c.valueLimitPerUse)) of native value per call"]
                + c.rules.map { "argument rule: " + describe($0, function: function, target: target, chains: chains) }
        case .contractWhitelist(let targets):
            return ["only calls to: " + targets.map(\.checksummed).joined(separator: ", ")]
        case .simpleGas(let gas, let cost):
            return ["at most \(gas) gas units and \(Amounts.eth(cost)) of gas cost in total"]
        case .arg(let c):
            var lines = ["at most \(Amounts.eth(c.valueLimitPerUse)) of native value per call", "calls pass when " + expression(c, Int(c.rootNodeIndex), depth: 0)]
            lines += c.rules.enumerated().map { "rule r\($0): " + describe($1, function: function, target: target, chains: chains) }
            if c.hasCycle { lines.append("the expression refers back to itself: every check runs out of gas") }
            return lines
        }
    }

    func expression(_ c: ArgPolicyConfig, _ node: Int, depth: Int) -> String {
        guard depth < 12, node < c.nodes.count else { return "…" }
        switch c.nodes[node] {
        case .rule(let r): return "r\(r)"
        case .not(let x): return "NOT " + expression(c, Int(x), depth: depth + 1)
        case .and(let l, let r): return "(" + expression(c, Int(l), depth: depth + 1) + " AND " + expression(c, Int(r), depth: depth + 1) + ")"
        case .or(let l, let r): return "(" + expression(c, Int(l), depth: depth + 1) + " OR " + expression(c, Int(r), depth: depth + 1) + ")"
        }
    }

    /// The parameter a rule's offset lands on, when the function is known.
    func parameter(at offset: UInt64, in function: ABIFunction?) -> ABIParameter? {
        guard let function else { return nil }
        var position: UInt64 = 0
        for p in function.inputs {
            if position == offset, !p.type.isDynamic, p.type.headSize == 32 { return p }
            position += UInt64(p.type.headSize)
        }
        return nil
    }

    func describe(_ rule: ParamRule, function: ABIFunction?, target: Address?, chains: [UInt64]) -> String {
        let p = parameter(at: rule.offset, in: function)
        let name = p.map { $0.name.isEmpty ? "argument at offset \(rule.offset)" : $0.name } ?? "calldata word at offset \(rule.offset)"
        func value(_ v: UInt256) -> String {
            switch p?.type {
            case .address?: return v.bitWidth <= 160 ? Address(exactly: Array(v.bigEndianBytes[12...]))!.checksummed : v.hexQuantity
            case .bool?: return v == .one ? "true" : v.isZero ? "false" : v.description
            case .fixedBytes(let n)?: return Hex.encode(v.bigEndianBytes.prefix(n))
            case .uint?:
                if let target, let t = tokens.token(chains: chains, address: target), KnownSelectors.tokenMoving.contains(Selector(bytes: function!.selector)!) {
                    return "\(Amounts.format(v, decimals: t.decimals)) \(t.symbol) (\(v))"
                }
                return v.description
            default: return v.hexQuantity
            }
        }
        let ref = UInt256(rule.ref)
        var text: String
        switch rule.condition {
        case .inRange:
            text = "\(name) in [\(value(ref.shiftedRight(128))), \(value(ref & UInt256.powerOfTwo(128).subtractingReportingOverflow(.one).partialValue))]"
        case .greaterThanOrEqual where rule.isLimited && ref.isZero:
            text = "\(name) any value"
        default:
            text = "\(name) \(rule.condition) \(value(ref))"
        }
        if rule.isLimited {
            let remaining = rule.limit >= rule.used ? rule.limit.subtractingReportingOverflow(rule.used).partialValue : .zero
            text += "; the sum of \(name) over all calls at most \(value(rule.limit))"
            if !rule.used.isZero { text += ", of which \(value(rule.used)) counts as used already (\(value(remaining)) left)" }
        }
        return text
    }

    // MARK: - Exposure

    func exposure(_ r: SessionReview, chains: [UInt64]) -> SessionReview.Exposure {
        let hasFallback = r.actions.contains { $0.kind == .fallback }
        // Native value: a session-wide ValueLimit bounds every execution.
        var native: SessionReview.Bound
        let sessionValueLimits = r.userOpPolicies.compactMap { if case .valueLimit(let l)? = $0.config { l } else { nil } }
        if let limit = sessionValueLimits.min() {
            native = .limited(limit)
        } else {
            native = .limited(0)
            for a in r.actions {
                switch (native, actionValueBound(a)) {
                case (.limited(let sum), .limited(let v)):
                    let (total, overflow) = sum.addingReportingOverflow(v)
                    native = overflow ? .unbounded("the limits add up beyond 2^256") : .limited(total)
                case (.limited, .unbounded(let why)):
                    native = .unbounded(why)
                default: break
                }
            }
        }

        var tokenBounds: [Address: SessionReview.Bound] = [:]
        var others: [String] = []
        for a in r.actions where a.kind == .call {
            let isToken = tokens.token(chains: chains, address: a.target) != nil || a.policies.contains { policyLimits($0).keys.contains(a.target) }
            if KnownSelectors.tokenMoving.contains(a.selector) {
                let bound = actionTokenBound(a)
                switch (tokenBounds[a.target] ?? .limited(0), bound) {
                case (.limited(let sum), .limited(let v)):
                    let (total, overflow) = sum.addingReportingOverflow(v)
                    tokenBounds[a.target] = overflow ? .unbounded("the limits add up beyond 2^256") : .limited(total)
                case (.limited, .unbounded(let why)):
                    tokenBounds[a.target] = .unbounded(why)
                default: break
                }
            } else if isToken {
                others.append("\(a.function ?? a.selector.hex) on the \(a.targetName ?? "token") \(a.target.checksummed)")
            } else if a.target != r.account {
                others.append("\(a.function ?? a.selector.hex) on \(a.target.checksummed): can move whatever the account has approved to it or sends it")
            }
        }
        if hasFallback {
            for t in tokenBounds.keys { tokenBounds[t] = .unbounded("the fallback action allows any call") }
            others.append("any contract, through the fallback action")
        }
        if !r.erc7739Contexts.isEmpty {
            for t in tokenBounds.keys { tokenBounds[t] = .unbounded("the session key's signed messages pass as the account's approval of any hash (spec §14.7)") }
            others.append("any contract that takes the account's ERC-1271 signature as its approval (Permit2, order books): the session key's signed messages pass for any hash")
        }
        let tokenList = tokenBounds.keys.sorted().map { t -> SessionReview.TokenExposure in
            let info = tokens.token(chains: chains, address: t)
            return .init(token: t, symbol: info?.symbol, decimals: info?.decimals, bound: tokenBounds[t]!)
        }
        return .init(native: native, tokens: tokenList, otherContracts: others)
    }

    func policyLimits(_ p: SessionReview.PolicyView) -> [Address: UInt256] {
        guard case .erc20SpendingLimit(let limits)? = p.config else { return [:] }
        return Dictionary(limits.map { ($0.token, $0.limit) }, uniquingKeysWith: max)
    }

    /// The most native value the calls of one action can carry over the session.
    func actionValueBound(_ a: SessionReview.ActionView) -> SessionReview.Bound {
        var best: UInt256?
        let uses = a.policies.compactMap { if case .usageLimit(let n)? = $0.config { n } else { nil } }.min()
        for p in a.policies {
            var bound: UInt256?
            switch p.config {
            case .erc20SpendingLimit?: bound = 0
            case .valueLimit(let l)?: bound = l
            case .uniAction(let c)?: bound = c.valueLimitPerUse.isZero ? 0 : uses.map { c.valueLimitPerUse.multipliedReportingOverflow(by: $0) }.flatMap { $0.overflow ? nil : $0.partialValue }
            case .arg(let c)?: bound = c.valueLimitPerUse.isZero ? 0 : uses.map { c.valueLimitPerUse.multipliedReportingOverflow(by: $0) }.flatMap { $0.overflow ? nil : $0.partialValue }
            default: break
            }
            if let bound { best = best.map { min($0, bound) } ?? bound }
        }
        if let best { return .limited(best) }
        return .unbounded("\(label(a)) has no value limit")
    }

    /// The most tokens one token-moving action can move or approve over the session.
    func actionTokenBound(_ a: SessionReview.ActionView) -> SessionReview.Bound {
        var best: UInt256?
        // A per-call cap times the uses past 2^256 bounds nothing (wrapped, it read as a small
        // amount, and a rules file's max_token_amounts let the session through).
        var beyondRange = false
        let amountOffset: UInt64 = a.selector == KnownSelectors.erc20TransferFrom ? 64 : 32
        for p in a.policies {
            var bound: UInt256?
            switch p.config {
            case .erc20SpendingLimit(let limits)?: bound = limits.first { $0.token == a.target }?.limit
            case .uniAction(let c)?:
                bound = c.rules.filter { $0.isLimited && $0.offset == amountOffset }
                    .map { $0.limit >= $0.used ? $0.limit.subtractingReportingOverflow($0.used).partialValue : .zero }.min()
                if bound == nil, let cap = c.rules.first(where: { $0.offset == amountOffset && ($0.condition == .lessThanOrEqual || $0.condition == .lessThan || $0.condition == .equal) }) {
                    let uses = a.policies.compactMap { if case .usageLimit(let n)? = $0.config { n } else { nil } }.min()
                    if let uses {
                        let (total, overflow) = UInt256(cap.ref).multipliedReportingOverflow(by: uses)
                        if overflow { beyondRange = true } else { bound = total }
                    }
                }
            default: break
            }
            if let bound { best = best.map { min($0, bound) } ?? bound }
        }
        if let best { return .limited(best) }
        return .unbounded("\(label(a)) has no amount limit" + (beyondRange ? " within 2^256 (its per-call cap times its uses)" : ""))
    }

    func label(_ a: SessionReview.ActionView) -> String {
        switch a.kind {
        case .fallback: "the fallback action (any contract)"
        case .smartSessionCall: "calls to SmartSession"
        case .valueTransfer: "native transfers to \(a.target.checksummed)"
        case .call: (a.targetName.map { "\($0) " } ?? "") + a.target.checksummed + "." + (a.function ?? a.selector.hex)
        }
    }
}
