import EthereumCore

/// The account's EIP-712 domain, as its `eip712Domain()` answers (ERC-5267). SmartSession folds
/// it into every session key's ERC-1271 signature, so a signature for one account cannot be
/// replayed on another the same key serves. Accounts without the function get it from the
/// SmartSessionCompatibilityFallback, which names the account after its `accountId()`.
public struct AccountDomain: Sendable, Equatable {
    public var name: String
    public var version: String
    public var chainId: UInt256
    public var verifyingContract: Address
    public var salt: Bytes32

    public init(name: String, version: String, chainId: UInt256, verifyingContract: Address, salt: Bytes32 = .zero) {
        self.name = name
        self.version = version
        self.chainId = chainId
        self.verifyingContract = verifyingContract
        self.salt = salt
    }

    /// `eip712Domain()` on `account`.
    public static func call(on account: Address) -> ViewCall {
        ViewCall(account, "eip712Domain() returns (bytes1,string,string,uint256,address,bytes32,uint256[])", [])
    }

    /// The domain `call` answered. SmartSession reads every field whatever the `fields` bitmap
    /// says, so this does too.
    public init(answer: [UInt8], of call: ViewCall) throws(SmartSessionError) {
        let values = try call.decode(answer)
        guard values.count == 7, case .string(let name) = values[1], case .string(let version) = values[2], case .uint(let chainId) = values[3],
              case .address(let verifyingContract) = values[4], case .fixedBytes(let salt) = values[5] else {
            throw SmartSessionError("eip712Domain answered values of other types", reason: "chain_answer_malformed")
        }
        self.init(name: name, version: version, chainId: chainId, verifyingContract: verifyingContract, salt: Bytes32(salt))
    }
}

/// A typed-data document as a session key signs it for the account's ERC-1271
/// `isValidSignature`: ERC-7739 nested typed data, checked by SmartSession (spec §10). The
/// session key signs `TypedDataSign`, the document's contents wrapped with the account's
/// domain, under the application's own domain separator; the signature carries the separator,
/// the contents hash and their description, from which SmartSession rebuilds that hash.
public struct NestedTypedData: Sendable, Equatable {
    public let appDomainSeparator: Bytes32
    /// `hashStruct` of the document's message.
    public let contents: Bytes32
    /// The contents' `encodeType`.
    public let contentsType: String
    public let contentsName: String
    /// What the session's `ERC7739Context.contentNames` must list, exactly: the contents type
    /// alone ("implicit" mode, its name read before the first `(`) or followed by its name
    /// ("explicit").
    public let contentsDescription: String

    /// `document` with its contents described implicitly or explicitly.
    public init(_ document: TypedData, explicit: Bool) throws(SmartSessionError) {
        guard document.primaryType != "EIP712Domain" else {
            throw SmartSessionError("the domain alone is no contents a session key can sign for the account")
        }
        do {
            let type = try document.encodeType(document.primaryType)
            try self.init(appDomainSeparator: try document.domainSeparator, contents: try document.hashStruct(document.primaryType, document.message, path: ["message"]),
                          contentsDescription: explicit ? type + document.primaryType : type)
        } catch let error as SmartSessionError {
            throw error
        } catch {
            throw SmartSessionError("\(error)")
        }
    }

