import EthereumCore

/// Compiles argument rules written by parameter name ("to == 0x…", "amount <= 100 USDC",
/// "amount in [1, 5]", "total(amount) <= 1000 USDC") into UniAction/ArgPolicy rules at the
/// parameter's calldata offset.
struct ArgumentRuleCompiler {
    let function: ABIFunction
    let values: RequestValues
    /// What the function's uint parameters count: the target token's units for an ERC-20
    /// transfer or approval, so "amount <= 100 USDC" cannot limit a WETH transfer to
    /// 10^8 wei of WETH; any unit for other functions.
    let amounts: RequestValues.Denomination

    /// The parameter's type and the offset of its word after the selector.
    func parameter(_ name: String, path: String) throws(SmartSessionError) -> (ABIType, UInt64) {
        var offset = 0
        for p in function.inputs {
            if p.name == name {
                switch p.type {
                case .uint, .address, .bool, .fixedBytes: return (p.type, UInt64(offset))
                case .int:
                    throw SmartSessionError("\(path): \(name) is \(p.type.canonical); the policy compares words as unsigned integers, so rules on signed parameters are refused")
                default:
                    throw SmartSessionError("\(path): \(name) is \(p.type.canonical); rules apply to static elementary parameters (uint, address, bool, bytesN) only")
                }
            }
            offset += p.type.headSize
        }
        let names = function.inputs.map(\.name).filter { !$0.isEmpty }
        throw SmartSessionError("\(path): \(function.name) has no parameter \(String(reflecting: name)) (it has \(names.isEmpty ? "no named parameters" : names.joined(separator: ", ")))")
    }

    /// The 32-byte word a value of `type` is compared as.
    func word(_ text: String, _ type: ABIType, path: String) throws(SmartSessionError) -> UInt256 {
        let trimmed = text.trimmingSpaces
        switch type {
        case .address:
            do { return UInt256(try Address(trimmed).word) } catch { throw SmartSessionError("\(path): \(error)") }
        case .bool:
            guard trimmed == "true" || trimmed == "false" else { throw SmartSessionError("\(path): expected true or false") }
            return trimmed == "true" ? .one : .zero
        case .fixedBytes(let n):
            let b = try JSONFields.bytes(.string(trimmed), path: path)
            guard b.count == n else { throw SmartSessionError("\(path): expected \(n) bytes") }
            return UInt256(Bytes32(b + [UInt8](repeating: 0, count: 32 - n)))
        case .uint(let bits):
            let v = try values.amount(.string(trimmed), path: path, of: amounts)
            guard v.bitWidth <= bits else { throw SmartSessionError("\(path): \(v) does not fit in uint\(bits)") }
            return v
        default:
            throw SmartSessionError("\(path): unsupported parameter type \(type.canonical)")
        }
    }

    func compile(_ rule: String, path: String) throws(SmartSessionError) -> ParamRule {
        let text = rule.trimmingSpaces
        if text.hasPrefix("total(") {
            guard let close = text.firstIndex(of: ")") else { throw SmartSessionError("\(path): expected total(name) <= amount") }
            let name = String(text[text.index(text.startIndex, offsetBy: 6)..<close]).trimmingSpaces
            let rest = text[text.index(after: close)...].trimmingSpaces
            guard rest.hasPrefix("<=") else { throw SmartSessionError("\(path): a total is limited with <=, as in total(amount) <= 1000 USDC") }
            let (type, offset) = try parameter(name, path: path)
            guard case .uint = type else { throw SmartSessionError("\(path): totals apply to uint parameters") }
            let limit = try word(String(rest.dropFirst(2)), type, path: path)
            // The comparison always passes; the cumulative limit does the work.
            return ParamRule(condition: .greaterThanOrEqual, offset: offset, isLimited: true, ref: .zero, limit: limit)
        }
        if let range = text.range(of: " in ") {
            let name = String(text[..<range.lowerBound]).trimmingSpaces
            let bounds = text[range.upperBound...].trimmingSpaces
            guard bounds.hasPrefix("["), bounds.hasSuffix("]") else { throw SmartSessionError("\(path): expected name in [min, max]") }
            let parts = bounds.dropFirst().dropLast().split(separator: ",")
            guard parts.count == 2 else { throw SmartSessionError("\(path): expected name in [min, max]") }
            let (type, offset) = try parameter(name, path: path)
            let low = try word(String(parts[0]), type, path: path), high = try word(String(parts[1]), type, path: path)
            guard low.bitWidth <= 128, high.bitWidth <= 128 else { throw SmartSessionError("\(path): range bounds must be below 2^128") }
            guard low <= high else { throw SmartSessionError("\(path): the range is empty") }
            return ParamRule(condition: .inRange, offset: offset, ref: (low.shiftedLeft(128) | high).word)
        }
        let operators: [(String, ParamCondition)] = [("==", .equal), ("!=", .notEqual), ("<=", .lessThanOrEqual), (">=", .greaterThanOrEqual), ("<", .lessThan), (">", .greaterThan)]
        for (symbol, condition) in operators {
            guard let range = text.range(of: symbol) else { continue }
            let name = String(text[..<range.lowerBound]).trimmingSpaces
            let (type, offset) = try parameter(name, path: path)
            if case .address = type, condition != .equal, condition != .notEqual {
                throw SmartSessionError("\(path): addresses are compared with == or !=")
            }
            let ref = try word(String(text[range.upperBound...]), type, path: path)
            return ParamRule(condition: condition, offset: offset, ref: ref.word)
        }
        throw SmartSessionError("\(path): expected a rule like \"to == 0x…\", \"amount <= 100 USDC\", \"amount in [1, 5]\" or \"total(amount) <= 1000 USDC\"")
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
