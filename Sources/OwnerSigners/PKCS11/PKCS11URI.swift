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
    public var slotManufacturer: String?
    public var slotID: UInt?
    public var libraryManufacturer: String?
    public var libraryDescription: String?
    public var libraryVersion: PKCS11Version?
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

    /// Reads what p11-kit reads (a randomized test holds the two together), except where p11-kit
    /// would select something other than the text seems to say, and what this agent cannot
    /// honour: those are refused, not read another way or ignored. So are a raw space or line
    /// break (p11-kit drops it), an empty attribute (p11-kit stops reading there), a NUL byte and
    /// an empty slot-id.
    public init(_ text: String) throws(ParseError) {
        guard text.prefix(7).lowercased() == "pkcs11:" else { throw .notPKCS11(text) }
        guard !text.utf8.contains(where: { [0x20, 0x0A, 0x0D, 0x0B].contains($0) }) else {
            throw .badAttribute("a space or line break is written %20 or %0A; p11-kit would drop it and read another URI")
        }
        let body = text.dropFirst(7)
        let parts = body.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = try Self.attributes(parts[0], separator: ";"), query = parts.count > 1 ? try Self.attributes(parts[1], separator: "&") : []
        for (attribute, isQuery) in path.map({ ($0, false) }) + query.map({ ($0, true) }) {
            let pair = attribute.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { throw .badAttribute("\"\(attribute)\" has no value") }
            let key = String(pair[0])
            guard let bytes = Self.percentDecode(pair[1]) else { throw .badAttribute("\(key): bad percent-encoding (a % and two hex digits)") }
            if key != "id" && bytes.contains(0) { throw .badAttribute("\(key): a NUL byte") }
            let value = String(decoding: bytes, as: UTF8.self)
            switch (key, isQuery) {
            case ("token", false): token = value
            case ("manufacturer", false): manufacturer = value
            case ("serial", false): serial = value
            case ("model", false): model = value
            case ("slot-description", false): slotDescription = value
            case ("slot-manufacturer", false): slotManufacturer = value
            case ("library-manufacturer", false): libraryManufacturer = value
            case ("library-description", false): libraryDescription = value
            case ("library-version", false):
                // Digits and a dot, not percent-encoded, as p11-kit reads them.
                guard let version = PKCS11Version(pair[1]) else { throw .badAttribute("library-version: a version such as 2 or 2.6 (each number at most 254)") }
                libraryVersion = version
            case ("slot-id", false):
                // RFC 7512: 1*DIGIT, not percent-encoded.
                guard !pair[1].isEmpty, pair[1].utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = UInt(pair[1]) else { throw .badAttribute("slot-id: a decimal number") }
                slotID = n
            case ("object", false): object = value
            case ("id", false): id = bytes
            case ("type", false):
                // "secretkey": the spelling of the drafts before RFC 7512, which p11-kit still reads.
                guard ["private", "public", "cert", "secret-key", "secretkey", "data"].contains(value) else { throw .badAttribute("type: private, public, cert, secret-key or data") }
                type = value == "secretkey" ? "secret-key" : value
            case ("module-path", true): modulePath = value
            case ("module-name", true): moduleName = value
            case ("pin-source", true): pinSource = value
            case ("pin-value", true):
                throw .badAttribute("pin-value puts the PIN where logs and shell history see it; use pin-source=file:… or the approval prompt")
            case (let k, false) where k.hasPrefix("x-"):
                throw .badAttribute("\(k): a vendor's attribute, which this agent cannot honour; leave it out")
            // A vendor's query attribute says how to reach the token, not which: it selects nothing.
            case (let k, true) where k.hasPrefix("x-"): continue
            default: throw .badAttribute("unknown attribute \(key)")
            }
        }
    }

    /// The attributes between separators. Trailing separators are dropped, as p11-kit drops
    /// them; an empty attribute before another is an error (p11-kit would read nothing after it).
    private static func attributes(_ text: Substring, separator: Character) throws(ParseError) -> [Substring] {
        var pieces = text.split(separator: separator, omittingEmptySubsequences: false)
        while pieces.last?.isEmpty == true { pieces.removeLast() }
        guard !pieces.contains(where: \.isEmpty) else { throw .badAttribute("an empty attribute (\(separator)\(separator))") }
        return pieces
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
        add("slot-manufacturer", slotManufacturer)
        add("slot-id", slotID.map(String.init))
        add("library-manufacturer", libraryManufacturer)
        add("library-description", libraryDescription)
        add("library-version", libraryVersion?.description)
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

    /// Whether a token matches every token, slot and library attribute given.
    public func matches(_ info: PKCS11TokenInfo) -> Bool {
        (token ?? info.label) == info.label && (manufacturer ?? info.manufacturer) == info.manufacturer && (serial ?? info.serial) == info.serial
            && (model ?? info.model) == info.model && (slotDescription ?? info.slotDescription) == info.slotDescription
            && (slotManufacturer ?? info.slotManufacturer) == info.slotManufacturer && (slotID ?? info.slot) == info.slot && matches(info.library)
    }

    /// Whether a module matches every library attribute given.
    public func matches(_ library: PKCS11LibraryInfo) -> Bool {
        (libraryManufacturer ?? library.manufacturer) == library.manufacturer && (libraryDescription ?? library.description) == library.description
            && (libraryVersion ?? library.version) == library.version
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
        func hexDigit(_ c: UInt8?) -> UInt8? { c.flatMap(Hex.nibble) }
        var out: [UInt8] = []
        var bytes = text.utf8.makeIterator()
        while let b = bytes.next() {
            guard b == UInt8(ascii: "%") else { out.append(b); continue }
            guard let high = hexDigit(bytes.next()), let low = hexDigit(bytes.next()) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }
}

extension PKCS11URI {
    /// The object part, for messages and caches: `"owner" id 0a`.
    var objectName: String {
        (object.map { "\"\($0)\"" } ?? "") + (id.map { " id " + Hex.encode($0).dropFirst(2) } ?? "")
    }

    /// The file `pin-source` names (`file:/path`, or a bare path).
    public var pinFile: String? { pinSource.map { $0.hasPrefix("file:") ? String($0.dropFirst(5)) : $0 } }

    /// Whether a PIN source given beside this URI (a `pin_file`, `pin_env` or `pinFile`) leaves
    /// it in doubt where the PIN comes from: the URI's `pin-source` names another file. Which of
    /// the two the operator meant is not for the agent to guess.
    public func pinSourceDiffers(from file: String?) -> Bool {
        guard let own = pinFile else { return false }
        return file != own
    }

    /// This URI with a relative `module-path` or `pin-source` taken as relative to `directory`
    /// (the configuration file's, or the working directory of the command it was typed to):
    /// the agent that loads the module or reads the PIN later runs elsewhere.
    public func resolvingPaths(against directory: String) -> PKCS11URI {
        func resolved(_ path: String) -> String { path.hasPrefix("/") ? path : directory + "/" + path }
        var uri = self
        uri.modulePath = modulePath.map(resolved)
        uri.pinSource = pinFile.map { "file:" + resolved($0) }
        return uri
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
