/// UTC dates and relative times, computed without locale or time-zone settings so a
/// rendering is the same on every machine.
enum UTCTime {
    /// "2026-01-01 00:00:00 UTC"
    static func format(_ seconds: UInt64) -> String {
        let days = Int64(seconds / 86400), rest = Int(seconds % 86400)
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(Int(month)))-\(two(Int(day))) \(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60)) UTC"
    }

    /// "in 3 days", "5 hours ago", "now"
    static func relative(_ seconds: UInt64, now: UInt64) -> String {
        let future = seconds >= now
        let delta = future ? seconds - now : now - seconds
        let text: String
        switch delta {
        case 0..<60: return "now"
        case 60..<3600: text = plural(delta / 60, "minute")
        case 3600..<172_800: text = plural(delta / 3600, "hour")
        default: text = plural(delta / 86400, "day")
        }
        return future ? "in \(text)" : "\(text) ago"
    }

    static func plural(_ n: UInt64, _ unit: String) -> String { "\(n) \(unit)\(n == 1 ? "" : "s")" }
}
