internal import CFido2
import EthereumCore
import Foundation

// libfido2, wrapped once: a device handle that closes itself, the credential and assertion
// calls an owner needs, and I/O hooks that reach an authenticator on a Unix socket. Every call
// blocks (a tap can take many seconds), so callers run them off the async threads.

/// A libfido2 failure: the call and its FIDO_ERR code.
package struct FIDO2Error: Error, Sendable, CustomStringConvertible {
    package let operation: String
    package let code: Int32
    /// Failed while the device was being opened: nothing answered at its path.
    package var opening = false

    package var description: String { "\(operation): \(String(cString: fido_strerr(code)))" }

    /// The authenticator is not there (unplugged, its socket gone) or stopped answering.
    package var deviceGone: Bool { [FIDO_ERR_TX, FIDO_ERR_RX, FIDO_ERR_RX_NOT_CBOR, FIDO_ERR_RX_INVALID_CBOR].contains(code) }
    /// The person did not tap in time, or refused.
    package var notTapped: Bool {
        [FIDO_ERR_ACTION_TIMEOUT, FIDO_ERR_USER_ACTION_TIMEOUT, FIDO_ERR_OPERATION_DENIED, FIDO_ERR_KEEPALIVE_CANCEL].contains(code)
    }
    /// The authenticator holds no key for the credential asked for.
    package var noCredential: Bool { code == FIDO_ERR_NO_CREDENTIALS }
    /// The PIN was wrong (the authenticator counts the try).
    package var wrongPIN: Bool { code == FIDO_ERR_PIN_INVALID }
    /// The authenticator takes no PIN now: too many wrong ones (a reset, or a replug, is
    /// needed), or none was ever set.
    package var pinUnusable: Bool { [FIDO_ERR_PIN_BLOCKED, FIDO_ERR_PIN_AUTH_BLOCKED, FIDO_ERR_PIN_NOT_SET].contains(code) }

    /// An answer that libfido2 took but an owner cannot use.
    package static func unexpected(_ what: String) -> FIDO2Error { FIDO2Error(operation: what, code: FIDO_ERR_INVALID_ARGUMENT) }

    static func check(_ code: Int32, _ operation: String) throws(FIDO2Error) {
        guard code == FIDO_OK else { throw FIDO2Error(operation: operation, code: code) }
    }
}

/// An authenticator libfido2 found: a HID device path, and who made it.
package struct FIDO2DeviceInfo: Sendable, Equatable {
    package let path: String
    package let manufacturer: String
    package let product: String
}

/// A credential an authenticator made: its id (which the relying party keeps and hands back to
/// get an assertion) and its P-256 public key as 64 bytes, x ‖ y.
package struct FIDO2Credential: Sendable {
    package let id: [UInt8]
    package let publicKey: [UInt8]
}

/// What an authenticator signed: its authenticator data (raw) and the DER ECDSA signature over
/// sha256(authenticatorData ‖ clientDataHash).
package struct FIDO2Assertion: Sendable {
    package let authenticatorData: [UInt8]
    package let signature: [UInt8]
}

package enum FIDO2 {
    /// Devices on a Unix socket are named `unix:PATH`: a software authenticator (the tests' one)
    /// or one passed into a VM or container as a socket.
    package static let socketPrefix = "unix:"

    /// The file a device path names: the socket of `unix:PATH`, or the hidraw path itself.
    package static func file(of device: String) -> String {
        device.hasPrefix(socketPrefix) ? String(device.dropFirst(socketPrefix.count)) : device
    }

    fileprivate static let initialised: Void = fido_init(0)

    /// The FIDO HID devices plugged in.
    package static func devices() throws(FIDO2Error) -> [FIDO2DeviceInfo] {
        _ = initialised
        let capacity = 64
        var list = fido_dev_info_new(capacity)
        guard list != nil else { throw FIDO2Error(operation: "fido_dev_info_new", code: FIDO_ERR_INTERNAL) }
        defer { fido_dev_info_free(&list, capacity) }
        var found = 0
        try FIDO2Error.check(fido_dev_info_manifest(list, capacity, &found), "listing FIDO devices")
        return (0..<found).compactMap { i in
            guard let info = fido_dev_info_ptr(list, i), let path = fido_dev_info_path(info) else { return nil }
            return FIDO2DeviceInfo(path: String(cString: path), manufacturer: fido_dev_info_manufacturer_string(info).map { String(cString: $0) } ?? "",
                                   product: fido_dev_info_product_string(info).map { String(cString: $0) } ?? "")
        }
    }
}

