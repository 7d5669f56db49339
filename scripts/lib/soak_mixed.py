#!/usr/bin/env python3
"""The mixed part of scripts/soak, and its samples and verdict.

usage: soak_mixed.py --port P --data-dir D --minutes M --window-seconds W --out REPORT.md
                     [--warmup-seconds S] [--loadgen NAME=RESULT.json ...] [--pids-from RUN_PID]

Runs, for S seconds of warm-up and then M minutes, against the stack on port P: edits, reactions, read markers, REST reads
(GET /chats?v=2 and a page of messages), uploads (256 KiB), protocol-2 reconnects with
`since` (each checked to resume with no gap), and a probe socket timing send → ACK — each at
a fixed rate, each operation's latency recorded with the window it started in. Every 10 s it
samples the RSS and open file descriptors of FCGIApp, WSRelay and nginx's workers (children
of scripts/run, looked up each time) and the WAL's size. At the end it writes REPORT.md and
prints it: per window the p99 of each operation and the samples; the verdict against the
issue's criteria, on the M minutes after the warm-up (whose latencies and samples are shown,
as the window "warm-up", and not judged: they are a fresh database's and WAL's first minutes). Exit status 0 when every criterion holds, 1 otherwise.
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import urllib.request
import uuid

import requests
import websockets


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def name_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        return os.path.basename(argv[0].decode(errors="replace"))
    except OSError:
        return ""


def rss_kb(pid):
    return rss_parts_kb(pid)["VmRSS"]


def rss_parts_kb(pid):
    """VmRSS and its three parts: anonymous memory (heaps, stacks), pages of mapped files (the
    binary, its libraries, their data) and shared memory (SQLite's wal-index)."""
    parts = dict.fromkeys(("VmRSS", "RssAnon", "RssFile", "RssShmem"), 0)
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.partition(":")[0]
                if key in parts:
                    parts[key] = int(line.split()[1])
    except OSError:
        pass
    return parts


def cpu_seconds(pid):
    """User and system CPU time `pid` has used."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def processes(run_pid):
    """{name: [pids]}: FCGIApp, WSRelay, and nginx's workers."""
    found = {"FCGIApp": [], "WSRelay": [], "nginx": []}
    for pid in children(run_pid):
        name = name_of(pid)
        if name in ("FCGIApp", "WSRelay"):
            found[name].append(pid)
        elif name.startswith("nginx"):
            found["nginx"] += children(pid)
    return found


WARMUP = -1   # the window of everything before the measured minutes
# The parts of a reconnect + resume, timed for the report and not judged: connect through
# nginx until READY; the same events listed by GET /events (the pull client's check); the
# replayed frames read from the socket after that.
RESUME_PARTS = ("  of it: connect → READY", "  of it: GET /events", "  of it: replayed frames read")


class Soak:
    def __init__(self, args):
        self.args = args
        self.base = f"http://127.0.0.1:{args.port}"
        self.start = time.monotonic()
        self.measured = self.start + args.warmup_seconds
        self.end = self.measured + args.minutes * 60
        self.latency = {}     # (window, op) -> [seconds]
        self.errors = {}      # op -> count
        self.error_samples = []
        self.samples = []     # dicts
        self.pids_seen = {}
        self.newest_id = None  # the newest message the probe had acknowledged

    def window(self, t):
        """The window `t` falls in: 0, 1, … after the warm-up, -1 during it."""
        return int((t - self.measured) // self.args.window_seconds) if t >= self.measured else WARMUP

    def record(self, op, started, ok, detail="", seconds=None):
        """An operation that began at `started`: its latency (until now, or `seconds`), or its error."""
        if ok:
            self.latency.setdefault((self.window(started), op), []).append(
                time.monotonic() - started if seconds is None else seconds)
        else:
            self.errors[op] = self.errors.get(op, 0) + 1
            if len(self.error_samples) < 20:
                self.error_samples.append(f"{op}: {detail}"[:300])

    # --- setup ---------------------------------------------------------------------------
    def login(self, name):
        token = requests.post(self.base + "/login", json={"username": name}, timeout=10).json()["token"]
        user = requests.get(self.base + f"/users/{name}", headers=self.auth(token), timeout=10).json()
        return {"name": name, "token": token, "id": user["id"]}

    @staticmethod
    def auth(token):
        return {"Authorization": f"Bearer {token}"}

    def setup(self):
        tag = uuid.uuid4().hex[:6]
        self.owner = self.login(f"soako{tag}")
        self.members = [self.login(f"soakm{tag}{n}") for n in range(8)]
        chat = requests.post(self.base + "/chats", headers=self.auth(self.owner["token"]),
                             json={"name": "soak", "participants": [m["id"] for m in self.members]}, timeout=10).json()
        self.chat_id = chat["id"]
        self.targets = []
        for n in range(50):
            message = requests.post(self.base + f"/chats/{self.chat_id}/messages", headers=self.auth(self.owner["token"]),
                                    json={"content": f"soak target {n}"}, timeout=10).json()
            self.targets.append(message["id"])

    # --- the loads -----------------------------------------------------------------------
    async def every(self, rate, op, call):
        """Calls `call` `rate` times a second (in a thread: requests is blocking) until the end."""
        interval, n = 1.0 / rate, 0
        next_at = time.monotonic()
        while next_at < self.end:
            await asyncio.sleep(max(0, next_at - time.monotonic()))
            started = time.monotonic()
            try:
                ok, detail = await asyncio.to_thread(call, n)
            except Exception as error:  # noqa: BLE001 — an error of the load is counted
                ok, detail = False, repr(error)
            self.record(op, started, ok, detail)
            n += 1
            next_at += interval

    def rest(self, method, path, token, expect, **kwargs):
        response = requests.request(method, self.base + path, headers=self.auth(token), timeout=30, **kwargs)
        return response.status_code in expect, f"{method} {path} -> {response.status_code} {response.text[:120]}"

    def edit(self, n):
        mid = self.targets[n % len(self.targets)]
        return self.rest("PATCH", f"/chats/{self.chat_id}/messages/{mid}", self.owner["token"], (200,),
                         json={"content": f"edited {n}"})

    def react(self, n):
        member = self.members[n % len(self.members)]
        mid = self.targets[(n // 16) % len(self.targets)]
        emoji = urllib.request.quote(["👍", "❤"][(n // 8) % 2])
        method = "PUT" if (n // 2) % 2 == 0 else "DELETE"
        return self.rest(method, f"/chats/{self.chat_id}/messages/{mid}/reactions/{emoji}", member["token"], (204,))

    def read_marker(self, n):
        """A member reads up to the newest message, as a client showing the chat does: the
        marker moves (a READ event to every member) and the unread counts stay small."""
        member = self.members[n % len(self.members)]
        return self.rest("POST", f"/chats/{self.chat_id}/read", member["token"], (200,),
                         json={"message_id": self.newest_id or self.targets[-1]})

    def rest_read(self, n):
        if n % 2:
            return self.rest("GET", "/chats?v=2", self.members[n % len(self.members)]["token"], (200,))
        return self.rest("GET", f"/chats/{self.chat_id}/messages?v=2&limit=50", self.owner["token"], (200,))

    def upload(self, n):
        ok, detail = self.rest("POST", "/upload?v=2", self.owner["token"], (200,),
                               files={"file": (f"soak{n}.bin", os.urandom(256 * 1024), "application/octet-stream")})
        return ok, detail

    async def probe(self, rate):
        """send → ACK on one protocol-2 socket of the owner's, reconnecting if it drops."""
        interval, n = 1.0 / rate, 0
        while time.monotonic() < self.end:
            try:
                async with websockets.connect(f"ws://127.0.0.1:{self.args.port}/ws?v=2",
                                              additional_headers=self.auth(self.owner["token"]),
                                              max_queue=None, open_timeout=10) as ws:
                    while time.monotonic() < self.end:
                        n += 1
                        nonce = f"soak-{n}"
                        started = time.monotonic()
                        await ws.send(json.dumps({"chat_id": self.chat_id, "content": nonce, "nonce": nonce}))
                        while True:
                            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                            if frame.get("op") in ("ACK", "ERROR") and frame["d"].get("nonce") == nonce:
                                break
                        self.record("send → ACK (WS)", started, frame["op"] == "ACK", json.dumps(frame)[:200])
                        if frame["op"] == "ACK":
                            self.newest_id = frame["d"]["id"]
                        await asyncio.sleep(max(0, interval - (time.monotonic() - started)))
            except Exception as error:  # noqa: BLE001
                self.record("send → ACK (WS)", time.monotonic(), False, repr(error))
                await asyncio.sleep(0.5)

    async def reconnects(self, every_seconds):
        """A member's protocol-2 socket closes and comes back with `since`: READY, then the
        events it missed, seqs increasing with no gap against GET /events."""
        member = self.members[0]
        since = None
        while time.monotonic() < self.end:
            started = time.monotonic()
            try:
                query = "v=2" if since is None else f"since={since}"
                async with websockets.connect(f"ws://127.0.0.1:{self.args.port}/ws?{query}",
                                              additional_headers=self.auth(member["token"]),
                                              max_queue=None, open_timeout=10) as ws:
                    ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    assert ready.get("op") == "READY", ready
                    at_ready = time.monotonic()
                    if since is None:
                        since = ready["d"]["seq"]
                    head = ready["d"]["seq"]
                    expected = await asyncio.to_thread(self.events_after, member["token"], since, head)
                    at_listed = time.monotonic()
                    got = []
                    while len(got) < len(expected):
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        if "seq" in frame and frame["seq"] <= head:
                            got.append(frame["seq"])
                    assert got == expected, f"resume from {since}: {len(got)} of {len(expected)} events"
                    self.record("reconnect + resume (WS)", started, True)
                    # Where its time went, shown beside it (not judged on their own).
                    self.record(RESUME_PARTS[0], started, True, seconds=at_ready - started)
                    self.record(RESUME_PARTS[1], started, True, seconds=at_listed - at_ready)
                    self.record(RESUME_PARTS[2], started, True, seconds=time.monotonic() - at_listed)
                    since = head
                    await asyncio.sleep(every_seconds)
            except Exception as error:  # noqa: BLE001
                self.record("reconnect + resume (WS)", started, False, repr(error))
                await asyncio.sleep(1)

    def events_after(self, token, since, head):
        seqs, cursor = [], since
        while cursor < head:
            page = requests.get(self.base + f"/events?since={cursor}&limit=1000", headers=self.auth(token), timeout=30).json()
            frames = page["events"]
            seqs += [f["seq"] for f in frames if f.get("seq") is not None and f["seq"] <= head]
            if not frames or page["seq"] <= cursor:
                break
            cursor = page["seq"]
        return seqs

    def memory_gauges(self, which):
        """The unlabelled gauges of /metrics/<which> by name; empty when the scrape fails."""
        try:
            text = requests.get(self.base + f"/metrics/{which}", timeout=5).text
        except requests.RequestException:
            return {}
        gauges = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name.startswith("messenger_") and "{" not in name and value:
                gauges[name] = float(value)
        return gauges

    async def sampler(self):
        wal = os.path.join(self.args.data_dir, "messenger.db-wal")
        cpu_before = {}   # name -> (time, CPU seconds) at the sample before
        while True:
            now = time.monotonic()
            sample = {"t": round(now - self.start, 1), "window": self.window(now)}
            for name, pids in processes(self.args.pids_from).items():
                # The share of one core each process used since the sample before.
                cpu = sum(cpu_seconds(p) for p in pids)
                then, used = cpu_before.get(name, (None, 0.0))
                sample[f"{name}_cpu_pct"] = 100 * (cpu - used) / (now - then) if then and cpu >= used else None
                cpu_before[name] = (now, cpu)
                parts = [rss_parts_kb(p) for p in pids]
                sample[f"{name}_rss_kb"] = sum(part["VmRSS"] for part in parts)
                for key, label in (("RssAnon", "anon"), ("RssFile", "file"), ("RssShmem", "shmem")):
                    sample[f"{name}_{label}_kb"] = sum(part[key] for part in parts)
                sample[f"{name}_fds"] = sum(fds(p) for p in pids)
                if name != "nginx":
                    self.pids_seen.setdefault(name, set()).update(pids)
            try:
                sample["wal_bytes"] = os.path.getsize(wal)
            except OSError:
                sample["wal_bytes"] = 0
            # What SQLite holds of each process's RSS (its page caches first), and what its
            # malloc heap has in use: an RSS growth that is neither is freed memory the
            # arenas keep; one in `heap_in_use` beyond SQLite's is a leak.
            for name, which in (("FCGIApp", "fcgi"), ("WSRelay", "relay")):
                gauges = await asyncio.to_thread(self.memory_gauges, which)
                sample[f"{name}_sqlite_bytes"] = gauges.get("messenger_db_sqlite_memory_bytes", 0)
                sample[f"{name}_heap_in_use_bytes"] = gauges.get("messenger_process_heap_in_use_bytes", 0)
            self.samples.append(sample)
            if now >= self.end:
                return
            await asyncio.sleep(min(10, max(0.1, self.end - now)))

    async def run(self):
        scale = self.args.rate_scale
        await asyncio.gather(
            self.sampler(),
            self.probe(20 * scale),
            # Every second: 300 resumes a window, so that its p99 is not merely its slowest one.
            self.reconnects(1),
            self.every(20 * scale, "edit (REST)", self.edit),
            self.every(20 * scale, "reaction (REST)", self.react),
            self.every(10 * scale, "read marker (REST)", self.read_marker),
            self.every(40 * scale, "REST read", self.rest_read),
            self.every(1 * scale, "upload 256 KiB", self.upload),
        )


def p99(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))] if values else None


def report(soak, loadgen):
    args = soak.args
    # Complete windows only (operations that started after the last full one are left out).
    complete = int(args.minutes * 60 // args.window_seconds)
    windows = sorted({w for w, _ in soak.latency if w < complete})
    # Each operation, with the parts of the reconnect + resume (shown, not judged) after it.
    timed = {op for _, op in soak.latency}
    ops = sorted(timed - set(RESUME_PARTS))
    if "reconnect + resume (WS)" in ops:
        at = ops.index("reconnect + resume (WS)") + 1
        ops[at:at] = [op for op in RESUME_PARTS if op in timed]
    warmup = f" after {args.warmup_seconds / 60:g} minutes of warm-up" if args.warmup_seconds else ""
    lines = [f"Soak: {args.minutes:g} minutes{warmup}, windows of {args.window_seconds / 60:g} minutes; "
             "every comparison is of the measured windows (the warm-up's column is shown, not judged).", ""]
    name_of_window = lambda w: "warm-up" if w == WARMUP else f"window {w + 1}"
    lines.append("| operation | " + " | ".join(f"{name_of_window(w)}: count, p99" for w in windows)
                 + " | last ÷ first p99 |")
    lines.append("|---|" + "---|" * (len(windows) + 1))
    verdicts = []
    for op in ops:
        cells, first, last = [], None, None
        for w in windows:
            values = soak.latency.get((w, op), [])
            value = p99(values)
            cells.append(f"{len(values)}, {value * 1000:.1f} ms" if value is not None else "—")
            if value is not None and w != WARMUP:
                first = value if first is None else first
                last = value
        ratio = last / first if first and last else None
        lines.append(f"| {op} | " + " | ".join(cells) + f" | {ratio:.2f} |" if ratio else f"| {op} | " + " | ".join(cells) + " | — |")
        if op not in RESUME_PARTS:
            verdicts.append((f"p99 of {op}: last window ≤ 1.5 × first", ratio is not None and ratio <= 1.5,
                             f"{ratio:.2f}" if ratio else "n/a"))
    lines += ["", "RSS in MB, and its parts: anonymous / mapped files / shared memory; CPU in % of one core"
              " since the sample before.", "",
              "| t (s) | FCGIApp RSS | anon / file / shmem | heap in use | of it SQLite | fds | CPU | WSRelay RSS "
              "| anon / file / shmem | heap in use | of it SQLite | fds | CPU | nginx workers RSS | fds | CPU | WAL MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def parts(sample, name):
        return " / ".join(f"{sample.get(f'{name}_{label}_kb', 0) / 1024:.1f}" for label in ("anon", "file", "shmem"))

    def cpu(sample, name):
        value = sample.get(f"{name}_cpu_pct")
        return "—" if value is None else f"{value:.0f}"
    step = max(1, len(soak.samples) // 20)
    for sample in soak.samples[::step] + ([soak.samples[-1]] if (len(soak.samples) - 1) % step else []):
        lines.append(f"| {sample['t']:.0f} | {sample['FCGIApp_rss_kb'] / 1024:.1f} | {parts(sample, 'FCGIApp')} | "
                     f"{sample['FCGIApp_heap_in_use_bytes'] / 1048576:.1f} | "
                     f"{sample['FCGIApp_sqlite_bytes'] / 1048576:.1f} | {sample['FCGIApp_fds']} | {cpu(sample, 'FCGIApp')} | "
                     f"{sample['WSRelay_rss_kb'] / 1024:.1f} | {parts(sample, 'WSRelay')} | "
                     f"{sample['WSRelay_heap_in_use_bytes'] / 1048576:.1f} | "
                     f"{sample['WSRelay_sqlite_bytes'] / 1048576:.1f} | {sample['WSRelay_fds']} | {cpu(sample, 'WSRelay')} | "
                     f"{sample['nginx_rss_kb'] / 1024:.1f} | {sample['nginx_fds']} | {cpu(sample, 'nginx')} | "
                     f"{sample['wal_bytes'] / 1048576:.1f} |")
    # Flat after warm-up: the last measured window's mean against the first's (without a
    # warm-up of its own, the first window is the warm-up's).
    def mean_of(key, window):
        values = [s[key] for s in soak.samples if s["window"] == window]
        return statistics.mean(values) if values else None
    last_window = min(max(s["window"] for s in soak.samples), complete - 1)
    first_window = 0 if last_window > 0 else None
    for name in ("FCGIApp", "WSRelay", "nginx"):
        for key, label in ((f"{name}_rss_kb", "RSS"), (f"{name}_fds", "open fds")):
            first = mean_of(key, first_window) if first_window is not None else None
            last = mean_of(key, last_window)
            growth = (last - first) / first if first else None
            detail = f"{growth * 100:+.1f}%" if growth is not None else "n/a"
            if label == "RSS" and name != "nginx" and growth is not None:
                cache = mean_of(f"{name}_sqlite_bytes", last_window) - mean_of(f"{name}_sqlite_bytes", first_window)
                heap = (mean_of(f"{name}_heap_in_use_bytes", last_window)
                        - mean_of(f"{name}_heap_in_use_bytes", first_window))
                rss = (last - first) * 1024
                anon, file, shmem = ((mean_of(f"{name}_{label}_kb", last_window)
                                      - mean_of(f"{name}_{label}_kb", first_window)) / 1024
                                     for label in ("anon", "file", "shmem"))
                detail += (f" ({rss / 1048576:+.1f} MB: anon {anon:+.1f}, file {file:+.1f}, shmem {shmem:+.1f};"
                           f" heap in use {heap / 1048576:+.1f} MB, of which SQLite {cache / 1048576:+.1f} MB)")
            verdicts.append((f"{name} {label}: last window within 10% of the first", growth is not None and growth < 0.10,
                             detail))
    wal_max = max(s["wal_bytes"] for s in soak.samples)
    verdicts.append(("WAL bounded (≤ 128 MB at every sample)", wal_max <= 128 << 20, f"max {wal_max / 1048576:.1f} MB"))
    for name, pids in soak.pids_seen.items():
        verdicts.append((f"{name} never restarted", len(pids) == 1, f"pids {sorted(pids)}"))
    total_errors = sum(soak.errors.values())
    verdicts.append(("no errors in the mixed load", total_errors == 0,
                     ", ".join(f"{op} {n}" for op, n in soak.errors.items()) or "0"))
    for name, path in loadgen:
        deadline = time.monotonic() + 120   # LoadGen drains after its duration
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    if any(l.startswith("{") for l in f.read().splitlines()):
                        break
            except OSError:
                pass
            time.sleep(1)
        try:
            with open(path) as f:
                result = json.loads([l for l in f.read().splitlines() if l.startswith("{")][-1])
        except (OSError, IndexError, json.JSONDecodeError):
            verdicts.append((f"LoadGen {name}", False, "no result"))
            continue
        bad = {k: result.get(k) for k in ("errors", "lost", "duplicates", "unknown", "protocol_errors", "skipped")
               if result.get(k)}
        lines.append(f"\nLoadGen {name}: {result.get('msgs_per_s')} msgs/s of {result.get('target_rate')} offered, "
                     f"p50 {result.get('p50_ms')} ms, p99 {result.get('p99_ms')} ms over the whole run")
        achieved = (result.get("msgs_per_s") or 0) >= 0.95 * (result.get("target_rate") or 0)
        verdicts.append((f"LoadGen {name}: no errors, rate achieved", not bad and achieved,
                         json.dumps(bad) if bad else f"{result.get('msgs_per_s')} msgs/s"))
    lines += ["", "| criterion | result | figure |", "|---|---|---|"]
    lines += [f"| {label} | {'PASS' if ok else 'FAIL'} | {figure} |" for label, ok, figure in verdicts]
    if soak.error_samples:
        lines += ["", "First errors:", ""] + [f"- `{e}`" for e in soak.error_samples]
    return "\n".join(lines) + "\n", all(ok for _, ok, _ in verdicts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--window-seconds", type=float, default=300)
    parser.add_argument("--warmup-seconds", type=float, default=0)
    parser.add_argument("--rate-scale", type=float, default=1.0)
    parser.add_argument("--pids-from", type=int, required=True)
    parser.add_argument("--loadgen", action="append", default=[])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    soak = Soak(args)
    soak.setup()
    asyncio.run(soak.run())
    text, passed = report(soak, [item.split("=", 1) for item in args.loadgen])
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
