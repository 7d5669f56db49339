import Domain
import Storage

enum SearchRoutes {
    /// `GET /search?q=&chat_id=&before_id=&limit=` → `{messages, next_before_id}`: full-text
    /// search over the chats the caller is a member of now (or one of them), newest first.
    /// Continue with `before_id=next_before_id`; null means there is no more.
    @Sendable static func search(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        // RATE_SEARCH, before any parsing or index work.
        try context.limitRate(.search, key: String(user.id))
        guard let raw = request.query["q"] else { throw HTTPError(.badRequest, "q is required") }
        let query = try SearchQuery(parsing: raw)
        let chatID = try request.queryID("chat_id")
        let beforeID = try request.queryID("before_id")
        var limit = Store.defaultSearchLimit
        if let rawLimit = request.query["limit"] {
            guard let parsed = Int(rawLimit), (1...Store.maxSearchLimit).contains(parsed) else {
                throw HTTPError(.badRequest, "limit must be an integer from 1 to \(Store.maxSearchLimit)")
            }
            limit = parsed
        }
        let page = try context.store.search(query, userID: user.id, chatID: chatID, beforeID: beforeID, limit: limit)
        return .json(page)
    }
}
