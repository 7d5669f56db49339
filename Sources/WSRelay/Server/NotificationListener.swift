import Domain
import NIOCore

/// Receives FCGIApp's and the other relays' datagrams on the notification socket and wakes
/// the storage thread.
///
/// A commit's notification is only a hint: it triggers a catch-up read, which finds whatever
/// was committed, so a malformed or lost datagram costs nothing but latency. Another relay's
/// TYPING and presence go to the storage thread as signals.
final class NotificationListener: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let dispatcher: Dispatcher

    init(dispatcher: Dispatcher) {
        self.dispatcher = dispatcher
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        if let notification = RelayNotification(decoding: envelope.data.readableBytesView) {
            dispatcher.receive(notification)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram error must never close the listener.
    }
}

extension Dispatcher {
    /// What a notification from FCGIApp or another relay (a datagram, or on PostgreSQL a
    /// NOTIFY) asks of this relay.
    func receive(_ notification: RelayNotification) {
        switch notification {
        case .typing(let chatID, let userID): signal(.peerTyping(userID: userID, chatID: chatID))
        case .presence(let userID): signal(.peerPresence(userID: userID))
        case .message, .chat, .user, .events: wake()
        }
    }
}
