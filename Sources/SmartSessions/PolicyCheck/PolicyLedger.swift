import EthereumCore

/// One counter of one policy's on-chain state. Policies key their state by
/// (configId, SmartSession, account); the configId already contains the account.
public struct LedgerKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var policy: Address
    public var configId: Bytes32
    /// `used` (UsageLimit), `valueUsed` (ValueLimit), `spent:<token>` and `approved:<token>`
    /// (ERC20SpendingLimit), `rule:<i>` (UniAction/Arg cumulative limits), `gasUsed` and
    /// `costUsed` (SimpleGas).
    public var counter: String

    public init(policy: Address, configId: Bytes32, counter: String) {
        self.policy = policy
        self.configId = configId
        self.counter = counter
    }

    public static func < (l: LedgerKey, r: LedgerKey) -> Bool { (l.policy, l.configId, l.counter) < (r.policy, r.configId, r.counter) }
    public var description: String { "\(policy.lowercased)/\(configId.hex)/\(counter)" }
}

/// The local mirror of the stateful policies' counters for one account on one chain (each chain
/// keeps its own).
public struct PolicyLedger: Sendable, Equatable {
    public var counters: [LedgerKey: UInt256]

    public init(counters: [LedgerKey: UInt256] = [:]) { self.counters = counters }

    public subscript(key: LedgerKey) -> UInt256? { counters[key] }

    public mutating func apply(_ delta: LedgerDelta) {
        if !delta.resetConfigIds.isEmpty {
            counters = counters.filter { !delta.resetConfigIds.contains($0.key.configId) }
        }
        for (k, v) in delta.updates { counters[k] = v }
    }
}

/// New counter values a signature commits to; applied only when the whole check passes.
public struct LedgerDelta: Sendable, Equatable {
    /// Config ids whose state an ENABLE re-initialises: their counters start again from zero.
    public var resetConfigIds: Set<Bytes32> = []
    public var updates: [LedgerKey: UInt256] = [:]
    public init(resetConfigIds: Set<Bytes32> = [], updates: [LedgerKey: UInt256] = [:]) {
        self.resetConfigIds = resetConfigIds
        self.updates = updates
    }
    public var isEmpty: Bool { updates.isEmpty && resetConfigIds.isEmpty }
}
