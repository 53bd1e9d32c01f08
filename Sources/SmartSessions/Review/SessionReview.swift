import EthereumCore

/// Everything an approver must see about a session request, decoded from the same
/// `CompiledRequest` the digests are computed from.
public struct SessionReview: Sendable {
    public struct ChainLine: Sendable {
        public var chainId: UInt64
        public var nonce: UInt256
        public var sessionDigest: Bytes32
    }

    public struct PolicyView: Sendable {
        public var address: Address
        /// "TimeFramePolicy", or nil for an unknown contract.
        public var kind: PolicyKind?
        public var isCurrentDeployment: Bool
        public var config: PolicyConfig?
        /// What the policy allows, one sentence per line.
        public var meaning: [String]
        public var initData: [UInt8]
        public var ignoredBytes: Int
    }

    public enum ActionKind: String, Sendable {
        case call, valueTransfer = "value-transfer", fallback, smartSessionCall = "smart-session-call"
    }

    public struct ActionView: Sendable {
        public var kind: ActionKind
        public var target: Address
        /// "USDC (token)", or nil when the target is not known.
        public var targetName: String?
        public var selector: Selector
        /// "transfer(address to, uint256 amount)", or nil when the selector is unknown.
        public var function: String?
        /// Where the function name comes from: "request ABI", "ERC-20", …
        public var functionSource: String?
        public var policies: [PolicyView]
    }

    public struct ValidatorView: Sendable {
        public var address: Address
        public var name: String
        public var threshold: Int?
        public var keys: [Address]
        public var initData: [UInt8]
    }

    /// A worst-case amount over the session's life.
    public enum Bound: Hashable, Sendable {
        case limited(UInt256)
        case unbounded(String)
    }

    public struct TokenExposure: Sendable {
        public var token: Address
        public var symbol: String?
        public var decimals: Int?
        public var bound: Bound
    }

    public struct Exposure: Sendable {
        public var native: Bound
        public var tokens: [TokenExposure]
        /// Contracts called whose effect on the account's assets policies cannot bound.
        public var otherContracts: [String]
    }

    public var format: RequestFormat
    public var label: String?
    public var account: Address
    public var accountKind: AccountKind?
    /// The version in a Kernel account's EIP-712 domain (`CompiledRequest.kernelVersion`).
    public var kernelVersion = AccountKind.kernelV31
    public var mode: SmartSessionMode
    public var chains: [ChainLine]
    public var permissionId: Bytes32
    public var multichainDigest: Bytes32
    /// What the owners sign: `multichainDigest` as the account's owner validator is given it.
    public var ownerDigest: Bytes32 {
        (accountKind ?? .erc7579Reference).ownerDigest(multichainDigest, account: account, chainIds: chains.map(\.chainId), kernelVersion: kernelVersion)
    }
    public var validator: ValidatorView
    public var salt: Bytes32
    public var flags: SignedFlags
    public var userOpPolicies: [PolicyView]
    public var actions: [ActionView]
    public var erc7739Contexts: [ERC7739Context]
    public var erc1271Policies: [PolicyView]
    /// The request's words for the application domains it named (by separator).
    public var appDomains: [Bytes32: String] = [:]
    public var exportKey: Bool
    public var risks: [RiskFlag]
    public var exposure: Exposure
    /// When the review was made (relative times count from here).
    public var now: UInt64

    public var highestSeverity: Severity? { risks.map(\.severity).max() }

    /// When the session stops being usable: the earliest end among the session-wide time
    /// frames, or, when every call has a time frame of its own, the latest of those; nil when
    /// nothing ends it.
    public var expiresAt: UInt64? {
        func until(_ policies: [PolicyView]) -> UInt64? {
            policies.compactMap { if case .timeFrame(let u, _)? = $0.config, u != 0 { u } else { nil } }.min()
        }
        if let sessionWide = until(userOpPolicies) { return sessionWide }
        let perAction = actions.map { until($0.policies) }
        guard !perAction.isEmpty, perAction.allSatisfy({ $0 != nil }) else { return nil }
        return perAction.compactMap { $0 }.max()
    }
}
