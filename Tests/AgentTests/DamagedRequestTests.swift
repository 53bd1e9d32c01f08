import Agent
import EthereumCore
import Foundation
import SmartSessions
import Testing
import TestSupport

/// Random damage to every kind of request a client sends, over the real socket of a running
/// agent: each message gets one well-formed JSON-RPC answer (a result, or an error with a code,
/// a message and, for the agent's own errors, a reason), the connection keeps working, and the
/// agent serves others afterwards. A failure names the seed (`ORACLE_SEED` replays it).
@Suite("Damaged requests over the client socket")
struct DamagedRequestTests {
    /// Values a damaged field takes: each JSON type, numbers beyond every integer width and at
    /// the edges of 32 and 64 bits, hex of odd or huge length, deep nesting, a duration and a
    /// type whose sizes overflow.
    static let replacements: [JSONValue] = [
        .null, .bool(true), .number("-1"), .number("0"), .number("1e308"), .number("115792089237316195423570985008687907853269984665640564039457584007913129639936"),
        .number("-0.5"), .string(""), .string("0x"), .string("0x0"), .string("0x" + String(repeating: "ab", count: 5000)), .string("USDC"),
        .string("999999999999999999999999999999 USDC"), .string("1e-30"), .string(String(repeating: "é", count: 3000)), .array([]), .object(JSONObject()),
        .array(Array(repeating: .number("1"), count: 2000)), (0..<100).reduce(JSONValue.number("1")) { inner, _ in .array([inner]) },
        .number("4294967296"), .number("9223372036854775808"), .number("18446744073709551615"), .string("18446744073709551616"),
        .string("9999999999999999999w"), .string("transfer(uint256[1048576][1048576][1048576] to, uint256 amount)"),
    ]

    /// Every value in `value`, by path.
    static func paths(_ value: JSONValue, _ prefix: [String] = []) -> [[String]] {
        switch value {
        case .object(let o): [prefix] + o.flatMap { paths($0.value, prefix + [$0.key]) }
        case .array(let a): [prefix] + a.indices.flatMap { paths(a[$0], prefix + ["\($0)"]) }
        default: [prefix]
        }
    }

    static func replacing(_ path: ArraySlice<String>, in value: JSONValue, with new: JSONValue?) -> JSONValue? {
        guard let key = path.first else { return new }
        switch value {
        case .object(var o):
            o[key] = o[key].flatMap { replacing(path.dropFirst(), in: $0, with: new) }
            return .object(o)
        case .array(var a):
            let i = Int(key)!
            if let replaced = replacing(path.dropFirst(), in: a[i], with: new) { a[i] = replaced } else { a.remove(at: i) }
            return .array(a)
        default:
            return value
        }
    }

    static func damage(_ message: JSONValue, _ random: inout SplitMix64) -> [UInt8] {
        if Bool.random(using: &random) {
            // A value replaced or removed, the document still JSON.
            let path = paths(message).dropFirst().randomElement(using: &random) ?? []
            let new = Int.random(in: 0..<8, using: &random) == 0 ? nil : replacements.randomElement(using: &random)!
            return Array((replacing(path[...], in: message, with: new) ?? .null).serialized.utf8)
        }
        // Bytes inserted, dropped or changed (never a newline, which ends a message).
        var text = Array(message.serialized.utf8)
        for _ in 0..<Int.random(in: 1...4, using: &random) where !text.isEmpty {
            let at = Int.random(in: 0..<text.count, using: &random)
            let byte = Array("\"{}[],:0x9-e\\ é\u{0}".utf8).randomElement(using: &random)!
            switch Int.random(in: 0..<3, using: &random) {
            case 0: text.insert(byte, at: at)
            case 1: text.remove(at: at)
            default: text[at] = byte
            }
        }
        return text
    }

    static func isAnswer(_ answer: JSONValue) -> Bool {
        guard answer["jsonrpc"] == "2.0", answer["id"] != nil else { return false }
        if answer["result"] != nil { return answer["error"] == nil }
        guard let error = answer["error"], case .number = error["code"], error["message"]?.stringValue?.isEmpty == false else { return false }
        return error["data"] == nil || error["data"]?["reason"]?.stringValue != nil
    }

