import EthereumCore
import SmartSessions
import TestSupport

/// Random but well-formed requests for property tests: every policy kind, known and unknown
/// addresses, fallback and admin actions, ERC-7739 content.
struct RandomSessions: RandomNumberGenerator {
    var source: SplitMix64

    init(seed: UInt64) { source = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { source.next() }

    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &self) } }
    mutating func address() -> Address { Address(exactly: bytes(20))! }
    mutating func word() -> Bytes32 { Bytes32(bytes(32)) }
    mutating func uint(bits: Int) -> UInt256 { UInt256(bigEndian: bytes(32)).shiftedRight(256 - bits) | .one }
    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self)] }

    mutating func rule() -> ParamRule {
        ParamRule(condition: pick(ParamCondition.allCases), offset: UInt64(32 * Int.random(in: 0...3, using: &self)),
                  isLimited: Bool.random(using: &self), ref: word(), limit: uint(bits: 100), used: 0)
    }

    mutating func policy(_ slot: PolicySlot) -> PolicyData {
        let kinds = PolicyKind.allCases.filter { $0.slots.contains(slot) }
        if Int.random(in: 0..<10, using: &self) == 0 { return PolicyData(policy: address(), initData: bytes(Int.random(in: 0...40, using: &self))) }
        let config: PolicyConfig
        switch pick(kinds) {
        case .sudo: config = .sudo
        case .timeFrame:
            let a = UInt64.random(in: 0..<(1 << 40), using: &self)
            config = .timeFrame(validUntil: Bool.random(using: &self) ? 0 : a + UInt64.random(in: 0..<(1 << 30), using: &self), validAfter: a)
        case .usageLimit: config = .usageLimit(uint(bits: 20))
        case .valueLimit: config = .valueLimit(uint(bits: 70))
        case .erc20SpendingLimit: config = .erc20SpendingLimit((0..<Int.random(in: 1...3, using: &self)).map { _ in TokenLimit(token: address(), limit: uint(bits: 90)) })
        case .uniAction: config = .uniAction(UniActionConfig(valueLimitPerUse: uint(bits: 60), rules: (0..<Int.random(in: 1...4, using: &self)).map { _ in rule() }))
        case .contractWhitelist: config = .contractWhitelist((0..<Int.random(in: 1...3, using: &self)).map { _ in address() })
        case .simpleGas: config = .simpleGas(gasLimit: uint(bits: 30), costLimit: uint(bits: 80))
        case .arg:
            config = .arg(ArgPolicyConfig(valueLimitPerUse: uint(bits: 60), rootNodeIndex: 2, rules: [rule(), rule()],
                                          nodes: [.rule(0), .rule(1), pick([.and(0, 1), .or(0, 1), .not(0)])]))
        }
        return config.policyData
    }

    mutating func session() -> Session {
        let keys = (0..<Int.random(in: 1...3, using: &self)).map { _ in address() }
        let validator = try! OwnableValidatorConfig(threshold: Int.random(in: 1...keys.count, using: &self), owners: keys)
        let actions: [ActionData] = (0..<Int.random(in: 0...4, using: &self)).map { _ in
            let roll = Int.random(in: 0..<10, using: &self)
            let target = roll == 0 ? ActionData.fallbackTarget : roll == 1 ? ActionData.fallbackTarget : pick([address(), TokenList.builtIn[0].address])
            let selector: Selector = roll == 0 ? .fallback : roll == 1 ? .fallbackSmartSessionCall
                : pick([.valueTransfer, Selector(rawValue: 0xa905_9cbb), Selector(rawValue: 0x095e_a7b3), Selector(rawValue: UInt32.random(in: 3...UInt32.max, using: &self))])
            return ActionData(actionTargetSelector: selector, actionTarget: target,
                              actionPolicies: (0..<Int.random(in: 1...3, using: &self)).map { _ in policy(.action) })
        }
        let contexts = (0..<Int.random(in: 0...2, using: &self)).map { _ in
            ERC7739Context(appDomainSeparator: word(), contentNames: (0..<Int.random(in: 0...2, using: &self)).map { _ in "Mail\(Int.random(in: 0...99, using: &self))(uint256 x)" })
        }
        return Session(sessionValidator: Int.random(in: 0..<8, using: &self) == 0 ? address() : SmartSessionAddresses.ownableValidator,
                       sessionValidatorInitData: validator.initData, salt: word(),
                       userOpPolicies: (0..<Int.random(in: 0...3, using: &self)).map { _ in policy(.userOp) },
                       erc7739Policies: ERC7739Data(allowedERC7739Content: contexts, erc1271Policies: contexts.isEmpty ? [] : [policy(.erc1271)]),
                       actions: actions, permitERC4337Paymaster: Bool.random(using: &self))
    }

    mutating func request() -> CompiledRequest {
        let chains = Array(Set((0..<Int.random(in: 1...3, using: &self)).map { _ in pick([1, 10, 8453, 11155111, 84532, UInt64.random(in: 1...UInt64(UInt32.max), using: &self)]) }))
            .sorted().map { ChainTarget(chainId: $0, nonce: UInt256(UInt64.random(in: 0...5, using: &self))) }
        return CompiledRequest(format: .rawSession, account: address(), accountKind: pick(AccountKind.allCases), chains: chains,
                               mode: pick([.enable, .unsafeEnable]), session: session(), exportKey: Bool.random(using: &self))
    }
}
