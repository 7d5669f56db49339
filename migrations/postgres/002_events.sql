-- PostgreSQL dialect of migrations/002_events.sql. Protocol 2: one ordered event stream, and
-- the columns the full shapes read.

-- Every change a user may see, in commit order. `seq` comes from one strictly increasing
-- counter, and each row is written in the same transaction as the change it describes.
--
-- Who sees an event (`audience`):
--   'chat'     members of chat_id who joined at or before it (chat_members.joined_seq <= seq);
--   'user'     user_id alone (every device);
--   'contacts' user_id and everyone who shares a chat with them.
-- An event about an entity (a message, a chat, a user) names it and is rendered from its
-- current row when delivered; an event that is a small fact of its own (a removal, a
-- reaction, a read marker) carries its `d` in `data`: TEXT, not jsonb, because it is handed
-- to clients byte for byte as the Store wrote it (jsonb would reorder and respace it).
--
-- The counter (README.md, "The event order"): `seq` is not a sequence. A sequence hands out
-- numbers at insert time, and a transaction that drew N+1 can commit before the one that drew
-- N: a reader would see N+1, move its cursor past N, and never see N. Here the events' BEFORE
-- INSERT trigger takes the write lock (migration 001) and then increments the one row of
-- `event_counter` inside the writing transaction; the number is the counter's new value. The
-- lock is held to the end of the transaction, so the writer that takes N+1 starts only after
-- N's writer committed (or rolled back, which rolls the counter back too: no gap, as with
-- SQLite's AUTOINCREMENT, whose sqlite_sequence update is part of the transaction). A reader
-- that sees N+1 therefore sees N. `event_counter.seq` is the head of the stream as committed
-- (latestSeq: what sqlite_sequence gives on SQLite), never lowered by pruning, and read in the
-- same snapshot as the events.
CREATE TABLE event_counter (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL CHECK (seq >= 0)
);
INSERT INTO event_counter (id, seq) VALUES (1, 0);

CREATE TABLE events (
    seq        BIGINT  PRIMARY KEY,
    op         TEXT    NOT NULL,
    audience   TEXT    NOT NULL CHECK (audience IN ('chat', 'user', 'contacts')),
    chat_id    BIGINT,
    user_id    BIGINT,
    message_id BIGINT,
    data       TEXT,
    created_at TEXT    NOT NULL DEFAULT messenger_time_now(),
    CHECK (audience <> 'chat' OR chat_id IS NOT NULL),
    CHECK (audience = 'chat' OR user_id IS NOT NULL)
);
CREATE INDEX events_chat ON events(chat_id, seq) WHERE audience = 'chat';
CREATE INDEX events_user ON events(user_id, seq) WHERE audience <> 'chat';
CREATE INDEX events_created ON events(created_at);

-- Assigns `seq`. An explicit seq (a copy of another database's rows) is kept and moves the
-- counter up to it, as an explicit rowid moves SQLite's sqlite_sequence; it is the copier's
-- business to insert in order.
CREATE FUNCTION events_assign_seq() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM messenger_write_lock();
    IF NEW.seq IS NULL THEN
        UPDATE event_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO NEW.seq;
    ELSE
        UPDATE event_counter SET seq = greatest(seq, NEW.seq) WHERE id = 1;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER events_assign_seq BEFORE INSERT ON events
FOR EACH ROW EXECUTE FUNCTION events_assign_seq();

-- How far pruning has gone: a client resuming from a seq below this may have missed events
-- and must resynchronise.
CREATE TABLE event_log (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    pruned_through BIGINT NOT NULL
);
INSERT INTO event_log (id, pruned_through) VALUES (1, 0);

-- The seq of the event that made the user a member: they see the chat's events from it on.
-- Members from before the event stream existed see everything still retained.
ALTER TABLE chat_members ADD COLUMN joined_seq   BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_members ADD COLUMN role         TEXT   NOT NULL DEFAULT 'member'
    CHECK (role IN ('owner', 'admin', 'member'));
ALTER TABLE chat_members ADD COLUMN last_read_id BIGINT NOT NULL DEFAULT 0;
UPDATE chat_members SET role = 'owner'
WHERE user_id = (SELECT creator_id FROM chats WHERE chats.id = chat_members.chat_id AND chat_type = 'group');

ALTER TABLE messages ADD COLUMN reply_to_id BIGINT REFERENCES messages(id);
ALTER TABLE messages ADD COLUMN edited_at   TEXT;
ALTER TABLE messages ADD COLUMN deleted_at  TEXT;

-- Who reacted with what, in the order they reacted.
CREATE TABLE reactions (
    message_id BIGINT  NOT NULL REFERENCES messages(id),
    emoji      TEXT    NOT NULL,
    user_id    BIGINT  NOT NULL REFERENCES users(id),
    seq        BIGINT  NOT NULL,  -- of its REACTION event: the order they reacted in
    PRIMARY KEY (message_id, emoji, user_id)
);

-- Who blocked whom: a blocked user cannot send into the blocker's direct chat, or start one.
CREATE TABLE blocks (
    blocker_id BIGINT  NOT NULL REFERENCES users(id),
    blocked_id BIGINT  NOT NULL REFERENCES users(id),
    created_at TEXT    NOT NULL DEFAULT messenger_time_now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);

-- Who is online, as the relay last knew it, and when each user was last seen: written on
-- every first connect and last disconnect, so that `last_seen` survives a relay restart
-- (which marks everyone offline as it starts).
-- `online` stays an integer 0/1, not boolean: the Store's queries compare it with 0 and 1
-- (`online = 1`, `coalesce(p.online, 0)`, `SET online = 0`), which work unchanged on both
-- backends only so; a boolean would need each rewritten and would come back from libpq as
-- 't'/'f'. (Where a query stores a condition, it writes CASE WHEN ... THEN 1 ELSE 0 END.)
CREATE TABLE presence (
    user_id   BIGINT  PRIMARY KEY REFERENCES users(id),
    online    BIGINT  NOT NULL CHECK (online IN (0, 1)),
    last_seen TEXT    NOT NULL
);
