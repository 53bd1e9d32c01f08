import EthereumCore

/// One chain a session is enabled on, with the enable nonce (`SmartSession.getNonce`) there.
public struct ChainTarget: Hashable, Sendable {
    public var chainId: UInt64
    public var nonce: UInt256

    public init(chainId: UInt64, nonce: UInt256 = 0) {
        self.chainId = chainId
        self.nonce = nonce
    }
}

/// A call a session may make: target and selector (0xffffffff for plain value transfers).
public struct ActionKey: Hashable, Sendable, Comparable {
    public var target: Address
    public var selector: Selector

    public init(target: Address, selector: Selector) {
        self.target = target
        self.selector = selector
    }

    public static func < (l: ActionKey, r: ActionKey) -> Bool { (l.target, l.selector) < (r.target, r.selector) }
}

/// Which shape the client wrote.
public enum RequestFormat: String, Sendable {
    case native = "session-agent"
    case grantPermissions = "erc7715-wallet_grantPermissions"
    case requestExecutionPermissions = "erc7715-wallet_requestExecutionPermissions"
    case rawSession = "raw-session"
}

/// A request compiled to the exact `Session` and everything else that enters the digests.
/// What is reviewed and what is signed are both computed from this one value.
public struct CompiledRequest: Sendable {
    public var format: RequestFormat
    public var account: Address
    public var accountKind: AccountKind?
    /// The version in a Kernel account's EIP-712 domain, which Kernel wraps the owners' digest in.
    public var kernelVersion = AccountKind.kernelV31
    public var chains: [ChainTarget]
    public var mode: SmartSessionMode
    public var session: Session
    /// Function descriptions from the request's ABI, used only as labels: the selector shown
    /// is always the one in the session.
    public var functions: [ActionKey: ABIFunction]
    /// Whether the client asked to receive the session key itself.
    public var exportKey: Bool
    public var label: String?
    /// The application domains the request named for typed data, in words, by their separator
    /// (the session holds only the hash).
    public var appDomains: [Bytes32: String] = [:]
    /// The decoded configuration of each known policy of the session, filled by `check` (which
    /// refuses what a policy's initializer would revert on), so review does not decode it again.
    public internal(set) var decodedPolicies: [PolicyData: PolicyConfig] = [:]
    /// Where the request gave each part of the session, keyed by the part's path in the session
    /// (`actions[0]`, `actions[0].actionPolicies[1]`, `userOpPolicies[2]`): the request's own
    /// field (`permissions[0]`, `permissions[0].spendingLimit`), so that a refusal names what
    /// the client wrote. A part not in it is named by its path in the session.
    var requestFields: [String: String] = [:]

    /// What the request calls a part of the session.
    func field(_ sessionPath: String) -> String { requestFields[sessionPath] ?? sessionPath }

    /// `requestFields` of a session whose actions came from `actions` (the field of each, and of
    /// each of its policies) and whose userOp policies came from `userOpPolicies`, in order.
    static func requestFields(actions: [(field: String, policyFields: [String])], userOpPolicies: [String]) -> [String: String] {
        var fields: [String: String] = [:]
        for (j, field) in userOpPolicies.enumerated() { fields["userOpPolicies[\(j)]"] = field }
        for (i, action) in actions.enumerated() {
            fields["actions[\(i)]"] = action.field
            for (j, field) in action.policyFields.enumerated() { fields["actions[\(i)].actionPolicies[\(j)]"] = field }
        }
        return fields
    }

    public init(format: RequestFormat, account: Address, accountKind: AccountKind? = nil, chains: [ChainTarget],
                mode: SmartSessionMode = .enable, session: Session, functions: [ActionKey: ABIFunction] = [:],
                exportKey: Bool = false, label: String? = nil) {
        self.format = format
        self.account = account
        self.accountKind = accountKind
        self.chains = chains
        self.mode = mode
        self.session = session
        self.functions = functions
        self.exportKey = exportKey
        self.label = label
    }

    public var permissionId: Bytes32 { session.permissionId }

    public func sessionDigest(on chain: ChainTarget) -> Bytes32 {
        EnableDigest.sessionDigest(session, account: account, mode: mode, nonce: chain.nonce)
    }

    /// The (chainId, sessionDigest) pairs in signing order.
    public var chainDigests: [ChainDigest] {
        let digests = EnableDigest.sessionDigests(session, account: account, mode: mode, nonces: chains.map(\.nonce))
        return zip(chains, digests).map { ChainDigest(chainId: $0.chainId, sessionDigest: $1) }
    }

    /// The digest of every chain's session digest.
    public var multichainDigest: Bytes32 { EnableDigest.multichainDigest(chainDigests) }

    /// What the owners sign: the multichain digest, as the account's owner validator is given it.
    public var ownerDigest: Bytes32 {
        (accountKind ?? .erc7579Reference).ownerDigest(multichainDigest, account: account, chainIds: chains.map(\.chainId), kernelVersion: kernelVersion)
    }

    /// The owners' `permissionEnableSig`: their validator's signature of `ownerDigest`, routed
    /// to `validator` as the account reads it.
    public func permissionEnableSig(validator: Address, ownerSignature: [UInt8]) -> [UInt8] {
        (accountKind ?? .erc7579Reference).permissionEnableSig(validator: validator, signature: ownerSignature, chainIds: chains.map(\.chainId),
                                                               kernelVersion: kernelVersion)
    }

    /// The enable data for `chainId`, given the assembled `permissionEnableSig`.
    public func enableSession(for chainId: UInt64, permissionEnableSig: [UInt8]) throws(SmartSessionError) -> EnableSession {
        guard let index = chains.firstIndex(where: { $0.chainId == chainId }) else {
            throw SmartSessionError("chain \(chainId) is not one of the session's chains", reason: "wrong_chain")
        }
        return EnableSession(chainDigestIndex: UInt8(index), hashesAndChainIds: chainDigests, sessionToEnable: session,
                             permissionEnableSig: permissionEnableSig)
    }
}
