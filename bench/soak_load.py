"""Load generator for bench/soak: mixed traffic through nginx for a fixed time, checked three ways.

- Subscribers (a child process, so it has its own core and its own GIL): N Pusher WebSocket clients through nginx,
  each subscribed to the public channel `room-<id>` of one of the watched rooms (spread evenly), pinging every 60 s
  like pusher-js does. Every `room-message` a socket receives is matched by message id against a per-socket bitmap
  (duplicates are seen, memory stays small) and its delivery delay measured from the message's own timestamp (Redis
  clock, same machine).
- HTTP load (this process, asyncio + aiohttp): paced open-loop streams at fixed rates from a pool of registered users:
  presence switches between all rooms, user searches (each simulated client address, from X-Forwarded-For through
  nginx, stays under SEARCH_RATE_LIMIT), messages into the watched rooms (every user under MESSAGE_RATE_LIMIT), room
  reads, and Ryo replies from a few users at twice AI_RATE_LIMIT, so the limiter answers 429 about half the time.
  Every status is counted by route; every message that got 201 (users' and Ryo's) must reach every subscriber of its
  room exactly once: expected deliveries = sum over messages of the room's subscribers.
- Memory: VmRSS of every worker (and nginx, Redis, this generator) every --sample seconds; growth is the last sample
  against the sample at the end of the warm-up (2 minutes, or 20 % of a shorter run).

Exit status 0 when every check passes, 1 otherwise. A JSON file with every figure and sample is written with --json.
"""
import argparse
import asyncio
import gc
import json
import math
import multiprocessing
import os
import random
import resource
import sys
import threading
import time
from collections import Counter, defaultdict

import aiohttp
import websockets

from lib.benchlib import rss_kib

# ---------------------------------------------------------------------------------------------------------------------
# Small helpers


class Hist:
    """Log-bucketed latency histogram in milliseconds (about 1 % resolution), constant memory."""
    SCALE = 100
    SIZE = 1400  # log1p(1,200,000 ms) * 100

    def __init__(self):
        self.counts = [0] * self.SIZE
        self.n = 0
        self.max = 0.0

    def add(self, ms):
        if ms < 0:
            ms = 0.0
        i = int(math.log1p(ms) * self.SCALE)
        self.counts[i if i < self.SIZE else self.SIZE - 1] += 1
        self.n += 1
        if ms > self.max:
            self.max = ms

    def pct(self, p):
        if not self.n:
            return None
        target = p / 100 * self.n
        run = 0
        for i, c in enumerate(self.counts):
            run += c
            if run >= target:
                return min(math.expm1((i + 0.5) / self.SCALE), self.max)
        return self.max

    def state(self):
        return {"counts": self.counts, "n": self.n, "max": self.max}

    @classmethod
    def from_state(cls, s):
        h = cls()
        h.counts, h.n, h.max = s["counts"], s["n"], s["max"]
        return h


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


TICKS = os.sysconf("SC_CLK_TCK")


def machine_ticks():
    """(busy, total) clock ticks of all CPUs since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def runqueue_wait_ns(pid):
    """Time the process's threads spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat), in ns."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return total


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def fmt_int(n):
    return f"{n:,}"


def fmt_ms(v):
    return "-" if v is None else f"{v:.2f}"


# ---------------------------------------------------------------------------------------------------------------------
# Subscribers (child process)

S_SUBSCRIBED, S_MESSAGES, S_PRESENCE, S_OTHER, S_DUPLICATES, S_CLOSED, S_PONGS, S_MISROUTED = range(8)
SHARED_SIZE = 8


