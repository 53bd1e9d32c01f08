import Approval
internal import CLinuxShims
import Foundation
import NIOCore
import SessionStore
#if canImport(Glibc)
import Glibc
#endif

/// Who is at the other end of a Unix socket: SO_PEERCRED (pid, uid, gid as the kernel saw them
/// at connect time), the executable behind the pid, and its systemd unit.
public enum PeerCredentials {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads the peer of a connected AF_UNIX socket.
    public static func read(socket fd: Int32) throws -> ClientIdentity {
        let credentials = try peerCredentials(socket: fd)
        var pidfd: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        let process = getsockopt(fd, SOL_SOCKET, CLinuxShims_SO_PEERPIDFD, &pidfd, &length) == 0 ? ConnectedProcess.held(pidfd) : ConnectedProcess(failure: errno)
        return identity(credentials, process)
    }

    /// The uid the peer had when it connected (or listened): all the CLI asks of the agent it
    /// talks to, without reading the agent's /proc entries.
    public static func uid(socket fd: Int32) throws -> UInt32 { try peerCredentials(socket: fd).uid }

    private static func peerCredentials(socket fd: Int32) throws -> CLinuxShims_ucred {
        var credentials = CLinuxShims_ucred()
        var length = socklen_t(MemoryLayout<CLinuxShims_ucred>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else {
            throw Failure(description: "getsockopt(SO_PEERCRED): \(String(cString: strerror(errno)))")
        }
        return credentials
    }

    /// The same for a connection the agent's SwiftNIO server accepted (on its event loop the
    /// future is already complete); fails if it cannot be read.
    static func read(channel: Channel) -> EventLoopFuture<ClientIdentity> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(Failure(description: "not a socket"))
        }
        let credentials: EventLoopFuture<CLinuxShims_ucred> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return credentials.flatMap { c in
            (provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(CLinuxShims_SO_PEERPIDFD)) as EventLoopFuture<Int32>)
                .map(ConnectedProcess.held)
                .recover { ConnectedProcess(failure: ($0 as? IOError)?.errnoCode ?? EINVAL) }
                .map { identity(c, $0) }
        }
    }

    /// The process that connected, held by a pidfd rather than known by its pid: once it exits,
    /// the kernel may give its pid to any new process, and what `/proc/PID` then says is that
    /// one's. A client could connect, hand the connection to a child and exit, and have the pid
    /// taken by a program a session is bound to (pids wrap at 32768 on many machines).
    enum ConnectedProcess {
        case held(Int32)
        /// It exited before the agent looked (the kernel has no pidfd for it).
        case gone
        /// A kernel before 6.5: the pid is all there is.
        case unknown

        init(failure errno: Int32) { self = errno == ENOPROTOOPT ? .unknown : .gone }

        /// Whether it still runs; closes the pidfd. A pidfd polls readable once its process exits.
        func stillRuns() -> Bool {
            switch self {
            case .held(let pidfd):
                defer { close(pidfd) }
                var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                return poll(&entry, 1, 0) == 0
            case .gone: return false
            case .unknown: return true
            }
        }
    }

    static func identity(_ c: CLinuxShims_ucred, _ process: ConnectedProcess) -> ClientIdentity {
        let program = executable(pid: c.pid)
        let unit = systemdUnit(pid: c.pid)
        let started = if case .running(let since) = state(pid: c.pid) { since } else { UInt64?.none }
        // Checked after reading: what was read is of the process that connected only if it
        // still ran then, so its pid was still its own.
        guard process.stillRuns() else { return ClientIdentity(uid: c.uid, gid: c.gid, pid: c.pid) }
        return ClientIdentity(uid: c.uid, gid: c.gid, pid: c.pid, executable: program.verified, unverifiedExecutable: program.unverified, unit: unit,
                              startTime: started)
    }

    /// Whether a process runs, and since when (its start time, in clock ticks after boot).
    public enum ProcessState: Equatable, Sendable {
        case running(since: UInt64)
        case exited
        /// Its `/proc` entry cannot be read (a /proc mounted with hidepid=): nothing is known.
        case unknown
    }

    /// The state of the process `pid` names now, from `/proc/PID/stat`.
    public static func state(pid: Int32) -> ProcessState {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno == ENOENT || errno == ESRCH ? .exited : .unknown }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = Glibc.read(fd, &buffer, buffer.count)
        // A process that exits after the open reads as empty, or fails with ESRCH.
        guard count > 0 else { return count == 0 || errno == ESRCH ? .exited : .unknown }
        return startTime(stat: buffer[..<count]).map { .running(since: $0) } ?? .unknown
    }

    /// The 22nd field of a `/proc/PID/stat` line. The second, the program's name in
    /// parentheses, may hold spaces and parentheses itself: the fields are counted after the
    /// last ')'.
    static func startTime(stat: some BidirectionalCollection<UInt8>) -> UInt64? {
        guard let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: UInt8(ascii: " "))
        // Fields 3 onwards follow the name: the 22nd is the 20th of them.
        guard fields.count >= 20 else { return nil }
        return UInt64(String(decoding: fields[19], as: UTF8.self))
    }

    /// The path `/proc/PID/exe` names, `verified` when the file the agent finds there is the
    /// one the process runs (same device and inode). The path alone proves nothing: a process in
    /// a mount namespace of its own (`unshare -Urm`, open to any user) can bind its own program
    /// over a path and run it under that name; and a program a package upgrade replaced runs on
    /// as the old file, "… (deleted)". Both are `unverified`, with why. Neither when the
    /// process is gone or hidden from us.
    static func executable(pid: Int32) -> (verified: String?, unverified: ClientIdentity.UnverifiedExecutable?) {
        let exe = "/proc/\(pid)/exe"
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: exe) else { return (nil, nil) }
        var running = stat(), atPath = stat()
        guard stat(exe, &running) == 0 else { return (nil, nil) }
        let seen = stat(path, &atPath) == 0
        if seen, running.st_dev == atPath.st_dev, running.st_ino == atPath.st_ino { return (path, nil) }
        let deleted = " (deleted)"
        if path.hasSuffix(deleted) { return (nil, .init(path: String(path.dropLast(deleted.count)), why: .replaced)) }
        // The system unit hides /home and /tmp from the agent (ProtectHome=, PrivateTmp=).
        return (nil, .init(path: path, why: seen ? .notTheFileThere : .unseen))
    }

    /// The systemd unit a process runs in, from the unified (or name=systemd) cgroup path:
    /// the outermost path component ending in .service or .scope, and after it the innermost,
    /// if another: `user@1000.service/bot.service` for a unit of a user's own service manager.
    public static func systemdUnit(pid: Int32) -> String? {
        guard let file = FileHandle(forReadingAtPath: "/proc/\(pid)/cgroup") else { return nil }
        defer { try? file.close() }
        return unit(cgroup: String(decoding: file.readDataToEndOfFile(), as: UTF8.self))
    }

    static func unit(cgroup text: String) -> String? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[1].isEmpty || fields[1] == "name=systemd" else { continue }
            let units = fields[2].split(separator: "/").filter { $0.hasSuffix(".service") || $0.hasSuffix(".scope") }
            guard let outer = units.first, let inner = units.last else { continue }
            // The outermost unit is the system manager's. What runs inside it may make units of
            // any name (a user's own manager: systemd-run --user --unit=payments-bot; a container
            // running systemd): those are named after the unit they are in, so that none passes
            // for the system's unit of the same name.
            return units.count == 1 ? String(outer) : "\(outer)/\(inner)"
        }
        return nil
    }
}

extension ClientProcess {
    /// Whether the process has ended, by what `/proc` says of its pid now: it exited, or a
    /// later process has the pid. A pid whose entry cannot be read is not taken for ended.
    func hasEnded(_ state: PeerCredentials.ProcessState) -> Bool {
        switch state {
        case .running(let since): since != startTime
        case .exited: true
        case .unknown: false
        }
    }
}
