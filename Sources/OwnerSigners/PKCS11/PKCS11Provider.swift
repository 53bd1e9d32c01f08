import Crypto
import Dispatch
import EthereumCore
import Foundation
import Synchronization

extension PINSource {
    /// `unattendedPIN`, failing as a token login does.
    func tokenPIN() throws(PKCS11Failure) -> SecretBytes? {
        do { return try unattendedPIN() } catch { throw .pinNeeded(error.description) }
    }
}

/// Why a token operation failed, in the terms the agent reports.
public enum PKCS11Failure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The module cannot be loaded.
    case moduleMissing(String)
    /// No present token matches the URI (absent, removed, or its server stopped), or its module
    /// does not answer.
    case tokenAbsent(String)
    /// The PIN was not given (the prompt was cancelled or timed out).
    case pinNeeded(String)
    /// The token rejected the PIN, or it is locked; the message says how many tries are left.
    case wrongPIN(String)
    /// The URI names no key, or several.
    case keyNotFound(String)
    /// Anything else the module reported.
    case failed(String)

    public var description: String {
        switch self {
        case .moduleMissing(let s), .tokenAbsent(let s), .pinNeeded(let s), .wrongPIN(let s), .keyNotFound(let s), .failed(let s): s
        }
    }

    /// What a kept session fails with when it is stale: its token went away, or its login did.
    var staleSession: Bool {
        switch self {
        case .tokenAbsent, .pinNeeded: true
        default: false
        }
    }

    /// The owner-signer error the agent reports for it.
    public var ownerError: OwnerSignerError {
        switch self {
        case .moduleMissing(let s), .tokenAbsent(let s), .keyNotFound(let s): .unavailable(s)
        case .pinNeeded(let s): .secretNeeded(s)
        case .wrongPIN(let s): .wrongSecret(s)
        case .failed(let s): .failed(s)
        }
    }
}

/// One PKCS#11 module and the tokens the agent uses on it. Every call into the module runs on
/// one serial queue (off Swift's cooperative pool, since an HSM may take milliseconds or a
/// network round trip): tokens of one module take turns, and re-initialising the module to see a
/// token that came back cannot race another token's operation. A session per token is kept
/// open, and with it the login, while the token stays present. A call that gets no answer
/// within `answerTimeout` fails, and so does every call after it until the module answers again.
public final class PKCS11Provider: @unchecked Sendable {
    public let modulePath: String
    private let line: DeviceLine
    /// How long a caller waits for the module. A hung network HSM, or a `p11-kit server` that
    /// stopped answering, blocks its call forever (p11-kit-client has no timeout of its own).
    public var answerTimeout: Duration {
        get { timeout.withLock { $0 } }
        set { timeout.withLock { $0 = newValue } }
    }
    private let timeout = Mutex<Duration>(PKCS11Provider.answerTimeoutOfNewProviders)
    /// The `answerTimeout` providers made from now on start with (the agent's `pkcs11_timeout`).
    /// A minute by default leaves room for a key that waits for a touch.
    public static var answerTimeoutOfNewProviders: Duration {
        get { newProvidersTimeout.withLock { $0 } }
        set { newProvidersTimeout.withLock { $0 = newValue } }
    }
    private static let newProvidersTimeout = Mutex<Duration>(.seconds(60))
    // Confined to `line`'s queue:
    private var module: PKCS11Module?
    /// Set by `finalize`, or from the start by a provider made after `finalizeAll`: the module
    /// is not loaded (again).
    private var finalized = false
    private var sessions: [String: OpenSession] = [:]
    private var keyHandles: [String: UInt] = [:]
    /// SHA-256 of the last PIN each token rejected, by the token's identity (whichever URI named
    /// it): the same PIN is not offered again, since each wrong try counts down its retry counter.
    private var rejectedPINs: [String: SHA256.Digest] = [:]
    /// Used outside the queue.
    private let pinPrompts = Mutex<[String: Turns]>([:])

