import EthereumCore
import SmartSessions

/// Reads a session's state on a chain (`SessionOnChainReads`) from its endpoint, every call at
/// one block so the answers belong together.
public enum SessionChainReader {
    public static func read(_ reads: SessionOnChainReads, chainId: UInt64, from rpc: EthereumRPC) async throws(ChainRPCError) -> SessionOnChainState {
        try await rpc.requireChain(chainId)
        let block = try await rpc.blockNumber()
        func answer(_ call: ViewCall) async throws(ChainRPCError) -> [UInt8] { try await rpc.call(call, block: block) }
        func decoded<T>(_ body: () throws(SmartSessionError) -> T) throws(ChainRPCError) -> T {
            do { return try body() } catch { throw ChainRPCError(error, from: rpc.endpoint) }
        }
        let deployed = !(try await rpc.code(at: reads.account, block: block)).isEmpty
        var installed: Bool?
        if deployed {
            // An account that is not ERC-7579 (or a proxy without the function) reverts.
            do {
                let installedAnswer = try await answer(reads.installed)
                installed = try decoded { () throws(SmartSessionError) in try reads.installed.flag(installedAnswer) }
            } catch where error.reason == "reverted" {
                installed = nil
            }
        }
        let enabledAnswer = try await answer(reads.enabled), nonceAnswer = try await answer(reads.nonce)
        // A call to an address without code answers nothing, which would otherwise read as a
        // malformed answer.
        if enabledAnswer.isEmpty, try await rpc.code(at: reads.smartSession, block: block).isEmpty {
            throw ChainRPCError("smartsession_not_deployed", "SmartSession \(reads.smartSession.checksummed) has no code on chain \(chainId) at block \(block)")
        }
        let enabled = try decoded { () throws(SmartSessionError) in try reads.enabled.flag(enabledAnswer) }
        let nonce = try decoded { () throws(SmartSessionError) in try reads.nonce.integer(nonceAnswer) }
        var counters: [LedgerKey: UInt256] = [:]
        if enabled {
            for read in reads.counters {
                let counterAnswer = try await answer(read.call)
                counters.merge(try decoded { () throws(SmartSessionError) in try SessionOnChainState.counters(of: read, answer: counterAnswer) }) { $1 }
            }
        }
        return SessionOnChainState(block: block, deployed: deployed, installed: installed, enabled: enabled, nonce: nonce, counters: counters)
    }
}
