import Crypto
import EthereumCore
import Foundation
import GRDB
import OwnerSigners

/// Why the store could not be opened, unlocked or used. Never carries secret material.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case locked
    case wrongPassphrase
    case notFound(String)
    case corrupt(String)
    case database(String)
    /// The token that wraps the data key is absent, or would not open it.
    case token(String)

    /// The machine-readable reason for the socket protocol.
    public var reason: String {
        switch self {
        case .locked: "locked"
        case .wrongPassphrase: "wrong_passphrase"
        case .notFound: "not_found"
        case .corrupt: "store_corrupt"
        case .database: "store_error"
        case .token: "token_unavailable"
        }
    }

    public var description: String {
        switch self {
        case .locked: "the session-key store is locked"
        case .wrongPassphrase: "wrong passphrase for the session-key store"
        case .notFound(let what): "\(what) not found"
        case .corrupt(let why): "the session-key store is damaged: \(why)"
        case .database(let why): "database error: \(why)"
        case .token(let why): "the session-key store's token: \(why)"
        }
    }
}

extension StoreError {
    /// A database error as the store reports it: damage SQLite found in the file (a disk that
    /// failed, a copy cut short) is `corrupt`, which a retry does not mend.
    init(database error: any Error) {
        if let sqlite = error as? DatabaseError, [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(sqlite.resultCode) {
            self = .corrupt("SQLite finds errors in the file (\(sqlite.message ?? "\(sqlite.resultCode)")); restore it from a backup")
        } else {
            self = .database("\(error)")
        }
    }
}

/// How the store's data key is protected at rest, as JSON in the `meta` table.
enum WrappedDataKey: Equatable {
    /// AES-256-GCM under scrypt(passphrase).
    case passphrase(salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, sealed: [UInt8])
    /// Sealed under an AES key that never leaves a PKCS#11 token (`key` is its URI, with the
    /// module): the store opens only while the token is present.
    case token(key: PKCS11URI, sealed: PKCS11Sealed)

    /// The associated data of both sealings, so a wrapped key cannot be passed off as anything else.
    static let aad = Array("session-agent data key".utf8)

    var json: JSONValue {
        switch self {
        case let .passphrase(salt, n, r, p, sealed):
            .object(JSONObject([
                "kind": "passphrase", "salt": .string(Hex.encode(salt)), "n": .number(String(n)), "r": .number(String(r)), "p": .number(String(p)),
                "sealed": .string(Hex.encode(sealed)),
            ]))
        case let .token(key, .gcm(nonce, sealed)):
            .object(JSONObject(["kind": "pkcs11", "key": .string(key.description), "nonce": .string(Hex.encode(nonce)), "sealed": .string(Hex.encode(sealed))]))
        case let .token(key, .derived(salt, sealed)):
            .object(JSONObject(["kind": "pkcs11", "key": .string(key.description), "derivedFrom": .string(Hex.encode(salt)), "sealed": .string(Hex.encode(sealed))]))
        }
    }

    init(json text: String) throws(StoreError) {
        let json = try? JSONValue(parsing: text)
        func bytes(_ key: String) -> [UInt8]? { json?[key]?.stringValue.flatMap { try? Hex.decode($0) } }
        func number(_ key: String) -> UInt64? { if case .number(let n)? = json?[key] { UInt64(n) } else { nil } }
        switch json?["kind"]?.stringValue {
        case "passphrase":
            guard let salt = bytes("salt"), let n = number("n"), let r = number("r"), let p = number("p"), let sealed = bytes("sealed") else { break }
            self = .passphrase(salt: salt, n: n, r: r, p: p, sealed: sealed)
            return
        case "pkcs11":
            guard let key = json?["key"]?.stringValue.flatMap({ try? PKCS11URI($0) }), let sealed = bytes("sealed") else { break }
            if let nonce = bytes("nonce") {
                self = .token(key: key, sealed: .gcm(nonce: nonce, sealed: sealed))
                return
            }
            guard let salt = bytes("derivedFrom"), salt.count == 32 else { break }
            self = .token(key: key, sealed: .derived(salt: salt, sealed: sealed))
            return
        default: break
        }
        throw .corrupt("the wrapped data key cannot be read")
    }
}

/// The store's 256-bit data key, and the AES-256-GCM sealing of records under it.
struct DataKey: Sendable {
    let key: SymmetricKey

