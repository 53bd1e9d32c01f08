import EthereumCore

/// A token and its spending limit (ERC20SpendingLimitPolicy).
public struct TokenLimit: Hashable, Sendable {
    public var token: Address
    public var limit: UInt256

    public init(token: Address, limit: UInt256) {
        self.token = token
        self.limit = limit
    }
}

/// The typed configuration of a known policy: what its init data means.
public enum PolicyConfig: Hashable, Sendable {
    /// Always passes. Its init data is ignored by the contract.
    case sudo
    /// Valid in [validAfter, validUntil); 0 means no bound. uint48 each.
    case timeFrame(validUntil: UInt64, validAfter: UInt64)
    /// At most `limit` uses (uint128).
    case usageLimit(UInt256)
    /// At most `limit` wei in total.
    case valueLimit(UInt256)
    case erc20SpendingLimit([TokenLimit])
    case uniAction(UniActionConfig)
    /// Calls only to these targets (meant for the fallback action).
    case contractWhitelist([Address])
    /// Cumulative gas units and wei spent on gas (uint128 each).
    case simpleGas(gasLimit: UInt256, costLimit: UInt256)
    case arg(ArgPolicyConfig)

    public var kind: PolicyKind {
        switch self {
        case .sudo: .sudo
        case .timeFrame: .timeFrame
        case .usageLimit: .usageLimit
        case .valueLimit: .valueLimit
        case .erc20SpendingLimit: .erc20SpendingLimit
        case .uniAction: .uniAction
        case .contractWhitelist: .contractWhitelist
        case .simpleGas: .simpleGas
        case .arg: .arg
        }
    }

    /// The policy at its current deployment with this configuration.
    public var policyData: PolicyData {
        PolicyData(policy: PolicyRegistry.address(of: kind), initData: initData)
    }

    /// The init data as module-sdk encodes it (spec §9).
    public var initData: [UInt8] {
        func bytes(_ v: UInt256, _ n: Int) -> [UInt8] { Array(v.bigEndianBytes.suffix(n)) }
        switch self {
        case .sudo:
            return []
        case .timeFrame(let until, let after):
            return bytes(UInt256(until), 6) + bytes(UInt256(after), 6)
        case .usageLimit(let limit):
            return bytes(limit, 16)
        case .valueLimit(let limit):
            return limit.bigEndianBytes
        case .erc20SpendingLimit(let limits):
            return try! ABI.encode([.array(limits.map { .address($0.token) }), .array(limits.map { .uint($0.limit) })],
                                   as: [.array(.address), .array(.uint256)])
        case .uniAction(let config):
            let padding = ParamRule(condition: .equal, offset: 0, ref: .zero)
            let rules = config.rules + Array(repeating: padding, count: UniActionConfig.maximumRules - config.rules.count)
            return try! ABI.encode(.tuple([.uint(config.valueLimitPerUse), .tuple([.uint(UInt256(UInt64(config.rules.count))), .array(rules.map(\.abiValue))])]),
                                   as: UniActionConfig.abiType)
        case .contractWhitelist(let targets):
            return targets.flatMap(\.bytes)
        case .simpleGas(let gas, let cost):
            return bytes(gas, 16) + bytes(cost, 16)
        case .arg(let config):
            return try! ABI.encode(.tuple([.uint(config.valueLimitPerUse), .tuple([
                .uint(UInt256(UInt64(config.rootNodeIndex))), .array(config.rules.map(\.abiValue)), .array(config.nodes.map { .uint($0.packed) }),
            ])]), as: ArgPolicyConfig.abiType)
        }
    }

