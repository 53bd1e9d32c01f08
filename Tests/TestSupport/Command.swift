import Foundation

/// Runs a program and collects what it printed.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public enum Command {
    /// The directory the test bundle was built into, which also holds the package's executables.
    public static var buildDirectory: URL {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On Linux the test binary sits directly in the build directory; on macOS inside a bundle.
        while url.path != "/", !FileManager.default.fileExists(atPath: url.appendingPathComponent("session-agent").path) {
            url = url.deletingLastPathComponent()
        }
        return url
    }

    public static var sessionAgent: URL { buildDirectory.appendingPathComponent("session-agent") }

    public static func run(_ executable: URL, _ arguments: [String], stdin: [UInt8]? = nil, environment: [String: String]? = nil,
                           in directory: URL? = nil) throws -> CommandResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin)) }
        try input.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        let errData = LockedBox<Data>()
        let reader = Thread { errData.value = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while errData.value == nil { usleep(1000) }
        return CommandResult(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData.value!, as: UTF8.self))
    }

    /// `session-agent ARGS…`
    public static func sessionAgent(_ arguments: String..., stdin: String? = nil) throws -> CommandResult {
        try run(sessionAgent, arguments, stdin: stdin.map { Array($0.utf8) })
    }
}

/// A value shared between a test and the closures or threads it hands out.
public final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T?
    public init() {}
    public var value: T? {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
}

extension LockedBox where T == Int {
    /// Adds one and returns the new count, in one step.
    public func increment() -> Int {
        lock.withLock {
            _value = (_value ?? 0) + 1
            return _value!
        }
    }
}

/// The whole of a /proc file as text. Foundation's String(contentsOfFile:), Data(contentsOf:)
/// and FileManager.contents(atPath:) stop after the first 4 KiB of these files, whose size
/// reads as 0: a process's maps or environ would be cut short, and a check that something is
/// absent from them would pass whatever they hold.
public func procFile(_ path: String) -> String? {
    guard let file = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? file.close() }
    return String(decoding: (try? file.readToEnd()) ?? Data(), as: UTF8.self)
}
