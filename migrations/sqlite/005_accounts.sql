-- Accounts that belong to someone (issue 16): Unicode usernames unique by case folding,
-- optional passwords, sessions that tokens name and that can be revoked, and the token
-- buckets of the rate limits, shared by both processes.

-- What uniqueness and look-ups compare: the NFC form of the name's Unicode case folding,
-- computed by the apps (`Username.key(for:)`; SQLite knows no Unicode case folding). Every
-- name before this migration is ASCII ([A-Za-z0-9_.-]), whose folding is lower(). The
-- trigger keeps that true for a row inserted without a key (tests, hand-made rows).
ALTER TABLE users ADD COLUMN username_key TEXT;
UPDATE users SET username_key = lower(username);
CREATE UNIQUE INDEX users_username_key ON users(username_key);
CREATE TRIGGER users_username_key_default AFTER INSERT ON users WHEN NEW.username_key IS NULL
BEGIN
    UPDATE users SET username_key = lower(NEW.username) WHERE id = NEW.id;
END;

-- An Argon2id hash in the PHC string form ($argon2id$v=19$m=19456,t=2,p=1$salt$hash), or
-- NULL: a user without a password logs in with {username} alone, as in the seeds.
ALTER TABLE users ADD COLUMN password_hash TEXT;

-- One row per login. A token names its session (claim `sid`); a revoked session's tokens are
-- refused by both processes. `revoked_seq` orders revocations (one counter, assigned inside
-- the revoking transaction), so each process's watcher reads only the new ones.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    last_used_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    -- Seconds since 1970: when its tokens expire; a watcher forgets a revoked session then.
    expires_at   INTEGER NOT NULL,
    revoked_at   TEXT,
    revoked_seq  INTEGER,
    CHECK ((revoked_at IS NULL) = (revoked_seq IS NULL))
);
CREATE INDEX sessions_user ON sessions(user_id, id);
CREATE INDEX sessions_revoked ON sessions(revoked_seq) WHERE revoked_seq IS NOT NULL;

-- Token buckets: `name` is the limit (login_address, login_user, send, upload, search),
-- `key` whose bucket it is (a user id, a client address, a username key). `tokens` as of
-- `updated_at` (seconds since 1970, fractional); refilled on read.
CREATE TABLE rate_buckets (
    name       TEXT NOT NULL,
    key        TEXT NOT NULL,
    tokens     REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (name, key)
) WITHOUT ROWID;
CREATE INDEX rate_buckets_updated ON rate_buckets(updated_at);
