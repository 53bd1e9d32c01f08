import EthereumCore
import Foundation
import SmartSessions
import Testing
import TestSupport

@Suite("Clear signing: golden renderings")
struct ReviewGoldenTests {
    static let requests = ["usdc-transfers", "uniswap-rules", "dangerous", "erc7715-grant", "erc7715-execution", "permit2-orders"]

    /// Set UPDATE_GOLDEN=1 to rewrite the files after an intended change, then read the diff.
    @Test(arguments: requests)
    func rendering(_ name: String) throws {
        let source = name == "usdc-transfers"
            ? Oracle.packageRoot.appendingPathComponent("docs/examples/usdc-transfers.json")
            : try Fixtures.url("requests/\(name).json")
        let compiled = try RequestTests.compiler.compile(try JSONValue(parsing: [UInt8](try Data(contentsOf: source))))
        let review = Reviewer(now: RequestTests.now).review(compiled)
        let text = review.text() + "\n"
        let json = review.json.prettyPrinted + "\n"
        let golden = Oracle.packageRoot.appendingPathComponent("Tests/TestSupport/Fixtures/golden")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] != nil {
            try text.write(to: golden.appendingPathComponent("\(name).txt"), atomically: true, encoding: .utf8)
            try json.write(to: golden.appendingPathComponent("\(name).json"), atomically: true, encoding: .utf8)
        }
        #expect(text == (try String(contentsOf: golden.appendingPathComponent("\(name).txt"), encoding: .utf8)))
        #expect(json == (try String(contentsOf: golden.appendingPathComponent("\(name).json"), encoding: .utf8)))
        #expect(!review.text(colors: true).isEmpty)
    }

    @Test func dangerousRequestRaisesEveryFlag() throws {
        let review = Reviewer(now: RequestTests.now).review(try RequestTests.compiler.compile(try Fixtures.json("requests/dangerous.json")))
        let codes = Set(review.risks.map(\.code))
        for code in ["no_action_restriction", "admin_access", "sudo", "unknown_policy", "older_policy", "unlimited_approval", "erc7739",
                     "no_expiry", "unsafe_enable", "paymaster", "key_export", "self_call", "account_administration", "unknown_selector", "multichain"] {
            #expect(codes.contains(code), "\(code)")
        }
        #expect(review.highestSeverity == .critical)
        #expect(review.exposure.native == .unbounded("the fallback action (any contract) has no value limit"))
    }
}

extension ReviewGoldenTests {
    /// A raw session's policies that can never pass, or whose limits are limits in name only,
    /// are flagged: a time frame with neither end (the contract reverts), init data the contract
    /// refuses, and ERC-20 or native limits of 2^128 or more.
    @Test func policiesThatNeverPassOrNeverLimitAreFlagged() throws {
        let token = try Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
        let huge = UInt256.powerOfTwo(128)
        let session = Session(sessionValidator: SmartSessionAddresses.ownableValidator,
                              sessionValidatorInitData: try OwnableValidatorConfig(threshold: 1, owners: [token]).initData,
                              userOpPolicies: [PolicyConfig.timeFrame(validUntil: 0, validAfter: 0).policyData, PolicyConfig.valueLimit(huge).policyData],
                              actions: [ActionData(actionTargetSelector: Selector(rawValue: 0xa905_9cbb), actionTarget: token, actionPolicies: [
                                  PolicyConfig.erc20SpendingLimit([TokenLimit(token: token, limit: huge)]).policyData,
                                  PolicyData(policy: PolicyConfig.usageLimit(1).policyData.policy, initData: [1, 2, 3]),
                              ])])
        let review = Reviewer(now: RequestTests.now).review(CompiledRequest(format: .rawSession, account: token, chains: [ChainTarget(chainId: 11155111)], session: session))
        let flags = review.risks.map { "\($0.severity) \($0.code): \($0.message)" }
        for expected in ["warning policy_never_passes: a TimeFramePolicy with neither start nor end reverts on every check",
                         "high policy_never_passes: UsageLimitPolicy at \(PolicyConfig.usageLimit(1).policyData.policy.checksummed) has init data its contract rejects",
                         "high very_large_limit: an ERC-20 spending limit of 2^128 base units or more: effectively unlimited",
                         "high very_large_limit: a native value limit of 2^128 wei or more: effectively unlimited"] {
            #expect(flags.contains(expected), "\(expected) in \(flags)")
        }
    }

