import ArgumentParser
import EthereumCore
import Foundation
import SmartSessions

/// Token list and clock options shared by the commands that render sessions.
struct ReviewOptions: ParsableArguments {
    @Option(help: "A JSON token list to add to the built-in one ([{chainId, address, symbol, decimals}], or the Token Lists format).") var tokens: String?
    @Option(help: "Unix time to render relative dates and resolve durations against (default: now).") var now: UInt64?
    @Option(help: "Colour the text output: auto, always or never.") var color: String = "auto"

    func tokenList() throws -> TokenList {
        var list = TokenList()
        guard let tokens else { return list }
        let json = try parseJSON(try readInput(tokens), what: tokens)
        do { try list.add(json: json) } catch { throw CommandFailure(message: "the token list \(tokens): \(error.message)") }
        return list
    }

    var time: UInt64 { now ?? UInt64(Date().timeIntervalSince1970) }

    /// Durations are added to it: a time near UInt64's end overflowed (a crash).
    func validate() throws {
        if let now, now > DurationText.maximumSeconds { throw ValidationError("--now: a Unix time up to \(DurationText.maximumSeconds) (the year 36812)") }
    }

    var colors: Bool {
        switch color {
        case "always": true
        case "never": false
        default: isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile a session request and show exactly what an owner would sign.",
        discussion: """
            Accepts the native request format (docs/requests.md), ERC-7715 wallet_grantPermissions or \
            wallet_requestExecutionPermissions requests, or a raw Session. Prints every field that enters \
            the enable digest decoded, the risks, the worst-case exposure, the permissionId, the \
            sessionDigest of each chain and the multichain digest the owner signs.
            """)

    @Argument(help: "The request file, or - for standard input.") var file: String?
    @Option(help: "The smart account (overrides the request).") var account: String?
    @Option(name: .customLong("chain-id"), help: "A chain to enable the session on (repeatable; overrides the request).") var chainIds: [UInt64] = []
    @Option(help: "The enable nonce (SmartSession.getNonce) on every chain (default 0).") var nonce: String?
    @Option(help: "enable or unsafe-enable (overrides the request).") var mode: String?
    @Option(name: .customLong("session-key"), help: "A session key address (repeatable). Default: a fresh key made for this inspection.") var sessionKeys: [String] = []
    @Option(name: .customLong("kernel-version"), help: "For a Kernel account (accountKind kernel): its version, as its eip712Domain() gives it (default 0.3.1).")
    var kernelVersion: String = AccountKind.kernelV31
    @OptionGroup var review: ReviewOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let json = try parseJSON(try readInput(file), what: "request")
            var overrides = RequestCompiler.Overrides()
            overrides.account = try account.map { try parseAddress($0, what: "--account") }
            if !chainIds.isEmpty { overrides.chains = chainIds }
            if let mode {
                switch mode {
                case "enable": overrides.mode = .enable
                case "unsafe-enable": overrides.mode = .unsafeEnable
                default: throw CommandFailure(message: "--mode must be enable or unsafe-enable")
                }
            }
            var keys = try sessionKeys.map { try parseAddress($0, what: "--session-key") }
            var generatedKey = false
            if keys.isEmpty {
                keys = [Secp256k1.PrivateKey.generate().address]
                generatedKey = true
            }
            let tokens = try review.tokenList()
            var compiler = RequestCompiler(tokens: tokens, now: review.time, sessionKeys: keys, overrides: overrides)
            if let nonce {
                let value: UInt256
                do { value = try UInt256(parsing: nonce) } catch { throw CommandFailure(message: "--nonce: \(error)") }
                let chains = try compiler.compile(json).chains.map(\.chainId)
                compiler.overrides.nonces = Dictionary(uniqueKeysWithValues: chains.map { ($0, value) })
            }
            var compiled = try compiler.compile(json)
            compiled.kernelVersion = kernelVersion
            let result = Reviewer(tokens: tokens, now: review.time).review(compiled)
            var text = result.text(colors: review.colors)
            if generatedKey { text += "\n\nnote: the session key \(keys[0].checksummed) was generated for this inspection; the agent binds its own" }
            var o = result.json.objectValue!
            o["session"] = compiled.session.json
            o["enableTypedData"] = compiled.enableTypedData
            o["sessionKeyGenerated"] = .bool(generatedKey)
            return CommandOutput(text: text, json: .object(o))
        }
    }
}

