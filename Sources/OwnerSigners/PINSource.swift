import EthereumCore
import Foundation
import Synchronization

/// Where the user PIN of a token or card comes from.
public enum PINSource: Sendable, Equatable, CustomStringConvertible {
    /// Asked through the approval channel (the approver's terminal, or pinentry).
    case prompt
    /// A file (unattended servers), read by `SecretFile`.
    case file(String)
    /// An environment variable of the agent process (unattended servers).
    case environment(String)

    /// Unattended sources never spend a token's or card's last PIN try.
    public var unattended: Bool { self != .prompt }

    /// The PIN from a file or the environment; nil when a person gives it. An empty one is a
    /// mistake (a truncated file, a credential systemd did not pass), refused before it costs a
    /// token's PIN try.
    func unattendedPIN() throws(OwnerSignerError) -> SecretBytes? {
        let pin: SecretBytes
        switch self {
        case .file(let path):
            do { pin = try SecretFile.read(path, what: "PIN file") } catch { throw .secretNeeded(error.description) }
        case .environment(let name):
            guard let value = ProcessInfo.processInfo.environment[name] else { throw .secretNeeded("the environment variable \(name) (the PIN) is not set") }
            pin = SecretBytes(utf8: value)
        case .prompt:
            return nil
        }
        guard pin.count > 0 else { throw .secretNeeded("\(self) is empty") }
        return pin
    }

    public var description: String {
        switch self {
        case .prompt: "the prompt"
        case .file(let path): "the PIN file \(path)"
        case .environment(let name): "the environment variable \(name)"
        }
    }
}

/// Unattended PINs tokens and cards rejected, kept across restarts (the agent's store): a
/// restarted agent does not offer a PIN file a token rejected again, since each try counts down
/// the token's retries. It keeps keyed fingerprints, never PINs, and nothing of a PIN a person typed.
public protocol RejectedPINMemory: AnyObject, Sendable {
    /// A keyed fingerprint of `pin`, under a key that is the same in every run.
    func fingerprint(of pin: SecretBytes) -> [UInt8]
    /// The PIN the token (by its identity) last rejected, if any.
    func rejectedPIN(of token: String) -> RejectedPIN?
    /// Remembers a PIN the token rejected, or with nil forgets it.
    func remember(_ rejected: RejectedPIN?, of token: String)
}

/// What `RejectedPINMemory` keeps of a PIN a token rejected.
public struct RejectedPIN: Sendable, Equatable {
    public var fingerprint: [UInt8]
    /// When, in seconds since 1970.
    public var at: UInt64
    /// Whether the token showed the failed try (CKF_USER_PIN_COUNT_LOW, or a last try or lock)
    /// right after it: then its flags tell whether a login succeeded since.
    public var tokenShowedIt: Bool
    /// The retry counter right after it, where the device shows one (an OpenPGP card): a higher
    /// one later means a PIN was verified since.
    public var triesLeft: Int?

    public init(fingerprint: [UInt8], at: UInt64, tokenShowedIt: Bool, triesLeft: Int? = nil) {
        self.fingerprint = fingerprint
        self.at = at
        self.tokenShowedIt = tokenShowedIt
        self.triesLeft = triesLeft
    }
}

/// Where unattended PINs a token or card rejected are kept across restarts (the agent's store);
/// nil in the tools, which remember nothing.
public enum RejectedPINs {
    public static var memory: (any RejectedPINMemory)? {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
    private static let stored = Mutex<(any RejectedPINMemory)?>(nil)
}
