import Approval
import Crypto
import EthereumCore

/// Where the rules in force were read from: the file, and the SHA-256 of its bytes as the agent
/// read them (what `sha256sum` prints of it). The audit log names both whenever the rules in
/// force change, and every decision the rules make names the SHA-256, as clef attests its rules.
public struct RulesSource: Sendable, Equatable {
    public let path: String
    public let sha256: String

    public init(path: String, bytes: [UInt8]) {
        self.path = path
        sha256 = Hex.encode(Array(SHA256.hash(data: bytes)), prefix: false)
    }
}

/// A rules file read, as the daemon's loader gives it for the agent to put in force.
public typealias LoadedRules = (rules: RulesFile, source: RulesSource)
