"""Sends over the WebSocket: seed 000 `{chat_id, …}` and seed 001 `{receiver_username, …}`,
nonces (ACK after the echo, retries stored once), validation errors, and REST sends
(`POST /send`, `POST /chats/:id/messages`) delivered live."""

import time


from helpers import assert_history_entry, ok_json
from ws_helpers import Client, assert_chat_frame_d, is_message, run, send_and_echo


# --- seed 000 ----------------------------------------------------------------------------------

def test_seed_000_send_is_echoed_delivered_and_stored(api, stack, pair):
    alice, bob, chat_id = pair
    content = "Hello ✨ \"quoted\" \\ back\nslash 日本語"

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            await a.send({"chat_id": chat_id, "content": content, "files": []})
            echo = await a.recv_message()
            assert (echo["chat_id"], echo["sender_id"], echo["content"]) == (chat_id, alice.id, content)
            assert echo["files"] == []
            # The echo is the whole acknowledgement without a nonce: no ACK follows.
            await a.expect_silence(0.3)
            assert await b.recv_message() == echo
            await b.expect_silence(0.2)
            return echo

    echo = run(scenario())
    # The frame is the stored message, field for field, as both members read it back.
    assert api.messages(alice.token, chat_id) == [echo]
    assert api.messages(bob.token, chat_id) == [echo]


def test_seed_000_send_without_files_key_and_replies_in_order(api, stack, pair):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice, "identify") as a, await Client.open(stack, bob, "query") as b:
            sent = []
            for i in range(5):
                sender, other = (a, b) if i % 2 == 0 else (b, a)
                echo = await send_and_echo(sender, chat_id, f"turn {i}")
                assert await other.recv_message() == echo
                sent.append(echo)
            return sent

    sent = run(scenario())
    ids = [m["id"] for m in sent]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert api.messages(bob.token, chat_id) == sent


# --- seed 001 ----------------------------------------------------------------------------------

def test_seed_001_send_creates_the_direct_chat_and_announces_it(api, stack, new_user):
    alice = new_user("wsa")
    bob = new_user("wsb")
    carol = new_user("wsc")  # connected, but not in the chat

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b, \
                await Client.open(stack, carol) as c:
            await a.send({"receiver_username": bob.username, "content": "hi bob (001)", "nonce": "legacy-1"})
            # The new chat is announced to both members before its first message; then the echo,
            # then the ACK.
            chat = await a.recv_chat()
            assert_chat_frame_d(chat, chat["id"], {alice.id, bob.id})
            assert chat["chat_type"] == "direct"
            echo = await a.recv_message()
            assert (echo["chat_id"], echo["sender_id"], echo["content"]) == (chat["id"], alice.id, "hi bob (001)")
            assert await a.recv_ack("legacy-1") == echo["id"]
            assert await b.recv_chat() == chat
            assert await b.recv_message() == echo
            await c.expect_silence(0.3)

            # A second 001 send goes into the same chat and announces nothing new.
            await b.send({"receiver_username": alice.username, "content": "hi alice (001)"})
            reply = await b.recv_message()
            assert reply["chat_id"] == chat["id"] and reply["sender_id"] == bob.id
            assert await a.recv_message() == reply
            await a.expect_silence(0.2)
            return chat, echo, reply

    chat, echo, reply = run(scenario())
    chats = ok_json(api.get("/chats", alice.token))
    assert [c["id"] for c in chats] == [chat["id"]]
    assert chats[0] == chat
    assert api.messages(bob.token, chat["id"]) == [echo, reply]
    history = ok_json(api.get(f"/history/{bob.username}", alice.token))
    for entry in history:
        assert_history_entry(entry)
    assert [(h["id"], h["sender_id"], h["receiver_id"], h["content"]) for h in history] == [
        (echo["id"], alice.id, bob.id, "hi bob (001)"),
        (reply["id"], bob.id, alice.id, "hi alice (001)"),
    ]
    assert ok_json(api.get("/chats", carol.token)) == []


