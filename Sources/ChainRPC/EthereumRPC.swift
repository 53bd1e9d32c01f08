import AsyncHTTPClient
import EthereumCore
import Foundation
import NIOCore
import NIOHTTP1
import SmartSessions
import Synchronization

/// Why a chain could not be read: `chain_unreachable` (no connection, a timeout, an HTTP
/// error), `chain_error` (the node answered with a JSON-RPC error), `chain_answer_malformed`
/// (an answer that is not what was asked for), `wrong_chain` (the endpoint serves another
/// chain), `reverted` (the call reverted).
public struct ChainRPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var message: String

    public init(_ reason: String, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { message }

    /// An answer that does not decode as the call's outputs, said as coming from `endpoint`.
    public init(_ error: SmartSessionError, from endpoint: ChainEndpoint) {
        self.init(error.reason, "\(endpoint): \(error.message)")
    }
}

/// An Ethereum JSON-RPC endpoint, `http://` or `https://`. Providers put their API key in the
/// path or query (`https://mainnet.infura.io/v3/KEY`), so the endpoint is only ever shown as
/// its scheme, host and port.
public struct ChainEndpoint: Sendable, Hashable, CustomStringConvertible {
    public let url: String
    public let description: String

    public init(_ url: String) throws(ChainRPCError) {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = parsed.host, !host.isEmpty else {
            throw ChainRPCError("bad_endpoint", "an http:// or https:// URL with a host")
        }
        guard parsed.user == nil, parsed.password == nil else {
            throw ChainRPCError("bad_endpoint", "\(scheme)://\(host): a user or password in the URL is not supported; providers' keys go in the path")
        }
        self.url = url
        description = "\(scheme)://\(host)" + (parsed.port.map { ":\($0)" } ?? "")
    }
}

/// One JSON-RPC method call: sent alone, or with others in a batch.
public struct RPCRequest: Sendable, Equatable {
    public let method: String
    public let params: [JSONValue]

    public static let chainId = RPCRequest(method: "eth_chainId", params: [])
    public static let blockNumber = RPCRequest(method: "eth_blockNumber", params: [])

    public static func code(at address: Address, block: UInt64) -> RPCRequest {
        RPCRequest(method: "eth_getCode", params: [.string(address.lowercased), .string(UInt256(block).hexQuantity)])
    }

    /// `eth_call` at `block`, or at the latest.
    public static func call(to: Address, data: [UInt8], block: UInt64?) -> RPCRequest {
        let call: JSONValue = .object(JSONObject(["to": .string(to.lowercased), "data": .string(Hex.encode(data))]))
        return RPCRequest(method: "eth_call", params: [call, .string(block.map { UInt256($0).hexQuantity } ?? "latest")])
    }

    public static func call(_ view: ViewCall, block: UInt64?) -> RPCRequest { call(to: view.to, data: view.data, block: block) }

    func body(id: Int) -> JSONValue {
        .object(JSONObject(["jsonrpc": .string("2.0"), "id": JSONValue(id), "method": .string(method), "params": .array(params)]))
    }
}

/// The few JSON-RPC methods the agent reads a chain with, over one HTTP client. Answers are
/// untrusted: each is checked for its shape and bounded in size.
public struct EthereumRPC: Sendable {
    public let endpoint: ChainEndpoint
    /// Held so that its HTTP client outlives every read made through this.
    let endpoints: ChainEndpoints
    let batches: BatchSupport
    let timeout: TimeAmount

    /// An answer larger than this is refused (the reads here answer a few hundred bytes).
    static let answerLimit = 1 << 20
    /// The most calls in one batch. Kept small, since some public endpoints refuse a large batch
    /// whole; a session's reads fit in one.
    static let batchLimit = 10

    init(_ endpoint: ChainEndpoint, of endpoints: ChainEndpoints, batches: BatchSupport, timeout: TimeAmount = .seconds(15)) {
        self.endpoint = endpoint
        self.endpoints = endpoints
        self.batches = batches
        self.timeout = timeout
    }

