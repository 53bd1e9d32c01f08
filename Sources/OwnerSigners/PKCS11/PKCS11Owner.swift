internal import CPKCS11
import EthereumCore
import Foundation
import SmartSessions

/// An EC private key on a token, with the module and PIN source to reach it.
public struct PKCS11Key: Sendable {
    /// The key's URI, with the module's path, so it names the same key in another process.
    public let uri: PKCS11URI
    public let info: PKCS11KeyInfo
    public let pin: PINSource
    /// The module the key is on (the benchmark reaches the same queue through it).
    public let provider: PKCS11Provider

    /// Finds the key's public half on the token. Public objects need no login, but some HSMs
    /// (CloudHSM) show no object before one: then the process logs in, with the PIN from `pin`
    /// or, when a person gives it, from `askPIN` (by default nobody is there to ask).
    public static func locate(_ uri: PKCS11URI, pin: PINSource, askPIN: SecretPrompt = nobodyToAsk,
                              defaultModule: String?) async throws(PKCS11Failure) -> PKCS11Key {
        let provider = try await PKCS11Provider.locate(uri, defaultModule: defaultModule)
        guard uri.object != nil || uri.id != nil else { throw .keyNotFound("\(uri) names no key; add object= or id=") }
        let read: @Sendable (PKCS11Session, PKCS11Provider.TokenState) throws(PKCS11Failure) -> PKCS11ECKeys = { session, _ throws(PKCS11Failure) in
            do { return try session.ecKeys(matching: uri) } catch { throw .failed("\(error)") }
        }
        var found = try await provider.withSession(uri, read)
        let hidden = found.usable.isEmpty && found.others.isEmpty ? try await provider.loginDue(uri) != nil : false
        if hidden { found = try await provider.withLogin(uri, pin: pin, prompt: askPIN, read) }
        let keys = found.usable
        guard keys.count == 1, let info = keys.first else {
            if keys.isEmpty, !found.others.isEmpty {
                throw .keyNotFound("the EC key\(found.others.count == 1 ? "" : "s") matching \(uri) cannot be an owner: " + found.others.map(\.explained).joined(separator: "; "))
            }
            if keys.isEmpty, try await provider.withSession(uri, { session, _ throws(PKCS11Failure) in (try? session.holdsPrivateECKey(matching: uri)) ?? false }) {
                // `pkcs11-tool --write-object key.der --type privkey` leaves it so.
                throw .keyNotFound("the token holds the private key \(uri.objectName) but no public key object, which its address is read from; "
                                   + "write the public key beside it (pkcs11-tool --write-object pub.der --type pubkey with the same id and label)")
            }
            guard keys.isEmpty else {
                throw .keyNotFound("\(keys.count) EC keys match \(uri): \(keys.map(\.distinguished).joined(separator: ", ")); add the id of one")
            }
            let onToken = try? await provider.withSession(uri) { session, _ throws(PKCS11Failure) in
                do { return try session.ecKeys().usable } catch { throw .failed("\(error)") }
            }
            throw .keyNotFound("no EC public key matches \(uri)\(hidden ? " (not even after a login)" : "")"
                               + (onToken.map { "; the token shows \(PKCS11KeyInfo.shown($0))" } ?? ""))
        }
        return PKCS11Key(uri: try await provider.namingItsToken(info.uri(on: uri.with(modulePath: provider.modulePath))), info: info, pin: pin, provider: provider)
    }

    /// The PIN prompt of a lookup with no person at hand: the token's PIN is what is missing.
    public static let nobodyToAsk: SecretPrompt = { _ in
        throw PKCS11Failure.pinNeeded("no key matches without a login, and some tokens show their keys only after one")
    }

