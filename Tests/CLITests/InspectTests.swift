import EthereumCore
import Foundation
import Testing
import SmartSessions
import TestSupport

@Suite("session-agent inspect and decode-signature")
struct InspectTests {
    static let example = Oracle.packageRoot.appendingPathComponent("docs/examples/usdc-transfers.json").path
    static let key = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"

    @Test func inspectPrintsTheReviewAndTheDigests() throws {
        let r = try Command.sessionAgent("inspect", Self.example, "--session-key", Self.key, "--now", "1764096000", "--color", "never")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("transfer(address to, uint256 amount)"))
        #expect(r.stdout.contains("at most 100 USDC (100000000 base units)"))
        #expect(r.stdout.contains("owner signs   0x"))
        #expect(!r.stdout.contains("\u{1B}["), "no colour when told")

        let j = try JSONValue(parsing: try Command.sessionAgent("inspect", Self.example, "--session-key", Self.key, "--now", "1764096000",
                                                              "--chain-id", "1", "--nonce", "4", "--mode", "unsafe-enable",
                                                              "--account", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "--json").stdout)
        #expect(j["mode"] == "UNSAFE_ENABLE")
        #expect(j["account"] == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
        #expect(j["chains"]?.arrayValue?.map { $0["chainId"]! } == ["1"])
        #expect(j["chains"]?.arrayValue?.map { $0["nonce"]! } == ["4"])
        // The exported typed data hashes to the digest the owner signs.
        let typed = try TypedData(json: j["enableTypedData"]!)
        #expect(try typed.digest.hex == j["multichainDigest"]?.stringValue)
        #expect(j["sessionKeyGenerated"] == .bool(false))

