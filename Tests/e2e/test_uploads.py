"""Uploads and attachments end to end: POST /upload streamed to $DATA_DIR/uploads, served by
nginx safely, the size limit (with FCGIApp's memory sampled during a 50 MiB upload), refused
and aborted uploads leaving nothing behind, attachments over WebSocket and REST resolved to
the sender's own uploads only, and profile pictures."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

import database
from helpers import (
    FILE_KEYS,
    TIMEOUT,
    assert_error,
    assert_keys,
    assert_message,
    assert_timestamp,
    assert_user,
    is_int,
    ok_json,
    wait_for,
)
from ws_helpers import Client, run

# With ?v=2 the receipt is the whole file object; without, exactly seed 000's four fields.
UPLOAD_KEYS = FILE_KEYS
SEED_UPLOAD_KEYS = {"url", "filename", "mime_type", "size_bytes"}
DEFAULT_LIMIT = 50 * 1024 * 1024
UUID_NAME = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RSS_GROWTH_LIMIT = 20 * 1024 * 1024


# --- helpers ---------------------------------------------------------------------------------

def upload(api, token: str, data: bytes, filename: str = "file.bin",
           content_type: str | None = "application/octet-stream") -> dict:
    body = ok_json(api.post("/upload?v=2", token, files={"file": (filename, data, content_type)}))
    assert_keys(body, UPLOAD_KEYS)
    assert is_int(body["id"]) and body["id"] > 0
    assert body["type"] in ("picture", "video", "audio", "file")
    assert body["size_bytes"] == len(data)
    assert re.fullmatch(rf"/uploads/{UUID_NAME}\.[a-z0-9]{{1,10}}", body["url"]), body["url"]
    return body


def stored_path(stack, url: str) -> Path:
    return stack.uploads_dir / url.removeprefix("/uploads/")


def fetch(stack, url: str) -> requests.Response:
    return requests.get(stack.base_url + url, timeout=TIMEOUT, allow_redirects=False)


def uploads_entries(stack) -> set[str]:
    """Everything in the uploads directory, hidden temporary files included."""
    return set(os.listdir(stack.uploads_dir))


def db_count(stack, sql: str) -> int:
    return database.rows(stack, sql)[0][0]


def files_rows(stack) -> int:
    return db_count(stack, "SELECT count(*) FROM files")


def file_object(receipt: dict) -> dict:
    """What a message carries for an upload: the protocol-2 receipt."""
    return {key: receipt[key] for key in UPLOAD_KEYS}


def assert_file_object(obj: dict, receipt: dict) -> None:
    assert_keys(obj, FILE_KEYS)
    assert_timestamp(obj["created_at"])
    assert {key: obj[key] for key in UPLOAD_KEYS} == receipt


class StreamedMultipart:
    """A multipart body with one `file` part of `size` random bytes, generated as it is sent
    (never held whole by the test). Has a length, so requests sends a Content-Length."""

    def __init__(self, size: int, filename: str = "big.bin", content_type: str = "application/octet-stream",
                 chunk: int = 1 << 20):
        self.boundary = "e2e" + uuid.uuid4().hex
        self.head = (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
                     f"Content-Type: {content_type}\r\n\r\n").encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = size
        self.chunk = chunk
        self.sha256 = hashlib.sha256()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self):
        yield self.head
        remaining = self.size
        while remaining:
            data = os.urandom(min(self.chunk, remaining))
            self.sha256.update(data)
            remaining -= len(data)
            yield data
        yield self.tail


class RssSampler(threading.Thread):
    """Samples a process's VmRSS (bytes) every `interval` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[int] = []
        self.halt = threading.Event()

    def read(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def run(self):
        while not self.halt.is_set():
            value = self.read()
            if value is not None:
                self.samples.append(value)
            self.halt.wait(self.interval)

    def __enter__(self):
        self.baseline = self.read()
        assert self.baseline, f"cannot read VmRSS of pid {self.pid}"
        self.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        self.join(5)

    @property
    def growth(self) -> int:
        return max(self.samples + [self.baseline]) - self.baseline


def fcgi_pid(stack) -> int:
    pid = stack.child_pids().get("FCGIApp")
    assert pid, stack.child_pids()
    return pid


def raw_post(stack, path: str, token: str, body: bytes, content_type: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.post(stack.base_url + path, data=body, headers=headers, timeout=TIMEOUT)


PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)


# --- upload and serve --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "filename,mime,kind,inline",
    [
        ("photo.png", "image/png", "picture", True),
        ("clip.mp4", "video/mp4", "video", True),
        ("song.mp3", "audio/mpeg", "audio", True),
        ("notes.txt", "text/plain", "file", False),
        ("report.pdf", "application/pdf", "file", False),
    ],
)
def test_upload_then_fetch_identical_bytes_with_safe_headers(api, stack, new_user, filename, mime, kind, inline):
    user = new_user("up")
    data = os.urandom(3000) + b"\x00\xff" + os.urandom(70_000)
    before_rows = files_rows(stack)
    body = upload(api, user.token, data, filename, mime)
    assert (body["filename"], body["mime_type"], body["type"]) == (filename, mime, kind)
    assert body["url"].endswith("." + filename.rsplit(".", 1)[1])
    assert files_rows(stack) == before_rows + 1
    # Stored under its uuid name in $DATA_DIR/uploads, byte for byte.
    assert stored_path(stack, body["url"]).read_bytes() == data

    response = fetch(stack, body["url"])
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Type"] == mime
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Content-Security-Policy") == "sandbox; default-src 'none'"
    max_age = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
    assert max_age and int(max_age.group(1)) >= 86400 * 30, response.headers.get("Cache-Control")
    if inline:
        assert "attachment" not in response.headers.get("Content-Disposition", "")
    else:
        assert response.headers.get("Content-Disposition", "").startswith("attachment")


