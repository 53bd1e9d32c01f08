import EthereumCore

extension SessionReview {
    /// The review as people read it in a terminal. With `colors`, severities and headings are
    /// highlighted with ANSI escapes.
    public func text(colors: Bool = false) -> String {
        func paint(_ s: String, _ code: String) -> String { colors ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        func bold(_ s: String) -> String { paint(s, "1") }
        func severity(_ s: Severity) -> String {
            let label = "[\(s.rawValue)]"
            switch s {
            case .critical: return paint(label, "1;31")
            case .high: return paint(label, "31")
            case .warning: return paint(label, "33")
            case .info: return paint(label, "36")
            }
        }
        func initData(_ b: [UInt8]) -> String {
            b.count <= 64 ? (b.isEmpty ? "empty" : Hex.encode(b)) : "\(b.count) bytes, keccak \(Keccak256.hash(b).hex)"
        }
        func policy(_ p: PolicyView, indent: String) -> [String] {
            let name = p.kind.map { $0.rawValue + (p.isCurrentDeployment ? "" : " (older deployment)") } ?? paint("UNKNOWN POLICY", "1;31")
            var lines = ["\(indent)- \(name) \(p.address.checksummed)"]
            lines += p.meaning.map { "\(indent)    \($0)" }
            lines.append("\(indent)    init data: \(initData(p.initData))")
            return lines
        }

        var out: [String] = []
        out.append(bold("Session request") + (label.map { ": \($0)" } ?? "") + "  (\(mode), \(format.rawValue) format)")
        out.append("  account       \(account.checksummed)" + (accountKind.map { " (\($0.rawValue))" } ?? ""))
        out.append("  chains        " + chains.map { "\(Chains.label($0.chainId)) enable nonce \($0.nonce)" }.joined(separator: ", "))
        var v = "  session key   \(validator.name) \(validator.address.checksummed)"
        if let t = validator.threshold { v += ": \(t) of [\(validator.keys.map(\.checksummed).joined(separator: ", "))]" } else { v += ", init data \(initData(validator.initData))" }
        out.append(v)
        out.append("  salt          \(salt.hex)")
        out.append("  permissionId  \(permissionId.hex)")
        out.append("  paymaster     \(flags.permitERC4337Paymaster ? "permitted" : "not permitted")")
        out.append("  key export    \(exportKey ? "requested: the client receives the key" : "no: the key stays in the agent")")

        out.append("")
        out.append(bold("Session-wide policies") + " (checked on every user operation)")
        out += userOpPolicies.isEmpty ? ["  none"] : userOpPolicies.flatMap { policy($0, indent: "  ") }

        out.append("")
        out.append(bold("Allowed calls"))
        if actions.isEmpty { out.append("  none") }
        for (i, a) in actions.enumerated() {
            let head: String
            switch a.kind {
            case .fallback: head = "ANY CALL to any contract without its own policies (fallback action)"
            case .smartSessionCall: head = "calls to SmartSession itself (admin access)"
            case .valueTransfer: head = "plain native transfers to \(a.target.checksummed)" + (a.targetName.map { " (\($0))" } ?? "")
            case .call:
                head = "\(a.target.checksummed)" + (a.targetName.map { " (\($0))" } ?? "") + "." + (a.function ?? "unknown function")
                    + " [\(a.selector.hex)" + (a.functionSource.map { ", \($0)" } ?? "") + "]"
            }
            out.append("  \(i + 1). \(head)")
            out += a.policies.isEmpty ? ["     no policies: every call is rejected"] : a.policies.flatMap { policy($0, indent: "     ") }
        }

        out.append("")
        out.append(bold("ERC-1271 message signing"))
        if erc7739Contexts.isEmpty && erc1271Policies.isEmpty { out.append("  none") }
        for c in erc7739Contexts {
            // The names are the client's: quoted, and with what could disguise them written out
            // (String(reflecting:) leaves text-direction overrides, zero-width and C1 characters).
            let names = c.contentNames.map { DisplayText.escaped(String(reflecting: $0)) }
            let domain = appDomains[c.appDomainSeparator].map { " (\($0))" } ?? ""
            out.append("  app domain \(c.appDomainSeparator.hex)\(domain): " + (names.isEmpty ? "no content types" : names.joined(separator: ", ")))
        }
        out += erc1271Policies.flatMap { policy($0, indent: "  ") }

        out.append("")
        // Each chain keeps its own policy state, and their native coins differ: a sum across
        // chains would mean nothing, so the figures are each chain's.
        out.append(bold("Worst case over the session's life" + (chains.count > 1 ? ", on each of its \(chains.count) chains" : "")))
        func bound(_ b: Bound, decimals: Int?, unit: String, baseUnit: String = "base units") -> String {
            switch b {
            case .limited(let v): return decimals.map { "\(Amounts.format(v, decimals: $0)) \(unit) (\(v) \(baseUnit))" } ?? "\(v) \(baseUnit)"
            case .unbounded(let why): return paint("UNBOUNDED", "1;31") + ": \(why)"
            }
        }
        out.append("  native value: \(bound(exposure.native, decimals: 18, unit: "ETH", baseUnit: "wei"))")
        for t in exposure.tokens {
            out.append("  \(t.symbol ?? "token") \(t.token.checksummed): \(bound(t.bound, decimals: t.decimals, unit: t.symbol ?? ""))")
        }
        for o in exposure.otherContracts { out.append("  not bounded by policies: \(o)") }

        out.append("")
        out.append(bold("Risks"))
        out += risks.isEmpty ? ["  none found"] : risks.map { "  \(severity($0.severity)) \($0.code): \($0.message)" }

        out.append("")
        out.append(bold("Digests"))
        out.append("  signed flags  permitGenericPolicy=\(flags.permitGenericPolicy) permitAdminAccess=\(flags.permitAdminAccess) ignoreSecurityAttestations=\(flags.ignoreSecurityAttestations) permitERC4337Paymaster=\(flags.permitERC4337Paymaster)")
        for c in chains { out.append("  sessionDigest \(Chains.label(c.chainId)): \(c.sessionDigest.hex)") }
        if ownerDigest == multichainDigest {
            out.append("  owner signs   \(multichainDigest.hex)")
        } else {
            out.append("  multichain    \(multichainDigest.hex)")
            let domain = chains.count == 1 ? "on this chain" : "for every chain (chain id 0)"
            out.append("  owner signs   \(ownerDigest.hex) (Kernel's wrapping of it, in the account's EIP-712 domain \(domain): Kernel \(DisplayText.escaped(String(reflecting: kernelVersion))))")
        }
        return out.joined(separator: "\n")
    }
}
