import Agent
import Approval
import CPKCS11
import EthereumCore
import Foundation
import OwnerSigners
import SessionStore
import TestSupport

/// Owner signing on a SoftHSM2 key through the agent's PKCS#11 owner (serial queue hop, kept
/// session and login, CKM_ECDSA, low s, then v by trial recovery and the address check, or for
/// P-256 the verification) against a plain C_SignInit + C_Sign loop on the same key, for
/// secp256k1 and P-256; then both again with the token in another process behind
/// `p11-kit server`, as a network HSM would be.
enum HSMBench {
    static func run(directory: String) async throws {
        if let reason = SoftHSM.unavailableReason {
            print("pkcs11: \(reason); skipped")
            return
        }
        let hsm = SoftHSM.process   // its configuration is the one this process's SoftHSM reads
        let module = SoftHSM.systemModule!
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let tokenDirectory = try hsm.initToken("bench")
        let pin = PINSource.file(directory + "/pin")
        try writeSecretFile(SoftHSM.userPIN, directory + "/pin")

        print("owner signing on SoftHSM2 (\(module)): the agent's PKCS#11 owner vs a plain C_SignInit + C_Sign loop")
        let token = try PKCS11URI("pkcs11:token=bench").with(modulePath: module)
        var keys: [PKCS11Key] = []
        for curve in PKCS11Curve.allCases {
            keys.append(try await PKCS11Key.generate(on: token, curve: curve, label: "bench-\(curve)", pin: pin, prompt: noPrompt, defaultModule: nil))
        }
        for key in keys { try await compare(key, detail: true) }
        try await looks(for: keys[0])
        try await sessionRequests(owner: keys[0], directory: directory)
        try await removals(of: tokenDirectory, owner: keys[0], hsm: hsm)

        // The same keys through p11-kit's RPC, as for a token served from another process or container.
        let socket = directory + "/p11-kit.sock"
        let server = try hsm.serve(token: "bench", socket: socket)
        defer { server.stop() }
        setenv("P11_KIT_SERVER_ADDRESS", "unix:path=" + socket, 1)
        print("the same keys in another process, through p11-kit server and \(SoftHSM.p11KitClient)")
        var served: [PKCS11Key] = []
        for key in keys {
            var uri = key.uri.with(modulePath: SoftHSM.p11KitClient)
            uri.pinSource = nil
            served.append(try await PKCS11Key.locate(uri, pin: key.pin, defaultModule: nil))
            try await compare(served.last!, detail: false)
        }
        try await looks(for: served[0])
    }

    /// The look the agent makes once a second for the token of a store it wraps (each slot's
    /// C_GetSlotInfo, then each present token's C_GetTokenInfo), and C_GetSlotInfo alone: what
    /// a slot without a token (a reader without its card) adds to each look.
    static func looks(for key: PKCS11Key) async throws {
        let provider = key.provider, token = key.uri.tokenOnly
        let look = try await timed(seconds: 1) { _ in
            guard await provider.holdsToken(token, rescan: false) else { throw BenchFailure("the bench token is not found") }
        }
        let plain = try PlainSigner(module: provider.modulePath, keyID: key.info.id)
        let slotInfo = try await timed(seconds: 1) { _ in try plain.slotInfo() }
        row("  a look for a token-wrapped store's token (the agent's, once a second)", look * 1e6, "µs")
        row("  C_GetSlotInfo alone: what each slot without a token adds to a look", slotInfo * 1e6, "µs")
    }

    static let noPrompt: SecretPrompt = { _ in throw PKCS11Failure.pinNeeded("bench") }
    static let digests = (0..<64).map { i in Keccak256.hash([UInt8(i)]) }
    /// The `i`th signature's digest, as the agent hands it to an owner once a request is approved.
    static func approved(_ i: Int) -> ApprovedDigest { ApprovedDigest(digest: digests[i % 64], approval: "bench") }

