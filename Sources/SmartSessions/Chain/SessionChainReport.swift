import EthereumCore

/// A session's state on one chain set beside what the agent knows of it: whether the chain has
/// it enabled as the agent thinks, whether the owners' enable signature can still enable it,
/// and whether each policy counter on chain is where the agent's ledger is. The ledger may
/// run ahead of the chain (operations signed and not yet included); it must never fall
/// behind: a chain that counted more than the agent signed means the session was used
/// elsewhere.
public struct SessionChainReport: Sendable, Equatable {
    public enum Severity: String, Sendable, Comparable {
        case info, warning, critical
        public static func < (a: Severity, b: Severity) -> Bool { a.order < b.order }
        var order: Int { switch self { case .info: 0; case .warning: 1; case .critical: 2 } }
    }

    public struct Finding: Sendable, Equatable {
        public var severity: Severity
        /// Machine-readable: `not_deployed`, `not_installed`, `enabled`, `not_enabled`, …
        public var reason: String
        public var message: String
    }

    public struct Counter: Sendable, Equatable {
        public var key: LedgerKey
        public var local: UInt256
        public var chain: UInt256
        /// "USDC spent (ERC20SpendingLimitPolicy 0x…): 6 USDC signed here, 5 USDC on chain"
        public var text: String
    }

    public var chainId: UInt64
    public var state: SessionOnChainState
    public var counters: [Counter]
    public var unreadable: [LedgerKey]
    public var findings: [Finding]

    /// The worst finding's severity.
    public var severity: Severity { findings.map(\.severity).max() ?? .info }

