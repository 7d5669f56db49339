import CArgon2

/// Argon2id password hashes in the PHC string form (`$argon2id$v=19$m=19456,t=2,p=1$…`),
/// through the reference implementation (Debian's libargon2).
///
/// Parameters are OWASP's first recommendation for Argon2id: 19 MiB of memory, 2 passes,
/// 1 lane. They are written into every hash, so raising them later still verifies the
/// hashes made with these. Each call takes tens of milliseconds of one core and 19 MiB:
/// callers bound how many run at once (FCGIApp's `PasswordSlots`), and never call it on an
/// event loop.
public struct PasswordHasher: Sendable {
    public static let memoryKiB: UInt32 = 19 * 1024
    public static let iterations: UInt32 = 2
    public static let parallelism: UInt32 = 1
    public static let saltBytes = 16
    public static let hashBytes = 32

    /// A hash of a random password nobody knows, verified against when the user does not
    /// exist or has no password, so that those cases cost the same time as a wrong password.
    public let dummyHash: String

    public init() throws(PasswordError) {
        var random = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }
        dummyHash = try Self.hash(bytes: secret)
    }

    /// A new hash of `password`, with a fresh random salt.
    public func hash(_ password: String) throws(PasswordError) -> String {
        try Self.hash(bytes: Array(password.utf8))
    }

    /// Whether `password` matches `encoded`; libargon2 recomputes the hash with the
    /// parameters and salt in `encoded` and compares in constant time. A malformed `encoded`
    /// is a mismatch.
    public func verify(_ password: String, against encoded: String) -> Bool {
        let bytes = Array(password.utf8)
        return bytes.withUnsafeBytes { buffer in
            argon2id_verify(encoded, buffer.baseAddress, buffer.count) == Int32(ARGON2_OK.rawValue)
        }
    }

    /// Burns the time of one verification and fails: for an unknown user or one without a
    /// password.
    public func verifyDummy(_ password: String) -> Bool {
        _ = verify(password, against: dummyHash)
        return false
    }

    private static func hash(bytes: [UInt8]) throws(PasswordError) -> String {
        var random = SystemRandomNumberGenerator()
        let salt = (0..<saltBytes).map { _ in UInt8.random(in: 0...255, using: &random) }
        let length = argon2_encodedlen(iterations, memoryKiB, parallelism, UInt32(saltBytes), UInt32(hashBytes),
                                       Argon2_id)
        var encoded = [CChar](repeating: 0, count: length)
        let code = bytes.withUnsafeBytes { password in
            salt.withUnsafeBytes { salt in
                argon2id_hash_encoded(iterations, memoryKiB, parallelism, password.baseAddress, password.count,
                                      salt.baseAddress, salt.count, hashBytes, &encoded, length)
            }
        }
        guard code == Int32(ARGON2_OK.rawValue) else {
            throw PasswordError("argon2id failed: \(String(cString: argon2_error_message(code)))")
        }
        return String(decoding: encoded.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Hashing failed (out of memory, most likely); an internal error, never the client's.
public struct PasswordError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The rules for a new password: 8–128 characters (DESIGN).
public enum Password {
    public static let minLength = 8
    public static let maxLength = 128

    public static func validate(_ password: String) throws(ValidationError) -> String {
        let count = password.count
        guard count >= minLength else { throw ValidationError("password must be at least \(minLength) characters") }
        guard count <= maxLength, password.utf8.count <= maxLength * 4 else {
            throw ValidationError("password must be at most \(maxLength) characters")
        }
        return password
    }
}