    /// ERC-7739 content names are the client's words: the review quotes them with every
    /// character that could disguise them written out, text-direction overrides, zero-width and
    /// C1 controls included, so a name cannot pass for another or start a line of its own.
    @Test func contentNamesAreShownWithWhatCouldDisguiseThemWrittenOut() throws {
        let session = Session(sessionValidator: SmartSessionAddresses.ownableValidator,
                              sessionValidatorInitData: try OwnableValidatorConfig(threshold: 1, owners: [SmartSessionAddresses.smartSession]).initData,
                              erc7739Policies: ERC7739Data(allowedERC7739Content: [ERC7739Context(appDomainSeparator: .zero, contentNames: [
                                  "Permit\u{202E})gnitset(\u{2066}", "Mail\u{85}fake", "Order\u{200B}", "Quote\"d\n",
                              ])]))
        let text = Reviewer(now: RequestTests.now).review(CompiledRequest(format: .rawSession, account: SmartSessionAddresses.smartSession,
                                                                          chains: [ChainTarget(chainId: 1)], session: session)).text()
        let line = try #require(text.split(separator: "\n").first { $0.contains("app domain") })
        #expect(line.hasSuffix(#": "Permit\u{202e})gnitset(\u{2066}", "Mail\u{85}fake", "Order\u{200b}", "Quote\"d\n""#), "\(line)")
        #expect(DisplayText.firstUnsafe(String(line)) == nil)
    }
}

extension ReviewGoldenTests {
    static let usdc = try! Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
    static let beef = try! Address("0x000000000000000000000000000000000000bEEF")

    /// The review of a raw session on Sepolia with these policies and actions.
    static func review(userOp: [PolicyData] = [], actions: [ActionData], erc1271: [PolicyData] = [],
                       validator: Address = SmartSessionAddresses.ownableValidator) -> SessionReview {
        let session = Session(sessionValidator: validator, sessionValidatorInitData: try! OwnableValidatorConfig(threshold: 1, owners: [beef]).initData,
                              userOpPolicies: userOp, erc7739Policies: ERC7739Data(allowedERC7739Content: [], erc1271Policies: erc1271), actions: actions)
        return Reviewer(now: RequestTests.now).review(CompiledRequest(format: .rawSession, account: try! Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6"),
                                                                      chains: [ChainTarget(chainId: 11155111)], session: session))
    }

    static func call(_ target: Address, _ signature: String, _ policies: [PolicyConfig]) -> ActionData {
        ActionData(actionTargetSelector: Selector(bytes: try! ABIFunction(parsing: signature).selector)!, actionTarget: target, actionPolicies: policies.map(\.policyData))
    }

