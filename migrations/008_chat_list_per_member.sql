-- The chat list's order kept on each membership too, so that a page of a user's chats is a
-- walk of one index of theirs, not a read of every chat they are in.
--
-- Migration 003 keeps a chat's newest activity (`activity_seq`) on its row, which made
-- ordering a user's chats a read of one integer per chat: for a user in 2,000 chats, a first
-- page of 50 still read 2,000 chat rows and sorted them. A copy of `activity_seq` on each
-- membership, in an index by user, gives the page in order from the index alone, and the
-- whole list in order without a sort. The copy costs a write per member when a chat's
-- activity moves (two for a direct chat; a message to a group of 1,000 rewrites 1,000 index
-- entries) — the price of the order of every user's list being ready before it is asked for.
--
-- The triggers keep the copy equal to the chat's in the same transaction as the change,
-- whoever writes it: when `chats.activity_seq` moves (migration 003's triggers), and when a
-- member joins a chat that has had activity (a new chat's members join at 0, its creation
-- moves them all).
ALTER TABLE chat_members ADD COLUMN activity_seq INTEGER NOT NULL DEFAULT 0;

UPDATE chat_members SET activity_seq = (SELECT activity_seq FROM chats WHERE chats.id = chat_members.chat_id);

CREATE INDEX chat_members_activity ON chat_members(user_id, activity_seq, chat_id);

CREATE TRIGGER chat_members_activity_moved AFTER UPDATE OF activity_seq ON chats
WHEN NEW.activity_seq IS NOT OLD.activity_seq
BEGIN
    UPDATE chat_members SET activity_seq = NEW.activity_seq WHERE chat_id = NEW.id;
END;

CREATE TRIGGER chat_members_activity_joined AFTER INSERT ON chat_members
WHEN NEW.activity_seq IS NOT (SELECT activity_seq FROM chats WHERE id = NEW.chat_id)
BEGIN
    UPDATE chat_members SET activity_seq = (SELECT activity_seq FROM chats WHERE id = NEW.chat_id)
    WHERE chat_id = NEW.chat_id AND user_id = NEW.user_id;
END;
