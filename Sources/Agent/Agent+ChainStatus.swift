import ChainRPC
import EthereumCore
import SessionStore
import SmartSessions

extension Agent {
    /// A session's state on one of its chains beside the agent's own record, or why that chain
    /// could not be read.
    public struct ChainStatus: Sendable {
        public var chainId: UInt64
        /// The endpoint as it may be shown (no path: providers keep their key there).
        public var endpoint: String?
        public var enabledHere: Bool
        public var signedNonce: UInt256?
        public var outcome: Result<SessionChainReport, AgentError>
    }

    /// Reads the session's state on each of its chains (or only `chainId`) from the configured
    /// endpoints, and sets it beside the agent's ledger: `session_chain_status`. Nothing is
    /// written: what a chain says is only reported, never taken into the ledger (an endpoint is
    /// not trusted to lower a limit's count). A chain that cannot be read is reported as such,
    /// beside the others.
    public nonisolated func chainStatus(of id: String, chainId: UInt64? = nil) async throws(AgentError) -> (session: StoredSession, chains: [ChainStatus]) {
        let s = try session(id, client: nil)
        var chains = s.chains
        if let chainId {
            chains = chains.filter { $0.chainId == chainId }
            guard !chains.isEmpty else {
                throw .badRequest("session \(id) is not for chain \(chainId); its chains are \(s.chains.map { String($0.chainId) }.joined(separator: ", "))")
            }
        }
        let reads = SessionOnChainReads(session: s.session, account: s.account)
        // Each chain has its own endpoint: they are read at once.
        let read = await withTaskGroup(of: (UInt64, Result<SessionOnChainState, AgentError>).self) { group in
            for target in chains {
                group.addTask { (target.chainId, await self.read(reads, on: target.chainId)) }
            }
            var read: [UInt64: Result<SessionOnChainState, AgentError>] = [:]
            for await (chainId, outcome) in group { read[chainId] = outcome }
            return read
        }
        // The ledger after the chains: it only grows, so one read later can be ahead of a
        // chain's answer but never behind it, and a chain ahead of it is really ahead.
        let local: SessionStore.SessionToSign
        do { local = try store.sessionToSign(id: id) } catch { throw Self.readFailure(error, session: id) }
        var statuses: [ChainStatus] = []
        for target in chains {
            let enabledHere = local.enabledChains.contains(target.chainId)
            let signedNonce = s.permissionEnableSig.isEmpty ? nil : target.nonce
            statuses.append(ChainStatus(
                chainId: target.chainId, endpoint: self.chains?.endpoints[target.chainId]?.description, enabledHere: enabledHere, signedNonce: signedNonce,
                outcome: read[target.chainId]!.map { state in   // every chain was read, or failed
                    SessionChainReport(chainId: target.chainId, reads: reads, state: state, ledger: local.ledgers[target.chainId] ?? PolicyLedger(),
                                       enabledHere: enabledHere, signedNonce: signedNonce, revoked: local.stored.revokedAt != nil,
                                       keyMayBeElsewhere: s.exportAllowed, tokens: tokens)
                }))
        }
        for status in statuses {
            guard case .success(let report) = status.outcome else {
                metrics?.chainRead("unread")
                continue
            }
            metrics?.chainRead(report.severity.rawValue)
            if report.severity == .critical {
                logger.warning("session \(id) on chain \(status.chainId): \(report.findings.filter { $0.severity == .critical }.map(\.message).joined(separator: "; "))")
            }
        }
        return (s, statuses)
    }

    /// A session's state on one chain, from its endpoint. A method, not written out in the task
    /// group's closure: there, Swift 6.3.1's optimiser lost the chain id of the tuple a
    /// `do throws(ChainRPCError)` returned (release builds only).
    nonisolated func read(_ reads: SessionOnChainReads, on chainId: UInt64) async -> Result<SessionOnChainState, AgentError> {
        guard let rpc = chains?.rpc(for: chainId) else {
            return .failure(AgentError("no_endpoint", "no JSON-RPC endpoint is configured for chain \(chainId) (chain_rpc in the configuration)"))
        }
        do { return .success(try await SessionChainReader.read(reads, chainId: chainId, from: rpc)) } catch { return .failure(AgentError(error.reason, error.message)) }
    }
}