    /// Each flag and each bound of the exposure, on a session where it applies and, where the
    /// line is fine, on its neighbour where it does not.
    @Test func flagsAndBoundsFollowWhatTheContractsEnforce() throws {
        func codes(_ r: SessionReview) -> Set<String> { Set(r.risks.map(\.code)) }
        let transfer = "transfer(address,uint256)"
        let pay = [Self.call(Self.usdc, transfer, [.sudo])]
        let now = RequestTests.now
        #expect(codes(Self.review(actions: [Self.call(Self.usdc, transfer, [])])).contains("unusable_action"))
        #expect(codes(Self.review(actions: [Self.call(Self.beef, "setApprovalForAll(address,bool)", [.usageLimit(1)])])).contains("unlimited_approval"))
        let permit2 = try Address("0x000000000022D473030F116dDEE9F6B43aC78BA3")
        #expect(codes(Self.review(actions: [Self.call(permit2, "approve(address,address,uint160,uint48)", [.usageLimit(1)])])).contains("unlimited_approval"))
        #expect(codes(Self.review(actions: pay, erc1271: [PolicyConfig.sudo.policyData])).contains("erc7739"), "an ERC-1271 policy without contexts")
        #expect(codes(Self.review(actions: pay, validator: SmartSessionAddresses.olderOwnableValidator)).contains("unknown_session_validator"))
        #expect(!codes(Self.review(actions: pay)).contains("unknown_session_validator"))
        // A time frame's last second is still in it.
        #expect(!codes(Self.review(userOp: [PolicyConfig.timeFrame(validUntil: now, validAfter: 0).policyData], actions: pay)).contains("already_expired"))
        #expect(codes(Self.review(userOp: [PolicyConfig.timeFrame(validUntil: now - 1, validAfter: 0).policyData], actions: pay)).contains("already_expired"))
        let cycle = ArgPolicyConfig(valueLimitPerUse: 0, rootNodeIndex: 0, rules: [ParamRule(condition: .equal, offset: 0, ref: .zero)], nodes: [.not(0)])
        #expect(Self.review(actions: [Self.call(Self.usdc, transfer, [.arg(cycle)])]).risks.contains { $0.code == "policy_never_passes" && $0.message.contains("refers back to itself") })
        let belowHuge = UInt256.powerOfTwo(128).subtractingReportingOverflow(.one).partialValue
        #expect(!codes(Self.review(userOp: [PolicyConfig.valueLimit(belowHuge).policyData],
                                   actions: [Self.call(Self.usdc, transfer, [.erc20SpendingLimit([TokenLimit(token: Self.usdc, limit: belowHuge)])])])).contains("very_large_limit"))

        // When it ends: the earliest session-wide end (an older TimeFramePolicy deployment holds
        // beside the current one); else, when every action has an end, the latest of those.
        let olderTimeFrame = PolicyData(policy: try Address("0x8177451511dE0577b911C254E9551D981C26dc72"), initData: PolicyConfig.timeFrame(validUntil: now + 50, validAfter: 0).policyData.initData)
        #expect(Self.review(userOp: [PolicyConfig.timeFrame(validUntil: now + 100, validAfter: 0).policyData, olderTimeFrame], actions: pay).expiresAt == now + 50)
        let ends = [Self.call(Self.usdc, transfer, [.timeFrame(validUntil: now + 100, validAfter: 0)]), Self.call(Self.beef, transfer, [.timeFrame(validUntil: now + 200, validAfter: 0)])]
        #expect(Self.review(actions: ends).expiresAt == now + 200)
        #expect(Self.review(actions: ends + [Self.call(Self.beef, "burn(uint256)", [.sudo])]).expiresAt == nil, "one action without an end")

        // Native value: the lowest session-wide limit; the actions' limits added, past 2^256 no bound.
        let olderValueLimit = PolicyData(policy: try Address("0x730DA93267E7E513e932301B47F2ac7D062abC83"), initData: PolicyConfig.valueLimit(5).policyData.initData)
        let sendAny = [ActionData(actionTargetSelector: .valueTransfer, actionTarget: Self.beef, actionPolicies: [PolicyConfig.sudo.policyData])]
        #expect(Self.review(userOp: [PolicyConfig.valueLimit(9).policyData, olderValueLimit], actions: sendAny).exposure.native == .limited(5))
        let half = [Self.beef, Self.usdc].map { ActionData(actionTargetSelector: .valueTransfer, actionTarget: $0, actionPolicies: [PolicyConfig.valueLimit(UInt256.powerOfTwo(255)).policyData]) }
        #expect(Self.review(actions: half).exposure.native == .unbounded("the limits add up beyond 2^256"))

        // Tokens: a call on a token that moves none is named for the token.
        #expect(Self.review(actions: [Self.call(Self.usdc, "burn(uint256)", [.sudo])]).exposure.otherContracts.first?.contains("on the USDC token") == true)
        func tokenBound(_ signature: String, _ policies: [PolicyConfig]) -> SessionReview.Bound? {
            Self.review(actions: [Self.call(Self.usdc, signature, policies)]).exposure.tokens.first { $0.token == Self.usdc }?.bound
        }
        // transferFrom's amount is its third word; a limited rule bounds by what is left of it.
        let leftOver = ParamRule(condition: .greaterThanOrEqual, offset: 64, isLimited: true, ref: .zero, limit: 100, used: 30)
        #expect(tokenBound("transferFrom(address,address,uint256)", [.uniAction(UniActionConfig(valueLimitPerUse: 0, rules: [leftOver]))]) == .limited(70))
        // A per-call cap times the uses; a floor caps nothing.
        let cap = ParamRule(condition: .lessThanOrEqual, offset: 32, ref: UInt256(5).word)
        #expect(tokenBound(transfer, [.uniAction(UniActionConfig(valueLimitPerUse: 0, rules: [cap])), .usageLimit(3)]) == .limited(15))
        let floor = ParamRule(condition: .greaterThanOrEqual, offset: 32, ref: UInt256(5).word)
        if case .limited? = tokenBound(transfer, [.uniAction(UniActionConfig(valueLimitPerUse: 0, rules: [floor])), .usageLimit(3)]) { Issue.record("a floor read as a cap") }
        // A spending limit bounds its own token only.
        let other = try Address("0x000000000000000000000000000000000000cafE")
        #expect(tokenBound(transfer, [.erc20SpendingLimit([TokenLimit(token: other, limit: 1), TokenLimit(token: Self.usdc, limit: 100)])]) == .limited(100))
    }
}

