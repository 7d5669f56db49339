#!/usr/bin/env python3
"""Turns the raw results scripts/bench collected into the benchmark table.

usage: bench_report.py [--durability | --relays | --backends] WORK_DIR REPORT.md

--durability: only the DB_SYNCHRONOUS rows (scripts/bench --durability ran nothing else).
--relays: only the one-against-two-relays rows (scripts/bench --relays).
--backends: only the PostgreSQL-against-SQLite rows (scripts/bench --backend postgres).

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

# What a run must show before any of its figures is judged.
RATE_TOLERANCE = 0.95    # a --rate run must achieve at least this share of its target
SKIP_TOLERANCE = 0.001   # and may skip at most this share of the sends it offered
# Fields every LoadGen result of a scenario must carry; a result without one is not judged.
REQUIRED_FIELDS = {
    "ws-ingest": ("sent", "acked", "msgs_per_s", "samples", "p50_ms", "p99_ms", "skipped", "lost", "duplicates",
                  "unknown", "protocol_errors", "errors", "target_rate", "duration_s"),
    "ws-fanout": ("sent", "msgs_per_s", "deliveries_per_s", "samples", "p50_ms", "p99_ms", "skipped", "lost",
                  "duplicates", "unknown", "gaps", "protocol_errors", "errors", "target_rate", "duration_s"),
    "rest-write": ("sent", "committed", "committed_total", "msgs_per_s", "samples", "p50_ms", "p99_ms", "errors"),
    "ws-idle": ("sockets", "open_at_end", "errors", "protocol_errors"),
    "ws-resume": ("events", "rounds", "received", "samples", "errors", "resume_ms_median", "resume_ms_max"),
    "ws-reactions": ("members", "sockets", "reactors", "sent", "msgs_per_s", "deliveries_per_s", "samples", "p50_ms",
                     "p99_ms", "lost", "duplicates", "unknown", "gaps", "protocol_errors", "errors", "duration_s"),
    "rest-chat-list": ("chats", "few_chats", "lists_per_s", "samples", "p50_ms", "p99_ms", "few_lists_per_s",
                       "few_samples", "few_p50_ms", "few_p99_ms", "errors", "duration_s"),
    "ws-read": ("readers", "messages", "window", "duration_s", "sent", "reads", "reads_per_s", "samples", "p50_ms",
                "p99_ms", "exhausted", "lost", "duplicates", "unknown", "protocol_errors", "errors"),
    "ws-presence": ("members", "observers", "duration_s", "cycles", "cycles_per_s", "presence_frames",
                    "presence_per_observer_per_user", "presence_per_user_max", "presence_heard_of_min",
                    "protocol_errors", "errors"),
}
# The field that says a run got answers at all (none is "nothing answered").
ANSWERED_FIELDS = {"ws-ingest": "acked", "rest-write": "committed", "ws-fanout": "msgs_per_s",
                   "ws-reactions": "msgs_per_s", "rest-chat-list": "lists_per_s", "ws-presence": "cycles",
                   "ws-read": "reads"}
# Counters a clean run has none of.
INTEGRITY_FIELDS = ("errors", "lost", "duplicates", "unknown", "gaps", "protocol_errors", "connect_failures")
CENTRIFUGO_SOURCE = ("\"Million connections with Centrifugo\", centrifugal.dev/blog/2020/02/10/"
                     "million-connections-with-centrifugo (20 pods on Xeon E5-2640 v4, Centrifuge's protobuf "
                     "protocol, about 500k deliveries/s)")


class Row:
    """One line of the table. `passed` is True/False against the bar, None when the figure is
    missing, or REFERENCE for a row measured beside a bar row to explain it (it has no bar).
    `problems` are reasons the run behind the row cannot be judged (no data, a failed or
    incomplete run, lost or duplicated messages): any of them makes a bar row FAIL whatever
    its figure says."""

    def __init__(self, figure, value, baseline, ratio, bar, passed, how, problems=(), ratio_note=""):
        self.figure, self.value, self.baseline, self.bar, self.how = figure, value, baseline, bar, how
        self.ratio = "—" if ratio is None else f"{ratio:.2f}{ratio_note}"
        self.problems = list(problems)
        self.is_reference = passed is REFERENCE
        if self.is_reference:
            self.result = f"— (not valid: {'; '.join(self.problems)})" if self.problems else "—"
        elif self.problems:
            self.result = f"FAIL ({'; '.join(self.problems)})"
        elif passed is None:
            self.result = "FAIL (no figure)"
        else:
            self.result = "PASS" if passed else "FAIL"


def read_status(path):
    """The exit status scripts/bench recorded for a command (NAME.rc), or None."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def status_problems(label, path):
    status = read_status(path)
    if status is None:
        return [f"{label}: exit status not recorded"]
    return [f"{label}: exited with status {status}"] if status != 0 else []


def loadgen_run(work, name, *, latency=False, paced=False):
    """(result, problems) of one LoadGen run: `NAME.json` and its exit status `NAME.rc`.
    `latency`: the run's latency is judged, so it must have samples; `paced`: it ran at a
    --rate, so it must have achieved the rate without skipping sends."""
    result = load_json(f"{work}/{name}.json")
    problems = status_problems(name, f"{work}/{name}.rc")
    if not isinstance(result, dict):
        return None, [f"{name}: no result (missing or unparsable)"] + problems
    missing = [key for key in REQUIRED_FIELDS.get(result.get("scenario"), ()) if result.get(key) is None]
    if result.get("scenario") not in REQUIRED_FIELDS:
        problems.append(f"{name}: unknown scenario {result.get('scenario')!r}")
    if missing:
        problems.append(f"{name}: no {', '.join(missing)}")
    problems += [f"{name}: {result[key]} {key.replace('_', ' ')}" for key in INTEGRITY_FIELDS if result.get(key)]
    answered_field = ANSWERED_FIELDS.get(result.get("scenario"))
    if answered_field and not result.get(answered_field):
        problems.append(f"{name}: nothing answered in the measured window")
    if latency and not result.get("samples"):
        problems.append(f"{name}: no latency samples")
    if paced:
        target, seconds = result.get("target_rate") or 0, result.get("duration_s") or 0
        achieved = result.get("msgs_per_s") or 0
        if target <= 0:
            problems.append(f"{name}: no target rate")
        elif achieved < RATE_TOLERANCE * target:
            problems.append(f"{name}: achieved {num(achieved, 1)} of {num(target, 1)}/s offered "
                            f"(< {RATE_TOLERANCE:.2f} × target)")
        if (result.get("skipped") or 0) > SKIP_TOLERANCE * target * seconds:
            problems.append(f"{name}: {result.get('skipped')} sends skipped")
    return result, problems


def as_baseline(problems):
    return [f"baseline {p}" for p in problems]


def wrk_runs(work, target, rounds):
    """(results, problems) of the `rounds` wrk runs on `target`; each must parse, exit 0,
    have requests and no errors."""
    runs, problems = [], []
    for round_ in range(1, rounds + 1):
        name = f"wrk_{target}_{round_}"
        result = wrk_result(f"{work}/{name}.txt")
        problems += status_problems(name, f"{work}/{name}.rc")
        if result is None:
            problems.append(f"{name}: missing or unparsable")
            continue
        if not result["requests"]:
            problems.append(f"{name}: no requests")
        if result["errors"]:
            problems.append(f"{name}: {result['errors']} errors")
        runs.append(result)
    return runs, problems


def database_problems(work, name, run):
    """rest-write: the messages in the database from the run's users against its 200s."""
    counted = load_json(f"{work}/{name}_db.json")
    if not isinstance(counted, dict) or counted.get("rows") is None:
        return [f"{name}: database row count missing"]
    if run is None or run.get("committed_total") is None:
        return []
    if counted["rows"] != run["committed_total"]:
        return [f"{name}: {counted['rows']} rows in the database for {run['committed_total']} answered 200s"]
    return []


def fcgi_api_workers(work):
    """FCGIApp's API worker count, from its "FastCGI listening" line in the stack's log."""
    try:
        with open(f"{work}/stack.log") as f:
            for line in f:
                if "FastCGI listening" in line and "fcgi.sock" in line:
                    match = re.search(r"workers=(\d+)", line)
                    if match:
                        return int(match.group(1))
    except OSError:
        pass
    return None


def value(run, key):
    return run.get(key) if run else None


