/// Why a typed-data document was rejected, and where.
public struct TypedDataError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public var path: [String]

    public init(_ reason: String, path: [String] = []) {
        self.reason = reason
        self.path = path
    }

    public var description: String { path.isEmpty ? reason : "\(path.joined(separator: ".")): \(reason)" }
}

/// An `eth_signTypedData_v4` document (EIP-712): its types, primary type, domain and message,
/// and the hashes the standard defines over them.
public struct TypedData: Sendable {
    public struct Field: Hashable, Sendable {
        public var name: String
        public var type: String
    }

    public private(set) var types: [String: [Field]]
    public private(set) var primaryType: String
    public private(set) var domain: JSONValue
    public private(set) var message: JSONValue

    /// The domain fields, in the order EIP-712 lists them, used when `types` has no
    /// `EIP712Domain` entry (as viem does).
    static let standardDomainFields: [Field] = [
        Field(name: "name", type: "string"), Field(name: "version", type: "string"),
        Field(name: "chainId", type: "uint256"), Field(name: "verifyingContract", type: "address"),
        Field(name: "salt", type: "bytes32"),
    ]

    public init(parsing text: String) throws(TypedDataError) {
        do { try self.init(json: try JSONValue(parsing: text)) } catch let error as JSONParseError {
            throw TypedDataError("\(error)")
        } catch let error as TypedDataError {
            throw error
        } catch {
            throw TypedDataError("\(error)")
        }
    }

