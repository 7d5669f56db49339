-- The whole messenger schema. Times are RFC 3339 UTC text ('2026-02-19T12:00:00Z'), written
-- by SQLite itself so that both processes agree on the clock and format.

CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    username     TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    display_name TEXT,
    bio          TEXT,
    image_id     INTEGER REFERENCES files(id) ON DELETE SET NULL,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    uploader_id INTEGER NOT NULL REFERENCES users(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('picture', 'video', 'audio', 'file')),
    stored_name TEXT    NOT NULL UNIQUE,
    filename    TEXT    NOT NULL,
    mime_type   TEXT,
    size_bytes  INTEGER NOT NULL CHECK (size_bytes >= 0),
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX files_uploader ON files(uploader_id);

CREATE TABLE chats (
    id         INTEGER PRIMARY KEY,
    chat_type  TEXT    NOT NULL CHECK (chat_type IN ('direct', 'group')),
    name       TEXT,
    creator_id INTEGER NOT NULL REFERENCES users(id),
    -- A direct chat's two members, ordered (low <= high; equal for a chat with yourself).
    -- The unique index below makes a direct chat unique per pair in the database itself,
    -- so concurrent initiates can never create two.
    direct_low  INTEGER REFERENCES users(id),
    direct_high INTEGER REFERENCES users(id),
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    CHECK ((chat_type = 'direct') = (direct_low IS NOT NULL AND direct_high IS NOT NULL)),
    CHECK (direct_low <= direct_high)
);
CREATE UNIQUE INDEX chats_direct_pair ON chats(direct_low, direct_high) WHERE chat_type = 'direct';

CREATE TABLE chat_members (
    chat_id   INTEGER NOT NULL REFERENCES chats(id),
    user_id   INTEGER NOT NULL REFERENCES users(id),
    joined_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;
CREATE INDEX chat_members_user ON chat_members(user_id, chat_id);

-- AUTOINCREMENT: ids are never reused, so "every message after id N" is a complete answer
-- for catching up (the relay and reconnecting clients rely on it).
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id    INTEGER NOT NULL REFERENCES chats(id),
    sender_id  INTEGER NOT NULL REFERENCES users(id),
    content    TEXT,
    nonce      TEXT,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX messages_chat ON messages(chat_id, id);
CREATE UNIQUE INDEX messages_sender_nonce ON messages(sender_id, nonce) WHERE nonce IS NOT NULL;

CREATE TABLE message_files (
    message_id INTEGER NOT NULL REFERENCES messages(id),
    position   INTEGER NOT NULL,
    file_id    INTEGER NOT NULL REFERENCES files(id),
    PRIMARY KEY (message_id, position)
) WITHOUT ROWID;
CREATE INDEX message_files_file ON message_files(file_id);
