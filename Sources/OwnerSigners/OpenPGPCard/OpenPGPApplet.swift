import EthereumCore
import Foundation

/// Why an OpenPGP card could not be read or could not sign.
public enum OpenPGPCardFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// pcscd is not running, the card is not in a reader, or it left mid-operation.
    case unavailable(String)
    case pinNeeded(String)
    /// The PIN was wrong (with the tries left), or is blocked.
    case wrongPIN(String)
    case failed(String)

    public var description: String {
        switch self {
        case .unavailable(let s), .pinNeeded(let s), .wrongPIN(let s), .failed(let s): s
        }
    }

    public var ownerError: OwnerSignerError {
        switch self {
        case .unavailable(let s): .unavailable(s)
        case .pinNeeded(let s): .secretNeeded(s)
        case .wrongPIN(let s): .wrongSecret(s)
        case .failed(let s): .failed(s)
        }
    }

    /// A card pulled out, pcscd stopped or another program holding the card can be mended.
    static func from(_ error: PCSCError) -> OpenPGPCardFailure {
        error.cardGone || error.noService || error.heldElsewhere ? .unavailable("\(error)") : .failed("\(error)")
    }
}

/// What a card's application related data (GET DATA 6E) says: which card it is, its signature
/// key's algorithm and the state of its PINs. Enough to find a card, one APDU after SELECT.
struct OpenPGPApplicationData: Sendable {
    let aid: [UInt8]
    let signingAlgorithm: String
    /// The PW status bytes (C4): whether a verified PIN signs more than once, the PINs' lengths,
    /// then the retry counters of the PIN, the reset code and the Admin PIN.
    let pinStatus: [UInt8]

    var serial: String { Self.serial(of: aid) }

    /// The card's serial number in its AID, 8 hex digits, as `gpg --card-status` shows it.
    static func serial(of aid: [UInt8]) -> String { Hex.encode(aid[10..<14], prefix: false).uppercased() }

    /// Whether the PIN stays verified after a signature (the card's "PW1 valid for several
    /// PSO:CDS"; most cards verify it for one).
    var pinValidForSeveralSignatures: Bool { pinStatus[0] == 1 }
}

/// What an OpenPGP card says of itself and of its signature key, read without a PIN.
public struct OpenPGPCardInfo: Sendable, Equatable {
    public let reader: String
    /// The application identifier: D2 76 00 01 24 01, version, manufacturer, serial, 00 00.
    public let aid: [UInt8]
    /// The signature key's algorithm, in words ("secp256k1", "P-256", "RSA 2048").
    public let signingAlgorithm: String
    /// The signature key's public point, uncompressed; nil when the card has no such key.
    public let signingKey: [UInt8]?
    /// PW1's retry counter: wrong PINs the card still accepts before it blocks.
    public let pinTriesLeft: Int
    /// PW3's (the Admin PIN's).
    public let adminPINTriesLeft: Int

    /// The card's serial number, 8 hex digits, as `gpg --card-status` shows it.
    public var serial: String { OpenPGPApplicationData.serial(of: aid) }
    public var manufacturer: String { Hex.encode(aid[8..<10], prefix: false) }

    /// The owner address of a secp256k1 signature key.
    public var address: Address? {
        guard signingAlgorithm == OpenPGPCurve.secp256k1.name, let key = signingKey else { return nil }
        return (try? Secp256k1.PublicKey(key))?.address
    }

    init(reader: String, _ data: OpenPGPApplicationData, signingKey: [UInt8]?) {
        self.reader = reader
        aid = data.aid
        signingAlgorithm = data.signingAlgorithm
        self.signingKey = signingKey
        pinTriesLeft = Int(data.pinStatus[4])
        adminPINTriesLeft = Int(data.pinStatus[6])
    }

    public var pinPrompt: String {
        "PIN of OpenPGP card \(serial) (\(pinTriesLeft == 1 ? "last try: a wrong PIN blocks the card" : "\(pinTriesLeft) tries left"))"
    }
}

