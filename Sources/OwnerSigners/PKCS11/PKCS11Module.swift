internal import CPKCS11
import EthereumCore
import Foundation

// Every PKCS#11 call of the agent goes through this file: the module, its slots and tokens, and
// one session on a token. Handles and return codes stay in here; the rest of the package sees
// value types and `PKCS11Error`.

/// A PKCS#11 failure: the call and the module's return code with its standard name, or (no
/// code) a module that could not be loaded at all or that answered what no module may.
public struct PKCS11Error: Error, Equatable, Sendable, CustomStringConvertible {
    public let call: String
    public let code: UInt?

    init(_ call: String, _ rv: CK_RV) {
        self.call = call
        self.code = rv
    }

    init(moduleNotLoaded message: String) {
        call = message
        code = nil
    }

    /// A count or length the module answered that is more than it was given room for, or more
    /// than any token holds: read as given, it would have the agent read past a buffer, trap,
    /// or allocate terabytes.
    init(_ call: String, answered length: CK_ULONG, for what: String) {
        self.call = "\(call) answered \(length) for \(what) (a fault of the module)"
        code = nil
    }

    public var name: String {
        guard let code else { return "no return code" }
        if let name = Self.names[code] { return name }
        return code >= Self.vendorDefined ? String(format: "CKR_VENDOR_DEFINED+0x%lX (the module's vendor's own)", code - Self.vendorDefined)
            : String(format: "CKR_0x%lX", code)
    }

    /// CKR_VENDOR_DEFINED, which Swift does not import (a cast in its macro).
    static let vendorDefined: UInt = 1 << 31
    public var description: String { code == nil ? call : "\(call) failed: \(name)" }

    /// The token is gone (unplugged, deleted, its server stopped): drop the session and look
    /// again. CKR_GENERAL_ERROR may also be a fault of the module's own; see
    /// `PKCS11Session.tokenGone(after:)`.
    public var tokenGone: Bool {
        [CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_DEVICE_ERROR,
         CKR_SLOT_ID_INVALID, CKR_TOKEN_NOT_RECOGNIZED, CKR_OBJECT_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID,
         CKR_CRYPTOKI_NOT_INITIALIZED, CKR_GENERAL_ERROR].map { UInt($0) }.contains(code ?? 0)
    }

    public var pinIncorrect: Bool { code == UInt(CKR_PIN_INCORRECT) }
    /// The module does not offer the mechanism, or not with these parameters (p11-kit 0.24's
    /// client passes no AES-GCM parameters to its server, so refuses AES-GCM).
    public var mechanismRefused: Bool { [CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID].map { UInt($0) }.contains(code ?? 0) }
    /// The module refused the PIN's length or characters; OpenSC does so before the card sees
    /// it, so no try is counted.
    public var pinMalformed: Bool { code == UInt(CKR_PIN_LEN_RANGE) || code == UInt(CKR_PIN_INVALID) }
    public var pinLocked: Bool { code == UInt(CKR_PIN_LOCKED) }
    public var pinExpired: Bool { code == UInt(CKR_PIN_EXPIRED) }
    /// The person cancelled on the reader's keypad.
    public var cancelled: Bool { code == UInt(CKR_FUNCTION_CANCELED) }
    public var notLoggedIn: Bool { code == UInt(CKR_USER_NOT_LOGGED_IN) }
    /// The token has no user PIN yet: a login could not have looked at the one given.
    public var noUserPIN: Bool { code == UInt(CKR_USER_PIN_NOT_INITIALIZED) }

