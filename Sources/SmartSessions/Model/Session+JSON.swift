import EthereumCore

// The JSON form of the test vectors (`shared/vectors/README.md`): Solidity field names, hex
// strings, integers as decimal strings. Addresses may be checksummed or lowercase.

extension PolicyData {
    public init(json: JSONValue, path: String = "policy") throws(SmartSessionError) {
        let f = try JSONFields(json, path: path)
        try f.only(["policy", "initData"])
        self.init(policy: try f.address("policy"), initData: try f.bytes("initData"))
    }

    public var json: JSONValue {
        .object(JSONObject(["policy": .string(policy.checksummed), "initData": .string(Hex.encode(initData))]))
    }
}

extension Session {
    public init(json: JSONValue, path: String = "session") throws(SmartSessionError) {
        let f = try JSONFields(json, path: path)
        try f.only(["sessionValidator", "sessionValidatorInitData", "salt", "userOpPolicies", "erc7739Policies", "actions", "permitERC4337Paymaster"])
        func policies(_ list: [JSONValue], _ p: String) throws(SmartSessionError) -> [PolicyData] {
            var out: [PolicyData] = []
            for (i, item) in list.enumerated() { out.append(try PolicyData(json: item, path: "\(p)[\(i)]")) }
            return out
        }
        let e = try JSONFields(try f.value("erc7739Policies"), path: f.field("erc7739Policies"))
        try e.only(["allowedERC7739Content", "erc1271Policies"])
        var contexts: [ERC7739Context] = []
        for (i, item) in try e.array("allowedERC7739Content").enumerated() {
            let c = try JSONFields(item, path: e.field("allowedERC7739Content[\(i)]"))
            try c.only(["appDomainSeparator", "contentNames"])
            var names: [String] = []
            for (j, n) in try c.array("contentNames").enumerated() {
                guard let s = n.stringValue else { throw SmartSessionError("\(c.field("contentNames[\(j)]")): expected a string") }
                names.append(s)
            }
            contexts.append(ERC7739Context(appDomainSeparator: try c.bytes32("appDomainSeparator"), contentNames: names))
        }
        var actions: [ActionData] = []
        for (i, item) in try f.array("actions").enumerated() {
            let a = try JSONFields(item, path: f.field("actions[\(i)]"))
            try a.only(["actionTargetSelector", "actionTarget", "actionPolicies"])
            let selectorBytes = try a.bytes("actionTargetSelector")
            guard let selector = Selector(bytes: selectorBytes) else {
                throw SmartSessionError("\(a.field("actionTargetSelector")): expected 4 bytes, got \(selectorBytes.count)")
            }
            actions.append(ActionData(actionTargetSelector: selector, actionTarget: try a.address("actionTarget"),
                                      actionPolicies: try policies(try a.array("actionPolicies"), a.field("actionPolicies"))))
        }
        self.init(
            sessionValidator: try f.address("sessionValidator"),
            sessionValidatorInitData: try f.bytes("sessionValidatorInitData"),
            salt: try f.bytes32("salt"),
            userOpPolicies: try policies(try f.array("userOpPolicies"), f.field("userOpPolicies")),
            erc7739Policies: ERC7739Data(allowedERC7739Content: contexts,
                                         erc1271Policies: try policies(try e.array("erc1271Policies"), e.field("erc1271Policies"))),
            actions: actions,
            permitERC4337Paymaster: try f.bool("permitERC4337Paymaster"))
    }

    public var json: JSONValue {
        var erc7739 = JSONObject()
        erc7739["allowedERC7739Content"] = .array(erc7739Policies.allowedERC7739Content.map {
            .object(JSONObject(["appDomainSeparator": .string($0.appDomainSeparator.hex), "contentNames": .array($0.contentNames.map { .string($0) })]))
        })
        erc7739["erc1271Policies"] = .array(erc7739Policies.erc1271Policies.map(\.json))
        var o = JSONObject()
        o["sessionValidator"] = .string(sessionValidator.checksummed)
        o["sessionValidatorInitData"] = .string(Hex.encode(sessionValidatorInitData))
        o["salt"] = .string(salt.hex)
        o["userOpPolicies"] = .array(userOpPolicies.map(\.json))
        o["erc7739Policies"] = .object(erc7739)
        o["actions"] = .array(actions.map {
            .object(JSONObject([
                "actionTargetSelector": .string($0.actionTargetSelector.hex), "actionTarget": .string($0.actionTarget.checksummed),
                "actionPolicies": .array($0.actionPolicies.map(\.json)),
            ]))
        })
        o["permitERC4337Paymaster"] = .bool(permitERC4337Paymaster)
        return .object(o)
    }
}
