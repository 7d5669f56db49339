"""Messages that live (issue 13): edits (`PATCH /chats/:id/messages/:mid`), deletions
(`DELETE …`), replies (`reply_to_id` on REST and WebSocket 000 sends) and reactions
(`PUT`/`DELETE …/reactions/:emoji`), through nginx: their status codes, the full protocol-2
message, the MESSAGE_EDITED / MESSAGE_DELETED / REACTION events live and on resume, the seed
shapes left exactly as they were, and concurrency (parallel reactions, an edit racing a
delete)."""

from __future__ import annotations

import asyncio
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from events_helpers import (
    P2Client,
    all_events,
    assert_full_message,
    create_group,
    db_rows,
    db_value,
    full_history,
    head_seq,
    message_events,
    message_id_of,
    reaction_path,
    send_full,
    strict_legacy_history,
    strict_p1_frame,
    strict_seed_history,
    visible_seqs,
)
from helpers import (
    MESSAGE_KEYS,
    TIMEOUT,
    assert_error,
    assert_keys,
    assert_message,
    assert_timestamp,
    auth,
    ok_json,
)
from ws_helpers import Client, create_chat_announced, is_op, run

LIVE_QUIET = 1.2  # seconds a protocol-1 socket must stay silent after a p2 socket got the events


# --- small REST wrappers ---------------------------------------------------------------------

def edit(api, token, chat_id, message_id, content, **kwargs):
    return api.patch(f"/chats/{chat_id}/messages/{message_id}", token, json={"content": content}, **kwargs)


def delete(api, token, chat_id, message_id):
    return api.request("DELETE", f"/chats/{chat_id}/messages/{message_id}", token)


def react(api, token, chat_id, message_id, emoji, raw=False):
    return api.request("PUT", reaction_path(chat_id, message_id, emoji, raw), token)


def unreact(api, token, chat_id, message_id, emoji, raw=False):
    return api.request("DELETE", reaction_path(chat_id, message_id, emoji, raw), token)


def no_content(response: requests.Response) -> None:
    assert response.status_code == 204, (
        f"{response.request.method} {response.request.url}: expected 204, got "
        f"{response.status_code} {response.text[:300]!r}")
    assert response.content == b"", response.content[:200]


def full_message(api, token, chat_id, message_id) -> dict | None:
    for message in full_history(api, token, chat_id, "after_id=0&limit=1000"):
        if message["id"] == message_id:
            return message
    return None


def seed_ids(api, token, chat_id) -> list[int]:
    return [m["id"] for m in api.messages(token, chat_id, "?after_id=0&limit=1000")]


def event_count(stack) -> int:
    return db_value(stack, "SELECT count(*) FROM events")


def group_announced(stack, api, owner, members, name="group") -> int:
    """A group whose CHAT the relay has already announced (so protocol-1 sockets opened
    afterwards get no CHAT frame for it)."""
    return create_chat_announced(stack, owner, lambda: create_group(api, owner, members, name))


# --- edits -----------------------------------------------------------------------------------

def test_edit_returns_the_full_message_and_every_history_shows_the_new_content(api, stack, pair):
    alice, bob, chat_id = pair
    first = api.send(alice.token, chat_id, "before the edit")
    other = api.send(bob.token, chat_id, "untouched")
    before = head_seq(stack)

    edited = ok_json(edit(api, alice.token, chat_id, first["id"], "after the edit ✏️"))
    assert_full_message(edited)
    assert edited["content"] == "after the edit ✏️"
    assert_timestamp(edited["edited_at"])
    assert {k: edited[k] for k in ("id", "chat_id", "sender_id", "timestamp", "files")} == {
        k: first[k] for k in ("id", "chat_id", "sender_id", "timestamp", "files")}
    assert edited["reply_to_id"] is None and edited["reactions"] == []

    # Seed history: the new content, seed keys only; the other message as it was.
    seed = api.messages(bob.token, chat_id)
    assert seed == [dict(first, content="after the edit ✏️"), other]
    for message in seed:
        assert_keys(message, MESSAGE_KEYS)
    legacy = ok_json(api.get(f"/history/{alice.username}", bob.token))
    strict_legacy_history(legacy)
    assert [(h["id"], h["content"]) for h in legacy] == [(first["id"], "after the edit ✏️"), (other["id"], "untouched")]
    # Protocol 2: edited_at set on the edited one only.
    full = full_history(api, bob.token, chat_id)
    assert full[0] == edited
    assert full[1]["edited_at"] is None and full[1]["content"] == "untouched"

    # One MESSAGE_EDITED event, d the full message.
    frames, _ = all_events(api, bob.token, before)
    assert [(f["op"], f["d"]) for f in frames] == [("MESSAGE_EDITED", edited)]
    assert message_events(stack, first["id"])[-1][1] == "MESSAGE_EDITED"

    # A second edit moves edited_at on (or keeps it within the same second) and is one more event.
    again = ok_json(edit(api, alice.token, chat_id, first["id"], "second edit"))
    assert again["content"] == "second edit" and again["edited_at"] >= edited["edited_at"]
    assert [op for _, op in message_events(stack, first["id"])] == ["MESSAGE", "MESSAGE_EDITED", "MESSAGE_EDITED"]


def test_edit_content_rules_are_those_of_a_send(api, stack, pair):
    alice, bob, chat_id = pair
    message = api.send(alice.token, chat_id, "original")
    path = f"/chats/{chat_id}/messages/{message['id']}"
    before = event_count(stack)
    for body in ({"content": "x" * 4001}, {"content": ""}, {"content": "   \n\t "}, {"content": None},
                 {}, {"content": 5}, {"content": ["a"]}, {"text": "wrong key"}):
        assert_error(api.patch(path, alice.token, json=body), 400)
    for raw in (b"{", b"not json", b"[]", b"\"content\""):
        assert_error(api.patch(path, alice.token, data=raw, headers={"Content-Type": "application/json"}), 400)
    assert event_count(stack) == before, "a refused edit appended an event"
    assert api.messages(alice.token, chat_id) == [message]
    assert full_history(api, alice.token, chat_id)[0]["edited_at"] is None

    # Exactly 4000 characters (scalars, not bytes) is allowed.
    long = "ж" * 3999 + "🎉"
    assert ok_json(edit(api, alice.token, chat_id, message["id"], long))["content"] == long
    assert api.messages(bob.token, chat_id)[0]["content"] == long


def test_edit_blank_content_is_allowed_only_when_the_message_has_files(api, stack, pair):
    alice, bob, chat_id = pair
    receipt = ok_json(api.post("/upload?v=2", alice.token,
                               files={"file": ("note.txt", b"attached bytes", "text/plain")}))
    with_file = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token,
                                 json={"content": "see attached", "files": [{"id": receipt["id"]}]}))
    assert len(with_file["files"]) == 1
    for blank in ("", "   "):
        edited = ok_json(edit(api, alice.token, chat_id, with_file["id"], blank))
        assert edited["content"] == blank and edited["files"] == with_file["files"], edited
        assert edited["edited_at"] is not None
    # The attachment stays.
    assert api.messages(bob.token, chat_id)[0]["files"] == with_file["files"]


