"""Full-text search (issue 17): `GET /search?q=&chat_id=&before_id=&limit=` through nginx.

Only chats the caller is a member of now; words, prefixes and quoted phrases, every term
required; case and diacritics folded; newest first, paged by before_id; edits reindex and
deletions vanish in the same transaction as the write; a malformed query is a 400 and text
that looks like FTS5 syntax is only text. Every test searches for words of its own (a random
suffix), so the shared stack's other messages never match. Runs in about 10 s."""

from __future__ import annotations

import random
import string
import unicodedata
from urllib.parse import quote

import requests

from events_helpers import FULL_MESSAGE_KEYS, assert_full_message
from group_helpers import create_group, remove_member, add_members
from helpers import assert_error, assert_keys, ok_json

SEARCH_KEYS = {"messages", "next_before_id"}


def word(prefix: str = "w") -> str:
    """A word no other test sends: letters only, so the tokenizer keeps it whole."""
    return prefix + "".join(random.choices(string.ascii_lowercase, k=10))


def search_raw(api, token: str | None, q: str | None = None, **params) -> requests.Response:
    query = {} if q is None else {"q": q}
    query.update({k: str(v) for k, v in params.items()})
    path = "/search"
    if query:
        path += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
    return api.get(path, token)


def search(api, token: str, q: str, **params) -> dict:
    page = ok_json(search_raw(api, token, q, **params))
    assert_keys(page, SEARCH_KEYS)
    assert isinstance(page["messages"], list)
    for message in page["messages"]:
        assert_full_message(message)
    ids = [m["id"] for m in page["messages"]]
    assert ids == sorted(ids, reverse=True), f"not newest first: {ids}"
    assert page["next_before_id"] is None or page["next_before_id"] == ids[-1], page
    return page


def ids(api, token: str, q: str, **params) -> list[int]:
    return [m["id"] for m in search(api, token, q, **params)["messages"]]


def send(api, token: str, chat_id: int, content: str) -> int:
    message = ok_json(api.post(f"/chats/{chat_id}/messages", token, json={"content": content}))
    return message["id"]


def test_words_are_anded_folded_and_newest_first(api, new_user):
    alice, bob = new_user("sa"), new_user("sb")
    chat = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    red, blue = word("red"), word("blue")
    first = send(api, alice.token, chat, f"{red} and {blue}")
    second = send(api, bob.token, chat, f"only {red.upper()} here")
    third = send(api, alice.token, chat, f"{blue} alone")
    assert ids(api, alice.token, red) == [second, first]
    assert ids(api, bob.token, blue) == [third, first]
    assert ids(api, alice.token, f"{blue} {red}") == [first]
    assert ids(api, alice.token, f"{red} {word('none')}") == []
    # The full protocol-2 message, exactly, with or without ?v=2.
    page = search(api, alice.token, red, v=2)
    assert [m["id"] for m in page["messages"]] == [second, first]
    hit = page["messages"][1]
    assert set(hit) == FULL_MESSAGE_KEYS
    assert hit["content"] == f"{red} and {blue}" and hit["chat_id"] == chat and hit["sender_id"] == alice.id
    assert page["next_before_id"] is None
    # chat_id narrows to one chat.
    carol = new_user("sc")
    other = api.initiate(alice.token, target_id=carol.id)["chat_id"]
    elsewhere = send(api, alice.token, other, f"{red} elsewhere")
    assert ids(api, alice.token, red) == [elsewhere, second, first]
    assert ids(api, alice.token, red, chat_id=chat) == [second, first]
    assert ids(api, alice.token, red, chat_id=other) == [elsewhere]


