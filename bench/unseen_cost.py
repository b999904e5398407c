"""The `message_unseen` webhook (#32) on vs off on the message post path (driven by bench/unseen-cost), side by side
in one run. Ends with one JSON line holding every figure.

"off" and "on" are the same release binary, each on its own throwaway redis-server: "off" has no WEBHOOK_URLS, "on"
has WEBHOOK_URLS=<a local receiver>|message_unseen (filtered to message_unseen, so that only this feature is on: an
unfiltered receiver would also turn on ticket_unattended and the other webhooks, none of which a post makes). The
receiver (a thread here) answers 200 to every POST; in these runs nothing reaches it, since UNSEEN_GRACE_MS is long
(an hour, --grace-ms) and no notice falls due: every post counts up a pending notice, the steady state of a busy
private room with an absent member. Both workers get the same settings otherwise (MESSAGE_RATE_LIMIT 100000, the
sweeper every 60 s).

The scenario: --rooms private rooms, each with two members: a poster (who posts every message of that room) and an
absent member (no presence, no socket). Posts go round-robin over the rooms (POST /api/rooms/<id>/messages, the
poster's bearer token). Before anything is counted, every room has had posts, so each has its pending notice.

  1. Redis per post: blocks of --block-size sequential posts on one keep-alive connection, alternating off/on (the
     first mode alternates block to block); per block, deltas of INFO commandstats (calls, usec), INFO stats
     total_reads_processed (the worker's round trips: a request and its pipelined batch arrive in one read) and
     INFO cpu, and the worker's CPU (/proc). The background (each worker's periodic scripts, the unseen watcher's
     look at its 16 index buckets every second, the bench's own INFO) is measured over an idle stretch of --idle
     seconds per mode and subtracted at its rate over each block's wall time. A script's usec holds the commands it
     runs, which commandstats also counts on their own: each command is taken at the share of its calls that were
     top-level, as a census found them (a slowlog pass at threshold 0 before the counted blocks, which tells a
     script's commands, client `?:0`, from the worker's, and names each EVALSHA by its script and, for
     lease_index.lua, its mode: `register` from a post, `due` from the watcher). Beside it, each script only "on"
     sends, alone: the call the census saw, repeated --alone times pipelined from here (Redis busy with nothing else).
  2. Redis per subscription to a room's channel (the hub records it for message_unseen: unseen_watch.lua, and again
     when it ends): the same blocks (--sub-blocks of --sub-block-size), each a /pusher/auth as the room's poster,
     the subscribe (waiting for subscription_succeeded) and the unsubscribe, on one socket per mode.
  3. throughput: wrk, --wrk-connections keep-alive connections for --wrk-seconds a round, --rounds rounds per mode
     alternating, each request a random room's poster; the worker's CPU (/proc) and Redis's (INFO cpu) per post.
"""
import argparse
import collections
import contextlib
import datetime
import http.server
import json
import os
import statistics
import subprocess
import threading
import time

import redis
import requests

from lib.benchlib import (free_port, log, proc_cpu, ratio, script_names, slowlog_census, start_ready_worker,
                          start_redis, stop)
from presence_bench import seed_users, wrk

MODES = ("off", "on")
# Top-level commands the posts do not cause: the workers' periodic scripts and connection upkeep, the unseen watcher's
# look at its index (lease_index due), the webhook dispatcher's, the bench's own.
BACKGROUND = {"presence_due", "presence_sweep", "worker_announce", "worker_list", "expiring_members", "presence_settle",
              "lease_index due", "lease_index settle", "unseen_claim", "unseen_send", "occupancy_refresh",
              "webhook_lease", "webhook_backlog", "webhook_ack", "webhook_release", "support_waiting",
              "PING", "HELLO", "SLOWLOG", "INFO", "CONFIG", "CLIENT", "SELECT", "MEMORY", "SUBSCRIBE", "SSUBSCRIBE",
              "PSUBSCRIBE", "UNSUBSCRIBE", "SUNSUBSCRIBE", "COMMAND", "SCAN", "DBSIZE", "XREADGROUP", "XAUTOCLAIM"}


# ---------------------------------------------------------------- the receiver

class Receiver:
    """A webhook receiver answering 200 to every POST (so an outbox would drain); counts what it gets."""

    def __init__(self):
        receiver = self
        self.posts = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- one mode's worker