def test_edit_status_order(api, stack, new_user, pair):
    alice, bob, chat_id = pair
    carol = new_user("ec")  # not in the chat
    owner_chat = create_group(api, alice, [bob], "edit rights")
    mine = api.send(alice.token, chat_id, "alice's")
    elsewhere = api.send(alice.token, owner_chat, "in the group")
    bobs_in_group = api.send(bob.token, owner_chat, "bob's, in alice's group")
    gone = api.send(alice.token, chat_id, "to be deleted")
    no_content(delete(api, alice.token, chat_id, gone["id"]))
    before = event_count(stack)

    assert_error(api.patch(f"/chats/{chat_id}/messages/{mine['id']}", json={"content": "x"}), 401)
    assert_error(edit(api, alice.token, 999_999_999, mine["id"], "x"), 404)          # unknown chat
    assert_error(edit(api, carol.token, chat_id, mine["id"], "x"), 403)              # not a member
    assert_error(edit(api, carol.token, chat_id, 999_999_999, "x"), 403)             # …before the message
    assert_error(edit(api, alice.token, chat_id, 999_999_999, "x"), 404)             # unknown message
    assert_error(edit(api, alice.token, chat_id, elsewhere["id"], "x"), 404)         # of another chat
    assert_error(edit(api, alice.token, chat_id, gone["id"], "x"), 404)              # deleted
    assert_error(edit(api, bob.token, chat_id, mine["id"], "x"), 403)                # not yours
    assert_error(edit(api, alice.token, owner_chat, bobs_in_group["id"], "x"), 403)  # not even the owner
    for bad_id in ("abc", "0", "-1", "1.5"):
        response = api.patch(f"/chats/{chat_id}/messages/{bad_id}", alice.token, json={"content": "x"})
        assert_error(response, 400, 404)
    assert event_count(stack) == before
    assert [m["content"] for m in api.messages(bob.token, chat_id)] == ["alice's"]


# --- deletions -------------------------------------------------------------------------------

def test_delete_by_sender_leaves_every_history_and_last_message(api, stack, pair):
    alice, bob, chat_id = pair
    first = api.send(alice.token, chat_id, "stays")
    second = api.send(alice.token, chat_id, "goes")
    no_content(react(api, bob.token, chat_id, second["id"], "👍"))
    before = head_seq(stack)

    response = delete(api, alice.token, chat_id, second["id"])
    no_content(response)

    assert api.messages(bob.token, chat_id) == [first]
    assert [m["id"] for m in full_history(api, bob.token, chat_id)] == [first["id"]]
    legacy = ok_json(api.get(f"/history/{alice.username}", bob.token))
    strict_legacy_history(legacy)
    assert [h["id"] for h in legacy] == [first["id"]]
    chat = ok_json(api.get(f"/chats/{chat_id}?v=2", bob.token))
    assert chat["last_message"] is not None and chat["last_message"]["id"] == first["id"], chat
    assert_full_message(chat["last_message"])
    listed = [c for c in ok_json(api.get("/chats?v=2", alice.token)) if c["id"] == chat_id]
    assert listed and listed[0]["last_message"]["id"] == first["id"]

    frames, _ = all_events(api, bob.token, before)
    assert [(f["op"], f["d"]) for f in frames] == [
        ("MESSAGE_DELETED", {"chat_id": chat_id, "message_id": second["id"]})]
    # Its reactions went with it; acting on it again is 404 everywhere.
    assert db_value(stack, "SELECT count(*) FROM reactions WHERE message_id = ?", (second["id"],)) == 0
    assert_error(delete(api, alice.token, chat_id, second["id"]), 404)
    assert_error(edit(api, alice.token, chat_id, second["id"], "back?"), 404)
    assert_error(react(api, bob.token, chat_id, second["id"], "👍"), 404)
    assert_error(unreact(api, bob.token, chat_id, second["id"], "👍"), 404)
    assert [f["op"] for f in all_events(api, bob.token, before)[0]] == ["MESSAGE_DELETED"]

    # Deleting the only message left: last_message becomes null.
    no_content(delete(api, alice.token, chat_id, first["id"]))
    assert api.messages(bob.token, chat_id) == []
    assert ok_json(api.get(f"/chats/{chat_id}?v=2", alice.token))["last_message"] is None


def test_delete_takes_its_attachments_with_it(api, stack, pair):
    alice, bob, chat_id = pair
    receipt = ok_json(api.post("/upload?v=2", alice.token, files={"file": ("a.bin", b"\x00\x01", None)}))
    message = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token,
                               json={"files": [{"id": receipt["id"]}]}))
    assert db_value(stack, "SELECT count(*) FROM message_files WHERE message_id = ?", (message["id"],)) == 1
    no_content(delete(api, alice.token, chat_id, message["id"]))
    assert db_value(stack, "SELECT count(*) FROM message_files WHERE message_id = ?", (message["id"],)) == 0
    assert api.messages(bob.token, chat_id) == []


def test_delete_rights_sender_owner_admin_and_status_order(api, stack, new_user):
    owner, admin, member, other_member, outsider = (new_user(p) for p in ("do", "da", "dm", "dn", "dx"))
    group = create_group(api, owner, [admin, member, other_member], "delete rights")
    ok_json(api.patch(f"/chats/{group}/members/{admin.id}", owner.token, json={"role": "admin"}))
    direct = api.initiate(member.token, target_username=other_member.username)["chat_id"]

    by_member = [api.send(member.token, group, f"member {i}") for i in range(4)]
    by_admin = api.send(admin.token, group, "admin's")
    by_owner = api.send(owner.token, group, "owner's")
    in_direct = api.send(member.token, direct, "direct")
    before = event_count(stack)

    # Status order: unknown chat, non-member, unknown / other chat's message, someone else's.
    assert_error(api.request("DELETE", f"/chats/{group}/messages/{by_member[0]['id']}"), 401)
    assert_error(delete(api, owner.token, 999_999_999, by_member[0]["id"]), 404)
    assert_error(delete(api, outsider.token, group, by_member[0]["id"]), 403)
    assert_error(delete(api, outsider.token, group, 999_999_999), 403)
    assert_error(delete(api, owner.token, group, 999_999_999), 404)
    assert_error(delete(api, member.token, group, in_direct["id"]), 404)          # of another chat
    assert_error(delete(api, other_member.token, group, by_member[0]["id"]), 403)  # a plain member
    assert_error(delete(api, member.token, group, by_admin["id"]), 403)
    assert_error(delete(api, member.token, group, by_owner["id"]), 403)
    assert_error(delete(api, other_member.token, direct, in_direct["id"]), 403)    # no admins in a direct chat
    assert event_count(stack) == before

    no_content(delete(api, member.token, group, by_member[0]["id"]))   # the sender
    no_content(delete(api, admin.token, group, by_member[1]["id"]))    # an admin
    no_content(delete(api, owner.token, group, by_member[2]["id"]))    # the owner
    no_content(delete(api, owner.token, group, by_admin["id"]))        # the owner, an admin's
    no_content(delete(api, admin.token, group, by_owner["id"]))        # an admin, the owner's
    no_content(delete(api, member.token, direct, in_direct["id"]))
    for message in by_member[:3]:
        assert_error(delete(api, owner.token, group, message["id"]), 404)  # deleted: 404, not 403
        assert_error(delete(api, other_member.token, group, message["id"]), 404)
    assert seed_ids(api, other_member.token, group) == [by_member[3]["id"]]
    assert seed_ids(api, other_member.token, direct) == []
    deleted = [op for _, op in db_rows(stack, "SELECT seq, op FROM events WHERE seq > ? ORDER BY seq", (before,))]
    assert deleted == ["MESSAGE_DELETED"] * 6


# --- replies ---------------------------------------------------------------------------------

