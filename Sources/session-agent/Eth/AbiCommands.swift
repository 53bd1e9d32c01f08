import ArgumentParser
import EthereumCore

/// A function signature, or a bare parameter list: `(uint256,address)`, or without the
/// parentheses, `uint256,address`, as `cast` and ethabi take types.
func parseParameters(_ text: String) throws -> (name: String?, parameters: [ABIParameter]) {
    let trimmed = text.drop { $0.isWhitespace }
    if trimmed.hasPrefix("(") || !trimmed.contains("(") {
        return (nil, try ABIParameter.list(parsing: text))
    }
    let f = try ABIFunction(parsing: text)
    return (f.name, f.inputs)
}

/// Decoded values, one per line as `name: value`, and as a JSON object (or array when unnamed).
func renderValues(_ values: [ABIValue], _ parameters: [ABIParameter]) -> (text: String, json: JSONValue) {
    let lines = zip(parameters, values).enumerated().map { i, pair in
        let (p, v) = pair
        return "\(p.name.isEmpty ? "[\(i)]" : p.name) (\(p.type.canonical)): \(v.text)"
    }
    let named = parameters.allSatisfy { !$0.name.isEmpty } && Set(parameters.map(\.name)).count == parameters.count
    let json: JSONValue
    if named {
        var o = JSONObject()
        for (p, v) in zip(parameters, values) { o[p.name] = v.json(as: p.type) }
        json = .object(o)
    } else {
        json = .array(zip(parameters, values).map { $1.json(as: $0.type) })
    }
    return (lines.joined(separator: "\n"), json)
}

struct AbiEncode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abi-encode",
        abstract: "ABI-encode arguments (without a selector).",
        discussion: """
            Arguments are written as in cast: integers in decimal or 0x hex, true/false, 0x hex \
            bytes, [a, b] for arrays and (a, b) for tuples. A negative integer as an argument of \
            its own goes after --: abi-encode 'f(int8)' -- -1.
            Example: session-agent eth abi-encode 'transfer(address,uint256)' 0x…beef 5000000
            """)

    @Argument(help: "A signature or a parameter list: 'f(uint256,address)', '(uint256,address)' or 'uint256,address'.") var signature: String
    @Argument(help: "One argument per parameter.") var arguments: [String] = []
    @Flag(help: "Use abi.encodePacked rules.") var packed = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let (_, parameters) = try parseParameters(signature)
            let values = try parseArguments(arguments, parameters)
            let types = parameters.map(\.type)
            let encoded = packed ? try ABI.encodePacked(values, as: types) : try ABI.encode(values, as: types)
            return CommandOutput(text: encoded.hex, json: .object(JSONObject(["encoded": .string(encoded.hex)])))
        }
    }
}

/// One value per parameter, each written as cast writes it.
func parseArguments(_ arguments: [String], _ parameters: [ABIParameter]) throws -> [ABIValue] {
    guard arguments.count == parameters.count else {
        throw CommandFailure(message: "expected \(parameters.count) argument\(parameters.count == 1 ? "" : "s"), got \(arguments.count)")
    }
    return try zip(arguments, parameters).enumerated().map { i, pair in
        do { return try ABIValue(text: pair.0, as: pair.1.type) } catch {
            throw CommandFailure(message: "argument \(i + 1) (\(pair.1.type.canonical)): \(error)")
        }
    }
}

struct Calldata: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Calldata for a function call: its selector, then the encoded arguments (as cast calldata).",
        discussion: """
            Example: session-agent eth execute 0x1c7D…7238 0 "$(session-agent eth calldata 'transfer(address,uint256)' 0x…beef 5000000)"
            """)

    @Argument(help: "The function's signature: 'transfer(address to, uint256 amount)'.") var signature: String
    @Argument(help: "One argument per parameter, as for abi-encode.") var arguments: [String] = []
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let function = try ABIFunction(parsing: signature)
            let calldata = try function.encodeCall(try parseArguments(arguments, function.inputs))
            return CommandOutput(text: calldata.hex, json: .object(JSONObject(["calldata": .string(calldata.hex), "function": .string(function.signature)])))
        }
    }
}