    /// The one provider of the module at `path` in this process. Two paths to one file (a
    /// symlink, as Debian's /usr/lib/softhsm is) are one module: the library can be initialised
    /// only once per process.
    public static func shared(modulePath path: String) -> PKCS11Provider { PKCS11Providers.process.provider(modulePath: path) }

    /// Ends every module this process loaded (C_Finalize, which also closes their sessions and
    /// logins), as a stopping agent should: a network HSM frees them at once instead of when it
    /// notices the connection gone. A module busy with a call that does not return within
    /// `wait` is left as it is. A module first named after this is never loaded.
    public static func finalizeAll(waiting wait: Duration) { PKCS11Providers.process.finalizeAll(waiting: wait) }

    /// Ends the module for good (C_Finalize), then calls `done` on the module's queue. A call
    /// made after fails instead of initialising the module again: the process is ending, and
    /// its exit handlers tear down what a module's C_Initialize may use (OpenSSL's locks, in
    /// SoftHSM's), so a token watch or a request still under way would crash it.
    package func finalize(then done: @escaping @Sendable () -> Void) {
        line.queue.async { [self] in
            finalized = true
            reinitialize()
            done()
        }
    }

    /// A provider made `finalized` never loads its module.
    fileprivate init(modulePath: String, finalized: Bool) {
        self.modulePath = modulePath
        self.finalized = finalized
        line = DeviceLine(label: "pkcs11 \(modulePath)")
    }

    /// Resolves the module of a URI: its `module-path`, else `defaultModule` (the configuration's),
    /// else the p11-kit module (by `module-name` when given) that holds a matching token. Modules
    /// are only rescanned (re-initialised, which logs out of their tokens) when no module shows
    /// the token as it is. `registered` is read only when the URI names no module.
    public static func locate(_ uri: PKCS11URI, defaultModule: String?,
                              among registered: @autoclosure () -> [PKCS11Module.Registration] = PKCS11Module.registered()) async throws(PKCS11Failure) -> PKCS11Provider {
        if let path = uri.modulePath ?? (uri.moduleName == nil ? defaultModule : nil) { return shared(modulePath: path) }
        let candidates = registered().filter(uri.matches).map { shared(modulePath: $0.path) }
        for rescan in [false, true] {
            for provider in candidates where await provider.holdsToken(uri, rescan: rescan) { return provider }
        }
        throw .tokenAbsent("no PKCS#11 module p11-kit knows has a token matching \(uri.tokenOnly); name the module with ?module-path=…")
    }

    // MARK: Operations

    /// Runs `body` on the queue in a logged-in session on the token `uri` names. The PIN is
    /// fetched (outside the queue, since a person may take minutes) only when the token needs a
    /// login the process does not hold yet.
    public func withLogin<T: Sendable>(_ uri: PKCS11URI, pin: PINSource, prompt: SecretPrompt,
                                      _ body: @escaping @Sendable (PKCS11Session, TokenState) throws(PKCS11Failure) -> T) async throws(PKCS11Failure) -> T {
        let state = tokenState(uri)
        let call: @Sendable (PKCS11Session) throws(PKCS11Failure) -> T = { session throws(PKCS11Failure) in try self.guarded(state) { () throws(PKCS11Failure) -> T in try body(session, state) } }
        let attempt: @Sendable () async throws(PKCS11Failure) -> Result<T, PINRequest> = {
            try await self.onSession(uri, state) { session, loggedIn throws(PKCS11Failure) -> Result<T, PINRequest> in
                // The token's flags are only read when a login is still to be done.
                if loggedIn { return .success(try call(session)) }
                let info = try self.tokenInfo(session, state.tokenKey)
                guard info.loginRequired else { return .success(try call(session)) }
                return .failure(PINRequest(token: info))
            }
        }
        if case .success(let value) = try await attempt() { return value }
        // One PIN prompt per token at a time: requests that arrive while a person types the PIN
        // wait for that login instead of asking again.
        return try await pinTurns(state.tokenKey).run { () async throws(PKCS11Failure) -> T in
            let request: PINRequest
            switch try await attempt() {
            case .success(let value): return value
            case .failure(let r): request = r
            }
            let secret = try await Self.readPIN(pin, token: request.token, prompt: prompt)
            return try await Self.onKeypad(secret == nil, request.token) { () async throws(PKCS11Failure) -> T in
                try await self.run { () throws(PKCS11Failure) -> T in
                    let (session, loggedIn, _) = try self.session(for: uri, state.tokenKey)
                    if !loggedIn {
                        try self.login(session, tokenKey: state.tokenKey, token: try self.tokenInfo(session, state.tokenKey), pin: secret, source: pin)
                    }
                    return try call(session)
                }
            }
        }
    }