def test_rest_reply_carries_reply_to_id_in_the_full_shape_only(api, stack, pair, new_user):
    alice, bob, chat_id = pair
    original = api.send(alice.token, chat_id, "original")

    seed_reply = ok_json(api.post(f"/chats/{chat_id}/messages", bob.token,
                                  json={"content": "seed-shaped reply", "reply_to_id": original["id"]}))
    assert_message(seed_reply)  # exact seed keys: no reply_to_id
    full_reply = send_full(api, bob.token, chat_id, "full reply", reply_to_id=original["id"])
    assert full_reply["reply_to_id"] == original["id"]
    assert full_reply["edited_at"] is None and full_reply["reactions"] == []
    reply_to_reply = send_full(api, alice.token, chat_id, "reply to a reply", reply_to_id=full_reply["id"])
    no_reply = send_full(api, alice.token, chat_id, "null is no reply", reply_to_id=None)
    assert no_reply["reply_to_id"] is None

    full = {m["id"]: m for m in full_history(api, alice.token, chat_id)}
    assert full[seed_reply["id"]]["reply_to_id"] == original["id"]
    assert full[full_reply["id"]] == full_reply
    assert full[reply_to_reply["id"]]["reply_to_id"] == full_reply["id"]
    assert full[original["id"]]["reply_to_id"] is None
    strict_seed_history(api.messages(alice.token, chat_id))

    # Deleting the original: the replies keep their reply_to_id.
    no_content(delete(api, alice.token, chat_id, original["id"]))
    full = {m["id"]: m for m in full_history(api, bob.token, chat_id)}
    assert original["id"] not in full
    assert full[seed_reply["id"]]["reply_to_id"] == original["id"]
    assert full[full_reply["id"]]["reply_to_id"] == original["id"]
    # …and the event stream renders them with it.
    frames, _ = all_events(api, bob.token, 0)
    rendered = {f["d"]["id"]: f["d"] for f in frames if f["op"] == "MESSAGE" and f["d"]["chat_id"] == chat_id}
    assert rendered[full_reply["id"]]["reply_to_id"] == original["id"]
    assert original["id"] not in rendered


def test_rest_reply_to_an_invalid_message_is_400_and_stores_nothing(api, stack, pair, new_user):
    alice, bob, chat_id = pair
    carol = new_user("rc")
    other_chat = api.initiate(alice.token, target_username=carol.username)["chat_id"]
    live = api.send(alice.token, chat_id, "live")
    foreign = api.send(alice.token, other_chat, "another chat's")
    gone = api.send(alice.token, chat_id, "deleted")
    no_content(delete(api, alice.token, chat_id, gone["id"]))
    before_ids, before_events = seed_ids(api, alice.token, chat_id), event_count(stack)

    for reply_to in (999_999_999, foreign["id"], gone["id"], 0, -1, "1", "abc", 1.5, True, [live["id"]], {}):
        for path in (f"/chats/{chat_id}/messages", f"/chats/{chat_id}/messages?v=2"):
            assert_error(api.post(path, bob.token, json={"content": "bad reply", "reply_to_id": reply_to}), 400)
    # With a nonce too: nothing stored, so the same nonce is free afterwards.
    assert_error(api.post(f"/chats/{chat_id}/messages", bob.token,
                          json={"content": "bad", "reply_to_id": foreign["id"], "nonce": "reply-n1"}), 400)
    assert seed_ids(api, alice.token, chat_id) == before_ids
    assert event_count(stack) == before_events
    good = send_full(api, bob.token, chat_id, "good", reply_to_id=live["id"], nonce="reply-n1")
    assert good["reply_to_id"] == live["id"] and good["content"] == "good"


def test_ws_000_reply_on_protocol_1_and_2_and_invalid_ones_get_an_error(api, stack, pair, new_user):
    alice, bob, chat_id = pair
    carol = new_user("wr")
    other_chat = api.initiate(alice.token, target_username=carol.username)["chat_id"]
    original = api.send(alice.token, chat_id, "original")
    foreign = api.send(alice.token, other_chat, "another chat's")
    gone = api.send(alice.token, chat_id, "deleted")
    no_content(delete(api, alice.token, chat_id, gone["id"]))

    async def scenario():
        async with await Client.open(stack, alice) as a1, \
                await P2Client.open_p2(stack, bob, "header") as b2, \
                await P2Client.open_p2(stack, alice, "query") as a2:
            # Protocol 1 sends a reply: seed-shaped echo, then the ACK; protocol 2 sees reply_to_id.
            await a1.send({"chat_id": chat_id, "content": "p1 reply", "reply_to_id": original["id"], "nonce": "r1"})
            echo = await a1.recv()
            assert strict_p1_frame(echo) == "message" and echo["content"] == "p1 reply"
            assert await a1.recv_ack("r1") == echo["id"]
            for socket in (b2, a2):
                event = await socket.recv_event("MESSAGE")
                assert event["d"]["id"] == echo["id"] and event["d"]["reply_to_id"] == original["id"]
                assert {k: event["d"][k] for k in MESSAGE_KEYS} == echo

            # Protocol 2 sends a reply: MESSAGE to everyone, the ACK to the sender only.
            await b2.send({"chat_id": chat_id, "content": "p2 reply", "reply_to_id": echo["id"], "nonce": "r2"})
            frames = [await b2.recv(), await b2.recv()]
            ack = [f for f in frames if is_op(f, "ACK")]
            event = [f for f in frames if is_op(f, "MESSAGE")]
            assert len(ack) == 1 and len(event) == 1, frames
            assert ack[0]["d"] == {"nonce": "r2", "id": event[0]["d"]["id"]}
            assert event[0]["d"]["reply_to_id"] == echo["id"] and event[0]["d"]["sender_id"] == bob.id
            assert (await a2.recv_event("MESSAGE")) == event[0]
            bare = await a1.recv()
            assert strict_p1_frame(bare) == "message" and bare["id"] == event[0]["d"]["id"]

            # Invalid reply_to_id: an ERROR with the nonce, on either protocol; nobody sees anything.
            bad = [999_999_999, foreign["id"], gone["id"], 0, -3, "x", 2.5, True]
            for i, reply_to in enumerate(bad):
                await a1.send({"chat_id": chat_id, "content": "bad", "reply_to_id": reply_to, "nonce": f"p1bad{i}"})
                await a1.recv_error(nonce=f"p1bad{i}")
                await b2.send({"chat_id": chat_id, "content": "bad", "reply_to_id": reply_to, "nonce": f"p2bad{i}"})
                await b2.recv_error(nonce=f"p2bad{i}")
            await a2.expect_silence(0.5)
            await a1.expect_silence(0.2)
            await b2.expect_silence(0.2)
            return echo["id"], event[0]["d"]["id"]

    p1_reply, p2_reply = run(scenario())
    assert seed_ids(api, bob.token, chat_id) == [original["id"], p1_reply, p2_reply]
    full = full_history(api, bob.token, chat_id)
    assert [m["reply_to_id"] for m in full] == [None, original["id"], p1_reply]


# --- reactions -------------------------------------------------------------------------------

