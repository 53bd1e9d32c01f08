/// Solidity's `abi.encode` and `abi.decode`.
public enum ABI {
    /// `abi.encode(values…)`: the values must match the types exactly (range, length, count).
    public static func encode(_ values: [ABIValue], as types: [ABIType]) throws(ABIError) -> [UInt8] {
        guard values.count == types.count else {
            throw ABIError("expected \(types.count) values, got \(values.count)")
        }
        var out: [UInt8] = []
        out.reserveCapacity(types.reduce(0) { $0 + $1.headSize } + 64)
        try encodeSequence(values, { types[$0] }, path: { [] }, component: { "arg \($0)" }, into: &out)
        return out
    }

    /// Encodes one value of one type as `abi.encode(value)` would.
    public static func encode(_ value: ABIValue, as type: ABIType) throws(ABIError) -> [UInt8] {
        try encode([value], as: [type])
    }

    /// The head/tail layout of a tuple: static values inline, dynamic ones behind an offset
    /// relative to the start of the tuple. Paths are built only when an error needs one.
    static func encodeSequence(
        _ values: [ABIValue], _ type: (Int) -> ABIType, path: () -> [String], component: (Int) -> String, into out: inout [UInt8]
    ) throws(ABIError) {
        let base = out.count
        var pending: [(slot: Int, index: Int)] = []
        for i in values.indices {
            if type(i).isDynamic {
                pending.append((out.count, i))
                out.append(contentsOf: zeroWord)
            } else {
                try encodeValue(values[i], type(i), path: { path() + [component(i)] }, into: &out)
            }
        }
        for (slot, i) in pending {
            writeWord(UInt256(UInt64(out.count - base)).word, at: slot, in: &out)
            try encodeValue(values[i], type(i), path: { path() + [component(i)] }, into: &out)
        }
    }

    static func encodeValue(_ value: ABIValue, _ type: ABIType, path: () -> [String], into out: inout [UInt8]) throws(ABIError) {
        func mismatch() -> ABIError { ABIError("expected \(type.canonical), got \(value.kind)", path: path()) }
        switch (type, value) {
        case (.uint(let bits), .uint(let v)):
            guard v.bitWidth <= bits else { throw ABIError("\(v) does not fit in uint\(bits)", path: path()) }
            appendWord(v.word, to: &out)
        case (.int(let bits), .int(let v)):
            guard v.fits(bits: bits) else { throw ABIError("\(v) does not fit in int\(bits)", path: path()) }
            appendWord(v.bitPattern.word, to: &out)
        case (.address, .address(let a)):
            out.append(contentsOf: zeroWord[0..<12])
            a.withUnsafeBytes { out.append(contentsOf: $0) }
        case (.bool, .bool(let b)):
            out.append(contentsOf: zeroWord[0..<31])
            out.append(b ? 1 : 0)
        case (.fixedBytes(let n), .fixedBytes(let b)):
            guard b.count == n else { throw ABIError("expected \(n) bytes, got \(b.count)", path: path()) }
            out.append(contentsOf: b)
            out.append(contentsOf: zeroWord[0..<(32 - n)])
        case (.bytes, .bytes(let b)):
            appendBytes(b, to: &out)
        case (.string, .string(let s)):
            appendBytes(Array(s.utf8), to: &out)
        case (.array(let t), .array(let items)):
            appendWord(UInt256(UInt64(items.count)).word, to: &out)
            try encodeSequence(items, { _ in t }, path: path, component: { "[\($0)]" }, into: &out)
        case (.fixedArray(let t, let n), .array(let items)):
            guard items.count == n else { throw ABIError("expected \(n) elements, got \(items.count)", path: path()) }
            try encodeSequence(items, { _ in t }, path: path, component: { "[\($0)]" }, into: &out)
        case (.tuple(let ps), .tuple(let items)):
            guard items.count == ps.count else { throw ABIError("expected \(ps.count) components, got \(items.count)", path: path()) }
            try encodeSequence(items, { ps[$0].type }, path: path, component: { componentPath(ps[$0].name, $0) }, into: &out)
        default:
            throw mismatch()
        }
    }

