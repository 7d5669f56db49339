#!/usr/bin/env python3
"""Small process helpers for scripts/bench.

  bench_proc.py free-port           a TCP port free on 0.0.0.0, below the ephemeral range
  bench_proc.py cpu NAME:PID,...     {"t": monotonic seconds, "cpu": {NAME: CPU seconds},
                                     "pids": {NAME: [PID...]}} (pids sharing a name are summed;
                                     a name with a vanished pid is left out of "cpu"; "machine"
                                     is the whole machine's busy time)
"""
import json
import os
import random
import socket
import sys
import time


def free_port() -> int:
    low, high = 32768, 60999
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        pass
    # Below the ephemeral range, so LoadGen's thousands of client ports never collide with it.
    candidates = list(range(20000, max(20001, min(low, 32768))))
    random.shuffle(candidates)
    for port in candidates[:200]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port found in 20000-%d" % low)


def cpu_seconds(pid: int):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """Seconds the whole machine spent busy: /proc/stat's cpu line minus idle and iowait."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "free-port":
        print(free_port())
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "cpu":
        total, pids, vanished = {}, {}, set()
        for item in filter(None, sys.argv[2].split(",")):
            name, _, pid = item.partition(":")
            if pid.isdigit():
                seconds = cpu_seconds(int(pid))
                pids.setdefault(name, []).append(int(pid))
                if seconds is None:
                    vanished.add(name)
                else:
                    total[name] = total.get(name, 0.0) + seconds
        for name in vanished:
            total.pop(name, None)
        machine = machine_busy_seconds()
        if machine is not None:
            total["machine"] = machine
        print(json.dumps({"t": time.monotonic(), "cpu": total, "pids": pids}))
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main())
