"""Issue 10: seed shapes stay exact (invariant 3) while protocol 2 exists beside them.

Every seed REST body and every protocol-1 WebSocket frame has exactly the seed's fields —
without `?v=2` (or with `?v=1`) — and `?v=2` answers the full shapes of DESIGN ("The full
messenger"): message + reply_to_id/edited_at/reactions, chat + last_message/unread_count/
last_read_id/my_role, file with id/type/created_at. The upload receipt is exactly seed 000's
`{url, filename, mime_type, size_bytes}` without `?v=2`. Any other `v` is 400."""

from __future__ import annotations

import time

import pytest

from helpers import (
    CHAT_KEYS,
    FILE_KEYS,
    HISTORY_KEYS,
    INITIATE_KEYS,
    MESSAGE_KEYS,
    MESSAGES_PAGE_KEYS,
    USER_KEYS,
    assert_chat,
    assert_error,
    assert_history_entry,
    assert_keys,
    assert_message,
    assert_user,
    ok_json,
)
from stream_helpers import (
    MESSAGE_V2_KEYS,
    SEED_UPLOAD_KEYS,
    assert_chat_v2,
    assert_file_v2,
    assert_message_v2,
    query,
)
from ws_helpers import Client, assert_ready, is_op, run


def seed_part(full: dict, keys: set[str]) -> dict:
    return {key: full[key] for key in keys}


def upload_seed(api, token: str, data: bytes = b"\x89PNG-seed", name: str = "seed.png") -> dict:
    return ok_json(api.post("/upload", token, files={"file": (name, data, "image/png")}))


# --- REST: users and login ------------------------------------------------------------------

def test_login_and_user_bodies_are_exactly_seed(api, new_user):
    alice = new_user("shu")
    body = ok_json(api.post("/login", json={"username": alice.username}))
    assert_keys(body, {"token"})
    for v in ("", "?v=1", "?v=2"):
        body = ok_json(api.post("/login" + v, json={"username": alice.username}))
        assert_keys(body, {"token"})
        by_name = ok_json(api.get(f"/users/{alice.username}{v}", alice.token))
        assert_user(by_name)
        assert by_name["id"] == alice.id
        by_id = ok_json(api.get(f"/users/{alice.id}{v}", alice.token))
        assert by_id == by_name
        sep = "&" if v else "?"
        found = ok_json(api.get(f"/users{v}{sep}username={alice.username}", alice.token))
        assert isinstance(found, list) and found, found
        for user in found:
            assert_user(user)
        assert by_name in found
    patched = ok_json(api.patch("/users/me", alice.token, json={"display_name": "Alice S", "bio": "seed"}))
    assert_user(patched)
    assert (patched["display_name"], patched["bio"]) == ("Alice S", "seed")
    patched2 = ok_json(api.patch("/users/me?v=2", alice.token, json={"bio": "v2"}))
    assert_keys(patched2, USER_KEYS)
    assert patched2["bio"] == "v2" and patched2["display_name"] == "Alice S"


# --- REST: chats ----------------------------------------------------------------------------

