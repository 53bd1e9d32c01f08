import EthereumCore

/// Compiles what clients write (the native request format of docs/requests.md, the two
/// ERC-7715 shapes, or a raw Session) into a `CompiledRequest`, deterministically: the same
/// request, keys, time and token list always give the same Session.
public struct RequestCompiler: Sendable {
    /// Values the command line or the agent decides, which win over the request's own.
    public struct Overrides: Sendable {
        public var account: Address?
        public var chains: [UInt64]?
        public var nonces: [UInt64: UInt256] = [:]
        public var mode: SmartSessionMode?
        public init(account: Address? = nil, chains: [UInt64]? = nil, nonces: [UInt64: UInt256] = [:], mode: SmartSessionMode? = nil) {
            self.account = account
            self.chains = chains
            self.nonces = nonces
            self.mode = mode
        }
    }

    public var tokens: TokenList
    /// Unix seconds; durations ("3d") count from here.
    public var now: UInt64
    /// The session key(s) the agent generated; they become the OwnableValidator owners.
    public var sessionKeys: [Address]
    public var sessionKeyThreshold: Int
    public var overrides: Overrides

    public init(tokens: TokenList = TokenList(), now: UInt64, sessionKeys: [Address], sessionKeyThreshold: Int = 1, overrides: Overrides = Overrides()) {
        self.tokens = tokens
        self.now = now
        self.sessionKeys = sessionKeys
        self.sessionKeyThreshold = sessionKeyThreshold
        self.overrides = overrides
    }

    public static func format(of json: JSONValue) -> RequestFormat {
        let object = json.arrayValue?.first ?? json
        if object["session"] != nil { return .rawSession }
        if object["rules"] != nil || object["permission"]?["isAdjustmentAllowed"] != nil { return .requestExecutionPermissions }
        if object["signer"] != nil || object["permission"] != nil || object["policies"] != nil { return .grantPermissions }
        if let first = object["permissions"]?.arrayValue?.first, first["type"] != nil { return .grantPermissions }
        return .native
    }

    public func compile(_ json: JSONValue) throws(SmartSessionError) -> CompiledRequest {
        var request = json
        if let array = json.arrayValue {
            guard array.count == 1 else { throw SmartSessionError("one request per session; got \(array.count)") }
            request = array[0]
        }
        var compiled: CompiledRequest
        switch Self.format(of: request) {
        case .native: compiled = try compileNative(request)
        case .rawSession: compiled = try compileRaw(request)
        case .grantPermissions, .requestExecutionPermissions: compiled = try ERC7715Compiler(base: self).compile(request)
        }
        if let mode = overrides.mode { compiled.mode = mode }
        for i in compiled.chains.indices {
            if let nonce = overrides.nonces[compiled.chains[i].chainId] { compiled.chains[i].nonce = nonce }
        }
        try check(&compiled)
        return compiled
    }