class Mode:
    """One mode's worker on its own Redis, its private rooms and a client posting to them."""

    def __init__(self, a, mode, receiver):
        self.mode = mode
        self.redis_port, self.port = free_port(), free_port()
        self.redis_proc = start_redis(self.redis_port, os.path.join(a.work, f"redis-{mode}"))
        self.worker = None
        self.closing = contextlib.ExitStack()  # the socket, when open
        self.r = redis.Redis(port=self.redis_port, decode_responses=True)
        self.raw = redis.Redis(port=self.redis_port)  # the slowlog's entries are bytes in redis-py
        settings = dict(REDIS_URL=f"redis://127.0.0.1:{self.redis_port}", LOG_LEVEL="error", METRICS_PORT="0",
                        PUSHER_APP_ID="bench", PUSHER_KEY="bench-key", PUSHER_SECRET="bench-secret",
                        UNSEEN_GRACE_MS=str(a.grace_ms), MESSAGE_RATE_LIMIT="100000", ROOM_RATE_LIMIT="1000000",
                        INVITE_RATE_LIMIT="1000000", BCRYPT_COST="4", SWEEP_INTERVAL_MS="60000",
                        MAX_CONNECTIONS_PER_ADDRESS="10000")
        if mode == "on":
            settings["WEBHOOK_URLS"] = f"{receiver.url}|message_unseen"
        self.settings = settings
        self.log = open(os.path.join(a.work, f"worker-{mode}.log"), "w")
        self.worker = start_ready_worker(self.port, self.log, timeout=30, what=f"{mode} worker", **settings)
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        users = seed_users(self.r, 2 * a.rooms, "uc", with_tokens=True)
        self.posters, self.absent = users[:a.rooms], users[a.rooms:]
        self.rooms = []
        for (name, token), (other, _) in zip(self.posters, self.absent):
            reply = self.session.post(self.base + "/api/rooms", headers=self.auth(name, token),
                                      json={"name": f"unseen {name}", "type": "private", "members": [other]})
            if reply.status_code != 201:
                raise SystemExit(f"unseen-cost: creating a private room answered {reply.status_code}: {reply.text}")
            self.rooms.append(reply.json()["room"]["id"])
        self.n = 0

    @staticmethod
    def auth(name, token):
        return {"Authorization": f"Bearer {token}", "X-Username": name}

    def post(self):
        k = self.n % len(self.rooms)
        name, token = self.posters[k]
        self.n += 1
        reply = self.session.post(f"{self.base}/api/rooms/{self.rooms[k]}/messages", headers=self.auth(name, token),
                                  json={"content": f"hello from the unseen benchmark {self.n:08d}"})
        if reply.status_code != 201:
            raise SystemExit(f"unseen-cost: {self.mode}: a post answered {reply.status_code}: {reply.text}")

    def open_socket(self):
        from websockets.sync.client import connect
        self.ws = self.closing.enter_context(connect(f"ws://127.0.0.1:{self.port}/app/bench-key?protocol=7&client=js&version=8.0"))
        hello = json.loads(self.ws.recv(timeout=10))
        if hello.get("event") != "pusher:connection_established":
            raise SystemExit(f"unseen-cost: {self.mode}: the socket opened with {hello}")
        self.socket_id = json.loads(hello["data"])["socket_id"]
        self.s = 0

    def subscribe(self):
        """One subscription to a room's channel and its end: /pusher/auth as the room's poster (a member), subscribe,
        wait for pusher_internal:subscription_succeeded, unsubscribe (not answered: the next subscribe on the socket
        comes after it)."""
        k = self.s % len(self.rooms)
        self.s += 1
        name, token = self.posters[k]
        channel = f"private-room-{self.rooms[k]}"
        reply = self.session.post(self.base + "/pusher/auth", headers=self.auth(name, token),
                                  data={"socket_id": self.socket_id, "channel_name": channel})
        if reply.status_code != 200:
            raise SystemExit(f"unseen-cost: {self.mode}: /pusher/auth answered {reply.status_code}: {reply.text}")
        self.ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, **reply.json()}}))
        while True:
            m = json.loads(self.ws.recv(timeout=10))
            if m.get("channel") == channel and m.get("event") == "pusher_internal:subscription_succeeded":
                break
            if m.get("event") in ("pusher:error", "pusher:subscription_error"):
                raise SystemExit(f"unseen-cost: {self.mode}: subscribing to {channel}: {m}")
        self.ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": channel}}))

    def snapshot(self):
        """(commandstats {command: (calls, usec)}, total_reads_processed, Redis CPU s, worker CPU s, time), one INFO."""
        stats = self.r.info("commandstats", "stats", "cpu")
        cmd = {k[len("cmdstat_"):]: (v["calls"], v["usec"]) for k, v in stats.items() if k.startswith("cmdstat_")}
        return (cmd, int(stats["total_reads_processed"]), float(stats["used_cpu_user"]) + float(stats["used_cpu_sys"]),
                proc_cpu(self.worker.pid), time.monotonic())

    def stop(self):
        self.closing.close()
        stop(self.worker)
        stop(self.redis_proc)
        self.log.close()


