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
            let compiled = try compiler.compile(json)
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
            let request = CompiledRequest(format: .rawSession, account: accountAddress ?? .zero, accountKind: kind, chains: chains,
                                          mode: mode, session: enable.sessionToEnable)
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
            if let (validator, ownerSig) = try? kind.parsePermissionEnableSig(enable.permissionEnableSig) {
                lines.append("owner validator \(validator.checksummed)")
                o["ownerValidator"] = .string(validator.checksummed)
                let hash = kind.validatorHash(of: digest, account: accountAddress ?? .zero, chainId: enable.hashesAndChainIds.first?.chainId ?? 0)
                if ownerSig.count % 65 == 0 {
                    var signers: [JSONValue] = []
                    for start in stride(from: 0, to: ownerSig.count, by: 65) {
                        var sig = try RecoverableSignature(bytes: Array(ownerSig[start..<(start + 65)]))
                        var h = hash
                        if sig.v > 30 { sig.v -= 4; h = PersonalMessage.hash(hash) }
                        let signer = (try? sig.recoverAddress(digest: h))?.checksummed ?? "unrecoverable"
                        lines.append("owner signer   \(signer)")
                        signers.append(.string(signer))
                    }
                    o["ownerSigners"] = .array(signers)
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