def test_auth_and_parameters(api, new_user):
    alice, bob, carol = new_user("sa"), new_user("sb"), new_user("sc")
    chat = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    assert_error(search_raw(api, None, "hello"), 401)
    assert_error(search_raw(api, "not.a.token", "hello"), 401)
    assert_error(search_raw(api, alice.token, "hello", v=9), 400)
    assert "q" in assert_error(search_raw(api, alice.token), 400)["error"]
    assert_error(search_raw(api, carol.token, "hello", chat_id=chat), 403)
    assert_error(search_raw(api, alice.token, "hello", chat_id=999_999_999), 404)
    for bad in ("0", "-1", "x", "1.5", "", "99999999999999999999"):
        assert_error(search_raw(api, alice.token, "hello", chat_id=bad), 400)
        assert_error(search_raw(api, alice.token, "hello", before_id=bad), 400)
    for bad in ("0", "101", "-3", "ten", ""):
        assert "limit" in assert_error(search_raw(api, alice.token, "hello", limit=bad), 400)["error"]
    assert ok_json(search_raw(api, alice.token, "hello", limit=100))["messages"] is not None
    assert_error(api.request("POST", "/search?q=hello", alice.token), 405)


def test_only_chats_you_are_a_member_of_now(api, new_user):
    owner, member, outsider = new_user("so"), new_user("sm"), new_user("sx")
    group = create_group(api, owner, [member], name="search group")
    secret = word("secret")
    in_group = send(api, owner.token, group, f"the {secret} plan")
    # A direct chat of two others is never searched either.
    direct = api.initiate(owner.token, target_id=outsider.id)["chat_id"]
    in_direct = send(api, outsider.token, direct, f"{secret} between us")
    assert ids(api, member.token, secret) == [in_group]
    assert ids(api, outsider.token, secret) == [in_direct]
    assert ids(api, owner.token, secret) == [in_direct, in_group]

    # Leaving takes the chat's messages out of the results at once, old and new alike.
    assert remove_member(api, member.token, group, member.id).status_code == 204
    assert ids(api, member.token, secret) == []
    after_leaving = send(api, owner.token, group, f"{secret} after they left")
    assert ids(api, member.token, secret) == []
    assert_error(search_raw(api, member.token, secret, chat_id=group), 403)
    # Removal by an owner too, and being added back brings the chat's history back.
    ok_json(add_members(api, owner.token, group, [outsider.id]))
    assert ids(api, outsider.token, secret) == [after_leaving, in_direct, in_group]
    assert remove_member(api, owner.token, group, outsider.id).status_code == 204
    assert ids(api, outsider.token, secret) == [in_direct]
    ok_json(add_members(api, owner.token, group, [member.id]))
    assert ids(api, member.token, secret) == [after_leaving, in_group]


def test_edits_reindex_and_deletes_vanish(api, new_user):
    alice, bob = new_user("sa"), new_user("sb")
    chat = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    old, new, kept = word("old"), word("new"), word("kept")
    edited = send(api, alice.token, chat, f"{kept} {old}")
    other = send(api, alice.token, chat, f"{kept} untouched")
    ok_json(api.patch(f"/chats/{chat}/messages/{edited}", alice.token, json={"content": f"{new} {kept}"}))
    assert ids(api, bob.token, old) == []
    page = search(api, bob.token, new)
    assert [m["id"] for m in page["messages"]] == [edited]
    assert page["messages"][0]["content"] == f"{new} {kept}" and page["messages"][0]["edited_at"] is not None
    # A word the old and new text share stays found (the index forgets the old text first).
    assert ids(api, bob.token, kept) == [other, edited]
    # Editing to the same text changes nothing in the results.
    ok_json(api.patch(f"/chats/{chat}/messages/{edited}", alice.token, json={"content": f"{new} {kept}"}))
    assert ids(api, bob.token, kept) == [other, edited]

    assert api.request("DELETE", f"/chats/{chat}/messages/{edited}", alice.token).status_code == 204
    assert ids(api, bob.token, new) == []
    assert ids(api, bob.token, kept) == [other]
    assert ids(api, alice.token, f"{kept}*") == [other]


