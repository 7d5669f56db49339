"""The web client at `/`, in two real headless Chromium windows (two people), against a real
stack: nginx serving nginx/www, FCGIApp, WSRelay, SQLite.

Each test logs both windows in as fresh users. What a person sees is read from the page
(text, images, badges); nothing in the page is stubbed. Going offline is the browser's own
network emulation (CDP) plus killing the page's socket under it.
"""

from __future__ import annotations

import re
import struct
import time
import zlib
from pathlib import Path

import pytest
import requests
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

import helpers

XSS = "<img src=x onerror=alert(1)>"
ONLINE = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
OFFLINE = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}


# --- the page as a person uses it ------------------------------------------------------------

class Client:
    """One browser window and what its user does and sees."""

    def __init__(self, driver, base_url: str, label: str):
        self.d = driver
        self.base_url = base_url
        self.label = label
        self.username = None

    # waiting
    def wait(self, predicate, what: str, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        last_error = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
            except StaleElementReferenceException as error:   # re-rendered meanwhile
                last_error = error
            if time.monotonic() > deadline:
                raise AssertionError(f"[{self.label}] timed out after {timeout:.0f}s waiting for {what}"
                                     f" (last error {last_error!r}); page state: {self.state()}")
            time.sleep(0.05)

    def state(self) -> dict:
        try:
            return self.d.execute_script("""
              const q = (s) => [...document.querySelectorAll(s)];
              return {
                banner: document.getElementById('conn-banner').textContent,
                chats: q('.chat-item').map(e => e.innerText.replace(/\\s+/g, ' ')),
                messages: q('.msg').map(e => e.innerText.replace(/\\s+/g, ' ')).slice(-12),
                toast: document.getElementById('toast').textContent,
              };""")
        except Exception as error:  # noqa: BLE001 - diagnostics only
            return {"error": repr(error)}

    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)

    def find(self, css: str):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def visible(self, element_id: str) -> bool:
        return self.js(f"const e = document.getElementById('{element_id}'); return !!e && !e.hidden && e.offsetParent !== null;")

    # session
    def login(self, username: str, password: str | None = None):
        self.d.get(self.base_url + "/")
        self.js("localStorage.clear()")
        self.d.get(self.base_url + "/")
        self.username = username
        box = self.wait(lambda: self.find("#login-username"), "the login form")
        box.send_keys(username + Keys.ENTER)
        if password is not None:
            self.wait(lambda: self.visible("login-password"), "the password field")
            self.find("#login-password").send_keys(password + Keys.ENTER)
        self.wait(lambda: self.visible("app-view"), "the messenger after logging in")
        self.wait(lambda: self.find("#me-name").text == username, "my name in the sidebar")
        self.wait(lambda: not self.visible("conn-banner"), "the socket to be ready")

    def token(self) -> str:
        return self.js("return localStorage.getItem('messenger.token')")

    # chats
    def start_direct_chat(self, username: str, title: str | None = None):
        self.find("#btn-new-chat").click()
        self.find("#new-chat-query").send_keys(username)
        button = self.wait(lambda: next((b for b in self.finds("#new-chat-results button")
                                         if f"@{username}" in b.text), None), f"{username} in the search results")
        button.click()
        self.wait(lambda: self.visible("chat-main") and self.find("#chat-name").text == (title or username),
                  f"the chat with {username} to open")

    def chat_item(self, title: str):
        for item in self.finds(".chat-item"):
            if item.find_element(By.CSS_SELECTOR, ".ci-name").text == title:
                return item
        return None

    def open_chat(self, title: str):
        self.retry(lambda: self.wait(lambda: self.chat_item(title), f"chat {title!r} in the list").click(), f"open {title!r}")
        self.wait(lambda: self.find("#chat-name").text == title, f"chat {title!r} to open")

    def send(self, text: str):
        box = self.find("#composer-input")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def messages(self) -> list[dict]:
        """The open chat's messages as shown: id (null while pending), text, files, reactions."""
        return self.js("""
          return [...document.querySelectorAll('#message-list .msg')].map(e => ({
            id: e.dataset.id ? Number(e.dataset.id) : null,
            pending: e.classList.contains('pending'),
            mine: e.classList.contains('mine'),
            text: e.querySelector(':scope > .bubble > .text')?.textContent ?? null,
            edited: !!e.querySelector('.edited'),
            ticks: e.querySelector('.ticks')?.textContent ?? null,
            images: [...e.querySelectorAll('img.att-img')].map(i => ({src: i.getAttribute('src'), w: i.naturalWidth})),
            links: [...e.querySelectorAll('a.att-file')].map(a => ({href: a.getAttribute('href'), download: a.getAttribute('download'), name: a.querySelector('.att-name').textContent})),
            reactions: [...e.querySelectorAll('.reaction')].map(r => r.textContent),
            quote: e.querySelector('.reply-quote')?.textContent ?? null,
          }));""")

    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages() if m["id"] is not None]

    def message_element(self, text: str):
        for element in self.finds("#message-list .msg[data-id]"):
            node = element.find_elements(By.CSS_SELECTOR, ":scope > .bubble > .text")
            if node and node[0].text == text:
                return element
        return None

    def retry(self, action, what: str):
        """Runs action again when the page re-rendered what it was holding (live updates do)."""
        for attempt in range(10):
            try:
                return action()
            except StaleElementReferenceException:
                if attempt == 9:
                    raise
                time.sleep(0.1)
        raise AssertionError(what)

    def message_action(self, text: str, label: str):
        def act():
            element = self.wait(lambda: self.message_element(text), f"message {text!r}")
            ActionChains(self.d).move_to_element(element).perform()
            button = element.find_element(By.CSS_SELECTOR, f".actions button[aria-label='{label}']")
            self.wait(lambda: button.is_displayed(), f"the {label} button")
            button.click()
        self.retry(act, f"{label} on {text!r}")

    def pick_reaction(self, emoji: str):
        self.retry(lambda: next(b for b in self.finds("#picker button") if b.text == emoji).click(), f"pick {emoji}")

    def click_chip(self, text: str, emoji: str):
        self.retry(lambda: next(c for c in self.message_element(text).find_elements(By.CSS_SELECTOR, ".reaction")
                                if emoji in c.text).click(), f"chip {emoji}")

    def screenshot(self, path: Path):
        self.d.save_screenshot(str(path))

    def severe_console_entries(self) -> list[dict]:
        """Script errors and CSP violations (network errors, like an expected 404, excepted)."""
        return [e for e in self.d.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]

    def network(self, conditions: dict):
        self.d.execute_cdp_cmd("Network.emulateNetworkConditions", conditions)