    /// Makes a key pair on the token: the private half is sensitive, not extractable, and signs.
    /// Its id is the URI's, or random (16 bytes). A label or id an EC key on the token already has
    /// is refused: a URI naming it would then match two keys, and an owner by it would not start.
    public static func generate(on token: PKCS11URI, curve: PKCS11Curve, label: String, pin: PINSource, prompt: SecretPrompt,
                                defaultModule: String?) async throws(PKCS11Failure) -> PKCS11Key {
        let provider = try await PKCS11Provider.locate(token, defaultModule: defaultModule)
        let id = token.id ?? PKCS11SecretKey.randomBytes(16)
        let info = try await provider.withLogin(token, pin: pin, prompt: prompt) { session, _ throws(PKCS11Failure) in
            for (taken, uri) in [("label \"\(label)\"", PKCS11URI(object: label)), ("id \(Hex.encode(id))", PKCS11URI(id: id))] {
                // A search that fails says nothing of a label or id in use: it is not taken as none.
                let keys: [PKCS11KeyInfo], holdsPrivateKey: Bool
                do throws(PKCS11Error) {
                    keys = try session.ecPublicKeys(matching: uri)
                    holdsPrivateKey = try session.holdsPrivateECKey(matching: uri)
                } catch {
                    throw PKCS11Provider.failure(error, token.tokenOnly.description, in: session)
                }
                if !keys.isEmpty || holdsPrivateKey {
                    throw .failed("the token already holds an EC key with the \(taken)\(keys.first.map { ": \($0.distinguished)" } ?? ""); choose another")
                }
            }
            let made: [PKCS11KeyInfo], pair: (publicKey: UInt, privateKey: UInt)
            do throws(PKCS11Error) {
                pair = try session.generateECKeyPair(curveParameters: curve.parameters, label: label, id: id)
                // With what the token says of the private half: a token may override the template
                // (an HSM policy that keeps keys extractable for its backups, or that limits
                // their mechanisms), and the person who asked for a key that never leaves it is told.
                made = try session.ecKeysWithCustody(matching: PKCS11URI(id: id)).usable
            } catch {
                if error.mechanismRefused || [CKR_CURVE_NOT_SUPPORTED, CKR_DOMAIN_PARAMS_INVALID].map({ UInt($0) }).contains(error.code ?? 0) {
                    throw .failed("the token does not make \(curve.rawValue) keys (\(error))"
                                  + (curve == .secp256k1 ? "; PIV cards and most smartcards have none, HSMs such as YubiHSM 2, Nitrokey HSM 2 and AWS CloudHSM do" : ""))
                }
                throw PKCS11Provider.failure(error, token.tokenOnly.description, in: session)
            }
            guard made.count == 1 else { throw .failed("the token did not keep the key pair it generated") }
            // One its policy keeps from CKM_ECDSA is no owner key: it goes again, rather than
            // stay under the label asked for. (One it lets leave still signs, and is kept.)
            if let why = made[0].cannotSign {
                var removed = "the key pair was removed again"
                do throws(PKCS11Error) {
                    try session.destroy(pair.privateKey)
                    try session.destroy(pair.publicKey)
                } catch {
                    removed = "removing it failed too (\(error)): remove the key pair with id \(Hex.encode(id)) with the token's own tool"
                }
                throw .failed("the token made a key that cannot sign as an owner, its policy overriding what was asked: \(why); \(removed)")
            }
            return made[0]
        }
        return PKCS11Key(uri: try await provider.namingItsToken(info.uri(on: token.with(modulePath: provider.modulePath))), info: info, pin: pin, provider: provider)
    }

    /// CKM_ECDSA on the token, as the module returns it (raw r ‖ s).
    public func signRaw(digest: [UInt8], prompt: SecretPrompt) async throws(PKCS11Failure) -> [UInt8] {
        try await provider.signECDSA(uri, pin: pin, digest: digest, prompt: prompt)
    }

    /// A P-256 signature with s ≤ n/2, as WebAuthn validators require, verified against the key's
    /// public half before it is returned: as with a secp256k1 owner, a token that answers CKR_OK
    /// with a wrong signature must not have it sent on.
    public func signP256(digest: Bytes32, prompt: SecretPrompt) async throws(PKCS11Failure) -> (r: Bytes32, s: Bytes32) {
        guard info.curve == .p256 else { throw .failed("\(uri) is a \(info.curve) key") }
        return try checkedP256(try await signRaw(digest: digest.bytes, prompt: prompt), digest: digest)
    }

    /// What the token returned for `digest`, with s lowered, once it verifies under this key.
    public func checkedP256(_ raw: [UInt8], digest: Bytes32) throws(PKCS11Failure) -> (r: Bytes32, s: Bytes32) {
        guard raw.count == 64, let s = try? P256.normalizedS(Bytes32(raw[32...])) else { throw .failed("the token returned a malformed P-256 signature; not returned") }
        let r = Bytes32(raw[..<32])
        guard (try? P256.PublicKey(info.publicKey))?.isValidSignature(r: r, s: s, digest: digest) == true else {
            throw .failed("the token's signature does not verify under the public key of \(uri.objectName) (the token signed wrongly); not returned")
        }
        return (r, s)
    }
}

/// An owner key on a PKCS#11 token (an HSM, a smartcard through OpenSC, SoftHSM). The token
/// signs with CKM_ECDSA. A secp256k1 key's raw r ‖ s is normalised to low s and v found by trial
/// recovery, and a signature that does not recover to the registered address is never returned.
/// A P-256 key owns accounts through the WebAuthnValidator: the agent writes the client and
/// authenticator data an authenticator would, the token signs their hash, and an assertion that
/// does not verify under the registered key is never returned.
public struct PKCS11Owner: OwnerSigner {
    /// The secp256k1 key's address, or the P-256 key.
    public let key: OwnerKey
    public let identity: OwnerIdentity
    /// The key's URI, with its module's path.
    public let uri: PKCS11URI
    public let pin: PINSource
    let provider: PKCS11Provider

