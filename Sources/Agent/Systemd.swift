import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// systemd socket activation and readiness notification, without libsystemd.
public enum Systemd {
    /// The sockets systemd passed (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), by name.
    public static func listenFileDescriptors(_ env: [String: String] = ProcessInfo.processInfo.environment) -> [String: Int32] {
        guard let pid = env["LISTEN_PID"].flatMap(Int32.init), pid == getpid(),
              let count = env["LISTEN_FDS"].flatMap(Int.init), count > 0 else { return [:] }
        let names = (env["LISTEN_FDNAMES"] ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var out: [String: Int32] = [:]
        for i in 0..<count {
            let fd = Int32(3 + i)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            out[i < names.count && !names[i].isEmpty ? names[i] : "fd\(i)"] = fd
        }
        return out
    }

    /// Sends `READY=1` (or another state) to `NOTIFY_SOCKET`, when systemd set one.
    @discardableResult
    public static func notify(_ state: String, _ env: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard var path = env["NOTIFY_SOCKET"], !path.isEmpty else { return false }
        let abstract = path.hasPrefix("@")
        if abstract { path.removeFirst() }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let offset = abstract ? 1 : 0
        guard bytes.count + offset < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i + offset] = b } }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + offset)
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, message, message.count, 0, $0, length) }
        }
        return sent == message.count
    }
}
