import NIOCore

/// What the framer hands on: a complete line, or the reason the connection must end.
enum Frame: Sendable {
    case line(ByteBuffer)
    /// More than the maximum without a newline.
    case oversized
    /// Part of a message arrived, then nothing for too long.
    case stalled

    var size: Int {
        if case .line(let line) = self { line.readableBytes } else { 0 }
    }
}

/// Newline framing with a size limit and a deadline for the rest of a message once part of it
/// has arrived (a client may stay connected idle, but not half-way through a message).
/// The deadline runs only while the connection reads: while the handler after it holds reads
/// back (requests waiting their turn), the rest may sit unread in the socket.
final class LineFramer: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Frame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let maximumSize: Int
    let partialTimeout: TimeAmount
    private var buffer: ByteBuffer?
    private var deadline: Scheduled<Void>?
    private var failed = false

    init(maximumSize: Int, partialTimeout: TimeAmount) {
        self.maximumSize = maximumSize
        self.partialTimeout = partialTimeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        while let newline = buffer!.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer!.readerIndex
            guard length <= maximumSize else { return fail(context, .oversized) }
            let line = buffer!.readSlice(length: length)!
            buffer!.moveReaderIndex(forwardBy: 1)
            if !Self.isBlank(line) { context.fireChannelRead(wrapInboundOut(.line(line))) }
        }
        if buffer!.readableBytes > maximumSize { return fail(context, .oversized) }
        buffer!.discardReadBytes()
        deadline?.cancel()
        deadline = nil
    }

    func read(context: ChannelHandlerContext) {
        if deadline == nil, let buffer, buffer.readableBytes > 0 {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: partialTimeout) {
                let (framer, context) = loopBound.value
                framer.fail(context, .stalled)
                // Outside a socket read nothing else completes the read: the async channel
                // delivers what it buffered only on read-complete.
                context.fireChannelReadComplete()
            }
        }
        context.read()
    }

    /// A client that closes its side after its last request (`socat`, `nc -N`) is answered; a
    /// last message without its newline is complete, as nothing more can come.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent, let last = buffer, !Self.isBlank(last) {
            buffer = nil
            deadline?.cancel()
            deadline = nil
            context.fireChannelRead(wrapInboundOut(.line(last)))
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A line of nothing but spaces, tabs and carriage returns (a client ending its lines with
    /// CRLF, a person typing at `socat`) is no message and gets no answer, as an empty one.
    static func isBlank(_ line: ByteBuffer) -> Bool {
        line.readableBytesView.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }
    }

    /// Ends the framing: nothing is buffered or read after it, so no deadline and no last line.
    private func fail(_ context: ChannelHandlerContext, _ frame: Frame) {
        failed = true
        buffer = nil
        deadline?.cancel()
        context.fireChannelRead(wrapInboundOut(frame))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }
}
