import Crypto
import EthereumCore

/// Something sealed under an AES-256 key that never leaves a token (the session store's data key):
/// it can only be opened while the token is present.
public enum PKCS11Sealed: Sendable, Equatable {
    /// AES-GCM on the token: ciphertext ‖ tag.
    case gcm(nonce: [UInt8], sealed: [UInt8])
    /// For a module that offers no AES-GCM (p11-kit 0.24's client cannot pass its parameters to
    /// `p11-kit server`, and refuses it; YubiHSM 2 has none), or whose AES-GCM output does not
    /// open again as the standard says it should: the token computes a key as AES-ECB of the two random
    /// blocks `salt` under its key, a pseudo-random function only it can evaluate, and that key
    /// seals with AES-256-GCM here (`sealed` is nonce ‖ ciphertext ‖ tag).
    case derived(salt: [UInt8], sealed: [UInt8])
}

/// The AES-256 key on a token that seals other keys.
public enum PKCS11SecretKey {
    /// Seals `plain` under the AES key `uri` names, making that key on the token (sensitive, not
    /// extractable) when there is none: with AES-GCM on the token, or with a key the token
    /// derives when its module refuses AES-GCM or its AES-GCM does not open what it sealed.
    /// Either is opened once before it is returned. Returns the key's URI with its module.
    public static func seal(_ plain: SecretBytes, under uri: PKCS11URI, aad: [UInt8], pin: PINSource,
                            prompt: SecretPrompt, defaultModule: String? = nil) async throws(PKCS11Failure) -> (key: PKCS11URI, sealed: PKCS11Sealed) {
        guard let label = uri.object else { throw .keyNotFound("\(uri) names no key; add object=") }
        let provider = try await PKCS11Provider.locate(uri, defaultModule: defaultModule)
        let sealed = try await provider.withLogin(uri, pin: pin, prompt: prompt) { session, _ throws(PKCS11Failure) -> PKCS11Sealed in
            let token = uri.tokenOnly.description
            let existing: [UInt]
            do throws(PKCS11Error) { existing = try session.find(selection(uri)) } catch { throw PKCS11Provider.failure(error, token, in: session) }
            guard existing.count <= 1 else { throw .keyNotFound("\(existing.count) AES keys match \(uri); add id=") }
            let key: UInt, custody: PKCS11KeyCustody
            do throws(PKCS11Error) {
                key = if let found = existing.first { found } else { try session.generateAESKey(label: label, id: uri.id ?? Array(label.utf8)) }
                custody = try session.custody(of: key)
            } catch { throw PKCS11Provider.failure(error, token, in: session) }
            // A key whose value can be read (written without --sensitive, or made so by a token's
            // policy) would let a copy of the store be opened without the token.
            guard custody != .exportable else {
                let (which, remedy) = existing.isEmpty
                    ? ("the token just made", "The token's policy overrode the template rewrap gave (sensitive, not extractable): delete the key it made, and use a token that keeps one so")
                    : ("on the token", "Name a new label for rewrap to make one that cannot be (sensitive, not extractable)")
                throw .failed("the AES key \(uri.objectName) \(which) can be read out of it (not sensitive, or extractable), so a store sealed under it "
                              + "would not need the token; nothing was sealed. " + remedy)
            }
            // Whatever seals the data key must open it again before the store forgets its old
            // wrapping: HSMs differ in how they treat a caller's GCM nonce, and a wrapping that
            // does not open loses every session key.
            if let sealed = try sealedOnToken(plain, session, key, aad: aad, token: token), try opens(sealed, plain, session, key, aad: aad, token: token) {
                return sealed
            }
            let salt = randomBytes(32)
            let derived: DerivedKey
            do throws(PKCS11Error) { derived = try derivedKey(session, key, salt) } catch { throw PKCS11Provider.failure(error, token, in: session) }
            let sealed = PKCS11Sealed.derived(salt: salt, sealed: try derived.sealing(plain, aad: aad))
            guard try opens(sealed, plain, session, key, aad: aad, token: token) else {
                throw .failed("the token's AES key \(uri) does not give back what it sealed; nothing was changed")
            }
            return sealed
        }
        return (try await provider.namingItsToken(uri.with(modulePath: provider.modulePath)), sealed)
    }

