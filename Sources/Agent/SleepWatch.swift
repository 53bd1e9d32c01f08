internal import CSleepWatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// logind's word that the machine is about to sleep, or woke (its PrepareForSleep signal on the
/// system bus), for `lock_on_sleep`.
enum SleepWatch {
    enum Event: Sendable {
        case goingToSleep, woke
        /// The bus connection ended: nothing more will be heard.
        case busGone
    }

    /// Calls `handler` for each event, on a thread of the watch's own, for as long as the process
    /// runs; the watch waits for `handler` to return before it reads on, and logind waits for it
    /// before the machine sleeps when the watch holds a delay lock (true when it does). Throws
    /// when the bus cannot be reached.
    static func start(_ handler: @escaping @Sendable (Event) -> Void) throws(AgentError) -> Bool {
        // Kept for the life of the process, as the watch's thread is.
        let context = Unmanaged.passRetained(Handler(handler)).toOpaque()
        let started = CSleepWatch_start({ context, event in
            Unmanaged<Handler>.fromOpaque(context!).takeUnretainedValue().call(event == 1 ? .goingToSleep : event == 0 ? .woke : .busGone)
        }, context)
        guard started >= 0 else {
            Unmanaged<Handler>.fromOpaque(context).release()
            throw AgentError("bad_config", "lock_on_sleep: logind cannot be heard on the system bus: \(String(cString: strerror(-started)))")
        }
        return started == 1
    }

    private final class Handler: Sendable {
        let call: @Sendable (Event) -> Void
        init(_ call: @escaping @Sendable (Event) -> Void) { self.call = call }
    }
}
