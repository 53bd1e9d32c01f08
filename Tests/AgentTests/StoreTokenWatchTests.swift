@testable import Agent
import Testing

@Suite("How often the store's token is looked for")
struct StoreTokenWatchTests {
    /// The module is initialised again after 1, 2, 4 … 32 looks without the token, then every
    /// 30 (a look is a second): about 120 times an hour, not 3600.
    @Test func theModuleIsInitialisedAgainLessAndLessOften() {
        let due = (0..<3600).filter { Agent.rescanDue(afterLooks: $0) }
        #expect(Array(due.prefix(10)) == [0, 1, 2, 4, 8, 16, 32, 60, 90, 120])
        #expect(due.count == 125)
        #expect(zip(due, due.dropFirst()).allSatisfy { $1 - $0 <= 30 })
    }
}
