"""Pusher-format webhooks (WEBHOOK_URLS), end to end: real workers on one Redis (or the Redis Cluster when
SYSTEM_REDIS_CLUSTER=1), raw protocol-7 WebSocket clients, and a local HTTP receiver that checks every POST with the
official `pusher` library's validate_webhook (X-Pusher-Key, X-Pusher-Signature = hex HMAC-SHA256 of the body).

Covered:
- channel_occupied / channel_vacated exactly once per transition with subscribers on two workers leaving in every
  way (unsubscribe, close frame, reset connection), for two episodes in a row; and a connection that ends with a
  FIN but no close frame vacating its channel within seconds;
- member_added / member_removed per user, not per socket, across workers; removal found by expiry after a SIGKILL
  (and channel_vacated for the dead worker's channels after OCCUPANCY_TTL); chat presence switches on
  presence-room-<id>;
- client_event (private: no user_id; presence: with user_id) and cache_miss (cache-, private-cache-, presence-cache-),
  and that the signature check is not vacuous (a tampered body does not validate);
- a receiver refusing connections for a minute: nothing lost, per-channel order kept, batches within
  WEBHOOK_BATCH_SIZE, failures counted, the outbox gauge back to 0;
- a worker SIGKILLed with a batch in flight: the surviving worker takes the delivery lease over and delivers every
  event at least once, first occurrences in order;
- per-URL event filters (URL|name+name);
- the bounded outbox (WEBHOOK_OUTBOX_MAX): the oldest dropped and counted, the newest delivered once the receiver
  is back;
- a receiver answering 302: no redirect followed (the other host sees nothing), a failed delivery retried and counted;
- a WEBHOOK_TIMEOUT_MS that does not fit WEBHOOK_LEASE_MS stops the worker at start-up with one line;
- no event of any kind for the internal # channels (#signed-in after Pusher sign-ins, #server-to-user-<id>);
- the outbox bounded in bytes (WEBHOOK_OUTBOX_MAX_BYTES): MEMORY USAGE within the bound, drops and oversized events
  counted.

Delivery is at least once, so duplicates are tolerated only after a worker death; everywhere else the exact
sequence per channel is asserted after the traffic has settled. Every test ends by asserting that the receivers saw
no invalid signature and no malformed body.
"""
import collections
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pusher
import pytest
import requests
import websocket

from conftest import free_port, register, wait_until

KEY, SECRET, APP = "hook-key", "hook-secret-1", "5150"
PUSHER_ENV = {"PUSHER_KEY": KEY, "PUSHER_SECRET": SECRET, "PUSHER_APP_ID": APP}
EVENT_NAMES = {"channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event", "cache_miss",
               "ticket_unattended", "message_unseen"}
# Signs channel subscriptions locally (no request is made with it).
SIGNER = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=1, ssl=False)


def tag() -> str:
    return uuid.uuid4().hex[:10]


def port_of(worker) -> int:
    return int(worker.base.rsplit(":", 1)[1])


def api(worker):
    """The official server library against one worker's HTTP API."""
    return pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=port_of(worker), ssl=False)


