import EthereumCore
import SessionStore
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

extension AccountConfig {
    /// The form of `accounts_list` and `accounts_add`.
    public var json: JSONValue {
        .object(JSONObject([
            "address": .string(address.checksummed), "kind": .string(kind.rawValue), "ownerValidator": .string(ownerValidator.checksummed),
            "threshold": JSONValue(threshold), "owners": .array(owners.map { .string($0.checksummed) }),
            "chains": .array(chains.sorted().map { .string(String($0)) }),
        ]))
    }

    /// `path` names the value in errors (`account.kind: …`, `accounts[2].owners[0]: …`).
    public init(json: JSONValue, path: String = "account") throws(AgentError) {
        guard let o = json.objectValue else { throw .badRequest("\(path): an object") }
        let known = ["address", "kind", "ownerValidator", "threshold", "owners", "chains"]
        if let extra = o.keys.first(where: { !known.contains($0) }) {
            throw .badRequest("\(path).\(extra): unknown field" + Spelling.suggestion(for: extra, among: known))
        }
        func address(_ v: JSONValue?, _ field: String) throws(AgentError) -> Address {
            guard let s = v?.stringValue, let a = try? Address(s) else { throw .badRequest("\(path).\(field): an address") }
            return a
        }
        // Read as requests read integers (decimal or 0x hex), so "+5" is no chain id here either.
        func integer(_ v: JSONValue) -> UInt64? {
            switch v { case .number(let text), .string(let text): (try? UInt256(parsing: text))?.uint64; default: nil }
        }
        let accountAddress = try address(o["address"], "address")
        guard let kind = o["kind"]?.stringValue.flatMap(AccountKind.init(rawValue:)) else {
            throw .badRequest("\(path).kind: one of \(AccountKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let ownerList = o["owners"]?.arrayValue, !ownerList.isEmpty else { throw .badRequest("\(path).owners: at least one owner address") }
        var owners: [Address] = []
        for (i, v) in ownerList.enumerated() {
            let owner = try address(v, "owners[\(i)]")
            // OwnableValidator counts each signer once: a second copy would be a signature that never counts.
            guard !owners.contains(owner) else { throw .badRequest("\(path).owners[\(i)]: \(owner.checksummed) is listed twice") }
            owners.append(owner)
        }
        let threshold = try o["threshold"].map { v throws(AgentError) in
            guard let t = integer(v), t >= 1, t <= UInt64(owners.count) else { throw .badRequest("\(path).threshold: between 1 and the number of owners") }
            return Int(t)
        } ?? 1
        // Absent means any chain; anything but a list must not be read as absent.
        guard o["chains"].map({ $0.arrayValue != nil }) ?? true else { throw .badRequest("\(path).chains: a list of chain ids") }
        var chains = Set<UInt64>()
        for v in o["chains"]?.arrayValue ?? [] {
            guard let c = integer(v), c > 0 else { throw .badRequest("\(path).chains: chain ids") }
            chains.insert(c)
        }
        self.init(address: accountAddress, kind: kind,
                  ownerValidator: try o["ownerValidator"].map { v throws(AgentError) in try address(v, "ownerValidator") } ?? SmartSessionAddresses.ownableValidator,
                  threshold: threshold, owners: owners, chains: chains)
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
    /// "session sess-… not found" for `what` "session sess-…".
    public static func notFound(_ what: String) -> AgentError { AgentError("not_found", "\(what) not found") }

    public var description: String { message }
}

extension AgentError {
    /// The store's error as the agent answers it: its reason, in its words.
    init(_ error: StoreError) { self.init(error.reason, "\(error)") }
}
