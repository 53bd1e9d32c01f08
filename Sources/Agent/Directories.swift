import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Makes the directory `path` (and its parents) with `mode`, or says why not in the system's
/// words ("No such file or directory") rather than Foundation's error dump.
func makeDirectory(_ path: String, mode: mode_t, for what: String) throws(AgentError) {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: Int(mode)]) } catch {
        let underlying = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
        let why = underlying?.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32(underlying!.code))) : error.localizedDescription
        throw AgentError("bad_config", "cannot make \(what) \(path): \(why)")
    }
}
