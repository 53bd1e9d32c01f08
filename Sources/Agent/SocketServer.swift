import Approval
import EthereumCore
import Foundation
import NIOCore
import NIOPosix
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

    public init(rpc: AgentRPC, allowedUIDs: Set<UInt32> = [], allowedGIDs: Set<UInt32> = [], partialMessageTimeout: TimeAmount = .seconds(30)) {
        self.rpc = rpc
        self.allowedUIDs = allowedUIDs
        self.allowedGIDs = allowedGIDs
        self.partialMessageTimeout = partialMessageTimeout
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
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: Int(mode)])
    }

    /// Accepts connections on every listener until the task is cancelled.
    public func run(_ listeners: [Listener], onReady: @escaping @Sendable () -> Void = {}) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        var servers: [(NIOAsyncChannel<NIOAsyncChannel<Frame, ByteBuffer>, Never>, Bool)] = []
        let framing: @Sendable (Channel) -> EventLoopFuture<NIOAsyncChannel<Frame, ByteBuffer>> = { [partialMessageTimeout] channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(LineFramer(maximumSize: JSONRPC.maximumMessageSize, partialTimeout: partialMessageTimeout))
                return try NIOAsyncChannel<Frame, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        for listener in listeners {
            let bootstrap = ServerBootstrap(group: group).serverChannelOption(.backlog, value: 256)
            let server: NIOAsyncChannel<NIOAsyncChannel<Frame, ByteBuffer>, Never>
            switch listener.source {
            case .path(let path):
                server = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true, childChannelInitializer: framing)
                // Peer credentials decide who may talk to the client socket when other uids are
                // admitted; otherwise the file itself shuts everyone else out.
                chmod(path, !listener.control && admitsOthers ? 0o666 : 0o600)
            case .descriptor(let fd):
                server = try await bootstrap.bind(fd, childChannelInitializer: framing)
            }
            servers.append((server, listener.control))
        }
        onReady()
        try await withThrowingDiscardingTaskGroup { group in
            for (server, control) in servers {
                group.addTask {
                    try await server.executeThenClose { connections in
                        try await withThrowingDiscardingTaskGroup { connectionGroup in
                            for try await connection in connections {
                                connectionGroup.addTask { await self.serve(connection, control: control) }
                            }
                        }
                    }
                }
            }
        }
    }


    func serve(_ connection: NIOAsyncChannel<Frame, ByteBuffer>, control: Bool) async {
        let identity = await PeerCredentials.read(channel: connection.channel)
        try? await connection.executeThenClose { inbound, outbound in
            func send(_ text: String) async throws { try await outbound.write(ByteBuffer(string: text + "\n")) }
            guard let client = identity else {
                try await send(JSONRPC.error(.null, AgentError("forbidden", "peer credentials could not be read")))
                return
            }
            // The control socket is the operator's alone; the client socket also admits the
            // configured uids and groups.
            guard client.uid == getuid() || (!control && (allowedUIDs.contains(client.uid) || allowedGIDs.contains(client.gid))) else {
                try await send(JSONRPC.error(.null, AgentError("forbidden", "uid \(client.uid) may not use this \(control ? "control" : "client") socket")))
                return
            }
            for try await frame in inbound {
                switch frame {
                case .line(let line):
                    try await send(await rpc.respond(to: Array(line.readableBytesView), client: client, control: control))
                case .oversized:
                    try await send(JSONRPC.error(.null, AgentError("bad_request", "message larger than \(JSONRPC.maximumMessageSize) bytes", code: -32600)))
                    return
                case .stalled:
                    try await send(JSONRPC.error(.null, AgentError("bad_request", "incomplete message: the rest did not arrive in time", code: -32600)))
                    return
                }
            }
        }
    }
}
