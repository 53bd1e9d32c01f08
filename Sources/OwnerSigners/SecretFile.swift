import EthereumCore
import Foundation

/// A passphrase or PIN kept in a file for unattended servers: the file's content without its
/// trailing newline. The bytes read are zeroed once copied into the returned `SecretBytes`.
public enum SecretFile {
    public struct Unreadable: Error, CustomStringConvertible {
        public let description: String
    }

    /// `what` names the file in the error ("passphrase file", "PIN file").
    public static func read(_ path: String, what: String = "passphrase file") throws(Unreadable) -> SecretBytes {
        guard var data = FileManager.default.contents(atPath: path) else { throw Unreadable(description: "cannot read the \(what) \(path)") }
        defer { data.withUnsafeMutableBytes { SecretBytes.zero($0) } }
        var length = data.count
        while length > 0, data[length - 1] == 0x0A || data[length - 1] == 0x0D { length -= 1 }
        return data.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
    }
}
