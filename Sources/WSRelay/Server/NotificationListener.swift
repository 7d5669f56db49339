import Domain
import NIOCore

/// Receives FCGIApp's datagrams on the notification socket and wakes the storage thread.
///
/// The content is only a hint: any notification triggers a catch-up read, which finds
/// whatever was committed, so a malformed or lost datagram costs nothing but latency.
final class NotificationListener: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let dispatcher: Dispatcher

    init(dispatcher: Dispatcher) {
        self.dispatcher = dispatcher
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        if RelayNotification(decoding: envelope.data.readableBytesView) != nil {
            dispatcher.wake()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram error must never close the listener.
    }
}