def test_reactions_are_idempotent_ordered_and_evented_only_on_change(api, stack, new_user):
    alice, bob, carol = new_user("ra"), new_user("rb"), new_user("rc")
    group = create_group(api, alice, [bob, carol], "reactions")
    message = api.send(alice.token, group, "react to me")
    mid = message["id"]
    start = head_seq(stack)

    def reactions():
        return full_message(api, alice.token, group, mid)["reactions"]

    no_content(react(api, bob.token, group, mid, "👍"))
    no_content(react(api, bob.token, group, mid, "👍"))        # again: nothing changes
    no_content(unreact(api, carol.token, group, mid, "👍"))    # carol has none: nothing changes
    no_content(unreact(api, carol.token, group, mid, "❤️"))
    no_content(react(api, carol.token, group, mid, "❤️"))
    no_content(react(api, alice.token, group, mid, "❤️"))
    no_content(react(api, carol.token, group, mid, "👍"))
    no_content(react(api, alice.token, group, mid, "👍"))
    # Emoji in the order first used; user_ids in the order they reacted.
    assert reactions() == [
        {"emoji": "👍", "count": 3, "user_ids": [bob.id, carol.id, alice.id]},
        {"emoji": "❤️", "count": 2, "user_ids": [carol.id, alice.id]},
    ]
    no_content(unreact(api, bob.token, group, mid, "👍"))
    no_content(unreact(api, bob.token, group, mid, "👍"))
    no_content(react(api, bob.token, group, mid, "👍"))         # back, now the latest
    # "First used" among the reactions standing: 👍's earliest is now carol's, after her ❤️.
    assert reactions() == [
        {"emoji": "❤️", "count": 2, "user_ids": [carol.id, alice.id]},
        {"emoji": "👍", "count": 3, "user_ids": [carol.id, alice.id, bob.id]},
    ]
    # The seed shapes never show them.
    assert api.messages(bob.token, group) == [message]

    changes = [(bob, "👍", True), (carol, "❤️", True), (alice, "❤️", True), (carol, "👍", True),
               (alice, "👍", True), (bob, "👍", False), (bob, "👍", True)]
    frames, _ = all_events(api, carol.token, start)
    assert [f["op"] for f in frames] == ["REACTION"] * len(changes)
    assert [f["d"] for f in frames] == [
        {"chat_id": group, "message_id": mid, "user_id": user.id, "emoji": emoji, "added": added}
        for user, emoji, added in changes]
    rows = db_rows(stack, "SELECT op, audience, chat_id, message_id FROM events WHERE seq > ? ORDER BY seq", (start,))
    assert rows == [("REACTION", "chat", group, mid)] * len(changes)


VALID_EMOJI = [
    "👍", "❤️", "👍🏽", "🇺🇦", "🏳️‍🌈", "👨‍👩‍👧‍👦", "★", "😀" * 8, "#️⃣", "©",
]
INVALID_EMOJI = [
    "a", "Z", "0", "9", "ok", "👍1", "x👍", "👍 ", " 👍", " ", "\t", "\n", "\r", "\u00a0", "\u2003", "\u3000",
    "\x01", "\x7f", "\u0085", "\u200b\u0000", "😀" * 9, "👍👍👍 👍", "+1",
]


def test_emoji_validation(api, stack, pair):
    alice, bob, chat_id = pair
    message = api.send(alice.token, chat_id, "emoji")
    mid = message["id"]
    before = event_count(stack)
    refused = {}
    for emoji in INVALID_EMOJI:
        for method in (react, unreact):
            response = method(api, bob.token, chat_id, mid, emoji)
            if response.status_code != 400:
                refused[(method.__name__, emoji)] = (response.status_code, response.text[:100])
            else:
                assert_error(response, 400)
    # Not UTF-8 after percent-decoding, or not decodable at all.
    for raw in ("%FF", "%F0%9F%91", "%C0%AF", "%ZZ"):
        response = react(api, bob.token, chat_id, mid, raw, raw=True)
        if response.status_code != 400:
            refused[("raw", raw)] = (response.status_code, response.text[:100])
    assert not refused, f"expected 400 for: {refused}"
    assert event_count(stack) == before
    assert full_message(api, alice.token, chat_id, mid)["reactions"] == []

    for emoji in VALID_EMOJI:
        no_content(react(api, bob.token, chat_id, mid, emoji))
    assert [r["emoji"] for r in full_message(api, alice.token, chat_id, mid)["reactions"]] == VALID_EMOJI
    for emoji in VALID_EMOJI:
        no_content(unreact(api, bob.token, chat_id, mid, emoji))
    assert full_message(api, alice.token, chat_id, mid)["reactions"] == []
    assert event_count(stack) == before + 2 * len(VALID_EMOJI)

    # No emoji at all is never a 2xx.
    response = api.request("PUT", f"/chats/{chat_id}/messages/{mid}/reactions/", bob.token)
    assert_error(response, 400, 404, 405)


def test_at_most_twenty_distinct_emoji_per_message(api, stack, pair):
    alice, bob, chat_id = pair
    message = api.send(alice.token, chat_id, "twenty")
    mid = message["id"]
    twenty = [chr(0x1F600 + i) for i in range(20)]
    for emoji in twenty:
        no_content(react(api, alice.token, chat_id, mid, emoji))
    before = event_count(stack)
    assert_error(react(api, alice.token, chat_id, mid, "🚀"), 400)
    assert_error(react(api, bob.token, chat_id, mid, "🚀"), 400)
    assert event_count(stack) == before
    # An emoji already there is fine for another user, and repeats change nothing.
    no_content(react(api, bob.token, chat_id, mid, twenty[5]))
    no_content(react(api, alice.token, chat_id, mid, twenty[5]))
    reactions = full_message(api, bob.token, chat_id, mid)["reactions"]
    assert [r["emoji"] for r in reactions] == twenty
    assert reactions[5] == {"emoji": twenty[5], "count": 2, "user_ids": [alice.id, bob.id]}
    assert event_count(stack) == before + 1
    # Freeing a slot (its last reaction taken back) makes room for a new one.
    no_content(unreact(api, alice.token, chat_id, mid, twenty[0]))
    no_content(react(api, bob.token, chat_id, mid, "🚀"))
    assert_error(react(api, bob.token, chat_id, mid, "🛸"), 400)
    reactions = full_message(api, bob.token, chat_id, mid)["reactions"]
    assert len(reactions) == 20 and reactions[-1]["emoji"] == "🚀"


def test_reaction_status_order(api, stack, new_user, pair):
    alice, bob, chat_id = pair
    outsider = new_user("ro")
    other = api.initiate(alice.token, target_username=outsider.username)["chat_id"]
    message = api.send(alice.token, chat_id, "m")
    foreign = api.send(alice.token, other, "foreign")
    gone = api.send(bob.token, chat_id, "gone")
    no_content(react(api, alice.token, chat_id, gone["id"], "👍"))
    no_content(delete(api, bob.token, chat_id, gone["id"]))
    before = event_count(stack)
    for method in (react, unreact):
        assert_error(api.request("PUT" if method is react else "DELETE",
                                 reaction_path(chat_id, message["id"], "👍")), 401)
        assert_error(method(api, alice.token, 999_999_999, message["id"], "👍"), 404)
        assert_error(method(api, outsider.token, chat_id, message["id"], "👍"), 403)
        assert_error(method(api, outsider.token, chat_id, 999_999_999, "👍"), 403)
        assert_error(method(api, bob.token, chat_id, 999_999_999, "👍"), 404)
        assert_error(method(api, bob.token, chat_id, foreign["id"], "👍"), 404)
        assert_error(method(api, alice.token, chat_id, gone["id"], "👍"), 404)
    assert event_count(stack) == before
    # Reacting to someone else's message is what reactions are for.
    no_content(react(api, bob.token, chat_id, message["id"], "👍"))
    no_content(react(api, alice.token, chat_id, message["id"], "👍"))


# --- live delivery ---------------------------------------------------------------------------

