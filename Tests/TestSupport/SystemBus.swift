import Foundation

/// A private D-Bus daemon that stands in for the system bus (an agent is pointed at it with
/// DBUS_SYSTEM_BUS_ADDRESS), and logind on it (`Tests/rig/logind.py`).
public final class SystemBus {
    static let daemon = "/usr/bin/dbus-daemon"
    static let logind = Oracle.packageRoot.appendingPathComponent("Tests/rig/logind.py")

    /// Why it cannot run here, or nil.
    public static var unavailableReason: String? {
        if !FileManager.default.isExecutableFile(atPath: daemon) { return "dbus-daemon is not installed (apt install dbus-daemon)" }
        if let oracle = Oracle.unavailableReason { return oracle }
        return nil
    }

    /// In CI, where every part is installed, a missing part fails the test rather than skipping it.
    public static var isAvailable: Bool { unavailableReason == nil || ProcessInfo.processInfo.environment["CI"] != nil }

    public let directory: URL
    private let process = Process()

    /// `DBUS_SYSTEM_BUS_ADDRESS` for a client of this bus.
    public var address: String { "unix:path=" + directory.appendingPathComponent("bus").path }

    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("bus-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: Self.daemon)
        // The session bus's policy: any client may own any name, so logind.py may take logind's.
        process.arguments = ["--session", "--nofork", "--nopidfile", "--address=" + address]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("bus").path) {
            guard process.isRunning, Date() < deadline else { throw Oracle.Failure(description: "dbus-daemon did not start") }
            _ = poll(nil, 0, 20)
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// logind on this bus: `Tests/rig/logind.py`, which gives delay locks and sends
    /// PrepareForSleep when told.
    public final class Logind {
        private let process = Process()
        private let commands = Pipe()
        private let events: URL

        public init(on bus: SystemBus) throws {
            events = bus.directory.appendingPathComponent("logind-\(UUID().uuidString.prefix(8)).events")
            _ = FileManager.default.createFile(atPath: events.path, contents: nil)
            process.executableURL = Oracle.python
            process.arguments = [SystemBus.logind.path, bus.address, events.path]
            process.standardInput = commands
            process.standardError = FileHandle.nullDevice
            try process.run()
            try waitFor("ready")
        }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }

        /// What it noted, in order: "ready", "inhibit sleep WHO WHY delay", "released", "sent sleep"…
        public var noted: [String] {
            ((try? String(contentsOf: events, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        /// Waits until it has noted `event` `times` times in all, or fails after `seconds`.
        public func waitFor(_ event: String, times: Int = 1, seconds: Double = 15) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while noted.filter({ $0 == event }).count < times {
                guard process.isRunning, Date() < deadline else { throw Oracle.Failure(description: "logind.py never noted \"\(event)\" \(times) times: \(noted)") }
                _ = poll(nil, 0, 20)
            }
        }

        /// `sleep`, `wake` or `foreign-sleep` (see logind.py); returns once the bus took the signal.
        public func send(_ command: String) throws {
            let sent = noted.filter { $0 == "sent " + command }.count
            commands.fileHandleForWriting.write(Data((command + "\n").utf8))
            try waitFor("sent " + command, times: sent + 1)
        }
    }
}
