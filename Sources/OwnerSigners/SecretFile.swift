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
    public struct Unreadable: Error, CustomStringConvertible {
        public let description: String
    }

    /// More than any passphrase or PIN: a file longer than this is not one. `/dev/zero` named by
    /// mistake was read until the agent's memory ran out (20 GB in a minute).
    public static let maximumSize = 64 * 1024

    /// `what` names the file in the error ("passphrase file", "PIN file").
    public static func read(_ path: String, what: String = "passphrase file") throws(Unreadable) -> SecretBytes {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Unreadable(description: "cannot read the \(what) \(path): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Unreadable(description: "cannot read the \(what) \(path): \(String(cString: strerror(errno)))") }
        if (info.st_mode & S_IFMT) == S_IFREG {
            let mode = info.st_mode & 0o7777
            if mode & 0o006 != 0 || mode & 0o020 != 0 {
                throw Unreadable(description: "the \(what) \(path) is open to other users (mode \(String(mode, radix: 8))); chmod 600 it")
            }
            if info.st_uid != getuid() && info.st_uid != 0 {
                throw Unreadable(description: "the \(what) \(path) belongs to uid \(info.st_uid), neither this user nor root")
            }
        }
        guard var data = try? handle.read(upToCount: maximumSize + 1) ?? Data() else { throw Unreadable(description: "cannot read the \(what) \(path)") }
        defer { data.withUnsafeMutableBytes { SecretBytes.zero($0) } }
        guard data.count <= maximumSize else {
            throw Unreadable(description: "the \(what) \(path) goes on past \(maximumSize / 1024) KiB: it is not a \(what) holding one secret")
        }
        var length = data.count
        while length > 0, data[length - 1] == 0x0A || data[length - 1] == 0x0D { length -= 1 }
        return data.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
    }
}