/// The curves of ECDSA signature keys an owner may have, by their OIDs in the card's
/// algorithm attributes.
public enum OpenPGPCurve: String, Sendable, CaseIterable {
    case secp256k1, p256

    var oid: [UInt8] {
        switch self {
        case .secp256k1: [0x2B, 0x81, 0x04, 0x00, 0x0A]
        case .p256: [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
        }
    }

    var name: String { self == .secp256k1 ? "secp256k1" : "P-256" }
}

/// The OpenPGP card application (OpenPGP Smart Card Application 3.4) on one card: the APDUs an
/// owner key needs, and nothing else.
package struct OpenPGPApplet {
    let card: PCSCCard

    /// A response's data and status word.
    struct Response {
        var data: [UInt8]
        var status: UInt16
        var ok: Bool { status == 0x9000 }
    }

    static let aidPrefix: [UInt8] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01]

    /// Selects the application; nil when the card has none.
    package static func select(on card: PCSCCard) throws(OpenPGPCardFailure) -> OpenPGPApplet? {
        let applet = OpenPGPApplet(card: card)
        let response = try applet.send([0x00, 0xA4, 0x04, 0x00, UInt8(aidPrefix.count)] + aidPrefix + [0x00])
        return response.ok ? applet : nil
    }

    /// Reads the application related data.
    func applicationData() throws(OpenPGPCardFailure) -> OpenPGPApplicationData {
        let data = try getData(0x6E)
        guard let aid = BERTLV.find(0x4F, in: data), aid.count == 16,
              let attributes = BERTLV.find(0xC1, in: data), let status = BERTLV.find(0xC4, in: data), status.count >= 7 else {
            throw .failed("the card's OpenPGP application data lacks its AID, algorithm attributes or PIN status")
        }
        return OpenPGPApplicationData(aid: aid, signingAlgorithm: Self.algorithm(attributes), pinStatus: status)
    }

    /// `data`, with the signature key read.
    func info(_ data: OpenPGPApplicationData) throws(OpenPGPCardFailure) -> OpenPGPCardInfo {
        OpenPGPCardInfo(reader: card.reader, data, signingKey: try signingKey())
    }

    /// Reads the application related data and the signature key.
    func info() throws(OpenPGPCardFailure) -> OpenPGPCardInfo { try info(try applicationData()) }

    /// The signature key's public point (GENERATE ASYMMETRIC KEY PAIR, read mode).
    func signingKey() throws(OpenPGPCardFailure) -> [UInt8]? {
        let response = try send([0x00, 0x47, 0x81, 0x00, 0x02, 0xB6, 0x00, 0x00])
        // 6A88: no key there. Some cards answer an empty template instead.
        guard response.ok else {
            if response.status == 0x6A88 { return nil }
            throw .failed("reading the signature key failed (status \(Self.hex(response.status)))")
        }
        guard let point = BERTLV.find(0x86, in: response.data), !point.isEmpty else { return nil }
        return point
    }

    /// VERIFY PW1 for a signature (reference 81). A PIN the card refuses is never tried again
    /// here: the caller is told how many tries are left.
    package func verifySigningPIN(_ pin: SecretBytes) throws(OpenPGPCardFailure) {
        try verify(reference: 0x81, pin, what: "PIN")
    }

    /// VERIFY PW3, the Admin PIN, for key generation.
    func verifyAdminPIN(_ pin: SecretBytes) throws(OpenPGPCardFailure) {
        try verify(reference: 0x83, pin, what: "Admin PIN")
    }

