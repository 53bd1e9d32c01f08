import EthereumCore

/// Who asked for a session, from the socket's peer credentials.
public struct ClientIdentity: Hashable, Sendable, CustomStringConvertible {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    /// The program's path from `/proc/PID/exe`, when the file at that path is the one the
    /// process runs. Sessions bound to an executable and rules on executables match only this.
    public var executable: String?
    /// The path `/proc/PID/exe` names when the file there is not the one the process runs, and
    /// why: shown, never matched.
    public var unverifiedExecutable: UnverifiedExecutable?
    /// The systemd unit from `/proc/PID/cgroup`, when there is one.
    public var unit: String?
    /// When the process started (clock ticks after boot, from `/proc/PID/stat`): with the pid,
    /// this process and no later one given its pid.
    public var startTime: UInt64?

    public struct UnverifiedExecutable: Hashable, Sendable {
        public enum Why: String, Hashable, Sendable {
            /// A package upgrade: the process runs the file that was there.
            case replaced = "replaced on disk since it started"
            /// The process sees another file at that path than the agent (a mount namespace).
            case notTheFileThere = "not the file at that path"
            /// The agent's systemd unit hides that path from it (ProtectHome=, PrivateTmp=).
            case unseen = "a path the agent cannot see to check"
        }

        public var path: String
        public var why: Why

        public init(path: String, why: Why) {
            self.path = path
            self.why = why
        }
    }

    public init(uid: UInt32, gid: UInt32, pid: Int32, executable: String? = nil, unverifiedExecutable: UnverifiedExecutable? = nil, unit: String? = nil,
                startTime: UInt64? = nil) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.executable = executable
        self.unverifiedExecutable = unverifiedExecutable
        self.unit = unit
        self.startTime = startTime
    }

    /// Shown to the approver and in the journal: a file name may hold a line break or a
    /// terminal's escape sequence, written out here.
    public var description: String {
        var parts = ["uid \(uid)", "pid \(pid)"]
        if let executable { parts.append(DisplayText.escaped(executable)) }
        if let unverifiedExecutable { parts.append("\(DisplayText.escaped(unverifiedExecutable.path)) (\(unverifiedExecutable.why.rawValue))") }
        if let unit { parts.append(DisplayText.escaped(unit)) }
        return parts.joined(separator: ", ")
    }
}

/// What a session is bound to beside its client's uid, as the client asked (`bindExecutable`,
/// `bindUnit`, `bindProcess`).
public struct SessionBinding: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let executable = SessionBinding(rawValue: 1)
    public static let unit = SessionBinding(rawValue: 2)
    public static let process = SessionBinding(rawValue: 4)

    /// Each binding by the name rules files and the CLI give it.
    static let named: [(name: String, binding: SessionBinding)] = [("executable", .executable), ("unit", .unit), ("process", .process)]

    /// The binding a rules file or the CLI names; nil for a name that is none.
    public init?(name: String) {
        guard let binding = Self.named.first(where: { $0.name == name })?.binding else { return nil }
        self = binding
    }

    /// Why `name` was refused, with the names there are.
    public static func unknown(_ name: String) -> String { "\(name) is no binding; they are \(named.map(\.name).joined(separator: ", "))" }

    public var names: [String] { Self.named.filter { contains($0.binding) }.map(\.name) }
}