    /// Every return code p11-kit's PKCS#11 header knows, by the name an operator searches for.
    static let names: [UInt: String] = [
        UInt(CKR_CANCEL): "CKR_CANCEL", UInt(CKR_HOST_MEMORY): "CKR_HOST_MEMORY", UInt(CKR_SLOT_ID_INVALID): "CKR_SLOT_ID_INVALID",
        UInt(CKR_GENERAL_ERROR): "CKR_GENERAL_ERROR", UInt(CKR_FUNCTION_FAILED): "CKR_FUNCTION_FAILED", UInt(CKR_ARGUMENTS_BAD): "CKR_ARGUMENTS_BAD",
        UInt(CKR_NO_EVENT): "CKR_NO_EVENT", UInt(CKR_NEED_TO_CREATE_THREADS): "CKR_NEED_TO_CREATE_THREADS", UInt(CKR_CANT_LOCK): "CKR_CANT_LOCK",
        UInt(CKR_ATTRIBUTE_READ_ONLY): "CKR_ATTRIBUTE_READ_ONLY", UInt(CKR_ATTRIBUTE_SENSITIVE): "CKR_ATTRIBUTE_SENSITIVE",
        UInt(CKR_ATTRIBUTE_TYPE_INVALID): "CKR_ATTRIBUTE_TYPE_INVALID", UInt(CKR_ATTRIBUTE_VALUE_INVALID): "CKR_ATTRIBUTE_VALUE_INVALID",
        UInt(CKR_ACTION_PROHIBITED): "CKR_ACTION_PROHIBITED", UInt(CKR_DATA_INVALID): "CKR_DATA_INVALID",
        UInt(CKR_DATA_LEN_RANGE): "CKR_DATA_LEN_RANGE", UInt(CKR_DEVICE_ERROR): "CKR_DEVICE_ERROR", UInt(CKR_DEVICE_MEMORY): "CKR_DEVICE_MEMORY",
        UInt(CKR_DEVICE_REMOVED): "CKR_DEVICE_REMOVED", UInt(CKR_ENCRYPTED_DATA_INVALID): "CKR_ENCRYPTED_DATA_INVALID",
        UInt(CKR_ENCRYPTED_DATA_LEN_RANGE): "CKR_ENCRYPTED_DATA_LEN_RANGE", UInt(CKR_FUNCTION_CANCELED): "CKR_FUNCTION_CANCELED",
        UInt(CKR_FUNCTION_NOT_PARALLEL): "CKR_FUNCTION_NOT_PARALLEL", UInt(CKR_FUNCTION_NOT_SUPPORTED): "CKR_FUNCTION_NOT_SUPPORTED",
        UInt(CKR_KEY_HANDLE_INVALID): "CKR_KEY_HANDLE_INVALID", UInt(CKR_KEY_SIZE_RANGE): "CKR_KEY_SIZE_RANGE",
        UInt(CKR_KEY_TYPE_INCONSISTENT): "CKR_KEY_TYPE_INCONSISTENT", UInt(CKR_KEY_NOT_NEEDED): "CKR_KEY_NOT_NEEDED",
        UInt(CKR_KEY_CHANGED): "CKR_KEY_CHANGED", UInt(CKR_KEY_NEEDED): "CKR_KEY_NEEDED", UInt(CKR_KEY_INDIGESTIBLE): "CKR_KEY_INDIGESTIBLE",
        UInt(CKR_KEY_FUNCTION_NOT_PERMITTED): "CKR_KEY_FUNCTION_NOT_PERMITTED", UInt(CKR_KEY_NOT_WRAPPABLE): "CKR_KEY_NOT_WRAPPABLE",
        UInt(CKR_KEY_UNEXTRACTABLE): "CKR_KEY_UNEXTRACTABLE", UInt(CKR_MECHANISM_INVALID): "CKR_MECHANISM_INVALID",
        UInt(CKR_MECHANISM_PARAM_INVALID): "CKR_MECHANISM_PARAM_INVALID", UInt(CKR_OBJECT_HANDLE_INVALID): "CKR_OBJECT_HANDLE_INVALID",
        UInt(CKR_OPERATION_ACTIVE): "CKR_OPERATION_ACTIVE", UInt(CKR_OPERATION_NOT_INITIALIZED): "CKR_OPERATION_NOT_INITIALIZED",
        UInt(CKR_PIN_INCORRECT): "CKR_PIN_INCORRECT", UInt(CKR_PIN_INVALID): "CKR_PIN_INVALID", UInt(CKR_PIN_LEN_RANGE): "CKR_PIN_LEN_RANGE",
        UInt(CKR_PIN_EXPIRED): "CKR_PIN_EXPIRED", UInt(CKR_PIN_LOCKED): "CKR_PIN_LOCKED", UInt(CKR_SESSION_CLOSED): "CKR_SESSION_CLOSED",
        UInt(CKR_SESSION_COUNT): "CKR_SESSION_COUNT", UInt(CKR_SESSION_HANDLE_INVALID): "CKR_SESSION_HANDLE_INVALID",
        UInt(CKR_SESSION_PARALLEL_NOT_SUPPORTED): "CKR_SESSION_PARALLEL_NOT_SUPPORTED", UInt(CKR_SESSION_READ_ONLY): "CKR_SESSION_READ_ONLY",
        UInt(CKR_SESSION_EXISTS): "CKR_SESSION_EXISTS", UInt(CKR_SESSION_READ_ONLY_EXISTS): "CKR_SESSION_READ_ONLY_EXISTS",
        UInt(CKR_SESSION_READ_WRITE_SO_EXISTS): "CKR_SESSION_READ_WRITE_SO_EXISTS", UInt(CKR_SIGNATURE_INVALID): "CKR_SIGNATURE_INVALID",
        UInt(CKR_SIGNATURE_LEN_RANGE): "CKR_SIGNATURE_LEN_RANGE", UInt(CKR_TEMPLATE_INCOMPLETE): "CKR_TEMPLATE_INCOMPLETE",
        UInt(CKR_TEMPLATE_INCONSISTENT): "CKR_TEMPLATE_INCONSISTENT", UInt(CKR_TOKEN_NOT_PRESENT): "CKR_TOKEN_NOT_PRESENT",
        UInt(CKR_TOKEN_NOT_RECOGNIZED): "CKR_TOKEN_NOT_RECOGNIZED", UInt(CKR_TOKEN_WRITE_PROTECTED): "CKR_TOKEN_WRITE_PROTECTED",
        UInt(CKR_UNWRAPPING_KEY_HANDLE_INVALID): "CKR_UNWRAPPING_KEY_HANDLE_INVALID", UInt(CKR_UNWRAPPING_KEY_SIZE_RANGE): "CKR_UNWRAPPING_KEY_SIZE_RANGE",
        UInt(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT): "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
        UInt(CKR_USER_ALREADY_LOGGED_IN): "CKR_USER_ALREADY_LOGGED_IN", UInt(CKR_USER_NOT_LOGGED_IN): "CKR_USER_NOT_LOGGED_IN",
        UInt(CKR_USER_PIN_NOT_INITIALIZED): "CKR_USER_PIN_NOT_INITIALIZED", UInt(CKR_USER_TYPE_INVALID): "CKR_USER_TYPE_INVALID",
        UInt(CKR_USER_ANOTHER_ALREADY_LOGGED_IN): "CKR_USER_ANOTHER_ALREADY_LOGGED_IN", UInt(CKR_USER_TOO_MANY_TYPES): "CKR_USER_TOO_MANY_TYPES",
        UInt(CKR_WRAPPED_KEY_INVALID): "CKR_WRAPPED_KEY_INVALID", UInt(CKR_WRAPPED_KEY_LEN_RANGE): "CKR_WRAPPED_KEY_LEN_RANGE",
        UInt(CKR_WRAPPING_KEY_HANDLE_INVALID): "CKR_WRAPPING_KEY_HANDLE_INVALID", UInt(CKR_WRAPPING_KEY_SIZE_RANGE): "CKR_WRAPPING_KEY_SIZE_RANGE",
        UInt(CKR_WRAPPING_KEY_TYPE_INCONSISTENT): "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
        UInt(CKR_RANDOM_SEED_NOT_SUPPORTED): "CKR_RANDOM_SEED_NOT_SUPPORTED", UInt(CKR_RANDOM_NO_RNG): "CKR_RANDOM_NO_RNG",
        UInt(CKR_DOMAIN_PARAMS_INVALID): "CKR_DOMAIN_PARAMS_INVALID", UInt(CKR_CURVE_NOT_SUPPORTED): "CKR_CURVE_NOT_SUPPORTED",
        UInt(CKR_BUFFER_TOO_SMALL): "CKR_BUFFER_TOO_SMALL", UInt(CKR_SAVED_STATE_INVALID): "CKR_SAVED_STATE_INVALID",
        UInt(CKR_INFORMATION_SENSITIVE): "CKR_INFORMATION_SENSITIVE", UInt(CKR_STATE_UNSAVEABLE): "CKR_STATE_UNSAVEABLE",
        UInt(CKR_CRYPTOKI_NOT_INITIALIZED): "CKR_CRYPTOKI_NOT_INITIALIZED",
        UInt(CKR_CRYPTOKI_ALREADY_INITIALIZED): "CKR_CRYPTOKI_ALREADY_INITIALIZED", UInt(CKR_MUTEX_BAD): "CKR_MUTEX_BAD",
        UInt(CKR_MUTEX_NOT_LOCKED): "CKR_MUTEX_NOT_LOCKED", UInt(CKR_NEW_PIN_MODE): "CKR_NEW_PIN_MODE", UInt(CKR_NEXT_OTP): "CKR_NEXT_OTP",
        UInt(CKR_EXCEEDED_MAX_ITERATIONS): "CKR_EXCEEDED_MAX_ITERATIONS", UInt(CKR_FIPS_SELF_TEST_FAILED): "CKR_FIPS_SELF_TEST_FAILED",
        UInt(CKR_LIBRARY_LOAD_FAILED): "CKR_LIBRARY_LOAD_FAILED", UInt(CKR_PIN_TOO_WEAK): "CKR_PIN_TOO_WEAK",
        UInt(CKR_PUBLIC_KEY_INVALID): "CKR_PUBLIC_KEY_INVALID", UInt(CKR_FUNCTION_REJECTED): "CKR_FUNCTION_REJECTED",
    ]
}

