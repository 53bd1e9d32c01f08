import EthereumCore
import Foundation
@testable import OwnerSigners
import SmartSessions
import Synchronization
import Testing
import TestSupport

/// Passkey owners through libfido2, with soft-fido2 (`Tests/rig/fido2-authenticator.py`) behind
/// its I/O hooks as the authenticator. One authenticator call at a time in the process, as in
/// the agent, and the tap timeout is the process's: the tests take turns.
@Suite("Passkey owners on a FIDO2 authenticator", .serialized, .enabled(if: SoftFIDO2.isAvailable, "\(SoftFIDO2.unavailableReason ?? "")"))
struct FIDO2Tests {
    static func approved(_ digest: Bytes32) -> ApprovedDigest { ApprovedDigest(digest: digest, approval: "test") }

    static func randomDigest() -> Bytes32 { Bytes32((0..<32).map { _ in UInt8.random(in: 0...255) }) }

    /// Made with a tap, the passkey signs random digests, a tap each; every assertion is checked
    /// by the oracle as Rhinestone's WebAuthnValidator would check the account-mode signature
    /// (credential id bound to the account, type and challenge, rp id, user presence, low s, and
    /// the P-256 signature by pycryptodome).
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func aPasskeyMadeOnTheAuthenticatorSignsWithATap() async throws {
        let authenticator = try SoftFIDO2()
        let passkey = try await FIDO2Authenticators.create(on: authenticator.device, userName: "owner@test")
        #expect(passkey.rpID == Passkey.defaultRPID)
        #expect(authenticator.tapsAskedFor >= 1)
        let owner = PasskeyOwner(passkey: passkey)
        let account = try Address("0x" + String(repeating: "ab", count: 20))
        let credentialID = RhinestoneWebAuthn.credentialId(passkey.publicKey, account: account)
        var cases: [JSONValue] = []
        for _ in 0..<12 {
            let taps = authenticator.tapsAskedFor
            let digest = Self.randomDigest()
            let assertion = try await owner.sign(Self.approved(digest))
            #expect(authenticator.tapsAskedFor > taps, "each signature asks for a tap")
            #expect(assertion.verify(challenge: digest, publicKey: passkey.publicKey, requireUserVerification: false))
            #expect(!assertion.verify(challenge: Self.randomDigest(), publicKey: passkey.publicKey, requireUserVerification: false))
            let signature = RhinestoneWebAuthn.signature(credentialIds: [credentialID], usePrecompile: true, assertions: [assertion])
            cases.append(.object(JSONObject([
                "challenge": .string(digest.hex), "publicKey": .string(Hex.encode([4] + passkey.publicKey.x.bytes + passkey.publicKey.y.bytes)),
                "rpId": .string(passkey.rpID), "account": .string(account.checksummed), "signature": .string(Hex.encode(signature)),
            ])))
        }
        #expect(try Oracle.webAuthnVerdicts(cases, in: authenticator.directory) == Array(repeating: "ok", count: cases.count))
    }

