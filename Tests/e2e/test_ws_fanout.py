"""Fan-out: every committed message to every connection of every member (the sender's own
included), once, in id order per chat; CHAT frames for new chats; nothing to outsiders."""

import asyncio
import itertools
import os


from helpers import assert_error, ok_json
from ws_helpers import (
    Client,
    assert_chat_frame_d,
    announce_chat,
    create_chat_announced,
    is_message,
    run,
    send_and_echo,
)


def test_multi_device_delivery_and_ack_only_to_the_sending_socket(api, stack, pair, new_user):
    alice, bob, chat_id = pair
    outsider = new_user("wso")

    async def scenario():
        a1 = await Client.open(stack, alice, "header")
        a2 = await Client.open(stack, alice, "query")
        a3 = await Client.open(stack, alice, "identify")
        b1 = await Client.open(stack, bob, "header")
        b2 = await Client.open(stack, bob, "identify")
        out = await Client.open(stack, outsider, "header")
        try:
            await a2.send({"chat_id": chat_id, "content": "to every device", "nonce": "md-1"})
            echo = await a2.recv_message()
            assert await a2.recv_ack("md-1") == echo["id"]
            for client in (a1, a3, b1, b2):
                assert await client.recv_message() == echo
            # Once per connection; the ACK went to the sending socket only; outsiders get nothing.
            for client in (a1, a2, a3, b1, b2, out):
                await client.expect_silence(0.3)

            # A device that goes away does not disturb the others.
            await a1.close()
            reply = await send_and_echo(b2, chat_id, "after a1 left")
            for client in (a2, a3, b1):
                assert await client.recv_message() == reply
            return echo, reply
        finally:
            for client in (a1, a2, a3, b1, b2, out):
                await client.close()

    echo, reply = run(scenario())
    assert api.messages(alice.token, chat_id) == [echo, reply]


def test_user_connected_before_the_chat_existed_gets_chat_and_first_message(api, stack, new_user):
    alice = new_user("wsa")
    bob = new_user("wsb")
    outsider = new_user("wso")

    async def scenario():
        async with await Client.open(stack, bob, "identify") as b, await Client.open(stack, alice) as a, \
                await Client.open(stack, outsider) as out:
            created = api.initiate(alice.token, target_id=bob.id)
            assert created["status"] == "created"
            chat_id = created["chat_id"]
            for client in (a, b):
                chat = await client.recv_chat()
                assert_chat_frame_d(chat, chat_id, {alice.id, bob.id})
                assert chat["chat_type"] == "direct"
            echo = await send_and_echo(a, chat_id, "first message in a new chat")
            assert await b.recv_message() == echo
            # Initiating again finds the chat: no new CHAT frame.
            assert api.initiate(bob.token, target_username=alice.username) == {"chat_id": chat_id, "status": "exists"}
            for client in (a, b, out):
                await client.expect_silence(0.4)
            return chat_id, echo

    chat_id, echo = run(scenario())
    assert api.messages(bob.token, chat_id) == [echo]


def test_group_chat_created_over_rest_is_announced_to_every_member(api, stack, new_user):
    owner = new_user("wsg")
    members = [new_user("wsg") for _ in range(3)]
    outsider = new_user("wso")

    async def scenario():
        clients = [await Client.open(stack, user, how) for user, how in
                   zip([owner] + members + [outsider], itertools.cycle(["header", "query", "identify"]))]
        try:
            body = {"name": "WS group", "participants": [m.id for m in members]}
            chat = ok_json(api.post("/chats", owner.token, json=body))
            ids = {owner.id} | {m.id for m in members}
            for client in clients[:-1]:
                announced = await client.recv_chat()
                assert announced == chat
                assert_chat_frame_d(announced, chat["id"], ids)
            posted = ok_json(api.post(f"/chats/{chat['id']}/messages", members[1].token, json={"content": "hi all"}))
            for client in clients[:-1]:
                assert await client.recv_message() == posted
            echo = await send_and_echo(clients[3], chat["id"], "hi from the socket")
            for index, client in enumerate(clients[:-1]):
                if index != 3:
                    assert await client.recv_message() == echo
            await clients[-1].expect_silence(0.4)
            return chat, [posted, echo]
        finally:
            for client in clients:
                await client.close()

    chat, sent = run(scenario())
    assert api.messages(owner.token, chat["id"]) == sent


def test_non_member_sends_are_refused_and_not_stored(api, stack, pair, new_user):
    alice, bob, chat_id = pair
    mallory = new_user("wsm")

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b, \
                await Client.open(stack, mallory, "identify") as m:
            before = await send_and_echo(a, chat_id, "members only")
            assert await b.recv_message() == before
            await m.send({"chat_id": chat_id, "content": "let me in", "nonce": "intruder-1"})
            text = await m.recv_error(nonce="intruder-1")
            assert "not a member" in text, text
            await m.send({"chat_id": chat_id, "content": "no nonce either", "files": []})
            assert "not a member" in await m.recv_error()
            for client in (a, b, m):
                await client.expect_silence(0.4)
            # The refusal did not burn the nonce: the same nonce works in mallory's own chat.
            own = api.initiate(mallory.token, target_username=alice.username)["chat_id"]
            assert await m.recv_chat() and await a.recv_chat()
            mine = await send_and_echo(m, own, "in my own chat", nonce="intruder-1")
            assert await a.recv_message() == mine
            await b.expect_silence(0.2)
            return before

    before = run(scenario())
    assert api.messages(alice.token, chat_id) == [before]
    assert api.messages(bob.token, chat_id) == [before]
    assert_error(api.get(f"/chats/{chat_id}/messages", mallory.token), 403)


