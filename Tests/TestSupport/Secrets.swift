import EthereumCore
import Foundation

/// A passphrase or PIN as the agent holds it.
public func secret(_ text: String) -> SecretBytes { SecretBytes(utf8: text) }

/// A passphrase or PIN file as an operator should keep it: readable by its owner only (the
/// agent refuses one that other users could read).
public func writeSecretFile(_ text: String, _ path: String) throws {
    try? FileManager.default.removeItem(atPath: path)
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
    }
}
