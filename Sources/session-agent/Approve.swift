import Agent
import ArgumentParser
import EthereumCore
import Foundation

struct Approve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Review and decide pending session requests (on the control socket).",
        discussion: """
            Shows each pending request in full, as the review renders it (through $PAGER, else less, when it \
            is longer than the terminal, as git does), and asks yes or no once it is read (an empty \
            answer is no; any other answer is asked again). A request with a critical risk flag needs the \
            word `approve` typed in full. The owner's passphrase, or \
            the PIN of the owner's token, is asked here when the agent does not have it; when it was wrong, or \
            the token was not plugged in, the request stays pending and you are asked whether to try again. \
            The end of the input (no terminal, or a script out of answers) decides nothing: the request \
            stays pending and the command exits with status 1.
            """)

    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @Flag(help: "Decide what is pending now and exit, instead of waiting for more.") var once = false

    func run() throws {
        let client: AgentClient
        do { client = try connectControl(socket) } catch {
            FileHandle.standardError.write(Data("session-agent: error: \((error as? CommandFailure)?.message ?? "\(error)")\n".utf8))
            throw ExitCode.failure
        }
        var seen = Set<String>()
        while true {
            let pending = (try client.call("pending_list").arrayValue ?? []).filter { !seen.contains($0["id"]?.stringValue ?? "") }
            if pending.isEmpty {
                if once { print("no pending requests"); return }
                Thread.sleep(forTimeInterval: 1)
                continue
            }
            for request in pending {
                let id = request["id"]?.stringValue ?? ""
                seen.insert(id)
                Terminal.show("\nRequest \(id) from \(request["client"]?.stringValue ?? "?")\n\n" + (request["reviewText"]?.stringValue ?? ""))
                let critical = request["highestSeverity"] == "critical"
                // The end of the input is nobody's answer: run without a terminal (stdin closed,
                // from a script with fewer answers than requests), it must not deny what is pending.
                let answer = critical ? Terminal.ask("\nThis request has CRITICAL risks. Type `approve` to approve, anything else denies: ").map { $0.lowercased() == "approve" }
                                      : Terminal.yesOrNo("\nApprove? [y/N] ")
                guard let approved = answer else {
                    FileHandle.standardError.write(Data("\nsession-agent: no answer (end of input): \(id) left pending\n".utf8))
                    throw ExitCode.failure
                }
                var params = JSONObject(["id": .string(id), "approve": .bool(approved), "approver": .string("terminal (uid \(getuid()))")])
                while true {
                    let needed = approved ? try? client.call("pending_secret", JSONObject(["id": .string(id)])) : nil
                    let secrets = Terminal.ownerSecrets(needed)
                    params["secrets"] = secrets.count > 0 ? .object(secrets) : nil
                    do {
                        let decided = try client.call("pending_decide", params)
                        print("\(id): \(decided["status"]?.stringValue ?? "?") (\(decided["reason"]?.stringValue ?? ""))")
                        break
                    } catch {
                        print("\(id): \(error)")
                    }
                    // The agent keeps a request pending when what stopped the approval can be
                    // mended here: a mistyped PIN, a token to plug in, a store to unlock.
                    guard approved, (try? client.call("pending_get", JSONObject(["id": .string(id)])))?["status"] == "pending" else { break }
                    guard Terminal.yesOrNo("Try again? [y/N] ") == true else {
                        print("\(id): left pending (run `session-agent approve` again to decide it)")
                        break
                    }
                }
            }
        }
    }
}
