import Crypto
import EthereumCore

/// A WebAuthn assertion as the on-chain verifiers take it (webauthn-sol's `WebAuthnAuth`).
public struct WebAuthnAssertion: Hashable, Sendable {
    public var authenticatorData: [UInt8]
    public var clientDataJSON: String
    /// Where `"challenge":"…"` starts in clientDataJSON.
    public var challengeIndex: Int
    /// Where `"type":"webauthn.get"` starts in clientDataJSON.
    public var typeIndex: Int
    public var r: Bytes32
    public var s: Bytes32

    public init(authenticatorData: [UInt8], clientDataJSON: String, challengeIndex: Int, typeIndex: Int, r: Bytes32, s: Bytes32) {
        self.authenticatorData = authenticatorData
        self.clientDataJSON = clientDataJSON
        self.challengeIndex = challengeIndex
        self.typeIndex = typeIndex
        self.r = r
        self.s = s
    }

    static let abiType = try! ABIType(parsing: "(bytes,string,uint256,uint256,uint256,uint256)")

    var abiValue: ABIValue {
        .tuple([.bytes(authenticatorData), .string(clientDataJSON), .uint(UInt256(UInt64(challengeIndex))), .uint(UInt256(UInt64(typeIndex))),
                .uint(UInt256(r)), .uint(UInt256(s))])
    }

    init(abi: ABIValue) throws(SmartSessionError) {
        guard case .tuple(let f) = abi, case .bytes(let a) = f[0], case .string(let c) = f[1], case .uint(let ci) = f[2],
              case .uint(let ti) = f[3], case .uint(let r) = f[4], case .uint(let s) = f[5],
              let challengeIndex = ci.int, let typeIndex = ti.int
        else { throw SmartSessionError("WebAuthnAuth: unexpected shape or index out of range") }
        self.init(authenticatorData: a, clientDataJSON: c, challengeIndex: challengeIndex, typeIndex: typeIndex, r: r.word, s: s.word)
    }

    /// The clientDataJSON a WebAuthn client writes to get an assertion over `challenge`, laid out
    /// as both verifiers read it: the type at 1, the challenge at 23 (ZeroDev's fixed offset).
    public static func clientData(challenge: Bytes32, origin: String) -> (json: String, typeIndex: Int, challengeIndex: Int) {
        let json = #"{"type":"webauthn.get","challenge":""# + base64url(challenge.bytes) + #"","origin":"# + JSONValue.string(origin).serialized + #","crossOrigin":false}"#
        return (json, 1, 23)
    }

    /// base64url without padding, as WebAuthn writes the challenge.
    public static func base64url(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var out = ""
        var i = 0
        while i < bytes.count {
            let chunk = bytes[i..<min(i + 3, bytes.count)]
            var n = 0
            for (j, b) in chunk.enumerated() { n |= Int(b) << (16 - 8 * j) }
            for k in 0..<(chunk.count + 1) { out.append(alphabet[(n >> (18 - 6 * k)) & 63]) }
            i += 3
        }
        return out
    }

