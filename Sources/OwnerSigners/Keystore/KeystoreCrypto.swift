internal import COpenSSL
import EthereumCore

/// The OpenSSL calls of the keystore: scrypt, PBKDF2-HMAC-SHA256 and AES-128-CTR. Derived keys
/// live only in `SecretBytes`.
package enum KeystoreCrypto {
    package static func scrypt(passphrase: SecretBytes, salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, length: Int) throws(KeystoreError) -> SecretBytes {
        // OpenSSL refuses to use more than maxmem bytes; scrypt needs 128 · r · (n + p + 1).
        let maxmem = 128 * r * (n + p + 2) + (1 << 20)
        return try SecretBytes(count: length) { (out: UnsafeMutableRawBufferPointer) throws(KeystoreError) in
            let ok = passphrase.withUnsafeBytes { pass in
                EVP_PBE_scrypt(pass.baseAddress?.assumingMemoryBound(to: CChar.self), pass.count, salt, salt.count, n, r, p, maxmem,
                               out.baseAddress!.assumingMemoryBound(to: UInt8.self), length)
            }
            guard ok == 1 else { throw KeystoreError.kdfFailed("scrypt") }
        }
    }

    static func pbkdf2(passphrase: SecretBytes, salt: [UInt8], iterations: Int32, length: Int) throws(KeystoreError) -> SecretBytes {
        try SecretBytes(count: length) { (out: UnsafeMutableRawBufferPointer) throws(KeystoreError) in
            let ok = passphrase.withUnsafeBytes { pass in
                PKCS5_PBKDF2_HMAC(pass.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(pass.count), salt, Int32(salt.count), iterations,
                                  EVP_sha256(), Int32(length), out.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            guard ok == 1 else { throw KeystoreError.kdfFailed("pbkdf2") }
        }
    }

    /// AES-128-CTR is its own inverse: the same call encrypts and decrypts. `key` is the first
    /// 16 bytes of `derivedKey`. The plaintext side is a `SecretBytes`.
    static func aes128ctr(derivedKey: SecretBytes, iv: [UInt8], input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) throws(KeystoreError) {
        guard iv.count == 16, output.count == input.count else { throw KeystoreError.malformed("cipherparams.iv must be 16 bytes") }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw KeystoreError.cipherFailed }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var written: Int32 = 0
        let ok = derivedKey.withUnsafeBytes { key in
            EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), nil, key.baseAddress!.assumingMemoryBound(to: UInt8.self), iv) == 1
                && EVP_EncryptUpdate(ctx, output.baseAddress!.assumingMemoryBound(to: UInt8.self), &written,
                                     input.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(input.count)) == 1
        }
        guard ok, Int(written) == input.count else { throw KeystoreError.cipherFailed }
    }
}
