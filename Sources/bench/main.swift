// Throughput figures for the Ethereum core, each next to a C reference where one exists.
// Run with `swift run -c release bench` (or scripts/bench.sh); debug builds are meaningless.
import COpenSSL
import CSecp256k1
import EthereumCore
import SmartSessions
import Foundation

/// Runs `body` in batches until `seconds` have passed; returns operations per second.
func measure(seconds: Double = 1.0, batch: Int, _ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    for _ in 0..<batch { body() }   // warm-up
    var operations = 0
    let start = clock.now
    var elapsed = Duration.zero
    while elapsed < .milliseconds(Int64(seconds * 1000)) {
        for _ in 0..<batch { body() }
        operations += batch
        elapsed = clock.now - start
    }
    let s = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Double(operations) / s
}

func row(_ label: String, _ value: Double, _ unit: String, ratio: Double? = nil) {
    let v = value >= 100 ? String(Int(value.rounded())) : String(format: "%.2f", value)
    var line = label.padding(toLength: 72, withPad: " ", startingAt: 0) + v.leftPad(12) + " " + unit
    if let ratio { line += "   ratio " + String(format: "%.2f", ratio) }
    print(line)
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

var sink: UInt8 = 0   // keeps results alive so the optimiser cannot drop the work

/// `bench [keccak] [secp256k1] [abi] [sessions] [agent] [audit] [chain] [pkcs11] [card] [fido2]`: the named sections, or all of them.
let sections = Set(CommandLine.arguments.dropFirst())
func wants(_ section: String) -> Bool { sections.isEmpty || sections.contains(section) || (section == "sessions" && sections.contains("review")) }

// MARK: keccak-256 vs OpenSSL SHA3-256 (the same Keccak-f[1600] permutation, hand-tuned assembly)
if wants("keccak") {
print("keccak-256 (Swift) vs SHA3-256 (OpenSSL \(String(cString: OpenSSL_version(Int32(OPENSSL_VERSION))!)))")
let sha3 = EVP_sha3_256()
let ctx = EVP_MD_CTX_new()!
for size in [64, 1024] {
    let message = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    let ours = measure(batch: 1000) { sink ^= Keccak256.hash(message)[0] }
    var digest = [UInt8](repeating: 0, count: 32)
    var length: UInt32 = 0
    let theirs = measure(batch: 1000) {
        EVP_DigestInit_ex2(ctx, sha3, nil)
        EVP_DigestUpdate(ctx, message, message.count)
        EVP_DigestFinal_ex(ctx, &digest, &length)
        sink ^= digest[0]
    }
    row("  keccak-256, \(size) B messages", ours * Double(size) / 1e6, "MB/s")
    row("  OpenSSL SHA3-256, \(size) B messages", theirs * Double(size) / 1e6, "MB/s", ratio: ours / theirs)
}
EVP_MD_CTX_free(ctx)
}

// MARK: secp256k1 through the Swift API vs direct libsecp256k1 calls
if wants("secp256k1") {
print("secp256k1 (Swift API vs direct libsecp256k1 calls)")
let key = try! Secp256k1.PrivateKey(hex: "0x" + String(repeating: "22", count: 32))
let digests = (0..<256).map { Keccak256.hash([UInt8(truncatingIfNeeded: $0)]) }
var next = 0
let swiftSign = measure(batch: 200) {
    next = (next + 1) & 255
    sink ^= key.sign(digest: digests[next]).v
}
let raw = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE))!
let secret = [UInt8](repeating: 0x22, count: 32)
let rawDigests = digests.map(\.bytes)
let directSign = measure(batch: 200) {
    next = (next + 1) & 255
    var sig = secp256k1_ecdsa_recoverable_signature()
    _ = secp256k1_ecdsa_sign_recoverable(raw, &sig, rawDigests[next], secret, nil, nil)
    var compact = [UInt8](repeating: 0, count: 64)
    var recid: Int32 = 0
    _ = secp256k1_ecdsa_recoverable_signature_serialize_compact(raw, &compact, &recid, &sig)
    sink ^= compact[0]
}
row("  sign (Swift: RecoverableSignature)", swiftSign, "sig/s")
row("  sign (C: sign_recoverable + serialize)", directSign, "sig/s", ratio: swiftSign / directSign)