struct AbiDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abi-decode",
        abstract: "Strictly decode ABI-encoded data (without a selector).")

    @Argument(help: "A signature or a parameter list: '(uint256 amount,address to)' or 'uint256,address'.") var signature: String
    @Argument(help: "0x-prefixed data.") var data: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let (_, parameters) = try parseParameters(signature)
            let values = try ABI.decode(try parseHex(data, what: "data"), as: parameters.map(\.type))
            let (text, json) = renderValues(values, parameters)
            return CommandOutput(text: text, json: json)
        }
    }
}

struct CalldataDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calldata-decode",
        abstract: "Decode calldata with a function signature or a JSON ABI file.")

    // Positional arguments as in cast: SIGNATURE CALLDATA, or only CALLDATA with --abi.
    @Argument(help: ArgumentHelp("A signature such as 'transfer(address to, uint256 amount)' (omit with --abi), then the 0x calldata.", valueName: "signature> <calldata"))
    var arguments: [String] = []
    @Option(help: "A Solidity JSON ABI (or a Foundry/Hardhat artifact) to find the function in.") var abi: String?
    @OptionGroup var output: OutputOptions

    var signature: String? { abi == nil ? arguments.first : nil }
    var calldata: String { arguments.last ?? "" }

    mutating func validate() throws {
        let expected = abi == nil ? 2 : 1
        guard arguments.count == expected else {
            throw ValidationError(abi == nil ? "give a signature and the calldata (or --abi FILE and the calldata)" : "with --abi, give only the calldata")
        }
    }

    func run() throws {
        try report(output) {
            let bytes = try parseHex(calldata, what: "calldata")
            guard bytes.count >= 4 else { throw CommandFailure(message: "calldata is shorter than a 4-byte selector") }
            let function: ABIFunction
            if let abi {
                let contract = try ContractInterface(jsonABI: String(decoding: try readInput(abi), as: UTF8.self))
                let matches = contract.functions(forSelector: Array(bytes[0..<4]))
                guard let first = matches.first else {
                    throw CommandFailure(message: "no function in \(abi) has selector \(Hex.encode(bytes[0..<4]))", reason: "not_found")
                }
                function = first
            } else {
                function = try ABIFunction(parsing: signature!)
            }
            let values = try function.decodeCall(bytes)
            let (text, args) = renderValues(values, function.inputs)
            return CommandOutput(
                text: "\(function.description)\nselector: \(Hex.encode(function.selector))\n\(text)",
                json: .object(JSONObject([
                    "function": .string(function.signature), "selector": .string(Hex.encode(function.selector)),
                    "arguments": args,
                ])))
        }
    }
}

struct Execute: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "ERC-7579 execute(bytes32,bytes) calldata for one call (the callData of a user operation).")

    @Argument(help: "The called contract.") var target: String
    @Argument(help: "The native value in wei.") var value: String = "0"
    @Argument(help: "The call's 0x calldata (empty for a plain transfer).") var calldata: String = "0x"
    @Flag(help: "Decode instead: the argument is execute calldata.") var decode = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            if decode {
                let call = try ExecuteCall(calldata: try parseHex(target, what: "calldata"))
                let lines = call.executions.map { "\($0.target.checksummed) value \($0.value) data \(Hex.encode($0.callData))" }
                return CommandOutput(text: "\(call.mode.callType) \(call.mode.execType)\n" + lines.joined(separator: "\n"), json: .object(JSONObject([
                    "callType": .string(call.mode.callType.description), "execType": .string(call.mode.execType.description),
                    "executions": .array(call.executions.map { .object(JSONObject(["target": .string($0.target.checksummed), "value": .string($0.value.description), "callData": .string(Hex.encode($0.callData))])) }),
                ])))
            }
            let amount: UInt256
            do { amount = try UInt256(parsing: value) } catch { throw CommandFailure(message: "value: \(error)") }
            let call = ExecuteCall.single(Execution(target: try parseAddress(target, what: "target"), value: amount, callData: try parseHex(calldata, what: "calldata")))
            return CommandOutput(text: Hex.encode(call.calldata), json: .object(JSONObject(["calldata": .string(Hex.encode(call.calldata))])))
        }
    }
}