@Suite("Clear signing: properties over random sessions and the contract vectors")
struct ReviewPropertyTests {
    /// Drops what is derived from everything (the digests and the permissionId), so a change
    /// must show in the decoded fields themselves.
    static func decodedPart(_ text: String) -> String {
        text.components(separatedBy: "\nDigests")[0].split(separator: "\n").filter { !$0.contains("permissionId") }.joined(separator: "\n")
    }

    @Test func renderingNeverFailsAndShowsEveryDigestField() throws {
        var random = RandomSessions(seed: Oracle.seed)
        let reviewer = Reviewer(now: RequestTests.now)
        for i in 0..<300 {
            let request = random.request()
            let review = reviewer.review(request)
            let text = review.text()
            #expect(try JSONValue(parsing: review.json.serialized) == review.json)
            #expect(review.multichainDigest == request.multichainDigest)

            // Change one field that enters the digest: the decoded rendering must change too.
            var changed = request
            var s = changed.session
            let field = i % 12
            switch field {
            case 0: changed.account = random.address()
            case 1: changed.chains[0].chainId &+= 1
            case 2: changed.chains[0].nonce = changed.chains[0].nonce.addingReportingOverflow(.one).partialValue
            case 3: changed.mode = changed.mode == .enable ? .unsafeEnable : .enable
            case 4: s.salt = random.word()
            case 5: s.sessionValidatorInitData = try OwnableValidatorConfig(threshold: 1, owners: [random.address()]).initData
            case 6: s.permitERC4337Paymaster.toggle()
            case 7: s.userOpPolicies.append(random.policy(.userOp))
            case 8:
                if s.actions.isEmpty { s.actions.append(ActionData(actionTargetSelector: .valueTransfer, actionTarget: random.address(), actionPolicies: [])) }
                s.actions[0].actionTarget = random.address()
            case 9:
                if s.actions.isEmpty { s.sessionValidator = random.address() } else { s.actions[0].actionTargetSelector = Selector(rawValue: s.actions[0].actionTargetSelector.rawValue &+ 1) }
            case 10:
                if s.actions.isEmpty || s.actions[0].actionPolicies.isEmpty { s.erc7739Policies.allowedERC7739Content.append(ERC7739Context(appDomainSeparator: random.word(), contentNames: ["X"])) }
                else { s.actions[0].actionPolicies[0].initData.append(UInt8.random(in: 0...255, using: &random)) }
            default:
                if s.erc7739Policies.allowedERC7739Content.isEmpty { s.erc7739Policies.allowedERC7739Content.append(ERC7739Context(appDomainSeparator: random.word(), contentNames: [])) }
                else { s.erc7739Policies.allowedERC7739Content[0].contentNames.append("Other(bytes32 y)") }
            }
            changed.session = s
            guard changed.multichainDigest != request.multichainDigest else { continue }
            #expect(Self.decodedPart(reviewer.review(changed).text()) != Self.decodedPart(text), "field \(field), seed \(Oracle.seed), iteration \(i)")
        }
    }

    @Test func everyContractVectorSessionRenders() throws {
        let reviewer = Reviewer(now: RequestTests.now)
        for record in Fixtures.sessionRecords {
            let request = CompiledRequest(format: .rawSession, account: try Address(try record.string("account")),
                                          chains: record["chainIds"]!.arrayValue!.map { ChainTarget(chainId: UInt64($0.stringValue!)!) },
                                          session: try Session(json: record["session"]!))
            let review = reviewer.review(request)
            #expect(review.actions.count == request.session.actions.count)
            #expect(!review.userOpPolicies.contains { $0.kind == nil }, "every vector policy is known")
        }
    }
}
