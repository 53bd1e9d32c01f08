/// Dates of the proleptic Gregorian calendar, as RFC 3339 and TOML write them.
public enum CivilDate {
    /// Whether the date exists: February 29th only in leap years, no 31st in a 30-day month,
    /// no year 0 (as Python's datetime, the oracle of both readers, has none).
    public static func exists(year: Int64, month: Int64, day: Int64) -> Bool {
        guard year >= 1, (1...12).contains(month) else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days: Int64 = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][Int(month) - 1]
        return (1...days).contains(day)
    }
}