    /// The agent's owner signer on `key` against the plain loop on the same module and key; with
    /// `detail`, also the parts the difference is made of.
    static func compare(_ key: PKCS11Key, detail: Bool) async throws {
        let curve = key.info.curve
        let plain = try PlainSigner(module: key.provider.modulePath, keyID: key.info.id)
        // The check the agent makes of what the token returned: for secp256k1 low s, v by trial
        // recovery and the address; for P-256 low s and the verification under the public key.
        let check: ([UInt8], Int) throws -> Void
        let sign: (Int) async throws -> Void
        switch curve {
        case .secp256k1:
            let owner = try PKCS11Owner(key)
            check = { raw, i in _ = try RecoverableSignature.normalizing(external: raw, digest: digests[i % 64], signer: owner.address!) }
            sign = { i in _ = try await owner.sign(approved(i), prompt: noPrompt) }
        case .p256:
            // The owner of a WebAuthnValidator account: the WebAuthn data written, their hash
            // signed, the assertion checked under the key.
            let owner = try PKCS11Owner(key)
            check = { raw, i in _ = try key.checkedP256(raw, digest: digests[i % 64]) }
            sign = { i in _ = try await owner.ownerSignature(approved(i), prompt: noPrompt) }
        }
        // With `detail`, the same plain loop with each signature handed to a dispatch queue (as
        // the agent's module queue does), and that loop with each signature checked once it is
        // back (as the agent checks it), alternate with the other two.
        let queue = DispatchQueue(label: "bench")
        let onQueue = { (i: Int) async throws -> [UInt8] in
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<[UInt8], Error>) in queue.async { done.resume(with: Result { try plain.sign(i) }) } }
        }
        let loops: [(Int) async throws -> Void] = detail
            ? [{ i in try plain.sign(i) }, { i in _ = try await onQueue(i) }, { i in try check(try await onQueue(i), i) }, sign]
            : [{ i in try plain.sign(i) }, sign]
        let rounds = try await interleaved(loops)
        let direct = rounds.map { $0[0] }, agent = rounds.map { $0.last! }
        let ratios = zip(agent, direct).map { $0 / $1 }.sorted()
        row("  \(curve.rawValue): plain C_SignInit + C_Sign loop", direct.median * 1e6, "µs/signature")
        var beyond: [Double] = []
        if detail {
            // Where the difference goes: the handoff, the check (alone, in a loop that keeps it
            // in the caches, and where the agent makes it), and what is left.
            let queued = rounds.map { $0[1] }, checked = rounds.map { $0[2] }
            let hop = try await timed(seconds: 1) { _ in _ = try await key.provider.withSession(key.uri) { _, _ throws(PKCS11Failure) in 0 } }
            row("  \(curve.rawValue): the same loop, each signature on a dispatch queue", queued.median * 1e6, "µs/signature",
                ratio: zip(queued, direct).map { $0 / $1 }.median)
            row("  \(curve.rawValue): the handoff to the module's queue alone", hop * 1e6, "µs")
            let raw = try await (0..<64).asyncMap { i in try await key.signRaw(digest: digests[i].bytes, prompt: noPrompt) }
            let alone = try await timed(seconds: 1) { i in try check(raw[i % 64], i) }
            row("  \(curve.rawValue): the check alone, in a loop (\(curve == .secp256k1 ? "low s, v, address" : "low s, verification"))", alone * 1e6, "µs")
            if curve == .secp256k1 {
                // The least any check that the signature recovers to the owner can cost, beside
                // what the 5 % goal leaves for the whole of the agent.
                let address = key.info.address!
                let signatures = try raw.indices.map { i in try RecoverableSignature.normalizing(external: raw[i], digest: digests[i], signer: address) }
                let recovery = try await timed(seconds: 1) { i in _ = try signatures[i % 64].recoverAddress(digest: digests[i % 64]) }
                row("  \(curve.rawValue): one recovery of the address alone", recovery * 1e6, "µs")
            }
            row("  \(curve.rawValue): 5 % of the plain loop, the goal's whole budget", 0.05 * direct.median * 1e6, "µs")
            row("  \(curve.rawValue): the loop on a queue, each signature checked once back", checked.median * 1e6, "µs/signature",
                ratio: zip(checked, direct).map { $0 / $1 }.median)
            beyond = rounds.map { round in (round[3] - round[2]) / round[0] }.sorted()
        }
        row("  \(curve.rawValue): agent owner signer (\(curve == .secp256k1 ? "low s, v, address check" : "low s, verification"))", agent.median * 1e6, "µs/signature", ratio: ratios.median)
        print("    ratio of each of the \(ratios.count) alternating rounds: " + ratios.map { String(format: "%.2f", $0) }.joined(separator: " "))
        if !beyond.isEmpty {
            // The goal the issue might be restated to: what the agent adds beyond the mandated
            // check and one handoff off the cooperative pool, round by round.
            row("  \(curve.rawValue): agent beyond the checked loop on a queue", beyond.median * direct.median * 1e6, "µs", ratio: 1 + beyond.median)
            print("    that ratio in each round: " + beyond.map { String(format: "%.2f", 1 + $0) }.joined(separator: " "))
        }
        // A leak in the C wrapping (a buffer, a session or a handle left behind per call) would
        // show as growth here; the rounds above have warmed every cache the signer keeps.
        let count = 10_000, before = residentKiB(), descriptors = openDescriptors()
        for i in 0..<count { try await sign(i) }
        row("  \(curve.rawValue): resident memory after \(count) more agent signatures", Double(residentKiB() - before), "KiB more")
        row("  \(curve.rawValue): open descriptors after them", Double(openDescriptors() - descriptors), "more")
    }

    /// The token taken away and brought back again and again, with a signature tried while it
    /// is away (which fails) and one after it is back (which must work): each return makes the
    /// agent drop its session and login and open new ones, which must leave nothing behind.
    static func removals(of token: URL, owner key: PKCS11Key, hsm: SoftHSM) async throws {
        let owner = try PKCS11Owner(key)
        let sign = { (i: Int) in try await owner.sign(approved(i), prompt: noPrompt) }
        let cycles = 500
        func cycle(_ i: Int) async throws {
            let away = try hsm.unplug(token)
            if (try? await sign(i)) != nil { throw BenchFailure("a signature with the token away") }
            try hsm.plugIn(away, as: token)
            _ = try await sign(i)
        }
        for i in 0..<20 { try await cycle(i) }
        let clock = ContinuousClock(), start = clock.now, before = residentKiB(), descriptors = openDescriptors()
        for i in 0..<cycles { try await cycle(i) }
        let curve = key.info.curve.rawValue
        row("  \(curve): a removal, a failed signature, the return and a signature", AgentBench.seconds(clock.now - start) / Double(cycles) * 1e6, "µs/cycle")
        row("  \(curve): resident memory after \(cycles) more of those cycles", Double(residentKiB() - before), "KiB more")
        row("  \(curve): open descriptors after them", Double(openDescriptors() - descriptors), "more")
    }

    /// This process's open descriptors: a session or a connection to p11-kit server left
    /// behind per signature or per return of the token would show here.
    static func openDescriptors() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).count }

    /// VmRSS of this process.
    static func residentKiB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return line.split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { Int($0) } ?? 0
    }

    /// The loops in alternating short rounds, so that a slow spell of the machine (a VM's
    /// neighbours, frequency changes) falls on all of them: each round's seconds per call of each.
    static func interleaved(rounds: Int = 10, seconds: Double = 0.2, _ loops: [(Int) async throws -> Void]) async throws -> [[Double]] {
        var times: [[Double]] = []
        for _ in 0..<rounds {
            var round: [Double] = []
            for loop in loops { round.append(try await timed(seconds: seconds, loop)) }
            times.append(round)
        }
        return times
    }

    /// What the owner's signature is part of: a whole session request that the rules approve,
    /// with the token's secp256k1 key as the owner (compile, review, rules, the token's
    /// signature and its check, the durable insert into the store).
    static func sessionRequests(owner key: PKCS11Key, directory: String) async throws {
        let store = try SessionStore(path: directory + "/store.sqlite")
        try store.initialize(passphrase: secret("bench"), scryptN: 1024)
        let owner = try PKCS11Owner(key)
        let account = AccountConfig(address: AgentBench.account, kind: .erc7579Reference, owners: [owner.key], chains: [AgentBench.chain])
        let agent = Agent(store: store, owners: [owner], accounts: [account], rules: try RulesFile(toml: "default = \"approve\""), ownerPrompt: noPrompt)
        let me = ClientIdentity(uid: getuid(), gid: getgid(), pid: getpid())
        let request: JSONValue = .object(JSONObject([
            "account": .string(AgentBench.account.checksummed), "chains": .array([JSONValue(Int(AgentBench.chain))]),
            "permissions": .array([AgentBench.sessions[1].permission]),
        ]))
        let latency = try await timed(seconds: 2) { _ in
            let decided = try await agent.request(request, client: me)
            guard decided.status == .approved else { throw BenchFailure("bench request not approved: \(decided.reason)") }
        }
        row("  secp256k1: a whole session request the rules approve (Agent.request)", latency * 1e6, "µs/request")
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
}

