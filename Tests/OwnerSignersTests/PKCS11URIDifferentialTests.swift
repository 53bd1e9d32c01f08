import CPKCS11
import Foundation
import OwnerSigners
import Testing
import TestSupport

/// Our URIs against p11-kit's own RFC 7512 implementation (`p11_kit_uri_parse` and
/// `p11_kit_uri_format`), on random selections and on random damage to them: what we write,
/// p11-kit reads as the same selection; what p11-kit writes, we read back; and text we accept,
/// p11-kit accepts and reads alike. A failure names the seed (`ORACLE_SEED` replays it).
@Suite("PKCS#11 URIs against p11-kit's parser")
struct PKCS11URIDifferentialTests {
    /// Characters a label may hold: unreserved, reserved in URIs, percent, spaces, non-ASCII.
    static let alphabet = Array("aZ09-._~ /;?&=%#+,:@!$'()*[]\"<>\\^`{|}\té日€")

    static func text(_ random: inout SplitMix64, bytes limit: Int, trailingSpace: Bool = false) -> String {
        var s = ""
        for _ in 0..<Int.random(in: 0...limit, using: &random) {
            let c = alphabet.randomElement(using: &random)!
            guard s.utf8.count + String(c).utf8.count <= limit else { break }
            s.append(c)
        }
        // p11-kit pads a token's fields with spaces, so a trailing space is not told apart there.
        while !trailingSpace && s.hasSuffix(" ") { s.removeLast() }
        return s
    }

    static func selection(_ random: inout SplitMix64) -> PKCS11URI {
        func maybe<T>(_ make: (inout SplitMix64) -> T) -> T? { Bool.random(using: &random) ? make(&random) : nil }
        var uri = PKCS11URI()
        uri.token = maybe { text(&$0, bytes: 32) }
        uri.manufacturer = maybe { text(&$0, bytes: 32) }
        uri.serial = maybe { text(&$0, bytes: 16) }
        uri.model = maybe { text(&$0, bytes: 16) }
        uri.slotDescription = maybe { text(&$0, bytes: 64) }
        uri.slotManufacturer = maybe { text(&$0, bytes: 32) }
        uri.slotID = maybe { UInt.random(in: 0...UInt(UInt32.max), using: &$0) }
        uri.libraryManufacturer = maybe { text(&$0, bytes: 32) }
        uri.libraryDescription = maybe { text(&$0, bytes: 32) }
        uri.libraryVersion = maybe { PKCS11Version(major: .random(in: 0...254, using: &$0), minor: .random(in: 0...254, using: &$0)) }
        uri.object = maybe { text(&$0, bytes: 40, trailingSpace: true) }
        uri.id = maybe { r in (0..<Int.random(in: 0...20, using: &r)).map { _ in UInt8.random(in: 0...255, using: &r) } }
        uri.type = maybe { ["private", "public", "cert", "secret-key", "data"].randomElement(using: &$0)! }
        uri.modulePath = maybe { "/" + text(&$0, bytes: 60, trailingSpace: true) }
        uri.moduleName = maybe { text(&$0, bytes: 20, trailingSpace: true) }
        uri.pinSource = maybe { "file:/" + text(&$0, bytes: 30, trailingSpace: true) }
        return uri
    }

