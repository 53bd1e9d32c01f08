import Foundation
import Testing

/// Gives each test of a suite (or a test) a directory of its own for the files it makes (stores,
/// sockets), removed when the test ends however it ends: a bare `swift test` leaves nothing in
/// the temporary directory, as `scripts/test.sh` checks.
public struct ScratchDirectory: SuiteTrait, TestTrait, TestScoping {
    @TaskLocal static var current: URL?

    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard !test.isSuite else { return try await function() }
        // Short, so that a socket in it stays within sun_path's 108 bytes; open to the other
        // uids some tests run their clients as.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(at: directory) }
        try await Self.$current.withValue(directory) { try await function() }
    }

    /// A path no one has used, ending in `name`, in the running test's directory.
    public static func path(_ name: String) -> String {
        guard let current else {
            Issue.record("no scratch directory: give the suite or the test the .scratchDirectory trait")
            return FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID())-\(name)").path
        }
        return current.appendingPathComponent("\(UUID().uuidString.prefix(8))-\(name)").path
    }
}

extension Trait where Self == ScratchDirectory {
    public static var scratchDirectory: Self { ScratchDirectory() }
}
