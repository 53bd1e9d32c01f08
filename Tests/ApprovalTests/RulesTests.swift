import Approval
import EthereumCore
import Foundation
import SmartSessions
import Testing
import TestSupport

@Suite("Rules files decide with a trace, and reject what they do not understand")
struct RulesTests {
    static let now: UInt64 = 1_764_096_000
    static let example = try! String(contentsOf: Oracle.packageRoot.appendingPathComponent("docs/examples/rules.toml"), encoding: .utf8)

    func review(_ json: String) throws -> SessionReview {
        let compiled = try RequestCompiler(now: Self.now, sessionKeys: [try Address("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A")]).compile(try JSONValue(parsing: json))
        return Reviewer(now: Self.now).review(compiled)
    }

    static let payments = """
        {"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [11155111], "validity": {"duration": "3d"},
         "permissions": [{"token": "USDC", "allow": ["transfer"], "spendingLimit": "%AMOUNT% USDC", "maxUses": 10}]}
        """

    /// A session whose one action is the fallback: any call to any contract.
    static let fallbackSession = """
        {"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [11155111],
         "session": {"sessionValidator": "0x000000000013fdb5234e4e3162a810f54d9f7e98", "sessionValidatorInitData": "0x0000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000010000000000000000000000001d2423ce516c5b68a7e311db684fd7ad0d389428",
           "salt": "0x0000000000000000000000000000000000000000000000000000000000000000", "userOpPolicies": [],
           "erc7739Policies": {"allowedERC7739Content": [], "erc1271Policies": []},
           "actions": [{"actionTargetSelector": "0x00000001", "actionTarget": "0x0000000000000000000000000000000000000001",
                        "actionPolicies": [{"policy": "0x00000000001d4479fa2a947026204d0283cede4b", "initData": "0x00000000000000000000000000000001"}]}],
           "permitERC4337Paymaster": false}}
        """

