/// Durations as people write them in requests, rules files and the configuration: a whole
/// number and one unit, "90s", "15m", "12h", "3d", "2w".
public enum DurationText {
    /// The longest taken, about 34,000 years: far enough from UInt64's end that a time plus a
    /// duration never overflows.
    public static let maximumSeconds: UInt64 = 1 << 40

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed
        case unknownUnit(Character)
        case tooLong

        public var description: String {
            switch self {
            case .malformed: #"expected a duration like "3d", "12h", "30m""#
            case .unknownUnit(let unit): "unknown duration unit \(unit) (s, m, h, d, w)"
            case .tooLong: "too long"
            }
        }
    }

    /// `seconds` as `seconds(_:)` reads it, in the largest unit that divides it: "30m", "12h".
    public static func text(_ seconds: UInt64) -> String {
        let unit = [("w", UInt64(604_800)), ("d", 86400), ("h", 3600), ("m", 60)].first { seconds > 0 && seconds % $0.1 == 0 }
        return unit.map { "\(seconds / $0.1)\($0.0)" } ?? "\(seconds)s"
    }

    /// The seconds `text` stands for; zero is refused, as a mistake.
    public static func seconds(_ text: String) throws(Failure) -> UInt64 {
        guard let unit = text.last, let n = UInt64(text.dropLast()), n > 0 else { throw .malformed }
        let scale: UInt64
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3600
        case "d": scale = 86400
        case "w": scale = 604_800
        default: throw .unknownUnit(unit)
        }
        let (seconds, overflow) = n.multipliedReportingOverflow(by: scale)
        guard !overflow, seconds <= maximumSeconds else { throw .tooLong }
        return seconds
    }
}
