import Agent
import ArgumentParser
import Foundation
import Logging
import OwnerSigners

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the agent in the foreground (systemd style).",
        discussion: """
            Listens on a client socket (for local programs: JSON-RPC, one object per line) and a control \
            socket (for the operator), both 0600 in a 0700 directory, or on the sockets systemd passes \
            (LISTEN_FDNAMES client and control). Prints SESSION_AGENT_SOCK=… when ready, like ssh-agent.
            """)

    @Option(help: "The configuration file (session-agent.toml).") var config: String

    func run() async throws {
        let path = URL(fileURLWithPath: config)
        let data: [UInt8]
        do { data = try RegularFile.read(config, what: "the configuration", limit: 16 << 20).bytes } catch {
            FileHandle.standardError.write(Data("session-agent: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let configuration: AgentConfiguration
        do {
            configuration = try AgentConfiguration(toml: String(decoding: data, as: UTF8.self), relativeTo: path.deletingLastPathComponent().path)
        } catch {
            FileHandle.standardError.write(Data("session-agent: error: \(config): \(error)\n".utf8))
            throw ExitCode.failure
        }
        // To standard error, which journald keeps: standard output carries the socket lines.
        LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
        do {
            try await AgentDaemon.run(configuration, logger: Logger(label: "session-agent")) { client, control in
                // Written unbuffered, so a parent reading the pipe sees it at once.
                FileHandle.standardOutput.write(Data("""
                    SESSION_AGENT_SOCK=\(client); export SESSION_AGENT_SOCK;
                    SESSION_AGENT_CONTROL_SOCK=\(control); export SESSION_AGENT_CONTROL_SOCK;

                    """.utf8))
            }
        } catch {
            FileHandle.standardError.write(Data("session-agent: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
