internal import CLinuxShims
import EthereumCore
import Foundation
import OwnerSigners
import SmartSessions
import Synchronization

/// A pinentry program (the dialog helper of gpg-agent: pinentry-gnome3, -qt, -curses, -tty)
/// spoken to over the Assuan protocol, one process per question as gpg-agent does.
public struct Pinentry: Sendable {
    /// The program and its arguments, e.g. `["/usr/bin/pinentry-curses", "--ttyname", "/dev/pts/3"]`.
    public var command: [String]
    /// A dialog still open after this long is killed: nobody is answering (and pinentry-curses
    /// whose terminal went away spins instead of exiting).
    public var timeout: TimeInterval

    public init(command: [String], timeout: TimeInterval = 300) {
        self.command = command
        self.timeout = timeout
    }

    /// Assuan lines are at most 1,000 bytes (pinentry exits on a longer one); a description is
    /// cut into pages that fit, counted as they are sent: escaped.
    static let pageBytes = 800

    /// Shows `text` page by page; the last page's OK button says `ok`. True only if every page
    /// was accepted, so nothing is approved unseen.
    public func confirm(title: String, text: String, ok: String, cancel: String) throws -> Bool {
        let pages = Self.pages(text)
        for (i, page) in pages.enumerated() {
            let last = i == pages.count - 1
            let session = try AssuanSession(command, timeout: timeout)
            defer { session.close() }
            try session.set("SETTITLE", title)
            try session.set("SETDESC", pages.count == 1 ? page : "(\(i + 1)/\(pages.count))\n" + page)
            try session.set("SETOK", last ? ok : "Next")
            try session.set("SETCANCEL", cancel)
            guard try session.transact("CONFIRM").answered("CONFIRM").ok else { return false }
        }
        return true
    }

    /// Asks for a secret; nil when the person cancels.
    public func secret(title: String, description: String, prompt: String) throws -> SecretBytes? {
        let session = try AssuanSession(command, timeout: timeout)
        defer { session.close() }
        try session.set("SETTITLE", title)
        try session.set("SETDESC", description)
        try session.set("SETPROMPT", prompt)
        let reply = try session.transact("GETPIN").answered("GETPIN")
        guard reply.ok else { return nil }
        var data = reply.data
        defer { data.withUnsafeMutableBytes { SecretBytes.zero($0) } }
        return data.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    /// Shows `text` with an OK button and returns at once, leaving it up until the person
    /// presses OK or `takeDown` is called on what it returns.
    func notice(title: String, text: String) throws -> AssuanSession {
        let session = try AssuanSession(command, timeout: timeout)
        do {
            try session.set("SETTITLE", title)
            try session.set("SETDESC", text)
            try session.send("MESSAGE")
        } catch {
            session.close()
            throw error
        }
        return session
    }

    static func pages(_ text: String) -> [String] {
        var pages: [String] = []
        var current = "", size = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var rest = Substring(line), restSize = AssuanSession.escapedSize(line)
            if !current.isEmpty, size + 3 + restSize > pageBytes {
                pages.append(current)
                (current, size) = ("", 0)
            }
            // A line longer than a page is cut between code points (at most 4 bytes, or 3
            // escaped): a character may carry any number of combining marks.
            while restSize > pageBytes {
                let cut = rest.unicodeScalars.index(rest.startIndex, offsetBy: pageBytes / 4)
                let piece = String(rest.unicodeScalars[..<cut])
                pages.append(piece)
                restSize -= AssuanSession.escapedSize(piece)
                rest = Substring(rest.unicodeScalars[cut...])
            }
            if !current.isEmpty {
                current += "\n"
                size += 3
            }
            current += rest
            size += restSize
        }
        pages.append(current)
        return pages
    }
}

/// A person deciding through pinentry, gpg-agent's way: each request left to a person is shown,
/// one at a time, every page of it (critical ones need the word `approve` typed), and the owner
/// passphrases and token PINs are asked in it too. One dialog at a time on the person's screen:
/// a PIN a request the rules approved needs waits while the person reads another request,
/// instead of drawing over it.
struct PinentryApproval: Sendable {
    let pinentry: Pinentry
    let dialogs = Turns()

    init(_ pinentry: Pinentry) { self.pinentry = pinentry }