    public init(json: JSONValue) throws(TypedDataError) {
        guard let object = json.objectValue else { throw TypedDataError("typed data must be a JSON object") }
        guard let typesJSON = object["types"]?.objectValue else { throw TypedDataError("missing \"types\" object") }
        guard let primary = object["primaryType"]?.stringValue else { throw TypedDataError("missing \"primaryType\" string") }
        guard let domain = object["domain"], domain.objectValue != nil else { throw TypedDataError("missing \"domain\" object") }
        var types: [String: [Field]] = [:]
        for (name, fieldsJSON) in typesJSON {
            guard Self.isIdentifier(name) else { throw TypedDataError("invalid type name \(String(reflecting: name))", path: ["types"]) }
            guard let list = fieldsJSON.arrayValue else { throw TypedDataError("must be an array of fields", path: ["types", name]) }
            var fields: [Field] = []
            var seen = Set<String>()
            for (i, f) in list.enumerated() {
                guard let fname = f["name"]?.stringValue, let ftype = f["type"]?.stringValue else {
                    throw TypedDataError("field \(i) needs a \"name\" and a \"type\" string", path: ["types", name])
                }
                guard seen.insert(fname).inserted else { throw TypedDataError("duplicate field \(String(reflecting: fname))", path: ["types", name]) }
                fields.append(Field(name: fname, type: ftype))
            }
            types[name] = fields
        }
        if types["EIP712Domain"] == nil {
            let present = domain.objectValue!.keys
            types["EIP712Domain"] = Self.standardDomainFields.filter { present.contains($0.name) }
        }
        self.types = types
        self.primaryType = primary
        self.domain = domain
        self.message = object["message"] ?? .null
        guard types[primary] != nil else { throw TypedDataError("primaryType \(String(reflecting: primary)) is not in types") }
        // Check every field type once, so hashing fails only on values.
        for (name, fields) in types {
            for f in fields { _ = try fieldKind(f.type, path: ["types", name, f.name]) }
        }
        if primary != "EIP712Domain" && object["message"] == nil { throw TypedDataError("missing \"message\"") }
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.first, first.isLetter || first == "_" || first == "$" else { return false }
        return s.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "$" }
    }

    /// What a field type string refers to.
    indirect enum FieldKind {
        case atomic(ABIType)
        case structure(String)
        case array(FieldKind, count: Int?)
    }

    /// As many array dimensions as a Solidity type may have, and as hashing can follow.
    static let maximumDimensions = 32

    func fieldKind(_ type: String, path: [String]) throws(TypedDataError) -> FieldKind {
        // The dimensions are read from the end, innermost last, without recursing: a document
        // may come from anybody and write thousands of them.
        var base = Substring(type)
        var counts: [Int?] = []
        while base.hasSuffix("]"), let open = base.lastIndex(of: "[") {
            guard counts.count < Self.maximumDimensions else {
                throw TypedDataError("more than \(Self.maximumDimensions) array dimensions", path: path)
            }
            let size = base[base.index(after: open)..<base.index(before: base.endIndex)]
            if size.isEmpty {
                counts.append(nil)
            } else {
                guard let n = Int(size), n > 0 else { throw TypedDataError("invalid array size in \(type)", path: path) }
                counts.append(n)
            }
            base = base[..<open]
        }
        var kind: FieldKind
        if types[String(base)] != nil {
            kind = .structure(String(base))
        } else {
            guard let abi = try? ABIType(parsing: String(base)), base == abi.canonical, !abi.isTupleOrArray else {
                throw TypedDataError("unknown type \(String(reflecting: String(base)))", path: path)
            }
            kind = .atomic(abi)
        }
        for count in counts.reversed() { kind = .array(kind, count: count) }
        return kind
    }

    /// `encodeType`: the primary type followed by every struct it references, sorted by name.
    public func encodeType(_ name: String) throws(TypedDataError) -> String {
        guard types[name] != nil else { throw TypedDataError("unknown type \(String(reflecting: name))") }
        var found: Set<String> = [name]
        // A worklist rather than recursion: a chain of struct types is as long as the document.
        var unvisited = [name]
        while let next = unvisited.popLast() {
            for f in types[next] ?? [] {
                var kind = try fieldKind(f.type, path: [next, f.name])
                while case .array(let inner, _) = kind { kind = inner }
                if case .structure(let s) = kind, found.insert(s).inserted { unvisited.append(s) }
            }
        }
        found.remove(name)
        return ([name] + found.sorted()).map { n in
            n + "(" + types[n]!.map { "\($0.type) \($0.name)" }.joined(separator: ",") + ")"
        }.joined()
    }

    public func typeHash(_ name: String) throws(TypedDataError) -> Bytes32 {
        Keccak256.hash(utf8: try encodeType(name))
    }

    /// `hashStruct(s) = keccak256(typeHash ‖ encodeData(s))`
    public func hashStruct(_ name: String, _ value: JSONValue, path: [String] = []) throws(TypedDataError) -> Bytes32 {
        var typeHashes: [String: Bytes32] = [:]
        return try hashStruct(name, value, path: path, typeHashes: &typeHashes)
    }

    /// `typeHashes`: each type's hash, computed once per value hashed. Encoding a type walks
    /// every type it references, which a document can make thousands long, and an array can
    /// hold thousands of values of it.
    private func hashStruct(_ name: String, _ value: JSONValue, path: [String], typeHashes: inout [String: Bytes32]) throws(TypedDataError) -> Bytes32 {
        guard path.count < 64 else { throw TypedDataError("value nested too deeply", path: path) }
        guard let fields = types[name] else { throw TypedDataError("unknown type \(String(reflecting: name))", path: path) }
        guard let object = value.objectValue else { throw TypedDataError("expected an object of type \(name), got \(value.kind)", path: path) }
        let known = Set(fields.map(\.name))
        if let extra = object.keys.first(where: { !known.contains($0) }) {
            throw TypedDataError("field \(String(reflecting: extra)) is not part of type \(name)", path: path)
        }
        var hasher = Keccak256()
        if let known = typeHashes[name] {
            hasher.update(known)
        } else {
            let computed = try typeHash(name)
            typeHashes[name] = computed
            hasher.update(computed)
        }
        for f in fields {
            guard let v = object[f.name] else { throw TypedDataError("missing field of type \(f.type)", path: path + [f.name]) }
            hasher.update(try encodeField(try fieldKind(f.type, path: path + [f.name]), v, path: path + [f.name], typeHashes: &typeHashes))
        }
        return hasher.finalize()
    }

    private func encodeField(_ kind: FieldKind, _ value: JSONValue, path: [String], typeHashes: inout [String: Bytes32]) throws(TypedDataError) -> Bytes32 {
        switch kind {
        case .structure(let name):
            return try hashStruct(name, value, path: path, typeHashes: &typeHashes)
        case .array(let inner, let count):
            guard let items = value.arrayValue else { throw TypedDataError("expected an array, got \(value.kind)", path: path) }
            if let count, items.count != count { throw TypedDataError("expected \(count) elements, got \(items.count)", path: path) }
            var hasher = Keccak256()
            for (i, item) in items.enumerated() {
                hasher.update(try encodeField(inner, item, path: path + ["[\(i)]"], typeHashes: &typeHashes))
            }
            return hasher.finalize()
        case .atomic(let type):
            let abi: ABIValue
            do { abi = try ABIValue(json: value, as: type) } catch { throw TypedDataError(error.reason, path: path) }
            switch abi {
            case .bytes(let b): return Keccak256.hash(b)
            case .string(let s): return Keccak256.hash(utf8: s)
            default:
                do { return Bytes32(try ABI.encode(abi, as: type)) } catch { throw TypedDataError(error.reason, path: path) }
            }
        }
    }

    public var domainSeparator: Bytes32 {
        get throws(TypedDataError) { try hashStruct("EIP712Domain", domain, path: ["domain"]) }
    }

    /// The digest a wallet signs: `keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message))`,
    /// without the message hash when the primary type is the domain itself.
    public var digest: Bytes32 {
        get throws(TypedDataError) {
            var hasher = Keccak256()
            hasher.update([0x19, 0x01])
            hasher.update(try domainSeparator)
            if primaryType != "EIP712Domain" {
                hasher.update(try hashStruct(primaryType, message, path: ["message"]))
            }
            return hasher.finalize()
        }
    }
}

extension ABIType {
    var isTupleOrArray: Bool {
        switch self {
        case .tuple, .array, .fixedArray: true
        default: false
        }
    }
}

/// EIP-191 version 0x45 ("personal_sign"): keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message).
public enum PersonalMessage {
    public static func hash(_ message: [UInt8]) -> Bytes32 {
        keccak256(Array("\u{19}Ethereum Signed Message:\n\(message.count)".utf8), message)
    }

    public static func hash(_ digest: Bytes32) -> Bytes32 { hash(digest.bytes) }
}
