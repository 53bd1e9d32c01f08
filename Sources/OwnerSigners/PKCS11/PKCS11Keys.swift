internal import CPKCS11
import EthereumCore
import Foundation

/// The two curves an owner key on a token may use.
public enum PKCS11Curve: String, Sendable, CaseIterable {
    case secp256k1
    case p256

    /// CKA_EC_PARAMS: the DER-encoded named-curve OID.
    public var parameters: [UInt8] {
        switch self {
        case .secp256k1: [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A]
        case .p256: [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
        }
    }

    /// OpenSSL's name of the curve.
    var openSSLName: String {
        switch self {
        case .secp256k1: "secp256k1"
        case .p256: "prime256v1"
        }
    }

    /// The curve of CKA_EC_PARAMS: by its OID, or by explicit parameters equal to its own.
    init?(parameters: [UInt8]) {
        if let curve = Self.allCases.first(where: { $0.parameters == parameters }) {
            self = curve
        } else if let name = ECParameters.curveName(parameters), let curve = Self.allCases.first(where: { $0.openSSLName == name }) {
            self = curve
        } else {
            return nil
        }
    }
}

/// Whether a private key can only be used on its token, as the token's flags say: an owner key
/// that can be read out, or that was made elsewhere and imported, is only as safe as every place
/// it has been.
public enum PKCS11KeyCustody: String, Sendable, Equatable, CustomStringConvertible {
    /// Sensitive and not extractable, and always was (made on the token).
    case neverLeft = "never_left"
    /// Sensitive and not extractable now, but it was not always (imported, or marked so later).
    case imported
    /// The token would hand it out: extractable, or not sensitive.
    case exportable

    public var description: String {
        switch self {
        case .neverLeft: "made on the token, never extractable"
        case .imported: "not extractable now, but it existed outside the token (imported)"
        case .exportable: "CAN BE READ OUT of the token (extractable or not sensitive)"
        }
    }

    init(sensitive: Bool, extractable: Bool, alwaysSensitive: Bool, neverExtractable: Bool) {
        self = !sensitive || extractable ? .exportable : alwaysSensitive && neverExtractable ? .neverLeft : .imported
    }
}

/// The EC keys on a token: those an owner can be, and the others with the reason.
public struct PKCS11ECKeys: Sendable, Equatable {
    public var usable: [PKCS11KeyInfo] = []
    public var others: [PKCS11OtherKey] = []
}

/// An EC key no owner can be: on another curve, or with a public point that cannot be read.
/// `token list` shows it, and a URI that matches only it says why, rather than "no key".
public struct PKCS11OtherKey: Sendable, Equatable {
    public var label: String
    public var id: [UInt8]
    public var reason: String

    /// The key by its id and label, and why it cannot be an owner.
    var explained: String {
        "\"\(DisplayText.escaped(label))\" (\(PKCS11URI.idAttribute(id))) \(reason)"
    }
}

/// An EC key pair on a token, as `token list` shows it.
public struct PKCS11KeyInfo: Sendable, Equatable {
    public var label: String
    public var id: [UInt8]
    public var curve: PKCS11Curve
    /// X ‖ Y, 64 bytes.
    public var publicKey: [UInt8]
    /// What the token says of the private half (`ecKeysWithCustody`); nil when it is not visible
    /// (before a login), or was not asked.
    public var custody: PKCS11KeyCustody?
    /// Why the token will not sign a digest with the private half, read with `custody`; nil when
    /// it will, or it was not read.
    public var cannotSign: String?
    /// The public key as 0x04 ‖ X ‖ Y hex.
    public var publicKeyHex: String { "0x04" + Hex.encode(publicKey).dropFirst(2) }
    /// The Ethereum address (secp256k1 keys only).
    public var address: Address? { curve == .secp256k1 ? (try? Secp256k1.PublicKey(publicKey))?.address : nil }

