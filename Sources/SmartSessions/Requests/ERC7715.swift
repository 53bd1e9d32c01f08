import EthereumCore

/// ERC-7715 permission requests, in both drafts: `wallet_grantPermissions`
/// (`{chainId, address, expiry, signer, permission(s), policies}`) and
/// `wallet_requestExecutionPermissions` (`{chainId, address, signer, permission, rules}`).
/// What maps onto Smart Sessions v1 policies compiles; the rest is refused by name.
struct ERC7715Compiler {
    let base: RequestCompiler

    func refuse(_ path: String, _ why: String) -> SmartSessionError {
        SmartSessionError("\(path): \(why)", reason: "unsupported_permission")
    }

    func compile(_ json: JSONValue) throws(SmartSessionError) -> CompiledRequest {
        let f = try JSONFields(json, path: "")
        let newer = RequestCompiler.format(of: json) == .requestExecutionPermissions
        try f.only(["chainId", "address", "expiry", "signer", "permission", "permissions", "policies", "rules"])
        guard let chain = try JSONFields.integer(try f.value("chainId"), path: "chainId").uint64 else { throw SmartSessionError("chainId: out of range") }
        let values = RequestValues(tokens: base.tokens, chains: base.overrides.chains ?? [chain], now: base.now)

        if let signer = f.optional("signer") {
            let type = signer["type"]?.stringValue ?? ""
            guard ["wallet", "key", "keys"].contains(type) else {
                throw refuse("signer.type", "\(String(reflecting: type)) is not supported; the agent holds the session key (use \"wallet\" or \"key\"); ERC-7710 \"account\" delegations are not Smart Sessions")
            }
        }

        var userOp: [(config: PolicyConfig, field: String)] = []
        var actions: [ActionData] = [], actionFields: [(field: String, policyFields: [String])] = []
        if let expiry = f.optional("expiry") {
            userOp.append((.timeFrame(validUntil: try values.time(expiry, path: "expiry"), validAfter: 0), "expiry"))
        }
        let permissions: [JSONValue] = if let p = f.optional("permission") { [p] } else { try f.array("permissions") }
        guard !permissions.isEmpty else { throw SmartSessionError("permission: missing") }
        for (i, p) in permissions.enumerated() {
            let path = f.optional("permission") != nil ? "permission" : "permissions[\(i)]"
            let (a, u) = try permission(p, path: path, values: values, newer: newer)
            actions += a.map(\.0)
            actionFields += a.map { ($0.field, $0.policyFields) }
            userOp += u
        }
        for (i, p) in (try f.optionalArray("policies") ?? []).enumerated() {
            userOp.append((try policy(p, path: "policies[\(i)]", values: values), "policies[\(i)]"))
        }
        for (i, r) in (try f.optionalArray("rules") ?? []).enumerated() {
            let path = "rules[\(i)]"
            guard r["type"]?.stringValue == "expiry" else {
                throw refuse(path, "rule type \(r["type"]?.stringValue ?? "?") has no Smart Sessions v1 equivalent")
            }
            let data = try JSONFields(try JSONFields(r, path: path).value("data"), path: "\(path).data")
            try data.only(["timestamp"])
            userOp.append((.timeFrame(validUntil: try values.time(try data.value("timestamp"), path: data.field("timestamp")), validAfter: 0), path))
        }
        let strictest = Self.strictest(userOp)
        let (validator, initData) = try base.sessionValidator
        let session = Session(sessionValidator: validator, sessionValidatorInitData: initData, userOpPolicies: strictest.map(\.config.policyData), actions: actions)
        let account: Address
        if let a = base.overrides.account { account = a } else { account = try f.address("address") }
        var compiled = CompiledRequest(format: newer ? .requestExecutionPermissions : .grantPermissions, account: account,
                                       chains: base.chainTargets([chain], nonces: [:]), session: session)
        compiled.requestFields = CompiledRequest.requestFields(actions: actionFields, userOpPolicies: strictest.map(\.field))
        return compiled
    }

    /// Limits of one kind given twice (an expiry and an expiry rule, a native allowance and a
    /// spent-limit policy, two call limits) must all hold, but SmartSession keeps one init data
    /// per policy contract, the last one: they become one policy, the strictest of each, which
    /// came from all their fields.
    static func strictest(_ policies: [(config: PolicyConfig, field: String)]) -> [(config: PolicyConfig, field: String)] {
        var out: [(config: PolicyConfig, field: String)] = []
        for (p, field) in policies {
            guard let i = out.firstIndex(where: { $0.config.kind == p.kind }) else { out.append((p, field)); continue }
            let merged: PolicyConfig
            switch (out[i].config, p) {
            case let (.timeFrame(until, after), .timeFrame(otherUntil, otherAfter)):
                merged = .timeFrame(validUntil: [until, otherUntil].filter { $0 != 0 }.min() ?? 0, validAfter: max(after, otherAfter))
            case let (.valueLimit(a), .valueLimit(b)): merged = .valueLimit(min(a, b))
            case let (.usageLimit(a), .usageLimit(b)): merged = .usageLimit(min(a, b))
            case let (.simpleGas(gas, cost), .simpleGas(otherGas, otherCost)): merged = .simpleGas(gasLimit: min(gas, otherGas), costLimit: min(cost, otherCost))
            default:   // no other kind is made twice here; `check` would refuse it
                out.append((p, field))
                continue
            }
            out[i] = (merged, "\(out[i].field) and \(field)")
        }
        return out
    }