def test_two_devices_and_a_third_member_see_each_change_live_exactly_once(api, stack, new_user):
    alice, bob = new_user("la"), new_user("lb")
    group = create_group(api, alice, [bob], "live")
    seeded = api.send(bob.token, group, "before the sockets")

    async def scenario():
        async with await P2Client.open_p2(stack, alice, "query", label="alice-1") as a1, \
                await P2Client.open_p2(stack, alice, "identify", label="alice-2") as a2, \
                await P2Client.open_p2(stack, bob, "header", label="bob") as b:
            sockets = (a1, a2, b)
            start = min(s.ready_seq for s in sockets)

            async def everyone(op):
                frames = [await s.recv_event(op) for s in sockets]
                assert frames[0] == frames[1] == frames[2], frames
                return frames[0]

            async def rest(call):
                return await asyncio.to_thread(call)

            m1 = await rest(lambda: send_full(api, alice.token, group, "m1"))
            assert (await everyone("MESSAGE"))["d"] == m1

            await b.send({"chat_id": group, "content": "m2 replies", "reply_to_id": m1["id"], "nonce": "live-1"})
            frames = [await b.recv(), await b.recv()]
            ack = [f for f in frames if is_op(f, "ACK")]
            assert len(ack) == 1, frames
            m2_event = [f for f in frames if is_op(f, "MESSAGE")][0]
            assert m2_event["d"]["reply_to_id"] == m1["id"]
            assert ack[0]["d"] == {"nonce": "live-1", "id": m2_event["d"]["id"]}
            assert (await a1.recv_event("MESSAGE")) == m2_event == (await a2.recv_event("MESSAGE"))
            m2 = m2_event["d"]

            edited = await rest(lambda: ok_json(edit(api, alice.token, group, m1["id"], "m1 edited")))
            assert (await everyone("MESSAGE_EDITED"))["d"] == edited

            await rest(lambda: no_content(react(api, bob.token, group, m1["id"], "👍")))
            await rest(lambda: no_content(react(api, bob.token, group, m1["id"], "👍")))  # no change
            assert (await everyone("REACTION"))["d"] == {
                "chat_id": group, "message_id": m1["id"], "user_id": bob.id, "emoji": "👍", "added": True}
            await rest(lambda: no_content(react(api, alice.token, group, m2["id"], "🎉")))
            assert (await everyone("REACTION"))["d"] == {
                "chat_id": group, "message_id": m2["id"], "user_id": alice.id, "emoji": "🎉", "added": True}
            await rest(lambda: no_content(unreact(api, bob.token, group, m1["id"], "👍")))
            await rest(lambda: no_content(unreact(api, bob.token, group, m1["id"], "👍")))  # no change
            assert (await everyone("REACTION"))["d"] == {
                "chat_id": group, "message_id": m1["id"], "user_id": bob.id, "emoji": "👍", "added": False}

            # The owner deletes bob's reply; bob deletes his own older message.
            await rest(lambda: no_content(delete(api, alice.token, group, m2["id"])))
            assert (await everyone("MESSAGE_DELETED"))["d"] == {"chat_id": group, "message_id": m2["id"]}
            await rest(lambda: no_content(delete(api, bob.token, group, seeded["id"])))
            assert (await everyone("MESSAGE_DELETED"))["d"] == {"chat_id": group, "message_id": seeded["id"]}

            for s in sockets:
                await s.expect_silence(1.0)
            assert a1.events == a2.events and [e for e in a1.events] == [e for e in b.events]
            return start, a1.events

    start, events = run(scenario())
    assert [e["op"] for e in events] == ["MESSAGE", "MESSAGE", "MESSAGE_EDITED", "REACTION", "REACTION",
                                         "REACTION", "MESSAGE_DELETED", "MESSAGE_DELETED"]
    assert [e["seq"] for e in events] == visible_seqs(stack, alice.id, start, skip_deleted=False)


def test_protocol_1_sockets_get_no_frame_for_edits_deletes_or_reactions(api, stack, new_user):
    alice, bob, carol = new_user("pa"), new_user("pb"), new_user("pc")
    group = group_announced(stack, api, alice, [bob, carol], "p1 silence")

    async def scenario():
        async with await Client.open(stack, alice, "header") as a, \
                await Client.open(stack, bob, "identify") as b, \
                await P2Client.open_p2(stack, carol, "query") as c:
            m1 = await asyncio.to_thread(lambda: api.send(alice.token, group, "m1"))
            for p1 in (a, b):
                frame = await p1.recv()
                assert strict_p1_frame(frame) == "message" and frame == m1
            assert (await c.recv_event("MESSAGE"))["d"]["id"] == m1["id"]
            m_gone = await asyncio.to_thread(lambda: api.send(bob.token, group, "soon gone"))
            for p1 in (a, b):
                assert await p1.recv() == m_gone
            await c.recv_event("MESSAGE")

            def changes():
                ok_json(edit(api, alice.token, group, m1["id"], "m1 edited"))
                no_content(react(api, bob.token, group, m1["id"], "👍"))
                no_content(react(api, carol.token, group, m1["id"], "❤️"))
                no_content(unreact(api, bob.token, group, m1["id"], "👍"))
                no_content(delete(api, alice.token, group, m_gone["id"]))
            await asyncio.to_thread(changes)
            got = [(await c.recv_event())["op"] for _ in range(5)]
            assert got == ["MESSAGE_EDITED", "REACTION", "REACTION", "REACTION", "MESSAGE_DELETED"]
            for p1 in (a, b):
                await p1.expect_silence(LIVE_QUIET)

            # A reply still reaches protocol 1 — as the bare seed message, nothing more.
            reply = await asyncio.to_thread(lambda: ok_json(api.post(
                f"/chats/{group}/messages", carol.token, json={"content": "reply", "reply_to_id": m1["id"]})))
            for p1 in (a, b):
                frame = await p1.recv()
                assert strict_p1_frame(frame) == "message" and frame == reply
                await p1.expect_silence(0.3)
            assert (await c.recv_event("MESSAGE"))["d"]["reply_to_id"] == m1["id"]

    run(scenario())
    seed = api.messages(bob.token, group)
    strict_seed_history(seed)
    assert [m["content"] for m in seed] == ["m1 edited", "reply"]


# --- resume ----------------------------------------------------------------------------------