def target_id(url: str) -> str:
    """A receiver's id in Redis keys and metrics: the first 12 hex digits of the SHA-256 of its URL (without the
    `|events` filter)."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


# --- Expected events ---------------------------------------------------------------------------------------------

def occ(channel):
    return {"name": "channel_occupied", "channel": channel}


def vac(channel):
    return {"name": "channel_vacated", "channel": channel}


def added(channel, user):
    return {"name": "member_added", "channel": channel, "user_id": user}


def removed(channel, user):
    return {"name": "member_removed", "channel": channel, "user_id": user}


def miss(channel):
    return {"name": "cache_miss", "channel": channel}


def client_event(channel, event, data, socket_id, user_id=None):
    e = {"name": "client_event", "channel": channel, "event": event, "data": data, "socket_id": socket_id}
    if user_id is not None:
        e["user_id"] = user_id
    return e


def key(event) -> str:
    return json.dumps(event, sort_keys=True)


def firsts(events):
    """The events in order with repeats (at-least-once duplicates) left out."""
    seen, out = set(), []
    for e in events:
        if key(e) not in seen:
            seen.add(key(e))
            out.append(e)
    return out


class AnyOrder(tuple):
    """Events of one step whose relative order the contract leaves open (e.g. channel_occupied and member_added from
    one presence subscription)."""


def assert_sequence(actual, steps, what):
    """`actual` is exactly `steps` in order; an AnyOrder step matches its events in any order."""
    i, ok = 0, True
    for step in steps:
        items = list(step) if isinstance(step, AnyOrder) else [step]
        chunk = actual[i:i + len(items)]
        if sorted(map(key, chunk)) != sorted(map(key, items)):
            ok = False
            break
        i += len(items)
    assert ok and i == len(actual), f"{what}: expected {steps}\n got {actual}"


# --- The receiver ------------------------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped receiver refuses the next attempt instead of answering it
    # on a kept-alive connection.
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self):
        self.server.receiver.handle(self, self._body())

    def _unexpected(self):
        self.server.receiver.note_problem(f"unexpected {self.command} {self.path}")
        self.reply(405)

    do_GET = do_PUT = do_DELETE = do_PATCH = _unexpected

    def reply(self, status, location=None):
        payload = b"{}"
        try:
            self.send_response(status)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the worker gave up on this attempt (a timeout): nothing to tell it


class Receiver:
    """A webhook receiver on a port of its own. Modes: "up" (validates, records, answers 200), "failing" (503),
    "hanging" (answers only after `hang_seconds`, past the worker's WEBHOOK_TIMEOUT_MS; nothing recorded: the worker
    counts it as failed and sends it again), "redirect" (302 with `Location: redirect_to`, nothing recorded). stop()/start() close and reopen the same port (connections refused in
    between). Every body is checked whatever the mode; problems (invalid signatures, malformed bodies) are kept for
    assert_clean()."""

    def __init__(self, hang_seconds: float = 3.0, path: str = "/pusher/webhooks"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.target = target_id(self.url)
        self.mode = "up"
        self.hang_seconds = hang_seconds
        self.redirect_to = None
        self.lock = threading.Lock()
        self.events = []          # every event of every accepted POST, in arrival order
        self.post_sizes = []      # events per accepted POST
        self.raw = []             # (body text, request headers) of accepted POSTs
        self.attempts = collections.Counter()  # POSTs seen, by mode
        self.invalid_signatures = 0
        self.problems = []
        self.validator = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=self.port, ssl=False)
        self.server = None
        self.thread = None
        self.start()

    # Lifecycle.
    def start(self):
        assert self.server is None, "already listening"
        deadline = time.monotonic() + 10
        while True:
            try:
                server = _Server(("127.0.0.1", self.port), _Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        server.receiver = self
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self.server = self.thread = None

    # Requests.
    def note_problem(self, text, signature=False):
        with self.lock:
            self.problems.append(text)
            if signature:
                self.invalid_signatures += 1

    def _check(self, headers, raw: bytes):
        """The validated body, or None after noting what is wrong."""
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self.note_problem(f"Content-Type {headers.get('Content-Type')!r}")
        key_header, signature = headers.get("X-Pusher-Key"), headers.get("X-Pusher-Signature")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.note_problem(f"body is not UTF-8: {raw[:200]!r}")
            return None
        if key_header is None or signature is None:
            self.note_problem(f"missing X-Pusher-Key / X-Pusher-Signature: {dict(headers)}", signature=True)
            return None
        body = self.validator.validate_webhook(key=key_header, signature=signature, body=text)
        if body is None:
            self.note_problem(f"validate_webhook refused: key {key_header!r}, signature {signature!r}, body {text[:300]}",
                              signature=True)
            return None
        time_ms, events = body.get("time_ms"), body.get("events")
        if not isinstance(time_ms, int) or abs(time.time() * 1000 - time_ms) > 15_000:
            self.note_problem(f"time_ms {time_ms!r} is not the time of sending (now {int(time.time() * 1000)})")
        if not isinstance(events, list) or not events:
            self.note_problem(f"no events: {text[:300]}")
            return None
        for e in events:
            if not (isinstance(e, dict) and e.get("name") in EVENT_NAMES and isinstance(e.get("channel"), str)):
                self.note_problem(f"malformed event {e!r}")
            elif e["name"] in ("member_added", "member_removed") and not isinstance(e.get("user_id"), str):
                self.note_problem(f"member event without user_id {e!r}")
            elif e["name"] == "client_event" and not (
                    str(e.get("event", "")).startswith("client-") and isinstance(e.get("data"), str)
                    and isinstance(e.get("socket_id"), str)):
                self.note_problem(f"malformed client_event {e!r}")
        return body

    def handle(self, handler, raw: bytes):
        mode = self.mode
        body = self._check(handler.headers, raw)
        with self.lock:
            self.attempts[mode] += 1
        if mode == "hanging":
            deadline = time.monotonic() + self.hang_seconds
            while time.monotonic() < deadline:
                time.sleep(0.05)
            handler.reply(504)
        elif mode == "failing":
            handler.reply(503)
        elif mode == "redirect":
            handler.reply(302, location=self.redirect_to)
        elif body is None:
            handler.reply(401)
        else:
            # Recorded before the answer: the worker sends a channel's next batch only after this one's 2xx, so
            # arrival order here is the order of delivery.
            with self.lock:
                self.events.extend(body["events"])
                self.post_sizes.append(len(body["events"]))
                self.raw.append((raw.decode("utf-8"), handler.headers))  # headers: case-insensitive .get()
            handler.reply(200)

    # Reading what arrived.
    def all(self):
        with self.lock:
            return list(self.events)

    def count(self):
        with self.lock:
            return len(self.events)

    def on(self, channel, names=None, start=0):
        return [e for e in self.all()[start:] if e["channel"] == channel and (names is None or e["name"] in names)]

    def has(self, *expected, start=0):
        got = {key(e) for e in self.all()[start:]}
        return all(key(e) in got for e in expected)

    def wait_for(self, *expected, timeout=30, start=0):
        assert wait_until(lambda: self.has(*expected, start=start), timeout, 0.1), \
            f"not received within {timeout} s: {[e for e in expected if key(e) not in {key(x) for x in self.all()[start:]}]}" \
            f"\nreceived: {self.all()[start:]}"

    def settle(self, quiet=2.0, timeout=30.0):
        """Waits until nothing new has arrived for `quiet` seconds (before asserting that something did NOT come)."""
        deadline = time.monotonic() + timeout
        last, since = self.count(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            n = self.count()
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def assert_clean(self):
        with self.lock:
            problems, invalid = list(self.problems), self.invalid_signatures
        assert invalid == 0, f"{invalid} webhook POSTs failed validate_webhook: {problems[:5]}"
        assert problems == [], problems[:10]


class _AnythingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.requests.append((self.command, self.path, dict(self.headers), body))
        try:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = _any


class Anything:
    """An HTTP server answering 200 to any request (a redirect's target that would take a bodiless GET as fine),
    keeping every request it saw."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/elsewhere"
        self.server = _Server(("127.0.0.1", self.port), _AnythingHandler)
        self.server.lock = threading.Lock()
        self.server.requests = []
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        with self.server.lock:
            return list(self.server.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receivers():
    made = []

    def make(**kwargs):
        rx = Receiver(**kwargs)
        made.append(rx)
        return rx

    yield make
    for rx in made:
        rx.stop()


# --- Raw Pusher clients ------------------------------------------------------------------------------------------

class Sock:
    """A raw protocol-7 connection; messages read while waiting for something else are kept for later."""

    def __init__(self, worker):
        self.worker = worker
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port_of(worker)}/app/{KEY}?protocol=7&client=js&version=8.0",
                                              timeout=10)
        hello = json.loads(self.ws.recv())
        assert hello["event"] == "pusher:connection_established", hello
        self.id = json.loads(hello["data"])["socket_id"]
        self.inbox = []
        self.closed = False

    def send(self, message):
        self.ws.send(json.dumps(message))

    def subscribe(self, channel, user=None):
        data = {"channel": channel}
        if channel.startswith("presence-"):
            data.update(SIGNER.authenticate(channel=channel, socket_id=self.id, custom_data={"user_id": user}))
        elif channel.startswith("private-"):
            data.update(SIGNER.authenticate(channel=channel, socket_id=self.id))
        self.send({"event": "pusher:subscribe", "data": data})

    def unsubscribe(self, channel):
        self.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})

    def trigger(self, channel, event, data):
        self.send({"event": event, "channel": channel, "data": data})

    def expect(self, predicate, timeout=15.0):
        for i, m in enumerate(self.inbox):
            if predicate(m):
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                m = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            if predicate(m):
                return m
            self.inbox.append(m)
        raise AssertionError(f"socket {self.id}: nothing matching within {timeout} s; got {self.inbox}")

    def subscribed(self, channel):
        m = self.expect(lambda m: m.get("event") == "pusher:error" or (
            m.get("channel") == channel and m.get("event") in ("pusher_internal:subscription_succeeded",
                                                               "pusher:subscription_error")))
        assert m["event"] == "pusher_internal:subscription_succeeded", m

    def drain(self, seconds=0.5):
        """Everything that arrives within `seconds` (and what was kept)."""
        out, self.inbox = self.inbox, []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                out.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                break
        return out

    def close(self, how="frame"):
        """"frame": a WebSocket close frame, then the TCP close; "reset": the connection reset (RST, no close frame);
        "fin": the TCP connection closed without a close frame (FIN), as when a client process dies."""
        if self.closed:
            return
        self.closed = True
        try:
            if how == "reset":
                self.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.ws.sock.close()
            elif how == "fin":
                self.ws.shutdown()
            else:
                self.ws.close(timeout=1)
        except Exception:
            pass


