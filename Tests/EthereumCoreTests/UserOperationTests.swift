import EthereumCore
import Foundation
import Testing
import TestSupport

@Suite("ERC-4337 user operation hashes")
struct UserOperationTests {
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func v07AndV08AgainstIndependentHashing() throws {
        let cases = try Oracle.cases("userop", count: 1000)
        #expect(cases.count == 1000)
        for c in cases {
            let op = try UserOperation(json: c["userOperation"]!)
            let packed = try op.packed()
            let chainId = try UInt256(parsing: try c.string("chainId"))
            let context = "seed \(Oracle.seed), \(c["userOperation"]!.serialized.prefix(200))"
            #expect(packed.initCode == (try c.bytes("initCode")), "\(context)")
            #expect(packed.paymasterAndData == (try c.bytes("paymasterAndData")), "\(context)")
            #expect(packed.accountGasLimits == (try c.bytes32("accountGasLimits")), "\(context)")
            #expect(packed.gasFees == (try c.bytes32("gasFees")), "\(context)")
            #expect(packed.hashV07(entryPoint: try Address(try c.string("entryPointV07")), chainId: chainId) == (try c.bytes32("hashV07")), "\(context)")
            let delegate = try c["eip7702Delegate"]?.stringValue.map { try Address($0) }
            #expect(packed.hasEIP7702InitCode == (delegate != nil), "\(context)")
            #expect(try packed.hashV08(entryPoint: try Address(try c.string("entryPointV08")), chainId: chainId, eip7702Delegate: delegate) == (try c.bytes32("hashV08")), "\(context)")
            #expect(try UserOperation(json: op.json) == op)
            #expect(try PackedUserOperation.parse(json: packed.json) == packed)
        }
    }

