import EthereumCore
import Foundation
import Testing
import TestSupport

@Suite("session-agent eth: plain output, --json, and clear errors")
struct EthToolboxTests {
    let transferCalldata = "0xa9059cbb000000000000000000000000000000000000000000000000000000000000beef00000000000000000000000000000000000000000000000000000000004c4b40"

    func json(_ r: CommandResult) throws -> JSONValue {
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONValue(parsing: r.stdout)
    }

    @Test func keccakSigChecksum() throws {
        #expect(try Command.sessionAgent("eth", "keccak", "transfer(address,uint256)").stdout == "0xa9059cbb2ab09eb219583f4a59a5d0623ade346d962bcd4e46b11da047c9049b\n")
        #expect(try Command.sessionAgent("eth", "keccak", "0x").stdout == "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470\n")
        #expect(try Command.sessionAgent("eth", "keccak", "--text", "0x").stdout == Keccak256.hash(utf8: "0x").hex + "\n")
        #expect(try json(try Command.sessionAgent("eth", "sig", "transfer(address to, uint256 amount)", "--json"))["selector"] == "0xa9059cbb")
        #expect(try Command.sessionAgent("eth", "checksum", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").stdout == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n")

        let bad = try Command.sessionAgent("eth", "checksum", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")
        #expect(bad.status == 1)
        #expect(bad.stdout.isEmpty)
        #expect(bad.stderr.hasPrefix("session-agent: error: address: invalid address checksum"))
        let badJSON = try Command.sessionAgent("eth", "checksum", "0x12", "--json")
        #expect(badJSON.status == 1)
        #expect(try JSONValue(parsing: badJSON.stderr)["error"]?["reason"] == "bad_input")
    }

    @Test func abiEncodeDecodeAndCalldata() throws {
        let encoded = try Command.sessionAgent("eth", "abi-encode", "transfer(address,uint256)", "0x000000000000000000000000000000000000bEEF", "5000000")
        #expect(encoded.stdout == "0x" + transferCalldata.dropFirst(10) + "\n")
        let decoded = try json(try Command.sessionAgent("eth", "abi-decode", "(address to, uint256 amount)", "0x" + String(transferCalldata.dropFirst(10)), "--json"))
        #expect(decoded == .object(JSONObject(["to": "0x000000000000000000000000000000000000bEEF", "amount": "5000000"])))
        let bare = try Command.sessionAgent("eth", "abi-decode", "address,uint256", "0x" + String(transferCalldata.dropFirst(10)))
        #expect(bare.stdout == "[0] (address): 0x000000000000000000000000000000000000bEEF\n[1] (uint256): 5000000\n", "types without parentheses: \(bare.stderr)")
        let packed = try Command.sessionAgent("eth", "abi-encode", "--packed", "(uint8,address,string)", "1", "0x000000000000000000000000000000000000bEEF", "hi")
        #expect(packed.stdout == "0x01000000000000000000000000000000000000beef6869\n")

        let made = try Command.sessionAgent("eth", "calldata", "transfer(address to, uint256 amount)", "0x000000000000000000000000000000000000bEEF", "5000000")
        #expect(made.stdout == transferCalldata + "\n", "\(made.stderr)")
        let notAFunction = try Command.sessionAgent("eth", "calldata", "address,uint256", "0x000000000000000000000000000000000000bEEF", "1")
        #expect(notAFunction.status == 1 && notAFunction.stderr.contains("expected"), "\(notAFunction.stderr)")

        let call = try Command.sessionAgent("eth", "calldata-decode", "transfer(address to, uint256 amount)", transferCalldata)
        #expect(call.stdout.contains("to (address): 0x000000000000000000000000000000000000bEEF"))
        #expect(call.stdout.contains("amount (uint256): 5000000"))

        let abiFile = FileManager.default.temporaryDirectory.appendingPathComponent("erc20-\(UUID()).json")
        try #"[{"type":"function","name":"transfer","inputs":[{"name":"to","type":"address"},{"name":"value","type":"uint256"}],"outputs":[{"name":"","type":"bool"}]}]"#.write(to: abiFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: abiFile) }
        let viaABI = try json(try Command.sessionAgent("eth", "calldata-decode", "--abi", abiFile.path, transferCalldata, "--json"))
        #expect(viaABI["function"] == "transfer(address,uint256)")
        #expect(viaABI["arguments"]?["value"] == "5000000")

        let unknown = try Command.sessionAgent("eth", "calldata-decode", "--abi", abiFile.path, "0xdeadbeef")
        #expect(unknown.status == 1 && unknown.stderr.contains("no function"))
        let dirty = try Command.sessionAgent("eth", "calldata-decode", "transfer(address to, uint256 amount)", "0xa9059cbb01" + transferCalldata.dropFirst(12))
        #expect(dirty.status == 1 && dirty.stderr.contains("to") && dirty.stderr.contains("dirty high bits"))
        let wrongCount = try Command.sessionAgent("eth", "abi-encode", "f(uint8)", "1", "2")
        #expect(wrongCount.status == 1 && wrongCount.stderr.contains("expected 1 argument, got 2"))
        // A negative integer on its own goes after `--`, or it reads as an option.
        let negative = try Command.sessionAgent("eth", "abi-encode", "f(int8,int16)", "--", "-1", "-300")
        #expect(negative.stdout == "0x" + String(repeating: "f", count: 64) + String(repeating: "f", count: 61) + "ed4\n", "\(negative.stderr)")
        let overflow = try Command.sessionAgent("eth", "abi-encode", "f(uint8)", "256")
        #expect(overflow.status == 1 && overflow.stderr.contains("does not fit in uint8"))
    }

    /// `eth execute` builds the single-call execute calldata eth-abi builds, and decodes it back.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func executeAgainstIndependentEncoding() throws {
        let singles = try Oracle.cases("execute", count: 200).filter { (try? $0.string("mode")) == "0x" + String(repeating: "0", count: 64) }.prefix(10)
        #expect(singles.count == 10)
        for c in singles {
            let e = try #require(c["executions"]?.arrayValue?.first)
            let made = try Command.sessionAgent("eth", "execute", try e.string("target"), try e.string("value"), try e.string("callData"))
            #expect(made.stdout == (try c.string("calldata")) + "\n", "seed \(Oracle.seed): \(made.stderr)")
            let decoded = try json(try Command.sessionAgent("eth", "execute", "--decode", try c.string("calldata"), "--json"))
            let back = try #require(decoded["executions"]?.arrayValue?.first)
            let (target, expected) = (try back.string("target").lowercased(), try e.string("target"))
            #expect(decoded["callType"] == "single" && target == expected, "seed \(Oracle.seed): \(decoded.serialized)")
            #expect(back["value"] == e["value"] && back["callData"] == e["callData"], "seed \(Oracle.seed): \(decoded.serialized)")
        }
    }

