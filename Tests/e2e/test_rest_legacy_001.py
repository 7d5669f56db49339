"""Seed 001: POST /send and GET /history/:username, and how they meet the seed-000 API."""

import pytest

from helpers import assert_error, assert_history_entry, ok_json, unique_username


def history(api, token, username):
    entries = ok_json(api.get(f"/history/{username}", token))
    assert isinstance(entries, list)
    for entry in entries:
        assert_history_entry(entry)
    return entries


def test_send_and_history_both_directions(api, new_user):
    alice = new_user("alice")
    bob = new_user("bob")
    response = api.post("/send", alice.token, json={"receiver_username": bob.username, "content": "Hello"})
    assert ok_json(response) == {"status": "sent"}
    assert ok_json(api.post("/send", bob.token, json={"receiver_username": alice.username, "content": "Hi back"})) == {
        "status": "sent"
    }
    seen_by_alice = history(api, alice.token, bob.username)
    seen_by_bob = history(api, bob.token, alice.username)
    assert seen_by_alice == seen_by_bob
    assert [(e["sender_id"], e["receiver_id"], e["content"]) for e in seen_by_alice] == [
        (alice.id, bob.id, "Hello"),
        (bob.id, alice.id, "Hi back"),
    ]
    assert seen_by_alice[0]["id"] < seen_by_alice[1]["id"]


def test_send_lands_in_the_direct_chat(api, new_user):
    alice = new_user()
    bob = new_user()
    ok_json(api.post("/send", alice.token, json={"receiver_username": bob.username, "content": "via 001"}))
    # /send created the direct chat; the seed-000 API sees it and the message.
    result = api.initiate(bob.token, target_username=alice.username)
    assert result["status"] == "exists"
    messages = api.messages(bob.token, result["chat_id"])
    assert len(messages) == 1
    entry = history(api, bob.token, alice.username)[0]
    assert messages[0]["id"] == entry["id"]
    assert messages[0]["sender_id"] == alice.id
    assert messages[0]["content"] == "via 001"
    assert messages[0]["timestamp"] == entry["timestamp"]
    assert messages[0]["files"] == []
    # And the other way: a seed-000 send shows in the 001 history.
    sent = api.send(bob.token, result["chat_id"], "via 000")
    assert history(api, alice.token, bob.username)[-1] == {
        "id": sent["id"],
        "sender_id": bob.id,
        "receiver_id": alice.id,
        "content": "via 000",
        "timestamp": sent["timestamp"],
    }


def test_send_uses_an_existing_direct_chat(api, new_user):
    alice = new_user()
    bob = new_user()
    chat_id = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    ok_json(api.post("/send", bob.token, json={"receiver_username": alice.username.upper(), "content": "x"}))
    assert [m["content"] for m in api.messages(alice.token, chat_id)] == ["x"]
    assert [c["id"] for c in ok_json(api.get("/chats", alice.token))] == [chat_id]


def test_history_without_messages_is_empty(api, new_user):
    alice = new_user()
    bob = new_user()
    assert history(api, alice.token, bob.username) == []


def test_history_leaves_out_group_messages(api, new_user):
    alice = new_user()
    bob = new_user()
    group = ok_json(api.post("/chats", alice.token, json={"name": "g", "participants": [bob.id]}))
    api.send(alice.token, group["id"], "in the group")
    ok_json(api.post("/send", alice.token, json={"receiver_username": bob.username, "content": "direct"}))
    assert [e["content"] for e in history(api, bob.token, alice.username)] == ["direct"]


def test_history_with_unknown_user_is_404(api, new_user):
    me = new_user()
    assert_error(api.get(f"/history/{unique_username('ghost')}", me.token), 404)


@pytest.mark.parametrize("segment", ["1abc", "a" * 5000, "a%00b", "%FF"])
def test_history_bad_username_is_400(api, new_user, segment):
    me = new_user()
    assert_error(api.get(f"/history/{segment}", me.token), 400)


def test_send_to_unknown_user_is_404_and_writes_nothing(api, new_user):
    me = new_user()
    ghost = unique_username("ghost")
    assert_error(api.post("/send", me.token, json={"receiver_username": ghost, "content": "x"}), 404)
    assert ok_json(api.get("/chats", me.token)) == []
    # The ghost was not created either.
    assert_error(api.get(f"/users/{ghost}", me.token), 404)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"receiver_username": "RECEIVER"},
        {"content": "x"},
        {"receiver_username": "RECEIVER", "content": ""},
        {"receiver_username": "RECEIVER", "content": None},
        {"receiver_username": "RECEIVER", "content": 5},
        {"receiver_username": 5, "content": "x"},
        {"receiver_username": "", "content": "x"},
        {"receiver_username": "1abc", "content": "x"},
        {"receiver_username": "a" * 5000, "content": "x"},
    ],
)
def test_send_bad_bodies_are_400_and_write_nothing(api, new_user, body):
    me = new_user()
    receiver = new_user("recv")
    body = {k: (receiver.username if v == "RECEIVER" else v) for k, v in body.items()}
    assert_error(api.post("/send", me.token, json=body), 400)
    assert history(api, me.token, receiver.username) == []
    assert ok_json(api.get("/chats", me.token)) == []
