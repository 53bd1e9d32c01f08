import EthereumCore

/// The deployed contracts of spec §1 (CREATE2, the same on every chain).
public enum SmartSessionAddresses {
    static func a(_ s: String) -> Address { try! Address(s) }

    public static let smartSession = a("0x00000000008bDABA73cD9815d79069c247Eb4bDA")
    /// The Dec-2024 build (registry era); it hashes exactly like the current one.
    public static let olderSmartSession = a("0x00000000002B0eCfbD0496EE71e01257dA0E37DE")
    public static let compatibilityFallback = a("0x000000000052e9685932845660777DF43C2dC496")
    /// OwnableValidator that verifies enable digests and session signatures over the raw hash.
    public static let ownableValidator = a("0x000000000013fdB5234E4E3162a810F54d9f7E98")
    /// The older OwnableValidator, which prefixes every hash with EIP-191.
    public static let olderOwnableValidator = a("0x0000000000E9E6E96Bcaa3c113187CdB7E38AED9")
    public static let rhinestoneWebAuthnValidator = a("0x0000000000578c4cB0e472a5462da43C495C3F33")
    /// What module-sdk calls WEBAUTHN_VALIDATOR_ADDRESS: ZeroDev's passkey validator.
    public static let zeroDevWebAuthnValidator = a("0x7ab16Ff354AcB328452F1D445b3Ddee9a91e9e69")
}
