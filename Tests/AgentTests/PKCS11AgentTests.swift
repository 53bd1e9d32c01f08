import Agent
import EthereumCore
import Foundation
import GRDB
import OwnerSigners
import SmartSessions
import Testing
import TestSupport

/// The agent with its owner key on a SoftHSM2 token, as a server runs it: approval by rules,
/// the PIN from a file, the key made by pkcs11-tool.
@Suite("PKCS#11 owners and the token-wrapped store, end to end", .serialized, .enabled(if: SoftHSM.isAvailable, "\(SoftHSM.unavailableReason ?? "")"))
struct PKCS11AgentTests {
    /// A token directory of this test's own, given to the agent it starts: unplugging a token
    /// here disturbs no other test.
    let hsm = try! SoftHSM()
    let token = "agent-\(UUID().uuidString.prefix(8))"

    /// The test's token served by `p11-kit server` on a socket of its own, and the environment
    /// that points p11-kit-client.so at it.
    func serveToken() throws -> (socket: String, server: P11KitServer, environment: [String: String]) {
        let socket = hsm.directory.appendingPathComponent("p11-\(token).sock").path
        let server = try hsm.serve(token: token, socket: socket)
        var environment = hsm.environment
        environment["P11_KIT_SERVER_ADDRESS"] = "unix:path=\(socket)"
        return (socket, server, environment)
    }

