import Dispatch
import EthereumCore
import Foundation
import Synchronization

/// The OpenPGP cards in the readers pcscd serves. Every PC/SC call blocks, so they run one at a
/// time on a queue of their own: that also serialises access to each card.
public enum OpenPGPCards {
    /// What one reader holds.
    public struct Slot: Sendable {
        public let reader: String
        /// The card's OpenPGP application, or why there is none to read.
        public let card: Result<OpenPGPCardInfo, OpenPGPCardFailure>
    }

    private static let line = DeviceLine(label: "session-agent.openpgp-card")

    /// How long a card operation may take before its caller is told the card did not answer (the
    /// agent's `pkcs11_timeout`): a card or reader that hangs must not hold an approval for good.
    /// The operation goes on, and every one after it fails at once until it returns.
    public static var answerTimeout: Duration {
        get { timeout.withLock { $0 } }
        set { timeout.withLock { $0 = newValue } }
    }
    private static let timeout = Mutex<Duration>(.seconds(60))

    /// Every reader, and the OpenPGP card in it.
    public static func list() async throws(OpenPGPCardFailure) -> [Slot] {
        try await onLine { () throws(OpenPGPCardFailure) in
            let (context, readers) = try readers()
            return readers.map { reader in
                Slot(reader: reader, card: Result { () throws(OpenPGPCardFailure) in
                    let card: PCSCCard
                    do throws(PCSCError) { card = try context.connect(reader) } catch { throw error.cardGone ? .unavailable("no card") : .from(error) }
                    return try inTransaction(on: card) { () throws(OpenPGPCardFailure) in
                        guard let applet = try OpenPGPApplet.select(on: card) else { throw .failed("not an OpenPGP card") }
                        return try applet.info()
                    }
                })
            }
        }
    }

    /// Runs `body` in a transaction on the card whose serial number is `serial`, wherever it is.
    static func withCard<T: Sendable>(_ serial: String, _ body: @escaping @Sendable (OpenPGPApplet, OpenPGPApplicationData) throws(OpenPGPCardFailure) -> T)
        async throws(OpenPGPCardFailure) -> T {
        try await onLine { () throws(OpenPGPCardFailure) in
            let (context, readers) = try readers()
            // What kept a reader's card from being read, unless it was only that there is none
            // (or it was pulled out while we looked).
            var unread: [String: String] = [:]
            for reader in readers {
                // A reader without a card, or with another kind of card, is passed over. The card
                // is read in the same transaction as `body` runs in: another program (OpenSC,
                // scdaemon) may select another application between two of ours.
                let card: PCSCCard
                do throws(PCSCError) { card = try context.connect(reader) } catch {
                    if !error.cardGone { unread[reader] = "\(error)" }
                    continue
                }
                let outcome: Result<T, OpenPGPCardFailure>?
                do throws(OpenPGPCardFailure) {
                    outcome = try inTransaction(on: card) { () throws(OpenPGPCardFailure) -> Result<T, OpenPGPCardFailure>? in
                        guard let applet = try OpenPGPApplet.select(on: card) else { return nil }
                        let data = try applet.applicationData()
                        guard data.serial == serial else { return nil }
                        return Result { () throws(OpenPGPCardFailure) in try body(applet, data) }
                    }
                } catch {
                    if case .unavailable = error {} else { unread[reader] = "\(error)" }
                    continue
                }
                if let outcome { return try outcome.get() }
            }
            let shown = readers.map { reader in unread[reader].map { "\(reader) (\($0))" } ?? reader }
            throw .unavailable("OpenPGP card \(serial) is not in any reader" + (readers.isEmpty ? " (pcscd knows no reader)" : " (readers: \(shown.joined(separator: ", ")))"))
        }
    }

    /// Makes a new ECDSA signature key on the card `serial` with its Admin PIN. A card that
    /// holds a signature key keeps it unless `replacing` says so: the key it holds may be an
    /// owner of accounts, and nothing brings it back.
    public static func generateSigningKey(on serial: String, curve: OpenPGPCurve, replacing: Bool, adminPIN: SecretPrompt)
        async throws(OpenPGPCardFailure) -> OpenPGPCardInfo {
        do { return try await generate(on: serial, curve: curve, replacing: replacing, adminPIN: adminPIN) } catch { throw .inContext(error, of: serial) }
    }

    private static func generate(on serial: String, curve: OpenPGPCurve, replacing: Bool, adminPIN: SecretPrompt) async throws(OpenPGPCardFailure) -> OpenPGPCardInfo {
        let before = try await withCard(serial) { applet, data throws(OpenPGPCardFailure) in try applet.info(data) }
        if let key = before.signingKey, !replacing {
            throw .failed("OpenPGP card \(serial) already holds a \(before.signingAlgorithm) signature key (\(before.address?.checksummed ?? Hex.encode(key))); "
                          + "generating one would destroy it (--replace, if no account has it as an owner)")
        }
        guard before.adminPINTriesLeft > 0 else { throw .wrongPIN("the Admin PIN of OpenPGP card \(serial) is blocked") }
        let pin: SecretBytes
        do { pin = try await adminPIN("Admin PIN of OpenPGP card \(serial) (\(before.adminPINTriesLeft) tr\(before.adminPINTriesLeft == 1 ? "y" : "ies") left)") } catch {
            throw .pinNeeded("no Admin PIN was given: \(error)")
        }
        return try await withCard(serial) { applet, _ throws(OpenPGPCardFailure) in
            try applet.verifyAdminPIN(pin)
            _ = try applet.generateSigningKey(curve)
            return try applet.info()
        }
    }

