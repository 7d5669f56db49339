-- Indexes that answer the chat list (GET /chats?v=2) from the index alone.
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
