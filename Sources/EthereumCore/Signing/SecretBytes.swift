#if canImport(Glibc)
import Glibc
#endif

/// Secret key material in one heap buffer that is zeroed when the last reference goes away and
/// that is never exposed as an `Array` or `Data` (which the runtime may copy freely). Reach the
/// bytes only through `withUnsafeBytes`. `description` never prints them.
public final class SecretBytes: @unchecked Sendable, CustomStringConvertible {
    // Immutable after init, so sharing across threads is safe.
    private let buffer: UnsafeMutableRawBufferPointer

    /// Fills `count` bytes with `initialize`; the buffer is zeroed again if it throws.
    public init<E: Error>(count: Int, initialize: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        buffer = .allocate(byteCount: count, alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        do { try initialize(buffer) } catch {
            SecretBytes.zero(buffer)
            buffer.deallocate()
            throw error
        }
    }

    /// Copies `bytes`; the caller should zero its own copy.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { $0.copyMemory(from: bytes) }
    }

    /// The UTF-8 bytes of a PIN or passphrase typed or sent as text, copied straight in (no
    /// intermediate array left behind unzeroed).
    public convenience init(utf8 text: String) {
        self.init(count: text.utf8.count) { buffer in
            for (i, byte) in text.utf8.enumerated() { buffer[i] = byte }
        }
    }

    public var count: Int { buffer.count }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(buffer))
    }

    public var description: String { "SecretBytes(\(buffer.count) bytes, redacted)" }

    deinit {
        SecretBytes.zero(buffer)
        buffer.deallocate()
    }

    /// Whether both hold the same bytes, compared in time that depends only on their lengths.
    public func sameBytes(as other: SecretBytes) -> Bool {
        guard count == other.count else { return false }
        return zip(buffer, other.buffer).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Zeroes memory in a way the optimiser cannot drop as a dead store.
    public static func zero(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        #if canImport(Glibc)
        explicit_bzero(base, bytes.count)
        #else
        for i in 0..<bytes.count { bytes[i] = 0 }
        #endif
    }
}