    /// Rules SmartSession applies when enabling, checked before anyone is asked to approve;
    /// records each known policy's decoded configuration.
    func check(_ c: inout CompiledRequest) throws(SmartSessionError) {
        guard !c.chains.isEmpty else { throw SmartSessionError("chains: at least one chain") }
        guard Set(c.chains.map(\.chainId)).count == c.chains.count else { throw SmartSessionError("chains: listed twice") }
        guard c.chains.count <= 255 else { throw SmartSessionError("chains: at most 255 (chainDigestIndex is a uint8)") }
        // The ENABLE userOp.signature carries the whole session. One larger than any signature
        // we decode could never be sent, and reviewing it would cost the agent seconds and
        // hundreds of megabytes (a 1 MiB request of 7,000 actions reviews to 140 MB of JSON).
        let placeholder = EnableSession(chainDigestIndex: 0, hashesAndChainIds: c.chains.map { ChainDigest(chainId: $0.chainId, sessionDigest: .zero) },
                                        sessionToEnable: c.session, permissionEnableSig: [UInt8](repeating: 0, count: 65))
        let size = SessionSignature.enablePayload(placeholder, signature: [UInt8](repeating: 0, count: 65)).count
        guard size <= SessionSignature.maximumEnablePayload else {
            throw SmartSessionError("the session is too large: its ENABLE data would be \(size) bytes, more than the \(SessionSignature.maximumEnablePayload) a Smart Sessions signature is decoded from (\(c.session.actions.count) actions)")
        }
        // SmartSession keeps one policy set per action and one init data per policy contract
        // in a set, the last one given: a review of each copy would show limits that do not hold.
        var actionAt: [ActionKey: Int] = [:]
        for (i, a) in c.session.actions.enumerated() {
            guard a.actionTarget != .zero, a.actionTarget != SmartSessionAddresses.smartSession else {
                throw SmartSessionError("\(c.field("actions[\(i)]")): SmartSession refuses the zero address or itself as a target")
            }
            if let first = actionAt.updateValue(i, forKey: ActionKey(target: a.actionTarget, selector: a.actionTargetSelector)) {
                throw SmartSessionError("\(c.field("actions[\(i)]")): \(a.actionTarget) \(a.actionTargetSelector) is allowed already by \(c.field("actions[\(first)]")); SmartSession would merge their policies, each contract's last init data winning: allow it once")
            }
        }
        let slots: [(PolicySlot, [PolicyData], String)] = [(.userOp, c.session.userOpPolicies, "userOpPolicies")]
            + c.session.actions.enumerated().map { (.action, $1.actionPolicies, "actions[\($0)].actionPolicies") }
            + [(.erc1271, c.session.erc7739Policies.erc1271Policies, "erc1271Policies")]
        for (slot, policies, path) in slots {
            var seen: [Address: Int] = [:]
            for (j, p) in policies.enumerated() {
                let field = c.field("\(path)[\(j)]")
                if let first = seen.updateValue(j, forKey: p.policy) {
                    throw SmartSessionError("\(field): the policy \(p.policy) is \(c.field("\(path)[\(first)]")) again; SmartSession would keep only the last init data: give it once")
                }
                guard let deployment = PolicyRegistry.deployment(at: p.policy) else { continue }   // unknown: flagged in review
                guard deployment.kind.slots.contains(slot) else {
                    throw SmartSessionError("\(field): \(deployment.kind.rawValue) cannot be used as a \(slot.rawValue) policy; SmartSession would refuse it")
                }
                if c.decodedPolicies[p] != nil { continue }   // the same init data, decoded already
                do { c.decodedPolicies[p] = try PolicyConfig.decode(deployment.kind, initData: p.initData) } catch {
                    throw SmartSessionError("\(field): \(error.message)", reason: error.reason)
                }
            }
        }
    }

    var sessionValidator: (Address, [UInt8]) {
        get throws(SmartSessionError) {
            guard !sessionKeys.isEmpty else { throw SmartSessionError("no session key to bind the session to") }
            let config = try OwnableValidatorConfig(threshold: sessionKeyThreshold, owners: sessionKeys)
            return (SmartSessionAddresses.ownableValidator, config.initData)
        }
    }

    func chainTargets(_ ids: [UInt64], nonces: [UInt64: UInt256]) -> [ChainTarget] {
        (overrides.chains ?? ids).map { ChainTarget(chainId: $0, nonce: nonces[$0] ?? 0) }
    }

    func chainList(_ value: JSONValue?, path: String) throws(SmartSessionError) -> [UInt64] {
        guard let value else {
            if overrides.chains != nil { return [] }
            throw SmartSessionError("\(path): missing (the chains to enable the session on)")
        }
        guard let items = value.arrayValue else { throw SmartSessionError("\(path): expected an array of chain ids") }
        var out: [UInt64] = []
        for (i, item) in items.enumerated() {
            guard let id = try JSONFields.integer(item, path: "\(path)[\(i)]").uint64, id > 0 else {
                throw SmartSessionError("\(path)[\(i)]: not a chain id")
            }
            out.append(id)
        }
        return out
    }

    func nonceMap(_ value: JSONValue?, path: String) throws(SmartSessionError) -> [UInt64: UInt256] {
        guard let value else { return [:] }
        guard let object = value.objectValue else { throw SmartSessionError("\(path): expected an object of chain id to nonce") }
        var out: [UInt64: UInt256] = [:]
        for (key, v) in object {
            guard let chain = UInt64(key) else { throw SmartSessionError("\(path).\(key): not a chain id") }
            out[chain] = try JSONFields.integer(v, path: "\(path).\(key)")
        }
        return out
    }

    func account(_ f: JSONFields) throws(SmartSessionError) -> Address {
        if let a = overrides.account { return a }
        return try f.address("account")
    }

