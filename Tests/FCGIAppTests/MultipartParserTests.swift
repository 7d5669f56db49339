@testable import FCGIApp
import Testing

/// Records the parser's events, and complains about any out of order.
struct RecordingSink: MultipartSink {
    struct Part: Equatable {
        var headers: MultipartPartHeaders
        var data: [UInt8] = []
        var ended = false
    }

    var parts: [Part] = []
    var misordered = false

    mutating func beginPart(_ headers: MultipartPartHeaders) throws {
        if let last = parts.last, !last.ended { misordered = true }
        parts.append(Part(headers: headers))
    }

    mutating func partData(_ bytes: UnsafeRawBufferPointer) throws {
        guard !parts.isEmpty, !parts[parts.count - 1].ended else {
            misordered = true
            return
        }
        parts[parts.count - 1].data.append(contentsOf: bytes)
    }

    mutating func endPart() throws {
        guard !parts.isEmpty, !parts[parts.count - 1].ended else {
            misordered = true
            return
        }
        parts[parts.count - 1].ended = true
    }
}

/// Builds a multipart body from raw part headers and data.
func multipartBody(boundary: String, parts: [(headers: String, data: [UInt8])], preamble: String = "",
                   epilogue: String = "") -> [UInt8] {
    var body = Array(preamble.utf8)
    for part in parts {
        body += Array("--\(boundary)\r\n\(part.headers)\r\n\r\n".utf8)
        body += part.data
        body += Array("\r\n".utf8)
    }
    body += Array("--\(boundary)--".utf8)
    body += Array(epilogue.utf8)
    return body
}

@Suite struct MultipartParserTests {
    static let boundary = "XyZ-boundary-123"

