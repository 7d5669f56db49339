import Foundation

/// The current time as the `created_at` columns hold it: RFC 3339 UTC to the second
/// (`2026-02-19T12:00:00Z`), the same text as the columns' default,
/// `strftime('%Y-%m-%dT%H:%M:%SZ', 'now')`.
enum StoredTime {
    static func now() -> String {
        string(secondsSince1970: Int64(time(nil)))
    }

    static func string(secondsSince1970: Int64) -> String {
        var seconds = time_t(secondsSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buffer in
            guard strftime(buffer.baseAddress!, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts) > 0 else { return "" }
            return String(cString: buffer.baseAddress!)
        }
    }
}
