import Agent
import Approval
import ChainRPC
import EthereumCore
import Foundation
import OwnerSigners
import SessionStore
import SmartSessions
import TestSupport

/// What the agent and the CLI read from people and programs they do not control, each entry
/// point fed the fuzzer's bytes (FUZZ_HARNESS picks it). An input may be refused with any error;
/// only a trap (a crash of the agent) is a finding.
enum Harnesses {
    static let all: [(name: String, run: @Sendable ([UInt8]) -> Void)] = [
        ("session request", sessionRequest),
        ("user operation in a session", userOperation),
        ("userOp.signature", signature),
        ("ABI data and values", abi),
        ("EIP-712 document", typedData),
        ("PKCS#11 URI", pkcs11URI),
        ("rules file", rulesFile),
        ("numbers, amounts, hex, addresses", numbers),
        ("callData against a session", callData),
        ("the agent's socket methods", AgentHarness.run),
        ("agent configuration file", configuration),
        ("token list, and a request in its tokens", tokenList),
        ("keystore files, and what tokens, cards and FIDO2 authenticators return", ownerKeyData),
        ("exported audit entries", auditFile),
        ("what a chain's JSON-RPC endpoint answers", chainAnswer),
    ]

    /// The harness FUZZ_HARNESS=N names, which every input goes to whole.
    static let selected = {
        guard let n = ProcessInfo.processInfo.environment["FUZZ_HARNESS"].flatMap({ Int($0) }), all.indices.contains(n) else {
            FileHandle.standardError.write(Data(("FUZZ_HARNESS: the number of a harness:\n" + all.enumerated().map { "  \($0) \($1.name)\n" }.joined()).utf8))
            exit(2)
        }
        return all[n].run
    }()

    static func run(_ input: [UInt8]) { selected(input) }

    static let now: UInt64 = 1_790_000_000
    static let client = ClientIdentity(uid: 1000, gid: 1000, pid: 4242, executable: "/usr/bin/client")

    static func json(_ bytes: [UInt8]) -> JSONValue? { try? JSONValue(parsing: bytes) }

    /// `session_request`'s parameters: compiled, reviewed, rendered, and decided by rules.
    static func sessionRequest(_ bytes: [UInt8]) {
        guard let request = json(bytes), let compiled = compile(request) else { return }
        let review = Reviewer(tokens: TokenList(), now: now).review(compiled)
        _ = review.text()
        _ = review.json
        _ = rules.evaluate(review, client: client, holdings: ClientHoldings(liveSessions: 2, sessionsLastDay: 0))
        for chain in compiled.chains { _ = compiled.sessionDigest(on: chain) }
    }

    static func compile(_ request: JSONValue, tokens: TokenList = TokenList()) -> CompiledRequest? {
        try? RequestCompiler(tokens: tokens, now: now, sessionKeys: [sessionKey]).compile(request)
    }

    static let sessionKey = Secp256k1.PrivateKey.generate().address

    static let rules = try! RulesFile(toml: """
        default = "ask"
        [[rules]]
        name = "bounded"
        decision = "approve"
        reason = "fuzz"
        [rules.match]
        client_uids = [1000]
        max_token_amounts = { "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238" = "100000000" }
        max_native_value = "1000000000000000000"
        max_duration = "3d"
        max_live_sessions = 5
        max_severity = "warning"
        """)

    /// `{"request": …, "userOp": …}`: the operation checked against the session as the agent
    /// checks it before signing (enabling, then in use), and an ENABLE signature encoded.
    static func userOperation(_ bytes: [UInt8]) {
        guard case .object(let o)? = json(bytes), let request = o["request"], let compiled = compile(request),
              let opJSON = o["userOp"], let op = try? PackedUserOperation.parse(json: opJSON) else { return }
        let chainId = compiled.chains.first?.chainId ?? 1
        for version in [EntryPointVersion.v07, .v08] {
            _ = try? op.hash(version: version, entryPoint: .zero, chainId: UInt256(chainId))
        }
        let checker = PolicyChecker(session: compiled.session, account: compiled.account, tokens: TokenList(), chains: [chainId])
        var ledger = PolicyLedger()
        for enabling in [true, false] {
            if case .success(let allowance) = checker.check(op, ledger: ledger, enabling: enabling, now: now) { ledger.apply(allowance.delta) }
        }
        limitsLeft(checker, ledger)
        if let enable = try? compiled.enableSession(for: chainId, permissionEnableSig: [UInt8](repeating: 1, count: 86)) {
            _ = SessionSignature.enable(mode: compiled.mode, enableSession: enable, signature: [UInt8](repeating: 2, count: 65)).encoded
        }
    }

