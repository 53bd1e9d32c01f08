import ChainRPC
import EthereumCore
import SmartSessions
import Synchronization

/// What the agent reads of an account's EIP-712 domain (ERC-5267's `eip712Domain()`): it is part
/// of what a session key signs for the account's ERC-1271, and Kernel wraps its owners' enable
/// digest in it.
extension Agent {
    /// `account`'s `eip712Domain()` on `chainId`, from its endpoint, or as read within the last
    /// `AccountDomains.lifetime` seconds.
    nonisolated func accountDomain(of account: Address, on chainId: UInt64) async throws(AgentError) -> AccountDomain {
        guard let rpc = chains?.rpc(for: chainId) else {
            throw .badRequest("params.accountDomain: the account's EIP-712 name and version are needed, since no JSON-RPC endpoint is configured for chain \(chainId) to read them from")
        }
        if let known = accountDomains.domain(of: account, on: chainId, now: clock()) { return known }
        let call = AccountDomain.call(on: account)
        do throws(ChainRPCError) {
            let answers = try await rpc.batch([.chainId, .call(call, block: nil)])
            try rpc.requireChain(chainId, answer: answers[0])
            let answer: [UInt8]
            do { answer = try EthereumRPC.answer(answers[1], to: call, block: nil) } catch where error.reason == "reverted" {
                throw ChainRPCError("no_account_domain", "the account \(account.checksummed) has no eip712Domain() on chain \(chainId), which SmartSession reads to check "
                                                         + "its session keys' signatures: an account without one needs the SmartSessionCompatibilityFallback installed for it")
            }
            // A call to an address without code answers nothing.
            guard !answer.isEmpty else { throw ChainRPCError("account_not_deployed", "the account \(account.checksummed) has no code on chain \(chainId)") }
            let domain: AccountDomain
            do { domain = try AccountDomain(answer: answer, of: call) } catch { throw ChainRPCError(error, from: rpc.endpoint) }
            accountDomains.keep(domain, of: account, on: chainId, at: clock())
            return domain
        } catch {
            throw AgentError(error.reason, "the account's EIP-712 domain was not read from chain \(chainId): \(error.message)")
        }
    }

    /// The version of Kernel account `account` on `chainIds`, which its owners sign for: one
    /// version on every chain, and on several chains one that takes a signature for all of them
    /// (v3.2 and later); earlier ones wrap what their owners sign with one chain's id.
    nonisolated func kernelVersion(of account: AccountConfig, on chainIds: [UInt64]) async throws(AgentError) -> String {
        var versions: [(chainId: UInt64, version: String)] = []
        for chainId in chainIds { versions.append((chainId, try await kernelVersion(of: account, on: chainId))) }
        let version = versions[0].version
        guard chainIds.count > 1 else { return version }
        if let other = versions.first(where: { $0.version != version }) {
            throw .badRequest("the Kernel account \(account.address.checksummed) is version \(DisplayText.escaped(String(reflecting: version))) on chain \(versions[0].chainId) "
                              + "but \(DisplayText.escaped(String(reflecting: other.version))) on chain \(other.chainId), so one owner signature cannot serve both: ask for one chain per request")
        }
        guard AccountKind.kernelSignsForEveryChain(version) else {
            throw .badRequest("a Kernel account of version \(DisplayText.escaped(String(reflecting: version))) gives its owner validator the enable digest wrapped with the chain id "
                              + "(in its EIP-712 domain), so one owner signature enables a session on one chain: ask for one chain per request (from v3.2, \"0.3.2\", one serves every chain)")
        }
        return version
    }

    /// The version in Kernel account `account`'s EIP-712 domain on `chainId`: read from the
    /// chain when an endpoint is configured for it and the account is deployed there, else the
    /// configured one (Kernel v3.1's by default). An account whose domain is not Kernel's is
    /// refused: its kind is configured wrong, and its owners would sign a digest it never checks.
    nonisolated func kernelVersion(of account: AccountConfig, on chainId: UInt64) async throws(AgentError) -> String {
        let configured = account.kernelVersion ?? AccountKind.kernelV31
        guard chains?.rpc(for: chainId) != nil else { return configured }
        let domain: AccountDomain
        do { domain = try await accountDomain(of: account.address, on: chainId) } catch {
            switch error.reason {
            case "account_not_deployed": return configured
            case "no_account_domain":
                throw AgentError("wrong_account_kind", "the account \(account.address.checksummed) has no eip712Domain() on chain \(chainId), which every Kernel v3 account has: is its kind kernel?")
            default: throw error
            }
        }
        guard domain.name == "Kernel", AccountConfig.isKernelVersion(domain.version) else {
            throw AgentError("wrong_account_kind", "the account \(account.address.checksummed) is configured as a Kernel account, but on chain \(chainId) its EIP-712 domain is "
                             + "\(DisplayText.escaped(String(reflecting: domain.name))) \(DisplayText.escaped(String(reflecting: domain.version))), not Kernel's")
        }
        return domain.version
    }
}

/// The accounts' EIP-712 domains as read from their chains, each kept for `lifetime` seconds. An
/// account's domain changes only with its implementation (an upgrade), and reading it for every
/// signature would put an endpoint's round trip into each of a bot's orders. A domain read just
/// before an upgrade makes signatures the account refuses, for a minute at most. Only the
/// configured accounts are read, so the entries are few.
final class AccountDomains: Sendable {
    static let lifetime: UInt64 = 60

    private struct Key: Hashable {
        var account: Address
        var chainId: UInt64
    }
    private let read = Mutex<[Key: (domain: AccountDomain, at: UInt64)]>([:])

    func domain(of account: Address, on chainId: UInt64, now: UInt64) -> AccountDomain? {
        read.withLock { entries in
            guard let entry = entries[Key(account: account, chainId: chainId)], now < entry.at + Self.lifetime else { return nil }
            return entry.domain
        }
    }

    func keep(_ domain: AccountDomain, of account: Address, on chainId: UInt64, at now: UInt64) {
        read.withLock { $0[Key(account: account, chainId: chainId)] = (domain, now) }
    }
}