    /// The keys a token shows, for an error about one it does not (a label mistyped in a URI is
    /// the usual cause): `"owner" id=%0A (0x…)`, the first five and how many more, or `no EC key`.
    public static func shown(_ keys: [PKCS11KeyInfo]) -> String {
        listed(keys.map { "\"\(DisplayText.escaped($0.label))\" \($0.distinguished)" }, none: "no EC key")
    }

    /// How an error tells this key from others a URI also matches: its id as a URI writes it,
    /// and its address (or curve).
    var distinguished: String {
        "\(PKCS11URI.idAttribute(id)) (\(address?.checksummed ?? curve.rawValue))"
    }

    /// The URI of this key on the token `token` names (with its module).
    public func uri(on token: PKCS11URI) -> PKCS11URI {
        var uri = token.tokenOnly
        uri.object = label.isEmpty ? nil : label
        uri.id = id.isEmpty ? nil : id
        return uri
    }
}

extension PKCS11Session {
    /// The EC public keys on the token: with their curve and point those on the two curves,
    /// with the reason the others. Public objects need no login.
    public func ecKeys(matching uri: PKCS11URI = PKCS11URI()) throws(PKCS11Error) -> PKCS11ECKeys {
        var keys = PKCS11ECKeys()
        for handle in try find([PKCS11Attribute(.publicKey), .ecKeyType] + Self.selection(uri)) {
            let label = String(decoding: try attribute(.label, of: handle) ?? [], as: UTF8.self), id = try attribute(.id, of: handle) ?? []
            let parameters = try attribute(.ecParams, of: handle) ?? []
            guard let curve = PKCS11Curve(parameters: parameters) else {
                let curve = parameters.isEmpty ? "has no CKA_EC_PARAMS"
                    : ECParameters.curveName(parameters).map { "is on \($0)" } ?? "is on a curve OpenSSL does not know (CKA_EC_PARAMS \(Hex.encode(parameters)))"
                keys.others.append(PKCS11OtherKey(label: label, id: id, reason: curve + "; owners are secp256k1 or P-256 keys"))
                continue
            }
            guard let point = try attribute(.ecPoint, of: handle).flatMap({ Self.publicPoint($0, on: curve) }) else {
                keys.others.append(PKCS11OtherKey(label: label, id: id, reason: "has a CKA_EC_POINT that is no point on \(curve.rawValue)"))
                continue
            }
            keys.usable.append(PKCS11KeyInfo(label: label, id: id, curve: curve, publicKey: point))
        }
        return keys
    }

    /// The EC public keys on the two curves.
    public func ecPublicKeys(matching uri: PKCS11URI = PKCS11URI()) throws(PKCS11Error) -> [PKCS11KeyInfo] {
        try ecKeys(matching: uri).usable
    }

    /// The same as `ecKeys`, with what the token says of each usable key's private half, for
    /// `token list`. Lookups skip it: it is a search and four reads more per key, round trips to
    /// a network HSM.
    public func ecKeysWithCustody(matching uri: PKCS11URI = PKCS11URI()) throws(PKCS11Error) -> PKCS11ECKeys {
        var keys = try ecKeys(matching: uri)
        for i in keys.usable.indices {
            guard let handle = try privateKey(withID: keys.usable[i].id) else { continue }
            keys.usable[i].custody = try custody(of: handle)
            keys.usable[i].cannotSign = try refusalToSign(with: handle)
        }
        return keys
    }

    /// The one EC private key with this id, if it is visible.
    func privateKey(withID id: [UInt8]) throws(PKCS11Error) -> UInt? {
        let found = try find([PKCS11Attribute(.privateKey), .ecKeyType, PKCS11Attribute(.id, id)])
        return found.count == 1 ? found[0] : nil
    }

