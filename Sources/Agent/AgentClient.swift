import EthereumCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking JSON-RPC client for the agent's sockets, for the CLI, tests and the benchmark.
public final class AgentClient {
    /// The connected socket, for a caller that polls it.
    public let fd: Int32
    private var buffer: [UInt8] = []
    /// How much of `buffer` holds no newline: a long answer is searched once, not again at
    /// each chunk.
    private var scanned = 0
    /// Where recv writes; kept, so a call does not allocate and clear 64 KiB.
    private var chunk = [UInt8](repeating: 0, count: 65536)
    private var nextId = 1

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The client socket: `SESSION_AGENT_SOCK`, else `$XDG_RUNTIME_DIR/session-agent/client.sock`.
    public static var defaultClientSocket: String {
        let env = ProcessInfo.processInfo.environment
        return env["SESSION_AGENT_SOCK"] ?? AgentPaths.socketDirectory(env) + "/client.sock"
    }

    /// The control socket: `SESSION_AGENT_CONTROL_SOCK`, else next to the client socket (the
    /// agent makes both in one directory), so that exporting SESSION_AGENT_SOCK alone, as one
    /// exports SSH_AUTH_SOCK, finds both.
    public static var defaultControlSocket: String {
        ProcessInfo.processInfo.environment["SESSION_AGENT_CONTROL_SOCK"]
            ?? URL(fileURLWithPath: defaultClientSocket).deletingLastPathComponent().appendingPathComponent("control.sock").path
    }

    /// The uid of the process serving the socket (SO_PEERCRED), as the kernel saw it listen.
    public var serverUID: UInt32? { try? PeerCredentials.uid(socket: fd) }

    public init(path: String) throws {
        // `fd` is set last: a class whose init throws once every property is set is deinited,
        // and the deinit's close after this one's would close whatever the number was given
        // to meanwhile, in another thread.
        let connected = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard connected >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { close(connected); throw Failure(description: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(connected, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else {
            let why = String(cString: strerror(errno))
            close(connected)
            throw Failure(description: "cannot connect to the agent at \(path): \(why)")
        }
        fd = connected
    }

    deinit { close(fd) }

    /// Sends raw bytes (tests send malformed and partial messages this way).
    public func sendRaw(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    /// Reads one line (the answer to one message), or nil at end of stream.
    public func readLine() throws -> JSONValue? {
        while true {
            if let newline = buffer[scanned...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                scanned = 0
                return try JSONValue(parsing: line)
            }
            scanned = buffer.count
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return nil }
            guard n > 0 else { throw Failure(description: "recv: \(String(cString: strerror(errno)))") }
            buffer += chunk[0..<n]
        }
    }

    /// Calls `method`; returns the result or throws the agent's error (message and reason).
    public func call(_ method: String, _ params: JSONObject = JSONObject()) throws -> JSONValue {
        let id = nextId
        nextId += 1
        let request = JSONValue.object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(id), "method": .string(method), "params": .object(params)]))
        let response: JSONValue?
        do {
            try sendRaw(Array((request.serialized + "\n").utf8))
            response = try readLine()
        } catch {
            // An agent that refuses a connection (its uid, too many open) says why and closes
            // it, perhaps before the request could be sent: the reason is still there to read.
            guard let refusal = try? readLine(), refusal["error"] != nil else { throw error }
            response = refusal
        }
        guard let response else { throw Failure(description: "the agent closed the connection") }
        if let error = response["error"] {
            throw RemoteError(message: error["message"]?.stringValue ?? "error", reason: error["data"]?["reason"]?.stringValue ?? "unknown",
                              code: Int(error["code"].flatMap { if case .number(let n) = $0 { n } else { nil } } ?? "0") ?? 0)
        }
        return response["result"] ?? .null
    }

    /// An error the agent answered with.
    public struct RemoteError: Error, CustomStringConvertible {
        public var message: String
        public var reason: String
        public var code: Int
        public var description: String { message }
    }
}

/// Default locations, as XDG and systemd expect them.
public enum AgentPaths {
    public static func socketDirectory(_ env: [String: String]) -> String {
        (env["XDG_RUNTIME_DIR"] ?? "/run/user/\(getuid())") + "/session-agent"
    }

    /// Why the default socket directory has nowhere to go, in a session systemd-logind did not
    /// open (su, sudo, cron, ssh without pam_systemd); nil when there is a runtime directory.
    public static func missingRuntimeDirectory(_ env: [String: String]) -> String? {
        let run = "/run/user/\(getuid())"
        guard env["XDG_RUNTIME_DIR"] == nil, !FileManager.default.fileExists(atPath: run) else { return nil }
        return "XDG_RUNTIME_DIR is not set and \(run) does not exist, as in a session systemd-logind did not open (su, sudo, cron); "
            + "set socket_dir in the configuration, or XDG_RUNTIME_DIR"
    }

    public static func dataDirectory(_ env: [String: String]) -> String {
        (env["XDG_DATA_HOME"] ?? (env["HOME"] ?? "/root") + "/.local/share") + "/session-agent"
    }
}
