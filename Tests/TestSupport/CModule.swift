import Foundation

/// PKCS#11 modules a test builds from a few lines of C, for behaviours of real modules that
/// SoftHSM2 lacks. The Swift toolchain links with clang, so it is next to swift (followed
/// through a symlink such as /usr/bin/swift) wherever the tests run.
public enum CModule {
    public struct BuildError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Compiles `source` into `directory`/`name`.so against p11-kit's PKCS#11 header.
    public static func build(_ name: String, source: String, in directory: URL) throws -> String {
        var path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin"]
        path += path.map { URL(fileURLWithPath: "\($0)/swift").resolvingSymlinksInPath().deletingLastPathComponent().path }
        guard let compiler = path.lazy.flatMap({ dir in ["clang", "cc"].map { "\(dir)/\($0)" } }).first(where: FileManager.default.isExecutableFile) else {
            throw BuildError(description: "no C compiler next to swift or on PATH")
        }
        let file = directory.appendingPathComponent("\(name).c"), module = directory.appendingPathComponent("\(name).so").path
        try source.write(to: file, atomically: true, encoding: .utf8)
        let built = try Command.run(URL(fileURLWithPath: compiler), ["-shared", "-fPIC", "-I/usr/include/p11-kit-1", "-o", module, file.path, "-ldl"])
        guard built.status == 0 else { throw BuildError(description: "\(compiler) failed: \(built.stderr)") }
        return module
    }

