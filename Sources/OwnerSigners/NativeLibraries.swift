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
        fido_init(0)
        let secp: @convention(c) (UInt32) -> OpaquePointer? = secp256k1_context_create
        let ssl: @convention(c) (Int32) -> UnsafePointer<CChar>? = OpenSSL_version
        let fido: @convention(c) (Int32) -> Void = fido_init
        let pcsc: @convention(c) (LONG) -> UnsafePointer<CChar>? = pcsc_stringify_error
        let dl: @convention(c) (UnsafePointer<CChar>?, Int32) -> UnsafeMutableRawPointer? = dlopen
        return [
            NativeLibrary(name: "libsecp256k1", purpose: "secp256k1 keys and signatures",
                          path: sharedObject(of: unsafeBitCast(secp, to: UnsafeRawPointer.self)), version: nil),
            NativeLibrary(name: "OpenSSL", purpose: "libfido2's crypto; SHA3 reference in the benchmark",
                          path: sharedObject(of: unsafeBitCast(ssl, to: UnsafeRawPointer.self)),
                          version: OpenSSL_version(Int32(OPENSSL_VERSION)).map { String(cString: $0) }),
            NativeLibrary(name: "libfido2", purpose: "FIDO2 passkey owners",
                          path: sharedObject(of: unsafeBitCast(fido, to: UnsafeRawPointer.self)), version: nil),
            NativeLibrary(name: "pcsc-lite", purpose: "smartcard owners (OpenPGP card, PIV)",
                          path: sharedObject(of: unsafeBitCast(pcsc, to: UnsafeRawPointer.self)),
                          version: PCSCLITE_VERSION_NUMBER),
            NativeLibrary(name: "PKCS#11", purpose: "HSM owners; modules are loaded with dlopen",
                          path: sharedObject(of: unsafeBitCast(dl, to: UnsafeRawPointer.self)),
                          version: "cryptoki \(CRYPTOKI_VERSION_MAJOR).\(CRYPTOKI_VERSION_MINOR) headers (p11-kit)"),
        ]
    }

    /// The file mapped at `symbol`'s address, from /proc/self/maps (dladdr needs _GNU_SOURCE,
    /// which the C modules do not define), with symlinks resolved.
    static func sharedObject(of symbol: UnsafeRawPointer) -> String? {
        let address = UInt(bitPattern: symbol)
        guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return nil }
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