def delta(before, after):
    """The counters between two snapshots; the bench's own INFO (one read, one INFO call, the later snapshot's) out."""
    cmd = collections.Counter()
    for command, (calls, usec) in after[0].items():
        c0, u0 = before[0].get(command, (0, 0))
        cmd[(command, "calls")] += calls - c0
        cmd[(command, "usec")] += usec - u0
    cmd[("info", "calls")] -= 1
    return {"cmd": cmd, "reads": after[1] - before[1] - 1, "redis_cpu": after[2] - before[2],
            "worker_cpu": after[3] - before[3], "wall": after[4] - before[4]}


# ---------------------------------------------------------------- part 1: Redis per post

def lease_mode(label, parts):
    """lease_index's calls told apart by their mode (register, due, ...)."""
    if label == "lease_index" and len(parts) > 2:
        at = 3 + int(parts[2])
        label += " " + (parts[at].decode(errors="replace") if at < len(parts) else "?")
    return label


def alone(m, labels, examples, count):
    """Each script the posts call only when on, alone: the call the census saw (its arguments as the worker sent them)
    repeated `count` times, pipelined from here (500 a batch), Redis busy with nothing else: commandstats usec and
    INFO cpu per call. unseen_post counts up the pending notice the call found, as every counted post did."""
    out = {}
    for label in labels:
        parts = examples.get(label)
        joined = b" ".join(parts or [])
        if not parts or parts[0].lower() != b"evalsha" or b" more arguments)" in joined or b" more bytes)" in joined:
            continue
        m.r.config_resetstat()
        cpu = m.r.info("cpu")
        pipe = m.raw.pipeline(transaction=False)
        for i in range(count):
            pipe.execute_command(*parts)
            if len(pipe) >= 500:
                pipe.execute()
        pipe.execute()
        after = m.r.info("cpu")
        stats = m.r.info("commandstats")["cmdstat_evalsha"]
        cpu_s = (after["used_cpu_user"] + after["used_cpu_sys"]) - (cpu["used_cpu_user"] + cpu["used_cpu_sys"])
        out[label] = {"us": round(stats["usec"] / stats["calls"], 2), "cpu_us": round(cpu_s / count * 1e6, 2),
                      "calls": count}
    return out


