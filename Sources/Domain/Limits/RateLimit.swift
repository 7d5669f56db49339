import Foundation

/// One token bucket's parameters: `RATE_<NAME>=<tokens per second>/<burst>` (DESIGN, "Limits
/// against abuse"); `RATE_<NAME>=0` turns the limit off (`nil` where a limit is optional).
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    /// Tokens added per second.
    public let rate: Double
    /// The bucket's size: how many actions may come at once after a quiet time.
    public let burst: Double

    public init(rate: Double, burst: Double) {
        precondition(rate > 0 && burst >= 1, "a rate limit needs a rate above 0 and a burst of at least 1")
        self.rate = rate
        self.burst = burst
    }

    public var description: String { "\(rate)/\(Int(burst))" }

    /// `"10/30"` → 10 per second, burst 30; `"0"` → nil (off). Throws a message naming the
    /// variable for anything else.
    public static func parse(_ raw: String, name: String) throws(ConfigurationError) -> RateLimit? {
        let text = raw.trimmingCharacters(in: .whitespaces)
        if text == "0" { return nil }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let rate = Double(parts[0]), rate.isFinite, rate > 0, rate <= 1_000_000,
              let burst = Int(parts[1]), burst >= 1, burst <= 1_000_000
        else {
            throw ConfigurationError(
                "\(name) must be <tokens per second>/<burst> (for example 10/30, rate above 0, burst a whole number ≥ 1) or 0 for off, got \(raw)")
        }
        return RateLimit(rate: rate, burst: Double(burst))
    }

    /// The bucket after `elapsed` seconds of refill from `tokens`.
    public func refilled(_ tokens: Double, elapsed: Double) -> Double {
        min(burst, tokens + max(0, elapsed) * rate)
    }

    /// Seconds until a bucket holding `tokens` (< 1) has one token again.
    public func wait(from tokens: Double) -> Double {
        max(0, (1 - tokens) / rate)
    }
}

/// Every limit of the messenger, as configured; `nil` = off.
public struct RateLimits: Sendable, Equatable {
    /// `RATE_LOGIN` (0.1/5): `POST /login` (and password changes) per username; per client
    /// address the same limit times `addressFactor`, so a whole office behind one address
    /// can still log in at nine o'clock.
    public var login: RateLimit?
    /// `RATE_SEND` (10/30): messages per user, REST and both WebSocket send formats together.
    public var send: RateLimit?
    /// `RATE_UPLOAD` (1/10): uploads per user.
    public var upload: RateLimit?
    /// `RATE_SEARCH` (2/10): searches per user.
    public var search: RateLimit?

    /// Per client address, login gets this many times the per-username limit.
    public static let addressFactor = 20.0

    public static let defaults = RateLimits(login: RateLimit(rate: 0.1, burst: 5), send: RateLimit(rate: 10, burst: 30),
                                            upload: RateLimit(rate: 1, burst: 10), search: RateLimit(rate: 2, burst: 10))
    public static let off = RateLimits(login: nil, send: nil, upload: nil, search: nil)

    public init(login: RateLimit?, send: RateLimit?, upload: RateLimit?, search: RateLimit?) {
        self.login = login
        self.send = send
        self.upload = upload
        self.search = search
    }

    /// The per-address login limit derived from `login`.
    public var loginPerAddress: RateLimit? {
        login.map { RateLimit(rate: $0.rate * Self.addressFactor, burst: ($0.burst * Self.addressFactor).rounded()) }
    }
}

/// An action refused by a rate limit; `retryAfter` in seconds.
public struct RateLimited: Error, Equatable, Sendable, CustomStringConvertible {
    public let retryAfter: Double
    public let message: String

    public init(retryAfter: Double, what: String) {
        self.retryAfter = retryAfter
        message = "too many \(what); retry in \(Self.seconds(retryAfter)) s"
    }

    public var description: String { message }

    /// Whole seconds, rounded up, at least 1: the form of HTTP's `Retry-After`.
    public var retryAfterSeconds: Int { max(1, Int(retryAfter.rounded(.up))) }

    /// The wait rounded up to milliseconds, for `retry_after` in a WebSocket ERROR.
    public var retryAfterMilliseconds: Double { (retryAfter * 1000).rounded(.up) / 1000 }

    private static func seconds(_ value: Double) -> String {
        let rounded = (value * 10).rounded(.up) / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}

/// The token buckets, by the name their rows carry in `rate_buckets`.
public enum RateBucket: String, Sendable {
    /// Logins per client address (as nginx passes it).
    case loginAddress = "login_address"
    /// Logins and password changes per username (its case-folded key).
    case loginUser = "login_user"
    /// Messages per user, REST and WebSocket together.
    case send
    case upload
    case search

    /// What the refusal says there were too many of.
    public var noun: String {
        switch self {
        case .loginAddress, .loginUser: "login attempts"
        case .send: "messages"
        case .upload: "uploads"
        case .search: "searches"
        }
    }
}
