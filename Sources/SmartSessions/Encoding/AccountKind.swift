import EthereumCore

/// The smart-account implementations whose ERC-1271 routing we know (spec §6.1).
public enum AccountKind: String, Sendable, CaseIterable {
    /// The ERC-7579 reference implementation (MSAAdvanced).
    case erc7579Reference = "erc7579"
    case nexus
    case safe7579
    case kernel

    /// A signature the account's `isValidSignature` routes to `validator`: the owners'
    /// `permissionEnableSig` (module-sdk `formatPermissionEnableSig`) to their validator, a
    /// session key's signed message to SmartSession.
    public func erc1271Signature(validator: Address, signature: [UInt8]) -> [UInt8] {
        switch self {
        case .erc7579Reference, .nexus, .safe7579: validator.bytes + signature
        case .kernel: [0x01] + validator.bytes + signature
        }
    }

    /// Splits a signature `erc1271Signature` routed back into the validator and the signature.
    public func parseERC1271Signature(_ bytes: [UInt8]) throws(SmartSessionError) -> (validator: Address, signature: [UInt8]) {
        switch self {
        case .erc7579Reference, .nexus, .safe7579:
            guard bytes.count >= 20 else { throw SmartSessionError("the signature is shorter than the validator address it is routed to") }
            return (Address(exactly: bytes[0..<20])!, Array(bytes[20...]))
        case .kernel:
            guard bytes.count >= 21, bytes[0] == 0x01 else {
                throw SmartSessionError("a signature Kernel routes to a validator starts with 0x01 and its address")
            }
            return (Address(exactly: bytes[1..<21])!, Array(bytes[21...]))
        }
    }

    /// The version Kernel v3.1 gives in its EIP-712 domain, the Kernel spec §6.1 describes. v3.0
    /// gives "0.3.0-beta", v3.2 and v3.3 "0.3.2" and "0.3.3" (`eip712Domain()` tells); each wraps
    /// what its validator is given alike, in its own domain.
    public static let kernelV31 = "0.3.1"

    /// What the account's owners sign to enable a session on `chainIds` (the multichain digest
    /// of their session digests): the hash its owner validator is given. Kernel's carries the
    /// chain id, so one signature serves one chain there, except from v3.2 on, where a signature
    /// marked `kernelReplayable` is checked over the wrapping for chain id 0 on every chain. The
    /// agent refuses Kernel requests for several chains that the version cannot serve.
    public func ownerDigest(_ multichainDigest: Bytes32, account: Address, chainIds: [UInt64], kernelVersion: String) -> Bytes32 {
        guard self == .kernel else { return multichainDigest }
        if chainIds.count == 1 { return validatorHash(of: multichainDigest, account: account, chainId: chainIds[0], kernelVersion: kernelVersion) }
        return Self.kernelSignsForEveryChain(kernelVersion) ? validatorHash(of: multichainDigest, account: account, chainId: 0, kernelVersion: kernelVersion) : multichainDigest
    }

    /// The owners' `permissionEnableSig` for a session on `chainIds`: their validator's
    /// `signature` of `ownerDigest`, routed to it (and marked replayable where Kernel checks it
    /// for every chain).
    public func permissionEnableSig(validator: Address, signature: [UInt8], chainIds: [UInt64], kernelVersion: String) -> [UInt8] {
        let replayable = self == .kernel && chainIds.count > 1 && Self.kernelSignsForEveryChain(kernelVersion)
        return erc1271Signature(validator: validator, signature: replayable ? Self.kernelReplayable.bytes + signature : signature)
    }

    /// Splits a `permissionEnableSig` back into the validator, its signature, and whether it is
    /// marked for every chain (a Kernel replayable one, over the wrapping for chain id 0).
    public func parsePermissionEnableSig(_ bytes: [UInt8]) throws(SmartSessionError) -> (validator: Address, signature: [UInt8], everyChain: Bool) {
        let (validator, routed) = try parseERC1271Signature(bytes)
        guard self == .kernel, routed.starts(with: Self.kernelReplayable.bytes) else { return (validator, routed, false) }
        return (validator, Array(routed.dropFirst(32)), true)
    }

    /// What marks a signature Kernel v3.2 and later check for every chain: it follows the
    /// validator's address, and the validator is given the hash wrapped for chain id 0.
    public static let kernelReplayable = Keccak256.hash(utf8: "kernel.replayable.signature")

    /// Whether Kernel `version` takes a signature for every chain: v3.2 ("0.3.2") and later v3.
    public static func kernelSignsForEveryChain(_ version: String) -> Bool {
        let parts = version.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "0", parts[1] == "3", !parts[2].isEmpty, parts[2].allSatisfy({ ("0"..."9").contains($0) }),
              let patch = Int(parts[2]) else { return false }
        return patch >= 2
    }

    /// The hash the account hands its validator for `digest`. Kernel wraps it in its own EIP-712
    /// domain (`Kernel(bytes32 hash)`, name "Kernel", `kernelVersion`, the chain and the account;
    /// chain id 0 for a signature it checks for every chain); the others pass it unchanged.
    public func validatorHash(of digest: Bytes32, account: Address, chainId: UInt64, kernelVersion: String) -> Bytes32 {
        switch self {
        case .erc7579Reference, .nexus, .safe7579:
            return digest
        case .kernel:
            let domain = keccak256(
                Keccak256.hash(utf8: "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)").bytes,
                Keccak256.hash(utf8: "Kernel").bytes, Keccak256.hash(utf8: kernelVersion).bytes, UInt256(chainId).bigEndianBytes, account.word.bytes)
            let structHash = keccak256(Keccak256.hash(utf8: "Kernel(bytes32 hash)").bytes, digest.bytes)
            return keccak256([0x19, 0x01], domain.bytes, structHash.bytes)
        }
    }
}
