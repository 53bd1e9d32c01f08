import EthereumCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real `session-agent serve` in a temporary directory, with a keystore owner, a sample
/// account, a rules file and a configuration, for end-to-end tests over the real sockets.
public final class AgentProcess {
    public let directory: URL
    public let ownerPassphrase = AgentProcess.secrets[0]
    public let storePassphrase = AgentProcess.secrets[1]
    public private(set) var process: Process?
    /// How each stop by SIGTERM ended (`exit 0` when the agent ended cleanly); scripts/test.sh
    /// requires every one to be `exit 0`, in every agent the suite ran.
    private var stops: [String] = []
    public private(set) var clientSocket = ""
    public private(set) var controlSocket = ""
    public static let account = "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6"

    /// The example rules file, whose payments rule approves the clients of root and of the
    /// first desktop user (uid 1000); when the tests run as another user, its clients too.
    public static func exampleRules() throws -> String {
        let example = try String(contentsOf: Oracle.packageRoot.appendingPathComponent("docs/examples/rules.toml"), encoding: .utf8)
        let uid = getuid(), clients = "client_uids = [0, 1000]"
        guard example.contains(clients) else { throw Oracle.Failure(description: "docs/examples/rules.toml no longer says \(clients)") }
        return uid == 0 || uid == 1000 ? example : example.replacingOccurrences(of: clients, with: "client_uids = [0, 1000, \(uid)]")
    }

    /// A `[[owners]]` table to use instead of the keystore owner, and the owner's address.
    public struct Owner {
        public var toml: String
        public var address: String
        public init(toml: String, address: String) {
            self.toml = toml
            self.address = address
        }
    }

    /// The agent's environment (nil: the test process's).
    let environment: [String: String]?
    /// Resource limits the agent starts under, as prlimit options: `--fsize=N` for a disk that
    /// fills, `--nofile=SOFT:HARD`.
    public var limits: [String] = []

    /// `ownerPassphraseAsked`: the keystore owner has no passphrase file, so its passphrase is
    /// asked through the approval channel.
    public init(rules: String? = nil, extraConfig: String = "", allowUIDs: [UInt32] = [], owner: Owner? = nil, ownerPassphraseAsked: Bool = false,
                environment: [String: String]? = nil) throws {
        self.environment = environment
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("agent-e2e-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o711])
        try writeSecretFile(ownerPassphrase, directory.appendingPathComponent("owner.pass").path)
        try writeSecretFile(storePassphrase, directory.appendingPathComponent("store.pass").path)
        let created = try Command.run(Command.sessionAgent, ["owner", "create", "--keystore", directory.appendingPathComponent("owner.json").path,
                                                             "--passphrase-file", directory.appendingPathComponent("owner.pass").path])
        guard created.status == 0 else { throw Oracle.Failure(description: "owner create: \(created.stderr)") }
        let ownerAddress = owner?.address ?? created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let rulesText = try rules ?? Self.exampleRules()
        try rulesText.write(to: directory.appendingPathComponent("rules.toml"), atomically: true, encoding: .utf8)
        let config = """
            data_dir = "data"
            socket_dir = "run"
            rules = "rules.toml"
            store_passphrase_file = "store.pass"
            allow_uids = [\(allowUIDs.map(String.init).joined(separator: ", "))]
            \(extraConfig)

            [[owners]]
            \(owner?.toml ?? "keystore = \"owner.json\"" + (ownerPassphraseAsked ? "" : "\npassphrase_file = \"owner.pass\""))

            [[accounts]]
            address = "\(Self.account)"
            kind = "erc7579"
            owners = ["\(ownerAddress)"]
            chains = [11155111]
            """
        try config.write(to: directory.appendingPathComponent("session-agent.toml"), atomically: true, encoding: .utf8)
    }

    /// Starts the agent and waits until it prints its sockets.
    public func start() throws {
        let p = Process()
        p.executableURL = Command.sessionAgent
        p.arguments = ["serve", "--config", directory.appendingPathComponent("session-agent.toml").path]
        if !limits.isEmpty {
            p.arguments = limits + ["--", Command.sessionAgent.path] + p.arguments!
            p.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        }
        if let environment { p.environment = environment }
        let out = Pipe()
        p.standardOutput = out
        let log = directory.appendingPathComponent("serve-\(UUID()).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        p.standardError = try FileHandle(forWritingTo: log)
        try p.run()
        process = p
        var text = ""
        while !text.contains("SESSION_AGENT_CONTROL_SOCK=") {
            let chunk = out.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw Oracle.Failure(description: "the agent exited: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")") }
            text += String(decoding: chunk, as: UTF8.self)
        }
        for line in text.split(separator: "\n") {
            let value = line.split(separator: "=", maxSplits: 1).last.map { String($0.split(separator: ";")[0]) } ?? ""
            if line.hasPrefix("SESSION_AGENT_SOCK=") { clientSocket = value }
            if line.hasPrefix("SESSION_AGENT_CONTROL_SOCK=") { controlSocket = value }
        }
    }

    /// Stops the agent with `signal` (SIGTERM, or SIGKILL to simulate a crash).
    public func stop(signal: Int32 = SIGTERM) {
        guard let p = process else { return }
        process = nil
        // Only while it runs (or has not been reaped): the pid of an agent that ended by itself
        // may be another process's by now, in a suite that starts thousands (pid_max 32768).
        guard p.isRunning else { return }
        kill(p.processIdentifier, signal)
        p.waitUntilExit()
        if signal == SIGTERM { stops.append("\(p.terminationReason == .exit ? "exit" : "signal") \(p.terminationStatus)") }
    }

    /// Everything the agent wrote to stderr, over all its runs.
    public var logs: String {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".log") }.compactMap { try? String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }.joined()
    }

    /// Waits until the agent has written `text` (what it logs from a task of its own, such as
    /// the owners' readiness after start) `times` times over all its runs, or fails after `seconds`.
    public func waitForLog(_ text: String, times: Int = 1, seconds: Double = 15) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while logs.components(separatedBy: text).count - 1 < times {
            guard Date() < deadline else { throw Oracle.Failure(description: "the agent never logged \"\(text)\": \(logs.suffix(2000))") }
            _ = poll(nil, 0, 50)
        }
    }

    /// The secrets every test agent is given; scripts/test.sh looks for them in the logs of all
    /// the agents the suite ran.
    public static let secrets = ["owner passphrase 7f3a %41 100%", "store passphrase 91cc", SoftHSM.userPIN, SoftHSM.wrongPIN, SoftHSM.soPIN]

    deinit {
        stop()
        // Kept for the suite-wide check when SESSION_AGENT_TEST_LOGS names a directory.
        if let keep = ProcessInfo.processInfo.environment["SESSION_AGENT_TEST_LOGS"] {
            let name = keep + "/agent-\(UUID().uuidString.prefix(8))"
            try? logs.write(toFile: name + ".log", atomically: true, encoding: .utf8)
            try? stops.map { $0 + "\n" }.joined().write(toFile: name + ".stops", atomically: true, encoding: .utf8)
            try? Self.secrets.joined(separator: "\n").write(toFile: keep + "/secrets", atomically: true, encoding: .utf8)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
