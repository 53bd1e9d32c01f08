import EthereumCore
import SmartSessions
import Testing
import TestSupport

@Suite("FastLZ is byte-identical to the SDK compressor and decompresses strictly")
struct FastLZTests {
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func againstTheJavaScriptSemanticsPort() throws {
        let cases = try Oracle.cases("fastlz", count: 1000)
        #expect(cases.count == 1000)
        for c in cases {
            let input = try c.bytes("input")
            let compressed = FastLZ.compress(input)
            #expect(compressed == (try c.bytes("compressed")), "length \(input.count), seed \(Oracle.seed)")
            #expect(try FastLZ.decompress(compressed) == input)
        }
    }

    @Test func malformedStreams() throws {
        #expect(throws: FastLZ.DecompressionError.self) { try FastLZ.decompress([0x05, 1, 2]) }          // truncated literals
        #expect(throws: FastLZ.DecompressionError.self) { try FastLZ.decompress([0x20, 0x00]) }          // reference before start
        #expect(throws: FastLZ.DecompressionError.self) { try FastLZ.decompress([0x00, 7, 0x20]) }       // truncated match
        #expect(throws: FastLZ.DecompressionError.self) { try FastLZ.decompress([0x00, 7, 0xe0, 0x01]) } // truncated long match
        // 1 literal then long matches: bounded output.
        let bomb: [UInt8] = [0x00, 7] + Array(repeating: [0xe0, 0xff, 0x00], count: 1000).flatMap { $0 }
        #expect(throws: FastLZ.DecompressionError.self) { try FastLZ.decompress(bomb, maximumSize: 4096) }
        #expect(try FastLZ.decompress(bomb).count == 1 + 1000 * 264)
        // The limit holds to the byte, for a stream ending in a literal run and for one ending
        // in a match (one literal 7, then 4 bytes copied from 1 back).
        for compressed in [FastLZ.compress(Array(0..<40)), [0x00, 7, 0x40, 0x00]] {
            let size = try FastLZ.decompress(compressed).count
            #expect(try FastLZ.decompress(compressed, maximumSize: size).count == size)
            #expect(throws: FastLZ.DecompressionError.self) { try FastLZ.decompress(compressed, maximumSize: size - 1) }
        }
        #expect(try FastLZ.decompress([0x00, 7, 0x40, 0x00]) == [7, 7, 7, 7, 7])
    }

    /// Random streams, and the contracts' own ENABLE signatures damaged, both compressed and
    /// before compression: each decodes or is refused with an error, never a trap. The seed is
    /// the oracle's (`ORACLE_SEED` replays a failure).
    @Test func damagedStreamsAndSignaturesAreRefusedNotCrashedOn() throws {
        var random = SplitMix64(seed: Oracle.seed)
        for _ in 0..<3000 {
            let junk = (0..<Int.random(in: 0...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = try? FastLZ.decompress(junk, maximumSize: 1 << 16)
            _ = try? SessionSignature(decoding: [UInt8.random(in: 0...2, using: &random)] + junk)
        }
        func damaged(_ bytes: [UInt8]) -> [UInt8] {
            var bytes = bytes
            for _ in 0..<Int.random(in: 1...4, using: &random) where !bytes.isEmpty {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &random), at: at)
                default: bytes[at] ^= 0x80
                }
            }
            return bytes
        }
        var refused = 0
        for record in Fixtures.sessionRecords.prefix(60) {
            let signature = try record["enableUserOp"]!["userOp"]!.bytes("signature")
            let payload = try FastLZ.decompress(Array(signature.dropFirst()))
            for _ in 0..<20 {
                do { _ = try SessionSignature(decoding: damaged(signature)) } catch { refused += 1 }
                do { _ = try SessionSignature(decoding: [signature[0]] + FastLZ.compress(damaged(payload))) } catch { refused += 1 }
            }
        }
        #expect(refused > 0, "no damage was refused: the damage does nothing (seed \(Oracle.seed))")
    }
}

@Suite("userOp.signature and account encodings round-trip and reject malformed input")
struct SignatureEncodingTests {
    @Test func malformedSignatures() {
        for bad: [UInt8] in [[], [3], [0] + Array(repeating: 1, count: 31), [1, 0x05, 1], [1] + FastLZ.compress([1, 2, 3])] {
            #expect(throws: SmartSessionError.self, "\(bad.hex)") { try SessionSignature(decoding: bad) }
        }
    }

