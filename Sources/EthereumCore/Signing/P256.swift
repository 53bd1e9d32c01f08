import Crypto

/// Why a P-256 key or signature was rejected.
public enum P256Error: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidPublicKey
    case invalidSignature(String)

    public var description: String {
        switch self {
        case .invalidPublicKey: "invalid P-256 public key"
        case .invalidSignature(let why): "invalid P-256 signature: \(why)"
        }
    }
}

/// P-256 (secp256r1) as WebAuthn owners use it: verification of a signature over a 32-byte
/// message hash, and the low-s form that the on-chain verifiers require.
public enum P256 {
    /// The group order n.
    public static let order = try! UInt256(parsing: "0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551")

    public struct PublicKey: Hashable, Sendable {
        public let x: Bytes32
        public let y: Bytes32

        /// 64-byte X ‖ Y, 65-byte 0x04 ‖ X ‖ Y, or 33-byte compressed.
        public init(_ bytes: [UInt8]) throws(P256Error) {
            let key: Crypto.P256.Signing.PublicKey
            do {
                switch bytes.count {
                case 64: key = try .init(rawRepresentation: bytes)
                case 65: key = try .init(x963Representation: bytes)
                case 33: key = try .init(compressedRepresentation: bytes)
                default: throw P256Error.invalidPublicKey
                }
            } catch { throw .invalidPublicKey }
            let raw = Array(key.rawRepresentation)
            x = Bytes32(raw[0..<32])
            y = Bytes32(raw[32..<64])
        }

        /// Verifies r ‖ s over `digest` (the already-hashed message, e.g. WebAuthn's
        /// sha256(authenticatorData ‖ sha256(clientDataJSON))). High s is accepted here;
        /// check `P256.isLowS` where the verifier requires it.
        public func isValidSignature(r: Bytes32, s: Bytes32, digest: Bytes32) -> Bool {
            guard let key = try? Crypto.P256.Signing.PublicKey(rawRepresentation: x.bytes + y.bytes),
                  let signature = try? Crypto.P256.Signing.ECDSASignature(rawRepresentation: r.bytes + s.bytes)
            else { return false }
            return key.isValidSignature(signature, for: PrehashedDigest(digest))
        }
    }

    /// r and s of a DER-encoded ECDSA signature (what FIDO2 authenticators return).
    public static func signature(der: [UInt8]) throws(P256Error) -> (r: Bytes32, s: Bytes32) {
        let raw: [UInt8]
        do { raw = Array(try Crypto.P256.Signing.ECDSASignature(derRepresentation: der).rawRepresentation) } catch {
            throw .invalidSignature("not a DER-encoded ECDSA signature")
        }
        return (Bytes32(raw[0..<32]), Bytes32(raw[32..<64]))
    }

    /// s ≤ n/2.
    public static func isLowS(_ s: Bytes32) -> Bool { UInt256(s) <= order.shiftedRight(1) }

    /// s replaced by n − s when s > n/2; the signature stays valid (ECDSA is symmetric in s).
    public static func normalizedS(_ s: Bytes32) throws(P256Error) -> Bytes32 {
        let value = UInt256(s)
        guard !value.isZero, value < order else { throw .invalidSignature("s must be in 1..<n") }
        return isLowS(s) ? s : order.subtractingReportingOverflow(value).partialValue.word
    }
}

/// A 32-byte hash computed elsewhere, handed to swift-crypto's verifier as it is.
private struct PrehashedDigest: Crypto.Digest {
    static let byteCount = 32
    let bytes: Bytes32

    init(_ bytes: Bytes32) { self.bytes = bytes }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }

    func makeIterator() -> Array<UInt8>.Iterator { bytes.bytes.makeIterator() }
    var description: String { "PrehashedDigest(\(bytes.hex))" }
}