def test_twenty_concurrent_clients_each_message_once_in_id_order(api, stack, new_user):
    """10 users × 2 connections all send at once into a shared group chat, and the first
    5 users also into a second one: every connection sees every message of its chats exactly
    once, in ascending id order per chat, and exactly what history holds."""
    users = [new_user("wsc") for _ in range(10)]
    created = {}

    def group(name, owner, members):
        def create():
            body = {"name": name, "participants": [u.id for u in members]}
            created[name] = ok_json(api.post("/chats", owner.token, json=body))
            return created[name]["id"]
        create_chat_announced(stack, owner, create)
        return created[name]

    big = group("big", users[0], users[1:])
    small = group("small", users[1], users[:5])
    per_client = 20  # even: users 0-4 alternate between the two chats

    async def scenario():
        clients = []
        for index, user in enumerate(users):
            for device in range(2):
                clients.append(await Client.open(stack, user, ("header", "identify", "query")[(index + device) % 3]))
        for client in clients:
            client.label = f"{client.user.username}#{clients.index(client)}"

        async def sender(number: int, client: Client) -> None:
            user_index = number // 2
            targets = [big["id"], small["id"]] if user_index < 5 else [big["id"]]
            for i in range(per_client):
                nonce = f"c{number}-{i}"
                target = targets[i % len(targets)]
                await client.send({"chat_id": target, "content": f"{client.label} {i}", "nonce": nonce})
                await asyncio.sleep(0)

        # Users 0-4 alternate between the chats, users 5-9 send only to the big one.
        expected_count = {big["id"]: 10 * (per_client // 2) + 10 * per_client, small["id"]: 10 * (per_client // 2)}

        async def reader(number: int, client: Client):
            user_index = number // 2
            wanted = expected_count[big["id"]] + (expected_count[small["id"]] if user_index < 5 else 0)
            messages, acks = [], {}
            while len(messages) < wanted or len(acks) < per_client:
                frame = await client.recv(timeout=15)
                if is_message(frame):
                    messages.append(frame)
                else:
                    assert frame.get("op") == "ACK", f"{client.label}: unexpected frame {frame!r}"
                    acks[frame["d"]["nonce"]] = frame["d"]["id"]
            await client.expect_silence(0.3)
            return messages, acks

        try:
            readers = [asyncio.create_task(reader(n, c)) for n, c in enumerate(clients)]
            await asyncio.gather(*(sender(n, c) for n, c in enumerate(clients)))
            return clients, await asyncio.gather(*readers)
        finally:
            for client in clients:
                await client.close()

    clients, results = run(scenario(), timeout=90)
    history = {chat_id: api.messages(users[1].token, chat_id, "?limit=1000") for chat_id in (big["id"], small["id"])}
    assert len(history[big["id"]]) == 15 * per_client and len(history[small["id"]]) == 5 * per_client, (
        {k: len(v) for k, v in history.items()})
    by_id = {m["id"]: m for messages in history.values() for m in messages}
    all_acks = {}
    for number, (client, (messages, acks)) in enumerate(zip(clients, results)):
        ids = [m["id"] for m in messages]
        assert len(ids) == len(set(ids)), f"{client.label}: a message arrived twice"
        for chat_id, stored in history.items():
            seen = [m for m in messages if m["chat_id"] == chat_id]
            if client.user.id in (users[i].id for i in range(5)) or chat_id == big["id"]:
                # Everything the chat holds, exactly as stored, in id order.
                assert seen == stored, f"{client.label}: chat {chat_id} frames differ from history"
            else:
                assert seen == []
        assert len(acks) == per_client
        for nonce, message_id in acks.items():
            assert by_id[message_id]["sender_id"] == client.user.id
            assert by_id[message_id]["content"] == f"{client.label} {nonce.split('-')[1]}"
        all_acks.update(acks)
    assert sorted(all_acks.values()) == sorted(by_id), "every stored message was ACKed to its sender"


def test_socket_authenticated_at_handshake_gets_a_message_sent_right_after_it_opened(api, stack, new_user):
    """A socket authenticated by its Authorization header counts as open once the 101 arrives:
    a message committed after that must reach it. Many rounds, four at a time, because the
    window is short (the relay registers a socket on its storage thread, after the 101, and
    replays what it fanned out in between). E2E_STRESS=1 runs 1,500 rounds instead of 150."""
    default_rounds = "1500" if os.environ.get("E2E_STRESS") == "1" else "150"
    rounds = int(os.environ.get("E2E_STRESS_ROUNDS", default_rounds))
    misses = []

    async def one(index: int):
        alice, bob = new_user("wss"), new_user("wss")
        chat_id = await announce_chat(
            stack, alice, lambda: api.initiate(alice.token, target_username=bob.username)["chat_id"])
        async with await Client.open(stack, alice, "identify") as a, \
                await Client.open(stack, bob, "header") as b:
            echo = await send_and_echo(a, chat_id, f"right after the handshake {index}")
            try:
                assert await b.recv(timeout=3) == echo
            except AssertionError as error:
                misses.append((index, str(error)[:120]))

    async def scenario():
        async def worker(first: int):
            for index in range(first, rounds, 4):
                await one(index)
        await asyncio.gather(*(worker(w) for w in range(4)))

    run(scenario(), timeout=600)
    assert misses == [], f"{len(misses)} of {rounds} new sockets missed the first message: {misses[:5]}"
