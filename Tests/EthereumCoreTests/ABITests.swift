import EthereumCore
import Testing
import TestSupport

@Suite("ABI encoding and strict decoding match eth-abi")
struct ABIDifferentialTests {
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func randomNestedTypes() throws {
        let cases = try Oracle.cases("abi", count: 1000)
        #expect(cases.count == 1000)
        var mutantsAccepted = 0
        for c in cases {
            let types = try c["types"]!.arrayValue!.map { try ABIType(parsing: $0.stringValue!) }
            let values = try zip(c["values"]!.arrayValue!, types).map { try ABIValue(json: $0, as: $1) }
            let context = "types \(types.map(\.canonical)), seed \(Oracle.seed)"
            // The same types as a parameter list, in parentheses or bare (where a lone tuple
            // would read as the list itself).
            let written = c["types"]!.arrayValue!.map { $0.stringValue! }
            #expect(try ABIParameter.list(parsing: "(" + written.joined(separator: ", ") + ")").map(\.type) == types, "\(context)")
            if written.count != 1 || !written[0].hasPrefix("(") {
                #expect(try ABIParameter.list(parsing: written.joined(separator: ",")).map(\.type) == types, "\(context)")
            }
            let encoded = try c.bytes("encoded")
            #expect(try ABI.encode(values, as: types) == encoded, "\(context)")
            #expect(try ABI.decode(encoded, as: types) == values, "\(context)")

            // Strictness: whatever we accept from a corrupted encoding, eth-abi accepts too,
            // and it is the canonical encoding of what we decoded.
            let mutant = c["mutant"]!
            let data = try mutant.bytes("data")
            if let decoded = try? ABI.decode(data, as: types) {
                mutantsAccepted += 1
                #expect(mutant["ethAbiAccepts"] == .bool(true), "\(context)")
                #expect(try ABI.encode(decoded, as: types) == data, "\(context)")
                #expect(try mutant.bytes("reencoded") == data, "\(context)")
            }

            let packedTypes = try c["packedTypes"]!.arrayValue!.map { try ABIType(parsing: $0.stringValue!) }
            let packedValues = try zip(c["packedValues"]!.arrayValue!, packedTypes).map { try ABIValue(json: $0, as: $1) }
            #expect(try ABI.encodePacked(packedValues, as: packedTypes) == (try c.bytes("packed")), "packed \(packedTypes.map(\.canonical)), seed \(Oracle.seed)")
        }
        // Most corruptions must be caught; a bit flip inside a bytes payload is still valid.
        #expect(mutantsAccepted < 700)
    }
}

@Suite("ABI decoding rejects malformed data with the place and the reason")
struct ABIStrictDecodingTests {
    static func word(_ hex: String) -> [UInt8] {
        let b = try! Hex.decode(hex)
        return [UInt8](repeating: 0, count: 32 - b.count) + b
    }