    func mode(_ value: JSONValue?, path: String) throws(SmartSessionError) -> SmartSessionMode {
        guard let value else { return .enable }
        switch value.stringValue?.lowercased() {
        case "enable", "1": return .enable
        case "unsafe-enable", "unsafe_enable", "2": return .unsafeEnable
        default: throw SmartSessionError("\(path): \"enable\" or \"unsafe-enable\"")
        }
    }

    // MARK: - The native format

    /// `typedData`: `[{"domain": {…EIP-712 domain…}, "contents": ["Mail(address to)", …]}]`, the
    /// typed data the session key may sign for the account's ERC-1271: each application's
    /// domain, and the contents descriptions (`encodeType`, optionally followed by the name)
    /// the agent will sign under it. Returns the contexts, and each domain in words. Rules
    /// files name typed data the same way.
    public static func typedDataContents(_ value: JSONValue, path: String) throws(SmartSessionError) -> ([ERC7739Context], [Bytes32: String]) {
        guard let items = value.arrayValue, !items.isEmpty else { throw SmartSessionError("\(path): a list of {\"domain\", \"contents\"}, at least one") }
        var contexts: [ERC7739Context] = [], texts: [Bytes32: String] = [:]
        for (i, item) in items.enumerated() {
            let entry = try JSONFields(item, path: "\(path)[\(i)]")
            try entry.only(["domain", "contents"])
            let domain = try entry.value("domain")
            let separator: Bytes32
            do throws(TypedDataError) {
                separator = try TypedData(json: .object(JSONObject(["types": .object(JSONObject()), "primaryType": "EIP712Domain", "domain": domain]))).domainSeparator
            } catch {
                throw SmartSessionError("\(entry.field("domain")): \(error.reason)")
            }
            guard !contexts.contains(where: { $0.appDomainSeparator == separator }) else {
                throw SmartSessionError("\(entry.field("domain")): the same domain as an earlier entry; list its contents together")
            }
            let contents = try entry.array("contents")
            guard !contents.isEmpty else { throw SmartSessionError("\(entry.field("contents")): at least one contents type") }
            var names: [String] = []
            for (j, c) in contents.enumerated() {
                guard let text = c.stringValue else { throw SmartSessionError("\(entry.field("contents[\(j)]")): a contents type, such as \"Mail(address to)\"") }
                do { _ = try NestedTypedData(appDomainSeparator: separator, contents: .zero, contentsDescription: text) } catch {
                    throw SmartSessionError("\(entry.field("contents[\(j)]")): \(error.message)")
                }
                guard !names.contains(text) else { throw SmartSessionError("\(entry.field("contents[\(j)]")): listed twice") }
                names.append(text)
            }
            contexts.append(ERC7739Context(appDomainSeparator: separator, contentNames: names))
            texts[separator] = Self.text(ofDomain: domain)
        }
        return (contexts, texts)
    }

    /// A domain as the approver reads it: its fields in EIP-712's order, the client's strings
    /// quoted with what could disguise them written out. Only called on a domain that hashed.
    static func text(ofDomain domain: JSONValue) -> String {
        ["name", "version", "chainId", "verifyingContract", "salt"].compactMap { key -> String? in
            guard let value = domain[key] else { return nil }
            let shown: String
            switch key {
            case "name", "version": shown = DisplayText.escaped(String(reflecting: value.stringValue ?? ""))
            case "chainId":
                let id = try? JSONFields.integer(value, path: key)
                shown = id.map { n in n.uint64.map(Chains.label) ?? n.description } ?? value.serialized
            case "verifyingContract": shown = value.stringValue.flatMap { try? Address($0).checksummed } ?? value.serialized
            default: shown = value.stringValue ?? value.serialized
            }
            return "\(key) \(shown)"
        }.joined(separator: ", ")
    }