    /// A user operation's callData, as a client may send any, checked against one of the
    /// fixtures' sessions (the first byte picks it) twice, the ledger carried from the first:
    /// ERC-7579 execute decoding, batches, argument rules, spending and value limits.
    static func callData(_ bytes: [UInt8]) {
        guard let first = bytes.first, !fixtureSessions.isEmpty else { return }
        let (session, account) = fixtureSessions[Int(first) % fixtureSessions.count]
        let op = PackedUserOperation(sender: account, nonce: 0, initCode: [], callData: Array(bytes.dropFirst()), accountGasLimits: Bytes32([UInt8](repeating: 1, count: 32)),
                                     preVerificationGas: 70_000, gasFees: Bytes32([UInt8](repeating: 2, count: 32)), paymasterAndData: [], signature: [])
        let checker = PolicyChecker(session: session, account: account, tokens: TokenList(), chains: [1])
        var ledger = PolicyLedger()
        for _ in 0..<2 {
            if case .success(let allowance) = checker.check(op, ledger: ledger, now: now) { ledger.apply(allowance.delta) }
        }
        limitsLeft(checker, ledger)
    }

    /// What is left of each limit after the operations the check let through, as `sessions
    /// show` tells it: none of them spent past its limit. (An argument rule's init data may
    /// start it past its limit; the rule then refuses every call.)
    static func limitsLeft(_ checker: PolicyChecker, _ ledger: PolicyLedger) {
        for limit in checker.limits(ledger: ledger) {
            _ = checker.describe(limit)
            if case .argument = limit.measure { continue }
            precondition(limit.used <= limit.limit, "\(limit) spent past its limit")
        }
    }

