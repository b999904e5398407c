"""Presence benchmarks through one worker (driven by bench/presence): switch throughput vs. two ceilings
measured in the same run, latency at half the maximum throughput, scale (1,000 vs 1,000,000 users; 1,000 vs
100,000 members), and Redis memory per registered user and per present member."""
import argparse
import hashlib
import os
import re
import secrets
import subprocess
import tempfile
import time

import redis

from lib.benchlib import composed_script, scripts_dir


def wrk(url, script=None, connections=50, seconds=10, threads=2):
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value = float(m.group(1))
        lat[pct] = value / 1000 if m.group(2) == "us" else value * 1000 if m.group(2) == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat, int(non2xx.group(1)) if non2xx else 0


def lua_script(path, body_fn, users, rate_per_connection=None, method="POST", url_path=None):
    lines = ["local users = {"]
    for name, token in users:
        lines.append(f'  {{"{name}", "{token}"}},')
    lines.append("}")
    lines.append("local n = 0")
    lines.append(f'wrk.method = "{method}"')
    lines.append('wrk.headers["Content-Type"] = "application/json"')
    lines.append("request = function()")
    lines.append("  local p = nil")
    lines.append("  n = n + 1")
    lines.append("  local u = users[math.random(#users)]")
    lines.append('  wrk.headers["Authorization"] = "Bearer " .. u[2]')
    lines.append('  wrk.headers["X-Username"] = u[1]')
    lines.append(f"  {body_fn}")
    lines.append("  return wrk.format(nil, p)")
    lines.append("end")
    if rate_per_connection:
        lines.append(f"delay = function() return {1000.0 / rate_per_connection:.3f} end")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def seed_users(r, count, prefix, with_tokens=False):
    users = []
    pipe = r.pipeline(transaction=False)
    for i in range(count):
        name = f"{prefix}{i:07d}"
        pipe.hset(f"user:{{{name}}}", mapping={"username": name, "passwordHash": "x", "createdAt": 1, "lastActive": 1})
        pipe.zadd(f"users:prefix:{name[:2]}", {name: 0})
        if with_tokens:
            token = secrets.token_hex(32)
            pipe.set(f"token:{{{hashlib.sha256(token.encode()).hexdigest()}}}", name)
            users.append((name, token))
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return users


