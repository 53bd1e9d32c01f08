import EthereumCore
import SmartSessions

/// How an account's validator knows an owner: a secp256k1 key by its address (OwnableValidator),
/// a P-256 key (a passkey, or a key on a token) by its public key (WebAuthnValidator).
public enum OwnerKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    case address(Address)
    case passkey(EthereumCore.P256.PublicKey)

    /// `0x` and 40 hex digits, or `p256:` and the passkey's public key (`0x04…`, as
    /// `session-agent fido2 create` prints it).
    public init(_ text: String) throws(OwnerSignerError) {
        if text.hasPrefix(Self.passkeyPrefix) {
            guard let bytes = try? Hex.decode(String(text.dropFirst(Self.passkeyPrefix.count))), let key = try? EthereumCore.P256.PublicKey(bytes) else {
                throw .failed("\(text) is not p256: and a P-256 public key in hex")
            }
            self = .passkey(key)
        } else {
            guard let address = try? Address(text) else { throw .failed("\(text) is neither an address nor p256: and a passkey's public key") }
            self = .address(address)
        }
    }

    static let passkeyPrefix = "p256:"

    /// The secp256k1 owner's address; nil for a passkey.
    public var address: Address? {
        if case .address(let address) = self { address } else { nil }
    }

    public var description: String {
        switch self {
        case .address(let address): address.checksummed
        case .passkey(let key): Self.passkeyPrefix + Hex.encode([4] + key.x.bytes + key.y.bytes)
        }
    }

    public static func < (a: OwnerKey, b: OwnerKey) -> Bool { a.description < b.description }
}

/// What kind of owner key a backend holds, for display and routing.
public struct OwnerIdentity: Hashable, Sendable, CustomStringConvertible {
    /// "keystore", "pkcs11", "openpgp-card", "fido2".
    public var backend: String
    public var key: OwnerKey
    /// Where the key lives, for people: a file path, a PKCS#11 URI, a card serial.
    public var location: String

    public init(backend: String, key: OwnerKey, location: String) {
        self.backend = backend
        self.key = key
        self.location = location
    }

    public init(backend: String, address: Address, location: String) {
        self.init(backend: backend, key: .address(address), location: location)
    }

    /// The secp256k1 owner's address (what OwnableValidator lists); nil for a passkey.
    public var address: Address? { key.address }

    public var description: String { "\(backend) owner \(key) (\(location))" }
}

/// An owner's signature over an approved digest, in the form its validator takes.
public enum OwnerSignature: Sendable {
    /// An Ethereum signature (low s, v 27/28), for OwnableValidator.
    case ecdsa(RecoverableSignature)
    /// A WebAuthn assertion whose challenge is the digest, for WebAuthnValidator.
    case webAuthn(WebAuthnAssertion)
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

/// The one interface every owner-key backend implements: keystore files, PKCS#11 tokens,
/// OpenPGP cards and FIDO2 authenticators, behind it without the agent knowing which.
public protocol OwnerSigner: Sendable {
    var identity: OwnerIdentity { get }
    /// Signs an approved digest, in the form the owner's validator checks: never a signature
    /// that does not verify against `identity.key`.
    func ownerSignature(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> OwnerSignature
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

/// A secp256k1 owner: its signature recovers to its address.
public protocol ECDSAOwnerSigner: OwnerSigner {
    var address: Address { get }
    /// Signs an approved digest: an Ethereum signature (low s, v 27/28) that recovers to `address`.
    func sign(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> RecoverableSignature
}

extension ECDSAOwnerSigner {
    public func ownerSignature(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> OwnerSignature {
        .ecdsa(try await sign(approved, prompt: prompt))
    }
}

/// An owner key in an Ethereum keystore v3 file; the passphrase is asked for each signature
/// and the key is dropped (zeroed) right after.
public struct KeystoreOwner: ECDSAOwnerSigner {
    public let keystore: Keystore
    public let identity: OwnerIdentity
    public let address: Address

    public init(keystore: Keystore, location: String) throws(OwnerSignerError) {
        guard let address = keystore.address else {
            throw .failed("the keystore at \(location) records no address; import it with its address")
        }
        self.keystore = keystore
        self.address = address
        self.identity = OwnerIdentity(backend: "keystore", address: address, location: location)
    }

    public func sign(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> RecoverableSignature {
        let passphrase: SecretBytes
        do { passphrase = try await prompt(passphrasePrompt) } catch {
            throw .secretNeeded("no passphrase was given for \(address): \(error)")
        }
        let key: Secp256k1.PrivateKey
        do { key = try keystore.decrypt(passphrase: passphrase) } catch {
            throw error == .wrongPassphrase ? .wrongSecret("wrong passphrase for \(address)") : .failed("\(error)")
        }
        let signature = key.sign(digest: approved.digest)
        guard (try? signature.recoverAddress(digest: approved.digest)) == address else {
            throw .failed("the signature does not recover to \(address)")
        }
        return signature
    }

    /// The keystore is in memory; its passphrase comes with each approval.
    public func readiness() async -> OwnerReadiness { .needsSecret(passphrasePrompt) }

    var passphrasePrompt: String { "Passphrase for \(address) (\(identity.location))" }
}