def build_rows(work, meta):
    rows = []
    nproc = meta.get("nproc") or 1
    # Without the run's parameters nothing can be compared with what was expected.
    meta_problems = [] if meta else ["meta.json missing or unparsable"]
    rounds = meta.get("rounds") or 0

    # REST read
    static, static_problems = wrk_runs(work, "static", rounds)
    app, app_problems = wrk_runs(work, "app", rounds)
    bare, bare_problems = wrk_runs(work, "floor", rounds)
    static_rps = statistics.mean(r["rps"] for r in static) if static else None
    app_rps = statistics.mean(r["rps"] for r in app) if app else None
    bare_rps = statistics.mean(r["rps"] for r in bare) if bare else None
    static_p99 = max(r["p99_ms"] for r in static) if static else None
    app_p99 = max(r["p99_ms"] for r in app) if app else None
    bare_p99 = max(r["p99_ms"] for r in bare) if bare else None
    ratio = app_rps / static_rps if app_rps and static_rps else None
    wrk_connections = meta.get("wrk_connections")
    rows.append(Row(
        f"REST read: `GET /users/:id` (wrk, {num(wrk_connections)} conns)", f"{num(app_rps)} req/s",
        f"{num(static_rps)} req/s (nginx static file)", ratio, "≥ 0.40 × baseline (ratio)",
        None if ratio is None else ratio >= 0.40,
        f"`wrk -t2 -c{wrk_connections} -d{meta.get('wrk_seconds')}s --latency` with a bearer token on "
        "`GET /users/<id>`, alternated with the same wrk on a small JSON file (that user's object, ~90 bytes) "
        f"nginx serves from `$DATA_DIR/uploads/`; {rounds} round(s) each, mean req/s.",
        meta_problems + app_problems + as_baseline(static_problems)))
    rows.append(Row(
        "REST read: p99 latency", f"{num(app_p99, 2)} ms",
        f"{num(static_p99, 2)} ms static file; {num(bare_p99, 2)} ms bare libfcgi responder", None,
        "< 10 ms (absolute)", None if app_p99 is None else app_p99 < 10,
        "wrk's `--latency` 99th percentile (the worst of the rounds).", meta_problems + app_problems))
    rows.append(Row(
        "REST read floor: a bare libfcgi responder (reference)", f"{num(bare_rps)} req/s",
        f"{num(static_rps)} req/s (nginx static file)", bare_rps / static_rps if bare_rps and static_rps else None,
        "— (the app makes " + (f"{app_rps / bare_rps:.2f}" if app_rps and bare_rps else "n/a") + " of it)",
        REFERENCE,
        "The same wrk, alternated with the two above, on `GET /users/<id>` through a second nginx with the "
        "stack's configuration whose FastCGI goes to `scripts/lib/fcgi_floor.c`: libfcgi, as many threads as "
        "FCGIApp has workers, the same close, a fixed ~80-byte answer; no routing, token or database. What "
        "nginx, FastCGI and the sockets cost per request here: the most any libfcgi app could reach.",
        bare_problems))

    # REST write
    rest, rest_problems = loadgen_run(work, "rest_write", latency=True)
    rest_problems += database_problems(work, "rest_write", rest)
    rest_reference, reference_problems = loadgen_run(work, "rest_write_reference", latency=True)
    reference_problems += database_problems(work, "rest_write_reference", rest_reference)
    single = load_json(f"{work}/sqlite_single.json")
    single_problems = [] if single and single.get("rows_per_s") else ["baseline: SQLite single-row result missing"]
    rest_rate = value(rest, "msgs_per_s")
    single_rate = value(single, "rows_per_s")
    connections, reference_connections = meta.get("rest_connections"), meta.get("rest_reference_connections")
    workers = fcgi_api_workers(work)
    per_worker = (f"{connections} connections for FCGIApp's {workers} API workers ({connections / workers:g} per "
                  "worker; the worker count from the stack's log)" if workers and connections
                  else f"{num(connections)} connections (FCGIApp's worker count not found in the stack's log)")
    rows.append(Row(
        f"REST write: `POST /chats/:id/messages` ({num(connections)} conns)",
        f"{num(rest_rate)} msgs/s", f"{num(single_rate)} rows/s (SQLite, one commit per row)",
        rest_rate / single_rate if rest_rate and single_rate else None, "≥ 5,000 msgs/s (absolute)",
        None if rest_rate is None else rest_rate >= 5000,
        "LoadGen `rest-write`: keep-alive HTTP/1.1 connections through nginx, one user each (two per "
        "direct chat), each sending the next message when the last was answered; HTTP 200 answers in the "
        "measured window whose body is the stored message (an id, the chat, the content sent), and after the "
        "run the rows of those users in the database must equal the 200s of the whole run "
        f"({num(value(rest, 'committed_total'))}). {per_worker}; the reference row below has "
        f"{num(reference_connections)}. Baseline: `scripts/lib/bench_sqlite.py single` — the messages table "
        "with its indexes, WAL, synchronous=NORMAL, one `BEGIN IMMEDIATE` transaction per row, same disk.",
        meta_problems + rest_problems + single_problems))
    rows.append(Row(
        "REST write: p99 latency", f"{num(value(rest, 'p99_ms'), 2)} ms",
        f"p50 {num(value(rest, 'p50_ms'), 2)} ms", None, "< 20 ms (absolute)",
        None if value(rest, "p99_ms") is None else rest["p99_ms"] < 20,
        f"Request written → response's last byte, per request, in an HDR histogram "
        f"({num(value(rest, 'samples'))} samples).",
        meta_problems + rest_problems))
    rows.append(Row(
        f"REST write at {num(reference_connections)} conns (reference)",
        f"{num(value(rest_reference, 'msgs_per_s'))} msgs/s",
        f"p50 {num(value(rest_reference, 'p50_ms'), 2)} ms, p99 {num(value(rest_reference, 'p99_ms'), 2)} ms",
        None, "—", REFERENCE,
        f"The same load with {num(reference_connections)} connections"
        + (" (as many as the REST read row)" if reference_connections == wrk_connections else "")
        + ": each request waits longer for a worker (Little's law: connections ÷ throughput).",
        reference_problems))

    # WS ingest
    ingest_rounds_expected = meta.get("ingest_rounds") or 0
    ingest_rounds, ingest_problems = [], []
    for round_ in range(1, ingest_rounds_expected + 1):
        run, problems = loadgen_run(work, f"ingest_{round_}")
        ingest_problems += problems
        if run and run.get("msgs_per_s") is not None:
            ingest_rounds.append(run)
    ingest = ingest_rounds[-1] if ingest_rounds else None
    batch = load_json(f"{work}/sqlite_batch.json")
    floor, floor_problems = loadgen_run(work, "ingest_floor")
    stop_and_wait, stop_and_wait_problems = loadgen_run(work, "ingest_stop_and_wait")
    stop_and_wait_floor, saw_floor_problems = loadgen_run(work, "ingest_stop_and_wait_floor")
    rates = [run["msgs_per_s"] for run in ingest_rounds]
    ingest_rate = sum(rates) / len(rates) if rates else None
    batch_rate = value(batch, "rows_per_s")
    floor_rate = value(floor, "msgs_per_s")
    users = value(ingest, "users") or meta.get("ingest_users")
    window = value(ingest, "window") or meta.get("ingest_window")
    ingest_bar = 20000
    rows.append(Row(
        f"WS ingest: {num(users)} users in {num((users or 0) // 2)} direct chats, {num(window)} unacknowledged each",
        f"{num(ingest_rate)} msgs/s", f"{num(floor_rate)} msgs/s (same load, a relay that stores nothing)",
        ingest_rate / floor_rate if ingest_rate and floor_rate else None, f"≥ {num(ingest_bar)} msgs/s (absolute)",
        None if ingest_rate is None else ingest_rate >= ingest_bar,
        f"LoadGen `ws-ingest`: one socket per user through nginx (`Authorization: Bearer` at the "
        f"handshake), each sending `{{chat_id, content, nonce}}` flat out: a user sends ahead, up to "
        f"{num(window)} messages not yet acknowledged, and matches each ACK to the send whose nonce it carries "
        "(an ACK for nothing in flight or a second one is an error, an ACK still missing after the drain is "
        f"lost); ACKs received in the measured window; mean of {len(rates)} of {ingest_rounds_expected} run(s): "
        f"{', '.join(num(rate) for rate in rates)} msgs/s. "
        "Baseline: the same LoadGen run through a second nginx with the stack's configuration whose "
        "`/ws` goes to `LoadGen ws-floor`, a stand-in relay that answers each send like WSRelay (echo, "
        "ACK, copy to the peer) but stores nothing: what nginx, the sockets and the generator cost "
        "with no relay work. It writes each answer at once, where WSRelay's group commit sends a "
        "round's frames to a socket in one write, so it is a reference, not a strict ceiling "
        f"(floor relay {num(value(floor, 'cpu_floor'), 2)} cores, its nginx "
        f"{num(value(floor, 'cpu_nginx'), 2)}, LoadGen {num(value(floor, 'loadgen_cpu'), 2)}). Storage's own "
        f"ceiling, `bench_sqlite.py batch` (rows generated inside SQLite, 1,000 per transaction): "
        f"{num(batch_rate)} rows/s.",
        meta_problems + ingest_problems + as_baseline(floor_problems)))
    saw_rate = value(stop_and_wait, "msgs_per_s")
    saw_floor_rate = value(stop_and_wait_floor, "msgs_per_s")
    rows.append(Row(
        "WS ingest, stop-and-wait: 1 unacknowledged each (reference)", f"{num(saw_rate)} msgs/s",
        f"{num(saw_floor_rate)} msgs/s (same load, a relay that stores nothing)",
        saw_rate / saw_floor_rate if saw_rate and saw_floor_rate else None, "—", REFERENCE,
        "The same users, each waiting for the ACK of one message before sending the next; one run, and "
        "its floor. Every message then costs its own socket reads and writes at each hop (nginx, relay, "
        "generator), which the window above lets them share.",
        stop_and_wait_problems + as_baseline(saw_floor_problems)))
    paced, paced_problems = loadgen_run(work, "ingest_paced", latency=True, paced=True)
    paced_rate = value(paced, "target_rate") or meta.get("ingest_paced_rate")
    share = f"{paced_rate / ingest_bar:.2f} of the throughput bar" if paced_rate else "n/a"
    if paced_rate and paced_rate * 2 == ingest_bar:
        share = "half the throughput bar"
    paced_users = value(paced, "users") or users
    rows.append(Row(
        f"WS ingest: p99 send → ACK at {num(paced_rate)} msgs/s offered",
        f"{num(value(paced, 'p99_ms'), 2)} ms",
        f"p50 {num(value(paced, 'p50_ms'), 2)} ms; frame written → ACK: p50 {num(value(paced, 'written_p50_ms'), 2)}, "
        f"p99 {num(value(paced, 'written_p99_ms'), 2)} ms; flat out: p99 {num(value(ingest, 'p99_ms'), 2)} ms", None,
        "< 50 ms (absolute)", None if value(paced, "p99_ms") is None else paced["p99_ms"] < 50,
        f"Send's scheduled time → ACK with its nonce read, per message ({num(value(paced, 'samples'))} samples), "
        f"with the same users sending at {share}, one message in flight each; a send whose socket is still "
        "waiting goes out later and its wait counts (no coordinated omission); frame written → ACK, beside it, leaves "
        "that wait out. The run must achieve "
        f"{RATE_TOLERANCE:.2f} of the offered rate and skip almost none ({num(value(paced, 'skipped'))} skipped). "
        "Flat out, every user always has messages waiting, so latency is messages in flight ÷ throughput "
        f"(Little's law: {num(paced_users)} users with one message each would need > "
        f"{num((paced_users or 0) / 0.05)} msgs/s for a 50 ms p99); the flat-out figure is shown beside it.",
        meta_problems + paced_problems))

    # WS fan-out
    fanout, fanout_problems = loadgen_run(work, "fanout")
    members = value(fanout, "members") or meta.get("fanout_members")
    deliveries = value(fanout, "deliveries_per_s")
    reference = CENTRIFUGO_DELIVERIES_PER_CPU * nproc
    rows.append(Row(
        f"WS fan-out: {num(members)}-member group, one sender", f"{num(deliveries)} deliveries/s",
        f"{num(reference)} /s (Centrifugo, published: {num(CENTRIFUGO_DELIVERIES_PER_CPU)}/CPU × {nproc})",
        deliveries / reference if deliveries else None, f"≥ {num(meta.get('fanout_bar', 100000))} deliveries/s (absolute)",
        None if deliveries is None else deliveries >= meta.get("fanout_bar", 100000),
        f"LoadGen `ws-fanout`: all members connected through nginx; the first sends flat out with "
        f"{value(fanout, 'window') or 16} messages not yet delivered to every member; message "
        "frames received by all sockets (the sender's own copy included) in the measured window. Each socket "
        "checks that it gets every message once and in order (a gap or a duplicate on any socket is an error; "
        "a message some member still lacks after the drain is lost). The baseline is a published figure, not "
        f"measured here, so the ratio is *vs published*: {CENTRIFUGO_SOURCE}; "
        f"{num(CENTRIFUGO_DELIVERIES_PER_CPU)} per CPU is this project's reading of that post, on other "
        "hardware with another protocol.",
        meta_problems + fanout_problems, ratio_note=" vs published"))

    latency, latency_problems = loadgen_run(work, "latency", latency=True, paced=True)
    latency_floor, latency_floor_problems = loadgen_run(work, "latency_floor", latency=True, paced=True)
    achieved = value(latency, "deliveries_per_s")
    rows.append(Row(
        f"WS latency: same group at {num(meta.get('fanout_bar', 100000) / 2)} deliveries/s",
        f"{num(value(latency, 'p99_ms'), 2)} ms p99",
        f"{num(value(latency_floor, 'p99_ms'), 2)} ms p99 (same load, a relay that "
        f"stores nothing); ours: p50 {num(value(latency, 'p50_ms'), 2)} ms, {num(achieved)} deliveries/s",
        None, "< 25 ms (absolute)", None if value(latency, "p99_ms") is None else latency["p99_ms"] < 25,
        f"LoadGen `ws-fanout --rate {meta.get('latency_rate')}` (half the fan-out bar): send's scheduled time → "
        f"the last member's copy, per message ({num(value(latency, 'samples'))} samples; the run must achieve "
        f"{RATE_TOLERANCE:.2f} of the rate). Baseline: the same run through a second nginx to `LoadGen ws-floor "
        "--copies-to all`, which echoes and ACKs each send and copies it to every other socket at once, "
        "one task per event loop, storing nothing "
        f"(floor relay {num(value(latency_floor, 'cpu_floor'), 2)} cores, its nginx "
        f"{num(value(latency_floor, 'cpu_nginx'), 2)}, LoadGen {num(value(latency_floor, 'loadgen_cpu'), 2)}; "
        f"{num(value(latency_floor, 'deliveries_per_s'))} deliveries/s).",
        meta_problems + latency_problems + as_baseline(latency_floor_problems)))

    # Idle
    idle, idle_problems = loadgen_run(work, "idle")
    rss = load_json(f"{work}/idle_rss.json")
    sockets = value(idle, "open_at_end")
    expected_sockets = meta.get("idle_sockets")
    if idle and sockets != expected_sockets:
        idle_problems.append(f"idle: {num(sockets)} of {num(expected_sockets)} sockets open at the end")
    if not rss or not rss.get("rss_with_kb"):
        idle_problems.append("idle: no RSS sample with the sockets open")
    elif rss.get("relay_restarted"):
        idle_problems.append("idle: the relay restarted during the run")
    per_connection = None
    if not idle_problems and sockets:
        per_connection = (rss["rss_with_kb"] - rss["rss_before_kb"]) * 1024 / sockets
    rows.append(Row(
        f"Idle: {num(value(idle, 'sockets') or expected_sockets)} authenticated sockets",
        f"{num(per_connection / 1024 if per_connection is not None else None, 1)} KB/conn WSRelay RSS",
        "30 KB/conn (Centrifugo, published)",
        per_connection / CENTRIFUGO_BYTES_PER_CONNECTION if per_connection is not None else None,
        "≤ 16 KB/conn (absolute)", None if per_connection is None else per_connection <= 16 * 1024,
        "LoadGen `ws-idle` opens the sockets through nginx and prints `ready`; WSRelay's VmRSS "
        f"({num(value(rss, 'rss_before_kb'))} KB before → {num(value(rss, 'rss_with_kb'))} KB with the sockets, "
        "highest of 5 samples 1 s after `ready`) ÷ open sockets. Run first, on a fresh relay. The baseline is "
        f"published, the ratio *vs published*: 30 KB per connection is this project's reading of {CENTRIFUGO_SOURCE}.",
        meta_problems + idle_problems, ratio_note=" vs published"))

    # Upload
    uploads, copies = [], []
    for path, target in ((f"{work}/upload.txt", uploads), (f"{work}/cp.txt", copies)):
        try:
            with open(path) as f:
                target.extend(line.split() for line in f if line.strip())
        except OSError:
            pass
    expected_uploads = meta.get("uploads") or 0
    ok = [u for u in uploads if len(u) == 5 and u[2] == "200" and float(u[1]) > 0]
    good_copies = [c for c in copies if len(c) == 2 and float(c[1]) > 0]
    upload_problems = []
    if len(ok) != expected_uploads:
        upload_problems.append(f"{len(ok)} of {expected_uploads} uploads stored every byte with a 200")
    if len(good_copies) != expected_uploads:
        upload_problems.append(f"baseline: {len(good_copies)} of {expected_uploads} copies timed")
    upload_mbs = statistics.median(int(u[0]) / float(u[1]) / 1e6 for u in ok) if ok else None
    cp_mbs = statistics.median(int(c[0]) / float(c[1]) / 1e6 for c in good_copies) if good_copies else None
    growth = max((int(u[4]) - int(u[3])) / 1024 for u in ok) if ok else None
    rows.append(Row(
        "Upload: one 50 MiB file through nginx", f"{num(upload_mbs, 1)} MB/s", f"{num(cp_mbs, 1)} MB/s (cp, same disk)",
        upload_mbs / cp_mbs if upload_mbs and cp_mbs else None, "≥ 0.25 × baseline (ratio)",
        None if upload_mbs is None or cp_mbs is None else upload_mbs / cp_mbs >= 0.25,
        f"`curl -F file=@…` multipart `POST /upload` of 50 MiB of random bytes (median of "
        f"{len(ok)}), against `cp` of the same file into the same `DATA_DIR` (median of {len(good_copies)}); "
        "both land in the page cache, neither syncs.", meta_problems + upload_problems))
    rows.append(Row(
        "Upload: FCGIApp RSS growth", f"{num(growth, 1)} MB", "—", None, "< 10 MB (absolute)",
        None if growth is None else growth < 10,
        "FCGIApp's VmRSS sampled every 10 ms during each upload; highest sample − the value before it.",
        meta_problems + [p for p in upload_problems if not p.startswith("baseline")]))
    rows.extend(protocol2_rows(work, meta, ingest_rounds, fanout, fanout_problems))
    rows.extend(live_state_rows(work, meta, fanout, fanout_problems, ingest_rounds))
    rows.extend(limits_rows(work, meta))
    return rows