    /// `body` in a PC/SC transaction on `card`.
    private static func inTransaction<T>(on card: PCSCCard, _ body: () throws(OpenPGPCardFailure) -> T) throws(OpenPGPCardFailure) -> T {
        do { return try card.transaction { () throws -> T in try body() } } catch let error as OpenPGPCardFailure { throw error } catch let error as PCSCError {
            throw .from(error)
        } catch { throw .failed("\(error)") }
    }

    /// A connection to pcscd, and the readers it knows.
    private static func readers() throws(OpenPGPCardFailure) -> (PCSCContext, [String]) {
        do throws(PCSCError) {
            let context = try PCSCContext()
            return (context, try context.readers())
        } catch { throw .from(error) }
    }

    private static func onLine<T: Sendable>(_ body: @escaping @Sendable () throws(OpenPGPCardFailure) -> T) async throws(OpenPGPCardFailure) -> T {
        let seconds = answerTimeout.components.seconds
        return try await line.run(timeout: answerTimeout, overdue: {
            .unavailable("the card did not answer within \(seconds) s (a card or reader that hangs); cards are used again once it answers")
        }, stuck: {
            .unavailable("a card has not answered for over \(seconds) s (a card or reader that hangs); cards are used again once it answers")
        }, body)
    }

    /// A serial number as the configuration or a person writes it: 8 hex digits.
    public static func serial(_ text: String) throws(OpenPGPCardFailure) -> String {
        let digits = text.replacingOccurrences(of: " ", with: "")
        guard digits.count == 8, digits.allSatisfy(\.isHexDigit) else {
            throw .failed("\(text) is not an OpenPGP card serial number (8 hex digits, as session-agent card list and gpg --card-status show it)")
        }
        return digits.uppercased()
    }
}

/// An owner key that is the signature key of an OpenPGP card (a YubiKey 5 or Nitrokey 3 holds
/// secp256k1 ones). The PIN is verified for each signature, and a card that would keep it
/// verified (or that did not sign after it) is reset when let go, so nothing stays unlocked
/// between approvals. The card's raw r ‖ s is normalised to low s and v
/// found by trial recovery; a signature that does not recover to the registered address is
/// never returned.
public struct OpenPGPCardOwner: ECDSAOwnerSigner {
    public let address: Address
    public let identity: OwnerIdentity
    public let serial: String
    public let pin: PINSource

    /// An owner whose address is already known: nothing touches the card until it signs.
    public init(serial: String, pin: PINSource, address: Address) {
        self.serial = serial
        self.pin = pin
        self.address = address
        identity = OwnerIdentity(backend: "openpgp-card", address: address, location: "OpenPGP card \(serial)")
    }

    /// The owner whose key is on the card `serial`, read from the card.
    public static func load(serial: String, pin: PINSource) async throws(OpenPGPCardFailure) -> OpenPGPCardOwner {
        let info = try await OpenPGPCards.withCard(serial) { applet, data throws(OpenPGPCardFailure) in try applet.info(data) }
        guard let address = info.address else {
            throw .failed("OpenPGP card \(serial) has " + (info.signingKey == nil ? "no signature key" : "a \(info.signingAlgorithm) signature key")
                          + "; an owner is a secp256k1 key (session-agent card generate makes one)")
        }
        return OpenPGPCardOwner(serial: serial, pin: pin, address: address)
    }