class Subscribers:
    def __init__(self, url, rooms, shared, ping_every, batch):
        self.url, self.rooms, self.shared = url, rooms, shared
        self.ping_every, self.batch = ping_every, batch
        self.sockets = [None] * len(rooms)
        self.readers = []
        self.failed = []
        self.closes = Counter()
        self.other = Counter()
        self.index = {}        # "room/message id" -> index in distinct
        self.distinct = []     # sockets that received message i at least once
        self.delay = Hist()
        self.loop_lag = Hist()
        self.stopping = False

    async def open(self, i):
        room = self.rooms[i]
        try:
            ws = await websockets.connect(self.url, open_timeout=60, ping_interval=None, close_timeout=5,
                                          compression=None, max_size=2 ** 20)
            established = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if established.get("event") != "pusher:connection_established":
                raise RuntimeError(f"unexpected first frame {established}")
            await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": f"room-{room}"}}))
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if m.get("event") == "pusher_internal:subscription_succeeded":
                    break
                if m.get("event") in ("pusher:subscription_error", "pusher:error"):
                    raise RuntimeError(f"subscription refused: {m}")
            self.sockets[i] = ws
            self.shared[S_SUBSCRIBED] += 1
            self.readers.append(asyncio.create_task(self.read(ws, room)))
        except Exception as e:  # noqa: BLE001 - reported, not fatal: the count of subscribers is checked
            self.failed.append(f"{type(e).__name__}: {e}")

    async def read(self, ws, room):
        bitmap = bytearray()
        shared, index, distinct, loads = self.shared, self.index, self.distinct, json.loads
        channel = f"room-{room}"
        try:
            async for raw in ws:
                m = loads(raw)
                event = m.get("event")
                if event == "room-message":
                    data = loads(m["data"])
                    message = data["message"]
                    mid = f"{data.get('roomId')}/{message['id']}"  # stream ids are unique per room only
                    i = index.get(mid)
                    if i is None:
                        i = index[mid] = len(distinct)
                        distinct.append(0)
                    byte, bit = i >> 3, 1 << (i & 7)
                    if byte >= len(bitmap):
                        bitmap.extend(bytes(byte - len(bitmap) + 256))
                    if bitmap[byte] & bit:
                        shared[S_DUPLICATES] += 1
                    else:
                        bitmap[byte] |= bit
                        distinct[i] += 1
                        self.delay.add(time.time() * 1000 - message["timestamp"])
                    if m.get("channel") != channel or data.get("roomId") != room:
                        shared[S_MISROUTED] += 1
                    shared[S_MESSAGES] += 1
                elif event == "presence-update":
                    shared[S_PRESENCE] += 1
                    if m.get("channel") != channel:
                        shared[S_MISROUTED] += 1
                elif event == "pusher:pong":
                    shared[S_PONGS] += 1
                else:
                    shared[S_OTHER] += 1
                    self.other[event] += 1
        except websockets.ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001
            self.closes[f"reader error {type(e).__name__}: {e}"] += 1
        if not self.stopping:
            self.shared[S_CLOSED] += 1
            self.closes[f"{ws.close_code} {ws.close_reason or ''}".strip()] += 1

    async def pinger(self):
        """Each socket sends pusher:ping every ping_every seconds (the server closes a socket silent for 150 s):
        one slice of the sockets each second, on an absolute schedule, so a late event loop does not stretch it."""
        live = [ws for ws in self.sockets if ws is not None]
        slots = max(1, int(self.ping_every))
        frame = json.dumps({"event": "pusher:ping", "data": {}})
        loop = asyncio.get_running_loop()
        start, k = loop.time(), 0
        while True:
            k += 1
            delay = start + k - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            for ws in live[k % slots::slots]:
                try:
                    await ws.send(frame)
                except websockets.ConnectionClosed:
                    pass

    async def watch_loop(self):
        """How late this process's event loop wakes up: if it is late, delivery delays are partly the generator's."""
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.05)
            self.loop_lag.add((time.perf_counter() - t - 0.05) * 1000)

    async def run(self, conn):
        gc_start = [0.0]
        gc_pause = Hist()

        def on_gc(phase, info):
            if phase == "start":
                gc_start[0] = time.perf_counter()
            else:
                gc_pause.add((time.perf_counter() - gc_start[0]) * 1000)
        gc.callbacks.append(on_gc)
        self.gc_pause = gc_pause
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        for start in range(0, len(self.rooms), self.batch):
            await asyncio.gather(*[self.open(i) for i in range(start, min(len(self.rooms), start + self.batch))])
        gc.collect()
        gc.freeze()  # the sockets live all run long: keep them out of the collector's full passes
        per_room = Counter(self.rooms[i] for i, ws in enumerate(self.sockets) if ws is not None)
        conn.send({"ready": True, "per_room": dict(per_room), "failed": self.failed[:20],
                   "failed_count": len(self.failed), "connect_seconds": time.monotonic() - started})
        stop = asyncio.Event()
        threading.Thread(target=lambda: (conn.recv(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
        pinger = asyncio.create_task(self.pinger())
        watcher = asyncio.create_task(self.watch_loop())
        await stop.wait()
        pinger.cancel()
        watcher.cancel()
        self.stopping = True
        await asyncio.gather(*[ws.close() for ws in self.sockets if ws is not None], return_exceptions=True)
        await asyncio.gather(*self.readers, return_exceptions=True)
        ids = list(self.index)
        return {"distinct": {mid: self.distinct[self.index[mid]] for mid in ids},
                "delay": self.delay.state(), "loop_lag": self.loop_lag.state(), "gc": self.gc_pause.state(),
                "closes": dict(self.closes), "other": dict(self.other),
                "counters": list(self.shared), "cpu": cpu_seconds(), "rss": rss_kib(os.getpid())}


def subscriber_main(conn, url, rooms, shared, ping_every, batch):
    try:
        result = asyncio.run(Subscribers(url, rooms, shared, ping_every, batch).run(conn))
    except BaseException as e:  # noqa: BLE001 - anything goes back to the parent, which reports it
        result = {"error": f"{type(e).__name__}: {e}"}
    conn.send(result)


# ---------------------------------------------------------------------------------------------------------------------
# HTTP load (main process)

EXPECTED = {"switch": {200}, "search": {200}, "message": {201}, "ryo-reply": {201, 429},
            "rooms": {200}, "history": {200}, "room-users": {200}}


class User:
    __slots__ = ("name", "headers", "room", "busy")

    def __init__(self, name, token):
        self.name = name
        self.headers = {"Authorization": f"Bearer {token}", "X-Username": name}
        self.room = None
        self.busy = False


class Route:
    def __init__(self):
        self.statuses = Counter()
        self.errors = Counter()
        self.latency = Hist()


class Load:
    def __init__(self, args, session):
        self.args, self.session, self.base = args, session, args.url
        self.routes = defaultdict(Route)
        self.problems = []          # first few 5xx / unexpected statuses / errors, with details
        self.sent = {}              # "room/message id" -> room, for every 201 message (users' and Ryo's)
        self.ryo_accepted = defaultdict(list)   # ryo user -> message timestamps (Redis clock, ms)
        self.ryo_policy = set()
        self.inflight = asyncio.Semaphore(args.max_inflight)
        self.lag = Hist()
        self.late = 0
        self.stopping = False
        self.stopped = asyncio.Event()
        self.seq = 0

    async def call(self, route, method, path, headers=None, body=None):
        """One request; counts its status or error under route; returns (status, parsed JSON or None, headers)."""
        started = time.perf_counter()
        stats = self.routes[route]
        try:
            async with self.session.request(method, self.base + path, headers=headers, json=body) as r:
                raw = await r.read()
                status, response_headers = r.status, r.headers
        except Exception as e:  # noqa: BLE001 - counted per route; any of these fails the run
            stats.errors[type(e).__name__] += 1
            self.note(route, f"{type(e).__name__}: {e}")
            return None, None, None
        stats.latency.add((time.perf_counter() - started) * 1000)
        stats.statuses[status] += 1
        if status not in EXPECTED[route]:
            self.note(route, f"{status} {raw[:200].decode(errors='replace')} "
                             f"(request id {response_headers.get('X-Request-Id')})")
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, parsed, response_headers

    def note(self, route, text):
        if len(self.problems) < 30:
            self.problems.append(f"t={time.monotonic() - self.t0:.1f}s {route}: {text}")

    async def paced(self, rate, make):
        """Starts make() rate times a second on a fixed schedule (open loop), at most max_inflight at once."""
        if rate <= 0:
            return
        loop = asyncio.get_running_loop()
        interval, start, n = 1.0 / rate, loop.time(), 0
        while not self.stopping:
            target = start + n * interval
            delay = target - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.stopping:
                break
            await self.inflight.acquire()
            behind = loop.time() - target
            self.lag.add(behind * 1000)
            if behind > 0.1:
                self.late += 1
            if behind > 1.0:  # fell far behind (generator starved): restart the schedule rather than burst
                start, n = loop.time(), 0
            asyncio.create_task(self.release_after(make()))
            n += 1

    async def release_after(self, coro):
        try:
            await coro
        finally:
            self.inflight.release()

    # -- the operations ------------------------------------------------------------------------------------------

    def next_free(self, users, cursor):
        for _ in range(len(users)):
            cursor[0] = (cursor[0] + 1) % len(users)
            u = users[cursor[0]]
            if not u.busy:
                return u
        return None

    async def switch(self):
        u = self.next_free(self.users, self.switch_cursor)
        if u is None:
            return
        u.busy = True
        try:
            nxt = random.choice([r for r in self.all_rooms if r != u.room])
            body = {"username": u.name, "nextRoomId": nxt}
            if u.room is not None:
                body["previousRoomId"] = u.room
            status, _, _ = await self.call("switch", "POST", "/api/presence/switch", u.headers, body)
            if status == 200:
                u.room = nxt
        finally:
            u.busy = False

    async def search(self):
        self.search_n += 1
        address = self.addresses[self.search_n % len(self.addresses)]
        digits = random.randint(1, 3)
        prefix = f"soak-u{random.randrange(10 ** digits):0{digits}d}"
        if random.random() < 0.2:
            prefix = random.choice(["so", "soa", "soak", "soak-r", "zz", "ab"])
        await self.call("search", "GET", f"/api/users?search={prefix}&limit=20", {"X-Forwarded-For": address})

    async def message(self):
        self.message_n += 1
        u = self.users[self.message_n % len(self.users)]
        room = random.choice(self.watched)
        self.seq += 1
        content = f"soak #{self.seq} from {u.name}: " + "lorem ipsum " * random.randint(1, 8)
        status, body, _ = await self.call("message", "POST", f"/api/rooms/{room}/messages", u.headers,
                                          {"content": content})
        if status == 201 and body:
            self.sent[f"{room}/{body['message']['id']}"] = room

    async def read(self):
        u = random.choice(self.users)
        kind = random.choice(["rooms", "history", "room-users"])
        room = random.choice(self.all_rooms)
        path = {"rooms": "/api/rooms", "history": f"/api/rooms/{room}/messages?limit=20",
                "room-users": f"/api/rooms/{room}/users"}[kind]
        await self.call(kind, "GET", path, u.headers)

    async def ryo_user(self, u, interval):
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(self.stopped.wait(), random.uniform(0, interval))
        except asyncio.TimeoutError:
            pass
        start, n = loop.time(), 0
        while not self.stopping:
            room = random.choice(self.watched)
            body = {"roomId": room, "prompt": f"@ryo what's up? ({n})",
                    "systemState": {"chatRoomContext": {"recentMessages": f"{u.name}: hello\nother: hi there"}}}
            status, parsed, headers = await self.call("ryo-reply", "POST", "/api/ai/ryo-reply", u.headers, body)
            if headers is not None and headers.get("RateLimit-Policy"):
                self.ryo_policy.add(headers.get("RateLimit-Policy"))
            if status == 201 and parsed:
                self.sent[f"{room}/{parsed['message']['id']}"] = room
                self.ryo_accepted[u.name].append(parsed["message"]["timestamp"])
            n += 1
            delay = start + n * interval - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(self.stopped.wait(), delay)
                except asyncio.TimeoutError:
                    pass

    # -- setup ----------------------------------------------------------------------------------------------------

    async def register(self, name, i):
        body = {"username": name, "password": "soak-password"}
        xff = {"X-Forwarded-For": self.addresses[i % len(self.addresses)]}
        for _ in range(5):
            try:
                async with self.session.post(self.base + "/api/auth/register", json=body, headers=xff) as r:
                    data = await r.json(content_type=None)
                    if r.status == 201:
                        return User(name, data["token"])
                    if r.status != 409:
                        raise RuntimeError(f"register {name}: {r.status} {data}")
                async with self.session.post(self.base + "/api/auth/login", json=body, headers=xff) as r:
                    data = await r.json(content_type=None)
                    if r.status == 200:
                        return User(name, data["token"])
                    raise RuntimeError(f"login {name}: {r.status} {data}")
            except aiohttp.ClientError:
                await asyncio.sleep(0.5)
        raise RuntimeError(f"could not register {name}")

    async def setup(self):
        a = self.args
        self.all_rooms = a.rooms.split(",")
        self.watched = self.all_rooms[:a.watched]
        self.addresses = [f"198.51.100.{i}" for i in range(1, 255)] + [f"203.0.113.{i}" for i in range(1, 255)]
        names = [f"soak-u{i:04d}" for i in range(a.users)]
        ryo_names = [f"soak-ryo{i:02d}" for i in range(a.ryo_users)]
        sem = asyncio.Semaphore(16)

        async def one(name, i):
            async with sem:
                return await self.register(name, i)
        everyone = await asyncio.gather(*[one(n, i) for i, n in enumerate(names + ryo_names)])
        self.users, self.ryo = everyone[:a.users], everyone[a.users:]
        self.switch_cursor = [0]
        self.search_n = self.message_n = 0

    async def run(self, seconds):
        a = self.args
        self.t0 = time.monotonic()
        interval = a.ai_window / (a.ai_limit * a.ryo_overdrive)
        tasks = [asyncio.create_task(self.paced(a.switch_rate, self.switch)),
                 asyncio.create_task(self.paced(a.search_rate, self.search)),
                 asyncio.create_task(self.paced(a.message_rate, self.message)),
                 asyncio.create_task(self.paced(a.read_rate, self.read))]
        tasks += [asyncio.create_task(self.ryo_user(u, interval)) for u in self.ryo]
        await asyncio.sleep(seconds)
        self.stopping = True
        self.stopped.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _ in range(a.max_inflight):  # every request still in flight has finished
            await self.inflight.acquire()


# ---------------------------------------------------------------------------------------------------------------------
# Samples

async def redis_info(port):
    """used_memory, used_memory_rss, keys and pub/sub channels of the cluster's Redis (plain RESP, no client)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
        out = {}
        for cmd in (b"INFO memory\r\n", b"INFO stats\r\n", b"DBSIZE\r\n"):
            writer.write(cmd)
            head = await reader.readline()
            if head.startswith(b"$"):
                text = (await reader.readexactly(int(head[1:]) + 2)).decode()
                for line in text.splitlines():
                    k, _, v = line.partition(":")
                    if k in ("used_memory", "used_memory_rss", "pubsub_channels"):
                        out[k] = int(v)
            elif head.startswith(b":"):
                out["keys"] = int(head[1:])
        writer.close()
        return out
    except (OSError, asyncio.TimeoutError, ValueError):
        return {}


class Sampler:
    def __init__(self, args, shared, sub_pid):
        self.args, self.shared, self.sub_pid = args, shared, sub_pid
        self.workers = [int(p) for p in args.worker_pids.split(",")]
        self.nginx = [args.nginx_pid] + children(args.nginx_pid) if args.nginx_pid else []
        self.samples = []
        self.dead = set()

    async def sample(self, t, load=None):
        s = {"t": round(t, 1), "mono": time.monotonic(), "workers": [rss_kib(p) for p in self.workers],
             "cpu": {"workers": [cpu_ticks(p) for p in self.workers],
                     "nginx": sum(cpu_ticks(p) or 0 for p in self.nginx),
                     "redis": cpu_ticks(self.args.redis_pid) if self.args.redis_pid else None,
                     "generator": (cpu_ticks(os.getpid()) or 0)
                     + ((cpu_ticks(self.sub_pid) or 0) if self.sub_pid else 0)},
             "machine": machine_ticks(),
             "wait": {"workers": [runqueue_wait_ns(p) for p in self.workers],
                      "nginx": sum(runqueue_wait_ns(p) or 0 for p in self.nginx),
                      "redis": runqueue_wait_ns(self.args.redis_pid) if self.args.redis_pid else None,
                      "generator": (runqueue_wait_ns(os.getpid()) or 0)
                      + ((runqueue_wait_ns(self.sub_pid) or 0) if self.sub_pid else 0)},
             "nginx": sum(rss_kib(p) or 0 for p in self.nginx), "generator": (rss_kib(os.getpid()) or 0)
             + (rss_kib(self.sub_pid) or 0), "redis": await redis_info(self.args.redis_port),
             "received": self.shared[S_MESSAGES] + self.shared[S_PRESENCE]}
        if load is not None:
            s["requests"] = sum(sum(r.statuses.values()) for r in load.routes.values())
            s["5xx"] = sum(c for r in load.routes.values() for st, c in r.statuses.items() if st >= 500)
            s["errors"] = sum(sum(r.errors.values()) for r in load.routes.values())
        for i, v in enumerate(s["workers"]):
            if v is None:
                self.dead.add(i + 1)
        self.samples.append(s)
        return s

    async def loop(self, load, seconds, t0):
        every, report_every = self.args.sample, self.args.progress
        n, last_report = 1, 0.0
        prev = self.samples[-1]  # the one taken as the load started
        while True:
            target = t0 + n * every
            if target > t0 + seconds - 0.5:
                return
            await asyncio.sleep(max(0, target - time.monotonic()))
            s = await self.sample(time.monotonic() - t0, load)
            n += 1
            if s["t"] - last_report >= report_every - 0.5:
                rps = (s["requests"] - prev["requests"]) / (s["t"] - prev["t"])
                eps = (s["received"] - prev["received"]) / (s["t"] - prev["t"])
                cpu = cpu_percent(prev, s)
                print(f"  t={s['t']:>4.0f}s {rps:4.0f} req/s, 5xx {s['5xx']}, errors {s['errors']}, "
                      f"{eps:5.0f} frames/s "
                      f"to subscribers; RSS MiB workers " + " / ".join(mib(w) for w in s["workers"])
                      + f", Redis used {mib((s['redis'].get('used_memory') or 0) / 1024)}; CPU % workers "
                      + "/".join(fmt_pct(c) for c in cpu["workers"])
                      + f", nginx {fmt_pct(cpu['nginx'])}, redis {fmt_pct(cpu['redis'])}, "
                      f"generator {fmt_pct(cpu['generator'])}, other {fmt_pct(cpu['other'])}",
                      flush=True)
                last_report, prev = s["t"], s


def cpu_percent(a, b):
    """CPU used between two samples, % of one core, per process group."""
    dt = max(1e-6, b["mono"] - a["mono"]) * TICKS / 100

    def pct(x, y):
        return None if x is None or y is None else (y - x) / dt
    out = {"workers": [pct(x, y) for x, y in zip(a["cpu"]["workers"], b["cpu"]["workers"])],
           **{k: pct(a["cpu"][k], b["cpu"][k]) for k in ("nginx", "redis", "generator")}}
    # Everything else the machine ran meanwhile (other people's work, the kernel's).
    busy = (b["machine"][0] - a["machine"][0]) / dt
    out["machine"] = busy
    ours = sum(x or 0 for x in out["workers"]) + sum(out[k] or 0 for k in ("nginx", "redis", "generator"))
    out["other"] = busy - ours
    return out


def wait_percent(a, b):
    """Run-queue wait between two samples, % of the wall time (100 = one thread waiting all the time)."""
    dt = max(1e-6, b["mono"] - a["mono"]) * 1e9 / 100

    def pct(x, y):
        return None if x is None or y is None else (y - x) / dt
    return {"workers": [pct(x, y) for x, y in zip(a["wait"]["workers"], b["wait"]["workers"])],
            **{k: pct(a["wait"][k], b["wait"][k]) for k in ("nginx", "redis", "generator")}}


def fmt_pct(v):
    return "-" if v is None else f"{v:.0f}"


# ---------------------------------------------------------------------------------------------------------------------
# Report


def ryo_window_max(stamps, window_ms, slack_ms):
    """Most accepted replies inside any window (minus slack for the gap between the limiter check and the stored
    message timestamp)."""
    stamps = sorted(stamps)
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while t - stamps[j] >= window_ms - slack_ms:
            j += 1
        best = max(best, i - j + 1)
    return best


SERVER_ROUTES = {"switch": ("POST", "/api/presence/switch"), "search": ("GET", "/api/users"),
                 "message": ("POST", "/api/rooms/{id}/messages"), "ryo-reply": ("POST", "/api/ai/ryo-reply"),
                 "rooms": ("GET", "/api/rooms"), "history": ("GET", "/api/rooms/{id}/messages"),
                 "room-users": ("GET", "/api/rooms/{id}/users")}


def read_worker_logs(paths):
    """Per (method, route): the workers' own request durations (text log lines); and every warning or worse."""
    durations = defaultdict(Hist)
    notable = []
    for path in paths:
        try:
            f = open(path, errors="replace")
        except OSError:
            continue
        with f:
            for line in f:
                parts = line.split(" ", 3)
                level = parts[1] if len(parts) > 1 else ""
                if level in ("warning", "error", "critical") and "development defaults" not in line:
                    notable.append(f"{os.path.basename(path)}: {line.strip()[:300]}")
                if "duration_ms=" not in line:
                    continue
                fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                try:
                    durations[(fields.get("method"), fields.get("route"))].add(float(fields["duration_ms"]))
                except (KeyError, ValueError):
                    pass
    return durations, notable


def report(args, load, sub_ready, sub_result, sampler, seconds, gen_cpu, wall):
    out = {"command": args.command, "seconds": seconds, "subscribers": sum(sub_ready["per_room"].values())}
    checks = []  # (name, ok, detail)
    print()
    print(f"== soak: {seconds / 60:g} min, nginx -> {len(sampler.workers)} workers, "
          f"{fmt_int(out['subscribers'])} WebSocket subscribers on {args.watched} rooms "
          f"({len(load.all_rooms)} rooms in play), {fmt_int(args.users)} users + {args.ryo_users} Ryo users ==")
    print(f"command: {args.command}")

    # Routes
    print()
    server, notable = read_worker_logs(args.worker_logs.split(",") if args.worker_logs else [])
    print("| route | requests | req/s | p50 ms | p99 ms | max ms | in the worker p50 / p99 ms | statuses |")
    print("|---|---|---|---|---|---|---|---|")
    total = Counter()
    all_lat = Hist()
    routes_out = {}
    order = ["switch", "search", "message", "ryo-reply", "rooms", "history", "room-users"]
    for name in order:
        r = load.routes.get(name)
        if r is None:
            continue
        n = sum(r.statuses.values())
        total.update(r.statuses)
        for i, c in enumerate(r.latency.counts):
            all_lat.counts[i] += c
        all_lat.n += r.latency.n
        all_lat.max = max(all_lat.max, r.latency.max)
        statuses = ", ".join(f"{s}: {fmt_int(c)}" for s, c in sorted(r.statuses.items()))
        if r.errors:
            statuses += ", " + ", ".join(f"{e}: {c}" for e, c in r.errors.items())
        srv = server.get(SERVER_ROUTES[name])
        srv_text = f"{fmt_ms(srv.pct(50))} / {fmt_ms(srv.pct(99))}" if srv else "-"
        print(f"| {name} | {fmt_int(n)} | {n / seconds:.1f} | {fmt_ms(r.latency.pct(50))} | "
              f"{fmt_ms(r.latency.pct(99))} | {fmt_ms(r.latency.max)} | {srv_text} | {statuses} |")
        routes_out[name] = {"statuses": dict(r.statuses), "errors": dict(r.errors), "p50": r.latency.pct(50),
                            "p99": r.latency.pct(99), "max": r.latency.max,
                            "worker_p50": srv and srv.pct(50), "worker_p99": srv and srv.pct(99)}
    n_total = sum(total.values())
    print(f"| **all** | {fmt_int(n_total)} | {n_total / seconds:.1f} | {fmt_ms(all_lat.pct(50))} | "
          f"{fmt_ms(all_lat.pct(99))} | {fmt_ms(all_lat.max)} | | "
          + ", ".join(f"{s}: {fmt_int(c)}" for s, c in sorted(total.items())) + " |")
    out["routes"] = routes_out

    # Broadcasts
    counters = sub_result["counters"]
    per_room = sub_ready["per_room"]
    distinct = sub_result["distinct"]
    expected = sum(per_room.get(room, 0) for room in load.sent.values())
    received = sum(min(distinct.get(mid, 0), per_room.get(room, 0)) for mid, room in load.sent.items())
    lost = expected - received
    missing_messages = sum(1 for mid, room in load.sent.items() if distinct.get(mid, 0) < per_room.get(room, 0))
    unmatched = [mid for mid in distinct if mid not in load.sent]
    unmatched_deliveries = sum(distinct[mid] for mid in unmatched)
    delay = Hist.from_state(sub_result["delay"])
    user_msgs = sum(1 for _ in load.sent) - sum(len(v) for v in load.ryo_accepted.values())
    ryo_msgs = sum(len(v) for v in load.ryo_accepted.values())
    print()
    print("| broadcasts (`room-message` to subscribers) | |")
    print("|---|---|")
    print(f"| messages broadcast (201: users' + Ryo's) | {fmt_int(len(load.sent))} ({fmt_int(user_msgs)} + "
          f"{fmt_int(ryo_msgs)}) |")
    print(f"| expected deliveries (each to every subscriber of its room) | {fmt_int(expected)} |")
    print(f"| received | {fmt_int(received)} |")
    print(f"| **lost** | **{fmt_int(lost)}** ({missing_messages} messages short) |")
    print(f"| duplicates / on the wrong channel | {fmt_int(counters[S_DUPLICATES])} / "
          f"{fmt_int(counters[S_MISROUTED])} |")
    print(f"| received without a 201 seen by the sender | {len(unmatched)} messages, "
          f"{fmt_int(unmatched_deliveries)} deliveries |")
    print(f"| delivery delay p50 / p99 / max (message timestamp to socket) | {fmt_ms(delay.pct(50))} / "
          f"{fmt_ms(delay.pct(99))} / {fmt_ms(delay.max)} ms |")
    print(f"| `presence-update` frames received | {fmt_int(counters[S_PRESENCE])} |")
    print(f"| subscribers closed during the run | {counters[S_CLOSED]} "
          + (f"({sub_result['closes']})" if sub_result["closes"] else "") + " |")
    print(f"| `pusher:ping` answered with `pusher:pong` | {fmt_int(counters[S_PONGS])} |")
    out["broadcasts"] = {"messages": len(load.sent), "user_messages": user_msgs, "ryo_messages": ryo_msgs,
                         "expected": expected, "received": received, "lost": lost,
                         "duplicates": counters[S_DUPLICATES], "misrouted": counters[S_MISROUTED],
                         "unmatched_messages": len(unmatched), "presence_updates": counters[S_PRESENCE],
                         "delay_p50": delay.pct(50), "delay_p99": delay.pct(99), "delay_max": delay.max,
                         "closed": counters[S_CLOSED], "closes": sub_result["closes"],
                         "other_events": sub_result["other"], "pongs": counters[S_PONGS]}

    # Ryo limiter
    accepted = {u.name: len(load.ryo_accepted.get(u.name, [])) for u in load.ryo}
    window_max = max((ryo_window_max(v, args.ai_window * 1000, 500) for v in load.ryo_accepted.values()), default=0)
    ryo_stats = load.routes["ryo-reply"].statuses
    bound = args.ai_limit * math.ceil(seconds / args.ai_window)
    print()
    print(f"Ryo: {args.ryo_users} users each asking every {args.ai_window / (args.ai_limit * args.ryo_overdrive):g} s "
          f"({args.ryo_overdrive:g}x AI_RATE_LIMIT={args.ai_limit}/{args.ai_window}s): {ryo_stats.get(201, 0)} "
          f"replies, {ryo_stats.get(429, 0)} x 429; accepted per user {min(accepted.values(), default=0)}-"
          f"{max(accepted.values(), default=0)} (limit allows at most {bound} in {seconds:g} s); most in any "
          f"{args.ai_window} s window: {window_max}; policy header {sorted(load.ryo_policy)}")
    out["ryo"] = {"accepted_per_user": accepted, "window_max": window_max, "policy": sorted(load.ryo_policy)}

    # Memory
    samples = sampler.samples
    warmup = min(120.0, 0.2 * seconds)
    load_samples = [s for s in samples if s.get("phase") == "load"]
    warm = next((s for s in load_samples if s["t"] >= warmup - 0.5), load_samples[-1])
    end = load_samples[-1]
    idle = next((s for s in samples if s.get("phase") == "idle"), None)
    subs = next((s for s in samples if s.get("phase") == "subscribed"), None)
    print()
    print(f"Memory (RSS MiB; sampled every {args.sample} s; warm-up = first {warmup:g} s; growth = end vs. end of "
          f"warm-up, t={warm['t']:g} s):")
    print()
    print("| process | before sockets | 1,000 subscribers | end of warm-up | end | max after warm-up | growth |"
          .replace("1,000", fmt_int(out["subscribers"])))
    print("|---|---|---|---|---|---|---|")
    mem_out = {}
    growth_fail = []
    for i in range(len(sampler.workers)):
        after = [s["workers"][i] for s in load_samples if s["t"] >= warm["t"] and s["workers"][i] is not None]
        w, e = warm["workers"][i], end["workers"][i]
        growth = (e - w) / w * 100 if w and e else None
        if growth is None or growth > args.max_growth:
            growth_fail.append(i + 1)
        print(f"| worker {i + 1} | {mib(idle['workers'][i] if idle else None)} | "
              f"{mib(subs['workers'][i] if subs else None)} | {mib(w)} | {mib(e)} | {mib(max(after, default=None))} | "
              + ("-" if growth is None else f"{growth:+.1f} %") + " |")
        mem_out[f"worker-{i + 1}"] = {"idle": idle and idle["workers"][i], "subscribed": subs and subs["workers"][i],
                                      "warm": w, "end": e, "max": max(after, default=None), "growth_pct": growth}

    def row(label, key, fn):
        w, e = fn(warm), fn(end)
        after = [fn(s) for s in load_samples if s["t"] >= warm["t"] and fn(s)]
        g = (e - w) / w * 100 if w and e else None
        print(f"| {label} | {mib(fn(idle) if idle else None)} | {mib(fn(subs) if subs else None)} | {mib(w)} | "
              f"{mib(e)} | {mib(max(after, default=None))} | " + ("-" if g is None else f"{g:+.1f} %") + " |")
        mem_out[key] = {"warm": w, "end": e, "growth_pct": g}
    row("nginx (all processes)", "nginx", lambda s: s["nginx"] or None)
    row("Redis used_memory", "redis_used", lambda s: (s["redis"].get("used_memory") or 0) // 1024 or None)
    row("Redis RSS", "redis_rss", lambda s: (s["redis"].get("used_memory_rss") or 0) // 1024 or None)
    row("load generator (both processes)", "generator", lambda s: s["generator"] or None)
    keys_w, keys_e = warm["redis"].get("keys"), end["redis"].get("keys")
    print()
    print(f"Redis keys: {keys_w} at end of warm-up, {keys_e} at end; pub/sub channels "
          f"{warm['redis'].get('pubsub_channels')} -> {end['redis'].get('pubsub_channels')}")
    cpu = cpu_percent(load_samples[0], end)
    print(f"CPU during the load, % of one core ({os.cpu_count()} cores in all): workers "
          + " / ".join(fmt_pct(c) for c in cpu["workers"])
          + f", nginx {fmt_pct(cpu['nginx'])}, Redis {fmt_pct(cpu['redis'])}, "
          f"load generator {fmt_pct(cpu['generator'])}; everything else on the machine {fmt_pct(cpu['other'])} "
          f"(machine busy {fmt_pct(cpu['machine'])} of {os.cpu_count() * 100})")
    wait = wait_percent(load_samples[0], end)
    print("Waiting for a CPU (run queue, % of the time; other work on the machine shows here): workers "
          + " / ".join(fmt_pct(c) for c in wait["workers"])
          + f", nginx {fmt_pct(wait['nginx'])}, Redis {fmt_pct(wait['redis'])}, "
          f"load generator {fmt_pct(wait['generator'])}; load average {open('/proc/loadavg').read().split()[1]}")
    out["cpu_percent"] = cpu
    out["runqueue_wait_percent"] = wait
    loop_lag_p99 = Hist.from_state(sub_result["loop_lag"]).pct(99) or 0
    if (cpu["other"] or 0) > 25 or loop_lag_p99 > 100:
        print(f"WARNING: the machine was not quiet (other work {fmt_pct(cpu['other'])} % of a core; the subscribers' "
              f"event loop late by {loop_lag_p99:.0f} ms at p99): latencies and delivery delays above are inflated; "
              "run again on a quiet machine for README figures")
    out["memory"] = mem_out
    out["samples"] = samples

    # Generator health
    sub_cpu = sub_result.get("cpu", 0)
    print(f"Load generator: HTTP process {gen_cpu / wall * 100:.0f} % of a core, subscriber process "
          f"{sub_cpu / wall * 100:.0f} % (over {wall:.0f} s incl. connect), its event loop late by p99 "
          f"{fmt_ms(Hist.from_state(sub_result['loop_lag']).pct(99))} / max "
          f"{fmt_ms(Hist.from_state(sub_result['loop_lag']).max)} ms (GC pauses {Hist.from_state(sub_result['gc']).n}, "
          f"max {fmt_ms(Hist.from_state(sub_result['gc']).max)} ms); schedule lag p99 "
          f"{fmt_ms(load.lag.pct(99))} ms, {load.late} requests started >100 ms late; subscribers connected in "
          f"{sub_ready['connect_seconds']:.1f} s")
    out["generator"] = {"cpu_http": gen_cpu / wall, "cpu_subscribers": sub_cpu / wall, "lag_p99": load.lag.pct(99),
                        "late": load.late}

    # Checks
    n5xx = sum(c for s, c in total.items() if s >= 500)
    errors = sum(sum(r.errors.values()) for r in load.routes.values())
    unexpected = sum(c for name, r in load.routes.items() for s, c in r.statuses.items()
                     if s not in EXPECTED[name] and s < 500)
    checks.append(("memory flat after warm-up (every worker <= +%g %%)" % args.max_growth, not growth_fail,
                   f"workers over: {growth_fail}" if growth_fail else ", ".join(
                       f"w{i + 1} {mem_out[f'worker-{i + 1}']['growth_pct']:+.1f} %"
                       for i in range(len(sampler.workers)))))
    checks.append(("zero 5xx", n5xx == 0, f"{n5xx} of {fmt_int(n_total)}"))
    checks.append(("zero lost broadcasts", lost == 0 and received > 0,
                   f"{fmt_int(received)} of {fmt_int(expected)} received, {fmt_int(lost)} lost"))
    checks.append(("no duplicate or misrouted broadcast", counters[S_DUPLICATES] == 0 and counters[S_MISROUTED] == 0,
                   f"{counters[S_DUPLICATES]} duplicates, {counters[S_MISROUTED]} misrouted"))
    checks.append(("no network error", errors == 0, f"{errors}"))
    checks.append(("no unexpected 4xx (only Ryo's 429)", unexpected == 0, f"{unexpected}"))
    checks.append((f"all {args.subscribers} subscribers connected and stayed connected",
                   sub_ready["failed_count"] == 0 and counters[S_CLOSED] == 0,
                   f"{sub_ready['failed_count']} failed to subscribe, {counters[S_CLOSED]} closed"))
    checks.append(("every worker alive throughout", not sampler.dead, f"dead: {sorted(sampler.dead)}"
                   if sampler.dead else "yes"))
    over_limit = seconds / (args.ai_window / (args.ai_limit * args.ryo_overdrive)) > args.ai_limit + 1
    checks.append(("Ryo limiter: 429s at the limit, never more than the limit per window",
                   (ryo_stats.get(429, 0) > 0 or not over_limit) and window_max <= args.ai_limit,
                   f"{ryo_stats.get(429, 0)} x 429, max {window_max} per window"))
    print()
    print("| check | result | |")
    print("|---|---|---|")
    for name, ok, detail in checks:
        print(f"| {name} | {'PASS' if ok else '**FAIL**'} | {detail} |")
    if load.problems:
        print()
        print("First problems seen by the load generator:")
        for p in load.problems:
            print(f"  {p}")
    if notable:
        print()
        print(f"Worker log lines at warning or above: {len(notable)}; the first:")
        for line in notable[:10]:
            print(f"  {line}")
    out["worker_log_warnings"] = notable[:100]
    out["checks"] = [{"check": n, "ok": ok, "detail": d} for n, ok, d in checks]
    out["problems"] = load.problems
    out["passed"] = all(ok for _, ok, _ in checks)
    return out


# ---------------------------------------------------------------------------------------------------------------------


async def main_async(args):
    seconds = args.seconds
    ctx = multiprocessing.get_context("spawn")
    shared = ctx.RawArray("q", SHARED_SIZE)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=args.max_inflight, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        load = Load(args, session)
        t_setup = time.monotonic()
        await load.setup()
        print(f"setup: {len(load.users) + len(load.ryo)} users registered in {time.monotonic() - t_setup:.1f} s",
              flush=True)

        rooms = [load.watched[i % len(load.watched)] for i in range(args.subscribers)]
        ws_url = args.url.replace("http://", "ws://") + f"/app/{args.key}?protocol=7&client=soak&version=1"
        parent, child = ctx.Pipe()
        sub = ctx.Process(target=subscriber_main, args=(child, ws_url, rooms, shared, args.ping_every, 100),
                          daemon=True)
        sampler = Sampler(args, shared, None)
        s = await sampler.sample(0)
        s["phase"] = "idle"
        sub.start()
        sampler.sub_pid = sub.pid
        wall0, cpu0 = time.monotonic(), cpu_seconds()
        ready = await asyncio.to_thread(parent.recv)
        if "error" in ready:
            raise SystemExit(f"subscriber process failed: {ready['error']}")
        print(f"subscribers: {sum(ready['per_room'].values())} of {args.subscribers} subscribed in "
              f"{ready['connect_seconds']:.1f} s ({', '.join(f'{r}: {n}' for r, n in ready['per_room'].items())})"
              + (f"; {ready['failed_count']} failed, e.g. {ready['failed'][:3]}" if ready["failed_count"] else ""),
              flush=True)
        await asyncio.sleep(2)
        s = await sampler.sample(0)
        s["phase"] = "subscribed"

        a = args
        print(f"load: {seconds:g} s; switch {a.switch_rate:g}/s over {len(load.all_rooms)} rooms, search "
              f"{a.search_rate:g}/s from {len(load.addresses)} client addresses, message {a.message_rate:g}/s into "
              f"{a.watched} watched rooms, reads {a.read_rate:g}/s, Ryo {a.ryo_users} users x "
              f"{a.ai_limit * a.ryo_overdrive:g}/{a.ai_window}s", flush=True)
        gc.collect()
        gc.freeze()
        t0 = time.monotonic()
        load.t0 = t0
        s = await sampler.sample(0, load)
        s["phase"] = "load"
        sampling = asyncio.create_task(sampler.loop(load, seconds, t0))
        await load.run(seconds)
        await sampling
        s = await sampler.sample(time.monotonic() - t0, load)
        s["phase"] = "load"
        for x in sampler.samples:
            x.setdefault("phase", "load")

        # Drain: until the subscribers have received nothing new for 3 s (at most 30 s).
        last, quiet, waited = -1, 0.0, 0.0
        while quiet < 3 and waited < 30:
            now = shared[S_MESSAGES]
            quiet = quiet + 0.5 if now == last else 0.0
            last = now
            await asyncio.sleep(0.5)
            waited += 0.5
        parent.send("stop")
        result = await asyncio.to_thread(parent.recv)
        sub.join(30)
        if "error" in result:
            raise SystemExit(f"subscriber process failed: {result['error']}")
        wall = time.monotonic() - wall0
        out = report(args, load, ready, result, sampler, seconds, cpu_seconds() - cpu0, wall)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return out["passed"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="nginx, e.g. http://127.0.0.1:8080")
    p.add_argument("--key", default="presence-key")
    p.add_argument("--worker-pids", required=True, help="comma-separated")
    p.add_argument("--nginx-pid", type=int)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--redis-pid", type=int)
    p.add_argument("--worker-logs", help="comma-separated worker log files (text format): the workers' own request "
                                         "durations, and any warning they logged")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--rooms", required=True, help="comma-separated public room ids; the first --watched get the "
                                                  "subscribers and the messages, switches go over all of them")
    p.add_argument("--watched", type=int, default=8)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--switch-rate", type=float, default=80)
    p.add_argument("--search-rate", type=float, default=50)
    p.add_argument("--message-rate", type=float, default=15)
    p.add_argument("--read-rate", type=float, default=50)
    p.add_argument("--ryo-users", type=int, default=10)
    p.add_argument("--ryo-overdrive", type=float, default=2.0, help="Ryo request rate per user / AI_RATE_LIMIT")
    p.add_argument("--ai-limit", type=int, default=5)
    p.add_argument("--ai-window", type=int, default=60)
    p.add_argument("--max-growth", type=float, default=10.0, help="RSS growth allowed after warm-up, %%")
    p.add_argument("--sample", type=float, default=10, help="seconds between RSS samples")
    p.add_argument("--progress", type=float, default=30, help="seconds between progress lines")
    p.add_argument("--ping-every", type=float, default=60)
    p.add_argument("--max-inflight", type=int, default=128)
    p.add_argument("--timeout", type=float, default=15)
    p.add_argument("--json", help="write every figure and sample here")
    p.add_argument("--command", default="bench/soak", help="shown in the report")
    args = p.parse_args()
    ok = asyncio.run(main_async(args))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