    /// What p11-kit read from `text`, as our type holds it; nil when p11-kit refuses the text.
    static func p11kit(_ text: String) -> (uri: PKCS11URI, unrecognized: Bool)? {
        guard let parsed = p11_kit_uri_new() else { return nil }
        defer { p11_kit_uri_free(parsed) }
        guard p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, parsed) == P11_KIT_URI_OK.rawValue else { return nil }
        return (read(parsed), p11_kit_uri_any_unrecognized(parsed) != 0)
    }

    /// p11-kit's own text for what it read from `text`.
    static func p11kitFormat(_ text: String) -> String? {
        guard let parsed = p11_kit_uri_new() else { return nil }
        defer { p11_kit_uri_free(parsed) }
        guard p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, parsed) == P11_KIT_URI_OK.rawValue else { return nil }
        var out: UnsafeMutablePointer<CChar>?
        guard p11_kit_uri_format(parsed, P11_KIT_URI_FOR_ANY, &out) == P11_KIT_URI_OK.rawValue, let out else { return nil }
        defer { free(out) }
        return String(cString: out)
    }

    static func read(_ parsed: OpaquePointer) -> PKCS11URI {
        /// A fixed-size, space-padded field; all zero bytes when the URI does not give it.
        func field<T>(_ value: T) -> String? {
            withUnsafeBytes(of: value) { raw in
                guard raw.contains(where: { $0 != 0 }) else { return nil }
                var bytes = Array(raw)
                while bytes.last == UInt8(ascii: " ") { bytes.removeLast() }
                return String(decoding: bytes, as: UTF8.self)
            }
        }
        func attribute(_ type: Int32) -> [UInt8]? {
            guard let a = p11_kit_uri_get_attribute(parsed, CK_ATTRIBUTE_TYPE(type)) else { return nil }
            return Array(UnsafeRawBufferPointer(start: a.pointee.pValue, count: Int(a.pointee.ulValueLen)))
        }
        func string(_ c: UnsafePointer<CChar>?) -> String? { c.map { String(cString: $0) } }
        var uri = PKCS11URI()
        let token = p11_kit_uri_get_token_info(parsed)!.pointee
        uri.token = field(token.label)
        uri.manufacturer = field(token.manufacturerID)
        uri.serial = field(token.serialNumber)
        uri.model = field(token.model)
        let slotInfo = p11_kit_uri_get_slot_info(parsed)!.pointee
        uri.slotDescription = field(slotInfo.slotDescription)
        uri.slotManufacturer = field(slotInfo.manufacturerID)
        let library = p11_kit_uri_get_module_info(parsed)!.pointee
        uri.libraryManufacturer = field(library.manufacturerID)
        uri.libraryDescription = field(library.libraryDescription)
        // p11-kit's "not given" is 255.255.
        uri.libraryVersion = library.libraryVersion.major == 255 && library.libraryVersion.minor == 255
            ? nil : PKCS11Version(major: library.libraryVersion.major, minor: library.libraryVersion.minor)
        let slot = p11_kit_uri_get_slot_id(parsed)
        uri.slotID = slot == CK_SLOT_ID.max ? nil : UInt(slot)
        uri.object = attribute(Int32(CKA_LABEL)).map { String(decoding: $0, as: UTF8.self) }
        uri.id = attribute(Int32(CKA_ID))
        uri.type = attribute(Int32(CKA_CLASS)).map { bytes in
            let names: [CK_OBJECT_CLASS: String] = [CK_OBJECT_CLASS(CKO_PRIVATE_KEY): "private", CK_OBJECT_CLASS(CKO_PUBLIC_KEY): "public",
                                                    CK_OBJECT_CLASS(CKO_CERTIFICATE): "cert", CK_OBJECT_CLASS(CKO_SECRET_KEY): "secret-key", CK_OBJECT_CLASS(CKO_DATA): "data"]
            return names[bytes.withUnsafeBytes { $0.loadUnaligned(as: CK_OBJECT_CLASS.self) }] ?? "class \(bytes)"
        }
        uri.modulePath = string(p11_kit_uri_get_module_path(parsed))
        uri.moduleName = string(p11_kit_uri_get_module_name(parsed))
        uri.pinSource = string(p11_kit_uri_get_pin_source(parsed))
        return uri
    }

    /// The fields p11-kit keeps space-padded, without trailing spaces, as p11-kit compares them.
    static func padded(_ uri: PKCS11URI) -> PKCS11URI {
        func trim(_ s: String?) -> String? { s.map { String($0.reversed().drop { $0 == " " }.reversed()) } }
        var u = uri
        (u.token, u.manufacturer, u.serial, u.model, u.slotDescription) = (trim(u.token), trim(u.manufacturer), trim(u.serial), trim(u.model), trim(u.slotDescription))
        (u.slotManufacturer, u.libraryManufacturer, u.libraryDescription) = (trim(u.slotManufacturer), trim(u.libraryManufacturer), trim(u.libraryDescription))
        return u
    }

    @Test func whatWeWriteP11KitReadsAlikeAndBack() {
        var random = SplitMix64(seed: Oracle.seed)
        for _ in 0..<2000 {
            let uri = Self.selection(&random)
            guard let read = Self.p11kit(uri.description) else { Issue.record("p11-kit refuses \(uri.description) (seed \(Oracle.seed))"); return }
            #expect(read.uri == uri, "\(uri.description) (seed \(Oracle.seed))")
            guard let again = Self.p11kitFormat(uri.description) else { Issue.record("p11-kit cannot write \(uri.description)"); return }
            #expect((try? PKCS11URI(again)) == uri, "p11-kit wrote \(again) for \(uri.description) (seed \(Oracle.seed))")
        }
    }

    /// Damage of the kinds people and tools make: a stray or cut percent sign, signs and spaces
    /// where digits go, doubled separators, a character dropped. Text we accept must be text
    /// p11-kit accepts and reads as the same selection (unless p11-kit finds in it what matches
    /// nothing, a value longer than the token's field); what we refuse and p11-kit takes is only
    /// what we refuse on purpose.
    /// What we refuse although p11-kit reads it: raw spaces (p11-kit drops them), an empty
    /// attribute (p11-kit ignores all that follows it), NUL bytes and empty slot-ids (p11-kit
    /// reads them as no value and as slot 0), query attributes we do not know (a typo of
    /// module-path would go unnoticed).
    static let onPurpose = ["space or line break", "empty attribute", "NUL byte", "slot-id", "unknown attribute"]

    @Test func damagedTextIsReadAsP11KitReadsIt() {
        var random = SplitMix64(seed: Oracle.seed ^ 0x5eed)
        let inserts = Array("%+- 0aF9G;=&?/.\t\né")
        for _ in 0..<4000 {
            var text = Array(Self.selection(&random).description)
            for _ in 0..<Int.random(in: 1...3, using: &random) where text.count > 7 {
                let at = Int.random(in: 7..<text.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: text.insert(inserts.randomElement(using: &random)!, at: at)
                case 1: text.remove(at: at)
                default: text[at] = inserts.randomElement(using: &random)!
                }
            }
            let damaged = String(text)
            let theirs = Self.p11kit(damaged)
            do {
                let ours = try PKCS11URI(damaged)
                guard let theirs else { Issue.record("we accept \(damaged), p11-kit refuses it (seed \(Oracle.seed))"); continue }
                if !theirs.unrecognized { #expect(Self.padded(theirs.uri) == Self.padded(ours), "\(damaged) (seed \(Oracle.seed))") }
            } catch {
                if let theirs, !theirs.unrecognized, !Self.onPurpose.contains(where: error.description.contains) {
                    Issue.record("p11-kit accepts \(damaged) as \(theirs.uri.description), we refuse it: \(error) (seed \(Oracle.seed))")
                }
            }
        }
    }
}
