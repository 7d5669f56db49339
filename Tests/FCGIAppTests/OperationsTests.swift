import Domain
@testable import FCGIApp
import Foundation
import Testing

@Suite struct RequestMetricsTests {
    private func rendered(_ export: MetricsExport) -> String { String(decoding: export.render(), as: UTF8.self) }

    @Test func countsRequestsByRoutePatternMethodAndStatus() {
        let export = MetricsExport()
        let metrics = RequestMetrics(factory: export.factory)
        metrics.record(route: "/chats/:id", method: "GET", status: 200, nanoseconds: 1_500_000)
        metrics.record(route: "/chats/:id", method: "GET", status: 200, nanoseconds: 700_000)
        metrics.record(route: "/chats/:id", method: "GET", status: 403, nanoseconds: 300_000)
        metrics.record(route: "unmatched", method: "BREW", status: 404, nanoseconds: 100_000)
        let text = rendered(export)
        #expect(text.contains(#"messenger_http_requests_total{route="/chats/:id",method="GET",status="200"} 2"#))
        #expect(text.contains(#"messenger_http_requests_total{route="/chats/:id",method="GET",status="403"} 1"#))
        // A method nginx passed but the API does not know is one label, whatever it was.
        #expect(text.contains(#"messenger_http_requests_total{route="unmatched",method="OTHER",status="404"} 1"#))
        #expect(!text.contains("BREW"))
        // Durations by route and method, in seconds: 0.3, 0.7 and 1.5 ms.
        #expect(text.contains(#"messenger_http_request_duration_seconds_bucket{route="/chats/:id",method="GET",le="0.0005"} 1"#))
        #expect(text.contains(#"messenger_http_request_duration_seconds_bucket{route="/chats/:id",method="GET",le="0.001"} 2"#))
        #expect(text.contains(#"messenger_http_request_duration_seconds_bucket{route="/chats/:id",method="GET",le="0.002"} 3"#))
        #expect(text.contains(#"messenger_http_request_duration_seconds_count{route="/chats/:id",method="GET"} 3"#))
        #expect(text.contains(#"messenger_http_request_duration_seconds_sum{route="/chats/:id",method="GET"} 0.0025"#))
    }

    @Test func millisecondsHaveThreeDecimals() {
        #expect(Elapsed.milliseconds(1_234_567) == "1.234")
        #expect(Elapsed.milliseconds(5_000) == "0.005")
        #expect(Elapsed.milliseconds(2_000_000_000) == "2000.000")
    }

    @Test func theRouterNamesTheRoutePatternNotThePath() throws {
        let router = API.router()
        var request = try Request(method: "GET", uri: "/chats/42/messages?limit=5")
        _ = try router.resolve(&request)
        #expect(request.route == "/chats/:id/messages")
        var unknown = try Request(method: "GET", uri: "/nothing/here")
        #expect(throws: HTTPError.self) { try router.resolve(&unknown) }
        #expect(unknown.route == nil)
    }
}

@Suite struct HealthTests {
    /// A relay stand-in on the relay's socket path that answers one request with `status`.
    private final class OneShotRelay: @unchecked Sendable {
        // @unchecked: `fd` is set before the thread starts and only closed after it joined.
        let fd: Int32
        let done = DispatchSemaphore(value: 0)
        var received = ""

        init(path: String, status: String) throws {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            self.fd = fd
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                buffer.copyBytes(from: Array(path.utf8))
                buffer[path.utf8.count] = 0
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            try #require(bound == 0 && listen(fd, 1) == 0)
            Thread { [self] in
                let client = accept(fd, nil, nil)
                var buffer = [UInt8](repeating: 0, count: 1024)
                let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                received = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
                let answer = Array("HTTP/1.1 \(status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(client)
                done.signal()
            }.start()
        }

        deinit { close(fd) }
    }

    @Test func downWhenNothingListensOnTheRelaySocket() throws {
        let app = try TestApp()
        try FileManager.default.createDirectory(atPath: app.configuration.runDirectory, withIntermediateDirectories: true)
        let response = app.request("GET", "/healthz")
        #expect(response.status == 503)
        #expect(response.text == #"{"status":"down","database":"ok","relay":"down"}"#)
    }

    @Test func okWhenTheRelayAnswers200AndNoTokenIsNeeded() throws {
        let app = try TestApp()
        try FileManager.default.createDirectory(atPath: app.configuration.runDirectory, withIntermediateDirectories: true)
        let relay = try OneShotRelay(path: app.configuration.relaySocketPath, status: "200 OK")
        var request = try Request(method: "GET", uri: "/healthz", id: "req-1")
        let response = try HealthRoutes.check(&request, app.context)
        relay.done.wait()
        #expect(response.status == .ok)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"status":"ok"}"#)
        #expect(relay.received.hasPrefix("GET /healthz HTTP/1.1\r\n"))
        #expect(relay.received.contains("X-Request-Id: req-1\r\n"))
    }

    @Test func aProbeAnswerStandsForAQuarterSecondThenTheRelayIsAskedAgain() throws {
        let app = try TestApp()
        try FileManager.default.createDirectory(atPath: app.configuration.runDirectory, withIntermediateDirectories: true)
        let path = app.configuration.relaySocketPath
        var relay: OneShotRelay? = try OneShotRelay(path: path, status: "200 OK")
        let health = RelayHealth()
        #expect(health.downRelays([(1, path)], requestID: "a").isEmpty)
        relay?.done.wait()
        relay = nil  // nothing listens any more: only the standing answer can still say ok
        #expect(health.downRelays([(1, path)], requestID: "b").isEmpty)
        usleep(useconds_t(RelayHealth.maxAgeNanoseconds / 1_000 + 50_000))
        #expect(health.downRelays([(1, path)], requestID: "c") == [1])
    }

    @Test func downWhenTheRelayAnswersAnythingBut200() throws {
        let app = try TestApp()
        try FileManager.default.createDirectory(atPath: app.configuration.runDirectory, withIntermediateDirectories: true)
        let relay = try OneShotRelay(path: app.configuration.relaySocketPath, status: "503 Service Unavailable")
        let response = app.request("GET", "/healthz")
        relay.done.wait()
        #expect(response.status == 503)
        #expect(response.text == #"{"status":"down","database":"ok","relay":"down"}"#)
    }
}
