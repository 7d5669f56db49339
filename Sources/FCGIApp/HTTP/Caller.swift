/// The authenticated user of a request, as its token names them, and the token's session.
struct Caller: Sendable, Equatable {
    let id: Int64
    let username: String
    let sessionID: Int64
}
