@testable import Agent
import Approval
import EthereumCore
import Foundation
import SessionStore
import Testing
import TestSupport
import TestTraits

/// `bindProcess`: a session for the requesting process alone, which ends (revoked, its key
/// erased) once that process exits. A running agent, and clients that are real processes on its
/// socket, whose exit the test chooses.
@Suite("Sessions that end with their process", .serialized)
struct ProcessBoundSessionTests {
    /// A client process: asks for a session bound to itself, signs with it when it is
    /// approved, prints both answers as one line, then waits until its stdin closes.
    final class Client {
        static let script = """
            import json, socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
            def call(method, params):
                f.write((json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}) + "\\n").encode()); f.flush()
                return json.loads(f.readline())
            out = {"asked": call("session_request", {"request": json.loads(sys.argv[2]), "bindProcess": True})}
            session = out["asked"].get("result", {}).get("sessionId")
            if session:
                sign = json.loads(sys.argv[3]); sign["sessionId"] = session
                out["signed"] = call("session_signUserOperation", sign)
            print(json.dumps(out), flush=True)
            sys.stdin.read()
            """

        let process = Process()
        private let stdin = Pipe(), stdout = Pipe()
        /// What it printed.
        let answers: JSONValue

        init(socket: String, request: JSONValue = SocketTests.example) throws {
            let sign = JSONObject(["chainId": JSONValue(11155111), "entryPoint": .string(EntryPointVersion.v07.canonicalAddress.checksummed),
                                   "userOperation": SocketTests.transferOp(1_000_000, nonce: 0)])
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", Self.script, socket, request.serialized, JSONValue.object(sign).serialized]
            process.standardInput = stdin
            process.standardOutput = stdout
            try process.run()
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")) {
                let chunk = stdout.fileHandleForReading.availableData
                guard !chunk.isEmpty else { throw Oracle.Failure(description: "the client exited before answering") }
                line += chunk
            }
            answers = try JSONValue(parsing: [UInt8](line))
        }

        var sessionId: String? { answers["asked"]?["result"]?["sessionId"]?.stringValue }

        /// Closes its stdin, and waits for it to exit.
        func exit() {
            try? stdin.fileHandleForWriting.close()
            process.waitUntilExit()
        }

