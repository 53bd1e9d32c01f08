import EthereumCore

/// A TOML 1.0 reader for the agent's configuration and rules files, giving the same `JSONValue`
/// tree the rest of the agent reads strictly.
///
/// Why not TOMLKit: the toml++ it wraps (as of TOMLKit 0.6.0) stops the whole process on an
/// assertion for some malformed files, among them a half-typed header (`[` alone, `[.rules]`,
/// `[[[rules]]`) and `x = ["",}`. Found by fuzzing (`scripts/fuzz.sh`); toml++ fixed one of
/// these upstream (marzer/tomlplusplus#301) after TOMLKit's copy was taken. A rules file reloaded
/// on SIGHUP with such a slip took the agent down for every client, instead of being refused.
///
/// What it accepts follows Python's `tomllib` (TOML 1.0.0), which the test suite uses as its
/// oracle: the same documents are read, the same are refused. But a leading byte order mark is
/// skipped, and three limits are ours: integers must fit 64 bits (TOML requires an error for one
/// that cannot be kept exactly), keys of more than 64 parts and values nested more than 64 deep
/// are refused (the tree is walked recursively after). Floats and dates become strings (no field
/// of ours takes one, so the consumer's error names the field).
public enum TOMLDocument {
    public static func parse(_ text: String) throws(TOMLError) -> JSONObject {
        var parser = TOMLParser(text)
        return try parser.document()
    }
}

/// Where and why a TOML document was refused.
public struct TOMLError: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var reason: String
    public var description: String { "\(reason) (line \(line), column \(column))" }
}

/// A table being built. Values that TOML closes once written (inline tables, arrays) are kept
/// as finished `JSONValue`s, so nothing can be added to them later.
final class TOMLTable {
    enum Node {
        case value(JSONValue)
        case table(TOMLTable)
        case arrayOfTables(TableList)
    }

    /// The tables of a `[[header]]`, appended to in place.
    final class TableList {
        var tables: [TOMLTable]
        init(_ tables: [TOMLTable]) { self.tables = tables }
    }

    private(set) var entries: [(key: String, node: Node)] = []
    private var index: [String: Int] = [:]
    /// Declared by a `[header]`, or made by dotted keys in a section that has ended: no header
    /// may declare it again, no dotted key in a later section extend it.
    var explicit = false

    subscript(key: String) -> Node? { index[key].map { entries[$0].node } }

    /// Adds `key`, which the parser has checked is not there yet.
    func add(_ key: String, _ node: Node) {
        index[key] = entries.count
        entries.append((key, node))
    }

    var object: JSONObject {
        var object = JSONObject()
        for (key, node) in entries {
            switch node {
            case .value(let v): object[key] = v
            case .table(let t): object[key] = .object(t.object)
            case .arrayOfTables(let list): object[key] = .array(list.tables.map { .object($0.object) })
            }
        }
        return object
    }
}

struct TOMLParser {
    private let bytes: [UInt8]
    private var pos = 0
    private let root = TOMLTable()
    /// The key of the current `[table]` or `[[array]]` section, and its table.
    private var header: [String] = []
    private var section: TOMLTable
    /// Tables dotted keys made or went through in this section: explicit once it ends.
    private var pending: [TOMLTable] = []
    static let maximumDepth = 64

    init(_ text: String) {
        section = root
        // As tomllib does: CRLF is a newline; a CR anywhere else is refused. Unlike tomllib, a
        // byte order mark some editors put first is skipped (the TOMLKit before did so too).
        var b: [UInt8] = []
        b.reserveCapacity(text.utf8.count)
        var it = text.utf8.dropFirst(text.hasPrefix("\u{FEFF}") ? 3 : 0).makeIterator(), next = it.next()
        while let c = next {
            next = it.next()
            if c == 0x0D, next == 0x0A { continue }
            b.append(c)
        }
        bytes = b
    }

    // MARK: - Statements

