import Agent
import Approval
import ArgumentParser
import EthereumCore
import Foundation
import SmartSessions

struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with approval rules files.",
        subcommands: [RulesTest.self])
}

struct RulesTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Show what a rules file decides for a request, and why (a dry run).")

    @Argument(help: "The request file, or - for standard input.") var request: String?
    @Option(help: "The rules file (TOML).") var rules: String
    @Option(help: "The client's uid, as the agent would read it from the socket.") var uid: UInt32 = UInt32(getuid())
    @Option(help: "The client's executable (/proc/PID/exe).") var executable: String?
    @Option(help: "The client's systemd unit.") var unit: String?
    @Option(name: .customLong("bound-to"), help: "What the client would bind the session to besides its uid: executable, unit or process (once for each).")
    var boundTo: [String] = []
    @Option(name: .customLong("session-key"), help: "The session key address (default: a fresh one).") var sessionKey: String?
    @Option(name: .customLong("live-sessions"), help: "How many live sessions the client holds already (for max_live_sessions).") var liveSessions: Int = 0
    @Option(name: .customLong("sessions-last-day"), help: "How many sessions the client was given in the last 24 hours, revoked ones too (for max_sessions_per_day).") var sessionsLastDay: Int = 0
    @OptionGroup var review: ReviewOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard liveSessions >= 0 else { throw ValidationError("--live-sessions: a count, 0 or more") }
        guard sessionsLastDay >= 0 else { throw ValidationError("--sessions-last-day: a count, 0 or more") }
        if let unknown = boundTo.first(where: { SessionBinding(name: $0) == nil }) { throw ValidationError("--bound-to: \(SessionBinding.unknown(unknown))") }
    }

    func run() throws {
        try report(output) {
            let rulesBytes = try readInput(rules)
            let file: RulesFile
            do { file = try RulesFile(toml: String(decoding: rulesBytes, as: UTF8.self)) } catch { throw CommandFailure(message: "\(rules): \(error)") }
            // Named as the agent names the file it puts in force, in its audit log and journal.
            let source = RulesSource(path: rules, bytes: rulesBytes)
            let key = try sessionKey.map { try parseAddress($0, what: "--session-key") } ?? Secp256k1.PrivateKey.generate().address
            let tokens = try review.tokenList()
            let compiled = try RequestCompiler(tokens: tokens, now: review.time, sessionKeys: [key])
                .compile(try parseJSON(try readInput(request), what: "request"))
            let reviewed = Reviewer(tokens: tokens, now: review.time).review(compiled)
            let client = ClientIdentity(uid: uid, gid: 0, pid: 0, executable: executable, unit: unit)
            let binding = SessionBinding(boundTo.compactMap(SessionBinding.init(name:)))
            let outcome = file.evaluate(reviewed, client: client, holdings: ClientHoldings(liveSessions: liveSessions, sessionsLastDay: sessionsLastDay), binding: binding)
            var lines = ["decision: \(outcome.decision.rawValue)", "reason: \(outcome.reason)", "trace:"]
            for t in outcome.trace { lines.append("  [\(t.passed ? "ok" : "no")] \(t.rule): \(t.condition): \(t.detail)") }
            if outcome.rule == nil { lines.append("  default: \(file.defaultDecision.rawValue)") }
            lines.append("rules: \(source.path), sha256 \(source.sha256)")
            var o = JSONObject()
            o["decision"] = .string(outcome.decision.rawValue)
            o["rule"] = outcome.rule.map { .string($0) } ?? .null
            o["reason"] = .string(outcome.reason)
            o["rulesSHA256"] = .string(source.sha256)
            o["trace"] = .array(outcome.trace.map {
                .object(JSONObject(["rule": .string($0.rule), "condition": .string($0.condition), "passed": .bool($0.passed), "detail": .string($0.detail)]))
            })
            return CommandOutput(text: lines.joined(separator: "\n"), json: .object(o))
        }
    }
}
