import EthereumCore

/// What kind of owner key a backend holds, for display and routing.
public struct OwnerIdentity: Hashable, Sendable, CustomStringConvertible {
    /// "keystore", "pkcs11", "openpgp-card", "fido2".
    public var backend: String
    /// The secp256k1 owner's address (what OwnableValidator lists).
    public var address: Address
    /// Where the key lives, for people: a file path, a PKCS#11 URI, a card serial.
    public var location: String

    public init(backend: String, address: Address, location: String) {
        self.backend = backend
        self.address = address
        self.location = location
    }

    public var description: String { "\(backend) owner \(address) (\(location))" }
}

/// A digest the agent computed itself from a request that was reviewed and approved. Only code
/// of this package (the approval step) can make one, so no backend ever signs a hash a client
/// handed in.
public struct ApprovedDigest: Sendable, Hashable {
    public let digest: Bytes32
    /// What was approved, for the audit log: the request id and the hash of the text shown.
    public let approval: String

    package init(digest: Bytes32, approval: String) {
        self.digest = digest
        self.approval = approval
    }
}

/// Why an owner backend could not sign.
public enum OwnerSignerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The passphrase or PIN was not given (no prompt, cancelled, timed out).
    case secretNeeded(String)
    /// The passphrase or PIN was wrong, or the token's PIN is locked.
    case wrongSecret(String)
    /// The key cannot be reached (its token absent, its module missing).
    case unavailable(String)
    case failed(String)

    /// The machine-readable reason for the socket protocol.
    public var reason: String {
        switch self {
        case .secretNeeded: "secret_needed"
        case .wrongSecret: "wrong_secret"
        case .unavailable: "owner_unavailable"
        case .failed: "owner_failed"
        }
    }

    /// Whether a person can mend it and try again: give the secret (again), bring the token back.
    public var mendable: Bool {
        if case .failed = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case .secretNeeded(let s), .wrongSecret(let s), .unavailable(let s), .failed(let s): s
        }
    }
}

/// Asks for a passphrase or PIN through whatever approval channel the agent uses (a terminal,
/// pinentry, a file for servers). The returned bytes are the caller's to drop.
public typealias SecretPrompt = @Sendable (_ description: String) async throws -> SecretBytes

/// What the person behind an approval is told while a backend waits for them to act on the
/// device itself (enter the PIN on a reader's keypad), as gpg-agent shows a pinpad's prompt:
/// the approval channel's notice, when it has a screen of its own (pinentry). Set for the
/// signatures whose secrets that channel would be asked for.
public enum DeviceNotice {
    /// Shows the text; what it returns takes the notice down.
    public typealias Show = @Sendable (_ text: String) async -> @Sendable () -> Void

    @TaskLocal private static var show: Show?

    /// Runs `body` with `show` as the notice of the device waits in it.
    public static func telling<T, E: Error>(through show: Show?, _ body: () async throws(E) -> T) async throws(E) -> T {
        let outcome: Result<T, E> = await $show.withValue(show) {
            do throws(E) { return .success(try await body()) } catch { return .failure(error) }
        }
        return try outcome.get()
    }

    /// Runs `body`, a wait on the device, with `text` shown meanwhile when a notice is set. A wait
    /// inside it shows nothing more: one notice at a time.
    public static func showing<T, E: Error>(_ text: String, _ body: () async throws(E) -> T) async throws(E) -> T {
        guard let show else { return try await body() }
        let takeDown = await show(text)
        defer { takeDown() }
        return try await telling(through: nil, body)
    }
}

/// The one interface every owner-key backend implements: keystore files now; PKCS#11 tokens,
/// OpenPGP cards and FIDO2 authenticators plug in behind it without touching the agent.
public protocol OwnerSigner: Sendable {
    var identity: OwnerIdentity { get }
    /// Signs an approved digest: an Ethereum signature (low s, v 27/28) that recovers to
    /// `identity.address`.
    func sign(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> RecoverableSignature
    /// Whether the owner could sign now, found without signing or asking anyone: a token
    /// absent, a key gone from it, a PIN or passphrase file unreadable stop it; a secret a
    /// person must give is named.
    func readiness() async -> OwnerReadiness
}

/// What stands between an owner and its next signature.
public enum OwnerReadiness: Sendable, Equatable {
    case ready
    /// A person gives a passphrase or PIN at approval: what to ask for, in the words of a prompt
    /// (which token, and whether it is its last try).
    case needsSecret(String)
    /// A person acts on the device itself when it signs (the PIN on a reader's keypad): nothing
    /// is given to the agent. In the words of a prompt.
    case asksOnDevice(String)
    case notReady(OwnerSignerError)
}

/// An owner key in an Ethereum keystore v3 file; the passphrase is asked for each signature
/// and the key is dropped (zeroed) right after.
public struct KeystoreOwner: OwnerSigner {
    public let keystore: Keystore
    public let identity: OwnerIdentity

    public init(keystore: Keystore, location: String) throws(OwnerSignerError) {
        guard let address = keystore.address else {
            throw .failed("the keystore at \(location) records no address; import it with its address")
        }
        self.keystore = keystore
        self.identity = OwnerIdentity(backend: "keystore", address: address, location: location)
    }

    public func sign(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> RecoverableSignature {
        let passphrase: SecretBytes
        do { passphrase = try await prompt(passphrasePrompt) } catch {
            throw .secretNeeded("no passphrase was given for \(identity.address): \(error)")
        }
        let key: Secp256k1.PrivateKey
        do { key = try keystore.decrypt(passphrase: passphrase) } catch {
            throw error == .wrongPassphrase ? .wrongSecret("wrong passphrase for \(identity.address)") : .failed("\(error)")
        }
        let signature = key.sign(digest: approved.digest)
        guard (try? signature.recoverAddress(digest: approved.digest)) == identity.address else {
            throw .failed("the signature does not recover to \(identity.address)")
        }
        return signature
    }

    /// The keystore is in memory; its passphrase comes with each approval.
    public func readiness() async -> OwnerReadiness { .needsSecret(passphrasePrompt) }

    var passphrasePrompt: String { "Passphrase for \(identity.address) (\(identity.location))" }
}
