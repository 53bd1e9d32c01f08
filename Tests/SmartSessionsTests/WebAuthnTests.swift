import Crypto
import EthereumCore
import SmartSessions
import Testing

@Suite("WebAuthn signature formats of the Rhinestone and ZeroDev validators")
struct WebAuthnTests {
    /// An assertion as an authenticator would make it for `challenge`.
    static func assert(_ challenge: Bytes32, key: Crypto.P256.Signing.PrivateKey, flags: UInt8 = 0x05) throws -> WebAuthnAssertion {
        let authenticatorData = [UInt8](repeating: 0x11, count: 32) + [flags, 0, 0, 0, 9]
        let clientData = #"{"type":"webauthn.get","challenge":""# + WebAuthnAssertion.base64url(challenge.bytes) + #"","origin":"https://example.org"}"#
        let signed = authenticatorData + Array(SHA256.hash(data: Array(clientData.utf8)))
        let raw = Array(try key.signature(for: signed).rawRepresentation)
        return WebAuthnAssertion(authenticatorData: authenticatorData, clientDataJSON: clientData, challengeIndex: 23, typeIndex: 1,
                                 r: Bytes32(raw[0..<32]), s: try EthereumCore.P256.normalizedS(Bytes32(raw[32..<64])))
    }

    @Test func base64url() {
        #expect(WebAuthnAssertion.base64url([0xfb, 0xff]) == "-_8")
        #expect(WebAuthnAssertion.base64url(Array("hello".utf8)) == "aGVsbG8")
        #expect(WebAuthnAssertion.base64url(Bytes32.zero.bytes).count == 43)
    }

    @Test func assertionsVerifyAndTamperingFails() throws {
        let key = Crypto.P256.Signing.PrivateKey()
        let publicKey = try EthereumCore.P256.PublicKey(Array(key.publicKey.x963Representation))
        let challenge = Keccak256.hash(utf8: "userOpHash")
        let assertion = try Self.assert(challenge, key: key)
        #expect(assertion.verify(challenge: challenge, publicKey: publicKey, requireUserVerification: true))
        #expect(!assertion.verify(challenge: Keccak256.hash(utf8: "other"), publicKey: publicKey, requireUserVerification: true))
        var highS = assertion
        highS.s = EthereumCore.P256.order.subtractingReportingOverflow(UInt256(assertion.s)).partialValue.word
        #expect(!highS.verify(challenge: challenge, publicKey: publicKey, requireUserVerification: true), "high s is refused")
        let noUV = try Self.assert(challenge, key: key, flags: 0x01)
        #expect(noUV.verify(challenge: challenge, publicKey: publicKey, requireUserVerification: false))
        #expect(!noUV.verify(challenge: challenge, publicKey: publicKey, requireUserVerification: true))
        var moved = assertion
        moved.typeIndex = 2
        #expect(!moved.verify(challenge: challenge, publicKey: publicKey, requireUserVerification: true))
        // Indexes a signature may carry, decoded from uint256: refused, not a trap.
        for index in [Int.max, Int.max - 20, -1, assertion.clientDataJSON.utf8.count] {
            var typeAt = assertion, challengeAt = assertion
            typeAt.typeIndex = index
            challengeAt.challengeIndex = index
            #expect(!typeAt.verify(challenge: challenge, publicKey: publicKey, requireUserVerification: true), "\(index)")
            #expect(!challengeAt.verify(challenge: challenge, publicKey: publicKey, requireUserVerification: true), "\(index)")
        }
        let decoded = try RhinestoneWebAuthn.decodeSignature(RhinestoneWebAuthn.signature(credentialIds: [.zero], usePrecompile: false, assertions: [{
            var far = assertion
            far.challengeIndex = Int.max
            return far
        }()]))
        #expect(decoded.assertions[0].challengeIndex == Int.max && !decoded.assertions[0].verify(challenge: challenge, publicKey: publicKey, requireUserVerification: true))
    }

    @Test func encodingsRoundTrip() throws {
        let key = Crypto.P256.Signing.PrivateKey()
        let publicKey = try EthereumCore.P256.PublicKey(Array(key.publicKey.x963Representation))
        let account = try Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
        let assertion = try Self.assert(Keccak256.hash(utf8: "h"), key: key)
        let id = RhinestoneWebAuthn.credentialId(publicKey, account: account)
        #expect(id == Keccak256.hash(publicKey.x.bytes + publicKey.y.bytes + account.word.bytes))
        let sig = RhinestoneWebAuthn.signature(credentialIds: [id], usePrecompile: true, assertions: [assertion])
        let decoded = try RhinestoneWebAuthn.decodeSignature(sig)
        #expect(decoded.credentialIds == [id] && decoded.usePrecompile && decoded.assertions == [assertion])
        let install = try RhinestoneWebAuthn.installData(threshold: 1, credentials: [.init(publicKey: publicKey, requireUserVerification: true)], account: account)
        #expect(install.count == 32 * 6)
        #expect(throws: SmartSessionError.self) { try RhinestoneWebAuthn.installData(threshold: 2, credentials: [.init(publicKey: publicKey, requireUserVerification: true)], account: account) }

        let zeroDev = ZeroDevWebAuthn.signature(assertion, usePrecompiled: false)
        let back = try ZeroDevWebAuthn.decodeSignature(zeroDev)
        #expect(back.assertion == assertion && !back.usePrecompiled)
        #expect(ZeroDevWebAuthn.installData(publicKey, authenticatorId: "cred-1").count == 96)
        #expect(throws: SmartSessionError.self) { try ZeroDevWebAuthn.decodeSignature(Array(zeroDev.dropLast())) }
    }

    /// What ZeroDev's validator accepts (spec §6.5): user presence and verification, the
    /// backup state only with backup eligibility, the challenge at offset 23.
    @Test func zeroDevAcceptsOnlyAVerifiedPersonsAssertion() throws {
        let key = Crypto.P256.Signing.PrivateKey()
        let publicKey = try EthereumCore.P256.PublicKey(Array(key.publicKey.x963Representation))
        let challenge = Keccak256.hash(utf8: "kernel hash")
        for (flags, accepted) in [(0x05, true), (0x0D, true), (0x1D, true), (0x01, false), (0x04, false), (0x15, false)] as [(UInt8, Bool)] {
            #expect(ZeroDevWebAuthn.accepts(try Self.assert(challenge, key: key, flags: flags), challenge: challenge, key: publicKey) == accepted, "flags \(flags)")
        }
        #expect(!ZeroDevWebAuthn.accepts(try Self.assert(challenge, key: key), challenge: Keccak256.hash(utf8: "other"), key: publicKey))
    }
}
