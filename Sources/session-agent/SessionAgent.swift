import ArgumentParser

@main
struct SessionAgent: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "session-agent",
        abstract: "A hardware-backed signer agent for Smart Sessions (ERC-7579 session keys).",
        version: version,
        subcommands: [Serve.self, Request.self, SignUserOp.self, SignTypedData.self, Sessions.self, Revoke.self, AccountCommands.self, Approve.self, Lock.self, Unlock.self, Audit.self, RPC.self, Owner.self, PKCS11Tokens.self, OpenPGPCardCommands.self, FIDO2Commands.self, Store.self,
                      Inspect.self, DecodeSignature.self, DecodeMessageSignature.self, Rules.self, Eth.self, Version.self]
    )
}
