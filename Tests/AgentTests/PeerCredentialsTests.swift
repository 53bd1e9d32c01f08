@testable import Agent
import CLinuxShims
import Foundation
import Testing
import TestSupport
import TestTraits
#if canImport(Glibc)
import Glibc
#endif

@Suite("Peer credentials of real Unix-socket clients", .scratchDirectory)
struct PeerCredentialsTests {
    /// A listening AF_UNIX socket in a private directory.
    static func listener() throws -> (fd: Int32, path: String) {
        let dir = URL(fileURLWithPath: ScratchDirectory.path("peer"))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let path = dir.appendingPathComponent("s").path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(bound == 0)
        chmod(path, 0o777)   // the test's other-uid client must be able to connect
        #expect(listen(fd, 4) == 0)
        return (fd, path)
    }

    /// Runs a client that connects and waits to be closed, as `uid` (via setpriv) when given.
    static func client(path: String, uid: UInt32?) throws -> Process {
        let p = Process()
        let script = "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(1)"
        if let uid {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "/usr/bin/python3", "-c", script, path]
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            p.arguments = ["-c", script, path]
        }
        try p.run()
        return p
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3 as a client"))
    func readsUidPidAndExecutable() throws {
        let (fd, path) = try Self.listener()
        defer { close(fd) }
        let client = try Self.client(path: path, uid: nil)
        let connection = accept(fd, nil, nil)
        defer { close(connection); client.waitUntilExit() }
        let peer = try PeerCredentials.read(socket: connection)
        #expect(peer.uid == getuid())
        #expect(peer.pid == client.processIdentifier)
        #expect(peer.executable?.contains("python3") == true)
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root and setpriv to connect as another uid"))
    func seesAnotherUid() throws {
        let (fd, path) = try Self.listener()
        defer { close(fd) }
        let client = try Self.client(path: path, uid: 65534)
        let connection = accept(fd, nil, nil)
        defer { close(connection); client.waitUntilExit() }
        let peer = try PeerCredentials.read(socket: connection)
        #expect(peer.uid == 65534 && peer.gid == 65534)
    }

    /// A copy of python3, run as a client of `path` through `launcher` (a command the client's
    /// own command line is appended to); `setUp` runs first, with the copy's path.
    static func clientFromCopy(path: String, launcher: (String) -> [String], setUp: (String) throws -> Void = { _ in }) throws -> (Process, String) {
        let copy = ScratchDirectory.path("client")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: "/usr/bin/python3").resolvingSymlinksInPath(), to: URL(fileURLWithPath: copy))
        try setUp(copy)
        let p = Process()
        let command = launcher(copy) + ["-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(1)", path]
        p.executableURL = URL(fileURLWithPath: command[0])
        p.arguments = Array(command.dropFirst())
        try p.run()
        return (p, copy)
    }

    /// The path /proc/PID/exe names counts only when the file there is the one running: not
    /// when a package upgrade replaced it since it started, nor when the process runs another
    /// program over that path in a mount namespace of its own. Both are shown, with why.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3 as a client"))
    func anExecutableIsTheFileAtItsPathOrUnverified() throws {
        let (fd, path) = try Self.listener()
        defer { close(fd) }
        let (client, copy) = try Self.clientFromCopy(path: path, launcher: { [$0] })
        let connection = accept(fd, nil, nil)
        defer { close(connection); client.waitUntilExit() }
        var peer = try PeerCredentials.read(socket: connection)
        #expect(peer.executable == copy && peer.unverifiedExecutable == nil, "\(peer)")
        try FileManager.default.removeItem(atPath: copy)   // what an upgrade does to the old file
        peer = try PeerCredentials.read(socket: connection)
        #expect(peer.executable == nil && peer.unverifiedExecutable == .init(path: copy, why: .replaced), "\(peer)")
        #expect(peer.description.hasSuffix("\(copy) (replaced on disk since it started)"))
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"),
                   "needs root and unshare to run a program over another's path"))
    func aProgramRunOverAnothersPathIsNotThatProgram() throws {
        let (fd, path) = try Self.listener()
        defer { close(fd) }
        let bot = ScratchDirectory.path("bot")
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: bot)
        // The client's own program (the python copy) bound over the bot's path, in a mount
        // namespace the agent does not share, and run by that path.
        let (client, _) = try Self.clientFromCopy(path: path, launcher: { copy in
            ["/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", "mount --bind \"$0\" \"$1\" && shift && exec \"$@\"", copy, bot, bot]
        })
        let connection = accept(fd, nil, nil)
        defer { close(connection); client.waitUntilExit() }
        let peer = try PeerCredentials.read(socket: connection)
        #expect(peer.executable == nil && peer.unverifiedExecutable == .init(path: bot, why: .notTheFileThere), "\(peer)")

        // A program at a path only the client's namespace has (as the system unit's agent has
        // no /home) cannot be checked.
        let hidden = ScratchDirectory.path("hidden")
        try FileManager.default.createDirectory(atPath: hidden, withIntermediateDirectories: false)
        let (unseen, _) = try Self.clientFromCopy(path: path, launcher: { copy in
            ["/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", "mount -t tmpfs none \"$1\" && cp \"$0\" \"$1/bot\" && shift && exec \"$@\"",
             copy, hidden, hidden + "/bot"]
        })
        let second = accept(fd, nil, nil)
        defer { close(second); unseen.waitUntilExit() }
        let other = try PeerCredentials.read(socket: second)
        #expect(other.executable == nil && other.unverifiedExecutable == .init(path: hidden + "/bot", why: .unseen), "\(other)")
    }

    @Test func systemdUnitFromCgroup() {
        #expect(PeerCredentials.unit(cgroup: "0::/system.slice/payments-bot.service\n") == "payments-bot.service")
        #expect(PeerCredentials.unit(cgroup: "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-bot-1234.scope\n") == "user@1000.service/app-bot-1234.scope")
        // A user may name a unit of their own manager as a system unit is named: it stays theirs.
        #expect(PeerCredentials.unit(cgroup: "0::/user.slice/user-1000.slice/user@1000.service/app.slice/payments-bot.service\n") == "user@1000.service/payments-bot.service")
        #expect(PeerCredentials.unit(cgroup: "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n") == "user@1000.service/init.scope")
        #expect(PeerCredentials.unit(cgroup: "0::/user.slice/user-1000.slice/user@1000.service\n") == "user@1000.service")
        #expect(PeerCredentials.unit(cgroup: "0::/user.slice/user-1000.slice/session-3.scope\n") == "session-3.scope")
        // So may a container running systemd, and a service its own subgroups.
        #expect(PeerCredentials.unit(cgroup: "0::/system.slice/docker-ab12.scope/system.slice/payments-bot.service\n") == "docker-ab12.scope/payments-bot.service")
        #expect(PeerCredentials.unit(cgroup: "0::/system.slice/payments-bot.service/worker\n") == "payments-bot.service")
        #expect(PeerCredentials.unit(cgroup: "1:name=systemd:/system.slice/cron.service\n0::/\n") == "cron.service")
        #expect(PeerCredentials.unit(cgroup: "4:memory:/process_api/abc\n0::/\n") == nil)
    }

    @Test func hardeningIsInForceAfterApply() throws {
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_CORE.rawValue), &saved)
        #expect(!Hardening.isApplied || saved.rlim_max == 0)
        try Hardening.apply()
        #expect(Hardening.isApplied)
        // Give the test runner back what it had (a hard limit of 0 cannot be raised again, so
        // only the dumpable flag and the umask).
        _ = CLinuxShims_setDumpable(1)
        umask(0o022)
    }
}
