import Testing
import TestSupport

// Traits the test targets share: a library of their own, since TestSupport also goes into the
// bench and fuzz executables, which do not link Swift Testing.

/// Runs each test of a suite (or a test) in its turn among those that load SoftHSM in this
/// process (`SoftHSM.inProcessTurns`), in this test target and the others.
public struct InProcessSoftHSM: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard !test.isSuite else { return try await function() }
        try await SoftHSM.inProcessTurns.run(function)
    }
}

extension Trait where Self == InProcessSoftHSM {
    public static var inProcessSoftHSM: Self { InProcessSoftHSM() }
}
