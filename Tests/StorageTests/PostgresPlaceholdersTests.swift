@testable import Storage
import Testing

/// SQLite's parameters, as PostgreSQL numbers them.
@Suite struct PostgresPlaceholdersTests {
    @Test func bareParametersAreNumberedInOrder() {
        #expect(PostgresPlaceholders.translate("INSERT INTO t (a, b, c) VALUES (?, ?, ?)")
                == "INSERT INTO t (a, b, c) VALUES ($1, $2, $3)")
    }

    @Test func numberedParametersKeepTheirNumbersAndABareOneFollowsTheLargest() {
        #expect(PostgresPlaceholders.translate("UPDATE m SET last_read_id = ?1 WHERE chat_id = ?2 AND user_id = ?3 OR ?1 > 0")
                == "UPDATE m SET last_read_id = $1 WHERE chat_id = $2 AND user_id = $3 OR $1 > 0")
        // SQLite's rule: a bare `?` is one more than the largest number assigned so far.
        #expect(PostgresPlaceholders.translate("SELECT ?2, ?, ?1, ?") == "SELECT $2, $3, $1, $4")
    }

    @Test func quotedTextAndCommentsAreLeftAlone() {
        let sql = """
            SELECT 'what?', 'it''s ?', "odd?name" -- why ?
            FROM t /* is ? here */ WHERE a = ?
            """
        #expect(PostgresPlaceholders.translate(sql) == """
            SELECT 'what?', 'it''s ?', "odd?name" -- why ?
            FROM t /* is ? here */ WHERE a = $1
            """)
    }

    @Test func sqlWithoutQuestionMarksIsUnchanged() {
        let sql = "SELECT $1::bigint, '€' WHERE x = $2"
        #expect(PostgresPlaceholders.translate(sql) == sql)
        #expect(PostgresPlaceholders.translate("SELECT 'ünïcode ?' , ?") == "SELECT 'ünïcode ?' , $1")
    }

    @Test func unterminatedQuotesAndCommentsEndTheText() {
        #expect(PostgresPlaceholders.translate("SELECT 'open ?") == "SELECT 'open ?")
        #expect(PostgresPlaceholders.translate("SELECT ? /* open ?") == "SELECT $1 /* open ?")
    }
}
