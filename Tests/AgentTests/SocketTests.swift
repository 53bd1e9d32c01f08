import Agent
import EthereumCore
import Foundation
import GRDB
import OwnerSigners
import SessionStore
import SmartSessions
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The agent as users run it: `session-agent serve` in its own process, spoken to over the real
/// Unix sockets.
@Suite("End to end through the agent's sockets", .serialized)
struct SocketTests {
    static let usdc = try! Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
    static var example: JSONValue { try! JSONValue(parsing: [UInt8](try! Data(contentsOf: Oracle.packageRoot.appendingPathComponent("docs/examples/usdc-transfers.json")))) }

    static func transferOp(_ amount: UInt64, nonce: UInt64, token: Address = usdc, sender: String = AgentProcess.account) -> JSONValue {
        let call = try! ABIFunction(parsing: "transfer(address,uint256)").encodeCall([.address(try! Address("0x000000000000000000000000000000000000bEEF")), .uint(UInt256(amount))])
        var op = UserOperation(sender: try! Address(sender), nonce: UInt256(nonce))
        op.callData = ExecuteCall.single(Execution(target: token, callData: call)).calldata
        return op.json
    }

    static func sign(_ client: AgentClient, _ session: String, _ amount: UInt64, nonce: UInt64, token: Address = usdc) throws -> JSONValue {
        try client.call("session_signUserOperation", JSONObject([
            "sessionId": .string(session), "chainId": JSONValue(11155111), "entryPoint": .string(EntryPointVersion.v07.canonicalAddress.checksummed),
            "userOperation": transferOp(amount, nonce: nonce, token: token),
        ]))
    }

    /// A started agent, a client connected to it, and a session its rules approved.
    static func agentWithSession(rules: String? = nil, request: JSONValue = example) throws -> (agent: AgentProcess, client: AgentClient, session: String) {
        let agent = try AgentProcess(rules: rules)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        return (agent, client, try requestSession(client, request))
    }

