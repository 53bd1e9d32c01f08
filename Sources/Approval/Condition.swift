import EthereumCore
import SmartSessions

/// One condition of a rule's `match` table.
struct Condition: Sendable {
    enum Kind: Sendable {
        case clientUIDs(Set<UInt32>)
        case clientExecutables(Set<String>)
        case clientUnits(Set<String>)
        case accounts(Set<Address>)
        case chains(Set<UInt64>)
        /// Every call's target is listed (the fallback action never is).
        case targets(Set<Address>)
        /// Every call's selector is listed ("0xffffffff" for plain value transfers).
        case selectors(Set<Selector>)
        case maxDuration(UInt64)
        case requireExpiry(Bool)
        case maxNativeValue(UInt256)
        /// Every token the session can move is listed, within its amount (base units).
        case maxTokenAmounts([Address: UInt256])
        /// None of these risk codes is raised (for approve rules).
        case forbid(Set<String>)
        /// At least one of these risk codes is raised (for deny and ask rules).
        case anyFlag(Set<String>)
        case maxSeverity(Severity)
        case allowExport(Bool)
        /// The client holds fewer live sessions than this: with `max_token_amounts`, what it can
        /// move across all of them is bounded, not only in each.
        case maxLiveSessions(Int)
        case maxSessionsPerDay(Int)
        /// The session is bound to each of these.
        case boundTo(SessionBinding)
        /// Every typed-data contents the session may sign is listed under its application's
        /// domain (by its separator); a session that signs none passes.
        case typedData([Bytes32: Set<String>])
    }

    var name: String
    var kind: Kind

    static let keys = ["client_uids", "client_executables", "client_units", "accounts", "chains", "targets", "selectors", "max_duration",
                       "require_expiry", "max_native_value", "max_token_amounts", "forbid", "any_flag", "max_severity", "allow_export", "max_live_sessions", "max_sessions_per_day", "bound_to", "typed_data"]