def test_seed_001_send_to_existing_chat_and_to_unknown_user(api, stack, pair):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            await a.send({"receiver_username": bob.username, "content": "into the existing chat"})
            echo = await a.recv_message()
            assert echo["chat_id"] == chat_id
            assert await b.recv_message() == echo
            for frame in ({"receiver_username": "Nobody" + str(time.time_ns()), "content": "x", "nonce": "nobody"},
                          {"receiver_username": "../etc", "content": "x", "nonce": "badname"},
                          {"receiver_username": bob.username, "nonce": "nocontent"},
                          {"receiver_username": bob.username, "content": "   ", "nonce": "blank"}):
                await a.send(frame)
                await a.recv_error(nonce=frame["nonce"])
            await b.expect_silence(0.3)
            return echo

    echo = run(scenario())
    assert api.messages(alice.token, chat_id) == [echo]
    assert len(ok_json(api.get("/chats", alice.token))) == 1


# --- nonces ------------------------------------------------------------------------------------

def test_nonce_ack_follows_the_echo_and_retries_are_stored_once(api, stack, pair):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, alice) as a2, \
                await Client.open(stack, bob) as b:
            await a.send({"chat_id": chat_id, "content": "once", "nonce": "retry-me"})
            first = await a.recv()
            assert is_message(first), f"the echo comes before the ACK, got {first!r}"
            assert await a.recv_ack("retry-me") == first["id"]
            assert await a2.recv_message() == first
            assert await b.recv_message() == first

            # Retries — same socket, and the same user's other device — get the ACK with the
            # same id and nothing else; nobody sees a second message.
            await a.send({"chat_id": chat_id, "content": "once", "nonce": "retry-me"})
            assert await a.recv_ack("retry-me") == first["id"]
            await a2.send({"chat_id": chat_id, "content": "once (edited retry)", "nonce": "retry-me"})
            assert await a2.recv_ack("retry-me") == first["id"]
            # Retries fired back to back are still stored once.
            for _ in range(5):
                await a.send({"chat_id": chat_id, "content": "burst", "nonce": "burst-1"})
            burst, skipped = await a.recv_until(is_message)
            assert skipped == [] and burst["content"] == "burst"
            for _ in range(5):
                assert await a.recv_ack("burst-1") == burst["id"]
            assert await b.recv_message() == burst
            await a.expect_silence(0.3)
            await b.expect_silence(0.1)
            assert await a2.recv_message() == burst
            await a2.expect_silence(0.1)

            # The nonce is per sender: bob may use the same string.
            theirs = await send_and_echo(b, chat_id, "bob's own", nonce="retry-me")
            assert theirs["id"] != first["id"]
            return first, burst, theirs

    first, burst, theirs = run(scenario())
    assert api.messages(alice.token, chat_id) == [first, burst, theirs]


def test_rest_post_with_a_websocket_nonce_is_the_same_message(api, stack, pair):
    """The nonce space is shared by both ways in: a REST retry of a socket send is not a
    second message."""
    alice, _, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice) as a:
            return await send_and_echo(a, chat_id, "socket first", nonce="cross-1")

    echo = run(scenario())
    again = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token,
                             json={"content": "socket first", "nonce": "cross-1"}))
    assert again == echo
    assert api.messages(alice.token, chat_id) == [echo]


# --- validation --------------------------------------------------------------------------------