    func compileNative(_ json: JSONValue) throws(SmartSessionError) -> CompiledRequest {
        let f = try JSONFields(json, path: "")
        try f.only(["account", "accountKind", "chains", "nonces", "mode", "salt", "label", "validity", "maxUses", "maxValue",
                    "maxGas", "sudo", "paymaster", "export", "permissions", "typedData"])
        let chains = try chainList(f.optional("chains"), path: "chains")
        let values = RequestValues(tokens: tokens, chains: overrides.chains ?? chains, now: now)
        var userOpPolicies: [(config: PolicyConfig, field: String)] = []
        if let v = f.optional("validity") { userOpPolicies.append((try values.validity(v, path: "validity"), "validity")) }
        if let v = f.optional("maxUses") { userOpPolicies.append((.usageLimit(try values.count(v, path: "maxUses")), "maxUses")) }
        if let v = f.optional("maxValue") {
            let limit = try values.amount(v, path: "maxValue", of: .native)
            guard !limit.isZero else { throw SmartSessionError("maxValue: 0 is no limit to ValueLimitPolicy; leave it out and give actions no value") }
            userOpPolicies.append((.valueLimit(limit), "maxValue"))
        }
        if let v = f.optional("maxGas") {
            let g = try JSONFields(v, path: "maxGas")
            try g.only(["gas", "cost"])
            let gas = try values.count(try g.value("gas"), path: "maxGas.gas")
            let cost = try values.amount(try g.value("cost"), path: "maxGas.cost", of: .native)
            guard !cost.isZero, cost.bitWidth <= 128 else { throw SmartSessionError("maxGas.cost: must be between 1 and 2^128-1 wei") }
            userOpPolicies.append((.simpleGas(gasLimit: gas, costLimit: cost), "maxGas"))
        }
        if try f.optionalBool("sudo") == true { userOpPolicies.append((.sudo, "sudo")) }

        var actions: [ActionData] = [], actionFields: [(field: String, policyFields: [String])] = []
        var functions: [ActionKey: ABIFunction] = [:]
        let permissions = try f.array("permissions")
        guard !permissions.isEmpty else { throw SmartSessionError("permissions: at least one permission") }
        for (i, p) in permissions.enumerated() {
            let path = "permissions[\(i)]"
            for (action, policyFields, function) in try compilePermission(p, path: path, values: values) {
                actions.append(action)
                actionFields.append((path, policyFields))
                if let function { functions[ActionKey(target: action.actionTarget, selector: action.actionTargetSelector)] = function }
            }
        }
        var erc7739 = ERC7739Data()
        var appDomains: [Bytes32: String] = [:]
        if let v = f.optional("typedData") {
            (erc7739.allowedERC7739Content, appDomains) = try Self.typedDataContents(v, path: "typedData")
            // SmartSession accepts a session key's signed messages only under at least one
            // ERC-1271 policy: the session's validity, or SudoPolicy when it has none.
            let validity = userOpPolicies.first { $0.field == "validity" }?.config
            erc7739.erc1271Policies = [(validity ?? .sudo).policyData]
        }
        let (validator, initData) = try sessionValidator
        let salt = try f.optional("salt").map { _ throws(SmartSessionError) in try f.bytes32("salt") } ?? .zero
        let session = Session(sessionValidator: validator, sessionValidatorInitData: initData, salt: salt,
                              userOpPolicies: userOpPolicies.map(\.config.policyData), erc7739Policies: erc7739, actions: actions,
                              permitERC4337Paymaster: try f.optionalBool("paymaster") ?? false)
        var compiled = CompiledRequest(format: .native, account: try account(f), accountKind: try accountKind(f),
                                       chains: chainTargets(chains, nonces: try nonceMap(f.optional("nonces"), path: "nonces")),
                                       mode: try mode(f.optional("mode"), path: "mode"), session: session, functions: functions,
                                       exportKey: try f.optionalBool("export") ?? false, label: try f.displayText("label"))
        compiled.requestFields = CompiledRequest.requestFields(actions: actionFields, userOpPolicies: userOpPolicies.map(\.field))
        compiled.appDomains = appDomains
        return compiled
    }

