import EthereumCore

/// The EIP-712 hashing of `HashLib.sol` (spec §4): what the owner signs to enable a session.
public enum EnableDigest {
    static func typeHash(_ s: String) -> Bytes32 { Keccak256.hash(utf8: s) }

    static let policyDataType = "PolicyData(address policy,bytes initData)"
    static let actionDataType = "ActionData(bytes4 actionTargetSelector,address actionTarget,PolicyData[] actionPolicies)"
    static let contextType = "ERC7739Context(bytes32 appDomainSeparator,string[] contentName)"
    static let erc7739DataType = "ERC7739Data(ERC7739Context[] allowedERC7739Content,PolicyData[] erc1271Policies)"
    static let permissionsType = "SignedPermissions(bool permitGenericPolicy,bool permitAdminAccess,bool ignoreSecurityAttestations,bool permitERC4337Paymaster,PolicyData[] userOpPolicies,ERC7739Data erc7739Policies,ActionData[] actions)"
    static let sessionType = "SignedSession(address account,SignedPermissions permissions,address sessionValidator,bytes sessionValidatorInitData,bytes32 salt,address smartSession,uint256 nonce)"
    static let chainSessionType = "ChainSession(uint64 chainId,SignedSession session)"

    public static let policyDataTypeHash = typeHash(policyDataType)
    public static let actionDataTypeHash = typeHash(actionDataType + policyDataType)
    public static let contextTypeHash = typeHash(contextType)
    public static let erc7739DataTypeHash = typeHash(erc7739DataType + contextType + policyDataType)
    public static let permissionsTypeHash = typeHash(permissionsType + actionDataType + contextType + erc7739DataType + policyDataType)
    public static let sessionTypeHash = typeHash(sessionType + actionDataType + contextType + erc7739DataType + policyDataType + permissionsType)
    public static let chainSessionTypeHash = typeHash(chainSessionType + actionDataType + contextType + erc7739DataType + policyDataType + permissionsType + sessionType)
    public static let multiChainSessionTypeHash = typeHash("MultiChainSession(ChainSession[] sessionsAndChainIds)" + actionDataType + chainSessionType + contextType + erc7739DataType + policyDataType + permissionsType + sessionType)
    /// `EIP712Domain(string name,string version)` with name "SmartSession", version "1".
    public static let domainSeparator = keccak256(
        typeHash("EIP712Domain(string name,string version)").bytes, Keccak256.hash(utf8: "SmartSession").bytes, Keccak256.hash(utf8: "1").bytes)

    static func words(_ words: Bytes32...) -> Bytes32 {
        var hasher = Keccak256()
        for w in words { hasher.update(w) }
        return hasher.finalize()
    }

    static func bool(_ b: Bool) -> Bytes32 { UInt256(b ? 1 : 0).word }

    static func hashList<T>(_ items: [T], _ hash: (T) -> Bytes32) -> Bytes32 {
        var hasher = Keccak256()
        for item in items { hasher.update(hash(item)) }
        return hasher.finalize()
    }

    public static func hash(_ p: PolicyData) -> Bytes32 {
        words(policyDataTypeHash, p.policy.word, Keccak256.hash(p.initData))
    }

    public static func hash(_ a: ActionData) -> Bytes32 {
        words(actionDataTypeHash, Bytes32(a.actionTargetSelector.bytes + [UInt8](repeating: 0, count: 28)), a.actionTarget.word,
              hashList(a.actionPolicies, hash))
    }

    public static func hash(_ c: ERC7739Context) -> Bytes32 {
        words(contextTypeHash, c.appDomainSeparator, hashList(c.contentNames) { Keccak256.hash(utf8: $0) })
    }

    public static func hash(_ d: ERC7739Data) -> Bytes32 {
        words(erc7739DataTypeHash, hashList(d.allowedERC7739Content, hash), hashList(d.erc1271Policies, hash))
    }

    /// `hashPermissions`: the three flags are derived from the session and the mode, never
    /// taken from a client.
    public static func hashPermissions(_ s: Session, mode: SmartSessionMode) -> Bytes32 {
        let flags = s.signedFlags(mode: mode)
        return words(permissionsTypeHash, bool(flags.permitGenericPolicy), bool(flags.permitAdminAccess),
                     bool(flags.ignoreSecurityAttestations), bool(flags.permitERC4337Paymaster),
                     hashList(s.userOpPolicies, hash), hash(s.erc7739Policies), hashList(s.actions, hash))
    }

    /// hashStruct(SignedSession): what the contract recomputes on the chain it runs on.
    public static func sessionDigest(_ s: Session, account: Address, mode: SmartSessionMode, nonce: UInt256,
                                     smartSession: Address = SmartSessionAddresses.smartSession) -> Bytes32 {
        sessionDigests(s, account: account, mode: mode, nonces: [nonce], smartSession: smartSession)[0]
    }

    /// The session digests at several nonces, hashing the permissions once.
    public static func sessionDigests(_ s: Session, account: Address, mode: SmartSessionMode, nonces: [UInt256],
                                      smartSession: Address = SmartSessionAddresses.smartSession) -> [Bytes32] {
        let permissions = hashPermissions(s, mode: mode)
        let initData = Keccak256.hash(s.sessionValidatorInitData)
        return nonces.map { words(sessionTypeHash, account.word, permissions, s.sessionValidator.word, initData, s.salt, smartSession.word, $0.word) }
    }

    public static func chainSessionHash(_ c: ChainDigest) -> Bytes32 {
        words(chainSessionTypeHash, UInt256(c.chainId).word, c.sessionDigest)
    }

    /// The EIP-712 digest of MultiChainSession over the pairs, in order: what the owner signs.
    public static func multichainDigest(_ digests: [ChainDigest]) -> Bytes32 {
        let structHash = words(multiChainSessionTypeHash, hashList(digests, chainSessionHash))
        return keccak256([0x19, 0x01], domainSeparator.bytes, structHash.bytes)
    }
}

/// The booleans of `SignedPermissions`.
public struct SignedFlags: Hashable, Sendable {
    public var permitGenericPolicy: Bool
    public var permitAdminAccess: Bool
    public var ignoreSecurityAttestations: Bool
    public var permitERC4337Paymaster: Bool
}

extension Session {
    /// The flags as HashLib derives them: fallback actions present, and the mode.
    public func signedFlags(mode: SmartSessionMode) -> SignedFlags {
        SignedFlags(permitGenericPolicy: actions.contains { $0.isFallback },
                    permitAdminAccess: actions.contains { $0.isSmartSessionCall },
                    ignoreSecurityAttestations: mode == .unsafeEnable,
                    permitERC4337Paymaster: permitERC4337Paymaster)
    }
}
