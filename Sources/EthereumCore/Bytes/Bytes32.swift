import Foundation

/// 32 bytes held inline (no heap allocation): hashes, `bytes32` values, 256-bit words.
public struct Bytes32: Hashable, Sendable, Comparable, ContiguousBytes, CustomStringConvertible {
    @usableFromInline var storage: (UInt64, UInt64, UInt64, UInt64)

    public static let zero = Bytes32(littleEndianLanes: 0, 0, 0, 0)

    @inlinable
    init(littleEndianLanes l0: UInt64, _ l1: UInt64, _ l2: UInt64, _ l3: UInt64) {
        // Each lane's in-memory bytes are the next eight bytes, which on a little-endian host
        // is exactly the lane value (the Keccak state is little-endian).
        storage = (l0, l1, l2, l3)
    }

    /// Exactly 32 bytes; anything else is a programmer error (parse untrusted input with
    /// `init(hex:)` or `init(exactly:)`).
    @inlinable
    public init(_ bytes: some Collection<UInt8>) {
        guard let value = Bytes32(exactly: bytes) else {
            preconditionFailure("Bytes32 needs 32 bytes, got \(bytes.count)")
        }
        self = value
    }

    @inlinable
    public init?(exactly bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        storage = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &storage) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
    }

    /// Parses `0x`-prefixed (or bare) hex of exactly 64 digits.
    public init(hex: String) throws(HexError) {
        let bytes = try Hex.decode(hex)
        guard let value = Bytes32(exactly: bytes) else {
            throw HexError.wrongLength(expected: 32, actual: bytes.count)
        }
        self = value
    }

    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage, body)
    }

    @inlinable
    public static func == (l: Bytes32, r: Bytes32) -> Bool {
        l.storage.0 == r.storage.0 && l.storage.1 == r.storage.1 && l.storage.2 == r.storage.2 && l.storage.3 == r.storage.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0); hasher.combine(storage.1); hasher.combine(storage.2); hasher.combine(storage.3)
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    public subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < 32)
        return withUnsafeBytes { $0[index] }
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public static func < (lhs: Bytes32, rhs: Bytes32) -> Bool {
        lhs.withUnsafeBytes { l in rhs.withUnsafeBytes { r in l.lexicographicallyPrecedes(r) } }
    }
}