def test_chat_bodies_seed_without_v_full_with_v2(api, new_user):
    alice, bob, carol = new_user("shca"), new_user("shcb"), new_user("shcc")
    initiated = ok_json(api.post("/chats/initiate", alice.token, json={"target_username": bob.username}))
    assert_keys(initiated, INITIATE_KEYS)
    assert initiated["status"] == "created"
    again = ok_json(api.post("/chats/initiate?v=2", bob.token, json={"target_id": alice.id}))
    assert_keys(again, INITIATE_KEYS)
    assert again == {"chat_id": initiated["chat_id"], "status": "exists"}
    direct = initiated["chat_id"]

    group = ok_json(api.post("/chats", alice.token, json={"name": "Seed group", "participants": [bob.id, carol.id]}))
    assert_chat(group)
    assert group["chat_type"] == "group" and set(group["participants"]) == {alice.id, bob.id, carol.id}
    group2 = ok_json(api.post("/chats?v=2", alice.token, json={"name": "Full group", "participants": [bob.id]}))
    assert_chat_v2(group2)
    assert group2["my_role"] == "owner" and group2["last_message"] is None
    assert set(group2["participants"]) == {alice.id, bob.id}

    # Seed: exactly the seed chat fields, list and single.
    for v in ("", "?v=1"):
        listed = ok_json(api.get("/chats" + v, bob.token))
        assert isinstance(listed, list)
        for chat in listed:
            assert_chat(chat)
        assert {c["id"] for c in listed} == {direct, group["id"], group2["id"]}
        for chat in listed:
            assert ok_json(api.get(f"/chats/{chat['id']}{v}", bob.token)) == chat
    seed_group = ok_json(api.get(f"/chats/{group['id']}", bob.token))
    assert seed_group == group

    # Full: seed fields with the same values, plus the protocol-2 ones, as the caller sees it.
    listed_v2 = ok_json(api.get("/chats?v=2", bob.token))
    for chat in listed_v2:
        assert_chat_v2(chat)
    by_id = {c["id"]: c for c in listed_v2}
    assert set(by_id) == {direct, group["id"], group2["id"]}
    seed_list = {c["id"]: c for c in ok_json(api.get("/chats", bob.token))}
    for chat_id, chat in by_id.items():
        assert seed_part(chat, CHAT_KEYS) == seed_list[chat_id]
        assert chat["my_role"] == "member", chat  # bob created none of them
        assert ok_json(api.get(f"/chats/{chat_id}?v=2", bob.token)) == chat
    assert ok_json(api.get(f"/chats/{group['id']}?v=2", alice.token))["my_role"] == "owner"
    assert ok_json(api.get(f"/chats/{direct}?v=2", alice.token))["my_role"] == "member"
    assert ok_json(api.get(f"/chats/{direct}?v=2", bob.token))["my_role"] == "member"


def _three_chats_with_activity(api, new_user, pause: float):
    alice, bob = new_user("shoa"), new_user("shob")
    first = ok_json(api.post("/chats", alice.token, json={"name": "one", "participants": [bob.id]}))["id"]
    second = ok_json(api.post("/chats", alice.token, json={"name": "two", "participants": [bob.id]}))["id"]
    third = ok_json(api.post("/chats", alice.token, json={"name": "three", "participants": [bob.id]}))["id"]
    time.sleep(pause)
    api.send(alice.token, second, "in two")
    time.sleep(pause)
    api.send(alice.token, third, "in three")
    time.sleep(pause)
    last = api.send(bob.token, first, "in one, last")
    return bob, (first, second, third), last


def test_chat_list_v2_is_newest_activity_first_with_last_message(api, new_user):
    # Activity a second apart, so that even timestamps in whole seconds tell it apart.
    bob, (first, second, third), last = _three_chats_with_activity(api, new_user, pause=1.1)
    listed = ok_json(api.get("/chats?v=2", bob.token))
    assert [c["id"] for c in listed] == [first, third, second]
    top = listed[0]
    assert_chat_v2(top)
    assert_message_v2(top["last_message"])
    assert seed_part(top["last_message"], MESSAGE_KEYS) == last
    assert top["last_message"]["content"] == "in one, last"
    # Without v the seed list is unchanged (its own order, seed fields).
    for chat in ok_json(api.get("/chats", bob.token)):
        assert_chat(chat)


def test_chat_list_v2_orders_activity_within_the_same_second(api, new_user):
    """Newest activity first also when everything happened within one second: the message
    sent last makes its chat the first, whatever the chat ids."""
    bob, (first, second, third), _ = _three_chats_with_activity(api, new_user, pause=0)
    listed = ok_json(api.get("/chats?v=2", bob.token))
    assert [c["id"] for c in listed] == [first, third, second]


def test_chat_list_v2_pages_in_the_same_order(api, new_user):
    """`limit` and `before_chat_id` walk the same order as the whole list, each chat once."""
    alice, bob = new_user("shpa"), new_user("shpb")
    chats = [ok_json(api.post("/chats", alice.token, json={"name": f"p{i}", "participants": [bob.id]}))["id"]
             for i in range(7)]
    for chat_id in chats[2:5]:
        api.send(alice.token, chat_id, f"in {chat_id}")
    whole = [c["id"] for c in ok_json(api.get("/chats?v=2", bob.token))]
    assert sorted(whole) == sorted(chats)
    assert whole[:3] == [chats[4], chats[3], chats[2]]
    walked, cursor = [], None
    while True:
        page = ok_json(api.get("/chats?v=2&limit=3" + (f"&before_chat_id={cursor}" if cursor else ""), bob.token))
        assert len(page) <= 3
        if not page:
            break
        for chat in page:
            assert_chat_v2(chat)
        walked += [c["id"] for c in page]
        cursor = page[-1]["id"]
    assert walked == whole
    for bad in ("limit=0", "limit=1001", "limit=x", "before_chat_id=0", "before_chat_id=abc",
                "before_chat_id=999999999"):
        answer = api.get(f"/chats?v=2&{bad}", bob.token)
        assert answer.status_code == 400 and "error" in answer.json(), (bad, answer.text)


