"""Seed 000 messages and our POST /chats/:id/messages: shapes, order, paging, nonces."""

import pytest

from helpers import assert_error, assert_message, decode_token, ok_json


def test_send_and_read_messages(api, pair):
    alice, bob, chat_id = pair
    assert api.messages(alice.token, chat_id) == []
    first = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token, json={"content": "Hello!"}))
    assert_message(first)
    assert first["chat_id"] == chat_id
    assert first["sender_id"] == alice.id
    assert first["content"] == "Hello!"
    assert first["files"] == []
    second = api.send(bob.token, chat_id, "Hi Alice ✨")
    assert second["id"] > first["id"]
    assert second["sender_id"] == bob.id
    # Both members read the same history, ascending by id, exactly what the sends returned.
    page = ok_json(api.get(f"/chats/{chat_id}/messages", bob.token))
    assert page == {"chat_id": chat_id, "messages": [first, second]}
    assert api.messages(alice.token, chat_id) == [first, second]


def test_message_content_is_kept_exactly(api, pair):
    alice, _, chat_id = pair
    texts = ["  spaces  ", "line1\nline2\ttab", "quote \" backslash \\ slash /", "emoji 🧪 and 日本語", "<b>html</b>"]
    sent = [api.send(alice.token, chat_id, text) for text in texts]
    assert [message["content"] for message in sent] == texts
    assert [message["content"] for message in api.messages(alice.token, chat_id)] == texts


def test_paging(api, pair):
    alice, _, chat_id = pair
    sent = [api.send(alice.token, chat_id, f"m{i}") for i in range(12)]
    ids = [message["id"] for message in sent]
    assert [m["id"] for m in api.messages(alice.token, chat_id)] == ids

    # after_id: the next `limit` messages after it, ascending.
    assert [m["id"] for m in api.messages(alice.token, chat_id, f"?after_id={ids[3]}&limit=3")] == ids[4:7]
    assert [m["id"] for m in api.messages(alice.token, chat_id, f"?after_id={ids[3]}")] == ids[4:]
    assert api.messages(alice.token, chat_id, f"?after_id={ids[-1]}") == []
    # before_id: the `limit` messages just before it, ascending.
    assert [m["id"] for m in api.messages(alice.token, chat_id, f"?before_id={ids[8]}&limit=3")] == ids[5:8]
    assert [m["id"] for m in api.messages(alice.token, chat_id, f"?before_id={ids[8]}")] == ids[:8]
    assert api.messages(alice.token, chat_id, f"?before_id={ids[0]}") == []
    # Both: the window between.
    assert [m["id"] for m in api.messages(alice.token, chat_id, f"?after_id={ids[2]}&before_id={ids[7]}")] == ids[3:7]
    # limit alone: a contiguous window of `limit` messages, ascending.
    window = [m["id"] for m in api.messages(alice.token, chat_id, "?limit=5")]
    assert window in (ids[:5], ids[-5:]), window
    assert [m["id"] for m in api.messages(alice.token, chat_id, "?limit=1000")] == ids


def test_default_page_is_bounded_to_100(api, pair):
    alice, _, chat_id = pair
    for i in range(105):
        api.send(alice.token, chat_id, f"n{i}")
    messages = api.messages(alice.token, chat_id)
    assert len(messages) == 100
    ids = [m["id"] for m in messages]
    assert ids == sorted(ids)
    assert len(api.messages(alice.token, chat_id, "?limit=1000")) == 105


@pytest.mark.parametrize(
    "query",
    [
        "?limit=0",
        "?limit=-1",
        "?limit=1001",
        "?limit=abc",
        "?limit=1.5",
        "?limit=",
        "?limit=99999999999999999999",
        "?limit=%00",
        "?before_id=abc",
        "?before_id=-1",
        "?before_id=99999999999999999999",
        "?after_id=xyz",
        "?after_id=-5",
        "?after_id=99999999999999999999",
        "?after_id=1e3",
    ],
)
def test_bad_paging_values_are_400(api, pair, query):
    alice, _, chat_id = pair
    assert_error(api.get(f"/chats/{chat_id}/messages{query}", alice.token), 400)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"content": ""},
        {"content": None},
        {"content": 5},
        {"content": ["x"]},
        {"content": "x", "files": "nope"},
        {"content": "x", "files": [1]},
        {"content": "x", "files": [{"url": "/uploads/00000000-0000-0000-0000-000000000000.png"}]},
        {"content": "x", "files": [{"url": "https://example.com/evil.png"}]},
        {"content": "x", "files": [{"url": "/uploads/../messenger.db"}]},
        {"content": "x", "nonce": 5},
        {"content": "x", "nonce": "n" * 65},
        {"content": "x" * 1_000_000},
    ],
)
def test_bad_message_bodies_write_nothing(api, pair, body):
    alice, _, chat_id = pair
    before = api.messages(alice.token, chat_id)
    assert_error(api.post(f"/chats/{chat_id}/messages", alice.token, json=body), 400, 413)
    assert api.messages(alice.token, chat_id) == before


def test_nonce_stores_a_send_once(api, pair):
    alice, bob, chat_id = pair
    body = {"content": "once", "nonce": "n-" + str(decode_token(alice.token)["iat"]) + "-a"}
    first = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token, json=body))
    again = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token, json=body))
    assert_message(first)
    assert again == first
    assert api.messages(bob.token, chat_id) == [first]
    # Another sender may use the same nonce.
    theirs = ok_json(api.post(f"/chats/{chat_id}/messages", bob.token, json=body))
    assert theirs["id"] != first["id"]
    assert [m["id"] for m in api.messages(bob.token, chat_id)] == [first["id"], theirs["id"]]


def test_messages_of_one_chat_stay_in_it(api, new_user):
    alice = new_user()
    bob = new_user()
    carol = new_user()
    with_bob = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    with_carol = api.initiate(alice.token, target_id=carol.id)["chat_id"]
    to_bob = api.send(alice.token, with_bob, "for bob")
    to_carol = api.send(alice.token, with_carol, "for carol")
    assert api.messages(bob.token, with_bob) == [to_bob]
    assert api.messages(carol.token, with_carol) == [to_carol]
    assert_error(api.get(f"/chats/{with_carol}/messages", bob.token), 403)
