extension ABIValue {
    /// Reads a value of `type` from JSON: integers as JSON integers or strings (decimal or `0x`
    /// hex), addresses and byte strings as hex strings, bools as JSON booleans, arrays as arrays,
    /// tuples as arrays or as objects keyed by component name. Anything else is an error: no
    /// silent defaults.
    public init(json: JSONValue, as type: ABIType, path: [String] = []) throws(ABIError) {
        func fail(_ what: String) -> ABIError { ABIError("expected \(what), got \(json.kind)", path: path) }
        switch type {
        case .uint(let bits):
            let v = try Self.unsignedInteger(json, path: path)
            guard v.bitWidth <= bits else { throw ABIError("\(v) does not fit in uint\(bits)", path: path) }
            self = .uint(v)
        case .int(let bits):
            let v = try Self.signedInteger(json, path: path)
            guard v.fits(bits: bits) else { throw ABIError("\(v) does not fit in int\(bits)", path: path) }
            self = .int(v)
        case .address:
            guard let s = json.stringValue else { throw fail("an address string") }
            do { self = .address(try Address(s)) } catch { throw ABIError("\(error)", path: path) }
        case .bool:
            guard let b = json.boolValue else { throw fail("true or false") }
            self = .bool(b)
        case .fixedBytes(let n):
            let b = try Self.hexBytes(json, path: path)
            guard b.count == n else { throw ABIError("expected \(n) bytes, got \(b.count)", path: path) }
            self = .fixedBytes(b)
        case .bytes:
            self = .bytes(try Self.hexBytes(json, path: path))
        case .string:
            guard let s = json.stringValue else { throw fail("a string") }
            self = .string(s)
        case .array(let t), .fixedArray(let t, _):
            guard let items = json.arrayValue else { throw fail("an array") }
            if case .fixedArray(_, let n) = type, items.count != n {
                throw ABIError("expected \(n) elements, got \(items.count)", path: path)
            }
            var values: [ABIValue] = []
            for (i, item) in items.enumerated() { values.append(try ABIValue(json: item, as: t, path: path + ["[\(i)]"])) }
            self = .array(values)
        case .tuple(let ps):
            var values: [ABIValue] = []
            if let items = json.arrayValue {
                guard items.count == ps.count else { throw ABIError("expected \(ps.count) components, got \(items.count)", path: path) }
                for (i, p) in ps.enumerated() {
                    values.append(try ABIValue(json: items[i], as: p.type, path: path + [ABI.componentPath(p.name, i)]))
                }
            } else if let object = json.objectValue {
                let names = Set(ps.map(\.name))
                if let extra = object.keys.first(where: { !names.contains($0) }) {
                    throw ABIError("unknown component \(String(reflecting: extra))", path: path)
                }
                for (i, p) in ps.enumerated() {
                    guard !p.name.isEmpty, let item = object[p.name] else {
                        throw ABIError("missing component \(p.name.isEmpty ? "#\(i)" : p.name)", path: path)
                    }
                    values.append(try ABIValue(json: item, as: p.type, path: path + [ABI.componentPath(p.name, i)]))
                }
            } else {
                throw fail("an array or object")
            }
            self = .tuple(values)
        }
    }

    static func unsignedInteger(_ json: JSONValue, path: [String]) throws(ABIError) -> UInt256 {
        let text: String
        switch json {
        case .number(let n): text = n
        case .string(let s): text = s
        default: throw ABIError("expected an integer, got \(json.kind)", path: path)
        }
        do { return try UInt256(parsing: text) } catch { throw ABIError("\(error)", path: path) }
    }

    static func signedInteger(_ json: JSONValue, path: [String]) throws(ABIError) -> Int256 {
        let text: String
        switch json {
        case .number(let n): text = n
        case .string(let s): text = s
        default: throw ABIError("expected an integer, got \(json.kind)", path: path)
        }
        do { return try Int256(parsing: text) } catch { throw ABIError("\(error)", path: path) }
    }

    static func hexBytes(_ json: JSONValue, path: [String]) throws(ABIError) -> [UInt8] {
        guard let s = json.stringValue else { throw ABIError("expected a 0x hex string, got \(json.kind)", path: path) }
        guard s.hasPrefix("0x") || s.hasPrefix("0X") else { throw ABIError("expected a 0x hex string", path: path) }
        do { return try Hex.decode(s) } catch { throw ABIError("\(error)", path: path) }
    }

    /// The JSON form: integers as decimal strings (exact, whatever their size), addresses
    /// checksummed, byte strings as `0x` hex, tuples as arrays.
    public var json: JSONValue {
        switch self {
        case .uint(let v): .string(v.description)
        case .int(let v): .string(v.description)
        case .address(let a): .string(a.checksummed)
        case .bool(let b): .bool(b)
        case .fixedBytes(let b), .bytes(let b): .string(Hex.encode(b))
        case .string(let s): .string(s)
        case .array(let items), .tuple(let items): .array(items.map(\.json))
        }
    }

    /// A JSON form of a decoded value that keeps tuple component names, as objects.
    public func json(as type: ABIType) -> JSONValue {
        switch (type, self) {
        case (.array(let t), .array(let items)), (.fixedArray(let t, _), .array(let items)):
            return .array(items.map { $0.json(as: t) })
        case (.tuple(let ps), .tuple(let items)) where ps.allSatisfy({ !$0.name.isEmpty }):
            var object = JSONObject()
            for (p, item) in zip(ps, items) { object[p.name] = item.json(as: p.type) }
            return .object(object)
        case (.tuple(let ps), .tuple(let items)):
            return .array(zip(ps, items).map { $1.json(as: $0.type) })
        default:
            return json
        }
    }
}
