/// Names of the chains people use, for rendering. Unknown ids render as "chain N".
public enum Chains {
    public static let names: [UInt64: String] = [
        1: "Ethereum", 10: "OP Mainnet", 56: "BNB Smart Chain", 100: "Gnosis", 137: "Polygon",
        324: "zkSync Era", 8453: "Base", 42161: "Arbitrum One", 42220: "Celo", 43114: "Avalanche C-Chain",
        59144: "Linea", 534352: "Scroll", 81457: "Blast", 7777777: "Zora",
        11155111: "Sepolia", 17000: "Holesky", 560048: "Hoodi", 84532: "Base Sepolia", 421614: "Arbitrum Sepolia",
        11155420: "OP Sepolia", 80002: "Polygon Amoy",
    ]

    /// Chains whose assets have no monetary value (shown as a reassurance, never as a reason to sign).
    public static let testnets: Set<UInt64> = [11155111, 17000, 560048, 84532, 421614, 11155420, 80002]

    public static func name(_ id: UInt64) -> String { names[id] ?? "chain \(id)" }

    /// "Sepolia (11155111)"
    public static func label(_ id: UInt64) -> String { names[id].map { "\($0) (\(id))" } ?? "chain \(id)" }
}