    /// Asks for an owner's passphrase or a token's PIN.
    var ownerPrompt: SecretPrompt {
        { [pinentry, dialogs] description in
            let label = description.hasPrefix("PIN") ? "PIN:" : "Passphrase:"
            guard let secret = try await Self.dialog(dialogs, { try pinentry.secret(title: "session-agent", description: description, prompt: label) }) else {
                throw AgentError("secret_needed", "it was not given at the pinentry dialog")
            }
            return secret
        }
    }

    /// Tells the person to enter the PIN on the reader's keypad, as gpg-agent does for a pinpad:
    /// a dialog in its turn among the others, up until the entry is over (or the person closes
    /// it), then taken down.
    var ownerNotice: DeviceNotice.Show {
        { [pinentry, dialogs] text in
            await dialogs.begin()
            let notice = try? await blocking { try pinentry.notice(title: "session-agent", text: text) }
            return {
                notice?.takeDown()
                Task { await dialogs.end() }
            }
        }
    }

    /// Shows each request the agent leaves to a person, as it arrives, and decides it.
    func decideRequests(of agent: Agent) async {
        for await id in agent.requestsToDecide {
            guard let request = try? await agent.requestStatus(id, client: nil), request.status == .pending else { continue }
            let critical = request.review.highestSeverity?.rawValue == "critical"
            let text = Self.description(of: request)
            let approver = "pinentry (uid \(getuid()))"
            let approved: Bool
            do {
                approved = try await Self.dialog(dialogs) { [pinentry] in
                    guard try pinentry.confirm(title: "session-agent: approve a session?", text: text, ok: critical ? "Continue" : "Approve", cancel: "Deny") else { return false }
                    guard critical else { return true }
                    var typed = try pinentry.secret(title: "session-agent", description: "This request has CRITICAL risks. Type approve to approve it.", prompt: "Confirm:")
                    defer { typed = nil }
                    return typed?.withUnsafeBytes { Array($0) == Array("approve".utf8) } ?? false
                }
            } catch {
                // A dialog that could not be shown (no terminal or display, a broken program) is
                // no person's denial, and is not told as one: not a silent refusal, as ssh-agent's
                // without an askpass.
                _ = try? await agent.decide(id, approve: false, approver: approver, reason: "the pinentry dialog failed: \(error)")
                continue
            }
            guard approved else {
                _ = try? await agent.decide(id, approve: false, approver: approver, reason: "denied at the pinentry dialog")
                continue
            }
            // A wrong PIN, a dialog closed too soon, a token not yet plugged in: the agent keeps
            // the request pending, and the person may try again (asked for the PIN again), as
            // gpg-agent does, or deny it.
            while true {
                do {
                    _ = try await agent.decide(id, approve: true, approver: approver)
                    break
                } catch {
                    guard (try? await agent.requestStatus(id, client: nil))?.status == .pending else { break }
                    let again = (try? await Self.dialog(dialogs) { [pinentry] in
                        try pinentry.confirm(title: "session-agent: the approval did not go through", text: error.message, ok: "Try again", cancel: "Deny")
                    }) ?? false
                    guard again else {
                        _ = try? await agent.decide(id, approve: false, approver: approver, reason: "denied at the pinentry dialog after: \(error.message)")
                        break
                    }
                }
            }
        }
    }

    /// What the dialog shows of a request. A review longer than a page opens with its risks
    /// counted: they are listed near its end, which a person paging through a long one (a
    /// client may ask for thousands of calls) might never reach.
    static func description(of request: Agent.PendingRequest) -> String {
        let text = "Session request from \(request.client)\n\n" + request.review.text()
        guard Pinentry.pages(text).count > 1 else { return text }
        let risks = request.review.risks
        let counts = Severity.allCases.reversed().compactMap { severity in
            let n = risks.count { $0.severity == severity }
            return n == 0 ? nil : "\(n) \(severity.rawValue)"
        }
        let summary = counts.isEmpty ? "No risks found." : "Risks: \(counts.joined(separator: ", ")), each under \"Risks\" near the end."
        return summary + "\n\n" + text
    }

    /// A dialog in its turn among the others, on a thread of its own.
    private static func dialog<T: Sendable>(_ dialogs: Turns, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await dialogs.run { () async throws -> T in try await blocking(body) }
    }
}

