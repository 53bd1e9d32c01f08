import EthereumCore
import Foundation
import Testing
import TestSupport

/// The client commands against a peer on the socket that answers unlike our agent would:
/// `SESSION_AGENT_SOCK` may name anything, and a command must not trap on what it hears.
@Suite("session-agent client commands against another peer")
struct ClientCommandTests {
    /// `request` waits for a pending request by the id the answer gave; an answer without one
    /// is an error (it was a force-unwrap, and the command trapped).
    @Test func aPendingAnswerWithoutItsIdIsAnError() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("peer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // The peer listens before it starts the command, so the command always finds it.
        let peer = """
            import json, socket, subprocess, sys
            path = sys.argv[1] + "/peer.sock"
            server = socket.socket(socket.AF_UNIX); server.bind(path); server.listen(1)
            command = subprocess.Popen([sys.argv[2], "request", sys.argv[3], "--socket", path, "--wait", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            connection, _ = server.accept(); f = connection.makefile("rwb")
            request = json.loads(f.readline())
            f.write((json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"status": "pending"}}) + "\\n").encode()); f.flush()
            _, err = command.communicate(timeout=60)
            print(json.dumps({"method": request["method"], "status": command.returncode, "stderr": err.decode()}))
            """
        let request = Oracle.packageRoot.appendingPathComponent("docs/examples/usdc-transfers.json").path
        let ran = try Command.run(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", peer, directory.path, Command.sessionAgent.path, request])
        let out = try JSONValue(parsing: Array(ran.stdout.utf8))
        #expect(out["method"] == "session_request", "\(ran.stdout) \(ran.stderr)")
        #expect(out["status"] == JSONValue(1) && out["stderr"]?.stringValue?.contains("the agent answered a pending request without its id") == true, "\(ran.stdout)")
    }
}

@Suite("session-agent client commands read their input first")
struct ClientInputTests {
    /// What the command reads is read before the agent is looked for: a mistyped file name or
    /// malformed params are told as such, not hidden behind "cannot connect to the agent".
    @Test(arguments: [["request", "/nonexistent/request.json"], ["sign-userop", "--session", "sess-1", "--chain-id", "1", "/nonexistent/op.json"],
                      ["rpc", "agent_info", "{"]])
    func itsInputIsReadBeforeTheAgentIsLookedFor(_ arguments: [String]) throws {
        let ran = try Command.run(Command.sessionAgent, arguments + ["--socket", "/nonexistent/agent.sock"])
        #expect(ran.status == 1 && !ran.stderr.contains("cannot connect"), "\(ran.stderr)")
        #expect(ran.stderr.contains("cannot read /nonexistent/") || ran.stderr.contains("params: invalid JSON"), "\(ran.stderr)")
    }
}
