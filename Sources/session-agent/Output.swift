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

/// The most a command reads as its input: far more than any request, user operation or document
/// it takes (the agent takes a line of 1 MiB). `/dev/zero` is refused, not read until memory runs out.
let maximumInputSize = 64 << 20

/// Opens a named file, or standard input for `-` or no argument; `name` is how errors call it.
func openInput(_ path: String?) throws -> (handle: FileHandle, name: String) {
    guard let path, path != "-" else { return (.standardInput, "standard input") }
    do { return (try FileHandle(forReadingFrom: URL(fileURLWithPath: path)), path) } catch {
        throw CommandFailure(message: "cannot read \(path): \(systemWords(error))", reason: "not_found")
    }
}

/// Reads a named file, or standard input for `-` or no argument.
func readInput(_ path: String?) throws -> [UInt8] {
    let (handle, name) = try openInput(path)
    let data: Data
    do { data = try handle.read(upToCount: maximumInputSize + 1) ?? Data() } catch {
        throw CommandFailure(message: "cannot read \(name): \(systemWords(error))", reason: "not_found")
    }
    guard data.count <= maximumInputSize else {
        throw CommandFailure(message: "\(name) goes on past \(maximumInputSize >> 20) MiB, more than any input this command takes", reason: "bad_request")
    }
    return [UInt8](data)
}

/// Calls `body` with each non-empty line of a named file, or of standard input for `-`, and its
/// number (from 1), read a megabyte at a time: a file of a million audit entries is not held whole.
/// A line longer than 16 MiB, far longer than any audit entry, is refused (`/dev/zero` has none).
func forEachLine(of path: String, _ body: (Int, ArraySlice<UInt8>) throws -> Void) throws {
    let maximumLine = 16 << 20
    let (handle, name) = try openInput(path)
    var pending: [UInt8] = []
    var number = 0
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
        // What is left of the chunks before holds no newline: only the new chunk is searched.
        var start = 0, searched = pending.count
        pending += chunk
        while let newline = pending[searched...].firstIndex(of: UInt8(ascii: "\n")) {
            number += 1
            if newline > start { try body(number, pending[start..<newline]) }
            start = newline + 1
            searched = start
        }
        pending.removeFirst(start)
        guard pending.count <= maximumLine else {
            throw CommandFailure(message: "\(name): line \(number + 1) goes on past \(maximumLine >> 20) MiB", reason: "bad_request")
        }
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
