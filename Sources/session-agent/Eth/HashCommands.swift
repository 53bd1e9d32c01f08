import ArgumentParser
import EthereumCore

struct TypedDataHash: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "typed-data-hash",
        abstract: "The EIP-712 digest of an eth_signTypedData_v4 JSON document.")

    @Argument(help: "A JSON file, or - for standard input.") var file: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let data = try TypedData(json: try parseJSON(try readInput(file), what: "typed data"))
            let domain = try data.domainSeparator
            let digest = try data.digest
            var json = JSONObject()
            json["primaryType"] = .string(data.primaryType)
            json["domainSeparator"] = .string(domain.hex)
            var text = "domainSeparator: \(domain.hex)\n"
            if data.primaryType != "EIP712Domain" {
                let structHash = try data.hashStruct(data.primaryType, data.message)
                json["structHash"] = .string(structHash.hex)
                text += "structHash (\(data.primaryType)): \(structHash.hex)\n"
                // What a session request's `typedData` (and a rules file's `typed_data`) lists
                // for a session key to sign such documents (ERC-7739).
                let contentsType = try data.encodeType(data.primaryType)
                json["contentsType"] = .string(contentsType)
                text += "contentsType: \(contentsType)\n"
            }
            json["digest"] = .string(digest.hex)
            text += "digest: \(digest.hex)"
            return CommandOutput(text: text, json: .object(json))
        }
    }
}

struct UserOpHash: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "userop-hash",
        abstract: "The userOpHash an EntryPoint computes for a user operation.",
        discussion: "The operation is JSON in the unpacked RPC form (factory, paymaster, gas fields) or the packed form (initCode, accountGasLimits, gasFees, paymasterAndData).")

    @Argument(help: "A JSON file, or - for standard input.") var file: String?
    @Option(name: .customLong("entrypoint"), help: "The EntryPoint address.") var entryPoint: String
    @Option(name: .customLong("chain-id"), help: "The chain id.") var chainId: String
    @Option(name: .customLong("entrypoint-version"), help: "0.7 or 0.8; needed only for a non-canonical EntryPoint address.") var version: String?
    @Option(name: .customLong("eip7702-delegate"), help: "v0.8 only: the sender's EIP-7702 delegate, for an initCode marked 0x7702 (factory 0x7702).") var delegate: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let ep = try parseAddress(entryPoint, what: "--entrypoint")
            let chain: UInt256
            do { chain = try UInt256(parsing: chainId) } catch { throw CommandFailure(message: "--chain-id: \(error)") }
            let epVersion: EntryPointVersion
            if let version {
                guard let v = EntryPointVersion(rawValue: version) else { throw CommandFailure(message: "--entrypoint-version must be 0.7 or 0.8") }
                epVersion = v
            } else if let v = EntryPointVersion(canonicalAddress: ep) {
                epVersion = v
            } else {
                throw CommandFailure(message: "\(ep) is not a canonical EntryPoint", hints: ["pass --entrypoint-version 0.7 or 0.8"])
            }
            let op = try PackedUserOperation.parse(json: try parseJSON(try readInput(file), what: "user operation"))
            let hash = try op.hash(version: epVersion, entryPoint: ep, chainId: chain,
                                   eip7702Delegate: try delegate.map { try parseAddress($0, what: "--eip7702-delegate") })
            return CommandOutput(text: hash.hex, json: .object(JSONObject([
                "userOpHash": .string(hash.hex), "entryPoint": .string(ep.checksummed),
                "entryPointVersion": .string(epVersion.rawValue), "chainId": .string(chain.description),
            ])))
        }
    }
}

struct Recover: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The address that signed a digest or a personal message (ecrecover).")

    @Argument(help: "The 65-byte signature r‖s‖v, 0x hex.") var signature: String
    @Option(help: "The signed 32-byte digest.") var digest: String?
    @Option(help: "A personal_sign (EIP-191) message as text.") var message: String?
    @Option(name: .customLong("message-hex"), help: "A personal_sign (EIP-191) message as 0x hex bytes.") var messageHex: String?
    @OptionGroup var output: OutputOptions

    mutating func validate() throws {
        guard [digest, message, messageHex].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --digest, --message, --message-hex")
        }
    }

    func run() throws {
        try report(output) {
            let hash: Bytes32
            if let digest {
                guard let d = Bytes32(exactly: try parseHex(digest, what: "--digest")) else {
                    throw CommandFailure(message: "--digest must be 32 bytes")
                }
                hash = d
            } else if let message {
                hash = PersonalMessage.hash(Array(message.utf8))
            } else {
                hash = PersonalMessage.hash(try parseHex(messageHex!, what: "--message-hex"))
            }
            let sig = try RecoverableSignature(bytes: try parseHex(signature, what: "signature"))
            let key = try sig.recoverPublicKey(digest: hash)
            var json = JSONObject()
            json["address"] = .string(key.address.checksummed)
            json["publicKey"] = .string(Hex.encode([0x04] + key.uncompressed))
            json["digest"] = .string(hash.hex)
            json["lowS"] = .bool(sig.hasLowS)
            var text = key.address.checksummed
            if !sig.hasLowS { text += "\nwarning: s is high; EIP-2 and OpenZeppelin's ECDSA reject this signature" }
            return CommandOutput(text: text, json: .object(json))
        }
    }
}
