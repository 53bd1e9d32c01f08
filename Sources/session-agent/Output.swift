import Agent
import ArgumentParser
import EthereumCore
import Foundation
import SmartSessions

/// `--json` for every command a script may parse.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false
}

/// What a command prints: text for people, and the same facts as JSON for scripts.
struct CommandOutput {
    var text: String
    var json: JSONValue

    /// A command that printed what it had as it went (`audit export`): nothing more to print.
    static let streamed = CommandOutput(text: "", json: .null)
    var isStreamed: Bool { text.isEmpty && json == .null }
}

/// An error a command reports: a sentence, a machine-readable reason, and hints.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var reason: String = "bad_input"
    var hints: [String] = []

    var description: String { message }
}

extension ParsableCommand {
    /// Runs `body`, prints its output, and turns any error into `session-agent: error: …` on
    /// stderr (or a JSON error object with `--json`) and exit status 1.
    func report(_ options: OutputOptions, _ body: () throws -> CommandOutput) throws {
        do {
            let output = try body()
            guard !output.isStreamed else { return }
            print(options.json ? output.json.prettyPrinted : output.text)
        } catch { throw fail(error, json: options.json) }
    }

    func report(_ options: OutputOptions, _ body: () async throws -> CommandOutput) async throws {
        do {
            let output = try await body()
            print(options.json ? output.json.prettyPrinted : output.text)
        } catch { throw fail(error, json: options.json) }
    }

    /// Prints the error the way every command does and returns the exit status to throw.
    private func fail(_ error: any Error, json: Bool) -> ExitCode {
        switch error {
        case let failure as CommandFailure: emit(failure, json: json)
        case let error as SmartSessionError: emit(CommandFailure(message: error.message, reason: error.reason), json: json)
        default: emit(CommandFailure(message: "\(error)"), json: json)
        }
        return ExitCode.failure
    }

    private func emit(_ failure: CommandFailure, json: Bool) {
        var text: String
        if json {
            var error = JSONObject()
            error["message"] = .string(failure.message)
            error["reason"] = .string(failure.reason)
            if !failure.hints.isEmpty { error["hints"] = .array(failure.hints.map { .string($0) }) }
            text = JSONValue.object(JSONObject(["error": .object(error)])).prettyPrinted + "\n"
        } else {
            text = "session-agent: error: \(failure.message)\n"
            for hint in failure.hints { text += "hint: \(hint)\n" }
        }
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// Reads a named file, or standard input for `-` or no argument.
func readInput(_ path: String?) throws -> [UInt8] {
    if path == nil || path == "-" {
        return [UInt8](FileHandle.standardInput.readDataToEndOfFile())
    }
    do {
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path!)))
    } catch {
        throw CommandFailure(message: "cannot read \(path!): \(systemWords(error))", reason: "not_found")
    }
}

/// Calls `body` with each non-empty line of a named file, or of standard input for `-`, and its
/// number (from 1), read a megabyte at a time: a file of a million audit entries is not held whole.
func forEachLine(of path: String, _ body: (Int, ArraySlice<UInt8>) throws -> Void) throws {
    let handle: FileHandle
    do { handle = path == "-" ? .standardInput : try FileHandle(forReadingFrom: URL(fileURLWithPath: path)) } catch {
        throw CommandFailure(message: "cannot read \(path): \(systemWords(error))", reason: "not_found")
    }
    var pending: [UInt8] = []
    var number = 0
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
        pending += chunk
        var start = 0
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            number += 1
            if newline > start { try body(number, pending[start..<newline]) }
            start = newline + 1
        }
        pending.removeFirst(start)
    }
    if !pending.isEmpty { try body(number + 1, pending[...]) }
}

func parseJSON(_ bytes: [UInt8], what: String) throws -> JSONValue {
    do { return try JSONValue(parsing: bytes) } catch {
        throw CommandFailure(message: "\(what): \(error)")
    }
}

func parseHex(_ text: String, what: String) throws -> [UInt8] {
    do { return try Hex.decode(text) } catch {
        throw CommandFailure(message: "\(what): \(error)")
    }
}

func parseAddress(_ text: String, what: String) throws -> Address {
    do { return try Address(text) } catch {
        throw CommandFailure(message: "\(what): \(error)")
    }
}

/// A time the agent answered in Unix seconds, as ISO 8601 UTC; nil when it gave none.
func utcTime(_ value: JSONValue?) -> String? {
    value.flatMap { TimeInterval($0.serialized) }.map { Date(timeIntervalSince1970: $0).ISO8601Format() }
}

/// The Unix time `--older-than` (a duration) ago.
func unixTime(olderThan text: String) throws -> Int {
    let seconds: UInt64
    do { seconds = try DurationText.seconds(text) } catch { throw ValidationError("--older-than: \(error)") }
    let now = UInt64(Date().timeIntervalSince1970)
    return Int(now - min(now, seconds))
}
