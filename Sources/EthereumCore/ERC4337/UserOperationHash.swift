/// The EntryPoint versions whose user-operation hash we compute.
public enum EntryPointVersion: String, Sendable, CaseIterable {
    case v07 = "0.7"
    case v08 = "0.8"

    /// The canonical deployment of each version (the same on every chain).
    public var canonicalAddress: Address {
        switch self {
        case .v07: try! Address("0x0000000071727De22E5E9d8BAf0edAc6f37da032")
        case .v08: try! Address("0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108")
        }
    }

    /// The version deployed at `address`, if it is a canonical EntryPoint.
    public init?(canonicalAddress address: Address) {
        guard let v = Self.allCases.first(where: { $0.canonicalAddress == address }) else { return nil }
        self = v
    }
}

extension PackedUserOperation {
    /// `PackedUserOperation(address sender,uint256 nonce,bytes initCode,bytes callData,
    /// bytes32 accountGasLimits,uint256 preVerificationGas,bytes32 gasFees,bytes paymasterAndData)`
    static let typeHash = Keccak256.hash(utf8: "PackedUserOperation(address sender,uint256 nonce,bytes initCode,bytes callData,bytes32 accountGasLimits,uint256 preVerificationGas,bytes32 gasFees,bytes paymasterAndData)")
    static let domainTypeHash = Keccak256.hash(utf8: "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")

    /// Whether the v0.8 EntryPoint reads this initCode as an EIP-7702 authorisation: at least
    /// two bytes, whose first twenty (zero-padded, as calldata is) are the marker
    /// (`Eip7702Support._isEip7702InitCode`). 0xef0100, the prefix of a delegated account's
    /// code, marked it only in drafts before the v0.8.0 release.
    public var hasEIP7702InitCode: Bool {
        // Bytes past a short initCode read as zeros, which is what the marker has after its two.
        let compared = min(initCode.count, 20)
        return initCode.count >= 2 && initCode.prefix(compared).elementsEqual(Address.eip7702InitCodeMarker.bytes.prefix(compared))
    }

    /// The fields every version hashes, with `initCodeHash` in place of the initCode.
    private func encodedFields(initCodeHash: Bytes32) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 * 32)
        for word in [sender.word, nonce.word, initCodeHash, Keccak256.hash(callData), accountGasLimits,
                     preVerificationGas.word, gasFees, Keccak256.hash(paymasterAndData)] {
            word.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }

    /// EntryPoint v0.7 `getUserOpHash`: keccak256(abi.encode(keccak256(pack(op)), entryPoint, chainId)).
    public func hashV07(entryPoint: Address, chainId: UInt256) -> Bytes32 {
        let inner = Keccak256.hash(encodedFields(initCodeHash: Keccak256.hash(initCode)))
        return keccak256(inner.bytes, entryPoint.word.bytes, chainId.word.bytes)
    }

    /// EntryPoint v0.8 `getUserOpHash`: the EIP-712 digest of the PackedUserOperation struct in
    /// the domain {name "ERC4337", version "1", chainId, verifyingContract: entryPoint}. For an
    /// EIP-7702 initCode the EntryPoint reads the delegate from the sender's code, so the
    /// caller must supply it.
    public func hashV08(entryPoint: Address, chainId: UInt256, eip7702Delegate: Address? = nil) throws(UserOperationError) -> Bytes32 {
        var initCodeHash = Keccak256.hash(initCode)
        if hasEIP7702InitCode {
            guard let delegate = eip7702Delegate else {
                throw UserOperationError("EIP-7702 initCode: the hash depends on the sender's delegate address, which must be given", field: "initCode")
            }
            initCodeHash = keccak256(delegate.bytes, initCode.count > 20 ? Array(initCode[20...]) : [])
        }
        let structHash = Keccak256.hash(Self.typeHash.bytes + encodedFields(initCodeHash: initCodeHash))
        let domain = keccak256(Self.domainTypeHash.bytes, Keccak256.hash(utf8: "ERC4337").bytes,
                               Keccak256.hash(utf8: "1").bytes, chainId.word.bytes, entryPoint.word.bytes)
        return keccak256([0x19, 0x01], domain.bytes, structHash.bytes)
    }

    /// The userOpHash for `version`.
    public func hash(version: EntryPointVersion, entryPoint: Address, chainId: UInt256, eip7702Delegate: Address? = nil) throws(UserOperationError) -> Bytes32 {
        switch version {
        case .v07: hashV07(entryPoint: entryPoint, chainId: chainId)
        case .v08: try hashV08(entryPoint: entryPoint, chainId: chainId, eip7702Delegate: eip7702Delegate)
        }
    }
}
