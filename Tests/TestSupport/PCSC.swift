import Foundation
import OwnerSigners

/// pcscd with two virtual readers of vsmartcard's vpcd driver (rig doc §2), and optionally an
/// OpenPGP card in the first: the emulator of `Tests/rig/openpgp-card.py`, which keeps the
/// card's state in a file, so the card can be pulled out and put back.
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
        if !FileManager.default.isExecutableFile(atPath: cardPython.path) { return "the card emulator's venv is missing (\(cardPython.path)); run scripts/install-deps.sh" }
        return nil
    }

    static let cardPython = Oracle.packageRoot.appendingPathComponent(".venv-card/bin/python")
    static let cardEmulator = Oracle.packageRoot.appendingPathComponent("Tests/rig/openpgp-card.py")
    /// The OpenPGP card's default PINs.
    public static let userPIN = "123456", adminPIN = "12345678"

    /// pcscd serves one socket per machine, so the tests that start one take turns.
    private static let turns = Turns()

    /// Runs `body` with a pcscd of its own (no other test's runs meanwhile), and with an OpenPGP
    /// card numbered `card` in the first reader when one is given.
    public static func exclusively<T: Sendable>(card: String? = nil, _ body: @Sendable (PCSCDaemon) async throws -> T) async throws -> T {
        await turns.begin()
        let outcome: Result<T, any Error>
        do {
            let daemon = try PCSCDaemon(card: card)
            do { outcome = .success(try await body(daemon)) } catch { outcome = .failure(error) }
            daemon.stop()
        } catch { outcome = .failure(error) }
        // Only once this one's pcscd has gone may the next start.
        await turns.end()
        return try outcome.get()
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
    private let port: Int
    private let card: String?
    private var emulator: Process?

    /// Starts pcscd with only the virtual readers, and returns once OpenSC sees them (and the card).
    init(card: String?) throws {
        self.card = card
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pcscd-\(UUID().uuidString.prefix(8))")
        let readers = directory.appendingPathComponent("reader.conf.d")
        try FileManager.default.createDirectory(at: readers, withIntermediateDirectories: true)
        // vpcd listens for a card on this port; one of its own, so another rig cannot be in the way.
        port = Int.random(in: 40_000...60_000)
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
        if card != nil { try insertCard() }
    }

    /// Starts the card emulator (the card as it was when pulled out), and returns once the card
    /// answers a SELECT of its OpenPGP application (pcscd shows a card before it has powered it up).
    public func insertCard() throws {
        guard let card, emulator == nil else { return }
        let process = Process()
        process.executableURL = Self.cardPython
        process.arguments = [Self.cardEmulator.path, String(port), directory.appendingPathComponent("card.fs").path, card]
        process.standardOutput = FileHandle.nullDevice
        // A file, not a pipe: the applet logs every APDU it cannot answer (OpenSC, in other tests,
        // probes the card for its applications), and a pipe nobody reads would stop it once full.
        let log = directory.appendingPathComponent("card.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        emulator = process
        let deadline = Date().addingTimeInterval(20)
        var listed = ""
        while true {
            listed = try Command.run(URL(fileURLWithPath: SoftHSM.which("opensc-tool")!), ["--reader", "0", "--send-apdu", "00A4040006D27600012401"]).stdout
            if listed.contains("SW1=0x90, SW2=0x00") { break }
            guard process.isRunning, Date() < deadline else {
                let running = process.isRunning
                removeCard()
                throw Oracle.Failure(description: "the card emulator did not show in the reader within 20 s (running: \(running)): \(listed) \((try? String(contentsOf: log, encoding: .utf8))?.suffix(2000) ?? "")")
            }
            _ = poll(nil, 0, 50)
        }
    }

    /// Sends APDUs (hex) to the card in the first reader with OpenSC's tool, as another program
    /// using the card would; returns what the tool printed.
    public func send(_ apdus: [String]) throws -> String {
        try Command.run(URL(fileURLWithPath: SoftHSM.which("opensc-tool")!), ["--reader", "0"] + apdus.flatMap { ["--send-apdu", $0] }).stdout
    }

    /// Stops the card from answering (SIGSTOP), or with false lets it answer again: a card that
    /// hangs.
    public func freezeCard(_ frozen: Bool = true) {
        if let emulator, emulator.isRunning { kill(emulator.processIdentifier, frozen ? SIGSTOP : SIGCONT) }
    }

    /// Pulls the card out: the emulator stops, and vpcd reports the reader empty.
    public func removeCard() {
        guard let emulator else { return }
        if emulator.isRunning {
            kill(emulator.processIdentifier, SIGCONT)
            kill(emulator.processIdentifier, SIGKILL)
            emulator.waitUntilExit()
        }
        self.emulator = nil
    }

    deinit { stop() }

    /// Stops pcscd with SIGKILL: it inherits the signals the test process blocks (SIGTERM among
    /// them; Foundation's Process leaves the mask as it is), so it never sees a SIGTERM. What it
    /// leaves under /run is removed here (there was none before it started).
    public func stop() {
        removeCard()
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            for file in [Self.socket, Self.pidFile] { try? FileManager.default.removeItem(atPath: file) }
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
