import Domain
import Foundation

extension Store {
    static let userColumns = "id, username, display_name, bio, image_id"

    static func user(_ row: Row) -> User {
        User(id: row.int(0), username: row.string(1), displayName: row.optionalString(2),
             bio: row.optionalString(3), imageID: row.optionalInt(4))
    }

    /// The user called `username` (a validated, NFC name; matched by its case-folded key),
    /// created if new.
    public func login(username: String) throws -> User {
        if let existing = try user(username: username) { return existing }
        return try database.write {
            // No conflict target: either unique index (the folded key, or the older NOCASE
            // name) means the user exists.
            try database.statement("INSERT INTO users (username, username_key) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .run([.text(username), .text(Username.key(for: username))])
            guard let user = try user(username: username) else {
                throw StorageError(code: 0, message: "user vanished after insert")
            }
            return user
        }
    }

    public func user(id: Int64) throws -> User? {
        try database.statement("SELECT \(Self.userColumns) FROM users WHERE id = ?")
            .first([.integer(id)], Self.user)
    }

    /// The user whose name folds to the same key as `username` (a validated name).
    public func user(username: String) throws -> User? {
        try database.statement("SELECT \(Self.userColumns) FROM users WHERE username_key = ?")
            .first([.text(Username.key(for: username))], Self.user)
    }

    /// Users whose case-folded name contains the case-folded `fragment`, shortest names first.
    public func searchUsers(matching fragment: String, limit: Int) throws -> [User] {
        let key = Username.key(for: fragment.precomposedStringWithCanonicalMapping)
        return try database.statement(Self.usersMatching).rows([.text(key), .integer(Int64(limit))], Self.user)
    }

    private static let usersMatching: SQL = """
        SELECT \(userColumns) FROM users WHERE \(.contains("username_key", "?"))
        ORDER BY length(username), username LIMIT ?
        """

    /// Applies `update` to the user's profile. A new `image_id` must be one of the user's
    /// own picture uploads.
    public func updateProfile(userID: Int64, _ update: ProfileUpdate) throws -> User {
        try database.write {
            if case .set(let imageID?) = update.imageID {
                let file = try file(id: imageID)
                guard let file, file.uploaderID == userID else {
                    throw MessengerError.invalid("image_id \(imageID) is not one of your uploads")
                }
                guard file.kind == .picture else {
                    throw MessengerError.invalid("image_id \(imageID) is not a picture")
                }
            }
            func flag<T>(_ change: ProfileUpdate.Change<T>) -> SQLValue {
                if case .set = change { return .integer(1) }
                return .integer(0)
            }
            func value(_ change: ProfileUpdate.Change<String>) -> SQLValue {
                if case .set(let text) = change { return SQLValue(text) }
                return .null
            }
            var image = SQLValue.null
            if case .set(let id) = update.imageID { image = SQLValue(id) }
            try database.statement("""
                UPDATE users SET
                    display_name = CASE WHEN ?1 THEN ?2 ELSE display_name END,
                    bio          = CASE WHEN ?3 THEN ?4 ELSE bio END,
                    image_id     = CASE WHEN ?5 THEN ?6 ELSE image_id END
                WHERE id = ?7
                """).run([flag(update.displayName), value(update.displayName),
                          flag(update.bio), value(update.bio),
                          flag(update.imageID), image, .integer(userID)])
            guard let user = try user(id: userID) else { throw MessengerError.notFound("user \(userID) not found") }
            try appendEvent(.user, .contacts(userID))
            return user
        }
    }
}
