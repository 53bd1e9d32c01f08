import EthereumCore

/// Where a policy may be attached in a session.
public enum PolicySlot: String, Sendable, CaseIterable {
    case userOp, action, erc1271
}

/// The policy contracts of spec §9.
public enum PolicyKind: String, Sendable, CaseIterable {
    case sudo = "SudoPolicy"
    case timeFrame = "TimeFramePolicy"
    case usageLimit = "UsageLimitPolicy"
    case valueLimit = "ValueLimitPolicy"
    case erc20SpendingLimit = "ERC20SpendingLimitPolicy"
    case uniAction = "UniActionPolicy"
    case contractWhitelist = "ContractWhitelistPolicy"
    case simpleGas = "SimpleGasPolicy"
    case arg = "ArgPolicy"

    /// The interfaces the contract supports (`supportsInterface`): SmartSession refuses to
    /// enable a policy in a slot it does not support.
    public var slots: Set<PolicySlot> {
        switch self {
        case .sudo, .timeFrame: [.userOp, .action, .erc1271]
        case .usageLimit, .valueLimit: [.userOp, .action]
        case .erc20SpendingLimit, .uniAction, .contractWhitelist, .arg: [.action]
        case .simpleGas: [.userOp]
        }
    }
}

/// A known deployment of a policy contract.
public struct PolicyDeployment: Hashable, Sendable {
    public var kind: PolicyKind
    public var address: Address
    /// false for deployments the current SDK no longer uses; shown as "older" to the approver.
    public var isCurrent: Bool
}

/// Maps policy addresses to what they are. An address that is not here is an unknown policy:
/// it is shown with its raw init data and flagged.
public enum PolicyRegistry {
    public static let deployments: [PolicyDeployment] = [
        current(.sudo, "0x0000000000FEEc8D74e3143fBaBbca515358d869"),
        current(.timeFrame, "0x0000000000D30f611fA3bf652ac6879428586930"),
        current(.uniAction, "0x0000000000714Cf48FcF88A0bFBa70d313415032"),
        current(.usageLimit, "0x00000000001d4479FA2A947026204d0283ceDe4B"),
        current(.valueLimit, "0x000000000021dC45451291BCDfc9f0B46d6f0278"),
        current(.erc20SpendingLimit, "0x000000000033212E272655D8a22402Db819477A6"),
        current(.simpleGas, "0x0000000000d14A6F771494592218d8F9c2ddEbB6"),
        current(.contractWhitelist, "0x0000000000d79359D85e62796104D7AE863fFAcb"),
        current(.arg, "0x0000000000167edE64D8751daACDdC0312565a73"),
        // The registry-era build (Dec 2024) and the stale per-module constants of module-sdk 0.4.0.
        older(.sudo, "0x0000003111cD8e92337C100F22B7A9dbf8DEE301"),
        older(.uniAction, "0x0000006DDA6c463511C4e9B05CFc34C1247fCF1F"),
        older(.timeFrame, "0x8177451511dE0577b911C254E9551D981C26dc72"),
        older(.usageLimit, "0x1F34eF8311345A3A4a4566aF321b313052F51493"),
        older(.valueLimit, "0x730DA93267E7E513e932301B47F2ac7D062abC83"),
        older(.erc20SpendingLimit, "0x00000088D48cF102A8Cdb0137A9b173f957c6343"),
    ]

    private static func current(_ k: PolicyKind, _ a: String) -> PolicyDeployment {
        PolicyDeployment(kind: k, address: try! Address(a), isCurrent: true)
    }

    private static func older(_ k: PolicyKind, _ a: String) -> PolicyDeployment {
        PolicyDeployment(kind: k, address: try! Address(a), isCurrent: false)
    }

    private static let byAddress = Dictionary(uniqueKeysWithValues: deployments.map { ($0.address, $0) })

    public static func deployment(at address: Address) -> PolicyDeployment? { byAddress[address] }

    /// The current deployment of `kind`.
    public static func address(of kind: PolicyKind) -> Address {
        deployments.first { $0.kind == kind && $0.isCurrent }!.address
    }
}
