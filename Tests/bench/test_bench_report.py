"""bench_report.py must not PASS a row whose run measured nothing, broke, or lost messages.

A complete, clean set of raw results passes every bar; each test then breaks one thing the
way a real run can (a missing or truncated file, a LoadGen that exited non-zero, an empty
histogram, lost or duplicated messages, a rate not reached) and expects FAIL on the rows
that rest on it.
"""
import json
import os
import subprocess
import sys

import pytest

LIB = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "lib")
sys.path.insert(0, LIB)
import bench_report  # noqa: E402

META = {
    "command": "./scripts/bench", "mode": "full", "nproc": 2, "duration": 10, "warmup": 2, "wrk_seconds": 10,
    "rounds": 2, "ingest_rounds": 3, "uploads": 2, "idle_sockets": 100, "ingest_users": 200, "fanout_members": 100,
    "rest_connections": 16, "rest_reference_connections": 64, "wrk_connections": 64, "ingest_window": 4,
    "latency_rate": 50.0, "ingest_paced_rate": 10000, "fanout_bar": 100000, "upload_bytes": 52428800,
    "reactors": 16, "readers": 20, "list_chats": 2000, "list_few_chats": 10, "presence_members": 100, "presence_observers": 2,
    "limit_rounds": 2,
}
WRK = """Running 10s test @ http://127.0.0.1:1/users/1
  2 threads and 64 connections
  Latency Distribution
     50%    1.00ms
     99%    {p99}ms
  {requests} requests in 10.00s, 30.00MB read
Requests/sec:  {rps}
"""
INGEST = {"scenario": "ws-ingest", "users": 200, "chats": 100, "sockets": 200, "window": 4, "target_rate": 0,
          "duration_s": 10.0, "sent": 300000, "acked": 300000, "msgs_per_s": 30000, "deliveries_per_s": 60000,
          "samples": 300000, "p50_ms": 20.0, "p90_ms": 30.0, "p99_ms": 40.0, "p999_ms": 45.0, "max_ms": 50.0,
          "skipped": 0, "lost": 0, "duplicates": 0, "unknown": 0, "gaps": 0, "protocol_errors": 0, "errors": 0,
          "connect_failures": 0}
FANOUT = {"scenario": "ws-fanout", "members": 100, "sockets": 100, "window": 16, "target_rate": 0,
          "duration_s": 10.0, "sent": 3000, "msgs_per_s": 300.0, "deliveries_per_s": 200000, "samples": 3000,
          "p50_ms": 10.0, "p90_ms": 15.0, "p99_ms": 20.0, "p999_ms": 22.0, "max_ms": 23.0, "skipped": 0, "lost": 0,
          "duplicates": 0, "unknown": 0, "gaps": 0, "protocol_errors": 0, "errors": 0, "connect_failures": 0}
REST = {"scenario": "rest-write", "connections": 16, "target_rate": 0, "duration_s": 10.0, "sent": 80000,
        "committed": 80000, "committed_total": 96000, "msgs_per_s": 8000, "samples": 80000, "p50_ms": 2.0,
        "p90_ms": 4.0, "p99_ms": 8.0, "p999_ms": 9.0, "max_ms": 10.0, "errors": 0}

REACTIONS = dict(FANOUT, scenario="ws-reactions", reactors=16, msgs_per_s=1200.0, deliveries_per_s=120000,
                 p99_ms=40.0)
del REACTIONS["window"]
CHAT_LIST = {"scenario": "rest-chat-list", "chats": 2000, "few_chats": 10, "duration_s": 10.0, "sent": 1000,
             "lists_per_s": 100.0, "bytes": 700000, "samples": 1000, "p50_ms": 5.0, "p90_ms": 6.0, "p99_ms": 8.0,
             "few_lists_per_s": 100.0, "few_bytes": 3500, "few_samples": 1000, "few_p50_ms": 4.0, "few_p90_ms": 4.5,
             "few_p99_ms": 5.0, "page": 50, "page_bytes": 17500, "page_samples": 1000,
             "page_p50_ms": 4.2, "page_p90_ms": 4.8, "page_p99_ms": 6.0, "errors": 0}
