/// What a scenario does with one socket. Called on the socket's event loop only.
protocol SocketBehavior: AnyObject {
    /// A text frame from the server (unmasked, unfragmented: the relay sends whole frames).
    func received(text: UnsafeRawBufferPointer, on socket: WebSocketClient)
    /// The connection is gone.
    func closed(_ socket: WebSocketClient)
}