/// A module as C_GetInfo describes it: what a URI's `library-*` attributes select.
public struct PKCS11LibraryInfo: Sendable, Equatable {
    public var manufacturer: String
    public var description: String
    public var version: PKCS11Version
}

/// A module's version, as C_GetInfo gives it and a URI writes it (`library-version=2.6`).
public struct PKCS11Version: Sendable, Equatable, CustomStringConvertible {
    public var major: UInt8
    public var minor: UInt8

    public init(major: UInt8, minor: UInt8) {
        self.major = major
        self.minor = minor
    }

    /// `M` (minor 0) or `M.N`, decimal digits, as p11-kit reads them: each at most 254, since
    /// p11-kit keeps 255 to mean "not given".
    public init?(_ text: Substring) {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        func number(_ s: Substring) -> UInt8? {
            guard !s.isEmpty, s.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let n = UInt8(s), n < 255 else { return nil }
            return n
        }
        guard let major = number(parts[0]) else { return nil }
        let minor = parts.count > 1 ? number(parts[1]) : 0
        guard let minor else { return nil }
        self.init(major: major, minor: minor)
    }

    public var description: String { "\(major).\(minor)" }
}

/// A token as C_GetTokenInfo describes it (the fixed-width, space-padded fields trimmed), with
/// its slot and module.
public struct PKCS11TokenInfo: Sendable, Equatable {
    public var slot: UInt
    public var slotDescription: String
    public var slotManufacturer: String
    public var library: PKCS11LibraryInfo
    public var label: String
    public var manufacturer: String
    public var model: String
    public var serial: String
    /// False for an empty slot SoftHSM keeps for the next C_InitToken.
    public var initialized: Bool
    public var loginRequired: Bool
    public var pinCountLow: Bool
    public var pinFinalTry: Bool
    public var pinLocked: Bool
    /// The user PIN must be changed before it is any use (CKF_USER_PIN_TO_BE_CHANGED): expired,
    /// or still the one the token came with.
    public var pinToBeChanged: Bool
    /// The PIN lengths the token takes, in bytes; nil when it does not say.
    public var pinLengths: ClosedRange<UInt>?
    /// The PIN is entered on the reader's own keypad (CKF_PROTECTED_AUTHENTICATION_PATH), so the
    /// host never sees it.
    public var keypad: Bool

    /// The label as messages and prompts show it: what the token says of itself, its control
    /// characters written out.
    public var shownLabel: String { DisplayText.escaped(label) }
}

/// What a module shows: its tokens, its empty slots, and the slots whose token it could not
/// describe.
public struct PKCS11TokenListing: Sendable {
    public var present: [PKCS11TokenInfo] = []
    public var empty: [EmptySlot] = []
    public var unreadable: [UnreadableSlot] = []

    public init() {}

    /// A slot without a token: a smartcard reader without its card, an HSM's slot not in use.
    /// It tells whoever misses a token that the module sees the reader or device.
    public struct EmptySlot: Sendable, CustomStringConvertible {
        public var slot: UInt
        public var slotDescription: String
        public var manufacturer: String
        public var description: String { "slot \(slot) \"\(DisplayText.escaped(slotDescription))\" is empty" }

        init(slot: UInt, _ info: CK_SLOT_INFO) {
            var info = info
            self.slot = slot
            slotDescription = PKCS11Module.padded(&info.slotDescription)
            manufacturer = PKCS11Module.padded(&info.manufacturerID)
        }
    }

    public struct UnreadableSlot: Sendable, CustomStringConvertible {
        public var slot: UInt
        public var error: PKCS11Error
        public var description: String { "slot \(slot) cannot be read (\(error))" }
    }

    /// For an error about a token the module does not show (a label mistyped in a URI, or a card
    /// not in its reader): the tokens it does, `"a", "b"` or `no token`, its empty slots, and the
    /// slots it could not read (the token may be in one), each the first five and how many more.
    public var shown: String {
        ([listed(present.map { "\"\($0.shownLabel)\"" }, none: "no token")]
            + [empty.map(\.description), unreadable.map(\.description)].filter { !$0.isEmpty }.map { listed($0, none: "") })
            .joined(separator: "; ")
    }
}

/// Names in an error: the first five and how many more, or `none`.
func listed(_ names: [String], none: String) -> String {
    if names.isEmpty { return none }
    return names.prefix(5).joined(separator: ", ") + (names.count > 5 ? " and \(names.count - 5) more" : "")
}

/// What an object on a token is, as far as the agent cares.
public enum PKCS11ObjectClass: String, Sendable {
    case privateKey = "private"
    case publicKey = "public"
    case secretKey = "secret-key"