@pytest.fixture
def connect():
    opened = []

    def make(worker):
        s = Sock(worker)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def no_client_event_errors(sock):
    errors = [m for m in sock.drain(0.5) if m.get("event") == "pusher:error"]
    assert errors == [], errors


# --- Metrics and Redis -------------------------------------------------------------------------------------------

METRIC_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}\s+(\S+)", re.MULTILINE)


def live(workers):
    return [w for w in workers if w.proc.proc.poll() is None]


def metric_values(workers, name, target):
    """The series `name{target=...}` of each worker (None where the worker does not report it)."""
    values = []
    for w in workers:
        try:
            text = w.metrics()
        except (requests.RequestException, AssertionError):
            values.append(None)
            continue
        total = None
        for m in METRIC_LINE.finditer(text):
            if m.group(1) == name and f'target="{target}"' in m.group(2):
                total = (total or 0) + float(m.group(3))
        values.append(total)
    return values


def metric_sum(workers, name, target):
    return sum(v or 0 for v in metric_values(workers, name, target))


def outbox_empty(workers, target):
    """Every live worker reports webhook_outbox_length 0 for the target."""
    values = metric_values(live(workers), "webhook_outbox_length", target)
    return bool(values) and all(v == 0 for v in values)


def all_acknowledged(workers, rx):
    """Every event the receiver took is counted as delivered (so none is still pending in Redis), and the outbox is
    empty. Only meaningful while no worker died (the dead worker's counters are gone)."""
    return metric_sum(workers, "webhook_events_delivered_total", rx.target) == rx.count() and outbox_empty(workers, rx.target)


def streams_of(r, target):
    """The target's outbox streams (one per shard), by key."""
    return [k for k in r.keys(f"webhooks:*:{target}") if r.type(k) == "stream"]


def worker_ids(r, workers):
    """workers:{ops}:info field (worker id) -> Worker, matched by the pid and port in the announcement."""
    out = {}
    for worker_id, info in r.hgetall("workers:{ops}:info").items():
        try:
            data = json.loads(info)
        except ValueError:
            continue
        for w in workers:
            if data.get("pid") == w.proc.proc.pid and data.get("port") in (None, port_of(w)):
                out[worker_id] = w
    return out


def switch(worker, user, prev, nxt):
    r = worker.call("POST", "/api/presence/switch", user=user,
                    json={"previousRoomId": prev, "nextRoomId": nxt, "username": user.name})
    assert r.status_code == 200, r.text
    return r


# --- Tests -------------------------------------------------------------------------------------------------------

def test_occupied_and_vacated_exactly_once_with_subscribers_on_two_workers(make_cluster, receivers, connect):
    """Six sockets, three per worker, subscribe to one public channel all at once (interleaved a, b, a, b, ...), then
    all leave at once: by pusher:unsubscribe, by a close frame, and by a reset connection, on both workers.
    Exactly one channel_occupied, then exactly one channel_vacated; a second episode gives exactly one more pair.
    Every event the receiver took is counted in webhook_events_delivered_total and the outbox gauge is 0."""
    rx = receivers()
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=rx.url)
    channel = f"together-{tag()}"
    for episode in range(2):
        order = [c.a, c.b] * 3 if episode == 0 else [c.b, c.a] * 3
        socks = [connect(w) for w in order]
        for s in socks:
            s.subscribe(channel)
        for s in socks:
            s.subscribed(channel)
        assert wait_until(lambda: [e["name"] for e in rx.on(channel)].count("channel_occupied") == episode + 1, 30, 0.1), \
            rx.on(channel)
        for i, s in enumerate(socks):
            if i % 3 == 0:
                s.unsubscribe(channel)
            else:
                s.close("frame" if i % 3 == 1 else "reset")
        assert wait_until(lambda: [e["name"] for e in rx.on(channel)].count("channel_vacated") == episode + 1, 30, 0.1), \
            rx.on(channel)
        for s in socks:
            s.close()
    rx.settle()
    assert rx.on(channel) == [occ(channel), vac(channel), occ(channel), vac(channel)]
    assert wait_until(lambda: all_acknowledged(c.workers, rx), 30, 0.5), (
        metric_values(c.workers, "webhook_events_delivered_total", rx.target),
        metric_values(c.workers, "webhook_outbox_length", rx.target), rx.count())
    rx.assert_clean()


def test_a_connection_closed_without_a_close_frame_vacates_its_channel(make_cluster, receivers, connect):
    """A client whose TCP connection ends with a FIN and no WebSocket close frame (its process died, its tab was
    killed) is gone: its channel is vacated (and announced) within seconds on either worker, not after the ping
    timeout (ACTIVITY_TIMEOUT + PONG_TIMEOUT, 150 s by default)."""
    rx = receivers()
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=rx.url)
    for worker in c.workers:
        channel = f"fin-{tag()}"
        s = connect(worker)
        s.subscribe(channel)
        s.subscribed(channel)
        rx.wait_for(occ(channel))
        s.close("fin")
        rx.wait_for(vac(channel), timeout=15)
    rx.assert_clean()