    /// One permission: a target and the functions allowed on it, each with the same policies
    /// (and the field each policy came from).
    func compilePermission(_ json: JSONValue, path: String, values: RequestValues) throws(SmartSessionError) -> [(ActionData, policyFields: [String], ABIFunction?)] {
        let f = try JSONFields(json, path: path)
        try f.only(["target", "token", "abi", "functions", "allow", "nativeTransfer", "rules", "spendingLimit", "valueLimit",
                    "maxUses", "validity", "sudo", "valuePerCall"])
        let target: Address
        if let symbol = f.optional("token")?.stringValue, f.optional("target") == nil {
            let resolved: [Address?]
            do { resolved = try values.chains.map { chain throws(SmartSessionError) in try tokens.token(symbol: symbol, chains: [chain])?.address } } catch {
                throw SmartSessionError("\(f.field("token")): \(error.message)")
            }
            guard let first = resolved.first ?? nil, resolved.allSatisfy({ $0 == first }) else {
                throw SmartSessionError("\(f.field("token")): \(symbol) is not at one address on every chain of the session; give \"target\"")
            }
            target = first
        } else {
            target = try f.address("target")
        }

        // Which calls: functions by name or signature, and/or plain value transfers.
        var calls: [(Selector, ABIFunction?)] = []
        let known = try availableFunctions(f, path: path)
        if let allow = f.optional("allow") {
            guard let names = allow.arrayValue, !names.isEmpty else { throw SmartSessionError("\(f.field("allow")): a non-empty list of function names") }
            for (j, n) in names.enumerated() {
                guard let name = n.stringValue else { throw SmartSessionError("\(f.field("allow"))[\(j)]: expected a function name") }
                let isToken = values.chains.contains { tokens.token(chainId: $0, address: target) != nil }
                let function = try resolve(name, in: known, path: "\(f.field("allow"))[\(j)]", preferring: isToken ? "ERC-20" : nil)
                calls.append((Selector(bytes: function.selector)!, function))
            }
        } else if let known, f.optional("abi") != nil || f.optional("functions") != nil {
            calls = known.map { (Selector(bytes: $0.selector)!, $0) }
        }
        if try f.optionalBool("nativeTransfer") == true { calls.append((.valueTransfer, nil)) }
        guard !calls.isEmpty else {
            throw SmartSessionError("\(path): say which calls are allowed: \"allow\" (function names), \"functions\", \"abi\", or \"nativeTransfer\": true")
        }

        var actions: [(ActionData, policyFields: [String], ABIFunction?)] = []
        for (selector, function) in calls {
            var policies: [(config: PolicyConfig, field: String)] = []
            if let rules = f.optional("rules") {
                guard let list = rules.arrayValue, !list.isEmpty else { throw SmartSessionError("\(f.field("rules")): a non-empty list of rules") }
                guard let function else { throw SmartSessionError("\(f.field("rules")): argument rules need a function, not a plain value transfer") }
                guard list.count <= UniActionConfig.maximumRules else { throw SmartSessionError("\(f.field("rules")): at most 16 rules") }
                let compiler = ArgumentRuleCompiler(function: function, values: values,
                                                     amounts: KnownSelectors.tokenMoving.contains(selector) ? .token(target) : .either)
                var compiled: [ParamRule] = []
                for (j, r) in list.enumerated() {
                    guard let text = r.stringValue else { throw SmartSessionError("\(f.field("rules"))[\(j)]: expected a rule string") }
                    compiled.append(try compiler.compile(text, path: "\(f.field("rules"))[\(j)]"))
                }
                let perCall = try f.optional("valuePerCall").map { v throws(SmartSessionError) in try values.amount(v, path: f.field("valuePerCall"), of: .native) } ?? 0
                policies.append((.uniAction(UniActionConfig(valueLimitPerUse: perCall, rules: compiled)), f.field("rules")))
            } else if f.optional("valuePerCall") != nil {
                throw SmartSessionError("\(f.field("valuePerCall")): applies with \"rules\"; use \"valueLimit\" for a total")
            }
            if let v = f.optional("spendingLimit") {
                guard KnownSelectors.tokenMoving.contains(selector) else {
                    throw SmartSessionError("\(f.field("spendingLimit")): ERC20SpendingLimitPolicy only passes transfer, transferFrom, approve and increaseAllowance; \(function?.signature ?? selector.hex) would always fail")
                }
                let limit = try values.amount(v, path: f.field("spendingLimit"), of: .token(target))
                policies.append((.erc20SpendingLimit([TokenLimit(token: target, limit: limit)]), f.field("spendingLimit")))
            }
            if let v = f.optional("valueLimit") {
                policies.append((.valueLimit(try values.amount(v, path: f.field("valueLimit"), of: .native)), f.field("valueLimit")))
            }
            if let v = f.optional("maxUses") { policies.append((.usageLimit(try values.count(v, path: f.field("maxUses"))), f.field("maxUses"))) }
            if let v = f.optional("validity") { policies.append((try values.validity(v, path: f.field("validity")), f.field("validity"))) }
            if try f.optionalBool("sudo") == true { policies.append((.sudo, f.field("sudo"))) }
            guard !policies.isEmpty else {
                throw SmartSessionError("\(path): no policy for \(function?.signature ?? "value transfers"); add rules or limits, or \"sudo\": true to allow it without limits")
            }
            // Only the request's own ABI labels an action; well-known names come from the catalog at review.
            actions.append((ActionData(actionTargetSelector: selector, actionTarget: target, actionPolicies: policies.map(\.config.policyData)),
                            policies.map(\.field), known == nil ? nil : function))
        }
        return actions
    }