    var value: CK_OBJECT_CLASS {
        switch self {
        case .privateKey: CK_OBJECT_CLASS(CKO_PRIVATE_KEY)
        case .publicKey: CK_OBJECT_CLASS(CKO_PUBLIC_KEY)
        case .secretKey: CK_OBJECT_CLASS(CKO_SECRET_KEY)
        }
    }
}

/// One loaded PKCS#11 module. Modules named by path are loaded through p11-kit unmanaged: the
/// agent calls C_Initialize and C_Finalize itself, so dropping this object and loading the
/// module again really rescans its slots (SoftHSM, for one, only sees a token that came back
/// after that).
public final class PKCS11Module: @unchecked Sendable {
    public let path: String
    public let library: PKCS11LibraryInfo
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>

    /// The file a module path names, symlinks followed: two paths to one library (Debian's
    /// /usr/lib/softhsm is a symlink) are one module, initialised once per process. (NSString's
    /// resolvingSymlinksInPath leaves a relative symlink as it is on Linux.)
    public static func file(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().path }

    /// Why p11-kit's client (p11-kit-client.so) may show no token: no `p11-kit server` listens
    /// where it looks (`P11_KIT_SERVER_ADDRESS`, else its default socket). Nil for other modules,
    /// and when a server is there.
    public static func serverHint(for path: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard URL(fileURLWithPath: path).lastPathComponent == "p11-kit-client.so" else { return nil }
        guard let address = environment["P11_KIT_SERVER_ADDRESS"], !address.isEmpty else {
            // Where the client looks then: $XDG_RUNTIME_DIR, else /run/user/UID, else ~/.cache.
            var isDirectory: ObjCBool = false
            let userRun = "/run/user/\(getuid())"
            let runtime = environment["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 }
                ?? (FileManager.default.fileExists(atPath: userRun, isDirectory: &isDirectory) && isDirectory.boolValue ? userRun : NSHomeDirectory() + "/.cache")
            let socket = runtime + "/p11-kit/pkcs11"
            if FileManager.default.fileExists(atPath: socket) { return nil }
            return "P11_KIT_SERVER_ADDRESS is not set, and no p11-kit server listens at \(socket), where p11-kit's client then looks"
        }
        guard address.hasPrefix("unix:path="), let socket = address.dropFirst("unix:path=".count).removingPercentEncoding else { return nil }
        if FileManager.default.fileExists(atPath: socket) { return nil }
        return "no p11-kit server listens at \(socket) (P11_KIT_SERVER_ADDRESS)"
    }

    /// Loads the module at `path` (a shared object implementing PKCS#11; a relative path is
    /// relative to the working directory, as for pkcs11-tool and ssh-add, where p11-kit would
    /// look in its own directory of modules).
    public init(path: String) throws(PKCS11Error) {
        Self.ignoreBrokenPipes
        let file = URL(fileURLWithPath: path).path
        guard FileManager.default.fileExists(atPath: file) else { throw PKCS11Error(moduleNotLoaded: "the PKCS#11 module \(path) does not exist") }
        guard let module = p11_kit_module_load(file, Int32(P11_KIT_MODULE_UNMANAGED)) else {
            throw PKCS11Error(moduleNotLoaded: "the PKCS#11 module \(path) cannot be loaded (not a shared object with C_GetFunctionList?)")
        }
        // Swift calls the function list's entries unchecked; a module that leaves one empty would
        // end the process at the first call instead of failing here.
        let missing = Self.missingFunctions(module.pointee)
        guard missing.isEmpty else {
            p11_kit_module_release(module)
            throw PKCS11Error(moduleNotLoaded: "the PKCS#11 module \(path) leaves \(missing.joined(separator: ", ")) empty in its function list")
        }
        let rv = p11_kit_module_initialize(module)
        guard rv == CKR_OK else {
            p11_kit_module_release(module)
            throw PKCS11Error("C_Initialize of \(path)", rv)
        }
        var info = CK_INFO()
        let infoRV = module.pointee.C_GetInfo(&info)
        guard infoRV == CKR_OK else {
            _ = p11_kit_module_finalize(module)
            p11_kit_module_release(module)
            throw PKCS11Error("C_GetInfo of \(path)", infoRV)
        }
        library = PKCS11LibraryInfo(manufacturer: Self.padded(&info.manufacturerID), description: Self.padded(&info.libraryDescription),
                                    version: PKCS11Version(major: info.libraryVersion.major, minor: info.libraryVersion.minor))
        self.functions = module
        self.path = path
    }

    deinit {
        _ = p11_kit_module_finalize(functions)
        p11_kit_module_release(functions)
    }

    /// The entries the agent calls that the module left empty.
    private static func missingFunctions(_ f: CK_FUNCTION_LIST) -> [String] {
        let entries: KeyValuePairs<String, Bool> = [
            "C_Initialize": f.C_Initialize == nil, "C_Finalize": f.C_Finalize == nil, "C_GetInfo": f.C_GetInfo == nil, "C_GetSlotList": f.C_GetSlotList == nil,
            "C_GetSlotInfo": f.C_GetSlotInfo == nil, "C_GetTokenInfo": f.C_GetTokenInfo == nil, "C_OpenSession": f.C_OpenSession == nil,
            "C_CloseSession": f.C_CloseSession == nil, "C_GetSessionInfo": f.C_GetSessionInfo == nil, "C_Login": f.C_Login == nil,
            "C_FindObjectsInit": f.C_FindObjectsInit == nil, "C_FindObjects": f.C_FindObjects == nil, "C_FindObjectsFinal": f.C_FindObjectsFinal == nil,
            "C_GetAttributeValue": f.C_GetAttributeValue == nil, "C_SignInit": f.C_SignInit == nil, "C_Sign": f.C_Sign == nil,
            "C_GenerateKeyPair": f.C_GenerateKeyPair == nil, "C_GenerateKey": f.C_GenerateKey == nil, "C_EncryptInit": f.C_EncryptInit == nil,
            "C_Encrypt": f.C_Encrypt == nil, "C_DecryptInit": f.C_DecryptInit == nil, "C_Decrypt": f.C_Decrypt == nil,
        ]
        return entries.filter(\.value).map(\.key)
    }

    /// A module p11-kit is configured with: its registration name and its shared object.
    public struct Registration: Sendable, Equatable {
        public var name: String
        public var path: String

        package init(name: String, path: String) {
            self.name = name
            self.path = path
        }
    }

    /// The modules p11-kit is configured with (/usr/share/p11-kit/modules, /etc/pkcs11/modules,
    /// and for non-root users ~/.config/pkcs11/modules). Listed without initialising them: the
    /// agent reaches every module through its own loading of it, so a module in use is never
    /// initialised or finalised beside it.
    public static func registered() -> [Registration] {
        ignoreBrokenPipes
        guard let list = p11_kit_modules_load(nil, 0) else { return [] }
        defer { p11_kit_modules_release(list) }
        var registrations: [Registration] = []
        var i = 0
        while let module = list[i] {
            if let path = takeString(p11_kit_module_get_filename(module)) {
                registrations.append(Registration(name: takeString(p11_kit_module_get_name(module)) ?? path, path: path))
            }
            i += 1
        }
        return registrations
    }

    /// Modules for remote HSMs (p11-kit-client, CloudHSM, YubiHSM's connector) write to sockets
    /// whose other end may be gone: that must be an error from the module, not SIGPIPE ending
    /// the process.
    private static let ignoreBrokenPipes: Void = { signal(SIGPIPE, SIG_IGN) }()

    private static func takeString(_ p: UnsafeMutablePointer<CChar>?) -> String? {
        guard let p else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    // MARK: Slots and tokens

    /// The tokens the module shows, and its empty slots. A slot it cannot describe (a reader in a
    /// bad state, a faulty slot of an HSM) is set apart with its error: it must not hide the
    /// module's other tokens from the agent. A slot gone since the slot list was read is left
    /// out, and one whose token went meanwhile is empty. (SoftHSM's spare slot, with a token
    /// not initialised yet, is neither: it is there for C_InitToken, not for a person to miss.)
    public func tokens() throws(PKCS11Error) -> PKCS11TokenListing {
        var tokens = PKCS11TokenListing()
        for slot in try slots() {
            var slotInfo = CK_SLOT_INFO()
            do throws(PKCS11Error) {
                try check("C_GetSlotInfo", functions.pointee.C_GetSlotInfo(CK_SLOT_ID(slot), &slotInfo))
                guard slotInfo.flags & CK_FLAGS(CKF_TOKEN_PRESENT) != 0 else {
                    tokens.empty.append(PKCS11TokenListing.EmptySlot(slot: slot, slotInfo))
                    continue
                }
                let info = try tokenInfo(slot: slot, slotInfo)
                if info.initialized { tokens.present.append(info) }
            } catch where error.code == UInt(CKR_TOKEN_NOT_PRESENT) {
                tokens.empty.append(PKCS11TokenListing.EmptySlot(slot: slot, slotInfo))
            } catch where error.tokenGone {
                continue
            } catch {
                tokens.unreadable.append(PKCS11TokenListing.UnreadableSlot(slot: slot, error: error))
            }
        }
        return tokens
    }

    /// Every slot, with a token or without. A token or reader plugged in between counting the
    /// slots and reading them makes the list longer than counted (CKR_BUFFER_TOO_SMALL): it is
    /// read again.
    private func slots() throws(PKCS11Error) -> ArraySlice<CK_SLOT_ID> {
        var reads = 0
        while true {
            reads += 1
            var count: CK_ULONG = 0
            try check("C_GetSlotList", functions.pointee.C_GetSlotList(CK_BBOOL(CK_FALSE), nil, &count))
            var slots = [CK_SLOT_ID](repeating: 0, count: try filled(count, of: 4096, by: "C_GetSlotList", for: "the number of slots"))
            let rv = functions.pointee.C_GetSlotList(CK_BBOOL(CK_FALSE), &slots, &count)
            if rv == CKR_BUFFER_TOO_SMALL, reads < 3 { continue }
            try check("C_GetSlotList", rv)
            return slots.prefix(try filled(count, of: slots.count, by: "C_GetSlotList", for: "the number of slots"))
        }
    }

    public func tokenInfo(slot: UInt) throws(PKCS11Error) -> PKCS11TokenInfo {
        var slotInfo = CK_SLOT_INFO()
        try check("C_GetSlotInfo", functions.pointee.C_GetSlotInfo(CK_SLOT_ID(slot), &slotInfo))
        return try tokenInfo(slot: slot, slotInfo)
    }

    private func tokenInfo(slot: UInt, _ slotInfo: CK_SLOT_INFO) throws(PKCS11Error) -> PKCS11TokenInfo {
        var slotInfo = slotInfo
        var info = CK_TOKEN_INFO()
        try check("C_GetTokenInfo", functions.pointee.C_GetTokenInfo(CK_SLOT_ID(slot), &info))
        let flags = info.flags
        return PKCS11TokenInfo(
            slot: slot, slotDescription: Self.padded(&slotInfo.slotDescription), slotManufacturer: Self.padded(&slotInfo.manufacturerID),
            library: library, label: Self.padded(&info.label),
            manufacturer: Self.padded(&info.manufacturerID), model: Self.padded(&info.model), serial: Self.padded(&info.serialNumber),
            initialized: flags & CK_FLAGS(CKF_TOKEN_INITIALIZED) != 0, loginRequired: flags & CK_FLAGS(CKF_LOGIN_REQUIRED) != 0, pinCountLow: flags & CK_FLAGS(CKF_USER_PIN_COUNT_LOW) != 0,
            pinFinalTry: flags & CK_FLAGS(CKF_USER_PIN_FINAL_TRY) != 0, pinLocked: flags & CK_FLAGS(CKF_USER_PIN_LOCKED) != 0,
            pinToBeChanged: flags & CK_FLAGS(CKF_USER_PIN_TO_BE_CHANGED) != 0,
            pinLengths: info.ulMaxPinLen == CK_ULONG.max || info.ulMaxPinLen < info.ulMinPinLen ? nil : UInt(info.ulMinPinLen)...UInt(info.ulMaxPinLen),
            keypad: flags & CK_FLAGS(CKF_PROTECTED_AUTHENTICATION_PATH) != 0)
    }

    /// A fixed-width PKCS#11 text field: UTF-8 padded with spaces, not NUL-terminated.
    fileprivate static func padded<T>(_ field: inout T) -> String {
        withUnsafeBytes(of: &field) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        }
    }

    public func openSession(slot: UInt) throws(PKCS11Error) -> PKCS11Session {
        var handle: CK_SESSION_HANDLE = 0
        // Read-write to make keys; read-only where the token allows no more (p11-kit's trust store).
        var rv = functions.pointee.C_OpenSession(CK_SLOT_ID(slot), CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &handle)
        if rv == CKR_TOKEN_WRITE_PROTECTED { rv = functions.pointee.C_OpenSession(CK_SLOT_ID(slot), CK_FLAGS(CKF_SERIAL_SESSION), nil, nil, &handle) }
        try check("C_OpenSession", rv)
        return PKCS11Session(module: self, handle: handle)
    }
}

func check(_ call: String, _ rv: CK_RV) throws(PKCS11Error) {
    guard rv == CKR_OK else { throw PKCS11Error(call, rv) }
}

/// `length` as a count, when it is at most `capacity` (the room the module was given, or the
/// most it may answer).
func filled(_ length: CK_ULONG, of capacity: Int, by call: String, for what: String) throws(PKCS11Error) -> Int {
    guard length <= CK_ULONG(capacity) else { throw PKCS11Error(call, answered: length, for: what) }
    return Int(length)
}

/// One open session on a token; closed when dropped. Not thread-safe: sessions are only used
/// from their module's queue (`PKCS11Provider`).
public final class PKCS11Session: @unchecked Sendable {
    let module: PKCS11Module
    let handle: CK_SESSION_HANDLE
    private var f: CK_FUNCTION_LIST { module.functions.pointee }

