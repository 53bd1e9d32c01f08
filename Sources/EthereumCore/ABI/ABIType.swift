/// A Solidity ABI type. Tuples carry their component names (empty when unnamed) so decoded
/// values can be shown by name; names never enter the canonical form or the encoding.
public indirect enum ABIType: Hashable, Sendable, CustomStringConvertible {
    case uint(Int)
    case int(Int)
    case address
    case bool
    case fixedBytes(Int)
    case bytes
    case string
    /// `T[]`
    case array(ABIType)
    /// `T[k]`
    case fixedArray(ABIType, Int)
    case tuple([ABIParameter])

    public static let uint256 = ABIType.uint(256)
    public static let bytes32 = ABIType.fixedBytes(32)

    /// The canonical form used in signatures and selectors: `uint256`, `(address,bytes)[]`.
    public var canonical: String {
        switch self {
        case .uint(let n): "uint\(n)"
        case .int(let n): "int\(n)"
        case .address: "address"
        case .bool: "bool"
        case .fixedBytes(let n): "bytes\(n)"
        case .bytes: "bytes"
        case .string: "string"
        case .array(let t): t.canonical + "[]"
        case .fixedArray(let t, let n): t.canonical + "[\(n)]"
        case .tuple(let ps): "(" + ps.map(\.type.canonical).joined(separator: ",") + ")"
        }
    }

    public var description: String { canonical }

    /// Dynamic types are encoded in the tail, behind an offset.
    public var isDynamic: Bool {
        switch self {
        case .bytes, .string, .array: true
        case .fixedArray(let t, _): t.isDynamic
        case .tuple(let ps): ps.contains { $0.type.isDynamic }
        default: false
        }
    }

    /// The most bytes a static type may take: beyond any calldata a chain takes, and far enough
    /// from Int's end that sizes and offsets computed from it never overflow. Types are checked
    /// against it as they are parsed (`uint256[1048576][1048576][1048576]` is refused), so
    /// `headSize` is only ever computed for one within it.
    public static let maximumHeadSize = 1 << 32

    /// Whether the type's head fits in `maximumHeadSize`, found without overflowing.
    var headSizeIsBounded: Bool { boundedHeadSize != nil }

    private var boundedHeadSize: Int? {
        if isDynamic { return 32 }
        switch self {
        case .fixedArray(let t, let n):
            guard let element = t.boundedHeadSize else { return nil }
            let (size, overflow) = n.multipliedReportingOverflow(by: element)
            return overflow || size > Self.maximumHeadSize ? nil : size
        case .tuple(let ps):
            var size = 0
            for p in ps {
                guard let component = p.type.boundedHeadSize else { return nil }
                size += component
                guard size <= Self.maximumHeadSize else { return nil }
            }
            return size
        default: return 32
        }
    }

    /// The bytes this type takes in the head of its enclosing tuple.
    public var headSize: Int {
        if isDynamic { return 32 }
        switch self {
        case .fixedArray(let t, let n): return n * t.headSize
        case .tuple(let ps): return ps.reduce(0) { $0 + $1.type.headSize }
        default: return 32
        }
    }

    /// Parses a type as written in signatures: `uint256`, `uint` (= uint256), `bytes32`,
    /// `(address to,uint256 amount)[]`, `tuple(uint8,bool)[2]`.
    public init(parsing text: String) throws(ABIError) {
        var parser = SignatureParser(text)
        self = try parser.parseType()
        try parser.expectEnd()
    }
}

/// A named parameter or tuple component. The name is "" when the source gave none.
public struct ABIParameter: Hashable, Sendable {
    public var name: String
    public var type: ABIType

    public init(_ name: String = "", _ type: ABIType) {
        self.name = name
        self.type = type
    }

    /// Parses a parameter list as `cast` and ethabi take it: `(uint256 amount, address)`, or
    /// without the parentheses, `uint256,address`. `()` and "" are the empty list.
    /// `(uint8,bool)[]` and `(uint8,bool),address` start with a tuple type, not the list.
    public static func list(parsing text: String) throws(ABIError) -> [ABIParameter] {
        let start = text.drop { $0.isWhitespace }
        if start.isEmpty { return [] }
        if start.hasPrefix("(") {
            var enclosed = SignatureParser(text)
            let params = try enclosed.parseParameterList(depth: 0, allowEmpty: true)
            enclosed.skipSpaces()
            if enclosed.atEnd { return params }
        }
        var parser = SignatureParser(text)
        let params = try parser.parseParameters(depth: 0)
        try parser.expectEnd()
        return params
    }
}

/// A recursive-descent parser for types and human-readable signatures
/// (`function transfer(address to, uint256 amount) external returns (bool)`).
struct SignatureParser {
    static let maximumDepth = 32
    private let chars: [Character]
    private var position = 0

    init(_ text: String) { chars = Array(text) }

    /// Quotes the text around the error, not all of it: a signature may be a client's
    /// megabyte, and the error goes back to it and may reach the journal.
    private func error(_ reason: String) -> ABIError {
        let window = max(0, position - 60)..<min(chars.count, position + 60)
        let excerpt = (window.lowerBound > 0 ? "…" : "") + String(chars[window]) + (window.upperBound < chars.count ? "…" : "")
        return ABIError("\(reason) at character \(position) of \(String(reflecting: excerpt))")
    }

