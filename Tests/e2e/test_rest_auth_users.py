"""Seed 000: login and users; tokens (401 rules); profile updates."""

import time

import pytest

from helpers import (
    USER_KEYS,
    assert_error,
    assert_keys,
    assert_user,
    decode_token,
    forge_token,
    ok_json,
    unique_username,
)


def test_login_returns_only_a_token_with_the_documented_claims(api):
    username = unique_username("login")
    body = ok_json(api.post("/login", json={"username": username}))
    assert_keys(body, {"token"})
    claims = decode_token(body["token"])
    for claim in ("sub", "user_id", "username", "exp", "iat"):
        assert claim in claims, claims
    assert claims["username"] == username
    assert claims["sub"] == str(claims["user_id"])
    # 24 h by default, as in the seed.
    assert claims["exp"] - claims["iat"] == 86400
    assert abs(claims["iat"] - time.time()) < 300


def test_login_again_is_the_same_user(api):
    username = unique_username("again")
    first = decode_token(api.login(username))["user_id"]
    second = decode_token(api.login(username))["user_id"]
    assert first == second


def test_usernames_are_unique_case_insensitively(api):
    base = unique_username("Case")
    upper = decode_token(api.login(base))["user_id"]
    lower = decode_token(api.login(base.lower()))["user_id"]
    shout = decode_token(api.login(base.upper()))["user_id"]
    assert upper == lower == shout
    user = ok_json(api.get(f"/users/{base.lower()}", api.login(base)))
    assert user["id"] == upper
    # The name keeps the spelling it was registered with.
    assert user["username"] == base


def test_get_user_by_name_and_by_id(api, new_user):
    me = new_user("me")
    other = new_user("other")
    by_name = ok_json(api.get(f"/users/{other.username}", me.token))
    assert_user(by_name)
    assert by_name == {
        "id": other.id,
        "username": other.username,
        "display_name": None,
        "bio": None,
        "image_id": None,
    }
    by_id = ok_json(api.get(f"/users/{other.id}", me.token))
    assert by_id == by_name


def test_unknown_user_is_404(api, new_user):
    me = new_user()
    assert_error(api.get(f"/users/{unique_username('ghost')}", me.token), 404)
    assert_error(api.get("/users/987654321", me.token), 404)


@pytest.mark.parametrize("segment", ["0", "99999999999999999999", "1abc", "a" * 5000, "a%00b", "%FF%FE"])
def test_bad_user_path_is_400(api, new_user, segment):
    me = new_user()
    assert_error(api.get(f"/users/{segment}", me.token), 400)


def test_negative_user_id_is_400(api, new_user):
    me = new_user()
    assert_error(api.get("/users/-1", me.token), 400)


def test_search_users_by_substring(api, new_user):
    me = new_user()
    marker = unique_username("srch").lower()
    names = [f"{marker}x{i}" for i in range(3)]
    ids = {decode_token(api.login(name))["user_id"] for name in names}
    found = ok_json(api.get("/users", me.token, params={"username": marker}))
    assert isinstance(found, list)
    for user in found:
        assert_user(user)
    assert {user["id"] for user in found} == ids
    # A substring from the middle of the names.
    middle = ok_json(api.get("/users", me.token, params={"username": marker[2:] + "x1"}))
    assert [user["username"] for user in middle] == [names[1]]
    # Nothing matches.
    assert ok_json(api.get("/users", me.token, params={"username": marker + "zzz"})) == []


def test_search_users_is_bounded_to_50(api, new_user):
    me = new_user()
    marker = unique_username("many").lower()
    for i in range(55):
        api.login(f"{marker}n{i}")
    found = ok_json(api.get("/users", me.token, params={"username": marker}))
    assert len(found) == 50
    assert len({user["id"] for user in found}) == 50
    for user in found:
        assert_keys(user, USER_KEYS)
        assert user["username"].startswith(marker)


def test_patch_me_updates_profile(api, new_user):
    me = new_user("prof")
    updated = ok_json(api.patch("/users/me", me.token, json={"display_name": "Alice Wonderland", "bio": "Curiouser!"}))
    assert_user(updated)
    assert updated == {
        "id": me.id,
        "username": me.username,
        "display_name": "Alice Wonderland",
        "bio": "Curiouser!",
        "image_id": None,
    }
    # Only the given fields change.
    updated = ok_json(api.patch("/users/me", me.token, json={"bio": "and curiouser"}))
    assert updated["display_name"] == "Alice Wonderland"
    assert updated["bio"] == "and curiouser"
    # Others see it.
    other = new_user()
    assert ok_json(api.get(f"/users/{me.username}", other.token)) == updated
    assert ok_json(api.get(f"/users/{me.id}", other.token)) == updated


