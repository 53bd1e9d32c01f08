import Agent
import EthereumCore
import Foundation
import OwnerSigners
import SmartSessions
import Testing
import TestSupport

@Suite("session-agent.toml")
struct ConfigurationTests {
    /// The example in docs/configuration.md, with a real owner address in place of the ellipsis.
    static var documented: String {
        let doc = try! String(contentsOf: Oracle.packageRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        let block = doc.components(separatedBy: "```toml\n")[1].components(separatedBy: "```")[0]
        return block.replacingOccurrences(of: "\"0x…\"", with: "\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"")
    }

    @Test func theDocumentedExampleParses() throws {
        let c = try AgentConfiguration(toml: Self.documented, relativeTo: "/etc/session-agent", environment: [:])
        #expect(c.dataDirectory == "/var/lib/session-agent" && c.socketDirectory == "/run/session-agent")
        #expect(c.rulesFile == "/etc/session-agent/rules.toml" && c.tokensFile == "/etc/session-agent/tokens.json")
        #expect(c.approvalTimeout == 300 && c.partialMessageTimeout == 30 && c.connectionsPerUID == 64)
        #expect(c.allowedUIDs == [1001] && c.allowedGIDs == [998])
        #expect(c.pinentry == ["/usr/bin/pinentry-curses", "--ttyname", "/dev/pts/1"])
        #expect(c.pkcs11Module == "/usr/lib/softhsm/libsofthsm2.so" && c.storePINFile == "/etc/session-agent/hsm.pin")
        #expect(c.pkcs11Timeout == 20)
        #expect(c.metricsListen?.host == "127.0.0.1" && c.metricsListen?.port == 9464)
        #expect(c.fido2Devices == ["unix:/run/session-agent/fido2.sock"])
        for bad in ["fido2_devices = \"unix:/x\"", "fido2_devices = [\"unix:x\"]", "fido2_devices = [\"/home/x\"]", "fido2_devices = [1]"] {
            #expect(throws: AgentError.self, "\(bad)") { try AgentConfiguration(toml: bad, relativeTo: "/x", environment: [:]) }
        }
        #expect(c.owners == [
            .keystore(path: "/etc/session-agent/owner.json", passphraseFile: "/etc/session-agent/owner.pass"),
            .pkcs11(uri: try PKCS11URI("pkcs11:token=signer;object=owner"), pin: .file("/etc/session-agent/hsm.pin"),
                    address: .address(try Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"))),
            .openPGPCard(serial: "0123ABCD", pin: .file("/etc/session-agent/card.pin"), address: nil),
            .passkey(path: "/etc/session-agent/owner.passkey.json"),
        ])
        #expect(c.accounts.count == 1 && c.accounts[0].kind == .erc7579Reference && c.accounts[0].chains == [11155111, 84532])
        // A chain id as ERC-7715 writes it, in hex.
        #expect(try AccountConfig(json: JSONValue(parsing: #"{"address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "kind": "nexus", "owners": ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"], "chains": ["0xaa36a7", 1]}"#)).chains == [11155111, 1])
        #expect(c.accounts[0].ownerValidator == SmartSessionAddresses.ownableValidator)
        // As accounts_list gives it, it is added back; its derived nonce key must agree.
        #expect(try AccountConfig(json: c.accounts[0].json) == c.accounts[0])
        var wrongKey = c.accounts[0].json.objectValue!
        wrongKey["ownerNonceKey"] = "0x1"
        #expect(throws: AgentError.badRequest("account.ownerNonceKey: derived from the kind and the owner validator, \(c.accounts[0].ownerNonceKey.hexQuantity) here; leave it out")) {
            try AccountConfig(json: .object(wrongKey))
        }
        // A Kernel account's version, for chains the agent cannot ask; kept as accounts_list gives it.
        let kernel = try AgentConfiguration(toml: """
            [[accounts]]
            address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
            kind = "kernel"
            kernel_version = "0.3.0-beta"
            owners = ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"]
            """, relativeTo: "/x", environment: [:]).accounts[0]
        #expect(try kernel.kernelVersion == "0.3.0-beta" && kernel.json["kernelVersion"] == "0.3.0-beta" && AccountConfig(json: kernel.json) == kernel)
        #expect(c.accounts[0].json["kernelVersion"] == nil)
    }

    @Test func defaultsFollowXDG() throws {
        let c = try AgentConfiguration(toml: "", relativeTo: "/x", environment: ["XDG_RUNTIME_DIR": "/run/user/7", "HOME": "/home/u"])
        #expect(c.socketDirectory == "/run/user/7/session-agent" && c.dataDirectory == "/home/u/.local/share/session-agent")
        #expect(c.allowedUIDs.isEmpty && c.allowedGIDs.isEmpty && c.rulesFile == nil && c.pkcs11Timeout == 60)
    }

    /// A PIN or passphrase systemd decrypts for the unit (LoadCredentialEncrypted=) is named by
    /// its place in $CREDENTIALS_DIRECTORY, which differs between system and user units.
    @Test func secretsMayComeFromSystemdCredentials() throws {
        let text = """
            store_pin_file = "$CREDENTIALS_DIRECTORY/hsm.pin"
            [[owners]]
            pkcs11 = "pkcs11:token=signer;object=owner"
            pin_file = "$CREDENTIALS_DIRECTORY/owner.pin"
            """
        let c = try AgentConfiguration(toml: text, relativeTo: "/etc/session-agent", environment: ["CREDENTIALS_DIRECTORY": "/run/credentials/session-agent.service"])
        #expect(c.storePINFile == "/run/credentials/session-agent.service/hsm.pin")
        #expect(c.owners == [.pkcs11(uri: try PKCS11URI("pkcs11:token=signer;object=owner"), pin: .file("/run/credentials/session-agent.service/owner.pin"), address: nil)])
        // Outside such a unit the file is refused at start, naming the key, not read from "/hsm.pin".
        #expect { try AgentConfiguration(toml: text, relativeTo: "/etc/session-agent", environment: [:]) } throws: { error in
            (error as? AgentError)?.message.hasPrefix("store_pin_file: $CREDENTIALS_DIRECTORY is not set") == true
        }
    }

