-- PostgreSQL dialect of migrations/004_search.sql. Full-text search over messages (GET /search).
--
-- SQLite's contentless FTS5 table becomes a table of its own, `messages_fts`, one row per
-- indexed message: the message's id, its chat (FTS5's `chat` column of 'c<chat_id>' tokens:
-- here a column, and a key of the same GIN index, so that "these words in these chats" is one
-- index search, as `chat : (c1 OR c7 ...) AND ...` is on SQLite) and `body`, a tsvector of the
-- content's words. PostgreSQL's full-text search gives what FTS5 gives the Store: every word
-- required, prefixes (`'hel':*`), phrases (`'see' <-> 'you'`, adjacent words in order), from
-- an inverted index. pg_trgm was the other candidate; it matches substrings, not words, and
-- has no phrases.
--
-- The words are FTS5's, not PostgreSQL's parser's: `messenger_search_words` reproduces the
-- unicode61 tokenizer with remove_diacritics 2 (a word is a run of letters, digits and private
-- use characters; case folded; the diacritics of Latin letters removed, composed or decomposed,
-- so `cafe` finds `Café`; Greek and Cyrillic keep theirs), and the tsvector is built from them
-- with their positions. The 'simple' configuration's parser would split other things apart
-- (it knows hyphenated words, hosts, e-mail addresses, versions) and classify characters by the
-- C library alone. Where the two tokenizers still differ (README.md, "Search"): words of
-- scripts whose vowel signs are combining marks (Devanagari ...) stay whole here, where
-- unicode61 splits them at each sign; and characters newer than SQLite's Unicode tables.
--
-- The Store asks `body @@ messenger_search_query(terms, prefixes)` (below) and never passes a
-- user's text as tsquery syntax. Only live messages with content are indexed: the triggers keep
-- the index in the transaction of the write itself: a send indexes, an edit reindexes, a
-- deletion (which clears content and sets deleted_at) takes the message out, and a message
-- deleted outright takes its row with it (the foreign key's ON DELETE CASCADE, for SQLite's
-- messages_fts_delete trigger). FTS5's prefix='2 3' and columnsize=0 have no counterpart and
-- need none: GIN finds prefixes in its sorted keys, and nothing ranks by length.

