import ArgumentParser
import EthereumCore

struct Keccak: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "keccak-256 of 0x-hex bytes, or of text.",
        discussion: "Input starting with 0x is decoded as hex; anything else is hashed as UTF-8 text.")

    @Argument(help: "0x-prefixed hex, or text.") var data: String
    @Flag(help: "Hash the argument as UTF-8 text even if it starts with 0x.") var text = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let bytes = !text && data.hasPrefix("0x") ? try parseHex(data, what: "data") : Array(data.utf8)
            let hash = Keccak256.hash(bytes)
            return CommandOutput(text: hash.hex, json: .object(JSONObject(["hash": .string(hash.hex)])))
        }
    }
}

struct Checksum: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print an address in its EIP-55 checksummed form.")

    @Argument(help: "An address: 0x and 40 hex digits.") var address: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let a = try parseAddress(address, what: "address")
            return CommandOutput(text: a.checksummed, json: .object(JSONObject(["address": .string(a.checksummed)])))
        }
    }
}

struct Sig: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The 4-byte selector of a function signature.")

    @Argument(help: "A signature, e.g. 'transfer(address to, uint256 amount)'.") var signature: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            let f = try ABIFunction(parsing: signature)
            let selector = Hex.encode(f.selector)
            return CommandOutput(text: selector, json: .object(JSONObject([
                "signature": .string(f.signature), "selector": .string(selector),
            ])))
        }
    }
}
