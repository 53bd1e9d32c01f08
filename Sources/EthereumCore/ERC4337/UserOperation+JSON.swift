extension UserOperation {
    static let unpackedFields: Set<String> = [
        "sender", "nonce", "factory", "factoryData", "callData", "callGasLimit", "verificationGasLimit",
        "preVerificationGas", "maxFeePerGas", "maxPriorityFeePerGas", "paymaster", "paymasterVerificationGasLimit",
        "paymasterPostOpGasLimit", "paymasterData", "signature",
    ]

    /// Reads the JSON-RPC form (quantities as `0x` hex, decimal strings or JSON integers; byte
    /// strings as `0x` hex). Unknown fields are errors, so nothing is silently dropped.
    public init(json: JSONValue) throws(UserOperationError) {
        guard let object = json.objectValue else { throw UserOperationError("a user operation is a JSON object") }
        if let unknown = object.keys.first(where: { !Self.unpackedFields.contains($0) }) {
            throw UserOperationError("unknown field" + Spelling.suggestion(for: unknown, among: Self.unpackedFields), field: unknown)
        }
        let reader = FieldReader(object: object)
        self.init(sender: try reader.address("sender"), nonce: try reader.quantity("nonce"))
        factory = reader.object["factory"]?.stringValue?.lowercased() == "0x7702" ? .eip7702InitCodeMarker : try reader.optionalAddress("factory")
        factoryData = try reader.bytes("factoryData")
        callData = try reader.bytes("callData")
        callGasLimit = try reader.quantity("callGasLimit", default: 0)
        verificationGasLimit = try reader.quantity("verificationGasLimit", default: 0)
        preVerificationGas = try reader.quantity("preVerificationGas", default: 0)
        maxFeePerGas = try reader.quantity("maxFeePerGas", default: 0)
        maxPriorityFeePerGas = try reader.quantity("maxPriorityFeePerGas", default: 0)
        paymaster = try reader.optionalAddress("paymaster")
        paymasterVerificationGasLimit = try reader.quantity("paymasterVerificationGasLimit", default: 0)
        paymasterPostOpGasLimit = try reader.quantity("paymasterPostOpGasLimit", default: 0)
        paymasterData = try reader.bytes("paymasterData")
        signature = try reader.bytes("signature")
    }

    /// The JSON-RPC form: quantities as minimal hex, absent factory/paymaster left out.
    public var json: JSONValue {
        var o = JSONObject()
        o["sender"] = .string(sender.checksummed)
        o["nonce"] = .string(nonce.hexQuantity)
        if let factory {
            o["factory"] = .string(factory.checksummed)
            o["factoryData"] = .string(Hex.encode(factoryData))
        }
        o["callData"] = .string(Hex.encode(callData))
        o["callGasLimit"] = .string(callGasLimit.hexQuantity)
        o["verificationGasLimit"] = .string(verificationGasLimit.hexQuantity)
        o["preVerificationGas"] = .string(preVerificationGas.hexQuantity)
        o["maxFeePerGas"] = .string(maxFeePerGas.hexQuantity)
        o["maxPriorityFeePerGas"] = .string(maxPriorityFeePerGas.hexQuantity)
        if let paymaster {
            o["paymaster"] = .string(paymaster.checksummed)
            o["paymasterVerificationGasLimit"] = .string(paymasterVerificationGasLimit.hexQuantity)
            o["paymasterPostOpGasLimit"] = .string(paymasterPostOpGasLimit.hexQuantity)
            o["paymasterData"] = .string(Hex.encode(paymasterData))
        }
        o["signature"] = .string(Hex.encode(signature))
        return .object(o)
    }
}

extension PackedUserOperation {
    static let fields: Set<String> = [
        "sender", "nonce", "initCode", "callData", "accountGasLimits", "preVerificationGas", "gasFees",
        "paymasterAndData", "signature",
    ]