struct DecodeSignature: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode-signature",
        abstract: "Explain a Smart Sessions userOp.signature (USE, ENABLE or UNSAFE_ENABLE).",
        discussion: "With --account (and --nonce), the embedded session digests are recomputed and checked, and the owner signers are recovered.")

    @Argument(help: "The userOp.signature, 0x hex.") var signature: String
    @Option(help: "The account the operation is for, to recompute the enable digests.") var account: String?
    @Option(help: "The enable nonce the owner signed at (default 0).") var nonce: String = "0"
    @Option(name: .customLong("account-kind"), help: "erc7579, nexus, safe7579 or kernel: how permissionEnableSig routes (default erc7579).") var accountKind: String = "erc7579"
    @Option(name: .customLong("kernel-version"), help: "A Kernel account's version, as its eip712Domain() gives it: 0.3.0-beta, 0.3.1, 0.3.2, 0.3.3 (default 0.3.1).")
    var kernelVersion: String = AccountKind.kernelV31
    @OptionGroup var review: ReviewOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let decoded = try SessionSignature(decoding: try parseHex(signature, what: "signature"))
            var o = JSONObject()
            o["mode"] = .string(decoded.mode.description)
            o["permissionId"] = .string(decoded.permissionId.hex)
            var lines = ["mode           \(decoded.mode)", "permissionId   \(decoded.permissionId.hex)"]
            let chunks = stride(from: 0, to: decoded.validatorSignature.count, by: 65).map { Array(decoded.validatorSignature[$0..<min($0 + 65, decoded.validatorSignature.count)]) }
            lines.append("session signature (\(decoded.validatorSignature.count) bytes): " + chunks.map(\.hex).joined(separator: " "))
            o["sessionSignature"] = .string(decoded.validatorSignature.hex)

            guard case .enable(let mode, let enable, _) = decoded else {
                return CommandOutput(text: lines.joined(separator: "\n"), json: .object(o))
            }
            guard let kind = AccountKind(rawValue: accountKind) else { throw CommandFailure(message: "--account-kind: erc7579, nexus, safe7579 or kernel") }
            let nonceValue: UInt256
            do { nonceValue = try UInt256(parsing: nonce) } catch { throw CommandFailure(message: "--nonce: \(error)") }
            let accountAddress = try account.map { try parseAddress($0, what: "--account") }
            let chains = enable.hashesAndChainIds.map { ChainTarget(chainId: $0.chainId, nonce: nonceValue) }
            var request = CompiledRequest(format: .rawSession, account: accountAddress ?? .zero, accountKind: kind, chains: chains,
                                          mode: mode, session: enable.sessionToEnable)
            request.kernelVersion = kernelVersion
            let digest = EnableDigest.multichainDigest(enable.hashesAndChainIds)
            lines.append("chain index    \(enable.chainDigestIndex) of " + enable.hashesAndChainIds.map { "\(Chains.label($0.chainId)) \($0.sessionDigest.hex)" }.joined(separator: ", "))
            lines.append("owner signed   \(digest.hex) (multichain digest of the listed pairs)")
            o["chainDigestIndex"] = JSONValue(Int(enable.chainDigestIndex))
            o["chainDigests"] = .array(enable.hashesAndChainIds.map { .object(JSONObject(["chainId": .string(String($0.chainId)), "sessionDigest": .string($0.sessionDigest.hex)])) })
            o["multichainDigest"] = .string(digest.hex)
            if let accountAddress {
                let matches = enable.hashesAndChainIds.map { request.sessionDigest(on: ChainTarget(chainId: $0.chainId, nonce: nonceValue)) == $0.sessionDigest }
                lines.append("digests        " + (matches.allSatisfy { $0 } ? "match the session for \(accountAddress.checksummed) at nonce \(nonceValue)" : "DO NOT match the session for \(accountAddress.checksummed) at nonce \(nonceValue)"))
                o["digestsMatch"] = .bool(matches.allSatisfy { $0 })
            }
            if let (validator, ownerSig, everyChain) = try? kind.parsePermissionEnableSig(enable.permissionEnableSig) {
                lines.append("owner validator \(validator.checksummed)")
                o["ownerValidator"] = .string(validator.checksummed)
                if everyChain {
                    lines.append("owner signed   for every chain (Kernel's replayable signature, its wrapping for chain id 0)")
                    o["kernelReplayable"] = .bool(true)
                }
                let hash = kind.validatorHash(of: digest, account: accountAddress ?? .zero, chainId: everyChain ? 0 : enable.hashesAndChainIds.first?.chainId ?? 0,
                                              kernelVersion: kernelVersion)
                if let signers = ownableValidatorSigners(ownerSig, hash: hash) {
                    lines += signers.map { "owner signer   \($0)" }
                    o["ownerSigners"] = .array(signers.map { .string($0) })
                } else if validator == SmartSessionAddresses.rhinestoneWebAuthnValidator, let decoded = try? RhinestoneWebAuthn.decodeSignature(ownerSig) {
                    // The credential ids stand for public keys the validator holds: what can be
                    // read here is which challenge each passkey signed.
                    var passkeys: [JSONValue] = []
                    let expected = #""challenge":""# + WebAuthnAssertion.base64url(hash.bytes) + "\""
                    for (id, assertion) in zip(decoded.credentialIds, decoded.assertions) {
                        let overDigest = assertion.clientDataJSON.contains(expected)
                        lines.append("owner passkey  credential \(id.hex): \(overDigest ? "signed this digest" : "signed ANOTHER challenge")")
                        passkeys.append(.object(JSONObject(["credentialId": .string(id.hex), "signedDigest": .bool(overDigest)])))
                    }
                    o["ownerPasskeys"] = .array(passkeys)
                } else if validator == SmartSessionAddresses.zeroDevWebAuthnValidator, let decoded = try? ZeroDevWebAuthn.decodeSignature(ownerSig) {
                    let overDigest = decoded.assertion.clientDataJSON.contains(#""challenge":""# + WebAuthnAssertion.base64url(hash.bytes) + "\"")
                    let verified = decoded.assertion.authenticatorData.count > 32 && decoded.assertion.authenticatorData[32] & 0x04 != 0
                    lines.append("owner passkey  (ZeroDev): \(overDigest ? "signed this digest" : "signed ANOTHER challenge"), user \(verified ? "verified" : "NOT verified, which the validator refuses")")
                    o["ownerPasskeys"] = .array([.object(JSONObject(["signedDigest": .bool(overDigest), "userVerified": .bool(verified)]))])
                }
            }
            let reviewed = Reviewer(tokens: try review.tokenList(), now: review.time).review(request)
            lines.append("")
            lines.append(reviewed.text(colors: review.colors))
            o["session"] = enable.sessionToEnable.json
            o["review"] = reviewed.json
            return CommandOutput(text: lines.joined(separator: "\n"), json: .object(o))
        }
    }
}

