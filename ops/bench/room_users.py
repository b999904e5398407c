"""GET /api/rooms/{id}/users at scale, through one release worker (ops/bench/room-users).

Chat rooms of 1,000 / 10,000 / 50,000 / 100,000 present users are seeded in Redis as the join script writes them.
Measured in one run:
  - the full list (ryOS's answer, no parameters): median and p99 latency and body size through the worker;
  - its Redis side before and after, side by side: the pages of 500 of presence_list.lua the worker used to read
    (a ZSCORE per member) vs the one range query of presence_present.lua, timed from redis-py;
  - a page of 100 (`?limit=100`) and the count (`?count=true`): p99 in a 1,000- vs a 100,000-user room (goal: the
    page's ratio <= 1.5, flat in room size).
"""
import argparse
import hashlib
import os
import statistics
import time

import redis
import requests

from presence_bench import seed_members

SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "..", "Sources", "PresenceCore", "Scripts")


def timed(fn, n):
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--samples", type=int, default=200)
    a = p.parse_args()
    r = redis.Redis(port=a.redis_port, decode_responses=True)
    list_sha = r.script_load(open(os.path.join(SCRIPTS, "presence_list.lua")).read())
    present_sha = r.script_load(open(os.path.join(SCRIPTS, "presence_present.lua")).read())
    session = requests.Session()
    sizes = [1_000, 10_000, 50_000, 100_000]
    for n in sizes:
        room = f"bench{n}"
        r.hset(f"room:{{{room}}}:meta", mapping={"id": room, "name": room, "type": "public", "createdAt": 1, "createdBy": "bench"})
        seed_members(r, room, n)

    def old_redis(room):
        cursor_at, cursor_user = "", ""
        while True:
            _, cursor_at, cursor_user, _ = r.evalsha(list_sha, 2, f"room:{{{room}}}:members", f"room:{{{room}}}:joined",
                                                     cursor_at, cursor_user, "500")
            if not cursor_at:
                return

    def new_redis(room):
        r.evalsha(present_sha, 1, f"room:{{{room}}}:members")

    print("== GET /api/rooms/{id}/users, the full list (median / p99 ms)")
    print(f"{'present users':>14} {'through the worker':>20} {'body':>9}   {'Redis before (pages of 500)':>28} {'Redis after (one range)':>24} {'speed-up':>9}")
    for n in sizes:
        room = f"bench{n}"
        samples = max(10, a.samples * 1_000 // n)
        body = len(session.get(f"{a.url}/api/rooms/{room}/users").content)
        http = timed(lambda: session.get(f"{a.url}/api/rooms/{room}/users").raise_for_status(), samples)
        old = timed(lambda: old_redis(room), samples)
        new = timed(lambda: new_redis(room), samples)
        print(f"{n:>14,} {http[0]:>10.1f} / {http[1]:<7.1f} {body / 1e6:>7.2f}MB   {old[0]:>16.1f} / {old[1]:<9.1f} "
              f"{new[0]:>13.1f} / {new[1]:<8.1f} {old[0] / new[0]:>8.1f}x")

    print("\n== a page of 100 and the count, 1,000 vs 100,000 present users (p99 ms)")
    for label, query in [("page of 100", "limit=100"), ("count", "count=true")]:
        small = timed(lambda: session.get(f"{a.url}/api/rooms/bench1000/users?{query}").raise_for_status(), a.samples * 5)
        big = timed(lambda: session.get(f"{a.url}/api/rooms/bench100000/users?{query}").raise_for_status(), a.samples * 5)
        print(f"{label:>12}: p99 {small[1]:.2f} vs {big[1]:.2f} (median {small[0]:.2f} vs {big[0]:.2f}), "
              f"ratio {big[1] / small[1]:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