        let multichain = try JSONValue(parsing: try Command.sessionAgent("inspect", try Fixtures.url("requests/uniswap-rules.json").path, "--session-key", Self.key,
                                                                       "--now", "1764096000", "--nonce", "7", "--json").stdout)
        #expect(multichain["chains"]?.arrayValue?.map { $0["nonce"]! } == ["7", "7"])
        #expect(try TypedData(json: multichain["enableTypedData"]!).digest.hex == multichain["multichainDigest"]?.stringValue)
        // A token named by symbol must be one address on every chain.
        let spread = try Command.sessionAgent("inspect", Self.example, "--chain-id", "1", "--chain-id", "8453")
        #expect(spread.status == 1 && spread.stderr.contains("USDC is not at one address on every chain"))
    }

    @Test func inspectRefusesBadRequestsWithTheField() throws {
        let r = try Command.sessionAgent("inspect", "-", "--json", stdin: #"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1], "permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "nativeTransfer": true}]}"#)
        #expect(r.status == 1)
        let error = try JSONValue(parsing: r.stderr)["error"]
        #expect(error?["message"]?.stringValue?.contains("permissions[0]: no policy for value transfers") == true)
        #expect(error?["reason"] == "bad_request")
        let periodic = try Command.sessionAgent("inspect", "-", stdin: #"{"chainId": "0x1", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "signer": {"type": "wallet", "data": {}}, "permission": {"type": "native-token-periodic", "isAdjustmentAllowed": true, "data": {}}, "rules": []}"#)
        #expect(periodic.status == 1 && periodic.stderr.contains("streaming and periodic allowances"))
        // A file that cannot be read is named with the system's reason, not Foundation's.
        let missing = try Command.sessionAgent("inspect", "/no-such-request.json")
        #expect(missing.status == 1 && missing.stderr.contains("cannot read /no-such-request.json: No such file or directory"), "\(missing.stderr)")
        let endless = try Command.sessionAgent("inspect", "/dev/zero")
        #expect(endless.status == 1 && endless.stderr.contains("/dev/zero goes on past 64 MiB"), "\(endless.stderr)")
        let directory = try Command.sessionAgent("inspect", "/tmp")
        #expect(directory.status == 1 && directory.stderr.contains("cannot read /tmp: Is a directory"), "\(directory.stderr)")
        let generated = try Command.sessionAgent("inspect", Self.example, "--color", "never")
        #expect(generated.status == 0 && generated.stdout.contains("was generated for this inspection"))
        // Durations are counted from --now: one near UInt64's end overflowed, a crash.
        for command in ["inspect", "decode-signature"] {
            let late = try Command.sessionAgent(command, Self.example, "--now", "18446744073709551615")
            #expect(late.status == 64 && late.stderr.contains("--now: a Unix time up to 1099511627776"), "\(command): \(late.status) \(late.stderr)")
        }
    }

    @Test func decodeSignatureExplainsEnableData() throws {
        // The ENABLE signature of the spec's worked example.
        let c = try Fixtures.json("cases/01-enable-then-use.json")
        let enable = try c["userOps"]!.arrayValue![0]["userOp"]!.string("signature")
        let r = try Command.sessionAgent("decode-signature", enable, "--account", "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "--color", "never", "--now", "1754000000")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("mode           ENABLE"))
        #expect(r.stdout.contains("permissionId   0x46a10c2b2f9c9af0109107cb6de426a5e28c0729ae0d1239e5431a2baeb7b521"))
        #expect(r.stdout.contains("digests        match"))
        #expect(r.stdout.contains("owner signer   0x1563915e194D8CfBA1943570603F7606A3115508"))
        #expect(r.stdout.contains("ERC20SpendingLimitPolicy"))
        let wrongAccount = try JSONValue(parsing: try Command.sessionAgent("decode-signature", enable, "--account", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "--json").stdout)
        #expect(wrongAccount["digestsMatch"] == .bool(false))

        let use = try c["userOps"]!.arrayValue![1]["userOp"]!.string("signature")
        let u = try JSONValue(parsing: try Command.sessionAgent("decode-signature", use, "--json").stdout)
        #expect(u["mode"] == "USE" && u["permissionId"] == "0x46a10c2b2f9c9af0109107cb6de426a5e28c0729ae0d1239e5431a2baeb7b521")
        let bad = try Command.sessionAgent("decode-signature", "0x05")
        #expect(bad.status == 1 && bad.stderr.contains("unknown Smart Sessions mode byte"))
    }

    /// A Kernel account's owners sign the multichain digest as that Kernel version wraps it:
    /// `inspect` shows it, and `decode-signature` recovers the owner over it, for the version
    /// given (v3.1's by default).
    @Test func bothFollowTheKernelVersionGiven() throws {
        let account = try Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
        let request = try String(contentsOfFile: Self.example, encoding: .utf8).replacingOccurrences(of: #""accountKind": "erc7579""#, with: #""accountKind": "kernel""#)
        let j = try JSONValue(parsing: try Command.sessionAgent("inspect", "-", "--session-key", Self.key, "--kernel-version", "0.3.3", "--json", stdin: request).stdout)
        let multichain = try Bytes32(hex: try j.string("multichainDigest"))
        #expect(j["kernelVersion"] == "0.3.3")
        #expect(j["ownerDigest"]?.stringValue == AccountKind.kernel.validatorHash(of: multichain, account: account, chainId: 11155111, kernelVersion: "0.3.3").hex)

        // The worked example's ENABLE signature, its owner's signature made again as a Kernel
        // v3.3 account's owner's.
        let c = try Fixtures.json("cases/01-enable-then-use.json")
        guard case .enable(let mode, var enable, let sessionSignature) = try SessionSignature(decoding: try Hex.decode(try c["userOps"]!.arrayValue![0]["userOp"]!.string("signature"))) else {
            Issue.record("not an ENABLE signature"); return
        }
        let owner = Secp256k1.PrivateKey.generate()
        let wrapped = AccountKind.kernel.validatorHash(of: EnableDigest.multichainDigest(enable.hashesAndChainIds), account: account,
                                                       chainId: enable.hashesAndChainIds[0].chainId, kernelVersion: "0.3.3")
        enable.permissionEnableSig = AccountKind.kernel.erc1271Signature(validator: SmartSessionAddresses.ownableValidator,
                                                                          signature: OwnableValidatorConfig.combine([owner.sign(digest: wrapped)]))
        let signature = Hex.encode(SessionSignature.enable(mode: mode, enableSession: enable, signature: sessionSignature).encoded)
        func decoded(_ version: [String]) throws -> JSONValue {
            let arguments = ["decode-signature", signature, "--account", account.checksummed, "--account-kind", "kernel", "--json"] + version
            return try JSONValue(parsing: try Command.run(Command.sessionAgent, arguments).stdout)
        }
        func signers(_ version: [String]) throws -> [JSONValue]? { try decoded(version)["ownerSigners"]?.arrayValue }
        #expect(try signers(["--kernel-version", "0.3.3"]) == [.string(owner.address.checksummed)])
        #expect(try decoded(["--kernel-version", "0.3.3"])["review"]?["kernelVersion"] == "0.3.3")
        let byDefault = try signers([])
        #expect(byDefault?.count == 1 && byDefault != [.string(owner.address.checksummed)])

        // Marked replayable (v3.2 and later), the signature is over the wrapping for chain id 0.
        let everyChain = AccountKind.kernel.validatorHash(of: EnableDigest.multichainDigest(enable.hashesAndChainIds), account: account, chainId: 0, kernelVersion: "0.3.3")
        enable.permissionEnableSig = AccountKind.kernel.erc1271Signature(validator: SmartSessionAddresses.ownableValidator,
                                                                          signature: AccountKind.kernelReplayable.bytes + OwnableValidatorConfig.combine([owner.sign(digest: everyChain)]))
        let replayable = Hex.encode(SessionSignature.enable(mode: mode, enableSession: enable, signature: sessionSignature).encoded)
        let decodedReplayable = try JSONValue(parsing: try Command.run(Command.sessionAgent, ["decode-signature", replayable, "--account", account.checksummed,
                                                                                             "--account-kind", "kernel", "--kernel-version", "0.3.3", "--json"]).stdout)
        #expect(decodedReplayable["ownerSigners"] == .array([.string(owner.address.checksummed)]) && decodedReplayable["kernelReplayable"] == .bool(true), "\(decodedReplayable)")
        let twoChains = #"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "accountKind": "kernel", "chains": [11155111, 1], "permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "functions": ["ping()"], "maxUses": 2}]}"#
        let both = try JSONValue(parsing: try Command.sessionAgent("inspect", "-", "--session-key", Self.key, "--kernel-version", "0.3.3", "--json", stdin: twoChains).stdout)
        #expect(both["ownerDigest"]?.stringValue == AccountKind.kernel.validatorHash(of: try Bytes32(hex: try both.string("multichainDigest")), account: account, chainId: 0,
                                                                                     kernelVersion: "0.3.3").hex, "\(both)")
    }
}

@Suite("session-agent rules test")
struct RulesCommandTests {
    /// `decode-message-signature`: the parts of a session key's ERC-1271 signature, whether it is
    /// for a given document, and who signed it over the account's domain.
    @Test func decodeMessageSignatureExplainsAndRecovers() throws {
        let vector = try Fixtures.json("cases/13-erc7739-session-1271.json")
        let honest = try #require(vector["erc1271Checks"]?.arrayValue?.first)
        let parts = try JSONValue(parsing: try Command.sessionAgent("decode-message-signature", try honest.string("signature"), "--json").stdout)
        #expect(parts["permissionId"]?.stringValue == (try vector.string("permissionId")) && parts["contentsDescription"] == "Permit(bytes32 stuff)Permit", "\(parts)")
        #expect(parts["hash"]?.stringValue == (try honest.string("hash")), "\(parts)")
        #expect(try Command.sessionAgent("decode-message-signature", try honest.string("signature")).stdout.contains(#""Permit(bytes32 stuff)Permit" (Permit, explicit)"#))

        let mail = #"{"types": {"Mail": [{"name": "to", "type": "address"}]}, "primaryType": "Mail", "domain": {"name": "Ether Mail"}, "message": {"to": "0x000000000000000000000000000000000000bEEF"}}"#
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("decode-message-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("mail.json")
        try mail.write(to: file, atomically: true, encoding: .utf8)
        let message = try NestedTypedData(try TypedData(parsing: mail), explicit: false)
        let account = try Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
        let key = try Secp256k1.PrivateKey(hex: "0x" + String(repeating: "11", count: 32))
        let digest = message.digest(in: AccountDomain(name: "Test Account", version: "1.0.0", chainId: 8453, verifyingContract: account))
        let signature = AccountKind.nexus.erc1271Signature(validator: SmartSessionAddresses.smartSession,
                                                            signature: message.signature(permissionId: .zero, sessionSignature: key.sign(digest: digest).bytes))
        let full = try Command.sessionAgent("decode-message-signature", signature.hex, "--account-kind", "nexus", "--typed-data", file.path, "--account", account.checksummed,
                                            "--chain-id", "8453", "--account-name", "Test Account", "--account-version", "1.0.0")
        #expect(full.status == 0 && full.stdout.contains("the signature is for this document") && full.stdout.contains("digest         \(digest.hex)")
                && full.stdout.contains("session signer \(key.address.checksummed)") && full.stdout.contains("(Mail, implicit)"), "\(full)")
        let otherVersion = try Command.sessionAgent("decode-message-signature", signature.hex, "--account", account.checksummed, "--chain-id", "8453",
                                                    "--account-name", "Test Account", "--account-version", "1.0.1")
        #expect(otherVersion.status == 0 && !otherVersion.stdout.contains(key.address.checksummed), "\(otherVersion)")
        try mail.replacingOccurrences(of: "Ether Mail", with: "Other Mail").write(to: file, atomically: true, encoding: .utf8)
        #expect(try Command.sessionAgent("decode-message-signature", signature.hex, "--typed-data", file.path).stdout.contains("the signature is NOT for this document"))
        let half = try Command.sessionAgent("decode-message-signature", signature.hex, "--account", account.checksummed)
        #expect(half.status == 1 && half.stderr.contains("go together"), "\(half)")
        let elsewhere = try Command.sessionAgent("decode-message-signature", AccountKind.nexus.erc1271Signature(validator: account, signature: Array(signature[20...])).hex)
        #expect(elsewhere.status == 1 && elsewhere.stderr.contains("not to SmartSession"), "\(elsewhere)")
        #expect(try Command.sessionAgent("decode-message-signature", "0x1234").stderr.contains("shorter than the validator address"))
    }

    @Test func dryRunPrintsTheDecisionAndTheTrace() throws {
        let rules = Oracle.packageRoot.appendingPathComponent("docs/examples/rules.toml").path
        let r = try Command.sessionAgent("rules", "test", InspectTests.example, "--rules", rules, "--uid", "1000", "--now", "1764096000")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("decision: approve\nreason: USDC payouts"))
        #expect(r.stdout.contains("[ok] payments bot: max_token_amounts"))
        #expect(r.stdout.contains("[ok] payments bot: max_live_sessions: the client holds 0 live sessions (fewer than 5 allowed)"), "\(r.stdout)")
        let full = try Command.sessionAgent("rules", "test", InspectTests.example, "--rules", rules, "--uid", "1000", "--now", "1764096000", "--live-sessions", "5")
        #expect(full.stdout.hasPrefix("decision: ask") && full.stdout.contains("[no] payments bot: max_live_sessions: the client holds 5 live sessions"), "\(full.stdout)")
        #expect(try Command.sessionAgent("rules", "test", InspectTests.example, "--rules", rules, "--live-sessions", "-1").status != 0)
        let daily = try Command.sessionAgent("rules", "test", InspectTests.example, "--rules", rules, "--uid", "1000", "--now", "1764096000", "--sessions-last-day", "10")
        #expect(daily.stdout.hasPrefix("decision: ask") && daily.stdout.contains("[no] payments bot: max_sessions_per_day: the client was given 10 sessions in the last 24 hours (fewer than 10 allowed)"), "\(daily.stdout)")
        #expect(try Command.sessionAgent("rules", "test", InspectTests.example, "--rules", rules, "--sessions-last-day", "-1").status != 0)
        let j = try JSONValue(parsing: try Command.sessionAgent("rules", "test", InspectTests.example, "--rules", rules, "--uid", "5", "--json").stdout)
        // The file tested is named as the agent names the rules it puts in force: as sha256sum does.
        let sha256 = String(try Command.run(URL(fileURLWithPath: "/usr/bin/sha256sum"), [rules]).stdout.prefix(64))
        #expect(j["decision"] == "ask" && j["rulesSHA256"] == .string(sha256))
        #expect(r.stdout.hasSuffix("\nrules: \(rules), sha256 \(sha256)\n"), "\(r.stdout)")
        let bad = try Command.sessionAgent("rules", "test", InspectTests.example, "--rules", "/dev/null/none")
        #expect(bad.status == 1 && bad.stderr.contains("cannot read"))
    }
}
