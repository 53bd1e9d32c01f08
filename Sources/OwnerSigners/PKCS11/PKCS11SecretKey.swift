import Crypto
import EthereumCore

/// Something sealed under an AES-256 key that never leaves a token (the session store's data key):
/// it can only be opened while the token is present.
public enum PKCS11Sealed: Sendable, Equatable {
    /// AES-GCM on the token: ciphertext ‖ tag.
    case gcm(nonce: [UInt8], sealed: [UInt8])
    /// For a module that offers no AES-GCM (p11-kit 0.24's client cannot pass its parameters to
    /// `p11-kit server`, and refuses it): the token computes a key as AES-ECB of the two random
    /// blocks `salt` under its key, a pseudo-random function only it can evaluate, and that key
    /// seals with AES-256-GCM here (`sealed` is nonce ‖ ciphertext ‖ tag).
    case derived(salt: [UInt8], sealed: [UInt8])
}

/// The AES-256 key on a token that seals other keys.
public enum PKCS11SecretKey {
    /// Seals `plain` under the AES key `uri` names, making that key on the token (sensitive, not
    /// extractable) when there is none: with AES-GCM on the token, or with a key the token
    /// derives when its module refuses AES-GCM. Returns the key's URI with its module.
    public static func seal(_ plain: SecretBytes, under uri: PKCS11URI, aad: [UInt8], pin: PKCS11PINSource,
                            prompt: SecretPrompt, defaultModule: String? = nil) async throws(PKCS11Failure) -> (key: PKCS11URI, sealed: PKCS11Sealed) {
        guard let label = uri.object else { throw .keyNotFound("\(uri) names no key; add object=") }
        let provider = try await PKCS11Provider.locate(uri, defaultModule: defaultModule)
        let sealed = try await provider.withLogin(uri, pin: pin, prompt: prompt) { session, _ throws(PKCS11Failure) -> PKCS11Sealed in
            let existing: [UInt]
            do throws(PKCS11Error) { existing = try session.find(selection(uri)) } catch { throw PKCS11Provider.failure(error, uri.tokenOnly.description) }
            guard existing.count <= 1 else { throw .keyNotFound("\(existing.count) AES keys match \(uri); add id=") }
            let token = uri.tokenOnly.description
            let key: UInt
            do throws(PKCS11Error) {
                key = if let found = existing.first { found } else { try session.generateAESKey(label: label, id: uri.id ?? Array(label.utf8)) }
            } catch { throw PKCS11Provider.failure(error, token) }
            let nonce = randomBytes(12)
            do throws(PKCS11Error) {
                let sealed = try plain.withUnsafeBytes { bytes throws(PKCS11Error) in try session.encryptGCM(key: key, nonce: nonce, aad: aad, plaintext: bytes) }
                return PKCS11Sealed.gcm(nonce: nonce, sealed: sealed)
            } catch where error.mechanismRefused {
                // On to the derived key.
            } catch { throw PKCS11Provider.failure(error, token) }
            let salt = randomBytes(32)
            let derived: DerivedKey
            do throws(PKCS11Error) { derived = try derivedKey(session, key, salt) } catch { throw PKCS11Provider.failure(error, token) }
            return .derived(salt: salt, sealed: try derived.sealing(plain, aad: aad))
        }
        return (try await provider.namingItsToken(uri.with(modulePath: provider.modulePath)), sealed)
    }

    /// Opens what `seal` sealed; fails when the token or its key is absent, or it was sealed by
    /// another key.
    public static func open(_ sealed: PKCS11Sealed, under uri: PKCS11URI, aad: [UInt8], pin: PKCS11PINSource,
                            prompt: SecretPrompt) async throws(PKCS11Failure) -> SecretBytes {
        let provider = try await PKCS11Provider.locate(uri, defaultModule: nil)
        return try await provider.withLogin(uri, pin: pin, prompt: prompt) { session, state throws(PKCS11Failure) in
            let key = try state.object("the AES key " + uri.objectName, selection(uri), in: session)
            let opened: SecretBytes?
            do throws(PKCS11Error) {
                switch sealed {
                case let .gcm(nonce, sealed): opened = try session.decryptGCM(key: key, nonce: nonce, aad: aad, sealed: sealed)
                case let .derived(salt, sealed): opened = try derivedKey(session, key, salt).opening(sealed, aad: aad)
                }
            } catch {
                if error.tokenGone { throw PKCS11Provider.failure(error, uri.tokenOnly.description) }
                if error.mechanismRefused, case .gcm = sealed {
                    throw .failed("\(uri.modulePath ?? "the module") refuses AES-GCM, which sealed this data key on the token (\(error)); "
                                  + "open the store through the token's own module once and rewrap it (store rewrap --to) through this one")
                }
                throw .failed("the token's key \(uri) does not open this data key (\(error))")
            }
            guard let opened else { throw .failed("the token's key \(uri) does not open this data key") }
            return opened
        }
    }

    static func selection(_ uri: PKCS11URI) -> [PKCS11Attribute] {
        [PKCS11Attribute(.secretKey), .aesKeyType] + PKCS11Session.selection(uri)
    }

    static func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255) } }

    /// The key of `.derived`: AES-ECB of `salt` (two blocks) under the token's key.
    static func derivedKey(_ session: PKCS11Session, _ key: UInt, _ salt: [UInt8]) throws(PKCS11Error) -> DerivedKey {
        DerivedKey(try session.encryptECB(key: key, blocks: salt))
    }

    /// A 256-bit key the token derived, sealing and opening with AES-256-GCM in this process.
    struct DerivedKey {
        let secret: SecretBytes
        init(_ secret: SecretBytes) { self.secret = secret }

        func sealing(_ plain: SecretBytes, aad: [UInt8]) throws(PKCS11Failure) -> [UInt8] {
            let box = secret.withUnsafeBytes { k in plain.withUnsafeBytes { p in try? AES.GCM.seal(p, using: SymmetricKey(data: k), authenticating: aad) } }
            guard let combined = box?.combined else { throw .failed("sealing under the token's derived key failed") }
            return Array(combined)
        }

        /// Nil when `sealed` was not sealed by this key (or was altered).
        func opening(_ sealed: [UInt8], aad: [UInt8]) -> SecretBytes? {
            guard let box = try? AES.GCM.SealedBox(combined: sealed),
                  var plain = secret.withUnsafeBytes({ k in try? AES.GCM.open(box, using: SymmetricKey(data: k), authenticating: aad) }) else { return nil }
            defer { plain.withUnsafeMutableBytes { SecretBytes.zero($0) } }
            return plain.withUnsafeBytes { SecretBytes(copying: $0) }
        }
    }
}
