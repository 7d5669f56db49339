import Foundation

/// The headers of one part of a `multipart/form-data` body.
struct MultipartPartHeaders: Equatable {
    /// The form field name from `Content-Disposition`.
    var name: String?
    /// The client's file name, if the part is a file.
    var filename: String?
    var contentType: String?
}

/// Receives a multipart body's parts as they stream past.
protocol MultipartSink {
    mutating func beginPart(_ headers: MultipartPartHeaders) throws
    mutating func partData(_ bytes: UnsafeRawBufferPointer) throws
    mutating func endPart() throws
}

/// A push parser for `multipart/form-data` (RFC 7578 / RFC 2046 §5.1): feed it chunks of any
/// size, it hands part bodies to the sink without buffering them, so memory stays bounded by
/// the chunk size and the delimiter length whatever the upload's size.
struct MultipartParser {
    enum Failure: Error, Equatable {
        case malformed(String)
        case truncated
    }

    static let maxHeaderBytes = 16 * 1024

    private enum State {
        case preamble
        case afterDelimiter
        case headers
        case body
        case done
    }

    private let openingDelimiter: [UInt8]
    /// CRLF + `--boundary`: what ends a part's body.
    private let delimiter: [UInt8]
    private var state = State.preamble
    private var buffer: [UInt8] = []

    init(boundary: String) {
        openingDelimiter = Array(("--" + boundary).utf8)
        delimiter = Array(("\r\n--" + boundary).utf8)
    }

    var isComplete: Bool { if case .done = state { true } else { false } }

    /// The boundary parameter of a `multipart/form-data` content type, or `nil` if the type
    /// is anything else.
    static func boundary(fromContentType contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for parameter in parts.dropFirst() {
            guard let equals = parameter.firstIndex(of: "=") else { continue }
            guard parameter[..<equals].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            var value = parameter[parameter.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            guard (1...70).contains(value.utf8.count), value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
            return value
        }
        return nil
    }

    /// Consumes `chunk`, calling the sink for every part event it completes.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, into sink: inout some MultipartSink) throws {
        buffer.append(contentsOf: chunk)
        var consumed = 0
        defer { buffer.removeFirst(consumed) }
        while true {
            let available = buffer.count - consumed
            switch state {
            case .preamble:
                if let found = find(openingDelimiter, from: consumed) {
                    consumed = found + openingDelimiter.count
                    state = .afterDelimiter
                } else {
                    // Keep only what could still be the start of the delimiter.
                    consumed = max(consumed, buffer.count - openingDelimiter.count + 1)
                    return
                }
            case .afterDelimiter:
                guard available >= 2 else { return }
                let first = buffer[consumed], second = buffer[consumed + 1]
                if first == UInt8(ascii: "-") && second == UInt8(ascii: "-") {
                    state = .done
                    consumed = buffer.count  // the epilogue is ignored
                    return
                }
                guard first == UInt8(ascii: "\r") && second == UInt8(ascii: "\n") else {
                    throw Failure.malformed("expected CRLF after the multipart boundary")
                }
                consumed += 2
                state = .headers
            case .headers:
                guard let end = find(Array("\r\n\r\n".utf8), from: consumed) else {
                    if available > Self.maxHeaderBytes { throw Failure.malformed("multipart part headers too long") }
                    return
                }
                let headers = try Self.parseHeaders(buffer[consumed..<end])
                consumed = end + 4
                try sink.beginPart(headers)
                state = .body
            case .body:
                if let found = find(delimiter, from: consumed) {
                    try buffer.withUnsafeBytes { try sink.partData(UnsafeRawBufferPointer(rebasing: $0[consumed..<found])) }
                    try sink.endPart()
                    consumed = found + delimiter.count
                    state = .afterDelimiter
                } else {
                    let safe = buffer.count - delimiter.count + 1
                    if safe > consumed {
                        try buffer.withUnsafeBytes { try sink.partData(UnsafeRawBufferPointer(rebasing: $0[consumed..<safe])) }
                        consumed = safe
                    }
                    return
                }
            case .done:
                consumed = buffer.count
                return
            }
        }
    }

    /// Call at the end of the input: throws unless the closing delimiter was seen.
    func finish() throws {
        guard isComplete else { throw Failure.truncated }
    }

    /// The offset of the first `needle` at or after `start`: memchr for its first byte, then
    /// a compare, which is fast for delimiters that rarely start inside file data.
    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard buffer.count - start >= needle.count, let first = needle.first else { return nil }
        return buffer.withUnsafeBytes { haystack -> Int? in
            needle.withUnsafeBytes { pattern -> Int? in
                let base = haystack.baseAddress!
                var position = start
                let last = haystack.count - pattern.count
                while position <= last {
                    guard let hit = memchr(base + position, Int32(first), last - position + 1) else { return nil }
                    let offset = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + offset, pattern.baseAddress!, pattern.count) == 0 { return offset }
                    position = offset + 1
                }
                return nil
            }
        }
    }

    static func parseHeaders(_ bytes: ArraySlice<UInt8>) throws -> MultipartPartHeaders {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Failure.malformed("multipart part headers are not UTF-8")
        }
        var headers = MultipartPartHeaders()
        for line in text.components(separatedBy: "\r\n") where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw Failure.malformed("malformed multipart header line") }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "content-disposition":
                let parameters = dispositionParameters(value)
                headers.name = parameters["name"]
                headers.filename = parameters["filename"]
            case "content-type":
                headers.contentType = value
            default:
                continue
            }
        }
        return headers
    }

    /// `form-data; name="file"; filename="a b.png"` → `["name": "file", "filename": "a b.png"]`.
    static func dispositionParameters(_ value: String) -> [String: String] {
        var result: [String: String] = [:]
        var scalars = Substring(value)
        guard let firstSemicolon = scalars.firstIndex(of: ";") else { return result }
        scalars = scalars[scalars.index(after: firstSemicolon)...]
        while !scalars.isEmpty {
            scalars = scalars.drop(while: { $0 == " " || $0 == ";" })
            guard let equals = scalars.firstIndex(of: "=") else { break }
            let key = scalars[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var rest = scalars[scalars.index(after: equals)...]
            var parsed = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                var end = rest.endIndex
                for index in rest.indices {
                    let character = rest[index]
                    if escaped { parsed.append(character); escaped = false; continue }
                    if character == "\\" { escaped = true; continue }
                    if character == "\"" { end = index; break }
                    parsed.append(character)
                }
                scalars = end < rest.endIndex ? rest[rest.index(after: end)...] : rest[rest.endIndex...]
            } else {
                let end = rest.firstIndex(of: ";") ?? rest.endIndex
                parsed = rest[..<end].trimmingCharacters(in: .whitespaces)
                scalars = rest[end...]
            }
            if result[key] == nil { result[key] = parsed }
        }
        return result
    }
}
