extension ABIValue {
    /// Parses a command-line argument, as Foundry's `cast` does: integers in decimal or `0x`
    /// hex, `true`/`false`, hex byte strings, arrays as `[a, b]`, tuples as `(a, b)`. A top-level
    /// string is taken verbatim; inside arrays and tuples a string may be double-quoted.
    public init(text: String, as type: ABIType) throws(ABIError) {
        if case .string = type {
            self = .string(text)
            return
        }
        var reader = ValueTextReader(text)
        self = try reader.read(type, path: [])
        try reader.expectEnd()
    }

    /// The value as people read it: decimal integers, checksummed addresses, hex bytes, quoted
    /// strings, `[…]` arrays and `(…)` tuples.
    public var text: String {
        switch self {
        case .uint(let v): v.description
        case .int(let v): v.description
        case .address(let a): a.checksummed
        case .bool(let b): b ? "true" : "false"
        case .fixedBytes(let b), .bytes(let b): Hex.encode(b)
        case .string(let s): JSONValue.string(s).serialized
        case .array(let items): "[" + items.map(\.text).joined(separator: ", ") + "]"
        case .tuple(let items): "(" + items.map(\.text).joined(separator: ", ") + ")"
        }
    }
}

private struct ValueTextReader {
    let chars: [Character]
    var position = 0

    init(_ text: String) { chars = Array(text) }

    func error(_ reason: String, _ path: [String]) -> ABIError {
        ABIError("\(reason) at character \(position)", path: path)
    }

    mutating func skipSpaces() {
        while position < chars.count, chars[position].isWhitespace { position += 1 }
    }

    mutating func expectEnd() throws(ABIError) {
        skipSpaces()
        guard position == chars.count else { throw error("unexpected text after the value", []) }
    }

    mutating func expect(_ c: Character, _ path: [String]) throws(ABIError) {
        skipSpaces()
        guard position < chars.count, chars[position] == c else { throw error("expected '\(c)'", path) }
        position += 1
    }

    mutating func consume(_ c: Character) -> Bool {
        skipSpaces()
        guard position < chars.count, chars[position] == c else { return false }
        position += 1
        return true
    }

    /// A bare token: everything up to the next `,`, `]`, `)` or the end, trimmed.
    mutating func token(_ path: [String]) throws(ABIError) -> String {
        skipSpaces()
        let start = position
        while position < chars.count, ![",", "]", ")"].contains(chars[position]) { position += 1 }
        var end = position
        while end > start, chars[end - 1].isWhitespace { end -= 1 }
        let t = String(chars[start..<end])
        guard !t.isEmpty else { throw error("expected a value", path) }
        return t
    }

    mutating func quotedString(_ path: [String]) throws(ABIError) -> String {
        let start = position
        position += 1
        var escaped = false
        while position < chars.count {
            let c = chars[position]
            position += 1
            if escaped { escaped = false; continue }
            if c == "\\" { escaped = true; continue }
            if c == "\"" {
                do { return try JSONValue(parsing: String(chars[start..<position])).stringValue ?? "" } catch {
                    throw self.error("invalid quoted string", path)
                }
            }
        }
        throw error("unterminated string", path)
    }

    mutating func read(_ type: ABIType, path: [String]) throws(ABIError) -> ABIValue {
        skipSpaces()
        switch type {
        case .array(let t), .fixedArray(let t, _):
            try expect("[", path)
            var items: [ABIValue] = []
            if !consume("]") {
                repeat { items.append(try read(t, path: path + ["[\(items.count)]"])) } while consume(",")
                try expect("]", path)
            }
            if case .fixedArray(_, let n) = type, items.count != n {
                throw ABIError("expected \(n) elements, got \(items.count)", path: path)
            }
            return .array(items)
        case .tuple(let ps):
            try expect("(", path)
            var items: [ABIValue] = []
            for (i, p) in ps.enumerated() {
                if i > 0 { try expect(",", path) }
                items.append(try read(p.type, path: path + [ABI.componentPath(p.name, i)]))
            }
            try expect(")", path)
            return .tuple(items)
        case .string:
            if position < chars.count, chars[position] == "\"" { return .string(try quotedString(path)) }
            return .string(try token(path))
        default:
            let t = try token(path)
            let json: JSONValue = switch type {
            case .bool where t == "true" || t == "false": .bool(t == "true")
            default: .string(t)
            }
            return try ABIValue(json: json, as: type, path: path)
        }
    }
}