READS = {"scenario": "ws-read", "readers": 20, "messages": 5000, "window": 4, "duration_s": 10.0, "sent": 12000,
         "reads": 12000, "reads_per_s": 1200, "deliveries_per_s": 22800, "samples": 12000, "p50_ms": 60.0,
         "p99_ms": 110.0, "exhausted": 0, "lost": 0, "duplicates": 0, "unknown": 0, "gaps": 0, "protocol_errors": 0,
         "errors": 0, "connect_failures": 0}
PRESENCE = {"scenario": "ws-presence", "members": 100, "observers": 2, "duration_s": 10.0, "cycles": 5000,
            "cycles_per_s": 500.0, "samples": 5000, "p50_ms": 20.0, "p99_ms": 90.0, "presence_frames": 2000,
            "presence_per_observer_per_user": 2.0, "presence_per_user_max": 3, "presence_heard_of_min": 100,
            "protocol_errors": 0, "errors": 0, "connect_failures": 0, "cpu_WSRelay": 0.8}


def good_results(work):
    """Every raw file scripts/bench writes, for a clean run that meets every bar."""
    def write(name, content):
        with open(os.path.join(work, name), "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content) + "\n")

    write("meta.json", META)
    for round_ in (1, 2):
        for target, rps in (("static", 40000), ("app", 20000), ("floor", 21000)):
            write(f"wrk_{target}_{round_}.txt", WRK.format(p99="5.00", requests=rps * 10, rps=rps))
            write(f"wrk_{target}_{round_}.rc", "0\n")
    loadgen = {
        "rest_write": REST, "rest_write_reference": dict(REST, connections=64, p99_ms=25.0),
        "ingest_1": INGEST, "ingest_2": INGEST, "ingest_3": INGEST, "ingest_floor": dict(INGEST, msgs_per_s=33000),
        "ingest_stop_and_wait": dict(INGEST, window=1), "ingest_stop_and_wait_floor": dict(INGEST, window=1),
        "ingest_paced": dict(INGEST, window=1, target_rate=10000, msgs_per_s=9999, p99_ms=20.0, acked=99990,
                             samples=99990),
        "fanout": FANOUT,
        "ingest_v2_1": INGEST, "ingest_v2_2": INGEST, "ingest_v2_3": dict(INGEST, msgs_per_s=29000),
        "fanout_v2": dict(FANOUT, deliveries_per_s=190000),
        "resume": {"scenario": "ws-resume", "events": 10000, "rounds": 5, "received": 50000, "samples": 5,
                   "errors": 0, "resume_ms_median": 80.0, "resume_ms_max": 120.0},
        "latency": dict(FANOUT, target_rate=50, msgs_per_s=50.0, deliveries_per_s=5000, p99_ms=20.0, samples=500),
        "latency_floor": dict(FANOUT, target_rate=50, msgs_per_s=50.0, deliveries_per_s=5000, samples=500),
        "reactions": REACTIONS, "chat_list": CHAT_LIST, "presence": PRESENCE, "reads": READS,
        "idle": {"scenario": "ws-idle", "sockets": 100, "open_at_end": 100, "connect_failures": 0, "errors": 0,
                 "protocol_errors": 0},
    }
    for round_ in (1, 2):
        loadgen[f"limits_rest_off_{round_}"] = REST
        loadgen[f"limits_rest_on_{round_}"] = dict(REST, msgs_per_s=7800)
        loadgen[f"limits_ingest_off_{round_}"] = INGEST
        loadgen[f"limits_ingest_on_{round_}"] = dict(INGEST, msgs_per_s=29000)
    for name, result in loadgen.items():
        write(f"{name}.json", result)
        write(f"{name}.rc", "0\n")
    write("rest_write_db.json", {"mode": "count", "prefix": "rwbar", "rows": 96000})
    write("rest_write_reference_db.json", {"mode": "count", "prefix": "rwref", "rows": 96000})
    write("sqlite_single.json", {"mode": "single", "rows_per_s": 16000})
    write("sqlite_batch.json", {"mode": "batch", "rows_per_s": 55000})
    write("idle_rss.json", {"relay_pid": 1, "rss_before_kb": 20000, "rss_with_kb": 21000, "relay_restarted": False})
    write("upload.txt", "52428800 0.09 200 40000 40300\n52428800 0.10 200 40300 40500\n")
    write("cp.txt", "52428800 0.03\n52428800 0.03\n")


def results(work):
    meta = bench_report.load_json(os.path.join(work, "meta.json")) or {}
    return {row.figure: row for row in bench_report.build_rows(work, meta)}


def bars(rows):
    return {figure: row for figure, row in rows.items() if not row.is_reference}


def edit_json(work, name, **fields):
    path = os.path.join(work, name)
    with open(path) as f:
        result = json.load(f)
    result.update(fields)
    with open(path, "w") as f:
        json.dump(result, f)


def row(rows, prefix):
    matches = [r for figure, r in rows.items() if figure.startswith(prefix)]
    assert len(matches) == 1, (prefix, list(rows))
    return matches[0]


@pytest.fixture
def work(tmp_path):
    good_results(str(tmp_path))
    return str(tmp_path)


def test_a_clean_run_passes_every_bar(work):
    rows = results(work)
    assert {f: r.result for f, r in bars(rows).items() if r.result != "PASS"} == {}
    assert all(r.result == "—" for r in rows.values() if r.is_reference)


def test_no_raw_results_at_all_fail_every_bar(tmp_path):
    rows = results(str(tmp_path))
    assert rows and all(r.result.startswith("FAIL") for r in bars(rows).values())


def test_the_report_of_an_empty_run_says_fail(tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run([sys.executable, os.path.join(LIB, "bench_report.py"), str(work), str(report)],
                         capture_output=True, text=True, check=True).stdout
    assert "FAIL:" in out and "PASS: all" not in out
    assert "**PASS**" not in report.read_text()


def test_paced_ingest_that_acknowledged_nothing_fails(work):
    # The case: an empty histogram reads p99 0.00 ms, which is < 50 ms.
    edit_json(work, "ingest_paced.json", acked=0, msgs_per_s=0, samples=0, skipped=80000, p50_ms=0.0, p99_ms=0.0)
    result = row(results(work), "WS ingest: p99").result
    assert result.startswith("FAIL") and "no latency samples" in result and "skipped" in result


@pytest.mark.parametrize("name, prefix", [
    ("ingest_paced.json", "WS ingest: p99"),
    ("latency.json", "WS latency"),
])
def test_a_rate_not_reached_fails(work, name, prefix):
    target = json.load(open(os.path.join(work, name)))["target_rate"]
    edit_json(work, name, msgs_per_s=0.9 * target)
    assert "achieved" in row(results(work), prefix).result


@pytest.mark.parametrize("name, prefix", [
    ("ingest_2.json", "WS ingest: 200 users"),
    ("rest_write.json", "REST write: `POST"),
    ("fanout.json", "WS fan-out"),
    ("latency.json", "WS latency"),
    ("idle.json", "Idle"),
    ("ingest_floor.json", "WS ingest: 200 users"),
    ("latency_floor.json", "WS latency"),
    ("sqlite_single.json", "REST write: `POST"),
    ("reactions.json", "WS reactions: one hot"),
    ("fanout.json", "WS reactions: one hot"),
    ("chat_list.json", "`GET /chats?v=2`:"),
    ("chat_list.json", "`GET /chats?v=2&limit"),
    ("presence.json", "Presence storm"),
])
@pytest.mark.parametrize("damage", ["missing", "empty", "truncated"])
def test_a_missing_or_unparsable_result_fails(work, name, prefix, damage):
    path = os.path.join(work, name)
    if damage == "missing":
        os.remove(path)
    else:
        text = open(path).read()
        open(path, "w").write("" if damage == "empty" else text[: len(text) // 2])
    assert row(results(work), prefix).result.startswith("FAIL")


@pytest.mark.parametrize("name, prefix", [
    ("fanout", "WS fan-out"),
    ("ingest_3", "WS ingest: 200 users"),
    ("rest_write", "REST write: p99"),
    ("idle", "Idle"),
    ("wrk_app_2", "REST read: `GET"),
    ("reactions", "WS reactions: one hot"),
    ("chat_list", "`GET /chats?v=2`:"),
    ("chat_list", "`GET /chats?v=2&limit"),
    ("presence", "Presence storm"),
])
@pytest.mark.parametrize("status", ["1\n", None])
def test_a_run_that_failed_or_has_no_exit_status_fails(work, name, prefix, status):
    path = os.path.join(work, f"{name}.rc")
    if status is None:
        os.remove(path)
    else:
        open(path, "w").write(status)
    assert row(results(work), prefix).result.startswith("FAIL")


def test_a_missing_round_fails_instead_of_leaving_the_mean(work):
    os.remove(os.path.join(work, "ingest_3.json"))
    ingest = row(results(work), "WS ingest: 200 users")
    assert ingest.result.startswith("FAIL") and "ingest_3" in ingest.result
    assert "2 of 3 run(s)" in ingest.how


@pytest.mark.parametrize("target, prefix", [("app", "REST read: `GET"), ("static", "REST read: `GET"),
                                            ("app", "REST read: p99")])
def test_an_unparsable_wrk_round_fails(work, target, prefix):
    open(os.path.join(work, f"wrk_{target}_2.txt"), "w").write("unable to connect to 127.0.0.1:1\n")
    assert row(results(work), prefix).result.startswith("FAIL")


@pytest.mark.parametrize("name, field, prefix", [
    ("ingest_1.json", "lost", "WS ingest: 200 users"),
    ("ingest_1.json", "duplicates", "WS ingest: 200 users"),
    ("ingest_1.json", "unknown", "WS ingest: 200 users"),
    ("fanout.json", "gaps", "WS fan-out"),
    ("fanout.json", "duplicates", "WS fan-out"),
    ("fanout.json", "lost", "WS fan-out"),
    ("fanout.json", "protocol_errors", "WS fan-out"),
    ("latency.json", "gaps", "WS latency"),
    ("rest_write.json", "errors", "REST write: p99"),
    ("reactions.json", "lost", "WS reactions: one hot"),
    ("reactions.json", "gaps", "WS reactions: one hot"),
    ("reactions.json", "duplicates", "WS reactions: one hot"),
    ("reactions.json", "unknown", "WS reactions: one hot"),
    ("chat_list.json", "errors", "`GET /chats?v=2`:"),
    ("chat_list.json", "errors", "`GET /chats?v=2&limit"),
    ("presence.json", "errors", "Presence storm"),
    ("presence.json", "connect_failures", "Presence storm"),
])
def test_lost_or_duplicated_messages_fail(work, name, field, prefix):
    edit_json(work, name, **{field: 3})
    assert f"3 {field.replace('_', ' ')}" in row(results(work), prefix).result


@pytest.mark.parametrize("name, field", [("fanout.json", "gaps"), ("ingest_1.json", "lost"),
                                         ("rest_write.json", "committed_total"), ("latency.json", "samples")])
def test_a_result_without_a_field_it_must_report_fails(work, name, field):
    path = os.path.join(work, name)
    result = json.load(open(path))
    del result[field]
    json.dump(result, open(path, "w"))
    assert row(results(work), {"fanout.json": "WS fan-out", "ingest_1.json": "WS ingest: 200 users",
                               "rest_write.json": "REST write: `POST", "latency.json": "WS latency"}[name]
               ).result.startswith("FAIL")


def test_database_rows_must_match_the_200s(work):
    edit_json(work, "rest_write_db.json", rows=95999)
    assert "rows in the database" in row(results(work), "REST write: `POST").result
    os.remove(os.path.join(work, "rest_write_db.json"))
    assert "row count missing" in row(results(work), "REST write: `POST").result


def test_missing_uploads_fail(work):
    open(os.path.join(work, "upload.txt"), "w").write("52428800 0.09 200 40000 40300\n")
    assert row(results(work), "Upload: one").result.startswith("FAIL")
    assert row(results(work), "Upload: FCGIApp").result.startswith("FAIL")


def test_idle_sockets_that_did_not_stay_open_fail(work):
    edit_json(work, "idle.json", open_at_end=90)
    assert row(results(work), "Idle").result.startswith("FAIL")


def test_published_baselines_say_so(work):
    rows = results(work)
    for prefix in ("WS fan-out", "Idle"):
        r = row(rows, prefix)
        assert r.ratio.endswith("vs published") and "centrifugal.dev" in r.how


def test_protocol_2_must_stay_within_a_tenth_of_protocol_1(work):
    for round_ in (1, 2, 3):
        edit_json(work, f"ingest_v2_{round_}.json", msgs_per_s=25000)
    edit_json(work, "fanout_v2.json", deliveries_per_s=150000)
    rows = results(work)
    assert row(rows, "Protocol 2: WS ingest").result == "FAIL"
    assert row(rows, "Protocol 2: WS fan-out").result == "FAIL"


def test_a_missing_protocol_2_round_fails(work):
    os.remove(os.path.join(work, "ingest_v2_2.json"))
    assert row(results(work), "Protocol 2: WS ingest").result.startswith("FAIL (ingest_v2_2: no result")


@pytest.mark.parametrize("fields", [{"received": 49999}, {"errors": 1}, {"samples": 0}, {"resume_ms_median": 250.0}])
def test_a_resume_that_missed_events_or_was_slow_fails(work, fields):
    edit_json(work, "resume.json", **fields)
    assert row(results(work), "Protocol 2: resume").result.startswith("FAIL")


def test_reactions_below_half_the_message_fan_out_fail(work):
    edit_json(work, "reactions.json", deliveries_per_s=99999)
    assert row(results(work), "WS reactions: one hot").result == "FAIL"


@pytest.mark.parametrize("fields", [{"samples": 0}, {"msgs_per_s": 0}, {"sockets": 900}])
def test_reactions_that_measured_nothing_or_missed_members_fail(work, fields):
    edit_json(work, "reactions.json", **fields)
    assert row(results(work), "WS reactions: one hot").result.startswith("FAIL (")


@pytest.mark.parametrize("fields, prefix, reason", [
    ({"p99_ms": 20.0}, "`GET /chats?v=2`:", None),                 # the absolute bar on the whole list
    ({"page_p99_ms": 10.1}, "`GET /chats?v=2&limit", None),        # a first page over 2x the user in 10 chats
    ({"few_p99_ms": 2.9}, "`GET /chats?v=2&limit", None),          # the same from the other side
    ({"samples": 0}, "`GET /chats?v=2`:", "no latency samples"),
    ({"page_samples": 0}, "`GET /chats?v=2&limit", "first page"),
    ({"few_samples": 0}, "`GET /chats?v=2&limit", "baseline user"),
    ({"lists_per_s": 0}, "`GET /chats?v=2`:", "nothing answered"),
])
def test_a_slow_or_empty_chat_list_fails(work, fields, prefix, reason):
    edit_json(work, "chat_list.json", **fields)
    result = row(results(work), prefix).result
    assert result.startswith("FAIL") and (reason is None or reason in result)


def test_a_whole_list_slower_than_the_small_one_by_any_ratio_passes_under_the_absolute_bar(work):
    edit_json(work, "chat_list.json", p99_ms=19.0, few_p99_ms=1.0, page_p99_ms=1.5)
    rows = results(work)
    assert row(rows, "`GET /chats?v=2`:").result.startswith("PASS")
    assert row(rows, "`GET /chats?v=2&limit").result.startswith("PASS")


@pytest.mark.parametrize("fields, reason", [
    ({"presence_per_user_max": 4}, None),        # 10 s: at most 10 / 5 + 1 = 3
    ({"presence_heard_of_min": 99}, "heard of 99 of 100"),
    ({"cycles": 0}, "nothing answered"),
    ({"observers": 9}, "observers open"),
    ({"cycles": 150}, "too weak a storm"),     # 3 changes per member: no more than the 3 frames allowed
])
def test_a_presence_storm_over_the_rule_or_that_did_not_happen_fails(work, fields, reason):
    edit_json(work, "presence.json", **fields)
    result = row(results(work), "Presence storm").result
    assert result.startswith("FAIL") and (reason is None or reason in result)


def test_the_presence_bound_follows_the_measured_window(work):
    edit_json(work, "presence.json", duration_s=3.0, presence_per_user_max=2)
    storm = row(results(work), "Presence storm")
    assert storm.result == "FAIL" and storm.bar.startswith("≤ 1 ")


@pytest.mark.parametrize("fields, reason", [
    ({"exhausted": 2}, "ran out of messages"),
    ({"lost": 1}, "1 lost"),
    ({"unknown": 1}, "1 unknown"),
    ({"samples": 0}, "no latency samples"),
    ({"reads": 0}, "nothing answered"),
    ({"readers": 19}, "19 of 20 readers"),
])
def test_a_read_run_that_ran_dry_lost_reads_or_measured_nothing_is_not_valid(work, fields, reason):
    edit_json(work, "reads.json", **fields)
    result = row(results(work), "READ ops").result
    assert result.startswith("— (not valid") and reason in result


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_missing_read_run_is_not_valid(work, damage):
    path = os.path.join(work, "reads.json")
    if damage == "missing":
        os.remove(path)
    else:
        open(path, "w").write(open(path).read()[:20])
    assert row(results(work), "READ ops").result.startswith("— (not valid")


# --- DB_SYNCHRONOUS rows (scripts/bench --durability, and the full run) -------------------------

def durability_results(work, rounds=2, full_rest=7000, full_ingest=29000):
    def write(name, content):
        with open(os.path.join(work, name), "w") as f:
            f.write(json.dumps(content) + "\n")
    write("meta.json", dict(META, mode="durability", durability_rounds=rounds))
    for round_ in range(1, rounds + 1):
        for mode, rest_rate, ingest_rate in (("normal", 8000, 30000), ("full", full_rest, full_ingest)):
            write(f"sync_{mode}_rest_{round_}.json", dict(REST, msgs_per_s=rest_rate))
            write(f"sync_{mode}_rest_{round_}.rc", 0)
            write(f"sync_{mode}_rest_{round_}_db.json", {"mode": "count", "prefix": "x", "rows": 96000})
            write(f"sync_{mode}_ingest_{round_}.json", dict(INGEST, msgs_per_s=ingest_rate))
            write(f"sync_{mode}_ingest_{round_}.rc", 0)


def durability_rows(work):
    meta = bench_report.load_json(os.path.join(work, "meta.json")) or {}
    return {row.figure: row for row in bench_report.durability_rows(work, meta)}


def test_durability_rows_pass_when_full_keeps_most_of_normal(tmp_path):
    durability_results(str(tmp_path))
    rows = durability_rows(str(tmp_path))
    assert [r.result for r in rows.values()] == ["PASS", "PASS"]
    assert row(rows, "DB_SYNCHRONOUS=full: REST write").ratio == "0.88"


def test_durability_rows_fail_below_the_bar_and_on_broken_runs(tmp_path):
    work = str(tmp_path)
    durability_results(work, full_rest=6000)
    assert row(durability_rows(work), "DB_SYNCHRONOUS=full: REST write").result == "FAIL"
    durability_results(work)
    edit_json(work, "sync_normal_rest_2_db.json", rows=95999)
    assert row(durability_rows(work), "DB_SYNCHRONOUS=full: REST write").result.startswith("FAIL (baseline")
    durability_results(work)
    os.unlink(os.path.join(work, "sync_full_ingest_1.json"))
    assert row(durability_rows(work), "DB_SYNCHRONOUS=full: WS ingest").result.startswith("FAIL")
    durability_results(work)
    edit_json(work, "sync_full_ingest_2.json", lost=3)
    assert row(durability_rows(work), "DB_SYNCHRONOUS=full: WS ingest").result.startswith("FAIL")


def test_no_durability_results_fail_both_rows(tmp_path):
    rows = durability_rows(str(tmp_path))
    assert len(rows) == 2 and all(r.result.startswith("FAIL") for r in rows.values())


@pytest.mark.parametrize("kind,prefix", [("rest", "Rate limits on: REST write"), ("ingest", "Rate limits on: WS ingest")])
def test_limits_costing_more_than_five_percent_or_missing_fail(work, kind, prefix):
    assert row(results(work), prefix).result == "PASS"
    edit_json(work, f"limits_{kind}_on_2.json", msgs_per_s=1000)
    assert row(results(work), prefix).result == "FAIL"
    edit_json(work, f"limits_{kind}_on_2.json", msgs_per_s=29000 if kind == "ingest" else 7800)
    os.remove(os.path.join(work, f"limits_{kind}_off_1.json"))
    assert row(results(work), prefix).result.startswith("FAIL (")


# --- one relay against two (scripts/bench --relays, and the full run) ---------------------------

def relays_results(work, rounds=2, two_rate=150000):
    def write(name, content):
        with open(os.path.join(work, name), "w") as f:
            f.write(json.dumps(content) + "\n")
    write("meta.json", dict(META, mode="relays", relays_rounds=rounds))
    for round_ in range(1, rounds + 1):
        write(f"relays_1_{round_}.json", dict(FANOUT, deliveries_per_s=200000, cpu_WSRelay=1.0))
        write(f"relays_1_{round_}.rc", 0)
        write(f"relays_2_{round_}.json", dict(FANOUT, deliveries_per_s=two_rate, **{"cpu_WSRelay-1": 0.6,
                                                                                     "cpu_WSRelay-2": 0.6}))
        write(f"relays_2_{round_}.rc", 0)


def relays_row(work):
    meta = bench_report.load_json(os.path.join(work, "meta.json")) or {}
    rows = bench_report.relays_rows(work, meta)
    assert len(rows) == 1 and rows[0].is_reference
    return rows[0]


def test_the_relays_row_sums_both_relays_cpu_per_delivery(tmp_path):
    relays_results(str(tmp_path))
    r = relays_row(str(tmp_path))
    assert r.result == "—" and r.ratio == "0.75"
    assert "5.00 µs per delivery" in r.baseline   # 1.0 core / 200,000 per s
    assert "8.00 µs per delivery" in r.value      # 1.2 cores / 150,000 per s
    assert "two ÷ one: 1.60" in r.how


def test_a_broken_or_missing_relays_run_makes_the_row_not_valid(tmp_path):
    work = str(tmp_path)
    relays_results(work)
    edit_json(work, "relays_2_1.json", lost=2)
    assert relays_row(work).result.startswith("— (not valid")
    relays_results(work)
    os.unlink(os.path.join(work, "relays_1_2.json"))
    assert relays_row(work).result.startswith("— (not valid")
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert relays_row(str(empty)).result.startswith("— (not valid")


# --- PostgreSQL beside SQLite (scripts/bench --backend postgres) ---------------------------------

IDLE = {"scenario": "ws-idle", "sockets": 100, "open_at_end": 100, "connect_failures": 0, "errors": 0,
        "protocol_errors": 0}
RESUME = {"scenario": "ws-resume", "events": 10000, "rounds": 5, "received": 50000, "samples": 5, "errors": 0,
          "resume_ms_median": 80.0, "resume_ms_max": 120.0}
BACKEND_RUNS = {
    "rest": REST, "ingest": INGEST, "ingest_v2": INGEST,
    "ingest_paced": dict(INGEST, window=1, target_rate=500, msgs_per_s=499, acked=4990, samples=4990),
    "fanout": FANOUT, "fanout_v2": FANOUT,
    "latency": dict(FANOUT, target_rate=50, msgs_per_s=50.0, deliveries_per_s=5000, samples=500),
    "reactions": REACTIONS, "chat_list": CHAT_LIST, "reads": READS, "presence": PRESENCE, "resume": RESUME,
    "limits_rest": REST, "limits_ingest": INGEST,
}
BACKENDS_META = dict(META, mode="backends", backends_uploads=2, backends_paced_rate=500, resume_events=10000,
                     resume_rounds=5)


def backends_results(work, rounds=2):
    """Every raw file scripts/bench --backend postgres writes, PostgreSQL at a quarter of SQLite's
    rate (four times its time) and 0.3 of its CPU."""
    def write(name, content):
        with open(os.path.join(work, name), "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content) + "\n")
    write("meta.json", dict(BACKENDS_META, backends_rounds=rounds))
    fields = {load[0]: load[2] for load in bench_report.BACKEND_LOADS}
    for round_ in range(1, rounds + 1):
        for backend, scale, cpu in (("sqlite", 1.0, 1.0), ("postgres", 0.25, 0.3)):
            name = lambda kind: f"backend_{backend}_{kind}_{round_}"
            for kind, run in BACKEND_RUNS.items():
                field = fields[kind]
                figure = run[field] / scale if field.endswith("_ms") or field.endswith("_ms_median") else run[field] * scale
                write(f"{name(kind)}.json", dict(run, **{field: figure, "cpu_FCGIApp": cpu / 2, "cpu_WSRelay": cpu / 2}))
                write(f"{name(kind)}.rc", 0)
            for kind in ("rest", "limits_rest"):
                write(f"{name(kind)}_db.json", {"mode": "count", "prefix": "rw", "rows": REST["committed_total"]})
            write(f"{name('idle')}.json", dict(IDLE, cpu_FCGIApp=cpu / 2, cpu_WSRelay=cpu / 2))
            write(f"{name('idle')}.rc", 0)
            write(f"{name('idle')}_rss.json", {"relay_pid": 1, "rss_before_kb": 20000,
                                               "rss_with_kb": 20000 + 1000 * scale, "relay_restarted": False})
            rps = 20000 * scale
            write(f"{name('rest_read')}.txt", WRK.format(p99="5.00", requests=int(rps * 10), rps=rps))
            write(f"{name('rest_read')}.rc", 0)
            write(f"{name('rest_read')}.cpu0", {"t": 0, "cpu": {"FCGIApp": 0, "WSRelay": 0},
                                                "pids": {"FCGIApp": 1, "WSRelay": 2}})
            write(f"{name('rest_read')}.cpu1", {"t": 10, "cpu": {"FCGIApp": cpu * 5, "WSRelay": cpu * 5},
                                                "pids": {"FCGIApp": 1, "WSRelay": 2}})
            write(f"{name('upload')}.txt", f"52428800 {0.1 / scale} 200 40000 40300\n" * 2)
        write(f"backend_postgres_relays_fanout_{round_}.json",
              dict(FANOUT, deliveries_per_s=FANOUT["deliveries_per_s"] * 0.2, **{"cpu_WSRelay-1": 0.3, "cpu_WSRelay-2": 0.3}))
        write(f"backend_postgres_relays_fanout_{round_}.rc", 0)


def backends_rows(work):
    meta = bench_report.load_json(os.path.join(work, "meta.json")) or {}
    rows = bench_report.backends_rows(work, meta)
    # The loads, the idle sockets, REST read and the upload.
    assert len(rows) == len(BACKEND_RUNS) + 3 and all(r.is_reference for r in rows)
    return rows


def test_every_backend_row_is_postgresql_against_sqlite_with_the_stacks_cpu(tmp_path):
    backends_results(str(tmp_path))
    for r in backends_rows(str(tmp_path)):
        slower = "4.00" if r.value.split(" (")[0].endswith(" ms") else "0.25"
        assert r.result == "—" and r.ratio == slower, (r.figure, r.ratio, r.result)
        if not r.figure.startswith("PostgreSQL: Upload"):
            assert "0.30 cores" in r.value and "1.00 cores" in r.baseline, (r.figure, r.value, r.baseline)


def test_a_broken_or_missing_backend_run_makes_its_row_not_valid(tmp_path):
    work = str(tmp_path)
    backends_results(work)
    edit_json(work, "backend_postgres_ingest_1.json", lost=2)
    os.unlink(os.path.join(work, "backend_sqlite_reads_2.json"))
    edit_json(work, "backend_postgres_ingest_paced_2.json", msgs_per_s=300)
    edit_json(work, "backend_postgres_presence_1.json", presence_per_user_max=9)
    edit_json(work, "backend_sqlite_resume_1.json", received=49999)
    edit_json(work, "backend_postgres_limits_rest_2_db.json", rows=1)
    edit_json(work, "backend_postgres_idle_1_rss.json", relay_restarted=True)
    with open(os.path.join(work, "backend_sqlite_upload_2.txt"), "w") as f:
        f.write("52428800 0.1 500 40000 40300\n52428800 0.1 200 40000 40300\n")
    with open(os.path.join(work, "backend_postgres_rest_read_1.txt"), "w") as f:
        f.write("unable to connect\n")
    rows = {r.figure: r for r in backends_rows(work)}
    broken = ("WS ingest", "READ ops", "WS ingest latency, p99", "Presence storm", "resume of the missed events, median",
              "REST write with the rate limits on", "Idle: 100 authenticated sockets",
              "Upload: one 50 MiB file through nginx", "REST read: `GET /users/:id`")
    for label in broken:
        assert rows[f"PostgreSQL: {label}"].result.startswith("— (not valid"), label
    assert all(r.result == "—" for figure, r in rows.items() if figure[len("PostgreSQL: "):] not in broken)
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert all(r.result.startswith("— (not valid") for r in backends_rows(str(empty)))


def test_the_postgresql_relays_row_is_two_relays_against_one(tmp_path):
    work = str(tmp_path)
    backends_results(work)
    meta = bench_report.load_json(os.path.join(work, "meta.json"))
    r = bench_report.postgres_relays_row(work, meta)
    assert r.is_reference and r.result == "—" and r.ratio == "0.80", (r.ratio, r.result)
    os.unlink(os.path.join(work, "backend_postgres_relays_fanout_1.json"))
    assert bench_report.postgres_relays_row(work, meta).result.startswith("— (not valid")