def test_paging_by_before_id(api, new_user):
    alice, bob = new_user("sa"), new_user("sb")
    chat = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    page_word = word("page")
    sent = [send(api, alice.token if i % 2 else bob.token, chat, f"{page_word} number {i}") for i in range(45)]
    newest_first = sorted(sent, reverse=True)

    default = search(api, alice.token, page_word)
    assert [m["id"] for m in default["messages"]] == newest_first[:20]  # the default limit is 20
    assert default["next_before_id"] == newest_first[19]

    seen: list[int] = []
    before = None
    pages = 0
    while True:
        params = {"limit": 10} | ({"before_id": before} if before else {})
        page = search(api, bob.token, page_word, **params)
        pages += 1
        seen += [m["id"] for m in page["messages"]]
        before = page["next_before_id"]
        if before is None:
            break
        assert len(page["messages"]) == 10
    assert seen == newest_first and pages == 5
    # A page that ends exactly at the last match says so.
    exact = search(api, alice.token, page_word, limit=5, before_id=newest_first[39])
    assert [m["id"] for m in exact["messages"]] == newest_first[40:] and exact["next_before_id"] is None
    assert ids(api, alice.token, page_word, before_id=newest_first[-1]) == []
    assert ids(api, alice.token, page_word, before_id=newest_first[0] + 1_000_000, limit=1) == newest_first[:1]


def test_prefixes_and_phrases(api, new_user):
    alice, bob = new_user("sa"), new_user("sb")
    chat = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    stem = word("st")
    helps = send(api, alice.token, chat, f"{stem}ing out")
    stem_alone = send(api, alice.token, chat, f"just {stem}")
    inside = send(api, alice.token, chat, f"x{stem}y is not a word starting with it")
    assert ids(api, bob.token, f"{stem}*") == [stem_alone, helps]
    assert ids(api, bob.token, f"{stem[:4]}*") == [stem_alone, helps]
    assert ids(api, bob.token, stem) == [stem_alone]
    assert inside in ids(api, bob.token, f"x{stem}y")

    a, b, c = word("pa"), word("pb"), word("pc")
    ordered = send(api, alice.token, chat, f"{a} {b} {c}")
    reversed_ = send(api, alice.token, chat, f"{b} {a}")
    apart = send(api, alice.token, chat, f"{a} then {b}")
    assert ids(api, bob.token, f'"{a} {b}"') == [ordered]
    assert ids(api, bob.token, f'"{b} {a}"') == [reversed_]
    assert ids(api, bob.token, f"{a} {b}") == [apart, reversed_, ordered]
    assert ids(api, bob.token, f'"{a} {b[:5]}"*') == [ordered]
    assert ids(api, bob.token, f'"{a} {b}" {c}') == [ordered]
    # Punctuation inside a phrase or word is a word break, as in the indexed text.
    punct = send(api, alice.token, chat, f"{a}-{c}!")
    assert ids(api, bob.token, f"{a},{c}") == [punct]
    assert ids(api, bob.token, f'"{a}: {c}"') == [punct]