    @Test func accountRoutingPrefixes() throws {
        let validator = SmartSessionAddresses.ownableValidator
        let sig = [UInt8](repeating: 7, count: 65)
        for kind in AccountKind.allCases {
            let wrapped = kind.erc1271Signature(validator: validator, signature: sig)
            #expect(wrapped.count == (kind == .kernel ? 86 : 85))
            let (v, s) = try kind.parseERC1271Signature(wrapped)
            #expect(v == validator && s == sig)
        }
        #expect(throws: SmartSessionError.self) { try AccountKind.kernel.parseERC1271Signature([0x00] + validator.bytes) }
        let digest = Keccak256.hash(utf8: "d")
        let account = try Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
        #expect(AccountKind.nexus.validatorHash(of: digest, account: account, chainId: 1, kernelVersion: "0.3.3") == digest)
        // Kernel's wrapping is its EIP-712 domain over Kernel(bytes32 hash), computed here by the
        // generic typed-data engine as an independent check (and by eth-account for random
        // versions in IndependentDigestTests).
        for version in [AccountKind.kernelV31, "0.3.3"] {
            let typed = try TypedData(parsing: """
                {"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
                          "Kernel":[{"name":"hash","type":"bytes32"}]},
                 "primaryType":"Kernel","domain":{"name":"Kernel","version":"\(version)","chainId":8453,"verifyingContract":"\(account.checksummed)"},
                 "message":{"hash":"\(digest.hex)"}}
                """)
            #expect(AccountKind.kernel.validatorHash(of: digest, account: account, chainId: 8453, kernelVersion: version) == (try typed.digest))
        }
        // Kernel v3.2 and later take one owner signature for every chain, marked as ZeroDev's SDK
        // marks it (MAGIC_VALUE_SIG_REPLAYABLE) and checked over the wrapping for chain id 0.
        #expect(AccountKind.kernelReplayable.hex == "0x0555ad2729e8da1777a4e5020806f8bf7601c3db6bfe402f410a34958363a95a")
        for (version, everyChain) in [("0.3.0-beta", false), ("0.3.1", false), ("0.3.2", true), ("0.3.3", true), ("0.3.10", true), ("0.4.0", false),
                                      ("0.3.2-beta", false), ("0.3.+2", false), ("0.3.", false), ("1.3.3", false), ("0.3.3.1", false)] {
            #expect(AccountKind.kernelSignsForEveryChain(version) == everyChain, "\(version)")
        }
        let two: [UInt64] = [8453, 1]
        #expect(AccountKind.kernel.ownerDigest(digest, account: account, chainIds: two, kernelVersion: "0.3.3")
                == AccountKind.kernel.validatorHash(of: digest, account: account, chainId: 0, kernelVersion: "0.3.3"))
        #expect(AccountKind.kernel.ownerDigest(digest, account: account, chainIds: [8453], kernelVersion: "0.3.3")
                == AccountKind.kernel.validatorHash(of: digest, account: account, chainId: 8453, kernelVersion: "0.3.3"))
        #expect(AccountKind.kernel.permissionEnableSig(validator: validator, signature: sig, chainIds: two, kernelVersion: "0.3.3")
                == [0x01] + validator.bytes + AccountKind.kernelReplayable.bytes + sig)
        let parsed = try AccountKind.kernel.parsePermissionEnableSig([0x01] + validator.bytes + AccountKind.kernelReplayable.bytes + sig)
        #expect(parsed.validator == validator && parsed.signature == sig && parsed.everyChain)
        #expect(try AccountKind.nexus.parsePermissionEnableSig(validator.bytes + AccountKind.kernelReplayable.bytes + sig).everyChain == false)
        for (kind, chainIds, version) in [(AccountKind.kernel, [UInt64(8453)], "0.3.3"), (.kernel, two, "0.3.1"), (.nexus, two, "0.3.3")] {
            #expect(kind.permissionEnableSig(validator: validator, signature: sig, chainIds: chainIds, kernelVersion: version)
                    == kind.erc1271Signature(validator: validator, signature: sig))
        }
    }

    @Test func moduleCalls() throws {
        let s = WorkedExampleTests.session
        #expect(Array(ModuleCalls.enableSessions([s]).prefix(4)) == [0x21, 0x71, 0x24, 0x07])
        #expect(try ModuleCalls.decodeEnableSessions(ModuleCalls.enableSessions([s, s])) == [s, s])
        #expect(Array(ModuleCalls.removeSession(s.permissionId).prefix(4)) == [0xf8, 0x67, 0xb0, 0x8e])
        #expect(Array(ModuleCalls.revokeEnableSignature(s.permissionId).prefix(4)) == [0xf9, 0xb8, 0x03, 0x69])
        let install = try ModuleCalls.installSmartSession(sessions: [s])
        #expect(Array(install.prefix(4)) == (try ABIFunction(parsing: "installModule(uint256,address,bytes)").selector))
        #expect(try ModuleCalls.installSmartSession().count == 4 + 32 * 4)
        #expect(try ModuleCalls.onInstallData(sessions: []) == [])
        #expect(throws: SmartSessionError.self) { try ModuleCalls.onInstallData(sessions: [s], mode: .use) }
        #expect(throws: SmartSessionError.self) { try ModuleCalls.decodeOnInstallData([0x00, 1]) }
    }
}

