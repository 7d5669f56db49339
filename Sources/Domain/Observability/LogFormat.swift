/// `LOG_FORMAT`: how both processes write their log lines to stderr.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-12-03T05:50:00.123Z info FCGIApp: request method=GET …` — for people.
    case text
    /// One JSON object per line (`time`, `level`, `logger`, `message`, then the metadata as
    /// string members) — for log shippers.
    case json
}
