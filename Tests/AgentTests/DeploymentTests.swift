import Agent
import EthereumCore
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite("systemd units, udev rules, socket activation and readiness")
struct DeploymentTests {
    static func present(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) || ProcessInfo.processInfo.environment["CI"] != nil }

    /// The units with ExecStart pointing at the built binary (verify checks it exists).
    static func unitsCopy(_ kind: String) throws -> URL {
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("units-\(UUID())")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let source = Oracle.packageRoot.appendingPathComponent("systemd/\(kind)")
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path) {
            let text = try String(contentsOf: source.appendingPathComponent(name), encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/session-agent", with: Command.sessionAgent.path)
            try text.write(to: target.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return target
    }

    @Test(.enabled(if: present("/usr/bin/systemd-analyze"), "systemd-analyze is not installed"), arguments: ["system", "user"])
    func unitsVerifyWithoutAnyWarning(_ kind: String) throws {
        let dir = try Self.unitsCopy(kind)
        defer { try? FileManager.default.removeItem(at: dir) }
        let servers = kind == "system" ? ["session-agent-prune.service", "session-agent-prune.timer", "session-agent-chain-check.service", "session-agent-chain-check.timer"] : []
        let units = (["session-agent.service", "session-agent-client.socket", "session-agent-control.socket", "session-agent-pkcs11.service"] + servers)
            .map { dir.appendingPathComponent($0).path }
        var env = ProcessInfo.processInfo.environment
        env["XDG_RUNTIME_DIR"] = dir.path
        let r = try Command.run(URL(fileURLWithPath: "/usr/bin/systemd-analyze"), (kind == "user" ? ["--user", "verify"] : ["verify"]) + units, environment: env)
        #expect(r.status == 0 && r.stderr.isEmpty && r.stdout.isEmpty, "\(r.stdout)\(r.stderr)")
        let dropIns = dir.appendingPathComponent("session-agent.service.d")
        try FileManager.default.createDirectory(at: dropIns, withIntermediateDirectories: true)
        guard kind == "system" else {
            // The drop-in that points the agent at the module's own unit serves the user's agent too.
            try FileManager.default.copyItem(at: Oracle.packageRoot.appendingPathComponent("systemd/pkcs11-server.conf"), to: dropIns.appendingPathComponent("pkcs11-server.conf"))
            let withModuleServer = try Command.run(URL(fileURLWithPath: "/usr/bin/systemd-analyze"), ["--user", "verify"] + units, environment: env)
            #expect(withModuleServer.status == 0 && withModuleServer.stderr.isEmpty && withModuleServer.stdout.isEmpty, "\(withModuleServer.stdout)\(withModuleServer.stderr)")
            return
        }
        /// "→ Overall exposure level for session-agent.service: 1.2 OK 🙂": the score and its rating.
        func exposure(_ unit: String? = nil) throws -> (score: Double, rating: String) {
            let security = try Command.run(URL(fileURLWithPath: "/usr/bin/systemd-analyze"), ["security", "--offline=yes", unit ?? units[0]], environment: env)
            #expect(security.stderr.isEmpty, "\(security.stderr)")
            let line = security.stdout.split(separator: "\n").last { $0.contains("Overall exposure level") } ?? ""
            let words = line.split(separator: ":").last?.split(separator: " ") ?? []
            return (words.first.flatMap { Double($0) } ?? .infinity, words.dropFirst().first.map(String.init) ?? "")
        }
        let strict = try exposure()
        #expect(strict.rating == "OK", "\(strict)")
        // With the drop-in for network HSMs: still no warning, and still rated OK.
        try FileManager.default.copyItem(at: Oracle.packageRoot.appendingPathComponent("systemd/hsm-network.conf"), to: dropIns.appendingPathComponent("hsm-network.conf"))
        let withDropIn = try Command.run(URL(fileURLWithPath: "/usr/bin/systemd-analyze"), ["verify"] + units, environment: env)
        #expect(withDropIn.status == 0 && withDropIn.stderr.isEmpty && withDropIn.stdout.isEmpty, "\(withDropIn.stdout)\(withDropIn.stderr)")
        let loosened = try exposure()
        #expect(loosened.rating == "OK" && loosened.score > strict.score, "\(loosened) after \(strict): the drop-in was not read")
        // The drop-in for metrics and chain endpoints over TCP: the same loosening, no warning.
        try FileManager.default.removeItem(at: dropIns.appendingPathComponent("hsm-network.conf"))
        try FileManager.default.copyItem(at: Oracle.packageRoot.appendingPathComponent("systemd/network.conf"), to: dropIns.appendingPathComponent("network.conf"))
        let withMetrics = try Command.run(URL(fileURLWithPath: "/usr/bin/systemd-analyze"), ["verify"] + units, environment: env)
        #expect(withMetrics.status == 0 && withMetrics.stderr.isEmpty && withMetrics.stdout.isEmpty, "\(withMetrics.stdout)\(withMetrics.stderr)")
        #expect(try exposure() == loosened, "network.conf opens what hsm-network.conf does, less its write path")
        try FileManager.default.removeItem(at: dropIns.appendingPathComponent("network.conf"))
        // The HSM's module in a unit of its own, and the agent's drop-in that points at it.
        try FileManager.default.copyItem(at: Oracle.packageRoot.appendingPathComponent("systemd/pkcs11-server.conf"), to: dropIns.appendingPathComponent("pkcs11-server.conf"))
        let withModuleServer = try Command.run(URL(fileURLWithPath: "/usr/bin/systemd-analyze"), ["verify"] + units, environment: env)
        #expect(withModuleServer.status == 0 && withModuleServer.stderr.isEmpty && withModuleServer.stdout.isEmpty, "\(withModuleServer.stdout)\(withModuleServer.stderr)")
        #expect(try exposure() == strict, "the drop-in gives the agent nothing beyond an environment variable")
        #expect(try exposure(units[3]).rating == "OK")
        #expect(try exposure(units[4]).rating == "SAFE", "the daily prune sees even less than the agent")
        #expect(try exposure(units[6]).rating == "SAFE", "the chain check asks the agent, and sees even less than it")
    }

    @Test(.enabled(if: getuid() == 0 && present("/usr/bin/udevadm"), "needs root and udevadm"))
    func udevRulesParse() throws {
        let installed = "/run/udev/rules.d/70-session-agent.rules"
        try FileManager.default.createDirectory(atPath: "/run/udev/rules.d", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Oracle.packageRoot.appendingPathComponent("udev/70-session-agent.rules").path, toPath: installed)
        defer { try? FileManager.default.removeItem(atPath: installed) }
        let device = try FileManager.default.contentsOfDirectory(atPath: "/sys/devices/virtual/misc").sorted().first ?? "null"
        let r = try Command.run(URL(fileURLWithPath: "/usr/bin/udevadm"), ["test", "--action=add", "/sys/devices/virtual/misc/\(device)"])
        let output = r.stdout + r.stderr
        #expect(output.contains("70-session-agent.rules"), "the rules file was read")
        let complaints = output.split(separator: "\n").filter { $0.contains("70-session-agent.rules") && ($0.contains("Invalid") || $0.lowercased().contains("error")) }
        #expect(complaints.isEmpty, "\(complaints)")
    }

    @Test(.enabled(if: present("/usr/bin/systemd-socket-activate"), "systemd-socket-activate is not installed"))
    func socketActivationAndReadinessNotification() throws {
        let agent = try AgentProcess()
        // A datagram socket standing in for systemd's NOTIFY_SOCKET.
        let notifyPath = agent.directory.appendingPathComponent("notify").path
        let notify = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(notify) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in notifyPath.utf8.enumerated() { raw[i] = b } }
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(notify, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }

        let client = agent.directory.appendingPathComponent("activated-client.sock").path
        let control = agent.directory.appendingPathComponent("activated-control.sock").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
        p.arguments = ["-l", client, "-l", control, "--fdname=client:control", "-E", "NOTIFY_SOCKET=\(notifyPath)",
                       Command.sessionAgent.path, "serve", "--config", agent.directory.appendingPathComponent("session-agent.toml").path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { p.terminate(); p.waitUntilExit() }
        var connected: AgentClient?
        for _ in 0..<200 where connected == nil {
            connected = try? AgentClient(path: client)
            if connected == nil { usleep(20_000) }
        }
        // The first connection starts the agent on the passed descriptors.
        let info = try #require(connected).call("agent_info")
        #expect(info["version"] == "0.1.0")
        #expect(try AgentClient(path: control).call("pending_list").arrayValue != nil)
        var buffer = [UInt8](repeating: 0, count: 64)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(notify, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let n = recv(notify, &buffer, buffer.count, 0)
        #expect(n > 0 && String(decoding: buffer[0..<max(n, 0)], as: UTF8.self) == "READY=1")
    }
}