    @Test func typedDataUserOpAndRecover() throws {
        let typed = try Command.sessionAgent("eth", "typed-data-hash", "-", "--json", stdin: """
            {"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"}],"M":[{"name":"x","type":"uint256"}]},
             "primaryType":"M","domain":{"name":"SmartSession","version":"1"},"message":{"x":"1"}}
            """)
        #expect(try json(typed)["domainSeparator"] == "0x057501e891776d1482927e5f094ae44049a4d893ba2d7b334dd7db8d38d3a0e1")
        #expect(try json(typed)["contentsType"] == "M(uint256 x)")
        let malformed = try Command.sessionAgent("eth", "typed-data-hash", stdin: "{\"types\": ")
        #expect(malformed.status == 1 && malformed.stderr.contains("invalid JSON"))

        let op = #"{"sender":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","nonce":"0x1","callData":"0x","callGasLimit":"0x10","verificationGasLimit":"0x20","preVerificationGas":"0x30","maxFeePerGas":"0x40","maxPriorityFeePerGas":"0x50","signature":"0x"}"#
        let packed = try UserOperation(json: try JSONValue(parsing: op)).packed()
        let v07 = EntryPointVersion.v07.canonicalAddress, v08 = EntryPointVersion.v08.canonicalAddress
        #expect(try Command.sessionAgent("eth", "userop-hash", "--entrypoint", v07.checksummed, "--chain-id", "11155111", stdin: op).stdout
            == packed.hashV07(entryPoint: v07, chainId: 11_155_111).hex + "\n")
        #expect(try Command.sessionAgent("eth", "userop-hash", "--entrypoint", v08.checksummed, "--chain-id", "1", stdin: op).stdout
            == (try packed.hashV08(entryPoint: v08, chainId: 1)).hex + "\n")
        let custom = try Command.sessionAgent("eth", "userop-hash", "--entrypoint", "0x000000000000000000000000000000000000bEEF", "--chain-id", "1", stdin: op)
        #expect(custom.status == 1 && custom.stderr.contains("hint: pass --entrypoint-version"))
        let unknownField = try Command.sessionAgent("eth", "userop-hash", "--entrypoint", v07.checksummed, "--chain-id", "1", stdin: #"{"sender":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","nonce":"0x1","gas":"0x1"}"#)
        #expect(unknownField.status == 1 && unknownField.stderr.contains("gas: unknown field"))

        let recovered = try json(try Command.sessionAgent(
            "eth", "recover", "0xe1a26d3f5e808a2c2ffdb7f16cc38e47a45b75dcad6c325d71ed54427b2c876576100955797b9fdd5761543a4f605ec10798576150634420b5ac001ea91d50cd1c",
            "--digest", "0x73f8de6a9feaf72d8b98a3a9f275900d6747c0a50b3b104d50d59b6a9720bb8d", "--json"))
        #expect(recovered["address"] == "0x1563915e194D8CfBA1943570603F7606A3115508")
        let key = try Secp256k1.PrivateKey(hex: "0x" + String(repeating: "33", count: 32))
        let personal = key.sign(digest: PersonalMessage.hash(Array("hello".utf8)))
        #expect(try Command.sessionAgent("eth", "recover", personal.hex, "--message", "hello").stdout == key.address.checksummed + "\n")
        let usage = try Command.sessionAgent("eth", "recover", personal.hex)
        #expect(usage.status != 0 && usage.stderr.contains("exactly one of"))
    }

    @Test func versionListsLibraries() throws {
        let v = try json(try Command.sessionAgent("version", "--json"))
        #expect(v["libraries"]?.arrayValue?.count == 5)
    }
}
