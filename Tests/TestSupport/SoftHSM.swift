import Foundation
import OwnerSigners

/// A SoftHSM2 token directory of its own (rig doc §1), driven with the real tools: softhsm2-util
/// to make tokens, pkcs11-tool to make keys the way an operator would.
public final class SoftHSM: Sendable {
    // Distinctive, so the suite-wide log check (scripts/test.sh) cannot mistake a number for them.
    public static let userPIN = "hsm-user-pin-5831"
    public static let wrongPIN = "hsm-wrong-pin-0417"
    public static let soPIN = "hsm-so-pin-2960"

    /// Debian installs the module in one of these.
    public static let systemModule: String? = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"]
        .first { FileManager.default.fileExists(atPath: $0) }

    /// p11-kit's RPC client module, for a token served by `p11-kit server` in another process.
    public static let p11KitClient = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"

    /// Why SoftHSM tests cannot run here, or nil. In CI everything is installed, so nothing skips.
    public static var unavailableReason: String? {
        if systemModule == nil { return "SoftHSM2 is not installed (apt install softhsm2)" }
        for tool in ["softhsm2-util", "pkcs11-tool", "p11-kit"] where which(tool) == nil { return "\(tool) is not installed (apt install softhsm2 opensc p11-kit)" }
        if !FileManager.default.fileExists(atPath: p11KitClient) { return "\(p11KitClient) is not installed (apt install p11-kit-modules)" }
        return nil
    }

    public static var isAvailable: Bool { unavailableReason == nil || ProcessInfo.processInfo.environment["CI"] != nil }

    /// The instance whose configuration this test process exports in SOFTHSM2_CONF, for modules
    /// loaded in-process (SoftHSM reads it once, at C_Initialize).
    public static let process: SoftHSM = {
        let hsm = try! SoftHSM()
        setenv("SOFTHSM2_CONF", hsm.configuration, 1)
        // A static is never deinitialised: its tokens go when the process exits.
        atexit { try? FileManager.default.removeItem(at: SoftHSM.process.directory) }
        return hsm
    }()

    /// Turns of the tests that load SoftHSM in this process, whichever suite they are in: its
    /// instances here share the token directory without excluding each other, and with several
    /// adding, removing and rescanning tokens at once SoftHSM aborted in its slot manager.
    public static let inProcessTurns = Turns()

