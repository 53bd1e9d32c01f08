import EthereumCore
import OwnerSigners
import SessionStore
import SmartSessions

/// A smart account the agent enables sessions for: how it routes ERC-1271 signatures and
/// which owners (through which validator) must sign.
public struct AccountConfig: Sendable, Equatable {
    public var address: Address
    public var kind: AccountKind
    /// The validator installed on the account that checks the owners' enable signature:
    /// Rhinestone's WebAuthnValidator for passkey owners, OwnableValidator (or one that reads
    /// its signatures) for secp256k1 owners.
    public var ownerValidator: Address
    public var threshold: Int
    public var owners: [OwnerKey]
    /// The chains sessions may be enabled on (empty: any).
    public var chains: Set<UInt64>
    /// A Kernel account's version as its EIP-712 domain gives it, for a chain the agent cannot
    /// ask (no endpoint, or the account not deployed there yet); nil: Kernel v3.1's.
    public var kernelVersion: String?

    public init(address: Address, kind: AccountKind, ownerValidator: Address? = nil, threshold: Int = 1, owners: [OwnerKey], chains: Set<UInt64> = [],
                kernelVersion: String? = nil) {
        self.address = address
        self.kind = kind
        self.ownerValidator = ownerValidator ?? (owners.first?.address == nil && !owners.isEmpty ? SmartSessionAddresses.rhinestoneWebAuthnValidator : SmartSessionAddresses.ownableValidator)
        self.threshold = threshold
        self.owners = owners
        self.chains = chains
        self.kernelVersion = kernelVersion
    }

    public init(address: Address, kind: AccountKind, ownerValidator: Address? = nil, threshold: Int = 1, owners: [Address], chains: Set<UInt64> = [],
                kernelVersion: String? = nil) {
        self.init(address: address, kind: kind, ownerValidator: ownerValidator, threshold: threshold, owners: owners.map(OwnerKey.address), chains: chains,
                  kernelVersion: kernelVersion)
    }

    /// Whether the owner validator takes WebAuthn assertions from passkeys, rather than
    /// secp256k1 signatures.
    var takesPasskeys: Bool { Self.passkeyValidators.contains(ownerValidator) }
    static let passkeyValidators = [SmartSessionAddresses.rhinestoneWebAuthnValidator, SmartSessionAddresses.zeroDevWebAuthnValidator]
    /// ZeroDev's passkey validator (Kernel's): one passkey, its signature in its own format,
    /// user verification required.
    var isZeroDev: Bool { ownerValidator == SmartSessionAddresses.zeroDevWebAuthnValidator }

    /// Why the owner validator would refuse `signature` by `owner` over `digest`, beyond what
    /// every owner signer checks itself; nil when it takes it. ZeroDev's takes only an assertion
    /// that verified the person.
    func refusal(of signature: OwnerSignature, by owner: OwnerKey, over digest: Bytes32) -> String? {
        guard isZeroDev, case .passkey(let key) = owner, case .webAuthn(let assertion) = signature,
              !ZeroDevWebAuthn.accepts(assertion, challenge: digest, key: key) else { return nil }
        return "ZeroDev's passkey validator needs user verification, which this passkey's assertion does not carry: "
            + "make it with the key's PIN (session-agent fido2 create --user-verification)"
    }