    mutating func document() throws(TOMLError) -> JSONObject {
        while true {
            skipWhitespace()
            guard let c = peek() else { break }
            if c == 0x0A { pos += 1; continue }
            if Self.isBareKey(c) || c == 0x22 || c == 0x27 {
                try keyValueStatement()
            } else if c == 0x5B {
                for table in pending { table.explicit = true }
                pending = []
                if peek(1) == 0x5B { try arrayOfTablesHeader() } else { try tableHeader() }
            } else if c != 0x23 {
                throw error("expected a key, a [table] or a comment")
            }
            skipWhitespace()
            try skipComment()
            guard let end = peek() else { break }
            guard end == 0x0A else { throw error("expected the end of the line after a statement") }
            pos += 1
        }
        return root.object
    }

    private mutating func tableHeader() throws(TOMLError) {
        pos += 1
        skipWhitespace()
        let key = try dottedKey()
        guard peek() == 0x5D else { throw error("expected ']' at the end of the table header") }
        let parent = try nest(key.dropLast(), from: root, what: key)
        let table: TOMLTable
        switch parent[key.last!] {
        case nil:
            table = TOMLTable()
            parent.add(key.last!, .table(table))
        case .table(let existing) where !existing.explicit:
            table = existing
        default:
            throw error("[\(Self.dotted(key))] is defined already")
        }
        table.explicit = true
        pos += 1
        header = key
        section = table
    }

    private mutating func arrayOfTablesHeader() throws(TOMLError) {
        pos += 2
        skipWhitespace()
        let key = try dottedKey()
        guard peek() == 0x5D, peek(1) == 0x5D else { throw error("expected ']]' at the end of the array of tables header") }
        let parent = try nest(key.dropLast(), from: root, what: key)
        let table = TOMLTable()
        switch parent[key.last!] {
        case nil: parent.add(key.last!, .arrayOfTables(TOMLTable.TableList([table])))
        case .arrayOfTables(let list): list.tables.append(table)
        default: throw error("\(Self.dotted(key)) is not an array of tables")
        }
        pos += 2
        header = key
        section = table
    }

    private mutating func keyValueStatement() throws(TOMLError) {
        let start = pos
        let (key, value) = try keyValue(depth: 0)
        var table = section
        for part in key.dropLast() {
            switch table[part] {
            case nil:
                let made = TOMLTable()
                table.add(part, .table(made))
                table = made
            case .table(let t) where !t.explicit:
                table = t
            default:
                pos = start
                throw error("\(Self.dotted(header + key)) would change \(Self.dotted(header + [part])), which is defined already")
            }
            pending.append(table)
        }
        guard table[key.last!] == nil else {
            pos = start
            throw error("\(Self.dotted(header + key)) is defined already")
        }
        table.add(key.last!, .value(value))
    }

    /// The table at `path` below `table`, made where missing; an array of tables stands for
    /// its last table. A value on the way (a string, an inline table, an array) is an error.
    private func nest(_ path: ArraySlice<String>, from table: TOMLTable, what: [String]) throws(TOMLError) -> TOMLTable {
        var table = table
        for part in path {
            switch table[part] {
            case nil:
                let made = TOMLTable()
                table.add(part, .table(made))
                table = made
            case .table(let t): table = t
            case .arrayOfTables(let list): table = list.tables.last!
            case .value: throw error("\(Self.dotted(what)) cannot be added to the value \(part)")
            }
        }
        return table
    }

    // MARK: - Keys

    private mutating func keyValue(depth: Int) throws(TOMLError) -> ([String], JSONValue) {
        let key = try dottedKey()
        guard peek() == 0x3D else { throw error("expected '=' after the key") }
        pos += 1
        skipWhitespace()
        return (key, try value(depth: depth))
    }

    private mutating func dottedKey() throws(TOMLError) -> [String] {
        var parts = [try simpleKey()]
        skipWhitespace()
        while peek() == 0x2E {
            guard parts.count < Self.maximumDepth else { throw error("a key of more than \(Self.maximumDepth) parts") }
            pos += 1
            skipWhitespace()
            parts.append(try simpleKey())
            skipWhitespace()
        }
        return parts
    }

    private mutating func simpleKey() throws(TOMLError) -> String {
        switch peek() {
        case 0x22?: return try basicString()
        case 0x27?: return try literalString()
        case let c? where Self.isBareKey(c):
            let start = pos
            while let c = peek(), Self.isBareKey(c) { pos += 1 }
            return String(decoding: bytes[start..<pos], as: UTF8.self)
        default:
            throw error("expected a key: letters, digits, '_' and '-', or a quoted string")
        }
    }

