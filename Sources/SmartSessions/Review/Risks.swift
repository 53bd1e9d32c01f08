import EthereumCore

extension Reviewer {
    /// The findings an approver must weigh, from the decoded session.
    func risks(_ r: SessionReview, request: CompiledRequest) -> [RiskFlag] {
        var out: [RiskFlag] = []
        let allPolicies = r.userOpPolicies + r.actions.flatMap(\.policies) + r.erc1271Policies

        if let fallback = r.actions.first(where: { $0.kind == .fallback }) {
            let whitelisted = fallback.policies.contains { if case .contractWhitelist? = $0.config { true } else { false } }
            out.append(RiskFlag(whitelisted ? .high : .critical, "no_action_restriction",
                                "the fallback action lets the session call any function of \(whitelisted ? "the whitelisted contracts" : "any contract") that has no policy of its own"))
        }
        if r.actions.contains(where: { $0.kind == .smartSessionCall }) {
            out.append(RiskFlag(.critical, "admin_access", "the session may call SmartSession itself: it can change its own and other sessions' policies"))
        }
        for a in r.actions {
            let name = label(a)
            if a.policies.isEmpty {
                out.append(RiskFlag(.warning, "unusable_action", "\(name) has no policy: SmartSession rejects every call to it (NoPoliciesSet)"))
            }
            if a.policies.contains(where: { $0.kind == .sudo }) {
                if a.kind == .valueTransfer {
                    out.append(RiskFlag(.warning, "sudo", "\(name) are under SudoPolicy: only the session-wide policies limit them"))
                } else {
                    out.append(RiskFlag(a.kind == .fallback ? .critical : .high, "sudo", "\(name) is under SudoPolicy: its calls pass whatever their arguments"))
                }
            }
            if a.kind == .call, a.function == nil {
                out.append(RiskFlag(.warning, "unknown_selector", "\(a.target.checksummed) selector \(a.selector.hex) matches no known function and the request gave no ABI"))
            }
            if a.target == r.account {
                let admin = KnownSelectors.accountAdministration.contains(a.selector)
                out.append(RiskFlag(admin ? .critical : .high, admin ? "account_administration" : "self_call",
                                    admin ? "\(name): the session may change the account's modules or code" : "\(name): the session may call the account itself"))
            }
            let approvals: Set<Selector> = [KnownSelectors.erc20Approve, KnownSelectors.erc20IncreaseAllowance]
            if approvals.contains(a.selector), case .unbounded = actionTokenBound(a) {
                out.append(RiskFlag(.high, "unlimited_approval", "\(name) grants allowances with no amount limit"))
            }
            if a.function?.hasPrefix("setApprovalForAll(") == true || (a.functionSource?.contains("Permit2") == true && a.function?.hasPrefix("approve(") == true) {
                out.append(RiskFlag(.high, "unlimited_approval", "\(name) can hand an operator control of tokens"))
            }
        }
        for p in allPolicies {
            guard let kind = p.kind else {
                out.append(RiskFlag(.critical, "unknown_policy", "policy \(p.address.checksummed) is not a known policy contract; its init data \(Hex.encode(p.initData)) cannot be decoded"))
                continue
            }
            if !p.isCurrentDeployment {
                out.append(RiskFlag(.warning, "older_policy", "\(kind.rawValue) at \(p.address.checksummed) is an older deployment"))
            }
            if p.config == nil {
                out.append(RiskFlag(.high, "policy_never_passes", "\(kind.rawValue) at \(p.address.checksummed) has init data its contract rejects"))
            }
            switch p.config {
            case .timeFrame(0, 0)?:
                out.append(RiskFlag(.warning, "policy_never_passes", "a TimeFramePolicy with neither start nor end reverts on every check"))
            // validUntil is the last second the frame holds, as the EntryPoint reads it.
            case .timeFrame(let until, _)? where until != 0 && until < now:
                out.append(RiskFlag(.warning, "already_expired", "a time frame ended \(UTCTime.relative(until, now: now))"))
            case .arg(let c)? where c.hasCycle:
                out.append(RiskFlag(.warning, "policy_never_passes", "an ArgPolicy expression refers back to itself"))
            case .erc20SpendingLimit(let limits)? where limits.contains(where: { $0.limit.bitWidth > 128 }):
                out.append(RiskFlag(.high, "very_large_limit", "an ERC-20 spending limit of 2^128 base units or more: effectively unlimited"))
            case .valueLimit(let l)? where l.bitWidth > 128:
                out.append(RiskFlag(.high, "very_large_limit", "a native value limit of 2^128 wei or more: effectively unlimited"))
            default: break
            }
        }
        if r.userOpPolicies.contains(where: { $0.kind == .sudo }) {
            out.append(RiskFlag(.warning, "sudo", "a SudoPolicy among the session-wide policies passes every user operation"))
        }
        if r.expiresAt == nil {
            out.append(RiskFlag(.high, "no_expiry", "the session never expires: no time frame ends it"))
        }
        if r.mode == .unsafeEnable {
            out.append(RiskFlag(.warning, "unsafe_enable", "UNSAFE_ENABLE: signed with ignoreSecurityAttestations (the older SmartSession skipped its registry check in this mode)"))
        }
        if r.flags.permitERC4337Paymaster {
            out.append(RiskFlag(.warning, "paymaster", "user operations may use a paymaster: a third party may sponsor, and condition, the session's operations"))
        }
        if !r.erc7739Contexts.isEmpty || !r.erc1271Policies.isEmpty {
            // Case 13 of the contract vectors shows it: a signature given for one message passes
            // with any hash.
            out.append(RiskFlag(.critical, "erc7739", "the session key may sign ERC-1271 messages for the account, and the deployed SmartSession accepts each for any hash "
                                                      + "(spec §14.7): whoever holds one can pass it as the account's approval of anything checked by ERC-1271, "
                                                      + "such as a Permit2 transfer of what the account approved to Permit2"))
        }
        if r.validator.threshold == nil || r.validator.address != SmartSessionAddresses.ownableValidator {
            out.append(RiskFlag(.high, "unknown_session_validator", "session signatures are checked by \(r.validator.name) \(r.validator.address.checksummed)"))
        }
        if r.exportKey {
            out.append(RiskFlag(.warning, "key_export", "the client will receive the session key itself; the agent can no longer check what it signs, and revoking the session in the agent does not stop that key: only removing the session on chain does"))
        }
        if r.chains.count > 1 {
            out.append(RiskFlag(.info, "multichain", "one signature enables the session on \(r.chains.count) chains, and its limits hold on each chain apart"))
        }
        if r.chains.allSatisfy({ Chains.testnets.contains($0.chainId) }) {
            out.append(RiskFlag(.info, "testnet", "test networks only"))
        }
        return out
    }
}
