/// The authenticated user of a request, as its token names them.
struct Caller: Sendable, Equatable {
    let id: Int64
    let username: String
}
