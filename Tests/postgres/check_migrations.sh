#!/usr/bin/env bash
# Applies migrations/postgres/*.sql to a throwaway PostgreSQL cluster (scripts/lib/postgres.sh),
# in order, each in its own transaction and recorded in schema_migrations as the Migrator does,
# and after each one checks what it promises: constraints refuse what they must (the unique
# direct chat, nonce idempotency, foreign keys, checks), backfills fill what they must, the
# triggers keep chats' activity and the search index, the search finds what SQLite's finds.
# Then the event order under concurrency, with several psql sessions at once: a writer waits
# for the one before it, and no reader sees seq N+1 (or message id N+1) before N commits. Also
# that migration 001 refuses a database with the wrong encoding or character type, and that
# the words of the search index are SQLite's (when python3 has sqlite3 with FTS5).
#
# Needs no Swift and no build. Installs Debian's postgresql when missing (as root). Exits
# non-zero on the first failure; stops the cluster and removes its directory in every case.
# Takes about 15 s. Usage: Tests/postgres/check_migrations.sh [-k] (-k: keep the directory)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOG_TAG=check-migrations
# shellcheck source=../../scripts/lib/postgres.sh
source "$REPO/scripts/lib/postgres.sh"

KEEP=0
[[ ${1:-} == -k ]] && KEEP=1

ensure_postgres_packages
# Short, for sun_path: /tmp/mcheck.XXXXXX/.s.PGSQL.5432 is 32 bytes.
DIR="$(mktemp -d /tmp/mcheck.XXXXXX)"
cleanup() {
    local status=$?
    stop_throwaway_postgres "$DIR" || status=1
    if ((KEEP)); then log "kept $DIR"; else rm -rf "$DIR"; fi
    ((status == 0)) && log "PASS" || log "FAIL (exit $status)"
    exit "$status"
}
trap cleanup EXIT
start_throwaway_postgres "$DIR" >/dev/null
URL=$PG_DATABASE_URL

