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

        var userOp: [PolicyConfig] = []
        var actions: [ActionData] = []
        if let expiry = f.optional("expiry") {
            userOp.append(.timeFrame(validUntil: try values.time(expiry, path: "expiry"), validAfter: 0))
        }
        let permissions: [JSONValue] = if let p = f.optional("permission") { [p] } else { try f.array("permissions") }
        guard !permissions.isEmpty else { throw SmartSessionError("permission: missing") }
        for (i, p) in permissions.enumerated() {
            let path = f.optional("permission") != nil ? "permission" : "permissions[\(i)]"
            let (a, u) = try permission(p, path: path, values: values, newer: newer)
            actions += a
            userOp += u
        }
        for (i, p) in (try f.optionalArray("policies") ?? []).enumerated() {
            userOp.append(try policy(p, path: "policies[\(i)]", values: values))
        }
        for (i, r) in (try f.optionalArray("rules") ?? []).enumerated() {
            let path = "rules[\(i)]"
            guard r["type"]?.stringValue == "expiry" else {
                throw refuse(path, "rule type \(r["type"]?.stringValue ?? "?") has no Smart Sessions v1 equivalent")
            }
            let data = try JSONFields(try JSONFields(r, path: path).value("data"), path: "\(path).data")
            try data.only(["timestamp"])
            userOp.append(.timeFrame(validUntil: try values.time(try data.value("timestamp"), path: data.field("timestamp")), validAfter: 0))
        }
        let (validator, initData) = try base.sessionValidator
        let session = Session(sessionValidator: validator, sessionValidatorInitData: initData, userOpPolicies: Self.strictest(userOp).map(\.policyData), actions: actions)
        let account: Address
        if let a = base.overrides.account { account = a } else { account = try f.address("address") }
        return CompiledRequest(format: newer ? .requestExecutionPermissions : .grantPermissions, account: account,
                               chains: base.chainTargets([chain], nonces: [:]), session: session)
    }

    /// Limits of one kind given twice (an expiry and an expiry rule, a native allowance and a
    /// spent-limit policy, two call limits) must all hold, but SmartSession keeps one init data
    /// per policy contract, the last one: they become one policy, the strictest of each.
    static func strictest(_ policies: [PolicyConfig]) -> [PolicyConfig] {
        var out: [PolicyConfig] = []
        for p in policies {
            guard let i = out.firstIndex(where: { $0.kind == p.kind }) else { out.append(p); continue }
            switch (out[i], p) {
            case let (.timeFrame(until, after), .timeFrame(otherUntil, otherAfter)):
                out[i] = .timeFrame(validUntil: [until, otherUntil].filter { $0 != 0 }.min() ?? 0, validAfter: max(after, otherAfter))
            case let (.valueLimit(a), .valueLimit(b)): out[i] = .valueLimit(min(a, b))
            case let (.usageLimit(a), .usageLimit(b)): out[i] = .usageLimit(min(a, b))
            case let (.simpleGas(gas, cost), .simpleGas(otherGas, otherCost)): out[i] = .simpleGas(gasLimit: min(gas, otherGas), costLimit: min(cost, otherCost))
            default: out.append(p)   // no other kind is made twice here; `check` would refuse it
            }
        }
        return out
    }

    func permission(_ json: JSONValue, path: String, values: RequestValues, newer: Bool) throws(SmartSessionError) -> ([ActionData], [PolicyConfig]) {
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
            guard !allowance.isZero else { throw SmartSessionError("\(data.field("allowance")): must be above 0") }
            return ([ActionData(actionTargetSelector: KnownSelectors.erc20Transfer, actionTarget: token,
                                actionPolicies: [PolicyConfig.erc20SpendingLimit([TokenLimit(token: token, limit: allowance)]).policyData])], [])
        case "native-token-transfer":
            let allowance = try values.amount(try data.value("allowance"), path: data.field("allowance"), of: .native)
            guard let recipients = data.optional("to")?.arrayValue, !recipients.isEmpty else {
                throw refuse(path, "native-token-transfer names no recipient, and Smart Sessions v1 cannot limit a session to plain transfers to any address (that needs the fallback action, which allows any call); list the recipients in data.to")
            }
            var actions: [ActionData] = []
            for (i, r) in recipients.enumerated() {
                let to = try JSONFields.address(r, path: "\(data.field("to"))[\(i)]")
                actions.append(ActionData(actionTargetSelector: .valueTransfer, actionTarget: to, actionPolicies: [PolicyConfig.sudo.policyData]))
            }
            // One session-wide total, however it is split among the recipients.
            return (actions, [.valueLimit(allowance)])
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
                ActionData(actionTargetSelector: Selector(bytes: $0.selector)!, actionTarget: target, actionPolicies: [PolicyConfig.sudo.policyData])
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
            let v = try values.amount(try data.value("allowance"), path: data.field("allowance"), of: .native)
            guard !v.isZero else { throw SmartSessionError("\(data.field("allowance")): must be above 0") }
            return .valueLimit(v)
        case "gas-limit":
            // SimpleGasPolicy also limits cost; the request limits gas units only.
            return .simpleGas(gasLimit: try values.count(try data.value("limit"), path: data.field("limit")),
                              costLimit: UInt256.powerOfTwo(128).subtractingReportingOverflow(.one).partialValue)
        default:
            throw refuse(f.field("type"), "policy type \(String(reflecting: type)) has no Smart Sessions v1 equivalent")
        }
    }
}
