extension ABI {
    /// Solidity's `abi.encodePacked`: elementary values in their minimal width, `bytes` and
    /// `string` raw, array elements padded to 32 bytes. Tuples, nested arrays and arrays of
    /// dynamic types are refused, as the Solidity compiler refuses them.
    public static func encodePacked(_ values: [ABIValue], as types: [ABIType]) throws(ABIError) -> [UInt8] {
        guard values.count == types.count else {
            throw ABIError("expected \(types.count) values, got \(values.count)")
        }
        var out: [UInt8] = []
        for i in values.indices {
            let path = ["arg \(i)"]
            switch (types[i], values[i]) {
            case (.bytes, .bytes(let b)): out += b
            case (.string, .string(let s)): out += Array(s.utf8)
            case (.array(let t), .array(let items)), (.fixedArray(let t, _), .array(let items)):
                if case .fixedArray(_, let n) = types[i], n != items.count {
                    throw ABIError("expected \(n) elements, got \(items.count)", path: path)
                }
                guard !t.isDynamic, !isComposite(t) else {
                    throw ABIError("abi.encodePacked does not support arrays of \(t.canonical)", path: path)
                }
                for (j, item) in items.enumerated() {
                    try encodeValue(item, t, path: { path + ["[\(j)]"] }, into: &out)
                }
            case (.tuple, _):
                throw ABIError("abi.encodePacked does not support tuples", path: path)
            case (let t, let v):
                var word: [UInt8] = []
                try encodeValue(v, t, path: { path }, into: &word)
                switch t {
                case .uint(let bits), .int(let bits): out += word[(32 - bits / 8)...]
                case .address: out += word[12...]
                case .bool: out.append(word[31])
                case .fixedBytes(let n): out += word[0..<n]
                default: throw ABIError("expected \(t.canonical), got \(v.kind)", path: path)
                }
            }
        }
        return out
    }

    private static func isComposite(_ t: ABIType) -> Bool {
        switch t {
        case .array, .fixedArray, .tuple: true
        default: false
        }
    }
}
