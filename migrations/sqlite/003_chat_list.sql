-- The chat list (GET /chats?v=2): indexes that answer it from the index alone, and the
-- columns that order it.
--
-- Every query that reads a chat's messages by chat_id reads only live ones (deleted_at IS
-- NULL), so the chat index holds just those, with the sender: a chat's newest message and
-- its unread count (messages from others after the reader's marker) are then a seek and a
-- range count in the index, never a visit to each message's row. A deleted message leaves
-- the index. `deleted_at` is in it (always NULL there) because SQLite counts an index as
-- covering only when it holds every column the query names, the partial index's own
-- condition included.
DROP INDEX messages_chat;
CREATE INDEX messages_chat_live ON messages(chat_id, id, sender_id, deleted_at) WHERE deleted_at IS NULL;

-- A chat's newest MESSAGE or CHAT event (the chat list's tie-break within one second) and the
-- replay of a chat's events, found without reading each event's row; `audience` is in it
-- for the same reason as above.
DROP INDEX events_chat;
CREATE INDEX events_chat ON events(chat_id, seq, op, audience) WHERE audience = 'chat';

-- A chat's newest activity, kept on its row so that ordering a user's chats reads one
-- integer per chat and nothing else: its newest live message, and `activity_seq`, the seq of
-- that message's MESSAGE event, or of the chat's creation while it has none. Seqs follow
-- commit order, so newest activity first is `activity_seq DESC` (then id DESC, for chats
-- from before the event stream, which start at 0). Deleting the newest message moves the
-- chat back to the one before it; if that one's event has been pruned, to 0, the place of
-- activity older than anything retained. The triggers keep both in the same transaction as
-- the change, whoever writes it.
ALTER TABLE chats ADD COLUMN last_message_id INTEGER;
ALTER TABLE chats ADD COLUMN activity_seq    INTEGER NOT NULL DEFAULT 0;

UPDATE chats SET last_message_id =
    (SELECT max(id) FROM messages WHERE chat_id = chats.id AND deleted_at IS NULL);
UPDATE chats SET activity_seq = coalesce(
    (SELECT max(seq) FROM events
     WHERE audience = 'chat' AND chat_id = chats.id AND op = 'MESSAGE' AND message_id = chats.last_message_id),
    CASE WHEN last_message_id IS NULL THEN
        (SELECT min(seq) FROM events WHERE audience = 'chat' AND chat_id = chats.id AND op = 'CHAT') END,
    0);

CREATE TRIGGER chats_activity_message AFTER INSERT ON events
WHEN NEW.audience = 'chat' AND NEW.op = 'MESSAGE'
BEGIN
    UPDATE chats SET last_message_id = NEW.message_id, activity_seq = NEW.seq WHERE id = NEW.chat_id;
END;

CREATE TRIGGER chats_activity_created AFTER INSERT ON events
WHEN NEW.audience = 'chat' AND NEW.op = 'CHAT'
BEGIN
    UPDATE chats SET activity_seq = NEW.seq WHERE id = NEW.chat_id AND activity_seq = 0;
END;

CREATE TRIGGER chats_activity_deleted AFTER UPDATE OF deleted_at ON messages
WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL
BEGIN
    UPDATE chats SET
        last_message_id = (SELECT max(id) FROM messages WHERE chat_id = NEW.chat_id AND deleted_at IS NULL),
        activity_seq = coalesce(
            (SELECT seq FROM events
             WHERE audience = 'chat' AND chat_id = NEW.chat_id AND op = 'MESSAGE'
               AND message_id = (SELECT max(id) FROM messages WHERE chat_id = NEW.chat_id AND deleted_at IS NULL)
             ORDER BY seq DESC LIMIT 1),
            CASE WHEN NOT EXISTS (SELECT 1 FROM messages WHERE chat_id = NEW.chat_id AND deleted_at IS NULL) THEN
                (SELECT min(seq) FROM events WHERE audience = 'chat' AND chat_id = NEW.chat_id AND op = 'CHAT') END,
            0)
    WHERE id = NEW.chat_id AND last_message_id = NEW.id;
END;