    /// Fields of both forms in one operation: which gas limits were meant is not guessed, and
    /// the error says so rather than calling a field of the other form unknown.
    @Test func bothFormsAtOnceAreRefused() throws {
        var mixed = try #require(PackedUserOperation(sender: .zero, nonce: 0, initCode: [], callData: [], accountGasLimits: .zero, preVerificationGas: 0,
                                                     gasFees: .zero, paymasterAndData: [], signature: []).json.objectValue)
        mixed["callGasLimit"] = "0x10000"
        #expect(throws: UserOperationError("a field of the unpacked form, beside accountGasLimits and gasFees and initCode of the packed one: give either form, not both",
                                           field: "callGasLimit")) { try PackedUserOperation.parse(json: .object(mixed)) }
        mixed["callGasLimit"] = nil
        mixed["bogus"] = "1"
        #expect(throws: UserOperationError("unknown field", field: "bogus")) { try PackedUserOperation.parse(json: .object(mixed)) }
        mixed["bogus"] = nil
        mixed["paymasterAndDta"] = "0x"
        #expect(throws: UserOperationError("unknown field (did you mean `paymasterAndData`?)", field: "paymasterAndDta")) { try PackedUserOperation.parse(json: .object(mixed)) }
    }

    /// userOpHashes that the deployed EntryPoint v0.7 computed for the vector records.
    @Test func v07DeployedVectors() throws {
        let records = Fixtures.sessionRecords
        #expect(records.count == 200)
        let entryPoint = EntryPointVersion.v07.canonicalAddress
        for record in records {
            let enable = record["enableUserOp"]!
            let op = try PackedUserOperation(json: enable["userOp"]!)
            let chainId = try UInt256(parsing: try enable.string("chainId"))
            #expect(op.hashV07(entryPoint: entryPoint, chainId: chainId) == (try enable.bytes32("userOpHash")), "record \(record["index"]!.serialized)")
        }
    }

    /// The v0.8 EntryPoint's `Eip7702Support`: an initCode of at least two bytes whose first
    /// twenty, zero-padded, are 0x7702 is an EIP-7702 authorisation.
    @Test func v08EIP7702InitCodeNeedsTheDelegate() throws {
        let sender = try Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
        let ep = EntryPointVersion.v08.canonicalAddress
        let delegate = try Address("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")
        for factory in ["0x7702", "0X7702", "0x7702000000000000000000000000000000000000"] {
            let op = try UserOperation(json: .object(JSONObject(["sender": .string(sender.checksummed), "nonce": "1", "factory": .string(factory), "factoryData": "0x0102"])))
            let packed = try op.packed()
            #expect(packed.initCode == [0x77, 0x02] + [UInt8](repeating: 0, count: 18) + [1, 2])
            #expect(packed.hasEIP7702InitCode)
            #expect(throws: UserOperationError.self) { try packed.hashV08(entryPoint: ep, chainId: 1) }
            // The EntryPoint hashes delegate ‖ initCode[20:] in place of the initCode; v0.7 knows no marker.
            var substituted = packed
            substituted.initCode = delegate.bytes + [1, 2]
            #expect(try packed.hashV08(entryPoint: ep, chainId: 1, eip7702Delegate: delegate) == (try substituted.hashV08(entryPoint: ep, chainId: 1)))
            #expect(try packed.hash(version: .v07, entryPoint: ep, chainId: 1) == packed.hashV07(entryPoint: ep, chainId: 1))
        }
        var packed = try UserOperation(sender: sender, nonce: 1).packed()
        for (initCode, marked) in [([0x77, 0x02], true), ([0x77], false), ([0x77, 0x02, 0x00, 0x01], false), ([0x77, 0x02] + [UInt8](repeating: 0, count: 17) + [1], false),
                                   ([0x77, 0x03], false), ([0xef, 0x01, 0x00] + [UInt8](repeating: 0, count: 17), false)] as [([UInt8], Bool)] {
            packed.initCode = initCode
            #expect(packed.hasEIP7702InitCode == marked, "\(initCode.hex)")
        }
        // Twenty bytes or fewer: keccak256(delegate) alone.
        packed.initCode = [0x77, 0x02]
        var delegateOnly = packed
        delegateOnly.initCode = delegate.bytes
        #expect(try packed.hashV08(entryPoint: ep, chainId: 1, eip7702Delegate: delegate) == (try delegateOnly.hashV08(entryPoint: ep, chainId: 1)))
    }

    @Test func malformedOperationsAreRejectedByField() throws {
        func rejects(_ json: String, field: String?) {
            do {
                _ = try UserOperation(json: try JSONValue(parsing: json)).packed()
                Issue.record("accepted \(json)")
            } catch let error as UserOperationError {
                #expect(error.field == field, "\(error)")
            } catch {
                Issue.record("\(error)")
            }
        }
        let sender = #""sender":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed""#
        rejects("{\(sender)}", field: "nonce")
        rejects(#"{"nonce":"0x0"}"#, field: "sender")
        rejects(#"{\#(sender),"nonce":"0x0","bogus":1}"#, field: "bogus")
        rejects(#"{\#(sender),"nonce":"0x0","callGasLimit":"0x100000000000000000000000000000000"}"#, field: "callGasLimit")
        rejects(#"{\#(sender),"nonce":"0x0","callData":"abcd"}"#, field: "callData")
        rejects(#"{\#(sender),"nonce":"-1"}"#, field: "nonce")
        rejects(#"{\#(sender),"nonce":"0x0","paymasterData":"0x01"}"#, field: "paymaster")
        rejects(#"{\#(sender),"nonce":"0x0","paymasterVerificationGasLimit":"1"}"#, field: "paymaster")
        rejects(#"{\#(sender),"nonce":"0x0","paymasterPostOpGasLimit":"1"}"#, field: "paymaster")
        rejects(#"{\#(sender),"nonce":"0x0","factoryData":"0x01"}"#, field: "factoryData")
        #expect(throws: UserOperationError.self) {
            try PackedUserOperation(json: try JSONValue(parsing: #"{\#(sender),"nonce":"0","initCode":"0x","callData":"0x","accountGasLimits":"0x00","preVerificationGas":"0","gasFees":"0x\#(String(repeating: "00", count: 32))","paymasterAndData":"0x","signature":"0x"}"#))
        }
    }
}

@Suite("ERC-7579 execute calldata")
struct ExecutionTests {
    static let usdc = try! Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
    static let beef = try! Address("0x000000000000000000000000000000000000bEEF")

    /// The spec's example (§11.2): transfer 5 USDC to 0xbeef as a single execution.
    @Test func singleExampleFromTheSpec() throws {
        let transfer = try ABIFunction(parsing: "transfer(address,uint256)").encodeCall([.address(Self.beef), .uint(5_000_000)])
        let call = ExecuteCall.single(Execution(target: Self.usdc, value: 0, callData: transfer))
        let expected = "0xe9ae5c53" + String(repeating: "0", count: 64) + String(repeating: "0", count: 62) + "40"
            + String(repeating: "0", count: 62) + "78" + "1c7d4b196cb0c7b01d743fbc6116a902379c7238" + String(repeating: "0", count: 64)
            + "a9059cbb" + String(repeating: "0", count: 60) + "beef" + String(repeating: "0", count: 58) + "4c4b40" + String(repeating: "0", count: 16)
        #expect(Hex.encode(call.calldata) == expected)
        #expect(try ExecuteCall(calldata: call.calldata) == call)
        #expect(call.executions[0].selector == [0xa9, 0x05, 0x9c, 0xbb])
    }

    /// Random single, batch and delegatecall executions, with random mode bytes: encoded as
    /// eth-abi encodes them, and decoded back from eth-abi's bytes.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func againstIndependentEncoding() throws {
        let cases = try Oracle.cases("execute", count: 500)
        #expect(cases.count == 500)
        for c in cases {
            let mode = ExecutionMode(word: try c.bytes32("mode"))
            let executions = try #require(c["executions"]?.arrayValue).map { e in
                Execution(target: try Address(try e.string("target")), value: try UInt256(parsing: try e.string("value")), callData: try e.bytes("callData"))
            }
            let calls: ExecuteCall.Calls = switch mode.callType {
            case .single: .single(executions[0])
            case .batch: .batch(executions)
            default: .delegateCall(target: executions[0].target, callData: executions[0].callData)
            }
            let call = ExecuteCall(mode: mode, calls: calls)
            let context = "seed \(Oracle.seed), \(c.serialized.prefix(300))"
            #expect(call.executionCalldata == (try c.bytes("executionCalldata")), "\(context)")
            #expect(call.calldata == (try c.bytes("calldata")), "\(context)")
            #expect(try ExecuteCall(calldata: try c.bytes("calldata")) == call, "\(context)")
        }
    }

    @Test func batchAndDelegateCallRoundTrip() throws {
        let batch = ExecuteCall.batch([
            Execution(target: Self.usdc, callData: [0xa9, 0x05, 0x9c, 0xbb, 1]),
            Execution(target: Self.beef, value: UInt256(10_000_000_000_000_000)),
        ], execType: .try)
        let decoded = try ExecuteCall(calldata: batch.calldata)
        #expect(decoded == batch)
        #expect(decoded.mode.execType == .try)
        #expect(decoded.executions[1].selector == [0xff, 0xff, 0xff, 0xff])
        // SmartSession keys a call by its first four bytes once it has four, arguments or not.
        #expect(Execution(target: Self.usdc, callData: [0x84, 0x56, 0xcb, 0x59]).selector == [0x84, 0x56, 0xcb, 0x59])
        #expect(Execution(target: Self.usdc, callData: [0x84, 0x56, 0xcb]).selector == [0xff, 0xff, 0xff, 0xff])
        let delegate = ExecuteCall(mode: ExecutionMode(callType: .delegateCall), calls: .delegateCall(target: Self.beef, callData: [9]))
        #expect(try ExecuteCall(calldata: delegate.calldata) == delegate)
    }

    @Test func strictDecoding() throws {
        let single = ExecuteCall.single(Execution(target: Self.beef)).calldata
        for callType: UInt8 in [0x07, 0xFE] {   // 0xFE: staticcall, which SmartSession does not check
            var unknownCallType = single
            unknownCallType[4] = callType
            #expect(throws: ExecutionError.self) { try ExecuteCall(calldata: unknownCallType) }
        }
        #expect(throws: ExecutionError.self) { try ExecuteCall(calldata: [0xe9, 0xae, 0x5c, 0x53]) }
        #expect(throws: ExecutionError.self) { try ExecuteCall(calldata: [0xde, 0xad, 0xbe, 0xef] + Array(single[4...])) }
        let short = [0xe9, 0xae, 0x5c, 0x53] + (try ABI.encode([.bytes32(.zero), .bytes(Array(repeating: 1, count: 51))], as: [.bytes32, .bytes]))
        #expect(throws: ExecutionError.self) { try ExecuteCall(calldata: short) }
        var batchMode = single
        batchMode[4] = 0x01   // a single's packed bytes are not an ABI-encoded batch
        #expect(throws: ExecutionError.self) { try ExecuteCall(calldata: batchMode) }
    }
}
