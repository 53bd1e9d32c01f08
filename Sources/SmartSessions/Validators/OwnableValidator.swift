import EthereumCore

/// OwnableValidator (core-modules) as owner validator or session validator (spec §6.2).
public struct OwnableValidatorConfig: Hashable, Sendable {
    public static let maximumOwners = 32
    public var threshold: Int
    /// Sorted ascending as uint160, unique: the order the contract requires.
    public private(set) var owners: [Address]

    /// Sorts the owners numerically (module-sdk's string sort can misorder mixed-case input).
    public init(threshold: Int, owners: [Address]) throws(SmartSessionError) {
        let sorted = owners.sorted()
        guard Set(sorted).count == sorted.count else { throw SmartSessionError("OwnableValidator: duplicate owner") }
        guard !sorted.isEmpty, sorted.count <= Self.maximumOwners else {
            throw SmartSessionError("OwnableValidator: needs 1 to 32 owners, got \(sorted.count)")
        }
        guard threshold >= 1, threshold <= sorted.count else {
            throw SmartSessionError("OwnableValidator: threshold \(threshold) must be between 1 and \(sorted.count)")
        }
        guard !sorted.contains(.zero) else { throw SmartSessionError("OwnableValidator: the zero address as an owner") }
        self.threshold = threshold
        self.owners = sorted
    }

    /// `abi.encode(uint256 threshold, address[] owners)`
    public var initData: [UInt8] {
        try! ABI.encode([.uint(UInt256(UInt64(threshold))), .array(owners.map { .address($0) })], as: [.uint256, .array(.address)])
    }

    /// Decodes init data with the contract's rules: owners strictly ascending, threshold in range.
    public init(initData: [UInt8]) throws(SmartSessionError) {
        let values: [ABIValue]
        do { values = try ABI.decode(initData, as: [.uint256, .array(.address)]) } catch {
            throw SmartSessionError("OwnableValidator init data: \(error)")
        }
        guard case .uint(let t) = values[0], case .array(let items) = values[1] else { throw SmartSessionError("OwnableValidator init data: unexpected shape") }
        let owners = items.compactMap { if case .address(let a) = $0 { a } else { nil } }
        guard zip(owners, owners.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw SmartSessionError("OwnableValidator init data: owners must be sorted ascending and unique")
        }
        guard let threshold = t.int else { throw SmartSessionError("OwnableValidator init data: threshold \(t) is out of range") }
        try self.init(threshold: threshold, owners: owners)
    }

    /// module-sdk's mock signature (spec §6.2): 65 bytes of the right shape, for gas estimates.
    public static let mockSignature = try! Hex.decode("0xe8b94748580ca0b4993c9a1b86b5be851bfc076ff5ce3a1ff65bf16392acfcb800f9b4f1aef1555c7fce5599fffb17e7c635502154a0333ba21f3ae491839af51c")

    /// Concatenated 65-byte signatures; the contract sorts the recovered signers itself.
    public static func combine(_ signatures: [RecoverableSignature]) -> [UInt8] {
        signatures.flatMap(\.bytes)
    }

    /// Which owners signed `hash`, as the current validator counts them: 65-byte chunks,
    /// v 27/28 over the raw hash, v 31/32 over its EIP-191 form; duplicates count once.
    public func signers(of hash: Bytes32, signatures: [UInt8]) throws(SmartSessionError) -> [Address] {
        guard signatures.count % 65 == 0, !signatures.isEmpty else {
            throw SmartSessionError("OwnableValidator signatures are 65-byte chunks, got \(signatures.count) bytes")
        }
        var found = Set<Address>()
        for start in stride(from: 0, to: signatures.count, by: 65) {
            var sig = try! RecoverableSignature(bytes: Array(signatures[start..<(start + 65)]))
            var digest = hash
            if sig.v > 30 {
                sig.v -= 4
                digest = PersonalMessage.hash(hash)
            }
            guard sig.v == 27 || sig.v == 28, let signer = try? sig.recoverAddress(digest: digest) else { continue }
            if owners.contains(signer) { found.insert(signer) }
        }
        return found.sorted()
    }

    /// Whether at least `threshold` distinct owners signed.
    public func isValid(hash: Bytes32, signatures: [UInt8]) -> Bool {
        ((try? signers(of: hash, signatures: signatures))?.count ?? 0) >= threshold
    }
}
