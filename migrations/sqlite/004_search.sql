-- Full-text search over messages (GET /search).
--
-- A contentless FTS5 table: it keeps only the index, and a search reads the messages
-- themselves by rowid (= messages.id). Two columns:
--   body  the message's content, tokenized by unicode61 with diacritics folded away, so
--         that `cafe` finds `Café` (composed or decomposed) and case never matters;
--   chat  one token 'c<chat_id>'. A search first reads the words' matches newest first and
--         keeps those in the caller's chats; when those hold few of a common word's matches
--         it asks for `chat : (c1 OR c7 ...) AND ...` instead, which never reads the matches
--         of other chats (Store+Search.swift).
-- Only live messages with content are indexed. The triggers keep the index in the
-- transaction of the write itself: a send indexes, an edit reindexes, a deletion (which
-- clears content and sets deleted_at) takes the message out. A contentless table forgets a
-- row only when given the exact values it was indexed with; the triggers have them in `old`.
-- prefix='2 3': `he*` and `hel*` read a prefix index of their own instead of merging every
-- term that starts with them (a search prefix is at least 2 characters,
-- SearchQuery.minPrefixLength). columnsize=0: no per-row token counts, which only bm25()
-- ranking reads; results are ordered newest first.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body, chat,
    content = '',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3',
    columnsize = 0
);

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.content IS NOT NULL AND new.deleted_at IS NULL
BEGIN
    INSERT INTO messages_fts (rowid, body, chat) VALUES (new.id, new.content, 'c' || new.chat_id);
END;

-- One trigger, two statements in this order: forgetting the old text after indexing the new
-- would also forget the new entries of every word the two share.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, deleted_at, chat_id ON messages
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body, chat)
    SELECT 'delete', old.id, old.content, 'c' || old.chat_id WHERE old.content IS NOT NULL AND old.deleted_at IS NULL;
    INSERT INTO messages_fts (rowid, body, chat)
    SELECT new.id, new.content, 'c' || new.chat_id WHERE new.content IS NOT NULL AND new.deleted_at IS NULL;
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.content IS NOT NULL AND old.deleted_at IS NULL
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body, chat) VALUES ('delete', old.id, old.content, 'c' || old.chat_id);
END;

-- Every message there already is.
INSERT INTO messages_fts (rowid, body, chat)
SELECT id, content, 'c' || chat_id FROM messages WHERE content IS NOT NULL AND deleted_at IS NULL;

-- Found by the query plan test (QueryPlanTests): with foreign keys on, a statement that may
-- remove a message (the upsert of a send) looks for replies to it, `reply_to_id = ?`, which
-- without an index is a full scan of messages. Only replies are in it.
CREATE INDEX messages_reply_to ON messages(reply_to_id) WHERE reply_to_id IS NOT NULL;
