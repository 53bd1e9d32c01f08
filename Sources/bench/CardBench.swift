import EthereumCore
import Foundation
import OwnerSigners
import TestSupport

/// Owner signing on an OpenPGP card (the emulator behind vsmartcard's virtual reader, as the
/// tests run it) through the agent's card owner (the card read and checked, then found again,
/// VERIFY and PSO:CDS in one transaction, low s, v by trial recovery and the address check)
/// against a plain VERIFY + PSO:CDS loop on one connection to the same card.
enum CardBench {
    static let serial = "BE7C0001"

    static func run(directory: String) async throws {
        if let reason = PCSCDaemon.unavailableReason {
            print("card: \(reason); skipped")
            return
        }
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let pinFile = directory + "/pin"
        try writeSecretFile(PCSCDaemon.userPIN, pinFile)
        try await PCSCDaemon.exclusively(card: serial) { _ in
            let made = try await OpenPGPCards.generateSigningKey(on: serial, curve: .secp256k1, replacing: false) { _ in SecretBytes(utf8: PCSCDaemon.adminPIN) }
            let owner = OpenPGPCardOwner(serial: serial, pin: .file(pinFile), address: made.address!)
            print("owner signing on an OpenPGP card (the smartcard-app-openpgp emulator behind vpcd): the agent's card owner vs a plain VERIFY + PSO:CDS loop")
            let count = 100
            let pin = SecretBytes(utf8: PCSCDaemon.userPIN)
            let context = try PCSCContext()
            let card = try context.connect(made.reader)
            let applet = try OpenPGPApplet.select(on: card)!
            let clock = ContinuousClock()
            var plain: [Duration] = [], agent: [Duration] = [], kept: UInt8 = 0
            // Interleaved, so that a slower stretch of the machine falls on both.
            for index in 0..<count {
                let digest = keccak256(Array("card bench \(index)".utf8))
                let start = clock.now
                try applet.verifySigningPIN(pin)
                kept ^= try applet.sign(digest, pinStaysValid: false)[0]
                plain.append(clock.now - start)
                let then = clock.now
                kept ^= try await owner.sign(ApprovedDigest(digest: digest, approval: "bench"), prompt: { _ in pin }).v
                agent.append(clock.now - then)
            }
            let plainMedian = median(plain), agentMedian = median(agent)
            row("  plain VERIFY + PSO:CDS on one connection, median of \(count)", plainMedian, "ms/signature")
            row("  the agent's card owner, median of \(count)", agentMedian, "ms/signature", ratio: agentMedian / plainMedian)
            print("  (kept \(kept))")
        }
    }

    static func median(_ durations: [Duration]) -> Double {
        let sorted = durations.sorted()
        return sorted[sorted.count / 2].seconds * 1000
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
