"""Instructions per request inside one worker running under callgrind (driven by ops/bench/switch-instructions).

For each route: a warm-up with collection off, then `callgrind_control --instr=on`, N sequential requests on one
keep-alive connection, `--instr=off`, and the counter read back with `callgrind_control --stat` (`Ir` so far, the
difference is this stretch's). Printed per request: the presence switch (general <-> random, one user after another),
`GET /health` (the HTTP floor of the same worker), and their difference: what the switch itself costs the worker.
"""
import argparse
import json
import re
import subprocess
import time

import redis
import requests

from presence_bench import seed_users


def instructions(pid):
    """Instructions counted so far (`Ir`), from the running callgrind."""
    out = subprocess.run(["callgrind_control", "-s", str(pid)], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Events collected:\s*Ir\s*\n\s*Totals:\s*([\d,]+)", out) or re.search(r"Totals:\s*([\d,]+)", out)
    if not m:
        raise SystemExit(f"no totals in callgrind_control output:\n{out}")
    return int(m.group(1).replace(",", ""))


def counted(pid, action, n):
    subprocess.run(["callgrind_control", "-i", "on", str(pid)], capture_output=True, check=True)
    before = instructions(pid)
    for i in range(n):
        action(i)
    after = instructions(pid)
    subprocess.run(["callgrind_control", "-i", "off", str(pid)], capture_output=True, check=True)
    return (after - before) / n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--requests", type=int, default=400)
    a = p.parse_args()
    r = redis.Redis(port=a.redis_port, decode_responses=True)
    users = seed_users(r, 200, "ci", with_tokens=True)
    session = requests.Session()

    def switch(i):
        name, token = users[i % len(users)]
        rounds = i // len(users)
        # Round 0 enters general; then odd rounds go general -> random and even ones back: every switch leaves a room
        # the user is in and enters one they are not (both announced).
        if rounds == 0:
            prev, nxt = None, "general"
        else:
            prev, nxt = ("general", "random") if rounds % 2 == 1 else ("random", "general")
        session.post(a.url + "/api/presence/switch", headers={"Authorization": f"Bearer {token}", "X-Username": name},
                     json={"username": name, "previousRoomId": prev, "nextRoomId": nxt}).raise_for_status()

    def health(i):
        session.get(a.url + "/health").raise_for_status()

    # Warm-up (not counted): every user enters general, and back and forth twice, so caches and connections are warm.
    for i in range(len(users) * 3):
        switch(i)
    for i in range(50):
        health(i)
    offset = len(users) * 3
    per_health = counted(a.pid, health, a.requests)
    per_switch = counted(a.pid, lambda i: switch(offset + i), a.requests)
    print(f"instructions per request inside the worker (callgrind, {a.requests} sequential requests each)")
    print(f"  presence switch     {per_switch:12,.0f}")
    print(f"  GET /health         {per_health:12,.0f}")
    print(f"  switch - health     {per_switch - per_health:12,.0f}   (the switch's own work: auth, limiter, scripts, events)")


if __name__ == "__main__":
    main()