    /// What a private key's flags say of its custody.
    func custody(of key: UInt) throws(PKCS11Error) -> PKCS11KeyCustody {
        func flag(_ kind: PKCS11Attribute.Kind) throws(PKCS11Error) -> Bool? { try attribute(kind, of: key).map { $0 != [0] } }
        // A module that does not report a flag is not taken at its best.
        return PKCS11KeyCustody(sensitive: try flag(.sensitive) ?? false, extractable: try flag(.extractable) ?? true,
                                alwaysSensitive: try flag(.alwaysSensitive) ?? false, neverExtractable: try flag(.neverExtractable) ?? false)
    }

    /// Why the token will not sign a digest with CKM_ECDSA with a private key, as its flags say;
    /// nil when they allow it (or say nothing). A key an HSM's policy restricts to hashing
    /// mechanisms (CKM_ECDSA_SHA256 …) cannot sign the keccak-256 digests owners sign.
    func refusalToSign(with key: UInt) throws(PKCS11Error) -> String? {
        if try attribute(.sign, of: key) == [0] { return "the token does not let it sign (CKA_SIGN is false)" }
        let width = MemoryLayout<CK_MECHANISM_TYPE>.size
        guard let listed = try attribute(.allowedMechanisms, of: key), !listed.isEmpty, listed.count % width == 0 else { return nil }
        let allowed = stride(from: 0, to: listed.count, by: width).map { offset in
            listed[offset..<offset + width].withUnsafeBytes { $0.loadUnaligned(as: CK_MECHANISM_TYPE.self) }
        }
        guard !allowed.contains(CK_MECHANISM_TYPE(CKM_ECDSA)) else { return nil }
        return "its CKA_ALLOWED_MECHANISMS (\(allowed.map(Self.mechanismName).joined(separator: ", "))) leave out CKM_ECDSA, "
            + "which signs the keccak-256 digest the agent computed; no hashing mechanism computes keccak-256"
    }

    static func mechanismName(_ mechanism: CK_MECHANISM_TYPE) -> String {
        let names: [UInt: String] = [UInt(CKM_ECDSA_SHA1): "CKM_ECDSA_SHA1", UInt(CKM_ECDSA_SHA224): "CKM_ECDSA_SHA224", UInt(CKM_ECDSA_SHA256): "CKM_ECDSA_SHA256",
                                     UInt(CKM_ECDSA_SHA384): "CKM_ECDSA_SHA384", UInt(CKM_ECDSA_SHA512): "CKM_ECDSA_SHA512", UInt(CKM_ECDH1_DERIVE): "CKM_ECDH1_DERIVE"]
        return names[UInt(mechanism)] ?? String(format: "0x%lX", UInt(mechanism))
    }

    /// The label and id attributes a URI selects by.
    static func selection(_ uri: PKCS11URI) -> [PKCS11Attribute] {
        (uri.object.map { [PKCS11Attribute(.label, Array($0.utf8))] } ?? []) + (uri.id.map { [PKCS11Attribute(.id, $0)] } ?? [])
    }

    /// Whether an EC private key matches `uri` (visible when logged in, or when the token does
    /// not hide it).
    func holdsPrivateECKey(matching uri: PKCS11URI) throws(PKCS11Error) -> Bool {
        !(try find([PKCS11Attribute(.privateKey), .ecKeyType] + Self.selection(uri))).isEmpty
    }

    /// X ‖ Y of a CKA_EC_POINT: a DER OCTET STRING around 04 ‖ X ‖ Y, or around the compressed
    /// 02/03 ‖ X some modules keep (and some leave the wrapper off). Nil for a point off the curve.
    package static func publicPoint(_ value: [UInt8], on curve: PKCS11Curve) -> [UInt8]? {
        let wrapped = (value.count == 67 || value.count == 35) && value[0] == 0x04 && Int(value[1]) == value.count - 2
        let point = wrapped ? Array(value[2...]) : value
        guard point.count == 65 || point.count == 33 else { return nil }
        switch curve {
        case .secp256k1: return (try? Secp256k1.PublicKey(point))?.uncompressed
        case .p256: return (try? P256.PublicKey(point)).map { $0.x.bytes + $0.y.bytes }
        }
    }
}