def test_chat_list_v2_moves_a_chat_back_when_its_last_message_is_deleted(api, new_user):
    alice, bob = new_user("shda"), new_user("shdb")
    older = ok_json(api.post("/chats", alice.token, json={"name": "older", "participants": [bob.id]}))["id"]
    newer = ok_json(api.post("/chats", alice.token, json={"name": "newer", "participants": [bob.id]}))["id"]
    kept = api.send(alice.token, older, "kept")
    time.sleep(1.1)
    api.send(alice.token, newer, "newer one")
    time.sleep(1.1)
    gone = api.send(alice.token, older, "to be deleted")
    listed = ok_json(api.get("/chats?v=2", bob.token))
    assert [c["id"] for c in listed] == [older, newer]
    assert listed[0]["last_message"]["id"] == gone["id"]
    assert api.request("DELETE", f"/chats/{older}/messages/{gone['id']}", alice.token).status_code == 204
    listed = ok_json(api.get("/chats?v=2", bob.token))
    assert [c["id"] for c in listed] == [newer, older]
    assert listed[1]["last_message"]["id"] == kept["id"]
    assert listed[1]["unread_count"] == 1


# --- REST: messages, files, 001 -------------------------------------------------------------

def test_message_bodies_seed_without_v_full_with_v2(api, pair):
    alice, bob, chat_id = pair
    receipt = upload_seed(api, alice.token)
    assert_keys(receipt, SEED_UPLOAD_KEYS)

    sent = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token, json={"content": "seed", "files": [receipt]}))
    assert_message(sent)
    assert len(sent["files"]) == 1
    assert_keys(sent["files"][0], FILE_KEYS)
    assert sent["files"][0]["url"] == receipt["url"]

    sent_v1 = ok_json(api.post(f"/chats/{chat_id}/messages?v=1", bob.token, json={"content": "seed v1"}))
    assert_message(sent_v1)

    sent_v2 = ok_json(api.post(f"/chats/{chat_id}/messages?v=2", alice.token, json={"content": "full"}))
    assert_message_v2(sent_v2)
    assert (sent_v2["reply_to_id"], sent_v2["edited_at"], sent_v2["reactions"]) == (None, None, [])

    for v in ("", "?v=1"):
        page = ok_json(api.get(f"/chats/{chat_id}/messages{v}", bob.token))
        assert_keys(page, MESSAGES_PAGE_KEYS)
        for message in page["messages"]:
            assert_message(message)
        assert page["messages"] == [sent, sent_v1, seed_part(sent_v2, MESSAGE_KEYS)]

    page = ok_json(api.get(f"/chats/{chat_id}/messages?v=2", bob.token))
    assert_keys(page, MESSAGES_PAGE_KEYS)
    for message in page["messages"]:
        assert_message_v2(message)
        assert (message["reply_to_id"], message["edited_at"], message["reactions"]) == (None, None, [])
    assert [seed_part(m, MESSAGE_KEYS) for m in page["messages"]] == [sent, sent_v1, seed_part(sent_v2, MESSAGE_KEYS)]
    assert page["messages"][-1] == sent_v2
    assert_file_v2(page["messages"][0]["files"][0])
    # Paging parameters combine with v.
    tail = ok_json(api.get(f"/chats/{chat_id}/messages?after_id={sent['id']}&v=2", bob.token))
    assert [m["id"] for m in tail["messages"]] == [sent_v1["id"], sent_v2["id"]]
    for message in tail["messages"]:
        assert_keys(message, MESSAGE_V2_KEYS)


