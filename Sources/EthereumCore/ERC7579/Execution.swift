/// Why ERC-7579 execute calldata was rejected.
public struct ExecutionError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The first byte of an ERC-7579 execution mode.
public struct CallType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let single = CallType(rawValue: 0x00)
    public static let batch = CallType(rawValue: 0x01)
    public static let staticCall = CallType(rawValue: 0xFE)
    public static let delegateCall = CallType(rawValue: 0xFF)

    public var description: String {
        switch self {
        case .single: "single"
        case .batch: "batch"
        case .staticCall: "staticcall"
        case .delegateCall: "delegatecall"
        default: "unknown(0x\(String(rawValue, radix: 16)))"
        }
    }
}

/// The second byte of an ERC-7579 execution mode.
public struct ExecType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Revert when a call reverts.
    public static let `default` = ExecType(rawValue: 0x00)
    /// Carry on when a call reverts.
    public static let `try` = ExecType(rawValue: 0x01)

    public var description: String {
        switch self {
        case .default: "default"
        case .try: "try"
        default: "unknown(0x\(String(rawValue, radix: 16)))"
        }
    }
}

/// The 32-byte ERC-7579 mode: callType(1) ‖ execType(1) ‖ unused(4) ‖ modeSelector(4) ‖ payload(22).
public struct ExecutionMode: Hashable, Sendable {
    public var callType: CallType
    public var execType: ExecType
    public var unused: [UInt8]
    public var modeSelector: [UInt8]
    public var payload: [UInt8]

    public init(callType: CallType, execType: ExecType = .default, modeSelector: [UInt8] = [0, 0, 0, 0], payload: [UInt8] = .init(repeating: 0, count: 22)) {
        precondition(modeSelector.count == 4 && payload.count == 22)
        self.callType = callType
        self.execType = execType
        self.unused = [0, 0, 0, 0]
        self.modeSelector = modeSelector
        self.payload = payload
    }

    public init(word: Bytes32) {
        let b = word.bytes
        callType = CallType(rawValue: b[0])
        execType = ExecType(rawValue: b[1])
        unused = Array(b[2..<6])
        modeSelector = Array(b[6..<10])
        payload = Array(b[10..<32])
    }

    public var word: Bytes32 { Bytes32([callType.rawValue, execType.rawValue] + unused + modeSelector + payload) }
}

/// One call: `Execution(address target, uint256 value, bytes callData)`.
public struct Execution: Hashable, Sendable {
    public var target: Address
    public var value: UInt256
    public var callData: [UInt8]

    public init(target: Address, value: UInt256 = 0, callData: [UInt8] = []) {
        self.target = target
        self.value = value
        self.callData = callData
    }

    /// The selector the call's policies are keyed by: the first four bytes, or 0xffffffff for
    /// calldata shorter than four bytes (a plain value transfer).
    public var selector: [UInt8] { callData.count >= 4 ? Array(callData[0..<4]) : [0xff, 0xff, 0xff, 0xff] }
}

/// An ERC-7579 `execute(bytes32 mode, bytes executionCalldata)` call.
public struct ExecuteCall: Hashable, Sendable {
    public enum Calls: Hashable, Sendable {
        case single(Execution)
        case batch([Execution])
        /// target ‖ callData; there is no value.
        case delegateCall(target: Address, callData: [UInt8])
    }

    public var mode: ExecutionMode
    public var calls: Calls

    /// `execute(bytes32,bytes)`
    public static let selector: [UInt8] = [0xe9, 0xae, 0x5c, 0x53]
    static let batchType = ABIType.array(.tuple([ABIParameter("target", .address), ABIParameter("value", .uint256), ABIParameter("callData", .bytes)]))

    public init(mode: ExecutionMode, calls: Calls) {
        self.mode = mode
        self.calls = calls
    }

    public static func single(_ e: Execution, execType: ExecType = .default) -> ExecuteCall {
        ExecuteCall(mode: ExecutionMode(callType: .single, execType: execType), calls: .single(e))
    }

    public static func batch(_ es: [Execution], execType: ExecType = .default) -> ExecuteCall {
        ExecuteCall(mode: ExecutionMode(callType: .batch, execType: execType), calls: .batch(es))
    }

    /// The executions, whatever the call type.
    public var executions: [Execution] {
        switch calls {
        case .single(let e): [e]
        case .batch(let es): es
        case .delegateCall(let t, let d): [Execution(target: t, callData: d)]
        }
    }

    public var executionCalldata: [UInt8] {
        switch calls {
        case .single(let e): e.target.bytes + e.value.bigEndianBytes + e.callData
        case .batch(let es):
            try! ABI.encode(.array(es.map { .tuple([.address($0.target), .uint($0.value), .bytes($0.callData)]) }), as: Self.batchType)
        case .delegateCall(let t, let d): t.bytes + d
        }
    }

    /// selector ‖ abi.encode(mode, executionCalldata)
    public var calldata: [UInt8] {
        Self.selector + (try! ABI.encode([.bytes32(mode.word), .bytes(executionCalldata)], as: [.bytes32, .bytes]))
    }

    /// Strict decoding: canonical ABI for the outer call and for batches; the call type must
    /// match the calls (single ≥ 52 bytes, delegatecall ≥ 20 bytes).
    public init(calldata: [UInt8]) throws(ExecutionError) {
        guard calldata.count >= 4, Array(calldata[0..<4]) == Self.selector else {
            throw ExecutionError("not an ERC-7579 execute(bytes32,bytes) call")
        }
        let args: [ABIValue]
        do { args = try ABI.decode(Array(calldata[4...]), as: [.bytes32, .bytes]) } catch {
            throw ExecutionError("execute arguments: \(error)")
        }
        guard case .fixedBytes(let modeBytes) = args[0], case .bytes(let data) = args[1] else {
            throw ExecutionError("execute arguments: unexpected shape")
        }
        mode = ExecutionMode(word: Bytes32(modeBytes))
        switch mode.callType {
        case .single:
            guard data.count >= 52 else { throw ExecutionError("single execution needs target(20) ‖ value(32), got \(data.count) bytes") }
            calls = .single(Execution(target: Address(exactly: data[0..<20])!, value: UInt256(bigEndian: data[20..<52]), callData: Array(data[52...])))
        case .batch:
            let decoded: ABIValue
            do { decoded = try ABI.decode(data, as: Self.batchType) } catch { throw ExecutionError("batch executions: \(error)") }
            guard case .array(let items) = decoded else { throw ExecutionError("batch executions: unexpected shape") }
            var executions: [Execution] = []
            for item in items {
                guard case .tuple(let f) = item, case .address(let t) = f[0], case .uint(let v) = f[1], case .bytes(let d) = f[2] else {
                    throw ExecutionError("batch executions: unexpected shape")
                }
                executions.append(Execution(target: t, value: v, callData: d))
            }
            calls = .batch(executions)
        case .delegateCall:
            guard data.count >= 20 else { throw ExecutionError("delegatecall needs a 20-byte target, got \(data.count) bytes") }
            calls = .delegateCall(target: Address(exactly: data[0..<20])!, callData: Array(data[20...]))
        default:
            throw ExecutionError("unsupported call type \(mode.callType)")
        }
    }
}
