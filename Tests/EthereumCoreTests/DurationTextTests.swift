import EthereumCore
import Testing

/// Durations as people write them, read and written back.
@Suite("Durations")
struct DurationTextTests {
    /// Written in the largest unit that divides them, and read back as the same seconds.
    @Test func aDurationIsWrittenInItsLargestWholeUnit() throws {
        for (seconds, text) in [(UInt64(1), "1s"), (59, "59s"), (60, "1m"), (90, "90s"), (1800, "30m"), (3600, "1h"), (5400, "90m"), (86400, "1d"),
                                (43200, "12h"), (604_800, "1w"), (1_209_600, "2w"), (691_200, "8d"), (DurationText.maximumSeconds, "1099511627776s")] {
            #expect(DurationText.text(seconds) == text)
            #expect(try DurationText.seconds(text) == seconds, "\(text)")
        }
        // Random ones, read back whole.
        for _ in 0..<1000 {
            let seconds = UInt64.random(in: 1...DurationText.maximumSeconds)
            #expect(try DurationText.seconds(DurationText.text(seconds)) == seconds, "\(seconds)")
        }
    }
}
