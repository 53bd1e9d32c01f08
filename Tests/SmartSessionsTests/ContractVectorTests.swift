import EthereumCore
import SmartSessions
import Testing
import TestSupport

/// Every value below was computed by the deployed contracts (Fixtures/VECTORS.md).
@Suite("Ids, digests and encodings equal what the deployed contracts compute")
struct ContractVectorTests {
    static let records = Fixtures.sessionRecords

    func mode(_ record: JSONValue) throws -> SmartSessionMode {
        try #require(SmartSessionMode(rawValue: UInt8(try record.string("mode"))!))
    }

    @Test func recordsAreThere() { #expect(Self.records.count == 200) }

    @Test func permissionIdsActionIdsAndPermissionHashes() throws {
        for record in Self.records {
            let session = try Session(json: record["session"]!)
            let context = "record \(record["index"]!.serialized)"
            #expect(session.permissionId == (try record.bytes32("permissionId")), "\(context)")
            let derived = record["derived"]!
            #expect(try session.actions.map(\.actionId) == derived["actionIds"]!.arrayValue!.map { try Bytes32(hex: $0.stringValue!) }, "\(context)")
            let flags = session.signedFlags(mode: try mode(record))
            #expect(.bool(flags.permitGenericPolicy) == derived["permitGenericPolicy"], "\(context)")
            #expect(.bool(flags.permitAdminAccess) == derived["permitAdminAccess"], "\(context)")
            #expect(.bool(flags.ignoreSecurityAttestations) == derived["ignoreSecurityAttestations"], "\(context)")
            #expect(EnableDigest.hashPermissions(session, mode: try mode(record)) == (try derived.bytes32("hashPermissions")), "\(context)")
            #expect(try Session(json: session.json) == session, "JSON round trip, \(context)")
        }
    }

    @Test func sessionDigestsInBothModesAndMultichainDigests() throws {
        for record in Self.records {
            let session = try Session(json: record["session"]!)
            let account = try Address(try record.string("account"))
            let smartSession = try Address(try record.string("smartSession"))
            let context = "record \(record["index"]!.serialized)"
            let digests = record["sessionDigests"]!
            let atNonce = try UInt256(parsing: try digests["atNonce"]!.string("nonce"))
            for (mode, key) in [(SmartSessionMode.enable, "ENABLE"), (.unsafeEnable, "UNSAFE_ENABLE")] {
                #expect(EnableDigest.sessionDigest(session, account: account, mode: mode, nonce: 0, smartSession: smartSession)
                        == (try digests["nonce0"]!.bytes32(key)), "\(context) \(key)")
                #expect(EnableDigest.sessionDigest(session, account: account, mode: mode, nonce: atNonce, smartSession: smartSession)
                        == (try digests["atNonce"]!.bytes32(key)), "\(context) \(key)")
            }
            let nonce = try UInt256(parsing: try record.string("nonce"))
            let digest = EnableDigest.sessionDigest(session, account: account, mode: try mode(record), nonce: nonce, smartSession: smartSession)
            #expect(digest == (try record.bytes32("sessionDigest")), "\(context)")
            let chains = record["chainIds"]!.arrayValue!.map { UInt64($0.stringValue!)! }
            #expect(EnableDigest.multichainDigest(chains.map { ChainDigest(chainId: $0, sessionDigest: digest) }) == (try record.bytes32("multichainDigest")), "\(context)")
        }
    }

    /// The ENABLE user operations the contracts validated: our decoder reads them, our
    /// compressor reproduces the SDK's bytes, and the owner signatures recover to the owners.
    @Test func enableSignaturesDecodeRecompressAndVerify() throws {
        for record in Self.records {
            let context = "record \(record["index"]!.serialized)"
            let enable = record["enableUserOp"]!
            let signatureBytes = try enable["userOp"]!.bytes("signature")
            let decoded = try SessionSignature(decoding: signatureBytes)
            guard case .enable(let mode, let enableSession, let sessionSignature) = decoded else {
                Issue.record("not an ENABLE signature, \(context)")
                continue
            }
            let session = try Session(json: record["session"]!)
            #expect(mode == (try self.mode(record)), "\(context)")
            #expect(enableSession.sessionToEnable == session, "\(context)")
            #expect(Int(enableSession.chainDigestIndex) == Int(try enable.string("chainDigestIndex")), "\(context)")
            #expect(enableSession.hashesAndChainIds.map { String($0.chainId) } == record["chainIds"]!.arrayValue!.map { $0.stringValue! }, "\(context)")
            #expect(decoded.encoded == signatureBytes, "byte-identical re-encoding (SDK compressor), \(context)")

            let digest = EnableDigest.multichainDigest(enableSession.hashesAndChainIds)
            #expect(digest == (try record.bytes32("multichainDigest")), "\(context)")
            let (validator, ownerSignatures) = try AccountKind.erc7579Reference.parseERC1271Signature(enableSession.permissionEnableSig)
            #expect(validator == SmartSessionAddresses.ownableValidator, "\(context)")
            let keys = record["keys"]!
            let owners = try OwnableValidatorConfig(threshold: Int(try keys.string("ownerThreshold"))!,
                                                    owners: try keys["owners"]!.arrayValue!.map { try Address($0.stringValue!) })
            #expect(owners.isValid(hash: digest, signatures: ownerSignatures), "\(context)")
            if session.sessionValidator == SmartSessionAddresses.ownableValidator {
                let sessionKeys = try OwnableValidatorConfig(initData: session.sessionValidatorInitData)
                #expect(sessionKeys.isValid(hash: try enable.bytes32("userOpHash"), signatures: sessionSignature), "\(context)")
            }
        }
    }

    @Test func everyKnownPolicyDecodesAndReencodes() throws {
        var decodedCount = 0
        for record in Self.records {
            let session = try Session(json: record["session"]!)
            let policies = session.userOpPolicies + session.actions.flatMap(\.actionPolicies) + session.erc7739Policies.erc1271Policies
            for p in policies {
                let deployment = try #require(PolicyRegistry.deployment(at: p.policy), "\(p.policy) is in the registry")
                let config = try PolicyConfig.decode(deployment.kind, initData: p.initData)
                decodedCount += 1
                let ignored = PolicyConfig.ignoredBytes(deployment.kind, initData: p.initData)
                if deployment.kind != .sudo {
                    #expect(config.initData == Array(p.initData.prefix(p.initData.count - ignored)), "\(deployment.kind) \(p.initData.hex)")
                }
            }
        }
        #expect(decodedCount == 1335)   // every policy of the 200 records
    }

    /// Init data a policy's initializer reverts on is refused by name, each rule at its edge:
    /// a session carrying it could never be enabled, and its review would describe nothing real.
    @Test func initDataTheInitializersRevertOnIsRefused() throws {
        let usdc = try Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"), dai = try Address("0x6B175474E89094C44Da98b954EedeAC495271d0F")
        let rule = ParamRule(condition: .lessThanOrEqual, offset: 32, ref: UInt256(5).word)
        func arg(root: UInt8 = 0, rules: Int = 1, _ nodes: [ArgNode]) -> [UInt8] {
            PolicyConfig.arg(ArgPolicyConfig(valueLimitPerUse: 0, rootNodeIndex: root, rules: Array(repeating: rule, count: rules), nodes: nodes)).initData
        }
        func uniAction(rules: Int) -> [UInt8] { PolicyConfig.uniAction(UniActionConfig(valueLimitPerUse: 0, rules: Array(repeating: rule, count: rules))).initData }
        var seventeen = uniAction(rules: 16)
        seventeen[63] = 17   // the rule count, the second word
        var badCondition = uniAction(rules: 1)
        badCondition[95] = 7   // the first rule's condition, the third word
        let cases: [(PolicyKind, [UInt8], String)] = [
            (.timeFrame, PolicyConfig.timeFrame(validUntil: 10, validAfter: 11).initData, "validAfter (11) is later than validUntil (10)"),
            (.usageLimit, PolicyConfig.usageLimit(0).initData, "a usage limit of 0"),
            (.valueLimit, PolicyConfig.valueLimit(0).initData, "a value limit of 0"),
            (.erc20SpendingLimit, try ABI.encode([.array([.address(usdc), .address(dai)]), .array([.uint(1)])], as: [.array(.address), .array(.uint256)]), "2 tokens but 1 limits"),
            (.erc20SpendingLimit, PolicyConfig.erc20SpendingLimit([TokenLimit(token: .zero, limit: 1)]).initData, "the zero address as a token"),
            (.erc20SpendingLimit, PolicyConfig.erc20SpendingLimit([TokenLimit(token: usdc, limit: 1), TokenLimit(token: dai, limit: 0)]).initData, "a limit of 0 for \(dai)"),
            (.uniAction, seventeen, "17 rules; the contract holds at most 16"),
            (.uniAction, badCondition, "condition 7 is not a ParamCondition"),
            (.contractWhitelist, [], "must be a non-empty list of 20-byte addresses"),
            (.contractWhitelist, usdc.bytes + Address.zero.bytes, "the zero address as a target"),
            (.simpleGas, PolicyConfig.simpleGas(gasLimit: 1, costLimit: 0).initData, "must both be non-zero"),
            (.simpleGas, PolicyConfig.simpleGas(gasLimit: 0, costLimit: 1).initData, "must both be non-zero"),
            (.arg, arg(root: 1, [.rule(0)]), "root node 1 is out of bounds"),
            (.arg, arg(rules: 129, [.rule(0)]), "more than 128 rules"),
            (.arg, arg(Array(repeating: .rule(0), count: 256)), "more than 255 nodes"),
            (.arg, arg([.rule(1)]), "node 0 refers to rule 1 of 1"),
            (.arg, arg([.not(1)]), "node 0 has child 1 out of bounds"),
            (.arg, arg(root: 1, [.rule(0), .and(0, 2)]), "node 1 has a child out of bounds"),
            (.arg, arg(root: 1, [.rule(0), .or(2, 0)]), "node 1 has a child out of bounds"),
        ]
        for (kind, initData, message) in cases {
            do {
                let config = try PolicyConfig.decode(kind, initData: initData)
                Issue.record("\(kind) took \(config)")
            } catch {
                #expect(error.message.contains(message) && error.reason == "invalid_policy", "\(kind): \(error)")
            }
        }
        // Just within each rule.
        #expect(try PolicyConfig.decode(.timeFrame, initData: PolicyConfig.timeFrame(validUntil: 0, validAfter: 11).initData) == .timeFrame(validUntil: 0, validAfter: 11))
        #expect(try PolicyConfig.decode(.timeFrame, initData: PolicyConfig.timeFrame(validUntil: 11, validAfter: 11).initData) == .timeFrame(validUntil: 11, validAfter: 11))
        guard case .uniAction(let sixteen) = try PolicyConfig.decode(.uniAction, initData: uniAction(rules: 16)) else { Issue.record("not UniAction"); return }
        #expect(sixteen.rules.count == 16)
        _ = try PolicyConfig.decode(.arg, initData: arg(rules: 128, Array(repeating: .rule(127), count: 254) + [.and(0, 253)]))
        #expect(PolicyConfig.ignoredBytes(.timeFrame, initData: [UInt8](repeating: 0, count: 13)) == 1)
        // notEqual compares as the contract does, zero included.
        let notZero = ParamRule(condition: .notEqual, offset: 0, ref: .zero)
        #expect(!notZero.accepts(.zero) && notZero.accepts(UInt256.one.word))
    }
}