    /// The turns of a token's PIN prompts, by the token's name in the caches.
    private func pinTurns(_ tokenKey: String) -> Turns {
        pinPrompts.withLock { pinPrompts in
            if let turns = pinPrompts[tokenKey] { return turns }
            let turns = Turns()
            pinPrompts[tokenKey] = turns
            return turns
        }
    }

    /// Runs `body` on the queue in a session on the token, without logging in (public objects).
    public func withSession<T: Sendable>(_ uri: PKCS11URI, _ body: @escaping @Sendable (PKCS11Session, TokenState) throws(PKCS11Failure) -> T) async throws(PKCS11Failure) -> T {
        let state = tokenState(uri)
        return try await onSession(uri, state) { session, _ throws(PKCS11Failure) -> T in
            try self.guarded(state) { () throws(PKCS11Failure) -> T in try body(session, state) }
        }
    }

    /// Signs with a key marked CKA_ALWAYS_AUTHENTICATE (PIV signature keys, some HSM policies):
    /// the PIN is given again for this one operation, from the same source and under the same
    /// rules as the login. `key` finds the key's handle.
    func signECDSAWithContextLogin(_ uri: PKCS11URI, pin: PINSource, prompt: SecretPrompt, digest: [UInt8],
                                   key: @escaping @Sendable (PKCS11Session, TokenState) throws(PKCS11Failure) -> UInt) async throws(PKCS11Failure) -> [UInt8] {
        let token = try await token(uri)
        let secret = try await Self.readPIN(pin, token: token, prompt: prompt, forOneSignature: true)
        return try await Self.onKeypad(secret == nil, token, forOneSignature: true) { () async throws(PKCS11Failure) -> [UInt8] in
            try await withLogin(uri, pin: pin, prompt: prompt) { session, state throws(PKCS11Failure) in
                let handle = try key(session, state)
                do throws(PKCS11Error) { try session.signInitECDSA(key: handle) } catch { throw Self.failure(error, state.tokenKey, in: session) }
                do throws(PKCS11Failure) {
                    try self.login(session, tokenKey: state.tokenKey, token: try self.tokenInfo(session, state.tokenKey), pin: secret, source: pin, contextSpecific: true)
                } catch {
                    _ = try? session.sign(digest)   // ends the operation: without the login it fails, and any failure ends it
                    throw error
                }
                do throws(PKCS11Error) { return try session.sign(digest) } catch { throw Self.failure(error, state.tokenKey, in: session) }
            }
        }
    }

    /// Runs `login`, in which a person enters the PIN on the token's reader's keypad when
    /// `entered` (no PIN was read for it), with the approval channel telling them so meanwhile.
    private static func onKeypad<T>(_ entered: Bool, _ token: PKCS11TokenInfo, forOneSignature: Bool = false,
                                    _ login: () async throws(PKCS11Failure) -> T) async throws(PKCS11Failure) -> T {
        guard entered else { return try await login() }
        return try await DeviceNotice.showing("Enter the \(pinPrompt(token, forOneSignature: forOneSignature)).", login)
    }

    /// The token `uri` names when a login to it is due, or nil when none is.
    public func loginDue(_ uri: PKCS11URI) async throws(PKCS11Failure) -> PKCS11TokenInfo? {
        try await whenLoginDue(uri) { token in token }
    }

