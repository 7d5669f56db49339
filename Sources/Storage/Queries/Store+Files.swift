import Domain

extension Store {
    static let fileColumns = "id, uploader_id, kind, stored_name, filename, mime_type, size_bytes, created_at"

    /// Maps the eight file columns starting at `offset`.
    static func file(_ row: Row, offset: Int32 = 0) -> StoredFile {
        StoredFile(id: row.int(offset), uploaderID: row.int(offset + 1),
                   kind: StoredFile.Kind(rawValue: row.string(offset + 2)) ?? .file,
                   storedName: row.string(offset + 3), filename: row.string(offset + 4),
                   mimeType: row.optionalString(offset + 5), sizeBytes: row.int(offset + 6),
                   createdAt: row.string(offset + 7))
    }

    /// Records a completed upload.
    public func insertFile(uploaderID: Int64, kind: StoredFile.Kind, storedName: String, filename: String,
                           mimeType: String?, sizeBytes: Int64) throws -> StoredFile {
        try database.write {
            guard let id = try database.insert("""
                INSERT INTO files (uploader_id, kind, stored_name, filename, mime_type, size_bytes)
                VALUES (?, ?, ?, ?, ?, ?)
                """, [.integer(uploaderID), .text(kind.rawValue), .text(storedName), .text(filename),
                      SQLValue(mimeType), .integer(sizeBytes)], returning: "id")
            else { throw StorageError(code: 0, message: "file insert stored no row") }
            guard let file = try file(id: id) else { throw StorageError(code: 0, message: "file vanished after insert") }
            return file
        }
    }

    public func file(id: Int64) throws -> StoredFile? {
        try database.statement("SELECT \(Self.fileColumns) FROM files WHERE id = ?")
            .first([.integer(id)]) { Self.file($0) }
    }

    public func file(storedName: String) throws -> StoredFile? {
        try database.statement("SELECT \(Self.fileColumns) FROM files WHERE stored_name = ?")
            .first([.text(storedName)]) { Self.file($0) }
    }
}
