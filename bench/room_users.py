"""GET /api/rooms/{id}/users at scale, through one release worker (bench/room-users).

Chat rooms of 1,000 / 10,000 / 50,000 / 100,000 present users are seeded in Redis as the join script writes them.
Measured in one run:
  - the full list (ryOS's answer, no parameters): median and p99 latency and body size through the worker;
  - its Redis side before and after, side by side: the pages of 500 of presence_list.lua the worker used to read
    (a ZSCORE per member) vs Redis's clock (room_clock.lua) and one ZRANGEBYSCORE, as Redis's own time per listing
    (`INFO commandstats` usec, the bench's own INFO/CONFIG left out);
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

from lib.benchlib import scripts_dir
from presence_bench import seed_members, wrk



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
    p.add_argument("--max-users", type=int, default=100_000, help="the biggest room (sizes 1,000 10,000 50,000 100,000 up to it)")
    p.add_argument("--old-url", help="an older build's worker on the same Redis: its full list is timed beside this one's")
    a = p.parse_args()
    r = redis.Redis(port=a.redis_port, decode_responses=True)
    list_sha = r.script_load(open(os.path.join(scripts_dir(), "presence_list.lua")).read())
    clock_sha = r.script_load(open(os.path.join(scripts_dir(), "room_clock.lua")).read())
    session = requests.Session()
    sizes = [n for n in (1_000, 10_000, 50_000, 100_000) if n <= a.max_users] or [1_000]
    biggest = sizes[-1]
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
        now = r.evalsha(clock_sha, 1, f"room:{{{room}}}:members")
        r.zrangebyscore(f"room:{{{room}}}:members", f"({now}", "+inf", withscores=True)

    def redis_ms(fn, n):
        """Redis's own time per call of `fn`, in ms (commandstats deltas)."""
        r.config_resetstat()
        for _ in range(n):
            fn()
        stats = r.info("commandstats")
        return sum(v["usec"] for k, v in stats.items() if k not in ("cmdstat_config", "cmdstat_info")) / n / 1000

    print("== GET /api/rooms/{id}/users, the full list (median / p99 ms)")
    print(f"{'present users':>14} {'through the worker':>20} {'body':>9}   {'Redis ms before (pages of 500)':>31} {'Redis ms after (clock + one range)':>34} {'speed-up':>9}")
    for n in sizes:
        room = f"bench{n}"
        samples = max(10, a.samples * 1_000 // n)
        body = len(session.get(f"{a.url}/api/rooms/{room}/users").content)
        http = timed(lambda: session.get(f"{a.url}/api/rooms/{room}/users").raise_for_status(), samples)
        old = redis_ms(lambda: old_redis(room), max(3, samples // 4))
        new = redis_ms(lambda: new_redis(room), max(3, samples // 4))
        print(f"{n:>14,} {http[0]:>10.1f} / {http[1]:<7.1f} {body / 1e6:>7.2f}MB   {old:>31.1f} {new:>34.1f} {old / new:>8.1f}x")

    if a.old_url:
        print("\n== the full list through an older build's worker vs this one, same Redis, same run (median / p99 ms;")
        print("   wrk with one connection for 3 s each, so the client's own reading of the body counts as little as it can)")
        print(f"{'present users':>14} {'older worker':>18} {'this worker':>18} {'speed-up (median)':>18}")
        for n in sizes:
            room = f"bench{n}"
            _, old, _ = wrk(f"{a.old_url}/api/rooms/{room}/users", connections=1, seconds=3, threads=1)
            _, new, _ = wrk(f"{a.url}/api/rooms/{room}/users", connections=1, seconds=3, threads=1)
            old, new = (old["50"], old["99"]), (new["50"], new["99"])
            same = session.get(f"{a.old_url}/api/rooms/{room}/users").json() == session.get(f"{a.url}/api/rooms/{room}/users").json()
            print(f"{n:>14,} {old[0]:>9.1f} / {old[1]:<7.1f} {new[0]:>9.1f} / {new[1]:<7.1f} {old[0] / new[0]:>12.1f}x"
                  f"   {'same answer' if same else 'ANSWERS DIFFER'}")

    print(f"\n== a page of 100 and the count, 1,000 vs {biggest:,} present users (p99 ms)")
    for label, query in [("page of 100", "limit=100"), ("count", "count=true")]:
        small = timed(lambda: session.get(f"{a.url}/api/rooms/bench1000/users?{query}").raise_for_status(), a.samples * 5)
        big = timed(lambda: session.get(f"{a.url}/api/rooms/bench{biggest}/users?{query}").raise_for_status(), a.samples * 5)
        print(f"{label:>12}: p99 {small[1]:.2f} vs {big[1]:.2f} (median {small[0]:.2f} vs {big[0]:.2f}), "
              f"ratio {big[1] / small[1]:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
