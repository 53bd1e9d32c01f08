import Crypto
import EthereumCore
import Foundation
import SmartSessions
import Synchronization

/// A passkey an owner signs with: a non-resident ES256 credential a FIDO2 authenticator made
/// for `rpID`. The authenticator keeps no state for it; the credential id (its key, wrapped by
/// the authenticator) is what this file keeps, with the public key the account's WebAuthn
/// validator lists.
public struct Passkey: Sendable, Equatable {
    public var rpID: String
    public var credentialID: [UInt8]
    public var publicKey: EthereumCore.P256.PublicKey
    /// The authenticator that holds it (`unix:PATH` for one on a socket), or nil: each FIDO HID
    /// device plugged in is asked.
    public var device: String?
    /// Made with the authenticator's PIN, so each signature needs it too (user verification,
    /// the UV flag a validator credential with requireUV checks), as well as the tap.
    public var userVerification: Bool

    public init(rpID: String, credentialID: [UInt8], publicKey: EthereumCore.P256.PublicKey, device: String?, userVerification: Bool = false) {
        self.rpID = rpID
        self.credentialID = credentialID
        self.publicKey = publicKey
        self.device = device
        self.userVerification = userVerification
    }

    /// The relying party id a passkey is made for unless told otherwise. No browser ever asks
    /// for it, and the on-chain verifiers do not read it.
    public static let defaultRPID = "session-agent"

    /// The file `fido2 create` writes: nothing in it is secret.
    public var json: JSONValue {
        var fields = JSONObject([
            "kind": .string("fido2-passkey"), "rpId": .string(rpID), "credentialId": .string(WebAuthnAssertion.base64url(credentialID)),
            "publicKey": .string(Hex.encode([4] + publicKey.x.bytes + publicKey.y.bytes)),
        ])
        fields["device"] = device.map(JSONValue.string)
        if userVerification { fields["userVerification"] = .bool(true) }
        return .object(fields)
    }

    public init(json: JSONValue) throws(OwnerSignerError) {
        guard let o = json.objectValue, o["kind"]?.stringValue == "fido2-passkey" else {
            throw .failed("not a passkey file (session-agent fido2 create writes one): its kind is not fido2-passkey")
        }
        let known = ["kind", "rpId", "credentialId", "publicKey", "device", "userVerification"]
        if let extra = o.keys.first(where: { !known.contains($0) }) { throw .failed("passkey file: unknown field \(extra)") }
        guard let rpID = o["rpId"]?.stringValue, !rpID.isEmpty else { throw .failed("passkey file: rpId is missing") }
        guard let id = o["credentialId"]?.stringValue.flatMap(Self.base64urlDecoded), !id.isEmpty else {
            throw .failed("passkey file: credentialId is not base64url")
        }
        guard let keyText = o["publicKey"]?.stringValue, let keyBytes = try? Hex.decode(keyText), let key = try? EthereumCore.P256.PublicKey(keyBytes) else {
            throw .failed("passkey file: publicKey is not a P-256 public key in hex")
        }
        if let device = o["device"], device.stringValue == nil { throw .failed("passkey file: device is not a string") }
        if let uv = o["userVerification"], uv.boolValue == nil { throw .failed("passkey file: userVerification is not true or false") }
        self.init(rpID: rpID, credentialID: id, publicKey: key, device: o["device"]?.stringValue, userVerification: o["userVerification"]?.boolValue ?? false)
    }

    public static func read(_ path: String) throws(OwnerSignerError) -> Passkey {
        let json: JSONValue
        do { json = try JSONValue(parsing: try RegularFile.read(path, what: "the passkey file", limit: 64 * 1024).bytes) } catch {
            throw .failed("the passkey file \(path) could not be read: \(error)")
        }
        do { return try Passkey(json: json) } catch { throw .failed("\(path): \(error)") }
    }

    static func base64urlDecoded(_ text: String) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !standard.contains("=") else { return nil }
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: standard).map(Array.init)
    }

    /// What the authenticator is told the assertion is for, and what clientDataJSON says.
    var origin: String { "https://\(rpID)" }
}

/// The FIDO2 authenticators libfido2 reaches. Their calls block while a person is asked to tap,
/// so they run one at a time on a queue of their own.
public enum FIDO2Authenticators {
    public struct Device: Sendable, Equatable {
        public let path: String
        public let manufacturer: String
        public let product: String
    }

    /// How long a person has to tap the authenticator.
    public static var tapTimeout: Duration {
        get { timeout.withLock { $0 } }
        set { timeout.withLock { $0 = newValue } }
    }
    private static let timeout = Mutex<Duration>(.seconds(30))