    static func generate() -> DataKey { DataKey(key: SymmetricKey(size: .bits256)) }

    /// Seals `plaintext` with a fresh nonce, bound to `boundTo` (authenticated, not stored): the
    /// record opens only beside the same data.
    func seal(_ plaintext: UnsafeRawBufferPointer, boundTo data: [UInt8]) throws(StoreError) -> [UInt8] {
        do {
            let box = try AES.GCM.seal(plaintext, using: key, authenticating: data)
            return Array(box.combined!)
        } catch { throw .corrupt("sealing failed") }
    }

    /// Opens what `seal` sealed bound to `boundTo`; `record` names it in the error.
    func open(_ sealed: [UInt8], boundTo data: [UInt8], record: String) throws(StoreError) -> SecretBytes {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            var plain = try AES.GCM.open(box, using: key, authenticating: data)
            defer { plain.withUnsafeMutableBytes { SecretBytes.zero($0) } }
            return plain.withUnsafeBytes { SecretBytes(copying: $0) }
        } catch { throw .corrupt("\(record) does not decrypt (its row was edited, or it is under another key)") }
    }

    /// Wraps this key under a passphrase with scrypt (interactive cost; `n` can be lowered for tests).
    func wrap(passphrase: SecretBytes, n: UInt64 = 1 << 15, r: UInt64 = 8, p: UInt64 = 1) throws(StoreError) -> WrappedDataKey {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let kek: SecretBytes
        do { kek = try KeystoreCrypto.scrypt(passphrase: passphrase, salt: salt, n: n, r: r, p: p, length: 32) } catch {
            throw .corrupt("scrypt failed")
        }
        let sealed = try kek.withUnsafeBytes { kekBytes throws(StoreError) in
            do {
                return try key.withUnsafeBytes { raw in
                    Array(try AES.GCM.seal(raw, using: SymmetricKey(data: kekBytes), authenticating: WrappedDataKey.aad).combined!)
                }
            } catch { throw StoreError.corrupt("wrapping failed") }
        }
        return .passphrase(salt: salt, n: n, r: r, p: p, sealed: sealed)
    }

    static func unwrap(_ wrapped: WrappedDataKey, passphrase: SecretBytes) throws(StoreError) -> DataKey {
        guard case let .passphrase(salt, n, r, p, sealed) = wrapped else { throw .wrongPassphrase }
        let kek: SecretBytes
        do { kek = try KeystoreCrypto.scrypt(passphrase: passphrase, salt: salt, n: n, r: r, p: p, length: 32) } catch {
            throw .corrupt("scrypt failed")
        }
        return try kek.withUnsafeBytes { kekBytes throws(StoreError) in
            do {
                let box = try AES.GCM.SealedBox(combined: sealed)
                var raw = try AES.GCM.open(box, using: SymmetricKey(data: kekBytes), authenticating: WrappedDataKey.aad)
                defer { raw.withUnsafeMutableBytes { SecretBytes.zero($0) } }
                return DataKey(key: SymmetricKey(data: raw))
            } catch { throw StoreError.wrongPassphrase }
        }
    }

    /// Wraps this key under the AES key `keyURI` names on a token (made there, sensitive and not
    /// extractable, when the token has none of that name).
    func wrap(token keyURI: PKCS11URI, pin: PINSource, prompt: SecretPrompt) async throws(PKCS11Failure) -> WrappedDataKey {
        let plain = key.withUnsafeBytes { SecretBytes(copying: $0) }
        let (located, sealed) = try await PKCS11SecretKey.seal(plain, under: keyURI, aad: WrappedDataKey.aad, pin: pin, prompt: prompt)
        return .token(key: located, sealed: sealed)
    }

    /// This key, and what the token says of the AES key that wrapped it.
    static func unwrap(_ wrapped: WrappedDataKey, pin: PINSource, prompt: SecretPrompt) async throws(PKCS11Failure) -> (DataKey, PKCS11KeyCustody) {
        guard case let .token(keyURI, sealed) = wrapped else { throw .failed("the store's data key is wrapped by a passphrase, not a token") }
        let (raw, custody) = try await PKCS11SecretKey.open(sealed, under: keyURI, aad: WrappedDataKey.aad, pin: pin, prompt: prompt)
        return (raw.withUnsafeBytes { DataKey(key: SymmetricKey(data: $0)) }, custody)
    }
}