let signatures = digests.map { key.sign(digest: $0) }
let swiftRecover = measure(batch: 200) {
    next = (next + 1) & 255
    sink ^= (try! signatures[next].recoverPublicKey(digest: digests[next])).uncompressed[0]
}
let rawSignatures = signatures.map { $0.bytes }
let directRecover = measure(batch: 200) {
    next = (next + 1) & 255
    var sig = secp256k1_ecdsa_recoverable_signature()
    _ = secp256k1_ecdsa_recoverable_signature_parse_compact(raw, &sig, Array(rawSignatures[next][0..<64]), Int32(rawSignatures[next][64]) - 27)
    var pubkey = secp256k1_pubkey()
    _ = secp256k1_ecdsa_recover(raw, &pubkey, &sig, rawDigests[next])
    var out = [UInt8](repeating: 0, count: 65)
    var length = 65
    _ = secp256k1_ec_pubkey_serialize(raw, &out, &length, &pubkey, UInt32(SECP256K1_EC_UNCOMPRESSED))
    sink ^= out[1]
}
row("  recover (Swift: recoverPublicKey)", swiftRecover, "rec/s")
row("  recover (C: parse + recover + serialize)", directRecover, "rec/s", ratio: swiftRecover / directRecover)
}

// MARK: ABI encode/decode of a typical ENABLE payload: abi(EnableSession, bytes), spec §5.2
if wants("abi") {
print("ABI (the ENABLE payload of the spec's worked example, abi(EnableSession, bytes))")
let policy = "(address,bytes)"
let session = "(address,bytes,bytes32,\(policy)[],((bytes32,string[])[],\(policy)[]),(bytes4,address,\(policy)[])[],bool)"
let enableTypes = [try! ABIType(parsing: "(uint8,(uint64,bytes32)[],\(session),bytes)"), ABIType.bytes]
func address(_ s: String) -> ABIValue { .address(try! Address(s)) }
func word(_ n: UInt64) -> [UInt8] { UInt256(n).bigEndianBytes }
let usdc = "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"
let sessionValue = ABIValue.tuple([
    address("0x000000000013fdB5234E4E3162a810F54d9f7E98"),
    .bytes(word(1) + word(64) + word(1) + (try! Address("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A")).word.bytes),
    .fixedBytes(word(1)),
    .array([.tuple([address("0x0000000000D30f611fA3bf652ac6879428586930"), .bytes(try! Hex.decode("0x00006955b900000067748580"))])]),
    .tuple([.array([]), .array([])]),
    .array([
        .tuple([.fixedBytes([0xa9, 0x05, 0x9c, 0xbb]), address(usdc), .array([
            .tuple([address("0x000000000033212E272655D8a22402Db819477A6"), .bytes(word(64) + word(128) + word(1) + (try! Address(usdc)).word.bytes + word(1) + word(100_000_000))]),
            .tuple([address("0x00000000001d4479FA2A947026204d0283ceDe4B"), .bytes(Array(word(10)[16...]))]),
        ])]),
        .tuple([.fixedBytes([0xff, 0xff, 0xff, 0xff]), address("0x000000000000000000000000000000000000bEEF"), .array([
            .tuple([address("0x000000000021dC45451291BCDfc9f0B46d6f0278"), .bytes(word(100_000_000_000_000_000))]),
        ])]),
    ]),
    .bool(true),
])
let enableValue: [ABIValue] = [
    .tuple([.uint(0), .array([.tuple([.uint(11_155_111), .fixedBytes(word(7))])]), sessionValue, .bytes([UInt8](repeating: 7, count: 85))]),
    .bytes([UInt8](repeating: 9, count: 65)),
]
let encoded = try! ABI.encode(enableValue, as: enableTypes)
precondition((try! ABI.decode(encoded, as: enableTypes)) == enableValue)
let encodeRate = measure(batch: 100) { sink ^= (try! ABI.encode(enableValue, as: enableTypes)).last! }
let decodeRate = measure(batch: 100) { if case .bytes(let b) = (try! ABI.decode(encoded, as: enableTypes))[1] { sink ^= b[0] } }
row("  encode (\(encoded.count) bytes)", encodeRate, "payloads/s")
row("  decode, strict (\(encoded.count) bytes)", decodeRate, "payloads/s")


}