    /// Opens what `seal` sealed; fails when the token or its key is absent, or it was sealed by
    /// another key. Also says whether the key can be read out of the token: what was sealed
    /// before `seal` refused such keys still opens, and the one who opens it should hear so.
    public static func open(_ sealed: PKCS11Sealed, under uri: PKCS11URI, aad: [UInt8], pin: PINSource,
                            prompt: SecretPrompt) async throws(PKCS11Failure) -> (opened: SecretBytes, custody: PKCS11KeyCustody) {
        let provider = try await PKCS11Provider.locate(uri, defaultModule: nil)
        return try await provider.withLogin(uri, pin: pin, prompt: prompt) { session, state throws(PKCS11Failure) in
            let key = try state.object("the AES key " + uri.objectName, selection(uri), in: session)
            let opened: SecretBytes?, custody: PKCS11KeyCustody
            do throws(PKCS11Error) {
                opened = try opening(sealed, session, key, aad: aad)
                custody = try session.custody(of: key)
            } catch {
                if session.tokenGone(after: error) { throw PKCS11Provider.failure(error, uri.tokenOnly.description, in: session) }
                if error.mechanismRefused, case .gcm = sealed {
                    throw .failed("\(uri.modulePath ?? "the module") refuses AES-GCM, which sealed this data key on the token (\(error)); "
                                  + "open the store through the token's own module once and rewrap it (store rewrap --to) through this one")
                }
                throw .failed("the token's key \(uri) does not open this data key (\(error))")
            }
            guard let opened else { throw .failed("the token's key \(uri) does not open this data key") }
            return (opened, custody)
        }
    }

    /// `plain` sealed with AES-GCM on the token, under the nonce the token says it used; nil when
    /// its module refuses AES-GCM. What an HSM that appends an IV it chose returns does not open
    /// under that nonce, which `seal` finds out before it keeps anything.
    static func sealedOnToken(_ plain: SecretBytes, _ session: PKCS11Session, _ key: UInt, aad: [UInt8], token: String) throws(PKCS11Failure) -> PKCS11Sealed? {
        do throws(PKCS11Error) {
            let (nonce, sealed) = try plain.withUnsafeBytes { bytes throws(PKCS11Error) in try session.encryptGCM(key: key, nonce: randomBytes(12), aad: aad, plaintext: bytes) }
            return .gcm(nonce: nonce, sealed: sealed)
        } catch where error.mechanismRefused {
            return nil
        } catch { throw PKCS11Provider.failure(error, token, in: session) }
    }

    /// Whether `sealed` opens to `plain` on the token now.
    static func opens(_ sealed: PKCS11Sealed, _ plain: SecretBytes, _ session: PKCS11Session, _ key: UInt, aad: [UInt8], token: String) throws(PKCS11Failure) -> Bool {
        do throws(PKCS11Error) {
            return try opening(sealed, session, key, aad: aad)?.sameBytes(as: plain) ?? false
        } catch where session.tokenGone(after: error) {
            throw PKCS11Provider.failure(error, token, in: session)
        } catch {
            return false
        }
    }

    /// What `sealed` opens to under the token's key; nil (or an error from the module) when the
    /// key did not seal it.
    static func opening(_ sealed: PKCS11Sealed, _ session: PKCS11Session, _ key: UInt, aad: [UInt8]) throws(PKCS11Error) -> SecretBytes? {
        switch sealed {
        case let .gcm(nonce, sealed): try session.decryptGCM(key: key, nonce: nonce, aad: aad, sealed: sealed)
        case let .derived(salt, sealed): try derivedKey(session, key, salt).opening(sealed, aad: aad)
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
