import Approval
import EthereumCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The client and control sockets: JSON-RPC over Unix sockets, peer credentials checked on
/// every connection, one bad client never stalling the others.
public struct SocketServer: Sendable {
    /// Where a socket comes from: a path to bind, or a descriptor systemd passed.
    public enum Source: Sendable {
        case path(String)
        case descriptor(Int32)
    }

    public struct Listener: Sendable {
        public var source: Source
        public var control: Bool
        public init(source: Source, control: Bool) {
            self.source = source
            self.control = control
        }
    }

    public let rpc: AgentRPC
    /// uids besides the agent's own that may connect to the client socket (server mode).
    public let allowedUIDs: Set<UInt32>
    /// Groups whose members may too: the peer's gid as SO_PEERCRED reports it (the process's
    /// effective group; supplementary groups are not consulted).
    public let allowedGIDs: Set<UInt32>
    public let partialMessageTimeout: TimeAmount
    let connections: ConnectionCounts
    /// The socket files `run` made: the agent removes them as it stops, as ssh-agent does, and
    /// notices when someone else does.
    private let made = MadeFiles()

    public init(rpc: AgentRPC, allowedUIDs: Set<UInt32> = [], allowedGIDs: Set<UInt32> = [], partialMessageTimeout: TimeAmount = .seconds(30),
                connectionsPerUID: Int = ConnectionCounts.defaultPerUID) {
        self.rpc = rpc
        self.allowedUIDs = allowedUIDs
        self.allowedGIDs = allowedGIDs
        self.partialMessageTimeout = partialMessageTimeout
        connections = ConnectionCounts(perUID: connectionsPerUID)
    }

    var admitsOthers: Bool { !allowedUIDs.isEmpty || !allowedGIDs.isEmpty }

    /// Creates the socket directory, or checks that an existing one is ours: 0700, or 0711 when
    /// other uids are admitted (they may reach the client socket, never list the directory).
    public static func prepareDirectory(_ path: String, shared: Bool = false) throws {
        let mode: mode_t = shared ? 0o711 : 0o700
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_uid == getuid() else { throw AgentError("insecure_directory", "\(path) belongs to uid \(info.st_uid), not to the agent") }
            chmod(path, mode)
            return
        }
        try makeDirectory(path, mode: mode, for: "socket_dir")
    }

    /// A socket file the agent made was removed (a cleaner of /tmp, a mistaken `rm`) or replaced:
    /// no client can reach the agent through it any more.
    public struct SocketGone: Error, CustomStringConvertible {
        public var path: String
        public var description: String {
            "the socket \(path) was removed or replaced, so no client can reach this agent; it stops (start it again to make its sockets)"
        }
    }

    /// Accepts connections on every listener until the task is cancelled, or throws `SocketGone`
    /// (checked every 5 s) for a socket file it made. Sockets systemd passed are systemd's.
    public func run(_ listeners: [Listener], onReady: @escaping @Sendable () -> Void = {}) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        var servers: [NIOAsyncChannel<Void, Never>] = []
        for listener in listeners {
            let connection: @Sendable (Channel) -> EventLoopFuture<Void> = { [partialMessageTimeout] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LineFramer(maximumSize: JSONRPC.maximumMessageSize, partialTimeout: partialMessageTimeout))
                    try channel.pipeline.syncOperations.addHandler(RPCConnection(rpc: rpc, control: listener.control, connections: connections,
                                                                                  admits: { self.admits($0, control: listener.control) }))
                }
            }
            let bootstrap = ServerBootstrap(group: group).serverChannelOption(.backlog, value: 256)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .serverChannelInitializer { [logger = rpc.agent.logger] channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptFailures(logger: logger)) }
                }
            switch listener.source {
            case .path(let path):
                guard path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
                    throw AgentError("bad_config", "\(path) is \(path.utf8.count) bytes, longer than a Unix socket's path may be (107): choose a shorter socket_dir")
                }
                // A socket file an agent left when it died accepts nobody and is replaced; one
                // that a running agent serves is not taken from it (its clients would be cut off).
                if (try? AgentClient(path: path)) != nil {
                    throw AgentError("already_running", "an agent already listens at \(path): stop it, or give this one another socket_dir")
                }
                servers.append(try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true, childChannelInitializer: connection))
                // Peer credentials decide who may talk to the client socket when other uids are
                // admitted; otherwise the file itself shuts everyone else out.
                chmod(path, !listener.control && admitsOthers ? 0o666 : 0o600)
                if let file = FileIdentity(path) { made.files.withLock { $0.append(file) } }
            case .descriptor(let fd):
                servers.append(try await bootstrap.bind(fd, childChannelInitializer: connection))
            }
        }
        onReady()
        // Each connection is served by its RPCConnection; this only keeps the listeners open.
        try await withThrowingDiscardingTaskGroup { group in
            for server in servers {
                group.addTask { try await server.executeThenClose { connections in for try await _ in connections {} } }
            }
            if !made.files.withLock(\.isEmpty) {
                group.addTask { [made] in
                    while true {
                        try await Task.sleep(for: .seconds(5))
                        if let gone = made.files.withLock({ $0.first { !$0.isStillThere } }) { throw SocketGone(path: gone.path) }
                    }
                }
            }
        }
    }

    /// Removes the socket files `run` made that are still the ones it made (not those systemd
    /// passed, nor one another agent put in their place).
    public func removeSocketFiles() {
        made.files.withLock { files in
            for file in files where file.isStillThere { unlink(file.path) }
            files = []
        }
    }

    /// A box for the lock: the server is a value, shared by the tasks that serve it.
    final class MadeFiles: Sendable {
        let files = Mutex<[FileIdentity]>([])
    }

    /// The control socket is the operator's alone; the client socket also admits the
    /// configured uids and groups.
    func admits(_ client: ClientIdentity, control: Bool) -> Bool {
        client.uid == getuid() || (!control && (allowedUIDs.contains(client.uid) || allowedGIDs.contains(client.gid)))
    }
}

