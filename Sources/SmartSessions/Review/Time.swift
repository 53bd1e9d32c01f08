import EthereumCore

/// UTC dates and relative times, computed without locale or time-zone settings so a
/// rendering is the same on every machine.
public enum UTCTime {
    /// "2026-01-01 00:00:00 UTC"
    public static func format(_ seconds: UInt64) -> String {
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

    /// Seconds since 1970 (negative before) of an RFC 3339 time in whole seconds, in UTC
    /// ("2026-12-01T00:00:00Z") or at an offset ("2026-12-01T02:00:00+02:00"); nil for any other
    /// text, and for a date or time that does not exist. Foundation's parser moved February 30th
    /// on to March 2nd, and 24:00 to the next day: a time frame must end when it was written to.
    static func seconds(rfc3339 text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count == 20 || b.count == 25 else { return nil }
        func number(_ at: Int, _ digits: Int) -> Int64? {
            var n: Int64 = 0
            for c in b[at..<at + digits] {
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                n = n * 10 + Int64(c - UInt8(ascii: "0"))
            }
            return n
        }
        func at(_ i: Int, _ c: Character) -> Bool { b[i] == c.asciiValue! }
        guard at(4, "-"), at(7, "-"), at(10, "T"), at(13, ":"), at(16, ":"),
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2) else { return nil }
        var offset: Int64 = 0
        if b.count == 20 {
            guard at(19, "Z") else { return nil }
        } else {
            guard at(19, "+") || at(19, "-"), at(22, ":"), let hours = number(20, 2), let minutes = number(23, 2), hours < 24, minutes < 60 else { return nil }
            offset = (hours * 3600 + minutes * 60) * (at(19, "-") ? -1 : 1)
        }
        guard CivilDate.exists(year: year, month: month, day: day), hour < 24, minute < 60, second < 60 else { return nil }
        // Days since 1970-01-01 from a civil date (the inverse of `format`'s algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
        return days * 86400 + hour * 3600 + minute * 60 + second - offset
    }

    /// "in 3 days", "5 hours ago", "now"
    public static func relative(_ seconds: UInt64, now: UInt64) -> String {
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
