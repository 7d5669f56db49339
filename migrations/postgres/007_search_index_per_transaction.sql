-- PostgreSQL dialect of migrations/007_search_index_per_transaction.sql. A send is indexed
-- for search by the Store at the end of its transaction, once for the whole transaction, not
-- by a trigger per row.
--
-- On SQLite this fixed an FTS5 cost (a segment written per statement savepoint, so 50
-- one-message segments per group commit) that PostgreSQL does not have: a GIN index takes new
-- entries into its pending list either way. The change is made here all the same, so that the
-- schema means the same on both backends at every version: after 007, a send is indexed by
-- the Store's `indexForSearch` (one statement for the transaction's messages, the last of the
-- transaction), not by the database. One Store contract for both, and on PostgreSQL one
-- multi-row insert per group commit instead of a PL/pgSQL call per message. Edits and
-- deletions keep their trigger (messages_fts_update): each is a transaction of its own.
DROP TRIGGER messages_fts_insert ON messages;
DROP FUNCTION messages_fts_insert();

-- What indexForSearch runs on PostgreSQL: `SELECT messenger_index_for_search($1::bigint[])`,
-- the ids of the messages the transaction stored. Messages without content (files only), or
-- deleted since, are not indexed. A message already indexed (edited in the same transaction,
-- which the update trigger indexed) is indexed again with its current text rather than
-- refused. Returns how many it indexed.
CREATE FUNCTION messenger_index_for_search(ids bigint[]) RETURNS bigint
LANGUAGE sql VOLATILE
AS $$
WITH indexed AS (
    INSERT INTO messages_fts (message_id, chat_id, body)
    SELECT id, chat_id, messenger_search_vector(content) FROM messages
    WHERE id = ANY(ids) AND content IS NOT NULL AND deleted_at IS NULL
    ON CONFLICT (message_id) DO UPDATE SET chat_id = excluded.chat_id, body = excluded.body
    RETURNING 1
)
SELECT count(*) FROM indexed
$$;
