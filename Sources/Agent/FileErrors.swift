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