def seed_members(r, room, count, ttl_ms=3_600_000):
    now = int(time.time() * 1000)
    pipe = r.pipeline(transaction=False)
    for i in range(count):
        user = f"m{i:07d}"
        pipe.zadd(f"room:{{{room}}}:members", {user: now + ttl_ms})
        pipe.zadd(f"room:{{{room}}}:joined", {user: now + i})
        pipe.hset(f"room:{{{room}}}:states", user, '{"role":"customer","typing":false}')
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def used_memory(r):
    return int(r.info("memory")["used_memory"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--big-users", type=int, default=1_000_000)
    p.add_argument("--big-members", type=int, default=100_000)
    p.add_argument("--throughput-only", action="store_true", help="stop after the switch throughput section")
    a = p.parse_args()
    r = redis.Redis(port=a.redis_port, decode_responses=True)
    tmp = tempfile.mkdtemp(prefix="presence-bench-")
    print(f"machine: {os.cpu_count()} cores; {a.seconds} s per wrk run (2 threads, 50 connections)")

    # --- switch throughput vs. ceilings
    users = seed_users(r, 1000, "sw", with_tokens=True)
    switch_lua = lua_script(os.path.join(tmp, "switch.lua"),
        'local a, b = "general", "random"; if n % 2 == 0 then a, b = b, a end; '
        'wrk.body = string.format(\'{"previousRoomId":"%s","nextRoomId":"%s","username":"%s"}\', a, b, u[1])', users)
    wrk(a.url + "/api/presence/switch", switch_lua, seconds=3)  # warm-up: connections, scripts, caches
    switch_rps, switch_lat, bad = wrk(a.url + "/api/presence/switch", switch_lua, seconds=a.seconds)
    assert bad == 0, f"{bad} switch requests failed"
    health_rps, _, _ = wrk(a.url + "/health", seconds=a.seconds)
    join_src = composed_script(os.path.join(scripts_dir(), "presence_join.lua"))
    leave_src = composed_script(os.path.join(scripts_dir(), "presence_leave.lua"))
    join_sha = r.script_load(join_src)
    leave_sha = r.script_load(leave_src)
    n = max(100_000, int(switch_rps * a.seconds))
    def rb(*cmd):
        out = subprocess.run(["redis-benchmark", "-p", str(a.redis_port), "-c", "50", "-n", str(n), "-r", "1000", "--csv", *cmd],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        return float(out.split(",")[1].strip('"'))
    # The member's presence key is the fifth key (redis-benchmark draws each __rand_int__ on its own, so the key's user
    # is not the argument's: the same work, a different name).
    join_rps = rb("EVALSHA", join_sha, "5", "room:{general}:meta", "room:{general}:members", "room:{general}:joined",
                  "room:{general}:states", "room:{general}:presence:u__rand_int__", "u__rand_int__", "90000", "")
    leave_rps = rb("EVALSHA", leave_sha, "5", "room:{general}:meta", "room:{general}:members", "room:{general}:joined",
                   "room:{general}:states", "room:{general}:presence:u__rand_int__", "u__rand_int__")
    # The user's own bookkeeping script, on users that exist (redis-benchmark's __rand_int__ is 12 digits).
    user_sha = r.script_load(composed_script(os.path.join(scripts_dir(), "user_switch.lua")))
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.hset(f"user:{{u{i:012d}}}", mapping={"username": f"u{i:012d}", "lastActive": 0})
    pipe.execute()
    user_rps = rb("EVALSHA", user_sha, "2", "user:{u__rand_int__}", "user:{u__rand_int__}:present", "general", "random")
    # One switch runs three scripts (leave, join, user_switch) in one pipeline: the Redis ceiling in switches/s.
    # The ceiling before user_switch.lua existed (leave + join only) is printed too, for comparison with old runs.
    redis_ceiling = 1 / (1 / join_rps + 1 / leave_rps + 1 / user_rps)
    two_script_ceiling = 1 / (1 / join_rps + 1 / leave_rps)
    lower = min(health_rps, redis_ceiling)
    print("\n== presence switch throughput, one worker")
    print(f"switch through the worker            {switch_rps:10.0f} req/s")
    print(f"HTTP ceiling: GET /health            {health_rps:10.0f} req/s")
    print(f"Redis ceiling: the 3 switch scripts  {redis_ceiling:10.0f} switches/s "
          f"(join {join_rps:.0f}/s, leave {leave_rps:.0f}/s, user_switch {user_rps:.0f}/s)")
    print(f"ratio switch / lower ceiling         {switch_rps / lower:10.2f}   (goal >= 0.5)")
    print(f"  (leave+join only ceiling {two_script_ceiling:.0f}/s: ratio {switch_rps / min(health_rps, two_script_ceiling):.2f})")
    if a.throughput_only:
        return

    # --- latency at half the maximum throughput
    print("\n== latency at half the maximum throughput (wrk, fixed delay per connection)")
    seed_members(r, "ticket_BENCH1K", 1000)
    r.hset("room:{ticket_BENCH1K}:meta", mapping={"id": "ticket_BENCH1K", "type": "support", "ticketId": "BENCH1K", "status": "open", "createdAt": 1, "closed": "0"})
    r.sadd("support:agents", *[u[0] for u in users])
    pipe = r.pipeline(transaction=False)
    for u in users:
        pipe.set(f"user:{{{u[0]}}}:agent", "1")
    pipe.execute()
    members_lua = lua_script(os.path.join(tmp, "members.lua"), 'p = "/support/BENCH1K/members?limit=25"', users, method="GET")
    search_lua = lua_script(os.path.join(tmp, "search.lua"), 'p = "/api/users?search=sw00"', users, method="GET")
    members_rps, _, _ = wrk(a.url + "/support/BENCH1K/members", members_lua, seconds=a.seconds)
    search_rps, _, _ = wrk(a.url + "/api/users", search_lua, seconds=a.seconds)
    rows = []
    for name, url_path, body, max_rps in [
        ("switch", "/api/presence/switch", None, switch_rps),
        ("members (25 of 1,000)", "/support/BENCH1K/members", None, members_rps),
        ("search", "/api/users", None, search_rps),
    ]:
        per_conn = max_rps / 2 / 50
        src = {"switch": switch_lua, "search": search_lua}.get(name, members_lua)
        paced = os.path.join(tmp, f"paced-{len(rows)}.lua")
        with open(src) as f, open(paced, "w") as g:
            g.write(f.read() + f"delay = function() return {1000.0 / per_conn:.3f} end\n")
        rps, lat, bad = wrk(a.url + url_path, paced, seconds=a.seconds)
        rows.append((name, max_rps, rps, lat["50"], lat["99"]))
    print(f"{'operation':26} {'max req/s':>10} {'at req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, mx, rps, p50, p99 in rows:
        print(f"{name:26} {mx:10.0f} {rps:9.0f} {p50:8.2f} {p99:8.2f}")

    # --- memory per registered user and per present member
    before = used_memory(r)
    seed_users(r, 100_000, "mu")
    per_user = (used_memory(r) - before) / 100_000
    before = used_memory(r)
    seed_members(r, "memroom", 100_000)
    per_member = (used_memory(r) - before) / 100_000
    print("\n== Redis memory (INFO memory deltas over 100,000 each)")
    print(f"per registered user (hash + prefix index entry)          {per_user:8.0f} bytes")
    print(f"per present member (members + joined entries + a state) {per_member:8.0f} bytes (bench/member-memory: old vs new)")

    # --- scale: 1,000 vs 1,000,000 users; 1,000 vs 100,000 members
    print("\n== scale (p99 at the same paced rate, small vs. large)")
    small_search = os.path.join(tmp, "search-small.lua")
    with open(search_lua) as f, open(small_search, "w") as g:
        g.write(f.read().replace("/api/users?search=sw00", "/api/users?search=sw00") + f"delay = function() return {1000.0 / (search_rps / 2 / 50):.3f} end\n")
    _, small, _ = wrk(a.url + "/api/users", small_search, seconds=a.seconds)
    seed_users(r, a.big_users, "sw9")  # same 2-character prefix 'sw': the index that search walks grows 1000x
    _, big, _ = wrk(a.url + "/api/users", small_search, seconds=a.seconds)
    print(f"search 'sw00…' with {1000 + 100_000:,} vs {1000 + 100_000 + a.big_users:,} users: p99 {small['99']:.2f} ms vs {big['99']:.2f} ms, ratio {big['99'] / small['99']:.2f} (goal <= 1.5)")
    seed_members(r, "ticket_BENCHBIG", a.big_members)
    r.hset("room:{ticket_BENCHBIG}:meta", mapping={"id": "ticket_BENCHBIG", "type": "support", "ticketId": "BENCHBIG", "status": "open", "createdAt": 1, "closed": "0"})
    big_members_lua = os.path.join(tmp, "members-big.lua")
    pace = f"delay = function() return {1000.0 / (members_rps / 2 / 50):.3f} end\n"
    with open(members_lua) as f, open(big_members_lua, "w") as g:
        g.write(f.read().replace("BENCH1K", "BENCHBIG") + pace)
    small_members_lua = os.path.join(tmp, "members-small.lua")
    with open(members_lua) as f, open(small_members_lua, "w") as g:
        g.write(f.read() + pace)
    _, small_m, _ = wrk(a.url + "/support/BENCH1K/members", small_members_lua, seconds=a.seconds)
    _, big_m, _ = wrk(a.url + "/support/BENCHBIG/members", big_members_lua, seconds=a.seconds)
    print(f"members page of 25 in a 1,000 vs {a.big_members:,}-member room: p99 {small_m['99']:.2f} ms vs {big_m['99']:.2f} ms, ratio {big_m['99'] / small_m['99']:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