/// Who signed `hash` in an OwnableValidator signature (65-byte signatures, raw or eth_sign with
/// v + 4), or nil when it is not one.
func ownableValidatorSigners(_ signature: [UInt8], hash: Bytes32) -> [String]? {
    guard !signature.isEmpty, signature.count % 65 == 0 else { return nil }
    return stride(from: 0, to: signature.count, by: 65).map { start in
        guard var sig = try? RecoverableSignature(bytes: Array(signature[start..<(start + 65)])) else { return "unrecoverable" }
        var h = hash
        if sig.v > 30 { sig.v -= 4; h = PersonalMessage.hash(hash) }
        return (try? sig.recoverAddress(digest: h))?.checksummed ?? "unrecoverable"
    }
}

struct DecodeMessageSignature: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode-message-signature",
        abstract: "Explain a session key's ERC-1271 signature for an account (ERC-7739 nested typed data through SmartSession).",
        discussion: """
            With --typed-data, checks that the signature is for that document. With --account, --chain-id, --account-name and \
            --account-version (the account's EIP-712 domain), recomputes the digest the session key signed and recovers the signers.
            """)

    @Argument(help: "The signature passed to the account's isValidSignature, 0x hex.") var signature: String
    @Option(name: .customLong("account-kind"), help: "erc7579, nexus, safe7579 or kernel: how the account routes it (default erc7579).") var accountKind: String = "erc7579"
    @Option(name: .customLong("typed-data"), help: "The eth_signTypedData_v4 document it should be for (JSON file, or - for standard input).") var typedData: String?
    @Option(help: "The account.") var account: String?
    @Option(name: .customLong("chain-id"), help: "The chain id of the account's domain.") var chainId: UInt64?
    @Option(name: .customLong("account-name"), help: "The account's EIP-712 domain name.") var accountName: String?
    @Option(name: .customLong("account-version"), help: "The account's EIP-712 domain version.") var accountVersion: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            guard let kind = AccountKind(rawValue: accountKind) else { throw CommandFailure(message: "--account-kind: erc7579, nexus, safe7579 or kernel") }
            let routed: (validator: Address, signature: [UInt8])
            do { routed = try kind.parseERC1271Signature(try parseHex(signature, what: "signature")) } catch let e as SmartSessionError { throw CommandFailure(message: e.message) }
            guard routed.validator == SmartSessionAddresses.smartSession else {
                throw CommandFailure(message: "the signature is routed to \(routed.validator.checksummed), not to SmartSession")
            }
            let parsed: (permissionId: Bytes32, sessionSignature: [UInt8], message: NestedTypedData)
            do { parsed = try NestedTypedData.parse(routed.signature) } catch let e as SmartSessionError { throw CommandFailure(message: e.message) }
            let (permissionId, sessionSignature, message) = parsed
            let explicit = message.contentsDescription != message.contentsType
            var lines = ["validator      SmartSession \(routed.validator.checksummed)", "permissionId   \(permissionId.hex)",
                         "app domain     \(message.appDomainSeparator.hex)", "contents       \(message.contents.hex)",
                         "description    \(DisplayText.escaped(String(reflecting: message.contentsDescription))) (\(message.contentsName), \(explicit ? "explicit" : "implicit"))",
                         "hash           \(message.appHash.hex) (what the application passes with it)"]
            var o = JSONObject(["permissionId": .string(permissionId.hex), "sessionSignature": .string(sessionSignature.hex),
                                "appDomainSeparator": .string(message.appDomainSeparator.hex), "contents": .string(message.contents.hex),
                                "contentsDescription": .string(message.contentsDescription), "hash": .string(message.appHash.hex)])
            if let typedData {
                let document: TypedData
                do { document = try TypedData(json: try parseJSON(try readInput(typedData), what: "typed data")) } catch let e as TypedDataError { throw CommandFailure(message: "--typed-data: \(e)") }
                let expected = try? NestedTypedData(document, explicit: explicit)
                let matches = expected == message
                lines.append("typed data     " + (matches ? "the signature is for this document" : "the signature is NOT for this document"))
                o["matchesTypedData"] = .bool(matches)
            }
            switch (account, chainId, accountName, accountVersion) {
            case (let account?, let chainId?, let name?, let version?):
                let domain = AccountDomain(name: name, version: version, chainId: UInt256(chainId), verifyingContract: try parseAddress(account, what: "--account"))
                let digest = message.digest(in: domain)
                lines.append("digest         \(digest.hex) (the session key signed it)")
                o["digest"] = .string(digest.hex)
                let signers = ownableValidatorSigners(sessionSignature, hash: digest) ?? []
                lines += signers.map { "session signer \($0)" }
                o["sessionSigners"] = .array(signers.map { .string($0) })
            case (nil, nil, nil, nil): break
            default: throw CommandFailure(message: "--account, --chain-id, --account-name and --account-version go together")
            }
            return CommandOutput(text: lines.joined(separator: "\n"), json: .object(o))
        }
    }
}