    // MARK: - Values

    private mutating func value(depth: Int) throws(TOMLError) -> JSONValue {
        guard depth < Self.maximumDepth else { throw error("arrays and inline tables nested deeper than \(Self.maximumDepth)") }
        switch peek() {
        case 0x22?: return .string(matches("\"\"\"") ? try multilineString(quote: 0x22) : try basicString())
        case 0x27?: return .string(matches("'''") ? try multilineString(quote: 0x27) : try literalString())
        case 0x74? where matches("true"): pos += 4; return .bool(true)
        case 0x66? where matches("false"): pos += 5; return .bool(false)
        case 0x5B?: return try array(depth: depth)
        case 0x7B?: return try inlineTable(depth: depth)
        default: break
        }
        if let end = try dateOrTime() ?? time(at: pos) {
            defer { pos = end }
            return .string(String(decoding: bytes[pos..<end], as: UTF8.self))
        }
        if let number = try number() { return number }
        for special: StaticString in ["inf", "nan", "+inf", "-inf", "+nan", "-nan"] where matches(special) {
            pos += special.utf8CodeUnitCount
            return .string(String(Double(special.description)!))
        }
        throw error("expected a value")
    }

    private mutating func array(depth: Int) throws(TOMLError) -> JSONValue {
        pos += 1
        var items: [JSONValue] = []
        try skipArraySpace()
        while peek() != 0x5D {
            items.append(try value(depth: depth + 1))
            try skipArraySpace()
            if peek() == 0x5D { break }
            guard peek() == 0x2C else { throw error("expected ',' or ']' in the array") }
            pos += 1
            try skipArraySpace()
        }
        pos += 1
        return .array(items)
    }

    /// Whitespace, newlines and comments, which may sit anywhere between an array's values.
    private mutating func skipArraySpace() throws(TOMLError) {
        while true {
            skipWhitespace()
            try skipComment()
            guard peek() == 0x0A else { return }
            pos += 1
        }
    }

    private mutating func inlineTable(depth: Int) throws(TOMLError) -> JSONValue {
        pos += 1
        let table = TOMLTable()
        skipWhitespace()
        if peek() == 0x7D { pos += 1; return .object(table.object) }
        while true {
            let start = pos
            let (key, value) = try keyValue(depth: depth + 1)
            let parent = try nest(key.dropLast(), from: table, what: key)
            guard parent[key.last!] == nil else {
                pos = start
                throw error("\(Self.dotted(key)) is defined already in the inline table")
            }
            parent.add(key.last!, .value(value))
            skipWhitespace()
            switch peek() {
            case 0x7D?: pos += 1; return .object(table.object)
            case 0x2C?: pos += 1; skipWhitespace()
            default: throw error("expected ',' or '}' in the inline table (which stays on one line)")
            }
        }
    }

    /// An integer as JSON number text, or a float as a string; nil when no number starts here.
    private mutating func number() throws(TOMLError) -> JSONValue? {
        let start = pos
        if matches("0x") || matches("0o") || matches("0b") {
            let radix = [UInt8(ascii: "x"): 16, UInt8(ascii: "o"): 8, UInt8(ascii: "b"): 2][bytes[pos + 1]]!
            pos += 2
            if let digits = digitRun(radix: radix) {
                guard let n = Int64(digits, radix: radix) else { throw error("an integer beyond 64 bits") }
                return .number(String(n))
            }
            pos = start   // a 0, and the letter after it is out of place
        }
        if let c = peek(), c == 0x2B || c == 0x2D { pos += 1 }
        guard let first = peek(), Self.isDigit(first) else { pos = start; return nil }
        // No leading zeros: a 0 is a whole integer part.
        var text = "0"
        if first == 0x30 { pos += 1 } else { text = digitRun(radix: 10)! }
        var isFloat = false
        if peek() == 0x2E, let next = peek(1), Self.isDigit(next) {
            pos += 1
            text += "." + digitRun(radix: 10)!
            isFloat = true
        }
        if let e = peek(), e == 0x65 || e == 0x45 {
            var exponent = "e"
            var at = pos + 1
            if let sign = byte(at), sign == 0x2B || sign == 0x2D { exponent.append(Character(UnicodeScalar(sign))); at += 1 }
            if let d = byte(at), Self.isDigit(d) {
                pos = at
                text += exponent + digitRun(radix: 10)!
                isFloat = true
            }
        }
        let sign = bytes[start] == 0x2D ? "-" : ""
        if isFloat { return .string(String(Double(sign + text)!)) }
        guard let n = Int64(sign + text) else { throw error("an integer beyond 64 bits") }
        return .number(String(n))
    }

