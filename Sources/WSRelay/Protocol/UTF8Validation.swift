import NIOCore

/// Whether the readable bytes are well-formed UTF-8 (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF). A text frame that is not must fail the connection
/// with 1007 (RFC 6455 8.1), before anything in it is looked at.
///
/// The standard library's validator does the work: it is compiled optimized even into a
/// debug build, where a byte loop here cost milliseconds per 4 KB frame and held the event
/// loop (and every socket on it) for seconds under a burst.
func isValidUTF8(_ buffer: ByteBuffer) -> Bool {
    buffer.withUnsafeReadableBytes { bytes in
        String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) != nil
    }
}

/// The same for bytes already sliced off a buffer (a close frame's reason).
func isValidUTF8(_ bytes: ByteBufferView) -> Bool {
    isValidUTF8(ByteBuffer(bytes))
}
