import NIOCore
import NIOHTTP1

/// A request LoadGen sends: JSON body (or none) and an optional bearer token.
struct HTTPCall: Sendable {
    var method: HTTPMethod
    var path: String
    var body: [UInt8]?
    var token: String?

    static func get(_ path: String, token: String? = nil) -> HTTPCall {
        HTTPCall(method: .GET, path: path, body: nil, token: token)
    }

    static func post(_ path: String, json: String, token: String? = nil) -> HTTPCall {
        HTTPCall(method: .POST, path: path, body: Array(json.utf8), token: token)
    }
}

/// The answer to an `HTTPCall`, with the time from writing the request to its last byte.
struct HTTPAnswer: Sendable {
    var status: Int
    var body: ByteBuffer
    var nanos: UInt64

    var text: String { String(buffer: body) }
}

/// A request on its way into `HTTPClientHandler`, with the promise its answer completes.
struct HTTPOutgoing: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer?
    var promise: EventLoopPromise<HTTPAnswer>
}

/// The connection closed before the answer arrived.
struct HTTPConnectionClosed: Error, CustomStringConvertible {
    var description: String { "connection closed before the response" }
}