    @Test func theExampleApprovesThePaymentsBotWithinItsLimits() throws {
        let rules = try RulesFile(toml: Self.example)
        let bot = ClientIdentity(uid: 1000, gid: 1000, pid: 42)
        let none = ClientHoldings(liveSessions: 0, sessionsLastDay: 0)
        let ok = rules.evaluate(try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "100")), client: bot, holdings: none)
        #expect(ok.decision == .approve && ok.rule == "payments bot")
        #expect(ok.trace.allSatisfy(\.passed) || ok.trace.first?.rule == "never the dangerous flags")
        let fifth = rules.evaluate(try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "100")), client: bot, holdings: ClientHoldings(liveSessions: 5, sessionsLastDay: 0))
        #expect(fifth.decision == .ask && fifth.trace.contains { !$0.passed && $0.condition == "max_live_sessions" }, "five held already")
        let eleventh = rules.evaluate(try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "100")), client: bot,
                                      holdings: ClientHoldings(liveSessions: 0, sessionsLastDay: 10))
        #expect(eleventh.decision == .ask && eleventh.trace.contains { !$0.passed && $0.condition == "max_sessions_per_day" }, "ten given today, all revoked")

        let tooMuch = rules.evaluate(try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "101")), client: bot, holdings: none)
        #expect(tooMuch.decision == .ask && tooMuch.rule == nil)
        #expect(tooMuch.trace.contains { !$0.passed && $0.condition == "max_token_amounts" })

        let stranger = rules.evaluate(try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "1")), client: ClientIdentity(uid: 4242, gid: 0, pid: 1), holdings: none)
        #expect(stranger.decision == .ask)
        #expect(stranger.trace.contains { !$0.passed && $0.condition == "client_uids" })

        let fallback = rules.evaluate(try review(Self.fallbackSession), client: bot)
        #expect(fallback.decision == .deny && fallback.rule == "never the dangerous flags")
    }

    @Test func conditionsEachWay() throws {
        let r = try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "5"))
        func decide(_ match: String, client: ClientIdentity? = ClientIdentity(uid: 7, gid: 7, pid: 1, executable: "/usr/bin/bot", unit: "bot.service")) throws -> RuleDecision {
            try RulesFile(toml: "default = \"deny\"\n[[rules]]\nname = \"r\"\ndecision = \"approve\"\n[rules.match]\n\(match)\n").evaluate(r, client: client).decision
        }
        #expect(try decide("client_executables = [\"/usr/bin/bot\"]") == .approve)
        #expect(try decide("client_executables = [\"/usr/bin/other\"]") == .deny)
        #expect(try decide("client_units = [\"bot.service\"]") == .approve)
        #expect(try decide("client_units = [\"bot.service\"]", client: nil) == .deny)
        #expect(try decide("chains = [1]") == .deny)
        #expect(try decide("max_duration = \"2d\"") == .deny)
        #expect(try decide("max_duration = \"3d\"") == .approve)
        #expect(try decide("max_native_value = \"0.1 ETH\"") == .approve)
        #expect(try decide("max_native_value = 0") == .approve, "wei as a TOML integer")
        #expect(throws: RulesError.self) { try decide("max_native_value = 0.5") }
        #expect(try decide("selectors = [\"0x095ea7b3\"]") == .deny)
        #expect(try decide("max_severity = \"info\"") == .approve)
        #expect(try decide("forbid = [\"testnet\"]") == .deny)
        #expect(try decide("any_flag = [\"testnet\"]") == .approve)
        #expect(try decide("any_flag = [\"sudo\"]") == .deny)
        #expect(try decide("") == .approve)   // no conditions: always matches
    }

    /// Every condition on a session where it holds and on one where it does not: a condition
    /// that always held (or never did) fails here.
    @Test func eachConditionHoldsAndFails() throws {
        let head = #""account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [11155111], "validity": {"duration": "7d"}"#
        let usdc = "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"
        let fiveUSDC = #"{"token": "USDC", "allow": ["transfer"], "spendingLimit": "5 USDC"}"#
        let pay = try review(#"{\#(head), "permissions": [\#(fiveUSDC)]}"#)
        let exporting = try review(#"{\#(head), "export": true, "permissions": [\#(fiveUSDC)]}"#)
        let endless = try review(#"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [11155111], "permissions": [\#(fiveUSDC)]}"#)
        let native = try review(#"{\#(head), "permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "nativeTransfer": true, "valueLimit": "0.2 ETH"}]}"#)
        let anyValue = try review(#"{\#(head), "permissions": [{"target": "0x000000000000000000000000000000000000bEEF", "nativeTransfer": true, "sudo": true}]}"#)
        let anyAmount = try review(#"{\#(head), "permissions": [{"token": "USDC", "allow": ["transfer"], "sudo": true}]}"#)
        // Two uses of up to 2^255 each: their product wrapped to 0, read as "at most 0 USDC".
        let wrapped = try review(#"{\#(head), "permissions": [{"token": "USDC", "allow": ["transfer"], "maxUses": 2, "rules": ["amount <= 0x8000000000000000000000000000000000000000000000000000000000000000"]}]}"#)
        let unlisted = try review(#"{\#(head), "permissions": [{"target": "0x000000000000000000000000000000000000cafE", "functions": ["transfer(address to, uint256 amount)"], "spendingLimit": "100"}]}"#)
        let alsoElsewhere = try review(#"{\#(head), "permissions": [\#(fiveUSDC), {"target": "0x000000000000000000000000000000000000bEEF", "functions": ["f(uint256 x)"], "sudo": true}]}"#)
        let fallback = try review(Self.fallbackSession)
        let bot = ClientIdentity(uid: 7, gid: 7, pid: 1, executable: "/usr/bin/bot", unit: "bot.service")
        let unseen = ClientIdentity(uid: 7, gid: 7, pid: 1)
        let withinFive = "max_token_amounts = { \"\(usdc)\" = 5000000 }"
        let cases: [(String, SessionReview, ClientIdentity?, RuleDecision)] = [
            ("client_uids = [7]", pay, bot, .approve), ("client_uids = [7]", pay, nil, .deny),
            ("client_executables = [\"/usr/bin/bot\"]", pay, unseen, .deny),
            ("client_units = [\"bot.service\"]", pay, bot, .approve), ("client_units = [\"other.service\"]", pay, bot, .deny),
            ("accounts = [\"0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6\"]", pay, bot, .approve),
            ("accounts = [\"0x000000000000000000000000000000000000bEEF\"]", pay, bot, .deny),
            ("targets = [\"\(usdc)\"]", pay, bot, .approve), ("targets = [\"\(usdc)\"]", alsoElsewhere, bot, .deny),
            ("targets = [\"0x0000000000000000000000000000000000000001\"]", fallback, bot, .deny),
            ("selectors = [\"transfer(address,uint256)\"]", pay, bot, .approve), ("selectors = [\"0x00000001\"]", fallback, bot, .deny),
            ("max_duration = \"30d\"", pay, bot, .approve), ("max_duration = \"30d\"", endless, bot, .deny),
            ("require_expiry = true", pay, bot, .approve), ("require_expiry = true", endless, bot, .deny),
            ("max_native_value = \"0.2 ETH\"", native, bot, .approve), ("max_native_value = \"0.19 ETH\"", native, bot, .deny),
            ("max_native_value = \"1000 ETH\"", anyValue, bot, .deny),
            (withinFive, pay, bot, .approve), (withinFive, anyAmount, bot, .deny), (withinFive, wrapped, bot, .deny),
            (withinFive, unlisted, bot, .deny), (withinFive, alsoElsewhere, bot, .deny),
            ("allow_export = false", pay, bot, .approve), ("allow_export = false", exporting, bot, .deny),
        ]
        for (match, r, client, expected) in cases {
            let outcome = try RulesFile(toml: "default = \"deny\"\n[[rules]]\nname = \"r\"\ndecision = \"approve\"\n[rules.match]\n\(match)\n").evaluate(r, client: client)
            #expect(outcome.decision == expected, "\(match): \(outcome.trace)")
        }
        guard case .unbounded(let why)? = wrapped.exposure.tokens.first?.bound else { Issue.record("\(wrapped.exposure)"); return }
        #expect(why.contains("no amount limit within 2^256"), "\(why)")
    }

    /// `max_live_sessions` bounds what a client holds across its sessions: it holds with fewer
    /// live sessions than its count, and not where they are unknown.
    @Test func maxLiveSessionsCountsWhatTheClientHolds() throws {
        let r = try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "5"))
        let rules = try RulesFile(toml: "default = \"ask\"\n[[rules]]\nname = \"capped\"\ndecision = \"approve\"\n[rules.match]\nmax_live_sessions = 2\n")
        let bot = ClientIdentity(uid: 7, gid: 7, pid: 1)
        for (held, decision) in [(0, RuleDecision.approve), (1, .approve), (2, .ask), (9, .ask)] {
            let outcome = rules.evaluate(r, client: bot, holdings: ClientHoldings(liveSessions: held, sessionsLastDay: 0))
            #expect(outcome.decision == decision, "\(held) held: \(outcome.trace)")
            #expect(outcome.trace.first?.detail.contains("holds \(held) live session") == true, "\(outcome.trace)")
        }
        #expect(rules.evaluate(r, client: bot).decision == .ask, "unknown holdings match nothing")
    }

    /// `max_sessions_per_day` counts the sessions a client was given in the last day, whatever
    /// became of them: one that revokes its sessions to ask again runs out all the same.
    @Test func maxSessionsPerDayCountsWhatTheClientWasGiven() throws {
        let r = try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "5"))
        let rules = try RulesFile(toml: "default = \"ask\"\n[[rules]]\nname = \"daily\"\ndecision = \"approve\"\n[rules.match]\nmax_sessions_per_day = 3\n")
        #expect(rules.looksAtHoldings)
        let bot = ClientIdentity(uid: 7, gid: 7, pid: 1)
        for (made, decision) in [(0, RuleDecision.approve), (2, .approve), (3, .ask), (50, .ask)] {
            let outcome = rules.evaluate(r, client: bot, holdings: ClientHoldings(liveSessions: 0, sessionsLastDay: made))
            #expect(outcome.decision == decision, "\(made) made: \(outcome.trace)")
            #expect(outcome.trace.first?.detail.contains("was given \(made) session") == true, "\(outcome.trace)")
        }
        #expect(rules.evaluate(r, client: bot).decision == .ask, "unknown holdings match nothing")
    }

    /// `bound_to` holds when the session is bound to each binding it lists, whatever else.
    @Test func boundToHoldsForASessionBoundToEachListed() throws {
        let r = try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "5"))
        let rules = try RulesFile(toml: "default = \"deny\"\n[[rules]]\nname = \"bound\"\ndecision = \"approve\"\n[rules.match]\nbound_to = [\"process\", \"unit\"]\n")
        let bot = ClientIdentity(uid: 7, gid: 7, pid: 1)
        for (binding, decision) in [(SessionBinding([.process, .unit]), RuleDecision.approve), ([.process, .unit, .executable], .approve),
                                    ([.process], .deny), ([.unit, .executable], .deny), ([], .deny)] {
            let outcome = rules.evaluate(r, client: bot, binding: binding)
            #expect(outcome.decision == decision, "\(binding.names): \(outcome.trace)")
        }
        #expect(rules.evaluate(r, client: bot, binding: [.unit]).trace.first?.detail == "the session is bound to its unit")
        #expect(rules.evaluate(r, client: bot).trace.first?.detail == "the session is bound to its uid alone")
    }

    /// `typed_data` holds when every typed-data contents the session may sign is listed under
    /// its application's domain, named as a request names it.
    @Test func typedDataHoldsForContentsListedUnderTheirDomain() throws {
        let mail = "Mail(address to,string contents)", order = "Order(address maker,uint256 amount)"
        func session(_ contents: [String], domain: String = #"{"name": "Ether Mail", "chainId": 1}"#) throws -> SessionReview {
            let list = contents.map { "\"\($0)\"" }.joined(separator: ", ")
            return try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "5").replacingOccurrences(
                of: "\"validity\"", with: #""typedData": [{"domain": \#(domain), "contents": [\#(list)]}], "validity""#))
        }
        let rules = try RulesFile(toml: """
            default = "deny"
            [[rules]]
            name = "mail"
            decision = "approve"
            [rules.match]
            typed_data = [{ domain = { name = "Ether Mail", chainId = 1 }, contents = ["\(mail)", "\(order)"] }]
            """)
        let bot = ClientIdentity(uid: 7, gid: 7, pid: 1)
        #expect(rules.evaluate(try session([mail]), client: bot).decision == .approve)
        #expect(rules.evaluate(try session([order, mail]), client: bot).decision == .approve)
        #expect(rules.evaluate(try review(Self.payments.replacingOccurrences(of: "%AMOUNT%", with: "5")), client: bot).trace.first?.detail == "the session signs no typed data")
        let other = rules.evaluate(try session([mail + "Mail"]), client: bot)
        #expect(other.decision == .deny && other.trace.first?.detail.contains("\"Mail(address to,string contents)Mail\"") == true, "\(other.trace)")
        let elsewhere = rules.evaluate(try session([mail], domain: #"{"name": "Ether Mail", "chainId": 2}"#), client: bot)
        #expect(elsewhere.decision == .deny && elsewhere.trace.first?.detail.contains("under the domain") == true, "\(elsewhere.trace)")
    }

    @Test func malformedRulesAreRefusedWithTheirPlace() {
        for (toml, text) in [
            ("default = \"maybe\"", "default: approve, deny or ask"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nmax_gas = 5", "unknown condition"),
            ("[[rules]]\nname = \"x\"\n[rules.match]\nchains = [1]", "decision: missing"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\naccounts = [\"0x12\"]", "is not an address"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nmax_duration = \"soon\"", "a duration"),
            // A number that overflows when scaled was a crash (of the agent too, at a reload).
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nmax_duration = \"9999999999999999999w\"", "max_duration: too long"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nmax_duration = \"0s\"", "max_duration: expected a duration"),
            ("this is = not toml", "invalid TOML"),
            ("extra = 1", "extra: unknown key"),
            ("defualt = \"approve\"", "defualt: unknown key (did you mean `default`?)"),
            ("[[rules]]\ndecison = \"approve\"", "decison: unknown key (did you mean `decision`?)"),
            // Slips that would have let through what a rule was written to stop.
            ("default = \"approve\"\n[rules]\nname = \"no sudo\"\ndecision = \"deny\"\n[rules.match]\nany_flag = [\"sudo\"]", "rules: a list of tables, written [[rules]], not [rules]"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nforbid = [\"sudoo\"]", "sudoo is no flag a review raises; they are account_administration, admin_access"),
            ("[[rules]]\ndecision = \"deny\"\n[rules.match]\nany_flag = [\"no_action_restrictions\"]", "no_action_restrictions is no flag"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nclient_uids = [4294967296]", "4294967296 is no uid"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nclient_uids = [-1]", "client_uids: a list of whole numbers, none negative"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nmax_live_sessions = 0", "max_live_sessions: a number of sessions, at least 1"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nmax_live_sessions = \"5\"", "max_live_sessions: a number of sessions"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nmax_live_sessions = 1.5", "max_live_sessions: a number of sessions"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nmax_sessions_per_day = 0", "max_sessions_per_day: a number of sessions, at least 1"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nbound_to = [\"pid\"]", "bound_to: pid is no binding; they are executable, unit, process"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\nbound_to = \"process\"", "bound_to: a list of strings"),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\ntyped_data = [{ domain = { name = \"x\" }, contents = [\"mail(address to)\"] }]",
             "(rule 1).match.typed_data[0].contents[0]: SmartSession refuses the contents name \"mail\""),
            ("[[rules]]\ndecision = \"approve\"\n[rules.match]\ntyped_data = [{ domain = { nme = \"x\" }, contents = [\"Mail(address to)\"] }]",
             "(rule 1).match.typed_data[0].domain: field \"nme\" is not part of type EIP712Domain"),
        ] {
            do {
                _ = try RulesFile(toml: toml)
                Issue.record("accepted \(toml)")
            } catch {
                #expect(error.message.contains(text), "\(error.message)")
            }
        }
    }
}