    /// The parts as a signature carries them. The description is read byte by byte, as
    /// SmartSession reads it. One it would read as an invalid contents name (empty, starting with
    /// a lower-case letter, or holding `(`, `)`, `,`, a space or a zero byte) makes it compute a
    /// hash no key signed: refused here instead, as is one without a type.
    public init(appDomainSeparator: Bytes32, contents: Bytes32, contentsDescription: String) throws(SmartSessionError) {
        let bytes = Array(contentsDescription.utf8)
        guard bytes.count <= Int(UInt16.max) else {
            throw SmartSessionError("the contents description is longer than the 65535 bytes its length field holds")
        }
        let open = UInt8(ascii: "("), close = UInt8(ascii: ")")
        let typeLength: Int, name: ArraySlice<UInt8>
        if bytes.last == close {
            (typeLength, name) = (bytes.count, bytes.prefix { $0 != open })
        } else if let last = bytes.lastIndex(of: close) {
            (typeLength, name) = (last + 1, bytes[(last + 1)...])
        } else {
            throw SmartSessionError("the contents description \(String(reflecting: contentsDescription)) holds no type")
        }
        let refused: [UInt8] = [open, close, UInt8(ascii: ","), UInt8(ascii: " "), 0]
        guard let first = name.first, !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), !name.contains(where: refused.contains) else {
            throw SmartSessionError("SmartSession refuses the contents name \(String(reflecting: String(decoding: name, as: UTF8.self))): it must not be empty, "
                                    + "start with a lower-case letter, or hold a parenthesis, comma, space or zero byte")
        }
        self.appDomainSeparator = appDomainSeparator
        self.contents = contents
        // Cut at an ASCII parenthesis, so both parts are whole UTF-8.
        contentsType = String(decoding: bytes[..<typeLength], as: UTF8.self)
        contentsName = String(decoding: name, as: UTF8.self)
        self.contentsDescription = contentsDescription
    }

    /// The hash an application passes to `isValidSignature` with the signature:
    /// `keccak256(0x1901 ‖ appDomainSeparator ‖ contents)`, the document's own EIP-712 digest.
    /// The deployed SmartSession does not compare it with the signature's (spec §14.7).
    public var appHash: Bytes32 { keccak256([0x19, 0x01], appDomainSeparator.bytes, contents.bytes) }

    /// The `TypedDataSign` digest the session key signs for the account with `domain`.
    public func digest(in domain: AccountDomain) -> Bytes32 {
        let typeHash = Keccak256.hash(utf8: "TypedDataSign(\(contentsName) contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)\(contentsType)")
        let typedDataSign = keccak256(typeHash.bytes, contents.bytes, Keccak256.hash(utf8: domain.name).bytes, Keccak256.hash(utf8: domain.version).bytes,
                                      domain.chainId.bigEndianBytes, domain.verifyingContract.word.bytes, domain.salt.bytes)
        return keccak256([0x19, 0x01], appDomainSeparator.bytes, typedDataSign.bytes)
    }

    /// SmartSession's part of an account's signature read back, as SmartSessionERC7739 reads it
    /// from its end: the permission id, the session validator's signature, and the message.
    public static func parse(_ bytes: [UInt8]) throws(SmartSessionError) -> (permissionId: Bytes32, sessionSignature: [UInt8], message: NestedTypedData) {
        guard bytes.count >= 32 + 66 else { throw SmartSessionError("\(bytes.count) bytes are too few for a permission id, a domain separator, a contents hash and a length") }
        let length = Int(bytes[bytes.count - 2]) << 8 | Int(bytes[bytes.count - 1])
        let appended = bytes.count - 66 - length
        guard appended >= 32 else { throw SmartSessionError("the contents description's length, \(length) bytes, is more than the signature holds") }
        guard let description = String(validating: bytes[(appended + 64)..<(bytes.count - 2)], as: UTF8.self) else {
            throw SmartSessionError("the contents description is not UTF-8 text")
        }
        let message = try NestedTypedData(appDomainSeparator: Bytes32(bytes[appended..<(appended + 32)]), contents: Bytes32(bytes[(appended + 32)..<(appended + 64)]),
                                          contentsDescription: description)
        return (Bytes32(bytes[0..<32]), Array(bytes[32..<appended]), message)
    }

    /// SmartSession's part of the account's signature: `permissionId ‖ sessionSignature ‖
    /// appDomainSeparator ‖ contents ‖ contentsDescription ‖ uint16 length`. The account's
    /// routing to SmartSession goes before it (`AccountKind.erc1271Signature`).
    public func signature(permissionId: Bytes32, sessionSignature: [UInt8]) -> [UInt8] {
        let description = Array(contentsDescription.utf8)
        return permissionId.bytes + sessionSignature + appDomainSeparator.bytes + contents.bytes + description
            + [UInt8(description.count >> 8), UInt8(description.count & 0xff)]
    }
}
