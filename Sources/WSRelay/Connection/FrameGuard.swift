import NIOCore
import NIOWebSocket

/// Checks each frame as it arrives, before fragments are reassembled, for what RFC 6455
/// forbids a client: a reserved bit set with no extension negotiated (5.2), an opcode the RFC
/// does not define (5.2), an unmasked frame (5.1). NIO's decoder passes all three on; the
/// first violation fails the connection with 1002 (`WebSocketHandler.errorCaught`), and every
/// frame after it is dropped. A peer sending more than `maxControlFramesPerSecond` pings and
/// pongs in a second is closed with 1008 (policy violation): thousands in one burst would
/// otherwise hold its event loop, and every other socket on it, for as long as they take.
final class FrameGuard: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    enum Violation: Error, Equatable {
        case reservedBits
        case unknownOpcode
        case unmasked
        case controlFlood
    }

    static let maxControlFramesPerSecond = 1_000
    private var failed = false
    private var controlFrames = 0
    private var windowStart = NIODeadline.uptimeNanoseconds(0)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let frame = unwrapInboundIn(data)
        let violation: Violation? =
            if frame.rsv1 || frame.rsv2 || frame.rsv3 { .reservedBits }
            else if !Self.isDefined(frame.opcode) { .unknownOpcode }
            else if frame.maskKey == nil { .unmasked }
            else if frame.opcode == .ping || frame.opcode == .pong, isFlooding() { .controlFlood }
            else { nil }
        if let violation {
            failed = true
            context.fireErrorCaught(violation)
            return
        }
        context.fireChannelRead(data)
    }

    private func isFlooding() -> Bool {
        let now = NIODeadline.now()
        if now - windowStart >= .seconds(1) {
            windowStart = now
            controlFrames = 0
        }
        controlFrames += 1
        return controlFrames > Self.maxControlFramesPerSecond
    }

    private static func isDefined(_ opcode: WebSocketOpcode) -> Bool {
        switch opcode {
        case .continuation, .text, .binary, .connectionClose, .ping, .pong: true
        default: false
        }
    }
}
