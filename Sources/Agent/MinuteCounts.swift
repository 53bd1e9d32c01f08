/// How often each uid did something in its current minute (from the first time, until 60 s
/// later): what bounds how much one client can make the agent write, in the audit log and the
/// journal, however fast it asks.
struct MinuteCounts {
    private var minutes: [UInt32: (since: UInt64, count: Int)] = [:]
    /// When the minutes that are over were last dropped: at most once a minute, so what is held
    /// is the uids that asked within the last two minutes, at a cost that does not grow with the
    /// number of requests.
    private var sweptAt: UInt64 = 0

    /// How many uids are held: those whose minute began within the last two minutes.
    var uidsHeld: Int { minutes.count }

    /// `uid`'s count at `now`, and the second its minute is over (0 and now + 60 for a uid whose
    /// minute is over, or that has none).
    func count(_ uid: UInt32, at now: UInt64) -> (count: Int, over: UInt64) {
        guard let minute = minutes[uid], now < minute.since + 60 else { return (0, now + 60) }
        return (minute.count, minute.since + 60)
    }

    /// Counts one more for `uid` at `now`; returns the new count and when its minute is over.
    @discardableResult
    mutating func add(_ uid: UInt32, at now: UInt64) -> (count: Int, over: UInt64) {
        if now >= sweptAt + 60 {
            minutes = minutes.filter { now < $0.value.since + 60 }
            sweptAt = now
        }
        let (count, over) = count(uid, at: now)
        minutes[uid] = (over - 60, count + 1)
        return (count + 1, over)
    }
}
