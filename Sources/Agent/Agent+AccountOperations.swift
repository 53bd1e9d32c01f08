import ChainRPC
import EthereumCore
import OwnerSigners
import SessionStore
import SmartSessions

/// The account's own user operations around sessions, which its owners sign: installing
/// SmartSession, enabling sessions by call, ending sessions on chain. The operator asks on the
/// control socket, is shown the operation decoded (`prepareAccountOperation`), and confirms it by
/// its userOpHash (`signAccountOperation`): the agent builds the callData itself and signs only
/// an operation it has shown.
extension Agent {
    public struct AccountOperationRequest: Sendable {
        public enum Kind: String, Sendable, CaseIterable {
            case install, enable, end
        }

        public var account: Address
        public var chainId: UInt64
        public var entryPoint: Address
        public var version: EntryPointVersion
        public var eip7702Delegate: Address?
        public var kind: Kind
        /// Sessions in the store: those to enable (with the install, or by call), or to end.
        public var sessionIds: [String]
        /// Sessions to end that the store does not hold.
        public var permissionIds: [Bytes32]
        /// The user operation as the caller has it (gas and fees from its bundler), in either
        /// form; the agent writes its callData and signature.
        public var userOperation: JSONObject

        public init(account: Address, chainId: UInt64, entryPoint: Address, version: EntryPointVersion, eip7702Delegate: Address? = nil,
                    kind: Kind, sessionIds: [String] = [], permissionIds: [Bytes32] = [], userOperation: JSONObject) {
            self.account = account
            self.chainId = chainId
            self.entryPoint = entryPoint
            self.version = version
            self.eip7702Delegate = eip7702Delegate
            self.kind = kind
            self.sessionIds = sessionIds
            self.permissionIds = permissionIds
            self.userOperation = userOperation
        }
    }

    public struct PreparedAccountOperation: Sendable {
        /// In the form it was given, with the agent's callData, and the owners' signature once
        /// signed (before, a dummy of its shape for gas estimates, or none for passkeys).
        public var userOperation: JSONObject
        public var userOpHash: Bytes32
        /// What each owner signs: the EIP-191 hash of the userOpHash for OwnableValidator, the
        /// userOpHash itself as the WebAuthn challenge.
        public var ownerDigest: Bytes32
        public var text: String
        /// The sessions the operation enables on its chain.
        var enables: [String]
    }

    /// `r` with its user operation's nonce read from the chain, when it gives none and the
    /// configuration has an endpoint for the chain: the EntryPoint's `getNonce` for the account
    /// and the key that selects its owners' validator. The operation shown names it, and one
    /// signed after the chain moved on is `changed`.
    public nonisolated func withNonceFromChain(_ r: AccountOperationRequest) async throws(AgentError) -> AccountOperationRequest {
        guard r.userOperation["nonce"] == nil, let rpc = chains?.rpc(for: r.chainId), let account = await accounts[r.account] else { return r }
        let call = ViewCall.entryPointNonce(entryPoint: r.entryPoint, sender: account.address, key: account.ownerNonceKey)
        let nonce: UInt256
        do throws(ChainRPCError) {
            let answers = try await rpc.batch([.chainId, .call(call, block: nil)])
            try rpc.requireChain(r.chainId, answer: answers[0])
            let answer = try EthereumRPC.answer(answers[1], to: call, block: nil)
            do { nonce = try call.integer(answer) } catch { throw ChainRPCError(error, from: rpc.endpoint) }
        } catch {
            throw AgentError(error.reason, "params.userOperation.nonce: not given, and not read from chain \(r.chainId): \(error.message)")
        }
        var read = r
        read.userOperation["nonce"] = .string(nonce.hexQuantity)
        return read
    }