    /// An owner URI's module-path and pin-source are paths of the configuration like the
    /// others: relative to its file, not to wherever the agent happened to start.
    @Test func anOwnerURIsPathsAreRelativeToTheFile() throws {
        let text = """
            [[owners]]
            pkcs11 = "pkcs11:token=a;object=k?module-path=lib/module.so&pin-source=file:a.pin"
            [[owners]]
            pkcs11 = "pkcs11:token=b;object=k?module-path=/usr/lib/module.so&pin-source=/run/b.pin"
            [[owners]]
            pkcs11 = "pkcs11:token=a;object=k2?pin-source=file:a.pin"
            pin_file = "/etc/session-agent/a.pin"
            """
        let c = try AgentConfiguration(toml: text, relativeTo: "/etc/session-agent", environment: [:])
        guard c.owners.count == 3, case .pkcs11(let a, let pinA, _) = c.owners[0], case .pkcs11(let b, let pinB, _) = c.owners[1],
              case .pkcs11(_, let pinBoth, _) = c.owners[2] else {
            Issue.record("\(c.owners)")
            return
        }
        #expect(a.modulePath == "/etc/session-agent/lib/module.so" && pinA == .file("/etc/session-agent/a.pin"))
        #expect(b.modulePath == "/usr/lib/module.so" && pinB == .file("/run/b.pin"))
        // The same file named twice is one source.
        #expect(pinBoth == .file("/etc/session-agent/a.pin"))
        // An owner added at run time may name the module as the file names it.
        var added = PKCS11URI()
        added.modulePath = "/etc/session-agent/lib/module.so"
        #expect(throws: Never.self) { try c.runTimeModules.check(added) }
    }