    init(module: PKCS11Module, handle: CK_SESSION_HANDLE) {
        self.module = module
        self.handle = handle
    }

    deinit { _ = f.C_CloseSession(handle) }

    /// Whether the token still answers for this session, and whether the user is logged in.
    public func state() throws(PKCS11Error) -> (loggedIn: Bool, slot: UInt) {
        var info = CK_SESSION_INFO()
        try check("C_GetSessionInfo", f.C_GetSessionInfo(handle, &info))
        let user = info.state == CK_STATE(CKS_RO_USER_FUNCTIONS) || info.state == CK_STATE(CKS_RW_USER_FUNCTIONS)
        return (user, UInt(info.slotID))
    }

    /// Whether `error`, from an operation in this session, means the token went away.
    /// CKR_GENERAL_ERROR is what some modules answer then, and what others answer for a fault of
    /// their own with the token present (SoftHSM, for an AES-GCM tag that does not match): the
    /// token still answering for its slot tells the two apart. The session answering is not
    /// enough: SoftHSM keeps answering for a session whose token directory is gone, and answers
    /// C_GetTokenInfo for that slot with CKR_GENERAL_ERROR.
    public func tokenGone(after error: PKCS11Error) -> Bool {
        guard error.tokenGone else { return false }
        guard error.code == UInt(CKR_GENERAL_ERROR) else { return true }
        guard let slot = try? state().slot else { return true }
        return (try? module.tokenInfo(slot: slot)) == nil
    }

