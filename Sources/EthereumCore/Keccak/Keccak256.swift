#if !_endian(little)
#error("Keccak256 XORs input bytes straight into the little-endian lanes; big-endian hosts need a byte swap")
#endif

import Foundation

/// The 1600-bit Keccak state: 25 little-endian 64-bit lanes, lane (x, y) at index x + 5y.
@usableFromInline
struct KeccakState: Sendable {
    @usableFromInline
    var lanes: (
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64
    ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    @inlinable init() {}

    /// XORs one full 136-byte block into the rate lanes and permutes.
    @inlinable @inline(__always)
    mutating func absorbBlock(_ block: UnsafeRawPointer) {
        @inline(__always) func word(_ i: Int) -> UInt64 {
            UInt64(littleEndian: block.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
        }
        lanes.0 ^= word(0); lanes.1 ^= word(1); lanes.2 ^= word(2); lanes.3 ^= word(3)
        lanes.4 ^= word(4); lanes.5 ^= word(5); lanes.6 ^= word(6); lanes.7 ^= word(7)
        lanes.8 ^= word(8); lanes.9 ^= word(9); lanes.10 ^= word(10); lanes.11 ^= word(11)
        lanes.12 ^= word(12); lanes.13 ^= word(13); lanes.14 ^= word(14); lanes.15 ^= word(15)
        lanes.16 ^= word(16)
        permute()
    }

    /// XORs fewer than a block's bytes into the state starting at byte `offset`.
    @inlinable
    mutating func xorBytes(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        withUnsafeMutableBytes(of: &lanes) { state in
            for i in 0..<bytes.count { state[offset + i] ^= bytes[i] }
        }
    }

    @inlinable
    mutating func xorByte(_ byte: UInt8, at offset: Int) {
        withUnsafeMutableBytes(of: &lanes) { $0[offset] ^= byte }
    }

    @inlinable
    var first32Bytes: Bytes32 {
        Bytes32(littleEndianLanes: lanes.0, lanes.1, lanes.2, lanes.3)
    }
}

/// Keccak-256 as Ethereum uses it: the original Keccak padding (0x01 … 0x80), not SHA3-256's
/// 0x06. Incremental (`update`/`finalize`) or one-shot (`hash`); the state lives inline, so
/// hashing allocates nothing.
public struct Keccak256: Sendable {
    /// Bytes of input absorbed per permutation (1088-bit rate).
    public static let rate = 136

    @usableFromInline var state = KeccakState()
    /// Bytes already XORed into the current, not yet permuted block.
    @usableFromInline var pending = 0

    @inlinable public init() {}

    @inlinable
    public mutating func update(_ input: UnsafeRawBufferPointer) {
        guard var base = input.baseAddress, !input.isEmpty else { return }
        var remaining = input.count
        if pending > 0 {
            let take = min(remaining, Self.rate - pending)
            state.xorBytes(UnsafeRawBufferPointer(start: base, count: take), at: pending)
            pending += take
            base += take
            remaining -= take
            guard pending == Self.rate else { return }
            state.permute()
            pending = 0
        }
        while remaining >= Self.rate {
            state.absorbBlock(base)
            base += Self.rate
            remaining -= Self.rate
        }
        if remaining > 0 {
            state.xorBytes(UnsafeRawBufferPointer(start: base, count: remaining), at: 0)
            pending = remaining
        }
    }

    @inlinable
    public mutating func update(_ input: some ContiguousBytes) {
        input.withUnsafeBytes { update($0) }
    }

    /// Pads, permutes and returns the 32-byte digest.
    @inlinable
    public consuming func finalize() -> Bytes32 {
        state.xorByte(0x01, at: pending)
        state.xorByte(0x80, at: Self.rate - 1)
        state.permute()
        return state.first32Bytes
    }

    @inlinable
    public static func hash(_ input: UnsafeRawBufferPointer) -> Bytes32 {
        var hasher = Keccak256()
        hasher.update(input)
        return hasher.finalize()
    }

    @inlinable
    public static func hash(_ input: some ContiguousBytes) -> Bytes32 {
        input.withUnsafeBytes { hash($0) }
    }

    /// keccak256 of the UTF-8 bytes of `text`, as `keccak256(bytes(text))` in Solidity.
    public static func hash(utf8 text: String) -> Bytes32 {
        var text = text
        return text.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }
}

/// keccak256 of the concatenation of several byte strings, without building the concatenation.
@inlinable
public func keccak256(_ parts: [UInt8]...) -> Bytes32 {
    var hasher = Keccak256()
    for part in parts { hasher.update(part) }
    return hasher.finalize()
}