    /// One permission's actions (with the fields each came from, and each of its policies) and
    /// the session-wide policies it adds.
    func permission(_ json: JSONValue, path: String, values: RequestValues, newer: Bool) throws(SmartSessionError)
        -> ([(ActionData, field: String, policyFields: [String])], [(config: PolicyConfig, field: String)]) {
        let f = try JSONFields(json, path: path)
        try f.only(["type", "data", "isAdjustmentAllowed", "required"])
        let type = try f.string("type")
        let data = try JSONFields(try f.value("data"), path: f.field("data"))
        // A field this compiler does not read (a recipient list, a period) would be a limit the
        // session silently lacks. `justification` is the client's words to the user: not a limit.
        let fields: [String: Set<String>] = ["erc20-token-transfer": ["address", "allowance"], "native-token-transfer": ["allowance", "to"],
                                             "contract-call": ["address", "abi", "functions"]]
        if let known = fields[type] { try data.only(known.union(["justification"])) }
        switch type {
        case "erc20-token-transfer":
            let token = try data.address("address")
            let allowance = try values.amount(try data.value("allowance"), path: data.field("allowance"), of: .token(token))
            return ([(ActionData(actionTargetSelector: KnownSelectors.erc20Transfer, actionTarget: token,
                                 actionPolicies: [PolicyConfig.erc20SpendingLimit([TokenLimit(token: token, limit: allowance)]).policyData]),
                      path, [data.field("allowance")])], [])
        case "native-token-transfer":
            let allowance = try values.amount(try data.value("allowance"), path: data.field("allowance"), of: .native)
            guard let recipients = data.optional("to")?.arrayValue, !recipients.isEmpty else {
                throw refuse(path, "native-token-transfer names no recipient, and Smart Sessions v1 cannot limit a session to plain transfers to any address (that needs the fallback action, which allows any call); list the recipients in data.to")
            }
            var actions: [(ActionData, field: String, policyFields: [String])] = []
            for (i, r) in recipients.enumerated() {
                let field = "\(data.field("to"))[\(i)]"
                let to = try JSONFields.address(r, path: field)
                actions.append((ActionData(actionTargetSelector: .valueTransfer, actionTarget: to, actionPolicies: [PolicyConfig.sudo.policyData]), field, [field]))
            }
            // One session-wide total, however it is split among the recipients.
            return (actions, [(.valueLimit(allowance), data.field("allowance"))])
        case "contract-call":
            let target = try data.address("address")
            var functions: [ABIFunction] = []
            if let abi = data.optional("abi") {
                do { functions = try ContractInterface(jsonABI: abi.serialized).functions } catch { throw SmartSessionError("\(data.field("abi")): \(error)") }
            }
            if let names = try data.optionalArray("functions") {
                var chosen: [ABIFunction] = []
                for (i, entry) in names.enumerated() {
                    let path = "\(data.field("functions"))[\(i)]"
                    guard let name = entry["functionName"]?.stringValue ?? entry.stringValue else { throw SmartSessionError("\(path): a function name, or {functionName}") }
                    chosen.append(try base.resolve(name, in: functions.isEmpty ? nil : functions, path: path))
                }
                functions = chosen
            }
            guard !functions.isEmpty else { throw SmartSessionError("\(data.field("functions")): name the functions allowed") }
            return (functions.map {
                (ActionData(actionTargetSelector: Selector(bytes: $0.selector)!, actionTarget: target, actionPolicies: [PolicyConfig.sudo.policyData]), path, [path])
            }, [])
        default:
            let why = type.hasSuffix("-stream") || type.hasSuffix("-periodic")
                ? "streaming and periodic allowances have no Smart Sessions v1 policy (its limits never reset)"
                : "permission type \(String(reflecting: type)) has no Smart Sessions v1 equivalent"
            throw refuse(f.field("type"), why)
        }
    }

    func policy(_ json: JSONValue, path: String, values: RequestValues) throws(SmartSessionError) -> PolicyConfig {
        let f = try JSONFields(json, path: path)
        try f.only(["type", "data"])
        let type = try f.string("type")
        let data = try JSONFields(try f.value("data"), path: f.field("data"))
        let fields: [String: Set<String>] = ["call-limit": ["count"], "spent-limit": ["allowance"], "gas-limit": ["limit"]]
        if let known = fields[type] { try data.only(known) }
        switch type {
        case "call-limit":
            return .usageLimit(try values.count(try data.value("count"), path: data.field("count")))
        case "spent-limit":
            return .valueLimit(try values.amount(try data.value("allowance"), path: data.field("allowance"), of: .native))
        case "gas-limit":
            // SimpleGasPolicy also limits cost; the request limits gas units only.
            return .simpleGas(gasLimit: try values.count(try data.value("limit"), path: data.field("limit")),
                              costLimit: UInt256.powerOfTwo(128).subtractingReportingOverflow(.one).partialValue)
        default:
            throw refuse(f.field("type"), "policy type \(String(reflecting: type)) has no Smart Sessions v1 equivalent")
        }
    }
}