    /// Reads the packed form (the EntryPoint's struct fields).
    public init(json: JSONValue) throws(UserOperationError) {
        guard let object = json.objectValue else { throw UserOperationError("a user operation is a JSON object") }
        if let unknown = object.keys.first(where: { !Self.fields.contains($0) }) {
            let packed = object.keys.filter { ["accountGasLimits", "initCode", "gasFees"].contains($0) }.sorted()
            throw UserOperationError(UserOperation.unpackedFields.contains(unknown)
                                     ? "a field of the unpacked form, beside \(packed.joined(separator: " and ")) of the packed one: give either form, not both"
                                     : "unknown field" + Spelling.suggestion(for: unknown, among: Self.fields), field: unknown)
        }
        let reader = FieldReader(object: object)
        self.init(
            sender: try reader.address("sender"), nonce: try reader.quantity("nonce"),
            initCode: try reader.bytes("initCode"), callData: try reader.bytes("callData"),
            accountGasLimits: try reader.word("accountGasLimits"),
            preVerificationGas: try reader.quantity("preVerificationGas"),
            gasFees: try reader.word("gasFees"),
            paymasterAndData: try reader.bytes("paymasterAndData"), signature: try reader.bytes("signature"))
    }

    /// Reads either form: packed when it has `accountGasLimits` or `initCode`, else unpacked.
    public static func parse(json: JSONValue) throws(UserOperationError) -> PackedUserOperation {
        if json["accountGasLimits"] != nil || json["initCode"] != nil || json["gasFees"] != nil {
            return try PackedUserOperation(json: json)
        }
        return try UserOperation(json: json).packed()
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["sender"] = .string(sender.checksummed)
        o["nonce"] = .string(nonce.hexQuantity)
        o["initCode"] = .string(Hex.encode(initCode))
        o["callData"] = .string(Hex.encode(callData))
        o["accountGasLimits"] = .string(accountGasLimits.hex)
        o["preVerificationGas"] = .string(preVerificationGas.hexQuantity)
        o["gasFees"] = .string(gasFees.hex)
        o["paymasterAndData"] = .string(Hex.encode(paymasterAndData))
        o["signature"] = .string(Hex.encode(signature))
        return .object(o)
    }
}

/// Reads typed fields from a JSON object, naming the field in every error.
private struct FieldReader {
    let object: JSONObject

    func address(_ key: String) throws(UserOperationError) -> Address {
        guard let a = try optionalAddress(key) else { throw UserOperationError("missing", field: key) }
        return a
    }

    func optionalAddress(_ key: String) throws(UserOperationError) -> Address? {
        guard let value = object[key], value != .null else { return nil }
        guard let s = value.stringValue else { throw UserOperationError("expected an address string", field: key) }
        do { return try Address(s) } catch { throw UserOperationError("\(error)", field: key) }
    }

    func quantity(_ key: String, default fallback: UInt256? = nil) throws(UserOperationError) -> UInt256 {
        guard let value = object[key] else {
            if let fallback { return fallback }
            throw UserOperationError("missing", field: key)
        }
        let text: String
        switch value {
        case .string(let s): text = s
        case .number(let n): text = n
        default: throw UserOperationError("expected a quantity, got \(value.kind)", field: key)
        }
        do { return try UInt256(parsing: text) } catch { throw UserOperationError("\(error)", field: key) }
    }

    func bytes(_ key: String) throws(UserOperationError) -> [UInt8] {
        guard let value = object[key], value != .null else { return [] }
        guard let s = value.stringValue, s.hasPrefix("0x") || s.hasPrefix("0X") else {
            throw UserOperationError("expected 0x hex", field: key)
        }
        do { return try Hex.decode(s) } catch { throw UserOperationError("\(error)", field: key) }
    }

    func word(_ key: String) throws(UserOperationError) -> Bytes32 {
        let b = try bytes(key)
        guard let w = Bytes32(exactly: b) else { throw UserOperationError("expected 32 bytes, got \(b.count)", field: key) }
        return w
    }
}