/// An open authenticator; closed and freed when dropped. One call at a time.
package final class FIDO2Device {
    private var handle: OpaquePointer?
    package let path: String

    /// Opens the device at `path` (a hidraw path, or `unix:PATH`). libfido2 waits at most
    /// `timeout` for each answer, a tap included.
    package init(path: String, timeout: Duration) throws(FIDO2Error) {
        _ = FIDO2.initialised
        self.path = path
        guard let device = fido_dev_new() else { throw FIDO2Error(operation: "fido_dev_new", code: FIDO_ERR_INTERNAL) }
        handle = device
        if path.hasPrefix(FIDO2.socketPrefix) {
            var io = SocketIO.functions
            try FIDO2Error.check(fido_dev_set_io_functions(device, &io), "fido_dev_set_io_functions")
        }
        let milliseconds = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        try FIDO2Error.check(fido_dev_set_timeout(device, Int32(clamping: milliseconds)), "fido_dev_set_timeout")
        do throws(FIDO2Error) { try FIDO2Error.check(fido_dev_open(device, path), "opening \(path)") } catch {
            var error = error
            error.opening = true
            throw error
        }
        guard fido_dev_is_fido2(device) else {
            throw FIDO2Error(operation: "\(path) speaks only U2F (CTAP1), which has no P-256 assertions over a chosen hash", code: FIDO_ERR_UNSUPPORTED_OPTION)
        }
    }

    deinit {
        fido_dev_close(handle)
        fido_dev_free(&handle)
    }

    /// Makes a non-resident ES256 credential for `rpID` (a tap; with `pin`, the authenticator
    /// verifies the person too). Its attestation is checked (self attestation, or the packed
    /// statement's certificate) so the public key is the one the authenticator signed for.
    package func makeCredential(rpID: String, userID: [UInt8], userName: String, clientDataHash: [UInt8], pin: SecretBytes? = nil) throws(FIDO2Error) -> FIDO2Credential {
        var credential = fido_cred_new()
        guard credential != nil else { throw FIDO2Error(operation: "fido_cred_new", code: FIDO_ERR_INTERNAL) }
        defer { fido_cred_free(&credential) }
        try FIDO2Error.check(fido_cred_set_type(credential, COSE_ES256), "fido_cred_set_type")
        try FIDO2Error.check(fido_cred_set_clientdata_hash(credential, clientDataHash, clientDataHash.count), "fido_cred_set_clientdata_hash")
        try FIDO2Error.check(fido_cred_set_rp(credential, rpID, nil), "fido_cred_set_rp")
        try FIDO2Error.check(fido_cred_set_user(credential, userID, userID.count, userName, userName, nil), "fido_cred_set_user")
        try FIDO2Error.check(fido_cred_set_rk(credential, FIDO_OPT_FALSE), "fido_cred_set_rk")
        try FIDO2Error.check(Self.withPIN(pin) { fido_dev_make_cred(handle, credential, $0) }, "making a credential on \(path)")
        if fido_cred_x5c_len(credential) > 0 {
            try FIDO2Error.check(fido_cred_verify(credential), "checking the new credential's attestation")
        } else {
            try FIDO2Error.check(fido_cred_verify_self(credential), "checking the new credential's self attestation")
        }
        return FIDO2Credential(id: Self.bytes(fido_cred_id_ptr(credential), fido_cred_id_len(credential)),
                               publicKey: Self.bytes(fido_cred_pubkey_ptr(credential), fido_cred_pubkey_len(credential)))
    }

    /// An assertion by the credential `credentialID` over `clientDataHash`, with the person's tap,
    /// and with `pin` the person verified (the UV flag).
    package func assertion(rpID: String, credentialID: [UInt8], clientDataHash: [UInt8], pin: SecretBytes? = nil) throws(FIDO2Error) -> FIDO2Assertion {
        var assertion = fido_assert_new()
        guard assertion != nil else { throw FIDO2Error(operation: "fido_assert_new", code: FIDO_ERR_INTERNAL) }
        defer { fido_assert_free(&assertion) }
        try FIDO2Error.check(fido_assert_set_rp(assertion, rpID), "fido_assert_set_rp")
        try FIDO2Error.check(fido_assert_set_clientdata_hash(assertion, clientDataHash, clientDataHash.count), "fido_assert_set_clientdata_hash")
        try FIDO2Error.check(fido_assert_allow_cred(assertion, credentialID, credentialID.count), "fido_assert_allow_cred")
        try FIDO2Error.check(fido_assert_set_up(assertion, FIDO_OPT_TRUE), "fido_assert_set_up")
        try FIDO2Error.check(Self.withPIN(pin) { fido_dev_get_assert(handle, assertion, $0) }, "getting an assertion from \(path)")
        guard fido_assert_count(assertion) == 1 else { throw .unexpected("\(path) answered \(fido_assert_count(assertion)) assertions for one credential") }
        // libfido2 hands the authenticator data out as the CBOR byte string it came in.
        let cbor = Self.bytes(fido_assert_authdata_ptr(assertion, 0), fido_assert_authdata_len(assertion, 0))
        guard let authenticatorData = Self.cborByteString(cbor) else {
            throw FIDO2Error(operation: "\(path) answered authenticator data that is not a CBOR byte string", code: FIDO_ERR_RX_INVALID_CBOR)
        }
        return FIDO2Assertion(authenticatorData: authenticatorData, signature: Self.bytes(fido_assert_sig_ptr(assertion, 0), fido_assert_sig_len(assertion, 0)))
    }

    /// Whether the authenticator holds the credential: an assertion asked for without user
    /// presence, which takes no tap, and whose answer is thrown away.
    package func holds(rpID: String, credentialID: [UInt8]) throws(FIDO2Error) -> Bool {
        var assertion = fido_assert_new()
        guard assertion != nil else { throw FIDO2Error(operation: "fido_assert_new", code: FIDO_ERR_INTERNAL) }
        defer { fido_assert_free(&assertion) }
        let anyHash = [UInt8](repeating: 0, count: 32)
        try FIDO2Error.check(fido_assert_set_rp(assertion, rpID), "fido_assert_set_rp")
        try FIDO2Error.check(fido_assert_set_clientdata_hash(assertion, anyHash, anyHash.count), "fido_assert_set_clientdata_hash")
        try FIDO2Error.check(fido_assert_allow_cred(assertion, credentialID, credentialID.count), "fido_assert_allow_cred")
        try FIDO2Error.check(fido_assert_set_up(assertion, FIDO_OPT_FALSE), "fido_assert_set_up")
        switch fido_dev_get_assert(handle, assertion, nil) {
        // A key that insists on presence has the credential too; it asked for nothing yet.
        case FIDO_OK, FIDO_ERR_USER_PRESENCE_REQUIRED: return true
        case FIDO_ERR_NO_CREDENTIALS: return false
        case let code: throw FIDO2Error(operation: "asking \(path) whether it holds a credential", code: code)
        }
    }

    /// `body` with the PIN as the C string libfido2 takes (nil without one), in a buffer
    /// wiped after.
    private static func withPIN(_ pin: SecretBytes?, _ body: (UnsafePointer<CChar>?) -> Int32) -> Int32 {
        guard let pin else { return body(nil) }
        return pin.withUnsafeBytes { bytes in
            let text = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count + 1, alignment: 1)
            defer {
                SecretBytes.zero(text)
                text.deallocate()
            }
            text.copyBytes(from: bytes)
            text[bytes.count] = 0
            return body(text.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
    }

    private static func bytes(_ pointer: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }

    /// The content of a definite-length CBOR byte string (major type 2), or nil.
    package static func cborByteString(_ cbor: [UInt8]) -> [UInt8]? {
        guard let first = cbor.first, first >> 5 == 2 else { return nil }
        let additional = Int(first & 0x1f), header: Int, length: Int
        switch additional {
        case 0..<24: (header, length) = (1, additional)
        case 24 where cbor.count >= 2: (header, length) = (2, Int(cbor[1]))
        case 25 where cbor.count >= 3: (header, length) = (3, Int(cbor[1]) << 8 | Int(cbor[2]))
        default: return nil
        }
        guard cbor.count == header + length else { return nil }
        return Array(cbor[header...])
    }
}

/// libfido2's I/O hooks for an authenticator on a Unix socket: 64-byte HID reports, written
/// with their report id (65 bytes) as libfido2 writes them to hidraw.
private enum SocketIO {
    static let report = 64

    static var functions: fido_dev_io_t { fido_dev_io_t(open: open, close: close, read: read, write: write) }

    private final class Connection {
        let fd: Int32
        init(fd: Int32) { self.fd = fd }
    }

    private static let open: @convention(c) (UnsafePointer<CChar>?) -> UnsafeMutableRawPointer? = { path in
        guard let path else { return nil }
        let socketPath = FIDO2.file(of: String(cString: path))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard socketPath.utf8.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: socketPath.utf8) }
        // Non-blocking while it connects: an authenticator busy with another host leaves its
        // listen queue full, and a blocking connect would then wait for it without a timeout.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return nil }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0, fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0 else {
            Glibc.close(fd)
            return nil
        }
        return Unmanaged.passRetained(Connection(fd: fd)).toOpaque()
    }

    private static let close: @convention(c) (UnsafeMutableRawPointer?) -> Void = { handle in
        guard let handle else { return }
        Glibc.close(Unmanaged<Connection>.fromOpaque(handle).takeRetainedValue().fd)
    }

    /// One report, waiting at most `milliseconds` (-1: for ever) for it to begin.
    private static let read: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int, Int32) -> Int32 = { handle, buffer, length, milliseconds in
        guard let handle, let buffer, length >= report else { return -1 }
        let fd = Unmanaged<Connection>.fromOpaque(handle).takeUnretainedValue().fd
        var got = 0
        while got < report {
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, got == 0 ? milliseconds : -1) == 1 else { return -1 }
            let n = recv(fd, buffer + got, report - got, 0)
            guard n > 0 else { return -1 }
            got += n
        }
        return Int32(report)
    }

    private static let write: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<UInt8>?, Int) -> Int32 = { handle, buffer, length in
        guard let handle, let buffer else { return -1 }
        let fd = Unmanaged<Connection>.fromOpaque(handle).takeUnretainedValue().fd
        var sent = 0
        while sent < length {
            let n = send(fd, buffer + sent, length - sent, Int32(MSG_NOSIGNAL))
            guard n > 0 else { return -1 }
            sent += n
        }
        return Int32(length)
    }
}