public struct PinentryError: Error, CustomStringConvertible {
    public var description: String
}

/// One running pinentry and its Assuan conversation over the child's stdin/stdout. Used by one
/// thread at a time: a notice is handed from the thread that showed it to the one taking it down.
final class AssuanSession: @unchecked Sendable {
    let pid: pid_t
    /// The child's stdin and stdout.
    let toChild: FileHandle
    let fromChild: FileHandle
    var buffer: [UInt8] = []

    struct Reply {
        var ok: Bool
        var data: [UInt8]
        var error: String

        /// An ERR that is the person's answer (Cancel, Deny, closing the dialog), not a failure to
        /// ask: its gpg-error code is GPG_ERR_CANCELED, GPG_ERR_NOT_CONFIRMED or
        /// GPG_ERR_FULLY_CANCELED.
        var cancelled: Bool {
            let words = error.split(separator: " ")
            guard words.count > 1, let code = UInt32(words[1]) else { return false }
            return [99, 114, 198].contains(code & 0xFFFF)
        }

        /// The reply, when it is OK or the person's cancel; throws for a failure to ask.
        func answered(_ command: String) throws -> Reply {
            guard ok || cancelled else { throw PinentryError(description: "pinentry could not ask (\(command)): \(error)") }
            return self
        }
    }

    var watchdog: DispatchWorkItem?
    /// Set when the watchdog ended a dialog nobody answered in time.
    let timedOut = Atomic<Bool>(false)
    let timeout: TimeInterval

    init(_ command: [String], timeout: TimeInterval) throws {
        self.timeout = timeout
        guard let program = command.first else { throw PinentryError(description: "no pinentry program configured") }
        // Spawned with no signal blocked and SIGTERM and SIGINT at their defaults: the threads
        // that start dialogs descend from libdispatch's workers, which block those signals, and a
        // signal mask survives exec (Foundation's Process passed it on). A dialog then goes when
        // told.
        var stdin: [Int32] = [-1, -1], stdout: [Int32] = [-1, -1]
        guard CLinuxShims_pipeClosedOnExec(&stdin) == 0 else { throw PinentryError(description: "pipe: \(String(cString: strerror(errno)))") }
        guard CLinuxShims_pipeClosedOnExec(&stdout) == 0 else {
            stdin.forEach { Glibc.close($0) }
            throw PinentryError(description: "pipe: \(String(cString: strerror(errno)))")
        }
        let arguments = command.map { strdup($0) } + [nil]
        let environment = Self.environment().map { strdup($0) } + [nil]
        defer { (arguments + environment).forEach { free($0) } }
        var child: pid_t = 0
        let spawned = arguments.withUnsafeBufferPointer { argv in
            environment.withUnsafeBufferPointer { envp in CLinuxShims_spawn(program, argv.baseAddress, envp.baseAddress, stdin[0], stdout[1], &child) }
        }
        Glibc.close(stdin[0])
        Glibc.close(stdout[1])
        toChild = FileHandle(fileDescriptor: stdin[1], closeOnDealloc: true)
        fromChild = FileHandle(fileDescriptor: stdout[0], closeOnDealloc: true)
        guard spawned == 0 else { throw PinentryError(description: "cannot start \(program): \(String(cString: strerror(spawned)))") }
        pid = child
        Self.open.withLock { _ = $0.insert(child) }
        let watchdog = DispatchWorkItem { [weak self] in
            self?.timedOut.store(true, ordering: .relaxed)
            kill(child, SIGKILL)
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        self.watchdog = watchdog
        let greeting: Reply
        do { greeting = try read() } catch {
            close()
            throw error
        }
        guard greeting.ok else {
            close()
            throw PinentryError(description: "\(program) did not greet: \(greeting.error)")
        }
    }

    /// What a dialog gets of the agent's environment: what pinentry programs draw with (the
    /// display, terminal, locale, session bus) and nothing else. The agent's environment may hold
    /// secrets (a token PIN in `pin_env`, a cloud credential), and unlike the agent, which is not
    /// dumpable, a dialog's environment is readable by every process of the user.
    static func environment(_ agent: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        let names: Set<String> = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TERMINFO", "COLORTERM", "DISPLAY", "WAYLAND_DISPLAY",
                                  "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS", "GPG_TTY", "PINENTRY_USER_DATA"]
        let prefixes = ["LC_", "XDG_", "QT_", "GTK_", "GDK_"]
        return agent.filter { name, _ in names.contains(name) || prefixes.contains(where: name.hasPrefix) }.map { "\($0.key)=\($0.value)" }.sorted()
    }

