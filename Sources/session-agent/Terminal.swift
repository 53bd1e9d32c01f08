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
        FileHandle.standardError.write(Data(prompt.utf8))
        var saved = termios()
        let isTTY = tcgetattr(STDIN_FILENO, &saved) == 0
        if isTTY {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
        }
        defer {
            if isTTY {
                tcsetattr(STDIN_FILENO, TCSANOW, &saved)
                FileHandle.standardError.write(Data("\n".utf8))
            }
        }
        guard var line = readLine(strippingNewline: true) else { return nil }
        defer { line.withUTF8 { SecretBytes.zero(UnsafeMutableRawBufferPointer(mutating: UnsafeRawBufferPointer($0))) } }
        return SecretBytes(utf8: line)
    }

    /// A secret typed for a control-socket call's parameters (which are JSON text); nil when
    /// nothing was typed.
    static func readSecretParameter(_ prompt: String) -> JSONValue? {
        guard let secret = readSecret(prompt), secret.count > 0 else { return nil }
        return .string(secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) })
    }
}
