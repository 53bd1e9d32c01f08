import EthereumCore
import Foundation

/// Why a keystore could not be read, decrypted or written. Never carries secret material.
public enum KeystoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case unsupported(String)
    case wrongPassphrase
    case kdfFailed(String)
    case cipherFailed
    case addressMismatch(expected: Address, actual: Address)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed keystore: \(why)"
        case .unsupported(let what): "unsupported keystore: \(what)"
        case .wrongPassphrase: "wrong passphrase (the keystore MAC does not match)"
        case .kdfFailed(let kdf): "the \(kdf) key derivation failed"
        case .cipherFailed: "AES-128-CTR failed"
        case .addressMismatch(let e, let a): "the keystore says \(e) but holds the key of \(a)"
        }
    }
}

/// An Ethereum keystore v3 file (Web3 Secret Storage: scrypt or PBKDF2-HMAC-SHA256, AES-128-CTR,
/// keccak-256 MAC) as geth, clef, Foundry and eth-account write it.
public struct Keystore: Sendable, Equatable {
    public enum KDF: Sendable, Equatable {
        case scrypt(n: UInt64, r: UInt64, p: UInt64)
        case pbkdf2(iterations: Int32)

        /// geth's "standard" scrypt parameters: about a second and 256 MiB.
        public static let standard = KDF.scrypt(n: 1 << 18, r: 8, p: 1)
    }

    public var id: String
    public var address: Address?
    public var kdf: KDF
    public var salt: [UInt8]
    public var iv: [UInt8]
    public var ciphertext: [UInt8]
    public var mac: Bytes32

    /// Work factors beyond these are refused: a hostile file must not tie the agent up for
    /// minutes or gigabytes.
    static let maximumScryptN: UInt64 = 1 << 20
    static let maximumPBKDF2Iterations: Int32 = 10_000_000

    public init(json: JSONValue) throws(KeystoreError) {
        guard let root = json.objectValue else { throw .malformed("not a JSON object") }
        guard let version = root["version"], version == .number("3") || version == .string("3") else {
            throw .unsupported("version \(root["version"]?.serialized ?? "missing"); only version 3")
        }
        guard let crypto = (root["crypto"] ?? root["Crypto"])?.objectValue else { throw .malformed("no crypto object") }
        func hex(_ value: JSONValue?, _ field: String) throws(KeystoreError) -> [UInt8] {
            guard let s = value?.stringValue, let b = try? Hex.decode(s) else { throw .malformed("\(field) must be hex") }
            return b
        }
        func int(_ value: JSONValue?, _ field: String) throws(KeystoreError) -> UInt64 {
            guard case .number(let n)? = value, let v = UInt64(n) else { throw .malformed("\(field) must be an integer") }
            return v
        }
        guard crypto["cipher"]?.stringValue == "aes-128-ctr" else { throw .unsupported("cipher \(crypto["cipher"]?.serialized ?? "missing")") }
        id = root["id"]?.stringValue ?? ""
        if let a = root["address"]?.stringValue {
            guard let parsed = try? Address(a.hasPrefix("0x") ? a : "0x" + a) else { throw .malformed("address") }
            address = parsed
        }
        iv = try hex(crypto["cipherparams"]?["iv"], "cipherparams.iv")
        ciphertext = try hex(crypto["ciphertext"], "ciphertext")
        guard ciphertext.count == 32 else { throw .malformed("ciphertext must be 32 bytes") }
        guard let m = Bytes32(exactly: try hex(crypto["mac"], "mac")) else { throw .malformed("mac must be 32 bytes") }
        mac = m
        let params = crypto["kdfparams"]
        salt = try hex(params?["salt"], "kdfparams.salt")
        guard try int(params?["dklen"], "kdfparams.dklen") == 32 else { throw .unsupported("dklen other than 32") }
        switch crypto["kdf"]?.stringValue {
        case "scrypt":
            let n = try int(params?["n"], "n"), r = try int(params?["r"], "r"), p = try int(params?["p"], "p")
            // scrypt holds 128 · n · r bytes: 1 GiB at most (n = 2^20 with r = 8), as each approval
            // derives the key again; geth's standard parameters take 256 MiB.
            guard n > 1, n & (n - 1) == 0, n <= Self.maximumScryptN, (1...32).contains(r), n * r <= Self.maximumScryptN * 8, (1...16).contains(p) else {
                throw .unsupported("scrypt parameters n=\(n) r=\(r) p=\(p) (n must be a power of two up to 2^20, and 128 · n · r bytes at most 1 GiB)")
            }
            kdf = .scrypt(n: n, r: r, p: p)
        case "pbkdf2":
            guard params?["prf"]?.stringValue == "hmac-sha256" else { throw .unsupported("pbkdf2 prf other than hmac-sha256") }
            let c = try int(params?["c"], "c")
            guard c >= 1, c <= UInt64(Self.maximumPBKDF2Iterations) else { throw .unsupported("pbkdf2 with \(c) iterations") }
            kdf = .pbkdf2(iterations: Int32(c))
        default:
            throw .unsupported("kdf \(crypto["kdf"]?.serialized ?? "missing")")
        }
    }