def test_patch_me_keeps_unicode(api, new_user):
    me = new_user("uni")
    updated = ok_json(api.patch("/users/me", me.token, json={"display_name": "Ünïcödé 🎉", "bio": "日本語"}))
    assert updated["display_name"] == "Ünïcödé 🎉"
    assert updated["bio"] == "日本語"


@pytest.mark.parametrize(
    "body",
    [
        {"display_name": 5},
        {"bio": ["x"]},
        {"display_name": {"a": 1}},
        {"display_name": "x" * 10000},
        {"bio": "x" * 100000},
        {"image_id": "1"},
        {"image_id": 1.5},
        {"image_id": -1},
        {"image_id": 99999999999999999999},
    ],
)
def test_patch_me_rejects_bad_fields(api, new_user, body):
    me = new_user()
    assert_error(api.patch("/users/me", me.token, json=body), 400)
    # Nothing changed.
    assert ok_json(api.get(f"/users/{me.id}", me.token))["display_name"] is None


def test_patch_me_unknown_image_is_refused(api, new_user):
    me = new_user()
    assert_error(api.patch("/users/me", me.token, json={"image_id": 987654321}), 400, 403, 404)


def test_patch_me_needs_a_token(api):
    assert_error(api.patch("/users/me", json={"bio": "x"}), 401)


# --- tokens ----------------------------------------------------------------------------------

PROTECTED = [
    ("GET", "/chats"),
    ("GET", "/chats/1"),
    ("GET", "/chats/1/messages"),
    ("POST", "/chats/1/messages"),
    ("POST", "/chats/initiate"),
    ("POST", "/chats"),
    ("POST", "/send"),
    ("GET", "/history/alice"),
    ("PATCH", "/users/me"),
]


@pytest.mark.parametrize("method,path", PROTECTED)
def test_protected_endpoints_need_a_token(api, method, path):
    assert_error(api.request(method, path, json={}), 401)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer garbage",
        "Bearer a.b.c",
        "Basic YWxpY2U6c2VjcmV0",
        "bearer",
        "Token abc",
    ],
)
def test_garbage_authorization_is_401(api, header):
    assert_error(api.get("/chats", headers={"Authorization": header}), 401)


@pytest.fixture
def real_claims(api, new_user):
    user = new_user("tok")
    return user, decode_token(user.token)


def test_forged_token_with_the_real_key_is_accepted(api, stack, real_claims):
    """Control for the forgery tests below: our HS256 signing matches the app's."""
    user, claims = real_claims
    token = forge_token(claims, stack.jwt_secret())
    ok_json(api.get("/chats", token))


def test_expired_token_is_401(api, stack, real_claims):
    _, claims = real_claims
    now = int(time.time())
    expired = dict(claims, iat=now - 7200, exp=now - 3600)
    assert_error(api.get("/chats", forge_token(expired, stack.jwt_secret())), 401)


def test_wrong_key_token_is_401(api, real_claims):
    _, claims = real_claims
    assert_error(api.get("/chats", forge_token(claims, b"not-the-secret-key-at-all-0123456789")), 401)


def test_alg_none_token_is_401(api, real_claims):
    _, claims = real_claims
    token = forge_token(claims, b"", alg="none")
    assert_error(api.get("/chats", token), 401)
    assert_error(api.get("/chats", token + "AAAA"), 401)


def test_other_algorithm_with_valid_hs256_signature_is_401(api, stack, real_claims):
    """The token's own alg is never trusted: HS512 in the header with an HS256 signature."""
    _, claims = real_claims
    token = forge_token(claims, stack.jwt_secret(), header={"alg": "HS512", "typ": "JWT"})
    assert_error(api.get("/chats", token), 401)


def test_tampered_token_is_401(api, new_user):
    victim = new_user("victim")
    attacker = new_user("attacker")
    header, _, signature = attacker.token.split(".")
    claims = dict(decode_token(attacker.token), user_id=victim.id, sub=str(victim.id), username=victim.username)
    forged_payload = forge_token(claims, b"x").split(".")[1]
    assert_error(api.get("/chats", f"{header}.{forged_payload}.{signature}"), 401)

