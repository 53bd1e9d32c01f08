internal import CSecp256k1

/// Why a secp256k1 operation failed.
public enum Secp256k1Error: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidPrivateKey
    case invalidPublicKey
    case invalidSignature(String)
    case recoveryFailed
    case signerMismatch(expected: Address)

    public var description: String {
        switch self {
        case .invalidPrivateKey: "invalid secp256k1 private key (must be 32 bytes, 0 < k < n)"
        case .invalidPublicKey: "invalid secp256k1 public key"
        case .invalidSignature(let why): "invalid signature: \(why)"
        case .recoveryFailed: "no public key can be recovered from this signature and digest"
        case .signerMismatch(let a): "signature does not recover to the expected signer \(a)"
        }
    }
}

/// Every libsecp256k1 call of the project is in this file.
public enum Secp256k1 {
    /// One context for the process, randomised once against side channels. libsecp256k1
    /// contexts are safe to share between threads for everything but re-randomisation.
    private struct Context: @unchecked Sendable { let pointer: OpaquePointer }

    private static let shared: Context = {
        guard let ctx = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE)) else {
            fatalError("secp256k1_context_create failed")  // allocation failure: nothing sensible to do
        }
        var seed = randomBytes(32)
        _ = secp256k1_context_randomize(ctx, &seed)
        seed.withUnsafeMutableBytes { SecretBytes.zero($0) }
        return Context(pointer: ctx)
    }()

    private static var ctx: OpaquePointer { shared.pointer }

    static func randomBytes(_ n: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()  // getrandom(2) on Linux
        return (0..<n).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The group order n.
    public static let order = try! UInt256(parsing: "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
    static let halfOrder = order.shiftedRight(1)

    static func isValidSecretKey(_ key: UnsafeRawBufferPointer) -> Bool {
        key.count == 32 && secp256k1_ec_seckey_verify(ctx, key.bindMemory(to: UInt8.self).baseAddress!) == 1
    }

    static func publicKey(secret: UnsafeRawBufferPointer) -> PublicKey {
        var pubkey = secp256k1_pubkey()
        let ok = secp256k1_ec_pubkey_create(ctx, &pubkey, secret.bindMemory(to: UInt8.self).baseAddress!)
        precondition(ok == 1, "secret key was verified at construction")
        return serialize(pubkey)
    }

    private static func serialize(_ pubkey: secp256k1_pubkey) -> PublicKey {
        var pubkey = pubkey
        var out = [UInt8](repeating: 0, count: 65)
        var length = 65
        _ = secp256k1_ec_pubkey_serialize(ctx, &out, &length, &pubkey, UInt32(SECP256K1_EC_UNCOMPRESSED))
        return PublicKey(validatedUncompressed: Array(out[1...]))
    }

    static func parsePublicKey(_ bytes: [UInt8]) -> PublicKey? {
        var pubkey = secp256k1_pubkey()
        guard secp256k1_ec_pubkey_parse(ctx, &pubkey, bytes, bytes.count) == 1 else { return nil }
        return serialize(pubkey)
    }

    /// RFC 6979 deterministic recoverable signature; libsecp256k1 always returns low s.
    static func sign(digest: Bytes32, secret: UnsafeRawBufferPointer) -> RecoverableSignature {
        var sig = secp256k1_ecdsa_recoverable_signature()
        let ok = digest.withUnsafeBytes { d in
            secp256k1_ecdsa_sign_recoverable(ctx, &sig, d.bindMemory(to: UInt8.self).baseAddress!,
                                             secret.bindMemory(to: UInt8.self).baseAddress!, nil, nil)
        }
        precondition(ok == 1, "signing with a verified key and the default nonce function cannot fail")
        var compact = [UInt8](repeating: 0, count: 64)
        var recid: Int32 = 0
        _ = secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, &compact, &recid, &sig)
        return RecoverableSignature(r: Bytes32(compact[0..<32]), s: Bytes32(compact[32..<64]), v: UInt8(27 + recid))
    }

    /// ecrecover: accepts high s (as the EVM precompile does); v must be 27/28 or 0/1.
    static func recover(_ signature: RecoverableSignature, digest: Bytes32) throws(Secp256k1Error) -> PublicKey {
        let recid: Int32
        switch signature.v {
        case 27, 28: recid = Int32(signature.v) - 27
        case 0, 1: recid = Int32(signature.v)
        default: throw .invalidSignature("v must be 27 or 28 (or 0 or 1), got \(signature.v)")
        }
        var sig = secp256k1_ecdsa_recoverable_signature()
        let compact = signature.r.bytes + signature.s.bytes
        guard secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &sig, compact, recid) == 1 else {
            throw .invalidSignature("r or s is not below the group order")
        }
        var pubkey = secp256k1_pubkey()
        let ok = digest.withUnsafeBytes { d in
            secp256k1_ecdsa_recover(ctx, &pubkey, &sig, d.bindMemory(to: UInt8.self).baseAddress!)
        }
        guard ok == 1 else { throw .recoveryFailed }
        return serialize(pubkey)
    }

    /// Strict DER (`SEQUENCE { INTEGER r, INTEGER s }`) to r and s.
    static func parseDER(_ der: [UInt8]) throws(Secp256k1Error) -> (r: Bytes32, s: Bytes32) {
        var sig = secp256k1_ecdsa_signature()
        guard secp256k1_ecdsa_signature_parse_der(ctx, &sig, der, der.count) == 1 else {
            throw .invalidSignature("not a valid DER ECDSA signature")
        }
        var compact = [UInt8](repeating: 0, count: 64)
        _ = secp256k1_ecdsa_signature_serialize_compact(ctx, &compact, &sig)
        return (Bytes32(compact[0..<32]), Bytes32(compact[32..<64]))
    }
}
