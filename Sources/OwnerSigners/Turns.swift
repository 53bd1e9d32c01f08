/// Async work that must not overlap across its suspension points, where a lock cannot be held:
/// one PIN prompt per token at a time, one dialog on a terminal at a time. Bodies run one after
/// the other, in the order they arrived.
public actor Turns {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func run<T: Sendable, E: Error>(_ body: @Sendable () async throws(E) -> T) async throws(E) -> T {
        await begin()
        defer { end() }
        return try await body()
    }

    /// Waits for a turn that lasts until `end`, for work that does not fit one closure (a notice
    /// shown now and taken down later).
    public func begin() async {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            busy = true
        }
    }

    /// Ends the turn `begin` gave. It passes straight to the next in line, so no newcomer can
    /// slip in between.
    public func end() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
}