/// Says in the journal why connections wait unanswered: an accept that fails (the agent out of
/// descriptors, EMFILE) leaves them in the listen backlog while NIO waits a second and tries
/// again, and NIO swallows the error. Once a minute at most, for a client that keeps trying.
final class AcceptFailures: ChannelInboundHandler {
    typealias InboundIn = Channel
    let logger: Logger
    private var quietUntil = NIODeadline.uptimeNanoseconds(0)

    init(logger: Logger) { self.logger = logger }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if NIODeadline.now() >= quietUntil {
            quietUntil = .now() + .minutes(1)
            logger.warning("connections wait unanswered: accepting one failed (\(error)); clients are served again once connections close")
        }
        context.fireErrorCaught(error)
    }
}

/// How many connections each uid holds open to each socket. One client opening connections
/// without end would otherwise use up the agent's descriptors and lock every other client out;
/// the control socket is counted apart, so the operator can always reach it.
public final class ConnectionCounts: Sendable {
    public static let defaultPerUID = 64
    let perUID: Int

    struct Key: Hashable {
        var uid: UInt32
        var control: Bool
    }

    private let open = Mutex<[Key: Int]>([:])

    init(perUID: Int) { self.perUID = perUID }

    /// Counts one more connection for `key`, unless it has `perUID` already.
    func admit(_ key: Key) -> Bool {
        open.withLock { open in
            guard open[key, default: 0] < perUID else { return false }
            open[key, default: 0] += 1
            return true
        }
    }

    func release(_ key: Key) {
        open.withLock { open in
            open[key, default: 1] -= 1
            if open[key] == 0 { open[key] = nil }
        }
    }
}

