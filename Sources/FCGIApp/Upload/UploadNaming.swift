import Domain
import Foundation

/// How an upload is named and described from what the client sent, trusting none of it
/// for paths.
enum UploadNaming {
    static let maxFilenameLength = 255

    /// `<uuid>.<ext>`, the extension taken from the client's name only when it is short and
    /// alphanumeric, else `bin`.
    static func storedName(clientFilename: String) -> String {
        let uuid = UUID().uuidString.lowercased()
        return uuid + "." + fileExtension(of: clientFilename)
    }

    static func fileExtension(of filename: String) -> String {
        guard let dot = filename.lastIndex(of: "."), dot != filename.startIndex else { return "bin" }
        let candidate = filename[filename.index(after: dot)...]
        guard (1...10).contains(candidate.count),
              candidate.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) })
        else { return "bin" }
        return candidate.lowercased()
    }

    /// The client's name, kept as metadata: control characters removed, length bounded.
    static func displayName(_ filename: String?) -> String {
        let cleaned = String((filename ?? "").unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }
            .map(Character.init))
        let bounded = String(cleaned.prefix(maxFilenameLength))
        return bounded.isEmpty ? "upload" : bounded
    }

    /// A well-formed `type/subtype`, lower-cased and without parameters; `nil` otherwise.
    static func mimeType(_ contentType: String?) -> String? {
        guard let contentType else { return nil }
        let essence = contentType.split(separator: ";", maxSplits: 1).first?
            .trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        let parts = essence.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, essence.count <= 127, parts.allSatisfy({ isToken($0) }) else { return nil }
        return essence
    }

    /// RFC 7230 token characters.
    private static func isToken(_ text: Substring) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy { scalar in
            ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar)
        }
    }
}
