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

-- A chat's newest activity, kept on its row so that ordering a user's chats reads one row
-- per chat and nothing else: the newest live message (its id and time) and the seq of the
-- newest MESSAGE or CHAT event (the tie-break within one second; unlike the events
-- themselves it survives pruning). The triggers keep them in the same transaction as the
-- change, whoever writes it.
ALTER TABLE chats ADD COLUMN last_message_id INTEGER;
ALTER TABLE chats ADD COLUMN last_message_at TEXT;
ALTER TABLE chats ADD COLUMN activity_seq    INTEGER NOT NULL DEFAULT 0;

UPDATE chats SET last_message_id =
    (SELECT max(id) FROM messages WHERE chat_id = chats.id AND deleted_at IS NULL);
UPDATE chats SET last_message_at = (SELECT created_at FROM messages WHERE id = chats.last_message_id);
UPDATE chats SET activity_seq = coalesce(
    (SELECT max(seq) FROM events WHERE audience = 'chat' AND chat_id = chats.id AND op IN ('MESSAGE', 'CHAT')), 0);

CREATE TRIGGER chats_last_message_sent AFTER INSERT ON messages
BEGIN
    UPDATE chats SET last_message_id = NEW.id, last_message_at = NEW.created_at
    WHERE id = NEW.chat_id AND (last_message_id IS NULL OR last_message_id < NEW.id);
END;

CREATE TRIGGER chats_last_message_deleted AFTER UPDATE OF deleted_at ON messages
WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL
BEGIN
    UPDATE chats SET
        last_message_id = (SELECT max(id) FROM messages WHERE chat_id = NEW.chat_id AND deleted_at IS NULL),
        last_message_at = (SELECT created_at FROM messages WHERE id =
            (SELECT max(id) FROM messages WHERE chat_id = NEW.chat_id AND deleted_at IS NULL))
    WHERE id = NEW.chat_id AND last_message_id = NEW.id;
END;

CREATE TRIGGER chats_activity_event AFTER INSERT ON events
WHEN NEW.audience = 'chat' AND NEW.op IN ('MESSAGE', 'CHAT')
BEGIN
    UPDATE chats SET activity_seq = NEW.seq WHERE id = NEW.chat_id;
END;