    /// The checks the Rhinestone verifier makes (spec §6.4): low s, the type and challenge at
    /// their indexes, user presence (and verification when required), and the P-256
    /// signature over sha256(authenticatorData ‖ sha256(clientDataJSON)).
    public func verify(challenge: Bytes32, publicKey: EthereumCore.P256.PublicKey, requireUserVerification: Bool) -> Bool {
        let json = Array(clientDataJSON.utf8)
        let type = Array(#""type":"webauthn.get""#.utf8)
        let expectedChallenge = Array(#""challenge":""#.utf8) + Array(Self.base64url(challenge.bytes).utf8) + [UInt8(ascii: "\"")]
        // Indexes come from a signature anyone may write: compared without an addition that
        // could overflow (2^63 - 1 is a valid uint256 index).
        guard EthereumCore.P256.isLowS(s), authenticatorData.count >= 37,
              typeIndex >= 0, typeIndex <= json.count - type.count, Array(json[typeIndex..<(typeIndex + type.count)]) == type,
              challengeIndex >= 0, challengeIndex <= json.count - expectedChallenge.count,
              Array(json[challengeIndex..<(challengeIndex + expectedChallenge.count)]) == expectedChallenge
        else { return false }
        let flags = authenticatorData[32]
        guard flags & 0x01 != 0, !requireUserVerification || flags & 0x04 != 0 else { return false }
        return publicKey.isValidSignature(r: r, s: s, digest: Self.message(authenticatorData: authenticatorData, clientDataJSON: clientDataJSON))
    }

    /// What the P-256 key signs: sha256(authenticatorData ‖ sha256(clientDataJSON)).
    public static func message(authenticatorData: [UInt8], clientDataJSON: String) -> Bytes32 {
        Bytes32(Array(SHA256.hash(data: authenticatorData + Array(SHA256.hash(data: Array(clientDataJSON.utf8))))))
    }

    /// The authenticator data an assertion by a key that is not an authenticator carries (a
    /// P-256 key on a token, whose login stands for the person's presence and verification):
    /// the rp id's hash, the UP and UV flags, a zero signature counter.
    public static func authenticatorData(rpID: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(rpID.utf8))) + [0x05, 0, 0, 0, 0]
    }
}

/// Rhinestone's WebAuthnValidator (core-modules), spec §6.4: the July-2025 build deployed at
/// `0x0000000000578c4c…` binds credential ids to the account.
public enum RhinestoneWebAuthn {
    public struct Credential: Hashable, Sendable {
        public var publicKey: EthereumCore.P256.PublicKey
        public var requireUserVerification: Bool
        public init(publicKey: EthereumCore.P256.PublicKey, requireUserVerification: Bool) {
            self.publicKey = publicKey
            self.requireUserVerification = requireUserVerification
        }
    }

    /// keccak256(abi.encode(x, y, account)) in the deployed build; without the account in the
    /// newer source.
    public static func credentialId(_ key: EthereumCore.P256.PublicKey, account: Address?) -> Bytes32 {
        var words = key.x.bytes + key.y.bytes
        if let account { words += account.word.bytes }
        return Keccak256.hash(words)
    }

    static let credentialType = try! ABIType(parsing: "(uint256,uint256,bool)")

    /// `abi.encode(uint256 threshold, WebAuthnCredential[] credentials)`, sorted by credential id.
    public static func installData(threshold: Int, credentials: [Credential], account: Address?) throws(SmartSessionError) -> [UInt8] {
        guard threshold >= 1, threshold <= credentials.count else { throw SmartSessionError("WebAuthnValidator: threshold out of range") }
        let sorted = credentials.sorted { credentialId($0.publicKey, account: account) < credentialId($1.publicKey, account: account) }
        let ids = sorted.map { credentialId($0.publicKey, account: account) }
        guard Set(ids).count == ids.count else { throw SmartSessionError("WebAuthnValidator: duplicate credential") }
        return try! ABI.encode([.uint(UInt256(UInt64(threshold))), .array(sorted.map {
            .tuple([.uint(UInt256($0.publicKey.x)), .uint(UInt256($0.publicKey.y)), .bool($0.requireUserVerification)])
        })], as: [.uint256, .array(credentialType)])
    }

    /// Account-mode signature: `abi.encode(bytes32[] credentialIds, bool usePrecompile, WebAuthnAuth[] auth)`.
    public static func signature(credentialIds: [Bytes32], usePrecompile: Bool, assertions: [WebAuthnAssertion]) -> [UInt8] {
        try! ABI.encode([.array(credentialIds.map { .bytes32($0) }), .bool(usePrecompile), .array(assertions.map(\.abiValue))],
                        as: [.array(.bytes32), .bool, .array(WebAuthnAssertion.abiType)])
    }