    /// Decodes init data with the validity rules of the contract's initializer; what the
    /// initializer would reject is an error here. Bytes a contract never reads are allowed
    /// (as on chain) and reported by `ignoredBytes(_:initData:)`.
    public static func decode(_ kind: PolicyKind, initData d: [UInt8]) throws(SmartSessionError) -> PolicyConfig {
        func fail(_ why: String) -> SmartSessionError { SmartSessionError("\(kind.rawValue) init data: \(why)", reason: "invalid_policy") }
        func need(_ n: Int) throws(SmartSessionError) {
            guard d.count >= n else { throw fail("needs at least \(n) bytes, got \(d.count)") }
        }
        func abi(_ type: ABIType, prefix: Int? = nil) throws(SmartSessionError) -> ABIValue {
            do { return try ABI.decode(prefix.map { Array(d.prefix($0)) } ?? d, as: type) } catch { throw fail("\(error)") }
        }
        switch kind {
        case .sudo:
            return .sudo
        case .timeFrame:
            try need(12)
            let until = UInt256(bigEndian: d[0..<6]).uint64!, after = UInt256(bigEndian: d[6..<12]).uint64!
            guard until == 0 || after <= until else { throw fail("validAfter (\(after)) is later than validUntil (\(until))") }
            return .timeFrame(validUntil: until, validAfter: after)
        case .usageLimit:
            try need(16)
            let limit = UInt256(bigEndian: d[0..<16])
            guard !limit.isZero else { throw fail("a usage limit of 0") }
            return .usageLimit(limit)
        case .valueLimit:
            try need(32)
            let limit = UInt256(bigEndian: d[0..<32])
            guard !limit.isZero else { throw fail("a value limit of 0") }
            return .valueLimit(limit)
        case .erc20SpendingLimit:
            let decoded: [ABIValue]
            do { decoded = try ABI.decode(d, as: [.array(.address), .array(.uint256)]) } catch { throw fail("\(error)") }
            guard case .array(let tokens) = decoded[0], case .array(let limits) = decoded[1] else { throw fail("unexpected shape") }
            guard tokens.count == limits.count else { throw fail("\(tokens.count) tokens but \(limits.count) limits") }
            var out: [TokenLimit] = []
            for (t, l) in zip(tokens, limits) {
                guard case .address(let token) = t, case .uint(let limit) = l else { throw fail("unexpected shape") }
                guard token != .zero else { throw fail("the zero address as a token") }
                guard !limit.isZero else { throw fail("a limit of 0 for \(token)") }
                out.append(TokenLimit(token: token, limit: limit))
            }
            return .erc20SpendingLimit(out)
        case .uniAction:
            try need(UniActionConfig.encodedSize)
            guard case .tuple(let top) = try abi(UniActionConfig.abiType, prefix: UniActionConfig.encodedSize),
                  case .uint(let valueLimit) = top[0], case .tuple(let rulesTuple) = top[1],
                  case .uint(let length) = rulesTuple[0], case .array(let rules) = rulesTuple[1]
            else { throw fail("unexpected shape") }
            guard let n = length.int, n <= UniActionConfig.maximumRules else {
                throw fail("\(length) rules; the contract holds at most 16 and reverts on more")
            }
            var parsed: [ParamRule] = []
            for i in 0..<n { parsed.append(try ParamRule(abi: rules[i], path: "\(kind.rawValue) rule \(i)")) }
            return .uniAction(UniActionConfig(valueLimitPerUse: valueLimit, rules: parsed))
        case .contractWhitelist:
            guard !d.isEmpty, d.count % 20 == 0 else { throw fail("must be a non-empty list of 20-byte addresses, got \(d.count) bytes") }
            let targets = stride(from: 0, to: d.count, by: 20).map { Address(exactly: d[$0..<($0 + 20)])! }
            guard !targets.contains(.zero) else { throw fail("the zero address as a target") }
            return .contractWhitelist(targets)
        case .simpleGas:
            try need(32)
            let gas = UInt256(bigEndian: d[0..<16]), cost = UInt256(bigEndian: d[16..<32])
            guard !gas.isZero, !cost.isZero else { throw fail("gas and cost limits must both be non-zero") }
            return .simpleGas(gasLimit: gas, costLimit: cost)
        case .arg:
            guard case .tuple(let top) = try abi(ArgPolicyConfig.abiType), case .uint(let valueLimit) = top[0],
                  case .tuple(let tree) = top[1], case .uint(let root) = tree[0], case .array(let rules) = tree[1],
                  case .array(let packed) = tree[2]
            else { throw fail("unexpected shape") }
            var parsed: [ParamRule] = []
            for (i, r) in rules.enumerated() { parsed.append(try ParamRule(abi: r, path: "ArgPolicy rule \(i)")) }
            let nodes = packed.map { v -> ArgNode in if case .uint(let n) = v { ArgNode(packed: n) } else { .rule(0) } }
            guard !nodes.isEmpty else { throw fail("an empty expression tree") }
            guard Int(root.uint64!) < nodes.count else { throw fail("root node \(root) is out of bounds") }
            guard parsed.count <= ArgPolicyConfig.maximumRules else { throw fail("more than 128 rules") }
            guard nodes.count <= ArgPolicyConfig.maximumNodes else { throw fail("more than 255 nodes") }
            for (i, node) in nodes.enumerated() {
                switch node {
                case .rule(let r) where Int(r) >= parsed.count: throw fail("node \(i) refers to rule \(r) of \(parsed.count)")
                case .not(let c) where Int(c) >= nodes.count: throw fail("node \(i) has child \(c) out of bounds")
                case .and(let l, let r) where Int(l) >= nodes.count || Int(r) >= nodes.count,
                     .or(let l, let r) where Int(l) >= nodes.count || Int(r) >= nodes.count:
                    throw fail("node \(i) has a child out of bounds")
                default: break
                }
            }
            return .arg(ArgPolicyConfig(valueLimitPerUse: valueLimit, rootNodeIndex: UInt8(root.uint64!), rules: parsed, nodes: nodes))
        }
    }

    /// How many bytes of the init data the contract never reads.
    public static func ignoredBytes(_ kind: PolicyKind, initData: [UInt8]) -> Int {
        switch kind {
        case .sudo: initData.count
        case .timeFrame: max(0, initData.count - 12)
        case .usageLimit: max(0, initData.count - 16)
        case .valueLimit, .simpleGas: max(0, initData.count - 32)
        case .uniAction: max(0, initData.count - UniActionConfig.encodedSize)
        case .erc20SpendingLimit, .contractWhitelist, .arg: 0
        }
    }
}

