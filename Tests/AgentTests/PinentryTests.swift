@testable import Agent
import CLinuxShims
import EthereumCore
import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A person at a terminal: pinentry-curses on a pseudo-terminal the test holds, reading the
/// screen and pressing keys, while the agent speaks Assuan to pinentry.
@Suite("Approval through pinentry (Assuan)", .serialized)
struct PinentryTests {
    static let program = "/usr/bin/pinentry-curses"

    /// A pseudo-terminal: the test keeps the master side; pinentry opens the named slave side.
    final class Terminal {
        let master: Int32
        let slavePath: String
        var screen = ""

        init() throws {
            var name = [CChar](repeating: 0, count: 128)
            master = CLinuxShims_openPseudoTerminal(&name, name.count)
            guard master >= 0 else { throw Oracle.Failure(description: "no pseudo-terminal: \(String(cString: strerror(errno)))") }
            slavePath = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // Room for a page of the review.
            var size = winsize(ws_row: 60, ws_col: 160, ws_xpixel: 0, ws_ypixel: 0)
            _ = ioctl(master, UInt(TIOCSWINSZ), &size)
        }

        deinit { close(master) }

        /// Reads the screen until `text` shows, or fails after `seconds`.
        func waitFor(_ text: String, seconds: Double = 20) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while !screen.contains(text) {
                guard Date() < deadline else { throw Oracle.Failure(description: "\(text) never appeared; screen: \(screen.suffix(600))") }
                var poller = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 200) > 0 else { continue }
                var chunk = [UInt8](repeating: 0, count: 65536)
                let n = read(master, &chunk, chunk.count)
                if n > 0 { screen += String(decoding: chunk[0..<n], as: UTF8.self) }
            }
        }

        func press(_ keys: String) {
            screen = ""
            _ = keys.utf8CString.withUnsafeBufferPointer { write(master, $0.baseAddress, $0.count - 1) }
        }
    }

    /// `rules` nil: the example rules file (which approves the example request).
    /// A secret in the agent's environment, as a `pin_env` PIN would be: no dialog may see it.
    static let environmentSecret = (name: "HSM_PIN", value: "env-pin-\(UUID().uuidString.prefix(8))")

    static func agent(_ terminal: Terminal, rules: String? = "default = \"ask\"", extraConfig: String = "", ownerPassphraseAsked: Bool = false) throws -> AgentProcess {
        var environment = ProcessInfo.processInfo.environment
        environment[environmentSecret.name] = environmentSecret.value
        return try AgentProcess(rules: rules, extraConfig: """
            pinentry = ["\(program)", "--ttyname", "\(terminal.slavePath)", "--ttytype", "xterm"]
            \(extraConfig)
            """, ownerPassphraseAsked: ownerPassphraseAsked, environment: environment)
    }

    /// Pages through the review with Enter to its last page, whose button is <Approve>, and
    /// presses it; returns the number of pages.
    static func approve(on terminal: Terminal) throws -> Int {
        var pages = 0
        while true {
            try terminal.waitFor("<Deny>")
            try terminal.waitFor(">")
            pages += 1
            if terminal.screen.contains("<Approve>") { break }
            #expect(terminal.screen.contains("<Next>"), "\(terminal.screen.suffix(300))")
            terminal.press("\r")
            #expect(pages < 20)
        }
        terminal.press("\r")
        return pages
    }

    /// Data pinentry sends back is read as Assuan escapes it: `%` and two hex digits is a byte,
    /// and anything else is itself (a sign is no hex digit). The round trip through our escape
    /// gives the text back. (The dialog tests type an owner passphrase with `%` in it too.)
    @Test func whatPinentrySendsIsUnescapedExactly() {
        #expect(AssuanSession.unescape(Array("a%+1%-1%2541%0a%0D%4".utf8)[...]) == Array("a%+1%-1%41\n\r%4".utf8))
        for text in ["100%", "%25", "line\r\nnext", "é%"] {
            #expect(AssuanSession.unescape(Array(AssuanSession.escape(text).utf8)[...]) == Array(text.utf8))
        }
        // Assuan ends a line at LF and takes a CR before it as part of the end.
        #expect(AssuanSession.escape("a\rb\nc%d") == "a%0Db%0Ac%25d")
    }

    /// The person's own answers (Cancel, Deny, closing the dialog) against a pinentry that could
    /// not ask: gpg-error codes GPG_ERR_CANCELED (99), GPG_ERR_NOT_CONFIRMED (114) and
    /// GPG_ERR_FULLY_CANCELED (198), in the pinentry source 0x05 in the high bits.
    @Test func aCancelIsAnAnswerAndAnyOtherErrorIsAFailure() throws {
        func reply(_ error: String) -> AssuanSession.Reply { AssuanSession.Reply(ok: false, data: [], error: error) }
        for code in [99, 114, 198] {
            #expect(reply("ERR \(0x0500_0000 + code) Operation cancelled <Pinentry>").cancelled)
            #expect(try reply("ERR \(0x0500_0000 + code) cancelled").answered("CONFIRM").ok == false)
        }
        for error in ["ERR 83918950 Inappropriate ioctl for device <Pinentry>", "ERR 100 no", "ERR", "ERR x 99"] {
            #expect(!reply(error).cancelled, "\(error)")
            #expect(throws: PinentryError.self) { try reply(error).answered("CONFIRM") }
        }
    }

    /// A program that answers GETPIN with more than any passphrase is not read until memory runs
    /// out, line by line as well as all at once.
    @Test func aPinentrySendingWithoutEndIsCutOff() throws {
        let script = "echo OK; while read l; do case \"$l\" in GETPIN*) yes 'D xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' | head -n 100000; echo OK;; *) echo OK;; esac; done"
        let pinentry = Pinentry(command: ["/bin/sh", "-c", script], timeout: 30)
        do {
            _ = try pinentry.secret(title: "t", description: "d", prompt: "p")
            Issue.record("a secret of 7 MB was taken")
        } catch {
            #expect("\(error)".contains("more data than any passphrase or PIN"), "\(error)")
        }
    }

    /// Each page of a description fits an Assuan line as it is sent, escaped: pinentry exits on
    /// a longer one. Whatever the text: short lines (each newline is sent as 3 bytes), percent
    /// signs, long lines, a character with hundreds of combining marks. Nothing is left out.
    @Test func everyPageFitsAnAssuanLine() {
        var random = SplitMix64(seed: 7)
        let pieces = ["", "a", "%", "%%%", "\r", "é", "🦊", "e" + String(repeating: "\u{301}", count: 300), String(repeating: "x", count: 900),
                      String(repeating: "%", count: 500), String(repeating: "🦊", count: 300), "Spend at most 100 USDC a day on Sepolia"]
        func withoutNewlines(_ s: String) -> [Unicode.Scalar] { s.unicodeScalars.filter { $0 != "\n" } }
        for _ in 0..<300 {
            let text = (0..<Int(random.next() % 400)).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] + (random.next() % 3 == 0 ? "" : "\n") }.joined()
            let pages = Pinentry.pages(text)
            for (i, page) in pages.enumerated() {
                let line = "SETDESC " + AssuanSession.escape("(\(i + 1)/\(pages.count))\n" + page)
                #expect(line.utf8.count <= 1000, "\(line.utf8.count) bytes")
                #expect(AssuanSession.escapedSize(page) == AssuanSession.escape(page).utf8.count && AssuanSession.escapedSize(page) <= Pinentry.pageBytes)
            }
            #expect(withoutNewlines(pages.joined()) == withoutNewlines(text))
        }
    }

    /// What each of a process's descriptors is open on, by number.
    static func openFiles(of pid: Int32) -> [Int32: String] {
        let directory = "/proc/\(pid)/fd"
        var files: [Int32: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            if let fd = Int32(name), let file = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(name)") { files[fd] = file }
        }
        return files
    }

    /// The pinentry processes drawing on `tty`.
    static func dialogs(on tty: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid in
            guard Int(pid) != nil, let cmdline = procFile("/proc/\(pid)/cmdline") else { return false }
            return cmdline.contains(tty)
        }
    }

    static func ask(_ client: AgentClient) throws -> String {
        let example = try JSONValue(parsing: [UInt8](try Data(contentsOf: Oracle.packageRoot.appendingPathComponent("docs/examples/usdc-transfers.json"))))
        let pending = try client.call("session_request", JSONObject(["request": example]))
        #expect(pending["status"] == "pending")
        return try #require(pending["id"]?.stringValue)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: program) || ProcessInfo.processInfo.environment["CI"] != nil, "pinentry-curses is not installed"))
    func everyPageIsShownThenApprovedOrDenied() throws {
        let terminal = try Terminal()
        let agent = try Self.agent(terminal)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)

        // Approve: page through with Enter; the last page's button is <Approve>. The first page
        // counts the risks, which are listed on the last.
        let approvedId = try Self.ask(client)
        try terminal.waitFor("Risks: 1 info, each under")
        #expect(try Self.approve(on: terminal) > 1, "the review does not fit one page, so it is shown in several")
        let approved = try client.call("session_wait", JSONObject(["id": .string(approvedId), "timeout": JSONValue(20)]))
        #expect(approved["status"] == "approved" && approved["sessionId"]?.stringValue != nil, "\(approved.serialized)")

        // Deny: Tab to <Deny>, Enter, at the first page.
        let deniedId = try Self.ask(client)
        try terminal.waitFor("<Deny>")
        terminal.press("\t\r")
        let denied = try client.call("session_wait", JSONObject(["id": .string(deniedId), "timeout": JSONValue(20)]))
        #expect(denied["status"] == "denied" && denied["reason"] == "denied at the pinentry dialog", "\(denied.serialized)")
    }

    /// The owner's passphrase asked in pinentry, as gpg-agent asks a PIN: typed wrong, the
    /// request stays pending and a dialog says so and offers to try again; the passphrase typed
    /// next approves it. Or the person denies it there.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: program) || ProcessInfo.processInfo.environment["CI"] != nil, "pinentry-curses is not installed"))
    func aWrongOwnerPassphraseMayBeTypedAgain() throws {
        let terminal = try Terminal()
        let agent = try Self.agent(terminal, ownerPassphraseAsked: true)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        func typeWrongPassphrase() throws {
            _ = try Self.approve(on: terminal)
            try terminal.waitFor("Passphrase:")
            terminal.press("typo\r")
            try terminal.waitFor("<Try again>")
        }

        let id = try Self.ask(client)
        try typeWrongPassphrase()
        let status = try client.call("session_wait", JSONObject(["id": .string(id), "timeout": JSONValue(0)]))
        #expect(status["status"] == "pending", "\(status.serialized)")
        terminal.press("\r")
        try terminal.waitFor("Passphrase:")
        terminal.press(agent.ownerPassphrase + "\r")
        let approved = try client.call("session_wait", JSONObject(["id": .string(id), "timeout": JSONValue(20)]))
        #expect(approved["status"] == "approved" && approved["sessionId"]?.stringValue != nil, "\(approved.serialized)")

        let denied = try Self.ask(client)
        try typeWrongPassphrase()
        terminal.press("\t\r")
        let outcome = try client.call("session_wait", JSONObject(["id": .string(denied), "timeout": JSONValue(20)]))
        #expect(outcome["status"] == "denied" && outcome["reason"]?.stringValue?.contains("wrong passphrase") == true, "\(outcome.serialized)")
        #expect(!agent.logs.contains(agent.ownerPassphrase))
    }

    /// One dialog at a time on the person's terminal, as gpg-agent does: while a request is
    /// shown for approval, the owner passphrase that a request the rules approved needs waits
    /// for it instead of drawing over it; then each is asked in turn, and both are approved.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: program) || ProcessInfo.processInfo.environment["CI"] != nil, "pinentry-curses is not installed"))
    func dialogsTakeTurnsOnTheTerminal() throws {
        let terminal = try Terminal()
        let agent = try Self.agent(terminal, rules: nil, ownerPassphraseAsked: true)
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        // Over the example rules' limit: a person decides.
        var over = try #require(SocketTests.example.objectValue)
        var permission = try #require(over["permissions"]?.arrayValue?.first?.objectValue)
        permission["spendingLimit"] = "500 USDC"
        over["permissions"] = .array([.object(permission)])
        let asked = try #require(try client.call("session_request", JSONObject(["request": .object(over)]))["id"]?.stringValue)
        try terminal.waitFor("<Deny>")

        // Within the rules: approved at once, but its owner's passphrase is asked in pinentry.
        let ruled = LockedBox<JSONValue>()
        let socket = agent.clientSocket
        let ruling = Thread { ruled.value = try? AgentClient(path: socket).call("session_request", JSONObject(["request": SocketTests.example])) }
        ruling.start()
        // Not for the test to pass: time for a second dialog to appear, were it going to.
        usleep(500_000)
        #expect(Self.dialogs(on: terminal.slavePath).count == 1, "one dialog at a time")

        _ = try Self.approve(on: terminal)
        for _ in 0..<2 {
            try terminal.waitFor("Passphrase:")
            terminal.press(agent.ownerPassphrase + "\r")
        }
        let decided = try client.call("session_wait", JSONObject(["id": .string(asked), "timeout": JSONValue(20)]))
        #expect(decided["status"] == "approved", "\(decided.serialized)")
        let deadline = Date().addingTimeInterval(20)
        while ruled.value == nil && Date() < deadline { usleep(20_000) }
        #expect(ruled.value?["status"] == "approved", "\(ruled.value?.serialized ?? "no answer")")
    }

    /// An agent that stops (systemctl stop, Ctrl-C) takes its dialog with it instead of leaving
    /// it on the person's terminal.
    /// The configuration line of a pinentry that is a shell script, quoted for TOML.
    static func scripted(_ script: String) -> String {
        "pinentry = [\"/bin/sh\", \"-c\", \"\(script.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"]"
    }

    /// A dialog that cannot be shown (a pinentry with no terminal or display, a broken program)
    /// is no person's denial: the request fails saying why, in its answer and the audit log,
    /// and a program that sends without end is not read until memory runs out.
    @Test func aPinentryThatCannotAskIsNotADenial() throws {
        let programs = [
            ("echo OK; while read l; do case \"$l\" in CONFIRM*) echo 'ERR 83918950 Inappropriate ioctl for device <Pinentry>';; *) echo OK;; esac; done",
             "the pinentry dialog failed: pinentry could not ask (CONFIRM): ERR 83918950 Inappropriate ioctl for device <Pinentry>"),
            ("echo OK; exec cat /dev/zero", "the pinentry dialog failed: pinentry sent a line longer than Assuan allows"),
            // Nor does one that does not go when told hold up the dialogs after it.
            ("trap '' TERM PIPE; echo OK; while read l; do echo 'ERR 1 broken'; done; exec sleep 1000",
             "the pinentry dialog failed: pinentry refused SETTITLE: ERR 1 broken"),
        ]
        for (script, reason) in programs {
            let agent = try AgentProcess(rules: "default = \"ask\"", extraConfig: Self.scripted(script))
            try agent.start()
            let client = try AgentClient(path: agent.clientSocket)
            for _ in 0..<2 {
                let id = try Self.ask(client)
                let status = try client.call("session_wait", JSONObject(["id": .string(id), "timeout": JSONValue(20)]))
                #expect(status["status"] == "denied" && status["reason"]?.stringValue?.contains(reason) == true, "\(script): \(status.serialized)")
            }
        }
    }

    /// A request with a critical risk (here: the session may install modules on the account) is
    /// approved only when the person also types the word `approve`, as it is.
    @Test func aCriticalRequestNeedsTheWordApprove() throws {
        let request = try JSONValue(parsing: #"{"account": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "chains": [11155111], "validity": {"duration": "1h"},"# +
            #""permissions": [{"target": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "functions": ["installModule(uint256,address,bytes)"], "sudo": true}]}"#)
        for (typed, status) in [("approve", "approved"), ("approved", "denied"), ("Approve", "denied"), ("", "denied")] {
            // Every page confirmed; GETPIN, the word asked for, answered with `typed`.
            let script = "echo OK; while read l; do case \"$l\" in GETPIN*) echo 'D \(typed)'; echo OK;; *) echo OK;; esac; done"
            let agent = try AgentProcess(rules: "default = \"ask\"", extraConfig: Self.scripted(script))
            try agent.start()
            let client = try AgentClient(path: agent.clientSocket)
            let pending = try client.call("session_request", JSONObject(["request": request]))
            #expect(pending["highestSeverity"] == "critical", "\(pending.serialized)")
            let id = try #require(pending["id"]?.stringValue)
            let decided = try client.call("session_wait", JSONObject(["id": .string(id), "timeout": JSONValue(20)]))
            #expect(decided["status"]?.stringValue == status, "typed \(String(reflecting: typed)): \(decided.serialized)")
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: program) || ProcessInfo.processInfo.environment["CI"] != nil, "pinentry-curses is not installed"))
    func aStoppedAgentLeavesNoDialogBehind() throws {
        let terminal = try Terminal()
        let agent = try Self.agent(terminal)
        try agent.start()
        _ = try Self.ask(try AgentClient(path: agent.clientSocket))
        try terminal.waitFor("<Deny>")
        #expect(Self.dialogs(on: terminal.slavePath).count == 1)
        // The dialog gets what it draws with, not the agent's secrets, nor any descriptor of
        // the agent's but its stdin and stdout: one that held the agent's sockets kept them
        // listening after the agent went, and could answer its clients.
        let agentFiles = Set(Self.openFiles(of: try #require(agent.process?.processIdentifier)).values)
        for pid in Self.dialogs(on: terminal.slavePath) {
            let environment = (procFile("/proc/\(pid)/environ") ?? "").split(separator: "\0")
            #expect(environment.contains { $0.hasPrefix("PATH=") } && !environment.contains { $0.contains(Self.environmentSecret.value) }, "\(environment)")
            let files = Self.openFiles(of: try #require(Int32(pid)))
            let shared = Set(files.filter { $0.key > 2 }.values).intersection(agentFiles).subtracting([files[0], files[1]].compactMap { $0 })
            #expect(shared.isEmpty, "the dialog holds the agent's \(shared.sorted())")
        }
        agent.stop()
        let deadline = Date().addingTimeInterval(20)
        while !Self.dialogs(on: terminal.slavePath).isEmpty && Date() < deadline { usleep(20_000) }
        #expect(Self.dialogs(on: terminal.slavePath).isEmpty, "\(agent.logs)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: program) || ProcessInfo.processInfo.environment["CI"] != nil, "pinentry-curses is not installed"))
    func aDialogNobodyAnswersIsClosedWhenTheRequestTimesOut() throws {
        var terminal: Terminal? = try Terminal()
        let tty = terminal!.slavePath
        let agent = try Self.agent(terminal!, extraConfig: "approval_timeout = \"2s\"")
        try agent.start()
        let client = try AgentClient(path: agent.clientSocket)
        let id = try Self.ask(client)
        try terminal!.waitFor("<Deny>")
        // The person's terminal goes away mid-dialog.
        terminal = nil
        let deadline = Date().addingTimeInterval(20)
        while !Self.dialogs(on: tty).isEmpty && Date() < deadline { _ = poll(nil, 0, 100) }
        #expect(Self.dialogs(on: tty).isEmpty, "the orphaned pinentry was killed")
        let status = try client.call("session_wait", JSONObject(["id": .string(id), "timeout": JSONValue(20)]))
        #expect(status["status"] == "expired" || status["status"] == "denied", "\(status.serialized)")
    }
}
