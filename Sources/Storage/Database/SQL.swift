/// One statement in both dialects, written once: the text is shared, and each place where
/// SQLite and PostgreSQL differ is a named `Fragment` interpolated into it.
///
///     static let known: SQL = "SELECT count(*) FROM users WHERE id IN \(.ids("?"))"
///
/// Plain strings interpolated (column lists, a caller's condition) go into both texts as they
/// are. Parameters are SQLite's (`?`, `?N`) in both; PostgreSQL's connection numbers them.
public struct SQL: ExpressibleByStringInterpolation, Sendable {
    public let sqlite: String
    public let postgres: String

    public init(stringLiteral value: String) {
        sqlite = value
        postgres = value
    }

    public init(stringInterpolation: StringInterpolation) {
        sqlite = stringInterpolation.sqlite
        postgres = stringInterpolation.postgres
    }

    /// Different texts altogether, for the statements that share too little to interpolate.
    public init(sqlite: String, postgres: String) {
        self.sqlite = sqlite
        self.postgres = postgres
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sqlite = ""
        var postgres = ""

        public init(literalCapacity: Int, interpolationCount: Int) {
            sqlite.reserveCapacity(literalCapacity + 32 * interpolationCount)
            postgres.reserveCapacity(literalCapacity + 64 * interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sqlite += literal
            postgres += literal
        }

        public mutating func appendInterpolation(_ fragment: Fragment) {
            sqlite += fragment.sqlite
            postgres += fragment.postgres
        }

        public mutating func appendInterpolation(_ sql: SQL) {
            sqlite += sql.sqlite
            postgres += sql.postgres
        }

        public mutating func appendInterpolation(_ text: String) {
            sqlite += text
            postgres += text
        }
    }

    /// The pieces of SQL the two dialects spell differently.
    public struct Fragment: Sendable {
        let sqlite: String
        let postgres: String

        /// The ids of a `SQLValue.idList` parameter (a JSON array) as a table of two columns:
        /// `value`, the id, and `key`, its position. Give it an alias: `FROM \(.idRows("?1")) u`.
        public static func idRows(_ parameter: String) -> Fragment {
            Fragment(sqlite: "json_each(\(parameter))",
                     postgres: "(SELECT CAST(j.value AS BIGINT) AS value, j.key FROM "
                         + "json_array_elements_text(CAST(\(parameter) AS json)) WITH ORDINALITY AS j(value, key))")
        }

        /// The ids of a `SQLValue.idList` parameter as a subquery, for `id IN \(.ids("?"))`.
        public static func ids(_ parameter: String) -> Fragment {
            Fragment(sqlite: "(SELECT value FROM json_each(\(parameter)))",
                     postgres: "(SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(\(parameter) AS json)) AS value)")
        }

        /// An aggregate of the integers of `column` as one comma-separated text (what
        /// `Row.integers` reads), in the order of `orderedBy` (a column of the same rows) when
        /// given. SQLite's `group_concat` takes the order its input rows come in, so the
        /// query orders them in a subquery; PostgreSQL's `string_agg` is told.
        public static func joinedIDs(_ column: String, orderedBy order: String? = nil) -> Fragment {
            Fragment(sqlite: "group_concat(\(column))",
                     postgres: "string_agg(CAST(\(column) AS TEXT), ','" + (order.map { " ORDER BY \($0)" } ?? "") + ")")
        }

        /// The larger of two values (SQLite's two-argument `max`).
        public static func greatest(_ first: String, _ second: String) -> Fragment {
            Fragment(sqlite: "max(\(first), \(second))", postgres: "greatest(\(first), \(second))")
        }

        /// Whether `text` contains `part`, byte for byte.
        public static func contains(_ text: String, _ part: String) -> Fragment {
            Fragment(sqlite: "instr(\(text), \(part)) > 0", postgres: "strpos(\(text), \(part)) > 0")
        }
    }
}