def test_upload_receipt_is_exactly_seed_000_and_full_with_v2(api, stack, new_user):
    user = new_user("shup")
    for v in ("", "?v=1"):
        receipt = ok_json(api.post("/upload" + v, user.token, files={"file": ("a.png", b"\x89PNG-a", "image/png")}))
        assert_keys(receipt, SEED_UPLOAD_KEYS)
        assert receipt["filename"] == "a.png" and receipt["mime_type"] == "image/png" and receipt["size_bytes"] == 6
        assert receipt["url"].startswith("/uploads/")
    full = ok_json(api.post("/upload?v=2", user.token, files={"file": ("b.txt", b"hello", "text/plain")}))
    assert_file_v2(full)
    assert full["filename"] == "b.txt" and full["size_bytes"] == 5
    # Either receipt attaches by its url, over REST and over the socket.
    chat_id = api.initiate(user.token, target_username=user.username)["chat_id"]
    message = ok_json(api.post(f"/chats/{chat_id}/messages", user.token, json={"content": "x", "files": [receipt]}))
    assert [f["url"] for f in message["files"]] == [receipt["url"]]
    for item in message["files"]:
        assert_keys(item, FILE_KEYS)

    async def scenario():
        async with await Client.open(stack, user) as ws:
            await ws.send({"chat_id": chat_id, "content": "ws", "files": [{"url": full["url"]}], "nonce": "shup-1"})
            echo = await ws.recv_message()
            assert [f["url"] for f in echo["files"]] == [full["url"]]
            assert echo["files"][0] == {k: full[k] for k in FILE_KEYS}
            await ws.recv_ack("shup-1")

    run(scenario())


def test_seed_001_bodies_are_exact_with_and_without_v2(api, new_user):
    alice, bob = new_user("sh1a"), new_user("sh1b")
    for v in ("", "?v=1", "?v=2"):
        body = ok_json(api.post("/send" + v, alice.token, json={"receiver_username": bob.username, "content": f"hi{v}"}))
        assert body == {"status": "sent"}
    for v in ("", "?v=1", "?v=2"):
        history = ok_json(api.get(f"/history/{alice.username}{v}", bob.token))
        assert isinstance(history, list) and len(history) == 3
        for entry in history:
            assert_history_entry(entry)
            assert_keys(entry, HISTORY_KEYS)
            assert (entry["sender_id"], entry["receiver_id"]) == (alice.id, bob.id)
        assert [e["content"] for e in history] == ["hi", "hi?v=1", "hi?v=2"]


@pytest.mark.parametrize("v", ["3", "0", "abc", "", "2.0", "-1"])
def test_other_v_values_are_400_on_every_endpoint_and_store_nothing(api, stack, pair, new_user, v):
    """`?v=` is 1 (the default) or 2 on any endpoint; anything else is 400 {"error"}, and a
    refused write stores nothing."""
    alice, bob, chat_id = pair
    carol = new_user("shv")
    before = query(stack, "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM chats), "
                          "(SELECT count(*) FROM files), (SELECT count(*) FROM events)")[0]
    q = f"v={v}"
    calls = [
        ("GET /chats", lambda: api.get(f"/chats?{q}", alice.token)),
        ("GET /chats/:id", lambda: api.get(f"/chats/{chat_id}?{q}", alice.token)),
        ("GET /chats/:id/messages", lambda: api.get(f"/chats/{chat_id}/messages?{q}", alice.token)),
        ("POST /chats/:id/messages", lambda: api.post(f"/chats/{chat_id}/messages?{q}", alice.token, json={"content": "no"})),
        ("POST /chats", lambda: api.post(f"/chats?{q}", alice.token, json={"name": "no", "participants": [bob.id]})),
        ("POST /chats/initiate", lambda: api.post(f"/chats/initiate?{q}", alice.token, json={"target_id": carol.id})),
        ("POST /upload", lambda: api.post(f"/upload?{q}", alice.token, files={"file": ("a.txt", b"x", "text/plain")})),
        ("POST /send", lambda: api.post(f"/send?{q}", alice.token, json={"receiver_username": bob.username, "content": "no"})),
        ("GET /history/:username", lambda: api.get(f"/history/{bob.username}?{q}", alice.token)),
        ("GET /users/:username", lambda: api.get(f"/users/{bob.username}?{q}", alice.token)),
        ("GET /users/:id", lambda: api.get(f"/users/{bob.id}?{q}", alice.token)),
        ("GET /users?username=", lambda: api.get(f"/users?username={bob.username}&{q}", alice.token)),
        ("PATCH /users/me", lambda: api.patch(f"/users/me?{q}", alice.token, json={"bio": "no"})),
        ("POST /login", lambda: api.post(f"/login?{q}", json={"username": alice.username})),
    ]
    wrong = []
    for name, call in calls:
        response = call()
        if response.status_code != 400:
            wrong.append(f"{name}?{q} -> {response.status_code} {response.text[:80]!r}")
        else:
            assert_error(response, 400)
    after = query(stack, "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM chats), "
                         "(SELECT count(*) FROM files), (SELECT count(*) FROM events)")[0]
    assert not wrong, "not 400: " + "; ".join(wrong)
    assert after[:3] == before[:3], (before, after)
    assert ok_json(api.get(f"/users/{alice.username}", alice.token))["bio"] is None


