import EthereumCore

/// Why protocol data could not be read.
public struct SmartSessionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A machine-readable reason (`bad_request`, `unknown_policy`, …).
    public var reason: String
    /// What was wrong, naming the field.
    public var message: String

    public init(_ message: String, reason: String = "bad_request") {
        self.message = message
        self.reason = reason
    }

    public var description: String { message }
}

/// The ABI types of the Solidity structs (spec §2).
public enum SessionABI {
    static let policyData = "(address,bytes)"
    static let sessionSignature = "(address,bytes,bytes32,\(policyData)[],((bytes32,string[])[],\(policyData)[]),(bytes4,address,\(policyData)[])[],bool)"
    public static let session = try! ABIType(parsing: sessionSignature)
    public static let enableSession = try! ABIType(parsing: "(uint8,(uint64,bytes32)[],\(sessionSignature),bytes)")
    public static let sessions = ABIType.array(session)
}

extension PolicyData {
    var abiValue: ABIValue { .tuple([.address(policy), .bytes(initData)]) }

    init(abi: ABIValue) throws(SmartSessionError) {
        guard case .tuple(let f) = abi, f.count == 2, case .address(let p) = f[0], case .bytes(let d) = f[1] else {
            throw SmartSessionError("PolicyData: unexpected shape")
        }
        self.init(policy: p, initData: d)
    }
}

extension Session {
    public var abiValue: ABIValue {
        .tuple([
            .address(sessionValidator), .bytes(sessionValidatorInitData), .bytes32(salt),
            .array(userOpPolicies.map(\.abiValue)),
            .tuple([
                .array(erc7739Policies.allowedERC7739Content.map { .tuple([.bytes32($0.appDomainSeparator), .array($0.contentNames.map { .string($0) })]) }),
                .array(erc7739Policies.erc1271Policies.map(\.abiValue)),
            ]),
            .array(actions.map { .tuple([.fixedBytes($0.actionTargetSelector.bytes), .address($0.actionTarget), .array($0.actionPolicies.map(\.abiValue))]) }),
            .bool(permitERC4337Paymaster),
        ])
    }

    /// Reads a decoded `Session` tuple.
    public init(abi: ABIValue) throws(SmartSessionError) {
        guard case .tuple(let f) = abi, f.count == 7,
              case .address(let validator) = f[0], case .bytes(let initData) = f[1], case .fixedBytes(let salt) = f[2],
              case .array(let userOp) = f[3], case .tuple(let erc7739) = f[4], erc7739.count == 2,
              case .array(let contexts) = erc7739[0], case .array(let erc1271) = erc7739[1],
              case .array(let actions) = f[5], case .bool(let paymaster) = f[6]
        else { throw SmartSessionError("Session: unexpected shape") }
        var parsedContexts: [ERC7739Context] = []
        for c in contexts {
            guard case .tuple(let cf) = c, case .fixedBytes(let sep) = cf[0], case .array(let names) = cf[1] else {
                throw SmartSessionError("ERC7739Context: unexpected shape")
            }
            var strings: [String] = []
            for n in names {
                guard case .string(let s) = n else { throw SmartSessionError("ERC7739Context: unexpected shape") }
                strings.append(s)
            }
            parsedContexts.append(ERC7739Context(appDomainSeparator: Bytes32(sep), contentNames: strings))
        }
        var parsedActions: [ActionData] = []
        for a in actions {
            guard case .tuple(let af) = a, case .fixedBytes(let sel) = af[0], case .address(let target) = af[1], case .array(let ps) = af[2] else {
                throw SmartSessionError("ActionData: unexpected shape")
            }
            var policies: [PolicyData] = []
            for p in ps { policies.append(try PolicyData(abi: p)) }
            parsedActions.append(ActionData(actionTargetSelector: Selector(bytes: sel)!, actionTarget: target, actionPolicies: policies))
        }
        var userOpPolicies: [PolicyData] = []
        for p in userOp { userOpPolicies.append(try PolicyData(abi: p)) }
        var erc1271Policies: [PolicyData] = []
        for p in erc1271 { erc1271Policies.append(try PolicyData(abi: p)) }
        self.init(sessionValidator: validator, sessionValidatorInitData: initData, salt: Bytes32(salt),
                  userOpPolicies: userOpPolicies,
                  erc7739Policies: ERC7739Data(allowedERC7739Content: parsedContexts, erc1271Policies: erc1271Policies),
                  actions: parsedActions, permitERC4337Paymaster: paymaster)
    }
}

extension EnableSession {
    public var abiValue: ABIValue {
        .tuple([
            .uint(UInt256(UInt64(chainDigestIndex))),
            .array(hashesAndChainIds.map { .tuple([.uint(UInt256($0.chainId)), .bytes32($0.sessionDigest)]) }),
            sessionToEnable.abiValue,
            .bytes(permissionEnableSig),
        ])
    }

    public init(abi: ABIValue) throws(SmartSessionError) {
        guard case .tuple(let f) = abi, f.count == 4, case .uint(let index) = f[0], case .array(let digests) = f[1],
              case .bytes(let sig) = f[3] else { throw SmartSessionError("EnableSession: unexpected shape") }
        var chainDigests: [ChainDigest] = []
        for d in digests {
            guard case .tuple(let df) = d, case .uint(let chain) = df[0], case .fixedBytes(let digest) = df[1] else {
                throw SmartSessionError("ChainDigest: unexpected shape")
            }
            chainDigests.append(ChainDigest(chainId: chain.uint64!, sessionDigest: Bytes32(digest)))
        }
        self.init(chainDigestIndex: UInt8(index.uint64!), hashesAndChainIds: chainDigests,
                  sessionToEnable: try Session(abi: f[2]), permissionEnableSig: sig)
    }
}
