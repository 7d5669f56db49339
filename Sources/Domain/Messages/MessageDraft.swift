/// What a client asked to send, validated but not yet resolved against the database.
///
/// The same rules hold for every way in: a WebSocket frame (seed 000 or 001 shape) and
/// `POST /chats/:id/messages`.
public struct MessageDraft: Sendable, Equatable {
    public static let maxContentLength = 4000
    public static let maxFiles = 10
    public static let maxNonceLength = 64

    /// How the client named an upload. Only the server's own record of it is ever used.
    public enum FileReference: Sendable, Equatable, Hashable {
        /// The stored name from a `/uploads/<name>` url.
        case storedName(String)
        case id(Int64)
    }

    public let content: String?
    public let files: [FileReference]
    /// Client-chosen idempotency key: the same sender and nonce is stored once.
    public let nonce: String?
    /// The message of the same chat this one answers.
    public let replyToID: Int64?

    /// Checks the rules every send obeys: content within the length limit and not blank
    /// unless files are attached, at most `maxFiles` files, a nonce of 1–64 characters.
    public init(content: String?, files: [FileReference] = [], nonce: String? = nil,
                replyToID: Int64? = nil) throws(ValidationError) {
        guard files.count <= Self.maxFiles else {
            throw ValidationError("a message may carry at most \(Self.maxFiles) files")
        }
        try Self.validate(content: content, hasFiles: !files.isEmpty)
        if let nonce, nonce.isEmpty || nonce.unicodeScalars.count > Self.maxNonceLength {
            throw ValidationError("nonce must be 1 to \(Self.maxNonceLength) characters")
        }
        self.content = content
        self.files = files
        self.nonce = nonce
        self.replyToID = replyToID
    }

    /// The content rule of sends and edits: at most `maxContentLength` characters, and not
    /// blank unless the message has files.
    public static func validate(content: String?, hasFiles: Bool) throws(ValidationError) {
        if let content, content.unicodeScalars.count > maxContentLength {
            throw ValidationError("content must be at most \(maxContentLength) characters")
        }
        let isBlank = content.map { $0.unicodeScalars.allSatisfy(\.properties.isWhitespace) } ?? true
        if isBlank && !hasFiles {
            throw ValidationError("a message needs non-empty content or files")
        }
    }

    /// Reads `content`, `files`, `nonce` and `reply_to_id` from a request object.
    public init(_ fields: JSONFields) throws(ValidationError) {
        let nonce = try Self.nonce(in: fields)
        let replyToID = try fields.optionalID("reply_to_id")
        let content = try fields.optionalString("content")
        var references: [FileReference] = []
        if let files = try fields.optionalArray("files") {
            guard files.count <= Self.maxFiles else {
                throw ValidationError("a message may carry at most \(Self.maxFiles) files")
            }
            for file in files {
                references.append(try Self.reference(file))
            }
        }
        try self.init(content: content, files: references, nonce: nonce, replyToID: replyToID)
    }

    /// The nonce of a send, validated on its own so that even a refused send can echo it back.
    public static func nonce(in fields: JSONFields) throws(ValidationError) -> String? {
        guard let nonce = try fields.optionalString("nonce") else { return nil }
        guard !nonce.isEmpty, nonce.unicodeScalars.count <= maxNonceLength else {
            throw ValidationError("nonce must be 1 to \(maxNonceLength) characters")
        }
        return nonce
    }

    private static func reference(_ value: JSON) throws(ValidationError) -> FileReference {
        let fields: JSONFields
        do {
            fields = try JSONFields(value)
        } catch {
            throw ValidationError("each file must be an object from /upload")
        }
        if let url = try fields.optionalString("url") {
            guard let name = storedName(fromURL: url) else {
                throw ValidationError("file url \(quoted(url)) is not an upload of this server")
            }
            return .storedName(name)
        }
        if let id = try fields.optionalID("id") {
            return .id(id)
        }
        throw ValidationError("each file needs the url (or id) returned by /upload")
    }

    /// `"/uploads/<name>"` → `<name>`, for names the server could have made: letters, digits,
    /// `-` and at most one `.`, so no `..`, slash or scheme ever reaches a lookup.
    public static func storedName(fromURL url: String) -> String? {
        guard url.hasPrefix(StoredFile.urlPrefix) else { return nil }
        let name = url.dropFirst(StoredFile.urlPrefix.count)
        guard !name.isEmpty, name.count <= 80, name.first != "." else { return nil }
        var dots = 0
        for scalar in name.unicodeScalars {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "-": continue
            case ".": dots += 1
            default: return nil
            }
        }
        return dots <= 1 ? String(name) : nil
    }

    private static func quoted(_ text: String) -> String {
        "\"" + String(text.prefix(80)) + (text.count > 80 ? "…" : "") + "\""
    }
}
