"""nginx and scripts/run themselves: static /uploads/ rules, JSON errors from nginx, paths kept
inside DATA_DIR, side-by-side instances, restarts of dead children, clean SIGTERM."""

import os
import signal
import stat
import uuid

import pytest
import requests

import conftest
from helpers import TIMEOUT, assert_error, ok_json, pid_alive, wait_for


def put_upload(stack, name: str, data: bytes) -> str:
    path = stack.uploads_dir / name
    path.write_bytes(data)
    os.chmod(path, 0o644)
    return f"/uploads/{name}"


def get(stack, path, **kwargs):
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.get(stack.base_url + path, allow_redirects=False, **kwargs)


UPLOAD_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


@pytest.mark.parametrize(
    "ext,content_type,inline",
    [
        ("png", "image/png", True),
        ("jpg", "image/jpeg", True),
        ("mp3", "audio/mpeg", True),
        ("mp4", "video/mp4", True),
        ("svg", "image/svg+xml", False),
        ("html", "text/html", False),
        ("txt", "text/plain", False),
        ("pdf", "application/pdf", False),
        ("bin", "application/octet-stream", False),
    ],
)
def test_uploads_are_served_with_safe_headers(stack, ext, content_type, inline):
    data = os.urandom(1000) if ext not in ("svg", "html") else b"<svg onload=alert(1)><script>alert(1)</script>"
    url = put_upload(stack, f"{uuid.uuid4()}.{ext}", data)
    response = get(stack, url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Type"] == content_type
    for name, value in UPLOAD_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    if inline:
        assert "Content-Disposition" not in response.headers, response.headers
    else:
        assert response.headers.get("Content-Disposition") == "attachment", response.headers


def test_upload_without_extension_is_a_download(stack):
    url = put_upload(stack, str(uuid.uuid4()), b"plain")
    response = get(stack, url)
    assert response.status_code == 200
    assert response.headers.get("Content-Disposition") == "attachment"


def test_hidden_uploads_are_never_served(stack):
    # In-progress uploads are hidden files.
    name = f".upload-{uuid.uuid4()}.part"
    put_upload(stack, name, b"half an upload")
    try:
        for path in (f"/uploads/{name}", f"/uploads/%2E{name[1:]}", f"/uploads/x/../{name}"):
            response = get(stack, path)
            assert response.status_code in (403, 404), (path, response.status_code)
            assert b"half an upload" not in response.content
    finally:
        # Other tests check that no temporary upload is ever left behind.
        (stack.uploads_dir / name).unlink()


def test_uploads_directory_is_not_listed(stack):
    put_upload(stack, f"{uuid.uuid4()}.txt", b"x")
    for path in ("/uploads/", "/uploads"):
        response = get(stack, path)
        assert response.status_code in (301, 401, 403, 404), (path, response.status_code)
        assert b".txt" not in response.content


def test_nothing_outside_uploads_is_reachable(stack):
    secret = (stack.data_dir / "jwt_secret").read_bytes().strip()
    outside = stack.data_dir / "outside.txt"
    outside.write_bytes(b"outside-marker")
    os.chmod(outside, 0o644)
    link = stack.uploads_dir / f"{uuid.uuid4()}.txt"
    link.symlink_to(outside)
    paths = [
        "/uploads/../jwt_secret",
        "/uploads/%2e%2e/jwt_secret",
        "/uploads/..%2fjwt_secret",
        "/uploads/%2e%2e%2fjwt_secret",
        "/uploads/../messenger.db",
        "/uploads/../outside.txt",
        "/uploads//../outside.txt",
        f"/uploads/{link.name}",
        "/jwt_secret",
        "/messenger.db",
        "/outside.txt",
        "/nginx/nginx.conf",
        "/log/nginx_error.log",
    ]
    for path in paths:
        response = requests.get(stack.base_url + path, timeout=TIMEOUT, allow_redirects=False)
        assert response.status_code in (400, 401, 403, 404), (path, response.status_code)
        assert secret not in response.content, path
        assert b"outside-marker" not in response.content, path
        assert b"SQLite format" not in response.content, path


def test_uploads_accept_only_reads(stack):
    url = put_upload(stack, f"{uuid.uuid4()}.png", b"png")
    for method in ("POST", "PUT", "DELETE"):
        response = requests.request(method, stack.base_url + url, data=b"x", timeout=TIMEOUT)
        assert response.status_code in (403, 405), (method, response.status_code)
    assert get(stack, url).content == b"png"
    assert requests.head(stack.base_url + url, timeout=TIMEOUT).status_code == 200


def test_missing_upload_is_json_404(stack):
    assert_error(get(stack, f"/uploads/{uuid.uuid4()}.png"), 404)
    assert_error(get(stack, f"/uploads/{uuid.uuid4()}.txt"), 404)


def test_runtime_files_stay_in_data_dir(stack):
    text = (stack.data_dir / "nginx" / "nginx.conf").read_text()
    conf = "\n".join(line.split("#")[0] for line in text.splitlines())  # directives only
    assert "/var/lib/nginx" not in conf
    assert "@@" not in conf
    for directive in ("client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path"):
        line = next(line for line in conf.splitlines() if line.strip().startswith(directive))
        assert str(stack.data_dir) in line, line
    assert f"listen 0.0.0.0:{stack.port}" in conf
    assert (stack.data_dir / "nginx" / "nginx.pid").is_file()
    assert (stack.log_dir / "nginx_access.log").is_file()
    assert (stack.log_dir / "nginx_error.log").is_file()


def test_generated_secret_and_sockets_have_tight_modes(stack):
    secret = stack.data_dir / "jwt_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_bytes().strip()) >= 32
    for name in ("fcgi.sock", "fcgi-upload.sock", "relay.sock"):
        info = (stack.run_dir / name).stat()
        assert stat.S_ISSOCK(info.st_mode), name
        assert stat.S_IMODE(info.st_mode) == 0o660, (name, oct(info.st_mode))
        if os.geteuid() == 0:
            import grp

            assert grp.getgrgid(info.st_gid).gr_name == "www-data", name


def test_access_log_leaves_out_query_strings(stack, api):
    token = api.new_user("log").token
    get(stack, "/chats/1/messages?limit=5&secret_marker=1", headers={"Authorization": f"Bearer {token}"})
    access_log = stack.log_dir / "nginx_access.log"
    log = wait_for(lambda: "/chats/1/messages" in (text := access_log.read_text()) and text)
    assert log, "request not in the access log"
    assert "secret_marker" not in log
    assert token not in log


# --- a second instance: side by side, restarts, shutdown ---------------------------------------

@pytest.fixture(scope="module")
def second_stack(stack):
    other = conftest.start_stack_once("second", prefix="msgr-e2e-2nd-")
    yield other
    try:
        conftest.stop_stack(other, signum=signal.SIGINT)  # as Ctrl-C does
    finally:
        conftest.cleanup_stack(other)


def test_two_instances_side_by_side(stack, second_stack):
    assert second_stack.port != stack.port
    first = requests.post(stack.base_url + "/login", json={"username": "SideBySide"}, timeout=TIMEOUT)
    second = requests.post(second_stack.base_url + "/login", json={"username": "SideBySide"}, timeout=TIMEOUT)
    assert first.status_code == second.status_code == 200
    # Separate databases and separate secrets: a token of one is refused by the other.
    other_token = second.json()["token"]
    assert_error(requests.get(stack.base_url + "/chats", headers={"Authorization": f"Bearer {other_token}"},
                              timeout=TIMEOUT), 401)
    assert (stack.data_dir / "jwt_secret").read_bytes() != (second_stack.data_dir / "jwt_secret").read_bytes()


@pytest.mark.parametrize("name", ["FCGIApp", "WSRelay", "nginx"])
def test_a_killed_child_is_restarted(second_stack, name):
    children = second_stack.child_pids()
    assert set(children) == {"FCGIApp", "WSRelay", "nginx"}, children
    victim = children[name]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(victim), timeout=5)
    restarted = wait_for(lambda: second_stack.child_pids().get(name) not in (None, victim), timeout=20)
    assert restarted, f"{name} was not restarted\n{second_stack.diagnostics()}"

    def api_answers():
        try:
            response = requests.get(second_stack.base_url + "/chats", timeout=2)
        except requests.RequestException:
            return False
        return response.status_code == 401

    assert wait_for(api_answers, timeout=20), second_stack.diagnostics()
    token = ok_json(requests.post(second_stack.base_url + "/login", json={"username": f"After{name}"},
                                  timeout=TIMEOUT))["token"]
    assert ok_json(requests.get(second_stack.base_url + "/chats", headers={"Authorization": f"Bearer {token}"},
                                timeout=TIMEOUT)) == []
    assert second_stack.proc.poll() is None


def test_unreachable_app_gives_json_502(second_stack):
    """nginx's own 502 (FastCGI socket gone) is JSON like every other error."""
    sock = second_stack.run_dir / "fcgi.sock"
    moved = second_stack.run_dir / "fcgi.sock.moved"
    sock.rename(moved)
    try:
        response = requests.get(second_stack.base_url + "/chats", timeout=TIMEOUT)
    finally:
        moved.rename(sock)
    assert_error(response, 502)
    assert requests.get(second_stack.base_url + "/chats", timeout=TIMEOUT).status_code == 401