# Rate limits and revocation checks may cost REST write and WS ingest at most 5%.
LIMITS_RATIO = 0.95


def limits_rows(work, meta):
    """REST write and WS ingest on two fresh stacks, rate limits off and on (at rates no run
    reaches), rounds alternated: the cost of the token buckets and the revocation checks."""
    rows = []
    expected = meta.get("limit_rounds") or 0
    for kind, label, load in (("rest", "REST write", "`rest-write` as in the REST write row"),
                              ("ingest", "WS ingest", "`ws-ingest` as in the WS ingest row")):
        rates, problems = {"off": [], "on": []}, {"off": [], "on": []}
        for setting in ("off", "on"):
            for round_ in range(1, expected + 1):
                run, run_problems = loadgen_run(work, f"limits_{kind}_{setting}_{round_}", latency=kind == "rest")
                problems[setting] += run_problems
                if run and not run_problems:
                    rates[setting].append(run["msgs_per_s"])
        if expected == 0:
            problems["on"].append("meta.json: no limit_rounds")
        off = statistics.mean(rates["off"]) if rates["off"] else None
        on = statistics.mean(rates["on"]) if rates["on"] else None
        ratio = on / off if on and off else None
        rows.append(Row(
            f"Rate limits on: {label}", f"{num(on)} msgs/s", f"{num(off)} msgs/s (limits off, same rounds)", ratio,
            f"≥ {LIMITS_RATIO:.2f} × baseline (ratio)", None if ratio is None else ratio >= LIMITS_RATIO,
            f"LoadGen {load}, on two fresh stacks side by side, identical but for `RATE_*`: `0` (off) and "
            "`1000000/1000000` (on: every send takes a token from its sender's bucket in the commit's "
            "transaction, nothing is refused); both check every token against the revoked sessions. Rounds "
            f"alternate off/on; mean of {len(rates['on'])} of {expected}: on "
            f"{', '.join(num(r) for r in rates['on'])}, off {', '.join(num(r) for r in rates['off'])} msgs/s.",
            problems["on"] + as_baseline(problems["off"]) +
            ([] if len(rates["off"]) == expected else [f"baseline: {len(rates['off'])} of {expected} runs"])))
    return rows