@pytest.fixture
def people(browsers, stack, api):
    """(alice, bob): the two windows logged in as two fresh users."""
    alice = Client(browsers[0], stack.base_url, "alice")
    bob = Client(browsers[1], stack.base_url, "bob")
    for client in (alice, bob):
        client.network(ONLINE)
        client.d.set_window_size(1200, 860)
        client.d.get_log("browser")   # forget earlier tests' entries
    alice.login(helpers.unique_username("alice"))
    bob.login(helpers.unique_username("bob"))
    yield alice, bob
    for client in (alice, bob):
        client.network(ONLINE)
        alerts = client.js("return window.__alerts || []")
        assert alerts == [], f"[{client.label}] alert() was called: {alerts}"
        entries = client.severe_console_entries()
        assert entries == [], f"[{client.label}] console errors: {entries}"


@pytest.fixture(autouse=True)
def no_server_errors(stack):
    """Fails a test during which nginx logged any 5xx answer."""
    log = stack.log_dir / "nginx_access.log"
    start = log.stat().st_size if log.exists() else 0
    yield
    if not log.exists():
        return
    with open(log, "rb") as f:
        f.seek(start)
        lines = f.read().decode(errors="replace").splitlines()
    bad = [line for line in lines if re.search(r'" 5\d\d ', line)]
    assert not bad, "5xx answers: " + "\n".join(bad)


def chat_between(alice: Client, bob: Client):
    """alice starts the direct chat from the UI; bob opens it from his list."""
    alice.start_direct_chat(bob.username)
    alice.send("hi")
    bob.open_chat(alice.username)
    bob.wait(lambda: "hi" in bob.texts(), "the first message")


