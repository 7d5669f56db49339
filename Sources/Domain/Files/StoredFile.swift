/// An upload as the server recorded it: the only description of a file it ever trusts.
public struct StoredFile: Sendable, Equatable, JSONEncodable {
    public enum Kind: String, Sendable, CaseIterable {
        case picture
        case video
        case audio
        case file

        /// The kind a MIME type implies; anything unrecognised is a plain `file`.
        public init(mimeType: String?) {
            let major = mimeType?.split(separator: "/").first?.lowercased()
            switch major {
            case "image": self = .picture
            case "video": self = .video
            case "audio": self = .audio
            default: self = .file
            }
        }
    }

    public let id: Int64
    public let uploaderID: Int64
    public let kind: Kind
    /// `<uuid>.<ext>` inside the uploads directory; never derived from client input alone.
    public let storedName: String
    /// The client's name for the file; metadata only, never a path.
    public let filename: String
    public let mimeType: String?
    public let sizeBytes: Int64
    public let createdAt: String

    public init(id: Int64, uploaderID: Int64, kind: Kind, storedName: String, filename: String,
                mimeType: String?, sizeBytes: Int64, createdAt: String) {
        self.id = id
        self.uploaderID = uploaderID
        self.kind = kind
        self.storedName = storedName
        self.filename = filename
        self.mimeType = mimeType
        self.sizeBytes = sizeBytes
        self.createdAt = createdAt
    }

    public static let urlPrefix = "/uploads/"

    public var url: String { Self.urlPrefix + storedName }

    /// The seed's file object, as attached to messages; also the protocol-2 upload receipt.
    public func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("id", id)
            json.field("type", kind.rawValue)
            json.field("url", url)
            json.field("filename", filename)
            json.field("mime_type", mimeType)
            json.field("size_bytes", sizeBytes)
            json.field("created_at", createdAt)
        }
    }

    /// The answer to `POST /upload` without `?v=2`: exactly seed 000's
    /// `{url, filename, mime_type, size_bytes}`, as a strict client decodes it.
    public var seedUploadReceipt: some JSONEncodable { SeedUploadReceipt(file: self) }
}

private struct SeedUploadReceipt: JSONEncodable {
    let file: StoredFile

    func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("url", file.url)
            json.field("filename", file.filename)
            json.field("mime_type", file.mimeType)
            json.field("size_bytes", file.sizeBytes)
        }
    }
}