def part_redis(a, modes, names, what="post", blocks=None, block_size=None):
    """Per `what` (a Mode method: one post, or one subscription and its end), blocks of sequential ones alternating
    off/on: what Redis ran (census, commandstats), round trips, CPU, wall time; the background subtracted."""
    blocks, block_size = blocks or a.blocks, block_size or a.block_size
    background = BACKGROUND - ({"SUBSCRIBE", "UNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE"} if what == "subscribe" else set())
    settle = 0.05 if what == "subscribe" else 0  # the block's last unsubscribe is not answered
    # Warm-up, not counted: every room posted to (its notice pending, when on), every connection open.
    for m in modes.values():
        for _ in range(3 * len(m.rooms)):
            getattr(m, what)()
    found, examples = {}, {}
    for m in modes.values():
        m.r.config_set("slowlog-max-len", 1000000)
        m.r.config_set("slowlog-log-slower-than", 0)
        m.r.slowlog_reset()
        k = min(block_size, 100)
        for _ in range(k):
            getattr(m, what)()
        time.sleep(0.05)
        entries = sorted(m.raw.slowlog_get(1000000), key=lambda e: e["id"])
        labels, commands, examples[m.mode] = slowlog_census(entries, names, background, lease_mode)
        found[m.mode] = (k, labels, commands)
        m.r.config_set("slowlog-log-slower-than", 10000)
        m.r.slowlog_reset()
    # The background: an idle stretch per mode.
    idle = {}
    for m in modes.values():
        before = m.snapshot()
        time.sleep(a.idle)
        idle[m.mode] = delta(before, m.snapshot())
    sums = {mode: {"cmd": collections.Counter(), "reads": 0.0, "redis_cpu": 0.0, "worker_cpu": 0.0, "wall": 0.0}
            for mode in MODES}
    latencies = {mode: [] for mode in MODES}
    for b in range(blocks):
        for mode in (MODES if b % 2 == 0 else MODES[::-1]):
            m = modes[mode]
            action = getattr(m, what)
            before = m.snapshot()
            for _ in range(block_size):
                action()
            if settle:
                time.sleep(settle)
            d = delta(before, m.snapshot())
            bg, scale = idle[mode], d["wall"] / idle[mode]["wall"]
            s = sums[mode]
            for key, value in d["cmd"].items():
                s["cmd"][key] += value - bg["cmd"][key] * scale
            for key in ("reads", "redis_cpu", "worker_cpu"):
                s[key] += d[key] - bg[key] * scale
            s["wall"] += d["wall"]
            latencies[mode].append(d["wall"] / block_size * 1000)
    k = blocks * block_size
    out = {}
    for mode in MODES:
        census_k, labels, commands = found[mode]
        s = sums[mode]
        per_command, us = {}, 0.0
        for command, (top, nested) in commands.items():
            calls, usec = s["cmd"][(command, "calls")], s["cmd"][(command, "usec")]
            if not calls or not top:
                continue
            share = top / (top + nested)
            us += usec * share / k
            per_command[command] = {"calls": round(calls * share / k, 2), "us": round(usec * share / k, 2)}
        executed = sum(v for (command, kind), v in s["cmd"].items()
                       if kind == "calls" and command.upper() not in background) / k
        out[mode] = {
            "redis_us": round(us, 2),
            "by_command": dict(sorted(per_command.items(), key=lambda kv: -kv[1]["us"])),
            "commands_sent": round(sum(c for c, _ in labels.values()) / census_k, 2),
            "commands_executed": round(sum(c + n for c, n in labels.values()) / census_k, 2),
            "commands_executed_commandstats": round(executed, 2),
            "sent": {label: round(c / census_k, 2) for label, (c, _) in sorted(labels.items(), key=lambda kv: -kv[1][0])},
            "executed_by_label": {label: round((c + n) / census_k, 2) for label, (c, n) in labels.items()},
            "round_trips": round(s["reads"] / k, 2),
            "redis_cpu_us": round(s["redis_cpu"] / k * 1e6, 2),
            "worker_cpu_us": round(s["worker_cpu"] / k * 1e6, 2),
            "latency_ms": round(s["wall"] / k * 1000, 3),
            "latency_ms_block_median": round(statistics.median(latencies[mode]), 3),
            "background_per_second": {"commands": round(sum(v for (c, w), v in idle[mode]["cmd"].items() if w == "calls")
                                                        / idle[mode]["wall"], 1),
                                      "reads": round(idle[mode]["reads"] / idle[mode]["wall"], 1)},
        }
    keys = ("redis_us", "commands_sent", "commands_executed",
            "commands_executed_commandstats", "round_trips", "redis_cpu_us",
            "worker_cpu_us", "latency_ms")
    out["ratio"] = {key: ratio(out["on"][key], out["off"][key]) for key in keys}
    out["added"] = {key: round(out["on"][key] - out["off"][key], 3) for key in keys}
    out["per_mode"] = k
    if what == "post":
        added = [label for label in found["on"][1] if label not in found["off"][1]]
        out["alone"] = alone(modes["on"], added, examples["on"], a.alone)
    return out


# ---------------------------------------------------------------- part 3: throughput