def png(width: int, height: int, rgb=(59, 108, 246)) -> bytes:
    """A real PNG image of one colour with a lighter diagonal band."""
    rows = b""
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            band = abs(x - y * width // height) < width // 8
            row += bytes(min(255, c + 90) if band else c for c in rgb)
        rows += bytes(row)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# --- the page itself -------------------------------------------------------------------------

def test_page_is_served_with_a_strict_policy_and_shadows_no_api_route(stack):
    base = stack.base_url
    page = requests.get(base + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "*" not in csp
    host = f"127.0.0.1:{stack.port}"
    assert set(directives["connect-src"]) == {"'self'", f"ws://{host}", f"wss://{host}"}
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-cache" in page.headers["Cache-Control"]
    # No inline script or style in the page: every script and stylesheet is a file of ours.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert "<style" not in page.text and " style=" not in page.text
    assert not re.search(r"\son[a-z]+=", page.text)
    # Revalidation costs a 304.
    again = requests.get(base + "/", headers={"If-None-Match": page.headers["ETag"]}, timeout=10)
    assert again.status_code == 304

    for path, mime in (("/app/app.js", "application/javascript"), ("/app/style.css", "text/css"),
                       ("/app/icon.svg", "image/svg+xml")):
        asset = requests.get(base + path, timeout=10)
        assert asset.status_code == 200, path
        assert asset.headers["Content-Type"].startswith(mime), (path, asset.headers["Content-Type"])
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/app/nope.js", "/app/.hidden", "/app/../README.md", "/app/"):
        assert requests.get(base + path, timeout=10).status_code in (403, 404), path

    # The API keeps every route: the client's files live only at / and /app/.
    assert requests.get(base + "/chats", timeout=10).status_code == 401
    for path in ("/index.html", "/app.js", "/style.css"):
        response = requests.get(base + path, timeout=10)
        helpers.assert_error(response, 404)


# --- two people ------------------------------------------------------------------------------

def test_two_people_chat_live_with_badges_receipts_typing_and_escaping(people, screenshot_dir):
    alice, bob = people
    alice.start_direct_chat(bob.username)
    alice.send("Hello Bob 👋")
    alice.wait(lambda: [m for m in alice.messages() if m["text"] == "Hello Bob 👋" and m["id"]], "the echo of alice's message")

    # Bob's list shows the new chat live, with an unread badge and the preview.
    item = bob.wait(lambda: bob.chat_item(alice.username), "alice's chat in bob's list")
    bob.wait(lambda: item.find_element(By.CSS_SELECTOR, ".badge").text == "1", "an unread badge of 1")
    assert item.find_element(By.CSS_SELECTOR, ".ci-preview").text == "Hello Bob 👋"
    bob.wait(lambda: bob.js("return document.title") == "(1) Messenger", "the unread count in the title")

    bob.open_chat(alice.username)
    bob.wait(lambda: bob.texts() == ["Hello Bob 👋"], "the history")
    bob.wait(lambda: not bob.chat_item(alice.username).find_elements(By.CSS_SELECTOR, ".badge"), "the badge to clear")
    # Bob read it: alice's ✓ becomes ✓✓.
    alice.wait(lambda: alice.messages()[-1]["ticks"] == "✓✓", "the read receipt ✓✓")

    # Presence: bob is online in alice's header.
    alice.wait(lambda: alice.find("#chat-sub").text == "online", "bob shown online")

    # Typing shows in alice's header while bob types, then bob's message arrives live.
    bob.find("#composer-input").send_keys("Hi Alice")
    alice.wait(lambda: "is typing" in alice.find("#chat-sub").text, "bob's typing indicator")
    bob.find("#composer-input").send_keys(Keys.ENTER)
    alice.wait(lambda: alice.texts() == ["Hello Bob 👋", "Hi Alice"], "bob's message, live")
    alice.wait(lambda: "is typing" not in alice.find("#chat-sub").text, "the typing indicator to go")
    sent = [m for m in bob.messages() if m["text"] == "Hi Alice"]
    assert len(sent) == 1 and sent[0]["mine"] and sent[0]["ticks"] in ("✓", "✓✓")

    # Markup in a message is text.
    alice.send(XSS)
    bob.wait(lambda: bob.texts()[-1:] == [XSS], "the markup message shown as text")
    alice.wait(lambda: alice.texts()[-1:] == [XSS], "alice's own copy")
    for client in (alice, bob):
        assert client.finds("#message-list img") == [], "markup became an element"
        assert client.js("return window.__alerts") == []
        with pytest.raises(NoAlertPresentException):
            client.d.switch_to.alert.text  # noqa: B018 - raises when there is none
    # The chat list moved the chat to the top with the newest preview, for both.
    bob.wait(lambda: bob.finds(".chat-item .ci-preview")[0].text == XSS, "bob's list preview")
    alice.wait(lambda: alice.finds(".chat-item .ci-preview")[0].text == f"You: {XSS}", "alice's list preview")
    alice.screenshot(screenshot_dir / "chat-alice.png")
    bob.screenshot(screenshot_dir / "chat-bob.png")


def test_image_inline_file_as_download_and_upload_progress(people, tmp_path, screenshot_dir):
    alice, bob = people
    chat_between(alice, bob)

    picture = tmp_path / "sunset.png"
    picture.write_bytes(png(160, 100))
    notes = tmp_path / "notes.txt"
    notes.write_text("plain text notes\n")
    # A slow uplink, so the progress bar is seen between 0 and 100%.
    big = tmp_path / "archive.bin"
    big.write_bytes(bytes(range(256)) * 2400)   # 600 KiB
    bob.network({"offline": False, "latency": 5, "downloadThroughput": -1, "uploadThroughput": 200 * 1024})
    bob.find("#file-input").send_keys(str(big))
    seen = bob.wait(lambda: [v for v in [bob.js("const p = document.querySelector('#attachments progress'); return p ? p.value : null")]
                             if v is not None and 0.05 < v < 0.95], "the progress bar part-way", timeout=20)
    assert seen
    bob.wait(lambda: bob.finds("#attachments li.done"), "the big upload to finish", timeout=30)
    bob.network(ONLINE)
    bob.find("#file-input").send_keys(str(picture))
    bob.find("#file-input").send_keys(str(notes))
    bob.wait(lambda: len(bob.finds("#attachments li.done")) == 3, "three uploads done")
    assert [p.get_attribute("value") for p in bob.finds("#attachments progress")] == ["1", "1", "1"]
    bob.send("Photos from yesterday")

    def shown(client: Client):
        return [m for m in client.messages() if m["text"] == "Photos from yesterday" and m["id"]]

    message = alice.wait(lambda: shown(alice) and shown(alice)[0]["images"] and shown(alice)[0]["images"][0]["w"] and shown(alice),
                         "the image, loaded, in alice's window")[0]
    assert len(message["images"]) == 1
    image = message["images"][0]
    assert re.fullmatch(r"/uploads/[0-9a-fA-F-]+\.png", image["src"]), image
    assert image["w"] == 160
    links = sorted(message["links"], key=lambda link: link["name"])
    assert [link["name"] for link in links] == ["archive.bin", "notes.txt"]
    for link in links:
        assert re.fullmatch(r"/uploads/[0-9a-fA-F-]+\.(bin|txt)", link["href"]), link
        assert link["download"] == link["name"]
    # What the link fetches is the file itself, served so it cannot run as the page's origin.
    served = requests.get(alice.base_url + links[1]["href"], timeout=10)
    assert served.text == "plain text notes\n"
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in served.headers["Content-Security-Policy"]
    bob.wait(lambda: shown(bob) and shown(bob)[0]["images"] and shown(bob)[0]["images"][0]["w"] == 160, "bob's own copy with the image")
    time.sleep(0.3)   # let the image settle into the layout
    alice.screenshot(screenshot_dir / "image-alice.png")
    bob.screenshot(screenshot_dir / "image-bob.png")


def test_edit_delete_reply_and_react_show_up_live(people, api, tmp_path, screenshot_dir):
    alice, bob = people
    # Display names: bob's over REST, alice's from her account dialog; each reaches the other
    # window as a USER event.
    helpers.ok_json(api.patch("/users/me", bob.token(), json={"display_name": "Bob Chen"}))
    bob.wait(lambda: bob.find("#me-name").text == "Bob Chen", "bob's new display name")
    alice.start_direct_chat(bob.username, "Bob Chen")
    alice.find("#btn-profile").click()
    alice.wait(lambda: alice.visible("profile-name"), "the account dialog")
    alice.find("#profile-name").send_keys("Alice Martin" + Keys.ENTER)
    alice.wait(lambda: alice.find("#profile-status").text == "Saved.", "the name saved")
    alice.find("#dlg-profile button[value='cancel']").click()
    alice.wait(lambda: alice.find("#me-name").text == "Alice Martin", "alice's new display name")
    alice.send("hi")
    bob.open_chat("Alice Martin")
    bob.wait(lambda: "hi" in bob.texts(), "the first message")
    alice.send("Lunch at noon?")
    bob.wait(lambda: "Lunch at noon?" in bob.texts(), "alice's question")

    # Edit: ArrowUp in the empty composer takes her last message.
    box = alice.find("#composer-input")
    alice.wait(lambda: alice.message_element("Lunch at noon?") and alice.message_element("Lunch at noon?").get_attribute("data-id"), "the echo")
    box.send_keys(Keys.ARROW_UP)
    alice.wait(lambda: box.get_attribute("value") == "Lunch at noon?", "the message in the composer to edit")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("Lunch at one?" + Keys.ENTER)
    bob.wait(lambda: [m for m in bob.messages() if m["text"] == "Lunch at one?" and m["edited"]], "the edit, live")
    assert "Lunch at noon?" not in bob.texts()

    # Bob reacts with 👍 from the picker; alice sees it.
    bob.message_action("Lunch at one?", "React")
    bob.wait(lambda: bob.finds("#picker button"), "the reaction picker")
    bob.pick_reaction("👍")
    alice.wait(lambda: [m for m in alice.messages() if m["text"] == "Lunch at one?" and m["reactions"] == ["👍1"]], "bob's 👍")
    # Alice adds 🎉 by the picker and also 👍 by clicking the chip: two of 👍.
    alice.message_action("Lunch at one?", "React")
    alice.pick_reaction("🎉")
    alice.wait(lambda: alice.message_element("Lunch at one?").find_elements(By.CSS_SELECTOR, ".reaction"), "the chips")
    alice.click_chip("Lunch at one?", "👍")
    bob.wait(lambda: [m for m in bob.messages() if m["text"] == "Lunch at one?" and sorted(m["reactions"]) == ["🎉1", "👍2"]], "👍2 🎉1")

    # Bob replies to it; alice sees the quote.
    bob.message_action("Lunch at one?", "Reply")
    bob.wait(lambda: bob.visible("composer-context"), "the reply bar")
    bob.send("One works")
    alice.wait(lambda: [m for m in alice.messages() if m["text"] == "One works" and m["quote"] and "Lunch at one?" in m["quote"]], "the reply with its quote")

    # Alice deletes a message of hers; it leaves bob's window.
    alice.send("typo mesage")
    bob.wait(lambda: "typo mesage" in bob.texts(), "the message to delete")
    alice.message_action("typo mesage", "Delete")
    alice.wait(lambda: _accept_confirm(alice), "the confirmation")
    bob.wait(lambda: "typo mesage" not in bob.texts(), "the deletion, live")
    alice.wait(lambda: "typo mesage" not in alice.texts(), "the deletion in alice's window")

    # A photo in reply, then both windows for the record: alice light, bob dark.
    picture = tmp_path / "lake.png"
    picture.write_bytes(png(240, 150, rgb=(38, 132, 120)))
    bob.message_action("Lunch at one?", "Reply")
    bob.find("#file-input").send_keys(str(picture))
    bob.wait(lambda: bob.finds("#attachments li.done"), "the photo uploaded")
    bob.send("Meet at the lake?")
    alice.wait(lambda: [m for m in alice.messages() if m["text"] == "Meet at the lake?" and m["images"] and m["images"][0]["w"] == 240],
               "the photo in reply")
    alice.message_action("Meet at the lake?", "React")
    alice.pick_reaction("❤️")
    bob.wait(lambda: [m for m in bob.messages() if m["text"] == "Meet at the lake?" and m["reactions"] == ["❤️1"]], "alice's ❤️")
    bob.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        for client in (alice, bob):
            ActionChains(client.d).move_to_element(client.find("#composer-input")).perform()
            client.find("#composer-input").click()
        time.sleep(0.3)
        assert bob.js("return getComputedStyle(document.body).backgroundColor") != alice.js("return getComputedStyle(document.body).backgroundColor")
        alice.screenshot(screenshot_dir / "conversation-alice.png")
        bob.screenshot(screenshot_dir / "conversation-bob.png")
    finally:
        bob.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def _accept_confirm(client: Client) -> bool:
    try:
        client.d.switch_to.alert.accept()
        return True
    except NoAlertPresentException:
        return False


def test_offline_window_resumes_with_everything_exactly_once(people, api):
    alice, bob = people
    chat_between(alice, bob)
    alice.send("before 1")
    alice.send("before 2")
    bob.wait(lambda: bob.texts() == ["hi", "before 1", "before 2"], "the messages before going offline")
    connects_before = bob.js("return window.__testSockets.length")

    # Bob's machine goes offline and his socket dies with it.
    bob.network(OFFLINE)
    bob.js("window.__testSockets.forEach(s => s.close())")
    bob.wait(lambda: bob.visible("conn-banner") and "reconnecting" in bob.find("#conn-banner").text.lower(),
             "the reconnecting banner")

    # Meanwhile alice sends, edits and reacts; bob writes something too (it waits).
    for i in range(1, 4):
        alice.send(f"while away {i}")
    alice.wait(lambda: alice.texts()[-3:] == ["while away 1", "while away 2", "while away 3"], "alice's sends")
    alice.message_action("before 2", "React")
    alice.pick_reaction("❤️")
    alice.wait(lambda: [m for m in alice.messages() if m["text"] == "before 2" and m["reactions"] == ["❤️1"]], "alice's ❤️")
    bob.send("sent while offline")
    bob.wait(lambda: [m for m in bob.messages() if m["pending"] and m["text"] == "sent while offline"], "bob's message waiting")
    time.sleep(1.5)   # a few reconnect attempts fail while offline
    assert "while away 1" not in bob.texts()
    assert bob.visible("conn-banner")

    # Back online: one resume with `since` brings everything, once each, in order.
    # Coming online reconnects at once (the browser's online event), not after the backoff.
    bob.network(ONLINE)
    bob.wait(lambda: not bob.visible("conn-banner"), "the banner to go", timeout=8)
    expected = ["hi", "before 1", "before 2", "while away 1", "while away 2", "while away 3", "sent while offline"]
    bob.wait(lambda: bob.texts() == expected, "every message exactly once")
    bob.wait(lambda: [m for m in bob.messages() if m["text"] == "before 2" and m["reactions"] == ["❤️1"]], "the reaction from while away")
    assert not [m for m in bob.messages() if m["pending"]]
    ids = [m["id"] for m in bob.messages()]
    assert len(ids) == len(set(ids)) == len(expected)
    alice.wait(lambda: alice.texts() == expected, "bob's offline message reached alice once")
    assert bob.js("return window.__testSockets.length") > connects_before
    # The server agrees: the history holds each message once.
    token = api.login(bob.username)
    chat_id = int(bob.js("return location.hash").rsplit("/", 1)[1])
    assert [m["content"] for m in api.messages(token, chat_id, "?limit=100")] == expected

    # And the live stream continues on the resumed socket.
    alice.send("after")
    bob.wait(lambda: bob.texts() == expected + ["after"], "a live message after the resume")
    alice.wait(lambda: alice.messages()[-1]["ticks"] == "✓✓", "bob's read receipt after the resume")


def test_history_pages_back_without_gaps_or_duplicates(people, api):
    alice, bob = people
    chat_between(alice, bob)
    token = api.login(alice.username)
    chat_id = int(alice.js("return location.hash").rsplit("/", 1)[1])
    for i in range(120):
        helpers.ok_json(api.post(f"/chats/{chat_id}/messages", token, json={"content": f"m{i:03d}"}))
    bob.wait(lambda: bob.texts()[-1:] == ["m119"], "the newest message, live")
    bob.d.refresh()
    bob.wait(lambda: bob.texts()[-1:] == ["m119"], "the newest page after a reload")
    assert len(bob.texts()) == 50
    for _ in range(10):
        if bob.find("#history-top").text == "This is the beginning of the chat.":
            break
        bob.js("document.getElementById('messages').scrollTop = 0")
        time.sleep(0.3)
    bob.wait(lambda: bob.find("#history-top").text == "This is the beginning of the chat.", "the start of the chat")
    assert bob.texts() == ["hi"] + [f"m{i:03d}" for i in range(120)]
    ids = [m["id"] for m in bob.messages()]
    assert ids == sorted(ids) and len(set(ids)) == 121


def test_groups_create_rename_add_and_remove(people, api):
    alice, bob = people
    carol = api.new_user("carol")
    # Alice makes a group with bob and carol from the dialog.
    alice.find("#btn-new-group").click()
    alice.find("#group-name").send_keys("Weekend trip")
    for name in (bob.username, carol.username):
        alice.find("#group-query").send_keys(name)
        alice.wait(lambda: next((b for b in alice.finds("#group-results button") if f"@{name}" in b.text), None), f"{name} found").click()
    alice.wait(lambda: len(alice.finds("#group-picked li")) == 2, "two people picked")
    alice.find("#btn-group-create").click()
    alice.wait(lambda: alice.find("#chat-name").text == "Weekend trip", "the new group to open")
    alice.wait(lambda: alice.find("#chat-sub").text == "3 members", "three members")
    alice.send("Who is in?")
    bob.wait(lambda: bob.chat_item("Weekend trip"), "the group in bob's list, live")
    bob.open_chat("Weekend trip")
    bob.wait(lambda: bob.texts() == ["Who is in?"], "the group's message")
    # ✓✓ only once everyone else has read it: bob has, carol not yet.
    time.sleep(0.5)
    assert alice.messages()[-1]["ticks"] == "✓"
    group_id = int(alice.js("return location.hash").rsplit("/", 1)[1])
    question = alice.messages()[-1]["id"]
    helpers.ok_json(api.post(f"/chats/{group_id}/read", carol.token, json={"message_id": question}))
    alice.wait(lambda: alice.messages()[-1]["ticks"] == "✓✓", "✓✓ after carol read it too")

    # Rename, live for bob.
    alice.find("#btn-members").click()
    alice.wait(lambda: len(alice.finds("#member-list li")) == 3, "the member list")
    rename = alice.find("#rename-input")
    rename.clear()
    rename.send_keys("Weekend trip 🏕" + Keys.ENTER)
    bob.wait(lambda: bob.find("#chat-name").text == "Weekend trip 🏕", "the new name in bob's header")
    assert bob.chat_item("Weekend trip 🏕") is not None

    # Remove bob: the group leaves his window; add him back: it returns.
    remove = alice.wait(lambda: alice.find(f"#member-list button[aria-label='Remove {bob.username}']"), "bob's remove button")
    remove.click()
    alice.wait(lambda: len(alice.finds("#member-list li")) == 2, "two members left")
    bob.wait(lambda: bob.chat_item("Weekend trip 🏕") is None, "the group gone from bob's list")
    bob.wait(lambda: not bob.visible("chat-main"), "bob's view of the group closed")
    alice.find("#member-query").send_keys(bob.username)
    alice.wait(lambda: next((b for b in alice.finds("#member-results button") if f"@{bob.username}" in b.text), None), "bob found").click()
    alice.wait(lambda: len(alice.finds("#member-list li")) == 3, "three members again")
    alice.find("#dlg-members button[value='cancel']").click()
    bob.open_chat("Weekend trip 🏕")
    bob.wait(lambda: bob.texts() == ["Who is in?"], "the history again")


def test_message_search(people, api):
    alice, bob = people
    chat_between(alice, bob)
    alice.send("the needle is in the haystack")
    bob.wait(lambda: "the needle is in the haystack" in bob.texts(), "the message to find")
    token = api.login(bob.username)
    probe = api.get("/search?q=needle", token)
    bob.find("#btn-search").click()
    bob.find("#search-query").send_keys("needle" + Keys.ENTER)
    if probe.status_code == 404:
        # This server has no /search yet: the client says so plainly.
        bob.wait(lambda: bob.find("#search-status").text == "Message search is not available on this server yet.",
                 "the not-available notice")
        assert bob.finds("#search-results li") == []
        return
    assert probe.status_code == 200, probe.text

    def open_result():
        """Clicks the result once it shows with its one marked word; the list may be drawn
        again meanwhile (then its old elements are stale and the next try finds the new)."""
        try:
            for result in bob.finds("#search-results button"):
                if "the needle is in the haystack" in result.text \
                        and [mark.text for mark in result.find_elements(By.CSS_SELECTOR, "mark")] == ["needle"]:
                    result.click()
                    return True
        except StaleElementReferenceException:
            pass
        return None
    bob.wait(open_result, "the search result, with needle marked")
    found = bob.wait(lambda: bob.finds("#message-list .msg.highlight"), "the found message highlighted")
    assert found[0].find_element(By.CSS_SELECTOR, ".text").text == "the needle is in the haystack"


def test_keyboard_alone_reaches_chats_sends_and_closes_dialogs(people):
    alice, bob = people
    chat_between(alice, bob)
    peer = bob.username
    alice.find("#btn-new-chat").send_keys(Keys.ENTER)
    alice.wait(lambda: alice.js("return document.getElementById('dlg-new-chat').open"), "the dialog, by Enter")
    query = alice.find("#new-chat-query")
    assert alice.js("return document.activeElement.id") == "new-chat-query"
    query.send_keys(alice.username)
    alice.wait(lambda: alice.finds("#new-chat-results button"), "myself in the results")
    query.send_keys(Keys.ARROW_DOWN)
    assert alice.js("return document.activeElement.closest('#new-chat-results') !== null")
    alice.d.switch_to.active_element.send_keys(Keys.ESCAPE)
    alice.wait(lambda: not alice.js("return document.getElementById('dlg-new-chat').open"), "Escape to close the dialog")
    # The chat list: focus an item, Enter opens it; the composer has the focus; Enter sends.
    alice.js("document.querySelector('.chat-item').focus()")
    alice.d.switch_to.active_element.send_keys(Keys.ENTER)
    alice.wait(lambda: alice.find("#chat-name").text == peer, "the chat opened by Enter")
    alice.wait(lambda: alice.js("return document.activeElement.id") == "composer-input", "the composer focused")
    alice.d.switch_to.active_element.send_keys("typed, never clicked", Keys.ENTER)
    bob.wait(lambda: "typed, never clicked" in bob.texts(), "the keyboard-sent message")
    # Shift+Enter is a new line, not a send.
    alice.d.switch_to.active_element.send_keys("two", Keys.SHIFT, Keys.ENTER, Keys.NULL, "lines", Keys.ENTER)
    bob.wait(lambda: "two\nlines" in bob.texts(), "a two-line message")


def test_phone_width_shows_one_pane_at_a_time(people):
    alice, bob = people
    chat_between(alice, bob)
    bob.d.set_window_size(390, 800)
    bob.find("#btn-back").click()
    bob.wait(lambda: bob.js("return document.querySelector('.sidebar').offsetParent !== null"), "the list")
    assert bob.js("return document.getElementById('chat-pane').offsetParent === null")
    bob.open_chat(alice.username)
    bob.wait(lambda: bob.js("return document.querySelector('.sidebar').offsetParent === null"), "the list to give way")
    assert bob.find("#btn-back").is_displayed()
    width = bob.js("return document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width}px)"
    alice.send("on the phone")
    bob.wait(lambda: "on the phone" in bob.texts(), "a live message at phone width")
    bob.find("#btn-back").click()
    bob.wait(lambda: bob.js("return document.querySelector('.sidebar').offsetParent !== null"), "back to the list")


def test_logout_and_password_login(people, api):
    alice, bob = people
    token = alice.token()
    assert token
    alice.find("#btn-logout").click()
    alice.wait(lambda: alice.visible("login-view"), "the login form after logging out")
    assert alice.token() is None
    alice.d.refresh()
    alice.wait(lambda: alice.visible("login-view"), "still logged out after a reload")

    # Passwords: only where the server has them (PUT /users/me/password), set from the dialog.
    user = api.new_user("pw")
    probe = api.request("PUT", "/users/me/password", user.token, json={"password": "short"})
    alice.login(user.username)
    alice.find("#btn-profile").click()
    alice.find("#pw-new").send_keys("correct horse 1")
    alice.find("#btn-password").click()
    if probe.status_code in (404, 405):
        alice.wait(lambda: alice.find("#profile-status").text == "Passwords are not available on this server yet.",
                   "the not-available notice")
        pytest.skip("this server has no PUT /users/me/password yet")
    alice.wait(lambda: "Password set" in alice.find("#profile-status").text or "Password set" in alice.find("#toast").text,
               "the password set")
    alice.js("localStorage.clear()")
    alice.d.get(alice.base_url + "/")
    alice.find("#login-username").send_keys(user.username + Keys.ENTER)
    alice.wait(lambda: alice.visible("login-password"), "the password field")
    alice.find("#login-password").send_keys("wrong password" + Keys.ENTER)
    alice.wait(lambda: "Wrong username or password" in alice.find("#login-error").text, "the wrong-password message")
    field = alice.find("#login-password")
    field.clear()
    field.send_keys("correct horse 1" + Keys.ENTER)
    alice.wait(lambda: alice.visible("app-view") and alice.find("#me-name").text == user.username, "logged in with the password")


def test_a_revoked_session_ends_in_the_window(people, api):
    alice, bob = people
    chat_between(alice, bob)
    other_device = api.login(alice.username)
    answer = api.post("/logout/all", other_device, json={})
    if answer.status_code in (404, 405):
        pytest.skip("this server has no POST /logout/all yet")
    assert answer.status_code in (200, 204), answer.text
    # The server closes alice's socket (or refuses her next request): she is asked to sign in.
    alice.wait(lambda: alice.visible("login-view"), "the login form after the revocation", timeout=10)
    assert "session has ended" in alice.find("#login-error").text
    assert alice.token() is None


def test_chat_list_keeps_newest_activity_first_with_unread_counts(people, api):
    alice, bob = people
    chat_between(alice, bob)
    carol = api.new_user("carol")
    alice_id = helpers.decode_token(alice.token())["user_id"]
    carol_chat = api.initiate(carol.token, target_id=alice_id)["chat_id"]
    alice.js("location.hash = '#/'")
    alice.wait(lambda: not alice.visible("chat-main"), "no chat open")

    def names():
        return [item.find_element(By.CSS_SELECTOR, ".ci-name").text for item in alice.finds(".chat-item")]

    def badge(title):
        item = alice.chat_item(title)
        badges = item.find_elements(By.CSS_SELECTOR, ".badge") if item else []
        return badges[0].text if badges else None

    for i in range(2):
        helpers.ok_json(api.post(f"/chats/{carol_chat}/messages", carol.token, json={"content": f"carol {i}"}))
    alice.wait(lambda: names()[:2] == [carol.username, bob.username], "carol's chat on top")
    alice.wait(lambda: badge(carol.username) == "2", "two unread from carol")
    bob.send("bob again")
    alice.wait(lambda: names()[:2] == [bob.username, carol.username], "bob's chat back on top")
    alice.wait(lambda: badge(bob.username) == "1", "one unread from bob")
    assert badge(carol.username) == "2"
    assert alice.js("return document.title") == "(3) Messenger"
    alice.open_chat(carol.username)
    alice.wait(lambda: badge(carol.username) is None, "carol's badge cleared by reading")
    assert badge(bob.username) == "1"


def test_offline_past_the_retention_resyncs_from_rest(people, stack):
    """Last in the file: it prunes every event so far (fresh logins are unaffected; only a
    resume from before the cut gets RESYNC)."""
    from stream_helpers import backdate_and_wait_pruned, head_seq

    alice, bob = people
    chat_between(alice, bob)
    alice.send("kept 1")
    bob.wait(lambda: bob.texts() == ["hi", "kept 1"], "the messages before going offline")
    bob.network(OFFLINE)
    bob.js("window.__testSockets.forEach(s => s.close())")
    bob.wait(lambda: bob.visible("conn-banner"), "the reconnecting banner")
    alice.send("missed 1")
    alice.send("missed 2")
    alice.message_action("kept 1", "React")
    alice.pick_reaction("🎉")
    alice.wait(lambda: [m for m in alice.messages() if m["text"] == "kept 1" and m["reactions"] == ["🎉1"]], "alice's 🎉")
    # Everything bob missed is older than the retention now: his `since` gets RESYNC.
    backdate_and_wait_pruned(stack, head_seq(stack))
    access_log = stack.log_dir / "nginx_access.log"
    log_start = access_log.stat().st_size
    bob.network(ONLINE)
    bob.wait(lambda: not bob.visible("conn-banner"), "the banner to go", timeout=8)
    bob.wait(lambda: bob.texts() == ["hi", "kept 1", "missed 1", "missed 2"], "the state refetched over REST, once each")
    bob.wait(lambda: [m for m in bob.messages() if m["text"] == "kept 1" and m["reactions"] == ["🎉1"]], "the reaction, refetched")
    assert bob.chat_item(alice.username).find_element(By.CSS_SELECTOR, ".ci-preview").text == "missed 2"
    with open(access_log, "rb") as f:
        f.seek(log_start)
        after = f.read().decode(errors="replace")
    assert '"GET /chats HTTP' in after and "/messages HTTP" in after, "no refetch over REST after the RESYNC"
    # The stream goes on live after the RESYNC.
    alice.send("live again")
    bob.wait(lambda: bob.texts()[-1:] == ["live again"], "a live message after the RESYNC")
    assert bob.texts().count("live again") == 1
