import EthereumCore

/// Reads the fields of one JSON object, naming the path of the field in every error, and
/// refusing fields it was not asked for (an unknown field is not silently dropped).
struct JSONFields {
    let object: JSONObject
    let path: String

    init(_ value: JSONValue, path: String) throws(SmartSessionError) {
        guard let object = value.objectValue else { throw SmartSessionError("\(path): expected an object, got \(value.kind)") }
        self.object = object
        self.path = path
    }

    func only(_ allowed: Set<String>) throws(SmartSessionError) {
        if let extra = object.keys.first(where: { !allowed.contains($0) }) {
            throw SmartSessionError("\(field(extra)): unknown field" + Spelling.suggestion(for: extra, among: allowed))
        }
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func value(_ key: String) throws(SmartSessionError) -> JSONValue {
        guard let v = object[key] else { throw SmartSessionError("\(field(key)): missing") }
        return v
    }

    func optional(_ key: String) -> JSONValue? { object[key].flatMap { $0 == .null ? nil : $0 } }

    /// A text a person reads as it is (a request's label): a string with no character that
    /// could disguise what the review around it shows.
    func displayText(_ key: String) throws(SmartSessionError) -> String? {
        guard let v = optional(key) else { return nil }
        guard let s = v.stringValue else { throw SmartSessionError("\(field(key)): expected a string") }
        if let unsafe = DisplayText.firstUnsafe(s) {
            throw SmartSessionError("\(field(key)): \(unsafe), a control, text-direction or invisible character, could disguise what the review shows")
        }
        return s
    }

    func string(_ key: String) throws(SmartSessionError) -> String {
        guard let s = try value(key).stringValue else { throw SmartSessionError("\(field(key)): expected a string") }
        return s
    }

    func address(_ key: String) throws(SmartSessionError) -> Address {
        try Self.address(try value(key), path: field(key))
    }

    static func address(_ value: JSONValue, path: String) throws(SmartSessionError) -> Address {
        guard let s = value.stringValue else { throw SmartSessionError("\(path): expected an address string") }
        do { return try Address(s) } catch { throw SmartSessionError("\(path): \(error)") }
    }

    func bytes(_ key: String) throws(SmartSessionError) -> [UInt8] {
        try Self.bytes(try value(key), path: field(key))
    }

    static func bytes(_ value: JSONValue, path: String) throws(SmartSessionError) -> [UInt8] {
        guard let s = value.stringValue, s.hasPrefix("0x") || s.hasPrefix("0X") else {
            throw SmartSessionError("\(path): expected 0x hex")
        }
        do { return try Hex.decode(s) } catch { throw SmartSessionError("\(path): \(error)") }
    }

    func bytes32(_ key: String) throws(SmartSessionError) -> Bytes32 {
        let b = try bytes(key)
        guard let w = Bytes32(exactly: b) else { throw SmartSessionError("\(field(key)): expected 32 bytes, got \(b.count)") }
        return w
    }

    func bool(_ key: String) throws(SmartSessionError) -> Bool {
        guard let b = try value(key).boolValue else { throw SmartSessionError("\(field(key)): expected true or false") }
        return b
    }

    func integer(_ key: String) throws(SmartSessionError) -> UInt256 {
        try Self.integer(try value(key), path: field(key))
    }

    static func integer(_ value: JSONValue, path: String) throws(SmartSessionError) -> UInt256 {
        let text: String
        switch value {
        case .string(let s): text = s
        case .number(let n): text = n
        default: throw SmartSessionError("\(path): expected an integer")
        }
        do { return try UInt256(parsing: text) } catch { throw SmartSessionError("\(path): \(error)") }
    }

    func uint64(_ key: String) throws(SmartSessionError) -> UInt64 {
        guard let v = try integer(key).uint64 else { throw SmartSessionError("\(field(key)): does not fit in 64 bits") }
        return v
    }

    /// An optional field read as its type or refused: a wrong type is never taken for absent
    /// (a restriction given as an object instead of a list would otherwise vanish).
    func optionalBool(_ key: String) throws(SmartSessionError) -> Bool? {
        optional(key) == nil ? nil : try bool(key)
    }

    func optionalArray(_ key: String) throws(SmartSessionError) -> [JSONValue]? {
        optional(key) == nil ? nil : try array(key)
    }

    func array(_ key: String) throws(SmartSessionError) -> [JSONValue] {
        guard let a = try value(key).arrayValue else { throw SmartSessionError("\(field(key)): expected an array") }
        return a
    }
}
