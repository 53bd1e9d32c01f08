import EthereumCore
import Foundation

/// An RFC 7512 PKCS#11 URI, as p11-kit, OpenSSL and OpenSSH write them:
/// `pkcs11:token=signer;object=owner;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so`.
/// Every attribute given must match; absent ones match anything.
public struct PKCS11URI: Sendable, Equatable, CustomStringConvertible {
    // Path attributes (what to select).
    public var token: String?
    public var manufacturer: String?
    public var serial: String?
    public var model: String?
    public var slotDescription: String?
    public var slotID: UInt?
    public var object: String?
    public var id: [UInt8]?
    public var type: String?
    // Query attributes (how to get there).
    public var modulePath: String?
    public var moduleName: String?
    /// `file:/path` or a bare path: where the PIN is read from (RFC 7512 `pin-source`).
    public var pinSource: String?

    /// A URI selecting by label (`object`) and id, or with neither, everything.
    public init(object: String? = nil, id: [UInt8]? = nil) {
        self.object = object
        self.id = id
    }

    /// `id=…` as a URI writes it, naming a key in a message.
    static func idAttribute(_ id: [UInt8]) -> Substring { PKCS11URI(id: id).description.dropFirst("pkcs11:".count) }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notPKCS11(String)
        case badAttribute(String)

        public var description: String {
            switch self {
            case .notPKCS11(let s): "\(s) is not a PKCS#11 URI (they start with pkcs11:)"
            case .badAttribute(let s): "PKCS#11 URI: \(s)"
            }
        }
    }

    private static let pathKeys = ["token", "manufacturer", "serial", "model", "slot-description", "slot-id", "object", "id", "type",
                                   "slot-manufacturer", "library-manufacturer", "library-description", "library-version"]

    public init(_ text: String) throws(ParseError) {
        guard text.hasPrefix("pkcs11:") else { throw .notPKCS11(text) }
        let body = text.dropFirst("pkcs11:".count)
        let parts = body.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        for (attribute, isQuery) in parts[0].split(separator: ";").map({ ($0, false) }) + (parts.count > 1 ? parts[1].split(separator: "&").map { ($0, true) } : []) {
            let pair = attribute.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { throw .badAttribute("\"\(attribute)\" has no value") }
            let key = String(pair[0])
            guard let bytes = Self.percentDecode(pair[1]) else { throw .badAttribute("\(key): bad percent-encoding") }
            let value = String(decoding: bytes, as: UTF8.self)
            switch (key, isQuery) {
            case ("token", false): token = value
            case ("manufacturer", false): manufacturer = value
            case ("serial", false): serial = value
            case ("model", false): model = value
            case ("slot-description", false): slotDescription = value
            case ("slot-id", false):
                guard let n = UInt(value) else { throw .badAttribute("slot-id: a decimal number") }
                slotID = n
            case ("object", false): object = value
            case ("id", false): id = bytes
            case ("type", false):
                guard ["private", "public", "cert", "secret-key", "data"].contains(value) else { throw .badAttribute("type: private, public, cert, secret-key or data") }
                type = value
            case ("module-path", true): modulePath = value
            case ("module-name", true): moduleName = value
            case ("pin-source", true): pinSource = value
            case ("pin-value", true):
                throw .badAttribute("pin-value puts the PIN where logs and shell history see it; use pin-source=file:… or the approval prompt")
            case (let k, false) where Self.pathKeys.contains(k) || k.hasPrefix("x-"): continue
            case (let k, true) where k.hasPrefix("x-"): continue
            default: throw .badAttribute("unknown attribute \(key)")
            }
        }
    }

    /// The URI text, attributes in RFC order, values percent-encoded where needed.
    public var description: String {
        var path: [String] = []
        func add(_ key: String, _ value: String?) { if let value { path.append("\(key)=\(Self.percentEncode(Array(value.utf8)))") } }
        add("token", token)
        add("manufacturer", manufacturer)
        add("serial", serial)
        add("model", model)
        add("slot-description", slotDescription)
        add("slot-id", slotID.map(String.init))
        add("object", object)
        if let id { path.append("id=" + Self.percentEncode(id, everything: true)) }
        add("type", type)
        var query: [String] = []
        if let modulePath { query.append("module-path=\(Self.percentEncode(Array(modulePath.utf8), keepSlash: true))") }
        if let moduleName { query.append("module-name=\(Self.percentEncode(Array(moduleName.utf8)))") }
        if let pinSource { query.append("pin-source=\(Self.percentEncode(Array(pinSource.utf8), keepSlash: true))") }
        return "pkcs11:" + path.joined(separator: ";") + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }

    /// This URI without the object part: the token it names.
    public var tokenOnly: PKCS11URI {
        var uri = self
        uri.object = nil
        uri.id = nil
        uri.type = nil
        return uri
    }

    /// Whether the URI says which token, by any of its attributes.
    public var namesToken: Bool { token != nil || serial != nil || manufacturer != nil || model != nil || slotDescription != nil || slotID != nil }

    /// This URI naming `found` by its label and serial.
    public func naming(_ found: PKCS11TokenInfo) -> PKCS11URI {
        var uri = self
        uri.token = found.label
        uri.serial = found.serial.isEmpty ? nil : found.serial
        return uri
    }

    /// Whether a token matches every token attribute given.
    public func matches(_ info: PKCS11TokenInfo) -> Bool {
        (token ?? info.label) == info.label && (manufacturer ?? info.manufacturer) == info.manufacturer && (serial ?? info.serial) == info.serial
            && (model ?? info.model) == info.model && (slotDescription ?? info.slotDescription) == info.slotDescription && (slotID ?? info.slot) == info.slot
    }

    /// Whether a registered module is the one the query names (either of path and name may be given).
    public func matches(_ module: PKCS11Module.Registration) -> Bool {
        let file = PKCS11Module.file(module.path)
        return (moduleName ?? module.name) == module.name && (modulePath.map(PKCS11Module.file) ?? file) == file
    }

    private static let unreserved = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8))

    private static func percentEncode(_ bytes: [UInt8], keepSlash: Bool = false, everything: Bool = false) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 3)
        for b in bytes {
            if !everything && (unreserved.contains(b) || (keepSlash && b == UInt8(ascii: "/"))) {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func percentDecode(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let b = bytes.popFirst() {
            guard b == UInt8(ascii: "%") else { out.append(b); continue }
            guard bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) else { return nil }
            out.append(v)
            bytes = bytes.dropFirst(2)
        }
        return out
    }
}

extension PKCS11URI {
    /// The object part, for messages and caches: `"owner" id 0a`.
    var objectName: String {
        (object.map { "\"\($0)\"" } ?? "") + (id.map { " id " + Hex.encode($0).dropFirst(2) } ?? "")
    }

    /// The same URI loading its module from `path`.
    public func with(modulePath path: String) -> PKCS11URI {
        var uri = self
        uri.modulePath = path
        uri.moduleName = nil
        uri.pinSource = nil
        return uri
    }
}