    /// `body` of the token `uri` names, run on the queue when a login to it is due; nil when none is.
    private func whenLoginDue<T: Sendable>(_ uri: PKCS11URI, _ body: @escaping @Sendable (PKCS11TokenInfo) -> T?) async throws(PKCS11Failure) -> T? {
        try await withSession(uri) { session, state throws(PKCS11Failure) -> T? in
            let loggedIn: Bool
            do throws(PKCS11Error) { loggedIn = try session.state().loggedIn } catch { throw Self.failure(error, state.tokenKey, in: session) }
            let token = try self.tokenInfo(session, state.tokenKey)
            return loggedIn || !token.loginRequired ? nil : body(token)
        }
    }

    /// The token `uri` names, as it describes itself.
    public func token(_ uri: PKCS11URI) async throws(PKCS11Failure) -> PKCS11TokenInfo {
        try await withSession(uri) { session, state throws(PKCS11Failure) in try self.tokenInfo(session, state.tokenKey) }
    }

    /// `uri`, naming its token by label and serial when it names none: a token added later then
    /// cannot make a URI the agent keeps ambiguous, or point it at another token's key.
    public func namingItsToken(_ uri: PKCS11URI) async throws(PKCS11Failure) -> PKCS11URI {
        uri.namesToken ? uri : uri.naming(try await token(uri))
    }

    /// Whether a token matching `uri` is present; with `rescan`, the module is initialised again
    /// first when it does not show one (SoftHSM, for one, only sees tokens made since then).
    public func holdsToken(_ uri: PKCS11URI, rescan: Bool) async -> Bool {
        (try? await run { () throws(PKCS11Failure) -> Bool in !(try self.presentTokens(matching: uri, rescan: rescan)).matching.isEmpty }) ?? false
    }

    /// The module as it describes itself, and the tokens present, for `token list`.
    public func tokens() async throws(PKCS11Failure) -> (library: PKCS11LibraryInfo, tokens: PKCS11TokenListing) {
        try await run { () throws(PKCS11Failure) -> (library: PKCS11LibraryInfo, tokens: PKCS11TokenListing) in
            let module = try self.loadedModule()   // whose error names the module
            do { return (module.library, try module.tokens()) } catch { throw .failed("\(self.modulePath): \(error)") }
        }
    }

    /// One token's name in the caches, and its key handles (kept per session, dropped with it).
    public struct TokenState: Sendable {
        let provider: PKCS11Provider
        let tokenKey: String

        /// The one object matching `attributes` (cached by `name` for the session's life).
        public func object(_ name: String, _ attributes: [PKCS11Attribute], in session: PKCS11Session) throws(PKCS11Failure) -> UInt {
            let cacheKey = tokenKey + "|" + name
            if let handle = provider.keyHandles[cacheKey] { return handle }
            let found: [UInt]
            do { found = try session.find(attributes) } catch { throw PKCS11Provider.failure(error, tokenKey, in: session) }
            guard found.count == 1 else {
                throw .keyNotFound(found.isEmpty ? "no object matches \(name) on the token" : "\(found.count) objects match \(name); add id= or object= to the URI")
            }
            provider.keyHandles[cacheKey] = found[0]
            return found[0]
        }
    }

    // MARK: Calls into the module

    /// Runs `body` on the queue, unless the module has stopped answering: then, and when `body`
    /// itself gets no answer in time, the caller is told so (a call its caller gave up on before
    /// it started is not made). The module is used again once the stuck call returns.
    private func run<T: Sendable>(_ body: @escaping @Sendable () throws(PKCS11Failure) -> T) async throws(PKCS11Failure) -> T {
        let seconds = answerTimeout.components.seconds, modulePath = modulePath
        return try await line.run(timeout: answerTimeout, overdue: {
            .tokenAbsent("\(modulePath) did not answer within \(seconds) s (a hung HSM, its network, or its server); it is used again once it answers")
        }, stuck: {
            .tokenAbsent("\(modulePath) has not answered a call for over \(seconds) s (a hung HSM, its network, or its server); it is used again once it answers")
        }, body)
    }

