/// Why an integer literal was rejected.
public enum IntegerParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case invalidDigit(Character, in: String)
    case outOfRange(String, bits: Int, signed: Bool)

    public var description: String {
        switch self {
        case .empty: "empty number"
        case .invalidDigit(let c, let text): "invalid digit \(String(reflecting: c)) in \(String(reflecting: text))"
        case .outOfRange(let text, let bits, let signed):
            "\(text) does not fit in \(signed ? "int" : "uint")\(bits)"
        }
    }
}

/// An unsigned 256-bit integer (Solidity `uint256`): four 64-bit limbs, least significant first.
/// Arithmetic reports overflow instead of wrapping or trapping, because amounts come from
/// untrusted input.
public struct UInt256: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// limbs.0 is the least significant.
    public var limbs: (UInt64, UInt64, UInt64, UInt64)

    public static let zero = UInt256(0)
    public static let one = UInt256(1)
    public static let max = UInt256(limbs: (.max, .max, .max, .max))

    @inlinable public init(limbs: (UInt64, UInt64, UInt64, UInt64)) { self.limbs = limbs }
    @inlinable public init(_ value: UInt64) { limbs = (value, 0, 0, 0) }
    @inlinable public init(integerLiteral value: UInt64) { self.init(value) }

    /// Non-negative `Int`s only; nil for negative values.
    public init?(exactly value: Int) {
        guard value >= 0 else { return nil }
        self.init(UInt64(value))
    }

    /// Big-endian bytes, at most 32 (fewer are left-padded with zeros).
    @inlinable
    public init(bigEndian bytes: some Collection<UInt8>) {
        precondition(bytes.count <= 32, "UInt256 takes at most 32 bytes")
        var word = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &word) { raw in
            var i = 32 - bytes.count
            for b in bytes {
                raw[i] = b
                i += 1
            }
        }
        self.init(Bytes32(littleEndianLanes: word.0, word.1, word.2, word.3))
    }

    @inlinable
    public init(_ word: Bytes32) {
        limbs = word.withUnsafeBytes { raw in
            @inline(__always) func limb(_ offset: Int) -> UInt64 {
                UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            }
            return (limb(24), limb(16), limb(8), limb(0))
        }
    }

    /// Parses decimal, or hex with a `0x` prefix. Underscores are not accepted: a typo must not
    /// turn into another amount.
    public init(parsing text: String) throws(IntegerParseError) {
        guard !text.isEmpty else { throw .empty }
        var value = UInt256.zero
        let isHex = text.hasPrefix("0x") || text.hasPrefix("0X")
        let digits = isHex ? text.dropFirst(2) : Substring(text)
        guard !digits.isEmpty else { throw .empty }
        let radix: UInt64 = isHex ? 16 : 10
        for c in digits {
            // ASCII only: Character's hexDigitValue also reads fullwidth digits and letters ("０ｘＦＦ").
            guard c.isASCII, let d = c.hexDigitValue, d < radix else { throw .invalidDigit(c, in: text) }
            let (next, overflow) = value.multipliedAdding(radix, UInt64(d))
            guard !overflow else { throw .outOfRange(text, bits: 256, signed: false) }
            value = next
        }
        self = value
    }

    @inlinable var array: [UInt64] { [limbs.0, limbs.1, limbs.2, limbs.3] }
    @inlinable init(array a: [UInt64]) { limbs = (a[0], a[1], a[2], a[3]) }

    public var isZero: Bool { limbs.0 | limbs.1 | limbs.2 | limbs.3 == 0 }

    /// The number of significant bits (0 for zero).
    public var bitWidth: Int {
        let a = array
        for i in stride(from: 3, through: 0, by: -1) where a[i] != 0 {
            return 64 * i + (64 - a[i].leadingZeroBitCount)
        }
        return 0
    }

    /// 32 big-endian bytes.
    public var bigEndianBytes: [UInt8] { word.bytes }

    public var word: Bytes32 {
        // A lane's in-memory bytes are the next eight bytes of the word.
        Bytes32(littleEndianLanes: limbs.3.bigEndian, limbs.2.bigEndian, limbs.1.bigEndian, limbs.0.bigEndian)
    }

    /// The value if it fits in a `UInt64`.
    public var uint64: UInt64? { limbs.1 | limbs.2 | limbs.3 == 0 ? limbs.0 : nil }

    /// The value if it fits in an `Int`.
    public var int: Int? { uint64.flatMap { $0 <= UInt64(Int.max) ? Int($0) : nil } }

    public func addingReportingOverflow(_ other: UInt256) -> (partialValue: UInt256, overflow: Bool) {
        let (r0, c0) = limbs.0.addingReportingOverflow(other.limbs.0)
        let (t1, c1a) = limbs.1.addingReportingOverflow(other.limbs.1)
        let (r1, c1b) = t1.addingReportingOverflow(c0 ? 1 : 0)
        let (t2, c2a) = limbs.2.addingReportingOverflow(other.limbs.2)
        let (r2, c2b) = t2.addingReportingOverflow(c1a || c1b ? 1 : 0)
        let (t3, c3a) = limbs.3.addingReportingOverflow(other.limbs.3)
        let (r3, c3b) = t3.addingReportingOverflow(c2a || c2b ? 1 : 0)
        return (UInt256(limbs: (r0, r1, r2, r3)), c3a || c3b)
    }

    public func subtractingReportingOverflow(_ other: UInt256) -> (partialValue: UInt256, overflow: Bool) {
        let (r0, b0) = limbs.0.subtractingReportingOverflow(other.limbs.0)
        let (t1, b1a) = limbs.1.subtractingReportingOverflow(other.limbs.1)
        let (r1, b1b) = t1.subtractingReportingOverflow(b0 ? 1 : 0)
        let (t2, b2a) = limbs.2.subtractingReportingOverflow(other.limbs.2)
        let (r2, b2b) = t2.subtractingReportingOverflow(b1a || b1b ? 1 : 0)
        let (t3, b3a) = limbs.3.subtractingReportingOverflow(other.limbs.3)
        let (r3, b3b) = t3.subtractingReportingOverflow(b2a || b2b ? 1 : 0)
        return (UInt256(limbs: (r0, r1, r2, r3)), b3a || b3b)
    }

    /// self × small + addend, and whether it overflowed: the step of parsing digits.
    func multipliedAdding(_ small: UInt64, _ addend: UInt64) -> (partialValue: UInt256, overflow: Bool) {
        var carry = addend
        var out = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        func step(_ limb: UInt64) -> UInt64 {
            let (high, low) = limb.multipliedFullWidth(by: small)
            let (sum, o) = low.addingReportingOverflow(carry)
            carry = high &+ (o ? 1 : 0)
            return sum
        }
        out.0 = step(limbs.0)
        out.1 = step(limbs.1)
        out.2 = step(limbs.2)
        out.3 = step(limbs.3)
        return (UInt256(limbs: out), carry != 0)
    }

    public func multipliedReportingOverflow(by other: UInt256) -> (partialValue: UInt256, overflow: Bool) {
        if let small = other.uint64 { return multipliedAdding(small, 0) }
        if let small = uint64 { return other.multipliedAdding(small, 0) }
        let a = array, b = other.array
        var out = [UInt64](repeating: 0, count: 8)
        for i in 0..<4 where a[i] != 0 {
            var carry: UInt64 = 0
            for j in 0..<4 {
                let (high, low) = a[i].multipliedFullWidth(by: b[j])
                let (s1, o1) = out[i + j].addingReportingOverflow(low)
                let (s2, o2) = s1.addingReportingOverflow(carry)
                out[i + j] = s2
                carry = high &+ (o1 ? 1 : 0) &+ (o2 ? 1 : 0)
            }
            out[i + 4] = carry
        }
        let overflow = out[4] | out[5] | out[6] | out[7] != 0
        return (UInt256(array: Array(out[0..<4])), overflow)
    }

    /// Division by a 64-bit divisor, limb by limb.
    func quotientAndRemainder(dividingBy divisor: UInt64) -> (quotient: UInt256, remainder: UInt64) {
        precondition(divisor != 0, "division by zero")
        var remainder: UInt64 = 0
        func step(_ limb: UInt64) -> UInt64 {
            let (q, r) = divisor.dividingFullWidth((remainder, limb))
            remainder = r
            return q
        }
        let q3 = step(limbs.3), q2 = step(limbs.2), q1 = step(limbs.1), q0 = step(limbs.0)
        return (UInt256(limbs: (q0, q1, q2, q3)), remainder)
    }

    /// Quotient and remainder; division by zero is a programmer error.
    public func quotientAndRemainder(dividingBy divisor: UInt256) -> (quotient: UInt256, remainder: UInt256) {
        precondition(!divisor.isZero, "division by zero")
        if self < divisor { return (.zero, self) }
        if let d = divisor.uint64, let n = uint64 { return (UInt256(n / d), UInt256(n % d)) }
        var quotient = UInt256.zero
        var remainder = UInt256.zero
        for bit in stride(from: bitWidth - 1, through: 0, by: -1) {
            remainder = remainder.shiftedLeft(1)
            if self.bit(bit) { remainder.limbs.0 |= 1 }
            if remainder >= divisor {
                remainder = remainder.subtractingReportingOverflow(divisor).partialValue
                quotient.setBit(bit)
            }
        }
        return (quotient, remainder)
    }

    public func bit(_ index: Int) -> Bool { (array[index / 64] >> UInt64(index % 64)) & 1 == 1 }

    mutating func setBit(_ index: Int) {
        var a = array
        a[index / 64] |= 1 << UInt64(index % 64)
        self = UInt256(array: a)
    }

    public func shiftedLeft(_ n: Int) -> UInt256 {
        guard n > 0 else { return self }
        guard n < 256 else { return .zero }
        let a = array
        var out = [UInt64](repeating: 0, count: 4)
        let limbShift = n / 64, bitShift = UInt64(n % 64)
        for i in stride(from: 3, through: limbShift, by: -1) {
            out[i] = a[i - limbShift] << bitShift
            if bitShift > 0 && i - limbShift - 1 >= 0 { out[i] |= a[i - limbShift - 1] >> (64 - bitShift) }
        }
        return UInt256(array: out)
    }

    public func shiftedRight(_ n: Int) -> UInt256 {
        guard n > 0 else { return self }
        guard n < 256 else { return .zero }
        let a = array
        var out = [UInt64](repeating: 0, count: 4)
        let limbShift = n / 64, bitShift = UInt64(n % 64)
        for i in 0..<(4 - limbShift) {
            out[i] = a[i + limbShift] >> bitShift
            if bitShift > 0 && i + limbShift + 1 < 4 { out[i] |= a[i + limbShift + 1] << (64 - bitShift) }
        }
        return UInt256(array: out)
    }

    public static func & (l: UInt256, r: UInt256) -> UInt256 {
        UInt256(limbs: (l.limbs.0 & r.limbs.0, l.limbs.1 & r.limbs.1, l.limbs.2 & r.limbs.2, l.limbs.3 & r.limbs.3))
    }

    public static func | (l: UInt256, r: UInt256) -> UInt256 {
        UInt256(limbs: (l.limbs.0 | r.limbs.0, l.limbs.1 | r.limbs.1, l.limbs.2 | r.limbs.2, l.limbs.3 | r.limbs.3))
    }

    public static prefix func ~ (v: UInt256) -> UInt256 {
        UInt256(limbs: (~v.limbs.0, ~v.limbs.1, ~v.limbs.2, ~v.limbs.3))
    }

    /// 2^n for n in 0..<256.
    public static func powerOfTwo(_ n: Int) -> UInt256 { UInt256.one.shiftedLeft(n) }

    /// Decimal.
    public var description: String {
        if isZero { return "0" }
        var chunks: [UInt64] = []
        var rest = self
        while !rest.isZero {
            let (q, r) = rest.quotientAndRemainder(dividingBy: UInt64(10_000_000_000_000_000_000))
            chunks.append(r)
            rest = q
        }
        var out = String(chunks.removeLast())
        for chunk in chunks.reversed() {
            let s = String(chunk)
            out += String(repeating: "0", count: 19 - s.count) + s
        }
        return out
    }

    /// Minimal `0x` hex (`0x0` for zero), the JSON-RPC quantity form.
    public var hexQuantity: String {
        let digits = Hex.encode(bigEndianBytes, prefix: false).drop { $0 == "0" }
        return "0x" + (digits.isEmpty ? "0" : digits)
    }

    public static func == (l: UInt256, r: UInt256) -> Bool {
        l.limbs.0 == r.limbs.0 && l.limbs.1 == r.limbs.1 && l.limbs.2 == r.limbs.2 && l.limbs.3 == r.limbs.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(limbs.0); hasher.combine(limbs.1); hasher.combine(limbs.2); hasher.combine(limbs.3)
    }

    public static func < (l: UInt256, r: UInt256) -> Bool {
        if l.limbs.3 != r.limbs.3 { return l.limbs.3 < r.limbs.3 }
        if l.limbs.2 != r.limbs.2 { return l.limbs.2 < r.limbs.2 }
        if l.limbs.1 != r.limbs.1 { return l.limbs.1 < r.limbs.1 }
        return l.limbs.0 < r.limbs.0
    }
}

