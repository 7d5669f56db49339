import Domain
@testable import FCGIApp
import Foundation
import Testing

@Suite struct UploadHandlerTests {
    static let boundary = "----upload-test-boundary"

    private let app: TestApp
    private let alice: (token: String, id: Int64)

    init() throws {
        app = try TestApp(environment: ["UPLOAD_MAX_BYTES": "4096"])
        alice = try app.login("alice")
    }

    static let pictureData: [UInt8] = {
        var data: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        data += Array("\r\n------upload-test-boundar\r\n--".utf8)
        data += (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        return data
    }()

    private func fileHeaders(filename: String? = "photo.png", contentType: String? = "image/png", name: String = "file") -> String {
        var headers = #"Content-Disposition: form-data; name="\#(name)""#
        if let filename { headers += #"; filename="\#(filename)""# }
        if let contentType { headers += "\r\nContent-Type: \(contentType)" }
        return headers
    }

    /// Posts to `/upload?v=2` (the full receipt, with id and type) unless `path` says otherwise.
    private func upload(_ body: [UInt8], token: String? = nil, contentType: String? = "multipart/form-data; boundary=\(boundary)",
                        extraHeaders: [String: String] = [:], path: String = "/upload?v=2") -> TestResponse {
        var headers = extraHeaders
        headers["Authorization"] = "Bearer " + (token ?? alice.token)
        if let contentType { headers["Content-Type"] = contentType }
        return app.handle("POST", path, headers: headers, body: BytesBody(body, chunkLimit: 7))
    }

    private func upload(data: [UInt8], filename: String? = "photo.png", contentType: String? = "image/png",
                        path: String = "/upload?v=2") -> TestResponse {
        upload(multipartBody(boundary: Self.boundary, parts: [
            (#"Content-Disposition: form-data; name="caption""#, Array("hello".utf8)),
            (fileHeaders(filename: filename, contentType: contentType), data),
        ]), path: path)
    }

    @Test func withoutV2TheReceiptIsExactlySeed000s() throws {
        let response = upload(data: Self.pictureData, path: "/upload")
        #expect(response.status == 200, "\(response.text)")
        let receipt = try response.json()
        #expect(receipt.keys == ["url", "filename", "mime_type", "size_bytes"])
        #expect(receipt["filename"] == .string("photo.png"))
        #expect(upload(data: Self.pictureData, path: "/upload?v=3").status == 400)
    }

    private var boundary: String { Self.boundary }

    /// The stored name from a receipt's url.
    private func storedName(_ response: TestResponse) throws -> String {
        guard case .string(let url)? = try response.json()["url"] else {
            Issue.record("no url in \(response.text)")
            return ""
        }
        #expect(url.hasPrefix("/uploads/"))
        return String(url.dropFirst("/uploads/".count))
    }

    @Test func storesTheFileAndAnswersWithTheReceipt() throws {
        let response = upload(data: Self.pictureData)
        #expect(response.status == 200, "\(response.text)")
        let receipt = try response.json()
        #expect(receipt.keys == fileKeys)
        #expect(receipt["type"] == .string("picture"))
        #expect(receipt["filename"] == .string("photo.png"))
        #expect(receipt["mime_type"] == .string("image/png"))
        #expect(receipt["size_bytes"] == .int(Int64(Self.pictureData.count)))

        let name = try storedName(response)
        #expect(name.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.png/) != nil)
        let path = app.configuration.uploadsDirectory + "/" + name
        #expect(FileManager.default.contents(atPath: path).map(Array.init) == Self.pictureData)
        #expect(try app.uploadsDirectoryContents() == [name])

        let row = try #require(try app.store.file(storedName: name))
        #expect(row.uploaderID == alice.id)
        #expect(receipt["id"] == .int(row.id))
        #expect(row.sizeBytes == Int64(Self.pictureData.count))
    }

    @Test func aTraversalFilenameIsOnlyMetadata() throws {
        let response = upload(data: Array("payload".utf8), filename: "../../x", contentType: "application/octet-stream")
        #expect(response.status == 200, "\(response.text)")
        let receipt = try response.json()
        #expect(receipt["filename"] == .string("../../x"))
        #expect(receipt["type"] == .string("file"))
        let name = try storedName(response)
        #expect(name.hasSuffix(".bin"))
        #expect(try app.uploadsDirectoryContents() == [name])
        #expect(!FileManager.default.fileExists(atPath: app.directory + "/x"))
        #expect(!FileManager.default.fileExists(atPath: (app.directory as NSString).deletingLastPathComponent + "/x"))
    }

    @Test func typeAndMimeComeFromThePartContentType() throws {
        let html = upload(data: Array("<script>alert(1)</script>".utf8), filename: "page.html", contentType: "text/html; charset=utf-8")
        #expect(try html.json()["type"] == .string("file"))
        #expect(try html.json()["mime_type"] == .string("text/html"))

        let video = upload(data: [1, 2, 3], filename: "clip.mp4", contentType: "video/mp4")
        #expect(try video.json()["type"] == .string("video"))

        let malformed = upload(data: [1, 2, 3], filename: "x.png", contentType: "not a mime type")
        #expect(try malformed.json()["mime_type"] == .null)
        #expect(try malformed.json()["type"] == .string("file"))

        let unnamed = upload(data: [1, 2, 3], filename: nil, contentType: nil)
        #expect(unnamed.status == 200)
        #expect(try unnamed.json()["filename"] == .string("upload"))
        #expect(try storedName(unnamed).hasSuffix(".bin"))
    }

    @Test func fileAtTheLimitIsAccepted() throws {
        let response = upload(data: [UInt8](repeating: 7, count: 4096))
        #expect(response.status == 200, "\(response.text)")
        #expect(try response.json()["size_bytes"] == .int(4096))
    }

    @Test func overTheLimitIs413AndLeavesNothing() throws {
        let response = upload(data: [UInt8](repeating: 7, count: 4097))
        #expect(response.status == 413)
        #expect(response.error == "file exceeds the upload limit of 4096 bytes")
        #expect(try app.uploadsDirectoryContents() == [])
        #expect(try app.count("files") == 0)
    }

    @Test func anOverLimitUploadStreamsToAHiddenPartFileThatIsRemoved() throws {
        /// Delivers the body in small reads and lists the uploads directory once it is well under way.
        struct ObservingBody: BodyReader {
            let bytes: [UInt8]
            let directory: String
            let seen: Observations
            var offset = 0

            mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
                if offset > 2000, seen.names.isEmpty {
                    seen.names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? ["<unreadable>"]
                }
                let count = min(buffer.count, bytes.count - offset, 100)
                guard count > 0 else { return 0 }
                buffer.copyBytes(from: bytes[offset..<offset + count])
                offset += count
                return count
            }
        }
        final class Observations { var names: [String] = [] }

        let seen = Observations()
        let body = multipartBody(boundary: boundary, parts: [(fileHeaders(), [UInt8](repeating: 7, count: 5000))])
        let response = app.handle("POST", "/upload", headers: ["Authorization": "Bearer " + alice.token,
                                                               "Content-Type": "multipart/form-data; boundary=\(boundary)"],
                                  body: ObservingBody(bytes: body, directory: app.configuration.uploadsDirectory, seen: seen))
        #expect(response.status == 413)
        #expect(seen.names.count == 1)
        #expect(seen.names.first?.wholeMatch(of: /\.upload-[0-9a-f-]{36}\.part/) != nil, "\(seen.names)")
        #expect(try app.uploadsDirectoryContents() == [])
    }

    @Test func declaredLengthOverTheLimitIs413() throws {
        let response = upload(multipartBody(boundary: boundary, parts: [(fileHeaders(), [1])]),
                              extraHeaders: ["Content-Length": String(4096 + 64 * 1024 + 1)])
        #expect(response.status == 413)
        #expect(try app.uploadsDirectoryContents() == [])
    }

    @Test func bodyFarBeyondTheLimitIs413() throws {
        // Lots of small non-file fields: the file is small but the body is not.
        let parts = (0..<2000).map { index in (#"Content-Disposition: form-data; name="f\#(index)""#, [UInt8](repeating: 1, count: 40)) }
        let response = upload(multipartBody(boundary: boundary, parts: parts + [(fileHeaders(), [1, 2, 3])]))
        #expect(response.status == 413)
        #expect(try app.uploadsDirectoryContents() == [])
        #expect(try app.count("files") == 0)
    }

    @Test func missingFileFieldIs400() throws {
        let response = upload(multipartBody(boundary: boundary, parts: [
            (#"Content-Disposition: form-data; name="caption""#, Array("no file here".utf8)),
            (fileHeaders(name: "attachment"), [1, 2, 3]),
        ]))
        #expect(response.status == 400)
        #expect(response.error == "the multipart body has no file field")
        #expect(try app.uploadsDirectoryContents() == [])
        #expect(try app.count("files") == 0)
    }

    @Test func twoFileFieldsAre400() throws {
        let response = upload(multipartBody(boundary: boundary, parts: [(fileHeaders(), [1]), (fileHeaders(), [2])]))
        #expect(response.status == 400)
        #expect(response.error == "send one file per upload")
        #expect(try app.uploadsDirectoryContents() == [])
    }

    @Test(arguments: [nil, "application/json", "text/plain", "multipart/mixed; boundary=abc", "multipart/form-data"])
    func notMultipartIs400(_ contentType: String?) throws {
        let response = upload(Array(#"{"file":"x"}"#.utf8), contentType: contentType)
        #expect(response.status == 400)
        #expect(response.error == "the body must be multipart/form-data with a boundary and a file field")
        #expect(try app.uploadsDirectoryContents() == [])
    }

    @Test func truncatedBodyIs400AndLeavesNothing() throws {
        let full = multipartBody(boundary: boundary, parts: [(fileHeaders(), Self.pictureData)])
        for cut in [10, full.count / 2, full.count - 3] {
            let response = upload(Array(full[0..<cut]))
            #expect(response.status == 400)
            #expect(response.error == "the multipart body is truncated")
            #expect(try app.uploadsDirectoryContents() == [])
        }
        #expect(try app.count("files") == 0)
    }

    @Test func wrongBoundaryIs400() throws {
        let body = multipartBody(boundary: "other-boundary", parts: [(fileHeaders(), [1, 2])])
        let response = upload(body)
        #expect(response.status == 400)
        #expect(try app.uploadsDirectoryContents() == [])
    }

    @Test func malformedMultipartIs400() throws {
        let body = Array("--\(boundary)\r\nno colon here\r\n\r\nx\r\n--\(boundary)--".utf8)
        let response = upload(body)
        #expect(response.status == 400)
        #expect(response.error == "malformed multipart body: malformed multipart header line")
        #expect(try app.uploadsDirectoryContents() == [])
    }

    @Test func needsAToken() throws {
        let body = multipartBody(boundary: boundary, parts: [(fileHeaders(), [1, 2])])
        let response = app.handle("POST", "/upload", headers: ["Content-Type": "multipart/form-data; boundary=\(boundary)"],
                                  body: BytesBody(body))
        #expect(response.status == 401)
        #expect(try app.uploadsDirectoryContents() == [])
    }

    @Test func anInterruptedBodyIs400AndLeavesNothing() throws {
        struct FailingBody: BodyReader {
            var remaining: [UInt8]
            mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
                guard !remaining.isEmpty else { return -1 }
                let count = min(buffer.count, remaining.count, 100)
                buffer.copyBytes(from: remaining.prefix(count))
                remaining.removeFirst(count)
                return count
            }
        }
        let full = multipartBody(boundary: boundary, parts: [(fileHeaders(), Self.pictureData)])
        let response = app.handle("POST", "/upload", headers: ["Authorization": "Bearer " + alice.token,
                                                               "Content-Type": "multipart/form-data; boundary=\(boundary)"],
                                  body: FailingBody(remaining: Array(full.prefix(1000))))
        #expect(response.status == 400)
        #expect(response.error == "the upload was interrupted")
        #expect(try app.uploadsDirectoryContents() == [])
    }
}

@Suite struct AttachmentTests {
    private let app: TestApp
    private let alice: (token: String, id: Int64)
    private let bob: (token: String, id: Int64)
    private let chatID: Int64

    init() throws {
        app = try TestApp()
        alice = try app.login("alice")
        bob = try app.login("bob")
        chatID = try app.request("POST", "/chats/initiate", token: alice.token, json: #"{"target_username":"bob"}"#)
            .fields().int("chat_id")
    }

    /// Uploads `data` as `token`'s; returns the receipt.
    private func upload(_ token: String, _ data: [UInt8], filename: String = "a.png", contentType: String = "image/png") throws -> JSON {
        let body = multipartBody(boundary: "b", parts: [
            (#"Content-Disposition: form-data; name="file"; filename="\#(filename)"\#r\#nContent-Type: \#(contentType)"#, data),
        ])
        let response = app.handle("POST", "/upload?v=2", headers: ["Authorization": "Bearer " + token,
                                                               "Content-Type": "multipart/form-data; boundary=b"],
                                  body: BytesBody(body))
        try #require(response.status == 200, "\(response.text)")
        return try response.json()
    }

    private func url(_ receipt: JSON) -> String {
        if case .string(let url)? = receipt["url"] { return url }
        return ""
    }

    @Test func attachingOwnUploadUsesTheServersRecord() throws {
        let receipt = try upload(alice.token, [1, 2, 3, 4, 5])
        let response = app.request("POST", "/chats/\(chatID)/messages", token: alice.token,
                                   json: #"{"files":[{"url":"\#(url(receipt))","size_bytes":999999,"mime_type":"text/html","type":"file"}]}"#)
        #expect(response.status == 200, "\(response.text)")
        let message = try response.json()
        #expect(message["content"] == .null)
        let files = message["files"]?.array ?? []
        #expect(files.count == 1)
        let file = try #require(files.first)
        #expect(file.keys == fileKeys)
        #expect(file["id"] == receipt["id"])
        #expect(file["url"] == receipt["url"])
        #expect(file["size_bytes"] == .int(5))
        #expect(file["mime_type"] == .string("image/png"))
        #expect(file["type"] == .string("picture"))

        let history = try app.request("GET", "/chats/\(chatID)/messages", token: bob.token).json()
        #expect(history["messages"]?.array.first?["files"] == message["files"])
    }

    @Test func refusedAttachmentsStoreNothing() throws {
        let theirs = try upload(bob.token, [9, 9])
        let mine = try upload(alice.token, [1])
        for files in [#"[{"url":"\#(url(theirs))"}]"#,
                      #"[{"url":"\#(url(mine))"},{"url":"\#(url(theirs))"}]"#,
                      #"[{"url":"/uploads/00000000-0000-0000-0000-000000000000.png"}]"#,
                      #"[{"url":"/uploads/../../etc/passwd"}]"#,
                      #"[{"url":"http://evil.example/x.png"}]"#] {
            let response = app.request("POST", "/chats/\(chatID)/messages", token: alice.token,
                                       json: #"{"content":"look","files":\#(files)}"#)
            #expect(response.status == 400, "\(files)")
            #expect(response.error != nil)
        }
        #expect(try app.count("messages") == 0)
        #expect(try app.count("message_files") == 0)
    }

    @Test func profilePictureMustBeOwnPictureUpload() throws {
        let picture = try upload(alice.token, [1, 2])
        let document = try upload(alice.token, [3], filename: "a.pdf", contentType: "application/pdf")
        let theirs = try upload(bob.token, [4])
        guard case .int(let pictureID)? = picture["id"], case .int(let documentID)? = document["id"],
              case .int(let theirsID)? = theirs["id"] else {
            Issue.record("missing ids")
            return
        }
        #expect(app.request("PATCH", "/users/me", token: alice.token, json: #"{"image_id":\#(theirsID)}"#).status == 400)
        #expect(app.request("PATCH", "/users/me", token: alice.token, json: #"{"image_id":\#(documentID)}"#).status == 400)
        let ok = app.request("PATCH", "/users/me", token: alice.token, json: #"{"image_id":\#(pictureID)}"#)
        #expect(ok.status == 200)
        #expect(try app.request("GET", "/users/alice").json()["image_id"] == .int(pictureID))
    }
}
