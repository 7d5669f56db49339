/// A behavior that can send one message when a rate schedule asks for it.
protocol PacedSender: SocketBehavior {
    /// Sends one message unless the window is full; false when it could not.
    func trySend(on socket: WebSocketClient) -> Bool
}