    static func parse(_ json: JSONValue, at: String) throws(RulesError) -> [Condition] {
        guard let table = json.objectValue else { throw RulesError("\(at): expected a table") }
        var out: [Condition] = []
        for (key, value) in table {
            let here = "\(at).\(key)"
            func strings() throws(RulesError) -> [String] {
                guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else { throw RulesError("\(here): a list of strings") }
                return items.map { $0.stringValue! }
            }
            func integers() throws(RulesError) -> [UInt64] {
                guard let items = value.arrayValue else { throw RulesError("\(here): a list of whole numbers, none negative") }
                var out: [UInt64] = []
                for item in items {
                    guard case .number(let n) = item, let v = UInt64(n) else { throw RulesError("\(here): a list of whole numbers, none negative") }
                    out.append(v)
                }
                return out
            }
            func addresses() throws(RulesError) -> Set<Address> {
                var out = Set<Address>()
                for s in try strings() {
                    guard let a = try? Address(s) else { throw RulesError("\(here): \(s) is not an address") }
                    out.insert(a)
                }
                return out
            }
            func flags() throws(RulesError) -> Set<String> {
                let names = try strings()
                if let unknown = names.first(where: { !RiskFlag.codes.contains($0) }) {
                    throw RulesError("\(here): \(unknown) is no flag a review raises; they are \(RiskFlag.codes.sorted().joined(separator: ", "))")
                }
                return Set(names)
            }
            func bool() throws(RulesError) -> Bool {
                guard let b = value.boolValue else { throw RulesError("\(here): true or false") }
                return b
            }
            let kind: Kind
            switch key {
            case "client_uids":
                let uids = try integers()
                guard let wide = uids.first(where: { UInt32(exactly: $0) == nil }) else { kind = .clientUIDs(Set(uids.map { UInt32($0) })); break }
                throw RulesError("\(here): \(wide) is no uid (at most \(UInt32.max))")
            case "client_executables": kind = .clientExecutables(Set(try strings()))
            case "client_units": kind = .clientUnits(Set(try strings()))
            case "accounts": kind = .accounts(try addresses())
            case "chains": kind = .chains(Set(try integers()))
            case "targets": kind = .targets(try addresses())
            case "selectors":
                var selectors = Set<Selector>()
                for s in try strings() {
                    if s.contains("(") {
                        guard let f = try? ABIFunction(parsing: s) else { throw RulesError("\(here): \(s) is not a function signature") }
                        selectors.insert(Selector(bytes: f.selector)!)
                    } else {
                        guard let b = try? Hex.decode(s), let sel = Selector(bytes: b) else { throw RulesError("\(here): \(s) is not a 4-byte selector") }
                        selectors.insert(sel)
                    }
                }
                kind = .selectors(selectors)
            case "max_duration":
                do { kind = .maxDuration(try DurationText.seconds(value.stringValue ?? "")) } catch { throw RulesError("\(here): \(error)") }
            case "require_expiry": kind = .requireExpiry(try bool())
            case "max_native_value":
                // Wei may be a TOML integer, as a token's base units may.
                let text: String? = if case .number(let n) = value { n } else { value.stringValue }
                guard let text, let wei = Self.amount(text, decimals: 18) else { throw RulesError("\(here): an amount like \"0.1 ETH\" or wei") }
                kind = .maxNativeValue(wei)
            case "max_token_amounts":
                guard let table = value.objectValue else { throw RulesError("\(here): a table of token address = base units") }
                var limits: [Address: UInt256] = [:]
                for (token, amount) in table {
                    guard let a = try? Address(token) else { throw RulesError("\(here).\(token): not a token address") }
                    let text: String? = if case .number(let n) = amount { n } else { amount.stringValue }
                    guard let text, let v = try? UInt256(parsing: text) else { throw RulesError("\(here).\(token): an amount in base units") }
                    limits[a] = v
                }
                kind = .maxTokenAmounts(limits)
            case "forbid": kind = .forbid(try flags())
            case "any_flag": kind = .anyFlag(try flags())
            case "max_severity":
                guard let s = value.stringValue.flatMap(Severity.init(rawValue:)) else { throw RulesError("\(here): info, warning, high or critical") }
                kind = .maxSeverity(s)
            case "allow_export": kind = .allowExport(try bool())
            case "max_live_sessions": kind = .maxLiveSessions(try sessionCount(value, at: here))
            case "max_sessions_per_day": kind = .maxSessionsPerDay(try sessionCount(value, at: here))
            case "bound_to":
                var required: SessionBinding = []
                for name in try strings() {
                    guard let binding = SessionBinding(name: name) else { throw RulesError("\(here): \(SessionBinding.unknown(name))") }
                    required.insert(binding)
                }
                kind = .boundTo(required)
            case "typed_data":
                // As a request lists it: [{domain = {…}, contents = ["Mail(address to)", …]}].
                do {
                    let (contexts, _) = try RequestCompiler.typedDataContents(value, path: here)
                    kind = .typedData(Dictionary(uniqueKeysWithValues: contexts.map { ($0.appDomainSeparator, Set($0.contentNames)) }))
                } catch { throw RulesError(error.message) }
            default:
                throw RulesError("\(here): unknown condition (known: \(keys.joined(separator: ", ")))")
            }
            out.append(Condition(name: key, kind: kind))
        }
        return out
    }

    /// A count of sessions a rule allows: a whole number, at least 1.
    static func sessionCount(_ value: JSONValue, at here: String) throws(RulesError) -> Int {
        guard case .number(let n) = value, let count = Int(n), count > 0 else { throw RulesError("\(here): a number of sessions, at least 1") }
        return count
    }

    /// "0.1 ETH" or a base-unit integer.
    static func amount(_ text: String, decimals: Int) -> UInt256? {
        let parts = text.split(separator: " ")
        if parts.count == 2, parts[1].uppercased() == "ETH" { return try? Amounts.parse(String(parts[0]), decimals: decimals) }
        return parts.count == 1 ? try? UInt256(parsing: text) : nil
    }

