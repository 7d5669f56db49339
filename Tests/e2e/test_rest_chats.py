"""Seed 000 and ours: direct chats (initiate), group chats, listing, membership."""

import threading

import pytest
import requests

from helpers import (
    Api,
    assert_chat,
    assert_error,
    assert_keys,
    ok_json,
    unique_username,
)


def chats_of(api, token):
    chats = ok_json(api.get("/chats", token))
    assert isinstance(chats, list)
    for chat in chats:
        assert_chat(chat)
    return chats


def test_initiate_by_username_creates_then_exists(api, new_user):
    alice = new_user("alice")
    bob = new_user("bob")
    first = api.initiate(alice.token, target_username=bob.username)
    assert_keys(first, {"chat_id", "status"})
    assert first["status"] == "created"
    assert isinstance(first["chat_id"], int) and first["chat_id"] > 0
    again = api.initiate(alice.token, target_username=bob.username)
    assert again == {"chat_id": first["chat_id"], "status": "exists"}
    # From the other side, by id, and with another spelling of the name: the same chat.
    assert api.initiate(bob.token, target_username=alice.username) == again
    assert api.initiate(bob.token, target_id=alice.id) == again
    assert api.initiate(alice.token, target_id=bob.id) == again
    assert api.initiate(alice.token, target_username=bob.username.upper()) == again


def test_initiate_by_id_creates(api, new_user):
    alice = new_user()
    carol = new_user()
    result = api.initiate(alice.token, target_id=carol.id)
    assert result["status"] == "created"
    assert api.initiate(carol.token, target_username=alice.username) == {
        "chat_id": result["chat_id"],
        "status": "exists",
    }


def test_initiate_with_yourself(api, new_user):
    me = new_user("self")
    result = api.initiate(me.token, target_username=me.username)
    assert result["status"] == "created"
    assert api.initiate(me.token, target_id=me.id) == {"chat_id": result["chat_id"], "status": "exists"}
    chat = ok_json(api.get(f"/chats/{result['chat_id']}", me.token))
    assert_chat(chat)
    assert chat["chat_type"] == "direct"
    assert chat["participants"] == [me.id]


def test_initiate_unknown_target_is_404(api, new_user):
    me = new_user()
    assert_error(api.post("/chats/initiate", me.token, json={"target_username": unique_username("ghost")}), 404)
    assert_error(api.post("/chats/initiate", me.token, json={"target_id": 987654321}), 404)
    assert chats_of(api, me.token) == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"target_username": ""},
        {"target_username": 5},
        {"target_username": None},
        {"target_username": "1abc"},
        {"target_username": "a" * 5000},
        {"target_username": "bad name"},
        {"target_username": "a\u0000b"},
        {"target_id": "5"},
        {"target_id": 1.5},
        {"target_id": True},
        {"target_id": 0},
        {"target_id": -3},
        {"target_id": 99999999999999999999},
        {"target_id": None},
        {"target_id": [1]},
    ],
)
def test_initiate_bad_bodies_are_400(api, new_user, body):
    me = new_user()
    assert_error(api.post("/chats/initiate", me.token, json=body), 400)
    assert chats_of(api, me.token) == []


def test_list_and_get_direct_chat(api, new_user):
    alice = new_user("alice")
    bob = new_user("bob")
    chat_id = api.initiate(alice.token, target_username=bob.username)["chat_id"]
    listed = chats_of(api, alice.token)
    assert [chat["id"] for chat in listed] == [chat_id]
    chat = listed[0]
    assert chat["chat_type"] == "direct"
    assert chat["name"] is None
    assert sorted(chat["participants"]) == sorted([alice.id, bob.id])
    # Both members see the same object, also through GET /chats/:id.
    assert chats_of(api, bob.token) == [chat]
    assert ok_json(api.get(f"/chats/{chat_id}", alice.token)) == chat
    assert ok_json(api.get(f"/chats/{chat_id}", bob.token)) == chat


def test_new_user_has_no_chats(api, new_user):
    assert chats_of(api, new_user().token) == []


def test_non_member_gets_403_and_unknown_chat_404(api, new_user):
    alice = new_user()
    bob = new_user()
    mallory = new_user("mallory")
    chat_id = api.initiate(alice.token, target_username=bob.username)["chat_id"]
    assert_error(api.get(f"/chats/{chat_id}", mallory.token), 403)
    assert_error(api.get(f"/chats/{chat_id}/messages", mallory.token), 403)
    assert_error(api.post(f"/chats/{chat_id}/messages", mallory.token, json={"content": "hi"}), 403)
    assert_error(api.get("/chats/987654321", mallory.token), 404)
    assert_error(api.get("/chats/987654321/messages", mallory.token), 404)
    assert_error(api.post("/chats/987654321/messages", mallory.token, json={"content": "hi"}), 404)
    # Nothing was written by the refused send.
    assert api.messages(alice.token, chat_id) == []