    /// The owner who signed the session an ENABLE `userOp.signature` enables: the signature must
    /// be routed to OwnableValidator and have a low s, and is recovered over the session's
    /// multichain digest. Also the session key's signature, recovered over `userOpHash`.
    static func enableSigners(_ signed: JSONValue) throws -> (owner: Address, sessionKey: Address) {
        guard case .enable(_, let enable, let sessionSig) = try SessionSignature(decoding: try Hex.decode(try #require(signed["signature"]?.stringValue))) else {
            throw Oracle.Failure(description: "not an ENABLE signature: \(signed)")
        }
        let (validator, ownerSig) = try AccountKind.erc7579Reference.parseERC1271Signature(enable.permissionEnableSig)
        #expect(validator == SmartSessionAddresses.ownableValidator)
        let ownerSignature = try RecoverableSignature(bytes: ownerSig)
        #expect(ownerSignature.hasLowS)
        let userOpHash = try Bytes32(hex: try #require(signed["userOpHash"]?.stringValue))
        return (try ownerSignature.recoverAddress(digest: EnableDigest.multichainDigest(enable.hashesAndChainIds)),
                try RecoverableSignature(bytes: sessionSig).recoverAddress(digest: userOpHash))
    }

    static func requestSession(_ client: AgentClient, _ request: JSONValue = example) throws -> String {
        let result = try client.call("session_request", JSONObject(["request": request]))
        guard result["status"] == "approved", let id = result["sessionId"]?.stringValue else {
            throw Oracle.Failure(description: "not approved: \(result.serialized.prefix(300))")
        }
        return id
    }

    @Test func fullFlowAndDenialsOverTheSockets() throws {
        let agent = try AgentProcess()
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        #expect(try client.call("agent_info")["version"] == "0.1.0")
        let session = try Self.requestSession(client)
        let first = try Self.sign(client, session, 5_000_000, nonce: 0)
        #expect(first["mode"] == "ENABLE")
        #expect(try Self.sign(client, session, 1, nonce: 1)["mode"] == "USE")
        do {
            _ = try Self.sign(client, session, 200_000_000, nonce: 2)
            Issue.record("signed over the limit")
        } catch let e as AgentClient.RemoteError {
            // In the units the request was written in ("100 USDC"), not base units.
            #expect(e.reason == "policy_violation" && e.message.contains("200 USDC more would exceed the spending limit of 100 USDC"), "\(e)")
        }
        // The operator's log has the approval and the refusal.
        #expect(agent.logs.contains("approved (rules: ") && agent.logs.contains("session \(session): a user operation from uid \(getuid())"), "\(agent.logs)")
        #expect(agent.logs.contains("was refused: ") && agent.logs.contains("(5.000001 USDC spent or approved)"), "\(agent.logs)")
        // Control methods are not on the client socket, and the control socket lists everything.
        #expect(throws: AgentClient.RemoteError.self) { try client.call("pending_list") }
        var control = try AgentClient(path: agent.controlSocket)
        #expect(try control.call("sessions_list").arrayValue?.count == 1)
        let unknown = try Command.run(Command.sessionAgent, ["revoke", "sess-nope", "--socket", agent.clientSocket])
        #expect(unknown.status == 1 && unknown.stderr.contains("session sess-nope not found"), "\(unknown.stderr)")
        // Revoking twice is not an error: the second says since when.
        let permissionId = try Bytes32(hex: try #require(try client.call("session_get", JSONObject(["sessionId": .string(session)]))["permissionId"]?.stringValue))
        let revoked = try Command.run(Command.sessionAgent, ["revoke", session, "--socket", agent.clientSocket])
        let again = try Command.run(Command.sessionAgent, ["revoke", session, "--socket", agent.clientSocket])
        #expect(revoked.status == 0 && revoked.stdout.hasPrefix("revoked \(session)\nOn chain the session stays enabled until the account "), "\(revoked)")
        #expect(again.status == 0 && again.stdout.hasPrefix("\(session) was revoked already at 20"), "\(again)")
        // What it prints for the account to send removes the session on chain and voids its
        // enable signatures: SmartSession's removeSession and revokeEnableSignature (spec §5.4).
        let callData = try #require(revoked.stdout.split(separator: "\n").last.map(String.init))
        let end = try ExecuteCall(calldata: try Hex.decode(callData))
        let selectors = end.executions.map { Array($0.callData.prefix(4)) }, arguments = end.executions.map { Array($0.callData.dropFirst(4)) }
        #expect(end.mode.callType == .batch && end.executions.allSatisfy { $0.target == SmartSessionAddresses.smartSession && $0.value == 0 })
        #expect(selectors == [[0xf8, 0x67, 0xb0, 0x8e], [0xf9, 0xb8, 0x03, 0x69]] && arguments == [permissionId.bytes, permissionId.bytes], "\(callData)")
        #expect(again.stdout.hasSuffix(callData + "\n"), "the same when it was revoked already")
        #expect(try control.call("audit_verify")["intact"] == .bool(true))
        let verified = try Command.run(Command.sessionAgent, ["audit", "verify", "--socket", agent.controlSocket])
        #expect(verified.status == 0 && verified.stdout.contains("audit log intact"), "\(verified.stderr)")
        // The audit log reads back whole, from a point, and by kind; malformed paging is refused.
        let entries = try control.call("audit_show", JSONObject(["limit": JSONValue(10_000)])).arrayValue ?? []
        // Its last entry is named by `audit verify` and in the journal, to be kept apart from the store.
        let last = try #require(entries.last)
        #expect(try control.call("audit_verify")["head"] == .object(JSONObject(["seq": last["seq"]!, "hash": last["hash"]!])))
        #expect(verified.stdout.contains("the last, entry \(last["seq"]!.serialized), has hash \(last["hash"]!.stringValue!)"), "\(verified.stdout)")
        agent.stop()
        try agent.start()
        #expect(agent.logs.contains("the audit log ends at entry \(last["seq"]!.serialized), hash \(last["hash"]!.stringValue!)"), "\(agent.logs)")
        control = try AgentClient(path: agent.controlSocket)
        let seqs = entries.compactMap { $0["seq"] }
        #expect(JSONValue(entries.count) == (try control.call("audit_verify")["entries"]) && entries.count >= 3 && seqs.count == entries.count)
        #expect(try control.call("audit_show", JSONObject(["after": seqs[0], "limit": JSONValue(2)])).arrayValue?.compactMap { $0["seq"] } == Array(seqs[1...2]))
        #expect(try control.call("audit_show", JSONObject(["limit": JSONValue(1)])).arrayValue?.compactMap { $0["seq"] } == [seqs.last!])
        let kind = try #require(entries.last?["kind"])
        #expect(try control.call("audit_show", JSONObject(["kind": kind])).arrayValue?.count == entries.filter { $0["kind"] == kind }.count)
        let malformedPaging: [(String, JSONValue)] = [("limit", JSONValue(0)), ("after", JSONValue(-1)), ("limit", "5"), ("kind", JSONValue(3)), ("since", JSONValue(1))]
        for (key, value) in malformedPaging {
            #expect(throws: AgentClient.RemoteError.self, "\(key): \(value)") { try control.call("audit_show", JSONObject([key: value])) }
        }
        let shown = try Command.run(Command.sessionAgent, ["audit", "show", "--socket", agent.controlSocket, "--limit", "1"])
        #expect(shown.status == 0 && shown.stdout.hasPrefix("\(seqs.last!.serialized)  20") && shown.stdout.contains(kind.stringValue ?? "?"), "\(shown.stdout) \(shown.stderr)")
        // Someone with write access to the store rewrites history: the chain no longer holds.
        let tamper = try Command.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("UPDATE audit SET entry = replace(entry, 'ENABLE', 'USE') WHERE kind = 'signature'")
            db.commit()
            """, agent.directory.appendingPathComponent("data/store.sqlite").path])
        #expect(tamper.status == 0, "\(tamper.stderr)")
        let broken = try Command.run(Command.sessionAgent, ["audit", "verify", "--socket", agent.controlSocket])
        #expect(broken.status == 1 && broken.stderr.contains("audit log is broken"), "\(broken.stdout) \(broken.stderr)")

        // Sockets 0600 in a 0700 directory.
        var info = stat()
        stat(agent.clientSocket, &info)
        #expect(info.st_mode & 0o777 == 0o600)
        stat((agent.clientSocket as NSString).deletingLastPathComponent, &info)
        #expect(info.st_mode & 0o777 == 0o700)
    }

    /// The rules file is read again on `rules_reload` and on SIGHUP (`systemctl reload`); one
    /// that does not parse leaves the rules in force either way.
    /// `session-agent account`: the operation is shown, and signed by the owners on a yes; a no
    /// signs nothing. The signed user operation is checked by the oracle.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func theOperatorSignsTheAccountsOperationsFromTheCommandLine() throws {
        let (agent, client, session) = try Self.agentWithSession()
        defer { agent.stop() }
        _ = try client.call("session_revoke", JSONObject(["sessionId": .string(session)]))
        let control = try AgentClient(path: agent.controlSocket)
        let owner = try #require(try control.call("owners_list").arrayValue?.first?["owner"]?.stringValue)
        // The key of the nonce, for the EntryPoint's getNonce, as accounts_list gives it.
        let key = try UInt256(parsing: try #require(try control.call("accounts_list").arrayValue?.first?["ownerNonceKey"]?.stringValue))
        #expect(key == AccountKind.erc7579Reference.nonceKey(validator: SmartSessionAddresses.ownableValidator))
        let file = agent.directory.appendingPathComponent("userop.json")
        try JSONValue.object(AccountOperationTests.userOp(key: key, sequence: 0)).serialized.write(to: file, atomically: true, encoding: .utf8)
        let options = ["--account", AgentProcess.account, "--chain-id", "11155111", "--userop", file.path, "--socket", agent.controlSocket]

        let shown = try Command.run(Command.sessionAgent, ["account", "end", session, "--dry-run"] + options)
        #expect(shown.status == 0 && shown.stdout.hasPrefix("End 1 session on chain") && shown.stdout.contains(session), "\(shown)")
        // For the bundler's estimate: the callData, and a dummy signature of the owners' shape.
        let forEstimate = try JSONValue(parsing: try Command.run(Command.sessionAgent, ["account", "end", session, "--dry-run", "--json"] + options).stdout)
        #expect(forEstimate["userOperation"]?["signature"]?.stringValue == Hex.encode(OwnableValidatorConfig.mockSignature))
        #expect(forEstimate["userOperation"]?["callData"]?.stringValue?.hasPrefix("0xe9ae5c53") == true)
        let refused = try Command.run(Command.sessionAgent, ["account", "end", session] + options, stdin: Array("n\n".utf8))
        #expect(refused.status == 1 && refused.stderr.contains("End 1 session on chain") && refused.stderr.contains("not signed"), "\(refused)")
        #expect(try control.call("audit_show", JSONObject(["kind": "account_operation"])).arrayValue?.count == 0)

        let signed = try Command.run(Command.sessionAgent, ["account", "end", session, "--json"] + options, stdin: Array("y\n".utf8))
        #expect(signed.status == 0, "\(signed)")
        let result = try JSONValue(parsing: signed.stdout)
        let checked = try Oracle.ownerUserOpSigners([try #require(result["userOperation"])], chainId: 11155111, in: agent.directory)
        #expect(checked.map(\.userOpHash) == [try #require(result["userOpHash"]?.stringValue)])
        #expect(checked.map(\.signers) == [[owner]])
        #expect(try control.call("audit_show", JSONObject(["kind": "account_operation"])).arrayValue?.count == 1)
    }

    /// `account list`, `add`, `remove`: the accounts the agent manages, from the command line.
    @Test func theOperatorManagesAccountsFromTheCommandLine() throws {
        let agent = try AgentProcess()
        try agent.start()
        defer { agent.stop() }
        let socket = ["--socket", agent.controlSocket]
        let other = "0x000000000000000000000000000000000000E1E1", owner = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        let added = try Command.run(Command.sessionAgent, ["account", "add", other, "--kind", "nexus", "--owner", owner, "--chain-id", "84532"] + socket)
        #expect(added.status == 0 && added.stdout == "\(other) is managed\n", "\(added)")
        let listed = try Command.run(Command.sessionAgent, ["account", "list"] + socket)
        let key = AccountKind.nexus.nonceKey(validator: SmartSessionAddresses.ownableValidator).hexQuantity
        #expect(listed.stdout.contains("\(try Address(other).checksummed)  nexus\n  1 of 1 owner through \(SmartSessionAddresses.ownableValidator.checksummed): \(owner)\n"
                                       + "  chains: Base Sepolia (84532)\n  nonce key of its own user operations: \(key)"), "\(listed.stdout)")
        #expect(listed.stdout.contains("\(try Address(AgentProcess.account).checksummed)  erc7579\n"), "and the configuration's")
        let misspelt = try Command.run(Command.sessionAgent, ["account", "add", other, "--kind", "nexsu", "--owner", owner] + socket)
        #expect(misspelt.status == 1 && misspelt.stderr.contains("account.kind: one of erc7579, nexus, safe7579, kernel"), "\(misspelt)")
        let fixed = try Command.run(Command.sessionAgent, ["account", "remove", AgentProcess.account] + socket)
        #expect(fixed.status == 1 && fixed.stderr.contains("configuration file"), "\(fixed)")
        #expect(try Command.run(Command.sessionAgent, ["account", "remove", other] + socket).status == 0)
        #expect(!(try Command.run(Command.sessionAgent, ["account", "list", "--json"] + socket).stdout.lowercased().contains(other.lowercased())))
        // A Kernel account's version, kept across a restart.
        #expect(try Command.run(Command.sessionAgent, ["account", "add", other, "--kind", "kernel", "--owner", owner, "--kernel-version", "0.3.3"] + socket).status == 0)
        agent.stop()
        try agent.start()
        #expect(try Command.run(Command.sessionAgent, ["account", "list"] + socket).stdout.contains("\(try Address(other).checksummed)  kernel 0.3.3\n"))
    }

    @Test func rulesAreReloadedOnRequestAndOnSIGHUP() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket), control = try AgentClient(path: agent.controlSocket)
        let rules = agent.directory.appendingPathComponent("rules.toml")
        func decision() throws -> JSONValue? { try client.call("session_request", JSONObject(["request": Self.example]))["status"] }
        func hangUp(until line: String) throws {
            let seen = agent.logs.components(separatedBy: line).count
            kill(try #require(agent.process?.processIdentifier), SIGHUP)
            let deadline = Date().addingTimeInterval(15)
            while agent.logs.components(separatedBy: line).count == seen {
                guard Date() < deadline else { throw Oracle.Failure(description: "no \"\(line)\" after SIGHUP: \(agent.logs)") }
                _ = poll(nil, 0, 20)
            }
        }
        // Every load names the file's SHA-256 (as sha256sum prints it), and every decision the
        // rules make names the rules that made it, in the audit log.
        func sha256sum() throws -> String {
            let printed = try Command.run(URL(fileURLWithPath: "/usr/bin/sha256sum"), [rules.path])
            return String(printed.stdout.prefix(64))
        }
        func loads(_ control: AgentClient = control) throws -> [JSONValue] {
            try control.call("audit_show", JSONObject(["kind": "rules_load"])).arrayValue?.compactMap { $0["entry"] } ?? []
        }
        func lastDecision() throws -> JSONValue? {
            try control.call("audit_show", JSONObject(["kind": "decision", "limit": JSONValue(1)])).arrayValue?.first?["entry"]
        }
        let first = try sha256sum()
        #expect(try loads() == [.object(JSONObject(["cause": "start", "path": .string(rules.path), "sha256": .string(first)]))])
        #expect(try control.call("agent_info")["rules"] == .object(JSONObject(["path": .string(rules.path), "sha256": .string(first)])))
        #expect(try client.call("agent_info")["rules"] == nil, "the client socket's")
        #expect(try decision() == "approved")
        #expect(try lastDecision()?["rulesSHA256"] == .string(first))
        try "default = \"deny\"\n".write(to: rules, atomically: true, encoding: .utf8)
        try hangUp(until: "the approval rules were reloaded (SIGHUP): \(rules.path), sha256 \(try sha256sum())")
        #expect(try decision() == "denied")
        #expect(try lastDecision()?["rulesSHA256"] == .string(try sha256sum()) && lastDecision()?["status"] == "denied")
        #expect(try loads().map { $0["cause"] } == ["start", "SIGHUP"] && loads().last?["sha256"] == .string(try sha256sum()))

        try "default = \n".write(to: rules, atomically: true, encoding: .utf8)
        do {
            _ = try control.call("rules_reload")
            Issue.record("a rules file that does not parse was taken")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "bad_rules", "\(e)") }
        try hangUp(until: "the rules in force are kept")
        #expect(try decision() == "denied")
        // Saved mid-edit, a header begun: the TOML library the agent used before stopped the
        // whole process on this one.
        try "default = \"approve\"\n[\n".write(to: rules, atomically: true, encoding: .utf8)
        try hangUp(until: "the rules in force are kept")
        #expect(try decision() == "denied")

        try "default = \"approve\"\n".write(to: rules, atomically: true, encoding: .utf8)
        #expect(try control.call("rules_reload")["reloaded"] == .bool(true))
        #expect(try decision() == "approved")
        // The files that did not parse were never in force; the last one is, named as such.
        #expect(try loads().map { $0["cause"] } == ["start", "SIGHUP", "rules_reload"] && loads().last?["sha256"] == .string(try sha256sum()))
        #expect(try lastDecision()?["rulesSHA256"] == .string(try sha256sum()) && lastDecision()?["status"] == "approved")
        // The same file again, reloaded or at a restart, changes nothing: nothing more is written.
        #expect(try control.call("rules_reload")["reloaded"] == .bool(true))
        agent.stop()
        try agent.start()
        #expect(try loads(AgentClient(path: agent.controlSocket)).count == 3)
        // Started without a rules file, the log says the rules went.
        agent.stop()
        let config = agent.directory.appendingPathComponent("session-agent.toml")
        try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "rules = \"rules.toml\"\n", with: "").write(to: config, atomically: true, encoding: .utf8)
        try agent.start()
        let withoutRules = try AgentClient(path: agent.controlSocket)
        #expect(try loads(withoutRules).last == .object(JSONObject(["cause": "start", "path": .null, "sha256": .null])) && loads(withoutRules).count == 4)
        #expect(try withoutRules.call("agent_info")["rules"] == nil)
    }

    /// A second agent on the same data directory is refused at start: two on one store would
    /// each keep the sessions' ledgers in memory and together sign past their limits. So is one
    /// on another store but the same sockets, which would cut the first one's clients off. The
    /// first serves on. (`timeout` ends a second agent that wrongly starts.)
    @Test func aSecondAgentIsRefusedAndTheFirstServesOn() throws {
        let agent = try AgentProcess()
        try agent.start()
        let config = agent.directory.appendingPathComponent("session-agent.toml")
        func serve(_ config: URL) throws -> CommandResult {
            try Command.run(URL(fileURLWithPath: "/usr/bin/timeout"), ["20", Command.sessionAgent.path, "serve", "--config", config.path])
        }
        let sameStore = try serve(config)
        #expect(sameStore.status == 1 && sameStore.stderr.contains("another session-agent (pid \(agent.process!.processIdentifier)) serves"), "\(sameStore.stderr)")
        let otherStore = agent.directory.appendingPathComponent("other-store.toml")
        try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "data_dir = \"data\"", with: "data_dir = \"data-2\"")
            .write(to: otherStore, atomically: true, encoding: .utf8)
        let sameSockets = try serve(otherStore)
        #expect(sameSockets.status == 1 && sameSockets.stderr.contains("an agent already listens at \(agent.clientSocket)"), "\(sameSockets.stderr)")
        // Once (in 80 runs under load since, never again) the first agent's socket refused the
        // connection here: its journal says whether it had stopped, and why.
        do { #expect(try AgentClient(path: agent.clientSocket).call("agent_info")["version"] == "0.1.0") } catch {
            Issue.record("\(error); the first agent \(agent.process?.isRunning == true ? "runs" : "has stopped"); its journal:\n\(agent.logs)")
        }
    }

    /// What the agent cannot use is named in plain words at start, with its file: a data_dir it
    /// cannot make, a socket_dir too long for a Unix socket's path (not as Foundation's or
    /// SwiftNIO's error value), a token list or rules file that does not parse, a pinentry
    /// program that is not there (which would otherwise show only at the first approval).
    @Test func whatTheAgentCannotUseIsNamedPlainlyAtStart() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agent-dirs-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let long = directory.appendingPathComponent(String(repeating: "s", count: 110)).path
        try "[{\"chainId\": 1,".write(to: directory.appendingPathComponent("tokens.json"), atomically: true, encoding: .utf8)
        try "default = \"approve\"\n[[rule]]\n".write(to: directory.appendingPathComponent("rules.toml"), atomically: true, encoding: .utf8)
        let cases = [
            ("data_dir = \"/proc/no-such\"", "cannot make data_dir /proc/no-such: No such file or directory"),
            ("socket_dir = \"\(long)\"", "\(long)/client.sock is \(long.utf8.count + 12) bytes, longer than a Unix socket's path may be (107)"),
            ("tokens = \"tokens.json\"", "the token list \(directory.path)/tokens.json: invalid JSON"),
            ("rules = \"rules.toml\"", "\(directory.path)/rules.toml: rule: unknown key (did you mean `rules`?)"),
            ("pinetnry = \"/usr/bin/pinentry\"", "pinetnry: unknown key (did you mean `pinentry`?)"),
            ("pinentry = \"/no-such/pinentry\"", "pinentry: /no-such/pinentry is not an executable file"),
        ]
        func start(_ lines: [String]) throws -> CommandResult {
            let file = directory.appendingPathComponent("session-agent.toml")
            try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
            return try Command.run(URL(fileURLWithPath: "/usr/bin/timeout"), ["20", Command.sessionAgent.path, "serve", "--config", file.path])
        }
        for (line, expected) in cases {
            let run = try start(["data_dir = \"data\"", "socket_dir = \"run\""].filter { !$0.hasPrefix(line.prefix(8)) } + [line])
            #expect(run.status == 1 && run.stderr.contains(expected), "\(run.stderr)")
        }
        // A data directory others may write to, or a store others may read, is refused as ssh
        // refuses such a key file, naming the fix.
        let shared = directory.appendingPathComponent("shared")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        chmod(shared.path, 0o777)
        let open = try start(["data_dir = \"shared\"", "socket_dir = \"run\""])
        #expect(open.status == 1 && open.stderr.contains("data_dir \(shared.path) is open to other users (mode 777); chmod 700 it"), "\(open.stderr)")
        chmod(shared.path, 0o700)
        _ = FileManager.default.createFile(atPath: shared.appendingPathComponent("store.sqlite").path, contents: nil, attributes: [.posixPermissions: 0o644])
        let readable = try start(["data_dir = \"shared\"", "socket_dir = \"run\""])
        #expect(readable.status == 1 && readable.stderr.contains("the store file \(shared.path)/store.sqlite is open to other users (mode 644); chmod 600 it"), "\(readable.stderr)")
    }

    /// The configuration's token list: a request names its token by symbol and its limit in
    /// the token's units, and a refusal names the amounts in them too.
    @Test func theConfiguredTokenListNamesTokensAndAmounts() throws {
        let token = try Address("0x00000000000000000000000000000000000070c4")
        let agent = try AgentProcess(rules: "default = \"approve\"", extraConfig: "tokens = \"tokens.json\"")
        try #"{"name": "ours", "tokens": [{"chainId": 11155111, "address": "\#(token.checksummed)", "symbol": "TOC", "decimals": 4, "logoURI": "x"}]}"#
            .write(to: agent.directory.appendingPathComponent("tokens.json"), atomically: true, encoding: .utf8)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        let request = try JSONValue(parsing: #"""
            {"account": "\#(AgentProcess.account)", "chains": [11155111], "validity": {"duration": "1d"},
             "permissions": [{"token": "TOC", "allow": ["transfer"], "spendingLimit": "2.5 TOC"}]}
            """#)
        let session = try Self.requestSession(client, request)
        #expect(try Self.sign(client, session, 25_000, nonce: 0, token: token)["mode"] == "ENABLE")
        do {
            _ = try Self.sign(client, session, 1, nonce: 1, token: token)
            Issue.record("signed past the limit")
        } catch let e as AgentClient.RemoteError {
            #expect(e.reason == "policy_violation" && e.message.contains("0.0001 TOC more would exceed the spending limit of 2.5 TOC"), "\(e)")
        }
    }

    @Test func badInputGetsAnErrorAndOthersAreUnaffected() throws {
        let agent = try AgentProcess(extraConfig: "partial_message_timeout = \"1s\"")
        try agent.start()
        let bystander = try AgentClient(path: agent.clientSocket)

        let malformed = try AgentClient(path: agent.clientSocket)
        try malformed.sendRaw(Array("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \n".utf8))
        #expect(try malformed.readLine()?["error"]?["code"] == JSONValue(-32700))
        try malformed.sendRaw(Array("[1,2]\n".utf8))
        #expect(try malformed.readLine()?["error"]?["data"]?["reason"] == "bad_request")
        #expect(try malformed.call("agent_info")["version"] == "0.1.0")   // the connection still works
        #expect(throws: AgentClient.RemoteError.self) { try malformed.call("no_such_method") }
        #expect(throws: AgentClient.RemoteError.self) { try malformed.call("session_request", JSONObject(["request": "nonsense"])) }
        // A misspelt or mistyped option is refused, not dropped: dropped, either would give a
        // session bound more loosely than asked. Nothing is requested.
        let control = try AgentClient(path: agent.controlSocket)
        let audited = try control.call("audit_verify")["entries"]
        for (key, value, expected) in [("bindExecutible", JSONValue.bool(true), "params.bindExecutible: not a parameter of session_request, which takes bindExecutable, bindProcess, bindUnit, request (did you mean `bindExecutable`?)"),
                                       ("bindExecutable", .string("yes"), "params.bindExecutable: true or false")] {
            do {
                _ = try malformed.call("session_request", JSONObject(["request": Self.example, key: value]))
                Issue.record("\(key) = \(value) was taken")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == "bad_request" && e.message.contains(expected), "\(e)") }
        }
        #expect(try malformed.call("session_list").arrayValue?.isEmpty == true)
        #expect(try control.call("audit_verify")["entries"] == audited && control.call("pending_list").arrayValue?.isEmpty == true)

        let oversized = try AgentClient(path: agent.clientSocket)
        try? oversized.sendRaw([UInt8](repeating: UInt8(ascii: "a"), count: JSONRPC.maximumMessageSize + 10))
        #expect(try oversized.readLine()?["error"]?["message"]?.stringValue?.contains("larger than") == true)
        #expect(try oversized.readLine() == nil, "and the connection is closed")

        let staller = try AgentClient(path: agent.clientSocket)
        try staller.sendRaw(Array("{\"jsonrpc\": \"2.0\", \"id\": 1, \"meth".utf8))
        #expect(try bystander.call("agent_info")["version"] == "0.1.0", "others are served while one stalls")
        #expect(try staller.readLine()?["error"]?["message"]?.stringValue?.contains("incomplete message") == true)

        // 200 clients at once, each answered.
        let answered = LockedBox<Int>()
        let socketPath = agent.clientSocket
        DispatchQueue.concurrentPerform(iterations: 200) { _ in
            if let c = try? AgentClient(path: socketPath), (try? c.call("agent_info"))?["version"] == "0.1.0", (try? c.call("session_list"))?.arrayValue != nil {
                _ = answered.increment()
            }
        }
        #expect(answered.value == 200)
        #expect(try bystander.call("agent_info")["version"] == "0.1.0")
    }

    /// One call on its own connection, made as `uid` (and `gid`); the answer line, or Python's error.
    static func asUID(_ uid: UInt32, gid: UInt32? = nil, _ socket: String, _ method: String, _ params: String = "{}") throws -> String {
        let script = """
            import json,socket,sys
            s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
            # A refused peer may find the socket closed before it writes; the reason was
            # sent first and is still there to read.
            try: s.sendall((json.dumps({"jsonrpc":"2.0","id":1,"method":sys.argv[2],"params":json.loads(sys.argv[3])})+"\\n").encode())
            except BrokenPipeError: pass
            print(s.makefile().readline().strip())
            """
        let r = try Command.run(URL(fileURLWithPath: "/usr/bin/setpriv"), ["--reuid=\(uid)", "--regid=\(gid ?? uid)", "--clear-groups", "/usr/bin/python3", "-c", script, socket, method, params])
        return r.stdout + r.stderr
    }

    /// A client that opens connections without end is stopped at its uid's share; the operator,
    /// other uids, and that uid once it closes one, are still served.
    @Test func aUIDOpeningConnectionsWithoutEndIsStoppedAtItsShare() throws {
        let share = 8
        let agent = try AgentProcess(extraConfig: "connections_per_uid = \(share)", allowUIDs: [65534])
        try agent.start()
        var held: [AgentClient] = []
        for _ in 0..<share {
            let client = try AgentClient(path: agent.clientSocket)
            _ = try client.call("agent_info")   // answered, so counted
            held.append(client)
        }
        func oneMore() throws -> Result<JSONValue, AgentClient.RemoteError> {
            do { return .success(try AgentClient(path: agent.clientSocket).call("agent_info")) } catch let e as AgentClient.RemoteError { return .failure(e) }
        }
        // Each refusal is read, also when the agent closed the connection before the request
        // was sent (it says why first).
        for _ in 0..<50 {
            guard case .failure(let refused) = try oneMore() else { Issue.record("a connection beyond the share was served"); return }
            #expect(refused.reason == "too_many_connections" && refused.message.contains("\(share) connections open to this socket already (connections_per_uid)"), "\(refused)")
        }
        #expect(try held[0].call("agent_info")["version"] == "0.1.0", "the connections it holds still work")
        #expect(try AgentClient(path: agent.controlSocket).call("pending_list").arrayValue?.isEmpty == true, "the control socket is counted apart")
        if getuid() == 0 {
            #expect(try Self.asUID(65534, agent.clientSocket, "agent_info").contains("\"version\""), "another uid has a share of its own")
        }
        // Closing one gives its place back, once the agent has seen it close.
        held.removeLast()
        let deadline = Date().addingTimeInterval(10)
        var served = false
        while !served, Date() < deadline {
            if case .success = try oneMore() { served = true }
        }
        #expect(served)
    }

    /// The agent keeps the soft descriptor limit it is started with (PKCS#11 modules in its
    /// process may use select()). Out of descriptors, connections wait in the backlog and the
    /// journal says why; they are served once connections close, and the agent goes on.
    @Test func anAgentOutOfDescriptorsSaysSoAndServesWhenSomeClose() throws {
        let agent = try AgentProcess(extraConfig: "connections_per_uid = 500")
        agent.limits = ["--nofile=40:64"]
        try agent.start()
        let limits = try String(contentsOfFile: "/proc/\(agent.process!.processIdentifier)/limits", encoding: .utf8)
        let open = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }.map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(open.map { Array($0.suffix(3)) } == ["40", "64", "files"], "\(String(describing: open))")

        var held = [try AgentClient(path: agent.clientSocket)]
        _ = try held[0].call("agent_info")
        for _ in 0..<100 { held.append(try AgentClient(path: agent.clientSocket)) }
        try agent.waitForLog("connections wait unanswered: accepting one failed")
        #expect(try held[0].call("agent_info")["version"] == "0.1.0", "a connection it accepted still works")
        held.removeAll()
        #expect(try AgentClient(path: agent.clientSocket).call("agent_info")["version"] == "0.1.0")
        #expect(agent.logs.components(separatedBy: "connections wait unanswered").count == 2, "said once, not at every retry")
    }

    @Test(.enabled(if: getuid() == 0, "needs root to run clients as other uids"))
    func otherUidsAreRefusedOrSeeOnlyTheirOwn() throws {
        let agent = try AgentProcess(extraConfig: "allow_gids = [4242]", allowUIDs: [65534])
        try agent.start()
        let root = try AgentClient(path: agent.clientSocket)
        let session = try Self.requestSession(root)
        // An admitted uid is served but sees none of root's sessions, and cannot use them.
        #expect(try Self.asUID(65534, agent.clientSocket, "session_list").contains("\"result\":[]"))
        let stolen = try Self.asUID(65534, agent.clientSocket, "session_signUserOperation", #"{"sessionId": "\#(session)", "chainId": 11155111, "entryPoint": "0x0000000071727De22E5E9d8BAf0edAc6f37da032", "userOperation": \#(Self.transferOp(1, nonce: 0).serialized)}"#)
        #expect(stolen.contains("not_found"), "\(stolen)")
        // Any other uid is refused by its peer credentials, unless its group is admitted.
        #expect(try Self.asUID(65533, agent.clientSocket, "agent_info").contains("forbidden"))
        #expect(try Self.asUID(65533, gid: 4242, agent.clientSocket, "agent_info").contains("\"version\""))
        // Nobody else reaches the control socket at all.
        #expect(try Self.asUID(65534, agent.controlSocket, "pending_list").contains("PermissionError"))
        // Nor by its peer credentials, were the socket's mode loosened: admitted uids are admitted
        // to the client socket only.
        #expect(chmod(agent.controlSocket, 0o666) == 0)
        let loosened = try Self.asUID(65534, agent.controlSocket, "pending_list")
        #expect(loosened.contains("forbidden") && loosened.contains("may not use this control socket"), "\(loosened)")
    }

    /// A socket directory that exists already is used only when it is the agent's own, and is
    /// then closed to others (0700; 0711 when other uids are admitted to the client socket).
    @Test(.enabled(if: getuid() == 0, "needs root to give a directory to another uid"))
    func aSocketDirectoryOfAnotherUIDIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sockets-\(UUID().uuidString.prefix(8))").path
        #expect(mkdir(path, 0o777) == 0 && chmod(path, 0o777) == 0)
        defer { rmdir(path) }
        var info = stat()
        try SocketServer.prepareDirectory(path, shared: true)
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o711)
        try SocketServer.prepareDirectory(path)
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(chown(path, 65534, 65534) == 0 && chmod(path, 0o777) == 0)
        #expect { try SocketServer.prepareDirectory(path) } throws: { ($0 as? AgentError)?.reason == "insecure_directory" && "\($0)".contains("belongs to uid 65534") }
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o777, "left as it was")
    }

    /// In a session systemd-logind did not open (su, sudo, cron) the default socket directory
    /// has no runtime directory to go in: the agent says so, and what to set, not only
    /// "Permission denied".
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") && !FileManager.default.fileExists(atPath: "/run/user/65534"),
                   "needs root and setpriv to start an agent as uid 65534, and no /run/user/65534"))
    func anAgentWithoutARuntimeDirectorySaysWhatToSet() throws {
        let (directory, asNobody) = try Self.programForNobody()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("session-agent.toml").path
        try "data_dir = \"data\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_RUNTIME_DIR"] = nil
        environment["HOME"] = directory.path
        let started = try asNobody(["serve", "--config", config], environment)
        #expect(started.status == 1 && started.stderr.contains("cannot make socket_dir /run/user/65534/session-agent: Permission denied: XDG_RUNTIME_DIR is not set and /run/user/65534 does not exist")
                && started.stderr.contains("set socket_dir in the configuration, or XDG_RUNTIME_DIR"), "\(started)")
        // A runtime directory it may not write to is only that.
        let closed = FileManager.default.temporaryDirectory.appendingPathComponent("closed-\(UUID().uuidString.prefix(8))").path
        #expect(mkdir(closed, 0o755) == 0)
        defer { rmdir(closed) }
        environment["XDG_RUNTIME_DIR"] = closed
        let refused = try asNobody(["serve", "--config", config], environment)
        #expect(refused.status == 1 && refused.stderr.contains("cannot make socket_dir \(closed)/session-agent: Permission denied")
                && !refused.stderr.contains("XDG_RUNTIME_DIR is not set"), "\(refused)")
    }

    /// A passphrase or PIN file root keeps and lets the program's group read (root:session-agent
    /// 0640, as files in /etc are kept) is read by a program that is not root; one another user
    /// owns is refused.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root and setpriv to run a program as uid 65534"))
    func aSecretFileRootKeepsIsReadByAnotherUser() throws {
        let (directory, asNobody) = try Self.programForNobody()
        defer { try? FileManager.default.removeItem(at: directory) }
        let passphrase = directory.appendingPathComponent("owner.pass").path
        try writeSecretFile("correct horse", passphrase)
        #expect(chown(passphrase, 0, 65534) == 0 && chmod(passphrase, 0o640) == 0)
        let keystore = directory.appendingPathComponent("owner.json").path
        let made = try asNobody(["owner", "create", "--keystore", keystore, "--passphrase-file", passphrase], ProcessInfo.processInfo.environment)
        #expect(made.status == 0 && made.stdout.hasPrefix("0x"), "\(made)")
        #expect(chown(passphrase, 1, 65534) == 0)
        let refused = try asNobody(["owner", "create", "--keystore", keystore + "-2", "--passphrase-file", passphrase], ProcessInfo.processInfo.environment)
        #expect(refused.status == 1 && refused.stderr.contains("the passphrase file \(passphrase) belongs to uid 1, neither this user nor root"), "\(refused)")
    }

    /// A directory of uid 65534's own, with a copy of the program there (the build directory
    /// may be closed to that uid), and a way to run the copy as that uid.
    static func programForNobody() throws -> (URL, (_ arguments: [String], _ environment: [String: String]) throws -> CommandResult) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nobody-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        let program = directory.appendingPathComponent("session-agent").path
        try FileManager.default.copyItem(atPath: Command.sessionAgent.path, toPath: program)
        guard chown(directory.path, 65534, 65534) == 0, chmod(directory.path, 0o700) == 0 else { throw Oracle.Failure(description: "cannot give \(directory.path) to uid 65534") }
        return (directory, { arguments, environment in
            try Command.run(URL(fileURLWithPath: "/usr/bin/setpriv"), ["--reuid=65534", "--regid=65534", "--clear-groups", program] + arguments, environment: environment)
        })
    }

    /// Exporting SESSION_AGENT_SOCK alone, as one exports SSH_AUTH_SOCK, finds the control
    /// socket beside it.
    @Test func theControlSocketIsFoundBesideTheClientSocket() throws {
        let agent = try AgentProcess()
        try agent.start()
        var environment = ProcessInfo.processInfo.environment
        environment["SESSION_AGENT_CONTROL_SOCK"] = nil
        environment["SESSION_AGENT_SOCK"] = agent.clientSocket
        let listed = try Command.run(Command.sessionAgent, ["owner", "list", "--json"], environment: environment)
        #expect(listed.status == 0 && (try? JSONValue(parsing: listed.stdout))?.arrayValue?.count == 1, "\(listed.stdout) \(listed.stderr)")
    }

    /// A control socket another uid serves is not the agent's (only the agent's own uid may use
    /// that socket), and `owner add`, `approve` and the like send PINs and passphrases down it:
    /// the CLI refuses it before sending anything.
    @Test(.enabled(if: getuid() == 0, "needs root to serve a socket as another uid"))
    func aControlSocketAnotherUIDServesIsSentNothing() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("impostor-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = directory.appendingPathComponent("control.sock").path, received = directory.appendingPathComponent("received").path
        // Binds as root, listens as uid 65534 (SO_PEERCRED reports the listener's credentials),
        // and writes down how many bytes the one connection sent.
        let impostor = Process()
        impostor.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        impostor.arguments = ["-c", """
            import os, socket, sys
            out = open(sys.argv[2], "w")
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
            os.setgid(65534); os.setuid(65534); s.listen(); s.settimeout(20)
            c, _ = s.accept(); c.settimeout(20)
            n = 0
            while chunk := c.recv(4096): n += len(chunk)
            out.write(str(n)); out.close()
            """, socket, received]
        try impostor.run()
        defer { if impostor.isRunning { impostor.terminate() } }
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket) || (procFile("/proc/\(impostor.processIdentifier)/status") ?? "").contains("Uid:\t0") {
            guard Date() < deadline else { throw Oracle.Failure(description: "the impostor did not listen") }
            _ = poll(nil, 0, 20)
        }
        let pinFile = directory.appendingPathComponent("pin").path
        try writeSecretFile("a-pin-for-nobody", pinFile)
        let added = try Command.run(Command.sessionAgent, ["owner", "add", "pkcs11:token=t;object=k", "--pin-file", pinFile, "--socket", socket])
        #expect(added.status == 1 && added.stderr.contains("served by uid 65534") && added.stderr.contains("nothing was sent"), "\(added.stderr)")
        impostor.waitUntilExit()
        #expect(try String(contentsOfFile: received, encoding: .utf8) == "0")
    }

    /// The agent is killed in the middle of a signing loop; after a restart the ledger is never
    /// behind the signatures the client received, and the store opens cleanly.
    @Test func crashMidLoopNeverLosesLedgerState() throws {
        let agent = try AgentProcess(rules: """
            default = "approve"
            """)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        var request = Self.example.objectValue!
        var permission = request["permissions"]!.arrayValue![0].objectValue!
        permission["maxUses"] = JSONValue(100_000)
        permission["spendingLimit"] = "1000000 USDC"
        request["permissions"] = .array([.object(permission)])
        let result = try client.call("session_request", JSONObject(["request": .object(request)]))
        let session = try #require(result["sessionId"]?.stringValue, "\(result)")

        let received = LockedBox<Int>()
        let loopClient = UncheckedBox(client)
        let loop = Thread {
            var nonce: UInt64 = 0
            while (try? Self.sign(loopClient.value, session, 1, nonce: nonce)) != nil {
                _ = received.increment()
                nonce += 1
            }
        }
        loop.start()
        while (received.value ?? 0) < 30 { usleep(2000) }
        agent.stop(signal: SIGKILL)
        while !loop.isFinished { usleep(1000) }

        let store = try SessionStore(path: agent.directory.appendingPathComponent("data/store.sqlite").path)
        let ledger = try store.sessionToSign(id: session).ledgers[11155111] ?? PolicyLedger()
        let used = ledger.counters.filter { $0.key.counter == "used" }.map(\.value).max() ?? 0
        #expect(used >= UInt256(UInt64(received.value ?? 0)), "ledger \(used) behind \(received.value ?? 0) signatures")
        #expect(try store.verifyAudit().get() >= received.value ?? 0)

        try agent.start()
        let again = try AgentClient(path: agent.clientSocket)
        #expect(try Self.sign(again, session, 1, nonce: 10_000)["mode"] == "USE")
    }

    /// Requests sent in one go, some answered on the event loop (signing), some by the actor,
    /// some malformed, come back one answer each, in order.
    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let (agent, client, session) = try Self.agentWithSession()
        defer { withExtendedLifetime(agent) {} }   // it stops once released
        var lines: [String] = []
        for i in 0..<60 {
            switch i % 3 {
            case 0:
                lines.append(JSONValue.object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(i), "method": "session_signUserOperation", "params": .object(JSONObject([
                    "sessionId": .string(session), "chainId": JSONValue(11155111), "entryPoint": .string(EntryPointVersion.v07.canonicalAddress.checksummed),
                    "userOperation": Self.transferOp(1, nonce: UInt64(i)),
                ]))])).serialized)
            case 1: lines.append(JSONValue.object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(i), "method": "agent_info"])).serialized)
            default: lines.append("{\"jsonrpc\":\"2.0\",\"id\":\(i),\"method\":")   // cut short: a parse error without an id
            }
        }
        try client.sendRaw(Array((lines.joined(separator: "\n") + "\n").utf8))
        for i in 0..<60 {
            let answer = try #require(try client.readLine())
            switch i % 3 {
            case 0:
                // The example session allows 10 uses: the first 10 are signed, the rest refused.
                #expect(answer["id"] == JSONValue(i))
                if i / 3 < 10 { #expect(answer["result"]?["signature"] != nil, "\(answer.serialized.prefix(200))") }
                else { #expect(answer["error"]?["data"]?["reason"] == "policy_violation", "\(answer.serialized.prefix(200))") }
            case 1: #expect(answer["id"] == JSONValue(i) && answer["result"]?["version"] != nil)
            default: #expect(answer["id"] == .null && answer["error"]?["code"] == JSONValue(-32700))
            }
        }
    }

    /// A client that sends without reading its answers is stopped at the socket: while its
    /// answers wait to be read the agent answers no more, so it reads no more, and the client's
    /// sends block. The agent used to answer on and keep every answer: a client sending
    /// `session_list` for 20 s without reading grew it by 630 MB.
    @Test func aClientThatDoesNotReadIsNotAnsweredWithoutEnd() throws {
        let agent = try AgentProcess()
        try agent.start()
        let bystander = try AgentClient(path: agent.clientSocket), flooder = try AgentClient(path: agent.clientSocket)
        let request = Array((JSONValue.object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(1), "method": "agent_info"])).serialized + "\n").utf8)
        let limit = 100_000
        let sent = try Self.sendUntilHeldBack(flooder, repeating: request, atMost: limit)
        // What the sockets buffer and a little more; before, all 100,000 of them (4.7 MB).
        #expect(sent * request.count < 2 * Self.sendBuffer(flooder) + (1 << 20), "the agent took \(sent) requests while none of its answers was read")
        #expect(try bystander.call("agent_info")["version"] == "0.1.0", "others are served meanwhile")
        var answered = 0
        for _ in 0..<sent where try flooder.readLine()?["result"]?["version"] == "0.1.0" { answered += 1 }
        #expect(answered == sent, "once the client reads, each request it sent is answered")
    }

    /// Requests that wait their turn behind a slow one (a `session_wait`, here) hold at most
    /// about 1 MiB in the agent: it reads no more until they are taken. Before, it read 16 of
    /// any size, and one uid's 64 connections held 1.1 GB.
    @Test func requestsWaitingTheirTurnHoldLittleMemory() throws {
        let agent = try AgentProcess(rules: "default = \"ask\"")
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket), control = try AgentClient(path: agent.controlSocket)
        let pending = try #require(try client.call("session_request", JSONObject(["request": Self.example]))["id"])
        try client.sendRaw(Array((JSONValue.object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(1), "method": "session_wait",
                                                               "params": .object(JSONObject(["id": pending]))])).serialized + "\n").utf8))
        let large = Array((JSONValue.object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(2), "method": "agent_info",
                                                        "params": .object(JSONObject(["note": .string(String(repeating: "x", count: 500_000))]))])).serialized + "\n").utf8)
        let sent = try Self.sendUntilHeldBack(client, repeating: large, atMost: 40)
        // 1 MiB waiting, a line beyond it, a line half read, and what the socket buffers; before,
        // 16 lines and more (8.5 MB).
        #expect(sent * large.count < Self.sendBuffer(client) + (3 << 20), "the agent took \(sent) requests of 500 kB behind a slow one")
        _ = try control.call("pending_decide", JSONObject(["id": pending, "approve": false]))
        #expect(try client.readLine()?["result"]?["status"] == "denied")
        var answered = 0
        for _ in 0..<sent where try client.readLine()?["error"]?["data"]?["reason"] == "bad_request" { answered += 1 }
        #expect(answered == sent, "each is answered once the slow one is")
    }

    /// How much the kernel buffers of what `client` sends (SO_SNDBUF), which depends on the machine.
    static func sendBuffer(_ client: AgentClient) -> Int {
        var size: Int32 = 0, length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(client.fd, SOL_SOCKET, SO_SNDBUF, &size, &length)
        return Int(size)
    }

    /// Sends `message` again and again without reading, until the agent reads no more for 3 s
    /// (its answers, or the requests waiting their turn, fill what it holds for the connection)
    /// or `limit` messages are sent. The number of messages sent; the last one, if cut short, is
    /// completed on a thread of its own, as the agent takes it only once the caller reads.
    static func sendUntilHeldBack(_ client: AgentClient, repeating message: [UInt8], atMost limit: Int) throws -> Int {
        let batch = Array([[UInt8]](repeating: message, count: max(1, 65536 / message.count)).joined())
        _ = fcntl(client.fd, F_SETFL, fcntl(client.fd, F_GETFL) | O_NONBLOCK)
        var sent = 0   // bytes
        while sent < limit * message.count {
            let n = batch[(sent % batch.count)...].prefix(limit * message.count - sent).withUnsafeBytes { send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            guard errno == EAGAIN else { throw Oracle.Failure(description: "send: \(String(cString: strerror(errno)))") }
            var writable = pollfd(fd: client.fd, events: Int16(POLLOUT), revents: 0)
            if poll(&writable, 1, 3000) == 0 { break }
        }
        _ = fcntl(client.fd, F_SETFL, fcntl(client.fd, F_GETFL) & ~O_NONBLOCK)
        if sent % message.count > 0 {
            let (fd, rest) = (client.fd, Array(message[(sent % message.count)...]))
            Thread.detachNewThread {
                var offset = 0
                while offset < rest.count {
                    let n = rest[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    guard n > 0 else { return }
                    offset += n
                }
            }
        }
        return (sent + message.count - 1) / message.count
    }

    /// A client that closes its side once it has sent its requests, as `socat` and `nc -N` do,
    /// is answered, then the connection ends; its last message needs no newline. Such a client
    /// used to get nothing. Blank lines (CRLF ends, a person typing) get no answer.
    @Test func aClientThatClosesItsSideIsStillAnswered() throws {
        let (agent, client, session) = try Self.agentWithSession()
        defer { withExtendedLifetime(agent) {} }   // it stops once released
        let sign = JSONValue.object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(2), "method": "session_signUserOperation", "params": .object(JSONObject([
            "sessionId": .string(session), "chainId": JSONValue(11155111), "entryPoint": .string(EntryPointVersion.v07.canonicalAddress.checksummed),
            "userOperation": Self.transferOp(1, nonce: 0),
        ]))])).serialized
        try client.sendRaw(Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"session_list\"}\r\n\r\n\(sign)\n \t\n\r\n{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"agent_info\"}".utf8))
        shutdown(client.fd, Int32(SHUT_WR))
        #expect(try client.readLine()?["result"]?.arrayValue?.count == 1)
        #expect(try client.readLine()?["result"]?["signature"] != nil)
        #expect(try client.readLine()?["result"]?["version"] == "0.1.0")
        #expect(try client.readLine() == nil)
    }

    /// A client that goes away while its `session_wait` waits no longer holds its connection
    /// (only a client that closes just its sending side is answered): a client restarted while
    /// it waits is not locked out by its own earlier connections.
    @Test func aClientThatGoesAwayWhileItWaitsFreesItsConnection() throws {
        let agent = try AgentProcess(rules: "default = \"ask\"", extraConfig: "connections_per_uid = 2")
        try agent.start()
        let pending = try #require(try AgentClient(path: agent.clientSocket).call("session_request", JSONObject(["request": Self.example]))["id"])
        let wait = JSONValue.object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(1), "method": "session_wait",
                                                "params": .object(JSONObject(["id": pending, "timeout": JSONValue(3600)]))])).serialized + "\n"
        for _ in 0..<4 {
            let gone = try AgentClient(path: agent.clientSocket)
            try gone.sendRaw(Array(wait.utf8))
        }
        // The agent sees each close a moment after it happens.
        let deadline = Date().addingTimeInterval(10)
        var answer: Result<JSONValue, any Error>
        repeat { answer = Result { try AgentClient(path: agent.clientSocket).call("agent_info") } } while (try? answer.get()) == nil && Date() < deadline
        #expect(try answer.get()["version"] == "0.1.0")
    }

    /// A message whose rest arrived while the requests before it waited their turn (for a
    /// person's decision, here) is not cut off as incomplete: the rest sat unread in the socket.
    @Test func aMessageWaitingItsTurnIsNotCutOffAsIncomplete() throws {
        let agent = try AgentProcess(rules: "default = \"ask\"", extraConfig: "partial_message_timeout = \"1s\"")
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket), control = try AgentClient(path: agent.controlSocket)
        let pending = try #require(try client.call("session_request", JSONObject(["request": Self.example]))["id"])
        let wait = JSONValue.object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(1), "method": "session_wait",
                                                "params": .object(JSONObject(["id": pending, "timeout": JSONValue(60)]))])).serialized + "\n"
        let last = Array("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"agent_info\"}\n".utf8)
        // More waits than the agent takes in at once (16), then the start of one more message;
        // its rest comes while the waits wait, and stays unread past partial_message_timeout.
        try client.sendRaw(Array(String(repeating: wait, count: 20).utf8) + last[..<20])
        Thread.sleep(forTimeInterval: 0.3)
        try client.sendRaw(Array(last[20...]))
        Thread.sleep(forTimeInterval: 2)
        _ = try control.call("pending_decide", JSONObject(["id": pending, "approve": false]))
        for _ in 0..<20 {
            let answer = try #require(try client.readLine())
            #expect(answer["result"]?["status"] == "denied", "\(answer.serialized.prefix(200))")
        }
        let answer = try #require(try client.readLine())
        #expect(answer["result"]?["version"] == "0.1.0", "\(answer.serialized.prefix(200))")
    }

    /// Signatures that change no state leave before their audit entries reach the disk; a clean
    /// stop (SIGTERM, or Ctrl-C's SIGINT) writes those entries first, says so, and removes the
    /// socket files, as ssh-agent does.
    @Test func aCleanStopKeepsTheAuditEntryOfEverySignature() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        let request: JSONValue = .object(JSONObject([
            "account": .string(AgentProcess.account), "chains": .array([JSONValue(11155111)]),
            "permissions": .array([.object(JSONObject(["target": .string(Self.usdc.checksummed), "functions": .array(["transfer(address to, uint256 amount)"]),
                                                       "validity": .object(JSONObject(["duration": "1d"]))]))]),
        ]))
        let result = try client.call("session_request", JSONObject(["request": request]))
        let session = try #require(result["sessionId"]?.stringValue, "\(result.serialized.prefix(300))")
        #expect(try Self.sign(client, session, 1, nonce: 0)["mode"] == "ENABLE")
        for nonce in 1...40 { #expect(try Self.sign(client, session, 1, nonce: UInt64(nonce))["mode"] == "USE") }
        agent.stop(signal: SIGTERM)
        #expect(try Self.signatureEntries(agent) == "41")
        let sockets = [agent.clientSocket, agent.controlSocket]
        #expect(agent.logs.contains("stopping on SIGTERM") && !sockets.contains(where: FileManager.default.fileExists), "\(agent.logs)")
        try agent.start()
        #expect(try AgentClient(path: agent.controlSocket).call("audit_verify")["intact"] == .bool(true))
        agent.stop(signal: SIGINT)
        #expect(agent.logs.contains("stopping on SIGINT") && !sockets.contains(where: FileManager.default.fileExists), "\(agent.logs)")
    }

    /// `store backup` copies the store beside the running agent; the copy, put in place of the
    /// store, is the store as it was then: its sessions sign, its audit log verifies and ends
    /// where the backup said, without what was signed after.
    @Test func aBackupTakenWhileTheAgentRunsRestores() throws {
        let (agent, client, session) = try Self.agentWithSession(rules: "default = \"approve\"")
        for nonce in UInt64(0)..<3 { #expect(try Self.sign(client, session, 1, nonce: nonce)["signature"] != nil) }
        let store = agent.directory.appendingPathComponent("data/store.sqlite").path
        let backup = agent.directory.appendingPathComponent("backup.sqlite").path
        let taken = try Command.run(Command.sessionAgent, ["store", "backup", "--store", store, "--to", backup, "--json"])
        #expect(taken.status == 0, "\(taken.stderr)")
        let report = try JSONValue(parsing: taken.stdout)
        let entries = try #require(report["auditEntries"].flatMap { if case .number(let n) = $0 { Int(n) } else { nil } }, "\(taken.stdout)")
        #expect(entries >= 5 && report["auditHead"]?["seq"] == JSONValue(entries), "\(taken.stdout)")
        #expect((try FileManager.default.attributesOfItem(atPath: backup)[.posixPermissions] as? Int) == 0o600)
        let again = try Command.run(Command.sessionAgent, ["store", "backup", "--store", store, "--to", backup])
        #expect(again.status == 1 && again.stderr.contains("\(backup) exists; not overwriting it"), "\(again.stderr)")
        #expect(try Self.sign(client, session, 1, nonce: 3)["signature"] != nil)
        agent.stop()

        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: store + suffix) }
        try FileManager.default.moveItem(atPath: backup, toPath: store)
        try agent.start()
        let control = try AgentClient(path: agent.controlSocket)
        #expect(try control.call("audit_verify")["entries"] == JSONValue(entries))
        #expect(try Self.sign(try AgentClient(path: agent.clientSocket), session, 1, nonce: 4)["signature"] != nil)
    }

    /// A store file removed while the agent runs (or a backup moved over it) would take what
    /// the agent writes from then on with it, once it stops: the agent saves what it holds
    /// beside it and stops, saying so. Before, it signed on into a file nobody could open again,
    /// and the next agent started on a store without those sessions and ledger entries.
    @Test func anAgentWhoseStoreFileWasRemovedSavesItAndStops() throws {
        let (agent, client, session) = try Self.agentWithSession()
        let first = try #require(agent.process)
        let store = agent.directory.appendingPathComponent("data/store.sqlite").path
        try FileManager.default.removeItem(atPath: store)
        for nonce in UInt64(0)..<3 { #expect(try Self.sign(client, session, 1, nonce: nonce)["signature"] != nil) }
        try agent.waitForLog("the store file \(store) was removed or replaced while the agent ran", seconds: 20)
        first.waitUntilExit()
        #expect(first.terminationStatus == 1)
        let rescued = try #require(try FileManager.default.contentsOfDirectory(atPath: agent.directory.appendingPathComponent("data").path)
            .first { $0.hasPrefix("store.sqlite.rescued-") }, "\(agent.logs)")
        #expect(agent.logs.contains("what it held is saved in \(store).rescued-"))

        // The saved store is the one the agent signed with: put in place, it goes on from there.
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: store + suffix) }
        try FileManager.default.moveItem(atPath: agent.directory.appendingPathComponent("data/" + rescued).path, toPath: store)
        #expect(try Self.signatureEntries(agent) == "3")
        try agent.start()
        #expect(try AgentClient(path: agent.controlSocket).call("audit_verify")["intact"] == .bool(true))
        #expect(try Self.sign(try AgentClient(path: agent.clientSocket), session, 1, nonce: 3)["mode"] == "USE")
    }

    /// How many signature entries the stopped agent's audit log holds, read by SQLite itself.
    static func signatureEntries(_ agent: AgentProcess) throws -> String {
        let count = try Command.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", """
            import sqlite3, sys
            print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM audit WHERE kind = 'signature'").fetchone()[0])
            """, agent.directory.appendingPathComponent("data/store.sqlite").path])
        return count.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + count.stderr
    }

    /// An agent whose socket file was removed (or replaced) stops within seconds, saying why,
    /// its audit entries written, rather than hold its data directory while no client can
    /// reach it: a new agent can then start in its place. Before, it ran on, and the new one
    /// was refused.
    @Test func anAgentWhoseSocketWasRemovedStopsForANewOne() throws {
        let (agent, client, session) = try Self.agentWithSession()
        let first = try #require(agent.process)
        for nonce in UInt64(0)..<3 { #expect(try Self.sign(client, session, 1, nonce: nonce)["signature"] != nil) }
        try FileManager.default.removeItem(atPath: agent.clientSocket)
        try agent.waitForLog("the socket \(agent.clientSocket) was removed or replaced", seconds: 20)
        first.waitUntilExit()
        #expect(first.terminationStatus == 1)
        #expect(try Self.signatureEntries(agent) == "3")
        try agent.start()
        #expect(try AgentClient(path: agent.clientSocket).call("session_list").arrayValue?.count == 1)
    }

    /// A client's executable is named in the approver's review and in the journal; a file name
    /// may hold a line break or a terminal's escape sequence, which are written out there, so that
    /// it cannot start a line of its own or repaint the approver's terminal.
    @Test func aClientsFileNameCannotForgeLinesOrEscapes() throws {
        let agent = try AgentProcess(rules: "default = \"ask\"")
        try agent.start()
        let named = agent.directory.appendingPathComponent("client\n2026-01-01 request approved\u{1B}[2J")
        // A hard link where the build directory and the temporary directory share a file system.
        do { try FileManager.default.linkItem(at: Command.sessionAgent, to: named) } catch { try FileManager.default.copyItem(at: Command.sessionAgent, to: named) }
        let asked = try Command.run(named, ["rpc", "session_request", JSONValue.object(JSONObject(["request": Self.example])).serialized, "--socket", agent.clientSocket])
        #expect(asked.status == 0 && asked.stdout.contains("pending"), "\(asked)")
        let pending = try #require(try AgentClient(path: agent.controlSocket).call("pending_list").arrayValue?.first)
        let client = try #require(pending["client"]?.stringValue)
        #expect(client.hasSuffix("client\\u{a}2026-01-01 request approved\\u{1b}[2J"), "\(client)")
        try agent.waitForLog("client\\u{a}2026-01-01 request approved\\u{1b}[2J")
        #expect(!agent.logs.contains("\u{1B}[2J") && !agent.logs.contains("\n2026-01-01 request approved"), "\(agent.logs)")
    }

    /// A package upgrade replaces the file of a running client: it no longer runs the program
    /// at its path (the kernel names it "… (deleted)"), and a session bound to that path is
    /// refused to it, saying why and what to do, as a program run over the path would be. The
    /// approver and the journal see why it is not known by its path.
    @Test func aClientWhoseProgramWasReplacedIsToldToRestart() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        try agent.start()
        let program = agent.directory.appendingPathComponent("bot")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: "/usr/bin/python3").resolvingSymlinksInPath(), to: program)
        let script = """
            import json, os, socket, sys
            def call(method, params):
                s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
                f.write((json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}) + "\\n").encode()); f.flush()
                return json.loads(f.readline())
            session = call("session_request", {"request": json.loads(sys.argv[2]), "bindExecutable": True})["result"]["sessionId"]
            before = call("session_get", {"sessionId": session})
            os.unlink(os.readlink("/proc/self/exe"))
            print(json.dumps({"before": before, "after": call("session_get", {"sessionId": session}), "info": call("agent_info", {})}))
            """
        let ran = try Command.run(program, ["-c", script, agent.clientSocket, Self.example.serialized])
        let out = try JSONValue(parsing: ran.stdout)
        #expect(out["before"]?["result"]?["sessionId"] != nil, "\(ran.stdout) \(ran.stderr)")
        let refused = out["after"]?["error"]
        #expect(refused?["data"]?["reason"] == "forbidden" && refused?["message"]?.stringValue?.contains(
            "is bound to \(program.path), and this process is not proved to run the file there: replaced on disk since it started; restart it") == true, "\(ran.stdout)")
        #expect(out["info"]?["result"]?["client"]?.stringValue?.hasSuffix("\(program.path) (replaced on disk since it started)") == true, "\(ran.stdout)")
    }

    /// A client connects, hands its connection to a child and exits; its pid goes to a program a
    /// session is bound to (set here through ns_last_pid; pids wrap at 32768 on many machines).
    /// The connection is still the first client's: what `/proc/PID` says of the new process is
    /// not taken as its. The agent is stopped meanwhile, so that it looks only afterwards.
    @Test(.enabled(if: getuid() == 0 && access("/proc/sys/kernel/ns_last_pid", W_OK) == 0, "needs root to choose the next pid"))
    func aPidTakenOverByABoundProgramDoesNotPassTheConnectionOff() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        try agent.start()
        let bot = agent.directory.appendingPathComponent("bot")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: "/usr/bin/python3").resolvingSymlinksInPath(), to: bot)
        let script = agent.directory.appendingPathComponent("reuse.py")
        try """
            import json, os, signal, socket, subprocess, sys
            def call(s, method, params):
                f = s.makefile("rwb")
                f.write((json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}) + "\\n").encode()); f.flush()
                return json.loads(f.readline())
            def connect():
                s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[2]); return s
            if sys.argv[1] == "ask":
                print(call(connect(), "session_request", {"request": json.loads(sys.argv[3]), "bindExecutable": True})["result"]["sessionId"])
                sys.exit(0)
            if sys.argv[1] == "wait":
                signal.pause()
            agent, bot, session = int(sys.argv[3]), sys.argv[4], sys.argv[5]
            for attempt in range(20):
                os.kill(agent, signal.SIGSTOP)
                go_r, go_w = os.pipe(); out_r, out_w = os.pipe()
                first = os.fork()
                if first == 0:
                    s = connect()
                    if os.fork() == 0:
                        os.read(go_r, 1)
                        os.write(out_w, json.dumps(call(s, "session_get", {"sessionId": session})).encode())
                    os._exit(0)
                os.waitpid(first, 0)
                with open("/proc/sys/kernel/ns_last_pid", "w") as f: f.write(str(first - 1))
                bound = subprocess.Popen([bot, sys.argv[0], "wait"])
                os.kill(agent, signal.SIGCONT)
                os.write(go_w, b"x")
                answer = os.read(out_r, 1 << 20).decode()
                bound.kill(); bound.wait()
                if bound.pid == first:
                    print(json.dumps({"pid": first, "answer": json.loads(answer)})); sys.exit(0)
            print(json.dumps({"pid": None}))
            """.write(to: script, atomically: true, encoding: .utf8)
        let asked = try Command.run(bot, [script.path, "ask", agent.clientSocket, Self.example.serialized])
        let session = asked.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(session.hasPrefix("sess-"), "\(asked)")
        let agentPID = try #require(agent.process?.processIdentifier)
        let ran = try Command.run(URL(fileURLWithPath: "/usr/bin/python3"), [script.path, "attack", agent.clientSocket, "\(agentPID)", bot.path, session])
        let out = try JSONValue(parsing: ran.stdout)
        try #require(out["pid"] != .null, "the bound program never got the pid: \(ran)")
        #expect(out["answer"]?["error"]?["data"]?["reason"] == "not_found", "\(ran.stdout)")
        // The bound program itself is still served.
        #expect(try Command.run(bot, [script.path, "ask", agent.clientSocket, Self.example.serialized]).stdout.hasPrefix("sess-"))
    }

    /// A label stored before labels were checked is shown with its control characters written out.
    @Test func aStoredLabelIsShownAsText() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        try agent.start()
        let session = try Self.requestSession(try AgentClient(path: agent.clientSocket))
        let relabel = try Command.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("UPDATE sessions SET request = json_set(request, '$.label', ?) WHERE id = ?", ("bot\\x1b[2J\\nforged", sys.argv[2]))
            db.commit()
            """, agent.directory.appendingPathComponent("data/store.sqlite").path, session])
        #expect(relabel.status == 0, "\(relabel.stderr)")
        let listed = try Command.run(Command.sessionAgent, ["sessions", "--socket", agent.clientSocket])
        #expect(listed.status == 0 && listed.stdout.contains("bot\\u{1b}[2J\\u{a}forged") && !listed.stdout.contains("\u{1B}"), "\(listed)")
    }

    /// `sessions show`: what is used and left of each limit, in the units of the request; the
    /// list says until when each session lives.
    @Test func aClientIsShownWhatIsLeftOfItsSession() throws {
        let (agent, client, session) = try Self.agentWithSession()
        let before = try Command.run(Command.sessionAgent, ["sessions", "show", session, "--socket", agent.clientSocket])
        #expect(before.stdout.contains("on Sepolia (11155111), not enabled yet (its first user operation enables it, or `account enable`): used and left\n"), "\(before.stdout)")
        _ = try Self.sign(client, session, 5_000_000, nonce: 0)
        _ = try Self.sign(client, session, 1, nonce: 1)
        let shown = try Command.run(Command.sessionAgent, ["sessions", "show", session, "--socket", agent.clientSocket])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("on Sepolia (11155111), enabled (by a signature the agent gave): used and left\n"), "\(shown.stdout)")
        #expect(shown.stdout.contains("\(Self.usdc.checksummed) (USDC token).transfer [0xa9059cbb]: USDC spent or approved 5.000001 USDC of 100 USDC, 94.999999 USDC left"), "\(shown.stdout)")
        #expect(shown.stdout.contains(": uses 2 of 10, 8 left (UsageLimitPolicy)"), "\(shown.stdout)")
        let json = try JSONValue(parsing: Array(try Command.run(Command.sessionAgent, ["sessions", "show", session, "--socket", agent.clientSocket, "--json"]).stdout.utf8))
        let token = json["limits"]?.arrayValue?.first { $0["measure"] == "token" }
        #expect(token?["used"] == "5000001" && token?["remaining"] == "94999999" && token?["token"] == .string(Self.usdc.checksummed), "\(json.serialized)")
        #expect(json["enabledChains"] == .array(["11155111"]))
        let listed = try Command.run(Command.sessionAgent, ["sessions", "--socket", agent.clientSocket])
        #expect(listed.stdout.hasPrefix(session) && listed.stdout.contains("  until 20"), "\(listed.stdout)")
        let unknown = try Command.run(Command.sessionAgent, ["sessions", "show", "sess-nope", "--socket", agent.clientSocket])
        #expect(unknown.status == 1 && unknown.stderr.contains("session sess-nope not found"), "\(unknown.stderr)")
        // The operator's view, on the control socket, is the same.
        let asOperator = try Command.run(Command.sessionAgent, ["sessions", "show", session, "--control", "--socket", agent.controlSocket])
        #expect(asOperator.status == 0 && asOperator.stdout == shown.stdout, "\(asOperator)")
        let all = try Command.run(Command.sessionAgent, ["sessions", "--control", "--socket", agent.controlSocket])
        #expect(all.status == 0 && all.stdout == listed.stdout, "\(all)")
        let revoked = try Command.run(Command.sessionAgent, ["revoke", session, "--control", "--socket", agent.controlSocket])
        #expect(revoked.status == 0 && revoked.stdout.hasPrefix("revoked \(session)\n"), "\(revoked)")
    }

    /// A store that cannot grow (a full disk; here a file-size limit) fails each write that needs
    /// room with an error, and nothing more: the audit log the agent vouches for stays whole, the
    /// agent goes on answering, and the operator is told.
    @Test func aStoreThatCannotGrowFailsItsWritesNotTheAgent() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        try agent.start()
        _ = try Self.requestSession(try AgentClient(path: agent.clientSocket))
        agent.stop()
        // A little room above what the store holds now (its write-ahead log is its largest file).
        let wal = agent.directory.appendingPathComponent("data/store.sqlite-wal").path
        let size = try #require(try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int)
        agent.limits = ["--fsize=\(size + 40_000)"]
        try agent.start()
        var refusal: AgentClient.RemoteError?
        for _ in 0..<200 {
            do { _ = try Self.requestSession(try AgentClient(path: agent.clientSocket)) } catch let e as AgentClient.RemoteError {
                refusal = e
                break
            }
        }
        let full = try #require(refusal, "the store never reached the limit of \(size + 40_000) bytes")
        #expect(full.message.contains("database or disk is full") || full.message.contains("disk I/O error"), "\(full)")
        // The writes after it are refused alike (each one's audit entry with it).
        for _ in 0..<3 { #expect(throws: AgentClient.RemoteError.self) { try Self.requestSession(try AgentClient(path: agent.clientSocket)) } }
        // The operator hears of it in the journal, once rather than at each refusal.
        try agent.waitForLog("the session-key store could not be read or written")
        #expect(agent.logs.components(separatedBy: "the session-key store could not be read or written (database error: ").count == 2, "\(agent.logs)")
        let control = try AgentClient(path: agent.controlSocket)
        let verified = try control.call("audit_verify")
        #expect(verified["intact"] == .bool(true), "\(verified.serialized)")
        #expect(try control.call("agent_info")["store"]?["locked"] == .bool(false))
        // The signal the kernel sends for a write past the limit (SIGXFSZ) would otherwise end it.
        kill(try #require(agent.process?.processIdentifier), SIGXFSZ)
        #expect(try AgentClient(path: agent.controlSocket).call("agent_info")["store"]?["locked"] == .bool(false))

        // What the log holds still tells the whole story: every session stored was approved by a
        // decision in it, and every decision is of a request in it. A request the log could not
        // take was refused before its owner was asked.
        agent.stop()
        agent.limits = []
        try agent.start()
        let restarted = try AgentClient(path: agent.controlSocket)
        let entries: [JSONValue] = try #require(try restarted.call("audit_show", JSONObject(["limit": JSONValue(10000)])).arrayValue)
        func requests(_ kind: String, _ status: String? = nil) -> Set<String> {
            var ids = Set<String>()
            for e in entries where e["kind"]?.stringValue == kind && (status == nil || e["entry"]?["status"]?.stringValue == status) {
                if let id = e["entry"]?["request"]?.stringValue { ids.insert(id) }
            }
            return ids
        }
        let log = entries.map { $0.serialized }.joined(separator: "\n")
        #expect(requests("decision").isSubset(of: requests("request")), "\(log)")
        let sessions: [JSONValue] = try #require(try restarted.call("sessions_list").arrayValue)
        #expect(sessions.count == requests("decision", "approved").count, "\(sessions.count) sessions, \(log)")
    }

    /// `session-agent approve` at a terminal: a mistyped owner passphrase does not end the
    /// request. It stays pending, the operator is asked whether to try again, and the passphrase
    /// typed next approves it.
    @Test func theApproverMayTypeTheOwnerPassphraseAgain() throws {
        let agent = try AgentProcess(rules: "default = \"ask\"", ownerPassphraseAsked: true)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        let id = try #require(try client.call("session_request", JSONObject(["request": Self.example]))["id"]?.stringValue)
        // An answer that is neither yes nor no is asked again, not taken for a no.
        let typed = "maybe\ny\nnot the passphrase\nyes please\ny\n\(agent.ownerPassphrase)\n"
        let approve = try Command.run(Command.sessionAgent, ["approve", "--once", "--socket", agent.controlSocket], stdin: Array(typed.utf8))
        #expect(approve.status == 0, "\(approve.stderr)")
        #expect(approve.stderr.components(separatedBy: "Please answer y or n.").count == 3, "\(approve.stderr)")
        #expect(approve.stderr.contains("Passphrase for 0x"), "the agent's words for what it needs: \(approve.stderr)")
        #expect(approve.stdout.contains("wrong passphrase") && approve.stdout.contains("still pending"), "\(approve.stdout)")
        #expect(approve.stdout.contains("\(id): approved"), "\(approve.stdout)")
        #expect(try client.call("session_wait", JSONObject(["id": .string(id), "timeout": JSONValue(5)]))["status"] == "approved")

        // Said no to trying again: the request is left pending, for a later `approve`.
        let second = try #require(try client.call("session_request", JSONObject(["request": Self.example]))["id"]?.stringValue)
        let givenUp = try Command.run(Command.sessionAgent, ["approve", "--once", "--socket", agent.controlSocket], stdin: Array("y\ntypo\nn\n".utf8))
        #expect(givenUp.status == 0 && givenUp.stdout.contains("\(second): left pending"), "\(givenUp.stdout)")
        #expect(try client.call("session_wait", JSONObject(["id": .string(second), "timeout": JSONValue(0)]))["status"] == "pending")
        // No terminal, or a script with fewer answers than requests: the end of the input decides
        // nothing, and `approve` stops rather than wait for more it could not answer.
        for once in [["--once"], []] {
            let unanswered = try Command.run(URL(fileURLWithPath: "/usr/bin/timeout"), ["20", Command.sessionAgent.path, "approve", "--socket", agent.controlSocket] + once, stdin: [])
            #expect(unanswered.status == 1 && unanswered.stderr.contains("no answer (end of input): \(second) left pending"), "\(unanswered.stderr)")
            #expect(try client.call("session_wait", JSONObject(["id": .string(second), "timeout": JSONValue(0)]))["status"] == "pending")
        }
        // Secrets by owner must name owners by address; anything else is refused and changes nothing.
        let control = try AgentClient(path: agent.controlSocket)
        for bad: JSONValue in ["x", .object(JSONObject(["not an address": "p"])), .object(JSONObject([AgentProcess.account: JSONValue(1)]))] {
            do {
                _ = try control.call("pending_decide", JSONObject(["id": .string(second), "approve": true, "secrets": bad]))
                Issue.record("accepted secrets \(bad.serialized)")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == "bad_request" && e.message.contains("params.secrets"), "\(e)") }
        }
        #expect(try client.call("session_wait", JSONObject(["id": .string(second), "timeout": JSONValue(0)]))["status"] == "pending")
    }

    /// `session-agent approve` at a terminal shows a review longer than the terminal through the
    /// pager, as git does, and asks once it is closed; a pager that cannot run leaves the review
    /// printed as it is, never unseen.
    @Test func aReviewLongerThanTheTerminalIsPaged() throws {
        let agent = try AgentProcess(rules: "default = \"ask\"")
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        let paged = agent.directory.appendingPathComponent("paged").path
        for pager in ["cat > '\(paged)'", "no-such-pager"] {
            let id = try #require(try client.call("session_request", JSONObject(["request": Self.example]))["id"]?.stringValue)
            let terminal = try PinentryTests.Terminal()
            var size = winsize(ws_row: 20, ws_col: 160, ws_xpixel: 0, ws_ypixel: 0)
            _ = ioctl(terminal.master, UInt(TIOCSWINSZ), &size)
            let tty = try #require(FileHandle(forUpdatingAtPath: terminal.slavePath))
            let approve = Process()
            approve.executableURL = Command.sessionAgent
            approve.arguments = ["approve", "--once", "--socket", agent.controlSocket]
            approve.environment = ProcessInfo.processInfo.environment.merging(["PAGER": pager]) { _, given in given }
            (approve.standardInput, approve.standardOutput, approve.standardError) = (tty, tty, tty)
            try approve.run()
            try terminal.waitFor("Approve? [y/N]")
            if pager == "no-such-pager" {
                #expect(terminal.screen.contains("Request \(id)") && terminal.screen.contains("Digests"), "\(terminal.screen.suffix(500))")
            } else {
                let shown = try String(contentsOfFile: paged, encoding: .utf8)
                #expect(shown.contains("Request \(id)") && shown.contains("Allowed calls") && shown.contains("Digests"), "\(shown)")
                #expect(!terminal.screen.contains("Allowed calls"), "paged, not printed as well")
            }
            terminal.press("n\r")
            approve.waitUntilExit()
            #expect(approve.terminationStatus == 0)
            #expect(try client.call("session_wait", JSONObject(["id": .string(id), "timeout": JSONValue(5)]))["status"] == "denied")
        }
    }

    /// Ctrl-C, or a kill, at a passphrase prompt leaves the terminal as it was: echo back on,
    /// where the command used to die with it off and the shell took the next commands blind.
    @Test(arguments: [SIGINT, SIGTERM])
    func aSignalAtASecretsPromptTurnsEchoBackOn(_ signal: Int32) throws {
        let terminal = try PinentryTests.Terminal()
        let tty = try #require(FileHandle(forUpdatingAtPath: terminal.slavePath))
        let keystore = FileManager.default.temporaryDirectory.appendingPathComponent("owner-\(UUID()).json").path
        let create = Process()
        create.executableURL = Command.sessionAgent
        create.arguments = ["owner", "create", "--keystore", keystore]
        (create.standardInput, create.standardOutput, create.standardError) = (tty, tty, tty)
        try create.run()
        try terminal.waitFor("passphrase: ")
        var modes = termios()
        #expect(tcgetattr(terminal.master, &modes) == 0 && modes.c_lflag & tcflag_t(ECHO) == 0, "echo off while the passphrase is typed")
        kill(create.processIdentifier, signal)
        create.waitUntilExit()
        #expect(create.terminationReason == .uncaughtSignal && create.terminationStatus == signal, "ended by the signal, as before")
        #expect(tcgetattr(terminal.master, &modes) == 0 && modes.c_lflag & tcflag_t(ECHO) != 0, "echo back on")
        #expect(!FileManager.default.fileExists(atPath: keystore))
    }

    /// `owner create` without a passphrase file asks for the passphrase twice: two that differ,
    /// or input that ends after one, write no keystore; the same one twice writes a keystore that
    /// it, and only it, opens.
    @Test func aNewOwnersPassphraseIsTypedTwice() throws {
        let keystore = FileManager.default.temporaryDirectory.appendingPathComponent("owner-\(UUID()).json").path
        defer { try? FileManager.default.removeItem(atPath: keystore) }
        let differ = try Command.run(Command.sessionAgent, ["owner", "create", "--keystore", keystore], stdin: Array("first one\nsecond one\n".utf8))
        #expect(differ.status == 1 && differ.stderr.contains("the passphrases differ"), "\(differ)")
        #expect(!FileManager.default.fileExists(atPath: keystore))
        let once = try Command.run(Command.sessionAgent, ["owner", "create", "--keystore", keystore], stdin: Array("only once\n".utf8))
        #expect(once.status == 1 && once.stderr == "New owner passphrase: \nAgain: \nsession-agent: error: standard input ended before the passphrase was typed twice; give it with --passphrase-file\n",
                "\(once)")
        #expect(!FileManager.default.fileExists(atPath: keystore))
        let created = try Command.run(Command.sessionAgent, ["owner", "create", "--keystore", keystore, "--json"], stdin: Array("the same one\nthe same one\n".utf8))
        #expect(created.status == 0, "\(created)")
        let file = try Keystore(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: keystore))))
        #expect(try file.decrypt(passphrase: secret("the same one")).address.checksummed == JSONValue(parsing: created.stdout)["address"]?.stringValue)
        #expect(throws: KeystoreError.self) { try file.decrypt(passphrase: secret("first one")) }
    }

    /// `audit export` pages through a log longer than one `audit_show` answer (10,000 entries):
    /// each entry once, in order, and what it wrote verifies from the first entry.
    @Test func anAuditLogLongerThanOnePageIsExportedWhole() throws {
        let agent = try AgentProcess()
        try agent.start()
        agent.stop()
        do {
            let store = try SessionStore(path: agent.directory.appendingPathComponent("data/store.sqlite").path)
            for i in 0..<10_050 { try store.audit("test", .object(JSONObject(["i": JSONValue(i)])), at: 1_764_096_000 + UInt64(i)) }
        }
        try agent.start()
        let exported = try Command.run(Command.sessionAgent, ["audit", "export", "--socket", agent.controlSocket])
        let lines = exported.stdout.split(separator: "\n").map(String.init)
        let seqs = try lines.map { try JSONValue(parsing: Array($0.utf8))["seq"]?.serialized ?? "" }
        let last = try #require(try AgentClient(path: agent.controlSocket).call("audit_show", JSONObject(["limit": JSONValue(1)])).arrayValue?.first?["seq"]?.serialized)
        #expect(exported.status == 0 && lines.count >= 10_050 && seqs == (1...lines.count).map(String.init) && seqs.last == last, "\(lines.count) lines, the last \(seqs.last ?? "none") of \(last): \(exported.stderr)")
        let archive = agent.directory.appendingPathComponent("archive.jsonl")
        try exported.stdout.write(to: archive, atomically: true, encoding: .utf8)
        let verified = try Command.run(Command.sessionAgent, ["audit", "verify", "--file", archive.path])
        #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")
    }

    /// `audit prune` removes the oldest entries; the log left verifies from where it now starts,
    /// and signing goes on. A prune that says neither how far nor how old is refused, and removes
    /// nothing. `audit verify --holds` checks an entry kept elsewhere, pruned or not.
    @Test func theAuditLogIsPrunedAndStillVerifies() throws {
        let (agent, client, session) = try Self.agentWithSession(rules: "default = \"approve\"")
        let control = try AgentClient(path: agent.controlSocket)
        for nonce in 0..<5 { _ = try Self.sign(client, session, 1, nonce: UInt64(nonce)) }
        func audit(_ arguments: [String]) throws -> CommandResult {
            try Command.run(Command.sessionAgent, ["audit"] + arguments + ["--socket", agent.controlSocket])
        }
        let written = try #require(try control.call("audit_show", JSONObject(["limit": JSONValue(100)])).arrayValue)
        #expect(written.count >= 7)

        for bad in [JSONObject(), JSONObject(["through": JSONValue(3), "before": JSONValue(5)]), JSONObject(["through": JSONValue(0)]), JSONObject(["through": "3"])] {
            do {
                _ = try control.call("audit_prune", bad)
                Issue.record("pruned with \(bad)")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == "bad_request", "\(e)") }
        }
        #expect(try control.call("audit_show", JSONObject(["limit": JSONValue(100)])).arrayValue == written)
        func entry(_ i: Int) -> String { "\(written[i]["seq"]!.serialized):\(written[i]["hash"]!.stringValue!)" }
        func holds(_ held: String) throws -> CommandResult { try audit(["verify", "--holds", held]) }
        #expect(try holds(entry(4)).stdout.contains("entry 5 still has hash \(written[4]["hash"]!.stringValue!)"))
        let rewritten = try holds("5:" + Bytes32.zero.hex)
        #expect(rewritten.status == 1 && rewritten.stderr.contains("entry 5 has hash \(written[4]["hash"]!.stringValue!), not \(Bytes32.zero.hex): the log was written again"), "\(rewritten.stderr)")
        let cut = try holds("1000:" + Bytes32.zero.hex)
        #expect(cut.status == 1 && cut.stderr.contains("the log does not hold entry 1000"), "\(cut.stderr)")
        #expect(try holds("5:0x12").status != 0, "not a hash")

        let pruned = try audit(["prune", "--through", "3", "--json"])
        let expected = JSONValue.object(JSONObject(["removed": JSONValue(3), "through": JSONValue(3), "hash": try #require(written[2]["hash"])]))
        #expect(pruned.status == 0 && (try? JSONValue(parsing: pruned.stdout)) == expected, "\(pruned.stdout) \(pruned.stderr)")
        #expect(try Self.sign(client, session, 1, nonce: 5)["signature"] != nil)
        let verified = try audit(["verify"])
        // Every entry but the three removed, with the prune's, the rules in force named again (the
        // first entry, which went, named them) and the signature's since.
        #expect(verified.status == 0 && verified.stdout.contains("intact: \(written.count - 3 + 3) entries, after entry 3 (pruned"), "\(verified.stdout) \(verified.stderr)")
        #expect(written[0]["kind"] == "rules_load")
        let named = try control.call("audit_show", JSONObject(["kind": "rules_load"])).arrayValue
        #expect(named?.count == 1 && named?[0]["entry"]?["cause"] == "audit_prune" && named?[0]["entry"]?["sha256"] == written[0]["entry"]?["sha256"], "\(String(describing: named))")
        #expect(try audit(["prune", "--older-than", "1w"]).stdout.contains("nothing to remove"))
        #expect(try holds(entry(2)).status == 0 && holds(entry(4)).status == 0, "where the log starts, and an entry after it")
        let gone = try holds(entry(1))
        #expect(gone.status == 1 && gone.stderr.contains("entry 2 was pruned: the log now starts after entry 3"), "\(gone.stderr)")
        let rewrittenStart = try holds("3:" + Bytes32.zero.hex)
        #expect(rewrittenStart.status == 1 && rewrittenStart.stderr.contains("the log starts after entry 3 with hash \(written[2]["hash"]!.stringValue!), not \(Bytes32.zero.hex): it was written again"),
                "\(rewrittenStart.stderr)")
        #expect(agent.logs.contains("audit entries through 3 pruned (3)"), "\(agent.logs)")

        // Kept elsewhere before the next prune, the entries still verify without the agent, and
        // the log left after it continues from the last of them.
        let exported = try audit(["export"])
        let lines = exported.stdout.split(separator: "\n").map(String.init)
        #expect(exported.status == 0 && lines.count == written.count - 3 + 3, "\(exported.stderr)")
        let archive = agent.directory.appendingPathComponent("archive.jsonl")
        try exported.stdout.write(to: archive, atomically: true, encoding: .utf8)
        let previous = written[2]["hash"]!.stringValue!
        let unanchored = try audit(["verify", "--file", archive.path])
        #expect(unanchored.status == 1 && unanchored.stderr.contains("starts at entry 4: give --previous, the hash of entry 3"), "\(unanchored.stderr)")
        let checked = try audit(["verify", "--file", archive.path, "--previous", previous, "--json"])
        let last = try JSONValue(parsing: Array(lines.last!.utf8))
        #expect(checked.status == 0 && (try? JSONValue(parsing: checked.stdout))?["last"]?["hash"] == last["hash"], "\(checked.stdout) \(checked.stderr)")
        // The file is read a megabyte at a time: an entry across the first megabyte's end is read
        // whole. A file with no end of line is refused, not read until memory runs out.
        let straddling = agent.directory.appendingPathComponent("straddling.jsonl")
        try (String(repeating: "\n", count: (1 << 20) - 10) + exported.stdout).write(to: straddling, atomically: true, encoding: .utf8)
        let across = try audit(["verify", "--file", straddling.path, "--previous", previous, "--json"])
        #expect(across.status == 0 && (try? JSONValue(parsing: across.stdout))?["last"]?["hash"] == last["hash"], "\(across.stdout) \(across.stderr)")
        let endless = try audit(["verify", "--file", "/dev/zero", "--previous", previous])
        #expect(endless.status == 1 && endless.stderr.contains("/dev/zero: line 1 goes on past 16 MiB"), "\(endless.stderr)")
        try lines.enumerated().map { $1.replacingOccurrences(of: "\"mode\":\"USE\"", with: $0 == 1 ? "\"mode\":\"ENABLE\"" : "\"mode\":\"USE\"") }
            .joined(separator: "\n").write(to: archive, atomically: true, encoding: .utf8)
        let tampered = try audit(["verify", "--file", archive.path, "--previous", previous])
        #expect(tampered.status == 1 && tampered.stderr.contains("does not match the chain"), "\(tampered.stdout) \(tampered.stderr)")
        // Entry numbers are outside the hashes; renumbered, left out or out of range, they are refused.
        func renumbered(line index: Int, _ seq: String) throws -> String {
            try lines.enumerated().map { i, line in
                guard i == index, case .object(var entry) = try JSONValue(parsing: Array(line.utf8)) else { return line }
                entry["seq"] = .number(seq)
                return JSONValue.object(entry).serialized
            }.joined(separator: "\n")
        }
        let firstSeq = try #require(Int64(try JSONValue(parsing: Array(lines[0].utf8))["seq"]!.serialized))
        for index in [1, 2] {
            try renumbered(line: index, String(firstSeq + 7)).write(to: archive, atomically: true, encoding: .utf8)
            let skipping = try audit(["verify", "--file", archive.path, "--previous", previous])
            #expect(skipping.status == 1 && skipping.stderr.contains("line \(index + 1): entry \(firstSeq + 7) follows entry \(firstSeq + Int64(index) - 1); entries were left out"),
                    "\(skipping.stderr)")
        }
        for seq in ["0", String(Int64.min)] {
            try renumbered(line: 0, seq).write(to: archive, atomically: true, encoding: .utf8)
            let outOfRange = try audit(["verify", "--file", archive.path])
            #expect(outOfRange.status == 1 && outOfRange.stderr.contains("line 1: entry number \(seq); they start at 1"), "\(outOfRange.stderr)")
        }
        let lastHeld = "\(last["seq"]!.serialized):\(last["hash"]!.stringValue!)"
        #expect(try audit(["prune", "--through", last["seq"]!.serialized]).status == 0)
        #expect(try holds(lastHeld).status == 0)

        // An agent that stopped in the middle of a prune finishes it as it starts again. What it
        // leaves: the prune's entry, written first, and its mark; here of a prune through the
        // entry before the newest.
        for nonce in 6..<9 { _ = try Self.sign(client, session, 1, nonce: UInt64(nonce)) }
        agent.stop(signal: SIGKILL)
        let path = agent.directory.appendingPathComponent("data/store.sqlite").path
        let store = try SessionStore(path: path)
        let tail = try store.auditEntries(after: nil, kind: nil, limit: 3)
        try store.audit("audit_prune", .object(JSONObject(["through": JSONValue(Int(tail[1].seq)), "hash": .string(tail[1].hash), "removed": JSONValue(2)])), at: tail[2].at)
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('audit_pruning', ?)", arguments: [String(tail[1].seq)])
        }
        try agent.start()
        try agent.waitForLog("audit entries through \(tail[1].seq) pruned: the prune the agent began before it stopped is finished")
        let finished = try AgentClient(path: agent.controlSocket).call("audit_verify")
        #expect(finished["intact"] == true && finished["prunedThrough"]?["seq"] == JSONValue(Int(tail[1].seq)), "\(finished.serialized)")
        #expect(finished["entries"] == JSONValue(2), "the newest signature and the prune")
    }

    /// The operator prunes the sessions that ended; their ids are gone, the others sign on.
    @Test func sessionsThatEndedArePrunedByTheOperator() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket), control = try AgentClient(path: agent.controlSocket)
        let ended = try Self.requestSession(client), live = try Self.requestSession(client)
        _ = try client.call("session_revoke", JSONObject(["sessionId": .string(ended)]))
        let listed = try Command.run(Command.sessionAgent, ["sessions", "--socket", agent.clientSocket])
        #expect(listed.stdout.split(separator: "\n").map { $0.hasPrefix(ended) ? $0.hasSuffix("(revoked)") : !$0.contains("(") } == [true, true], "\(listed.stdout)")
        let usable = try Command.run(Command.sessionAgent, ["sessions", "--live", "--socket", agent.clientSocket, "--json"])
        #expect(try JSONValue(parsing: usable.stdout).arrayValue?.compactMap { $0["sessionId"]?.stringValue } == [live], "\(usable.stdout)")
        for bad in [JSONObject(["limit": JSONValue(0)]), JSONObject(["limit": JSONValue(10_001)]), JSONObject(["live": "yes"])] {
            #expect(throws: AgentClient.RemoteError.self, "\(bad)") { try client.call("session_list", bad) }
        }
        for bad in [JSONObject(), JSONObject(["before": "soon"])] {
            #expect(throws: AgentClient.RemoteError.self) { try control.call("sessions_prune", bad) }
        }
        #expect(throws: AgentClient.RemoteError.self, "the control socket's") { try client.call("sessions_prune", JSONObject(["before": JSONValue(0)])) }
        let late = Int(Date().timeIntervalSince1970) + 60
        #expect(try control.call("sessions_prune", JSONObject(["before": JSONValue(late)]))["removed"] == JSONValue(1))
        #expect(try client.call("session_list").arrayValue?.compactMap { $0["sessionId"]?.stringValue } == [live])
        do {
            _ = try client.call("session_get", JSONObject(["sessionId": .string(ended)]))
            Issue.record("a pruned session was found")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "not_found", "\(e)") }
        #expect(try Self.sign(client, live, 1, nonce: 0)["signature"] != nil)
        let again = try Command.run(Command.sessionAgent, ["sessions", "prune", "--older-than", "1w", "--socket", agent.controlSocket])
        #expect(again.status == 0 && again.stdout.contains("nothing to remove"), "\(again.stdout) \(again.stderr)")
        #expect(agent.logs.contains("1 session that ended before \(late) pruned"), "\(agent.logs)")
    }

    /// `store compact` rewrites the file only while no agent serves it (the rewrite would hold
    /// up the agent's writes), and leaves what it holds as it was: the agent signs on after it.
    @Test func theStoreIsCompactedOnlyWhileNoAgentServesIt() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        try agent.start()
        let session = try Self.requestSession(try AgentClient(path: agent.clientSocket))
        _ = try Self.sign(try AgentClient(path: agent.clientSocket), session, 1, nonce: 0)
        let path = agent.directory.appendingPathComponent("data/store.sqlite").path
        func compact() throws -> CommandResult { try Command.run(Command.sessionAgent, ["store", "compact", "--store", path, "--json"]) }
        let refused = try compact()
        #expect(refused.status == 1 && refused.stderr.contains("already_running") && refused.stderr.contains("stop it first"), "\(refused.stdout) \(refused.stderr)")
        #expect(try compact().status == 1, "and again: the agent's lock was not taken from it")
        agent.stop()
        let compacted = try compact()
        let answer = try JSONValue(parsing: compacted.stdout)
        #expect(compacted.status == 0 && answer["store"]?.stringValue == path && answer["bytesAfter"] != nil, "\(compacted.stdout) \(compacted.stderr)")
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        #expect(try Self.sign(client, session, 1, nonce: 1)["signature"] != nil)
        #expect(try AgentClient(path: agent.controlSocket).call("audit_verify")["intact"] == true)
        let missing = try Command.run(Command.sessionAgent, ["store", "compact", "--store", path + ".none"])
        #expect(missing.status == 1 && missing.stderr.contains("no store at"), "\(missing.stderr)")
    }

    /// `session-agent lock` and `unlock`, as ssh-add -x and -X: the passphrase is typed (read
    /// without echo from the terminal, here standard input), never an argument. A wrong one
    /// leaves the store locked; the right one opens it and signing goes on.
    @Test func theStoreIsLockedAndUnlockedFromTheCommandLine() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        try agent.start()
        let sessionId = try Self.requestSession(try AgentClient(path: agent.clientSocket))
        func run(_ arguments: [String], typing: String = "") throws -> CommandResult {
            try Command.run(Command.sessionAgent, arguments + ["--socket", agent.controlSocket], stdin: Array(typing.utf8))
        }
        func signs(nonce: UInt64) throws -> Bool {
            do { return try Self.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: nonce)["signature"] != nil } catch let e as AgentClient.RemoteError {
                #expect(e.reason == "locked", "\(e)")
                return false
            }
        }
        #expect(try run(["unlock"]).stdout.contains("already open"))
        let locked = try run(["lock"])
        #expect(locked.status == 0 && locked.stdout.contains("locked"), "\(locked.stderr)")
        #expect(try !signs(nonce: 0))

        let wrong = try run(["unlock", "--json"], typing: "not the passphrase\n")
        #expect(wrong.status == 1 && wrong.stderr.contains("Passphrase of the session-key store") && wrong.stderr.contains("wrong_passphrase"), "\(wrong.stdout) \(wrong.stderr)")
        #expect(try !signs(nonce: 0))
        let unlocked = try run(["unlock"], typing: agent.storePassphrase + "\n")
        #expect(unlocked.status == 0 && unlocked.stdout.contains("open"), "\(unlocked.stdout) \(unlocked.stderr)")
        #expect(try signs(nonce: 0))
        #expect(!agent.logs.contains(agent.storePassphrase))
    }

    /// The README's client commands against an agent: `request` prints the session the rules
    /// approved; `sign-userop` signs inside its scope (ENABLE first, then USE), by the session's
    /// key over the userOpHash of the operation in the file, and refuses what is outside it
    /// with the agent's reason and exit status 1.
    @Test func theClientCommandsRequestAndSign() throws {
        let agent = try AgentProcess()
        try agent.start()
        defer { agent.stop() }
        func run(_ arguments: [String]) throws -> CommandResult { try Command.run(Command.sessionAgent, arguments + ["--socket", agent.clientSocket]) }
        let requested = try run(["request", Oracle.packageRoot.appendingPathComponent("docs/examples/usdc-transfers.json").path])
        let line = requested.stdout.split(separator: "\n").first { $0.hasPrefix("session: ") }
        let session = try #require(line.map { String($0.dropFirst("session: ".count)) }, "\(requested.stdout) \(requested.stderr)")
        let sessionKey = try AgentClient(path: agent.clientSocket).call("session_get", JSONObject(["sessionId": .string(session)]))["sessionKey"]?.stringValue

        let file = agent.directory.appendingPathComponent("op.json")
        func sign(_ amount: UInt64, nonce: UInt64) throws -> (CommandResult, userOpHash: Bytes32) {
            let operation = Self.transferOp(amount, nonce: nonce)
            try operation.serialized.write(to: file, atomically: true, encoding: .utf8)
            let hash = try UserOperation(json: operation).packed().hash(version: .v07, entryPoint: EntryPointVersion.v07.canonicalAddress, chainId: 11155111)
            return (try run(["sign-userop", "--session", session, "--chain-id", "11155111", file.path, "--json"]), hash)
        }
        for (nonce, expected) in [(UInt64(0), "ENABLE"), (1, "USE")] {
            let (signed, hash) = try sign(1_000_000, nonce: nonce)
            let result = try JSONValue(parsing: Array(signed.stdout.utf8))
            #expect(signed.status == 0 && result["mode"]?.stringValue == expected && result["userOpHash"]?.stringValue == hash.hex, "\(signed.stdout) \(signed.stderr)")
            let sessionSignature: [UInt8]
            switch try SessionSignature(decoding: try Hex.decode(try #require(result["signature"]?.stringValue))) {
            case .use(_, let signature), .enable(_, _, let signature): sessionSignature = signature
            }
            #expect(try RecoverableSignature(bytes: sessionSignature).recoverAddress(digest: hash).checksummed == sessionKey)
        }
        let (refused, _) = try sign(200_000_000, nonce: 2)
        #expect(refused.status == 1 && refused.stdout.isEmpty && refused.stderr.contains("policy_violation") && refused.stderr.contains("spending limit"), "\(refused.stderr)")
    }

    /// `session_signUserOperation`'s optional parameters: the EntryPoint version, needed for
    /// a non-canonical EntryPoint and taken from the address otherwise (v0.8 hashes as EIP-712),
    /// and a forced mode, which may not turn an ENABLE session into an UNSAFE_ENABLE one.
    @Test func theEntryPointVersionAndAForcedModeOverTheSocket() throws {
        let (agent, client, session) = try Self.agentWithSession()
        defer { agent.stop() }
        let custom = try Address("0x00000000000000000000000000000000000e7e7e")
        var nonce: UInt64 = 0
        var eip7702 = false
        func operation() -> JSONValue {
            var op = Self.transferOp(1, nonce: nonce).objectValue!
            if eip7702 { op["factory"] = "0x7702" }
            return .object(op)
        }
        func sign(_ extra: [String: JSONValue], entryPoint: Address = EntryPointVersion.v07.canonicalAddress) throws -> JSONValue {
            nonce += 1
            var params = JSONObject(["sessionId": .string(session), "chainId": JSONValue(11155111), "entryPoint": .string(entryPoint.checksummed),
                                     "userOperation": operation()])
            for (key, value) in extra { params[key] = value }
            return try client.call("session_signUserOperation", params)
        }
        func refusal(_ extra: [String: JSONValue], entryPoint: Address = EntryPointVersion.v07.canonicalAddress) throws -> AgentClient.RemoteError? {
            do { _ = try sign(extra, entryPoint: entryPoint) } catch let e as AgentClient.RemoteError { return e }
            return nil
        }
        func hash(_ version: EntryPointVersion, _ entryPoint: Address, delegate: Address? = nil) throws -> String {
            try PackedUserOperation.parse(json: operation()).hash(version: version, entryPoint: entryPoint, chainId: 11155111, eip7702Delegate: delegate).hex
        }

        let forcedUse = try sign(["mode": "use"]), forcedUseHash = try hash(.v07, EntryPointVersion.v07.canonicalAddress)
        #expect(forcedUse["mode"] == "USE" && forcedUse["userOpHash"]?.stringValue == forcedUseHash, "\(forcedUse)")
        let v08 = try sign([:], entryPoint: EntryPointVersion.v08.canonicalAddress), v08Hash = try hash(.v08, EntryPointVersion.v08.canonicalAddress)
        #expect(v08["userOpHash"]?.stringValue == v08Hash, "\(v08)")
        let named = try sign(["entryPointVersion": "0.7"], entryPoint: custom), namedHash = try hash(.v07, custom)
        #expect(named["userOpHash"]?.stringValue == namedHash, "\(named)")

        #expect(try refusal([:], entryPoint: custom)?.message == "params.entryPointVersion: needed for a non-canonical EntryPoint")
        #expect(try refusal(["entryPointVersion": "0.9"])?.message == "params.entryPointVersion: 0.7 or 0.8")
        #expect(try refusal(["mode": "sudo"])?.message == "params.mode: use, enable or unsafe-enable")
        let unsafe = try refusal(["mode": "unsafe-enable"])
        #expect(unsafe?.reason == "bad_request" && unsafe?.message.contains("the session was approved for ENABLE, not UNSAFE_ENABLE") == true, "\(String(describing: unsafe))")

        // An EIP-7702 account (viem writes its factory 0x7702): the v0.8 hash covers the
        // sender's delegate, which only the client knows.
        eip7702 = true
        let delegate = try Address("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")
        let withDelegate = try sign(["eip7702Delegate": .string(delegate.checksummed)], entryPoint: EntryPointVersion.v08.canonicalAddress)
        let delegatedHash = try hash(.v08, EntryPointVersion.v08.canonicalAddress, delegate: delegate)
        #expect(try withDelegate["userOpHash"]?.stringValue == delegatedHash && delegatedHash != (hash(.v08, EntryPointVersion.v08.canonicalAddress, delegate: .zero)), "\(withDelegate)")
        let noDelegate = try refusal([:], entryPoint: EntryPointVersion.v08.canonicalAddress)
        #expect(noDelegate?.reason == "bad_request" && noDelegate?.message.contains("initCode: EIP-7702 initCode: the hash depends on the sender's delegate") == true, "\(String(describing: noDelegate))")
        #expect(try refusal(["eip7702Delegate": "0x7702"], entryPoint: EntryPointVersion.v08.canonicalAddress)?.message == "params.eip7702Delegate: invalid address: expected 20 bytes, got 2")
    }

    /// A session whose row was edited in the store's file (a year longer, here) is refused with
    /// `store_corrupt`, for signing and for export, after a restart as before one; the agent
    /// goes on signing for the others.
    @Test func aSessionEditedInTheStoreFileGetsNoSignature() throws {
        var exportable = Self.example.objectValue!
        exportable["export"] = true
        let (agent, client, edited) = try Self.agentWithSession(rules: "default = \"approve\"", request: .object(exportable))
        defer { agent.stop() }
        let untouched = try Self.requestSession(client)
        agent.stop()
        let file = try DatabaseQueue(path: agent.directory.appendingPathComponent("data/store.sqlite").path)
        try file.write { db in try db.execute(sql: "UPDATE sessions SET expires_at = expires_at + 31536000 WHERE id = ?", arguments: [edited]) }
        try file.close()

        try agent.start()
        let restarted = try AgentClient(path: agent.clientSocket)
        for method in ["session_signUserOperation", "session_export"] {
            do {
                _ = method == "session_export" ? try restarted.call(method, JSONObject(["sessionId": .string(edited)])) : try Self.sign(restarted, edited, 1, nonce: 0)
                Issue.record("\(method) answered for an edited session")
            } catch let e as AgentClient.RemoteError {
                #expect(e.reason == "store_corrupt" && e.message.contains("the key of session \(edited) does not decrypt"), "\(method): \(e)")
            }
        }
        #expect(try Self.sign(restarted, untouched, 1, nonce: 0)["mode"] == "ENABLE")

        // The operator hears of it without waiting for the client: the journal names it after
        // the unlock, and `store check` lists it, failing, until it is revoked.
        let problem = "the key of session \(edited) does not decrypt (its row was edited, or it is under another key)"
        let journalLine = "session \(edited) cannot sign: \(problem); revoke it, or restore the store from a backup"
        try agent.waitForLog(journalLine)
        #expect(!agent.logs.contains("session \(untouched) cannot sign"))
        let control = try AgentClient(path: agent.controlSocket)
        #expect(try control.call("store_check") == .object(JSONObject(["intact": false, "file": "ok", "keys": .object(JSONObject([
            "checked": JSONValue(2), "damaged": [.object(JSONObject(["sessionId": .string(edited), "problem": .string(problem)]))],
        ]))])))
        let damaged = try Command.run(Command.sessionAgent, ["store", "check", "--socket", agent.controlSocket])
        #expect(damaged.status == 1 && damaged.stderr.contains("the store is damaged: 1 session cannot sign, as its key does not open beside its row")
                    && damaged.stderr.contains("hint: session \(edited): \(problem)"), "\(damaged)")
        // The file checked here, a backup say, with the store's passphrase: the same finding.
        let path = agent.directory.appendingPathComponent("data/store.sqlite").path
        func checkHere(_ passphraseFile: String) throws -> CommandResult {
            try Command.run(Command.sessionAgent, ["store", "check", "--store", path, "--passphrase-file", passphraseFile, "--json"])
        }
        let here = try checkHere(agent.directory.appendingPathComponent("store.pass").path)
        let hints = try JSONValue(parsing: Array(here.stderr.utf8))["error"]?["hints"]?.arrayValue
        #expect(here.status == 1 && hints?.first == .string("session \(edited): \(problem)"), "\(here)")
        let wrongFile = agent.directory.appendingPathComponent("wrong.pass").path
        try writeSecretFile("not the passphrase", wrongFile)
        let wrong = try checkHere(wrongFile)
        #expect(wrong.status == 1 && wrong.stderr.contains("wrong passphrase for the session-key store"), "\(wrong)")
        // Locked, the keys cannot be checked; each unlock checks them again.
        _ = try control.call("agent_lock")
        do {
            _ = try control.call("store_check")
            Issue.record("store_check answered on a locked store")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "locked", "\(e)") }
        _ = try control.call("agent_unlock", JSONObject(["passphrase": .string(agent.storePassphrase)]))
        try agent.waitForLog(journalLine, times: 2)
        _ = try control.call("session_revoke", JSONObject(["sessionId": .string(edited)]))
        let intact = try Command.run(Command.sessionAgent, ["store", "check", "--socket", agent.controlSocket])
        #expect(intact.status == 0 && intact.stdout.contains("the store is intact: every page of its file, and the 1 session key it holds"), "\(intact)")
        #expect(try checkHere(agent.directory.appendingPathComponent("store.pass").path).status == 0)
    }

    /// A store whose file is damaged (a failing disk, a copy cut short) fails `store check`,
    /// saying what to do, as a script reads it (`--json`) too; the agent said so in its journal
    /// as it started. The session keys it could read are checked all the same.
    @Test func aDamagedStoreFileFailsTheStoreCheck() throws {
        let agent = try Self.agentWithSession(rules: "default = \"approve\"").agent
        agent.stop()
        let path = agent.directory.appendingPathComponent("data/store.sqlite").path
        do {
            let store = try SessionStore(path: path)
            let padding = String(repeating: "x", count: 1000)
            for i in 0..<400 { try store.audit("test", .object(JSONObject(["i": JSONValue(i), "padding": .string(padding)])), at: 1_764_096_000) }
        }
        let file = try DatabaseQueue(path: path)
        try file.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        try file.close()
        // Pages of the audit log, not the sessions'.
        try scribbleOverTheThirdQuarter(of: path)

        try agent.start()
        try agent.waitForLog("the session-key store is damaged: SQLite finds errors in the file (")
        let result = try AgentClient(path: agent.controlSocket).call("store_check")
        #expect(result["intact"] == false && result["file"]?.stringValue?.hasPrefix("SQLite finds errors in the file (") == true
                    && result["keys"] == .object(JSONObject(["checked": JSONValue(1), "damaged": []])), "\(result.serialized)")
        // Checked here, on a copy in memory that keeps the damaged pages, it is the same.
        let here = try Command.run(Command.sessionAgent, ["store", "check", "--store", path, "--passphrase-file", agent.directory.appendingPathComponent("store.pass").path])
        #expect(here.status == 1 && here.stderr.contains("the store is damaged: its file: SQLite finds errors in the file ("), "\(here)")
        let checked = try Command.run(Command.sessionAgent, ["store", "check", "--socket", agent.controlSocket, "--json"])
        let error = try JSONValue(parsing: Array(checked.stderr.utf8))["error"]
        #expect(checked.status == 1 && error?["reason"] == "store_corrupt"
                    && error?["message"]?.stringValue?.hasPrefix("the store is damaged: its file: SQLite finds errors in the file (") == true
                    && error?["hints"] == ["restore the store from a backup (session-agent store backup makes one)"], "\(checked)")
    }

    /// `session-agent sessions` pages through more sessions than one `session_list` answer
    /// (1,000): each once, oldest first.
    @Test func moreSessionsThanOnePageAreListedWhole() throws {
        let (agent, _, first) = try Self.agentWithSession(rules: "default = \"approve\"")
        agent.stop()
        do {
            let store = try SessionStore(path: agent.directory.appendingPathComponent("data/store.sqlite").path)
            try store.unlock(passphrase: secret(agent.storePassphrase))
            var copy = try store.session(id: first)
            for n in 0..<1_000 {
                let key = Secp256k1.PrivateKey.generate()
                (copy.id, copy.sessionKey, copy.createdAt) = ("sess-copy-\(n)", key.address, copy.createdAt + 1)
                try store.insert(copy, key: key)
            }
        }
        try agent.start()
        let listed = try Command.run(Command.sessionAgent, ["sessions", "--socket", agent.clientSocket, "--json"])
        let ids = try JSONValue(parsing: Array(listed.stdout.utf8)).arrayValue?.compactMap { $0["sessionId"]?.stringValue } ?? []
        #expect(listed.status == 0 && ids == [first] + (0..<1_000).map { "sess-copy-\($0)" }, "\(ids.count) listed: \(listed.stderr)")
    }

    /// The first unlock of a new store chooses its passphrase, typed twice: two that differ
    /// leave it locked and still without one.
    @Test func aNewStoresPassphraseIsTypedTwice() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        let config = agent.directory.appendingPathComponent("session-agent.toml")
        let text = try String(contentsOf: config, encoding: .utf8)
        try text.replacingOccurrences(of: "store_passphrase_file = \"store.pass\"\n", with: "").write(to: config, atomically: true, encoding: .utf8)
        try agent.start()
        func unlock(typing: String) throws -> CommandResult {
            try Command.run(Command.sessionAgent, ["unlock", "--socket", agent.controlSocket], stdin: Array(typing.utf8))
        }
        let control = try AgentClient(path: agent.controlSocket)
        let differ = try unlock(typing: "a new passphrase\nanother one\n")
        #expect(differ.status == 1 && differ.stderr.contains("the two passphrases differ; the store stays locked"), "\(differ)")
        #expect(try control.call("agent_unlock_asks")["new"] == true)
        let chosen = try unlock(typing: "a new passphrase\na new passphrase\n")
        #expect(chosen.status == 0 && chosen.stdout.contains("the store is open"), "\(chosen)")
        _ = try control.call("agent_lock")
        let asks = try control.call("agent_unlock_asks")
        #expect(asks["locked"] == true && asks["new"] == nil, "\(asks.serialized)")
        #expect(try unlock(typing: "a new passphrase\n").status == 0)
    }

    /// Revoking erases the agent's copy of a key; one the session let the client have signs on,
    /// and the operator is told so beside what ends the session on chain.
    @Test func revokingASessionWhoseKeyMayHaveLeftSaysSo() throws {
        var exportable = Self.example.objectValue!
        exportable["export"] = true
        let (agent, client, session) = try Self.agentWithSession(rules: "default = \"approve\"", request: .object(exportable))
        let kept = try Self.requestSession(client)
        for (id, mayHaveLeft) in [(session, true), (kept, false)] {
            let revoked = try Command.run(Command.sessionAgent, ["revoke", id, "--socket", agent.clientSocket])
            #expect(revoked.status == 0 && revoked.stdout.contains("(the session allows export): a copy there can still sign") == mayHaveLeft, "\(revoked)")
        }
    }

    /// Not even the key the agent exports to its client.
    @Test func noSecretInLogsOrAudit() throws {
        var exportable = Self.example.objectValue!
        exportable["export"] = true
        let (agent, client, session) = try Self.agentWithSession(rules: "default = \"approve\"", request: .object(exportable))
        _ = try Self.sign(client, session, 1, nonce: 0)
        let exported = try client.call("session_export", JSONObject(["sessionId": .string(session)]))
        agent.stop()

        let store = try SessionStore(path: agent.directory.appendingPathComponent("data/store.sqlite").path)
        try store.unlock(passphrase: secret(agent.storePassphrase))
        let sessionKey = try store.sessionKey(id: session).withUnsafeBytes { Hex.encode($0, prefix: false) }
        #expect(exported["privateKey"]?.stringValue == "0x" + sessionKey)
        #expect(exported["address"]?.stringValue == (try store.session(id: session)).sessionKey.checksummed)
        let keystore = try Keystore(parsing: [UInt8](try Data(contentsOf: agent.directory.appendingPathComponent("owner.json"))))
        let ownerKey = try keystore.decrypt(passphrase: secret(agent.ownerPassphrase)).withUnsafeBytes { Hex.encode($0, prefix: false) }
        let auditText = try String(decoding: Data(contentsOf: agent.directory.appendingPathComponent("data/store.sqlite")), as: UTF8.self)
        for secret in [agent.ownerPassphrase, agent.storePassphrase, sessionKey, ownerKey] {
            #expect(!agent.logs.contains(secret))
            #expect(!auditText.lowercased().contains(secret.lowercased()))
        }
    }
}