    public let directory: URL
    public var configuration: String { directory.appendingPathComponent("softhsm2.conf").path }
    public var tokens: URL { directory.appendingPathComponent("tokens") }
    /// The environment for a child process that should see these tokens.
    public var environment: [String: String] {
        ProcessInfo.processInfo.environment.merging(["SOFTHSM2_CONF": configuration]) { _, new in new }
    }

    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("softhsm-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("tokens"), withIntermediateDirectories: true)
        try "directories.tokendir = \(directory.path)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
            .write(toFile: directory.appendingPathComponent("softhsm2.conf").path, atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// A new directory of this test's own (`name` and a random suffix) for a test module and the
    /// files it reads.
    public func subdirectory(_ name: String) throws -> URL {
        let made = directory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: made, withIntermediateDirectories: true)
        return made
    }

    /// A copy of a module (SoftHSM's by default) at a path of its own: loaded in-process it is an
    /// independent instance (its own slots, sessions and initialisation), so tests that
    /// re-initialise it or remove a token do not disturb the others running in parallel.
    public func privateModule(_ module: String = systemModule!) throws -> String {
        let original = URL(fileURLWithPath: module).resolvingSymlinksInPath()
        let copy = directory.appendingPathComponent("\(UUID().uuidString.prefix(8))-\(original.lastPathComponent)").path
        try FileManager.default.copyItem(atPath: original.path, toPath: copy)
        return copy
    }

    /// Initialises a token in a free slot; returns the directory SoftHSM keeps it in (found by
    /// its label, since tests running in parallel add tokens to the same directory).
    @discardableResult
    public func initToken(_ label: String, pin: String = userPIN) throws -> URL {
        try tool("softhsm2-util", ["--init-token", "--free", "--label", label, "--so-pin", Self.soPIN, "--pin", pin])
        for name in try FileManager.default.contentsOfDirectory(atPath: tokens.path) {
            let object = tokens.appendingPathComponent(name).appendingPathComponent("token.object")
            if let data = FileManager.default.contents(atPath: object.path), data.range(of: Data(label.utf8)) != nil { return tokens.appendingPathComponent(name) }
        }
        throw Oracle.Failure(description: "softhsm2-util made no token directory for \(label)")
    }

    /// A token with no user PIN, as `pkcs11-tool --init-token` without `--init-pin` leaves one:
    /// made, then initialised again by its label, which keeps the SO PIN and drops the user's.
    public func initTokenWithoutUserPIN(_ label: String) throws {
        try initToken(label)
        _ = try tool("pkcs11-tool", ["--module", Self.systemModule!, "--token-label", label, "--init-token", "--label", label, "--so-pin", Self.soPIN])
    }

    /// Takes a token away as an unplugged HSM would: its directory leaves the token directory in
    /// one rename, so other tests scanning it in parallel never see a half-deleted token.
    /// Returns where it went, for `plugIn`.
    public func unplug(_ token: URL) throws -> URL {
        let away = directory.appendingPathComponent("unplugged-\(token.lastPathComponent)")
        try toolLock.withLock { try FileManager.default.moveItem(at: token, to: away) }
        return away
    }

    public func plugIn(_ away: URL, as token: URL) throws {
        try toolLock.withLock { try FileManager.default.moveItem(at: away, to: token) }
    }

    /// Held while a tool runs and while a token is unplugged or plugged in: softhsm2-util and
    /// pkcs11-tool give up ("Could not get info about the token") when a token they listed
    /// leaves the directory before they read it. (The agent's own listing skips such a token.)
    private let toolLock = NSLock()

    /// A key pair made by pkcs11-tool, as an operator would (`EC:secp256k1` or `EC:prime256v1`);
    /// with `alwaysAuthenticate`, one that wants the PIN at every signature, as PIV signature keys do;
    /// with `hiddenBeforeLogin`, one whose public half shows only after a login, as on CloudHSM;
    /// with `allowedMechanisms` (pkcs11-tool's names: `ECDSA-SHA256`), one an HSM policy restricts.
    public func generateKey(token: String, label: String, id: String, keyType: String = "EC:secp256k1", pin: String = userPIN,
                            alwaysAuthenticate: Bool = false, hiddenBeforeLogin: Bool = false, extractable: Bool = false, allowedMechanisms: String? = nil) throws {
        try tool("pkcs11-tool", ["--module", Self.systemModule!, "--token-label", token, "--login", "--pin", pin,
                                 "--keypairgen", "--key-type", keyType, "--id", id, "--label", label]
                                 + (alwaysAuthenticate ? ["--always-auth"] : []) + (hiddenBeforeLogin ? ["--private"] : []) + (extractable ? ["--extractable"] : [])
                                 + (allowedMechanisms.map { ["--allowed-mechanisms", $0] } ?? []))
    }

    /// An AES key of a known value, written by pkcs11-tool (sensitive unless asked otherwise: it
    /// cannot be read back).
    public func importAESKey(token: String, label: String, value: [UInt8], pin: String = userPIN, sensitive: Bool = true) throws {
        let file = directory.appendingPathComponent("aes-\(UUID().uuidString.prefix(8)).bin")
        try Data(value).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        try tool("pkcs11-tool", ["--module", Self.systemModule!, "--token-label", token, "--login", "--pin", pin,
                                 "--write-object", file.path, "--type", "secrkey", "--key-type", "AES:\(value.count)", "--label", label] + (sensitive ? ["--sensitive"] : []))
    }

    /// Deletes the AES key `label` from the token, as an operator would with pkcs11-tool.
    public func deleteAESKey(token: String, label: String, pin: String = userPIN) throws {
        try tool("pkcs11-tool", ["--module", Self.systemModule!, "--token-label", token, "--login", "--pin", pin, "--delete-object", "--type", "secrkey", "--label", label])
    }

    /// A secp256k1 key pair OpenSSL made with its curve written out as explicit parameters
    /// (`-param_enc explicit`), both halves written by pkcs11-tool, which keeps that form in
    /// CKA_EC_PARAMS. Returns the public point (04 ‖ X ‖ Y) as OpenSSL gives it.
    public func importKeyWithExplicitParameters(token: String, label: String, id: String, pin: String = userPIN) throws -> [UInt8] {
        let base = directory.appendingPathComponent("explicit-\(UUID().uuidString.prefix(8))").path
        defer { for suffix in [".pem", ".pub.der", ".der"] { try? FileManager.default.removeItem(atPath: base + suffix) } }
        try tool("openssl", ["ecparam", "-name", "secp256k1", "-genkey", "-param_enc", "explicit", "-out", base + ".pem"])
        try tool("openssl", ["ec", "-in", base + ".pem", "-pubout", "-outform", "DER", "-out", base + ".pub.der"])
        try tool("openssl", ["ec", "-in", base + ".pem", "-outform", "DER", "-out", base + ".der"])
        for (file, type) in [(".pub.der", "pubkey"), (".der", "privkey")] {
            try tool("pkcs11-tool", ["--module", Self.systemModule!, "--token-label", token, "--login", "--pin", pin,
                                     "--write-object", base + file, "--type", type, "--id", id, "--label", label])
        }
        // A SubjectPublicKeyInfo for a 256-bit curve ends with the 65-byte uncompressed point.
        return Array([UInt8](try Data(contentsOf: URL(fileURLWithPath: base + ".pub.der"))).suffix(65))
    }

    /// The key's public point (04 ‖ X ‖ Y), read back by pkcs11-tool: independent of our reader.
    /// With `pin`, after a login (a public half hidden before one).
    public func publicPoint(token: String, id: String, pin: String? = nil) throws -> [UInt8] {
        let out = directory.appendingPathComponent("pub-\(UUID().uuidString.prefix(8)).der").path
        try tool("pkcs11-tool", ["--module", Self.systemModule!, "--token-label", token, "--read-object", "--type", "pubkey", "--id", id, "-o", out]
                                 + (pin.map { ["--login", "--pin", $0] } ?? []))
        // A SubjectPublicKeyInfo for a 256-bit curve ends with the 65-byte uncompressed point.
        let der = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        return Array(der.suffix(65))
    }

    /// `p11-kit server` serving `token` on `socket`, as an operator runs it for a token in
    /// another process or container; returns once the socket listens. The caller stops it
    /// (`defer { server.stop() }`: released early, it stops itself).
    public func serve(token: String, socket: String, module: String = systemModule!) throws -> P11KitServer {
        try P11KitServer(["/usr/bin/p11-kit", "server", "-f", "-n", socket, "--provider", module, "pkcs11:token=\(token)"], socket: socket, environment: environment)
    }

    @discardableResult
    public func tool(_ name: String, _ arguments: [String]) throws -> String {
        guard let path = Self.which(name) else { throw Oracle.Failure(description: "\(name) is not installed") }
        let result = try toolLock.withLock { try Command.run(URL(fileURLWithPath: path), arguments, environment: environment) }
        guard result.status == 0 else { throw Oracle.Failure(description: "\(name) \(arguments.joined(separator: " ")): \(result.stderr)\(result.stdout)") }
        return result.stdout
    }

    static func which(_ name: String) -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") { return "\(dir)/\(name)" }
        return nil
    }
}

