@testable import Agent
import EthereumCore
import Foundation
import OwnerSigners
import SmartSessions
import Testing
import TestSupport

/// The agent with a passkey as the account's owner, end to end: the passkey made by
/// `session-agent fido2 create`, the account's owners checked by Rhinestone's WebAuthnValidator,
/// approval by rules and the tap on the (software) authenticator.
@Suite("Passkey owners, end to end", .enabled(if: SoftFIDO2.isAvailable, "\(SoftFIDO2.unavailableReason ?? "")"))
struct PasskeyAgentTests {
    /// The passkey file `fido2 create` wrote, and its owner key as an account lists it.
    static func passkey(on authenticator: SoftFIDO2) throws -> (file: String, owner: String) {
        let file = authenticator.directory.appendingPathComponent("owner.passkey.json").path
        let made = try Command.run(Command.sessionAgent, ["fido2", "create", "--device", authenticator.device, "--out", file, "--json"])
        #expect(made.status == 0, "\(made.stderr)")
        return (file, "p256:" + (try #require(try JSONValue(parsing: made.stdout)["publicKey"]?.stringValue)))
    }

    /// A started agent with `rules` (by default, approve every request), with a passkey made on a software
    /// authenticator as the test account's owner (its file, and its owner key).
    static func agentWithPasskey(rules: String = "default = \"approve\"") throws -> (authenticator: SoftFIDO2, file: String, ownerKey: String, agent: AgentProcess) {
        let authenticator = try SoftFIDO2()
        let (file, ownerKey) = try passkey(on: authenticator)
        let agent = try AgentProcess(rules: rules, owner: .init(toml: "passkey = \"\(file)\"", address: ownerKey))
        try agent.start()
        return (authenticator, file, ownerKey, agent)
    }

    /// The oracle's verdict on the WebAuthnValidator signature in an ENABLE `userOp.signature`
    /// signed by `ownerKey` (`p256:0x04…`) for the test account, checked as the validator would
    /// (the credential id bound to the account, the challenge the multichain digest, the P-256
    /// signature); and that signature.
    static func enableVerdict(_ signed: JSONValue, ownerKey: String, scratch: URL, requireUV: Bool = false) throws -> (verdict: String, validatorSignature: [UInt8]) {
        guard case .enable(_, let enable, _) = try SessionSignature(decoding: try Hex.decode(try #require(signed["signature"]?.stringValue))) else {
            throw Oracle.Failure(description: "not an ENABLE signature: \(signed)")
        }
        let (validator, validatorSignature) = try AccountKind.erc7579Reference.parseERC1271Signature(enable.permissionEnableSig)
        guard validator == SmartSessionAddresses.rhinestoneWebAuthnValidator else { return ("validator \(validator)", validatorSignature) }
        let enabled = JSONValue.object(JSONObject([
            "publicKey": .string(String(ownerKey.dropFirst("p256:".count))), "account": .string(AgentProcess.account), "rpId": .string(Passkey.defaultRPID),
            "challenge": .string(EnableDigest.multichainDigest(enable.hashesAndChainIds).hex), "signature": .string(Hex.encode(validatorSignature)),
            "requireUV": .bool(requireUV),
        ]))
        return (try Oracle.webAuthnVerdicts([enabled], in: scratch).joined(separator: "\n"), validatorSignature)
    }

    /// A session approved by the rules is enabled by the passkey, with one tap: the ENABLE
    /// `userOp.signature` carries the WebAuthnValidator's signature, which the oracle checks
    /// as the validator would (the credential id bound to the account, the challenge the
    /// multichain digest the agent computed, the P-256 signature), and the audit log names the
    /// passkey as the signer.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func aSessionApprovedByRulesIsEnabledByThePasskey() async throws {
        let (authenticator, file, ownerKey, agent) = try Self.agentWithPasskey()
        defer { agent.stop() }
        let control = try AgentClient(path: agent.controlSocket)
        let owners = try control.call("owners_list").arrayValue ?? []
        #expect(owners.count == 1 && owners[0]["backend"] == "fido2" && owners[0]["owner"]?.stringValue == ownerKey && owners[0]["address"] == nil
                && owners[0]["ready"] == .bool(true) && owners[0]["onDevice"] == .bool(true), "\(owners)")
        let account = try #require(try control.call("accounts_list").arrayValue?.first)
        #expect(account["ownerValidator"]?.stringValue == SmartSessionAddresses.rhinestoneWebAuthnValidator.checksummed)

        let client = try AgentClient(path: agent.clientSocket)
        let taps = authenticator.tapsAskedFor
        let sessionId = try SocketTests.requestSession(client)
        #expect(authenticator.tapsAskedFor == taps + 1)
        let signed = try SocketTests.sign(client, sessionId, 5_000_000, nonce: 0)
        #expect(try Self.enableVerdict(signed, ownerKey: ownerKey, scratch: authenticator.directory).verdict == "ok")
        // decode-signature names the passkey's credential and says it signed this session's digest.
        let publicKey = try EthereumCore.P256.PublicKey(Hex.decode(String(ownerKey.dropFirst("p256:".count))))
        let credential = RhinestoneWebAuthn.credentialId(publicKey, account: try Address(AgentProcess.account))
        let decoded = try Command.run(Command.sessionAgent, ["decode-signature", try #require(signed["signature"]?.stringValue), "--account", AgentProcess.account])
        #expect(decoded.stdout.contains("owner passkey  credential \(credential.hex): signed this digest"), "\(decoded.stdout)\(decoded.stderr)")

        let decision = try control.call("audit_show", JSONObject(["kind": "decision", "limit": JSONValue(1)])).arrayValue?.first?["entry"]
        let signer = decision?["signedBy"]?.arrayValue?.first
        #expect(signer?["backend"] == "fido2" && signer?["owner"]?.stringValue == ownerKey && signer?["location"]?.stringValue == file, "\(String(describing: decision))")
    }

    /// The passkey signs the account's own user operations too, with a tap: the challenge is the
    /// userOpHash itself, as the WebAuthnValidator's validateUserOp checks it.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func thePasskeySignsTheAccountsOwnOperations() throws {
        let (authenticator, _, ownerKey, agent) = try Self.agentWithPasskey()
        defer { agent.stop() }
        let client = try AgentClient(path: agent.clientSocket)
        let sessionId = try SocketTests.requestSession(client)
        _ = try client.call("session_revoke", JSONObject(["sessionId": .string(sessionId)]))
        let userOp = authenticator.directory.appendingPathComponent("userop.json")
        let key = AccountKind.erc7579Reference.nonceKey(validator: SmartSessionAddresses.rhinestoneWebAuthnValidator)
        try JSONValue.object(AccountOperationTests.userOp(key: key)).serialized.write(to: userOp, atomically: true, encoding: .utf8)

        let taps = authenticator.tapsAskedFor
        let ended = try Command.run(Command.sessionAgent, ["account", "end", sessionId, "--account", AgentProcess.account, "--chain-id", "11155111",
                                                           "--userop", userOp.path, "--socket", agent.controlSocket, "--yes", "--json"])
        #expect(ended.status == 0, "\(ended)")
        #expect(authenticator.tapsAskedFor == taps + 1)
        let result = try JSONValue(parsing: ended.stdout)
        let signed = JSONValue.object(JSONObject([
            "publicKey": .string(String(ownerKey.dropFirst("p256:".count))), "account": .string(AgentProcess.account), "rpId": .string(Passkey.defaultRPID),
            "challenge": try #require(result["userOpHash"]), "signature": try #require(result["userOperation"]?["signature"]),
        ]))
        #expect(try Oracle.webAuthnVerdicts([signed], in: authenticator.directory) == ["ok"])
    }

    /// A person approves at the terminal (`approve`): they are told the owner asks for a tap on
    /// the key, nothing else, and the tap they give there enables the session.
    @Test func aPersonApprovesAndTapsTheKey() async throws {
        let (authenticator, _, _, agent) = try Self.agentWithPasskey(rules: "default = \"ask\"")
        defer { agent.stop() }
        let listed = try Command.run(Command.sessionAgent, ["owner", "list", "--socket", agent.controlSocket])
        #expect(listed.stdout.contains("asks at signing, on the device: a tap on the FIDO2 authenticator (\(authenticator.device))"), "\(listed.stdout)")
        let id = try #require(try AgentClient(path: agent.clientSocket).call("session_request", JSONObject(["request": SocketTests.example]))["id"]?.stringValue)
        let taps = authenticator.tapsAskedFor
        let run = try Command.run(Command.sessionAgent, ["approve", "--once", "--socket", agent.controlSocket], stdin: Array("y\n".utf8))
        #expect(run.status == 0 && run.stdout.contains("\(id): approved"), "\(run.stdout) \(run.stderr)")
        #expect(run.stderr.contains("a tap on the FIDO2 authenticator (\(authenticator.device)): give it on the device when it asks"), "\(run.stderr)")
        #expect(authenticator.tapsAskedFor == taps + 1)
    }

    /// A passkey made with the authenticator's PIN (`fido2 create --user-verification`): its
    /// validator credential requires user verification, the person approving at the terminal
    /// is asked for the PIN (again, after a wrong one) before the tap, and the ENABLE signature
    /// says the person was verified, as the oracle checks it for a credential with requireUV.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func aPasskeyMadeWithThePINIsApprovedWithThePIN() async throws {
        let authenticator = try SoftFIDO2(pin: "2468")
        let file = authenticator.directory.appendingPathComponent("uv.passkey.json").path, pinFile = authenticator.directory.appendingPathComponent("pin")
        try writeSecretFile("2468\n", pinFile.path)
        let made = try Command.run(Command.sessionAgent, ["fido2", "create", "--device", authenticator.device, "--out", file, "--user-verification", "--pin-file", pinFile.path,
                                                          "--account", AgentProcess.account, "--json"])
        #expect(made.status == 0, "\(made.stderr)")
        let created = try JSONValue(parsing: made.stdout)
        #expect(created["userVerification"] == .bool(true))
        let ownerKey = "p256:" + (try #require(created["publicKey"]?.stringValue))
        let install = JSONValue.object(JSONObject([
            "publicKey": .string(String(ownerKey.dropFirst("p256:".count))), "account": .string(AgentProcess.account),
            "installData": try #require(created["webAuthnValidator"]?["installData"]), "requireUV": .bool(true),
        ]))
        #expect(try Oracle.webAuthnVerdicts([install], in: authenticator.directory) == ["ok"], "the credential requires user verification")

        let agent = try AgentProcess(rules: "default = \"ask\"", owner: .init(toml: "passkey = \"\(file)\"", address: ownerKey))
        try agent.start()
        defer { agent.stop() }
        let client = try AgentClient(path: agent.clientSocket)
        _ = try #require(try client.call("session_request", JSONObject(["request": SocketTests.example]))["id"]?.stringValue)
        let run = try Command.run(Command.sessionAgent, ["approve", "--once", "--socket", agent.controlSocket], stdin: Array("y\n0000\ny\n2468\n".utf8))
        #expect(run.stderr.contains("PIN of the FIDO2 authenticator (\(authenticator.device)), then a tap on it: "), "\(run.stderr)")
        #expect(run.stdout.contains("wrong PIN") && run.stdout.contains(": approved"), "\(run.stdout) \(run.stderr)")
        #expect(!agent.logs.contains("2468"))
        let session = try #require(try AgentClient(path: agent.controlSocket).call("sessions_list").arrayValue?.first?["sessionId"]?.stringValue)
        let signed = try SocketTests.sign(client, session, 5_000_000, nonce: 0)
        #expect(try Self.enableVerdict(signed, ownerKey: ownerKey, scratch: authenticator.directory, requireUV: true).verdict == "ok")
    }

    /// A Kernel account whose owner validator is ZeroDev's passkey validator: the passkey made
    /// with its PIN for it (`--validator zerodev`, whose install data the oracle reads), the PIN
    /// given at approval, the enable signature in ZeroDev's format over Kernel's wrapping of the
    /// digest, routed as Kernel routes it, and accepted by the oracle as the validator would. A
    /// passkey made without the PIN is refused before anything is stored: the validator would
    /// refuse its assertion.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func aKernelAccountsZeroDevValidatorTakesAPasskeyMadeWithThePIN() async throws {
        let authenticator = try SoftFIDO2(pin: "1357")
        let pinFile = authenticator.directory.appendingPathComponent("pin")
        try writeSecretFile("1357", pinFile.path)
        let kernel = "0x000000000000000000000000000000000000ce1e"
        func make(_ name: String, _ options: [String]) throws -> (file: String, json: JSONValue) {
            let file = authenticator.directory.appendingPathComponent(name).path
            let made = try Command.run(Command.sessionAgent, ["fido2", "create", "--device", authenticator.device, "--out", file, "--account", kernel, "--json"] + options)
            #expect(made.status == 0, "\(made.stderr)")
            return (file, try JSONValue(parsing: made.stdout))
        }
        let refusedWithoutPIN = try Command.run(Command.sessionAgent, ["fido2", "create", "--device", authenticator.device, "--out", "/nonexistent/x", "--validator", "zerodev"])
        #expect(refusedWithoutPIN.status != 0 && refusedWithoutPIN.stderr.contains("requires user verification"), "\(refusedWithoutPIN)")
        let (file, created) = try make("zerodev.passkey.json", ["--validator", "zerodev", "--user-verification", "--pin-file", pinFile.path])
        let publicKey = try #require(created["publicKey"]?.stringValue), ownerKey = "p256:" + publicKey
        let credentialId = try #require(created["credentialId"]?.stringValue)
        #expect(try Oracle.webAuthnVerdicts([.object(JSONObject([
            "format": "zerodev", "publicKey": .string(publicKey), "authenticatorId": .string(credentialId),
            "installData": try #require(created["zeroDevValidator"]?["installData"]),
        ]))], in: authenticator.directory) == ["ok"])
        let (plainFile, plainCreated) = try make("plain.passkey.json", [])
        let plainKey = "p256:" + (try #require(plainCreated["publicKey"]?.stringValue))

        let agent = try AgentProcess(rules: "default = \"ask\"", owner: .init(toml: "passkey = \"\(file)\"", address: ownerKey))
        try agent.start()
        defer { agent.stop() }
        let control = try AgentClient(path: agent.controlSocket), client = try AgentClient(path: agent.clientSocket)
        _ = try control.call("owners_add", JSONObject(["passkey": .string(plainFile)]))
        for (address, owner) in [(kernel, ownerKey), ("0x000000000000000000000000000000000000ce1f", plainKey)] {
            _ = try control.call("accounts_add", JSONObject(["account": .object(JSONObject([
                "address": .string(address), "kind": "kernel", "ownerValidator": .string(SmartSessionAddresses.zeroDevWebAuthnValidator.checksummed),
                "owners": .array([.string(owner)]), "chains": .array(["11155111"]),
            ]))]))
        }
        var request = SocketTests.example.objectValue!
        request["account"] = .string(kernel)
        request["accountKind"] = nil
        let id = try #require(try client.call("session_request", JSONObject(["request": .object(request)]))["id"])
        let decided = try control.call("pending_decide", JSONObject(["id": id, "approve": true, "secrets": .object(JSONObject([ownerKey: "1357"]))]))
        let session = try #require(decided["sessionId"]?.stringValue, "\(decided)")
        let signed = try client.call("session_signUserOperation", JSONObject([
            "sessionId": .string(session), "chainId": JSONValue(11155111), "entryPoint": .string(EntryPointVersion.v07.canonicalAddress.checksummed),
            "userOperation": SocketTests.transferOp(5_000_000, nonce: 0, sender: kernel),
        ]))
        guard case .enable(_, let enable, _) = try SessionSignature(decoding: try Hex.decode(try #require(signed["signature"]?.stringValue))) else {
            Issue.record("not an ENABLE signature"); return
        }
        let (validator, validatorSignature) = try AccountKind.kernel.parseERC1271Signature(enable.permissionEnableSig)
        #expect(validator == SmartSessionAddresses.zeroDevWebAuthnValidator)
        let wrapped = AccountKind.kernel.validatorHash(of: EnableDigest.multichainDigest(enable.hashesAndChainIds), account: try Address(kernel), chainId: 11155111,
                                                     kernelVersion: AccountKind.kernelV31)
        #expect(try Oracle.webAuthnVerdicts([.object(JSONObject([
            "format": "zerodev", "publicKey": .string(publicKey), "challenge": .string(wrapped.hex), "signature": .string(Hex.encode(validatorSignature)),
        ]))], in: authenticator.directory) == ["ok"])

        request["account"] = "0x000000000000000000000000000000000000ce1f"
        do {
            _ = try client.call("session_request", JSONObject(["request": .object(request)]))
            let pending = try #require(try control.call("pending_list").arrayValue?.first?["id"])
            _ = try control.call("pending_decide", JSONObject(["id": pending, "approve": true]))
            Issue.record("a passkey without user verification enabled a session for ZeroDev's validator")
        } catch let error as AgentClient.RemoteError {
            #expect(error.message.contains("ZeroDev's passkey validator needs user verification"), "\(error)")
        }
        #expect(try control.call("sessions_list").arrayValue?.count == 1)
    }

    /// The tap refused, the request fails with the owner's reason and no session is stored; a
    /// passkey owner added at run time (`owner add passkey:FILE`) serves the next, and is kept
    /// over a restart.
    @Test func aRefusedTapEnablesNothingAndAPasskeyAddedAtRunTimeIsKept() async throws {
        let authenticator = try SoftFIDO2()
        let (file, ownerKey) = try Self.passkey(on: authenticator)
        // The configuration's owner is the keystore; the account lists the passkey, added below.
        let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: "keystore = \"owner.json\"\npassphrase_file = \"owner.pass\"", address: ownerKey))
        try agent.start()
        defer { agent.stop() }
        let client = try AgentClient(path: agent.clientSocket)
        #expect(throws: (any Error).self) { try SocketTests.requestSession(client) }   // the passkey is not an owner yet

        let added = try Command.run(Command.sessionAgent, ["owner", "add", "passkey:" + file, "--socket", agent.controlSocket])
        #expect(added.status == 0 && added.stdout.contains(ownerKey), "\(added.stdout)\(added.stderr)")
        try authenticator.person(.refuses)
        do {
            _ = try client.call("session_request", JSONObject(["request": SocketTests.example]))
            Issue.record("a refused tap enabled a session")
        } catch let error as AgentClient.RemoteError { #expect(error.reason == "secret_needed" && error.message.contains("not tapped"), "\(error)") }
        #expect(try AgentClient(path: agent.controlSocket).call("sessions_list").arrayValue?.isEmpty == true)

        try authenticator.person(.taps)
        agent.stop()
        try agent.start()
        let listed = try Command.run(Command.sessionAgent, ["owner", "list", "--socket", agent.controlSocket])
        #expect(listed.stdout.contains("\(ownerKey)  fido2  \(file)"), "\(listed.stdout)")
        _ = try SocketTests.requestSession(try AgentClient(path: agent.clientSocket))
        let removed = try Command.run(Command.sessionAgent, ["owner", "remove", ownerKey, "--socket", agent.controlSocket])
        #expect(removed.status == 0, "\(removed.stderr)")
    }

    /// Two passkeys of a threshold-2 account: their credential ids go in ascending order, each
    /// with its own assertion, whichever order the owners signed in; the validator checks
    /// assertion i against credential i. An account's owners are of one kind, as its validator
    /// reads one kind of signature.
    @Test func twoPasskeysSignInTheOrderOfTheirCredentialIds() async throws {
        let authenticator = try SoftFIDO2()
        let first = try await FIDO2Authenticators.create(on: authenticator.device, userName: "a")
        let second = try await FIDO2Authenticators.create(on: authenticator.device, userName: "b")
        let account = try AccountConfig(json: .object(JSONObject([
            "address": .string(AgentProcess.account), "kind": "erc7579", "threshold": JSONValue(2),
            "owners": .array([first, second].map { .string(OwnerKey.passkey($0.publicKey).description) }),
        ])))
        #expect(account.ownerValidator == SmartSessionAddresses.rhinestoneWebAuthnValidator)
        let digest = Bytes32((0..<32).map { _ in UInt8.random(in: 0...255) })
        var signed: [(key: OwnerKey, signature: OwnerSignature)] = []
        for passkey in [first, second] {
            signed.append((.passkey(passkey.publicKey), try await PasskeyOwner(passkey: passkey).ownerSignature(ApprovedDigest(digest: digest, approval: "test"), prompt: { _ in throw OwnerSignerError.secretNeeded("none") })))
        }
        let encoded = account.validatorSignature(signed)
        #expect(account.validatorSignature(signed.reversed()) == encoded)
        let (ids, _, assertions) = try RhinestoneWebAuthn.decodeSignature(encoded)
        #expect(ids == ids.sorted() && ids.count == 2)
        for (id, assertion) in zip(ids, assertions) {
            let key = try #require([first, second].first { RhinestoneWebAuthn.credentialId($0.publicKey, account: account.address) == id }).publicKey
            #expect(assertion.verify(challenge: digest, publicKey: key, requireUserVerification: false))
        }

        var mixed = account.json.objectValue!
        mixed["owners"] = .array([.string(OwnerKey.passkey(first.publicKey).description), .string(AgentProcess.account)])
        mixed["ownerValidator"] = nil
        #expect(throws: AgentError.self) { try AccountConfig(json: .object(mixed)) }
    }
}
