/// How much a finding should worry the approver.
public enum Severity: String, Sendable, Comparable, CaseIterable {
    case info, warning, high, critical

    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (l: Severity, r: Severity) -> Bool { l.rank < r.rank }
}

/// A finding about a session, with a stable machine-readable code (rules files match on it).
public struct RiskFlag: Hashable, Sendable {
    public var severity: Severity
    /// One of `codes`.
    public var code: String
    public var message: String

    /// Every code a review raises: what rules files may name (a name not among them, a typo,
    /// would match nothing, and a rule meant to stop such sessions would let them through).
    public static let codes: Set<String> = [
        "sudo", "no_expiry", "no_action_restriction", "admin_access", "unsafe_enable", "paymaster", "unknown_policy", "older_policy",
        "unknown_selector", "unlimited_approval", "very_large_limit", "erc7739", "unknown_session_validator", "self_call",
        "account_administration", "unusable_action", "policy_never_passes", "key_export", "already_expired", "multichain", "testnet",
    ]

    public init(_ severity: Severity, _ code: String, _ message: String) {
        assert(Self.codes.contains(code), "a risk flag code not in RiskFlag.codes: \(code)")
        self.severity = severity
        self.code = code
        self.message = message
    }
}
