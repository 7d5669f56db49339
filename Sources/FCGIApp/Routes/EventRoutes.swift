import Domain
import Storage

enum EventRoutes {
    static let defaultLimit = 100
    static let maxLimit = 1000

    /// `GET /events?since=N&limit=` → `{events, seq}`: the stream for pull clients, the same
    /// frames a protocol-2 socket gets. Continue with `since=seq`; a short page means the
    /// caller is at the head. A `since` older than what was kept answers a RESYNC frame.
    @Sendable static func list(_ request: inout Request, _ context: Context) throws -> Response {
        let user = try request.authenticate(context)
        guard let raw = request.query["since"] else { throw HTTPError(.badRequest, "since is required") }
        let since: Int64
        do {
            since = try StreamPosition.parse(raw)
        } catch {
            throw HTTPError(.badRequest, error.message)
        }
        var limit = defaultLimit
        if let rawLimit = request.query["limit"] {
            guard let parsed = Int(rawLimit), (1...maxLimit).contains(parsed) else {
                throw HTTPError(.badRequest, "limit must be an integer from 1 to \(maxLimit)")
            }
            limit = parsed
        }
        let store = context.store
        let page = try store.database.read { () throws -> EventsPage in
            let head = try store.latestSeq()
            if since < (try store.prunedThrough()) || since > head {
                return EventsPage(frames: [JSONWriter.encode(Resync(seq: head))], seq: head)
            }
            var frames: [[UInt8]] = []
            var from = since
            while from < head {
                let to = min(head, from + Store.eventWindow)
                for event in try store.events(visibleTo: user.id, after: from, through: to) {
                    frames.append(try event.frame { try store.chatView($0, for: user.id) })
                    if frames.count == limit { return EventsPage(frames: frames, seq: event.seq) }
                }
                from = to
            }
            return EventsPage(frames: frames, seq: head)
        }
        return .json(page)
    }
}

/// The answer to `GET /events`.
private struct EventsPage: JSONEncodable {
    let frames: [[UInt8]]
    let seq: Int64

    func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.key("events")
            json.array(frames.map(RawJSON.init))
            json.field("seq", seq)
        }
    }
}

/// `{"op":"RESYNC","d":{"seq":N}}`, as the relay sends it.
private struct Resync: JSONEncodable {
    let seq: Int64

    func encode(to writer: inout JSONWriter) {
        writer.object { json in
            json.field("op", "RESYNC")
            json.key("d")
            json.object { $0.field("seq", seq) }
        }
    }
}