@pytest.mark.parametrize(
    "filename,mime,data",
    [
        ("page.html", "text/html", b"<html><body><script>document.title='pwned'</script></body></html>"),
        ("vector.svg", "image/svg+xml",
         b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'),
    ],
)
def test_html_and_svg_uploads_are_served_inert(api, stack, new_user, filename, mime, data):
    user = new_user("up")
    body = upload(api, user.token, data, filename, mime)
    assert body["mime_type"] == mime
    response = fetch(stack, body["url"])
    assert response.status_code == 200
    assert response.content == data
    # Never rendered as our origin: a download, sandboxed, no sniffing.
    assert response.headers.get("Content-Disposition", "").startswith("attachment"), response.headers
    assert response.headers.get("Content-Security-Policy") == "sandbox; default-src 'none'"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize(
    "filename,ext",
    [
        ("../../x", "bin"),
        ("../../../../../../tmp/evil.sh", "sh"),
        ("..\\..\\win.png", "png"),
        ("/etc/passwd", "bin"),
        (".htaccess", "bin"),
        ("x.php.", "bin"),
        ("Name With Spaces.JPG", "jpg"),
        ("archive.tar.verylongextension", "bin"),
        ("a.p%2fng", "bin"),
        ("ünïcødé.txt", "txt"),
    ],
)
def test_client_filename_is_metadata_never_a_path(api, stack, new_user, filename, ext):
    user = new_user("up")
    entries = uploads_entries(stack)
    outside = sorted(p.name for p in stack.data_dir.iterdir())
    body = upload(api, user.token, b"payload " + filename.encode(), filename, "application/octet-stream")
    assert re.fullmatch(rf"/uploads/{UUID_NAME}\.{ext}", body["url"]), body["url"]
    # Kept as metadata: as sent, or reduced to its last segment; a backslash inside the quoted
    # filename parameter may be read as a quoted-string escape (RFC 7230) and dropped.
    accepted = {filename, os.path.basename(filename.replace("\\", "/")), filename.replace("\\", "")}
    assert body["filename"] in accepted, body["filename"]
    # Exactly one new entry, inside uploads/, under the server's name; nothing outside.
    assert uploads_entries(stack) - entries == {body["url"].removeprefix("/uploads/")}
    assert sorted(p.name for p in stack.data_dir.iterdir()) == outside
    assert not Path("/tmp/evil.sh").exists() or Path("/tmp/evil.sh").read_bytes() != b"payload " + filename.encode()
    assert fetch(stack, body["url"]).content == b"payload " + filename.encode()


def test_mime_type_is_taken_only_when_well_formed(api, new_user):
    user = new_user("up")
    normalised = upload(api, user.token, PNG, "a.png", "IMAGE/PNG; charset=binary")
    assert (normalised["mime_type"], normalised["type"]) == ("image/png", "picture")
    for claimed in ("not a mime type", "image/", "/png", "image/png/extra", "a b/c d", "text/<html>"):
        body = upload(api, user.token, b"data", "b.bin", claimed)
        assert body["mime_type"] in (None, "application/octet-stream"), (claimed, body)
        assert body["type"] == "file", (claimed, body)
    missing = upload(api, user.token, b"data", "c.bin", None)
    assert missing["mime_type"] in (None, "application/octet-stream"), missing
    assert missing["type"] == "file"


def test_upload_needs_a_valid_token(api, stack):
    before = (uploads_entries(stack), files_rows(stack))
    assert_error(requests.post(stack.base_url + "/upload", files={"file": ("a.txt", b"x", "text/plain")},
                               timeout=TIMEOUT), 401)
    assert_error(api.post("/upload", "not-a-token", files={"file": ("a.txt", b"x", "text/plain")}), 401)
    assert (uploads_entries(stack), files_rows(stack)) == before


def test_seed_receipt_is_exactly_seed_000s_and_attaches_by_url(api, stack, new_user):
    """A strict seed-000 client decodes {url, filename, mime_type, size_bytes} and attaches the
    object it got back, which the server resolves to its own record."""
    user = new_user("seedup")
    chat_id = api.initiate(user.token, target_username=user.username)["chat_id"]
    receipt = ok_json(api.post("/upload", user.token, files={"file": ("cat.png", b"\x89PNG-ish", "image/png")}))
    assert_keys(receipt, SEED_UPLOAD_KEYS)
    assert receipt["filename"] == "cat.png" and receipt["mime_type"] == "image/png" and receipt["size_bytes"] == 8
    message = ok_json(api.post(f"/chats/{chat_id}/messages", user.token, json={"content": "look", "files": [receipt]}))
    assert len(message["files"]) == 1
    assert_keys(message["files"][0], FILE_KEYS)
    assert message["files"][0]["url"] == receipt["url"] and message["files"][0]["type"] == "picture"
    assert_error(api.post("/upload?v=7", user.token, files={"file": ("a.txt", b"x", "text/plain")}), 400)


# --- limits and failures -----------------------------------------------------------------------

def test_50_mib_upload_streams_without_growing_fcgiapp_memory(api, stack, new_user):
    user = new_user("big")
    body = StreamedMultipart(DEFAULT_LIMIT)
    with RssSampler(fcgi_pid(stack)) as rss:
        response = requests.post(stack.base_url + "/upload?v=2", data=body,
                                 headers={**user.headers, "Content-Type": body.content_type}, timeout=120)
    receipt = ok_json(response)
    assert_keys(receipt, UPLOAD_KEYS)
    assert receipt["size_bytes"] == DEFAULT_LIMIT
    assert len(rss.samples) >= 3, f"too few RSS samples: {rss.samples}"
    assert rss.growth < RSS_GROWTH_LIMIT, (
        f"FCGIApp RSS grew by {rss.growth / 2**20:.1f} MiB during a 50 MiB upload "
        f"(baseline {rss.baseline / 2**20:.1f} MiB, peak {max(rss.samples) / 2**20:.1f} MiB)")
    path = stored_path(stack, receipt["url"])
    assert path.stat().st_size == DEFAULT_LIMIT
    digest = hashlib.sha256()
    with requests.get(stack.base_url + receipt["url"], stream=True, timeout=60) as served:
        assert served.status_code == 200
        for chunk in served.iter_content(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == body.sha256.hexdigest()
    path.unlink()  # 50 MiB less in the temp DATA_DIR


def test_over_the_limit_is_413_and_leaves_nothing(api, stack, new_user):
    """One byte over UPLOAD_MAX_BYTES (the default 50 MiB) passes nginx's client_max_body_size
    (which leaves room for the multipart framing) and is refused by the app itself."""
    user = new_user("big")
    entries, rows = uploads_entries(stack), files_rows(stack)
    body = StreamedMultipart(DEFAULT_LIMIT + 1)
    with RssSampler(fcgi_pid(stack)) as rss:
        response = requests.post(stack.base_url + "/upload?v=2", data=body,
                                 headers={**user.headers, "Content-Type": body.content_type}, timeout=120)
    assert_error(response, 413)
    assert rss.growth < RSS_GROWTH_LIMIT, f"FCGIApp RSS grew by {rss.growth / 2**20:.1f} MiB"
    assert wait_for(lambda: uploads_entries(stack) == entries, timeout=5), uploads_entries(stack) - entries
    assert files_rows(stack) == rows


def test_over_the_limit_by_content_length_is_413_and_leaves_nothing(api, stack, new_user):
    """A declared body far over the limit is refused before it is read (nginx or the app)."""
    user = new_user("big")
    entries, rows = uploads_entries(stack), files_rows(stack)
    request = (
        b"POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Authorization: Bearer " + user.token.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=zz\r\n"
        b"Content-Length: " + str(DEFAULT_LIMIT + 10 * 2**20).encode() + b"\r\n\r\n"
        b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n" + b"x" * 100_000
    )
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = b""
        try:
            # Until the whole answer is in: nginx may keep the connection to drain the body.
            while chunk := sock.recv(65536):
                reply += chunk
                head, sep, rest = reply.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if sep and length and len(rest) >= int(length.group(1)):
                    break
        except (socket.timeout, ConnectionResetError):
            pass
    assert reply.startswith(b"HTTP/1.1 413"), reply[:300]
    assert b'"error"' in reply
    assert wait_for(lambda: uploads_entries(stack) == entries, timeout=5), uploads_entries(stack) - entries
    assert files_rows(stack) == rows


def multipart(boundary: str, *parts: tuple[str, str | None, bytes], close: bool = True) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/plain\r\n\r\n".encode()
        out += data + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return out


BAD_BODIES = {
    "missing file field": (multipart("bnd", ("other", "a.txt", b"hello")), "multipart/form-data; boundary=bnd"),
    "only a plain field": (multipart("bnd", ("comment", None, b"just text")), "multipart/form-data; boundary=bnd"),
    "no parts at all": (b"--bnd--\r\n", "multipart/form-data; boundary=bnd"),
    "json, not multipart": (b'{"file": "aGVsbG8="}', "application/json"),
    "no content type": (multipart("bnd", ("file", "a.txt", b"hello")), None),
    "multipart without boundary": (multipart("bnd", ("file", "a.txt", b"hello")), "multipart/form-data"),
    "wrong boundary": (multipart("bnd", ("file", "a.txt", b"hello")), "multipart/form-data; boundary=other"),
    "truncated before the closing boundary": (multipart("bnd", ("file", "a.txt", b"hello" * 1000), close=False)[:-2],
                                              "multipart/form-data; boundary=bnd"),
    "truncated in the part headers": (b"--bnd\r\nContent-Disposition: form-data; name=\"file\"; filena",
                                      "multipart/form-data; boundary=bnd"),
    "empty body": (b"", "multipart/form-data; boundary=bnd"),
    "garbage": (os.urandom(5000), "multipart/form-data; boundary=bnd"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_upload_bodies_are_400_and_leave_nothing(api, stack, new_user, case):
    user = new_user("up")
    body, content_type = BAD_BODIES[case]
    entries, rows = uploads_entries(stack), files_rows(stack)
    assert_error(raw_post(stack, "/upload", user.token, body, content_type), 400)
    assert wait_for(lambda: uploads_entries(stack) == entries, timeout=5), uploads_entries(stack) - entries
    assert files_rows(stack) == rows


@pytest.mark.parametrize("content_type", [None, "application/json", "multipart/form-data", "text/plain"])
def test_upload_refused_before_its_body_is_read_still_gets_its_400(stack, new_user, content_type):
    """A body the app refuses from its headers alone (no multipart boundary) must still get
    its 400 — every time, promptly — however much body is still on its way."""
    user = new_user("up")
    body = multipart("bnd", ("file", "a.txt", b"x" * 20_000))
    headers = dict(user.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    for attempt in range(15):
        try:
            response = requests.post(stack.base_url + "/upload?v=2", data=body, headers=headers, timeout=3)
        except requests.RequestException as error:
            raise AssertionError(f"attempt {attempt}: no complete answer: {error!r:.300}") from None
        assert response.status_code == 400, f"attempt {attempt}: {response.status_code} {response.text[:200]!r}"
        assert_error(response, 400)


def test_aborted_upload_leaves_nothing(api, stack, new_user):
    """The client promises 8 MiB, sends 2 MiB and disconnects: no file, no .part, no row."""
    user = new_user("up")
    entries, rows = uploads_entries(stack), files_rows(stack)
    head = b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n"
    request = (
        b"POST /upload HTTP/1.1\r\nHost: localhost\r\n"
        b"Authorization: Bearer " + user.token.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=zz\r\n"
        b"Content-Length: " + str(8 * 2**20).encode() + b"\r\n\r\n" + head
    )
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
    try:
        sock.sendall(request)
        for _ in range(32):
            sock.sendall(os.urandom(65536))
        # The partial upload is being written to a hidden temporary file meanwhile.
        seen_part = wait_for(lambda: any(name.startswith(".") for name in uploads_entries(stack) - entries), timeout=5)
        assert seen_part, "the partial upload never reached the uploads directory"
    finally:
        sock.close()
    assert wait_for(lambda: uploads_entries(stack) == entries, timeout=10), (
        f"left behind after an aborted upload: {uploads_entries(stack) - entries}")
    assert files_rows(stack) == rows
    # The app is fine afterwards.
    upload(api, user.token, b"after abort", "ok.txt", "text/plain")


def test_concurrent_uploads(api, stack, new_user):
    users = [new_user("upc") for _ in range(4)]
    payloads = [os.urandom(100_000 + i * 150_000) for i in range(12)]
    rows = files_rows(stack)

    def one(index: int) -> dict:
        user = users[index % len(users)]
        response = requests.post(stack.base_url + "/upload?v=2", headers=user.headers, timeout=60,
                                 files={"file": (f"c{index}.dat", payloads[index], "application/octet-stream")})
        return ok_json(response)

    with ThreadPoolExecutor(max_workers=12) as pool:
        receipts = list(pool.map(one, range(len(payloads))))
    assert len({r["id"] for r in receipts}) == len(receipts)
    assert len({r["url"] for r in receipts}) == len(receipts)
    for index, receipt in enumerate(receipts):
        assert_keys(receipt, UPLOAD_KEYS)
        assert receipt["filename"] == f"c{index}.dat"
        assert receipt["size_bytes"] == len(payloads[index])
        assert fetch(stack, receipt["url"]).content == payloads[index]
    assert files_rows(stack) == rows + len(payloads)
    assert not [n for n in uploads_entries(stack) if n.startswith(".")], "temporary files left behind"


def test_stalled_uploads_cannot_hold_the_api(api, stack, new_user):
    """Uploads have their own FastCGI socket and worker threads (8 by default): more clients
    than that, each stalled halfway through an upload body, leave the API answering at once."""
    user = new_user("stall")
    head = b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.bin\"\r\n\r\n"
    request = (
        b"POST /upload HTTP/1.1\r\nHost: localhost\r\n"
        b"Authorization: Bearer " + user.token.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=zz\r\n"
        b"Content-Length: " + str(2**21).encode() + b"\r\n\r\n" + head + os.urandom(2**17)
    )
    stalled = []
    try:
        for _ in range(12):
            sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
            sock.sendall(request)
            stalled.append(sock)
        # Every upload worker is now waiting for the rest of a body (the first partial files
        # appear in uploads/); the API's workers are not among them.
        assert wait_for(lambda: any(name.startswith(".") for name in uploads_entries(stack)), timeout=5)
        for _ in range(20):
            response = requests.get(stack.base_url + "/chats", headers=user.headers, timeout=2)
            assert response.status_code == 200, response.text
    finally:
        for sock in stalled:
            sock.close()
    # The stalled uploads leave nothing behind, and uploads work again.
    assert wait_for(lambda: not [n for n in uploads_entries(stack) if n.startswith(".")], timeout=10)
    upload(api, user.token, b"after the stall", "ok.txt", "text/plain")


# --- attachments -------------------------------------------------------------------------------

def test_attach_own_upload_over_websocket(api, stack, pair):
    alice, bob, chat_id = pair
    picture = upload(api, alice.token, PNG, "cat.png", "image/png")
    document = upload(api, alice.token, b"%PDF-1.4 fake", "doc.pdf", "application/pdf")

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            await a.send({"chat_id": chat_id, "content": "two files", "files": [picture, {"url": document["url"]}],
                          "nonce": "att-1"})
            echo = await a.recv_message()
            assert await a.recv_ack("att-1") == echo["id"]
            assert await b.recv_message() == echo
            # Files only, no content.
            await a.send({"chat_id": chat_id, "files": [{"url": picture["url"]}]})
            only = await a.recv_message()
            assert await b.recv_message() == only
            return echo, only

    echo, only = run(scenario())
    assert echo["content"] == "two files"
    assert len(echo["files"]) == 2
    assert_file_object(echo["files"][0], picture)
    assert_file_object(echo["files"][1], document)
    assert only["content"] is None
    assert len(only["files"]) == 1
    assert_file_object(only["files"][0], picture)
    assert api.messages(bob.token, chat_id) == [echo, only]


def test_attach_own_upload_over_rest_is_pushed_live(api, stack, pair):
    alice, bob, chat_id = pair
    song = upload(api, alice.token, b"ID3" + os.urandom(5000), "song.mp3", "audio/mpeg")

    async def scenario():
        async with await Client.open(stack, bob) as b:
            posted = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token,
                                      json={"content": "listen", "files": [song]}))
            assert_message(posted)
            assert await b.recv_message() == posted
            return posted

    posted = run(scenario())
    assert len(posted["files"]) == 1
    assert_file_object(posted["files"][0], song)
    assert api.messages(alice.token, chat_id) == [posted]
    assert fetch(stack, posted["files"][0]["url"]).status_code == 200


def test_client_claims_about_a_file_are_ignored(api, stack, pair):
    alice, bob, chat_id = pair
    text = upload(api, alice.token, b"plain text", "notes.txt", "text/plain")
    claimed = {"url": text["url"], "size_bytes": 1, "mime_type": "image/png", "type": "picture",
               "filename": "innocent.png", "created_at": "1999-01-01T00:00:00Z"}
    posted = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token,
                              json={"content": "claims", "files": [claimed]}))

    async def scenario():
        async with await Client.open(stack, alice) as a:
            await a.send({"chat_id": chat_id, "content": "claims over ws", "files": [claimed]})
            return await a.recv_message()

    echo = run(scenario())
    for message in (posted, echo):
        assert len(message["files"]) == 1
        assert_file_object(message["files"][0], text)


def test_foreign_made_up_and_traversal_files_are_refused(api, stack, pair, new_user):
    alice, bob, chat_id = pair
    mine = upload(api, alice.token, PNG, "mine.png", "image/png")
    theirs = upload(api, bob.token, PNG, "theirs.png", "image/png")
    stranger = upload(api, new_user("ups").token, b"x", "stranger.txt", "text/plain")
    name = mine["url"].removeprefix("/uploads/")
    bad_files = [
        [{"url": theirs["url"]}],
        [theirs],
        [{"url": stranger["url"]}],
        [{"id": theirs["id"]}],
        [{"id": 987654321}],
        [{"url": f"/uploads/{uuid.uuid4()}.png"}],
        [{"url": "/uploads/../x"}],
        [{"url": "/uploads/../messenger.db"}],
        [{"url": "/uploads/../../etc/passwd"}],
        [{"url": f"/uploads/x/../{name}"}],
        [{"url": "/uploads/.upload-1.part"}],
        [{"url": "http://evil/x"}],
        [{"url": f"http://evil.example{mine['url']}"}],
        [{"url": f"//evil.example{mine['url']}"}],
        [{"url": mine["url"] + "?x=1"}],
        [{"url": ""}],
        [{}],
        ["not an object"],
        [mine, {"url": theirs["url"]}],  # one bad file refuses the whole message
    ]
    before = files_rows(stack), db_count(stack, "SELECT count(*) FROM message_files")

    for files in bad_files:
        response = api.post(f"/chats/{chat_id}/messages", alice.token, json={"content": "x", "files": files})
        assert_error(response, 400)

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            for index, files in enumerate(bad_files):
                await a.send({"chat_id": chat_id, "content": "x", "files": files, "nonce": f"bad-{index}"})
                await a.recv_error(nonce=f"bad-{index}")
            await b.expect_silence(0.3)
            # The socket is fine and own uploads still attach.
            await a.send({"chat_id": chat_id, "content": "good", "files": [mine]})
            good = await a.recv_message()
            assert await b.recv_message() == good
            return good

    good = run(scenario())
    assert api.messages(alice.token, chat_id) == [good]
    assert_file_object(good["files"][0], mine)
    assert (files_rows(stack), db_count(stack, "SELECT count(*) FROM message_files")) == (before[0], before[1] + 1)


def test_at_most_ten_files(api, stack, pair):
    alice, _, chat_id = pair
    receipts = [upload(api, alice.token, f"file {i}".encode(), f"f{i}.txt", "text/plain") for i in range(11)]
    assert_error(api.post(f"/chats/{chat_id}/messages", alice.token, json={"content": "11", "files": receipts}), 400)

    async def scenario():
        async with await Client.open(stack, alice) as a:
            await a.send({"chat_id": chat_id, "content": "11", "files": receipts, "nonce": "eleven"})
            await a.recv_error(nonce="eleven")

    run(scenario())
    assert api.messages(alice.token, chat_id) == []
    ten = ok_json(api.post(f"/chats/{chat_id}/messages", alice.token, json={"content": "10", "files": receipts[:10]}))
    assert [f["id"] for f in ten["files"]] == [r["id"] for r in receipts[:10]]  # in the order given
    for obj, receipt in zip(ten["files"], receipts):
        assert_file_object(obj, receipt)
    assert api.messages(alice.token, chat_id) == [ten]


# --- profile pictures --------------------------------------------------------------------------

def test_profile_picture_must_be_own_picture_upload(api, stack, new_user):
    me = new_user("upp")
    other = new_user("upq")
    picture = upload(api, me.token, PNG, "me.png", "image/png")
    text = upload(api, me.token, b"not a picture", "me.txt", "text/plain")
    foreign = upload(api, other.token, PNG, "other.png", "image/png")

    for image_id in (foreign["id"], text["id"], 987654321, "1", -1):
        assert_error(api.patch("/users/me", me.token, json={"image_id": image_id}), 400)
    assert ok_json(api.get(f"/users/{me.id}"))["image_id"] is None

    updated = ok_json(api.patch("/users/me", me.token, json={"image_id": picture["id"]}))
    assert_user(updated)
    assert (updated["id"], updated["image_id"]) == (me.id, picture["id"])
    for path in (f"/users/{me.id}", f"/users/{me.username}"):
        shown = ok_json(api.get(path, other.token))
        assert_user(shown)
        assert shown == updated
    # A refused change leaves the picture as it was.
    assert_error(api.patch("/users/me", me.token, json={"image_id": foreign["id"]}), 400)
    assert ok_json(api.get(f"/users/{me.id}"))["image_id"] == picture["id"]