    func check(_ r: SessionReview, client: ClientIdentity?, holdings: ClientHoldings?, binding: SessionBinding) -> (Bool, String) {
        switch kind {
        case .clientUIDs(let uids):
            guard let c = client else { return (false, "no client identity") }
            return (uids.contains(c.uid), "client uid \(c.uid)")
        case .clientExecutables(let exes):
            guard let exe = client?.executable else { return (false, "client executable unknown") }
            return (exes.contains(exe), "client executable \(exe)")
        case .clientUnits(let units):
            guard let unit = client?.unit else { return (false, "client is in no systemd unit") }
            return (units.contains(unit), "client unit \(unit)")
        case .accounts(let accounts):
            return (accounts.contains(r.account), "account \(r.account)")
        case .chains(let chains):
            let outside = r.chains.map(\.chainId).filter { !chains.contains($0) }
            return (outside.isEmpty, outside.isEmpty ? "all chains listed" : "chain \(outside.map(String.init).joined(separator: ", ")) not listed")
        case .targets(let targets):
            if r.actions.contains(where: { $0.kind == .fallback || $0.kind == .smartSessionCall }) { return (false, "the session has a fallback or admin action: any target") }
            let outside = r.actions.map(\.target).filter { !targets.contains($0) }
            return (outside.isEmpty, outside.isEmpty ? "all targets listed" : "target \(outside[0]) not listed")
        case .selectors(let selectors):
            let outside = r.actions.filter { $0.kind != .fallback && !selectors.contains($0.selector) }
            if r.actions.contains(where: { $0.kind == .fallback }) { return (false, "the fallback action allows any selector") }
            return (outside.isEmpty, outside.isEmpty ? "all selectors listed" : "selector \(outside[0].selector) not listed")
        case .maxDuration(let seconds):
            guard let end = r.expiresAt else { return (false, "the session never expires") }
            let duration = end > r.now ? end - r.now : 0
            return (duration <= seconds, "the session lasts \(duration) s of at most \(seconds) s")
        case .requireExpiry(let required):
            let expires = r.expiresAt != nil
            return (!required || expires, expires ? "the session expires" : "the session never expires")
        case .maxNativeValue(let limit):
            switch r.exposure.native {
            case .limited(let v): return (v <= limit, "native value at most \(v) wei (limit \(limit))")
            case .unbounded(let why): return (false, "native value unbounded: \(why)")
            }
        case .maxTokenAmounts(let limits):
            for t in r.exposure.tokens {
                guard let limit = limits[t.token] else { return (false, "token \(t.token) is not listed") }
                switch t.bound {
                case .limited(let v) where v > limit: return (false, "\(t.token): \(v) above \(limit)")
                case .unbounded(let why): return (false, "\(t.token) unbounded: \(why)")
                default: continue
                }
            }
            if !r.exposure.otherContracts.isEmpty { return (false, "calls to other contracts: \(r.exposure.otherContracts[0])") }
            return (true, "every token within its limit")
        case .forbid(let codes):
            let hit = r.risks.filter { codes.contains($0.code) }
            return (hit.isEmpty, hit.isEmpty ? "no forbidden flag" : "flag \(hit[0].code): \(hit[0].message)")
        case .anyFlag(let codes):
            let hit = r.risks.filter { codes.contains($0.code) }
            return (!hit.isEmpty, hit.isEmpty ? "none of the flags" : "flag \(hit[0].code): \(hit[0].message)")
        case .maxSeverity(let max):
            let worst = r.highestSeverity
            return ((worst ?? .info) <= max || worst == nil, "highest severity \(worst?.rawValue ?? "none") (at most \(max.rawValue))")
        case .allowExport(let allowed):
            return (allowed || !r.exportKey, r.exportKey ? "the client asks for the key" : "no key export")
        case .maxLiveSessions(let count):
            guard let held = holdings?.liveSessions else { return (false, "the client's sessions are not known") }
            return (held < count, "the client holds \(held) live session\(held == 1 ? "" : "s") (fewer than \(count) allowed)")
        case .maxSessionsPerDay(let count):
            guard let made = holdings?.sessionsLastDay else { return (false, "the client's sessions are not known") }
            return (made < count, "the client was given \(made) session\(made == 1 ? "" : "s") in the last 24 hours (fewer than \(count) allowed)")
        case .typedData(let listed):
            for c in r.erc7739Contexts {
                guard let names = listed[c.appDomainSeparator] else { return (false, "typed data under the domain \(c.appDomainSeparator.hex) is not listed") }
                if let other = c.contentNames.first(where: { !names.contains($0) }) {
                    return (false, "typed data \(DisplayText.escaped(String(reflecting: other))) under the domain \(c.appDomainSeparator.hex) is not listed")
                }
            }
            return (true, r.erc7739Contexts.isEmpty ? "the session signs no typed data" : "all typed data listed")
        case .boundTo(let required):
            let bound = binding.names.isEmpty ? "to its uid alone" : "to its " + binding.names.joined(separator: ", ")
            return (binding.isSuperset(of: required), "the session is bound \(bound)")
        }
    }
}