        deinit { exit() }
    }

    static func session(_ control: AgentClient, _ id: String) throws -> JSONValue {
        try control.call("session_get", JSONObject(["sessionId": .string(id)]))
    }

    /// Polls (the agent looks every 5 s) until the session is revoked.
    static func waitUntilRevoked(_ control: AgentClient, _ id: String) throws {
        let deadline = Date().addingTimeInterval(20)
        while try session(control, id)["revoked"] != .bool(true) {
            guard Date() < deadline else { throw Oracle.Failure(description: "session \(id) was not revoked") }
            _ = poll(nil, 0, 100)
        }
    }

    /// Only the process that asked may sign with the session, or see it: another process of
    /// the same uid and program is told there is no such session. Once it exits the session is
    /// revoked, its key erased, with an audit entry and a journal line that say why.
    @Test func aSessionBoundToItsProcessEndsWhenItExits() throws {
        let agent = try AgentProcess()
        try agent.start()
        defer { agent.stop() }
        let control = try AgentClient(path: agent.controlSocket), other = try AgentClient(path: agent.clientSocket)
        let client = try Client(socket: agent.clientSocket)
        let id = try #require(client.sessionId, "\(client.answers)")
        #expect(client.answers["signed"]?["result"]?["signature"] != nil, "\(client.answers)")
        #expect(try Self.session(control, id)["boundToProcess"] == JSONValue(Int(client.process.processIdentifier)))
        let shown = try Command.run(Command.sessionAgent, ["sessions", "show", id, "--socket", agent.controlSocket])
        #expect(shown.stdout.contains("for process \(client.process.processIdentifier) alone, and ends when it exits"), "\(shown)")
        for call in [{ try other.call("session_get", JSONObject(["sessionId": .string(id)])) }, { try SocketTests.sign(other, id, 1, nonce: 1) }] {
            #expect { try call() } throws: { ($0 as? AgentClient.RemoteError)?.reason == "not_found" }
        }
        // A session bound to nothing else is the other client's to use, as before.
        #expect(try SocketTests.sign(other, try SocketTests.requestSession(other), 1, nonce: 0)["signature"] != nil)
        #expect(try Self.session(control, id)["revoked"] == .bool(false))

        client.exit()
        try Self.waitUntilRevoked(control, id)
        let entries = try #require(try control.call("audit_show", JSONObject(["kind": "revoke"])).arrayValue)
        #expect(entries.contains { $0["entry"]?["session"]?.stringValue == id && $0["entry"]?["reason"] == "client_exited" }, "\(entries)")
        try agent.waitForLog("session \(id) revoked: the process it was bound to (pid \(client.process.processIdentifier)) exited")
    }

    /// Rules may approve only sessions bound to their process: the agent gives them the binding
    /// the client asked for.
    @Test func rulesMayAskForTheBinding() throws {
        let agent = try AgentProcess(rules: "default = \"deny\"\n[[rules]]\nname = \"bound bots\"\ndecision = \"approve\"\n[rules.match]\nbound_to = [\"process\"]\n")
        try agent.start()
        defer { agent.stop() }
        let bound = try Client(socket: agent.clientSocket)
        #expect(bound.answers["asked"]?["result"]?["status"] == "approved", "\(bound.answers)")
        let unbound = try AgentClient(path: agent.clientSocket).call("session_request", JSONObject(["request": SocketTests.example]))
        #expect(unbound["status"] == "denied", "\(unbound)")
        let test = try Command.run(Command.sessionAgent, ["rules", "test", "-", "--rules", agent.directory.appendingPathComponent("rules.toml").path, "--bound-to", "process", "--json"],
                                   stdin: Array(SocketTests.example.serialized.utf8))
        #expect(try JSONValue(parsing: test.stdout)["decision"] == "approve", "\(test)")
    }

    /// A process that exits while the agent is stopped: its session is revoked as the agent
    /// starts, before any client is served. One still running keeps its own.
    @Test func aSessionWhoseProcessExitedWhileTheAgentWasStoppedEndsAsItStarts() throws {
        let agent = try AgentProcess()
        try agent.start()
        defer { agent.stop() }
        let leaving = try Client(socket: agent.clientSocket), staying = try Client(socket: agent.clientSocket)
        let gone = try #require(leaving.sessionId), kept = try #require(staying.sessionId)
        agent.stop()
        leaving.exit()
        try agent.start()
        let control = try AgentClient(path: agent.controlSocket)
        #expect(try Self.session(control, gone)["revoked"] == .bool(true))
        try agent.waitForLog("session \(gone) revoked")
        #expect(try Self.session(control, kept)["revoked"] == .bool(false))
        #expect(!agent.logs.contains("session \(kept) revoked"))
    }

    /// A process that exits while its request waits for a person: nobody is asked to sign, and
    /// the request fails saying why.
    @Test func aRequestWhoseProcessExitedIsNotSigned() throws {
        let agent = try AgentProcess(rules: "default = \"ask\"")
        try agent.start()
        defer { agent.stop() }
        let client = try Client(socket: agent.clientSocket)
        let request = try #require(client.answers["asked"]?["result"]?["id"]?.stringValue, "\(client.answers)")
        client.exit()
        let control = try AgentClient(path: agent.controlSocket)
        #expect {
            try control.call("pending_decide", JSONObject(["id": .string(request), "approve": true, "approver": "test"]))
        } throws: { error in
            guard let error = error as? AgentClient.RemoteError else { return false }
            return error.reason == "client_exited" && error.message.contains("(pid \(client.process.processIdentifier)) has exited")
        }
        #expect(try control.call("pending_get", JSONObject(["id": .string(request)]))["status"] == "failed")
    }

    /// A key handed to its client would outlive the process; a process the agent cannot tell
    /// apart from a later one with its pid cannot be bound to.
    @Test(.scratchDirectory) func aSessionThatCannotEndWithItsProcessIsRefused() async throws {
        let (agent, _) = try AgentFlowTests.agent(rules: "default = \"approve\"")
        var exportable = AgentFlowTests.example.objectValue!
        exportable["export"] = true
        let me = ClientIdentity(uid: getuid(), gid: getgid(), pid: getpid(), startTime: 1)
        var unknown = me
        unknown.startTime = nil
        for (request, client, message) in [(JSONValue.object(exportable), me, "cannot hand its key out"), (AgentFlowTests.example, unknown, "cannot be told apart")] {
            await #expect { try await agent.request(request, client: client, binding: .process) } throws: { error in
                (error as? AgentError)?.reason == "bad_request" && "\(error)".contains(message)
            }
        }
    }

    /// The session admits its process alone: the same pid with another start time is a later
    /// process, and the session's process has ended then as much as when its pid is free.
    @Test func theBindingIsThePidAndItsStartTime() {
        for (state, ended) in [(PeerCredentials.ProcessState.running(since: 777), false), (.running(since: 778), true), (.exited, true), (.unknown, false)] {
            #expect(ClientProcess(pid: 4242, startTime: 777).hasEnded(state) == ended, "\(state)")
        }
        let process = ClientProcess(pid: 4242, startTime: 777)
        let binding = ClientBinding(uid: 1000, process: process)
        #expect(Agent.binding(binding, admits: ClientIdentity(uid: 1000, gid: 1000, pid: 4242, startTime: 777)))
        for other in [ClientIdentity(uid: 1000, gid: 1000, pid: 4242, startTime: 778), ClientIdentity(uid: 1000, gid: 1000, pid: 4243, startTime: 777),
                      ClientIdentity(uid: 1000, gid: 1000, pid: 4242), ClientIdentity(uid: 1001, gid: 1000, pid: 4242, startTime: 777)] {
            #expect(!Agent.binding(binding, admits: other), "\(other)")
        }
    }

    /// `/proc/PID/stat`'s start time, counted after the program's name, which may hold spaces
    /// and parentheses; this process runs, and one that exited does not.
    @Test func aProcessStartTimeIsReadFromProc() throws {
        let line = "4242 (a) b) (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10"
        #expect(PeerCredentials.startTime(stat: Array(line.utf8)) == 987654)
        #expect(PeerCredentials.startTime(stat: Array("4242 (a) S 1 2".utf8)) == nil)
        let stat = try String(contentsOfFile: "/proc/self/stat", encoding: .utf8)
        #expect(PeerCredentials.state(pid: getpid()) == .running(since: try #require(PeerCredentials.startTime(stat: Array(stat.utf8)))))
        let exited = Process()
        exited.executableURL = URL(fileURLWithPath: "/bin/true")
        try exited.run()
        exited.waitUntilExit()
        #expect(PeerCredentials.state(pid: exited.processIdentifier) == .exited)
    }
}