    /// Digits of `radix`, single underscores allowed between them; nil when none starts here.
    private mutating func digitRun(radix: Int) -> String? {
        var digits = ""
        while let c = peek() {
            if let d = Self.digitValue(c), d < radix {
                digits.append(Character(UnicodeScalar(c)))
                pos += 1
            } else if c == 0x5F, !digits.isEmpty, let next = peek(1), let d = Self.digitValue(next), d < radix {
                pos += 1
            } else {
                break
            }
        }
        return digits.isEmpty ? nil : digits
    }

    // MARK: - Dates and times

    /// The end of a date, with a time and offset where written; nil when none starts here.
    /// The whole is checked (February 30th, hour 24 and second 60 are refused, as tomllib does).
    private func dateOrTime() throws(TOMLError) -> Int? {
        guard let year = digits(pos, 4), byte(pos + 4) == 0x2D, let month = digits(pos + 5, 2), byte(pos + 7) == 0x2D,
              let day = digits(pos + 8, 2), (1...12).contains(month), (1...31).contains(day) else { return nil }
        var end = pos + 10
        if let t = byte(end), t == 0x54 || t == 0x74 || t == 0x20, let afterTime = time(at: end + 1) {
            end = afterTime
            if let z = byte(end), z == 0x5A || z == 0x7A {
                end += 1
            } else if let sign = byte(end), sign == 0x2B || sign == 0x2D, let hours = digits(end + 1, 2), byte(end + 3) == 0x3A,
                      let minutes = digits(end + 4, 2), hours < 24, minutes < 60 {
                end += 6
            }
        }
        guard CivilDate.exists(year: Int64(year), month: Int64(month), day: Int64(day)) else {
            throw error("not a date: \(String(decoding: bytes[pos..<(pos + 10)], as: UTF8.self))")
        }
        return end
    }

    /// The end of `HH:MM:SS[.fraction]` at `at`.
    private func time(at: Int) -> Int? {
        guard let h = digits(at, 2), byte(at + 2) == 0x3A, let m = digits(at + 3, 2), byte(at + 5) == 0x3A, let s = digits(at + 6, 2),
              h < 24, m < 60, s < 60 else { return nil }
        var end = at + 8
        if byte(end) == 0x2E, let d = byte(end + 1), Self.isDigit(d) {
            end += 1
            while let d = byte(end), Self.isDigit(d) { end += 1 }
        }
        return end
    }

    private func digits(_ at: Int, _ count: Int) -> Int? {
        guard at + count <= bytes.count else { return nil }
        var n = 0
        for c in bytes[at..<(at + count)] {
            guard Self.isDigit(c) else { return nil }
            n = n * 10 + Int(c - 0x30)
        }
        return n
    }

    // MARK: - Strings

