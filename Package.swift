// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Messenger",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "FCGIApp", targets: ["FCGIApp"]),
        .executable(name: "WSRelay", targets: ["WSRelay"]),
        .executable(name: "LoadGen", targets: ["LoadGen"]),
        .executable(name: "ScaleSeed", targets: ["ScaleSeed"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // C libraries from Debian's -dev packages.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .systemLibrary(name: "CPostgres", path: "Sources/CPostgres"),
        .systemLibrary(name: "CFastCGI", path: "Sources/CFastCGI"),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        .systemLibrary(name: "CArgon2", path: "Sources/CArgon2"),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),

        // Models, JSON, tokens, configuration, the notification wire format, and the log and
        // metrics formats (Prometheus), shared by both processes.
        .target(
            name: "Domain",
            dependencies: [
                "COpenSSL", "CArgon2", "CMalloc",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // SQLite (and PostgreSQL's libpq): connections, statements, migrations and the queries
        // of the messenger.
        .target(
            name: "Storage",
            dependencies: ["CSQLite", "CPostgres", "Domain", .product(name: "CoreMetrics", package: "swift-metrics")]
        ),
        // The REST API behind nginx's fastcgi_pass.
        .executableTarget(
            name: "FCGIApp",
            dependencies: [
                "CFastCGI", "Domain", "Storage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            // The REST API's OpenAPI spec: served by nginx, checked by the e2e suite.
            exclude: ["openapi.yaml"]
        ),
        // The WebSocket relay behind nginx's /ws.
        .executableTarget(
            name: "WSRelay",
            dependencies: [
                "Domain", "Storage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The load generator behind scripts/bench: WebSocket and HTTP clients on SwiftNIO.
        .executableTarget(
            name: "LoadGen",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The database generator behind scripts/bench --scale: SQLite directly, not the API.
        .executableTarget(
            name: "ScaleSeed",
            dependencies: [
                "Storage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "DomainTests", dependencies: ["Domain", .product(name: "CoreMetrics", package: "swift-metrics")]),
        .testTarget(name: "StorageTests", dependencies: ["Storage"]),
        .testTarget(name: "FCGIAppTests", dependencies: ["FCGIApp"]),
        .testTarget(name: "LoadGenTests", dependencies: ["LoadGen"]),
        .testTarget(
            name: "WSRelayTests",
            dependencies: [
                "WSRelay",
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
