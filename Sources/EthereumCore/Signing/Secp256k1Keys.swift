extension Secp256k1 {
    /// A secp256k1 private key held in zeroed-on-release memory.
    public struct PrivateKey: Sendable, CustomStringConvertible {
        private let secret: SecretBytes

        /// A fresh key from the operating system's CSPRNG.
        public static func generate() -> PrivateKey {
            while true {
                var candidate = Secp256k1.randomBytes(32)
                defer { candidate.withUnsafeMutableBytes { SecretBytes.zero($0) } }
                if let key = try? PrivateKey(bytes: candidate.withUnsafeBytes { $0 }) { return key }
            }
        }

        /// Copies 32 bytes; the caller zeroes its own copy.
        public init(bytes: UnsafeRawBufferPointer) throws(Secp256k1Error) {
            guard Secp256k1.isValidSecretKey(bytes) else { throw .invalidPrivateKey }
            secret = SecretBytes(copying: bytes)
        }

        /// Parses 64 hex digits (for test keys and imports; prefer `init(bytes:)`).
        public init(hex: String) throws(Secp256k1Error) {
            guard var bytes = try? Hex.decode(hex) else { throw .invalidPrivateKey }
            defer { bytes.withUnsafeMutableBytes { SecretBytes.zero($0) } }
            try self.init(bytes: bytes.withUnsafeBytes { $0 })
        }

        public var publicKey: PublicKey { secret.withUnsafeBytes { Secp256k1.publicKey(secret: $0) } }
        public var address: Address { publicKey.address }

        /// Signs a 32-byte digest as Ethereum expects: RFC 6979, low s, v = 27/28.
        public func sign(digest: Bytes32) -> RecoverableSignature {
            secret.withUnsafeBytes { Secp256k1.sign(digest: digest, secret: $0) }
        }

        /// For export paths that must hand the key out; keep the closure short.
        public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
            try secret.withUnsafeBytes(body)
        }

        public var description: String { "Secp256k1.PrivateKey(\(address), redacted)" }
    }

    /// An uncompressed public key: 64 bytes X ‖ Y.
    public struct PublicKey: Hashable, Sendable {
        public let uncompressed: [UInt8]

        init(validatedUncompressed bytes: [UInt8]) { uncompressed = bytes }

        /// Parses 33-byte compressed, 65-byte uncompressed (0x04…) or 64-byte X‖Y keys.
        public init(_ bytes: [UInt8]) throws(Secp256k1Error) {
            let encoded = bytes.count == 64 ? [0x04] + bytes : bytes
            guard let key = Secp256k1.parsePublicKey(encoded) else { throw .invalidPublicKey }
            self = key
        }

        public var address: Address { Address(publicKey: uncompressed) }
    }
}

/// An Ethereum ECDSA signature r ‖ s ‖ v, v = 27 or 28.
public struct RecoverableSignature: Hashable, Sendable, CustomStringConvertible {
    public var r: Bytes32
    public var s: Bytes32
    public var v: UInt8

    public init(r: Bytes32, s: Bytes32, v: UInt8) {
        self.r = r
        self.s = s
        self.v = v
    }

    /// 65 bytes r ‖ s ‖ v, as `eth_sign` and OwnableValidator use them.
    public init(bytes: [UInt8]) throws(Secp256k1Error) {
        guard bytes.count == 65 else { throw .invalidSignature("expected 65 bytes r‖s‖v, got \(bytes.count)") }
        self.init(r: Bytes32(bytes[0..<32]), s: Bytes32(bytes[32..<64]), v: bytes[64])
    }

    public var bytes: [UInt8] { r.bytes + s.bytes + [v] }
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    /// s ≤ n/2, the form Ethereum (EIP-2) and libsecp256k1 accept.
    public var hasLowS: Bool { UInt256(s) <= Secp256k1.halfOrder }

    /// The signer's public key (ecrecover semantics: high s accepted).
    public func recoverPublicKey(digest: Bytes32) throws(Secp256k1Error) -> Secp256k1.PublicKey {
        try Secp256k1.recover(self, digest: digest)
    }

    public func recoverAddress(digest: Bytes32) throws(Secp256k1Error) -> Address {
        try recoverPublicKey(digest: digest).address
    }

    /// Turns a signature from a token or smartcard into Ethereum form: DER or raw r ‖ s (64
    /// bytes, or 65 with any v), s lowered to n − s when high, and v found by trial recovery
    /// against the expected signer. Never returns a signature that does not recover to it.
    public static func normalizing(
        external bytes: [UInt8], digest: Bytes32, signer: Address
    ) throws(Secp256k1Error) -> RecoverableSignature {
        var r: Bytes32, s: Bytes32
        switch bytes.count {
        case 64, 65:
            r = Bytes32(bytes[0..<32])
            s = Bytes32(bytes[32..<64])
        default:
            guard bytes.first == 0x30 else {
                throw .invalidSignature("expected DER, 64-byte r‖s or 65-byte r‖s‖v, got \(bytes.count) bytes")
            }
            (r, s) = try Secp256k1.parseDER(bytes)
        }
        let sValue = UInt256(s)
        guard !UInt256(r).isZero, !sValue.isZero, UInt256(r) < Secp256k1.order, sValue < Secp256k1.order else {
            throw .invalidSignature("r and s must be in 1..<n")
        }
        if sValue > Secp256k1.halfOrder {
            s = Secp256k1.order.subtractingReportingOverflow(sValue).partialValue.word
        }
        for v: UInt8 in [27, 28] {
            let candidate = RecoverableSignature(r: r, s: s, v: v)
            if (try? candidate.recoverAddress(digest: digest)) == signer { return candidate }
        }
        throw .signerMismatch(expected: signer)
    }
}