    /// C_Login as the user, with `pin`, or with none when the person enters it on the reader's
    /// keypad (the call returns once they have). A login applies to every session of the
    /// application on that token. With `contextSpecific`, the login a key marked
    /// CKA_ALWAYS_AUTHENTICATE needs between C_SignInit and C_Sign; it lasts for that one operation.
    public func login(pin: SecretBytes?, contextSpecific: Bool = false) throws(PKCS11Error) {
        let user = CK_USER_TYPE(contextSpecific ? CKU_CONTEXT_SPECIFIC : CKU_USER)
        let rv = pin?.withUnsafeBytes { bytes in
            f.C_Login(handle, user, UnsafeMutablePointer(mutating: bytes.bindMemory(to: UInt8.self).baseAddress), CK_ULONG(bytes.count))
        } ?? f.C_Login(handle, user, nil, 0)
        guard rv != CKR_USER_ALREADY_LOGGED_IN || contextSpecific else { return }
        // A token may leave the session logged in, for C_SetPIN alone; the next C_Login would
        // then answer CKR_USER_ALREADY_LOGGED_IN, taken above for a login that works. (A
        // context-specific login's failure leaves the user's login as it was.)
        if rv == CKR_PIN_EXPIRED, !contextSpecific { _ = f.C_Logout(handle) }
        try check("C_Login", rv)
    }

    // MARK: Objects

    /// The most objects one search is taken from: far more than any the agent makes (a key by
    /// its label and id, a token's EC keys) can match, and a bound on what a module that never
    /// says "no more" (a faulty one, or a hostile `p11-kit server`) can have the agent collect.
    static let mostObjectsFound = 1 << 16

    /// The handles of the objects matching every given attribute.
    public func find(_ attributes: [PKCS11Attribute]) throws(PKCS11Error) -> [UInt] {
        try withTemplate(attributes) { template throws(PKCS11Error) in
            try check("C_FindObjectsInit", f.C_FindObjectsInit(handle, template.baseAddress, CK_ULONG(template.count)))
        }
        defer { _ = f.C_FindObjectsFinal(handle) }
        var found: [UInt] = []
        var batch = [CK_OBJECT_HANDLE](repeating: 0, count: 32)
        while true {
            var count: CK_ULONG = 0
            try check("C_FindObjects", f.C_FindObjects(handle, &batch, CK_ULONG(batch.count), &count))
            if count == 0 { return found }
            found += batch.prefix(try filled(count, of: batch.count, by: "C_FindObjects", for: "the number of objects")).map { UInt($0) }
            if found.count > Self.mostObjectsFound {
                throw PKCS11Error("C_FindObjects", answered: CK_ULONG(found.count), for: "the objects of one search, more than the agent takes")
            }
        }
    }