    /// The operation `r` names, built into the caller's user operation and shown; nothing is
    /// signed, and what cannot be signed is refused here, before any owner is asked.
    public func prepareAccountOperation(_ r: AccountOperationRequest) throws(AgentError) -> PreparedAccountOperation {
        guard let account = accounts[r.account] else { throw AgentError("unknown_account", "the agent manages no account \(r.account)") }
        if !account.chains.isEmpty, !account.chains.contains(r.chainId) {
            throw AgentError("wrong_chain", "the account \(account.address) is configured for chains \(account.chains.sorted().map(String.init).joined(separator: ", ")), not \(r.chainId)")
        }
        let now = clock()
        var sessions: [StoredSession] = []
        for id in r.sessionIds {
            guard !sessions.contains(where: { $0.id == id }) else { throw .badRequest("params.sessionIds: \(id) is listed twice") }
            let s = try session(id, client: nil)
            guard s.account == account.address else { throw .badRequest("session \(id) is for the account \(s.account), not \(account.address)") }
            guard s.chains.contains(where: { $0.chainId == r.chainId }) else { throw .badRequest("session \(id) is not for chain \(r.chainId)") }
            if r.kind != .end {
                try Self.requireLive(s, id, now: now)
                // Enabling it again would start its limits and counts over on chain.
                if try signer.enabledChains(of: id).contains(r.chainId) {
                    throw AgentError("already_enabled", "session \(id) is enabled on chain \(r.chainId) already, by an ENABLE signature or an account operation the agent gave; "
                                                        + "enabling it again would start its spending limits and usage counts there over")
                }
            }
            sessions.append(s)
        }
        if r.kind != .end, !r.permissionIds.isEmpty { throw .badRequest("params.permissionIds: only for end; sessions to enable are named by their sessionIds") }
        let operation: AccountOperation
        switch r.kind {
        case .install:
            // The ENABLE mode checks the policies against the registry; the UNSAFE one only if every session was approved for it.
            let unsafe = !sessions.isEmpty && sessions.allSatisfy { $0.mode == .unsafeEnable }
            operation = .install(sessions: sessions.map(\.session), mode: unsafe ? .unsafeEnable : .enable)
        case .enable:
            operation = .enable(sessions: sessions.map(\.session))
        case .end:
            let ids = sessions.map(\.session.permissionId) + r.permissionIds
            guard Set(ids).count == ids.count else { throw .badRequest("a session is named twice (by its id and by its permission id)") }
            operation = .end(permissionIds: ids)
        }
        let call: ExecuteCall
        do { call = try operation.call(account: account.address, kind: account.kind) } catch { throw .badRequest(error.message) }
        let (object, packed, selected) = try Self.userOperation(r, account: account, callData: call.calldata)
        let userOpHash: Bytes32
        do { userOpHash = try packed.hash(version: r.version, entryPoint: r.entryPoint, chainId: UInt256(r.chainId), eip7702Delegate: r.eip7702Delegate) } catch {
            throw .badRequest("\(error)")
        }
        let ownerDigest = account.takesPasskeys ? userOpHash : PersonalMessage.hash(userOpHash)
        let text = Self.describe(r, account: account, call: call, operation: operation, sessions: sessions, packed: packed, selected: selected,
                                 userOpHash: userOpHash, ownerDigest: ownerDigest, now: now)
        return PreparedAccountOperation(userOperation: object, userOpHash: userOpHash, ownerDigest: ownerDigest, text: text,
                                        enables: r.kind == .end ? [] : sessions.map(\.id))
    }

    /// The caller's user operation with the agent's callData and a dummy signature, packed, and
    /// the validator its nonce selects, which must be the owners'.
    static func userOperation(_ r: AccountOperationRequest, account: AccountConfig, callData: [UInt8]) throws(AgentError)
        -> (json: JSONObject, packed: PackedUserOperation, selected: NonceValidator) {
        var object = r.userOperation
        if let sender = object["sender"] {
            guard sender.stringValue.flatMap({ try? Address($0) }) == account.address else {
                throw .badRequest("params.userOperation.sender: the account \(account.address.checksummed)")
            }
        } else {
            object["sender"] = .string(account.address.checksummed)
        }
        if let given = object["callData"]?.stringValue, given != "0x", (try? Hex.decode(given)) != callData {
            throw .badRequest("params.userOperation.callData: the agent writes it; leave it out (it differs from the \(r.kind.rawValue) operation's)")
        }
        object["callData"] = .string(Hex.encode(callData))
        // Of the shape the owners' will have, so that the operation can go to the bundler for its gas as it is.
        object["signature"] = .string(Hex.encode(account.dummySignature ?? []))
        let packed: PackedUserOperation
        do { packed = try PackedUserOperation.parse(json: .object(object)) } catch { throw .badRequest("params.userOperation.\(error)") }
        // The EntryPoint refuses shorter (its address and two gas limits).
        if !packed.paymasterAndData.isEmpty, packed.paymasterAndData.count < 52 {
            throw .badRequest("params.userOperation.paymasterAndData: a paymaster address and its two gas limits (52 bytes) at least, or nothing")
        }
        let selected: NonceValidator
        do { selected = try account.kind.validator(selectedBy: packed.nonce) } catch { throw .badRequest("params.userOperation.nonce: \(error.message)") }
        if case .validator(let v) = selected, v != account.ownerValidator {
            throw .badRequest("params.userOperation.nonce: it selects the validator \(v.checksummed), not the owners' \(account.ownerValidator.checksummed); "
                              + "take the nonce from the EntryPoint's getNonce(\(account.address.checksummed), \(account.ownerNonceKey.hexQuantity))")
        }
        return (object, packed, selected)
    }