    // MARK: Queue-confined internals

    private struct PINRequest: Error { let token: PKCS11TokenInfo }

    /// A token's open session, and whether this process is logged in to the token.
    private struct OpenSession {
        let session: PKCS11Session
        var loggedIn: Bool
        /// The login was made with a PIN a person gave, which the agent does not keep.
        var personsLogin = false
    }

    /// Runs `body` on the queue with the token's session and login state. A session kept from an
    /// earlier operation is trusted without asking the token (a C_GetSessionInfo per operation is
    /// a network round trip on a remote HSM); when it turns out stale, because the token went away
    /// and came back or lost the login, it is dropped and `body` runs once more on a fresh one.
    private func onSession<T: Sendable>(_ uri: PKCS11URI, _ state: TokenState,
                                        _ body: @escaping @Sendable (PKCS11Session, _ loggedIn: Bool) throws(PKCS11Failure) -> T) async throws(PKCS11Failure) -> T {
        var mayRetry = true
        while true {
            let retry = mayRetry
            let outcome = try await run { () throws(PKCS11Failure) -> T? in
                let (session, loggedIn, reused) = try self.session(for: uri, state.tokenKey)
                do throws(PKCS11Failure) { return try body(session, loggedIn) } catch {
                    guard retry, reused, error.staleSession else { throw error }
                    self.forget(state.tokenKey)
                    return nil
                }
            }
            if let outcome { return outcome }
            mayRetry = false
        }
    }

    private func tokenState(_ uri: PKCS11URI) -> TokenState { TokenState(provider: self, tokenKey: uri.tokenOnly.description) }

    private func loadedModule() throws(PKCS11Failure) -> PKCS11Module {
        if let module { return module }
        guard !finalized else { throw .failed("\(modulePath) was finalized: the agent is stopping") }
        do { module = try PKCS11Module(path: modulePath) } catch { throw .moduleMissing(error.description) }
        return module!
    }

    /// The session on the token and whether the user is logged in; `reused` when it was kept from
    /// an earlier operation (and not asked whether it still lives). A new session finds the
    /// token's slot again.
    private func session(for uri: PKCS11URI, _ tokenKey: String) throws(PKCS11Failure) -> (PKCS11Session, loggedIn: Bool, reused: Bool) {
        if var open = sessions[tokenKey] {
            // A login is the process's, not the session's: another URI naming the same token may
            // have logged in since. Only asked while this session has not seen one.
            if !open.loggedIn, let state = try? open.session.state(), state.loggedIn {
                open.loggedIn = true
                sessions[tokenKey] = open
            }
            return (open.session, open.loggedIn, true)
        }
        let (matching, scanned) = try presentTokens(matching: uri, rescan: true)
        if matching.count > 1 { throw .failed("\(matching.count) tokens match \(uri.tokenOnly); add serial= or slot-id=") }
        guard let info = matching.first else {
            throw .tokenAbsent("no token matching \(uri.tokenOnly) is present in \(modulePath) (it shows \(scanned.shown))"
                               + (PKCS11Module.serverHint(for: modulePath).map { ": \($0)" } ?? ""))
        }
        let module = try loadedModule()
        do throws(PKCS11Error) {
            let session = try module.openSession(slot: info.slot)
            let loggedIn = try session.state().loggedIn
            sessions[tokenKey] = OpenSession(session: session, loggedIn: loggedIn)
            return (session, loggedIn, false)
        } catch {
            throw Self.failure(error, tokenKey, in: nil)
        }
    }

