import Crypto
import EthereumCore
import Foundation
import OwnerSigners
import Synchronization
import Testing
import TestSupport
import TestTraits

@Suite("PKCS#11 URIs (RFC 7512)")
struct PKCS11URITests {
    @Test func parsesWhatP11KitAndOpenSSHWrite() throws {
        let uri = try PKCS11URI("pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=2b4e0c5a7e0fa2a3;token=signer%20test;object=k1key;id=%01%A0;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin")
        #expect(uri.token == "signer test")
        #expect(uri.model == "SoftHSM v2")
        #expect(uri.serial == "2b4e0c5a7e0fa2a3")
        #expect(uri.object == "k1key")
        #expect(uri.id == [0x01, 0xA0])
        #expect(uri.type == "private")
        #expect(uri.modulePath == "/usr/lib/softhsm/libsofthsm2.so")
        #expect(uri.pinSource == "file:/etc/pin")
        // Formatting and parsing again gives the same selection.
        #expect(try PKCS11URI(uri.description) == uri)
        #expect(try PKCS11URI("pkcs11:").token == nil)
        let library = try PKCS11URI("pkcs11:library-manufacturer=SoftHSM;library-description=Implementation%20of%20PKCS11;library-version=2;slot-manufacturer=SoftHSM%20project")
        #expect(library.libraryManufacturer == "SoftHSM" && library.libraryDescription == "Implementation of PKCS11" && library.slotManufacturer == "SoftHSM project")
        #expect(library.libraryVersion == PKCS11Version(major: 2, minor: 0) && library.description.contains("library-version=2.0"))
        #expect(try PKCS11URI("PKCS11:token=a;?module-name=b&x-vendor=1&") == PKCS11URI("pkcs11:token=a?module-name=b"))
    }

    @Test func refusesWhatItCannotHonour() {
        #expect(throws: PKCS11URI.ParseError.notPKCS11("token=a")) { try PKCS11URI("token=a") }
        #expect(throws: PKCS11URI.ParseError.self) { try PKCS11URI("pkcs11:token=a?pin-value=123456") }
        #expect(throws: PKCS11URI.ParseError.self) { try PKCS11URI("pkcs11:tokn=a") }
        #expect(throws: PKCS11URI.ParseError.self) { try PKCS11URI("pkcs11:id=%0") }
        #expect(throws: PKCS11URI.ParseError.self) { try PKCS11URI("pkcs11:slot-id=x") }
        #expect(throws: PKCS11URI.ParseError.self) { try PKCS11URI("pkcs11:token") }
        // What p11-kit would read as another URI, or select by what this agent does not check.
        for text in ["pkcs11:token=my token", "pkcs11:token=a%+f", "pkcs11:slot-id=+5", "pkcs11:slot-id=", "pkcs11:token=a%00",
                     "pkcs11:;;token=a", "pkcs11:token=a;x-vendor=1", "pkcs11:library-version=2.", "pkcs11:library-version=255",
                     "pkcs11:library-version=%32", "pkcs11:library-version=2.6.1"] {
            #expect(throws: PKCS11URI.ParseError.self, "\(text)") { try PKCS11URI(text) }
        }
    }
}

/// A module whose function list leaves entries empty, as a broken vendor module might: Swift
/// calls those entries unchecked, so it must be refused when loaded, naming what is missing,
/// instead of ending the agent at the first call. The module is a few lines of C built here.
@Suite("A PKCS#11 module with holes in its function list")
struct PKCS11IncompleteModuleTests {
    static let source = """
        #include <p11-kit/pkcs11.h>
        static CK_RV ok(void *reserved) { return CKR_OK; }
        static CK_RV oneSlot(CK_BBOOL present, CK_SLOT_ID *list, CK_ULONG *count) { if (list) list[0] = 1; *count = 1; return CKR_OK; }
        static CK_FUNCTION_LIST functions = { { 2, 40 } };
        CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out) {
            functions.C_Initialize = ok; functions.C_Finalize = ok; functions.C_GetSlotList = oneSlot;
            *out = &functions;
            return CKR_OK;
        }
        """

    @Test func isRefusedWhenLoaded() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("holes-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let module = try CModule.build("holes", source: Self.source, in: directory)

        #expect { _ = try PKCS11Module(path: module) } throws: { error in
            let message = "\(error)"
            return message.contains("C_GetTokenInfo") && message.contains("C_Sign,") && !message.contains("C_GetSlotList")
        }
        await #expect { try await PKCS11Provider.shared(modulePath: module).tokens() } throws: { error in
            guard case PKCS11Failure.moduleMissing(let message) = error else { return false }
            return message.contains("empty in its function list")
        }
    }
}

/// Owner keys on SoftHSM2 through the real PKCS#11 interface. Each test loads its own copy of
/// the module (an independent SoftHSM instance) and makes its own token. They run one at a time,
/// and not beside other suites' tests that load SoftHSM in this process (`.inProcessSoftHSM`):
/// instances in one process share the token directory without excluding each other (SoftHSM's
/// file locks belong to the process), and with several tests rescanning, adding and removing
/// tokens at once, SoftHSM aborted in its slot manager (two slots with one id) in about one run
/// of four. An agent loads each library once, so it never meets this.
@Suite("PKCS#11 owners on SoftHSM2", .serialized, .inProcessSoftHSM, .enabled(if: SoftHSM.isAvailable, "\(SoftHSM.unavailableReason ?? "")"))
struct PKCS11OwnerTests {
    let hsm = SoftHSM.process
    let token = "t-\(UUID().uuidString.prefix(8))"

    func pinFile(_ pin: String) throws -> String {
        let path = hsm.directory.appendingPathComponent("pin-\(UUID().uuidString.prefix(8))").path
        try writeSecretFile(pin + "\n", path)
        return path
    }

