import ArgumentParser
import EthereumCore
import Foundation
import OwnerSigners

struct OpenPGPCardCommands: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "card", abstract: "OpenPGP cards (YubiKey 5, Nitrokey 3 …) in the readers pcscd serves.",
                                                    subcommands: [OpenPGPCardList.self, OpenPGPCardGenerate.self])
}

struct OpenPGPCardList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show each reader and its OpenPGP card: serial number, signature key (with its Ethereum address when secp256k1) and PIN tries left.")

    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await report(output) {
            let slots: [OpenPGPCards.Slot]
            do throws(OpenPGPCardFailure) { slots = try await OpenPGPCards.list() } catch {
                throw CommandFailure(message: "\(error)", reason: error.ownerError.reason)
            }
            var text: [String] = slots.isEmpty ? ["pcscd knows no reader"] : []
            var json: [JSONValue] = []
            for slot in slots {
                let reader = DisplayText.escaped(slot.reader)
                switch slot.card {
                case .failure(let problem):
                    text.append("\(reader): \(problem)")
                    json.append(.object(JSONObject(["reader": .string(slot.reader), "error": .string("\(problem)")])))
                case .success(let card):
                    let key = card.address.map { "address \($0.checksummed)" } ?? card.signingKey.map { "\(card.signingAlgorithm) key \(Hex.encode($0))" } ?? "no key (\(card.signingAlgorithm))"
                    text.append("\(reader): OpenPGP card \(card.serial) (manufacturer \(card.manufacturer))")
                    text.append("  signature key: \(key)")
                    text.append("  PIN: \(card.pinTriesLeft) tries left, Admin PIN: \(card.adminPINTriesLeft)")
                    if card.address != nil { text.append("  owner: [[owners]] openpgp_card = \"\(card.serial)\", or session-agent owner add card:\(card.serial)") }
                    var object = JSONObject(["reader": .string(slot.reader), "serial": .string(card.serial), "manufacturer": .string(card.manufacturer),
                                             "aid": .string(Hex.encode(card.aid)), "signingAlgorithm": .string(card.signingAlgorithm),
                                             "pinTriesLeft": JSONValue(card.pinTriesLeft), "adminPINTriesLeft": JSONValue(card.adminPINTriesLeft)])
                    object["signingKey"] = card.signingKey.map { .string(Hex.encode($0)) } ?? .null
                    object["address"] = card.address.map { .string($0.checksummed) } ?? .null
                    json.append(.object(object))
                }
            }
            return CommandOutput(text: text.joined(separator: "\n"), json: .array(json))
        }
    }
}

struct OpenPGPCardGenerate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Make a new signature key on an OpenPGP card (it never leaves the card), to be an owner.")

    @Option(help: "The card's serial number (session-agent card list).") var serial: String
    @Option(help: "secp256k1 (an owner of OwnableValidator accounts) or p256.") var curve: String = "secp256k1"
    @Flag(help: "Replace the signature key the card holds. It is destroyed: nothing brings it back.") var replace = false
    @Option(name: .customLong("admin-pin-file"), help: "Read the Admin PIN from this file; otherwise it is asked on the terminal.",
            transform: absolute) var adminPINFile: String?
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await report(output) {
            guard let curve = OpenPGPCurve(rawValue: curve) else { throw CommandFailure(message: "--curve: secp256k1 or p256") }
            let file = adminPINFile
            let info: OpenPGPCardInfo
            do throws(OpenPGPCardFailure) {
                info = try await OpenPGPCards.generateSigningKey(on: try OpenPGPCards.serial(serial), curve: curve, replacing: replace) { description in
                    if let file { return try SecretFile.read(file, what: "Admin PIN file") }
                    guard let pin = Terminal.readSecret("\(description): ") else {
                        throw CommandFailure(message: "standard input ended before the Admin PIN; give it with --admin-pin-file", reason: "secret_needed")
                    }
                    return pin
                }
            } catch { throw CommandFailure(message: "\(error)", reason: error.ownerError.reason) }
            let shown = info.address?.checksummed ?? info.signingKey.map { Hex.encode($0) } ?? ""
            var json = JSONObject(["serial": .string(info.serial), "signingAlgorithm": .string(info.signingAlgorithm)])
            json["address"] = info.address.map { .string($0.checksummed) } ?? .null
            json["signingKey"] = info.signingKey.map { .string(Hex.encode($0)) } ?? .null
            return CommandOutput(text: "\(shown)\nOpenPGP card \(info.serial)", json: .object(json))
        }
    }
}
