/// Solady's LibZip FastLZ (LZ77), as SmartSession decompresses ENABLE payloads on chain.
///
/// `compress` reproduces solady.js `flzCompress` byte for byte (spec §5.3), which is what
/// module-sdk ships: its hash multiplies in IEEE-754 doubles and then truncates to a signed
/// 32-bit integer, which for 56 of the 2^24 inputs picks another slot than exact integer
/// arithmetic would. The quirk is emulated rather than "fixed", so our ENABLE signatures are
/// the SDK's, byte for byte.
public enum FastLZ {
    public struct DecompressionError: Error, Equatable, Sendable, CustomStringConvertible {
        public var reason: String
        public var offset: Int
        public var description: String { "FastLZ: \(reason) at byte \(offset)" }
    }

    /// `((2654435769 * x) >> 19) & 8191` with JavaScript number semantics.
    @inline(__always)
    static func hash(_ x: Int64) -> Int {
        let product = Double(x) * 2_654_435_769.0   // rounded as JS rounds it
        let int32 = Int32(truncatingIfNeeded: Int64(product))   // ToInt32: exact integer mod 2^32
        return Int((int32 >> 19) & 8191)
    }

    public static func compress(_ input: [UInt8]) -> [UInt8] {
        let n = input.count
        let end = n - 4
        var table = [Int](repeating: 0, count: 8192)
        var out: [UInt8] = []
        out.reserveCapacity(n / 2 + 16)
        var anchor = 0
        var i = 2

        // Bytes past the end read as zero, as `undefined | 0` does in JS.
        @inline(__always) func byte(_ p: Int) -> Int { p < n ? Int(input[p]) : 0 }
        @inline(__always) func u24(_ p: Int) -> Int { byte(p) | byte(p + 1) << 8 | byte(p + 2) << 16 }

        func literals(_ count: Int, from start: Int) {
            var remaining = count, s = start
            while remaining >= 32 {
                out.append(31)
                out.append(contentsOf: input[s..<(s + 32)])
                s += 32
                remaining -= 32
            }
            if remaining > 0 {
                out.append(UInt8(remaining - 1))
                out.append(contentsOf: input[s..<(s + remaining)])
            }
        }

        while i < end - 9 {
            var reference = 0, distance = 0
            var matched = false
            while true {
                let s = u24(i)
                let h = hash(Int64(s))
                reference = table[h]
                table[h] = i
                distance = i - reference
                let candidate = distance < 8192 ? u24(reference) : 0x100_0000   // never equal to a 24-bit value
                guard i < end - 9 else { break }
                i += 1
                if s == candidate { matched = true; break }
            }
            guard matched, i < end - 9 else { break }
            i -= 1
            if i > anchor { literals(i - anchor, from: anchor) }
            // Length: equal bytes after the first three, plus one, capped at the end.
            var length = 0
            var limit = end - (i + 3)
            while length < limit {
                if input[reference + 3 + length] != input[i + 3 + length] { limit = 0 }
                length += 1
            }
            i += length
            let d = distance - 1
            while length > 262 {
                out.append(contentsOf: [UInt8(224 + (d >> 8)), 253, UInt8(d & 255)])
                length -= 262
            }
            if length < 7 {
                out.append(contentsOf: [UInt8((length << 5) + (d >> 8)), UInt8(d & 255)])
            } else {
                out.append(contentsOf: [UInt8(224 + (d >> 8)), UInt8(length - 7), UInt8(d & 255)])
            }
            table[hash(Int64(u24(i)))] = i
            i += 1
            table[hash(Int64(u24(i)))] = i
            i += 1
            anchor = i
        }
        literals(n - anchor, from: anchor)
        return out
    }

    /// Strict decompression: a truncated token, a back-reference before the start of the
    /// output, or output beyond `maximumSize` is an error (the chain would read garbage or run
    /// out of gas instead).
    public static func decompress(_ input: [UInt8], maximumSize: Int = 1 << 20) throws(DecompressionError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(maximumSize, input.count * 4))
        var i = 0
        while i < input.count {
            let token = Int(input[i])
            let type = token >> 5
            if type == 0 {
                let count = token + 1
                guard i + 1 + count <= input.count else {
                    throw DecompressionError(reason: "literal run of \(count) bytes is truncated", offset: i)
                }
                guard out.count + count <= maximumSize else { throw DecompressionError(reason: "output exceeds \(maximumSize) bytes", offset: i) }
                out.append(contentsOf: input[(i + 1)..<(i + 1 + count)])
                i += 1 + count
                continue
            }
            let length: Int, distance: Int, size: Int
            if type < 7 {
                guard i + 1 < input.count else { throw DecompressionError(reason: "match token is truncated", offset: i) }
                length = type + 2
                distance = ((token & 31) << 8 | Int(input[i + 1])) + 1
                size = 2
            } else {
                guard i + 2 < input.count else { throw DecompressionError(reason: "long match token is truncated", offset: i) }
                length = Int(input[i + 1]) + 9
                distance = ((token & 31) << 8 | Int(input[i + 2])) + 1
                size = 3
            }
            guard distance <= out.count else {
                throw DecompressionError(reason: "back-reference \(distance) bytes before the start of the output", offset: i)
            }
            guard out.count + length <= maximumSize else { throw DecompressionError(reason: "output exceeds \(maximumSize) bytes", offset: i) }
            var from = out.count - distance
            for _ in 0..<length {
                out.append(out[from])
                from += 1
            }
            i += size
        }
        return out
    }
}
