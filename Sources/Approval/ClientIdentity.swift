import EthereumCore

/// Who asked for a session, from the socket's peer credentials.
public struct ClientIdentity: Hashable, Sendable, CustomStringConvertible {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    /// `/proc/PID/exe`, when it could be read.
    public var executable: String?
    /// The systemd unit from `/proc/PID/cgroup`, when there is one.
    public var unit: String?

    public init(uid: UInt32, gid: UInt32, pid: Int32, executable: String? = nil, unit: String? = nil) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.executable = executable
        self.unit = unit
    }

    /// Shown to the approver and in the journal: a file name may hold a line break or a
    /// terminal's escape sequence, written out here.
    public var description: String {
        var parts = ["uid \(uid)", "pid \(pid)"]
        if let executable { parts.append(DisplayText.escaped(executable)) }
        if let unit { parts.append(DisplayText.escaped(unit)) }
        return parts.joined(separator: ", ")
    }
}
