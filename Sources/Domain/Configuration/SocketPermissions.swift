import Foundation

/// Lets nginx's worker user connect to a Unix socket we created: mode 0660 and, when
/// configured, the group nginx's workers run in (as root, the socket would otherwise be
/// `root 0755` and nginx would get "permission denied").
public enum SocketPermissions {
    public static func apply(path: String, group: String?) throws {
        if let group {
            guard let entry = getgrnam(group) else { throw ConfigurationError("SOCKET_GROUP \(group) does not exist") }
            guard chown(path, uid_t.max, entry.pointee.gr_gid) == 0 else {
                throw ConfigurationError("cannot chown \(path) to group \(group): \(String(cString: strerror(errno)))")
            }
        }
        guard chmod(path, 0o660) == 0 else {
            throw ConfigurationError("cannot chmod \(path): \(String(cString: strerror(errno)))")
        }
    }
}