    /// Authenticators the agent asks besides those libfido2 finds plugged in (`fido2_devices`):
    /// one on a socket (`unix:PATH`), passed into a VM or a container.
    public static var configuredDevices: [String] {
        get { configured.withLock { $0 } }
        set { configured.withLock { $0 = newValue } }
    }
    private static let configured = Mutex<[String]>([])
    private static let line = DeviceLine(label: "session-agent.fido2")

    /// The FIDO HID devices plugged in, and the configured ones that are there.
    public static func list() async throws(OwnerSignerError) -> [Device] {
        let configured = configuredDevices.filter { FileManager.default.fileExists(atPath: FIDO2.file(of: $0)) }
        return try await onLine { () throws(FIDO2Error) in
            try FIDO2.devices().map { Device(path: $0.path, manufacturer: $0.manufacturer, product: $0.product) }
        } + configured.map { Device(path: $0, manufacturer: "", product: "configured (fido2_devices)") }
    }

    /// Makes a passkey on `device` (or the only FIDO device plugged in), with the person's tap;
    /// with `pin`, one whose signatures need the PIN too (user verification).
    public static func create(on device: String?, rpID: String = Passkey.defaultRPID, userName: String, pin: SecretBytes? = nil) async throws(OwnerSignerError) -> Passkey {
        let path = try await devicePath(device)
        return try await onLine { () throws(FIDO2Error) in
            let authenticator = try FIDO2Device(path: path, timeout: tapTimeout)
            // Nothing checks what was attested to, beyond the statement's own signature: any
            // fresh value does for the hash of the client data.
            let credential = try authenticator.makeCredential(rpID: rpID, userID: Array(SHA256.hash(data: Array(userName.utf8))), userName: userName,
                                                              clientDataHash: (0..<32).map { _ in UInt8.random(in: 0...255) }, pin: pin)
            guard let key = try? EthereumCore.P256.PublicKey(credential.publicKey) else {
                throw FIDO2Error.unexpected("\(path) made a credential whose public key is not a P-256 point")
            }
            return Passkey(rpID: rpID, credentialID: credential.id, publicKey: key, device: device, userVerification: pin != nil)
        }
    }

    /// The device named, or the only one plugged in.
    static func devicePath(_ device: String?) async throws(OwnerSignerError) -> String {
        if let device { return device }
        let devices = try await list()
        guard devices.count == 1 else {
            throw devices.isEmpty ? .unavailable("no FIDO2 authenticator is plugged in")
                : .failed("\(devices.count) FIDO2 authenticators are plugged in (\(devices.map(\.path).joined(separator: ", "))); name one with --device")
        }
        return devices[0].path
    }

    /// The authenticator that holds `passkey`: the one its file names, the only one there, or
    /// of several, the one that says it holds the credential when asked without a tap.
    static func holder(of passkey: Passkey) async throws(OwnerSignerError) -> String {
        if let device = passkey.device { return device }
        let devices = try await list().map(\.path)
        guard devices.count > 1 else {
            guard let only = devices.first else { throw .unavailable("no FIDO2 authenticator is plugged in") }
            return only
        }
        for path in devices {
            let holds = try? await onLine { () throws(FIDO2Error) in
                try FIDO2Device(path: path, timeout: .seconds(5)).holds(rpID: passkey.rpID, credentialID: passkey.credentialID)
            }
            if holds == true { return path }
        }
        throw .unavailable("none of the \(devices.count) FIDO2 authenticators there (\(devices.joined(separator: ", "))) holds this passkey")
    }

    static func onLine<T: Sendable>(_ body: @escaping @Sendable () throws(FIDO2Error) -> T) async throws(OwnerSignerError) -> T {
        // libfido2 gives up on the tap itself; this bounds an authenticator that stops answering.
        let limit = tapTimeout + .seconds(15), seconds = limit.components.seconds
        return try await line.run(timeout: limit, overdue: {
            .unavailable("the FIDO2 authenticator did not answer within \(seconds) s; authenticators are used again once it answers")
        }, stuck: {
            .unavailable("a FIDO2 authenticator has not answered for over \(seconds) s; authenticators are used again once it answers")
        }, { () throws(OwnerSignerError) -> T in
            do throws(FIDO2Error) { return try body() } catch { throw ownerError(error) }
        })
    }

    static func ownerError(_ error: FIDO2Error) -> OwnerSignerError {
        if error.notTapped { return .secretNeeded("the FIDO2 authenticator was not tapped (\(error))") }
        if error.deviceGone || error.opening { return .unavailable("the FIDO2 authenticator is not there (\(error))") }
        if error.noCredential { return .unavailable("the FIDO2 authenticator does not hold this passkey (\(error))") }
        if error.wrongPIN { return .wrongSecret("wrong PIN for the FIDO2 authenticator (\(error))") }
        if error.pinUnusable { return .failed("the FIDO2 authenticator takes no PIN now (\(error)); it needs a reset, or a PIN set, on the device") }
        return .failed("\(error)")
    }
}

