import EthereumCore
import SmartSessions
import Testing
import TestSupport

/// Random sessions the oracle makes (fallback and admin actions, Unicode content names, chain
/// ids up to 2^64 − 1, any nonce), with their ids, digests and ENABLE signature computed from the
/// spec's definitions by eth-abi, eth-account's EIP-712 and the port of the SDK's compressor:
/// what the contract vectors do not vary, an implementation that shares no code with ours does.
@Suite("Ids, digests and encodings equal an independent implementation's, on random sessions")
struct IndependentDigestTests {
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func randomSessions() throws {
        let cases = try Oracle.cases("session", count: 300)
        #expect(cases.count == 300)
        for c in cases {
            let context = "case \(c["permissionId"]!.serialized), seed \(Oracle.seed)"
            let session = try Session(json: c["session"]!)
            let account = try Address(try c.string("account"))
            let mode = try #require(SmartSessionMode(rawValue: UInt8(try c.string("mode"))!))
            let permissionId = session.permissionId
            #expect(permissionId == (try c.bytes32("permissionId")), "\(context)")
            let actionIds = session.actions.map(\.actionId)
            #expect(actionIds.map(\.hex) == c["actionIds"]!.arrayValue!.map { $0.stringValue! }, "\(context)")
            #expect(EnableDigest.hashPermissions(session, mode: mode) == (try c.bytes32("hashPermissions")), "\(context)")

            let chains = try c["chains"]!.arrayValue!.map { chain in
                (id: UInt64(try chain.string("chainId"))!, nonce: try UInt256(parsing: try chain.string("nonce")))
            }
            let digests = chains.map {
                ChainDigest(chainId: $0.id, sessionDigest: EnableDigest.sessionDigest(session, account: account, mode: mode, nonce: $0.nonce,
                                                                                    smartSession: try! Address(try! c.string("smartSession"))))
            }
            #expect(digests.map(\.sessionDigest.hex) == c["sessionDigests"]!.arrayValue!.map { $0.stringValue! }, "\(context)")
            #expect(EnableDigest.multichainDigest(digests) == (try c.bytes32("multichainDigest")), "\(context)")
            let kernel = c["kernel"]!, version = try kernel.string("version")
            #expect(AccountKind.kernel.validatorHash(of: EnableDigest.multichainDigest(digests), account: account, chainId: chains[0].id,
                                                     kernelVersion: version) == (try kernel.bytes32("ownerDigest")), "\(context)")
            #expect(AccountKind.kernel.validatorHash(of: EnableDigest.multichainDigest(digests), account: account, chainId: 0,
                                                     kernelVersion: version) == (try kernel.bytes32("everyChainOwnerDigest")), "\(context)")

            let configIds = c["configIds"]!
            #expect(SessionIds.configId(account: account, id: permissionId) == (try configIds.bytes32("userOp")), "\(context)")
            #expect(actionIds.map { SessionIds.configId(account: account, id: SessionIds.actionPolicyId(permissionId: permissionId, actionId: $0)).hex }
                    == configIds["actions"]!.arrayValue!.map { $0.stringValue! }, "\(context)")
            #expect(SessionIds.configId(account: account, id: SessionIds.erc1271PolicyId(permissionId: permissionId)) == (try configIds.bytes32("erc1271")),
                    "\(context)")

            let enable = c["enable"]!
            let signature = SessionSignature.enable(
                mode: mode,
                enableSession: EnableSession(chainDigestIndex: UInt8(try enable.string("chainDigestIndex"))!, hashesAndChainIds: digests,
                                             sessionToEnable: session, permissionEnableSig: try enable.bytes("permissionEnableSig")),
                signature: try enable.bytes("signature"))
            #expect(signature.encoded == (try enable.bytes("encoded")), "\(context)")
            #expect(try SessionSignature(decoding: try enable.bytes("encoded")) == signature, "\(context)")
        }
    }

    /// The account's operations around sessions (install with sessions, enableSessions, the
    /// removeSession and revokeEnableSignature pairs) on each kind of account, and the nonce key
    /// selecting the owners' validator, as eth-abi encodes them from the contracts' ABIs.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func randomAccountOperations() throws {
        let cases = try Oracle.cases("account-op", count: 300)
        #expect(cases.count == 300)
        var rng = SplitMix64(seed: Oracle.seed)
        for c in cases {
            let kind = try #require(AccountKind(rawValue: try c.string("kind")))
            let account = try Address(try c.string("account")), validator = try Address(try c.string("validator"))
            let context = "\(kind) \(try c.string("operation")), account \(account), seed \(Oracle.seed)"
            let sessions = try c["sessions"]!.arrayValue!.map { try Session(json: $0) }
            let operation: AccountOperation
            switch try c.string("operation") {
            case "install": operation = .install(sessions: sessions, mode: try #require(SmartSessionMode(rawValue: UInt8(try c.string("mode"))!)))
            case "enable": operation = .enable(sessions: sessions)
            default: operation = .end(permissionIds: try c["permissionIds"]!.arrayValue!.map { try Bytes32(hex: $0.stringValue!) })
            }
            #expect(try operation.call(account: account, kind: kind).calldata == (try c.bytes("calldata")), "\(context)")
            #expect(operation.callLines(kind: kind).count == (try operation.call(account: account, kind: kind).executions.count), "\(context)")

            let key = kind.nonceKey(validator: validator)
            #expect(key.bigEndianBytes == [UInt8](repeating: 0, count: 8) + (try c.bytes("nonceKey")), "\(context)")
            let nonce = key.shiftedLeft(64) | UInt256(rng.next())
            #expect(try kind.validator(selectedBy: nonce) == (kind == .kernel ? .kernelRoot : .validator(validator)), "\(context)")
        }
    }
}