def test_members_added_and_removed_per_user_across_workers_and_by_expiry(make_cluster, receivers, connect):
    """A presence channel P: u3 on worker a; u1 with one socket on each worker (added once; closing one socket removes
    nobody; the second leaving removes u1 once); u2 only on worker b, which also holds a presence channel P2 and a
    public channel Q alone. A chat switch general -> random gives member events on presence-room-general/random.
    Then worker b is SIGKILLed: u2's presence lapses (CHAT_PRESENCE_TTL 3 s + sweep) and member_removed comes for P
    and P2; P2 and Q, whose only subscriptions were b's, get channel_vacated after OCCUPANCY_TTL. Finally u3 leaves:
    member_removed and channel_vacated for P.

    Before the kill the sequences are exact (everything was acknowledged first); after it, duplicates are tolerated
    and first occurrences are checked."""
    rx = receivers()
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=rx.url, CHAT_PRESENCE_TTL=3, SWEEP_INTERVAL_MS=250,
                     OCCUPANCY_TTL=3, WEBHOOK_LEASE_MS=2000, WEBHOOK_TIMEOUT_MS=1000, WEBHOOK_MAX_BACKOFF_MS=1000)
    a, b = c.a, c.b
    api_a = api(a)
    t = tag()
    P, P2, Q = f"presence-lobby-{t}", f"presence-solo-{t}", f"solo-{t}"
    u1, u2, u3 = f"u1-{t}", f"u2-{t}", f"u3-{t}"

    ws3 = connect(a)
    ws3.subscribe(P, u3)
    ws3.subscribed(P)
    rx.wait_for(occ(P), added(P, u3))
    ws1a, ws1b = connect(a), connect(b)
    ws1a.subscribe(P, u1)
    ws1b.subscribe(P, u1)
    ws1a.subscribed(P)
    ws1b.subscribed(P)
    rx.wait_for(added(P, u1))
    ws2 = connect(b)
    for channel in (P, P2, Q):
        ws2.subscribe(channel, u2)
    for channel in (P, P2, Q):
        ws2.subscribed(channel)
    rx.wait_for(added(P, u2), occ(P2), added(P2, u2), occ(Q))

    # u1's socket on a goes: u1 still has one on b, so nobody is removed.
    ws1a.close()
    assert wait_until(lambda: api_a.channel_info(P, ["subscription_count"]).get("subscription_count") == 3, 15, 0.2)
    rx.settle(quiet=1.5)
    assert removed(P, u1) not in rx.all(), rx.on(P)
    # Its last socket leaves: removed once.
    ws1b.unsubscribe(P)
    rx.wait_for(removed(P, u1))

    # Chat presence switches: member events on presence-room-<id>.
    carol = register(a, "carol")
    general, random_room = "presence-room-general", "presence-room-random"
    switch(a, carol, None, "general")
    rx.wait_for(added(general, "carol"))
    switch(b, carol, "general", "random")
    rx.wait_for(removed(general, "carol"), added(random_room, "carol"))

    # Everything so far acknowledged: nothing can come again after the kill.
    assert wait_until(lambda: all_acknowledged(c.workers, rx), 30, 0.5), (
        metric_values(c.workers, "webhook_events_delivered_total", rx.target), rx.count())
    at_kill = rx.count()
    before = rx.all()
    on = lambda events, channel: [e for e in events if e["channel"] == channel]
    assert_sequence(on(before, P), [AnyOrder([occ(P), added(P, u3)]), added(P, u1), added(P, u2), removed(P, u1)], P)
    assert_sequence(on(before, P2), [AnyOrder([occ(P2), added(P2, u2)])], P2)
    assert on(before, Q) == [occ(Q)]
    assert [e for e in on(before, general) if e.get("user_id") == "carol"] == [added(general, "carol"), removed(general, "carol")]

    b.proc.stop(signal.SIGKILL)
    rx.wait_for(removed(P, u2), removed(P2, u2), vac(P2), vac(Q), timeout=45, start=at_kill)
    ws3.close()
    rx.wait_for(removed(P, u3), vac(P), timeout=30, start=at_kill)
    rx.settle()
    after = rx.all()[at_kill:]
    assert_sequence(firsts(on(after, P)), [removed(P, u2), AnyOrder([removed(P, u3), vac(P)])], P + " after the kill")
    assert_sequence(firsts(on(after, P2)), [AnyOrder([removed(P2, u2), vac(P2)])], P2 + " after the kill")
    assert firsts(on(after, Q)) == [vac(Q)]
    # carol's presence in random: added once, then at most a removal (her switch presence may lapse: no heartbeat).
    carol_random = firsts([e for e in rx.all() if e["channel"] == random_room and e.get("user_id") == "carol"])
    assert carol_random in ([added(random_room, "carol")], [added(random_room, "carol"), removed(random_room, "carol")]), carol_random
    assert [e for e in on(after, general) if e.get("user_id") == "carol"] == []
    rx.assert_clean()


def test_client_events_and_cache_misses(make_cluster, receivers, connect):
    """client_event on a private channel (data an object: the JSON string of it; socket_id of the sender; no
    user_id) and on a presence channel (data a string, passed through; with the sender's user_id), once each though
    another subscriber received them; cache_miss once per subscription to a cache-, private-cache- or presence-cache-
    channel with nothing cached (the client also gets pusher:cache_miss), not when the channel has a cached event.
    Every body validates with the official library, and a tampered one does not."""
    rx = receivers()
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=rx.url)
    a, b = c.a, c.b
    t = tag()
    private, presence = f"private-game-{t}", f"presence-chat-{t}"
    ann, ben = f"ann-{t}", f"ben-{t}"

    s1, s2 = connect(a), connect(b)
    for s in (s1, s2):
        s.subscribe(private)
    for s in (s1, s2):
        s.subscribed(private)
    s1.trigger(private, "client-move", {"x": 1, "note": "caf\u00e9 \u2713"})
    got = s2.expect(lambda m: m.get("event") == "client-move")
    assert json.loads(got["data"]) == {"x": 1, "note": "caf\u00e9 \u2713"}

    p1, p2 = connect(b), connect(a)
    p1.subscribe(presence, ann)
    p1.subscribed(presence)
    p2.subscribe(presence, ben)
    p2.subscribed(presence)
    p1.trigger(presence, "client-typing", "hello there")
    assert p2.expect(lambda m: m.get("event") == "client-typing")["data"] == "hello there"

    cache_public, cache_private, cache_presence = f"cache-scores-{t}", f"private-cache-board-{t}", f"presence-cache-room-{t}"
    for worker, channel in ((a, cache_public), (b, cache_private), (a, cache_presence)):
        s = connect(worker)
        s.subscribe(channel, f"cy-{t}")
        s.subscribed(channel)
        assert s.expect(lambda m: m.get("event") == "pusher:cache_miss") == {"event": "pusher:cache_miss", "channel": channel}
    # Something cached now: a later subscriber gets it, and no cache_miss is sent for it.
    api(b).trigger(cache_public, "score", {"home": 1})
    later = connect(b)
    later.subscribe(cache_public)
    later.subscribed(cache_public)
    cached = later.expect(lambda m: m.get("event") in ("score", "pusher:cache_miss"))
    assert cached["event"] == "score", cached

    rx.wait_for(miss(cache_public), miss(cache_private), miss(cache_presence),
                client_event(presence, "client-typing", "hello there", p1.id, ann))
    assert wait_until(lambda: rx.on(private, {"client_event"}), 30, 0.1)
    rx.settle()
    (move,) = rx.on(private, {"client_event"})
    assert set(move) == {"name", "channel", "event", "data", "socket_id"}, move
    assert (move["event"], move["socket_id"]) == ("client-move", s1.id)
    assert json.loads(move["data"]) == {"x": 1, "note": "caf\u00e9 \u2713"}
    assert rx.on(presence, {"client_event"}) == [client_event(presence, "client-typing", "hello there", p1.id, ann)]
    for channel in (cache_public, cache_private, cache_presence):
        assert rx.on(channel, {"cache_miss"}) == [miss(channel)], rx.on(channel)
    # The library's check is not vacuous: one byte changed in a received body and it refuses it.
    text, headers = rx.raw[0]
    validator = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=port_of(a), ssl=False)
    sent_key, signature = headers.get("X-Pusher-Key"), headers.get("X-Pusher-Signature")
    assert validator.validate_webhook(key=sent_key, signature=signature, body=text)
    tampered = text.replace('"events"', '"events" ', 1)
    assert tampered != text
    assert validator.validate_webhook(key=sent_key, signature=signature, body=tampered) is None
    assert validator.validate_webhook(key="other-key", signature=signature, body=text) is None
    rx.assert_clean()


