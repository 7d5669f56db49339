/// Handles one request. `inout` because reading the body consumes it.
public typealias Handler = @Sendable (inout Request, Context) throws -> Response

/// Matches method and path to a handler: literal segments and `:name` captures.
///
/// A path that matches no route is a 404; one that matches only with another method, a 405.
public struct Router: Sendable {
    private struct Route: Sendable {
        let method: String
        /// The path as added (`/chats/:id/messages`): the `route` label of metrics and logs.
        let path: String
        let pattern: [Substring]
        let handler: Handler
    }

    private var routes: [Route] = []

    public init() {}

    public mutating func add(_ method: String, _ path: String, _ handler: @escaping Handler) {
        routes.append(Route(method: method, path: path, pattern: path.split(separator: "/"), handler: handler))
    }

    /// The handler for `request`, with its parameters and `route` filled in.
    public func resolve(_ request: inout Request) throws(HTTPError) -> Handler {
        var pathMatched = false
        for route in routes {
            guard let parameters = match(route.pattern, request.segments) else { continue }
            pathMatched = true
            if route.method == request.method || (request.method == "HEAD" && route.method == "GET") {
                // Every endpoint takes `?v=`; a value that is not a protocol is refused before
                // anything runs.
                _ = try request.version()
                request.parameters = parameters
                request.route = route.path
                return route.handler
            }
        }
        if pathMatched { throw HTTPError(.methodNotAllowed, "\(request.method) is not allowed on \(request.path)") }
        throw HTTPError(.notFound, "no such endpoint: \(request.method) \(request.path)")
    }

    private func match(_ pattern: [Substring], _ segments: [String]) -> [String: String]? {
        guard pattern.count == segments.count else { return nil }
        var parameters: [String: String] = [:]
        for (expected, actual) in zip(pattern, segments) {
            if expected.hasPrefix(":") {
                parameters[String(expected.dropFirst())] = actual
            } else if expected != actual {
                return nil
            }
        }
        return parameters
    }
}
