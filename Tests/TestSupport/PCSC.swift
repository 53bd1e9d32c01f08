import Foundation

/// pcscd with two virtual readers of vsmartcard's vpcd driver and no card in them (rig doc §2,
/// without the card emulator): what OpenSC's PKCS#11 module shows of smartcard readers whose
/// cards are out.
public final class PCSCDaemon {
    /// Where Debian's OpenSC installs its PKCS#11 module (the second is p11-kit's registration).
    public static let openSCModule: String? = ["/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so"]
        .first { FileManager.default.fileExists(atPath: $0) }
    static let daemon = "/usr/sbin/pcscd", vpcdDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
    static let socket = "/run/pcscd/pcscd.comm", pidFile = "/run/pcscd/pcscd.pid"

    /// Why these tests cannot run here, or nil. pcscd serves one socket per machine, under /run.
    public static var unavailableReason: String? {
        if getuid() != 0 { return "needs root: pcscd serves \(socket)" }
        if !FileManager.default.isExecutableFile(atPath: daemon) { return "pcscd is not installed (apt install pcscd)" }
        if !FileManager.default.fileExists(atPath: vpcdDriver) { return "vpcd is not installed (apt install vsmartcard-vpcd)" }
        if openSCModule == nil || SoftHSM.which("opensc-tool") == nil { return "OpenSC is not installed (apt install opensc)" }
        if let running { return "a pcscd (pid \(running)) already serves \(socket); stop it to run this test" }
        return nil
    }

    /// The pcscd running now, from its pid file (one killed leaves the file behind).
    static var running: Int32? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
              kill(pid, 0) == 0 else { return nil }
        return pid
    }

    /// In CI, where every part is installed and the tests run as root, a missing part fails the test rather than skipping it.
    public static var isAvailable: Bool { unavailableReason == nil || (ProcessInfo.processInfo.environment["CI"] != nil && getuid() == 0) }

    private let process = Process()
    private let directory: URL

    /// Starts pcscd with only the virtual readers, and returns once OpenSC sees them.
    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pcscd-\(UUID().uuidString.prefix(8))")
        let readers = directory.appendingPathComponent("reader.conf.d")
        try FileManager.default.createDirectory(at: readers, withIntermediateDirectories: true)
        // vpcd listens for a card on this port; one of its own, so another rig cannot be in the way.
        let port = Int.random(in: 40_000...60_000)
        try "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x\(String(port, radix: 16))\nLIBPATH \(Self.vpcdDriver)\nCHANNELID 0x\(String(port, radix: 16))\n"
            .write(to: readers.appendingPathComponent("vpcd"), atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: Self.daemon)
        process.arguments = ["--foreground", "--config", readers.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while try !Command.run(URL(fileURLWithPath: SoftHSM.which("opensc-tool")!), ["--list-readers"]).stdout.contains("Virtual PCD 00 01") {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw Oracle.Failure(description: "pcscd did not show the virtual readers within 10 s")
            }
            _ = poll(nil, 0, 50)
        }
    }

    deinit { stop() }

    /// Stops pcscd with SIGKILL: it inherits the signals the test process blocks (SIGTERM among
    /// them; Foundation's Process leaves the mask as it is), so it never sees a SIGTERM. What it
    /// leaves under /run is removed here (there was none before it started).
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            for file in [Self.socket, Self.pidFile] { try? FileManager.default.removeItem(atPath: file) }
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