    /// The owners sign the operation `prepareAccountOperation` gives for `r`, if its userOpHash
    /// is the one the operator was shown; sessions it enables are recorded as enabled on its
    /// chain before the signature leaves.
    public func signAccountOperation(_ r: AccountOperationRequest, shown: Bytes32, approver: String, ownerSecret: SecretBytes? = nil,
                                     ownerSecrets: [OwnerKey: SecretBytes] = [:]) async throws(AgentError) -> PreparedAccountOperation {
        var prepared = try prepareAccountOperation(r)
        guard prepared.userOpHash == shown else {
            throw AgentError("changed", "the operation is not the one shown (its userOpHash is \(prepared.userOpHash.hex), not \(shown.hex)): prepare it again")
        }
        if !prepared.enables.isEmpty { try requireOpenStore() }
        let account = accounts[r.account]!
        let held = heldOwners(account).count
        guard held >= account.threshold else {
            throw AgentError("owner_unavailable", "only \(held) of \(account.threshold) owner signatures are available for \(account.address)")
        }
        let signed: (signatures: [(key: OwnerKey, signature: OwnerSignature)], signers: [OwnerIdentity])
        do throws(OwnerFailure) {
            signed = try await ownerSignatures(account, digest: prepared.ownerDigest, approval: prepared.userOpHash.hex, ownerSecret: ownerSecret, ownerSecrets: ownerSecrets,
                                               purpose: "It signs the account's user operation \(prepared.userOpHash.hex) (\(r.kind.rawValue), approved by \(approver)).")
        } catch {
            logger.warning("account operation \(prepared.userOpHash.hex): \(error)")
            throw AgentError(error.error.reason, "\(error)")
        }
        // An owner removed while another signed.
        guard signed.signatures.count >= account.threshold else {
            throw AgentError("owner_unavailable", "only \(signed.signatures.count) of \(account.threshold) owner signatures are available for \(account.address)")
        }
        if !prepared.enables.isEmpty {
            do { try await signer.enabledByAccount(prepared.enables, chainId: r.chainId, userOpHash: prepared.userOpHash, at: clock()) } catch {
                logger.warning("account operation \(prepared.userOpHash.hex): signed, and not given out: \(error)")
                throw error
            }
        }
        audit("account_operation", .object(JSONObject([
            "account": .string(account.address.checksummed), "chainId": .string(String(r.chainId)), "operation": .string(r.kind.rawValue),
            "sessions": .array(r.sessionIds.map { .string($0) }), "permissionIds": .array(r.permissionIds.map { .string($0.hex) }),
            "userOpHash": .string(prepared.userOpHash.hex), "approver": .string(approver),
            "signedBy": .array(signed.signers.map { .object(JSONObject(["owner": .string($0.key.description), "backend": .string($0.backend), "location": .string($0.location)])) }),
        ])))
        let signers = signed.signers.map { "\($0.key) (\($0.location))" }.joined(separator: ", ")
        logger.info("account operation \(prepared.userOpHash.hex) (\(r.kind.rawValue), account \(account.address.checksummed), chain \(r.chainId)) approved by \(approver), signed by \(signers)")
        metrics?.accountOperationSigned(r.kind.rawValue)
        prepared.userOperation["signature"] = .string(Hex.encode(account.validatorSignature(signed.signatures)))
        return prepared
    }

