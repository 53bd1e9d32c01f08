import EthereumCore

/// The identifiers of `IdLib.sol` (spec §3).
extension Session {
    /// `keccak256(abi.encode(sessionValidator, sessionValidatorInitData, salt))`; the policies
    /// do not enter it.
    public var permissionId: Bytes32 {
        Keccak256.hash(try! ABI.encode([.address(sessionValidator), .bytes(sessionValidatorInitData), .bytes32(salt)],
                                       as: [.address, .bytes, .bytes32]))
    }
}

public enum SessionIds {
    /// `keccak256(target ‖ selector)`
    public static func actionId(target: Address, selector: Selector) -> Bytes32 {
        keccak256(target.bytes, selector.bytes)
    }

    /// `FALLBACK_ACTIONID`
    public static let fallbackActionId = actionId(target: ActionData.fallbackTarget, selector: .fallback)
    /// `FALLBACK_ACTIONID_SMARTSESSION_CALL`
    public static let smartSessionCallActionId = actionId(target: ActionData.fallbackTarget, selector: .fallbackSmartSessionCall)

    /// `keccak256(permissionId ‖ actionId)`
    public static func actionPolicyId(permissionId: Bytes32, actionId: Bytes32) -> Bytes32 {
        keccak256(permissionId.bytes, actionId.bytes)
    }

    /// `keccak256("ERC1271: " ‖ permissionId)`
    public static func erc1271PolicyId(permissionId: Bytes32) -> Bytes32 {
        keccak256(Array("ERC1271: ".utf8), permissionId.bytes)
    }

    /// The key a policy stores its state under for an account: `keccak256(account ‖ id)`,
    /// with id = permissionId (userOp policies), actionPolicyId or erc1271PolicyId.
    public static func configId(account: Address, id: Bytes32) -> Bytes32 {
        keccak256(account.bytes, id.bytes)
    }
}

extension ActionData {
    public var actionId: Bytes32 { SessionIds.actionId(target: actionTarget, selector: actionTargetSelector) }
}