def test_offline_client_gets_50_mixed_changes_on_resume_in_order_once(api, stack, new_user):
    """Carol is offline while alice, bob and dave make 50 changes (sends, replies, edits,
    deletions, reactions) in their group and in a direct chat she is not in. On resume she
    gets exactly the events she may see after her `since`, in order, once — without the
    MESSAGE / MESSAGE_EDITED events of messages deleted meanwhile — then the live stream;
    GET /events gives the same frames. Bob's strict protocol-1 socket and bob's seed REST
    reads see no new field anywhere throughout."""
    alice, bob, carol, dave = (new_user(p) for p in ("oa", "ob", "oc", "od"))
    group = group_announced(stack, api, alice, [bob, carol, dave], "offline")
    direct = create_chat_announced(
        stack, alice, lambda: api.initiate(alice.token, target_username=bob.username)["chat_id"])
    people = {u.id: u for u in (alice, bob, dave)}
    live: dict[int, dict] = {}  # message id -> {"chat", "sender"}
    for i in range(8):
        sender = (alice, bob, dave)[i % 3]
        chat = group if i % 4 else direct
        if chat == direct and sender is dave:
            sender = bob
        live[api.send(sender.token, chat, f"before {i}")["id"]] = {"chat": chat, "sender": sender.id}
    initial = set(live)

    rng = random.Random(13)
    log: list[str] = []

    def one_change(i: int) -> None:
        kinds = ["send", "reply", "edit", "delete", "react", "unreact"]
        while True:
            kind = rng.choice(kinds)
            if kind in ("send", "reply"):
                chat = rng.choice([group, group, direct])
                members = [alice, bob, dave] if chat == group else [alice, bob]
                sender = rng.choice(members)
                body = {"content": f"change {i} {kind}"}
                targets = [m for m, info in live.items() if info["chat"] == chat]
                if kind == "reply":
                    if not targets:
                        continue
                    body["reply_to_id"] = rng.choice(targets)
                message = ok_json(api.post(f"/chats/{chat}/messages", sender.token, json=body))
                live[message["id"]] = {"chat": chat, "sender": sender.id}
            elif kind == "edit":
                if not live:
                    continue
                mid = rng.choice(sorted(live))
                info = live[mid]
                ok_json(edit(api, people[info["sender"]].token, info["chat"], mid, f"edit {i}"))
            elif kind == "delete":
                if len(live) < 4:
                    continue
                mid = rng.choice(sorted(live))
                info = live[mid]
                who = people[info["sender"]] if (rng.random() < 0.5 or info["chat"] == direct) else alice
                no_content(delete(api, who.token, info["chat"], mid))
                del live[mid]
            elif kind == "react":
                if not live:
                    continue
                mid = rng.choice(sorted(live))
                info = live[mid]
                members = [alice, bob, dave] if info["chat"] == group else [alice, bob]
                user, emoji = rng.choice(members), rng.choice(["👍", "❤️", "🎉", "😂"])
                existing = db_value(stack, "SELECT count(*) FROM reactions WHERE message_id=? AND emoji=? AND user_id=?",
                                    (mid, emoji, user.id))
                if existing:
                    continue
                no_content(react(api, user.token, info["chat"], mid, emoji))
            elif kind == "unreact":
                rows = db_rows(stack, "SELECT r.message_id, r.emoji, r.user_id FROM reactions r "
                                      "JOIN messages m ON m.id = r.message_id WHERE m.chat_id IN (?, ?) "
                                      "ORDER BY r.seq", (group, direct))
                rows = [r for r in rows if r[2] in people]
                if not rows:
                    continue
                mid, emoji, uid = rng.choice(rows)
                no_content(unreact(api, people[uid].token, live[mid]["chat"], mid, emoji))
            log.append(kind)
            return

    async def scenario():
        async with await Client.open(stack, bob, "header") as strict_bob:
            # Carol's last processed seq: the READY of a socket she then closes.
            async with await P2Client.open_p2(stack, carol, "query") as c:
                since = c.ready_seq

            def changes():
                for i in range(50):
                    one_change(i)
                    if i % 10 == 9:  # some idempotent no-ops in between: no events
                        mid = [m for m, info in live.items() if info["chat"] == group][-1]
                        no_content(unreact(api, dave.token, group, mid, "🦄"))
            await asyncio.to_thread(changes)
            head = head_seq(stack)

            # Bob's protocol-1 socket: only bare seed messages (the sends), each once.
            p1_frames = []
            while True:
                try:
                    frame = await strict_bob.recv(timeout=LIVE_QUIET)
                except AssertionError as error:
                    if "no frame within" in str(error):
                        break
                    raise
                assert strict_p1_frame(frame) == "message", frame
                p1_frames.append(frame)

            expected = visible_seqs(stack, carol.id, since)
            # Resume, one socket by IDENTIFY, one by the query.
            async with await P2Client.open_p2(stack, carol, "identify", since=since, label="carol-identify") as r1, \
                    await P2Client.open_p2(stack, carol, "query", since=since, label="carol-query") as r2:
                assert r1.ready_seq >= head and r2.ready_seq >= head
                replay1 = await r1.recv_events(len(expected))
                replay2 = await r2.recv_events(len(expected))
                await r1.expect_silence(0.5)
                await r2.expect_silence(0.1)
                # Then the live stream, no gap, no duplicate.
                after = await asyncio.to_thread(lambda: api.send(alice.token, group, "after the resume"))
                live1 = await r1.recv_event("MESSAGE")
                live2 = await r2.recv_event("MESSAGE")
                assert live1 == live2 and live1["d"]["id"] == after["id"] and live1["seq"] > head
                await r1.expect_silence(0.5)
                await r2.expect_silence(0.1)
            return since, expected, replay1, replay2, p1_frames, after

    since, expected, replay1, replay2, p1_frames, after = run(scenario(), timeout=120)
    assert len(log) == 50 and {"send", "reply", "edit", "delete", "react", "unreact"} <= set(log), log

    assert [e["seq"] for e in replay1] == expected
    assert replay1 == replay2
    ops = [e["op"] for e in replay1]
    assert {"MESSAGE", "MESSAGE_EDITED", "MESSAGE_DELETED", "REACTION"} <= set(ops), ops
    # Nothing of the direct chat she is not in; nothing about a deleted message but its deletion
    # and reactions; every event about a live message is rendered as it is now.
    current = {m["id"]: m for m in full_history(api, carol.token, group, "after_id=0&limit=1000")}
    deleted_in_group = {row[0] for row in db_rows(
        stack, "SELECT id FROM messages WHERE chat_id = ? AND deleted_at IS NOT NULL", (group,))}
    assert deleted_in_group, "the scenario deleted nothing in the group"
    for event in replay1:
        assert event["d"]["chat_id"] == group, event
        mid = message_id_of(event)
        if event["op"] in ("MESSAGE", "MESSAGE_EDITED"):
            assert mid not in deleted_in_group, event
            assert event["d"] == current[mid] or mid == after["id"], (event, current.get(mid))
    replayed_deletions = {e["d"]["message_id"] for e in replay1 if e["op"] == "MESSAGE_DELETED"}
    deleted_after_since = {row[0] for row in db_rows(
        stack, "SELECT message_id FROM events WHERE op = 'MESSAGE_DELETED' AND chat_id = ? AND seq > ?",
        (group, since))}
    assert replayed_deletions == deleted_after_since

    # GET /events: the same frames, page by page (plus the live one).
    pulled, final = all_events(api, carol.token, since, limit=7)
    assert pulled[:len(replay1)] == replay1
    assert [e["op"] for e in pulled[len(replay1):]] == ["MESSAGE"] and final >= pulled[-1]["seq"]

    # Bob's protocol-1 view: bare messages only, for the sends only, each once; seed REST strict.
    p1_ids = [f["id"] for f in p1_frames]
    assert len(p1_ids) == len(set(p1_ids))
    sent_after = {row[0] for row in db_rows(
        stack, "SELECT message_id FROM events WHERE op = 'MESSAGE' AND seq > ? AND chat_id IN (?, ?)",
        (since, group, direct))}
    # (A message sent just before the socket opened may still reach it: the seed guarantee is
    # only for messages committed after the upgrade.)
    assert set(p1_ids) <= sent_after | initial
    never_deleted = {m for m in sent_after if m in live}
    assert never_deleted <= set(p1_ids)
    for chat in (group, direct):
        seed = api.messages(bob.token, chat, "?after_id=0&limit=1000")
        strict_seed_history(seed)
        assert {m["id"] for m in seed} == {m for m, info in live.items() if info["chat"] == chat} | (
            {after["id"]} if chat == group else set())
    strict_legacy_history(ok_json(api.get(f"/history/{alice.username}", bob.token)))
    for chat in ok_json(api.get("/chats", bob.token)):
        assert_keys(chat, {"id", "name", "chat_type", "created_at", "participants"})


# --- concurrency -----------------------------------------------------------------------------

def parallel(calls, workers: int):
    """Runs the calls at once (a barrier releases them together); returns their results."""
    barrier = threading.Barrier(len(calls))

    def wrapped(call):
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(wrapped, calls))


