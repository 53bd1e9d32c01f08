import EthereumCore

/// A 4-byte function selector.
public struct Selector: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 4 else { return nil }
        rawValue = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The selector of a call: its first four bytes, or 0xffffffff for calldata shorter than
    /// four bytes (a plain value transfer), as SmartSession's IdLib does.
    public init(calldata: [UInt8]) {
        self = calldata.count >= 4 ? Selector(bytes: calldata[0..<4])! : .valueTransfer
    }

    public var bytes: [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: rawValue >> $0) } }
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
    public static func < (l: Selector, r: Selector) -> Bool { l.rawValue < r.rawValue }

    /// `VALUE_SELECTOR`: native transfers (calldata shorter than 4 bytes).
    public static let valueTransfer = Selector(rawValue: 0xFFFF_FFFF)
    /// `FALLBACK_TARGET_SELECTOR_FLAG`: the generic fallback action.
    public static let fallback = Selector(rawValue: 0x0000_0001)
    /// `FALLBACK_TARGET_SELECTOR_FLAG_PERMITTED_TO_CALL_SMARTSESSION`: admin access.
    public static let fallbackSmartSessionCall = Selector(rawValue: 0x0000_0002)
}

/// `PolicyData(address policy, bytes initData)`
public struct PolicyData: Hashable, Sendable {
    public var policy: Address
    public var initData: [UInt8]

    public init(policy: Address, initData: [UInt8]) {
        self.policy = policy
        self.initData = initData
    }

    // Init data can be kilobytes (UniActionPolicy: 3136 bytes); hash it in bulk, not byte by byte.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(policy)
        initData.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

/// `ActionData(bytes4 actionTargetSelector, address actionTarget, PolicyData[] actionPolicies)`
public struct ActionData: Hashable, Sendable {
    public var actionTargetSelector: Selector
    public var actionTarget: Address
    public var actionPolicies: [PolicyData]

    public init(actionTargetSelector: Selector, actionTarget: Address, actionPolicies: [PolicyData]) {
        self.actionTargetSelector = actionTargetSelector
        self.actionTarget = actionTarget
        self.actionPolicies = actionPolicies
    }

    /// `address(1)`, the target of the fallback actions.
    public static let fallbackTarget = Address(exactly: [UInt8](repeating: 0, count: 19) + [1])!

    /// The generic fallback action (any target and selector without policies of its own).
    public var isFallback: Bool { actionTarget == Self.fallbackTarget && actionTargetSelector == .fallback }
    /// The action that lets the session call SmartSession itself (admin access).
    public var isSmartSessionCall: Bool { actionTarget == Self.fallbackTarget && actionTargetSelector == .fallbackSmartSessionCall }
}

/// `ERC7739Context(bytes32 appDomainSeparator, string[] contentNames)`
public struct ERC7739Context: Hashable, Sendable {
    public var appDomainSeparator: Bytes32
    public var contentNames: [String]

    public init(appDomainSeparator: Bytes32, contentNames: [String]) {
        self.appDomainSeparator = appDomainSeparator
        self.contentNames = contentNames
    }
}

/// `ERC7739Data(ERC7739Context[] allowedERC7739Content, PolicyData[] erc1271Policies)`
public struct ERC7739Data: Hashable, Sendable {
    public var allowedERC7739Content: [ERC7739Context]
    public var erc1271Policies: [PolicyData]

    public init(allowedERC7739Content: [ERC7739Context] = [], erc1271Policies: [PolicyData] = []) {
        self.allowedERC7739Content = allowedERC7739Content
        self.erc1271Policies = erc1271Policies
    }
}

/// The Smart Sessions v1 `Session` struct, field for field (`contracts/DataTypes.sol`).
public struct Session: Hashable, Sendable {
    public var sessionValidator: Address
    public var sessionValidatorInitData: [UInt8]
    public var salt: Bytes32
    public var userOpPolicies: [PolicyData]
    public var erc7739Policies: ERC7739Data
    public var actions: [ActionData]
    public var permitERC4337Paymaster: Bool

    public init(sessionValidator: Address, sessionValidatorInitData: [UInt8], salt: Bytes32 = .zero,
                userOpPolicies: [PolicyData] = [], erc7739Policies: ERC7739Data = ERC7739Data(),
                actions: [ActionData] = [], permitERC4337Paymaster: Bool = false) {
        self.sessionValidator = sessionValidator
        self.sessionValidatorInitData = sessionValidatorInitData
        self.salt = salt
        self.userOpPolicies = userOpPolicies
        self.erc7739Policies = erc7739Policies
        self.actions = actions
        self.permitERC4337Paymaster = permitERC4337Paymaster
    }
}

/// The first byte of a Smart Sessions `userOp.signature`.
public enum SmartSessionMode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case use = 0
    case enable = 1
    case unsafeEnable = 2

    public var description: String {
        switch self {
        case .use: "USE"
        case .enable: "ENABLE"
        case .unsafeEnable: "UNSAFE_ENABLE"
        }
    }
}

/// `ChainDigest(uint64 chainId, bytes32 sessionDigest)`
public struct ChainDigest: Hashable, Sendable {
    public var chainId: UInt64
    public var sessionDigest: Bytes32

    public init(chainId: UInt64, sessionDigest: Bytes32) {
        self.chainId = chainId
        self.sessionDigest = sessionDigest
    }
}

/// `EnableSession(uint8 chainDigestIndex, ChainDigest[] hashesAndChainIds, Session sessionToEnable, bytes permissionEnableSig)`
public struct EnableSession: Hashable, Sendable {
    public var chainDigestIndex: UInt8
    public var hashesAndChainIds: [ChainDigest]
    public var sessionToEnable: Session
    public var permissionEnableSig: [UInt8]

    public init(chainDigestIndex: UInt8, hashesAndChainIds: [ChainDigest], sessionToEnable: Session, permissionEnableSig: [UInt8]) {
        self.chainDigestIndex = chainDigestIndex
        self.hashesAndChainIds = hashesAndChainIds
        self.sessionToEnable = sessionToEnable
        self.permissionEnableSig = permissionEnableSig
    }
}
