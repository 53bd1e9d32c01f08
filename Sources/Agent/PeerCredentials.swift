import Approval
internal import CLinuxShims
import Foundation
import NIOCore
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
        var credentials = CLinuxShims_ucred()
        var length = socklen_t(MemoryLayout<CLinuxShims_ucred>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else {
            throw Failure(description: "getsockopt(SO_PEERCRED): \(String(cString: strerror(errno)))")
        }
        return identity(credentials)
    }

    /// The same for a connection the agent's SwiftNIO server accepted (on its event loop the
    /// future is already complete); fails if it cannot be read.
    static func read(channel: Channel) -> EventLoopFuture<ClientIdentity> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(Failure(description: "not a socket"))
        }
        return provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)).map { (c: CLinuxShims_ucred) in identity(c) }
    }

    static func identity(_ c: CLinuxShims_ucred) -> ClientIdentity {
        ClientIdentity(uid: c.uid, gid: c.gid, pid: c.pid, executable: executable(pid: c.pid), unit: systemdUnit(pid: c.pid))
    }

    /// `/proc/PID/exe`; nil when the process is gone or hidden from us.
    public static func executable(pid: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
    }

    /// The systemd unit a process runs in, from the unified (or name=systemd) cgroup path:
    /// the last path component ending in .service or .scope.
    public static func systemdUnit(pid: Int32) -> String? {
        guard let file = FileHandle(forReadingAtPath: "/proc/\(pid)/cgroup") else { return nil }
        defer { try? file.close() }
        return unit(cgroup: String(decoding: file.readDataToEndOfFile(), as: UTF8.self))
    }

    static func unit(cgroup text: String) -> String? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[1].isEmpty || fields[1] == "name=systemd" else { continue }
            if let unit = fields[2].split(separator: "/").last(where: { $0.hasSuffix(".service") || $0.hasSuffix(".scope") }) {
                return String(unit)
            }
        }
        return nil
    }
}