    private func verify(reference: UInt8, _ pin: SecretBytes, what: String) throws(OpenPGPCardFailure) {
        guard (1...127).contains(pin.count) else { throw .wrongPIN("the \(what) must be 1 to 127 bytes; not sent to the card") }
        // A card that derives its PINs (KDF-DO, gpg's kdf-setup) takes only the derived value: the
        // PIN as typed would be wrong, and spend a try.
        if try derivesPINs() {
            throw .failed("the card takes its PINs derived by a KDF (gpg's kdf-setup), which the agent does not do yet; the \(what) was not sent, "
                          + "so no try was spent (gpg --card-edit, admin, kdf-setup turns it off)")
        }
        // The APDU holding the PIN is zeroed when dropped.
        let command = SecretBytes(count: 5 + pin.count) { buffer in
            buffer.copyBytes(from: [0x00, 0x20, 0x00, reference, UInt8(pin.count)])
            pin.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[5...]).copyMemory(from: $0) }
        }
        card.resetWhenDone = true
        let response = try command.withUnsafeBytes { bytes throws(OpenPGPCardFailure) in try send(bytes) }
        switch response.status {
        case 0x9000:
            return
        case 0x6983:
            throw .wrongPIN("the card's \(what) is blocked; unblock it with the Admin PIN or reset code (gpg --card-edit, passwd)")
        case 0x6982, 0x63C0...0x63CF:
            let left = try triesLeft(reference: reference)
            throw .wrongPIN("wrong \(what): \(left == 0 ? "the card has blocked it" : "\(left) tr\(left == 1 ? "y" : "ies") left")")
        case 0x6700:
            throw .wrongPIN("the card refused the \(what)'s length")
        default:
            throw .failed("VERIFY \(what) failed (status \(Self.hex(response.status)))")
        }
    }

    /// Whether the card's KDF data object (F9, OpenPGP card 3.3) names an algorithm. A card
    /// without the object answers with an error status, which is no.
    private func derivesPINs() throws(OpenPGPCardFailure) -> Bool {
        let response = try send([0x00, 0xCA, 0x00, 0xF9, 0x00])
        guard response.ok, let algorithm = BERTLV.find(0x81, in: response.data) else { return false }
        return algorithm != [0x00]
    }

    /// PW1's retry counter, read alone.
    func signingPINTriesLeft() throws(OpenPGPCardFailure) -> Int { try triesLeft(reference: 0x81) }

    /// The retry counter of PW1 (81) or PW3 (83), from the PW status bytes.
    private func triesLeft(reference: UInt8) throws(OpenPGPCardFailure) -> Int {
        let status = try getData(0xC4)
        guard status.count >= 7 else { throw .failed("the card's PIN status is malformed") }
        return Int(reference == 0x83 ? status[6] : status[4])
    }

    /// PSO: COMPUTE DIGITAL SIGNATURE over a 32-byte digest, with the PIN verified just before.
    /// Unless the PIN stays verified after it (`pinStaysValid`), a card that signed needs no reset.
    package func sign(_ digest: Bytes32, pinStaysValid: Bool) throws(OpenPGPCardFailure) -> [UInt8] {
        let response = try send([0x00, 0x2A, 0x9E, 0x9A, 0x20] + digest.bytes + [0x00])
        switch response.status {
        case 0x9000:
            card.resetWhenDone = pinStaysValid
            return response.data
        case 0x6982: throw .pinNeeded("the card wants its PIN again before it signs")
        case 0x6A88: throw .failed("the card has no signature key")
        default: throw .failed("the card refused to sign (status \(Self.hex(response.status)))")
        }
    }

    /// Makes a new ECDSA signature key on `curve` (after `verifyAdminPIN`), replacing the one
    /// there; returns its public point.
    func generateSigningKey(_ curve: OpenPGPCurve) throws(OpenPGPCardFailure) -> [UInt8] {
        let attributes: [UInt8] = [0x13] + curve.oid
        let set = try send([0x00, 0xDA, 0x00, 0xC1, UInt8(attributes.count)] + attributes)
        guard set.ok else { throw .failed("the card does not take \(curve.name) signature keys (status \(Self.hex(set.status)))") }
        let made = try send([0x00, 0x47, 0x80, 0x00, 0x02, 0xB6, 0x00, 0x00])
        guard made.ok, let point = BERTLV.find(0x86, in: made.data), point.count == 65 else {
            throw .failed("the card did not generate a key (status \(Self.hex(made.status)))")
        }
        return point
    }

    private func getData(_ tag: UInt8) throws(OpenPGPCardFailure) -> [UInt8] {
        let response = try send([0x00, 0xCA, 0x00, tag, 0x00])
        guard response.ok else { throw .failed("GET DATA \(String(format: "%02X", tag)) failed (status \(Self.hex(response.status)))") }
        return response.data
    }

    private func send(_ command: [UInt8]) throws(OpenPGPCardFailure) -> Response {
        try collect { () throws(PCSCError) in try card.transmit(command) }
    }

    private func send(_ command: UnsafeRawBufferPointer) throws(OpenPGPCardFailure) -> Response {
        try collect { () throws(PCSCError) in try card.transmit(command) }
    }

    /// One command's response, with GET RESPONSE while the card says more is waiting (61xx).
    private func collect(_ exchange: () throws(PCSCError) -> [UInt8]) throws(OpenPGPCardFailure) -> Response {
        var data: [UInt8] = []
        var raw: [UInt8]
        do throws(PCSCError) { raw = try exchange() } catch { throw .from(error) }
        while true {
            guard raw.count >= 2 else { throw .failed("the card answered \(raw.count) bytes, without a status word") }
            data += raw.dropLast(2)
            let status = UInt16(raw[raw.count - 2]) << 8 | UInt16(raw[raw.count - 1])
            guard status >> 8 == 0x61, data.count < 4096 else { return Response(data: data, status: status) }
            do throws(PCSCError) { raw = try card.transmit([0x00, 0xC0, 0x00, 0x00, UInt8(status & 0xFF)]) } catch { throw .from(error) }
        }
    }

    /// Algorithm attributes (C1) in words. `package` for the fuzzer, as `BERTLV`.
    package static func algorithm(_ attributes: [UInt8]) -> String {
        guard let id = attributes.first else { return "none" }
        switch id {
        case 0x01:
            let bits = attributes.count >= 3 ? Int(attributes[1]) << 8 | Int(attributes[2]) : 0
            return "RSA \(bits)"
        case 0x13:
            var oid = Array(attributes.dropFirst())
            if oid.last == 0xFF { oid.removeLast() }  // "with public key" in import formats
            return OpenPGPCurve.allCases.first { $0.oid == oid }?.name ?? "ECDSA (curve OID \(Hex.encode(oid)))"
        case 0x12: return "ECDH"
        case 0x16: return "EdDSA"
        default: return "algorithm \(id)"
        }
    }

    static func hex(_ status: UInt16) -> String { String(format: "%04X", status) }
}

/// The BER-TLV of card data objects: tags of one or two bytes, lengths of up to three.
package enum BERTLV {
    /// The value of the first object tagged `tag`, searching constructed objects depth first.
    package static func find(_ tag: UInt16, in bytes: [UInt8]) -> [UInt8]? {
        var index = 0
        while index < bytes.count {
            var found = UInt16(bytes[index])
            index += 1
            if found & 0x1F == 0x1F {
                guard index < bytes.count else { return nil }
                found = found << 8 | UInt16(bytes[index])
                index += 1
            }
            guard index < bytes.count else { return nil }
            var length = Int(bytes[index])
            index += 1
            if length == 0x81 || length == 0x82 {
                let count = length - 0x80
                guard index + count <= bytes.count else { return nil }
                length = bytes[index..<index + count].reduce(0) { $0 << 8 | Int($1) }
                index += count
            } else if length > 0x7F {
                return nil
            }
            guard index + length <= bytes.count else { return nil }
            let value = Array(bytes[index..<index + length])
            if found == tag { return value }
            let constructed = (found > 0xFF ? found >> 8 : found) & 0x20 != 0
            if constructed, let inner = find(tag, in: value) { return inner }
            index += length
        }
        return nil
    }
}
