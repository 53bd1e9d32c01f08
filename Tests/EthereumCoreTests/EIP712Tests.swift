import EthereumCore
import Foundation
import Testing
import TestSupport

@Suite("EIP-712 typed-data hashing matches eth-account")
struct EIP712Tests {
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func randomTypeGraphs() throws {
        let cases = try Oracle.cases("eip712", count: 1000)
        #expect(cases.count == 1000)
        for c in cases {
            let data = try TypedData(json: c["document"]!)
            let context = "seed \(Oracle.seed), document \(c["document"]!.serialized.prefix(300))"
            #expect(try data.domainSeparator == (try c.bytes32("domainSeparator")), "\(context)")
            #expect(try data.hashStruct(data.primaryType, data.message) == (try c.bytes32("structHash")), "\(context)")
            #expect(try data.digest == (try c.bytes32("digest")), "\(context)")
        }
    }

    /// The example of the EIP-712 specification.
    @Test func mailExample() throws {
        let json = """
        {"types": {
           "EIP712Domain": [{"name":"name","type":"string"},{"name":"version","type":"string"},
                            {"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
           "Person": [{"name":"name","type":"string"},{"name":"wallet","type":"address"}],
           "Mail": [{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},
         "primaryType": "Mail",
         "domain": {"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
         "message": {"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                     "to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}
        """
        let data = try TypedData(parsing: json)
        #expect(try data.encodeType("Mail") == "Mail(Person from,Person to,string contents)Person(string name,address wallet)")
        #expect(try data.domainSeparator.hex == "0xf2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f")
        #expect(try data.hashStruct("Mail", data.message).hex == "0xc52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e")
        #expect(try data.digest.hex == "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")
    }

