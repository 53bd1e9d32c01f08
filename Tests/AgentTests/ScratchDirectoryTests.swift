import Foundation
import Testing
import TestSupport
import TestTraits

/// The directory the store, agent-flow and peer-credential suites make their files in is each
/// test's own, and goes when the test ends however it ends. (The trait is in TestTraits; its
/// test is here, beside the suites that use it most.)
@Suite("A test's scratch directory")
struct ScratchDirectoryTests {
    @Test func isTheTestsOwnAndGoesWhenItEnds() async throws {
        let test = try #require(Test.current)
        let made = LockedBox<[String]>()
        made.value = []
        for fails in [false, true] {
            do {
                try await (.scratchDirectory as ScratchDirectory).provideScope(for: test, testCase: nil) {
                    let path = ScratchDirectory.path("store.sqlite")
                    try Data("x".utf8).write(to: URL(fileURLWithPath: path))
                    made.value!.append(path)
                    if fails { throw CancellationError() }
                }
                #expect(!fails)
            } catch {
                #expect(fails && error is CancellationError)
            }
        }
        let paths = try #require(made.value)
        let directories = paths.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
        #expect(paths.count == 2 && Set(directories).count == 2, "\(paths)")
        for directory in directories {
            #expect(directory.hasPrefix(FileManager.default.temporaryDirectory.path))
            #expect(!FileManager.default.fileExists(atPath: directory), "\(directory) is still there")
        }
    }
}
