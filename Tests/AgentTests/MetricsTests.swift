import Agent
import EthereumCore
import Foundation
import Testing
import TestSupport

/// `metrics_listen`: the agent serves what it counts to Prometheus over HTTP, read here by curl as
/// a scraper would.
@Suite("Metrics for Prometheus", .serialized)
struct MetricsTests {
    /// The status and body curl gets for `path` at the agent's metrics address.
    static func scrape(_ base: String, _ path: String = "/metrics", method: String = "GET") throws -> (status: String, body: String) {
        let got = try Command.run(URL(fileURLWithPath: "/usr/bin/curl"), ["-s", "-X", method, "-w", "\n%{http_code}", base + path])
        #expect(got.status == 0, "\(got.stderr)")
        let lines = got.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
    }

    /// Requests decided, user operations signed and refused (by mode and reason), owner
    /// signatures and how long they took, the store's lock: counted, and nothing named (no
    /// session, account or client).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is not installed (scripts/install-deps.sh installs it)"))
    func theAgentCountsWhatItDoesAndNamesNothing() throws {
        let agent = try AgentProcess(rules: "default = \"ask\"", extraConfig: "metrics_listen = \"127.0.0.1:0\"", ownerPassphraseAsked: true)
        try agent.start()
        defer { agent.stop() }
        // Port 0 took a free one; the journal says which.
        let base = String(try #require(agent.logs.firstMatch(of: /metrics for Prometheus at (http:\/\/127\.0\.0\.1:\d+)\/metrics/)?.1, "\(agent.logs)"))
        let client = try AgentClient(path: agent.clientSocket), control = try AgentClient(path: agent.controlSocket)
        let request = try #require(try client.call("session_request", JSONObject(["request": SocketTests.example]))["id"])
        // A mistyped passphrase, then the right one: the owner fails once, then signs.
        #expect(throws: AgentClient.RemoteError.self) {
            try control.call("pending_decide", JSONObject(["id": request, "approve": true, "passphrase": "not it"]))
        }
        let decided = try control.call("pending_decide", JSONObject(["id": request, "approve": true, "passphrase": .string(agent.ownerPassphrase)]))
        let session = try #require(decided["sessionId"]?.stringValue, "\(decided)")
        _ = try SocketTests.sign(client, session, 5_000_000, nonce: 0)
        _ = try SocketTests.sign(client, session, 1, nonce: 1)
        #expect(throws: AgentClient.RemoteError.self) { try SocketTests.sign(client, session, 500_000_000, nonce: 2) }
        _ = try control.call("agent_lock")

        let (status, body) = try Self.scrape(base)
        #expect(status == "200")
        for line in ["session_agent_requests_decided_total{outcome=\"approved\",decided_by=\"person\"} 1",
                     "session_agent_owner_signatures_total{backend=\"keystore\",result=\"failed\"} 1",
                     "session_agent_user_operations_signed_total{mode=\"ENABLE\"} 1", "session_agent_user_operations_signed_total{mode=\"USE\"} 1",
                     "session_agent_user_operations_refused_total{reason=\"policy_violation\"} 1",
                     "session_agent_owner_signatures_total{backend=\"keystore\",result=\"ok\"} 1",
                     "session_agent_owner_signature_duration_seconds_count{backend=\"keystore\"} 1",
                     "session_agent_store_locked 1.0", "session_agent_requests_pending 0.0"] {
            #expect(body.contains(line + "\n"), "\(line) in\n\(body)")
        }
        #expect(!body.contains(session) && !body.lowercased().contains(String(AgentProcess.account.dropFirst(2))) && !body.contains("uid"), "\(body)")
        #expect(try Self.scrape(base, "/").status == "404")
        #expect(try Self.scrape(base, "/metrics", method: "POST").status == "405")

        // A second agent cannot have the address: it does not start, and says why.
        let second = try AgentProcess(extraConfig: "metrics_listen = \"\(base.dropFirst("http://".count))\"")
        let refused = try Command.run(Command.sessionAgent, ["serve", "--config", second.directory.appendingPathComponent("session-agent.toml").path])
        #expect(refused.status != 0 && refused.stderr.contains("metrics_listen: cannot listen on \(base.dropFirst("http://".count))"), "\(refused)")
    }

    @Test func theAddressIsAnIPAndAPort() throws {
        for good in ["127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0"] {
            #expect(try AgentConfiguration(toml: "metrics_listen = \"\(good)\"", relativeTo: "/x", environment: [:]).metricsListen != nil, "\(good)")
        }
        for bad in ["localhost:9464", "::1:9464", "127.0.0.1:65536", "127.0.0.1", "127.0.0.1:-1", "[127.0.0.1]x:1"] {
            #expect(throws: AgentError.self, "\(bad)") { try AgentConfiguration(toml: "metrics_listen = \"\(bad)\"", relativeTo: "/x", environment: [:]) }
        }
    }
}
