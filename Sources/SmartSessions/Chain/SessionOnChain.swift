import EthereumCore

/// A read-only contract call (`eth_call`) and the shape of its answer.
public struct ViewCall: Sendable, Hashable {
    public var to: Address
    public var function: ABIFunction
    public var data: [UInt8]

    init(_ to: Address, _ signature: String, _ arguments: [ABIValue]) {
        self.to = to
        function = try! ABIFunction(parsing: signature)
        data = try! function.encodeCall(arguments)
    }

    /// The answer's values, read strictly: an answer of another length or shape is refused
    /// (a node or contract that answers something else is not what these reads expect).
    public func decode(_ returned: [UInt8]) throws(SmartSessionError) -> [ABIValue] {
        do { return try ABI.decode(returned, as: function.outputs.map(\.type)) } catch {
            throw SmartSessionError("\(function.name) answered \(returned.count) bytes that are not \(function.outputs.map(\.type.canonical).joined(separator: ",")): \(error)",
                                    reason: "chain_answer_malformed")
        }
    }

    /// The answer as its `index`th unsigned integer.
    public func integer(_ returned: [UInt8], at index: Int = 0) throws(SmartSessionError) -> UInt256 {
        let values = try decode(returned)
        guard values.indices.contains(index), case .uint(let n) = values[index] else {
            throw SmartSessionError("\(function.name): no integer at output \(index)", reason: "chain_answer_malformed")
        }
        return n
    }

    public func flag(_ returned: [UInt8]) throws(SmartSessionError) -> Bool {
        guard case .bool(let b)? = try decode(returned).first else {
            throw SmartSessionError("\(function.name): not a bool", reason: "chain_answer_malformed")
        }
        return b
    }
}

extension ViewCall {
    /// The EntryPoint's `getNonce(sender, key)`: the account's next nonce for the key, the key
    /// in its high 192 bits and the sequence in the low 64.
    public static func entryPointNonce(entryPoint: Address, sender: Address, key: UInt256) -> ViewCall {
        ViewCall(entryPoint, "getNonce(address,uint192) returns (uint256)", [.address(sender), .uint(key)])
    }
}

/// One getter of a stateful policy, and the ledger counters its outputs are.
public struct CounterRead: Sendable, Hashable {
    public var call: ViewCall
    /// Output index → the ledger counter it mirrors.
    public var counters: [Int: LedgerKey]
}

/// What to read on a chain to tell a session's state there: whether SmartSession is
/// installed on the account, whether the session is enabled, its enable nonce, and the
/// counters of its stateful policies (spec §5.4, §9). Policies key their state by
/// (configId, SmartSession, account), so every getter is asked with SmartSession as the
/// multiplexer.
public struct SessionOnChainReads: Sendable {
    public let permissionId: Bytes32
    public let account: Address
    public let smartSession: Address
    /// The account's `isModuleInstalled(1, SmartSession, "")` (ERC-7579).
    public let installed: ViewCall
    public let enabled: ViewCall
    public let nonce: ViewCall
    public let counters: [CounterRead]
    /// Counters no getter exposes: UniActionPolicy and ArgPolicy keep their rules' usage inside
    /// structs whose public getters leave arrays out.
    public let unreadable: [LedgerKey]

    public init(session: Session, account: Address, smartSession: Address = SmartSessionAddresses.smartSession) {
        let checker = PolicyChecker(session: session, account: account, smartSession: smartSession)
        permissionId = checker.permissionId
        self.account = account
        self.smartSession = smartSession
        installed = ViewCall(account, "isModuleInstalled(uint256,address,bytes) returns (bool)",
                             [.uint(UInt256(ModuleCalls.validatorModuleType)), .address(smartSession), .bytes([])])
        enabled = ViewCall(smartSession, "isPermissionEnabled(bytes32,address) returns (bool)", [.bytes32(permissionId), .address(account)])
        nonce = ViewCall(smartSession, "getNonce(bytes32,address) returns (uint256)", [.bytes32(permissionId), .address(account)])
        var reads: [CounterRead] = [], unreadable: [LedgerKey] = []
        for (configId, policy) in checker.policiesWithConfigIds {
            guard case .success(let config) = policy.config else { continue }
            let p = policy.data.policy
            func key(_ counter: String) -> LedgerKey { LedgerKey(policy: p, configId: configId, counter: counter) }
            let keyed: [ABIValue] = [.bytes32(configId), .address(smartSession), .address(account)]
            switch config {
            case .usageLimit:
                reads.append(CounterRead(call: ViewCall(p, "getUsed(bytes32,address,address) returns (uint128)", keyed), counters: [0: key("used")]))
            case .valueLimit:
                reads.append(CounterRead(call: ViewCall(p, "getUsed(bytes32,address,address) returns (uint256)", keyed), counters: [0: key("valueUsed")]))
            case .simpleGas:
                reads.append(CounterRead(call: ViewCall(p, "getGasConfig(bytes32,address,address) returns (uint128,uint128,uint128,uint128)", keyed),
                                         counters: [1: key("gasUsed"), 3: key("costUsed")]))
            case .erc20SpendingLimit(let limits):
                var seen = Set<Address>()
                for token in limits.map(\.token) where seen.insert(token).inserted {
                    reads.append(CounterRead(
                        call: ViewCall(p, "getPolicyData(bytes32,address,address,address) returns (uint256,uint256,uint256)",
                                       [.bytes32(configId), .address(smartSession), .address(token), .address(account)]),
                        counters: [1: key("spent:\(token.lowercased)"), 2: key("approved:\(token.lowercased)")]))
                }
            case .uniAction(let c):
                unreadable += c.rules.indices.filter { c.rules[$0].isLimited }.map { key("rule:\($0)") }
            case .arg(let c):
                unreadable += c.rules.indices.filter { c.rules[$0].isLimited }.map { key("rule:\($0)") }
            case .sudo, .timeFrame, .contractWhitelist:
                break
            }
        }
        counters = reads
        self.unreadable = unreadable
    }
}

/// What a chain answered, read at one block.
public struct SessionOnChainState: Sendable, Equatable {
    public var block: UInt64
    /// Whether the account has code (a counterfactual account is not deployed yet).
    public var deployed: Bool
    /// nil when the account is not deployed, or does not answer `isModuleInstalled`.
    public var installed: Bool?
    public var enabled: Bool
    public var nonce: UInt256
    /// The counters read; only when the session is enabled (a disabled session's are stale).
    public var counters: [LedgerKey: UInt256]

    public init(block: UInt64, deployed: Bool, installed: Bool?, enabled: Bool, nonce: UInt256, counters: [LedgerKey: UInt256]) {
        self.block = block
        self.deployed = deployed
        self.installed = installed
        self.enabled = enabled
        self.nonce = nonce
        self.counters = counters
    }

    /// Reads one counter getter's answer into the ledger keys it mirrors.
    public static func counters(of read: CounterRead, answer: [UInt8]) throws(SmartSessionError) -> [LedgerKey: UInt256] {
        var out: [LedgerKey: UInt256] = [:]
        for (index, key) in read.counters { out[key] = try read.call.integer(answer, at: index) }
        return out
    }
}

extension PolicyChecker {
    /// Every policy SmartSession holds for the session, with the configId its state is under.
    var policiesWithConfigIds: [(Bytes32, ResolvedPolicy)] {
        userOpPolicies.map { (userOpConfigId, $0) }
            + actions.values.sorted { ($0.actionId.bytes).lexicographicallyPrecedes($1.actionId.bytes) }.flatMap { a in a.policies.map { (a.configId, $0) } }
    }
}
