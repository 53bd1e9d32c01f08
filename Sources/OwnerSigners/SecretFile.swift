import EthereumCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A passphrase or PIN kept in a file for unattended servers: the file's content without its
/// trailing newline. The bytes read are zeroed once copied into the returned `SecretBytes`.
///
/// Like ssh with a private key, the agent refuses a file that other users could read, or that
/// anyone but its owner could change (a group may read it: a service group sharing a PIN). The
/// check is made on the file as opened, so a file swapped in after it cannot slip past.
public enum SecretFile {
    public typealias Unreadable = RegularFile.Unreadable

    /// More than any passphrase or PIN: a file longer than this is not one. `/dev/zero` named by
    /// mistake was read until the agent's memory ran out (20 GB in a minute).
    public static let maximumSize = 64 * 1024

    /// The agent's read: a regular file only, which it reads again at each use and never waits
    /// on. `what` names the file in the error ("passphrase file", "PIN file").
    public static func read(_ path: String, what: String = "passphrase file") throws(Unreadable) -> SecretBytes {
        var (bytes, status) = try RegularFile.read(path, what: "the \(what)", limit: maximumSize)
        defer { bytes.withUnsafeMutableBytes { SecretBytes.zero($0) } }
        try requirePrivate(status, path, what)
        return secret(bytes)
    }

    /// A command's read, made once: a pipe such as `<(pass show store)` is read too, and waited
    /// for.
    public static func readOnce(_ path: String, what: String = "passphrase file") throws(Unreadable) -> SecretBytes {
        let (fd, status) = try RegularFile.opened(path, what: "the \(what)")
        defer { close(fd) }
        guard status.st_mode & S_IFMT != S_IFDIR else { throw Unreadable(description: "the \(what) \(path) is a directory") }
        if status.st_mode & S_IFMT == S_IFREG { try requirePrivate(status, path, what) }
        var bytes = try RegularFile.readAll(fd, path: path, what: "the \(what)", limit: maximumSize)
        defer { bytes.withUnsafeMutableBytes { SecretBytes.zero($0) } }
        return secret(bytes)
    }

    private static func requirePrivate(_ status: stat, _ path: String, _ what: String) throws(Unreadable) {
        let mode = status.st_mode & 0o7777
        if mode & 0o006 != 0 || mode & 0o020 != 0 {
            throw Unreadable(description: "the \(what) \(path) is open to other users (mode \(String(mode, radix: 8))); chmod 600 it")
        }
        if status.st_uid != getuid() && status.st_uid != 0 {
            throw Unreadable(description: "the \(what) \(path) belongs to uid \(status.st_uid), neither this user nor root")
        }
    }

    /// The content without its trailing newline.
    private static func secret(_ bytes: [UInt8]) -> SecretBytes {
        var length = bytes.count
        while length > 0, bytes[length - 1] == 0x0A || bytes[length - 1] == 0x0D { length -= 1 }
        return bytes.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
    }
}