    /// The Smart Sessions type strings and typehashes of the spec (§4.1), and the digest the
    /// owner signs in its worked example (§11.2), from a plain eth_signTypedData_v4 document.
    @Test func smartSessionTypesAndWorkedExample() throws {
        let data = try TypedData(json: try Fixtures.json("multichain-session-typed-data.json"))
        #expect(try data.encodeType("ERC7739Context") == "ERC7739Context(bytes32 appDomainSeparator,string[] contentName)")
        #expect(try data.encodeType("SignedSession") == "SignedSession(address account,SignedPermissions permissions,address sessionValidator,bytes sessionValidatorInitData,bytes32 salt,address smartSession,uint256 nonce)ActionData(bytes4 actionTargetSelector,address actionTarget,PolicyData[] actionPolicies)ERC7739Context(bytes32 appDomainSeparator,string[] contentName)ERC7739Data(ERC7739Context[] allowedERC7739Content,PolicyData[] erc1271Policies)PolicyData(address policy,bytes initData)SignedPermissions(bool permitGenericPolicy,bool permitAdminAccess,bool ignoreSecurityAttestations,bool permitERC4337Paymaster,PolicyData[] userOpPolicies,ERC7739Data erc7739Policies,ActionData[] actions)")
        let expected = [
            "PolicyData": "0xdddac12cd8b10a071bea04226e97ac9490698394e19224abc47a5cfeeeb6ee97",
            "ActionData": "0x35809859dccf8877c407a59527c2f00fb81ca9c198ebcb0c832c3deaa38d3502",
            "ERC7739Context": "0x006166b2b3a1edaf1da1ce02715d02d4979a4ab93755bff9ec054b0e6a96a1da",
            "ERC7739Data": "0xdfd9b5718eebaa2484740b4ea6939e96189024c15848f16ccce901118114e152",
            "SignedPermissions": "0x871289c05e426554eb0f843c9aa542f9c2bc4eba7742ada6a5c014d3568674d4",
            "SignedSession": "0xd44896e3cb83d70abc949a38dd6f9f75e675dc329dfe958617f066f79ff88f05",
            "ChainSession": "0x1ea7e4bc398fa0ccd68d92b5d8931a3fd93eebe1cf0391b4ba28935801af7c80",
            "MultiChainSession": "0x0c9d02fb89a1da34d66ea2088dc9ee6a58efee71cef6f1bb849ed74fc6003d98",
            "EIP712Domain": "0xb03948446334eb9b2196d5eb166f69b9d49403eb4a12f36de8d3f9f3cb8e15c3",
        ]
        for (name, hash) in expected { #expect(try data.typeHash(name).hex == hash, "\(name)") }
        #expect(try data.domainSeparator.hex == "0x057501e891776d1482927e5f094ae44049a4d893ba2d7b334dd7db8d38d3a0e1")
        #expect(try data.digest.hex == "0x73f8de6a9feaf72d8b98a3a9f275900d6747c0a50b3b104d50d59b6a9720bb8d")
    }

    @Test func recursiveTypesAndMissingDomainType() throws {
        let data = try TypedData(parsing: """
        {"types": {"Node": [{"name":"value","type":"uint8"},{"name":"children","type":"Node[]"}]},
         "primaryType": "Node", "domain": {"chainId": "0x1", "name": "n"},
         "message": {"value": 1, "children": [{"value": 2, "children": []}]}}
        """)
        #expect(try data.encodeType("Node") == "Node(uint8 value,Node[] children)")
        #expect(try data.encodeType("EIP712Domain") == "EIP712Domain(string name,uint256 chainId)")
        _ = try data.digest
    }

    @Test func rejectsWhatWouldChangeTheMeaning() throws {
        func rejects(_ json: String, _ text: String) {
            do throws(TypedDataError) {
                _ = try TypedData(parsing: json).digest
                Issue.record("accepted \(json)")
            } catch {
                #expect(error.description.contains(text), "\(error)")
            }
        }
        let types = #""EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"a","type":"uint8"}]"#
        rejects(#"{"types":{\#(types)},"primaryType":"M","domain":{"name":"x"},"message":{}}"#, "missing field")
        rejects(#"{"types":{\#(types)},"primaryType":"M","domain":{"name":"x"},"message":{"a":1,"b":2}}"#, "not part of type")
        rejects(#"{"types":{\#(types)},"primaryType":"M","domain":{"name":"x"},"message":{"a":256}}"#, "does not fit")
        rejects(#"{"types":{\#(types)},"primaryType":"M","domain":{"name":"x"},"message":{"a":1.5}}"#, "invalid digit")
        rejects(#"{"types":{\#(types)},"primaryType":"M","domain":{"name":"x"},"message":{"a":true}}"#, "expected an integer")
        rejects(#"{"types":{\#(types)},"primaryType":"N","domain":{"name":"x"},"message":{"a":1}}"#, "not in types")
        rejects(#"{"types":{"M":[{"name":"a","type":"Missing"}]},"primaryType":"M","domain":{},"message":{"a":1}}"#, "unknown type")
        rejects(#"{"types":{\#(types)},"primaryType":"M","domain":{"name":"x"},"message":{"a":1,"a":2}}"#, "duplicate key")
        rejects(#"{"types":{\#(types)},"primaryType":"M","domain":{"name":"x"}}"#, "missing \"message\"")
        // Types as EIP-712 writes them: canonical names (a wallet hashing "uint" signs another
        // type hash), no tuples, positive array sizes, identifiers, each field once.
        func rejectsType(_ type: String, _ text: String, value: String = "1") {
            rejects(#"{"types":{"M":[{"name":"a","type":"\#(type)"}]},"primaryType":"M","domain":{},"message":{"a":\#(value)}}"#, text)
        }
        rejectsType("uint", "unknown type \"uint\"")
        rejectsType("(uint256,address)", "unknown type")
        rejectsType("uint8[0]", "invalid array size", value: "[]")
        rejectsType("uint8[-1]", "invalid array size", value: "[]")
        rejectsType("uint8[2]", "expected 2 elements, got 1", value: "[1]")
        rejectsType("uint8[2]", "expected 2 elements, got 3", value: "[1,2,3]")
        rejects(#"{"types":{"M":[{"name":"a","type":"uint8"},{"name":"a","type":"uint16"}]},"primaryType":"M","domain":{},"message":{"a":1}}"#, "duplicate field \"a\"")
        for name in ["1M", "M N", "M(", ""] {
            rejects(#"{"types":{"\#(name)":[{"name":"a","type":"uint8"}],"M":[]},"primaryType":"M","domain":{},"message":{}}"#, "invalid type name")
        }
    }

    /// eth_signTypedData_v4 (MetaMask's eth-sig-util): a document whose primary type is the
    /// domain signs the domain separator alone.
    @Test func theDomainAsPrimaryTypeSignsTheDomainAlone() throws {
        let data = try TypedData(parsing: #"{"types":{"EIP712Domain":[{"name":"name","type":"string"}]},"primaryType":"EIP712Domain","domain":{"name":"x"}}"#)
        #expect(try data.digest == keccak256([0x19, 0x01], try data.domainSeparator.bytes))
    }

    /// Values nested deeper than any real document are refused by name; the limit keeps the
    /// recursion over values far from the end of the stack.
    @Test func valuesNestedTooDeeplyAreRefused() throws {
        func nested(_ depth: Int) throws -> TypedData {
            let message = String(repeating: #"{"next":["#, count: depth) + "" + String(repeating: "]}", count: depth)
            return try TypedData(parsing: #"{"types":{"N":[{"name":"next","type":"N[]"}]},"primaryType":"N","domain":{},"message":\#(message)}"#)
        }
        _ = try nested(32).digest
        do {
            _ = try nested(33).digest
            Issue.record("a value nested 33 deep was hashed")
        } catch {
            #expect("\(error)".contains("value nested too deeply"), "\(error)")
        }
    }

    /// A document is as deep as its author makes it: a chain of struct types or array dimensions
    /// thousands long is hashed or refused, without the recursion that overflowed the stack.
    @Test func documentsDeeperThanAStackAllows() throws {
        let count = 20_000
        let types = (0..<count).map { #""T\#($0)":[{"name":"a","type":"T\#($0 + 1)[]"}]"# }
            + [#""T\#(count)":[{"name":"a","type":"uint8"}]"#]
        let chain = try TypedData(parsing: #"{"types":{\#(types.joined(separator: ","))},"primaryType":"T0","domain":{},"message":{"a":[]}}"#)
        let expected = "T0(T1[] a)" + (1...count).map { "T\($0)" }.sorted().map { name in
            name == "T\(count)" ? "\(name)(uint8 a)" : "\(name)(T\(Int(name.dropFirst())! + 1)[] a)"
        }.joined()
        #expect(try chain.encodeType("T0") == expected)
        #expect(try chain.typeHash("T0") == Keccak256.hash(utf8: expected))
        _ = try chain.digest

        // Thousands of values of such a type: its hash, which takes the whole chain to encode, is
        // computed once per document (it took minutes), and each value still hashes as alone.
        let many = try TypedData(parsing: #"{"types":{"M":[{"name":"xs","type":"T0[]"}],\#(types.joined(separator: ","))},"primaryType":"M","domain":{},"message":{"xs":[\#(Array(repeating: #"{"a":[]}"#, count: 3000).joined(separator: ","))]}}"#)
        let one = try many.hashStruct("T0", try JSONValue(parsing: #"{"a":[]}"#))
        var items = Keccak256()
        for _ in 0..<3000 { items.update(one) }
        #expect(try many.hashStruct("M", many.message) == keccak256(try many.typeHash("M").bytes, items.finalize().bytes))

        func document(dimensions: Int) throws -> TypedData {
            let type = "uint256" + String(repeating: "[]", count: dimensions)
            return try TypedData(parsing: #"{"types":{"M":[{"name":"a","type":"\#(type)"}]},"primaryType":"M","domain":{},"message":{"a":[]}}"#)
        }
        _ = try document(dimensions: 32).digest
        for dimensions in [33, 100_000] {
            #expect(throws: TypedDataError.self) { try document(dimensions: dimensions) }
        }
        do {
            _ = try document(dimensions: 33)
        } catch {
            #expect("\(error)".contains("more than 32 array dimensions"), "\(error)")
        }
    }

    @Test func personalMessageHash() {
        // eth_account.messages.encode_defunct(text="hello")
        #expect(PersonalMessage.hash(Array("hello".utf8)).hex == "0x50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750")
    }
}