    /// The owners' signatures as the owner validator reads them: OwnableValidator's
    /// concatenation sorted by signer, or the WebAuthnValidator's credential ids (bound to this
    /// account, sorted) with their assertions. The verifier is the RIP-7212 precompile, which the
    /// chains Smart Sessions runs on have.
    func validatorSignature(_ signed: [(key: OwnerKey, signature: OwnerSignature)]) -> [UInt8] {
        if isZeroDev, case .webAuthn(let assertion)? = signed.first?.signature {
            return ZeroDevWebAuthn.signature(assertion, usePrecompiled: true)
        }
        if takesPasskeys {
            let assertions = signed.compactMap { owner -> (Bytes32, WebAuthnAssertion)? in
                guard case .passkey(let key) = owner.key, case .webAuthn(let assertion) = owner.signature else { return nil }
                return (RhinestoneWebAuthn.credentialId(key, account: address), assertion)
            }.sorted { $0.0 < $1.0 }
            return RhinestoneWebAuthn.signature(credentialIds: assertions.map(\.0), usePrecompile: true, assertions: assertions.map(\.1))
        }
        return OwnableValidatorConfig.combine(signed.compactMap { if case .ecdsa(let signature) = $0.signature { signature } else { nil } })
    }
}

extension AccountConfig {
    /// The form of `accounts_list` and `accounts_add`. `ownerNonceKey` is derived: the key of
    /// the nonce of the account's own user operations (the EntryPoint's `getNonce(account, key)`).
    public var json: JSONValue {
        var o = JSONObject([
            "address": .string(address.checksummed), "kind": .string(kind.rawValue), "ownerValidator": .string(ownerValidator.checksummed),
            "threshold": JSONValue(threshold), "owners": .array(owners.map { .string($0.description) }),
            "chains": .array(chains.sorted().map { .string(String($0)) }), "ownerNonceKey": .string(ownerNonceKey.hexQuantity),
        ])
        if let kernelVersion { o["kernelVersion"] = .string(kernelVersion) }
        return .object(o)
    }

    /// What selects the owners' validator for the account's own user operations.
    public var ownerNonceKey: UInt256 { kind.nonceKey(validator: ownerValidator) }

    /// A signature of the owner validator's shape, for a bundler to estimate an account
    /// operation's gas with: module-sdk's mock OwnableValidator signature, once per owner the
    /// threshold needs. None for the WebAuthnValidator, whose assertions vary in length.
    public var dummySignature: [UInt8]? {
        takesPasskeys ? nil : Array((0..<threshold).map { _ in OwnableValidatorConfig.mockSignature }.joined())
    }

