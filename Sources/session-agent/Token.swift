import Agent
import ArgumentParser
import EthereumCore
import Foundation
import OwnerSigners

/// Which PKCS#11 modules a command looks in, and where the token's PIN comes from.
struct PKCS11Options: ParsableArguments {
    @Option(help: "The PKCS#11 module (.so). Default: the modules p11-kit knows (p11-kit list-modules).",
            transform: absolute) var module: String?
    @Option(name: .customLong("pin-file"), help: "Read the token's user PIN from this file (default: the URI's pin-source); otherwise it is asked on the terminal.",
            transform: absolute) var pinFile: String?

    /// The PIN's source for the token `uri` names.
    func pin(for uri: PKCS11URI) -> PINSource { (pinFile ?? uri.pinFile).map { .file($0) } ?? .prompt }

    /// Asks for the PIN on the terminal (only called when the token needs a login).
    var prompt: SecretPrompt {
        { description in
            guard let pin = Terminal.readSecret("\(description): ") else { throw CommandFailure(message: "standard input ended before a PIN; give it with --pin-file", reason: "secret_needed") }
            return pin
        }
    }

    /// A URI typed here, its relative paths taken from the working directory: the agent or the
    /// store that keeps the URI is used from elsewhere.
    func parse(_ text: String) throws -> PKCS11URI {
        do { return try PKCS11URI(text).resolvingPaths(against: FileManager.default.currentDirectoryPath) } catch { throw CommandFailure(message: "\(error)") }
    }
}

/// `path`, made absolute from the working directory (the agent reads files from elsewhere).
func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path }

struct PKCS11Tokens: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "token", abstract: "PKCS#11 tokens (HSMs, smartcards through OpenSC, SoftHSM).",
                                                    subcommands: [PKCS11TokenList.self])
}

