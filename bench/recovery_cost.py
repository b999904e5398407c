"""Connection recovery (#31) on vs off on the publish path (driven by bench/recovery-cost): a Pusher HTTP API trigger
and a chat message post, side by side in one run. Ends with one JSON line holding every figure.

"off" and "on" are the same release binary with RECOVERY_ENABLED=false and =true, each on its own throwaway
redis-server, with RECOVERY_CHANNELS=bench-* so that the triggers' channels (bench-...) are recoverable when on;
the message posts go to the room general, whose channel room-general is recoverable by default.

Before anything is counted, every log the counted requests append to is filled to RECOVERY_MAX_EVENTS by
recovery_publish.lua itself (called as the worker calls it), so each counted append also trims one entry: a busy
channel's steady state. (Entries older than RECOVERY_WINDOW are deleted by the append too; in these runs none are.)

  1. callgrind: worker and redis-server under valgrind --tool=callgrind, collection off; per route a warm-up, then
     collection on and zeroed in both, N sequential requests on one keep-alive connection, a dump of each
     (callgrind_control --dump: its `totals`), collection off. The background over an idle stretch of 10 s
     (instructions per second, per process) is subtracted at its rate over each window's wall time.
  2. Redis µs: both modes' native workers at once; blocks of sequential requests alternating off/on (the first mode
     alternates block to block); INFO commandstats usec deltas per block. A script's usec holds the commands it ran,
     which commandstats counts on their own as well: each command is taken at the share of its calls that were
     top-level, as a census found them (a slowlog pass at threshold 0 before the counted blocks, which tells a
     script's commands, client `?:0`, from the worker's; the slowlog is off while counting: logging every command
     slows the scripts). Beside it, the publish step alone: the script and a plain PUBLISH pipelined from here.
  3. throughput, rounds alternating off/on: delivery-load (compiled) publishes channels x events through the signed
     Pusher API with no subscriber (only the publish path) on --publish-connections keep-alive connections, one
     request in flight on each, as fast as answers come; wrk posts messages. CPU per request: the worker from /proc,
     Redis from INFO cpu (used_cpu_user + used_cpu_sys), the generator from getrusage(RUSAGE_CHILDREN).
  4. memory: used_memory (INFO memory) before and after the first trigger round of each mode (fresh channels),
     divided by the events retained (XLEN of every channel's log; MEMORY USAGE of the logs and positions beside it),
     with the stored event's size (the log entry's m field); MEMORY USAGE of room-general's log (message posts).
"""
import argparse
import collections
import datetime
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time

import redis
import requests

from lib.benchlib import (composed_script, free_port, log, proc_cpu, ratio, script_names, slowlog_census,
                          start_ready_worker, start_redis, start_worker, stop, wait_ready)
from presence_bench import lua_script, seed_users, wrk
from realtime_load import signed_url
from switch_instructions import dumped_instructions