/// One connection: its peer checked once, then one request at a time, answered in order.
/// Signing requests are answered on the event loop itself (`AgentRPC.respondOnThisThread`);
/// the others go to the agent's actor. While requests wait their turn, no more is read from the
/// socket, and while answers wait for the client to read them, no more is answered: a client
/// that sends without reading holds back only itself, and holds at most one answer in the
/// agent's memory.
final class RPCConnection: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    let rpc: AgentRPC
    let control: Bool
    let connections: ConnectionCounts
    let admits: @Sendable (ClientIdentity) -> Bool
    private var context: ChannelHandlerContext?
    private var client: ClientIdentity?
    /// Set once the connection counts against its uid's share.
    private var counted: ConnectionCounts.Key?
    private var waiting: [Frame] = []
    private var busy = false
    private var readHeld = false
    /// The client closed its side: once what it sent is answered, the connection is closed.
    private var inputClosed = false
    private var lastAnswer: EventLoopFuture<Void>?
    private var draining = false
    private static let backlog = 16

    init(rpc: AgentRPC, control: Bool, connections: ConnectionCounts, admits: @escaping @Sendable (ClientIdentity) -> Bool) {
        self.rpc = rpc
        self.control = control
        self.connections = connections
        self.admits = admits
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        if let counted { connections.release(counted) }
        counted = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        PeerCredentials.read(channel: context.channel).whenComplete { result in
            let connection = bound.value
            guard case .success(let client) = result else { return connection.refuse(AgentError("forbidden", "peer credentials could not be read")) }
            guard connection.admits(client) else {
                return connection.refuse(AgentError("forbidden", "uid \(client.uid) may not use this \(connection.control ? "control" : "client") socket"))
            }
            // A connection closed before its credentials came back has nothing to count.
            guard connection.context != nil else { return }
            let key = ConnectionCounts.Key(uid: client.uid, control: connection.control)
            guard connection.connections.admit(key) else {
                return connection.refuse(AgentError("too_many_connections",
                                                    "uid \(client.uid) has \(connection.connections.perUID) connections open to this socket already (connections_per_uid); close one first"))
            }
            connection.counted = key
            connection.client = client
            connection.next()
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        waiting.append(unwrapInboundIn(data))
        next()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .inputClosed = event as? ChannelEvent else { return context.fireUserInboundEventTriggered(event) }
        inputClosed = true
        next()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { next() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if backlogFull { readHeld = true } else { context.read() }
    }

    /// Reading stops at 16 waiting requests or 1 MiB of them, whichever comes first, so that a
    /// uid's connections, each held up by a slow request, hold little memory.
    private var backlogFull: Bool {
        waiting.count >= Self.backlog || waiting.reduce(0) { $0 + $1.size } >= JSONRPC.maximumMessageSize
    }

    /// Takes the waiting requests in turn while the previous one has been answered. Answers
    /// given on this thread come back through `answer` while the loop runs; `draining` keeps
    /// that from nesting a second loop.
    private func next() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while let context, let client, !busy, context.channel.isWritable, !waiting.isEmpty {
            let frame = waiting.removeFirst()
            if readHeld, !backlogFull {
                readHeld = false
                context.read()
            }
            switch frame {
            case .oversized: return refuse(AgentError("bad_request", "message larger than \(JSONRPC.maximumMessageSize) bytes", code: -32600))
            case .stalled: return refuse(AgentError("bad_request", "incomplete message: the rest did not arrive in time", code: -32600))
            case .line(let line): take(line, client: client, loop: context.eventLoop)
            }
        }
        if inputClosed, client != nil, !busy, waiting.isEmpty, let context {
            let channel = context.channel
            (lastAnswer ?? context.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private func take(_ line: ByteBuffer, client: ClientIdentity, loop: EventLoop) {
        busy = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        let reply: @Sendable (String) -> Void = { text in
            if loop.inEventLoop { bound.value.answer(text) } else { loop.execute { bound.value.answer(text) } }
        }
        let request: JSONRPC.Request
        switch JSONRPC.parse(Array(line.readableBytesView)) {
        case .failure(let malformed): return reply(JSONRPC.error(malformed.id, malformed.error))
        case .success(let r): request = r
        }
        if rpc.respondOnThisThread(to: request, client: client, control: control, reply: reply) { return }
        let (rpc, control) = (self.rpc, self.control)
        Task { reply(await rpc.respond(to: request, client: client, control: control)) }
    }

    private func answer(_ text: String) {
        busy = false
        guard let context else { return }
        lastAnswer = context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text + "\n")))
        next()
    }

    /// Answers with an error and closes the connection.
    private func refuse(_ error: AgentError) {
        guard let context else { return }
        waiting.removeAll()
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: JSONRPC.error(.null, error) + "\n"))).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }
}