    /// File data full of things that look like the start of the delimiter, but never all of it.
    static let trickyData: [UInt8] = {
        var data: [UInt8] = Array("\r\n--XyZ-boundary-12".utf8)          // all but the last byte
        data += Array("\r\n-\r\n--\r\r\n\r\n--X".utf8)
        data += Array("--XyZ-boundary-123".utf8)                          // without the CRLF before it
        data += [0, 255, 13, 10, 13, 10, 0x2D, 0x2D]
        data += (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        data += Array("\r\n--XyZ-boundary-1".utf8)
        data += Array("\r".utf8)                                          // right before the real delimiter
        return data
    }()

    static let body = multipartBody(boundary: boundary, parts: [
        (#"Content-Disposition: form-data; name="description""#, Array("a holiday photo".utf8)),
        ("Content-Disposition: form-data; name=\"file\"; filename=\"photo \\\"1\\\".png\"\r\nContent-Type: image/png", trickyData),
        (#"Content-Disposition: form-data; name="empty"; filename="e.txt""#, []),
    ], preamble: "This is the preamble.\r\n", epilogue: "\r\nThis is the epilogue --XyZ-boundary-123\r\n")

    static let expected: [RecordingSink.Part] = [
        RecordingSink.Part(headers: MultipartPartHeaders(name: "description"), data: Array("a holiday photo".utf8), ended: true),
        RecordingSink.Part(headers: MultipartPartHeaders(name: "file", filename: "photo \"1\".png", contentType: "image/png"),
                           data: trickyData, ended: true),
        RecordingSink.Part(headers: MultipartPartHeaders(name: "empty", filename: "e.txt"), data: [], ended: true),
    ]

    private func parse(_ body: [UInt8], boundary: String = boundary, chunkSize: Int) throws -> RecordingSink {
        var parser = MultipartParser(boundary: boundary)
        var sink = RecordingSink()
        var offset = 0
        while offset < body.count {
            let end = min(offset + chunkSize, body.count)
            try body[offset..<end].withUnsafeBytes { try parser.feed($0, into: &sink) }
            offset = end
        }
        try parser.finish()
        #expect(!sink.misordered)
        return sink
    }

    @Test func parsesInOneChunk() throws {
        let sink = try parse(Self.body, chunkSize: Self.body.count)
        #expect(sink.parts == Self.expected)
    }

    @Test func everyChunkSizeGivesTheSameParts() throws {
        #expect(Self.body.count > 300)
        for size in 1...Self.body.count {
            let sink = try parse(Self.body, chunkSize: size)
            #expect(sink.parts == Self.expected, "chunk size \(size)")
        }
    }

    @Test func largeFileInUploadSizedChunks() throws {
        // A pseudo-random pattern, so that delimiter-like bytes turn up anywhere.
        var state: UInt32 = 2_463_534_242
        let data = (0..<(1 << 18)).map { _ -> UInt8 in
            state ^= state << 13; state ^= state >> 17; state ^= state << 5
            return UInt8(truncatingIfNeeded: state)
        }
        let body = multipartBody(boundary: Self.boundary, parts: [(#"Content-Disposition: form-data; name="file"; filename="big.bin""#, data)])
        let sink = try parse(body, chunkSize: 64 * 1024)
        #expect(sink.parts.count == 1)
        #expect(sink.parts.first?.data == data)
    }

    @Test func streamsDataBeforeThePartEnds() throws {
        let data = [UInt8](repeating: 0x41, count: 10_000)
        let body = multipartBody(boundary: Self.boundary, parts: [(#"Content-Disposition: form-data; name="file""#, data)])
        var parser = MultipartParser(boundary: Self.boundary)
        var sink = RecordingSink()
        try body[0..<5_000].withUnsafeBytes { try parser.feed($0, into: &sink) }
        // Half the body in, most of the data is already handed over, and the part is still open.
        #expect(sink.parts.count == 1)
        #expect(sink.parts.first?.ended == false)
        #expect((sink.parts.first?.data.count ?? 0) > 4_000)
        try body[5_000...].withUnsafeBytes { try parser.feed($0, into: &sink) }
        try parser.finish()
        #expect(sink.parts.first?.data == data)
    }

    @Test func everyTruncationIsReportedAsTruncated() throws {
        let body = multipartBody(boundary: Self.boundary, parts: [
            (#"Content-Disposition: form-data; name="file"; filename="a.bin""#, Self.trickyData),
        ])
        for length in 0..<body.count {
            #expect(throws: MultipartParser.Failure.truncated, "cut at \(length)") {
                try parse(Array(body[0..<length]), chunkSize: 13)
            }
        }
        #expect(throws: Never.self) { try parse(body, chunkSize: 13) }
    }

    @Test func bodyWithoutAnyBoundaryIsTruncated() {
        #expect(throws: MultipartParser.Failure.truncated) { try parse(Array(#"{"username":"alice"}"#.utf8), chunkSize: 4) }
        #expect(throws: MultipartParser.Failure.truncated) { try parse([], chunkSize: 1) }
    }

    @Test func garbageAfterTheBoundaryIsMalformed() {
        let body = Array("--\(Self.boundary)XX\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--\(Self.boundary)--".utf8)
        #expect(throws: MultipartParser.Failure.malformed("expected CRLF after the multipart boundary")) {
            try parse(body, chunkSize: 5)
        }
    }

    @Test func headerLineWithoutAColonIsMalformed() {
        let body = multipartBody(boundary: Self.boundary, parts: [("Content-Disposition form-data", Array("x".utf8))])
        #expect(throws: MultipartParser.Failure.malformed("malformed multipart header line")) { try parse(body, chunkSize: 3) }
    }

    @Test func nonUTF8HeadersAreMalformed() {
        var body = Array("--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"".utf8)
        body += [0xFF, 0xFE]
        body += Array("\"\r\n\r\nx\r\n--\(Self.boundary)--".utf8)
        #expect(throws: MultipartParser.Failure.malformed("multipart part headers are not UTF-8")) { try parse(body, chunkSize: 7) }
    }

    @Test func endlessHeadersAreRefused() {
        var body = Array("--\(Self.boundary)\r\nX-Long: ".utf8)
        body += [UInt8](repeating: 0x61, count: MultipartParser.maxHeaderBytes + 10)
        #expect(throws: MultipartParser.Failure.malformed("multipart part headers too long")) { try parse(body, chunkSize: 1000) }
    }

    @Test func boundaryFromContentType() {
        #expect(MultipartParser.boundary(fromContentType: "multipart/form-data; boundary=abc123") == "abc123")
        #expect(MultipartParser.boundary(fromContentType: #"multipart/form-data; boundary="a b:c""#) == "a b:c")
        #expect(MultipartParser.boundary(fromContentType: "Multipart/Form-Data; BOUNDARY=xyz") == "xyz")
        #expect(MultipartParser.boundary(fromContentType: "multipart/form-data;charset=utf-8;boundary=q") == "q")
        #expect(MultipartParser.boundary(fromContentType: "multipart/form-data; boundary=" + String(repeating: "b", count: 70))
            == String(repeating: "b", count: 70))
    }

    @Test(arguments: ["multipart/form-data", "multipart/form-data; charset=utf-8", "multipart/form-data; boundary=",
                      #"multipart/form-data; boundary="""#, "application/json", "multipart/mixed; boundary=abc",
                      "text/plain; boundary=abc", "", "multipart/form-data; boundary=" + String(repeating: "b", count: 71),
                      "multipart/form-data; boundary=a\u{7F}b", "multipart/form-data; boundary=é"])
    func noBoundary(_ contentType: String) {
        #expect(MultipartParser.boundary(fromContentType: contentType) == nil)
    }

    @Test func dispositionParameters() {
        #expect(MultipartParser.dispositionParameters(#"form-data; name="file"; filename="a b.png""#)
            == ["name": "file", "filename": "a b.png"])
        #expect(MultipartParser.dispositionParameters(#"form-data; name=plain; filename=x.txt"#)
            == ["name": "plain", "filename": "x.txt"])
        #expect(MultipartParser.dispositionParameters(#"form-data; NAME="upper"; Filename="q\"uote\\.png""#)
            == ["name": "upper", "filename": #"q"uote\.png"#])
        #expect(MultipartParser.dispositionParameters(#"form-data; name="a;b"; filename="semi;colon""#)
            == ["name": "a;b", "filename": "semi;colon"])
        #expect(MultipartParser.dispositionParameters(#"form-data; name="first"; name="second""#) == ["name": "first"])
        #expect(MultipartParser.dispositionParameters("form-data") == [:])
    }

    @Test func headerNamesAreCaseInsensitive() throws {
        let headers = try MultipartParser.parseHeaders(ArraySlice(
            "content-DISPOSITION: form-data; name=\"file\"; filename=\"a.png\"\r\nCONTENT-TYPE:  image/png \r\nX-Other: y".utf8))
        #expect(headers == MultipartPartHeaders(name: "file", filename: "a.png", contentType: "image/png"))
    }
}