    /// The present tokens `uri` matches. With `rescan`, when there are none the module is
    /// initialised again and asked once more: a token that was removed and came back (or a server
    /// that restarted) is only seen after that, which closes every session of the module. So it
    /// is not done while another token holds a login a person gave: that login is kept while its
    /// token stays, and a module that sees tokens come and go by itself (OpenSC) shows this one
    /// without it. (Logins from a PIN file or the environment are simply made again.) Also
    /// returns what the last scan showed, for an error about a token it did not.
    private func presentTokens(matching uri: PKCS11URI, rescan: Bool) throws(PKCS11Failure) -> (matching: [PKCS11TokenInfo], scanned: PKCS11TokenListing) {
        // A module that cannot list its tokens (its server gone) shows none; one that cannot be
        // loaded is its own error.
        func scan() throws(PKCS11Failure) -> (matching: [PKCS11TokenInfo], scanned: PKCS11TokenListing) {
            let module = try loadedModule()
            let scanned = (try? module.tokens()) ?? PKCS11TokenListing()
            return (scanned.present.filter(uri.matches), scanned)
        }
        let first = try scan()
        guard first.matching.isEmpty, rescan else { return first }
        // A login whose token went too (another URI may name the same token) is lost anyway.
        let tokenKey = uri.tokenOnly.description, slots = Set(first.scanned.present.map(\.slot))
        let kept = sessions.first { key, open in
            key != tokenKey && open.personsLogin && (try? open.session.state()).map { $0.loggedIn && slots.contains($0.slot) } == true
        }?.key
        if let kept {
            throw .tokenAbsent("no token matching \(uri.tokenOnly) is present in \(modulePath); the module is not initialised again to look "
                               + "for it while \(kept) holds a login given at approval, which that would end")
        }
        reinitialize()
        return try scan()
    }

    private func tokenInfo(_ session: PKCS11Session, _ tokenKey: String) throws(PKCS11Failure) -> PKCS11TokenInfo {
        do { return try session.module.tokenInfo(slot: try session.state().slot) } catch { throw Self.failure(error, tokenKey, in: session) }
    }

    /// Drops the module with its sessions (its deinit finalizes it, which ends the logins); the
    /// next call loads and initialises it afresh.
    private func reinitialize() {
        sessions.removeAll()
        keyHandles.removeAll()
        module = nil
    }

    private func forget(_ tokenKey: String) {
        sessions[tokenKey] = nil
        keyHandles = keyHandles.filter { !$0.key.hasPrefix(tokenKey + "|") }
    }

    /// Logs in with every rule of the token's PIN: a locked PIN, or one it rejected before, is not
    /// tried; an unattended source never spends the last try. `contextSpecific` is the login for
    /// one operation of an always-authenticate key.
    private func login(_ session: PKCS11Session, tokenKey: String, token: PKCS11TokenInfo, pin: SecretBytes?, source: PINSource,
                       contextSpecific: Bool = false) throws(PKCS11Failure) {
        let identity = Self.identity(token)
        if let refusal = refusal(of: pin, from: source, on: token) { throw .wrongPIN(refusal) }
        let remembered = source.unattended ? RejectedPINs.memory : nil
        do {
            try session.login(pin: pin, contextSpecific: contextSpecific)
            if !contextSpecific {
                sessions[tokenKey]?.loggedIn = true
                sessions[tokenKey]?.personsLogin = !source.unattended
            }
            rejectedPINs[identity] = nil
            remembered?.remember(nil, of: identity)
        } catch {
            let from = pin == nil ? "entered on the reader's keypad" : "from \(source)"
            if error.pinIncorrect {
                rejectedPINs[identity] = pin?.withUnsafeBytes { SHA256.hash(data: $0) }
                let after = try? session.module.tokenInfo(slot: token.slot)
                if let pin, let remembered {
                    let shown = after.map { $0.pinCountLow || $0.pinFinalTry || $0.pinLocked } ?? false
                    remembered.remember(RejectedPIN(fingerprint: remembered.fingerprint(of: pin), at: Self.now(), tokenShowedIt: shown), of: identity)
                }
                let left = after?.pinLocked == true ? "the PIN is now locked" : after?.pinFinalTry == true ? "one try is left" : after?.pinCountLow == true ? "few tries are left" : "the token counts failed tries"
                throw .wrongPIN("wrong PIN for token \"\(token.shownLabel)\" (\(from)); \(left)")
            }
            if error.cancelled { throw .pinNeeded("the PIN entry on the keypad of token \"\(token.shownLabel)\"'s reader was cancelled") }
            if error.pinLocked { throw .wrongPIN(Self.pinLocked(token)) }
            // Right but expired (an HSM's password policy): no other PIN will do until it is changed.
            if error.pinExpired {
                throw .wrongPIN("the user PIN of token \"\(token.shownLabel)\" has expired (\(error)); change it with the token's own tool "
                                + "(pkcs11-tool --login --change-pin, or the HSM's), then give the new one")
            }
            if error.pinMalformed {
                let lengths = token.pinLengths.map { "; it takes \($0.lowerBound) to \($0.upperBound) bytes" } ?? ""
                throw .wrongPIN("token \"\(token.shownLabel)\" refused the PIN (\(from)) as malformed, before trying it (\(error))\(lengths)")
            }
            // A token made with `pkcs11-tool --init-token` alone.
            if error.noUserPIN {
                throw .failed("token \"\(token.shownLabel)\" has no user PIN yet (\(error)); set one with its SO PIN: "
                              + "pkcs11-tool --token-label … --login --login-type so --init-pin, or the HSM's own tool")
            }
            throw Self.failure(error, tokenKey, in: session)
        }
    }

