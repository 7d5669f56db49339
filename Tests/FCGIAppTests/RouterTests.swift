import Domain
@testable import FCGIApp
import Testing

@Suite struct RouterTests {
    private func router() -> Router {
        var router = Router()
        router.add("GET", "/things", { _, _ in Response(body: Array("list".utf8)) })
        router.add("POST", "/things", { _, _ in Response(body: Array("create".utf8)) })
        router.add("GET", "/things/special", { _, _ in Response(body: Array("special".utf8)) })
        router.add("GET", "/things/:id", { request, _ in Response(body: Array("thing \(request.parameters["id"] ?? "?")".utf8)) })
        router.add("GET", "/things/:id/parts/:part", { request, _ in
            Response(body: Array("\(request.parameters["id"] ?? "?")/\(request.parameters["part"] ?? "?")".utf8))
        })
        return router
    }

    /// The handler's identity through the body it would write, without needing a context.
    private func resolve(_ method: String, _ uri: String) throws -> (handler: Handler, request: Request) {
        var request = try Request(method: method, uri: uri)
        let handler = try router().resolve(&request)
        return (handler, request)
    }

    @Test func matchesLiteralAndCapturedSegments() throws {
        #expect(try resolve("GET", "/things").request.parameters == [:])
        #expect(try resolve("GET", "/things/42").request.parameters == ["id": "42"])
        #expect(try resolve("GET", "/things/42/parts/7").request.parameters == ["id": "42", "part": "7"])
        // The first matching route wins: the literal was added before the capture.
        #expect(try resolve("GET", "/things/special").request.parameters == [:])
    }

    @Test func unknownPathIs404() {
        #expect(throws: HTTPError(.notFound, "no such endpoint: GET /nothing")) { try resolve("GET", "/nothing") }
        #expect(throws: HTTPError(.notFound, "no such endpoint: GET /things/1/2")) { try resolve("GET", "/things/1/2") }
        #expect(throws: HTTPError(.notFound, "no such endpoint: GET /")) { try resolve("GET", "/") }
    }

    @Test func knownPathWithAnotherMethodIs405() {
        #expect(throws: HTTPError(.methodNotAllowed, "DELETE is not allowed on /things")) { try resolve("DELETE", "/things") }
        #expect(throws: HTTPError(.methodNotAllowed, "POST is not allowed on /things/9")) { try resolve("POST", "/things/9") }
    }

    @Test func headIsServedByGet() throws {
        #expect(try resolve("HEAD", "/things/5").request.parameters == ["id": "5"])
        #expect(try resolve("head", "/things").request.method == "HEAD")
    }

    @Test func emptySegmentsAndQueriesDoNotAffectMatching() throws {
        #expect(try resolve("GET", "/things/").request.path == "/things")
        #expect(try resolve("GET", "//things//42").request.parameters == ["id": "42"])
        #expect(try resolve("GET", "/things/42?x=1").request.parameters == ["id": "42"])
    }

    @Test func capturesArePercentDecoded() throws {
        #expect(try resolve("GET", "/things/al%69ce").request.parameters == ["id": "alice"])
        #expect(try resolve("GET", "/things/a%20b").request.parameters == ["id": "a b"])
        // An encoded slash stays inside its segment.
        #expect(try resolve("GET", "/things/a%2Fb").request.parameters == ["id": "a/b"])
        #expect(try resolve("GET", "/%74hings").request.path == "/things")
    }

    @Test func theAPITableRoutesEveryEndpoint() throws {
        let api = API.router()
        for (method, uri) in [("POST", "/login"), ("GET", "/users"), ("PATCH", "/users/me"), ("GET", "/users/alice"),
                              ("GET", "/users/1"), ("POST", "/chats/initiate"), ("GET", "/chats"), ("POST", "/chats"),
                              ("GET", "/chats/1"), ("GET", "/chats/1/messages"), ("POST", "/chats/1/messages"),
                              ("POST", "/upload"), ("POST", "/send"), ("GET", "/history/bob")] {
            var request = try Request(method: method, uri: uri)
            #expect(throws: Never.self, "\(method) \(uri)") { try api.resolve(&request) }
        }
        var wrongMethod = try Request(method: "GET", uri: "/login")
        #expect(throws: HTTPError(.methodNotAllowed, "GET is not allowed on /login")) { try api.resolve(&wrongMethod) }
        var deleteChat = try Request(method: "DELETE", uri: "/chats/1")
        #expect(throws: HTTPError(.methodNotAllowed, "DELETE is not allowed on /chats/1")) { try api.resolve(&deleteChat) }
        var unknown = try Request(method: "GET", uri: "/admin")
        #expect(throws: HTTPError(.notFound, "no such endpoint: GET /admin")) { try api.resolve(&unknown) }
    }
}

@Suite struct RequestTests {
    @Test func splitsPathAndQuery() throws {
        let request = try Request(method: "get", uri: "/users?username=a%20b+c&x=1&x=2&flag&empty=")
        #expect(request.method == "GET")
        #expect(request.path == "/users")
        #expect(request.segments == ["users"])
        #expect(request.query == ["username": "a b c", "x": "1", "flag": "", "empty": ""])
    }

    @Test func plusIsASpaceOnlyInTheQuery() throws {
        let request = try Request(method: "GET", uri: "/a+b?q=a+b%2B")
        #expect(request.segments == ["a+b"])
        #expect(request.query["q"] == "a b+")
    }

    @Test func decodesUTF8Escapes() throws {
        #expect(try Request(method: "GET", uri: "/users/%C3%A9").segments == ["users", "é"])
    }

    @Test(arguments: ["/users/%zz", "/users/%4", "/users/%", "/users/%FF", "/users/%C3", "/users?q=%zz", "/users?%=1", "/x?q=%C0%AF"])
    func malformedEscapesAre400(_ uri: String) {
        #expect(throws: HTTPError.self) { try Request(method: "GET", uri: uri) }
        do {
            _ = try Request(method: "GET", uri: uri)
        } catch {
            #expect(error.status == .badRequest)
        }
    }

    @Test func headerNamesAreLowerCased() throws {
        let request = try Request(method: "GET", uri: "/", headers: ["Content-Type": "a/b", "AUTHORIZATION": "Bearer x"])
        #expect(request.headers == ["content-type": "a/b", "authorization": "Bearer x"])
    }

    @Test func bodyBytesReadsEverythingWithinTheLimit() throws {
        let payload = (0..<50_000).map { UInt8(truncatingIfNeeded: $0) }
        var request = try Request(method: "POST", uri: "/", body: BytesBody(payload, chunkLimit: 333))
        #expect(try request.bodyBytes(limit: 50_000) == payload)
    }

    @Test func bodyBytesRefusesMoreThanTheLimit() throws {
        var streamed = try Request(method: "POST", uri: "/", body: BytesBody([UInt8](repeating: 1, count: 101)))
        #expect(throws: HTTPError(.contentTooLarge, "request body exceeds 100 bytes")) { try streamed.bodyBytes(limit: 100) }
        var declared = try Request(method: "POST", uri: "/", headers: ["Content-Length": "101"], body: BytesBody([]))
        #expect(throws: HTTPError(.contentTooLarge, "request body exceeds 100 bytes")) { try declared.bodyBytes(limit: 100) }
    }
}
