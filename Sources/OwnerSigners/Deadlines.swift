import Dispatch
import Synchronization

/// The deadlines of calls that may never return (into a PKCS#11 module whose HSM or server
/// hangs), looked after by one timer at a time: a timer per call cost more than the call's
/// handoff itself. A call's `expire` runs once its deadline has passed, unless the call was
/// `done` first.
final class Deadlines: Sendable {
    private struct Waiting {
        var calls: [UInt64: (deadline: ContinuousClock.Instant, expire: @Sendable () -> Void)] = [:]
        var lastID: UInt64 = 0
        /// When the timer fires, while one is set.
        var timer: ContinuousClock.Instant?
    }
    private let waiting = Mutex(Waiting())

    /// Notes a call that `expire` answers unless it is done by `deadline`; returns its id.
    func watch(until deadline: ContinuousClock.Instant, _ expire: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, sooner) = waiting.withLock { waiting in
            waiting.lastID += 1
            waiting.calls[waiting.lastID] = (deadline, expire)
            let sooner = waiting.timer.map { deadline < $0 } ?? true
            if sooner { waiting.timer = deadline }
            return (waiting.lastID, sooner)
        }
        if sooner { expireOverdueCalls(at: deadline) }
        return id
    }

    /// The call `id` returned: its deadline no longer counts.
    func done(_ id: UInt64) {
        waiting.withLock { _ = $0.calls.removeValue(forKey: id) }
    }

    /// At `instant`, expires the calls whose deadline has passed and, unless a sooner timer has
    /// taken its place, sets the timer again for the next deadline.
    private func expireOverdueCalls(at instant: ContinuousClock.Instant) {
        DispatchQueue.global().asyncAfter(deadline: .now() + (instant - .now).seconds) { [self] in
            let now = ContinuousClock.now
            let (overdue, next) = waiting.withLock { waiting -> ([@Sendable () -> Void], ContinuousClock.Instant?) in
                let overdue = waiting.calls.filter { $0.value.deadline <= now }
                for id in overdue.keys { waiting.calls[id] = nil }
                guard waiting.timer == instant else { return (overdue.values.map(\.expire), nil) }
                waiting.timer = waiting.calls.values.map(\.deadline).min()
                return (overdue.values.map(\.expire), waiting.timer)
            }
            overdue.forEach { $0() }
            if let next { expireOverdueCalls(at: next) }
        }
    }
}

extension Duration {
    /// In seconds, as Dispatch counts time.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// The caller's side of work that may not answer in time: answered once, by the work or by its
/// deadline, whichever comes first; a later answer is dropped.
public final class FirstAnswer<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, Never>?>

    public init(_ continuation: CheckedContinuation<T, Never>) { self.continuation = Mutex(continuation) }

    /// Whether the caller still waits.
    public var awaited: Bool { continuation.withLock { $0 != nil } }

    /// Answers the caller unless it has been answered already.
    public func send(_ answer: T) {
        continuation.withLock { waiting in defer { waiting = nil }; return waiting }?.resume(returning: answer)
    }
}

/// A serial queue for blocking calls into something that may never answer (a PKCS#11 module
/// whose HSM hangs, a card reader): each call runs off Swift's cooperative pool, one at a time.
/// A caller not answered within its timeout is answered `overdue` instead, and until that call
/// returns every new call is answered `stuck` at once; a call its caller gave up on before it
/// started is not made.
final class DeviceLine: Sendable {
    let queue: DispatchQueue
    private enum State { case idle, running, overdue }
    private let state = Mutex(State.idle)
    private let deadlines = Deadlines()

    init(label: String) { queue = DispatchQueue(label: label) }

    func run<T: Sendable, E: Error>(timeout: Duration, overdue: @escaping @Sendable () -> E, stuck: () -> E,
                                    _ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        if state.withLock({ $0 == .overdue }) { throw stuck() }
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            let reply = FirstAnswer(continuation)
            let call = deadlines.watch(until: .now + timeout) { [self] in
                state.withLock { if $0 == .running { $0 = .overdue } }
                reply.send(.failure(overdue()))
            }
            queue.async { [self] in
                guard reply.awaited else { return }
                state.withLock { $0 = .running }
                let outcome = Result { () throws(E) -> T in try body() }
                state.withLock { $0 = .idle }
                deadlines.done(call)
                reply.send(outcome)
            }
        }
        return try result.get()
    }
}