    /// Why a PIN would not be tried on `token`: its PIN is locked, the token rejected this one
    /// before, or it has one try left, which an unattended PIN never spends. (A PIN entered on
    /// the reader's keypad, which the agent never sees, is nil.)
    private func refusal(of pin: SecretBytes?, from source: PINSource, on token: PKCS11TokenInfo) -> String? {
        if token.pinLocked { return Self.pinLocked(token) }
        let again = "not offering it again, since each try counts down the token's retries"
        if let pin, rejectedPINs[Self.identity(token)] == pin.withUnsafeBytes({ SHA256.hash(data: $0) }) {
            return "token \"\(token.shownLabel)\" rejected this PIN (from \(source)) before; \(again)"
        }
        if let pin, source.unattended, let memory = RejectedPINs.memory, let record = memory.rejectedPIN(of: Self.identity(token)),
           record.fingerprint == memory.fingerprint(of: pin) {
            let before = "token \"\(token.shownLabel)\" rejected this PIN (from \(source)) in an earlier run of the agent"
            // A token that shows failed tries (CKF_USER_PIN_COUNT_LOW) tells whether a login
            // succeeded since, anywhere: until one has, the record holds.
            if record.tokenShowedIt, token.pinCountLow || token.pinFinalTry { return "\(before), and no login has succeeded since; \(again)" }
            // One that does not (AWS CloudHSM locks a user after five) gets the PIN again only a
            // while later, so that an agent restarting in a loop cannot use up its retries.
            let retry = record.at + UInt64(Self.unattendedRetryAfter.components.seconds)
            if !record.tokenShowedIt, Self.now() < retry {
                return "\(before), and the token does not show whether a login succeeded since; it is offered again "
                    + "\(Self.unattendedRetryAfter.components.seconds / 60) minutes after that, at \(Self.timestamp(retry)), so that an agent restarting in a loop cannot use up the token's retries"
            }
        }
        if token.pinFinalTry && source.unattended { return "token \"\(token.shownLabel)\" has one PIN try left; an unattended PIN from \(source) will not spend it" }
        return nil
    }

    static func pinLocked(_ token: PKCS11TokenInfo) -> String {
        "the user PIN of token \"\(token.shownLabel)\" is locked; unblock it with the SO PIN"
    }