    /// A token with a secp256k1 key made by pkcs11-tool, and its PIN file.
    func tokenWithKey() throws -> (directory: URL, address: Address, pinFile: String) {
        let directory = try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "owner", id: "0a")
        let pinFile = hsm.directory.appendingPathComponent("pin-\(token)").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        return (directory, Address(publicKey: Array(try hsm.publicPoint(token: token, id: "0a").dropFirst())), pinFile)
    }

    /// `owner list --json`, as monitoring runs it: its exit status, and what it says of `address`.
    func listedOwner(_ address: Address, by agent: AgentProcess) throws -> (status: Int32, owner: JSONValue?) {
        let run = try Command.run(Command.sessionAgent, ["owner", "list", "--socket", agent.controlSocket, "--json"])
        return (run.status, (try? JSONValue(parsing: run.stdout))?.arrayValue?.first { $0["address"]?.stringValue == address.checksummed })
    }

    @Test func aSessionApprovedByRulesIsEnabledByTheTokenKey() throws {
        let (_, address, pinFile) = try tokenWithKey()
        // The module named by p11-kit's registration (no module-path): what a packaged HSM does.
        let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner"
            pin_file = "\(pinFile)"
            """, address: address.checksummed), environment: hsm.environment)
        try agent.start()
        let control = try AgentClient(path: agent.controlSocket)
        let owners = try control.call("owners_list").arrayValue ?? []
        #expect(owners.count == 1 && owners[0]["backend"] == "pkcs11" && owners[0]["address"]?.stringValue == address.checksummed)

        let client = try AgentClient(path: agent.clientSocket)
        let sessionId = try SocketTests.requestSession(client)
        let session = try client.call("session_get", JSONObject(["sessionId": .string(sessionId)]))
        let signed = try SocketTests.sign(client, sessionId, 5_000_000, nonce: 0)
        #expect(signed["mode"] == "ENABLE")
        let signers = try SocketTests.enableSigners(signed)
        #expect(signers.owner == address && signers.sessionKey.checksummed == session["sessionKey"]?.stringValue)
        // The CLI decodes the same signature.
        let decoded = try Command.run(Command.sessionAgent, ["decode-signature", try #require(signed["signature"]?.stringValue)])
        #expect(decoded.status == 0 && decoded.stdout.contains("ENABLE"), "\(decoded.stderr)")
        // The audit log and the journal say which key, on which token, signed the session's enable.
        let decision = try control.call("audit_show", JSONObject(["kind": "decision", "limit": JSONValue(1)])).arrayValue?.first?["entry"]
        let signer = decision?["signedBy"]?.arrayValue?.first
        #expect(decision?["status"] == "approved" && signer?["owner"]?.stringValue == address.checksummed && signer?["backend"] == "pkcs11", "\(String(describing: decision))")
        let key = "pkcs11:token=\(token);object=owner"
        #expect(signer?["location"]?.stringValue?.hasPrefix(key) == true, "\(String(describing: signer))")
        #expect(agent.logs.contains("signed by \(address.checksummed) (\(key)"), "\(agent.logs)")
        #expect(!agent.logs.contains(SoftHSM.userPIN))
    }

    /// A P-256 key on the token owns an account through Rhinestone's WebAuthnValidator: the
    /// account lists it as p256:0x04…, the agent writes the WebAuthn data (user presence and
    /// verification set: the token's login) and the token signs their hash. The oracle checks
    /// the enable signature as the validator would; `sign` as an Ethereum owner is refused.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func aP256KeyEnablesASessionThroughTheWebAuthnValidator() throws {
        _ = try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "p256", id: "0b", keyType: "EC:prime256v1")
        let pinFile = hsm.directory.appendingPathComponent("pin-\(token)").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        let point = try hsm.publicPoint(token: token, id: "0b")
        let ownerKey = "p256:" + Hex.encode(point)
        let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=p256"
            pin_file = "\(pinFile)"
            """, address: ownerKey), environment: hsm.environment)
        try agent.start()
        defer { agent.stop() }
        let control = try AgentClient(path: agent.controlSocket)
        let owners = try control.call("owners_list").arrayValue ?? []
        #expect(owners.count == 1 && owners[0]["owner"]?.stringValue == ownerKey && owners[0]["ready"] == .bool(true), "\(owners)")

        let client = try AgentClient(path: agent.clientSocket)
        let signed = try SocketTests.sign(client, try SocketTests.requestSession(client), 5_000_000, nonce: 0)
        let (verdict, validatorSignature) = try PasskeyAgentTests.enableVerdict(signed, ownerKey: ownerKey, scratch: hsm.directory)
        #expect(verdict == "ok")
        let (_, _, assertions) = try RhinestoneWebAuthn.decodeSignature(validatorSignature)
        #expect(assertions.first?.authenticatorData[32] == 0x05, "user presence and verification")
        #expect(agent.logs.contains("signed by \(ownerKey) (pkcs11:token=\(token);object=p256"), "\(agent.logs)")
    }

    @Test func ownersAddedByURIAndTheTokenGoingAway() throws {
        let (directory, address, pinFile) = try tokenWithKey()
        let agent = try AgentProcess(rules: "default = \"approve\"", environment: hsm.environment)
        try agent.start()
        // `owner add` with a URI: the agent reads the public key from the token, and with a PIN
        // file logs in, so a wrong PIN is refused now rather than at the first approval.
        let module = SoftHSM.systemModule!
        let wrongPINFile = hsm.directory.appendingPathComponent("wrong-pin-\(token)").path
        try writeSecretFile(SoftHSM.wrongPIN, wrongPINFile)
        let wrongPIN = try Command.run(Command.sessionAgent, ["owner", "add", "pkcs11:token=\(token);object=owner?module-path=\(module)", "--pin-file", wrongPINFile,
                                                              "--socket", agent.controlSocket])
        #expect(wrongPIN.status == 1 && wrongPIN.stderr.contains("wrong PIN"), "\(wrongPIN.stderr)")
        #expect(try AgentClient(path: agent.controlSocket).call("owners_list").arrayValue?.count == 1)
        // Paths in the URI typed are the typist's, relative to where they typed it, not to
        // wherever the agent runs; the agent itself takes only absolute ones.
        let moduleFromHere = String(repeating: "../", count: hsm.directory.pathComponents.count - 1) + module.dropFirst()
        let relative = "pkcs11:token=\(token);object=owner?module-path=\(moduleFromHere)&pin-source=file:\(URL(fileURLWithPath: pinFile).lastPathComponent)"
        let notAbsolute = try Command.run(Command.sessionAgent, ["rpc", "owners_add", "--control", "--socket", agent.controlSocket, #"{"pkcs11":"\#(relative)"}"#])
        #expect(notAbsolute.status != 0 && notAbsolute.stderr.contains("absolute paths"), "\(notAbsolute)")
        // A PIN file beside a URI that names another: which one was meant is not guessed.
        let twoPINFiles = try Command.run(Command.sessionAgent, ["owner", "add", "pkcs11:token=\(token);object=owner?module-path=\(module)&pin-source=file:\(pinFile)",
                                                                 "--pin-file", wrongPINFile, "--socket", agent.controlSocket])
        #expect(twoPINFiles.status != 0 && twoPINFiles.stderr.contains("pin-source already names \(pinFile); one PIN source, not two"), "\(twoPINFiles)")
        let added = try Command.run(Command.sessionAgent, ["owner", "add", relative, "--socket", agent.controlSocket, "--json"], in: hsm.directory)
        #expect(added.status == 0, "\(added.stderr)")
        #expect(try JSONValue(parsing: added.stdout)["address"]?.stringValue == address.checksummed)
        #expect(try JSONValue(parsing: added.stdout)["custody"] == "never_left", "\(added.stdout)")
        // A key the token would hand out is added, but said to be one, to the operator, in the
        // journal and in the audit log.
        try hsm.generateKey(token: token, label: "leaky", id: "0b", extractable: true)
        let leaky = try Command.run(Command.sessionAgent, ["owner", "add", "pkcs11:token=\(token);object=leaky?module-path=\(module)", "--pin-file", pinFile,
                                                           "--socket", agent.controlSocket])
        #expect(leaky.status == 0 && leaky.stdout.contains("CAN BE READ OUT") && leaky.stdout.contains("worth little"), "\(leaky.stdout) \(leaky.stderr)")
        #expect(agent.logs.contains("warning") && agent.logs.contains("its private key: CAN BE READ OUT"), "\(agent.logs)")
        let control = try AgentClient(path: agent.controlSocket)
        let addedEntries = try control.call("audit_show", JSONObject(["kind": "owner_add"])).arrayValue ?? []
        #expect(addedEntries.compactMap { $0["entry"]?["custody"]?.stringValue } == ["never_left", "exportable"], "\(addedEntries)")
        // A key the token will not sign digests with (an HSM policy allowing only CKM_ECDSA_SHA256)
        // is refused now, not at the first approval.
        try hsm.generateKey(token: token, label: "hashing-only", id: "0d", allowedMechanisms: "ECDSA-SHA256")
        let ownersBefore = try control.call("owners_list").arrayValue?.count
        let hashingOnly = try Command.run(Command.sessionAgent, ["owner", "add", "pkcs11:token=\(token);object=hashing-only?module-path=\(module)", "--pin-file", pinFile,
                                                                 "--socket", agent.controlSocket])
        #expect(hashingOnly.status == 1 && hashingOnly.stderr.contains("cannot sign as an owner") && hashingOnly.stderr.contains("CKM_ECDSA_SHA256"), "\(hashingOnly.stderr)")
        #expect(try control.call("owners_list").arrayValue?.count == ownersBefore)
        _ = try control.call("owners_remove", JSONObject(["address": .string(Address(publicKey: Array(try hsm.publicPoint(token: token, id: "0b").dropFirst())).checksummed)]))
        _ = try control.call("accounts_add", JSONObject(["account": .object(JSONObject([
            "address": .string(RegistrationTests.other), "kind": "erc7579", "owners": .array([.string(address.checksummed)]), "chains": .array([JSONValue(11155111)]),
        ]))]))
        let client = try AgentClient(path: agent.clientSocket)
        #expect(try RegistrationTests.request(client, account: RegistrationTests.other)["status"] == "approved")
        // `owner list`: whether each owner could sign now; exit status 1 when one could not.
        func listed() throws -> (status: Int32, owner: JSONValue?, others: [JSONValue]) {
            let run = try Command.run(Command.sessionAgent, ["owner", "list", "--socket", agent.controlSocket, "--json"])
            let owners = (try? JSONValue(parsing: run.stdout))?.arrayValue ?? []
            return (run.status, owners.first { $0["address"]?.stringValue == address.checksummed }, owners.filter { $0["address"]?.stringValue != address.checksummed })
        }
        var list = try listed()
        #expect(list.status == 0 && list.owner?["ready"] == .bool(true) && list.others.count == 1, "\(list)")

        // The token is deleted: a clear error, the agent keeps serving, and it works again once
        // the token is back (after a restart too: the registration is kept).
        let away = try hsm.unplug(directory)
        do {
            _ = try RegistrationTests.request(client, account: RegistrationTests.other)
            Issue.record("approved with the token gone")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "owner_unavailable" && e.message.contains(token), "\(e)") }
        #expect(try client.call("agent_info")["version"] == "0.1.0")
        list = try listed()
        #expect(list.status == 1 && list.owner?["ready"] == .bool(false) && list.owner?["reason"] == "owner_unavailable", "\(list)")
        #expect(list.owner?["problem"]?.stringValue?.contains(token) == true && list.others.allSatisfy { $0["ready"] == .bool(true) }, "\(list)")
        try hsm.plugIn(away, as: directory)
        #expect(try listed().owner?["ready"] == .bool(true))
        #expect(try RegistrationTests.request(client, account: RegistrationTests.other)["status"] == "approved")
        // A PIN file that cannot be read is caught as well, before a request needs it.
        try FileManager.default.moveItem(atPath: pinFile, toPath: pinFile + ".moved")
        list = try listed()
        #expect(list.status == 1 && list.owner?["reason"] == "secret_needed" && list.owner?["problem"]?.stringValue?.contains(pinFile) == true, "\(list)")
        try FileManager.default.moveItem(atPath: pinFile + ".moved", toPath: pinFile)
        // So is an empty one (a truncated file, a credential systemd did not pass), before it costs a try.
        try writeSecretFile("\n", pinFile)
        list = try listed()
        #expect(list.status == 1 && list.owner?["reason"] == "secret_needed" && list.owner?["problem"]?.stringValue?.contains("is empty") == true, "\(list)")
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        agent.stop()
        try agent.start()
        #expect(try RegistrationTests.request(try AgentClient(path: agent.clientSocket), account: RegistrationTests.other)["status"] == "approved")

        // A URI naming no key on a present token (the keys it shows named), and a module that
        // does not exist.
        for (uri, expected) in [("pkcs11:token=\(token);object=nothing?module-path=\(module)",
                                 "no EC public key matches pkcs11:token=\(token);object=nothing?module-path=\(module); the token shows \"owner\" id=%0A (\(address.checksummed))"),
                                ("pkcs11:token=\(token);object=owner?module-path=/nonexistent/pkcs11.so", "pkcs11_modules")] {
            let result = try Command.run(Command.sessionAgent, ["owner", "add", uri, "--socket", agent.controlSocket])
            #expect(result.status == 1 && result.stderr.contains(expected), "\(result.stderr)")
        }
    }

    /// A token in another process, set up as the README says: `p11-kit server` where the token
    /// is, p11-kit-client.so in the agent. A server that stops answering fails the approval after
    /// `pkcs11_timeout` (not the default minute) while the agent serves other calls; a server
    /// that stops is the token going away; once the server answers again, or is back, requests
    /// are approved again.
    @Test func aTokenBehindP11KitServerThatHangsOrStops() throws {
        let (_, address, pinFile) = try tokenWithKey()
        let (socket, served, environment) = try serveToken()
        var server = served
        defer { server.stop() }
        let agent = try AgentProcess(rules: "default = \"approve\"", extraConfig: "pkcs11_timeout = \"1s\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(SoftHSM.p11KitClient)"
            pin_file = "\(pinFile)"
            """, address: address.checksummed), environment: environment)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        _ = try SocketTests.requestSession(client)
        func refused(_ expected: String) throws {
            do {
                _ = try SocketTests.requestSession(client)
                Issue.record("approved while the server was away")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == "owner_unavailable" && e.message.contains(expected), "\(e)") }
        }

        server.freeze()
        try refused("did not answer within 1 s")
        try refused("has not answered a call for over 1 s")
        #expect(try client.call("agent_info")["version"] == "0.1.0")
        server.thaw()
        // The stuck call returns once the server runs again; until then requests fail at once.
        var approved = false
        for _ in 0..<100 where !approved {
            do { approved = try !SocketTests.requestSession(client).isEmpty } catch is AgentClient.RemoteError { usleep(50_000) }
        }
        #expect(approved)

        server.stop()
        try refused(token)
        server = try hsm.serve(token: token, socket: socket)
        _ = try SocketTests.requestSession(client)
        #expect(!agent.logs.contains(SoftHSM.userPIN))
    }

    /// `owner list`, as monitoring runs it, answers within seconds while a token's server hangs
    /// (the module's own timeout is the default minute): the owner is not ready, having not
    /// answered within 5 s, and is ready again once the server runs.
    @Test(.timeLimit(.minutes(1))) func ownerListAnswersWhileTheHSMHangs() throws {
        let (_, address, pinFile) = try tokenWithKey()
        let (_, server, environment) = try serveToken()
        defer { server.stop() }
        let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(SoftHSM.p11KitClient)"
            pin_file = "\(pinFile)"
            address = "\(address.checksummed)"
            """, address: address.checksummed), environment: environment)
        try agent.start()
        func owner() throws -> JSONValue? { try listedOwner(address, by: agent).owner }
        #expect(try owner()?["ready"] == .bool(true))
        server.freeze()
        let hung = try owner()
        server.thaw()
        #expect(hung?["ready"] == .bool(false) && hung?["problem"]?.stringValue?.contains("did not answer within 5 s") == true, "\(String(describing: hung))")
        let deadline = Date().addingTimeInterval(20)
        while try owner()?["ready"] != .bool(true), Date() < deadline { _ = poll(nil, 0, 100) }
        #expect(try owner()?["ready"] == .bool(true))
    }

    /// What keeps an owner from signing is in the journal from the start: here a PIN file that
    /// is not there, and a token that is not there. Nothing waits for a first approval to fail.
    @Test func anOwnerThatCannotSignIsNamedInTheJournalAtStart() throws {
        let (_, address, _) = try tokenWithKey()
        let missing = hsm.directory.appendingPathComponent("no-such-pin-\(token)").path
        let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(SoftHSM.systemModule!)"
            pin_file = "\(missing)"
            address = "\(address.checksummed)"
            """, address: address.checksummed), environment: hsm.environment)
        try agent.start()
        try agent.waitForLog("owner \(address.checksummed) (pkcs11 pkcs11:token=\(token)")
        #expect(agent.logs.contains("cannot sign now") && agent.logs.contains(missing), "\(agent.logs)")
        agent.stop()

        try writeSecretFile(SoftHSM.userPIN, missing)
        let config = agent.directory.appendingPathComponent("session-agent.toml")
        try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "token=\(token);", with: "token=\(token)-absent;")
            .write(to: config, atomically: true, encoding: .utf8)
        try agent.start()
        try agent.waitForLog("(pkcs11 pkcs11:token=\(token)-absent")
        #expect(agent.logs.contains("cannot sign now"), "\(agent.logs)")
        #expect(!agent.logs.contains(SoftHSM.userPIN))
    }

    /// The PIN in the agent's environment (`pin_env`), as a systemd unit's `Environment=` or a
    /// container's secret gives it: the agent logs in with it and never shows it. A variable that
    /// is not set, or set empty, is named by `owner list` and by the approval that fails, before
    /// it costs the token a try.
    @Test func aPINFromTheEnvironmentSignsAndAMissingOneIsNamed() throws {
        let (_, address, _) = try tokenWithKey()
        let variable = "SESSION_AGENT_TEST_TOKEN_PIN"
        func agent(pin: String?) throws -> AgentProcess {
            var environment = hsm.environment
            environment[variable] = pin
            let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
                pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(SoftHSM.systemModule!)"
                pin_env = "\(variable)"
                """, address: address.checksummed), environment: environment)
            try agent.start()
            return agent
        }
        let unattended = try agent(pin: SoftHSM.userPIN)
        #expect(try listedOwner(address, by: unattended).owner?["ready"] == .bool(true))
        #expect(try AgentClient(path: unattended.clientSocket).call("session_request", JSONObject(["request": SocketTests.example]))["status"] == "approved")
        #expect(unattended.logs.contains("approved (rules: default)") && !unattended.logs.contains(SoftHSM.userPIN), "\(unattended.logs)")

        for (pin, problem) in [(nil, "the environment variable \(variable) (the PIN) is not set"), ("", "the environment variable \(variable) is empty")] {
            let missing = try agent(pin: pin)
            let listed = try listedOwner(address, by: missing)
            #expect(listed.status == 1 && listed.owner?["reason"] == "secret_needed" && listed.owner?["problem"]?.stringValue?.contains(problem) == true, "\(listed)")
            do {
                _ = try AgentClient(path: missing.clientSocket).call("session_request", JSONObject(["request": SocketTests.example]))
                Issue.record("approved without a PIN")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == "secret_needed" && e.message.contains(problem), "\(e)") }
        }
        // No login was tried on the token: it shows no failed try (SoftHSM sets "user PIN count low" at one).
        let flags = try hsm.tool("pkcs11-tool", ["--module", SoftHSM.systemModule!, "--list-token-slots"])
        #expect(flags.contains("token flags") && !flags.contains("user PIN count low"), "\(flags)")
    }

    /// A stopping agent finalizes its modules (C_Finalize, which ends their sessions and
    /// logins), so a network HSM frees them at once.
    @Test func aStoppingAgentFinalizesItsModules() throws {
        let (_, address, pinFile) = try tokenWithKey()
        let marker = hsm.directory.appendingPathComponent("finalized-\(token)").path
        let module = try CModule.markingFinalize(in: hsm.directory, real: SoftHSM.systemModule!, marker: marker)
        let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(module)"
            pin_file = "\(pinFile)"
            """, address: address.checksummed), environment: hsm.environment)
        try agent.start()
        _ = try SocketTests.requestSession(try AgentClient(path: agent.clientSocket))
        #expect(!FileManager.default.fileExists(atPath: marker))
        agent.stop()
        #expect(FileManager.default.fileExists(atPath: marker), "the module was not finalized")
    }

    /// A token that answers CKR_OK with a wrong signature (a bit of s flipped) gets the request
    /// an `owner_failed` error: no session is enabled and no enable signature leaves the agent.
    /// Once the token signs soundly again, the same request is approved.
    @Test func aWrongSignatureFromTheTokenEnablesNoSession() throws {
        let (_, address, pinFile) = try tokenWithKey()
        let trigger = hsm.directory.appendingPathComponent("flip-\(token)").path
        let module = try CModule.faultyInSign(.flippedBit, in: try hsm.subdirectory("flip"), real: SoftHSM.systemModule!, trigger: trigger)
        let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(module)"
            pin_file = "\(pinFile)"
            """, address: address.checksummed), environment: hsm.environment)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket), control = try AgentClient(path: agent.controlSocket)
        #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
        do {
            _ = try SocketTests.requestSession(client)
            Issue.record("approved with a signature that does not recover to the owner")
        } catch let e as AgentClient.RemoteError {
            #expect(e.reason == "owner_failed" && e.message.contains("does not recover to \(address.checksummed)"), "\(e)")
        }
        #expect(try control.call("sessions_list").arrayValue?.isEmpty == true)
        try FileManager.default.removeItem(atPath: trigger)
        let sessionId = try SocketTests.requestSession(client)
        #expect(try control.call("sessions_list").arrayValue?.compactMap { $0["sessionId"]?.stringValue } == [sessionId])
    }

    /// A vendor module run as systemd/system/session-agent-pkcs11.service runs it (its ExecStart
    /// and ExecStartPost, and the address from the drop-in systemd/pkcs11-server.conf) is outside
    /// the agent: when it crashes (abort in C_Sign) it takes only the server's process for that
    /// connection, the agent answers `owner_unavailable` and serves on, and the next request after
    /// the fault is gone is approved. Loaded into the agent, the same module would have ended it.
    @Test(.timeLimit(.minutes(1)), .enabled(if: getuid() == 0, readingTheAgentsMaps)) func aModuleThatCrashesUnderTheModuleServerUnitLeavesTheAgentServing() throws {
        let (_, address, pinFile) = try tokenWithKey()
        let trigger = hsm.directory.appendingPathComponent("crash-\(token)").path
        let module = try CModule.faultyInSign(.abort, in: hsm.directory, real: SoftHSM.systemModule!, trigger: trigger)
        // %t, the runtime directory systemd fills in, and the one it makes for the unit.
        let runtime = hsm.directory.appendingPathComponent("run-\(token)").path
        try FileManager.default.createDirectory(atPath: runtime + "/session-agent-pkcs11", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        func unitLine(_ file: String, _ key: String) throws -> String {
            let text = try String(contentsOf: Oracle.packageRoot.appendingPathComponent(file), encoding: .utf8)
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(key + "=") }, "\(file) has no \(key)=")
            return line.dropFirst(key.count + 1).replacingOccurrences(of: "%t", with: runtime).replacingOccurrences(of: "${PKCS11_MODULE}", with: module)
        }
        let unit = "systemd/system/session-agent-pkcs11.service"
        let start = try unitLine(unit, "ExecStart").split(separator: " ").map(String.init)
        let socket = try #require(start.firstIndex(of: "--name").map { start[$0 + 1] })
        let server = try P11KitServer(start, socket: socket, environment: hsm.environment)
        defer { server.stop() }
        // ExecStartPost: /bin/sh -c '…', which returns once the socket is there.
        let post = try unitLine(unit, "ExecStartPost")
        let script = try #require(post.split(separator: "'").dropFirst().first.map(String.init))
        #expect(try Command.run(URL(fileURLWithPath: "/usr/bin/timeout"), ["20", "/bin/sh", "-c", script]).status == 0)
        var environment = hsm.environment
        let serverAddress = try unitLine("systemd/pkcs11-server.conf", "Environment")
        #expect(serverAddress == "P11_KIT_SERVER_ADDRESS=unix:path=\(socket)")
        environment["P11_KIT_SERVER_ADDRESS"] = String(serverAddress.dropFirst("P11_KIT_SERVER_ADDRESS=".count))
        let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(SoftHSM.p11KitClient)"
            pin_file = "\(pinFile)"
            """, address: address.checksummed), environment: environment)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        _ = try SocketTests.requestSession(client)

        #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
        do {
            _ = try SocketTests.requestSession(client)
            Issue.record("approved by a module that crashed")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "owner_unavailable" && e.message.contains("C_Sign failed"), "\(e)") }
        #expect(try client.call("agent_info")["version"] == "0.1.0")
        try FileManager.default.removeItem(atPath: trigger)
        _ = try SocketTests.requestSession(client)
        // The vendor module was never in the agent's memory; p11-kit's client was.
        let pid = try #require(agent.process?.processIdentifier)
        let maps = try #require(procFile("/proc/\(pid)/maps"))
        #expect(maps.contains("p11-kit-client.so") && !maps.contains(module) && !maps.contains("libsofthsm2"))
    }

    /// Why the tests that read which libraries an agent loaded (/proc/PID/maps) skip without root.
    static let readingTheAgentsMaps: Comment = "needs root to read the agent's /proc/PID/maps (the agent is not dumpable, which closes it to its own user)"

    /// Loading a module runs its code inside the agent, so `owner add` may name only modules the
    /// configuration or p11-kit names; any other is refused before it is loaded. Paths are
    /// compared as files, so a symlink to an allowed module is that module.
    @Test(.enabled(if: getuid() == 0, readingTheAgentsMaps)) func ownersAddedAtRunTimeUseOnlyModulesTheConfigurationNames() throws {
        let (_, address, pinFile) = try tokenWithKey()
        let copy = try hsm.privateModule()
        let link = copy + "-link.so"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: copy)
        for allowed in [false, true] {
            let agent = try AgentProcess(rules: "default = \"approve\"", extraConfig: allowed ? "pkcs11_modules = [\"\(copy)\"]" : "", environment: hsm.environment)
            try agent.start()
            defer { agent.stop() }
            let added = try Command.run(Command.sessionAgent, ["owner", "add", "pkcs11:token=\(token);object=owner?module-path=\(link)", "--pin-file", pinFile,
                                                               "--socket", agent.controlSocket, "--json"])
            let pid = try #require(agent.process?.processIdentifier)
            let maps = try #require(procFile("/proc/\(pid)/maps"), "\(agent.logs)")
            if allowed {
                #expect(added.status == 0 && (try? JSONValue(parsing: added.stdout))?["address"]?.stringValue == address.checksummed, "\(added.stdout) \(added.stderr)")
                #expect(maps.contains(copy))
                // The module taken out of the configuration is out of use at the next start too: the
                // owner stays listed, saying why, is never loaded, and can be removed.
                agent.stop()
                let config = agent.directory.appendingPathComponent("session-agent.toml")
                try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "pkcs11_modules = [\"\(copy)\"]", with: "")
                    .write(to: config, atomically: true, encoding: .utf8)
                try agent.start()
                let (status, owner) = try listedOwner(address, by: agent)
                #expect(status == 1 && owner?["ready"] == .bool(false) && owner?["reason"] == "owner_failed", "\(String(describing: owner))")
                #expect(owner?["problem"]?.stringValue?.contains("pkcs11_modules") == true, "\(String(describing: owner))")
                try agent.waitForLog("the owner \(address.checksummed) added at run time is not used")
                let restarted = try #require(agent.process?.processIdentifier)
                #expect(try #require(procFile("/proc/\(restarted)/maps"), "\(agent.logs)").contains(copy) == false, "the module left out was loaded")
                let removed = try Command.run(Command.sessionAgent, ["owner", "remove", address.checksummed, "--socket", agent.controlSocket])
                #expect(removed.status == 0, "\(removed.stderr)")
            } else {
                #expect(added.status == 1 && added.stderr.contains("pkcs11_modules"), "\(added.stderr)")
                #expect(!maps.contains(copy), "the refused module was loaded")
            }
        }
    }

    /// A token that shows its keys only after a login (CloudHSM): `token list --login` shows
    /// them, and `owner add` asks for the PIN once (here on its standard input) when no PIN file
    /// is named; the agent keeps the login, not the PIN.
    @Test func aKeyShownOnlyAfterALoginIsListedAndAdded() throws {
        try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "owner", id: "0a", hiddenBeforeLogin: true)
        let address = Address(publicKey: Array(try hsm.publicPoint(token: token, id: "0a", pin: SoftHSM.userPIN).dropFirst()))
        let module = SoftHSM.systemModule!
        let pinFile = hsm.directory.appendingPathComponent("pin-\(token)").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        func listed(_ login: [String]) throws -> [JSONValue] {
            let run = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token)", "--module", module, "--json"] + login, environment: hsm.environment)
            #expect(run.status == 0, "\(run.stderr)")
            let tokens = (try JSONValue(parsing: run.stdout).arrayValue ?? []).flatMap { $0["tokens"]?.arrayValue ?? [] }
            return tokens.first { $0["label"]?.stringValue == token }?["keys"]?.arrayValue ?? []
        }
        #expect(try listed([]).isEmpty)
        #expect(try listed(["--login", "--pin-file", pinFile]).map { $0["address"]?.stringValue } == [address.checksummed])
        let unanswered = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token)", "--module", module, "--login"], stdin: [], environment: hsm.environment)
        #expect(unanswered.status == 1 && unanswered.stdout.contains("token \"\(token)\": no PIN was given for token \"\(token)\": standard input ended before a PIN; give it with --pin-file\n"),
                "\(unanswered.stdout) \(unanswered.stderr)")
        // The prompt's line ends before anything else is printed.
        #expect(unanswered.stderr.hasPrefix("PIN for token \"\(token)\"") && unanswered.stderr.hasSuffix(": \n"), "\(unanswered.stderr)")

        let agent = try AgentProcess(rules: "default = \"approve\"", environment: hsm.environment)
        try agent.start()
        let uri = "pkcs11:token=\(token);object=owner?module-path=\(module)"
        let refused = try Command.run(Command.sessionAgent, ["owner", "add", uri, "--socket", agent.controlSocket], stdin: [])
        #expect(refused.status == 1 && refused.stderr.contains("without a login"), "\(refused.stderr)")
        let added = try Command.run(Command.sessionAgent, ["owner", "add", uri, "--socket", agent.controlSocket, "--json"], stdin: Array((SoftHSM.userPIN + "\n").utf8))
        #expect(added.status == 0, "\(added.stderr)")
        #expect(try JSONValue(parsing: added.stdout)["address"]?.stringValue == address.checksummed)
        // With the PIN given once, what the token says of the private key is read and reported.
        #expect(try JSONValue(parsing: added.stdout)["custody"] == "never_left", "\(added.stdout)")
        let owners = try AgentClient(path: agent.controlSocket).call("owners_list").arrayValue ?? []
        #expect(owners.contains { $0["address"]?.stringValue == address.checksummed && $0["ready"] == .bool(true) }, "\(owners)")
        #expect(!agent.logs.contains(SoftHSM.userPIN))
    }

    /// A URI naming a token the module does not show says which tokens it shows (a label
    /// mistyped is the usual cause): none, one, or the first five and how many more; `token
    /// list` says so too.
    @Test func aTokenNotFoundIsNamedBesideTheTokensShown() throws {
        let module = SoftHSM.systemModule!, pinFile = hsm.directory.appendingPathComponent("pin").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        func generate() throws -> String {
            let run = try Command.run(Command.sessionAgent, ["owner", "generate", "--token", "pkcs11:token=\(token)-typo", "--module", module, "--pin-file", pinFile],
                                      environment: hsm.environment)
            #expect(run.status == 1)
            return run.stderr
        }
        let absent = "no token matching pkcs11:token=\(token)-typo is present in \(module)"
        #expect(try generate().contains("\(absent) (it shows no token)"))
        try hsm.initToken(token)
        #expect(try generate().contains("\(absent) (it shows \"\(token)\")"))
        let listed = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token)-typo", "--module", module], environment: hsm.environment)
        #expect(listed.status == 1 && listed.stderr.contains("no token matches pkcs11:token=\(token)-typo (the module shows \"\(token)\")"), "\(listed)")
        for i in 1...6 { try hsm.initToken("\(token)-\(i)") }
        let many = try generate()
        let shown = many.components(separatedBy: "\(absent) (it shows ").last?.components(separatedBy: " and 2 more)").first
        #expect(shown?.split(separator: ", ").count == 5 && shown?.split(separator: ", ").allSatisfy { $0.hasPrefix("\"\(token)") } == true, "\(many)")
    }

    /// `token list` shows a slot whose token the module cannot describe with its error, beside
    /// the tokens it can, and exits 1; asked for a token that can be read it exits 0, and asked
    /// for one that cannot, it names the slot.
    @Test func aSlotThatCannotBeReadIsListedWithItsError() throws {
        let (_, address, _) = try tokenWithKey()
        let broken = "\(token)-broken"
        try hsm.initToken(broken)
        let module = try CModule.unreadableToken(broken, in: try hsm.subdirectory("unreadable"), real: SoftHSM.systemModule!)
        let all = try Command.run(Command.sessionAgent, ["token", "list", "--module", module], environment: hsm.environment)
        #expect(all.status == 1 && all.stdout.contains(address.checksummed), "\(all)")
        #expect(all.stdout.contains("cannot be read (C_GetTokenInfo failed: CKR_FUNCTION_FAILED)") && !all.stdout.contains("no token present"), "\(all)")
        let json = try Command.run(Command.sessionAgent, ["token", "list", "--module", module, "--json"], environment: hsm.environment)
        let listed = try JSONValue(parsing: json.stdout).arrayValue?.first?["tokens"]?.arrayValue ?? []
        #expect(json.status == 1 && listed.contains { $0["label"]?.stringValue == token }, "\(json)")
        #expect(listed.compactMap { $0["error"]?.stringValue } == ["C_GetTokenInfo failed: CKR_FUNCTION_FAILED"], "\(json)")
        let readable = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token)", "--module", module], environment: hsm.environment)
        #expect(readable.status == 0 && readable.stdout.contains(address.checksummed), "\(readable)")
        let named = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(broken)", "--module", module], environment: hsm.environment)
        #expect(named.status == 1 && named.stderr.contains("no token matches pkcs11:token=\(broken)")
                && named.stderr.contains("cannot be read (C_GetTokenInfo failed: CKR_FUNCTION_FAILED)"), "\(named)")

        // A token taken out between the module describing its slot and the token leaves the slot empty.
        let taken = try CModule.unreadableToken(broken, answering: "CKR_TOKEN_NOT_PRESENT", in: try hsm.subdirectory("taken-out"), real: SoftHSM.systemModule!)
        let emptied = try Command.run(Command.sessionAgent, ["token", "list", "--module", taken], environment: hsm.environment)
        #expect(emptied.status == 0 && emptied.stdout.contains(address.checksummed) && emptied.stdout.contains("\" is empty\n") && !emptied.stdout.contains("cannot be read"), "\(emptied)")
    }

    /// A URI that names no token works while there is one, but a second token would make it
    /// ambiguous, or point it at another key: what `owner generate` prints and what `owner add`
    /// registers name the token by label and serial.
    @Test func aURINamingNoTokenIsPinnedToTheToken() throws {
        let (_, address, pinFile) = try tokenWithKey()
        let module = SoftHSM.systemModule!
        let listed = try JSONValue(parsing: try Command.run(Command.sessionAgent, ["token", "list", "--module", module, "--json"], environment: hsm.environment).stdout)
        let serial = try #require(listed.arrayValue?.first?["tokens"]?.arrayValue?.first?["serial"]?.stringValue)
        let generated = try Command.run(Command.sessionAgent, ["owner", "generate", "--token", "pkcs11:", "--module", module, "--pin-file", pinFile, "--json"],
                                        environment: hsm.environment)
        #expect(generated.status == 0, "\(generated.stderr)")
        let made = try PKCS11URI(try #require(try JSONValue(parsing: generated.stdout)["uri"]?.stringValue))
        #expect(made.token == token && made.serial == serial, "\(made)")

        let agent = try AgentProcess(rules: "default = \"approve\"", environment: hsm.environment)
        try agent.start()
        let added = try Command.run(Command.sessionAgent, ["owner", "add", "pkcs11:object=owner?module-path=\(module)", "--pin-file", pinFile,
                                                           "--socket", agent.controlSocket, "--json"])
        #expect(added.status == 0, "\(added.stderr)")
        let registered = try JSONValue(parsing: added.stdout)
        #expect(registered["address"]?.stringValue == address.checksummed)
        let location = try PKCS11URI(try #require(registered["location"]?.stringValue))
        #expect(location.token == token && location.serial == serial && location.object == "owner", "\(location)")
    }

    /// A token whose policy overrides the template `owner generate` gives does not have its key
    /// passed off as one that never leaves it: the command says what the token made. A key it
    /// keeps from CKM_ECDSA is no owner key: the command fails and removes the pair again, so
    /// the label is free for another try.
    @Test func aKeyTheTokenMadeOtherwiseThanAskedIsShownAsMade() throws {
        let (_, _, pinFile) = try tokenWithKey()
        func generate(_ module: String, label: String = "overridden", json: Bool = false) throws -> CommandResult {
            try Command.run(Command.sessionAgent, ["owner", "generate", "--token", "pkcs11:token=\(token)", "--module", module, "--pin-file", pinFile,
                                                   "--label", label] + (json ? ["--json"] : []), environment: hsm.environment)
        }
        func listed(_ module: String) throws -> CommandResult {
            try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token);object=overridden", "--module", module, "--login", "--pin-file", pinFile],
                            environment: hsm.environment)
        }
        let restricting = try CModule.overridingKeyTemplates(in: try hsm.subdirectory("overriding"), real: SoftHSM.systemModule!)
        let refused = try generate(restricting)
        #expect(refused.status == 1 && refused.stderr.contains("the token made a key that cannot sign as an owner, its policy overriding what was asked: "
                                                               + "its CKA_ALLOWED_MECHANISMS (CKM_ECDSA_SHA256) leave out CKM_ECDSA")
                && refused.stderr.contains("the key pair was removed again"), "\(refused.stdout) \(refused.stderr)")
        let gone = try listed(SoftHSM.systemModule!)
        #expect(gone.status == 1 && gone.stderr.contains("no key matches"), "\(gone.stdout) \(gone.stderr)")
        // A token that lets no key be removed has the person told what is left to remove.
        let keeping = try CModule.overridingKeyTemplates(in: try hsm.subdirectory("keeping"), real: SoftHSM.systemModule!, keepingKeys: true)
        let kept = try generate(keeping, label: "kept")
        #expect(kept.status == 1 && kept.stderr.contains("cannot sign as an owner") && kept.stderr.contains("removing it failed too (C_DestroyObject failed: CKR_ACTION_PROHIBITED): "
                                                                                                          + "remove the key pair with id "), "\(kept.stdout) \(kept.stderr)")

        let exporting = try CModule.overridingKeyTemplates(in: try hsm.subdirectory("exporting"), real: SoftHSM.systemModule!, restrictingMechanisms: false)
        let generated = try generate(exporting)
        #expect(generated.status == 0, "\(generated.stderr)")
        #expect(generated.stdout.contains("\nprivate key: CAN BE READ OUT of the token (extractable or not sensitive); an owner key that can leave its token is worth little as one\n"),
                "\(generated.stdout)")
        #expect(try listed(SoftHSM.systemModule!).status == 0)
        let made = try JSONValue(parsing: try generate(exporting, label: "overridden-too", json: true).stdout)
        #expect(made["custody"] == "exportable" && made["cannotSign"] == .null, "\(made)")
    }

    @Test func aWrongPINFailsTheApprovalClearly() throws {
        let (_, address, pinFile) = try tokenWithKey()
        try writeSecretFile(SoftHSM.wrongPIN, pinFile)
        let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(SoftHSM.systemModule!)"
            pin_file = "\(pinFile)"
            """, address: address.checksummed), environment: hsm.environment)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        // `owner list`, as monitoring runs it: ready until the token has refused the file's PIN,
        // then not (every approval would fail), and ready again once the file is mended.
        func owner() throws -> (status: Int32, owner: JSONValue?) { try listedOwner(address, by: agent) }
        #expect(try owner().status == 0)
        for expected in ["wrong PIN", "not offering it again"] {
            do {
                _ = try client.call("session_request", JSONObject(["request": SocketTests.example]))
                Issue.record("approved with a wrong PIN")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == "wrong_secret" && e.message.contains(expected), "\(e)") }
        }
        let refused = try owner()
        #expect(refused.status == 1 && refused.owner?["reason"] == "wrong_secret", "\(refused)")
        #expect(refused.owner?["problem"]?.stringValue?.contains("rejected this PIN") == true, "\(refused)")
        func request(failsWith expected: String) throws {
            do {
                _ = try AgentClient(path: agent.clientSocket).call("session_request", JSONObject(["request": SocketTests.example]))
                Issue.record("approved with a wrong PIN")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == "wrong_secret" && e.message.contains(expected), "\(e)") }
        }
        // Restarted, the agent does not offer the file's PIN again either (a restart loop would
        // spend a try each time): the store keeps its fingerprint while the token says no login
        // has succeeded since a wrong PIN (CKF_USER_PIN_COUNT_LOW). The journal says so at start.
        agent.stop()
        try agent.start()
        try agent.waitForLog("in an earlier run of the agent")
        try request(failsWith: "in an earlier run of the agent")
        // A login that succeeds elsewhere (the operator's, with pkcs11-tool) makes that record
        // stale: the file's PIN is tried again.
        _ = try hsm.tool("pkcs11-tool", ["--module", SoftHSM.systemModule!, "--token-label", token, "--login", "--pin", SoftHSM.userPIN, "--list-objects"])
        try request(failsWith: "wrong PIN for token")
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        #expect(try owner().status == 0)
        #expect(try AgentClient(path: agent.clientSocket).call("session_request", JSONObject(["request": SocketTests.example]))["status"] == "approved")
        // The operator's journal says what happened, without the PINs.
        let logs = agent.logs
        #expect(logs.contains("failed (rules: default): owner \(address) could not sign: wrong PIN for token \"\(token)\""), "\(logs)")
        #expect(logs.contains("approved (rules: default)") && logs.contains("; session sess-"), "\(logs)")
        #expect(!logs.contains(SoftHSM.wrongPIN) && !logs.contains(SoftHSM.userPIN))
    }

    /// A token that does not show failed tries (no CKF_USER_PIN_COUNT_LOW), as AWS CloudHSM, which
    /// locks a user after five: a PIN file it rejected is not offered again by a restarted agent
    /// for ten minutes, so that an agent restarting in a loop cannot lock it; then it is.
    @Test func aTokenThatHidesFailedTriesIsNotLockedByRestarts() throws {
        let (_, address, pinFile) = try tokenWithKey()
        try writeSecretFile(SoftHSM.wrongPIN, pinFile)
        let module = try CModule.hidingFailedTries(in: try hsm.subdirectory("hiding"), real: SoftHSM.systemModule!)
        let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(module)"
            pin_file = "\(pinFile)"
            address = "\(address.checksummed)"
            """, address: address.checksummed), environment: hsm.environment)
        func request(failsWith expected: String) throws {
            do {
                _ = try AgentClient(path: agent.clientSocket).call("session_request", JSONObject(["request": SocketTests.example]))
                Issue.record("approved with a wrong PIN")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == "wrong_secret" && e.message.contains(expected), "\(e)") }
        }
        try agent.start()
        try request(failsWith: "wrong PIN for token")
        for _ in 0..<3 {
            agent.stop()
            try agent.start()
            try request(failsWith: "the token does not show whether a login succeeded since; it is offered again 10 minutes after that")
        }
        // Ten minutes on (the record made older, the agent stopped): the file's PIN is tried again.
        agent.stop()
        try DatabaseQueue(path: agent.directory.appendingPathComponent("data/store.sqlite").path).write { db in
            try db.execute(sql: "UPDATE rejected_pins SET at = at - 600")
        }
        try agent.start()
        try request(failsWith: "wrong PIN for token")
        #expect(!agent.logs.contains(SoftHSM.wrongPIN))
    }

    /// A person approving at `session-agent approve` types the token's PIN: a wrong one is an
    /// error saying so (one try spent on the token), the request stays pending, and the PIN typed
    /// on the second try approves it. The login is then kept: the next approval asks nothing.
    @Test func theApproverMayTypeTheTokenPINAgain() throws {
        let (_, address, _) = try tokenWithKey()
        let agent = try AgentProcess(rules: "default = \"ask\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(SoftHSM.systemModule!)"
            """, address: address.checksummed), environment: hsm.environment)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        func control() throws -> AgentClient { try AgentClient(path: agent.controlSocket) }
        func approve(typing: String) throws -> (id: String, output: String, prompts: String) {
            let id = try #require(try client.call("session_request", JSONObject(["request": SocketTests.example]))["id"]?.stringValue)
            let run = try Command.run(Command.sessionAgent, ["approve", "--once", "--socket", agent.controlSocket], stdin: Array(typing.utf8))
            #expect(run.status == 0, "\(run.stderr)")
            return (id, run.stdout, run.stderr)
        }
        let serial = try #require(try control().call("owners_list").arrayValue?.first { $0["address"]?.stringValue == address.checksummed }?["asks"]?.stringValue)
        #expect(serial.hasPrefix("PIN for token \"\(token)\", serial "), "\(serial)")
        let first = try approve(typing: "y\n\(SoftHSM.wrongPIN)\ny\n\(SoftHSM.userPIN)\n")
        #expect(first.prompts.contains("PIN for token \"\(token)\", serial "), "\(first.prompts)")
        #expect(first.output.contains("wrong PIN for token \"\(token)\"") && first.output.contains("still pending"), "\(first.output)")
        #expect(first.output.contains("\(first.id): approved"), "\(first.output)")
        // Logged in now: the next approval asks for nothing but the yes.
        let second = try approve(typing: "y\n")
        #expect(second.output.contains("\(second.id): approved") && !second.prompts.contains("PIN"), "\(second.output) \(second.prompts)")
        #expect(agent.logs.contains("request \(first.id): owner \(address) could not sign: wrong PIN") && agent.logs.contains("still pending"), "\(agent.logs)")
        #expect(!agent.logs.contains(SoftHSM.wrongPIN) && !agent.logs.contains(SoftHSM.userPIN))
    }

    /// A token in a reader with a keypad (a module in front of SoftHSM whose keypad reads a file):
    /// `owner list` says its PIN is asked on the device, and `session-agent approve` asks the
    /// person for nothing but the yes, tells them to enter the PIN on the reader, and approves.
    @Test func anApproverWithAKeypadReaderTypesNoPINAtTheTerminal() throws {
        let (_, address, _) = try tokenWithKey()
        let directory = try hsm.subdirectory("keypad")
        let typed = directory.appendingPathComponent("typed").path
        try SoftHSM.userPIN.write(toFile: typed, atomically: true, encoding: .utf8)
        let module = try CModule.keypad(in: directory, real: SoftHSM.systemModule!, typed: typed)
        let agent = try AgentProcess(rules: "default = \"ask\"", owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(module)"
            address = "\(address.checksummed)"
            """, address: address.checksummed), environment: hsm.environment)
        try agent.start()
        let tokens = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token)", "--module", module], environment: hsm.environment)
        #expect(tokens.status == 0 && tokens.stdout.contains("[PIN on the reader's keypad]"), "\(tokens.stdout) \(tokens.stderr)")
        let listed = try #require(try AgentClient(path: agent.controlSocket).call("owners_list").arrayValue?.first { $0["address"]?.stringValue == address.checksummed })
        #expect(listed["onDevice"] == .bool(true) && listed["asks"]?.stringValue?.contains("on the reader's keypad") == true, "\(listed)")
        let id = try #require(try AgentClient(path: agent.clientSocket).call("session_request", JSONObject(["request": SocketTests.example]))["id"]?.stringValue)
        let run = try Command.run(Command.sessionAgent, ["approve", "--once", "--socket", agent.controlSocket], stdin: Array("y\n".utf8))
        #expect(run.status == 0 && run.stdout.contains("\(id): approved"), "\(run.stdout) \(run.stderr)")
        #expect(run.stderr.contains("on the reader's keypad: give it on the device when it asks"), "\(run.stderr)")
        #expect(run.stderr.components(separatedBy: "on the reader's keypad").count == 2, "asked for the PIN at the terminal: \(run.stderr)")
        // With no pinentry to tell the person on, the journal says what the approval waited for.
        let waited = agent.logs.split(separator: "\n").first { $0.contains("waiting on a device: Enter the PIN for token \"\(token)\"") }
        #expect(waited?.contains("on the reader's keypad") == true && waited?.contains("request \(id)") == true, "\(agent.logs)")
        #expect(!agent.logs.contains(SoftHSM.userPIN))
    }

    /// The same reader with pinentry as the approval channel, as gpg-agent shows a pinpad's
    /// prompt: once the person approves, a dialog tells them to enter the token's PIN on the
    /// reader's keypad while the reader waits for it, and goes once they have. No PIN is asked
    /// in a dialog.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: PinentryTests.program) || ProcessInfo.processInfo.environment["CI"] != nil, "pinentry-curses is not installed"))
    func pinentryTellsThePersonToEnterThePINOnTheKeypad() throws {
        let (_, address, _) = try tokenWithKey()
        let directory = try hsm.subdirectory("keypad-pinentry")
        let typed = directory.appendingPathComponent("typed").path
        let module = try CModule.keypad(in: directory, real: SoftHSM.systemModule!, typed: typed, waiting: 60)
        let terminal = try PinentryTests.Terminal()
        let agent = try AgentProcess(rules: "default = \"ask\"", extraConfig: """
            pinentry = ["\(PinentryTests.program)", "--ttyname", "\(terminal.slavePath)", "--ttytype", "xterm"]
            """, owner: .init(toml: """
            pkcs11 = "pkcs11:token=\(token);object=owner?module-path=\(module)"
            address = "\(address.checksummed)"
            """, address: address.checksummed), environment: hsm.environment)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        let id = try PinentryTests.ask(client)
        _ = try PinentryTests.approve(on: terminal)

        try terminal.waitFor("keypad")
        try terminal.waitFor(token)
        #expect(!terminal.screen.contains("PIN:"), "a PIN dialog: \(terminal.screen.suffix(600))")
        #expect(PinentryTests.dialogs(on: terminal.slavePath).count == 1)
        #expect(try client.call("session_wait", JSONObject(["id": .string(id), "timeout": JSONValue(0)]))["status"] == "pending")
        // The person types the PIN on the reader.
        try SoftHSM.userPIN.write(toFile: typed, atomically: true, encoding: .utf8)
        let approved = try client.call("session_wait", JSONObject(["id": .string(id), "timeout": JSONValue(20)]))
        #expect(approved["status"] == "approved" && approved["sessionId"]?.stringValue != nil, "\(approved.serialized)")
        let deadline = Date().addingTimeInterval(20)
        while !PinentryTests.dialogs(on: terminal.slavePath).isEmpty && Date() < deadline { usleep(20_000) }
        #expect(PinentryTests.dialogs(on: terminal.slavePath).isEmpty, "the notice is still up")
        #expect(!agent.logs.contains(SoftHSM.userPIN))
    }

    /// The store's state as `agent_info` tells it.
    static func store(_ control: AgentClient) throws -> JSONValue { try control.call("agent_info")["store"] ?? .null }

    /// Waits until `condition` holds (the agent looks for the store's token once a second),
    /// failing with the store's state after 15 s.
    static func until(_ what: String, _ control: AgentClient, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(15)
        while try !condition() {
            guard Date() < deadline else { throw Oracle.Failure(description: "\(what) did not happen; store: \(try store(control))") }
            _ = poll(nil, 0, 50)
        }
    }

    /// The store's data key under a key on a token the agent reaches through `p11-kit server`, as
    /// with the module's own unit. p11-kit 0.24's client passes no AES-GCM, so the token derives
    /// the sealing key. The store opens while the server is there, locks when it stops, and opens
    /// again (store_pin_file) when it is back.
    @Test func aTokenWrappedStoreThroughP11KitServer() throws {
        try hsm.initToken(token)
        let pinFile = hsm.directory.appendingPathComponent("pin-\(token)").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        let (socket, served, environment) = try serveToken()
        var server = served
        defer { server.stop() }
        let agent = try AgentProcess(rules: "default = \"approve\"", extraConfig: "store_pin_file = \"\(pinFile)\"", environment: environment)
        try agent.start()
        let sessionId = try SocketTests.requestSession(try AgentClient(path: agent.clientSocket))
        agent.stop()
        let rewrap = try Command.run(Command.sessionAgent, ["store", "rewrap", "--store", agent.directory.appendingPathComponent("data/store.sqlite").path,
                                                            "--to", "pkcs11:token=\(token);object=store-key?module-path=\(SoftHSM.p11KitClient)", "--pin-file", pinFile,
                                                            "--passphrase-file", agent.directory.appendingPathComponent("store.pass").path], environment: environment)
        #expect(rewrap.status == 0, "\(rewrap.stdout) \(rewrap.stderr)")

        try agent.start()
        let control = try AgentClient(path: agent.controlSocket)
        #expect(try Self.store(control)["protection"] == "pkcs11" && Self.store(control)["locked"] == .bool(false))
        #expect(try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: 0)["mode"] == "ENABLE")
        server.stop()
        try Self.until("the lock after the server stopped", control) { try Self.store(control)["locked"] == .bool(true) }
        server = try hsm.serve(token: token, socket: socket)
        try Self.until("the unlock after the server came back", control) { try Self.store(control)["locked"] == .bool(false) }
        #expect(try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: 1)["mode"] == "USE")
        #expect(!agent.logs.contains(SoftHSM.userPIN))
    }

    /// A store wrapped by a token in a reader with a keypad, and no store_pin_file: nobody is
    /// at the reader as the agent starts, so it starts at once, locked and saying why, rather
    /// than waiting for the reader to give up; `session-agent unlock` then says to enter the PIN
    /// on the reader's keypad, and asks for nothing itself.
    @Test func aStoreWrappedByAKeypadTokenWaitsForAPersonsUnlock() throws {
        let directory = try hsm.subdirectory("keypad-store")
        let typed = directory.appendingPathComponent("typed").path
        let module = try CModule.keypad(in: directory, real: SoftHSM.systemModule!, typed: typed, waiting: 60)
        let (agent, sessionId, _, _) = try agentWithTokenWrappedStore(module: module, storePINFile: false)
        try agent.start()
        #expect(agent.logs.contains("the store stays locked: store_pin_file is not set"), "\(agent.logs)")
        let control = try AgentClient(path: agent.controlSocket)
        #expect(try Self.store(control)["locked"] == .bool(true))
        // The person types the PIN on the reader when they unlock.
        try SoftHSM.userPIN.write(toFile: typed, atomically: true, encoding: .utf8)
        let unlocked = try Command.run(Command.sessionAgent, ["unlock", "--socket", agent.controlSocket], stdin: [])
        #expect(unlocked.status == 0 && unlocked.stderr.contains("on the reader's keypad: give it on the device"), "\(unlocked.stdout) \(unlocked.stderr)")
        #expect(try Self.store(control)["locked"] == .bool(false))
        #expect(try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: 0)["mode"] == "ENABLE")
    }

    /// A token-wrapped store without store_pin_file: `session-agent unlock` asks for the token's
    /// PIN (from the terminal, here standard input). A wrong one leaves the store locked and says
    /// so; the right one opens it.
    @Test func aPersonUnlocksATokenWrappedStoreWithThePIN() throws {
        let (agent, sessionId, _, _) = try agentWithTokenWrappedStore(storePINFile: false)
        try agent.start()
        func unlock(typing pin: String) throws -> CommandResult {
            try Command.run(Command.sessionAgent, ["unlock", "--socket", agent.controlSocket], stdin: Array((pin + "\n").utf8))
        }
        let wrong = try unlock(typing: SoftHSM.wrongPIN)
        #expect(wrong.status == 1 && wrong.stderr.contains("PIN for token \"\(token)\"") && wrong.stderr.contains("wrong PIN"), "\(wrong.stdout) \(wrong.stderr)")
        let control = try AgentClient(path: agent.controlSocket)
        #expect(try Self.store(control)["locked"] == .bool(true))
        let right = try unlock(typing: SoftHSM.userPIN)
        #expect(right.status == 0, "\(right.stdout) \(right.stderr)")
        #expect(try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: 0)["mode"] == "ENABLE")
        #expect(!agent.logs.contains(SoftHSM.userPIN) && !agent.logs.contains(SoftHSM.wrongPIN))
    }

    /// A stopped agent with one session, whose store `store rewrap` then moved from its
    /// passphrase to an AES key on a fresh token (through `module`); store_pin_file, when set,
    /// holds the token's PIN. The URI given names no token: the one recorded names it by label
    /// and serial, so that the tokens the tests add later cannot make it ambiguous.
    func agentWithTokenWrappedStore(module: String = SoftHSM.systemModule!, storePINFile: Bool = true) throws -> (agent: AgentProcess, sessionId: String, token: URL, pinFile: String) {
        let directory = try hsm.initToken(token)
        let pinFile = hsm.directory.appendingPathComponent("pin-\(token)").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        let agent = try AgentProcess(rules: "default = \"approve\"", extraConfig: storePINFile ? "store_pin_file = \"\(pinFile)\"" : "", environment: hsm.environment)
        try agent.start()
        let sessionId = try SocketTests.requestSession(try AgentClient(path: agent.clientSocket))
        agent.stop()
        let rewrap = try Command.run(Command.sessionAgent, ["store", "rewrap", "--store", agent.directory.appendingPathComponent("data/store.sqlite").path,
                                                            "--to", "pkcs11:object=store-key?module-path=\(module)", "--pin-file", pinFile,
                                                            "--passphrase-file", agent.directory.appendingPathComponent("store.pass").path], environment: hsm.environment)
        #expect(rewrap.status == 0 && rewrap.stdout.contains("token=\(token);serial=") && rewrap.stdout.contains("store-key"), "\(rewrap.stdout) \(rewrap.stderr)")
        return (agent, sessionId, directory, pinFile)
    }

    @Test func aTokenWrappedStoreOpensOnlyWithItsToken() throws {
        let (agent, sessionId, directory, pinFile) = try agentWithTokenWrappedStore()
        let store = agent.directory.appendingPathComponent("data/store.sqlite").path
        // The passphrase no longer opens it.
        let again = try Command.run(Command.sessionAgent, ["store", "rewrap", "--store", store, "--to", "passphrase",
                                                           "--passphrase-file", agent.directory.appendingPathComponent("store.pass").path, "--new-passphrase-file", pinFile],
                                    environment: hsm.environment)
        #expect(again.status == 1, "\(again.stdout)")

        // With the token, the agent opens the store by itself and the session still signs.
        try agent.start()
        #expect(try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1_000_000, nonce: 0)["mode"] == "ENABLE")
        agent.stop()

        // Without it, the agent starts locked and says why; signing is refused, not attempted.
        let away = try hsm.unplug(directory)
        try agent.start()
        #expect(agent.logs.contains("stays locked"))
        do {
            _ = try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: 1)
            Issue.record("signed with the store's token absent")
        } catch let e as AgentClient.RemoteError { #expect(e.reason == "locked", "\(e)") }
        // Back: `agent_unlock` opens it (the PIN from store_pin_file), and back to a passphrase.
        try hsm.plugIn(away, as: directory)
        _ = try AgentClient(path: agent.controlSocket).call("agent_unlock")
        #expect(try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: 1)["mode"] == "USE")
        agent.stop()

        // Moved to a key on another token (a new HSM): the first token is no longer needed.
        let second = token + "-b"
        try hsm.initToken(second)
        let moved = try Command.run(Command.sessionAgent, ["store", "rewrap", "--store", store, "--to", "pkcs11:token=\(second);object=store-key?module-path=\(SoftHSM.systemModule!)",
                                                           "--pin-file", pinFile], environment: hsm.environment)
        #expect(moved.status == 0 && moved.stdout.contains(second), "\(moved.stderr)")
        let first = try hsm.unplug(directory)
        try agent.start()
        #expect(try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: 2)["mode"] == "USE")
        agent.stop()
        try hsm.plugIn(first, as: directory)

        let back = try Command.run(Command.sessionAgent, ["store", "rewrap", "--store", store, "--to", "passphrase", "--pin-file", pinFile,
                                                          "--new-passphrase-file", agent.directory.appendingPathComponent("store.pass").path],
                                   environment: hsm.environment)
        #expect(back.status == 0 && back.stdout.contains("passphrase"), "\(back.stderr)")
        try agent.start()
        #expect(try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: 3)["mode"] == "USE")
        #expect(try AgentClient(path: agent.controlSocket).call("audit_verify")["intact"] == .bool(true))
    }

    /// A store sealed under an AES key the token lets be read (as `store rewrap` allowed before it
    /// refused such keys; here the key is replaced by a readable copy of itself) still opens, but
    /// whoever opens it hears that a copy of the file opens without the token, and how to move
    /// it: `store check` and `unlock` on their standard error, the agent in its journal and its
    /// answer to `agent_unlock`. Once moved to a key that cannot be read, nobody is warned.
    @Test func aStoreSealedUnderAKeyThatCanBeReadOpensWithAWarning() throws {
        let value = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try hsm.initToken(token)
        try hsm.importAESKey(token: token, label: "store-key", value: value)
        let pinFile = hsm.directory.appendingPathComponent("pin-\(token)").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        let agent = try AgentProcess(rules: "default = \"approve\"", extraConfig: "store_pin_file = \"\(pinFile)\"", environment: hsm.environment)
        try agent.start()
        let sessionId = try SocketTests.requestSession(try AgentClient(path: agent.clientSocket))
        agent.stop()
        let store = agent.directory.appendingPathComponent("data/store.sqlite").path
        func check() throws -> CommandResult {
            try Command.run(Command.sessionAgent, ["store", "check", "--store", store, "--pin-file", pinFile], environment: hsm.environment)
        }
        let rewrap = try Command.run(Command.sessionAgent, ["store", "rewrap", "--store", store, "--to", "pkcs11:token=\(token);object=store-key?module-path=\(SoftHSM.systemModule!)",
                                                            "--pin-file", pinFile, "--passphrase-file", agent.directory.appendingPathComponent("store.pass").path], environment: hsm.environment)
        #expect(rewrap.status == 0, "\(rewrap.stdout) \(rewrap.stderr)")
        let sealed = try check()
        #expect(sealed.status == 0 && !sealed.stderr.contains("WARNING"), "\(sealed.stdout) \(sealed.stderr)")

        try hsm.deleteAESKey(token: token, label: "store-key")
        try hsm.importAESKey(token: token, label: "store-key", value: value, sensitive: false)
        let warning = "that wraps this store's data key can be read out of its token (not sensitive, or extractable), so a copy of the store opens without the token"
        let checked = try check()
        #expect(checked.status == 0 && checked.stderr.contains("WARNING: the AES key pkcs11:token=\(token)") && checked.stderr.contains(warning)
                && checked.stderr.contains("store rewrap --to 'pkcs11:token=\(token);object=NEW-LABEL?module-path="), "\(checked.stdout) \(checked.stderr)")
        try agent.start()
        #expect(agent.logs.contains(warning), "\(agent.logs)")
        #expect(try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: 0)["mode"] == "ENABLE")
        let control = try AgentClient(path: agent.controlSocket)
        // The operator asking later how the store is kept is told too; a client is not.
        #expect(try Self.store(control)["warning"]?.stringValue?.contains(warning) == true)
        #expect(try Self.store(try AgentClient(path: agent.clientSocket))["warning"] == nil)
        _ = try control.call("agent_lock")
        #expect(try Self.store(control)["warning"] == nil)
        let unlocked = try Command.run(Command.sessionAgent, ["unlock", "--socket", agent.controlSocket], stdin: [])
        #expect(unlocked.status == 0 && unlocked.stdout == "the store is open\n" && unlocked.stderr.hasPrefix("WARNING: ") && unlocked.stderr.contains(warning),
                "\(unlocked.stdout) \(unlocked.stderr)")
        try agent.waitForLog(warning, times: 2)
        #expect(try Self.store(control)["warning"]?.stringValue?.contains(warning) == true)
        agent.stop()

        let moved = try Command.run(Command.sessionAgent, ["store", "rewrap", "--store", store, "--to", "pkcs11:token=\(token);object=sealing-key?module-path=\(SoftHSM.systemModule!)",
                                                           "--pin-file", pinFile], environment: hsm.environment)
        #expect(moved.status == 0 && moved.stderr.contains(warning), "\(moved.stdout) \(moved.stderr)")
        let after = try check()
        #expect(after.status == 0 && !after.stderr.contains("WARNING"), "\(after.stdout) \(after.stderr)")
        let warnings = agent.logs.components(separatedBy: warning).count
        try agent.start()
        #expect(agent.logs.components(separatedBy: warning).count == warnings)
        #expect(try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: 1)["mode"] == "USE")
        #expect(try Self.store(try AgentClient(path: agent.controlSocket))["warning"] == nil)
    }

    /// Session keys are usable only while the store's token is present: the agent locks the store
    /// within about a second of the token going away and, with the PIN in store_pin_file, opens it
    /// again when the token is back. A store a person locked stays locked through all that.
    @Test func theStoreLocksWhileItsTokenIsAway() throws {
        let (agent, sessionId, directory, pinFile) = try agentWithTokenWrappedStore()
        try agent.start()
        let control = try AgentClient(path: agent.controlSocket)
        func store() throws -> JSONValue { try Self.store(control) }
        func until(_ what: String, _ condition: () throws -> Bool) throws { try Self.until(what, control, condition) }
        func signs(_ nonce: UInt64) throws -> Bool {
            do { return try SocketTests.sign(try AgentClient(path: agent.clientSocket), sessionId, 1, nonce: nonce)["signature"] != nil } catch let e as AgentClient.RemoteError {
                #expect(e.reason == "locked", "\(e)")
                return false
            }
        }
        #expect(try store()["protection"] == "pkcs11")
        #expect(try signs(0))

        let away = try hsm.unplug(directory)
        try until("the lock after the token left") { try store()["locked"] == .bool(true) }
        #expect(try store()["tokenPresent"] == .bool(false))
        #expect(try store()["reason"]?.stringValue?.contains("token went away") == true)
        #expect(try !signs(1))
        // Back with a wrong PIN in the file: it stays locked and says why (one try spent); the
        // right PIN in the file opens it.
        try writeSecretFile(SoftHSM.wrongPIN, pinFile)
        try hsm.plugIn(away, as: directory)
        try until("the failed unlock") { try store()["reason"]?.stringValue?.contains("did not open") == true }
        #expect(try !signs(1))
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        try until("the unlock after the token came back") { try store()["locked"] == .bool(false) }
        #expect(try store()["reason"] == nil)
        #expect(try signs(1))
        #expect(agent.logs.contains("the store is locked: its token went away") && agent.logs.contains("the store is open again"))

        _ = try control.call("agent_lock")
        let awayAgain = try hsm.unplug(directory)
        try until("the agent seeing the token leave") { try store()["tokenPresent"] == .bool(false) }
        try hsm.plugIn(awayAgain, as: directory)
        try until("the agent seeing the token back") { try store()["tokenPresent"] == .bool(true) }
        #expect(try store()["locked"] == .bool(true))
        #expect(try store()["reason"] == "locked with agent_lock")
        #expect(try !signs(2))
        _ = try control.call("agent_unlock")
        #expect(try signs(2))
        #expect(try control.call("audit_verify")["intact"] == .bool(true))
        // The operator's lock and unlock are in the journal and the audit log, as the token's are.
        #expect(agent.logs.contains("the store is locked: locked with agent_lock") && agent.logs.contains("the store is unlocked (agent_unlock)"))
        let audit = try Command.run(Command.sessionAgent, ["audit", "show", "--socket", agent.controlSocket, "--kind", "store_lock", "--json"])
        let reasons = (try JSONValue(parsing: audit.stdout).arrayValue ?? []).compactMap { $0["entry"]?["reason"]?.stringValue }
        #expect(reasons == ["the store's token went away", "locked with agent_lock"], "\(audit.stdout.prefix(300)) \(audit.stderr)")
    }
}

@Suite("token list and owner generate", .enabled(if: SoftHSM.isAvailable, "\(SoftHSM.unavailableReason ?? "")"))
struct PKCS11CommandTests {
    /// A smartcard reader without its card is an empty slot of OpenSC's module: `token list`
    /// names it, so whoever misses a token sees that the reader is there, and a URI that
    /// matches no token says so too. (SoftHSM has no empty slot: each of its slots holds a token.)
    @Test(.enabled(if: PCSCDaemon.isAvailable, "\(PCSCDaemon.unavailableReason ?? "")"))
    func aReaderWithoutItsCardIsAnEmptySlot() async throws {
        try await PCSCDaemon.exclusively { pcscd in
            let module = try #require(PCSCDaemon.openSCModule)
            let listed = try Command.run(Command.sessionAgent, ["token", "list", "--module", module])
            #expect(listed.status == 0 && listed.stdout.contains("\n  slot 0 \"Virtual PCD 00 00\" is empty\n") && listed.stdout.hasSuffix("\"Virtual PCD 00 01\" is empty\n")
                    && !listed.stdout.contains("no token present"), "\(listed.stdout) \(listed.stderr)")
            let json = try JSONValue(parsing: try Command.run(Command.sessionAgent, ["token", "list", "--module", module, "--json"]).stdout)
            let empty = json.arrayValue?.first?["emptySlots"]?.arrayValue ?? []
            #expect(empty.compactMap { $0["description"]?.stringValue } == ["Virtual PCD 00 00", "Virtual PCD 00 01"] && empty.first?["slot"] == JSONValue(0), "\(json)")
            #expect(json.arrayValue?.first?["tokens"] == .array([]))
            let card = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=card?module-path=\(module)"])
            #expect(card.status == 1 && card.stderr.contains("(the module shows no token; slot 0 \"Virtual PCD 00 00\" is empty, slot "), "\(card.stderr)")

            // Without pcscd there is no reader, so no slot at all.
            pcscd.stop()
            let none = try Command.run(Command.sessionAgent, ["token", "list", "--module", module])
            #expect(none.status == 0 && none.stdout.hasSuffix("\n  no token present\n") && !none.stdout.contains("is empty"), "\(none.stdout) \(none.stderr)")
        }
    }

    @Test func listsTheTokensP11KitKnowsAndMakesKeys() throws {
        let hsm = SoftHSM.process
        let token = "cli-\(UUID().uuidString.prefix(8))"
        try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "made-by-pkcs11-tool", id: "01")
        try hsm.generateKey(token: token, label: "p256-key", id: "02", keyType: "EC:prime256v1")
        try hsm.generateKey(token: token, label: "p384-key", id: "03", keyType: "EC:secp384r1")
        let pinFile = hsm.directory.appendingPathComponent("pin-\(token)").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)

        let generated = try Command.run(Command.sessionAgent, ["owner", "generate", "--token", "pkcs11:token=\(token)", "--pin-file", pinFile, "--label", "made-here", "--json"],
                                        environment: hsm.environment)
        #expect(generated.status == 0, "\(generated.stderr)")
        let made = try JSONValue(parsing: generated.stdout)
        #expect(made["custody"] == "never_left" && made["cannotSign"] == .null, "\(made)")

        // No --module: the module comes from p11-kit's registration of SoftHSM.
        let listed = try Command.run(Command.sessionAgent, ["token", "list", "--json"], environment: hsm.environment)
        #expect(listed.status == 0, "\(listed.stderr)")
        let tokens = (try JSONValue(parsing: listed.stdout).arrayValue ?? []).flatMap { $0["tokens"]?.arrayValue ?? [] }
        let ours = try #require(tokens.first { $0["label"]?.stringValue == token })
        let keys = ours["keys"]?.arrayValue ?? []
        #expect(keys.count == 3)
        let k1 = try #require(keys.first { $0["label"] == "made-by-pkcs11-tool" })
        #expect(k1["curve"] == "secp256k1")
        #expect(k1["address"]?.stringValue == Address(publicKey: Array(try hsm.publicPoint(token: token, id: "01").dropFirst())).checksummed)
        let p256 = try #require(keys.first { $0["label"] == "p256-key" })
        #expect(p256["curve"] == "p256" && p256["address"] == .null)
        #expect(p256["publicKey"]?.stringValue == Hex.encode(try hsm.publicPoint(token: token, id: "02")))
        let here = try #require(keys.first { $0["label"] == "made-here" })
        #expect(here["address"] == made["address"])
        // A key on another curve is listed apart, with its curve.
        let others = ours["otherKeys"]?.arrayValue ?? []
        #expect(others.map { $0["label"] } == ["p384-key"] && others.first?["reason"]?.stringValue?.contains("secp384r1") == true, "\(ours)")
        let listedURI = try PKCS11URI(try #require(here["uri"]?.stringValue)), madeURI = try PKCS11URI(try #require(made["uri"]?.stringValue))
        #expect(listedURI.id == madeURI.id && listedURI.object == "made-here" && madeURI.token == token)
        // Each listed URI selects its key again.
        #expect(try PKCS11URI(try #require(k1["uri"]?.stringValue)).object == "made-by-pkcs11-tool")
        // After a login the private halves are visible, and what the token says of them is shown.
        #expect(here["custody"] == .null)
        // (Only this test's token: a login to the others could reset the retry counter a test beside it counts on.)
        let afterLogin = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token)", "--login", "--pin-file", pinFile, "--json"], environment: hsm.environment)
        let loggedIn = (try JSONValue(parsing: afterLogin.stdout).arrayValue ?? []).flatMap { $0["tokens"]?.arrayValue ?? [] }
        #expect(loggedIn.map { $0["label"]?.stringValue } == [token], "\(afterLogin.stdout) \(afterLogin.stderr)")
        #expect(loggedIn.first?["keys"]?.arrayValue?.first { $0["label"] == "made-here" }?["custody"] == "never_left", "\(afterLogin.stdout)")
        // Without a PIN file the PIN is asked for, naming the token, and read from the terminal.
        let typed = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token)", "--login", "--json"],
                                    stdin: Array((SoftHSM.userPIN + "\n").utf8), environment: hsm.environment)
        #expect(typed.status == 0 && typed.stderr.contains("PIN for token \"\(token)\""), "\(typed.stderr)")
        #expect((try JSONValue(parsing: typed.stdout).arrayValue ?? []).flatMap { $0["tokens"]?.arrayValue ?? [] }.first?["keys"]?.arrayValue?
            .first { $0["label"] == "made-here" }?["custody"] == "never_left", "\(typed.stdout)")
        // A token it cannot read (here a wrong PIN) is listed with its error, and the exit status is 1.
        let wrongPINFile = hsm.directory.appendingPathComponent("wrong-pin-\(token)").path
        try writeSecretFile(SoftHSM.wrongPIN, wrongPINFile)
        let wrongLogin = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token)", "--login", "--pin-file", wrongPINFile, "--json"], environment: hsm.environment)
        let unread = (try? JSONValue(parsing: wrongLogin.stdout).arrayValue ?? [])?.flatMap { $0["tokens"]?.arrayValue ?? [] }.first
        #expect(wrongLogin.status == 1 && unread?["error"]?.stringValue?.contains("wrong PIN") == true, "\(wrongLogin.stdout) \(wrongLogin.stderr)")

        // A URI with object= or id= lists only those keys; one that matches nothing is exit status
        // 1, as a script checking for its token or key expects.
        func list(_ uri: String) throws -> (status: Int32, keys: [String], stderr: String) {
            let run = try Command.run(Command.sessionAgent, ["token", "list", uri, "--json"], environment: hsm.environment)
            let keys = (try? JSONValue(parsing: run.stdout).arrayValue ?? [])?.flatMap { $0["tokens"]?.arrayValue ?? [] }.flatMap { $0["keys"]?.arrayValue ?? [] }
            return (run.status, keys?.compactMap { $0["label"]?.stringValue } ?? [], run.stderr)
        }
        #expect(try list("pkcs11:token=\(token);object=p256-key").keys == ["p256-key"])
        #expect(try list("pkcs11:token=\(token);id=%01").keys == ["made-by-pkcs11-tool"])
        #expect(try list("pkcs11:token=\(token);object=p384-key").status == 0)
        for (uri, message) in [("pkcs11:token=\(token)-absent", "no token matches"), ("pkcs11:token=\(token);object=absent", "no key matches")] {
            let missing = try list(uri)
            #expect(missing.status == 1 && missing.stderr.contains(message) && missing.stderr.contains(uri), "\(missing)")
        }

        // The module as it describes itself, as p11-kit sees it too; a URI's library-* and
        // slot-manufacturer select by it.
        let softhsm = try #require(try JSONValue(parsing: listed.stdout).arrayValue?.first { module in
            module["tokens"]?.arrayValue?.contains { $0["label"]?.stringValue == token } == true
        })
        let listedModules = try Command.run(URL(fileURLWithPath: "/usr/bin/p11-kit"), ["list-modules"], environment: hsm.environment)
        let p11kitSays = listedModules.stdout.components(separatedBy: "\n").drop { !$0.contains("libsofthsm2.so") }.dropFirst().prefix(3)
        let library = try #require(softhsm["library"])
        #expect(Set(p11kitSays.map { $0.trimmingCharacters(in: .whitespaces) })
                == ["library-description: \(library["description"]?.stringValue ?? "")", "library-manufacturer: \(library["manufacturer"]?.stringValue ?? "")",
                    "library-version: \(library["version"]?.stringValue ?? "")"], "\(listedModules.stdout)")
        func encoded(_ s: String?) -> String { s?.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
        let byLibrary = "pkcs11:token=\(token);library-manufacturer=\(encoded(library["manufacturer"]?.stringValue));"
            + "library-description=\(encoded(library["description"]?.stringValue));library-version=\(library["version"]?.stringValue ?? "");slot-manufacturer=SoftHSM%20project"
        #expect(try list(byLibrary).keys.count == 3)
        for other in ["library-manufacturer=Other", "library-version=1.0", "slot-manufacturer=Other"] {
            let missing = try list("pkcs11:token=\(token);\(other)")
            #expect(missing.status == 1 && missing.stderr.contains("no token matches"), "\(other): \(missing)")
            // Finding the module among those p11-kit knows goes by them too.
            let notMade = try Command.run(Command.sessionAgent, ["owner", "generate", "--token", "pkcs11:token=\(token);\(other)", "--pin-file", pinFile, "--label", "not-made"],
                                          environment: hsm.environment)
            #expect(notMade.status == 1 && notMade.stderr.contains("no PKCS#11 module p11-kit knows has a token matching"), "\(other): \(notMade)")
        }
        let madeByLibrary = try Command.run(Command.sessionAgent, ["owner", "generate", "--token", byLibrary, "--pin-file", pinFile, "--label", "by-library"],
                                            environment: hsm.environment)
        #expect(madeByLibrary.status == 0, "\(madeByLibrary)")

        // What a token says of itself is shown with control characters written out: a label
        // could otherwise repaint the terminal or add a line of its own.
        let odd = "o\u{1B}[2J\n  slot 9"
        try hsm.initToken(odd)
        let listedOdd = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=o%1B%5B2J%0A%20%20slot%209"], environment: hsm.environment)
        #expect(listedOdd.status == 0 && listedOdd.stdout.contains("token \"o\\u{1b}[2J\\u{a}  slot 9\"") && !listedOdd.stdout.contains("\u{1B}"), "\(listedOdd)")

        // p11-kit's client with no server where it looks: it shows no token, and says why.
        var noServer = hsm.environment
        noServer["P11_KIT_SERVER_ADDRESS"] = "unix:path=\(hsm.directory.path)/no-server.sock"
        let listedByClient = try Command.run(Command.sessionAgent, ["token", "list", "--module", SoftHSM.p11KitClient], environment: noServer)
        #expect(listedByClient.status == 0 && listedByClient.stdout.contains("no p11-kit server listens at \(hsm.directory.path)/no-server.sock"), "\(listedByClient)")
        let tokenByClient = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token)", "--module", SoftHSM.p11KitClient], environment: noServer)
        #expect(tokenByClient.status == 1 && tokenByClient.stderr.contains("no token matches pkcs11:token=\(token) (no p11-kit server listens"), "\(tokenByClient)")
        let generatedByClient = try Command.run(Command.sessionAgent, ["owner", "generate", "--token", "pkcs11:token=\(token)", "--module", SoftHSM.p11KitClient,
                                                                       "--pin-file", pinFile], environment: noServer)
        #expect(generatedByClient.status == 1 && generatedByClient.stderr.contains("no p11-kit server listens"), "\(generatedByClient)")

        let wrong = try Command.run(Command.sessionAgent, ["owner", "generate", "--token", "pkcs11:token=\(token)", "--module", "/nonexistent.so", "--pin-file", pinFile])
        #expect(wrong.status == 1 && wrong.stderr.contains("/nonexistent.so"))
        // Named once, as what it is.
        for module in ["/nonexistent.so", "/usr/lib/x86_64-linux-gnu/libz.so.1"] {
            let listed = try Command.run(Command.sessionAgent, ["token", "list", "--module", module])
            #expect(listed.status == 1 && listed.stderr.hasPrefix("session-agent: error: the PKCS#11 module \(module) ")
                        && listed.stderr.components(separatedBy: module).count == 2, "\(listed)")
        }

        // A label given as object= in --token is the key's label; one in use is refused, as is
        // a second label beside it, and neither refusal makes a key.
        func generate(_ uri: String, _ extra: [String] = []) throws -> CommandResult {
            try Command.run(Command.sessionAgent, ["owner", "generate", "--token", uri, "--pin-file", pinFile] + extra, environment: hsm.environment)
        }
        let named = try generate("pkcs11:token=\(token);object=named-in-uri", ["--json"])
        #expect(named.status == 0, "\(named.stderr)")
        #expect(try PKCS11URI(try #require(try JSONValue(parsing: named.stdout)["uri"]?.stringValue)).object == "named-in-uri")
        let again = try generate("pkcs11:token=\(token)", ["--label", "made-by-pkcs11-tool"])
        #expect(again.status == 1 && again.stderr.contains("already holds an EC key with the label \"made-by-pkcs11-tool\": id=%01"), "\(again.stderr)")
        let both = try generate("pkcs11:token=\(token);object=one", ["--label", "other"])
        #expect(both.status == 1 && both.stderr.contains("give one"), "\(both.stderr)")
        let after = try Command.run(Command.sessionAgent, ["token", "list", "--json"], environment: hsm.environment)
        let count = (try JSONValue(parsing: after.stdout).arrayValue ?? []).flatMap { $0["tokens"]?.arrayValue ?? [] }
            .first { $0["label"]?.stringValue == token }?["keys"]?.arrayValue?.count
        // pkcs11-tool's two on usable curves, "made-here", "by-library" and "named-in-uri".
        #expect(count == 5)
    }
}