psql_() { env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

# Helpers every check session defines for itself (temporary: they vanish with the session).
HELPERS=$(cat <<'EOF'
CREATE FUNCTION pg_temp.ok(condition boolean, what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF condition IS NOT TRUE THEN RAISE EXCEPTION 'check failed: %', what; END IF;
END $$;
-- Runs `statement` and insists that it fails with SQLSTATE `state` (23505 unique_violation,
-- 23503 foreign_key_violation, 23514 check_violation, 23502 not_null_violation).
CREATE FUNCTION pg_temp.fails(statement text, state text, what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE statement;
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE = state THEN RETURN; END IF;
        RAISE EXCEPTION 'check failed: % (% failed with % %, not %)', what, statement, SQLSTATE, SQLERRM, state;
    END;
    RAISE EXCEPTION 'check failed: % (% did not fail)', what, statement;
END $$;
-- The ids of messages matching a search, newest first (Store.search's first pass). Defined
-- before messages_fts exists: its body is checked when first called.
SET check_function_bodies = off;
CREATE FUNCTION pg_temp.found(terms text[], prefixes boolean[]) RETURNS bigint[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(message_id ORDER BY message_id DESC), '{}') FROM messages_fts
    WHERE body @@ messenger_search_query(terms, prefixes)
$$;
RESET check_function_bodies;
EOF
)

# check NAME: runs stdin (SQL) in one session after the helpers; fails the script if it fails.
check() {
    local name=$1 out
    if ! out=$( { printf '%s\n' "$HELPERS"; cat; } | psql_ "$URL" 2>&1); then
        printf '%s\n' "$out" >&2
        die "checks after $name failed"
    fi
    log "checks after $name: ok"
}

psql_ "$URL" -c "CREATE TABLE schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT   NOT NULL,
    applied_at TEXT   NOT NULL DEFAULT to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"

# apply FILE: one migration in its own transaction, recorded as the Migrator records it.
apply() {
    local file=$1 name version
    name="$(basename "$file")"
    version=$((10#${name%%_*}))
    { printf 'BEGIN;\n\\i %s\n' "$file"
      printf "INSERT INTO schema_migrations (version, name) VALUES (%d, '%s');\nCOMMIT;\n" "$version" "$name"
    } | psql_ "$URL" >/dev/null || die "migration $name failed"
    log "applied $name"
}

MIGRATIONS=("$REPO"/migrations/postgres/[0-9]*.sql)
# Version for version with migrations/sqlite.
sqlite_names=$(cd "$REPO/migrations/sqlite" && ls [0-9]*.sql)
postgres_names=$(cd "$REPO/migrations/postgres" && ls [0-9]*.sql)
[[ $sqlite_names == "$postgres_names" ]] \
    || die "migrations/postgres does not have the same files as migrations/sqlite: $(diff <(echo "$sqlite_names") <(echo "$postgres_names") | tr '\n' ' ')"

# --- 001 refuses a database it was not written for ---------------------------------------
psql_ "$PG_ADMIN_URL" -c "CREATE DATABASE wrong_ctype OWNER messenger TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
wrong_url="${URL/\/messenger\?/\/wrong_ctype?}"
if out=$(psql_ "$wrong_url" -1 -f "${MIGRATIONS[0]}" 2>&1); then
    die "001 accepted a database with LC_CTYPE C"
fi
[[ $out == *"LC_CTYPE"* ]] || die "001 refused LC_CTYPE C with an unclear message: $out"
psql_ "$PG_ADMIN_URL" -c "DROP DATABASE wrong_ctype"
log "001 refuses a database whose character type is C"

for file in "${MIGRATIONS[@]}"; do
    apply "$file"
    case "$(basename "$file")" in
    001_*) check 001 <<'EOF'
INSERT INTO users (username) VALUES ('alice'), ('bob'), ('carol'), ('Ärger');
SELECT pg_temp.ok((SELECT array_agg(id ORDER BY id) FROM users) = '{1,2,3,4}', 'identity ids from 1');
-- NOCASE: ASCII case folded for uniqueness, other scripts not (SQLite's NOCASE).
SELECT pg_temp.fails($$INSERT INTO users (username) VALUES ('ALICE')$$, '23505', 'username unique ignoring ASCII case');
INSERT INTO users (username) VALUES ('ärger');
DELETE FROM users WHERE username = 'ärger';
-- Times: strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), to the character.
SELECT pg_temp.ok(created_at ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', 'created_at is RFC 3339 UTC to the second: ' || created_at)
FROM users;
SELECT pg_temp.ok(abs(extract(epoch FROM (replace(messenger_time_now(), 'Z', '+00')::timestamptz - now()))) < 5,
                  'messenger_time_now() is now, in UTC');
SET TIME ZONE 'America/New_York';
SELECT pg_temp.ok(messenger_time_now() = to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                  'messenger_time_now() is UTC whatever the session time zone');
RESET TIME ZONE;
-- files, and users.image_id's foreign key added after them.
INSERT INTO files (uploader_id, kind, stored_name, filename, size_bytes) VALUES (1, 'picture', 'a.png', 'a.png', 10);
SELECT pg_temp.fails($$INSERT INTO files (uploader_id, kind, stored_name, filename, size_bytes) VALUES (1, 'sofa', 'b', 'b', 1)$$, '23514', 'file kind');
SELECT pg_temp.fails($$INSERT INTO files (uploader_id, kind, stored_name, filename, size_bytes) VALUES (1, 'file', 'b', 'b', -1)$$, '23514', 'file size >= 0');
SELECT pg_temp.fails($$INSERT INTO files (uploader_id, kind, stored_name, filename, size_bytes) VALUES (1, 'file', 'a.png', 'b', 1)$$, '23505', 'stored_name unique');
SELECT pg_temp.fails($$INSERT INTO files (uploader_id, kind, stored_name, filename, size_bytes) VALUES (99, 'file', 'c', 'c', 1)$$, '23503', 'uploader must exist');
SELECT pg_temp.fails($$UPDATE users SET image_id = 99 WHERE id = 1$$, '23503', 'image_id must be a file');
INSERT INTO files (uploader_id, kind, stored_name, filename, size_bytes) VALUES (2, 'picture', 'tmp.png', 'tmp.png', 1);
UPDATE users SET image_id = (SELECT id FROM files WHERE stored_name = 'tmp.png') WHERE id = 2;
DELETE FROM files WHERE stored_name = 'tmp.png';
SELECT pg_temp.ok((SELECT image_id FROM users WHERE id = 2) IS NULL, 'deleting the picture sets image_id NULL');
-- Chats: a direct chat is unique per ordered pair; checks on the pair.
INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('direct', 1, 1, 2);   -- 1
INSERT INTO chats (chat_type, name, creator_id) VALUES ('group', 'g', 1);                         -- 2
INSERT INTO chats (chat_type, name, creator_id) VALUES ('group', 'g', 1);                         -- 3: groups need no pair
INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('direct', 3, 3, 3);   -- 4: a chat with yourself
SELECT pg_temp.fails($$INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('direct', 2, 1, 2)$$, '23505', 'one direct chat per pair');
SELECT pg_temp.fails($$INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('direct', 2, 2, 1)$$, '23514', 'direct_low <= direct_high');
SELECT pg_temp.fails($$INSERT INTO chats (chat_type, creator_id) VALUES ('direct', 2)$$, '23514', 'a direct chat has its pair');
SELECT pg_temp.fails($$INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('group', 2, 1, 3)$$, '23514', 'a group has no pair');
SELECT pg_temp.fails($$INSERT INTO chats (chat_type, creator_id) VALUES ('channel', 2)$$, '23514', 'chat_type');
SELECT pg_temp.fails($$INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('direct', 1, 1, 99)$$, '23503', 'direct_high must be a user');
INSERT INTO chat_members (chat_id, user_id) VALUES (1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (4, 3);
SELECT pg_temp.fails($$INSERT INTO chat_members (chat_id, user_id) VALUES (1, 1)$$, '23505', 'one membership per user and chat');
SELECT pg_temp.fails($$INSERT INTO chat_members (chat_id, user_id) VALUES (1, 99)$$, '23503', 'member must be a user');
SELECT pg_temp.fails($$INSERT INTO chat_members (chat_id, user_id) VALUES (99, 1)$$, '23503', 'member of an existing chat');
-- Messages: the sender + nonce pair is stored once; the Store's upsert finds the conflict.
INSERT INTO messages (chat_id, sender_id, content, nonce) VALUES (1, 1, 'first Café', 'n1');       -- 1
INSERT INTO messages (chat_id, sender_id, content, nonce) VALUES (1, 2, 'second', 'n1');           -- 2: another sender
INSERT INTO messages (chat_id, sender_id, content) VALUES (2, 3, 'group hello'), (1, 1, NULL);     -- 3, 4
SELECT pg_temp.fails($$INSERT INTO messages (chat_id, sender_id, content, nonce) VALUES (1, 1, 'again', 'n1')$$, '23505', 'nonce unique per sender');
WITH stored AS (
    INSERT INTO messages (chat_id, sender_id, content, nonce) VALUES (1, 1, 'again', 'n1')
    ON CONFLICT (sender_id, nonce) WHERE nonce IS NOT NULL DO NOTHING RETURNING id)
SELECT pg_temp.ok((SELECT count(*) FROM stored) = 0, 'ON CONFLICT (sender_id, nonce) WHERE nonce IS NOT NULL DO NOTHING stores nothing');
SELECT pg_temp.ok((SELECT count(*) FROM messages WHERE nonce IS NULL) = 2, 'NULL nonces never conflict');
SELECT pg_temp.fails($$INSERT INTO messages (chat_id, sender_id, content) VALUES (99, 1, 'x')$$, '23503', 'message in an existing chat');
SELECT pg_temp.fails($$INSERT INTO messages (chat_id, sender_id, content) VALUES (1, 99, 'x')$$, '23503', 'message from an existing user');
INSERT INTO message_files (message_id, position, file_id) VALUES (1, 0, 1);
SELECT pg_temp.fails($$INSERT INTO message_files (message_id, position, file_id) VALUES (1, 0, 1)$$, '23505', 'one file per position');
SELECT pg_temp.fails($$INSERT INTO message_files (message_id, position, file_id) VALUES (1, 1, 99)$$, '23503', 'attachment is a file');
-- The skipped numbers of the failed inserts above are gaps, never reuse: ids only grow.
SELECT pg_temp.ok((SELECT array_agg(id ORDER BY id) FROM messages) = '{1,2,3,4}', 'message ids 1-4: ' || (SELECT array_agg(id ORDER BY id) FROM messages)::text);
EOF
        ;;
    002_*) check 002 <<'EOF'
-- The group's creator became its owner (the backfill); everyone else is a member.
SELECT pg_temp.ok((SELECT role FROM chat_members WHERE chat_id = 2 AND user_id = 1) = 'owner', 'group creator backfilled as owner');
SELECT pg_temp.ok((SELECT count(*) FROM chat_members WHERE role = 'owner') = 1, 'only the group creator is an owner');
SELECT pg_temp.ok((SELECT count(*) FROM chat_members WHERE joined_seq = 0 AND last_read_id = 0) = 6, 'defaults of the new columns');
SELECT pg_temp.fails($$UPDATE chat_members SET role = 'king' WHERE chat_id = 2 AND user_id = 2$$, '23514', 'role check');
-- seq from the counter, in order, and the counter is the head.
INSERT INTO events (op, audience, chat_id) VALUES ('CHAT', 'chat', 1), ('CHAT', 'chat', 2), ('CHAT', 'chat', 4);
INSERT INTO events (op, audience, chat_id, message_id) VALUES ('MESSAGE', 'chat', 1, 1), ('MESSAGE', 'chat', 1, 2),
    ('MESSAGE', 'chat', 2, 3), ('MESSAGE', 'chat', 1, 4);
SELECT pg_temp.ok((SELECT array_agg(seq ORDER BY seq) FROM events) = '{1,2,3,4,5,6,7}', 'seqs 1-7');
SELECT pg_temp.ok((SELECT seq FROM event_counter) = 7, 'event_counter is the head');
SELECT pg_temp.fails($$INSERT INTO events (op, audience) VALUES ('X', 'chat')$$, '23514', 'a chat event names its chat');
SELECT pg_temp.fails($$INSERT INTO events (op, audience, chat_id) VALUES ('X', 'user', 1)$$, '23514', 'a user event names its user');
SELECT pg_temp.fails($$INSERT INTO events (op, audience, user_id) VALUES ('X', 'everyone', 1)$$, '23514', 'audience');
SELECT pg_temp.fails($$UPDATE event_counter SET seq = -1$$, '23514', 'the counter is never negative');
SELECT pg_temp.fails($$INSERT INTO event_counter VALUES (2, 0)$$, '23514', 'one counter row');
-- A rolled-back event gives its seq back (no gap, as SQLite's AUTOINCREMENT)...
BEGIN;
INSERT INTO events (op, audience, user_id) VALUES ('USER', 'contacts', 1);
SELECT pg_temp.ok((SELECT max(seq) FROM events) = 8, 'seq 8 inside the transaction');
ROLLBACK;
INSERT INTO events (op, audience, user_id) VALUES ('USER', 'contacts', 1);
SELECT pg_temp.ok((SELECT max(seq) FROM events) = 8, 'seq 8 again after the rollback');
-- ...and an explicit seq (a copy of rows) moves the counter up to it, never down.
BEGIN;
INSERT INTO events (seq, op, audience, user_id) VALUES (100, 'USER', 'contacts', 1);
INSERT INTO events (op, audience, user_id) VALUES ('USER', 'contacts', 1);
SELECT pg_temp.ok((SELECT max(seq) FROM events) = 101, 'after an explicit 100 comes 101');
INSERT INTO events (seq, op, audience, user_id) VALUES (50, 'USER', 'contacts', 1);
SELECT pg_temp.ok((SELECT seq FROM event_counter) = 101, 'an explicit lower seq does not lower the counter');
ROLLBACK;
SELECT pg_temp.ok((SELECT pruned_through FROM event_log) = 0, 'event_log starts at 0');
-- Messages' new columns; a reply is to a message.
SELECT pg_temp.fails($$UPDATE messages SET reply_to_id = 99 WHERE id = 2$$, '23503', 'reply_to_id is a message');
UPDATE messages SET reply_to_id = 1 WHERE id = 2;
INSERT INTO reactions (message_id, emoji, user_id, seq) VALUES (1, '👍', 2, 8);
SELECT pg_temp.fails($$INSERT INTO reactions (message_id, emoji, user_id, seq) VALUES (1, '👍', 2, 9)$$, '23505', 'one reaction per user and emoji');
SELECT pg_temp.fails($$INSERT INTO reactions (message_id, emoji, user_id, seq) VALUES (99, '👍', 2, 9)$$, '23503', 'reaction to a message');
INSERT INTO blocks (blocker_id, blocked_id) VALUES (1, 3);
SELECT pg_temp.fails($$INSERT INTO blocks (blocker_id, blocked_id) VALUES (1, 1)$$, '23514', 'no blocking yourself');
SELECT pg_temp.fails($$INSERT INTO blocks (blocker_id, blocked_id) VALUES (1, 3)$$, '23505', 'a block once');
-- Presence: 0/1; user 1 online and 2 offline stay for 008's backfill.
INSERT INTO presence (user_id, online, last_seen) VALUES (1, 1, messenger_time_now()), (2, 0, messenger_time_now());
SELECT pg_temp.fails($$INSERT INTO presence (user_id, online, last_seen) VALUES (3, 2, 'x')$$, '23514', 'online is 0 or 1');
-- What the Store writes for "is online": a condition stored as 0/1.
INSERT INTO presence (user_id, online, last_seen)
VALUES (3, CASE WHEN EXISTS (SELECT 1 FROM users WHERE id = 3) THEN 1 ELSE 0 END, messenger_time_now())
ON CONFLICT (user_id) DO UPDATE SET online = excluded.online RETURNING online;
DELETE FROM presence WHERE user_id = 3;
-- Message 4 (no content) deleted before 003 and 004: their backfills must skip it.
UPDATE messages SET deleted_at = messenger_time_now() WHERE id = 4;
EOF
        ;;
    003_*) check 003 <<'EOF'
-- Backfill: chat 1's newest live message is 2 (4 is deleted) with its MESSAGE event 5; chat 2's
-- is 3 (event 6); chat 4 has no message: its CHAT event 3; chat 3 has no events: 0.
SELECT pg_temp.ok((SELECT array_agg(array[id, coalesce(last_message_id, 0), activity_seq] ORDER BY id) FROM chats)
                  = '{{1,2,5},{2,3,6},{3,0,0},{4,0,3}}', 'activity backfill: ' ||
                  (SELECT array_agg(array[id, coalesce(last_message_id, 0), activity_seq] ORDER BY id) FROM chats)::text);
-- A MESSAGE event moves its chat; a CHAT event sets a new chat's activity once. (The new
-- message's id is not 5: the inserts refused in 001's checks drew 5-8, gaps by design.)
INSERT INTO messages (chat_id, sender_id, content) VALUES (1, 2, 'third one') RETURNING id AS third \gset
SELECT pg_temp.ok(:third > 4, 'ids only grow');
INSERT INTO events (op, audience, chat_id, message_id) VALUES ('MESSAGE', 'chat', 1, :third);     -- 9
SELECT pg_temp.ok((SELECT last_message_id = :third AND activity_seq = 9 FROM chats WHERE id = 1), 'MESSAGE event moves the chat');
INSERT INTO events (op, audience, chat_id) VALUES ('CHAT', 'chat', 3), ('CHAT', 'chat', 3);      -- 10, 11
SELECT pg_temp.ok((SELECT activity_seq FROM chats WHERE id = 3) = 10, 'the first CHAT event sets activity, later ones not');
INSERT INTO events (op, audience, chat_id) VALUES ('CHAT', 'chat', 1);                            -- 12
SELECT pg_temp.ok((SELECT activity_seq FROM chats WHERE id = 1) = 9, 'a CHAT event does not move an active chat');
-- Deleting the newest message moves the chat back to the one before and its event.
UPDATE messages SET deleted_at = messenger_time_now(), content = NULL WHERE id = :third;
SELECT pg_temp.ok((SELECT last_message_id = 2 AND activity_seq = 5 FROM chats WHERE id = 1), 'deletion moves the chat back');
-- Deleting an older one changes nothing; deleting the last takes the chat to its creation.
UPDATE messages SET deleted_at = messenger_time_now() WHERE id = 1;
SELECT pg_temp.ok((SELECT last_message_id = 2 AND activity_seq = 5 FROM chats WHERE id = 1), 'an older deletion keeps the chat');
UPDATE messages SET deleted_at = messenger_time_now() WHERE id = 3;
SELECT pg_temp.ok((SELECT last_message_id IS NULL AND activity_seq = 2 FROM chats WHERE id = 2), 'no live message: back to the CHAT event');
-- Message 1 and 3 live again for the search checks (an undelete the app never does).
UPDATE messages SET deleted_at = NULL WHERE id IN (1, 3);
EOF
        ;;
    004_*) check 004 <<'EOF'
-- Backfill: live messages with content (1 'first Café', 2 'second', 3 'group hello'), not 4
-- (deleted, no content) nor 003's 'third one' (deleted).
SELECT pg_temp.ok((SELECT array_agg(message_id ORDER BY message_id) FROM messages_fts) = '{1,2,3}', 'search backfill');
SELECT pg_temp.ok((SELECT chat_id FROM messages_fts WHERE message_id = 3) = 2, 'chat key');
-- A send indexes (until 007), with SQLite's words: case, Latin diacritics (composed or not),
-- punctuation as a word break.
-- Ids from 100 on, to name them below (a jump forward: nothing is reused).
SELECT setval('messages_id_seq', 99);
INSERT INTO messages (chat_id, sender_id, content) VALUES
    (1, 1, 'Crème brûlée à Zürich'),                                  -- 100
    (1, 2, normalize('crème BRÛLÉE', NFD)),                          -- 101
    (1, 1, 'Привет, Мир'),                                           -- 102
    (1, 1, 'Καλημέρα κόσμε ΚΌΣΜΟΣ'),                                 -- 103
    (1, 2, 'red-blue! and green'),                                   -- 104
    (1, 2, 'blue red'),                                              -- 105
    (1, 1, 'helping out'), (1, 1, 'just help'), (1, 1, 'xhelpy no'); -- 106, 107, 108
SELECT pg_temp.ok(pg_temp.found('{creme,brulee}', '{f,f}') = '{101,100}', 'diacritics folded, composed and decomposed');
SELECT pg_temp.ok(pg_temp.found('{CRÈME}', '{f}') = '{101,100}', 'case and diacritics in the query');
SELECT pg_temp.ok(pg_temp.found(ARRAY[normalize('brûlée', NFD)], '{f}') = '{101,100}', 'a decomposed query');
SELECT pg_temp.ok(pg_temp.found('{"creme brulee"}', '{f}') = '{101,100}', 'a phrase');
SELECT pg_temp.ok(pg_temp.found('{"brulee creme"}', '{f}') = '{}', 'a phrase is in order');
SELECT pg_temp.ok(pg_temp.found('{zurich}', '{f}') = '{100}', 'ü');
SELECT pg_temp.ok(pg_temp.found('{привет}', '{f}') = '{102}', 'Cyrillic case');
SELECT pg_temp.ok(pg_temp.found('{ПРИВ}', '{t}') = '{102}', 'Cyrillic prefix');
SELECT pg_temp.ok(pg_temp.found('{ΚΑΛΗΜΈΡΑ}', '{f}') = '{103}', 'Greek case');
SELECT pg_temp.ok(pg_temp.found('{καλημερα}', '{f}') = '{}', 'Greek keeps its tonos (unicode61 folds Latin only)');
SELECT pg_temp.ok(pg_temp.found('{κοσμοσ}', '{f}') = '{}', 'no tonos: no match');
SELECT pg_temp.ok(pg_temp.found('{κόσμος}', '{f}') = '{103}', 'final sigma folds to sigma, as in unicode61');
SELECT pg_temp.ok(pg_temp.found('{red,blue}', '{f,f}') = '{105,104}', 'every term required');
SELECT pg_temp.ok(pg_temp.found('{"red blue"}', '{f}') = '{104}', 'punctuation is a word break');
SELECT pg_temp.ok(pg_temp.found('{"red,blue"}', '{f}') = '{104}', 'punctuation in a query term: a phrase');
SELECT pg_temp.ok(pg_temp.found('{"red gr"}', '{t}') = '{}', 'a phrase prefix needs adjacency');
SELECT pg_temp.ok(pg_temp.found('{"blue and gr"}', '{t}') = '{104}', 'a phrase prefix');
SELECT pg_temp.ok(pg_temp.found('{help}', '{t}') = '{107,106}', 'a prefix matches word starts only');
SELECT pg_temp.ok(pg_temp.found('{help}', '{f}') = '{107}', 'a word is whole');
SELECT pg_temp.ok(pg_temp.found('{xhelpy}', '{f}') = '{108}', 'inside a word');
SELECT pg_temp.ok(pg_temp.found('{"!!!"}', '{f}') = '{}', 'a term of punctuation alone matches nothing');
SELECT pg_temp.ok(pg_temp.found(ARRAY['''; DROP TABLE messages; --', 'a:*&!|'], '{f,f}') = '{}', 'tsquery syntax is text');
SELECT pg_temp.ok((SELECT count(*) FROM messages) > 0, 'still here');
SELECT pg_temp.ok(messenger_search_vector('red:1 a''b \x') = messenger_search_vector('red 1 a b x'), 'tsvector syntax is text');
-- An edit reindexes, a word shared by old and new text stays found; a deletion takes it out.
UPDATE messages SET content = 'blue moon' WHERE id = 105;
SELECT pg_temp.ok(pg_temp.found('{red}', '{f}') = '{104}', 'edit forgets old words');
SELECT pg_temp.ok(pg_temp.found('{blue}', '{f}') = '{105,104}', 'edit keeps shared words');
SELECT pg_temp.ok(pg_temp.found('{moon}', '{f}') = '{105}', 'edit indexes new words');
UPDATE messages SET deleted_at = messenger_time_now(), content = NULL WHERE id = 105;
SELECT pg_temp.ok(pg_temp.found('{blue}', '{f}') = '{104}', 'deletion takes it out');
-- Deleting a row outright takes its index row (ON DELETE CASCADE).
DELETE FROM messages WHERE id = 108;
SELECT pg_temp.ok(NOT EXISTS (SELECT 1 FROM messages_fts WHERE message_id = 108), 'hard delete cascades');
-- A reply needs the reply index (the foreign key check's look-up).
SELECT pg_temp.ok(EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'messages_reply_to'), 'messages_reply_to');
EOF
        # EXPLAIN cannot be read inside an SQL expression; ask psql for it.
        plan=$(psql_ "$URL" -c "SET enable_seqscan = off" -c "EXPLAIN SELECT message_id FROM messages_fts
            WHERE chat_id = ANY('{1,2}'::bigint[]) AND body @@ messenger_search_query('{red}', '{f}')
              AND message_id < 1000 ORDER BY message_id DESC LIMIT 21")
        [[ $plan == *"messages_fts_body"* && $plan == *"chat_id = ANY"* ]] \
            || die "the chat-scoped search does not use messages_fts_body for both conditions: $plan"
        log "the chat-scoped search reads the GIN index for the words and the chats"
        ;;
    005_*) check 005 <<'EOF'
SELECT pg_temp.ok((SELECT bool_and(username_key = messenger_nocase(username)) FROM users), 'username_key backfill');
SELECT pg_temp.ok((SELECT username_key FROM users WHERE username = 'Ärger') = 'Ärger', 'ASCII folding only, as SQLite lower()');
INSERT INTO users (username) VALUES ('DAVE');
SELECT pg_temp.ok((SELECT username_key FROM users WHERE username = 'DAVE') = 'dave', 'the trigger fills a missing key');
INSERT INTO users (username, username_key) VALUES ('Алиса', 'алиса');
SELECT pg_temp.fails($$INSERT INTO users (username, username_key) VALUES ('алиса', 'алиса')$$, '23505', 'username_key unique');
-- The Store's login: no conflict target, either unique index means the user exists.
WITH stored AS (INSERT INTO users (username, username_key) VALUES ('алиса', 'алиса') ON CONFLICT DO NOTHING RETURNING id)
SELECT pg_temp.ok((SELECT count(*) FROM stored) = 0, 'login upsert on the key');
WITH stored AS (INSERT INTO users (username, username_key) VALUES ('Dave', 'other') ON CONFLICT DO NOTHING RETURNING id)
SELECT pg_temp.ok((SELECT count(*) FROM stored) = 0, 'login upsert on the NOCASE name');
INSERT INTO sessions (user_id, expires_at) VALUES (1, 2000000000);
SELECT pg_temp.fails($$INSERT INTO sessions (user_id, expires_at, revoked_at) VALUES (1, 1, 'x')$$, '23514', 'revoked_at and revoked_seq together');
SELECT pg_temp.fails($$INSERT INTO sessions (user_id, expires_at) VALUES (99, 1)$$, '23503', 'session of a user');
UPDATE sessions SET revoked_at = messenger_time_now(), revoked_seq = (SELECT coalesce(max(revoked_seq), 0) + 1 FROM sessions) WHERE id = 1;
SELECT pg_temp.ok((SELECT revoked_seq FROM sessions WHERE id = 1) = 1, 'revoked_seq');
-- Buckets keep the clock's fraction (8-byte floats, as SQLite's REAL); the Store's draw,
-- with least/greatest for SQLite's two-argument min/max.
INSERT INTO rate_buckets (name, key, tokens, updated_at) VALUES ('send', '1', 2.5, 1771500000.123456);
SELECT pg_temp.ok((SELECT updated_at FROM rate_buckets) = 1771500000.123456, 'updated_at keeps microseconds');
UPDATE rate_buckets SET tokens = least(30, tokens + greatest(0, 1771500001.123456 - updated_at) * 10) - 1,
                        updated_at = greatest(updated_at, 1771500001.123456)
WHERE name = 'send' AND key = '1' AND least(30, tokens + greatest(0, 1771500001.123456 - updated_at) * 10) >= 1;
SELECT pg_temp.ok((SELECT abs(tokens - 11.5) < 1e-6 FROM rate_buckets), 'a draw refills and takes one');
SELECT pg_temp.fails($$INSERT INTO rate_buckets (name, key, tokens, updated_at) VALUES ('send', '1', 1, 1)$$, '23505', 'one bucket per name and key');
EOF
        ;;
    006_*) check 006 <<'EOF'
SELECT pg_temp.ok(NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'rate_buckets_updated'), 'rate_buckets_updated dropped');
EOF
        ;;
    007_*) check 007 <<'EOF'
-- No trigger indexes a send now: the Store does, once per transaction.
BEGIN;
INSERT INTO messages (chat_id, sender_id, content) VALUES (1, 1, 'zebra one'), (1, 1, 'zebra two'), (1, 1, NULL);
SELECT pg_temp.ok(pg_temp.found('{zebra}', '{f}') = '{}', 'a send is not indexed by a trigger');
-- Edited in the same transaction before indexForSearch: the update trigger indexes it, and
-- indexForSearch then indexes it again without a conflict.
UPDATE messages SET content = 'zebra edited' WHERE content = 'zebra two';
SELECT pg_temp.ok(messenger_index_for_search(ARRAY(SELECT id FROM messages WHERE content LIKE 'zebra%' OR content IS NULL)) = 2,
                  'indexForSearch indexes the two with content');
COMMIT;
SELECT pg_temp.ok(cardinality(pg_temp.found('{zebra}', '{f}')) = 2, 'both found');
SELECT pg_temp.ok(cardinality(pg_temp.found('{edited}', '{f}')) = 1, 'with the current text');
SELECT pg_temp.ok(messenger_index_for_search('{}') = 0, 'nothing to index');
EOF
        ;;
    008_*) check 008 <<'EOF'
SELECT pg_temp.ok((SELECT array_agg(array[user_id, relay]) FROM presence_relays) = '{{1,1}}', 'who was online is online on relay 1');
INSERT INTO presence_relays (user_id, relay) VALUES (1, 2);
INSERT INTO presence_relays (user_id, relay) VALUES (1, 2) ON CONFLICT DO NOTHING;  -- SQLite's INSERT OR IGNORE
SELECT pg_temp.fails($$INSERT INTO presence_relays (user_id, relay) VALUES (1, 0)$$, '23514', 'relay >= 1');
SELECT pg_temp.fails($$INSERT INTO presence_relays (user_id, relay) VALUES (99, 1)$$, '23503', 'presence of a user');
EOF
        ;;
    009_*) check 009 <<'EOF'
SELECT pg_temp.ok(messenger_search_words('Crème BRÛLÉE, naïve façade!') = '{creme,brulee,naive,facade}', 'Latin letters still fold');
SELECT pg_temp.ok(messenger_search_words('Привет, мир 42') = '{привет,мир,42}', 'text without them is only lowered and split');
SELECT pg_temp.ok(cardinality(messenger_search_words(repeat('word ', 800))) = 800, 'a long ASCII message');
EOF
        ;;
    *) die "no checks for $(basename "$file"): add them here" ;;
    esac
done

[[ $(psql_ "$URL" -c "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations") == 1,2,3,4,5,6,7,8,9 ]] \
    || die "schema_migrations does not list every version"

# --- The event order under concurrency ----------------------------------------------------
# Writer A takes the write lock, stores a message and its event, and holds them uncommitted
# for 2 s. Writer B starts 0.5 s later and does the same with plain INSERTs (no explicit lock:
# the id default and the seq trigger take it). While A holds, B must wait, and a reader must
# see neither A's nor B's rows nor a moved head. Afterwards A's id and seq come before B's,
# B's seq is A's + 1, and B finished after A.
head0=$(psql_ "$URL" -c "SELECT seq FROM event_counter")
msg0=$(psql_ "$URL" -c "SELECT max(id) FROM messages")
psql_ "$URL" >"$DIR/a.out" 2>&1 <<'EOF' &
BEGIN;
SELECT messenger_write_lock();
WITH m AS (INSERT INTO messages (chat_id, sender_id, content) VALUES (1, 1, 'from A') RETURNING id)
INSERT INTO events (op, audience, chat_id, message_id) SELECT 'MESSAGE', 'chat', 1, id FROM m;
SELECT pg_sleep(2);
SELECT 'A', (SELECT id FROM messages WHERE content = 'from A'), (SELECT max(seq) FROM events);
COMMIT;
EOF
a_pid=$!
sleep 0.5
start_b=$(date +%s.%N)
psql_ "$URL" >"$DIR/b.out" 2>&1 <<'EOF' &
BEGIN;
WITH m AS (INSERT INTO messages (chat_id, sender_id, content) VALUES (1, 2, 'from B') RETURNING id)
INSERT INTO events (op, audience, chat_id, message_id) SELECT 'MESSAGE', 'chat', 1, id FROM m;
SELECT 'B', (SELECT id FROM messages WHERE content = 'from B'), (SELECT max(seq) FROM events);
COMMIT;
EOF
b_pid=$!
sleep 0.7
reader=$(psql_ "$URL" -F ' ' -c "
    SELECT (SELECT seq FROM event_counter), (SELECT count(*) FROM events WHERE seq > $head0),
           (SELECT count(*) FROM messages WHERE id > $msg0),
           (SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
                   AND query LIKE '%from B%')")
wait "$a_pid" || die "writer A failed: $(cat "$DIR/a.out")"
wait "$b_pid" || die "writer B failed: $(cat "$DIR/b.out")"
end_b=$(date +%s.%N)
[[ $reader == "$head0 0 0 1" ]] \
    || die "while A held the lock a reader saw head, events, messages, waiting writers = $reader (wanted $head0 0 0 1)"
read -r _ a_id a_seq < <(tr '|' ' ' < "$DIR/a.out" | grep '^A ')
read -r _ b_id b_seq < <(tr '|' ' ' < "$DIR/b.out" | grep '^B ')
((a_id < b_id && b_seq == a_seq + 1 && a_seq == head0 + 1)) \
    || die "order: A got id $a_id seq $a_seq, B id $b_id seq $b_seq (head was $head0)"
awk -v s="$start_b" -v e="$end_b" 'BEGIN { exit !(e - s >= 1.2) }' \
    || die "B did not wait for A (it took $(awk -v s="$start_b" -v e="$end_b" 'BEGIN { print e - s }') s)"
[[ $(psql_ "$URL" -c "SELECT seq FROM event_counter") == "$b_seq" ]] || die "the head is not B's seq"
log "event order: B waited for A; ids $a_id < $b_id, seqs $a_seq < $b_seq; a reader saw neither before A committed"

# The trap it avoids, shown on a bare sequence: the number drawn second commits first, and a
# reader sees N+1 without N.
psql_ "$URL" -c "CREATE TABLE trap (id BIGINT PRIMARY KEY); CREATE SEQUENCE trap_seq"
psql_ "$URL" -c "BEGIN; INSERT INTO trap VALUES (nextval('trap_seq')); SELECT pg_sleep(1.5); COMMIT;" >/dev/null &
trap_pid=$!
sleep 0.5
psql_ "$URL" -c "INSERT INTO trap VALUES (nextval('trap_seq'))"
seen=$(psql_ "$URL" -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM trap")
wait "$trap_pid"
[[ $seen == 2 ]] || die "expected the bare sequence to show 2 without 1, saw '$seen'"
psql_ "$URL" -c "DROP TABLE trap; DROP SEQUENCE trap_seq"
log "a bare sequence shows the trap (a reader saw id 2 while 1 was uncommitted); the counter does not"

# The unique direct chat under concurrency, without the Store's lock: the second insert of the
# same pair waits for the first and then fails on the unique index.
psql_ "$URL" -c "BEGIN; INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('direct', 2, 2, 3); SELECT pg_sleep(1); COMMIT;" >/dev/null &
first_pid=$!
sleep 0.3
if out=$(psql_ "$URL" -c "INSERT INTO chats (chat_type, creator_id, direct_low, direct_high) VALUES ('direct', 3, 2, 3)" 2>&1); then
    die "two concurrent initiates created two direct chats for one pair"
fi
wait "$first_pid" || die "the first initiate failed"
[[ $out == *chats_direct_pair* ]] || die "the second initiate failed for another reason: $out"
[[ $(psql_ "$URL" -c "SELECT count(*) FROM chats WHERE chat_type = 'direct' AND direct_low = 2 AND direct_high = 3") == 1 ]] \
    || die "not exactly one direct chat for the pair"
log "concurrent initiates of one pair: one chat, the other refused by chats_direct_pair"

# Many writers at once: 4 sessions x 50 one-event transactions; the seqs are exactly
# head+1 ... head+200, no gap and no duplicate, and the events' message ids follow their seqs.
head1=$(psql_ "$URL" -c "SELECT seq FROM event_counter")
pids=()
for w in 1 2 3 4; do
    (for i in $(seq 50); do
        printf "WITH m AS (INSERT INTO messages (chat_id, sender_id, content) VALUES (1, 1, 'w%s %s') RETURNING id)
                INSERT INTO events (op, audience, chat_id, message_id) SELECT 'MESSAGE', 'chat', 1, id FROM m;\n" "$w" "$i"
     done) | psql_ "$URL" >/dev/null &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || die "a concurrent writer failed"; done
[[ $(psql_ "$URL" -c "SELECT count(*) = 200 AND min(seq) = $head1 + 1 AND max(seq) = $head1 + 200
                       FROM events WHERE seq > $head1") == t ]] || die "200 concurrent events did not get seqs head+1..head+200"
[[ $(psql_ "$URL" -c "SELECT bool_and(ok) FROM (SELECT message_id > lag(message_id, 1, 0::bigint) OVER (ORDER BY seq) AS ok
                       FROM events WHERE seq > $head1) o") == t ]] || die "message ids do not follow the seqs"
[[ $(psql_ "$URL" -c "SELECT activity_seq = $head1 + 200 AND last_message_id = (SELECT max(id) FROM messages) FROM chats WHERE id = 1") == t ]] \
    || die "the chat's activity is not its newest message"
log "4 concurrent writers x 50: seqs contiguous, message ids in seq order"

# --- The search words against SQLite's unicode61 ------------------------------------------
# Same words for a corpus of every script the e2e tests use and the edge cases of the README,
# when this python has SQLite with FTS5 (the backend the Store uses beside this one).
if python3 -c 'import sqlite3; sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE t USING fts5(x)")' 2>/dev/null; then
    python3 - "$URL" <<'PY' || die "the search words differ from SQLite's unicode61"
import sqlite3, subprocess, sys, unicodedata
corpus = [
    "Crème brûlée à Zürich", unicodedata.normalize("NFD", "crème BRÛLÉE ấ"), "Привет, Мир ёлка Ёлка",
    "Καλημέρα κόσμε ΚΌΣΜΟΣ", "red-blue! and green", "x² ½ ① \ue000private", "İstanbul ǅemal ẞtraße ß",
    "ǿ Ø ł đ æ Œ ŀ", "a_b c'd e.f g@h.i 3.14 1e5 v1.2.3", "ﬁne 東京タワー 中文字", "hello, world's end; (parens) [x]",
    "مرحبا بالعالم", "שלום עולם", "µ ſ ϐ ϑ ϕ ϖ ϰ ϱ ϵ", "Ǆ ǆ Ǳ", "K Å Ω",
]
db = sqlite3.connect(":memory:")
db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')")
db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
for i, text in enumerate(corpus):
    db.execute("INSERT INTO t (rowid, body) VALUES (?, ?)", (i, text))
literals = ",".join("(%d, '%s')" % (i, t.replace("'", "''")) for i, t in enumerate(corpus))
out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", sys.argv[1], "-c",
                      "SELECT i, array_to_string(messenger_search_words(t), ' ') FROM (VALUES %s) c(i, t) ORDER BY i" % literals],
                     check=True, capture_output=True, text=True).stdout
pg = {int(i): w for i, _, w in (line.partition("|") for line in out.splitlines())}
bad = 0
for i, text in enumerate(corpus):
    sq = " ".join(r[0] for r in db.execute("SELECT term FROM v WHERE doc = ? ORDER BY offset", (i,)))
    if sq != pg[i]:
        bad += 1
        print(f"differs: {text!r}\n  sqlite   {sq!r}\n  postgres {pg[i]!r}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
    log "the search words are unicode61's for the corpus"
else
    log "skipped the comparison with SQLite's unicode61: python3's sqlite3 has no FTS5"
fi