    public init(parsing data: [UInt8]) throws(KeystoreError) {
        let json: JSONValue
        do { json = try JSONValue(parsing: data) } catch { throw .malformed("\(error)") }
        try self.init(json: json)
    }

    func deriveKey(_ passphrase: SecretBytes) throws(KeystoreError) -> SecretBytes {
        switch kdf {
        case .scrypt(let n, let r, let p): try KeystoreCrypto.scrypt(passphrase: passphrase, salt: salt, n: n, r: r, p: p, length: 32)
        case .pbkdf2(let c): try KeystoreCrypto.pbkdf2(passphrase: passphrase, salt: salt, iterations: c, length: 32)
        }
    }

    static func mac(derivedKey: SecretBytes, ciphertext: [UInt8]) -> Bytes32 {
        derivedKey.withUnsafeBytes { key in
            var hasher = Keccak256()
            hasher.update(UnsafeRawBufferPointer(rebasing: key[16..<32]))
            hasher.update(ciphertext)
            return hasher.finalize()
        }
    }

    /// The private key, if `passphrase` is right; checked against the recorded address.
    public func decrypt(passphrase: SecretBytes) throws(KeystoreError) -> Secp256k1.PrivateKey {
        let derived = try deriveKey(passphrase)
        guard Self.mac(derivedKey: derived, ciphertext: ciphertext) == mac else { throw .wrongPassphrase }
        let plain = try SecretBytes(count: 32) { (out: UnsafeMutableRawBufferPointer) throws(KeystoreError) in
            try withBorrowedBytes(ciphertext) { (input: UnsafeRawBufferPointer) throws(KeystoreError) in
                try KeystoreCrypto.aes128ctr(derivedKey: derived, iv: iv, input: input, output: out)
            }
        }
        let key: Secp256k1.PrivateKey
        do { key = try plain.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(Secp256k1Error) in try Secp256k1.PrivateKey(bytes: raw) } } catch {
            throw .malformed("the decrypted key is not a valid secp256k1 key")
        }
        if let address, address != key.address { throw .addressMismatch(expected: address, actual: key.address) }
        return key
    }

    /// Encrypts `key` under `passphrase` with fresh salt and IV.
    public static func encrypt(_ key: Secp256k1.PrivateKey, passphrase: SecretBytes, kdf: KDF = .standard) throws(KeystoreError) -> Keystore {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let iv = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var keystore = Keystore(id: UUID().uuidString.lowercased(), address: key.address, kdf: kdf, salt: salt, iv: iv, ciphertext: [], mac: .zero)
        let derived = try keystore.deriveKey(passphrase)
        var ciphertext = [UInt8](repeating: 0, count: 32)
        try key.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(KeystoreError) in
            try withBorrowedMutableBytes(&ciphertext) { (out: UnsafeMutableRawBufferPointer) throws(KeystoreError) in
                try KeystoreCrypto.aes128ctr(derivedKey: derived, iv: iv, input: raw, output: out)
            }
        }
        keystore.ciphertext = ciphertext
        keystore.mac = mac(derivedKey: derived, ciphertext: ciphertext)
        return keystore
    }

    init(id: String, address: Address?, kdf: KDF, salt: [UInt8], iv: [UInt8], ciphertext: [UInt8], mac: Bytes32) {
        self.id = id
        self.address = address
        self.kdf = kdf
        self.salt = salt
        self.iv = iv
        self.ciphertext = ciphertext
        self.mac = mac
    }

    /// The JSON geth writes (lowercase hex without 0x, address without 0x).
    public var json: JSONValue {
        var params = JSONObject()
        params["dklen"] = JSONValue(32)
        switch kdf {
        case .scrypt(let n, let r, let p):
            params["n"] = .number(String(n)); params["r"] = .number(String(r)); params["p"] = .number(String(p))
        case .pbkdf2(let c):
            params["c"] = .number(String(c)); params["prf"] = "hmac-sha256"
        }
        params["salt"] = .string(Hex.encode(salt, prefix: false))
        var crypto = JSONObject()
        crypto["cipher"] = "aes-128-ctr"
        crypto["cipherparams"] = .object(JSONObject(["iv": .string(Hex.encode(iv, prefix: false))]))
        crypto["ciphertext"] = .string(Hex.encode(ciphertext, prefix: false))
        if case .scrypt = kdf { crypto["kdf"] = "scrypt" } else { crypto["kdf"] = "pbkdf2" }
        crypto["kdfparams"] = .object(params)
        crypto["mac"] = .string(Hex.encode(mac.bytes, prefix: false))
        var root = JSONObject()
        if let address { root["address"] = .string(Hex.encode(address.bytes, prefix: false)) }
        root["crypto"] = .object(crypto)
        root["id"] = .string(id)
        root["version"] = JSONValue(3)
        return .object(root)
    }
}
