import Foundation

/// A FIDO2 authenticator on a Unix socket: soft-fido2 behind `Tests/rig/fido2-authenticator.py`
/// (rig doc, appendix B), which the agent reaches as the device `unix:PATH` through libfido2's
/// I/O hooks. Its state (the key its credentials derive from) is a file in its own directory,
/// so it can be unplugged and plugged back in. The person who taps it is played by a file.
public final class SoftFIDO2 {
    static let python = Oracle.packageRoot.appendingPathComponent(".venv-fido2/bin/python")
    static let script = Oracle.packageRoot.appendingPathComponent("Tests/rig/fido2-authenticator.py")

    /// Why these tests cannot run here, or nil. Nothing needs root: each test has its own.
    public static var unavailableReason: String? {
        FileManager.default.isExecutableFile(atPath: python.path) ? nil : "the FIDO2 authenticator's venv is missing (\(python.path)); run scripts/install-deps.sh"
    }

    /// In CI, where everything is installed, a missing part fails the test rather than skipping it.
    public static var isAvailable: Bool { unavailableReason == nil || ProcessInfo.processInfo.environment["CI"] != nil }

    public let directory: URL
    public let socket: String
    private var process: Process?

    /// The device path the agent is given.
    public var device: String { "unix:" + socket }

    /// The authenticator's PIN, if it has one.
    public let pin: String?

    public init(pin: String? = nil) throws {
        self.pin = pin
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fido2-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("home"), withIntermediateDirectories: true)
        socket = directory.appendingPathComponent("fido2.sock").path
        try plugIn()
    }

    deinit {
        unplug()
        try? FileManager.default.removeItem(at: directory)
    }

    /// What the person does when asked to tap.
    public enum Person: String {
        case taps = "yes", refuses = "no", isAway = "wait"
    }

    public func person(_ person: Person) throws {
        try person.rawValue.write(to: directory.appendingPathComponent("home/tap"), atomically: true, encoding: .utf8)
    }

    /// Whether the authenticator says it verified the person (the UV flag) when a PIN was
    /// given, as it should; told `false`, it never does.
    public func claimsUserVerification(_ claims: Bool) throws {
        try (claims ? "pin" : "never").write(to: directory.appendingPathComponent("home/uv"), atomically: true, encoding: .utf8)
    }

    /// How many times the authenticator has asked for a tap.
    public var tapsAskedFor: Int {
        ((try? String(contentsOf: directory.appendingPathComponent("out.log"), encoding: .utf8)) ?? "").split(separator: "\n").filter { $0 == "tap" }.count
    }

    /// Starts the authenticator, and returns once it listens.
    public func plugIn() throws {
        guard process == nil else { return }
        let process = Process()
        process.executableURL = Self.python
        process.arguments = ["-u", Self.script.path, socket]
        var environment = ["FIDO_HOME": directory.appendingPathComponent("home").path]
        environment["FIDO_PIN"] = pin
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        // Files, not pipes: nobody reads them while the test runs, and a full pipe would stop it.
        let out = directory.appendingPathComponent("out.log"), err = directory.appendingPathComponent("err.log")
        for file in [out, err] where !FileManager.default.fileExists(atPath: file.path) { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
        let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
        outHandle.seekToEndOfFile()
        errHandle.seekToEndOfFile()
        process.standardOutput = outHandle
        process.standardError = errHandle
        let readyBefore = readyLines
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(20)
        while readyLines == readyBefore {
            guard process.isRunning, Date() < deadline else {
                unplug()
                throw Oracle.Failure(description: "the FIDO2 authenticator did not start within 20 s: \((try? String(contentsOf: err, encoding: .utf8))?.suffix(2000) ?? "")")
            }
            _ = poll(nil, 0, 20)
        }
    }

    private var readyLines: Int {
        ((try? String(contentsOf: directory.appendingPathComponent("out.log"), encoding: .utf8)) ?? "").split(separator: "\n").filter { $0 == "ready" }.count
    }

    /// Stops it answering (SIGSTOP), or with false lets it answer again: an authenticator that hangs.
    public func freeze(_ frozen: Bool = true) {
        if let process, process.isRunning { kill(process.processIdentifier, frozen ? SIGSTOP : SIGCONT) }
    }

    /// Pulls it out: the process stops and its socket goes.
    public func unplug() {
        guard let process else { return }
        if process.isRunning {
            kill(process.processIdentifier, SIGCONT)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: socket)
        self.process = nil
    }
}