struct PKCS11TokenList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show the slots, with or without a token, and the EC keys on each token: the Ethereum address of secp256k1 keys, the public key of P-256 keys, and the URI that selects each.")

    @Argument(help: "Only the tokens this URI matches, e.g. pkcs11:token=signer (with --login, only those are logged in to), and with object= or id= only those keys. Exit status 1 when nothing matches, or a token cannot be read.") var token: String?
    @OptionGroup var pkcs11: PKCS11Options
    @Flag(help: "Log in to each token first (PIN from --pin-file, or asked), to see keys a token shows only after a login.") var login = false
    @OptionGroup var output: OutputOptions

    /// What a module or token says of itself, as a terminal can show it safely.
    private func printable(_ text: String) -> String { DisplayText.escaped(text) }

    func run() async throws {
        // A token whose keys could not be read (a wrong PIN with --login, a token gone while
        // listed), or a slot whose token could not be, is shown with its error, and the exit
        // status is 1.
        var unreadable = false
        try await report(output) {
            let only = try token.map(pkcs11.parse) ?? PKCS11URI()
            let paths = (only.modulePath ?? pkcs11.module).map { [$0] } ?? PKCS11Module.registered().filter(only.matches).map(\.path)
            guard !paths.isEmpty else { throw CommandFailure(message: "p11-kit knows no PKCS#11 module; name one with --module", reason: "not_found") }
            let wantsKey = only.object != nil || only.id != nil
            var text: [String] = [], modules: [JSONValue] = [], shown = 0, hidden = false, hints: [String] = [], seen = PKCS11TokenListing()
            for path in paths {
                let provider = PKCS11Provider.shared(modulePath: path)
                let answer: (library: PKCS11LibraryInfo, tokens: PKCS11TokenListing)
                do { answer = try await provider.tokens() } catch {
                    if paths.count == 1 { throw CommandFailure(message: "\(error)", reason: "owner_unavailable") }
                    text.append("module \(path): \(error)")
                    continue
                }
                let library = answer.library, listing = answer.tokens, tokens = listing.present
                seen.present += tokens
                seen.empty += listing.empty
                seen.unreadable += listing.unreadable
                let hint = tokens.isEmpty ? PKCS11Module.serverHint(for: path) : nil
                if let hint { hints.append(hint) }
                let matching = tokens.filter(only.matches)
                // Given a URI, only the modules holding a token it matches are of interest.
                guard token == nil || !matching.isEmpty else { continue }
                // What a URI's library-* attributes match.
                text.append("module \(path) (\(printable(library.manufacturer)): \(printable(library.description)) \(library.version))")
                var tokenJSON: [JSONValue] = []
                for info in matching {
                    var tokenURI = PKCS11URI()
                    tokenURI.token = info.label
                    tokenURI.serial = info.serial
                    tokenURI.modulePath = path
                    let found: PKCS11ECKeys
                    do {
                        let read: @Sendable (PKCS11Session, PKCS11Provider.TokenState) throws(PKCS11Failure) -> PKCS11ECKeys = { session, _ throws(PKCS11Failure) in
                            do { return try session.ecKeysWithCustody(matching: only) } catch { throw .failed("\(error)") }
                        }
                        found = login ? try await provider.withLogin(tokenURI, pin: pkcs11.pin(for: only), prompt: pkcs11.prompt, read) : try await provider.withSession(tokenURI, read)
                    } catch {
                        text.append("  slot \(info.slot): token \"\(printable(info.label))\": \(error)")
                        tokenJSON.append(.object(JSONObject(["slot": JSONValue(Int(info.slot)), "label": .string(info.label), "serial": .string(info.serial),
                                                             "error": .string("\(error)")])))
                        shown += 1
                        unreadable = true
                        continue
                    }
                    let keys = found.usable, others = found.others
                    if wantsKey {
                        hidden = hidden || (keys.isEmpty && others.isEmpty && !login && info.loginRequired)
                        if keys.isEmpty && others.isEmpty { continue }
                    }
                    shown += 1
                    let flags = [info.pinLocked ? "PIN LOCKED" : nil, info.pinFinalTry ? "one PIN try left" : nil, info.pinCountLow ? "PIN count low" : nil,
                                 info.pinToBeChanged ? "PIN TO BE CHANGED" : nil, info.keypad ? "PIN on the reader's keypad" : nil].compactMap { $0 }
                    text.append("  slot \(info.slot): token \"\(printable(info.label))\" (\(printable(info.manufacturer)) \(printable(info.model)), serial \(printable(info.serial)))\(flags.isEmpty ? "" : " [" + flags.joined(separator: ", ") + "]")")
                    if keys.isEmpty && others.isEmpty {
                        text.append(login || !info.loginRequired ? "    no EC keys" : "    no EC keys visible without a login (--login shows those a token hides)")
                    }
                    for key in keys {
                        let shown = key.address.map { "address \($0.checksummed)" } ?? "public key \(key.publicKeyHex)"
                        text.append("    \(key.curve.rawValue) \"\(printable(key.label))\" id \(Hex.encode(key.id).dropFirst(2)): \(shown)")
                        text.append("      \(key.uri(on: tokenURI))")
                        text.append("      private key: \(key.custody?.description ?? (login ? "none with this id" : "not visible without a login (--login)"))")
                        if let why = key.cannotSign { text.append("      CANNOT SIGN as an owner: \(why)") }
                    }
                    for other in others {
                        text.append("    \"\(printable(other.label))\" id \(Hex.encode(other.id).dropFirst(2)): not usable, it \(other.reason)")
                    }
                    tokenJSON.append(.object(JSONObject([
                        "slot": JSONValue(Int(info.slot)), "label": .string(info.label), "manufacturer": .string(info.manufacturer), "model": .string(info.model),
                        "serial": .string(info.serial), "pinLocked": .bool(info.pinLocked), "pinFinalTry": .bool(info.pinFinalTry), "pinToBeChanged": .bool(info.pinToBeChanged),
                        "keypad": .bool(info.keypad),
                        "keys": .array(keys.map { key in
                            keyJSON(key, uri: key.uri(on: tokenURI), after: JSONObject(["label": .string(key.label), "id": .string(Hex.encode(key.id))]))
                        }),
                        "otherKeys": .array(others.map { other in
                            .object(JSONObject(["label": .string(other.label), "id": .string(Hex.encode(other.id)), "reason": .string(other.reason)]))
                        }),
                    ])))
                }
                // Given a URI, an empty slot, or one that cannot be read, is named only if nothing matches.
                var emptySlots: [JSONValue] = []
                if token == nil {
                    for slot in listing.empty {
                        text.append("  \(slot)")
                        emptySlots.append(.object(JSONObject(["slot": JSONValue(Int(slot.slot)), "description": .string(slot.slotDescription),
                                                              "manufacturer": .string(slot.manufacturer)])))
                    }
                    for slot in listing.unreadable {
                        text.append("  \(slot)")
                        tokenJSON.append(.object(JSONObject(["slot": JSONValue(Int(slot.slot)), "error": .string("\(slot.error)")])))
                        unreadable = true
                    }
                }
                if tokens.isEmpty && listing.empty.isEmpty && listing.unreadable.isEmpty { text.append("  no token present" + (hint.map { ": \($0)" } ?? "")) }
                modules.append(.object(JSONObject([
                    "module": .string(path), "tokens": .array(tokenJSON), "emptySlots": .array(emptySlots),
                    "library": .object(JSONObject(["manufacturer": .string(library.manufacturer), "description": .string(library.description),
                                                   "version": .string(library.version.description)])),
                ])))
            }
            // As a check in a script: is the token (or the key) there?
            if let token, shown == 0 {
                let why = (hidden ? ["--login shows keys a token hides"] : []) + hints
                    + (wantsKey ? [] : ["\(paths.count == 1 ? "the module shows" : "the modules show") \(seen.shown)"])
                throw CommandFailure(message: "\(wantsKey ? "no key" : "no token") matches \(token)\(why.isEmpty ? "" : " (" + why.joined(separator: "; ") + ")")", reason: "not_found")
            }
            return CommandOutput(text: text.joined(separator: "\n"), json: .array(modules))
        }
        if unreadable { throw ExitCode.failure }
    }
}