@Suite("The worked example of the spec, end to end")
struct WorkedExampleTests {
    static let owner = try! Secp256k1.PrivateKey(hex: "0x" + String(repeating: "22", count: 32))
    static let sessionKey = try! Secp256k1.PrivateKey(hex: "0x" + String(repeating: "11", count: 32))
    static let account = try! Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
    static let usdc = try! Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")

    static var session: Session {
        let validator = try! OwnableValidatorConfig(threshold: 1, owners: [sessionKey.address])
        return Session(
            sessionValidator: SmartSessionAddresses.ownableValidator, sessionValidatorInitData: validator.initData,
            salt: UInt256.one.word,
            userOpPolicies: [PolicyConfig.timeFrame(validUntil: 1_767_225_600, validAfter: 1_735_689_600).policyData],
            actions: [
                ActionData(actionTargetSelector: Selector(rawValue: 0xa905_9cbb), actionTarget: usdc, actionPolicies: [
                    PolicyConfig.erc20SpendingLimit([TokenLimit(token: usdc, limit: 100_000_000)]).policyData,
                    PolicyConfig.usageLimit(10).policyData,
                ]),
                ActionData(actionTargetSelector: .valueTransfer, actionTarget: try! Address("0x000000000000000000000000000000000000bEEF"),
                           actionPolicies: [PolicyConfig.valueLimit(100_000_000_000_000_000).policyData]),
            ],
            permitERC4337Paymaster: true)
    }

