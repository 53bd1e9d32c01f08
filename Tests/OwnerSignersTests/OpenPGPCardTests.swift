import CPCSC
import EthereumCore
import Foundation
import OwnerSigners
import Testing
import TestSupport

/// An OpenPGP card owner through the real PC/SC stack: pcscd, vsmartcard's virtual reader, and
/// the card emulator of `Tests/rig/openpgp-card.py` behind it.
@Suite("OpenPGP card owners", .enabled(if: PCSCDaemon.isAvailable, "\(PCSCDaemon.unavailableReason ?? "")"))
struct OpenPGPCardTests {
    let serial = String(format: "%08X", UInt32.random(in: 1...UInt32.max))

    static func pin(_ text: String) -> SecretPrompt { { _ in SecretBytes(utf8: text) } }

    /// Makes the card's secp256k1 signature key, as `session-agent card generate` does.
    func generate() async throws -> OpenPGPCardInfo {
        try await OpenPGPCards.generateSigningKey(on: serial, curve: .secp256k1, replacing: false, adminPIN: Self.pin(PCSCDaemon.adminPIN))
    }

    func card() async throws -> OpenPGPCardInfo {
        let slot = try #require(try await OpenPGPCards.list().first { (try? $0.card.get())?.serial == serial })
        return try slot.card.get()
    }

    static func approved(_ digest: Bytes32) -> ApprovedDigest { ApprovedDigest(digest: digest, approval: "test") }

    @Test func aCardKeySignsDigestsThatRecoverToItsAddressWithLowS() async throws {
        try await PCSCDaemon.exclusively(card: serial) { _ in
            let made = try await generate()
            let point = try #require(made.signingKey)
            #expect(made.signingAlgorithm == "secp256k1" && made.serial == serial && point.count == 65)
            // The address is the card's public point's, computed here apart from the card code.
            let address = Address(publicKey: Array(point.dropFirst()))
            #expect(made.address == address)
            let listed = try await card()
            #expect(listed.address == address && listed.pinTriesLeft == 3 && listed.reader == "Virtual PCD 00 00")

            let owner = try await OpenPGPCardOwner.load(serial: serial, pin: .prompt)
            #expect(owner.identity.address == address && owner.identity.backend == "openpgp-card")
            // The card signs with the `cryptography` package, whose s is high about half the time.
            var generator = SplitMix64(seed: UInt64.random(in: 1...UInt64.max))
            for _ in 0..<12 {
                let digest = Bytes32((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
                let signature = try await owner.sign(Self.approved(digest), prompt: Self.pin(PCSCDaemon.userPIN))
                #expect(signature.hasLowS && (signature.v == 27 || signature.v == 28))
                #expect(try signature.recoverAddress(digest: digest) == address)
            }
            #expect(try await card().pinTriesLeft == 3)
        }
    }

    /// A card set to keep the PIN verified for several signatures is reset when the agent lets
    /// go of it, so the next program to use the card cannot sign without the PIN; one that keeps
    /// it for one signature needs no reset.
    @Test func noPINStaysVerifiedForTheNextProgram() async throws {
        try await PCSCDaemon.exclusively(card: serial) { pcscd in
            let address = try #require(try await generate().address)
            let owner = OpenPGPCardOwner(serial: serial, pin: .prompt, address: address)
            let select = "00A4040006D27600012401", signWithoutPIN = "002A9E9A20" + String(repeating: "11", count: 32) + "00"
            for several in [false, true] {
                if several {
                    // PUT DATA C4 with the Admin PIN: "PW1 valid for several PSO:CDS".
                    let set = try pcscd.send([select, "0020008308" + Hex.encode(Array(PCSCDaemon.adminPIN.utf8), prefix: false), "00DA00C40101"])
                    #expect(set.components(separatedBy: "SW1=0x90, SW2=0x00").count == 4, "\(set)")
                }
                let digest = keccak256(Array("several: \(several)".utf8))
                #expect(try await owner.sign(Self.approved(digest), prompt: Self.pin(PCSCDaemon.userPIN)).recoverAddress(digest: digest) == address)
                let after = try pcscd.send([select, signWithoutPIN])
                #expect(after.contains("SW1=0x69, SW2=0x82"), "several: \(several): \(after)")
            }
        }
    }

    @Test func aWrongPINSaysHowManyTriesAreLeftAndARightOneResetsTheCount() async throws {
        try await PCSCDaemon.exclusively(card: serial) { _ in
            let address = try #require(try await generate().address)
            let owner = OpenPGPCardOwner(serial: serial, pin: .prompt, address: address)
            #expect(await owner.readiness() == .needsSecret("PIN of OpenPGP card \(serial) (3 tries left)"))
            let digest = keccak256(Array("a wrong PIN".utf8))
            for left in [2, 1] {
                await #expect(throws: OwnerSignerError.wrongSecret("OpenPGP card \(serial): wrong PIN: \(left) tr\(left == 1 ? "y" : "ies") left")) {
                    try await owner.sign(Self.approved(digest), prompt: Self.pin("654321"))
                }
            }
            #expect(await owner.readiness() == .needsSecret("PIN of OpenPGP card \(serial) (last try: a wrong PIN blocks the card)"))
            // A PIN from a file never spends the last try, right or not: the count stays.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("card-pin-\(serial)").path
            try writeSecretFile(PCSCDaemon.userPIN, file)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let unattended = OpenPGPCardOwner(serial: serial, pin: .file(file), address: address)
            let refusal = OwnerSignerError.wrongSecret("OpenPGP card \(serial): its PIN has one try left, which a PIN from the PIN file \(file) is not allowed to spend")
            #expect(await unattended.readiness() == .notReady(refusal))
            await #expect(throws: refusal) { try await unattended.sign(Self.approved(digest), prompt: Self.pin("unused")) }
            #expect(try await card().pinTriesLeft == 1)
            // A person may spend it; the right PIN signs and the card counts 3 again.
            let signature = try await owner.sign(Self.approved(digest), prompt: Self.pin(PCSCDaemon.userPIN))
            #expect(try signature.recoverAddress(digest: digest) == address)
            #expect(try await card().pinTriesLeft == 3)
            #expect(await unattended.readiness() == .ready)
            #expect(try await unattended.sign(Self.approved(digest), prompt: Self.pin("unused")).recoverAddress(digest: digest) == address)
        }
    }

    @Test func aCardPulledOutIsUnavailableAndSignsOnceItIsBack() async throws {
        try await PCSCDaemon.exclusively(card: serial) { pcscd in
            let address = try #require(try await generate().address)
            let owner = OpenPGPCardOwner(serial: serial, pin: .prompt, address: address)
            let digest = keccak256(Array("pulled out".utf8))
            pcscd.removeCard()
            let away = "OpenPGP card \(serial) is not in any reader (readers: Virtual PCD 00 00, Virtual PCD 00 01)"
            #expect(await owner.readiness() == .notReady(.unavailable(away)))
            await #expect(throws: OwnerSignerError.unavailable(away)) { try await owner.sign(Self.approved(digest), prompt: Self.pin(PCSCDaemon.userPIN)) }
            try pcscd.insertCard()
            #expect(try await owner.sign(Self.approved(digest), prompt: Self.pin(PCSCDaemon.userPIN)).recoverAddress(digest: digest) == address)

            // Pulled out while the person types the PIN: the PIN is never sent, so no try is spent.
            nonisolated(unsafe) let reader = pcscd
            await #expect(throws: OwnerSignerError.unavailable(away)) {
                try await owner.sign(Self.approved(digest)) { _ in
                    reader.removeCard()
                    return SecretBytes(utf8: PCSCDaemon.userPIN)
                }
            }
            try pcscd.insertCard()
            #expect(try await card().pinTriesLeft == 3)
            #expect(try await owner.sign(Self.approved(digest), prompt: Self.pin(PCSCDaemon.userPIN)).recoverAddress(digest: digest) == address)

            // Without pcscd at all, the error says what to start.
            pcscd.stop()
            let readiness = await owner.readiness()
            guard case .notReady(.unavailable(let problem)) = readiness else {
                Issue.record("\(readiness)")
                return
            }
            #expect(problem.contains("is pcscd running?"), "\(problem)")
        }
    }