    /// An attribute's value, or nil when the object has no such attribute (or keeps it secret).
    public func attribute(_ type: PKCS11Attribute.Kind, of object: UInt) throws(PKCS11Error) -> [UInt8]? {
        var attribute = CK_ATTRIBUTE(type: type.value, pValue: nil, ulValueLen: 0)
        let rv = f.C_GetAttributeValue(handle, CK_OBJECT_HANDLE(object), &attribute, 1)
        if rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE { return nil }
        try check("C_GetAttributeValue", rv)
        guard attribute.ulValueLen != CK_ULONG.max else { return nil }
        var value = [UInt8](repeating: 0, count: try filled(attribute.ulValueLen, of: 1 << 16, by: "C_GetAttributeValue", for: "an attribute's length"))
        let read = value.withUnsafeMutableBytes { buffer in
            attribute.pValue = buffer.baseAddress
            return f.C_GetAttributeValue(handle, CK_OBJECT_HANDLE(object), &attribute, 1)
        }
        try check("C_GetAttributeValue", read)
        return Array(value.prefix(try filled(attribute.ulValueLen, of: value.count, by: "C_GetAttributeValue", for: "an attribute's length")))
    }

    // MARK: Keys

    /// CKM_ECDSA over `digest` (the raw r‖s the standard defines).
    public func signECDSA(key: UInt, digest: [UInt8]) throws(PKCS11Error) -> [UInt8] {
        try signInitECDSA(key: key)
        return try sign(digest)
    }

    /// C_SignInit for CKM_ECDSA; `sign` completes it.
    public func signInitECDSA(key: UInt) throws(PKCS11Error) {
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_ECDSA), pParameter: nil, ulParameterLen: 0)
        try check("C_SignInit", f.C_SignInit(handle, &mechanism, CK_OBJECT_HANDLE(key)))
    }

    /// C_Sign: completes the operation `signInitECDSA` began, successful or not.
    public func sign(_ digest: [UInt8]) throws(PKCS11Error) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: 132)
        var length = CK_ULONG(signature.count)
        var input = digest
        try check("C_Sign", f.C_Sign(handle, &input, CK_ULONG(input.count), &signature, &length))
        return Array(signature.prefix(try filled(length, of: signature.count, by: "C_Sign", for: "the signature's length")))
    }

    /// An EC key pair kept on the token; the private half can sign and never leaves it.
    public func generateECKeyPair(curveParameters: [UInt8], label: String, id: [UInt8]) throws(PKCS11Error) -> (publicKey: UInt, privateKey: UInt) {
        let common: [PKCS11Attribute] = [.init(.token, true), .init(.label, Array(label.utf8)), .init(.id, id)]
        let publicTemplate = common + [.init(.ecParams, curveParameters), .init(.verify, true), .init(.private, false)]
        let privateTemplate = common + [.init(.private, true), .init(.sensitive, true), .init(.extractable, false), .init(.sign, true)]
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_EC_KEY_PAIR_GEN), pParameter: nil, ulParameterLen: 0)
        var publicKey: CK_OBJECT_HANDLE = 0, privateKey: CK_OBJECT_HANDLE = 0
        try withTemplate(publicTemplate) { pub throws(PKCS11Error) in
            try withTemplate(privateTemplate) { priv throws(PKCS11Error) in
                try check("C_GenerateKeyPair", f.C_GenerateKeyPair(handle, &mechanism, pub.baseAddress, CK_ULONG(pub.count),
                                                                   priv.baseAddress, CK_ULONG(priv.count), &publicKey, &privateKey))
            }
        }
        return (UInt(publicKey), UInt(privateKey))
    }

    /// Removes an object from the token.
    public func destroy(_ object: UInt) throws(PKCS11Error) {
        // Not among the functions a module must fill in to be loaded: only this needs it.
        guard f.C_DestroyObject != nil else { throw PKCS11Error("C_DestroyObject", CK_RV(CKR_FUNCTION_NOT_SUPPORTED)) }
        try check("C_DestroyObject", f.C_DestroyObject(handle, CK_OBJECT_HANDLE(object)))
    }

    /// An AES-256 key kept on the token that can encrypt and decrypt but never be read out.
    public func generateAESKey(label: String, id: [UInt8]) throws(PKCS11Error) -> UInt {
        let template: [PKCS11Attribute] = [
            .init(.token, true), .init(.label, Array(label.utf8)), .init(.id, id), .init(.valueLength, UInt(32)), .init(.private, true),
            .init(.sensitive, true), .init(.extractable, false), .init(.encrypt, true), .init(.decrypt, true),
        ]
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_AES_KEY_GEN), pParameter: nil, ulParameterLen: 0)
        var key: CK_OBJECT_HANDLE = 0
        try withTemplate(template) { t throws(PKCS11Error) in
            try check("C_GenerateKey", f.C_GenerateKey(handle, &mechanism, t.baseAddress, CK_ULONG(t.count), &key))
        }
        return UInt(key)
    }

    /// AES-GCM with a 128-bit tag under a token key, asked to use `nonce`: the nonce as the token
    /// left it in the parameters (AWS CloudHSM, for one, writes the IV it chose there) and what it
    /// returned, ciphertext ‖ tag from a module that follows the standard. The output has room
    /// for an IV some HSMs append (Thales Luna in FIPS mode), so such output arrives whole.
    public func encryptGCM(key: UInt, nonce: [UInt8], aad: [UInt8], plaintext: UnsafeRawBufferPointer) throws(PKCS11Error) -> (nonce: [UInt8], sealed: [UInt8]) {
        let (iv, output) = try gcm(key: key, nonce: nonce, aad: aad, input: plaintext, encrypt: true)
        return (iv, output)
    }

    /// The plaintext of an AES-GCM ciphertext ‖ tag.
    public func decryptGCM(key: UInt, nonce: [UInt8], aad: [UInt8], sealed: [UInt8]) throws(PKCS11Error) -> SecretBytes {
        let result = sealed.withUnsafeBytes { b in Result { () throws(PKCS11Error) in try gcm(key: key, nonce: nonce, aad: aad, input: b, encrypt: false).output } }
        var plain = try result.get()
        defer { plain.withUnsafeMutableBytes { SecretBytes.zero($0) } }
        return plain.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    /// AES-ECB of whole blocks under a token key: a pseudo-random function of `blocks` that only
    /// the token can compute. Its output is secret.
    public func encryptECB(key: UInt, blocks: [UInt8]) throws(PKCS11Error) -> SecretBytes {
        var input = blocks
        var output = [UInt8](repeating: 0, count: blocks.count)
        var length = CK_ULONG(output.count)
        defer { output.withUnsafeMutableBytes { SecretBytes.zero($0) } }
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_AES_ECB), pParameter: nil, ulParameterLen: 0)
        try check("C_EncryptInit", f.C_EncryptInit(handle, &mechanism, CK_OBJECT_HANDLE(key)))
        try check("C_Encrypt", f.C_Encrypt(handle, &input, CK_ULONG(input.count), &output, &length))
        guard length == CK_ULONG(blocks.count) else { throw PKCS11Error("C_Encrypt", answered: length, for: "the length of \(blocks.count) bytes encrypted") }
        return output.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    private func gcm(key: UInt, nonce: [UInt8], aad: [UInt8], input: UnsafeRawBufferPointer, encrypt: Bool) throws(PKCS11Error) -> (iv: [UInt8], output: [UInt8]) {
        var iv = nonce, additional = aad
        var output = [UInt8](repeating: 0, count: input.count + (encrypt ? 16 + 32 : 0))
        var length = CK_ULONG(output.count)
        let source = UnsafeMutablePointer(mutating: input.bindMemory(to: UInt8.self).baseAddress)
        // (call, return code) of the init and the operation; checked once the pointers are gone.
        let (call, rv): (String, CK_RV) = iv.withUnsafeMutableBufferPointer { ivp in
            additional.withUnsafeMutableBufferPointer { aadp in
                var params = CK_GCM_PARAMS(pIv: ivp.baseAddress, ulIvLen: CK_ULONG(ivp.count), ulIvBits: CK_ULONG(ivp.count * 8),
                                           pAAD: aadp.baseAddress, ulAADLen: CK_ULONG(aadp.count), ulTagBits: 128)
                return withUnsafeMutablePointer(to: &params) { p in
                    var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_AES_GCM), pParameter: UnsafeMutableRawPointer(p),
                                                 ulParameterLen: CK_ULONG(MemoryLayout<CK_GCM_PARAMS>.size))
                    if encrypt {
                        let rv = f.C_EncryptInit(handle, &mechanism, CK_OBJECT_HANDLE(key))
                        return rv != CKR_OK ? ("C_EncryptInit", rv) : ("C_Encrypt", f.C_Encrypt(handle, source, CK_ULONG(input.count), &output, &length))
                    }
                    let rv = f.C_DecryptInit(handle, &mechanism, CK_OBJECT_HANDLE(key))
                    return rv != CKR_OK ? ("C_DecryptInit", rv) : ("C_Decrypt", f.C_Decrypt(handle, source, CK_ULONG(input.count), &output, &length))
                }
            }
        }
        // A decrypted data key is copied out; the buffer the module wrote it into is wiped
        // before it goes back to the allocator.
        defer { if !encrypt { output.withUnsafeMutableBytes { SecretBytes.zero($0) } } }
        try check(call, rv)
        return (iv, Array(output.prefix(try filled(length, of: output.count, by: call, for: "the output's length"))))
    }

    /// Runs `body` with a C template whose value pointers stay valid for the call.
    private func withTemplate<T>(_ attributes: [PKCS11Attribute], _ body: (UnsafeMutableBufferPointer<CK_ATTRIBUTE>) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        let values = attributes.map { attribute -> UnsafeMutableRawBufferPointer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(attribute.value.count, 1), alignment: 8)
            buffer.copyBytes(from: attribute.value)
            return buffer
        }
        defer { values.forEach { $0.deallocate() } }
        var template = zip(attributes, values).map { attribute, buffer in
            CK_ATTRIBUTE(type: attribute.kind.value, pValue: buffer.baseAddress, ulValueLen: CK_ULONG(attribute.value.count))
        }
        return try template.withUnsafeMutableBufferPointer { t throws(PKCS11Error) in try body(t) }
    }
}

