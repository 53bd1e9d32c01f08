import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The one agent serving a data directory. Two agents on one store would each keep the
/// sessions' ledgers in memory and together sign past their limits, so a second is refused at
/// start. The lock is the kernel's (flock): it goes with the process, however that ends.
public final class InstanceLock {
    private let fd: Int32

    public init(directory: String) throws(AgentError) {
        let path = directory + "/agent.lock"
        // `fd` is set last, as in AgentClient: a refused lock's file is closed here only.
        let locked = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard locked >= 0 else { throw AgentError("bad_config", "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(locked, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(locked)
            throw AgentError("already_running", "another session-agent\(holder.map { " (pid \($0))" } ?? "") serves \(directory): "
                             + "two would each keep the sessions' limits in memory and together sign past them")
        }
        // For the message a second agent gives.
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(locked, 0)
        _ = pid.withUnsafeBytes { pwrite(locked, $0.baseAddress, $0.count, 0) }
        fd = locked
    }

    deinit { close(fd) }
}