    /// A passkey made with the authenticator's PIN asks for it (through the approval channel)
    /// and signs only with it; its assertions then say the person was verified (UV), which the
    /// oracle checks as the WebAuthnValidator does for a credential with requireUV. A wrong PIN
    /// is a wrong secret, and no PIN a secret needed: nothing is signed. A passkey made without
    /// the PIN on the same authenticator claims presence alone.
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func aPasskeyMadeWithThePINSignsWithItAndSaysThePersonWasVerified() async throws {
        let authenticator = try SoftFIDO2(pin: "4321")
        let passkey = try await FIDO2Authenticators.create(on: authenticator.device, userName: "uv", pin: SecretBytes(utf8: "4321"))
        #expect(passkey.userVerification)
        let owner = PasskeyOwner(passkey: passkey)
        guard case .needsSecret(let prompt) = await owner.readiness() else { Issue.record("no PIN asked for"); return }
        #expect(prompt.hasPrefix("PIN of the FIDO2 authenticator (\(authenticator.device))"))

        let digest = Self.randomDigest()
        let account = try Address("0x" + String(repeating: "cd", count: 20))
        let asked = Mutex<[String]>([])
        let assertion = try await owner.sign(Self.approved(digest), prompt: { text in asked.withLock { $0.append(text) }; return SecretBytes(utf8: "4321") })
        #expect(asked.withLock { $0 } == [prompt])
        #expect(assertion.authenticatorData[32] & 0x05 == 0x05)
        let signature = RhinestoneWebAuthn.signature(credentialIds: [RhinestoneWebAuthn.credentialId(passkey.publicKey, account: account)], usePrecompile: true,
                                                     assertions: [assertion])
        let install = try RhinestoneWebAuthn.installData(threshold: 1, credentials: [.init(publicKey: passkey.publicKey, requireUserVerification: true)], account: account)
        #expect(try Oracle.webAuthnVerdicts([.object(JSONObject([
            "challenge": .string(digest.hex), "publicKey": .string(Hex.encode([4] + passkey.publicKey.x.bytes + passkey.publicKey.y.bytes)),
            "rpId": .string(passkey.rpID), "account": .string(account.checksummed), "signature": .string(Hex.encode(signature)),
            "installData": .string(Hex.encode(install)), "requireUV": .bool(true),
        ]))], in: authenticator.directory) == ["ok"])

        let taps = authenticator.tapsAskedFor
        await #expect { try await owner.sign(Self.approved(digest), prompt: { _ in SecretBytes(utf8: "0000") }) } throws: { error in
            guard case OwnerSignerError.wrongSecret = error else { return false }
            return true
        }
        await #expect { try await owner.sign(Self.approved(digest)) } throws: { error in
            guard case OwnerSignerError.secretNeeded = error else { return false }
            return true
        }
        #expect(authenticator.tapsAskedFor == taps, "no tap is asked for without the right PIN")

        // An authenticator that takes the PIN but does not say it verified the person: its
        // assertion would fail a requireUV credential on chain, and is not returned.
        try authenticator.claimsUserVerification(false)
        await #expect { try await owner.sign(Self.approved(digest), prompt: { _ in SecretBytes(utf8: "4321") }) } throws: { error in
            guard case OwnerSignerError.failed(let message) = error else { return false }
            return message.contains("did not say it verified the person")
        }
        try authenticator.claimsUserVerification(true)

        let plain = try await FIDO2Authenticators.create(on: authenticator.device, userName: "up")
        #expect(!plain.userVerification)
        let presence = try await PasskeyOwner(passkey: plain).sign(Self.approved(digest))
        #expect(presence.authenticatorData[32] & 0x05 == 0x01)
    }

    /// A passkey file that names no device, with several authenticators there (one plugged in
    /// and the configured ones): each is asked, without a tap, whether it holds the credential,
    /// and the one that does signs, with the one tap. A passkey none of them holds is
    /// unavailable, saying so, and nobody was asked for a tap.
    @Test func ofSeveralAuthenticatorsTheOneHoldingThePasskeySigns() async throws {
        let first = try SoftFIDO2(), second = try SoftFIDO2(), elsewhere = try SoftFIDO2()
        var passkey = try await FIDO2Authenticators.create(on: second.device, userName: "owner")
        passkey.device = nil
        var foreign = try await FIDO2Authenticators.create(on: elsewhere.device, userName: "owner")
        foreign.device = nil
        FIDO2Authenticators.configuredDevices = [first.device, second.device]
        defer { FIDO2Authenticators.configuredDevices = [] }
        #expect(try await FIDO2Authenticators.list().map(\.path).suffix(2) == [first.device, second.device])
        let (firstTaps, secondTaps) = (first.tapsAskedFor, second.tapsAskedFor)
        let digest = Self.randomDigest()
        let assertion = try await PasskeyOwner(passkey: passkey).sign(Self.approved(digest))
        #expect(assertion.verify(challenge: digest, publicKey: passkey.publicKey, requireUserVerification: false))
        #expect(first.tapsAskedFor == firstTaps && second.tapsAskedFor == secondTaps + 1, "a tap on the holder alone")
        await #expect { try await PasskeyOwner(passkey: foreign).sign(Self.approved(digest)) } throws: { error in
            guard case OwnerSignerError.unavailable(let message) = error else { return false }
            return message.contains("none of the 2 FIDO2 authenticators there")
        }
        #expect(first.tapsAskedFor == firstTaps && second.tapsAskedFor == secondTaps + 1)
    }

    /// The passkey file keeps what signing needs and nothing secret, and reads back the same.
    @Test func aPasskeyFileReadsBackTheSame() async throws {
        let authenticator = try SoftFIDO2()
        let passkey = try await FIDO2Authenticators.create(on: authenticator.device, rpID: "owners.example", userName: "owner")
        let file = authenticator.directory.appendingPathComponent("passkey.json").path
        try passkey.json.serialized.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try Passkey.read(file) == passkey)
        #expect(try await PasskeyOwner(passkey: Passkey.read(file)).sign(Self.approved(Self.randomDigest())).authenticatorData.count >= 37)
    }

    /// What the authenticator signed is checked before it is returned: with another key in
    /// place of the passkey's (a passkey file edited, or mixed up with another), nothing is.
    @Test func anAssertionThatDoesNotVerifyIsNeverReturned() async throws {
        let authenticator = try SoftFIDO2()
        let passkey = try await FIDO2Authenticators.create(on: authenticator.device, userName: "a")
        let other = try await FIDO2Authenticators.create(on: authenticator.device, userName: "b")
        var mixed = passkey
        mixed.publicKey = other.publicKey
        await #expect { try await PasskeyOwner(passkey: mixed).sign(Self.approved(Self.randomDigest())) } throws: { error in
            guard case OwnerSignerError.failed(let message) = error else { return false }
            return message.contains("does not verify")
        }
    }

    /// The tap is the approval: refused, there is no signature, and the error is one a person
    /// can mend; tapped the next time, it signs.
    @Test func aRefusedTapSignsNothing() async throws {
        let authenticator = try SoftFIDO2()
        let passkey = try await FIDO2Authenticators.create(on: authenticator.device, userName: "owner")
        try authenticator.person(.refuses)
        await #expect { try await PasskeyOwner(passkey: passkey).sign(Self.approved(Self.randomDigest())) } throws: { error in
            guard let error = error as? OwnerSignerError, case .secretNeeded(let message) = error else { return false }
            return error.mendable && message.contains("not tapped")
        }
        try authenticator.person(.taps)
        _ = try await PasskeyOwner(passkey: passkey).sign(Self.approved(Self.randomDigest()))
    }

    /// Nobody taps: the signature is given up at the tap timeout, and the authenticator is used
    /// again at once after it.
    @Test func aTapNotGivenInTimeIsGivenUp() async throws {
        let authenticator = try SoftFIDO2()
        let passkey = try await FIDO2Authenticators.create(on: authenticator.device, userName: "owner")
        let timeout = FIDO2Authenticators.tapTimeout
        FIDO2Authenticators.tapTimeout = .seconds(2)
        defer { FIDO2Authenticators.tapTimeout = timeout }
        try authenticator.person(.isAway)
        await #expect(throws: OwnerSignerError.self) { try await PasskeyOwner(passkey: passkey).sign(Self.approved(Self.randomDigest())) }
        try authenticator.person(.taps)
        // The authenticator itself waits 15 s for the tap that never came; until then it is
        // busy, which is a clear error too.
        var outcome: Result<WebAuthnAssertion, OwnerSignerError>?
        for _ in 0..<300 {
            do { outcome = .success(try await PasskeyOwner(passkey: passkey).sign(Self.approved(Self.randomDigest()))) } catch { outcome = .failure(error) }
            guard case .failure(let error) = outcome else { break }
            #expect(error.mendable, "\(error)")
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(throws: Never.self) { try outcome?.get() }
    }

    /// Unplugged, the owner is unavailable (an error a person mends by plugging it back in); the
    /// same authenticator plugged back in signs for the passkey it made before.
    @Test func anUnpluggedAuthenticatorSignsOnceItIsBack() async throws {
        let authenticator = try SoftFIDO2()
        let passkey = try await FIDO2Authenticators.create(on: authenticator.device, userName: "owner")
        authenticator.unplug()
        await #expect { try await PasskeyOwner(passkey: passkey).sign(Self.approved(Self.randomDigest())) } throws: { error in
            guard case OwnerSignerError.unavailable(let message) = error else { return false }
            return message.contains("not there")
        }
        try authenticator.plugIn()
        let digest = Self.randomDigest()
        #expect(try await PasskeyOwner(passkey: passkey).sign(Self.approved(digest)).verify(challenge: digest, publicKey: passkey.publicKey, requireUserVerification: false))
    }

    /// Another authenticator holds no key for the passkey: it says so, rather than failing
    /// some other way.
    @Test func anotherAuthenticatorDoesNotHoldThePasskey() async throws {
        let maker = try SoftFIDO2(), other = try SoftFIDO2()
        var passkey = try await FIDO2Authenticators.create(on: maker.device, userName: "owner")
        passkey.device = other.device
        await #expect { try await PasskeyOwner(passkey: passkey).sign(Self.approved(Self.randomDigest())) } throws: { error in
            guard case OwnerSignerError.unavailable(let message) = error else { return false }
            return message.contains("does not hold this passkey")
        }
    }

    /// An authenticator on a socket that is busy with other hosts, its listen queue full, is
    /// unavailable at once: the agent's connect does not wait in the queue, where no timeout
    /// would end it.
    @Test func anAuthenticatorWithItsQueueFullIsUnavailableAtOnce() async throws {
        let authenticator = try SoftFIDO2()
        let passkey = try await FIDO2Authenticators.create(on: authenticator.device, userName: "owner")
        // Hosts that connect and say nothing: the first is served (the authenticator waits for
        // its report), the others wait in the queue until it is full.
        var hosts: [Int32] = []
        defer { hosts.forEach { close($0) } }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: authenticator.socket.utf8) }
        while hosts.count < 64 {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else {
                close(fd)
                break
            }
            hosts.append(fd)
        }
        #expect(hosts.count < 64, "the queue never filled")
        await #expect { try await PasskeyOwner(passkey: passkey).sign(Self.approved(Self.randomDigest())) } throws: { error in
            guard case OwnerSignerError.unavailable(let message) = error else { return false }
            return message.contains("not there")
        }
    }

    /// An authenticator that stops answering (frozen) is given up on after the tap timeout and
    /// a margin, not waited on for ever.
    @Test(.timeLimit(.minutes(1))) func anAuthenticatorThatHangsIsGivenUpOn() async throws {
        let authenticator = try SoftFIDO2()
        let passkey = try await FIDO2Authenticators.create(on: authenticator.device, userName: "owner")
        let timeout = FIDO2Authenticators.tapTimeout
        FIDO2Authenticators.tapTimeout = .seconds(2)
        defer { FIDO2Authenticators.tapTimeout = timeout }
        authenticator.freeze()
        await #expect(throws: OwnerSignerError.self) { try await PasskeyOwner(passkey: passkey).sign(Self.approved(Self.randomDigest())) }
        authenticator.freeze(false)
    }
}