    public static func decodeSignature(_ bytes: [UInt8]) throws(SmartSessionError) -> (credentialIds: [Bytes32], usePrecompile: Bool, assertions: [WebAuthnAssertion]) {
        let v: [ABIValue]
        do { v = try ABI.decode(bytes, as: [.array(.bytes32), .bool, .array(WebAuthnAssertion.abiType)]) } catch {
            throw SmartSessionError("WebAuthnValidator signature: \(error)")
        }
        guard case .array(let ids) = v[0], case .bool(let pre) = v[1], case .array(let auths) = v[2] else {
            throw SmartSessionError("WebAuthnValidator signature: unexpected shape")
        }
        var assertions: [WebAuthnAssertion] = []
        for a in auths { assertions.append(try WebAuthnAssertion(abi: a)) }
        return (ids.compactMap { if case .fixedBytes(let b) = $0 { Bytes32(b) } else { nil } }, pre, assertions)
    }
}

/// ZeroDev's passkey validator (`0x7ab16Ff3…9e69`), spec §6.5: an owner validator only.
public enum ZeroDevWebAuthn {
    /// `abi.encode((uint256 x, uint256 y), bytes32 keccak256(authenticatorId))`
    public static func installData(_ key: EthereumCore.P256.PublicKey, authenticatorId: String) -> [UInt8] {
        try! ABI.encode([.tuple([.uint(UInt256(key.x)), .uint(UInt256(key.y))]), .bytes32(Keccak256.hash(utf8: authenticatorId))],
                        as: [try! ABIType(parsing: "(uint256,uint256)"), .bytes32])
    }

    static let signatureTypes: [ABIType] = [.bytes, .string, .uint256, .uint256, .uint256, .bool]

    /// `abi.encode(bytes authenticatorData, string clientDataJSON, uint256 responseTypeLocation, uint256 r, uint256 s, bool usePrecompiled)`
    public static func signature(_ a: WebAuthnAssertion, usePrecompiled: Bool) -> [UInt8] {
        try! ABI.encode([.bytes(a.authenticatorData), .string(a.clientDataJSON), .uint(UInt256(UInt64(a.typeIndex))),
                         .uint(UInt256(a.r)), .uint(UInt256(a.s)), .bool(usePrecompiled)], as: signatureTypes)
    }

    /// Whether the validator accepts `a` for `challenge` under `key` (spec §6.5): the type at
    /// its offset and the challenge at 23, presence and verification of the user, a backup
    /// state only where backup is allowed, low s, the P-256 signature.
    public static func accepts(_ a: WebAuthnAssertion, challenge: Bytes32, key: EthereumCore.P256.PublicKey) -> Bool {
        guard a.challengeIndex == 23, a.authenticatorData.count > 32 else { return false }
        let flags = a.authenticatorData[32]
        guard flags & 0x08 != 0 || flags & 0x10 == 0 else { return false }
        return a.verify(challenge: challenge, publicKey: key, requireUserVerification: true)
    }

    /// The assertion (its challenge always sits at offset 23) and the precompile flag.
    public static func decodeSignature(_ bytes: [UInt8]) throws(SmartSessionError) -> (assertion: WebAuthnAssertion, usePrecompiled: Bool) {
        let v: [ABIValue]
        do { v = try ABI.decode(bytes, as: signatureTypes) } catch { throw SmartSessionError("ZeroDev WebAuthn signature: \(error)") }
        guard case .bytes(let a) = v[0], case .string(let c) = v[1], case .uint(let t) = v[2], case .uint(let r) = v[3],
              case .uint(let s) = v[4], case .bool(let pre) = v[5], let typeIndex = t.int
        else { throw SmartSessionError("ZeroDev WebAuthn signature: unexpected shape (a responseTypeLocation of 2^256-1 marks a dummy signature)") }
        return (WebAuthnAssertion(authenticatorData: a, clientDataJSON: c, challengeIndex: 23, typeIndex: typeIndex, r: r.word, s: s.word), pre)
    }
}