    @Test(arguments: [
        ("allow_uid = [1]", "allow_uid"),
        ("approval_timeout = \"5 minutes\"", "approval_timeout"),
        // Overflows when scaled, and beyond a timer's range: both were a crash at start.
        ("approval_timeout = \"9999999999999999999h\"", "approval_timeout: too long"),
        ("partial_message_timeout = \"10000w\"", "partial_message_timeout: at most \"366d\""),
        ("connections_per_uid = 0", "connections_per_uid: a number from 1 to 65536"),
        ("connections_per_uid = \"64\"", "connections_per_uid"),
        ("allow_gids = [-1]", "allow_gids"),
        ("pkcs11_timeout = \"0s\"", "pkcs11_timeout"),
        ("pkcs11_timeout = 30", "pkcs11_timeout"),
        ("allow_uids = \"1000\"", "allow_uids"),
        ("pinentry = [\"/usr/bin/pinentry\", 3]", "pinentry"),
        ("pinentry = []", "pinentry"),
        ("[[accounts]]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\nkind = \"argent\"", "accounts[0].kind"),
        ("[[accounts]]\naddress = \"0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\nkind = \"nexus\"", "accounts[0].address"),
        ("[[accounts]]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\nkind = \"nexus\"\nowners = [\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"]\nchains = 11155111", "accounts[0].chains: a list"),
        ("[[accounts]]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\nkind = \"nexus\"\nowners = [\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"]\nchains = [\"+5\"]", "accounts[0].chains: chain ids"),
        ("[[accounts]]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\nkind = \"nexus\"\nowners = [\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"]\nchains = [1.5]", "accounts[0].chains: chain ids"),
        ("[[accounts]]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\nkind = \"nexus\"\nowners = [\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"]\nthreshold = \" 1\"", "accounts[0].threshold"),
        ("[[accounts]]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\nkind = \"nexus\"\nowners = [\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\", \"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\"]\nthreshold = 2", "accounts[0].owners[1]: 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed is listed twice"),
        ("[[accounts]]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\nkind = \"nexus\"\nowners = [\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"]\nkernel_version = \"0.3.3\"",
         "accounts[0].kernel_version: only a Kernel account has one"),
        ("[[accounts]]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\nkind = \"kernel\"\nowners = [\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"]\nkernel_version = \"v3.3 \"",
         "accounts[0].kernel_version: the version in the account's EIP-712 domain"),
        ("[[accounts]]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\nkind = \"kernel\"\nowners = [\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"]\nkernel_version = 3",
         "accounts[0].kernel_version: the version"),
        ("[owners]\nkeystore = \"k\"", "owners: a list of tables, written [[owners]], not [owners]"),
        ("[accounts]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"", "accounts: a list of tables"),
        ("[[owners]]\npassphrase_file = \"x\"", "owners[0]"),
        ("[[owners]]\npkcs11 = \"token=a\"", "owners[0].pkcs11"),
        ("[[owners]]\npkcs11 = \"pkcs11:token=a\"\npin_file = \"p\"\npin_env = \"P\"", "owners[0].pin_file"),
        // Two PIN sources that differ: the agent would have had to pick one silently.
        ("[[owners]]\npkcs11 = \"pkcs11:token=a?pin-source=file:a.pin\"\npin_file = \"b.pin\"", "owners[0].pin_file: the URI's pin-source already names /x/a.pin"),
        ("[[owners]]\npkcs11 = \"pkcs11:token=a?pin-source=a.pin\"\npin_env = \"PIN\"", "owners[0].pin_env"),
        ("[[owners]]\npkcs11 = \"pkcs11:token=a\"\npin = \"123456\"", "owners[0].pin"),
        ("[[owners]]\nkeystore = \"k\"\npin_file = \"p\"", "owners[0].pin_file"),
        ("[[owners]]\nopenpgp_card = \"0123ABC\"", "owners[0].openpgp_card: 0123ABC is not an OpenPGP card serial number (8 hex digits"),
        ("[[owners]]\nopenpgp_card = 123", "owners[0].keystore, owners[0].pkcs11, owners[0].openpgp_card or owners[0].passkey"),
        ("[[owners]]\npasskey = \"p.json\"\npin_file = \"p\"", "owners[0].pin_file: unknown key for a passkey owner"),
        ("[[owners]]\nopenpgp_card = \"0123ABCD\"\npin_fle = \"p\"", "owners[0].pin_fle: unknown key for an OpenPGP card owner (did you mean `pin_file`?)"),
        ("[[owners]]\nopenpgp_card = \"0123ABCD\"\npkcs11 = \"pkcs11:token=a\"", "owners[0].pkcs11: unknown key for an OpenPGP card owner"),
        ("[[owners]]\nopenpgp_card = \"0123ABCD\"\npin_file = \"p\"\npin_env = \"P\"", "owners[0].pin_file, pin_env: one PIN source"),
        ("[[owners]]\nkeystore = \"k\"\npassphrase_file = \"$CREDENTIALS_DIRECTORY/p\"", "owners[0].passphrase_file"),
    ])
    func mistakesNameTheKey(_ text: String, _ key: String) {
        do {
            _ = try AgentConfiguration(toml: text, relativeTo: "/x", environment: [:])
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.reason == "bad_config" && error.message.hasPrefix(key), "\(error.message)")
        }
    }
}