/// A running `p11-kit server`: a token in another process, as in another container or behind a
/// network HSM's client. Stopping it is the token going away; freezing it is a hung server.
public final class P11KitServer {
    public let socket: String
    private let process: Process

    /// Runs `command` (`p11-kit server --foreground …` listening on `socket`) and returns once the
    /// socket listens (the server prints its address then).
    public init(_ command: [String], socket: String, environment: [String: String]) throws {
        self.socket = socket
        process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var printed = ""
        while !printed.contains("P11_KIT_SERVER_ADDRESS") {
            let chunk = out.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw Oracle.Failure(description: "p11-kit server exited") }
            printed += String(decoding: chunk, as: UTF8.self)
        }
    }

    deinit { stop() }

    /// The server and the child it forked for each connection.
    public var processes: [Int32] { [process.processIdentifier] + Self.children(of: process.processIdentifier) }

    /// Stops every process of the server at once, as a hung network HSM stops answering.
    public func freeze() { if process.isRunning { for pid in processes { kill(pid, SIGSTOP) } } }
    public func thaw() { if process.isRunning { for pid in processes { kill(pid, SIGCONT) } } }

    /// Stops the server and its children, as when its container stops. The listener is frozen
    /// first, so a client reconnecting meanwhile cannot get a fresh child that outlives it; all by
    /// system calls, so the stop lands at once even on a loaded machine.
    public func stop() {
        let pid = process.processIdentifier
        guard process.isRunning else { return }
        kill(pid, SIGSTOP)
        for child in Self.children(of: pid) { kill(child, SIGKILL) }
        kill(pid, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: socket)
    }

    /// The processes whose parent is `pid`, from /proc/*/stat (field 4).
    static func children(of pid: Int32) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry -> Int32? in
            guard let child = Int32(entry), let stat = procFile("/proc/\(entry)/stat"),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid ? child : nil
        }
    }
}