    /// A card that stops answering fails the signature after the timeout (the agent's
    /// `pkcs11_timeout`), and every card call after it at once, until it answers again.
    @Test func aCardThatHangsFailsAfterTheTimeoutAndSignsOnceItAnswers() async throws {
        try await PCSCDaemon.exclusively(card: serial) { pcscd in
            let address = try #require(try await generate().address)
            let owner = OpenPGPCardOwner(serial: serial, pin: .prompt, address: address)
            let timeout = OpenPGPCards.answerTimeout
            OpenPGPCards.answerTimeout = .seconds(2)
            defer { OpenPGPCards.answerTimeout = timeout }
            let digest = keccak256([3])
            pcscd.freezeCard()
            let hung = OwnerSignerError.unavailable("OpenPGP card \(serial): the card did not answer within 2 s (a card or reader that hangs); cards are used again once it answers")
            await #expect(throws: hung) { try await owner.sign(Self.approved(digest), prompt: Self.pin(PCSCDaemon.userPIN)) }
            #expect(await owner.readiness() == .notReady(.unavailable("OpenPGP card \(serial): a card has not answered for over 2 s (a card or reader that hangs); cards are used again once it answers")))
            pcscd.freezeCard(false)
            // The stuck call returns, and the card is used again.
            let clock = ContinuousClock(), deadline = clock.now + .seconds(20)
            while case .notReady = await owner.readiness(), clock.now < deadline { _ = poll(nil, 0, 50) }
            #expect(await owner.readiness() == .needsSecret("PIN of OpenPGP card \(serial) (3 tries left)"))
            #expect(try await owner.sign(Self.approved(digest), prompt: Self.pin(PCSCDaemon.userPIN)).recoverAddress(digest: digest) == address)
        }
    }