    /// - Parameters:
    ///   - ledger: the agent's ledger of the session on this chain.
    ///   - enabledHere: whether the agent signed the session's enabling on this chain (an
    ///     ENABLE user operation, or the account's `enableSessions`).
    ///   - signedNonce: the enable nonce the owners' signature is for, nil when they signed none.
    ///   - revoked: the agent revoked the session (its key is erased).
    ///   - keyMayBeElsewhere: the session allows its key to be handed to its client, which then
    ///     signs without the agent: the chain ahead of the ledger is to be expected.
    ///   - tokens: to name token amounts ("5 USDC").
    public init(chainId: UInt64, reads: SessionOnChainReads, state: SessionOnChainState, ledger: PolicyLedger,
                enabledHere: Bool, signedNonce: UInt256?, revoked: Bool = false, keyMayBeElsewhere: Bool = false, tokens: TokenList = TokenList()) {
        self.chainId = chainId
        self.state = state
        unreadable = reads.unreadable
        var findings: [Finding] = []
        func add(_ severity: Severity, _ reason: String, _ message: String) { findings.append(Finding(severity: severity, reason: reason, message: message)) }
        let account = reads.account.checksummed
        if !state.deployed {
            add(.warning, "not_deployed", "the account \(account) has no code on chain \(chainId): it is deployed by its first user operation's initCode")
        } else if state.installed == false {
            add(.critical, "not_installed", "SmartSession is not installed on the account: no session of it can be used until the account installs it")
        } else if state.installed == nil {
            add(.warning, "install_unknown", "the account does not answer isModuleInstalled (ERC-7579): whether SmartSession is installed is unknown")
        }
        switch (state.enabled, enabledHere) {
        case (true, _) where revoked:
            add(.warning, "revoked_but_enabled", "revoked here, but still enabled on chain: `session-agent account end` removes it there, and voids its owners' enable signature")
        case (false, _) where revoked && keyMayBeElsewhere && signedNonce == state.nonce:
            add(.warning, "revoked_enable_outstanding", "revoked here and not enabled on chain, but its owners' enable signature (nonce \(state.nonce)) is still valid and its client may hold its key (the session allows export): `session-agent account end` voids the signature")
        case (false, _) where revoked:
            add(.info, "ended", "revoked here, and not enabled on chain")
        case (true, true):
            add(.info, "enabled", "enabled on chain, as this agent enabled it")
        case (true, false) where keyMayBeElsewhere:
            add(.info, "enabled_by_client", "enabled on chain by its client, which may hold its key (the session allows export)")
        case (true, false):
            add(.warning, "enabled_elsewhere", "enabled on chain, but not by an enabling this agent signed: its user operations from here still go in ENABLE mode")
        case (false, true):
            add(.warning, "not_enabled_yet", "this agent signed its enabling, but the chain does not have it enabled: the operation is not included yet, failed, or the session was removed")
        case (false, false):
            switch signedNonce {
            case nil:
                add(.info, "not_enabled", "not enabled; its owners signed no enabling for this chain")
            case let n? where n == state.nonce:
                add(.info, "enable_outstanding", "not enabled; the owners' enable signature (nonce \(n)) is valid: the session's first ENABLE user operation enables it")
            case let n? where n < state.nonce:
                add(.warning, "enable_signature_spent", "not enabled, and the owners' enable signature (nonce \(n)) can no longer enable it: the chain's enable nonce is \(state.nonce) (the signature was used or revoked)")
            case let n?:
                add(.warning, "enable_signature_early", "not enabled; the owners' enable signature is for nonce \(n), ahead of the chain's \(state.nonce): it is not valid until the nonce gets there")
            }
        }
        var counters: [Counter] = []
        if state.enabled {
            for key in state.counters.keys.sorted() {
                let chain = state.counters[key]!, local = ledger[key] ?? .zero
                let (name, amount) = Self.describe(key, chainId: chainId, tokens: tokens)
                counters.append(Counter(key: key, local: local, chain: chain, text: "\(name): \(amount(local)) signed here, \(amount(chain)) on chain"))
                if chain > local, keyMayBeElsewhere {
                    add(.warning, "signed_by_client", "\(name): the chain counted \(amount(chain)), this agent signed for \(amount(local)): its client may hold its key (the session allows export) and sign without this agent")
                } else if chain > local {
                    add(.critical, "counted_elsewhere", "\(name): the chain counted \(amount(chain)), this agent signed for \(amount(local)): the session was used outside this agent (its key, or an enable signature, is elsewhere), or the agent's ledger is older than the chain")
                } else if chain < local {
                    add(.info, "pending", "\(name): this agent signed for \(amount(local)), the chain counted \(amount(chain)): operations signed here are not on chain yet (pending, dropped or never sent)")
                }
            }
        }
        self.counters = counters
        self.findings = findings
    }

    /// A counter's name and how its amounts read: "uses", "native value" in ETH, "USDC spent"
    /// in USDC, "gas" in units, "gas cost" in ETH; each with its policy.
    static func describe(_ key: LedgerKey, chainId: UInt64, tokens: TokenList) -> (String, (UInt256) -> String) {
        let policy = "\(PolicyRegistry.deployment(at: key.policy).map { "\($0.kind.rawValue) " } ?? "")\(key.policy.checksummed)"
        let parts = key.counter.split(separator: ":", maxSplits: 1).map(String.init)
        let token = parts.count == 2 ? try? Address(parts[1]) : nil
        let symbol = token.flatMap { tokens.token(chains: [chainId], address: $0)?.symbol } ?? parts.last ?? ""
        switch parts[0] {
        case "used": return ("uses (\(policy))", { "\($0)" })
        case "valueUsed": return ("native value (\(policy))", Amounts.eth)
        case "gasUsed": return ("gas (\(policy))", { "\($0) gas" })
        case "costUsed": return ("gas cost (\(policy))", Amounts.eth)
        case "spent", "approved":
            return ("\(symbol) \(parts[0]) (\(policy))", { amount in token.map { tokens.amount(amount, of: $0, chains: [chainId]) } ?? "\(amount)" })
        default: return ("\(key.counter) (\(policy))", { "\($0)" })
        }
    }
}
