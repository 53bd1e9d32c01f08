import Foundation

/// A private D-Bus daemon that stands in for the system bus (an agent is pointed at it with
/// DBUS_SYSTEM_BUS_ADDRESS), and logind's sleep signal sent on it (`Tests/rig/logind.py`).
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

    /// logind's PrepareForSleep(`sleeping`), sent as logind sends it or, `asLogind` false, by a
    /// client that does not own its name; returns once the bus has taken it.
    public func prepareForSleep(_ sleeping: Bool, asLogind: Bool = true) throws {
        let sent = try Command.run(Oracle.python, [Self.logind.path, address, sleeping ? "sleep" : "wake"] + (asLogind ? [] : ["--not-logind"]))
        guard sent.status == 0 else { throw Oracle.Failure(description: "logind.py: \(sent.stderr)") }
    }
}
