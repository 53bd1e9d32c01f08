import Crypto
import EthereumCore
import Testing
import TestSupport

@Suite("secp256k1 signatures match coincurve and eth-account")
struct Secp256k1Tests {
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func signRecoverNormalise() throws {
        let cases = try Oracle.cases("secp256k1", count: 1000)
        #expect(cases.count == 1000)
        for c in cases {
            let key = try Secp256k1.PrivateKey(hex: try c.string("privateKey"))
            let digest = try c.bytes32("digest")
            let address = try Address(try c.string("address"))
            let context = "seed \(Oracle.seed), key \(address)"
            #expect(key.address == address, "\(context)")
            #expect(key.publicKey.uncompressed == (try c.bytes("publicKey")), "\(context)")
            #expect(try Secp256k1.PublicKey(try c.bytes("compressedPublicKey")) == key.publicKey, "\(context)")

            let signature = key.sign(digest: digest)
            #expect(signature.bytes == (try c.bytes("signature")), "RFC 6979 \(context)")
            #expect(signature.hasLowS)
            #expect(try signature.recoverAddress(digest: digest) == address, "\(context)")

            // What an HSM or card hands back: DER, or r‖s with high s and no v.
            #expect(try RecoverableSignature.normalizing(external: try c.bytes("der"), digest: digest, signer: address) == signature, "\(context)")
            #expect(try RecoverableSignature.normalizing(external: try c.bytes("highS"), digest: digest, signer: address) == signature, "\(context)")

            #expect(PersonalMessage.hash(try c.bytes("message")) == (try c.bytes32("personalHash")), "\(context)")
        }
    }

    /// s = n/2 is low already (the bound is inclusive): kept as the token gave it, not turned into
    /// n - s, which is high.
    @Test func anSOfHalfTheOrderIsKept() throws {
        let digest = Keccak256.hash(utf8: "half the order")
        let r = try Secp256k1.PrivateKey(hex: "0x" + String(repeating: "22", count: 32)).sign(digest: digest).r
        let half = try Bytes32(hex: "0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0")
        let atHalf = RecoverableSignature(r: r, s: half, v: 27)
        #expect(atHalf.hasLowS)
        let signer = try atHalf.recoverAddress(digest: digest)
        #expect(try RecoverableSignature.normalizing(external: r.bytes + half.bytes, digest: digest, signer: signer) == atHalf)
    }