    static func componentPath(_ name: String, _ index: Int) -> String { name.isEmpty ? ".\(index)" : ".\(name)" }

    static let zeroWord = [UInt8](repeating: 0, count: 32)

    @inline(__always)
    static func appendWord(_ word: Bytes32, to out: inout [UInt8]) {
        word.withUnsafeBytes { out.append(contentsOf: $0) }
    }

    static func writeWord(_ word: Bytes32, at slot: Int, in out: inout [UInt8]) {
        word.withUnsafeBytes { raw in
            for i in 0..<32 { out[slot + i] = raw[i] }
        }
    }

    static func appendBytes(_ b: [UInt8], to out: inout [UInt8]) {
        appendWord(UInt256(UInt64(b.count)).word, to: &out)
        out.append(contentsOf: b)
        let pad = (32 - b.count % 32) % 32
        out.append(contentsOf: zeroWord[0..<pad])
    }

    /// Strict `abi.decode`: the encoding must be the canonical one (what `abi.encode` produces)
    /// with nothing after it. Out-of-bounds, overlapping or gapped offsets, lengths past the data,
    /// dirty high bits and non-zero padding are errors that name the value and the byte offset.
    public static func decode(_ data: [UInt8], as types: [ABIType]) throws(ABIError) -> [ABIValue] {
        try withBorrowedBytes(data) { raw throws(ABIError) in
            let decoder = ABIDecoder(data: raw)
            let (values, end) = try decoder.decodeSequence(count: types.count, { types[$0] }, at: 0, path: { [] }, component: { "arg \($0)" })
            guard end == raw.count else {
                throw ABIError("\(raw.count - end) unexpected bytes after the encoding", offset: end)
            }
            return values
        }
    }

    public static func decode(_ data: [UInt8], as type: ABIType) throws(ABIError) -> ABIValue {
        try decode(data, as: [type])[0]
    }
}

/// Decodes from a borrowed buffer; every read is bounds-checked first.
struct ABIDecoder {
    let data: UnsafeRawBufferPointer

