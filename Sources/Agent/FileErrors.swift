import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a file operation failed, in the system's words ("No such file or directory"), not
/// Foundation's ("The operation could not be completed. The file doesn’t exist.").
public func systemWords(_ error: any Error) -> String {
    let underlying = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
    return underlying?.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32(underlying!.code))) : error.localizedDescription
}

/// Makes the directory `path` (and its parents) with `mode`, or says why not.
func makeDirectory(_ path: String, mode: mode_t, for what: String) throws(AgentError) {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: Int(mode)]) } catch {
        throw AgentError("bad_config", "cannot make \(what) \(path): \(systemWords(error))")
    }
}

/// Refuses a data directory others may write to, or a store file others may read or write, as
/// ssh refuses such a key file: the store holds the data key wrapped under the passphrase (open
/// to an offline guessing attack), the sealed session keys and the audit log, and a directory
/// others can write lets them swap the store for one of their own.
func requirePrivate(dataDirectory directory: String) throws(AgentError) {
    try requireMode(directory, allowing: 0o755, what: "data_dir", fix: "chmod 700")
    for file in ["store.sqlite", "store.sqlite-wal", "store.sqlite-shm"] {
        try requireMode(directory + "/" + file, allowing: 0o600, what: "the store file", fix: "chmod 600")
    }
}

private func requireMode(_ path: String, allowing allowed: mode_t, what: String, fix: String) throws(AgentError) {
    var info = stat()
    guard stat(path, &info) == 0 else {
        if errno == ENOENT { return }
        throw AgentError("bad_config", "cannot read \(what) \(path): \(String(cString: strerror(errno)))")
    }
    let mode = info.st_mode & 0o7777
    if info.st_uid != getuid() && info.st_uid != 0 {
        throw AgentError("bad_config", "\(what) \(path) belongs to uid \(info.st_uid), neither this user nor root")
    }
    if mode & ~allowed != 0 {
        throw AgentError("bad_config", "\(what) \(path) is open to other users (mode \(String(mode, radix: 8))); \(fix) it")
    }
}

/// A file by its path, and the device and inode it had when the agent made or opened it: a file
/// removed, or replaced by another at that path, is no longer there.
struct FileIdentity: Sendable {
    let path: String
    private let device: UInt64, inode: UInt64

    init?(_ path: String) {
        var file = stat()
        guard stat(path, &file) == 0 else { return nil }
        (self.path, device, inode) = (path, UInt64(file.st_dev), UInt64(file.st_ino))
    }

    var isStillThere: Bool {
        var now = stat()
        return stat(path, &now) == 0 && UInt64(now.st_dev) == device && UInt64(now.st_ino) == inode
    }
}
