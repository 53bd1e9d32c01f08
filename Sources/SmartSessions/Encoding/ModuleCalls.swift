import EthereumCore

/// Calldata for the account operations around sessions (spec §5.4).
public enum ModuleCalls {
    static let enableSessionsFunction = ABIFunction(name: "enableSessions", inputs: [ABIParameter("sessions", SessionABI.sessions)])
    static let removeSessionFunction = ABIFunction(name: "removeSession", inputs: [ABIParameter("permissionId", .bytes32)])
    static let revokeFunction = ABIFunction(name: "revokeEnableSignature", inputs: [ABIParameter("permissionId", .bytes32)])
    static let installModuleFunction = ABIFunction(name: "installModule", inputs: [
        ABIParameter("moduleTypeId", .uint256), ABIParameter("module", .address), ABIParameter("initData", .bytes),
    ])

    /// ERC-7579 module type of a validator (SmartSession is one).
    public static let validatorModuleType: UInt64 = 1

    /// `onInstall` data: empty, or `mode ‖ abi.encode(Session[])` with mode ENABLE or UNSAFE_ENABLE.
    public static func onInstallData(sessions: [Session], mode: SmartSessionMode = .enable) throws(SmartSessionError) -> [UInt8] {
        if sessions.isEmpty { return [] }
        guard mode != .use else { throw SmartSessionError("onInstall data takes ENABLE or UNSAFE_ENABLE") }
        return [mode.rawValue] + (try! ABI.encode([.array(sessions.map(\.abiValue))], as: [SessionABI.sessions]))
    }

    /// Decodes `onInstall` data back into its mode and sessions.
    public static func decodeOnInstallData(_ data: [UInt8]) throws(SmartSessionError) -> (mode: SmartSessionMode, sessions: [Session])? {
        guard let first = data.first else { return nil }
        guard let mode = SmartSessionMode(rawValue: first), mode != .use else {
            throw SmartSessionError("onInstall mode byte must be 1 or 2, got \(first)")
        }
        let value: ABIValue
        do { value = try ABI.decode(Array(data[1...]), as: SessionABI.sessions) } catch { throw SmartSessionError("onInstall data: \(error)") }
        guard case .array(let items) = value else { throw SmartSessionError("onInstall data: unexpected shape") }
        var sessions: [Session] = []
        for item in items { sessions.append(try Session(abi: item)) }
        return (mode, sessions)
    }

    /// `enableSessions(Session[])`, called by the account on SmartSession (no owner signature).
    public static func enableSessions(_ sessions: [Session]) -> [UInt8] {
        try! enableSessionsFunction.encodeCall([.array(sessions.map(\.abiValue))])
    }

    public static func removeSession(_ permissionId: Bytes32) -> [UInt8] {
        try! removeSessionFunction.encodeCall([.bytes32(permissionId)])
    }

    /// Increments the enable nonce, invalidating outstanding enable signatures.
    public static func revokeEnableSignature(_ permissionId: Bytes32) -> [UInt8] {
        try! revokeFunction.encodeCall([.bytes32(permissionId)])
    }

    /// What the account executes to end a session on chain: `removeSession` drops its policies,
    /// and `revokeEnableSignature` moves its enable nonce on, so that no ENABLE signature its
    /// owners gave enables it again. Each acts on the calling account's state only, and neither
    /// reverts for a session that was never enabled.
    public static func endSession(_ permissionId: Bytes32, smartSession: Address = SmartSessionAddresses.smartSession) -> ExecuteCall {
        .batch([Execution(target: smartSession, callData: removeSession(permissionId)),
                Execution(target: smartSession, callData: revokeEnableSignature(permissionId))])
    }

    /// The account's `installModule(1, SmartSession, onInstallData)`.
    public static func installSmartSession(sessions: [Session] = [], mode: SmartSessionMode = .enable,
                                           module: Address = SmartSessionAddresses.smartSession) throws(SmartSessionError) -> [UInt8] {
        installValidator(module, initData: try onInstallData(sessions: sessions, mode: mode))
    }

    /// The account's `installModule(1, module, initData)`.
    public static func installValidator(_ module: Address, initData: [UInt8]) -> [UInt8] {
        try! installModuleFunction.encodeCall([.uint(UInt256(validatorModuleType)), .address(module), .bytes(initData)])
    }

    /// The sessions of an `enableSessions` call.
    public static func decodeEnableSessions(_ calldata: [UInt8]) throws(SmartSessionError) -> [Session] {
        let args: [ABIValue]
        do { args = try enableSessionsFunction.decodeCall(calldata) } catch { throw SmartSessionError("enableSessions: \(error)") }
        guard case .array(let items) = args[0] else { throw SmartSessionError("enableSessions: unexpected shape") }
        var sessions: [Session] = []
        for item in items { sessions.append(try Session(abi: item)) }
        return sessions
    }
}
