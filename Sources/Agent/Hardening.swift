internal import CLinuxShims
#if canImport(Glibc)
import Glibc
#endif

/// Process hardening for the agent: files it creates are private, and no core dump or
/// ptrace-style access can lift secrets out of its memory.
public enum Hardening {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func apply() throws {
        // Sockets, the database and logs are created 0600 (directories get 0700 explicitly).
        umask(0o177)
        // Not dumpable: no core file, and /proc/PID/mem is closed to other processes of the uid.
        guard CLinuxShims_setDumpable(0) == 0 else {
            throw Failure(description: "prctl(PR_SET_DUMPABLE): \(String(cString: strerror(errno)))")
        }
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        guard setrlimit(Int32(RLIMIT_CORE.rawValue), &none) == 0 else {
            throw Failure(description: "setrlimit(RLIMIT_CORE): \(String(cString: strerror(errno)))")
        }
        // A write past a file-size limit (systemd's LimitFSIZE=) fails as on a full disk, an
        // error the agent answers, instead of killing it.
        signal(SIGXFSZ, SIG_IGN)
    }

    /// Whether `apply()` is in force, as the kernel reports it.
    public static var isApplied: Bool {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_CORE.rawValue), &limit)
        return CLinuxShims_getDumpable() == 0 && limit.rlim_cur == 0 && limit.rlim_max == 0
    }
}