/// Hands a value to one other thread that alone uses it from then on.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Owners and accounts added and removed through the control socket, kept across restarts.
@Suite("Owners and accounts managed at run time", .serialized)
struct RegistrationTests {
    static let other = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

    static func request(_ client: AgentClient, account: String) throws -> JSONValue {
        var example = SocketTests.example.objectValue!
        example["account"] = .string(account)
        example["accountKind"] = nil
        return try client.call("session_request", JSONObject(["request": .object(example)]))
    }

    @Test func addedOwnersAndAccountsSignAndSurviveARestart() throws {
        let agent = try AgentProcess(rules: "default = \"approve\"")
        try agent.start()
        let keystore = agent.directory.appendingPathComponent("second-owner.json").path
        let created = try Command.run(Command.sessionAgent, ["owner", "create", "--keystore", keystore, "--passphrase-file", agent.directory.appendingPathComponent("owner.pass").path])
        let ownerAddress = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try Command.run(Command.sessionAgent, ["owner", "address", keystore]).stdout == created.stdout, "the keystore records the address")
        var control = try AgentClient(path: agent.controlSocket)
        // An agent that waits on a file answers nobody: the call fails rather than the test hangs.
        var patience = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(control.fd, SOL_SOCKET, SO_RCVTIMEO, &patience, socklen_t(MemoryLayout<timeval>.size))
        // A passphrase file that does not open the keystore is refused at once, as a PIN file
        // that a token refuses; so is one that never ends, and a FIFO nobody writes to, which
        // held one of the agent's two threads for good each time it was named.
        let wrongFile = agent.directory.appendingPathComponent("wrong.pass").path
        try writeSecretFile("not the passphrase", wrongFile)
        let fifo = agent.directory.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let refused = [(keystore, wrongFile, "wrong_secret", "the passphrase in \(wrongFile) does not open the keystore \(keystore)"),
                       (keystore, "/dev/zero", "secret_needed", "the passphrase file /dev/zero is a character device, not a regular file"),
                       ("/dev/zero", nil, "bad_config", "the owner keystore /dev/zero is a character device, not a regular file"),
                       (fifo, nil, "bad_config", "the owner keystore \(fifo) is a FIFO, not a regular file")]
            + Array(repeating: (keystore, fifo, "secret_needed", "the passphrase file \(fifo) is a FIFO, not a regular file"), count: 3)
        for (keystore, file, reason, words) in refused {
            do {
                _ = try control.call("owners_add", JSONObject(["keystore": .string(keystore), "passphraseFile": file.map { .string($0) } ?? .null]))
                Issue.record("an owner that cannot sign was taken: \(keystore), \(file ?? "")")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == reason && e.message.contains(words), "\(e)") }
        }
        // A secret meant for the other kind of owner is refused, not dropped: a keystore given
        // a pinFile would have asked a person for its passphrase at each approval.
        let passphraseFile = agent.directory.appendingPathComponent("owner.pass").path
        for (params, message) in [(["keystore": keystore, "pinFile": passphraseFile], "params.pinFile: not for a keystore owner, which takes passphraseFile"),
                                  (["keystore": keystore, "pin": "1234"], "params.pin: not for a keystore owner, which takes passphraseFile"),
                                  (["pkcs11": "pkcs11:token=t;object=o", "passphraseFile": passphraseFile], "params.passphraseFile: not for a PKCS#11 owner, which takes pinFile and pin"),
                                  (["pkcs11": "pkcs11:token=t;object=o", "keystore": keystore], "params.keystore: not for a PKCS#11 owner, which takes pinFile and pin")] {
            var object = JSONObject()
            for (key, value) in params { object[key] = .string(value) }
            do {
                _ = try control.call("owners_add", object)
                Issue.record("taken: \(params)")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == "bad_request" && e.message == message, "\(e)") }
        }
        #expect(try control.call("owners_list").arrayValue?.count == 1, "nothing was added")
        // `owner add` names the files as given, relative to where it runs: the agent gets them whole.
        let addedByCommand = try Command.run(Command.sessionAgent, ["owner", "add", "second-owner.json", "--passphrase-file", "owner.pass",
                                                                     "--socket", agent.controlSocket, "--json"], in: agent.directory)
        let added = try JSONValue(parsing: Array(addedByCommand.stdout.utf8))
        #expect(addedByCommand.status == 0 && added["address"]?.stringValue == ownerAddress, "\(addedByCommand.stdout) \(addedByCommand.stderr)")
        _ = try control.call("accounts_add", JSONObject(["account": .object(JSONObject([
            "address": .string(Self.other), "kind": "nexus", "owners": .array([.string(ownerAddress)]), "chains": .array([JSONValue(11155111)]),
        ]))]))
        var client = try AgentClient(path: agent.clientSocket)
        #expect(try Self.request(client, account: Self.other)["status"] == "approved")

        agent.stop()
        try agent.start()
        control = try AgentClient(path: agent.controlSocket)
        client = try AgentClient(path: agent.clientSocket)
        #expect(try control.call("accounts_list").arrayValue?.contains { $0["address"]?.stringValue == Self.other && $0["kind"] == "nexus" } == true)
        #expect(try control.call("owners_list").arrayValue?.contains { $0["address"]?.stringValue == ownerAddress && $0["ready"] == .bool(true) } == true)
        let again = try Self.request(client, account: Self.other)
        #expect(again["status"] == "approved", "\(again.serialized.prefix(300))")
        // Its passphrase file gone: the owner is listed as not ready, saying why.
        try FileManager.default.moveItem(atPath: passphraseFile, toPath: passphraseFile + ".moved")
        let unready = try control.call("owners_list").arrayValue?.first { $0["address"]?.stringValue == ownerAddress }
        #expect(unready?["ready"] == .bool(false) && unready?["reason"] == "secret_needed" && unready?["problem"]?.stringValue?.contains(passphraseFile) == true,
                "\(unready?.serialized ?? "")")
        try FileManager.default.moveItem(atPath: passphraseFile + ".moved", toPath: passphraseFile)

        // The configuration file's own cannot be removed; added ones can, and are gone.
        do {
            _ = try control.call("accounts_remove", JSONObject(["address": .string(AgentProcess.account)]))
            Issue.record("removed an account of the configuration file")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "forbidden") }
        do {
            _ = try control.call("accounts_add", JSONObject(["account": .object(JSONObject(["address": .string(AgentProcess.account), "kind": "nexus", "owners": .array([.string(ownerAddress)])]))]))
            Issue.record("replaced an account of the configuration file")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "forbidden") }
        _ = try control.call("accounts_remove", JSONObject(["address": .string(Self.other)]))
        let removed = try Command.run(Command.sessionAgent, ["owner", "remove", ownerAddress, "--socket", agent.controlSocket])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(try control.call("owners_list").arrayValue?.contains { $0["address"]?.stringValue == ownerAddress } == false)
        let removedAgain = try Command.run(Command.sessionAgent, ["owner", "remove", ownerAddress, "--socket", agent.controlSocket])
        #expect(removedAgain.status == 1 && removedAgain.stderr.contains(ownerAddress), "\(removedAgain.stderr)")
        do {
            _ = try Self.request(client, account: Self.other)
            Issue.record("a removed account was served")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "unknown_account") }
        do {
            _ = try control.call("accounts_add", JSONObject(["account": .object(JSONObject(["address": .string(Self.other), "kind": "nexus", "owners": .array([])]))]))
            Issue.record("an account without owners was added")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "bad_request" && e.message.contains("account.owners")) }
        #expect(try control.call("audit_verify")["intact"] == .bool(true))
    }

    /// An account removed while a request for it waits for a person: the request fails, saying
    /// why, and approving it is refused. Approving it crashed the agent.
    @Test func removingAnAccountEndsItsPendingRequests() throws {
        let agent = try AgentProcess(rules: "default = \"ask\"")
        try agent.start()
        let control = try AgentClient(path: agent.controlSocket), client = try AgentClient(path: agent.clientSocket)
        let owner = try #require(try control.call("owners_list").arrayValue?.first?["address"])
        _ = try control.call("accounts_add", JSONObject(["account": .object(JSONObject([
            "address": .string(Self.other), "kind": "nexus", "owners": .array([owner]), "chains": .array([JSONValue(11155111)]),
        ]))]))
        let waiting = try #require(try Self.request(client, account: Self.other)["id"])
        let kept = try #require(try client.call("session_request", JSONObject(["request": SocketTests.example]))["id"])
        _ = try control.call("accounts_remove", JSONObject(["address": .string(Self.other)]))
        let ended = try client.call("session_wait", JSONObject(["id": waiting, "timeout": JSONValue(5)]))
        #expect(ended["status"] == "failed" && ended["reason"]?.stringValue?.contains("was removed") == true, "\(ended.serialized)")
        do {
            _ = try control.call("pending_decide", JSONObject(["id": waiting, "approve": true]))
            Issue.record("a request for a removed account was approved")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "already_decided", "\(e)") }
        #expect(try control.call("pending_list").arrayValue?.map { $0["id"] } == [kept], "the other account's request waits on")
        #expect(try control.call("pending_decide", JSONObject(["id": kept, "approve": true]))["status"] == "approved")
    }
}
