import ArgumentParser
import EthereumCore
import OwnerSigners

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the version and the C libraries the agent is linked against.")

    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let libraries = NativeLibraries.report()
            var text = "session-agent \(SessionAgent.version)"
            var list: [JSONValue] = []
            for lib in libraries {
                text += "\n  \(lib.name)\(lib.version.map { " \($0)" } ?? ""): \(lib.path ?? "loaded at run time") (\(lib.purpose))"
                var o = JSONObject()
                o["name"] = .string(lib.name)
                o["version"] = lib.version.map { .string($0) } ?? .null
                o["path"] = lib.path.map { .string($0) } ?? .null
                o["purpose"] = .string(lib.purpose)
                list.append(.object(o))
            }
            return CommandOutput(text: text, json: .object(JSONObject([
                "version": .string(SessionAgent.version), "libraries": .array(list),
            ])))
        }
    }
}
