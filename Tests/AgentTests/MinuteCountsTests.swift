@testable import Agent
import Testing

/// The per-uid minutes that bound what a client can make the agent write: to the second, and
/// what is held for uids that stop asking.
@Suite("Per-uid minute counts")
struct MinuteCountsTests {
    @Test func aMinuteRunsSixtySecondsFromItsFirstCount() {
        var counts = MinuteCounts()
        #expect(counts.count(7, at: 1_000) == (0, 1_060))
        #expect(counts.add(7, at: 1_000) == (1, 1_060))
        #expect(counts.add(7, at: 1_059) == (2, 1_060))
        #expect(counts.count(7, at: 1_059) == (2, 1_060))
        #expect(counts.count(8, at: 1_059) == (0, 1_119), "another uid has its own minute")
        #expect(counts.count(7, at: 1_060) == (0, 1_120), "over at its 60th second")
        #expect(counts.add(7, at: 1_060) == (1, 1_120))
    }

    @Test func uidsThatStopAskingAreDroppedWithinTwoMinutes() {
        var counts = MinuteCounts()
        for uid in UInt32(0)..<1_000 { counts.add(uid, at: 5_000 + UInt64(uid % 30)) }
        #expect(counts.add(0, at: 5_059) == (2, 5_060))
        #expect(counts.uidsHeld == 1_000, "every minute still running")
        counts.add(1_000, at: 5_060)
        #expect(counts.uidsHeld == 1_000 - 34 + 1, "the 34 minutes begun at 5_000 are over")
        counts.add(1_001, at: 5_119)
        #expect(counts.uidsHeld == 968, "dropped at most once a minute: the rest wait")
        #expect(counts.count(999, at: 5_119) == (0, 5_179), "though their minutes are over")
        counts.add(1_002, at: 5_120)
        #expect(counts.uidsHeld == 2, "only uid 1001's minute is still running, and uid 1002's new one")
        #expect(counts.count(1_001, at: 5_120) == (1, 5_179))
    }
}