# --- protocol-1 frames ----------------------------------------------------------------------

def test_protocol_1_frames_keep_the_seed_shapes_and_never_get_new_ops(api, stack, pair, new_user):
    """A socket without v: bare seed messages, ACK, CHAT (seed chat), ERROR, READY {user_id}
    on IDENTIFY only — no seq anywhere, no USER frame for a contact's profile change."""
    alice, bob, chat_id = pair
    carol = new_user("shp1c")

    async def scenario():
        async with await Client.open(stack, alice, "header") as a, \
                await Client.open(stack, bob, "query") as b, \
                await Client.open(stack, carol, "identify") as c:
            raw_frames = []
            # Header and query sockets get no READY: the first frame is the message itself.
            posted = api.send(bob.token, chat_id, "rest send")
            for client in (a, b):
                frame = await client.recv_message()
                assert frame == posted
                raw_frames.append(frame)
            # WS 000 with a nonce: the bare echo, then ACK {nonce, id}.
            await a.send({"chat_id": chat_id, "content": "ws 000", "nonce": "p1-000"})
            echo = await a.recv_message()
            assert_keys(echo, MESSAGE_KEYS)
            ack = await a.recv_op("ACK")
            assert ack == {"nonce": "p1-000", "id": echo["id"]}
            assert await b.recv_message() == echo
            # WS 001 into the same direct chat.
            await b.send({"receiver_username": alice.username, "content": "ws 001", "nonce": "p1-001"})
            echo001 = await b.recv_message()
            assert (echo001["chat_id"], echo001["sender_id"]) == (chat_id, bob.id)
            assert await b.recv_op("ACK") == {"nonce": "p1-001", "id": echo001["id"]}
            assert await a.recv_message() == echo001
            # A profile change of a contact: protocol 1 has no USER frame.
            ok_json(api.patch("/users/me", alice.token, json={"display_name": "Alice P1"}))
            await b.expect_silence(0.6)
            # A new group: CHAT with the seed chat, to every member.
            group = ok_json(api.post("/chats", alice.token, json={"name": "p1 group", "participants": [bob.id, carol.id]}))
            for client in (a, b, c):
                d = await client.recv_chat()
                assert_keys(d, CHAT_KEYS)
                assert d == group
            # A bad frame: ERROR {message, nonce}, the socket stays.
            await c.send({"chat_id": group["id"], "content": "", "nonce": "p1-bad"})
            frame = await c.recv()
            assert is_op(frame, "ERROR"), frame
            assert_keys(frame, {"op", "d"})
            assert_keys(frame["d"], {"message", "nonce"})
            assert frame["d"]["nonce"] == "p1-bad"
            await c.send({"chat_id": group["id"], "content": "fine", "nonce": "p1-ok"})
            m = await c.recv_message()
            assert await c.recv_op("ACK") == {"nonce": "p1-ok", "id": m["id"]}
            for client in (a, b):
                assert await client.recv_message() == m
            # IDENTIFY gives READY with user_id only.
            async with await Client.open(stack, bob, "identify") as b2:
                pass
            for client in (a, b, c):
                await client.expect_silence(0.3)
            history = api.messages(alice.token, chat_id)
            assert history == [posted, echo, echo001]
            return m

    run(scenario())


def test_protocol_1_identify_ready_is_user_id_only(stack, pair):
    alice, _, _ = pair

    async def scenario():
        async with await Client.open(stack, alice, "identify") as a:
            # Client.open already checked READY's d is exactly {user_id}; v=1 is the same.
            pass
        from ws_helpers import open_ws
        ws = await open_ws(f"ws://127.0.0.1:{stack.port}/ws?v=1")
        client = Client(ws, alice)
        async with client:
            await client.send({"op": "IDENTIFY", "d": {"token": alice.token, "v": 1}})
            assert_ready(await client.recv(), alice.id)
            await client.expect_silence(0.3)

    run(scenario())