    /// A card that takes its PINs derived by a KDF (gpg's kdf-setup) would count the PIN as typed
    /// as a wrong one: it is never sent, and the tries stay.
    @Test func aCardThatDerivesItsPINsIsNeverSentOne() async throws {
        try await PCSCDaemon.exclusively(card: serial) { pcscd in
            let address = try #require(try await generate().address)
            let set = try pcscd.send(["00A4040006D27600012401", "0020008308" + Hex.encode(Array(PCSCDaemon.adminPIN.utf8), prefix: false), "00DA00F903810103"])
            #expect(set.components(separatedBy: "SW1=0x90, SW2=0x00").count == 4, "\(set)")
            let owner = OpenPGPCardOwner(serial: serial, pin: .prompt, address: address)
            await #expect(throws: OwnerSignerError.failed("OpenPGP card \(serial): the card takes its PINs derived by a KDF (gpg's kdf-setup), which the agent does not do yet; "
                                                           + "the PIN was not sent, so no try was spent (gpg --card-edit, admin, kdf-setup turns it off)")) {
                try await owner.sign(Self.approved(keccak256([4])), prompt: Self.pin(PCSCDaemon.userPIN))
            }
            #expect(try await card().pinTriesLeft == 3)
        }
    }

    /// A card another program holds for itself (gpg's scdaemon does) is named with the reason
    /// and what to do, and signs once it is let go.
    @Test func aCardHeldByAnotherProgramIsNamedSo() async throws {
        try await PCSCDaemon.exclusively(card: serial) { _ in
            let address = try #require(try await generate().address)
            let owner = OpenPGPCardOwner(serial: serial, pin: .prompt, address: address)
            var context: SCARDCONTEXT = 0, handle: SCARDHANDLE = 0, active: DWORD = 0
            #expect(SCardEstablishContext(DWORD(SCARD_SCOPE_SYSTEM), nil, nil, &context) == 0)
            defer { SCardReleaseContext(context) }
            #expect(SCardConnect(context, "Virtual PCD 00 00", DWORD(SCARD_SHARE_EXCLUSIVE), DWORD(SCARD_PROTOCOL_T1), &handle, &active) == 0)
            let readiness = await owner.readiness()
            guard case .notReady(.unavailable(let problem)) = readiness else {
                Issue.record("\(readiness)")
                return
            }
            #expect(problem.contains("is not in any reader (readers: Virtual PCD 00 00 (SCardConnect: Sharing violation. (0x8010000b) (another program holds the card; gpg's scdaemon does: gpgconf --kill scdaemon)), Virtual PCD 00 01)"), "\(problem)")
            SCardDisconnect(handle, DWORD(SCARD_LEAVE_CARD))
            let digest = keccak256([2])
            #expect(try await owner.sign(Self.approved(digest), prompt: Self.pin(PCSCDaemon.userPIN)).recoverAddress(digest: digest) == address)
        }
    }

    @Test func aCardWhoseKeyWasReplacedIsNotUsedAsTheOldOwner() async throws {
        try await PCSCDaemon.exclusively(card: serial) { _ in
            let first = try #require(try await generate().address)
            let owner = OpenPGPCardOwner(serial: serial, pin: .prompt, address: first)
            // A key already there is kept unless replacing is asked for.
            await #expect(throws: OpenPGPCardFailure.self) { _ = try await generate() }
            #expect(try await card().address == first)
            let second = try await OpenPGPCards.generateSigningKey(on: serial, curve: .secp256k1, replacing: true, adminPIN: Self.pin(PCSCDaemon.adminPIN))
            let now = try #require(second.address)
            #expect(now != first)
            let expected = OwnerSignerError.failed("OpenPGP card \(serial): its signature key is \(now.checksummed) now, not \(first)")
            #expect(await owner.readiness() == .notReady(expected))
            await #expect(throws: expected) { try await owner.sign(Self.approved(keccak256([1])), prompt: Self.pin(PCSCDaemon.userPIN)) }
            // A P-256 key is listed with its curve, and is no owner.
            let p256 = try await OpenPGPCards.generateSigningKey(on: serial, curve: .p256, replacing: true, adminPIN: Self.pin(PCSCDaemon.adminPIN))
            #expect(p256.signingAlgorithm == "P-256" && p256.address == nil && p256.signingKey?.count == 65)
            await #expect(throws: OpenPGPCardFailure.failed("OpenPGP card \(serial) has a P-256 signature key; an owner is a secp256k1 key (session-agent card generate makes one)")) {
                _ = try await OpenPGPCardOwner.load(serial: serial, pin: .prompt)
            }
            // A wrong Admin PIN is refused with the tries left, and makes no key.
            await #expect(throws: OpenPGPCardFailure.wrongPIN("OpenPGP card \(serial): wrong Admin PIN: 2 tries left")) {
                _ = try await OpenPGPCards.generateSigningKey(on: serial, curve: .secp256k1, replacing: true, adminPIN: Self.pin("87654321"))
            }
            #expect(try await card().signingAlgorithm == "P-256")
        }
    }
}
