import Agent
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A descriptor closed twice is closed the second time under whichever thread was given its
/// number in between. An agent at start checked for a live agent at its socket path with a
/// client that closed its socket twice; the store-token watch had meanwhile opened a SoftHSM
/// file under that number, closed it later, and so closed the agent's new listening socket:
/// NIO's bind then stopped the agent on EBADF.
@Suite("A failed open closes its descriptor once")
struct DescriptorTests {
    @Test func aClientThatCannotConnectClosesItsSocketOnce() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("no-agent-\(UUID().uuidString).sock").path
        let taken = Self.descriptorsTakenFromAnotherThread(times: 20000) {
            #expect(throws: AgentClient.Failure.self) { try AgentClient(path: path) }
        }
        #expect(taken == 0, "\(taken) descriptors of another thread were closed under it")
    }

    @Test func aSecondAgentsLockClosesItsFileOnce() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lock-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let held = try InstanceLock(directory: directory)
        let taken = Self.descriptorsTakenFromAnotherThread(times: 5000) {
            #expect(throws: AgentError.self) { try InstanceLock(directory: directory) }
        }
        #expect(taken == 0, "\(taken) descriptors of another thread were closed under it")
        withExtendedLifetime(held) {}
    }

    /// Runs `failing` `times` times while another thread opens and closes /dev/null, and counts
    /// that thread's descriptors found closed before it closed them. The lowest free number is
    /// the one given, so a number closed twice is soon the other thread's.
    static func descriptorsTakenFromAnotherThread(times: Int, _ failing: () -> Void) -> Int {
        let state = OtherThread()
        let other = Thread {
            while state.running.load(ordering: .acquiring) {
                let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { continue }
                if close(fd) != 0, errno == EBADF { state.taken.add(1, ordering: .relaxed) }
            }
            state.done.store(true, ordering: .releasing)
        }
        other.start()
        for _ in 0..<times { failing() }
        state.running.store(false, ordering: .releasing)
        while !state.done.load(ordering: .acquiring) { sched_yield() }
        return state.taken.load(ordering: .relaxed)
    }

    final class OtherThread: Sendable {
        let running = Atomic(true)
        let done = Atomic(false)
        let taken = Atomic(0)
    }
}
