"""schemathesis against a live stack: requests generated from Sources/FCGIApp/openapi.yaml,
a bounded number per operation (SCHEMATHESIS_MAX_EXAMPLES, default 25), sent through a real
nginx with a real token. Every answer must be documented (status, content type, body schema,
the shape `v` selects) and none may be a 5xx.

Random ids alone would only ever meet 404s, so path and body ids are drawn half the time from
a small world made for each operation: the caller, a peer, a direct chat and a group with
messages, a reaction and an upload.

Run by ./scripts/test as its own step; alone:
    BIN_DIR=.build/debug python3 -m pytest -q -p no:cacheprovider Tests/schema
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings, strategies as st
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.checks import not_a_server_error

REPO_ROOT = Path(__file__).resolve().parents[2]
E2E = REPO_ROOT / "Tests" / "e2e"
SPEC_PATH = REPO_ROOT / "Sources" / "FCGIApp" / "openapi.yaml"
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))

sys.path.insert(0, str(E2E))
import helpers  # noqa: E402
import openapi_check  # noqa: E402

# The e2e suite's stack start/stop, without making it this directory's conftest.
_loader = importlib.util.spec_from_file_location("e2e_conftest", E2E / "conftest.py")
e2e = importlib.util.module_from_spec(_loader)
_loader.loader.exec_module(e2e)


@dataclass
class World:
    """Real ids for the generated requests to hit."""
    user: helpers.User
    peer: helpers.User
    direct_id: int
    group_id: int
    message_ids: list[int] = field(default_factory=list)
    upload_id: int = 0

    @property
    def chat_ids(self) -> list[int]:
        return [self.group_id, self.direct_id]

    @property
    def user_ids(self) -> list[int]:
        return [self.user.id, self.peer.id]


_world: World | None = None


def _make_world(api: helpers.Api) -> World:
    user, peer = api.new_user("sa"), api.new_user("sb")
    direct_id = api.initiate(user.token, target_id=peer.id)["chat_id"]
    group = helpers.ok_json(api.post("/chats", user.token, json={"name": "fuzz", "participants": [peer.id]}))
    world = World(user=user, peer=peer, direct_id=direct_id, group_id=group["id"])
    for chat_id in world.chat_ids:
        for text in ("one", "two"):
            world.message_ids.append(api.send(user.token, chat_id, text)["id"])
    world.message_ids.append(api.send(peer.token, group["id"], "from the peer")["id"])
    response = api.request("PUT", f"/chats/{group['id']}/messages/{world.message_ids[0]}/reactions/%F0%9F%91%8D",
                           user.token)
    assert response.status_code == 204, response.text
    upload = helpers.ok_json(api.post("/upload?v=2", user.token,
                                      files={"file": ("p.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png")}))
    world.upload_id = upload["id"]
    return world


def _real_or(generated, real: list[int]):
    return st.one_of(st.just(generated), st.sampled_from(real))


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    if _world is None or not path_parameters:
        return st.just(path_parameters)
    choices = {}
    for name, value in path_parameters.items():
        if name == "id":
            choices[name] = _real_or(value, _world.chat_ids)
        elif name == "mid":
            choices[name] = _real_or(value, _world.message_ids)
        elif name == "uid":
            choices[name] = _real_or(value, _world.user_ids)
        elif name in ("user", "username"):
            choices[name] = st.one_of(st.just(value), st.sampled_from([_world.peer.username, str(_world.peer.id)]))
        elif name == "emoji":
            choices[name] = st.one_of(st.just(value), st.sampled_from(["👍", "❤️", "🎉"]))
        else:
            choices[name] = st.just(value)
    return st.fixed_dictionaries(choices)


@schemathesis.hook
def flatmap_body(context, body):
    if _world is None or not isinstance(body, dict):
        return st.just(body)
    choices = {}
    for name, value in body.items():
        if name in ("message_id", "reply_to_id"):
            choices[name] = _real_or(value, _world.message_ids)
        elif name in ("target_id",):
            choices[name] = _real_or(value, _world.user_ids)
        elif name in ("image_id",):
            choices[name] = _real_or(value, [_world.upload_id])
        elif name in ("participants", "user_ids"):
            choices[name] = st.one_of(st.just(value), st.just([_world.peer.id]))
        elif name in ("target_username", "receiver_username"):
            choices[name] = st.one_of(st.just(value), st.just(_world.peer.username))
        else:
            choices[name] = st.just(value)
    return st.fixed_dictionaries(choices)


@schemathesis.hook
def flatmap_query(context, query):
    if _world is None or not query:
        return st.just(query)
    choices = {}
    for name, value in query.items():
        if name == "user_ids":
            choices[name] = st.one_of(st.just(value), st.just(",".join(map(str, _world.user_ids))))
        elif name in ("before_id", "after_id"):
            choices[name] = _real_or(value, _world.message_ids)
        else:
            choices[name] = st.just(value)
    return st.fixed_dictionaries(choices)


@pytest.fixture(scope="session")
def stack():
    running = e2e.start_stack(prefix="msgr-schema-")
    yield running
    try:
        e2e.stop_stack(running)
    finally:
        e2e.cleanup_stack(running)


@pytest.fixture(scope="session")
def api(stack) -> helpers.Api:
    return helpers.Api(stack.base_url)


@pytest.fixture(scope="session")
def api_schema(stack):
    config = schemathesis.Config.from_dict({
        "base-url": stack.base_url,
        "generation": {"mode": "positive", "max-examples": MAX_EXAMPLES},
        # Examples and fuzzing; no coverage phase (it sends schema-violating edge cases on
        # purpose) and no stateful phase (no links in the spec).
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    })
    return schemathesis.openapi.from_path(SPEC_PATH, config=config)


@pytest.fixture
def world(api):
    """A fresh world per operation, so one operation's deletes and leaves cannot starve the next."""
    global _world
    _world = _make_world(api)
    yield _world
    _world = None


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_api(case, world, stack):
    # Every operation gets the real token (POST /login and GET /users/{user} accept one too).
    # The call goes through requests, so openapi_check (installed by the e2e conftest) sees it.
    seen = len(openapi_check.mismatches)
    response = case.call(headers={"Authorization": f"Bearer {world.user.token}"}, timeout=helpers.TIMEOUT)
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                response_headers_conformance, response_schema_conformance],
    )
    new = openapi_check.mismatches[seen:]
    assert not new, "\n".join(new)
