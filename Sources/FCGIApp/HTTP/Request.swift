/// An HTTP request as FastCGI hands it over, independent of libfcgi so that handlers can be
/// tested in-process.
public struct Request {
    public let method: String
    /// The path, percent-decoded per segment; never contains the query.
    public let path: String
    /// Decoded path segments, without empty ones.
    public let segments: [String]
    /// Decoded query parameters; the first occurrence of a name wins.
    public let query: [String: String]
    /// Header names in lower case.
    public let headers: [String: String]
    /// nginx's `$request_id`, for log lines.
    public let id: String
    public var body: any BodyReader
    /// Values of the route's `:name` segments, filled in by the router.
    public var parameters: [String: String] = [:]
    /// The pattern of the route that matched (`/chats/:id`), filled in by the router; what
    /// metrics and logs name a request by — never the raw path or query, which can carry a
    /// search text.
    public var route: String?
    /// The client's address as nginx passes it (`REMOTE_ADDR`); nil in tests.
    public var clientAddress: String?

    public init(method: String, uri: String, headers: [String: String] = [:], id: String = "-",
                body: any BodyReader = BytesBody([])) throws(HTTPError) {
        self.method = method.uppercased()
        let pathPart: Substring
        let queryPart: Substring?
        if let mark = uri.firstIndex(of: "?") {
            pathPart = uri[..<mark]
            queryPart = uri[uri.index(after: mark)...]
        } else {
            pathPart = Substring(uri)
            queryPart = nil
        }
        var segments: [String] = []
        for raw in pathPart.split(separator: "/") {
            guard let segment = PercentDecoding.decode(raw) else { throw HTTPError(.badRequest, "malformed path") }
            segments.append(segment)
        }
        self.segments = segments
        self.path = "/" + segments.joined(separator: "/")
        var query: [String: String] = [:]
        for pair in (queryPart ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = PercentDecoding.decode(parts[0], plusIsSpace: true),
                  let value = PercentDecoding.decode(parts.count > 1 ? parts[1] : "", plusIsSpace: true)
            else { throw HTTPError(.badRequest, "malformed query string") }
            if query[name] == nil { query[name] = value }
        }
        self.query = query
        var lowered: [String: String] = [:]
        for (name, value) in headers { lowered[name.lowercased()] = value }
        self.headers = lowered
        self.id = id
        self.body = body
    }

    /// Reads the whole body, refusing more than `limit` bytes with 413.
    public mutating func bodyBytes(limit: Int) throws(HTTPError) -> [UInt8] {
        if let declared = headers["content-length"].flatMap(Int.init), declared > limit {
            throw HTTPError(.contentTooLarge, "request body exceeds \(limit) bytes")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { body.read(into: $0) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > limit { throw HTTPError(.contentTooLarge, "request body exceeds \(limit) bytes") }
        }
        return bytes
    }
}

/// The request body as a stream, so an upload never has to be held whole in memory.
public protocol BodyReader {
    /// Fills `buffer` from the start; returns the byte count, 0 at the end, -1 on error.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int
}

/// A body already in memory: tests, and nothing else.
public struct BytesBody: BodyReader {
    private let bytes: [UInt8]
    private var offset = 0
    /// Largest read, to exercise chunked parsing in tests.
    private let chunkLimit: Int

    public init(_ bytes: [UInt8], chunkLimit: Int = .max) {
        self.bytes = bytes
        self.chunkLimit = chunkLimit
    }

    public init(_ text: String) {
        self.init(Array(text.utf8))
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(buffer.count, bytes.count - offset, chunkLimit)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<offset + count]))
        }
        offset += count
        return count
    }
}

enum PercentDecoding {
    /// Decodes `%XX` escapes; `nil` for a broken escape or bytes that are not UTF-8.
    static func decode(_ text: Substring, plusIsSpace: Bool = false) -> String? {
        // Most segments have nothing to decode: they are valid UTF-8 already (a String).
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else if plusIsSpace && byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