/// The passkey file and the CBOR libfido2 wraps authenticator data in, without an authenticator.
struct PasskeyFileTests {
    @Test func malformedPasskeyFilesAreRefusedWithTheirReason() throws {
        let key = "0x04" + String(repeating: "0", count: 128)
        let cases: [(String, String)] = [
            (#"{"kind":"keystore"}"#, "kind"),
            (#"{"kind":"fido2-passkey","credentialId":"AAAA","publicKey":"0x04"}"#, "rpId"),
            (#"{"kind":"fido2-passkey","rpId":"x","credentialId":"AA=A","publicKey":"0x04"}"#, "credentialId"),
            (#"{"kind":"fido2-passkey","rpId":"x","credentialId":"AAAA","publicKey":"\#(key)"}"#, "publicKey"),
            (#"{"kind":"fido2-passkey","rpId":"x","credentialId":"AAAA","publicKey":"0x04","extra":1}"#, "unknown field extra"),
        ]
        for (text, reason) in cases {
            #expect { try Passkey(json: JSONValue(parsing: text)) } throws: { error in
                guard case OwnerSignerError.failed(let message) = error else { return false }
                return message.contains(reason)
            }
        }
    }

    @Test func authenticatorDataIsTakenOutOfItsCBORByteString() {
        let data = (0..<37).map { UInt8($0) }
        #expect(FIDO2Device.cborByteString([0x58, 37] + data) == data)
        #expect(FIDO2Device.cborByteString([0x59, 0, 37] + data) == data)
        #expect(FIDO2Device.cborByteString([0x45, 1, 2, 3, 4, 5]) == [1, 2, 3, 4, 5])
        #expect(FIDO2Device.cborByteString([0x58, 38] + data) == nil)   // shorter than it says
        #expect(FIDO2Device.cborByteString([0x78, 37] + data) == nil)   // a text string
        #expect(FIDO2Device.cborByteString([0x5f] + data) == nil)       // indefinite length
        #expect(FIDO2Device.cborByteString([]) == nil)
    }
}
