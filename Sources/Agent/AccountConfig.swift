import EthereumCore
import SmartSessions

/// A smart account the agent enables sessions for: how it routes ERC-1271 signatures and
/// which owners (through which validator) must sign.
public struct AccountConfig: Sendable, Equatable {
    public var address: Address
    public var kind: AccountKind
    /// The validator installed on the account that checks the owners' enable signature.
    public var ownerValidator: Address
    public var threshold: Int
    public var owners: [Address]
    /// The chains sessions may be enabled on (empty: any).
    public var chains: Set<UInt64>

    public init(address: Address, kind: AccountKind, ownerValidator: Address = SmartSessionAddresses.ownableValidator,
                threshold: Int = 1, owners: [Address], chains: Set<UInt64> = []) {
        self.address = address
        self.kind = kind
        self.ownerValidator = ownerValidator
        self.threshold = threshold
        self.owners = owners
        self.chains = chains
    }
}

/// A failure the agent reports to a client: JSON-RPC code, a sentence and a machine-readable
/// reason (`not_found`, `denied_by_rules`, `policy_violation`, `expired`, `locked`, `bad_request`…).
public struct AgentError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Int
    public var reason: String
    public var message: String

    public init(_ reason: String, _ message: String, code: Int = -32000) {
        self.code = code
        self.reason = reason
        self.message = message
    }

    public static func badRequest(_ message: String) -> AgentError { AgentError("bad_request", message, code: -32602) }
    public static func notFound(_ message: String) -> AgentError { AgentError("not_found", message) }

    public var description: String { message }
}