def test_a_receiver_down_for_a_minute_gets_everything_in_order(make_cluster, receivers, connect):
    """The receiver refuses connections for about 60 s while five public channels go through a subscribe/unsubscribe
    episode every round (on alternating workers) and a private channel carries client events numbered in order.
    Meanwhile webhook_delivery_failures_total grows and webhook_outbox_length is above 0. Once the receiver is back,
    every event arrives exactly once and in order per channel, in POSTs of at most WEBHOOK_BATCH_SIZE events, and the
    outbox gauge comes back to 0."""
    downtime, batch = 60.0, 50
    rx = receivers()
    rx.stop()
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=rx.url, WEBHOOK_MAX_BACKOFF_MS=1000, WEBHOOK_TIMEOUT_MS=2000,
                     WEBHOOK_BATCH_SIZE=batch)
    a, b = c.a, c.b
    backend = api(a)
    t = tag()
    prefix = f"down-{t}-"
    channels = [f"{prefix}{i}" for i in range(5)]
    game = f"private-down-{t}"
    socks = [(connect(a), connect(b)) for _ in channels]
    expected = {ch: [] for ch in channels}
    sender, listener = connect(a), connect(b)
    sender.subscribe(game)
    sender.subscribed(game)
    listener.subscribe(game)
    listener.subscribed(game)
    expected[game] = [occ(game)]

    live_channels = lambda: set(backend.channels_info(prefix_filter=prefix)["channels"])
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < downtime:
        round_started = time.monotonic()
        picked = [pair[(rounds + i) % 2] for i, pair in enumerate(socks)]
        for s, ch in zip(picked, channels):
            s.subscribe(ch)
        for s, ch in zip(picked, channels):
            s.subscribed(ch)
        assert wait_until(lambda: live_channels() == set(channels), 15, 0.05), live_channels()
        for s, ch in zip(picked, channels):
            s.unsubscribe(ch)
        assert wait_until(lambda: live_channels() == set(), 15, 0.05), live_channels()
        for ch in channels:
            expected[ch] += [occ(ch), vac(ch)]
        data = json.dumps({"seq": rounds})
        sender.trigger(game, "client-seq", data)
        expected[game].append(client_event(game, "client-seq", data, sender.id))
        rounds += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - round_started)))  # pacing, not an assertion
    no_client_event_errors(sender)
    sender.close()
    listener.close()
    expected[game].append(vac(game))
    assert wait_until(lambda: game not in backend.channels_info(prefix_filter="private-down-")["channels"], 15, 0.1)

    # Still down: failures counted, the outbox holds the events.
    assert wait_until(lambda: metric_sum(c.workers, "webhook_delivery_failures_total", rx.target) > 0, 15, 0.5), \
        metric_values(c.workers, "webhook_delivery_failures_total", rx.target)
    assert wait_until(lambda: any((v or 0) > 0 for v in metric_values(c.workers, "webhook_outbox_length", rx.target)), 15, 0.5), \
        metric_values(c.workers, "webhook_outbox_length", rx.target)
    assert rx.count() == 0

    rx.start()
    total = sum(len(v) for v in expected.values())
    assert wait_until(lambda: all(len(rx.on(ch)) >= len(exp) for ch, exp in expected.items()), 120, 0.2), \
        {ch: (len(rx.on(ch)), len(exp)) for ch, exp in expected.items()}
    assert wait_until(lambda: outbox_empty(c.workers, rx.target), 30, 0.5), \
        metric_values(c.workers, "webhook_outbox_length", rx.target)
    rx.settle()
    for ch, exp in expected.items():
        got = rx.on(ch)
        assert got == exp, f"{ch}: {len(got)} events, {len(exp)} expected; first difference at " \
                           f"{next((i for i, (x, y) in enumerate(zip(got, exp)) if x != y), min(len(got), len(exp)))}"
    assert rx.count() == total
    assert 1 < max(rx.post_sizes) <= batch, rx.post_sizes
    assert wait_until(lambda: metric_sum(c.workers, "webhook_events_delivered_total", rx.target) == total, 15, 0.5), \
        metric_values(c.workers, "webhook_events_delivered_total", rx.target)
    rx.assert_clean()


def test_a_worker_killed_with_events_in_flight(make_cluster, receivers, connect):
    """The receiver hangs past WEBHOOK_TIMEOUT_MS, so batches stay in flight; the worker holding the delivery lease
    of the streams with events (found in Redis: webhooks:{tag}:<target>:lease -> worker id -> pid via
    workers:{ops}:info) is SIGKILLed and the receiver answers again. The surviving worker takes the leases over
    within WEBHOOK_LEASE_MS and delivers every event at least once, first occurrences in order per channel."""
    lease_ms = 2000
    rx = receivers(hang_seconds=3.0)
    rx.mode = "hanging"
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=rx.url, WEBHOOK_TIMEOUT_MS=1000, WEBHOOK_LEASE_MS=lease_ms,
                     WEBHOOK_MAX_BACKOFF_MS=1000)
    r = c.redis()
    t = tag()
    channels = [f"private-inflight-{t}-{i}" for i in range(6)]
    senders = [connect(c.workers[i % 2]) for i in range(len(channels))]
    for s, ch in zip(senders, channels):
        s.subscribe(ch)
    for s, ch in zip(senders, channels):
        s.subscribed(ch)
    expected = {ch: [occ(ch)] for ch in channels}
    for seq in range(5):
        for s, ch in zip(senders, channels):
            data = json.dumps({"seq": seq})
            s.trigger(ch, "client-seq", data)
            expected[ch].append(client_event(ch, "client-seq", data, s.id))
    for s in senders:
        no_client_event_errors(s)
    assert wait_until(lambda: rx.attempts["hanging"] > 0, 30, 0.1), "no delivery attempt reached the receiver"

    def holders():
        """Worker holding the lease of each stream that has events, or None while one is unknown."""
        ids = worker_ids(r, c.workers)
        out = {}
        for stream in streams_of(r, rx.target):
            if r.xlen(stream) == 0:
                continue
            holder = r.get(stream + ":lease")
            if holder not in ids:
                return None
            out[stream] = ids[holder]
        return out or None

    held = wait_until(holders, 30, 0.2)
    assert held, (streams_of(r, rx.target), {k: r.get(k) for k in r.keys(f"webhooks:*:{rx.target}:lease")},
                  r.hgetall("workers:{ops}:info").keys())
    victim = collections.Counter(held.values()).most_common(1)[0][0]
    survivor = next(w for w in c.workers if w is not victim)
    survivor_id = next(i for i, w in worker_ids(r, c.workers).items() if w is survivor)

    victim.proc.stop(signal.SIGKILL)
    rx.mode = "up"
    wanted = [e for exp in expected.values() for e in exp]
    assert wait_until(lambda: rx.has(*wanted), lease_ms / 1000 + 20, 0.1), \
        [e for e in wanted if not rx.has(e)]
    for ch, exp in expected.items():
        got = [e for e in firsts(rx.on(ch)) if key(e) in {key(x) for x in exp}]
        assert got == exp, f"{ch}: first occurrences {got}"
        extra = [e for e in rx.on(ch) if key(e) not in {key(x) for x in exp}]
        assert all(e["name"] == "channel_vacated" for e in extra), extra
    # The survivor holds every lease of the target now, and its outbox is empty.
    assert wait_until(lambda: (lambda leases: leases and all(v == survivor_id for v in leases))(
        [r.get(k) for k in r.keys(f"webhooks:*:{rx.target}:lease")]), 15, 0.2), \
        {k: r.get(k) for k in r.keys(f"webhooks:*:{rx.target}:lease")}
    assert wait_until(lambda: outbox_empty([survivor], rx.target), 30, 0.5), \
        metric_values([survivor], "webhook_outbox_length", rx.target)
    rx.assert_clean()


