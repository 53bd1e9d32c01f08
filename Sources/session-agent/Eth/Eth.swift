import ArgumentParser

/// Foundry `cast`-style tools for checking what is signed.
struct Eth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ethereum tools to check what you sign: hashes, ABI, typed data, user operations.",
        subcommands: [
            Keccak.self, Sig.self, AbiEncode.self, AbiDecode.self, Calldata.self, CalldataDecode.self,
            TypedDataHash.self, UserOpHash.self, Recover.self, Checksum.self, Execute.self,
        ]
    )
}
