import CFastCGI

/// One worker thread's libfcgi request slot: accepts a connection, exposes its parameters
/// and streams, and is reused for the next request.
///
/// Owns the `FCGX_Request` (freed in `deinit`); used by its one thread only.
final class FastCGIRequest {
    private let request: UnsafeMutablePointer<FCGX_Request>

    init(listeningSocket: Int32) {
        request = .allocate(capacity: 1)
        FCGX_InitRequest(request, listeningSocket, 0)
    }

    deinit {
        FCGX_Free(request, 1)
        request.deallocate()
    }

    /// Waits for the next request; `false` when the listening socket is shut down.
    func accept() -> Bool {
        FCGX_Accept_r(request) == 0
    }

    /// Request body bytes read and thrown away at the end of a request that did not read its
    /// whole body (a refusal before the body), so that the connection can close at once.
    static let maxDrainBytes = 1 << 20

    /// Completes the current request and closes its connection.
    ///
    /// When the whole request has been read, the socket is closed at once (marked detached,
    /// libfcgi skips its shutdown and its wait in select() for nginx to close first, a round
    /// trip that held the worker on every request). Closing with unread input would reset the
    /// connection while nginx may still be sending the body, so the rest of the body is read
    /// first; past `maxDrainBytes` (an upload refused early) libfcgi's slow, safe close is used.
    func finish() {
        if drainInput() { request.pointee.detached = 1 }
        FCGX_Finish_r(request)
    }

    /// Reads the request body to its end; `false` if more than `maxDrainBytes` remain or
    /// the stream failed.
    private func drainInput() -> Bool {
        guard let stream = request.pointee.in else { return true }
        var scratch = [CChar](repeating: 0, count: 16 * 1024)
        var drained = 0
        while drained <= Self.maxDrainBytes {
            let count = FCGX_GetStr(&scratch, Int32(scratch.count), stream)
            if count <= 0 { return FCGX_GetError(stream) == 0 }
            drained += Int(count)
        }
        return false
    }

    func parameter(_ name: String) -> String? {
        FCGX_GetParam(name, request.pointee.envp).map { String(cString: $0) }
    }

    /// The request headers the API reads, by their FastCGI parameter names. Only these are
    /// copied out of libfcgi: building every `HTTP_*` header into Swift strings cost more than
    /// the database query of a typical read.
    private static let headerParameters = [
        ("authorization", "HTTP_AUTHORIZATION"),
        ("content-type", "CONTENT_TYPE"),
        ("content-length", "CONTENT_LENGTH"),
    ]

    func headers() -> [String: String] {
        var headers: [String: String] = [:]
        for (name, parameter) in Self.headerParameters {
            if let value = self.parameter(parameter), !value.isEmpty { headers[name] = value }
        }
        return headers
    }

    var body: FastCGIBody { FastCGIBody(stream: request.pointee.in) }

    /// Writes `response` as a CGI response; `false` if the client went away.
    @discardableResult
    func write(_ response: Response, headOnly: Bool) -> Bool {
        var head: [UInt8] = []
        head.reserveCapacity(128)
        head += "Status: \(response.status.code) \(response.status.reason)\r\n".utf8
        for (name, value) in response.headers {
            head += name.utf8
            head += ": ".utf8
            head += value.utf8
            head += "\r\n".utf8
        }
        head += "Content-Length: \(response.body.count)\r\n\r\n".utf8
        var ok = put(head)
        if !headOnly, ok { ok = put(response.body) }
        return ok
    }

    private func put(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return true }
        return bytes.withUnsafeBytes { buffer in
            FCGX_PutStr(buffer.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(buffer.count),
                        request.pointee.out) == Int32(buffer.count)
        }
    }
}

@available(*, unavailable)
extension FastCGIRequest: Sendable {}

/// The request body, read from libfcgi's input stream as it arrives.
struct FastCGIBody: BodyReader {
    let stream: UnsafeMutablePointer<FCGX_Stream>?

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let stream, let base = buffer.baseAddress else { return 0 }
        let count = FCGX_GetStr(base.assumingMemoryBound(to: CChar.self), Int32(buffer.count), stream)
        if count < 0 || FCGX_GetError(stream) != 0 { return -1 }
        return Int(count)
    }
}