    private mutating func basicString() throws(TOMLError) -> String {
        pos += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek() else { throw error("the string is not closed") }
            switch c {
            case 0x22: pos += 1; return String(decoding: out, as: UTF8.self)
            case 0x5C: out += try escape(multiline: false)
            case 0x0A: throw error("the string is not closed on its line")
            default:
                guard Self.allowedInString(c) else { throw error("a control character in a string; write it as an escape") }
                out.append(c)
                pos += 1
            }
        }
    }

    /// A `"""` string (with escapes) or a `'''` one (without), at its opening quotes. A newline
    /// just after them is not part of it.
    private mutating func multilineString(quote: UInt8) throws(TOMLError) -> String {
        pos += 3
        if peek() == 0x0A { pos += 1 }
        var out: [UInt8] = []
        while true {
            guard let c = peek() else { throw error("the string is not closed") }
            if c == quote, peek(1) == quote, peek(2) == quote {
                pos += 3
                // Up to two quotes just before the closing three belong to the string.
                for _ in 0..<2 where peek() == quote { out.append(quote); pos += 1 }
                return String(decoding: out, as: UTF8.self)
            }
            if c == 0x5C, quote == 0x22 {
                out += try escape(multiline: true)
                continue
            }
            guard c == 0x0A || Self.allowedInString(c) else { throw error("a control character in a string") }
            out.append(c)
            pos += 1
        }
    }

    private mutating func literalString() throws(TOMLError) -> String {
        pos += 1
        let start = pos
        while true {
            guard let c = peek() else { throw error("the string is not closed") }
            if c == 0x27 { break }
            guard c != 0x0A else { throw error("the string is not closed on its line") }
            guard Self.allowedInString(c) else { throw error("a control character in a literal string") }
            pos += 1
        }
        defer { pos += 1 }
        return String(decoding: bytes[start..<pos], as: UTF8.self)
    }

    /// The UTF-8 of one escape in a basic string, at its backslash. In a multiline string a
    /// backslash ending a line drops it and the whitespace and newlines after it.
    private mutating func escape(multiline: Bool) throws(TOMLError) -> [UInt8] {
        let start = pos
        pos += 1
        guard let c = peek() else { throw error("the string is not closed") }
        if multiline, c == 0x20 || c == 0x09 || c == 0x0A {
            skipWhitespace()
            if peek() != nil {
                guard peek() == 0x0A else { throw error("a backslash in a string that starts no escape") }
            }
            while let c = peek(), c == 0x20 || c == 0x09 || c == 0x0A { pos += 1 }
            return []
        }
        pos += 1
        switch c {
        case 0x62: return [0x08]
        case 0x74: return [0x09]
        case 0x6E: return [0x0A]
        case 0x66: return [0x0C]
        case 0x72: return [0x0D]
        case 0x22: return [0x22]
        case 0x5C: return [0x5C]
        case 0x75, 0x55:
            let count = c == 0x75 ? 4 : 8
            guard pos + count <= bytes.count, bytes[pos..<(pos + count)].allSatisfy({ Self.digitValue($0).map { $0 < 16 } ?? false }),
                  let value = UInt32(String(decoding: bytes[pos..<(pos + count)], as: UTF8.self), radix: 16), let scalar = UnicodeScalar(value)
            else { pos = start; throw error("\\u takes 4 and \\U 8 hex digits of a Unicode scalar value") }
            pos += count
            return Array(String(Character(scalar)).utf8)
        default:
            pos = start
            throw error("a backslash in a string that starts no escape (\\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)")
        }
    }

    // MARK: - Bytes

    private func peek(_ ahead: Int = 0) -> UInt8? { byte(pos + ahead) }
    private func byte(_ at: Int) -> UInt8? { at < bytes.count ? bytes[at] : nil }

    private func matches(_ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard pos + n <= bytes.count else { return false }
        return literal.withUTF8Buffer { bytes[pos..<(pos + n)].elementsEqual($0) }
    }

    private mutating func skipWhitespace() {
        while let c = peek(), c == 0x20 || c == 0x09 { pos += 1 }
    }

    private mutating func skipComment() throws(TOMLError) {
        guard peek() == 0x23 else { return }
        while let c = peek(), c != 0x0A {
            guard Self.allowedInString(c) else { throw error("a control character in a comment") }
            pos += 1
        }
    }

    private func error(_ reason: String) -> TOMLError {
        let before = bytes[..<min(pos, bytes.count)]
        let lineStart = before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        return TOMLError(line: before.count { $0 == 0x0A } + 1, column: String(decoding: bytes[lineStart..<before.endIndex], as: UTF8.self).count + 1, reason: reason)
    }

    static func isBareKey(_ c: UInt8) -> Bool { isDigit(c) || (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A || c == 0x5F || c == 0x2D }
    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    static func digitValue(_ c: UInt8) -> Int? {
        if isDigit(c) { return Int(c - 0x30) }
        let lower = c | 0x20
        return lower >= 0x61 && lower <= 0x66 ? Int(lower - 0x61 + 10) : nil
    }
    /// Tab and anything but the other ASCII control characters.
    static func allowedInString(_ c: UInt8) -> Bool { c == 0x09 || (c >= 0x20 && c != 0x7F) }
    static func dotted(_ key: [String]) -> String { key.joined(separator: ".") }
}
