import EthereumCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Prompts on the controlling terminal: answers and secrets never go through arguments or
/// the environment.
enum Terminal {
    /// A line for the person at the terminal (on standard error, with the prompts).
    static func say(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Prints `text`; at a terminal it is shorter than, through the pager ($PAGER, else less), as
    /// git does: a review of thousands of calls would scroll out of reach, and the question comes
    /// once the pager is closed. A pager that cannot run leaves the text printed as it is.
    static func show(_ text: String) {
        var size = winsize()
        let environment = ProcessInfo.processInfo.environment
        let command = environment["PAGER"] ?? "less"
        let lines = text.utf8.count(where: { $0 == UInt8(ascii: "\n") }) + 1
        guard !command.isEmpty, isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0,
              lines >= Int(size.ws_row) else {
            return print(text)
        }
        let pager = Process()
        pager.executableURL = URL(fileURLWithPath: "/bin/sh")
        pager.arguments = ["-c", command]
        // less: quit at the end of the text if it fits after all, and leave the screen as it was.
        pager.environment = environment.merging(["LESS": "FX"]) { given, _ in given }
        let input = Pipe()
        pager.standardInput = input
        do { try pager.run() } catch { return print(text) }
        // The person may quit the pager before it read everything.
        signal(SIGPIPE, SIG_IGN)
        try? input.fileHandleForWriting.write(contentsOf: Data((text + "\n").utf8))
        try? input.fileHandleForWriting.close()
        pager.waitUntilExit()
        // The shell's "not found" and "cannot run": the text was never shown.
        if [126, 127].contains(pager.terminationStatus) { print(text) }
    }

    static func ask(_ prompt: String) -> String? {
        FileHandle.standardError.write(Data(prompt.utf8))
        return readLine(strippingNewline: true)
    }

    /// A yes or a no to a `[y/N]` question (an empty answer is no); anything else is asked again,
    /// so that a typo does not decide. Nil at the end of the input.
    static func yesOrNo(_ prompt: String) -> Bool? {
        while let answer = ask(prompt)?.trimmingCharacters(in: .whitespaces).lowercased() {
            switch answer {
            case "y", "yes": return true
            case "", "n", "no": return false
            default: say("Please answer y or n.")
            }
        }
        return nil
    }

    /// Reads a line without echo; nil at end of input.
    static func readSecret(_ prompt: String) -> SecretBytes? {
        // Echo off before the prompt shows, as readpassphrase(3) does: what is typed as soon as
        // it shows is not echoed, and a signal from then on finds the terminal's modes saved.
        let isTTY = SilentTerminal.start()
        FileHandle.standardError.write(Data(prompt.utf8))
        defer {
            if isTTY { SilentTerminal.end() }
            // Nothing echoed the answer's newline (echo was off, or the answer came from a pipe):
            // what is printed next starts a line of its own.
            FileHandle.standardError.write(Data("\n".utf8))
        }
        guard var line = readLine(strippingNewline: true) else { return nil }
        defer { line.withUTF8 { SecretBytes.zero(UnsafeMutableRawBufferPointer(mutating: UnsafeRawBufferPointer($0))) } }
        return SecretBytes(utf8: line)
    }

    /// The owners' passphrases and PINs the agent says it lacks (`asks`, `onDevice`, as
    /// `pending_secret` and `account_prepare` answer), typed here owner by owner in the agent's
    /// words (which key or token, and whether it is the PIN's last try), as `secrets` for the
    /// call that signs. Those entered on the device itself are only pointed to.
    static func ownerSecrets(_ needed: JSONValue?, asking: Bool = true) -> JSONObject {
        for onDevice in needed?["onDevice"]?.arrayValue ?? [] {
            if let prompt = onDevice["prompt"]?.stringValue { say(prompt + ": give it on the device when it asks") }
        }
        var secrets = JSONObject()
        for ask in needed?["asks"]?.arrayValue ?? [] where asking {
            guard let owner = ask["owner"]?.stringValue, let prompt = ask["prompt"]?.stringValue, let secret = readSecretParameter(prompt + ": ") else { continue }
            secrets[owner] = secret
        }
        return secrets
    }

    /// A secret typed for a control-socket call's parameters (which are JSON text); nil when
    /// nothing was typed.
    static func readSecretParameter(_ prompt: String) -> JSONValue? {
        guard let secret = readSecret(prompt), secret.count > 0 else { return nil }
        return .string(secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) })
    }
}

/// Echo off while a secret is typed, and back on whatever ends the prompt. Ctrl-C (or Ctrl-\\,
/// a kill, a hang-up) used to end the command with echo still off, and the shell then took the
/// next commands blind. As readpassphrase(3) does: such a signal puts the terminal back and then
/// does what it would have done; Ctrl-Z puts it back while the command is stopped, and turns
/// echo off again once it is continued.
private enum SilentTerminal {
    // Read by the signal handler: set before it is installed, and not changed while it is. On
    // the heap, where they are as large as C's termios: Swift 6.3 lays a global of it out without
    // the padding after c_cc, 57 bytes, and tcgetattr writes all 60 (AddressSanitizer caught it;
    // swiftlang/swift#91387, fixed after 6.3).
    nonisolated(unsafe) static let echoing = UnsafeMutablePointer<termios>.allocate(capacity: 1)
    nonisolated(unsafe) static let quiet = UnsafeMutablePointer<termios>.allocate(capacity: 1)
    /// What each signal did before `start`, for `end` to put back.
    nonisolated(unsafe) static var before: [(signal: Int32, handler: __sighandler_t?)] = []

    /// Turns echo off, when standard input is a terminal (whether it is, returned).
    static func start() -> Bool {
        guard tcgetattr(STDIN_FILENO, echoing) == 0 else { return false }
        quiet.pointee = echoing.pointee
        quiet.pointee.c_lflag &= ~tcflag_t(ECHO)
        for signal in [SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGTSTP] {
            let handler = Glibc.signal(signal) { SilentTerminal.handle($0) }
            // One the command was started ignoring (a hang-up, under nohup) stays ignored.
            if unsafeBitCast(handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { Glibc.signal(signal, SIG_IGN) }
            before.append((signal, handler))
        }
        tcsetattr(STDIN_FILENO, TCSANOW, quiet)
        return true
    }

    static func end() {
        tcsetattr(STDIN_FILENO, TCSANOW, echoing)
        for (signal, handler) in before { Glibc.signal(signal, handler) }
        before = []
    }

    /// Only async-signal-safe calls: tcsetattr, signal, sigprocmask, raise.
    static func handle(_ signal: Int32) {
        tcsetattr(STDIN_FILENO, TCSANOW, echoing)
        Glibc.signal(signal, SIG_DFL)
        var only = sigset_t()
        sigemptyset(&only)
        sigaddset(&only, signal)
        sigprocmask(SIG_UNBLOCK, &only, nil)
        raise(signal)
        // Back here only after a stop, once the command is continued (`fg`).
        Glibc.signal(signal) { SilentTerminal.handle($0) }
        tcsetattr(STDIN_FILENO, TCSANOW, quiet)
    }
}
