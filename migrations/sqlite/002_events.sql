-- Protocol 2: one ordered event stream, and the columns the full shapes read.

-- Every change a user may see, in commit order. `seq` comes from one strictly increasing
-- counter (AUTOINCREMENT: never reused, even after pruning deletes the newest rows), and each
-- row is written in the same transaction as the change it describes.
--
-- Who sees an event (`audience`):
--   'chat'     members of chat_id who joined at or before it (chat_members.joined_seq <= seq);
--   'user'     user_id alone (every device);
--   'contacts' user_id and everyone who shares a chat with them.
-- An event about an entity (a message, a chat, a user) names it and is rendered from its
-- current row when delivered; an event that is a small fact of its own (a removal, a
-- reaction, a read marker) carries its `d` in `data`.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    op         TEXT    NOT NULL,
    audience   TEXT    NOT NULL CHECK (audience IN ('chat', 'user', 'contacts')),
    chat_id    INTEGER,
    user_id    INTEGER,
    message_id INTEGER,
    data       TEXT,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    CHECK (audience <> 'chat' OR chat_id IS NOT NULL),
    CHECK (audience = 'chat' OR user_id IS NOT NULL)
);
CREATE INDEX events_chat ON events(chat_id, seq) WHERE audience = 'chat';
CREATE INDEX events_user ON events(user_id, seq) WHERE audience <> 'chat';
CREATE INDEX events_created ON events(created_at);

-- How far pruning has gone: a client resuming from a seq below this may have missed events
-- and must resynchronise.
CREATE TABLE event_log (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL
);
INSERT INTO event_log (id, pruned_through) VALUES (1, 0);

-- The seq of the event that made the user a member: they see the chat's events from it on.
-- Members from before the event stream existed see everything still retained.
ALTER TABLE chat_members ADD COLUMN joined_seq   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chat_members ADD COLUMN role         TEXT    NOT NULL DEFAULT 'member'
    CHECK (role IN ('owner', 'admin', 'member'));
ALTER TABLE chat_members ADD COLUMN last_read_id INTEGER NOT NULL DEFAULT 0;
UPDATE chat_members SET role = 'owner'
WHERE user_id = (SELECT creator_id FROM chats WHERE chats.id = chat_members.chat_id AND chat_type = 'group');

ALTER TABLE messages ADD COLUMN reply_to_id INTEGER REFERENCES messages(id);
ALTER TABLE messages ADD COLUMN edited_at   TEXT;
ALTER TABLE messages ADD COLUMN deleted_at  TEXT;

-- Who reacted with what, in the order they reacted.
CREATE TABLE reactions (
    message_id INTEGER NOT NULL REFERENCES messages(id),
    emoji      TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    seq        INTEGER NOT NULL,  -- of its REACTION event: the order they reacted in
    PRIMARY KEY (message_id, emoji, user_id)
) WITHOUT ROWID;

-- Who blocked whom: a blocked user cannot send into the blocker's direct chat, or start one.
CREATE TABLE blocks (
    blocker_id INTEGER NOT NULL REFERENCES users(id),
    blocked_id INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
) WITHOUT ROWID;

-- Who is online, as the relay last knew it, and when each user was last seen: written on
-- every first connect and last disconnect, so that `last_seen` survives a relay restart
-- (which marks everyone offline as it starts).
CREATE TABLE presence (
    user_id   INTEGER PRIMARY KEY REFERENCES users(id),
    online    INTEGER NOT NULL CHECK (online IN (0, 1)),
    last_seen TEXT    NOT NULL
);