// MARK: Smart Sessions: compile + review + digests, FastLZ, the off-chain policy check
if wants("sessions") {
print("Smart Sessions")
let benchAccount = try! Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
let benchKey = try! Address("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A")
/// 50 permissions with 3 policies each: argument rules (UniActionPolicy, 3136-byte init data),
/// a usage limit and a value limit; or the lighter spending limit + usage limit + time frame.
func request(argumentRules: Bool) -> JSONValue {
    var permissions: [JSONValue] = []
    for i in 0..<50 {
        let target = Address(exactly: [UInt8](repeating: 0, count: 18) + [UInt8(1 + i / 256), UInt8(i % 256)])!
        var p = JSONObject()
        p["target"] = .string(target.checksummed)
        p["maxUses"] = JSONValue(10)
        if argumentRules {
            p["functions"] = .array([.string("pay(address to, uint256 amount)")])
            p["rules"] = .array(["to != 0x0000000000000000000000000000000000000000", "amount <= 1000000"])
            p["valueLimit"] = "0.01 ETH"
        } else {
            p["allow"] = .array(["transfer"])
            p["spendingLimit"] = "1000000"
            p["validity"] = .object(JSONObject(["duration": "1d"]))
        }
        permissions.append(.object(p))
    }
    return .object(JSONObject([
        "account": .string(benchAccount.checksummed), "chains": .array([JSONValue(1), JSONValue(8453), JSONValue(42161)]),
        "validity": .object(JSONObject(["duration": "3d"])), "permissions": .array(permissions),
    ]))
}
let compiler = RequestCompiler(now: 1_764_096_000, sessionKeys: [benchKey])
let reviewer = Reviewer(now: 1_764_096_000)
let bigRequest = request(argumentRules: true)
let compiledOnce = try! compiler.compile(bigRequest)
precondition(compiledOnce.session.actions.count == 50 && compiledOnce.session.actions.allSatisfy { $0.actionPolicies.count == 3 })
if wants("review") || sections.isEmpty || sections.contains("sessions") {
    for (label, json) in [("argument rules, usage, value", bigRequest), ("spending, usage, time frame", request(argumentRules: false))] {
        let rate = measure(batch: 20) {
            let c = try! compiler.compile(json)
            let text = reviewer.review(c).text()
            sink ^= UInt8(truncatingIfNeeded: text.utf8.count) ^ c.multichainDigest[0]
        }
        row("  compile+review+digests, 50 actions × (\(label))", 1000 / rate, "ms/request")
    }
}

let enableSession = EnableSession(chainDigestIndex: 0, hashesAndChainIds: compiledOnce.chainDigests,
                                  sessionToEnable: compiledOnce.session, permissionEnableSig: [UInt8](repeating: 7, count: 85))
var payload = SessionSignature.enablePayload(enableSession, signature: [UInt8](repeating: 9, count: 65))
payload = Array(payload.prefix(2048))
let compressedPayload = FastLZ.compress(payload)
if !sections.contains("review") {
let compressRate = measure(batch: 200) { sink ^= FastLZ.compress(payload).last! }
let decompressRate = measure(batch: 200) { sink ^= (try! FastLZ.decompress(compressedPayload)).last! }
row("  FastLZ compress, 2 KiB ENABLE payload (→ \(compressedPayload.count) B)", compressRate * 2048 / 1e6, "MB/s  (\(Int(compressRate))/s)")
row("  FastLZ decompress, same payload", decompressRate * 2048 / 1e6, "MB/s  (\(Int(decompressRate))/s)")

let checker = PolicyChecker(session: compiledOnce.session, account: benchAccount)
let pay = try! ABIFunction(parsing: "pay(address to, uint256 amount)")
let batch = ExecuteCall.batch((0..<10).map { i in
    Execution(target: compiledOnce.session.actions[i].actionTarget,
              callData: try! pay.encodeCall([.address(benchKey), .uint(UInt256(UInt64(100 + i)))]))
})
let batchOp = PackedUserOperation(sender: benchAccount, nonce: 0, initCode: [], callData: batch.calldata, accountGasLimits: .zero,
                                  preVerificationGas: 0, gasFees: .zero, paymasterAndData: [], signature: [])
if case .failure(let denial) = checker.check(batchOp, ledger: PolicyLedger()) { fatalError("bench batch denied: \(denial)") }
let checkRate = measure(batch: 200) {
    if case .success(let a) = checker.check(batchOp, ledger: PolicyLedger()) { sink ^= UInt8(truncatingIfNeeded: a.delta.updates.count) }
}
row("  off-chain policy check, batch of 10 executions", checkRate, "checks/s")
}
}

