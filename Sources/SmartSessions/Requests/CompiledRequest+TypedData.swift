import EthereumCore

extension CompiledRequest {
    /// The `eth_signTypedData_v4` document whose digest is `multichainDigest`: what a wallet
    /// or another tool can hash to check the owner signs exactly this session (module-sdk
    /// `hashChainSessions`).
    public var enableTypedData: JSONValue {
        func fields(_ pairs: [(String, String)]) -> JSONValue {
            .array(pairs.map { .object(JSONObject(["name": .string($0.0), "type": .string($0.1)])) })
        }
        var types = JSONObject()
        types["EIP712Domain"] = fields([("name", "string"), ("version", "string")])
        types["PolicyData"] = fields([("policy", "address"), ("initData", "bytes")])
        types["ActionData"] = fields([("actionTargetSelector", "bytes4"), ("actionTarget", "address"), ("actionPolicies", "PolicyData[]")])
        types["ERC7739Context"] = fields([("appDomainSeparator", "bytes32"), ("contentName", "string[]")])
        types["ERC7739Data"] = fields([("allowedERC7739Content", "ERC7739Context[]"), ("erc1271Policies", "PolicyData[]")])
        types["SignedPermissions"] = fields([("permitGenericPolicy", "bool"), ("permitAdminAccess", "bool"), ("ignoreSecurityAttestations", "bool"),
                                             ("permitERC4337Paymaster", "bool"), ("userOpPolicies", "PolicyData[]"), ("erc7739Policies", "ERC7739Data"),
                                             ("actions", "ActionData[]")])
        types["SignedSession"] = fields([("account", "address"), ("permissions", "SignedPermissions"), ("sessionValidator", "address"),
                                         ("sessionValidatorInitData", "bytes"), ("salt", "bytes32"), ("smartSession", "address"), ("nonce", "uint256")])
        types["ChainSession"] = fields([("chainId", "uint64"), ("session", "SignedSession")])
        types["MultiChainSession"] = fields([("sessionsAndChainIds", "ChainSession[]")])

        let flags = session.signedFlags(mode: mode)
        let policy: (PolicyData) -> JSONValue = { .object(JSONObject(["policy": .string($0.policy.checksummed), "initData": .string(Hex.encode($0.initData))])) }
        var permissions = JSONObject()
        permissions["permitGenericPolicy"] = .bool(flags.permitGenericPolicy)
        permissions["permitAdminAccess"] = .bool(flags.permitAdminAccess)
        permissions["ignoreSecurityAttestations"] = .bool(flags.ignoreSecurityAttestations)
        permissions["permitERC4337Paymaster"] = .bool(flags.permitERC4337Paymaster)
        permissions["userOpPolicies"] = .array(session.userOpPolicies.map(policy))
        permissions["erc7739Policies"] = .object(JSONObject([
            "allowedERC7739Content": .array(session.erc7739Policies.allowedERC7739Content.map {
                .object(JSONObject(["appDomainSeparator": .string($0.appDomainSeparator.hex), "contentName": .array($0.contentNames.map { .string($0) })]))
            }),
            "erc1271Policies": .array(session.erc7739Policies.erc1271Policies.map(policy)),
        ]))
        permissions["actions"] = .array(session.actions.map {
            .object(JSONObject(["actionTargetSelector": .string($0.actionTargetSelector.hex), "actionTarget": .string($0.actionTarget.checksummed),
                                "actionPolicies": .array($0.actionPolicies.map(policy))]))
        })
        let chainSessions: [JSONValue] = chains.map { chain in
            var signed = JSONObject()
            signed["account"] = .string(account.checksummed)
            signed["permissions"] = .object(permissions)
            signed["sessionValidator"] = .string(session.sessionValidator.checksummed)
            signed["sessionValidatorInitData"] = .string(Hex.encode(session.sessionValidatorInitData))
            signed["salt"] = .string(session.salt.hex)
            signed["smartSession"] = .string(SmartSessionAddresses.smartSession.checksummed)
            signed["nonce"] = .string(chain.nonce.description)
            return .object(JSONObject(["chainId": .string(String(chain.chainId)), "session": .object(signed)]))
        }
        return .object(JSONObject([
            "types": .object(types), "primaryType": "MultiChainSession",
            "domain": .object(JSONObject(["name": "SmartSession", "version": "1"])),
            "message": .object(JSONObject(["sessionsAndChainIds": .array(chainSessions)])),
        ]))
    }
}
