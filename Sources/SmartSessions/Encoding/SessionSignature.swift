import EthereumCore

/// A decoded Smart Sessions `userOp.signature` (spec §5).
public enum SessionSignature: Hashable, Sendable {
    /// `0x00 ‖ permissionId ‖ sessionValidatorSignature`
    case use(permissionId: Bytes32, signature: [UInt8])
    /// `mode ‖ FastLZ(abi.encode(EnableSession, bytes sessionValidatorSignature))`
    case enable(mode: SmartSessionMode, enableSession: EnableSession, signature: [UInt8])

    /// The largest decompressed ENABLE payload accepted: far beyond any real session, small
    /// enough that a hostile signature cannot make us allocate much.
    public static let maximumEnablePayload = 1 << 20

    public var mode: SmartSessionMode {
        switch self {
        case .use: .use
        case .enable(let mode, _, _): mode
        }
    }

    /// The permissionId the contract will use: given for USE, derived from the session otherwise.
    public var permissionId: Bytes32 {
        switch self {
        case .use(let id, _): id
        case .enable(_, let e, _): e.sessionToEnable.permissionId
        }
    }

    /// The session validator's signature (the bytes the session key produced).
    public var validatorSignature: [UInt8] {
        switch self {
        case .use(_, let s), .enable(_, _, let s): s
        }
    }

    /// The ABI payload of ENABLE modes, before compression.
    public static func enablePayload(_ e: EnableSession, signature: [UInt8]) -> [UInt8] {
        try! ABI.encode([e.abiValue, .bytes(signature)], as: [SessionABI.enableSession, .bytes])
    }

    public var encoded: [UInt8] {
        switch self {
        case .use(let id, let sig):
            return [SmartSessionMode.use.rawValue] + id.bytes + sig
        case .enable(let mode, let e, let sig):
            return [mode.rawValue] + FastLZ.compress(Self.enablePayload(e, signature: sig))
        }
    }

    public init(decoding bytes: [UInt8]) throws(SmartSessionError) {
        guard let first = bytes.first else { throw SmartSessionError("empty signature") }
        guard let mode = SmartSessionMode(rawValue: first) else {
            throw SmartSessionError("unknown Smart Sessions mode byte 0x\(String(first, radix: 16)) (0 USE, 1 ENABLE, 2 UNSAFE_ENABLE)")
        }
        switch mode {
        case .use:
            guard bytes.count >= 33 else { throw SmartSessionError("a USE signature needs the 32-byte permissionId, got \(bytes.count - 1) bytes") }
            self = .use(permissionId: Bytes32(bytes[1..<33]), signature: Array(bytes[33...]))
        case .enable, .unsafeEnable:
            let payload: [UInt8]
            do { payload = try FastLZ.decompress(Array(bytes[1...]), maximumSize: Self.maximumEnablePayload) } catch {
                throw SmartSessionError("enable data: \(error)")
            }
            let values: [ABIValue]
            do { values = try ABI.decode(payload, as: [SessionABI.enableSession, .bytes]) } catch {
                throw SmartSessionError("enable data: \(error)")
            }
            guard case .bytes(let sig) = values[1] else { throw SmartSessionError("enable data: unexpected shape") }
            self = .enable(mode: mode, enableSession: try EnableSession(abi: values[0]), signature: sig)
        }
    }
}