// MARK: the agent over its socket (AgentBench.swift); BENCH_DIR puts the store on the disk to measure
if wants("agent") {
    let directory = ProcessInfo.processInfo.environment["BENCH_DIR"] ?? FileManager.default.currentDirectoryPath + "/.build/bench-agent"
    do { try await AgentBench.run(directory: directory) } catch { fatalError("agent bench: \(error)") }
}

// MARK: a long audit log read and pruned, and the store checked, beside signing (AgentBench.swift);
// BENCH_AUDIT_ENTRIES sets the log's length, BENCH_STORE_SESSIONS how many more sessions the store holds
if wants("audit") {
    let environment = ProcessInfo.processInfo.environment
    let directory = environment["BENCH_DIR"] ?? FileManager.default.currentDirectoryPath + "/.build/bench-audit"
    let entries = environment["BENCH_AUDIT_ENTRIES"].flatMap { Int($0) } ?? 1_000_000
    let sessions = environment["BENCH_STORE_SESSIONS"].flatMap { Int($0) } ?? 10_000
    do { try await AgentBench.audit(directory: directory, entries: entries, sessions: sessions) } catch { fatalError("audit bench: \(error)") }
}

// MARK: a session's state read on chain from the test rig's stand-in endpoint (ChainBench.swift)
if wants("chain") {
    let directory = FileManager.default.currentDirectoryPath + "/.build/bench-chain"
    do { try await ChainBench.run(directory: directory) } catch { fatalError("chain bench: \(error)") }
}

// MARK: owner signing on a SoftHSM2 token (HSMBench.swift)
if wants("pkcs11") {
    let directory = FileManager.default.currentDirectoryPath + "/.build/bench-softhsm"
    do { try await HSMBench.run(directory: directory) } catch { fatalError("pkcs11 bench: \(error)") }
}

// MARK: owner signing on an OpenPGP card (CardBench.swift)
if wants("card") {
    let directory = FileManager.default.currentDirectoryPath + "/.build/bench-card"
    do { try await CardBench.run(directory: directory) } catch { fatalError("card bench: \(error)") }
}

// MARK: owner signing with a passkey (FIDO2Bench.swift)
if wants("fido2") {
    do { try await FIDO2Bench.run() } catch { fatalError("fido2 bench: \(error)") }
}

print("(sink \(sink))")