struct OwnerGenerate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Create a key pair on a PKCS#11 token: the private key is sensitive and not extractable, and only signs.")

    @Option(help: "The token's PKCS#11 URI, e.g. pkcs11:token=signer.") var token: String
    @Option(help: "secp256k1 (an owner of OwnableValidator accounts) or p256 (an owner of WebAuthnValidator accounts, which list it as p256:0x04…).") var curve: String = "secp256k1"
    @Option(help: "The key's label (CKA_LABEL); or object= in --token. Default: session-agent owner.") var label: String?
    @OptionGroup var pkcs11: PKCS11Options
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await report(output) {
            guard let curve = PKCS11Curve(rawValue: curve) else { throw CommandFailure(message: "--curve: secp256k1 or p256") }
            let tokenURI = try pkcs11.parse(token)
            if let label, let object = tokenURI.object, label != object {
                throw CommandFailure(message: "--token names the key \"\(object)\" and --label \"\(label)\"; give one")
            }
            let label = label ?? tokenURI.object ?? "session-agent owner"
            let key: PKCS11Key
            do throws(PKCS11Failure) { key = try await PKCS11Key.generate(on: tokenURI, curve: curve, label: label, pin: pkcs11.pin(for: tokenURI), prompt: pkcs11.prompt, defaultModule: pkcs11.module) } catch {
                throw CommandFailure(message: "\(error)", reason: error.ownerError.reason)
            }
            let shown = key.info.address.map { $0.checksummed } ?? key.info.publicKeyHex
            return CommandOutput(text: "\(shown)\n\(key.uri)" + privateKeyLine(key.info.custody), json: keyJSON(key.info, uri: key.uri))
        }
    }
}