def test_per_url_event_filters(make_cluster, receivers, connect):
    """Three receivers: one takes everything, one `|channel_occupied`, one `|channel_vacated+cache_miss`. Each gets
    exactly what it asked for; the filtered ones nothing else, and their delivered counters count only that."""
    everything, occupied_only, pair = receivers(), receivers(), receivers()
    urls = f"{everything.url},{occupied_only.url}|channel_occupied,{pair.url}|channel_vacated+cache_miss"
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=urls)
    a, b = c.a, c.b
    t = tag()
    public, private, cache, presence = f"filter-{t}", f"private-filter-{t}", f"cache-filter-{t}", f"presence-filter-{t}"
    user = f"fil-{t}"

    s = connect(a)
    s.subscribe(public)
    s.subscribed(public)
    s.unsubscribe(public)
    everything.wait_for(occ(public), vac(public))
    s1, s2 = connect(a), connect(b)
    for x in (s1, s2):
        x.subscribe(private)
    for x in (s1, s2):
        x.subscribed(private)
    s1.trigger(private, "client-ping", "1")
    s2.expect(lambda m: m.get("event") == "client-ping")
    everything.wait_for(occ(private), client_event(private, "client-ping", "1", s1.id))
    s1.close()
    s2.close()
    s3 = connect(b)
    s3.subscribe(cache)
    s3.subscribed(cache)
    everything.wait_for(occ(cache), miss(cache))
    s3.close()
    s4 = connect(a)
    s4.subscribe(presence, user)
    s4.subscribed(presence)
    everything.wait_for(occ(presence), added(presence, user))
    s4.close()

    expected = {
        public: [occ(public), vac(public)],
        private: [occ(private), client_event(private, "client-ping", "1", s1.id), vac(private)],
        cache: [AnyOrder([occ(cache), miss(cache)]), vac(cache)],
        presence: [AnyOrder([occ(presence), added(presence, user)]), AnyOrder([removed(presence, user), vac(presence)])],
    }
    channels = list(expected)
    everything.wait_for(vac(private), vac(cache), vac(presence), removed(presence, user))
    occupied_only.wait_for(*[occ(ch) for ch in channels])
    pair.wait_for(*[vac(ch) for ch in channels], miss(cache))
    for rx in (everything, occupied_only, pair):
        rx.settle()
    for ch, steps in expected.items():
        assert_sequence(everything.on(ch), steps, ch)
    assert sorted(map(key, occupied_only.all())) == sorted(key(occ(ch)) for ch in channels), occupied_only.all()
    assert sorted(map(key, pair.all())) == sorted([key(vac(ch)) for ch in channels] + [key(miss(cache))]), pair.all()
    for rx in (everything, occupied_only, pair):
        assert wait_until(lambda: all_acknowledged(c.workers, rx), 30, 0.5), (
            rx.url, metric_values(c.workers, "webhook_events_delivered_total", rx.target), rx.count())
    assert metric_sum(c.workers, "webhook_events_delivered_total", occupied_only.target) == len(channels)
    assert metric_sum(c.workers, "webhook_events_delivered_total", pair.target) == len(channels) + 1
    for rx in (everything, occupied_only, pair):
        rx.assert_clean()


def test_a_full_outbox_drops_the_oldest_and_counts_them(make_cluster, receivers, connect):
    """WEBHOOK_OUTBOX_MAX=20 with the receiver answering 503 to everything: one private channel (one stream) gets
    channel_occupied and 60 numbered client events, 61 in all. 41 are dropped (webhook_outbox_dropped), the
    stream holds 20 and the outbox gauge says 20. Once the receiver answers 200 it gets exactly the newest 20, in
    order, and nothing of the dropped ones (nor of a batch that was being retried); later events still flow."""
    limit, sent = 20, 60
    rx = receivers()
    rx.mode = "failing"
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=rx.url, WEBHOOK_OUTBOX_MAX=limit, WEBHOOK_MAX_BACKOFF_MS=500)
    r = c.redis()
    channel = f"private-bounded-{tag()}"
    s = connect(c.a)
    s.subscribe(channel)
    s.subscribed(channel)
    produced = [occ(channel)]
    for seq in range(sent):
        data = json.dumps({"seq": seq})
        s.trigger(channel, "client-seq", data)
        produced.append(client_event(channel, "client-seq", data, s.id))
        time.sleep(0.2)  # well under the 10 client events per second a connection may send, even if delayed
    no_client_event_errors(s)

    dropped = len(produced) - limit
    # The cluster's figure (read from Redis), the same on every worker.
    assert wait_until(lambda: all(v == dropped for v in metric_values(c.workers, "webhook_outbox_dropped", rx.target)),
                      30, 0.5), metric_values(c.workers, "webhook_outbox_dropped", rx.target)
    assert wait_until(lambda: all(v == limit for v in metric_values(c.workers, "webhook_outbox_length", rx.target)), 30, 0.5), \
        metric_values(c.workers, "webhook_outbox_length", rx.target)
    lengths = {k: r.xlen(k) for k in streams_of(r, rx.target)}
    assert all(n <= limit for n in lengths.values()), lengths
    assert sorted(n for n in lengths.values() if n) == [limit], lengths
    assert rx.attempts["failing"] > 0 and rx.count() == 0

    rx.mode = "up"
    newest = produced[-limit:]
    assert wait_until(lambda: len(rx.on(channel)) >= limit, 30, 0.1), rx.on(channel)
    rx.settle()
    assert rx.on(channel) == newest, [json.loads(e["data"])["seq"] if e["name"] == "client_event" else e["name"]
                                      for e in rx.on(channel)]
    s.close()
    rx.wait_for(vac(channel))
    rx.settle()
    assert rx.on(channel) == newest + [vac(channel)]
    assert wait_until(lambda: outbox_empty(c.workers, rx.target), 30, 0.5), \
        metric_values(c.workers, "webhook_outbox_length", rx.target)
    assert max(v or 0 for v in metric_values(c.workers, "webhook_outbox_dropped", rx.target)) == dropped
    rx.assert_clean()


