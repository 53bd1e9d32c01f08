import EthereumCore
import SmartSessions
import Testing
import TestSupport

@Suite("Requests compile deterministically, and errors name the field")
struct RequestTests {
    static let now: UInt64 = 1_764_096_000   // 2025-11-25 18:40 UTC
    static let key = try! Address("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A")
    static var compiler: RequestCompiler { RequestCompiler(now: now, sessionKeys: [key]) }

    func compile(_ json: String, _ compiler: RequestCompiler = RequestTests.compiler) throws -> CompiledRequest {
        try compiler.compile(try JSONValue(parsing: json))
    }

    func rejects(_ json: String, _ text: String) {
        do {
            _ = try compile(json)
            Issue.record("accepted: \(json)")
        } catch let error as SmartSessionError {
            #expect(error.message.contains(text), "\(error.message)")
        } catch {
            Issue.record("\(error)")
        }
    }


    @Test func nativeRequestCompilesToTheExpectedSession() throws {
        let c = try compile("""
            {"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [11155111, "84532"], "nonces": {"84532": "2"},
             "validity": {"duration": "3d"}, "maxUses": 10, "paymaster": true,
             "permissions": [{"token": "USDC", "allow": ["transfer"], "spendingLimit": "100 USDC", "maxUses": 5},
                             {"target": "0x000000000000000000000000000000000000bEEF", "nativeTransfer": true, "valueLimit": "0.1 ETH"}]}
            """, RequestCompiler(now: Self.now, sessionKeys: [Self.key], overrides: .init(chains: [11155111])))
        #expect(c.format == .native)
        #expect(c.chains == [ChainTarget(chainId: 11155111)])   // the override wins; its nonce defaults to 0
        #expect(c.session.userOpPolicies == [PolicyConfig.timeFrame(validUntil: Self.now + 3 * 86400, validAfter: 0).policyData, PolicyConfig.usageLimit(10).policyData])
        let usdc = try Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
        #expect(c.session.actions == [
            ActionData(actionTargetSelector: Selector(rawValue: 0xa905_9cbb), actionTarget: usdc, actionPolicies: [
                PolicyConfig.erc20SpendingLimit([TokenLimit(token: usdc, limit: 100_000_000)]).policyData, PolicyConfig.usageLimit(5).policyData]),
            ActionData(actionTargetSelector: .valueTransfer, actionTarget: try Address("0x000000000000000000000000000000000000bEEF"),
                       actionPolicies: [PolicyConfig.valueLimit(100_000_000_000_000_000).policyData]),
        ])
        #expect(c.session.permitERC4337Paymaster)
        #expect(try OwnableValidatorConfig(initData: c.session.sessionValidatorInitData).owners == [Self.key])
        // Deterministic: the same inputs, the same digest.
        #expect(try compile(#"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1], "permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "nativeTransfer": true, "sudo": true}]}"#).multichainDigest
                == (try compile(#"{"permissions": [{"sudo": true, "nativeTransfer": true, "target": "0x000000000000000000000000000000000000beef"}], "chains": [1], "account": "0x7227DCfB0c5EC7A5F539F97b18Be261C49687eD6"}"#).multichainDigest))
    }

    /// `typedData` grants the session key ERC-1271 signatures of the listed contents under each
    /// application's domain: ERC7739Contexts keyed by the domain's separator, under the
    /// session's validity as the one ERC-1271 policy (SudoPolicy when it has none). The review
    /// names each domain in words beside its hash.
    @Test func typedDataCompilesToERC7739Contexts() throws {
        let base = #"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [11155111], %VALIDITY% "permissions": [{"token": "USDC", "allow": ["transfer"], "spendingLimit": "5 USDC"}], "typedData": %TYPED%}"#
        func request(_ typed: String, validity: Bool = true) -> String {
            base.replacingOccurrences(of: "%TYPED%", with: typed).replacingOccurrences(of: "%VALIDITY%", with: validity ? #""validity": {"duration": "1d"},"# : "")
        }
        let permit2 = #"{"name": "Permit2", "chainId": 1, "verifyingContract": "0x000000000022D473030F116dDEE9F6B43aC78BA3"}"#
        let typed = #"[{"domain": \#(permit2), "contents": ["PermitSingle(PermitDetails details,address spender,uint256 sigDeadline)PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)", "Mail(address to)Mail"]}, {"domain": {"name": "Ether Mail"}, "contents": ["Mail(address to)"]}]"#
        let c = try compile(request(typed))
        let separator = try TypedData(json: try JSONValue(parsing: #"{"types": {}, "primaryType": "EIP712Domain", "domain": \#(permit2)}"#)).domainSeparator
        let contexts = c.session.erc7739Policies.allowedERC7739Content
        #expect(contexts.map(\.appDomainSeparator) == [separator, try TypedData(parsing: #"{"types": {}, "primaryType": "EIP712Domain", "domain": {"name": "Ether Mail"}}"#).domainSeparator])
        #expect(contexts[0].contentNames.count == 2 && contexts[1].contentNames == ["Mail(address to)"])
        #expect(c.session.erc7739Policies.erc1271Policies == [c.session.userOpPolicies[0]] && c.decodedPolicies[c.session.userOpPolicies[0]]?.kind == .timeFrame)
        #expect(try compile(request(typed, validity: false)).session.erc7739Policies.erc1271Policies == [PolicyConfig.sudo.policyData])
        #expect(try compile(request(typed)).session.erc7739Policies.allowedERC7739Content.isEmpty == false)
        let review = Reviewer(now: Self.now).review(c)
        #expect(review.text().contains("app domain \(separator.hex) (name \"Permit2\", chainId Ethereum (1), verifyingContract 0x000000000022D473030F116dDEE9F6B43aC78BA3): "), "\(review.text())")
        #expect(review.risks.contains { $0.code == "erc7739" })
        #expect(review.json["erc7739"]?["allowedContent"]?.arrayValue?.first?["domain"] == #"name "Permit2", chainId Ethereum (1), verifyingContract 0x000000000022D473030F116dDEE9F6B43aC78BA3"#)

        rejects(request("[]"), "typedData: a list of {\"domain\", \"contents\"}, at least one")
        rejects(request(#"[{"domain": {"name": "A"}, "contents": []}]"#), "typedData[0].contents: at least one contents type")
        rejects(request(#"[{"domain": {"name": "A"}, "contents": ["mail(address to)"]}]"#), "typedData[0].contents[0]: SmartSession refuses the contents name \"mail\"")
        rejects(request(#"[{"domain": {"name": "A"}, "contents": ["Mail(address to)", "Mail(address to)"]}]"#), "typedData[0].contents[1]: listed twice")
        rejects(request(#"[{"domain": {"name": "A"}, "contents": ["X(uint a)"]}, {"domain": {"name": "A"}, "contents": ["Y(uint a)"]}]"#),
                "typedData[1].domain: the same domain as an earlier entry")
        rejects(request(#"[{"domain": {"name": "A", "chain": 1}, "contents": ["X(uint a)"]}]"#), #"typedData[0].domain: field "chain" is not part of type EIP712Domain"#)
        rejects(request(#"[{"domain": {"name": "A"}, "contents": ["X(uint a)"], "extra": 1}]"#), "typedData[0].extra")
    }

    @Test func argumentRulesLandAtTheRightOffsets() throws {
        let c = try compile("""
            {"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1],
             "permissions": [{"target": "0x000000000000000000000000000000000000bEEF",
               "functions": ["f((uint256 a, uint256 b) pair, address to, bytes data, uint256 amount, bool flag, bytes4 tag)"],
               "rules": ["to == 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "amount in [2, 0x10]", "total(amount) <= 1 USDC", "flag != true", "tag == 0xdeadbeef", "amount > 1"]}]}
            """)
        let p = c.session.actions[0].actionPolicies[0]
        guard case .uniAction(let config) = try PolicyConfig.decode(.uniAction, initData: p.initData) else { Issue.record("not UniAction"); return }
        // (uint256,uint256) takes 64 bytes of head, then to at 64, data's offset at 96, amount at 128, flag at 160, tag at 192.
        #expect(config.rules.map(\.offset) == [64, 128, 128, 160, 192, 128])
        #expect(config.rules[0] == ParamRule(condition: .equal, offset: 64, ref: try Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").word))
        #expect(config.rules[1].ref == UInt256(2).shiftedLeft(128).addingReportingOverflow(16).partialValue.word)
        #expect(config.rules[2].isLimited && config.rules[2].limit == 1_000_000)
        #expect(config.rules[4].ref == Bytes32([0xde, 0xad, 0xbe, 0xef] + [UInt8](repeating: 0, count: 28)))
        #expect(config.rules[5].condition == .greaterThan)
        // The rule checks what the calldata says: a call that follows the rules passes each of them.
        let f = try ABIFunction(parsing: "f((uint256 a, uint256 b) pair, address to, bytes data, uint256 amount, bool flag, bytes4 tag)")
        let call = try f.encodeCall([.tuple([.uint(1), .uint(2)]), .address(try Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")), .bytes([1, 2, 3]), .uint(5), .bool(false), .fixedBytes([0xde, 0xad, 0xbe, 0xef])])
        for rule in config.rules {
            let start = 4 + Int(rule.offset)
            #expect(rule.accepts(Bytes32(call[start..<(start + 32)])), "\(rule)")
        }
    }

    @Test func errorsNameTheFieldAndTheReason() throws {
        let head = #""account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1]"#
        let beef = #""target": "0x000000000000000000000000000000000000bEEF""#
        rejects("{\(head)}", "permissions: missing")
        rejects("{\"chains\": [1], \"permissions\": [{\(beef), \"nativeTransfer\": true, \"sudo\": true}]}", "account: missing")
        rejects("{\(head), \"permissions\": [{\(beef), \"nativeTransfer\": true}]}", "no policy for value transfers")
        rejects("{\(head), \"permissions\": [{\(beef), \"allow\": [\"transfer\"], \"rules\": [\"recipient == 0x00\"]}]}", "transfer has no parameter \"recipient\" (it has to, amount)")
        rejects("{\(head), \"permissions\": [{\(beef), \"functions\": [\"f(int256 x)\"], \"rules\": [\"x < 5\"]}]}", "signed parameters are refused")
        rejects("{\(head), \"permissions\": [{\(beef), \"functions\": [\"f(bytes x)\"], \"rules\": [\"x == 0x00\"]}]}", "static elementary parameters")
        rejects("{\(head), \"permissions\": [{\(beef), \"allow\": [\"transfer\"], \"rules\": [\"amount <= 1.5 FOO\"]}]}", "unknown token FOO on Ethereum (1)")
        rejects("{\(head), \"permissions\": [{\(beef), \"functions\": [\"f(uint256 amount)\"], \"rules\": [\"amount <= 1.0000000000000000001 ETH\"]}]}", "more than 18 decimals")
        rejects("{\(head), \"permissions\": [{\(beef), \"functions\": [\"f(uint8 x)\"], \"rules\": [\"x <= 300\"]}]}", "does not fit in uint8")
        rejects("{\(head), \"permissions\": [{\(beef), \"allow\": [\"deposit(uint256,address)\"], \"spendingLimit\": \"5\"}]}", "would always fail")
        rejects("{\(head), \"permissions\": [{\(beef), \"allow\": [\"safeTransferFrom\"], \"sudo\": true}]}", "ambiguous")
        rejects("{\(head), \"permissions\": [{\(beef), \"allow\": [\"frobnicate\"], \"sudo\": true}]}", "no function named frobnicate")
        rejects("{\(head), \"validity\": {\"duration\": \"3y\"}, \"permissions\": [{\(beef), \"nativeTransfer\": true, \"sudo\": true}]}", "unknown duration unit y")
        rejects("{\(head), \"validity\": {\"duration\": \"9999999999999999999w\"}, \"permissions\": [{\(beef), \"nativeTransfer\": true, \"sudo\": true}]}", "validity.duration: too long")
        // A duration counted from a time near the end of the range overflowed (`inspect --now` crashed).
        rejects("{\(head), \"validity\": {\"after\": 281474976710000, \"duration\": \"1w\"}, \"permissions\": [{\(beef), \"nativeTransfer\": true, \"sudo\": true}]}",
                "validity.duration: ends beyond a time frame's range")
        #expect(throws: SmartSessionError.self) {
            try compile("{\(head), \"validity\": {\"duration\": \"1d\"}, \"permissions\": [{\(beef), \"nativeTransfer\": true, \"sudo\": true}]}", RequestCompiler(now: .max, sessionKeys: [Self.key]))
        }
        rejects("{\(head), \"validity\": {\"until\": 5, \"after\": 6}, \"permissions\": [{\(beef), \"nativeTransfer\": true, \"sudo\": true}]}", "later than")
        // Limits that would limit nothing, and rules that could not mean what they say.
        let send = "{\(beef), \"nativeTransfer\": true, \"sudo\": true}"
        rejects("{\(head), \"validity\": {\"until\": 281474976710656}, \"permissions\": [\(send)]}", "validity.until: out of range")
        rejects("{\(head), \"maxValue\": \"0\", \"permissions\": [\(send)]}", "maxValue: 0 is no limit")
        rejects("{\(head), \"maxGas\": {\"gas\": 1, \"cost\": \"340282366920938463463374607431768211456\"}, \"permissions\": [\(send)]}", "maxGas.cost: must be between 1 and 2^128-1 wei")
        // The contract's own refusals (here ERC20SpendingLimitPolicy's initializer) name the field the client wrote.
        #expect(throws: SmartSessionError("permissions[0].spendingLimit: ERC20SpendingLimitPolicy init data: a limit of 0 for 0x000000000000000000000000000000000000bEEF", reason: "invalid_policy")) {
            try compile("{\(head), \"permissions\": [{\(beef), \"allow\": [\"transfer\"], \"spendingLimit\": \"0\"}]}")
        }
        #expect(throws: SmartSessionError("permissions[1].valueLimit: ValueLimitPolicy init data: a value limit of 0", reason: "invalid_policy")) {
            try compile("{\(head), \"permissions\": [\(send), {\"target\": \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\", \"nativeTransfer\": true, \"valueLimit\": \"0\"}]}")
        }
        rejects("{\(head), \"permissions\": [{\(beef), \"nativeTransfer\": true, \"maxUses\": 0}]}", "maxUses: must be between 1 and 2^128-1")
        rejects("{\(head), \"permissions\": [{\(beef), \"functions\": [\"f(uint256 x)\"], \"rules\": [\"x in [5, 1]\"]}]}", "the range is empty")
        rejects("{\(head), \"permissions\": [{\(beef), \"functions\": [\"f(uint256 x)\"], \"rules\": [\"x in [0, 340282366920938463463374607431768211456]\"]}]}", "range bounds must be below 2^128")
        rejects("{\(head), \"permissions\": [{\(beef), \"functions\": [\"f(address a)\"], \"rules\": [\"a <= 0x000000000000000000000000000000000000bEEF\"]}]}", "addresses are compared with == or !=")
        rejects("{\(head), \"permissions\": [{\(beef), \"functions\": [\"f(bytes4 tag)\"], \"rules\": [\"tag == 0xdead\"]}]}", "expected 4 bytes")
        #expect(try compile("{\(head), \"sudo\": true, \"permissions\": [\(send)]}").session.userOpPolicies == [PolicyConfig.sudo.policyData], "a session-wide SudoPolicy")
        // A top-level field is named as it is, with no path before it.
        #expect(throws: SmartSessionError("bogus: unknown field")) { try compile("{\(head), \"bogus\": 1, \"permissions\": [{\(beef), \"nativeTransfer\": true, \"sudo\": true}]}") }
        #expect(throws: SmartSessionError("permissions[0].nativeTransfr: unknown field (did you mean `nativeTransfer`?)")) {
            try compile("{\(head), \"permissions\": [{\(beef), \"nativeTransfr\": true, \"sudo\": true}]}")
        }
        rejects("{\(head), \"permissions\": [{\(beef), \"nativeTransfer\": true, \"sudo\": true}, {\(beef), \"nativeTransfer\": true, \"sudo\": true}]}",
                "permissions[1]: 0x000000000000000000000000000000000000bEEF 0xffffffff is allowed already by permissions[0]; SmartSession would merge their policies")
        rejects(#"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1, 1], "permissions": [{\#(beef), "nativeTransfer": true, "sudo": true}]}"#, "listed twice")
        rejects("{\(head), \"permissions\": [\(send), {\"target\": \"0x00000000008bDABA73cD9815d79069c247Eb4bDA\", \"nativeTransfer\": true, \"sudo\": true}]}",
                "permissions[1]: SmartSession refuses the zero address or itself")
    }

    /// A field of the wrong type is an error, never taken for absent: read as absent, an ERC-7715
    /// expiry given as an object instead of a list would vanish, and a contract-call's function
    /// list given as a string would allow every function of the ABI.
    /// A time frame ends when it was written to end, or the request is refused: against Python's
    /// datetime on random times, a sixth of them with a field out of range (February 30th was
    /// taken for March 2nd, 24:00 for the next day).
    @Test(.enabled(if: Oracle.isAvailable, Comment(rawValue: Oracle.unavailableReason ?? "")))
    func timesAreReadAsPythonsDatetimeReadsThem() throws {
        let cases = try Oracle.cases("rfc3339", count: 2000)
        #expect(cases.contains { $0["seconds"] == .null } && cases.contains { $0["seconds"] != .null })
        for c in cases {
            let text = try #require(c["text"]?.stringValue)
            let request = #"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1], "validity": {"until": "\#(text)"}, "#
                + #""permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "nativeTransfer": true, "sudo": true}]}"#
            let policies: [PolicyData]?
            do { policies = try compile(request).session.userOpPolicies } catch { policies = nil }
            if case .number(let digits)? = c["seconds"], let seconds = UInt64(digits) {
                #expect(policies?.contains(PolicyConfig.timeFrame(validUntil: seconds, validAfter: 0).policyData) == true, "\(text) (seed \(Oracle.seed))")
            } else {
                #expect(policies == nil, "\(text) accepted (seed \(Oracle.seed))")
            }
        }
        for text in ["2026-12-01T00:00:00", "2026-12-01 00:00:00Z", "2026-12-01T00:00:00.5Z", "2026-12-01T00:00:00z", "2026-12-01T00:00:00+0200", "+2026-12-01T00:00:00Z", "2026-1-01T00:00:00Z"] {
            let request = #"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1], "validity": {"until": "\#(text)"}, "#
                + #""permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "nativeTransfer": true, "sudo": true}]}"#
            rejects(request, "validity.until: expected a date and time that exist")
        }
    }

    @Test func aFieldOfTheWrongTypeIsNotReadAsAbsent() {
        let head = #""account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1]"#
        let transfer = #""permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "nativeTransfer": true, "sudo": true}]"#
        rejects("{\(head), \"paymaster\": \"no\", \(transfer)}", "paymaster: expected true or false")
        rejects("{\(head), \"export\": 1, \(transfer)}", "export: expected true or false")
        rejects("{\(head), \"permissions\": [{\"target\": \"0x000000000000000000000000000000000000bEEF\", \"nativeTransfer\": \"true\", \"sudo\": true}]}", "nativeTransfer: expected true or false")
        rejects(#"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "accountKind": "safe", "chains": [1], "session": \#(WorkedExampleTests.session.json.serialized)}"#,
                "accountKind: one of")
        let grant = #""chainId": "0x1", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "signer": {"type": "wallet"}"#
        let call = #"{"type": "contract-call", "data": {"address": "0x000000000000000000000000000000000000bEEF", "abi": [{"type": "function", "name": "a", "inputs": []}, {"type": "function", "name": "b", "inputs": []}], "functions": FUNCTIONS}}"#
        rejects("{\(grant), \"permission\": \(call.replacingOccurrences(of: "FUNCTIONS", with: "\"a\""))}", "functions: expected an array")
        rejects("{\(grant), \"permission\": \(call.replacingOccurrences(of: "FUNCTIONS", with: "[5]"))}", "functions[0]: a function name")
        let allowA = "{\(grant), \"permission\": \(call.replacingOccurrences(of: "FUNCTIONS", with: "[\"a\"]"))"
        rejects(allowA + #", "rules": {"type": "expiry", "data": {"timestamp": 1800000000}}}"#, "rules: expected an array")
        rejects(allowA + #", "policies": {}}"#, "policies: expected an array")
        // A limit this compiler does not read is refused, not dropped.
        rejects("{\(grant), \"permission\": {\"type\": \"erc20-token-transfer\", \"data\": {\"address\": \"0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238\", \"allowance\": \"0x10\", \"to\": [\"0x000000000000000000000000000000000000bEEF\"]}}}",
                "permission.data.to: unknown field")
        rejects(allowA + #", "policies": [{"type": "call-limit", "data": {"count": 5, "period": 86400}}]}"#, "policies[0].data.period: unknown field")
        #expect(throws: Never.self) {
            try compile("{\(grant), \"permission\": {\"type\": \"erc20-token-transfer\", \"data\": {\"address\": \"0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238\", \"allowance\": \"0x10\", \"justification\": \"payouts\"}}}")
        }
    }

    /// A session whose ENABLE data could never be sent or decoded is refused before it is
    /// reviewed (each argument rule is a 3 KB UniActionPolicy configuration).
    @Test func aSessionTooLargeToEnableIsRefused() throws {
        func request(_ actions: Int) -> String {
            let permissions = (0..<actions).map { i in
                #"{"target": "0x\#(String(repeating: "0", count: 36))\#(String(format: "%04x", 0x1000 + i))", "functions": ["f\#(i)(uint256 a)"], "rules": ["a <= \#(i)"]}"#
            }
            return #"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1], "permissions": [\#(permissions.joined(separator: ", "))]}"#
        }
        #expect(try compile(request(250)).session.actions.count == 250)
        rejects(request(400), "the session is too large: its ENABLE data would be")
    }

    /// What a client writes that the approver reads as it is cannot carry a terminal's escape
    /// sequence, a line break that would start a line of the review's own, or a text-direction
    /// override; nor can an ABI's names, which must be Solidity identifiers.
    @Test func clientTextCannotDisguiseTheReview() throws {
        let head = #""account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1]"#
        let permission = #""permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "nativeTransfer": true, "sudo": true}]"#
        for (label, unsafe) in [("bot\\u001b[2J", "U+001B"), ("bot\\n  chains        Ethereum (1)", "U+000A"), ("bot\\u202eevil", "U+202E"),
                                ("bot\\u0085", "U+0085"), ("bot\\u2066", "U+2066"), ("bot\\r", "U+000D"), ("bot\\u061c", "U+061C"),
                                ("pay\\u200bments", "U+200B"), ("bot\\udb40\\udc73", "U+E0073")] {
            rejects("{\(head), \"label\": \"\(label)\", \(permission)}", "label: \(unsafe), a control, text-direction or invisible character")
        }
        rejects("{\(head), \"label\": 5, \(permission)}", "label: expected a string")
        #expect(try compile("{\(head), \"label\": \"Zahlungs-Bot für Café ☕ 日本\", \(permission)}").label == "Zahlungs-Bot für Café ☕ 日本")
        let abi = #"[{"type": "function", "name": "NAME", "inputs": [{"name": "PARAM", "type": "uint256"}]}]"#
        func withABI(_ name: String, _ param: String) -> String {
            "{\(head), \"permissions\": [{\"target\": \"0x000000000000000000000000000000000000bEEF\", \"abi\": \(abi.replacingOccurrences(of: "NAME", with: name).replacingOccurrences(of: "PARAM", with: param)), \"allow\": [\"\(name)\"], \"sudo\": true}]}"
        }
        #expect(try compile(withABI("pay_$1", "amount")).functions.count == 1)
        for (name, param) in [("pay\\u001b[2J", "amount"), ("pay", "amount\\nx"), ("p\\u0430y", "amount"), ("1pay", "amount")] {
            rejects(withABI(name, param), "is not a Solidity identifier")
        }
    }

    @Test func erc7715Shapes() throws {
        let grant = try RequestTests.compiler.compile(try Fixtures.json("requests/erc7715-grant.json"))
        #expect(grant.format == .grantPermissions)
        #expect(grant.chains == [ChainTarget(chainId: 11155111)])
        let usdc = try Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
        #expect(grant.session.actions == [ActionData(actionTargetSelector: Selector(rawValue: 0xa905_9cbb), actionTarget: usdc,
                                                     actionPolicies: [PolicyConfig.erc20SpendingLimit([TokenLimit(token: usdc, limit: 100_000_000)]).policyData])])
        #expect(grant.session.userOpPolicies.map(\.policy) == [PolicyKind.timeFrame, .usageLimit, .simpleGas].map(PolicyRegistry.address(of:)))

        let execution = try RequestTests.compiler.compile(try Fixtures.json("requests/erc7715-execution.json"))
        #expect(execution.format == .requestExecutionPermissions)
        #expect(execution.session.actions.count == 2)
        #expect(execution.session.userOpPolicies.contains(PolicyConfig.valueLimit(100_000_000_000_000_000).policyData))

        // Limits of one kind given twice all hold: one policy, the strictest of each, since
        // SmartSession keeps only the last init data of a policy contract.
        let twice = try RequestTests.compiler.compile(try JSONValue(parsing: #"""
            {"chainId": "0xaa36a7", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "expiry": 1764200000, "signer": {"type": "key", "data": {}},
             "permissions": [{"type": "native-token-transfer", "data": {"allowance": "0.5 ETH", "to": ["0x000000000000000000000000000000000000bEEF"]}},
                             {"type": "native-token-transfer", "data": {"allowance": "0.2 ETH", "to": ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"]}}],
             "policies": [{"type": "spent-limit", "data": {"allowance": "1 ETH"}}, {"type": "call-limit", "data": {"count": 3}}, {"type": "call-limit", "data": {"count": 9}},
                          {"type": "gas-limit", "data": {"limit": 500000}}, {"type": "gas-limit", "data": {"limit": 400000}}],
             "rules": [{"type": "expiry", "data": {"timestamp": 1764300000}}]}
            """#))
        #expect(twice.session.userOpPolicies == [PolicyConfig.timeFrame(validUntil: 1_764_200_000, validAfter: 0), .valueLimit(200_000_000_000_000_000), .usageLimit(3),
                                                 .simpleGas(gasLimit: 400_000, costLimit: UInt256.powerOfTwo(128).subtractingReportingOverflow(.one).partialValue)].map(\.policyData))
        #expect(Reviewer(now: Self.now).review(twice).expiresAt == 1_764_200_000)
        // Two grants on one token would be one action whose limit is the last: refused.
        let token = #"{"type": "erc20-token-transfer", "data": {"address": "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238", "allowance": "5 USDC"}}"#
        rejects(#"{"chainId": "0xaa36a7", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "expiry": 1764200000, "signer": {"type": "key", "data": {}}, "permissions": [\#(token), \#(token)]}"#,
                "permissions[1]: 0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238 0xa9059cbb is allowed already by permissions[0]")
        // A recipient named twice, by its place in the list.
        rejects(#"{"chainId": "0xaa36a7", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "expiry": 1764200000, "signer": {"type": "key", "data": {}}, "permission": {"type": "native-token-transfer", "data": {"allowance": "1 ETH", "to": ["0x000000000000000000000000000000000000bEEF", "0x000000000000000000000000000000000000beef"]}}}"#,
                "permission.data.to[1]: 0x000000000000000000000000000000000000bEEF 0xffffffff is allowed already by permission.data.to[0]")

        rejects(#"{"chainId": "0x1", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "signer": {"type": "wallet", "data": {}}, "permission": {"type": "erc20-token-periodic", "isAdjustmentAllowed": true, "data": {}}, "rules": []}"#, "streaming and periodic allowances")
        rejects(#"{"chainId": "0x1", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "expiry": 1, "signer": {"type": "account", "data": {}}, "permission": {"type": "native-token-transfer", "data": {"allowance": "0x1"}}, "policies": []}"#, "ERC-7710")
        rejects(#"{"chainId": "0x1", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "expiry": 1, "signer": {"type": "key", "data": {}}, "permission": {"type": "native-token-transfer", "data": {"allowance": "0x1"}}, "policies": []}"#, "names no recipient")
        rejects(#"{"chainId": "0x1", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "expiry": 1, "signer": {"type": "key", "data": {}}, "permission": {"type": "erc721-token-transfer", "data": {}}, "policies": []}"#, "no Smart Sessions v1 equivalent")
        rejects(#"{"chainId": "0x1", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "expiry": 1, "signer": {"type": "key", "data": {}}, "permission": {"type": "erc20-token-transfer", "data": {"address": "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238", "allowance": "0x1"}}, "policies": [{"type": "rate-limit", "data": {}}]}"#, "rate-limit")
    }

    /// What an ERC-7715 request cannot mean in Smart Sessions v1, or means nothing by, is refused
    /// by name rather than compiled into a session that allows less, or more, than it says.
    @Test func erc7715EdgesAreRefused() throws {
        let head = #""chainId": "0xaa36a7", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "expiry": 1764200000, "signer": {"type": "key", "data": {}}"#
        let usdcGrant = #"{"type": "erc20-token-transfer", "data": {"address": "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238", "allowance": "5 USDC"}}"#
        for (body, text) in [
            (#""permission": {"type": "erc20-token-transfer", "data": {"address": "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238", "allowance": "0"}}"#, "permission.data.allowance: ERC20SpendingLimitPolicy init data: a limit of 0"),
            (#""permission": {"type": "native-token-transfer", "data": {"allowance": "1 ETH", "to": []}}"#, "names no recipient"),
            (#""permission": {"type": "contract-call", "data": {"address": "0x000000000000000000000000000000000000bEEF", "functions": []}}"#, "name the functions allowed"),
            (#""permission": \#(usdcGrant), "policies": [{"type": "spent-limit", "data": {"allowance": "0"}}]"#, "policies[0]: ValueLimitPolicy init data: a value limit of 0"),
            // Limits of one kind are folded into one policy, which names every field it came from.
            (#""permission": {"type": "native-token-transfer", "data": {"allowance": "1 ETH", "to": ["0x000000000000000000000000000000000000bEEF"]}}, "policies": [{"type": "spent-limit", "data": {"allowance": "0"}}]"#,
             "permission.data.allowance and policies[0]: ValueLimitPolicy init data: a value limit of 0"),
            (#""permission": \#(usdcGrant), "rules": [{"type": "permission-limit", "data": {"timestamp": 1764200000}}]"#, "rule type permission-limit has no Smart Sessions v1 equivalent"),
            (#""permission": \#(usdcGrant), "period": 86400"#, "period"),
        ] {
            rejects("{\(head), \(body)}", text)
        }
        // A token's amount is read on every chain the session will be enabled on, not only the
        // request's own: USDC has another address on mainnet.
        let overridden = RequestCompiler(now: Self.now, sessionKeys: [Self.key], overrides: .init(chains: [11155111, 1]))
        do {
            _ = try overridden.compile(try JSONValue(parsing: "{\(head), \"permission\": \(usdcGrant)}"))
            Issue.record("5 USDC was read on Sepolia alone")
        } catch let error as SmartSessionError {
            #expect(error.message == "permission.data.allowance: USDC is 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48, but this limit is for 0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238", "\(error.message)")
        }
        _ = try RequestCompiler(now: Self.now, sessionKeys: [Self.key]).compile(try JSONValue(parsing: "{\(head), \"permission\": \(usdcGrant)}"))
    }

    @Test func argumentRulesAreWrittenOneWay() throws {
        func permission(_ rule: String) -> String {
            #"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1], "permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "functions": ["f(address to, uint256 amount, bool flag)"], "rules": ["\#(rule)"]}]}"#
        }
        for (rule, text) in [("flag == yes", "expected true or false"), ("total(amount) >= 5", "a total is limited with <="), ("total(to) <= 5", "totals apply to uint parameters"),
                             ("amount in [1, 5", "expected name in [min, max]"), ("amount in 1, 5]", "expected name in [min, max]")] {
            rejects(permission(rule), text)
        }
        // A range of one value.
        let point = try compile(permission("amount in [5, 5]"))
        guard case .uniAction(let config) = try PolicyConfig.decode(.uniAction, initData: point.session.actions[0].actionPolicies[0].initData) else { Issue.record("not UniAction"); return }
        #expect(config.rules == [ParamRule(condition: .inRange, offset: 32, ref: UInt256(5).shiftedLeft(128).addingReportingOverflow(5).partialValue.word)])
    }

    /// A raw Session reproduces the spec's worked example, and the typed-data document the
    /// request exports hashes (through the generic EIP-712 engine) to the same digest.
    @Test func rawSessionAndTypedDataExport() throws {
        let raw: JSONValue = .object(JSONObject([
            "account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": .array([.number("11155111")]),
            "session": WorkedExampleTests.session.json,
        ]))
        let c = try RequestTests.compiler.compile(raw)
        #expect(c.format == .rawSession)
        #expect(c.multichainDigest.hex == "0x73f8de6a9feaf72d8b98a3a9f275900d6747c0a50b3b104d50d59b6a9720bb8d")
        #expect(try TypedData(json: c.enableTypedData).digest == c.multichainDigest)
        // A policy twice in one set: SmartSession keeps its last init data, so a review of each
        // copy (an end in 2033 beside one in 2096) would show a limit that does not hold.
        var doubled = WorkedExampleTests.session
        doubled.userOpPolicies = [PolicyConfig.timeFrame(validUntil: 2_000_000_000, validAfter: 0).policyData, PolicyConfig.timeFrame(validUntil: 4_000_000_000, validAfter: 0).policyData]
        var rawDoubled = raw.objectValue!
        rawDoubled["session"] = doubled.json
        rejects(JSONValue.object(rawDoubled).serialized, "userOpPolicies[1]: the policy \(PolicyRegistry.address(of: .timeFrame)) is userOpPolicies[0] again")
        for record in Fixtures.sessionRecords.prefix(60) {
            let chains = record["chainIds"]!.arrayValue!.map { ChainTarget(chainId: UInt64($0.stringValue!)!, nonce: try! UInt256(parsing: record["nonce"]!.stringValue!)) }
            let request = CompiledRequest(format: .rawSession, account: try Address(try record.string("account")), chains: chains,
                                          mode: SmartSessionMode(rawValue: UInt8(try record.string("mode"))!)!, session: try Session(json: record["session"]!))
            #expect(request.multichainDigest == (try record.bytes32("multichainDigest")))
            #expect(try TypedData(json: request.enableTypedData).digest == request.multichainDigest, "record \(record["index"]!.serialized)")
        }
    }

    @Test func amounts() throws {
        #expect(Amounts.format(100_500_000, decimals: 6) == "100.5")
        #expect(Amounts.format(5, decimals: 6) == "0.000005")
        #expect(Amounts.format(0, decimals: 18) == "0")
        #expect(Amounts.format(UInt256.max, decimals: 18).hasPrefix("115792089237316195423570985008687907853269984665640564039457.58"))
        #expect(try Amounts.parse("0.25", decimals: 6) == 250_000)
        #expect(try Amounts.parse(".5", decimals: 1) == 5)
        #expect(throws: SmartSessionError.self) { try Amounts.parse("1.2.3", decimals: 6) }
        #expect(throws: SmartSessionError("invalid amount \"１００\"")) { try Amounts.parse("１００", decimals: 6) }
        #expect(throws: SmartSessionError("invalid amount \"½\"")) { try Amounts.parse("½", decimals: 6) }
        #expect(throws: SmartSessionError.self) { try Amounts.parse("-1", decimals: 6) }
        #expect(TokenList.builtIn.count > 10)   // every built-in address has a valid checksum
    }

    /// A token list adds tokens, in our array or the Token Lists format (whose extra fields are
    /// ignored). A symbol is shown beside amounts in the review, so one that could disguise it is
    /// refused; one that names two tokens on a chain, or differs in decimals between the
    /// session's chains, is refused where a request uses it, rather than guessed at.
    @Test func tokenLists() throws {
        let dead = try Address("0x000000000000000000000000000000000000dEaD")
        let usdc = try Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
        func list(_ json: String) throws -> TokenList {
            var list = TokenList()
            try list.add(json: try JSONValue(parsing: json))
            return list
        }
        let standard = try list("""
            {"name": "a list", "timestamp": "2026-11-01T00:00:00Z", "version": {"major": 1, "minor": 0, "patch": 0},
             "tokens": [{"chainId": 84532, "address": "\(dead.checksummed)", "symbol": "USD₮0", "name": "Tether", "decimals": 6,
                         "logoURI": "https://example.com/t.png", "tags": ["stablecoin"], "extensions": {"bridgeInfo": {}}}]}
            """)
        #expect(standard.amount(1_500_000, of: dead, chains: [84532]) == "1.5 USD₮0")
        #expect(try standard.token(symbol: "usd₮0", chains: [1, 84532])?.address == dead)

        for (symbol, refusal) in [("USDC\\u001b[31m", "U+001B"), ("USDC\\nfake line", "U+000A"), ("\\u202eCDSU", "U+202E"),
                                  ("US DC", "a symbol is one word"), ("", "a symbol is one word")] {
            #expect(throws: SmartSessionError("tokens[0].symbol: " + (refusal.hasPrefix("U+") ? "\(refusal), a control, text-direction or invisible character, could disguise what the review shows"
                                                                                                   : "a symbol is one word, as amounts name it (\"100 USDC\")"))) {
                try list(#"[{"chainId": 1, "address": "0x000000000000000000000000000000000000dEaD", "decimals": 6, "symbol": "\#(symbol)"}]"#)
            }
        }
        #expect(throws: SmartSessionError.self) { try list(#"{"tokens": {}}"#) }
        #expect(throws: SmartSessionError.self) { try list(#"[{"chainId": 1, "address": "0x000000000000000000000000000000000000dEaD", "decimals": 6, "symbol": "X", "color": "red"}]"#) }

        // A second USDC on Sepolia: "USDC" no longer says which token is meant.
        let twice = try list(#"[{"chainId": 11155111, "address": "0x000000000000000000000000000000000000dEaD", "symbol": "USDC", "decimals": 6}]"#)
        let compiler = RequestCompiler(tokens: twice, now: Self.now, sessionKeys: [Self.key])
        let account = "\"account\": \"0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6\", \"chains\": [11155111]"
        let ambiguous = "USDC names two tokens on Sepolia (11155111), \(usdc) and \(dead); give the token's address"
        #expect(throws: SmartSessionError("permissions[0].token: " + ambiguous)) {
            try compiler.compile(try JSONValue(parsing: #"{\#(account), "permissions": [{"token": "USDC", "allow": ["transfer"]}]}"#))
        }
        #expect(throws: SmartSessionError("permissions[0].spendingLimit: " + ambiguous)) {
            try compiler.compile(try JSONValue(parsing: #"{\#(account), "permissions": [{"target": "\#(usdc)", "allow": ["transfer"], "spendingLimit": "100 USDC"}]}"#))
        }
        let base = try compiler.compile(try JSONValue(parsing: #"{\#(account), "permissions": [{"target": "\#(usdc)", "allow": ["transfer"], "spendingLimit": "100000000"}]}"#))
        #expect(base.session.actions.count == 1, "base units need no symbol")

        // USDC of 18 decimals on one chain and 6 on another: "100 USDC" is 10^20 or 10^8 base units.
        let pegged = try list(#"[{"chainId": 56, "address": "\#(usdc)", "symbol": "USDC", "decimals": 18}, {"chainId": 100, "address": "\#(usdc)", "symbol": "USDC", "decimals": 6}]"#)
        // Nor is an amount of it shown in either chain's decimals.
        #expect(pegged.amount(100, of: usdc, chains: [56, 100]) == "100 base units")
        #expect(pegged.amount(100, of: usdc, chains: [100, 1]) == "0.0001 USDC")
        #expect(throws: SmartSessionError("permissions[0].rules[0]: USDC has 18 decimals on BNB Smart Chain (56) but 6 on \(Chains.label(100)); give the amount in base units")) {
            try RequestCompiler(tokens: pegged, now: Self.now, sessionKeys: [Self.key]).compile(try JSONValue(parsing: #"""
                {"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [56, 100],
                 "permissions": [{"target": "\#(usdc)", "allow": ["transfer"], "rules": ["amount <= 100 USDC"]}]}
                """#))
        }
    }

    /// A limit of native value is in ETH, gwei or wei, and a token's in its symbol or base
    /// units: "1 USDC" as a native limit was 10^6 wei, and "1 ETH" as a USDC limit 10^12 USDC.
    /// An argument may be either.
    @Test func anAmountIsInTheUnitsOfWhatItCounts() throws {
        let usdc = "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"
        let head = #""account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [11155111]"#
        let transfer = #"{"target": "\#(usdc)", "allow": ["transfer"]"#
        rejects(#"{\#(head), "maxValue": "1 USDC", "permissions": [\#(transfer)}]}"#, "maxValue: native value is in ETH, gwei or wei, not USDC")
        rejects(#"{\#(head), "maxGas": {"gas": 1000, "cost": "1 USDC"}, "permissions": [\#(transfer)}]}"#, "maxGas.cost: native value is in ETH, gwei or wei, not USDC")
        rejects(#"{\#(head), "permissions": [{"target": "\#(usdc)", "nativeTransfer": true, "valueLimit": "2 USDC"}]}"#, "permissions[0].valueLimit: native value is in ETH, gwei or wei, not USDC")
        rejects(#"{\#(head), "permissions": [\#(transfer), "spendingLimit": "1 ETH"}]}"#, "permissions[0].spendingLimit: an amount of the token \(usdc) is in USDC or base units, not ETH")
        rejects(#"{\#(head), "permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "allow": ["transfer"], "spendingLimit": "5 gwei"}]}"#,
                "permissions[0].spendingLimit: an amount of the token 0x000000000000000000000000000000000000bEEF is in base units, not gwei")
        let erc7715 = #"{"chainId": "0xaa36a7", "address": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "expiry": 1764182400, "signer": {"type": "key", "data": {"id": "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"}}, "permission": "#
        rejects(erc7715 + #"{"type": "erc20-token-transfer", "data": {"address": "\#(usdc)", "allowance": "1 ETH"}}}"#, "an amount of the token \(usdc) is in USDC or base units, not ETH")
        rejects(erc7715 + #"{"type": "native-token-transfer", "data": {"allowance": "1 USDC", "to": ["0x000000000000000000000000000000000000bEEF"]}}}"#, "native value is in ETH, gwei or wei, not USDC")

        let compiled = try compile(#"{\#(head), "maxValue": "5 gwei", "permissions": [\#(transfer), "spendingLimit": "100 USDC", "rules": ["amount <= 50 USDC"], "valuePerCall": "1 wei"}]}"#)
        #expect(compiled.session.userOpPolicies.contains(PolicyConfig.valueLimit(5_000_000_000).policyData))
        #expect(compiled.session.actions[0].actionPolicies.contains(PolicyConfig.erc20SpendingLimit([TokenLimit(token: try Address(usdc), limit: 100_000_000)]).policyData))
        // An ERC-20 transfer's amount is in the token's units; another function's in any unit.
        rejects(#"{\#(head), "permissions": [\#(transfer), "rules": ["amount <= 1 gwei"]}]}"#, "permissions[0].rules[0]: an amount of the token \(usdc) is in USDC or base units, not gwei")
        rejects(#"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [1], "permissions": [{"token": "WETH", "allow": ["transfer"], "rules": ["amount <= 100 USDC"]}]}"#,
                "permissions[0].rules[0]: USDC is 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48, but this limit is for 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2")
        let swap = try compile(#"{\#(head), "permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "functions": ["swap(uint256 amountIn, uint256 fee)"], "rules": ["amountIn <= 100 USDC", "fee <= 1 gwei"]}]}"#)
        guard case .uniAction(let config) = try PolicyConfig.decode(.uniAction, initData: swap.session.actions[0].actionPolicies[0].initData) else { Issue.record("not UniAction"); return }
        #expect(config.rules.map(\.ref) == [UInt256(100_000_000).word, UInt256(1_000_000_000).word])
    }

    /// Functions with random parameter types, and argument rules on random parameters: each
    /// request compiles or is refused with an error, never a trap (a type too large for any
    /// calldata once crashed the agent from one request).
    @Test func randomSignaturesWithRulesCompileOrAreRefused() {
        var random = SplitMix64(seed: Oracle.seed)
        var compiled = 0
        for _ in 0..<1500 {
            let types = (0..<Int.random(in: 1...4, using: &random)).map { _ in random.abiType() }
            let signature = "f(" + types.enumerated().map { "\($1) p\($0)" }.joined(separator: ", ") + ")"
            let rules = (0..<Int.random(in: 1...3, using: &random)).map { _ in
                "p\(Int.random(in: 0..<types.count, using: &random)) \(["==", "<=", ">"].randomElement(using: &random)!) \(Int.random(in: 0...1000, using: &random))"
            }
            let request = JSONValue.object(JSONObject([
                "account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": .array([JSONValue(1)]),
                "permissions": .array([.object(JSONObject([
                    "target": "0x000000000000000000000000000000000000bEEF", "functions": .array([.string(signature)]), "rules": .array(rules.map { .string($0) }),
                ]))]),
            ]))
            if (try? Self.compiler.compile(request)) != nil { compiled += 1 }
        }
        #expect(compiled > 10, "almost nothing compiled: the generator misses what rules apply to (seed \(Oracle.seed))")
    }
}
