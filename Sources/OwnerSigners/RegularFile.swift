import EthereumCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file the agent reads by a path it was given: a keystore, a rules file, a PIN or
/// passphrase file. Only a regular file is read, and only up to a limit. A FIFO with no writer
/// held the thread that opened it for good, and two such reads stopped every client, as the
/// agent's work shares two threads on a two-core machine; `/dev/zero` grew the agent until
/// its memory ran out.
public enum RegularFile {
    public struct Unreadable: Error, CustomStringConvertible {
        public let description: String
    }

    /// The file's bytes, and its status as read from the open file (the one read, not one
    /// swapped in at the path since). `what` names the file in errors ("the rules file").
    public static func read(_ path: String, what: String, limit: Int) throws(Unreadable) -> (bytes: [UInt8], status: stat) {
        let (fd, status) = try opened(path, what: what, flags: O_NONBLOCK)
        defer { close(fd) }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw Unreadable(description: "\(what) \(path) is \(kind(status.st_mode)), not a regular file")
        }
        return (try readAll(fd, path: path, what: what, limit: limit), status)
    }

    /// The file open for reading (with `flags` besides), and its status as opened; the caller
    /// closes it.
    static func opened(_ path: String, what: String, flags: Int32 = 0) throws(Unreadable) -> (fd: Int32, status: stat) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | flags)
        guard fd >= 0 else { throw Unreadable(description: "cannot read \(what) \(path): \(String(cString: strerror(errno)))") }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Unreadable(description: "cannot read \(what) \(path): \(reason)")
        }
        return (fd, status)
    }

    /// Up to `limit` bytes from `fd`, or an error when there are more. A secret (at most 1 MiB)
    /// is read into one buffer, never moved, so that no copy of it is left unzeroed; a longer
    /// document grows its buffer as it goes rather than take its limit at once.
    static func readAll(_ fd: Int32, path: String, what: String, limit: Int) throws(Unreadable) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: min(limit + 1, 1 << 20))
        var count = 0
        while count <= limit {
            if count == bytes.count { bytes += repeatElement(0, count: min(bytes.count, limit + 1 - bytes.count)) }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                bytes.withUnsafeMutableBytes { SecretBytes.zero($0) }
                throw Unreadable(description: "cannot read \(what) \(path): \(reason)")
            }
            count += n
        }
        guard count <= limit else {
            bytes.withUnsafeMutableBytes { SecretBytes.zero($0) }
            throw Unreadable(description: "\(what) \(path) goes on past \(limit / 1024) KiB")
        }
        bytes.removeSubrange(count...)
        return bytes
    }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFDIR: "a directory"
        case S_IFSOCK: "a socket"
        default: "a special file"
        }
    }
}
