@testable import Agent
import EthereumCore
import NIOCore
import NIOEmbedded
import Testing

/// The line framing and the JSON-RPC envelope of both sockets, on an in-memory channel whose
/// clock the test moves: the boundaries to the byte and to the nanosecond.
@Suite("Newline framing and JSON-RPC envelopes")
struct FramingTests {
    static let timeout = TimeAmount.seconds(5)

    static func framer(maximumSize: Int = 8) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: LineFramer(maximumSize: maximumSize, partialTimeout: timeout))
        // Registered and active, as an accepted socket is: the framer's deadline runs on reads.
        try channel.connect(to: try SocketAddress(unixDomainSocketPath: "/framing-test")).wait()
        return channel
    }

    /// What the framer handed on, as text: lines as they are, `<oversized>` and `<stalled>`.
    static func frames(_ channel: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let frame = try channel.readInbound(as: Frame.self) {
            switch frame {
            case .line(let line): out.append(String(buffer: line))
            case .oversized: out.append("<oversized>")
            case .stalled: out.append("<stalled>")
            }
        }
        return out
    }

    static func send(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(channel.allocator.buffer(string: text))
    }

    @Test func linesAreCutAtNewlinesWhateverTheReads() throws {
        let channel = try Self.framer()
        try Self.send(channel, "ab\ncd")
        try Self.send(channel, "e\n\n \t\r\nf\r\n")
        // Blank lines (CRLF endings, a person pressing return at socat) are no message; a CR
        // before the newline stays with its line, where JSON reads it as white space.
        #expect(try Self.frames(channel) == ["ab", "cde", "f\r"])
    }

    @Test func theSizeLimitHoldsToTheByte() throws {
        let fits = try Self.framer()
        try Self.send(fits, "12345678\n12345678")
        try Self.send(fits, "\n")
        #expect(try Self.frames(fits) == ["12345678", "12345678"])

        let longLine = try Self.framer()
        try Self.send(longLine, "123456789\nok\n")
        #expect(try Self.frames(longLine) == ["<oversized>"], "and nothing after it: the connection ends")

        // Without its newline yet: 8 bytes may still become a line, 9 may not.
        let pending = try Self.framer()
        try Self.send(pending, "12345678")
        #expect(try Self.frames(pending).isEmpty)
        try Self.send(pending, "9")
        #expect(try Self.frames(pending) == ["<oversized>"])
        try Self.send(pending, "\n")
        #expect(try Self.frames(pending).isEmpty)
    }

    @Test func partOfAMessageMustBeFollowedByTheRestInTime() throws {
        let channel = try Self.framer()
        try Self.send(channel, "{\"id\"")
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: Self.timeout - .nanoseconds(1))
        #expect(try Self.frames(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .nanoseconds(1))
        #expect(try Self.frames(channel) == ["<stalled>"])
        try Self.send(channel, ":1}\n")
        #expect(try Self.frames(channel).isEmpty, "nothing is read after the connection failed")
    }

    @Test func aConnectionIdleBetweenMessagesHasNoDeadline() throws {
        let channel = try Self.framer()
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: Self.timeout * 10)
        try Self.send(channel, "ab")
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2500))
        try Self.send(channel, "c\n")
        channel.read()
        // The deadline of the part ends with its message.
        channel.embeddedEventLoop.advanceTime(by: Self.timeout * 10)
        #expect(try Self.frames(channel) == ["abc"])
    }

    @Test func aLastMessageWithoutItsNewlineIsCompleteWhenTheClientStopsWriting() throws {
        let channel = try Self.framer()
        try Self.send(channel, "one\ntwo")
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(try Self.frames(channel) == ["one", "two"])

        let blank = try Self.framer()
        try Self.send(blank, "one\n \r")
        blank.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(try Self.frames(blank) == ["one"])

        let failed = try Self.framer()
        try Self.send(failed, "123456789")
        failed.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(try Self.frames(failed) == ["<oversized>"])
    }

    @Test func requestsAreReadAsJSONRPCTwoPointZero() throws {
        func parse(_ line: String) -> Result<JSONRPC.Request, JSONRPC.Malformed> { JSONRPC.parse(Array(line.utf8)) }
        guard case .success(let plain) = parse(#"{"jsonrpc":"2.0","id":7,"method":"agent_info"}"#) else { Issue.record("refused"); return }
        #expect(plain.id == JSONValue(7) && plain.method == "agent_info" && plain.params.count == 0)
        for params in [#"{"a":1}"#, #"[{"a":1}]"#] {
            guard case .success(let r) = parse(#"{"jsonrpc":"2.0","id":"x","method":"m","params":\#(params)}"#) else { Issue.record("\(params) refused"); continue }
            #expect(r.params["a"] == JSONValue(1) && r.id == "x")
        }
        guard case .success(let nullParams) = parse(#"{"jsonrpc":"2.0","method":"m","params":null}"#) else { Issue.record("null params refused"); return }
        #expect(nullParams.params.count == 0 && nullParams.id == .null)

        for (line, code, id) in [
            ("{", -32700, JSONValue.null),
            ("[1]", -32600, .null),
            (#"{"id":3,"method":"m"}"#, -32600, JSONValue(3)),
            (#"{"jsonrpc":"1.0","id":3,"method":"m"}"#, -32600, JSONValue(3)),
            (#"{"jsonrpc":"2.0","id":3,"method":1}"#, -32600, JSONValue(3)),
            (#"{"jsonrpc":"2.0","id":3,"method":"m","params":[{"a":1},{"b":2}]}"#, -32602, JSONValue(3)),
            (#"{"jsonrpc":"2.0","id":3,"method":"m","params":[1]}"#, -32602, JSONValue(3)),
            (#"{"jsonrpc":"2.0","id":3,"method":"m","params":"a"}"#, -32602, JSONValue(3)),
        ] as [(String, Int, JSONValue)] {
            guard case .failure(let malformed) = parse(line) else { Issue.record("\(line) accepted"); continue }
            #expect(malformed.error.code == code && malformed.id == id && malformed.error.reason == "bad_request", "\(line): \(malformed.error)")
        }
    }

    @Test func answersCarryTheirIdAndAReasonAProgramCanTest() throws {
        let error = try JSONValue(parsing: JSONRPC.error(JSONValue(9), AgentError("expired", "session s ended")))
        #expect(error == .object(JSONObject(["jsonrpc": "2.0", "id": JSONValue(9),
                                             "error": .object(JSONObject(["code": JSONValue(-32000), "message": "session s ended", "data": .object(JSONObject(["reason": "expired"]))]))])))
        #expect(try JSONValue(parsing: JSONRPC.result("a", true)) == .object(JSONObject(["jsonrpc": "2.0", "id": "a", "result": true])))
    }
}