    /// A module in front of another (`real`) that behaves as some vendors' do: it refuses a PIN
    /// over 32 bytes with CKR_PIN_LEN_RANGE before the token sees it (OpenSC checks a card's
    /// PIN length so), gives EC points compressed (02/03 ‖ X in the DER OCTET STRING), and makes
    /// no secp256k1 keys (CKR_CURVE_NOT_SUPPORTED, as PIV cards).
    public static func quirks(in directory: URL, real: String) throws -> String {
        try build("quirks", source: inFront(of: real, replacing: ["C_Login": "login", "C_GetAttributeValue": "attributes", "C_GenerateKeyPair": "generateKeyPair"], with: """
            static CK_RV generateKeyPair(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *publicTemplate, CK_ULONG publicCount,
                                         CK_ATTRIBUTE *privateTemplate, CK_ULONG privateCount, CK_OBJECT_HANDLE *publicKey, CK_OBJECT_HANDLE *privateKey) {
                static const CK_BYTE secp256k1[] = { 0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A };
                for (CK_ULONG i = 0; i < publicCount; i++) {
                    if (publicTemplate[i].type == CKA_EC_PARAMS && publicTemplate[i].ulValueLen == sizeof secp256k1
                        && memcmp(publicTemplate[i].pValue, secp256k1, sizeof secp256k1) == 0) return CKR_CURVE_NOT_SUPPORTED;
                }
                return real->C_GenerateKeyPair(session, mechanism, publicTemplate, publicCount, privateTemplate, privateCount, publicKey, privateKey);
            }

            static CK_RV login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR *pin, CK_ULONG length) {
                if (length > 32) return CKR_PIN_LEN_RANGE;
                return real->C_Login(session, user, pin, length);
            }

            static CK_RV attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *template, CK_ULONG count) {
                if (count != 1 || template[0].type != CKA_EC_POINT) return real->C_GetAttributeValue(session, object, template, count);
                CK_BYTE point[256];
                CK_ATTRIBUTE whole = { CKA_EC_POINT, point, sizeof point };
                CK_RV rv = real->C_GetAttributeValue(session, object, &whole, 1);
                if (rv != CKR_OK || whole.ulValueLen != 67 || point[0] != 0x04 || point[1] != 0x41 || point[2] != 0x04)
                    return real->C_GetAttributeValue(session, object, template, count);
                point[1] = 0x21;
                point[2] = 0x02 | (point[66] & 1);
                if (template[0].pValue != NULL) {
                    if (template[0].ulValueLen < 35) { template[0].ulValueLen = CK_UNAVAILABLE_INFORMATION; return CKR_BUFFER_TOO_SMALL; }
                    memcpy(template[0].pValue, point, 35);
                }
                template[0].ulValueLen = 35;
                return CKR_OK;
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) whose policy overrides what a caller asks of the
    /// keys it generates, as an HSM configured for key backups or for one signing mechanism
    /// might: private and secret keys are made extractable and not sensitive, and with
    /// `restrictingMechanisms` a private key may only sign with CKM_ECDSA_SHA256. With
    /// `keepingKeys` no object may be removed (CKR_ACTION_PROHIBITED).
    public static func overridingKeyTemplates(in directory: URL, real: String, restrictingMechanisms: Bool = true, keepingKeys: Bool = false) throws -> String {
        try build("overriding-templates\(restrictingMechanisms ? "-mechanisms" : "")\(keepingKeys ? "-keeping" : "")",
                  source: inFront(of: real, replacing: ["C_GenerateKeyPair": "generateKeyPair", "C_GenerateKey": "generateKey"]
                                                       .merging(keepingKeys ? ["C_DestroyObject": "destroyObject"] : [:]) { $1 }, with: """
            static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

            static CK_RV destroyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object) { return CKR_ACTION_PROHIBITED; }
            static CK_MECHANISM_TYPE onlySHA256 = CKM_ECDSA_SHA256;

            /// `template` without the attributes overridden, then the overriding ones, in `out` (64 long).
            static CK_ULONG overridden(const CK_ATTRIBUTE *template, CK_ULONG count, CK_ATTRIBUTE *out, int restrictMechanisms) {
                CK_ULONG kept = 0;
                for (CK_ULONG i = 0; i < count && kept < 61; i++) {
                    CK_ATTRIBUTE_TYPE type = template[i].type;
                    if (type != CKA_SENSITIVE && type != CKA_EXTRACTABLE && type != CKA_ALLOWED_MECHANISMS) out[kept++] = template[i];
                }
                out[kept++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &no, sizeof no };
                out[kept++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &yes, sizeof yes };
                if (restrictMechanisms) out[kept++] = (CK_ATTRIBUTE){ CKA_ALLOWED_MECHANISMS, &onlySHA256, sizeof onlySHA256 };
                return kept;
            }

            static CK_RV generateKeyPair(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *publicTemplate, CK_ULONG publicCount,
                                         CK_ATTRIBUTE *privateTemplate, CK_ULONG privateCount, CK_OBJECT_HANDLE *publicKey, CK_OBJECT_HANDLE *privateKey) {
                CK_ATTRIBUTE private[64];
                CK_ULONG count = overridden(privateTemplate, privateCount, private, \(restrictingMechanisms ? 1 : 0));
                return real->C_GenerateKeyPair(session, mechanism, publicTemplate, publicCount, private, count, publicKey, privateKey);
            }

            static CK_RV generateKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *template, CK_ULONG count, CK_OBJECT_HANDLE *key) {
                CK_ATTRIBUTE secret[64];
                return real->C_GenerateKey(session, mechanism, secret, overridden(template, count, secret, 0), key);
            }
            """), in: directory)
    }

    /// What a vendor module with a bug does in C_Sign.
    public enum SignFault: String {
        /// Crashes the process it runs in.
        case abort
        /// Fails with CKR_GENERAL_ERROR, its token present (the operation ends, as any failed
        /// C_Sign ends it).
        case generalError = "general-error"
        /// Answers CKR_OK with the last bit of s flipped: a signature no key made, as a
        /// glitched or faulty token gives.
        case flippedBit = "flipped-bit"
        /// Answers CKR_OK with r zero.
        case zeroR = "zero-r"
    }

    /// A module in front of another (`real`) that has `fault` in C_Sign while the file `trigger`
    /// exists.
    public static func faultyInSign(_ fault: SignFault, in directory: URL, real: String, trigger: String) throws -> String {
        let onFault = switch fault {
        case .abort: "abort();"
        case .generalError: "real->C_Sign(session, data, length, signature, signatureLength); return CKR_GENERAL_ERROR;"
        case .flippedBit, .zeroR:
            """
            CK_RV rv = real->C_Sign(session, data, length, signature, signatureLength);
            if (rv == CKR_OK && signature != NULL && *signatureLength == 64) \(fault == .zeroR ? "memset(signature, 0, 32);" : "signature[63] ^= 1;")
            return rv;
            """
        }
        return try build("sign-\(fault.rawValue)", source: inFront(of: real, replacing: ["C_Sign": "sign"], with: """
            static CK_RV sign(CK_SESSION_HANDLE session, CK_BYTE *data, CK_ULONG length, CK_BYTE *signature, CK_ULONG *signatureLength) {
                if (access("\(trigger)", F_OK) == 0) { \(onFault) }
                return real->C_Sign(session, data, length, signature, signatureLength);
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) that answers counts and lengths no module may, as
    /// one with a memory fault might: 2^62 bytes of a signature while the file `trigger`.C_Sign
    /// exists, 2^62 bytes of an attribute (`trigger`.C_GetAttributeValue), 2^62 slots
    /// (`trigger`.C_GetSlotList), more objects than it was given room for (`trigger`.C_FindObjects),
    /// or a search that never ends, a full batch of objects at every call (`trigger`.C_FindObjects.endless).
    public static func answeringImpossibleLengths(in directory: URL, real: String, trigger: String) throws -> String {
        try build("impossible-lengths", source: inFront(of: real, replacing: [
            "C_Sign": "sign", "C_GetAttributeValue": "attributes", "C_GetSlotList": "slots", "C_FindObjects": "findObjects",
        ], with: """
            static const CK_ULONG impossible = (CK_ULONG)1 << 62;
            static int faulty(const char *call) {
                char path[4096];
                snprintf(path, sizeof path, "%s.%s", "\(trigger)", call);
                return access(path, F_OK) == 0;
            }

            static CK_RV sign(CK_SESSION_HANDLE session, CK_BYTE *data, CK_ULONG length, CK_BYTE *signature, CK_ULONG *signatureLength) {
                CK_RV rv = real->C_Sign(session, data, length, signature, signatureLength);
                if (rv == CKR_OK && faulty("C_Sign")) *signatureLength = impossible;
                return rv;
            }

            static CK_RV attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *template, CK_ULONG count) {
                CK_RV rv = real->C_GetAttributeValue(session, object, template, count);
                if (rv == CKR_OK && faulty("C_GetAttributeValue") && count == 1 && template[0].pValue == NULL) template[0].ulValueLen = impossible;
                return rv;
            }

            static CK_RV slots(CK_BBOOL present, CK_SLOT_ID *list, CK_ULONG *count) {
                CK_RV rv = real->C_GetSlotList(present, list, count);
                if (rv == CKR_OK && faulty("C_GetSlotList") && list == NULL) *count = impossible;
                return rv;
            }

            static CK_RV findObjects(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *objects, CK_ULONG room, CK_ULONG *count) {
                CK_RV rv = real->C_FindObjects(session, objects, room, count);
                if (rv == CKR_OK && faulty("C_FindObjects") && *count > 0) *count = room + 1;
                if (rv == CKR_OK && faulty("C_FindObjects.endless")) {
                    for (CK_ULONG i = 0; i < room; i++) objects[i] = i + 1;
                    *count = room;
                }
                return rv;
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) that offers no AES-GCM, as p11-kit 0.24's client
    /// (which cannot pass its parameters to the server) and some HSMs do: C_EncryptInit and
    /// C_DecryptInit refuse CKM_AES_GCM with CKR_MECHANISM_INVALID.
    public static func withoutAESGCM(in directory: URL, real: String) throws -> String {
        try build("no-aes-gcm", source: inFront(of: real, replacing: ["C_EncryptInit": "encryptInit", "C_DecryptInit": "decryptInit"], with: """
            static CK_RV encryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key) {
                if (mechanism != NULL && mechanism->mechanism == CKM_AES_GCM) return CKR_MECHANISM_INVALID;
                return real->C_EncryptInit(session, mechanism, key);
            }

            static CK_RV decryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key) {
                if (mechanism != NULL && mechanism->mechanism == CKM_AES_GCM) return CKR_MECHANISM_INVALID;
                return real->C_DecryptInit(session, mechanism, key);
            }
            """), in: directory)
    }

    /// Where an HSM that chooses the AES-GCM nonce itself, whatever the caller asked for, puts it.
    public enum ChosenNonce: String, CaseIterable, Sendable {
        /// Written over the caller's IV in the parameters (AWS CloudHSM).
        case inParameters = "in-parameters"
        /// Appended to ciphertext ‖ tag (Thales Luna in FIPS mode).
        case appended
        /// Nowhere: the caller is not told (a module with a bug).
        case keptToItself = "kept-to-itself"
    }

    /// A module in front of another (`real`) that encrypts with AES-GCM under a random nonce of
    /// its own choosing and puts it where `chosen` says.
    public static func choosingGCMNonce(_ chosen: ChosenNonce, in directory: URL, real: String) throws -> String {
        try build("gcm-nonce-\(chosen.rawValue)", source: inFront(of: real, replacing: ["C_EncryptInit": "encryptInit", "C_Encrypt": "encrypt"], with: """
            #include <stdio.h>

            #define CHOSEN_\(chosen.rawValue.uppercased().replacingOccurrences(of: "-", with: "_"))
            static CK_BYTE chosen[12];
            static int gcm;

            static CK_RV encryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key) {
                gcm = mechanism != NULL && mechanism->mechanism == CKM_AES_GCM;
                if (!gcm) return real->C_EncryptInit(session, mechanism, key);
                FILE *random = fopen("/dev/urandom", "r");
                if (random == NULL || fread(chosen, 1, sizeof chosen, random) != sizeof chosen) return CKR_GENERAL_ERROR;
                fclose(random);
                CK_GCM_PARAMS params = *(CK_GCM_PARAMS *)mechanism->pParameter;
                params.pIv = chosen;
                params.ulIvLen = sizeof chosen;
                params.ulIvBits = 8 * sizeof chosen;
            #ifdef CHOSEN_IN_PARAMETERS
                CK_GCM_PARAMS *given = mechanism->pParameter;
                if (given->ulIvLen != sizeof chosen) return CKR_MECHANISM_PARAM_INVALID;
                memcpy(given->pIv, chosen, sizeof chosen);
            #endif
                CK_MECHANISM own = { CKM_AES_GCM, &params, sizeof params };
                return real->C_EncryptInit(session, &own, key);
            }

            static CK_RV encrypt(CK_SESSION_HANDLE session, CK_BYTE *data, CK_ULONG length, CK_BYTE *out, CK_ULONG *outLength) {
                CK_ULONG room = *outLength;
                CK_RV rv = real->C_Encrypt(session, data, length, out, outLength);
            #ifdef CHOSEN_APPENDED
                if (gcm && rv == CKR_OK && out != NULL) {
                    if (room < *outLength + sizeof chosen) return CKR_GENERAL_ERROR;
                    memcpy(out + *outLength, chosen, sizeof chosen);
                }
                if (gcm && rv == CKR_OK) *outLength += sizeof chosen;
            #endif
                return rv;
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) whose tokens sit in a reader with a keypad
    /// (CKF_PROTECTED_AUTHENTICATION_PATH): C_Login with no PIN takes the one a person "types",
    /// read from the file `typed`, and is cancelled (CKR_FUNCTION_CANCELED) when there is none
    /// after `waiting` seconds (the reader waits so long for the person).
    public static func keypad(in directory: URL, real: String, typed: String, waiting: Int = 0) throws -> String {
        try build("keypad", source: inFront(of: real, replacing: ["C_GetTokenInfo": "tokenInfo", "C_Login": "login"], with: """
            #include <stdio.h>

            static CK_RV tokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO *info) {
                CK_RV rv = real->C_GetTokenInfo(slot, info);
                if (rv == CKR_OK) info->flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
                return rv;
            }

            static CK_RV login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR *pin, CK_ULONG length) {
                if (pin != NULL) return real->C_Login(session, user, pin, length);
                FILE *keypad = fopen("\(typed)", "r");
                for (int waited = 0; keypad == NULL && waited < \(waiting * 20); waited++) {
                    usleep(50000);
                    keypad = fopen("\(typed)", "r");
                }
                if (keypad == NULL) return CKR_FUNCTION_CANCELED;
                CK_UTF8CHAR entered[64];
                size_t count = fread(entered, 1, sizeof entered, keypad);
                fclose(keypad);
                while (count > 0 && entered[count - 1] == '\\n') count--;
                return real->C_Login(session, user, entered, count);
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) whose slot list grows between the call that counts
    /// the slots and the one that fills them in, the first `times` times it is read, as when a
    /// reader or a token is plugged in at that moment: the filling call answers
    /// CKR_BUFFER_TOO_SMALL, as the standard says it must.
    public static func slotListGrowing(times: Int, in directory: URL, real: String) throws -> String {
        try build("slot-list-growing", source: inFront(of: real, replacing: ["C_GetSlotList": "slots"], with: """
            static int grown = 0;
            static CK_RV slots(CK_BBOOL present, CK_SLOT_ID *list, CK_ULONG *count) {
                if (list == NULL || grown >= \(times)) return real->C_GetSlotList(present, list, count);
                grown++;
                CK_RV rv = real->C_GetSlotList(present, NULL, count);
                if (rv != CKR_OK) return rv;
                *count += 1;
                return CKR_BUFFER_TOO_SMALL;
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) that cannot describe the token labelled `label`:
    /// C_GetTokenInfo answers CKR_FUNCTION_FAILED for its slot, as a faulty slot or a reader in
    /// a bad state may; or `answer`, CKR_TOKEN_NOT_PRESENT for a token taken out after its slot
    /// was described.
    public static func unreadableToken(_ label: String, answering answer: String = "CKR_FUNCTION_FAILED", in directory: URL, real: String) throws -> String {
        try changingTokenFlags("unreadable-token", in: directory, real: real,
                               "{ if (memcmp(info->label, \"\(label)\", \(label.utf8.count)) == 0) return \(answer); }")
    }

    /// A module in front of another (`real`) whose tokens do not show failed PIN tries: no
    /// CKF_USER_PIN_COUNT_LOW, FINAL_TRY or LOCKED in C_GetTokenInfo (HSMs that count them
    /// where no flag shows, as AWS CloudHSM locks a user after five).
    public static func hidingFailedTries(in directory: URL, real: String) throws -> String {
        try changingTokenFlags("hiding-failed-tries", in: directory, real: real,
                               "info->flags &= ~(CK_FLAGS)(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED);")
    }

    /// A module in front of another (`real`) whose C_GetTokenInfo flags `change` (a C statement
    /// on `info`) alters: "info->flags |= CKF_USER_PIN_FINAL_TRY;" for a token with one PIN try
    /// left, as an HSM or a card shows after failed tries (SoftHSM never does).
    public static func changingTokenFlags(_ name: String, in directory: URL, real: String, _ change: String) throws -> String {
        try build(name, source: inFront(of: real, replacing: ["C_GetTokenInfo": "tokenInfo"], with: """
            static CK_RV tokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO *info) {
                CK_RV rv = real->C_GetTokenInfo(slot, info);
                if (rv == CKR_OK) \(change)
                return rv;
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) whose user PIN has expired, as an HSM's password
    /// policy makes it (SoftHSM has none): the right PIN gets CKR_PIN_EXPIRED, with the session
    /// left logged in (where a token allows C_SetPIN alone), a wrong one what the token says of
    /// it, and the token shows CKF_USER_PIN_TO_BE_CHANGED.
    public static func expiredPIN(in directory: URL, real: String) throws -> String {
        try build("expired-pin", source: inFront(of: real, replacing: ["C_Login": "login", "C_GetTokenInfo": "tokenInfo"], with: """
            static CK_RV login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR *pin, CK_ULONG length) {
                CK_RV rv = real->C_Login(session, user, pin, length);
                if (rv != CKR_OK || user != CKU_USER) return rv;
                return CKR_PIN_EXPIRED;
            }
            static CK_RV tokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO *info) {
                CK_RV rv = real->C_GetTokenInfo(slot, info);
                if (rv == CKR_OK) info->flags |= CKF_USER_PIN_TO_BE_CHANGED;
                return rv;
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) that ends the login (C_Logout) at the first
    /// C_SignInit after the file `trigger` appears, removes the file and answers
    /// CKR_USER_NOT_LOGGED_IN, as an HSM that logs idle sessions out does. (SoftHSM alone would
    /// answer CKR_OBJECT_HANDLE_INVALID: it drops the handles of private objects at a logout.)
    public static func loggingOutAtSignInit(in directory: URL, real: String, trigger: String) throws -> String {
        try build("logging-out", source: inFront(of: real, replacing: ["C_SignInit": "signInit"], with: """
            static CK_RV signInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key) {
                if (unlink("\(trigger)") == 0) { real->C_Logout(session); return CKR_USER_NOT_LOGGED_IN; }
                return real->C_SignInit(session, mechanism, key);
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) that opens no read-write session
    /// (CKR_TOKEN_WRITE_PROTECTED), as a write-protected card or an HSM partition in read-only mode.
    public static func readOnly(in directory: URL, real: String) throws -> String {
        try build("read-only", source: inFront(of: real, replacing: ["C_OpenSession": "openSession"], with: """
            static CK_RV openSession(CK_SLOT_ID slot, CK_FLAGS flags, void *application, CK_NOTIFY notify, CK_SESSION_HANDLE *session) {
                if (flags & CKF_RW_SESSION) return CKR_TOKEN_WRITE_PROTECTED;
                return real->C_OpenSession(slot, flags, application, notify, session);
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) that writes the file `marker` when it is finalized.
    public static func markingFinalize(in directory: URL, real: String, marker: String) throws -> String {
        try build("marking-finalize", source: inFront(of: real, replacing: ["C_Finalize": "finalize"], with: """
            #include <stdio.h>

            static CK_RV finalize(void *reserved) {
                FILE *file = fopen("\(marker)", "w");
                if (file != NULL) fclose(file);
                return real->C_Finalize(reserved);
            }
            """), in: directory)
    }

    /// A module in front of another (`real`) that adds a line to the file `log` each time it is
    /// initialised ("C_Initialize") or asked to log in ("C_Login"), and holds a login while the
    /// file `hold` exists: a token slow to answer at the moment a test chooses.
    public static func observed(in directory: URL, real: String, log: String, hold: String) throws -> String {
        try build("observed", source: inFront(of: real, replacing: ["C_Initialize": "initialize", "C_Login": "login"], with: """
            static void note(const char *call) {
                FILE *file = fopen("\(log)", "a");
                if (file != NULL) { fprintf(file, "%s\\n", call); fclose(file); }
            }

            static CK_RV initialize(void *arguments) {
                note("C_Initialize");
                return real->C_Initialize(arguments);
            }

            static CK_RV login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR *pin, CK_ULONG length) {
                note("C_Login");
                while (access("\(hold)", F_OK) == 0) usleep(1000);
                return real->C_Login(session, user, pin, length);
            }
            """), in: directory)
    }

    /// The source of a module that passes every call to the module at `real` (as `real`) except
    /// those `replacing` maps to functions of `functions`.
    static func inFront(of real: String, replacing: [String: String], with functions: String) -> String {
        """
        #include <dlfcn.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        #include <p11-kit/pkcs11.h>

        static CK_FUNCTION_LIST *real;
        static CK_FUNCTION_LIST wrapper;

        \(functions)

        CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out) {
            if (real == NULL) {
                void *library = dlopen("\(real)", RTLD_NOW | RTLD_LOCAL);
                CK_C_GetFunctionList get = library ? (CK_C_GetFunctionList)dlsym(library, "C_GetFunctionList") : NULL;
                if (get == NULL || get(&real) != CKR_OK) return CKR_GENERAL_ERROR;
                wrapper = *real;
        \(replacing.sorted { $0.key < $1.key }.map { "        wrapper.\($0.key) = \($0.value);" }.joined(separator: "\n"))
            }
            *out = &wrapper;
            return CKR_OK;
        }
        """
    }
}
