import EthereumCore
import Foundation
import OwnerSigners
import Testing
import TestSupport

@Suite("Keystore v3 files interoperate with eth-account")
struct KeystoreTests {
    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func decryptsWhatEthAccountWrites() throws {
        for c in try Oracle.cases("keystore", count: 100) {
            let keystore = try Keystore(json: c["keystore"]!)
            let key = try keystore.decrypt(passphrase: secret(try c.string("passphrase")))
            #expect(key.address == (try Address(try c.string("address"))), "seed \(Oracle.seed)")
            #expect(throws: KeystoreError.wrongPassphrase) { try keystore.decrypt(passphrase: secret(try c.string("passphrase") + "!")) }
        }
    }

    @Test(.enabled(if: Oracle.isAvailable, "\(Oracle.unavailableReason ?? "")"))
    func ethAccountDecryptsWhatWeWrite() throws {
        var lines: [String] = []
        var expected: [Address] = []
        for i in 0..<20 {
            let key = Secp256k1.PrivateKey.generate()
            let passphrase = "pässwörd \(i) 🙂"
            let kdf: Keystore.KDF = i % 2 == 0 ? .scrypt(n: 1024, r: 8, p: 1) : .pbkdf2(iterations: 1000)
            let keystore = try Keystore.encrypt(key, passphrase: secret(passphrase), kdf: kdf)
            #expect(try Keystore(json: keystore.json) == keystore)
            #expect(try keystore.decrypt(passphrase: secret(passphrase)).address == key.address)
            lines.append(JSONValue.object(JSONObject(["keystore": keystore.json, "passphrase": .string(passphrase)])).serialized)
            expected.append(key.address)
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("keystores-\(UUID()).jsonl")
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let output = try Oracle.run(arguments: [Oracle.packageRoot.appendingPathComponent("Tests/oracle/oracle.py").path, "keystore-decrypt", file.path])
        let addresses = try output.split(separator: "\n").map { try Address(try JSONValue(parsing: String($0)).string("address")) }
        #expect(addresses == expected)
    }

    @Test func rejectsMalformedAndHostileFiles() throws {
        let good = try Keystore.encrypt(Secp256k1.PrivateKey.generate(), passphrase: secret("p"), kdf: .pbkdf2(iterations: 10)).json
        func mutated(_ change: (inout JSONObject) -> Void) -> JSONValue {
            var root = good.objectValue!
            change(&root)
            return .object(root)
        }
        func crypto(_ change: @escaping (inout JSONObject) -> Void) -> JSONValue {
            mutated { root in
                var c = root["crypto"]!.objectValue!
                change(&c)
                root["crypto"] = .object(c)
            }
        }
        #expect(throws: KeystoreError.self) { try Keystore(json: mutated { $0["version"] = JSONValue(2) }) }
        #expect(throws: KeystoreError.self) { try Keystore(json: crypto { $0["cipher"] = "aes-256-gcm" }) }
        #expect(throws: KeystoreError.self) { try Keystore(json: crypto { $0["kdf"] = "argon2" }) }
        #expect(throws: KeystoreError.self) { try Keystore(json: crypto { $0["mac"] = "00" }) }
        #expect(throws: KeystoreError.self) {
            try Keystore(json: crypto { $0["kdf"] = "scrypt"; $0["kdfparams"] = .object(JSONObject(["dklen": JSONValue(32), "n": .number("1073741824"), "r": JSONValue(8), "p": JSONValue(1), "salt": "00"])) })
        }
        // 4 GiB for each approval: refused. 1 GiB is the most.
        #expect(throws: KeystoreError.unsupported("scrypt parameters n=1048576 r=32 p=1 (n must be a power of two up to 2^20, and 128 · n · r bytes at most 1 GiB)")) {
            try Keystore(json: crypto { $0["kdf"] = "scrypt"; $0["kdfparams"] = .object(JSONObject(["dklen": JSONValue(32), "n": JSONValue(1 << 20), "r": JSONValue(32), "p": JSONValue(1), "salt": "00"])) })
        }
        _ = try Keystore(json: crypto { $0["kdf"] = "scrypt"; $0["kdfparams"] = .object(JSONObject(["dklen": JSONValue(32), "n": JSONValue(1 << 19), "r": JSONValue(16), "p": JSONValue(1), "salt": "00"])) })
        #expect(throws: KeystoreError.self) { try Keystore(parsing: Array("{not json".utf8)) }
        // A keystore whose address field lies is refused after decryption.
        let other = Secp256k1.PrivateKey.generate().address
        let lying = try Keystore(json: mutated { $0["address"] = .string(Hex.encode(other.bytes, prefix: false)) })
        #expect(throws: KeystoreError.self) { try lying.decrypt(passphrase: secret("p")) }
    }

    @Test func keystoreOwnerSignsApprovedDigests() async throws {
        let key = try Secp256k1.PrivateKey(hex: "0x" + String(repeating: "22", count: 32))
        let owner = try KeystoreOwner(keystore: try Keystore.encrypt(key, passphrase: secret("correct"), kdf: .scrypt(n: 16, r: 8, p: 1)), location: "test")
        #expect(owner.identity.address == key.address)
        let digest = try Bytes32(hex: "0x73f8de6a9feaf72d8b98a3a9f275900d6747c0a50b3b104d50d59b6a9720bb8d")
        let signature = try await owner.sign(ApprovedDigest(digest: digest, approval: "test"), prompt: { _ in secret("correct") })
        // The spec's worked example: the owner's RFC 6979 signature of the multichain digest.
        #expect(signature.hex == "0xe1a26d3f5e808a2c2ffdb7f16cc38e47a45b75dcad6c325d71ed54427b2c876576100955797b9fdd5761543a4f605ec10798576150634420b5ac001ea91d50cd1c")
        await #expect(throws: OwnerSignerError.wrongSecret("wrong passphrase for \(key.address)")) {
            try await owner.sign(ApprovedDigest(digest: digest, approval: "test"), prompt: { _ in secret("wrong") })
        }
        await #expect(throws: OwnerSignerError.self) {
            try await owner.sign(ApprovedDigest(digest: digest, approval: "test"), prompt: { _ in throw CancellationError() })
        }
    }
}

