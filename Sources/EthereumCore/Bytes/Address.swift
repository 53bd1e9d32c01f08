import Foundation

/// Why an address was rejected.
public enum AddressError: Error, Equatable, Sendable, CustomStringConvertible {
    case hex(HexError)
    case wrongLength(Int)
    case missingPrefix
    case badChecksum(expected: String)

    public var description: String {
        switch self {
        case .hex(let e): "invalid address: \(e)"
        case .wrongLength(let n): "invalid address: expected 20 bytes, got \(n)"
        case .missingPrefix: "invalid address: expected 0x followed by 40 hex digits"
        case .badChecksum(let expected): "invalid address checksum (EIP-55): did you mean \(expected)?"
        }
    }
}

/// A 20-byte Ethereum address, held inline.
public struct Address: Hashable, Sendable, Comparable, ContiguousBytes, CustomStringConvertible {
    @usableFromInline var storage: (UInt64, UInt64, UInt32)

    public static let zero = Address(uncheckedBytes: [UInt8](repeating: 0, count: 20))

    @inlinable
    init(uncheckedBytes bytes: some Collection<UInt8>) {
        storage = (0, 0, 0)
        withUnsafeMutableBytes(of: &storage) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
    }

    /// Exactly 20 bytes, else nil.
    @inlinable
    public init?(exactly bytes: some Collection<UInt8>) {
        guard bytes.count == 20 else { return nil }
        self.init(uncheckedBytes: bytes)
    }

    /// Parses `0x` + 40 hex digits. All-lowercase and all-uppercase are accepted as they are;
    /// mixed case must be a correct EIP-55 checksum, as in other Ethereum tools.
    public init(_ text: String) throws(AddressError) {
        guard text.hasPrefix("0x") || text.hasPrefix("0X") else { throw .missingPrefix }
        let bytes: [UInt8]
        do { bytes = try Hex.decode(text) } catch { throw .hex(error) }
        guard bytes.count == 20 else { throw .wrongLength(bytes.count) }
        self.init(uncheckedBytes: bytes)
        let digits = text.utf8.dropFirst(2)
        let hasLower = digits.contains { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f") }
        let hasUpper = digits.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "F") }
        if hasLower && hasUpper {
            let expected = checksummed
            guard expected.utf8.dropFirst(2).elementsEqual(digits) else { throw .badChecksum(expected: expected) }
        }
    }

    /// The address of an uncompressed secp256k1 public key (64 bytes X‖Y, or 65 with 0x04).
    public init(publicKey: some Collection<UInt8>) {
        let key = Array(publicKey)
        precondition(key.count == 64 || (key.count == 65 && key[0] == 0x04), "uncompressed public key expected")
        let hash = Keccak256.hash(key.count == 65 ? Array(key.dropFirst()) : key)
        self.init(uncheckedBytes: hash.bytes[12...])
    }

    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<20])) }
    }

    @inlinable
    public static func == (l: Address, r: Address) -> Bool {
        l.storage.0 == r.storage.0 && l.storage.1 == r.storage.1 && l.storage.2 == r.storage.2
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0); hasher.combine(storage.1); hasher.combine(storage.2)
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The 32-byte ABI word: twelve zero bytes, then the address.
    public var word: Bytes32 { Bytes32([UInt8](repeating: 0, count: 12) + bytes) }

    /// Lowercase `0x` hex.
    public var lowercased: String { Hex.encode(bytes) }

    /// EIP-55 mixed-case checksum form.
    public var checksummed: String {
        var digits = Array(Hex.encode(bytes, prefix: false).utf8)
        let hash = Keccak256.hash(digits)
        hash.withUnsafeBytes { h in
            for i in digits.indices where digits[i] >= UInt8(ascii: "a") {
                let nibble = (h[i / 2] >> (i % 2 == 0 ? 4 : 0)) & 0x0F
                if nibble >= 8 { digits[i] -= 32 }   // to upper case
            }
        }
        return "0x" + String(decoding: digits, as: UTF8.self)
    }

    public var description: String { checksummed }

    public static func < (lhs: Address, rhs: Address) -> Bool {
        lhs.withUnsafeBytes { l in rhs.withUnsafeBytes { r in l.lexicographicallyPrecedes(r) } }
    }
}
