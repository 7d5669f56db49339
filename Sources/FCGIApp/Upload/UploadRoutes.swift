import Domain
import Foundation

enum UploadRoutes {
    /// Bytes allowed in a multipart body beyond the file itself: boundaries, part headers.
    static let multipartOverhead: Int64 = 64 * 1024
    static let chunkSize = 64 * 1024

    /// `POST /upload`, multipart with a `file` field → seed 000's `{url, filename, mime_type,
    /// size_bytes}`, or with `?v=2` the whole file object. The body streams to disk in 64 KiB
    /// chunks and is never held in memory.
    @Sendable static func upload(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        let version = try request.version()
        // Before the body is read: a refused upload is never written to uploads/.
        try context.limitRate(.upload, key: String(user.id))
        let limit = context.configuration.uploadMaxBytes
        guard let contentType = request.headers["content-type"],
              let boundary = MultipartParser.boundary(fromContentType: contentType)
        else { throw HTTPError(.badRequest, "the body must be multipart/form-data with a boundary and a file field") }
        if let declared = request.headers["content-length"].flatMap(Int64.init), declared > limit + multipartOverhead {
            throw HTTPError(.contentTooLarge, "file exceeds the upload limit of \(limit) bytes")
        }

        var file = UploadFile(directory: context.configuration.uploadsDirectory, limit: limit)
        defer { file.discard() }
        var parser = MultipartParser(boundary: boundary)
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var total: Int64 = 0
        do {
            while true {
                let count = chunk.withUnsafeMutableBytes { request.body.read(into: $0) }
                if count < 0 { throw HTTPError(.badRequest, "the upload was interrupted") }
                if count == 0 { break }
                total += Int64(count)
                if total > limit + multipartOverhead {
                    throw HTTPError(.contentTooLarge, "file exceeds the upload limit of \(limit) bytes")
                }
                try chunk.withUnsafeBytes { try parser.feed(UnsafeRawBufferPointer(rebasing: $0[0..<count]), into: &file) }
            }
            try parser.finish()
        } catch let failure as MultipartParser.Failure {
            switch failure {
            case .truncated: throw HTTPError(.badRequest, "the multipart body is truncated")
            case .malformed(let reason): throw HTTPError(.badRequest, "malformed multipart body: \(reason)")
            }
        }
        guard let part = file.headers else { throw HTTPError(.badRequest, "the multipart body has no file field") }

        let filename = UploadNaming.displayName(part.filename)
        let storedName = UploadNaming.storedName(clientFilename: filename)
        let mimeType = UploadNaming.mimeType(part.contentType)
        try file.commit(as: storedName)
        do {
            let size = file.size
            let stored = try context.writer.perform {
                try $0.insertFile(uploaderID: user.id, kind: StoredFile.Kind(mimeType: mimeType), storedName: storedName,
                                  filename: filename, mimeType: mimeType, sizeBytes: size)
            }
            switch version {
            case .v1: return .json(stored.seedUploadReceipt)
            case .v2: return .json(stored)
            }
        } catch {
            unlink(context.configuration.uploadsDirectory + "/" + storedName)
            throw error
        }
    }
}