    public init(_ key: PKCS11Key) throws(PKCS11Failure) {
        guard let ownerKey = Self.ownerKey(key.info) else { throw .keyNotFound("\(key.uri) is a \(key.info.curve) key, which owns no account") }
        self.init(uri: key.uri, pin: key.pin, key: ownerKey)
    }

    /// An owner whose key is already known (registered earlier): nothing touches the token
    /// until it signs, so the agent starts while the token is absent.
    public init(uri: PKCS11URI, pin: PINSource, key: OwnerKey) {
        precondition(uri.modulePath != nil, "a registered PKCS#11 owner's URI names its module")
        self.uri = uri
        self.pin = pin
        provider = PKCS11Provider.shared(modulePath: uri.modulePath!)
        self.key = key
        identity = OwnerIdentity(backend: "pkcs11", key: key, location: uri.description)
    }

    public init(uri: PKCS11URI, pin: PINSource, address: Address) {
        self.init(uri: uri, pin: pin, key: .address(address))
    }

    /// How an account lists the key: its address (secp256k1), or the key itself (P-256).
    static func ownerKey(_ info: PKCS11KeyInfo) -> OwnerKey? {
        switch info.curve {
        case .secp256k1: info.address.map(OwnerKey.address)
        case .p256: (try? P256.PublicKey(info.publicKey)).map(OwnerKey.passkey)
        }
    }

    /// The secp256k1 key's address; nil for a P-256 key.
    public var address: Address? { key.address }

