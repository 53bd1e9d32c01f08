import EthereumCore

/// A passphrase or PIN as the agent holds it.
public func secret(_ text: String) -> SecretBytes { SecretBytes(utf8: text) }