/// One attribute of a search or creation template, its value in the module's encoding.
public struct PKCS11Attribute: Sendable {
    public enum Kind: Sendable {
        case objectClass, keyType, token, `private`, label, id, sensitive, extractable, sign, verify, encrypt, decrypt, ecParams, ecPoint, valueLength
        case alwaysAuthenticate, alwaysSensitive, neverExtractable, allowedMechanisms

        var value: CK_ATTRIBUTE_TYPE {
            let type: UInt =
                switch self {
                case .objectClass: CKA_CLASS
                case .keyType: CKA_KEY_TYPE
                case .token: CKA_TOKEN
                case .private: CKA_PRIVATE
                case .label: CKA_LABEL
                case .id: CKA_ID
                case .sensitive: CKA_SENSITIVE
                case .extractable: CKA_EXTRACTABLE
                case .sign: CKA_SIGN
                case .verify: CKA_VERIFY
                case .encrypt: CKA_ENCRYPT
                case .decrypt: CKA_DECRYPT
                case .ecParams: CKA_EC_PARAMS
                case .ecPoint: CKA_EC_POINT
                case .valueLength: CKA_VALUE_LEN
                case .alwaysAuthenticate: CKA_ALWAYS_AUTHENTICATE
                case .alwaysSensitive: CKA_ALWAYS_SENSITIVE
                case .neverExtractable: CKA_NEVER_EXTRACTABLE
                case .allowedMechanisms: CKA_ALLOWED_MECHANISMS
                }
            return CK_ATTRIBUTE_TYPE(type)
        }
    }

    public let kind: Kind
    public let value: [UInt8]

    public init(_ kind: Kind, _ value: [UInt8]) {
        self.kind = kind
        self.value = value
    }

    public init(_ kind: Kind, _ flag: Bool) {
        self.init(kind, [flag ? UInt8(CK_TRUE) : UInt8(CK_FALSE)])
    }

    /// CK_ULONG values (lengths, key types) in host byte order.
    public init(_ kind: Kind, _ number: UInt) {
        self.init(kind, withUnsafeBytes(of: CK_ULONG(number)) { Array($0) })
    }

    public init(_ objectClass: PKCS11ObjectClass) {
        self.init(.objectClass, UInt(objectClass.value))
    }

    public static let ecKeyType = PKCS11Attribute(.keyType, UInt(CKK_EC))
    public static let aesKeyType = PKCS11Attribute(.keyType, UInt(CKK_AES))
}