def test_a_redis_restarted_empty_and_a_stopping_worker(make_cluster, receivers, connect):
    """Redis restarted without its data (streams, consumer groups and leases gone): the workers make the outbox again
    and later events are delivered. Then the worker holding the leases is stopped with SIGTERM: it hands them back,
    so the other worker sends the next events at once, long before WEBHOOK_LEASE_MS (60 s here) would have passed.
    (One Redis only: the cluster's nodes are not restarted empty here.)"""
    rx = receivers()
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=rx.url, WEBHOOK_LEASE_MS=60000)
    from conftest import RedisProcess
    if not isinstance(c.redis_proc, RedisProcess):
        pytest.skip("restarts one standalone Redis")
    first = f"before-{tag()}"
    s = connect(c.a)
    s.subscribe(first)
    s.subscribed(first)
    rx.wait_for(occ(first))
    s.close()
    rx.wait_for(vac(first))

    c.redis_proc.kill()
    c.redis_proc.start()
    second = f"after-{tag()}"

    def delivered_after_restart():
        # The workers reconnect on their own; subscribe until a socket gets through.
        try:
            t = connect(c.b)
            t.subscribe(second)
            t.subscribed(second)
            t.close()
            return True
        except Exception:
            return False
    assert wait_until(delivered_after_restart, 30, 0.5)
    rx.wait_for(occ(second), vac(second), timeout=30)

    r = c.redis()
    holders = {r.get(k) for k in r.keys("webhooks:*:lease")}
    assert len(holders) >= 1, holders
    # Both workers announce themselves again within 5 s of the restart.
    assert wait_until(lambda: len(worker_ids(r, c.workers)) == 2, 15, 0.2), r.hgetall("workers:{ops}:info")
    by_id = worker_ids(r, c.workers)
    holder = next(w for worker_id, w in by_id.items() if worker_id in holders)
    other = c.b if holder is c.a else c.a
    other_id = next(worker_id for worker_id, w in by_id.items() if w is other)
    t0 = time.monotonic()
    assert holder.proc.stop(signal.SIGTERM) == 0
    third = f"handover-{tag()}"
    u = connect(other)
    u.subscribe(third)
    u.subscribed(third)
    rx.wait_for(occ(third), timeout=20)
    # Handed back and taken within the 2 s lease check (plus the stop itself), not after the 60 s lease lapsed.
    assert time.monotonic() - t0 < 15, "the leases were handed back, not left to lapse"
    assert {r.get(k) for k in r.keys("webhooks:*:lease")} == {other_id}
    rx.assert_clean()


def test_a_redirect_is_a_failed_delivery_and_never_followed(make_cluster, receivers, connect):
    """The receiver answers 302 with Location: a second server that answers 200 to anything. No redirect is followed:
    the second server never sees a request (neither the batch as a bodiless GET, nor the X-Pusher-* headers), each
    302 is a failed delivery (webhook_delivery_failures_total grows, nothing counted delivered, the events wait in the
    outbox) and the batch is sent again, to the same URL, with the backoff. Once the receiver answers 200 the events
    arrive in order, and webhook_events_delivered_total counts only what that 200 took."""
    elsewhere = Anything()
    try:
        rx = receivers()
        rx.redirect_to = elsewhere.url
        rx.mode = "redirect"
        c = make_cluster(1, **PUSHER_ENV, WEBHOOK_URLS=rx.url, WEBHOOK_MAX_BACKOFF_MS=500)
        (w,) = c.workers
        channel = f"moved-{tag()}"
        s = connect(w)
        s.subscribe(channel)
        s.subscribed(channel)
        s.unsubscribe(channel)
        assert wait_until(lambda: rx.attempts["redirect"] >= 4, 30, 0.1), rx.attempts
        assert wait_until(lambda: metric_sum([w], "webhook_delivery_failures_total", rx.target) >= 4, 15, 0.5), \
            metric_values([w], "webhook_delivery_failures_total", rx.target)
        assert metric_sum([w], "webhook_events_delivered_total", rx.target) == 0
        assert wait_until(lambda: metric_sum([w], "webhook_outbox_length", rx.target) == 2, 15, 0.5), \
            metric_values([w], "webhook_outbox_length", rx.target)
        assert elsewhere.requests == [], elsewhere.requests
        assert rx.count() == 0

        rx.mode = "up"
        rx.wait_for(occ(channel), vac(channel))
        rx.settle()
        assert rx.on(channel) == [occ(channel), vac(channel)]
        assert wait_until(lambda: all_acknowledged([w], rx), 30, 0.5), (
            metric_values([w], "webhook_events_delivered_total", rx.target), rx.count())
        assert metric_sum([w], "webhook_events_delivered_total", rx.target) == 2
        assert elsewhere.requests == [], elsewhere.requests
        rx.assert_clean()
    finally:
        elsewhere.stop()