    @Test func idsAndDigests() throws {
        let s = Self.session
        let pid = s.permissionId
        #expect(pid.hex == "0x46a10c2b2f9c9af0109107cb6de426a5e28c0729ae0d1239e5431a2baeb7b521")
        #expect(s.actions[0].actionId.hex == "0xbc0bb61e2edb8beaf1cde632a9be147f794fffea83638bd2ba890228ca6d31b5")
        #expect(s.actions[1].actionId.hex == "0x5dc53c38585445552ada7e5e3484b47b7131a190ddeff368410f5132fc405e66")
        #expect(SessionIds.configId(account: Self.account, id: pid).hex == "0x0633c9e5c19bc3f501683b4bd7b37e978381106683f7bf019643ac0a3639cfca")
        let actionPolicyId = SessionIds.actionPolicyId(permissionId: pid, actionId: s.actions[0].actionId)
        #expect(actionPolicyId.hex == "0xf325d941b640c8e49ccbc4c28c41694a6bc68153ea9759792eeb176fcfab11d5")
        #expect(SessionIds.configId(account: Self.account, id: actionPolicyId).hex == "0x18d80530fa35b71c7a44d9247389f0982201c1c1b7c0063131f2b0023e356ef0")
        #expect(SessionIds.configId(account: Self.account, id: SessionIds.actionPolicyId(permissionId: pid, actionId: s.actions[1].actionId)).hex
                == "0xd2cafbe187ed97d8b39e97122c15ed0f3242d920cae508aeb807fb5f37600742")
        let erc1271 = SessionIds.erc1271PolicyId(permissionId: pid)
        #expect(erc1271.hex == "0x472321a90aef223998e14065d7458d2cab5c245cb1107286b8a790127c65e69b")
        #expect(SessionIds.configId(account: Self.account, id: erc1271).hex == "0xea18092ae547882d649978724770cb1af55030639e33a5c66d8d4ee1eb39d7be")
        #expect(SessionIds.fallbackActionId.hex == "0xd884b6afa19f8ace90a388daca691e4e28f20cdac5aeefd46ad8bd1c074d28cf")
        #expect(SessionIds.smartSessionCallActionId.hex == "0x986126569d6396d837d7adeb3ca726199afaf83546f38726e6f331bb92d8e9d6")

