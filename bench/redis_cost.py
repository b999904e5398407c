"""Redis commands and bytes per request on the hot routes, beside their throughput (driven by bench/redis-cost).

One release worker on one throwaway Redis. For each route, in one run:
  - throughput: wrk (2 threads, 50 connections) for the HTTP routes, beside `GET /health` on the same worker, and the
    raw limiter script through redis-benchmark (EVALSHA) for the limiter's 429 path;
  - commands the worker sends per request: MONITOR over a fixed number of requests, counting the commands of the
    worker's own connections (not those that scripts run inside Redis), named (a script by its file name);
  - commands Redis executes per request, those inside scripts included (`INFO commandstats` deltas);
  - bytes per request into and out of Redis (`INFO stats` total_net_input_bytes / total_net_output_bytes deltas, taken
    in a pass without MONITOR, whose own output would count).
The worker's background work (sweeper, worker announcements) is measured over an idle stretch and subtracted from the
INFO deltas; in the MONITOR pass its scripts are recognised by name and left out.
"""
import argparse
import warnings
import collections
import json
import os
import resource
import subprocess
import tempfile
import threading
import time

import redis
import requests
import websockets.sync.client

from lib.benchlib import composed_script, script_names, scripts_dir
from presence_bench import lua_script, seed_users, wrk

# The worker's periodic work, not caused by the requests measured.
BACKGROUND = {"presence_due", "presence_sweep", "worker_announce", "worker_list", "expiring_members", "presence_settle"}



def cpu_seconds(pid):
    """User + system CPU time of process `pid` so far, from /proc/<pid>/stat."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    """CPU time of this process's finished children (wrk runs as one)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime

def command_label(parts, names):
    name = parts[0].upper()
    if name == "EVALSHA" and len(parts) > 1:
        return names.get(parts[1].lower(), "EVALSHA ?")
    if name == "EVAL":
        return "EVAL"
    return name


class Monitor:
    """MONITOR on its own connection, collecting the commands of clients other than Lua (and itself)."""

    def __init__(self, port, names):
        self.port, self.names = port, names
        self.lines = []
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def run(self):
        r = redis.Redis(port=self.port, decode_responses=True)
        with r.monitor() as m:
            self.ready.set()
            for command in m.listen():
                if self.stop.is_set():
                    break
                if command.get("client_type") == "lua":
                    continue
                text = command["command"]
                self.lines.append(text)

    def finish(self, r):
        self.stop.set()
        r.ping()  # wakes the listener so it sees the stop
        self.thread.join(5)
        return self.lines


def split_command(text):
    """redis-py renders a MONITOR line's command as its arguments joined by spaces; the first two are enough here."""
    return text.split(" ", 2)[:2]


def info_totals(r):
    stats = r.info("stats")
    calls = sum(v["calls"] for k, v in r.info("commandstats").items())
    return calls, stats["total_net_input_bytes"], stats["total_net_output_bytes"]


def measure(r, port, names, action, count):
    """Commands sent (named), commands executed and bytes, per request, over `count` calls of `action`."""
    # Background over an idle stretch as long as the measured one will roughly take.
    start = info_totals(r)
    t0 = time.monotonic()
    for i in range(count):
        action(i)
    elapsed = time.monotonic() - t0
    end = info_totals(r)
    time.sleep(min(elapsed, 3.0))
    idle_start = info_totals(r)
    time.sleep(min(elapsed, 3.0))
    idle_end = info_totals(r)
    idle_rate = [(b - a) / min(elapsed, 3.0) for a, b in zip(idle_start, idle_end)]
    # Two INFO calls per sample (stats, commandstats) are the bench's own; so is the background.
    deltas = [(e - s) - rate * elapsed for s, e, rate in zip(start, end, idle_rate)]
    executed = (deltas[0] - 2) / count
    bytes_in, bytes_out = deltas[1] / count, deltas[2] / count

    mon = Monitor(port, names)
    for i in range(count):
        action(count + i)
    time.sleep(0.3)  # publishes that follow a response without holding it
    lines = mon.finish(r)
    sent = collections.Counter()
    for text in lines:
        parts = split_command(text)
        if not parts:
            continue
        label = command_label(parts, names)
        if label in BACKGROUND or label in ("INFO", "MONITOR", "PING"):
            continue
        sent[label] += 1
    per_request = {k: v / count for k, v in sent.items()}
    return sum(per_request.values()), per_request, executed, bytes_in, bytes_out