-- The chat key in the GIN index needs btree_gin (a contrib extension in Debian's postgresql
-- package, and a trusted one: the database's owner may create it, no superuser needed).
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- The words of `content` as unicode61 with remove_diacritics 2 sees them, in order:
--   1. the combining diacritics unicode61 drops wherever they stand (decomposed text: 'e' +
--      U+0301), the 25 it knows;
--   2. lower(), the database's case mapping (LC_CTYPE C.UTF-8, checked by migration 001);
--   3. the precomposed Latin letters unicode61 folds to their ASCII base (its own table, 490
--      letters, taken from SQLite 3.40 letter by letter), and the Greek letter variants and
--      the micro sign its case folding maps where lower() does not (final sigma to sigma);
--   4. everything that is not a letter, digit (any script's, including superscripts, fractions
--      and circled numbers) or private use character separates words.
CREATE FUNCTION messenger_search_words(content text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
SELECT array_remove(regexp_split_to_array(btrim(regexp_replace(
    translate(
        lower(regexp_replace(content, '[\u0300-\u0304\u0306-\u030C\u030F\u0311\u031B\u0323-\u0328\u032D\u032E\u0330\u0331]', '', 'g')),
        'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜ'
        || 'ĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽ'
        || 'žſƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰ'
        || 'ȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌ'
        || 'ṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẛẠạ'
        || 'ẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰự'
        || 'ỲỳỴỵỶỷỸỹKÅµςϐϑϕϖϰϱϵ',
        'aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaaccccccccddeeeeeeeeeeg'
        || 'ggggggghhiiiiiiiiijjkkllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzz'
        || 'zsoouuaaiioouuuuuuuuuuaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeooooooo'
        || 'oyyaabbbbbbccddddddddddeeeeeeeeeeffgghhhhhhhhhhiiiikkkkkkllllllllmmmmmmnnnnnnnno'
        || 'ooooooopppprrrrrrrrssssssssssttttttttuuuuuuuuuuvvvvwwwwwwwwwwxxxxyyzzzzzzhtwysaa'
        || 'aaaaaaaaaaaaaaaaaaaaaaeeeeeeeeeeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuuuu'
        || 'yyyyyyyykaμσβθφπκρε'),
    '[^[:alnum:]'
        || '\u00B2-\u00B3\u00B9\u00BC-\u00BE\u09F4-\u09F9\u0B72-\u0B77\u0BF0-\u0BF2\u0C78-\u0C7E'
        || '\u0D58-\u0D5E\u0D70-\u0D78\u0F2A-\u0F33\u1369-\u137C\u16EE-\u16F0\u17F0-\u17F9\u19DA'
        || '\u2070\u2074-\u2079\u2080-\u2089\u2150-\u2182\u2185-\u2189\u2460-\u249B\u24EA-\u24FF'
        || '\u2776-\u2793\u2CFD\u3007\u3021-\u3029\u3038-\u303A\u3192-\u3195\u3220-\u3229'
        || '\u3248-\u324F\u3251-\u325F\u3280-\u3289\u32B1-\u32BF\uA6E6-\uA6EF\uA830-\uA835'
        || '\uE000-\uF8FF\U0001F100-\U0001F10C\U000F0000-\U000FFFFD\U00100000-\U0010FFFD'
        || ']+', ' ', 'g')), ' '), '')
$fn$;

-- The tsvector of `content`: each word with its position (1, 2, ...), as FTS5 numbers its
-- tokens, so that phrases match adjacent words. Built as tsvector text: the words hold only
-- letters and digits, never a quote or backslash. A word over 2047 bytes (tsvector's limit) is
-- left out of the index; FTS5 would index it (no message has one: content is at most 4000
-- characters, and that would be one word of over 500 four-byte characters).
CREATE FUNCTION messenger_search_vector(content text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
SELECT coalesce(string_agg('''' || w || ''':' || least(n, 16383), ' '), '')::tsvector
FROM unnest(messenger_search_words(content)) WITH ORDINALITY AS u(w, n)
WHERE octet_length(w) <= 2047
$fn$;

-- One search term (a word, or a phrase: SearchQuery.Term) as a tsquery: its words adjacent and
-- in order, the last one a prefix when `is_prefix`. NULL for a term with no word, which then
-- matches nothing (SearchQuery drops such terms before they get here).
CREATE FUNCTION messenger_search_term(term text, is_prefix boolean) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
SELECT (SELECT string_agg('''' || w || '''' || CASE WHEN is_prefix AND n = cardinality(words) THEN ':*' ELSE '' END,
                          ' <-> ' ORDER BY n)
        FROM unnest(words) WITH ORDINALITY AS u(w, n))::tsquery
FROM messenger_search_words(term) AS words
WHERE cardinality(words) > 0
$fn$;

-- Every term required: the terms' tsqueries joined by &. `prefixes[i]` says whether terms[i]
-- ends in a prefix. The Store binds the two arrays; the user's text never becomes syntax.
CREATE FUNCTION messenger_search_query(terms text[], prefixes boolean[]) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
SELECT CASE WHEN count(*) = 0 OR count(*) <> count(q) THEN NULL
            ELSE string_agg('(' || q::text || ')', ' & ' ORDER BY i)::tsquery END
FROM (SELECT i, messenger_search_term(terms[i], coalesce(prefixes[i], false)) AS q
      FROM generate_subscripts(terms, 1) AS i) AS t
$fn$;

CREATE TABLE messages_fts (
    message_id BIGINT   PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    chat_id    BIGINT   NOT NULL,
    body       tsvector NOT NULL
);
-- Both passes of Store.search: the words alone (newest first, the Store keeps the caller's
-- chats), and the words in the caller's chats (`chat_id = ANY($chats) AND body @@ $query`).
CREATE INDEX messages_fts_body ON messages_fts USING gin (chat_id, body);

CREATE FUNCTION messages_fts_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO messages_fts (message_id, chat_id, body)
    VALUES (NEW.id, NEW.chat_id, messenger_search_vector(NEW.content));
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
FOR EACH ROW WHEN (NEW.content IS NOT NULL AND NEW.deleted_at IS NULL)
EXECUTE FUNCTION messages_fts_insert();

-- Forget the old entry, index the new text. Unlike a contentless FTS5 table, which forgets a
-- row only when given the exact values it was indexed with, a row here goes by its key, so the
-- order of the two steps does not matter and a message never indexed is simply not found.
CREATE FUNCTION messages_fts_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM messages_fts WHERE message_id = OLD.id;
    IF NEW.content IS NOT NULL AND NEW.deleted_at IS NULL THEN
        INSERT INTO messages_fts (message_id, chat_id, body)
        VALUES (NEW.id, NEW.chat_id, messenger_search_vector(NEW.content));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, deleted_at, chat_id ON messages
FOR EACH ROW EXECUTE FUNCTION messages_fts_update();

-- Every message there already is.
INSERT INTO messages_fts (message_id, chat_id, body)
SELECT id, chat_id, messenger_search_vector(content) FROM messages WHERE content IS NOT NULL AND deleted_at IS NULL;

-- Found by the query plan test (QueryPlanTests): a statement that may remove a message looks
-- for replies to it, `reply_to_id = ?` (the foreign key's check, on PostgreSQL too), which
-- without an index is a full scan of messages. Only replies are in it.
CREATE INDEX messages_reply_to ON messages(reply_to_id) WHERE reply_to_id IS NOT NULL;
