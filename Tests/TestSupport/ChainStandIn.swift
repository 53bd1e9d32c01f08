import EthereumCore
import Foundation

/// An Ethereum JSON-RPC endpoint on loopback that answers the Smart Sessions getters from a
/// chain state the test writes: `Tests/rig/chain-rpc.py` in the oracle venv (eth-abi), which
/// derives the policies' slots itself. The state is read again for every request.
public final class ChainStandIn {
    static let script = Oracle.packageRoot.appendingPathComponent("Tests/rig/chain-rpc.py")

    public let directory: URL
    public let port: Int
    private let process: Process

    /// Where the agent is pointed: a path like a provider's, with a key in it that must never
    /// be shown.
    public var url: String { "http://127.0.0.1:\(port)/v3/\(Self.apiKey)" }
    public static let apiKey = "k3y-0f-th3-pr0v1d3r"

    public init(_ state: JSONValue) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("chain-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let portFile = directory.appendingPathComponent("port")
        process = Process()
        process.executableURL = Oracle.python
        process.arguments = ["-u", Self.script.path, directory.appendingPathComponent("state.json").path, portFile.path]
        let err = directory.appendingPathComponent("err.log")
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: err)
        try Self.write(state, in: directory)
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: portFile.path) {
            guard process.isRunning, Date() < deadline else {
                throw Oracle.Failure(description: "chain-rpc.py did not start: \((try? String(contentsOf: err, encoding: .utf8)) ?? "")")
            }
            _ = poll(nil, 0, 20)
        }
        port = Int(try String(contentsOf: portFile, encoding: .utf8)) ?? 0
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public func stop() {
        guard process.isRunning else { return }
        // SIGKILL: a test process may pass SIGTERM on ignored.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// The chain's state from now on (see chain-rpc.py).
    public func write(_ state: JSONValue) throws { try Self.write(state, in: directory) }

    static func write(_ state: JSONValue, in directory: URL) throws {
        try state.serialized.write(to: directory.appendingPathComponent("state.json"), atomically: true, encoding: .utf8)
    }

    /// Every HTTP request's body it was sent, in order: one JSON-RPC request, or a batch.
    public var httpRequests: [JSONValue] {
        let text = (try? String(contentsOf: directory.appendingPathComponent("calls.jsonl"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
    }

    /// Every JSON-RPC request it was sent, those of a batch one by one.
    public var requests: [JSONValue] { httpRequests.flatMap { $0.arrayValue ?? [$0] } }
}