    /// The account kind a request names, if it names one.
    func accountKind(_ f: JSONFields) throws(SmartSessionError) -> AccountKind? {
        guard let k = f.optional("accountKind") else { return nil }
        guard let parsed = k.stringValue.flatMap(AccountKind.init(rawValue:)) else {
            throw SmartSessionError("accountKind: one of \(AccountKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return parsed
    }

    /// The functions a permission's "abi" or "functions" describe, or nil when it has neither.
    func availableFunctions(_ f: JSONFields, path: String) throws(SmartSessionError) -> [ABIFunction]? {
        if let abi = f.optional("abi") {
            do { return try ContractInterface(jsonABI: abi.serialized).functions } catch {
                throw SmartSessionError("\(f.field("abi")): \(error)")
            }
        }
        if let list = f.optional("functions") {
            guard let items = list.arrayValue else { throw SmartSessionError("\(f.field("functions")): a list of signatures") }
            var out: [ABIFunction] = []
            for (i, item) in items.enumerated() {
                guard let s = item.stringValue else { throw SmartSessionError("\(f.field("functions"))[\(i)]: expected a signature") }
                do { out.append(try ABIFunction(parsing: s)) } catch { throw SmartSessionError("\(f.field("functions"))[\(i)]: \(error)") }
            }
            return out
        }
        return nil
    }

    /// A function by name (unique), or by full signature.
    func resolve(_ name: String, in functions: [ABIFunction]?, path: String, preferring family: String? = nil) throws(SmartSessionError) -> ABIFunction {
        if name.contains("(") {
            let parsed: ABIFunction
            do { parsed = try ABIFunction(parsing: name) } catch { throw SmartSessionError("\(path): \(error)") }
            if let match = functions?.first(where: { $0.signature == parsed.signature }) { return match }
            if functions == nil || functions!.isEmpty { return parsed }
            throw SmartSessionError("\(path): \(parsed.signature) is not in the permission's ABI")
        }
        let candidates: [ABIFunction]
        if let functions {
            candidates = functions.filter { $0.name == name }
        } else {
            // No ABI: the well-known signatures, which must name exactly one function.
            // On a known token, its ERC-20 meaning wins over same-named functions of other contracts.
            var seen: [String: ABIFunction] = [:]
            var preferred: [String: ABIFunction] = [:]
            for (_, entries) in KnownSelectors.bySelector {
                for e in entries where e.function.name == name {
                    seen[e.function.signature] = e.function
                    if e.family == family { preferred[e.function.signature] = e.function }
                }
            }
            candidates = (preferred.isEmpty ? seen : preferred).values.sorted { $0.signature < $1.signature }
        }
        guard !candidates.isEmpty else { throw SmartSessionError("\(path): no function named \(name)\(functions == nil ? " among the well-known ones; give \"functions\" or \"abi\"" : "")") }
        guard candidates.count == 1 else {
            throw SmartSessionError("\(path): \(name) is ambiguous (\(candidates.map(\.signature).joined(separator: ", "))); write the full signature")
        }
        return candidates[0]
    }

    // MARK: - A raw Session, for experts

    func compileRaw(_ json: JSONValue) throws(SmartSessionError) -> CompiledRequest {
        let f = try JSONFields(json, path: "")
        try f.only(["account", "accountKind", "chains", "chainIds", "nonces", "mode", "session", "label", "export"])
        let chains = try chainList(f.optional("chains") ?? f.optional("chainIds"), path: "chains")
        let session = try Session(json: try f.value("session"), path: "session")
        return CompiledRequest(format: .rawSession, account: try account(f), accountKind: try accountKind(f),
                               chains: chainTargets(chains, nonces: try nonceMap(f.optional("nonces"), path: "nonces")),
                               mode: try mode(f.optional("mode"), path: "mode"), session: session,
                               exportKey: try f.optionalBool("export") ?? false, label: try f.displayText("label"))
    }
}
