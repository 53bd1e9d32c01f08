import Foundation
@testable import OwnerSigners
import Synchronization
import Testing

/// One timer looks after every waiting call: a call done in time never expires, and the others
/// expire, each once, also those whose deadline came before the timer's.
@Suite("Deadlines of calls into a module")
struct DeadlinesTests {
    @Test(.timeLimit(.minutes(1))) func onlyCallsNotDoneExpireEachOnce() async throws {
        let deadlines = Deadlines()
        let expired = Mutex<[String]>([])
        let (allExpired, expiring) = AsyncStream<Void>.makeStream()
        func watch(_ name: String, after seconds: Double) -> UInt64 {
            deadlines.watch(until: .now + .milliseconds(Int(seconds * 1000))) {
                if expired.withLock({ $0.append(name); return $0.count == 3 }) { expiring.finish() }
            }
        }
        // A long deadline first sets the timer; the sooner ones that follow must set it again.
        _ = watch("late", after: 0.6)
        let done = watch("done", after: 0.1)
        _ = watch("early", after: 0.2)
        _ = watch("middle", after: 0.4)
        deadlines.done(done)
        for await _ in allExpired {}
        // Each once, in whatever order a loaded machine fires them (the hung-server test shows
        // a sooner deadline setting the timer again: without it, it waits out a minute).
        #expect(expired.withLock { $0 }.sorted() == ["early", "late", "middle"])
    }
}
