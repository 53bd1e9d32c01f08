import EthereumCore
import SmartSessions

/// Reads a session's state on a chain (`SessionOnChainReads`) from its endpoint, every call at
/// one block so the answers belong together, in two round trips: the chain and its block, then
/// everything else as one batch.
public enum SessionChainReader {
    public static func read(_ reads: SessionOnChainReads, chainId: UInt64, from rpc: EthereumRPC) async throws(ChainRPCError) -> SessionOnChainState {
        let head = try await rpc.batch([.chainId, .blockNumber])
        try rpc.requireChain(chainId, answer: head[0])
        let block = try EthereumRPC.quantity(try head[1].get(), of: "eth_blockNumber")
        // The counters are asked for with the rest, though only an enabled session's are read:
        // a round trip costs more than a few calls in a batch.
        let views = [reads.installed, reads.enabled, reads.nonce] + reads.counters.map(\.call)
        let answers = try await rpc.batch([.code(at: reads.account, block: block), .code(at: reads.smartSession, block: block)] + views.map { .call($0, block: block) })
        func answer(_ view: Int) throws(ChainRPCError) -> [UInt8] { try EthereumRPC.answer(answers[2 + view], to: views[view], block: block) }
        func decoded<T>(_ body: () throws(SmartSessionError) -> T) throws(ChainRPCError) -> T {
            do { return try body() } catch { throw ChainRPCError(error, from: rpc.endpoint) }
        }
        // A call to an address without code answers nothing, which would otherwise read as a
        // malformed answer.
        guard !(try EthereumRPC.data(try answers[1].get(), of: "eth_getCode")).isEmpty else {
            throw ChainRPCError("smartsession_not_deployed", "SmartSession \(reads.smartSession.checksummed) has no code on chain \(chainId) at block \(block)")
        }
        let deployed = !(try EthereumRPC.data(try answers[0].get(), of: "eth_getCode")).isEmpty
        var installed: Bool?
        if deployed {
            // An account that is not ERC-7579 (or a proxy without the function) reverts.
            do {
                let installedAnswer = try answer(0)
                installed = try decoded { () throws(SmartSessionError) in try reads.installed.flag(installedAnswer) }
            } catch where error.reason == "reverted" {
                installed = nil
            }
        }
        let enabledAnswer = try answer(1), nonceAnswer = try answer(2)
        let enabled = try decoded { () throws(SmartSessionError) in try reads.enabled.flag(enabledAnswer) }
        let nonce = try decoded { () throws(SmartSessionError) in try reads.nonce.integer(nonceAnswer) }
        var counters: [LedgerKey: UInt256] = [:]
        if enabled {
            for (i, read) in reads.counters.enumerated() {
                let counterAnswer = try answer(3 + i)
                counters.merge(try decoded { () throws(SmartSessionError) in try SessionOnChainState.counters(of: read, answer: counterAnswer) }) { $1 }
            }
        }
        return SessionOnChainState(block: block, deployed: deployed, installed: installed, enabled: enabled, nonce: nonce, counters: counters)
    }
}