struct OwnerAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Register an owner key with the running agent: a keystore file, a key on a PKCS#11 token (pkcs11:…), an OpenPGP card's signature key (card:SERIAL), or a passkey (passkey:FILE).",
        discussion: """
            The agent reads the key's public half from the token or card and keeps the registration in its store. With --pin-file it \
            logs in at once, so a wrong PIN is refused now, and says whether the private key can leave the token. A token that \
            shows its keys only after a login (AWS CloudHSM) has the PIN asked here, once, unless --pin-file names it.
            """)

    @Argument(help: "A PKCS#11 URI (pkcs11:token=…;object=…), card: and an OpenPGP card's serial number (session-agent card list), passkey: and a passkey file (session-agent fido2 create), or a keystore file.") var owner: String
    @Option(name: .customLong("pin-file"), help: "The token's or card's PIN file, read by the agent at each signature (unattended servers). Default: asked at approval.") var pinFile: String?
    @Option(name: .customLong("passphrase-file"), help: "The keystore's passphrase file, read by the agent at each approval (unattended servers); it opens the keystore once now, so a wrong passphrase is refused now.") var passphraseFile: String?
    @Option(help: "The agent's control socket (default: $SESSION_AGENT_CONTROL_SOCK).") var socket: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        try report(output) {
            var params = JSONObject()
            if owner.hasPrefix("pkcs11:") {
                do { params["pkcs11"] = .string(try PKCS11URI(owner).resolvingPaths(against: FileManager.default.currentDirectoryPath).description) } catch {
                    throw CommandFailure(message: "\(error)")
                }
                if let pinFile { params["pinFile"] = .string(absolute(pinFile)) }
            } else if owner.hasPrefix("passkey:") {
                params["passkey"] = .string(absolute(String(owner.dropFirst("passkey:".count))))
            } else if owner.hasPrefix("card:") {
                params["openpgpCard"] = .string(String(owner.dropFirst("card:".count)))
                if let pinFile { params["pinFile"] = .string(absolute(pinFile)) }
            } else {
                params["keystore"] = .string(absolute(owner))
                if let passphraseFile { params["passphraseFile"] = .string(absolute(passphraseFile)) }
            }
            let add = { (params: JSONObject) in try remote { try connectControl(socket).call("owners_add", params) } }
            let result: JSONValue
            do { result = try add(params) } catch let failure as CommandFailure where failure.reason == "secret_needed" && params["pkcs11"] != nil && pinFile == nil {
                // The token shows its keys only after a login: the agent logs in once with the
                // PIN typed here (and keeps it nowhere), as `pkcs11-tool --login` would.
                guard let pin = Terminal.readSecretParameter(failure.message + "\nPIN: ") else { throw failure }
                params["pin"] = pin
                result = try add(params)
            }
            let text = "\(result["owner"]?.stringValue ?? "?") (\(result["location"]?.stringValue ?? ""))"
                + privateKeyLine(result["custody"]?.stringValue.flatMap(PKCS11KeyCustody.init(rawValue:)))
            return CommandOutput(text: text, json: result)
        }
    }
}

/// An EC key as `token list` and `owner generate` give it in JSON, after the fields `leading`
/// holds: its curve, public key, address (secp256k1), URI, and what the token says of its
/// private half (null where that was not read).
func keyJSON(_ key: PKCS11KeyInfo, uri: PKCS11URI, after leading: JSONObject = JSONObject()) -> JSONValue {
    var object = leading
    object["curve"] = .string(key.curve.rawValue)
    object["publicKey"] = .string(key.publicKeyHex)
    object["address"] = key.address.map { .string($0.checksummed) } ?? .null
    object["uri"] = .string(uri.description)
    object["custody"] = key.custody.map { .string($0.rawValue) } ?? .null
    object["cannotSign"] = key.cannotSign.map { .string($0) } ?? .null
    return .object(object)
}

/// What the token says of an owner key's private half, on a line of its own; nothing when it
/// could not be read.
func privateKeyLine(_ custody: PKCS11KeyCustody?) -> String {
    guard let custody else { return "" }
    return "\nprivate key: \(custody)" + (custody == .exportable ? "; an owner key that can leave its token is worth little as one" : "")
}