/// Passphrase and PIN files are refused, as ssh refuses a private key file, when other users
/// could read them or anyone but their owner could change them; a group may read one.
@Suite("Passphrase and PIN files")
struct SecretFileTests {
    @Test func aFileOthersCouldReadOrChangeIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeSecretFile("correct horse\n", path)
        #expect(try SecretFile.read(path).withUnsafeBytes { Array($0) } == Array("correct horse".utf8))
        for (mode, refused) in [(0o640, false), (0o644, true), (0o604, true), (0o620, true), (0o602, true), (0o400, false)] {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            // A command's one read of a regular file is held to the same rule as the agent's.
            for read in [{ try SecretFile.read(path, what: "PIN file") }, { try SecretFile.readOnce(path, what: "PIN file") }] {
                if refused {
                    #expect { _ = try read() } throws: { error in
                        "\(error)".contains("the PIN file \(path) is open to other users (mode \(String(mode, radix: 8)))")
                    }
                } else {
                    #expect(try read().count == 13)
                }
            }
        }
        if getuid() == 0 {
            try FileManager.default.setAttributes([.posixPermissions: 0o600, .ownerAccountID: 65534], ofItemAtPath: path)
            #expect { _ = try SecretFile.read(path) } throws: { error in "\(error)".contains("belongs to uid 65534") }
        }
    }

    /// The line end a file was saved with is not part of the secret, a Windows one included.
    @Test func theLineEndIsNotPartOfTheSecret() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for (content, secret) in [("correct horse", "correct horse"), ("correct horse\r\n", "correct horse"), ("correct horse\n\n", "correct horse"),
                                  ("correct\nhorse\n", "correct\nhorse"), (" correct horse \n", " correct horse ")] {
            try writeSecretFile(content, path)
            #expect(try SecretFile.read(path).withUnsafeBytes { String(decoding: $0, as: UTF8.self) } == secret, "\(content.debugDescription)")
            #expect(try SecretFile.readOnce(path).withUnsafeBytes { String(decoding: $0, as: UTF8.self) } == secret, "\(content.debugDescription)")
        }
    }

    /// A file that does not end (a device, named by mistake) or is far longer than a secret is
    /// refused after 64 KiB, not read until memory runs out; a long passphrase is still read.
    @Test func aFileLongerThanASecretIsRefused() throws {
        #expect { _ = try SecretFile.readOnce("/dev/zero", what: "PIN file") } throws: { error in
            "\(error)" == "the PIN file /dev/zero goes on past 64 KiB"
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeSecretFile(String(repeating: "x", count: SecretFile.maximumSize), path)
        #expect(try SecretFile.read(path).count == SecretFile.maximumSize)
        #expect(try SecretFile.readOnce(path).count == SecretFile.maximumSize)
        try writeSecretFile(String(repeating: "x", count: SecretFile.maximumSize + 1), path)
        #expect(throws: SecretFile.Unreadable.self) { try SecretFile.read(path) }
        #expect(throws: SecretFile.Unreadable.self) { try SecretFile.readOnce(path) }
    }

    /// The agent reads a secret file again at each use and must not wait on one: it reads only
    /// regular files, and refuses a FIFO nobody writes to at once. A command reads its secret
    /// once, so `--passphrase-file <(pass show store)` works there.
    @Test func onlyACommandReadsAPipe() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fifo = directory + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        for (path, kind) in [(fifo, "a FIFO"), ("/dev/null", "a character device"), (directory, "a directory")] {
            #expect { _ = try SecretFile.read(path, what: "PIN file") } throws: { error in
                "\(error)".hasPrefix("the PIN file \(path) is \(kind), not a regular file")
            }
        }
        #expect { _ = try SecretFile.readOnce(directory) } throws: { error in "\(error)" == "the passphrase file \(directory) is a directory" }

        let writer = Thread { try? Data("correct horse\n".utf8).write(to: URL(fileURLWithPath: fifo)) }
        writer.start()
        #expect(try SecretFile.readOnce(fifo).withUnsafeBytes { Array($0) } == Array("correct horse".utf8))
    }
}
