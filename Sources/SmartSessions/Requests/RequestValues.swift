import EthereumCore
import Foundation

/// Parses the values people write in requests: amounts with units, times and durations.
struct RequestValues {
    var tokens: TokenList
    var chains: [UInt64]
    var now: UInt64

    /// What an amount counts: the chain's coin, one token, or a function's argument, which may
    /// be either.
    enum Denomination { case native, token(Address), either }

    /// "100 USDC" (decimals from the token list), "0.1 ETH", "5 gwei", "1000" (base units),
    /// or a JSON integer. A unit that is not what the amount counts is refused: "1 ETH" as a
    /// USDC limit would be 10^18 base units of USDC, "1 USDC" as a native limit 10^6 wei.
    func amount(_ value: JSONValue, path: String, of denomination: Denomination) throws(SmartSessionError) -> UInt256 {
        switch value {
        case .number(let n):
            return try JSONFields.integer(.number(n), path: path)
        case .string(let text):
            let parts = text.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count == 1 { return try JSONFields.integer(.string(text), path: path) }
            guard parts.count == 2 else { throw SmartSessionError("\(path): write an amount as \"100 USDC\", \"0.1 ETH\" or base units") }
            let unit = String(parts[1])
            let decimals: Int
            if let native = Self.nativeUnits[unit.lowercased()] {
                if case .token(let token) = denomination {
                    let named = tokens.token(chains: chains, address: token).map { "in \($0.symbol) or" } ?? "in"
                    throw SmartSessionError("\(path): an amount of the token \(token) is \(named) base units, not \(unit)")
                }
                decimals = native
            } else {
                if case .native = denomination {
                    throw SmartSessionError("\(path): native value is in ETH, gwei or wei, not \(unit)")
                }
                let found: TokenInfo?
                do { found = try tokens.token(symbol: unit, chains: chains) } catch { throw SmartSessionError("\(path): \(error.message)") }
                guard let t = found else {
                    throw SmartSessionError("\(path): unknown token \(unit) on \(chains.map(Chains.label).joined(separator: ", ")); give the amount in base units or add the token to the token list")
                }
                if case .token(let token) = denomination, token != t.address {
                    throw SmartSessionError("\(path): \(unit) is \(t.address), but this limit is for \(token)")
                }
                decimals = t.decimals
            }
            do { return try Amounts.parse(String(parts[0]), decimals: decimals) } catch {
                throw SmartSessionError("\(path): \(error.message)")
            }
        default:
            throw SmartSessionError("\(path): expected an amount")
        }
    }

    /// The chain's coin by unit, with its decimals.
    static let nativeUnits = ["eth": 18, "ether": 18, "gwei": 9, "wei": 0]

    /// A point in time: unix seconds, or an RFC 3339 (ISO 8601) time ("2026-12-01T00:00:00Z").
    func time(_ value: JSONValue, path: String) throws(SmartSessionError) -> UInt64 {
        if case .string(let s) = value, s.contains("-") {
            guard let seconds = UTCTime.seconds(rfc3339: s) else {
                throw SmartSessionError("\(path): expected a date and time that exist, in whole seconds, like 2026-12-01T00:00:00Z or 2026-12-01T02:00:00+02:00")
            }
            guard seconds >= 0 else { throw SmartSessionError("\(path): before 1970") }
            return UInt64(seconds)
        }
        let v = try JSONFields.integer(value, path: path)
        guard let seconds = v.uint64, seconds < 1 << 48 else { throw SmartSessionError("\(path): out of range") }
        return seconds
    }

    /// "90s", "15m", "12h", "3d", "2w".
    func duration(_ value: JSONValue, path: String) throws(SmartSessionError) -> UInt64 {
        do { return try DurationText.seconds(value.stringValue ?? "") } catch { throw SmartSessionError("\(path): \(error)") }
    }

    /// `{"until": …, "after": …, "duration": …}` → TimeFramePolicy.
    func validity(_ value: JSONValue, path: String) throws(SmartSessionError) -> PolicyConfig {
        let f = try JSONFields(value, path: path)
        try f.only(["until", "after", "duration"])
        let after = try f.optional("after").map { v throws(SmartSessionError) in try time(v, path: f.field("after")) } ?? 0
        var until: UInt64 = 0
        if let u = f.optional("until") { until = try time(u, path: f.field("until")) }
        if let d = f.optional("duration") {
            guard until == 0 else { throw SmartSessionError("\(path): give \"until\" or \"duration\", not both") }
            let (end, overflow) = max(after, now).addingReportingOverflow(try duration(d, path: f.field("duration")))
            // A time frame's times are uint48.
            guard !overflow, end < 1 << 48 else { throw SmartSessionError("\(f.field("duration")): ends beyond a time frame's range (2^48 s)") }
            until = end
        }
        guard until != 0 || after != 0 else { throw SmartSessionError("\(path): give \"until\", \"duration\" or \"after\"") }
        guard until == 0 || after <= until else { throw SmartSessionError("\(path): \"after\" is later than \"until\"") }
        return .timeFrame(validUntil: until, validAfter: after)
    }

    func count(_ value: JSONValue, path: String) throws(SmartSessionError) -> UInt256 {
        let v = try JSONFields.integer(value, path: path)
        guard !v.isZero, v.bitWidth <= 128 else { throw SmartSessionError("\(path): must be between 1 and 2^128-1") }
        return v
    }
}