/// The reference: the module's own function list, a logged-in session, the key found once, then
/// C_SignInit + C_Sign per signature. No agent code.
final class PlainSigner: @unchecked Sendable {
    let f: UnsafeMutablePointer<CK_FUNCTION_LIST>
    var session: CK_SESSION_HANDLE = 0
    var slot: CK_SLOT_ID = 0
    var key: CK_OBJECT_HANDLE = 0
    let inputs = HSMBench.digests.map(\.bytes)

    init(module path: String, keyID: [UInt8]) throws {
        guard let f = p11_kit_module_load(path, Int32(P11_KIT_MODULE_UNMANAGED)) else { throw BenchFailure("cannot load \(path)") }
        self.f = f
        let initialized = p11_kit_module_initialize(f)
        guard initialized == CKR_OK || initialized == CKR_CRYPTOKI_ALREADY_INITIALIZED else { throw BenchFailure("C_Initialize: \(initialized)") }
        var count: CK_ULONG = 8
        var slots = [CK_SLOT_ID](repeating: 0, count: 8)
        _ = f.pointee.C_GetSlotList(CK_BBOOL(CK_TRUE), &slots, &count)
        for slot in slots.prefix(Int(count)) where f.pointee.C_OpenSession(slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &session) == CKR_OK {
            var pinBytes = Array(SoftHSM.userPIN.utf8)
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
                    _ = f.pointee.C_FindObjects(session, &key, 1, &n)
                    _ = f.pointee.C_FindObjectsFinal(session)
                    return n
                }
            }
            if objectCount == 1 {
                self.slot = slot
                return
            }
        }
        throw BenchFailure("the bench key is not on the token")
    }

    // The module stays loaded: the agent's provider shares it in this process.
    deinit { _ = f.pointee.C_CloseSession(session) }

    func slotInfo() throws {
        var info = CK_SLOT_INFO()
        guard f.pointee.C_GetSlotInfo(slot, &info) == CKR_OK else { throw BenchFailure("C_GetSlotInfo failed") }
    }

    @discardableResult func sign(_ i: Int) throws -> [UInt8] {
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_ECDSA), pParameter: nil, ulParameterLen: 0)
        var signature = [UInt8](repeating: 0, count: 64)
        var length = CK_ULONG(64)
        var input = inputs[i % 64]
        guard f.pointee.C_SignInit(session, &mechanism, key) == CKR_OK, f.pointee.C_Sign(session, &input, 32, &signature, &length) == CKR_OK
        else { throw BenchFailure("C_Sign failed") }
        return signature
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Array where Element == Double {
    var median: Double {
        let sorted = self.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
