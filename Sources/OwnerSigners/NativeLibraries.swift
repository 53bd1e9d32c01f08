internal import CFido2
internal import COpenSSL
internal import CPCSC
internal import CPKCS11
internal import CSecp256k1
import Foundation

/// One C library the agent is linked against, as `session-agent version` reports it.
public struct NativeLibrary: Sendable, Equatable {
    public var name: String
    /// What the agent uses it for.
    public var purpose: String
    /// The shared object the running process resolved, with symlinks followed (its file name
    /// carries the library's version), or nil when it cannot be found.
    public var path: String?
    /// A version reported by the library or its headers, when there is one.
    public var version: String?
}

/// The five C libraries, each touched through one real call so a missing or broken library
/// shows up here rather than in the middle of a signing request.
public enum NativeLibraries {
    public static func report() -> [NativeLibrary] {
        // One real call into each library, so the linker keeps it and a broken install fails here.
        fido_init(0)
        let openSSLVersion = OpenSSL_version(Int32(OPENSSL_VERSION)).map { String(String(cString: $0).trimmingPrefix("OpenSSL ")) }
        _ = pcsc_stringify_error(LONG(SCARD_S_SUCCESS))
        secp256k1_context_destroy(secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE)))
        return [
            NativeLibrary(name: "libsecp256k1", purpose: "secp256k1 keys and signatures",
                          path: sharedObject(defining: "secp256k1_context_create"), version: nil),
            NativeLibrary(name: "OpenSSL", purpose: "libfido2's crypto; the SHA3 reference of the benchmark",
                          path: sharedObject(defining: "OpenSSL_version"), version: openSSLVersion),
            NativeLibrary(name: "libfido2", purpose: "FIDO2 passkey owners",
                          path: sharedObject(defining: "fido_init"), version: nil),
            NativeLibrary(name: "pcsc-lite", purpose: "smartcard owners (OpenPGP card, PIV)",
                          path: sharedObject(defining: "SCardEstablishContext"), version: PCSCLITE_VERSION_NUMBER),
            NativeLibrary(name: "PKCS#11", purpose: "HSM owners; token modules are loaded with dlopen",
                          path: nil, version: "cryptoki \(CRYPTOKI_VERSION_MAJOR).\(CRYPTOKI_VERSION_MINOR) headers (p11-kit)"),
        ]
    }

    /// The shared object that defines `symbol` in this process.
    static func sharedObject(defining symbol: String) -> String? {
        guard let process = dlopen(nil, RTLD_NOW) else { return nil }
        defer { dlclose(process) }
        guard let address = dlsym(process, symbol) else { return nil }
        return sharedObject(of: UnsafeRawPointer(address))
    }

    /// The file mapped at `symbol`'s address, from /proc/self/maps (dladdr needs _GNU_SOURCE,
    /// which the C modules do not define), with symlinks resolved.
    static func sharedObject(of symbol: UnsafeRawPointer) -> String? {
        let address = UInt(bitPattern: symbol)
        // /proc files report a size of 0, so read to the end rather than by size.
        guard let file = FileHandle(forReadingAtPath: "/proc/self/maps") else { return nil }
        defer { try? file.close() }
        let maps = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[5].hasPrefix("/") else { continue }
            let range = fields[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
            guard range.count == 2, range[0] <= address, address < range[1] else { continue }
            let path = fields[5...].joined(separator: " ")
            guard let resolved = realpath(path, nil) else { return path }
            defer { free(resolved) }
            return String(cString: resolved)
        }
        return nil
    }
}
