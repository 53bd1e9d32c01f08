import EthereumCore

/// The account's own operations around sessions (spec §5.4), each one ERC-7579 `execute` in a
/// user operation its owners sign: installing SmartSession (with sessions enabled at once, or
/// none), enabling sessions by call, and ending sessions.
public enum AccountOperation: Hashable, Sendable {
    /// `installModule(1, SmartSession, onInstall data)`, which the account calls on itself.
    case install(sessions: [Session], mode: SmartSessionMode)
    /// SmartSession's `enableSessions(sessions)`: checked against the registry, like an ENABLE.
    case enable(sessions: [Session])
    /// For each permission id, `removeSession` and `revokeEnableSignature` (`ModuleCalls.endSession`).
    case end(permissionIds: [Bytes32])

    /// What the account executes.
    public func call(account: Address, kind: AccountKind, smartSession: Address = SmartSessionAddresses.smartSession) throws(SmartSessionError) -> ExecuteCall {
        switch self {
        case .install(let sessions, let mode):
            let data = try ModuleCalls.onInstallData(sessions: sessions, mode: mode)
            return .single(Execution(target: account, callData: ModuleCalls.installValidator(smartSession, initData: kind.validatorInstallData(data))))
        case .enable(let sessions):
            // SmartSession reverts on none (InvalidData).
            guard !sessions.isEmpty else { throw SmartSessionError("enableSessions needs at least one session") }
            return .single(Execution(target: smartSession, callData: ModuleCalls.enableSessions(sessions)))
        case .end(let permissionIds):
            guard !permissionIds.isEmpty else { throw SmartSessionError("ending sessions needs at least one permission id") }
            return .batch(permissionIds.flatMap { ModuleCalls.endSession($0, smartSession: smartSession).executions })
        }
    }
}

extension AccountOperation {
    /// The calls of `call(account:kind:)`, one line each, for people.
    public func callLines(kind: AccountKind) -> [String] {
        switch self {
        case .install(let sessions, let mode):
            let data = sessions.isEmpty ? "no init data" : "init data: mode \(mode) and \(sessions.count) session\(sessions.count == 1 ? "" : "s")"
            return ["the account itself: installModule(1 (validator), SmartSession, \(data)\(kind == .kernel ? "; no hook, and the execute selector granted" : ""))"]
        case .enable(let sessions):
            return ["SmartSession: enableSessions(\(sessions.count) session\(sessions.count == 1 ? "" : "s"))"]
        case .end(let ids):
            return ids.flatMap { ["SmartSession: removeSession(\($0.hex))", "SmartSession: revokeEnableSignature(\($0.hex))"] }
        }
    }
}

/// The validator an ERC-4337 nonce selects (spec §6.6).
public enum NonceValidator: Hashable, Sendable {
    case validator(Address)
    /// Kernel's type 0x00: whichever validator is the account's root.
    case kernelRoot
}

extension AccountKind {
    /// `installModule`'s init data for a validator: the module's own, except on Kernel v3.1,
    /// which reads `hook ‖ abi(validatorData, hookData, selectorData)`; there the hook is
    /// address(1), "none", and `execute` is the one selector granted, the one its session
    /// user operations call.
    public func validatorInstallData(_ moduleData: [UInt8]) -> [UInt8] {
        guard self == .kernel else { return moduleData }
        let noHook = [UInt8](repeating: 0, count: 19) + [1]
        return noHook + (try! ABI.encode([.bytes(moduleData), .bytes([]), .bytes(ExecuteCall.selector)], as: [.bytes, .bytes, .bytes]))
    }

    /// The 192-bit nonce key that selects `validator` for a user operation (nonce = key << 64 |
    /// sequence), as module-sdk writes it for the others; for Kernel, the root type (0x00),
    /// since its owners' validator is normally the root, which may call any selector.
    public func nonceKey(validator: Address) -> UInt256 {
        let key: [UInt8] = switch self {
        case .erc7579Reference, .safe7579: validator.bytes + [0, 0, 0, 0]
        // [3 free bytes][mode 0x00: validate][validator]
        case .nexus: [0, 0, 0, 0] + validator.bytes
        // [mode 0x00: default][type 0x00: root][validator, ignored][2-byte key]
        case .kernel: [0, 0] + validator.bytes + [0, 0]
        }
        return UInt256(bigEndian: key)
    }

    /// The validator the account hands a user operation with `nonce` to.
    public func validator(selectedBy nonce: UInt256) throws(SmartSessionError) -> NonceValidator {
        let b = nonce.bigEndianBytes
        switch self {
        case .erc7579Reference, .safe7579:
            return .validator(Address(exactly: b[0..<20])!)
        case .nexus:
            guard b[3] == 0 else { throw SmartSessionError("a Nexus nonce's fourth byte is its mode, 0x00 (validate) here, not 0x\(Hex.encode([b[3]], prefix: false))") }
            return .validator(Address(exactly: b[4..<24])!)
        case .kernel:
            guard b[0] == 0 else { throw SmartSessionError("a Kernel nonce's first byte is its mode, 0x00 (default) here, not 0x\(Hex.encode([b[0]], prefix: false))") }
            switch b[1] {
            case 0x00: return .kernelRoot
            case 0x01: return .validator(Address(exactly: b[2..<22])!)
            default: throw SmartSessionError("a Kernel nonce's second byte selects the root (0x00) or a validator (0x01), not 0x\(Hex.encode([b[1]], prefix: false))")
            }
        }
    }
}