    mutating func skipSpaces() {
        while position < chars.count, chars[position].isWhitespace { position += 1 }
    }

    mutating func consume(_ c: Character) -> Bool {
        skipSpaces()
        guard position < chars.count, chars[position] == c else { return false }
        position += 1
        return true
    }

    mutating func expect(_ c: Character) throws(ABIError) {
        guard consume(c) else { throw error("expected '\(c)'") }
    }

    mutating func expectEnd() throws(ABIError) {
        skipSpaces()
        guard position == chars.count else { throw error("unexpected text") }
    }

    var atEnd: Bool { position >= chars.count }

    /// A Solidity identifier's characters: ASCII letters and digits, `_` and `$` (so a name
    /// shown in a review cannot be a look-alike in another script, or carry a control character).
    static func isIdentifierCharacter(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber) || c == "_" || c == "$" }

    static func isIdentifier(_ s: String) -> Bool { s.first.map { !$0.isNumber } ?? false && s.allSatisfy(isIdentifierCharacter) }

    /// An identifier, not starting with a digit.
    mutating func identifier() -> String? {
        skipSpaces()
        let start = position
        while position < chars.count, Self.isIdentifierCharacter(chars[position]) {
            position += 1
        }
        guard position > start, !chars[start].isNumber else { position = start; return nil }
        return String(chars[start..<position])
    }

    mutating func peekIdentifier() -> String? {
        let saved = position
        defer { position = saved }
        return identifier()
    }

    mutating func parseType(depth: Int = 0) throws(ABIError) -> ABIType {
        guard depth < Self.maximumDepth else { throw error("type nested too deeply") }
        skipSpaces()
        var base: ABIType
        if position < chars.count, chars[position] == "(" {
            base = .tuple(try parseParameterList(depth: depth + 1, allowEmpty: false))
        } else {
            guard let word = identifier() else { throw error("expected a type") }
            if word == "tuple" {
                base = .tuple(try parseParameterList(depth: depth + 1, allowEmpty: false))
            } else {
                guard let type = Self.elementary(word) else { throw error("unknown type \(String(reflecting: word))") }
                base = type
            }
        }
        while consume("[") {
            skipSpaces()
            let start = position
            while position < chars.count, chars[position].isNumber { position += 1 }
            let digits = String(chars[start..<position])
            try expect("]")
            if digits.isEmpty {
                base = .array(base)
            } else {
                guard let n = Int(digits), n > 0, n <= 1 << 20 else { throw error("invalid array size \(digits)") }
                base = .fixedArray(base, n)
            }
        }
        guard base.headSizeIsBounded else { throw error("\(base.canonical) would take more than 4 GiB of calldata") }
        return base
    }

    static func elementary(_ word: String) -> ABIType? {
        func bits(_ suffix: Substring) -> Int? {
            if suffix.isEmpty { return 256 }
            guard let n = Int(suffix), n % 8 == 0, (8...256).contains(n), !suffix.hasPrefix("0") else { return nil }
            return n
        }
        switch word {
        case "address": return .address
        case "bool": return .bool
        case "bytes": return .bytes
        case "string": return .string
        default: break
        }
        if word.hasPrefix("uint"), let n = bits(word.dropFirst(4)) { return .uint(n) }
        if word.hasPrefix("int"), let n = bits(word.dropFirst(3)) { return .int(n) }
        if word.hasPrefix("bytes"), let n = Int(word.dropFirst(5)), (1...32).contains(n),
           !word.dropFirst(5).hasPrefix("0") {
            return .fixedBytes(n)
        }
        return nil
    }

    private static let modifiers: Set<String> = ["indexed", "calldata", "memory", "storage", "payable"]

    /// `( type [location] [name], … )`
    mutating func parseParameterList(depth: Int, allowEmpty: Bool) throws(ABIError) -> [ABIParameter] {
        try expect("(")
        if consume(")") {
            guard allowEmpty else { throw error("a tuple needs at least one component") }
            return []
        }
        let params = try parseParameters(depth: depth)
        try expect(")")
        return params
    }

    /// `type [location] [name], …`: one or more, without the parentheses.
    mutating func parseParameters(depth: Int) throws(ABIError) -> [ABIParameter] {
        var params: [ABIParameter] = []
        repeat {
            let type = try parseType(depth: depth)
            var name = ""
            while let word = peekIdentifier() {
                _ = identifier()
                if Self.modifiers.contains(word) { continue }
                name = word
                break
            }
            params.append(ABIParameter(name, type))
        } while consume(",")
        return params
    }

    /// `[function] name(params) [modifiers] [returns (params)]`
    mutating func parseFunction() throws(ABIError) -> ABIFunction {
        guard var name = identifier() else { throw error("expected a function name") }
        if name == "function" {
            guard let n = identifier() else { throw error("expected a function name") }
            name = n
        }
        let inputs = try parseParameterList(depth: 0, allowEmpty: true)
        var outputs: [ABIParameter] = []
        var stateMutability = "nonpayable"
        while let word = identifier() {
            switch word {
            case "returns": outputs = try parseParameterList(depth: 0, allowEmpty: true)
            case "view", "pure", "payable", "nonpayable": stateMutability = word
            case "external", "public": continue
            default: throw error("unexpected \(String(reflecting: word))")
            }
        }
        try expectEnd()
        return ABIFunction(name: name, inputs: inputs, outputs: outputs, stateMutability: stateMutability)
    }
}