    func rejects(_ data: [UInt8], _ types: [String], containing text: String, at offset: Int? = nil) throws {
        let parsed = try types.map { try ABIType(parsing: $0) }
        do throws(ABIError) {
            _ = try ABI.decode(data, as: parsed)
            Issue.record("accepted \(data.hex) as \(types)")
        } catch {
            #expect(error.reason.contains(text), "\(error)")
            if let offset { #expect(error.offset == offset, "\(error)") }
        }
    }

    @Test func dirtyHighBits() throws {
        try rejects(Self.word("0100"), ["uint8"], containing: "dirty high bits", at: 0)
        try rejects(Self.word("01" + String(repeating: "00", count: 20)), ["address"], containing: "dirty high bits")
        try rejects(Self.word("02"), ["bool"], containing: "0 or 1")
        try rejects(Self.word("80"), ["int8"], containing: "sign extension")    // 128 is not an int8
        try rejects(Self.word("ff7f").map { $0 } , ["int8"], containing: "sign extension")
        try rejects(try Hex.decode("0xaabb") + [UInt8](repeating: 0, count: 29) + [1], ["bytes2"], containing: "dirty padding")
        #expect(try ABI.decode(Self.word("ff") .enumerated().map { $0.offset < 31 ? 0xff : $0.element }, as: .int(8)) == .int(-1))
    }

    @Test func offsetsAndLengths() throws {
        let good = try ABI.encode([.bytes([1, 2, 3])], as: [.bytes])
        #expect(good == Self.word("20") + Self.word("03") + [1, 2, 3] + [UInt8](repeating: 0, count: 29))
        try rejects(Self.word("40") + Array(good[32...]), ["bytes"], containing: "gap")
        try rejects(Self.word("00") + Array(good[32...]), ["bytes"], containing: "overlap")
        try rejects(Self.word("1000") + Array(good[32...]), ["bytes"], containing: "larger than the data")
        try rejects(Self.word("20") + Self.word("40") + [1, 2, 3] + [UInt8](repeating: 0, count: 29), ["bytes"], containing: "past the end")
        try rejects(good + [0], ["bytes"], containing: "unexpected bytes after")
        try rejects(Array(good.dropLast()), ["bytes"], containing: "past the end")
        try rejects(Self.word("20") + Self.word("03") + [1, 2, 3, 9] + [UInt8](repeating: 0, count: 28), ["bytes"], containing: "dirty padding")
        try rejects(Self.word("20") + Self.word("ffffffffffff"), ["uint256[]"], containing: "larger than the data")
        try rejects(Self.word("20") + Self.word("05") + Self.word("01"), ["uint256[]"], containing: "needs more data")
        try rejects(Self.word("20") + Self.word("02") + [0xc3, 0x28] + [UInt8](repeating: 0, count: 30), ["string"], containing: "UTF-8")
        try rejects([1, 2, 3], ["uint256"], containing: "head")
    }

    @Test func pathNamesTheValue() throws {
        let type = try ABIType(parsing: "(address to, uint8[] amounts)")
        let value = ABIValue.tuple([.address(.zero), .array([.uint(1), .uint(2)])])
        var data = try ABI.encode(value, as: type)
        data[data.count - 32] = 1   // amounts[1] = 2 + 2^248
        do throws(ABIError) {
            _ = try ABI.decode(data, as: type)
            Issue.record("accepted dirty uint8")
        } catch {
            #expect(error.path == ["arg 0", ".amounts", "[1]"])
            #expect(error.offset == data.count - 32)
        }
    }

    @Test func encodingChecksValues() throws {
        #expect(throws: ABIError.self) { try ABI.encode(.uint(256), as: .uint(8)) }
        #expect(throws: ABIError.self) { try ABI.encode(.int(Int256(-129)), as: .int(8)) }
        #expect(throws: ABIError.self) { try ABI.encode(.fixedBytes([1]), as: .fixedBytes(2)) }
        #expect(throws: ABIError.self) { try ABI.encode(.array([.uint(1)]), as: .fixedArray(.uint256, 2)) }
        #expect(throws: ABIError.self) { try ABI.encode(.array([.uint(1), .uint(2), .uint(3)]), as: .fixedArray(.uint256, 2)) }
        #expect(throws: ABIError.self) { try ABI.encode(.tuple([.uint(1), .uint(2)]), as: try ABIType(parsing: "(uint8)")) }
        #expect(throws: ABIError.self) { try ABI.encode([.uint(1), .uint(2)], as: [.uint256]) }
        #expect(throws: ABIError.self) { try ABI.encode(.string("x"), as: .bytes) }
        #expect(throws: ABIError.self) { try ABI.encodePacked([.tuple([.uint(1)])], as: [try ABIType(parsing: "(uint8)")]) }
        #expect(throws: ABIError.self) { try ABI.encodePacked([.array([.bytes([])])], as: [.array(.bytes)]) }
    }
}

@Suite("Signatures and JSON ABIs parse into functions with selectors")
struct ABIFunctionTests {
    @Test func humanReadableSignatures() throws {
        let transfer = try ABIFunction(parsing: "transfer(address to, uint256 amount)")
        #expect(transfer.signature == "transfer(address,uint256)")
        #expect(transfer.selector == [0xa9, 0x05, 0x9c, 0xbb])
        #expect(transfer.inputs.map(\.name) == ["to", "amount"])

        let f = try ABIFunction(parsing: "function execute((address target, uint256 value, bytes callData)[] calldata executions, uint indexed) external payable returns (bytes[] memory results)")
        #expect(f.signature == "execute((address,uint256,bytes)[],uint256)")
        #expect(f.outputs.map(\.type) == [.array(.bytes)])
        #expect(f.stateMutability == "payable")
        #expect(try ABIFunction(parsing: "f(tuple(uint8 a, bool b)[2] x)").signature == "f((uint8,bool)[2])")
        #expect(try ABIFunction(parsing: "enableSessions((address,bytes,bytes32,(address,bytes)[],((bytes32,string[])[],(address,bytes)[]),(bytes4,address,(address,bytes)[])[],bool)[])").selector == [0x21, 0x71, 0x24, 0x07])

        #expect(try ABIFunction(parsing: "f(address payable to, bytes memory data) public").inputs.map(\.name) == ["to", "data"])
        // Only Solidity's types, written once (a leading zero would be another spelling of a
        // type, and so of a selector), and nothing after the signature.
        for bad in ["transfer(address to", "f(uint7)", "f(uint12)", "f(int264)", "f(uint08)", "f(bytes33)", "f(bytes08)", "f(uint256[0])", "f(uint8[1048577])",
                    "f(())", "f(tuple)", "f(foo)", "(uint256)", "1f(uint256)", "f(uint256) returns", "f(uint256) view junk", "f(uint256) )"] {
            #expect(throws: ABIError.self, "\(bad)") { try ABIFunction(parsing: bad) }
        }
        // The error quotes the text around the fault, not a client's whole megabyte.
        for (bad, at, quoted) in [("f" + String(repeating: "(", count: 100_000) + "uint256", "at character 34 of \"f((((", "((((…\""),
                                  ("f(" + String(repeating: "uint256,", count: 20_000) + "foo)", "at character 160005 of \"…", "uint256,foo)\"")] {
            do {
                _ = try ABIFunction(parsing: bad)
                Issue.record("taken")
            } catch {
                let message = "\(error)"
                #expect(message.count < 200 && message.contains(at) && message.hasSuffix(quoted), "\(message)")
            }
        }
    }

