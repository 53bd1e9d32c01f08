import Approval
import EthereumCore
import SmartSessions

extension Agent {
    /// What `session_signTypedData` returns.
    public struct SignedMessage: Sendable {
        /// For the account's `isValidSignature(hash, signature)`: its routing to SmartSession,
        /// then SmartSession's part (`NestedTypedData.signature`).
        public var signature: [UInt8]
        /// What the session key signed: the `TypedDataSign` digest.
        public var digest: Bytes32
        public var message: NestedTypedData
        public var accountDomain: AccountDomain
        /// Whether the account's domain was read from the chain, or given in the request.
        public var accountDomainReadFromChain: Bool

        /// The document's own EIP-712 digest, the `hash` an application passes with it.
        public var hash: Bytes32 { message.appHash }
    }

    /// The account's EIP-712 name, version and salt, as a client gives them.
    public struct GivenAccountDomain: Sendable {
        public var name: String
        public var version: String
        public var salt: Bytes32

        public init(name: String, version: String, salt: Bytes32 = .zero) {
            self.name = name
            self.version = version
            self.salt = salt
        }
    }

    /// Signs `document` with session `sessionId`'s key for its account's ERC-1271, as SmartSession
    /// checks it (ERC-7739 nested typed data, spec §10), when the session allows it now. The
    /// contents are described as the session's `ERC7739Context` lists them (the type alone, or
    /// followed by its name). SmartSession folds the account's EIP-712 domain into what the key
    /// signs: `given` it, or read from the chain's endpoint.
    public nonisolated func signTypedData(sessionId: String, client: ClientIdentity, chainId: UInt64, document: TypedData,
                                          accountDomain given: GivenAccountDomain? = nil) async throws(AgentError) -> SignedMessage {
        let s = try signer.session(sessionId, client: client)
        guard s.chains.contains(where: { $0.chainId == chainId }) else {
            throw AgentError("wrong_chain", "session \(sessionId) is not enabled for chain \(chainId)")
        }
        let message: NestedTypedData
        do throws(SmartSessionError) {
            let implicit = try NestedTypedData(document, explicit: false)
            let listed = s.session.erc7739Policies.allowedERC7739Content.filter { $0.appDomainSeparator == implicit.appDomainSeparator }.flatMap(\.contentNames)
            // The explicit form differs only in its description: the hashes are not made again.
            message = listed.contains(implicit.contentsDescription) ? implicit
                : try NestedTypedData(appDomainSeparator: implicit.appDomainSeparator, contents: implicit.contents,
                                      contentsDescription: implicit.contentsType + implicit.contentsName)
        } catch { throw .badRequest("params.typedData: \(error.message)") }
        let domain: AccountDomain
        if let given {
            domain = AccountDomain(name: given.name, version: given.version, chainId: UInt256(chainId), verifyingContract: s.account, salt: given.salt)
        } else {
            domain = try await accountDomain(of: s.account, on: chainId)
        }
        let (signature, digest) = try signer.signMessage(.init(sessionId: sessionId, client: client, chainId: chainId, message: message, accountDomain: domain))
        return SignedMessage(signature: signature, digest: digest, message: message, accountDomain: domain, accountDomainReadFromChain: given == nil)
    }
}
