"""Instructions per request inside one worker running under callgrind (driven by bench/switch-instructions).

For each route: a warm-up with collection off, then collection on and the counters zeroed, N sequential requests on
one keep-alive connection, a dump (`callgrind_control --dump`, whose `totals` is this stretch's `Ir`), collection off. Printed per request: the presence switch (general <-> random, one user after another),
`GET /health` (the HTTP floor of the same worker), and their difference: what the switch itself costs the worker.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import time

import redis
import requests

from presence_bench import seed_users


def dumped_instructions(pid, out_dir):
    """Dumps the counters (`callgrind_control --dump`) and reads the new dump's total `Ir`; returns it and the dump."""
    before = set(glob.glob(os.path.join(out_dir, f"callgrind.out.{pid}*")))
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(glob.glob(os.path.join(out_dir, f"callgrind.out.{pid}*"))) - before
        for path in new:
            text = open(path, errors="replace").read()
            m = re.search(r"^(?:totals|summary):\s*(\d+)", text, re.M)
            if m:
                return int(m.group(1)), path
        time.sleep(0.2)
    raise SystemExit("callgrind wrote no dump")


def counted(pid, out_dir, action, n):
    """Instructions per call of `action` over `n` calls: collection on and zeroed, the calls, a dump, collection off."""
    subprocess.run(["callgrind_control", "-i", "on", str(pid)], capture_output=True, check=True)
    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
    for i in range(n):
        action(i)
    total, dump = dumped_instructions(pid, out_dir)
    subprocess.run(["callgrind_control", "-i", "off", str(pid)], capture_output=True, check=True)
    return total / n, dump


def profile(dump, n, top):
    """The functions that executed the most instructions themselves (exclusive), per request, demangled."""
    text = subprocess.run(["callgrind_annotate", "--threshold=99", dump], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\([\d.]+%\)\s+)?(.+?)\s*$", line)
        if m and ":" in m.group(2) and not m.group(2).startswith("PROGRAM TOTALS"):
            rows.append((int(m.group(1).replace(",", "")), m.group(2).split(":", 1)[1].split(" [")[0]))
    rows.sort(reverse=True)
    names = [name for _, name in rows[:top]]
    demangled = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(names),
                               capture_output=True, text=True).stdout.splitlines()
    if len(demangled) != len(names):
        demangled = names
    for (count, _), name in zip(rows[:top], demangled):
        print(f"  {count / n:10,.0f}  {name[:150]}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--out-dir", required=True, help="where callgrind writes its dumps")
    p.add_argument("--profile", type=int, default=0, help="also print the top N functions of each route (exclusive)")
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

    def search(i):
        # 100 of the 200 users match (ci00001…); the answer holds the first 20, each with its lastActive.
        name, token = users[i % 100]
        session.get(a.url + "/api/users?search=ci00001", headers={"Authorization": f"Bearer {token}", "X-Username": name}).raise_for_status()

    spent_name, spent_token = users[-1]
    spent_headers = {"Authorization": f"Bearer {spent_token}", "X-Username": spent_name}

    def limited(i):
        # The limiter's 429 path: this user's Ryo budget is spent, so every request is authenticated, checked, refused.
        status = session.post(a.url + "/api/ai/ryo-reply", headers=spent_headers, json={"roomId": "general", "prompt": "hi"}).status_code
        assert status == 429, status

    # Warm-up (not counted): every user enters general, and back and forth twice, so caches and connections are warm.
    for i in range(len(users) * 3):
        switch(i)
    for i in range(50):
        health(i)
        search(i)
    for i in range(10):
        session.post(a.url + "/api/ai/ryo-reply", headers=spent_headers, json={"roomId": "general", "prompt": "hi"})
    for i in range(50):
        limited(i)
    offset = len(users) * 3
    per_health, health_dump = counted(a.pid, a.out_dir, health, a.requests)
    per_switch, switch_dump = counted(a.pid, a.out_dir, lambda i: switch(offset + i), a.requests)
    per_search, search_dump = counted(a.pid, a.out_dir, search, a.requests)
    per_limited, _ = counted(a.pid, a.out_dir, limited, a.requests)
    print(f"instructions per request inside the worker (callgrind, {a.requests} sequential requests each)")
    print(f"  presence switch     {per_switch:12,.0f}")
    print(f"  GET /health         {per_health:12,.0f}")
    print(f"  switch - health     {per_switch - per_health:12,.0f}   (the switch's own work: auth, limiter, scripts, events)")
    print(f"  user search         {per_search:12,.0f}   (100 of 200 users match; 20 answered)")
    print(f"  limiter, 429 path   {per_limited:12,.0f}   (POST /api/ai/ryo-reply with the budget spent)")
    if os.environ.get("PROFILE_KEEP"):
        # The dumps, for callgrind_annotate (e.g. --tree=caller) after the run.
        import shutil
        os.makedirs(os.environ["PROFILE_KEEP"], exist_ok=True)
        for label, dump in [("switch", switch_dump), ("search", search_dump), ("health", health_dump)]:
            shutil.copy(dump, os.path.join(os.environ["PROFILE_KEEP"], f"{label}.callgrind"))
    if a.profile:
        for label, dump in [("presence switch", switch_dump), ("user search", search_dump), ("GET /health", health_dump)]:
            print(f"top {a.profile} functions by their own instructions per request, {label}:")
            profile(dump, a.requests, a.profile)


if __name__ == "__main__":
    main()
