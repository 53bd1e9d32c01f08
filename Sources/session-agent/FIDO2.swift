import ArgumentParser
import EthereumCore
import Foundation
import OwnerSigners
import SmartSessions

struct FIDO2Commands: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fido2", abstract: "FIDO2 authenticators (security keys) and the passkeys they make.",
                                                    subcommands: [FIDO2List.self, FIDO2Create.self])
}

struct FIDO2List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Show the FIDO2 authenticators plugged in.")

    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await report(output) {
            let devices: [FIDO2Authenticators.Device]
            do throws(OwnerSignerError) { devices = try await FIDO2Authenticators.list() } catch {
                throw CommandFailure(message: "\(error)", reason: error.reason)
            }
            let text = devices.isEmpty ? "no FIDO2 authenticator is plugged in"
                : devices.map { "\($0.path): \(DisplayText.escaped($0.manufacturer)) \(DisplayText.escaped($0.product))" }.joined(separator: "\n")
            return CommandOutput(text: text, json: .array(devices.map {
                .object(JSONObject(["path": .string($0.path), "manufacturer": .string($0.manufacturer), "product": .string($0.product)]))
            }))
        }
    }
}

struct FIDO2Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make a passkey on a FIDO2 authenticator (a tap) and write its file: the credential id and public key, nothing secret.",
        discussion: """
            The key never leaves the authenticator; the file is what signing with it needs. With --account, \
            also prints the install data of the account's passkey validator: Rhinestone's WebAuthnValidator \
            (and the credential id), or with --validator zerodev ZeroDev's. \
            With --user-verification the passkey is made with the authenticator's PIN (asked here, or read \
            from --pin-file), and each of its signatures needs the PIN too, which the agent asks for at \
            approval: the validator's credential then requires user verification (requireUV).
            """)

    @Option(help: "Where to write the passkey file (must not exist).", transform: absolute) var out: String
    @Option(help: "The authenticator (session-agent fido2 list; unix:PATH for one on a socket); default: the only one plugged in.") var device: String?
    @Option(name: .customLong("rp-id"), help: "The relying party id the passkey is made for.") var rpID: String = Passkey.defaultRPID
    @Option(help: "The user name the authenticator stores with it.") var user: String = "session-agent owner"
    @Option(help: "The smart account whose WebAuthnValidator will list the passkey.") var account: String?
    @Option(help: "With --account: rhinestone (Rhinestone's WebAuthnValidator) or zerodev (ZeroDev's passkey validator, Kernel's; needs --user-verification).")
    var validator: String = "rhinestone"
    @Flag(name: .customLong("user-verification"), help: "Make it with the authenticator's PIN: each signature needs the PIN as well as the tap.") var userVerification = false
    @Option(name: .customLong("pin-file"), help: "With --user-verification: read the PIN from this file instead of asking.") var pinFile: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if pinFile != nil && !userVerification { throw ValidationError("--pin-file goes with --user-verification") }
        guard ["rhinestone", "zerodev"].contains(validator) else { throw ValidationError("--validator: rhinestone or zerodev") }
        if validator == "zerodev" && !userVerification {
            throw ValidationError("ZeroDev's passkey validator requires user verification: add --user-verification")
        }
    }

    func run() async throws {
        try await report(output) {
            guard !FileManager.default.fileExists(atPath: out) else { throw CommandFailure(message: "\(out) exists; not overwriting it") }
            let account: Address?
            do { account = try self.account.map { try Address($0) } } catch { throw CommandFailure(message: "--account: \(error)") }
            var pin: SecretBytes?
            if userVerification {
                if let pinFile {
                    do { pin = try SecretFile.read(pinFile, what: "PIN file") } catch { throw CommandFailure(message: "\(error)") }
                } else {
                    guard let typed = Terminal.readSecret("PIN of the FIDO2 authenticator: ") else {
                        throw CommandFailure(message: "standard input ended before the PIN was typed; give it with --pin-file")
                    }
                    pin = typed
                }
            }
            FileHandle.standardError.write(Data("Tap the FIDO2 authenticator to make the passkey.\n".utf8))
            let passkey: Passkey
            do throws(OwnerSignerError) { passkey = try await FIDO2Authenticators.create(on: device, rpID: rpID, userName: user, pin: pin) } catch {
                throw CommandFailure(message: "\(error)", reason: error.reason)
            }
            guard FileManager.default.createFile(atPath: out, contents: Data((passkey.json.prettyPrinted + "\n").utf8)) else {
                throw CommandFailure(message: "cannot write \(out)")
            }
            var text = ["passkey written to \(out)", "public key: \(Hex.encode([4] + passkey.publicKey.x.bytes + passkey.publicKey.y.bytes))"]
            var json = passkey.json.objectValue!
            json["file"] = .string(out)
            if let account, validator == "zerodev" {
                // The authenticator id is the credential id as WebAuthn writes it (base64url), as module-sdk hashes it.
                let address = SmartSessionAddresses.zeroDevWebAuthnValidator
                let install = ZeroDevWebAuthn.installData(passkey.publicKey, authenticatorId: WebAuthnAssertion.base64url(passkey.credentialID))
                text += ["ZeroDev passkey validator \(address.checksummed) for \(account.checksummed):", "  install data: \(Hex.encode(install))"]
                json["zeroDevValidator"] = .object(JSONObject(["address": .string(address.checksummed), "account": .string(account.checksummed),
                                                               "installData": .string(Hex.encode(install))]))
            } else if let account {
                let validator = SmartSessionAddresses.rhinestoneWebAuthnValidator
                let id = RhinestoneWebAuthn.credentialId(passkey.publicKey, account: account)
                // requireUV as the passkey was made: one without the PIN signs with a tap alone.
                let install = try RhinestoneWebAuthn.installData(threshold: 1, credentials: [.init(publicKey: passkey.publicKey, requireUserVerification: passkey.userVerification)],
                                                                 account: account)
                text += ["WebAuthnValidator \(validator.checksummed) for \(account.checksummed):", "  credential id: \(id.hex)", "  install data: \(Hex.encode(install))"]
                json["webAuthnValidator"] = .object(JSONObject(["address": .string(validator.checksummed), "account": .string(account.checksummed),
                                                                "credentialId": .string(id.hex), "installData": .string(Hex.encode(install))]))
            }
            return CommandOutput(text: text.joined(separator: "\n"), json: .object(json))
        }
    }
}
