import Domain
import Foundation
import Logging
import Storage

/// Removes what an FCGIApp killed in the middle of an upload left in the uploads directory:
/// a hidden partial file (`.upload-<uuid>.part`, killed while the body streamed in), or a
/// stored name no file row points at (killed between the rename and the commit). Neither was
/// ever acknowledged or can be reached through a URL that a client was given.
///
/// Runs at start-up, before the sockets listen. With one FCGIApp no upload is under way then;
/// with several (`FCGI_INSTANCES`, or other hosts', which share the uploads directory:
/// nginx/messenger-front.conf) the others may be streaming or committing one, so only files
/// untouched for `minimumAge` go: a streaming upload writes at least once a minute (nginx's
/// `client_body_timeout`), and a renamed file's row commits within a busy timeout.
enum UploadSweep {
    /// The `minimumAge` when other FCGIApps share the directory.
    static let sharedMinimumAge: TimeInterval = 600

    /// 0 for a host's one FCGIApp; `sharedMinimumAge` beside other instances, or on one host
    /// of several (`LOCAL_RELAYS` names only some of the deployment's relays).
    static func minimumAge(_ configuration: Configuration) -> TimeInterval {
        let otherHosts = configuration.localRelays.count < configuration.relayInstances
        return configuration.fcgiInstances > 1 || otherHosts ? sharedMinimumAge : 0
    }

    static func run(directory: String, store: Store, logger: Logger, minimumAge: TimeInterval = 0) throws {
        var removed: [String] = []
        let cutoff = Date().addingTimeInterval(-minimumAge)
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            if minimumAge > 0 {
                let modified = try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.modificationDate] as? Date
                guard let modified, modified < cutoff else { continue }
            }
            let orphan: Bool
            if name.hasPrefix(".upload-") && name.hasSuffix(".part") {
                orphan = true
            } else if isStoredName(name) {
                orphan = try store.file(storedName: name) == nil
            } else {
                orphan = false  // not ours (an operator's file): left alone
            }
            if orphan && unlink(directory + "/" + name) == 0 { removed.append(name) }
        }
        if !removed.isEmpty {
            logger.notice("removed unfinished uploads", metadata: ["count": "\(removed.count)",
                                                                    "files": "\(removed.prefix(20).joined(separator: " "))"])
        }
    }

    /// `<uuid>.<ext>` as `UploadNaming.storedName` makes them.
    static func isStoredName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 36, (1...10).contains(parts[1].count) else { return false }
        let hex = parts[0].unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) || $0 == "-" }
        let ext = parts[1].unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."z").contains($0) }
        return hex && ext && UUID(uuidString: String(parts[0])) != nil
    }
}
