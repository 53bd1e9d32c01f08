import EthereumCore
import Foundation
import OwnerSigners
import Testing
import TestSupport

/// `session-agent fido2`, with the software authenticator on a socket as the device.
@Suite("fido2 list and create", .enabled(if: SoftFIDO2.isAvailable, "\(SoftFIDO2.unavailableReason ?? "")"))
struct FIDO2CommandTests {
    /// `fido2 create` makes the passkey with a tap, writes its file (which a passkey owner
    /// signs from) and prints the account's install data for the WebAuthnValidator, which the
    /// oracle decodes with eth-abi; it never overwrites a file.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func createWritesThePasskeyFileAndTheValidatorsInstallData() async throws {
        let authenticator = try SoftFIDO2()
        let file = authenticator.directory.appendingPathComponent("owner.passkey.json").path
        let account = "0x" + String(repeating: "5a", count: 20)
        let made = try Command.run(Command.sessionAgent, ["fido2", "create", "--device", authenticator.device, "--out", file, "--account", account, "--json"])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stderr.contains("Tap the FIDO2 authenticator"))
        #expect(authenticator.tapsAskedFor == 1)
        let printed = try JSONValue(parsing: made.stdout)
        let passkey = try Passkey.read(file)
        #expect(passkey.device == authenticator.device && passkey.rpID == Passkey.defaultRPID)
        let publicKey = Hex.encode([4] + passkey.publicKey.x.bytes + passkey.publicKey.y.bytes)
        #expect(printed["publicKey"]?.stringValue == publicKey && printed["file"]?.stringValue == file)
        let validator = try #require(printed["webAuthnValidator"])
        #expect(validator["address"]?.stringValue == "0x0000000000578c4cB0e472a5462da43C495C3F33")
        let install = JSONValue.object(JSONObject(["publicKey": .string(publicKey), "installData": validator["installData"] ?? .null]))
        #expect(try Oracle.webAuthnVerdicts([install], in: authenticator.directory) == ["ok"])
        #expect(validator["credentialId"]?.stringValue == Keccak256.hash(passkey.publicKey.x.bytes + passkey.publicKey.y.bytes + (try Address(account)).word.bytes).hex)

        let again = try Command.run(Command.sessionAgent, ["fido2", "create", "--device", authenticator.device, "--out", file])
        #expect(again.status != 0 && again.stderr.contains("exists; not overwriting it"))
        #expect(authenticator.tapsAskedFor == 1)
        #expect(try Passkey.read(file) == passkey)
    }

    /// An authenticator that is not there, or a refused tap, is a clear error with its reason,
    /// and no file is written.
    @Test func aCreateThatFailsWritesNothing() throws {
        let authenticator = try SoftFIDO2()
        let file = authenticator.directory.appendingPathComponent("owner.passkey.json").path
        try authenticator.person(.refuses)
        let refused = try Command.run(Command.sessionAgent, ["fido2", "create", "--device", authenticator.device, "--out", file, "--json"])
        #expect(refused.status != 0 && refused.stderr.contains("\"reason\": \"secret_needed\"") && refused.stderr.contains("not tapped"), "\(refused.stderr)")
        authenticator.unplug()
        let gone = try Command.run(Command.sessionAgent, ["fido2", "create", "--device", authenticator.device, "--out", file])
        #expect(gone.status != 0 && gone.stderr.contains("is not there"), "\(gone.stderr)")
        #expect(!FileManager.default.fileExists(atPath: file))
    }

    /// Without a device named, the authenticators plugged in are listed (none on a machine
    /// without FIDO HID devices, as in CI).
    @Test func listShowsTheDevicesPluggedIn() throws {
        let listed = try Command.run(Command.sessionAgent, ["fido2", "list", "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(try JSONValue(parsing: listed.stdout).arrayValue != nil)
    }
}
