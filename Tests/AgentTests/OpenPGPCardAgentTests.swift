import Agent
import EthereumCore
import Foundation
import OwnerSigners
import SmartSessions
import Testing
import TestSupport

/// The agent with its owner key on an OpenPGP card, end to end: the key made by
/// `session-agent card generate`, the card in pcscd's virtual reader, approval by rules and the
/// PIN from a file, as a server runs it.
@Suite("OpenPGP card owners, end to end", .enabled(if: PCSCDaemon.isAvailable, "\(PCSCDaemon.unavailableReason ?? "")"))
struct OpenPGPCardAgentTests {
    let serial = String(format: "%08X", UInt32.random(in: 1...UInt32.max))
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("card-agent-\(UUID().uuidString.prefix(8))")

    /// The card's new secp256k1 key, made through the CLI, and a PIN file holding `pin`.
    func cardWithKey(pin: String = PCSCDaemon.userPIN) throws -> (address: Address, pinFile: String) {
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let adminFile = scratch.appendingPathComponent("admin-pin").path, pinFile = scratch.appendingPathComponent("pin").path
        try writeSecretFile(PCSCDaemon.adminPIN, adminFile)
        try writeSecretFile(pin, pinFile)
        let made = try Command.run(Command.sessionAgent, ["card", "generate", "--serial", serial.lowercased(), "--admin-pin-file", adminFile, "--json"])
        #expect(made.status == 0, "\(made.stderr)")
        let address = try Address(try #require(try JSONValue(parsing: made.stdout)["address"]?.stringValue))
        // `card list` shows it, with the line of configuration that makes it an owner.
        let listed = try Command.run(Command.sessionAgent, ["card", "list"])
        #expect(listed.stdout.contains("Virtual PCD 00 00: OpenPGP card \(serial) (manufacturer ff00)\n  signature key: address \(address.checksummed)\n  PIN: 3 tries left, Admin PIN: 3\n  owner: [[owners]] openpgp_card = \"\(serial)\", or session-agent owner add card:\(serial)\nVirtual PCD 00 01: no card"), "\(listed.stdout)")
        return (address, pinFile)
    }

    func pinTriesLeft() throws -> JSONValue? {
        let listed = try JSONValue(parsing: try Command.run(Command.sessionAgent, ["card", "list", "--json"]).stdout)
        return listed.arrayValue?.first { $0["serial"]?.stringValue == serial }?["pinTriesLeft"]
    }

    @Test func aSessionApprovedByRulesIsEnabledByTheCardKey() async throws {
        try await PCSCDaemon.exclusively(card: serial) { _ in
            defer { try? FileManager.default.removeItem(at: scratch) }
            let (address, pinFile) = try cardWithKey()
            // No address in the configuration: the agent reads it from the card at start.
            let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
                openpgp_card = "\(serial)"
                pin_file = "\(pinFile)"
                """, address: address.checksummed))
            try agent.start()
            defer { agent.stop() }
            let control = try AgentClient(path: agent.controlSocket)
            let owners = try control.call("owners_list").arrayValue ?? []
            #expect(owners.count == 1 && owners[0]["backend"] == "openpgp-card" && owners[0]["address"]?.stringValue == address.checksummed
                    && owners[0]["ready"] == .bool(true), "\(owners)")

            let client = try AgentClient(path: agent.clientSocket)
            let sessionId = try SocketTests.requestSession(client)
            #expect(try SocketTests.enableSigners(try SocketTests.sign(client, sessionId, 5_000_000, nonce: 0)).owner == address)
            let decision = try control.call("audit_show", JSONObject(["kind": "decision", "limit": JSONValue(1)])).arrayValue?.first?["entry"]
            let signer = decision?["signedBy"]?.arrayValue?.first
            #expect(signer?["backend"] == "openpgp-card" && signer?["location"]?.stringValue == "OpenPGP card \(serial)", "\(String(describing: decision))")
            #expect(try pinTriesLeft() == JSONValue(3))
            #expect(!agent.logs.contains(PCSCDaemon.userPIN))
        }
    }

    /// A person approving at the terminal is asked for the card's PIN with its tries left, may
    /// type it again after a wrong one, and is asked again at the next approval: the card keeps
    /// nothing unlocked between them.
    @Test func theApproverTypesTheCardPINForEachApproval() async throws {
        try await PCSCDaemon.exclusively(card: serial) { _ in
            defer { try? FileManager.default.removeItem(at: scratch) }
            let (address, _) = try cardWithKey()
            let agent = try AgentProcess(rules: "default = \"ask\"", owner: .init(toml: """
                openpgp_card = "\(serial)"
                address = "\(address.checksummed)"
                """, address: address.checksummed))
            try agent.start()
            defer { agent.stop() }
            let client = try AgentClient(path: agent.clientSocket)
            func approve(typing: String) throws -> (id: String, output: String, prompts: String) {
                let id = try #require(try client.call("session_request", JSONObject(["request": SocketTests.example]))["id"]?.stringValue)
                let run = try Command.run(Command.sessionAgent, ["approve", "--once", "--socket", agent.controlSocket], stdin: Array(typing.utf8))
                #expect(run.status == 0, "\(run.stderr)")
                return (id, run.stdout, run.stderr)
            }
            let asks = try AgentClient(path: agent.controlSocket).call("owners_list").arrayValue?.first?["asks"]
            #expect(asks == .string("PIN of OpenPGP card \(serial) (3 tries left)"), "\(String(describing: asks))")
            let first = try approve(typing: "y\n654321\ny\n\(PCSCDaemon.userPIN)\n")
            #expect(first.prompts.contains("PIN of OpenPGP card \(serial) (3 tries left)") && first.prompts.contains("PIN of OpenPGP card \(serial) (2 tries left)"), "\(first.prompts)")
            #expect(first.output.contains("OpenPGP card \(serial): wrong PIN: 2 tries left") && first.output.contains("still pending"), "\(first.output)")
            #expect(first.output.contains("\(first.id): approved"), "\(first.output)")
            let second = try approve(typing: "y\n\(PCSCDaemon.userPIN)\n")
            #expect(second.output.contains("\(second.id): approved") && second.prompts.contains("PIN of OpenPGP card \(serial) (3 tries left)"), "\(second.output) \(second.prompts)")
            #expect(!agent.logs.contains("654321") && !agent.logs.contains(PCSCDaemon.userPIN))
        }
    }

    /// `owner add card:SERIAL`: the agent reads the key from the card and tries a PIN file at
    /// once; the registration outlives a restart, and a card pulled out fails approvals clearly
    /// while the agent serves on.
    @Test func aCardOwnerAddedAtRunTime() async throws {
        try await PCSCDaemon.exclusively(card: serial) { pcscd in
            defer { try? FileManager.default.removeItem(at: scratch) }
            let (address, pinFile) = try cardWithKey()
            let agent = try AgentProcess(rules: "default = \"approve\"")
            try agent.start()
            defer { agent.stop() }
            let wrongFile = scratch.appendingPathComponent("wrong-pin").path
            try writeSecretFile("654321", wrongFile)
            let wrong = try Command.run(Command.sessionAgent, ["owner", "add", "card:\(serial)", "--pin-file", wrongFile, "--socket", agent.controlSocket])
            #expect(wrong.status == 1 && wrong.stderr.contains("OpenPGP card \(serial): wrong PIN: 2 tries left"), "\(wrong.stderr)")
            let again = try Command.run(Command.sessionAgent, ["owner", "add", "card:\(serial)", "--pin-file", wrongFile, "--socket", agent.controlSocket])
            #expect(again.status == 1 && again.stderr.contains("not offering it again"), "\(again.stderr)")
            #expect(try pinTriesLeft() == JSONValue(2))
            let stray = try Command.run(Command.sessionAgent, ["rpc", "owners_add", "--control", "--socket", agent.controlSocket, #"{"openpgpCard":"\#(serial)","pin":"1"}"#])
            #expect(stray.status != 0 && stray.stderr.contains("params.pin: not for a card owner, which takes pinFile"), "\(stray.stderr)")
            let noCard = try Command.run(Command.sessionAgent, ["owner", "add", "card:0BADCAFE", "--socket", agent.controlSocket])
            #expect(noCard.status == 1 && noCard.stderr.contains("OpenPGP card 0BADCAFE is not in any reader"), "\(noCard.stderr)")

            let added = try Command.run(Command.sessionAgent, ["owner", "add", "card:\(serial)", "--pin-file", pinFile, "--socket", agent.controlSocket, "--json"])
            #expect(added.status == 0, "\(added.stderr)")
            let json = try JSONValue(parsing: added.stdout)
            #expect(json["address"]?.stringValue == address.checksummed && json["backend"] == "openpgp-card" && json["location"]?.stringValue == "OpenPGP card \(serial)", "\(json)")
            #expect(try pinTriesLeft() == JSONValue(3))
            let control = try AgentClient(path: agent.controlSocket)
            _ = try control.call("accounts_add", JSONObject(["account": .object(JSONObject([
                "address": .string(RegistrationTests.other), "kind": "erc7579", "owners": .array([.string(address.checksummed)]), "chains": .array([JSONValue(11155111)]),
            ]))]))
            #expect(try RegistrationTests.request(try AgentClient(path: agent.clientSocket), account: RegistrationTests.other)["status"] == "approved")

            pcscd.removeCard()
            do {
                _ = try RegistrationTests.request(try AgentClient(path: agent.clientSocket), account: RegistrationTests.other)
                Issue.record("approved with the card pulled out")
            } catch let e as AgentClient.RemoteError { #expect(e.reason == "owner_unavailable" && e.message.contains("OpenPGP card \(serial) is not in any reader"), "\(e)") }
            let listed = try Command.run(Command.sessionAgent, ["owner", "list", "--socket", agent.controlSocket])
            #expect(listed.status == 1 && listed.stdout.contains("not in any reader"), "\(listed.stdout)")
            try pcscd.insertCard()
            agent.stop()
            try agent.start()
            #expect(try RegistrationTests.request(try AgentClient(path: agent.clientSocket), account: RegistrationTests.other)["status"] == "approved")
            #expect(!agent.logs.contains("654321") && !agent.logs.contains(PCSCDaemon.userPIN))
        }
    }

    /// A PIN file the card rejected is not offered again, by this agent or a restarted one, until
    /// the card shows a PIN verified since: every approval would spend one of its three tries.
    @Test func aRejectedPINFileIsNotOfferedAgainUntilTheCardWasUnlockedSince() async throws {
        try await PCSCDaemon.exclusively(card: serial) { pcscd in
            defer { try? FileManager.default.removeItem(at: scratch) }
            let (address, pinFile) = try cardWithKey(pin: "654321")
            let agent = try AgentProcess(rules: "default = \"approve\"", owner: .init(toml: """
                openpgp_card = "\(serial)"
                pin_file = "\(pinFile)"
                address = "\(address.checksummed)"
                """, address: address.checksummed))
            try agent.start()
            defer { agent.stop() }
            func request(failsWith expected: String) throws {
                do {
                    _ = try AgentClient(path: agent.clientSocket).call("session_request", JSONObject(["request": SocketTests.example]))
                    Issue.record("approved with a wrong PIN")
                } catch let e as AgentClient.RemoteError { #expect(e.reason == "wrong_secret" && e.message.contains(expected), "\(e)") }
            }
            try request(failsWith: "OpenPGP card \(serial): wrong PIN: 2 tries left")
            try request(failsWith: "it rejected the PIN in the PIN file \(pinFile) before, and no PIN has been verified on it since")
            agent.stop()
            try agent.start()
            try request(failsWith: "no PIN has been verified on it since")
            #expect(try pinTriesLeft() == JSONValue(2))
            let owner = try Command.run(Command.sessionAgent, ["owner", "list", "--socket", agent.controlSocket, "--json"])
            #expect(owner.status == 1 && owner.stdout.contains("wrong_secret"), "\(owner.stdout)")

            // The operator verifies the right PIN with another tool: the card counts 3 again, and
            // the file's PIN is offered again (still wrong: 2 left).
            let verified = try pcscd.send(["00A4040006D27600012401", "0020008106" + Hex.encode(Array(PCSCDaemon.userPIN.utf8), prefix: false)])
            #expect(verified.components(separatedBy: "SW1=0x90, SW2=0x00").count == 3, "\(verified)")
            #expect(try pinTriesLeft() == JSONValue(3))
            try request(failsWith: "wrong PIN: 2 tries left")
            // Mended, the file signs.
            try writeSecretFile(PCSCDaemon.userPIN, pinFile)
            #expect(try AgentClient(path: agent.clientSocket).call("session_request", JSONObject(["request": SocketTests.example]))["status"] == "approved")
            #expect(try pinTriesLeft() == JSONValue(3))
            #expect(!agent.logs.contains("654321") && !agent.logs.contains(PCSCDaemon.userPIN))
        }
    }
}
