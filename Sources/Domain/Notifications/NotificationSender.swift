import Foundation

/// Sends `RelayNotification`s as datagrams to the relays' Unix sockets (one per relay
/// instance), without ever blocking.
///
/// A send to a relay that is stopped, restarting or too busy to drain its buffer fails at
/// once and is dropped: the request that caused it has already committed, and the relay
/// catches up from the database. The socket is bound to an abstract autobind address first,
/// because NIO's datagram channel closes when a datagram arrives from an unbound AF_UNIX peer.
/// Safe to share between threads: `sendto` on one datagram socket is atomic per datagram.
public final class NotificationSender: Sendable {
    private let descriptor: Int32
    private let addresses: [sockaddr_un]

    public convenience init(socketPath: String) throws {
        try self.init(socketPaths: [socketPath])
    }

    public init(socketPaths: [String]) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ConfigurationError("notification socket: \(String(cString: strerror(errno)))") }
        // Autobind: binding with only the family assigns a unique abstract address.
        var local = sockaddr_un()
        local.sun_family = sa_family_t(AF_UNIX)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sa_family_t>.size))
            }
        }
        guard bound == 0 else {
            close(fd)
            throw ConfigurationError("notification socket autobind: \(String(cString: strerror(errno)))")
        }
        var addresses: [sockaddr_un] = []
        for socketPath in socketPaths {
            var remote = sockaddr_un()
            remote.sun_family = sa_family_t(AF_UNIX)
            let pathBytes = Array(socketPath.utf8)
            guard pathBytes.count < MemoryLayout.size(ofValue: remote.sun_path) else {
                close(fd)
                throw ConfigurationError("notification socket path too long: \(socketPath)")
            }
            withUnsafeMutableBytes(of: &remote.sun_path) { buffer in
                buffer.copyBytes(from: pathBytes)
            }
            addresses.append(remote)
        }
        descriptor = fd
        self.addresses = addresses
    }

    deinit {
        close(descriptor)
    }

    /// Sends `notification` to every relay; returns how many sockets took it. Never blocks.
    @discardableResult
    public func send(_ notification: RelayNotification) -> Int {
        let bytes = notification.encoded
        var taken = 0
        for address in addresses {
            var target = address
            let sent = bytes.withUnsafeBytes { buffer in
                withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), $0,
                               socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
            }
            if sent == bytes.count { taken += 1 }
        }
        return taken
    }
}
