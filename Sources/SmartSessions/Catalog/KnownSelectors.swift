import EthereumCore

/// A function signature people know by name, keyed by its selector, for actions whose request
/// carried no ABI. Several signatures can share a selector (ERC-20 and ERC-721 `approve`).
public enum KnownSelectors {
    public struct Entry: Sendable {
        public var function: ABIFunction
        /// Where the signature comes from: "ERC-20", "Permit2", "Uniswap V3 router", …
        public var family: String
    }

    static let table: [(String, [String])] = [
        ("ERC-20", ["transfer(address to, uint256 amount)", "approve(address spender, uint256 amount)",
                    "transferFrom(address from, address to, uint256 amount)", "increaseAllowance(address spender, uint256 addedValue)",
                    "decreaseAllowance(address spender, uint256 subtractedValue)",
                    "permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)"]),
        ("ERC-721", ["safeTransferFrom(address from, address to, uint256 tokenId)", "safeTransferFrom(address from, address to, uint256 tokenId, bytes data)",
                     "setApprovalForAll(address operator, bool approved)"]),
        ("ERC-1155", ["safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data)",
                      "safeBatchTransferFrom(address from, address to, uint256[] ids, uint256[] amounts, bytes data)"]),
        ("WETH", ["deposit()", "withdraw(uint256 amount)"]),
        ("ERC-4626", ["deposit(uint256 assets, address receiver)", "mint(uint256 shares, address receiver)",
                      "withdraw(uint256 assets, address receiver, address owner)", "redeem(uint256 shares, address receiver, address owner)"]),
        ("token minting", ["mint(address to, uint256 amount)", "burn(uint256 amount)"]),
        ("Permit2", ["approve(address token, address spender, uint160 amount, uint48 expiration)",
                     "transferFrom(address from, address to, uint160 amount, address token)",
                     "permit(address owner, ((address token, uint160 amount, uint48 expiration, uint48 nonce) details, address spender, uint256 sigDeadline) permitSingle, bytes signature)",
                     "lockdown((address token, address spender)[] approvals)", "invalidateNonces(address token, address spender, uint48 newNonce)"]),
        ("Uniswap V2 router", ["swapExactTokensForTokens(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline)",
                               "swapTokensForExactTokens(uint256 amountOut, uint256 amountInMax, address[] path, address to, uint256 deadline)",
                               "swapExactETHForTokens(uint256 amountOutMin, address[] path, address to, uint256 deadline)",
                               "swapExactTokensForETH(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline)",
                               "addLiquidity(address tokenA, address tokenB, uint256 amountADesired, uint256 amountBDesired, uint256 amountAMin, uint256 amountBMin, address to, uint256 deadline)",
                               "removeLiquidity(address tokenA, address tokenB, uint256 liquidity, uint256 amountAMin, uint256 amountBMin, address to, uint256 deadline)"]),
        ("Uniswap V3 router", ["exactInputSingle((address tokenIn, address tokenOut, uint24 fee, address recipient, uint256 deadline, uint256 amountIn, uint256 amountOutMinimum, uint160 sqrtPriceLimitX96) params)",
                               "exactInput((bytes path, address recipient, uint256 deadline, uint256 amountIn, uint256 amountOutMinimum) params)",
                               "exactOutputSingle((address tokenIn, address tokenOut, uint24 fee, address recipient, uint256 deadline, uint256 amountOut, uint256 amountInMaximum, uint160 sqrtPriceLimitX96) params)",
                               "multicall(bytes[] data)", "multicall(uint256 deadline, bytes[] data)"]),
        ("Uniswap SwapRouter02", ["exactInputSingle((address tokenIn, address tokenOut, uint24 fee, address recipient, uint256 amountIn, uint256 amountOutMinimum, uint160 sqrtPriceLimitX96) params)"]),
        ("Uniswap Universal Router", ["execute(bytes commands, bytes[] inputs, uint256 deadline)", "execute(bytes commands, bytes[] inputs)"]),
        ("Aave V3 pool", ["supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode)",
                          "withdraw(address asset, uint256 amount, address to)",
                          "borrow(address asset, uint256 amount, uint256 interestRateMode, uint16 referralCode, address onBehalfOf)",
                          "repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf)",
                          "setUserUseReserveAsCollateral(address asset, bool useAsCollateral)"]),
        ("ERC-7579 account", ["execute(bytes32 mode, bytes executionCalldata)", "installModule(uint256 moduleTypeId, address module, bytes initData)",
                              "uninstallModule(uint256 moduleTypeId, address module, bytes deInitData)"]),
    ]

    static let bySelector: [Selector: [Entry]] = {
        var out: [Selector: [Entry]] = [:]
        for (family, signatures) in table {
            for s in signatures {
                let f = try! ABIFunction(parsing: s)
                out[Selector(bytes: f.selector)!, default: []].append(Entry(function: f, family: family))
            }
        }
        return out
    }()

    public static func entries(for selector: Selector) -> [Entry] { bySelector[selector] ?? [] }

    /// Selectors that change who controls the account when the account calls itself.
    public static let accountAdministration: Set<Selector> = {
        Set(["installModule(uint256,address,bytes)", "uninstallModule(uint256,address,bytes)", "execute(bytes32,bytes)",
             "executeFromExecutor(bytes32,bytes)", "upgradeToAndCall(address,bytes)"].map { Selector(bytes: try! ABIFunction(parsing: $0).selector)! })
    }()

    /// ERC-20 calls that move or approve tokens (the ones ERC20SpendingLimitPolicy understands).
    public static let erc20Transfer = Selector(rawValue: 0xa905_9cbb)
    public static let erc20Approve = Selector(rawValue: 0x095e_a7b3)
    public static let erc20TransferFrom = Selector(rawValue: 0x23b8_72dd)
    public static let erc20IncreaseAllowance = Selector(rawValue: 0x3950_9351)
    public static let tokenMoving: Set<Selector> = [erc20Transfer, erc20Approve, erc20TransferFrom, erc20IncreaseAllowance]
}