/// An owner key that is a passkey: each signature is a WebAuthn assertion the authenticator
/// makes when the person taps it, so the tap is the approval on the device itself. The
/// assertion is checked as the on-chain verifiers check it (type and challenge in the client
/// data, user presence, low s, the P-256 signature against the passkey's public key) and is
/// never returned otherwise.
public struct PasskeyOwner: OwnerSigner {
    public let passkey: Passkey
    /// Where its file is, for people.
    public let identity: OwnerIdentity

    public init(passkey: Passkey, file: String? = nil) {
        self.passkey = passkey
        identity = OwnerIdentity(backend: "fido2", key: .passkey(passkey.publicKey), location: file ?? "passkey on \(passkey.device ?? "a FIDO2 authenticator")")
    }

    public func ownerSignature(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> OwnerSignature {
        .webAuthn(try await sign(approved, prompt: prompt))
    }

    /// For a caller with no PIN to give.
    public static let noPIN: SecretPrompt = { _ in throw OwnerSignerError.secretNeeded("no PIN can be given here") }

    /// What the person is asked for a passkey that needs the PIN.
    var pinPrompt: String { "PIN of the FIDO2 authenticator (\(passkey.device ?? "the one that holds it")), then a tap on it" }

    /// A tap on the authenticator, which must be plugged in; and its PIN for a passkey made with it.
    public func readiness() async -> OwnerReadiness {
        if let device = passkey.device {
            guard FileManager.default.fileExists(atPath: FIDO2.file(of: device)) else { return .notReady(.unavailable("the FIDO2 authenticator \(device) is not there")) }
        } else {
            do {
                if try await FIDO2Authenticators.list().isEmpty { return .notReady(.unavailable("no FIDO2 authenticator is plugged in")) }
            } catch { return .notReady(error) }
        }
        if passkey.userVerification { return .needsSecret(pinPrompt) }
        return .asksOnDevice("a tap on the FIDO2 authenticator (\(passkey.device ?? "the one that holds it"))")
    }

    /// An assertion over `approved.digest` (the challenge), from the passkey's authenticator;
    /// `prompt` gives the PIN of a passkey that needs it.
    public func sign(_ approved: ApprovedDigest, prompt: SecretPrompt = PasskeyOwner.noPIN) async throws(OwnerSignerError) -> WebAuthnAssertion {
        let clientData = WebAuthnAssertion.clientData(challenge: approved.digest, origin: passkey.origin)
        let clientDataHash = Array(SHA256.hash(data: Array(clientData.json.utf8)))
        let passkey = passkey
        let path = try await FIDO2Authenticators.holder(of: passkey)
        let pin: SecretBytes?
        if passkey.userVerification {
            do { pin = try await prompt(pinPrompt) } catch { throw .secretNeeded("no PIN was given for the FIDO2 authenticator: \(error)") }
        } else {
            pin = nil
        }
        let answer = try await DeviceNotice.showing("Tap the FIDO2 authenticator (\(path)) to sign.") { () async throws(OwnerSignerError) -> FIDO2Assertion in
            try await FIDO2Authenticators.onLine { () throws(FIDO2Error) in
                try FIDO2Device(path: path, timeout: FIDO2Authenticators.tapTimeout)
                    .assertion(rpID: passkey.rpID, credentialID: passkey.credentialID, clientDataHash: clientDataHash, pin: pin)
            }
        }
        let rawSignature: (r: Bytes32, s: Bytes32)
        do { rawSignature = try EthereumCore.P256.signature(der: answer.signature) } catch { throw .failed("the FIDO2 authenticator answered \(error)") }
        let s: Bytes32
        do { s = try EthereumCore.P256.normalizedS(rawSignature.s) } catch { throw .failed("the FIDO2 authenticator answered \(error)") }
        let assertion = WebAuthnAssertion(authenticatorData: answer.authenticatorData, clientDataJSON: clientData.json,
                                          challengeIndex: clientData.challengeIndex, typeIndex: clientData.typeIndex, r: rawSignature.r, s: s)
        guard assertion.verify(challenge: approved.digest, publicKey: passkey.publicKey, requireUserVerification: false) else {
            throw .failed("the FIDO2 authenticator's assertion does not verify against the passkey's public key; not returned")
        }
        // A validator credential made with requireUV refuses it on chain.
        guard !passkey.userVerification || assertion.verify(challenge: approved.digest, publicKey: passkey.publicKey, requireUserVerification: true) else {
            throw .failed("the FIDO2 authenticator took the PIN but did not say it verified the person (no UV flag), which the passkey needs; not returned")
        }
        return assertion
    }
}