def test_fifty_parallel_reactions_of_fifty_members_on_one_message(api, stack, new_user):
    owner = new_user("hot")
    members = [new_user(f"h{i}") for i in range(50)]
    group = create_group(api, owner, members, "hot message")
    message = api.send(owner.token, group, "react!")
    mid = message["id"]
    url = stack.base_url + reaction_path(group, mid, "🔥")

    def call(method, member):
        return lambda: requests.request(method, url, headers=auth(member.token), timeout=TIMEOUT)

    async def scenario():
        async with await P2Client.open_p2(stack, owner, "query") as o:
            start = o.ready_seq
            responses = await asyncio.to_thread(parallel, [call("PUT", m) for m in members], 50)
            statuses = [(r.status_code, r.text[:80]) for r in responses]
            assert statuses == [(204, "")] * 50, statuses
            events = await o.recv_events(50, timeout=10)
            assert {e["d"]["user_id"] for e in events} == {m.id for m in members}
            assert all(e["op"] == "REACTION" and e["d"]["added"] is True and e["d"]["message_id"] == mid
                       and e["d"]["emoji"] == "🔥" for e in events)
            await o.expect_silence(0.5)

            # All of them again: nothing changes, no event.
            responses = await asyncio.to_thread(parallel, [call("PUT", m) for m in members], 50)
            assert [r.status_code for r in responses] == [204] * 50
            await o.expect_silence(1.0)
            return start, events

    start, events = run(scenario(), timeout=120)
    reactions = full_message(api, owner.token, group, mid)["reactions"]
    ordered = [e["d"]["user_id"] for e in events]  # in seq order: the order they reacted
    assert reactions == [{"emoji": "🔥", "count": 50, "user_ids": ordered[:20]}]
    rows = db_rows(stack, "SELECT op FROM events WHERE message_id = ? AND seq > ?", (mid, start))
    assert rows == [("REACTION",)] * 50
    assert db_value(stack, "SELECT count(*) FROM reactions WHERE message_id = ?", (mid,)) == 50
    reaction_seqs = [row[0] for row in db_rows(
        stack, "SELECT user_id FROM reactions WHERE message_id = ? ORDER BY seq", (mid,))]
    assert reaction_seqs == ordered

    # And all take it back at once: count 0, 50 more events with added false.
    responses = parallel([call("DELETE", m) for m in members], 50)
    assert [r.status_code for r in responses] == [204] * 50
    assert full_message(api, owner.token, group, mid)["reactions"] == []
    frames, _ = all_events(api, members[0].token, start)
    removed = [f for f in frames if f["op"] == "REACTION" and not f["d"]["added"]]
    assert len(removed) == 50 and {f["d"]["user_id"] for f in removed} == {m.id for m in members}


def test_an_edit_racing_a_delete_ends_consistent_everywhere(api, stack, new_user):
    owner, sender, watcher = new_user("xo"), new_user("xs"), new_user("xw")
    group = create_group(api, owner, [sender, watcher], "race")
    keeper = api.send(owner.token, group, "keeps the chat non-empty")
    rounds = 20

    def edit_call(mid, i):
        return lambda: requests.patch(f"{stack.base_url}/chats/{group}/messages/{mid}", headers=auth(sender.token),
                                      json={"content": f"edited {i}"}, timeout=TIMEOUT)

    def delete_call(mid, who):
        return lambda: requests.delete(f"{stack.base_url}/chats/{group}/messages/{mid}", headers=auth(who.token),
                                       timeout=TIMEOUT)

    async def scenario():
        async with await P2Client.open_p2(stack, watcher, "query") as w:
            since = w.ready_seq
            outcomes = []
            for i in range(rounds):
                message = await asyncio.to_thread(lambda: api.send(sender.token, group, f"race {i}"))
                await w.recv_until(lambda f: is_op(f, "MESSAGE") and f["d"]["id"] == message["id"])
                deleter = owner if i % 2 else sender
                calls = [edit_call(message["id"], i), delete_call(message["id"], deleter)]
                if i % 3 == 0:
                    calls.reverse()
                results = await asyncio.to_thread(parallel, calls, 2)
                if i % 3 == 0:
                    results.reverse()
                edited, deleted = results
                assert deleted.status_code == 204, deleted.text
                assert edited.status_code in (200, 404), (edited.status_code, edited.text)
                if edited.status_code == 200:
                    assert edited.json()["content"] == f"edited {i}"
                else:
                    assert_keys(edited.json(), {"error"})
                outcomes.append((message["id"], edited.status_code))
                # Once the delete has succeeded, the message is gone and stays gone.
                assert message["id"] not in seed_ids(api, watcher.token, group)
            await asyncio.to_thread(lambda: api.send(owner.token, group, "the end"))
            _, rest = await w.recv_until(lambda f: is_op(f, "MESSAGE") and f["d"]["content"] == "the end", timeout=10)
            await w.expect_silence(0.5)
            return since, outcomes, w.events

    since, outcomes, live_events = run(scenario(), timeout=180)
    print(f"edit won {sum(s == 200 for _, s in outcomes)} of {rounds} races")

    seed = seed_ids(api, watcher.token, group)
    full = {m["id"]: m for m in full_history(api, watcher.token, group)}
    replay, _ = all_events(api, watcher.token, since)
    chat = ok_json(api.get(f"/chats/{group}?v=2", watcher.token))
    for mid, status in outcomes:
        assert mid not in seed and mid not in full
        ops = [op for _, op in message_events(stack, mid)]
        assert ops == (["MESSAGE", "MESSAGE_EDITED", "MESSAGE_DELETED"] if status == 200
                       else ["MESSAGE", "MESSAGE_DELETED"]), (mid, status, ops)
        assert db_value(stack, "SELECT deleted_at IS NOT NULL FROM messages WHERE id = ?", (mid,)) == 1
        # Live: one MESSAGE_DELETED, the last word; an edit, if delivered, before it.
        about = [e["op"] for e in live_events if message_id_of(e) == mid]
        assert about.count("MESSAGE_DELETED") == 1 and about[-1] == "MESSAGE_DELETED", (mid, about)
        assert about.count("MESSAGE_EDITED") <= (1 if status == 200 else 0), (mid, status, about)
        # Replay: only the deletion.
        assert [e["op"] for e in replay if message_id_of(e) == mid] == ["MESSAGE_DELETED"], mid
    assert keeper["id"] in seed
    assert chat["last_message"]["content"] == "the end"


# --- more rules around the four changes --------------------------------------------------------

def test_a_nonce_retry_after_its_message_was_deleted_is_refused(api, stack, pair):
    alice, bob, chat_id = pair
    first = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token, json={"content": "once", "nonce": "del-n"}))
    assert ok_json(api.post(f"/chats/{chat_id}/messages", alice.token,
                            json={"content": "once", "nonce": "del-n"}))["id"] == first["id"]
    no_content(delete(api, alice.token, chat_id, first["id"]))
    before = event_count(stack)
    assert_error(api.post(f"/chats/{chat_id}/messages", alice.token, json={"content": "once", "nonce": "del-n"}), 400)

    async def scenario():
        async with await Client.open(stack, alice) as a, await P2Client.open_p2(stack, bob) as b:
            await a.send({"chat_id": chat_id, "content": "once", "nonce": "del-n"})
            await a.recv_error(nonce="del-n")
            await b.expect_silence(0.5)

    run(scenario())
    assert api.messages(bob.token, chat_id) == []
    assert event_count(stack) == before


def test_edit_shows_in_last_message_and_keeps_reactions_and_reply(api, stack, pair):
    alice, bob, chat_id = pair
    original = api.send(bob.token, chat_id, "original")
    reply = send_full(api, alice.token, chat_id, "reply", reply_to_id=original["id"])
    no_content(react(api, bob.token, chat_id, reply["id"], "👍"))
    edited = ok_json(edit(api, alice.token, chat_id, reply["id"], "reply, edited"))
    assert edited["reply_to_id"] == original["id"]
    assert edited["reactions"] == [{"emoji": "👍", "count": 1, "user_ids": [bob.id]}]
    chat = ok_json(api.get(f"/chats/{chat_id}?v=2", bob.token))
    assert chat["last_message"] == edited
    seed_chat = ok_json(api.get(f"/chats/{chat_id}", bob.token))
    assert_keys(seed_chat, {"id", "name", "chat_type", "created_at", "participants"})


