/// Why a user operation was rejected.
public struct UserOperationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var field: String?
    public var reason: String

    public init(_ reason: String, field: String? = nil) {
        self.field = field
        self.reason = reason
    }

    public var description: String { field.map { "\($0): \(reason)" } ?? reason }
}

/// An ERC-4337 v0.7/v0.8 user operation in the unpacked form wallets and bundlers exchange
/// (`eth_sendUserOperation`). Gas values are uint128 on chain; packing checks that.
public struct UserOperation: Hashable, Sendable {
    public var sender: Address
    public var nonce: UInt256
    public var factory: Address?
    public var factoryData: [UInt8] = []
    public var callData: [UInt8] = []
    public var callGasLimit: UInt256 = 0
    public var verificationGasLimit: UInt256 = 0
    public var preVerificationGas: UInt256 = 0
    public var maxFeePerGas: UInt256 = 0
    public var maxPriorityFeePerGas: UInt256 = 0
    public var paymaster: Address?
    public var paymasterVerificationGasLimit: UInt256 = 0
    public var paymasterPostOpGasLimit: UInt256 = 0
    public var paymasterData: [UInt8] = []
    public var signature: [UInt8] = []

    public init(sender: Address, nonce: UInt256) {
        self.sender = sender
        self.nonce = nonce
    }

    /// The on-chain `PackedUserOperation`.
    public func packed() throws(UserOperationError) -> PackedUserOperation {
        func u128(_ v: UInt256, _ field: String) throws(UserOperationError) -> [UInt8] {
            guard v.bitWidth <= 128 else { throw UserOperationError("\(v) does not fit in uint128", field: field) }
            return Array(v.bigEndianBytes[16...])
        }
        var initCode: [UInt8] = []
        if let factory { initCode = factory.bytes + factoryData } else if !factoryData.isEmpty {
            throw UserOperationError("factoryData without a factory", field: "factoryData")
        }
        var paymasterAndData: [UInt8] = []
        if let paymaster {
            paymasterAndData = paymaster.bytes
                + (try u128(paymasterVerificationGasLimit, "paymasterVerificationGasLimit"))
                + (try u128(paymasterPostOpGasLimit, "paymasterPostOpGasLimit"))
                + paymasterData
        } else if !paymasterData.isEmpty || !paymasterVerificationGasLimit.isZero || !paymasterPostOpGasLimit.isZero {
            throw UserOperationError("paymaster fields without a paymaster", field: "paymaster")
        }
        return PackedUserOperation(
            sender: sender, nonce: nonce, initCode: initCode, callData: callData,
            accountGasLimits: Bytes32(try u128(verificationGasLimit, "verificationGasLimit") + (try u128(callGasLimit, "callGasLimit"))),
            preVerificationGas: preVerificationGas,
            gasFees: Bytes32(try u128(maxPriorityFeePerGas, "maxPriorityFeePerGas") + (try u128(maxFeePerGas, "maxFeePerGas"))),
            paymasterAndData: paymasterAndData, signature: signature)
    }
}

extension Address {
    /// The factory of an EIP-7702 account's user operation: 0x7702 padded to 20 bytes, the
    /// v0.8 EntryPoint's `INITCODE_EIP7702_MARKER`. Wallets (viem) also write it `0x7702`.
    public static let eip7702InitCodeMarker = Address(uncheckedBytes: [0x77, 0x02] + [UInt8](repeating: 0, count: 18))
}

/// The v0.7/v0.8 `PackedUserOperation` struct exactly as the EntryPoint receives it.
public struct PackedUserOperation: Hashable, Sendable {
    public var sender: Address
    public var nonce: UInt256
    public var initCode: [UInt8]
    public var callData: [UInt8]
    /// verificationGasLimit (high 128 bits) ‖ callGasLimit (low 128 bits)
    public var accountGasLimits: Bytes32
    public var preVerificationGas: UInt256
    /// maxPriorityFeePerGas (high 128 bits) ‖ maxFeePerGas (low 128 bits)
    public var gasFees: Bytes32
    public var paymasterAndData: [UInt8]
    public var signature: [UInt8]

    public init(sender: Address, nonce: UInt256, initCode: [UInt8], callData: [UInt8], accountGasLimits: Bytes32,
                preVerificationGas: UInt256, gasFees: Bytes32, paymasterAndData: [UInt8], signature: [UInt8]) {
        self.sender = sender
        self.nonce = nonce
        self.initCode = initCode
        self.callData = callData
        self.accountGasLimits = accountGasLimits
        self.preVerificationGas = preVerificationGas
        self.gasFees = gasFees
        self.paymasterAndData = paymasterAndData
        self.signature = signature
    }
}
