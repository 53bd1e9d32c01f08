/// A value of an ABI type. `T[]` and `T[k]` are both `.array`; the type says which.
public indirect enum ABIValue: Hashable, Sendable {
    case uint(UInt256)
    case int(Int256)
    case address(Address)
    case bool(Bool)
    /// `bytes1` … `bytes32`: exactly N bytes.
    case fixedBytes([UInt8])
    case bytes([UInt8])
    case string(String)
    case array([ABIValue])
    case tuple([ABIValue])

    /// A `bytes32` value.
    public static func bytes32(_ b: Bytes32) -> ABIValue { .fixedBytes(b.bytes) }

    var kind: String {
        switch self {
        case .uint: "an unsigned integer"
        case .int: "a signed integer"
        case .address: "an address"
        case .bool: "a bool"
        case .fixedBytes(let b): "bytes\(b.count)"
        case .bytes: "bytes"
        case .string: "a string"
        case .array: "an array"
        case .tuple: "a tuple"
        }
    }
}
