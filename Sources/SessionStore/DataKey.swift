import Crypto
import EthereumCore
import Foundation
import OwnerSigners

/// Why the store could not be opened, unlocked or used. Never carries secret material.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case locked
    case wrongPassphrase
    case notFound(String)
    case corrupt(String)
    case database(String)

    /// The machine-readable reason for the socket protocol.
    public var reason: String {
        switch self {
        case .locked: "locked"
        case .wrongPassphrase: "wrong_passphrase"
        case .notFound: "not_found"
        case .corrupt: "store_corrupt"
        case .database: "store_error"
        }
    }

    public var description: String {
        switch self {
        case .locked: "the session-key store is locked"
        case .wrongPassphrase: "wrong passphrase for the session-key store"
        case .notFound(let what): "\(what) not found"
        case .corrupt(let why): "the session-key store is damaged: \(why)"
        case .database(let why): "database error: \(why)"
        }
    }
}

/// How the store's data key is protected at rest. Stored as JSON in the `meta` table so an
/// HSM-wrapped variant can be added without a migration.
struct WrappedDataKey: Equatable {
    /// "passphrase": AES-256-GCM under scrypt(passphrase).
    var kind: String
    var salt: [UInt8]
    var n: UInt64
    var r: UInt64
    var p: UInt64
    /// nonce ‖ ciphertext ‖ tag of the 32-byte data key.
    var sealed: [UInt8]

    var json: JSONValue {
        .object(JSONObject([
            "kind": .string(kind), "salt": .string(Hex.encode(salt)), "n": .number(String(n)), "r": .number(String(r)), "p": .number(String(p)),
            "sealed": .string(Hex.encode(sealed)),
        ]))
    }

    init(kind: String, salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, sealed: [UInt8]) {
        self.kind = kind
        self.salt = salt
        self.n = n
        self.r = r
        self.p = p
        self.sealed = sealed
    }

    init(json text: String) throws(StoreError) {
        guard let json = try? JSONValue(parsing: text), let kind = json["kind"]?.stringValue,
              let salt = json["salt"]?.stringValue.flatMap({ try? Hex.decode($0) }),
              case .number(let n)? = json["n"], case .number(let r)? = json["r"], case .number(let p)? = json["p"],
              let sealed = json["sealed"]?.stringValue.flatMap({ try? Hex.decode($0) }),
              let nv = UInt64(n), let rv = UInt64(r), let pv = UInt64(p)
        else { throw .corrupt("the wrapped data key cannot be read") }
        self.init(kind: kind, salt: salt, n: nv, r: rv, p: pv, sealed: sealed)
    }
}

/// The store's 256-bit data key, and the AES-256-GCM sealing of records under it.
struct DataKey: Sendable {
    let key: SymmetricKey

    static func generate() -> DataKey { DataKey(key: SymmetricKey(size: .bits256)) }

    /// Seals `plaintext` with a fresh nonce; `recordId` is authenticated, so a record cannot be
    /// moved to another row.
    func seal(_ plaintext: UnsafeRawBufferPointer, recordId: String) throws(StoreError) -> [UInt8] {
        do {
            let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(recordId.utf8))
            return Array(box.combined!)
        } catch { throw .corrupt("sealing failed") }
    }

    func open(_ sealed: [UInt8], recordId: String) throws(StoreError) -> SecretBytes {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            var plain = try AES.GCM.open(box, using: key, authenticating: Array(recordId.utf8))
            defer { plain.withUnsafeMutableBytes { SecretBytes.zero($0) } }
            return plain.withUnsafeBytes { SecretBytes(copying: $0) }
        } catch { throw .corrupt("record \(recordId) does not decrypt (tampered, or under another key)") }
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
                    Array(try AES.GCM.seal(raw, using: SymmetricKey(data: kekBytes), authenticating: Array("session-agent data key".utf8)).combined!)
                }
            } catch { throw StoreError.corrupt("wrapping failed") }
        }
        return WrappedDataKey(kind: "passphrase", salt: salt, n: n, r: r, p: p, sealed: sealed)
    }

    static func unwrap(_ wrapped: WrappedDataKey, passphrase: SecretBytes) throws(StoreError) -> DataKey {
        guard wrapped.kind == "passphrase" else { throw .corrupt("unsupported data-key wrapping \(wrapped.kind)") }
        let kek: SecretBytes
        do { kek = try KeystoreCrypto.scrypt(passphrase: passphrase, salt: wrapped.salt, n: wrapped.n, r: wrapped.r, p: wrapped.p, length: 32) } catch {
            throw .corrupt("scrypt failed")
        }
        return try kek.withUnsafeBytes { kekBytes throws(StoreError) in
            do {
                let box = try AES.GCM.SealedBox(combined: wrapped.sealed)
                var raw = try AES.GCM.open(box, using: SymmetricKey(data: kekBytes), authenticating: Array("session-agent data key".utf8))
                defer { raw.withUnsafeMutableBytes { SecretBytes.zero($0) } }
                return DataKey(key: SymmetricKey(data: raw))
            } catch { throw StoreError.wrongPassphrase }
        }
    }
}