/// A signed 256-bit integer (Solidity `int256`) in two's complement.
public struct Int256: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// The two's-complement bit pattern.
    public var bitPattern: UInt256

    public static let max = Int256(bitPattern: UInt256.powerOfTwo(255).subtractingReportingOverflow(.one).partialValue)
    public static let min = Int256(bitPattern: UInt256.powerOfTwo(255))

    public init(bitPattern: UInt256) { self.bitPattern = bitPattern }

    public init(integerLiteral value: Int64) { self.init(value) }

    public init(_ value: Int64) {
        let fill: UInt64 = value < 0 ? .max : 0
        bitPattern = UInt256(limbs: (UInt64(bitPattern: value), fill, fill, fill))
    }

    /// Decimal with an optional leading `-`, or `0x` hex (non-negative) / `-0x` hex.
    public init(parsing text: String) throws(IntegerParseError) {
        let negative = text.hasPrefix("-")
        let magnitude = try UInt256(parsing: negative ? String(text.dropFirst()) : text)
        guard let value = Int256(sign: negative, magnitude: magnitude) else {
            throw .outOfRange(text, bits: 256, signed: true)
        }
        self = value
    }

    /// nil when the value is outside int256.
    public init?(sign negative: Bool, magnitude: UInt256) {
        if negative {
            guard magnitude <= UInt256.powerOfTwo(255) else { return nil }
            bitPattern = (~magnitude).addingReportingOverflow(.one).partialValue
        } else {
            guard magnitude < UInt256.powerOfTwo(255) else { return nil }
            bitPattern = magnitude
        }
    }

    public var isNegative: Bool { bitPattern.bit(255) }

    public var magnitude: UInt256 {
        isNegative ? (~bitPattern).addingReportingOverflow(.one).partialValue : bitPattern
    }

    /// Whether the value fits in Solidity's `intN`: -2^(N-1) ≤ v < 2^(N-1).
    public func fits(bits: Int) -> Bool {
        let limit = UInt256.powerOfTwo(bits - 1)
        return isNegative ? magnitude <= limit : magnitude < limit
    }

    public var description: String { (isNegative ? "-" : "") + magnitude.description }

    public static func < (l: Int256, r: Int256) -> Bool {
        if l.isNegative != r.isNegative { return l.isNegative }
        return l.bitPattern < r.bitPattern
    }
}
