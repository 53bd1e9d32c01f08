import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import SmartSessions

/// What the agent counts for an operator's Prometheus (`metrics_listen`). No label holds a
/// session id, a request id, an account, a key or a client: the series stay few, and say nothing
/// the journal would not.
public final class AgentMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let signedUse: Counter, signedEnable: Counter, signedUnsafeEnable: Counter
    let storeLocked: Gauge
    let undecided: Gauge

    /// From about an HSM's round trip to a person's PIN or tap.
    static let ownerBuckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500),
                                           .seconds(1), .seconds(5), .seconds(15), .seconds(60)]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func signed(_ mode: String) -> Counter {
            registry.makeCounter(descriptor: Self.name("user_operations_signed", "total", "User operations signed with a session key, by mode"),
                                 labels: [("mode", mode)])
        }
        (signedUse, signedEnable, signedUnsafeEnable) = (signed(SmartSessionMode.use.description), signed(SmartSessionMode.enable.description),
                                                         signed(SmartSessionMode.unsafeEnable.description))
        storeLocked = registry.makeGauge(descriptor: Self.name("store_locked", "", "1 while the session-key store is locked"))
        undecided = registry.makeGauge(descriptor: Self.name("requests_pending", "", "Session requests waiting for a decision"))
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "session_agent", metricName: metric, unitName: unit, helpText: help)
    }

    func signed(_ mode: SmartSessionMode) {
        switch mode {
        case .use: signedUse.increment()
        case .enable: signedEnable.increment()
        case .unsafeEnable: signedUnsafeEnable.increment()
        }
    }

    /// A session key's ERC-1271 signature of typed data, given (`reason` nil) or refused.
    func message(refused reason: String?) {
        registry.makeCounter(descriptor: Self.name("messages_signed", "total", "Typed data signed with a session key for the account's ERC-1271, or refused, by outcome"),
                             labels: [("outcome", reason ?? "signed")]).increment()
    }

    /// `reason`: the refusal's machine-readable reason, one of a fixed few.
    func refused(_ reason: String) {
        registry.makeCounter(descriptor: Self.name("user_operations_refused", "total", "User operations the agent would not sign, by reason"),
                             labels: [("reason", reason)]).increment()
    }

    /// `outcome`: approved, denied, failed or expired; `by`: rules or person.
    func decided(_ outcome: String, by: String) {
        registry.makeCounter(descriptor: Self.name("requests_decided", "total", "Session requests decided, by outcome and by whom"),
                             labels: [("outcome", outcome), ("decided_by", by)]).increment()
    }

    /// One owner's signature (or failure to give one), by backend.
    func ownerSigned(backend: String, ok: Bool, took: Duration) {
        registry.makeCounter(descriptor: Self.name("owner_signatures", "total", "Owner signatures asked for, by backend and result"),
                             labels: [("backend", backend), ("result", ok ? "ok" : "failed")]).increment()
        if ok {
            registry.makeDurationHistogram(descriptor: Self.name("owner_signature_duration", "seconds", "How long an owner took to sign, PIN or tap included"),
                                           labels: [("backend", backend)], buckets: Self.ownerBuckets).record(took)
        }
    }

    /// One chain of one session read (`session_chain_status`): `result` is the worst finding's
    /// severity (info, warning, critical), or `unread`.
    func chainRead(_ result: String) {
        registry.makeCounter(descriptor: Self.name("chain_reads", "total", "Sessions' states read on a chain, by the worst finding or unread"),
                             labels: [("result", result)]).increment()
    }

    func accountOperationSigned(_ operation: String) {
        registry.makeCounter(descriptor: Self.name("account_operations_signed", "total", "The account's own user operations its owners signed"),
                             labels: [("operation", operation)]).increment()
    }
}

/// Serves `GET /metrics` in the Prometheus text format over plain HTTP/1.1, and nothing else.
/// It has no authentication: bind it where only the scraper reaches.
public enum MetricsServer {
    /// Binds `host:port` (an IP literal; port 0 takes a free one) and returns the channel, whose
    /// local address says where it listens.
    public static func bind(host: String, port: Int, registry: PrometheusCollectorRegistry) async throws -> Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(Handler(registry: registry)) }
            }
            .bind(to: try SocketAddress(ipAddress: host, port: port)).get()
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let registry: PrometheusCollectorRegistry
        private var head: HTTPRequestHead?

        init(registry: PrometheusCollectorRegistry) { self.registry = registry }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let request): head = request
            case .body: break
            case .end:
                guard let request = head else { return }
                head = nil
                let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
                let (status, body, type): (HTTPResponseStatus, [UInt8], String) =
                    switch (request.method, path) {
                    case (.GET, "/metrics"): (.ok, registry.emitToBuffer(), "text/plain; version=0.0.4; charset=utf-8")
                    case (_, "/metrics"): (.methodNotAllowed, Array("GET only\n".utf8), "text/plain")
                    default: (.notFound, Array("metrics are at /metrics\n".utf8), "text/plain")
                    }
                var headers = HTTPHeaders([("Content-Type", type), ("Content-Length", String(body.count))])
                if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
                let keepAlive = request.isKeepAlive, channel = context.channel
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in if !keepAlive { channel.close(promise: nil) } }
            }
        }
    }
}
