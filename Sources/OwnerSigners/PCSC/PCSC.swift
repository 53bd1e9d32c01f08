internal import CPCSC
import Foundation

/// A PC/SC call that failed, with pcsc-lite's code: a card pulled out, no pcscd, no reader.
public struct PCSCError: Error, Sendable, Equatable, CustomStringConvertible {
    public let call: String
    public let code: Int

    // pcsc-lite's codes (pcsclite.h); its macros carry casts Swift does not import.
    static let noSmartcard = 0x8010_000C, readerUnavailable = 0x8010_0017, unknownReader = 0x8010_0009
    static let noService = 0x8010_001D, serviceStopped = 0x8010_001E, noReadersAvailable = 0x8010_002E
    static let removedCard = 0x8010_0069, resetCard = 0x8010_0068, unpoweredCard = 0x8010_0067, unresponsiveCard = 0x8010_0066
    static let sharingViolation = 0x8010_000B, notTransacted = 0x8010_0016

    /// The card left, or its reader did: bring it back and try again. (pcsc-lite fails a
    /// transmit with "Transaction failed" when the card was pulled out under it.)
    public var cardGone: Bool {
        [Self.noSmartcard, Self.readerUnavailable, Self.unknownReader, Self.removedCard, Self.resetCard,
         Self.unpoweredCard, Self.unresponsiveCard, Self.notTransacted].contains(code)
    }

    /// pcscd is not running (or stopped while we talked to it).
    public var noService: Bool { [Self.noService, Self.serviceStopped].contains(code) }

    /// Another program holds the card for itself.
    public var heldElsewhere: Bool { code == Self.sharingViolation }

    public var description: String {
        let text = String(cString: pcsc_stringify_error(LONG(bitPattern: UInt(code))))
        let hint = noService ? " (is pcscd running? systemctl start pcscd.socket)" : heldElsewhere ? " (another program holds the card; gpg's scdaemon does: gpgconf --kill scdaemon)" : ""
        return "\(call): \(text) (0x\(String(code, radix: 16)))\(hint)"
    }

    init(_ call: String, _ code: LONG) {
        self.call = call
        self.code = Int(UInt32(truncatingIfNeeded: code))
    }
}

/// A connection to pcscd (an SCARDCONTEXT), released when dropped. Every call blocks: callers
/// run them off the cooperative pool (`OpenPGPCards` has a queue for them). `package` for the
/// benchmark, which times the card without the owner around it.
package final class PCSCContext {
    private let handle: SCARDCONTEXT

    package init() throws(PCSCError) {
        var handle: SCARDCONTEXT = 0
        let status = SCardEstablishContext(DWORD(SCARD_SCOPE_SYSTEM), nil, nil, &handle)
        guard status == 0 else { throw PCSCError("SCardEstablishContext", status) }
        self.handle = handle
    }

    deinit { SCardReleaseContext(handle) }

    /// The readers pcscd knows, with or without a card; none is no error.
    package func readers() throws(PCSCError) -> [String] {
        var length: DWORD = 0
        var status = SCardListReaders(handle, nil, nil, &length)
        if status == LONG(PCSCError.noReadersAvailable) { return [] }
        guard status == 0 else { throw PCSCError("SCardListReaders", status) }
        var names = [CChar](repeating: 0, count: Int(length))
        status = SCardListReaders(handle, nil, &names, &length)
        if status == LONG(PCSCError.noReadersAvailable) { return [] }
        guard status == 0 else { throw PCSCError("SCardListReaders", status) }
        // A multi-string: names each ended by a NUL, the list by another.
        return names.split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    }

    /// The card in `reader`, shared with other programs (they wait for our transactions).
    package func connect(_ reader: String) throws(PCSCError) -> PCSCCard {
        var card: SCARDHANDLE = 0
        var protocolInUse: DWORD = 0
        let status = SCardConnect(handle, reader, DWORD(SCARD_SHARE_SHARED), DWORD(SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1), &card, &protocolInUse)
        guard status == 0 else { throw PCSCError("SCardConnect", status) }
        return PCSCCard(handle: card, protocolInUse: protocolInUse, reader: reader)
    }
}

/// A card in a reader (an SCARDHANDLE), let go when dropped.
package final class PCSCCard {
    private let handle: SCARDHANDLE
    private let protocolInUse: DWORD
    let reader: String
    /// Set while a PIN the card verified may still count: dropping it then resets the card, so
    /// that the PIN does not stay verified for the next program to use it. (Not always: a reset
    /// costs the next program a power-up, and vsmartcard's reader stops seeing cards after a
    /// reset of one just pulled out.)
    var resetWhenDone = false

    fileprivate init(handle: SCARDHANDLE, protocolInUse: DWORD, reader: String) {
        self.handle = handle
        self.protocolInUse = protocolInUse
        self.reader = reader
    }

    deinit { SCardDisconnect(handle, DWORD(resetWhenDone ? SCARD_RESET_CARD : SCARD_LEAVE_CARD)) }

    /// Runs `body` in a PC/SC transaction: no other program's command comes between ours (a
    /// VERIFY and the signature it allows).
    func transaction<T>(_ body: () throws -> T) throws -> T {
        let status = SCardBeginTransaction(handle)
        guard status == 0 else { throw PCSCError("SCardBeginTransaction", status) }
        defer { SCardEndTransaction(handle, DWORD(SCARD_LEAVE_CARD)) }
        return try body()
    }

    func transmit(_ command: [UInt8]) throws(PCSCError) -> [UInt8] {
        try command.withUnsafeBytes { bytes in Result { () throws(PCSCError) in try transmit(bytes) } }.get()
    }

    /// Sends one command APDU and returns the response with its status word. The command is a
    /// buffer, not an array, so that one holding a PIN is never copied where it is not zeroed.
    func transmit(_ command: UnsafeRawBufferPointer) throws(PCSCError) -> [UInt8] {
        var request = SCARD_IO_REQUEST(dwProtocol: protocolInUse, cbPciLength: DWORD(MemoryLayout<SCARD_IO_REQUEST>.size))
        var response = [UInt8](repeating: 0, count: 258)
        var length = DWORD(response.count)
        let status = SCardTransmit(handle, &request, command.baseAddress?.assumingMemoryBound(to: UInt8.self), DWORD(command.count), nil, &response, &length)
        guard status == 0 else { throw PCSCError("SCardTransmit", status) }
        return Array(response[..<Int(length)])
    }
}
