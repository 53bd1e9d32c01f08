import EthereumCore
import TOMLKit

/// Reads TOML into the same `JSONValue` tree the rest of the agent parses strictly, so rules
/// files get the same field-naming errors as requests.
enum TOMLDocument {
    static func parse(_ text: String) throws(RulesError) -> JSONValue {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch { throw RulesError("invalid TOML: \(error)") }
        return value(table)
    }

    static func value(_ v: TOMLValueConvertible) -> JSONValue {
        switch v.type {
        case .table:
            var o = JSONObject()
            if let t = v.table { for key in t.keys { if let item = t[key] { o[key] = value(item) } } }
            return .object(o)
        case .array:
            return .array((v.array.map { Array($0) } ?? []).map(value))
        case .string: return .string(v.string ?? "")
        case .int: return .number(String(v.int ?? 0))
        case .bool: return .bool(v.bool ?? false)
        case .double: return .string(String(v.double ?? 0))
        default: return .string("\(v)")
        }
    }
}