    public func ownerSignature(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> OwnerSignature {
        guard case .passkey(let publicKey) = key else { return .ecdsa(try await sign(approved, prompt: prompt)) }
        let clientData = WebAuthnAssertion.clientData(challenge: approved.digest, origin: "https://\(Passkey.defaultRPID)")
        let authenticatorData = WebAuthnAssertion.authenticatorData(rpID: Passkey.defaultRPID)
        let message = WebAuthnAssertion.message(authenticatorData: authenticatorData, clientDataJSON: clientData.json)
        let raw: [UInt8]
        do throws(PKCS11Failure) { raw = try await signRaw(digest: message.bytes, prompt: prompt) } catch { throw error.ownerError }
        guard raw.count == 64, let s = try? P256.normalizedS(Bytes32(raw[32...])) else { throw .failed("the token returned a malformed P-256 signature; not returned") }
        let assertion = WebAuthnAssertion(authenticatorData: authenticatorData, clientDataJSON: clientData.json, challengeIndex: clientData.challengeIndex,
                                          typeIndex: clientData.typeIndex, r: Bytes32(raw[..<32]), s: s)
        guard assertion.verify(challenge: approved.digest, publicKey: publicKey, requireUserVerification: true) else {
            throw .failed("the token's signature does not verify under \(key) (the key on the token is not the one registered, or the token signed wrongly); not returned")
        }
        return .webAuthn(assertion)
    }

    public static func load(_ uri: PKCS11URI, pin: PINSource, askPIN: SecretPrompt = PKCS11Key.nobodyToAsk,
                            defaultModule: String?) async throws(PKCS11Failure) -> PKCS11Owner {
        try PKCS11Owner(try await PKCS11Key.locate(uri, pin: pin, askPIN: askPIN, defaultModule: defaultModule))
    }

    /// An Ethereum signature by a secp256k1 key.
    public func sign(_ approved: ApprovedDigest, prompt: SecretPrompt) async throws(OwnerSignerError) -> RecoverableSignature {
        guard let address = key.address else { throw .failed("\(uri) is a P-256 key: it signs WebAuthn assertions, not Ethereum signatures") }
        let raw: [UInt8]
        do throws(PKCS11Failure) { raw = try await signRaw(digest: approved.digest.bytes, prompt: prompt) } catch { throw error.ownerError }
        do { return try RecoverableSignature.normalizing(external: raw, digest: approved.digest, signer: address) } catch {
            switch error {
            case .signerMismatch:
                throw .failed("the token's signature does not recover to \(address) (the key on the token is not the one registered, or the token signed wrongly); not returned")
            default:
                throw .failed("the token returned an unusable signature (\(error)); not returned")
            }
        }
    }

    /// CKM_ECDSA on the token, as the module returns it (raw r ‖ s).
    public func signRaw(digest: [UInt8], prompt: SecretPrompt) async throws(PKCS11Failure) -> [UInt8] {
        try await provider.signECDSA(uri, pin: pin, digest: digest, prompt: prompt)
    }

    /// The key with what the token says of its private half (`custody`: made there and never
    /// extractable, imported, or extractable now; `cannotSign`), read after a login with the PIN
    /// from `pin` or, when a person gives it, `askPIN`. `custody` is nil when the token shows no
    /// such private key; all is nil when it shows no such key.
    public func withPrivateHalf(askPIN: SecretPrompt = PKCS11Key.nobodyToAsk) async throws(PKCS11Failure) -> PKCS11KeyInfo? {
        let read: @Sendable (PKCS11Session, PKCS11Provider.TokenState) throws(PKCS11Failure) -> PKCS11KeyInfo? = { [uri] session, _ throws(PKCS11Failure) in
            do { return try session.ecKeysWithCustody(matching: uri).usable.first } catch { throw .failed("\(error)") }
        }
        return try await provider.withLogin(uri, pin: pin, prompt: askPIN, read)
    }

    /// The token must be present and hold the owner's key (its public half, read without a
    /// login where the token shows it). Then: ready when the process is logged in or the PIN
    /// comes from a file or the environment (which must be readable), else the PIN prompt a
    /// person will see.
    public func readiness() async -> OwnerReadiness {
        do throws(PKCS11Failure) {
            let key: PKCS11Key
            do throws(PKCS11Failure) { key = try await PKCS11Key.locate(uri, pin: pin, defaultModule: nil) } catch .pinNeeded(let problem) where !pin.unattended {
                // No key shows before a login (CloudHSM shows none then): the person's PIN will tell.
                guard let token = try await provider.loginDue(uri) else { throw .pinNeeded(problem) }
                return Self.asking(token)
            }
            guard Self.ownerKey(key.info) == self.key else {
                throw .keyNotFound("the key \(uri.objectName) on the token is \(Self.ownerKey(key.info)?.description ?? "a \(key.info.curve) key") now, not \(self.key)")
            }
            if let secret = try pin.tokenPIN() {
                // A PIN the token rejected (or may not be spent) will not be tried: every approval would fail.
                if let refusal = try await provider.refusal(of: secret, from: pin, for: uri) { throw .wrongPIN(refusal) }
                return .ready
            }
            return try await provider.loginDue(uri).map(Self.asking) ?? .ready
        } catch { return .notReady(error.ownerError) }
    }

    /// What a person's login to `token` asks: the PIN from the approver, or on the reader's keypad.
    static func asking(_ token: PKCS11TokenInfo) -> OwnerReadiness {
        token.keypad ? .asksOnDevice(PKCS11Provider.pinPrompt(token)) : .needsSecret(PKCS11Provider.pinPrompt(token))
    }
}

extension PKCS11Provider {
    /// CKM_ECDSA with the private key `uri` names, logging in first when needed. A key the token
    /// refuses to use without a login although the session has one is checked for
    /// CKA_ALWAYS_AUTHENTICATE and, when so marked, signs with the PIN given again.
    func signECDSA(_ uri: PKCS11URI, pin: PINSource, digest: [UInt8], prompt: SecretPrompt) async throws(PKCS11Failure) -> [UInt8] {
        let selection = [PKCS11Attribute(.privateKey), .ecKeyType] + PKCS11Session.selection(uri)
        let name = "the EC private key " + uri.objectName
        let key: @Sendable (PKCS11Session, TokenState) throws(PKCS11Failure) -> UInt = { session, state throws(PKCS11Failure) in
            do throws(PKCS11Failure) { return try state.object(name, selection, in: session) } catch .keyNotFound(let problem) {
                // Tools that label each half of a pair apart (AWS CloudHSM's CLI) leave a private
                // key the public key's label and id do not find.
                throw .keyNotFound(problem + "; the private key needs the label and id of the public key the address was read from")
            }
        }
        // nil: the key wants the PIN for this signature.
        let signed = try await withLogin(uri, pin: pin, prompt: prompt) { session, state throws(PKCS11Failure) -> [UInt8]? in
            let handle = try key(session, state)
            do throws(PKCS11Error) { return try session.signECDSA(key: handle, digest: digest) } catch {
                if error.notLoggedIn, (try? session.attribute(.alwaysAuthenticate, of: handle)) == [1] { return nil }
                if error.mechanismRefused || error.code == UInt(CKR_KEY_FUNCTION_NOT_PERMITTED), let why = (try? session.refusalToSign(with: handle)) ?? nil {
                    throw .failed("the token will not sign with \(name) (\(error)): \(why)")
                }
                throw PKCS11Provider.failure(error, state.tokenKey, in: session)
            }
        }
        if let signed { return signed }
        return try await signECDSAWithContextLogin(uri, pin: pin, prompt: prompt, digest: digest, key: key)
    }
}