APP_ID, KEY, SECRET = "bench", "bench-key", "bench-secret"
MODES = ("off", "on")
# Commands that are not caused by the requests measured: the worker's periodic scripts and connection upkeep, the
# bench's own.
BACKGROUND = {"presence_due", "presence_sweep", "worker_announce", "worker_list", "expiring_members", "presence_settle",
              "PING", "HELLO", "SLOWLOG", "INFO", "CONFIG", "CLIENT", "SELECT", "MEMORY", "XLEN", "XRANGE", "SUBSCRIBE",
              "SSUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "SUNSUBSCRIBE", "COMMAND", "SCAN", "DBSIZE"}


def worker_settings(mode, redis_port):
    return dict(REDIS_URL=f"redis://127.0.0.1:{redis_port}", LOG_LEVEL="error", METRICS_PORT="0",
                PUSHER_APP_ID=APP_ID, PUSHER_KEY=KEY, PUSHER_SECRET=SECRET,
                RECOVERY_ENABLED="true" if mode == "on" else "false", RECOVERY_CHANNELS="bench-*",
                MESSAGE_RATE_LIMIT="100000", PRESENCE_RATE_LIMIT="1000000", SEARCH_RATE_LIMIT="1000000",
                BCRYPT_COST="4", SWEEP_INTERVAL_MS="60000", MAX_CONNECTIONS_PER_ADDRESS="10000")


def redis_cpu(r):
    info = r.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prefill(r, scripts, channels, max_events, window):
    """Fills each channel's log to the cap (RECOVERY_MAX_EVENTS events) with recovery_publish.lua itself, called as the
    worker calls it, so that every counted append also trims one entry: a busy channel's steady state (in a fresh log
    nothing is trimmed)."""
    sha = r.script_load(composed_script(os.path.join(scripts, "recovery_publish.lua")))
    epochs = {channel: secrets.token_hex(8) for channel in channels}  # as the worker makes them: 16 hex digits
    pipe = r.pipeline(transaction=False)
    for k in range(max_events):
        for channel in channels:
            data = json.dumps(json.dumps({"roomId": channel, "message": {
                "id": f"p{k:08d}", "username": "bench", "content": "hello from the recovery benchmark",
                "timestamp": 1700000000000 + k}}))
            item = f'{{"event":"room-message","channel":"{channel}","data":{data}'
            pipe.evalsha(sha, 2, f"rec:{{{channel}}}", f"rec:{{{channel}}}:log", "PUBLISH", f"ch:{{{channel}}}",
                         epochs[channel], 86400, window * 1000, max_events, item)
        if len(pipe) >= 2000:
            pipe.execute()
    pipe.execute()


# ---------------------------------------------------------------- the requests

class Client:
    """Sequential requests to one worker on one keep-alive connection: triggers (round-robin over `channels`) and
    message posts (round-robin over the users)."""

    def __init__(self, port, users, channels):
        self.base = f"http://127.0.0.1:{port}"
        self.users, self.channels = users, channels
        self.session = requests.Session()
        self.n = 0

    def trigger(self, i):
        channel = self.channels[i % len(self.channels)]
        data = json.dumps({"roomId": channel, "message": {
            "id": f"m{i:08d}", "username": "bench", "content": "hello from the recovery benchmark",
            "timestamp": 1700000000000 + i}})
        body = json.dumps({"name": "room-message", "channel": channel, "data": data}).encode()
        path = f"/apps/{APP_ID}/events"
        self.session.post(signed_url(self.base, APP_ID, KEY, SECRET, path, body), data=body,
                          headers={"Content-Type": "application/json"}).raise_for_status()

    def post(self, i):
        name, token = self.users[i % len(self.users)]
        self.session.post(self.base + "/api/rooms/general/messages",
                          headers={"Authorization": f"Bearer {token}", "X-Username": name,
                                   "Content-Type": "application/json"},
                          data=json.dumps({"content": f"hello from the recovery benchmark {i:08d}"})).raise_for_status()

    def health(self, i):
        self.session.get(self.base + "/health").raise_for_status()


# ---------------------------------------------------------------- part 1: callgrind

def start_callgrind_redis(port, directory):
    return start_redis(port, directory, wrapper=["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                                 f"--callgrind-out-file={directory}/callgrind.out.%p"],
                       output=os.path.join(directory, "valgrind.log"), timeout=120,
                       what="recovery-cost: redis-server under callgrind")


def callgrind(*argv):
    subprocess.run(["callgrind_control", *argv], capture_output=True, check=True)


class Counted:
    """Collection windows over several processes under callgrind at once: {label: (pid, out_dir)}."""

    def __init__(self, procs):
        self.procs = procs
        self.dumps = {}

    def window(self, action, n):
        for pid, _ in self.procs.values():
            callgrind("-i", "on", str(pid))
        for pid, _ in self.procs.values():
            callgrind("-z", str(pid))
        t0 = time.monotonic()
        for i in range(n):
            action(i)
        wall = time.monotonic() - t0
        totals = {}
        for label, (pid, out_dir) in self.procs.items():
            totals[label], self.dumps[label] = dumped_instructions(pid, out_dir)
        for pid, _ in self.procs.values():
            callgrind("-i", "off", str(pid))
        return totals, wall


def part_callgrind(a, mode, users_count=300):
    work = os.path.join(a.work, f"callgrind-{mode}")
    os.makedirs(work, exist_ok=True)
    redis_port, port = free_port(), free_port()
    redis_dir = os.path.join(work, "redis")
    redis_proc = start_callgrind_redis(redis_port, redis_dir)
    # Redis's cron as rare as it gets: what remains is measured idle and subtracted.
    r = redis.Redis(port=redis_port, decode_responses=True)
    r.config_set("hz", 1)
    r.config_set("dynamic-hz", "no")
    worker_dir = os.path.join(work, "worker")
    os.makedirs(worker_dir, exist_ok=True)
    logf = open(os.path.join(work, "worker.log"), "w")
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={worker_dir}/callgrind.out.%p", a.stripped]
    worker = start_worker(port, logf, command=command, LD_PRELOAD=a.shim, **worker_settings(mode, redis_port))
    try:
        wait_ready(port, worker, timeout=240, what=f"{mode} under callgrind")
        users = seed_users(r, users_count, "cg", with_tokens=True)
        channels = [f"bench-cg-{k}" for k in range(10)]
        prefill(r, a.scripts, channels + ["room-general"], a.max_events, a.window)
        filled = time.monotonic()
        client = Client(port, users, channels)
        # Warm-up, not counted: every channel and user taken twice (a channel's first event starts its epoch).
        for i in range(2 * len(channels)):
            client.trigger(i)
        for i in range(2 * len(users)):
            client.post(i)
        for i in range(50):
            client.health(i)
        counted = Counted({"worker": (worker.pid, worker_dir), "redis": (redis_proc.pid, redis_dir)})
        idle, idle_wall = counted.window(lambda i: time.sleep(1.0), 10)
        rate = {k: v / idle_wall for k, v in idle.items()}
        out = {"background_per_second": {k: round(v) for k, v in rate.items()}}
        offset = 2 * len(users)
        for route, action in (("health", client.health), ("trigger", lambda i: client.trigger(2 * len(channels) + i)),
                              ("post", lambda i: client.post(offset + i))):
            totals, wall = counted.window(action, a.requests)
            row = {}
            for label, total in totals.items():
                row[label] = round((total - rate[label] * wall) / a.requests)
                row[f"{label}_raw"] = round(total / a.requests)
            row["seconds"] = round(wall, 2)
            out[route] = row
            if os.environ.get("PROFILE_KEEP"):
                os.makedirs(os.environ["PROFILE_KEEP"], exist_ok=True)
                for label, dump in counted.dumps.items():
                    shutil.copy(dump, os.path.join(os.environ["PROFILE_KEEP"], f"{route}-{mode}-{label}.callgrind"))
            log(f"  {mode:3} {route:8} worker {row['worker']:>11,} redis {row['redis']:>9,} instructions per request"
                f"   ({a.requests} in {wall:.1f} s)")
        out["seconds_since_prefill"] = round(time.monotonic() - filled)
        if out["seconds_since_prefill"] > a.window:
            log(f"  {mode}: the counting ended {out['seconds_since_prefill']} s after the logs were filled, past the "
                f"window ({a.window} s): appends also deleted entries past it")
        return out
    finally:
        stop(worker, timeout=30)
        stop(redis_proc, timeout=30)


# ---------------------------------------------------------------- part 2: Redis µs per request

class Native:
    """One mode's native worker on its own Redis."""

    def __init__(self, a, mode, users_count=900):
        self.mode = mode
        self.redis_port, self.port = free_port(), free_port()
        self.redis_proc = start_redis(self.redis_port, os.path.join(a.work, f"redis-{mode}"))
        self.r = redis.Redis(port=self.redis_port, decode_responses=True)
        self.raw = redis.Redis(port=self.redis_port)  # the slowlog's entries are bytes in redis-py
        self.log = open(os.path.join(a.work, f"worker-{mode}.log"), "w")
        self.worker = start_ready_worker(self.port, self.log, timeout=20, what=f"{mode} worker",
                                         **worker_settings(mode, self.redis_port))
        self.users = seed_users(self.r, users_count, "rc", with_tokens=True)
        self.client = Client(self.port, self.users, [f"bench-us-{k}" for k in range(100)])
        prefill(self.r, a.scripts, self.client.channels + ["room-general"], a.max_events, a.window)

    def stop(self):
        stop(self.worker)
        stop(self.redis_proc)


def commandstats(r):
    """{command: (calls, usec)} from INFO commandstats."""
    return {k: (v["calls"], v["usec"]) for k, v in r.info("commandstats").items()}


def part_redis_us(a, natives, names):
    """Redis's own time per request: INFO commandstats usec deltas over blocks of requests, alternating off/on. A
    script's usec holds the commands it ran, which commandstats also counts on their own: each command's usec is taken
    at the share of its calls that were top-level, as a census (a slowlog pass at threshold 0, before the counted
    blocks: the slowlog's own work would slow the scripts) found them."""
    routes = ("trigger", "post")
    # Warm-up, not counted: every channel's log in use, the scripts loaded, every connection open.
    for n in natives.values():
        for i in range(2 * len(n.client.channels)):
            n.client.trigger(i)
        for i in range(100):
            n.client.post(i)
    counter = collections.Counter()
    found = {}
    for n in natives.values():
        n.r.config_set("slowlog-max-len", 1000000)
        n.r.config_set("slowlog-log-slower-than", 0)
        for route in routes:
            n.r.slowlog_reset()
            k = min(a.block_size, 100)
            for i in range(k):
                getattr(n.client, route)(counter[(route, n.mode)] + i)
            counter[(route, n.mode)] += k
            time.sleep(0.05)
            entries = sorted(n.raw.slowlog_get(1000000), key=lambda e: e["id"])
            found[(route, n.mode)] = (k, *slowlog_census(entries, names, BACKGROUND)[:2])
        n.r.config_set("slowlog-log-slower-than", 10000)
        n.r.slowlog_reset()
    sums = {key: collections.Counter() for key in found}
    for b in range(a.blocks):
        order = MODES if b % 2 == 0 else MODES[::-1]
        for route in routes:
            for mode in order:
                n = natives[mode]
                action = getattr(n.client, route)
                before = commandstats(n.r)
                start = counter[(route, mode)]
                for i in range(a.block_size):
                    action(start + i)
                counter[(route, mode)] += a.block_size
                time.sleep(0.05)  # a publish that follows an answer without holding it
                after = commandstats(n.r)
                for command, (calls, usec) in after.items():
                    c0, u0 = before.get(command, (0, 0))
                    sums[(route, mode)][(command, "calls")] += calls - c0
                    sums[(route, mode)][(command, "usec")] += usec - u0
    k = a.blocks * a.block_size
    out = {}
    for (route, mode), total in sums.items():
        census_k, labels, commands = found[(route, mode)]
        per_command, us = {}, 0.0
        for command, (top, nested) in commands.items():
            calls, usec = total[("cmdstat_" + command, "calls")], total[("cmdstat_" + command, "usec")]
            if not calls or not top:
                continue
            share = top / (top + nested)
            part = usec * share / k
            us += part
            per_command[command] = {"calls": round(calls * share / k, 2), "us": round(part, 2)}
        out.setdefault(route, {})[mode] = {
            "us_per_request": round(us, 2),
            "by_command": dict(sorted(per_command.items(), key=lambda kv: -kv[1]["us"])),
            "commands_sent_per_request": round(sum(c for c, _ in labels.values()) / census_k, 2),
            "commands_executed_per_request": round(sum(c + m for c, m in labels.values()) / census_k, 2),
            "sent": {label: round(c / census_k, 2) for label, (c, _) in sorted(labels.items(), key=lambda kv: -kv[1][1])},
        }
    for route in out:
        out[route]["ratio"] = ratio(out[route]["on"]["us_per_request"], out[route]["off"]["us_per_request"])
        out[route]["added_us"] = round(out[route]["on"]["us_per_request"] - out[route]["off"]["us_per_request"], 2)
    out["requests_per_mode"] = k
    out["alone"] = redis_alone(a, natives)
    return out


def redis_alone(a, natives, count=20000):
    """The publish step alone, Redis busy with nothing else: `count` calls pipelined from here (500 a batch) on the
    on-Redis, round-robin over its full logs: recovery_publish.lua as the worker calls it, and the plain PUBLISH of
    recovery off; commandstats usec and INFO cpu per call."""
    n = natives["on"]
    sha = n.r.script_load(composed_script(os.path.join(a.scripts, "recovery_publish.lua")))
    channels = n.client.channels
    item = ('{"event":"room-message","channel":"%s","data":' + json.dumps(json.dumps({"roomId": "x", "message": {
        "id": "m00000000", "username": "bench", "content": "hello from the recovery benchmark",
        "timestamp": 1700000000000}})))

    def run(step, command, count):
        pipe = n.r.pipeline(transaction=False)
        n.r.config_resetstat()
        cpu = redis_cpu(n.r)
        for i in range(count):
            step(pipe, channels[i % len(channels)])
            if len(pipe) >= 500:
                pipe.execute()
        pipe.execute()
        cpu = redis_cpu(n.r) - cpu
        stats = n.r.info("commandstats")[f"cmdstat_{command}"]
        return {"us": round(stats["usec"] / stats["calls"], 2), "cpu_us": round(cpu / count * 1e6, 2)}

    def script(pipe, channel):
        pipe.evalsha(sha, 2, f"rec:{{{channel}}}", f"rec:{{{channel}}}:log", "PUBLISH", f"ch:{{{channel}}}",
                     "0000000000000001", 86400, a.window * 1000, a.max_events, item % channel)

    def publish(pipe, channel):
        pipe.publish(f"ch:{{{channel}}}", item % channel + "}")

    run(script, "evalsha", 2000)  # warm
    out = {"calls": count, "on": run(script, "evalsha", count), "off": run(publish, "publish", count)}
    out["ratio"] = ratio(out["on"]["cpu_us"], out["off"]["cpu_us"])
    return out


# ---------------------------------------------------------------- parts 3 and 4: throughput and memory

def used_memory(r):
    time.sleep(0.5)
    return r.info("memory")["used_memory"]


def retained(r, prefix, channels):
    """Events in the channels' logs, MEMORY USAGE of logs and positions, and the mean stored event (m) size."""
    pipe = r.pipeline(transaction=False)
    for c in range(channels):
        pipe.xlen(f"rec:{{{prefix}{c}}}:log")
    for c in range(channels):
        pipe.memory_usage(f"rec:{{{prefix}{c}}}:log", samples=0)
        pipe.memory_usage(f"rec:{{{prefix}{c}}}", samples=0)
    replies = pipe.execute()
    events = sum(replies[:channels])
    usage = sum(x or 0 for x in replies[channels:])
    sample = r.xrange(f"rec:{{{prefix}0}}:log", count=100)
    size = statistics.mean(len(fields["m"].encode()) for _, fields in sample) if sample else 0
    return events, usage, size, sample[0][1]["m"] if sample else None


def delivery_load(a, n, prefix):
    """One delivery-load run against n's worker: no subscribers, a.channels x a.events triggers; returns the figures."""
    argv = [os.environ["DELIVERY_LOAD_BIN"], "--protocol", "pusher",
            "--url", f"ws://127.0.0.1:{n.port}/app/{KEY}?protocol=7",
            "--publish", "pusher", "--publish-url", f"http://127.0.0.1:{n.port}",
            "--app-id", APP_ID, "--key", KEY, "--secret", SECRET, "--channel-prefix", prefix,
            "--channel-count", str(a.channels), "--subscribers-per-channel", "0",
            "--events-per-channel", str(a.events), "--rate", "10000000", "--drain-timeout", "1",
            "--publish-connections", str(a.publish_connections)]
    before = (proc_cpu(n.worker.pid), redis_cpu(n.r), children_cpu())
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    after = (proc_cpu(n.worker.pid), redis_cpu(n.r), children_cpu())
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"recovery-cost: delivery-load failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    result = json.loads(lines[-1])
    published = result["events_published"]
    if result["publish_failures"] or published != a.channels * a.events:
        raise SystemExit(f"recovery-cost: delivery-load: {result['publish_failures']} failed publishes, "
                         f"{published} of {a.channels * a.events} answered 2xx\n{out.stderr[-2000:]}")
    return {"requests": published, "seconds": result["publish_seconds"],
            "per_second": round(published / result["publish_seconds"], 1),
            "worker_us": round((after[0] - before[0]) / published * 1e6, 2),
            "redis_us": round((after[1] - before[1]) / published * 1e6, 2),
            "generator_us": round((after[2] - before[2]) / published * 1e6, 2)}


def wrk_posts(a, n, script):
    before = (proc_cpu(n.worker.pid), redis_cpu(n.r), children_cpu())
    rps, lat, bad = wrk(f"http://127.0.0.1:{n.port}/api/rooms/general/messages", script,
                        connections=a.wrk_connections, seconds=a.wrk_seconds, threads=1)
    after = (proc_cpu(n.worker.pid), redis_cpu(n.r), children_cpu())
    if bad:
        raise SystemExit(f"recovery-cost: {bad} message posts were not answered 2xx")
    k = rps * a.wrk_seconds
    return {"requests": round(k), "seconds": a.wrk_seconds, "per_second": round(rps, 1), "p50_ms": lat["50"],
            "p99_ms": lat["99"], "worker_us": round((after[0] - before[0]) / k * 1e6, 2),
            "redis_us": round((after[1] - before[1]) / k * 1e6, 2),
            "generator_us": round((after[2] - before[2]) / k * 1e6, 2)}


def medians(rows):
    return {key: round(statistics.median(row[key] for row in rows), 2)
            for key in ("per_second", "worker_us", "redis_us", "generator_us")}


def part_throughput(a, natives):
    prefix = "bench-room-"
    memory = {}
    rounds = {("trigger", m): [] for m in MODES} | {("post", m): [] for m in MODES}
    # Each worker's paths warm (its connections to Redis open, the script loaded) before anything is counted.
    for n in natives.values():
        for i in range(20):
            n.client.trigger(i)
    tmp = tempfile.mkdtemp(prefix="recovery-cost-", dir=a.work)
    scripts = {mode: lua_script(os.path.join(tmp, f"post-{mode}.lua"),
                                "wrk.body = '{\"content\":\"hello from the recovery benchmark, wrk\"}'",
                                natives[mode].users) for mode in MODES}
    for b in range(a.rounds):
        order = MODES if b % 2 == 0 else MODES[::-1]
        for mode in order:
            n = natives[mode]
            before = used_memory(n.r) if not rounds[("trigger", mode)] else None
            row = delivery_load(a, n, prefix)
            rounds[("trigger", mode)].append(row)
            if before is not None:
                after = used_memory(n.r)
                events, usage, size, example = retained(n.r, prefix, a.channels)
                memory[mode] = {"used_memory_delta": after - before, "events_published": row["requests"],
                                "events_retained": events, "memory_usage_of_keys": usage,
                                "stored_event_bytes": round(size, 1), "example": example}
            log(f"  {mode:3} trigger round {b + 1}: {row['per_second']:>8,.0f}/s  worker {row['worker_us']:6.1f} µs"
                f"  Redis {row['redis_us']:5.1f} µs  delivery-load {row['generator_us']:5.1f} µs per request")
        for mode in order:
            n = natives[mode]
            row = wrk_posts(a, n, scripts[mode])
            rounds[("post", mode)].append(row)
            log(f"  {mode:3} post    round {b + 1}: {row['per_second']:>8,.0f}/s  worker {row['worker_us']:6.1f} µs"
                f"  Redis {row['redis_us']:5.1f} µs  wrk {row['generator_us']:5.1f} µs per request")
    out = {}
    for route in ("trigger", "post"):
        out[route] = {mode: {"median": medians(rounds[(route, mode)]), "rounds": rounds[(route, mode)]} for mode in MODES}
        out[route]["ratio"] = ratio(out[route]["on"]["median"]["per_second"], out[route]["off"]["median"]["per_second"])
        out[route]["worker_us_ratio"] = ratio(out[route]["on"]["median"]["worker_us"], out[route]["off"]["median"]["worker_us"])
        out[route]["redis_us_ratio"] = ratio(out[route]["on"]["median"]["redis_us"], out[route]["off"]["median"]["redis_us"])
    # Memory: the first trigger round of each mode filled a.channels fresh channels.
    on, off = memory.get("on"), memory.get("off")
    mem = {"channels": a.channels, "events_per_channel": a.events}
    if on:
        mem["on"] = on
        mem["off"] = off
        mem["bytes_per_retained_event"] = round(on["used_memory_delta"] / on["events_retained"], 1) if on["events_retained"] else None
        mem["bytes_per_retained_event_less_off"] = round((on["used_memory_delta"] - off["used_memory_delta"])
                                                         / on["events_retained"], 1) if on["events_retained"] else None
        mem["memory_usage_bytes_per_event"] = round(on["memory_usage_of_keys"] / on["events_retained"], 1) if on["events_retained"] else None
    # The message posts' log: room-general, a chat message's event.
    r = natives["on"].r
    events = r.xlen("rec:{room-general}:log")
    if events:
        usage = (r.memory_usage("rec:{room-general}:log", samples=0) or 0) + (r.memory_usage("rec:{room-general}", samples=0) or 0)
        sample = r.xrange("rec:{room-general}:log", count=100)
        mem["room_general"] = {"events_retained": events, "memory_usage_bytes_per_event": round(usage / events, 1),
                               "stored_event_bytes": round(statistics.mean(len(f["m"].encode()) for _, f in sample), 1),
                               "example": sample[0][1]["m"]}
    return out, mem


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(prog="bench/run recovery-cost")
    p.add_argument("--work", required=True)
    p.add_argument("--shim", required=True, help="the sigsuspend shim (LD_PRELOAD) for the worker under valgrind")
    p.add_argument("--stripped", required=True, help="presence-server without debug info, resource bundles beside it")
    p.add_argument("--scripts", required=True, help="the worker's Lua scripts, to name the EVALSHAs")
    p.add_argument("--requests", type=int, default=300, help="part 1: sequential requests per route under callgrind")
    p.add_argument("--blocks", type=int, default=10, help="part 2: blocks per route and mode")
    p.add_argument("--block-size", type=int, default=200, help="part 2: requests per block")
    p.add_argument("--channels", type=int, default=100, help="parts 3 and 4: trigger channels")
    p.add_argument("--events", type=int, default=1000, help="parts 3 and 4: events per channel per round")
    p.add_argument("--rounds", type=int, default=3, help="part 3: rounds per mode")
    p.add_argument("--publish-connections", type=int, default=8)
    p.add_argument("--wrk-seconds", type=int, default=5)
    p.add_argument("--wrk-connections", type=int, default=8)
    p.add_argument("--parts", default="1,2,3")
    a = p.parse_args()
    a.max_events = int(os.environ.get("RECOVERY_MAX_EVENTS", "1000"))
    a.window = int(os.environ.get("RECOVERY_WINDOW", "300"))
    parts = {int(x) for x in a.parts.split(",") if x}
    names = script_names(a.scripts)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    max_events, window = a.max_events, a.window
    result = {"bench": "recovery-cost", "commit": commit,
              "machine": {"cores": os.cpu_count(), "redis": redis_version,
                          "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
              "settings": {"recovery_window_s": window, "recovery_max_events": max_events,
                           "trigger": "POST /apps/bench/events, one room-message event (data ~150 B) to bench-* channels",
                           "post": "POST /api/rooms/general/messages (channel room-general)"}}
    log(f"recovery-cost at {commit}: {os.cpu_count()} cores, redis {redis_version}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; RECOVERY_WINDOW {window} s, RECOVERY_MAX_EVENTS {max_events}")

    if 1 in parts:
        log(f"\n== 1. instructions per request, callgrind (worker and redis-server), {a.requests} sequential requests a route")
        cg = {mode: part_callgrind(a, mode) for mode in MODES}
        inst = {"requests": a.requests}
        for route in ("health", "trigger", "post"):
            row = {}
            for label in ("worker", "redis"):
                off, on = cg["off"][route][label], cg["on"][route][label]
                row[label] = {"off": off, "on": on, "ratio": ratio(on, off), "added": on - off}
            off_total = cg["off"][route]["worker"] + cg["off"][route]["redis"]
            on_total = cg["on"][route]["worker"] + cg["on"][route]["redis"]
            row["both"] = {"off": off_total, "on": on_total, "ratio": ratio(on_total, off_total), "added": on_total - off_total}
            row["raw"] = {mode: {k: cg[mode][route][f"{k}_raw"] for k in ("worker", "redis")} for mode in MODES}
            inst[route] = row
        inst["background_per_second"] = {mode: cg[mode]["background_per_second"] for mode in MODES}
        result["instructions"] = inst

    if parts & {2, 3}:
        natives = {}
        try:
            for mode in MODES:
                natives[mode] = Native(a, mode)
            if 2 in parts:
                log(f"\n== 2. Redis µs per request (INFO commandstats), {a.blocks} blocks of {a.block_size} per route and "
                    "mode, alternating")
                result["redis_us"] = part_redis_us(a, natives, names)
                result["redis_us"]["requests_per_mode"] = a.blocks * a.block_size
            if 3 in parts:
                log(f"\n== 3. throughput, {a.rounds} rounds per mode alternating: delivery-load {a.channels} channels x "
                    f"{a.events} events, no subscribers, {a.publish_connections} connections; wrk -c{a.wrk_connections} "
                    f"{a.wrk_seconds} s of message posts")
                result["throughput"], result["memory"] = part_throughput(a, natives)
        finally:
            for n in natives.values():
                n.stop()

    report(result)
    result["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(json.dumps(result, separators=(",", ":")), flush=True)


def report(res):
    log("\n== connection recovery: the publish path, off vs on (ratio = on / off)")
    inst = res.get("instructions")
    if inst:
        log(f"instructions per request (callgrind, {inst['requests']} sequential requests; Redis's idle background "
            "subtracted)")
        log(f"  {'route':10} {'process':7} {'off':>12} {'on':>12} {'ratio':>7} {'added':>10}")
        for route in ("trigger", "post", "health"):
            for label in ("worker", "redis", "both") if route != "health" else ("worker",):
                row = inst[route][label]
                log(f"  {route:10} {label:7} {row['off']:>12,} {row['on']:>12,} {row['ratio']:>7.3f} {row['added']:>10,}")
    us = res.get("redis_us")
    if us:
        log(f"Redis µs per request (INFO commandstats usec; a script counted once, with what it runs), "
            f"{us['requests_per_mode']} requests per route and mode, blocks alternating")
        for route in ("trigger", "post"):
            row = us[route]
            log(f"  {route:10} off {row['off']['us_per_request']:6.2f} µs ({row['off']['commands_sent_per_request']:.2f} sent, "
                f"{row['off']['commands_executed_per_request']:.2f} executed)   on {row['on']['us_per_request']:6.2f} µs "
                f"({row['on']['commands_sent_per_request']:.2f} sent, {row['on']['commands_executed_per_request']:.2f} "
                f"executed)   ratio {row['ratio']}")
            for mode in MODES:
                detail = ", ".join(f"{k} {v['calls']:g}x {v['us']:.2f}" for k, v in row[mode]["by_command"].items())
                sent = ", ".join(f"{k}" + (f" x{v:g}" if v != 1 else "") for k, v in row[mode]["sent"].items())
                log(f"      {mode}: {detail}   (sent: {sent})")
        alone = us["alone"]
        log(f"  the publish step alone, {alone['calls']:,} pipelined calls: recovery_publish {alone['on']['us']:.2f} µs "
            f"(INFO cpu {alone['on']['cpu_us']:.2f}), PUBLISH {alone['off']['us']:.2f} µs (INFO cpu "
            f"{alone['off']['cpu_us']:.2f}); ratio of the CPU {alone['ratio']}")
    tp = res.get("throughput")
    if tp:
        log("throughput (medians of the rounds) and CPU µs per request")
        for route, gen in (("trigger", "delivery-load"), ("post", "wrk")):
            for mode in MODES:
                m = tp[route][mode]["median"]
                log(f"  {route:10} {mode:3} {m['per_second']:>9,.0f}/s   worker {m['worker_us']:6.1f}  Redis "
                    f"{m['redis_us']:5.1f}  {gen} {m['generator_us']:5.1f}")
            log(f"  {route:10} ratio {tp[route]['ratio']}  (worker µs {tp[route]['worker_us_ratio']}, Redis µs "
                f"{tp[route]['redis_us_ratio']})")
    mem = res.get("memory")
    if mem and mem.get("on"):
        on = mem["on"]
        log(f"Redis memory per retained event: {mem['bytes_per_retained_event']} B (used_memory +{on['used_memory_delta']:,} "
            f"for {on['events_retained']:,} events retained in {mem['channels']} channels; off: "
            f"+{mem['off']['used_memory_delta']:,}); MEMORY USAGE of the keys {mem['memory_usage_bytes_per_event']} B; "
            f"stored event {on['stored_event_bytes']} B")
        if mem.get("room_general"):
            g = mem["room_general"]
            log(f"  room-general (message posts): {g['memory_usage_bytes_per_event']} B per event by MEMORY USAGE, "
                f"{g['events_retained']} retained, stored event {g['stored_event_bytes']} B")


if __name__ == "__main__":
    main()
