import EthereumCore

/// How a 32-byte calldata word is compared with a rule's reference (`ParamCondition`).
public enum ParamCondition: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case equal = 0
    case greaterThan = 1
    case lessThan = 2
    case greaterThanOrEqual = 3
    case lessThanOrEqual = 4
    case notEqual = 5
    /// ref = min (high 128 bits) ‖ max (low 128 bits), inclusive.
    case inRange = 6

    public var description: String {
        switch self {
        case .equal: "=="
        case .greaterThan: ">"
        case .lessThan: "<"
        case .greaterThanOrEqual: ">="
        case .lessThanOrEqual: "<="
        case .notEqual: "!="
        case .inRange: "in"
        }
    }
}

/// One argument rule of UniActionPolicy and ArgPolicy: the word at calldata[4+offset…+32]
/// compared as an unsigned integer; with `isLimited`, the sum of the words over the session's
/// life may not exceed `limit` (`used` is where the count starts).
public struct ParamRule: Hashable, Sendable {
    public var condition: ParamCondition
    public var offset: UInt64
    public var isLimited: Bool
    public var ref: Bytes32
    public var limit: UInt256
    public var used: UInt256

    public init(condition: ParamCondition, offset: UInt64, isLimited: Bool = false, ref: Bytes32, limit: UInt256 = 0, used: UInt256 = 0) {
        self.condition = condition
        self.offset = offset
        self.isLimited = isLimited
        self.ref = ref
        self.limit = limit
        self.used = used
    }

    static let abiType = try! ABIType(parsing: "(uint8,uint64,bool,bytes32,(uint256,uint256))")

    var abiValue: ABIValue {
        .tuple([.uint(UInt256(UInt64(condition.rawValue))), .uint(UInt256(offset)), .bool(isLimited), .bytes32(ref),
                .tuple([.uint(limit), .uint(used)])])
    }

    init(abi: ABIValue, path: String) throws(SmartSessionError) {
        guard case .tuple(let f) = abi, case .uint(let c) = f[0], case .uint(let o) = f[1], case .bool(let l) = f[2],
              case .fixedBytes(let r) = f[3], case .tuple(let u) = f[4], case .uint(let limit) = u[0], case .uint(let used) = u[1]
        else { throw SmartSessionError("\(path): unexpected shape", reason: "invalid_policy") }
        guard let condition = c.uint64.flatMap({ UInt8(exactly: $0) }).flatMap(ParamCondition.init(rawValue:)) else {
            throw SmartSessionError("\(path): condition \(c) is not a ParamCondition (0…6); the contract reverts on it", reason: "invalid_policy")
        }
        self.init(condition: condition, offset: o.uint64!, isLimited: l, ref: Bytes32(r), limit: limit, used: used)
    }

    /// Whether `word` passes the comparison (without the cumulative limit).
    public func accepts(_ word: Bytes32) -> Bool {
        let p = UInt256(word), r = UInt256(ref)
        switch condition {
        case .equal: return p == r
        case .greaterThan: return p > r
        case .lessThan: return p < r
        case .greaterThanOrEqual: return p >= r
        case .lessThanOrEqual: return p <= r
        case .notEqual: return p != r
        case .inRange: return p >= r.shiftedRight(128) && p <= (r & UInt256.powerOfTwo(128).subtractingReportingOverflow(.one).partialValue)
        }
    }
}

/// UniActionPolicy's `ActionConfig`: a value cap per call and up to 16 rules, all of which
/// must pass.
public struct UniActionConfig: Hashable, Sendable {
    public static let maximumRules = 16
    public var valueLimitPerUse: UInt256
    public var rules: [ParamRule]

    public init(valueLimitPerUse: UInt256, rules: [ParamRule]) {
        self.valueLimitPerUse = valueLimitPerUse
        self.rules = rules
    }

    /// `(uint256 valueLimitPerUse, (uint256 length, ParamRule[16] rules))`, 3136 bytes.
    static let abiType = try! ABIType(parsing: "(uint256,(uint256,(uint8,uint64,bool,bytes32,(uint256,uint256))[16]))")
    static let encodedSize = 3136
}

/// A node of ArgPolicy's expression tree.
public enum ArgNode: Hashable, Sendable {
    case rule(UInt8)
    case not(UInt8)
    case and(UInt8, UInt8)
    case or(UInt8, UInt8)

    /// bits 0–1 type, 2–9 rule index, 10–17 left child, 18–25 right child.
    public var packed: UInt256 {
        switch self {
        case .rule(let i): UInt256(UInt64(i) << 2)
        case .not(let c): UInt256(1 | UInt64(c) << 10)
        case .and(let l, let r): UInt256(2 | UInt64(l) << 10 | UInt64(r) << 18)
        case .or(let l, let r): UInt256(3 | UInt64(l) << 10 | UInt64(r) << 18)
        }
    }

    /// Reads the bits the contract reads; the others are ignored, as on chain.
    public init(packed: UInt256) {
        let low = packed.limbs.0
        let rule = UInt8(truncatingIfNeeded: low >> 2), left = UInt8(truncatingIfNeeded: low >> 10), right = UInt8(truncatingIfNeeded: low >> 18)
        switch low & 3 {
        case 0: self = .rule(rule)
        case 1: self = .not(left)
        case 2: self = .and(left, right)
        default: self = .or(left, right)
        }
    }
}

/// ArgPolicy's `ActionConfig`: a value cap per call and a boolean expression over rules.
public struct ArgPolicyConfig: Hashable, Sendable {
    public static let maximumRules = 128
    /// The contract allows 256 by its constant, but its uint8 loop counter overflows (and
    /// reverts) at 256 nodes.
    public static let maximumNodes = 255
    public var valueLimitPerUse: UInt256
    public var rootNodeIndex: UInt8
    public var rules: [ParamRule]
    public var nodes: [ArgNode]

    public init(valueLimitPerUse: UInt256, rootNodeIndex: UInt8, rules: [ParamRule], nodes: [ArgNode]) {
        self.valueLimitPerUse = valueLimitPerUse
        self.rootNodeIndex = rootNodeIndex
        self.rules = rules
        self.nodes = nodes
    }

    static let abiType = try! ABIType(parsing: "(uint256,(uint8,(uint8,uint64,bool,bytes32,(uint256,uint256))[],uint256[]))")

    /// Whether evaluating from the root can revisit a node (the contract would recurse until it
    /// runs out of gas, so every check fails).
    public var hasCycle: Bool {
        var state = [UInt8](repeating: 0, count: nodes.count)   // 0 new, 1 on stack, 2 done
        func visit(_ i: Int) -> Bool {
            if state[i] == 1 { return true }
            if state[i] == 2 { return false }
            state[i] = 1
            let children: [UInt8] = switch nodes[i] {
            case .rule: []
            case .not(let c): [c]
            case .and(let l, let r), .or(let l, let r): [l, r]
            }
            for c in children where visit(Int(c)) { return true }
            state[i] = 2
            return false
        }
        return visit(Int(rootNodeIndex))
    }
}