# A reaction reaches the group through FCGIApp and the relay's read-back where a message is
# committed by the relay itself; the fan-out that follows is the same. Within 2× of it.
REACTION_SHARE = 0.5
LIST_P99_MS = 20
LIST_RATIO = 2.0
PRESENCE_INTERVAL_S = 5


def live_state_rows(work, meta, fanout, fanout_problems, ingest_rounds):
    """Reactions on one hot message beside the message fan-out, the chat list with unread
    counts for a user in many chats beside one in few, READ ops beside message sends, and a
    presence storm (issues 13, 14)."""
    rows = []
    meta_problems = [] if meta else ["meta.json missing or unparsable"]

    reactions, reaction_problems = loadgen_run(work, "reactions", latency=True)
    if reactions and reactions.get("sockets") != reactions.get("members"):
        reaction_problems.append(f"reactions: {num(reactions.get('sockets'))} of {num(reactions.get('members'))} "
                                 "member sockets open")
    deliveries, message_deliveries = value(reactions, "deliveries_per_s"), value(fanout, "deliveries_per_s")
    ratio = deliveries / message_deliveries if deliveries and message_deliveries else None
    members = value(reactions, "members") or meta.get("fanout_members")
    reactors = value(reactions, "reactors") or meta.get("reactors")
    rows.append(Row(
        f"WS reactions: one hot message, {num(members)}-member group, {num(reactors)} reacting",
        f"{num(deliveries)} REACTION deliveries/s", f"{num(message_deliveries)} deliveries/s (WS fan-out, same run)",
        ratio, f"≥ {REACTION_SHARE:.2f} × baseline (ratio)", None if ratio is None else ratio >= REACTION_SHARE,
        f"LoadGen `ws-reactions`: every member on a protocol-2 socket through nginx; {num(reactors)} of them react "
        "to one message over REST (keep-alive, `PUT` then `DELETE` then `PUT` … of their own emoji, each a "
        "change and so one `REACTION` event), each sending its next change when the last was answered 204 and "
        f"reached every member: {num(reactors)} changes in flight, as the fan-out sender keeps "
        f"{value(fanout, 'window') or 16} messages. REACTION frames received by all sockets in the measured window "
        f"({num(value(reactions, 'msgs_per_s'), 1)} reactions/s); each socket checks every reactor's changes come "
        "once and in order (added, removed, …; a seq not above the last is a duplicate, one out of step a gap; "
        "a change some member lacks after the drain is lost). The bar: a reaction costs a REST request, "
        "FCGIApp's write transaction, a notification and the relay's read-back before the same fan-out a message "
        "gets from the relay's own group commit; the 1,000 frames dominate either way, so the reactions should "
        f"reach at least {REACTION_SHARE:.2f} of the message fan-out's deliveries in the same run.",
        meta_problems + reaction_problems + as_baseline(fanout_problems)))
    rows.append(Row(
        "WS reactions: p99 change → last member's REACTION (reference)", f"{num(value(reactions, 'p99_ms'), 2)} ms",
        f"p50 {num(value(reactions, 'p50_ms'), 2)} ms; messages flat out: p99 {num(value(fanout, 'p99_ms'), 2)} ms",
        None, "—", REFERENCE,
        f"Request written → the last member's REACTION frame, per change ({num(value(reactions, 'samples'))} "
        "samples), flat out: latency is changes in flight ÷ throughput (Little's law), shown beside the message "
        "fan-out's own flat-out p99.", reaction_problems))

    listing, list_problems = loadgen_run(work, "chat_list", latency=True)
    if listing and not listing.get("few_samples"):
        list_problems.append("chat_list: no latency samples for the baseline user")
    if listing and not listing.get("page_samples"):
        list_problems.append("chat_list: no latency samples for the first page")
    many_p99, page_p99, few_p99 = value(listing, "p99_ms"), value(listing, "page_p99_ms"), value(listing, "few_p99_ms")
    chats = value(listing, "chats") or meta.get("list_chats")
    few = value(listing, "few_chats") or meta.get("list_few_chats")
    page = value(listing, "page")
    setup = (f"LoadGen `rest-chat-list`: a third user creates {num(chats)} groups with the reader and {num(few)} with "
             "a second reader and posts one message into each (setup over the API); then one keep-alive connection "
             "through nginx requests in turn the busy reader's whole list, its first page "
             f"(`&limit={num(page)}`) and the other reader's list, one request at a time, so none waits for another. "
             "Request written → last byte. An answer counts only if it lists every chat it should, none with "
             "`unread_count` 0.")
    baseline = f"{num(few_p99, 2)} ms (a user in {num(few)} chats, same run)"
    whole_ratio = many_p99 / few_p99 if many_p99 and few_p99 else None
    rows.append(Row(
        f"`GET /chats?v=2`: the whole list of a user in {num(chats)} chats with unread messages, p99",
        f"{num(many_p99, 2)} ms", baseline, whole_ratio, f"< {LIST_P99_MS} ms (absolute)",
        None if many_p99 is None else many_p99 < LIST_P99_MS,
        setup + f" p50 {num(value(listing, 'p50_ms'), 2)} ms against {num(value(listing, 'few_p50_ms'), 2)} ms; "
        f"{num(value(listing, 'bytes'))} bytes against {num(value(listing, 'few_bytes'))}: the answer is "
        f"{num(chats)} full chats, so it grows with them; the ratio is shown, not judged.",
        meta_problems + list_problems))
    page_ratio = page_p99 / few_p99 if page_p99 and few_p99 else None
    rows.append(Row(
        f"`GET /chats?v=2&limit={num(page)}`: the first page of a user in {num(chats)} chats, p99",
        f"{num(page_p99, 2)} ms", baseline, page_ratio, f"≤ {LIST_RATIO:.1f} × baseline",
        None if page_ratio is None else page_ratio <= LIST_RATIO,
        setup + f" p50 {num(value(listing, 'page_p50_ms'), 2)} ms against {num(value(listing, 'few_p50_ms'), 2)} ms; "
        f"{num(value(listing, 'page_bytes'))} bytes against {num(value(listing, 'few_bytes'))}; "
        f"{num(value(listing, 'page_samples'))} and {num(value(listing, 'few_samples'))} samples. Only ordering the "
        "memberships grows with the number of chats; members, unread counts and last messages are read for the "
        "page alone.", meta_problems + list_problems))

    reads, read_problems = loadgen_run(work, "reads", latency=True)
    if reads and reads.get("exhausted"):
        read_problems.append(f"reads: {reads['exhausted']} readers ran out of messages in the window")
    if reads and reads.get("readers") != meta.get("readers"):
        read_problems.append(f"reads: {num(reads.get('readers'))} of {num(meta.get('readers'))} readers connected")
    read_rate = value(reads, "reads_per_s")
    send_rates = [run["msgs_per_s"] for run in ingest_rounds]
    send_rate = statistics.mean(send_rates) if send_rates else None
    rows.append(Row(
        f"READ ops: {num(value(reads, 'readers') or meta.get('readers'))} readers of one group (reference)",
        f"{num(read_rate)} READs/s", f"{num(send_rate)} msgs/s (WS ingest, same run)",
        read_rate / send_rate if read_rate and send_rate else None, "—", REFERENCE,
        "LoadGen `ws-read`: a writer posts "
        f"{num(value(reads, 'messages'))} messages into a group of the readers (setup over REST); each reader, on "
        "a protocol-2 socket through nginx, sends `{\"op\":\"READ\",\"d\":{chat_id, message_id}}` for the "
        f"group's messages in id order, {num(value(reads, 'window'))} unanswered, so every READ moves its marker "
        "forward; its own READ event (matched by `last_read_id`) answers it, the other readers' are receipts "
        f"({num(value(reads, 'deliveries_per_s'))} deliveries/s). p50 {num(value(reads, 'p50_ms'), 2)} ms, p99 "
        f"{num(value(reads, 'p99_ms'), 2)} ms. A reference row: no READ figure to hold it to yet; the baseline is "
        "the other write a socket makes, a message send, whose rounds are committed together.", read_problems))

    storm, storm_problems = loadgen_run(work, "presence")
    storm_members = value(storm, "members") or meta.get("presence_members")
    observers = value(storm, "observers") or meta.get("presence_observers")
    if storm and observers != meta.get("presence_observers"):
        storm_problems.append(f"presence: {num(observers)} of {num(meta.get('presence_observers'))} observers open")
    if storm and (storm.get("presence_heard_of_min") or 0) < (storm_members or 0):
        storm_problems.append(f"presence: an observer heard of {num(storm.get('presence_heard_of_min'))} of "
                              f"{num(storm_members)} members")
    seconds = value(storm, "duration_s")
    bound = int(seconds // PRESENCE_INTERVAL_S) + 1 if seconds else None
    most = value(storm, "presence_per_user_max")
    # Each cycle is two changes (online, offline). A storm that changed each member no more
    # often than the rule allows frames would pass without the rule: it tests nothing.
    changes = 2 * storm["cycles"] / storm_members if storm and storm.get("cycles") and storm_members else None
    if storm and bound and changes is not None and changes <= bound:
        storm_problems.append(f"presence: {changes:.1f} changes per member in the window, not more than the "
                              f"{bound} frames the rule allows (too weak a storm to test it)")
    rows.append(Row(
        f"Presence storm: {num(storm_members)} members flapping, {num(observers)} observers",
        f"≤ {num(most)} PRESENCE / observer / member in {num(seconds, 1)} s",
        f"WSRelay {num(value(storm, 'cpu_WSRelay'), 2)} cores; {num(value(storm, 'cycles_per_s'))} "
        f"connect/disconnect cycles/s, {num(changes, 1)} changes per member; mean "
        f"{num(value(storm, 'presence_per_observer_per_user'), 2)} PRESENCE per observer per member", None,
        f"≤ {num(bound)} (one per {PRESENCE_INTERVAL_S} s, + 1)", None if most is None or bound is None else most <= bound,
        f"LoadGen `ws-presence`: each of {num(observers)} observers creates a group with all {num(storm_members)} "
        "members (a group holds at most 1,001) and stays connected on protocol 2; every member opens a "
        "protocol-2 socket, sends its close frame on READY and drops the connection, and opens the next, flat "
        f"out, for the warm-up and the measured window ({num(value(storm, 'cycles'))} cycles measured, connect → "
        f"gone p50 {num(value(storm, 'p50_ms'), 1)} ms). Each observer counts the PRESENCE frames of each member "
        "in the window; the most any observer got from one member must not exceed one per "
        f"{PRESENCE_INTERVAL_S} s of the window, plus one (a frame at each end). Every observer must have heard "
        "of every member (that the storm reached it), each member must have changed more often than that bound "
        "(two changes a cycle: else the storm tests nothing), and the run must have no errors. The relay's CPU "
        "is over the measured window. Few observers on purpose: each one's group adds 1,001 contacts to every "
        "member, and the relay looks a user's contacts up for every PRESENCE it sends; with 10 observers it "
        "managed 88–194 cycles/s on this machine (2026-12-02, runs of `898e765` and `78fcf34`), too slow to change each member more "
        "often than the rule allows.", meta_problems + storm_problems))
    return rows


def protocol2_rows(work, meta, v1_rounds, v1_fanout, v1_fanout_problems):
    """The event stream's cost — protocol-2 sockets against protocol-1 ones, each run right
    after its protocol-1 twin — and a resume of missed events."""
    rows = []
    expected = meta.get("ingest_rounds") or 0
    v2_rounds, v2_problems = [], []
    for round_ in range(1, expected + 1):
        run, problems = loadgen_run(work, f"ingest_v2_{round_}")
        v2_problems += problems
        if run and not problems:
            v2_rounds.append(run)
    if expected == 0:
        v2_problems.append("meta.json: no ingest_rounds")
    v1_rates = [run["msgs_per_s"] for run in v1_rounds]
    v2_rates = [run["msgs_per_s"] for run in v2_rounds]
    v1_rate = statistics.mean(v1_rates) if v1_rates else None
    v2_rate = statistics.mean(v2_rates) if v2_rates else None
    ratio = v2_rate / v1_rate if v1_rate and v2_rate else None
    rows.append(Row(
        "Protocol 2: WS ingest on `/ws?v=2`", f"{num(v2_rate)} msgs/s",
        f"{num(v1_rate)} msgs/s (protocol 1, same rounds)", ratio, "≥ 0.90 × baseline (ratio)",
        None if ratio is None else ratio >= 0.90,
        f"The WS ingest load above with every socket on protocol 2 (echoes as `{{op, seq, d}}` events), each "
        f"round right after its protocol-1 run; mean of {len(v2_rates)} of {expected} run(s): "
        f"{', '.join(num(rate) for rate in v2_rates)} msgs/s.",
        v2_problems + ([] if len(v1_rates) == expected else [f"baseline: {len(v1_rates)} of {expected} runs"])))

    v2_fanout, fanout_problems = loadgen_run(work, "fanout_v2")
    v1_deliveries = v1_fanout.get("deliveries_per_s") if v1_fanout else None
    v2_deliveries = v2_fanout.get("deliveries_per_s") if v2_fanout else None
    ratio = v2_deliveries / v1_deliveries if v1_deliveries and v2_deliveries else None
    rows.append(Row(
        "Protocol 2: WS fan-out", f"{num(v2_deliveries)} deliveries/s",
        f"{num(v1_deliveries)} deliveries/s (protocol 1, run just before)", ratio, "≥ 0.90 × baseline (ratio)",
        None if ratio is None else ratio >= 0.90,
        "The WS fan-out load above with every member on protocol 2; each member checks its own sequence "
        "of messages as on protocol 1.", fanout_problems + as_baseline(v1_fanout_problems)))

    resume, resume_problems = loadgen_run(work, "resume", latency=True)
    median = resume.get("resume_ms_median") if resume else None
    if resume and resume.get("received") != (resume.get("events") or 0) * (resume.get("rounds") or 0):
        resume_problems.append(f"resume: {resume.get('received')} events received of "
                               f"{(resume.get('events') or 0) * (resume.get('rounds') or 0)} missed")
    rows.append(Row(
        f"Protocol 2: resume of {num(resume.get('events') if resume else None)} missed events",
        f"{num(median, 1)} ms", f"max {num(resume.get('resume_ms_max') if resume else None, 1)} ms", None,
        "< 200 ms (absolute)", None if median is None else median < 200,
        "LoadGen `ws-resume`: a protocol-2 client reads READY's seq and disconnects; the sender sends the "
        "events over its socket, every one ACKed; the client reconnects through nginx with `?since=` and the "
        "clock runs from the connect to the last missed event (READY first, seqs increasing, none missing, "
        f"checked); median of {num(resume.get('rounds') if resume else None)} rounds.", resume_problems))
    return rows


# DB_SYNCHRONOUS=full becomes the default when it keeps at least this share of normal's
# throughput on both write paths (README, "Durability").
DURABILITY_BAR = 0.80


def durability_rows(work, meta):
    """REST write and WS ingest on stacks with DB_SYNCHRONOUS=normal and =full, alternated in
    rounds (normal first, each on a fresh database): full against normal."""
    rows = []
    expected = meta.get("durability_rounds") or 0
    meta_problems = [] if expected else ["meta.json: no durability_rounds"]
    for kind, label, latency in (("rest", "REST write: `POST /chats/:id/messages`", True),
                                 ("ingest", "WS ingest", False)):
        runs = {"normal": [], "full": []}
        problems = {"normal": [], "full": []}
        for round_ in range(1, expected + 1):
            for mode in ("normal", "full"):
                name = f"sync_{mode}_{kind}_{round_}"
                run, run_problems = loadgen_run(work, name, latency=latency)
                if kind == "rest":
                    run_problems += database_problems(work, name, run)
                problems[mode] += run_problems
                if run and run.get("msgs_per_s") is not None:
                    runs[mode].append(run)
        rate = {mode: statistics.mean(r["msgs_per_s"] for r in runs[mode]) if runs[mode] else None
                for mode in runs}
        p99 = {mode: max(r["p99_ms"] for r in runs[mode] if r.get("p99_ms") is not None)
               if any(r.get("p99_ms") is not None for r in runs[mode]) else None for mode in runs}
        ratio = rate["full"] / rate["normal"] if rate["full"] and rate["normal"] else None
        each = lambda mode: ", ".join(num(r["msgs_per_s"]) for r in runs[mode])
        if kind == "rest":
            load = (f"LoadGen `rest-write` with {num(meta.get('rest_connections'))} connections, as in the REST write "
                    "row (every 200 counted against the rows in that stack's database)")
        else:
            load = (f"LoadGen `ws-ingest` with {num(meta.get('ingest_users'))} users, "
                    f"{num(meta.get('ingest_window'))} unacknowledged each, as in the WS ingest row")
        rows.append(Row(
            f"DB_SYNCHRONOUS=full: {label}", f"{num(rate['full'])} msgs/s (p99 {num(p99['full'], 2)} ms)",
            f"{num(rate['normal'])} msgs/s (p99 {num(p99['normal'], 2)} ms) with DB_SYNCHRONOUS=normal",
            ratio, f"≥ {DURABILITY_BAR:.2f} × baseline (ratio)", None if ratio is None else ratio >= DURABILITY_BAR,
            f"{load}, {meta.get('duration')} s after {meta.get('warmup')} s warm-up, on a stack started with "
            f"`DB_SYNCHRONOUS=full` (`PRAGMA synchronous = FULL` on every connection: the WAL is synced at every "
            f"commit) and one with `normal` (synced only at checkpoints), each on a fresh database, alternated "
            f"{expected} round(s), normal first; mean msgs/s, worst p99. full: {each('full')}; normal: "
            f"{each('normal')}. The bar is the rule the default follows: full when it keeps "
            f"{DURABILITY_BAR:.2f} of normal's throughput on both write paths.",
            meta_problems + problems["full"] + as_baseline(problems["normal"])))
    return rows


def cores(run, *programs):
    """The CPU (cores) of every instance of `programs` a LoadGen run watched, summed
    (`cpu_WSRelay`, `cpu_WSRelay-2`, …); None if it watched none."""
    values = [v for k, v in run.items() if v is not None and any(k == f"cpu_{p}" or k.startswith(f"cpu_{p}-")
                                                                   for p in programs)]
    return sum(values) if values else None


def relay_cores(run):
    return cores(run, "WSRelay")


def relay_fanout(work, names):
    """WS fan-out runs by relay count (`names`: {relays: [run names]}): the runs that parsed
    with deliveries and relay CPU, and per relay count their mean deliveries/s, the relays'
    CPU in µs per delivery, the worst p99 and the problems."""
    runs = {n: [] for n in names}
    problems = {n: [] for n in names}
    for n, run_names in names.items():
        for name in run_names:
            run, run_problems = loadgen_run(work, name)
            problems[n] += run_problems
            if run and run.get("deliveries_per_s") and relay_cores(run) is not None:
                runs[n].append(run)
            elif run:
                problems[n].append(f"{name}: no deliveries or relay CPU")
    rate = {n: statistics.mean(r["deliveries_per_s"] for r in runs[n]) if runs[n] else None for n in runs}
    per_delivery = {n: statistics.mean(relay_cores(r) / r["deliveries_per_s"] * 1e6 for r in runs[n])
                    if runs[n] else None for n in runs}
    p99 = {n: max(r["p99_ms"] for r in runs[n]) if runs[n] else None for n in runs}
    return runs, rate, per_delivery, p99, problems


def relays_rows(work, meta):
    """WS fan-out with RELAY_INSTANCES=1 and =2, alternated in rounds (one relay first, each on
    a fresh database): two against one, and the relays' CPU per delivery. A reference row: on
    two cores a second relay adds work (each reads every event and wakes its own sockets), it
    cannot add cores, so the row shows the cost rather than judging it."""
    expected = meta.get("relays_rounds") or 0
    meta_problems = [] if expected else ["meta.json: no relays_rounds"]
    runs, rate, per_delivery, p99, problems = relay_fanout(
        work, {n: [f"relays_{n}_{round_}" for round_ in range(1, expected + 1)] for n in (1, 2)})
    ratio = rate[2] / rate[1] if rate[1] and rate[2] else None
    each = lambda n: ", ".join(f"{num(r['deliveries_per_s'])}/s at {num(relay_cores(r), 2)} cores" for r in runs[n])
    cpu_ratio = per_delivery[2] / per_delivery[1] if per_delivery[1] and per_delivery[2] else None
    value = lambda n: (f"{num(rate[n])} deliveries/s, relays' CPU {num(per_delivery[n], 2)} µs per delivery "
                       f"(p99 {num(p99[n], 2)} ms)")
    return [Row(
        "2 relays (RELAY_INSTANCES=2): WS fan-out", value(2), value(1) + " with one relay", ratio,
        "—", REFERENCE,
        f"LoadGen `ws-fanout` with {num(meta.get('fanout_members'))} members, as in the WS fan-out row, "
        f"{meta.get('duration')} s after {meta.get('warmup')} s warm-up, on a stack started with RELAY_INSTANCES=2 "
        f"(nginx spreads the members' sockets over both; the sender's commits reach the other relay as a "
        f"notification and a read of the events) and one with 1, each on a fresh database, alternated {expected} "
        f"round(s), one relay first; mean deliveries/s, the relays' CPU summed over both processes per delivery, "
        f"worst p99. Two: {each(2)}; one: {each(1)}. CPU per delivery, two ÷ one: "
        f"{'n/a' if cpu_ratio is None else f'{cpu_ratio:.2f}'}. On {meta.get('nproc')} cores a second relay "
        f"cannot be a speed-up: it is for surviving a relay's loss and the step to several hosts.",
        meta_problems + problems[2] + problems[1])]


# The LoadGen rows scripts/bench --backend postgres measures on both backends (backend_round),
# as (kind, label, figure field, unit, digits, what the load is, options). The figure is a
# rate unless the unit is ms (then lower is better); `paced`: the run offered a --rate.
BACKEND_LOADS = (
    ("rest", "REST write: `POST /chats/:id/messages`", "msgs_per_s", "msgs/s", 0,
     lambda m: f"LoadGen `rest-write` with {num(m.get('rest_connections'))} connections (every 200 counted "
               "against the rows in that stack's database)", {}),
    ("ingest", "WS ingest", "msgs_per_s", "msgs/s", 0,
     lambda m: f"LoadGen `ws-ingest` with {num(m.get('ingest_users'))} users, {num(m.get('ingest_window'))} "
               "unacknowledged each", {}),
    ("ingest_v2", "WS ingest on protocol 2", "msgs_per_s", "msgs/s", 0,
     lambda m: "the WS ingest load with every socket on `/ws?v=2`", {}),
    ("ingest_paced", "WS ingest latency, p99", "p99_ms", "ms", 2,
     lambda m: f"the WS ingest users offering {num(m.get('backends_paced_rate'))} msgs/s together (below what "
               "PostgreSQL takes flat out here, so that both are read below saturation)", {"paced": True}),
    ("fanout", "WS fan-out", "deliveries_per_s", "deliveries/s", 0,
     lambda m: f"LoadGen `ws-fanout` to {num(m.get('fanout_members'))} members", {}),
    ("fanout_v2", "WS fan-out on protocol 2", "deliveries_per_s", "deliveries/s", 0,
     lambda m: "the WS fan-out load with every member on protocol 2", {}),
    ("latency", "WS fan-out latency, p99", "p99_ms", "ms", 2,
     lambda m: f"the WS fan-out group at {num(m.get('latency_rate'), 1)} msgs/s (half the fan-out bar)",
     {"paced": True}),
    ("reactions", "WS reactions", "deliveries_per_s", "REACTION deliveries/s", 0,
     lambda m: f"LoadGen `ws-reactions`, {num(m.get('reactors'))} of {num(m.get('fanout_members'))} members "
               "reacting to one message over REST", {}),
    ("chat_list", "`GET /chats?v=2`", "lists_per_s", "lists/s", 0,
     lambda m: f"LoadGen `rest-chat-list`, a user in {num(m.get('backends_list_chats'))} chats with unread messages "
               f"(beside one in {num(m.get('list_few_chats'))})", {}),
    ("reads", "READ ops", "reads_per_s", "READs/s", 0,
     lambda m: f"LoadGen `ws-read`, {num(m.get('readers'))} readers of one group through "
               f"{num(m.get('read_messages'))} messages", {}),
    ("presence", "Presence storm", "cycles_per_s", "connect/disconnect cycles/s", 0,
     lambda m: f"LoadGen `ws-presence`, {num(m.get('presence_members'))} members flapping, "
               f"{num(m.get('presence_observers'))} observers (each member's PRESENCE at most one per "
               f"{PRESENCE_INTERVAL_S} s, + 1, checked)", {"latency": False}),
    ("resume", "resume of the missed events, median", "resume_ms_median", "ms", 1,
     lambda m: f"LoadGen `ws-resume`, {num(m.get('resume_events'))} missed events, {num(m.get('resume_rounds'))} "
               "rounds (every event received, checked)", {}),
    ("limits_rest", "REST write with the rate limits on", "msgs_per_s", "msgs/s", 0,
     lambda m: f"the REST write load on a stack with every `RATE_*` on at rates no run reaches (each send "
               "takes its token from the shared bucket in its transaction)", {}),
    ("limits_ingest", "WS ingest with the rate limits on", "msgs_per_s", "msgs/s", 0,
     lambda m: "the WS ingest load on the same rate-limited stack", {}),
)
BACKENDS = ("sqlite", "postgres")


def backend_loadgen_runs(work, meta, kind, field, paced=False, latency=True):
    """The LoadGen runs of one load on each backend, every round: ({backend: [(figure, p99,
    the stack's cores)]}, {backend: problems})."""
    runs = {b: [] for b in BACKENDS}
    problems = {b: [] for b in BACKENDS}
    for round_ in range(1, (meta.get("backends_rounds") or 0) + 1):
        for backend in BACKENDS:
            name = f"backend_{backend}_{kind}_{round_}"
            run, run_problems = loadgen_run(work, name, latency=latency, paced=paced)
            if kind.endswith("rest"):
                run_problems += database_problems(work, name, run)
            if run and kind == "resume" and run.get("received") != (run.get("events") or 0) * (run.get("rounds") or 0):
                run_problems.append(f"{name}: {run.get('received')} events received of "
                                    f"{(run.get('events') or 0) * (run.get('rounds') or 0)} missed")
            if run and kind == "presence":
                bound = int((run.get("duration_s") or 0) // PRESENCE_INTERVAL_S) + 1
                if (run.get("presence_per_user_max") or 0) > bound:
                    run_problems.append(f"{name}: {run['presence_per_user_max']} PRESENCE from one member, "
                                        f"more than the {bound} the {PRESENCE_INTERVAL_S} s rule allows")
                if (run.get("presence_heard_of_min") or 0) < (run.get("members") or 0):
                    run_problems.append(f"{name}: an observer heard of {num(run.get('presence_heard_of_min'))} "
                                        f"of {num(run.get('members'))} members")
            problems[backend] += run_problems
            if run and run.get(field) is not None:
                runs[backend].append((run[field], run.get("p99_ms"), stack_cores(run)))
    return runs, problems


def backend_wrk_runs(work, meta):
    """REST read (wrk on `GET /users/:id`) on each backend, every round, as backend_loadgen_runs."""
    runs = {b: [] for b in BACKENDS}
    problems = {b: [] for b in BACKENDS}
    for round_ in range(1, (meta.get("backends_rounds") or 0) + 1):
        for backend in BACKENDS:
            name = f"backend_{backend}_rest_read_{round_}"
            result = wrk_result(f"{work}/{name}.txt")
            problems[backend] += status_problems(name, f"{work}/{name}.rc")
            if result is None:
                problems[backend].append(f"{name}: missing or unparsable")
                continue
            if not result["requests"]:
                problems[backend].append(f"{name}: no requests")
            if result["errors"]:
                problems[backend].append(f"{name}: {result['errors']} errors")
            cpu = cpu_between(f"{work}/{name}.cpu0", f"{work}/{name}.cpu1")
            stack = [cpu[p] for p in ("FCGIApp", "WSRelay") if cpu.get(p) is not None]
            runs[backend].append((result["rps"], result["p99_ms"], sum(stack) if stack else None))
    return runs, problems


def backend_idle_runs(work, meta):
    """Idle sockets on each backend: WSRelay's RSS per open socket, in KB."""
    runs = {b: [] for b in BACKENDS}
    problems = {b: [] for b in BACKENDS}
    for round_ in range(1, (meta.get("backends_rounds") or 0) + 1):
        for backend in BACKENDS:
            name = f"backend_{backend}_idle_{round_}"
            run, run_problems = loadgen_run(work, name)
            rss = load_json(f"{work}/{name}_rss.json")
            sockets = value(run, "open_at_end")
            if run and sockets != meta.get("idle_sockets"):
                run_problems.append(f"{name}: {num(sockets)} of {num(meta.get('idle_sockets'))} sockets open at the end")
            if not rss or not rss.get("rss_with_kb"):
                run_problems.append(f"{name}: no RSS sample with the sockets open")
            elif rss.get("relay_restarted"):
                run_problems.append(f"{name}: the relay restarted during the run")
            problems[backend] += run_problems
            if not run_problems and sockets:
                runs[backend].append(((rss["rss_with_kb"] - rss["rss_before_kb"]) / sockets, None, stack_cores(run)))
    return runs, problems


def backend_upload_runs(work, meta):
    """Uploads of 50 MiB on each backend: MB/s of each that stored every byte with a 200."""
    runs = {b: [] for b in BACKENDS}
    problems = {b: [] for b in BACKENDS}
    expected = meta.get("backends_uploads") or 0
    for round_ in range(1, (meta.get("backends_rounds") or 0) + 1):
        for backend in BACKENDS:
            name = f"backend_{backend}_upload_{round_}"
            try:
                with open(f"{work}/{name}.txt") as f:
                    uploads = [line.split() for line in f if line.strip()]
            except OSError:
                uploads = []
            ok = [u for u in uploads if len(u) == 5 and u[2] == "200" and float(u[1]) > 0]
            if len(ok) != expected:
                problems[backend].append(f"{name}: {len(ok)} of {expected} uploads stored every byte with a 200")
            runs[backend] += [(int(u[0]) / float(u[1]) / 1e6, None, None) for u in ok]
    return runs, problems


def backend_row(meta, label, unit, digits, runs, problems, load):
    """PostgreSQL against SQLite for one load: mean figure (a time's mean too), worst p99, mean
    cores of FCGIApp + WSRelay, each run's figure."""
    mean = lambda b, i: (statistics.mean(r[i] for r in runs[b] if r[i] is not None)
                         if any(r[i] is not None for r in runs[b]) else None)
    figure = {b: mean(b, 0) for b in BACKENDS}
    p99 = {b: max((r[1] for r in runs[b] if r[1] is not None), default=None) for b in BACKENDS}
    cpu = {b: mean(b, 2) for b in BACKENDS}
    ratio = figure["postgres"] / figure["sqlite"] if figure["postgres"] and figure["sqlite"] else None

    def text(b):
        parts = [f"p99 {num(p99[b], 2)} ms"] if unit != "ms" and p99[b] is not None else []
        if cpu[b] is not None:
            parts.append(f"the stack's processes {num(cpu[b], 2)} cores")
        return f"{num(figure[b], digits)} {unit}" + (f" ({'; '.join(parts)})" if parts else "")

    each = lambda b: ", ".join(num(r[0], digits) for r in runs[b])
    expected = meta.get("backends_rounds") or 0
    direction = ("lower is better: a ratio above 1 is PostgreSQL behind" if unit == "ms" or unit.startswith("KB")
                 else "a ratio below 1 is PostgreSQL behind")
    return Row(
        f"PostgreSQL: {label}", text("postgres"), text("sqlite") + " on SQLite", ratio, "—", REFERENCE,
        f"{load(meta)}, as in the full run, on a stack with `DATABASE_URL=postgres://…` (a throwaway cluster on "
        f"this machine, over its Unix socket, `synchronous_commit=off`) and one on SQLite "
        f"(`DB_SYNCHRONOUS=normal`), each round on fresh databases, alternated {expected} round(s), SQLite first; "
        f"mean figure, worst p99, mean CPU of FCGIApp + WSRelay (PostgreSQL's own server processes are not in "
        f"it); the ratio is PostgreSQL's figure ÷ SQLite's ({direction}). PostgreSQL: {each('postgres')}; "
        f"SQLite: {each('sqlite')}.",
        ([] if expected else ["meta.json: no backends_rounds"]) + problems["postgres"]
        + as_baseline(problems["sqlite"]))


def backends_rows(work, meta):
    """Every row the database takes part in, on a stack on PostgreSQL and one on SQLite,
    alternated in rounds: PostgreSQL against SQLite. Reference rows: the issue sets no bar for
    PostgreSQL on one machine, where it pays a round trip per statement that SQLite, in the
    process, does not; the rows say what that costs."""
    rows = [
        backend_row(meta, f"Idle: {num(meta.get('idle_sockets'))} authenticated sockets", "KB/conn WSRelay RSS", 1,
                    *backend_idle_runs(work, meta),
                    lambda m: "LoadGen `ws-idle` through nginx, WSRelay's VmRSS with the sockets open less before, "
                              "÷ open sockets, first on a fresh relay"),
        backend_row(meta, "REST read: `GET /users/:id`", "requests/s", 0, *backend_wrk_runs(work, meta),
                    lambda m: f"wrk -t2 -c{num(m.get('wrk_connections'))} for {m.get('wrk_seconds')} s (the token "
                              "checked and the user read on every request)"),
    ]
    for kind, label, field, unit, digits, load, options in BACKEND_LOADS:
        runs, problems = backend_loadgen_runs(work, meta, kind, field, **options)
        rows.append(backend_row(meta, label, unit, digits, runs, problems, load))
        if kind == "rest":
            rows.append(backend_row(meta, "Upload: one 50 MiB file through nginx", "MB/s", 1,
                                    *backend_upload_runs(work, meta),
                                    lambda m: f"{num(m.get('backends_uploads'))} multipart `POST /upload`s of 50 MiB "
                                              "per stack with curl, each stored whole (checked)"))
    return rows


def postgres_relays_row(work, meta):
    """WS fan-out on PostgreSQL with two relays against one (each round's one-relay run is the
    PostgreSQL fan-out of `backends_rows`): deliveries/s and the relays' CPU per delivery. A
    reference row, as on SQLite: two cores cannot make a second relay a speed-up."""
    expected = meta.get("backends_rounds") or 0
    rounds = range(1, expected + 1)
    _, rate, per_delivery, _, problems = relay_fanout(
        work, {1: [f"backend_postgres_fanout_{r}" for r in rounds], 2: [f"backend_postgres_relays_fanout_{r}" for r in rounds]})
    ratio = rate[2] / rate[1] if rate[1] and rate[2] else None
    value = lambda n: f"{num(rate[n])} deliveries/s, relays' CPU {num(per_delivery[n], 2)} µs per delivery"
    return Row(
        "PostgreSQL, 2 relays: WS fan-out", value(2), value(1) + " with one relay", ratio, "—", REFERENCE,
        f"LoadGen `ws-fanout` to {num(meta.get('fanout_members'))} members on PostgreSQL, a stack with "
        f"RELAY_INSTANCES=2 (nginx spreads the sockets; each relay hears the other's commits as NOTIFY "
        f"messenger_events and reads them) against the one-relay PostgreSQL stack of the same round, "
        f"{expected} round(s); the relays' CPU summed over both. On {meta.get('nproc')} cores a second relay "
        f"adds work, it cannot add cores.",
        ([] if expected else ["meta.json: no backends_rounds"]) + problems[2] + as_baseline(problems[1]))


def stack_cores(run):
    return cores(run, "FCGIApp", "WSRelay")


def ingest_runs(work):
    """The flat-out WS ingest runs that parsed, in order (`ingest_1.json`, `ingest_2.json`, …)."""
    paths = sorted(glob.glob(f"{work}/ingest_[0-9]*.json"), key=lambda p: int(p.rsplit("_", 1)[1][:-5]))
    return [run for run in (load_json(path) for path in paths) if run]


def cpu_table(work):
    """(scenario, {process: cores}) for every measured load."""
    table = []
    for name, label in (("rest_write", "REST write"), ("ingest", "WS ingest (last run)"), ("fanout", "WS fan-out"),
                        ("latency", "WS latency"), ("reactions", "WS reactions"), ("chat_list", "GET /chats?v=2"), ("reads", "READ ops"),
                        ("presence", "Presence storm"), ("idle", "Idle (hold)")):
        result = (ingest_runs(work) or [None])[-1] if name == "ingest" else load_json(f"{work}/{name}.json")
        if result:
            cpu = {"generator": result.get("loadgen_cpu")}
            cpu.update({k[4:]: v for k, v in result.items() if k.startswith("cpu_")})
            table.append((label, cpu))
    for relays in (1, 2):
        runs = sorted(glob.glob(f"{work}/relays_{relays}_[0-9]*.json"))
        result = load_json(runs[-1]) if runs else None
        if result:
            cpu = {"generator": result.get("loadgen_cpu")}
            for key, cores in result.items():
                if key.startswith("cpu_WSRelay") and cores is not None:
                    cpu["WSRelay"] = cpu.get("WSRelay", 0) + cores  # both relays, summed
                elif key.startswith("cpu_"):
                    cpu[key[4:]] = cores
            table.append((f"WS fan-out, {relays} relay{'s' if relays > 1 else ''} (last round)", cpu))
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
    arguments = sys.argv[1:]
    durability_only = arguments[:1] == ["--durability"]
    relays_only = arguments[:1] == ["--relays"]
    backends_only = arguments[:1] == ["--backends"]
    if durability_only or relays_only or backends_only:
        arguments = arguments[1:]
    if len(arguments) != 2:
        print(__doc__, file=sys.stderr)
        return 64
    work, report_path = arguments
    meta = load_json(f"{work}/meta.json") or {}
    if durability_only:
        rows = durability_rows(work, meta)
    elif relays_only:
        rows = relays_rows(work, meta)
    elif backends_only:
        rows = backends_rows(work, meta) + [postgres_relays_row(work, meta)]
    else:
        rows = build_rows(work, meta) + durability_rows(work, meta) + relays_rows(work, meta)
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