def test_a_timeout_that_outlasts_the_lease_stops_the_worker_at_start(server_binary, redis_process):
    """WEBHOOK_TIMEOUT_MS must fit WEBHOOK_LEASE_MS: timeout + min(lease / 4, 2000) + 250 <= lease (a POST may start
    a renewal interval after the lease was renewed, and nothing renews it while the POST runs). A worker given
    WEBHOOK_LEASE_MS=2000 with the default 5000 ms timeout, or 7751 ms with the default 10 s lease, exits non-zero at
    once with one line on stderr naming both settings; 7750 with the default lease starts."""
    for env in ({"WEBHOOK_LEASE_MS": "2000"}, {"WEBHOOK_TIMEOUT_MS": "7751"}, {"WEBHOOK_TIMEOUT_MS": "7750"}):
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDIS_URL": redis_process.url, "HOST": "127.0.0.1",
                "PORT": str(free_port()), "METRICS_PORT": str(free_port()), "WEBHOOK_URLS": "http://127.0.0.1:9/hook",
                **PUSHER_ENV, **env}
        proc = subprocess.Popen([server_binary], env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _, stderr = proc.communicate(timeout=20 if env != {"WEBHOOK_TIMEOUT_MS": "7750"} else 3)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
            assert env == {"WEBHOOK_TIMEOUT_MS": "7750"}, f"{env}: the worker started: {stderr[-2000:]}"
            continue
        assert env != {"WEBHOOK_TIMEOUT_MS": "7750"}, f"a timeout that fits was refused: {stderr}"
        assert proc.returncode != 0
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1, stderr
        assert "WEBHOOK_TIMEOUT_MS" in lines[0] and "WEBHOOK_LEASE_MS" in lines[0], lines[0]
        assert "Fatal error" not in stderr and "Stack" not in stderr


def test_internal_channels_send_no_webhooks(make_cluster, receivers, connect):
    """Pusher sign-ins (pusher:signin with user_data signed by the app secret) put each connection on the app-wide
    #signed-in presence and let it subscribe to its own #server-to-user-<id>: neither is a channel an app's receiver
    should hear of (they would tell it who signs in, and when). Two users sign in on both workers, subscribe to their
    #server-to-user- channels and to a public channel, then leave every way (unsubscribe, close, reset); the public
    channel's occupied/vacated arrive, and no event of any kind names a # channel."""
    rx = receivers()
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=rx.url)
    t = tag()
    public = f"beside-{t}"
    socks = []
    for i, worker in enumerate([c.a, c.b, c.a, c.b]):
        user = f"inner{i % 2}-{t}"
        s = connect(worker)
        s.send({"event": "pusher:signin", "data": SIGNER.authenticate_user(s.id, {"id": user})})
        s.expect(lambda m: m.get("event") == "pusher:signin_success")
        s.subscribe(f"#server-to-user-{user}")
        s.subscribed(f"#server-to-user-{user}")
        s.subscribe(public)
        s.subscribed(public)
        socks.append((s, user))
    rx.wait_for(occ(public))
    backend = api(c.a)
    backend.send_to_user(f"inner0-{t}", "notice", {"n": 1})
    socks[0][0].expect(lambda m: m.get("event") == "notice")
    for i, (s, user) in enumerate(socks):
        if i == 0:
            s.unsubscribe(f"#server-to-user-{user}")
            s.unsubscribe(public)
            time.sleep(0.3)
        s.close("reset" if i == 1 else "frame")
    rx.wait_for(vac(public))
    rx.settle(quiet=3)
    internal = [e for e in rx.all() if e["channel"].startswith("#")]
    assert internal == [], internal
    assert rx.on(public) == [occ(public), vac(public)]
    rx.assert_clean()


def test_the_outbox_is_bounded_in_bytes_and_counts_what_it_drops(make_cluster, receivers, connect):
    """WEBHOOK_OUTBOX_MAX_BYTES=65536 (WEBHOOK_BATCH_SIZE=10) with the receiver unreachable: one private channel (one
    outbox stream) gets channel_occupied and 40 client events with about 1.5 KB of data each, then 3 with 9 KB (more
    than an eighth of the bound, within Pusher's 10 KB). The stream's memory in Redis (MEMORY USAGE, and XLEN x event size) stays within the
    bound all along; webhook_outbox_dropped says how many written events went (41 - what the stream keeps), and
    webhook_events_oversized_total counts the 3 refused, which were never written. Once the receiver is back it gets
    exactly the kept events: the newest, in order."""
    bound, sent, big = 65536, 40, 3
    rx = receivers()
    rx.stop()
    c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=rx.url, WEBHOOK_OUTBOX_MAX_BYTES=bound, WEBHOOK_BATCH_SIZE=10,
                     WEBHOOK_MAX_BACKOFF_MS=500, WEBHOOK_TIMEOUT_MS=1000)
    r = c.redis()
    channel = f"private-heavy-{tag()}"
    s = connect(c.a)
    s.subscribe(channel)
    s.subscribed(channel)
    produced = [occ(channel)]

    def memory():
        """The largest MEMORY USAGE (every entry counted) among the receiver's streams, and their entries' bytes."""
        streams = streams_of(r, rx.target)
        usage = max([r.memory_usage(k, samples=0) or 0 for k in streams] or [0])
        text = max([sum(len(fields["e"].encode()) for _, fields in r.xrange(k)) for k in streams] or [0])
        return usage, text

    peak = (0, 0)
    for seq in range(sent):
        data = json.dumps({"seq": seq, "pad": "x" * 1500})
        s.trigger(channel, "client-big", data)
        produced.append(client_event(channel, "client-big", data, s.id))
        time.sleep(0.12)  # under the 10 client events per second a connection may send
        if seq % 4 == 3:
            peak = tuple(map(max, peak, memory()))
    for seq in range(big):
        s.trigger(channel, "client-big", json.dumps({"seq": sent + seq, "pad": "x" * 9000}))
        time.sleep(0.12)
    no_client_event_errors(s)

    (stream,) = [k for k in streams_of(r, rx.target) if r.xlen(k)]
    kept = r.xlen(stream)
    written = len(produced)
    assert 0 < kept < written, kept
    assert wait_until(lambda: all(v == written - kept for v in metric_values(c.workers, "webhook_outbox_dropped", rx.target)),
                      30, 0.5), (written - kept, metric_values(c.workers, "webhook_outbox_dropped", rx.target))
    assert metric_sum(c.workers, "webhook_events_oversized_total", rx.target) == big, \
        metric_values(c.workers, "webhook_events_oversized_total", rx.target)
    peak = tuple(map(max, peak, memory()))
    assert peak[0] <= bound, f"MEMORY USAGE of an outbox stream reached {peak[0]} B, over the bound {bound}"
    assert peak[1] <= bound, f"the entries' text reached {peak[1]} B"
    assert rx.attempts["up"] == 0 and rx.count() == 0

    rx.start()
    assert wait_until(lambda: len(rx.on(channel)) >= kept, 30, 0.1), (len(rx.on(channel)), kept)
    rx.settle()
    assert rx.on(channel) == produced[-kept:], [json.loads(e["data"])["seq"] if e["name"] == "client_event" else e["name"]
                                               for e in rx.on(channel)]
    s.close()
    rx.wait_for(vac(channel))
    assert wait_until(lambda: outbox_empty(c.workers, rx.target), 30, 0.5)
    assert r.get(stream + ":bytes") is None, "the byte count goes with the last entry"
    assert max(v or 0 for v in metric_values(c.workers, "webhook_outbox_dropped", rx.target)) == written - kept
    rx.assert_clean()
