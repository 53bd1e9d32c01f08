import EthereumCore
import SmartSessions
import TOML

/// Why a rules file was refused; names the rule and the field.
public struct RulesError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What a rule, or the default, decides.
public enum RuleDecision: String, Sendable, CaseIterable {
    case approve, deny, ask
}

/// One line of `rules test`: a condition of a rule and whether it held.
public struct RuleTrace: Sendable, Equatable {
    public var rule: String
    public var condition: String
    public var passed: Bool
    public var detail: String
}

/// The outcome of evaluating a rules file on a reviewed request.
public struct RulesOutcome: Sendable {
    public var decision: RuleDecision
    /// The rule that decided, or nil for the default.
    public var rule: String?
    public var reason: String
    public var trace: [RuleTrace]
}

/// What the requesting client holds already, for the conditions that bound it across all its
/// sessions rather than one at a time.
public struct ClientHoldings: Sendable, Equatable {
    /// Its sessions neither expired nor revoked, and those of its requests being approved.
    public var liveSessions: Int
    /// The sessions made for it in the last 24 hours, revoked and expired ones too, and those of
    /// its requests being approved: a client that revokes its sessions to ask again is counted.
    public var sessionsLastDay: Int

    public init(liveSessions: Int, sessionsLastDay: Int) {
        self.liveSessions = liveSessions
        self.sessionsLastDay = sessionsLastDay
    }
}

/// A declarative rules file (TOML, no script engine): the first rule whose every condition
/// holds decides; otherwise the default does. See docs/rules.md.
public struct RulesFile: Sendable {
    public struct Rule: Sendable {
        public var name: String
        public var decision: RuleDecision
        public var reason: String
        var conditions: [Condition]
    }

    public var defaultDecision: RuleDecision
    public var rules: [Rule]

    public init(toml: String) throws(RulesError) {
        let document: JSONObject
        do { document = try TOMLDocument.parse(toml) } catch { throw RulesError("invalid TOML: \(error)") }
        try self.init(json: .object(document))
    }

    public init(json: JSONValue) throws(RulesError) {
        guard let root = json.objectValue else { throw RulesError("a rules file is a table") }
        let known = ["default", "rules"]
        if let extra = root.keys.first(where: { !known.contains($0) }) { throw RulesError("\(extra): unknown key" + Spelling.suggestion(for: extra, among: known)) }
        defaultDecision = try Self.decision(root["default"] ?? "ask", at: "default")
        var rules: [Rule] = []
        // `[rules]` (one table) for `[[rules]]` (a list of them) is the usual slip: read as no
        // rules at all, a deny rule would vanish and the default decide.
        guard root["rules"].map({ $0.arrayValue != nil }) ?? true else { throw RulesError("rules: a list of tables, written [[rules]], not [rules]") }
        for (i, item) in (root["rules"]?.arrayValue ?? []).enumerated() {
            guard let r = item.objectValue else { throw RulesError("rules[\(i)]: expected a table") }
            let name = r["name"]?.stringValue ?? "rule \(i + 1)"
            let at = "rules[\(i)] (\(name))"
            let known = ["name", "decision", "reason", "match"]
            if let extra = r.keys.first(where: { !known.contains($0) }) { throw RulesError("\(at).\(extra): unknown key" + Spelling.suggestion(for: extra, among: known)) }
            guard let decisionValue = r["decision"] else { throw RulesError("\(at).decision: missing") }
            let conditions = try Condition.parse(r["match"] ?? .object(JSONObject()), at: "\(at).match")
            rules.append(Rule(name: name, decision: try Self.decision(decisionValue, at: "\(at).decision"),
                              reason: r["reason"]?.stringValue ?? "", conditions: conditions))
        }
        self.rules = rules
    }

    static func decision(_ v: JSONValue, at: String) throws(RulesError) -> RuleDecision {
        guard let s = v.stringValue, let d = RuleDecision(rawValue: s) else { throw RulesError("\(at): approve, deny or ask") }
        return d
    }

    /// Whether a rule matches on the client's executable.
    public var namesExecutables: Bool {
        rules.contains { $0.conditions.contains { if case .clientExecutables = $0.kind { true } else { false } } }
    }

    /// Whether a condition looks at what the client holds already: counting that costs a
    /// look at the store, which rules without such a condition do not need.
    public var looksAtHoldings: Bool {
        rules.contains { $0.conditions.contains { switch $0.kind { case .maxLiveSessions, .maxSessionsPerDay: true; default: false } } }
    }

    /// Decides for `review` asked by `client`, for a session bound as `binding` says; the trace
    /// says which conditions held. `holdings`: what the client holds already; nil where that is
    /// not known, where a condition on it does not hold.
    public func evaluate(_ review: SessionReview, client: ClientIdentity?, holdings: ClientHoldings? = nil, binding: SessionBinding = []) -> RulesOutcome {
        var trace: [RuleTrace] = []
        for rule in rules {
            var matched = true
            for condition in rule.conditions {
                let (passed, detail) = condition.check(review, client: client, holdings: holdings, binding: binding)
                trace.append(RuleTrace(rule: rule.name, condition: condition.name, passed: passed, detail: detail))
                if !passed { matched = false; break }
            }
            if matched {
                return RulesOutcome(decision: rule.decision, rule: rule.name, reason: rule.reason.isEmpty ? "rule \(rule.name)" : rule.reason, trace: trace)
            }
        }
        return RulesOutcome(decision: defaultDecision, rule: nil, reason: "no rule matched; the default is \(defaultDecision.rawValue)", trace: trace)
    }
}
