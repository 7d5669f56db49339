"""The real deployment (README, "Deploy"): nginx/messenger.conf as a site of Debian's stock
nginx, the systemd units in deploy/systemd, and scripts/install.

- `nginx -t` of a copy of the stock /etc/nginx with the site enabled (the machine's own
  configuration is never changed);
- `systemd-analyze verify` of the units, against a root holding the binaries they start (no
  systemd runs on these machines; verify needs none);
- scripts/install run for real in a private mount namespace over copies of /etc, /opt,
  /var/lib, /var/log and /run; then what the units start, started the same way, behind the
  stock nginx with the installed site: the API, uploads, the spec and the WebSocket answer.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

import helpers

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE = REPO_ROOT / "nginx" / "messenger.conf"
UNITS = [REPO_ROOT / "deploy" / "systemd" / name for name in ("messenger-fcgi.service", "messenger-relay.service",
                                                             "messenger-fcgi@.service", "messenger-relay@.service")]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def bin_dir() -> Path:
    if os.environ.get("BIN_DIR"):
        return Path(os.environ["BIN_DIR"])
    return REPO_ROOT / ".build" / os.environ.get("BUILD_CONFIG", "debug")


def stock_nginx_copy(tmp: Path, site_text: str) -> Path:
    """A copy of /etc/nginx in tmp with the site in sites-available and linked into
    sites-enabled, every absolute /etc/nginx, /var/log/nginx and /run path pointed into tmp."""
    if not Path("/etc/nginx/nginx.conf").is_file():
        pytest.skip("no stock /etc/nginx/nginx.conf on this machine (apt-get install nginx)")
    root = tmp / "nginx"
    shutil.copytree("/etc/nginx", root, symlinks=True)
    (tmp / "log").mkdir()

    def local(text: str) -> str:
        return (text.replace("/etc/nginx/", f"{root}/").replace("/var/log/nginx/", f"{tmp}/log/")
                .replace("/run/nginx.pid", f"{tmp}/nginx.pid"))

    (root / "nginx.conf").write_text(local((root / "nginx.conf").read_text()))
    enabled = root / "sites-enabled"
    for link in enabled.iterdir():  # the stock default site, pointed at its copy
        if link.is_symlink() and os.readlink(link).startswith("/etc/nginx/"):
            target = os.readlink(link)
            link.unlink()
            link.symlink_to(root / target[len("/etc/nginx/"):])
    (root / "sites-available" / "messenger").write_text(local(site_text))
    (enabled / "messenger").symlink_to(root / "sites-available" / "messenger")
    return root


def nginx_t(root: Path, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([NGINX, "-t", "-p", f"{root}/", "-c", str(root / "nginx.conf"), "-e", str(tmp / "log" / "error.log")],
                          capture_output=True, text=True, timeout=30)


def test_the_site_passes_nginx_t_in_the_stock_config(tmp_path):
    root = stock_nginx_copy(tmp_path, SITE.read_text())
    result = nginx_t(root, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr, result.stderr


def test_the_front_site_for_several_hosts_passes_nginx_t(tmp_path):
    root = stock_nginx_copy(tmp_path, (REPO_ROOT / "nginx" / "messenger-front.conf").read_text())
    result = nginx_t(root, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr, result.stderr


def test_nginx_t_really_reads_the_site(tmp_path):
    root = stock_nginx_copy(tmp_path, SITE.read_text() + "\nthis_is_no_directive;\n")
    result = nginx_t(root, tmp_path)
    assert result.returncode != 0 and "this_is_no_directive" in result.stderr, result.stderr


def test_the_site_has_the_templates_locations_and_headers():
    site = SITE.read_text()
    template = (REPO_ROOT / "nginx" / "nginx.conf.template").read_text()
    locations = lambda text: sorted(set(re.findall(r"^\s*location\s+([^{]+?)\s*\{", text, re.M)))
    assert locations(site) == locations(template)
    headers = lambda text: sorted(set(re.findall(r"add_header\s+(\S+)", text)))
    assert headers(site) == headers(template)
    params = lambda text: sorted(set(re.findall(r"(?:fastcgi_param|proxy_set_header)\s+(\S+)", text)))
    assert params(site) == params(template)
    for socket in ("/run/messenger/fcgi.sock", "/run/messenger/fcgi-upload.sock", "/run/messenger/relay.sock"):
        assert f"server unix:{socket};" in site
    assert "@@" not in site


def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(path.read_text())
    return unit


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_the_units_settings(path):
    service = read_unit(path)["Service"]
    assert service["User"] == "messenger" and service["Group"] == "messenger"
    assert service["Restart"] == "on-failure"
    assert float(service["RestartSec"].rstrip("s")) < 2
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["StateDirectory"] == "messenger"
    assert service["RuntimeDirectory"] == "messenger"
    assert service["RuntimeDirectoryPreserve"] == "yes"  # shared by the two units
    assert service["EnvironmentFile"] == "/etc/messenger/env"
    assert service["ExecStart"].startswith("/opt/messenger/bin/")
    if "@" in path.name:  # an instance 2, 3, ... of the plain unit, which alone migrates
        assert "Environment=INSTANCE=%i" in path.read_text()
        assert "ExecStartPre" not in service


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if not found:
        pytest.skip("systemd-analyze is not installed (Debian package systemd); the units cannot be verified here")
    return found


def verify(tmp: Path, units: list[Path], binaries: bool = True) -> subprocess.CompletedProcess:
    """systemd-analyze verify against a root holding the system's unit library and, unless
    told otherwise, the binaries the units start."""
    root = tmp / "root"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    for library in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if Path(library).is_dir():
            shutil.copytree(library, root / library.lstrip("/"), symlinks=True, dirs_exist_ok=True)
            break
    if binaries:
        (root / "opt" / "messenger" / "bin").mkdir(parents=True)
        for name in ("FCGIApp", "WSRelay"):
            source = bin_dir() / name
            if not source.is_file():
                pytest.skip(f"{source} is not built")
            shutil.copy(source, root / "opt" / "messenger" / "bin" / name)
    for unit in units:
        shutil.copy(unit, root / "etc" / "systemd" / "system" / unit.name)
    # A template (name@.service) is verified as its instance 2.
    names = [unit.name.replace("@.", "@2.") for unit in units]
    return subprocess.run([systemd_analyze(), "verify", f"--root={root}", *names],
                          capture_output=True, text=True, timeout=60)


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    result = verify(tmp_path, UNITS)
    assert result.returncode == 0, result.stderr
    # Unknown keys and bad values are only warnings there: none allowed.
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr


def test_systemd_analyze_verify_does_check(tmp_path):
    # Without the binaries the same units fail: verify is not a no-op here.
    result = verify(tmp_path, UNITS, binaries=False)
    assert result.returncode != 0 and "/opt/messenger/bin/FCGIApp" in result.stderr, result.stderr
    broken = tmp_path / "messenger-broken.service"
    broken.write_text(UNITS[0].read_text().replace("Restart=on-failure", "Restart=on-failure\nRestartSecc=1"))
    result = verify(tmp_path / "b", [broken])
    assert "RestartSecc" in result.stderr, result.stderr


def can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, timeout=10)
    return probe.returncode == 0


@pytest.mark.skipif(not can_unshare(), reason="needs root and unshare -m (a private mount namespace) to install without touching this machine")
def test_scripts_install_deploys_a_working_service(tmp_path):
    for name in ("FCGIApp", "WSRelay"):
        if not (bin_dir() / name).is_file():
            pytest.skip(f"{bin_dir() / name} is not built")
    work = Path(tempfile.mkdtemp(prefix="msgr-deploy-"))
    port = helpers.free_port()
    origin = "https://app.example.com"
    (work / "env.pre").write_text(
        "# written by the operator before installing\n"
        "DATA_DIR=/var/lib/messenger\nMIGRATIONS_DIR=/opt/messenger/migrations\nSOCKET_GROUP=www-data\n"
        f"LOG_LEVEL=info\nCORS_ORIGINS={origin}\nUPLOAD_MAX_BYTES=2097152\n")
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "bash",
                             str(REPO_ROOT / "Tests" / "e2e" / "deploy_namespace.sh"), str(work), str(port), str(bin_dir())],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def logs() -> str:
        parts = []
        for name in ("install.out", "apps.out", "nginx.out", "varlog/nginx/messenger.error.log"):
            parts.append(f"--- {name} ---\n" + helpers.tail(work / name, 40))
        return "\n".join(parts)

    try:
        base = f"http://127.0.0.1:{port}"

        def up():
            if proc.poll() is not None:
                return "exited"
            if not (work / "ready").exists():
                return None
            try:
                return requests.get(base + "/chats", timeout=2).status_code == 401
            except requests.RequestException:
                return None

        assert helpers.wait_for(up, timeout=60, interval=0.2) is True, logs()
        install_out = (work / "install.out").read_text()
        assert "systemd is not running" in install_out, install_out

        # Installed where the units and the site expect it, owned by the service user.
        opt = work / "opt" / "messenger"
        for path in ("bin/FCGIApp", "bin/WSRelay", "bin/backup", "bin/restore", "share/openapi.yaml"):
            assert (opt / path).is_file(), path
        for dialect in ("sqlite", "postgres"):
            assert sorted(p.name for p in (opt / "migrations" / dialect).iterdir()) \
                == sorted(p.name for p in (REPO_ROOT / "migrations" / dialect).glob("*.sql"))
        passwd = {line.split(":")[0]: line.split(":") for line in (work / "etc" / "passwd").read_text().splitlines()}
        assert "messenger" in passwd and passwd["messenger"][6] == "/usr/sbin/nologin"
        uid = int(passwd["messenger"][2])
        state = work / "varlib" / "messenger"
        assert (state / "messenger.db").stat().st_uid == uid
        assert os.readlink(state / "run") == "/run/messenger"
        env_file = work / "etc" / "messenger" / "env"
        assert env_file.stat().st_mode & 0o007 == 0, "the env file may hold secrets: not world-readable"
        assert env_file.read_text() == (work / "env.pre").read_text(), "an existing env file is kept"
        site = (work / "etc" / "nginx" / "sites-available" / "messenger").read_text()
        assert f"listen {port};" in site and "server_name localhost;" in site
        assert f"client_max_body_size {2097152 + 65536};" in site
        assert (work / "etc" / "nginx" / "sites-enabled" / "messenger").is_symlink()
        for unit in UNITS:
            assert (work / "etc" / "systemd" / "system" / unit.name).read_text() == unit.read_text()

        # The stock nginx with the site, in front of the apps as the units run them.
        api = helpers.Api(base)
        helpers.assert_error(api.get("/chats"), 401)
        user = api.new_user("dep")
        chat = helpers.ok_json(api.post("/chats", user.token, json={"name": "deployed", "participants": []}))
        receipt = helpers.ok_json(api.post("/upload", user.token, files={"file": ("d.png", b"\x89PNG\r\n\x1a\nxyz", "image/png")}))
        message = helpers.ok_json(api.post(f"/chats/{chat['id']}/messages", user.token,
                                           json={"content": "hello from the deployment", "files": [{"url": receipt["url"]}]}))
        served = api.get(receipt["url"])
        assert served.status_code == 200 and served.content == b"\x89PNG\r\n\x1a\nxyz"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert (state / "uploads" / receipt["url"].rsplit("/", 1)[1]).stat().st_uid == uid
        spec = api.get("/openapi.yaml")
        assert spec.status_code == 200 and spec.headers["Content-Type"].startswith("application/yaml")
        assert spec.content == (REPO_ROOT / "Sources" / "FCGIApp" / "openapi.yaml").read_bytes()
        helpers.assert_error(api.get("/no/such/endpoint"), 404)
        # CORS_ORIGINS from the env file, rendered into the site.
        pre = requests.options(base + "/chats", timeout=helpers.TIMEOUT, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == origin, pre.headers
        other = requests.get(base + "/chats", timeout=helpers.TIMEOUT, headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
        # UPLOAD_MAX_BYTES from the env file: nginx's limit follows it.
        too_big = api.post("/upload", user.token, files={"file": ("big.bin", b"x" * (2097152 + 200000), "application/octet-stream")})
        helpers.assert_error(too_big, 413)

        from websockets.sync.client import connect
        with connect(f"ws://127.0.0.1:{port}/ws?v=2&token={user.token}", open_timeout=10) as ws:
            ready = json.loads(ws.recv(timeout=10))
            assert ready["op"] == "READY" and ready["d"]["user_id"] == user.id, ready
        # The access log is nginx's own, in /var/log/nginx, without the token.
        access = helpers.wait_for(lambda: (work / "varlog" / "nginx" / "messenger.access.log").read_text()
                                  if (work / "varlog" / "nginx" / "messenger.access.log").exists() else "", timeout=5)
        assert "/chats" in access and user.token not in access
        assert message["id"] > 0
        # The installed backup works on the installed layout.
        (work / "backup-request").touch()
        assert helpers.wait_for(lambda: (work / "backup-done").exists(), timeout=60), logs()
        assert (work / "backup-done").read_text().strip() == "0", helpers.tail(work / "backup.out")
        assert (work / "backup" / "uploads" / receipt["url"].rsplit("/", 1)[1]).is_file()
        assert "messages=1" in (work / "backup" / "backup.info").read_text()
    finally:
        (work / "stop").touch()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=5)
        # The namespace's bind mounts (the real /opt/* under work/opt) end with it; never
        # delete through one that is somehow still there.
        shown = [entry for entry in (work / "opt").iterdir() if entry.name != "messenger"] \
            if (work / "opt").is_dir() else []
        if not any(os.path.ismount(entry) or (entry.is_dir() and any(entry.iterdir())) for entry in shown):
            shutil.rmtree(work, ignore_errors=True)
