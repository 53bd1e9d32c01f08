import AsyncHTTPClient
import EthereumCore
import Foundation
import NIOCore
import NIOHTTP1
import SmartSessions

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

/// The few JSON-RPC methods the agent reads a chain with, over one HTTP client. Answers are
/// untrusted: each is checked for its shape and bounded in size.
public struct EthereumRPC: Sendable {
    public let endpoint: ChainEndpoint
    let client: HTTPClient
    let timeout: TimeAmount

    /// An answer larger than this is refused (the reads here answer a few hundred bytes).
    static let answerLimit = 1 << 20

    public init(_ endpoint: ChainEndpoint, client: HTTPClient, timeout: TimeAmount = .seconds(15)) {
        self.endpoint = endpoint
        self.client = client
        self.timeout = timeout
    }

    /// One HTTP client for a process: no redirects (a POST is not followed elsewhere), and a
    /// bounded wait to connect.
    static func makeClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(15)))
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func chainId() async throws(ChainRPCError) -> UInt64 {
        try Self.quantity(try await request("eth_chainId", []), of: "eth_chainId")
    }

    /// Refuses an endpoint that serves another chain than the one it is configured for.
    public func requireChain(_ chainId: UInt64) async throws(ChainRPCError) {
        let served = try await self.chainId()
        guard served == chainId else { throw ChainRPCError("wrong_chain", "\(endpoint) serves chain \(served), configured for chain \(chainId)") }
    }

    public func blockNumber() async throws(ChainRPCError) -> UInt64 {
        try Self.quantity(try await request("eth_blockNumber", []), of: "eth_blockNumber")
    }

    public func code(at address: Address, block: UInt64) async throws(ChainRPCError) -> [UInt8] {
        try Self.data(try await request("eth_getCode", [.string(address.lowercased), .string(UInt256(block).hexQuantity)]), of: "eth_getCode")
    }

    /// `eth_call` at `block`, or at the latest; a revert is `reverted`.
    public func call(to: Address, data: [UInt8], block: UInt64?) async throws(ChainRPCError) -> [UInt8] {
        let call: JSONValue = .object(JSONObject(["to": .string(to.lowercased), "data": .string(Hex.encode(data))]))
        return try Self.data(try await request("eth_call", [call, .string(block.map { UInt256($0).hexQuantity } ?? "latest")]), of: "eth_call")
    }

    /// A view call at `block`, or at the latest; a revert names the function and the contract.
    public func call(_ view: ViewCall, block: UInt64?) async throws(ChainRPCError) -> [UInt8] {
        do { return try await call(to: view.to, data: view.data, block: block) } catch {
            guard error.reason == "reverted" else { throw error }
            throw ChainRPCError("reverted", "\(view.function.name) on \(view.to.checksummed) reverted at block \(block.map(String.init) ?? "latest")")
        }
    }

    func request(_ method: String, _ params: [JSONValue]) async throws(ChainRPCError) -> JSONValue {
        let body = JSONValue.object(JSONObject(["jsonrpc": .string("2.0"), "id": .number("1"), "method": .string(method), "params": .array(params)]))
        var request = HTTPClientRequest(url: endpoint.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body.serialized))
        let bytes: ByteBuffer
        do {
            let response = try await client.execute(request, timeout: timeout)
            guard response.status == .ok else {
                throw ChainRPCError("chain_unreachable", "\(endpoint) answered HTTP \(response.status.code) to \(method)")
            }
            bytes = try await response.body.collect(upTo: Self.answerLimit)
        } catch let error as ChainRPCError {
            throw error
        } catch is NIOTooManyBytesError {
            throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(method) with more than \(Self.answerLimit) bytes")
        } catch {
            throw ChainRPCError("chain_unreachable", "\(endpoint) could not be reached for \(method): \(describe(error))")
        }
        return try Self.result(of: Array(bytes.readableBytesView), to: method, from: endpoint)
    }

    /// The `result` of a JSON-RPC answer to a request with id 1, or the error it carries.
    public static func result(of body: [UInt8], to method: String, from endpoint: ChainEndpoint) throws(ChainRPCError) -> JSONValue {
        guard let answer = (try? JSONValue(parsing: body))?.objectValue else {
            throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(method) with something that is not a JSON-RPC response")
        }
        guard answer["jsonrpc"]?.stringValue == "2.0", answer["id"]?.integerValue == 1 else {
            throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(method) with another request's id or without jsonrpc 2.0")
        }
        if let error = answer["error"] {
            let code = error.objectValue?["code"]?.integerValue
            let message = Self.printable(error.objectValue?["message"]?.stringValue ?? "")
            if code == 3 || message.lowercased().contains("revert") {
                throw ChainRPCError("reverted", "\(method) reverted" + (message.isEmpty ? "" : ": \(message)"))
            }
            throw ChainRPCError("chain_error", "\(endpoint) refused \(method): \(code.map { "\($0) " } ?? "")\(message)")
        }
        guard let result = answer["result"] else { throw ChainRPCError("chain_answer_malformed", "\(endpoint) answered \(method) without a result") }
        return result
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
        default: text = String(describing: error)
        }
        var scrubbed = text.replacingOccurrences(of: endpoint.url, with: endpoint.description)
        if let url = URL(string: endpoint.url) {
            for part in [url.path, url.query ?? ""] where part.count > 1 { scrubbed = scrubbed.replacingOccurrences(of: part, with: "…") }
        }
        return Self.printable(scrubbed)
    }
}

/// The endpoints the configuration names, one per chain, over one HTTP client that lives as
/// long as they do.
public final class ChainEndpoints: Sendable {
    public let endpoints: [UInt64: ChainEndpoint]
    let client: HTTPClient

    public init(_ endpoints: [UInt64: ChainEndpoint]) {
        self.endpoints = endpoints
        client = EthereumRPC.makeClient()
    }

    // AsyncHTTPClient traps, in debug builds, on a client that goes without a shutdown; this
    // one does not wait, so it may run on any thread.
    deinit { client.shutdown { _ in } }

    public func rpc(for chainId: UInt64) -> EthereumRPC? { endpoints[chainId].map { EthereumRPC($0, client: client) } }
}