def test_invalid_sends_get_error_frames_and_store_nothing(api, stack, pair, new_user):
    alice, bob, chat_id = pair
    mallory = new_user("wsm")
    other_chat = api.initiate(mallory.token, target_username=new_user("wsx").username)["chat_id"]
    too_many = [{"url": f"/uploads/00000000-0000-0000-0000-00000000000{i % 10}.png"} for i in range(11)]
    cases = [
        ({"chat_id": chat_id, "content": "", "nonce": "empty"}, "empty"),
        ({"chat_id": chat_id, "content": " \n\t ", "nonce": "blank"}, "blank"),
        ({"chat_id": chat_id, "nonce": "nothing"}, "nothing"),
        ({"chat_id": chat_id, "content": "x" * 4001, "nonce": "long"}, "long"),
        ({"chat_id": chat_id, "content": "x", "files": too_many, "nonce": "files11"}, "files11"),
        ({"chat_id": chat_id, "content": "x", "files": "nope", "nonce": "filesstr"}, "filesstr"),
        ({"chat_id": chat_id, "content": 42, "nonce": "numcontent"}, "numcontent"),
        ({"chat_id": 987654321, "content": "unknown chat", "nonce": "nochat"}, "nochat"),
        ({"chat_id": other_chat, "content": "not mine", "nonce": "notmember"}, "notmember"),
        ({"chat_id": "abc", "content": "x", "nonce": "badid"}, "badid"),
        ({"chat_id": -1, "content": "x", "nonce": "negid"}, "negid"),
        ({"chat_id": chat_id, "content": "x", "nonce": "n" * 65}, None),
        ({"chat_id": chat_id, "content": "x", "nonce": ""}, None),
        ({"chat_id": chat_id, "content": "x", "nonce": 7}, None),
    ]

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            messages = {}
            for frame, nonce in cases:
                await a.send(frame)
                messages[str(frame)[:60]] = await a.recv_error(nonce=nonce)
            await b.expect_silence(0.3)
            await a.expect_silence(0.1)
            # Exactly 4000 characters is fine (counted in characters, not bytes).
            ok = await send_and_echo(a, chat_id, "é" * 4000, nonce="max")
            assert await b.recv_message() == ok
            return messages, ok

    messages, ok = run(scenario())
    assert any("member" in text for text in messages.values()), messages
    assert api.messages(alice.token, chat_id) == [ok]
    assert api.messages(mallory.token, other_chat) == []


# --- REST sends, live ------------------------------------------------------------------------

def test_rest_sends_are_delivered_live(api, stack, pair):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice, "identify") as a, await Client.open(stack, bob) as b, \
                await Client.open(stack, bob, "query") as b2:
            started = time.monotonic()
            posted = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token, json={"content": "via REST twin"}))
            for client in (a, b, b2):
                assert await client.recv_message(timeout=2) == posted
            legacy = ok_json(api.post("/send", bob.token,
                                      json={"receiver_username": alice.username, "content": "via /send"}))
            assert legacy == {"status": "sent"}
            live = []
            for client in (a, b, b2):
                frame = await client.recv_message(timeout=2)
                assert (frame["chat_id"], frame["sender_id"], frame["content"]) == (chat_id, bob.id, "via /send")
                live.append(frame)
            assert live[0] == live[1] == live[2]
            elapsed = time.monotonic() - started
            for client in (a, b, b2):
                await client.expect_silence(0.2)
            return posted, live[0], elapsed

    posted, legacy, elapsed = run(scenario())
    # Pushed by notification, not found by a slow poll: two round trips well under a second each.
    assert elapsed < 2.5, f"REST sends took {elapsed:.2f}s to arrive live"
    assert api.messages(alice.token, chat_id) == [posted, legacy]


def test_rest_send_001_creating_a_chat_announces_it(api, stack, new_user):
    alice = new_user("wsa")
    bob = new_user("wsb")

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            sent = ok_json(api.post("/send", alice.token, json={"receiver_username": bob.username, "content": "first"}))
            assert sent == {"status": "sent"}
            result = []
            for client in (a, b):
                chat = await client.recv_chat()
                assert_chat_frame_d(chat, chat["id"], {alice.id, bob.id})
                message = await client.recv_message()
                assert (message["chat_id"], message["content"]) == (chat["id"], "first")
                result.append((chat, message))
            assert result[0] == result[1]
            return result[0]

    chat, message = run(scenario())
    assert api.messages(bob.token, chat["id"]) == [message]
