import EthereumCore
import Foundation
import TestSupport
import Testing
@testable import TOML

@Suite("TOML files are read as Python's tomllib reads them, and a malformed one is refused, never a crash")
struct TOMLTests {
    /// 2,000 random documents per run, about a third of them valid: keys from a small pool so
    /// tables collide, every string, number and date form, slips of one or two bytes. Each is
    /// read here, then tomllib (TOML 1.0.0) decides whether it should have been, and as what.
    @Test(.enabled(if: Oracle.isAvailable, Comment(rawValue: Oracle.unavailableReason ?? "")))
    func documentsAreReadAsTomllibReadsThem() throws {
        let cases = try Oracle.cases("toml", count: 2000)
        var lines: [String] = [], read = 0
        for c in cases {
            let doc = try #require(c["doc"]?.stringValue)
            var line = JSONObject()
            line["doc"] = .string(doc)
            do {
                line["value"] = .object(try TOMLDocument.parse(doc))
                read += 1
            } catch {
                line["error"] = .string(error.description)
            }
            lines.append(JSONValue.object(line).serialized)
        }
        #expect(read > 300 && read < 1700, "the oracle's documents should be neither all valid nor all invalid (\(read) read)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("toml-cases-\(getpid()).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        let verdicts = try Oracle.run(arguments: [Oracle.packageRoot.appendingPathComponent("Tests/oracle/oracle.py").path, "toml-check", file.path])
            .split(separator: "\n")
        #expect(verdicts.count == cases.count)
        for verdict in verdicts where verdict != "ok" { Issue.record("\(verdict) (seed \(Oracle.seed))") }
    }

    /// The documents that stopped the process inside TOMLKit's toml++ (an assertion), among them
    /// the half-typed headers an operator leaves when a rules file is saved mid-edit.
    @Test(arguments: ["[", "[.rules]", "[[[rules]]", "d=[\"\",}", "[[=", "[rules]\n[", "a = 1\n[\n"])
    func whatStoppedTheOldParserIsRefusedWithItsPlace(_ doc: String) {
        #expect(throws: TOMLError.self) { try TOMLDocument.parse(doc) }
    }

    @Test func anErrorNamesItsLineAndColumn() {
        #expect(throws: TOMLError(line: 3, column: 4, reason: "expected a value")) {
            try TOMLDocument.parse("a = 1\n[b]\nc =\n")
        }
        #expect(throws: TOMLError(line: 2, column: 1, reason: "b is defined already")) {
            try TOMLDocument.parse("b = 1\nb = 2\n")
        }
    }

    @Test func keysAndValuesNestedPastTheLimitAreRefused() throws {
        let parts = (0..<64).map { _ in "a" }
        #expect(try TOMLDocument.parse(parts.joined(separator: ".") + " = 1").count == 1)
        #expect(throws: TOMLError.self) { try TOMLDocument.parse("[" + (parts + ["a"]).joined(separator: ".") + "]") }
        #expect(throws: TOMLError.self) { try TOMLDocument.parse("x = " + String(repeating: "[", count: 65) + String(repeating: "]", count: 65)) }
        #expect(try TOMLDocument.parse("x = " + String(repeating: "[", count: 64) + String(repeating: "]", count: 64)).count == 1)
    }

    /// A byte order mark, which some editors write first, is skipped, as TOMLKit did.
    @Test func aByteOrderMarkIsSkipped() throws {
        #expect(try TOMLDocument.parse("\u{FEFF}default = \"deny\"\n")["default"] == "deny")
        #expect(throws: TOMLError.self) { try TOMLDocument.parse("a = 1\n\u{FEFF}b = 2") }
    }

    @Test func integersBeyond64BitsAreRefusedNotRounded() throws {
        #expect(try TOMLDocument.parse("n = 9223372036854775807")["n"] == .number("9223372036854775807"))
        #expect(throws: TOMLError.self) { try TOMLDocument.parse("n = 9223372036854775808") }
        #expect(throws: TOMLError.self, "a sign before 0x is not TOML") { try TOMLDocument.parse("n = -0x1") }
    }
}