    public func sign(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> RecoverableSignature {
        do throws(OpenPGPCardFailure) {
            let raw: [UInt8]
            if pin.unattended {
                // Nobody to wait for: the card is checked, the PIN verified and the digest signed
                // in one transaction.
                raw = try await OpenPGPCards.withCard(serial) { [self] applet, data throws(OpenPGPCardFailure) in
                    let secret = try unattendedPIN(try check(applet.info(data)))
                    try verify(secret, on: applet)
                    return try applet.sign(approved.digest, pinStaysValid: data.pinValidForSeveralSignatures)
                }
            } else {
                // The card is read first, for the prompt to say how many tries are left; it is
                // not held while the person types.
                let info = try await current()
                guard info.pinTriesLeft > 0 else { throw .wrongPIN("its PIN is blocked; unblock it with gpg --card-edit (admin, passwd)") }
                let secret: SecretBytes
                do { secret = try await prompt(info.pinPrompt) } catch { throw .pinNeeded("no PIN was given: \(error)") }
                raw = try await OpenPGPCards.withCard(serial) { [self] applet, data throws(OpenPGPCardFailure) in
                    try verify(secret, on: applet)
                    return try applet.sign(approved.digest, pinStaysValid: data.pinValidForSeveralSignatures)
                }
            }
            do { return try RecoverableSignature.normalizing(external: raw, digest: approved.digest, signer: self.address) } catch {
                throw OpenPGPCardFailure.failed("the card's signature does not recover to \(self.address) (\(error)); not returned")
            }
        } catch {
            throw OpenPGPCardFailure.inContext(error, of: serial).ownerError
        }
    }

    /// Verifies the PIN from a file or the environment, signing nothing: an owner added with a
    /// wrong one is refused at once rather than at its first approval.
    public func checkPIN() async throws(OpenPGPCardFailure) {
        do {
            let secret = try unattendedPIN(try await current())
            try await OpenPGPCards.withCard(serial) { [self] applet, _ throws(OpenPGPCardFailure) in try verify(secret, on: applet) }
        } catch { throw .inContext(error, of: serial) }
    }

    /// VERIFY with `secret`. An unattended PIN the card rejects is remembered (across restarts,
    /// with the retry counter after it), and one it takes is forgotten; nothing of a PIN a
    /// person typed is kept.
    private func verify(_ secret: SecretBytes, on applet: OpenPGPApplet) throws(OpenPGPCardFailure) {
        let memory = pin.unattended ? RejectedPINs.memory : nil
        do throws(OpenPGPCardFailure) { try applet.verifySigningPIN(secret) } catch {
            if case .wrongPIN = error, let memory {
                memory.remember(RejectedPIN(fingerprint: memory.fingerprint(of: secret), at: UInt64(Date().timeIntervalSince1970), tokenShowedIt: true,
                                            triesLeft: try? applet.signingPINTriesLeft()), of: cardName)
            }
            throw error
        }
        memory?.remember(nil, of: cardName)
    }

    /// The card must be in a reader and hold the registered key; then its PIN from a file or the
    /// environment must be readable and not one the card rejected, or a person is asked for it.
    public func readiness() async -> OwnerReadiness {
        do throws(OpenPGPCardFailure) {
            let info = try await current()
            if pin.unattended { _ = try unattendedPIN(info); return .ready }
            guard info.pinTriesLeft > 0 else { throw .wrongPIN("its PIN is blocked") }
            return .needsSecret(info.pinPrompt)
        } catch { return .notReady(OpenPGPCardFailure.inContext(error, of: serial).ownerError) }
    }

    /// The card as the memory of rejected PINs names it.
    private var cardName: String { "openpgp-card:\(serial)" }

    /// The card's state, once it shows it still holds this owner's key.
    private func current() async throws(OpenPGPCardFailure) -> OpenPGPCardInfo {
        try await OpenPGPCards.withCard(serial) { [self] applet, data throws(OpenPGPCardFailure) in try check(applet.info(data)) }
    }

    /// `info`, once it shows the card still holds this owner's key.
    private func check(_ info: OpenPGPCardInfo) throws(OpenPGPCardFailure) -> OpenPGPCardInfo {
        guard info.address == self.address else {
            throw .failed("its signature key is \(info.address?.checksummed ?? "a \(info.signingAlgorithm) key") now, not \(self.address)")
        }
        return info
    }

    /// The PIN from a file or the environment, unless the card rejected it before or it would
    /// spend the card's last try: unattended PINs never block a card.
    private func unattendedPIN(_ info: OpenPGPCardInfo) throws(OpenPGPCardFailure) -> SecretBytes {
        let secret: SecretBytes
        do throws(OwnerSignerError) { secret = try pin.unattendedPIN()! } catch { throw .pinNeeded(error.description) }
        // Until the card's retry counter shows a PIN verified since (gpg's, say), whatever the
        // agent's restarts.
        if let memory = RejectedPINs.memory, let record = memory.rejectedPIN(of: cardName),
           record.fingerprint == memory.fingerprint(of: secret), info.pinTriesLeft <= record.triesLeft ?? 0 {
            throw .wrongPIN("it rejected the PIN in \(pin) before, and no PIN has been verified on it since; not offering it again, since each try counts down the card's retries")
        }
        guard info.pinTriesLeft > 1 else {
            throw .wrongPIN("its PIN has \(info.pinTriesLeft == 0 ? "no try" : "one try") left, which a PIN from \(pin) is not allowed to spend")
        }
        return secret
    }
}

extension OpenPGPCardFailure {
    /// The failure, saying which card it is about.
    static func inContext(_ error: OpenPGPCardFailure, of serial: String) -> OpenPGPCardFailure {
        let prefix = "OpenPGP card \(serial)"
        guard !error.description.hasPrefix(prefix) else { return error }
        switch error {
        case .unavailable(let s): return .unavailable("\(prefix): \(s)")
        case .pinNeeded(let s): return .pinNeeded("\(prefix): \(s)")
        case .wrongPIN(let s): return .wrongPIN("\(prefix): \(s)")
        case .failed(let s): return .failed("\(prefix): \(s)")
        }
    }
}