    /// What a token may hand back, each refused for what it is: r or s of 0 or at least n, bytes
    /// of no signature format; r ‖ s ‖ v with any v (a card's) is taken.
    @Test func externalSignaturesAreReadByTheirFormat() throws {
        let key = try Secp256k1.PrivateKey(hex: "0x" + String(repeating: "22", count: 32))
        let digest = Keccak256.hash(utf8: "external")
        let signature = key.sign(digest: digest)
        #expect(try RecoverableSignature.normalizing(external: signature.r.bytes + signature.s.bytes + [0], digest: digest, signer: key.address) == signature)
        let n = Secp256k1.order.word
        for (r, s) in [(Bytes32.zero, signature.s), (signature.r, .zero), (n, signature.s), (signature.r, n)] {
            #expect(throws: Secp256k1Error.invalidSignature("r and s must be in 1..<n")) {
                try RecoverableSignature.normalizing(external: r.bytes + s.bytes, digest: digest, signer: key.address)
            }
        }
        #expect(throws: Secp256k1Error.invalidSignature("expected DER, 64-byte r‖s or 65-byte r‖s‖v, got 63 bytes")) {
            try RecoverableSignature.normalizing(external: Array(signature.bytes.prefix(63)), digest: digest, signer: key.address)
        }
        #expect(throws: Secp256k1Error.invalidSignature("expected 65 bytes r‖s‖v, got 66")) { try RecoverableSignature(bytes: signature.bytes + [0]) }
        // ecrecover's v 0/1 and 27/28 name the same key; an X ‖ Y key without its 0x04 is read.
        var zeroV = signature
        zeroV.v -= 27
        #expect(try zeroV.recoverAddress(digest: digest) == key.address)
        #expect(try Secp256k1.PublicKey(key.publicKey.uncompressed) == key.publicKey)
        // P-256's low-s bound is inclusive too.
        let half = P256.order.shiftedRight(1)
        #expect(P256.isLowS(half.word) && !P256.isLowS(half.addingReportingOverflow(.one).partialValue.word))
    }

    /// The worked example of the spec (§11.2): owner and session keys signing raw digests, and
    /// personal_sign with v + 4 for OwnableValidator's eth_sign path.
    @Test func specWorkedExample() throws {
        let owner = try Secp256k1.PrivateKey(hex: "0x" + String(repeating: "22", count: 32))
        let session = try Secp256k1.PrivateKey(hex: "0x" + String(repeating: "11", count: 32))
        #expect(owner.address.checksummed == "0x1563915e194D8CfBA1943570603F7606A3115508")
        #expect(session.address.checksummed == "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A")

        let multichain = try Bytes32(hex: "0x73f8de6a9feaf72d8b98a3a9f275900d6747c0a50b3b104d50d59b6a9720bb8d")
        #expect(owner.sign(digest: multichain).hex == "0xe1a26d3f5e808a2c2ffdb7f16cc38e47a45b75dcad6c325d71ed54427b2c876576100955797b9fdd5761543a4f605ec10798576150634420b5ac001ea91d50cd1c")
        #expect(PersonalMessage.hash(multichain).hex == "0xffafa3965fe65ce2cce342b3b9107438eee03a5b6de0baea0a27ebc003aa3bf4")
        var ethSign = owner.sign(digest: PersonalMessage.hash(multichain))
        ethSign.v += 4
        #expect(ethSign.hex == "0x7b06b1e8f5282cfcc43b8f52981ce24a063df8992850f9c09b62b9927d215f193fecbfaf3c91fb0bc7ef0c010ed2479531be956f486cbb2948781dd5bd60b67220")

        let userOpHash = Keccak256.hash(utf8: "example-userop")
        #expect(userOpHash.hex == "0x8e91b5f32f1a03ae432f53531708a7a8f2e455f226afe00ca419de55ea70972c")
        #expect(session.sign(digest: userOpHash).hex == "0xa1f3ed90cba2de383e95f458bbd4a3697748cfebaafc7b5bbbd167d5f53df1cf62e23ad2cb81289bda8c0bfe52632530ebb7d5cd2b6607692239d0aa764409c91b")
    }

    @Test func rejectsBadKeysAndSignatures() throws {
        #expect(throws: Secp256k1Error.invalidPrivateKey) { try Secp256k1.PrivateKey(hex: "0x" + String(repeating: "00", count: 32)) }
        #expect(throws: Secp256k1Error.invalidPrivateKey) { try Secp256k1.PrivateKey(hex: "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141") }
        #expect(throws: Secp256k1Error.invalidPrivateKey) { try Secp256k1.PrivateKey(hex: "0x01") }
        #expect(throws: Secp256k1Error.invalidPublicKey) { try Secp256k1.PublicKey([0x02] + [UInt8](repeating: 0xff, count: 32)) }

        let key = Secp256k1.PrivateKey.generate()
        let digest = Keccak256.hash(utf8: "x")
        let sig = key.sign(digest: digest)
        #expect(throws: Secp256k1Error.self) { try RecoverableSignature(bytes: Array(sig.bytes.dropLast())) }
        var badV = sig
        badV.v = 29
        #expect(throws: Secp256k1Error.self) { try badV.recoverAddress(digest: digest) }
        let other = Secp256k1.PrivateKey.generate().address
        #expect(throws: Secp256k1Error.signerMismatch(expected: other)) {
            try RecoverableSignature.normalizing(external: Array(sig.bytes.prefix(64)), digest: digest, signer: other)
        }
        #expect(throws: Secp256k1Error.self) { try RecoverableSignature.normalizing(external: [0x30, 0x02, 0x00], digest: digest, signer: key.address) }
        #expect(throws: Secp256k1Error.self) {
            try RecoverableSignature.normalizing(external: [UInt8](repeating: 0, count: 64), digest: digest, signer: key.address)
        }
        #expect(!key.description.contains(Hex.encode(key.withUnsafeBytes { Array($0) }, prefix: false)))
    }

    @Test func generatedKeysAreDistinct() {
        let keys = (0..<50).map { _ in Secp256k1.PrivateKey.generate().address }
        #expect(Set(keys).count == 50)
    }
}

@Suite("P-256 verification over prehashed digests, low s")
struct P256Tests {
    @Test func verifiesSwiftCryptoSignatures() throws {
        for _ in 0..<200 {
            let signing = Crypto.P256.Signing.PrivateKey()
            let message = Array("authenticatorData||clientDataHash \(Int.random(in: 0...1_000_000))".utf8)
            let digest = Bytes32(Array(SHA256.hash(data: message)))
            let raw = Array(try signing.signature(for: message).rawRepresentation)
            let r = Bytes32(raw[0..<32]), s = Bytes32(raw[32..<64])
            let key = try EthereumCore.P256.PublicKey(Array(signing.publicKey.x963Representation))
            #expect(key.isValidSignature(r: r, s: s, digest: digest))
            let low = try EthereumCore.P256.normalizedS(s)
            #expect(EthereumCore.P256.isLowS(low))
            #expect(key.isValidSignature(r: r, s: low, digest: digest))
            #expect(!key.isValidSignature(r: r, s: s, digest: Keccak256.hash(digest.bytes)))
            #expect(try EthereumCore.P256.PublicKey(Array(signing.publicKey.compressedRepresentation)) == key)
        }
        #expect(throws: P256Error.invalidPublicKey) { try EthereumCore.P256.PublicKey([UInt8](repeating: 1, count: 64)) }
        #expect(throws: P256Error.self) { try EthereumCore.P256.normalizedS(EthereumCore.P256.order.word) }
    }
}