    func word(at offset: Int, path: () -> [String]) throws(ABIError) -> Bytes32 {
        guard offset >= 0, offset <= data.count - 32 else {
            throw ABIError("data ends before this 32-byte word", path: path(), offset: offset)
        }
        return Bytes32(littleEndianLanes: data.loadUnaligned(fromByteOffset: offset, as: UInt64.self),
                       data.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self),
                       data.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self),
                       data.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self))
    }

    func integer(at offset: Int, path: () -> [String]) throws(ABIError) -> UInt256 {
        UInt256(try word(at: offset, path: path))
    }

    /// A length or offset word: must fit comfortably in an Int.
    func size(at offset: Int, what: String, path: () -> [String]) throws(ABIError) -> Int {
        let v = try integer(at: offset, path: path)
        guard let n = v.int, n <= data.count else {
            throw ABIError("\(what) \(v) is larger than the data (\(data.count) bytes)", path: path(), offset: offset)
        }
        return n
    }

    /// Decodes a head/tail sequence of `count` values starting at `base`; returns the values
    /// and the end of the last byte the sequence uses. Paths are built only for errors.
    func decodeSequence(count: Int, _ type: (Int) -> ABIType, at base: Int, path: () -> [String], component: (Int) -> String) throws(ABIError) -> ([ABIValue], Int) {
        var head = base
        var headSize = 0
        for i in 0..<count { headSize += type(i).headSize }
        var tailEnd = base + headSize
        guard tailEnd <= data.count else {
            throw ABIError("data ends inside the head (needs \(tailEnd - base) bytes)", path: path(), offset: base)
        }
        // Only now: a type's count alone (up to 2^20) is no measure of the data.
        var values: [ABIValue] = []
        values.reserveCapacity(count)
        for i in 0..<count {
            let itemType = type(i)
            func itemPath() -> [String] { path() + [component(i)] }
            if itemType.isDynamic {
                let relative = try size(at: head, what: "offset", path: itemPath)
                let target = base + relative
                if target < tailEnd {
                    throw ABIError("offset \(relative) points to byte \(target), inside data already used (overlap); expected \(tailEnd - base)", path: itemPath(), offset: head)
                }
                if target > tailEnd {
                    throw ABIError("offset \(relative) leaves a gap of \(target - tailEnd) bytes (non-canonical encoding); expected \(tailEnd - base)", path: itemPath(), offset: head)
                }
                let (value, end) = try decodeValue(itemType, at: target, path: itemPath)
                values.append(value)
                tailEnd = end
                head += 32
            } else {
                let (value, _) = try decodeValue(itemType, at: head, path: itemPath)
                values.append(value)
                head += itemType.headSize
            }
        }
        return (values, tailEnd)
    }

    /// Decodes one value whose encoding starts at `offset`; returns it and where it ends.
    func decodeValue(_ type: ABIType, at offset: Int, path: () -> [String]) throws(ABIError) -> (ABIValue, Int) {
        switch type {
        case .uint(let bits):
            let v = try integer(at: offset, path: path)
            guard v.bitWidth <= bits else {
                throw ABIError("dirty high bits: value \(v) does not fit in uint\(bits)", path: path(), offset: offset)
            }
            return (.uint(v), offset + 32)
        case .int(let bits):
            let v = Int256(bitPattern: try integer(at: offset, path: path))
            guard v.fits(bits: bits) else {
                throw ABIError("bad sign extension: word is not a valid int\(bits)", path: path(), offset: offset)
            }
            return (.int(v), offset + 32)
        case .address:
            let w = try word(at: offset, path: path)
            let bytes = w.bytes
            guard bytes[0..<12].allSatisfy({ $0 == 0 }) else {
                throw ABIError("dirty high bits: the 12 bytes before an address must be zero", path: path(), offset: offset)
            }
            return (.address(Address(uncheckedBytes: bytes[12...])), offset + 32)
        case .bool:
            let v = try integer(at: offset, path: path)
            guard v <= .one else { throw ABIError("a bool must be 0 or 1, got \(v)", path: path(), offset: offset) }
            return (.bool(v == .one), offset + 32)
        case .fixedBytes(let n):
            let bytes = try word(at: offset, path: path).bytes
            guard bytes[n...].allSatisfy({ $0 == 0 }) else {
                throw ABIError("dirty padding: bytes\(n) must be followed by \(32 - n) zero bytes", path: path(), offset: offset)
            }
            return (.fixedBytes(Array(bytes[0..<n])), offset + 32)
        case .bytes:
            let (b, end) = try rawBytes(at: offset, path: path)
            return (.bytes(b), end)
        case .string:
            let (b, end) = try rawBytes(at: offset, path: path)
            guard let s = String(validating: b, as: UTF8.self) else {
                throw ABIError("string is not valid UTF-8", path: path(), offset: offset + 32)
            }
            return (.string(s), end)
        case .array(let element):
            let count = try size(at: offset, what: "array length", path: path)
            let body = offset + 32
            guard count <= (data.count - min(body, data.count)) / element.headSize else {
                throw ABIError("array length \(count) needs more data than is left", path: path(), offset: offset)
            }
            let (items, end) = try decodeSequence(count: count, { _ in element }, at: body, path: path, component: { "[\($0)]" })
            return (.array(items), end)
        case .fixedArray(let element, let count):
            let (items, end) = try decodeSequence(count: count, { _ in element }, at: offset, path: path, component: { "[\($0)]" })
            return (.array(items), end)
        case .tuple(let ps):
            let (items, end) = try decodeSequence(count: ps.count, { ps[$0].type }, at: offset, path: path, component: { ABI.componentPath(ps[$0].name, $0) })
            return (.tuple(items), end)
        }
    }

    func rawBytes(at offset: Int, path: () -> [String]) throws(ABIError) -> ([UInt8], Int) {
        let length = try size(at: offset, what: "length", path: path)
        let start = offset + 32
        let padded = (length + 31) / 32 * 32
        guard padded <= data.count - start else {
            throw ABIError("length \(length) runs past the end of the data", path: path(), offset: offset)
        }
        guard data[(start + length)..<(start + padded)].allSatisfy({ $0 == 0 }) else {
            throw ABIError("dirty padding after \(length) bytes", path: path(), offset: start + length)
        }
        return (Array(data[start..<(start + length)]), start + padded)
    }
}
