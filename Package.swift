// swift-tools-version:6.0
import PackageDescription

// Layering (each layer only imports the ones above it):
//   C libraries (system-library targets)  ->  EthereumCore (pure computation + libsecp256k1)
//   ->  SmartSessions (the protocol)  ->  OwnerSigners (hardware and keystore backends)
//   ->  SessionStore, TOML, Approval  ->  Agent (decisions, sockets)  ->  session-agent (the one executable)
let package = Package(
    name: "session-agent",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "session-agent", targets: ["session-agent"]),
        .library(name: "EthereumCore", targets: ["EthereumCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.100.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // The five C libraries, each wrapped once (see the hardware-test-rig notes in docs/).
        .systemLibrary(name: "CSecp256k1", pkgConfig: "libsecp256k1", providers: [.apt(["libsecp256k1-dev"])]),
        .systemLibrary(name: "CFido2", pkgConfig: "libfido2", providers: [.apt(["libfido2-dev"])]),
        .systemLibrary(name: "CPCSC", pkgConfig: "libpcsclite", providers: [.apt(["libpcsclite-dev"])]),
        .systemLibrary(name: "CPKCS11", pkgConfig: "p11-kit-1", providers: [.apt(["libp11-kit-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),

        // Keccak, hex, addresses, 256-bit integers, ABI, EIP-712, secp256k1, P-256, ERC-4337
        // user operations, ERC-7579 executions. No sockets, storage or hardware.
        .target(
            name: "EthereumCore",
            dependencies: [
                "CSecp256k1",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The Smart Sessions v1 protocol: the Session model, ids, EIP-712 enable digests,
        // userOp.signature encodings, policies. Pure computation.
        .target(name: "SmartSessions", dependencies: ["EthereumCore", .product(name: "Crypto", package: "swift-crypto")]),
        // Owner-key backends behind one small signer protocol: keystore files, PKCS#11 tokens,
        // OpenPGP cards, FIDO2 authenticators. Also reports the native libraries linked.
        .target(
            name: "OwnerSigners",
            dependencies: ["EthereumCore", "SmartSessions", "CFido2", "CPCSC", "CPKCS11", "COpenSSL", "CSecp256k1"]
        ),
        // Sessions, their sealed keys, the policy ledger and the audit log, in one SQLite file.
        .target(name: "SessionStore", dependencies: [
            "SmartSessions", "OwnerSigners", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Reads an account's Smart Sessions state from an Ethereum JSON-RPC endpoint. The one
        // module that talks to the network; what it reads is checked, never trusted.
        .target(name: "ChainRPC", dependencies: [
            "EthereumCore", "SmartSessions", .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
        // The configuration and rules files' TOML, read into the JSON tree the agent reads strictly.
        .target(name: "TOML", dependencies: ["EthereumCore"]),
        // How a reviewed request is decided by the declarative rules file.
        .target(name: "Approval", dependencies: ["SmartSessions", "TOML"]),
        // The agent: the decisions (requests, approval, owner signatures, scoped signing), the
        // socket server with peer credentials, configuration, process hardening, the metrics
        // endpoint.
        .target(name: "Agent", dependencies: [
            "CLinuxShims", "CSleepWatch", "Approval", "SessionStore", "OwnerSigners", "SmartSessions", "ChainRPC",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            "TOML", .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The few Linux calls Swift's Glibc module does not expose (ucred, prctl).
        .target(name: "CLinuxShims"),
        // logind's PrepareForSleep, heard on the system bus through sd-bus (lock_on_sleep).
        .target(name: "CSleepWatch", linkerSettings: [.linkedLibrary("systemd")]),
        .executableTarget(
            name: "session-agent",
            dependencies: [
                "EthereumCore",
                "SmartSessions",
                "Approval",
                "Agent",
                "OwnerSigners",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Prints throughput figures; run with `swift run -c release bench`.
        .executableTarget(
            name: "bench",
            dependencies: ["EthereumCore", "SmartSessions", "Agent", "Approval", "OwnerSigners", "SessionStore", "ChainRPC", "CSecp256k1", "COpenSSL", "CPKCS11", "TestSupport"]
        ),

        // The fuzz target: `scripts/fuzz.sh` builds it for libFuzzer; built plainly, it replays inputs.
        .executableTarget(name: "fuzz", dependencies: ["EthereumCore", "SmartSessions", "Approval", "OwnerSigners", "TOML", "Agent", "SessionStore", "ChainRPC", "TestSupport"]),

        .target(name: "TestSupport", dependencies: ["EthereumCore", "OwnerSigners"], path: "Tests/TestSupport", resources: [.copy("Fixtures")]),
        .target(name: "TestTraits", dependencies: ["TestSupport"], path: "Tests/TestTraits"),
        .testTarget(
            name: "EthereumCoreTests",
            dependencies: ["EthereumCore", "TestSupport"]
        ),
        .testTarget(
            name: "SmartSessionsTests",
            dependencies: ["SmartSessions", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(name: "TOMLTests", dependencies: ["TOML", "TestSupport"]),
        .testTarget(name: "ApprovalTests", dependencies: ["Approval", "TestSupport"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "ChainRPC", "CLinuxShims", "TestSupport", "TestTraits", .product(name: "GRDB", package: "GRDB.swift"),
                                                   .product(name: "Logging", package: "swift-log"),
                                                   .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "SessionStoreTests", dependencies: ["SessionStore", "TestSupport", "TestTraits", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "OwnerSignersTests", dependencies: ["OwnerSigners", "TestSupport", "TestTraits", "CFido2", "CPCSC", "CPKCS11"]),
        .testTarget(
            name: "CLITests",
            dependencies: ["session-agent", "TestSupport"]
        ),
    ]
)