    /// Ends a dialog that may be waiting for the person (one `notice` shows): it is told to go
    /// (SIGTERM), since it reads no command until it is answered.
    func takeDown() {
        kill(pid, SIGTERM)
        close()
    }

    /// Says goodbye and waits for the child to exit. A program that does not go when told is
    /// ended after 2 s: a dialog thread waiting on it for ever held up every dialog after it.
    func close() {
        watchdog?.cancel()
        try? toChild.write(contentsOf: Data("BYE\n".utf8))
        try? toChild.close()
        try? fromChild.close()
        let straggler = DispatchWorkItem { [pid] in kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 2, execute: straggler)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        straggler.cancel()
        Self.open.withLock { _ = $0.remove(pid) }
    }

    /// The dialogs on screen now, so that an agent that stops takes them down with it instead
    /// of leaving them on the person's terminal.
    static let open = Mutex<Set<pid_t>>([])

    static func closeAll() {
        for pid in open.withLock({ $0 }) { kill(pid, SIGTERM) }
    }

    func set(_ command: String, _ value: String) throws {
        let reply = try transact(command + " " + Self.escape(value))
        guard reply.ok else { throw PinentryError(description: "pinentry refused \(command): \(reply.error)") }
    }

    func transact(_ line: String) throws -> Reply {
        try send(line)
        return try read()
    }

    /// Sends a command without waiting for its reply.
    func send(_ line: String) throws {
        do { try toChild.write(contentsOf: Data((line + "\n").utf8)) } catch {
            throw PinentryError(description: "pinentry exited")
        }
    }

    /// Reads up to the closing OK or ERR line; D lines are the (percent-escaped) data.
    func read() throws -> Reply {
        var data: [UInt8] = []
        defer { data.withUnsafeMutableBytes { SecretBytes.zero($0) } }
        while true {
            var line = try readLine()
            defer { line.withUnsafeMutableBytes { SecretBytes.zero($0) } }
            if line.starts(with: Array("OK".utf8)) { return Reply(ok: true, data: data, error: "") }
            if line.starts(with: Array("ERR".utf8)) { return Reply(ok: false, data: [], error: String(decoding: line, as: UTF8.self)) }
            if line.starts(with: Array("D ".utf8)) { data += Self.unescape(line.dropFirst(2)) }
            guard data.count <= SecretFile.maximumSize else { throw PinentryError(description: "pinentry sent more data than any passphrase or PIN") }
            // S (status), # (comments) and INQUIRE-free dialogs need nothing more.
        }
    }

    func readLine() throws -> [UInt8] {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.withUnsafeMutableBytes { SecretBytes.zero(UnsafeMutableRawBufferPointer(rebasing: $0[...newline])) }
                buffer.removeSubrange(...newline)
                return line
            }
            // Assuan lines hold 1,000 bytes; a program that sends far longer ones is no pinentry,
            // and is not read until memory runs out.
            guard buffer.count <= 4096 else { throw PinentryError(description: "pinentry sent a line longer than Assuan allows") }
            let chunk = fromChild.availableData
            guard !chunk.isEmpty else {
                throw PinentryError(description: timedOut.load(ordering: .relaxed) ? "nobody answered the dialog within \(Int(timeout)) s" : "pinentry closed the conversation")
            }
            buffer += chunk
        }
    }

    /// How many bytes `escape` makes of `s`.
    static func escapedSize(_ s: some StringProtocol) -> Int {
        s.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "%") || $1 == UInt8(ascii: "\r") || $1 == UInt8(ascii: "\n") ? 3 : 1) }
    }

    /// Assuan escapes %, CR and LF in arguments.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "%": out += "%25"
            case "\r": out += "%0D"
            case "\n": out += "%0A"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func unescape(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var i = bytes.startIndex
        while i < bytes.endIndex {
            // Two hex digits, nothing else: UInt8(_:radix:) would also take a sign ("%+1").
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.endIndex, let high = Hex.nibble(bytes[i + 1]), let low = Hex.nibble(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
