#!/usr/bin/env python3
"""Turns the raw results scripts/bench collected into the benchmark table.

usage: bench_report.py WORK_DIR REPORT.md

Reads WORK_DIR (meta.json, LoadGen JSON lines, wrk outputs, upload/cp timings), prints the
table (figure, value, baseline, ratio, bar, result) on stdout and writes REPORT.md with the
command, date, nproc, a "how measured" note per row, the CPU each process used, and the raw
results. Whatever follows the notes marker in an existing REPORT.md is kept.
"""
import glob
import json
import os
import re
import statistics
import sys

NOTES_MARKER = "<!-- Everything below this line is kept when scripts/bench rewrites this file. -->"
CENTRIFUGO_DELIVERIES_PER_CPU = 12_500
CENTRIFUGO_BYTES_PER_CONNECTION = 30 * 1024


def load_json(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    # A log with the JSON line last (LoadGen prints "ready" first in ws-idle).
    lines = [line for line in text.splitlines() if line.startswith("{")]
    try:
        return json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None


def wrk_result(path):
    """Requests/s, p99 (ms), non-2xx count and total requests from `wrk --latency` output."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not rate or not p99:
        return None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    total = re.search(r"(\d+) requests in", text)
    return {
        "rps": float(rate.group(1)),
        "p99_ms": float(p99.group(1)) * scale,
        "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in errors.groups()) if errors else 0),
        "requests": int(total.group(1)) if total else 0,
    }


def cpu_between(before_path, after_path):
    before, after = load_json(before_path), load_json(after_path)
    if not before or not after or after["t"] <= before["t"]:
        return {}
    wall = after["t"] - before["t"]
    # A process restarted in between (other pids) or gone is left out.
    return {name: (after["cpu"][name] - seconds) / wall for name, seconds in before["cpu"].items()
            if name in after["cpu"] and before.get("pids", {}).get(name) == after.get("pids", {}).get(name)
            and after["cpu"][name] >= seconds}


def num(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


REFERENCE = "reference"


class Row:
    """One line of the table. `passed` is True/False against the bar, None when the figure is
    missing, or REFERENCE for a row measured beside a bar row to explain it (it has no bar)."""

    def __init__(self, figure, value, baseline, ratio, bar, passed, how, errors=0):
        self.figure, self.value, self.baseline, self.bar, self.how = figure, value, baseline, bar, how
        self.ratio = "—" if ratio is None else f"{ratio:.2f}"
        self.is_reference = passed is REFERENCE
        if self.is_reference:
            self.result = f"— ({errors} errors)" if errors else "—"
        elif passed is None:
            self.result = "n/a"
        elif errors:
            self.result = f"FAIL ({errors} errors)"
        else:
            self.result = "PASS" if passed else "FAIL"


def build_rows(work, meta):
    rows = []
    nproc = meta.get("nproc") or 1

    # REST read
    def wrk_runs(target):
        return [r for r in (wrk_result(p) for p in sorted(glob.glob(f"{work}/wrk_{target}_*.txt"))) if r]

    static, app, bare = wrk_runs("static"), wrk_runs("app"), wrk_runs("floor")
    static_rps = statistics.mean(r["rps"] for r in static) if static else None
    app_rps = statistics.mean(r["rps"] for r in app) if app else None
    bare_rps = statistics.mean(r["rps"] for r in bare) if bare else None
    static_p99 = max(r["p99_ms"] for r in static) if static else None
    app_p99 = max(r["p99_ms"] for r in app) if app else None
    bare_p99 = max(r["p99_ms"] for r in bare) if bare else None
    app_errors = sum(r["errors"] for r in app)
    ratio = app_rps / static_rps if app_rps and static_rps else None
    rounds = meta.get("rounds", 1)
    rows.append(Row(
        "REST read: `GET /users/:id` (wrk, 64 conns)", f"{num(app_rps)} req/s",
        f"{num(static_rps)} req/s (nginx static file)", ratio, "≥ 0.40 × baseline (ratio)",
        None if ratio is None else ratio >= 0.40,
        f"`wrk -t2 -c64 -d{meta.get('wrk_seconds')}s --latency` with a bearer token on `GET /users/<id>`, "
        "alternated with the same wrk on a small JSON file (that user's object, ~90 bytes) nginx serves "
        f"from `$DATA_DIR/uploads/`; {rounds} round(s) each, mean req/s.",
        app_errors))
    rows.append(Row(
        "REST read: p99 latency", f"{num(app_p99, 2)} ms",
        f"{num(static_p99, 2)} ms static file; {num(bare_p99, 2)} ms bare libfcgi responder", None,
        "< 10 ms (absolute)", None if app_p99 is None else app_p99 < 10,
        "wrk's `--latency` 99th percentile (the worst of the rounds).", app_errors))
    rows.append(Row(
        "REST read floor: a bare libfcgi responder (reference)", f"{num(bare_rps)} req/s",
        f"{num(static_rps)} req/s (nginx static file)", bare_rps / static_rps if bare_rps and static_rps else None,
        "— (the app makes " + (f"{app_rps / bare_rps:.2f}" if app_rps and bare_rps else "n/a") + " of it)",
        REFERENCE,
        "The same wrk, alternated with the two above, on `GET /users/<id>` through a second nginx with the "
        "stack's configuration whose FastCGI goes to `scripts/lib/fcgi_floor.c`: libfcgi, as many threads as "
        "FCGIApp has workers, the same close, a fixed ~80-byte answer; no routing, token or database. What "
        "nginx, FastCGI and the sockets cost per request here: the most any libfcgi app could reach.",
        sum(r["errors"] for r in bare)))

    # REST write
    rest = load_json(f"{work}/rest_write.json")
    rest_reference = load_json(f"{work}/rest_write_reference.json")
    single = load_json(f"{work}/sqlite_single.json")
    rest_rate = rest.get("msgs_per_s") if rest else None
    single_rate = single.get("rows_per_s") if single else None
    rows.append(Row(
        f"REST write: `POST /chats/:id/messages` ({meta.get('rest_connections')} conns)",
        f"{num(rest_rate)} msgs/s", f"{num(single_rate)} rows/s (SQLite, one commit per row)",
        rest_rate / single_rate if rest_rate and single_rate else None, "≥ 5,000 msgs/s (absolute)",
        None if rest_rate is None else rest_rate >= 5000,
        "LoadGen `rest-write`: keep-alive HTTP/1.1 connections through nginx, one user each (two per "
        "direct chat), each sending the next message when the last was answered; HTTP 200 answers in the "
        "measured window. 16 connections keep every FCGIApp worker busy; more only wait "
        "longer in nginx's queue (the reference row below). Baseline: `scripts/lib/bench_sqlite.py single` — the messages table with its "
        "indexes, WAL, synchronous=NORMAL, one `BEGIN IMMEDIATE` transaction per row, same disk.",
        rest.get("errors", 0) if rest else 0))
    rows.append(Row(
        "REST write: p99 latency", f"{num(rest.get('p99_ms') if rest else None, 2)} ms",
        f"p50 {num(rest.get('p50_ms') if rest else None, 2)} ms", None, "< 20 ms (absolute)",
        None if not rest else rest["p99_ms"] < 20,
        "Request written → response's last byte, per request, in an HDR histogram.",
        rest.get("errors", 0) if rest else 0))
    rows.append(Row(
        f"REST write at {meta.get('rest_reference_connections')} conns (reference)",
        f"{num(rest_reference.get('msgs_per_s') if rest_reference else None)} msgs/s",
        f"p50 {num(rest_reference.get('p50_ms') if rest_reference else None, 2)} ms, "
        f"p99 {num(rest_reference.get('p99_ms') if rest_reference else None, 2)} ms", None, "—", REFERENCE,
        "The same load with as many connections as the REST read row: a little more throughput, each "
        "request waiting longer for a worker (Little's law: connections ÷ throughput).",
        rest_reference.get("errors", 0) if rest_reference else 0))

    # WS ingest
    ingest_rounds = ingest_runs(work)
    ingest = ingest_rounds[-1] if ingest_rounds else None
    batch = load_json(f"{work}/sqlite_batch.json")
    floor = load_json(f"{work}/ingest_floor.json")
    stop_and_wait = load_json(f"{work}/ingest_stop_and_wait.json")
    stop_and_wait_floor = load_json(f"{work}/ingest_stop_and_wait_floor.json")
    rates = [run.get("msgs_per_s") for run in ingest_rounds if run.get("msgs_per_s") is not None]
    ingest_rate = sum(rates) / len(rates) if rates else None
    batch_rate = batch.get("rows_per_s") if batch else None
    floor_rate = floor.get("msgs_per_s") if floor else None
    users = ingest.get("users") if ingest else meta.get("ingest_users")
    window = ingest.get("window") if ingest else meta.get("ingest_window")
    rows.append(Row(
        f"WS ingest: {num(users)} users in {num((users or 0) // 2)} direct chats, {num(window)} unacknowledged each",
        f"{num(ingest_rate)} msgs/s", f"{num(floor_rate)} msgs/s (same load, a relay that stores nothing)",
        ingest_rate / floor_rate if ingest_rate and floor_rate else None, "≥ 20,000 msgs/s (absolute)",
        None if ingest_rate is None else ingest_rate >= 20000,
        f"LoadGen `ws-ingest`: one socket per user through nginx (`Authorization: Bearer` at the "
        f"handshake), each sending `{{chat_id, content, nonce}}` flat out: a user sends ahead, up to "
        f"{num(window)} messages not yet acknowledged, and matches each ACK to its send by the nonce; ACKs "
        f"received in the measured window; mean of {len(rates)} run(s): {', '.join(num(rate) for rate in rates)} msgs/s. "
        "Baseline: the same LoadGen run through a second nginx with the stack's configuration whose "
        "`/ws` goes to `LoadGen ws-floor`, a stand-in relay that answers each send like WSRelay (echo, "
        "ACK, copy to the peer) but stores nothing: what nginx, the sockets and the generator cost "
        "with no relay work. It writes each answer at once, where WSRelay's group commit sends a "
        "round's frames to a socket in one write, so it is a reference, not a strict ceiling "
        f"(floor relay {num(floor.get('cpu_floor') if floor else None, 2)} cores, its nginx "
        f"{num(floor.get('cpu_nginx') if floor else None, 2)}, LoadGen "
        f"{num(floor.get('loadgen_cpu') if floor else None, 2)}). Storage's own ceiling, "
        f"`bench_sqlite.py batch` (rows generated inside SQLite, 1,000 per transaction): "
        f"{num(batch_rate)} rows/s.",
        sum(run.get("errors", 0) for run in ingest_rounds)))
    saw_rate = stop_and_wait.get("msgs_per_s") if stop_and_wait else None
    saw_floor_rate = stop_and_wait_floor.get("msgs_per_s") if stop_and_wait_floor else None
    rows.append(Row(
        "WS ingest, stop-and-wait: 1 unacknowledged each (reference)", f"{num(saw_rate)} msgs/s",
        f"{num(saw_floor_rate)} msgs/s (same load, a relay that stores nothing)",
        saw_rate / saw_floor_rate if saw_rate and saw_floor_rate else None, "—", REFERENCE,
        "The same users, each waiting for the ACK of one message before sending the next; one run, and "
        "its floor. Every message then costs its own socket reads and writes at each hop (nginx, relay, "
        "generator), which the window above lets them share.",
        stop_and_wait.get("errors", 0) if stop_and_wait else 0))
    paced = load_json(f"{work}/ingest_paced.json")
    rows.append(Row(
        f"WS ingest: p99 send → ACK at {num(paced.get('target_rate') if paced else None)} msgs/s offered",
        f"{num(paced.get('p99_ms') if paced else None, 2)} ms",
        f"p50 {num(paced.get('p50_ms') if paced else None, 2)} ms; flat out: p99 "
        f"{num(ingest.get('p99_ms') if ingest else None, 2)} ms", None, "< 50 ms (absolute)",
        None if not paced else paced["p99_ms"] < 50,
        "Frame written → ACK with its nonce read, per message, with the same users sending at half the "
        "throughput bar, one message in flight each. Flat out, every user always has messages waiting, so "
        "latency is messages in flight ÷ throughput (Little's law: 2,000 users with one message each would "
        "need > 40,000 msgs/s for a 50 ms p99); the flat-out figure is shown beside it.",
        paced.get("errors", 0) if paced else 0))

    # WS fan-out
    fanout = load_json(f"{work}/fanout.json")
    members = fanout.get("members") if fanout else meta.get("fanout_members")
    deliveries = fanout.get("deliveries_per_s") if fanout else None
    reference = CENTRIFUGO_DELIVERIES_PER_CPU * nproc
    rows.append(Row(
        f"WS fan-out: {num(members)}-member group, one sender", f"{num(deliveries)} deliveries/s",
        f"{num(reference)} /s (Centrifugo, published: 12,500/CPU × {nproc})",
        deliveries / reference if deliveries else None, "≥ 100,000 deliveries/s (absolute)",
        None if deliveries is None else deliveries >= 100000,
        f"LoadGen `ws-fanout`: all members connected through nginx; the first sends flat out with "
        f"{fanout.get('window', 16) if fanout else 16} messages not yet delivered to every member; message "
        "frames received by all sockets (the sender's own copy included) in the measured window. The "
        "baseline is a published figure, not measured here.",
        (fanout.get("errors", 0) + fanout.get("lost", 0)) if fanout else 0))

    latency = load_json(f"{work}/latency.json")
    latency_floor = load_json(f"{work}/latency_floor.json")
    achieved = latency.get("deliveries_per_s") if latency else None
    rows.append(Row(
        f"WS latency: same group at {num(meta.get('fanout_bar', 100000) / 2)} deliveries/s",
        f"{num(latency.get('p99_ms') if latency else None, 2)} ms p99",
        f"{num(latency_floor.get('p99_ms') if latency_floor else None, 2)} ms p99 (same load, a relay that "
        f"stores nothing); ours: p50 {num(latency.get('p50_ms') if latency else None, 2)} ms, "
        f"{num(achieved)} deliveries/s",
        None, "< 25 ms (absolute)", None if not latency else latency["p99_ms"] < 25,
        f"LoadGen `ws-fanout --rate {meta.get('latency_rate')}` (half the fan-out bar): send → the last "
        "member's copy, per message. Baseline: the same run through a second nginx to `LoadGen ws-floor "
        "--copies-to all`, which echoes and ACKs each send and copies it to every other socket at once, "
        "one task per event loop, storing nothing "
        f"(floor relay {num(latency_floor.get('cpu_floor') if latency_floor else None, 2)} cores, its nginx "
        f"{num(latency_floor.get('cpu_nginx') if latency_floor else None, 2)}, LoadGen "
        f"{num(latency_floor.get('loadgen_cpu') if latency_floor else None, 2)}; "
        f"{num(latency_floor.get('deliveries_per_s') if latency_floor else None)} deliveries/s).",
        (latency.get("errors", 0) + latency.get("lost", 0)) if latency else 0))

    # Idle
    idle = load_json(f"{work}/idle.json")
    rss = load_json(f"{work}/idle_rss.json")
    sockets = idle.get("open_at_end") if idle else None
    per_connection = None
    if idle and rss and sockets and rss.get("rss_with_kb", 0) > 0:
        per_connection = (rss["rss_with_kb"] - rss["rss_before_kb"]) * 1024 / sockets
    rows.append(Row(
        f"Idle: {num(idle.get('sockets') if idle else meta.get('idle_sockets'))} authenticated sockets",
        f"{num(per_connection / 1024 if per_connection is not None else None, 1)} KB/conn WSRelay RSS",
        "30 KB/conn (Centrifugo, published)",
        per_connection / CENTRIFUGO_BYTES_PER_CONNECTION if per_connection is not None else None,
        "≤ 16 KB/conn (absolute)", None if per_connection is None else per_connection <= 16 * 1024,
        "LoadGen `ws-idle` opens the sockets through nginx and prints `ready`; WSRelay's VmRSS "
        f"({num(rss.get('rss_before_kb') if rss else None)} KB before → "
        f"{num(rss.get('rss_with_kb') if rss else None)} KB with the sockets, highest of 5 samples 1 s "
        "after `ready`) ÷ open sockets. Run first, on a fresh relay.",
        (idle.get("errors", 0) if idle else 0) + (1 if rss and rss.get("relay_restarted") else 0)))

    # Upload
    uploads, copies = [], []
    for path, target in ((f"{work}/upload.txt", uploads), (f"{work}/cp.txt", copies)):
        try:
            with open(path) as f:
                target.extend(line.split() for line in f if line.strip())
        except OSError:
            pass
    ok = [u for u in uploads if len(u) == 5 and u[2] == "200" and float(u[1]) > 0]
    failed_uploads = len(uploads) - len(ok)
    upload_mbs = statistics.median(int(u[0]) / float(u[1]) / 1e6 for u in ok) if ok else None
    cp_mbs = statistics.median(int(c[0]) / float(c[1]) / 1e6 for c in copies if float(c[1]) > 0) if copies else None
    growth = max((int(u[4]) - int(u[3])) / 1024 for u in uploads) if uploads else None
    rows.append(Row(
        "Upload: one 50 MiB file through nginx", f"{num(upload_mbs, 1)} MB/s", f"{num(cp_mbs, 1)} MB/s (cp, same disk)",
        upload_mbs / cp_mbs if upload_mbs and cp_mbs else None, "≥ 0.25 × baseline (ratio)",
        None if upload_mbs is None or cp_mbs is None else upload_mbs / cp_mbs >= 0.25,
        f"`curl -F file=@…` multipart `POST /upload` of 50 MiB of random bytes (median of "
        f"{len(uploads)}), against `cp` of the same file into the same `DATA_DIR` (median of {len(copies)}); "
        "both land in the page cache, neither syncs.", failed_uploads))
    rows.append(Row(
        "Upload: FCGIApp RSS growth", f"{num(growth, 1)} MB", "—", None, "< 10 MB (absolute)",
        None if growth is None else growth < 10,
        "FCGIApp's VmRSS sampled every 10 ms during each upload; highest sample − the value before it.",
        failed_uploads))
    rows.extend(protocol2_rows(work, ingest_rounds, rates, fanout))
    return rows


def protocol2_rows(work, v1_rounds, v1_rates, v1_fanout):
    """The event stream's cost: protocol-2 sockets against protocol-1 ones, run after them in
    the same rounds, and a resume of missed events."""
    rows = []
    v2_paths = sorted(glob.glob(f"{work}/ingest_v2_[0-9]*.json"), key=lambda p: int(p.rsplit("_", 1)[1][:-5]))
    v2_rounds = [run for run in (load_json(path) for path in v2_paths) if run]
    v2_rates = [run.get("msgs_per_s") for run in v2_rounds if run.get("msgs_per_s") is not None]
    v1_rate = sum(v1_rates) / len(v1_rates) if v1_rates else None
    v2_rate = sum(v2_rates) / len(v2_rates) if v2_rates else None
    ratio = v2_rate / v1_rate if v1_rate and v2_rate else None
    rows.append(Row(
        "WS ingest on protocol 2 (`/ws?v=2`)", f"{num(v2_rate)} msgs/s", f"{num(v1_rate)} msgs/s (protocol 1, same rounds)",
        ratio, "≥ 0.90 × baseline (ratio)", None if ratio is None else ratio >= 0.90,
        f"The WS ingest load above with every socket on protocol 2 (echoes as `{{op, seq, d}}` events), each "
        f"round right after its protocol-1 run; mean of {len(v2_rates)} run(s): "
        f"{', '.join(num(rate) for rate in v2_rates)} msgs/s.",
        sum(run.get("errors", 0) for run in v2_rounds)))
    v2_fanout = load_json(f"{work}/fanout_v2.json")
    v1_deliveries = v1_fanout.get("deliveries_per_s") if v1_fanout else None
    v2_deliveries = v2_fanout.get("deliveries_per_s") if v2_fanout else None
    ratio = v2_deliveries / v1_deliveries if v1_deliveries and v2_deliveries else None
    rows.append(Row(
        "WS fan-out on protocol 2", f"{num(v2_deliveries)} deliveries/s",
        f"{num(v1_deliveries)} deliveries/s (protocol 1, run just before)", ratio, "≥ 0.90 × baseline (ratio)",
        None if ratio is None else ratio >= 0.90,
        "The WS fan-out load above with every member on protocol 2.",
        (v2_fanout.get("errors", 0) + v2_fanout.get("lost", 0)) if v2_fanout else 0))
    resume = load_json(f"{work}/resume.json")
    median = resume.get("resume_ms_median") if resume else None
    rows.append(Row(
        f"WS resume of {num(resume.get('events') if resume else None)} missed events",
        f"{num(median, 1)} ms", f"max {num(resume.get('resume_ms_max') if resume else None, 1)} ms", None,
        "< 200 ms (absolute)", None if median is None else median < 200,
        f"LoadGen `ws-resume`: a protocol-2 client reads READY's seq and disconnects; the sender sends the "
        f"events over its socket, every one ACKed; the client reconnects through nginx with `?since=` and the "
        f"clock runs from the connect to the last missed event (READY first, seqs increasing, none missing, "
        f"checked); median of {num(resume.get('rounds') if resume else None)} rounds.",
        resume.get("errors", 0) if resume else 0))
    return rows


def ingest_runs(work):
    """The flat-out WS ingest runs, in order (`ingest_1.json`, `ingest_2.json`, …)."""
    paths = sorted(glob.glob(f"{work}/ingest_[0-9]*.json"), key=lambda p: int(p.rsplit("_", 1)[1][:-5]))
    return [run for run in (load_json(path) for path in paths) if run]


def cpu_table(work):
    """(scenario, {process: cores}) for every measured load."""
    table = []
    for name, label in (("rest_write", "REST write"), ("ingest", "WS ingest (last run)"), ("fanout", "WS fan-out"),
                        ("latency", "WS latency"), ("idle", "Idle (hold)")):
        result = (ingest_runs(work) or [None])[-1] if name == "ingest" else load_json(f"{work}/{name}.json")
        if result:
            cpu = {"generator": result.get("loadgen_cpu")}
            cpu.update({k[4:]: v for k, v in result.items() if k.startswith("cpu_")})
            table.append((label, cpu))
    for target, label in (("static", "REST read: static file (wrk)"), ("app", "REST read: GET /users/:id (wrk)")):
        befores = sorted(glob.glob(f"{work}/wrk_{target}_*.cpu0"))
        if befores:
            cpu = cpu_between(befores[-1], befores[-1][:-1] + "1")
            try:
                with open(befores[-1][:-4] + "time") as f:
                    user, system, wall = (float(x) for x in f.read().split()[-3:])
                cpu["generator"] = (user + system) / wall
            except (OSError, ValueError):
                pass
            if cpu:
                table.append((label, cpu))
    return table


def text_table(headers, rows):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line("-" * w for w in widths)] + [line(r) for r in rows])


def markdown_table(headers, rows):
    escape = lambda c: str(c).replace("|", "\\|")
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(escape(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 64
    work, report_path = sys.argv[1], sys.argv[2]
    meta = load_json(f"{work}/meta.json") or {}
    rows = build_rows(work, meta)
    headers = ["figure", "value", "baseline", "ratio", "bar", "result"]
    cells = [[r.figure.replace("`", ""), r.value, r.baseline, r.ratio, r.bar, r.result] for r in rows]
    cpu = cpu_table(work)
    processes = ["generator", "nginx", "WSRelay", "FCGIApp"]
    cpu_cells = []
    for label, values in cpu:
        ours = sum(values[p] for p in processes if values.get(p) is not None)
        machine = values.get("machine")
        cpu_cells.append([label] + [num(values.get(p), 2) if values.get(p) is not None else "—" for p in processes]
                         + [num(ours, 2), num(machine - ours, 2) if machine is not None else "—"])
    cpu_headers = ["load", "generator (LoadGen/wrk)", "nginx", "WSRelay", "FCGIApp", "total", "rest of the machine"]

    bars = [r for r in rows if not r.is_reference]
    failed = [r for r in bars if r.result != "PASS"]
    restarts = []
    try:
        with open(f"{work}/stack.log") as f:
            restarts = [line.strip() for line in f if "exited with status" in line]
    except OSError:
        pass
    print()
    print(text_table(headers, cells))
    print()
    print("CPU during each measured load (cores; nproc = %s):" % meta.get("nproc"))
    print(text_table(cpu_headers, cpu_cells))
    print()
    for line in restarts:
        print("WARNING: a stack process died during the run: " + line)
    if failed:
        print("FAIL: %d of %d bars not met: %s" % (len(failed), len(bars), "; ".join(r.figure.replace("`", "") for r in failed)))
    else:
        print("PASS: all %d bars met" % len(bars))

    notes = ""
    try:
        with open(report_path) as f:
            existing = f.read()
        if NOTES_MARKER in existing:
            notes = existing.split(NOTES_MARKER, 1)[1].lstrip("\n")
    except OSError:
        pass
    raw = []
    for path in sorted(glob.glob(f"{work}/wrk_*.txt")):
        result = wrk_result(path)
        if result is not None:
            raw.append(f"{os.path.basename(path)[:-4]}: {json.dumps(result)}")
    for name in ("upload", "cp"):
        try:
            with open(f"{work}/{name}.txt") as f:
                for line in f:
                    fields = line.split()
                    if name == "upload" and len(fields) == 5:
                        raw.append("upload: " + json.dumps({"bytes": int(fields[0]), "seconds": float(fields[1]),
                                                            "status": int(fields[2]), "rss_before_kb": int(fields[3]),
                                                            "rss_max_kb": int(fields[4])}))
                    elif name == "cp" and len(fields) == 2:
                        raw.append("cp: " + json.dumps({"bytes": int(fields[0]), "seconds": float(fields[1])}))
        except OSError:
            pass
    for path in sorted(glob.glob(f"{work}/*.json")):
        if os.path.basename(path) == "meta.json":
            continue
        result = load_json(path)
        if result is not None:
            raw.append(f"{os.path.basename(path)[:-5]}: {json.dumps(result)}")
    dirty = " (with uncommitted changes)" if meta.get("dirty") else ""
    md = [
        "# Benchmarks",
        "",
        "Written by `scripts/bench` from the run described here; every figure sits beside a baseline "
        "measured in the same run where one exists (2 shared cores drift from run to run, ratios much less). "
        "These are measurements, not tests: a FAIL is a bar not yet met.",
        "",
        f"- Command: `{meta.get('command', './scripts/bench')}` ({meta.get('mode', '?')} mode: "
        f"{meta.get('duration')} s measured after {meta.get('warmup')} s warm-up per LoadGen run, "
        f"wrk {meta.get('wrk_seconds')} s × {meta.get('rounds')} round(s))",
        f"- Date: {meta.get('date', '?')}",
        f"- `nproc`: {meta.get('nproc_cmd') or meta.get('nproc')} ({meta.get('cpu_model', '')}); "
        f"load average before the run: {' '.join(meta.get('load_before', []))}",
        f"- Stack: release build of commit `{meta.get('commit', '?')}`{dirty}, {meta.get('nginx', 'nginx')}, "
        "started by `scripts/run` on its own port and temporary `DATA_DIR`; one machine runs the stack, "
        "the load generators and the baselines.",
        "",
        markdown_table(headers, [[r.figure, r.value, r.baseline, r.ratio, r.bar, f"**{r.result}**"] for r in rows]),
        "",
        *[f"**Warning:** a stack process died during the run (scripts/run restarted it): `{line}`\n"
          for line in restarts],
        "Bar types: *ratio* bars compare with the same-run baseline; *absolute* bars are fixed numbers, "
        "shown beside a same-run baseline (a floor: the same load with the app replaced by a stand-in that "
        "does the least it could; SQLite on the same disk) or a published reference figure. Rows marked "
        "*(reference)* have no bar: they are measured beside a bar row to explain it.",
        "",
        "## How measured",
        "",
    ]
    md += [f"- **{r.figure}** — {r.how}" for r in rows]
    md += [
        "",
        "LoadGen (`Sources/LoadGen`) is a SwiftNIO client: HTTP/1.1 keep-alive for setup and REST, "
        "masked WebSocket frames through nginx's `/ws`, latencies in HDR histograms, its own CPU use "
        "reported so a saturated generator is visible (table below).",
        "",
        "## CPU during each measured load",
        "",
        "Cores used by each process over the measured window (/proc/<pid>/stat; nginx = all workers; "
        "wrk from bash's `time`); *rest of the machine* is everything else the machine was busy with "
        f"(/proc/stat: kernel work not charged to a process, other users' builds and tests). The machine has "
        f"{meta.get('nproc')} cores: a total plus rest near {meta.get('nproc')} means the machine, not one "
        "process, was the limit; a generator near its thread count (2) means the generator was.",
        "",
        markdown_table(cpu_headers, cpu_cells),
        "",
        "## Raw results",
        "",
        "```",
        *raw,
        "```",
        "",
        NOTES_MARKER,
        "",
    ]
    text = "\n".join(md) + (notes if notes else "## Notes\n\n(none yet)\n")
    with open(report_path + ".tmp", "w") as f:
        f.write(text)
    os.replace(report_path + ".tmp", report_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