def main():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    p = argparse.ArgumentParser()
    p.add_argument("--compare", nargs=2, metavar=("OLD_JSON", "NEW_JSON"), help="print two earlier runs side by side")
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--scripts", default=None, help="the worker's Lua scripts, to name the EVALSHAs it sends")
    p.add_argument("--url")
    p.add_argument("--redis-port", type=int)
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--count", type=int, default=300, help="requests per route in the counting passes")
    p.add_argument("--pusher-key", default="bench-key")
    p.add_argument("--worker-pid", type=int, help="the worker's pid: CPU time per request is measured beside throughput")
    p.add_argument("--redis-pid", type=int, help="redis-server's pid (with --worker-pid)")
    a = p.parse_args()
    if a.compare:
        return compare(*a.compare)
    r = redis.Redis(port=a.redis_port, decode_responses=True)
    names = script_names(a.scripts or scripts_dir())
    results = {"routes": {}}
    tmp = tempfile.mkdtemp(prefix="presence-bench-")
    session = requests.Session()
    users = seed_users(r, 1000, "sw", with_tokens=True)
    seed_users(r, 300, "se")  # 300 users under `se`; the search below matches 100 of them
    spent = users[-1]  # the limiter's 429 path: this user's Ryo budget is spent first

    def headers(user):
        return {"Authorization": f"Bearer {user[1]}", "X-Username": user[0], "Content-Type": "application/json"}

    for i in range(10):
        session.post(a.url + "/api/ai/ryo-reply", headers=headers(spent), data=json.dumps({"roomId": "general", "prompt": "hi"}))

    def switch(i):
        u = users[i % 900]
        prev, nxt = ("general", "random") if (i // 900) % 2 == 0 else ("random", "general")
        session.post(a.url + "/api/presence/switch", headers=headers(u),
                     data=json.dumps({"username": u[0], "previousRoomId": prev, "nextRoomId": nxt})).raise_for_status()

    def heartbeat(i):
        u = users[i % 900]
        session.post(a.url + "/api/presence/heartbeat", headers=headers(u), data=json.dumps({"roomId": "general"})).raise_for_status()

    def post(i):
        u = users[i % 900]
        session.post(a.url + "/api/rooms/general/messages", headers=headers(u),
                     data=json.dumps({"content": f"hello {i}"})).raise_for_status()

    def search(i):
        session.get(a.url + "/api/users?search=se00000", headers=headers(users[i % 900])).raise_for_status()

    def members(i):
        session.get(a.url + "/api/rooms/general/users?limit=100").raise_for_status()

    def limiter(i):
        status = session.post(a.url + "/api/ai/ryo-reply", headers=headers(spent),
                              data=json.dumps({"roomId": "general", "prompt": "hi"})).status_code
        assert status == 429, status

    ws_url = a.url.replace("http://", "ws://") + f"/app/{a.pusher_key}?protocol=7&client=bench&version=1"
    sockets = []

    def subscribe(i):
        ws = websockets.sync.client.connect(ws_url, open_timeout=10)
        json.loads(ws.recv(timeout=10))  # connection_established
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": f"bench-{i}"}}))
        reply = json.loads(ws.recv(timeout=10))
        assert reply["event"] == "pusher_internal:subscription_succeeded", reply
        sockets.append(ws)

    # Everyone present in general first, so heartbeats and switches find what they expect.
    for i in range(900):
        u = users[i]
        session.post(a.url + "/api/presence/switch", headers=headers(u),
                     data=json.dumps({"username": u[0], "nextRoomId": "general"})).raise_for_status()

    routes = [("switch", switch), ("heartbeat", heartbeat), ("message post", post), ("search", search),
              ("members (page of 100)", members), ("limiter (429 path)", limiter), ("WebSocket subscribe", subscribe)]
    print(f"machine: {os.cpu_count()} cores; {a.count} requests per route per counting pass")
    print("\n== Redis cost per request")
    print(f"{'route':24} {'sent':>6} {'executed':>9} {'bytes in':>9} {'bytes out':>10}   commands sent")
    costs = {}
    for name, action in routes:
        count = a.count if name != "WebSocket subscribe" else min(a.count, 200)
        total, per, executed, bin_, bout = measure(r, a.redis_port, names, action, count)
        costs[name] = total
        results["routes"][name] = {"sent": total, "executed": executed, "bytes_in": bin_, "bytes_out": bout, "commands": per}
        detail = ", ".join(f"{k} {v:.2f}" if abs(v - round(v)) > 0.01 else f"{k}{'' if round(v) == 1 else ' x' + str(round(v))}"
                           for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
        print(f"{name:24} {total:6.2f} {executed:9.1f} {bin_:9.0f} {bout:10.0f}   {detail}")
    for ws in sockets:
        ws.close()

    print(f"\n== throughput (wrk -t2 -c50, {a.seconds} s each), beside GET /health on the same worker")
    switch_lua = lua_script(os.path.join(tmp, "switch.lua"),
        'local a, b = "general", "random"; if n % 2 == 0 then a, b = b, a end; '
        'wrk.body = string.format(\'{"previousRoomId":"%s","nextRoomId":"%s","username":"%s"}\', a, b, u[1])', users[:900])
    heartbeat_lua = lua_script(os.path.join(tmp, "heartbeat.lua"), "wrk.body = '{\"roomId\":\"general\"}'", users[:900])
    post_lua = lua_script(os.path.join(tmp, "post.lua"), "wrk.body = '{\"content\":\"hello\"}'", users[:900])
    search_lua = lua_script(os.path.join(tmp, "search.lua"), 'p = "/api/users?search=se00000"', users[:900], method="GET")
    members_lua = lua_script(os.path.join(tmp, "members.lua"), 'p = "/api/rooms/general/users?limit=100"', users[:900], method="GET")
    limiter_lua = lua_script(os.path.join(tmp, "limiter.lua"), "wrk.body = '{\"roomId\":\"general\",\"prompt\":\"hi\"}'", [spent])
    wrk(a.url + "/api/presence/switch", switch_lua, seconds=2)  # warm-up
    cpu = {}

    def timed_wrk(name, url, script=None):
        """wrk, and the CPU time the worker, Redis and wrk itself spent per request meanwhile (µs)."""
        before = (cpu_seconds(a.worker_pid), cpu_seconds(a.redis_pid), children_cpu_seconds()) if a.worker_pid else None
        rps, lat, bad = wrk(url, script, seconds=a.seconds)
        if before:
            after = (cpu_seconds(a.worker_pid), cpu_seconds(a.redis_pid), children_cpu_seconds())
            requests = rps * a.seconds
            cpu[name] = [(y - x) / requests * 1e6 for x, y in zip(before, after)]
        return rps, lat, bad

    health, _, _ = timed_wrk("GET /health", a.url + "/health")
    rows = []
    for name, path, script in [("switch", "/api/presence/switch", switch_lua), ("heartbeat", "/api/presence/heartbeat", heartbeat_lua),
                               ("message post", "/api/rooms/general/messages", post_lua), ("search", "/api/users", search_lua),
                               ("members (page of 100)", "/api/rooms/general/users", members_lua),
                               ("limiter (429 path)", "/api/ai/ryo-reply", limiter_lua)]:
        rps, lat, bad = timed_wrk(name, a.url + path, script)
        if name != "limiter (429 path)":
            assert bad == 0, f"{name}: {bad} requests failed"
        rows.append((name, rps, lat))
    sha = r.script_load(composed_script(os.path.join(scripts_dir(), "ratelimit_sliding.lua")))
    n = max(100_000, int(rows[-1][1] * a.seconds))
    out = subprocess.run(["redis-benchmark", "-p", str(a.redis_port), "-c", "50", "-n", str(n), "-r", "1000000", "--csv",
                          "EVALSHA", sha, "1", "ratelimit:ai:{raw}", "5", "60000", "__rand_int__", "check"],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    raw = float(out.split(",")[1].strip('"'))
    print(f"{'route':24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'/ health':>9} {'Redis cmds sent/req':>20}")
    print(f"{'GET /health':24} {health:9.0f}")
    results["health"] = health
    for name, rps, lat in rows:
        print(f"{name:24} {rps:9.0f} {lat['50']:8.2f} {lat['99']:8.2f} {rps / health:9.2f} {costs[name]:20.2f}")
        results["routes"][name].update({"rps": rps, "p50": lat["50"], "p99": lat["99"]})
    limiter_rps = rows[-1][1]
    print(f"raw limiter script, redis-benchmark EVALSHA: {raw:.0f}/s; limiter through the service / raw: {limiter_rps / raw:.2f} (goal >= 0.5)")
    print(f"switch / health {rows[0][1] / health:.2f} (goal >= 0.45); search / health {rows[3][1] / health:.2f} (goal >= 0.45)")
    results["limiter_raw"] = raw
    if cpu:
        print("\nCPU time per request while wrk ran (µs, from /proc: the worker, Redis, and wrk itself, on the same cores)")
        print(f"{'route':24} {'worker':>8} {'Redis':>8} {'wrk':>8} {'total':>8}")
        for name, (worker, redis_us, load) in cpu.items():
            print(f"{name:24} {worker:8.1f} {redis_us:8.1f} {load:8.1f} {worker + redis_us + load:8.1f}")
        results["cpu"] = cpu
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f)


def compare(old_path, new_path):
    old, new = json.load(open(old_path)), json.load(open(new_path))
    print("\n== old and new side by side (same machine, same run)")
    print(f"{'route':24} {'cmds sent':>15} {'executed':>15} {'bytes in':>15} {'bytes out':>17} {'req/s':>15} {'/ health':>13}")
    for name, n in new["routes"].items():
        o = old["routes"].get(name)
        if not o:
            continue
        print(f"{name:24} {o['sent']:6.2f} -> {n['sent']:5.2f} {o['executed']:6.1f} -> {n['executed']:5.1f} "
              f"{o['bytes_in']:6.0f} -> {n['bytes_in']:5.0f} {o['bytes_out']:7.0f} -> {n['bytes_out']:6.0f} "
              + (f"{o['rps']:6.0f} -> {n['rps']:5.0f} {o['rps'] / old['health']:5.2f} -> {n['rps'] / new['health']:4.2f}"
                 if "rps" in n and "rps" in o else ""))
    print(f"{'GET /health':24} {'':>66} {old['health']:6.0f} -> {new['health']:5.0f}")
    lo, ln = old["routes"]["limiter (429 path)"]["rps"] / old["limiter_raw"], new["routes"]["limiter (429 path)"]["rps"] / new["limiter_raw"]
    print(f"limiter through the service / raw EVALSHA: {lo:.2f} -> {ln:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
