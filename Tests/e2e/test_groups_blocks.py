"""Groups that can be run, and blocks (issue 15), through nginx: every permission cell of the
member, role and rename endpoints (owner / admin / member / non-member / removed) as a table;
validation and status order; ownership passing on leave; CHAT and CHAT_REMOVED live, on
resume and over GET /events; a removal cutting off two live devices at once while messages
race it; blocks on every send path; a strict protocol-1 client that sees only seed frames
while all of this happens."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from group_helpers import (
    P2,
    StrictP1,
    add_members,
    all_events,
    assert_member,
    assert_member_list,
    block,
    blocks,
    chat_v2,
    create_group,
    event_chat_id,
    get_members,
    head_seq,
    history_contents,
    members,
    message_seq,
    no_content,
    remove_member,
    rename,
    roles,
    send_rest,
    set_role,
    strict_p1_frame,
    unblock,
)
from helpers import (
    CHAT_KEYS,
    MESSAGE_KEYS,
    USER_KEYS,
    assert_chat,
    assert_error,
    assert_keys,
    assert_message,
    ok_json,
    unique_username,
)
from stream_helpers import assert_chat_v2
from ws_helpers import create_chat_announced, is_message, is_op, run

UNKNOWN_CHAT = 987_654_321
UNKNOWN_USER = 987_654_320
QUIET = 1.0  # seconds of silence that count as "nothing more of that chat arrives"


def group_announced(stack, api, owner, others, name="group") -> int:
    """A group whose CHAT the relay has already announced to the owner (so sockets opened
    afterwards see no creation frame for it)."""
    return create_chat_announced(stack, owner, lambda: create_group(api, owner, others, name))


# --- the permission table --------------------------------------------------------------------

class Room:
    """A group with one user in each position: owner, two admins, a member, a target member,
    a user who is not a member, a removed member, and a fresh user nobody has added."""

    def __init__(self, api, new_user):
        self.owner, self.admin, self.admin2 = new_user("own"), new_user("adm"), new_user("adm")
        self.member, self.target = new_user("mem"), new_user("tgt")
        self.outsider, self.removed, self.fresh = new_user("out"), new_user("rem"), new_user("new")
        self.chat_id = create_group(api, self.owner, [self.admin, self.admin2, self.member, self.target,
                                                      self.removed], "perm")
        for admin in (self.admin, self.admin2):
            assert ok_json(set_role(api, self.owner.token, self.chat_id, admin.id, "admin"))["role"] == "admin"
        no_content(remove_member(api, self.owner.token, self.chat_id, self.removed.id))

    def caller(self, position: str):
        return getattr(self, position)


POSITIONS = ("owner", "admin", "member", "outsider", "removed")


def _get_chat(api, room, me):
    return api.get(f"/chats/{room.chat_id}", me.token)


def _get_chat_v2(api, room, me):
    return api.get(f"/chats/{room.chat_id}?v=2", me.token)


def _get_messages(api, room, me):
    return api.get(f"/chats/{room.chat_id}/messages", me.token)


def _send(api, room, me):
    return send_rest(api, me.token, room.chat_id, "permission cell")


def _get_members(api, room, me):
    return get_members(api, me.token, room.chat_id)


def _add(api, room, me):
    return add_members(api, me.token, room.chat_id, [room.fresh.id])


def _remove_member(api, room, me):
    return remove_member(api, me.token, room.chat_id, room.target.id)


def _remove_admin(api, room, me):
    return remove_member(api, me.token, room.chat_id, room.admin2.id)


def _remove_owner(api, room, me):
    return remove_member(api, me.token, room.chat_id, room.owner.id)


def _leave(api, room, me):
    return remove_member(api, me.token, room.chat_id, me.id)


def _set_role(api, room, me):
    return set_role(api, me.token, room.chat_id, room.target.id, "admin")


def _rename(api, room, me):
    return rename(api, me.token, room.chat_id, "renamed by a cell")


ENDPOINTS = {
    "GET /chats/:id": _get_chat,
    "GET /chats/:id?v=2": _get_chat_v2,
    "GET /chats/:id/messages": _get_messages,
    "POST /chats/:id/messages": _send,
    "GET /chats/:id/members": _get_members,
    "POST /chats/:id/members": _add,
    "DELETE members/:member": _remove_member,
    "DELETE members/:admin": _remove_admin,
    "DELETE members/:owner": _remove_owner,
    "DELETE members/:me (leave)": _leave,
    "PATCH members/:uid {role}": _set_role,
    "PATCH /chats/:id {name}": _rename,
}

# endpoint -> expected status for owner, admin, member, outsider, removed
EXPECTED = {
    "GET /chats/:id": (200, 200, 200, 403, 403),
    "GET /chats/:id?v=2": (200, 200, 200, 403, 403),
    "GET /chats/:id/messages": (200, 200, 200, 403, 403),
    "POST /chats/:id/messages": (200, 200, 200, 403, 403),
    "GET /chats/:id/members": (200, 200, 200, 403, 403),
    "POST /chats/:id/members": (200, 200, 403, 403, 403),
    "DELETE members/:member": (204, 204, 403, 403, 403),
    "DELETE members/:admin": (204, 403, 403, 403, 403),
    "DELETE members/:owner": (204, 403, 403, 403, 403),  # the owner: that is leaving
    "DELETE members/:me (leave)": (204, 204, 204, 403, 403),
    "PATCH members/:uid {role}": (200, 403, 403, 403, 403),
    "PATCH /chats/:id {name}": (200, 200, 403, 403, 403),
}

CELLS = [
    pytest.param(endpoint, position, EXPECTED[endpoint][i], id=f"{endpoint} as {position}")
    for endpoint in ENDPOINTS
    for i, position in enumerate(POSITIONS)
]


def snapshot(api, room):
    """What a refused call must leave as it was: the members with roles, the name, history."""
    chat = chat_v2(api, room.owner.token, room.chat_id)
    return (
        [(m["user_id"], m["role"]) for m in members(api, room.owner.token, room.chat_id)],
        chat["name"],
        history_contents(api, room.owner.token, room.chat_id),
    )


@pytest.mark.parametrize("endpoint,position,expected", CELLS)
def test_permission_cell(api, new_user, endpoint, position, expected):
    room = Room(api, new_user)
    me = room.caller(position)
    before = snapshot(api, room)
    response = ENDPOINTS[endpoint](api, room, me)
    if expected >= 400:
        assert_error(response, expected)
        assert snapshot(api, room) == before, f"{endpoint} as {position} was refused but changed something"
        return
    if expected == 204:
        no_content(response)
    else:
        assert response.status_code == expected, (endpoint, position, response.status_code, response.text[:300])
    after = roles(api, room.owner.token if endpoint != "DELETE members/:owner" and not (
        endpoint.endswith("(leave)") and position == "owner") else room.admin.token, room.chat_id)
    body = response.json() if expected == 200 else None
    if endpoint == "GET /chats/:id":
        assert_chat(body)
        assert body["id"] == room.chat_id and room.removed.id not in body["participants"]
    elif endpoint == "GET /chats/:id?v=2":
        assert_chat_v2(body)
        assert body["my_role"] == position, body
    elif endpoint == "GET /chats/:id/messages":
        assert_keys(body, {"chat_id", "messages"})
    elif endpoint == "POST /chats/:id/messages":
        assert_message(body)
        assert body["sender_id"] == me.id and body["chat_id"] == room.chat_id
    elif endpoint == "GET /chats/:id/members":
        assert_member_list(body)
        assert {m["user_id"]: m["role"] for m in body} == after
        assert after == {room.owner.id: "owner", room.admin.id: "admin", room.admin2.id: "admin",
                         room.member.id: "member", room.target.id: "member"}
    elif endpoint == "POST /chats/:id/members":
        assert_member_list(body)
        assert {m["user_id"]: m["role"] for m in body} == after
        assert after.get(room.fresh.id) == "member"
    elif endpoint == "DELETE members/:member":
        assert room.target.id not in after
        assert_error(api.get(f"/chats/{room.chat_id}", room.target.token), 403)
    elif endpoint == "DELETE members/:admin":
        assert room.admin2.id not in after
    elif endpoint in ("DELETE members/:owner", "DELETE members/:me (leave)"):
        assert me.id not in after
        assert_error(api.get(f"/chats/{room.chat_id}", me.token), 403)
        if position == "owner":
            # admin and admin2 joined together, with the group: the lower user id is the elder.
            assert after[room.admin.id] == "owner", after
    elif endpoint == "PATCH members/:uid {role}":
        assert_keys(body, {"user_id", "role", "joined_at"})
        assert_member(body)
        assert body["user_id"] == room.target.id and body["role"] == "admin"
        assert after[room.target.id] == "admin"
    elif endpoint == "PATCH /chats/:id {name}":
        assert_chat_v2(body)
        assert body["name"] == "renamed by a cell" and body["id"] == room.chat_id
        assert body["my_role"] == position, body
        assert chat_v2(api, room.member.token, room.chat_id)["name"] == "renamed by a cell"


# --- status order: unknown chats, direct chats, no token -------------------------------------

def _member_calls(chat_id, other_id, me_id):
    return [
        ("GET", f"/chats/{chat_id}/members", None),
        ("POST", f"/chats/{chat_id}/members", {"user_ids": [other_id]}),
        ("DELETE", f"/chats/{chat_id}/members/{other_id}", None),
        ("DELETE", f"/chats/{chat_id}/members/{me_id}", None),
        ("PATCH", f"/chats/{chat_id}/members/{other_id}", {"role": "admin"}),
        ("PATCH", f"/chats/{chat_id}", {"name": "a name"}),
    ]


CALL_IDS = ["GET members", "POST members", "DELETE member", "DELETE me", "PATCH role", "PATCH name"]


@pytest.mark.parametrize("index", range(6), ids=CALL_IDS)
def test_unknown_chat_is_404(api, new_user, index):
    me, other = new_user("u404"), new_user("o404")
    method, path, body = _member_calls(UNKNOWN_CHAT, other.id, me.id)[index]
    assert_error(api.request(method, path, me.token, json=body), 404)


@pytest.mark.parametrize("index", range(6), ids=CALL_IDS)
def test_direct_chats_refuse_every_member_and_rename_endpoint_with_400(api, new_user, index):
    alice, bob, carol = new_user("da"), new_user("db"), new_user("dc")
    chat_id = api.initiate(alice.token, target_username=bob.username)["chat_id"]
    calls = _member_calls(chat_id, bob.id, alice.id)
    method, path, body = calls[index]
    if index == 1:
        body = {"user_ids": [carol.id]}
    assert_error(api.request(method, path, alice.token, json=body), 400)
    # Nothing changed: both still in it, as members, the name unset.
    chat = chat_v2(api, alice.token, chat_id)
    assert sorted(chat["participants"]) == sorted([alice.id, bob.id]) and chat["name"] is None
    assert chat["my_role"] == "member" and chat_v2(api, bob.token, chat_id)["my_role"] == "member"
    assert_error(api.get(f"/chats/{chat_id}", carol.token), 403)


@pytest.mark.parametrize("index", range(6), ids=CALL_IDS)
def test_member_endpoints_need_a_token(api, new_user, index):
    owner, other = new_user("t401"), new_user("t401")
    chat_id = create_group(api, owner, [other])
    method, path, body = _member_calls(chat_id, other.id, owner.id)[index]
    assert_error(api.request(method, path, None, json=body), 401)
    assert_error(api.request(method, path, "not.a.token", json=body), 401)


@pytest.mark.parametrize("method,path", [("GET", "/users/me/blocks"), ("PUT", "/users/me/blocks/1"),
                                         ("DELETE", "/users/me/blocks/1")])
def test_block_endpoints_need_a_token(api, method, path):
    assert_error(api.request(method, path, None), 401)


@pytest.mark.parametrize("method,path", [
    ("PUT", "/chats/{chat}/members"),
    ("DELETE", "/chats/{chat}/members"),
    ("POST", "/chats/{chat}/members/{uid}"),
    ("PUT", "/chats/{chat}/members/{uid}"),
    ("GET", "/chats/{chat}/members/{uid}"),
    ("POST", "/users/me/blocks/{uid}"),
    ("PATCH", "/users/me/blocks/{uid}"),
    ("POST", "/users/me/blocks"),
])
def test_wrong_methods_are_405(api, new_user, method, path):
    owner, other = new_user("m405"), new_user("m405")
    chat_id = create_group(api, owner, [other])
    response = api.request(method, path.format(chat=chat_id, uid=other.id), owner.token, json={})
    assert_error(response, 405)
    assert roles(api, owner.token, chat_id) == {owner.id: "owner", other.id: "member"}
    assert blocks(api, owner.token) == []


@pytest.mark.parametrize("method,path", [("POST", "/chats/{chat}/members"), ("PATCH", "/chats/{chat}/members/{uid}"),
                                         ("PATCH", "/chats/{chat}")], ids=["add", "role", "rename"])
def test_malformed_json_bodies_are_400(api, new_user, method, path):
    owner, other = new_user("mj"), new_user("mj")
    chat_id = create_group(api, owner, [other], "unchanged")
    url = path.format(chat=chat_id, uid=other.id)
    for raw in ("{not json", "[]", '"admin"', "null", ""):
        assert_error(api.request(method, url, owner.token, data=raw,
                                 headers={"Content-Type": "application/json"}), 400)
    assert roles(api, owner.token, chat_id) == {owner.id: "owner", other.id: "member"}
    assert chat_v2(api, owner.token, chat_id)["name"] == "unchanged"


# --- roles and members -----------------------------------------------------------------------

def test_creator_is_owner_others_members_and_direct_chats_have_two_members(api, new_user):
    owner, a, b = new_user("cr"), new_user("cr"), new_user("cr")
    chat_id = create_group(api, owner, [a, b])
    listed = members(api, a.token, chat_id)
    assert {m["user_id"]: m["role"] for m in listed} == {owner.id: "owner", a.id: "member", b.id: "member"}
    assert chat_v2(api, owner.token, chat_id)["my_role"] == "owner"
    assert chat_v2(api, b.token, chat_id)["my_role"] == "member"
    # Same listing for every member.
    assert members(api, owner.token, chat_id) == listed == members(api, b.token, chat_id)
    direct = api.initiate(a.token, target_id=b.id)["chat_id"]
    assert chat_v2(api, a.token, direct)["my_role"] == "member"
    assert chat_v2(api, b.token, direct)["my_role"] == "member"


def test_members_are_ordered_by_joined_at_then_user_id(api, new_user):
    owner = new_user("ord")
    late_low, early_high = new_user("ordl"), new_user("ordh")  # late_low has the lower id
    assert late_low.id < early_high.id
    chat_id = create_group(api, owner, [early_high])
    time.sleep(1.1)  # joined_at has a resolution of one second
    listed = assert_member_list(ok_json(add_members(api, owner.token, chat_id, [late_low.id])))
    assert [m["user_id"] for m in listed] == [owner.id, early_high.id, late_low.id], listed
    assert listed[2]["joined_at"] > listed[1]["joined_at"]
    assert members(api, late_low.token, chat_id) == listed


def test_members_added_in_one_call_are_ordered_by_user_id(api, new_user):
    owner, low, high = new_user("oc"), new_user("oc"), new_user("oc")
    assert low.id < high.id
    chat_id = create_group(api, owner, [])
    time.sleep(1.1)
    listed = ok_json(add_members(api, owner.token, chat_id, [high.id, low.id]))  # highest id first
    assert [m["user_id"] for m in listed] == [owner.id, low.id, high.id], listed
    assert_member_list(listed)


def test_members_who_joined_in_the_same_second_are_ordered_by_user_id(api, new_user):
    """The decision: ordered by joined_at, then user_id — also across calls in one second."""
    owner = new_user("os")
    low, mid, high = new_user("os"), new_user("os"), new_user("os")
    assert low.id < mid.id < high.id
    chat_id = create_group(api, owner, [mid])
    listed = ok_json(add_members(api, owner.token, chat_id, [high.id, low.id]))
    joined = {m["user_id"]: m["joined_at"] for m in listed}
    if not joined[mid.id] == joined[high.id] == joined[low.id]:
        pytest.skip("the creation and the addition fell into different seconds")
    assert [m["user_id"] for m in listed] == [owner.id, low.id, mid.id, high.id], listed
    assert [m["user_id"] for m in members(api, high.token, chat_id, ordered=False)] == [
        owner.id, low.id, mid.id, high.id]


def test_add_ignores_present_members_and_answers_the_list(api, new_user):
    owner, a, b, c = new_user("ad"), new_user("ad"), new_user("ad"), new_user("ad")
    chat_id = create_group(api, owner, [a])
    before = members(api, owner.token, chat_id)
    set_role_body = ok_json(set_role(api, owner.token, chat_id, a.id, "admin"))
    assert set_role_body["role"] == "admin"
    listed = assert_member_list(ok_json(add_members(api, owner.token, chat_id, [a.id, owner.id, b.id, c.id])))
    got = {m["user_id"]: m for m in listed}
    assert set(got) == {owner.id, a.id, b.id, c.id}
    # Present members are left as they were: role and joined_at.
    assert got[a.id]["role"] == "admin" and got[owner.id]["role"] == "owner"
    assert got[a.id]["joined_at"] == before[1]["joined_at"] and got[owner.id]["joined_at"] == before[0]["joined_at"]
    assert got[b.id]["role"] == "member" == got[c.id]["role"]
    assert listed == members(api, c.token, chat_id)
    # Only present ones: 200, nothing changes.
    again = assert_member_list(ok_json(add_members(api, owner.token, chat_id, [b.id, a.id])))
    assert again == listed


@pytest.mark.parametrize("user_ids", [
    [], None, "1", 5, {"id": 1}, ["1"], [1.5], [True], [None], [0], [-3],
], ids=["empty", "null", "string", "number", "object", "string id", "float id", "bool id", "null id", "zero", "negative"])
def test_add_with_a_malformed_list_is_400_and_adds_nothing(api, new_user, user_ids):
    owner, a = new_user("am"), new_user("am")
    chat_id = create_group(api, owner, [a])
    before = members(api, owner.token, chat_id)
    assert_error(add_members(api, owner.token, chat_id, user_ids), 400)
    assert members(api, owner.token, chat_id) == before


def test_add_without_user_ids_or_with_bad_json_is_400(api, new_user):
    owner, a = new_user("aj"), new_user("aj")
    chat_id = create_group(api, owner, [a])
    before = members(api, owner.token, chat_id)
    assert_error(api.post(f"/chats/{chat_id}/members", owner.token, json={}), 400)
    assert_error(api.post(f"/chats/{chat_id}/members", owner.token, data="{not json",
                          headers={"Content-Type": "application/json"}), 400)
    assert members(api, owner.token, chat_id) == before


def test_add_with_an_unknown_id_is_400_and_adds_none_of_them(api, new_user):
    owner, a, b, c = new_user("au"), new_user("au"), new_user("au"), new_user("au")
    chat_id = create_group(api, owner, [a])
    before = members(api, owner.token, chat_id)
    assert_error(add_members(api, owner.token, chat_id, [b.id, UNKNOWN_USER, c.id]), 400)
    assert members(api, owner.token, chat_id) == before
    for user in (b, c):
        assert_error(api.get(f"/chats/{chat_id}", user.token), 403)


def _logins(base_url: str, count: int) -> list[int]:
    """`count` new users (logged in through nginx); their ids."""
    from helpers import decode_token

    def one(_):
        with requests.Session() as session:
            response = session.post(base_url + "/login", json={"username": unique_username("bulk")}, timeout=30)
            assert response.status_code == 200, response.text[:200]
            return decode_token(response.json()["token"])["user_id"]

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(count)))


def test_a_group_holds_at_most_1001_members(api, base_url, new_user):
    owner, first = new_user("big"), new_user("big")
    chat_id = create_group(api, owner, [first])
    ids = _logins(base_url, 1010)
    # The creator + 1,000: adding 999 to the 2 there makes 1,001, which is allowed.
    listed = assert_member_list(ok_json(add_members(api, owner.token, chat_id, ids[:999])), ordered=False)
    assert len(listed) == 1001
    # One more is 400 and nothing is added; a present member alongside changes nothing.
    assert_error(add_members(api, owner.token, chat_id, [ids[999]]), 400)
    assert_error(add_members(api, owner.token, chat_id, [first.id, ids[999]]), 400)
    assert len(members(api, owner.token, chat_id, ordered=False)) == 1001
    # Only present ones: fine at the limit.
    assert len(ok_json(add_members(api, owner.token, chat_id, [first.id, ids[0]]))) == 1001
    # One leaves: one place; two new ones are 400 and neither is added; one fits.
    no_content(remove_member(api, owner.token, chat_id, first.id))
    assert_error(add_members(api, owner.token, chat_id, [ids[999], ids[1000]]), 400)
    current = {m["user_id"] for m in members(api, owner.token, chat_id, ordered=False)}
    assert len(current) == 1000 and ids[999] not in current and ids[1000] not in current
    after = ok_json(add_members(api, owner.token, chat_id, [ids[1001]]))
    assert len(after) == 1001 and ids[1001] in {m["user_id"] for m in after}
    # One place again, and eight adds race for it: exactly one gets it.
    no_content(remove_member(api, owner.token, chat_id, ids[1001]))
    racers = ids[1002:1010]
    barrier = threading.Barrier(len(racers))

    def add_one(user_id):
        with requests.Session() as session:
            barrier.wait()
            return session.post(f"{base_url}/chats/{chat_id}/members", json={"user_ids": [user_id]},
                                headers={"Authorization": f"Bearer {owner.token}"}, timeout=30).status_code

    with ThreadPoolExecutor(len(racers)) as pool:
        statuses = list(pool.map(add_one, racers))
    assert sorted(statuses) == [200] + [400] * (len(racers) - 1), statuses
    final = members(api, owner.token, chat_id, ordered=False)
    assert len(final) == 1001 and len({m["user_id"] for m in final} & set(racers)) == 1


def test_removing_a_non_member_or_unknown_user_is_404(api, new_user):
    owner, a, outsider = new_user("rn"), new_user("rn"), new_user("rn")
    chat_id = create_group(api, owner, [a])
    ok_json(set_role(api, owner.token, chat_id, a.id, "admin"))
    for token in (owner.token, a.token):
        assert_error(remove_member(api, token, chat_id, outsider.id), 404)
        assert_error(remove_member(api, token, chat_id, UNKNOWN_USER), 404)
    # Removed once, the second time it is a non-member.
    b = new_user("rn")
    ok_json(add_members(api, owner.token, chat_id, [b.id]))
    no_content(remove_member(api, owner.token, chat_id, b.id))
    assert_error(remove_member(api, owner.token, chat_id, b.id), 404)
    assert set(roles(api, owner.token, chat_id)) == {owner.id, a.id}


def test_admin_cannot_remove_the_owner_or_another_admin_but_can_remove_members(api, new_user):
    owner, a1, a2, m = new_user("ar"), new_user("ar"), new_user("ar"), new_user("ar")
    chat_id = create_group(api, owner, [a1, a2, m])
    for admin in (a1, a2):
        ok_json(set_role(api, owner.token, chat_id, admin.id, "admin"))
    assert_error(remove_member(api, a1.token, chat_id, owner.id), 403)
    assert_error(remove_member(api, a1.token, chat_id, a2.id), 403)
    assert_error(remove_member(api, m.token, chat_id, a1.id), 403)
    assert_error(remove_member(api, m.token, chat_id, owner.id), 403)
    assert set(roles(api, owner.token, chat_id)) == {owner.id, a1.id, a2.id, m.id}
    no_content(remove_member(api, a1.token, chat_id, m.id))
    no_content(remove_member(api, owner.token, chat_id, a2.id))
    assert roles(api, owner.token, chat_id) == {owner.id: "owner", a1.id: "admin"}


@pytest.mark.parametrize("role", ["superuser", "", "Owner", "ADMIN", None, 1, ["admin"], {"r": "admin"}])
def test_a_bad_role_is_400(api, new_user, role):
    owner, a = new_user("br"), new_user("br")
    chat_id = create_group(api, owner, [a])
    assert_error(set_role(api, owner.token, chat_id, a.id, role), 400)
    assert roles(api, owner.token, chat_id) == {owner.id: "owner", a.id: "member"}


def test_set_role_without_role_is_400_and_on_a_non_member_404(api, new_user):
    owner, a, outsider = new_user("sr"), new_user("sr"), new_user("sr")
    chat_id = create_group(api, owner, [a])
    assert_error(api.patch(f"/chats/{chat_id}/members/{a.id}", owner.token, json={}), 400)
    assert_error(set_role(api, owner.token, chat_id, outsider.id, "admin"), 404)
    assert_error(set_role(api, owner.token, chat_id, UNKNOWN_USER, "admin"), 404)
    assert_error(set_role(api, owner.token, chat_id, outsider.id, "owner"), 404)
    assert roles(api, owner.token, chat_id) == {owner.id: "owner", a.id: "member"}


def test_roles_go_up_and_down_and_the_answer_is_the_member(api, new_user):
    owner, a = new_user("ud"), new_user("ud")
    chat_id = create_group(api, owner, [a])
    joined = {m["user_id"]: m["joined_at"] for m in members(api, owner.token, chat_id)}
    up = ok_json(set_role(api, owner.token, chat_id, a.id, "admin"))
    assert up == {"user_id": a.id, "role": "admin", "joined_at": joined[a.id]}
    assert chat_v2(api, a.token, chat_id)["my_role"] == "admin"
    # Same role again: still 200, unchanged.
    assert ok_json(set_role(api, owner.token, chat_id, a.id, "admin")) == up
    down = ok_json(set_role(api, owner.token, chat_id, a.id, "member"))
    assert down == {"user_id": a.id, "role": "member", "joined_at": joined[a.id]}
    assert chat_v2(api, a.token, chat_id)["my_role"] == "member"
    # A demoted admin has lost the rights.
    assert_error(rename(api, a.token, chat_id, "nope"), 403)


def test_role_owner_hands_ownership_over(api, new_user):
    owner, a, m = new_user("ho"), new_user("ho"), new_user("ho")
    chat_id = create_group(api, owner, [a, m])
    answer = ok_json(set_role(api, owner.token, chat_id, m.id, "owner"))
    assert_keys(answer, {"user_id", "role", "joined_at"})
    assert answer["user_id"] == m.id and answer["role"] == "owner"
    assert roles(api, a.token, chat_id) == {owner.id: "admin", m.id: "owner", a.id: "member"}
    assert chat_v2(api, owner.token, chat_id)["my_role"] == "admin"
    assert chat_v2(api, m.token, chat_id)["my_role"] == "owner"
    # The old owner is an admin now: no more role changes, but renames and adds still.
    assert_error(set_role(api, owner.token, chat_id, a.id, "admin"), 403)
    assert_error(set_role(api, owner.token, chat_id, owner.id, "owner"), 403)
    assert ok_json(rename(api, owner.token, chat_id, "still admin"))["name"] == "still admin"
    # ... and the new owner can remove the old one (an admin).
    assert ok_json(set_role(api, m.token, chat_id, a.id, "admin"))["role"] == "admin"
    no_content(remove_member(api, m.token, chat_id, owner.id))
    assert roles(api, m.token, chat_id) == {m.id: "owner", a.id: "admin"}


def test_owner_leaving_passes_ownership_to_the_longest_standing_admin(api, new_user):
    owner, m_old = new_user("ol"), new_user("ol")
    admin_late_low, admin_early_high = new_user("ol"), new_user("ol")
    assert admin_late_low.id < admin_early_high.id
    chat_id = create_group(api, owner, [m_old, admin_early_high])
    time.sleep(1.1)
    ok_json(add_members(api, owner.token, chat_id, [admin_late_low.id]))
    # Promoted in the other order, so neither the id nor the promotion decides.
    ok_json(set_role(api, owner.token, chat_id, admin_late_low.id, "admin"))
    ok_json(set_role(api, owner.token, chat_id, admin_early_high.id, "admin"))
    no_content(remove_member(api, owner.token, chat_id, owner.id))
    assert roles(api, m_old.token, chat_id) == {
        admin_early_high.id: "owner", admin_late_low.id: "admin", m_old.id: "member"}
    assert_error(api.get(f"/chats/{chat_id}", owner.token), 403)
    # The new owner has the owner's rights.
    assert ok_json(set_role(api, admin_early_high.token, chat_id, m_old.id, "admin"))["role"] == "admin"


def test_owner_leaving_without_admins_passes_ownership_to_the_longest_standing_member(api, new_user):
    owner = new_user("om")
    late_low, early_high = new_user("om"), new_user("om")
    assert late_low.id < early_high.id
    chat_id = create_group(api, owner, [early_high])
    time.sleep(1.1)
    ok_json(add_members(api, owner.token, chat_id, [late_low.id]))
    no_content(remove_member(api, owner.token, chat_id, owner.id))
    assert roles(api, late_low.token, chat_id) == {early_high.id: "owner", late_low.id: "member"}
    assert chat_v2(api, early_high.token, chat_id)["my_role"] == "owner"


def test_owner_leaving_among_members_who_joined_together_passes_to_the_lower_user_id(api, new_user):
    owner, a, b = new_user("ot"), new_user("ot"), new_user("ot")
    chat_id = create_group(api, owner, [b, a])
    listed = members(api, a.token, chat_id)
    joined = {m["user_id"]: m["joined_at"] for m in listed}
    if joined[a.id] != joined[b.id]:
        pytest.skip("the group's members did not get one joined_at")
    no_content(remove_member(api, owner.token, chat_id, owner.id))
    assert roles(api, b.token, chat_id) == {min(a.id, b.id): "owner", max(a.id, b.id): "member"}


def test_everyone_but_one_leaving_at_once_leaves_that_one_the_owner(api, base_url, new_user):
    owner = new_user("pl")
    others = [new_user("pl") for _ in range(6)]
    chat_id = create_group(api, owner, others)
    for admin in others[:2]:
        ok_json(set_role(api, owner.token, chat_id, admin.id, "admin"))
    stays = others[-1]
    leavers = [owner] + others[:-1]
    barrier = threading.Barrier(len(leavers))

    def leave(user):
        with requests.Session() as session:
            barrier.wait()
            return session.delete(f"{base_url}/chats/{chat_id}/members/{user.id}",
                                  headers={"Authorization": f"Bearer {user.token}"}, timeout=30).status_code

    with ThreadPoolExecutor(len(leavers)) as pool:
        assert list(pool.map(leave, leavers)) == [204] * len(leavers)
    assert roles(api, stays.token, chat_id) == {stays.id: "owner"}
    assert chat_v2(api, stays.token, chat_id)["my_role"] == "owner"
    # The one left has the owner's rights.
    ok_json(add_members(api, stays.token, chat_id, [owner.id]))
    assert ok_json(set_role(api, stays.token, chat_id, owner.id, "admin"))["role"] == "admin"


def test_parallel_removals_and_role_changes_leave_exactly_one_owner(api, base_url, new_user):
    owner = new_user("pr")
    others = [new_user("pr") for _ in range(8)]
    chat_id = create_group(api, owner, others)
    for admin in others[:4]:
        ok_json(set_role(api, owner.token, chat_id, admin.id, "admin"))
    calls = [
        ("PATCH", owner, f"/chats/{chat_id}/members/{others[0].id}", {"role": "owner"}),
        ("PATCH", owner, f"/chats/{chat_id}/members/{others[5].id}", {"role": "owner"}),
        ("DELETE", owner, f"/chats/{chat_id}/members/{owner.id}", None),
        ("DELETE", others[1], f"/chats/{chat_id}/members/{others[6].id}", None),
        ("DELETE", others[2], f"/chats/{chat_id}/members/{others[2].id}", None),
        ("DELETE", others[3], f"/chats/{chat_id}/members/{others[7].id}", None),
    ]
    barrier = threading.Barrier(len(calls))

    def call(spec):
        method, user, path, body = spec
        with requests.Session() as session:
            barrier.wait()
            return session.request(method, base_url + path, json=body,
                                   headers={"Authorization": f"Bearer {user.token}"}, timeout=30).status_code

    with ThreadPoolExecutor(len(calls)) as pool:
        statuses = list(pool.map(call, calls))
    assert all(status in (200, 204, 403, 404) for status in statuses), statuses
    viewer = others[4]
    listed = members(api, viewer.token, chat_id)
    owners = [m["user_id"] for m in listed if m["role"] == "owner"]
    assert len(owners) == 1, listed
    # Whoever is listed can read; whoever is not, cannot.
    for user in [owner] + others:
        status = api.get(f"/chats/{chat_id}", user.token).status_code
        assert status == (200 if user.id in {m["user_id"] for m in listed} else 403), (user.id, status, listed)
    me = next(u for u in [owner] + others if u.id == owners[0])
    assert chat_v2(api, me.token, chat_id)["my_role"] == "owner"


def test_an_admin_or_member_leaving_keeps_the_owner(api, new_user):
    owner, a, m = new_user("lv"), new_user("lv"), new_user("lv")
    chat_id = create_group(api, owner, [a, m])
    ok_json(set_role(api, owner.token, chat_id, a.id, "admin"))
    no_content(remove_member(api, a.token, chat_id, a.id))
    no_content(remove_member(api, m.token, chat_id, m.id))
    assert roles(api, owner.token, chat_id) == {owner.id: "owner"}
    for user in (a, m):
        assert_error(api.get(f"/chats/{chat_id}", user.token), 403)
        assert_error(remove_member(api, user.token, chat_id, user.id), 403)
        assert chat_id not in [c["id"] for c in ok_json(api.get("/chats", user.token))]


def test_the_last_member_leaving_leaves_a_group_nobody_can_read(api, new_user):
    owner, a = new_user("la"), new_user("la")
    chat_id = create_group(api, owner, [a])
    api.send(owner.token, chat_id, "before the end")
    no_content(remove_member(api, a.token, chat_id, a.id))
    no_content(remove_member(api, owner.token, chat_id, owner.id))
    for user in (owner, a):
        assert_error(api.get(f"/chats/{chat_id}", user.token), 403)
        assert_error(api.get(f"/chats/{chat_id}/messages", user.token), 403)
        assert_error(get_members(api, user.token, chat_id), 403)
        assert_error(send_rest(api, user.token, chat_id, "anyone?"), 403)
        assert_error(add_members(api, user.token, chat_id, [user.id]), 403)
        assert chat_id not in [c["id"] for c in ok_json(api.get("/chats", user.token))]


def test_rename_rules_and_the_full_chat_answer(api, new_user):
    owner, a, m = new_user("rr"), new_user("rr"), new_user("rr")
    chat_id = create_group(api, owner, [a, m], "first name")
    ok_json(set_role(api, owner.token, chat_id, a.id, "admin"))
    for bad in ["", "   ", "\t\n", "x" * 129, "é" * 129, None, 5, ["name"], {"n": 1}]:
        assert_error(rename(api, owner.token, chat_id, bad), 400)
    assert_error(api.patch(f"/chats/{chat_id}", owner.token, json={}), 400)
    assert chat_v2(api, m.token, chat_id)["name"] == "first name"
    for good in ["x", "y" * 128, "é" * 128, "Группа 🎉"]:
        chat = ok_json(rename(api, a.token, chat_id, good))
        assert_chat_v2(chat)
        assert chat["name"] == good and chat["my_role"] == "admin" and chat["chat_type"] == "group"
        assert sorted(chat["participants"]) == sorted([owner.id, a.id, m.id])
        seed = ok_json(api.get(f"/chats/{chat_id}", m.token))
        assert_chat(seed)
        assert seed["name"] == good
    last = api.send(m.token, chat_id, "hello")
    chat = ok_json(rename(api, owner.token, chat_id, "with a last message"))
    assert chat["my_role"] == "owner" and chat["last_message"]["id"] == last["id"]


# --- events: CHAT to members, CHAT_REMOVED to whoever left -----------------------------------

def test_every_change_is_a_chat_event_to_every_member_as_they_see_it(api, stack, new_user):
    owner, a, m, x = new_user("ev"), new_user("ev"), new_user("ev"), new_user("ev")
    chat_id = group_announced(stack, api, owner, [a, m], "events")

    async def scenario():
        async with await P2.open_p2(stack, owner, "query") as o, \
                await P2.open_p2(stack, a, "header") as sa, \
                await P2.open_p2(stack, m, "identify") as sm, \
                await P2.open_p2(stack, x, "query") as sx:
            everyone = {"o": o, "a": sa, "m": sm}

            async def all_get(step, predicate, sockets):
                seen = {}
                for name, sock in sockets.items():
                    frame = await sock.chat_event(chat_id, predicate)
                    seen[name] = frame
                seqs = {f["seq"] for f in seen.values()}
                assert len(seqs) == 1, f"{step}: one event, one seq for everyone: {seen}"
                return seen

            # role
            ok_json(set_role(api, owner.token, chat_id, a.id, "admin"))
            seen = await all_get("role", lambda d: True, everyone)
            assert {k: f["d"]["my_role"] for k, f in seen.items()} == {"o": "owner", "a": "admin", "m": "member"}
            # rename
            ok_json(rename(api, a.token, chat_id, "renamed"))
            seen = await all_get("rename", lambda d: d["name"] == "renamed", everyone)
            # add: the new member gets it too, with participants including them
            ok_json(add_members(api, a.token, chat_id, [x.id]))
            everyone["x"] = sx
            seen = await all_get("add", lambda d: x.id in d["participants"], everyone)
            assert seen["x"]["d"]["my_role"] == "member" and seen["x"]["d"]["name"] == "renamed"
            assert sorted(seen["o"]["d"]["participants"]) == sorted([owner.id, a.id, m.id, x.id])
            # remove: the others get CHAT without m; m gets CHAT_REMOVED
            no_content(remove_member(api, owner.token, chat_id, m.id))
            rest = {k: v for k, v in everyone.items() if k != "m"}
            seen = await all_get("remove", lambda d: m.id not in d["participants"], rest)
            removed = (await sm.until(lambda f: is_op(f, "CHAT_REMOVED")))[0]
            assert removed["d"] == {"chat_id": chat_id}
            # leave: likewise
            no_content(remove_member(api, x.token, chat_id, x.id))
            seen = await all_get("leave", lambda d: x.id not in d["participants"], {"o": o, "a": sa})
            gone = (await sx.until(lambda f: is_op(f, "CHAT_REMOVED")))[0]
            assert gone["d"] == {"chat_id": chat_id}
            # ownership handed over
            ok_json(set_role(api, owner.token, chat_id, a.id, "owner"))
            to_o = await o.chat_event(chat_id)
            to_a = await sa.chat_event(chat_id)
            assert to_o["seq"] == to_a["seq"]
            assert to_o["d"]["my_role"] == "admin" and to_a["d"]["my_role"] == "owner", (to_o, to_a)
            # the owner (now a) leaves: o becomes owner again
            no_content(remove_member(api, a.token, chat_id, a.id))
            frame = await o.chat_event(chat_id, lambda d: a.id not in d["participants"])
            assert frame["d"]["my_role"] == "owner" and frame["d"]["participants"] == [owner.id]
            await sa.until(lambda f: is_op(f, "CHAT_REMOVED") and f["d"]["chat_id"] == chat_id)
            # Nothing of the chat reached m and x after their CHAT_REMOVED.
            for sock, frame in ((sm, removed), (sx, gone)):
                later = [f for f in sock.events + await sock.drain(0.5)
                         if f["seq"] > frame["seq"] and event_chat_id(f) == chat_id]
                assert later == [], f"{sock.label}: events of the chat after CHAT_REMOVED: {later}"

    run(scenario(), timeout=90)
    # And GET /events says the same for the removed member.
    events, _ = all_events(api, m.token, 0)
    removed = [f for f in events if f["op"] == "CHAT_REMOVED" and f["d"]["chat_id"] == chat_id]
    assert len(removed) == 1, events
    assert [f for f in events if f["seq"] > removed[0]["seq"] and event_chat_id(f) == chat_id] == []


def test_parallel_changes_end_with_every_member_s_last_chat_event_matching_the_members(api, stack, new_user):
    owner, admin, watcher = new_user("pc"), new_user("pc"), new_user("pc")
    pool_users = [new_user("pc") for _ in range(10)]
    chat_id = group_announced(stack, api, owner, [admin, watcher] + pool_users[:5], "parallel")
    ok_json(set_role(api, owner.token, chat_id, admin.id, "admin"))
    calls = ([("POST", owner, f"/chats/{chat_id}/members", {"user_ids": [u.id]}) for u in pool_users[5:8]]
             + [("POST", admin, f"/chats/{chat_id}/members", {"user_ids": [u.id]}) for u in pool_users[8:]]
             + [("DELETE", admin, f"/chats/{chat_id}/members/{u.id}", None) for u in pool_users[:2]]
             + [("DELETE", u, f"/chats/{chat_id}/members/{u.id}", None) for u in pool_users[2:4]]
             + [("PATCH", owner, f"/chats/{chat_id}/members/{pool_users[4].id}", {"role": "admin"}),
                ("PATCH", admin, f"/chats/{chat_id}", {"name": "raced"})])
    barrier = threading.Barrier(len(calls))

    def call(spec):
        method, user, path, body = spec
        with requests.Session() as session:
            barrier.wait()
            return session.request(method, stack.base_url + path, json=body,
                                   headers={"Authorization": f"Bearer {user.token}"}, timeout=30).status_code

    async def scenario():
        async with await P2.open_p2(stack, watcher, "query") as w, \
                await P2.open_p2(stack, owner, "identify") as o:
            loop = asyncio.get_running_loop()
            with ThreadPoolExecutor(len(calls)) as pool:
                statuses = await loop.run_in_executor(None, lambda: list(pool.map(call, calls)))
            assert all(200 <= st < 300 for st in statuses), statuses
            for sock in (w, o):
                await sock.drain(QUIET)
            final = members(api, owner.token, chat_id, ordered=False)  # the order has its own tests
            final_ids = sorted(m["user_id"] for m in final)
            for sock in (w, o):
                chats = [f for f in sock.events if f["op"] == "CHAT" and f["d"]["id"] == chat_id]
                assert len(chats) >= len(calls), (sock.label, len(chats))
                last = chats[-1]["d"]
                assert sorted(last["participants"]) == final_ids, (sock.label, last, final_ids)
                assert last["name"] == "raced"
            assert {m["user_id"]: m["role"] for m in final}[pool_users[4].id] == "admin"

    run(scenario(), timeout=60)


def test_an_added_member_sees_history_live_and_on_resume_from_the_chat_event(api, stack, new_user):
    owner, m, x = new_user("am"), new_user("am"), new_user("am")
    chat_id = group_announced(stack, api, owner, [m], "history")
    before = [api.send(owner.token, chat_id, f"before {i}") for i in range(3)]
    start = head_seq(stack)

    async def scenario():
        async with await P2.open_p2(stack, x, "query", label="x-live") as live, \
                StrictP1Context(stack, x) as p1:
            ok_json(add_members(api, owner.token, chat_id, [x.id]))
            added = await live.chat_event(chat_id)
            assert x.id in added["d"]["participants"] and added["d"]["my_role"] == "member"
            assert added["d"]["last_message"]["id"] == before[-1]["id"]
            after = api.send(m.token, chat_id, "after")
            message, skipped = await live.until(lambda f: is_op(f, "MESSAGE"))
            assert message["d"]["id"] == after["id"] and not skipped
            # The protocol-1 socket of the same user: the seed CHAT, then the bare message.
            chat_frame, _ = await p1.sock.recv_until(lambda f: is_op(f, "CHAT") and f["d"]["id"] == chat_id)
            assert_keys(chat_frame["d"], CHAT_KEYS)
            assert x.id in chat_frame["d"]["participants"], chat_frame
            bare, _ = await p1.sock.recv_until(is_message)
            assert bare["id"] == after["id"]
            return added["seq"], after

    added_seq, after = run(scenario())
    # History over REST: everything since the start.
    assert history_contents(api, x.token, chat_id) == ["before 0", "before 1", "before 2", "after"]

    async def resume():
        async with await P2.open_p2(stack, x, "identify", since=start, label="x-resume") as r:
            frames = await r.drain(QUIET)
            of_chat = [f for f in frames if "seq" in f and event_chat_id(f) == chat_id]
            assert of_chat and of_chat[0]["op"] == "CHAT" and of_chat[0]["seq"] == added_seq, of_chat
            assert all(f["seq"] >= added_seq for f in of_chat), of_chat
            assert [f["d"]["id"] for f in of_chat if f["op"] == "MESSAGE"] == [after["id"]], of_chat

    run(resume())
    events, _ = all_events(api, x.token, start)
    of_chat = [f for f in events if event_chat_id(f) == chat_id]
    assert of_chat[0]["op"] == "CHAT" and of_chat[0]["seq"] == added_seq, of_chat
    assert [f["d"]["id"] for f in of_chat if f["op"] == "MESSAGE"] == [after["id"]]


class StrictP1Context:
    """`async with StrictP1Context(stack, user) as ctx:` a strict protocol-1 socket in ctx.sock."""

    def __init__(self, stack, user, how: str = "identify"):
        self.stack, self.user, self.how = stack, user, how

    async def __aenter__(self):
        self.sock = await StrictP1.open_strict(self.stack, self.user, self.how)
        return self

    async def __aexit__(self, *exc):
        await self.sock.close()


def test_a_removed_member_is_refused_on_every_rest_call_at_once(api, new_user):
    owner, r = new_user("ra"), new_user("ra")
    chat_id = create_group(api, owner, [r])
    api.send(r.token, chat_id, "mine")
    no_content(remove_member(api, owner.token, chat_id, r.id))
    assert_error(api.get(f"/chats/{chat_id}", r.token), 403)
    assert_error(api.get(f"/chats/{chat_id}?v=2", r.token), 403)
    assert_error(api.get(f"/chats/{chat_id}/messages", r.token), 403)
    assert_error(api.get(f"/chats/{chat_id}/messages?v=2", r.token), 403)
    assert_error(get_members(api, r.token, chat_id), 403)
    assert_error(send_rest(api, r.token, chat_id, "still here?"), 403)
    assert_error(api.post(f"/chats/{chat_id}/read", r.token, json={"message_id": 1}), 403)
    assert chat_id not in [c["id"] for c in ok_json(api.get("/chats", r.token))]
    assert chat_id not in [c["id"] for c in ok_json(api.get("/chats?v=2", r.token))]
    assert "still here?" not in history_contents(api, owner.token, chat_id)
    # Re-added: reads the history again, sends again.
    ok_json(add_members(api, owner.token, chat_id, [r.id]))
    assert history_contents(api, r.token, chat_id) == ["mine"]
    api.send(r.token, chat_id, "back")


def test_a_re_added_member_sees_nothing_of_the_time_they_were_out_but_all_history_over_rest(api, stack, new_user):
    owner, r = new_user("ra"), new_user("ra")
    chat_id = group_announced(stack, api, owner, [r], "re-add")
    api.send(owner.token, chat_id, "before")
    since = head_seq(stack)

    async def scenario():
        async with await P2.open_p2(stack, r, "query", label="r-live") as live:
            no_content(remove_member(api, owner.token, chat_id, r.id))
            removed = (await live.until(lambda f: is_op(f, "CHAT_REMOVED")))[0]
            api.send(owner.token, chat_id, "while out")
            ok_json(rename(api, owner.token, chat_id, "renamed while out"))
            await asyncio.sleep(0.3)
            ok_json(add_members(api, owner.token, chat_id, [r.id]))
            added = await live.chat_event(chat_id, lambda d: r.id in d["participants"])
            assert added["d"]["name"] == "renamed while out" and added["d"]["my_role"] == "member"
            back = api.send(owner.token, chat_id, "back")
            message, _ = await live.until(lambda f: is_op(f, "MESSAGE"))
            assert message["d"]["id"] == back["id"]
            between = [f for f in live.events if removed["seq"] < f["seq"] < added["seq"] and event_chat_id(f) == chat_id]
            assert between == [], between
            return removed["seq"], added["seq"]

    removed_seq, added_seq = run(scenario())
    assert history_contents(api, r.token, chat_id) == ["before", "while out", "back"]

    async def resume():
        async with await P2.open_p2(stack, r, "header", since=since, label="r-resume") as again:
            frames = [f for f in await again.drain(QUIET) if "seq" in f]
            ops = [(f["op"], f["seq"]) for f in frames if event_chat_id(f) == chat_id]
            assert ("CHAT_REMOVED", removed_seq) in ops and ("CHAT", added_seq) in ops, ops
            assert [o for o in ops if removed_seq < o[1] < added_seq] == [], ops
            assert [f["d"]["content"] for f in frames if f["op"] == "MESSAGE" and f["seq"] > removed_seq] == ["back"]

    run(resume())


# --- removal racing messages, two devices ----------------------------------------------------

@pytest.mark.parametrize("round_", range(3))
def test_removal_cuts_off_two_live_devices_while_messages_race_it(api, stack, new_user, round_):
    owner, m, r = new_user("rc"), new_user("rc"), new_user("rc")
    chat_id = group_announced(stack, api, owner, [m, r], "race")
    other_chat = create_group(api, m, [r], "other")  # r stays in this one
    stop = threading.Event()
    rest_sent: list[int] = []
    r_rest: list[int] = []
    barrier = threading.Barrier(4)
    removal: dict = {}

    def rest_sender(user, into, sink):
        with requests.Session() as session:
            i = 0
            while not stop.is_set():
                response = session.post(f"{stack.base_url}/chats/{into}/messages",
                                        json={"content": f"{user.username} rest {i}"},
                                        headers={"Authorization": f"Bearer {user.token}"}, timeout=15)
                if response.status_code == 200:
                    sink.append(response.json()["id"])
                else:
                    assert response.status_code == 403, response.text
                    return
                i += 1
                time.sleep(0.002)

    def burst(user, sink):
        """One send released together with the removal (the same millisecond)."""
        with requests.Session() as session:
            barrier.wait()
            response = session.post(f"{stack.base_url}/chats/{chat_id}/messages", json={"content": "burst"},
                                    headers={"Authorization": f"Bearer {user.token}"}, timeout=15)
            if response.status_code == 200:
                sink.append(response.json()["id"])
            else:
                assert response.status_code == 403, response.text

    def remover():
        with requests.Session() as session:
            barrier.wait()
            removal["response"] = session.delete(f"{stack.base_url}/chats/{chat_id}/members/{r.id}",
                                                 headers={"Authorization": f"Bearer {owner.token}"}, timeout=15)
            removal["at"] = time.monotonic()
            # At once: every REST call of r for that chat is 403.
            removal["after"] = [
                session.get(f"{stack.base_url}/chats/{chat_id}", headers={"Authorization": f"Bearer {r.token}"},
                            timeout=15).status_code,
                session.post(f"{stack.base_url}/chats/{chat_id}/messages", json={"content": "after removal"},
                             headers={"Authorization": f"Bearer {r.token}"}, timeout=15).status_code,
            ]

    async def ws_sender(sock, prefix, count):
        sent = 0
        for i in range(count):
            if stop.is_set():
                break
            await sock.send({"chat_id": chat_id, "content": f"{prefix} ws {i}", "nonce": f"{prefix}-{i}"})
            sent += 1
            await asyncio.sleep(0.004)
        return sent

    async def scenario():
        async with await P2.open_p2(stack, r, "query", label="r-device-1") as r1, \
                await P2.open_p2(stack, r, "identify", label="r-device-2") as r2, \
                await P2.open_p2(stack, owner, "header", label="owner") as o, \
                await P2.open_p2(stack, m, "query", label="m") as sm, \
                await StrictP1.open_strict(stack, r, "header", label="r-p1") as p1, \
                await StrictP1.open_strict(stack, m, "query", label="m-p1") as mp1:
            loop = asyncio.get_running_loop()
            threads = [threading.Thread(target=rest_sender, args=(m, chat_id, rest_sent)),
                       threading.Thread(target=rest_sender, args=(r, chat_id, r_rest)),
                       threading.Thread(target=burst, args=(m, rest_sent)),
                       threading.Thread(target=burst, args=(owner, rest_sent)),
                       threading.Thread(target=burst, args=(r, r_rest)),
                       threading.Thread(target=remover)]
            for t in threads[:2]:
                t.start()
            ws_tasks = [asyncio.create_task(ws_sender(o, f"o{round_}", 150)),
                        asyncio.create_task(ws_sender(r2, f"r{round_}", 150))]
            await asyncio.sleep(0.3)
            for t in threads[2:]:
                t.start()
            await loop.run_in_executor(None, threads[5].join)
            await asyncio.sleep(0.3)
            stop.set()
            o_sent, r_sent = await asyncio.gather(*ws_tasks)
            for t in threads:
                await loop.run_in_executor(None, t.join)
            no_content(removal["response"])
            assert removal["after"] == [403, 403], removal
            # Both devices get CHAT_REMOVED, and every event of the chat they got came before it.
            removed_seqs = []
            for sock in (r1, r2):
                frame, _ = await sock.until(lambda f: is_op(f, "CHAT_REMOVED"), timeout=15)
                assert frame["d"] == {"chat_id": chat_id}
                removed_seqs.append(frame["seq"])
                await sock.drain(QUIET)
            assert removed_seqs[0] == removed_seqs[1], removed_seqs
            cut = removed_seqs[0]
            # After the dust settles: the others keep getting messages of the chat; r gets none,
            # but still gets the other chat.
            final = api.send(owner.token, chat_id, "after the removal")
            other = api.send(m.token, other_chat, "other chat still works")
            for sock in (sm, o):
                await sock.until(lambda f: is_op(f, "MESSAGE") and f["d"]["id"] == final["id"], timeout=15)
            for sock in (r1, r2):
                await sock.until(lambda f: is_op(f, "MESSAGE") and f["d"]["id"] == other["id"], timeout=15)
                await sock.drain(QUIET)
            for sock in (r1, r2):
                late = [f for f in sock.events if f["seq"] > cut and event_chat_id(f) == chat_id]
                assert late == [], f"{sock.label}: got events of the chat after CHAT_REMOVED {cut}: {late!r:.1500}"
                got = [f for f in sock.events if f["op"] == "MESSAGE" and f["d"]["chat_id"] == chat_id]
                assert all(f["seq"] < cut for f in got)
                removed_count = sum(1 for f in sock.events if f["op"] == "CHAT_REMOVED")
                assert removed_count == 1, sock.events
            # The ERROR frames of r's refused WS sends carry their nonces; every r WS send got
            # exactly one ACK or ERROR.
            acked = {f["d"]["nonce"]: f["d"]["id"] for f in r2.control if is_op(f, "ACK")}
            errors = [f["d"] for f in r2.control if is_op(f, "ERROR")]
            for d in errors:
                assert d["nonce"] and d["nonce"].startswith(f"r{round_}-"), d
            assert len(acked) + len(errors) == len({*acked, *(d["nonce"] for d in errors)})
            assert len(acked) + len(errors) == r_sent, (len(acked), len(errors), r_sent)
            o_acks = [f for f in o.control if is_op(f, "ACK")]
            assert len(o_acks) == o_sent and not [f for f in o.control if is_op(f, "ERROR")]
            # The owner's socket saw every message of the chat exactly once: all the REST and WS
            # sends that were stored, r's included.
            await o.drain(QUIET)
            o_ids = [f["d"]["id"] for f in o.events if f["op"] == "MESSAGE" and f["d"]["chat_id"] == chat_id]
            assert len(o_ids) == len(set(o_ids))
            stored = {m_["id"] for m_ in ok_json(api.get(f"/chats/{chat_id}/messages?after_id=0&limit=1000",
                                                         owner.token))["messages"]}
            assert set(o_ids) == stored
            # Nothing of r was stored after the removal: each of r's messages has a MESSAGE
            # event before CHAT_REMOVED.
            r_ids = set(r_rest) | set(acked.values())
            assert r_ids <= stored
            for message_id in r_ids:
                assert message_seq(stack, message_id) < cut, (message_id, cut)
            stored_r = [m_ for m_ in ok_json(api.get(f"/chats/{chat_id}/messages?after_id=0&limit=1000",
                                                     owner.token))["messages"] if m_["sender_id"] == r.id]
            for message in stored_r:
                assert message_seq(stack, message["id"]) < cut, (message, cut)
            # The race was real: r got messages of the chat before the cut, and some of r's
            # sends were refused after it.
            assert any(f["op"] == "MESSAGE" and f["d"]["chat_id"] == chat_id for f in r1.events)
            assert errors, "no WS send of r was refused: the removal did not race the sends"
            # r's protocol-1 socket: every bare message of the chat it got was stored before the cut.
            await p1.drain(QUIET)
            for frame in p1.frames:
                if is_message(frame) and frame["chat_id"] == chat_id:
                    assert message_seq(stack, frame["id"]) < cut, (frame, cut)
            assert not [f for f in p1.frames if is_op(f, "CHAT") and f["d"]["id"] == chat_id
                        and r.id not in f["d"]["participants"]], "r's protocol-1 socket got a CHAT of the chat without r"
            # m's strict protocol-1 socket: only seed frames; every stored message once, in id
            # order; the removal as a seed CHAT without r; no CHAT_REMOVED of course.
            await mp1.drain(QUIET)
            bare = [f["id"] for f in mp1.frames if is_message(f) and f["chat_id"] == chat_id]
            assert bare == sorted(stored), (len(bare), len(stored))
            assert any(is_op(f, "CHAT") and f["d"]["id"] == chat_id and r.id not in f["d"]["participants"]
                       for f in mp1.frames), "m's protocol-1 socket got no CHAT for the removal"
            print(f"\nround {round_}: cut {cut}; r1 got {sum(1 for f in r1.events if f['op'] == 'MESSAGE')} messages, "
                  f"r stored rest {len(r_rest)} ws {len(acked)}, r ws refused {len(errors)}, o sent {o_sent}, "
                  f"m rest {len(rest_sent)}; last r1 seqs before cut: {[f['seq'] for f in r1.events][-5:]}")
            return cut

    cut = run(scenario(), timeout=120)
    # GET /events for r: CHAT_REMOVED once, nothing of the chat after it.
    events, _ = all_events(api, r.token, 0)
    assert [f["seq"] for f in events if f["op"] == "CHAT_REMOVED"] == [cut]
    assert [f for f in events if f["seq"] > cut and event_chat_id(f) == chat_id] == []
    assert_error(api.get(f"/chats/{chat_id}/messages", r.token), 403)


def test_a_resumed_socket_of_a_removed_member_gets_chat_removed_and_nothing_after(api, stack, new_user):
    owner, r = new_user("rs"), new_user("rs")
    chat_id = group_announced(stack, api, owner, [r], "resume")
    start = head_seq(stack)
    api.send(owner.token, chat_id, "one")
    no_content(remove_member(api, owner.token, chat_id, r.id))
    api.send(owner.token, chat_id, "two")
    ok_json(rename(api, owner.token, chat_id, "renamed without r"))

    async def scenario():
        async with await P2.open_p2(stack, r, "query", since=start) as sock:
            frames = await sock.drain(QUIET)
            removed = [f for f in frames if is_op(f, "CHAT_REMOVED")]
            assert len(removed) == 1 and removed[0]["d"] == {"chat_id": chat_id}, frames
            late = [f for f in frames if "seq" in f and f["seq"] > removed[0]["seq"] and event_chat_id(f) == chat_id]
            assert late == [], late

    run(scenario())


def test_nothing_of_the_chat_reaches_a_removed_member_and_they_can_change_nothing(api, stack, new_user):
    owner, m, r = new_user("nr"), new_user("nr"), new_user("nr")
    chat_id = group_announced(stack, api, owner, [m, r], "after removal")
    old = api.send(owner.token, chat_id, "old")
    mine = api.send(r.token, chat_id, "mine")

    async def scenario():
        async with await P2.open_p2(stack, r, "query", label="r-1") as r1, \
                await P2.open_p2(stack, r, "header", label="r-2") as r2, \
                await StrictP1.open_strict(stack, r, "identify", label="r-p1") as rp1, \
                await P2.open_p2(stack, m, "query", label="m") as sm:
            no_content(remove_member(api, owner.token, chat_id, r.id))
            for sock in (r1, r2):
                frame, _ = await sock.until(lambda f: is_op(f, "CHAT_REMOVED"))
                assert frame["d"] == {"chat_id": chat_id}
            await sm.chat_event(chat_id, lambda d: r.id not in d["participants"])
            # Every kind of change in the chat, by the others.
            edited = ok_json(api.patch(f"/chats/{chat_id}/messages/{old['id']}", owner.token, json={"content": "edited"}))
            assert edited["content"] == "edited"
            no_content(api.request("PUT", f"/chats/{chat_id}/messages/{old['id']}/reactions/%F0%9F%91%8D", m.token))
            no_content(api.request("DELETE", f"/chats/{chat_id}/messages/{mine['id']}", owner.token))
            new = api.send(m.token, chat_id, "new")
            ok_json(api.post(f"/chats/{chat_id}/read", m.token, json={"message_id": new["id"]}))
            ok_json(rename(api, owner.token, chat_id, "renamed after"))
            extra = new_user("nr")
            ok_json(add_members(api, owner.token, chat_id, [extra.id]))
            await sm.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            await sm.chat_event(chat_id, lambda d: extra.id in d["participants"])
            # r's own attempts, over REST and WS: all refused, nothing stored.
            assert_error(api.patch(f"/chats/{chat_id}/messages/{mine['id']}", r.token, json={"content": "x"}), 403)
            assert_error(api.request("PUT", f"/chats/{chat_id}/messages/{old['id']}/reactions/%F0%9F%98%80", r.token), 403)
            assert_error(api.post(f"/chats/{chat_id}/read", r.token, json={"message_id": new["id"]}), 403)
            assert_error(api.get(f"/chats/{chat_id}/receipts", r.token), 403)
            assert_error(rename(api, r.token, chat_id, "mine now"), 403)
            await r1.send({"chat_id": chat_id, "content": "ws", "nonce": "r-ws"})
            error = await next_error(r1)
            assert error["d"]["nonce"] == "r-ws"
            await rp1.send({"chat_id": chat_id, "content": "ws p1", "nonce": "r-ws-p1"})
            error = await next_error(rp1)
            assert error["d"]["nonce"] == "r-ws-p1"
            # Nothing of the chat, not even TYPING, reached r's sockets after CHAT_REMOVED.
            for sock in (r1, r2):
                await sock.drain(QUIET)
                cut = next(f["seq"] for f in sock.events if f["op"] == "CHAT_REMOVED")
                late = [f for f in sock.events if f["seq"] > cut and event_chat_id(f) == chat_id]
                assert late == [], f"{sock.label}: {late!r:.1500}"
                typing = [f for f in sock.ephemeral if (f.get("d") or {}).get("chat_id") == chat_id]
                assert typing == [], typing
            await rp1.drain(QUIET)
            assert [f for f in rp1.frames if is_message(f) or is_op(f, "CHAT")] == [], rp1.frames
            return cut

    cut = run(scenario(), timeout=60)
    events, _ = all_events(api, r.token, cut - 1)
    assert [f for f in events if f["seq"] > cut and event_chat_id(f) == chat_id] == []
    assert "ws" not in history_contents(api, owner.token, chat_id)


# --- a strict protocol-1 client in the group -------------------------------------------------

def test_a_strict_protocol_1_client_sees_only_seed_frames_while_the_group_is_run(api, stack, new_user):
    owner, p, r, leaver, x = new_user("p1o"), new_user("p1p"), new_user("p1r"), new_user("p1l"), new_user("p1x")
    chat_id = group_announced(stack, api, owner, [p, r, leaver], "strict")

    async def scenario():
        async with StrictP1Context(stack, p, "identify") as ctx_p, \
                StrictP1Context(stack, r, "header") as ctx_r, \
                await P2.open_p2(stack, owner, "query") as o:
            sp, sr = ctx_p.sock, ctx_r.sock

            async def p_chat(predicate):
                frame, skipped = await sp.recv_until(
                    lambda f: is_op(f, "CHAT") and f["d"]["id"] == chat_id and predicate(f["d"]))
                assert_keys(frame["d"], CHAT_KEYS)
                assert_chat(frame["d"])
                return frame["d"]

            m1 = api.send(owner.token, chat_id, "one")
            assert (await sp.recv_until(is_message))[0] == m1
            assert (await sr.recv_until(is_message))[0] == m1
            # add x
            ok_json(add_members(api, owner.token, chat_id, [x.id]))
            d = await p_chat(lambda d: x.id in d["participants"])
            assert d["name"] == "strict" and d["chat_type"] == "group"
            # rename
            ok_json(rename(api, owner.token, chat_id, "strict renamed"))
            await p_chat(lambda d: d["name"] == "strict renamed")
            # role change: still a seed CHAT, same participants
            ok_json(set_role(api, owner.token, chat_id, leaver.id, "admin"))
            d = await p_chat(lambda d: True)
            assert sorted(d["participants"]) == sorted([owner.id, p.id, r.id, leaver.id, x.id])
            # remove r: p gets the CHAT; r's protocol-1 socket gets nothing (no CHAT_REMOVED)
            no_content(remove_member(api, owner.token, chat_id, r.id))
            await p_chat(lambda d: r.id not in d["participants"])
            # a message over WS from p (protocol 1, with a nonce): echo + ACK, seed shapes
            await sp.send({"chat_id": chat_id, "content": "from p1", "nonce": "p1-nonce"})
            echo, _ = await sp.recv_until(is_message)
            assert echo["content"] == "from p1" and echo["sender_id"] == p.id
            ack, _ = await sp.recv_until(lambda f: is_op(f, "ACK"))
            assert ack["d"] == {"nonce": "p1-nonce", "id": echo["id"]}
            # leave
            no_content(remove_member(api, leaver.token, chat_id, leaver.id))
            await p_chat(lambda d: leaver.id not in d["participants"])
            # hand over to p, and p renames over REST
            ok_json(set_role(api, owner.token, chat_id, p.id, "owner"))
            await p_chat(lambda d: True)
            ok_json(rename(api, p.token, chat_id, "p owns it"))
            await p_chat(lambda d: d["name"] == "p owns it")
            m2 = api.send(x.token, chat_id, "two")
            assert (await sp.recv_until(is_message))[0] == m2
            # r (removed) sends on its protocol-1 socket: an ERROR with the nonce, seed-shaped
            await sr.send({"chat_id": chat_id, "content": "let me in", "nonce": "r-nonce"})
            error, skipped = await sr.recv_until(lambda f: is_op(f, "ERROR"))
            assert error["d"]["nonce"] == "r-nonce"
            # The owner's protocol-2 socket got CHAT events, so the changes did reach sockets.
            await o.drain(0.3)
            assert sum(1 for f in o.events if f["op"] == "CHAT" and f["d"]["id"] == chat_id) >= 7
            # r's socket: no message of the chat after m1, no CHAT_REMOVED, only strict frames.
            await sr.drain(QUIET)
            all_r = sr.frames
            assert [f for f in all_r if is_message(f) and f["id"] != m1["id"]] == [], all_r
            assert [f for f in all_r if is_op(f, "CHAT") and r.id not in f["d"]["participants"]] == [], all_r
            for f in all_r:
                strict_p1_frame(f)
            # p: everything strict (every frame went through the strict decoder).
            await sp.drain(QUIET)
            assert all(strict_p1_frame(f) for f in sp.frames)
            # finally p is removed too (by the new admin? no: p is the owner; p leaves)
            no_content(remove_member(api, p.token, chat_id, p.id))
            await asyncio.sleep(0.3)
            api.send(x.token, chat_id, "p is gone")
            after = await sp.drain(QUIET)
            assert [f for f in after if is_message(f)] == [], after

    run(scenario(), timeout=90)
    # The seed REST shapes for p and x stay exact.
    chat = ok_json(api.get(f"/chats/{chat_id}", x.token))
    assert_keys(chat, CHAT_KEYS)
    for message in ok_json(api.get(f"/chats/{chat_id}/messages", x.token))["messages"]:
        assert_keys(message, MESSAGE_KEYS)
    for c in ok_json(api.get("/chats", x.token)):
        assert_keys(c, CHAT_KEYS)


# --- blocks ----------------------------------------------------------------------------------

def test_block_and_unblock_are_idempotent_and_listed_in_the_seed_user_shape(api, new_user):
    a, b, c = new_user("bl"), new_user("bl"), new_user("bl")
    assert blocks(api, a.token) == []
    no_content(block(api, a.token, b.id))
    no_content(block(api, a.token, b.id))
    no_content(block(api, a.token, c.id))
    listed = blocks(api, a.token)
    for user in listed:
        assert_keys(user, USER_KEYS)
    assert sorted(u["id"] for u in listed) == sorted([b.id, c.id])
    assert {u["id"]: u["username"] for u in listed} == {b.id: b.username, c.id: c.username}
    assert blocks(api, b.token) == []  # a blocking b does not list a in b's blocks
    no_content(unblock(api, a.token, b.id))
    no_content(unblock(api, a.token, b.id))
    assert [u["id"] for u in blocks(api, a.token)] == [c.id]
    no_content(unblock(api, a.token, c.id))
    no_content(unblock(api, a.token, c.id))
    assert blocks(api, a.token) == []


def test_blocking_yourself_is_400_and_an_unknown_user_404(api, new_user):
    a = new_user("bs")
    assert_error(block(api, a.token, a.id), 400)
    assert_error(block(api, a.token, UNKNOWN_USER), 404)
    assert blocks(api, a.token) == []


async def next_error(sock) -> dict:
    """The next ERROR frame on a protocol-1 or protocol-2 socket (other frames skipped)."""
    if isinstance(sock, P2):
        return (await sock.until(lambda f: is_op(f, "ERROR")))[0]
    return (await sock.recv_until(lambda f: is_op(f, "ERROR")))[0]


def _assert_blocked(response):
    body = assert_error(response, 403)
    assert "blocked" in body["error"].lower(), body


def test_a_blocked_user_cannot_send_into_the_direct_chat_on_any_path(api, stack, new_user):
    a, b = new_user("ba"), new_user("bb")
    chat_id = create_chat_announced(stack, a, lambda: api.initiate(a.token, target_username=b.username)["chat_id"])
    api.send(b.token, chat_id, "before the block")
    no_content(block(api, a.token, b.id))
    # REST, both endpoints
    _assert_blocked(send_rest(api, b.token, chat_id, "rest"))
    _assert_blocked(api.post(f"/chats/{chat_id}/messages?v=2", b.token, json={"content": "rest v2"}))
    _assert_blocked(api.post("/send", b.token, json={"receiver_username": a.username, "content": "legacy"}))

    async def ws_paths():
        async with await StrictP1.open_strict(stack, b, "header", label="b-p1") as b1, \
                await P2.open_p2(stack, b, "query", label="b-p2") as b2, \
                await P2.open_p2(stack, a, "query", label="a-p2") as a2, \
                await StrictP1.open_strict(stack, a, "identify", label="a-p1") as a1:
            for sock, tag in ((b1, "p1"), (b2, "p2")):
                await sock.send({"chat_id": chat_id, "content": f"ws 000 {tag}", "nonce": f"000-{tag}"})
                error = await next_error(sock)
                assert error["d"]["nonce"] == f"000-{tag}" and "blocked" in error["d"]["message"].lower(), error
                await sock.send({"receiver_username": a.username, "content": f"ws 001 {tag}", "nonce": f"001-{tag}"})
                error = await next_error(sock)
                assert error["d"]["nonce"] == f"001-{tag}" and "blocked" in error["d"]["message"].lower(), error
            # a got none of it
            await a2.expect_silence(QUIET)
            assert await a1.drain(0.2) == []
            # a can still send to b, over REST and WS
            m = api.send(a.token, chat_id, "a still talks")
            await b2.until(lambda f: is_op(f, "MESSAGE") and f["d"]["id"] == m["id"])
            await a2.send({"chat_id": chat_id, "content": "a over ws", "nonce": "a-ws"})
            ack, _ = await a2.until(lambda f: is_op(f, "ACK"))
            assert ack["d"]["nonce"] == "a-ws"
            await a2.send({"receiver_username": b.username, "content": "a over 001", "nonce": "a-001"})
            ack, _ = await a2.until(lambda f: is_op(f, "ACK") and f["d"]["nonce"] == "a-001")
            # b's p1 socket stays strict throughout
            await b1.drain(0.3)

    run(ws_paths())
    assert ok_json(api.post("/send", a.token, json={"receiver_username": b.username, "content": "a legacy"})) == {
        "status": "sent"}
    # Both still read the history; nothing of b's after the block was stored.
    expected = ["before the block", "a still talks", "a over ws", "a over 001", "a legacy"]
    assert history_contents(api, a.token, chat_id) == expected
    assert history_contents(api, b.token, chat_id) == expected
    assert [e["content"] for e in ok_json(api.get(f"/history/{a.username}", b.token))] == expected
    assert [e["content"] for e in ok_json(api.get(f"/history/{b.username}", a.token))] == expected
    for user in (a, b):
        assert chat_id in [c["id"] for c in ok_json(api.get("/chats", user.token))]
        assert_chat(ok_json(api.get(f"/chats/{chat_id}", user.token)))
    # Unblocking restores every path.
    no_content(unblock(api, a.token, b.id))
    api.send(b.token, chat_id, "rest again")
    assert ok_json(api.post("/send", b.token, json={"receiver_username": a.username, "content": "legacy again"})) == {
        "status": "sent"}

    async def ws_again():
        async with await P2.open_p2(stack, b, "identify") as b2:
            await b2.send({"chat_id": chat_id, "content": "000 again", "nonce": "again-000"})
            ack, _ = await b2.until(lambda f: is_op(f, "ACK") and f["d"]["nonce"] == "again-000")
            await b2.send({"receiver_username": a.username, "content": "001 again", "nonce": "again-001"})
            ack, _ = await b2.until(lambda f: is_op(f, "ACK") and f["d"]["nonce"] == "again-001")

    run(ws_again())
    assert history_contents(api, a.token, chat_id)[-4:] == ["rest again", "legacy again", "000 again", "001 again"]


def test_a_block_holds_at_once_on_sockets_opened_before_it_and_an_unblock_likewise(api, stack, new_user):
    a, b = new_user("bo"), new_user("bo")
    chat_id = create_chat_announced(stack, a, lambda: api.initiate(a.token, target_username=b.username)["chat_id"])

    async def scenario():
        async with await P2.open_p2(stack, b, "query", label="b-p2") as b2, \
                await StrictP1.open_strict(stack, b, "header", label="b-p1") as b1, \
                await P2.open_p2(stack, a, "identify", label="a-p2") as a2:
            # Sockets are warm: a send each goes through.
            await b2.send({"chat_id": chat_id, "content": "warm", "nonce": "w1"})
            await b2.until(lambda f: is_op(f, "ACK") and f["d"]["nonce"] == "w1")
            await b1.send({"receiver_username": a.username, "content": "warm 001", "nonce": "w2"})
            await b1.recv_until(lambda f: is_op(f, "ACK") and f["d"]["nonce"] == "w2")
            for i in range(3):
                no_content(block(api, a.token, b.id))
                # At once: every WS path of b's open sockets is refused.
                for sock, frame in ((b2, {"chat_id": chat_id, "content": "x", "nonce": f"b2-000-{i}"}),
                                    (b2, {"receiver_username": a.username, "content": "x", "nonce": f"b2-001-{i}"}),
                                    (b1, {"chat_id": chat_id, "content": "x", "nonce": f"b1-000-{i}"}),
                                    (b1, {"receiver_username": a.username, "content": "x", "nonce": f"b1-001-{i}"})):
                    await sock.send(frame)
                    error = await next_error(sock)
                    assert error["d"]["nonce"] == frame["nonce"] and "blocked" in error["d"]["message"].lower(), error
                no_content(unblock(api, a.token, b.id))
                # At once: they go through again.
                await b2.send({"chat_id": chat_id, "content": f"back {i}", "nonce": f"back-{i}"})
                await b2.until(lambda f: is_op(f, "ACK") and f["d"]["nonce"] == f"back-{i}")
                await b1.send({"receiver_username": a.username, "content": f"back 001 {i}", "nonce": f"back1-{i}"})
                await b1.recv_until(lambda f: is_op(f, "ACK") and f["d"]["nonce"] == f"back1-{i}")
            await a2.drain(0.5)
            got = [f["d"]["content"] for f in a2.events if f["op"] == "MESSAGE"]
            assert "x" not in got and got[-1] == "back 001 2", got

    run(scenario(), timeout=60)
    assert "x" not in history_contents(api, a.token, chat_id)


def test_a_blocked_user_cannot_start_a_direct_chat_but_the_blocker_can(api, stack, new_user):
    a, b = new_user("bi"), new_user("bi")
    no_content(block(api, a.token, b.id))
    _assert_blocked(api.post("/chats/initiate", b.token, json={"target_username": a.username}))
    _assert_blocked(api.post("/chats/initiate", b.token, json={"target_id": a.id}))
    _assert_blocked(api.post("/send", b.token, json={"receiver_username": a.username, "content": "hi"}))

    async def ws_001():
        async with await P2.open_p2(stack, b, "query") as b2:
            await b2.send({"receiver_username": a.username, "content": "hi ws", "nonce": "start"})
            error, _ = await b2.until(lambda f: is_op(f, "ERROR"))
            assert error["d"]["nonce"] == "start" and "blocked" in error["d"]["message"].lower()

    run(ws_001())
    assert ok_json(api.get("/chats", a.token)) == [] and ok_json(api.get("/chats", b.token)) == []
    # The blocker can start it (and b still cannot send into it).
    started = api.initiate(a.token, target_id=b.id)
    assert started["status"] == "created"
    _assert_blocked(send_rest(api, b.token, started["chat_id"], "now?"))
    api.send(a.token, started["chat_id"], "I can")
    assert history_contents(api, b.token, started["chat_id"]) == ["I can"]
    # Unblocked: b can start (it exists now) and send.
    no_content(unblock(api, a.token, b.id))
    assert api.initiate(b.token, target_username=a.username) == {"chat_id": started["chat_id"], "status": "exists"}
    api.send(b.token, started["chat_id"], "thanks")


def test_blocks_leave_groups_alone(api, stack, new_user):
    a, b, c = new_user("bg"), new_user("bg"), new_user("bg")
    group = group_announced(stack, api, a, [b, c], "unaffected")
    no_content(block(api, a.token, b.id))
    no_content(block(api, b.token, a.id))  # both ways

    async def scenario():
        async with await P2.open_p2(stack, a, "query") as sa, \
                await P2.open_p2(stack, b, "identify") as sb:
            m = api.send(b.token, group, "b in the group")
            await sa.until(lambda f: is_op(f, "MESSAGE") and f["d"]["id"] == m["id"])
            await sb.send({"chat_id": group, "content": "b ws in the group", "nonce": "g1"})
            ack, _ = await sb.until(lambda f: is_op(f, "ACK"))
            frame, _ = await sa.until(lambda f: is_op(f, "MESSAGE") and f["d"]["id"] == ack["d"]["id"])
            m2 = api.send(a.token, group, "a in the group")
            await sb.until(lambda f: is_op(f, "MESSAGE") and f["d"]["id"] == m2["id"])

    run(scenario())
    # Group administration between them still works too.
    ok_json(set_role(api, a.token, group, b.id, "admin"))
    ok_json(rename(api, b.token, group, "b renamed it"))


def test_blocks_in_both_directions_stop_both_and_one_unblock_restores_one_side(api, new_user):
    a, b = new_user("b2"), new_user("b2")
    chat_id = api.initiate(a.token, target_id=b.id)["chat_id"]
    no_content(block(api, a.token, b.id))
    no_content(block(api, b.token, a.id))
    _assert_blocked(send_rest(api, a.token, chat_id, "a"))
    _assert_blocked(send_rest(api, b.token, chat_id, "b"))
    no_content(unblock(api, b.token, a.id))
    api.send(a.token, chat_id, "a again")
    _assert_blocked(send_rest(api, b.token, chat_id, "b still"))
    assert history_contents(api, b.token, chat_id) == ["a again"]
