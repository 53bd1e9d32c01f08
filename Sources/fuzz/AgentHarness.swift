import Agent
import Approval
import Dispatch
import EthereumCore
import Foundation
import OwnerSigners
import SessionStore
import SmartSessions

/// The agent's socket methods in process: each input is a conversation, one JSON-RPC request a
/// line, given to a fresh agent (a store in /dev/shm, a keystore owner, the rules harness's
/// rules, which approve the example and leave larger requests to a person). A line that starts
/// with `!` comes to the control socket. `$S`, `$R` and `$H` stand for the session and request
/// ids and the account operation's userOpHash the agent last answered with, which the fuzzer
/// could not guess (`session_wait`, which waits in real time, is left out). Answers may be
/// errors; a trap is a finding.
enum AgentHarness {
    static let owner = try! Secp256k1.PrivateKey(hex: "0x" + String(repeating: "22", count: 32))
    static let account = try! Address("0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6")
    static let client = ClientIdentity(uid: 1000, gid: 1000, pid: 4242, executable: "/usr/bin/bot")
    static let operator_ = ClientIdentity(uid: getuid(), gid: getgid(), pid: 4243, executable: "/usr/bin/session-agent")
    static let keystore = try! Keystore.encrypt(owner, passphrase: SecretBytes(utf8: "owner"), kdf: .scrypt(n: 16, r: 8, p: 1))
    static let directory: String = {
        let path = (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()) + "/session-agent-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    static func run(_ bytes: [UInt8]) {
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: true).prefix(16).map { Array($0) }
        guard !lines.isEmpty else { return }
        let path = directory + "/store.sqlite"
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        let done = DispatchSemaphore(value: 0)
        Task {
            defer { done.signal() }
            guard let store = try? SessionStore(path: path), (try? store.initialize(passphrase: SecretBytes(utf8: "store"), scryptN: 1024)) != nil,
                  let keystoreOwner = try? KeystoreOwner(keystore: keystore, location: "fuzz") else { return }
            let agent = Agent(store: store, owners: [keystoreOwner],
                              accounts: [AccountConfig(address: account, kind: .erc7579Reference, owners: [owner.address], chains: [11155111])],
                              rules: Harnesses.rules, ownerPrompt: { _ in SecretBytes(utf8: "owner") }, clock: { 1_764_096_000 })
            // As the daemon starts one: its log begins with the rules it put in force.
            await agent.putInForce(Harnesses.rules, from: RulesSource(path: "/etc/session-agent/rules.toml", bytes: Array("fuzz".utf8)), because: "start")
            let rpc = AgentRPC(agent: agent)
            var session = "", request = "", userOpHash = ""
            for var line in lines {
                let control = line.first == UInt8(ascii: "!")
                if control { line.removeFirst() }
                let text = String(decoding: line, as: UTF8.self).replacingOccurrences(of: "$S", with: session).replacingOccurrences(of: "$R", with: request)
                    .replacingOccurrences(of: "$H", with: userOpHash)
                // It waits in real time, for as long as it is asked to.
                if text.contains("session_wait") { continue }
                let answer = await rpc.respond(to: Array(text.utf8), client: control ? operator_ : client, control: control)
                if let result = (try? JSONValue(parsing: answer))?["result"] {
                    if let id = result["sessionId"]?.stringValue { session = id }
                    if let id = result["id"]?.stringValue, id.hasPrefix("req-") { request = id }
                    if let hash = result["userOpHash"]?.stringValue { userOpHash = hash }
                }
            }
            agent.drain()
        }
        done.wait()
    }
}