    /// Parameter lists as `cast` takes them, with or without parentheses; an error quotes what
    /// was written, not a signature made around it.
    @Test func parameterLists() throws {
        let cases: [(String, [String])] = [
            ("", []), ("()", []), (" ( ) ", []),
            ("uint256,address", ["uint256", "address"]),
            ("(uint256 amount, address to)", ["uint256", "address"]),
            ("(uint8,bool)", ["uint8", "bool"]),
            ("(uint8,bool)[]", ["(uint8,bool)[]"]),
            ("(uint8,bool), address", ["(uint8,bool)", "address"]),
            ("((uint8,bool),address)", ["(uint8,bool)", "address"]),
            ("tuple(uint8,bool) x", ["(uint8,bool)"]),
        ]
        for (text, types) in cases {
            #expect(try ABIParameter.list(parsing: text).map(\.type.canonical) == types, "\(text)")
        }
        #expect(try ABIParameter.list(parsing: "(uint256 amount, address to)").map(\.name) == ["amount", "to"])
        for (bad, message) in [("uint256,addres", #"unknown type "addres" at character 14 of "uint256,addres""#),
                               ("(uint256,addres)", #"unknown type "addres" at character 15 of "(uint256,addres)""#),
                               ("uint256,", #"expected a type at character 8 of "uint256,""#),
                               ("(uint256", #"expected ')' at character 8 of "(uint256""#),
                               ("(uint256))", #"unexpected text at character 9 of "(uint256))""#)] {
            #expect(throws: ABIError(message), "\(bad)") { try ABIParameter.list(parsing: bad) }
        }
    }

    /// A static type so large that its size overflows (a crash of the agent, from one session
    /// request) or goes beyond any calldata is refused where it is read; one just within is taken.
    @Test func staticTypesBeyondAnyCalldataAreRefused() throws {
        #expect(try ABIType(parsing: "uint256[1048576][128]").headSize == ABIType.maximumHeadSize)
        #expect(try ABIType(parsing: "(uint256[1048576][64],uint256[1048576][64])").headSize == ABIType.maximumHeadSize)
        for bad in ["uint256[1048576][1048576][1048576]", "uint256[1048576][129]", "(uint256[1048576][128],bool)", "((uint256[1048576][64],uint256[1048576][64])[2],bytes)"] {
            #expect(throws: ABIError.self, "\(bad)") { try ABIType(parsing: bad) }
            #expect(throws: ABIError.self, "\(bad)") { try ABIFunction(parsing: "f(\(bad) x)") }
        }
        // Large only once its components are in: 2^20 tuples of 2^20 words.
        let huge = #"[{"type":"function","name":"f","inputs":[{"name":"x","type":"tuple[1048576]","components":[{"name":"a","type":"uint256[1048576]"}]}]}]"#
        #expect(throws: ABIError.self) { try ContractInterface(jsonABI: huge) }
        // Tuples in tuples as deep as a signature may nest them, and no deeper.
        func nested(_ depth: Int) -> String {
            (0..<depth).reduce(#"{"name":"a","type":"uint8"}"#) { inner, _ in #"{"name":"t","type":"tuple","components":[\#(inner)]}"# }
        }
        #expect(try ContractInterface(jsonABI: #"[{"type":"function","name":"f","inputs":[\#(nested(31))]}]"#).functions.count == 1)
        #expect(throws: ABIError("f inputs t t t t t t t t t t t t t t t t t t t t t t t t t t t t t t t t: nested too deeply")) {
            try ContractInterface(jsonABI: #"[{"type":"function","name":"f","inputs":[\#(nested(32))]}]"#)
        }
        // A dynamic type takes one word in the head: a list of the largest static type is taken.
        #expect(try ABIType(parsing: "uint256[1048576][128][]").headSize == 32)
    }

    @Test func jsonABIWithTupleComponents() throws {
        let abi = """
        {"abi": [
          {"type": "constructor", "inputs": []},
          {"type": "event", "name": "Transfer", "inputs": []},
          {"type": "function", "name": "submit", "stateMutability": "nonpayable", "outputs": [],
           "inputs": [{"name": "orders", "type": "tuple[2][]", "components": [
               {"name": "maker", "type": "address"}, {"name": "amounts", "type": "uint128[]"}]},
             {"name": "memo", "type": "string"}]}
        ]}
        """
        let contract = try ContractInterface(jsonABI: abi)
        #expect(contract.functions.count == 1)
        let submit = contract.functions[0]
        #expect(submit.signature == "submit((address,uint128[])[2][],string)")

        let order = ABIValue.tuple([.address(try Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")), .array([.uint(7)])])
        let calldata = try submit.encodeCall([.array([.array([order, order])]), .string("hi")])
        #expect(contract.functions(forSelector: Array(calldata[0..<4])).map(\.name) == ["submit"])
        let decoded = try submit.decodeCall(calldata)
        #expect(decoded == [.array([.array([order, order])]), .string("hi")])
        #expect(decoded[0].json(as: submit.inputs[0].type).serialized == #"[[{"maker":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","amounts":["7"]},{"maker":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","amounts":["7"]}]]"#)

        #expect(throws: ABIError.self) { try ContractInterface(jsonABI: #"{"functions": []}"#) }
        #expect(throws: ABIError.self) { try ContractInterface(jsonABI: #"[{"type":"function","name":"f","inputs":[{"name":"x","type":"tuple"}]}]"#) }
    }

    @Test func calldataErrorsNameTheArgument() throws {
        let transfer = try ABIFunction(parsing: "transfer(address to, uint256 amount)")
        var calldata = try transfer.encodeCall([.address(.zero), .uint(5)])
        calldata[4] = 1
        do throws(ABIError) {
            _ = try transfer.decodeCall(calldata)
            Issue.record("accepted a dirty address")
        } catch {
            #expect(error.path.first == "to")
            #expect(error.offset == 4)
        }
        #expect(throws: ABIError.self) { try transfer.decodeCall([0xde, 0xad, 0xbe, 0xef]) }
        // Another function's call with the same argument types is not read as this one.
        let approve = try ABIFunction(parsing: "approve(address spender, uint256 amount)").encodeCall([.address(.zero), .uint(5)])
        #expect(throws: ABIError("selector 0x095ea7b3 is not transfer(address,uint256) (0xa9059cbb)", offset: 0)) { try transfer.decodeCall(approve) }
    }

    @Test func textArguments() throws {
        let type = try ABIType(parsing: "(uint256,address[],string,bytes2,int8)")
        let value = try ABIValue(text: #"(0x10, [0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed], "a, b", 0xabcd, -3)"#, as: type)
        #expect(value.text == #"(16, [0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed], "a, b", 0xabcd, -3)"#)
        #expect(try ABIValue(text: value.text, as: type) == value)
        #expect(throws: ABIError.self) { try ABIValue(text: "(1, [], x, 0xab, 0)", as: type) }
        #expect(throws: ABIError.self) { try ABIValue(text: "300", as: .uint(8)) }
    }

    /// JSON values (typed data, `--args-json`): exactly the type, nothing dropped or guessed.
    @Test func jsonArgumentsMatchTheirTypeExactly() throws {
        func rejects(_ json: String, _ type: String, _ text: String) {
            do {
                _ = try ABIValue(json: try JSONValue(parsing: json), as: try ABIType(parsing: type))
                Issue.record("\(json) taken as \(type)")
            } catch {
                #expect("\(error)".contains(text), "\(json) as \(type): \(error)")
            }
        }
        rejects("-129", "int8", "does not fit in int8")
        rejects("[1,2,3]", "uint8[2]", "expected 2 elements, got 3")
        rejects("[1]", "uint8[2]", "expected 2 elements, got 1")
        rejects("[1,2,3]", "(uint8,uint8)", "expected 2 components, got 3")
        rejects(#"{"a":1,"b":2}"#, "(uint8 a)", #"unknown component "b""#)
        rejects(#"{"":1}"#, "(uint8)", "missing component #0")
        rejects(#""abcd""#, "bytes", "expected a 0x hex string")
        let named = try ABIType(parsing: "(uint8 a, bool b)"), unnamed = try ABIType(parsing: "(uint8, bool)")
        let value = try ABIValue(json: try JSONValue(parsing: #"{"a":1,"b":true}"#), as: named)
        #expect(value.json(as: named).serialized == #"{"a":"1","b":true}"#)
        #expect(value.json(as: unnamed).serialized == #"["1",true]"#)
    }
}

@Suite("ABI types and data no decoder input can trap on")
struct ABIRobustnessTests {
    /// Whatever the type and the data, decoding answers or throws; a word that claims a huge
    /// length or offset is among the data often.
    @Test func randomTypesAndDataAreDecodedOrRefused() {
        var random = SplitMix64(seed: Oracle.seed)
        var parsed = 0
        for _ in 0..<3000 {
            guard let type = try? ABIType(parsing: "(" + random.abiType() + ")") else { continue }
            parsed += 1
            var data: [UInt8] = []
            for _ in 0..<Int.random(in: 0...40, using: &random) {
                var word = [UInt8](repeating: 0, count: 32)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: word[31] = UInt8.random(in: 0...255, using: &random)
                case 1: word[28...31] = [0x7f, 0xff, 0xff, 0xff]
                case 2: word = (0..<32).map { _ in 0xff }
                default: word[30] = UInt8.random(in: 0...3, using: &random); word[31] = 0x20
                }
                data += word
            }
            data += (0..<Int.random(in: 0...31, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = try? ABI.decode(data, as: type)
        }
        #expect(parsed > 1000, "the generator makes mostly types the parser refuses (seed \(Oracle.seed))")
    }
}