def test_unicode_and_diacritics(api, new_user):
    alice, bob = new_user("sa"), new_user("sb")
    chat = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    tag = word("u")
    composed = send(api, alice.token, chat, f"{tag} Crème brûlée à Zürich")
    decomposed = send(api, alice.token, chat, unicodedata.normalize("NFD", f"{tag} crème BRÛLÉE"))
    cyrillic = send(api, alice.token, chat, f"{tag} Привет, Мир")
    greek = send(api, alice.token, chat, f"{tag} Καλημέρα κόσμε")
    assert ids(api, bob.token, f"{tag} creme brulee") == [decomposed, composed]
    assert ids(api, bob.token, f"{tag} CRÈME") == [decomposed, composed]
    assert ids(api, bob.token, unicodedata.normalize("NFD", f"{tag} brûlée")) == [decomposed, composed]
    assert ids(api, bob.token, f"{tag} zurich") == [composed]
    assert ids(api, bob.token, f'"{tag} creme brulee"') == [decomposed, composed]
    assert ids(api, bob.token, f'{tag} "brulee creme"') == []
    assert ids(api, bob.token, f"{tag} привет") == [cyrillic]
    assert ids(api, bob.token, f"{tag} ПРИВ*") == [cyrillic]
    # Case folds in every script; unicode61 folds the diacritics of Latin letters only, so a
    # Greek tonos must be typed (README, "Search").
    assert ids(api, bob.token, f"{tag} ΚΑΛΗΜΈΡΑ") == [greek]
    assert ids(api, bob.token, f"{tag} καλημερα") == []
    # Stored text is untouched by the folding.
    page = search(api, bob.token, f"{tag} мир")
    assert page["messages"][0]["content"] == f"{tag} Привет, Мир"


def test_malformed_queries_are_400(api, new_user):
    alice, bob = new_user("sa"), new_user("sb")
    chat = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    send(api, alice.token, chat, "hello world")
    cases = {
        '"unclosed': "quote",
        'hello "world': "quote",
        '"': "quote",
        "": "word",
        "   ": "word",
        "!!! ???": "word",
        "🎉": "word",
        "*": "*",
        "hello *": "*",
        "h*": "2 letters",
        '"hello w"*': "2 letters",
        "he*llo": "*",
        "**hello": "*",
        '"hello"world': "space",
        "x" * 257: "256",
        " ".join(f"t{i}" for i in range(17)): "16",
    }
    for q, hint in cases.items():
        body = assert_error(search_raw(api, alice.token, q), 400)
        assert hint in body["error"], (q, body)


def test_fts5_syntax_is_only_text(api, new_user):
    """Operators, column filters and NEAR are words; none widens the search past the caller's
    chats or turns into a 500."""
    alice, bob, eve = new_user("sa"), new_user("sb"), new_user("se")
    chat = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    eves = api.initiate(eve.token, target_id=bob.id)["chat_id"]
    apple, pear = word("apple"), word("pear")
    only_apple = send(api, alice.token, chat, f"{apple} pie")
    only_pear = send(api, alice.token, chat, f"{pear} tart")
    send(api, bob.token, eves, f"{apple} for eve")
    with_or = send(api, alice.token, chat, f"{apple} or {pear}")
    assert ids(api, alice.token, f"{apple} OR {pear}") == [with_or]
    assert ids(api, alice.token, f"{apple} NOT {pear}") == []
    assert ids(api, alice.token, f"{apple} AND") == []
    assert ids(api, alice.token, f"NEAR({apple} {pear})") == []
    assert ids(api, alice.token, f"{apple} -{pear}") == [with_or]
    assert ids(api, alice.token, f"^{apple}") == [with_or, only_apple]
    assert ids(api, alice.token, f"({apple})") == [with_or, only_apple]
    assert ids(api, alice.token, f"{{body}}:{pear}") == []
    assert ids(api, alice.token, f"body:{pear}") == []
    # The chat column cannot be reached from a query: Eve's chat stays hers and Bob's.
    for q in (f"chat:c{eves} {apple}", f"chat : c{eves}", f"c{eves}", f"{{chat}}: c{eves} OR {apple}"):
        assert ids(api, alice.token, q) == [], q
    assert ids(api, alice.token, apple) == [with_or, only_apple]
    assert only_pear in ids(api, alice.token, pear)
    for q in ('"', "a'b", "\\", "%", "'; DROP TABLE messages; --", "\x00hello", "hel\u0301*", "NEAR/2", "AND OR NOT"):
        response = search_raw(api, alice.token, q)
        assert response.status_code in (200, 400), (q, response.status_code, response.text)
        assert_keys(response.json(), SEARCH_KEYS if response.status_code == 200 else {"error"})
