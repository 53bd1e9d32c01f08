import EthereumCore

/// An ERC-20 token as the renderer shows amounts of it.
public struct TokenInfo: Hashable, Sendable {
    public var chainId: UInt64
    public var address: Address
    public var symbol: String
    public var decimals: Int

    public init(chainId: UInt64, address: Address, symbol: String, decimals: Int) {
        self.chainId = chainId
        self.address = address
        self.symbol = symbol
        self.decimals = decimals
    }
}

/// Major tokens on major chains, extensible from a JSON list
/// (`[{"chainId": 1, "address": "0x…", "symbol": "USDC", "decimals": 6}]`, or a list in the
/// Token Lists format, `{"name": …, "tokens": [those]}`).
public struct TokenList: Sendable {
    private var byKey: [Key: TokenInfo] = [:]
    private var bySymbol: [String: [TokenInfo]] = [:]
    private struct Key: Hashable { var chainId: UInt64; var address: Address }

    public init(_ tokens: [TokenInfo] = TokenList.builtIn) {
        for t in tokens { insert(t) }
    }

    private mutating func insert(_ t: TokenInfo) {
        if let old = byKey[Key(chainId: t.chainId, address: t.address)] {
            bySymbol[old.symbol.lowercased()]?.removeAll { $0 == old }
        }
        byKey[Key(chainId: t.chainId, address: t.address)] = t
        bySymbol[t.symbol.lowercased(), default: []].append(t)
    }

    public func token(chainId: UInt64, address: Address) -> TokenInfo? { byKey[Key(chainId: chainId, address: address)] }

    /// The token at `address` on `chains`; nil when none knows it, or when two know it by
    /// different symbols or decimals: its amounts would read differently on each.
    public func token(chains: [UInt64], address: Address) -> TokenInfo? {
        let known = chains.compactMap { token(chainId: $0, address: address) }
        guard let first = known.first, known.allSatisfy({ $0.symbol == first.symbol && $0.decimals == first.decimals }) else { return nil }
        return first
    }

    /// `amount` of the token at `address` as people read it: "100.5 USDC" where the list knows
    /// the token on one of `chains`, "100500000 base units" where it does not.
    public func amount(_ amount: UInt256, of address: Address, chains: [UInt64]) -> String {
        guard let t = token(chains: chains, address: address) else { return "\(amount) base units" }
        return "\(Amounts.format(amount, decimals: t.decimals)) \(t.symbol)"
    }

    /// A token by symbol on one of `chains` (for amounts written as "100 USDC"); nil when no
    /// chain knows it. A symbol that names two tokens on one chain, or tokens of different
    /// decimals on two, is refused: "100 USDC" would be a guess at which token, or at how many
    /// base units.
    public func token(symbol: String, chains: [UInt64]) throws(SmartSessionError) -> TokenInfo? {
        let found = (bySymbol[symbol.lowercased()] ?? []).filter { chains.contains($0.chainId) }.sorted { $0.chainId < $1.chainId }
        guard let first = found.first else { return nil }
        for (a, b) in zip(found, found.dropFirst()) where a.chainId == b.chainId {
            throw SmartSessionError("\(symbol) names two tokens on \(Chains.label(a.chainId)), \(a.address) and \(b.address); give the token's address")
        }
        if let other = found.first(where: { $0.decimals != first.decimals }) {
            throw SmartSessionError("\(symbol) has \(first.decimals) decimals on \(Chains.label(first.chainId)) but \(other.decimals) on \(Chains.label(other.chainId)); give the amount in base units")
        }
        return first
    }