    /// The test's token, with a secp256k1 key "k1key" (id 01) that pkcs11-tool made.
    func tokenWithKey() throws {
        try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "k1key", id: "01")
    }

    func uri(_ module: String, object: String = "k1key") throws -> PKCS11URI {
        try PKCS11URI("pkcs11:token=\(token);object=\(object)?module-path=\(module)")
    }

    static func approved(_ digest: Bytes32) -> ApprovedDigest { ApprovedDigest(digest: digest, approval: "test") }
    static let noPrompt: SecretPrompt = { _ in throw PKCS11Failure.pinNeeded("no prompt in this test") }

    /// A P-256 key signs WebAuthn assertions over the digest, with user presence and
    /// verification set, s low (SoftHSM returns high s half the time), verifying under the key;
    /// one checked against another key is not returned, and no Ethereum signature is made.
    @Test func aP256KeySignsWebAuthnAssertions() async throws {
        try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "p256", id: "02", keyType: "EC:prime256v1")
        let owner = try await PKCS11Owner.load(try uri(try hsm.privateModule(), object: "p256"), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        let key = try P256.PublicKey(try hsm.publicPoint(token: token, id: "02"))
        #expect(owner.key == .passkey(key) && owner.address == nil)
        for _ in 0..<16 {
            let digest = Bytes32(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
            guard case .webAuthn(let assertion) = try await owner.ownerSignature(Self.approved(digest), prompt: Self.noPrompt) else {
                Issue.record("not a WebAuthn assertion")
                return
            }
            #expect(assertion.verify(challenge: digest, publicKey: key, requireUserVerification: true))
        }
        let digest = Bytes32(Array(repeating: 7, count: 32))
        await #expect(throws: OwnerSignerError.self) { try await owner.sign(Self.approved(digest), prompt: Self.noPrompt) }
        let other = try P256.PublicKey(Hex.decode("0x046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"))
        let impostor = PKCS11Owner(uri: owner.uri, pin: owner.pin, key: .passkey(other))
        await #expect { try await impostor.ownerSignature(Self.approved(digest), prompt: Self.noPrompt) } throws: { error in
            "\(error)".contains("does not verify")
        }
    }

    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func signsWithAKeyPkcs11ToolMade() async throws {
        try tokenWithKey()
        let owner = try await PKCS11Owner.load(try uri(try hsm.privateModule()), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        let point = try hsm.publicPoint(token: token, id: "01")

        var lines: [String] = [], rawHighS = 0
        for _ in 0..<64 {
            let digest = Bytes32(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
            let raw = try await owner.signRaw(digest: digest.bytes, prompt: Self.noPrompt)
            #expect(raw.count == 64)
            if UInt256(Bytes32(raw[32...])) > Secp256k1.order.shiftedRight(1) { rawHighS += 1 }
            let signature = try await owner.sign(Self.approved(digest), prompt: Self.noPrompt)
            lines.append(JSONValue.object(JSONObject(["digest": .string(digest.hex), "signature": .string(signature.hex), "publicKey": .string(Hex.encode(point))])).serialized)
        }
        // SoftHSM returns high s about half the time: normalisation was exercised.
        #expect(rawHighS > 0)
        let file = hsm.directory.appendingPathComponent("sigs-\(UUID().uuidString.prefix(8)).jsonl")
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        let checks = try Oracle.run(arguments: [Oracle.packageRoot.appendingPathComponent("Tests/oracle/oracle.py").path, "recover", file.path])
            .split(separator: "\n").map { try JSONValue(parsing: String($0)) }
        #expect(checks.count == 64)
        for check in checks {
            #expect(try Address(try check.string("keyAddress")) == owner.identity.address)
            #expect(try Address(try check.string("recovered")) == owner.identity.address)
            #expect(check["lowS"] == .bool(true))
        }
    }

    /// An existing owner key as the tools import it: PKCS#8 (what softhsm2-util and pkcs11-tool
    /// read) around a SEC1 ECPrivateKey (the scalar and the public point), and its public half
    /// as a SubjectPublicKeyInfo.
    static func importable() throws -> (key: Secp256k1.PrivateKey, pkcs8: [UInt8], spki: [UInt8]) {
        let secret = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
        let key = try Secp256k1.PrivateKey(hex: "0x" + secret)
        let sec1: [UInt8] = [0x30, 0x6B, 0x02, 0x01, 0x01, 0x04, 0x20] + (try Hex.decode(secret)) + [0xA1, 0x44, 0x03, 0x42, 0x00, 0x04] + key.publicKey.uncompressed
        let algorithm: [UInt8] = [0x30, 0x10, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A]   // id-ecPublicKey, secp256k1
        return (key, [0x30, 0x81, 0x84, 0x02, 0x01, 0x00] + algorithm + [0x04, 0x6D] + sec1,
                [0x30, 0x56] + algorithm + [0x03, 0x42, 0x00, 0x04] + key.publicKey.uncompressed)
    }

    /// `importable()` put on the token by `softhsm2-util --import`, labelled "imported".
    func importWithSofthsmUtil() throws -> Secp256k1.PrivateKey {
        let (key, der, _) = try Self.importable()
        let pem = hsm.directory.appendingPathComponent("import-\(token).pem")
        try ("-----BEGIN PRIVATE KEY-----\n" + Data(der).base64EncodedString(options: .lineLength64Characters) + "\n-----END PRIVATE KEY-----\n")
            .write(to: pem, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: pem) }
        try hsm.tool("softhsm2-util", ["--import", pem.path, "--token", token, "--label", "imported", "--id", "0b0b", "--pin", SoftHSM.userPIN])
        return key
    }

    /// A key imported with `softhsm2-util --import` (an operator bringing an existing owner key
    /// to the HSM) is an owner like any other: the agent finds it, and it signs as that address.
    @Test func signsWithAKeySofthsmUtilImported() async throws {
        try hsm.initToken(token)
        let key = try importWithSofthsmUtil()
        let owner = try await PKCS11Owner.load(try uri(try hsm.privateModule(), object: "imported"), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        #expect(owner.identity.address == key.address)
        let digest = Bytes32(Array(repeating: 5, count: 32))
        #expect(try await owner.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == key.address)
    }

    /// What the token says of each private key: made on it and never extractable, imported (it
    /// existed outside the token), or extractable now. Private keys show only after a login.
    @Test func aKeysCustodyIsReadFromTheToken() async throws {
        try hsm.initToken(token)
        _ = try importWithSofthsmUtil()
        try hsm.generateKey(token: token, label: "exportable", id: "0c0c", extractable: true)
        let module = try hsm.privateModule()
        let tokenURI = try PKCS11URI("pkcs11:token=\(token)?module-path=\(module)")
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        _ = try await PKCS11Key.generate(on: tokenURI, curve: .secp256k1, label: "made-here", pin: pin, prompt: Self.noPrompt, defaultModule: nil)
        let read: @Sendable (PKCS11Session, PKCS11Provider.TokenState) throws(PKCS11Failure) -> [String: PKCS11KeyCustody?] = { session, _ throws(PKCS11Failure) in
            do { return Dictionary(uniqueKeysWithValues: try session.ecKeysWithCustody().usable.map { ($0.label, $0.custody) }) } catch { throw .failed("\(error)") }
        }
        let provider = PKCS11Provider.shared(modulePath: module)
        #expect(try await provider.withLogin(tokenURI, pin: pin, prompt: Self.noPrompt, read) == ["imported": .imported, "exportable": .exportable, "made-here": .neverLeft])
        // A fresh instance of the module, not logged in, sees no private key.
        let fresh = try hsm.privateModule()
        #expect(try await PKCS11Provider.shared(modulePath: fresh).withSession(tokenURI.with(modulePath: fresh), read).values.allSatisfy { $0 == nil })
    }

    /// A key an HSM policy restricts to hashing mechanisms (CKA_ALLOWED_MECHANISMS without
    /// CKM_ECDSA) cannot sign the keccak-256 digests owners sign: its flags say so after a login,
    /// and a signature the token refuses names the reason rather than a bare CKR_MECHANISM_INVALID.
    @Test func aKeyRestrictedToHashingMechanismsSaysItCannotSign() async throws {
        try tokenWithKey()
        try hsm.generateKey(token: token, label: "restricted", id: "02", allowedMechanisms: "ECDSA-SHA256,ECDSA-SHA384")
        let module = try hsm.privateModule()
        let tokenURI = try PKCS11URI("pkcs11:token=\(token)?module-path=\(module)")
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let read: @Sendable (PKCS11Session, PKCS11Provider.TokenState) throws(PKCS11Failure) -> [String: String?] = { session, _ throws(PKCS11Failure) in
            do { return Dictionary(uniqueKeysWithValues: try session.ecKeysWithCustody().usable.map { ($0.label, $0.cannotSign) }) } catch { throw .failed("\(error)") }
        }
        let refusals = try await PKCS11Provider.shared(modulePath: module).withLogin(tokenURI, pin: pin, prompt: Self.noPrompt, read)
        #expect(refusals["k1key"] == .some(nil))
        #expect(refusals["restricted"]??.contains("CKM_ECDSA_SHA256, CKM_ECDSA_SHA384") == true, "\(refusals)")

        let restricted = try await PKCS11Owner.load(try uri(module, object: "restricted"), pin: pin, defaultModule: nil)
        await #expect { try await restricted.sign(Self.approved(Bytes32(Array(repeating: 3, count: 32))), prompt: Self.noPrompt) } throws: { error in
            "\(error)".contains("will not sign") && "\(error)".contains("CKM_ECDSA_SHA256")
        }
        #expect(try await restricted.withPrivateHalf()?.cannotSign != nil)
        #expect(try await PKCS11Owner.load(try uri(module), pin: pin, defaultModule: nil).withPrivateHalf()?.cannotSign == nil)
    }

    /// `pkcs11-tool --write-object key.der --type privkey` leaves a private key with no public
    /// key object beside it: the error says so and how to add it, and then the key is an owner.
    @Test func aPrivateKeyWrittenAloneIsNamedAsSuch() async throws {
        try hsm.initToken(token)
        let (key, pkcs8, spki) = try Self.importable()
        let files = (private: hsm.directory.appendingPathComponent("priv-\(token).der"), public: hsm.directory.appendingPathComponent("pub-\(token).der"))
        try Data(pkcs8).write(to: files.private)
        try Data(spki).write(to: files.public)
        defer { [files.private, files.public].forEach { try? FileManager.default.removeItem(at: $0) } }
        func write(_ file: URL, _ type: String, label: String = "written", id: String = "0c0c") throws {
            try hsm.tool("pkcs11-tool", ["--module", SoftHSM.systemModule!, "--token-label", token, "--login", "--pin", SoftHSM.userPIN,
                                         "--write-object", file.path, "--type", type, "--label", label, "--id", id])
        }
        try write(files.private, "privkey")
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        await #expect { _ = try await PKCS11Owner.load(try uri(try hsm.privateModule(), object: "written"), pin: pin, defaultModule: nil) } throws: { error in
            guard case PKCS11Failure.keyNotFound(let message) = error else { return false }
            return message.contains("no public key object") && message.contains("--type pubkey")
        }
        // Its label is in use all the same: a key generated under it would make the label name two.
        await #expect { try await PKCS11Key.generate(on: try PKCS11URI("pkcs11:token=\(token)?module-path=\(try hsm.privateModule())"), curve: .secp256k1,
                                                     label: "written", pin: pin, prompt: Self.noPrompt, defaultModule: nil) } throws: { error in
            "\(error)".contains("already holds an EC key with the label \"written\"")
        }
        // A public half under another label and id (as tools that label each half apart leave
        // it) gives the address, but the signature says which private key it looked for.
        try write(files.public, "pubkey", label: "written-public", id: "0d0d")
        let apart = try await PKCS11Owner.load(try uri(try hsm.privateModule(), object: "written-public"), pin: pin, defaultModule: nil)
        await #expect { _ = try await apart.sign(Self.approved(Bytes32(Array(repeating: 6, count: 32))), prompt: Self.noPrompt) } throws: { error in
            "\(error)".contains("no object matches the EC private key \"written-public\" id 0d0d") && "\(error)".contains("needs the label and id of the public key")
        }
        try write(files.public, "pubkey")
        let owner = try await PKCS11Owner.load(try uri(try hsm.privateModule(), object: "written"), pin: pin, defaultModule: nil)
        #expect(owner.identity.address == key.address)
        let digest = Bytes32(Array(repeating: 6, count: 32))
        #expect(try await owner.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == key.address)
    }

    /// An id already in use is refused when generating (a label in use is the CLI test's), and a
    /// URI matching two keys names each by id and address.
    @Test func twoKeysUnderOneNameAreToldApart() async throws {
        try tokenWithKey()
        let module = try hsm.privateModule()
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        await #expect { try await PKCS11Key.generate(on: try PKCS11URI("pkcs11:token=\(token);id=%01?module-path=\(module)"), curve: .secp256k1,
                                                     label: "fresh", pin: pin, prompt: Self.noPrompt, defaultModule: nil) } throws: { error in
            guard case PKCS11Failure.failed(let message) = error else { return false }
            return message.contains("already holds an EC key with the id 0x01: id=%01")
        }
        try hsm.generateKey(token: token, label: "k1key", id: "02")
        let addresses = try ["01", "02"].map { Address(publicKey: Array(try hsm.publicPoint(token: token, id: $0).dropFirst())).checksummed }
        await #expect { try await PKCS11Owner.load(try uri(module), pin: pin, defaultModule: nil) } throws: { error in
            guard case PKCS11Failure.keyNotFound(let message) = error else { return false }
            return message.contains("2 EC keys match") && message.contains("id=%01 (\(addresses[0]))") && message.contains("id=%02 (\(addresses[1]))")
        }
    }

    /// Two paths to one library are one module, which a process initialises once; and a URI
    /// naming a registered module through a symlink (Debian's /usr/lib/softhsm) names it.
    @Test func aSymlinkToAModuleIsThatModule() throws {
        let copy = try hsm.privateModule()
        let link = copy + "-link.so"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: URL(fileURLWithPath: copy).lastPathComponent)
        #expect(PKCS11Provider.shared(modulePath: link) === PKCS11Provider.shared(modulePath: copy))
        let system = try #require(SoftHSM.systemModule)
        if (try? FileManager.default.destinationOfSymbolicLink(atPath: system)) != nil {
            #expect(PKCS11Module.registered().contains { (try? PKCS11URI("pkcs11:?module-path=\(system)"))?.matches($0) == true })
        }
    }

    @Test func generatesNonExtractableKeysOnBothCurves() async throws {
        try hsm.initToken(token)
        let module = try hsm.privateModule()
        let provider = PKCS11Provider.shared(modulePath: module)
        let tokenURI = try PKCS11URI("pkcs11:token=\(token)").with(modulePath: module)
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let k1 = try await PKCS11Key.generate(on: tokenURI, curve: .secp256k1, label: "made-k1", pin: pin, prompt: Self.noPrompt, defaultModule: nil)
        let p256 = try await PKCS11Key.generate(on: tokenURI, curve: .p256, label: "made-p256", pin: pin, prompt: Self.noPrompt, defaultModule: nil)
        #expect(k1.info.address != nil && p256.info.address == nil)
        // The private halves can sign but never be read out.
        let flags = try await provider.withLogin(tokenURI, pin: pin, prompt: Self.noPrompt) { session, _ throws(PKCS11Failure) in
            do throws(PKCS11Error) {
                let keys = try session.find([PKCS11Attribute(.privateKey)])
                return try keys.map { key throws(PKCS11Error) in
                    [try session.attribute(.extractable, of: key), try session.attribute(.sensitive, of: key), try session.attribute(.sign, of: key)]
                }
            } catch { throw .failed("\(error)") }
        }
        #expect(flags.count == 2)
        for f in flags { #expect(f == [[0], [1], [1]]) }
        // Both keys are owners: the secp256k1 key by its address, the P-256 key by itself (for
        // the WebAuthnValidator); the P-256 key signs and verifies.
        let owner = try await PKCS11Owner.load(k1.uri, pin: pin, defaultModule: nil)
        #expect(owner.identity.address == k1.info.address)
        let digest = Bytes32(Array(repeating: 7, count: 32))
        _ = try await owner.sign(Self.approved(digest), prompt: Self.noPrompt)
        #expect(try PKCS11Owner(p256).key == .passkey(try P256.PublicKey(p256.info.publicKey)))
        for _ in 0..<16 {
            let (r, s) = try await p256.signP256(digest: digest, prompt: Self.noPrompt)
            #expect(P256.isLowS(s))
            #expect(try P256.PublicKey(p256.info.publicKey).isValidSignature(r: r, s: s, digest: digest))
        }
    }

    /// A module that offers no AES-GCM (p11-kit 0.24's client, some HSMs) still seals the
    /// store's data key under the token's AES key: the token derives the sealing key (AES-ECB of
    /// a random salt), which the oracle recomputes from the key's known value to open the seal.
    /// A module with AES-GCM seals on the token, and either module opens both kinds.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func aModuleWithoutAESGCMSealsUnderAKeyTheTokenDerives() async throws {
        try hsm.initToken(token)
        let value = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        try hsm.importAESKey(token: token, label: "store-key", value: value)
        let direct = try hsm.privateModule()
        let directory = try hsm.subdirectory("no-gcm")
        let withoutGCM = try CModule.withoutAESGCM(in: directory, real: try hsm.privateModule())
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let plain = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }, aad = Array("session-agent data key".utf8)

        let (_, derived) = try await PKCS11SecretKey.seal(plain.withUnsafeBytes(SecretBytes.init(copying:)), under: try uri(withoutGCM, object: "store-key"), aad: aad, pin: pin, prompt: Self.noPrompt)
        guard case let .derived(salt, sealed) = derived else { Issue.record("sealed with AES-GCM by a module that refuses it: \(derived)"); return }
        let opened = try Oracle.run(arguments: [Oracle.packageRoot.appendingPathComponent("Tests/oracle/oracle.py").path, "derived-open",
                                                Hex.encode(value), Hex.encode(salt), Hex.encode(sealed), Hex.encode(aad)])
        #expect(opened == Hex.encode(plain) + "\n")
        let (_, onToken) = try await PKCS11SecretKey.seal(plain.withUnsafeBytes(SecretBytes.init(copying:)), under: try uri(direct, object: "store-key"), aad: aad, pin: pin, prompt: Self.noPrompt)
        guard case let .gcm(nonce, onTokenSealed) = onToken else { Issue.record("SoftHSM offers AES-GCM, yet: \(onToken)"); return }
        // A readable copy of the key opens both too, and says it can be read (the store warns whoever opens it).
        try hsm.importAESKey(token: token, label: "readable-copy", value: value, sensitive: false)
        for (sealing, module, key) in [(derived, direct, "store-key"), (derived, withoutGCM, "store-key"), (onToken, direct, "store-key"),
                                       (derived, direct, "readable-copy"), (onToken, direct, "readable-copy")] {
            let back = try await PKCS11SecretKey.open(sealing, under: try uri(module, object: key), aad: aad, pin: pin, prompt: Self.noPrompt)
            #expect(back.opened.withUnsafeBytes { Array($0) } == plain)
            #expect((back.custody == .exportable) == (key == "readable-copy"), "\(key): \(back.custody)")
        }
        // Sealed on the token, it cannot be opened through a module without AES-GCM; the error says what to do.
        await #expect { try await PKCS11SecretKey.open(onToken, under: try uri(withoutGCM, object: "store-key"), aad: aad, pin: pin, prompt: Self.noPrompt) } throws: { error in
            "\(error)".contains("refuses AES-GCM") && "\(error)".contains("store rewrap")
        }
        // Altered, or under other associated data, neither opens; SoftHSM's CKR_GENERAL_ERROR
        // for a GCM tag that does not match is not taken for a token gone.
        var altered = sealed, alteredOnToken = onTokenSealed
        altered[altered.count - 1] ^= 1
        alteredOnToken[0] ^= 1
        for (sealing, data) in [(PKCS11Sealed.derived(salt: salt, sealed: altered), aad), (derived, Array("something else".utf8)),
                                (.gcm(nonce: nonce, sealed: alteredOnToken), aad), (onToken, Array("something else".utf8))] {
            await #expect { try await PKCS11SecretKey.open(sealing, under: try uri(direct, object: "store-key"), aad: data, pin: pin, prompt: Self.noPrompt) } throws: { error in
                "\(error)".contains("does not open")
            }
        }
    }

    /// An AES key whose value can be read from the token seals nothing: a store sealed under it
    /// could be opened without the token. Neither one written without --sensitive nor one a
    /// token's policy made readable although `seal` asked for a sensitive, unextractable key.
    @Test func anAESKeyThatCanBeReadSealsNothing() async throws {
        try hsm.initToken(token)
        try hsm.importAESKey(token: token, label: "readable", value: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }, sensitive: false)
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let direct = try hsm.privateModule()
        let overriding = try CModule.overridingKeyTemplates(in: try hsm.subdirectory("readable-aes"), real: try hsm.privateModule())
        let plain = [UInt8](repeating: 9, count: 32).withUnsafeBytes(SecretBytes.init(copying:)), aad = Array("session-agent data key".utf8)
        for (module, label, made, remedy) in [(direct, "readable", "on the token", "Name a new label"), (overriding, "made-readable", "the token just made", "delete the key it made")] {
            await #expect { try await PKCS11SecretKey.seal(plain, under: try uri(module, object: label), aad: aad, pin: pin, prompt: Self.noPrompt) } throws: { error in
                guard case PKCS11Failure.failed(let message) = error else { return false }
                return message.hasPrefix("the AES key \"\(label)\" \(made) can be read out of it") && message.contains("nothing was sealed. ") && message.contains(remedy)
            }
        }
        // What the token makes when it follows the template seals, and so does a sensitive key written in.
        try hsm.importAESKey(token: token, label: "sensitive", value: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        for label in ["made-here", "sensitive"] {
            _ = try await PKCS11SecretKey.seal(plain, under: try uri(direct, object: label), aad: aad, pin: pin, prompt: Self.noPrompt)
        }
    }

    /// Each seal of a data key is under a nonce (AES-GCM on the token) or a salt (the derived
    /// key) of its own: one nonce used twice under a GCM key gives away the XOR of both
    /// plaintexts and lets anyone forge. A name two AES keys answer to is refused rather than
    /// sealed under, or opened with, either. A token that goes away while a seal is opened on
    /// the session kept from the last opening is the token gone, which the agent waits for, not
    /// a key that does not open this seal.
    @Test func eachSealIsFreshUnderOneKeyOfAPresentToken() async throws {
        let directory = try hsm.initToken(token)
        try hsm.importAESKey(token: token, label: "store-key", value: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        let direct = try hsm.privateModule()
        let withoutGCM = try CModule.withoutAESGCM(in: try hsm.subdirectory("fresh"), real: try hsm.privateModule())
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let plain = SymmetricKey(size: .bits256).withUnsafeBytes { SecretBytes(copying: $0) }, aad = Array("session-agent data key".utf8)
        var nonces: Set<[UInt8]> = [], salts: Set<[UInt8]> = []
        for _ in 0..<3 {
            for module in [direct, withoutGCM] {
                switch try await PKCS11SecretKey.seal(plain, under: try uri(module, object: "store-key"), aad: aad, pin: pin, prompt: Self.noPrompt).sealed {
                case .gcm(let nonce, _): nonces.insert(nonce)
                case .derived(let salt, _): salts.insert(salt)
                }
            }
        }
        #expect(nonces.count == 3 && salts.count == 3, "nonces \(nonces.count), salts \(salts.count)")

        try hsm.importAESKey(token: token, label: "twice", value: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        try hsm.importAESKey(token: token, label: "twice", value: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        await #expect { try await PKCS11SecretKey.seal(plain, under: try uri(direct, object: "twice"), aad: aad, pin: pin, prompt: Self.noPrompt) } throws: { error in
            "\(error)".contains("2 AES keys match")
        }

        let (_, sealed) = try await PKCS11SecretKey.seal(plain, under: try uri(direct, object: "store-key"), aad: aad, pin: pin, prompt: Self.noPrompt)
        _ = try await PKCS11SecretKey.open(sealed, under: try uri(direct, object: "store-key"), aad: aad, pin: pin, prompt: Self.noPrompt)
        let away = try hsm.unplug(directory)
        await #expect { try await PKCS11SecretKey.open(sealed, under: try uri(direct, object: "store-key"), aad: aad, pin: pin, prompt: Self.noPrompt) } throws: { error in
            guard case PKCS11Failure.tokenAbsent = error else { return false }
            return true
        }
        try hsm.plugIn(away, as: directory)
        let opened = try await PKCS11SecretKey.open(sealed, under: try uri(direct, object: "store-key"), aad: aad, pin: pin, prompt: Self.noPrompt)
        #expect(opened.opened.sameBytes(as: plain))
        // A second key under the name, planted or made by mistake, is not tried in its place
        // (by a module of its own here: a session keeps the handle it found).
        try hsm.importAESKey(token: token, label: "store-key", value: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        await #expect { try await PKCS11SecretKey.open(sealed, under: try uri(try hsm.privateModule(), object: "store-key"), aad: aad, pin: pin, prompt: Self.noPrompt) } throws: { error in
            "\(error)".contains("2 objects match the AES key \"store-key\"")
        }
    }

    /// Keys other tools make that are not plain named-curve keys. A secp256k1 key whose
    /// CKA_EC_PARAMS spell the curve out (OpenSSL's `-param_enc explicit`, kept by
    /// `pkcs11-tool --write-object`) is an owner like any other; a key on P-384 is listed among
    /// the others with its curve, and a URI naming it says why it cannot be an owner. Both were
    /// once left out without a word.
    @Test func keysWithExplicitParametersOrOnOtherCurves() async throws {
        try hsm.initToken(token)
        let point = try hsm.importKeyWithExplicitParameters(token: token, label: "explicit", id: "03")
        try hsm.generateKey(token: token, label: "p384key", id: "04", keyType: "EC:secp384r1")
        let module = try hsm.privateModule()
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))

        let found = try await PKCS11Provider.shared(modulePath: module).withSession(try PKCS11URI("pkcs11:token=\(token)")) { session, _ throws(PKCS11Failure) in
            do { return try session.ecKeys() } catch { throw .failed("\(error)") }
        }
        let address = try Secp256k1.PublicKey(point).address
        #expect(found.usable.map(\.label) == ["explicit"])
        #expect(found.usable.first?.address == address)
        #expect(found.others.map(\.label) == ["p384key"])
        #expect(found.others.first?.reason.contains("secp384r1") == true)

        let owner = try await PKCS11Owner.load(try uri(module, object: "explicit"), pin: pin, defaultModule: nil)
        let digest = Bytes32(Array(repeating: 9, count: 32))
        let signature = try await owner.sign(Self.approved(digest), prompt: Self.noPrompt)
        #expect(try signature.recoverAddress(digest: digest) == address)
        await #expect { try await PKCS11Key.locate(try uri(module, object: "p384key"), pin: pin, defaultModule: nil) } throws: { error in
            "\(error)".contains("cannot be an owner") && "\(error)".contains("secp384r1")
        }
    }

    /// HSMs that choose the AES-GCM nonce themselves. AWS CloudHSM writes it into the
    /// parameters: the seal keeps that nonce and stays on the token. One that appends it
    /// (Thales Luna in FIPS mode) or tells nobody gives output that would not open under the
    /// nonce asked for, so the data key is sealed under the derived key instead, never under a
    /// wrapping the token cannot open again. Every seal opens through SoftHSM itself.
    @Test func hsmsThatChooseTheGCMNonceStillSealWhatOpens() async throws {
        try hsm.initToken(token)
        let direct = try hsm.privateModule()
        let directory = try hsm.subdirectory("gcm-nonce")
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let plain = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }, aad = Array("session-agent data key".utf8)
        for chosen in CModule.ChosenNonce.allCases {
            let module = try CModule.choosingGCMNonce(chosen, in: directory, real: try hsm.privateModule())
            let key = "store-key-\(chosen.rawValue)"
            let (_, sealed) = try await PKCS11SecretKey.seal(plain.withUnsafeBytes(SecretBytes.init(copying:)), under: try uri(module, object: key), aad: aad, pin: pin, prompt: Self.noPrompt)
            switch (chosen, sealed) {
            case (.inParameters, .gcm), (.appended, .derived), (.keptToItself, .derived): break
            default: Issue.record("\(chosen): sealed as \(sealed)")
            }
            for opening in [module, direct] {
                let back = try await PKCS11SecretKey.open(sealed, under: try uri(opening, object: key), aad: aad, pin: pin, prompt: Self.noPrompt)
                #expect(back.opened.withUnsafeBytes { Array($0) } == plain, "\(chosen), opened through \(opening)")
            }
        }
    }

    /// Two things real modules do that SoftHSM does not, from a module in front of it
    /// (`CModule.quirks`): EC points kept compressed are read on both curves (such keys were
    /// once left out without a word), and a PIN refused for its length before the token tries
    /// it (OpenSC) is a wrong PIN a person can mend, not a failure.
    @Test func aModuleWithCompressedPointsAndPINLengthChecks() async throws {
        try tokenWithKey()
        try hsm.generateKey(token: token, label: "p256key", id: "02", keyType: "EC:prime256v1")
        let directory = try hsm.subdirectory("quirks")
        let module = try CModule.quirks(in: directory, real: try hsm.privateModule())

        let keys = try await PKCS11Provider.shared(modulePath: module).withSession(try PKCS11URI("pkcs11:token=\(token)")) { session, _ throws(PKCS11Failure) in
            do { return try session.ecPublicKeys() } catch { throw .failed("\(error)") }
        }
        let k1Point = try hsm.publicPoint(token: token, id: "01"), p256Point = try hsm.publicPoint(token: token, id: "02")
        #expect(keys.map(\.label).sorted() == ["k1key", "p256key"])
        #expect(keys.first { $0.curve == .secp256k1 }?.publicKey == Array(k1Point.dropFirst()))
        #expect(keys.first { $0.curve == .p256 }?.publicKey == Array(p256Point.dropFirst()))

        let long = try pinFile(String(repeating: "7", count: 40))
        let owner = try await PKCS11Owner.load(try uri(module), pin: .file(long), defaultModule: nil)
        #expect(owner.identity.address == Address(publicKey: k1Point))
        let digest = Bytes32(Array(repeating: 9, count: 32))
        await #expect { try await owner.sign(Self.approved(digest), prompt: Self.noPrompt) } throws: { error in
            guard case OwnerSignerError.wrongSecret(let message) = error else { return false }
            return message.contains("CKR_PIN_LEN_RANGE") && message.contains(long)
        }
        try writeSecretFile(SoftHSM.userPIN + "\n", long)
        #expect(try await owner.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == Address(publicKey: k1Point))
        // A token that makes no secp256k1 keys says so, and still makes P-256 ones.
        let tokenURI = try PKCS11URI("pkcs11:token=\(token)?module-path=\(module)")
        await #expect { try await PKCS11Key.generate(on: tokenURI, curve: .secp256k1, label: "made-here", pin: .file(long), prompt: Self.noPrompt, defaultModule: nil) } throws: { error in
            "\(error)".contains("does not make secp256k1 keys") && "\(error)".contains("CKR_CURVE_NOT_SUPPORTED")
        }
        #expect(try await PKCS11Key.generate(on: tokenURI, curve: .p256, label: "made-here", pin: .file(long), prompt: Self.noPrompt, defaultModule: nil).info.curve == .p256)
    }

    /// A module finalized as the agent stops is not initialised again by a call that comes after
    /// it (a token watch, a request under way): under ThreadSanitizer, which slows the agent
    /// enough, SoftHSM's C_Initialize then ran beside the exit handlers that had freed OpenSSL's
    /// locks, and the stopping agent crashed. Such a call fails, saying why.
    @Test func aFinalizedModuleIsNotInitialisedAgain() async throws {
        try tokenWithKey()
        let provider = PKCS11Provider.shared(modulePath: try hsm.privateModule())
        let tokenURI = try PKCS11URI("pkcs11:token=\(token)")
        #expect(await provider.holdsToken(tokenURI, rescan: false))
        await withCheckedContinuation { done in provider.finalize { done.resume() } }
        await #expect { try await provider.tokens() } throws: { "\($0)".contains("was finalized: the agent is stopping") }
        #expect(await !provider.holdsToken(tokenURI, rescan: true))
    }

    /// Nor is a module that nobody used before the process began to stop (an `owner add` naming
    /// a new module in those seconds).
    @Test func aModuleFirstNamedAfterAllWereFinalizedIsNotLoaded() async throws {
        try tokenWithKey()
        let providers = PKCS11Providers()
        providers.finalizeAll(waiting: .seconds(10))
        let provider = providers.provider(modulePath: try hsm.privateModule())
        await #expect { try await provider.tokens() } throws: { "\($0)".contains("was finalized: the agent is stopping") }
        #expect(await !provider.holdsToken(try PKCS11URI("pkcs11:token=\(token)"), rescan: true))
    }

    /// A reader with a keypad (CKF_PROTECTED_AUTHENTICATION_PATH; a module in front of SoftHSM
    /// takes what a person "types" from a file): a person's PIN is entered there and never asked
    /// for by the agent. A cancel or a wrong PIN is one they can mend, and the same PIN entered
    /// again is not refused as a repeat (the agent never saw it); a PIN file is used as given.
    @Test func aReaderWithAKeypadTakesThePINItself() async throws {
        try tokenWithKey()
        let directory = try hsm.subdirectory("keypad")
        let typed = directory.appendingPathComponent("typed").path
        let module = try CModule.keypad(in: directory, real: try hsm.privateModule(), typed: typed)
        let asked = Mutex(0)
        let prompt: SecretPrompt = { _ in
            asked.withLock { $0 += 1 }
            throw PKCS11Failure.pinNeeded("asked")
        }
        let owner = try await PKCS11Owner.load(try uri(module), pin: .prompt, defaultModule: nil)
        #expect(try await PKCS11Provider.shared(modulePath: module).loginDue(try uri(module)).map { PKCS11Provider.pinPrompt($0) }?.contains("on the reader's keypad") == true)
        let digest = Bytes32(Array(repeating: 5, count: 32))
        await #expect { try await owner.sign(Self.approved(digest), prompt: prompt) } throws: { error in
            guard case OwnerSignerError.secretNeeded(let message) = error else { return false }
            return message.contains("cancelled")
        }
        for _ in 0..<2 {
            try SoftHSM.wrongPIN.write(toFile: typed, atomically: true, encoding: .utf8)
            await #expect { try await owner.sign(Self.approved(digest), prompt: prompt) } throws: { error in
                guard case OwnerSignerError.wrongSecret(let message) = error else { return false }
                return message.contains("wrong PIN") && message.contains("keypad")
            }
        }
        try SoftHSM.userPIN.write(toFile: typed, atomically: true, encoding: .utf8)
        #expect(try await owner.sign(Self.approved(digest), prompt: prompt).recoverAddress(digest: digest) == owner.identity.address)
        #expect(asked.withLock { $0 } == 0)

        // Another instance of the module, with a PIN file and nothing typed on the keypad.
        try FileManager.default.removeItem(atPath: typed)
        let other = directory.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        let withFile = try CModule.keypad(in: other, real: try hsm.privateModule(), typed: typed)
        let unattended = try await PKCS11Owner.load(try uri(withFile), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        #expect(try await unattended.sign(Self.approved(digest), prompt: prompt).recoverAddress(digest: digest) == owner.identity.address)
    }

    @Test func aWrongPINIsAClearErrorAndIsNotOfferedAgain() async throws {
        try tokenWithKey()
        let module = try hsm.privateModule()
        let wrong = try pinFile(SoftHSM.wrongPIN)
        let owner = try await PKCS11Owner.load(try uri(module), pin: .file(wrong), defaultModule: nil)
        let digest = Bytes32(Array(repeating: 1, count: 32))
        await #expect { try await owner.sign(Self.approved(digest), prompt: Self.noPrompt) } throws: { error in
            guard case OwnerSignerError.wrongSecret(let message) = error else { return false }
            return message.contains("wrong PIN") && message.contains(wrong)
        }
        await #expect { try await owner.sign(Self.approved(digest), prompt: Self.noPrompt) } throws: { error in
            guard case OwnerSignerError.wrongSecret(let message) = error else { return false }
            return message.contains("not offering it again")
        }
        // Fixing the file is enough; the token was only tried once.
        try writeSecretFile(SoftHSM.userPIN + "\n", wrong)
        _ = try await owner.sign(Self.approved(digest), prompt: Self.noPrompt)
        // A person at the prompt is asked when no source is configured; cancelling is an error.
        let prompted = try await PKCS11Owner.load(try uri(try hsm.privateModule()), pin: .prompt, defaultModule: nil)
        await #expect(throws: OwnerSignerError.self) { try await prompted.sign(Self.approved(digest), prompt: Self.noPrompt) }
        let asked = LockedBox<[String]>()
        _ = try await prompted.sign(Self.approved(digest), prompt: { description in
            asked.value = (asked.value ?? []) + [description]
            return secret(SoftHSM.userPIN)
        })
        // The prompt names the token by label and serial (two tokens may share a label).
        let serial = try #require(try await PKCS11Provider.shared(modulePath: module).tokens().tokens.present.first { $0.label == token }?.serial)
        #expect(asked.value?.count == 1 && asked.value?.first?.contains("\"\(token)\", serial \(serial)") == true, "\(asked.value ?? [])")
        // The login is kept: the next signature asks nothing.
        _ = try await prompted.sign(Self.approved(digest), prompt: Self.noPrompt)
    }

    /// A token with one PIN try left: a PIN from a file is not spent on it (a wrong one would
    /// lock the token with nobody there to see it); one a person gives is tried. A locked PIN is
    /// tried by nobody.
    @Test func anUnattendedPINNeverSpendsTheLastTry() async throws {
        try tokenWithKey()
        let module = try CModule.changingTokenFlags("final-try", in: try hsm.subdirectory("final-try"), real: try hsm.privateModule(), "info->flags |= CKF_USER_PIN_FINAL_TRY;")
        let digest = Bytes32(Array(repeating: 3, count: 32))
        let unattended = try await PKCS11Owner.load(try uri(module), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        await #expect { try await unattended.sign(Self.approved(digest), prompt: Self.noPrompt) } throws: { error in
            guard case OwnerSignerError.wrongSecret(let message) = error else { return false }
            return message.contains("has one PIN try left")
        }
        let person = try await PKCS11Owner.load(try uri(module), pin: .prompt, defaultModule: nil)
        #expect(try await person.sign(Self.approved(digest), prompt: { _ in secret(SoftHSM.userPIN) }).recoverAddress(digest: digest) == person.identity.address)

        let locked = try CModule.changingTokenFlags("pin-locked", in: try hsm.subdirectory("pin-locked"), real: try hsm.privateModule(), "info->flags |= CKF_USER_PIN_LOCKED;")
        let lockedOut = try await PKCS11Owner.load(try uri(locked), pin: .prompt, defaultModule: nil)
        await #expect { try await lockedOut.sign(Self.approved(digest), prompt: { _ in secret(SoftHSM.userPIN) }) } throws: { error in
            guard case OwnerSignerError.wrongSecret(let message) = error else { return false }
            return message.contains("is locked; unblock it with the SO PIN")
        }
    }

    /// A token whose user PIN has expired (an HSM's password policy) says so, and to change it:
    /// the PIN is right, so it is not taken for a wrong one, and the token's flag is read.
    @Test func anExpiredPINSaysToChangeIt() async throws {
        try tokenWithKey()
        let module = try CModule.expiredPIN(in: try hsm.subdirectory("expired-pin"), real: try hsm.privateModule())
        let owner = try await PKCS11Owner.load(try uri(module), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        // The second try finds no login left over from the first, which the token left made.
        for _ in 0..<2 {
            await #expect { try await owner.sign(Self.approved(Bytes32(Array(repeating: 5, count: 32))), prompt: Self.noPrompt) } throws: { error in
                guard case OwnerSignerError.wrongSecret(let message) = error else { return false }
                return message.contains("the user PIN of token \"\(token)\" has expired (C_Login failed: CKR_PIN_EXPIRED); change it with the token's own tool")
            }
        }
        let expired = try #require(try await PKCS11Provider.shared(modulePath: module).tokens().tokens.present.first { $0.label == token })
        let plain = try #require(try await PKCS11Provider.shared(modulePath: try hsm.privateModule()).tokens().tokens.present.first { $0.label == token })
        #expect(expired.pinToBeChanged && !plain.pinToBeChanged)
        let listed = try Command.run(Command.sessionAgent, ["token", "list", "pkcs11:token=\(token)", "--module", module], environment: hsm.environment)
        #expect(listed.status == 0 && listed.stdout.contains("serial \(expired.serial)) [PIN TO BE CHANGED]\n"), "\(listed.stdout) \(listed.stderr)")
    }

    /// The token is the same under any URI: a PIN it rejected is not offered again, and one
    /// owner logging in serves another owner on it, even one whose session is older.
    @Test func aLoginServesEveryURIOfTheToken() async throws {
        try tokenWithKey()
        try hsm.generateKey(token: token, label: "k1other", id: "02")
        let module = try hsm.privateModule()
        let serial = try #require(try await PKCS11Provider.shared(modulePath: module).tokens().tokens.present.first { $0.label == token }?.serial)
        let first = try await PKCS11Owner.load(try uri(module), pin: .prompt, defaultModule: nil)
        let second = try await PKCS11Owner.load(try PKCS11URI("pkcs11:token=\(token);serial=\(serial);object=k1other?module-path=\(module)"),
                                                pin: .prompt, defaultModule: nil)
        let digest = Bytes32(Array(repeating: 3, count: 32))
        // A PIN the token rejected under one URI is not offered again under the other.
        await #expect(throws: OwnerSignerError.self) { try await first.sign(Self.approved(digest), prompt: { _ in secret(SoftHSM.wrongPIN) }) }
        await #expect { try await second.sign(Self.approved(digest), prompt: { _ in secret(SoftHSM.wrongPIN) }) } throws: { error in
            guard case OwnerSignerError.wrongSecret(let message) = error else { return false }
            return message.contains("not offering it again")
        }
        _ = try await first.sign(Self.approved(digest), prompt: { _ in secret(SoftHSM.userPIN) })
        let signature = try await second.sign(Self.approved(digest), prompt: Self.noPrompt)
        #expect(try signature.recoverAddress(digest: digest) == second.identity.address)
    }

    /// Readiness, found without signing: the PIN a person will be asked for (until a login),
    /// nothing once logged in, and what is wrong when the key at the URI is not the owner's (a
    /// token made again under the same label: its signature is refused too) or the PIN file
    /// cannot be read.
    @Test func readinessSaysWhatStandsBeforeASignature() async throws {
        try tokenWithKey()
        let module = try hsm.privateModule()
        let prompted = try await PKCS11Owner.load(try uri(module), pin: .prompt, defaultModule: nil)
        guard case .needsSecret(let asks) = await prompted.readiness() else { Issue.record("no PIN asked before a login"); return }
        #expect(asks.hasPrefix("PIN for token \"\(token)\", serial "), "\(asks)")
        _ = try await prompted.sign(Self.approved(Bytes32(Array(repeating: 9, count: 32))), prompt: { _ in secret(SoftHSM.userPIN) })
        #expect(await prompted.readiness() == .ready)

        let impostor = PKCS11Owner(uri: prompted.uri, pin: .prompt, address: try Address("0x000000000000000000000000000000000000dEaD"))
        guard case .notReady(.unavailable(let problem)) = await impostor.readiness() else { Issue.record("a key not the owner's was ready"); return }
        #expect(problem.contains("not 0x000000000000000000000000000000000000dEaD"), "\(problem)")
        // Signing anyway, the token's signature recovers to the key it holds: never returned.
        await #expect { try await impostor.sign(Self.approved(Bytes32(Array(repeating: 9, count: 32))), prompt: Self.noPrompt) } throws: { error in
            "\(error)".contains("does not recover to 0x000000000000000000000000000000000000dEaD (the key on the token is not the one registered")
        }
        let unreadable = PKCS11Owner(uri: prompted.uri, pin: .file("/nonexistent/pin"), key: prompted.key)
        guard case .notReady(.secretNeeded(let missing)) = await unreadable.readiness() else { Issue.record("an unreadable PIN file was ready"); return }
        #expect(missing.contains("/nonexistent/pin"), "\(missing)")
    }

    /// Some HSMs (CloudHSM) show no object before a login. The key is found with the PIN from
    /// its file or the one a person gives; with neither, the error says a PIN is what is missing,
    /// and a registered owner's readiness asks for it instead of calling the key gone.
    @Test func aKeyShownOnlyAfterALogin() async throws {
        try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "k1key", id: "01", hiddenBeforeLogin: true)
        let expected = Address(publicKey: Array(try hsm.publicPoint(token: token, id: "01", pin: SoftHSM.userPIN).dropFirst()))
        #expect(try hsm.tool("pkcs11-tool", ["--module", SoftHSM.systemModule!, "--token-label", token, "-O"]).contains("k1key") == false)

        let module = try hsm.privateModule()
        await #expect { _ = try await PKCS11Owner.load(try uri(module), pin: .prompt, defaultModule: nil) } throws: { error in
            guard case PKCS11Failure.pinNeeded(let message) = error else { return false }
            return message.contains("token \"\(token)\"") && message.contains("without a login")
        }
        let registered = PKCS11Owner(uri: try uri(module), pin: .prompt, address: expected)
        guard case .needsSecret(let asks) = await registered.readiness() else { Issue.record("a hidden key was not ready for a PIN"); return }
        #expect(asks.hasPrefix("PIN for token \"\(token)\""), "\(asks)")
        let found = try await PKCS11Owner.load(try uri(module), pin: .prompt, askPIN: { _ in secret(SoftHSM.userPIN) }, defaultModule: nil)
        #expect(found.identity.address == expected)
        #expect(await registered.readiness() == .ready)
        let digest = Bytes32(Array(repeating: 5, count: 32))
        #expect(try await registered.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == expected)

        // Another instance, not logged in: the PIN file serves the lookup as it serves signing;
        // a URI naming no key there says so, after the login.
        let unattended = try hsm.privateModule()
        let byFile = try await PKCS11Owner.load(try uri(unattended), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        #expect(byFile.identity.address == expected)
        await #expect { _ = try await PKCS11Owner.load(try uri(try hsm.privateModule(), object: "absent"), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil) } throws: { error in
            guard case PKCS11Failure.keyNotFound(let message) = error else { return false }
            return message.contains("not even after a login")
        }
    }

    /// Signatures that arrive while a person types the token's PIN wait for that login instead
    /// of each asking for the PIN (gpg-agent users know the pile of dialogs otherwise): eight at
    /// once on a token not logged in, one prompt.
    @Test func signaturesArrivingDuringAPINPromptWaitForIt() async throws {
        try tokenWithKey()
        let owner = try await PKCS11Owner.load(try uri(try hsm.privateModule()), pin: .prompt, defaultModule: nil)
        let prompts = LockedBox<Int>()
        let (typed, typing) = AsyncStream<Void>.makeStream()
        let prompt: SecretPrompt = { _ in
            if prompts.increment() == 1 { for await _ in typed { break } }   // the person takes a while
            return secret(SoftHSM.userPIN)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                group.addTask {
                    let digest = Bytes32(Array(repeating: UInt8(i), count: 32))
                    let signature = try await owner.sign(Self.approved(digest), prompt: prompt)
                    #expect(try signature.recoverAddress(digest: digest) == owner.identity.address)
                }
            }
            // Not for the test to pass: time for the other seven to reach the prompt, were
            // they going to ask too.
            try await Task.sleep(for: .milliseconds(300))
            typing.yield()
            try await group.waitForAll()
        }
        #expect(prompts.value == 1)
    }

    /// A key marked CKA_ALWAYS_AUTHENTICATE takes the PIN again at every signature (a login for
    /// that one operation): from the PIN file without a word, or asked at the prompt each time.
    /// A wrong PIN there is the same clear error, and the key signs again after it.
    @Test func aKeyThatWantsThePINAtEverySignature() async throws {
        try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "k1key", id: "01", alwaysAuthenticate: true)
        let module = try hsm.privateModule()
        let unattended = try await PKCS11Owner.load(try uri(module), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        for i in 0..<3 {
            let digest = Bytes32(Array(repeating: UInt8(i), count: 32))
            #expect(try await unattended.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == unattended.identity.address)
        }

        let prompted = try await PKCS11Owner.load(try uri(try hsm.privateModule()), pin: .prompt, defaultModule: nil)
        let asked = LockedBox<[String]>()
        let answers = LockedBox<[String]>()
        answers.value = [SoftHSM.userPIN, SoftHSM.userPIN, SoftHSM.wrongPIN, SoftHSM.userPIN]
        let prompt: SecretPrompt = { description in
            asked.value = (asked.value ?? []) + [description]
            let next = answers.value!.removeFirst()
            return secret(next)
        }
        let digest = Bytes32(Array(repeating: 9, count: 32))
        #expect(try await prompted.sign(Self.approved(digest), prompt: prompt).recoverAddress(digest: digest) == prompted.identity.address)
        #expect(asked.value?.count == 2 && asked.value?.last?.contains("every signature") == true)   // the login, then this signature
        await #expect { try await prompted.sign(Self.approved(digest), prompt: prompt) } throws: { error in
            guard case OwnerSignerError.wrongSecret(let message) = error else { return false }
            return message.contains("wrong PIN")
        }
        #expect(try await prompted.sign(Self.approved(digest), prompt: prompt).recoverAddress(digest: digest) == prompted.identity.address)
        #expect(asked.value?.count == 4)
    }

    @Test func aMissingModuleOrTokenIsAClearError() async throws {
        await #expect { try await PKCS11Owner.load(try PKCS11URI("pkcs11:token=x;object=y?module-path=/nonexistent/libpkcs11.so"), pin: .prompt, defaultModule: nil) } throws: { error in
            guard case PKCS11Failure.moduleMissing(let message) = error else { return false }
            return message.contains("/nonexistent/libpkcs11.so")
        }
        await #expect { try await PKCS11Owner.load(try uri(try hsm.privateModule()), pin: .prompt, defaultModule: nil) } throws: { error in
            guard case PKCS11Failure.tokenAbsent(let message) = error else { return false }
            return message.contains(token)
        }
    }

    /// A URI naming no key on the token says which EC keys the token shows: none, or the first
    /// five and how many more, by label, id and address (or curve).
    @Test func aKeyNotFoundIsNamedBesideTheKeysShown() async throws {
        try hsm.initToken(token)
        let module = try hsm.privateModule(), pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        func missing() async -> String? {
            do {
                _ = try await PKCS11Owner.load(try uri(module, object: "typo"), pin: pin, defaultModule: nil)
                return nil
            } catch {
                guard case PKCS11Failure.keyNotFound(let message) = error else { return "\(error)" }
                return message
            }
        }
        #expect(await missing()?.hasSuffix("; the token shows no EC key") == true)
        try hsm.generateKey(token: token, label: "p256", id: "01", keyType: "EC:prime256v1")
        #expect(await missing()?.hasSuffix("; the token shows \"p256\" id=%01 (p256)") == true)
        for i in 2...6 { try hsm.generateKey(token: token, label: "k\(i)", id: "0\(i)") }
        let many = await missing()
        let shown = many?.components(separatedBy: "; the token shows ").last?.components(separatedBy: " and 1 more").first
        #expect(many?.hasSuffix(" and 1 more") == true && shown?.split(separator: ", ").count == 5, "\(many ?? "found")")
    }

    @Test func aRemovedTokenFailsCleanlyAndWorksAgainWhenItIsBack() async throws {
        let directory = try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "k1key", id: "01")
        let owner = try await PKCS11Owner.load(try uri(try hsm.privateModule()), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        let digest = Bytes32(Array(repeating: 2, count: 32))
        _ = try await owner.sign(Self.approved(digest), prompt: Self.noPrompt)

        let away = try hsm.unplug(directory)
        // Asked first whether it could sign (`owner list`), on the session kept from the
        // signature: SoftHSM answers C_GetTokenInfo for the gone token with CKR_GENERAL_ERROR
        // while the session itself still answers.
        guard case .notReady(.unavailable(let why)) = await owner.readiness() else {
            Issue.record("a removed token reads as \(await owner.readiness())")
            return
        }
        #expect(why.contains(token), "\(why)")
        for _ in 0..<2 {
            await #expect { try await owner.sign(Self.approved(digest), prompt: Self.noPrompt) } throws: { error in
                guard case OwnerSignerError.unavailable(let message) = error else { return false }
                return message.contains(token)
            }
        }
        try hsm.plugIn(away, as: directory)
        guard case .ready = await owner.readiness() else {
            Issue.record("the token back reads as \(await owner.readiness())")
            return
        }
        let signature = try await owner.sign(Self.approved(digest), prompt: Self.noPrompt)
        #expect(try signature.recoverAddress(digest: digest) == owner.identity.address)
    }

    /// A module that fails C_Sign with CKR_GENERAL_ERROR while its token is present (a fault of
    /// its own) is reported as failing, with its code: not as a token that went away, which
    /// would drop the session and with it a login a person gave. Once the fault is gone the next
    /// signature works without asking for the PIN again.
    @Test func aModuleFaultWithItsTokenPresentIsNotARemoval() async throws {
        try tokenWithKey()
        let directory = try hsm.subdirectory("fault")
        let trigger = directory.appendingPathComponent("fault").path
        let module = try CModule.faultyInSign(.generalError, in: directory, real: try hsm.privateModule(), trigger: trigger)
        let owner = try await PKCS11Owner.load(try uri(module), pin: .prompt, defaultModule: nil)
        let asked = LockedBox<Int>()
        let prompt: SecretPrompt = { _ in
            asked.value = (asked.value ?? 0) + 1
            return secret(SoftHSM.userPIN)
        }
        let digest = Bytes32(Array(repeating: 4, count: 32))
        #expect(try await owner.sign(Self.approved(digest), prompt: prompt).recoverAddress(digest: digest) == owner.identity.address)

        #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
        await #expect { try await owner.sign(Self.approved(digest), prompt: prompt) } throws: { error in
            guard case OwnerSignerError.failed(let message) = error else { return false }
            return message.contains("C_Sign failed: CKR_GENERAL_ERROR")
        }
        try FileManager.default.removeItem(atPath: trigger)
        #expect(try await owner.sign(Self.approved(digest), prompt: prompt).recoverAddress(digest: digest) == owner.identity.address)
        #expect(asked.value == 1)
    }

    /// A signature the token gets wrong and answers CKR_OK for (a faulty or glitched token) is
    /// never returned: one with a bit flipped recovers to no owner, and one with r zero is
    /// refused before any recovery. The token's next sound signature is returned.
    @Test func aSignatureTheTokenGetsWrongIsNeverReturned() async throws {
        try tokenWithKey()
        let directory = try hsm.subdirectory("wrong-signature")
        let digest = Bytes32(Array(repeating: 8, count: 32))
        for (fault, expected) in [(CModule.SignFault.flippedBit, "does not recover to"), (.zeroR, "unusable signature (invalid signature: r and s must be in 1..<n)")] {
            let trigger = directory.appendingPathComponent(fault.rawValue).path
            let module = try CModule.faultyInSign(fault, in: directory, real: try hsm.privateModule(), trigger: trigger)
            let owner = try await PKCS11Owner.load(try uri(module), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
            #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
            await #expect { try await owner.sign(Self.approved(digest), prompt: Self.noPrompt) } throws: { error in
                guard case OwnerSignerError.failed(let message) = error else { return false }
                return message.contains(expected) && message.hasSuffix("; not returned")
            }
            try FileManager.default.removeItem(atPath: trigger)
            #expect(try await owner.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == owner.identity.address)
        }
        // A P-256 key's signature is verified under its public key instead.
        try hsm.generateKey(token: token, label: "p256key", id: "02", keyType: "EC:prime256v1")
        let p256Directory = try hsm.subdirectory("wrong-p256-signature")   // modules of their own: a loaded one stays loaded
        for (fault, expected) in [(CModule.SignFault.flippedBit, "does not verify under the public key of"), (.zeroR, "does not verify")] {
            let trigger = p256Directory.appendingPathComponent(fault.rawValue).path
            let module = try CModule.faultyInSign(fault, in: p256Directory, real: try hsm.privateModule(), trigger: trigger)
            let key = try await PKCS11Key.locate(try uri(module, object: "p256key"), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
            #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
            await #expect { try await key.signP256(digest: digest, prompt: Self.noPrompt) } throws: { error in
                guard case PKCS11Failure.failed(let message) = error else { return false }
                return message.contains(expected) && message.hasSuffix("; not returned")
            }
            try FileManager.default.removeItem(atPath: trigger)
            let (r, s) = try await key.signP256(digest: digest, prompt: Self.noPrompt)
            #expect(try P256.PublicKey(key.info.publicKey).isValidSignature(r: r, s: s, digest: digest))
        }
    }

    /// A token whose user PIN was never set (made with `pkcs11-tool --init-token` alone) says so
    /// and how to set one, rather than giving a bare return code.
    @Test func aTokenWithoutAUserPINSaysHowToSetOne() async throws {
        try hsm.initTokenWithoutUserPIN(token)
        let module = try hsm.privateModule()
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let tokenURI = try PKCS11URI("pkcs11:token=\(token)?module-path=\(module)")
        await #expect { try await PKCS11Key.generate(on: tokenURI, curve: .secp256k1, label: "k1key", pin: pin, prompt: Self.noPrompt, defaultModule: nil) } throws: { error in
            guard case PKCS11Failure.failed(let message) = error else { return false }
            return message.contains("token \"\(token)\" has no user PIN yet (C_Login failed: CKR_USER_PIN_NOT_INITIALIZED)") && message.contains("--init-pin")
        }
    }

    /// A login the token ended under the session kept from the last signature (an HSM that logs
    /// idle sessions out): the next signature finds it gone, logs in again from the PIN file on a
    /// fresh session and is made, instead of failing then and at every request after.
    @Test func aLoginTheTokenEndedIsMadeAgain() async throws {
        try tokenWithKey()
        let directory = try hsm.subdirectory("logout")
        let trigger = directory.appendingPathComponent("logout").path
        let module = try CModule.loggingOutAtSignInit(in: directory, real: try hsm.privateModule(), trigger: trigger)
        let owner = try await PKCS11Owner.load(try uri(module), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        let digest = Bytes32(Array(repeating: 6, count: 32))
        #expect(try await owner.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == owner.identity.address)
        #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
        #expect(try await owner.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == owner.identity.address)
        #expect(!FileManager.default.fileExists(atPath: trigger), "the module logged out")
    }

    /// A token that opens only read-only sessions (a write-protected card, an HSM partition in
    /// read-only mode) still logs in and signs: a read-only session is asked for when a
    /// read-write one is refused.
    @Test func aTokenThatOpensOnlyReadOnlySessionsSigns() async throws {
        try tokenWithKey()
        let module = try CModule.readOnly(in: try hsm.subdirectory("read-only"), real: try hsm.privateModule())
        let owner = try await PKCS11Owner.load(try uri(module), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        let digest = Bytes32(Array(repeating: 7, count: 32))
        #expect(try await owner.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == owner.identity.address)
    }

    /// Two tokens under one label (two cards of one make, a token made again beside the old one):
    /// a URI that matches both is refused, saying how to name one, rather than used on whichever
    /// the module lists first; with serial= it names one.
    @Test func aURIThatTwoTokensMatchIsRefused() async throws {
        try hsm.initToken(token)
        try hsm.initToken(token)
        let module = try hsm.privateModule()
        let provider = PKCS11Provider.shared(modulePath: module)
        await #expect { try await provider.token(try PKCS11URI("pkcs11:token=\(token)?module-path=\(module)")) } throws: { error in
            "\(error)".contains("2 tokens match pkcs11:token=\(token)") && "\(error)".contains("add serial= or slot-id=")
        }
        let serials = try await provider.tokens().tokens.present.filter { $0.label == token }.map(\.serial)
        #expect(Set(serials).count == 2, "\(serials)")
        for serial in serials {
            #expect(try await provider.token(try PKCS11URI("pkcs11:token=\(token);serial=\(serial)?module-path=\(module)")).serial == serial)
        }
    }

    /// Counts and lengths a module answers are checked against the room it was given before
    /// they are used: read as given, 2^62 would trap the agent or have it allocate exabytes. A
    /// search that never ends (a faulty module, or a hostile `p11-kit server`) is given up on.
    /// Each is a clear error (the process running this test survives it), and once the module
    /// answers sanely again, the same owner signs.
    @Test func aModuleAnsweringImpossibleLengthsIsAnErrorNotACrash() async throws {
        try tokenWithKey()
        let directory = try hsm.subdirectory("impossible")
        let trigger = directory.appendingPathComponent("fault").path
        let module = try CModule.answeringImpossibleLengths(in: directory, real: try hsm.privateModule(), trigger: trigger)
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let owner = try await PKCS11Owner.load(try uri(module), pin: pin, defaultModule: nil)
        let digest = Bytes32(Array(repeating: 5, count: 32))
        #expect(try await owner.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == owner.identity.address)

        func faulty(_ call: String, _ operation: () async throws -> Void, _ expected: String) async throws {
            #expect(FileManager.default.createFile(atPath: "\(trigger).\(call)", contents: nil))
            do {
                try await operation()
                Issue.record("\(call) answering an impossible length went unnoticed")
            } catch { #expect("\(error)".contains(expected), "\(error)") }
            try FileManager.default.removeItem(atPath: "\(trigger).\(call)")
        }
        try await faulty("C_Sign", { _ = try await owner.sign(Self.approved(digest), prompt: Self.noPrompt) },
                         "C_Sign answered 4611686018427387904 for the signature's length (a fault of the module)")
        try await faulty("C_GetSlotList", { _ = try await PKCS11Provider.shared(modulePath: module).tokens() },
                         "C_GetSlotList answered 4611686018427387904 for the number of slots (a fault of the module)")
        try await faulty("C_GetAttributeValue", { _ = try await PKCS11Key.locate(try uri(module), pin: pin, defaultModule: nil) },
                         "C_GetAttributeValue answered 4611686018427387904 for an attribute's length (a fault of the module)")
        try await faulty("C_FindObjects", { _ = try await PKCS11Key.locate(try uri(module), pin: pin, defaultModule: nil) },
                         "C_FindObjects answered 33 for the number of objects (a fault of the module)")
        try await faulty("C_FindObjects.endless", { _ = try await PKCS11Key.locate(try uri(module), pin: pin, defaultModule: nil) },
                         "C_FindObjects answered 65568 for the objects of one search, more than the agent takes (a fault of the module)")
        // A search that fails says nothing of a label in use: no key is made on it.
        try await faulty("C_FindObjects.endless", {
            _ = try await PKCS11Key.generate(on: try PKCS11URI("pkcs11:token=\(token)?module-path=\(module)"), curve: .secp256k1, label: "unchecked",
                                             pin: pin, prompt: Self.noPrompt, defaultModule: nil)
        }, "more than the agent takes (a fault of the module)")
        await #expect { try await PKCS11Key.locate(try uri(module, object: "unchecked"), pin: pin, defaultModule: nil) } throws: { error in
            "\(error)".contains("no EC public key matches")
        }
        #expect(try await owner.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == owner.identity.address)
    }

    /// A slot list that grew between counting the slots and reading them (a reader or token
    /// plugged in at that moment) is read again: before, the lookup failed, and the agent took
    /// the module for one showing no token and initialised it again, ending its logins. A list
    /// that keeps growing is given up on after three reads.
    @Test func aSlotListThatGrowsWhileReadIsReadAgain() async throws {
        try hsm.initToken(token)
        let twice = try CModule.slotListGrowing(times: 2, in: try hsm.subdirectory("growing-twice"), real: try hsm.privateModule())
        #expect(try await PKCS11Provider.shared(modulePath: twice).tokens().tokens.present.contains { $0.label == token })
        let always = try CModule.slotListGrowing(times: 1000, in: try hsm.subdirectory("growing-always"), real: try hsm.privateModule())
        await #expect { try await PKCS11Provider.shared(modulePath: always).tokens() } throws: { error in
            "\(error)".contains("C_GetSlotList failed: CKR_BUFFER_TOO_SMALL")
        }
    }

    /// A login a person gave is kept while its token stays (the agent does not keep the PIN):
    /// looking for another token of the module that is away does not initialise the module again,
    /// which would end that login. With logins only from PIN files, it does, and sees the other
    /// token come back (SoftHSM shows a returning token only then).
    @Test func lookingForAnAbsentTokenKeepsAPersonsLoginOnAnother() async throws {
        let ownDirectory = try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "k1key", id: "01")
        let other = "\(token)-b"
        let otherDirectory = try hsm.initToken(other)
        try hsm.generateKey(token: other, label: "k1key", id: "02")
        let otherURI = { (module: String) in try PKCS11URI("pkcs11:token=\(other);object=k1key?module-path=\(module)") }
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let digest = Bytes32(Array(repeating: 8, count: 32))
        let asked = LockedBox<Int>()
        let person: SecretPrompt = { _ in
            _ = asked.increment()
            return secret(SoftHSM.userPIN)
        }

        let module = try hsm.privateModule()
        let owner = try await PKCS11Owner.load(try uri(module), pin: .prompt, defaultModule: nil)
        _ = try await owner.sign(Self.approved(digest), prompt: person)
        #expect(asked.value == 1)
        let away = try hsm.unplug(otherDirectory)
        for _ in 0..<2 {
            await #expect { _ = try await PKCS11Owner.load(try otherURI(module), pin: pin, defaultModule: nil) } throws: { error in
                guard case PKCS11Failure.tokenAbsent(let message) = error else { return false }
                return message.contains(other) && message.contains("holds a login given at approval")
            }
        }
        _ = try await owner.sign(Self.approved(digest), prompt: Self.noPrompt)

        // The same with the PIN from a file: the module is initialised again, and after the token
        // is back the next lookup finds it; the first owner logs in again from its file.
        let fileModule = try hsm.privateModule()
        let fileOwner = try await PKCS11Owner.load(try uri(fileModule), pin: pin, defaultModule: nil)
        _ = try await fileOwner.sign(Self.approved(digest), prompt: Self.noPrompt)
        await #expect { _ = try await PKCS11Owner.load(try otherURI(fileModule), pin: pin, defaultModule: nil) } throws: { error in
            guard case PKCS11Failure.tokenAbsent(let message) = error else { return false }
            return !message.contains("login given at approval")
        }
        try hsm.plugIn(away, as: otherDirectory)
        _ = try await PKCS11Owner.load(try otherURI(fileModule), pin: pin, defaultModule: nil)
        _ = try await fileOwner.sign(Self.approved(digest), prompt: Self.noPrompt)

        // A person's login on a token that is itself away is lost anyway: it does not keep the
        // module from looking for that token again under another URI (here with its serial).
        let sameModule = try hsm.privateModule()
        let personsOwner = try await PKCS11Owner.load(try uri(sameModule), pin: .prompt, defaultModule: nil)
        _ = try await personsOwner.sign(Self.approved(digest), prompt: person)
        let serial = try #require(try await PKCS11Provider.shared(modulePath: sameModule).tokens().tokens.present.first { $0.label == token }?.serial)
        let bySerial = try PKCS11URI("pkcs11:token=\(token);serial=\(serial);object=k1key?module-path=\(sameModule)")
        let ownAway = try hsm.unplug(ownDirectory)
        await #expect { _ = try await PKCS11Owner.load(bySerial, pin: pin, defaultModule: nil) } throws: { error in
            guard case PKCS11Failure.tokenAbsent(let message) = error else { return false }
            return !message.contains("login given at approval")
        }
        try hsm.plugIn(ownAway, as: ownDirectory)
        #expect(try await PKCS11Owner.load(bySerial, pin: pin, defaultModule: nil).identity.address == personsOwner.identity.address)
    }

    /// Tokens on one module come and go independently: one removed since the module last
    /// scanned its slots is left out of the list, and the others are still listed.
    @Test func aRemovedTokenDoesNotHideTheOthers() throws {
        let directory = try hsm.initToken(token)
        let other = "\(token)-b"
        try hsm.initToken(other)
        let module = try PKCS11Module(path: try hsm.privateModule())
        #expect(Set(try module.tokens().present.map(\.label)).isSuperset(of: [token, other]))
        let away = try hsm.unplug(directory)
        let listed = try module.tokens().present.map(\.label)
        #expect(listed.contains(other) && !listed.contains(token))
        try hsm.plugIn(away, as: directory)
    }

    /// A slot the module cannot describe (its C_GetTokenInfo failing with CKR_FUNCTION_FAILED,
    /// as a faulty slot or a reader in a bad state may) is set apart with its error. Before, it
    /// failed the whole list, so the agent saw no token at all, initialised the module again
    /// (ending its logins) and could not sign with the module's other tokens either.
    @Test func aSlotThatCannotBeReadDoesNotHideTheOthers() async throws {
        try tokenWithKey()
        let broken = "\(token)-broken"
        try hsm.initToken(broken)
        let module = try CModule.unreadableToken(broken, in: try hsm.subdirectory("unreadable"), real: try hsm.privateModule())
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let owner = try await PKCS11Owner.load(try uri(module), pin: pin, defaultModule: nil)
        let digest = Bytes32(Array(repeating: 9, count: 32))
        #expect(try await owner.sign(Self.approved(digest), prompt: Self.noPrompt).recoverAddress(digest: digest) == owner.identity.address)

        let listed = try await PKCS11Provider.shared(modulePath: module).tokens().tokens
        #expect(listed.present.contains { $0.label == token } && !listed.present.contains { $0.label == broken }, "\(listed.present)")
        #expect(listed.unreadable.map { "\($0.error)" } == ["C_GetTokenInfo failed: CKR_FUNCTION_FAILED"], "\(listed.unreadable)")
        await #expect { try await PKCS11Key.locate(try PKCS11URI("pkcs11:token=\(broken);object=k1key?module-path=\(module)"), pin: pin, defaultModule: nil) } throws: { error in
            "\(error)".contains("no token matching pkcs11:token=\(broken)?module-path=\(module) is present") && "\(error)".contains("cannot be read (C_GetTokenInfo failed: CKR_FUNCTION_FAILED)")
        }
    }

    /// A token named without a module is looked for in each module p11-kit knows as it is first,
    /// and only then in each initialised again, which would end its sessions and logins: a module
    /// that already shows the token wins over one listed before it that does not. A module-name
    /// narrows the search to that module.
    @Test func theModuleThatShowsATokenIsFoundBeforeAnyIsInitialisedAgain() async throws {
        let first = PKCS11Module.Registration(name: "first", path: try hsm.privateModule())
        let second = PKCS11Module.Registration(name: "second", path: try hsm.privateModule())
        let registered = [first, second]
        let early = try PKCS11URI("pkcs11:token=\(token)")
        #expect(await !PKCS11Provider.shared(modulePath: first.path).holdsToken(early, rescan: false))
        try hsm.initToken(token)
        #expect(await PKCS11Provider.shared(modulePath: second.path).holdsToken(early, rescan: false))
        #expect(try await PKCS11Provider.locate(early, defaultModule: nil, among: registered).modulePath == second.path)

        // A token neither shows yet: the first is initialised again and shows it.
        let late = "\(token)-late"
        try hsm.initToken(late)
        let lateURI = try PKCS11URI("pkcs11:token=\(late)")
        #expect(try await PKCS11Provider.locate(lateURI, defaultModule: nil, among: registered).modulePath == first.path)
        #expect(await !PKCS11Provider.shared(modulePath: second.path).holdsToken(lateURI, rescan: false))
        let bySecond = try PKCS11URI("pkcs11:token=\(late)?module-name=second")
        #expect(try await PKCS11Provider.locate(bySecond, defaultModule: nil, among: registered).modulePath == second.path)
        await #expect { try await PKCS11Provider.locate(try PKCS11URI("pkcs11:token=\(token)-absent"), defaultModule: nil, among: registered) } throws: { error in
            guard case PKCS11Failure.tokenAbsent(let message) = error else { return false }
            return message.contains("no PKCS#11 module p11-kit knows has a token matching pkcs11:token=\(token)-absent")
        }
    }

    /// A key named without a module is looked for in the modules p11-kit knows, SoftHSM among
    /// them, while an owner on the same SoftHSM library signs: the lookup must neither disturb
    /// the signer's session nor call into the library beside it. The owner names the library by
    /// another path (Debian's /usr/lib/softhsm symlink; p11-kit knows the file it points to).
    @Test func findingAKeyThroughP11KitWhileTheSameModuleSigns() async throws {
        try tokenWithKey()
        let pin = PINSource.file(try pinFile(SoftHSM.userPIN))
        let registered = try #require(PKCS11Module.registered().first { $0.path.hasSuffix("libsofthsm2.so") }?.path, "p11-kit does not know SoftHSM")
        let symlink = hsm.directory.appendingPathComponent("link-\(token)-libsofthsm2.so").path
        try FileManager.default.createSymbolicLink(atPath: symlink, withDestinationPath: registered)
        let owner = try await PKCS11Owner.load(try uri(symlink), pin: pin, defaultModule: nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for i in 0..<60 {
                    let digest = Bytes32(Array(repeating: UInt8(i), count: 32))
                    let signature = try await owner.sign(Self.approved(digest), prompt: Self.noPrompt)
                    #expect(try signature.recoverAddress(digest: digest) == owner.identity.address)
                }
            }
            group.addTask {
                for _ in 0..<15 {
                    let found = try await PKCS11Owner.load(try PKCS11URI("pkcs11:token=\(token);object=k1key"), pin: pin, defaultModule: nil)
                    #expect(found.identity.address == owner.identity.address)
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func concurrentRequestsTakeTurnsOnOneToken() async throws {
        try tokenWithKey()
        let owner = try await PKCS11Owner.load(try uri(try hsm.privateModule()), pin: .file(try pinFile(SoftHSM.userPIN)), defaultModule: nil)
        let signatures = try await withThrowingTaskGroup(of: (Bytes32, RecoverableSignature).self) { group in
            for i in 0..<24 {
                group.addTask {
                    let digest = Bytes32(Array(repeating: UInt8(i), count: 32))
                    return (digest, try await owner.sign(Self.approved(digest), prompt: Self.noPrompt))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(signatures.count == 24)
        for (digest, signature) in signatures { #expect(try signature.recoverAddress(digest: digest) == owner.identity.address) }
    }
}

/// A token in another process: `p11-kit server` exports it on a Unix socket and the agent loads
/// p11-kit-client.so. Stopping the server is the token going away; starting it again brings it back.
@Suite("PKCS#11 token behind p11-kit server", .serialized, .enabled(if: SoftHSM.isAvailable, "\(SoftHSM.unavailableReason ?? "")"))
struct PKCS11ServerTests {
    let hsm = SoftHSM.process
    let token = "srv-\(UUID().uuidString.prefix(8))"

    /// A token served by `p11-kit server` on a socket of its own, and an owner on it reached
    /// through a copy of p11-kit-client.so (its own module instance, which reads the server's
    /// address from the environment when it initialises; the suite runs its tests one by one).
    struct Served {
        var owner: PKCS11Owner
        var socket: String
    }

    func served(token: String? = nil) async throws -> Served {
        let token = token ?? self.token
        try hsm.initToken(token)
        try hsm.generateKey(token: token, label: "k1key", id: "01")
        let socket = hsm.directory.appendingPathComponent("p11-\(token).sock").path
        setenv("P11_KIT_SERVER_ADDRESS", "unix:path=\(socket)", 1)
        let client = try hsm.privateModule(SoftHSM.p11KitClient)
        let pinFile = hsm.directory.appendingPathComponent("pin-\(token)").path
        try writeSecretFile(SoftHSM.userPIN, pinFile)
        let owner = PKCS11Owner(uri: try PKCS11URI("pkcs11:token=\(token);object=k1key?module-path=\(client)"), pin: .file(pinFile),
                                address: Address(publicKey: Array(try hsm.publicPoint(token: token, id: "01").dropFirst())))
        return Served(owner: owner, socket: socket)
    }

    /// Starts the server; it prints its address once the socket is listening.
    func serve(_ socket: String, token: String? = nil) throws -> P11KitServer { try hsm.serve(token: token ?? self.token, socket: socket) }

    func sign(_ owner: PKCS11Owner, _ digest: Bytes32) async throws -> Bool {
        try await owner.sign(PKCS11OwnerTests.approved(digest), prompt: PKCS11OwnerTests.noPrompt).recoverAddress(digest: digest) == owner.identity.address
    }

    @Test func stoppingTheServerIsAClearErrorAndRestartingItHeals() async throws {
        let served = try await served()
        var server = try serve(served.socket)
        defer { server.stop() }
        let digest = Bytes32(Array(repeating: 9, count: 32))
        #expect(try await sign(served.owner, digest))

        server.stop()
        await #expect { try await served.owner.sign(PKCS11OwnerTests.approved(digest), prompt: PKCS11OwnerTests.noPrompt) } throws: { error in
            guard case OwnerSignerError.unavailable(let message) = error else { return false }
            return message.contains(token)
        }
        server = try serve(served.socket)
        #expect(try await sign(served.owner, digest))
    }

    /// A server that stops answering, frozen as a hung network HSM would be, blocks its call for
    /// ever (p11-kit-client has no timeout of its own). The caller is told after the provider's
    /// answer timeout and later callers at once; an owner behind another server signs meanwhile;
    /// and once the server answers again, so does the owner. Without the timeout this test hangs.
    /// (No SoftHSM is loaded in this process, so the test waits for no other's turn, which its
    /// time limit would count.)
    @Test(.timeLimit(.minutes(1))) func aServerThatStopsAnsweringIsAClearErrorAfterTheTimeout() async throws {
        let served = try await served()
        let server = try serve(served.socket)
        defer { server.stop() }
        #expect(try await sign(served.owner, Bytes32(Array(repeating: 1, count: 32))))
        PKCS11Provider.shared(modulePath: served.owner.uri.modulePath!).answerTimeout = .seconds(1)
        server.freeze()

        let digest = Bytes32(Array(repeating: 2, count: 32))
        for expected in ["did not answer within 1 s", "has not answered a call for over 1 s"] {
            await #expect { try await served.owner.sign(PKCS11OwnerTests.approved(digest), prompt: PKCS11OwnerTests.noPrompt) } throws: { error in
                guard case OwnerSignerError.unavailable(let message) = error else { return false }
                return message.contains(expected)
            }
        }
        let other = try await self.served(token: token + "-b")
        let otherServer = try serve(other.socket, token: token + "-b")
        defer { otherServer.stop() }
        #expect(try await sign(other.owner, digest))

        server.thaw()
        // The stuck call returns once the server runs again; until then calls fail at once.
        var answered = false
        for _ in 0..<200 where !answered {
            do { answered = try await sign(served.owner, digest) } catch OwnerSignerError.unavailable { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(answered)
    }

    /// Calls queued behind the one a frozen server holds are given up on by their callers at
    /// the timeout, and then never made: of two `owner generate`s told that the module did not
    /// answer, only the one already on its way to the server makes its key pair once the server
    /// runs again; the other's does not appear on the token later.
    @Test(.timeLimit(.minutes(1))) func callsGivenUpOnAreNotMadeWhenTheServerAnswersAgain() async throws {
        let served = try await served()
        let server = try serve(served.socket)
        defer { server.stop() }
        let digest = Bytes32(Array(repeating: 1, count: 32))
        #expect(try await sign(served.owner, digest))   // logged in, from the PIN file
        let module = served.owner.uri.modulePath!
        PKCS11Provider.shared(modulePath: module).answerTimeout = .seconds(1)
        server.freeze()
        let labels = ["late-1", "late-2"], onToken = try PKCS11URI("pkcs11:token=\(token)?module-path=\(module)"), pin = served.owner.pin
        await withTaskGroup(of: Void.self) { group in
            for label in labels {
                group.addTask {
                    await #expect(throws: PKCS11Failure.self) {
                        try await PKCS11Key.generate(on: onToken, curve: .secp256k1, label: label, pin: pin, prompt: PKCS11OwnerTests.noPrompt, defaultModule: nil)
                    }
                }
            }
        }
        server.thaw()
        var answered = false
        for _ in 0..<200 where !answered {
            do { answered = try await sign(served.owner, digest) } catch OwnerSignerError.unavailable { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(answered)
        var made: [String] = []
        for label in labels where (try? await PKCS11Key.locate(try PKCS11URI("pkcs11:token=\(token);object=\(label)?module-path=\(module)"), pin: pin, defaultModule: nil)) != nil {
            made.append(label)
        }
        #expect(made.count == 1, "\(made)")
    }

    /// The agent keeps its session without asking the token before each signature; a server
    /// that restarted between two signatures leaves that session stale, and the next signature
    /// still works on the first request (a fresh session, and the login again from the PIN file).
    @Test func aServerRestartBetweenSignaturesIsNotSeenByTheNextRequest() async throws {
        let served = try await served()
        var server = try serve(served.socket)
        defer { server.stop() }
        #expect(try await sign(served.owner, Bytes32(Array(repeating: 1, count: 32))))
        server.stop()
        server = try serve(served.socket)
        #expect(try await sign(served.owner, Bytes32(Array(repeating: 2, count: 32))))
    }

    /// The server goes away while 200 signatures are queued on the module and the first is on its
    /// way: each request gets a signature that recovers to the owner or a clear error, the
    /// process lives on, and signing works again once the server is back.
    @Test func stoppingTheServerInTheMiddleOfSigning() async throws {
        let served = try await served()
        var server = try serve(served.socket)
        defer { server.stop() }
        for i in 0..<5 { #expect(try await sign(served.owner, Bytes32(Array(repeating: UInt8(i), count: 32)))) }

        let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<200 {
                group.addTask {
                    do { return try await sign(served.owner, Bytes32(Array(repeating: UInt8(i), count: 32))) ? "signed" : "WRONG SIGNER" } catch let error as OwnerSignerError {
                        if case .unavailable = error { return "unavailable" }
                        return "other: \(error)"
                    }
                }
            }
            // At once, by system calls: long before 200 signatures at about 1 ms each are done.
            server.stop()
            return try await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
        }
        #expect(outcomes.keys.allSatisfy { ["signed", "unavailable"].contains($0) }, "\(outcomes)")
        #expect((outcomes["unavailable"] ?? 0) >= 1, "\(outcomes)")
        #expect((outcomes["signed"] ?? 0) + (outcomes["unavailable"] ?? 0) == 200)
        server = try serve(served.socket)
        #expect(try await sign(served.owner, Bytes32(Array(repeating: 2, count: 32))))
    }
}
