/// A function from a human-readable signature or a JSON ABI: name, named inputs and outputs.
public struct ABIFunction: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var inputs: [ABIParameter]
    public var outputs: [ABIParameter]
    public var stateMutability: String

    public init(name: String, inputs: [ABIParameter], outputs: [ABIParameter] = [], stateMutability: String = "nonpayable") {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.stateMutability = stateMutability
    }

    /// Parses `transfer(address to, uint256 amount)`, with or without `function`, modifiers,
    /// data locations and `returns (…)`; tuples as `(…)` or `tuple(…)`.
    public init(parsing signature: String) throws(ABIError) {
        var parser = SignatureParser(signature)
        self = try parser.parseFunction()
    }

    /// `transfer(address,uint256)`
    public var signature: String { name + "(" + inputs.map(\.type.canonical).joined(separator: ",") + ")" }

    /// The first four bytes of keccak256(signature).
    public var selector: [UInt8] { Array(Keccak256.hash(utf8: signature).bytes[0..<4]) }

    /// `transfer(address to, uint256 amount)`, for people.
    public var description: String {
        name + "(" + inputs.map { $0.name.isEmpty ? $0.type.canonical : "\($0.type.canonical) \($0.name)" }.joined(separator: ", ") + ")"
    }

    /// selector ‖ abi.encode(arguments)
    public func encodeCall(_ arguments: [ABIValue]) throws(ABIError) -> [UInt8] {
        selector + (try ABI.encode(arguments, as: inputs.map(\.type)))
    }

    /// Decodes calldata for this function: the selector must match, the arguments strictly.
    public func decodeCall(_ calldata: [UInt8]) throws(ABIError) -> [ABIValue] {
        guard calldata.count >= 4 else { throw ABIError("calldata is shorter than a selector", offset: 0) }
        guard Array(calldata[0..<4]) == selector else {
            throw ABIError("selector \(Hex.encode(calldata[0..<4])) is not \(signature) (\(Hex.encode(selector)))", offset: 0)
        }
        do {
            return try ABI.decode(Array(calldata[4...]), as: inputs.map(\.type))
        } catch {
            var shifted = error
            shifted.offset = error.offset.map { $0 + 4 }
            if let i = error.path.first.flatMap({ Int($0.dropFirst(4)) }), inputs.indices.contains(i), !inputs[i].name.isEmpty {
                shifted.path[0] = inputs[i].name
            }
            throw shifted
        }
    }
}

/// A contract interface: the functions of a Solidity JSON ABI, or of a list of signatures.
public struct ContractInterface: Sendable {
    public private(set) var functions: [ABIFunction]

    /// A JSON ABI array, or a compiler artifact (Foundry, Hardhat) with an `abi` field.
    public init(jsonABI text: String) throws(ABIError) {
        let json: JSONValue
        do { json = try JSONValue(parsing: text) } catch { throw ABIError("\(error)") }
        let entries: [JSONValue]
        if let array = json.arrayValue {
            entries = array
        } else if let array = json["abi"]?.arrayValue {
            entries = array
        } else {
            throw ABIError("a JSON ABI is an array, or an object with an \"abi\" array")
        }
        var functions: [ABIFunction] = []
        for (i, entry) in entries.enumerated() {
            guard let object = entry.objectValue else { throw ABIError("entry \(i) is not an object") }
            guard object["type"]?.stringValue ?? "function" == "function" else { continue }
            guard let name = object["name"]?.stringValue else { throw ABIError("function entry \(i) has no name") }
            guard SignatureParser.isIdentifier(name) else { throw ABIError("function entry \(i): \"\(DisplayText.escaped(name))\" is not a Solidity identifier") }
            let inputs = try Self.parameters(object["inputs"], in: "\(name) inputs")
            let outputs = try Self.parameters(object["outputs"], in: "\(name) outputs")
            let mutability = object["stateMutability"]?.stringValue ?? "nonpayable"
            functions.append(ABIFunction(name: name, inputs: inputs, outputs: outputs, stateMutability: mutability))
        }
        self.functions = functions
    }

    private static func parameters(_ json: JSONValue?, in context: String, depth: Int = 0) throws(ABIError) -> [ABIParameter] {
        guard let json else { return [] }
        guard depth < SignatureParser.maximumDepth else { throw ABIError("\(context): nested too deeply") }
        guard let list = json.arrayValue else { throw ABIError("\(context) must be an array") }
        var out: [ABIParameter] = []
        for (i, item) in list.enumerated() {
            guard let typeText = item["type"]?.stringValue else { throw ABIError("\(context) [\(i)] has no type") }
            let name = item["name"]?.stringValue ?? ""
            guard name.isEmpty || SignatureParser.isIdentifier(name) else { throw ABIError("\(context) [\(i)]: \"\(DisplayText.escaped(name))\" is not a Solidity identifier") }
            var type: ABIType
            if typeText.hasPrefix("tuple") {
                let components = try parameters(item["components"], in: "\(context) \(name)", depth: depth + 1)
                guard !components.isEmpty else { throw ABIError("\(context) \(name): a tuple needs components") }
                // The array suffixes after "tuple" apply to the tuple of components.
                type = try ABIType(parsing: "(uint8)" + typeText.dropFirst(5))
                type = type.replacingInnermostElement(with: .tuple(components))
                guard type.headSizeIsBounded else { throw ABIError("\(context) \(name): \(type.canonical) would take more than 4 GiB of calldata") }
            } else {
                type = try ABIType(parsing: typeText)
            }
            out.append(ABIParameter(name, type))
        }
        return out
    }

    /// The functions whose selector is the first four bytes of `calldata`.
    public func functions(forSelector selector: [UInt8]) -> [ABIFunction] {
        functions.filter { $0.selector == selector }
    }
}

extension ABIType {
    /// `T[2][]` with T replaced: used to attach JSON ABI components to `tuple[2][]`.
    func replacingInnermostElement(with element: ABIType) -> ABIType {
        switch self {
        case .array(let t): .array(t.replacingInnermostElement(with: element))
        case .fixedArray(let t, let n): .fixedArray(t.replacingInnermostElement(with: element), n)
        default: element
        }
    }
}