@pytest.mark.parametrize("segment", ["0", "-1", "99999999999999999999", "1.5", "abc", "%00", "1e3"])
def test_bad_chat_ids_are_400(api, new_user, segment):
    me = new_user()
    for path in (f"/chats/{segment}", f"/chats/{segment}/messages"):
        assert_error(api.get(path, me.token), 400, 404)
    assert_error(api.post(f"/chats/{segment}/messages", me.token, json={"content": "x"}), 400, 404)


@pytest.mark.parametrize("segment", ["0", "-1", "99999999999999999999"])
def test_numeric_bad_chat_ids_are_400(api, new_user, segment):
    me = new_user()
    assert_error(api.get(f"/chats/{segment}", me.token), 400)
    assert_error(api.get(f"/chats/{segment}/messages", me.token), 400)
    assert_error(api.post(f"/chats/{segment}/messages", me.token, json={"content": "x"}), 400)


def test_create_group_chat(api, new_user):
    owner = new_user("owner")
    bob = new_user("bob")
    carol = new_user("carol")
    outsider = new_user("out")
    chat = ok_json(api.post("/chats", owner.token, json={"name": "General", "participants": [bob.id, carol.id]}))
    assert_chat(chat)
    assert chat["chat_type"] == "group"
    assert chat["name"] == "General"
    assert sorted(chat["participants"]) == sorted([owner.id, bob.id, carol.id])
    for member in (owner, bob, carol):
        assert chat in chats_of(api, member.token)
        assert ok_json(api.get(f"/chats/{chat['id']}", member.token)) == chat
    assert chats_of(api, outsider.token) == []
    assert_error(api.get(f"/chats/{chat['id']}", outsider.token), 403)
    # A group never counts as the direct chat of a pair.
    assert api.initiate(owner.token, target_id=bob.id)["status"] == "created"


def test_group_participants_are_deduplicated_and_include_the_creator(api, new_user):
    owner = new_user()
    bob = new_user()
    chat = ok_json(api.post("/chats", owner.token, json={"name": "dups", "participants": [bob.id, bob.id, owner.id]}))
    assert sorted(chat["participants"]) == sorted([owner.id, bob.id])


def test_group_messages(api, new_user):
    owner = new_user()
    bob = new_user()
    chat = ok_json(api.post("/chats", owner.token, json={"name": "Team", "participants": [bob.id]}))
    sent = api.send(bob.token, chat["id"], "hello team")
    assert sent["chat_id"] == chat["id"] and sent["sender_id"] == bob.id
    assert api.messages(owner.token, chat["id"]) == [sent]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "participants": "1"},
        {"name": "x", "participants": [1.5]},
        {"name": "x", "participants": ["1"]},
        {"name": "x", "participants": [None]},
        {"name": "x", "participants": [0]},
        {"name": "x", "participants": [-1]},
        {"name": "x", "participants": [99999999999999999999]},
        {"name": "x", "participants": {"id": 1}},
        {"name": 5, "participants": []},
        {"name": ["x"], "participants": []},
        {"name": "x" * 10000, "participants": []},
    ],
)
def test_create_group_bad_bodies_are_400(api, new_user, body):
    me = new_user()
    assert_error(api.post("/chats", me.token, json=body), 400)
    assert chats_of(api, me.token) == []


def test_create_group_with_unknown_participant_writes_nothing(api, new_user):
    me = new_user()
    bob = new_user()
    assert_error(api.post("/chats", me.token, json={"name": "x", "participants": [bob.id, 987654321]}), 400, 404)
    assert chats_of(api, me.token) == []
    assert chats_of(api, bob.token) == []


def test_concurrent_initiates_make_one_chat(api, new_user):
    alice = new_user("race")
    bob = new_user("race")
    barrier = threading.Barrier(20)
    results, errors = [], []

    def run(index):
        client = Api(api.base_url)  # one session per thread: requests.Session is not thread-safe
        token, target = (alice.token, bob.username) if index % 2 == 0 else (bob.token, alice.username)
        try:
            barrier.wait(timeout=10)
            response = client.post("/chats/initiate", token, json={"target_username": target})
            results.append((response.status_code, response.json()))
        except (requests.RequestException, ValueError, threading.BrokenBarrierError) as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == 20
    assert all(status == 200 for status, _ in results), results
    chat_ids = {body["chat_id"] for _, body in results}
    statuses = [body["status"] for _, body in results]
    assert len(chat_ids) == 1, results
    assert statuses.count("created") == 1, statuses
    assert statuses.count("exists") == 19, statuses
    assert [chat["id"] for chat in chats_of(api, alice.token)] == list(chat_ids)