def test_admin_rights_follow_the_role_and_a_removed_member_loses_them(api, stack, new_user):
    owner, admin, member = new_user("ao"), new_user("aa"), new_user("am")
    group = create_group(api, owner, [admin, member], "roles")
    ok_json(api.patch(f"/chats/{group}/members/{admin.id}", owner.token, json={"role": "admin"}))
    messages = [api.send(member.token, group, f"m{i}") for i in range(3)]
    no_content(delete(api, admin.token, group, messages[0]["id"]))
    ok_json(api.patch(f"/chats/{group}/members/{admin.id}", owner.token, json={"role": "member"}))
    assert_error(delete(api, admin.token, group, messages[1]["id"]), 403)

    # A removed member: no longer a member, so 403 for their own message too.
    no_content(api.request("DELETE", f"/chats/{group}/members/{member.id}", owner.token))
    before = event_count(stack)
    assert_error(edit(api, member.token, group, messages[1]["id"], "after removal"), 403)
    assert_error(delete(api, member.token, group, messages[1]["id"]), 403)
    assert_error(react(api, member.token, group, messages[1]["id"], "👍"), 403)
    assert_error(unreact(api, member.token, group, messages[1]["id"], "👍"), 403)
    assert_error(api.post(f"/chats/{group}/messages", member.token,
                          json={"content": "x", "reply_to_id": messages[1]["id"]}), 403)
    assert event_count(stack) == before
    # The owner can still delete what they left behind.
    no_content(delete(api, owner.token, group, messages[1]["id"]))
    assert seed_ids(api, owner.token, group) == [messages[2]["id"]]


def test_a_resume_racing_changes_misses_nothing_and_repeats_nothing(api, stack, new_user):
    """Carol resumes from `since` while alice and bob keep editing, deleting and reacting: she
    gets every event she may see once, in order; what she does not get is only the MESSAGE /
    MESSAGE_EDITED of a message deleted before it was delivered."""
    alice, bob, carol = new_user("qa"), new_user("qb"), new_user("qc")
    group = create_group(api, alice, [bob, carol], "racing resume")
    pool = [api.send((alice, bob)[i % 2].token, group, f"seed {i}") for i in range(30)]
    since = head_seq(stack)
    rng = random.Random(7)

    def changes():
        alive = [(m["id"], m["sender_id"]) for m in pool]
        for i in range(60):
            kind = rng.choice(["send", "edit", "delete", "react"])
            if kind == "send" or len(alive) < 5:
                sender = rng.choice((alice, bob))
                m = ok_json(api.post(f"/chats/{group}/messages", sender.token,
                                     json={"content": f"racing {i}", "reply_to_id": rng.choice(alive)[0]}))
                alive.append((m["id"], sender.id))
            elif kind == "edit":
                mid, sid = rng.choice(alive)
                ok_json(edit(api, (alice if sid == alice.id else bob).token, group, mid, f"racing edit {i}"))
            elif kind == "delete":
                mid, sid = alive.pop(rng.randrange(len(alive)))
                no_content(delete(api, alice.token, group, mid))  # the owner may delete any
            else:
                mid, _ = rng.choice(alive)
                no_content(react(api, rng.choice((alice, bob)).token, group, mid, rng.choice(["👍", "🎉"])))
        return api.send(alice.token, group, "the end")

    async def scenario():
        worker = asyncio.create_task(asyncio.to_thread(changes))
        await asyncio.sleep(0.05)
        async with await P2Client.open_p2(stack, carol, "query", since=since) as c:
            end = await worker
            await c.recv_until(lambda f: is_op(f, "MESSAGE") and f["d"]["id"] == end["id"], timeout=20)
            await c.expect_silence(0.5)
            return c.events

    events = run(scenario(), timeout=120)
    got = [e["seq"] for e in events]
    assert len(got) == len(set(got))
    must = visible_seqs(stack, carol.id, since, skip_deleted=True)
    may = set(visible_seqs(stack, carol.id, since, skip_deleted=False))
    missing = sorted(set(must) - set(got))
    extra = sorted(set(got) - may)
    assert not missing and not extra, f"missing {missing[:20]}, unexpected {extra[:20]}"
    deleted = {e["d"]["message_id"] for e in events if e["op"] == "MESSAGE_DELETED"}
    for event in events:
        if event["op"] in ("MESSAGE", "MESSAGE_EDITED") and event["d"]["id"] in deleted:
            later = [e for e in events if e["op"] == "MESSAGE_DELETED" and e["d"]["message_id"] == event["d"]["id"]]
            assert later[0]["seq"] > event["seq"]


def test_history_paging_skips_deleted_messages(api, stack, pair):
    alice, bob, chat_id = pair
    sent = [api.send(alice.token, chat_id, f"p{i}") for i in range(8)]
    for index in (1, 2, 6):
        no_content(delete(api, alice.token, chat_id, sent[index]["id"]))
    live = [m for i, m in enumerate(sent) if i not in (1, 2, 6)]
    ids = [m["id"] for m in live]
    # The newest 2, the oldest 2, and pages on either side of a deleted id: limit counts live ones.
    assert [m["id"] for m in api.messages(bob.token, chat_id, "?limit=2")] == ids[-2:]
    assert [m["id"] for m in api.messages(bob.token, chat_id, "?after_id=0&limit=2")] == ids[:2]
    assert [m["id"] for m in api.messages(bob.token, chat_id, f"?before_id={sent[6]['id']}&limit=2")] == ids[2:4]
    assert [m["id"] for m in api.messages(bob.token, chat_id, f"?after_id={sent[1]['id']}&limit=2")] == ids[1:3]
    assert [m["id"] for m in full_history(api, bob.token, chat_id, "limit=3")] == ids[-3:]
    assert [m["id"] for m in full_history(api, bob.token, chat_id, "after_id=0&limit=3")] == ids[:3]
    legacy = ok_json(api.get(f"/history/{alice.username}?limit=2", bob.token))
    strict_legacy_history(legacy)
    assert [h["id"] for h in legacy] == ids[-2:]


def test_a_deleted_message_leaves_the_unread_count(api, stack, pair):
    alice, bob, chat_id = pair
    sent = [api.send(alice.token, chat_id, f"unread {i}") for i in range(3)]

    def unread():
        return ok_json(api.get(f"/chats/{chat_id}?v=2", bob.token))["unread_count"]

    assert unread() == 3
    no_content(delete(api, alice.token, chat_id, sent[1]["id"]))
    assert unread() == 2
    no_content(delete(api, alice.token, chat_id, sent[2]["id"]))
    assert unread() == 1
    ok_json(edit(api, alice.token, chat_id, sent[0]["id"], "edited, still unread"))
    assert unread() == 1


def test_wrong_methods_on_the_new_paths_are_405(api, stack, pair):
    alice, bob, chat_id = pair
    message = api.send(alice.token, chat_id, "methods")
    message_path = f"/chats/{chat_id}/messages/{message['id']}"
    for method in ("GET", "POST", "PUT"):
        assert_error(api.request(method, message_path, alice.token, json={"content": "x"}), 405)
    for method in ("GET", "POST", "PATCH"):
        assert_error(api.request(method, reaction_path(chat_id, message["id"], "👍"), alice.token), 405)
    assert api.messages(bob.token, chat_id) == [message]
    assert full_message(api, bob.token, chat_id, message["id"])["reactions"] == []
