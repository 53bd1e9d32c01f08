import EthereumCore

extension SessionReview {
    /// The review for programs: the same facts as the text, and the raw bytes behind them.
    public var json: JSONValue {
        func policy(_ p: PolicyView) -> JSONValue {
            var o = JSONObject()
            o["policy"] = .string(p.address.checksummed)
            o["name"] = p.kind.map { .string($0.rawValue) } ?? .null
            o["known"] = .bool(p.kind != nil)
            o["currentDeployment"] = .bool(p.isCurrentDeployment)
            o["meaning"] = .array(p.meaning.map { .string($0) })
            o["initData"] = .string(Hex.encode(p.initData))
            o["ignoredInitDataBytes"] = JSONValue(p.ignoredBytes)
            return .object(o)
        }
        func bound(_ b: Bound) -> JSONValue {
            switch b {
            case .limited(let v): .object(JSONObject(["bounded": true, "amount": .string(v.description)]))
            case .unbounded(let why): .object(JSONObject(["bounded": false, "reason": .string(why)]))
            }
        }
        var o = JSONObject()
        o["format"] = .string(format.rawValue)
        o["label"] = label.map { .string($0) } ?? .null
        o["account"] = .string(account.checksummed)
        o["accountKind"] = accountKind.map { .string($0.rawValue) } ?? .null
        if accountKind == .kernel { o["kernelVersion"] = .string(kernelVersion) }
        o["mode"] = .string(mode.description)
        o["chains"] = .array(chains.map {
            .object(JSONObject([
                "chainId": .string(String($0.chainId)), "name": .string(Chains.name($0.chainId)),
                "nonce": .string($0.nonce.description), "sessionDigest": .string($0.sessionDigest.hex),
            ]))
        })
        o["permissionId"] = .string(permissionId.hex)
        o["multichainDigest"] = .string(multichainDigest.hex)
        o["ownerDigest"] = .string(ownerDigest.hex)
        o["sessionValidator"] = .object(JSONObject([
            "address": .string(validator.address.checksummed), "name": .string(validator.name),
            "threshold": validator.threshold.map { JSONValue($0) } ?? .null,
            "keys": .array(validator.keys.map { .string($0.checksummed) }), "initData": .string(Hex.encode(validator.initData)),
        ]))
        o["salt"] = .string(salt.hex)
        o["signedFlags"] = .object(JSONObject([
            "permitGenericPolicy": .bool(flags.permitGenericPolicy), "permitAdminAccess": .bool(flags.permitAdminAccess),
            "ignoreSecurityAttestations": .bool(flags.ignoreSecurityAttestations), "permitERC4337Paymaster": .bool(flags.permitERC4337Paymaster),
        ]))
        o["userOpPolicies"] = .array(userOpPolicies.map(policy))
        o["actions"] = .array(actions.map { a in
            var x = JSONObject()
            x["kind"] = .string(a.kind.rawValue)
            x["target"] = .string(a.target.checksummed)
            x["targetName"] = a.targetName.map { .string($0) } ?? .null
            x["selector"] = .string(a.selector.hex)
            x["function"] = a.function.map { .string($0) } ?? .null
            x["functionSource"] = a.functionSource.map { .string($0) } ?? .null
            x["policies"] = .array(a.policies.map(policy))
            return .object(x)
        })
        o["erc7739"] = .object(JSONObject([
            "allowedContent": .array(erc7739Contexts.map {
                .object(JSONObject(["appDomainSeparator": .string($0.appDomainSeparator.hex), "domain": appDomains[$0.appDomainSeparator].map { .string($0) } ?? .null,
                                    "contentNames": .array($0.contentNames.map { .string($0) })]))
            }),
            "erc1271Policies": .array(erc1271Policies.map(policy)),
        ]))
        o["exportKey"] = .bool(exportKey)
        o["exposure"] = .object(JSONObject([
            "native": bound(exposure.native),
            "tokens": .array(exposure.tokens.map { t in
                var x = JSONObject()
                x["token"] = .string(t.token.checksummed)
                x["symbol"] = t.symbol.map { .string($0) } ?? .null
                x["decimals"] = t.decimals.map { JSONValue($0) } ?? .null
                x["bound"] = bound(t.bound)
                return .object(x)
            }),
            "otherContracts": .array(exposure.otherContracts.map { .string($0) }),
        ]))
        o["risks"] = .array(risks.map { .object(JSONObject(["severity": .string($0.severity.rawValue), "code": .string($0.code), "message": .string($0.message)])) })
        o["highestSeverity"] = highestSeverity.map { .string($0.rawValue) } ?? .null
        return .object(o)
    }
}
