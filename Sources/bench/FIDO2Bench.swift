import EthereumCore
import Foundation
import OwnerSigners
import TestSupport

/// Owner signing with a passkey on the software authenticator the tests use (soft-fido2 on a
/// socket, behind libfido2's I/O hooks; the tap given at once): the agent's passkey owner (the
/// device opened for each signature, the assertion's DER signature parsed, s made low, and the
/// assertion verified as the WebAuthnValidator verifies it) against plain libfido2 calls: the
/// device opened and one assertion asked for. Both open the device each time: the bridge, as a
/// USB key behind one host, serves one connection at a time.
enum FIDO2Bench {
    static func run() async throws {
        if let reason = SoftFIDO2.unavailableReason {
            print("fido2: \(reason); skipped")
            return
        }
        let authenticator = try SoftFIDO2()
        let passkey = try await FIDO2Authenticators.create(on: authenticator.device, userName: "bench")
        let owner = PasskeyOwner(passkey: passkey)
        print("owner signing with a passkey (soft-fido2 on a socket, behind libfido2's I/O hooks): the agent's passkey owner vs plain libfido2 calls")
        let count = 100
        let clock = ContinuousClock()
        var plain: [Duration] = [], agent: [Duration] = [], kept: UInt8 = 0
        // Interleaved, so that a slower stretch of the machine falls on both.
        for index in 0..<count {
            let digest = keccak256(Array("fido2 bench \(index)".utf8))
            let start = clock.now
            kept ^= try FIDO2Device(path: authenticator.device, timeout: .seconds(30))
                .assertion(rpID: passkey.rpID, credentialID: passkey.credentialID, clientDataHash: digest.bytes).signature[0]
            plain.append(clock.now - start)
            let then = clock.now
            kept ^= try await owner.sign(ApprovedDigest(digest: digest, approval: "bench")).s.bytes[0]
            agent.append(clock.now - then)
        }
        let plainMedian = CardBench.median(plain), agentMedian = CardBench.median(agent)
        row("  plain libfido2: open, assertion, close; median of \(count)", plainMedian, "ms/signature")
        row("  the agent's passkey owner, median of \(count)", agentMedian, "ms/signature", ratio: agentMedian / plainMedian)
        print("  (kept \(kept))")
    }
}