    /// The operation as the operator reads it before the owners sign.
    static func describe(_ r: AccountOperationRequest, account: AccountConfig, call: ExecuteCall, operation: AccountOperation, sessions: [StoredSession],
                         packed: PackedUserOperation, selected: NonceValidator, userOpHash: Bytes32, ownerDigest: Bytes32, now: UInt64) -> String {
        let smartSession = SmartSessionAddresses.smartSession.checksummed
        var out: [String] = []
        switch operation {
        case .install(let installed, let mode):
            out.append("Install SmartSession \(smartSession) on the account as a validator"
                       + (installed.isEmpty ? ", with no session." : ", enabling \(installed.count) session\(installed.count == 1 ? "" : "s") with it (\(mode)):"))
        case .enable(let enabled):
            out.append("Enable \(enabled.count) session\(enabled.count == 1 ? "" : "s") by the account's call to SmartSession \(smartSession).enableSessions:")
        case .end(let ids):
            out.append("End \(ids.count) session\(ids.count == 1 ? "" : "s") on chain: SmartSession \(smartSession).removeSession drops the policies of each, "
                       + "and revokeEnableSignature voids the ENABLE signatures its owners gave for it:")
        }
        for s in sessions {
            var line = "  \(s.id)" + (s.label.map { " \"\(DisplayText.escaped($0))\"" } ?? "") + ": permissionId \(s.session.permissionId.hex), session key \(s.sessionKey.checksummed), "
            line += "approved \(UTCTime.format(s.createdAt))"
            if let revoked = s.revokedAt { line += ", revoked \(UTCTime.format(revoked))" }
            if let expires = s.expiresAt { line += ", \(expires < now ? "expired" : "expires") \(UTCTime.format(expires)) (\(UTCTime.relative(expires, now: now)))" }
            out.append(line)
        }
        for id in r.permissionIds { out.append("  permissionId \(id.hex) (no session of the store)") }
        if r.kind != .end, !sessions.isEmpty {
            out.append("Each session was approved with the permissions shown then (`session-agent sessions` shows them). Once this is signed, the agent signs their "
                       + "user operations on \(Chains.label(r.chainId)) in USE mode, and counts their limits there from the start.")
        }
        out.append("")
        out.append("Account \(account.address.checksummed) (\(account.kind.rawValue)) on \(Chains.label(r.chainId)), signed by \(account.threshold) of its \(account.owners.count) "
                   + "owner\(account.owners.count == 1 ? "" : "s") through \(account.isZeroDev ? "ZeroDev's passkey validator" : account.takesPasskeys ? "WebAuthnValidator" : "OwnableValidator") \(account.ownerValidator.checksummed)")
        out.append("It executes (ERC-7579 execute, \(call.mode.callType == .batch ? "a batch of \(call.executions.count) calls" : "one call")):")
        for (i, line) in operation.callLines(kind: account.kind).enumerated() { out.append("  \(i + 1). \(line)") }
        let sequence = packed.nonce.bigEndianBytes.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let by: String = switch selected {
        case .validator(let v): "selects \(v.checksummed)"
        case .kernelRoot: "selects the account's root validator, which must be \(account.ownerValidator.checksummed)"
        }
        out.append("EntryPoint \(r.entryPoint.checksummed) (v\(r.version.rawValue)); nonce sequence \(sequence), its key \(by)")
        if !packed.initCode.isEmpty {
            out.append("Deploys the account first: initCode \(packed.initCode.count) bytes, factory \(Address(exactly: packed.initCode.prefix(20)).map(\.checksummed) ?? "?")")
        }
        let gas = GasOfOperation(packed)
        out.append("Gas: \(gas.call) for the call, \(gas.verification) to verify, \(gas.preVerification) before; max fee \(Amounts.format(gas.maxFee, decimals: 9)) gwei"
                   + " (tip \(Amounts.format(gas.maxPriorityFee, decimals: 9)) gwei)")
        let cost = gas.maximumCost.map(Amounts.eth) ?? "more than 2^256 wei"
        if let paymaster = gas.paymaster {
            out.append("Paymaster \(paymaster.checksummed) pays (at most \(cost)), with \(gas.paymasterVerification) gas to verify and \(gas.paymasterPostOp) after")
        } else {
            out.append("The account pays: at most \(cost)")
        }
        out.append("userOpHash \(userOpHash.hex); the owners sign \(ownerDigest.hex)"
                   + (account.takesPasskeys ? " (the userOpHash, as the WebAuthn challenge)" : " (the userOpHash as an EIP-191 message, as OwnableValidator checks it)"))
        return out.joined(separator: "\n")
    }
}

/// The gas of a packed user operation, field by field.
struct GasOfOperation {
    var verification: UInt256, call: UInt256, preVerification: UInt256, maxPriorityFee: UInt256, maxFee: UInt256
    var paymaster: Address?
    var paymasterVerification: UInt256 = 0, paymasterPostOp: UInt256 = 0

    init(_ op: PackedUserOperation) {
        let limits = op.accountGasLimits.bytes, fees = op.gasFees.bytes
        verification = UInt256(bigEndian: limits[0..<16])
        call = UInt256(bigEndian: limits[16..<32])
        preVerification = op.preVerificationGas
        maxPriorityFee = UInt256(bigEndian: fees[0..<16])
        maxFee = UInt256(bigEndian: fees[16..<32])
        let p = op.paymasterAndData
        if p.count >= 52 {
            paymaster = Address(exactly: p[0..<20])
            paymasterVerification = UInt256(bigEndian: p[20..<36])
            paymasterPostOp = UInt256(bigEndian: p[36..<52])
        }
    }

    /// What is paid at most: every gas limit at the highest fee; nil past 2^256 wei. (The
    /// limits are uint128 each, so their sum cannot overflow.)
    var maximumCost: UInt256? {
        let total = [call, verification, preVerification, paymasterVerification, paymasterPostOp].reduce(UInt256(0)) { $0.addingReportingOverflow($1).partialValue }
        let (cost, overflow) = total.multipliedReportingOverflow(by: maxFee)
        return overflow ? nil : cost
    }
}