@Suite("OwnableValidator init data and threshold signatures")
struct OwnableValidatorTests {
    @Test func ownersAreSortedNumericallyAndChecked() throws {
        let keys = (0..<5).map { _ in Secp256k1.PrivateKey.generate() }
        let config = try OwnableValidatorConfig(threshold: 3, owners: keys.map(\.address))
        #expect(config.owners == keys.map(\.address).sorted())
        #expect(try OwnableValidatorConfig(initData: config.initData) == config)
        #expect(throws: SmartSessionError.self) { try OwnableValidatorConfig(threshold: 0, owners: [keys[0].address]) }
        #expect(throws: SmartSessionError.self) { try OwnableValidatorConfig(threshold: 2, owners: [keys[0].address]) }
        #expect(throws: SmartSessionError.self) { try OwnableValidatorConfig(threshold: 1, owners: [keys[0].address, keys[0].address]) }
        let unsorted = try ABI.encode([.uint(1), .array(config.owners.reversed().map { .address($0) })], as: [.uint256, .array(.address)])
        #expect(throws: SmartSessionError.self) { try OwnableValidatorConfig(initData: unsorted) }

        let hash = Keccak256.hash(utf8: "enable")
        var sigs = keys[0..<2].map { $0.sign(digest: hash) }
        #expect(!config.isValid(hash: hash, signatures: OwnableValidatorConfig.combine(sigs)))
        #expect(!config.isValid(hash: hash, signatures: OwnableValidatorConfig.combine(sigs + [sigs[0]])))   // duplicates count once
        var ethSign = keys[4].sign(digest: PersonalMessage.hash(hash))
        ethSign.v += 4
        sigs.append(ethSign)
        #expect(config.isValid(hash: hash, signatures: OwnableValidatorConfig.combine(sigs.reversed())))   // any order
        #expect(!config.isValid(hash: hash, signatures: OwnableValidatorConfig.combine(sigs).dropLast()))

        // Only owners count, and only with v 27/28 (31/32): ecrecover answers nothing for 0/1.
        let stranger = Secp256k1.PrivateKey.generate().sign(digest: hash)
        #expect(try config.signers(of: hash, signatures: OwnableValidatorConfig.combine(Array(sigs[0..<2]) + [stranger])) == Array(keys[0..<2].map(\.address)).sorted())
        var zeroV = keys[2].sign(digest: hash)
        zeroV.v -= 27
        #expect(try config.signers(of: hash, signatures: OwnableValidatorConfig.combine(Array(sigs[0..<2]) + [zeroV])).count == 2)
    }

    /// What the contract's onInstall refuses: no owner or more than 32, the zero address, a
    /// threshold past any integer.
    @Test func ownerListsTheContractRefuses() throws {
        let many = (1...33).map { Address(exactly: [UInt8](repeating: 0, count: 19) + [UInt8($0)])! }
        #expect(try OwnableValidatorConfig(threshold: 1, owners: Array(many.prefix(32))).owners.count == 32)
        for (owners, message) in [(many, "needs 1 to 32 owners, got 33"), ([], "needs 1 to 32 owners, got 0"), ([.zero, many[0]], "the zero address as an owner")] as [([Address], String)] {
            #expect(throws: SmartSessionError("OwnableValidator: " + message)) { try OwnableValidatorConfig(threshold: 1, owners: owners) }
        }
        let hugeThreshold = try ABI.encode([.uint(UInt256(limbs: (1, 1, 0, 0))), .array([.address(many[0])])], as: [.uint256, .array(.address)])
        #expect(throws: SmartSessionError.self) { try OwnableValidatorConfig(initData: hugeThreshold) }
    }
}