    /// How long after a token that does not show failed tries rejected an unattended PIN, in an
    /// earlier run, the PIN is offered to it again.
    static let unattendedRetryAfter = Duration.seconds(600)

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970) }

    static func timestamp(_ seconds: UInt64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// A token by what it says of itself, whichever URI named it.
    private static func identity(_ token: PKCS11TokenInfo) -> String {
        [token.manufacturer, token.model, token.serial, token.label].joined(separator: "\u{1F}")
    }

    /// Why `pin` would not be tried at the next login to the token `uri` names (see `login`), or
    /// nil when it would be or none is due: what `owner list` reports of an unattended PIN.
    public func refusal(of pin: SecretBytes, from source: PINSource, for uri: PKCS11URI) async throws(PKCS11Failure) -> String? {
        try await whenLoginDue(uri) { token in self.refusal(of: pin, from: source, on: token) }
    }

    /// Runs an operation; a token that went away mid-operation drops its session so the next
    /// request looks for it afresh.
    private func guarded<T>(_ state: TokenState, _ body: () throws(PKCS11Failure) -> T) throws(PKCS11Failure) -> T {
        do { return try body() } catch {
            if case .tokenAbsent = error { forget(state.tokenKey) }
            throw error
        }
    }

    /// What the agent reports for `error`, from an operation in `session` when there was one.
    static func failure(_ error: PKCS11Error, _ token: String, in session: PKCS11Session?) -> PKCS11Failure {
        if session?.tokenGone(after: error) ?? error.tokenGone { return .tokenAbsent("the token \(token) went away (\(error)); it is used again once it is back") }
        if error.notLoggedIn { return .pinNeeded("the token \(token) is no longer logged in (\(error))") }
        return .failed("\(error)")
    }

    /// Reads the PIN from its source; nil when a person is to enter it on the reader's keypad,
    /// which never lets the host see it (as ssh-agent and gpg-agent leave it to the keypad). Only
    /// called when a login is needed.
    private static func readPIN(_ source: PINSource, token: PKCS11TokenInfo, prompt: SecretPrompt,
                                forOneSignature: Bool = false) async throws(PKCS11Failure) -> SecretBytes? {
        if let unattended = try source.tokenPIN() { return unattended }
        if token.keypad { return nil }
        do { return try await prompt(pinPrompt(token, forOneSignature: forOneSignature)) } catch {
            throw .pinNeeded("no PIN was given for token \"\(token.shownLabel)\": \(error)")
        }
    }

    /// What a person is asked: the token by label and serial (which tell apart two tokens with
    /// one label, two cards of one make say), and a warning when few tries are left.
    public static func pinPrompt(_ token: PKCS11TokenInfo, forOneSignature: Bool = false) -> String {
        let warning = token.pinFinalTry ? " (LAST TRY: a wrong PIN locks it)" : token.pinCountLow ? " (few tries left)" : ""
        let purpose = forOneSignature ? " (this key asks for it at every signature)" : ""
        let serial = token.serial.isEmpty ? "" : ", serial \(DisplayText.escaped(token.serial))"
        let keypad = token.keypad ? " on the reader's keypad" : ""
        return "PIN for token \"\(token.shownLabel)\"\(serial)\(keypad)\(purpose)\(warning)"
    }
}

/// The providers of one process, one per module file. A package type so that a test can stop a
/// set of its own while the other tests go on using the process's.
package final class PKCS11Providers: Sendable {
    package static let process = PKCS11Providers()
    private struct State {
        var providers: [String: PKCS11Provider] = [:]
        /// Set by `finalizeAll`: a module first named while the process stops would be
        /// initialised beside its exit handlers, as `PKCS11Provider.finalize` says.
        var finalized = false
    }
    private let state = Mutex(State())

    package init() {}

    package func provider(modulePath path: String) -> PKCS11Provider {
        let file = PKCS11Module.file(path)
        return state.withLock { state in
            if let provider = state.providers[file] { return provider }
            let provider = PKCS11Provider(modulePath: path, finalized: state.finalized)
            state.providers[file] = provider
            return provider
        }
    }

    package func finalizeAll(waiting wait: Duration) {
        let all = state.withLock { state in
            state.finalized = true
            return Array(state.providers.values)
        }
        let finalized = DispatchGroup()
        for provider in all {
            finalized.enter()
            provider.finalize { finalized.leave() }
        }
        _ = finalized.wait(timeout: .now() + wait.seconds)
    }
}