    /// `path` names the value in errors (`account.kind: …`, `accounts[2].owners[0]: …`).
    public init(json: JSONValue, path: String = "account") throws(AgentError) {
        guard let o = json.objectValue else { throw .badRequest("\(path): an object") }
        let known = ["address", "kind", "ownerValidator", "threshold", "owners", "chains", "ownerNonceKey", "kernelVersion"]
        if let extra = o.keys.first(where: { !known.contains($0) }) {
            throw .badRequest("\(path).\(extra): unknown field" + Spelling.suggestion(for: extra, among: known))
        }
        func address(_ v: JSONValue?, _ field: String) throws(AgentError) -> Address {
            guard let s = v?.stringValue, let a = try? Address(s) else { throw .badRequest("\(path).\(field): an address") }
            return a
        }
        // Read as requests read integers (decimal or 0x hex), so "+5" is no chain id here either.
        func integer(_ v: JSONValue) -> UInt64? {
            switch v { case .number(let text), .string(let text): (try? UInt256(parsing: text))?.uint64; default: nil }
        }
        let accountAddress = try address(o["address"], "address")
        guard let kind = o["kind"]?.stringValue.flatMap(AccountKind.init(rawValue:)) else {
            throw .badRequest("\(path).kind: one of \(AccountKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let ownerList = o["owners"]?.arrayValue, !ownerList.isEmpty else { throw .badRequest("\(path).owners: at least one owner address") }
        var owners: [OwnerKey] = []
        for (i, v) in ownerList.enumerated() {
            guard let text = v.stringValue else { throw .badRequest("\(path).owners[\(i)]: an address, or p256: and a passkey's public key") }
            let owner: OwnerKey
            do { owner = try OwnerKey(text) } catch { throw .badRequest("\(path).owners[\(i)]: \(error)") }
            // The validators count each signer once: a second copy would be a signature that never counts.
            guard !owners.contains(owner) else { throw .badRequest("\(path).owners[\(i)]: \(owner) is listed twice") }
            owners.append(owner)
        }
        let threshold = try o["threshold"].map { v throws(AgentError) in
            guard let t = integer(v), t >= 1, t <= UInt64(owners.count) else { throw .badRequest("\(path).threshold: between 1 and the number of owners") }
            return Int(t)
        } ?? 1
        // Absent means any chain; anything but a list must not be read as absent.
        guard o["chains"].map({ $0.arrayValue != nil }) ?? true else { throw .badRequest("\(path).chains: a list of chain ids") }
        var chains = Set<UInt64>()
        for v in o["chains"]?.arrayValue ?? [] {
            guard let c = integer(v), c > 0 else { throw .badRequest("\(path).chains: chain ids") }
            chains.insert(c)
        }
        // As `eip712Domain()` answers it: "0.3.3", "0.3.0-beta".
        let kernelVersion = try o["kernelVersion"].map { v throws(AgentError) in
            guard kind == .kernel else { throw .badRequest("\(path).kernelVersion: only a Kernel account has one") }
            guard let text = v.stringValue, Self.isKernelVersion(text) else {
                throw .badRequest("\(path).kernelVersion: the version in the account's EIP-712 domain, such as \"0.3.3\" or \"0.3.0-beta\"")
            }
            return text
        }
        self.init(address: accountAddress, kind: kind, ownerValidator: try o["ownerValidator"].map { v throws(AgentError) in try address(v, "ownerValidator") },
                  threshold: threshold, owners: owners, chains: chains, kernelVersion: kernelVersion)
        // As `accounts_list` gives it back: derived, so it must agree.
        if let given = o["ownerNonceKey"], given.stringValue.flatMap({ try? UInt256(parsing: $0) }) != ownerNonceKey {
            throw .badRequest("\(path).ownerNonceKey: derived from the kind and the owner validator, \(ownerNonceKey.hexQuantity) here; leave it out")
        }
        // One validator reads one kind of signature.
        let passkeys = owners.filter { $0.address == nil }.count
        if takesPasskeys, passkeys < owners.count {
            throw .badRequest("\(path).owners: the WebAuthnValidator \(ownerValidator.checksummed) lists passkeys (p256:…), not addresses")
        }
        if isZeroDev, owners.count != 1 {
            throw .badRequest("\(path).owners: ZeroDev's passkey validator \(ownerValidator.checksummed) holds one passkey")
        }
        if !takesPasskeys, passkeys > 0 {
            throw .badRequest("\(path).owners: passkey owners sign for Rhinestone's WebAuthnValidator \(SmartSessionAddresses.rhinestoneWebAuthnValidator.checksummed), not \(ownerValidator.checksummed)")
        }
    }
}

extension AccountConfig {
    /// Whether `text` reads as a version: digits, letters, dots, `-` and `+`, at most 32 of them.
    static func isKernelVersion(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 32 && text.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-+".unicodeScalars.contains($0)) }
    }
}

/// A failure the agent reports to a client: JSON-RPC code, a sentence and a machine-readable
/// reason (`not_found`, `denied_by_rules`, `policy_violation`, `expired`, `locked`, `bad_request`…).
public struct AgentError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Int
    public var reason: String
    public var message: String

    public init(_ reason: String, _ message: String, code: Int = -32000) {
        self.code = code
        self.reason = reason
        self.message = message
    }

    public static func badRequest(_ message: String) -> AgentError { AgentError("bad_request", message, code: -32602) }
    /// "session sess-… not found" for `what` "session sess-…".
    public static func notFound(_ what: String) -> AgentError { AgentError("not_found", "\(what) not found") }

    public var description: String { message }
}

extension AgentError {
    /// The store's error as the agent answers it: its reason, in its words.
    init(_ error: StoreError) { self.init(error.reason, "\(error)") }
}
