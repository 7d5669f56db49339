"""FCGIApp killed with SIGKILL while clients write through REST: every message that got its
HTTP 200 is in the database afterwards, retries with the same nonce are stored once, the
supervisor brings FCGIApp back, and the database passes SQLite's integrity check."""

import os
import signal
import threading
import time

import requests

import database
from helpers import auth, ok_json, wait_for


def post_message(base_url: str, token: str, chat_id: int, content: str, nonce: str):
    try:
        response = requests.post(f"{base_url}/chats/{chat_id}/messages", headers=auth(token),
                                 json={"content": content, "nonce": nonce}, timeout=10)
    except requests.RequestException:
        return None
    return response


def full_history(api, token: str, chat_id: int) -> list[dict]:
    messages, after = [], 0
    while True:
        page = api.messages(token, chat_id, f"?after_id={after}&limit=1000")
        if not page:
            return messages
        messages += page
        after = page[-1]["id"]


def test_kill_9_of_fcgiapp_under_write_load_loses_nothing_acknowledged(api, stack, new_user):
    alice, bob = new_user("rel"), new_user("rel")
    chat_id = api.initiate(alice.token, target_username=bob.username)["chat_id"]
    old_pid = stack.child_pids()["FCGIApp"]

    acknowledged: dict[str, int] = {}   # content -> id, for every 200
    unanswered: list[tuple[str, str]] = []  # (content, nonce) that got no 200
    lock = threading.Lock()
    stop = threading.Event()

    def writer(index: int) -> None:
        sequence = 0
        while not stop.is_set() and sequence < 2000:
            content, nonce = f"w{index}-{sequence}", f"n{index}-{sequence}"
            response = post_message(stack.base_url, alice.token, chat_id, content, nonce)
            with lock:
                if response is not None and response.status_code == 200:
                    body = response.json()
                    assert body["content"] == content
                    acknowledged[content] = body["id"]
                else:
                    # Only the kill may make a request fail, and then only as a gateway error.
                    assert response is None or response.status_code in (502, 503, 504), response.text
                    unanswered.append((content, nonce))
            sequence += 1

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: len(acknowledged) >= 50, timeout=20), "writes did not get going"
    os.kill(old_pid, signal.SIGKILL)
    # Keep writing through the outage and the restart.
    restarted = wait_for(lambda: stack.child_pids().get("FCGIApp") not in (None, old_pid), timeout=15)
    assert restarted, "the supervisor did not restart FCGIApp"
    assert wait_for(lambda: post_message(stack.base_url, bob.token, chat_id, "probe", f"probe-{time.time()}")
                    is not None, timeout=15)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert acknowledged, "nothing was acknowledged"

    # A client retries what got no answer, with the same nonce: stored at most once overall.
    for content, nonce in unanswered:
        response = post_message(stack.base_url, alice.token, chat_id, content, nonce)
        assert response is not None and response.status_code == 200, response
        stored = response.json()
        assert stored["content"] == content
        acknowledged[content] = stored["id"]

    history = full_history(api, alice.token, chat_id)
    by_content: dict[str, list[int]] = {}
    for message in history:
        by_content.setdefault(message["content"], []).append(message["id"])
    for content, message_id in acknowledged.items():
        assert by_content.get(content) == [message_id], f"{content}: acknowledged as {message_id}, stored as {by_content.get(content)}"
    assert [m["id"] for m in history] == sorted(m["id"] for m in history)

    assert database.integrity(stack) == ("ok", [])


def test_malformed_requests_at_every_endpoint_leave_the_stack_serving(api, stack, new_user):
    """Random bytes, wrong methods and broken JSON at every endpoint: only 4xx, then the stack
    still answers normally."""
    user = new_user("fz")
    endpoints = [
        ("POST", "/login"), ("GET", "/users/x"), ("GET", "/users?username=a"), ("PATCH", "/users/me"),
        ("POST", "/chats/initiate"), ("GET", "/chats"), ("POST", "/chats"), ("GET", "/chats/1"),
        ("GET", "/chats/1/messages"), ("POST", "/chats/1/messages"), ("POST", "/upload"),
        ("POST", "/send"), ("GET", "/history/x"),
    ]
    rng = __import__("random").Random(1234)
    for method, path in endpoints:
        for attempt in range(25):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 400)))
            headers = auth(user.token) if attempt % 2 else {}
            if attempt % 3 == 0:
                headers["Content-Type"] = rng.choice(["application/json", "multipart/form-data; boundary=x", "text/plain"])
            response = requests.request(method, stack.base_url + path, data=body, headers=headers, timeout=10)
            assert 400 <= response.status_code < 500 or response.status_code == 200, (method, path, response.status_code)
            if response.status_code != 200:
                assert set(response.json()) == {"error"}
    # Still serving.
    assert "token" in ok_json(requests.post(stack.base_url + "/login", json={"username": user.username}, timeout=10))
