"""Supervision (issue 19): kill -9 of FCGIApp or WSRelay — scripts/run starts it again and its
socket answers within 2 s; while it is down nginx answers 502/503 with a JSON {"error"} body
(never nginx's HTML page) on every location: the API, /upload and the /ws upgrade. A stack of
its own (~15 s)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time

import pytest
import requests

import helpers
from faults_helpers import new_user, own_stack, request
from ws_helpers import open_ws, refused_status, run, ws_url

RESTART_WITHIN = 2.0


@pytest.fixture(scope="module")
def stack():
    yield from own_stack("msgr-sup-")


def socket_answers(path) -> bool:
    """Something accepts connections on the Unix socket (a stale file refuses them)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def assert_json_gateway_error(response: requests.Response) -> None:
    assert response.status_code in (502, 503), (response.status_code, response.text[:300])
    body = helpers.assert_error(response, 502, 503)
    assert "<html" not in response.text.lower(), response.text


def kill_and_time_restart(stack, name: str, sockets: list[str], while_down) -> float:
    """kill -9 of the child `name`; `while_down()` runs at once (the supervisor waits 0.5 s
    before restarting); returns the seconds from the kill until every socket answers again."""
    old = stack.child_pids()[name]
    for path in sockets:
        assert socket_answers(stack.run_dir / path), path
    os.kill(old, signal.SIGKILL)
    killed_at = time.monotonic()
    # Its listening sockets close once its last thread is gone (the main thread turns zombie
    # before the others have exited), well before the supervisor's 0.5 s back-off ends.
    while any(socket_answers(stack.run_dir / path) for path in sockets):
        assert time.monotonic() - killed_at < 0.5, f"{name}'s sockets still answer after SIGKILL"
        time.sleep(0.001)
    while_down()
    while not all(socket_answers(stack.run_dir / path) for path in sockets):
        assert time.monotonic() - killed_at < 15, f"{name} did not come back within 15 s"
        time.sleep(0.01)
    seconds = time.monotonic() - killed_at
    new = stack.child_pids().get(name)
    assert new not in (None, old), (old, new)
    return seconds


def test_fcgiapp_killed_is_back_within_2_s_and_nginx_answers_json_meanwhile(stack):
    user = new_user(stack, "sf")

    def while_down():
        # Both FastCGI locations, several methods; every answer a JSON gateway error.
        assert_json_gateway_error(request(stack, "GET", "/chats", user.token))
        assert_json_gateway_error(request(stack, "POST", "/chats/1/messages", user.token, json={"content": "x"}))
        assert_json_gateway_error(request(stack, "POST", "/login", json={"username": user.username}))
        assert_json_gateway_error(request(stack, "POST", "/upload", user.token,
                                          files={"file": ("a.txt", b"hello", "text/plain")}))
        assert_json_gateway_error(request(stack, "GET", "/users/me/blocks", user.token, timeout=5))

    seconds = kill_and_time_restart(stack, "FCGIApp", ["fcgi.sock", "fcgi-upload.sock"], while_down)
    print(f"\nFCGIApp: kill -9 -> sockets answer again in {seconds:.2f} s")
    assert seconds <= RESTART_WITHIN, f"FCGIApp took {seconds:.2f} s to come back"
    response = request(stack, "GET", "/chats?v=2", user.token)
    assert response.status_code == 200, response.text


def test_wsrelay_killed_is_back_within_2_s_and_the_upgrade_gets_json_meanwhile(stack):
    user = new_user(stack, "sw")

    def while_down():
        status, body = run(refused_status(ws_url(stack, token=user.token)))
        assert status in (502, 503), (status, body)
        assert b"<html" not in body.lower(), body
        parsed = json.loads(body)
        assert set(parsed) == {"error"} and parsed["error"], parsed
        # The REST side is unaffected.
        assert request(stack, "GET", "/chats", user.token).status_code == 200

    seconds = kill_and_time_restart(stack, "WSRelay", ["relay.sock"], while_down)
    print(f"\nWSRelay: kill -9 -> socket answers again in {seconds:.2f} s")
    assert seconds <= RESTART_WITHIN, f"WSRelay took {seconds:.2f} s to come back"

    async def back():
        ws = await open_ws(ws_url(stack))
        await ws.send('{"op":"IDENTIFY","d":{"token":"%s"}}' % user.token)
        frame = await asyncio.wait_for(ws.recv(), 10)
        assert '"READY"' in frame, frame
        await ws.close()
    run(back())


def test_both_killed_twice_in_a_row_still_come_back_within_2_s(stack):
    """A second crash soon after the first doubles the back-off (0.5 → 1 s): still in time."""
    for name, sockets in (("FCGIApp", ["fcgi.sock"]), ("WSRelay", ["relay.sock"])):
        seconds = kill_and_time_restart(stack, name, sockets, lambda: None)
        assert seconds <= RESTART_WITHIN, f"{name} took {seconds:.2f} s to come back the second time"
        print(f"\n{name}: second kill -9 -> back in {seconds:.2f} s")
