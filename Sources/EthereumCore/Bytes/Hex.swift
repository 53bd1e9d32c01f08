/// Why a hex string was rejected.
public enum HexError: Error, Equatable, Sendable, CustomStringConvertible {
    case oddLength(Int)
    case invalidCharacter(Character, position: Int)
    case wrongLength(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .oddLength(let n): "hex has an odd number of digits (\(n))"
        case .invalidCharacter(let c, let p): "invalid hex character \(String(reflecting: c)) at position \(p)"
        case .wrongLength(let e, let a): "expected \(e) bytes of hex, got \(a)"
        }
    }
}

/// Lowercase hex with a `0x` prefix, as Ethereum tools print it.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>, prefix: Bool = true) -> String {
        var out: [UInt8] = prefix ? [0x30, 0x78] : []
        out.reserveCapacity(out.count + bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hex with or without `0x`/`0X`; upper and lower case digits; an odd digit count
    /// is an error (a silent leading zero would change what is signed).
    public static func decode(_ text: String) throws(HexError) -> [UInt8] {
        var utf8 = Substring(text).utf8[...]
        var offset = 0
        if utf8.count >= 2, utf8.first == 0x30, let x = utf8.dropFirst().first, x == 0x78 || x == 0x58 {
            utf8 = utf8.dropFirst(2)
            offset = 2
        }
        guard utf8.count % 2 == 0 else { throw .oddLength(utf8.count) }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var high: UInt8 = 0
        for (i, c) in utf8.enumerated() {
            guard let nibble = nibble(c) else {
                // The whole character, not the first byte of its UTF-8 ("Ｆ", not "ï").
                let character = text[text.utf8.index(text.utf8.startIndex, offsetBy: offset + i)...].first!
                throw .invalidCharacter(character, position: offset + i)
            }
            if i % 2 == 0 { high = nibble } else { out.append(high << 4 | nibble) }
        }
        return out
    }

    /// The value of one hex digit (an ASCII byte).
    @inline(__always)
    public static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}

extension Array where Element == UInt8 {
    /// Lowercase `0x` hex of these bytes.
    public var hex: String { Hex.encode(self) }
}
