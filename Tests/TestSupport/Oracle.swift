import EthereumCore
import Foundation

/// Runs `Tests/oracle/oracle.py` in the project's oracle venv and returns its cases. The seed
/// is random per run unless `ORACLE_SEED` is set; failing tests print it so a run can be
/// repeated exactly.
public enum Oracle {
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static var python: URL {
        if let p = ProcessInfo.processInfo.environment["SESSION_AGENT_ORACLE_PYTHON"] { return URL(fileURLWithPath: p) }
        return packageRoot.appendingPathComponent(".venv-oracle/bin/python")
    }

    /// Why the oracle cannot run here, or nil when it can. In CI (`CI` set) a missing
    /// oracle is not a reason to skip: the tests fail instead.
    public static var unavailableReason: String? {
        if FileManager.default.isExecutableFile(atPath: python.path) { return nil }
        return "the Python oracle venv is missing (\(python.path)); run scripts/install-deps.sh"
    }

    public static var isAvailable: Bool { unavailableReason == nil || ProcessInfo.processInfo.environment["CI"] != nil }

    public static let seed: UInt64 = {
        if let s = ProcessInfo.processInfo.environment["ORACLE_SEED"], let v = UInt64(s) { return v }
        return UInt64.random(in: 1...UInt64(UInt32.max))
    }()

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public static func cases(_ kind: String, count: Int) throws -> [JSONValue] {
        let output = try run(arguments: [packageRoot.appendingPathComponent("Tests/oracle/oracle.py").path, kind, String(count), String(seed)])
        return try output.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
    }

    /// What `oracle.py webauthn-check` says of each case (one JSON object each, see there): "ok"
    /// or the first check that failed. The cases go through a file in `directory`.
    public static func webAuthnVerdicts(_ cases: [JSONValue], in directory: URL) throws -> [String] {
        let file = directory.appendingPathComponent("webauthn-\(UUID().uuidString.prefix(8)).jsonl")
        try cases.map(\.serialized).joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        return try run(arguments: [packageRoot.appendingPathComponent("Tests/oracle/oracle.py").path, "webauthn-check", file.path])
            .split(separator: "\n").map { String(try JSONValue(parsing: String($0)).stringValue ?? "\($0)") }
    }

    /// What `oracle.py owner-userop-check` says of each user operation (unpacked, EntryPoint
    /// v0.7) on `chainId`: its userOpHash, and who signed it as OwnableValidator's validateUserOp
    /// recovers them.
    public static func ownerUserOpSigners(_ operations: [JSONValue], chainId: UInt64, in directory: URL) throws -> [(userOpHash: String, signers: [String])] {
        let file = directory.appendingPathComponent("userops-\(UUID().uuidString.prefix(8)).jsonl")
        try operations.map { JSONValue.object(JSONObject(["userOperation": $0, "chainId": .string(String(chainId))])).serialized }
            .joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        return try run(arguments: [packageRoot.appendingPathComponent("Tests/oracle/oracle.py").path, "owner-userop-check", file.path])
            .split(separator: "\n").map { line in
                let answer = try JSONValue(parsing: String(line))
                return (answer["userOpHash"]?.stringValue ?? "", answer["signers"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            }
    }

    /// Runs the oracle interpreter with `arguments`, returning stdout; a non-zero exit throws
    /// with stderr.
    public static func run(arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = python
        process.arguments = arguments
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "oracle \(arguments.dropFirst().joined(separator: " ")) failed (seed \(seed)): \(String(decoding: err, as: UTF8.self))")
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Reads the fixtures in Tests/TestSupport/Fixtures (the contract vectors and golden files).
public enum Fixtures {
    public static func url(_ path: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: "Fixtures/" + path, withExtension: nil) else {
            throw Oracle.Failure(description: "fixture \(path) not found in \(Bundle.module.bundlePath)")
        }
        return url
    }

    public static func json(_ path: String) throws -> JSONValue {
        try JSONValue(parsing: [UInt8](try Data(contentsOf: try url(path))))
    }

    /// The 200 records of sessions.json, parsed once.
    public static let sessionRecords: [JSONValue] = (try? json("sessions.json").arrayValue) ?? []
}

extension JSONValue {
    /// Test helper: the string at `key`, or a failure naming it.
    public func string(_ key: String) throws -> String {
        guard let s = self[key]?.stringValue else { throw Oracle.Failure(description: "case has no string \(key): \(serialized.prefix(200))") }
        return s
    }

    public func bytes(_ key: String) throws -> [UInt8] { try Hex.decode(try string(key)) }
    public func bytes32(_ key: String) throws -> Bytes32 { try Bytes32(hex: try string(key)) }
}