    @Test(.timeLimit(.minutes(3)))
    func everyDamagedRequestIsAnsweredAndTheAgentServesOn() throws {
        let agent = try AgentProcess()
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        let session = try SocketTests.requestSession(client)
        // Damaged requests the rules would approve cost an owner signature each (most of a
        // second with the test keystore's scrypt); denied, they are compiled and reviewed alike.
        try "default = \"deny\"\n".write(to: agent.directory.appendingPathComponent("rules.toml"), atomically: true, encoding: .utf8)
        #expect(try AgentClient(path: agent.controlSocket).call("rules_reload")["reloaded"] == .bool(true))
        func message(_ method: String, _ params: JSONObject) -> JSONValue {
            .object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(7), "method": .string(method), "params": .object(params)]))
        }
        let sign = JSONObject([
            "sessionId": .string(session), "chainId": JSONValue(11155111), "entryPoint": .string(EntryPointVersion.v07.canonicalAddress.checksummed),
            "userOperation": SocketTests.transferOp(1, nonce: 0),
        ])
        // Argument rules and tuple signatures, on the test account's chain and its USDC, so
        // that the damage reaches past the chain and token checks into compiling them.
        guard case .object(var rules) = try Fixtures.json("requests/uniswap-rules.json"), case .array(var permissions)? = rules["permissions"],
              case .object(var approve) = permissions[0] else { throw Oracle.Failure(description: "uniswap-rules.json changed shape") }
        approve["target"] = .string(SocketTests.usdc.checksummed)
        permissions[0] = .object(approve)
        rules["permissions"] = .array(permissions)
        rules["chains"] = .array([JSONValue(11155111)])
        rules["nonces"] = nil
        let originals = [
            message("session_request", JSONObject(["request": SocketTests.example])),
            message("session_request", JSONObject(["request": try Fixtures.json("requests/erc7715-grant.json")])),
            message("session_request", JSONObject(["request": .object(rules)])),
            message("session_signUserOperation", sign),
            message("session_list", JSONObject()),
            message("session_get", JSONObject(["sessionId": .string(session)])),
            message("agent_info", JSONObject()),
        ]
        var random = SplitMix64(seed: Oracle.seed)
        let fuzzer = try AgentClient(path: agent.clientSocket)
        for round in 0..<3000 {
            let text = Self.damage(originals.randomElement(using: &random)!, &random)
            // A message that parses as a notification (no id) gets no answer; the sentinel after
            // it does, so every answer before the sentinel's belongs to the damaged message.
            try fuzzer.sendRaw(text + Array("\n{\"jsonrpc\":\"2.0\",\"id\":\"sentinel-\(round)\",\"method\":\"agent_info\"}\n".utf8))
            var answers = 0
            while true {
                guard let answer = try fuzzer.readLine() else {
                    Issue.record("the agent closed the connection after \(String(decoding: text, as: UTF8.self).prefix(300)) (seed \(Oracle.seed))")
                    return
                }
                if answer["id"] == .string("sentinel-\(round)") {
                    #expect(answer["result"]?["version"] == "0.1.0", "\(answer.serialized.prefix(300))")
                    break
                }
                answers += 1
                #expect(Self.isAnswer(answer), "\(String(decoding: text, as: UTF8.self).prefix(300)) → \(answer.serialized.prefix(300)) (seed \(Oracle.seed))")
            }
            #expect(answers <= 1, "\(answers) answers to \(String(decoding: text, as: UTF8.self).prefix(300)) (seed \(Oracle.seed))")
        }
        #expect(try client.call("agent_info")["version"] == "0.1.0")
        #expect(try client.call("session_list").arrayValue?.contains { $0["sessionId"]?.stringValue == session } == true)
    }

    /// A parameter type whose size overflowed crashed the agent, from one request of any client.
    @Test func aTypeLargerThanAnyCalldataIsRefusedAndTheAgentServesOn() throws {
        let agent = try AgentProcess()
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        let request = JSONValue.object(JSONObject([
            "account": .string(AgentProcess.account), "chains": .array([JSONValue(11155111)]),
            "permissions": .array([.object(JSONObject([
                "target": .string(SocketTests.usdc.checksummed), "functions": .array(["f(uint256[1048576][1048576][1048576] a, uint256 b)"]), "rules": .array(["b <= 5"]),
            ]))]),
        ]))
        do {
            _ = try client.call("session_request", JSONObject(["request": request]))
            Issue.record("the request was taken")
        } catch let e as AgentClient.RemoteError {
            #expect(e.reason == "bad_request" && e.message.contains("would take more than 4 GiB of calldata"), "\(e)")
        }
        #expect(try client.call("agent_info")["version"] == "0.1.0")
    }
}
