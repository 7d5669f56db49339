/// A behavior that can send one message when a rate schedule asks for it.
protocol PacedSender: SocketBehavior {
    /// Sends one message unless the window is full; false when it could not. Its latency
    /// counts from `scheduled`, the moment the schedule wanted it sent (monotonic ns).
    func trySend(on socket: WebSocketClient, scheduled: UInt64) -> Bool
}