    /// One HTTP client for a process: no redirects (a POST is not followed elsewhere), and a
    /// bounded wait to connect. A refused connection is said at once rather than tried again
    /// until the connect timeout: the reads are an operator's check, run again by its timer.
    static func makeClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(15)))
        configuration.httpVersion = .http1Only
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Refuses an endpoint whose answer to `eth_chainId` is another chain than `chainId`.
    public func requireChain(_ chainId: UInt64, answer: Result<JSONValue, ChainRPCError>) throws(ChainRPCError) {
        let served = try Self.quantity(try answer.get(), of: "eth_chainId")
        guard served == chainId else { throw ChainRPCError("wrong_chain", "\(endpoint) serves chain \(served), configured for chain \(chainId)") }
    }

    /// What a view call answered, from its outcome; a revert names the function and the contract.
    public static func answer(_ outcome: Result<JSONValue, ChainRPCError>, to view: ViewCall, block: UInt64?) throws(ChainRPCError) -> [UInt8] {
        do { return try data(try outcome.get(), of: "eth_call") } catch {
            guard error.reason == "reverted" else { throw error }
            throw ChainRPCError("reverted", "\(view.function.name) on \(view.to.checksummed) reverted at block \(block.map(String.init) ?? "latest")")
        }
    }

    /// Each request's outcome, in order. Several go in one HTTP request (a JSON-RPC batch), so
    /// that reading a session costs two round trips rather than one a call; an endpoint that
    /// refuses a batch is asked one call at a time from then on. A failed exchange (no
    /// connection, an HTTP error, an answer that is not JSON-RPC) throws; a node's error for
    /// one call (a revert, a refusal) is that call's outcome.
    public func batch(_ requests: [RPCRequest]) async throws(ChainRPCError) -> [Result<JSONValue, ChainRPCError>] {
        var outcomes: [Result<JSONValue, ChainRPCError>] = []
        var start = 0
        while start < requests.count {
            let part = Array(requests[start..<min(start + Self.batchLimit, requests.count)])
            if part.count > 1, batches.taken, let answered = try await sendBatch(part) {
                outcomes += answered
            } else {
                for request in part { outcomes.append(try await send(request)) }
                if part.count > 1, batches.taken { batches.refused() }
            }
            start += part.count
        }
        return outcomes
    }

    /// The outcomes of `requests` sent as one batch, or nil when the endpoint refused it as a
    /// batch: with one response (as an endpoint without batches answers), or HTTP 400 or 413.
    private func sendBatch(_ requests: [RPCRequest]) async throws(ChainRPCError) -> [Result<JSONValue, ChainRPCError>]? {
        let what = "a batch of \(requests.count) calls"
        let (status, body) = try await post(.array(requests.enumerated().map { $1.body(id: $0 + 1) }), for: what)
        if status == .badRequest || status == .payloadTooLarge { return nil }
        guard status == .ok else { throw ChainRPCError("chain_unreachable", "\(endpoint) answered HTTP \(status.code) to \(what)") }
        return try Self.outcomes(of: body, to: requests, from: endpoint)
    }

    private func send(_ request: RPCRequest) async throws(ChainRPCError) -> Result<JSONValue, ChainRPCError> {
        let (status, body) = try await post(request.body(id: 1), for: request.method)
        guard status == .ok else { throw ChainRPCError("chain_unreachable", "\(endpoint) answered HTTP \(status.code) to \(request.method)") }
        return try Self.outcome(of: body, to: request.method, from: endpoint)
    }

    private func post(_ json: JSONValue, for what: String) async throws(ChainRPCError) -> (status: HTTPResponseStatus, body: [UInt8]) {
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: json.serialized))
        do {
            let response = try await endpoints.client.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: Self.answerLimit)
            return (response.status, Array(bytes.readableBytesView))
        } catch is NIOTooManyBytesError {
            throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(what) with more than \(Self.answerLimit) bytes")
        } catch {
            throw ChainRPCError("chain_unreachable", "\(endpoint) could not be reached for \(what): \(describe(error))")
        }
    }

    /// The `result` of a JSON-RPC answer to a request with id 1, or the error it carries.
    public static func result(of body: [UInt8], to method: String, from endpoint: ChainEndpoint) throws(ChainRPCError) -> JSONValue {
        try outcome(of: body, to: method, from: endpoint).get()
    }

    /// The outcome of a request with id 1, from its answer: the result, or the node's error.
    static func outcome(of body: [UInt8], to method: String, from endpoint: ChainEndpoint) throws(ChainRPCError) -> Result<JSONValue, ChainRPCError> {
        guard let answer = (try? JSONValue(parsing: body))?.objectValue else {
            throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(method) with something that is not a JSON-RPC response")
        }
        guard answer["id"]?.integerValue == 1 else {
            throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(method) with another request's id")
        }
        return try outcome(of: answer, to: method, from: endpoint)
    }

    /// The outcomes of a batch's requests, from the endpoint's answer: one response per request,
    /// in any order, told apart by their ids (1…n). Nil when the answer is a single response,
    /// as from an endpoint that does not take batches.
    public static func outcomes(of body: [UInt8], to requests: [RPCRequest], from endpoint: ChainEndpoint) throws(ChainRPCError) -> [Result<JSONValue, ChainRPCError>]? {
        let what = "a batch of \(requests.count) calls"
        guard let answer = try? JSONValue(parsing: body) else {
            throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(what) with something that is not JSON")
        }
        if answer.objectValue != nil { return nil }
        guard let responses = answer.arrayValue, responses.count == requests.count else {
            throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(what) with \(answer.arrayValue.map { "\($0.count) responses" } ?? "something else")")
        }
        var outcomes = [Result<JSONValue, ChainRPCError>?](repeating: nil, count: requests.count)
        for response in responses {
            guard let object = response.objectValue, let id = object["id"]?.integerValue, id >= 1, id <= requests.count, outcomes[Int(id) - 1] == nil else {
                throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(what) with a response to no request of it, or two to one")
            }
            outcomes[Int(id) - 1] = try outcome(of: object, to: requests[Int(id) - 1].method, from: endpoint)
        }
        // As many responses as requests, each to another of them: every one is answered.
        return outcomes.map { $0! }
    }

    /// One response's outcome: its result, or the error the node gave (a revert told apart).
    static func outcome(of answer: JSONObject, to method: String, from endpoint: ChainEndpoint) throws(ChainRPCError) -> Result<JSONValue, ChainRPCError> {
        guard answer["jsonrpc"]?.stringValue == "2.0" else {
            throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(method) without jsonrpc 2.0")
        }
        if let error = answer["error"] {
            let code = error.objectValue?["code"]?.integerValue
            let message = Self.printable(error.objectValue?["message"]?.stringValue ?? "")
            if code == 3 || message.lowercased().contains("revert") {
                return .failure(ChainRPCError("reverted", "\(method) reverted" + (message.isEmpty ? "" : ": \(message)")))
            }
            return .failure(ChainRPCError("chain_error", "\(endpoint) refused \(method): \(code.map { "\($0) " } ?? "")\(message)"))
        }
        guard let result = answer["result"] else { throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(method) without a result") }
        return .success(result)
    }

    public static func quantity(_ value: JSONValue, of method: String) throws(ChainRPCError) -> UInt64 {
        // Swift's integer parser takes a sign too ("0x+1"); a quantity is hex digits only.
        guard let text = value.stringValue, text.hasPrefix("0x"), text.count > 2, text.count <= 18, text.dropFirst(2).allSatisfy(\.isHexDigit),
              let n = UInt64(text.dropFirst(2), radix: 16) else {
            throw ChainRPCError("chain_answer_malformed", "\(method) answered \(printable(value.serialized)), not a hex quantity")
        }
        return n
    }

    public static func data(_ value: JSONValue, of method: String) throws(ChainRPCError) -> [UInt8] {
        guard let text = value.stringValue, text.hasPrefix("0x"), let bytes = try? Hex.decode(text) else {
            throw ChainRPCError("chain_answer_malformed", "\(method) answered \(printable(value.serialized)), not hex data")
        }
        return bytes
    }

    /// A node's text, shown in an error: printable characters only, and not much of it.
    static func printable(_ text: String) -> String {
        let kept = String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7f }))
        return kept.count > 160 ? String(kept.prefix(160)) + "…" : kept
    }

    /// An HTTP or connection error in words, without the URL's path or query, where a
    /// provider's key is.
    func describe(_ error: any Error) -> String {
        let text: String
        switch error {
        case let e as HTTPClientError where e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout: text = "it did not answer in time"
        case let e as HTTPClientError where e == .remoteConnectionClosed: text = "it closed the connection"
        case let e as IOError where e.errnoCode == ECONNREFUSED: text = "it refused the connection"
        default: text = String(describing: error)
        }
        var scrubbed = text.replacingOccurrences(of: endpoint.url, with: endpoint.description)
        if let url = URL(string: endpoint.url) {
            for part in [url.path, url.query ?? ""] where part.count > 1 { scrubbed = scrubbed.replacingOccurrences(of: part, with: "…") }
        }
        return Self.printable(scrubbed)
    }
}

/// Whether an endpoint takes JSON-RPC batches: assumed until it refuses one.
final class BatchSupport: Sendable {
    private let refusedOne = Atomic<Bool>(false)
    var taken: Bool { !refusedOne.load(ordering: .relaxed) }
    func refused() { refusedOne.store(true, ordering: .relaxed) }
}

/// The endpoints the configuration names, one per chain, over one HTTP client that lives as
/// long as they do.
public final class ChainEndpoints: Sendable {
    public let endpoints: [UInt64: ChainEndpoint]
    let client: HTTPClient
    let batches: [UInt64: BatchSupport]

    public init(_ endpoints: [UInt64: ChainEndpoint]) {
        self.endpoints = endpoints
        client = EthereumRPC.makeClient()
        batches = endpoints.mapValues { _ in BatchSupport() }
    }

    // AsyncHTTPClient traps, in debug builds, on a client that goes without a shutdown; this
    // one does not wait, so it may run on any thread.
    deinit { client.shutdown { _ in } }

    public func rpc(for chainId: UInt64) -> EthereumRPC? {
        guard let endpoint = endpoints[chainId], let batches = batches[chainId] else { return nil }
        return EthereumRPC(endpoint, of: self, batches: batches)
    }
}
