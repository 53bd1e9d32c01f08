import CPKCS11
import EthereumCore
import Foundation
import OwnerSigners

/// Owner signing on a SoftHSM2 key through the agent's PKCS#11 owner (serial queue hop, kept
/// session and login, CKM_ECDSA, low s, v by trial recovery and the address check) against a
/// plain C_SignInit + C_Sign loop on the same key, for secp256k1 and P-256.
enum HSMBench {
    static let pin = "123456"

    static func run(directory: String) async throws {
        guard let module = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"].first(where: FileManager.default.fileExists) else {
            print("pkcs11: SoftHSM2 is not installed (apt install softhsm2); skipped")
            return
        }
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory + "/tokens", withIntermediateDirectories: true)
        try "directories.tokendir = \(directory)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n".write(toFile: directory + "/softhsm2.conf", atomically: true, encoding: .utf8)
        setenv("SOFTHSM2_CONF", directory + "/softhsm2.conf", 1)
        let util = Process()
        util.executableURL = URL(fileURLWithPath: "/usr/bin/softhsm2-util")
        util.arguments = ["--init-token", "--free", "--label", "bench", "--so-pin", "12345678", "--pin", pin]
        util.standardOutput = FileHandle.nullDevice
        try util.run()
        util.waitUntilExit()
        try pin.write(toFile: directory + "/pin", atomically: true, encoding: .utf8)

        print("owner signing on SoftHSM2 (\(module)): the agent's PKCS#11 owner vs a plain C_SignInit + C_Sign loop")
        let token = try PKCS11URI("pkcs11:token=bench").with(modulePath: module)
        let noPrompt: SecretPrompt = { _ in throw PKCS11Failure.pinNeeded("bench") }
        for curve in PKCS11Curve.allCases {
            let key = try await PKCS11Key.generate(on: token, curve: curve, label: "bench-\(curve)", pin: .file(directory + "/pin"), prompt: noPrompt, defaultModule: nil)
            let digests = (0..<64).map { i in Keccak256.hash([UInt8(i)]) }
            let direct = try plainLoop(module: module, keyID: key.info.id, digests: digests, seconds: 2)
            let agent: Double
            switch curve {
            case .secp256k1:
                let owner = try PKCS11Owner(key)
                agent = try await timed(seconds: 2) { i in _ = try await owner.sign(ApprovedDigest(digest: digests[i % 64], approval: "bench"), prompt: noPrompt) }
            case .p256:
                agent = try await timed(seconds: 2) { i in _ = try await key.signP256(digest: digests[i % 64], prompt: noPrompt) }
            }
            // Where the difference goes: the handoff to the module's queue alone, and the same bare
            // C_SignInit + C_Sign run there (a signature computed right after a thread handoff).
            let hop = try await timed(seconds: 1) { _ in _ = try await key.provider.withSession(key.uri) { _, _ throws(PKCS11Failure) in 0 } }
            let handle = try await key.provider.withLogin(key.uri, pin: key.pin, prompt: noPrompt) { session, _ throws(PKCS11Failure) in
                guard let found = try? session.find([PKCS11Attribute(.privateKey), PKCS11Attribute(.id, key.info.id)]).first else { throw .keyNotFound("bench key") }
                return found
            }
            let queued = try await timed(seconds: 2) { i in
                _ = try await key.provider.withSession(key.uri) { session, _ throws(PKCS11Failure) in
                    do { return try session.signECDSA(key: handle, digest: digests[i % 64].bytes) } catch { throw .failed("\(error)") }
                }
            }
            row("  \(curve.rawValue): plain C_SignInit + C_Sign loop", direct * 1e6, "µs/signature")
            row("  \(curve.rawValue): handoff to the module's queue alone", hop * 1e6, "µs")
            row("  \(curve.rawValue): C_SignInit + C_Sign on the module's queue", queued * 1e6, "µs/signature", ratio: queued / direct)
            row("  \(curve.rawValue): agent owner signer (\(curve == .secp256k1 ? "low s, v, address check" : "low s"))", agent * 1e6, "µs/signature", ratio: agent / direct)
        }
    }

    /// Mean seconds per call of `body`, called in sequence (latency, not throughput).
    static func timed(seconds: Double, _ body: (Int) async throws -> Void) async throws -> Double {
        for i in 0..<20 { try await body(i) }
        let clock = ContinuousClock(), start = clock.now
        var count = 0
        while clock.now - start < .milliseconds(Int64(seconds * 1000)) {
            try await body(count)
            count += 1
        }
        return AgentBench.seconds(clock.now - start) / Double(count)
    }

    /// The reference: the module's own function list, a logged-in session, the key found once,
    /// then C_SignInit + C_Sign in a loop. No agent code.
    static func plainLoop(module path: String, keyID: [UInt8], digests: [Bytes32], seconds: Double) throws -> Double {
        guard let f = p11_kit_module_load(path, Int32(P11_KIT_MODULE_UNMANAGED)) else { throw BenchFailure("cannot load \(path)") }
        let initialized = p11_kit_module_initialize(f)
        guard initialized == CKR_OK || initialized == CKR_CRYPTOKI_ALREADY_INITIALIZED else { throw BenchFailure("C_Initialize: \(initialized)") }
        var count: CK_ULONG = 8
        var slots = [CK_SLOT_ID](repeating: 0, count: 8)
        _ = f.pointee.C_GetSlotList(CK_BBOOL(CK_TRUE), &slots, &count)
        var session: CK_SESSION_HANDLE = 0
        var found: CK_OBJECT_HANDLE = 0
        for slot in slots.prefix(Int(count)) where f.pointee.C_OpenSession(slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &session) == CKR_OK {
            var pinBytes = Array(pin.utf8)
            let login = f.pointee.C_Login(session, CK_USER_TYPE(CKU_USER), &pinBytes, CK_ULONG(pinBytes.count))
            guard login == CKR_OK || login == CKR_USER_ALREADY_LOGGED_IN else { continue }
            var keyClass = CK_OBJECT_CLASS(CKO_PRIVATE_KEY)
            var id = keyID
            let objectCount: CK_ULONG = withUnsafeMutableBytes(of: &keyClass) { cls in
                id.withUnsafeMutableBytes { idp in
                    var template = [CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_CLASS), pValue: cls.baseAddress, ulValueLen: CK_ULONG(cls.count)),
                                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_ID), pValue: idp.baseAddress, ulValueLen: CK_ULONG(idp.count))]
                    var n: CK_ULONG = 0
                    _ = f.pointee.C_FindObjectsInit(session, &template, 2)
                    _ = f.pointee.C_FindObjects(session, &found, 1, &n)
                    _ = f.pointee.C_FindObjectsFinal(session)
                    return n
                }
            }
            if objectCount == 1 { break }
        }
        guard found != 0 else { throw BenchFailure("the bench key is not on the token") }
        defer { _ = f.pointee.C_CloseSession(session) }
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_ECDSA), pParameter: nil, ulParameterLen: 0)
        var signature = [UInt8](repeating: 0, count: 64)
        var inputs = digests.map(\.bytes)
        let clock = ContinuousClock(), start = clock.now
        var n = 0
        while clock.now - start < .milliseconds(Int64(seconds * 1000)) {
            var length = CK_ULONG(64)
            guard f.pointee.C_SignInit(session, &mechanism, found) == CKR_OK,
                  f.pointee.C_Sign(session, &inputs[n % 64], 32, &signature, &length) == CKR_OK
            else { throw BenchFailure("C_Sign failed") }
            n += 1
        }
        return AgentBench.seconds(clock.now - start) / Double(n)
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
