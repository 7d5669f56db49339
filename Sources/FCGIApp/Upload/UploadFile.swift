import Domain
import Foundation

/// Where an upload's bytes go while they stream in: a hidden temporary file in the uploads
/// directory, renamed to `<uuid>.<ext>` only when the whole body has arrived, and removed
/// on any failure, so a refused or aborted upload leaves nothing behind.
struct UploadFile: MultipartSink {
    let directory: String
    let limit: Int64
    private(set) var headers: MultipartPartHeaders?
    private(set) var size: Int64 = 0
    private var descriptor: Int32 = -1
    private var temporaryPath: String?
    private var inFilePart = false

    init(directory: String, limit: Int64) {
        self.directory = directory
        self.limit = limit
    }

    mutating func beginPart(_ part: MultipartPartHeaders) throws {
        guard part.name == "file" else { return }
        guard headers == nil else { throw HTTPError(.badRequest, "send one file per upload") }
        let path = directory + "/.upload-" + UUID().uuidString.lowercased() + ".part"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            if Self.isOutOfSpace(errno) { throw Self.diskFull }
            throw UploadIOError(message: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        descriptor = fd
        temporaryPath = path
        headers = part
        inFilePart = true
    }

    mutating func partData(_ bytes: UnsafeRawBufferPointer) throws {
        guard inFilePart, !bytes.isEmpty else { return }
        size += Int64(bytes.count)
        guard size <= limit else { throw HTTPError(.contentTooLarge, "file exceeds the upload limit of \(limit) bytes") }
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                // The file does not fit: the client's error to hear (507), and `discard`
                // removes what was written, so the space comes back at once.
                if Self.isOutOfSpace(errno) { throw Self.diskFull }
                throw UploadIOError(message: "write failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    mutating func endPart() throws {
        inFilePart = false
    }

    /// Moves the completed file into place under `storedName`.
    mutating func commit(as storedName: String) throws {
        guard let temporaryPath else { throw HTTPError(.badRequest, "the multipart body has no file field") }
        // close() is where a filesystem that delays allocation (NFS, some quotas) reports
        // that the data did not fit.
        let closed = close(descriptor)
        descriptor = -1
        if closed != 0 && Self.isOutOfSpace(errno) { throw Self.diskFull }
        guard rename(temporaryPath, directory + "/" + storedName) == 0 else {
            throw UploadIOError(message: "rename failed: \(String(cString: strerror(errno)))")
        }
        self.temporaryPath = nil
    }

    static let diskFull = HTTPError(.insufficientStorage, "the server has no room for this file; try again later")

    /// ENOSPC (the filesystem is full) or EDQUOT (the user's quota is).
    static func isOutOfSpace(_ code: Int32) -> Bool { code == ENOSPC || code == EDQUOT }

    /// Removes whatever this upload wrote. Safe to call more than once.
    mutating func discard() {
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
        if let temporaryPath { unlink(temporaryPath) }
        temporaryPath = nil
    }
}

/// A file-system failure while storing an upload: a server fault, logged, shown as a 500.
struct UploadIOError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