    /// The sessions of the request fixtures and of the contract cases.
    static let fixtureSessions: [(Session, Address)] = {
        let requests = ["dangerous.json", "erc7715-execution.json", "erc7715-grant.json", "uniswap-rules.json"].compactMap { try? Fixtures.json("requests/" + $0) }
        let caseFiles = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.url("cases").path)) ?? []
        let cases = caseFiles.sorted().compactMap { try? Fixtures.json("cases/" + $0) }.map { c -> JSONValue in
            .object(JSONObject(["account": c["account"]?["address"] ?? .null, "chains": .array([JSONValue(1)]), "session": c["session"] ?? .null]))
        }
        return ([example] + requests + cases).compactMap { compile($0) }.map { ($0.session, $0.account) }
    }()

    /// `decode-signature`: a userOp.signature, and the session an ENABLE carries, reviewed.
    static func signature(_ bytes: [UInt8]) {
        guard let decoded = try? SessionSignature(decoding: bytes) else { return }
        _ = decoded.encoded
        guard case .enable(let mode, let enable, _) = decoded else { return }
        let request = CompiledRequest(format: .rawSession, account: .zero, accountKind: .erc7579Reference,
                                      chains: enable.hashesAndChainIds.map { ChainTarget(chainId: $0.chainId) }, mode: mode, session: enable.sessionToEnable)
        _ = EnableDigest.multichainDigest(enable.hashesAndChainIds)
        if let (_, ownerSignature) = try? AccountKind.erc7579Reference.parseERC1271Signature(enable.permissionEnableSig) {
            _ = try? RhinestoneWebAuthn.decodeSignature(ownerSignature)
        }
        _ = Reviewer(tokens: TokenList(), now: now).review(request).text()
    }

    /// `eth abi-decode` and `eth abi-encode`: a type on the first line, after it the data, or
    /// a value written as cast writes it.
    static func abi(_ bytes: [UInt8]) {
        guard let newline = bytes.firstIndex(of: 10) else { return }
        let text = String(decoding: bytes[..<newline], as: UTF8.self)
        let data = Array(bytes[(newline + 1)...])
        if let type = try? ABIType(parsing: text) {
            if let value = try? ABI.decode(data, as: type) {
                _ = try? ABI.encode(value, as: type)
                _ = value.json(as: type)
                _ = value.text
            }
            if let value = try? ABIValue(text: String(decoding: data, as: UTF8.self), as: type) {
                _ = try? ABI.encode(value, as: type)
                _ = try? ABI.encodePacked([value], as: [type])
            }
        }
        if let function = try? ABIFunction(parsing: text) { _ = try? function.decodeCall(data) }
        _ = try? ContractInterface(jsonABI: String(decoding: data, as: UTF8.self))
    }

    /// `eth typed-data-hash` and `eth_signTypedData_v4` documents, and `session_signTypedData`'s:
    /// each described both ways for ERC-7739, and each description read back as SmartSession
    /// reads it from a signature gives the same contents name and type.
    static func typedData(_ bytes: [UInt8]) {
        guard let document = try? TypedData(parsing: String(decoding: bytes, as: UTF8.self)) else { return }
        _ = try? document.digest
        for explicit in [false, true] {
            guard let message = try? NestedTypedData(document, explicit: explicit) else { continue }
            _ = message.digest(in: AccountDomain(name: "x", version: "1", chainId: 1, verifyingContract: .zero))
            _ = message.signature(permissionId: .zero, sessionSignature: [])
            let read = try? NestedTypedData(appDomainSeparator: message.appDomainSeparator, contents: message.contents, contentsDescription: message.contentsDescription)
            precondition(read == message, "the description \(message.contentsDescription) reads back as \(String(describing: read))")
        }
    }

    static func pkcs11URI(_ bytes: [UInt8]) {
        guard let uri = try? PKCS11URI(String(decoding: bytes, as: UTF8.self)) else { return }
        _ = uri.description
        _ = try? PKCS11URI(uri.description)
    }

    static func rulesFile(_ bytes: [UInt8]) {
        guard let rules = try? RulesFile(toml: String(decoding: bytes, as: UTF8.self)) else { return }
        _ = rules.evaluate(exampleReview, client: client, holdings: ClientHoldings(liveSessions: 1, sessionsLastDay: 0))
    }

    static let exampleReview = Reviewer(tokens: TokenList(), now: now).review(compile(example)!)

    /// docs/examples/usdc-transfers.json, for the rules files to decide.
    static let example = try! JSONValue(parsing: """
        {"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [11155111], "validity": {"duration": "3d"},
         "permissions": [{"token": "USDC", "allow": ["transfer"], "spendingLimit": "100 USDC", "maxUses": 10}]}
        """)

    /// `serve --config`: the file is read whole before anything is opened.
    static func configuration(_ bytes: [UInt8]) {
        _ = try? AgentConfiguration(toml: String(decoding: bytes, as: UTF8.self), relativeTo: "/etc/session-agent", environment: ["CREDENTIALS_DIRECTORY": "/run/credentials/x"])
    }

    /// `{"tokens": […], "request": …}`: the configuration's token list, then a request whose
    /// amounts and names are read in its tokens.
    static func tokenList(_ bytes: [UInt8]) {
        guard case .object(let o)? = json(bytes), let list = o["tokens"] else { return }
        var tokens = TokenList()
        guard (try? tokens.add(json: list)) != nil, let request = o["request"], let compiled = compile(request, tokens: tokens) else { return }
        _ = Reviewer(tokens: tokens, now: now).review(compiled).text()
    }

    /// What owner keys come from, the first byte picking which: a keystore v3 file (imported
    /// from geth, clef or Foundry; decrypted when its work factors are small), a key's
    /// CKA_EC_POINT or CKA_EC_PARAMS as a token gives them, a token's signature (raw r ‖ s or
    /// DER) normalised and checked against an owner, an OpenPGP card's data objects, and what a
    /// FIDO2 authenticator answers (authenticator data in CBOR, a DER signature) or a passkey
    /// file holds.
    static func ownerKeyData(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let data = Array(bytes.dropFirst())
        switch first % 6 {
        case 0:
            guard let keystore = try? Keystore(parsing: data) else { return }
            switch keystore.kdf {
            case .scrypt(let n, let r, let p) where n * r * p <= 4096: break
            case .pbkdf2(let iterations) where iterations <= 4096: break
            default: return
            }
            _ = try? keystore.decrypt(passphrase: secret("fuzz"))
        case 1:
            for curve in PKCS11Curve.allCases { _ = PKCS11Session.publicPoint(data, on: curve) }
        case 2:
            _ = ECParameters.curveName(data)
        case 3:
            _ = try? RecoverableSignature.normalizing(external: data, digest: Keccak256.hash(data), signer: sessionKey)
            if data.count == 64 { _ = try? P256.normalizedS(Bytes32(data[32...])) }
        case 4:
            _ = FIDO2Device.cborByteString(data)
            if let (_, s) = try? P256.signature(der: data) { _ = try? P256.normalizedS(s) }
            if let json = json(data) { _ = try? Passkey(json: json) }
        default:
            // What an OpenPGP card answers: its data objects, and its algorithm attributes.
            for tag: UInt16 in [0x4F, 0xC1, 0xC4, 0x86, 0x7F49, 0xF9, 0x81] { _ = BERTLV.find(tag, in: data) }
            _ = OpenPGPApplet.algorithm(data)
        }
    }

    /// `audit verify --file`: exported audit entries, walked line by line.
    static func auditFile(_ bytes: [UInt8]) {
        var walk = AuditFileCheck(previous: nil)
        for (i, line) in bytes.split(separator: 10).enumerated() {
            guard (try? walk.check(line, number: i + 1)) != nil else { return }
        }
    }

    /// `session_chain_status`: an endpoint's answer to each read of the example session, read
    /// as the agent reads it (alone, or as a batch's answer), and set beside a ledger. The
    /// first byte picks the read.
    static func chainAnswer(_ bytes: [UInt8]) {
        _ = try? EthereumRPC.outcomes(of: Array(bytes.dropFirst()), to: [.chainId, .blockNumber, .call(chainReads.enabled, block: 1)], from: endpoint)
        guard let pick = bytes.first, let result = try? EthereumRPC.result(of: Array(bytes.dropFirst()), to: "eth_call", from: endpoint) else { return }
        _ = try? EthereumRPC.quantity(result, of: "eth_blockNumber")
        guard let answer = try? EthereumRPC.data(result, of: "eth_call") else { return }
        let reads = chainReads
        var counters: [LedgerKey: UInt256] = [:]
        switch Int(pick) % (3 + reads.counters.count) {
        case 0: _ = try? reads.installed.flag(answer)
        case 1: _ = try? reads.enabled.flag(answer)
        case 2: _ = try? reads.nonce.integer(answer)
        case let i: counters = (try? SessionOnChainState.counters(of: reads.counters[i - 3], answer: answer)) ?? [:]
        }
        let state = SessionOnChainState(block: 1, deployed: true, installed: pick & 0x10 != 0, enabled: pick & 0x20 != 0,
                                        nonce: UInt256(bigEndian: answer.prefix(32)), counters: counters)
        _ = SessionChainReport(chainId: 11155111, reads: reads, state: state, ledger: PolicyLedger(), enabledHere: pick & 0x40 != 0, signedNonce: pick & 0x80 != 0 ? 1 : nil)
    }

    static let endpoint = try! ChainEndpoint("http://127.0.0.1:8545/key")
    static let chainReads: SessionOnChainReads = {
        let compiled = compile(example)!
        return SessionOnChainReads(session: compiled.session, account: compiled.account)
    }()

    static func numbers(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? UInt256(parsing: text)
        _ = try? Int256(parsing: text)
        _ = try? Amounts.parse(text, decimals: Int(bytes.first ?? 0) % 80)
        _ = try? Hex.decode(text)
        _ = try? Address(text)
    }
}