    /// Adds (or replaces) tokens from a JSON list. A symbol is shown in reviews beside amounts,
    /// so one that could disguise what they show (a control, text-direction or invisible
    /// character, or a space) is refused.
    public mutating func add(json: JSONValue) throws(SmartSessionError) {
        // The Token Lists format keeps the tokens under "tokens", beside its name and version.
        guard let items = json.arrayValue ?? json["tokens"]?.arrayValue else {
            throw SmartSessionError("a token list is a JSON array of tokens, or an object with one under \"tokens\"")
        }
        for (i, item) in items.enumerated() {
            let f = try JSONFields(item, path: "tokens[\(i)]")
            try f.only(["chainId", "address", "symbol", "decimals", "name", "logoURI", "tags", "extensions"])
            guard let decimals = try f.integer("decimals").int, decimals <= 77 else {
                throw SmartSessionError("tokens[\(i)].decimals: out of range")
            }
            let symbol = try f.string("symbol")
            _ = try f.displayText("symbol")   // refuses what could disguise the review, as for a label
            guard !symbol.isEmpty, !symbol.contains(where: \.isWhitespace) else {
                throw SmartSessionError("\(f.field("symbol")): a symbol is one word, as amounts name it (\"100 USDC\")")
            }
            insert(TokenInfo(chainId: try f.uint64("chainId"), address: try f.address("address"), symbol: symbol, decimals: decimals))
        }
    }

    static func t(_ chain: UInt64, _ address: String, _ symbol: String, _ decimals: Int) -> TokenInfo {
        TokenInfo(chainId: chain, address: try! Address(address), symbol: symbol, decimals: decimals)
    }

    public static let builtIn: [TokenInfo] = [
        t(1, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USDC", 6),
        t(1, "0xdAC17F958D2ee523a2206206994597C13D831ec7", "USDT", 6),
        t(1, "0x6B175474E89094C44Da98b954EedeAC495271d0F", "DAI", 18),
        t(1, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "WETH", 18),
        t(1, "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", "WBTC", 8),
        t(8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USDC", 6),
        t(8453, "0x4200000000000000000000000000000000000006", "WETH", 18),
        t(10, "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85", "USDC", 6),
        t(10, "0x4200000000000000000000000000000000000006", "WETH", 18),
        t(42161, "0xaf88d065e77c8cC2239327C5EDb3A432268e5831", "USDC", 6),
        t(42161, "0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9", "USDT", 6),
        t(42161, "0x82aF49447D8a07e3bd95BD0d56f35241523fBab1", "WETH", 18),
        t(137, "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", "USDC", 6),
        t(137, "0xc2132D05D31c914a87C6611C10748AEb04B58e8F", "USDT", 6),
        t(11155111, "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238", "USDC", 6),
        t(84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", 6),
    ]
}

/// Formats integer token amounts with decimals, and parses them back.
public enum Amounts {
    /// "0.05 ETH" for 5e16 wei: native value, whatever the chain calls its coin.
    public static func eth(_ wei: UInt256) -> String { "\(format(wei, decimals: 18)) ETH" }

    /// "100.5" for 100500000 with 6 decimals; no rounding, trailing zeros dropped.
    public static func format(_ value: UInt256, decimals: Int) -> String {
        guard decimals > 0 else { return value.description }
        var digits = value.description
        if digits.count <= decimals { digits = String(repeating: "0", count: decimals - digits.count + 1) + digits }
        let split = digits.index(digits.endIndex, offsetBy: -decimals)
        let fraction = digits[split...].reversed().drop { $0 == "0" }.reversed()
        return String(digits[..<split]) + (fraction.isEmpty ? "" : "." + String(fraction))
    }

    /// Parses "100", "0.25" into base units with `decimals`; more fraction digits than the token
    /// has is an error (never rounded).
    public static func parse(_ text: String, decimals: Int) throws(SmartSessionError) -> UInt256 {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, !parts[0].isEmpty || parts.count == 2, parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }) else {
            throw SmartSessionError("invalid amount \(String(reflecting: text))")
        }
        let fraction = parts.count == 2 ? String(parts[1]) : ""
        guard fraction.count <= decimals else {
            throw SmartSessionError("\(text) has more than \(decimals) decimals")
        }
        let whole = parts[0].isEmpty ? "0" : String(parts[0])
        do {
            return try UInt256(parsing: whole + fraction + String(repeating: "0", count: decimals - fraction.count))
        } catch { throw SmartSessionError("amount \(text): \(error)") }
    }
}
