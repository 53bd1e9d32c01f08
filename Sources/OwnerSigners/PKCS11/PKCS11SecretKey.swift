import EthereumCore

/// An AES-256 key that never leaves a token, used to wrap other keys with AES-GCM (the session
/// store's data key): what it protects can only be opened while the token is present.
public enum PKCS11SecretKey {
    /// Encrypts `plain` under the AES key `uri` names, making that key on the token (sensitive,
    /// not extractable) when there is none. Returns the key's URI with its module, and
    /// ciphertext ‖ tag.
    public static func encrypt(_ plain: SecretBytes, under uri: PKCS11URI, nonce: [UInt8], aad: [UInt8], pin: PKCS11PINSource,
                               prompt: SecretPrompt, defaultModule: String? = nil) async throws(PKCS11Failure) -> (key: PKCS11URI, sealed: [UInt8]) {
        guard let label = uri.object else { throw .keyNotFound("\(uri) names no key; add object=") }
        let provider = try await PKCS11Provider.locate(uri, defaultModule: defaultModule)
        let sealed = try await provider.withLogin(uri, pin: pin, prompt: prompt) { session, _ throws(PKCS11Failure) in
            let existing: [UInt]
            do throws(PKCS11Error) { existing = try session.find(selection(uri)) } catch { throw PKCS11Provider.failure(error, uri.tokenOnly.description) }
            guard existing.count <= 1 else { throw .keyNotFound("\(existing.count) AES keys match \(uri); add id=") }
            do throws(PKCS11Error) {
                let key = if let found = existing.first { found } else { try session.generateAESKey(label: label, id: uri.id ?? Array(label.utf8)) }
                return try plain.withUnsafeBytes { bytes throws(PKCS11Error) in try session.encryptGCM(key: key, nonce: nonce, aad: aad, plaintext: bytes) }
            } catch { throw PKCS11Provider.failure(error, uri.tokenOnly.description) }
        }
        return (try await provider.namingItsToken(uri.with(modulePath: provider.modulePath)), sealed)
    }

    /// Decrypts what `encrypt` sealed; fails when the token or its key is absent, or the
    /// ciphertext was sealed by another key.
    public static func decrypt(_ sealed: [UInt8], under uri: PKCS11URI, nonce: [UInt8], aad: [UInt8], pin: PKCS11PINSource,
                               prompt: SecretPrompt) async throws(PKCS11Failure) -> SecretBytes {
        let provider = try await PKCS11Provider.locate(uri, defaultModule: nil)
        return try await provider.withLogin(uri, pin: pin, prompt: prompt) { session, state throws(PKCS11Failure) in
            let key = try state.object("the AES key " + uri.objectName, selection(uri), in: session)
            do throws(PKCS11Error) { return try session.decryptGCM(key: key, nonce: nonce, aad: aad, sealed: sealed) } catch {
                if error.tokenGone { throw PKCS11Provider.failure(error, uri.tokenOnly.description) }
                throw .failed("the token's key \(uri) does not open this data key (\(error))")
            }
        }
    }

    static func selection(_ uri: PKCS11URI) -> [PKCS11Attribute] {
        [PKCS11Attribute(.secretKey), .aesKeyType] + PKCS11Session.selection(uri)
    }
}
