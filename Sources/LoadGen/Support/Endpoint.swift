import NIOCore
import NIOPosix

/// Where the stack listens and where connections come from.
///
/// With more than one source address, connection `i` binds to 127.0.0.(1 + i mod N) with
/// `IP_BIND_ADDRESS_NO_PORT`, so the kernel picks the port at connect time and each address
/// has its own ephemeral port range.
struct Endpoint: Sendable {
    let host: String
    let port: Int
    let sources: [SocketAddress]
    /// Where sockets upgrade: `/ws`, or `/ws?v=2` for protocol 2.
    let webSocketPath: String

    init(host: String, port: Int, sourceCount: Int, protocolVersion: Int = 1) throws {
        self.host = host
        self.port = port
        webSocketPath = protocolVersion == 2 ? "/ws?v=2" : "/ws"
        sources = sourceCount <= 1 ? [] : try (1...sourceCount).map {
            try SocketAddress(ipAddress: "127.0.0.\($0)", port: 0)
        }
    }

    /// The `Host` header nginx sees.
    var hostHeader: String { "\(host):\(port)" }

    /// A client bootstrap on `loop` for connection number `index`.
    func bootstrap(on loop: EventLoop, index: Int) -> ClientBootstrap {
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        if !sources.isEmpty {
            bootstrap = bootstrap
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(Self.bindAddressNoPort, value: 1)
                .bind(to: sources[index % sources.count])
        }
        return bootstrap
    }

    /// `IP_BIND_ADDRESS_NO_PORT` (Linux 4.2+, value 24): defer the port choice to connect().
    private static let bindAddressNoPort = ChannelOptions.Types.SocketOption(
        level: .ip, name: NIOBSDSocket.Option(rawValue: 24))
}