def wrk_script(path, m, body):
    lines = ["local posts = {"]
    for (name, token), room in zip(m.posters, m.rooms):
        lines.append(f'  {{"{name}", "{token}", "/api/rooms/{room}/messages"}},')
    lines += ["}", 'wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"',
              f"wrk.body = '{body}'", "request = function()", "  local p = posts[math.random(#posts)]",
              '  wrk.headers["Authorization"] = "Bearer " .. p[2]', '  wrk.headers["X-Username"] = p[1]',
              "  return wrk.format(nil, p[3])", "end"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def part_throughput(a, modes):
    scripts = {mode: wrk_script(os.path.join(a.work, f"post-{mode}.lua"), modes[mode],
                                '{"content":"hello from the unseen benchmark, wrk"}') for mode in MODES}
    rounds = {mode: [] for mode in MODES}
    for b in range(a.rounds):
        for mode in (MODES if b % 2 == 0 else MODES[::-1]):
            m = modes[mode]
            before = m.snapshot()
            rps, lat, bad = wrk(f"{m.base}/", scripts[mode], connections=a.wrk_connections, seconds=a.wrk_seconds,
                                threads=1)
            d = delta(before, m.snapshot())
            if bad:
                raise SystemExit(f"unseen-cost: {mode}: {bad} posts from wrk were not answered 2xx")
            posts = rps * a.wrk_seconds
            row = {"posts": round(posts), "per_second": round(rps, 1), "p50_ms": lat["50"], "p99_ms": lat["99"],
                   "worker_us": round(d["worker_cpu"] / posts * 1e6, 2), "redis_us": round(d["redis_cpu"] / posts * 1e6, 2)}
            rounds[mode].append(row)
            log(f"  {mode:3} round {b + 1}: {row['per_second']:>8,.0f} posts/s  p50 {row['p50_ms']:.2f} ms  p99 "
                f"{row['p99_ms']:.2f} ms  worker {row['worker_us']:6.1f} µs  Redis {row['redis_us']:5.1f} µs per post")
    out = {}
    for mode in MODES:
        med = {key: round(statistics.median(r[key] for r in rounds[mode]), 2)
               for key in ("per_second", "p50_ms", "p99_ms", "worker_us", "redis_us")}
        out[mode] = {"median": med, "rounds": rounds[mode]}
    out["ratio"] = {key: ratio(out["on"]["median"][key], out["off"]["median"][key])
                    for key in ("per_second", "worker_us", "redis_us", "p50_ms")}
    return out


# ---------------------------------------------------------------- checks

def state(m):
    """What the run left in a mode's Redis: pending notices (rooms' :unseen hashes) and unseen index entries."""
    pending = sum(m.r.hlen(f"room:{{{room}}}:unseen") for room in m.rooms)
    due = sum(m.r.zcard(key) for key in m.r.scan_iter("unseen:due:*"))
    return {"pending_notices": pending, "unseen_index_entries": due}


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(prog="bench/run unseen-cost")
    p.add_argument("--work", required=True)
    p.add_argument("--scripts", required=True, help="the worker's Lua scripts, to name the EVALSHAs")
    p.add_argument("--rooms", type=int, default=20, help="private rooms (a poster and an absent member each)")
    p.add_argument("--blocks", type=int, default=20, help="part 1: blocks per mode")
    p.add_argument("--block-size", type=int, default=200, help="part 1: sequential posts per block")
    p.add_argument("--idle", type=float, default=5, help="part 1: seconds of idle background measured per mode")
    p.add_argument("--alone", type=int, default=20000, help="part 1: pipelined calls of each added script alone")
    p.add_argument("--rounds", type=int, default=3, help="part 3: wrk rounds per mode")
    p.add_argument("--wrk-seconds", type=int, default=5)
    p.add_argument("--wrk-connections", type=int, default=4)
    p.add_argument("--grace-ms", type=int, default=3600000, help="UNSEEN_GRACE_MS of both workers")
    p.add_argument("--sub-blocks", type=int, default=10, help="part 2: blocks per mode")
    p.add_argument("--sub-block-size", type=int, default=100, help="part 2: subscriptions per block")
    p.add_argument("--parts", default="1,2,3")
    a = p.parse_args()
    parts = {int(x) for x in a.parts.split(",") if x}
    names = script_names(a.scripts)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    result = {"bench": "unseen-cost", "commit": commit,
              "machine": {"cores": os.cpu_count(), "redis": redis_version,
                          "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
              "settings": {"rooms": a.rooms, "unseen_grace_ms": a.grace_ms,
                           "on": "WEBHOOK_URLS=<local receiver answering 200>|message_unseen", "off": "no WEBHOOK_URLS",
                           "post": "POST /api/rooms/<private room>/messages by one member, the other absent"}}
    log(f"unseen-cost at {commit}: {os.cpu_count()} cores, redis {redis_version}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {a.rooms} private rooms (a poster, an absent member), "
        f"UNSEEN_GRACE_MS {a.grace_ms}")
    os.environ.pop("WEBHOOK_URLS", None)  # "off" has none; "on" gets its own
    receiver = Receiver()
    modes = {}
    try:
        for mode in MODES:
            modes[mode] = Mode(a, mode, receiver)
        if 1 in parts:
            log(f"\n== 1. Redis per post (INFO commandstats, stats, cpu), {a.blocks} blocks of {a.block_size} "
                "sequential posts per mode, alternating")
            result["post"] = part_redis(a, modes, names)
        if 2 in parts:
            log(f"\n== 2. Redis per subscription to a room's channel (/pusher/auth as a member, subscribe, unsubscribe), "
                f"{a.sub_blocks} blocks of {a.sub_block_size} per mode, alternating")
            for m in modes.values():
                m.open_socket()
            result["subscribe"] = part_redis(a, modes, names, "subscribe", a.sub_blocks, a.sub_block_size)
        if 3 in parts:
            log(f"\n== 3. throughput, {a.rounds} rounds per mode alternating: wrk -c{a.wrk_connections} "
                f"{a.wrk_seconds} s of posts")
            result["throughput"] = part_throughput(a, modes)
        time.sleep(0.2)
        result["left"] = {mode: state(modes[mode]) for mode in MODES}
        result["left"]["receiver_posts"] = receiver.posts
    finally:
        for m in modes.values():
            m.stop()
        receiver.stop()
    report(result)
    result["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(json.dumps(result, separators=(",", ":")), flush=True)


def report(res):
    log("\n== message_unseen: the cost of a post, off vs on (ratio = on / off)")
    for part, unit in (("post", "post"), ("subscribe", "subscription (/pusher/auth, subscribe, unsubscribe)")):
        red = res.get(part)
        if not red:
            continue
        log(f"per {unit}, {red['per_mode']} sequential per mode (background subtracted):")
        rows = (("Redis commands sent (census)", "commands_sent", "{:.2f}"),
                ("Redis commands executed (census)", "commands_executed", "{:.2f}"),
                ("  the same by commandstats", "commands_executed_commandstats", "{:.2f}"),
                ("round trips (reads by Redis)", "round_trips", "{:.2f}"),
                ("Redis µs (commandstats)", "redis_us", "{:.2f}"),
                ("Redis CPU µs (INFO cpu)", "redis_cpu_us", "{:.1f}"),
                ("worker CPU µs (/proc)", "worker_cpu_us", "{:.1f}"),
                ("latency ms (sequential)", "latency_ms", "{:.3f}"))
        log(f"  {'':34} {'off':>9} {'on':>9} {'ratio':>7} {'added':>9}")
        for title, key, fmt in rows:
            log(f"  {title:34} {fmt.format(red['off'][key]):>9} {fmt.format(red['on'][key]):>9} "
                f"{red['ratio'][key] if red['ratio'][key] is not None else '-':>7} {red['added'][key]:>9}")
        for mode in MODES:
            sent = ", ".join(f"{k}" + (f" x{v:g}" if v != 1 else "") for k, v in red[mode]["sent"].items())
            detail = ", ".join(f"{k} {v['calls']:g}x {v['us']:.2f}" for k, v in red[mode]["by_command"].items())
            log(f"    {mode}: sent {sent}\n         µs: {detail}")
        for label, row in red.get("alone", {}).items():
            log(f"  alone, {row['calls']:,} pipelined calls: {label} {row['us']:.2f} µs (INFO cpu {row['cpu_us']:.2f})")
    tp = res.get("throughput")
    if tp:
        log("throughput (wrk; medians of the rounds) and CPU µs per post")
        for mode in MODES:
            m = tp[mode]["median"]
            log(f"  {mode:3} {m['per_second']:>9,.0f} posts/s  p50 {m['p50_ms']:.2f} ms  worker {m['worker_us']:6.1f}  "
                f"Redis {m['redis_us']:5.1f}")
        log(f"  ratio {tp['ratio']}")
    left = res.get("left")
    if left:
        log(f"left: on {left['on']}, off {left['off']}, receiver got {left['receiver_posts']} POSTs")


if __name__ == "__main__":
    main()