        #expect(EnableDigest.hashPermissions(s, mode: .enable).hex == "0x20c1e0c8b95a7ea3572ec202745cb38c6a9fe3b5ef557ff38be5a40fd7d7c178")
        let enable = EnableDigest.sessionDigest(s, account: Self.account, mode: .enable, nonce: 0)
        #expect(enable.hex == "0x61f6eb6d6174a8b85da4919b381a17a41f376c2242d2f6289d07905ed41edf02")
        #expect(EnableDigest.sessionDigest(s, account: Self.account, mode: .unsafeEnable, nonce: 0).hex == "0x1ad97f0e28638e1f22a3aae369cf180fc9883f9d293d8120f583e706e53af0a7")
        #expect(EnableDigest.multichainDigest([ChainDigest(chainId: 11_155_111, sessionDigest: enable)]).hex == "0x73f8de6a9feaf72d8b98a3a9f275900d6747c0a50b3b104d50d59b6a9720bb8d")
        #expect(EnableDigest.multichainDigest([ChainDigest(chainId: 11_155_111, sessionDigest: enable), ChainDigest(chainId: 84532, sessionDigest: enable)]).hex
                == "0x452bc19f184e8772ee616b2897431d2c6c747f4a77eb69a557c67bbd7d15e8b5")
    }

    @Test func useAndEnableSignaturesAndInstallData() throws {
        let s = Self.session
        let userOpHash = Keccak256.hash(utf8: "example-userop")
        let sessionSig = Self.sessionKey.sign(digest: userOpHash).bytes
        let use = SessionSignature.use(permissionId: s.permissionId, signature: sessionSig)
        #expect(use.encoded.hex == "0x0046a10c2b2f9c9af0109107cb6de426a5e28c0729ae0d1239e5431a2baeb7b521a1f3ed90cba2de383e95f458bbd4a3697748cfebaafc7b5bbbd167d5f53df1cf62e23ad2cb81289bda8c0bfe52632530ebb7d5cd2b6607692239d0aa764409c91b")
        #expect(try SessionSignature(decoding: use.encoded) == use)

        let digest = EnableDigest.sessionDigest(s, account: Self.account, mode: .enable, nonce: 0)
        let chains = [ChainDigest(chainId: 11_155_111, sessionDigest: digest)]
        let ownerSig = Self.owner.sign(digest: EnableDigest.multichainDigest(chains)).bytes
        let permissionEnableSig = AccountKind.erc7579Reference.erc1271Signature(validator: SmartSessionAddresses.ownableValidator, signature: ownerSig)
        let enableSession = EnableSession(chainDigestIndex: 0, hashesAndChainIds: chains, sessionToEnable: s, permissionEnableSig: permissionEnableSig)
        let payload = SessionSignature.enablePayload(enableSession, signature: sessionSig)
        #expect(payload.count == 2240)
        #expect(Keccak256.hash(payload).hex == "0xb4338c7746e93e8d0f64e85ee29a3e23f28ef1669bcb1d9c5ec4caabe9786157")
        let compressed = FastLZ.compress(payload)
        #expect(compressed.count == 609)
        #expect(Keccak256.hash(compressed).hex == "0x11ecea77330f7dd5cf784abbcff135b590c56aafc04be682555bdf9f7dacf444")
        let enable = SessionSignature.enable(mode: .enable, enableSession: enableSession, signature: sessionSig)
        #expect(enable.encoded.count == 610)
        #expect(Keccak256.hash(enable.encoded).hex == "0x7240b9015385112897f20ba0450719a68b898d80f2b1966d647a47ef866ef503")
        #expect(try SessionSignature(decoding: enable.encoded) == enable)

        let onInstall = try ModuleCalls.onInstallData(sessions: [s])
        #expect(onInstall.count == 1793)
        #expect(Keccak256.hash(onInstall).hex == "0x4bab775eee6675a6ffe4ee67544e9a5a5329bd96b9dcecb4a4ed1e8acf4aae85")
        let back = try #require(try ModuleCalls.decodeOnInstallData(onInstall))
        #expect(back.mode == .enable && back.sessions == [s])
    }

    @Test func fastLZSmallVectorAndUniActionInit() throws {
        let input = UInt256(64).bigEndianBytes + UInt256.one.bigEndianBytes + [0xaa, 0xbb, 0xcc]
        #expect(FastLZ.compress(input).hex == "0x010000e014010040e0141d05000001aabbcc")
        #expect(try FastLZ.decompress(FastLZ.compress(input)) == input)

        // module-sdk's unit test: valueLimitPerUse 1e18, three rules, thirteen zero rules.
        let usdcMainnet = try Address("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")
        let config = UniActionConfig(valueLimitPerUse: 1_000_000_000_000_000_000, rules: [
            ParamRule(condition: .equal, offset: 4, isLimited: true, ref: usdcMainnet.word, limit: 5, used: 2),
            ParamRule(condition: .lessThan, offset: 68, ref: try Bytes32(hex: "0x00000000000000000000000000000000000000000000005af3107a4000000000")),
            ParamRule(condition: .inRange, offset: 100, isLimited: true, ref: UInt256(0x162e).word, limit: 10, used: 3),
        ])
        let initData = PolicyConfig.uniAction(config).initData
        #expect(initData.count == 3136)
        #expect(Keccak256.hash(initData).hex == "0x46327ae793022bb582f49148d188d6b6bb73ef6b032da32ddc0129109806f8d9")
        #expect(try PolicyConfig.decode(.uniAction, initData: initData) == .uniAction(config))
    }
}
